//! `barman check SERVER... [--nagios]`: each server's checks (`barman_cloud::server::check`)
//! written as Barman's console, JSON or Nagios writer writes them, exit 1 when a check of
//! an active server failed (2 with `--nagios`).

use std::collections::BTreeMap;

use barman_cloud::Error;
use barman_cloud::catalog::{PyDict, PyValue};
use barman_cloud::server::check::{
    CheckContext, CheckResult, Switch, check_server, switch_wal, wait_for_wal,
};
use barman_cloud::server::config::{Config, ServerConfig};

use super::args::Format;
use super::output::Output;
use super::wal::{archive_paths, archive_settings};
use super::{emit, report_stop};

/// One recorded result, for the Nagios summary.
struct Recorded {
    server: String,
    result: CheckResult,
}

/// Barman's `_mangle_key` for JSON keys.
fn mangle(check: &str) -> String {
    check
        .to_lowercase()
        .replace([' ', '-'], "_")
        .replace('.', "")
}

pub(super) fn check_command(
    config: &Config,
    names: &[String],
    nagios: bool,
    check_timeout: Option<i64>,
    out: &mut Output,
) -> u8 {
    if nagios {
        out.nagios = true;
        out.format = Format::Console;
    }
    let mut recorded: Vec<Recorded> = Vec::new();
    let code = run_checks(config, names, check_timeout, out, &mut recorded);
    if nagios {
        return nagios_close(&recorded, out);
    }
    code.unwrap_or_else(|| out.close())
}

pub(super) type Selected = BTreeMap<String, Option<ServerConfig>>;

/// Barman's `get_server_list`: the named servers (or all with `all`, the only name
/// allowed then; inactive ones left out with `skip_inactive`), by name, `None` for
/// unknown names. Configuration errors stop the command.
pub(super) fn select_servers(
    config: &Config,
    names: &[String],
    skip_inactive: bool,
    out: &mut Output,
) -> Result<Selected, u8> {
    let mut warnings = Vec::new();
    let configs = config.server_configs(&mut warnings);
    emit(warnings, out);
    let configs = configs.map_err(|error| report_stop(&error, out))?;
    if !configs.errors.is_empty() {
        for error in &configs.errors {
            out.error(error, "barman.cli");
        }
        return Err(out.close());
    }
    let mut servers: Selected = BTreeMap::new();
    if names.iter().any(|n| n == "all") {
        if names.len() != 1 {
            out.error("You cannot use 'all' with other server names", "barman.cli");
        }
        for server in configs.servers {
            if skip_inactive && !server.active {
                continue;
            }
            servers.insert(server.name.clone(), Some(server));
        }
    } else {
        let mut all = configs.servers;
        for name in names {
            let found = all
                .iter()
                .position(|s| s.name == *name)
                .map(|i| all.swap_remove(i));
            servers.entry(name.clone()).or_insert(found);
        }
    }
    Ok(servers)
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
}

