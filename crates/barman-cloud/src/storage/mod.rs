//! Object storage: one [`CloudStorage`] over `object_store`'s `ObjectStore` trait for S3,
//! Azure Blob Storage, Google Cloud Storage and local directories.
//!
//! Provider differences (how credentials are found, bucket-level calls, which headers a
//! write needs) stay in the provider modules; callers see keys, bytes and semantic errors.

pub(crate) mod aws;
mod azure;
mod gcs;
mod headers;
mod local;
pub mod location;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, TagSet};

use crate::error::{Error, Result, error_chain};
pub use location::{AzureAccount, Location, Provider};

/// S3 server-side encryption (`-e/--encryption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Encryption {
    Aes256,
    AwsKms,
}

/// `--addressing-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingStyle {
    #[default]
    Auto,
    Virtual,
    Path,
}

/// `--azure-credential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureCredentialKind {
    AzureCli,
    ManagedIdentity,
    Default,
}

/// Everything the command line can say about how to reach the storage.
#[derive(Clone, Default)]
pub struct StorageOptions {
    pub cloud_provider: Option<Provider>,
    pub endpoint_url: Option<String>,
    pub aws_profile: Option<String>,
    pub aws_irsa: bool,
    pub read_timeout_secs: Option<u64>,
    pub addressing_style: AddressingStyle,
    pub s3_encryption: Option<S3Encryption>,
    pub sse_kms_key_id: Option<String>,
    /// `--sse-customer-key file:///path`: the URI, read when the store is built.
    pub sse_customer_key_uri: Option<String>,
    pub azure_credential: Option<AzureCredentialKind>,
    pub encryption_scope: Option<String>,
    pub kms_key_name: Option<String>,
}

// Hand-written so that no secret-bearing field ever reaches a log line.
impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("cloud_provider", &self.cloud_provider)
            .field("endpoint_url", &self.endpoint_url)
            .field("aws_profile", &self.aws_profile)
            .field("s3_encryption", &self.s3_encryption)
            .field("sse_customer_key", &self.sse_customer_key_uri.is_some())
            .field("azure_credential", &self.azure_credential)
            .finish_non_exhaustive()
    }
}

/// What the storage can do beyond plain reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Object tags (S3 tagging, Azure blob index tags) or metadata (GCS) on writes.
    pub tags: bool,
}

/// An object found by a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// Result of an existence probe of the bucket/container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Exists,
    Missing,
}

/// Outcome of a create-only write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

pub struct CloudStorage {
    location: Location,
    store: Arc<dyn ObjectStore>,
    /// The same store's raw listing API, where it has one: it lists by any key prefix
    /// (`wals/X/NAME`), not only by directory, so finding one WAL's copies costs one small
    /// listing instead of a listing of its whole directory (up to 256 segments).
    paginated: Option<Arc<dyn PaginatedListStore>>,
    admin: BucketAdmin,
    capabilities: Capabilities,
}

/// Bucket-level calls, which `object_store` does not cover.
enum BucketAdmin {
    S3(aws::S3Admin),
    Azure(azure::AzureAdmin),
    Gcs(gcs::GcsAdmin),
    Local,
    /// A store handed over by the caller ([`CloudStorage::from_object_store`]): its
    /// bucket exists and cannot be created.
    Given,
}

impl CloudStorage {
    /// Builds the client for `url`. Nothing is contacted except credential sources.
    pub async fn open(url: &str, options: &StorageOptions) -> Result<Self> {
        let provider = options.cloud_provider.unwrap_or(Provider::AwsS3);
        let location = Location::parse(url, provider)?;
        // Each cloud store also serves as its own raw-prefix listing API.
        fn cloud<S: ObjectStore + PaginatedListStore>(
            store: Arc<S>,
        ) -> (Arc<dyn ObjectStore>, Option<Arc<dyn PaginatedListStore>>) {
            (store.clone(), Some(store))
        }
        let ((store, paginated), admin, capabilities) = match location.provider {
            Provider::AwsS3 => {
                let (store, admin) = aws::build(&location, options).await?;
                (
                    cloud(store),
                    BucketAdmin::S3(admin),
                    Capabilities { tags: true },
                )
            }
            Provider::AzureBlobStorage => {
                let (store, admin) = azure::build(&location, options)?;
                (
                    cloud(store),
                    BucketAdmin::Azure(admin),
                    Capabilities { tags: true },
                )
            }
            Provider::GoogleCloudStorage => {
                let (store, admin) = gcs::build(&location, options)?;
                (
                    cloud(store),
                    BucketAdmin::Gcs(admin),
                    Capabilities { tags: true },
                )
            }
            Provider::Local => (
                (local::build(&location)?, None),
                BucketAdmin::Local,
                Capabilities { tags: false },
            ),
        };
        Ok(CloudStorage {
            location,
            store,
            paginated,
            admin,
            capabilities,
        })
    }

