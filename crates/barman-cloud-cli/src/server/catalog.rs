//! The catalog commands: `list-backups`, `show-backup`, `keep`.

use barman_cloud::server::config::Config;

use super::output::Output;

pub(super) fn list_backups_command(
    config: &Config,
    servers: &[String],
    minimal: bool,
    out: &mut Output,
) -> u8 {
    let _ = (config, servers, minimal);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
}

pub(super) fn show_backup_command(
    config: &Config,
    server: &str,
    backup_id: &str,
    out: &mut Output,
) -> u8 {
    let _ = (config, server, backup_id);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
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
    let _ = (config, server, backup_id, release, status, target);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
}
