//! Base backups to object storage, laid out as `barman-cloud-backup` 3.20.1 lays them out.
//!
//! Order of work (Barman's): start a non-exclusive backup on the held session, publish a
//! STARTED backup.info, archive every tablespace then PGDATA, stop the backup, switch WAL,
//! create a restore point, append `backup_label` to the data archive, wait until every
//! object is stored and its size confirmed, then publish the DONE backup.info. Any
//! failure after the start publishes a FAILED backup.info instead and aborts the open
//! multipart upload.
//!
//! Not in Barman: just before the DONE backup.info, the integrity manifest
//! ([`crate::catalog::manifest`]) records the size and SHA-256 of every archive object
//! (hashed as its bytes are produced) and of the `backup_label` appended to the data
//! archive. Barman 3.20.1 ignores the object.
//!
//! Unlike Barman, reading, tar and compression run on their own threads while parts
//! upload concurrently, and gzip/bzip2/zstd compress on every core while still writing a
//! single member or frame per object.

mod archive;
pub mod hook;
mod owners;
pub mod rules;
pub mod snapshot;
mod upload;
mod walk;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use object_store::PutPayload;
use tokio::sync::mpsc;

pub use archive::archive_extension;
use archive::{ArchiveSettings, ArchiveWriter};
use owners::Owners;
use rules::PathRules;
use upload::{UploadReport, run_uploads};
pub use walk::WalkProgress;

use crate::catalog::manifest::{BACKUP_LABEL_ENTRY, Digest256, IntegrityManifest};
use crate::catalog::pyliteral::{PyDict, PyValue};
use crate::catalog::{BackupInfo, BackupStatus, Tablespace, timestamp};
use crate::catalog_store::{BucketCatalog, CatalogStore};
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::pg::PgSession;
use crate::pg::session::{MIN_SERVER_VERSION, wal_position};
use crate::storage::{CloudStorage, Provider};

/// `barman-cloud-backup` stores object-store backups under this server name in
/// backup.info (and in the PostgreSQL backup label), whatever SERVER_NAME is.
pub const CLOUD_SERVER_NAME: &str = "cloud";

/// Largest `-S` Barman accepts; larger values are capped with a warning.
pub const MAX_ARCHIVE_SIZE: u64 = 1 << 40;