    /// Wraps any `object_store` store (object_store's `InMemory` in unit tests) as the
    /// destination `location`: keys, listings, create-only writes, deletions and error
    /// mapping are the same as for a store built by [`Self::open`]; the bucket counts as
    /// existing; no tags are written and S3 Object Lock is not checked. Listings go
    /// through `list_with_delimiter`, as for `file://` destinations.
    pub fn from_object_store(location: Location, store: Arc<dyn ObjectStore>) -> Self {
        CloudStorage {
            location,
            store,
            paginated: None,
            admin: BucketAdmin::Given,
            capabilities: Capabilities { tags: false },
        }
    }

    /// Whether objects are files in a local directory (a `file://` destination).
    fn is_local_directory(&self) -> bool {
        matches!(self.admin, BucketAdmin::Local)
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Key of `parts` below the URL prefix.
    pub fn key(&self, parts: &[&str]) -> String {
        self.location.key(parts)
    }

    fn path(key: &str) -> Result<Path> {
        Path::parse(key).map_err(|e| Error::InvalidInput(format!("invalid object key {key}: {e}")))
    }

    fn put_options(&self, tags: &[(String, String)], mode: PutMode) -> PutOptions {
        let mut options = PutOptions {
            mode,
            ..Default::default()
        };
        if !tags.is_empty() && self.capabilities.tags {
            if self.location.provider == Provider::GoogleCloudStorage {
                // GCS has no object tags; Barman stores them as custom metadata.
                for (k, v) in tags {
                    options.attributes.insert(
                        object_store::Attribute::Metadata(k.clone().into()),
                        v.clone().into(),
                    );
                }
            } else {
                let mut set = TagSet::default();
                for (k, v) in tags {
                    set.push(k, v);
                }
                options.tags = set;
            }
        }
        options
    }

    /// Writes `payload` at `key`, replacing any object there.
    pub async fn put(
        &self,
        key: &str,
        payload: PutPayload,
        tags: &[(String, String)],
    ) -> Result<()> {
        let path = Self::path(key)?;
        self.store
            .put_opts(&path, payload, self.put_options(tags, PutMode::Overwrite))
            .await
            .map_err(|e| self.map_error(e, key))?;
        Ok(())
    }

    /// Writes `payload` at `key` only if nothing is there yet.
    pub async fn put_if_absent(
        &self,
        key: &str,
        payload: PutPayload,
        tags: &[(String, String)],
    ) -> Result<PutOutcome> {
        let path = Self::path(key)?;
        match self
            .store
            .put_opts(
                &path,
                payload.clone(),
                self.put_options(tags, PutMode::Create),
            )
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(PutOutcome::AlreadyExists),
            Err(object_store::Error::NotImplemented { .. }) => {
                // A server without conditional writes: the caller listed first, so a plain
                // write only loses to a concurrent writer of the same name.
                self.put(key, payload, tags).await?;
                Ok(PutOutcome::Created)
            }
            Err(e) => Err(self.map_error(e, key)),
        }
    }