/// `switch-wal SERVER... [--force] [--archive] [--archive-timeout S]`.
pub(super) fn switch_wal_command(
    config: &Config,
    names: &[String],
    force: bool,
    archive: bool,
    archive_timeout: i64,
    out: &mut Output,
) -> u8 {
    let servers = match select_servers(config, names, true, out) {
        Ok(servers) => servers,
        Err(code) => return code,
    };
    let runtime = runtime();
    for (name, server) in servers {
        let Some(mut server) = server else {
            out.error(&format!("Unknown server '{name}'"), "barman.cli");
            continue;
        };
        emit(server.initialise(), out);
        if !server.active {
            continue;
        }
        if server.disabled {
            if let Some(first) = server.msg_list.first() {
                out.error(first, "barman.cli");
            }
            continue;
        }
        let closed = match runtime.block_on(switch_wal(&server, force)) {
            Switch::Closed(wal) => {
                out.info(&format!(
                    "The WAL file {wal} has been closed on server '{name}'"
                ));
                Some(wal)
            }
            Switch::NotNeeded => {
                out.info(&format!("No switch required for server '{name}'"));
                None
            }
            Switch::Standby => {
                out.info(&format!(
                    "No switch performed because server '{name}' is a standby."
                ));
                None
            }
            Switch::Failed => {
                out.error(
                    &format!("Unable to perform pg_switch_wal for server '{name}'."),
                    "barman.server",
                );
                continue;
            }
            Switch::CheckpointRefused => {
                out.error(
                    "Barman switch-wal --force requires superuser rights or the \
                     'pg_checkpoint' role",
                    "barman.server",
                );
                continue;
            }
        };
        if !archive {
            continue;
        }
        let max = if archive_timeout > 0 {
            format!(" (max: {archive_timeout} seconds)")
        } else {
            String::new()
        };
        match &closed {
            Some(wal) => out.info(&format!(
                "Waiting for the WAL file {wal} from server '{name}'{max}"
            )),
            None => out.info(&format!(
                "Waiting for a WAL file from server '{name}' to be archived{max}"
            )),
        }
        let paths = archive_paths(&server);
        let settings = archive_settings(&server).ok().filter(|_| server.archiver);
        let timeout = (archive_timeout > 0)
            .then(|| std::time::Duration::from_secs(archive_timeout.unsigned_abs()));
        let mut lines = Vec::new();
        let arrived = runtime.block_on(wait_for_wal(
            &paths,
            settings.as_ref(),
            closed.as_deref(),
            timeout,
            |new| lines.extend(new),
        ));
        for line in lines {
            out.info(&line);
        }
        if !arrived {
            match &closed {
                Some(wal) => out.error(
                    &format!(
                        "The WAL file {wal} has not been received in {archive_timeout} seconds"
                    ),
                    "barman.server",
                ),
                None => out.info(&format!(
                    "A WAL file has not been received in {archive_timeout} seconds"
                )),
            }
        }
    }
    out.close()
}

/// Runs the checks; `Some(code)` when Barman stops before the end.
fn run_checks(
    config: &Config,
    names: &[String],
    check_timeout: Option<i64>,
    out: &mut Output,
    recorded: &mut Vec<Recorded>,
) -> Option<u8> {
    let servers = match select_servers(config, names, false, out) {
        Ok(servers) => servers,
        Err(code) => return Some(code),
    };
    let runtime = runtime();
    for (name, server) in servers {
        let Some(mut server) = server else {
            out.error(&format!("Unknown server '{name}'"), "barman.cli");
            continue;
        };
        emit(server.initialise(), out);
        if let Some(timeout) = check_timeout {
            server.check_timeout = timeout;
        }
        let mut header = name.clone();
        if !server.active {
            header.push_str(" (inactive)");
        } else if server.disabled {
            header.push_str(" (WARNING: disabled)");
        }
        if out.format == Format::Console {
            out.info(&format!("Server {header}:"));
        }
        let ctx = CheckContext {
            server: &server,
            paths: archive_paths(&server),
            archive: archive_settings(&server).ok(),
        };
        let run = runtime.block_on(check_server(&ctx));
        let mut json = BTreeMap::new();
        for result in run.results {
            report(&name, &result, server.active, out);
            if out.format == Format::Json {
                let mut entry = PyDict::new();
                entry.set(
                    "hint",
                    PyValue::str(result.hint.clone().unwrap_or_default()),
                );
                entry.set(
                    "status",
                    PyValue::str(if result.status { "OK" } else { "FAILED" }),
                );
                json.insert(mangle(&result.check), PyValue::Dict(entry));
            }
            recorded.push(Recorded {
                server: name.clone(),
                result,
            });
        }
        if out.format == Format::Json {
            let mut dict = PyDict::new();
            for (key, value) in json {
                dict.set(&key, value);
            }
            out.json_result(&name, PyValue::Dict(dict));
        }
        if let Some(error) = run.fatal {
            match error {
                Error::Failed(message) => out.error(&message, "barman.fs"),
                // Barman's main loop: the exception, then where to look.
                other => out.exception(
                    &format!("{other}\nSee log file for more details."),
                    "barman.cli",
                ),
            }
            return if out.nagios { None } else { Some(out.close()) };
        }
    }
    None
}

