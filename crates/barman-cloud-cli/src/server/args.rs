//! The command line of `barman`, parsed as Python's argparse parses Barman's: global
//! options before the command (`-c FILE`, `-cFILE`, `--config=FILE`, unambiguous long
//! prefixes, bundled short flags), then the command and its own options. Mistakes are
//! argparse's: usage, `barman: error: ...`, exit 2.

use std::path::PathBuf;

use crate::argparse::{self, Arg, choice, flag, valued};

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
    Backup(Box<BackupArgs>),
    ListBackups {
        servers: Vec<String>,
        minimal: bool,
    },
    ShowBackup {
        server: String,
        backup_id: String,
    },
    Delete {
        server: String,
        backup_id: String,
    },
    Keep {
        server: String,
        backup_id: String,
        release: bool,
        status: bool,
        target: Option<String>,
    },
    Recover(Box<RecoverArgs>),
}

/// `backup`'s arguments. Options that mean nothing to a snapshot backup are kept so that
/// the command can refuse or ignore them as Barman does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupArgs {
    pub servers: Vec<String>,
    /// `--immediate-checkpoint` (true) / `--no-immediate-checkpoint` (false), the last
    /// one given; `None`: the configuration's `immediate_checkpoint`.
    pub immediate_checkpoint: Option<bool>,
    pub incremental: Option<String>,
    /// `--reuse-backup [copy|link|off]` (`link` without a value).
    pub reuse_backup: Option<String>,
    pub retry_times: Option<i64>,
    pub retry_sleep: Option<i64>,
    pub no_retry: bool,
    pub jobs: Option<usize>,
    pub jobs_start_batch_period: Option<usize>,
    pub jobs_start_batch_size: Option<usize>,
    pub bwlimit: Option<i64>,
    pub wait: bool,
    pub wait_timeout: Option<i64>,
    pub keepalive_interval: Option<i64>,
    pub name: Option<String>,
    /// `--manifest` (true) / `--no-manifest` (false).
    pub manifest: Option<bool>,
    pub check_timeout: Option<i64>,
    pub cloud_staging_directory: Option<String>,
    pub cloud_staging_max_size: Option<String>,
}

