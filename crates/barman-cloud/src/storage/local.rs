//! `file://` destinations: a local directory laid out exactly like a bucket.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use super::{BucketState, Location};
use crate::error::{Error, Result};

pub(super) fn build(location: &Location) -> Result<Arc<dyn ObjectStore>> {
    // The directory may not exist yet (check-wal-archive creates it, like a bucket), so the
    // store is created lazily over whatever is there; writes create parent directories.
    let root = std::path::Path::new(&location.bucket);
    if root.exists() {
        let store = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| Error::Config(format!("cannot use {}: {e}", location.bucket)))?;
        Ok(Arc::new(store.with_automatic_cleanup(true)))
    } else {
        Ok(Arc::new(MissingRoot(location.bucket.clone())))
    }
}

pub(super) fn root_state(location: &Location) -> Result<BucketState> {
    match std::fs::metadata(&location.bucket) {
        Ok(meta) if meta.is_dir() => Ok(BucketState::Exists),
        Ok(_) => Err(Error::Config(format!(
            "{} is not a directory",
            location.bucket
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BucketState::Missing),
        Err(e) => Err(Error::io(&location.bucket, e)),
    }
}

pub(super) fn create_root(location: &Location) -> Result<()> {
    std::fs::create_dir_all(&location.bucket).map_err(|e| Error::io(&location.bucket, e))
}

/// fsyncs a written object and its directory: PostgreSQL deletes a WAL segment as soon as
/// archive_command succeeds, so the copy must survive a power loss.
pub(super) fn sync_to_disk(location: &Location, key: &str) -> Result<()> {
    let path = std::path::Path::new(&location.bucket).join(key);
    let sync = |p: &std::path::Path| -> Result<()> {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(p, e))
    };
    sync(&path)?;
    if let Some(parent) = path.parent() {
        sync(parent)?;
    }
    Ok(())
}

/// Stand-in store for a root directory that does not exist: every call fails the way a
/// missing bucket does.
#[derive(Debug)]
struct MissingRoot(String);

impl std::fmt::Display for MissingRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MissingRoot({})", self.0)
    }
}

impl MissingRoot {
    fn error(&self) -> object_store::Error {
        object_store::Error::NotFound {
            path: self.0.clone(),
            source: format!("NoSuchBucket: directory {} does not exist", self.0).into(),
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for MissingRoot {
    async fn put_opts(
        &self,
        _location: &object_store::path::Path,
        _payload: object_store::PutPayload,
        _opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        Err(self.error())
    }

    async fn put_multipart_opts(
        &self,
        _location: &object_store::path::Path,
        _opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        Err(self.error())
    }

    async fn get_opts(
        &self,
        _location: &object_store::path::Path,
        _options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        Err(self.error())
    }

    fn delete_stream(
        &self,
        _locations: futures::stream::BoxStream<
            'static,
            object_store::Result<object_store::path::Path>,
        >,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::path::Path>> {
        let err = self.error();
        Box::pin(futures::stream::once(async move { Err(err) }))
    }

    fn list(
        &self,
        _prefix: Option<&object_store::path::Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        let err = self.error();
        Box::pin(futures::stream::once(async move { Err(err) }))
    }

    async fn list_with_delimiter(
        &self,
        _prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        Err(self.error())
    }

    async fn copy_opts(
        &self,
        _from: &object_store::path::Path,
        _to: &object_store::path::Path,
        _options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        Err(self.error())
    }
}
