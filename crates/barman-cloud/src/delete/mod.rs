//! `barman-cloud-backup-delete`: one backup by identifier, or every backup a retention
//! policy calls obsolete, then the WAL no remaining backup needs.
//!
//! What goes is decided exactly as Barman 3.20.1 decides it (see [`wal_cleanup`] and
//! [`crate::retention`]), so a bucket shared with Barman ends in the same state whichever
//! tool ran. How it goes is safer: before the first archive of a backup is removed, its
//! backup.info is rewritten as FAILED with [`DELETION_MARKER`], so that an interrupted
//! deletion never leaves a DONE backup without its data; a later run (by ID, or by
//! policy with barman-rs) finishes the job. Archives go before backup.info, as in Barman,
//! so the backup stays findable until nothing else of it is left.
//!
//! The integrity manifest barman-rs writes with its backups goes with the archives (in
//! the same requests), and is never named in dry-run output, which stays Barman's. Barman
//! leaves a backup's manifest behind when it deletes the backup: such an orphan (a
//! manifest in a directory without backup.info) is removed by a run with `-r`, and by
//! `-b` naming that backup; only the manifest object is touched.

pub mod wal_cleanup;

use std::collections::BTreeMap;
use std::io::Write;

use futures::StreamExt;

use crate::backup_catalog::{BackupCatalog, keep_annotations_in, read_keep};
use crate::catalog::pyliteral::repr_str;
use crate::catalog::{BackupInfo, BackupStatus, Timestamp};
use crate::error::{Error, Result};
use crate::layout::{BACKUP_INFO, ServerLayout, backup_archives, manifest_backup};
use crate::retention::{RetentionPolicy, RetentionStatus};
use crate::storage::{CloudStorage, DELETE_CONCURRENCY, ObjectInfo, Provider};
use crate::wal::WalCatalog;

/// The `error` of a backup.info whose deletion has started.
pub const DELETION_MARKER: &str =
    "deletion in progress (barman-cloud-backup-delete was interrupted; run it again)";

/// What to delete.
#[derive(Debug, Clone)]
pub enum DeleteTarget {
    /// A backup ID, shortcut or name (`-b`).
    Backup(String),
    /// Every backup the policy reports OBSOLETE (`-r`).
    Policy(RetentionPolicy),
}

#[derive(Debug, Clone)]
pub struct DeleteRequest {
    pub server_name: String,
    pub target: DeleteTarget,
    pub minimum_redundancy: u64,
    pub dry_run: bool,
    /// `--batch-size`: clamped to the provider's limit; the limit when `None`.
    pub batch_size: Option<i64>,
    /// `--check-object-lock` (S3 only).
    pub check_object_lock: bool,
}

/// Runs a deletion. `dry_run_out` receives Barman's `Skipping deletion of ...` lines.
pub async fn delete_backups(
    storage: &CloudStorage,
    request: &DeleteRequest,
    dry_run_out: &mut dyn Write,
) -> Result<()> {
    let provider = storage.location().provider;
    if request.check_object_lock && provider != Provider::AwsS3 {
        tracing::warn!(
            "The --check-object-lock option is currently only supported for aws-s3. \
             Object lock checks will not be performed for this cloud provider"
        );
    }
    let server = request.server_name.as_str();
    let catalog = BackupCatalog::load(storage, server).await?;
    if !catalog.unreadable.is_empty() {
        let ids: Vec<String> = catalog.unreadable.iter().map(|id| repr_str(id)).collect();
        return Err(Error::Operation(format!(
            "Cannot read the following backups: [{}]; unsafe to proceed with deletion due to \
             failure reading backup catalog",
            ids.join(", ")
        )));
    }
    let limit = storage.delete_batch_limit();
    let batch_size = request
        .batch_size
        .map_or(limit, |size| size.clamp(1, limit as i64) as usize);
    let mut deleter = Deleter {
        storage,
        server,
        dry_run: request.dry_run,
        check_object_lock: request.check_object_lock && provider == Provider::AwsS3,
        batch_size,
        backups: catalog.backups.clone(),
        base_listing: None,
        keep_targets: None,
        wal_listing: None,
        wals: None,
        out: dry_run_out,
    };
    match &request.target {
        DeleteTarget::Backup(text) => {
            let id = catalog.resolve(text, server)?;
            if read_keep(storage, server, &id).await?.is_some() {
                return Err(Error::Operation(format!(
                    "Skipping delete of backup {id} for server {server} as it has a current \
                     keep request. If you really want to delete this backup please remove the \
                     keep and try again."
                )));
            }
            let completed = catalog
                .backups
                .iter()
                .filter(|b| b.status != Some(BackupStatus::Started))
                .count() as u64;
            if request.minimum_redundancy > 0 && request.minimum_redundancy >= completed {
                return Err(Error::Operation(format!(
                    "Skipping delete of backup {id} for server {server} due to minimum \
                     redundancy requirements (minimum redundancy = {}, current redundancy = \
                     {completed})",
                    request.minimum_redundancy
                )));
            }
            deleter.delete_backup(&id, true).await
        }
        DeleteTarget::Policy(policy) => {
            let now: Timestamp = chrono::Local::now().fixed_offset();
            let keeps = deleter.keep_targets().await?.clone();
            let report =
                policy.report(&catalog.backups, &keeps, request.minimum_redundancy, now)?;
            let mut doomed: Vec<String> = report
                .iter()
                .filter(|(_, status)| **status == RetentionStatus::Obsolete)
                .map(|(id, _)| id.clone())
                .collect();
            // Deletions barman-rs started and could not finish are finished now.
            doomed.extend(
                catalog
                    .backups
                    .iter()
                    .filter(|b| is_interrupted_deletion(b))
                    .filter_map(|b| b.backup_id.clone()),
            );
            doomed.sort();
            doomed.dedup();
            if !request.dry_run {
                refuse_snapshot_backups(&catalog.backups, &doomed)?;
            }
            for id in doomed {
                deleter.delete_backup(&id, false).await?;
            }
            deleter.remove_orphaned_manifests().await;
            Ok(())
        }
    }
}

