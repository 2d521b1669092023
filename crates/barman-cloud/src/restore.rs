//! `barman-cloud-restore` of object-store backups: every archive of the backup is
//! streamed, decompressed and extracted at once (parts of one archive family hold
//! disjoint files, so they can be unpacked side by side), then the tablespace links and
//! `pg_wal` are made and everything written is fsynced.

use std::path::{Path, PathBuf};

use futures::StreamExt;

use crate::backup_catalog::{backup_archives, read_backup_info};
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::storage::CloudStorage;
use crate::stream::{ChannelReader, into_storage_error};

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub server_name: String,
    pub backup_id: String,
    pub destination: PathBuf,
    /// `--tablespace NAME:LOCATION` rules; rules for unknown tablespaces are ignored.
    pub relocations: Vec<(String, PathBuf)>,
}

/// One archive object and where it goes.
#[derive(Debug, Clone)]
struct Archive {
    key: String,
    compression: Option<Compression>,
    target: PathBuf,
}

/// Whether `path` can receive a restore: missing, or an empty directory.
fn check_empty(path: &Path) -> Result<()> {
    match std::fs::read_dir(path).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Error::Operation(format!(
            "Destination {} already exists and it is not empty",
            path.display()
        ))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The absolute, symlink-free form of `path` where it exists (Python's realpath).
fn real_path(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    std::fs::canonicalize(&absolute).unwrap_or(absolute)
}

pub async fn restore_backup(storage: &CloudStorage, request: &RestoreRequest) -> Result<()> {
    let server = &request.server_name;
    let id = &request.backup_id;
    let info = read_backup_info(storage, server, id)
        .await?
        .ok_or_else(|| {
            Error::Operation(format!("Backup {id} for server {server} does not exists"))
        })?;
    if info.snapshots_info.is_some() {
        return Err(Error::Config(
            "restoring snapshot backups is not implemented yet in barman-rs".into(),
        ));
    }
    check_empty(&request.destination)?;

    // (archive name, target) for PGDATA, then each tablespace in backup.info order.
    let mut families: Vec<(String, PathBuf)> = vec![("data".into(), request.destination.clone())];
    let mut links: Vec<(u32, PathBuf)> = Vec::new();
    for tablespace in info.tablespaces.iter().flatten() {
        let target = request
            .relocations
            .iter()
            .find(|(name, _)| *name == tablespace.name)
            .map(|(_, location)| real_path(location))
            .unwrap_or_else(|| PathBuf::from(&tablespace.location));
        check_empty(&target)?;
        families.push((tablespace.oid.to_string(), target.clone()));
        links.push((tablespace.oid, target));
    }

    let prefix = format!("{}/", storage.key(&[server, "base", id]));
    let objects = storage.list(&prefix).await?;
    let mut archives = Vec::new();
    for (family, (name, target)) in backup_archives(&info, &prefix, &objects)
        .into_iter()
        .zip(&families)
    {
        if family.main.is_none() {
            return Err(Error::Operation(format!(
                "Missing file {name}.* for server {server}"
            )));
        }
        archives.extend(family.objects().map(|object| Archive {
            key: object.key.clone(),
            compression: object.compression,
            target: target.clone(),
        }));
    }

    // PostgreSQL refuses a data directory open to others; the system tar Barman uses
    // applies the archive's `./` entry (0700) to it, tar-rs skips that entry.
    for (_, target) in &families {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(target)
            .map_err(|e| Error::io(target, e))?;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(target, e))?;
    }
    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let results: Vec<Result<()>> = futures::stream::iter(archives)
        .map(|archive| extract(storage, archive))
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;

    for (oid, target) in &links {
        let link = request.destination.join("pg_tblspc").join(oid.to_string());
        std::fs::create_dir_all(link.parent().unwrap_or(&request.destination))
            .map_err(|e| Error::io(&request.destination, e))?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).map_err(|e| Error::io(&link, e))?;
    }
    let wal_dir = request
        .destination
        .join(info.wal_directory().unwrap_or("pg_wal"));
    if !wal_dir.exists() {
        std::fs::create_dir_all(&wal_dir).map_err(|e| Error::io(&wal_dir, e))?;
    }
    let mut roots: Vec<PathBuf> = families.into_iter().map(|(_, target)| target).collect();
    roots.dedup();
    tokio::task::spawn_blocking(move || roots.iter().try_for_each(|root| sync_filesystem(root)))
        .await
        .map_err(|e| Error::Operation(format!("fsync task failed: {e}")))??;
    tracing::info!("Restored backup {id} to {}", request.destination.display());
    Ok(())
}

