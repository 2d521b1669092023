//! What barman-cloud-backup-list and barman-cloud-backup-show print (Barman:
//! `barman/clients/cloud_backup_list.py` `main`, and `barman/clients/cloud_backup_show.py`
//! `main` through `barman/output.py` `ConsoleOutputWriter.render_show_backup`),
//! byte for byte as Barman 3.20.1 prints it. Each function returns the whole standard
//! output, one `\n` after every line as Python's `print` writes it.
//!
//! Where Barman's rendering raises on odd data (a `status=None` backup in the list, a
//! non-dict `copy_stats` in show...), these return [`CatalogError::Render`] with Python's
//! message; Barman then logs `Barman cloud backup list exception: <message>` and exits 4.

use std::fmt::Write as _;

use super::backup_info::{BackupInfo, BackupStatus};
use super::error::CatalogError;
use super::json;
use super::pyliteral::{PyDict, PyValue};
use super::timestamp;

/// One backup-list row: the backup and, for a DONE backup, the target of its keep
/// annotation if it has one (see [`super::keep::keep_target_from_annotation`]).
#[derive(Debug, Clone, Copy)]
pub struct ListEntry<'a> {
    pub info: &'a BackupInfo,
    pub keep_target: Option<&'a str>,
}

/// Python's `"{}".format(None)`-style failure for a padded null.
fn none_format_error() -> CatalogError {
    CatalogError::Render("unsupported format string passed to NoneType.__format__".into())
}

/// The console listing: a header and one line per backup in the given order (Barman sorts
/// by backup directory name), columns padded and never truncated, so lines keep their
/// trailing spaces. Non-DONE backups show their status in the Archival Status column.
pub fn backup_list_console(entries: &[ListEntry<'_>]) -> Result<String, CatalogError> {
    let row = |id: &str, end: &str, wal: &str, status: &str, name: &str| {
        format!("{id:<20}{end:<25}{wal:<30}{status:<17}{name:<20}\n")
    };
    let mut out = row(
        "Backup ID",
        "End Time",
        "Begin Wal",
        "Archival Status",
        "Name",
    );
    for entry in entries {
        let info = entry.info;
        let id = info.backup_id.as_deref().ok_or_else(none_format_error)?;
        let end_time = info
            .end_time
            .as_ref()
            .map(timestamp::list_time)
            .unwrap_or_default();
        let archival = match &info.status {
            Some(BackupStatus::Done) => match entry.keep_target {
                Some(target) if !target.is_empty() => format!("KEEP:{}", target.to_uppercase()),
                _ => String::new(),
            },
            Some(other) => other.as_str().to_string(),
            None => return Err(none_format_error()),
        };
        out.push_str(&row(
            id,
            &end_time,
            info.begin_wal.as_deref().unwrap_or(""),
            &archival,
            info.backup_name.as_deref().unwrap_or(""),
        ));
    }
    Ok(out)
}

/// `{"backups_list": [...]}` with every backup (all statuses) in the given order.
pub fn backup_list_json<'a>(
    infos: impl IntoIterator<Item = &'a BackupInfo>,
) -> Result<String, CatalogError> {
    let list = infos.into_iter().map(BackupInfo::to_json_value).collect();
    let mut top = PyDict::new();
    top.set("backups_list", PyValue::List(list));
    Ok(json::dumps(&PyValue::Dict(top))? + "\n")
}

/// `{"<server_name field>": {...}}`: keyed by the backup.info's own `server_name` (`cloud`
/// for object-store backups), not by the command's SERVER_NAME.
pub fn backup_show_json(info: &BackupInfo) -> Result<String, CatalogError> {
    let key = info.server_name.clone().map_or(PyValue::None, PyValue::Str);
    let mut top = PyDict::new();
    top.insert(key, info.to_json_value())
        .map_err(CatalogError::Render)?;
    Ok(json::dumps(&PyValue::Dict(top))? + "\n")
}

