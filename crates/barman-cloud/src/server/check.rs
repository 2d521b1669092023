//! `barman check` for a server with `backup_method = snapshot` (Barman 3.20.1's
//! `Server.check` and the checks it delegates to): the results in Barman's order, each a
//! name, OK or FAILED and an optional hint. Only results Barman reports appear (`WAL
//! archive`, `configuration`, `postgres minimal version`, `backup_label` only when they
//! fail). Like Barman, a check may archive WAL files and switch a segment when the archive
//! is still empty, and creates the server's directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::catalog::backup_info::{BackupInfo, BackupStatus};
use crate::error::{Error, Result};
use crate::pg::conninfo::{self, ConnInfo};
use crate::pg::session::{MIN_SERVER_VERSION, PgSession};
use crate::retention::RetentionPolicy;
use crate::server::archive::{ArchiveSettings, archive_incoming};
use crate::server::config::ServerConfig;
use crate::server::home::{self, ServerHome};
use crate::server::paths::WalArchivePaths;
use crate::server::xlogdb::XlogDb;
use crate::snapshot::host::{Host, SshHost, run_shell};
use crate::snapshot::{SnapshotProvider, aws, azure, gcp, mounts};
use crate::wal::name::WalName;

/// One reported check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub check: String,
    pub status: bool,
    pub hint: Option<String>,
    /// Bytes, for Nagios performance data (`backup minimum size`, `wal size`).
    pub perfdata: Option<i64>,
    /// Lines Barman prints after the result (the `configuration` messages).
    pub details: Vec<String>,
}

/// The results of one server, and the error that stopped the check early when one did
/// (Barman exits there: `Unable to connect to the target host ...`, a provider failure).
#[derive(Debug, Default)]
pub struct CheckRun {
    pub results: Vec<CheckResult>,
    pub fatal: Option<Error>,
}

/// Where the server's things are, and how archive-wal files WALs (`None`: the archiver
/// cannot run, e.g. an unsupported compression).
pub struct CheckContext<'a> {
    pub server: &'a ServerConfig,
    pub paths: WalArchivePaths,
    pub archive: Option<ArchiveSettings>,
}

/// What PostgreSQL told (Barman's remote status of the PostgreSQL connection and of the
/// file archiver).
#[derive(Debug, Default, Clone)]
struct PgStatus {
    version_num: i64,
    txt_version: String,
    has_backup_privileges: Option<bool>,
    wal_level: Option<String>,
    systemid: Option<String>,
    archive_mode: Option<String>,
    archive_command: Option<String>,
    is_archiving: Option<bool>,
}

struct Checker<'a> {
    ctx: &'a CheckContext<'a>,
    results: &'a mut Vec<CheckResult>,
}

impl Checker<'_> {
    fn result(&mut self, check: &str, status: bool, hint: Option<String>) {
        self.results.push(CheckResult {
            check: check.to_string(),
            status,
            hint,
            perfdata: None,
            details: Vec::new(),
        });
    }

    fn ok(&mut self, check: &str) {
        self.result(check, true, None);
    }
}

/// Runs every check of the server within its `check_timeout` (0: no limit); past it,
/// the results so far and Barman's `check timeout` failure.
pub async fn check_server(ctx: &CheckContext<'_>) -> CheckRun {
    let mut results = Vec::new();
    let limit = u64::try_from(ctx.server.check_timeout).unwrap_or(0);
    let fatal = if limit > 0 {
        let checks = run_checks(ctx, &mut results);
        match tokio::time::timeout(Duration::from_secs(limit), checks).await {
            Ok(fatal) => fatal,
            Err(_) => {
                results.push(CheckResult {
                    check: "check timeout".into(),
                    status: false,
                    hint: Some("barman check command timed out".into()),
                    perfdata: None,
                    details: Vec::new(),
                });
                None
            }
        }
    } else {
        run_checks(ctx, &mut results).await
    };
    CheckRun { results, fatal }
}

