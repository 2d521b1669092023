//! `barman-cloud-backup` as a Barman server's post-backup hook: copies a backup the server
//! already took (`BARMAN_BACKUP_DIR`, `BARMAN_BACKUP_INFO_PATH`) to object storage, with
//! the archive naming, splitting, compression, `-J` and bandwidth of an online backup and
//! no PostgreSQL connection.
//!
//! Layout, as Barman 3.20.1 writes it: one archive family per tablespace, read from
//! `<backup dir>/<oid>` (only its `PG_<major>_*` directories), then `data` from
//! `<backup dir>/data` (which already holds `backup_label`) and `global/pg_control`; then
//! the server's own backup.info, byte for byte, as `base/<id>/backup.info`. No STARTED
//! marker, no FAILED backup.info: the server's catalog says what happened.
//!
//! What barman-rs adds:
//! * The backup.info goes last, only once every archive is complete and its size
//!   confirmed, and after the integrity manifest (with the digest of the `backup_label`
//!   stored in `data`): a listing never shows an incomplete backup as DONE.
//! * A backup.info already at that key (an earlier upload of the same backup) is removed
//!   first, and archive objects of an earlier attempt that this upload did not rewrite (a
//!   different `-S` or compression) are removed before the manifest: the directory then
//!   holds exactly this upload.
//! * A backup whose `data/backup_label` is missing is refused (our restore would refuse
//!   what it produced), and so is an incremental backup ([`ServerBackup::incremental_parent`],
//!   refused by the command with exit 63): no restore from object storage combines it.
//! * A snapshot backup of the server (`snapshots_info` in its backup.info) is refused by the
//!   command with exit 63 ([`ServerBackup::is_snapshot`]): its data is in snapshots the
//!   server's catalog owns, and a second catalog of them would let either side's retention
//!   delete what the other lists. Barman 3.20.1 fails on the missing `global/pg_control`
//!   (exit 1, retried forever).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use object_store::PutPayload;
use tokio::sync::mpsc;

use super::archive::{ArchiveSettings, ArchiveWriter, UploadMessage};
use super::owners::Owners;
use super::rules::PathRules;
use super::upload::{UploadReport, run_uploads};
use super::walk::{self, WalkProgress};
use super::{MAX_ARCHIVE_SIZE, chunk_size, first_line, integrity_manifest, upload_manifest};
use crate::catalog::BackupInfo;
use crate::catalog::manifest::{BACKUP_LABEL_ENTRY, Digest256};
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::layout::{ServerLayout, is_backup_id};
use crate::storage::CloudStorage;

/// A backup taken by a Barman server, as its post-backup hook sees it.
#[derive(Debug, Clone)]
pub struct ServerBackup {
    /// `BARMAN_BACKUP_ID`.
    pub backup_id: String,
    /// `BARMAN_BACKUP_DIR`: `data/` and one directory per tablespace OID.
    pub backup_dir: PathBuf,
    /// The server's backup.info file, unchanged.
    pub info_bytes: Vec<u8>,
    pub info: BackupInfo,
}

impl ServerBackup {
    /// Reads the server's backup.info (`BARMAN_BACKUP_INFO_PATH`).
    pub fn load(backup_id: &str, backup_dir: &Path, info_path: &Path) -> Result<Self> {
        if !is_backup_id(backup_id) {
            return Err(Error::Config(format!(
                "BARMAN_BACKUP_ID '{backup_id}' is not a backup ID (YYYYMMDDTHHMMSS)"
            )));
        }
        let info_bytes = std::fs::read(info_path).map_err(|e| Error::io(info_path, e))?;
        let info = BackupInfo::load(backup_id, &info_bytes)?;
        Ok(ServerBackup {
            backup_id: backup_id.to_string(),
            backup_dir: backup_dir.to_path_buf(),
            info_bytes,
            info,
        })
    }

