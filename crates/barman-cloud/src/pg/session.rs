//! The one PostgreSQL session a base backup holds from start to stop, and the SQL Barman
//! runs on it. Non-exclusive backups end when their session ends, so the session must
//! never be replaced mid-backup: there is no reconnection here by design.

use std::sync::Arc;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::conninfo::{self, ResolvedConnInfo};
use crate::error::{Error, Result};

/// Oldest server Barman 3.20 backs up.
pub const MIN_SERVER_VERSION: i64 = 90600;

pub struct PgSession {
    client: Arc<Client>,
    connection: tokio::task::JoinHandle<()>,
    server_version: i64,
}

/// What Barman records about the server before the backup starts; unreadable values are
/// left empty, as Barman tolerates them.
#[derive(Debug, Default, Clone)]
pub struct ServerMetadata {
    pub pgdata: Option<String>,
    pub xlog_segment_size: Option<i64>,
    pub config_file: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Option<Vec<String>>,
    pub tablespaces: Vec<(String, u32, String)>,
    pub data_checksums: Option<String>,
    pub summarize_wal: Option<String>,
    pub cluster_size: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct BackupStart {
    pub lsn: String,
    pub timeline: i64,
    /// `now()` as PostgreSQL prints it in the session time zone.
    pub timestamp: String,
}

#[derive(Debug, Clone)]
pub struct BackupStop {
    pub lsn: String,
    pub timeline: i64,
    pub backup_label: String,
    pub timestamp: String,
}

fn query_error(what: &str, error: tokio_postgres::Error) -> Error {
    let detail = match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => crate::error::error_chain(&error),
    };
    Error::Postgres(format!("{what}: {detail}"))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The connection options of barman-cloud-backup: `-h`, `-p`, `-U` and `-d` (which may be
/// a whole conninfo string or URI).
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub dbname: String,
}

impl PgSession {
    /// Connects as barman-cloud-backup does: the options completed as libpq completes
    /// them (`PG*` variables, service files, `.pgpass`, defaults). Any failure is Barman's
    /// one line `Cannot connect to postgres: ...` (libpq's hint lines joined to it).
    pub async fn connect_with(options: &ConnectionOptions, application_name: &str) -> Result<Self> {
        let failed = |text: String| {
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            Error::Postgres(format!("Cannot connect to postgres: {text}"))
        };
        let conninfo = conninfo::ConnInfo::from_barman_options(
            options.host.as_deref(),
            options.port.as_deref(),
            options.user.as_deref(),
            Some(&options.dbname),
        )
        .map_err(|e| failed(e.to_string()))?;
        let resolved = conninfo
            .resolve(&|name| std::env::var(name).ok())
            .map_err(|e| failed(e.to_string()))?;
        Self::connect(&resolved, application_name)
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// Opens the session; the caller names itself to DBAs through `application_name`.
    pub async fn connect(info: &ResolvedConnInfo, application_name: &str) -> Result<Self> {
        let (client, connection) = conninfo::connect(info, application_name).await?;
        let mut session = PgSession {
            client: Arc::new(client),
            connection,
            server_version: 0,
        };
        session.server_version = session
            .value("SHOW server_version_num")
            .await?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Postgres("cannot read server_version_num".into()))?;
        Ok(session)
    }

    pub fn server_version(&self) -> i64 {
        self.server_version
    }

    /// `16`, `15`, or `9.6` for the 9.x series, as tablespace directories are named.
    pub fn major_version(&self) -> String {
        if self.server_version >= 100000 {
            (self.server_version / 10000).to_string()
        } else {
            format!(
                "{}.{}",
                self.server_version / 10000,
                self.server_version / 100 % 100
            )
        }
    }

    /// Rows of text values, NULL as `None`.
    async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| query_error(sql, e))?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn row(&self, sql: &str) -> Result<Vec<Option<String>>> {
        self.rows(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Postgres(format!("{sql}: no row returned")))
    }