/// The checks in Barman's order; the error that stops them early, if any.
async fn run_checks(ctx: &CheckContext<'_>, results: &mut Vec<CheckResult>) -> Option<Error> {
    let server = ctx.server;
    let mut checker = Checker { ctx, results };
    let uses_postgres = server.active && !server.passive_node;
    let backups = load_backups(server);

    // WAL archive (with its side effects), queue directories.
    check_archive(&mut checker, &backups, uses_postgres).await;

    let status = if uses_postgres {
        fetch_status(server).await
    } else {
        None
    };
    if uses_postgres {
        check_postgres(&mut checker, status.as_ref());
    }
    if !server.disabled {
        match make_directories(server) {
            Ok(()) => checker.ok("directories"),
            Err(hint) => checker.result("directories", false, Some(hint)),
        }
    }
    let retention_ok = match &server.retention_policy {
        Some(policy) if !policy.is_empty() => RetentionPolicy::parse(policy).is_ok(),
        _ => true,
    };
    if retention_ok {
        checker.ok("retention policy settings");
    } else {
        checker.result("retention policy settings", false, Some("see log".into()));
    }
    check_backup_validity(&mut checker, &backups);
    check_wal_validity(&mut checker, &backups);
    check_backup_manager(&mut checker, &backups);

    // The snapshot executor: ssh, then the strategy, then the snapshot checks.
    if let Err(error) = check_executor(&mut checker, &backups, status.as_ref()).await {
        return Some(error);
    }

    if !server.msg_list.is_empty() {
        checker.results.push(CheckResult {
            check: "configuration".into(),
            status: false,
            hint: None,
            perfdata: None,
            details: server.msg_list.iter().map(|m| format!("\t\t{m}")).collect(),
        });
    }
    check_identity(&mut checker, status.as_ref());
    if server.active && server.archiver {
        check_file_archiver(&mut checker, status.as_ref());
    }
    check_archiver_errors(&mut checker);
    None
}

// ------------------------------------------------------------------------------------
// Backups on disk
// ------------------------------------------------------------------------------------

/// Every backup.info of the server, sorted by backup ID ([`home::load_backups`]).
pub fn load_backups(server: &ServerConfig) -> Vec<BackupInfo> {
    home::load_backups(&ServerHome::from_config(server))
}

pub(super) fn has_status(info: &BackupInfo, statuses: &[BackupStatus]) -> bool {
    info.status.as_ref().is_some_and(|s| statuses.contains(s))
}

/// Barman's `NOT_INCREMENTAL` backup types: snapshot, rsync and full `postgres`
/// backups (an incremental one has a parent).
pub(super) fn is_non_incremental(info: &BackupInfo) -> bool {
    let mode = info.mode.as_deref().unwrap_or("");
    mode.starts_with("snapshot") || mode.starts_with("rsync") || info.parent_backup_id.is_none()
}

/// Barman's `get_last_backup_id` with its default filter (DONE, WAITING_FOR_WALS).
fn last_backup(backups: &[BackupInfo]) -> Option<&BackupInfo> {
    backups
        .iter()
        .rev()
        .find(|b| has_status(b, &[BackupStatus::Done, BackupStatus::WaitingForWals]))
}

// ------------------------------------------------------------------------------------
// WAL archive
// ------------------------------------------------------------------------------------

fn xlogdb_is_empty(paths: &WalArchivePaths) -> bool {
    std::fs::metadata(&paths.xlogdb_file).map_or(true, |m| m.len() == 0)
}

fn archive_quietly(ctx: &CheckContext<'_>) {
    if let Some(settings) = &ctx.archive
        && ctx.server.archiver
    {
        let _ = archive_incoming(&ctx.paths, settings);
    }
}

async fn check_archive(checker: &mut Checker<'_>, backups: &[BackupInfo], uses_postgres: bool) {
    let ctx = checker.ctx;
    let mut success = !xlogdb_is_empty(&ctx.paths);
    if !success
        && backups
            .iter()
            .any(|b| has_status(b, &[BackupStatus::WaitingForWals]))
    {
        success = true;
    }
    if !success {
        archive_quietly(ctx);
        success = !xlogdb_is_empty(&ctx.paths);
    }
    if !success && uses_postgres {
        let timeout = Duration::from_secs(u64::try_from(ctx.server.check_timeout / 3).unwrap_or(0));
        let settings = ctx.archive.as_ref().filter(|_| ctx.server.archiver);
        match switch_wal(ctx.server, false).await {
            Switch::Closed(closed) => {
                wait_for_wal(&ctx.paths, settings, Some(&closed), Some(timeout), drop).await;
            }
            Switch::NotNeeded | Switch::Standby => {
                wait_for_wal(&ctx.paths, settings, None, Some(timeout), drop).await;
            }
            Switch::Failed | Switch::CheckpointRefused => {}
        }
        success = !xlogdb_is_empty(&ctx.paths);
    }
    if !success {
        checker.result(
            "WAL archive",
            false,
            Some("please make sure WAL shipping is setup".into()),
        );
    }
    wal_queue(
        checker,
        &ctx.paths.incoming,
        "incoming",
        "archiver",
        ctx.server.archiver,
    );
    wal_queue(
        checker,
        &ctx.paths.streaming,
        "streaming",
        "streaming_archiver",
        ctx.server.streaming_archiver,
    );
}

