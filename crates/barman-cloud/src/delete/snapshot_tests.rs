//! Deleting snapshot backups, against the in-memory bucket of [`super::tests`] and the
//! fake cloud of [`crate::snapshot::fake`].

use super::tests::{A, B, C, bucket, deletion, keys, put, redundancy_one, request};
use super::*;
use crate::catalog::pyliteral::PyValue;
use crate::catalog::snapshots::SnapshotMetadata;
use crate::snapshot::fake::{Call, FakeCloud, locked_message};

/// The bucket of [`super::tests::bucket`] with A and B made snapshot backups (no
/// archives, a `backup_label` each): A of `snap-a1` and `snap-a2` in eu-west-1, B of
/// `snap-b1` and `snap-b2` recorded in us-east-2. C stays an object-store backup.
async fn snapshot_bucket() -> (CloudStorage, ServerLayout, FakeCloud) {
    let (storage, layout) = bucket("s3://bucket/pg").await;
    let cloud = FakeCloud::aws("eu-west-1");
    for (id, snapshots, region) in [
        (A, ["snap-a1", "snap-a2"], "eu-west-1"),
        (B, ["snap-b1", "snap-b2"], "us-east-2"),
    ] {
        for (disk, snapshot) in snapshots.iter().enumerate() {
            cloud.add_snapshot(snapshot, &format!("disk{disk}-{}", id.to_lowercase()));
        }
        let mut info = cloud.snapshots_info_of(&snapshots);
        info.set_info("region", PyValue::str(region));
        set_snapshots_info(&storage, &layout, id, info).await;
        put(&storage, &layout.backup_label(id), b"START WAL LOCATION").await;
    }
    let archives = [
        layout.backup_object(A, "data.tar.gz"),
        layout.backup_object(B, "data.tar.gz"),
        layout.backup_object(B, "data_0001.tar.gz"),
    ];
    storage
        .delete_objects(&archives, 10, 1)
        .await
        .into_result()
        .unwrap();
    (storage, layout, cloud)
}

async fn backup_info(storage: &CloudStorage, layout: &ServerLayout, id: &str) -> BackupInfo {
    BackupInfo::load(id, &storage.get(&layout.backup_info(id)).await.unwrap()).unwrap()
}

async fn set_snapshots_info(
    storage: &CloudStorage,
    layout: &ServerLayout,
    id: &str,
    info: crate::catalog::snapshots::SnapshotsInfo,
) {
    let mut backup = backup_info(storage, layout, id).await;
    backup.snapshots_info = Some(info);
    let text = backup.to_file_text().unwrap();
    put(storage, &layout.backup_info(id), text.as_bytes()).await;
}

fn identifiers(snapshots: &[SnapshotMetadata]) -> Vec<&str> {
    snapshots.iter().map(|s| s.identifier().unwrap()).collect()
}

fn is_name_lookup(call: &Call) -> bool {
    matches!(call, Call::SnapshotName(_))
}

#[tokio::test]
async fn a_snapshot_not_named_for_its_backup_refuses_the_whole_run() {
    let (storage, _, cloud) = snapshot_bucket().await;
    // snap-b2 is now A's (its Name tag says so), whatever B's backup.info records.
    cloud.add_snapshot("snap-b2", "disk1-20250101t000000");
    let before = keys(&storage).await;
    for dry_run in [false, true] {
        let refused = plan_deletion(&storage, &request(redundancy_one(), dry_run), &cloud)
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::Provider(_)), "{refused:?}");
        assert_eq!(
            refused.to_string(),
            "Refusing to delete snapshot snap-b2: it is not recognized as a snapshot created \
             for backup 20250102T000000"
        );
    }
    // Nothing of A either, although A's snapshots are its own and come first.
    assert_eq!(keys(&storage).await, before);
    assert!(cloud.deleted().is_empty(), "{:?}", cloud.calls());
    assert_eq!(cloud.snapshots().len(), 4);
}

