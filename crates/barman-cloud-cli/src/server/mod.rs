//! The `barman` command (Barman's server front-end): global options, configuration,
//! privileges, logging and output set up in Barman's order, then one command. Commands
//! are siblings in [`args::Command`] and [`run_command`]; the work is in
//! `barman_cloud::server`.

mod args;
mod backup;
mod catalog;
mod check;
mod delete;
mod output;
mod privileges;
mod recover;
mod status;
mod wal;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use barman_cloud::Error;
use barman_cloud::catalog::{PyDict, PyValue};
use barman_cloud::server::config::{self, Config, Warning};

use args::{Color, Command, GlobalArgs, Stop};
use output::Output;

/// Exit code of argument errors (argparse).
const USAGE: u8 = 2;
/// Exit code when Barman stops on an error.
const FAILED: u8 = 1;

pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let parsed = match args::parse(&args) {
        Ok(parsed) => parsed,
        Err(Stop::Version(text) | Stop::Help(text)) => {
            let _ = crate::exit::Stdout::print(&text);
            return ExitCode::SUCCESS;
        }
        Err(Stop::Usage(text)) => {
            eprint!("{text}");
            return ExitCode::from(USAGE);
        }
    };
    let mut out = Output::new();
    let code = match start(&parsed, &mut out) {
        Ok(config) => match &parsed.command {
            Some(command) => run_command(command, &config, &mut out),
            None => {
                let _ = crate::exit::Stdout::print(&args::help());
                out.close()
            }
        },
        Err(code) => code,
    };
    ExitCode::from(code)
}

/// Prints how the configuration stage stopped, as Barman does, and gives the exit code.
fn report_stop(error: &Error, out: &mut Output) -> u8 {
    match error {
        // Barman's own words, printed as they are (`sys.exit(message)`).
        Error::Config(text) => {
            if let Some(fatal) = text.strip_prefix("FATAL: ") {
                out.log.record(output::CRITICAL, "barman.config", fatal);
            }
            eprintln!("{text}");
            FAILED
        }
        other => {
            out.exception(&other.to_string(), "barman.cli");
            out.close().max(FAILED)
        }
    }
}

fn emit(warnings: Vec<Warning>, out: &mut Output) {
    for warning in warnings {
        if warning.shown {
            out.warning(&warning.message, warning.logger);
        } else {
            out.log
                .record(output::WARNING, warning.logger, &warning.message);
        }
    }
}

/// Barman's `global_config`: configuration, privileges, logging, output writer, included
/// files, global validation.
fn start(args: &GlobalArgs, out: &mut Output) -> Result<Config, u8> {
    let mut config =
        Config::load_for_command(args.config.as_deref()).map_err(|e| report_stop(&e, out))?;
    match privileges::drop_to(&config.barman_user) {
        Ok(()) => {}
        Err(privileges::Refusal::UnknownUser) => {
            eprintln!(
                "ERROR: the configured user {} does not exists",
                barman_cloud::catalog::pyliteral::repr_str(&config.barman_user)
            );
            return Err(FAILED);
        }
        Err(privileges::Refusal::NotPermitted) => {
            eprintln!(
                "ERROR: please run barman as {} user",
                barman_cloud::catalog::pyliteral::repr_str(&config.barman_user)
            );
            return Err(FAILED);
        }
    }
    if let Some(level) = &args.log_level {
        config.log_level = level.clone();
    }
    let level = config::parse_log_level(&config.log_level);
    let failed_file = out.log.configure(
        config.log_file.as_deref(),
        level.unwrap_or(20),
        &config.log_format,
    );
    if failed_file {
        out.log.record(
            output::WARNING,
            "barman.utils",
            "Failed opening the requested log file. Using standard error instead.",
        );
    }
    if level.is_none() {
        out.log.record(
            output::WARNING,
            "barman.cli",
            &format!("unknown log_level in config file: {}", config.log_level),
        );
    }
    let colors = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    };
    out.set_writer(args.format, args.quiet, colors);
    let mut warnings = Vec::new();
    let loaded = config.load_included_files(&mut warnings);
    emit(warnings, out);
    loaded.map_err(|e| report_stop(&e, out))?;
    let mut warnings = Vec::new();
    let validated = config.validate_global(&mut warnings);
    if let Err(Error::Config(text)) = &validated
        && let Some((error_line, rest)) = text.split_once('\n')
        && let Some(message) = error_line.strip_prefix("ERROR: ")
    {
        out.error(message, "barman.config");
        eprintln!("{rest}");
        return Err(FAILED);
    }
    emit(warnings, out);
    validated.map_err(|e| report_stop(&e, out))?;
    Ok(config)
}

fn run_command(command: &Command, config: &Config, out: &mut Output) -> u8 {
    match command {
        Command::ListServers { minimal } => list_servers(config, *minimal, out),
        Command::PutWal { server, test } => wal::put_wal_command(config, server, *test, out),
        Command::ArchiveWal { server } => wal::archive_wal_command(config, server, out),
        Command::GetWal(args) => wal::get_wal_command(config, args, out),
        Command::Cron { keep_descriptors } => wal::cron_command(config, *keep_descriptors, out),
        Command::Check {
            servers,
            nagios,
            check_timeout,
        } => check::check_command(config, servers, *nagios, *check_timeout, out),
        Command::Status { servers } => status::status_command(config, servers, out),
        Command::SwitchWal {
            servers,
            force,
            archive,
            archive_timeout,
        } => check::switch_wal_command(config, servers, *force, *archive, *archive_timeout, out),
        Command::Backup(args) => backup::backup_command(config, args, out),
        Command::ListBackups { servers, minimal } => {
            catalog::list_backups_command(config, servers, *minimal, out)
        }
        Command::ShowBackup { server, backup_id } => {
            catalog::show_backup_command(config, server, backup_id, out)
        }
        Command::Keep {
            server,
            backup_id,
            release,
            status,
            target,
        } => catalog::keep_command(
            config,
            server,
            backup_id,
            *release,
            *status,
            target.as_deref(),
            out,
        ),
        Command::Delete { server, backup_id } => {
            delete::delete_command(config, server, backup_id, out)
        }
        Command::Recover(args) => recover::recover_command(config, args, out),
    }
}

/// `list-servers`: every server, sorted by name, with its description and state.
fn list_servers(config: &Config, minimal: bool, out: &mut Output) -> u8 {
    let mut warnings = Vec::new();
    let configs = config.server_configs(&mut warnings);
    emit(warnings, out);
    let configs = match configs {
        Ok(configs) => configs,
        Err(error) => return report_stop(&error, out),
    };
    if !configs.errors.is_empty() {
        for error in &configs.errors {
            out.error(error, "barman.cli");
        }
        return out.close();
    }
    let mut servers = configs.servers;
    for server in &mut servers {
        let warnings = server.initialise();
        emit(warnings, out);
    }
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    for server in &servers {
        let mut description = server.description.clone().unwrap_or_default();
        if !server.active {
            description.push_str(" (inactive)");
        } else if server.disabled {
            description.push_str(" (WARNING: disabled)");
        }
        if server.passive_node {
            description.push_str(" (Passive)");
        }
        match out.format {
            args::Format::Json => {
                let mut entry = PyDict::new();
                entry.set("description", PyValue::str(description));
                out.json_result(&server.name, PyValue::Dict(entry));
            }
            args::Format::Console if minimal || description.is_empty() => out.info(&server.name),
            args::Format::Console => out.info(&format!("{} - {description}", server.name)),
        }
    }
    out.close()
}
