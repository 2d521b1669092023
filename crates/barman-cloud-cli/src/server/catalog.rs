//! The catalog commands: `list-backups`, `show-backup`, `keep`. The server is picked as
//! Barman picks it for them (inactive and disabled servers are served too), the catalog is
//! read and judged by `barman_cloud::server::catalog_view`, and the result written by
//! Barman's console or JSON writer.

use barman_cloud::Error;
use barman_cloud::catalog::pyliteral::repr_str;
use barman_cloud::catalog::{BackupStatus, PyDict, PyValue};
use barman_cloud::catalog_store::{CatalogStore, KeepTarget};
use barman_cloud::server::catalog_view::{
    ServerCatalog, ShowError, list_json, list_line, resolve_backup, show_json, show_lines,
};
use barman_cloud::server::config::Config;
use barman_cloud::server::home::{HomeCatalog, ServerHome};

use super::args::Format;
use super::check::{runtime, select_servers};
use super::emit;
use super::output::Output;
use super::wal::{CATALOG, get_server};

fn now() -> barman_cloud::catalog::Timestamp {
    chrono::Utc::now().fixed_offset()
}

/// An unexpected failure, as Barman's main loop reports exceptions.
fn exception(error: &Error, out: &mut Output) -> u8 {
    out.exception(
        &format!("{error}\nSee log file for more details."),
        "barman.cli",
    );
    out.close()
}

/// Barman's message for an xlog.db name it cannot decode: the text of its
/// `BadXlogSegmentName` exception (`BadXlogSegmentName:<name>`), quoted.
fn bad_wal_hint(word: &str, name: &str, server: &str) -> String {
    format!(
        "invalid {word} segment name {}\nHINT: Please run \"barman rebuild-xlogdb {server}\" \
         to solve this issue",
        repr_str(&format!("BadXlogSegmentName:{name}"))
    )
}

pub(super) fn list_backups_command(
    config: &Config,
    servers: &[String],
    minimal: bool,
    out: &mut Output,
) -> u8 {
    let servers = match select_servers(config, servers, false, out) {
        Ok(servers) => servers,
        Err(code) => return code,
    };
    for (name, server) in servers {
        let Some(mut server) = server else {
            out.error(&format!("Unknown server '{name}'"), "barman.cli");
            continue;
        };
        emit(server.initialise(), out);
        let catalog = match ServerCatalog::load(&server, now()) {
            Ok(catalog) => catalog,
            Err(error) => return exception(&error, out),
        };
        let (rows, bad_names) = catalog.list_rows();
        for bad in &bad_names {
            out.error(&bad_wal_hint("WAL", &bad.0, &name), "barman.server");
        }
        match out.format {
            Format::Console => {
                for row in &rows {
                    if minimal {
                        out.info(row.info.backup_id.as_deref().unwrap_or("None"));
                    } else {
                        out.info(&list_line(row));
                    }
                }
            }
            Format::Json => {
                let items = rows
                    .iter()
                    .map(|row| {
                        if minimal {
                            row.info
                                .backup_id
                                .clone()
                                .map_or(PyValue::None, PyValue::Str)
                        } else {
                            list_json(row)
                        }
                    })
                    .collect();
                out.json_result(&name, PyValue::List(items));
            }
        }
    }
    out.close()
}

