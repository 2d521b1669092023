//! Command lines matched as Python's argparse matches Barman's, for the front-ends whose
//! users script against argparse's exact behaviour and texts (`barman` and its
//! sub-commands, `barman-wal-archive`, `barman-wal-restore`); the `barman-cloud-*`
//! commands use clap. What argparse does and this does too: long options and their
//! unambiguous prefixes (`--name=value`, `--name value`), short options bundled (`-tz`)
//! or with their value attached (`-Uroot`, `-oDIR`), `--` ending the options, a value
//! that looks like a negative number taken as a value, `nargs='?'` options, `choices`
//! checked as the value is taken. Callers print usage and errors their way.

/// One option: its names in argparse's display order (`--jobs/-j`), whether it takes a
/// value, and the key its value is stored under.
pub struct Arg {
    pub names: &'static [&'static str],
    pub valued: bool,
    /// `nargs='?'`: the value may be left out.
    pub optional: bool,
    /// `choices`, checked when the value is taken.
    pub choices: &'static [&'static str],
    pub key: &'static str,
}

/// A flag (`store_true`, `store_false`, `store_const`).
pub const fn flag(names: &'static [&'static str], key: &'static str) -> Arg {
    Arg {
        names,
        valued: false,
        optional: false,
        choices: &[],
        key,
    }
}

/// An option with one value.
pub const fn valued(names: &'static [&'static str], key: &'static str) -> Arg {
    Arg {
        names,
        valued: true,
        optional: false,
        choices: &[],
        key,
    }
}

/// An option with one value among `choices`.
pub const fn choice(
    names: &'static [&'static str],
    key: &'static str,
    choices: &'static [&'static str],
) -> Arg {
    Arg {
        names,
        valued: true,
        optional: false,
        choices,
        key,
    }
}

impl Arg {
    /// How argparse names the option in its messages: `-U/--user`, `--jobs/-j`.
    pub fn shown(&self) -> String {
        self.names.join("/")
    }
}

/// What a command line held, in the order given.
#[derive(Debug, Default)]
pub struct Matched {
    /// `(key, value)`; flags and valueless `nargs='?'` options have `None`.
    pub values: Vec<(&'static str, Option<String>)>,
    pub positionals: Vec<String>,
    /// Options nobody knows, for the caller (argparse's "unrecognized arguments").
    pub unrecognized: Vec<String>,
}

impl Matched {
    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether `key` was given at all.
    pub fn has(&self, key: &str) -> bool {
        self.values.iter().any(|(k, _)| *k == key)
    }

    /// The last given of two opposite flags on one destination: `Some(true)` for `yes`,
    /// `Some(false)` for `no`, `None` when neither was given.
    pub fn last_of(&self, yes: &str, no: &str) -> Option<bool> {
        self.values.iter().rev().find_map(|(k, _)| match *k {
            k if k == yes => Some(true),
            k if k == no => Some(false),
            _ => None,
        })
    }

    /// Every value given for `key` (`action='append'`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }
}

/// Why matching stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// `-h`/`--help`.
    Help,
    /// `-V`/`--version`, when the command has it.
    Version,
    /// An argparse error message (without `PROG: error: `).
    Error(String),
}

/// argparse's `choices` message.
pub fn invalid_choice(shown: &str, value: &str, choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("'{c}'")).collect();
    format!(
        "argument {shown}: invalid choice: '{value}' (choose from {})",
        quoted.join(", ")
    )
}

/// argparse takes `-1` as a value, not an option, when no option looks like a number.
fn is_number(text: &str) -> bool {
    text.strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.parse::<f64>().is_ok())
}

/// Whether `next` can be an option's value.
fn takes(next: &str) -> bool {
    !next.starts_with('-') || next == "-" || is_number(next)
}

