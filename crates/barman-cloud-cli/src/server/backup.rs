//! `barman backup` of a `backup_method = snapshot` server.

use barman_cloud::server::config::Config;

use super::output::Output;

pub(super) fn backup_command(
    config: &Config,
    args: &super::args::BackupArgs,
    out: &mut Output,
) -> u8 {
    let _ = (config, args);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
}
