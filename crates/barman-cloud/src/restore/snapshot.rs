//! `barman-cloud-restore` of snapshot backups (Barman: `barman/clients/cloud_restore.py`
//! `CloudBackupDownloaderSnapshot`, `barman/recovery_executor.py`
//! `SnapshotRecoveryExecutor`): nothing is copied but the backup label. The user has made
//! one disk from each snapshot, attached them to the recovery instance and mounted them
//! where the source disks were; we check all of that, with Barman's messages, then put
//! `backup_label` in place.
//!
//! Beyond Barman: the label is checked against our integrity manifest when the backup has
//! one, and written atomically (a temporary file, fsynced, renamed, directory fsynced).

use std::io::Write;
use std::path::Path;

use crate::catalog::BackupInfo;
use crate::catalog::manifest::{BACKUP_LABEL_ENTRY, Digest256, IntegrityManifest};
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::snapshot::host::Host;
use crate::snapshot::mounts::resolve_mount;
use crate::snapshot::{AttachedDisk, ProviderOptions, ProviderSource};
use crate::storage::CloudStorage;

/// What the command line says about a recovery onto cloned disks.
#[derive(Debug, Clone, Default)]
pub struct SnapshotRecovery {
    /// `--snapshot-recovery-instance`.
    pub instance: Option<String>,
    /// What completes the backup's `snapshots_info` (AWS profile and region, GCP zone,
    /// Azure resource group and credential).
    pub options: ProviderOptions,
}

/// Checks the recovery instance and writes `backup_label` into `destination`.
#[allow(clippy::too_many_arguments)]
pub async fn restore_snapshot_backup(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
    info: &BackupInfo,
    destination: &Path,
    relocations: &[(String, std::path::PathBuf)],
    recovery: &SnapshotRecovery,
    providers: &dyn ProviderSource,
    host: &dyn Host,
) -> Result<()> {
    let Some(snapshots) = &info.snapshots_info else {
        return Err(Error::Refused(format!(
            "Backup {backup_id} is not a snapshot backup"
        )));
    };
    if !relocations.is_empty() {
        return Err(Error::Config(format!(
            "Backup {backup_id} is a snapshot backup therefore tablespace relocation rules \
             cannot be used."
        )));
    }
    let provider = providers.for_backup(snapshots).await?;
    let mut missing = Vec::new();
    if recovery.instance.is_none() {
        missing.push("snapshot_recovery_instance");
    }
    missing.extend(recovery.options.missing_for_restore(snapshots.provider()));
    let Some(instance) = recovery.instance.as_deref().filter(|_| missing.is_empty()) else {
        return Err(Error::Config(format!(
            "Incomplete options for snapshot restore - missing: {}",
            missing.join(", ")
        )));
    };

    check_recovery_instance(snapshots, instance, provider.as_ref(), host, destination).await?;

    let layout = ServerLayout::new(storage, server);
    let label_key = layout.backup_label(backup_id);
    let label = storage.get(&label_key).await?;
    check_label(storage, &layout.manifest(backup_id), &label_key, &label).await?;
    let destination = destination.to_path_buf();
    tokio::task::spawn_blocking(move || write_label(&destination, &label))
        .await
        .map_err(|e| Error::Failed(format!("writing backup_label failed: {e}")))?
}