/// Streams one archive object through its decompressor into `tar`'s extractor.
async fn extract(storage: &CloudStorage, archive: Archive) -> Result<()> {
    let Archive {
        key,
        compression,
        target,
    } = archive;
    // A local archive is read directly with large reads; a remote one streams in.
    let (source, mut stream): (Box<dyn std::io::Read + Send>, _) = match storage.local_file(&key) {
        Some(path) => {
            let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NotFound(key.clone()),
                _ => Error::io(&path, e),
            })?;
            (
                Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
                None,
            )
        }
        None => {
            let stream = storage.get_stream(&key).await?;
            let (chunks, reader) = ChannelReader::new(16);
            (Box::new(reader), Some((stream, chunks)))
        }
    };
    let unpacker = tokio::task::spawn_blocking(move || -> Result<()> {
        let input: Box<dyn std::io::Read> = match compression {
            None => source,
            // Decompression gets its own thread so that it overlaps with writing files.
            Some(codec) => Box::new(DecodeThread::spawn(codec, source)?),
        };
        let mut tar = tar::Archive::new(input);
        tar.set_preserve_permissions(true);
        tar.set_preserve_mtime(true);
        tar.set_overwrite(true);
        tar.unpack(&target)
            .map_err(|e| match into_storage_error(e) {
                Ok(storage_error) => storage_error,
                Err(e) => Error::Operation(format!(
                    "cannot extract {key} into {}: {e}",
                    target.display()
                )),
            })
    });
    if let Some((stream, chunks)) = stream.as_mut() {
        while let Some(chunk) = stream.next().await {
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
    }
    drop(stream);
    unpacker
        .await
        .map_err(|e| Error::Operation(format!("extraction task failed: {e}")))?
}

/// Decompresses on a thread of its own, handing the plain bytes over in bounded chunks.
struct DecodeThread {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: std::io::Cursor<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecodeThread {
    const CHUNK: usize = 1 << 20;

    fn spawn(
        codec: crate::compression::Compression,
        reader: Box<dyn std::io::Read + Send>,
    ) -> Result<Self> {
        let mut decoder = codec.decoder(reader).map_err(|e| codec.decode_error(e))?;
        let (sender, chunks) = std::sync::mpsc::sync_channel(4);
        let thread = std::thread::Builder::new()
            .name("decompress".into())
            .spawn(move || {
                loop {
                    let mut chunk = vec![0; Self::CHUNK];
                    let mut filled = 0;
                    while filled < chunk.len() {
                        match decoder.read(&mut chunk[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = sender.send(Err(e));
                                return;
                            }
                        }
                    }
                    chunk.truncate(filled);
                    let last = filled == 0;
                    if sender.send(Ok(chunk)).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Operation(format!("cannot start a decompression thread: {e}")))?;
        Ok(DecodeThread {
            chunks,
            current: std::io::Cursor::new(Vec::new()),
            thread: Some(thread),
        })
    }
}

impl std::io::Read for DecodeThread {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) if chunk.is_empty() => return Ok(0),
                Ok(Ok(chunk)) => self.current = std::io::Cursor::new(chunk),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
    }
}

impl Drop for DecodeThread {
    fn drop(&mut self) {
        // Unblocks the thread if it is waiting to send, then waits for it.
        let (_, empty) = std::sync::mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.chunks, empty));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Makes everything written below `root` durable with one `syncfs(2)` of its filesystem
/// (PostgreSQL's `recovery_init_sync_method = syncfs`), which costs one call instead of
/// one fsync per file; falls back to fsyncing each file where syncfs is unavailable.
fn sync_filesystem(root: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(root).map_err(|e| Error::io(root, e))?;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open for the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    tracing::debug!(
        "syncfs({}) failed ({error}), fsyncing each file",
        root.display()
    );
    sync_tree(root)
}

/// fsyncs every file and directory below `root` (and `root`).
fn sync_tree(root: &Path) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                std::fs::File::open(entry.path())
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(entry.path(), e))?;
            }
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&dir, e))?;
    }
    Ok(())
}
