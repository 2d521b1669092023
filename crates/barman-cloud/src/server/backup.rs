//! `barman backup` of a `backup_method = snapshot` server (Barman 3.20.1's
//! `Server.backup`, `BackupManager.backup` and `SnapshotBackupExecutor`), through the same
//! snapshot flow as barman-cloud-backup ([`crate::backup::snapshot::run_snapshot_backup`]);
//! only where backup.info and the label go differs: `meta/<id>-backup.info` and
//! `base/<id>/data/backup_label` in the `barman_home`.
//!
//! Order (Barman's): the server's checks (any critical failure refuses the backup), the
//! directories, `.<srv>-backup.lock`, a new backup ID (local time), an EMPTY backup.info,
//! the pre-backup hooks, backup mode (STARTED), the first backup's clean-up of older WALs,
//! the snapshots, the end of backup mode, WAL switch and restore point `barman_<id>`, the
//! label, the size, WAITING_FOR_WALS, optionally the wait for the end WAL (then DONE), the
//! post-backup hooks; then, the lock released, an archive-wal run and the WAL check that
//! turns WAITING_FOR_WALS into DONE.
//!
//! Differences from Barman, as in barman-cloud-backup's snapshot flow: the snapshots are
//! created concurrently; backup mode ends as soon as they are created (not once they are
//! complete); a failure deletes the snapshots already made (their IDs stay in the FAILED
//! backup.info only when the deletion failed too); PGDATA and every tablespace must lie on
//! a listed disk. Beyond Barman too: a backup ID already used waits for the next second;
//! WALs are not removed before a FAILED first backup.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backup::snapshot::{
    SnapshotFailure, SnapshotJob, SnapshotStep, SnapshotTarget, check_data_on_disks,
    check_preconditions, run_snapshot_backup,
};
use crate::backup::{first_line, server_info};
use crate::catalog::pyliteral::{PyDict, PyValue};
use crate::catalog::render::{human_readable_timedelta, pretty_size};
use crate::catalog::{BackupInfo, BackupStatus};
use crate::error::{Error, Result};
use crate::pg::PgSession;
use crate::pg::conninfo::ConnInfo;
use crate::server::archive::ArchiveSettings;
use crate::server::check::{CheckContext, check_server, provider_for_server};
use crate::server::config::ServerConfig;
use crate::server::home::{ServerHome, load_backups, write_file_durably};
use crate::server::hooks::{Hooks, WalDeleteHooks, backup_env};
use crate::server::lock::LockFile;
use crate::server::paths::WalArchivePaths;
use crate::server::xlogdb::XlogDb;
use crate::snapshot::host::{CommandOutput, Host, SshHost};
use crate::wal::name::WalName;

/// Barman's version, as hooks see it (`BARMAN_VERSION`).
pub const BARMAN_VERSION: &str = "3.20.1";

/// Failed checks that do not stop a backup (Barman's `CheckStrategy.NON_CRITICAL_CHECKS`).
const NON_CRITICAL_CHECKS: [&str; 11] = [
    "minimum redundancy requirements",
    "backup maximum age",
    "backup minimum size",
    "failed backups",
    "archiver errors",
    "empty incoming directory",
    "empty streaming directory",
    "incoming WALs directory",
    "streaming WALs directory",
    "wal maximum age",
    "PostgreSQL server is standby",
];

/// Where the messages of a backup go (the CLI's output writer). `info` lines are the
/// console's plain lines; `log` only goes to the log file.
pub trait Reporter {
    fn info(&self, text: &str);
    fn warning(&self, text: &str);
    fn error(&self, text: &str);
    /// A log record only (Python levels: 10 debug, 20 info, 30 warning, 40 error).
    fn log(&self, level: i64, text: &str);
}