/// `empty <dir> directory` (archiver off and files waiting) and `<dir> WALs directory`
/// (more files than `max_incoming_wals_queue`): reported only when failing.
fn wal_queue(checker: &mut Checker<'_>, dir: &Path, kind: &str, archiver: &str, enabled: bool) {
    let count = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    !name.starts_with('.') && !name.ends_with(".tmp") && !name.ends_with(".partial")
                })
                .count()
        })
        .unwrap_or(0);
    if !enabled {
        if count > 0 {
            checker.result(
                &format!("empty {kind} directory"),
                false,
                Some(format!(
                    "'{}' must be empty when {archiver}=off",
                    dir.display()
                )),
            );
        }
        return;
    }
    if let Some(max) = checker.ctx.server.max_incoming_wals_queue
        && i64::try_from(count).unwrap_or(i64::MAX) > max
    {
        checker.result(
            &format!("{kind} WALs directory"),
            false,
            Some(format!(
                "there are too many WALs in queue: {count}, max {max}"
            )),
        );
    }
}

// ------------------------------------------------------------------------------------
// PostgreSQL
// ------------------------------------------------------------------------------------

pub(super) async fn raw_client(
    server: &ServerConfig,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    let text = server
        .conninfo
        .as_deref()
        .ok_or_else(|| Error::Config("no conninfo".into()))?;
    let resolved = ConnInfo::parse(text)?.resolve_from_env()?;
    conninfo::connect(&resolved, "barman").await
}

pub(super) async fn value(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let messages = client.simple_query(sql).await.ok()?;
    messages.into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

/// What a WAL switch did (Barman's `PostgreSQLConnection.switch_wal` outcomes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// This WAL file was closed.
    Closed(String),
    /// Nothing written since the last switch: nothing to close.
    NotNeeded,
    /// The server is a standby.
    Standby,
    /// The switch (or the connection) failed.
    Failed,
    /// `--force`'s CHECKPOINT was refused for lack of privileges.
    CheckpointRefused,
}

/// Barman's `switch_wal`: with `force`, a CHECKPOINT first (so an idle server switches
/// too); the name of the WAL file closed by `pg_switch_wal()`.
pub async fn switch_wal(server: &ServerConfig, force: bool) -> Switch {
    let Ok((client, connection)) = raw_client(server).await else {
        return Switch::Failed;
    };
    let outcome = async {
        if force && client.batch_execute("CHECKPOINT").await.is_err() {
            return Switch::CheckpointRefused;
        }
        match value(&client, "SELECT pg_is_in_recovery()")
            .await
            .as_deref()
        {
            Some("f") => {}
            Some(_) => return Switch::Standby,
            None => return Switch::Failed,
        }
        let current = "SELECT pg_walfile_name(pg_current_wal_insert_lsn())";
        let Some(before) = value(&client, current).await else {
            return Switch::Failed;
        };
        if value(&client, "SELECT pg_walfile_name(pg_switch_wal())")
            .await
            .is_none()
        {
            return Switch::Failed;
        }
        let Some(after) = value(&client, current).await else {
            return Switch::Failed;
        };
        if before < after {
            Switch::Closed(before)
        } else {
            Switch::NotNeeded
        }
    }
    .await;
    connection.abort();
    outcome
}

/// The newest WAL segment archived per timeline (Barman's
/// `get_latest_archived_wals_info`, from xlog.db).
pub fn latest_archived(paths: &WalArchivePaths) -> BTreeMap<u32, String> {
    let mut latest = BTreeMap::new();
    if let Ok(entries) = XlogDb::new(paths).entries() {
        for entry in entries {
            if let Some(name) = WalName::try_parse(&entry.name)
                && name.hash_dir().is_some()
                && entry.name.len() == 24
            {
                let slot = latest.entry(name.timeline()).or_insert_with(String::new);
                if entry.name > *slot {
                    *slot = entry.name.clone();
                }
            }
        }
    }
    latest
}