    /// The provider's multipart upload at `key`, with the tags/metadata a write carries.
    async fn open_multipart(
        &self,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<Box<dyn object_store::MultipartUpload>> {
        let path = Self::path(key)?;
        let put = self.put_options(tags, PutMode::Overwrite);
        let options = object_store::PutMultipartOptions {
            tags: put.tags,
            attributes: put.attributes,
            ..Default::default()
        };
        self.store
            .put_multipart_opts(&path, options)
            .await
            .map_err(|e| self.map_error(e, key))
    }

    /// Writes `data` at `key` as a multipart upload (S3 parts, Azure blocks, GCS XML
    /// multipart) of `part_size` bytes with up to `concurrency` parts in flight; the
    /// upload is aborted if any part fails.
    pub async fn put_multipart(
        &self,
        key: &str,
        data: Bytes,
        part_size: usize,
        concurrency: usize,
        tags: &[(String, String)],
    ) -> Result<()> {
        let upload = self.open_multipart(key, tags).await?;
        let mut writer =
            object_store::WriteMultipart::new_with_chunk_size(upload, part_size.max(1));
        let mut offset = 0;
        while offset < data.len() {
            let end = (offset + part_size.max(1)).min(data.len());
            if let Err(e) = writer.wait_for_capacity(concurrency.max(1)).await {
                let _ = writer.abort().await;
                return Err(self.map_error(e, key));
            }
            writer.put(data.slice(offset..end));
            offset = end;
        }
        writer.finish().await.map_err(|e| self.map_error(e, key))?;
        Ok(())
    }

    /// Starts a multipart upload at `key` whose parts the caller sends one by one; nothing
    /// is visible at `key` until [`MultipartObject::complete`].
    pub async fn start_multipart(
        &self,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<MultipartObject> {
        let upload = self.open_multipart(key, tags).await?;
        Ok(MultipartObject {
            upload,
            bucket: self.location.bucket.clone(),
            key: key.to_string(),
        })
    }

    /// Reads a whole object into memory. For large objects use [`Self::get_stream`].
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = Self::path(key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.map_error(e, key))?;
        result.bytes().await.map_err(|e| self.map_error(e, key))
    }

    /// The file behind `key` when the destination is a local directory, so that large
    /// reads can go straight to the file instead of through small async chunks.
    pub fn local_file(&self, key: &str) -> Option<std::path::PathBuf> {
        self.is_local_directory()
            .then(|| std::path::Path::new(&self.location.bucket).join(key))
    }

    /// Streams an object's bytes.
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let path = Self::path(key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.map_error(e, key))?;
        let key = key.to_string();
        let bucket = self.location.bucket.clone();
        Ok(result
            .into_stream()
            .map(move |chunk| chunk.map_err(|e| map_error(&bucket, e, &key)))
            .boxed())
    }