/// Barman's `result_check`: the console line, and the failure of an active server.
fn report(server: &str, result: &CheckResult, active: bool, out: &mut Output) {
    let status = if result.status { "OK" } else { "FAILED" };
    if !result.status {
        out.log.record(
            40,
            "barman.server",
            &format!("Check '{}' failed for server '{server}'", result.check),
        );
        if active {
            out.error_occurred = true;
        }
    }
    // The JSON writer records results without printing them.
    if out.format == Format::Console {
        match &result.hint {
            Some(hint) if !hint.is_empty() => {
                out.info(&format!("\t{}: {status} ({hint})", result.check))
            }
            _ => out.info(&format!("\t{}: {status}", result.check)),
        }
    }
    for line in &result.details {
        out.info(line);
    }
}

/// Barman's Nagios writer at close: one summary line (and the failures), exit 2 when
/// critical.
fn nagios_close(recorded: &[Recorded], out: &mut Output) -> u8 {
    let mut servers: Vec<&str> = Vec::new();
    let mut issues: Vec<&str> = Vec::new();
    let mut perf: Vec<String> = Vec::new();
    for item in recorded {
        if !servers.contains(&item.server.as_str()) {
            servers.push(&item.server);
        }
        if !item.result.status && !issues.contains(&item.server.as_str()) {
            issues.push(&item.server);
        }
        let size = item.result.perfdata.unwrap_or(0);
        match item.result.check.as_str() {
            "backup minimum size" => perf.push(format!("{}={size}B", item.server)),
            "wal size" => perf.push(format!("{}_wals={size}B", item.server)),
            _ => {}
        }
    }
    let perf_message = if perf.is_empty() {
        String::new()
    } else {
        format!("|{}", perf.join(" "))
    };
    let print = |line: String| {
        let _ = crate::exit::Stdout::print(&format!("{line}\n"));
    };
    if issues.is_empty() && out.error_occurred {
        print("BARMAN CRITICAL - Global configuration errors".into());
        return 2;
    }
    if !issues.is_empty() && out.error_occurred {
        let mut summary = Vec::new();
        let mut details = Vec::new();
        for server in &issues {
            let failed: Vec<&Recorded> = recorded
                .iter()
                .filter(|r| r.server == *server && !r.result.status)
                .collect();
            summary.push(format!(
                "{server} FAILED: {}",
                failed
                    .iter()
                    .map(|r| r.result.check.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for r in failed {
                let mut line = format!("{server}.{}: FAILED", r.result.check);
                if let Some(hint) = r.result.hint.as_deref().filter(|h| !h.is_empty()) {
                    line.push_str(&format!(" ({hint})"));
                }
                details.push(line);
            }
        }
        if servers.len() == 1 {
            print(format!(
                "BARMAN CRITICAL - server {} has issues * {}{perf_message}",
                servers[0],
                summary.join(" * ")
            ));
        } else {
            print(format!(
                "BARMAN CRITICAL - {} server out of {} have issues * {}{perf_message}",
                issues.len(),
                servers.len(),
                summary.join(" * ")
            ));
        }
        for line in details {
            print(line);
        }
        return 2;
    }
    let ignoring: String = issues.iter().map(|i| format!(" * IGNORING: {i}")).collect();
    let good: Vec<&str> = servers
        .iter()
        .filter(|s| !issues.contains(s))
        .copied()
        .collect();
    match good.len() {
        0 => print(format!("BARMAN OK - No server configured{ignoring}")),
        1 => print(format!(
            "BARMAN OK - Ready to serve the Espresso backup for {}{ignoring}{perf_message}",
            good[0]
        )),
        n => print(format!(
            "BARMAN OK - Ready to serve the Espresso backup for {n} servers * {}{ignoring}{perf_message}",
            good.join(" * ")
        )),
    }
    0
}
