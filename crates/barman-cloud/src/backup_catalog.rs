//! The backups of one server in a bucket: `<prefix>/<server>/base/<id>/backup.info`, read
//! the way Barman's cloud catalog reads them, and backup identifiers resolved as its
//! commands resolve them (IDs, shortcuts, names).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use crate::catalog::{BackupInfo, BackupStatus, CatalogError, keep_target_from_annotation};
use crate::compression::Compression;
use crate::error::{Error, Result};
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

/// `^\d{8}T\d{6}$`: a string used as a backup ID without looking it up.
pub fn is_backup_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 15
        && bytes[8] == b'T'
        && bytes[..8].iter().chain(&bytes[9..]).all(u8::is_ascii_digit)
}

impl BackupCatalog {
    /// Reads every backup of `server`. A backup.info that cannot be read is skipped with
    /// a warning, except one with a key Barman does not know, which stops everything
    /// (as Barman does: it cannot tell what a newer version meant).
    pub async fn load(storage: &CloudStorage, server: &str) -> Result<Self> {
        let base = storage.key(&[server, "base"]);
        let ids = storage.list_dirs(&base).await?;
        let reads: Vec<(String, Read)> = futures::stream::iter(ids)
            .map(|id| async move {
                let key = storage.key(&[server, "base", &id, "backup.info"]);
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
    let key = storage.key(&[server, "base", backup_id, "backup.info"]);
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
                let wals = storage.list_tree(&storage.key(&[server, "wals"])).await?;
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

/// `<server>/base/<id>/annotations/keep`, where Barman keeps the annotation.
pub fn keep_key(storage: &CloudStorage, server: &str, backup_id: &str) -> String {
    storage.key(&[server, "base", backup_id, "annotations", "keep"])
}

/// The keep annotation of one backup as Barman reads it, `None` when there is none. An
/// empty annotation is `Some("")`: it blocks `backup-delete -b` but keeps nothing.
pub async fn read_keep(
    storage: &CloudStorage,
    server: &str,
    backup_id: &str,
) -> Result<Option<String>> {
    match storage.get(&keep_key(storage, server, backup_id)).await {
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
    let key = keep_key(storage, server, backup_id);
    storage
        .put(&key, target.as_str().as_bytes().to_vec().into(), &[])
        .await
}

/// `barman-cloud-backup-keep --release`: removing an absent annotation is not an error.
pub async fn release_keep(storage: &CloudStorage, server: &str, backup_id: &str) -> Result<()> {
    let key = keep_key(storage, server, backup_id);
    storage.delete_objects(&[key], 1, 1).await.into_result()
}

/// Keep annotations of every backup of `server`: backup ID → the annotation's target as
/// Barman reads it. One recursive listing of `base/`, then only existing annotations read.
pub async fn keep_annotations(
    storage: &CloudStorage,
    server: &str,
) -> Result<BTreeMap<String, String>> {
    let base = storage.key(&[server, "base"]);
    keep_annotations_in(storage, &storage.list_tree(&base).await?).await
}

/// [`keep_annotations`] for a recursive listing of `base/` the caller already has.
pub async fn keep_annotations_in(
    storage: &CloudStorage,
    base_listing: &[ObjectInfo],
) -> Result<BTreeMap<String, String>> {
    let keys = base_listing
        .iter()
        .map(|o| o.key.as_str())
        .filter(|k| k.ends_with("/annotations/keep"));
    futures::stream::iter(keys)
        .map(|key| async move {
            let id = key.rsplit('/').nth(2).unwrap_or_default().to_string();
            let content = storage.get(key).await?;
            let target = keep_target_from_annotation(&content).map_err(Error::from)?;
            Ok::<_, Error>((id, target))
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
}

/// One archive object of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    pub key: String,
    pub compression: Option<Compression>,
}

/// The archives of PGDATA (`data.tar...`) or of one tablespace (`<oid>.tar...`): the main
/// object and the additional parts of a split archive (`data_0001.tar...`), in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFamily {
    /// `None` for PGDATA.
    pub oid: Option<u32>,
    /// `data` or the tablespace OID: the start of the object names.
    pub name: String,
    pub main: Option<ArchiveObject>,
    pub parts: Vec<ArchiveObject>,
}

impl ArchiveFamily {
    /// Main archive first, then the parts.
    pub fn objects(&self) -> impl Iterator<Item = &ArchiveObject> {
        self.main.iter().chain(&self.parts)
    }
}

/// The compression a base-backup archive name announces (the text after its first `.`).
fn archive_compression(extension: &str) -> Option<Option<Compression>> {
    match extension {
        "tar" => Some(None),
        "tar.gz" => Some(Some(Compression::Gzip)),
        "tar.bz2" => Some(Some(Compression::Bzip2)),
        "tar.snappy" => Some(Some(Compression::Snappy)),
        "tar.lz4" => Some(Some(Compression::Lz4)),
        "tar.zst" => Some(Some(Compression::Zstd)),
        _ => None,
    }
}

/// Sorts the objects of a backup directory (`dir` ends with `/`) into archive families,
/// PGDATA first then the tablespaces of backup.info, as Barman finds them: an object
/// belongs to the first family whose name it starts with followed by `.` (main archive)
/// or `_` (additional part); unknown extensions are skipped with a warning.
pub fn backup_archives(info: &BackupInfo, dir: &str, objects: &[ObjectInfo]) -> Vec<ArchiveFamily> {
    let mut families = vec![ArchiveFamily {
        oid: None,
        name: "data".into(),
        main: None,
        parts: Vec::new(),
    }];
    for tablespace in info.tablespaces.iter().flatten() {
        families.push(ArchiveFamily {
            oid: Some(tablespace.oid),
            name: tablespace.oid.to_string(),
            main: None,
            parts: Vec::new(),
        });
    }
    let mut sorted: Vec<&ObjectInfo> = objects.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for object in sorted {
        let Some(rest) = object.key.strip_prefix(dir) else {
            continue;
        };
        for family in &mut families {
            let Some(after) = rest.strip_prefix(family.name.as_str()) else {
                continue;
            };
            let (is_main, extension) = match after.as_bytes().first() {
                Some(b'.') => (true, &after[1..]),
                Some(b'_') => (false, after.split_once('.').map_or(after, |(_, ext)| ext)),
                _ => continue,
            };
            match archive_compression(extension) {
                Some(compression) => {
                    let archive = ArchiveObject {
                        key: object.key.clone(),
                        compression,
                    };
                    if is_main {
                        family.main = Some(archive);
                    } else {
                        family.parts.push(archive);
                    }
                }
                None => tracing::warn!("Skipping unknown extension: {extension}"),
            }
            break;
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_ids_are_fifteen_characters_with_a_t() {
        assert!(is_backup_id("20250304T101112"));
        for bad in [
            "2025030T101112",
            "20250304t101112",
            "20250304T10111a",
            "latest",
            "",
        ] {
            assert!(!is_backup_id(bad), "{bad}");
        }
    }

    #[test]
    fn archives_are_grouped_by_family_like_barman() {
        let info = BackupInfo {
            tablespaces: Some(vec![crate::catalog::Tablespace {
                name: "tbs".into(),
                oid: 16385,
                location: "/t".into(),
            }]),
            ..Default::default()
        };
        let dir = "p/srv/base/20250101T000000/";
        let objects: Vec<ObjectInfo> = [
            "16385_0001.tar.gz",
            "16385.tar.gz",
            "163850.tar",
            "backup.info",
            "data_0002.tar.gz",
            "data.tar.gz",
            "data_0001.tar.gz",
            "data.tar.xz",
            "database.tar",
        ]
        .iter()
        .map(|name| ObjectInfo {
            key: format!("{dir}{name}"),
            size: 1,
        })
        .collect();
        let families = backup_archives(&info, dir, &objects);
        let names: Vec<Vec<&str>> = families
            .iter()
            .map(|f| f.objects().map(|o| &o.key[dir.len()..]).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["data.tar.gz", "data_0001.tar.gz", "data_0002.tar.gz"],
                vec!["16385.tar.gz", "16385_0001.tar.gz"],
            ]
        );
        assert_eq!(families[1].oid, Some(16385));
        assert_eq!(
            families[0].main.as_ref().unwrap().compression,
            Some(Compression::Gzip)
        );
    }
}