    /// Objects directly in the "directory" of `prefix` whose keys start with `prefix`
    /// (which need not end at a `/`): `wals/X/NAME` finds `NAME`, `NAME.gz`,
    /// `NAME.partial`... without listing anything below that directory. Sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut found: Vec<ObjectInfo> = match &self.paginated {
            Some(paginated) => self.list_by_prefix(paginated.as_ref(), prefix).await?,
            None => {
                let dir = prefix.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
                let dir_path = if dir.is_empty() {
                    None
                } else {
                    Some(Self::path(dir)?)
                };
                self.store
                    .list_with_delimiter(dir_path.as_ref())
                    .await
                    .map_err(|e| self.map_error(e, prefix))?
                    .objects
                    .into_iter()
                    .map(|meta| ObjectInfo {
                        key: meta.location.to_string(),
                        size: meta.size,
                    })
                    .collect()
            }
        };
        found.retain(|o| o.key.starts_with(prefix));
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// The objects whose keys start with `prefix`, directly in its directory, through the
    /// provider's listing by raw prefix (every page).
    async fn list_by_prefix(
        &self,
        paginated: &dyn PaginatedListStore,
        prefix: &str,
    ) -> Result<Vec<ObjectInfo>> {
        // object_store's Azure listing drops a blob named exactly like the prefix (it
        // expects directory prefixes), and the uncompressed WAL is named exactly so: ask
        // Azure for one character less, the caller keeps only keys starting with `prefix`.
        let asked = match self.location.provider {
            Provider::AzureBlobStorage if !prefix.ends_with('/') => {
                let mut shorter = prefix.chars();
                shorter.next_back();
                shorter.as_str()
            }
            _ => prefix,
        };
        let mut found = Vec::new();
        let mut page_token = None;
        loop {
            let options = PaginatedListOptions {
                delimiter: Some("/".into()),
                page_token,
                ..Default::default()
            };
            let page = paginated
                .list_paginated((!asked.is_empty()).then_some(asked), options)
                .await
                .map_err(|e| self.map_error(e, prefix))?;
            found.extend(page.result.objects.into_iter().map(|meta| ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
            }));
            match page.page_token {
                Some(token) => page_token = Some(token),
                None => return Ok(found),
            }
        }
    }

    /// Names of the "subdirectories" directly below `dir` (common prefixes), sorted.
    pub async fn list_dirs(&self, dir: &str) -> Result<Vec<String>> {
        let dir = dir.trim_end_matches('/');
        let dir_path = Self::path(dir)?;
        let listing = self
            .store
            .list_with_delimiter(Some(&dir_path))
            .await
            .map_err(|e| self.map_error(e, dir))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every object below the directory `dir`, at any depth. Sorted by key.
    pub async fn list_tree(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let dir = dir.trim_end_matches('/');
        let dir_path = Self::path(dir)?;
        let mut stream = self.store.list(Some(&dir_path));
        let mut found = Vec::new();
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| self.map_error(e, dir))?;
            found.push(ObjectInfo {
                key: meta.location.to_string(),
                size: meta.size,
            });
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    /// Most keys one deletion request may carry: Barman's per-provider limits (S3
    /// DeleteObjects 1000, Azure blob batch 256, GCS batch 100); local directories take
    /// S3's.
    pub fn delete_batch_limit(&self) -> usize {
        match self.location.provider {
            Provider::AwsS3 | Provider::Local => 1000,
            Provider::AzureBlobStorage => 256,
            Provider::GoogleCloudStorage => 100,
        }
    }

    /// Deletes `keys` in requests of at most `batch_size` keys (S3 DeleteObjects, Azure
    /// blob batches, GCS per-object requests run concurrently), `concurrency` requests at a
    /// time. A failed request does not stop the others; an absent key counts as deleted.
    pub async fn delete_objects(
        &self,
        keys: &[String],
        batch_size: usize,
        concurrency: usize,
    ) -> DeleteOutcome {
        // Servers delete the keys of one request one after the other: a few smaller
        // requests at once finish sooner than one full one (never below 100 keys, so that
        // small deletions stay one request).
        let spread = keys
            .len()
            .div_ceil(concurrency.max(1))
            .max(MIN_SPREAD_BATCH);
        let batches: Vec<&[String]> = keys.chunks(batch_size.clamp(1, spread)).collect();
        let outcomes: Vec<DeleteOutcome> = futures::stream::iter(batches)
            .map(|batch| self.delete_batch(batch))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut total = DeleteOutcome::default();
        for outcome in outcomes {
            total.deleted += outcome.deleted;
            total.errors.extend(outcome.errors);
            total.uncertain |= outcome.uncertain;
        }
        total
    }

    async fn delete_batch(&self, keys: &[String]) -> DeleteOutcome {
        let mut outcome = DeleteOutcome::default();
        let mut paths = Vec::with_capacity(keys.len());
        for key in keys {
            match Self::path(key) {
                Ok(path) => paths.push(Ok(path)),
                Err(e) => outcome.errors.push(e.to_string()),
            }
        }
        let requested = paths.len();
        let results: Vec<object_store::Result<Path>> = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed())
            .collect()
            .await;
        // A request refused as a whole gives one error for all its keys: which of them
        // the server removed before failing is unknown.
        outcome.uncertain = results.len() != requested;
        for result in results {
            match result {
                Ok(_) => outcome.deleted += 1,
                Err(object_store::Error::NotFound { path, .. }) => {
                    tracing::info!("Object {path} was already absent");
                    outcome.deleted += 1;
                }
                Err(e) => {
                    outcome.uncertain |= is_connectivity_error(&e);
                    let text = error_chain(&e);
                    tracing::error!("Deletion of objects failed: {text}");
                    outcome.errors.push(text);
                }
            }
        }
        outcome
    }

    /// Why `key` cannot be deleted yet, if S3 Object Lock protects it (a retain-until date
    /// in the future or a legal hold). Always `None` on other providers.
    pub async fn object_lock(&self, key: &str) -> Result<Option<String>> {
        match &self.admin {
            BucketAdmin::S3(admin) => admin.object_lock(key).await,
            _ => Ok(None),
        }
    }

    /// Confirms that `key` is stored with `expected` bytes (and, for local directories,
    /// that it reached the disk) before a write is reported done.
    pub async fn verify_size(&self, key: &str, expected: u64) -> Result<()> {
        if self.is_local_directory() {
            local::sync_to_disk(&self.location, key)?;
        }
        let path = Self::path(key)?;
        let meta = self
            .store
            .head(&path)
            .await
            .map_err(|e| self.map_error(e, key))?;
        if meta.size != expected {
            return Err(Error::Corrupt(format!(
                "stored object {key} has {} bytes, expected {expected}",
                meta.size
            )));
        }
        Ok(())
    }

    /// Makes a written object durable when the destination is a local directory (fsync of
    /// the file and its directory); object stores need nothing.
    pub fn sync_to_disk(&self, key: &str) -> Result<()> {
        if self.is_local_directory() {
            local::sync_to_disk(&self.location, key)?;
        }
        Ok(())
    }

    /// Whether the bucket/container exists; `Err(Connectivity)` when the service cannot
    /// be reached (Barman's exit 2).
    pub async fn bucket_state(&self) -> Result<BucketState> {
        match &self.admin {
            BucketAdmin::S3(admin) => admin.bucket_state().await,
            BucketAdmin::Azure(admin) => admin.container_state().await,
            BucketAdmin::Gcs(admin) => admin.bucket_state().await,
            BucketAdmin::Local => local::root_state(&self.location),
            BucketAdmin::Given => Ok(BucketState::Exists),
        }
    }

    /// Creates the bucket/container (check-wal-archive does this, as Barman's does).
    pub async fn create_bucket(&mut self) -> Result<()> {
        match &self.admin {
            BucketAdmin::S3(admin) => admin.create_bucket().await,
            BucketAdmin::Azure(admin) => admin.create_container().await,
            BucketAdmin::Gcs(admin) => admin.create_bucket().await,
            BucketAdmin::Local => {
                local::create_root(&self.location)?;
                self.store = local::build(&self.location)?;
                Ok(())
            }
            BucketAdmin::Given => Ok(()),
        }
    }

    fn map_error(&self, error: object_store::Error, key: &str) -> Error {
        map_error(&self.location.bucket, error, key)
    }
}

