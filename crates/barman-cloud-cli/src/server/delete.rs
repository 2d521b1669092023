//! `barman delete`.

use barman_cloud::server::config::Config;

use super::output::Output;

pub(super) fn delete_command(
    config: &Config,
    server: &str,
    backup_id: &str,
    out: &mut Output,
) -> u8 {
    let _ = (config, server, backup_id);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
}