    async fn value(&self, sql: &str) -> Result<Option<String>> {
        Ok(self.row(sql).await?.into_iter().next().flatten())
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| query_error(sql, e))
    }

    pub async fn system_identifier(&self) -> Result<String> {
        self.value("SELECT system_identifier::text FROM pg_control_system()")
            .await?
            .ok_or_else(|| Error::Postgres("cannot read the system identifier".into()))
    }

    /// Superuser, or the monitoring roles plus every function a backup calls.
    pub async fn has_backup_privileges(&self) -> Result<bool> {
        if self.server_version < 100000 {
            let value = self
                .value("SELECT usesuper FROM pg_user WHERE usename = CURRENT_USER")
                .await?;
            return Ok(value.as_deref() == Some("t"));
        }
        let (start, stop) = if self.server_version < 150000 {
            (
                "has_function_privilege(CURRENT_USER, 'pg_start_backup(text,bool,bool)', 'EXECUTE')",
                "has_function_privilege(CURRENT_USER, 'pg_stop_backup()', 'EXECUTE') OR \
                 has_function_privilege(CURRENT_USER, 'pg_stop_backup(bool,bool)', 'EXECUTE')",
            )
        } else {
            (
                "has_function_privilege(CURRENT_USER, 'pg_backup_start(text,bool)', 'EXECUTE')",
                "has_function_privilege(CURRENT_USER, 'pg_backup_stop(bool)', 'EXECUTE')",
            )
        };
        let sql = format!(
            "SELECT usesuper OR ((pg_has_role(CURRENT_USER, 'pg_monitor', 'USAGE') OR \
             (pg_has_role(CURRENT_USER, 'pg_read_all_settings', 'USAGE') AND \
             pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE'))) AND ({start}) AND \
             ({stop}) AND has_function_privilege(CURRENT_USER, 'pg_switch_wal()', 'EXECUTE') \
             AND has_function_privilege(CURRENT_USER, 'pg_create_restore_point(text)', \
             'EXECUTE')) FROM pg_user WHERE usename = CURRENT_USER"
        );
        Ok(self.value(&sql).await?.as_deref() == Some("t"))
    }

    /// Server facts recorded in backup.info; a query that fails leaves its field empty.
    pub async fn metadata(&self) -> ServerMetadata {
        let mut meta = ServerMetadata::default();
        if let Ok(value) = self.value("SHOW data_directory").await {
            meta.pgdata = value;
        }
        let segment = if self.server_version >= 110000 {
            self.value("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")
                .await
        } else {
            self.value(
                "SELECT a.setting::bigint * b.setting::bigint FROM pg_settings a, pg_settings b \
                 WHERE a.name = 'wal_segment_size' AND b.name = 'wal_block_size'",
            )
            .await
        };
        meta.xlog_segment_size = segment.ok().flatten().and_then(|v| v.parse().ok());
        if let Ok(rows) = self
            .rows(
                "SELECT name, setting FROM pg_settings \
                 WHERE name IN ('config_file', 'hba_file', 'ident_file')",
            )
            .await
        {
            for row in rows {
                let (Some(name), value) = (row[0].clone(), row[1].clone()) else {
                    continue;
                };
                match name.as_str() {
                    "config_file" => meta.config_file = value,
                    "hba_file" => meta.hba_file = value,
                    "ident_file" => meta.ident_file = value,
                    _ => {}
                }
            }
        }
        if let Ok(rows) = self
            .rows(
                "SELECT DISTINCT sourcefile AS included_file FROM pg_settings \
                 WHERE sourcefile IS NOT NULL AND sourcefile NOT IN \
                 (SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1",
            )
            .await
        {
            let files: Vec<String> = rows.into_iter().filter_map(|r| r[0].clone()).collect();
            meta.included_files = (!files.is_empty()).then_some(files);
        }
        if let Ok(rows) = self
            .rows(
                "SELECT spcname, oid, pg_tablespace_location(oid) AS spclocation \
                 FROM pg_tablespace WHERE pg_tablespace_location(oid) != ''",
            )
            .await
        {
            meta.tablespaces = rows
                .into_iter()
                .filter_map(|r| {
                    Some((r[0].clone()?, r[1].as_deref()?.parse().ok()?, r[2].clone()?))
                })
                .collect();
        }
        meta.data_checksums = self.value("SHOW data_checksums").await.ok().flatten();
        if self.server_version >= 170000 {
            meta.summarize_wal = self.value("SHOW summarize_wal").await.ok().flatten();
        }
        if self.has_backup_privileges().await.unwrap_or(false) {
            meta.cluster_size = self
                .value("SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace")
                .await
                .ok()
                .flatten()
                .and_then(|v| v.parse().ok());
        }
        meta
    }

    /// Starts a non-exclusive backup, which lasts as long as this session.
    pub async fn start_backup(&self, label: &str, fast: bool) -> Result<BackupStart> {
        if self.server_version >= 140000 {
            self.execute("SET idle_session_timeout TO 0").await?;
        }
        let call = if self.server_version >= 150000 {
            format!("pg_backup_start({}, {fast})", quote_literal(label))
        } else {
            format!("pg_start_backup({}, {fast}, FALSE)", quote_literal(label))
        };
        let row = self
            .row(&format!(
                "SELECT location, (SELECT timeline_id FROM pg_control_checkpoint()) AS timeline, \
                 now() AS timestamp FROM {call} AS location"
            ))
            .await?;
        let field = |i: usize, what: &str| {
            row[i]
                .clone()
                .ok_or_else(|| Error::Postgres(format!("backup start returned no {what}")))
        };
        Ok(BackupStart {
            lsn: field(0, "location")?,
            timeline: field(1, "timeline")?
                .parse()
                .map_err(|_| Error::Postgres("backup start returned a bad timeline".into()))?,
            timestamp: field(2, "timestamp")?,
        })
    }

    /// Stops the backup; PostgreSQL waits until the last segment it needs is archived.
    pub async fn stop_backup(&self) -> Result<BackupStop> {
        if self.server_version >= 140000 {
            self.execute("RESET idle_session_timeout").await?;
        }
        let call = if self.server_version >= 150000 {
            "pg_backup_stop()"
        } else {
            "pg_stop_backup(FALSE)"
        };
        let row = self
            .row(&format!(
                "SELECT end_row.lsn AS location, (SELECT CASE WHEN pg_is_in_recovery() \
                 THEN min_recovery_end_timeline ELSE timeline_id END \
                 FROM pg_control_checkpoint(), pg_control_recovery()) AS timeline, \
                 end_row.labelfile AS backup_label, now() AS timestamp FROM {call} AS end_row"
            ))
            .await?;
        let field = |i: usize, what: &str| {
            row[i]
                .clone()
                .ok_or_else(|| Error::Postgres(format!("backup stop returned no {what}")))
        };
        Ok(BackupStop {
            lsn: field(0, "location")?,
            timeline: field(1, "timeline")?
                .parse()
                .map_err(|_| Error::Postgres("backup stop returned a bad timeline".into()))?,
            backup_label: field(2, "backup_label")?,
            timestamp: field(3, "timestamp")?,
        })
    }

    pub async fn is_in_recovery(&self) -> Result<bool> {
        Ok(self.value("SELECT pg_is_in_recovery()").await?.as_deref() == Some("t"))
    }

    /// Closes the current WAL segment so that the backup's last one reaches the archive
    /// soon; skipped on a standby, which cannot switch.
    pub async fn switch_wal(&self) -> Result<()> {
        if !self.has_backup_privileges().await? {
            return Err(Error::Postgres(
                "insufficient privileges to switch WAL (superuser or backup privileges needed)"
                    .into(),
            ));
        }
        if self.is_in_recovery().await? {
            return Ok(());
        }
        let switch = if self.server_version >= 100000 {
            "SELECT pg_walfile_name(pg_switch_wal())"
        } else {
            "SELECT pg_xlogfile_name(pg_switch_xlog())"
        };
        self.value(switch).await?;
        Ok(())
    }

    /// A named point a recovery can stop at; failures are only logged, as in Barman.
    pub async fn create_restore_point(&self, name: &str) {
        match self.is_in_recovery().await {
            Ok(false) => {}
            _ => return,
        }
        let sql = format!("SELECT pg_create_restore_point({})", quote_literal(name));
        if let Err(e) = self.value(&sql).await {
            tracing::warn!("cannot create restore point {name}: {e}");
        }
    }

    /// A handle for a background keep-alive on the same session.
    pub fn keepalive_handle(&self) -> KeepAlive {
        KeepAlive {
            client: self.client.clone(),
        }
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Runs `SELECT 1` on the backup session from another task.
#[derive(Clone)]
pub struct KeepAlive {
    client: Arc<Client>,
}

impl KeepAlive {
    pub async fn ping(&self) -> Result<()> {
        self.client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| query_error("keep-alive", e))
    }
}

/// Segment name and offset of `lsn` (`X/X`) on `timeline`, as Barman computes them.
pub fn wal_position(lsn: &str, timeline: i64, segment_size: i64) -> Option<(String, i64)> {
    let (high, low) = lsn.split_once('/')?;
    let value = (u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?;
    let size = segment_size as u64;
    let log = value >> 32;
    let segments_per_log = 0xFFFF_FFFFu64 / size;
    let seg = (value & (size * segments_per_log)) / size;
    let offset = value % size;
    Some((format!("{timeline:08X}{log:08X}{seg:08X}"), offset as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_position_matches_barman() {
        assert_eq!(
            wal_position("0/5000028", 1, 16 << 20),
            Some(("000000010000000000000005".into(), 40))
        );
        assert_eq!(
            wal_position("1A/FF000138", 3, 16 << 20),
            Some(("000000030000001A000000FF".into(), 0x138))
        );
        assert_eq!(
            wal_position("0/5000028", 1, 64 << 20),
            Some(("000000010000000000000001".into(), 0x1000028))
        );
        assert_eq!(wal_position("garbage", 1, 16 << 20), None);
    }
}