/// The console view of one backup (`ConsoleOutputWriter.render_show_backup` fed with
/// `BackupInfo.to_dict()`).
pub fn backup_show_console(info: &BackupInfo) -> Result<String, CatalogError> {
    let mut out = Show::default();
    let copy_done = info.status.as_ref().is_some_and(BackupStatus::is_copy_done);
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".to_string());
    let int = |v: Option<i64>| v.map_or_else(|| "None".to_string(), |v| v.to_string());

    out.line(&format!("Backup {}:", text(&info.backup_id)));
    if let Some(name) = set(&info.backup_name) {
        out.row("Backup Name", name);
    }
    out.row("Server Name", &text(&info.server_name));
    if let Some(id) = set(&info.systemid) {
        out.row("System Id", id);
    }
    let status = info.status.as_ref().map_or("None", BackupStatus::as_str);
    out.row("Status", status);
    if copy_done {
        out.row("PostgreSQL Version", &int(info.version));
        out.row("PGDATA directory", &text(&info.pgdata));
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

    if !copy_done {
        if let Some(error) = set(&info.error) {
            out.row("Error", error);
        }
        return Ok(out.text);
    }

    for line in snapshot_and_tablespace_blocks(info) {
        out.line(&line);
    }

    out.header("Base backup information");
    if let Some(mode) = set(&info.mode) {
        out.nested("Backup Method", mode);
    }
    if let Some(encryption) = set(&info.encryption) {
        out.nested("Encryption", encryption);
    }
    if let Some(size) = info.deduplicated_size.filter(|s| *s != 0) {
        out.nested("Backup Size", &pretty_size(size));
    }
    if let Some(compression) = set(&info.compression).filter(|c| *c != "none") {
        out.nested("Backup Compression", compression);
    }
    out.nested("Timeline", &int(info.timeline));
    out.nested("Begin WAL", &text(&info.begin_wal));
    out.nested("End WAL", &text(&info.end_wal));
    let time = |t: &Option<timestamp::Timestamp>| {
        t.as_ref()
            .map_or_else(|| "None".to_string(), timestamp::python_str)
    };
    out.nested("Begin time", &time(&info.begin_time));
    out.nested("End time", &time(&info.end_time));
    if let Some(copy_time) = copy_time_text(info.copy_stats.as_ref())? {
        out.nested("Copy time", &copy_time);
    }
    out.nested("Begin Offset", &int(info.begin_offset));
    out.nested("End Offset", &int(info.end_offset));
    out.nested("Begin LSN", &text(&info.begin_xlog));
    out.nested("End LSN", &text(&info.end_xlog));
    out.line("");

    // Barman-server incremental backups only: shown after the closing blank line.
    if info.mode.as_deref() == Some("postgres")
        && let Some(children) = info.dumped(super::backup_info::Field::ChildrenBackupIds)
    {
        out.nested("Children Backup(s)", &children);
    }
    Ok(out.text)
}

/// A string field Python finds truthy (set and not empty).
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|s| !s.is_empty())
}

/// The `Snapshot information` and `Tablespaces` blocks of show-backup, as both Barman's
/// cloud and server renderers print them: the provider and its details, then for each
/// snapshot a blank line, its provider keys sorted, its mount point and options.
pub(crate) fn snapshot_and_tablespace_blocks(info: &BackupInfo) -> Vec<String> {
    let mut out = Show::default();
    if let Some(snapshots) = &info.snapshots_info {
        out.header("Snapshot information");
        out.nested("provider", snapshots.provider().as_str());
        for key in snapshots.provider().info_fields() {
            let value = snapshots.info(key).cloned().unwrap_or(PyValue::None);
            out.nested(key, &value.py_str());
        }
        out.line("");
        for snapshot in &snapshots.snapshots {
            let mut keys = snapshots.provider().snapshot_fields().to_vec();
            keys.sort_unstable();
            for key in keys {
                let value = snapshot.field(key).cloned().unwrap_or(PyValue::None);
                out.nested(key, &value.py_str());
            }
            out.nested("Mount point", &snapshot.mount_point.py_str());
            out.nested("Mount options", &snapshot.mount_options.py_str());
            out.line("");
        }
    }
    if let Some(tablespaces) = info.tablespaces.as_ref().filter(|t| !t.is_empty()) {
        out.header("Tablespaces");
        for t in tablespaces {
            out.nested(&t.name, &format!("{} (oid: {})", t.location, t.oid));
        }
        out.line("");
    }
    out.text.lines().map(str::to_string).collect()
}

#[derive(Default)]
struct Show {
    text: String,
}

impl Show {
    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn row(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.text, "  {key:<23}: {value}");
    }

    fn header(&mut self, title: &str) {
        let _ = writeln!(self.text, "  {title}:");
    }

    fn nested(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.text, "    {key:<21}: {value}");
    }
}

/// The `Copy time` row value: `copy_stats['copy_time']` as a duration, with `+ <x>
/// startup` when `analysis_time` is at least one second; nothing when there is no
/// (truthy) copy time.
fn copy_time_text(copy_stats: Option<&PyValue>) -> Result<Option<String>, CatalogError> {
    let Some(stats) = copy_stats.filter(|s| s.is_truthy()) else {
        return Ok(None);
    };
    let stats = stats.as_dict().ok_or_else(|| {
        CatalogError::Render(format!(
            "'{}' object has no attribute 'get'",
            stats.type_name()
        ))
    })?;
    let zero = PyValue::Int(0);
    let copy_time = stats.get("copy_time").unwrap_or(&zero);
    if !copy_time.is_truthy() {
        return Ok(None);
    }
    let analysis_time = stats.get("analysis_time").unwrap_or(&zero);
    let mut text = human_readable_timedelta(copy_time)?;
    let analysis = analysis_time.as_number().ok_or_else(|| {
        CatalogError::Render(format!(
            "'>=' not supported between instances of '{}' and 'int'",
            analysis_time.type_name()
        ))
    })?;
    if analysis >= 1.0 {
        text.push_str(&format!(
            " + {} startup",
            human_readable_timedelta(analysis_time)?
        ));
    }
    Ok(Some(text))
}

