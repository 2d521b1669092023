//! What the server's catalog commands show (`list-backups`, `show-backup`), computed as
//! Barman 3.20.1 computes it from a `barman_home`: the backups, their keep annotations,
//! the WAL index (xlog.db) and the timeline history files.
//!
//! * Sizes: a backup's WALs are the xlog.db segments from its `begin_wal` on, of its
//!   timeline or an older one, up to the `end_wal` of the next backup whose copy is done;
//!   those up to its own `end_wal` are "needed by the backup" (added to its size), the
//!   others are "after the backup" (the list's WAL Size, show-backup's WAL information).
//! * Retention statuses: [`retention_statuses`], the rules of
//!   [`crate::retention::RetentionPolicy::report`] fed with the server's
//!   `retention_policy` and `minimum_redundancy`; `None` when the server enforces none.
//! * Renderers: Barman's console lines and JSON values for both commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use crate::catalog::backup_info::DEFAULT_XLOG_SEGMENT_SIZE;
use crate::catalog::render::{human_readable_timedelta, pretty_size, pretty_size_float};
use crate::catalog::timestamp::{self, Timestamp};
use crate::catalog::{BackupInfo, BackupStatus, KeepAnnotations, PyDict, PyValue};
use crate::catalog_store::CatalogStore;
use crate::compression::magic;
use crate::error::{Error, Result};
use crate::retention::{RetentionPolicy, RetentionStatus};
use crate::server::config::ServerConfig;
use crate::server::home::{HomeCatalog, ServerHome, load_backups};
use crate::server::xlogdb::{XlogDb, XlogEntry};

/// Barman's `BackupInfo.NONE`: no retention status.
pub const NO_STATUS: &str = "-";

/// A server's catalog as the catalog commands read it.
pub struct ServerCatalog {
    pub server: String,
    /// Every readable backup.info, sorted by backup ID.
    pub backups: Vec<BackupInfo>,
    pub keeps: KeepAnnotations,
    /// xlog.db, in file order.
    pub xlog: Vec<XlogEntry>,
    /// Retention status by backup ID, `None` when no policy is enforced.
    pub retention: Option<BTreeMap<String, RetentionStatus>>,
    wals_dir: std::path::PathBuf,
}

/// The server's retention policy when Barman enforces one (a `retention_policy` it can
/// parse), else `None`.
pub fn enforced_policy(server: &ServerConfig) -> Option<RetentionPolicy> {
    server
        .retention_policy
        .as_deref()
        .filter(|text| !text.is_empty())
        .and_then(|text| RetentionPolicy::parse(text).ok())
}

/// The retention status of every backup but EMPTY ones (Barman's `STATUS_NOT_EMPTY`
/// source) under the server's policy, or `None` when the server enforces none. The same
/// statuses drive `list-backups`, `show-backup` and retention in `cron`.
pub fn retention_statuses(
    server: &ServerConfig,
    backups: &[BackupInfo],
    keeps: &KeepAnnotations,
    now: Timestamp,
) -> Result<Option<BTreeMap<String, RetentionStatus>>> {
    let Some(policy) = enforced_policy(server) else {
        return Ok(None);
    };
    let source: Vec<BackupInfo> = backups
        .iter()
        .filter(|b| b.status.is_some() && b.status != Some(BackupStatus::Empty))
        .cloned()
        .collect();
    let minimum = u64::try_from(server.minimum_redundancy).unwrap_or(0);
    policy.report(&source, keeps, minimum, now).map(Some)
}

impl ServerCatalog {
    /// Reads the server's backups, keep annotations and xlog.db, and the retention
    /// statuses as of `now`.
    pub fn load(server: &ServerConfig, now: Timestamp) -> Result<Self> {
        let home = ServerHome::from_config(server);
        Self::load_home(&home, server, now)
    }

    pub fn load_home(home: &ServerHome, server: &ServerConfig, now: Timestamp) -> Result<Self> {
        let backups = load_backups(home);
        let keeps = block_on(HomeCatalog::new(home).keep_annotations())?;
        let xlog = if home.wal.xlogdb_file.exists() {
            XlogDb::new(&home.wal).entries()?
        } else {
            Vec::new()
        };
        let retention = retention_statuses(server, &backups, &keeps, now)?;
        Ok(ServerCatalog {
            server: server.name.clone(),
            backups,
            keeps,
            xlog,
            retention,
            wals_dir: home.wal.wals.clone(),
        })
    }

    /// The backup after `id` (by ID) whose copy is done.
    pub fn next_backup(&self, id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .filter(|b| b.backup_id.as_deref().is_some_and(|b| b > id))
            .find(|b| copy_done(b))
    }

    /// The backup before `id` (by ID) whose copy is done.
    pub fn previous_backup(&self, id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .rev()
            .filter(|b| b.backup_id.as_deref().is_some_and(|b| b < id))
            .find(|b| copy_done(b))
    }

