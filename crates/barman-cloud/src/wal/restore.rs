//! `barman-cloud-wal-restore`: fetch one WAL for PostgreSQL's restore_command, optionally
//! prefetching the following ones into a spool directory (Barman 3.20's `--parallel`).

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;

use super::name::{WalKind, WalName, split_compression_suffix};
use crate::compression::StreamError;
use crate::error::{Error, Result};
use crate::storage::{CloudStorage, Provider};
use crate::stream::{ChannelReader, into_storage_error};

#[derive(Debug, Clone)]
pub struct WalRestoreRequest {
    pub server_name: String,
    pub wal_name: String,
    pub destination: PathBuf,
    pub no_partial: bool,
    /// How many WAL files to fetch in all; values <= 1 disable prefetching.
    pub parallel: i64,
    pub spool_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    FromSpool,
    Downloaded { key: String, prefetched: usize },
}

pub async fn restore_wal(
    storage: &CloudStorage,
    request: &WalRestoreRequest,
) -> Result<RestoreOutcome> {
    restore(storage, request)
        .await
        .map_err(|error| match (storage.location().provider, error) {
            // Barman 3.20 reports any error answer from Azure or GCS here as a connectivity
            // failure (exit 2): their SDKs raise one exception class for both.
            (
                Provider::AzureBlobStorage | Provider::GoogleCloudStorage,
                Error::Storage(message),
            ) => Error::Connectivity(message),
            (_, error) => error,
        })
}

async fn restore(storage: &CloudStorage, request: &WalRestoreRequest) -> Result<RestoreOutcome> {
    let wal = WalName::parse(&request.wal_name)?;
    let spooled = request.spool_dir.join(wal.as_str());
    if spooled.is_file() {
        move_file(&spooled, &request.destination).map_err(|e| {
            Error::Spool(format!(
                "cannot move {} to {}: {e}",
                spooled.display(),
                request.destination.display()
            ))
        })?;
        tracing::info!("restored {} from the spool directory", wal);
        return Ok(RestoreOutcome::FromSpool);
    }

    let directory = super::wal_directory(storage, &request.server_name, &wal);
    let parallel = if wal.kind() == WalKind::History {
        0
    } else {
        request.parallel
    };
    let requested_key = format!("{directory}/{wal}");
    let listing_prefix = if parallel > 1 {
        format!("{directory}/")
    } else {
        requested_key.clone()
    };
    let listed = storage.list(&listing_prefix).await?;

    let mut accepted: Vec<(String, String)> = Vec::new(); // (key, base name)
    let mut found = false;
    let partial_name = format!("{wal}.partial");
    for object in &listed {
        let basename = object.key.rsplit('/').next().unwrap_or_default();
        let (base, _) = split_compression_suffix(basename);
        let requested = base == wal.as_str() || base == partial_name;
        let prefetch = !requested
            && object.key > requested_key
            && (accepted.len() as i64) < parallel
            && !base.starts_with(wal.without_partial());
        if !requested && !prefetch {
            continue;
        }
        let Some(candidate) = WalName::try_parse(base) else {
            tracing::debug!("ignoring {} (not a WAL name)", object.key);
            continue;
        };
        if candidate.kind() == WalKind::BackupLabel
            || (candidate.kind() == WalKind::Partial && request.no_partial)
        {
            tracing::debug!("ignoring {}", object.key);
            continue;
        }
        found |= requested;
        accepted.push((object.key.clone(), base.to_string()));
    }
    let not_found = || {
        Error::Operation(format!(
            "WAL file {wal} for server {} does not exist",
            request.server_name
        ))
    };
    if !found {
        return Err(not_found());
    }
    // A complete segment wins over its .partial stored with the same compression.
    let keys: Vec<String> = accepted.iter().map(|(k, _)| k.clone()).collect();
    accepted.retain(|(key, _)| {
        !key.contains(".partial") || !keys.contains(&key.replacen(".partial", "", 1))
    });
    let (first_key, _) = accepted.first().cloned().ok_or_else(not_found)?;
    if !first_key.contains(wal.as_str()) {
        return Err(not_found());
    }

    let prefetch: Vec<(String, String)> = accepted.into_iter().skip(1).collect();
    let prefetched = prefetch.len();
    let prefetch_task = if prefetch.is_empty() {
        None
    } else {
        std::fs::create_dir_all(&request.spool_dir).map_err(|e| {
            Error::Spool(format!(
                "cannot create spool directory {}: {e}",
                request.spool_dir.display()
            ))
        })?;
        let spool = request.spool_dir.clone();
        Some(futures::future::join_all(prefetch.into_iter().map(
            move |(key, base)| {
                let target = spool.join(base.strip_suffix(".partial").unwrap_or(&base));
                async move {
                    if let Err(e) = download_to_file(storage, &key, &target).await {
                        tracing::warn!("prefetch of {key} failed: {e}");
                    }
                }
            },
        )))
    };
    let main = download_to_file(storage, &first_key, &request.destination);
    let (result, _) = match prefetch_task {
        Some(task) => futures::join!(main, task),
        None => (main.await, Vec::new()),
    };
    result?;
    tracing::info!("restored {first_key} to {}", request.destination.display());
    Ok(RestoreOutcome::Downloaded {
        key: first_key,
        prefetched,
    })
}

