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

/// The commands this front-end runs; more join as siblings (check, status, switch-wal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ListServers {
        minimal: bool,
    },
    PutWal {
        server: String,
        test: bool,
    },
    ArchiveWal {
        server: String,
    },
    GetWal(GetWalArgs),
    Cron {
        keep_descriptors: bool,
    },
    Check {
        servers: Vec<String>,
        nagios: bool,
        check_timeout: Option<i64>,
    },
    Status {
        servers: Vec<String>,
    },
    SwitchWal {
        servers: Vec<String>,
        force: bool,
        archive: bool,
        archive_timeout: i64,
    },
}

/// `get-wal`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetWalArgs {
    pub server: String,
    pub wal_name: String,
    pub output_directory: Option<String>,
    pub partial: bool,
    /// `gzip` (`-z`/`-x`/`--gzip`) or `bzip2` (`-j`/`--bzip2`): the last one given wins.
    pub compression: Option<&'static str>,
    pub keep_compression: bool,
    pub peek: Option<usize>,
    pub test: bool,
}

/// The command names argparse accepts, aliases included, for usage and error texts.
pub const COMMAND_NAMES: [&str; 10] = [
    "archive-wal",
    "check",
    "cron",
    "get-wal",
    "list-server",
    "list-servers",
    "put-wal",
    "status",
    "switch-wal",
    "switch-xlog",
];

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
        "put-wal" | "archive-wal" | "get-wal" | "cron" | "check" | "status" | "switch-wal"
        | "switch-xlog" => {
            let found = sub_command(name, rest)?;
            unrecognized.extend(found.unrecognized);
            parsed.command = Some(found.command);
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

/// One option of a sub-command: its names as argparse shows them (`--peek/-p`),
/// whether it takes a value, and the key it fills.
struct OptionSpec {
    names: &'static [&'static str],
    valued: bool,
    key: &'static str,
}

struct SubCommand {
    usage: &'static str,
    help: &'static str,
    options: &'static [OptionSpec],
    positionals: &'static [&'static str],
}

const PUT_WAL: SubCommand = SubCommand {
    usage: "usage: barman put-wal [-h] [--test] server_name\n",
    help: "\nReceive a WAL file of SERVER_NAME as a tar stream on standard input and store it\n\
           in the server's incoming directory.\n\npositional arguments:\n  server_name  \
           specifies the server name for the command\n\noptions:\n  -h, --help   show \
           this help message and exit\n  --test, -t   only check that the server is ready to \
           receive WAL files\n",
    options: &[OptionSpec {
        names: &["--test", "-t"],
        valued: false,
        key: "test",
    }],
    positionals: &["server_name"],
};

const ARCHIVE_WAL: SubCommand = SubCommand {
    usage: "usage: barman archive-wal [-h] server_name\n",
    help: "\nFile the WAL files of the server's incoming directory into its archive and\n\
           catalogue.\n\npositional arguments:\n  server_name  specifies the server name \
           for the command\n\noptions:\n  -h, --help   show this help message and exit\n",
    options: &[],
    positionals: &["server_name"],
};