/// What one `barman backup` of a server asks for, after the command line has overridden
/// the configuration.
#[derive(Debug, Clone)]
pub struct ServerBackupRequest {
    /// `--name`.
    pub name: Option<String>,
    pub immediate_checkpoint: bool,
    /// Seconds; 0 disables.
    pub keepalive_interval: u64,
    /// `--wait`, `--wait-timeout` (seconds; `None` or 0: no limit).
    pub wait: bool,
    pub wait_timeout: Option<u64>,
    /// `reuse_backup` as set (only changes the size line for snapshots).
    pub reuse_backup: Option<String>,
    /// `check_timeout` as set.
    pub check_timeout: Option<i64>,
    /// The configuration file (`BARMAN_CONFIGURATION` of hooks).
    pub config_file: PathBuf,
}

/// How a backup ended, for the exit code (`Err` of [`backup_server`] is an unexpected
/// error; a failed backup is `Ok` with FAILED status and its messages already given).
#[derive(Debug)]
pub enum BackupResult {
    /// The backup was not started (checks failed, lock busy...).
    Refused,
    /// The backup ran; its final backup.info.
    Ran(Box<BackupInfo>),
}

/// Barman's `Server.backup` for a snapshot server.
pub async fn backup_server(
    server: &ServerConfig,
    archive: Option<ArchiveSettings>,
    request: &ServerBackupRequest,
    reporter: &dyn Reporter,
) -> Result<BackupResult> {
    let home = ServerHome::from_config(server);
    // The checks, silently (their failures are logged).
    let mut checked = server.clone();
    if let Some(timeout) = request.check_timeout {
        checked.check_timeout = timeout;
    }
    let ctx = CheckContext {
        server: &checked,
        paths: home.wal.clone(),
        archive,
    };
    let run = check_server(&ctx).await;
    let mut has_error = run.fatal.is_some();
    for result in &run.results {
        if !result.status {
            if NON_CRITICAL_CHECKS.contains(&result.check.as_str()) {
                reporter.log(
                    20,
                    &format!(
                        "Ignoring failed check '{}' for server '{}'",
                        result.check, server.name
                    ),
                );
            } else {
                has_error = true;
                reporter.log(
                    40,
                    &format!(
                        "Check '{}' failed for server '{}'",
                        result.check, server.name
                    ),
                );
            }
        }
    }
    if has_error {
        reporter.error(&format!(
            "Impossible to start the backup. Check the log for more details, or run \
             'barman check {}'",
            server.name
        ));
        return Ok(BackupResult::Refused);
    }
    for dir in [
        &home.dir,
        &home.base,
        &home.meta,
        &home.wal.wals,
        &home.wal.incoming,
        &home.wal.streaming,
        &home.wal.errors,
    ] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            reporter.error(&format!(
                "failed to create {} directory: {}",
                dir.display(),
                e
            ));
            return Ok(BackupResult::Refused);
        }
    }

    let lock = match LockFile::try_acquire(&home.backup_lock()) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            reporter.error("Another backup process is running");
            return Ok(BackupResult::Refused);
        }
        Err(e) => {
            reporter.error(&format!(
                "Permission denied, unable to access '{}'",
                first_line(&e)
            ));
            return Ok(BackupResult::Refused);
        }
    };
    let info = take_backup(server, &home, archive.as_ref(), request, reporter).await;
    drop(lock);
    let mut info = info?;

    // Archive what arrived, and check the backup's WALs again.
    if let Some(settings) = &archive
        && server.archiver
        && let Ok(outcome) = crate::server::archive::archive_incoming(&home.wal, settings)
    {
        for line in outcome.lines(false) {
            reporter.info(&line);
        }
    }
    if info.status == Some(BackupStatus::WaitingForWals) {
        check_backup(&home, &mut info, reporter)?;
    }
    if info.status != Some(BackupStatus::Failed) && previous_backup(&home, &info).is_none() {
        let log = |level: i64, text: &str| reporter.log(level, text);
        let hooks = Hooks {
            server,
            config_file: &request.config_file,
            log: &log,
        };
        remove_wal_before_backup(&home, &info, &hooks)?;
    }
    if info.status == Some(BackupStatus::WaitingForWals) {
        reporter.warning(
            "IMPORTANT: this backup is classified as WAITING_FOR_WALS, meaning that Barman \
             has not received yet all the required WAL files for the backup consistency.\n\
             This is a common behaviour in concurrent backup scenarios, and Barman \
             automatically set the backup as DONE once all the required WAL files have been \
             archived.\nHint: execute the backup command with '--wait'",
        );
    }
    Ok(BackupResult::Ran(Box::new(info)))
}

