//! `barman delete SERVER BACKUP_ID` and the retention enforcement of `barman cron`
//! (Barman 3.20.1's `Server.delete_backup`, `perform_delete_backup` and
//! `BackupManager.cron_retention_policy`): the locks, refusals and messages; the work is
//! in `barman_cloud::server::delete`.

use barman_cloud::Error;
use barman_cloud::catalog::BackupInfo;
use barman_cloud::server::backup_id::resolve;
use barman_cloud::server::config::{Config, ServerConfig};
use barman_cloud::server::delete::{
    self as lib, DeleteContext, Level, RetentionAction, enforced_policy, refusal,
};
use barman_cloud::server::home::{ServerHome, load_backups};
use barman_cloud::server::lock::LockFile;
use barman_cloud::snapshot::{CachedProviders, ProviderOptions, aws::AwsSnapshotSettings};

use super::check::runtime;
use super::output::Output;

/// Python logging's INFO level.
const INFO: i64 = 20;

const LOGGER: &str = "barman.backup";

/// The providers a server's snapshot backups are deleted with: the server's
/// `aws_profile`/`aws_region` (else the region `snapshots_info` recorded), `gcp_zone`,
/// `azure_resource_group`/`azure_credential`, as Barman's
/// `get_snapshot_interface_from_backup_info`.
fn provider_options(server: &ServerConfig) -> ProviderOptions {
    ProviderOptions {
        aws: AwsSnapshotSettings {
            profile: server.aws_profile.clone(),
            region: server.aws_region.clone(),
            ..Default::default()
        },
        gcp_zone: server.gcp_zone.clone(),
        azure_resource_group: server.azure_resource_group.clone(),
        azure_credential: server.azure_credential.as_deref().map(|c| match c {
            "azure-cli" => barman_cloud::storage::AzureCredentialKind::AzureCli,
            "managed-identity" => barman_cloud::storage::AzureCredentialKind::ManagedIdentity,
            _ => barman_cloud::storage::AzureCredentialKind::Default,
        }),
    }
}

fn say_to(out: &mut Output) -> impl FnMut(Level, String) + '_ {
    move |level, text| match level {
        Level::Log => out.log.record(INFO, "barman.cloud", &text),
        Level::Hook(level) => out.log.record(level, "barman.hooks", &text),
        Level::Info => out.info(&text),
        Level::Warning => out.warning(&text, LOGGER),
        Level::Error => out.error(&text, LOGGER),
    }
}

/// How one deletion ended.
enum Outcome {
    Deleted,
    /// Not deleted; Barman's messages already given.
    NotDeleted,
    /// A locked snapshot: Barman stops at once (`SystemExit`) with this text.
    Stop(String),
    /// Any other failure, which Barman lets out as an exception.
    Failed(Error),
}

fn run_one(
    config_file: &std::path::Path,
    server: &ServerConfig,
    home: &ServerHome,
    backup: &BackupInfo,
    skip_wal_cleanup_if_standalone: bool,
    out: &mut Output,
) -> Outcome {
    let providers = CachedProviders::new(provider_options(server));
    let ctx = DeleteContext {
        home,
        server,
        config_file,
        providers: &providers,
        // The configuration adds it when no strategy is set, as Barman does.
        concurrent_backup: server
            .backup_options
            .iter()
            .any(|o| o == "concurrent_backup"),
    };
    let mut say = say_to(out);
    let result = runtime().block_on(lib::delete_backup(
        &ctx,
        backup,
        skip_wal_cleanup_if_standalone,
        &mut say,
    ));
    match result {
        Ok(true) => Outcome::Deleted,
        Ok(false) => Outcome::NotDeleted,
        Err(Error::SnapshotLocked(text)) => Outcome::Stop(text),
        Err(other) => Outcome::Failed(other),
    }
}

fn lock_problem(error: &Error) -> String {
    match error {
        Error::Io { path, source } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            format!("Permission denied, unable to access '{}'", path.display())
        }
        other => other.to_string(),
    }
}