/// Downloads `key` into `target` atomically: a temporary file beside it, decompressed
/// according to the key's suffix, fsynced, then renamed over `target`.
pub(crate) async fn download_to_file(
    storage: &CloudStorage,
    key: &str,
    target: &Path,
) -> Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wal".into());
    let temp = dir.join(format!(".{file_name}.barman-rs-{}.tmp", std::process::id()));
    let result = write_object(storage, key, &temp).await.and_then(|()| {
        std::fs::rename(&temp, target).map_err(|e| Error::io(target, e))?;
        sync_dir(dir)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

async fn write_object(storage: &CloudStorage, key: &str, temp: &Path) -> Result<()> {
    let basename = key.rsplit('/').next().unwrap_or_default();
    let codec = split_compression_suffix(basename).1;
    let mut file = std::fs::File::create(temp).map_err(|e| Error::io(temp, e))?;
    match codec {
        None => {
            let mut stream = storage.get_stream(key).await?;
            while let Some(chunk) = stream.next().await {
                file.write_all(&chunk?).map_err(|e| Error::io(temp, e))?;
            }
            file.sync_all().map_err(|e| Error::io(temp, e))
        }
        Some(codec) => {
            // Decompress while downloading: only a few chunks are ever in memory.
            let mut stream = storage.get_stream(key).await?;
            let (chunks, reader) = ChannelReader::new(8);
            let temp = temp.to_path_buf();
            let decoder = tokio::task::spawn_blocking(move || {
                let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
                codec.decompress(reader, &mut writer).map_err(|e| match e {
                    StreamError::Read(e) => match into_storage_error(e) {
                        Ok(storage_error) => storage_error,
                        Err(e) => codec.decode_error(e),
                    },
                    StreamError::Write(e) => Error::io(&temp, e),
                })?;
                let file = writer
                    .into_inner()
                    .map_err(|e| Error::io(&temp, e.into_error()))?;
                file.sync_all().map_err(|e| Error::io(&temp, e))
            });
            while let Some(chunk) = stream.next().await {
                // A closed channel means the decoder stopped: its result says why.
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
            drop(chunks);
            decoder
                .await
                .map_err(|e| Error::Operation(format!("decompression task failed: {e}")))?
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// rename, or copy + fsync + remove across filesystems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            let dir = to
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let temp = dir.join(format!(".spool-move-{}.tmp", std::process::id()));
            std::fs::copy(from, &temp)?;
            std::fs::File::open(&temp)?.sync_all()?;
            std::fs::rename(&temp, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}
