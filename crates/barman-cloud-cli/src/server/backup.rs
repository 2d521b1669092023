//! `barman backup SERVER... [options]` of `backup_method = snapshot` servers: each server
//! picked as Barman's `cli.backup` picks them (sorted, inactive and passive ones skipped,
//! disabled ones refused), the command line laid over the configuration, then
//! `barman_cloud::server::backup::backup_server`.
//!
//! Options Barman takes but a snapshot backup does not use are accepted and ignored as
//! Barman 3.20.1 ignores them: `--bwlimit`, `--jobs`, `--jobs-start-batch-*`, `--retry-*`,
//! `--no-retry`, `--manifest`/`--no-manifest`, `--cloud-staging-*` (the configuration's
//! `bandwidth_limit`/`reuse_backup = copy|link` disable the server, but the command-line
//! overrides come after that validation); `--reuse-backup link` only changes the size
//! line. `--incremental` is refused as Barman refuses it.

use std::cell::RefCell;

use barman_cloud::server::backup::{
    BackupResult, Reporter, ServerBackupRequest, backup_server, incremental_refusal,
};
use barman_cloud::server::backup_id;
use barman_cloud::server::config::{Config, ServerConfig, Value};
use barman_cloud::server::home::{ServerHome, load_backups};

use super::args::BackupArgs;
use super::check::{runtime, select_servers};
use super::emit;
use super::output::Output;
use super::wal::archive_settings;

/// The output writer as the library's [`Reporter`].
pub(super) struct OutputReporter<'a> {
    pub out: RefCell<&'a mut Output>,
    pub logger: &'static str,
}

impl Reporter for OutputReporter<'_> {
    /// Printed and, as Barman's `output.info` does, logged.
    fn info(&self, text: &str) {
        let mut out = self.out.borrow_mut();
        out.info(text);
        out.log.record(20, self.logger, text);
    }

    fn warning(&self, text: &str) {
        self.out.borrow_mut().warning(text, self.logger);
    }

    fn error(&self, text: &str) {
        self.out.borrow_mut().error(text, self.logger);
    }

    fn log(&self, level: i64, text: &str) {
        self.out.borrow().log.record(level, self.logger, text);
    }
}

pub(super) fn backup_command(config: &Config, args: &BackupArgs, out: &mut Output) -> u8 {
    let servers = match select_servers(config, &args.servers, true, out) {
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
        if !server.active || server.passive_node {
            continue;
        }
        if server.disabled {
            if let Some(first) = server.msg_list.first() {
                out.error(first, "barman.cli");
            }
            continue;
        }
        // Not a Barman message: barman-rs takes snapshot backups only, and must not start
        // another method's work half-way.
        if server.backup_method != "snapshot" {
            out.error(
                &format!(
                    "barman-rs takes snapshot backups only (backup_method = snapshot); server \
                     '{name}' has backup_method = {}",
                    server.backup_method
                ),
                "barman.cli",
            );
            continue;
        }
        if let Some(wanted) = &args.incremental {
            let backups = load_backups(&ServerHome::from_config(&server));
            if let Err(error) = backup_id::resolve(&backups, wanted, &name) {
                let message = match error {
                    barman_cloud::Error::UnknownBackup(message) => message,
                    other => other.to_string(),
                };
                out.error(&message, "barman.cli");
                return out.close();
            }
            let reason = runtime.block_on(incremental_refusal(&server));
            out.error(
                &format!("failed to start backup: {reason}"),
                "barman.server",
            );
            continue;
        }
        let request = request_for(config, &server, args);
        let archive = archive_settings(&server).ok();
        let reporter = OutputReporter {
            out: RefCell::new(out),
            logger: "barman.backup",
        };
        let result = runtime.block_on(backup_server(&server, archive, &request, &reporter));
        let out = reporter.out.into_inner();
        match result {
            Ok(BackupResult::Ran(_) | BackupResult::Refused) => {}
            Err(error) => {
                out.exception(
                    &format!("{error}\nSee log file for more details."),
                    "barman.cli",
                );
            }
        }
    }
    out.close()
}

/// The configuration with the command line's overrides.
fn request_for(config: &Config, server: &ServerConfig, args: &BackupArgs) -> ServerBackupRequest {
    let configured_checkpoint = matches!(
        server.value("immediate_checkpoint"),
        Some(Value::Bool(true))
    );
    let keepalive = args.keepalive_interval.unwrap_or(server.keepalive_interval);
    ServerBackupRequest {
        name: args.name.clone(),
        immediate_checkpoint: args.immediate_checkpoint.unwrap_or(configured_checkpoint),
        keepalive_interval: u64::try_from(keepalive).unwrap_or(0),
        wait: args.wait,
        wait_timeout: args.wait_timeout.and_then(|t| u64::try_from(t).ok()),
        reuse_backup: args
            .reuse_backup
            .clone()
            .or_else(|| server.raw("reuse_backup").map(str::to_string)),
        check_timeout: args.check_timeout,
        config_file: config.config_file.clone(),
    }
}
