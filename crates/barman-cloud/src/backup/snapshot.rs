//! Snapshot backups (`barman-cloud-backup --snapshot-instance I --snapshot-disk D`): backup
//! mode around one cloud snapshot per listed disk; the backup label and backup.info go to
//! object storage (Barman: `barman/cloud.py` `CloudBackupSnapshot`).
//!
//! Order of work, and where it differs from Barman 3.20.1:
//! 1. Preconditions, with Barman's messages: the instance exists, every listed disk is
//!    attached to it and mounted. Then, beyond Barman, PGDATA and every tablespace must lie
//!    on the filesystem of a listed disk: otherwise the backup would silently miss data.
//! 2. Backup mode starts; a STARTED backup.info is published.
//! 3. The snapshots of all disks are created concurrently (Barman creates them one after
//!    the other); backup mode ends as soon as every snapshot's point in time is fixed,
//!    which the provider says when `create_snapshot` returns (AWS, "Create Amazon EBS
//!    snapshots": "The snapshot is created immediately, but it remains in the pending
//!    state until all of data has been transferred [...] The snapshot includes only the
//!    data that was written to the volume at the time the snapshot was requested").
//!    Barman stays in backup mode until the snapshots are complete, which may take hours.
//! 4. The snapshots are awaited until complete, then protected (AWS locks); the backup
//!    label is stored as its own object, then our integrity manifest (the label's size and
//!    SHA-256), then the DONE backup.info with `snapshots_info`.
//! 5. Any failure after the start deletes the snapshots already made (Barman leaves them,
//!    billed forever) and publishes a FAILED backup.info; snapshots that could not be
//!    deleted stay listed in its `snapshots_info`, so that `barman-cloud-backup-delete`
//!    of the failed backup removes them later.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use object_store::PutPayload;

use super::{
    BackupOutcome, first_line, interrupted, server_info, start_backup_mode, stop_backup_mode,
    unused_backup_id, upload_backup_info,
};
use crate::catalog::manifest::{BACKUP_LABEL_ENTRY, Digest256, IntegrityManifest};
use crate::catalog::pyliteral::{PyDict, PyValue};
use crate::catalog::snapshots::SnapshotMetadata;
use crate::catalog::{BackupInfo, BackupStatus};
use crate::catalog_store::BucketCatalog;
use crate::error::{Error, Result};
use crate::layout::ServerLayout;
use crate::pg::PgSession;
use crate::pg::session::MIN_SERVER_VERSION;
use crate::snapshot::host::Host;
use crate::snapshot::mounts::{mount_point_of, resolve_mount};
use crate::snapshot::{AttachedDisk, CreatedSnapshot, Mount, SnapshotProvider, snapshot_name};
use crate::storage::CloudStorage;

#[derive(Debug, Clone)]
pub struct SnapshotBackupRequest {
    /// SERVER_NAME: the directory of the server in the bucket, and (unlike object-store
    /// backups) the server name in backup.info and in the backup label, as in Barman.
    pub server_name: String,
    pub backup_name: Option<String>,
    pub immediate_checkpoint: bool,
    /// Seconds between keep-alive queries while in backup mode; 0 disables.
    pub keepalive_interval: u64,
    /// Tags of the stored objects (backup.info, backup_label, manifest).
    pub tags: Vec<(String, String)>,
    pub instance: String,
    pub disks: Vec<String>,
}

/// Where a snapshot backup's backup.info and backup label are kept: the bucket
/// (barman-cloud-backup) or a `barman_home` (the `barman` server), and what the front end
/// says along the way. The snapshot flow itself ([`run_snapshot_backup`]) is shared.
#[allow(async_fn_in_trait)]
pub trait SnapshotTarget {
    /// Saves backup.info as it stands.
    async fn publish(&self, info: &BackupInfo) -> Result<()>;
    /// Stores the backup label returned by the end of backup mode.
    async fn store_label(&self, info: &BackupInfo, label: &str) -> Result<()>;
    /// A step of the flow has been reached (messages, first-backup WAL clean-up).
    fn step(&self, _step: SnapshotStep, _info: &BackupInfo) -> Result<()> {
        Ok(())
    }
    /// Whether backup mode is ended (and the label stored) when the snapshots fail, as
    /// Barman's server does; otherwise the end of the session aborts it.
    fn stop_after_failure(&self) -> bool {
        false
    }
}