/// Barman's `wait_for_wal`: archive-wal every 0.1 s until `wal` is in the archive (or,
/// without a name, until a new WAL file was archived on any timeline), at most `timeout`
/// (none: forever). `report` gets archive-wal's non-verbose lines. Whether it arrived.
pub async fn wait_for_wal(
    paths: &WalArchivePaths,
    settings: Option<&ArchiveSettings>,
    wal: Option<&str>,
    timeout: Option<Duration>,
    mut report: impl FnMut(Vec<String>),
) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    let target = wal
        .and_then(WalName::try_parse)
        .map(|w| paths.stored_path(&w));
    let initial = latest_archived(paths);
    while deadline.is_none_or(|d| Instant::now() < d) {
        if let Some(settings) = settings
            && let Ok(outcome) = archive_incoming(paths, settings)
        {
            report(outcome.lines(false));
        }
        let arrived = match (&target, wal) {
            (Some(path), _) => path.exists(),
            (None, Some(_)) => false,
            (None, None) => latest_archived(paths) != initial,
        };
        if arrived {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn fetch_status(server: &ServerConfig) -> Option<PgStatus> {
    let (client, connection) = raw_client(server).await.ok()?;
    let mut status = PgStatus {
        version_num: value(&client, "SHOW server_version_num")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        txt_version: value(&client, "SHOW server_version")
            .await
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default(),
        ..Default::default()
    };
    if status.txt_version.is_empty() {
        connection.abort();
        return None;
    }
    status.wal_level = value(&client, "SHOW wal_level").await;
    status.systemid = value(
        &client,
        "SELECT system_identifier::text FROM pg_control_system()",
    )
    .await;
    status.archive_mode = value(&client, "SHOW archive_mode").await;
    status.archive_command = value(&client, "SHOW archive_command").await;
    status.is_archiving = value(
        &client,
        "SELECT current_setting('archive_mode') IN ('on', 'always') AND \
         (last_failed_wal IS NULL OR last_failed_wal LIKE '%.history' AND \
         substring(last_failed_wal from 1 for 8) <= substring(last_archived_wal from 1 for 8) \
         OR last_failed_time <= last_archived_time) FROM pg_stat_archiver",
    )
    .await
    .map(|v| v == "t");
    connection.abort();
    status.has_backup_privileges = backup_privileges(server).await;
    Some(status)
}

/// Barman's `has_backup_privileges` (`None`: PostgreSQL did not answer).
pub(super) async fn backup_privileges(server: &ServerConfig) -> Option<bool> {
    let text = server.conninfo.as_deref()?;
    let resolved = ConnInfo::parse(text)
        .and_then(|c| c.resolve_from_env())
        .ok()?;
    let session = PgSession::connect(&resolved, "barman").await.ok()?;
    session.has_backup_privileges().await.ok()
}

fn check_postgres(checker: &mut Checker<'_>, status: Option<&PgStatus>) {
    let Some(status) = status else {
        checker.result("PostgreSQL", false, None);
        return;
    };
    if status.version_num < MIN_SERVER_VERSION {
        checker.result(
            "PostgreSQL",
            false,
            Some(format!(
                "unsupported version: PostgreSQL server is too old ({} < 9.6)",
                status.txt_version
            )),
        );
        return;
    }
    checker.ok("PostgreSQL");
    match status.has_backup_privileges {
        Some(true) => checker.ok("superuser or standard user with backup privileges"),
        Some(false) => checker.result(
            "no access to backup functions",
            false,
            Some(
                "privileges for PostgreSQL backup functions are required (see documentation)"
                    .into(),
            ),
        ),
        None => {}
    }
    if let Some(level) = &status.wal_level {
        if level != "minimal" {
            checker.ok("wal_level");
        } else {
            checker.result(
                "wal_level",
                false,
                Some("please set it to a higher level than 'minimal'".into()),
            );
        }
    }
}

fn check_identity(checker: &mut Checker<'_>, status: Option<&PgStatus>) {
    const NAME: &str = "systemid coherence";
    let Some(systemid) = status.and_then(|s| s.systemid.clone()) else {
        checker.result(NAME, true, Some("no system Id available".into()));
        return;
    };
    let path = Path::new(&checker.ctx.server.backup_directory).join("identity.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        checker.result(NAME, true, Some("no system Id stored on disk".into()));
        return;
    };
    let stored = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("systemid")
                .and_then(|s| s.as_str())
                .map(str::to_string)
        });
    if stored.as_deref() == Some(systemid.as_str()) {
        checker.ok(NAME);
    } else {
        checker.result(
            NAME,
            false,
            Some(format!(
                "the system Id of the connected PostgreSQL server changed, stored in \"{}\"",
                path.display()
            )),
        );
    }
}

