//! Carries out a [`DeletionPlan`], with the safety order of this module's documentation:
//! lock check, deletion mark, snapshots and `backup_label` (snapshot backups, as Barman
//! orders them), archives and manifest, then backup.info; then the WAL the deletion freed;
//! the next backup only once this one is gone.

use futures::StreamExt;

use super::plan::{BackupDeletion, BackupStep, DeletionPlan, WalCleanup, WalRemoval};
use super::{DELETION_MARKER, is_interrupted_deletion, snapshots};
use crate::catalog::BackupStatus;
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::snapshot::ProviderSource;
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
    providers: &dyn ProviderSource,
) -> Result<()> {
    for step in &plan.steps {
        match step {
            BackupStep::Missing { id } => remove_orphaned_manifest(storage, layout, id).await,
            BackupStep::Delete(deletion) => {
                let id = &deletion.id;
                delete_backup(storage, deletion, options, providers).await?;
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

/// Lock check, deletion mark, snapshots and `backup_label` (snapshot backups), archives
/// and manifest, then backup.info. Failures of the object-store part are `Could not
/// delete backup <id>: ...` (Barman's exit 1); a snapshot's failure is the provider's
/// error as it is (a lock: exit 1, anything else: 4, as Barman), and so is the failure
/// to delete `backup_label` (Barman: 4). Whatever fails, backup.info stays, so that a
/// later run finishes the job; it gets its original content back when nothing of the
/// backup was deleted.
async fn delete_backup(
    storage: &CloudStorage,
    deletion: &BackupDeletion,
    options: ExecutionOptions,
    providers: &dyn ProviderSource,
) -> Result<()> {
    let id = &deletion.id;
    let failed = |e: Error| Error::Failed(format!("Could not delete backup {id}: {e}"));
    let info = &deletion.info;
    if info.snapshots_info.is_some() && deletion.snapshots.is_none() {
        return Err(Error::Failed(format!(
            "Could not delete backup {id}: its snapshots were not checked with their provider"
        )));
    }
    let mut keys = deletion.archives.clone();
    keys.extend(deletion.manifest.iter().cloned());
    if options.check_object_lock {
        check_object_locks(storage, &keys).await.map_err(failed)?;
    }
    let resumed = is_interrupted_deletion(info);
    if !resumed {
        let mut marked = info.clone();
        marked.status = Some(BackupStatus::Failed);
        marked.error = Some(DELETION_MARKER.into());
        let text = marked.to_file_text().map_err(|e| failed(e.into()))?;
        storage
            .put(&deletion.info_key, text.into_bytes().into(), &[])
            .await
            .map_err(failed)?;
        tracing::info!("Marked backup {id} as being deleted");
    }
    // Whether this run deleted anything of the backup.
    let mut touched = false;
    if let Some(checked) = &deletion.snapshots {
        let outcome = snapshots::delete_snapshots(id, checked, providers).await;
        touched = outcome.deleted > 0;
        if let Err(e) = outcome.result {
            if !touched && !resumed {
                put_back(storage, deletion).await;
            }
            return Err(e);
        }
    }
    if let Some(label) = &deletion.snapshot_label {
        let outcome = storage
            .delete_objects(std::slice::from_ref(label), 1, 1)
            .await;
        if !outcome.is_complete() {
            if !touched && !resumed && outcome.deleted == 0 && !outcome.uncertain {
                put_back(storage, deletion).await;
            }
            return outcome.into_result();
        }
        touched = true;
    }
    let outcome = storage
        .delete_objects(&keys, options.batch_size, DELETE_CONCURRENCY)
        .await;
    if !outcome.is_complete() {
        if !touched && !resumed && outcome.deleted == 0 && !outcome.uncertain {
            put_back(storage, deletion).await;
        }
        return outcome.into_result().map_err(failed);
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
        .map_err(failed)
}

/// S3 Object Lock: refuses when any of `keys` is under retention or legal hold.
async fn check_object_locks(storage: &CloudStorage, keys: &[String]) -> Result<()> {
    let locks: Vec<Result<Option<String>>> = futures::stream::iter(keys)
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
    Ok(())
}

/// Nothing of the backup was deleted: it is whole, give it its status back.
async fn put_back(storage: &CloudStorage, deletion: &BackupDeletion) {
    let original = deletion.original.clone().into();
    if let Err(e) = storage.put(&deletion.info_key, original, &[]).await {
        tracing::error!(
            "Could not restore backup.info of intact backup {}: {e}",
            deletion.id
        );
    }
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