    /// Barman 3.20.1 refuses backups the server compressed (`backup_compression`).
    pub fn is_compressed(&self) -> bool {
        self.info
            .compression
            .as_deref()
            .is_some_and(|c| !c.is_empty())
    }

    /// The parent of a block-level incremental backup (PostgreSQL 17+).
    pub fn incremental_parent(&self) -> Option<&str> {
        self.info
            .parent_backup_id
            .as_deref()
            .filter(|p| !p.is_empty())
    }

    /// A snapshot backup (`snapshots_info`): only its label is on the server's disk.
    pub fn is_snapshot(&self) -> bool {
        self.info.snapshots_info.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct HookUploadRequest {
    /// SERVER_NAME: the directory of the server in the bucket.
    pub server_name: String,
    pub compression: Option<Compression>,
    pub jobs: usize,
    pub max_archive_size: u64,
    pub min_chunk_size: Option<u64>,
    pub max_bandwidth: Option<u64>,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct HookUploadOutcome {
    pub bytes_stored: u64,
    pub objects: usize,
    pub elapsed: Duration,
}

/// Uploads `backup` to `storage`; the backup.info last. Any failure is Barman's
/// `Backup upload failed uploading data (<reason>)` (exit 1), with no backup.info stored.
pub async fn upload_server_backup(
    storage: Arc<CloudStorage>,
    backup: &ServerBackup,
    request: &HookUploadRequest,
    progress: Arc<WalkProgress>,
) -> Result<HookUploadOutcome> {
    let started = Instant::now();
    super::archive_extension(request.compression)?;
    tracing::info!(
        "Uploading backup '{}' of the Barman server from '{}'",
        backup.backup_id,
        backup.backup_dir.display()
    );
    progress.total.store(
        backup.info.size.unwrap_or(0).max(0) as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let outcome = upload(&storage, backup, request, progress)
        .await
        .map_err(|e| {
            Error::Failed(format!(
                "Backup upload failed uploading data ({})",
                first_line(&e)
            ))
        })?;
    let elapsed = started.elapsed();
    tracing::info!(
        "Upload of backup '{}' completed in {:.1} s",
        backup.backup_id,
        elapsed.as_secs_f64()
    );
    Ok(HookUploadOutcome {
        bytes_stored: outcome.total_bytes(),
        objects: outcome.objects.len(),
        elapsed,
    })
}

async fn upload(
    storage: &Arc<CloudStorage>,
    backup: &ServerBackup,
    request: &HookUploadRequest,
    progress: Arc<WalkProgress>,
) -> Result<UploadReport> {
    let layout = ServerLayout::new(storage, &request.server_name);
    let id = &backup.backup_id;
    let label_path = backup.backup_dir.join("data").join(BACKUP_LABEL_ENTRY);
    let label = std::fs::read(&label_path).map_err(|e| {
        Error::Failed(format!(
            "the backup has no usable backup_label ({}: {e})",
            label_path.display()
        ))
    })?;
    let label_digest = Digest256::of(&label);

    let info_key = layout.backup_info(id);
    // An earlier upload of this backup: invisible until this one is whole.
    let removed = storage
        .delete_objects(std::slice::from_ref(&info_key), 1, 1)
        .await;
    if let Some(error) = removed.errors.first() {
        return Err(Error::Failed(format!(
            "cannot remove the backup.info of an earlier upload ({info_key}): {error}"
        )));
    }

    let report = archive_backup(storage, backup, request, progress).await?;
    remove_stale_archives(storage, &layout, backup, &report).await?;
    let manifest = integrity_manifest(&layout.backup_dir(id), &report, label_digest)?;
    upload_manifest(storage, &layout.manifest(id), &manifest, &request.tags).await?;

    tracing::info!("Uploading '{info_key}'");
    storage
        .put(
            &info_key,
            PutPayload::from(backup.info_bytes.clone()),
            &request.tags,
        )
        .await?;
    storage
        .verify_size(&info_key, backup.info_bytes.len() as u64)
        .await?;
    Ok(report)
}

/// Archives the tablespaces and `data/` through the multipart uploader; returns once
/// every object is complete and its size confirmed.
async fn archive_backup(
    storage: &Arc<CloudStorage>,
    backup: &ServerBackup,
    request: &HookUploadRequest,
    progress: Arc<WalkProgress>,
) -> Result<UploadReport> {
    let provider = storage.location().provider;
    let settings = Arc::new(ArchiveSettings {
        layout: ServerLayout::new(storage, &request.server_name),
        backup_id: backup.backup_id.clone(),
        compression: request.compression,
        max_archive_size: request.max_archive_size.min(MAX_ARCHIVE_SIZE),
        chunk_size: chunk_size(provider, request.max_archive_size, request.min_chunk_size) as usize,
        max_bandwidth: request.max_bandwidth,
        compression_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    });
    let (sender, receiver) = mpsc::channel(1);
    let uploader = tokio::spawn(run_uploads(
        storage.clone(),
        receiver,
        request.jobs,
        request.tags.clone(),
    ));
    let cancel = Arc::new(AtomicBool::new(false));
    let producer = {
        let (backup, cancel) = (backup.clone(), cancel.clone());
        tokio::task::spawn_blocking(move || {
            archive_server_files(&backup, settings, sender, &progress, &cancel)
        })
    };
    let produced = tokio::select! {
        joined = producer => joined
            .map_err(|e| Error::Failed(format!("archive task failed: {e}")))
            .and_then(|r| r),
        signal = super::interrupted() => {
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
            Err(Error::Failed(signal.into()))
        }
    };
    if let Err(error) = produced {
        return Err(super::prefer_upload_error(error, uploader).await);
    }
    uploader
        .await
        .map_err(|e| Error::Failed(format!("upload task failed: {e}")))?
}

/// Barman's `_backup_data_files` on the server's copy: tablespaces by OID, then PGDATA
/// with the same exclusions as an online backup, then `global/pg_control`.
fn archive_server_files(
    backup: &ServerBackup,
    settings: Arc<ArchiveSettings>,
    uploads: mpsc::Sender<UploadMessage>,
    progress: &WalkProgress,
    cancel: &AtomicBool,
) -> Result<()> {
    let info = &backup.info;
    let major = info.pg_major_version().ok_or_else(|| {
        Error::Failed("the backup.info of the backup has no PostgreSQL version".into())
    })?;
    let owners = Arc::new(Owners::load());
    let original_pgdata = info.pgdata.clone().unwrap_or_default();
    let tablespaces = info.tablespaces.clone().unwrap_or_default();
    let mut inside_pgdata = Vec::new();
    for tablespace in &tablespaces {
        let family = tablespace.oid.to_string();
        let mut writer =
            ArchiveWriter::new(&family, settings.clone(), owners.clone(), uploads.clone());
        walk::archive_tree(
            &mut writer,
            &backup.backup_dir.join(&family),
            &PathRules::for_tablespace(&major),
            progress,
            cancel,
        )?;
        writer.finish()?;
        // Barman's test on the original locations, a plain string prefix.
        if let Some(rel) = tablespace
            .location
            .strip_prefix(&original_pgdata)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|_| !original_pgdata.is_empty())
        {
            inside_pgdata.push(rel.to_string());
        }
    }

    let mut pgdata = backup.backup_dir.join("data");
    if pgdata.is_symlink() {
        pgdata = pgdata.canonicalize().map_err(|e| Error::io(&pgdata, e))?;
    }
    let mut data = ArchiveWriter::new("data", settings, owners, uploads);
    let oids: Vec<u32> = tablespaces.iter().map(|t| t.oid).collect();
    let rules = PathRules::for_pgdata(&oids, &inside_pgdata);
    walk::archive_tree(&mut data, &pgdata, &rules, progress, cancel)?;
    let control = pgdata.join("global/pg_control");
    let meta = std::fs::metadata(&control).map_err(|e| Error::io(&control, e))?;
    if !data.add_file("global/pg_control", &control, &meta)? {
        return Err(Error::Failed(format!("{} vanished", control.display())));
    }
    data.finish()
}

/// Removes the archive objects of the backup's directory this upload did not write:
/// leftovers of an earlier, different attempt, which restores would otherwise mix in.
async fn remove_stale_archives(
    storage: &CloudStorage,
    layout: &ServerLayout,
    backup: &ServerBackup,
    report: &UploadReport,
) -> Result<()> {
    let prefix = layout.backup_prefix(&backup.backup_id);
    let objects = storage.list(&prefix).await?;
    let written: std::collections::BTreeSet<&str> =
        report.objects.iter().map(|(key, _)| key.as_str()).collect();
    let mut families = vec!["data".to_string()];
    families.extend(
        backup
            .info
            .tablespaces
            .iter()
            .flatten()
            .map(|t| t.oid.to_string()),
    );
    let stale: Vec<String> = objects
        .iter()
        .map(|object| object.key.clone())
        .filter(|key| {
            key.strip_prefix(&prefix)
                .is_some_and(|name| is_archive_name(name, &families))
        })
        .filter(|key| !written.contains(key.as_str()))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    tracing::info!(
        "Removing {} archive objects of an earlier upload: {}",
        stale.len(),
        stale.join(", ")
    );
    let outcome = storage
        .delete_objects(&stale, storage.delete_batch_limit(), 4)
        .await;
    match outcome.errors.first() {
        None => Ok(()),
        Some(error) => Err(Error::Failed(format!(
            "cannot remove the archives of an earlier upload: {error}"
        ))),
    }
}

/// An archive object name of one of `families` (`data.tar.gz`, `16385_0001.tar`), as
/// restores pick them: the family name, then `.` or `_`, and a tar extension.
fn is_archive_name(name: &str, families: &[String]) -> bool {
    !name.contains('/')
        && name.contains(".tar")
        && families.iter().any(|family| {
            name.strip_prefix(family.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_text(extra: &str) -> String {
        format!(
            "backup_label='START WAL LOCATION: 0/2000028'\nstatus=DONE\nversion=150004\n\
             pgdata=/var/lib/pg/data\nserver_name=main\n{extra}"
        )
    }

    #[test]
    fn the_servers_backup_info_is_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20250101T000000-backup.info");
        let text = info_text("compression=None\n# a comment\n");
        std::fs::write(&path, &text).unwrap();
        let backup = ServerBackup::load("20250101T000000", dir.path(), &path).unwrap();
        assert_eq!(backup.info_bytes, text.as_bytes());
        assert!(!backup.is_compressed());
        assert!(!backup.is_snapshot());
        assert_eq!(backup.info.pg_major_version().as_deref(), Some("15"));
    }

    #[test]
    fn stale_archives_are_the_families_tar_objects() {
        let families = ["data".to_string(), "16385".to_string()];
        for name in [
            "data.tar",
            "data.tar.gz",
            "data_0001.tar.zst",
            "16385.tar",
            "16385_0002.tar",
        ] {
            assert!(is_archive_name(name, &families), "{name}");
        }
        for name in [
            "backup.info",
            "barman-rs.manifest",
            "backup_label",
            "annotations/keep",
            "16386.tar",
            "database.tar",
        ] {
            assert!(!is_archive_name(name, &families), "{name}");
        }
    }

    #[test]
    fn compressed_backups_and_odd_ids_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.info");
        std::fs::write(&path, info_text("compression=gzip\n")).unwrap();
        let backup = ServerBackup::load("20250101T000000", dir.path(), &path).unwrap();
        assert!(backup.is_compressed());
        let error = ServerBackup::load("../x", dir.path(), &path).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        let missing = ServerBackup::load("20250101T000000", dir.path(), &dir.path().join("no"));
        assert!(matches!(missing, Err(Error::Io { .. })));
    }
}