fn check_file_archiver(checker: &mut Checker<'_>, status: Option<&PgStatus>) {
    let Some(status) = status else { return };
    let Some(mode) = &status.archive_mode else {
        return;
    };
    if mode == "on" || mode == "always" {
        checker.ok("archive_mode");
    } else {
        let mut hint = "please set it to 'on'".to_string();
        if status.version_num >= 90500 {
            hint.push_str(" or 'always'");
        }
        checker.result("archive_mode", false, Some(hint));
    }
    match status.archive_command.as_deref() {
        Some(command) if !command.is_empty() && command != "(disabled)" => {
            checker.ok("archive_command");
            if let Some(archiving) = status.is_archiving {
                checker.result("continuous archiving", archiving, None);
            }
        }
        _ => checker.result(
            "archive_command",
            false,
            Some("please set it accordingly to documentation".into()),
        ),
    }
}

// ------------------------------------------------------------------------------------
// Directories, validity, backup manager
// ------------------------------------------------------------------------------------

/// The server's `*_directory` settings and `meta/`, created when missing; Barman's
/// `<path>: <reason>` on failure.
fn make_directories(server: &ServerConfig) -> std::result::Result<(), String> {
    let base = PathBuf::from(&server.backup_directory);
    let or_default = |value: &Option<String>, default: &str| {
        value
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| base.join(default))
    };
    let wals = or_default(&server.wals_directory, "wals");
    let mut dirs = vec![
        base.clone(),
        or_default(&server.basebackups_directory, "base"),
        or_default(&server.errors_directory, "errors"),
        or_default(&server.incoming_wals_directory, "incoming"),
        or_default(&server.streaming_wals_directory, "streaming"),
        wals.clone(),
    ];
    if let Some(xlogdb) = &server.xlogdb_directory {
        dirs.push(PathBuf::from(xlogdb));
    }
    dirs.push(base.join("meta"));
    for dir in dirs {
        if dir.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| {
            let text = e.to_string();
            let reason = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("{}: {reason}", failing_path(&dir).display())
        })?;
    }
    Ok(())
}

/// The first missing ancestor of `dir`, where `makedirs` fails.
fn failing_path(dir: &Path) -> PathBuf {
    let mut path = dir.to_path_buf();
    while let Some(parent) = path.parent() {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        path = parent.to_path_buf();
    }
    path
}

use crate::catalog::render::pretty_size;