/// `recover`/`restore`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoverArgs {
    pub server: String,
    pub backup_id: String,
    pub destination: String,
    /// A positive number, `current` or `latest`.
    pub target_tli: Option<String>,
    pub target_time: Option<String>,
    pub target_xid: Option<String>,
    pub target_lsn: Option<String>,
    pub target_name: Option<String>,
    pub target_immediate: bool,
    pub exclusive: bool,
    /// `--tablespace NAME:LOCATION`, each occurrence.
    pub tablespaces: Vec<String>,
    pub remote_ssh_command: Option<String>,
    pub staging_wal_directory: Option<String>,
    pub bwlimit: Option<i64>,
    pub retry_times: Option<i64>,
    pub retry_sleep: Option<i64>,
    pub no_retry: bool,
    pub jobs: Option<usize>,
    pub jobs_start_batch_period: Option<usize>,
    pub jobs_start_batch_size: Option<usize>,
    /// `--get-wal` (true) / `--no-get-wal` (false); `None`: `recovery_options`.
    pub get_wal: Option<bool>,
    pub partial_wal: bool,
    pub skip_archive_wal: bool,
    pub network_compression: Option<bool>,
    pub target_action: Option<String>,
    pub standby_mode: bool,
    pub recovery_staging_path: Option<String>,
    pub local_staging_path: Option<String>,
    pub staging_path: Option<String>,
    pub staging_location: Option<String>,
    pub combine_mode: Option<String>,
    pub recovery_conf_filename: Option<String>,
    pub recovery_option_port: Option<String>,
    pub restore_command: Option<String>,
    pub delta_restore: Option<bool>,
    pub snapshot_recovery_instance: Option<String>,
    pub snapshot_recovery_zone: Option<String>,
    pub gcp_zone: Option<String>,
    pub azure_resource_group: Option<String>,
    pub aws_region: Option<String>,
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
pub const COMMAND_NAMES: [&str; 19] = [
    "archive-wal",
    "backup",
    "check",
    "cron",
    "delete",
    "get-wal",
    "keep",
    "list-backup",
    "list-backups",
    "list-server",
    "list-servers",
    "put-wal",
    "recover",
    "restore",
    "show-backup",
    "show-backups",
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

/// A global option's `choices`.
fn global_choice<'a>(option: &str, value: &'a str, choices: &[&str]) -> Result<&'a str, Stop> {
    if choices.contains(&value) {
        Ok(value)
    } else {
        Err(error(argparse::invalid_choice(option, value, choices)))
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
                        parsed.format = match global_choice(shown, &value, &["console", "json"])? {
                            "json" => Format::Json,
                            _ => Format::Console,
                        }
                    }
                    "--log-level" => {
                        parsed.log_level =
                            Some(global_choice(shown, &value, &LOG_LEVELS)?.to_string())
                    }
                    _ => {
                        parsed.color =
                            match global_choice(shown, &value, &["never", "always", "auto"])? {
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
        | "switch-xlog" | "backup" | "list-backups" | "list-backup" | "show-backup"
        | "show-backups" | "delete" | "keep" | "recover" | "restore" => {
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

struct SubCommand {
    usage: &'static str,
    help: &'static str,
    options: &'static [Arg],
    positionals: &'static [&'static str],
}

const PUT_WAL: SubCommand = SubCommand {
    usage: "usage: barman put-wal [-h] [--test] server_name\n",
    help: "\nReceive a WAL file of SERVER_NAME as a tar stream on standard input and store it\n\
           in the server's incoming directory.\n\npositional arguments:\n  server_name  \
           specifies the server name for the command\n\noptions:\n  -h, --help   show \
           this help message and exit\n  --test, -t   only check that the server is ready to \
           receive WAL files\n",
    options: &[flag(&["--test", "-t"], "test")],
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
        valued(&["--output-directory", "-o"], "output_directory"),
        flag(&["--partial", "-P"], "partial"),
        flag(&["--gzip", "-z", "-x"], "gzip"),
        flag(&["--bzip2", "-j"], "bzip2"),
        flag(&["--keep-compression"], "keep_compression"),
        valued(&["--peek", "-p"], "peek"),
        flag(&["--test", "-t"], "test"),
    ],
    positionals: &["server_name", "wal_name"],
};

const CRON: SubCommand = SubCommand {
    usage: "usage: barman cron [-h] [--keep-descriptors]\n",
    help: "\nRun maintenance tasks (global command)\n\noptions:\n  -h, --help          show \
           this help message and exit\n  --keep-descriptors  keep the standard output and \
           error of the\n                      subprocesses attached\n",
    options: &[flag(&["--keep-descriptors"], "keep_descriptors")],
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
        flag(&["--nagios"], "nagios"),
        valued(&["--check-timeout"], "check_timeout"),
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
        flag(&["--force"], "force"),
        flag(&["--archive"], "archive"),
        valued(&["--archive-timeout"], "archive_timeout"),
    ],
    positionals: &["server_name"],
};

