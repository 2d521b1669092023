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
//! Snapshot backups: their snapshots go first, then their `backup_label`, then the rest
//! as for any backup (Barman's order). Unlike Barman, which checks each snapshot just
//! before deleting it, every snapshot of every backup the run deletes is checked with its
//! provider while planning ([`snapshots`]): a snapshot whose current name is not made for
//! its backup refuses the whole run before anything is deleted. A snapshot that cannot be
//! deleted (a lock) stops the run with the backup's backup.info and `backup_label` in
//! place (marked as being deleted once some snapshot went), so a later run retries.
//!
//! The integrity manifest barman-rs writes with its backups goes with the archives (in
//! the same requests), and is never named in dry-run output, which stays Barman's. Barman
//! leaves a backup's manifest behind when it deletes the backup: such an orphan (a
//! manifest in a directory without backup.info) is removed by a run with `-r`, and by
//! `-b` naming that backup; only the manifest object is touched.

mod execute;
pub mod plan;
pub mod snapshots;
pub mod wal_cleanup;

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;

pub use execute::ExecutionOptions;
pub use plan::{
    BackupDeletion, BackupStep, DeletionPlan, SnapshotDeletion, WalCleanup, WalRemoval,
};

use crate::backup_catalog::BackupCatalog;
use crate::catalog::pyliteral::repr_str;
use crate::catalog::{BackupInfo, BackupStatus, Timestamp};
use crate::catalog_store::{BucketCatalog, CatalogStore, PARALLEL_READS};
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::retention::RetentionPolicy;
use crate::snapshot::ProviderSource;
use crate::storage::{CloudStorage, Provider};

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

/// A backup.info barman-rs marked before deleting the backup's archives.
pub fn is_interrupted_deletion(backup: &BackupInfo) -> bool {
    backup.status == Some(BackupStatus::Failed) && backup.error.as_deref() == Some(DELETION_MARKER)
}

/// Reads what a deletion decides on (the catalog, one listing of `base/`, the keep
/// annotations, the backup.info of each backup to delete, one listing of `wals/` when
/// WAL may go, and the current name of each snapshot of the snapshot backups to delete,
/// from the provider `providers` gives for each) and plans it ([`plan`]). Nothing is
/// written or deleted. Refusals (keep, minimum redundancy, unreadable catalog, a snapshot
/// not named for its backup) come before anything is deleted, in dry runs too.
pub async fn plan_deletion(
    storage: &CloudStorage,
    request: &DeleteRequest,
    providers: &dyn ProviderSource,
) -> Result<DeletionPlan> {
    if request.check_object_lock && storage.location().provider != Provider::AwsS3 {
        tracing::warn!(
            "The --check-object-lock option is currently only supported for aws-s3. \
             Object lock checks will not be performed for this cloud provider"
        );
    }
    let server = request.server_name.as_str();
    let store = BucketCatalog::new(storage, server);
    let catalog = BackupCatalog::load(&store).await?;
    if !catalog.unreadable.is_empty() {
        let ids: Vec<String> = catalog.unreadable.iter().map(|id| repr_str(id)).collect();
        return Err(Error::Refused(format!(
            "Cannot read the following backups: [{}]; unsafe to proceed with deletion due to \
             failure reading backup catalog",
            ids.join(", ")
        )));
    }
    let layout = ServerLayout::new(storage, server);
    let base_listing = storage.list_tree(&layout.base()).await?;
    let keeps = store.keep_annotations_in(&base_listing).await?;
    let now: Timestamp = chrono::Local::now().fixed_offset();
    let (doomed, skip_if_standalone) = plan::backups_to_delete(
        &catalog,
        server,
        &request.target,
        &keeps,
        request.minimum_redundancy,
        now,
    )?;
    // The catalog was read just now: only a backup it does not hold is looked up.
    let missing: Vec<String> = doomed
        .iter()
        .filter(|id| !catalog.stored.contains_key(*id))
        .cloned()
        .collect();
    let mut fresh = read_backup_infos(&store, &missing).await?;
    for id in &doomed {
        if let Some(bytes) = catalog.stored.get(id) {
            fresh.insert(id.clone(), Some(bytes.clone()));
        }
    }
    let survey = plan::Survey {
        server,
        layout: &layout,
        backups: &catalog.backups,
        base_listing: &base_listing,
        keeps: &keeps,
        fresh: &fresh,
    };
    let (steps, warnings) = plan::plan_backups(&survey, &doomed, skip_if_standalone)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let wals_dir = layout.wals();
    let wal_listing = if steps.iter().any(|(_, scope)| scope.is_some()) {
        storage
            .list_tree(&wals_dir)
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(Vec::new())
    };
    let mut steps = plan::plan_wal_cleanup(
        steps,
        &wals_dir,
        wal_listing,
        has_directory_shortcut(storage),
        request.dry_run,
    )?;
    let orphaned_manifests = match request.target {
        DeleteTarget::Policy(_) => plan::orphaned_manifests(&layout, &base_listing),
        DeleteTarget::Backup(_) => Vec::new(),
    };
    snapshots::check_snapshots(&mut steps, providers).await?;
    Ok(DeletionPlan {
        steps,
        orphaned_manifests,
    })
}