/// The steps [`SnapshotTarget::step`] hears of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SnapshotStep {
    /// Backup mode started and the STARTED backup.info is saved.
    Started,
    /// Every snapshot was created, in this time; backup mode ends next.
    SnapshotsCreated(std::time::Duration),
    /// The snapshots failed; backup mode ends next ([`SnapshotTarget::stop_after_failure`]).
    StoppingAfterFailure,
}

/// What one snapshot backup works with.
pub struct SnapshotJob<'a> {
    pub session: &'a PgSession,
    pub provider: &'a dyn SnapshotProvider,
    pub host: &'a dyn Host,
    pub instance: &'a str,
    pub disks: &'a [String],
    pub keepalive_interval: u64,
    pub immediate_checkpoint: bool,
    /// The PostgreSQL backup label (`Barman backup <server> <id>`).
    pub label: String,
}

/// Why a snapshot backup failed, and what it was doing then (Barman's `current_action`).
#[derive(Debug)]
pub struct SnapshotFailure {
    pub error: Error,
    pub action: &'static str,
}

/// The shared flow, from the start of backup mode to the stored label: backup mode, a
/// STARTED backup.info, the snapshots (concurrently), the end of backup mode (WAL switch
/// and restore point included), the wait for complete snapshots and their protection,
/// the label. Returns the time from the volume look-up to complete snapshots and the
/// snapshots, and sets
/// `info.snapshots_info`. On failure the snapshots made are deleted and
/// `info.snapshots_info` lists those that could not be (the caller records the failure).
pub async fn run_snapshot_backup<T: SnapshotTarget>(
    job: &SnapshotJob<'_>,
    target: &T,
    info: &mut BackupInfo,
) -> std::result::Result<(std::time::Duration, Vec<CreatedSnapshot>), SnapshotFailure> {
    let mut created: Vec<CreatedSnapshot> = Vec::new();
    let mut action = "issuing start backup command";
    let interruption = Interruption::watch();
    let outcome = async {
        start_backup_mode(job.session, info, &job.label, job.immediate_checkpoint).await?;
        action = "starting backup";
        target.publish(info).await?;
        target.step(SnapshotStep::Started, info)?;
        action = "copying files";
        let run = SnapshotRun {
            job,
            interruption: &interruption,
        };
        run.snapshot_and_store(target, info, &mut created, &mut action)
            .await
    }
    .await;
    match outcome {
        Ok(elapsed) => {
            info.snapshots_info = Some(job.provider.snapshots_info(&created));
            Ok((elapsed, created))
        }
        Err(error) => {
            let in_backup_mode = action == "copying files" && info.end_time.is_none();
            let lost = matches!(&error, Error::Postgres(_));
            if in_backup_mode && !lost && target.stop_after_failure() {
                let _ = target.step(SnapshotStep::StoppingAfterFailure, info);
                match super::end_backup_mode(job.session, info).await {
                    Ok(label) => {
                        if let Err(e) = target.store_label(info, &label).await {
                            tracing::warn!("cannot store the backup label: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("cannot end backup mode: {e}"),
                }
            }
            let kept = delete_snapshots(job.provider, &created).await;
            info.snapshots_info = (!kept.is_empty()).then(|| job.provider.snapshots_info(&kept));
            Err(SnapshotFailure { error, action })
        }
    }
}

/// barman-cloud-backup's target: backup.info, the label and our integrity manifest as
/// objects of the bucket.
struct BucketTarget<'a> {
    storage: &'a CloudStorage,
    catalog: BucketCatalog<'a>,
    server_name: &'a str,
    tags: &'a [(String, String)],
}

impl SnapshotTarget for BucketTarget<'_> {
    async fn publish(&self, info: &BackupInfo) -> Result<()> {
        upload_backup_info(&self.catalog, info, self.tags).await
    }

    async fn store_label(&self, info: &BackupInfo, label: &str) -> Result<()> {
        let backup_id = info.backup_id.as_deref().unwrap_or_default();
        let layout = ServerLayout::new(self.storage, self.server_name);
        let label_key = layout.backup_label(backup_id);
        tracing::info!("Uploading '{label_key}'");
        self.storage
            .put(
                &label_key,
                PutPayload::from(label.to_string().into_bytes()),
                self.tags,
            )
            .await?;
        self.storage
            .verify_size(&label_key, label.len() as u64)
            .await?;
        let mut manifest = IntegrityManifest::default();
        manifest.insert(BACKUP_LABEL_ENTRY, Digest256::of(label.as_bytes()));
        super::upload_manifest(
            self.storage,
            &layout.manifest(backup_id),
            &manifest,
            self.tags,
        )
        .await
    }
}

/// Takes a snapshot backup of the server behind `session`, whose disks `provider` reaches
/// and whose mounts `host` tells.
pub async fn take_snapshot_backup(
    storage: Arc<CloudStorage>,
    session: PgSession,
    provider: &dyn SnapshotProvider,
    host: &dyn Host,
    request: &SnapshotBackupRequest,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let disks = check_preconditions(provider, host, &request.instance, &request.disks).await?;

    let backup_id = unused_backup_id(&storage, &request.server_name)
        .await
        .map_err(|e| Error::Failed(format!("Backup failed uploading data ({})", first_line(&e))))?;
    let mut info = server_info(&session, &backup_id, &request.server_name).await?;
    check_data_on_disks(&info, host, &disks, "--snapshot-disk").await?;
    if session.server_version() < MIN_SERVER_VERSION {
        return Err(Error::Unsupported(format!(
            "unsupported PostgresSQL version {}. Expecting 9.6 or above.",
            session.major_version()
        )));
    }

    let copy_started = Instant::now();
    tracing::info!("Starting backup '{backup_id}'");
    let target = BucketTarget {
        storage: &storage,
        catalog: BucketCatalog::new(&storage, &request.server_name),
        server_name: &request.server_name,
        tags: &request.tags,
    };
    let job = SnapshotJob {
        session: &session,
        provider,
        host,
        instance: &request.instance,
        disks: &request.disks,
        keepalive_interval: request.keepalive_interval,
        immediate_checkpoint: request.immediate_checkpoint,
        label: format!("Barman backup {} {backup_id}", request.server_name),
    };
    let outcome = run_snapshot_backup(&job, &target, &mut info).await;
    info.backup_name = request.backup_name.clone();

    match outcome {
        Ok((_, created)) => {
            // Whole microseconds, as Python's total_seconds() gives them.
            let elapsed = copy_started.elapsed().as_micros() as f64 / 1e6;
            let mut stats = PyDict::new();
            stats.set("copy_time", PyValue::Float(elapsed));
            stats.set("total_time", PyValue::Float(elapsed));
            info.copy_stats = Some(PyValue::Dict(stats));
            info.status = Some(BackupStatus::Done);
            if let Err(e) = target.publish(&info).await {
                let reason = first_line(&e);
                let kept = delete_snapshots(provider, &created).await;
                info.snapshots_info = (!kept.is_empty()).then(|| provider.snapshots_info(&kept));
                let failure = format!("failure uploading backup.info file ({reason})");
                record_failure(&target, &mut info, failure).await;
                return Err(Error::Failed(format!(
                    "Backup failed uploading backup.info file ({reason})"
                )));
            }
            tracing::info!(
                "Backup end at LSN: {} ({}, {:08X})",
                info.end_xlog.as_deref().unwrap_or_default(),
                info.end_wal.as_deref().unwrap_or_default(),
                info.end_offset.unwrap_or_default()
            );
            tracing::info!(
                "Backup completed (start time: {}, elapsed time: {})",
                info.begin_time
                    .as_ref()
                    .map(crate::catalog::timestamp::python_str)
                    .unwrap_or_default(),
                crate::catalog::render::human_readable_timedelta(&PyValue::Float(
                    copy_started.elapsed().as_secs_f64()
                ))
                .unwrap_or_default()
            );
            let objects = created.len();
            Ok(BackupOutcome {
                backup_id,
                info,
                bytes_read: 0,
                bytes_stored: 0,
                objects,
                elapsed: started.elapsed(),
            })
        }
        Err(SnapshotFailure { error, .. }) => {
            let reason = first_line(&error);
            let failure = format!("failure uploading data ({reason})");
            record_failure(&target, &mut info, failure).await;
            Err(Error::Failed(format!(
                "Backup failed uploading data ({reason})"
            )))
        }
    }
}

/// Barman's preconditions, in its order and with its messages: the disks to snapshot, each
/// with its mount, in the instance's attachment order.
pub async fn check_preconditions(
    provider: &dyn SnapshotProvider,
    host: &dyn Host,
    instance: &str,
    disks: &[String],
) -> Result<Vec<(AttachedDisk, Mount)>> {
    if !provider.instance_exists(instance).await? {
        return Err(Error::Provider(format!(
            "Cannot find compute instance {instance}"
        )));
    }
    let attached = provider.attached_disks(instance, Some(disks)).await?;
    let missing = not_attached(disks, &attached);
    if !missing.is_empty() {
        return Err(Error::Provider(format!(
            "Cannot find disks attached to compute instance {instance}: {}",
            missing.join(", ")
        )));
    }
    let mut mounted = Vec::new();
    let mut unmounted = Vec::new();
    // Every mount asked at once (each question may be an ssh connection); reported in the
    // order of `disks`, as Barman does.
    let found: Vec<(&String, &AttachedDisk)> = disks
        .iter()
        .filter_map(|disk| {
            attached
                .iter()
                .find(|a| &a.identifier == disk)
                .map(|a| (disk, a))
        })
        .collect();
    let resolved = join_all(
        found
            .iter()
            .map(|(_, attached)| resolve_mount(host, &attached.device)),
    )
    .await;
    for ((disk, attached), result) in found.into_iter().zip(resolved) {
        match result {
            Ok(mount) => mounted.push((attached.clone(), mount)),
            Err(e) => {
                tracing::warn!("Error resolving mount point: {e}");
                unmounted.push(disk.as_str());
            }
        }
    }
    if !unmounted.is_empty() {
        return Err(Error::Provider(format!(
            "Cannot find disks mounted on compute instance {instance}: {}",
            unmounted.join(", ")
        )));
    }
    // The instance's attachment order, which Barman snapshots and records in.
    let mut ordered = Vec::new();
    for disk in &attached {
        if let Some(entry) = mounted
            .iter()
            .find(|(a, _)| a.identifier == disk.identifier)
            && !ordered
                .iter()
                .any(|(a, _): &(AttachedDisk, Mount)| a.identifier == disk.identifier)
        {
            ordered.push(entry.clone());
        }
    }
    Ok(ordered)
}

/// The disks of `disks` that `attached` lacks.
fn not_attached<'a>(disks: &'a [String], attached: &[AttachedDisk]) -> Vec<&'a str> {
    disks
        .iter()
        .filter(|d| !attached.iter().any(|a| &a.identifier == *d))
        .map(String::as_str)
        .collect()
}