/// A backup ID (local time) no backup of the server uses yet.
async fn new_backup_id(home: &ServerHome) -> String {
    loop {
        let id = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
        if !home.backup_info(&id).exists() && !home.backup_dir(&id).exists() {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn save(home: &ServerHome, info: &BackupInfo) -> Result<()> {
    let id = info.backup_id.as_deref().unwrap_or_default();
    let text = info.to_file_text().map_err(Error::from)?;
    write_file_durably(&home.backup_info(id), text.as_bytes())
}

/// The newest DONE or WAITING_FOR_WALS backup older than `info`.
fn previous_backup(home: &ServerHome, info: &BackupInfo) -> Option<BackupInfo> {
    let id = info.backup_id.as_deref().unwrap_or_default();
    load_backups(home)
        .into_iter()
        .rev()
        .find(|b| b.backup_id.as_deref().unwrap_or_default() < id && copy_done(b))
}

fn copy_done(info: &BackupInfo) -> bool {
    matches!(
        info.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    )
}

/// BackupManager.backup: from the new backup ID to the post-backup hooks. The final
/// backup.info (FAILED when the backup failed, its messages given).
async fn take_backup(
    server: &ServerConfig,
    home: &ServerHome,
    archive: Option<&ArchiveSettings>,
    request: &ServerBackupRequest,
    reporter: &dyn Reporter,
) -> Result<BackupInfo> {
    let conninfo = server.conninfo.as_deref().unwrap_or_default();
    let resolved = ConnInfo::parse(conninfo)?.resolve_from_env()?;
    let session = PgSession::connect(&resolved, "barman").await?;
    let backup_id = new_backup_id(home).await;
    let mut info = server_info(&session, &backup_id, &server.name).await?;
    write_identity_file(home, &info, &session.major_version(), reporter);
    info.mode = Some("snapshot-concurrent".into());
    info.backup_name = request.name.clone();
    info.status = Some(BackupStatus::Empty);
    save(home, &info)?;
    reporter.info(&format!(
        "Starting backup using snapshot-concurrent method for server {} in {}",
        server.name,
        home.backup_dir(&backup_id).display()
    ));
    let log = |level: i64, text: &str| reporter.log(level, text);
    let hooks = Hooks {
        server,
        config_file: &request.config_file,
        log: &log,
    };
    hooks.run("backup_script", "pre", &backup_env(home, &info));
    let mut action = "starting backup";
    let mut copy_started: Option<(chrono::DateTime<chrono::Local>, Instant)> = None;
    let outcome: std::result::Result<(), SnapshotFailure> = async {
        hooks
            .run_retry("backup_retry_script", "pre", &backup_env(home, &info))
            .map_err(|error| SnapshotFailure {
                error,
                action: "starting backup",
            })?;
        let provider = provider_for_server(server)
            .await
            .map_err(|error| SnapshotFailure { error, action })?;
        let ssh_command = server.ssh_command.clone().unwrap_or_default();
        let host = SshHost::connect(&ssh_command)
            .await
            .map_err(|_| SnapshotFailure {
                error: Error::Failed(format!(
                    "Unable to connect to the target host using the command '{ssh_command}'"
                )),
                action,
            })?;
        // The mounts are asked once for our checks and the snapshots (the server's checks
        // have just asked too): one ssh connection per question.
        let host = CachingHost::new(&host);
        let instance = server.snapshot_instance.clone().unwrap_or_default();
        let disks = server.snapshot_disks.clone().unwrap_or_default();
        let found = check_preconditions(provider.as_ref(), &host, &instance, &disks)
            .await
            .map_err(|error| SnapshotFailure { error, action })?;
        check_data_on_disks(&info, &host, &found, "snapshot_disks")
            .await
            .map_err(|error| SnapshotFailure { error, action })?;
        let target = HomeTarget {
            home,
            hooks: &hooks,
            server: &server.name,
            reporter,
            copy_started: Cell::new(None),
        };
        let job = SnapshotJob {
            session: &session,
            provider: provider.as_ref(),
            host: &host,
            instance: &instance,
            disks: &disks,
            keepalive_interval: request.keepalive_interval,
            immediate_checkpoint: request.immediate_checkpoint,
            label: format!("Barman backup {} {backup_id}", server.name),
        };
        let result = run_snapshot_backup(&job, &target, &mut info).await;
        copy_started = target.copy_started.get();
        let (elapsed, _) = result?;
        let seconds = elapsed.as_micros() as f64 / 1e6;
        let mut stats = PyDict::new();
        stats.set("copy_time", PyValue::Float(seconds));
        stats.set("total_time", PyValue::Float(seconds));
        info.copy_stats = Some(PyValue::Dict(stats));
        action = "calculating backup size";
        let size = dir_size(&home.backup_dir(&backup_id))
            .map_err(|error| SnapshotFailure { error, action })?;
        info.size = Some(size);
        info.deduplicated_size = Some(size);
        if request.reuse_backup.as_deref() == Some("link") {
            reporter.info(&format!(
                "Backup size: {}. Actual size on disk: {} (-0.00% deduplication ratio).",
                pretty_size(size),
                pretty_size(size)
            ));
        } else {
            reporter.info(&format!("Backup size: {}", pretty_size(size)));
        }
        info.status = Some(BackupStatus::WaitingForWals);
        Ok(())
    }
    .await;
    drop(session);

    match outcome {
        Ok(()) => {
            reporter.info(&format!(
                "Backup end at LSN: {} ({}, {:08X})",
                info.end_xlog.as_deref().unwrap_or_default(),
                info.end_wal.as_deref().unwrap_or_default(),
                info.end_offset.unwrap_or_default()
            ));
            let (start_text, elapsed) = match copy_started {
                Some((local, instant)) => (python_local(&local), instant.elapsed()),
                None => (String::new(), Duration::ZERO),
            };
            reporter.info(&format!(
                "Backup completed (start time: {start_text}, elapsed time: {})",
                human_readable_timedelta(&PyValue::Float(elapsed.as_secs_f64()))
                    .unwrap_or_default()
            ));
            if request.wait {
                wait_for_end_wal(server, home, archive, request, &mut info, reporter).await?;
            }
        }
        Err(SnapshotFailure { error, action }) => {
            let text = error.to_string();
            let mut lines: Vec<&str> = text.trim().lines().collect();
            if lines.is_empty() {
                lines.push("Error");
            }
            info.status = Some(BackupStatus::Failed);
            info.error = Some(format!("failure {action} ({})", lines[0]));
            reporter.error(&format!(
                "Backup failed {action}.\nDETAILS: {}",
                lines.join("\n")
            ));
        }
    }
    save(home, &info)?;
    hooks.post("backup", "post-backup", &backup_env(home, &info));
    Ok(info)
}

/// `--wait`: archive-wal until the end WAL is archived, then the WAL check.
async fn wait_for_end_wal(
    server: &ServerConfig,
    home: &ServerHome,
    archive: Option<&ArchiveSettings>,
    request: &ServerBackupRequest,
    info: &mut BackupInfo,
    reporter: &dyn Reporter,
) -> Result<()> {
    let end_wal = info.end_wal.clone().unwrap_or_default();
    let timeout = request.wait_timeout.filter(|t| *t > 0);
    let max = timeout
        .map(|t| format!(" (max: {t} seconds)"))
        .unwrap_or_default();
    reporter.info(&format!(
        "Waiting for the WAL file {end_wal} from server '{}'{max}",
        server.name
    ));
    let settings = archive.filter(|_| server.archiver);
    let arrived = crate::server::check::wait_for_wal(
        &home.wal,
        settings,
        Some(&end_wal),
        timeout.map(Duration::from_secs),
        |lines| {
            for line in lines {
                reporter.info(&line);
            }
        },
    )
    .await;
    if !arrived {
        reporter.error(&format!(
            "The WAL file {end_wal} has not been received in {} seconds",
            timeout.unwrap_or(0)
        ));
    }
    check_backup(home, info, reporter)
}

/// Barman's `write_identity_file`: `<backup_directory>/identity.json` with the system
/// identifier and major version, unless it exists.
fn write_identity_file(home: &ServerHome, info: &BackupInfo, major: &str, reporter: &dyn Reporter) {
    let path = home.dir.join("identity.json");
    let Some(systemid) = &info.systemid else {
        return;
    };
    if path.exists() {
        return;
    }
    let text = format!(
        "{{\n    \"systemid\": {},\n    \"version\": {}\n}}\n",
        serde_json::Value::String(systemid.clone()),
        serde_json::Value::String(major.to_string())
    );
    if let Err(e) = write_file_durably(&path, text.as_bytes()) {
        reporter.log(
            40,
            &format!(
                "Cannot write system Id file for server \"{}\": {e}",
                home.server
            ),
        );
    }
}

/// Python's `str()` of a naive local datetime.
fn python_local(time: &chrono::DateTime<chrono::Local>) -> String {
    use chrono::Timelike;
    if time.nanosecond() / 1000 == 0 {
        time.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        time.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// A host that runs each distinct command once and answers repeats from memory.
struct CachingHost<'a> {
    inner: &'a dyn Host,
    answers: std::sync::Mutex<std::collections::HashMap<Vec<String>, CommandOutput>>,
}

impl<'a> CachingHost<'a> {
    fn new(inner: &'a dyn Host) -> Self {
        CachingHost {
            inner,
            answers: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl Host for CachingHost<'_> {
    async fn run(&self, program: &str, args: &[&str]) -> Result<CommandOutput> {
        let key: Vec<String> = std::iter::once(program)
            .chain(args.iter().copied())
            .map(str::to_string)
            .collect();
        if let Some(answer) = self.answers.lock().unwrap().get(&key) {
            return Ok(answer.clone());
        }
        let answer = self.inner.run(program, args).await?;
        self.answers.lock().unwrap().insert(key, answer.clone());
        Ok(answer)
    }
}

/// Bytes of the files under `dir`, each synced (Barman's `backup_fsync_and_set_sizes`).
fn dir_size(dir: &Path) -> Result<i64> {
    let mut total = 0i64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(&path, e))?;
                total += meta.len() as i64;
            }
        }
    }
    Ok(total)
}

/// The `barman_home` as a snapshot flow's target.
struct HomeTarget<'a> {
    home: &'a ServerHome,
    hooks: &'a Hooks<'a>,
    server: &'a str,
    reporter: &'a dyn Reporter,
    copy_started: Cell<Option<(chrono::DateTime<chrono::Local>, Instant)>>,
}

impl SnapshotTarget for HomeTarget<'_> {
    async fn publish(&self, info: &BackupInfo) -> Result<()> {
        save(self.home, info)
    }

    async fn store_label(&self, info: &BackupInfo, label: &str) -> Result<()> {
        let id = info.backup_id.as_deref().unwrap_or_default();
        write_file_durably(&self.home.backup_label(id), label.as_bytes())?;
        // The label is the backup's only file: saved with it.
        save(self.home, info)
    }

    fn step(&self, step: SnapshotStep, info: &BackupInfo) -> Result<()> {
        let reporter = self.reporter;
        match step {
            SnapshotStep::Started => {
                reporter.info(&format!(
                    "Backup start at LSN: {} ({}, {:08X})",
                    info.begin_xlog.as_deref().unwrap_or_default(),
                    info.begin_wal.as_deref().unwrap_or_default(),
                    info.begin_offset.unwrap_or_default()
                ));
                self.purge_unused_wals(info)?;
                let id = info.backup_id.as_deref().unwrap_or_default();
                reporter.info(&format!("Starting backup with disk snapshots for {id}"));
                let data = self.home.data_dir(id);
                std::fs::create_dir_all(&data).map_err(|e| Error::io(&data, e))?;
                self.copy_started
                    .set(Some((chrono::Local::now(), Instant::now())));
            }
            SnapshotStep::SnapshotsCreated(elapsed) => {
                reporter.info(&format!(
                    "Snapshot backup done (time: {})",
                    human_readable_timedelta(&PyValue::Float(elapsed.as_secs_f64()))
                        .unwrap_or_default()
                ));
                self.purge_unused_wals(info)?;
                reporter.info("Asking PostgreSQL server to finalize the backup.");
            }
            SnapshotStep::StoppingAfterFailure => {
                reporter.error("The backup has failed copying files");
                reporter.info("Asking PostgreSQL server to finalize the backup.");
            }
        }
        Ok(())
    }

    fn stop_after_failure(&self) -> bool {
        true
    }
}