/// Barman's snapshot recovery preconditions (`SnapshotRecoveryExecutor`): a disk cloned
/// from each of the backup's snapshots is attached to `instance`, each one is mounted
/// where and how its source disk was (as `host` sees it), and `destination` is a
/// directory there. Shared by barman-cloud-restore and `barman recover`.
pub async fn check_recovery_instance(
    snapshots: &crate::catalog::snapshots::SnapshotsInfo,
    instance: &str,
    provider: &dyn crate::snapshot::SnapshotProvider,
    host: &dyn Host,
    destination: &Path,
) -> Result<()> {
    // Each snapshot of the backup must be the source of a disk of the recovery instance.
    let attached = provider.attached_disks(instance, None).await?;
    let mut clones: Vec<(&AttachedDisk, &crate::catalog::snapshots::SnapshotMetadata)> = Vec::new();
    let mut missing = Vec::new();
    for snapshot in &snapshots.snapshots {
        let id = snapshot.identifier().unwrap_or_default();
        match attached
            .iter()
            .find(|d| d.source_snapshot.as_deref() == Some(id))
        {
            Some(disk) => clones.push((disk, snapshot)),
            None => missing.push(id.to_string()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::Provider(format!(
            "The following snapshots are not attached to recovery instance {instance}: {}",
            missing.join(", ")
        )));
    }

    // Mounted where, and how, the source disks were.
    clones.sort_by(|a, b| a.0.identifier.cmp(&b.0.identifier));
    let mut point_errors = Vec::new();
    let mut option_errors = Vec::new();
    for (disk, snapshot) in &clones {
        let mount = match resolve_mount(host, &disk.device).await {
            Ok(mount) => mount,
            Err(e) => {
                point_errors.push(format!(
                    "Error finding mount point for disk {}: {e}",
                    disk.identifier
                ));
                continue;
            }
        };
        let source = disk.source_snapshot.as_deref().unwrap_or_default();
        let expected_point = snapshot.mount_point.as_str().unwrap_or("None");
        let expected_options = snapshot.mount_options.as_str().unwrap_or("None");
        if mount.mount_point != expected_point {
            point_errors.push(format!(
                "Disk {} cloned from snapshot {source} is mounted at {} but {expected_point} \
                 was expected.",
                disk.identifier, mount.mount_point
            ));
        }
        if mount.mount_options != expected_options {
            option_errors.push(format!(
                "Disk {} cloned from snapshot {source} is mounted with {} but \
                 {expected_options} was expected.",
                disk.identifier, mount.mount_options
            ));
        }
    }
    if !point_errors.is_empty() {
        return Err(Error::Provider(format!(
            "Error checking mount points: {}",
            point_errors.join(", ")
        )));
    }
    if !option_errors.is_empty() {
        return Err(Error::Provider(format!(
            "Error checking mount options: {}",
            option_errors.join(", ")
        )));
    }

    let destination_text = destination.to_string_lossy();
    if !host.directory_exists(&destination_text).await? {
        return Err(Error::Provider(format!(
            "Recovery directory '{destination_text}' does not exist on the recovery instance. \
             Check all required disks have been created, attached and mounted."
        )));
    }

    Ok(())
}

/// With a manifest (snapshot backups written by barman-rs), the label must be the one
/// stored at backup time.
async fn check_label(
    storage: &CloudStorage,
    manifest_key: &str,
    label_key: &str,
    label: &[u8],
) -> Result<()> {
    let manifest = match storage.get(manifest_key).await {
        Ok(bytes) => IntegrityManifest::parse(&bytes).map_err(|e| {
            Error::Corrupt(format!(
                "Cannot read the integrity manifest {manifest_key}: {e}"
            ))
        })?,
        Err(e) if matches!(e.root(), Error::NotFound(_)) => {
            tracing::info!("No integrity manifest ({manifest_key}): backup_label not checked");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match manifest.get(BACKUP_LABEL_ENTRY) {
        Some(expected) if *expected == Digest256::of(label) => Ok(()),
        Some(_) => Err(Error::Corrupt(format!(
            "{label_key} is not the backup label the integrity manifest records"
        ))),
        None => Err(Error::Corrupt(format!(
            "The integrity manifest {manifest_key} has no backup_label entry"
        ))),
    }
}

/// `destination/backup_label`, replaced atomically and durably; created with the umask's
/// permissions, as Barman's download does (PostgreSQL must be able to read it).
fn write_label(destination: &Path, label: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let target = destination.join("backup_label");
    let temp = destination.join(format!(".backup_label.barman-rs.{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&temp)?;
        file.write_all(label)?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)?;
        std::fs::File::open(destination)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        Error::io(&target, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fake::FakeCloud;
    use crate::snapshot::host::fake::FakeHost;
    use crate::storage::in_memory;
    use object_store::PutPayload;

    const ID: &str = "20250101T000000";
    const LABEL: &str = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n";

    /// A snapshot backup of one disk (snap-1, mounted at /opt/disk0 with rw,noatime), its
    /// label stored with (or without) a manifest, and a recovery instance whose disk was
    /// made from snap-1.
    async fn world(
        manifest_label: Option<&str>,
    ) -> (CloudStorage, FakeCloud, BackupInfo, tempfile::TempDir) {
        let storage = in_memory("s3://bucket/pg");
        let layout = ServerLayout::new(&storage, "srv");
        storage
            .put(&layout.backup_label(ID), PutPayload::from(LABEL), &[])
            .await
            .unwrap();
        if let Some(label) = manifest_label {
            let mut manifest = IntegrityManifest::default();
            manifest.insert(BACKUP_LABEL_ENTRY, Digest256::of(label.as_bytes()));
            storage
                .put(
                    &layout.manifest(ID),
                    PutPayload::from(manifest.render().into_bytes()),
                    &[],
                )
                .await
                .unwrap();
        }
        let cloud = FakeCloud::aws("eu-west-1");
        cloud.add_snapshot("snap-1", "pgdata-20250101t000000");
        let mut clone = cloud.disk("vol-clone", 0);
        clone.source_snapshot = Some("snap-1".into());
        cloud.attach("i-recovery", clone);
        let info = BackupInfo {
            backup_id: Some(ID.into()),
            snapshots_info: Some(cloud.snapshots_info_of(&["snap-1"])),
            ..Default::default()
        };
        (storage, cloud, info, tempfile::tempdir().unwrap())
    }

    fn mounted(destination: &Path, mount: &str) -> FakeHost {
        let dest = destination.to_string_lossy().into_owned();
        FakeHost::default()
            .answer("ls /sys/block", true, "sda\n")
            .answer("findmnt -o TARGET,OPTIONS -n /dev/sdf", true, mount)
            .answer(&format!("test -e {dest}"), true, "")
            .answer(&format!("test -d {dest}"), true, "")
    }

    async fn restore(
        storage: &CloudStorage,
        cloud: &FakeCloud,
        info: &BackupInfo,
        destination: &Path,
        host: &FakeHost,
        instance: Option<&str>,
    ) -> Result<()> {
        let recovery = SnapshotRecovery {
            instance: instance.map(str::to_string),
            options: ProviderOptions::default(),
        };
        restore_snapshot_backup(
            storage,
            "srv",
            ID,
            info,
            destination,
            &[],
            &recovery,
            cloud,
            host,
        )
        .await
    }

    #[tokio::test]
    async fn the_label_lands_once_the_clones_are_checked() {
        let (storage, cloud, info, dir) = world(Some(LABEL)).await;
        let host = mounted(dir.path(), "/opt/disk0 rw,noatime\n");
        restore(
            &storage,
            &cloud,
            &info,
            dir.path(),
            &host,
            Some("i-recovery"),
        )
        .await
        .unwrap();
        let written = std::fs::read_to_string(dir.path().join("backup_label")).unwrap();
        assert_eq!(written, LABEL);
        // The region recorded at backup time reached the provider.
        assert_eq!(
            cloud.requests()[0].info("region").and_then(|v| v.as_str()),
            Some("eu-west-1")
        );
        // Nothing else in the destination (no temporary file left).
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[tokio::test]
    async fn each_check_refuses_with_barmans_message() {
        let (storage, cloud, info, dir) = world(None).await;
        let refusal = |host: FakeHost, instance: Option<&'static str>| {
            let (storage, cloud, info, dir) = (&storage, &cloud, &info, &dir);
            async move {
                restore(storage, cloud, info, dir.path(), &host, instance)
                    .await
                    .unwrap_err()
                    .to_string()
            }
        };
        let good = || mounted(dir.path(), "/opt/disk0 rw,noatime\n");
        assert_eq!(
            refusal(good(), None).await,
            "Incomplete options for snapshot restore - missing: snapshot_recovery_instance"
        );
        assert_eq!(
            refusal(good(), Some("i-other")).await,
            "Cannot find instance i-other"
        );
        cloud.add_instance("i-other");
        assert_eq!(
            refusal(good(), Some("i-other")).await,
            "The following snapshots are not attached to recovery instance i-other: snap-1"
        );
        let elsewhere = mounted(dir.path(), "/mnt/x rw,noatime\n");
        assert_eq!(
            refusal(elsewhere, Some("i-recovery")).await,
            "Error checking mount points: Disk vol-clone cloned from snapshot snap-1 is \
             mounted at /mnt/x but /opt/disk0 was expected."
        );
        let options = mounted(dir.path(), "/opt/disk0 ro\n");
        assert_eq!(
            refusal(options, Some("i-recovery")).await,
            "Error checking mount options: Disk vol-clone cloned from snapshot snap-1 is \
             mounted with ro but rw,noatime was expected."
        );
        let unmounted = FakeHost::default().answer("ls /sys/block", true, "");
        assert_eq!(
            refusal(unmounted, Some("i-recovery")).await,
            "Error checking mount points: Error finding mount point for disk vol-clone: Could \
             not find device /dev/sdf at any mount point"
        );
        let no_dir = FakeHost::default()
            .answer("ls /sys/block", true, "")
            .answer(
                "findmnt -o TARGET,OPTIONS -n /dev/sdf",
                true,
                "/opt/disk0 rw,noatime\n",
            );
        let e = refusal(no_dir, Some("i-recovery")).await;
        assert!(e.starts_with("Recovery directory '"), "{e}");
        let e = restore_snapshot_backup(
            &storage,
            "srv",
            ID,
            &info,
            dir.path(),
            &[("t".into(), "/x".into())],
            &SnapshotRecovery {
                instance: Some("i-recovery".into()),
                options: ProviderOptions::default(),
            },
            &cloud,
            &good(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            format!(
                "Backup {ID} is a snapshot backup therefore tablespace relocation rules cannot \
                 be used."
            )
        );
        assert!(!dir.path().join("backup_label").exists());
    }

    #[tokio::test]
    async fn a_label_the_manifest_does_not_know_is_refused() {
        let (storage, cloud, info, dir) = world(Some("another label\n")).await;
        let host = mounted(dir.path(), "/opt/disk0 rw,noatime\n");
        let e = restore(
            &storage,
            &cloud,
            &info,
            dir.path(),
            &host,
            Some("i-recovery"),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(!dir.path().join("backup_label").exists());
    }
}
