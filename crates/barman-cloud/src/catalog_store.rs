//! The seam between the catalog logic and where a server's catalog lives.
//!
//! Listing backups, resolving IDs and shortcuts, keep annotations, retention, choosing a
//! backup for a recovery target: all of it reads and writes a server's catalog through
//! [`CatalogStore`], never through bucket keys. [`BucketCatalog`] is the barman-cloud
//! layout in a bucket or a `file://` directory ([`crate::layout`]); a `barman_home` tree in
//! Barman server layout (`meta/<id>-backup.info`, `base/<id>/data/`, `wals/` with
//! `xlog.db`) is the next implementation. What a backup's data is (tar archives, or disk
//! snapshots plus a `backup_label` object) is said by its backup.info (`snapshots_info`),
//! not by the store.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::catalog::{KeepAnnotations, keep_target_from_annotation};
use crate::error::{Error, Result};
use crate::layout::{ServerLayout, keep_annotation_backup};
use crate::storage::{CloudStorage, ObjectInfo, Provider};
use crate::wal::{WalName, split_compression_suffix};

/// How many catalog objects (backup.info files, keep annotations) are read at once.
pub(crate) const PARALLEL_READS: usize = 16;

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

/// One server's catalog: its backups' metadata, keep annotations and WAL names.
#[allow(async_fn_in_trait)]
pub trait CatalogStore {
    /// The server whose catalog this is.
    fn server(&self) -> &str;

    /// The IDs of the backups that have a place in the store, sorted. One without
    /// backup.info (an upload in progress, a leftover) is invisible to the catalog.
    async fn backup_ids(&self) -> Result<Vec<String>>;

    /// The backup.info of `backup_id` as stored; `None` when it has none.
    async fn read_backup_info(&self, backup_id: &str) -> Result<Option<Bytes>>;

    /// Stores the backup.info of `backup_id` (replacing it) and confirms it is whole.
    /// `tags` are object tags where the store has them.
    async fn write_backup_info(
        &self,
        backup_id: &str,
        text: Bytes,
        tags: &[(String, String)],
    ) -> Result<()>;

    /// Every keep annotation, as Barman reads them.
    async fn keep_annotations(&self) -> Result<KeepAnnotations>;

    async fn write_keep(&self, backup_id: &str, target: KeepTarget) -> Result<()>;

    /// Removes the keep annotation of `backup_id`; an absent one is not an error.
    async fn remove_keep(&self, backup_id: &str) -> Result<()>;

    /// The names of the WAL files in the archive (compression suffixes removed).
    async fn wal_names(&self) -> Result<Vec<WalName>>;
}

/// A server's catalog in a bucket (or a `file://` directory) in barman-cloud's layout.
pub struct BucketCatalog<'a> {
    storage: &'a CloudStorage,
    server: String,
    layout: ServerLayout,
}

impl<'a> BucketCatalog<'a> {
    pub fn new(storage: &'a CloudStorage, server: &str) -> Self {
        BucketCatalog {
            storage,
            server: server.to_string(),
            layout: ServerLayout::new(storage, server),
        }
    }

    pub fn storage(&self) -> &'a CloudStorage {
        self.storage
    }

    pub fn layout(&self) -> &ServerLayout {
        &self.layout
    }

    /// [`CatalogStore::keep_annotations`] from a recursive listing of `base/` the caller
    /// already made: only the annotations found there are read.
    pub async fn keep_annotations_in(
        &self,
        base_listing: &[ObjectInfo],
    ) -> Result<KeepAnnotations> {
        let storage = self.storage;
        let annotations = base_listing
            .iter()
            .filter_map(|o| Some((keep_annotation_backup(&o.key)?, o.key.as_str())));
        futures::stream::iter(annotations)
            .map(|(id, key)| async move {
                let content = storage.get(key).await?;
                let target = keep_target_from_annotation(&content).map_err(Error::from)?;
                Ok::<_, Error>((id.to_string(), target))
            })
            .buffered(PARALLEL_READS)
            .try_collect()
            .await
    }

    /// One object, `None` when it is absent. Barman's Azure and GCS readers also return
    /// nothing when the container or bucket itself is missing (barman/cloud_providers
    /// `azure_blob_storage.py` and `google_cloud_storage.py`, `remote_open`); its S3
    /// reader raises.
    async fn get_if_present(&self, key: &str) -> Result<Option<Bytes>> {
        match self.storage.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(Error::BucketMissing(_))
                if matches!(
                    self.storage.location().provider,
                    Provider::AzureBlobStorage | Provider::GoogleCloudStorage
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl CatalogStore for BucketCatalog<'_> {
    fn server(&self) -> &str {
        &self.server
    }

    async fn backup_ids(&self) -> Result<Vec<String>> {
        self.storage.list_dirs(&self.layout.base()).await
    }

    async fn read_backup_info(&self, backup_id: &str) -> Result<Option<Bytes>> {
        self.get_if_present(&self.layout.backup_info(backup_id))
            .await
    }

    async fn write_backup_info(
        &self,
        backup_id: &str,
        text: Bytes,
        tags: &[(String, String)],
    ) -> Result<()> {
        let key = self.layout.backup_info(backup_id);
        tracing::info!("Uploading '{key}'");
        let size = text.len() as u64;
        self.storage.put(&key, text.into(), tags).await?;
        self.storage.verify_size(&key, size).await
    }

    async fn keep_annotations(&self) -> Result<KeepAnnotations> {
        let listing = self.storage.list_tree(&self.layout.base()).await?;
        self.keep_annotations_in(&listing).await
    }

    async fn write_keep(&self, backup_id: &str, target: KeepTarget) -> Result<()> {
        let key = self.layout.keep_annotation(backup_id);
        let content = target.as_str().as_bytes().to_vec();
        self.storage.put(&key, content.into(), &[]).await
    }

    async fn remove_keep(&self, backup_id: &str) -> Result<()> {
        let key = self.layout.keep_annotation(backup_id);
        self.storage
            .delete_objects(&[key], 1, 1)
            .await
            .into_result()
    }

    async fn wal_names(&self) -> Result<Vec<WalName>> {
        let objects = self.storage.list_tree(&self.layout.wals()).await?;
        Ok(objects
            .iter()
            .filter_map(|o| {
                let name = o.key.rsplit('/').next().unwrap_or_default();
                WalName::try_parse(split_compression_suffix(name).0)
            })
            .collect())
    }
}
