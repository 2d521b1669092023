//! `barman status` for a server with `backup_method = snapshot` (Barman 3.20.1's
//! `Server.status` and what it delegates to): the lines in Barman's order, each a key
//! (the JSON writer's), a description (the console label) and the message. PostgreSQL
//! is asked only for an active, non-passive server; when it cannot be reached the
//! version line says so and the PostgreSQL and archiver lines stop there. A snapshot
//! executor adds no line of its own.

use chrono::NaiveDateTime;

use crate::catalog::backup_info::{BackupInfo, BackupStatus};
use crate::catalog::render::pretty_size;
use crate::retention::RetentionPolicy;
use crate::server::check::{
    backup_privileges, has_status, is_non_incremental, load_backups, raw_client, value,
};
use crate::server::config::ServerConfig;

/// One line of `barman status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// The JSON key (`pg_version`, `last_archived_wal`...).
    pub key: &'static str,
    /// The console label (`PostgreSQL version`...).
    pub description: &'static str,
    pub message: String,
}

/// What PostgreSQL tells for the status (Barman's remote status of the connection and
/// of the file archiver); `None` fields were not available.
#[derive(Debug, Default, Clone)]
struct Remote {
    txt_version: Option<String>,
    is_in_recovery: Option<bool>,
    current_size: Option<i64>,
    data_directory: Option<String>,
    current_xlog: Option<String>,
    archive_mode: Option<String>,
    archive_command: Option<String>,
    last_archived_wal: Option<String>,
    last_archived_time: Option<String>,
    failed_count: Option<String>,
    last_failed_wal: Option<String>,
    last_failed_time: Option<String>,
    archived_per_hour: Option<f64>,
}

/// The version in `SELECT version()`'s text, as Barman reads it: the second word, less
/// its last component for EDB Postgres Advanced Server 10 and older (`EnterpriseDB
/// 10.1.5 on ...`).
fn txt_version(text: &str) -> Option<String> {
    let mut words = text.split_whitespace();
    let platform = words.next()?;
    let version = words.next()?;
    if platform == "EnterpriseDB" {
        let parts: Vec<&str> = version.split('.').collect();
        return Some(parts[..parts.len() - 1].join("."));
    }
    Some(version.to_string())
}

/// Python's `datetime.ctime()` of a timestamp PostgreSQL printed in the session's
/// time zone (`2026-11-29 17:55:17.123+00`): `Sun Nov 29 17:55:17 2026`.
fn ctime(text: &str) -> Option<String> {
    let local = text.get(..19)?;
    let parsed = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S").ok()?;
    Some(parsed.format("%a %b %e %H:%M:%S %Y").to_string())
}

async fn fetch_remote(server: &ServerConfig) -> Remote {
    let mut remote = Remote::default();
    let Ok((client, connection)) = raw_client(server).await else {
        return remote;
    };
    remote.txt_version = value(&client, "SELECT version()")
        .await
        .and_then(|v| txt_version(&v));
    if remote.txt_version.is_none() {
        connection.abort();
        return remote;
    }
    remote.is_in_recovery = value(&client, "SELECT pg_is_in_recovery()")
        .await
        .map(|v| v == "t");
    let privileged = backup_privileges(server).await == Some(true);
    if privileged {
        remote.data_directory = value(&client, "SHOW data_directory").await;
        remote.current_size = value(
            &client,
            "SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace",
        )
        .await
        .and_then(|v| v.parse().ok());
    }
    if remote.is_in_recovery == Some(false) {
        // From PostgreSQL 17 a position on a segment boundary names the new segment;
        // Barman names the previous one, as older versions do.
        let version: i64 = value(&client, "SHOW server_version_num")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let sql = if version >= 170000 {
            "SELECT CASE WHEN (pg_walfile_name_offset(l)).file_offset = 0 \
             THEN pg_walfile_name(l - 1) ELSE pg_walfile_name(l) END \
             FROM pg_current_wal_lsn() AS l"
        } else if version >= 100000 {
            "SELECT pg_walfile_name(pg_current_wal_lsn())"
        } else {
            "SELECT pg_xlogfile_name(pg_current_xlog_location())"
        };
        remote.current_xlog = value(&client, sql).await;
    }
    remote.archive_mode = value(&client, "SHOW archive_mode").await;
    remote.archive_command = value(&client, "SHOW archive_command").await;
    // pg_stat_archiver, timestamps in the session's time zone as Python's driver sees
    // them (whatever the DateStyle), the rate as Barman computes it.
    if let Ok(messages) = client
        .simple_query(
            "SELECT last_archived_wal, \
             to_char(last_archived_time, 'YYYY-MM-DD HH24:MI:SS'), \
             failed_count::text, last_failed_wal, \
             to_char(last_failed_time, 'YYYY-MM-DD HH24:MI:SS'), \
             (3600 * (CAST(archived_count AS NUMERIC) \
             / EXTRACT(EPOCH FROM age(now(), stats_reset))))::text \
             FROM pg_stat_archiver",
        )
        .await
        && let Some(row) = messages.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
    {
        let text = |i: usize| row.get(i).map(str::to_string);
        remote.last_archived_wal = text(0);
        remote.last_archived_time = text(1);
        remote.failed_count = text(2);
        remote.last_failed_wal = text(3);
        remote.last_failed_time = text(4);
        remote.archived_per_hour = text(5).and_then(|v| v.parse().ok());
    }
    connection.abort();
    remote
}