/// Deletion requests in flight at once: enough to hide round trips, few enough not to
/// trip a server's rate limits.
pub const DELETE_CONCURRENCY: usize = 4;

/// Smallest request [`CloudStorage::delete_objects`] splits a deletion into.
const MIN_SPREAD_BATCH: usize = 100;

/// What a batched deletion did.
#[derive(Debug, Default)]
pub struct DeleteOutcome {
    /// Keys the storage confirmed gone (absent ones included).
    pub deleted: usize,
    /// One line per failed key or request.
    pub errors: Vec<String>,
    /// A request failed without saying which of its keys it removed.
    pub uncertain: bool,
}

impl DeleteOutcome {
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// The failure as one error, if anything failed.
    pub fn into_result(self) -> Result<()> {
        match self.errors.first() {
            None => Ok(()),
            Some(first) if self.errors.len() == 1 => Err(Error::Storage(first.clone())),
            Some(first) => Err(Error::Storage(format!(
                "{first} (and {} more failures)",
                self.errors.len() - 1
            ))),
        }
    }
}

/// An object being written part by part (S3 parts, Azure blocks, GCS XML multipart,
/// a staging file for local directories).
pub struct MultipartObject {
    upload: Box<dyn object_store::MultipartUpload>,
    bucket: String,
    key: String,
}

impl MultipartObject {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Sends the next part; parts are numbered in call order, so the returned futures
    /// may run concurrently.
    pub fn put_part(
        &mut self,
        data: Bytes,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let upload = self.upload.put_part(data.into());
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        async move { upload.await.map_err(|e| map_error(&bucket, e, &key)) }
    }

