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
use crate::snapshot::{AttachedDisk, ProviderSource};
use crate::storage::CloudStorage;

/// Checks the recovery instance and writes `backup_label` into `destination`.
#[allow(clippy::too_many_arguments)]
pub async fn restore_snapshot_backup(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
    info: &BackupInfo,
    destination: &Path,
    relocations: &[(String, std::path::PathBuf)],
    recovery_instance: Option<&str>,
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
    let Some(instance) = recovery_instance else {
        return Err(Error::Config(
            "Incomplete options for snapshot restore - missing: snapshot_recovery_instance".into(),
        ));
    };

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

    let layout = ServerLayout::new(storage, server);
    let label_key = layout.backup_label(backup_id);
    let label = storage.get(&label_key).await?;
    check_label(storage, &layout.manifest(backup_id), &label_key, &label).await?;
    let destination = destination.to_path_buf();
    tokio::task::spawn_blocking(move || write_label(&destination, &label))
        .await
        .map_err(|e| Error::Failed(format!("writing backup_label failed: {e}")))?
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