/// Not in Barman: PGDATA and every tablespace must be on the filesystem of one of the
/// disks to snapshot, or the backup would silently miss them.
/// `setting` names where the disks are listed (`--snapshot-disk`, `snapshot_disks`).
pub async fn check_data_on_disks(
    info: &BackupInfo,
    host: &dyn Host,
    disks: &[(AttachedDisk, Mount)],
    setting: &str,
) -> Result<()> {
    let mut paths: Vec<(String, String)> = Vec::new();
    if let Some(pgdata) = &info.pgdata {
        paths.push(("PGDATA".into(), pgdata.clone()));
    }
    for tablespace in info.tablespaces.iter().flatten() {
        paths.push((
            format!("tablespace {}", tablespace.name),
            tablespace.location.clone(),
        ));
    }
    let mount_points: Vec<&str> = disks.iter().map(|(_, m)| m.mount_point.as_str()).collect();
    for (what, path) in paths {
        let holder = mount_point_of(host, &path).await?;
        match holder {
            Some(point) if mount_points.contains(&point.as_str()) => {}
            other => {
                let holder = match other {
                    Some(point) => format!("is on the filesystem mounted at {point}"),
                    None => "is on a filesystem findmnt cannot tell".into(),
                };
                return Err(Error::Config(format!(
                    "{what} ({path}) {holder}, which is none of the disks to snapshot ({}): \
                     it would be missing from the backup. List every disk holding PostgreSQL \
                     data with {setting}",
                    disks
                        .iter()
                        .map(|(d, m)| format!("{} mounted at {}", d.identifier, m.mount_point))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// What a snapshot backup works with once backup mode has started.
struct SnapshotRun<'a> {
    job: &'a SnapshotJob<'a>,
    interruption: &'a Interruption,
}

impl SnapshotRun<'_> {
    /// Inside backup mode: the snapshots, the end of backup mode, then (outside it) the wait
    /// for complete snapshots and the stored label. `created` receives every snapshot made,
    /// whatever happens, for the cleanup of a failure; `action` follows the work.
    async fn snapshot_and_store<T: SnapshotTarget>(
        &self,
        target: &T,
        info: &mut BackupInfo,
        created: &mut Vec<CreatedSnapshot>,
        action: &mut &'static str,
    ) -> Result<std::time::Duration> {
        let SnapshotRun { job, interruption } = *self;
        let provider = job.provider;
        interruption.check()?;
        let backup_id = info.backup_id.clone().unwrap_or_default();
        let copy_started = Instant::now();
        // Asked again now, as Barman does: a disk may have gone since the precondition check.
        let attached = provider
            .attached_disks(job.instance, Some(job.disks))
            .await?;
        let missing = not_attached(job.disks, &attached);
        if !missing.is_empty() {
            return Err(Error::Provider(format!(
                "Disks not attached to instance {}: {}",
                job.instance,
                missing.join(", ")
            )));
        }
        let mut disks = Vec::new();
        for disk in attached {
            if disks
                .iter()
                .any(|(d, _): &(AttachedDisk, Mount)| d.identifier == disk.identifier)
            {
                continue;
            }
            let mount = resolve_mount(job.host, &disk.device).await?;
            disks.push((disk, mount));
        }

        // Every creation runs to its end, even when interrupted or when the session is lost:
        // a snapshot whose creation was abandoned could not be cleaned up.
        let creating = join_all(disks.iter().map(|(disk, mount)| {
            let name = snapshot_name(&disk.identifier, &backup_id);
            async move {
                provider
                    .create_snapshot(job.instance, disk, &name, mount)
                    .await
            }
        }));
        let (results, lost) =
            keep_alive_during(job.session, job.keepalive_interval, interruption, creating).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(snapshot) => created.push(snapshot),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(error) = lost.or(first_error) {
            return Err(error);
        }
        interruption.check()?;
        target.step(SnapshotStep::SnapshotsCreated(copy_started.elapsed()), info)?;

        tracing::info!("Stopping backup '{backup_id}'");
        *action = "issuing stop backup command";
        let stopped = tokio::select! {
            result = stop_backup_mode(job.session, info) => result,
            error = interruption.wait() => Err(error),
        };
        let label = stopped?;

        *action = "copying files";
        let metadata: Vec<SnapshotMetadata> = created.iter().map(|c| c.metadata.clone()).collect();
        tokio::select! {
            result = async {
                provider.await_snapshots(&metadata).await?;
                provider.protect_snapshots(&metadata).await
            } => result?,
            error = interruption.wait() => return Err(error),
        }
        interruption.check()?;
        let elapsed = copy_started.elapsed();

        *action = "writing backup label";
        target.store_label(info, &label).await?;
        Ok(elapsed)
    }
}

/// Deletes the snapshots of a failed backup; returns those still there.
pub async fn delete_snapshots(
    provider: &dyn SnapshotProvider,
    created: &[CreatedSnapshot],
) -> Vec<CreatedSnapshot> {
    if created.is_empty() {
        return Vec::new();
    }
    let info = provider.snapshots_info(created);
    let results = join_all(created.iter().map(|snapshot| {
        let info = &info;
        async move {
            let id = snapshot
                .metadata
                .identifier()
                .unwrap_or_default()
                .to_string();
            tracing::info!("Deleting snapshot '{id}' of the failed backup");
            (
                snapshot,
                provider.delete_snapshot(&snapshot.metadata, info).await,
            )
        }
    }))
    .await;
    let mut kept = Vec::new();
    for (snapshot, result) in results {
        if let Err(e) = result {
            tracing::error!(
                "Could not delete snapshot {} of the failed backup ({}): delete the failed \
                 backup with barman-cloud-backup-delete to retry",
                snapshot.metadata.identifier().unwrap_or_default(),
                first_line(&e)
            );
            kept.push(snapshot.clone());
        }
    }
    kept
}

/// Publishes the FAILED backup.info (`info.snapshots_info` already lists the snapshots
/// that could not be deleted).
async fn record_failure(target: &BucketTarget<'_>, info: &mut BackupInfo, error: String) {
    info.status = Some(BackupStatus::Failed);
    info.error = Some(error);
    if let Err(e) = target.publish(info).await {
        tracing::error!(
            "Backup failed uploading backup.info file ({})",
            first_line(&e)
        );
    }
}

/// SIGINT and SIGTERM, watched from the start of a backup to its end, so that one arriving
/// between two steps is not lost.
struct Interruption {
    received: tokio::sync::watch::Receiver<Option<&'static str>>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Interruption {
    fn watch() -> Self {
        let (sender, received) = tokio::sync::watch::channel(None);
        let watcher = tokio::spawn(async move {
            let signal = interrupted().await;
            let _ = sender.send(Some(signal));
        });
        Interruption { received, watcher }
    }

    fn check(&self) -> Result<()> {
        match *self.received.borrow() {
            Some(signal) => Err(Error::Failed(signal.into())),
            None => Ok(()),
        }
    }

    /// Resolves when a signal has arrived.
    async fn wait(&self) -> Error {
        let mut received = self.received.clone();
        match received.wait_for(Option::is_some).await {
            Ok(signal) => Error::Failed(signal.unwrap_or("interrupted").into()),
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Interruption {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Runs `work` to its end while pinging the session every `interval` seconds (0: never);
/// returns its output and why the backup must stop anyway (the session was lost, or a
/// signal arrived).
async fn keep_alive_during<T>(
    session: &PgSession,
    interval: u64,
    interruption: &Interruption,
    work: impl std::future::Future<Output = T>,
) -> (T, Option<Error>) {
    let keepalive = session.keepalive_handle();
    let mut reason: Option<Error> = None;
    tokio::pin!(work);
    let mut next_ping = tokio::time::Instant::now() + std::time::Duration::from_secs(interval);
    loop {
        tokio::select! {
            output = &mut work => {
                return (output, reason.or_else(|| interruption.check().err()));
            }
            () = tokio::time::sleep_until(next_ping), if interval > 0 && reason.is_none() => {
                next_ping += std::time::Duration::from_secs(interval);
                if let Err(e) = keepalive.ping().await {
                    tracing::debug!("keep-alive failed: {e}");
                    reason = Some(Error::Postgres(
                        "Connection to the Postgres server was lost during the backup.".into(),
                    ));
                }
            }
            error = interruption.wait(), if reason.is_none() => reason = Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fake::FakeCloud;
    use crate::snapshot::host::fake::FakeHost;

    fn disks(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[tokio::test]
    async fn preconditions_follow_barman_and_keep_the_attachment_order() {
        let cloud = FakeCloud::aws("eu-west-1");
        cloud.attach("i-1", cloud.disk("vol-a", 0));
        cloud.attach("i-1", cloud.disk("vol-b", 1));
        cloud.attach("i-1", cloud.disk("vol-c", 2));
        let host = FakeHost::default()
            .answer("ls /sys/block", true, "")
            .answer("findmnt -o TARGET,OPTIONS -n /dev/sdf", true, "/a rw\n")
            .answer("findmnt -o TARGET,OPTIONS -n /dev/sdg", true, "/b rw\n");
        let check = |instance: &'static str, names: &'static [&'static str]| {
            let (cloud, host) = (&cloud, &host);
            async move {
                check_preconditions(cloud, host, instance, &disks(names))
                    .await
                    .map(|found| {
                        found
                            .into_iter()
                            .map(|(d, m)| format!("{}@{}", d.identifier, m.mount_point))
                            .collect::<Vec<_>>()
                    })
                    .map_err(|e| e.to_string())
            }
        };
        assert_eq!(
            check("i-1", &["vol-b", "vol-a"]).await.unwrap(),
            ["vol-a@/a", "vol-b@/b"]
        );
        assert_eq!(
            check("i-2", &["vol-a"]).await.unwrap_err(),
            "Cannot find compute instance i-2"
        );
        assert_eq!(
            check("i-1", &["vol-x", "vol-a", "vol-y"])
                .await
                .unwrap_err(),
            "Cannot find disks attached to compute instance i-1: vol-x, vol-y"
        );
        assert_eq!(
            check("i-1", &["vol-c", "vol-a"]).await.unwrap_err(),
            "Cannot find disks mounted on compute instance i-1: vol-c"
        );
    }
}
