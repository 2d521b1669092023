//! `barman recover` (`restore`) of a snapshot backup.

use barman_cloud::server::config::Config;

use super::output::Output;

pub(super) fn recover_command(
    config: &Config,
    args: &super::args::RecoverArgs,
    out: &mut Output,
) -> u8 {
    let _ = (config, args);
    out.error("this command is not implemented yet", "barman.cli");
    out.close().max(1)
}