/// A backup.info barman-rs marked before deleting the backup's archives.
pub fn is_interrupted_deletion(backup: &BackupInfo) -> bool {
    backup.status == Some(BackupStatus::Failed) && backup.error.as_deref() == Some(DELETION_MARKER)
}

fn refuse_snapshot_backups(backups: &[BackupInfo], doomed: &[String]) -> Result<()> {
    let snapshot = backups.iter().find(|b| {
        b.snapshots_info.is_some()
            && doomed.contains(b.backup_id.as_ref().unwrap_or(&String::new()))
    });
    match snapshot {
        Some(b) => Err(Error::Config(format!(
            "backup {} is a snapshot backup: deleting snapshot backups is not implemented yet \
             in barman-rs; nothing was deleted",
            b.backup_id.as_deref().unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// Python's repr of a list of strings, as Barman prints the keys it skips in a dry run.
fn py_list(keys: &[String]) -> String {
    let items: Vec<String> = keys.iter().map(|k| repr_str(k)).collect();
    format!("[{}]", items.join(", "))
}

/// The objects below `wals/` as listed once, and what the run deleted of them since.
/// Barman lists the `wals/` directories again for every backup it deletes; deriving them
/// from one listing gives the same answers (WAL archiving only ever adds newer WAL, which
/// no deletion touches) without thousands of listing requests on large archives.
struct WalListing {
    /// `<prefix>/<server>/wals/`
    prefix: String,
    objects: Vec<ObjectInfo>,
    /// `TTTTTTTTLLLLLLLL` (or any other name) of every subdirectory still there.
    directories: std::collections::BTreeSet<String>,
    /// Key prefixes (ending in `/`) of the directories deleted whole.
    deleted_prefixes: Vec<String>,
    /// Keys deleted one by one, so that a directory deleted later is not asked to delete
    /// them again.
    deleted_keys: std::collections::HashSet<String>,
}

impl WalListing {
    fn new(wals_dir: &str, objects: Vec<ObjectInfo>) -> Self {
        let prefix = format!("{wals_dir}/");
        let directories = objects
            .iter()
            .filter_map(|o| o.key.strip_prefix(&prefix)?.split_once('/'))
            .map(|(directory, _)| directory.to_string())
            .collect();
        WalListing {
            prefix,
            objects,
            directories,
            deleted_prefixes: Vec::new(),
            deleted_keys: Default::default(),
        }
    }

    fn is_deleted(&self, key: &str) -> bool {
        self.deleted_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    }

    fn keys_under(&self, dir_prefix: &str) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.key.starts_with(dir_prefix) && !self.deleted_keys.contains(&o.key))
            .map(|o| o.key.clone())
            .collect()
    }

    fn objects_left(&self) -> Vec<ObjectInfo> {
        self.objects
            .iter()
            .filter(|o| !self.is_deleted(&o.key))
            .cloned()
            .collect()
    }
}

struct Deleter<'a> {
    storage: &'a CloudStorage,
    server: &'a str,
    dry_run: bool,
    check_object_lock: bool,
    batch_size: usize,
    /// The catalog as Barman keeps it in memory: loaded once, backups dropped as deleted.
    backups: Vec<BackupInfo>,
    /// Every object below `base/`, listed on first use.
    base_listing: Option<Vec<ObjectInfo>>,
    /// Keep annotations, read on first use.
    keep_targets: Option<BTreeMap<String, String>>,
    /// Everything below `wals/`, listed once on first use: the one listing pass.
    wal_listing: Option<WalListing>,
    /// The WAL files as Barman's catalog holds them, names dropped as deleted one by one.
    wals: Option<WalCatalog>,
    out: &'a mut dyn Write,
}

impl Deleter<'_> {
    /// Everything below `base/`, listed once: keep annotations and each backup's archives
    /// come from it (Barman lists `base/` for the annotations, then each backup again).
    async fn base_listing(&mut self) -> Result<&[ObjectInfo]> {
        if self.base_listing.is_none() {
            let base = self.layout().base();
            self.base_listing = Some(self.storage.list_tree(&base).await?);
        }
        Ok(self.base_listing.as_deref().expect("just listed"))
    }

    async fn keep_targets(&mut self) -> Result<&BTreeMap<String, String>> {
        if self.keep_targets.is_none() {
            let storage = self.storage;
            let listing = self.base_listing().await?;
            self.keep_targets = Some(keep_annotations_in(storage, listing).await?);
        }
        Ok(self.keep_targets.as_ref().expect("just loaded"))
    }

    fn layout(&self) -> ServerLayout {
        ServerLayout::new(self.storage, self.server)
    }

    fn say(&mut self, line: String) -> Result<()> {
        writeln!(self.out, "{line}").map_err(|e| Error::io("<stdout>", e))
    }

    async fn delete_backup(
        &mut self,
        id: &str,
        skip_wal_cleanup_if_standalone: bool,
    ) -> Result<()> {
        let storage = self.storage;
        let layout = self.layout();
        let info_key = layout.backup_info(id);
        let original = match storage.get(&info_key).await {
            Ok(bytes) => bytes,
            Err(Error::NotFound(_)) => {
                tracing::warn!("Backup {id} does not exist");
                self.remove_orphaned_manifest(id).await;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let info = BackupInfo::load(id, &original)?;

        if info.snapshots_info.is_some() {
            if !self.dry_run {
                return Err(Error::Config(format!(
                    "backup {id} is a snapshot backup: deleting snapshot backups is not \
                     implemented yet in barman-rs"
                )));
            }
            self.say("Skipping deletion of snapshots due to --dry-run option".into())?;
            let label = layout.backup_label(id);
            self.say(format!(
                "Skipping deletion of {label} due to --dry-run option"
            ))?;
        }

        let dir = layout.backup_prefix(id);
        let objects: Vec<ObjectInfo> = self
            .base_listing()
            .await?
            .iter()
            .filter(|o| {
                o.key
                    .strip_prefix(&dir)
                    .is_some_and(|name| !name.contains('/'))
            })
            .cloned()
            .collect();
        let manifest_key = layout.manifest(id);
        let has_manifest = objects.iter().any(|o| o.key == manifest_key);
        let mut families = backup_archives(&info, &dir, &objects);
        families.sort_by_key(|f| f.oid.map_or(-1, i64::from));
        let mut keys = Vec::new();
        for family in &families {
            if family.main.is_none() && info.snapshots_info.is_none() {
                tracing::warn!(
                    "Missing file {dir}{}.* for server {}",
                    family.name,
                    self.server
                );
            }
            keys.extend(family.objects().map(|o| o.key.clone()));
        }

        if self.dry_run {
            // Barman's line: the manifest, which Barman does not know, is left out.
            let mut listed = keys.clone();
            listed.push(info_key.clone());
            self.say(format!(
                "Skipping deletion of objects {} due to --dry-run option",
                py_list(&listed)
            ))?;
        } else {
            let archives = keys.len();
            if has_manifest {
                keys.push(manifest_key);
            }
            self.delete_backup_objects(id, &info, &original, &info_key, &keys, archives)
                .await
                .map_err(|e| Error::Operation(format!("Could not delete backup {id}: {e}")))?;
            tracing::info!("Deleted backup {id}");
        }

        self.remove_wals_for_backup(&info, skip_wal_cleanup_if_standalone)
            .await?;
        self.backups.retain(|b| b.backup_id.as_deref() != Some(id));
        Ok(())
    }

    /// Lock check, deletion mark, archives (and manifest: `keys` past the first
    /// `archives`), then backup.info.
    async fn delete_backup_objects(
        &mut self,
        id: &str,
        info: &BackupInfo,
        original: &bytes::Bytes,
        info_key: &str,
        keys: &[String],
        archives: usize,
    ) -> Result<()> {
        let storage = self.storage;
        if self.check_object_lock {
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
                    return Err(Error::Operation(reason));
                }
            }
        }
        if !is_interrupted_deletion(info) {
            let mut marked = info.clone();
            marked.status = Some(BackupStatus::Failed);
            marked.error = Some(DELETION_MARKER.into());
            let text = marked.to_file_text()?;
            storage.put(info_key, text.into_bytes().into(), &[]).await?;
            tracing::info!("Marked backup {id} as being deleted");
        }
        let outcome = storage
            .delete_objects(keys, self.batch_size, DELETE_CONCURRENCY)
            .await;
        if !outcome.is_complete() {
            if outcome.deleted == 0 && !outcome.uncertain && !is_interrupted_deletion(info) {
                // Nothing was removed: the backup is whole, give it its status back.
                if let Err(e) = storage.put(info_key, original.clone().into(), &[]).await {
                    tracing::error!("Could not restore backup.info of intact backup {id}: {e}");
                }
            }
            return outcome.into_result();
        }
        if keys.len() > archives {
            tracing::info!(
                "Deleted the {archives} archives of backup {id} and its integrity manifest"
            );
        } else {
            tracing::info!("Deleted the {archives} archives of backup {id}");
        }
        storage
            .delete_objects(&[info_key.to_string()], 1, 1)
            .await
            .into_result()
    }

    /// Removes the manifest of backup `id` if its directory holds one but no backup.info
    /// (`-b` of a backup Barman deleted, or a candidate of `-r`); nothing else there is
    /// touched. Failures are logged only, and nothing is printed in a dry run: the run
    /// ends as Barman's would.
    async fn remove_orphaned_manifest(&self, id: &str) {
        let layout = self.layout();
        let dir = layout.backup_prefix(id);
        let key = layout.manifest(id);
        let info_key = layout.backup_info(id);
        match self.storage.list(&dir).await {
            Ok(found) => {
                let has = |k: &str| found.iter().any(|o| o.key == k);
                if has(&key) && !has(&info_key) {
                    self.delete_orphan(key).await;
                }
            }
            Err(e) => tracing::warn!("Could not look for an orphaned integrity manifest: {e}"),
        }
    }

    /// `-r`: the manifest of every directory of `base/` without backup.info. A backup of
    /// barman-rs writes backup.info before its manifest, and its deletion removes the
    /// manifest before backup.info, so such a manifest belongs to no backup. Candidates
    /// come from the listing made at the start of the run, each confirmed by a fresh
    /// look at its directory (a backup may have started and ended while `base/` was
    /// being listed page by page).
    async fn remove_orphaned_manifests(&mut self) {
        let base = format!("{}/", self.layout().base());
        let listing = match self.base_listing().await {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!("Could not look for orphaned integrity manifests: {e}");
                return;
            }
        };
        let infos: std::collections::HashSet<&str> = listing
            .iter()
            .filter_map(|o| {
                o.key
                    .strip_prefix(&base)?
                    .strip_suffix(BACKUP_INFO)?
                    .strip_suffix('/')
            })
            .collect();
        let candidates: Vec<String> = listing
            .iter()
            .filter_map(|o| {
                let id = manifest_backup(&o.key)?;
                let directly_below_base = o.key.strip_prefix(&base)?.split('/').count() == 2;
                (directly_below_base && !infos.contains(id)).then(|| id.to_string())
            })
            .collect();
        for id in candidates {
            self.remove_orphaned_manifest(&id).await;
        }
    }

    /// Deletes one orphaned manifest; a failure is logged, not fatal: what Barman would
    /// have done is done, and the next run tries again.
    async fn delete_orphan(&self, key: String) {
        if self.dry_run {
            tracing::info!("Skipping deletion of orphaned integrity manifest {key}");
            return;
        }
        match self
            .storage
            .delete_objects(std::slice::from_ref(&key), 1, 1)
            .await
            .into_result()
        {
            Ok(()) => tracing::info!("Deleted orphaned integrity manifest {key}"),
            Err(e) => tracing::warn!("Could not delete orphaned integrity manifest {key}: {e}"),
        }
    }

    /// Barman's `_remove_wals_for_backup`: errors after the archives are gone are logged,
    /// the WAL stays for a later run.
    async fn remove_wals_for_backup(
        &mut self,
        deleted: &BackupInfo,
        skip_if_standalone: bool,
    ) -> Result<()> {
        let keeps = self.keep_targets().await?.clone();
        let Some(scope) =
            wal_cleanup::cleanup_scope(deleted, &self.backups, &keeps, skip_if_standalone)?
        else {
            return Ok(());
        };
        let storage = self.storage;
        let backup_id = deleted.backup_id.as_deref().unwrap_or_default();
        if self.wal_listing.is_none() {
            let wals_dir = self.layout().wals();
            match storage.list_tree(&wals_dir).await {
                Ok(objects) => self.wal_listing = Some(WalListing::new(&wals_dir, objects)),
                Err(e) => {
                    tracing::error!(
                        "Cannot clean up WALs for backup {backup_id} because an error occurred listing WALs: {e}"
                    );
                    return Ok(());
                }
            }
        }
        let directory_shortcut = self.has_directory_shortcut();
        let listing = self.wal_listing.as_mut().expect("just listed");

        let mut deleted_now: Vec<String> = Vec::new();
        if directory_shortcut {
            let directories: Vec<String> = listing.directories.iter().cloned().collect();
            for directory in wal_cleanup::deletable_directories(&scope, &directories)? {
                let dir_prefix = format!("{}{directory}/", listing.prefix);
                if self.dry_run {
                    writeln!(
                        self.out,
                        "Skipping deletion of all objects under prefix {dir_prefix} due to --dry-run option"
                    )
                    .map_err(|e| Error::io("<stdout>", e))?;
                } else {
                    let keys = listing.keys_under(&dir_prefix);
                    storage
                        .delete_objects(&keys, storage.delete_batch_limit(), DELETE_CONCURRENCY)
                        .await
                        .into_result()?;
                    listing.directories.remove(&directory);
                    listing.deleted_prefixes.push(dir_prefix.clone());
                }
                deleted_now.push(dir_prefix);
            }
        }

        // Barman lists the WAL files once, after the first directories went: names under
        // directories deleted later stay in its list (and are deleted again, harmlessly).
        let wals = self
            .wals
            .get_or_insert_with(|| WalCatalog::from_listing(&listing.objects_left()));
        let doomed = wal_cleanup::wals_to_delete(&scope, wals, &deleted_now)?;
        if doomed.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = doomed.iter().map(|(_, key)| key.clone()).collect();
        if self.dry_run {
            self.say(format!(
                "Skipping deletion of objects {} due to --dry-run option",
                py_list(&keys)
            ))?;
        } else {
            let still_there: Vec<String> = keys
                .iter()
                .filter(|key| !listing.is_deleted(key))
                .cloned()
                .collect();
            let outcome = storage
                .delete_objects(&still_there, self.batch_size, DELETE_CONCURRENCY)
                .await;
            if let Err(e) = outcome.into_result() {
                tracing::error!(
                    "Could not delete the following WALs for backup {backup_id}: {} WAL files from {} to {}, Reason: {e}",
                    keys.len(),
                    keys.first().map_or("", String::as_str),
                    keys.last().map_or("", String::as_str),
                );
                return Ok(());
            }
            tracing::info!("Deleted {} WAL files", still_there.len());
            listing.deleted_keys.extend(still_there);
        }
        let wals = self.wals.as_mut().expect("built above");
        for (name, _) in &doomed {
            wals.remove(name);
        }
        Ok(())
    }

    /// Whether whole `wals/<TTTTTTTTLLLLLLLL>/` directories are deleted at once. Barman does
    /// it on S3 only; local directories get it too (a bucket there is never shared with
    /// Barman, and removing a directory is one listing).
    fn has_directory_shortcut(&self) -> bool {
        matches!(
            self.storage.location().provider,
            Provider::AwsS3 | Provider::Local
        )
    }
}