#[tokio::test]
async fn a_snapshot_entry_without_identifier_is_refused() {
    let (storage, layout, cloud) = snapshot_bucket().await;
    let mut info = cloud.snapshots_info_of(&["snap-a1", "snap-a2"]);
    info.snapshots[1].set_field("snapshot_id", PyValue::None);
    set_snapshots_info(&storage, &layout, A, info).await;
    let refused = plan_deletion(
        &storage,
        &request(DeleteTarget::Backup(A.into()), false),
        &cloud,
    )
    .await
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Refusing to delete snapshot None: it is not recognized as a snapshot created for \
         backup 20250101T000000"
    );
    assert!(cloud.calls().is_empty());
}

#[tokio::test]
async fn retention_deletes_each_backups_snapshots_then_its_label_and_the_rest() {
    let (storage, layout, cloud) = snapshot_bucket().await;
    cloud.remove_snapshot("snap-a2");
    let request = request(redundancy_one(), false);
    let plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    assert!(cloud.deleted().is_empty(), "planning deletes nothing");
    let (a, b) = (deletion(&plan.steps[0]), deletion(&plan.steps[1]));
    let checked = a.snapshots.as_ref().unwrap();
    assert_eq!(identifiers(&checked.to_delete), ["snap-a1"]);
    assert_eq!(checked.gone, ["snap-a2"], "already gone: nothing to delete");
    assert_eq!(a.snapshot_label, Some(layout.backup_label(A)));
    assert_eq!(
        identifiers(&b.snapshots.as_ref().unwrap().to_delete),
        ["snap-b1", "snap-b2"]
    );
    // Each backup's provider comes from its own snapshots_info: region as recorded.
    let regions: Vec<PyValue> = cloud
        .requests()
        .iter()
        .map(|info| info.info("region").unwrap().clone())
        .collect();
    assert_eq!(
        regions,
        [PyValue::str("eu-west-1"), PyValue::str("us-east-2")]
    );
    assert_eq!(
        cloud.requests()[0],
        a.info.snapshots_info.clone().unwrap(),
        "the provider is asked with the backup's snapshots_info"
    );

    execute_deletion(&storage, &request, &plan, &cloud)
        .await
        .unwrap();
    assert_eq!(cloud.deleted(), ["snap-a1", "snap-b1", "snap-b2"]);
    assert!(cloud.snapshots().is_empty());
    let calls = cloud.calls();
    let last_lookup = calls.iter().rposition(is_name_lookup).unwrap();
    let first_delete = calls
        .iter()
        .position(|c| matches!(c, Call::DeleteSnapshot(_)))
        .unwrap();
    assert!(last_lookup < first_delete, "{calls:?}");
    let left = keys(&storage).await;
    assert!(
        !left.iter().any(|k| k.contains(A) || k.contains(B)),
        "{left:?}"
    );
    assert!(left.contains(&layout.backup_info(C)), "{left:?}");
}