    /// Makes the object visible; every part future must have completed.
    pub async fn complete(mut self) -> Result<()> {
        self.upload
            .complete()
            .await
            .map(|_| ())
            .map_err(|e| map_error(&self.bucket, e, &self.key))
    }

    /// Discards the parts sent so far, so that no storage is left billed for them.
    pub async fn abort(mut self) -> Result<()> {
        self.upload
            .abort()
            .await
            .map_err(|e| map_error(&self.bucket, e, &self.key))
    }
}

/// Turns an `object_store` error into ours, keeping the distinctions exit codes need.
fn map_error(bucket: &str, error: object_store::Error, key: &str) -> Error {
    if is_connectivity_error(&error) {
        return Error::Connectivity(error_chain(&error));
    }
    match error {
        object_store::Error::NotFound { .. } => {
            let text = error_chain(&error);
            if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
                Error::BucketMissing(bucket.to_string())
            } else {
                Error::NotFound(key.to_string())
            }
        }
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            Error::Conflict(format!("object {key} already exists"))
        }
        other => Error::Storage(error_chain(&other)),
    }
}

/// True when the failure is the network (refused, reset, timed out), not an answer.
pub(crate) fn is_connectivity_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            return matches!(
                http.kind(),
                K::Connect | K::Timeout | K::Request | K::Interrupted
            );
        }
        source = err.source();
    }
    false
}

/// Object-store retry and timeout settings shared by the cloud providers: a few quick
/// retries (an `archive_command` that hangs for minutes helps nobody) and Barman's
/// read timeout instead of object_store's whole-request limit, which would cut off large
/// uploads on slow links.
pub(crate) fn client_options(
    options: &StorageOptions,
    allow_http: bool,
) -> object_store::ClientOptions {
    let read_timeout = options.read_timeout_secs.unwrap_or(60).max(1);
    object_store::ClientOptions::new()
        .with_allow_http(allow_http)
        // Plain-HTTP endpoints (emulators, private S3 servers) need no trust store, and
        // loading it is half of a WAL command's start-up.
        .with_no_system_certificates(allow_http)
        .with_timeout_disabled()
        .with_connect_timeout(std::time::Duration::from_secs(10))
        .with_read_timeout(std::time::Duration::from_secs(read_timeout))
}

/// The answer to a request `object_store` has no call for.
pub(crate) struct AdminResponse {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub text: String,
}

/// Sends one of the rare requests `object_store` does not cover (bucket-level calls,
/// object-lock probes), with a client built only then; failing to reach the server is
/// `Connectivity`.
pub(crate) async fn send_admin_request(
    options: &object_store::ClientOptions,
    request: object_store::client::HttpRequest,
) -> Result<AdminResponse> {
    use object_store::client::HttpConnector;
    let client = object_store::client::ReqwestConnector::default()
        .connect(options)
        .map_err(|e| Error::Config(format!("cannot build HTTP client: {}", error_chain(&e))))?;
    let response = client.execute(request).await.map_err(|e| {
        if is_connectivity_error(&e) {
            Error::Connectivity(error_chain(&e))
        } else {
            Error::Storage(error_chain(&e))
        }
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response
        .into_body()
        .bytes()
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(AdminResponse {
        status,
        headers,
        text,
    })
}

pub(crate) fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(5),
            base: 2.0,
        },
    }
}

