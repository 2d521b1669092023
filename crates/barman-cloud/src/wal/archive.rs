//! `barman-cloud-wal-archive`: one WAL file to one object.
//!
//! Unlike Barman, which overwrites silently, an existing object for the same WAL name is
//! compared first: identical content is success without a new upload (PostgreSQL retries
//! archive_command after failures), different content is refused, because replacing an
//! archived WAL silently loses data.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use object_store::PutPayload;

use super::name::{WalKind, WalName, split_compression_suffix};
use crate::compression::{Compression, CompressionLevel, StreamError};
use crate::error::{Error, Result};
use crate::storage::{CloudStorage, ObjectInfo, PutOutcome};

#[derive(Debug, Clone)]
pub struct WalArchiveRequest {
    pub server_name: String,
    pub wal_path: PathBuf,
    pub compression: Option<Compression>,
    pub compression_level: CompressionLevel,
    /// Tags for every WAL file.
    pub tags: Vec<(String, String)>,
    /// Tags used instead for `.history` files, when not empty.
    pub history_tags: Vec<(String, String)>,
    /// Files larger than this go up in blocks (`--max-single-put-size`; Azure only, as in
    /// Barman, where it defaults to 64 MiB).
    pub max_single_put_size: Option<u64>,
    /// Block size and parallelism of such uploads (`--max-block-size`, `--max-concurrency`).
    pub block_size: u64,
    pub block_concurrency: usize,
}

impl Default for WalArchiveRequest {
    fn default() -> Self {
        Self {
            server_name: String::new(),
            wal_path: PathBuf::new(),
            compression: None,
            compression_level: CompressionLevel::default(),
            tags: Vec::new(),
            history_tags: Vec::new(),
            max_single_put_size: None,
            block_size: 4 << 20,
            block_concurrency: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveOutcome {
    Uploaded { key: String },
    AlreadyArchived { key: String },
}

pub async fn archive_wal(
    storage: &CloudStorage,
    request: &WalArchiveRequest,
) -> Result<ArchiveOutcome> {
    let basename = request
        .wal_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let wal = WalName::parse(basename).map_err(|_| {
        Error::InvalidInput(format!(
            "{} is an invalid name for a WAL file",
            request.wal_path.display()
        ))
    })?;
    let directory = super::wal_directory(storage, &request.server_name, &wal);
    let name_key = format!("{directory}/{wal}");
    let suffix = request.compression.map(|c| c.suffix()).unwrap_or("");
    let key = format!("{name_key}{suffix}");

    // Reading (and compressing) the file overlaps with the listing round trip.
    let path = request.wal_path.clone();
    let (compression, level) = (request.compression, request.compression_level);
    let payload = tokio::task::spawn_blocking(move || read_payload(&path, compression, level));

    let existing = archived_copies(storage, &name_key, wal.as_str()).await?;
    if !existing.is_empty() {
        return compare_with_archived(storage, &request.wal_path, &existing).await;
    }
    let payload = payload
        .await
        .map_err(|e| Error::Operation(format!("compression task failed: {e}")))??;

    let tags = if wal.kind() == WalKind::History && !request.history_tags.is_empty() {
        &request.history_tags
    } else {
        &request.tags
    };
    let size = payload.content_length() as u64;
    if request
        .max_single_put_size
        .is_some_and(|limit| size > limit)
    {
        // Block uploads cannot be create-only; the listing above is the guard.
        storage
            .put_multipart(
                &key,
                Bytes::from(payload),
                request.block_size as usize,
                request.block_concurrency,
                tags,
            )
            .await?;
        storage.verify_size(&key, size).await?;
        tracing::info!("archived {} as {key} in blocks", request.wal_path.display());
        return Ok(ArchiveOutcome::Uploaded { key });
    }
    match storage.put_if_absent(&key, payload, tags).await? {
        PutOutcome::Created => {
            storage.verify_size(&key, size).await?;
            tracing::info!("archived {} as {key}", request.wal_path.display());
            Ok(ArchiveOutcome::Uploaded { key })
        }
        // Someone stored the same name between our listing and our write.
        PutOutcome::AlreadyExists => {
            let info = ObjectInfo { key, size };
            compare_with_archived(storage, &request.wal_path, &[info]).await
        }
    }
}

fn read_payload(
    path: &Path,
    compression: Option<Compression>,
    level: CompressionLevel,
) -> Result<PutPayload> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let Some(codec) = compression else {
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data)
            .map_err(|e| Error::io(path, e))?;
        return Ok(PutPayload::from(data));
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = codec
        .compress_file_parallel(level, path, len, threads)
        .map_err(|e| match e {
            StreamError::Read(e) => Error::io(path, e),
            StreamError::Write(e) => Error::Compression {
                codec: codec.name(),
                source: e,
            },
        })?;
    Ok(pieces.into_iter().map(Bytes::from).collect())
}

/// Objects that hold `wal_name` under any compression suffix.
async fn archived_copies(
    storage: &CloudStorage,
    name_key: &str,
    wal_name: &str,
) -> Result<Vec<ObjectInfo>> {
    let listed = storage.list(name_key).await?;
    Ok(listed
        .into_iter()
        .filter(|o| {
            let basename = o.key.rsplit('/').next().unwrap_or_default();
            split_compression_suffix(basename).0 == wal_name
        })
        .collect())
}

async fn compare_with_archived(
    storage: &CloudStorage,
    local: &Path,
    existing: &[ObjectInfo],
) -> Result<ArchiveOutcome> {
    let local_data = tokio::fs::read(local)
        .await
        .map_err(|e| Error::io(local, e))?;
    for object in existing {
        let stored = storage.get(&object.key).await?;
        let basename = object.key.rsplit('/').next().unwrap_or_default();
        let content = match split_compression_suffix(basename).1 {
            None => stored.to_vec(),
            Some(codec) => {
                let mut out = Vec::with_capacity(local_data.len());
                codec
                    .decompress(&stored[..], &mut out)
                    .map_err(|e| match e {
                        StreamError::Read(e) | StreamError::Write(e) => codec.decode_error(e),
                    })?;
                out
            }
        };
        if content != local_data {
            return Err(Error::Conflict(format!(
                "WAL file {} is already archived as {} with different content; refusing to overwrite it",
                local.display(),
                object.key
            )));
        }
    }
    let key = existing[0].key.clone();
    tracing::info!(
        "{} is already archived with identical content as {key}; nothing to do",
        local.display()
    );
    Ok(ArchiveOutcome::AlreadyArchived { key })
}