fn human_delta(seconds: f64) -> String {
    crate::catalog::render::human_readable_timedelta(&crate::catalog::PyValue::Float(seconds))
        .unwrap_or_default()
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn check_backup_validity(checker: &mut Checker<'_>, backups: &[BackupInfo]) {
    let server = checker.ctx.server;
    let last = last_backup(backups);
    match server.last_backup_maximum_age {
        Some(max) => {
            let (ok, age) = match last.and_then(|b| b.end_time) {
                Some(end) => {
                    let age = now_seconds() - end.timestamp_micros() as f64 / 1e6;
                    (age <= max.as_secs_f64(), human_delta(age))
                }
                None => (false, "No available backups".to_string()),
            };
            checker.result(
                "backup maximum age",
                ok,
                Some(format!(
                    "interval provided: {}, latest backup age: {age}",
                    human_delta(max.as_secs_f64())
                )),
            );
        }
        None => checker.result(
            "backup maximum age",
            true,
            Some("no last_backup_maximum_age provided".into()),
        ),
    }
    let size = last.and_then(|b| b.size).unwrap_or(0);
    let (ok, hint) = match server.last_backup_minimum_size {
        Some(min) => {
            let min = i64::try_from(min).unwrap_or(i64::MAX);
            let ok = last.is_some() && size >= min;
            (
                ok,
                format!(
                    "last backup size {} {} {} minimum",
                    pretty_size(size),
                    if ok { ">" } else { "<" },
                    pretty_size(min)
                ),
            )
        }
        None => (true, pretty_size(size)),
    };
    checker.results.push(CheckResult {
        check: "backup minimum size".into(),
        status: ok,
        hint: Some(hint),
        perfdata: Some(size),
        details: Vec::new(),
    });
}

fn check_wal_validity(checker: &mut Checker<'_>, backups: &[BackupInfo]) {
    let server = checker.ctx.server;
    let last = last_backup(backups);
    // WALs from the last backup's begin_wal on (Barman's get_wal_until_next_backup:
    // there is no newer backup): those after its end_wal make the size.
    let mut until_next_size: i64 = 0;
    let mut last_time: Option<f64> = None;
    if let Some(backup) = last
        && let (Some(begin), Some(end)) = (&backup.begin_wal, &backup.end_wal)
        && let Ok(entries) = XlogDb::new(&checker.ctx.paths).entries()
    {
        for entry in entries {
            let Some(name) = WalName::try_parse(&entry.name) else {
                continue;
            };
            if name.hash_dir().is_none() || entry.name.len() != 24 || entry.name < *begin {
                continue;
            }
            if entry.name > *end {
                until_next_size += i64::try_from(entry.size).unwrap_or(0);
            }
            last_time = Some(entry.time);
        }
    }
    match server.last_wal_maximum_age {
        Some(max) => {
            let (ok, hint) = match last_time {
                Some(time) => {
                    let age = now_seconds() - time;
                    (
                        age <= max.as_secs_f64(),
                        format!(
                            "interval provided: {}, latest wal age: {}",
                            human_delta(max.as_secs_f64()),
                            human_delta(age)
                        ),
                    )
                }
                None => (false, "No WAL files archived for last backup".to_string()),
            };
            checker.result("wal maximum age", ok, Some(hint));
        }
        None => checker.result(
            "wal maximum age",
            true,
            Some("no last_wal_maximum_age provided".into()),
        ),
    }
    checker.results.push(CheckResult {
        check: "wal size".into(),
        status: true,
        hint: Some(pretty_size(until_next_size)),
        perfdata: Some(until_next_size),
        details: Vec::new(),
    });
}

/// Compressions Barman's compression manager knows (`custom` needs its filters).
fn compression_supported(server: &ServerConfig) -> bool {
    match server.compression.as_deref() {
        None | Some("") => true,
        Some(name) => matches!(
            name,
            "gzip" | "pigz" | "pygzip" | "bzip2" | "pybzip2" | "xz" | "zstd" | "lz4" | "snappy"
        ),
    }
}

fn check_backup_manager(checker: &mut Checker<'_>, backups: &[BackupInfo]) {
    let server = checker.ctx.server;
    let supported = compression_supported(server);
    checker.result("compression settings", supported, None);
    let failed = backups
        .iter()
        .filter(|b| has_status(b, &[BackupStatus::Failed]))
        .count();
    checker.result(
        "failed backups",
        failed == 0,
        Some(format!("there are {failed} failed backups")),
    );
    let done = backups
        .iter()
        .filter(|b| has_status(b, &[BackupStatus::Done]) && is_non_incremental(b))
        .count();
    let done = i64::try_from(done).unwrap_or(i64::MAX);
    checker.result(
        "minimum redundancy requirements",
        done >= server.minimum_redundancy,
        Some(format!(
            "have {done} non-incremental backups, expected at least {}",
            server.minimum_redundancy
        )),
    );
}

// ------------------------------------------------------------------------------------
// The snapshot executor
// ------------------------------------------------------------------------------------

/// `ssh_command` as Barman's executor splits it: the program, then its words plus
/// `-o BatchMode=yes -o StrictHostKeyChecking=no`.
fn executor_ssh(ssh_command: &str) -> (String, Vec<String>) {
    let mut words = ssh_command.split_whitespace().map(str::to_string);
    let program = words.next().unwrap_or_default();
    let mut options: Vec<String> = words.collect();
    options.extend(
        ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
            .iter()
            .map(|s| s.to_string()),
    );
    (program, options)
}

async fn check_executor(
    checker: &mut Checker<'_>,
    backups: &[BackupInfo],
    status: Option<&PgStatus>,
) -> Result<()> {
    let server = checker.ctx.server;
    let Some(ssh_command) = server.ssh_command.clone() else {
        return Ok(());
    };
    // `ssh`: `true` through the executor's command.
    let (program, options) = executor_ssh(&ssh_command);
    let host = SshHost::new(&program, &options);
    let line = host.line("true", &[]);
    let outcome = run_shell(&line).await;
    let (connected, hint, noise) = match &outcome {
        Ok(out) if out.code == Some(0) => (
            true,
            "PostgreSQL server".to_string(),
            format!("{}{}", out.stdout, out.stderr),
        ),
        Ok(out) => (
            false,
            format!(
                "Connection failed using '{program} {}' return code {}",
                options.join(" "),
                out.code.unwrap_or(-1)
            ),
            String::new(),
        ),
        Err(_) => (false, format!("Unable to execute {program}"), String::new()),
    };
    checker.result("ssh", connected, Some(hint.trim().to_string()));
    if !noise.is_empty() {
        checker.result(
            "ssh output clean",
            false,
            Some(
                "the configured ssh_command must not add anything to the remote command output"
                    .into(),
            ),
        );
    }
    if connected && status.is_none() {
        let last = backups
            .iter()
            .rev()
            .find(|b| b.status.as_ref().is_some_and(|s| *s != BackupStatus::Empty));
        if let Some(pgdata) = last.and_then(|b| b.pgdata.clone()) {
            let label = format!("{}/backup_label", pgdata.trim_end_matches('/'));
            if host.exists(&label).await.unwrap_or(false) {
                checker.result(
                    "backup_label",
                    false,
                    Some(
                        "Check that the PostgreSQL server is up and no 'backup_label' file is \
                         in PGDATA."
                            .into(),
                    ),
                );
            }
        }
    }
    // The backup strategy.
    let exclusive = server
        .backup_options
        .iter()
        .any(|o| o == "exclusive_backup");
    if exclusive {
        if let Some(status) = status {
            checker.ok("not in recovery");
            if status.version_num < 150000 {
                checker.ok("exclusive backup supported");
            } else {
                checker.result(
                    "exclusive backup supported",
                    false,
                    Some(format!(
                        "exclusive backups not supported on PostgreSQL {}",
                        status.version_num / 10000
                    )),
                );
            }
        } else {
            checker.result(
                "exclusive backup supported",
                false,
                Some("unable to determine postgres version".into()),
            );
        }
    } else if let Some(status) = status
        && status.version_num < MIN_SERVER_VERSION
    {
        checker.result(
            "postgres minimal version",
            false,
            Some(format!(
                "unsupported PostgresSQL version {}. Expecting 9.6 or above.",
                status.txt_version
            )),
        );
    }
    if server.disabled {
        return Ok(());
    }
    // The snapshot checks.
    let provider = provider_for_server(server).await?;
    let instance = server.snapshot_instance.clone().unwrap_or_default();
    if !provider.instance_exists(&instance).await? {
        checker.result(
            "snapshot instance exists",
            false,
            Some(format!("cannot find compute instance {instance}")),
        );
        return Ok(());
    }
    checker.ok("snapshot instance exists");
    let remote = SshHost::connect(&ssh_command).await.map_err(|_| {
        Error::Failed(format!(
            "Unable to connect to the target host using the command '{ssh_command}'"
        ))
    })?;
    let disks = server.snapshot_disks.clone().unwrap_or_default();
    let attached = provider.attached_disks(&instance, Some(&disks)).await?;
    let missing: Vec<&str> = disks
        .iter()
        .filter(|d| !attached.iter().any(|a| a.identifier == **d))
        .map(String::as_str)
        .collect();
    let mut unmounted: Vec<&str> = Vec::new();
    for disk in &disks {
        let Some(found) = attached.iter().find(|a| a.identifier == *disk) else {
            continue;
        };
        match mounts::resolve_mount(&remote, &found.device).await {
            Ok(_) => {}
            Err(error) => {
                tracing::warn!("Error resolving mount point: {error}");
                unmounted.push(disk);
            }
        }
    }
    let attached_hint = format!(
        "cannot find snapshot disks attached to instance {instance}: {}",
        missing.join(", ")
    );
    checker.result(
        "snapshot disks attached to instance",
        missing.is_empty(),
        (!missing.is_empty()).then_some(attached_hint),
    );
    let mounted_hint = format!(
        "cannot find snapshot disks mounted on instance {instance}: {}",
        unmounted.join(", ")
    );
    checker.result(
        "snapshot disks mounted on instance",
        unmounted.is_empty(),
        (!unmounted.is_empty()).then_some(mounted_hint),
    );
    Ok(())
}

/// The provider a snapshot server's configuration describes.
pub async fn provider_for_server(server: &ServerConfig) -> Result<Arc<dyn SnapshotProvider>> {
    match server.snapshot_provider.as_deref() {
        Some("aws") => Ok(Arc::new(
            aws::AwsSnapshots::new(aws::AwsSnapshotSettings {
                profile: server.aws_profile.clone(),
                region: server.aws_region.clone(),
                await_timeout: Duration::from_secs(
                    u64::try_from(server.aws_await_snapshots_timeout).unwrap_or(0),
                ),
                ..Default::default()
            })
            .await?,
        )),
        Some("gcp") => Ok(Arc::new(
            gcp::GcpSnapshots::new(gcp::GcpSnapshotSettings {
                project: server.gcp_project.clone().unwrap_or_default(),
                zone: server.gcp_zone.clone(),
            })
            .await?,
        )),
        Some("azure") => {
            let credential = match server.azure_credential.as_deref() {
                Some("azure-cli") => crate::storage::AzureCredentialKind::AzureCli,
                Some("managed-identity") => crate::storage::AzureCredentialKind::ManagedIdentity,
                _ => crate::storage::AzureCredentialKind::Default,
            };
            Ok(Arc::new(
                azure::AzureSnapshots::new(azure::AzureSnapshotSettings {
                    subscription_id: server.azure_subscription_id.clone().unwrap_or_default(),
                    resource_group: server.azure_resource_group.clone(),
                    credential,
                    ..Default::default()
                })
                .await?,
            ))
        }
        other => Err(Error::Config(format!(
            "Unsupported snapshot provider: {}",
            other.unwrap_or("None")
        ))),
    }
}

/// Barman's `summarise_error_files`: counts by kind, in order of first appearance.
pub fn summarise_error_files(names: &[String]) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let mut counters: Vec<(&str, usize)> = Vec::new();
    for name in names {
        let kind = if name.ends_with(".error") {
            "not relevant"
        } else if name.ends_with(".duplicate") {
            "duplicates"
        } else if name.ends_with(".unknown") {
            "unknown"
        } else {
            "unknown failure"
        };
        match counters.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counters.push((kind, 1)),
        }
    }
    Some(
        counters
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn check_archiver_errors(checker: &mut Checker<'_>) {
    let names: Vec<String> = std::fs::read_dir(&checker.ctx.paths.errors)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let hint = summarise_error_files(&names);
    checker.result("archiver errors", names.is_empty(), hint);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_files_are_summarised_by_kind_in_order() {
        let names: Vec<String> = ["a.duplicate", "b.unknown", "c.duplicate", "d", "e.error"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            summarise_error_files(&names).as_deref(),
            Some("duplicates: 2, unknown: 1, unknown failure: 1, not relevant: 1")
        );
        assert_eq!(summarise_error_files(&[]), None);
    }

    #[test]
    fn sizes_are_pretty() {
        assert_eq!(pretty_size(0), "0 B");
        assert_eq!(pretty_size(1023), "1023 B");
        assert_eq!(pretty_size(16 * 1024 * 1024), "16.0 MiB");
    }

    #[test]
    fn the_executor_splits_ssh_command_as_barman() {
        let (program, options) = executor_ssh("ssh  -p 22\troot@h");
        assert_eq!(program, "ssh");
        assert_eq!(
            options,
            [
                "-p",
                "22",
                "root@h",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no"
            ]
        );
        let host = SshHost::new(&program, &options);
        assert_eq!(
            host.line("test", &["-e", "/d/it's"]),
            "ssh '-p' '22' 'root@h' '-o' 'BatchMode=yes' '-o' 'StrictHostKeyChecking=no' \
             'test '\\''-e'\\'' '\\''/d/it'\\''\\'\\'''\\''s'\\'''"
        );
    }
}
