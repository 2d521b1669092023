//! barman.conf as Barman 3.20.1 reads it: where the file is found, how its INI text and
//! the included `configuration_files_directory` files merge, which value each server key
//! gets (server section, then `[barman]` for the keys Barman lets servers inherit, then
//! Barman's default), Barman's per-key parsers, and the checks that leave a server
//! disabled with messages in its `msg_list`.
//!
//! Nothing is printed here: every warning is returned, in Barman's words and order, as a
//! [`Warning`] saying whether Barman shows it (`WARNING: ...` on stderr, and logs it) or
//! only logs it. Errors that stop Barman are [`Error::Config`] holding the exact text
//! Barman ends with on stderr, or [`Error::InvalidInput`] for a file that cannot be read
//! or parsed (Barman prints `EXCEPTION: ...` and a traceback there; we give one line
//! naming the file and line).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::ini::{self, Options};
use crate::catalog::pyliteral::repr_str;
use crate::{Error, Result};

/// Where Barman looks, in order, when neither `-c` nor `BARMAN_CONFIG_FILE` names a file.
pub const DEFAULT_CONFIG_FILES: [&str; 3] = [
    "~/.barman.conf",
    "/etc/barman.conf",
    "/etc/barman/barman.conf",
];
pub const DEFAULT_USER: &str = "barman";
pub const DEFAULT_LOG_FORMAT: &str =
    "%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s";

/// A warning met while reading the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    /// The Python module whose logger records it (the `%(name)s` of Barman's log lines).
    pub logger: &'static str,
    /// Barman shows it as `WARNING: <message>` (and logs it); else it is only logged.
    pub shown: bool,
}

impl Warning {
    fn shown(logger: &'static str, message: String) -> Self {
        Warning {
            message,
            logger,
            shown: true,
        }
    }

    fn logged(logger: &'static str, message: String) -> Self {
        Warning {
            message,
            logger,
            shown: false,
        }
    }
}

/// The `[barman]` keys that are not server keys.
const GLOBAL_ONLY_KEYS: [&str; 8] = [
    "barman_home",
    "barman_lock_directory",
    "barman_user",
    "lock_directory_cleanup",
    "config_changes_queue",
    "log_file",
    "log_level",
    "configuration_files_directory",
];

/// Every key a server section may hold (`ServerConfig.KEYS`), in the order Barman resolves
/// them: that order decides the order of its warnings and which keys a default may name.
const SERVER_KEYS: &[&str] = &[
    "active",
    "archiver",
    "archiver_batch_size",
    "autogenerate_manifest",
    "aws_check_object_lock",
    "aws_encryption",
    "aws_read_timeout",
    "aws_await_snapshots_timeout",
    "aws_snapshot_lock_mode",
    "aws_snapshot_lock_duration",
    "aws_snapshot_lock_cool_off_period",
    "aws_snapshot_lock_expiration_date",
    "aws_profile",
    "aws_region",
    "aws_sse_kms_key_id",
    "aws_sse_customer_key",
    "azure_credential",
    "azure_resource_group",
    "azure_subscription_id",
    "backup_compression",
    "backup_compression_format",
    "backup_compression_level",
    "backup_compression_location",
    "backup_compression_workers",
    "backup_directory",
    "backup_method",
    "backup_options",
    "bandwidth_limit",
    "basebackup_retry_sleep",
    "basebackup_retry_times",
    "basebackups_directory",
    "check_timeout",
    "cloud_delete_batch_size",
    "cloud_staging_directory",
    "cloud_staging_max_size",
    "cloud_upload_max_archive_size",
    "cloud_upload_min_chunk_size",
    "cloud_wal_archive_parallel",
    "cloud_wal_restore_parallel",
    "cluster",
    "compression",
    "compression_level",
    "conninfo",
    "custom_compression_filter",
    "custom_decompression_filter",
    "custom_compression_magic",
    "description",
    "disabled",
    "encryption",
    "encryption_key_id",
    "encryption_passphrase_command",
    "errors_directory",
    "forward_config_path",
    "gcp_project",
    "gcp_zone",
    "immediate_checkpoint",
    "incoming_wals_directory",
    "keepalive_interval",
    "last_backup_maximum_age",
    "last_backup_minimum_size",
    "last_wal_maximum_age",
    "combine_mode",
    "local_staging_path",
    "max_incoming_wals_queue",
    "minimum_redundancy",
    "network_compression",
    "parallel_jobs",
    "parallel_jobs_start_batch_period",
    "parallel_jobs_start_batch_size",
    "path_prefix",
    "post_archive_retry_script",
    "post_archive_script",
    "post_backup_retry_script",
    "post_backup_script",
    "post_delete_script",
    "post_delete_retry_script",
    "post_recovery_retry_script",
    "post_recovery_script",
    "post_wal_delete_script",
    "post_wal_delete_retry_script",
    "pre_archive_retry_script",
    "pre_archive_script",
    "pre_backup_retry_script",
    "pre_backup_script",
    "pre_delete_script",
    "pre_delete_retry_script",
    "pre_recovery_retry_script",
    "pre_recovery_script",
    "pre_wal_delete_script",
    "pre_wal_delete_retry_script",
    "primary_checkpoint_timeout",
    "primary_conninfo",
    "primary_ssh_command",
    "recovery_options",
    "recovery_staging_path",
    "create_slot",
    "retention_policy",
    "retention_policy_mode",
    "reuse_backup",
    "slot_name",
    "snapshot_disks",
    "snapshot_gcp_project",
    "snapshot_instance",
    "snapshot_provider",
    "snapshot_zone",
    "ssh_command",
    "staging_path",
    "staging_location",
    "streaming_archiver",
    "streaming_archiver_batch_size",
    "streaming_archiver_name",
    "streaming_backup_name",
    "streaming_conninfo",
    "streaming_wals_directory",
    "tablespace_bandwidth_limit",
    "wal_conninfo",
    "wal_retention_policy",
    "wal_streaming_conninfo",
    "wals_directory",
    "warehousepg_dbid",
    "worm_mode",
    "xlogdb_directory",
];

/// The server keys a server inherits from `[barman]` (`ServerConfig.BARMAN_KEYS`). Barman's
/// list spells `keepalive_internval`, so `keepalive_interval` is not inherited.
const INHERITED_KEYS: &[&str] = &[
    "archiver",
    "archiver_batch_size",
    "autogenerate_manifest",
    "aws_check_object_lock",
    "aws_encryption",
    "aws_read_timeout",
    "aws_await_snapshots_timeout",
    "aws_snapshot_lock_mode",
    "aws_snapshot_lock_duration",
    "aws_snapshot_lock_cool_off_period",
    "aws_snapshot_lock_expiration_date",
    "aws_profile",
    "aws_region",
    "aws_sse_kms_key_id",
    "aws_sse_customer_key",
    "azure_credential",
    "azure_resource_group",
    "azure_subscription_id",
    "backup_compression",
    "backup_compression_format",
    "backup_compression_level",
    "backup_compression_location",
    "backup_compression_workers",
    "backup_method",
    "backup_options",
    "bandwidth_limit",
    "basebackup_retry_sleep",
    "basebackup_retry_times",
    "check_timeout",
    "cloud_delete_batch_size",
    "cloud_staging_directory",
    "cloud_staging_max_size",
    "cloud_wal_archive_parallel",
    "cloud_wal_restore_parallel",
    "compression",
    "compression_level",
    "configuration_files_directory",
    "create_slot",
    "custom_compression_filter",
    "custom_decompression_filter",
    "custom_compression_magic",
    "encryption",
    "encryption_key_id",
    "encryption_passphrase_command",
    "forward_config_path",
    "gcp_project",
    "immediate_checkpoint",
    "keepalive_internval",
    "last_backup_maximum_age",
    "last_backup_minimum_size",
    "last_wal_maximum_age",
    "combine_mode",
    "local_staging_path",
    "max_incoming_wals_queue",
    "minimum_redundancy",
    "network_compression",
    "parallel_jobs",
    "parallel_jobs_start_batch_period",
    "parallel_jobs_start_batch_size",
    "path_prefix",
    "post_archive_retry_script",
    "post_archive_script",
    "post_backup_retry_script",
    "post_backup_script",
    "post_delete_script",
    "post_delete_retry_script",
    "post_recovery_retry_script",
    "post_recovery_script",
    "post_wal_delete_script",
    "post_wal_delete_retry_script",
    "pre_archive_retry_script",
    "pre_archive_script",
    "pre_backup_retry_script",
    "pre_backup_script",
    "pre_delete_script",
    "pre_delete_retry_script",
    "pre_recovery_retry_script",
    "pre_recovery_script",
    "pre_wal_delete_script",
    "pre_wal_delete_retry_script",
    "primary_ssh_command",
    "recovery_options",
    "recovery_staging_path",
    "retention_policy",
    "retention_policy_mode",
    "reuse_backup",
    "slot_name",
    "snapshot_gcp_project",
    "snapshot_provider",
    "staging_path",
    "staging_location",
    "streaming_archiver",
    "streaming_archiver_batch_size",
    "streaming_archiver_name",
    "streaming_backup_name",
    "tablespace_bandwidth_limit",
    "wal_retention_policy",
    "warehousepg_dbid",
    "worm_mode",
    "xlogdb_directory",
];