const BACKUP: SubCommand = SubCommand {
    usage: "usage: barman backup [-h] [--immediate-checkpoint] [--no-immediate-checkpoint]\n                     \
            [--incremental BACKUP_ID]\n                     [--reuse-backup [{copy,link,off}]]\n                     \
            [--retry-times RETRY_TIMES] [--retry-sleep RETRY_SLEEP]\n                     \
            [--no-retry] [--jobs NJOBS]\n                     \
            [--jobs-start-batch-period JOBS_START_BATCH_PERIOD]\n                     \
            [--jobs-start-batch-size JOBS_START_BATCH_SIZE]\n                     \
            [--bwlimit KBPS] [--wait] [--wait-timeout TIMEOUT]\n                     \
            [--keepalive-interval KEEPALIVE_INTERVAL]\n                     \
            [--name BACKUP_NAME] [--manifest] [--no-manifest]\n                     \
            [--check-timeout CHECK_TIMEOUT]\n                     \
            [--cloud-staging-directory CLOUD_STAGING_DIRECTORY]\n                     \
            [--cloud-staging-max-size CLOUD_STAGING_MAX_SIZE]\n                     \
            server_name [server_name ...]\n",
    help: "\nTake a backup of each server ('all': every server). With backup_method = snapshot,\n\
           the copy options (--reuse-backup, --jobs, --bwlimit...) have no effect.\n\n\
           positional arguments:\n  server_name           the servers to back up\n\noptions:\n  \
           -h, --help            show this help message and exit\n  --immediate-checkpoint\n                        \
           ask PostgreSQL for an immediate checkpoint\n  --no-immediate-checkpoint\n                        \
           let PostgreSQL spread the checkpoint\n  --incremental BACKUP_ID\n                        \
           incremental backup (not with snapshots)\n  --reuse-backup [{copy,link,off}]\n                        \
           rsync only\n  --retry-times RETRY_TIMES\n                        retries of a failed copy\n  \
           --retry-sleep RETRY_SLEEP\n                        seconds between retries\n  \
           --no-retry            no retries\n  --jobs NJOBS, -j NJOBS\n                        \
           parallel copy jobs (rsync only)\n  --jobs-start-batch-period JOBS_START_BATCH_PERIOD\n                        \
           rsync only\n  --jobs-start-batch-size JOBS_START_BATCH_SIZE\n                        \
           rsync only\n  --bwlimit KBPS        bandwidth limit (rsync only)\n  \
           --wait, -w            wait until the WAL files the backup needs are archived\n  \
           --wait-timeout TIMEOUT\n                        give up waiting after TIMEOUT seconds\n  \
           --keepalive-interval KEEPALIVE_INTERVAL\n                        \
           seconds between keep-alive queries while in backup mode\n  \
           --name BACKUP_NAME    a name to refer to the backup by\n  \
           --manifest            rsync only\n  --no-manifest         rsync only\n  \
           --check-timeout CHECK_TIMEOUT\n                        \
           time limit of the checks before the backup (0: none)\n  \
           --cloud-staging-directory CLOUD_STAGING_DIRECTORY\n                        \
           local-to-cloud only\n  --cloud-staging-max-size CLOUD_STAGING_MAX_SIZE\n                        \
           local-to-cloud only\n",
    options: &[
        flag(&["--immediate-checkpoint"], "immediate_checkpoint"),
        flag(&["--no-immediate-checkpoint"], "no_immediate_checkpoint"),
        valued(&["--incremental"], "incremental"),
        Arg {
            names: &["--reuse-backup"],
            valued: true,
            optional: true,
            choices: &["copy", "link", "off"],
            key: "reuse_backup",
        },
        valued(&["--retry-times"], "retry_times"),
        valued(&["--retry-sleep"], "retry_sleep"),
        flag(&["--no-retry"], "no_retry"),
        valued(&["--jobs", "-j"], "jobs"),
        valued(&["--jobs-start-batch-period"], "jobs_start_batch_period"),
        valued(&["--jobs-start-batch-size"], "jobs_start_batch_size"),
        valued(&["--bwlimit"], "bwlimit"),
        flag(&["--wait", "-w"], "wait"),
        valued(&["--wait-timeout"], "wait_timeout"),
        valued(&["--keepalive-interval"], "keepalive_interval"),
        valued(&["--name"], "name"),
        flag(&["--manifest"], "manifest"),
        flag(&["--no-manifest"], "no_manifest"),
        valued(&["--check-timeout"], "check_timeout"),
        valued(&["--cloud-staging-directory"], "cloud_staging_directory"),
        valued(&["--cloud-staging-max-size"], "cloud_staging_max_size"),
    ],
    positionals: &["server_name"],
};

const LIST_BACKUPS: SubCommand = SubCommand {
    usage: "usage: barman list-backups [-h] [--minimal] server_name [server_name ...]\n",
    help: "\nList the backups of each server ('all': every server).\n\npositional arguments:\n  \
           server_name  the servers whose backups to list\n\noptions:\n  -h, --help   show this \
           help message and exit\n  --minimal    machine readable output\n",
    options: &[flag(&["--minimal"], "minimal")],
    positionals: &["server_name"],
};

