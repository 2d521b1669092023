//! Carries out a [`DeletionPlan`], with the safety order of this module's documentation:
//! lock check, deletion mark, archives and manifest, then backup.info; then the WAL the
//! deletion freed; the next backup only once this one is gone.

use futures::StreamExt;

use super::plan::{BackupDeletion, BackupStep, DeletionPlan, WalCleanup, WalRemoval};
use super::{DELETION_MARKER, is_interrupted_deletion};
use crate::catalog::BackupStatus;
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::storage::{CloudStorage, DELETE_CONCURRENCY};

/// How a plan is carried out.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionOptions {
    /// Keys per deletion request (already within the provider's limit).
    pub batch_size: usize,
    /// Refuse to touch a backup any of whose objects S3 Object Lock protects.
    pub check_object_lock: bool,
}

/// Runs `plan`. A backup that cannot be deleted stops the run (its error says which); a
/// WAL deletion that fails is logged and left for a later run, as in Barman.
pub async fn execute_deletion(
    storage: &CloudStorage,
    layout: &ServerLayout,
    plan: &DeletionPlan,
    options: ExecutionOptions,
) -> Result<()> {
    for step in &plan.steps {
        match step {
            BackupStep::Missing { id } => remove_orphaned_manifest(storage, layout, id).await,
            BackupStep::Delete(deletion) => {
                let id = &deletion.id;
                delete_backup_objects(storage, deletion, options)
                    .await
                    .map_err(|e| Error::Failed(format!("Could not delete backup {id}: {e}")))?;
                tracing::info!("Deleted backup {id}");
                match &deletion.wal {
                    WalCleanup::Nothing => {}
                    WalCleanup::Unlisted(error) => tracing::error!(
                        "Cannot clean up WALs for backup {id} because an error occurred listing WALs: {error}"
                    ),
                    WalCleanup::Remove(removal) => {
                        remove_wals(storage, id, removal, options.batch_size).await?
                    }
                }
            }
        }
    }
    for id in &plan.orphaned_manifests {
        remove_orphaned_manifest(storage, layout, id).await;
    }
    Ok(())
}

/// Lock check, deletion mark, archives and manifest, then backup.info.
async fn delete_backup_objects(
    storage: &CloudStorage,
    deletion: &BackupDeletion,
    options: ExecutionOptions,
) -> Result<()> {
    let id = &deletion.id;
    let mut keys = deletion.archives.clone();
    keys.extend(deletion.manifest.iter().cloned());
    if options.check_object_lock {
        let locks: Vec<Result<Option<String>>> = futures::stream::iter(&keys)
            .map(|key| async move {
                Ok(storage
                    .object_lock(key)
                    .await?
                    .map(|reason| format!("{key}: {reason}")))
            })
            .buffered(DELETE_CONCURRENCY * 4)
            .collect()
            .await;
        for lock in locks {
            if let Some(reason) = lock? {
                return Err(Error::Refused(reason));
            }
        }
    }
    let info = &deletion.info;
    if !is_interrupted_deletion(info) {
        let mut marked = info.clone();
        marked.status = Some(BackupStatus::Failed);
        marked.error = Some(DELETION_MARKER.into());
        let text = marked.to_file_text()?;
        storage
            .put(&deletion.info_key, text.into_bytes().into(), &[])
            .await?;
        tracing::info!("Marked backup {id} as being deleted");
    }
    let outcome = storage
        .delete_objects(&keys, options.batch_size, DELETE_CONCURRENCY)
        .await;
    if !outcome.is_complete() {
        if outcome.deleted == 0 && !outcome.uncertain && !is_interrupted_deletion(info) {
            // Nothing was removed: the backup is whole, give it its status back.
            let original = deletion.original.clone().into();
            if let Err(e) = storage.put(&deletion.info_key, original, &[]).await {
                tracing::error!("Could not restore backup.info of intact backup {id}: {e}");
            }
        }
        return outcome.into_result();
    }
    let archives = deletion.archives.len();
    if deletion.manifest.is_some() {
        tracing::info!("Deleted the {archives} archives of backup {id} and its integrity manifest");
    } else {
        tracing::info!("Deleted the {archives} archives of backup {id}");
    }
    storage
        .delete_objects(std::slice::from_ref(&deletion.info_key), 1, 1)
        .await
        .into_result()
}

/// Barman's `_remove_wals_for_backup`: a directory that cannot be deleted stops the run;
/// WAL files that cannot be deleted are logged and stay for a later run.
async fn remove_wals(
    storage: &CloudStorage,
    backup_id: &str,
    removal: &WalRemoval,
    batch_size: usize,
) -> Result<()> {
    for (_, keys) in &removal.directories {
        storage
            .delete_objects(keys, storage.delete_batch_limit(), DELETE_CONCURRENCY)
            .await
            .into_result()?;
    }
    if removal.files.is_empty() {
        return Ok(());
    }
    let outcome = storage
        .delete_objects(&removal.files_to_delete, batch_size, DELETE_CONCURRENCY)
        .await;
    match outcome.into_result() {
        Ok(()) => tracing::info!("Deleted {} WAL files", removal.files_to_delete.len()),
        Err(e) => tracing::error!(
            "Could not delete the following WALs for backup {backup_id}: {} WAL files from {} to {}, Reason: {e}",
            removal.files.len(),
            removal.files.first().map_or("", String::as_str),
            removal.files.last().map_or("", String::as_str),
        ),
    }
    Ok(())
}

/// Removes the manifest of backup `id` if its directory holds one but no backup.info
/// (`-b` of a backup Barman deleted, or an orphan found by `-r`), looking at the directory
/// afresh (a backup may have started and ended meanwhile); nothing else there is touched.
/// Failures are logged only: what Barman would have done is done, and the next run tries
/// again.
async fn remove_orphaned_manifest(storage: &CloudStorage, layout: &ServerLayout, id: &str) {
    let key = layout.manifest(id);
    let info_key = layout.backup_info(id);
    match storage.list(&layout.backup_prefix(id)).await {
        Ok(found) => {
            let has = |k: &str| found.iter().any(|o| o.key == k);
            if !has(&key) || has(&info_key) {
                return;
            }
        }
        Err(e) => {
            tracing::warn!("Could not look for an orphaned integrity manifest: {e}");
            return;
        }
    }
    match storage
        .delete_objects(std::slice::from_ref(&key), 1, 1)
        .await
        .into_result()
    {
        Ok(()) => tracing::info!("Deleted orphaned integrity manifest {key}"),
        Err(e) => tracing::warn!("Could not delete orphaned integrity manifest {key}: {e}"),
    }
}
