//! backup.info, the metadata file of every backup (Barman: `barman/infofile.py` `BackupInfo`).
//!
//! [`BackupInfo::parse`] reads a file with Barman 3.20.1's rules and
//! [`BackupInfo::to_file_text`] writes exactly the bytes Barman's `BackupInfo.save()` would
//! write for the same data: every known field in alphabetical order, `None` for nulls,
//! `backup_name` and `snapshots_info` left out when null. Reading then writing a file
//! Barman wrote gives the same bytes back.
//!
//! Values follow Barman's loaders and dumpers, including their quirks: the Python-literal
//! fields are written as `None` when their value is empty (Python's `repr(x) if x else
//! None`), an empty `tablespaces` list reads as null, and the JSON view shows some fields
//! as dumped text and others as values (see [`BackupInfo::to_json_value`]).

use std::fmt;

use super::error::CatalogError;
use super::pyliteral::{self, PyDict, PyValue};
use super::snapshots::SnapshotsInfo;
use super::timestamp::{self, Timestamp};

/// Barman's default WAL segment size, used when a backup.info has no such line.
pub const DEFAULT_XLOG_SEGMENT_SIZE: i64 = 16_777_216;

/// A backup's `status`. Barman stores any text it finds, so unknown values are kept
/// ([`BackupStatus::Other`]) and written back unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupStatus {
    Empty,
    Started,
    WaitingForWals,
    Done,
    Syncing,
    Failed,
    Other(String),
}

impl BackupStatus {
    pub fn as_str(&self) -> &str {
        match self {
            BackupStatus::Empty => "EMPTY",
            BackupStatus::Started => "STARTED",
            BackupStatus::WaitingForWals => "WAITING_FOR_WALS",
            BackupStatus::Done => "DONE",
            BackupStatus::Syncing => "SYNCING",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Other(s) => s,
        }
    }

    /// Barman's `STATUS_COPY_DONE`: the data copy finished (`WAITING_FOR_WALS`, `DONE`).
    pub fn is_copy_done(&self) -> bool {
        matches!(self, BackupStatus::WaitingForWals | BackupStatus::Done)
    }
}