/// Barman's defaults (`ServerConfig.DEFAULTS`); `%(key)s` names the server (`name`),
/// `barman_home` or a key resolved before.
const DEFAULTS: &[(&str, &str)] = &[
    ("active", "true"),
    ("archiver", "off"),
    ("archiver_batch_size", "0"),
    ("autogenerate_manifest", "false"),
    ("aws_check_object_lock", "off"),
    ("aws_await_snapshots_timeout", "3600"),
    ("backup_directory", "%(barman_home)s/%(name)s"),
    ("backup_method", "rsync"),
    ("backup_options", ""),
    ("basebackup_retry_sleep", "30"),
    ("basebackup_retry_times", "0"),
    ("basebackups_directory", "%(backup_directory)s/base"),
    ("check_timeout", "30"),
    ("cloud_staging_directory", "/tmp/barman/cloud-staging"),
    ("cloud_staging_max_size", "30Gi"),
    ("cloud_upload_max_archive_size", "100Gi"),
    ("cloud_wal_archive_parallel", "0"),
    ("cloud_wal_restore_parallel", "0"),
    ("cluster", "%(name)s"),
    ("compression_level", "medium"),
    ("disabled", "false"),
    ("encryption", "none"),
    ("errors_directory", "%(backup_directory)s/errors"),
    ("forward_config_path", "false"),
    ("immediate_checkpoint", "false"),
    ("incoming_wals_directory", "%(backup_directory)s/incoming"),
    ("keepalive_interval", "60"),
    ("combine_mode", "copy"),
    ("minimum_redundancy", "0"),
    ("network_compression", "false"),
    ("parallel_jobs", "1"),
    ("parallel_jobs_start_batch_period", "1"),
    ("parallel_jobs_start_batch_size", "10"),
    ("primary_checkpoint_timeout", "0"),
    ("recovery_options", ""),
    ("create_slot", "manual"),
    ("retention_policy_mode", "auto"),
    ("staging_location", "local"),
    ("streaming_archiver", "off"),
    ("streaming_archiver_batch_size", "0"),
    ("streaming_archiver_name", "barman_receive_wal"),
    ("streaming_backup_name", "barman_streaming_backup"),
    ("streaming_conninfo", "%(conninfo)s"),
    ("streaming_wals_directory", "%(backup_directory)s/streaming"),
    ("wal_retention_policy", "main"),
    ("wals_directory", "%(backup_directory)s/wals"),
    ("worm_mode", "off"),
    ("xlogdb_directory", "%(wals_directory)s"),
];

const WAL_COMPRESSIONS: [&str; 10] = [
    "gzip", "bzip2", "pygzip", "pybzip2", "pigz", "xz", "zstd", "lz4", "snappy", "custom",
];

/// A parsed key value, typed as Barman's parser for the key types it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Bool(bool),
    Int(i64),
    /// `N day|week|month|hour[s]` (a month is 31 days).
    Interval(Duration),
    /// A size with an SI or IEC suffix, in bytes.
    Size(u64),
    /// `snapshot_disks`: the comma-separated names, untrimmed.
    List(Vec<String>),
    /// `backup_options`, `recovery_options`: a set, sorted.
    Set(Vec<String>),
}

/// How Barman parses a key's text (`ServerConfig.PARSERS`); keys not listed stay text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    Text,
    Bool,
    Int,
    Interval,
    Size,
    BackupOptions,
    RecoveryOptions,
    Choice(&'static [&'static str], ChoiceStyle),
    Compression,
    CompressionLevel,
    Encryption,
    AbsolutePath,
    SlotName,
    SnapshotDisks,
    DirectoryOrUrl,
}

/// The wording of the error of a key with a fixed set of values, which differs by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChoiceStyle {
    /// `Invalid value (use 'a', 'b' or 'c')`, value lower-cased.
    UseOr,
    /// `Invalid value '<v>'(must be one in: ['a', 'b'])`, value lower-cased.
    MustBeList,
    /// `Invalid value (must be one in: 'a', 'b')`, value lower-cased.
    MustBeQuoted,
    /// `Invalid value (must be either `a` or `b`)`, value lower-cased.
    Either,
    /// `Invalid value: <v> (options are: a, b)`, value lower-cased.
    OptionsAre,
    /// `Invalid value: <v> (options are: a, b)`, value as written.
    OptionsAreExact,
    /// `Invalid value '<v>' (must be one in: ['a', 'b'])`, value as written.
    MustBeListExact,
}

fn parser_of(key: &str) -> Parser {
    use ChoiceStyle::*;
    use Parser::*;
    match key {
        "active"
        | "archiver"
        | "autogenerate_manifest"
        | "aws_check_object_lock"
        | "disabled"
        | "forward_config_path"
        | "immediate_checkpoint"
        | "network_compression"
        | "streaming_archiver"
        | "worm_mode" => Bool,
        "archiver_batch_size"
        | "aws_read_timeout"
        | "aws_await_snapshots_timeout"
        | "aws_snapshot_lock_duration"
        | "aws_snapshot_lock_cool_off_period"
        | "backup_compression_level"
        | "backup_compression_workers"
        | "basebackup_retry_sleep"
        | "basebackup_retry_times"
        | "check_timeout"
        | "cloud_delete_batch_size"
        | "cloud_wal_archive_parallel"
        | "cloud_wal_restore_parallel"
        | "keepalive_interval"
        | "max_incoming_wals_queue"
        | "parallel_jobs"
        | "parallel_jobs_start_batch_period"
        | "parallel_jobs_start_batch_size"
        | "primary_checkpoint_timeout"
        | "streaming_archiver_batch_size"
        | "warehousepg_dbid" => Int,
        "last_backup_maximum_age" | "last_wal_maximum_age" => Interval,
        "cloud_staging_max_size"
        | "cloud_upload_max_archive_size"
        | "cloud_upload_min_chunk_size"
        | "last_backup_minimum_size" => Size,
        "backup_options" => BackupOptions,
        "recovery_options" => RecoveryOptions,
        "aws_encryption" => Choice(&["AES256", "aws:kms"], MustBeListExact),
        "backup_compression" => Choice(&["gzip", "lz4", "zstd", "none"], MustBeList),
        "backup_compression_format" => Choice(&["plain", "tar"], Either),
        "backup_compression_location" => Choice(&["client", "server"], Either),
        "backup_method" => Choice(
            &[
                "rsync",
                "postgres",
                "local-rsync",
                "snapshot",
                "local-to-cloud",
            ],
            MustBeQuoted,
        ),
        "reuse_backup" => Choice(&["copy", "link", "off"], UseOr),
        "create_slot" => Choice(&["manual", "auto"], UseOr),
        "combine_mode" => Choice(&["copy", "link", "clone", "copy-file-range"], OptionsAre),
        "staging_location" => Choice(&["local", "remote"], OptionsAreExact),
        "compression" => Compression,
        "compression_level" => CompressionLevel,
        "encryption" => Encryption,
        "cloud_staging_directory"
        | "local_staging_path"
        | "recovery_staging_path"
        | "staging_path" => AbsolutePath,
        "slot_name" => SlotName,
        "snapshot_disks" => SnapshotDisks,
        "basebackups_directory" | "wals_directory" => DirectoryOrUrl,
        _ => Text,
    }
}

fn py_list_repr(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|i| repr_str(i)).collect();
    format!("[{}]", inner.join(", "))
}

/// Python's `int(text)`: surrounding whitespace, a sign, `_` between digits.
pub(crate) fn python_int(text: &str) -> std::result::Result<i64, String> {
    let invalid = || format!("invalid literal for int() with base 10: {}", repr_str(text));
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return Err(invalid());
    }
    let value: i64 = digits.replace('_', "").parse().map_err(|_| invalid())?;
    Ok(if negative { -value } else { value })
}

/// `parse_boolean`.
pub fn parse_boolean(text: &str) -> std::result::Result<bool, String> {
    match text.to_lowercase().as_str() {
        "true" | "t" | "yes" | "1" | "on" => Ok(true),
        "false" | "f" | "no" | "0" | "off" => Ok(false),
        _ => Err(
            "Invalid boolean representation (must be one in: true|t|yes|1|on | \
                  false|f|no|0|off)"
                .to_string(),
        ),
    }
}

fn parse_interval(text: &str) -> std::result::Result<Option<Duration>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || format!("Invalid value for a time interval {text}");
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    if digits_end == 0 || !trimmed[digits_end..].starts_with(char::is_whitespace) {
        return Err(invalid());
    }
    let count: u64 = trimmed[..digits_end].parse().map_err(|_| invalid())?;
    let unit = trimmed[digits_end..].trim_start().to_lowercase();
    let unit = unit.strip_suffix('s').unwrap_or(&unit);
    let hours = match unit {
        "hour" => 1,
        "day" => 24,
        "week" => 24 * 7,
        "month" => 24 * 31,
        _ => return Err(invalid()),
    };
    Ok(Some(Duration::from_secs(count * hours * 3600)))
}

fn parse_size(text: &str) -> std::result::Result<Option<u64>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || format!("Invalid value for a number {text}");
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err(invalid());
    }
    let number: u64 = text[..digits_end].parse().map_err(|_| invalid())?;
    let suffix = text[digits_end..].trim();
    let factor: u64 = match suffix {
        "" => 1,
        "k" => 1000,
        "Ki" => 1 << 10,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        _ => return Err(invalid()),
    };
    number.checked_mul(factor).map(Some).ok_or_else(invalid)
}

/// `CsvOption`: comma-separated values from `allowed`, sorted, with `conflicts` pairs
/// refused together.
fn parse_csv_set(
    text: &str,
    key: &str,
    source: &str,
    allowed: &[&str],
    conflicts: &[(&str, &str)],
) -> std::result::Result<Vec<String>, String> {
    let mut set: Vec<String> = Vec::new();
    if text.is_empty() {
        return Ok(set);
    }
    let mut items: Vec<&str> = text.split(',').collect();
    items.sort_unstable();
    for item in items {
        let item = item.trim().to_lowercase();
        if !allowed.contains(&item.as_str()) {
            return Err(format!(
                "Invalid configuration value '{item}' for key {key} in {source}: Unknown option"
            ));
        }
        if let Some((_, other)) = conflicts.iter().find(|(a, _)| *a == item)
            && set.iter().any(|s| s == other)
        {
            return Err(format!(
                "Invalid configuration value '{item}' for key {key} in {source}: cannot \
                 contain both '{item}' and '{other}'.Configuration directive ignored."
            ));
        }
        if !set.contains(&item) {
            set.push(item);
        }
    }
    set.sort();
    Ok(set)
}