/// Barman's `human_readable_timedelta(timedelta(seconds=value))`: non-zero days, hours,
/// minutes and seconds (singular for 1) joined by `, `; `less than one second` under a
/// second; ` ago` for negative values.
pub fn human_readable_timedelta(seconds: &PyValue) -> Result<String, CatalogError> {
    const MICROS_PER_DAY: i128 = 86_400 * 1_000_000;
    let overflow = || {
        CatalogError::Render(format!(
            "{} seconds is out of range for a timedelta",
            seconds.py_str()
        ))
    };
    let micros: i128 = match seconds {
        PyValue::Int(i) => i.checked_mul(1_000_000).ok_or_else(overflow)?,
        PyValue::Bool(b) => i128::from(*b) * 1_000_000,
        // timedelta rounds a float to the nearest microsecond, ties to even.
        PyValue::Float(f) if f.is_finite() && f.abs() < 1e17 => (f * 1e6).round_ties_even() as i128,
        PyValue::Float(_) => return Err(overflow()),
        other => {
            return Err(CatalogError::Render(format!(
                "unsupported type for timedelta seconds component: {}",
                other.type_name()
            )));
        }
    };
    if micros.abs() / MICROS_PER_DAY > 999_999_999 {
        return Err(overflow());
    }
    let delta = micros.abs();
    let days = delta / MICROS_PER_DAY;
    let secs = (delta % MICROS_PER_DAY) / 1_000_000;
    let parts = [
        (days, "day"),
        (secs / 3600, "hour"),
        (secs / 60 % 60, "minute"),
        (secs % 60, "second"),
    ];
    let mut human = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ");
    if delta < 1_000_000 {
        human = "less than one second".to_string();
    }
    if micros < 0 {
        human.push_str(" ago");
    }
    Ok(human)
}

/// Barman's `pretty_size`: powers of 1024 with `KiB`...`YiB`, one decimal; whole bytes
/// below 1 KiB.
pub fn pretty_size(size: i64) -> String {
    pretty_size_float(size as f64)
}