impl From<&str> for BackupStatus {
    fn from(s: &str) -> Self {
        match s {
            "EMPTY" => BackupStatus::Empty,
            "STARTED" => BackupStatus::Started,
            "WAITING_FOR_WALS" => BackupStatus::WaitingForWals,
            "DONE" => BackupStatus::Done,
            "SYNCING" => BackupStatus::Syncing,
            "FAILED" => BackupStatus::Failed,
            other => BackupStatus::Other(other.to_string()),
        }
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `tablespaces`: written as the tuple `(name, oid, location)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    pub name: String,
    pub oid: u32,
    pub location: String,
}

/// The backup.info fields, in file (alphabetical) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    BackupLabel,
    BackupName,
    BeginOffset,
    BeginTime,
    BeginWal,
    BeginXlog,
    ChildrenBackupIds,
    ClusterSize,
    Compression,
    ConfigFile,
    CopyStats,
    DataChecksums,
    DeduplicatedSize,
    Encryption,
    EndOffset,
    EndTime,
    EndWal,
    EndXlog,
    Error,
    HbaFile,
    IdentFile,
    IncludedFiles,
    Mode,
    ParentBackupId,
    Pgdata,
    ServerName,
    Size,
    SnapshotsInfo,
    Status,
    SummarizeWal,
    Systemid,
    Tablespaces,
    Timeline,
    Version,
    XlogSegmentSize,
}

impl Field {
    /// Every field, in the order Barman writes them.
    pub const ALL: [Field; 35] = [
        Field::BackupLabel,
        Field::BackupName,
        Field::BeginOffset,
        Field::BeginTime,
        Field::BeginWal,
        Field::BeginXlog,
        Field::ChildrenBackupIds,
        Field::ClusterSize,
        Field::Compression,
        Field::ConfigFile,
        Field::CopyStats,
        Field::DataChecksums,
        Field::DeduplicatedSize,
        Field::Encryption,
        Field::EndOffset,
        Field::EndTime,
        Field::EndWal,
        Field::EndXlog,
        Field::Error,
        Field::HbaFile,
        Field::IdentFile,
        Field::IncludedFiles,
        Field::Mode,
        Field::ParentBackupId,
        Field::Pgdata,
        Field::ServerName,
        Field::Size,
        Field::SnapshotsInfo,
        Field::Status,
        Field::SummarizeWal,
        Field::Systemid,
        Field::Tablespaces,
        Field::Timeline,
        Field::Version,
        Field::XlogSegmentSize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::BackupLabel => "backup_label",
            Field::BackupName => "backup_name",
            Field::BeginOffset => "begin_offset",
            Field::BeginTime => "begin_time",
            Field::BeginWal => "begin_wal",
            Field::BeginXlog => "begin_xlog",
            Field::ChildrenBackupIds => "children_backup_ids",
            Field::ClusterSize => "cluster_size",
            Field::Compression => "compression",
            Field::ConfigFile => "config_file",
            Field::CopyStats => "copy_stats",
            Field::DataChecksums => "data_checksums",
            Field::DeduplicatedSize => "deduplicated_size",
            Field::Encryption => "encryption",
            Field::EndOffset => "end_offset",
            Field::EndTime => "end_time",
            Field::EndWal => "end_wal",
            Field::EndXlog => "end_xlog",
            Field::Error => "error",
            Field::HbaFile => "hba_file",
            Field::IdentFile => "ident_file",
            Field::IncludedFiles => "included_files",
            Field::Mode => "mode",
            Field::ParentBackupId => "parent_backup_id",
            Field::Pgdata => "pgdata",
            Field::ServerName => "server_name",
            Field::Size => "size",
            Field::SnapshotsInfo => "snapshots_info",
            Field::Status => "status",
            Field::SummarizeWal => "summarize_wal",
            Field::Systemid => "systemid",
            Field::Tablespaces => "tablespaces",
            Field::Timeline => "timeline",
            Field::Version => "version",
            Field::XlogSegmentSize => "xlog_segment_size",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Fields Barman leaves out of the file (and of the JSON) when null.
    pub fn hidden_if_null(self) -> bool {
        matches!(self, Field::BackupName | Field::SnapshotsInfo)
    }
}

/// The metadata of one backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    /// Not a field of the file: the catalog sets it from the backup's directory name.
    /// (A `backup_id=` line overrides it, as in Barman, where it is an attribute too.)
    pub backup_id: Option<String>,
    pub backup_label: Option<String>,
    pub backup_name: Option<String>,
    pub begin_offset: Option<i64>,
    pub begin_time: Option<Timestamp>,
    pub begin_wal: Option<String>,
    pub begin_xlog: Option<String>,
    pub children_backup_ids: Option<Vec<String>>,
    pub cluster_size: Option<i64>,
    pub compression: Option<String>,
    pub config_file: Option<String>,
    /// An ordered dict in practice (Barman's `barman/cloud.py`
    /// `CloudUploadController.statistics`), kept as any literal as Barman does (its
    /// `BackupInfo.copy_stats` field is read with `ast.literal_eval`).
    pub copy_stats: Option<PyValue>,
    pub data_checksums: Option<String>,
    pub deduplicated_size: Option<i64>,
    pub encryption: Option<String>,
    pub end_offset: Option<i64>,
    pub end_time: Option<Timestamp>,
    pub end_wal: Option<String>,
    pub end_xlog: Option<String>,
    pub error: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Option<Vec<String>>,
    pub mode: Option<String>,
    pub parent_backup_id: Option<String>,
    pub pgdata: Option<String>,
    pub server_name: Option<String>,
    pub size: Option<i64>,
    pub snapshots_info: Option<SnapshotsInfo>,
    /// `None` only when the file says `status=None`; a missing line means `EMPTY`.
    pub status: Option<BackupStatus>,
    pub summarize_wal: Option<String>,
    pub systemid: Option<String>,
    /// Never `Some(vec![])` after parsing: Barman reads an empty list as null.
    pub tablespaces: Option<Vec<Tablespace>>,
    pub timeline: Option<i64>,
    pub version: Option<i64>,
    pub xlog_segment_size: Option<i64>,
}

impl Default for BackupInfo {
    /// Barman's defaults: everything null except `status=EMPTY` and the segment size.
    fn default() -> Self {
        BackupInfo {
            backup_id: None,
            backup_label: None,
            backup_name: None,
            begin_offset: None,
            begin_time: None,
            begin_wal: None,
            begin_xlog: None,
            children_backup_ids: None,
            cluster_size: None,
            compression: None,
            config_file: None,
            copy_stats: None,
            data_checksums: None,
            deduplicated_size: None,
            encryption: None,
            end_offset: None,
            end_time: None,
            end_wal: None,
            end_xlog: None,
            error: None,
            hba_file: None,
            ident_file: None,
            included_files: None,
            mode: None,
            parent_backup_id: None,
            pgdata: None,
            server_name: None,
            size: None,
            snapshots_info: None,
            status: Some(BackupStatus::Empty),
            summarize_wal: None,
            systemid: None,
            tablespaces: None,
            timeline: None,
            version: None,
            xlog_segment_size: Some(DEFAULT_XLOG_SEGMENT_SIZE),
        }
    }
}

/// Borrowed view of one field, grouped by how Barman encodes it.
enum Slot<'a> {
    /// Plain text, written raw.
    Text(&'a Option<String>),
    Int(&'a Option<i64>),
    Time(&'a Option<Timestamp>),
    /// A str written with `repr()` (`backup_label`).
    LiteralStr(&'a Option<String>),
    /// `children_backup_ids`: joined with `,`.
    Ids(&'a Option<Vec<String>>),
    Status(&'a Option<BackupStatus>),
    Tablespaces(&'a Option<Vec<Tablespace>>),
    /// `included_files`: a list of str written with `repr()`.
    Files(&'a Option<Vec<String>>),
    Literal(&'a Option<PyValue>),
    Snapshots(&'a Option<SnapshotsInfo>),
}

enum SlotMut<'a> {
    Text(&'a mut Option<String>),
    Int(&'a mut Option<i64>),
    Time(&'a mut Option<Timestamp>),
    LiteralStr(&'a mut Option<String>),
    Ids(&'a mut Option<Vec<String>>),
    Status(&'a mut Option<BackupStatus>),
    Tablespaces(&'a mut Option<Vec<Tablespace>>),
    Files(&'a mut Option<Vec<String>>),
    Literal(&'a mut Option<PyValue>),
    Snapshots(&'a mut Option<SnapshotsInfo>),
}

/// Generates `slot` and `slot_mut` from one table so the two cannot disagree.
macro_rules! slots {
    ($($field:ident => $kind:ident($member:ident),)*) => {
        impl BackupInfo {
            fn slot(&self, field: Field) -> Slot<'_> {
                match field {
                    $(Field::$field => Slot::$kind(&self.$member),)*
                }
            }

            fn slot_mut(&mut self, field: Field) -> SlotMut<'_> {
                match field {
                    $(Field::$field => SlotMut::$kind(&mut self.$member),)*
                }
            }
        }
    };
}

slots! {
    BackupLabel => LiteralStr(backup_label),
    BackupName => Text(backup_name),
    BeginOffset => Int(begin_offset),
    BeginTime => Time(begin_time),
    BeginWal => Text(begin_wal),
    BeginXlog => Text(begin_xlog),
    ChildrenBackupIds => Ids(children_backup_ids),
    ClusterSize => Int(cluster_size),
    Compression => Text(compression),
    ConfigFile => Text(config_file),
    CopyStats => Literal(copy_stats),
    DataChecksums => Text(data_checksums),
    DeduplicatedSize => Int(deduplicated_size),
    Encryption => Text(encryption),
    EndOffset => Int(end_offset),
    EndTime => Time(end_time),
    EndWal => Text(end_wal),
    EndXlog => Text(end_xlog),
    Error => Text(error),
    HbaFile => Text(hba_file),
    IdentFile => Text(ident_file),
    IncludedFiles => Files(included_files),
    Mode => Text(mode),
    ParentBackupId => Text(parent_backup_id),
    Pgdata => Text(pgdata),
    ServerName => Text(server_name),
    Size => Int(size),
    SnapshotsInfo => Snapshots(snapshots_info),
    Status => Status(status),
    SummarizeWal => Text(summarize_wal),
    Systemid => Text(systemid),
    Tablespaces => Tablespaces(tablespaces),
    Timeline => Int(timeline),
    Version => Int(version),
    XlogSegmentSize => Int(xlog_segment_size),
}

impl BackupInfo {
    /// Reads a backup.info as the cloud catalog does: `backup_id` is the backup's
    /// directory name (a `backup_id=` line in the file still wins, as in Barman).
    pub fn load(backup_id: &str, bytes: &[u8]) -> Result<Self, CatalogError> {
        let mut info = BackupInfo {
            backup_id: Some(backup_id.to_string()),
            ..BackupInfo::default()
        };
        for line in bytes.split(|b| *b == b'\n') {
            let line = std::str::from_utf8(line).map_err(|e| {
                CatalogError::Encoding(format!("'utf-8' codec can't decode the line: {e}"))
            })?;
            info.read_line(line)?;
        }
        Ok(info)
    }

    /// Reads backup.info text (`backup_id` stays unset unless the file has the line).
    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let mut info = BackupInfo::default();
        for line in text.split('\n') {
            info.read_line(line)?;
        }
        Ok(info)
    }

    /// One line of `FieldListFile.load`: blank lines and lines *starting* with `#` are
    /// skipped (an indented `#` is not a comment), the rest is split at the first `=`,
    /// both sides stripped, `None` is null, and the field's loader applies.
    fn read_line(&mut self, line: &str) -> Result<(), CatalogError> {
        if line.chars().all(py_is_space) || line.starts_with('#') {
            return Ok(());
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(CatalogError::InvalidLine(py_strip(line).to_string()));
        };
        let (key, value) = (py_strip(key), py_strip(value));
        let value = (value != "None").then_some(value);
        match Field::from_name(key) {
            Some(field) => self.set_field(field, value),
            None => match key {
                // Instance attributes of Barman's class that a line can set: backup_id
                // takes effect, the other two have no visible effect.
                "backup_id" => {
                    self.backup_id = value.map(str::to_string);
                    Ok(())
                }
                "backup_version" | "filename" => Ok(()),
                other => Err(CatalogError::UnsupportedField(other.to_string())),
            },
        }
    }

    /// Sets a field from its text in the file (`None`: the text was `None`).
    pub fn set_field(&mut self, field: Field, value: Option<&str>) -> Result<(), CatalogError> {
        let name = field.name();
        let invalid = |message: String| CatalogError::InvalidValue {
            field: name,
            message,
        };
        let literal = |text: &str| -> Result<Option<PyValue>, CatalogError> {
            match pyliteral::parse(text) {
                Ok(PyValue::None) => Ok(None),
                Ok(v) => Ok(Some(v)),
                Err(e) => Err(invalid(e.to_string())),
            }
        };
        match (self.slot_mut(field), value) {
            (SlotMut::Text(s) | SlotMut::LiteralStr(s), None) => *s = None,
            (SlotMut::Int(i), None) => *i = None,
            (SlotMut::Time(t), None) => *t = None,
            (SlotMut::Ids(v) | SlotMut::Files(v), None) => *v = None,
            (SlotMut::Status(s), None) => *s = None,
            (SlotMut::Tablespaces(t), None) => *t = None,
            (SlotMut::Literal(l), None) => *l = None,
            (SlotMut::Snapshots(s), None) => *s = None,

            (SlotMut::Text(s), Some(text)) => *s = Some(text.to_string()),
            (SlotMut::Int(i), Some(text)) => *i = Some(python_int(text).map_err(invalid)?),
            (SlotMut::Time(t), Some(text)) => *t = Some(timestamp::parse(text).map_err(invalid)?),
            (SlotMut::Status(s), Some(text)) => *s = Some(BackupStatus::from(text)),
            (SlotMut::Ids(v), Some(text)) => {
                *v = (!text.is_empty()).then(|| text.split(',').map(str::to_string).collect());
            }
            (SlotMut::LiteralStr(s), Some(text)) => {
                *s = match literal(text)? {
                    None => None,
                    Some(PyValue::Str(label)) => Some(label),
                    Some(other) => {
                        return Err(invalid(format!(
                            "expected a str, found {}",
                            other.type_name()
                        )));
                    }
                };
            }
            (SlotMut::Files(v), Some(text)) => {
                *v = match literal(text)? {
                    None => None,
                    Some(PyValue::List(items) | PyValue::Tuple(items)) => Some(
                        items
                            .into_iter()
                            .map(|item| match item {
                                PyValue::Str(s) => Ok(s),
                                other => Err(invalid(format!(
                                    "expected a list of str, found a {}",
                                    other.type_name()
                                ))),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    Some(other) => {
                        return Err(invalid(format!(
                            "expected a list, found {}",
                            other.type_name()
                        )));
                    }
                };
            }
            (SlotMut::Tablespaces(t), Some(text)) => {
                *t = match literal(text)? {
                    // Barman: `if obj: ... else: None`.
                    Some(v) if v.is_truthy() => Some(tablespaces_from_literal(v).map_err(invalid)?),
                    _ => None,
                };
            }
            (SlotMut::Literal(l), Some(text)) => *l = literal(text)?,
            (SlotMut::Snapshots(s), Some(text)) => {
                *s = match literal(text)? {
                    None => None,
                    Some(v) => Some(SnapshotsInfo::from_literal(&v).map_err(invalid)?),
                };
            }
        }
        Ok(())
    }

    /// The text of a field as Barman dumps it; `None` where Barman writes `None`.
    pub fn dumped(&self, field: Field) -> Option<String> {
        match self.slot(field) {
            Slot::Text(s) => s.clone(),
            Slot::Int(i) => i.map(|i| i.to_string()),
            Slot::Time(t) => t.as_ref().map(timestamp::python_str),
            Slot::Status(s) => s.as_ref().map(|s| s.as_str().to_string()),
            // `repr(x) if x else None` and `",".join(x) if x else None`: empties are null.
            Slot::LiteralStr(s) => s
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(pyliteral::repr_str),
            Slot::Ids(v) => v.as_ref().filter(|v| !v.is_empty()).map(|v| v.join(",")),
            Slot::Files(v) => v
                .as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| pyliteral::repr(&str_list(v))),
            Slot::Tablespaces(t) => t
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(|t| pyliteral::repr(&tablespaces_literal(t, false))),
            Slot::Literal(l) => l.as_ref().filter(|l| l.is_truthy()).map(pyliteral::repr),
            Slot::Snapshots(s) => s.as_ref().map(|s| pyliteral::repr(&s.to_literal())),
        }
    }

    /// Whether the field is null (for the fields hidden when null, whether it is omitted).
    fn is_null(&self, field: Field) -> bool {
        match self.slot(field) {
            Slot::Text(s) | Slot::LiteralStr(s) => s.is_none(),
            Slot::Int(i) => i.is_none(),
            Slot::Time(t) => t.is_none(),
            Slot::Ids(v) | Slot::Files(v) => v.is_none(),
            Slot::Status(s) => s.is_none(),
            Slot::Tablespaces(t) => t.is_none(),
            Slot::Literal(l) => l.is_none(),
            Slot::Snapshots(s) => s.is_none(),
        }
    }

    /// The file as Barman's `BackupInfo.save()` writes it.
    ///
    /// Refuses a line break in a plain-text field, which Barman would write as is and so
    /// make the file unreadable. (Other lossy values are written as Barman writes them:
    /// leading/trailing blanks and the text `None` do not survive a re-read.)
    pub fn to_file_text(&self) -> Result<String, CatalogError> {
        let mut out = String::new();
        for field in Field::ALL {
            if field.hidden_if_null() && self.is_null(field) {
                continue;
            }
            let value = self.dumped(field);
            if let Some(v) = &value
                && v.contains('\n')
            {
                return Err(CatalogError::Unwritable {
                    field: field.name(),
                });
            }
            out.push_str(field.name());
            out.push('=');
            out.push_str(value.as_deref().unwrap_or("None"));
            out.push('\n');
        }
        Ok(out)
    }

    /// Barman's `BackupInfo.to_json()` as an ordered dict: every field in file order (the
    /// hidden-if-null ones only when set), then `backup_id`, then `begin_time_iso` and
    /// `end_time_iso` when the times are set. Most fields appear as dumped into the file
    /// (so `backup_label` is its Python-literal text and `children_backup_ids` the joined
    /// string); `tablespaces` (as lists), `included_files`, `copy_stats` and
    /// `snapshots_info` appear as values; times in `ctime()` form.
    pub fn to_json_value(&self) -> PyValue {
        let text = |s: Option<String>| s.map_or(PyValue::None, PyValue::Str);
        let mut dict = PyDict::new();
        for field in Field::ALL {
            if field.hidden_if_null() && self.is_null(field) {
                continue;
            }
            let value = match self.slot(field) {
                Slot::Int(i) => i.map_or(PyValue::None, |i| PyValue::Int(i.into())),
                Slot::Time(t) => text(t.as_ref().map(timestamp::ctime)),
                Slot::Files(v) => v.as_ref().map_or(PyValue::None, |v| str_list(v)),
                Slot::Tablespaces(t) => t
                    .as_ref()
                    .map_or(PyValue::None, |t| tablespaces_literal(t, true)),
                Slot::Literal(l) => l.clone().unwrap_or(PyValue::None),
                Slot::Snapshots(s) => s.as_ref().map_or(PyValue::None, SnapshotsInfo::to_literal),
                Slot::Text(_) | Slot::LiteralStr(_) | Slot::Ids(_) | Slot::Status(_) => {
                    text(self.dumped(field))
                }
            };
            dict.set(field.name(), value);
        }
        dict.set("backup_id", text(self.backup_id.clone()));
        if let Some(t) = &self.begin_time {
            dict.set("begin_time_iso", PyValue::Str(timestamp::isoformat(t)));
        }
        if let Some(t) = &self.end_time {
            dict.set("end_time_iso", PyValue::Str(timestamp::isoformat(t)));
        }
        PyValue::Dict(dict)
    }

    /// `status == DONE`.
    pub fn is_done(&self) -> bool {
        self.status == Some(BackupStatus::Done)
    }

    /// `pg_wal` from PostgreSQL 10 on, `pg_xlog` before (Barman's `wal_directory()`).
    pub fn wal_directory(&self) -> Option<&'static str> {
        self.version
            .map(|v| if v >= 100_000 { "pg_wal" } else { "pg_xlog" })
    }

    /// `"9.6"` below version 10, `"16"` from 10 on (Barman's `pg_major_version()`).
    pub fn pg_major_version(&self) -> Option<String> {
        let v = self.version?;
        let major = v / 10_000;
        Some(if major < 10 {
            format!("{major}.{}", v / 100 % 100)
        } else {
            major.to_string()
        })
    }
}

fn str_list(items: &[String]) -> PyValue {
    PyValue::List(items.iter().cloned().map(PyValue::Str).collect())
}

/// The file stores tuples; the JSON view has lists.
fn tablespaces_literal(tablespaces: &[Tablespace], as_lists: bool) -> PyValue {
    PyValue::List(
        tablespaces
            .iter()
            .map(|t| {
                let items = vec![
                    PyValue::Str(t.name.clone()),
                    PyValue::Int(t.oid.into()),
                    PyValue::Str(t.location.clone()),
                ];
                if as_lists {
                    PyValue::List(items)
                } else {
                    PyValue::Tuple(items)
                }
            })
            .collect(),
    )
}

/// Barman makes a `Tablespace(name, oid, location)` of each item; we insist on the types
/// PostgreSQL gives them.
fn tablespaces_from_literal(value: PyValue) -> Result<Vec<Tablespace>, String> {
    let items = match value {
        PyValue::List(items) | PyValue::Tuple(items) => items,
        other => {
            return Err(format!(
                "expected a list of tablespaces, found {}",
                other.type_name()
            ));
        }
    };
    items
        .into_iter()
        .map(|item| {
            let parts = match item {
                PyValue::List(p) | PyValue::Tuple(p) => p,
                other => {
                    return Err(format!(
                        "expected a tablespace tuple, found {}",
                        other.type_name()
                    ));
                }
            };
            if parts.len() != 3 {
                return Err(format!("Expected 3 arguments, got {}", parts.len()));
            }
            match (&parts[0], &parts[1], &parts[2]) {
                (PyValue::Str(name), PyValue::Int(oid), PyValue::Str(location)) => Ok(Tablespace {
                    name: name.clone(),
                    oid: u32::try_from(*oid)
                        .map_err(|_| format!("invalid tablespace oid {oid}"))?,
                    location: location.clone(),
                }),
                _ => Err(format!(
                    "expected a tablespace (name, oid, location), found {}",
                    pyliteral::repr(&PyValue::Tuple(parts.clone()))
                )),
            }
        })
        .collect()
}

/// Python's `int(text)` for a stripped decimal text: optional sign, digits with single
/// underscores between them.
fn python_int(text: &str) -> Result<i64, String> {
    let error = || {
        format!(
            "invalid literal for int() with base 10: {}",
            pyliteral::repr_str(text)
        )
    };
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let well_formed = !body.is_empty()
        && !body.starts_with('_')
        && !body.ends_with('_')
        && !body.contains("__")
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err(error());
    }
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    digits
        .parse::<i64>()
        .map_err(|_| format!("integer {text} does not fit in 64 bits"))
}

/// Python's `str.isspace()` for one character: Unicode White_Space plus the four
/// information separators U+001C..U+001F, which Python treats as blanks.
fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` without arguments.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{fixture, fixture_names};
    use super::*;

    fn parse(text: &str) -> BackupInfo {
        BackupInfo::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn field_order_is_alphabetical() {
        let names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(Field::from_name("copy_stats"), Some(Field::CopyStats));
        assert_eq!(Field::from_name("backup_id"), None);
    }

    #[test]
    fn defaults_are_barmans() {
        let info = parse("");
        assert_eq!(info.status, Some(BackupStatus::Empty));
        assert_eq!(info.xlog_segment_size, Some(DEFAULT_XLOG_SEGMENT_SIZE));
        let text = info.to_file_text().expect("writable");
        assert_eq!(
            text.lines().count(),
            33,
            "every field but the two hidden ones"
        );
        assert!(text.contains("\nstatus=EMPTY\n"));
        assert!(!text.contains("backup_name") && !text.contains("snapshots_info"));
    }

    #[test]
    fn reading_rules() {
        let info = parse(
            "#comment\n\n   \n\t\nstatus = DONE \x1f\nversion=+16_0004\nserver_name==x= \n\
             children_backup_ids=a,b\nbackup_id=None\ncopy_stats={}\nincluded_files=[]\n\
             tablespaces=[]\nbackup_label=''\nerror=\nxlog_segment_size=None",
        );
        assert_eq!(info.status, Some(BackupStatus::Done));
        assert_eq!(info.version, Some(160004));
        assert_eq!(info.server_name.as_deref(), Some("=x="));
        assert_eq!(info.children_backup_ids, Some(vec!["a".into(), "b".into()]));
        assert_eq!(info.backup_id, None);
        assert_eq!(info.copy_stats, Some(PyValue::Dict(PyDict::new())));
        assert_eq!(info.included_files, Some(vec![]));
        assert_eq!(info.tablespaces, None);
        assert_eq!(info.backup_label.as_deref(), Some(""));
        assert_eq!(info.error.as_deref(), Some(""));
        assert_eq!(info.xlog_segment_size, None);
        // Empty values are written back as Barman writes them.
        let text = info.to_file_text().expect("writable");
        for line in [
            "backup_label=None",
            "copy_stats=None",
            "included_files=None",
            "error=",
            "xlog_segment_size=None",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn backup_id_line_overrides_the_directory_name() {
        let info = BackupInfo::load("20250101T000000", b"status=DONE\n").expect("valid");
        assert_eq!(info.backup_id.as_deref(), Some("20250101T000000"));
        let info =
            BackupInfo::load("X", b"backup_id=Y\nbackup_version=1\nfilename=z\n").expect("valid");
        assert_eq!(info.backup_id.as_deref(), Some("Y"));
    }

    #[test]
    fn errors_as_barman_reports_them() {
        let err = |text: &str| BackupInfo::parse(text).unwrap_err();
        assert_eq!(
            err("status=DONE\nnew_field=1"),
            CatalogError::UnsupportedField("new_field".into())
        );
        assert_eq!(
            err("  # indented\n"),
            CatalogError::InvalidLine("# indented".into())
        );
        assert!(matches!(err("EMPTY=x"), CatalogError::UnsupportedField(_)));
        assert_eq!(err("=x"), CatalogError::UnsupportedField(String::new()));
        assert_eq!(err("garbage"), CatalogError::InvalidLine("garbage".into()));
        assert_eq!(
            err("version=16.4").to_string(),
            "invalid literal for int() with base 10: '16.4'"
        );
        assert_eq!(
            err("timeline=").to_string(),
            "invalid literal for int() with base 10: ''"
        );
        for bad in [
            "version=1__0",
            "version=_1",
            "version=99999999999999999999",
            "begin_time=yesterday",
            "backup_label=[1]",
            "backup_label='x",
            "tablespaces=[('a', 1)]",
            "tablespaces=[('a', -1, 'b')]",
            "tablespaces=['abc']",
            "included_files=[1]",
            "snapshots_info={'provider': 'oracle', 'snapshots': []}",
        ] {
            let e = err(bad);
            assert!(
                !matches!(e, CatalogError::UnsupportedField(_)),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            BackupInfo::load("x", b"status=\xff\n"),
            Err(CatalogError::Encoding(_))
        ));
    }

    #[test]
    fn refuses_to_write_line_breaks() {
        let info = BackupInfo {
            error: Some("failure uploading data (a\nb)".into()),
            ..BackupInfo::default()
        };
        assert_eq!(
            info.to_file_text(),
            Err(CatalogError::Unwritable { field: "error" })
        );
        let label = BackupInfo {
            backup_label: Some("line 1\nline 2\n".into()),
            ..BackupInfo::default()
        };
        assert!(
            label
                .to_file_text()
                .expect("writable")
                .starts_with("backup_label='line 1\\nline 2\\n'\n")
        );
    }

    #[test]
    fn derived_values() {
        let info = parse("version=90624");
        assert_eq!(info.pg_major_version().as_deref(), Some("9.6"));
        assert_eq!(info.wal_directory(), Some("pg_xlog"));
        let info = parse("version=160004");
        assert_eq!(info.pg_major_version().as_deref(), Some("16"));
        assert_eq!(info.wal_directory(), Some("pg_wal"));
    }

    /// Files written by Barman's own `BackupInfo.save()` (see the fixtures' README) are
    /// read and written back byte for byte.
    #[test]
    fn barman_files_round_trip() {
        let names = fixture_names("bucket", "backup.info");
        assert!(names.len() >= 8, "{names:?}");
        for name in names {
            let text = fixture(&name);
            let info = BackupInfo::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(info.to_file_text().expect("writable"), text, "{name}");
        }
    }

    /// Hand-written files, and what Barman's load + save made of them.
    #[test]
    fn barman_normalization_is_reproduced() {
        let names = fixture_names("normalize", ".in");
        assert!(names.len() >= 3, "{names:?}");
        for name in names {
            let input = fixture(&name);
            let expected = fixture(&format!("{}.out", name.trim_end_matches(".in")));
            let info = BackupInfo::parse(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(info.to_file_text().expect("writable"), expected, "{name}");
        }
    }

    /// A backup.info written by this module; generate.py checked that Barman loads it and
    /// saves the very same bytes (`written_by_us.resaved.info`).
    #[test]
    fn barman_resaves_our_file_identically() {
        let ours = written_by_us().to_file_text().expect("writable");
        assert_eq!(ours, fixture("written_by_us.info"));
        assert_eq!(ours, fixture("written_by_us.resaved.info"));
    }

    /// Values chosen to exercise every encoding: quotes, escapes, non-ASCII, floats,
    /// nested literals, offsets, microseconds.
    pub(crate) fn written_by_us() -> BackupInfo {
        use super::super::snapshots::{SnapshotCloud, SnapshotMetadata};
        let time = |s: &str| Some(timestamp::parse(s).expect("time"));
        let mut stats = PyDict::new();
        stats.set("total_time", PyValue::Float(1234.5678));
        stats.set("number_of_workers", PyValue::Int(4));
        stats.set("analysis_time", PyValue::Int(0));
        stats.set("copy_time", PyValue::Float(0.1 + 0.2));
        stats.set("tiny", PyValue::Float(3e-7));
        stats.set("huge", PyValue::Float(2.5e20));
        stats.set(
            "nested",
            PyValue::Tuple(vec![
                PyValue::Bool(true),
                PyValue::None,
                PyValue::List(vec![]),
            ]),
        );
        let mut snapshots = SnapshotsInfo::new(SnapshotCloud::Azure);
        snapshots.set_info("subscription_id", PyValue::str("sub-1"));
        snapshots.set_info("resource_group", PyValue::str("rg \"prod\""));
        let mut disk = SnapshotMetadata::new(SnapshotCloud::Azure);
        disk.mount_point = PyValue::str("/mnt/pg data");
        disk.mount_options = PyValue::str("rw,relatime");
        disk.set_field("location", PyValue::str("westeurope"));
        disk.set_field("lun", PyValue::Int(10));
        disk.set_field("snapshot_name", PyValue::str("pgdata-20250401t000000"));
        snapshots.snapshots.push(disk);
        BackupInfo {
            backup_id: Some("20250401T000000".into()),
            backup_label: Some(
                "START WAL LOCATION: 0/9000028 (file 000000010000000000000009)\n\
                 LABEL: it's \"quoted\" \\ tab\there é ☕ \u{a0}\u{2028}\x01\n"
                    .into(),
            ),
            backup_name: Some("ñame with spaces ☕".into()),
            begin_offset: Some(40),
            begin_time: time("2025-04-01 00:00:00.000001+05:45"),
            begin_wal: Some("000000010000000000000009".into()),
            begin_xlog: Some("0/9000028".into()),
            children_backup_ids: Some(vec!["20250402T000000".into(), "20250403T000000".into()]),
            cluster_size: Some(123_456_789_012),
            compression: Some("gzip".into()),
            config_file: Some("/etc/postgresql/17/main/postgresql.conf".into()),
            copy_stats: Some(PyValue::Dict(stats)),
            data_checksums: Some("on".into()),
            deduplicated_size: Some(0),
            encryption: None,
            end_offset: Some(312),
            end_time: time("2025-04-01 00:10:00-09:30"),
            end_wal: Some("00000001000000000000000A".into()),
            end_xlog: Some("0/A000138".into()),
            error: Some("x = y # not a comment".into()),
            hba_file: Some("/etc/postgresql/17/main/pg_hba.conf".into()),
            ident_file: Some("/etc/postgresql/17/main/pg_ident.conf".into()),
            included_files: Some(vec![
                "/etc/postgresql/17/main/conf.d/a b.conf".into(),
                "it's.conf".into(),
            ]),
            mode: Some("snapshot-concurrent".into()),
            parent_backup_id: None,
            pgdata: Some("/var/lib/postgresql/17/main".into()),
            server_name: Some("main".into()),
            size: Some(-1),
            snapshots_info: Some(snapshots),
            status: Some(BackupStatus::Other("CUSTOM_STATUS".into())),
            summarize_wal: Some("on".into()),
            systemid: Some("7345678901234567890".into()),
            tablespaces: Some(vec![
                Tablespace {
                    name: "o'brien".into(),
                    oid: 16_400,
                    location: "/srv/tbs \"a\"".into(),
                },
                Tablespace {
                    name: "ts_ü".into(),
                    oid: u32::MAX,
                    location: "/srv/ts_ü".into(),
                },
            ]),
            timeline: Some(3),
            version: Some(170_002),
            xlog_segment_size: Some(67_108_864),
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::super::tests_support::{fixture, fixture_names};
    use super::*;

    /// Real backup.info files (written by Barman and by us) to mutate.
    fn fixtures() -> Vec<String> {
        let mut texts: Vec<String> = fixture_names("bucket", "backup.info")
            .iter()
            .map(|name| fixture(name))
            .collect();
        texts.push(fixture("written_by_us.info"));
        texts
    }

    /// Values that exercise each field's loader: literals, times, numbers, junk.
    fn field_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            Just("None".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([+-][0-9]{2}:[0-9]{2})?",
            "\\[\\('[a-z]{0,5}', [0-9]{1,6}, '/[a-z/]{0,10}'\\)\\]",
            "\\{'[a-z_]{1,8}': [0-9.e+-]{1,12}\\}",
            "[0-9A-F]{1,9}/[0-9A-F]{1,9}",
        ]
    }

    /// A fixture with one field's value replaced, a line dropped, or text spliced in.
    fn mutated() -> impl Strategy<Value = String> {
        let texts = fixtures();
        (
            prop::sample::select(texts),
            any::<prop::sample::Index>(),
            field_value(),
            0..3u8,
        )
            .prop_map(|(text, at, value, how)| {
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                let i = at
                    .index(lines.len().max(1))
                    .min(lines.len().saturating_sub(1));
                match (how, lines.get_mut(i)) {
                    (0, Some(line)) => {
                        let key = line.split('=').next().unwrap_or_default().to_string();
                        *line = format!("{key}={value}");
                    }
                    (1, Some(_)) => {
                        lines.remove(i);
                    }
                    _ => lines.insert(i, value),
                }
                lines.join("\n")
            })
    }

    /// Parsing what we render gives the same backup, and rendering is stable from there.
    fn round_trips(info: &BackupInfo) -> Result<(), TestCaseError> {
        let Ok(text) = info.to_file_text() else {
            return Ok(()); // a line break in a text field: refused, not written
        };
        let back = BackupInfo::parse(&text);
        prop_assert!(back.is_ok(), "{:?}\n{}", back, text);
        let back = back.unwrap();
        prop_assert_eq!(back.to_file_text().ok(), Some(text.clone()), "{}", text);
        let _ = back.to_json_value();
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(info) = BackupInfo::load("20250101T000000", &bytes) {
                round_trips(&info)?;
            }
        }

        #[test]
        fn any_field_with_any_value_never_panics(
            field in prop::sample::select(Field::ALL.to_vec()),
            value in field_value(),
        ) {
            if let Ok(info) = BackupInfo::parse(&format!("{}={value}\n", field.name())) {
                round_trips(&info)?;
            }
        }

        #[test]
        fn mutated_real_files_never_panic_and_round_trip(text in mutated()) {
            if let Ok(info) = BackupInfo::parse(&text) {
                round_trips(&info)?;
            }
        }
    }

    #[test]
    fn real_files_round_trip() {
        for text in fixtures() {
            let info = BackupInfo::parse(&text).unwrap();
            round_trips(&info).unwrap();
        }
    }
}