fn parse_choice(
    text: &str,
    values: &[&str],
    style: ChoiceStyle,
) -> std::result::Result<String, String> {
    use ChoiceStyle::*;
    let exact = matches!(style, OptionsAreExact | MustBeListExact);
    let candidate = if exact {
        text.to_string()
    } else {
        text.to_lowercase()
    };
    if values.contains(&candidate.as_str()) {
        return Ok(candidate);
    }
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    Err(match style {
        UseOr => {
            let (last, first) = values.split_last().expect("choices");
            format!("Invalid value (use '{}' or '{last}')", first.join("', '"))
        }
        MustBeList => format!(
            "Invalid value '{text}'(must be one in: {})",
            py_list_repr(values)
        ),
        MustBeListExact => format!(
            "Invalid value '{text}' (must be one in: {})",
            py_list_repr(values)
        ),
        MustBeQuoted => format!("Invalid value (must be one in: {})", quoted.join(", ")),
        Either => format!(
            "Invalid value (must be either `{}` or `{}`)",
            values[0], values[1]
        ),
        OptionsAre => format!(
            "Invalid value: {candidate} (options are: {})",
            values.join(", ")
        ),
        OptionsAreExact => format!("Invalid value: {text} (options are: {})", values.join(", ")),
    })
}

/// Runs `key`'s parser on `text`: `Ok(None)` where Barman's parser gives `None`.
fn parse_value(key: &str, source: &str, text: &str) -> std::result::Result<Option<Value>, String> {
    Ok(Some(match parser_of(key) {
        Parser::Text => Value::Text(text.to_string()),
        Parser::Bool => Value::Bool(parse_boolean(text)?),
        Parser::Int => Value::Int(python_int(text)?),
        Parser::Interval => return Ok(parse_interval(text)?.map(Value::Interval)),
        Parser::Size => return Ok(parse_size(text)?.map(Value::Size)),
        Parser::BackupOptions => Value::Set(parse_csv_set(
            text,
            key,
            source,
            &[
                "exclusive_backup",
                "concurrent_backup",
                "external_configuration",
            ],
            &[
                ("exclusive_backup", "concurrent_backup"),
                ("concurrent_backup", "exclusive_backup"),
            ],
        )?),
        Parser::RecoveryOptions => Value::Set(parse_csv_set(
            text,
            key,
            source,
            &["get-wal", "delta-restore"],
            &[],
        )?),
        Parser::Choice(values, style) => Value::Text(parse_choice(text, values, style)?),
        Parser::Compression => {
            let lower = text.to_lowercase();
            if !lower.is_empty() && !WAL_COMPRESSIONS.contains(&lower.as_str()) {
                return Err(format!(
                    "Invalid value: '{lower}' (must be one in: {})",
                    WAL_COMPRESSIONS.join(", ")
                ));
            }
            Value::Text(lower)
        }
        Parser::CompressionLevel => {
            let lower = text.to_lowercase();
            let unsigned = lower.trim_start_matches('-');
            if !unsigned.is_empty() && unsigned.chars().all(|c| c.is_ascii_digit()) {
                Value::Int(python_int(&lower)?)
            } else if lower.is_empty() || ["low", "medium", "high"].contains(&lower.as_str()) {
                Value::Text(lower)
            } else {
                return Err(format!(
                    "Invalid value: '{lower}' (must be one in [low, medium, high] or an \
                     acceptable integer)"
                ));
            }
        }
        Parser::Encryption => {
            let lower = text.to_lowercase();
            if lower == "none" {
                return Ok(None);
            }
            if lower != "gpg" {
                return Err(format!(
                    "Invalid encryption value '{lower}'. Allowed values are: none, gpg."
                ));
            }
            Value::Text(lower)
        }
        Parser::AbsolutePath => {
            if !text.starts_with('/') {
                return Err(format!(
                    "Invalid value : '{text}' (must be an absolute path)"
                ));
            }
            Value::Text(text.to_string())
        }
        Parser::SlotName => {
            let lower = text.to_lowercase();
            if lower.is_empty()
                || !lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(
                    "Replication slot names may only contain lower case letters, \
                            numbers, and the underscore character."
                        .to_string(),
                );
            }
            Value::Text(lower)
        }
        Parser::SnapshotDisks => {
            let disks: Vec<&str> = text.split(',').collect();
            if disks.iter().any(|d| d.is_empty()) {
                return Err(py_list_repr(&disks));
            }
            Value::List(disks.into_iter().map(str::to_string).collect())
        }
        Parser::DirectoryOrUrl => {
            if text.contains("://") && !is_cloud_url(text) {
                return Err(
                    "The URL is not compatible with any of the supported cloud providers"
                        .to_string(),
                );
            }
            Value::Text(text.to_string())
        }
    }))
}

/// The URL forms Barman recognises as object storage (`recognize_cloud_provider`).
fn is_cloud_url(url: &str) -> bool {
    let lower = url.to_lowercase();
    lower.starts_with("s3://")
        || lower.starts_with("gs://")
        || (lower.starts_with("https://") && lower.contains(".blob.core.windows.net"))
}

/// `Config.get`'s unquoting: a value wrapped in matching quotes, on one line, loses them.
fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
        && !value.contains('\n')
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// `os.path.expanduser` for `~` and `~/...` (through `HOME`).
fn expand_user(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            let mut expanded = home.into_string().unwrap_or_default();
            if expanded.ends_with('/') && rest.starts_with('/') {
                expanded.pop();
            }
            PathBuf::from(expanded + rest)
        }
        _ => PathBuf::from(path),
    }
}

/// `os.path.realpath`: absolute, `.`/`..` resolved, symbolic links followed where they
/// exist; missing components are kept as written.
fn real_path(path: &str) -> PathBuf {
    fn resolve(path: &Path, out: &mut PathBuf, depth: usize) {
        for component in path.components() {
            match component {
                Component::RootDir => *out = PathBuf::from("/"),
                Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => {
                    out.push(name);
                    if depth < 40
                        && let Ok(target) = std::fs::read_link(&*out)
                    {
                        out.pop();
                        resolve(&target, out, depth + 1);
                    }
                }
            }
        }
    }
    let path = Path::new(path);
    let mut out = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
    };
    resolve(path, &mut out, 0);
    out
}

/// The merged configuration: sections in order of first appearance, each key's latest
/// value (already interpolated against its own file).
#[derive(Debug, Clone, Default)]
struct Merged {
    sections: Vec<(String, Options)>,
}

impl Merged {
    fn section(&self, name: &str) -> Option<&Options> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, o)| o)
    }

    /// Reads `path` as Barman's `ConfigMapping.read_config` does. `Ok(false)`: it could not
    /// be opened (Python skips such files without a word).
    fn read_file(&mut self, path: &Path) -> Result<bool> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(_) => return Ok(false),
        };
        let shown = path.display();
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "Configuration file '{shown}' is not valid UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let raw = ini::parse(&text)
            .map_err(|e| Error::InvalidInput(format!("Configuration file '{shown}', {e}")))?;
        let resolved = raw
            .resolve()
            .map_err(|e| Error::InvalidInput(format!("Configuration file '{shown}': {e}")))?;
        for (name, options) in resolved {
            let index = match self.sections.iter().position(|(n, _)| *n == name) {
                Some(index) => index,
                None => {
                    self.sections.push((name, Options::default()));
                    self.sections.len() - 1
                }
            };
            for (key, value) in options.iter() {
                self.sections[index].1.set(key, value.to_string());
            }
        }
        Ok(true)
    }

    /// `Config.get`: the value of `option` in `section`, interpolated once more against
    /// `vars` and the section; `None` as written becomes `none_value`; quotes removed.
    fn get(
        &self,
        section: &str,
        option: &str,
        vars: &dyn Fn(&str) -> Option<String>,
        none_value: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(options) = self.section(section) else {
            return Ok(None);
        };
        let Some(raw) = vars(option).or_else(|| options.get(option).map(str::to_string)) else {
            return Ok(None);
        };
        let lookup = |key: &str| vars(key).or_else(|| options.get(key).map(str::to_string));
        let value = ini::interpolate(section, option, &raw, &lookup)
            .map_err(|e| Error::InvalidInput(format!("Configuration error: {e}")))?;
        if value == "None" {
            return Ok(none_value.map(str::to_string));
        }
        Ok(Some(unquote(&value).to_string()))
    }

    /// `items(section)`: every key with its value interpolated against the section.
    fn items(&self, section: &str) -> Result<Vec<(String, String)>> {
        let Some(options) = self.section(section) else {
            return Ok(Vec::new());
        };
        let lookup = |key: &str| options.get(key).map(str::to_string);
        options
            .iter()
            .map(|(k, v)| {
                ini::interpolate(section, k, v, &lookup)
                    .map(|value| (k.to_string(), value))
                    .map_err(|e| Error::InvalidInput(format!("Configuration error: {e}")))
            })
            .collect()
    }
}

fn no_vars(_: &str) -> Option<String> {
    None
}

/// The configuration file chosen and the `[barman]` settings read from it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main configuration file.
    pub config_file: PathBuf,
    pub barman_home: Option<String>,
    pub barman_user: String,
    /// Where lock files go (`barman_home` unless set).
    pub barman_lock_directory: Option<String>,
    pub lock_directory_cleanup: bool,
    pub config_changes_queue: String,
    pub log_file: Option<String>,
    pub log_format: String,
    /// As written (a level name or a number); see [`parse_log_level`].
    pub log_level: String,
    merged: Merged,
    /// `[barman]` as read from the main file: included files may not change it.
    global_items: Vec<(String, String)>,
}