fn line(key: &'static str, description: &'static str, message: impl Into<String>) -> StatusLine {
    StatusLine {
        key,
        description,
        message: message.into(),
    }
}

fn python_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// Barman's `status_postgres`.
fn postgres_lines(remote: &Remote, lines: &mut Vec<StatusLine>) {
    let Some(version) = &remote.txt_version else {
        lines.push(line(
            "pg_version",
            "PostgreSQL version",
            "FAILED trying to get PostgreSQL version",
        ));
        return;
    };
    lines.push(line("pg_version", "PostgreSQL version", version));
    let state = if remote.is_in_recovery == Some(true) {
        "in archive recovery"
    } else {
        "in production"
    };
    lines.push(line("is_in_recovery", "Cluster state", state));
    if let Some(size) = remote.current_size {
        lines.push(line("current_size", "Current data size", pretty_size(size)));
    }
    if let Some(dir) = remote.data_directory.as_ref().filter(|d| !d.is_empty()) {
        lines.push(line("data_directory", "PostgreSQL Data directory", dir));
    }
    if let Some(wal) = remote.current_xlog.as_ref().filter(|w| !w.is_empty()) {
        lines.push(line("current_xlog", "Current WAL segment", wal));
    }
}

/// The file archiver's `status`.
fn archiver_lines(remote: &Remote, lines: &mut Vec<StatusLine>) {
    if remote.archive_mode.is_none() {
        return;
    }
    let command = remote
        .archive_command
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "FAILED (please set it accordingly to documentation)".into());
    lines.push(line(
        "archive_command",
        "PostgreSQL 'archive_command' setting",
        command,
    ));
    let last = match (&remote.last_archived_wal, &remote.last_archived_time) {
        (Some(wal), Some(time)) if !wal.is_empty() => {
            format!("{wal}, at {}", ctime(time).unwrap_or_default())
        }
        (Some(wal), None) if !wal.is_empty() => wal.clone(),
        _ => "No WAL segment shipped yet".into(),
    };
    lines.push(line("last_archived_wal", "Last archived WAL", last));
    if let Some(count) = &remote.failed_count {
        let mut text = count.clone();
        if count.parse::<i64>().unwrap_or(0) > 0 {
            text.push_str(&format!(
                " ({} at {})",
                remote.last_failed_wal.as_deref().unwrap_or("None"),
                remote
                    .last_failed_time
                    .as_deref()
                    .and_then(ctime)
                    .unwrap_or_default()
            ));
        }
        lines.push(line("failed_count", "Failures of WAL archiver", text));
    }
    if let Some(rate) = remote.archived_per_hour.filter(|r| *r != 0.0) {
        lines.push(line(
            "server_archived_wals_per_hour",
            "Server WAL archiving rate",
            format!("{rate:.2}/hour"),
        ));
    }
}