    /// Barman's `get_wal_info` for one backup.
    pub fn wal_info(&self, backup: &BackupInfo) -> std::result::Result<WalInfo, BadWalName> {
        let id = backup.backup_id.as_deref().unwrap_or("");
        let next_end = self
            .next_backup(id)
            .and_then(|n| n.end_wal.as_deref())
            .filter(|e| !e.is_empty());
        wal_info(backup, next_end, &self.xlog)
    }

    /// The timelines forked from the backup's timeline after its end (Barman's
    /// `get_children_timelines`): `<tli+1>.history`, `<tli+2>.history`... in `wals/` while
    /// they exist, each line whose parent is the backup's timeline.
    pub fn children_timelines(&self, backup: &BackupInfo) -> Result<Vec<u32>> {
        let Some(tli) = backup.timeline else {
            return Ok(Vec::new());
        };
        let forked_after = backup
            .end_xlog
            .as_deref()
            .filter(|l| !l.is_empty())
            .and_then(parse_lsn);
        let mut children = Vec::new();
        let mut child = tli;
        loop {
            child += 1;
            let path = self.wals_dir.join(format!("{child:08X}.history"));
            if !path.exists() {
                break;
            }
            for (parent, switchpoint) in read_history(&path)? {
                if parent != tli {
                    continue;
                }
                if forked_after.is_some_and(|after| switchpoint < after) {
                    continue;
                }
                children.push(u32::try_from(child).unwrap_or(u32::MAX));
            }
        }
        Ok(children)
    }

    /// The status list-backups shows after the sizes (`None`: none), as Barman: only
    /// under an enforced policy and never `VALID`.
    fn list_status(&self, id: &str) -> Option<&'static str> {
        let status = self.retention.as_ref()?.get(id)?;
        (*status != RetentionStatus::Valid).then(|| status.as_str())
    }
}

/// The backup IDs in the order Barman's backup cache holds them: the legacy
/// `base/*/backup.info` files in directory order, then `meta/*-backup.info` in directory
/// order (an ID seen twice keeps its first place). Barman lists the backups sharing a
/// name in that order.
pub fn cache_order(home: &ServerHome) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut push = |id: String| {
        if !order.contains(&id) {
            order.push(id);
        }
    };
    let visible = |name: &str| !name.starts_with('.');
    if let Ok(entries) = std::fs::read_dir(&home.base) {
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            if visible(&id) && entry.path().join("backup.info").exists() {
                push(id);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&home.meta) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !visible(&name) {
                continue;
            }
            if let Some(id) = name
                .strip_suffix("-backup.info")
                .filter(|id| !id.is_empty())
            {
                push(id.to_string());
            }
        }
    }
    order
}

/// [`crate::server::backup_id::resolve`], with the IDs of an ambiguous name listed in
/// Barman's cache order.
pub fn resolve_backup<'a>(
    home: &ServerHome,
    backups: &'a [BackupInfo],
    text: &str,
    server: &str,
) -> Result<&'a BackupInfo> {
    use crate::server::backup_id::{COPY_DONE, resolve, shortcut};
    let result = resolve(backups, text, server);
    if result.is_err() && shortcut(backups, text).is_none() {
        let named: Vec<&str> = backups
            .iter()
            .filter(|b| {
                b.status.as_ref().is_some_and(|s| COPY_DONE.contains(s))
                    && b.backup_name.as_deref() == Some(text)
            })
            .filter_map(|b| b.backup_id.as_deref())
            .collect();
        if named.len() > 1 {
            let ordered: Vec<String> = cache_order(home)
                .into_iter()
                .filter(|id| named.contains(&id.as_str()))
                .collect();
            return Err(Error::UnknownBackup(format!(
                "Multiple backups found matching name '{text}' (try using backup ID \
                 instead): {}",
                ordered.join(" ")
            )));
        }
    }
    result
}

/// Runs a catalog-store future that never awaits anything real (the file system
/// catalog is synchronous inside).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("cannot start the async runtime")
        .block_on(future)
}

fn copy_done(info: &BackupInfo) -> bool {
    info.status.as_ref().is_some_and(BackupStatus::is_copy_done)
}

/// An xlog.db name Barman cannot decode (its `BadXlogSegmentName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWalName(pub String);

/// Barman's WAL name pattern: `(tli, log, seg, suffix)`; suffix `""`, `.partial`,
/// `.<8 hex>.backup` or `.history` (then no log/seg).
fn decode_name(name: &str) -> Option<(u32, Option<&str>)> {
    let hex = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let tli_text = name.get(..8)?;
    if !hex(tli_text) {
        return None;
    }
    let tli = u32::from_str_radix(tli_text, 16).ok()?;
    let rest = &name[8..];
    if rest == ".history" {
        return Some((tli, Some(".history")));
    }
    let segment = rest.get(..16)?;
    if !hex(&segment[..8]) || !hex(&segment[8..]) {
        return None;
    }
    let suffix = &rest[16..];
    let ok = suffix.is_empty()
        || suffix == ".partial"
        || (suffix.len() == 16
            && suffix.starts_with('.')
            && hex(&suffix[1..9])
            && &suffix[9..] == ".backup");
    ok.then_some((
        tli,
        if suffix.is_empty() {
            None
        } else {
            Some(suffix)
        },
    ))
}