/// Carries out `plan`: lock check, deletion mark, snapshots (through the providers
/// `providers` gives) and `backup_label`, archives and manifest, backup.info, then the WAL
/// the step freed, one backup after the other.
pub async fn execute_deletion(
    storage: &CloudStorage,
    request: &DeleteRequest,
    plan: &DeletionPlan,
    providers: &dyn ProviderSource,
) -> Result<()> {
    let provider = storage.location().provider;
    let limit = storage.delete_batch_limit();
    let options = ExecutionOptions {
        batch_size: request
            .batch_size
            .map_or(limit, |size| size.clamp(1, limit as i64) as usize),
        check_object_lock: request.check_object_lock && provider == Provider::AwsS3,
    };
    let layout = ServerLayout::new(storage, &request.server_name);
    execute::execute_deletion(storage, &layout, plan, options, providers).await
}

/// The backup.info of each backup in `ids` (`None` when it has none).
async fn read_backup_infos(
    store: &impl CatalogStore,
    ids: &[String],
) -> Result<BTreeMap<String, Option<Bytes>>> {
    let reads: Vec<(String, Result<Option<Bytes>>)> = futures::stream::iter(ids)
        .map(|id| async move { (id.clone(), store.read_backup_info(id).await) })
        .buffered(PARALLEL_READS)
        .collect()
        .await;
    reads
        .into_iter()
        .map(|(id, read)| read.map(|bytes| (id, bytes)))
        .collect()
}

/// Whether whole `wals/<TTTTTTTTLLLLLLLL>/` directories are deleted at once. Barman does
/// it on S3 only; local directories get it too (a bucket there is never shared with
/// Barman, and removing a directory is one listing).
fn has_directory_shortcut(storage: &CloudStorage) -> bool {
    matches!(
        storage.location().provider,
        Provider::AwsS3 | Provider::Local
    )
}