pub(super) fn show_backup_command(
    config: &Config,
    server: &str,
    backup_id: &str,
    out: &mut Output,
) -> u8 {
    let server = match get_server(config, server, CATALOG, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let catalog = match ServerCatalog::load(&server, now()) {
        Ok(catalog) => catalog,
        Err(error) => return exception(&error, out),
    };
    let home = ServerHome::from_config(&server);
    let info = match resolve_backup(&home, &catalog.backups, backup_id, &server.name) {
        Ok(info) => info,
        Err(error) => {
            out.error(&error.to_string(), "barman.cli");
            return out.close();
        }
    };
    let copy_done = info.status.as_ref().is_some_and(BackupStatus::is_copy_done);
    let ext = if copy_done {
        match catalog.ext_info(info) {
            Ok(ext) => Some(ext),
            Err(ShowError::BadWalName(name)) => {
                out.error(&bad_wal_hint("xlog", &name, &server.name), "barman.server");
                return out.close();
            }
            Err(ShowError::Other(error)) => return exception(&error, out),
        }
    } else {
        None
    };
    let server_name = info.server_name.clone().unwrap_or(server.name.clone());
    match out.format {
        Format::Console => match show_lines(info, &server_name, ext.as_ref()) {
            Ok(lines) => {
                for line in lines {
                    out.info(&line);
                }
            }
            Err(error) => return exception(&error, out),
        },
        Format::Json => match show_json(info, ext.as_ref()) {
            Ok(value) => out.json_result(&server_name, value),
            Err(error) => return exception(&error, out),
        },
    }
    out.close()
}

/// The keep annotation as Barman's `get_keep_target` reads it: the whole file, from
/// `meta/` or the pre-3.13.3 location.
fn keep_text(home: &ServerHome, backup_id: &str) -> Option<String> {
    [
        home.keep_annotation(backup_id),
        home.legacy_keep_annotation(backup_id),
    ]
    .iter()
    .find_map(|path| std::fs::read(path).ok())
    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

pub(super) fn keep_command(
    config: &Config,
    server: &str,
    backup_id: &str,
    release: bool,
    status: bool,
    target: Option<&str>,
    out: &mut Output,
) -> u8 {
    if !release && !status && target.is_none() {
        out.error(
            "one of the arguments -r/--release -s/--status --target is required",
            "barman.cli",
        );
        return out.close();
    }
    let server = match get_server(config, server, CATALOG, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let home = ServerHome::from_config(&server);
    let backups = barman_cloud::server::home::load_backups(&home);
    let info = match resolve_backup(&home, &backups, backup_id, &server.name) {
        Ok(info) => info,
        Err(error) => {
            out.error(&error.to_string(), "barman.cli");
            return out.close();
        }
    };
    let id = info.backup_id.clone().unwrap_or_default();
    let catalog = HomeCatalog::new(&home);
    let runtime = runtime();
    if status {
        let target = keep_text(&home, &id)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "nokeep".to_string());
        match out.format {
            Format::Console => {
                out.info(&format!("Server {}:", server.name));
                out.info(&format!("\tKeep: {target}"));
            }
            Format::Json => {
                let mut entry = PyDict::new();
                entry.set("description", PyValue::str("Keep"));
                entry.set("message", PyValue::str(target));
                let mut dict = PyDict::new();
                dict.set("keep_status", PyValue::Dict(entry));
                out.json_result(&server.name, PyValue::Dict(dict));
            }
        }
        return out.close();
    }
    if release {
        if let Err(error) = runtime.block_on(catalog.remove_keep(&id)) {
            return exception(&error, out);
        }
        // Barman then removes the annotation directory if that left it empty.
        let _ = std::fs::remove_dir(&home.meta);
        return out.close();
    }
    if info.status != Some(BackupStatus::Done) {
        let status = info
            .status
            .as_ref()
            .map_or("None".to_string(), |s| s.as_str().to_string());
        out.error(
            &format!(
                "Cannot add keep to backup {id} because it has status {status}. Only backups \
                 with status DONE can be kept."
            ),
            "barman.cli",
        );
        return out.close();
    }
    if info.parent_backup_id.is_some() {
        out.error(
            &format!(
                "Unable to execute the keep command on backup {id}: is an incremental \
                 backup.\nOnly full backups are eligible for the use of the keep command."
            ),
            "barman.cli",
        );
        return out.close();
    }
    let target = match target {
        Some("standalone") => KeepTarget::Standalone,
        _ => KeepTarget::Full,
    };
    if let Err(error) = runtime.block_on(catalog.write_keep(&id, target)) {
        return exception(&error, out);
    }
    out.close()
}