fn is_history(name: &str) -> bool {
    matches!(decode_name(name), Some((_, Some(".history"))))
}

fn is_segment(name: &str) -> bool {
    matches!(decode_name(name), Some((_, None)))
}

/// Barman's `parse_lsn`: `X/Y` in hex.
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) + u64::from_str_radix(low, 16).ok()?)
}

/// `(parent timeline, switch point)` of each line of a history file, decompressed when
/// its magic bytes say so.
fn read_history(path: &Path) -> Result<Vec<(i64, u64)>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = match magic::identify(&raw) {
        Some(codec) => {
            let mut plain = Vec::new();
            codec
                .decoder(&raw[..])
                .and_then(|mut d| d.read_to_end(&mut plain))
                .map_err(|e| codec.decode_error(e))?;
            plain
        }
        None => raw,
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let parsed = (fields.len() == 3)
            .then(|| Some((fields[0].trim().parse().ok()?, parse_lsn(fields[1])?)))
            .flatten();
        match parsed {
            Some(entry) => lines.push(entry),
            None => {
                return Err(Error::Corrupt(format!(
                    "bad history file contents: {}",
                    path.display()
                )));
            }
        }
    }
    Ok(lines)
}

/// Barman's `get_wal_info` of a backup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WalInfo {
    /// WALs from begin_wal to end_wal (needed by the backup) and their stored size.
    pub wal_num: u64,
    pub wal_size: u64,
    /// WALs after end_wal up to the next backup's end_wal.
    pub until_next_num: u64,
    pub until_next_size: u64,
    pub wal_last: Option<String>,
    pub wals_per_second: f64,
    pub wal_compression_ratio: f64,
    pub until_next_compression_ratio: f64,
}

/// The WALs of `backup` in `xlog` up to `next_end` (the next backup's end_wal), as
/// Barman's `get_wal_until_next_backup` walks xlog.db: in file order, history files
/// skipped, names before begin_wal or on a later timeline skipped, `.backup`/`.partial`
/// skipped, stopping at the first segment past `next_end`.
pub fn wal_info(
    backup: &BackupInfo,
    next_end: Option<&str>,
    xlog: &[XlogEntry],
) -> std::result::Result<WalInfo, BadWalName> {
    let begin = backup.begin_wal.as_deref().unwrap_or("");
    let end = backup.end_wal.as_deref().unwrap_or("");
    let (backup_tli, _) = decode_name(begin).ok_or_else(|| BadWalName(begin.to_string()))?;
    let mut info = WalInfo::default();
    let mut first_time = None;
    let mut last_time = None;
    for item in xlog {
        let name = item.name.as_str();
        if is_history(name) || name < begin {
            continue;
        }
        let (tli, _) = decode_name(name).ok_or_else(|| BadWalName(name.to_string()))?;
        if tli > backup_tli || !is_segment(name) {
            continue;
        }
        if next_end.is_some_and(|next| name > next) {
            break;
        }
        if name == begin {
            first_time = Some(item.time);
        }
        if name <= end {
            info.wal_num += 1;
            info.wal_size += item.size;
        } else {
            info.until_next_num += 1;
            info.until_next_size += item.size;
        }
        info.wal_last = Some(name.to_string());
        last_time = Some(item.time);
    }
    if let (Some(first), Some(last)) = (first_time, last_time) {
        let seconds = last - first;
        if seconds > 0.0 {
            info.wals_per_second = (info.wal_num + info.until_next_num) as f64 / seconds;
        }
        let segment = backup
            .xlog_segment_size
            .unwrap_or(DEFAULT_XLOG_SEGMENT_SIZE) as f64;
        let ratio = |size: u64, num: u64| {
            let theoretical = num as f64 * segment;
            if theoretical == 0.0 {
                0.0
            } else {
                1.0 - size as f64 / theoretical
            }
        };
        info.wal_compression_ratio = ratio(info.wal_size, info.wal_num);
        info.until_next_compression_ratio = ratio(info.until_next_size, info.until_next_num);
    }
    Ok(info)
}

/// Barman's `BackupInfo.backup_type`.
pub fn backup_type(info: &BackupInfo) -> &'static str {
    let mode = info.mode.as_deref().unwrap_or("");
    if mode.starts_with("snapshot") {
        "snapshot"
    } else if mode.starts_with("rsync") {
        "rsync"
    } else if info.parent_backup_id.is_some() {
        "incremental"
    } else {
        "full"
    }
}

/// Python's `"{:.2%}".format(x)`.
fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// `str(int(datetime.timestamp()))`.
fn epoch_text(ts: &Timestamp) -> String {
    ts.timestamp().to_string()
}

fn text_or_none(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "None".to_string())
}

fn int_or_none(value: Option<i64>) -> String {
    value.map_or_else(|| "None".to_string(), |v| v.to_string())
}

fn opt_str(value: &Option<String>) -> PyValue {
    value.clone().map_or(PyValue::None, PyValue::Str)
}

fn opt_int(value: Option<i64>) -> PyValue {
    value.map_or(PyValue::None, |v| PyValue::Int(v.into()))
}

