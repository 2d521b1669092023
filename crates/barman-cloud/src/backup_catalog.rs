//! The backups of one server in a bucket: `<prefix>/<server>/base/<id>/backup.info`, read
//! the way Barman's cloud catalog reads them, and backup identifiers resolved as its
//! commands resolve them (IDs, shortcuts, names).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use crate::catalog::{BackupInfo, BackupStatus, CatalogError, keep_target_from_annotation};
use crate::error::{Error, Result};
pub use crate::layout::is_backup_id;
use crate::layout::{ServerLayout, keep_annotation_backup};
use crate::storage::{CloudStorage, ObjectInfo};

/// How many backup.info objects are fetched at once.
const PARALLEL_READS: usize = 16;

pub struct BackupCatalog {
    /// Readable backups, in backup-ID (directory name) order.
    pub backups: Vec<BackupInfo>,
    /// Backup IDs whose backup.info exists but could not be read.
    pub unreadable: Vec<String>,
}

/// What reading one backup.info gave.
enum Read {
    Info(Box<BackupInfo>),
    /// A directory without backup.info: an upload in progress or a leftover, invisible.
    Missing,
    /// Stops the whole command.
    Fatal(Error),
    /// Skipped with a warning.
    Unreadable(Error),
}

impl BackupCatalog {
    /// Reads every backup of `server`. A backup.info that cannot be read is skipped with
    /// a warning, except one with a key Barman does not know, which stops everything
    /// (as Barman does: it cannot tell what a newer version meant).
    pub async fn load(storage: &CloudStorage, server: &str) -> Result<Self> {
        let layout = ServerLayout::new(storage, server);
        let ids = storage.list_dirs(&layout.base()).await?;
        let layout = &layout;
        let reads: Vec<(String, Read)> = futures::stream::iter(ids)
            .map(|id| async move {
                let key = layout.backup_info(&id);
                let read = match storage.get(&key).await {
                    Ok(bytes) => match BackupInfo::load(&id, &bytes) {
                        Ok(info) => Read::Info(Box::new(info)),
                        Err(e @ CatalogError::UnsupportedField(_)) => Read::Fatal(e.into()),
                        Err(e) => Read::Unreadable(e.into()),
                    },
                    Err(Error::NotFound(_)) => Read::Missing,
                    Err(e @ (Error::Connectivity(_) | Error::BucketMissing(_))) => Read::Fatal(e),
                    Err(e) => Read::Unreadable(e),
                };
                (id, read)
            })
            .buffered(PARALLEL_READS)
            .collect()
            .await;
        let mut catalog = BackupCatalog {
            backups: Vec::new(),
            unreadable: Vec::new(),
        };
        for (id, read) in reads {
            match read {
                Read::Info(info) => catalog.backups.push(*info),
                Read::Missing => {}
                Read::Fatal(e) => return Err(e),
                Read::Unreadable(e) => {
                    tracing::warn!("Unable to open backup.info file for {id}: {e}");
                    catalog.unreadable.push(id);
                }
            }
        }
        Ok(catalog)
    }

    pub fn get(&self, backup_id: &str) -> Option<&BackupInfo> {
        self.backups
            .iter()
            .find(|b| b.backup_id.as_deref() == Some(backup_id))
    }

    /// Resolves what a user typed: a well-formed ID as is (not checked), then the
    /// shortcuts `first`/`oldest`, `last`/`latest` (skipping STARTED backups, not FAILED
    /// ones) and `last-failed`, then backup names. `Ok(None)` when nothing matches.
    pub fn resolve(&self, text: &str, server: &str) -> Result<String> {
        if is_backup_id(text) {
            return Ok(text.to_string());
        }
        let id = |b: &BackupInfo| b.backup_id.clone();
        let not_started = |b: &&BackupInfo| b.status != Some(BackupStatus::Started);
        let shortcut = match text {
            "first" | "oldest" => self.backups.iter().find(not_started).and_then(id),
            "last" | "latest" => self.backups.iter().rev().find(not_started).and_then(id),
            "last-failed" => self
                .backups
                .iter()
                .rev()
                .find(|b| b.status == Some(BackupStatus::Failed))
                .and_then(id),
            _ => None,
        };
        if let Some(found) = shortcut {
            return Ok(found);
        }
        let named: Vec<String> = self
            .backups
            .iter()
            .filter(|b| b.backup_name.as_deref() == Some(text))
            .filter_map(|b| b.backup_id.clone())
            .collect();
        match named.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Config(format!(
                "Unknown backup '{text}' for server '{server}'"
            ))),
            many => Err(Error::Config(format!(
                "Multiple backups found matching name '{text}' (try using backup ID instead): {}",
                many.join(" ")
            ))),
        }
    }
}

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
            Some(None) => Err(Error::Operation(format!(
                "No DONE backup for server {server} matches '{text}'"
            ))),
            None => self.resolve(text, server),
        }
    }
}

/// Resolves a backup identifier, loading the catalog only when `text` is not an ID.
pub async fn resolve_backup_id(storage: &CloudStorage, server: &str, text: &str) -> Result<String> {
    if is_backup_id(text) {
        return Ok(text.to_string());
    }
    BackupCatalog::load(storage, server)
        .await?
        .resolve(text, server)
}

