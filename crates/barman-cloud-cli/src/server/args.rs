//! The command line of `barman`, parsed as Python's argparse parses Barman's: global
//! options before the command (`-c FILE`, `-cFILE`, `--config=FILE`, unambiguous long
//! prefixes, bundled short flags), then the command and its own options. Mistakes are
//! argparse's: usage, `barman: error: ...`, exit 2.

use std::path::PathBuf;

/// Output writers (`-f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Console,
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Never,
    Always,
    Auto,
}

/// The commands this front-end runs; more join as siblings (put-wal, get-wal,
/// archive-wal, cron, check, status, switch-wal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ListServers { minimal: bool },
}

/// The command names argparse accepts, aliases included, for usage and error texts.
pub const COMMAND_NAMES: [&str; 2] = ["list-server", "list-servers"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArgs {
    pub config: Option<PathBuf>,
    pub color: Color,
    pub log_level: Option<String>,
    pub quiet: bool,
    pub debug: bool,
    pub format: Format,
    pub command: Option<Command>,
}

/// What parsing ends with besides arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `-v`: print this on stdout, exit 0.
    Version(String),
    /// `-h`: print this on stdout, exit 0.
    Help(String),
    /// An argparse error: print this on stderr, exit 2.
    Usage(String),
}

const LOG_LEVELS: [&str; 6] = ["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

pub fn usage() -> String {
    format!(
        "usage: barman [-h] [-v] [-c CONFIG] [--color {{never,always,auto}}]\n              \
         [--log-level {{{}}}] [-q]\n              [-d] [-f {{console,json}}]\n              \
         {{{}}}\n              ...\n",
        LOG_LEVELS.join(","),
        COMMAND_NAMES.join(",")
    )
}

pub fn help() -> String {
    format!(
        "{}\npositional arguments:\n  {{{}}}\n    list-servers (list-server)\n                        \
         List available servers, with useful information\n\noptions:\n  -h, --help            \
         show this help message and exit\n  -v, --version         show program's version number \
         and exit\n  -c CONFIG, --config CONFIG\n                        uses a configuration file \
         (defaults: ~/.barman.conf,\n                        /etc/barman.conf, \
         /etc/barman/barman.conf)\n  --color {{never,always,auto}}, --colour {{never,always,auto}}\n                        \
         Whether to use colors in the output\n  --log-level {{{}}}\n                        \
         Override the default log level\n  -q, --quiet           be quiet\n  -d, --debug           \
         debug output\n  -f {{console,json}}, --format {{console,json}}\n                        \
         output format\n\nBarman by EnterpriseDB (www.enterprisedb.com)\n",
        usage(),
        COMMAND_NAMES.join(","),
        LOG_LEVELS.join(","),
    )
}

fn error(message: String) -> Stop {
    Stop::Usage(format!("{}barman: error: {message}\n", usage()))
}

fn choice<'a>(option: &str, value: &'a str, choices: &[&str]) -> Result<&'a str, Stop> {
    if choices.contains(&value) {
        Ok(value)
    } else {
        let quoted: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
        Err(error(format!(
            "argument {option}: invalid choice: '{value}' (choose from {})",
            quoted.join(", ")
        )))
    }
}

/// Global options that take a value, and the names argparse shows for them.
const VALUED: [(&str, &str, &str); 4] = [
    ("-c", "--config", "-c/--config"),
    ("-f", "--format", "-f/--format"),
    ("", "--log-level", "--log-level"),
    ("", "--color", "--color/--colour"),
];
const LONG_OPTIONS: [&str; 9] = [
    "--help",
    "--version",
    "--config",
    "--color",
    "--colour",
    "--log-level",
    "--quiet",
    "--debug",
    "--format",
];

/// Resolves a long option or an unambiguous prefix of one (`--colour` is `--color`).
fn long_option(name: &str) -> Result<Option<&'static str>, Stop> {
    if let Some(exact) = LONG_OPTIONS.iter().find(|o| **o == name) {
        return Ok(Some(if *exact == "--colour" {
            "--color"
        } else {
            exact
        }));
    }
    let mut matches: Vec<&str> = LONG_OPTIONS
        .iter()
        .filter(|o| o.starts_with(name))
        .map(|o| if *o == "--colour" { "--color" } else { *o })
        .collect();
    matches.dedup();
    match matches.len() {
        0 => Ok(None),
        1 => Ok(Some(matches[0])),
        _ => {
            let all: Vec<&str> = LONG_OPTIONS
                .iter()
                .filter(|o| o.starts_with(name))
                .copied()
                .collect();
            Err(error(format!(
                "ambiguous option: {name} could match {}",
                all.join(", ")
            )))
        }
    }
}