/// A string field Python finds truthy.
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// One list-backups row.
pub struct ListRow<'a> {
    pub info: &'a BackupInfo,
    pub server_name: String,
    pub size: i64,
    pub wal_size: i64,
    /// The retention status to show (`None`: not shown / `-` in JSON).
    pub status: Option<&'static str>,
}

impl ServerCatalog {
    /// The rows of list-backups, newest first; the invalid xlog.db names met on the way
    /// (Barman prints an error for each and goes on).
    pub fn list_rows(&self) -> (Vec<ListRow<'_>>, Vec<BadWalName>) {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for info in self.backups.iter().rev() {
            let id = info.backup_id.as_deref().unwrap_or("");
            let mut size = info.size.unwrap_or(0);
            let mut wal_size = 0;
            let mut status = None;
            if copy_done(info) {
                match self.wal_info(info) {
                    Ok(wals) => {
                        size += wals.wal_size as i64;
                        wal_size = wals.until_next_size as i64;
                    }
                    Err(bad) => errors.push(bad),
                }
                status = self.list_status(id);
            }
            rows.push(ListRow {
                info,
                server_name: info.server_name.clone().unwrap_or(self.server.clone()),
                size,
                wal_size,
                status,
            });
        }
        (rows, errors)
    }
}

/// The console line of a list-backups row.
pub fn list_line(row: &ListRow<'_>) -> String {
    let info = row.info;
    let mut line = format!(
        "{} {}",
        row.server_name,
        info.backup_id.as_deref().unwrap_or("None")
    );
    if let Some(name) = &info.backup_name {
        let _ = write!(line, " '{name}'");
    }
    let letter = backup_type(info)[..1].to_uppercase();
    let _ = write!(line, " - {letter} - ");
    match &info.status {
        Some(status) if status.is_copy_done() => {
            let end = info
                .end_time
                .as_ref()
                .map_or_else(|| "None".to_string(), timestamp::ctime);
            let _ = write!(
                line,
                "{end} - Size: {} - WAL Size: {}",
                pretty_size(row.size),
                pretty_size(row.wal_size)
            );
            if *status == BackupStatus::WaitingForWals {
                line.push_str(" - WAITING_FOR_WALS");
            }
            if let Some(retention) = row.status.filter(|s| *s != NO_STATUS) {
                let _ = write!(line, " - {retention}");
            }
        }
        Some(status) => line.push_str(status.as_str()),
        None => line.push_str("None"),
    }
    line
}

/// The JSON object of a list-backups row.
pub fn list_json(row: &ListRow<'_>) -> PyValue {
    let info = row.info;
    let mut dict = PyDict::new();
    dict.set("backup_id", opt_str(&info.backup_id));
    if let Some(name) = &info.backup_name {
        dict.set("backup_name", PyValue::str(name));
    }
    dict.set("backup_type", PyValue::str(backup_type(info)));
    let status = opt_str(&info.status.as_ref().map(|s| s.as_str().to_string()));
    if copy_done(info) {
        if let Some(end) = &info.end_time {
            dict.set("end_time_timestamp", PyValue::str(epoch_text(end)));
            dict.set("end_time", PyValue::str(timestamp::ctime(end)));
        }
        dict.set("size_bytes", PyValue::Int(row.size.into()));
        dict.set("wal_size_bytes", PyValue::Int(row.wal_size.into()));
        dict.set("size", PyValue::str(pretty_size(row.size)));
        dict.set("wal_size", PyValue::str(pretty_size(row.wal_size)));
        dict.set("status", status);
        dict.set(
            "retention_status",
            PyValue::str(row.status.unwrap_or(NO_STATUS)),
        );
    } else {
        dict.set("status", status);
    }
    sorted(PyValue::Dict(dict))
}