#[tokio::test]
async fn a_locked_snapshot_stops_the_run_and_its_backup_stays_for_a_later_one() {
    let (storage, layout, cloud) = snapshot_bucket().await;
    cloud.lock("snap-b2");
    let request = request(redundancy_one(), false);
    let plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    let locked = execute_deletion(&storage, &request, &plan, &cloud)
        .await
        .unwrap_err();
    assert!(matches!(locked, Error::SnapshotLocked(_)), "{locked:?}");
    assert_eq!(locked.to_string(), locked_message("snap-b2"));
    // A, deleted before, stays deleted.
    assert!(
        storage
            .list(&layout.backup_prefix(A))
            .await
            .unwrap()
            .is_empty()
    );
    // B lost snap-b1: its backup.info says the deletion is under way; label kept.
    assert!(is_interrupted_deletion(
        &backup_info(&storage, &layout, B).await
    ));
    assert!(storage.get(&layout.backup_label(B)).await.is_ok());
    assert!(storage.get(&layout.manifest(B)).await.is_ok());
    assert_eq!(cloud.snapshot("snap-b1"), None);
    assert!(cloud.snapshot("snap-b2").is_some());

    // Once the lock has gone, the next run by policy finishes B.
    cloud.unlock("snap-b2");
    let plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    let [step] = &plan.steps[..] else {
        panic!("{plan:?}")
    };
    let checked = deletion(step).snapshots.as_ref().unwrap();
    assert_eq!(
        (deletion(step).id.as_str(), &checked.gone[..]),
        (B, &["snap-b1".to_string()][..])
    );
    execute_deletion(&storage, &request, &plan, &cloud)
        .await
        .unwrap();
    assert!(
        storage
            .list(&layout.backup_prefix(B))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(cloud.snapshots().is_empty());
}

#[tokio::test]
async fn after_a_failure_no_snapshot_deletion_starts_and_an_untouched_backup_is_restored() {
    let (storage, layout, cloud) = snapshot_bucket().await;
    let snapshots = [
        "snap-a1", "snap-a2", "snap-a3", "snap-a4", "snap-a5", "snap-a6",
    ];
    for (disk, snapshot) in snapshots.iter().enumerate() {
        cloud.add_snapshot(snapshot, &format!("disk{disk}-20250101t000000"));
    }
    set_snapshots_info(&storage, &layout, A, cloud.snapshots_info_of(&snapshots)).await;
    let original = storage.get(&layout.backup_info(A)).await.unwrap();
    cloud.lock("snap-a1");
    let request = request(DeleteTarget::Backup(A.into()), false);
    let plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    let locked = execute_deletion(&storage, &request, &plan, &cloud)
        .await
        .unwrap_err();
    assert_eq!(locked.to_string(), locked_message("snap-a1"));
    // The first deletion failed before the others in flight were started: none was.
    assert_eq!(cloud.deleted(), ["snap-a1"]);
    assert_eq!(cloud.snapshots().len(), 6 + 2);
    // Nothing went: backup.info as it was, not marked.
    assert_eq!(storage.get(&layout.backup_info(A)).await.unwrap(), original);
    assert!(storage.get(&layout.backup_label(A)).await.is_ok());

    // Any other provider error stops the run the same way, as the provider gave it.
    cloud.unlock("snap-a1");
    cloud.fail(crate::snapshot::fake::Op::DeleteSnapshot, None, || {
        Error::Provider("Deletion of snapshot failed".into())
    });
    let plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    let failed = execute_deletion(&storage, &request, &plan, &cloud)
        .await
        .unwrap_err();
    assert!(matches!(failed, Error::Provider(_)), "{failed:?}");
    assert!(storage.get(&layout.backup_info(A)).await.is_ok());
}

#[tokio::test]
async fn a_dry_run_checks_the_snapshots_and_deletes_none() {
    let (storage, _, cloud) = snapshot_bucket().await;
    let before = keys(&storage).await;
    let plan = plan_deletion(&storage, &request(redundancy_one(), true), &cloud)
        .await
        .unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert!(deletion(&plan.steps[0]).snapshots.is_some());
    let calls = cloud.calls();
    assert_eq!(calls.iter().filter(|c| is_name_lookup(c)).count(), 4);
    assert!(cloud.deleted().is_empty(), "{calls:?}");
    assert_eq!(keys(&storage).await, before);
}

#[tokio::test]
async fn a_plan_whose_snapshots_were_not_checked_is_not_carried_out() {
    let (storage, layout, cloud) = snapshot_bucket().await;
    let request = request(DeleteTarget::Backup(A.into()), false);
    let mut plan = plan_deletion(&storage, &request, &cloud).await.unwrap();
    let BackupStep::Delete(step) = &mut plan.steps[0] else {
        panic!()
    };
    step.snapshots = None;
    let before = keys(&storage).await;
    assert!(
        execute_deletion(&storage, &request, &plan, &cloud)
            .await
            .is_err()
    );
    assert_eq!(keys(&storage).await, before);
    assert!(storage.get(&layout.backup_info(A)).await.is_ok());
    assert!(cloud.deleted().is_empty());
}