impl HomeTarget<'_> {
    /// Barman's `_purge_unused_wal_files`: the first backup removes older WALs.
    fn purge_unused_wals(&self, info: &BackupInfo) -> Result<()> {
        if info.begin_wal.is_none() || previous_backup(self.home, info).is_some() {
            return Ok(());
        }
        self.reporter.info(&format!(
            "This is the first backup for server {}",
            self.server
        ));
        let removed = remove_wal_before_backup(self.home, info, self.hooks)?;
        if !removed.is_empty() {
            self.reporter
                .info("WAL segments preceding the current backup have been found:");
            for name in removed {
                self.reporter.info(&format!(
                    "\t{name} from server {} has been removed",
                    self.server
                ));
            }
        }
        Ok(())
    }
}

/// Barman's `remove_wal_before_backup` for a first backup: every WAL (not `.history`)
/// older than its begin WAL leaves xlog.db and `wals/`. The names removed.
/// The WAL deletion hooks run around each file.
pub(crate) fn remove_wal_before_backup(
    home: &ServerHome,
    info: &BackupInfo,
    hooks: &Hooks<'_>,
) -> Result<Vec<String>> {
    let Some(begin) = info.begin_wal.clone() else {
        return Ok(Vec::new());
    };
    remove_wals_before(&home.wal, &begin, hooks)
}