/// Every dict's keys sorted, as `json.dumps(sort_keys=True)` writes them.
pub fn sorted(value: PyValue) -> PyValue {
    match value {
        PyValue::Dict(dict) => {
            let mut items: Vec<(String, PyValue)> = dict
                .iter()
                .map(|(k, v)| (k.py_str().into_owned(), sorted(v.clone())))
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = PyDict::new();
            for (k, v) in items {
                out.set(&k, v);
            }
            PyValue::Dict(out)
        }
        PyValue::List(items) => PyValue::List(items.into_iter().map(sorted).collect()),
        PyValue::Tuple(items) => PyValue::List(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Everything show-backup prints about a backup whose copy is done (Barman's
/// `get_backup_ext_info`).
pub struct ExtInfo {
    pub wal: WalInfo,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// The policy's status, `None` when not enforced.
    pub retention: Option<&'static str>,
    pub children_timelines: Vec<u32>,
    /// `copy_stats['copy_time']` when positive.
    pub copy_time: Option<PyValue>,
    pub analysis_time: Option<PyValue>,
    pub throughput: Option<f64>,
    pub workers: Option<PyValue>,
}

/// Why show-backup cannot show a backup.
#[derive(Debug)]
pub enum ShowError {
    BadWalName(String),
    Other(Error),
}

impl From<Error> for ShowError {
    fn from(e: Error) -> Self {
        ShowError::Other(e)
    }
}

fn stat(stats: Option<&PyDict>, key: &str) -> Option<PyValue> {
    stats.and_then(|s| s.get(key)).cloned()
}

impl ServerCatalog {
    pub fn ext_info(&self, info: &BackupInfo) -> std::result::Result<ExtInfo, ShowError> {
        let id = info.backup_id.as_deref().unwrap_or("");
        let wal = self
            .wal_info(info)
            .map_err(|bad| ShowError::BadWalName(bad.0))?;
        let retention = self
            .retention
            .as_ref()
            .map(|r| r.get(id).map_or(NO_STATUS, |s| s.as_str()));
        let stats = info.copy_stats.as_ref().and_then(PyValue::as_dict);
        let number = |v: &Option<PyValue>| v.as_ref().and_then(PyValue::as_number).unwrap_or(0.0);
        let copy_time = stat(stats, "copy_time").filter(|v| v.as_number().unwrap_or(0.0) > 0.0);
        let analysis_time =
            stat(stats, "analysis_time").filter(|v| v.as_number().unwrap_or(0.0) >= 1.0);
        let dedup = info.deduplicated_size.unwrap_or(0);
        let throughput =
            (copy_time.is_some() && dedup > 0).then(|| dedup as f64 / number(&copy_time));
        let workers = stat(stats, "number_of_workers")
            .filter(|v| throughput.is_some() && v.as_number().unwrap_or(0.0) > 1.0);
        Ok(ExtInfo {
            wal,
            previous: self.previous_backup(id).and_then(|b| b.backup_id.clone()),
            next: self.next_backup(id).and_then(|b| b.backup_id.clone()),
            retention,
            children_timelines: self.children_timelines(info)?,
            copy_time,
            analysis_time,
            throughput,
            workers,
        })
    }
}

struct Lines(Vec<String>);

impl Lines {
    fn line(&mut self, text: impl Into<String>) {
        self.0.push(text.into());
    }
    fn row(&mut self, key: &str, value: &str) {
        self.0.push(format!("  {key:<23}: {value}"));
    }
    fn header(&mut self, title: &str) {
        self.0.push(format!("  {title}:"));
    }
    fn nested(&mut self, key: &str, value: &str) {
        self.0.push(format!("    {key:<21}: {value}"));
    }
}

/// The console lines of show-backup (`ext` for backups whose copy is done).
pub fn show_lines(
    info: &BackupInfo,
    server_name: &str,
    ext: Option<&ExtInfo>,
) -> Result<Vec<String>> {
    let mut out = Lines(Vec::new());
    out.line(format!("Backup {}:", text_or_none(&info.backup_id)));
    if let Some(name) = set(&info.backup_name) {
        out.row("Backup Name", name);
    }
    out.row("Server Name", server_name);
    if let Some(id) = set(&info.systemid) {
        out.row("System Id", id);
    }
    let status = info.status.as_ref().map_or("None", BackupStatus::as_str);
    out.row("Status", status);
    let ext = ext.filter(|_| copy_done(info));
    if ext.is_some() {
        out.row("PostgreSQL Version", &int_or_none(info.version));
        out.row("PGDATA directory", &text_or_none(&info.pgdata));
        if let Some(size) = info.cluster_size.filter(|s| *s != 0) {
            out.row("Estimated Cluster Size", &pretty_size(size));
        }
    }
    out.line("");
    let checksums = set(&info.data_checksums);
    let summarizer = set(&info.summarize_wal);
    if checksums.is_some() || summarizer.is_some() {
        out.header("Server information");
        if let Some(v) = checksums {
            out.nested("Checksums", v);
        }
        if let Some(v) = summarizer {
            out.nested("WAL summarizer", v);
        }
        out.line("");
    }
    let Some(ext) = ext else {
        if let Some(error) = set(&info.error) {
            out.row("Error", error);
        }
        return Ok(out.0);
    };

    out.0
        .extend(crate::catalog::render::snapshot_and_tablespace_blocks(info));

    out.header("Base backup information");
    if let Some(mode) = set(&info.mode) {
        out.nested("Backup Method", mode);
    }
    if let Some(encryption) = set(&info.encryption) {
        out.nested("Encryption", encryption);
    }
    if backup_type(info) == "full" && info.mode.as_deref() == Some("postgres") {
        out.nested("Backup Type", "full");
    }
    let wal_size = ext.wal.wal_size as i64;
    if let Some(size) = info.deduplicated_size.filter(|s| *s != 0) {
        let mut text = pretty_size(size);
        if wal_size != 0 {
            let _ = write!(text, " ({} with WALs)", pretty_size(size + wal_size));
        }
        out.nested("Backup Size", &text);
    }
    if let Some(compression) = set(&info.compression).filter(|c| *c != "none") {
        out.nested("Backup Compression", compression);
    }
    if wal_size != 0 {
        out.nested("WAL Size", &pretty_size(wal_size));
    }
    out.nested("Timeline", &int_or_none(info.timeline));
    out.nested("Begin WAL", &text_or_none(&info.begin_wal));
    out.nested("End WAL", &text_or_none(&info.end_wal));
    if ext.wal.wal_num != 0 {
        out.nested("Number of WALs", &ext.wal.wal_num.to_string());
    }
    if ext.wal.wal_compression_ratio > 0.0 {
        out.nested(
            "WAL compression ratio",
            &percent(ext.wal.wal_compression_ratio),
        );
    }
    let time = |t: &Option<Timestamp>| {
        t.as_ref()
            .map_or_else(|| "None".to_string(), timestamp::python_str)
    };
    out.nested("Begin time", &time(&info.begin_time));
    out.nested("End time", &time(&info.end_time));
    if let Some(copy_time) = &ext.copy_time {
        let mut text = human_readable_timedelta(copy_time).map_err(Error::from)?;
        if let Some(analysis) = &ext.analysis_time {
            let _ = write!(
                text,
                " + {} startup",
                human_readable_timedelta(analysis).map_err(Error::from)?
            );
        }
        out.nested("Copy time", &text);
        if let Some(throughput) = ext.throughput.filter(|t| *t != 0.0) {
            let mut text = format!("{}/s", pretty_size_float(throughput));
            if let Some(workers) = &ext.workers {
                let _ = write!(text, " ({} jobs)", workers.py_str());
            }
            out.nested("Estimated throughput", &text);
        }
    }
    out.nested("Begin Offset", &int_or_none(info.begin_offset));
    out.nested("End Offset", &int_or_none(info.end_offset));
    out.nested("Begin LSN", &text_or_none(&info.begin_xlog));
    out.nested("End LSN", &text_or_none(&info.end_xlog));
    out.line("");

    out.header("WAL information");
    out.nested("Number of files", &ext.wal.until_next_num.to_string());
    out.nested("Disk usage", &pretty_size(ext.wal.until_next_size as i64));
    if ext.wal.wals_per_second > 0.0 {
        out.nested(
            "WAL rate",
            &format!("{:.2}/hour", ext.wal.wals_per_second * 3600.0),
        );
    }
    if ext.wal.until_next_compression_ratio > 0.0 {
        out.nested(
            "Compression ratio",
            &percent(ext.wal.until_next_compression_ratio),
        );
    }
    out.nested("Last available", &text_or_none(&ext.wal.wal_last));
    if !ext.children_timelines.is_empty() {
        let list: Vec<String> = ext.children_timelines.iter().map(u32::to_string).collect();
        out.nested("Reachable timelines", &list.join(", "));
    }
    out.line("");

    out.header("Catalog information");
    out.nested("Retention Policy", ext.retention.unwrap_or("not enforced"));
    out.nested(
        "Previous Backup",
        ext.previous
            .as_deref()
            .unwrap_or("- (this is the oldest base backup)"),
    );
    out.nested(
        "Next Backup",
        ext.next
            .as_deref()
            .unwrap_or("- (this is the latest base backup)"),
    );
    if !ext.children_timelines.is_empty() {
        out.line("");
        out.line(
            "WARNING: WAL information is inaccurate due to multiple timelines interacting \
             with this backup",
        );
    }
    Ok(out.0)
}

/// The JSON value show-backup prints under the server's name.
pub fn show_json(info: &BackupInfo, ext: Option<&ExtInfo>) -> Result<PyValue> {
    let mut out = PyDict::new();
    out.set("backup_id", opt_str(&info.backup_id));
    out.set(
        "status",
        opt_str(&info.status.as_ref().map(|s| s.as_str().to_string())),
    );
    if let Some(name) = set(&info.backup_name) {
        out.set("backup_name", PyValue::str(name));
    }
    if let Some(id) = set(&info.systemid) {
        out.set("system_id", PyValue::str(id));
    }
    let ext = ext.filter(|_| copy_done(info));
    if ext.is_some() {
        out.set("backup_type", PyValue::str(backup_type(info)));
    }
    let mut server = PyDict::new();
    server.set("data_checksums", opt_str(&info.data_checksums));
    server.set("summarize_wal", opt_str(&info.summarize_wal));
    out.set("server_information", PyValue::Dict(server));
    let Some(ext) = ext else {
        if let Some(error) = set(&info.error) {
            out.set("error", PyValue::str(error));
        }
        return Ok(sorted(PyValue::Dict(out)));
    };
    if let Some(size) = info.cluster_size.filter(|s| *s != 0) {
        out.set("cluster_size", PyValue::str(pretty_size(size)));
        out.set("cluster_size_bytes", PyValue::Int(size.into()));
    }
    out.set("postgresql_version", opt_int(info.version));
    out.set("pgdata_directory", opt_str(&info.pgdata));
    let tablespaces = info
        .tablespaces
        .iter()
        .flatten()
        .map(|t| {
            let mut d = PyDict::new();
            d.set("name", PyValue::str(&t.name));
            d.set("location", PyValue::str(&t.location));
            d.set("oid", PyValue::Int(t.oid.into()));
            PyValue::Dict(d)
        })
        .collect();
    out.set("tablespaces", PyValue::List(tablespaces));

    let dedup = info.deduplicated_size.unwrap_or(0);
    let wal_size = ext.wal.wal_size as i64;
    let mut base = PyDict::new();
    base.set("backup_method", opt_str(&info.mode));
    base.set("encryption", opt_str(&info.encryption));
    base.set("compression", opt_str(&info.compression));
    base.set("backup_size", PyValue::str(pretty_size(dedup)));
    base.set("backup_size_bytes", opt_int(info.deduplicated_size));
    base.set(
        "backup_size_with_wals",
        PyValue::str(pretty_size(dedup + wal_size)),
    );
    base.set(
        "backup_size_with_wals_bytes",
        PyValue::Int((dedup + wal_size).into()),
    );
    base.set("wal_size", PyValue::str(pretty_size(wal_size)));
    base.set("wal_size_bytes", PyValue::Int(wal_size.into()));
    base.set("timeline", opt_int(info.timeline));
    base.set("begin_wal", opt_str(&info.begin_wal));
    base.set("end_wal", opt_str(&info.end_wal));
    base.set("wal_num", PyValue::Int(ext.wal.wal_num.into()));
    let times = [("begin", &info.begin_time), ("end", &info.end_time)];
    for (which, time) in times {
        let (stamp, text) = time.as_ref().map_or((PyValue::None, PyValue::None), |t| {
            (
                PyValue::str(epoch_text(t)),
                PyValue::str(timestamp::python_str(t)),
            )
        });
        base.set(&format!("{which}_time_timestamp"), stamp);
        base.set(&format!("{which}_time"), text);
    }
    base.set("begin_offset", opt_int(info.begin_offset));
    base.set("end_offset", opt_int(info.end_offset));
    base.set("begin_lsn", opt_str(&info.begin_xlog));
    base.set("end_lsn", opt_str(&info.end_xlog));
    if ext.wal.wal_compression_ratio > 0.0 {
        base.set(
            "wal_compression_ratio",
            PyValue::str(percent(ext.wal.wal_compression_ratio)),
        );
    }
    if let Some(copy_time) = &ext.copy_time {
        base.set(
            "copy_time",
            PyValue::str(human_readable_timedelta(copy_time).map_err(Error::from)?),
        );
        base.set("copy_time_seconds", copy_time.clone());
        if let Some(analysis) = &ext.analysis_time {
            base.set(
                "analysis_time",
                PyValue::str(human_readable_timedelta(analysis).map_err(Error::from)?),
            );
            base.set("analysis_time_seconds", analysis.clone());
        }
        let seconds = copy_time.as_number().unwrap_or(1.0);
        let throughput = ext.throughput.unwrap_or(dedup as f64 / seconds);
        base.set(
            "throughput",
            PyValue::str(format!("{}/s", pretty_size_float(throughput))),
        );
        base.set("throughput_bytes", PyValue::Int((throughput as i64).into()));
        base.set(
            "number_of_workers",
            ext.workers.clone().unwrap_or(PyValue::Int(1)),
        );
    }
    out.set("base_backup_information", PyValue::Dict(base));

    let mut catalog = PyDict::new();
    catalog.set(
        "retention_policy",
        PyValue::str(ext.retention.unwrap_or("not enforced")),
    );
    catalog.set(
        "previous_backup",
        PyValue::str(
            ext.previous
                .as_deref()
                .unwrap_or("- (this is the oldest base backup)"),
        ),
    );
    catalog.set(
        "next_backup",
        PyValue::str(
            ext.next
                .as_deref()
                .unwrap_or("- (this is the latest base backup)"),
        ),
    );
    out.set("catalog_information", PyValue::Dict(catalog));

    let mut wal = PyDict::new();
    wal.set("no_of_files", PyValue::Int(ext.wal.until_next_num.into()));
    wal.set(
        "disk_usage",
        PyValue::str(pretty_size(ext.wal.until_next_size as i64)),
    );
    wal.set(
        "disk_usage_bytes",
        PyValue::Int(ext.wal.until_next_size.into()),
    );
    if ext.wal.wals_per_second > 0.0 {
        wal.set(
            "wal_rate",
            PyValue::str(format!("{:.2}/hour", ext.wal.wals_per_second * 3600.0)),
        );
        wal.set(
            "wal_rate_per_second",
            PyValue::Float(ext.wal.wals_per_second),
        );
    } else {
        wal.set("wal_rate", PyValue::Int(0));
        wal.set("wal_rate_per_second", PyValue::Int(0));
    }
    wal.set(
        "compression_ratio",
        if ext.wal.until_next_compression_ratio > 0.0 {
            PyValue::str(percent(ext.wal.until_next_compression_ratio))
        } else {
            PyValue::Int(0)
        },
    );
    wal.set("last_available", opt_str(&ext.wal.wal_last));
    wal.set(
        "timelines",
        PyValue::List(
            ext.children_timelines
                .iter()
                .map(|t| PyValue::str(t.to_string()))
                .collect(),
        ),
    );
    if !ext.children_timelines.is_empty() {
        wal.set(
            "_WARNING",
            PyValue::str(
                "WAL information is inaccurate                     due to multiple \
                 timelines interacting with                     this backup",
            ),
        );
    }
    out.set("wal_information", PyValue::Dict(wal));
    if let Some(snapshots) = &info.snapshots_info {
        out.set("snapshots_info", snapshots.to_literal());
    }
    Ok(sorted(PyValue::Dict(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, size: u64, time: f64) -> XlogEntry {
        XlogEntry {
            name: name.into(),
            size,
            time,
            compression: None,
            encryption: None,
        }
    }

    fn backup(id: &str, begin: &str, end: &str) -> BackupInfo {
        let text = format!(
            "backup_id={id}\nstatus=DONE\nmode=snapshot-concurrent\nbegin_wal={begin}\nend_wal={end}\n"
        );
        BackupInfo::load(id, text.as_bytes()).unwrap()
    }

    #[test]
    fn wals_needed_and_after_as_barman_counts_them() {
        let xlog = vec![
            entry("000000010000000000000001", 100, 10.0),
            entry("000000010000000000000002", 200, 20.0),
            entry("000000010000000000000002.00000028.backup", 5, 20.5),
            entry("00000002.history", 7, 21.0),
            entry("000000010000000000000003", 300, 30.0),
            entry("000000020000000000000003", 400, 31.0),
            entry("000000010000000000000004", 500, 40.0),
            entry("000000010000000000000005", 600, 50.0),
        ];
        let b = backup(
            "20260101T000000",
            "000000010000000000000002",
            "000000010000000000000002",
        );
        let info = wal_info(&b, Some("000000010000000000000004"), &xlog).unwrap();
        assert_eq!((info.wal_num, info.wal_size), (1, 200));
        assert_eq!((info.until_next_num, info.until_next_size), (2, 800));
        assert_eq!(info.wal_last.as_deref(), Some("000000010000000000000004"));
        assert!((info.wals_per_second - 3.0 / 20.0).abs() < 1e-12);
        let all = wal_info(&b, None, &xlog).unwrap();
        assert_eq!(all.until_next_num, 3);
        assert!(wal_info(&b, None, &[entry("garbage", 1, 1.0)]).is_err());
    }

    fn server(extra: &str) -> ServerConfig {
        let text = format!("[barman]\nbarman_home = /h\n[pg]\nconninfo = x\n{extra}");
        let config =
            crate::server::config::Config::from_text(Path::new("/t.conf"), &text).expect("config");
        let mut server = config
            .server_configs(&mut Vec::new())
            .expect("servers")
            .servers
            .remove(0);
        server.initialise();
        server
    }

    #[test]
    fn retention_statuses_follow_the_server_policy() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T00:00:00+00:00").unwrap();
        let done = |id: &str, end: &str| {
            let text =
                format!("backup_id={id}\nstatus=DONE\nmode=snapshot-concurrent\nend_time={end}\n");
            BackupInfo::load(id, text.as_bytes()).unwrap()
        };
        let mut backups = vec![
            done("20261101T000000", "2026-11-01 00:00:00+00:00"),
            done("20261110T000000", "2026-11-10 00:00:00+00:00"),
            done("20261120T000000", "2026-11-20 00:00:00+00:00"),
            done("20261129T000000", "2026-11-29 00:00:00+00:00"),
        ];
        backups.push(BackupInfo::load("20261129T120000", b"status=EMPTY\n").unwrap());
        let mut keeps = KeepAnnotations::default();
        keeps.insert("20261110T000000", "standalone");
        let statuses = |extra: &str| {
            retention_statuses(&server(extra), &backups, &keeps, now)
                .unwrap()
                .map(|r| {
                    r.into_iter()
                        .map(|(id, s)| format!("{id}={}", s.as_str()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
        };
        assert_eq!(statuses(""), None);
        assert_eq!(statuses("retention_policy = nonsense\n"), None);
        assert_eq!(
            statuses("retention_policy = REDUNDANCY 2\n").unwrap(),
            "20261101T000000=OBSOLETE 20261110T000000=KEEP:STANDALONE \
             20261120T000000=VALID 20261129T000000=VALID"
        );
        assert_eq!(
            statuses("retention_policy = RECOVERY WINDOW OF 5 DAYS\nminimum_redundancy = 3\n")
                .unwrap(),
            "20261101T000000=OBSOLETE 20261110T000000=KEEP:STANDALONE \
             20261120T000000=VALID 20261129T000000=VALID"
        );
        assert_eq!(
            statuses("retention_policy = RECOVERY WINDOW OF 5 DAYS\nminimum_redundancy = 4\n")
                .unwrap(),
            "20261101T000000=OBSOLETE* 20261110T000000=KEEP:STANDALONE \
             20261120T000000=VALID 20261129T000000=VALID"
        );
    }

    #[test]
    fn names_decode_like_barman() {
        assert!(is_segment("000000010000000000000001"));
        assert!(!is_segment("000000010000000000000001.partial"));
        assert!(!is_segment("000000010000000000000001.00000028.backup"));
        assert!(is_history("0000000A.history"));
        assert!(decode_name("0000000100000000000000").is_none());
        assert_eq!(parse_lsn("1/3000028"), Some((1 << 32) + 0x300_0028));
    }
}