/// `logging` level numbers of the names Python knows, or any integer; `None` otherwise.
pub fn parse_log_level(text: &str) -> Option<i64> {
    if let Ok(number) = python_int(text) {
        return Some(number);
    }
    Some(match text.to_uppercase().as_str() {
        "CRITICAL" | "FATAL" => 50,
        "ERROR" => 40,
        "WARNING" | "WARN" => 30,
        "INFO" => 20,
        "DEBUG" => 10,
        "NOTSET" => 0,
        _ => return None,
    })
}

impl Config {
    /// [`Config::load`] with `cli_file` (`-c`), or else the file `BARMAN_CONFIG_FILE`
    /// names when it is set and not empty.
    pub fn load_for_command(cli_file: Option<&Path>) -> Result<Config> {
        let from_env = std::env::var_os("BARMAN_CONFIG_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Config::load(cli_file.or(from_env.as_deref()))
    }

    /// Finds and reads the configuration as Barman does: `file` (from `-c`, or else the
    /// `BARMAN_CONFIG_FILE` environment variable) must exist; without one, the first of
    /// [`DEFAULT_CONFIG_FILES`] that exists and can be read.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut merged = Merged::default();
        let config_file = match file {
            Some(path) => {
                if !path.exists() {
                    return Err(Error::Config(format!(
                        "Configuration file '{}' does not exist",
                        path.display()
                    )));
                }
                let expanded = expand_user(&path.to_string_lossy());
                merged.read_file(&expanded)?;
                path.to_path_buf()
            }
            None => {
                let mut found = None;
                for candidate in DEFAULT_CONFIG_FILES {
                    let path = expand_user(candidate);
                    if path.exists() && merged.read_file(&path)? {
                        found = Some(path);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    Error::Config(
                        "Could not find any configuration file at default locations.\n\
                         Check Barman's documentation for more help."
                            .to_string(),
                    )
                })?
            }
        };
        Self::from_merged(config_file, merged)
    }

    fn from_merged(config_file: PathBuf, merged: Merged) -> Result<Config> {
        if merged.section("barman").is_none() {
            return Err(Error::InvalidInput(format!(
                "No section: 'barman' (configuration file '{}')",
                config_file.display()
            )));
        }
        let get = |key: &str| merged.get("barman", key, &no_vars, None);
        let barman_home = get("barman_home")?;
        let config_changes_queue = get("config_changes_queue")?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "{}/cfg_changes.queue",
                    barman_home.as_deref().unwrap_or("None")
                )
            });
        let barman_lock_directory = get("barman_lock_directory")?
            .filter(|v| !v.is_empty())
            .or_else(|| barman_home.clone());
        let cleanup = get("lock_directory_cleanup")?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "true".to_string());
        let lock_directory_cleanup = parse_boolean(&cleanup).map_err(Error::InvalidInput)?;
        let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(Config {
            barman_user: non_empty(get("barman_user")?).unwrap_or_else(|| DEFAULT_USER.into()),
            log_file: get("log_file")?,
            log_format: non_empty(get("log_format")?).unwrap_or_else(|| DEFAULT_LOG_FORMAT.into()),
            log_level: non_empty(get("log_level")?).unwrap_or_else(|| "INFO".into()),
            global_items: merged.items("barman")?,
            barman_home,
            barman_lock_directory,
            lock_directory_cleanup,
            config_changes_queue,
            config_file,
            merged,
        })
    }

    /// Parses `text` as the main configuration file (tests and tools).
    pub fn from_text(config_file: &Path, text: &str) -> Result<Config> {
        let mut merged = Merged::default();
        let raw = ini::parse(text).map_err(|e| {
            Error::InvalidInput(format!(
                "Configuration file '{}', {e}",
                config_file.display()
            ))
        })?;
        for (name, options) in raw.resolve().map_err(Error::InvalidInput)? {
            merged.sections.push((name, options));
        }
        Self::from_merged(config_file.to_path_buf(), merged)
    }

    /// A global setting as Barman reads it (`None` when absent or `None`).
    pub fn global(&self, key: &str) -> Result<Option<String>> {
        self.merged.get("barman", key, &no_vars, None)
    }

    /// The section names in the order Barman sees them (`barman` included).
    pub fn section_names(&self) -> Vec<&str> {
        self.merged
            .sections
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Reads the `*.conf` files of `configuration_files_directory` (sorted by name), then
    /// `<barman_home>/.barman.auto.conf` if it exists. A file that changes `[barman]`
    /// stops everything with Barman's `FATAL` message.
    pub fn load_included_files(&mut self, warnings: &mut Vec<Warning>) -> Result<()> {
        if let Some(directory) = self.global("configuration_files_directory")?
            && !directory.is_empty()
        {
            let expanded = expand_user(&directory);
            if !expanded.is_dir() {
                warnings.push(Warning::logged(
                    "barman.config",
                    format!(
                        "Ignoring the \"configuration_files_directory\" option as \"{directory}\" is not a directory"
                    ),
                ));
            } else {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&expanded)
                    .map_err(|e| Error::io(&expanded, e))?
                    .filter_map(|entry| entry.ok())
                    .filter(|entry| {
                        let name = entry.file_name();
                        let name = name.to_string_lossy();
                        name.ends_with(".conf") && !name.starts_with('.')
                    })
                    .map(|entry| entry.path())
                    .collect();
                files.sort();
                for file in files {
                    self.load_config_file(&file, warnings)?;
                }
            }
        }
        let home = self.global("barman_home")?;
        let auto = PathBuf::from(format!(
            "{}/.barman.auto.conf",
            home.as_deref().unwrap_or("None")
        ));
        if auto.exists() {
            self.load_config_file(&auto, warnings)?;
        }
        Ok(())
    }

    fn load_config_file(&mut self, path: &Path, warnings: &mut Vec<Warning>) -> Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !path.exists() {
            warnings.push(Warning::logged(
                "barman.config",
                format!("Discarding configuration file: {name} (not found)"),
            ));
        } else if !path.is_file() {
            warnings.push(Warning::logged(
                "barman.config",
                format!("Discarding configuration file: {name} (not a file)"),
            ));
        } else {
            self.merged.read_file(path)?;
            let mut now = self.merged.items("barman")?;
            let mut before = self.global_items.clone();
            now.sort();
            before.sort();
            if now != before {
                return Err(Error::Config(format!(
                    "FATAL: the configuration file {name} contains a not empty [barman] section"
                )));
            }
        }
        Ok(())
    }

    /// `validate_global_config`: `barman_home` is required; keys Barman does not know in
    /// `[barman]` are warned about.
    pub fn validate_global(&self, warnings: &mut Vec<Warning>) -> Result<()> {
        if !self.global_items.iter().any(|(k, _)| k == "barman_home") {
            return Err(Error::Config(
                "ERROR: Parameter \"barman_home\" is required in [barman] section.\n\
                 Your configuration is missing required parameters. Exiting."
                    .to_string(),
            ));
        }
        for (key, _) in &self.global_items {
            if !GLOBAL_ONLY_KEYS.contains(&key.as_str()) && !SERVER_KEYS.contains(&key.as_str()) {
                warnings.push(unknown_key(key, "barman"));
            }
        }
        Ok(())
    }

    /// Every server section's configuration, in section order, as Barman builds them
    /// before running a command: key warnings, then conflicting paths (those within a
    /// server disable it; those across servers are returned in `errors`, which make
    /// Barman's server commands stop with exit 1). Sections with `model = true` are
    /// models (listed by name, not validated). A section named `all` stops everything.
    pub fn server_configs(&self, warnings: &mut Vec<Warning>) -> Result<ServerConfigs> {
        let mut servers = Vec::new();
        let mut models = Vec::new();
        for name in self.section_names() {
            if name == "barman" {
                continue;
            }
            if name == "all" {
                return Err(Error::Config(format!(
                    "FATAL: the reserved word '{name}' is not allowed as server name.Please rename it."
                )));
            }
            let model = self.merged.get(name, "model", &no_vars, None)?;
            if let Some(model) = model
                && parse_boolean(&model).map_err(Error::InvalidInput)?
            {
                models.push(name.to_string());
                continue;
            }
            servers.push(ServerConfig::new(self, name, warnings)?);
        }
        let errors = check_conflicting_paths(&mut servers);
        Ok(ServerConfigs {
            servers,
            models,
            errors,
        })
    }
}

fn unknown_key(key: &str, section: &str) -> Warning {
    Warning::shown(
        "barman.config",
        format!("Invalid configuration option \"{key}\" in [{section}] section."),
    )
}

/// What [`Config::server_configs`] finds.
#[derive(Debug, Clone)]
pub struct ServerConfigs {
    pub servers: Vec<ServerConfig>,
    pub models: Vec<String>,
    /// Paths shared by two servers: Barman reports each as an error and stops.
    pub errors: Vec<String>,
}