/// Removes from xlog.db and `wals/` every WAL file (history files excepted) whose name
/// sorts before `begin_wal`; the names removed, in index order.
fn remove_wals_before(
    paths: &WalArchivePaths,
    begin_wal: &str,
    hooks: &Hooks<'_>,
) -> Result<Vec<String>> {
    let db = XlogDb::new(paths);
    if !db.path().exists() {
        return Ok(Vec::new());
    }
    let mut guard = db.lock()?;
    let removed = guard.remove_where_with(
        paths,
        |entry| {
            !entry.name.ends_with(".history")
                && WalName::try_parse(&entry.name).is_some()
                && entry.name.as_str() < begin_wal
        },
        &mut WalDeleteHooks { hooks },
    )?;
    Ok(removed.into_iter().map(|entry| entry.name).collect())
}

/// The WAL segment names from `begin` to `end` included (Barman's
/// `generate_segment_names`).
fn segments_between(begin: &str, end: &str, segment_size: i64) -> Vec<String> {
    let parse = |name: &str| -> Option<(u32, u64, u64)> {
        if name.len() < 24 {
            return None;
        }
        Some((
            u32::from_str_radix(&name[0..8], 16).ok()?,
            u64::from_str_radix(&name[8..16], 16).ok()?,
            u64::from_str_radix(&name[16..24], 16).ok()?,
        ))
    };
    let (Some((tli, log0, seg0)), Some((_, log1, seg1))) = (parse(begin), parse(end)) else {
        return Vec::new();
    };
    let per_log = (0x1_0000_0000u64 / segment_size.max(1) as u64).max(1);
    let (mut log, mut seg) = (log0, seg0);
    let mut names = Vec::new();
    while (log, seg) <= (log1, seg1) {
        names.push(format!("{tli:08X}{log:08X}{seg:08X}"));
        seg += 1;
        if seg >= per_log {
            seg = 0;
            log += 1;
        }
    }
    names
}