const GET_WAL: SubCommand = SubCommand {
    usage: "usage: barman get-wal [-h] [--output-directory OUTPUT_DIRECTORY] [--partial]\n                      \
            [--gzip] [--bzip2] [--keep-compression] [--peek SIZE]\n                      \
            [--test]\n                      server_name wal_name\n",
    help: "\nSend WAL_NAME of SERVER_NAME's archive to standard output, or into a directory\n\
           with --output-directory.\n\npositional arguments:\n  server_name           \
           specifies the server name for the command\n  wal_name              the WAL file \
           to get\n\noptions:\n  -h, --help            show this help message and exit\n  \
           --output-directory OUTPUT_DIRECTORY, -o OUTPUT_DIRECTORY\n                        \
           write the WAL file into this directory, under its name\n  --partial, -P         \
           also look for .partial WAL files\n  --gzip, -z, -x        gzip the output\n  \
           --bzip2, -j           bzip2 the output\n  --keep-compression    send the file as \
           stored, compressed or not\n  --peek SIZE, -p SIZE  list up to SIZE (>= 1) WAL names \
           present from the requested one\n  --test, -t            only check that the server \
           is ready to send WAL files\n",
    options: &[
        OptionSpec {
            names: &["--output-directory", "-o"],
            valued: true,
            key: "output_directory",
        },
        OptionSpec {
            names: &["--partial", "-P"],
            valued: false,
            key: "partial",
        },
        OptionSpec {
            names: &["--gzip", "-z", "-x"],
            valued: false,
            key: "gzip",
        },
        OptionSpec {
            names: &["--bzip2", "-j"],
            valued: false,
            key: "bzip2",
        },
        OptionSpec {
            names: &["--keep-compression"],
            valued: false,
            key: "keep_compression",
        },
        OptionSpec {
            names: &["--peek", "-p"],
            valued: true,
            key: "peek",
        },
        OptionSpec {
            names: &["--test", "-t"],
            valued: false,
            key: "test",
        },
    ],
    positionals: &["server_name", "wal_name"],
};

const CRON: SubCommand = SubCommand {
    usage: "usage: barman cron [-h] [--keep-descriptors]\n",
    help: "\nRun maintenance tasks (global command)\n\noptions:\n  -h, --help          show \
           this help message and exit\n  --keep-descriptors  keep the standard output and \
           error of the\n                      subprocesses attached\n",
    options: &[OptionSpec {
        names: &["--keep-descriptors"],
        valued: false,
        key: "keep_descriptors",
    }],
    positionals: &[],
};

const CHECK: SubCommand = SubCommand {
    usage: "usage: barman check [-h] [--nagios] [--check-timeout TIMEOUT]\n                    \
            server_name [server_name ...]\n",
    help: "\nCheck if the server configuration is working.\n\npositional arguments:\n  \
           server_name           specifies the server names to check ('all' will check\n                        \
           all available servers)\n\noptions:\n  -h, --help            show this help \
           message and exit\n  --nagios              Nagios plugin compatible output\n  \
           --check-timeout TIMEOUT\n                        Specifies the time limit, in \
           seconds, for the check\n                        operation. Set to zero to disable \
           the timeout.\n",
    options: &[
        OptionSpec {
            names: &["--nagios"],
            valued: false,
            key: "nagios",
        },
        OptionSpec {
            names: &["--check-timeout"],
            valued: true,
            key: "check_timeout",
        },
    ],
    positionals: &["server_name"],
};

const STATUS: SubCommand = SubCommand {
    usage: "usage: barman status [-h] server_name [server_name ...]\n",
    help: "\nShows live information and status of the PostgreSQL server\n\npositional \
           arguments:\n  server_name  specifies the server name for the command\n\noptions:\n  \
           -h, --help   show this help message and exit\n",
    options: &[],
    positionals: &["server_name"],
};

const SWITCH_WAL: SubCommand = SubCommand {
    usage: "usage: barman switch-wal [-h] [--force] [--archive] [--archive-timeout TIMEOUT]\n                         \
            server_name [server_name ...]\n",
    help: "\nExecute the switch-wal command on the target server\n\npositional arguments:\n  \
           server_name           specifies the server name target of the switch-wal\n                        \
           command\n\noptions:\n  -h, --help            show this help message and exit\n  \
           --force               forces the switch of a WAL by executing a checkpoint\n                        \
           before\n  --archive             wait for one WAL file to be archived\n  \
           --archive-timeout TIMEOUT\n                        the time, in seconds, the archiver \
           will wait for a new\n                        WAL file to be archived before timing out\n",
    options: &[
        OptionSpec {
            names: &["--force"],
            valued: false,
            key: "force",
        },
        OptionSpec {
            names: &["--archive"],
            valued: false,
            key: "archive",
        },
        OptionSpec {
            names: &["--archive-timeout"],
            valued: true,
            key: "archive_timeout",
        },
    ],
    positionals: &["server_name"],
};