pub fn parse(args: &[String]) -> Result<GlobalArgs, Stop> {
    let mut parsed = GlobalArgs {
        config: None,
        color: Color::Auto,
        log_level: None,
        quiet: false,
        debug: false,
        format: Format::Console,
        command: None,
    };
    let mut unrecognized: Vec<String> = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        // (option, inline value)
        let (option, inline): (&str, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                // `--` ends the options: what follows is positional.
                if index < args.len() {
                    return command(&args[index], &args[index + 1..], parsed, unrecognized);
                }
                break;
            }
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            match long_option(name)? {
                Some(option) => (option, value),
                None => {
                    unrecognized.push(arg.clone());
                    continue;
                }
            }
        } else if arg.starts_with('-') && arg.len() > 1 {
            // Bundled short flags: `-qd`, `-cFILE`, `-fjson`.
            let mut flags = arg[1..].chars();
            let mut resolved = None;
            while let Some(flag) = flags.next() {
                match flag {
                    'q' => parsed.quiet = true,
                    'd' => parsed.debug = true,
                    'h' => return Err(Stop::Help(help())),
                    'v' => return Err(Stop::Version(version())),
                    'c' | 'f' => {
                        let rest: String = flags.collect();
                        let rest = rest.strip_prefix('=').map(str::to_string).unwrap_or(rest);
                        resolved = Some((
                            if flag == 'c' { "--config" } else { "--format" },
                            (!rest.is_empty()).then_some(rest),
                        ));
                        break;
                    }
                    _ => {
                        unrecognized.push(arg.clone());
                        break;
                    }
                }
            }
            match resolved {
                Some((option, value)) => (option, value),
                None => continue,
            }
        } else {
            return command(arg, &args[index..], parsed, unrecognized);
        };
        match option {
            "--help" => return Err(Stop::Help(help())),
            "--version" => return Err(Stop::Version(version())),
            "--quiet" => parsed.quiet = true,
            "--debug" => parsed.debug = true,
            _ => {
                let shown = VALUED
                    .iter()
                    .find(|(_, long, _)| *long == option)
                    .map(|(_, _, shown)| *shown)
                    .unwrap_or(option);
                let value = match inline {
                    Some(value) => value,
                    None => match args.get(index) {
                        Some(next) if !next.starts_with('-') || next == "-" => {
                            index += 1;
                            next.clone()
                        }
                        _ => return Err(error(format!("argument {shown}: expected one argument"))),
                    },
                };
                match option {
                    "--config" => parsed.config = Some(PathBuf::from(value)),
                    "--format" => {
                        parsed.format = match choice(shown, &value, &["console", "json"])? {
                            "json" => Format::Json,
                            _ => Format::Console,
                        }
                    }
                    "--log-level" => {
                        parsed.log_level = Some(choice(shown, &value, &LOG_LEVELS)?.to_string())
                    }
                    _ => {
                        parsed.color = match choice(shown, &value, &["never", "always", "auto"])? {
                            "never" => Color::Never,
                            "always" => Color::Always,
                            _ => Color::Auto,
                        }
                    }
                }
            }
        }
    }
    if !unrecognized.is_empty() {
        return Err(error(format!(
            "unrecognized arguments: {}",
            unrecognized.join(" ")
        )));
    }
    Ok(parsed)
}

pub fn version() -> String {
    // argparse reflows the version text: Barman's blank line becomes one space.
    format!(
        "{} Barman by EnterpriseDB (www.enterprisedb.com)\n",
        crate::BARMAN_VERSION
    )
}

fn command(
    name: &str,
    rest: &[String],
    mut parsed: GlobalArgs,
    mut unrecognized: Vec<String>,
) -> Result<GlobalArgs, Stop> {
    match name {
        "list-servers" | "list-server" => {
            let sub_usage = format!("usage: barman {name} [-h] [--minimal]\n");
            let mut minimal = false;
            for arg in rest {
                match arg.as_str() {
                    "-h" | "--help" => {
                        return Err(Stop::Help(format!(
                            "{sub_usage}\nList available servers, with useful information\n\n\
                             options:\n  -h, --help  show this help message and exit\n  \
                             --minimal   machine readable output\n"
                        )));
                    }
                    a if a.len() > 2 && "--minimal".starts_with(a) => minimal = true,
                    _ => unrecognized.push(arg.clone()),
                }
            }
            parsed.command = Some(Command::ListServers { minimal });
        }
        other => {
            let quoted: Vec<String> = COMMAND_NAMES.iter().map(|c| format!("'{c}'")).collect();
            return Err(error(format!(
                "argument command: invalid choice: '{other}' (choose from {})",
                quoted.join(", ")
            )));
        }
    }
    if !unrecognized.is_empty() {
        return Err(error(format!(
            "unrecognized arguments: {}",
            unrecognized.join(" ")
        )));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn global_options_in_every_form() {
        let parsed = parse(&args(&[
            "-qd",
            "-cFILE",
            "--form=json",
            "--colour",
            "always",
            "list-server",
            "--min",
        ]))
        .expect("parses");
        assert_eq!(
            parsed,
            GlobalArgs {
                config: Some(PathBuf::from("FILE")),
                color: Color::Always,
                log_level: None,
                quiet: true,
                debug: true,
                format: Format::Json,
                command: Some(Command::ListServers { minimal: true }),
            }
        );
        assert_eq!(
            parse(&args(&["-v", "bogus"])),
            Err(Stop::Version(version()))
        );
    }

    #[test]
    fn mistakes_are_argparse_errors() {
        for (line, expected) in [
            (
                vec!["list-servers", "-f", "json"],
                "barman: error: unrecognized arguments: -f json\n",
            ),
            (
                vec!["-f", "xml", "list-servers"],
                "barman: error: argument -f/--format: invalid choice: 'xml' (choose from 'console', 'json')\n",
            ),
            (
                vec!["-c"],
                "barman: error: argument -c/--config: expected one argument\n",
            ),
            (
                vec!["bogus"],
                "barman: error: argument command: invalid choice: 'bogus' (choose from 'list-server', 'list-servers')\n",
            ),
        ] {
            match parse(&args(&line)) {
                Err(Stop::Usage(text)) => {
                    assert!(text.starts_with("usage: barman [-h]"), "{text}");
                    assert!(text.ends_with(expected), "{line:?}: {text}");
                }
                other => panic!("{line:?}: {other:?}"),
            }
        }
    }
}