fn check_conflicting_paths(servers: &mut [ServerConfig]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut seen: BTreeMap<PathBuf, (&'static str, String)> = BTreeMap::new();
    let mut order: Vec<usize> = (0..servers.len()).collect();
    order.sort_by(|a, b| servers[*a].name.cmp(&servers[*b].name));
    for index in order {
        let server = &mut servers[index];
        let mut paths: Vec<(&'static str, String)> = [
            ("backup_directory", Some(server.backup_directory.clone())),
            (
                "basebackups_directory",
                server.basebackups_directory.clone(),
            ),
            ("errors_directory", server.errors_directory.clone()),
            (
                "incoming_wals_directory",
                server.incoming_wals_directory.clone(),
            ),
            (
                "streaming_wals_directory",
                server.streaming_wals_directory.clone(),
            ),
            ("wals_directory", server.wals_directory.clone()),
        ]
        .into_iter()
        .filter_map(|(label, path)| path.map(|p| (label, p)))
        .collect();
        paths.sort();
        for (label, path) in paths {
            if path.contains("://") {
                continue;
            }
            let real = real_path(&path);
            let symlink = if real == Path::new(&path) {
                String::new()
            } else {
                format!(" (symlink to: {})", real.display())
            };
            match seen.get(&real) {
                None => {
                    seen.insert(real, (label, server.name.clone()));
                }
                Some((other_label, other_server)) if *other_server == server.name => {
                    server.msg_list.push(format!(
                        "Conflicting path: {label}={path}{symlink} conflicts with \
                         '{other_label}' for server '{other_server}'"
                    ));
                    server.disabled = true;
                }
                Some((other_label, other_server)) => errors.push(format!(
                    "Conflicting path: {label}={path}{symlink} for server '{}' conflicts \
                     with '{other_label}' for server '{other_server}'",
                    server.name
                )),
            }
        }
    }
    errors
}

/// One server's effective configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    /// Why the server is disabled, in Barman's words and order.
    pub msg_list: Vec<String>,
    pub disabled: bool,
    /// `primary_ssh_command` is set: the server copies from another Barman.
    pub passive_node: bool,
    pub barman_home: Option<String>,
    pub barman_lock_directory: Option<String>,
    pub description: Option<String>,
    pub active: bool,
    pub conninfo: Option<String>,
    pub streaming_conninfo: Option<String>,
    pub primary_conninfo: Option<String>,
    pub ssh_command: Option<String>,
    pub primary_ssh_command: Option<String>,
    pub backup_method: String,
    /// `concurrent_backup`, `exclusive_backup`, `external_configuration` (sorted).
    pub backup_options: Vec<String>,
    pub archiver: bool,
    pub archiver_batch_size: i64,
    pub streaming_archiver: bool,
    pub streaming_archiver_batch_size: i64,
    pub streaming_archiver_name: Option<String>,
    pub slot_name: Option<String>,
    pub create_slot: Option<String>,
    pub path_prefix: Option<String>,
    pub backup_directory: String,
    pub basebackups_directory: Option<String>,
    pub wals_directory: Option<String>,
    pub xlogdb_directory: Option<String>,
    pub incoming_wals_directory: Option<String>,
    pub streaming_wals_directory: Option<String>,
    pub errors_directory: Option<String>,
    pub compression: Option<String>,
    pub compression_level: Option<Value>,
    pub retention_policy: Option<String>,
    pub retention_policy_mode: Option<String>,
    pub wal_retention_policy: Option<String>,
    /// As written; [`ServerConfig::initialise`] makes it a number (Barman: int, fallback 0).
    pub minimum_redundancy: i64,
    pub last_backup_maximum_age: Option<Duration>,
    pub last_backup_minimum_size: Option<u64>,
    pub last_wal_maximum_age: Option<Duration>,
    pub max_incoming_wals_queue: Option<i64>,
    pub check_timeout: i64,
    /// `get-wal`, `delta-restore` (sorted).
    pub recovery_options: Vec<String>,
    /// Hook scripts that are set, by key (`pre_backup_script`...).
    pub hooks: BTreeMap<String, String>,
    pub snapshot_provider: Option<String>,
    pub snapshot_instance: Option<String>,
    pub snapshot_disks: Option<Vec<String>>,
    /// `gcp_project`, or the deprecated `snapshot_gcp_project`.
    pub gcp_project: Option<String>,
    /// `gcp_zone`, or the deprecated `snapshot_zone`.
    pub gcp_zone: Option<String>,
    pub azure_subscription_id: Option<String>,
    pub azure_resource_group: Option<String>,
    pub azure_credential: Option<String>,
    pub aws_profile: Option<String>,
    pub aws_region: Option<String>,
    pub aws_await_snapshots_timeout: i64,
    pub aws_snapshot_lock_mode: Option<String>,
    pub aws_snapshot_lock_duration: Option<i64>,
    pub aws_snapshot_lock_cool_off_period: Option<i64>,
    pub aws_snapshot_lock_expiration_date: Option<String>,
    pub keepalive_interval: i64,
    /// Every key with a value, parsed.
    values: BTreeMap<&'static str, Value>,
    /// Every key with a value, as the text that gave it (after interpolation and quotes).
    raw: BTreeMap<&'static str, String>,
}

impl ServerConfig {
    fn new(config: &Config, name: &str, warnings: &mut Vec<Warning>) -> Result<ServerConfig> {
        for (key, _) in config.merged.items(name)? {
            if !SERVER_KEYS.contains(&key.as_str()) {
                warnings.push(unknown_key(&key, name));
            }
        }
        // What `%(key)s` may name, as Barman's `ServerConfig.__dict__` when it resolves.
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        known.insert("name".into(), name.into());
        if let Some(home) = &config.barman_home {
            known.insert("barman_home".into(), home.clone());
        }
        if let Some(lock) = &config.barman_lock_directory {
            known.insert("barman_lock_directory".into(), lock.clone());
        }
        known.insert(
            "config_changes_queue".into(),
            config.config_changes_queue.clone(),
        );
        let mut values = BTreeMap::new();
        let mut raw = BTreeMap::new();
        for &key in SERVER_KEYS {
            let mut value: Option<Value> = None;
            let mut text: Option<String> = None;
            let vars = |k: &str| known.get(k).cloned();
            if key != "disabled" {
                let source = format!("[{name}] section");
                let new = config.merged.get(name, key, &vars, Some(""))?;
                invoke_parser(key, &source, new, &mut value, &mut text, warnings);
                if value.is_none() && INHERITED_KEYS.contains(&key) {
                    let new = config.merged.get("barman", key, &vars, Some(""))?;
                    invoke_parser(
                        key,
                        "[barman] section",
                        new,
                        &mut value,
                        &mut text,
                        warnings,
                    );
                }
            }
            if value.is_none()
                && let Some((_, default)) = DEFAULTS.iter().find(|(k, _)| *k == key)
            {
                let new = percent_format(default, &|k| {
                    known.get(k).cloned().unwrap_or_else(|| "None".into())
                });
                invoke_parser(key, "DEFAULTS", Some(new), &mut value, &mut text, warnings);
            }
            if matches!(&value, Some(Value::Text(t)) if t.is_empty() || t == "None") {
                value = None;
            }
            if let Some(value) = value {
                if let Value::Text(t) = &value {
                    known.insert(key.to_string(), t.clone());
                }
                values.insert(key, value);
                raw.insert(key, text.unwrap_or_default());
            }
        }
        Ok(Self::from_values(config, name, values, raw))
    }