/// The newest WAL file stored per timeline, found as Barman's check-backup finds it
/// (`get_latest_archived_wals_info`): hash directories of `wals/` in reverse name order, the
/// first one of a timeline holding a WAL file gives it. Read from the files rather than
/// from xlog.db, so a backup is judged on what the archive actually holds.
pub fn latest_archived_files(paths: &WalArchivePaths) -> BTreeMap<u32, String> {
    let mut latest = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(&paths.wals) else {
        return latest;
    };
    let mut dirs: Vec<(String, std::path::PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    dirs.sort_by(|a, b| b.0.cmp(&a.0));
    for (name, dir) in dirs {
        let Some(timeline) = name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()) else {
            continue;
        };
        if latest.contains_key(&timeline) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = files
            .flatten()
            .filter(|e| !e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| WalName::try_parse(n).is_some())
            .collect();
        names.sort();
        if let Some(newest) = names.pop() {
            latest.insert(timeline, newest);
        }
    }
    latest
}

/// Barman's `check_backup`: a backup becomes DONE once every WAL from its begin to its end
/// is archived, FAILED when one is missing before the newest archived one (or when it
/// spans timelines), else stays WAITING_FOR_WALS. Saves the backup.info when it changed.
pub fn check_backup(
    home: &ServerHome,
    info: &mut BackupInfo,
    reporter: &dyn Reporter,
) -> Result<()> {
    let (Some(begin), Some(end)) = (info.begin_wal.clone(), info.end_wal.clone()) else {
        return Ok(());
    };
    let before = info.status.clone();
    let (begin_tli, end_tli) = (&begin[..8.min(begin.len())], &end[..8.min(end.len())]);
    if begin_tli != end_tli {
        info.error = Some(format!(
            "Backups spanning multiple timelines are not supported. The backup starts in \
             timeline {begin_tli} and ends in timeline {end_tli}."
        ));
        info.status = Some(BackupStatus::Failed);
        save(home, info)?;
        reporter.error(&format!(
            "This backup has been marked as FAILED due to the following reason: {}",
            info.error.as_deref().unwrap_or_default()
        ));
        return Ok(());
    }
    let timeline = u32::from_str_radix(begin_tli, 16).unwrap_or(0);
    let latest = latest_archived_files(&home.wal);
    let last = match latest.get(&timeline) {
        Some(last) if last.as_str() >= begin.as_str() => last.clone(),
        _ => {
            info.status = Some(BackupStatus::WaitingForWals);
            if before != info.status {
                save(home, info)?;
            }
            return Ok(());
        }
    };
    let segment_size = info.xlog_segment_size.unwrap_or(16 << 20);
    let missing = segments_between(&begin, &end, segment_size)
        .into_iter()
        .take_while(|wal| *wal <= last)
        .find(|wal| {
            WalName::try_parse(wal).is_none_or(|name| !home.wal.stored_path(&name).exists())
        });
    if let Some(missing) = missing {
        info.error = Some(format!(
            "At least one WAL file is missing. The first missing WAL file is {missing}"
        ));
        info.status = Some(BackupStatus::Failed);
        save(home, info)?;
        reporter.error(&format!(
            "This backup has been marked as FAILED due to the following reason: {}",
            info.error.as_deref().unwrap_or_default()
        ));
        return Ok(());
    }
    info.status = Some(if end <= last {
        BackupStatus::Done
    } else {
        BackupStatus::WaitingForWals
    });
    if before != info.status {
        save(home, info)?;
    }
    Ok(())
}