/// Matches `args` against `options` (plus `-h/--help`, and `-V/--version` when
/// `version`).
pub fn match_args(args: &[String], options: &[Arg], version: bool) -> Result<Matched, Stop> {
    let mut matched = Matched::default();
    let mut index = 0;
    let mut only_positionals = false;
    let checked = |option: &Arg, value: String| -> Result<String, Stop> {
        if option.choices.is_empty() || option.choices.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(Stop::Error(invalid_choice(
                &option.shown(),
                &value,
                option.choices,
            )))
        }
    };
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        if only_positionals || arg == "-" || !arg.starts_with('-') || is_number(arg) {
            matched.positionals.push(arg.clone());
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
            // Long names, --help and --version (None) included: exact match, then prefixes.
            let mut longs: Vec<(&str, Option<&Arg>)> = vec![("--help", None)];
            if version {
                longs.push(("--version", None));
            }
            for option in options {
                for name in option.names.iter().filter(|n| n.starts_with("--")) {
                    longs.push((name, Some(option)));
                }
            }
            let found = match longs.iter().find(|(n, _)| *n == given) {
                Some(found) => *found,
                None => {
                    let candidates: Vec<&(&str, Option<&Arg>)> =
                        longs.iter().filter(|(n, _)| n.starts_with(given)).collect();
                    match candidates.as_slice() {
                        [] => {
                            matched.unrecognized.push(arg.clone());
                            continue;
                        }
                        [one] => **one,
                        many => {
                            let names: Vec<&str> = many.iter().map(|(n, _)| *n).collect();
                            return Err(Stop::Error(format!(
                                "ambiguous option: {given} could match {}",
                                names.join(", ")
                            )));
                        }
                    }
                }
            };
            let option = match found {
                ("--help", None) => return Err(Stop::Help),
                (_, None) => return Err(Stop::Version),
                (_, Some(option)) => option,
            };
            if !option.valued {
                if let Some(value) = inline {
                    return Err(Stop::Error(format!(
                        "argument {}: ignored explicit argument '{value}'",
                        option.shown()
                    )));
                }
                matched.values.push((option.key, None));
                continue;
            }
            let value = match inline {
                Some(value) => Some(value),
                None => match args.get(index) {
                    Some(next) if takes(next) => {
                        index += 1;
                        Some(next.clone())
                    }
                    _ if option.optional => None,
                    _ => {
                        return Err(Stop::Error(format!(
                            "argument {}: expected one argument",
                            option.shown()
                        )));
                    }
                },
            };
            let value = value.map(|v| checked(option, v)).transpose()?;
            matched.values.push((option.key, value));
            continue;
        }
        // Short options, possibly bundled, the last one possibly with its value attached.
        let mut rest = &arg[1..];
        while let Some(letter) = rest.chars().next() {
            rest = &rest[letter.len_utf8()..];
            let short = format!("-{letter}");
            if short == "-h" {
                return Err(Stop::Help);
            }
            if version && short == "-V" {
                return Err(Stop::Version);
            }
            let Some(option) = options.iter().find(|o| o.names.contains(&short.as_str())) else {
                matched.unrecognized.push(arg.clone());
                break;
            };
            if !option.valued {
                matched.values.push((option.key, None));
                continue;
            }
            let value = if !rest.is_empty() {
                Some(rest.strip_prefix('=').unwrap_or(rest).to_string())
            } else {
                match args.get(index) {
                    Some(next) if takes(next) => {
                        index += 1;
                        Some(next.clone())
                    }
                    _ if option.optional => None,
                    _ => {
                        return Err(Stop::Error(format!(
                            "argument {}: expected one argument",
                            option.shown()
                        )));
                    }
                }
            };
            let value = value.map(|v| checked(option, v)).transpose()?;
            matched.values.push((option.key, value));
            break;
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[Arg] = &[
        valued(&["-U", "--user"], "user"),
        flag(&["-t", "--test"], "test"),
        flag(&["-z", "--gzip"], "gzip"),
        valued(&["--parallel", "-p"], "parallel"),
        Arg {
            names: &["--reuse-backup"],
            valued: true,
            optional: true,
            choices: &["copy", "link", "off"],
            key: "reuse_backup",
        },
        valued(&["--port"], "port"),
        valued(&["--prefetch-cache-dir"], "prefetch"),
    ];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_as_argparse() {
        let m = match_args(
            &args(&[
                "-tzUroot",
                "--par=4",
                "--port",
                "-1",
                "host",
                "--",
                "-x",
                "--reuse-backup",
            ]),
            OPTIONS,
            true,
        )
        .unwrap();
        assert!(m.has("test") && m.has("gzip"));
        assert_eq!(m.get("user"), Some("root"));
        assert_eq!(m.get("parallel"), Some("4"));
        assert_eq!(m.get("port"), Some("-1"));
        assert_eq!(m.positionals, ["host", "-x", "--reuse-backup"]);
        let m = match_args(
            &args(&["--reuse-backup", "-t", "--bogus", "-q"]),
            OPTIONS,
            false,
        )
        .unwrap();
        assert_eq!(m.values[0], ("reuse_backup", None));
        assert_eq!(m.unrecognized, ["--bogus", "-q"]);
        let m = match_args(&args(&["--reuse-backup", "copy"]), OPTIONS, false).unwrap();
        assert_eq!(m.get("reuse_backup"), Some("copy"));
    }

    #[test]
    fn stops_as_argparse() {
        let stop = |list: &[&str], version| match_args(&args(list), OPTIONS, version).unwrap_err();
        assert_eq!(stop(&["--he"], false), Stop::Help);
        assert_eq!(stop(&["-th"], false), Stop::Help);
        assert_eq!(stop(&["-V"], true), Stop::Version);
        assert_eq!(stop(&["--vers"], true), Stop::Version);
        assert_eq!(
            stop(&["--p", "1"], false),
            Stop::Error(
                "ambiguous option: --p could match --parallel, --port, --prefetch-cache-dir".into()
            )
        );
        assert_eq!(
            stop(&["-U"], false),
            Stop::Error("argument -U/--user: expected one argument".into())
        );
        assert_eq!(
            stop(&["--test=1"], false),
            Stop::Error("argument -t/--test: ignored explicit argument '1'".into())
        );
        assert_eq!(
            stop(&["--reuse-backup", "srv"], false),
            Stop::Error(
                "argument --reuse-backup: invalid choice: 'srv' (choose from 'copy', 'link', 'off')"
                    .into()
            )
        );
    }
}