#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fake::FakeCloud;
    use crate::storage::in_memory;

    pub(super) const A: &str = "20250101T000000";
    pub(super) const B: &str = "20250102T000000";
    pub(super) const C: &str = "20250103T000000";

    pub(super) fn segment(log: u32, seg: u32) -> String {
        format!("00000001{log:08X}{seg:08X}")
    }

    pub(super) async fn put(storage: &CloudStorage, key: &str, data: &[u8]) {
        storage.put(key, data.to_vec().into(), &[]).await.unwrap();
    }

    /// Three DONE backups (B with our manifest), WAL 0/01..0/12 and 1/00..1/12, and an
    /// orphaned manifest left by Barman's deletion of an older backup.
    pub(super) async fn bucket(url: &str) -> (CloudStorage, ServerLayout) {
        let storage = in_memory(url);
        let layout = ServerLayout::new(&storage, "srv");
        for (id, begin, end) in [
            (A, segment(0, 2), segment(0, 3)),
            (B, segment(0, 5), segment(0, 5)),
            (C, segment(1, 0x10), segment(1, 0x10)),
        ] {
            let info = BackupInfo {
                backup_id: Some(id.into()),
                status: Some(BackupStatus::Done),
                timeline: Some(1),
                begin_wal: Some(begin),
                end_wal: Some(end),
                ..Default::default()
            };
            let text = info.to_file_text().unwrap();
            put(&storage, &layout.backup_info(id), text.as_bytes()).await;
            put(&storage, &layout.backup_object(id, "data.tar.gz"), b"tar").await;
        }
        put(
            &storage,
            &layout.backup_object(B, "data_0001.tar.gz"),
            b"part",
        )
        .await;
        put(&storage, &layout.manifest(B), b"manifest").await;
        put(&storage, &layout.manifest("20241231T000000"), b"orphan").await;
        for log in 0..2 {
            for seg in 1..=0x12 {
                let name = segment(log, seg);
                let wal = crate::wal::WalName::parse(&name).unwrap();
                let key = format!("{}/{name}.gz", layout.wal_directory(&wal));
                put(&storage, &key, b"wal").await;
            }
        }
        (storage, layout)
    }

    pub(super) fn request(target: DeleteTarget, dry_run: bool) -> DeleteRequest {
        DeleteRequest {
            server_name: "srv".into(),
            target,
            minimum_redundancy: 0,
            dry_run,
            batch_size: None,
            check_object_lock: false,
        }
    }

    /// A cloud for runs that meet no snapshot backup.
    fn no_cloud() -> FakeCloud {
        FakeCloud::aws("eu-west-1")
    }

    pub(super) fn redundancy_one() -> DeleteTarget {
        DeleteTarget::Policy(RetentionPolicy::parse("REDUNDANCY 1").unwrap())
    }

    pub(super) async fn keys(storage: &CloudStorage) -> Vec<String> {
        storage
            .list_tree("pg")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    pub(super) fn deletion(step: &BackupStep) -> &BackupDeletion {
        match step {
            BackupStep::Delete(deletion) => deletion,
            BackupStep::Missing { id } => panic!("{id} planned as missing"),
        }
    }

    #[tokio::test]
    async fn retention_plan_names_each_backup_and_the_wal_it_frees() {
        let (storage, layout) = bucket("s3://bucket/pg").await;
        let before = keys(&storage).await;
        let plan = plan_deletion(&storage, &request(redundancy_one(), true), &no_cloud())
            .await
            .unwrap();
        assert_eq!(keys(&storage).await, before, "planning writes nothing");
        assert_eq!(plan.orphaned_manifests, ["20241231T000000"]);
        let [first, second] = &plan.steps[..] else {
            panic!("{plan:?}")
        };
        let (first, second) = (deletion(first), deletion(second));
        assert_eq!(first.id, A);
        assert_eq!(first.archives, [layout.backup_object(A, "data.tar.gz")]);
        assert_eq!(first.manifest, None);
        assert_eq!(second.id, B);
        assert_eq!(second.manifest, Some(layout.manifest(B)));
        assert_eq!(second.archives.len(), 2);

        // A frees the WAL before B's first one; B the whole 0000000100000000 directory,
        // then the segments of the next log before C's first one.
        let WalCleanup::Remove(wal) = &first.wal else {
            panic!("{:?}", first.wal)
        };
        assert!(wal.directories.is_empty());
        let names = |keys: &[String]| -> Vec<String> {
            keys.iter()
                .map(|k| k.rsplit('/').next().unwrap()[..24].to_string())
                .collect()
        };
        assert_eq!(
            names(&wal.files),
            (1..5).map(|s| segment(0, s)).collect::<Vec<_>>()
        );
        let WalCleanup::Remove(wal) = &second.wal else {
            panic!("{:?}", second.wal)
        };
        assert_eq!(wal.directories.len(), 1);
        assert_eq!(wal.directories[0].0, "pg/srv/wals/0000000100000000/");
        assert!(
            wal.directories[0].1.is_empty(),
            "a dry run lists nothing to send"
        );
        assert_eq!(
            names(&wal.files),
            (1..0x10).map(|s| segment(1, s)).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn executed_retention_leaves_the_newest_backup_and_its_wal() {
        let (storage, layout) = bucket("s3://bucket/pg").await;
        let request = request(redundancy_one(), false);
        let plan = plan_deletion(&storage, &request, &no_cloud())
            .await
            .unwrap();
        let WalCleanup::Remove(wal) = &deletion(&plan.steps[1]).wal else {
            panic!()
        };
        // A real run sends the directory's keys that A's step did not delete already.
        assert_eq!(wal.directories[0].1.len(), 0x12 - 4);
        execute_deletion(&storage, &request, &plan, &no_cloud())
            .await
            .unwrap();
        let mut expected = vec![
            layout.backup_object(C, "data.tar.gz"),
            layout.backup_info(C),
        ];
        for seg in 0x10..=0x12 {
            expected.push(format!(
                "pg/srv/wals/0000000100000001/{}.gz",
                segment(1, seg)
            ));
        }
        expected.sort();
        assert_eq!(keys(&storage).await, expected);
    }

    #[tokio::test]
    async fn deletion_by_id_refuses_kept_backups_and_finishes_interrupted_ones() {
        let (storage, layout) = bucket("gs://bucket/pg").await;
        put(&storage, &layout.keep_annotation(B), b"standalone").await;
        let refused = plan_deletion(
            &storage,
            &request(DeleteTarget::Backup(B.into()), false),
            &no_cloud(),
        )
        .await
        .unwrap_err();
        assert!(
            refused.to_string().contains("has a current keep request"),
            "{refused}"
        );

        // An interrupted deletion of A: marked FAILED, one archive already gone.
        let mut info =
            BackupInfo::load(A, &storage.get(&layout.backup_info(A)).await.unwrap()).unwrap();
        info.status = Some(BackupStatus::Failed);
        info.error = Some(DELETION_MARKER.into());
        let text = info.to_file_text().unwrap();
        put(&storage, &layout.backup_info(A), text.as_bytes()).await;
        storage
            .delete_objects(&[layout.backup_object(A, "data.tar.gz")], 1, 1)
            .await
            .into_result()
            .unwrap();
        let request = request(DeleteTarget::Backup("oldest".into()), false);
        let plan = plan_deletion(&storage, &request, &no_cloud())
            .await
            .unwrap();
        assert_eq!(deletion(&plan.steps[0]).id, A);
        assert!(deletion(&plan.steps[0]).archives.is_empty());
        execute_deletion(&storage, &request, &plan, &no_cloud())
            .await
            .unwrap();
        assert!(
            storage
                .list(&layout.backup_prefix(A))
                .await
                .unwrap()
                .is_empty()
        );
        // GCS has no directory shortcut: A's WAL went one by one.
        let left = keys(&storage).await;
        assert!(!left.iter().any(|k| k.contains(&segment(0, 1))), "{left:?}");
        assert!(left.iter().any(|k| k.contains(&segment(0, 5))), "{left:?}");
    }
}