/// [`pretty_size`] of a Python float (Barman's throughput, bytes per second).
pub fn pretty_size_float(size: f64) -> String {
    const SUFFIXES: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut value = size;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < SUFFIXES.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        // Python's "%d" of a float truncates.
        format!("{} B", value.trunc())
    } else {
        format!("{value:.1} {}", SUFFIXES[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{fixture, fixture_names};
    use super::*;

    #[test]
    fn sizes_as_barman_prints_them() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (-5, "-5 B"),
            (1024, "1.0 KiB"),
            (1280, "1.2 KiB"),
            (1331, "1.3 KiB"),
            (31_457_280, "30.0 MiB"),
            (1_610_612_736, "1.5 GiB"),
            (i64::MAX, "8.0 EiB"),
        ];
        for (size, expected) in cases {
            assert_eq!(pretty_size(size), expected, "{size}");
        }
    }

    #[test]
    fn durations_as_barman_prints_them() {
        let cases = [
            (PyValue::Float(0.4), "less than one second"),
            (PyValue::Float(1.0), "1 second"),
            (PyValue::Float(10.25), "10 seconds"),
            (PyValue::Int(61), "1 minute, 1 second"),
            (PyValue::Float(90061.5), "1 day, 1 hour, 1 minute, 1 second"),
            (PyValue::Int(2 * 86400 + 7200), "2 days, 2 hours"),
            (PyValue::Float(-75.0), "1 minute, 15 seconds ago"),
            (PyValue::Float(-0.5), "less than one second ago"),
            (PyValue::Bool(true), "1 second"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                human_readable_timedelta(&value).expect("duration"),
                expected
            );
        }
        assert!(human_readable_timedelta(&PyValue::str("1")).is_err());
        assert!(human_readable_timedelta(&PyValue::Float(f64::INFINITY)).is_err());
        assert!(human_readable_timedelta(&PyValue::Int(i128::MAX)).is_err());
    }

    /// `<size>\t<Barman's pretty_size(size)>`, written by generate.py.
    #[test]
    fn sizes_match_barman() {
        let golden = fixture("formats/pretty_size.tsv");
        for line in golden.lines() {
            let (size, expected) = line.split_once('\t').expect("tab");
            let size: i64 = size.parse().expect("size");
            assert_eq!(pretty_size(size), expected, "{size}");
        }
    }

    /// `<f64 bits>\t<Barman's human_readable_timedelta(timedelta(seconds=x))>`.
    #[test]
    fn durations_match_barman() {
        let golden = fixture("formats/durations.tsv");
        for line in golden.lines() {
            let (bits, expected) = line.split_once('\t').expect("tab");
            let seconds = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex"));
            let text = human_readable_timedelta(&PyValue::Float(seconds)).expect("duration");
            assert_eq!(text, expected, "{seconds}");
        }
    }

    #[test]
    fn render_errors_where_barman_raises() {
        let info = BackupInfo::parse("status=None").expect("valid");
        let mut with_id = info.clone();
        with_id.backup_id = Some("X".into());
        let entry = |info| ListEntry {
            info,
            keep_target: None,
        };
        assert!(backup_list_console(&[entry(&with_id)]).is_err());
        let done = BackupInfo::parse("status=DONE").expect("valid");
        assert!(
            backup_list_console(&[entry(&done)]).is_err(),
            "no backup id"
        );

        let bad_stats = |stats: &str| {
            let mut info =
                BackupInfo::parse(&format!("status=DONE\ncopy_stats={stats}")).expect("valid");
            info.backup_id = Some("X".into());
            backup_show_console(&info)
        };
        assert!(bad_stats("[1]").is_err());
        assert!(bad_stats("{'copy_time': 'x'}").is_err());
        assert!(bad_stats("{'copy_time': 5, 'analysis_time': None}").is_err());
        assert!(bad_stats("{'copy_time': 0, 'analysis_time': None}").is_ok());
        assert!(bad_stats("{'copy_time': 5, 'analysis_time': 2}").is_ok());
        assert!(
            backup_show_json(&BackupInfo::parse("copy_stats={(1,): 2}").expect("valid")).is_err()
        );
    }

    #[test]
    fn show_json_is_keyed_by_the_stored_server_name() {
        let info = BackupInfo::parse("status=STARTED").expect("valid");
        assert!(
            backup_show_json(&info)
                .expect("json")
                .starts_with("{\"null\": {\"backup_label\": null,")
        );
    }

    /// The fixture bucket, loaded as Barman's catalog loads it.
    fn bucket() -> Vec<BackupInfo> {
        fixture_names("bucket", "backup.info")
            .iter()
            .map(|name| {
                let id = name.rsplit('/').nth(1).expect("backup directory");
                BackupInfo::load(id, fixture(name).as_bytes()).expect("valid backup.info")
            })
            .collect()
    }

    /// Keep annotations of the bucket (`annotations/keep` objects).
    fn keep_target(id: &str) -> Option<String> {
        let path = super::super::tests_support::fixture_path(&format!(
            "bucket/pg/main/base/{id}/annotations/keep"
        ));
        let bytes = std::fs::read(path).ok()?;
        Some(super::super::keep::keep_target_from_annotation(&bytes).expect("utf-8"))
    }

    #[test]
    fn list_matches_barman_output() {
        let backups = bucket();
        let targets: Vec<_> = backups
            .iter()
            .map(|b| keep_target(b.backup_id.as_deref().unwrap_or("")))
            .collect();
        // Barman reads a keep annotation only for DONE backups.
        let with_keep: Vec<_> = backups
            .iter()
            .zip(&targets)
            .map(|(info, t)| ListEntry {
                info,
                keep_target: if info.is_done() { t.as_deref() } else { None },
            })
            .collect();
        assert_eq!(
            backup_list_console(&with_keep).expect("list"),
            fixture("golden/list-keep.console")
        );
        let without: Vec<_> = backups
            .iter()
            .map(|info| ListEntry {
                info,
                keep_target: None,
            })
            .collect();
        assert_eq!(
            backup_list_console(&without).expect("list"),
            fixture("golden/list.console")
        );
        assert_eq!(
            backup_list_json(&backups).expect("json"),
            fixture("golden/list.json")
        );
        assert_eq!(
            backup_list_console(&[]).expect("list"),
            fixture("golden/list-empty.console")
        );
        assert_eq!(
            backup_list_json(std::iter::empty()).expect("json"),
            fixture("golden/list-empty.json")
        );
    }

    #[test]
    fn show_matches_barman_output() {
        let backups = bucket();
        assert!(backups.len() >= 8);
        for info in &backups {
            let id = info.backup_id.as_deref().expect("id");
            assert_eq!(
                backup_show_console(info).expect("console"),
                fixture(&format!("golden/show-{id}.console")),
                "{id}"
            );
            assert_eq!(
                backup_show_json(info).expect("json"),
                fixture(&format!("golden/show-{id}.json")),
                "{id}"
            );
        }
    }
}
