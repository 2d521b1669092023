//! The backups of one server, read through its [`CatalogStore`] the way Barman's cloud
//! catalog reads them (barman/cloud.py `CloudBackupCatalog`), backup identifiers resolved
//! as its commands resolve them (IDs, shortcuts, names), and keep annotations.

mod keep;
mod select;

pub use keep::add_keep;
pub use select::{BackupSelector, RecoveryTarget, TargetTimeline};

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;

use crate::catalog::{BackupInfo, BackupStatus, CatalogError};
use crate::catalog_store::PARALLEL_READS;
pub use crate::catalog_store::{BucketCatalog, CatalogStore, KeepTarget};
use crate::error::{Error, Result};
pub use crate::layout::is_backup_id;

pub struct BackupCatalog {
    /// Readable backups, in backup-ID (directory name) order.
    pub backups: Vec<BackupInfo>,
    /// Backup IDs whose backup.info exists but could not be read.
    pub unreadable: Vec<String>,
    /// Each readable backup's backup.info as stored, by backup ID (a deletion puts it
    /// back if nothing of the backup could be deleted).
    pub stored: BTreeMap<String, Bytes>,
}

/// What reading one backup.info gave.
enum Read {
    Info(Box<BackupInfo>, Bytes),
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
    pub async fn load(store: &impl CatalogStore) -> Result<Self> {
        let ids = store.backup_ids().await?;
        let reads: Vec<(String, Read)> = futures::stream::iter(ids)
            .map(|id| async move {
                let read = match store.read_backup_info(&id).await {
                    Ok(Some(bytes)) => match BackupInfo::load(&id, &bytes) {
                        Ok(info) => Read::Info(Box::new(info), bytes),
                        Err(e @ CatalogError::UnsupportedField(_)) => Read::Fatal(e.into()),
                        Err(e) => Read::Unreadable(e.into()),
                    },
                    Ok(None) => Read::Missing,
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
            stored: BTreeMap::new(),
        };
        for (id, read) in reads {
            match read {
                Read::Info(info, bytes) => {
                    catalog.backups.push(*info);
                    catalog.stored.insert(id, bytes);
                }
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
            [] => Err(Error::UnknownBackup(format!(
                "Unknown backup '{text}' for server '{server}'"
            ))),
            many => Err(Error::UnknownBackup(format!(
                "Multiple backups found matching name '{text}' (try using backup ID instead): {}",
                many.join(" ")
            ))),
        }
    }
}

/// Resolves a backup identifier, loading the catalog only when `text` is not an ID.
pub async fn resolve_backup_id(store: &impl CatalogStore, text: &str) -> Result<String> {
    if is_backup_id(text) {
        return Ok(text.to_string());
    }
    BackupCatalog::load(store)
        .await?
        .resolve(text, store.server())
}

/// The backup.info of `backup_id`; `None` when there is none.
pub async fn read_backup_info(
    store: &impl CatalogStore,
    backup_id: &str,
) -> Result<Option<BackupInfo>> {
    match store.read_backup_info(backup_id).await? {
        Some(bytes) => Ok(Some(BackupInfo::load(backup_id, &bytes)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ServerLayout;
    use crate::storage::in_memory;

    async fn put(store: &BucketCatalog<'_>, key: &str, data: &[u8]) {
        store
            .storage()
            .put(key, data.to_vec().into(), &[])
            .await
            .unwrap();
    }

    fn info(id: &str, status: BackupStatus, timeline: i64, name: Option<&str>) -> BackupInfo {
        BackupInfo {
            backup_id: Some(id.into()),
            status: Some(status),
            timeline: Some(timeline),
            backup_name: name.map(str::to_string),
            end_xlog: Some("0/5000000".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn catalog_resolution_and_keeps_through_the_store() {
        let storage = in_memory("s3://bucket/pg");
        let store = BucketCatalog::new(&storage, "srv");
        let layout: &ServerLayout = store.layout();
        for backup in [
            info("20250101T000000", BackupStatus::Done, 1, Some("first")),
            info("20250102T000000", BackupStatus::Failed, 1, None),
            info("20250103T000000", BackupStatus::Done, 2, None),
            info("20250104T000000", BackupStatus::Started, 2, None),
        ] {
            let id = backup.backup_id.clone().unwrap();
            let text = backup.to_file_text().unwrap();
            store
                .write_backup_info(&id, text.into(), &[])
                .await
                .unwrap();
        }
        put(
            &store,
            &layout.backup_info("20250105T000000"),
            b"not a backup.info",
        )
        .await;
        put(
            &store,
            &layout.backup_object("20250106T000000", "data.tar"),
            b"",
        )
        .await;
        put(
            &store,
            "pg/srv/wals/0000000200000000/000000020000000000000003.gz",
            b"",
        )
        .await;
        put(&store, "pg/srv/wals/00000002.history", b"").await;

        let catalog = BackupCatalog::load(&store).await.unwrap();
        let ids: Vec<&str> = catalog
            .backups
            .iter()
            .filter_map(|b| b.backup_id.as_deref())
            .collect();
        assert_eq!(ids.len(), 4, "the upload in progress is invisible: {ids:?}");
        assert_eq!(catalog.unreadable, ["20250105T000000"]);
        assert_eq!(catalog.resolve("latest", "srv").unwrap(), "20250103T000000");
        assert_eq!(
            catalog.resolve("last-failed", "srv").unwrap(),
            "20250102T000000"
        );
        assert_eq!(catalog.resolve("first", "srv").unwrap(), "20250101T000000");
        // Shortcuts come before names ("first" is also a backup's name).
        assert_eq!(
            resolve_backup_id(&store, "first").await.unwrap(),
            "20250101T000000"
        );
        assert!(catalog.resolve("nothing", "srv").is_err());
        assert_eq!(
            catalog.resolve_for_restore("oldest", "srv").unwrap(),
            "20250101T000000"
        );
        let chosen = catalog
            .choose_for_recovery(&store, None, None, Some(TargetTimeline::Latest))
            .await
            .unwrap();
        assert_eq!(
            chosen, "20250103T000000",
            "the newest DONE backup on timeline 2"
        );

        assert!(store.keep_annotations().await.unwrap().is_empty());
        add_keep(&store, "20250101T000000", KeepTarget::Standalone)
            .await
            .unwrap();
        let refused = add_keep(&store, "20250102T000000", KeepTarget::Full).await;
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("has status FAILED")
        );
        let keeps = store.keep_annotations().await.unwrap();
        assert_eq!(keeps.text("20250101T000000"), Some("standalone"));
        store.remove_keep("20250101T000000").await.unwrap();
        store.remove_keep("20250101T000000").await.unwrap();
        assert!(store.keep_annotations().await.unwrap().is_empty());
    }
}
