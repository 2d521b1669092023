//! The cloud snapshots of snapshot backups (Barman 3.20.1: `CloudSnapshotInterface`
//! `delete_snapshot_backup` and `_delete_snapshot`).
//!
//! Barman checks each snapshot's name just before deleting it, so a backup.info naming a
//! snapshot of another backup is refused only after the snapshots listed before it are
//! gone. Here every snapshot of every backup the run deletes is checked while planning,
//! before anything is deleted ([`check_snapshots`], read-only, in dry runs too); the run
//! then deletes what the check found ([`delete_snapshots`]).

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;

use super::plan::{BackupStep, SnapshotDeletion};
use crate::catalog::snapshots::{SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};
use crate::snapshot::{ProviderSource, name_matches_backup};

/// Snapshots of one backup looked up or deleted at once.
pub const SNAPSHOT_CONCURRENCY: usize = 4;

/// Fills in [`super::BackupDeletion::snapshots`] for every snapshot backup among `steps`,
/// asking each backup's provider for the current name of each of its snapshots. A name
/// not made for the backup refuses the whole run (`Error::Provider`, as Barman); a
/// snapshot that is gone is logged and left out.
pub async fn check_snapshots(
    steps: &mut [BackupStep],
    providers: &dyn ProviderSource,
) -> Result<()> {
    for step in steps {
        let BackupStep::Delete(deletion) = step else {
            continue;
        };
        if let Some(info) = &deletion.info.snapshots_info {
            // The directory the backup.info was read from: never a field of it.
            deletion.snapshots = Some(check_backup(&deletion.id, info, providers).await?);
        }
    }
    Ok(())
}

fn identifier_text(snapshot: &SnapshotMetadata, info: &SnapshotsInfo) -> String {
    snapshot
        .field(info.provider().identifier_field())
        .map_or_else(|| "None".to_string(), |v| v.py_str().into_owned())
}

fn refusal(snapshot: &str, backup_id: &str) -> Error {
    Error::Provider(format!(
        "Refusing to delete snapshot {snapshot}: it is not recognized as a snapshot created \
         for backup {backup_id}"
    ))
}

/// Checks the snapshots of one backup (see [`check_snapshots`]); also used by the
/// server's `barman delete`.
pub async fn check_backup(
    backup_id: &str,
    info: &SnapshotsInfo,
    providers: &dyn ProviderSource,
) -> Result<SnapshotDeletion> {
    let mut checked = SnapshotDeletion {
        info: info.clone(),
        to_delete: Vec::new(),
        gone: Vec::new(),
    };
    if info.snapshots.is_empty() {
        return Ok(checked);
    }
    // An entry without an identifier can name no snapshot of this backup.
    if let Some(bad) = info.snapshots.iter().find(|s| s.identifier().is_none()) {
        return Err(refusal(&identifier_text(bad, info), backup_id));
    }
    let provider = providers.for_backup(info).await?;
    let provider = provider.as_ref();
    let names: Vec<Result<Option<String>>> = futures::stream::iter(&info.snapshots)
        .map(|snapshot| provider.snapshot_name(snapshot, info))
        .buffered(SNAPSHOT_CONCURRENCY)
        .collect()
        .await;
    for (snapshot, name) in info.snapshots.iter().zip(names) {
        let id = identifier_text(snapshot, info);
        match name? {
            None => {
                tracing::info!("Snapshot {id} could not be found: nothing to delete");
                checked.gone.push(id);
            }
            Some(name) if name_matches_backup(&name, backup_id) => {
                checked.to_delete.push(snapshot.clone());
            }
            Some(_) => return Err(refusal(&id, backup_id)),
        }
    }
    Ok(checked)
}

/// What [`delete_snapshots`] did.
#[derive(Debug)]
pub struct SnapshotsDeleted {
    /// Snapshots the provider deleted (or found gone) in this call.
    pub deleted: usize,
    /// The first failure in `snapshots_info` order, if any.
    pub result: Result<()>,
}

/// Deletes the snapshots `checked` found, a few at a time. After a failure (a lock, an
/// API error) no deletion starts, and the first failure in `snapshots_info` order is
/// returned as the provider gave it.
pub async fn delete_snapshots(
    backup_id: &str,
    checked: &SnapshotDeletion,
    providers: &dyn ProviderSource,
) -> SnapshotsDeleted {
    let info = &checked.info;
    let listed: Vec<String> = info
        .snapshots
        .iter()
        .map(|s| identifier_text(s, info))
        .collect();
    tracing::debug!("Will delete the following snapshots: {}", listed.join(", "));
    if checked.to_delete.is_empty() {
        return SnapshotsDeleted {
            deleted: 0,
            result: Ok(()),
        };
    }
    let provider = match providers.for_backup(info).await {
        Ok(provider) => provider,
        Err(e) => {
            return SnapshotsDeleted {
                deleted: 0,
                result: Err(e),
            };
        }
    };
    let provider = provider.as_ref();
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let outcomes: Vec<Option<Result<()>>> = futures::stream::iter(&checked.to_delete)
        .map(|snapshot| async move {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            let id = identifier_text(snapshot, info);
            tracing::info!("Deleting snapshot '{id}' for backup {backup_id}");
            let outcome = provider.delete_snapshot(snapshot, info).await;
            if outcome.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            Some(outcome)
        })
        .buffered(SNAPSHOT_CONCURRENCY)
        .collect()
        .await;
    let deleted = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Ok(()))))
        .count();
    let result = outcomes
        .into_iter()
        .flatten()
        .find(Result::is_err)
        .unwrap_or(Ok(()));
    SnapshotsDeleted { deleted, result }
}