    fn from_values(
        config: &Config,
        name: &str,
        values: BTreeMap<&'static str, Value>,
        raw: BTreeMap<&'static str, String>,
    ) -> ServerConfig {
        let text = |key: &str| match values.get(key) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        };
        let flag = |key: &str| matches!(values.get(key), Some(Value::Bool(true)));
        let int = |key: &str| match values.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        };
        let interval = |key: &str| match values.get(key) {
            Some(Value::Interval(d)) => Some(*d),
            _ => None,
        };
        let set = |key: &str| match values.get(key) {
            Some(Value::Set(s)) => s.clone(),
            _ => Vec::new(),
        };
        let hooks = values
            .iter()
            .filter(|(k, _)| k.ends_with("_script"))
            .filter_map(|(k, v)| match v {
                Value::Text(t) => Some((k.to_string(), t.clone())),
                _ => None,
            })
            .collect();
        ServerConfig {
            name: name.to_string(),
            msg_list: Vec::new(),
            disabled: flag("disabled"),
            passive_node: text("primary_ssh_command").is_some(),
            barman_home: config.barman_home.clone(),
            barman_lock_directory: config.barman_lock_directory.clone(),
            description: text("description"),
            active: flag("active"),
            conninfo: text("conninfo"),
            streaming_conninfo: text("streaming_conninfo"),
            primary_conninfo: text("primary_conninfo"),
            ssh_command: text("ssh_command"),
            primary_ssh_command: text("primary_ssh_command"),
            backup_method: text("backup_method").unwrap_or_else(|| "rsync".into()),
            backup_options: set("backup_options"),
            archiver: flag("archiver"),
            archiver_batch_size: int("archiver_batch_size").unwrap_or(0),
            streaming_archiver: flag("streaming_archiver"),
            streaming_archiver_batch_size: int("streaming_archiver_batch_size").unwrap_or(0),
            streaming_archiver_name: text("streaming_archiver_name"),
            slot_name: text("slot_name"),
            create_slot: text("create_slot"),
            path_prefix: text("path_prefix"),
            backup_directory: text("backup_directory").unwrap_or_default(),
            basebackups_directory: text("basebackups_directory"),
            wals_directory: text("wals_directory"),
            xlogdb_directory: text("xlogdb_directory"),
            incoming_wals_directory: text("incoming_wals_directory"),
            streaming_wals_directory: text("streaming_wals_directory"),
            errors_directory: text("errors_directory"),
            compression: text("compression"),
            compression_level: values.get("compression_level").cloned(),
            retention_policy: text("retention_policy"),
            retention_policy_mode: text("retention_policy_mode"),
            wal_retention_policy: text("wal_retention_policy"),
            minimum_redundancy: 0,
            last_backup_maximum_age: interval("last_backup_maximum_age"),
            last_backup_minimum_size: match values.get("last_backup_minimum_size") {
                Some(Value::Size(s)) => Some(*s),
                _ => None,
            },
            last_wal_maximum_age: interval("last_wal_maximum_age"),
            max_incoming_wals_queue: int("max_incoming_wals_queue"),
            check_timeout: int("check_timeout").unwrap_or(30),
            recovery_options: set("recovery_options"),
            hooks,
            snapshot_provider: text("snapshot_provider"),
            snapshot_instance: text("snapshot_instance"),
            snapshot_disks: match values.get("snapshot_disks") {
                Some(Value::List(disks)) => Some(disks.clone()),
                _ => None,
            },
            gcp_project: text("gcp_project").or_else(|| text("snapshot_gcp_project")),
            gcp_zone: text("gcp_zone").or_else(|| text("snapshot_zone")),
            azure_subscription_id: text("azure_subscription_id"),
            azure_resource_group: text("azure_resource_group"),
            azure_credential: text("azure_credential"),
            aws_profile: text("aws_profile"),
            aws_region: text("aws_region"),
            aws_await_snapshots_timeout: int("aws_await_snapshots_timeout").unwrap_or(3600),
            aws_snapshot_lock_mode: text("aws_snapshot_lock_mode"),
            aws_snapshot_lock_duration: int("aws_snapshot_lock_duration"),
            aws_snapshot_lock_cool_off_period: int("aws_snapshot_lock_cool_off_period"),
            aws_snapshot_lock_expiration_date: text("aws_snapshot_lock_expiration_date"),
            keepalive_interval: int("keepalive_interval").unwrap_or(60),
            values,
            raw,
        }
    }

    /// The parsed value of any server key (`None`: unset).
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The text that gave `key` its value, for keys not typed here.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }

    /// Every key with a value and the text that gave it.
    pub fn raw_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.raw.iter().map(|(k, v)| (*k, v.as_str()))
    }

    fn disable(&mut self, message: String) {
        self.msg_list.push(message);
        self.disabled = true;
    }

    /// The checks Barman makes when it sets a server up (`Server.__init__`): connection
    /// strings, the backup executor (`ssh_command`, backup strategy, snapshot options and
    /// provider settings), the WAL archivers, bandwidth limits, minimum redundancy,
    /// retention policy mode. Problems disable the server (`msg_list`); the warnings are
    /// returned in order. Not checked: what needs a connection or a provider SDK
    /// (`primary_conninfo` standbys, provider credentials), `postgres`/`local-to-cloud`
    /// backup methods' own validations, retention policy syntax.
    pub fn initialise(&mut self) -> Vec<Warning> {
        let mut warnings = Vec::new();
        if self.active && !self.passive_node {
            match &self.conninfo {
                None => self.disable(format!(
                    "PostgreSQL connection: Missing 'conninfo' parameter for server '{}'",
                    self.name
                )),
                Some(conninfo) if !is_parsable_dsn(conninfo) => self.disable(format!(
                    "PostgreSQL connection: Cannot connect to postgres: \"{conninfo}\" is not a valid connection string"
                )),
                Some(_) => {}
            }
            if self.backup_method == "postgres" || self.streaming_archiver {
                match &self.streaming_conninfo {
                    None => self.disable(format!(
                        "Streaming connection: Missing 'streaming_conninfo' parameter for server '{}'",
                        self.name
                    )),
                    Some(conninfo) if !is_parsable_dsn(conninfo) => self.disable(format!(
                        "Streaming connection: Cannot connect to postgres: \"{conninfo}\" is not a valid connection string"
                    )),
                    Some(_) => {}
                }
            }
        }
        if self.active && !self.passive_node {
            self.init_executor(&mut warnings);
            self.init_archivers(&mut warnings);
        }
        self.init_limits(&mut warnings);
        warnings
    }

    fn init_executor(&mut self, warnings: &mut Vec<Warning>) {
        let local = match self.backup_method.as_str() {
            "rsync" | "snapshot" => false,
            "local-rsync" => true,
            _ => return,
        };
        let has_ssh = self
            .ssh_command
            .as_deref()
            .is_some_and(|c| !c.split_whitespace().next().unwrap_or("").is_empty());
        if !local && !has_ssh {
            let name = self.name.clone();
            self.disable(format!(
                "Missing or invalid ssh_command in barman configuration for server {name}"
            ));
            return;
        }
        if local && has_ssh {
            let name = self.name.clone();
            self.disable(format!(
                "Local copy requires ssh_command in barman configuration to be empty for server {name}"
            ));
            return;
        }
        let strategy_set = self
            .backup_options
            .iter()
            .any(|o| o == "concurrent_backup" || o == "exclusive_backup");
        if !strategy_set {
            self.backup_options.push("concurrent_backup".into());
            self.backup_options.sort();
            warnings.push(Warning::shown(
                "barman.backup_executor",
                format!(
                    "No backup strategy set for server '{}' (using default 'concurrent_backup').",
                    self.name
                ),
            ));
        }
        if self.backup_method == "snapshot" {
            self.validate_snapshot();
        } else if self.value("backup_compression").is_some() {
            self.disable(
                "backup_compression option is not supported by rsync backup_method".into(),
            );
        }
    }

    /// `SnapshotBackupExecutor`: options it cannot honour, options it needs, AWS lock
    /// settings, and the provider settings its client needs.
    fn validate_snapshot(&mut self) {
        let truthy = |v: Option<&Value>| match v {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Text(t)) => !t.is_empty(),
            Some(Value::Int(i)) => *i != 0,
            Some(Value::List(l) | Value::Set(l)) => !l.is_empty(),
            Some(Value::Size(s)) => *s != 0,
            Some(Value::Interval(d)) => !d.is_zero(),
        };
        for key in [
            "backup_compression",
            "bandwidth_limit",
            "network_compression",
            "tablespace_bandwidth_limit",
        ] {
            if truthy(self.value(key)) {
                self.disable(format!(
                    "{key} option is not supported by snapshot backup_method"
                ));
            }
        }
        if matches!(self.value("reuse_backup"), Some(Value::Text(t)) if t == "copy" || t == "link")
        {
            self.disable("reuse_backup option is not supported by snapshot backup_method".into());
        }
        for key in ["snapshot_disks", "snapshot_instance", "snapshot_provider"] {
            if !truthy(self.value(key)) {
                self.disable(format!(
                    "{key} option is required by snapshot backup_method"
                ));
            }
        }
        if self.aws_snapshot_lock_mode.is_some() && self.snapshot_provider.as_deref() == Some("aws")
        {
            self.validate_aws_lock();
        }
        let provider = self.snapshot_provider.clone();
        let problem = match provider.as_deref() {
            Some("gcp") if self.gcp_project.is_none() => {
                Some("gcp_project option must be set when snapshot_provider is gcp".to_string())
            }
            Some("gcp") => None,
            Some("azure") if self.azure_subscription_id.is_none() => Some(
                "azure_subscription_id option must be set when snapshot_provider is azure"
                    .to_string(),
            ),
            Some("azure") => match self.azure_credential.as_deref() {
                None | Some("azure-cli" | "default" | "managed-identity") => None,
                Some(other) => Some(format!("Unsupported credential: {other}")),
            },
            Some("aws") => None,
            other => Some(format!(
                "Unsupported snapshot provider: {}",
                other.unwrap_or("None")
            )),
        };
        if let Some(problem) = problem {
            self.disable(format!(
                "Error initialising snapshot provider {}: {problem}",
                provider.as_deref().unwrap_or("None")
            ));
        }
    }

    fn validate_aws_lock(&mut self) {
        let duration = self.aws_snapshot_lock_duration.filter(|d| *d != 0);
        let cool_off = self.aws_snapshot_lock_cool_off_period.filter(|d| *d != 0);
        let expiration = self.aws_snapshot_lock_expiration_date.clone();
        if duration.is_none() && expiration.is_none() {
            self.disable(
                "'aws_snapshot_lock_mode' is set, you must specify 'aws_snapshot_lock_duration' \
                 or 'aws_snapshot_lock_expiration_date'."
                    .into(),
            );
        }
        if duration.is_some() && expiration.is_some() {
            self.disable(
                "You must specify either 'aws_snapshot_lock_duration' or \
                 'aws_snapshot_lock_expiration_date' in the configuration, but not both."
                    .into(),
            );
        }
        let mode = self.aws_snapshot_lock_mode.clone().unwrap_or_default();
        if mode == "governance" && cool_off.is_some() {
            self.disable(
                "'aws_snapshot_lock_cool_off_period' cannot be used with \
                 'aws_snapshot_lock_mode' = 'governance'."
                    .into(),
            );
        }
        if let Some(cool_off) = cool_off
            && !(1..=72).contains(&cool_off)
        {
            self.disable(
                "aws_snapshot_lock_cool_off_period must be between 1 and 72 hours.".into(),
            );
        }
        if let Some(duration) = duration
            && !(1..=36500).contains(&duration)
        {
            self.disable("aws_snapshot_lock_duration must be between 1 and 36,500 days.".into());
        }
        if !["governance", "compliance"].contains(&mode.to_lowercase().as_str()) {
            self.disable(
                "Invalid AWS snapshot lock mode. Please specify either 'governance' or \
                 'compliance'. Ensure that the mode you choose aligns with your snapshot \
                 locking requirements."
                    .into(),
            );
        }
        if let Some(date) = expiration
            && !is_aws_expiration_date(&date)
        {
            self.disable(format!(
                "Invalid date: '{date}'. Expected format is '%Y-%m-%dT%H:%M:%S.%fZ'."
            ));
        }
    }

    fn init_archivers(&mut self, warnings: &mut Vec<Warning>) {
        if !self.archiver && self.streaming_archiver && self.slot_name.is_none() {
            self.disable(
                "Streaming-only archiver requires 'streaming_conninfo' and 'slot_name' \
                 options to be properly configured"
                    .into(),
            );
        }
        if !self.archiver && !self.streaming_archiver {
            warnings.push(Warning::shown(
                "barman.server",
                format!(
                    "No archiver enabled for server '{}'. Please turn on 'archiver', \
                     'streaming_archiver' or both",
                    self.name
                ),
            ));
            warnings.push(Warning::shown(
                "barman.server",
                "Forcing 'archiver = on'".into(),
            ));
            self.archiver = true;
        }
    }

    fn init_limits(&mut self, warnings: &mut Vec<Warning>) {
        let bandwidth = self.raw("bandwidth_limit").map(str::to_string);
        let mut bandwidth_value = None;
        if let Some(limit) = bandwidth {
            match python_int(&limit) {
                Ok(v) => bandwidth_value = Some(v),
                Err(_) => warnings.push(Warning::logged(
                    "barman.server",
                    format!(
                        "Invalid bandwidth_limit \"{limit}\" for server \"{}\" (fallback to \"0\")",
                        self.name
                    ),
                )),
            }
        }
        if let Some(rules) = self.raw("tablespace_bandwidth_limit").map(str::to_string) {
            for rule in rules.split_whitespace() {
                let valid = rule
                    .split_once(':')
                    .is_some_and(|(_, v)| python_int(v).is_ok());
                if !valid {
                    warnings.push(Warning::logged(
                        "barman.server",
                        format!("Invalid tablespace_bandwidth_limit rule '{rule}'"),
                    ));
                }
            }
        }
        let _ = bandwidth_value;
        let redundancy = self.raw("minimum_redundancy").unwrap_or("0").to_string();
        self.minimum_redundancy = match python_int(&redundancy) {
            Ok(v) if v < 0 => {
                warnings.push(Warning::logged(
                    "barman.server",
                    format!(
                        "Negative value of minimum_redundancy \"{v}\" for server \"{}\" (fallback to \"0\")",
                        self.name
                    ),
                ));
                0
            }
            Ok(v) => v,
            Err(_) => {
                warnings.push(Warning::logged(
                    "barman.server",
                    format!(
                        "Invalid minimum_redundancy \"{redundancy}\" for server \"{}\" (fallback to \"0\")",
                        self.name
                    ),
                ));
                0
            }
        };
        if self.retention_policy_mode.as_deref() != Some("auto") {
            warnings.push(Warning::logged(
                "barman.server",
                format!(
                    "Unsupported retention_policy_mode \"{}\" for server \"{}\" (fallback to \"auto\")",
                    self.retention_policy_mode.as_deref().unwrap_or("None"),
                    self.name
                ),
            ));
            self.retention_policy_mode = Some("auto".into());
        }
    }
}