/// After archiving: every WAITING_FOR_WALS backup of the server checked again, each under
/// its `.<srv>-<id>.lock` (skipped when busy, e.g. being deleted); the IDs that became
/// DONE. Barman does this in `backup` and in the `check-backup` that `cron` starts; we
/// also do it after every archive-wal run, so cron's archive-wal does it too.
pub fn check_waiting_backups(home: &ServerHome, reporter: &dyn Reporter) -> Result<Vec<String>> {
    let mut done = Vec::new();
    for mut info in load_backups(home) {
        if info.status == Some(BackupStatus::WaitingForWals) {
            let id = info.backup_id.clone().unwrap_or_default();
            let Some(_lock) = LockFile::try_acquire(&home.backup_id_lock(&id))? else {
                continue;
            };
            // Read again under the lock: it may have changed or gone.
            let Some(mut fresh) = load_backups(home)
                .into_iter()
                .find(|b| b.backup_id.as_deref() == Some(id.as_str()))
            else {
                continue;
            };
            if fresh.status != Some(BackupStatus::WaitingForWals) {
                continue;
            }
            std::mem::swap(&mut info, &mut fresh);
            check_backup(home, &mut info, reporter)?;
            if info.status == Some(BackupStatus::Done) {
                done.push(info.backup_id.clone().unwrap_or_default());
            }
        }
    }
    Ok(done)
}

