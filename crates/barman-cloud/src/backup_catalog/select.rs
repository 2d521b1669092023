//! Which backup a restore uses: an ID, a shortcut or name (DONE backups only), or `auto`,
//! the newest DONE backup before a recovery target, chosen as Barman chooses it
//! (barman/clients/cloud_restore.py `main`, `get_backup_id_from_target_time`/`_lsn`/`_tli`).

use super::{BackupCatalog, is_backup_id};
use crate::catalog::{BackupInfo, BackupStatus};
use crate::catalog_store::CatalogStore;
use crate::error::{Error, Result};
use crate::wal::Lsn;

impl BackupCatalog {
    /// [`resolve`](Self::resolve) for barman-cloud-restore: the shortcuts choose among
    /// DONE backups only (Barman's also pick FAILED ones, which cannot be restored whole).
    pub fn resolve_for_restore(&self, text: &str, server: &str) -> Result<String> {
        let done = |b: &&BackupInfo| b.status == Some(BackupStatus::Done);
        let id = |b: &BackupInfo| b.backup_id.clone();
        let shortcut = match text {
            _ if is_backup_id(text) => return Ok(text.to_string()),
            "first" | "oldest" => Some(self.backups.iter().find(done).and_then(id)),
            "last" | "latest" => Some(self.backups.iter().rev().find(done).and_then(id)),
            _ => None,
        };
        match shortcut {
            Some(Some(found)) => Ok(found),
            // Barman's shortcut would pick a backup that is not DONE: refused. When it
            // finds nothing either, its error (an unknown backup) is the answer.
            Some(None) => self.resolve(text, server).and_then(|_| {
                Err(Error::Refused(format!(
                    "No DONE backup for server {server} matches '{text}'"
                )))
            }),
            None => self.resolve(text, server),
        }
    }
}

/// What barman-cloud-restore restores.
#[derive(Debug, Clone)]
pub enum BackupSelector {
    /// A backup ID, a shortcut (`first`/`oldest`, `last`/`latest`: DONE backups only) or
    /// a backup name.
    Named(String),
    /// `auto`: the newest DONE backup that ends before the recovery target.
    Auto(RecoveryTarget),
}

/// The `--target-*` options of barman-cloud-restore. Time and LSN stay text until the
/// catalog is read, and are ignored unless the backup is `auto`, as in Barman: a bad one
/// is an error of the restore (exit 4), not of the arguments.
#[derive(Debug, Clone, Default)]
pub struct RecoveryTarget {
    pub time: Option<String>,
    pub lsn: Option<String>,
    pub timeline: Option<TargetTimeline>,
}

impl BackupSelector {
    /// `auto` selects by target; anything else names a backup.
    pub fn new(text: &str, target: RecoveryTarget) -> Self {
        if text == "auto" {
            BackupSelector::Auto(target)
        } else {
            BackupSelector::Named(text.to_string())
        }
    }

    /// The ID of the backup to restore. A well-formed ID is taken as is (its backup.info
    /// is read by the restore); anything else reads the catalog.
    pub async fn select(&self, store: &impl CatalogStore) -> Result<String> {
        match self {
            BackupSelector::Named(text) if is_backup_id(text) => Ok(text.clone()),
            BackupSelector::Named(text) => BackupCatalog::load(store)
                .await?
                .resolve_for_restore(text, store.server()),
            BackupSelector::Auto(target) => {
                let catalog = BackupCatalog::load(store).await?;
                let time = match target.time.as_deref() {
                    None => None,
                    Some(text) => Some(crate::catalog::timestamp::parse(text).map_err(|e| {
                        Error::Config(format!(
                            "Unable to parse the target time parameter '{text}': {e}"
                        ))
                    })?),
                };
                let lsn = match target.lsn.as_deref() {
                    None => None,
                    Some(text) => Some(
                        Lsn::parse(text)
                            .ok_or_else(|| Error::Config(format!("Invalid LSN: {text}")))?,
                    ),
                };
                catalog
                    .choose_for_recovery(store, time, lsn, target.timeline.clone())
                    .await
            }
        }
    }
}

/// `--target-tli` of barman-cloud-restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTimeline {
    Number(i64),
    Latest,
    Current,
}

impl BackupCatalog {
    /// `auto` in barman-cloud-restore: the newest DONE backup (Barman also takes FAILED
    /// ones, which cannot be restored whole) that ends at or before the target time or LSN
    /// and is on the target timeline. `latest` is the timeline of the newest WAL in the archive.
    pub async fn choose_for_recovery(
        &self,
        store: &impl CatalogStore,
        target_time: Option<crate::catalog::Timestamp>,
        target_lsn: Option<Lsn>,
        target_tli: Option<TargetTimeline>,
    ) -> Result<String> {
        let timeline = match target_tli {
            None => None,
            Some(TargetTimeline::Number(n)) => Some(n),
            Some(TargetTimeline::Current) => {
                return Err(Error::Config(
                    "'current' is not a valid --target-tli without a backup ID".into(),
                ));
            }
            Some(TargetTimeline::Latest) => {
                let names = store.wal_names().await?;
                let newest = names
                    .iter()
                    .max_by(|a, b| a.as_str().cmp(b.as_str()))
                    .ok_or_else(|| {
                        Error::Config("No WAL files found to determine the latest timeline".into())
                    })?;
                Some(i64::from(newest.timeline()))
            }
        };
        let candidate = self
            .backups
            .iter()
            .rev()
            .filter(|b| b.status == Some(BackupStatus::Done))
            .filter(|b| timeline.is_none() || b.timeline == timeline)
            .find(|b| match (target_time, target_lsn) {
                (Some(time), _) => b.end_time.is_some_and(|end| end <= time),
                (None, Some(lsn)) => b
                    .end_xlog
                    .as_deref()
                    .and_then(Lsn::parse)
                    .is_some_and(|end| end <= lsn),
                (None, None) => true,
            });
        candidate
            .and_then(|b| b.backup_id.clone())
            .ok_or_else(|| Error::Missing("Cannot find any candidate backup for recovery.".into()))
    }
}