/// `PostgreSQL.parse_dsn`: every space-separated word must hold a `=`.
fn is_parsable_dsn(conninfo: &str) -> bool {
    conninfo.split_whitespace().all(|word| word.contains('='))
}

/// `%Y-%m-%dT%H:%M:%S.%fZ` as Python's `strptime` accepts it.
fn is_aws_expiration_date(text: &str) -> bool {
    let Some(body) = text.strip_suffix('Z') else {
        return false;
    };
    let Some((main, fraction)) = body.split_once('.') else {
        return false;
    };
    if fraction.is_empty() || fraction.len() > 6 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    chrono::NaiveDateTime::parse_from_str(main, "%Y-%m-%dT%H:%M:%S").is_ok()
}

/// Python's `text % mapping` for `%(key)s` references.
fn percent_format(text: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(")s") {
            Some(end) => {
                out.push_str(&lookup(&after[..end]));
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `BaseConfig.invoke_parser`: `new` replaces `value` when it parses; a parse failure is
/// warned about and leaves `value` as it was.
fn invoke_parser(
    key: &str,
    source: &str,
    new: Option<String>,
    value: &mut Option<Value>,
    text: &mut Option<String>,
    warnings: &mut Vec<Warning>,
) {
    let Some(new) = new else {
        return;
    };
    match parse_value(key, source, &new) {
        Ok(parsed) => {
            *value = parsed;
            *text = Some(new);
        }
        Err(reason) => warnings.push(Warning::shown(
            "barman.config",
            format!(
                "Ignoring invalid configuration value '{new}' for key {key} in {source}: {reason}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOBAL: &str = "[barman]\nbarman_home = /srv/barman\nbarman_user = root\n";

    fn load_servers(text: &str) -> (Vec<ServerConfig>, Vec<String>, Vec<Warning>) {
        let config = Config::from_text(Path::new("/t/barman.conf"), text).expect("config");
        let mut warnings = Vec::new();
        let found = config.server_configs(&mut warnings).expect("servers");
        let mut servers = found.servers;
        for server in &mut servers {
            warnings.extend(server.initialise());
        }
        (servers, found.errors, warnings)
    }

    fn shown(warnings: &[Warning]) -> Vec<&str> {
        warnings
            .iter()
            .filter(|w| w.shown)
            .map(|w| w.message.as_str())
            .collect()
    }

    const SNAPSHOT: &str = "[snap]\nconninfo = host=pg\nssh_command = ssh pg\n\
        backup_method = snapshot\nsnapshot_provider = aws\nsnapshot_instance = i-1\n\
        snapshot_disks = d1,d2\narchiver = on\nbackup_options = concurrent_backup\n";

    #[test]
    fn defaults_and_directories_follow_barman_home() {
        let (servers, errors, warnings) = load_servers(&format!("{GLOBAL}{SNAPSHOT}"));
        assert!(errors.is_empty() && warnings.is_empty(), "{warnings:?}");
        let s = &servers[0];
        assert_eq!(s.backup_directory, "/srv/barman/snap");
        assert_eq!(
            s.basebackups_directory.as_deref(),
            Some("/srv/barman/snap/base")
        );
        assert_eq!(s.wals_directory.as_deref(), Some("/srv/barman/snap/wals"));
        assert_eq!(s.xlogdb_directory.as_deref(), Some("/srv/barman/snap/wals"));
        assert_eq!(
            s.incoming_wals_directory.as_deref(),
            Some("/srv/barman/snap/incoming")
        );
        assert_eq!(s.streaming_conninfo.as_deref(), Some("host=pg"));
        assert_eq!(
            s.snapshot_disks,
            Some(vec!["d1".to_string(), "d2".to_string()])
        );
        assert_eq!(s.check_timeout, 30);
        assert_eq!(s.create_slot.as_deref(), Some("manual"));
        assert_eq!(s.wal_retention_policy.as_deref(), Some("main"));
        assert!(s.active && !s.disabled && s.archiver && !s.streaming_archiver);
        assert_eq!(s.raw("cluster"), Some("snap"));
        assert_eq!(
            s.value("compression_level"),
            Some(&Value::Text("medium".into()))
        );
    }

    #[test]
    fn inheritance_quotes_none_and_case() {
        let text = "[barman]\nbarman_home = /h\ncompression = GZIP\ndescription = global\n\
            minimum_redundancy = 2\n[s]\nDESCRIPTION = 'quoted'\nconninfo = host=x\n\
            ssh_command = ssh x\narchiver = yes\nbackup_options = exclusive_backup\n\
            minimum_redundancy = None\nlast_backup_maximum_age = 2 weeks\n\
            last_backup_minimum_size = 1 Gi\n";
        let (servers, _, warnings) = load_servers(text);
        let s = &servers[0];
        // `description` is not inherited, so [barman]'s is an unknown key there.
        assert_eq!(
            shown(&warnings),
            vec!["Invalid configuration option \"description\" in [barman] section."; 0]
        );
        assert_eq!(s.description.as_deref(), Some("quoted"));
        assert_eq!(s.compression.as_deref(), Some("gzip"));
        // `None` bypasses inheritance for keys without a parser.
        assert_eq!(s.minimum_redundancy, 0);
        assert_eq!(s.raw("minimum_redundancy"), None);
        assert_eq!(
            s.last_backup_maximum_age,
            Some(Duration::from_secs(14 * 86400))
        );
        assert_eq!(s.last_backup_minimum_size, Some(1 << 30));
        assert_eq!(s.backup_options, vec!["exclusive_backup".to_string()]);
    }

    #[test]
    fn invalid_values_warn_and_fall_back() {
        let text = "[barman]\nbarman_home = /h\ncheck_timeout = 10\n[s]\nconninfo = host=x\n\
            ssh_command = ssh x\narchiver = maybe\ncheck_timeout = soon\n\
            backup_options = concurrent_backup,exclusive_backup\nslot_name = Bad-Name\n\
            snapshot_disks = a,,b\ncompression = rar\nbogus = 1\n";
        let (servers, _, warnings) = load_servers(text);
        let s = &servers[0];
        assert_eq!(
            shown(&warnings),
            vec![
                "Invalid configuration option \"bogus\" in [s] section.",
                "Ignoring invalid configuration value 'maybe' for key archiver in [s] section: \
                 Invalid boolean representation (must be one in: true|t|yes|1|on | \
                 false|f|no|0|off)",
                "Ignoring invalid configuration value 'concurrent_backup,exclusive_backup' for \
                 key backup_options in [s] section: Invalid configuration value \
                 'exclusive_backup' for key backup_options in [s] section: cannot contain both \
                 'exclusive_backup' and 'concurrent_backup'.Configuration directive ignored.",
                "Ignoring invalid configuration value 'soon' for key check_timeout in [s] \
                 section: invalid literal for int() with base 10: 'soon'",
                "Ignoring invalid configuration value 'rar' for key compression in [s] section: \
                 Invalid value: 'rar' (must be one in: gzip, bzip2, pygzip, pybzip2, pigz, xz, \
                 zstd, lz4, snappy, custom)",
                "Ignoring invalid configuration value 'Bad-Name' for key slot_name in [s] \
                 section: Replication slot names may only contain lower case letters, numbers, \
                 and the underscore character.",
                "Ignoring invalid configuration value 'a,,b' for key snapshot_disks in [s] \
                 section: ['a', '', 'b']",
                "No backup strategy set for server 's' (using default 'concurrent_backup').",
                "No archiver enabled for server 's'. Please turn on 'archiver', \
                 'streaming_archiver' or both",
                "Forcing 'archiver = on'",
            ]
        );
        assert_eq!(
            s.check_timeout, 10,
            "inherited from [barman] after the bad value"
        );
        assert!(s.archiver, "forced on");
    }

    #[test]
    fn snapshot_validations_disable_the_server() {
        let text = format!(
            "{GLOBAL}{SNAPSHOT}backup_compression = gzip\nbandwidth_limit = 0\n\
             network_compression = true\nreuse_backup = link\n"
        );
        let (servers, _, _) = load_servers(&text);
        assert!(servers[0].disabled);
        assert_eq!(
            servers[0].msg_list,
            vec![
                "backup_compression option is not supported by snapshot backup_method",
                "bandwidth_limit option is not supported by snapshot backup_method",
                "network_compression option is not supported by snapshot backup_method",
                "reuse_backup option is not supported by snapshot backup_method",
            ]
        );
        let text = "[barman]\nbarman_home = /h\n[s]\nconninfo = host=x\nssh_command = ssh x\n\
            backup_method = snapshot\narchiver = on\nbackup_options = concurrent_backup\n";
        let (servers, _, _) = load_servers(text);
        assert_eq!(
            servers[0].msg_list,
            vec![
                "snapshot_disks option is required by snapshot backup_method",
                "snapshot_instance option is required by snapshot backup_method",
                "snapshot_provider option is required by snapshot backup_method",
                "Error initialising snapshot provider None: Unsupported snapshot provider: None",
            ]
        );
        let gcp = SNAPSHOT.replace("aws", "gcp");
        let (servers, _, _) = load_servers(&format!("{GLOBAL}{gcp}"));
        assert_eq!(
            servers[0].msg_list,
            vec![
                "Error initialising snapshot provider gcp: gcp_project option must be set when \
                 snapshot_provider is gcp"
            ]
        );
        let azure = SNAPSHOT.replace("aws", "azure");
        let (servers, _, _) = load_servers(&format!("{GLOBAL}{azure}"));
        assert_eq!(
            servers[0].msg_list,
            vec![
                "Error initialising snapshot provider azure: azure_subscription_id option must \
                 be set when snapshot_provider is azure"
            ]
        );
        let locked = format!(
            "{GLOBAL}{SNAPSHOT}aws_snapshot_lock_mode = governance\n\
             aws_snapshot_lock_cool_off_period = 100\n"
        );
        let (servers, _, _) = load_servers(&locked);
        assert_eq!(
            servers[0].msg_list,
            vec![
                "'aws_snapshot_lock_mode' is set, you must specify 'aws_snapshot_lock_duration' \
                 or 'aws_snapshot_lock_expiration_date'.",
                "'aws_snapshot_lock_cool_off_period' cannot be used with \
                 'aws_snapshot_lock_mode' = 'governance'.",
                "aws_snapshot_lock_cool_off_period must be between 1 and 72 hours.",
            ]
        );
    }

    #[test]
    fn connection_ssh_and_streaming_checks() {
        let text = "[barman]\nbarman_home = /h\n[a]\narchiver = on\n\
            backup_options = concurrent_backup\n[b]\nconninfo = nonsense\nssh_command = ssh b\n\
            streaming_archiver = on\nbackup_options = concurrent_backup\n[c]\nactive = off\n";
        let (servers, _, warnings) = load_servers(text);
        assert_eq!(
            servers[0].msg_list,
            vec![
                "PostgreSQL connection: Missing 'conninfo' parameter for server 'a'",
                "Missing or invalid ssh_command in barman configuration for server a",
            ]
        );
        assert_eq!(
            servers[1].msg_list,
            vec![
                "PostgreSQL connection: Cannot connect to postgres: \"nonsense\" is not a valid \
                 connection string",
                "Streaming connection: Cannot connect to postgres: \"nonsense\" is not a valid \
                 connection string",
                "Streaming-only archiver requires 'streaming_conninfo' and 'slot_name' options \
                 to be properly configured",
            ]
        );
        assert!(!servers[2].active && !servers[2].disabled && servers[2].msg_list.is_empty());
        assert!(shown(&warnings).is_empty(), "{warnings:?}");
    }

    #[test]
    fn conflicting_paths_within_and_across_servers() {
        let server = |name: &str, extra: &str| {
            format!(
                "[{name}]\nconninfo = host=x\nssh_command = ssh\narchiver = on\n\
                 backup_options = concurrent_backup\n{extra}\n"
            )
        };
        let text = format!(
            "{GLOBAL}{}",
            server("b", "wals_directory = /srv/barman/b/base")
        );
        let (servers, errors, _) = load_servers(&text);
        assert!(errors.is_empty());
        assert!(servers[0].disabled);
        assert_eq!(
            servers[0].msg_list,
            vec![
                "Conflicting path: wals_directory=/srv/barman/b/base conflicts with \
                 'basebackups_directory' for server 'b'"
            ]
        );
        let text = format!(
            "{GLOBAL}{}{}",
            server("b", ""),
            server("a", "backup_directory = /srv/barman/b")
        );
        let (servers, errors, _) = load_servers(&text);
        assert!(servers.iter().all(|s| !s.disabled));
        assert_eq!(
            errors[0],
            "Conflicting path: backup_directory=/srv/barman/b for server 'b' conflicts with \
             'backup_directory' for server 'a'"
        );
        assert_eq!(errors.len(), 6);
    }

    #[test]
    fn reserved_names_missing_home_and_models() {
        let config =
            Config::from_text(Path::new("/t.conf"), "[barman]\nbarman_home=/h\n[all]\n").unwrap();
        let error = config.server_configs(&mut Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "FATAL: the reserved word 'all' is not allowed as server name.Please rename it."
        );
        let config =
            Config::from_text(Path::new("/t.conf"), "[barman]\nlog_level = INFO\n").unwrap();
        assert!(
            matches!(config.validate_global(&mut Vec::new()), Err(Error::Config(t)) if t.starts_with("ERROR: Parameter \"barman_home\" is required"))
        );
        let config = Config::from_text(
            Path::new("/t.conf"),
            "[barman]\nbarman_home=/h\n[m]\nmodel = true\n",
        )
        .unwrap();
        let found = config.server_configs(&mut Vec::new()).unwrap();
        assert!(found.servers.is_empty());
        assert_eq!(found.models, vec!["m".to_string()]);
        assert!(matches!(
            Config::from_text(Path::new("/t.conf"), "[srv]\n"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn global_settings_and_their_defaults() {
        let config =
            Config::from_text(Path::new("/t.conf"), "[barman]\nbarman_home = /h\n").unwrap();
        assert_eq!(config.barman_user, "barman");
        assert_eq!(config.barman_lock_directory.as_deref(), Some("/h"));
        assert!(config.lock_directory_cleanup);
        assert_eq!(config.config_changes_queue, "/h/cfg_changes.queue");
        assert_eq!(config.log_level, "INFO");
        assert_eq!(parse_log_level("warning"), Some(30));
        assert_eq!(parse_log_level("15"), Some(15));
        assert_eq!(parse_log_level("LOUD"), None);
    }

    #[test]
    fn included_files_in_order_and_barman_section_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir(&conf_d).unwrap();
        std::fs::write(conf_d.join("b.conf"), "[s]\ndescription = from b\n").unwrap();
        std::fs::write(
            conf_d.join("a.conf"),
            "[s]\ndescription = from a\nconninfo = x=1\n",
        )
        .unwrap();
        std::fs::write(conf_d.join("ignored.txt"), "[t]\n").unwrap();
        let main = dir.path().join("barman.conf");
        std::fs::write(
            &main,
            format!(
                "[barman]\nbarman_home = {}\nconfiguration_files_directory = {}\n",
                dir.path().display(),
                conf_d.display()
            ),
        )
        .unwrap();
        let mut config = Config::load(Some(&main)).unwrap();
        let mut warnings = Vec::new();
        config.load_included_files(&mut warnings).unwrap();
        assert!(warnings.is_empty());
        let found = config.server_configs(&mut warnings).unwrap();
        assert_eq!(found.servers.len(), 1);
        assert_eq!(found.servers[0].description.as_deref(), Some("from b"));
        assert_eq!(found.servers[0].conninfo.as_deref(), Some("x=1"));

        std::fs::write(conf_d.join("c.conf"), "[barman]\nlog_level = DEBUG\n").unwrap();
        let mut config = Config::load(Some(&main)).unwrap();
        let error = config.load_included_files(&mut Vec::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "FATAL: the configuration file c.conf contains a not empty [barman] section"
        );

        std::fs::write(
            &main,
            "[barman]\nbarman_home = /h\nconfiguration_files_directory = /nonexistent\n",
        )
        .unwrap();
        let mut config = Config::load(Some(&main)).unwrap();
        let mut warnings = Vec::new();
        config.load_included_files(&mut warnings).unwrap();
        assert_eq!(
            warnings,
            vec![Warning::logged(
                "barman.config",
                "Ignoring the \"configuration_files_directory\" option as \"/nonexistent\" is not a directory".into()
            )]
        );
    }

    #[test]
    fn missing_and_malformed_files() {
        let error = Config::load(Some(Path::new("/nonexistent/barman.conf"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Configuration file '/nonexistent/barman.conf' does not exist"
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, "[barman]\nbarman_home = /h\ngarbage\n").unwrap();
        let error = Config::load(Some(&bad)).unwrap_err();
        assert!(matches!(error, Error::InvalidInput(_)));
        assert!(
            error
                .to_string()
                .starts_with(&format!("Configuration file '{}', line 3: ", bad.display())),
            "{error}"
        );
    }

    #[test]
    fn value_parsers() {
        assert_eq!(python_int(" +1_000 "), Ok(1000));
        assert!(python_int("1__0").is_err());
        assert_eq!(parse_size("10 Ki"), Ok(Some(10240)));
        assert_eq!(parse_size("3M"), Ok(Some(3_000_000)));
        assert!(parse_size(" 3").is_err());
        assert_eq!(
            parse_interval("1 hours"),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_interval("2 Month"),
            Ok(Some(Duration::from_secs(62 * 86400)))
        );
        assert!(parse_interval("2months ago").is_err());
        assert_eq!(unquote("\"x\""), "x");
        assert_eq!(unquote("'x\""), "'x\"");
        assert!(is_aws_expiration_date("2030-01-01T00:00:00.000Z"));
        assert!(!is_aws_expiration_date("2030-01-01"));
        assert_eq!(
            parse_choice("Bogus", &["copy", "link", "off"], ChoiceStyle::UseOr).unwrap_err(),
            "Invalid value (use 'copy', 'link' or 'off')"
        );
    }
}