/// Why `--incremental` is refused for this server (Barman's
/// `_validate_incremental_backup_configs`, whose first test is PostgreSQL's version).
pub async fn incremental_refusal(server: &ServerConfig) -> String {
    let version = async {
        let conninfo = server.conninfo.as_deref().unwrap_or_default();
        let resolved = ConnInfo::parse(conninfo).ok()?.resolve_from_env().ok()?;
        let session = PgSession::connect(&resolved, "barman").await.ok()?;
        Some(session.server_version())
    }
    .await
    .unwrap_or(0);
    if version < 170000 {
        "Postgres version 17 or greater is required for incremental backups using the \
         Postgres backup method"
            .into()
    } else {
        "Backup using the `--incremental` flag is available only for 'backup_method = \
         postgres'. Check Barman's documentation for more help on this topic."
            .into()
    }
}

/// A reporter for library callers without a console: messages go to `tracing`.
pub struct TracingReporter;

impl Reporter for TracingReporter {
    fn info(&self, text: &str) {
        tracing::info!("{text}");
    }
    fn warning(&self, text: &str) {
        tracing::warn!("{text}");
    }
    fn error(&self, text: &str) {
        tracing::error!("{text}");
    }
    fn log(&self, _level: i64, text: &str) {
        tracing::debug!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_segment_size() {
        assert_eq!(
            segments_between(
                "0000000100000000000000FE",
                "000000010000000100000001",
                16 << 20
            ),
            [
                "0000000100000000000000FE",
                "0000000100000000000000FF",
                "000000010000000100000000",
                "000000010000000100000001"
            ]
        );
        assert_eq!(
            segments_between(
                "000000010000000000000003",
                "000000010000000000000003",
                16 << 20
            ),
            ["000000010000000000000003"]
        );
        assert_eq!(
            segments_between(
                "00000001000000000000003F",
                "000000010000000100000000",
                64 << 20
            ),
            ["00000001000000000000003F", "000000010000000100000000"]
        );
    }
}