/// Reads `<server>/base/<id>/backup.info`; `None` when there is none.
pub async fn read_backup_info(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
) -> Result<Option<BackupInfo>> {
    let key = ServerLayout::new(storage, server).backup_info(backup_id);
    match storage.get(&key).await {
        Ok(bytes) => Ok(Some(BackupInfo::load(backup_id, &bytes)?)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `--target-tli` of barman-cloud-restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTimeline {
    Number(i64),
    Latest,
    Current,
}

/// Numeric value of an LSN written `X/Y` in hex.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

impl BackupCatalog {
    /// `auto` in barman-cloud-restore: the newest DONE backup (Barman also takes FAILED
    /// ones, which cannot be restored whole) that ends at or before the target time or LSN
    /// and is on the target timeline. `latest` is the timeline of the newest WAL in the archive.
    pub async fn choose_for_recovery(
        &self,
        storage: &CloudStorage,
        server: &str,
        target_time: Option<crate::catalog::Timestamp>,
        target_lsn: Option<u64>,
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
                let wals = storage
                    .list_tree(&ServerLayout::new(storage, server).wals())
                    .await?;
                let newest = wals
                    .iter()
                    .filter_map(|o| {
                        let name = o.key.rsplit('/').next().unwrap_or_default();
                        crate::wal::WalName::try_parse(crate::wal::split_compression_suffix(name).0)
                    })
                    .map(|w| w.as_str().to_string())
                    .max()
                    .ok_or_else(|| {
                        Error::Config("No WAL files found to determine the latest timeline".into())
                    })?;
                Some(i64::from(
                    u32::from_str_radix(&newest[..8], 16).unwrap_or(0),
                ))
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
                    .and_then(parse_lsn)
                    .is_some_and(|end| end <= lsn),
                (None, None) => true,
            });
        candidate.and_then(|b| b.backup_id.clone()).ok_or_else(|| {
            Error::Operation("Cannot find any candidate backup for recovery.".into())
        })
    }
}

/// The two keep targets Barman writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepTarget {
    /// The backup and every later WAL stay: recovery to any later point remains possible.
    Full,
    /// The backup and only the WAL it needs to be consistent stay.
    Standalone,
}

impl KeepTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            KeepTarget::Full => crate::retention::KEEP_FULL,
            KeepTarget::Standalone => crate::retention::KEEP_STANDALONE,
        }
    }
}

/// The keep annotation of one backup as Barman reads it, `None` when there is none. An
/// empty annotation is `Some("")`: it blocks `backup-delete -b` but keeps nothing.
pub async fn read_keep(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
) -> Result<Option<String>> {
    let key = ServerLayout::new(storage, server).keep_annotation(backup_id);
    match storage.get(&key).await {
        Ok(content) => Ok(Some(keep_target_from_annotation(&content)?)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `barman-cloud-backup-keep --target`: only a DONE backup can be kept.
pub async fn add_keep(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
    target: KeepTarget,
) -> Result<()> {
    let info = read_backup_info(storage, server, backup_id)
        .await?
        .ok_or_else(|| {
            Error::Config(format!(
                "Backup {backup_id} for server {server} does not exist"
            ))
        })?;
    if info.status != Some(BackupStatus::Done) {
        let status = info.status.as_ref().map_or("None", BackupStatus::as_str);
        return Err(Error::Operation(format!(
            "Cannot add keep to backup {backup_id} because it has status {status}. \
             Only backups with status DONE can be kept."
        )));
    }
    let key = ServerLayout::new(storage, server).keep_annotation(backup_id);
    storage
        .put(&key, target.as_str().as_bytes().to_vec().into(), &[])
        .await
}

/// `barman-cloud-backup-keep --release`: removing an absent annotation is not an error.
pub async fn release_keep(storage: &CloudStorage, server: &str, backup_id: &str) -> Result<()> {
    let key = ServerLayout::new(storage, server).keep_annotation(backup_id);
    storage.delete_objects(&[key], 1, 1).await.into_result()
}

/// Keep annotations of every backup of `server`: backup ID → the annotation's target as
/// Barman reads it. One recursive listing of `base/`, then only existing annotations read.
pub async fn keep_annotations(
    storage: &CloudStorage,
    server: &str,
) -> Result<BTreeMap<String, String>> {
    let base = ServerLayout::new(storage, server).base();
    keep_annotations_in(storage, &storage.list_tree(&base).await?).await
}

/// [`keep_annotations`] for a recursive listing of `base/` the caller already has.
pub async fn keep_annotations_in(
    storage: &CloudStorage,
    base_listing: &[ObjectInfo],
) -> Result<BTreeMap<String, String>> {
    let annotations = base_listing
        .iter()
        .filter_map(|o| Some((keep_annotation_backup(&o.key)?, o.key.as_str())));
    futures::stream::iter(annotations)
        .map(|(id, key)| async move {
            let id = id.to_string();
            let content = storage.get(key).await?;
            let target = keep_target_from_annotation(&content).map_err(Error::from)?;
            Ok::<_, Error>((id, target))
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
}