pub(super) fn delete_command(
    config: &Config,
    server: &str,
    backup_id: &str,
    out: &mut Output,
) -> u8 {
    let server = match super::wal::server_for_delete(config, server, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    let home = ServerHome::from_config(&server);
    let backups = load_backups(&home);
    let backup = match resolve(&backups, backup_id, &server.name) {
        Ok(backup) => backup.clone(),
        Err(Error::UnknownBackup(message)) => {
            out.error(&message, "barman.cli");
            return out.close();
        }
        Err(other) => {
            out.exception(
                &format!("{other}\nSee log file for more details."),
                "barman.cli",
            );
            return out.close();
        }
    };
    let id = backup.backup_id.clone().unwrap_or_default();
    let keeps = match runtime().block_on(lib::keep_annotations(&home)) {
        Ok(keeps) => keeps,
        Err(error) => {
            out.exception(
                &format!("{error}\nSee log file for more details."),
                "barman.cli",
            );
            return out.close();
        }
    };
    let minimum = u64::try_from(server.minimum_redundancy).unwrap_or(0);
    let deleted = match refusal(&backup, &backups, &keeps, minimum, &server.name) {
        Some(message) => {
            out.warning(&message, "barman.server");
            false
        }
        // Barman deletes the whole tree of a backup with incremental children; no
        // snapshot backup has any, and barman-rs does not walk backup trees.
        None if backup
            .children_backup_ids
            .as_ref()
            .is_some_and(|c| !c.is_empty()) =>
        {
            out.error(
                &format!(
                    "Backup {id} has incremental backups which depend on it: deleting a \
                     backup tree is not supported by barman-rs"
                ),
                "barman.server",
            );
            false
        }
        None => match locked_delete(&config.config_file, &server, &home, &backup, out) {
            Ok(deleted) => deleted,
            Err(code) => return code,
        },
    };
    if !deleted {
        out.error(
            &format!("Cannot delete backup ({} {id})", server.name),
            "barman.cli",
        );
    }
    out.close()
}

/// Under `.<server>-backup.lock` then `.<server>-<id>.lock`: the deletion. `Err`: the
/// exit code when the command stops at once.
fn locked_delete(
    config_file: &std::path::Path,
    server: &ServerConfig,
    home: &ServerHome,
    backup: &BackupInfo,
    out: &mut Output,
) -> Result<bool, u8> {
    let id = backup.backup_id.clone().unwrap_or_default();
    let _server_lock = match LockFile::try_acquire(&home.backup_lock()) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            out.error(
                &format!(
                    "Another process in running on server {}. Impossible to delete the backup.",
                    server.name
                ),
                "barman.server",
            );
            return Ok(false);
        }
        Err(error) => {
            out.error(&lock_problem(&error), "barman.server");
            return Ok(false);
        }
    };
    let id_lock_path = home.backup_id_lock(&id);
    let id_lock = match LockFile::try_acquire(&id_lock_path) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            out.error(
                &format!(
                    "Another process is holding the lock for backup {id} of server {}.",
                    server.name
                ),
                "barman.server",
            );
            return Ok(false);
        }
        Err(error) => {
            out.error(&lock_problem(&error), "barman.server");
            return Ok(false);
        }
    };
    match run_one(config_file, server, home, backup, true, out) {
        Outcome::Deleted => {
            drop(id_lock);
            // Nobody waits on a backup's lock: with the backup gone, its file goes too.
            let _ = std::fs::remove_file(&id_lock_path);
            Ok(true)
        }
        Outcome::NotDeleted => Ok(false),
        Outcome::Stop(text) => {
            eprintln!("{text}");
            Err(1)
        }
        Outcome::Failed(error) => {
            out.exception(
                &format!("{error}\nSee log file for more details."),
                "barman.cli",
            );
            Err(out.close())
        }
    }
}

/// The retention part of `cron` for one server (under its cron lock): the obsolete
/// backups deleted oldest first, each under its `.<server>-<id>.lock`. Returns `false`
/// when a locked snapshot stopped it (its message printed as Barman's `SystemExit`).
pub(super) fn enforce_retention(
    config_file: &std::path::Path,
    server: &ServerConfig,
    out: &mut Output,
) -> bool {
    let Some(policy) = enforced_policy(server.retention_policy.as_deref()) else {
        return true;
    };
    if server.retention_policy_mode.as_deref().unwrap_or("auto") != "auto" {
        return true;
    }
    let home = ServerHome::from_config(server);
    let minimum = u64::try_from(server.minimum_redundancy).unwrap_or(0);
    let plan = {
        let mut say = say_to(out);
        runtime().block_on(lib::retention_plan(&home, policy, minimum, &mut say))
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(error) => {
            out.error(&error.to_string(), "barman.server");
            return true;
        }
    };
    for (action, backup) in plan {
        let id = backup.backup_id.clone().unwrap_or_default();
        let lock = match LockFile::try_acquire(&home.backup_id_lock(&id)) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                out.warning(
                    &format!(
                        "Another action is in progress for the backup {id} of server {}, \
                         skipping retention policy application",
                        server.name
                    ),
                    LOGGER,
                );
                continue;
            }
            Err(error) => {
                out.error(&lock_problem(&error), "barman.server");
                return true;
            }
        };
        if let RetentionAction::SkipOrphan(_) = action {
            out.log.record(
                10,
                LOGGER,
                &format!(
                    "Skipping deletion of orphan backup: '{id}' at '{}'.",
                    home.backup_dir(&id).display()
                ),
            );
            continue;
        }
        out.info(&format!(
            "Enforcing retention policy: removing backup {id} for server {}",
            server.name
        ));
        let outcome = run_one(config_file, server, &home, &backup, false, out);
        drop(lock);
        match outcome {
            Outcome::Deleted | Outcome::NotDeleted => {}
            Outcome::Stop(text) => {
                eprintln!("{text}");
                return false;
            }
            Outcome::Failed(error) => {
                out.log.record(40, LOGGER, &error.to_string());
                out.exception(
                    &format!(
                        "Unable to run cron on server '{}', please look in the barman log \
                         file for more details.",
                        server.name
                    ),
                    "barman.cli",
                );
                return true;
            }
        }
    }
    true
}