/// A destination over object_store's in-memory store, for fast unit tests of everything
/// that reads or writes a bucket.
#[cfg(test)]
pub(crate) fn in_memory(url: &str) -> CloudStorage {
    let provider = if url.starts_with("gs://") {
        Provider::GoogleCloudStorage
    } else {
        Provider::AwsS3
    };
    let location = Location::parse(url, provider).expect("a test URL");
    CloudStorage::from_object_store(location, Arc::new(object_store::memory::InMemory::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(storage: &CloudStorage, key: &str, data: &[u8]) {
        storage
            .put(key, PutPayload::from(data.to_vec()), &[])
            .await
            .unwrap();
    }

    fn keys(found: &[ObjectInfo]) -> Vec<&str> {
        found.iter().map(|o| o.key.as_str()).collect()
    }

    #[tokio::test]
    async fn keys_listings_and_reads_below_the_prefix() {
        let storage = in_memory("s3://bucket/some/prefix/");
        assert_eq!(storage.bucket_state().await.unwrap(), BucketState::Exists);
        let dir = storage.key(&["srv", "wals", "0000000100000000"]);
        assert_eq!(dir, "some/prefix/srv/wals/0000000100000000");
        let name = format!("{dir}/000000010000000000000001");
        put(&storage, &format!("{name}.gz"), b"gz").await;
        put(&storage, &name, b"plain").await;
        put(
            &storage,
            &format!("{dir}/000000010000000000000002"),
            b"next",
        )
        .await;
        put(&storage, &format!("{name}/below"), b"not in the directory").await;
        put(&storage, "elsewhere/000000010000000000000001", b"x").await;

        let found = storage.list(&name).await.unwrap();
        assert_eq!(keys(&found), [name.clone(), format!("{name}.gz")]);
        assert_eq!(found[0].size, 5);
        let tree = storage.list_tree(&storage.key(&["srv"])).await.unwrap();
        assert_eq!(tree.len(), 4, "{tree:?}");
        let dirs = storage.list_dirs(&storage.key(&["srv", "wals"])).await;
        assert_eq!(dirs.unwrap(), ["0000000100000000"]);
        assert_eq!(&storage.get(&name).await.unwrap()[..], b"plain");

        let missing = storage.get(&format!("{dir}/nothing")).await.unwrap_err();
        assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
        assert!(storage.local_file(&name).is_none());
    }

    #[tokio::test]
    async fn create_only_writes_and_size_checks() {
        let storage = in_memory("s3://bucket/pg");
        let key = storage.key(&["srv", "base", "20261129T000000", "backup.info"]);
        let first = storage
            .put_if_absent(&key, PutPayload::from_static(b"one"), &[])
            .await;
        assert_eq!(first.unwrap(), PutOutcome::Created);
        let second = storage
            .put_if_absent(&key, PutPayload::from_static(b"other"), &[])
            .await;
        assert_eq!(second.unwrap(), PutOutcome::AlreadyExists);
        assert_eq!(&storage.get(&key).await.unwrap()[..], b"one");
        storage.verify_size(&key, 3).await.unwrap();
        let wrong = storage.verify_size(&key, 4).await.unwrap_err();
        assert!(
            wrong.to_string().contains("has 3 bytes, expected 4"),
            "{wrong}"
        );
    }

    #[tokio::test]
    async fn deletions_in_batches_count_absent_keys_as_deleted() {
        let storage = in_memory("gs://bucket/pg");
        assert_eq!(storage.delete_batch_limit(), 100);
        let mut all = Vec::new();
        for i in 0..250 {
            let key = storage.key(&["srv", "wals", &format!("{i:04}")]);
            if i % 2 == 0 {
                put(&storage, &key, b"x").await;
            }
            all.push(key);
        }
        let outcome = storage.delete_objects(&all, 100, DELETE_CONCURRENCY).await;
        assert!(outcome.is_complete(), "{outcome:?}");
        assert_eq!(outcome.deleted, 250);
        assert!(storage.list_tree("pg").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn multipart_uploads_appear_only_when_complete() {
        let storage = in_memory("s3://bucket/pg");
        let key = storage.key(&["srv", "base", "id", "data.tar"]);
        let data = Bytes::from(vec![7u8; 100_000]);
        storage
            .put_multipart(&key, data.clone(), 30_000, 2, &[])
            .await
            .unwrap();
        assert_eq!(storage.get(&key).await.unwrap(), data);

        let other = storage.key(&["srv", "base", "id", "data_0001.tar"]);
        let upload = storage.start_multipart(&other, &[]).await.unwrap();
        assert!(storage.list(&other).await.unwrap().is_empty());
        upload.abort().await.unwrap();
        assert!(storage.list(&other).await.unwrap().is_empty());
    }
}