/// argparse's `check_non_negative` for `option`.
fn non_negative(option: &str, text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!(
            "argument {option}: '{text}' is not a valid non negative integer"
        )),
    }
}

struct Found {
    command: Command,
    unrecognized: Vec<String>,
}

/// argparse's `check_positive`.
fn positive(value: &str) -> Result<usize, String> {
    let number: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("'{value}' is not a valid input"))?;
    if number < 1 {
        return Err(format!("'{value}' is not a valid positive integer"));
    }
    Ok(number as usize)
}

/// A sub-command's arguments parsed as argparse does: long options or unambiguous
/// prefixes (`--name=value` or `--name value`), short options bundled (`-Pz`, `-oDIR`),
/// `--` ending the options, then the positionals. Errors are the sub-parser's
/// (`barman <cmd>: error: ...`, its usage); unknown arguments are left to the main
/// parser.
fn sub_command(name: &str, args: &[String]) -> Result<Found, Stop> {
    let spec = match name {
        "put-wal" => &PUT_WAL,
        "archive-wal" => &ARCHIVE_WAL,
        "get-wal" => &GET_WAL,
        "check" => &CHECK,
        "status" => &STATUS,
        "switch-wal" | "switch-xlog" => &SWITCH_WAL,
        _ => &CRON,
    };
    let fail =
        |message: String| Stop::Usage(format!("{}barman {name}: error: {message}\n", spec.usage));
    let shown = |option: &OptionSpec| option.names.join("/");
    let mut values: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut positionals: Vec<String> = Vec::new();
    let mut unrecognized = Vec::new();
    let mut index = 0;
    let mut only_positionals = false;
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        if only_positionals || arg == "-" || !arg.starts_with('-') {
            positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        if arg.starts_with("--") {
            let (given, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            // Long names, `--help` (None) included, exact match first, then prefixes.
            let mut longs: Vec<(&str, Option<&OptionSpec>)> = vec![("--help", None)];
            for option in spec.options {
                for n in option.names.iter().filter(|n| n.starts_with("--")) {
                    longs.push((n, Some(option)));
                }
            }
            let resolved = match longs.iter().find(|(n, _)| *n == given) {
                Some((_, option)) => *option,
                None => {
                    let matches: Vec<&(&str, Option<&OptionSpec>)> =
                        longs.iter().filter(|(n, _)| n.starts_with(given)).collect();
                    match matches.len() {
                        0 => {
                            unrecognized.push(arg.clone());
                            continue;
                        }
                        1 => matches[0].1,
                        _ => {
                            let all: Vec<&str> = matches.iter().map(|(n, _)| *n).collect();
                            return Err(fail(format!(
                                "ambiguous option: {given} could match {}",
                                all.join(", ")
                            )));
                        }
                    }
                }
            };
            let Some(option) = resolved else {
                return Err(Stop::Help(format!("{}{}", spec.usage, spec.help)));
            };
            if option.valued {
                let value = match inline {
                    Some(v) => v,
                    None => match args.get(index) {
                        Some(next) if !next.starts_with('-') || next == "-" => {
                            index += 1;
                            next.clone()
                        }
                        _ => {
                            return Err(fail(format!(
                                "argument {}: expected one argument",
                                shown(option)
                            )));
                        }
                    },
                };
                values.push((option.key, Some(value)));
            } else if inline.is_some() {
                return Err(fail(format!(
                    "argument {}: ignored explicit argument '{}'",
                    shown(option),
                    inline.unwrap_or_default()
                )));
            } else {
                values.push((option.key, None));
            }
            continue;
        }
        // Short options, possibly bundled.
        let mut rest = &arg[1..];
        while let Some(flag) = rest.chars().next() {
            let short = format!("-{flag}");
            rest = &rest[flag.len_utf8()..];
            if short == "-h" {
                return Err(Stop::Help(format!("{}{}", spec.usage, spec.help)));
            }
            let Some(option) = spec
                .options
                .iter()
                .find(|o| o.names.contains(&short.as_str()))
            else {
                unrecognized.push(arg.clone());
                break;
            };
            if option.valued {
                let value = if !rest.is_empty() {
                    rest.strip_prefix('=').unwrap_or(rest).to_string()
                } else {
                    match args.get(index) {
                        Some(next) if !next.starts_with('-') || next == "-" => {
                            index += 1;
                            next.clone()
                        }
                        _ => {
                            return Err(fail(format!(
                                "argument {}: expected one argument",
                                shown(option)
                            )));
                        }
                    }
                };
                values.push((option.key, Some(value)));
                break;
            }
            values.push((option.key, None));
        }
    }
    if positionals.len() < spec.positionals.len() {
        return Err(fail(format!(
            "the following arguments are required: {}",
            spec.positionals[positionals.len()..].join(", ")
        )));
    }
    if !matches!(name, "check" | "status" | "switch-wal" | "switch-xlog") {
        unrecognized.extend(positionals.drain(spec.positionals.len()..));
    }
    let flag = |key: &str| values.iter().any(|(k, _)| *k == key);
    let value = |key: &str| {
        values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.clone())
    };
    let command = match name {
        "put-wal" => Command::PutWal {
            server: positionals[0].clone(),
            test: flag("test"),
        },
        "archive-wal" => Command::ArchiveWal {
            server: positionals[0].clone(),
        },
        "cron" => Command::Cron {
            keep_descriptors: flag("keep_descriptors"),
        },
        "switch-wal" | "switch-xlog" => Command::SwitchWal {
            servers: positionals.clone(),
            force: flag("force"),
            archive: flag("archive"),
            archive_timeout: non_negative(
                "--archive-timeout",
                &value("archive_timeout").unwrap_or_else(|| "30".into()),
            )
            .map_err(fail)?,
        },
        "status" => Command::Status {
            servers: positionals.clone(),
        },
        "check" => {
            let check_timeout = match value("check_timeout") {
                Some(text) => Some(non_negative("--check-timeout", &text).map_err(fail)?),
                None => None,
            };
            Command::Check {
                servers: positionals.clone(),
                nagios: flag("nagios"),
                check_timeout,
            }
        }
        _ => {
            let peek = match value("peek") {
                Some(text) => {
                    Some(positive(&text).map_err(|e| fail(format!("argument --peek/-p: {e}")))?)
                }
                None => None,
            };
            let compression = values.iter().rev().find_map(|(k, _)| match *k {
                "gzip" => Some("gzip"),
                "bzip2" => Some("bzip2"),
                _ => None,
            });
            Command::GetWal(GetWalArgs {
                server: positionals[0].clone(),
                wal_name: positionals[1].clone(),
                output_directory: value("output_directory"),
                partial: flag("partial"),
                compression,
                keep_compression: flag("keep_compression"),
                peek,
                test: flag("test"),
            })
        }
    };
    Ok(Found {
        command,
        unrecognized,
    })
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
    fn check_takes_server_names_and_its_options() {
        let parsed = parse(&args(&[
            "check",
            "--nagios",
            "a",
            "b",
            "--check-timeout",
            "5",
        ]))
        .unwrap();
        assert_eq!(
            parsed.command,
            Some(Command::Check {
                servers: vec!["a".into(), "b".into()],
                nagios: true,
                check_timeout: Some(5),
            })
        );
        match parse(&args(&["check"])) {
            Err(Stop::Usage(text)) => assert!(
                text.ends_with(
                    "barman check: error: the following arguments are required: server_name\n"
                ),
                "{text}"
            ),
            other => panic!("{other:?}"),
        }
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
                "barman: error: argument command: invalid choice: 'bogus' (choose from 'archive-wal', 'check', 'cron', 'get-wal', 'list-server', 'list-servers', 'put-wal', 'status', 'switch-wal', 'switch-xlog')\n",
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