const SHOW_BACKUP: SubCommand = SubCommand {
    usage: "usage: barman show-backup [-h] server_name backup_id\n",
    help: "\nShow everything known about one backup.\n\npositional arguments:\n  server_name  \
           the server\n  backup_id    the backup: ID, name or shortcut\n\noptions:\n  -h, --help   \
           show this help message and exit\n",
    options: &[],
    positionals: &["server_name", "backup_id"],
};

const DELETE: SubCommand = SubCommand {
    usage: "usage: barman delete [-h] server_name backup_id\n",
    help: "\nDelete a backup (its snapshots first), then the WAL files no longer needed.\n\n\
           positional arguments:\n  server_name  the server\n  backup_id    the backup: ID, \
           name or shortcut\n\noptions:\n  -h, --help   show this help message and exit\n",
    options: &[],
    positionals: &["server_name", "backup_id"],
};

const KEEP: SubCommand = SubCommand {
    usage: "usage: barman keep [-h] [-r] [-s] [--target {full,standalone}]\n                   \
            server_name backup_id\n",
    help: "\nKeep a backup out of retention, show or release the keep.\n\npositional arguments:\n  \
           server_name           the server\n  backup_id             the backup: ID, name or \
           shortcut\n\noptions:\n  -h, --help            show this help message and exit\n  \
           -r, --release         release the keep\n  -s, --status          show the keep \
           target, or nokeep\n  --target {full,standalone}\n                        \
           full: the backup and every later WAL; standalone: the\n                        \
           backup and the WAL it needs\n",
    options: &[
        flag(&["-r", "--release"], "release"),
        flag(&["-s", "--status"], "status"),
        choice(&["--target"], "target", &["full", "standalone"]),
    ],
    positionals: &["server_name", "backup_id"],
};

