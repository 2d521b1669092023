//! barman-rs: one multicall binary for the nine `barman-cloud-*` commands.
//!
//! The command is chosen by the name the binary is called with (install creates one link
//! per command), or by the first argument (`barman-rs barman-cloud-wal-archive ...` or
//! `barman-rs wal-archive ...`). One binary keeps the install small and the build to a
//! single link step.

mod argparse;
mod args;
mod commands;
mod exit;
mod logging;
mod progress;
mod secrets;
mod server;
mod wal_clients;

use std::ffi::OsString;
use std::process::ExitCode;

use args::{
    BackupArgs, BackupDeleteArgs, BackupKeepArgs, BackupListArgs, BackupShowArgs,
    CheckWalArchiveArgs, RestoreArgs, WalArchiveArgs, WalRestoreArgs,
};

/// What `--version` of every command prints after the command name, exactly as Barman
/// does: clients parse it (CloudNativePG reads `barman-cloud.* (?P<Version>.*)` as a
/// semantic version and switches features on by it), so nothing may follow it.
const BARMAN_VERSION: &str = "3.20.1";

/// Our own version, shown by `barman-rs --version` and at the end of every `--help`.
const OWN_VERSION: &str = concat!(
    "barman-rs ",
    env!("CARGO_PKG_VERSION"),
    " (compatible with Barman 3.20.1)"
);

pub const COMMANDS: [&str; 9] = [
    "barman-cloud-backup",
    "barman-cloud-backup-delete",
    "barman-cloud-backup-keep",
    "barman-cloud-backup-list",
    "barman-cloud-backup-show",
    "barman-cloud-check-wal-archive",
    "barman-cloud-restore",
    "barman-cloud-wal-archive",
    "barman-cloud-wal-restore",
];

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    secrets::init(&argv);
    let invoked = argv
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    // The `barman` server front-end has its own argument conventions (argparse's).
    if invoked == "barman" {
        return server::main(argv);
    }
    if argv.get(1).is_some_and(|a| a == "barman") {
        argv.remove(0);
        return server::main(argv);
    }
    // barman-wal-archive and barman-wal-restore, the clients of a barman server.
    if wal_clients::NAMES.contains(&invoked.as_str()) {
        return wal_clients::main(&invoked, argv);
    }
    if let Some(name) = argv
        .get(1)
        .and_then(|a| wal_clients::NAMES.iter().find(|n| a.as_os_str() == **n))
    {
        argv.remove(0);
        return wal_clients::main(name, argv);
    }
    let command = if COMMANDS.contains(&invoked.as_str()) {
        invoked
    } else {
        let requested = argv.get(1).map(|a| a.to_string_lossy().into_owned());
        let resolved = requested.as_deref().and_then(|name| {
            let full = if name.starts_with("barman-cloud-") {
                name.to_string()
            } else {
                format!("barman-cloud-{name}")
            };
            COMMANDS.contains(&full.as_str()).then_some(full)
        });
        match resolved {
            Some(name) => {
                argv.remove(0);
                name
            }
            None if matches!(requested.as_deref(), Some("--version" | "-V")) => {
                return finish(
                    exit::Stdout::print(&format!("{OWN_VERSION}\n")),
                    exit::ExitRules::DEFAULT,
                );
            }
            None => {
                exit::eprint_line(&format!(
                    "{OWN_VERSION}\n\nusage: barman-rs COMMAND [ARGS...]\n       barman-rs --version\n\nCOMMAND is one of:\n  {}\n\nor run the command links installed next to barman-rs.",
                    COMMANDS.join("\n  ")
                ));
                return ExitCode::from(3);
            }
        }
    };
    run(&command, argv)
}

fn parse<T: clap::Parser>(name: &str, argv: Vec<OsString>) -> Result<T, ExitCode> {
    let cmd = T::command()
        .name(name.to_string())
        .bin_name(name.to_string())
        .version(BARMAN_VERSION)
        .after_help(OWN_VERSION);
    cmd.try_get_matches_from(argv)
        .and_then(|matches| T::from_arg_matches(&matches))
        .map_err(|e| exit::report_usage(&e))
}

/// WAL commands run on one thread (start-up time matters most); backup and restore
/// sign, checksum and move many parts concurrently, so they get a worker per core.
fn runtime(command: &str) -> tokio::runtime::Runtime {
    let mut builder = if matches!(command, "barman-cloud-backup" | "barman-cloud-restore") {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
}

fn finish(result: barman_cloud::Result<()>, rules: exit::ExitRules) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => exit::report(&error, rules),
    }
}

fn run(command: &str, argv: Vec<OsString>) -> ExitCode {
    macro_rules! dispatch {
        ($args:ty, $run:path) => {{
            let args: $args = match parse(command, argv) {
                Ok(args) => args,
                Err(code) => return code,
            };
            logging::init(args.common.verbose, args.common.quiet);
            let rules = exit::ExitRules::for_command(command, args.common.test);
            finish(runtime(command).block_on($run(args)), rules)
        }};
    }
    match command {
        "barman-cloud-wal-archive" => dispatch!(WalArchiveArgs, commands::wal_archive),
        "barman-cloud-wal-restore" => dispatch!(WalRestoreArgs, commands::wal_restore),
        "barman-cloud-restore" => dispatch!(RestoreArgs, commands::restore),
        "barman-cloud-backup" => dispatch!(BackupArgs, commands::backup),
        "barman-cloud-backup-list" => dispatch!(BackupListArgs, commands::backup_list),
        "barman-cloud-backup-show" => dispatch!(BackupShowArgs, commands::backup_show),
        "barman-cloud-backup-delete" => dispatch!(BackupDeleteArgs, commands::backup_delete),
        "barman-cloud-backup-keep" => dispatch!(BackupKeepArgs, commands::backup_keep),
        "barman-cloud-check-wal-archive" => {
            dispatch!(CheckWalArchiveArgs, commands::check_wal_archive)
        }
        _ => unreachable!("{command} is not one of COMMANDS"),
    }
}