/// Barman's `status_retention_policies`.
fn retention_line(server: &ServerConfig) -> StatusLine {
    let policy = server
        .retention_policy
        .as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| RetentionPolicy::parse(p).ok());
    let message = match policy {
        Some(policy) => format!(
            "enforced (mode: {}, retention: {policy}, WAL retention: MAIN)",
            server.retention_policy_mode.as_deref().unwrap_or("auto")
        ),
        None => "not enforced".into(),
    };
    line("retention_policies", "Retention policies", message)
}

/// The backup manager's `status`.
fn backup_lines(server: &ServerConfig, backups: &[BackupInfo], lines: &mut Vec<StatusLine>) {
    let done: Vec<&BackupInfo> = backups
        .iter()
        .filter(|b| has_status(b, &[BackupStatus::Done]))
        .collect();
    lines.push(line(
        "backups_number",
        "No. of available backups",
        done.len().to_string(),
    ));
    // `backups` is sorted by ID.
    let available: Vec<&str> = backups
        .iter()
        .filter(|b| has_status(b, &[BackupStatus::Done, BackupStatus::WaitingForWals]))
        .filter_map(|b| b.backup_id.as_deref())
        .collect();
    let or_none = |id: Option<&&str>| id.map_or("None".to_string(), |id| id.to_string());
    lines.push(line(
        "first_backup",
        "First available backup",
        or_none(available.first()),
    ));
    lines.push(line(
        "last_backup",
        "Last available backup",
        or_none(available.last()),
    ));
    let full = done.iter().filter(|b| is_non_incremental(b)).count();
    let verdict = if i64::try_from(full).unwrap_or(i64::MAX) < server.minimum_redundancy {
        "FAILED"
    } else {
        "satisfied"
    };
    lines.push(line(
        "minimum_redundancy",
        "Minimum redundancy requirements",
        format!("{verdict} ({full}/{})", server.minimum_redundancy),
    ));
}

/// Every line of `barman status` for the server, in Barman's order.
pub async fn server_status(server: &ServerConfig) -> Vec<StatusLine> {
    let mut lines = Vec::new();
    if let Some(description) = server.description.as_ref().filter(|d| !d.is_empty()) {
        lines.push(line("description", "Description", description));
    }
    lines.push(line("active", "Active", python_bool(server.active)));
    lines.push(line("disabled", "Disabled", python_bool(server.disabled)));
    // Configuration models are not applied by this front-end: none is ever active.
    lines.push(line("active_model", "Active configuration model", "None"));
    if server.active && !server.passive_node {
        let remote = fetch_remote(server).await;
        postgres_lines(&remote, &mut lines);
        if server.archiver {
            archiver_lines(&remote, &mut lines);
        }
    }
    lines.push(line(
        "passive_node",
        "Passive node",
        python_bool(server.passive_node),
    ));
    lines.push(retention_line(server));
    let backups = load_backups(server);
    backup_lines(server, &backups, &mut lines);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_python_ctime() {
        assert_eq!(
            ctime("2026-11-29 17:55:17.123456").as_deref(),
            Some("Sun Nov 29 17:55:17 2026")
        );
        assert_eq!(
            ctime("2026-11-01 07:05:01").as_deref(),
            Some("Sun Nov  1 07:05:01 2026")
        );
    }

    #[test]
    fn versions_are_read_as_barman_reads_them() {
        assert_eq!(
            txt_version("PostgreSQL 15.18 (Debian 15.18-1) on x86_64-pc-linux-gnu").as_deref(),
            Some("15.18")
        );
        assert_eq!(
            txt_version("EnterpriseDB 10.1.5 on x86_64").as_deref(),
            Some("10.1")
        );
    }

    #[test]
    fn archiver_lines_follow_barman() {
        let mut lines = Vec::new();
        let remote = Remote {
            archive_mode: Some("on".into()),
            archive_command: Some(String::new()),
            failed_count: Some("2".into()),
            last_failed_wal: Some("000000010000000000000003".into()),
            last_failed_time: Some("2026-11-29 17:55:17.5".into()),
            archived_per_hour: Some(404.4666),
            ..Default::default()
        };
        archiver_lines(&remote, &mut lines);
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "FAILED (please set it accordingly to documentation)",
                "No WAL segment shipped yet",
                "2 (000000010000000000000003 at Sun Nov 29 17:55:17 2026)",
                "404.47/hour",
            ]
        );
    }
}