const RECOVER: SubCommand = SubCommand {
    usage: "usage: barman restore [-h] [--target-tli TARGET_TLI]\n                      \
            [--target-time TARGET_TIME] [--target-xid TARGET_XID]\n                      \
            [--target-lsn TARGET_LSN] [--target-name TARGET_NAME]\n                      \
            [--target-immediate] [--exclusive]\n                      \
            [--tablespace NAME:LOCATION]\n                      \
            [--remote-ssh-command SSH_COMMAND]\n                      \
            [--staging-wal-directory STAGING_WAL_DIRECTORY]\n                      \
            [--bwlimit KBPS] [--retry-times RETRY_TIMES]\n                      \
            [--retry-sleep RETRY_SLEEP] [--no-retry] [--jobs NJOBS]\n                      \
            [--jobs-start-batch-period JOBS_START_BATCH_PERIOD]\n                      \
            [--jobs-start-batch-size JOBS_START_BATCH_SIZE]\n                      \
            [--get-wal] [--no-get-wal] [--partial-wal]\n                      \
            [--skip-archive-wal] [--network-compression]\n                      \
            [--no-network-compression]\n                      \
            [--target-action TARGET_ACTION] [--standby-mode]\n                      \
            [--recovery-staging-path RECOVERY_STAGING_PATH]\n                      \
            [--local-staging-path LOCAL_STAGING_PATH]\n                      \
            [--staging-path STAGING_PATH]\n                      \
            [--staging-location {local,remote}]\n                      \
            [--combine-mode {copy,link,clone,copy-file-range}]\n                      \
            [--recovery-conf-filename RECOVERY_CONF_FILENAME]\n                      \
            [--recovery-option-port RECOVERY_OPTION_PORT]\n                      \
            [--restore-command RESTORE_COMMAND] [--delta-restore]\n                      \
            [--no-delta-restore]\n                      \
            [--snapshot-recovery-instance SNAPSHOT_RECOVERY_INSTANCE]\n                      \
            [--snapshot-recovery-zone SNAPSHOT_RECOVERY_ZONE]\n                      \
            [--gcp-zone GCP_ZONE]\n                      \
            [--azure-resource-group AZURE_RESOURCE_GROUP]\n                      \
            [--aws-region AWS_REGION]\n                      \
            server_name backup_id destination_directory\n",
    help: "\nPrepare DESTINATION_DIRECTORY to recover the server from a backup, to a target if\n\
           one is given. For a snapshot backup, the disks cloned from its snapshots must be\n\
           attached and mounted on the recovery instance.\n\npositional arguments:\n  \
           server_name           the server\n  backup_id             the backup: ID, name or \
           shortcut\n  destination_directory\n                        PGDATA of the recovered \
           server\n\noptions:\n  -h, --help            show this help message and exit\n  \
           --target-tli TARGET_TLI\n                        timeline: a number, current or \
           latest\n  --target-time TARGET_TIME\n  --target-xid TARGET_XID\n  \
           --target-lsn TARGET_LSN\n  --target-name TARGET_NAME\n  --target-immediate    \
           stop at the first consistent point\n  --exclusive           stop just before the \
           target\n  --tablespace NAME:LOCATION\n  --remote-ssh-command SSH_COMMAND\n                        \
           prepare the recovery on the host ssh reaches\n  --get-wal             \
           fetch WAL with barman get-wal during recovery\n  --no-get-wal          copy the WAL \
           files needed into the destination\n  --target-action TARGET_ACTION\n                        \
           pause, shutdown or promote\n  --standby-mode        recover as a standby\n  \
           --recovery-conf-filename RECOVERY_CONF_FILENAME\n  \
           --recovery-option-port RECOVERY_OPTION_PORT\n  --restore-command RESTORE_COMMAND\n  \
           --snapshot-recovery-instance SNAPSHOT_RECOVERY_INSTANCE\n                        \
           the instance where the cloned disks are attached\n  --gcp-zone GCP_ZONE\n  \
           --azure-resource-group AZURE_RESOURCE_GROUP\n  --aws-region AWS_REGION\n  \
           (the other options are accepted as Barman accepts them)\n",
    options: &[
        valued(&["--target-tli"], "target_tli"),
        valued(&["--target-time"], "target_time"),
        valued(&["--target-xid"], "target_xid"),
        valued(&["--target-lsn"], "target_lsn"),
        valued(&["--target-name"], "target_name"),
        flag(&["--target-immediate"], "target_immediate"),
        flag(&["--exclusive"], "exclusive"),
        valued(&["--tablespace"], "tablespace"),
        valued(&["--remote-ssh-command"], "remote_ssh_command"),
        valued(&["--staging-wal-directory"], "staging_wal_directory"),
        valued(&["--bwlimit"], "bwlimit"),
        valued(&["--retry-times"], "retry_times"),
        valued(&["--retry-sleep"], "retry_sleep"),
        flag(&["--no-retry"], "no_retry"),
        valued(&["--jobs", "-j"], "jobs"),
        valued(&["--jobs-start-batch-period"], "jobs_start_batch_period"),
        valued(&["--jobs-start-batch-size"], "jobs_start_batch_size"),
        flag(&["--get-wal"], "get_wal"),
        flag(&["--no-get-wal"], "no_get_wal"),
        flag(&["--partial-wal"], "partial_wal"),
        flag(&["--skip-archive-wal"], "skip_archive_wal"),
        flag(&["--network-compression"], "network_compression"),
        flag(&["--no-network-compression"], "no_network_compression"),
        valued(&["--target-action"], "target_action"),
        flag(&["--standby-mode"], "standby_mode"),
        valued(&["--recovery-staging-path"], "recovery_staging_path"),
        valued(&["--local-staging-path"], "local_staging_path"),
        valued(&["--staging-path"], "staging_path"),
        choice(
            &["--staging-location"],
            "staging_location",
            &["local", "remote"],
        ),
        choice(
            &["--combine-mode"],
            "combine_mode",
            &["copy", "link", "clone", "copy-file-range"],
        ),
        valued(&["--recovery-conf-filename"], "recovery_conf_filename"),
        valued(&["--recovery-option-port"], "recovery_option_port"),
        valued(&["--restore-command"], "restore_command"),
        flag(&["--delta-restore"], "delta_restore"),
        flag(&["--no-delta-restore"], "no_delta_restore"),
        valued(
            &["--snapshot-recovery-instance"],
            "snapshot_recovery_instance",
        ),
        valued(&["--snapshot-recovery-zone"], "snapshot_recovery_zone"),
        valued(&["--gcp-zone"], "gcp_zone"),
        valued(&["--azure-resource-group"], "azure_resource_group"),
        valued(&["--aws-region"], "aws_region"),
    ],
    positionals: &["server_name", "backup_id", "destination_directory"],
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

/// Barman's `check_backup_name`: not empty, not a backup ID, not a reserved word.
fn backup_name(text: &str) -> Result<String, String> {
    const RESERVED: [&str; 8] = [
        "latest",
        "last",
        "oldest",
        "first",
        "last-failed",
        "latest-full",
        "last-full",
        "auto",
    ];
    if text.is_empty() {
        return Err("Backup name cannot be empty".into());
    }
    if barman_cloud::backup_catalog::is_backup_id(text) {
        return Err(format!("Backup name '{text}' is not allowed: backup ID"));
    }
    if RESERVED.contains(&text) {
        return Err(format!(
            "Backup name '{text}' is not allowed: reserved word"
        ));
    }
    Ok(text.to_string())
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
        "backup" => &BACKUP,
        "list-backups" | "list-backup" => &LIST_BACKUPS,
        "show-backup" | "show-backups" => &SHOW_BACKUP,
        "delete" => &DELETE,
        "keep" => &KEEP,
        "recover" | "restore" => &RECOVER,
        _ => &CRON,
    };
    // argparse names a sub-parser by its command, not by the alias used.
    let prog = match name {
        "recover" => "restore",
        "list-backup" => "list-backups",
        "show-backups" => "show-backup",
        other => other,
    };
    let fail =
        |message: String| Stop::Usage(format!("{}barman {prog}: error: {message}\n", spec.usage));
    let mut matched = match argparse::match_args(args, spec.options, false) {
        Ok(matched) => matched,
        Err(argparse::Stop::Error(message)) => return Err(fail(message)),
        Err(_) => return Err(Stop::Help(format!("{}{}", spec.usage, spec.help))),
    };
    let mut positionals = std::mem::take(&mut matched.positionals);
    let mut unrecognized = std::mem::take(&mut matched.unrecognized);
    if positionals.len() < spec.positionals.len() {
        return Err(fail(format!(
            "the following arguments are required: {}",
            spec.positionals[positionals.len()..].join(", ")
        )));
    }
    if !matches!(
        name,
        "check"
            | "status"
            | "switch-wal"
            | "switch-xlog"
            | "backup"
            | "list-backups"
            | "list-backup"
    ) {
        unrecognized.extend(positionals.drain(spec.positionals.len()..));
    }
    let flag = |key: &str| matched.has(key);
    let value = |key: &str| matched.get(key).map(str::to_string);
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
        "backup" => {
            let non_negative_of = |key: &str, option: &str| -> Result<Option<i64>, Stop> {
                value(key)
                    .map(|text| non_negative(option, &text).map_err(&fail))
                    .transpose()
            };
            let positive_of = |key: &str, option: &str| -> Result<Option<usize>, Stop> {
                value(key)
                    .map(|text| {
                        positive(&text).map_err(|e| fail(format!("argument {option}: {e}")))
                    })
                    .transpose()
            };
            // Without a value, argparse's `const`: link.
            let reuse_backup = flag("reuse_backup")
                .then(|| value("reuse_backup").unwrap_or_else(|| "link".into()));
            let name = value("name")
                .map(|text| backup_name(&text).map_err(|e| fail(format!("argument --name: {e}"))))
                .transpose()?;
            Command::Backup(Box::new(BackupArgs {
                servers: positionals.clone(),
                immediate_checkpoint: matched
                    .last_of("immediate_checkpoint", "no_immediate_checkpoint"),
                incremental: value("incremental"),
                reuse_backup,
                retry_times: non_negative_of("retry_times", "--retry-times")?,
                retry_sleep: non_negative_of("retry_sleep", "--retry-sleep")?,
                no_retry: flag("no_retry"),
                jobs: positive_of("jobs", "--jobs/-j")?,
                jobs_start_batch_period: positive_of(
                    "jobs_start_batch_period",
                    "--jobs-start-batch-period",
                )?,
                jobs_start_batch_size: positive_of(
                    "jobs_start_batch_size",
                    "--jobs-start-batch-size",
                )?,
                bwlimit: non_negative_of("bwlimit", "--bwlimit")?,
                wait: flag("wait"),
                wait_timeout: non_negative_of("wait_timeout", "--wait-timeout")?,
                keepalive_interval: non_negative_of("keepalive_interval", "--keepalive-interval")?,
                name,
                manifest: matched.last_of("manifest", "no_manifest"),
                check_timeout: non_negative_of("check_timeout", "--check-timeout")?,
                cloud_staging_directory: value("cloud_staging_directory"),
                cloud_staging_max_size: value("cloud_staging_max_size"),
            }))
        }
        "list-backups" | "list-backup" => Command::ListBackups {
            servers: positionals.clone(),
            minimal: flag("minimal"),
        },
        "show-backup" | "show-backups" => Command::ShowBackup {
            server: positionals[0].clone(),
            backup_id: positionals[1].clone(),
        },
        "delete" => Command::Delete {
            server: positionals[0].clone(),
            backup_id: positionals[1].clone(),
        },
        "keep" => {
            let target = value("target");
            Command::Keep {
                server: positionals[0].clone(),
                backup_id: positionals[1].clone(),
                release: flag("release"),
                status: flag("status"),
                target,
            }
        }
        "recover" | "restore" => {
            let non_negative_of = |key: &str, option: &str| -> Result<Option<i64>, Stop> {
                value(key)
                    .map(|text| non_negative(option, &text).map_err(&fail))
                    .transpose()
            };
            let positive_of = |key: &str, option: &str| -> Result<Option<usize>, Stop> {
                value(key)
                    .map(|text| {
                        positive(&text).map_err(|e| fail(format!("argument {option}: {e}")))
                    })
                    .transpose()
            };
            let target_tli = value("target_tli")
                .map(|text| {
                    if text == "current" || text == "latest" {
                        Ok(text)
                    } else {
                        positive(&text)
                            .map(|n| n.to_string())
                            .map_err(|e| fail(format!("argument --target-tli: {e}")))
                    }
                })
                .transpose()?;
            let target_action = value("target_action")
                .map(|text| {
                    if matches!(text.as_str(), "pause" | "shutdown" | "promote") {
                        Ok(text)
                    } else {
                        Err(fail(format!(
                            "argument --target-action: '{text}' is not a valid recovery target action"
                        )))
                    }
                })
                .transpose()?;
            Command::Recover(Box::new(RecoverArgs {
                server: positionals[0].clone(),
                backup_id: positionals[1].clone(),
                destination: positionals[2].clone(),
                target_tli,
                target_time: value("target_time"),
                target_xid: value("target_xid"),
                target_lsn: value("target_lsn"),
                target_name: value("target_name"),
                target_immediate: flag("target_immediate"),
                exclusive: flag("exclusive"),
                tablespaces: matched.all("tablespace"),
                remote_ssh_command: value("remote_ssh_command"),
                staging_wal_directory: value("staging_wal_directory"),
                bwlimit: non_negative_of("bwlimit", "--bwlimit")?,
                retry_times: non_negative_of("retry_times", "--retry-times")?,
                retry_sleep: non_negative_of("retry_sleep", "--retry-sleep")?,
                no_retry: flag("no_retry"),
                jobs: positive_of("jobs", "--jobs/-j")?,
                jobs_start_batch_period: positive_of(
                    "jobs_start_batch_period",
                    "--jobs-start-batch-period",
                )?,
                jobs_start_batch_size: positive_of(
                    "jobs_start_batch_size",
                    "--jobs-start-batch-size",
                )?,
                get_wal: matched.last_of("get_wal", "no_get_wal"),
                partial_wal: flag("partial_wal"),
                skip_archive_wal: flag("skip_archive_wal"),
                network_compression: matched
                    .last_of("network_compression", "no_network_compression"),
                target_action,
                standby_mode: flag("standby_mode"),
                recovery_staging_path: value("recovery_staging_path"),
                local_staging_path: value("local_staging_path"),
                staging_path: value("staging_path"),
                staging_location: value("staging_location"),
                combine_mode: value("combine_mode"),
                recovery_conf_filename: value("recovery_conf_filename"),
                recovery_option_port: value("recovery_option_port"),
                restore_command: value("restore_command"),
                delta_restore: matched.last_of("delta_restore", "no_delta_restore"),
                snapshot_recovery_instance: value("snapshot_recovery_instance"),
                snapshot_recovery_zone: value("snapshot_recovery_zone"),
                gcp_zone: value("gcp_zone"),
                azure_resource_group: value("azure_resource_group"),
                aws_region: value("aws_region"),
            }))
        }
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
            let compression = matched.values.iter().rev().find_map(|(k, _)| match *k {
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
                "barman: error: argument command: invalid choice: 'bogus' (choose from 'archive-wal', 'backup', 'check', 'cron', 'delete', 'get-wal', 'keep', 'list-backup', 'list-backups', 'list-server', 'list-servers', 'put-wal', 'recover', 'restore', 'show-backup', 'show-backups', 'status', 'switch-wal', 'switch-xlog')\n",
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

    #[test]
    fn backup_catalog_and_recover_commands() {
        let parsed = parse(&args(&[
            "backup",
            "--name",
            "nightly",
            "-w",
            "--reuse-backup",
            "--no-immediate-checkpoint",
            "--immediate-checkpoint",
            "-j",
            "3",
            "pg",
            "pg2",
        ]))
        .unwrap();
        let Some(Command::Backup(backup)) = parsed.command else {
            panic!("{parsed:?}")
        };
        assert_eq!(backup.servers, ["pg", "pg2"]);
        assert_eq!(backup.name.as_deref(), Some("nightly"));
        assert!(backup.wait);
        assert_eq!(backup.reuse_backup.as_deref(), Some("link"));
        assert_eq!(backup.immediate_checkpoint, Some(true));
        assert_eq!(backup.jobs, Some(3));
        let parsed = parse(&args(&[
            "recover",
            "--target-time",
            "2026-01-01 00:00:00",
            "--no-get-wal",
            "--tablespace",
            "a:/x",
            "--tablespace",
            "b:/y",
            "--target-tli",
            "latest",
            "--snapshot-recovery-instance",
            "i-1",
            "pg",
            "latest",
            "/dest",
        ]))
        .unwrap();
        let Some(Command::Recover(recover)) = parsed.command else {
            panic!("{parsed:?}")
        };
        assert_eq!(recover.destination, "/dest");
        assert_eq!(recover.get_wal, Some(false));
        assert_eq!(recover.tablespaces, ["a:/x", "b:/y"]);
        assert_eq!(recover.target_tli.as_deref(), Some("latest"));
        assert_eq!(recover.snapshot_recovery_instance.as_deref(), Some("i-1"));
        assert_eq!(
            parse(&args(&["keep", "-s", "pg", "last"])).unwrap().command,
            Some(Command::Keep {
                server: "pg".into(),
                backup_id: "last".into(),
                release: false,
                status: true,
                target: None,
            })
        );
        for (line, expected) in [
            (
                vec!["backup", "--reuse-backup", "pg"],
                "barman backup: error: argument --reuse-backup: invalid choice: 'pg' (choose from 'copy', 'link', 'off')\n",
            ),
            (
                vec!["backup", "--name", "latest", "pg"],
                "barman backup: error: argument --name: Backup name 'latest' is not allowed: reserved word\n",
            ),
            (
                vec!["recover", "pg", "latest"],
                "barman restore: error: the following arguments are required: destination_directory\n",
            ),
            (
                vec!["show-backup", "pg", "latest", "extra"],
                "barman: error: unrecognized arguments: extra\n",
            ),
        ] {
            match parse(&args(&line)) {
                Err(Stop::Usage(text)) => assert!(text.ends_with(expected), "{line:?}: {text}"),
                other => panic!("{line:?}: {other:?}"),
            }
        }
    }
}