/// Barman's limits on the tags of backup objects: at most 10, keys unique. Checked before
/// anything is contacted.
pub fn check_tags(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > 10 {
        return Err(Error::Config(
            "Maximum number of tags per object exceeded (10 tags allowed)".into(),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: Vec<&str> = tags
        .iter()
        .filter(|(k, _)| !seen.insert(k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if !duplicates.is_empty() {
        return Err(Error::Config(format!(
            "Duplicate tag keys found: {}",
            duplicates.join(", ")
        )));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// SERVER_NAME: the directory of the server in the bucket.
    pub server_name: String,
    pub backup_name: Option<String>,
    pub compression: Option<Compression>,
    pub jobs: usize,
    pub max_archive_size: u64,
    pub min_chunk_size: Option<u64>,
    pub max_bandwidth: Option<u64>,
    pub immediate_checkpoint: bool,
    /// Seconds between keep-alive queries on the session during the copy; 0 disables.
    pub keepalive_interval: u64,
    pub tags: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct BackupOutcome {
    pub backup_id: String,
    pub info: BackupInfo,
    pub bytes_read: u64,
    pub bytes_stored: u64,
    pub objects: usize,
    pub elapsed: Duration,
}

/// Upload part size. An object exceeds `-S` by at most one file (PostgreSQL keeps
/// relation files under 1 GiB) plus codec buffers, so parts of (`-S` + 2 GiB) / part-limit
/// always fit the provider's part limit. Barman uses twice `-S` instead; half the part
/// size halves the memory the parts in flight take (readers never see parts).
pub fn chunk_size(provider: Provider, max_archive_size: u64, min_chunk_size: Option<u64>) -> u64 {
    // (most parts, smallest part, largest part) the provider accepts; a --min-chunk-size
    // above the largest could never be sent, and would only be buffered first.
    let (max_chunks, min_chunk, max_chunk) = match provider {
        Provider::AzureBlobStorage => (50_000, 64 << 10, 4000 << 20),
        _ => (10_000, 5 << 20, 5 << 30),
    };
    let capped = max_archive_size.min(MAX_ARCHIVE_SIZE);
    (capped + (2 << 30))
        .div_ceil(max_chunks)
        .max(min_chunk)
        .max(min_chunk_size.unwrap_or(0).min(max_chunk))
}

fn new_backup_id() -> String {
    chrono::Local::now().format("%Y%m%dT%H%M%S").to_string()
}

fn parse_pg_time(text: &str) -> Result<timestamp::Timestamp> {
    timestamp::parse(text)
        .map_err(|e| Error::Postgres(format!("unexpected time from PostgreSQL '{text}': {e}")))
}

pub(crate) fn first_line(error: &Error) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    if line.is_empty() {
        format!("{error:?}")
    } else {
        line
    }
}

/// Takes a base backup of the server behind `session` into `storage`.
pub async fn take_backup(
    storage: Arc<CloudStorage>,
    session: PgSession,
    request: &BackupRequest,
    progress: Arc<WalkProgress>,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    if session.server_version() < MIN_SERVER_VERSION {
        return Err(Error::Unsupported(format!(
            "unsupported PostgresSQL version {}. Expecting 9.6 or above.",
            session.major_version()
        )));
    }
    archive_extension(request.compression)?;
    // Barman's first storage call comes inside its backup, where any failure ends the
    // backup with exit 1 (operation failed), unreachable storage included.
    let backup_id = unused_backup_id(&storage, &request.server_name)
        .await
        .map_err(|e| Error::Failed(format!("Backup failed uploading data ({})", first_line(&e))))?;
    let mut info = server_info(&session, &backup_id, CLOUD_SERVER_NAME).await?;
    progress.total.store(
        info.cluster_size.unwrap_or(0).max(0) as u64,
        Ordering::Relaxed,
    );
    let pgdata = info
        .pgdata
        .clone()
        .ok_or_else(|| Error::Postgres("cannot read data_directory from PostgreSQL".into()))?;

    tracing::info!("Starting backup '{backup_id}'");
    let label = format!("Barman backup {CLOUD_SERVER_NAME} {backup_id}");
    start_backup_mode(&session, &mut info, &label, request.immediate_checkpoint).await?;

    let catalog = BucketCatalog::new(&storage, &request.server_name);
    let outcome = async {
        upload_backup_info(&catalog, &info, &request.tags).await?;
        copy_and_stop(
            &storage,
            &session,
            request,
            &mut info,
            &pgdata,
            progress.clone(),
            started,
        )
        .await
    }
    .await;
    match outcome {
        Ok(report) => {
            info.status = Some(BackupStatus::Done);
            info.backup_name = request.backup_name.clone();
            if let Err(e) = upload_backup_info(&catalog, &info, &request.tags).await {
                return Err(Error::Failed(format!(
                    "Backup failed uploading backup.info file ({})",
                    first_line(&e)
                )));
            }
            tracing::info!(
                "Backup end at LSN: {} ({}, {:08X})",
                info.end_xlog.as_deref().unwrap_or_default(),
                info.end_wal.as_deref().unwrap_or_default(),
                info.end_offset.unwrap_or_default()
            );
            let elapsed = started.elapsed();
            tracing::info!(
                "Backup completed (start time: {}, elapsed time: {})",
                info.begin_time
                    .as_ref()
                    .map(timestamp::python_str)
                    .unwrap_or_default(),
                crate::catalog::render::human_readable_timedelta(&PyValue::Float(
                    elapsed.as_secs_f64()
                ))
                .unwrap_or_default()
            );
            Ok(BackupOutcome {
                backup_id,
                info,
                bytes_read: progress.bytes.load(Ordering::Relaxed),
                bytes_stored: report.total_bytes(),
                objects: report.objects.len(),
                elapsed,
            })
        }
        Err(error) => {
            let reason = first_line(&error);
            info.status = Some(BackupStatus::Failed);
            info.error = Some(format!("failure uploading data ({reason})"));
            info.backup_name = request.backup_name.clone();
            if let Err(e) = upload_backup_info(&catalog, &info, &request.tags).await {
                tracing::error!(
                    "Backup failed uploading backup.info file ({})",
                    first_line(&e)
                );
            }
            Err(Error::Failed(format!(
                "Backup failed uploading data ({reason})"
            )))
        }
    }
}

/// A new backup.info for `backup_id` with what PostgreSQL tells about the server: system
/// identifier, version, data directory, configuration files, tablespaces.
pub(crate) async fn server_info(
    session: &PgSession,
    backup_id: &str,
    server_name: &str,
) -> Result<BackupInfo> {
    let mut info = BackupInfo {
        backup_id: Some(backup_id.to_string()),
        server_name: Some(server_name.into()),
        systemid: Some(session.system_identifier().await?),
        ..Default::default()
    };
    let meta = session.metadata().await;
    info.version = Some(session.server_version());
    info.pgdata = meta.pgdata.clone();
    info.xlog_segment_size = meta.xlog_segment_size;
    info.config_file = meta.config_file.clone();
    info.hba_file = meta.hba_file.clone();
    info.ident_file = meta.ident_file.clone();
    info.included_files = meta.included_files.clone();
    info.data_checksums = meta.data_checksums.clone();
    info.summarize_wal = meta.summarize_wal.clone();
    info.cluster_size = meta.cluster_size;
    info.tablespaces = (!meta.tablespaces.is_empty()).then(|| {
        meta.tablespaces
            .iter()
            .map(|(name, oid, location)| Tablespace {
                name: name.clone(),
                oid: *oid,
                location: location.clone(),
            })
            .collect()
    });
    Ok(info)
}

/// Starts PostgreSQL's non-exclusive backup mode and records where it began; the backup is
/// then STARTED.
async fn start_backup_mode(
    session: &PgSession,
    info: &mut BackupInfo,
    label: &str,
    immediate_checkpoint: bool,
) -> Result<()> {
    let segment_size = info.xlog_segment_size.unwrap_or(16 << 20);
    let start = session.start_backup(label, immediate_checkpoint).await?;
    info.status = Some(BackupStatus::Started);
    info.begin_time = Some(parse_pg_time(&start.timestamp)?);
    info.timeline = Some(start.timeline);
    if let Some((wal, offset)) = wal_position(&start.lsn, start.timeline, segment_size) {
        info.begin_wal = Some(wal);
        info.begin_offset = Some(offset);
    }
    info.begin_xlog = Some(start.lsn.clone());
    Ok(())
}

/// Ends backup mode, records where it ended, switches WAL and creates the restore point
/// `barman_<id>`, as Barman does; returns the backup label.
async fn stop_backup_mode(session: &PgSession, info: &mut BackupInfo) -> Result<String> {
    let label = end_backup_mode(session, info).await?;
    session.switch_wal().await?;
    session
        .create_restore_point(&format!(
            "barman_{}",
            info.backup_id.as_deref().unwrap_or_default()
        ))
        .await;
    Ok(label)
}

/// Ends backup mode and records where it ended; returns the backup label.
async fn end_backup_mode(session: &PgSession, info: &mut BackupInfo) -> Result<String> {
    let stop = session.stop_backup().await?;
    let segment_size = info.xlog_segment_size.unwrap_or(16 << 20);
    info.end_time = Some(parse_pg_time(&stop.timestamp)?);
    if let Some((wal, offset)) = wal_position(&stop.lsn, stop.timeline, segment_size) {
        info.end_wal = Some(wal);
        info.end_offset = Some(offset);
    }
    info.end_xlog = Some(stop.lsn.clone());
    info.backup_label = Some(stop.backup_label.clone());
    Ok(stop.backup_label)
}

/// A backup ID no backup of this server uses yet: Barman would silently mix two backups
/// started in the same second; we wait for the next second instead.
async fn unused_backup_id(storage: &CloudStorage, server: &str) -> Result<String> {
    loop {
        let id = new_backup_id();
        let prefix = ServerLayout::new(storage, server).backup_prefix(&id);
        if storage.list(&prefix).await?.is_empty() {
            return Ok(id);
        }
        tracing::info!("backup ID {id} is taken, waiting for the next second");
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

async fn upload_backup_info(
    catalog: &impl CatalogStore,
    info: &BackupInfo,
    tags: &[(String, String)],
) -> Result<()> {
    let id = info.backup_id.as_deref().unwrap_or_default();
    let text = info.to_file_text()?;
    catalog.write_backup_info(id, text.into(), tags).await
}

/// Archives tablespaces and PGDATA, stops the backup and completes the uploads.
async fn copy_and_stop(
    storage: &Arc<CloudStorage>,
    session: &PgSession,
    request: &BackupRequest,
    info: &mut BackupInfo,
    pgdata: &str,
    progress: Arc<WalkProgress>,
    started: Instant,
) -> Result<UploadReport> {
    let provider = storage.location().provider;
    let max_archive_size = request.max_archive_size.min(MAX_ARCHIVE_SIZE);
    let layout = ServerLayout::new(storage, &request.server_name);
    let backup_id = info.backup_id.clone().unwrap_or_default();
    let backup_dir = layout.backup_dir(&backup_id);
    let manifest_key = layout.manifest(&backup_id);
    let settings = Arc::new(ArchiveSettings {
        layout,
        backup_id,
        compression: request.compression,
        max_archive_size,
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
    let plan = CopyPlan {
        pgdata: PathBuf::from(pgdata),
        tablespaces: info.tablespaces.clone().unwrap_or_default(),
        major_version: session.major_version(),
        config_files: [&info.config_file, &info.hba_file, &info.ident_file]
            .map(|f| f.clone())
            .to_vec(),
        included_files: info.included_files.clone().unwrap_or_default(),
    };
    let producer = {
        let (settings, sender, progress, cancel) = (
            settings.clone(),
            sender.clone(),
            progress.clone(),
            cancel.clone(),
        );
        tokio::task::spawn_blocking(move || plan.archive_all(settings, sender, &progress, &cancel))
    };
    drop(sender);

    let copied = guard_copy(session, request.keepalive_interval, &cancel, async {
        producer
            .await
            .map_err(|e| Error::Failed(format!("archive task failed: {e}")))?
    })
    .await;
    let data_writer = match copied {
        Ok(writer) => writer,
        Err(error) => return Err(prefer_upload_error(error, uploader).await),
    };

    let stop_work = async {
        tracing::info!(
            "Stopping backup '{}'",
            info.backup_id.as_deref().unwrap_or_default()
        );
        stop_backup_mode(session, info).await
    };
    // pg_backup_stop waits for WAL archiving, possibly forever if archiving is broken:
    // an interruption there must still end the backup as FAILED.
    let stopped = tokio::select! {
        result = stop_work => result,
        signal = interrupted() => Err(Error::Failed(signal.into())),
    };
    let gid = std::fs::metadata(pgdata).map(|m| m.gid()).unwrap_or(0);
    // Dropping a writer may still write, so it always happens on a blocking thread.
    let finished = tokio::task::spawn_blocking(move || {
        let mut writer = data_writer;
        let label = stopped?;
        writer.add_bytes(BACKUP_LABEL_ENTRY, label.as_bytes(), gid)?;
        writer.finish()?;
        Ok(Digest256::of(label.as_bytes()))
    })
    .await
    .map_err(|e| Error::Failed(format!("archive task failed: {e}")))
    .and_then(|r| r);
    let label_digest = match finished {
        Ok(digest) => digest,
        Err(error) => return Err(prefer_upload_error(error, uploader).await),
    };
    let report = uploader
        .await
        .map_err(|e| Error::Failed(format!("upload task failed: {e}")))??;
    let manifest = integrity_manifest(&backup_dir, &report, label_digest)?;
    upload_manifest(storage, &manifest_key, &manifest, &request.tags).await?;
    info.copy_stats = Some(copy_stats(&report, request.jobs, started));
    Ok(report)
}

/// The manifest of the objects in `report`, all stored in the backup directory `prefix`
/// and confirmed.
fn integrity_manifest(
    prefix: &str,
    report: &UploadReport,
    label: Digest256,
) -> Result<IntegrityManifest> {
    let mut manifest = IntegrityManifest::default();
    for (key, digest) in &report.objects {
        let name = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !name.contains('/'))
            .ok_or_else(|| {
                Error::Corrupt(format!("archive object {key} is outside of {prefix}/"))
            })?;
        manifest.insert(name, *digest);
    }
    manifest.insert(BACKUP_LABEL_ENTRY, label);
    Ok(manifest)
}

/// Stores the manifest next to the archives and confirms its size, before the DONE
/// backup.info: a DONE backup written by barman-rs always has one.
async fn upload_manifest(
    storage: &CloudStorage,
    key: &str,
    manifest: &IntegrityManifest,
    tags: &[(String, String)],
) -> Result<()> {
    let text = manifest.render();
    let size = text.len() as u64;
    tracing::info!("Uploading '{key}'");
    storage
        .put(key, PutPayload::from(text.into_bytes()), tags)
        .await?;
    storage.verify_size(key, size).await
}

/// The uploader's own failure explains a producer's "uploader stopped" better.
async fn prefer_upload_error(
    error: Error,
    uploader: tokio::task::JoinHandle<Result<UploadReport>>,
) -> Error {
    match uploader.await {
        Ok(Err(upload_error)) if error.to_string().contains("the uploader stopped") => upload_error,
        _ => error,
    }
}

/// Runs `work` while pinging the session and watching for SIGINT/SIGTERM: a lost
/// session (the backup can no longer be stopped) or an interruption cancels the copy,
/// so that the backup ends FAILED rather than staying STARTED forever.
async fn guard_copy<T: Send + 'static>(
    session: &PgSession,
    interval: u64,
    cancel: &AtomicBool,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let keepalive = session.keepalive_handle();
    let pinger = async {
        if interval == 0 {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            if let Err(e) = keepalive.ping().await {
                tracing::debug!("keep-alive failed: {e}");
                return;
            }
        }
    };
    tokio::pin!(work);
    let stop = tokio::select! {
        result = &mut work => return result,
        () = pinger => Error::Postgres(
            "Connection to the Postgres server was lost during the backup.".into(),
        ),
        signal = interrupted() => Error::Failed(signal.into()),
    };
    cancel.store(true, Ordering::Relaxed);
    // An archive writer finishes its tar stream when dropped, which may block on the
    // uploader: never drop one on the async runtime.
    let abandoned = work.await;
    let _ = tokio::task::spawn_blocking(move || drop(abandoned)).await;
    Err(stop)
}

/// Resolves on SIGINT (reported as Python does, `KeyboardInterrupt`) or SIGTERM.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "KeyboardInterrupt",
        _ = term.recv() => "terminated by SIGTERM",
    }
}

fn copy_stats(report: &UploadReport, jobs: usize, started: Instant) -> PyValue {
    let mut analysis = PyDict::new();
    let mut copy = PyDict::new();
    let mut serialized = PyDict::new();
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    let mut serialized_total = 0.0;
    for (family, times) in &report.families {
        analysis.set(family, PyValue::Int(0));
        copy.set(
            family,
            PyValue::Float((times.last_end - times.first_start).as_secs_f64()),
        );
        serialized.set(family, PyValue::Float(times.serialized.as_secs_f64()));
        serialized_total += times.serialized.as_secs_f64();
        first = Some(first.map_or(times.first_start, |f| f.min(times.first_start)));
        last = Some(last.map_or(times.last_end, |l| l.max(times.last_end)));
    }
    let copy_time = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    let mut stats = PyDict::new();
    stats.set(
        "total_time",
        PyValue::Float(started.elapsed().as_secs_f64()),
    );
    stats.set("number_of_workers", PyValue::Int(jobs as i128));
    stats.set("analysis_time", PyValue::Int(0));
    stats.set("analysis_time_per_item", PyValue::Dict(analysis));
    stats.set("copy_time_per_item", PyValue::Dict(copy));
    stats.set("serialized_copy_time_per_item", PyValue::Dict(serialized));
    stats.set("copy_time", PyValue::Float(copy_time));
    stats.set("serialized_copy_time", PyValue::Float(serialized_total));
    PyValue::Dict(stats)
}

/// What to archive, resolved before the copy starts.
struct CopyPlan {
    pgdata: PathBuf,
    tablespaces: Vec<Tablespace>,
    major_version: String,
    config_files: Vec<Option<String>>,
    included_files: Vec<String>,
}

impl CopyPlan {
    /// Archives every tablespace, then PGDATA, `global/pg_control` and the configuration
    /// files kept outside PGDATA; returns the still-open data archive so that
    /// `backup_label` can follow once the backup is stopped.
    fn archive_all(
        self,
        settings: Arc<ArchiveSettings>,
        uploads: mpsc::Sender<archive::UploadMessage>,
        progress: &WalkProgress,
        cancel: &AtomicBool,
    ) -> Result<ArchiveWriter> {
        let owners = Arc::new(Owners::load());
        let pgdata_text = self.pgdata.to_string_lossy().into_owned();
        let mut inside_pgdata = Vec::new();
        for tablespace in &self.tablespaces {
            let mut writer = ArchiveWriter::new(
                &tablespace.oid.to_string(),
                settings.clone(),
                owners.clone(),
                uploads.clone(),
            );
            let rules = PathRules::for_tablespace(&self.major_version);
            walk::archive_tree(
                &mut writer,
                Path::new(&tablespace.location),
                &rules,
                progress,
                cancel,
            )?;
            writer.finish()?;
            if let Some(rel) = tablespace
                .location
                .strip_prefix(&pgdata_text)
                .and_then(|rest| rest.strip_prefix('/'))
            {
                inside_pgdata.push(rel.to_string());
            }
        }

        let mut data = ArchiveWriter::new("data", settings, owners, uploads);
        let oids: Vec<u32> = self.tablespaces.iter().map(|t| t.oid).collect();
        let rules = PathRules::for_pgdata(&oids, &inside_pgdata);
        walk::archive_tree(&mut data, &self.pgdata, &rules, progress, cancel)?;

        let control = self.pgdata.join("global/pg_control");
        let meta = std::fs::metadata(&control).map_err(|e| Error::io(&control, e))?;
        if !data.add_file("global/pg_control", &control, &meta)? {
            return Err(Error::Failed(format!("{} vanished", control.display())));
        }

        for (index, file) in self.config_files.iter().enumerate() {
            let Some(file) = file else { continue };
            // Barman's test is a plain string prefix, kept for identical archives.
            if file.starts_with(&pgdata_text) {
                continue;
            }
            let path = Path::new(file);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match std::fs::metadata(path) {
                Ok(meta) => {
                    data.add_file(&name, path, &meta)?;
                }
                // A missing ident file is tolerated, as in Barman.
                Err(e) if index == 2 && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let outside: Vec<&String> = self
            .included_files
            .iter()
            .filter(|f| !f.starts_with(&pgdata_text))
            .collect();
        if !outside.is_empty() {
            tracing::warn!(
                "The usage of include directives is not supported for files that reside \
                 outside PGDATA. Please manually backup the following files: {}",
                outside
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_fit_the_provider_limit_for_objects_past_max_archive_size() {
        let default = 100 * 1024 * 1024 * 1024;
        let s3 = chunk_size(Provider::AwsS3, default, None);
        assert_eq!(s3, 10_952_167);
        assert!(s3 * 10_000 >= default + (1 << 30) + (64 << 20));
        let azure = chunk_size(Provider::AzureBlobStorage, default, None);
        assert!(azure * 50_000 >= default + (1 << 30));
        assert_eq!(chunk_size(Provider::AwsS3, 4 << 20, None), 5 << 20);
        assert_eq!(
            chunk_size(Provider::Local, 4 << 20, Some(64 << 20)),
            64 << 20
        );
        // -S beyond the 1 TiB cap does not inflate the parts.
        assert_eq!(
            chunk_size(Provider::GoogleCloudStorage, 8 << 40, None),
            chunk_size(Provider::GoogleCloudStorage, 1 << 40, None)
        );
        // --min-chunk-size stops at the largest part the provider accepts.
        assert_eq!(
            chunk_size(Provider::AwsS3, 4 << 20, Some(u64::MAX)),
            5 << 30
        );
        assert_eq!(
            chunk_size(Provider::AzureBlobStorage, 4 << 20, Some(6 << 30)),
            4000 << 20
        );
    }

    #[test]
    fn manifest_names_objects_inside_the_backup_directory() {
        let prefix = "pg/srv/base/20250101T000000";
        let mut report = UploadReport::default();
        for (name, content) in [("16385.tar.zst", b"t" as &[u8]), ("data.tar.zst", b"d")] {
            report
                .objects
                .push((format!("{prefix}/{name}"), Digest256::of(content)));
        }
        let manifest = integrity_manifest(prefix, &report, Digest256::of(b"label")).unwrap();
        assert_eq!(manifest.get("data.tar.zst"), Some(&Digest256::of(b"d")));
        assert_eq!(manifest.get("16385.tar.zst"), Some(&Digest256::of(b"t")));
        assert_eq!(
            manifest.get(BACKUP_LABEL_ENTRY),
            Some(&Digest256::of(b"label"))
        );
        report.objects.push((
            "pg/srv/base/20250101T000001/data.tar".into(),
            Digest256::of(b""),
        ));
        assert!(integrity_manifest(prefix, &report, Digest256::of(b"label")).is_err());
    }
}
