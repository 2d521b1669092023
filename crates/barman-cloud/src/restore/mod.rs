//! `barman-cloud-restore` of object-store backups: every archive of the backup is
//! streamed, decompressed and extracted at once (parts of one archive family hold
//! disjoint files, so they can be unpacked side by side), then the tablespace links and
//! `pg_wal` are made and everything written is fsynced.
//!
//! An exit 0 promises a whole database, so a restore succeeds only when:
//! - the backup is DONE (a FAILED one may be half deleted or half written);
//! - every archive the backup needs is there (main archives, consecutive parts, and
//!   exactly the objects of its integrity manifest when it has one);
//! - every stream was decoded to its end (compressed stream finished and its checksums
//!   checked, tar end-of-archive marker present) and, with a manifest, its size and
//!   SHA-256 are the ones recorded at backup time;
//! - `backup_label` is in the restored PGDATA (and matches the manifest).
//!
//! Nothing is written outside the destination and the tablespace locations: each target
//! is opened once and written through its descriptor without following links
//! ([`beneath`]), whatever the archives and backup.info contain.

mod beneath;
mod extract;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::backup_catalog::read_backup_info;
use crate::catalog::BackupStatus;
use crate::catalog::manifest::{BACKUP_LABEL_ENTRY, Digest256, IntegrityManifest, StreamHasher};
use crate::catalog_store::BucketCatalog;
use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::layout::{ArchiveFamily, ServerLayout, backup_archives, is_backup_id};
use crate::storage::{CloudStorage, ObjectInfo};
use crate::stream::{ChannelReader, into_storage_error};

use beneath::{MemberPath, Root};
use extract::{DeferredDir, ExtractError};

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub server_name: String,
    pub backup_id: String,
    pub destination: PathBuf,
    /// `--tablespace NAME:LOCATION` rules; rules for unknown tablespaces are ignored.
    pub relocations: Vec<(String, PathBuf)>,
    /// Snapshot backups: the recovery instance and provider options.
    pub snapshot_recovery: snapshot::SnapshotRecovery,
}

/// One archive object and where it goes.
struct Archive {
    key: String,
    /// The object's name in the backup directory, as the manifest names it.
    name: String,
    compression: Option<Compression>,
    root: Arc<Root>,
    expected: Option<Digest256>,
}

/// Whether `path` can receive a restore: missing, or an empty directory.
fn check_empty(path: &Path) -> Result<()> {
    match std::fs::read_dir(path).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Error::Refused(format!(
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

/// Refuses targets that contain one another: their archives would be unpacked into each
/// other, and a tablespace inside PGDATA could replace PGDATA's own files.
fn check_disjoint(targets: &[(String, PathBuf)]) -> Result<()> {
    for (i, (name_a, a)) in targets.iter().enumerate() {
        for (name_b, b) in &targets[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                return Err(Error::Refused(format!(
                    "The restore locations of {name_a} ({}) and {name_b} ({}) overlap; \
                     relocate the tablespace with --tablespace NAME:LOCATION",
                    a.display(),
                    b.display()
                )));
            }
        }
    }
    Ok(())
}

/// Additional parts are numbered from 1 without gaps (`data_0001.tar...`); a gap means an
/// object went missing. (A missing last part can only be seen with a manifest.)
fn check_parts(family: &ArchiveFamily, dir: &str, server: &str) -> Result<()> {
    for (index, part) in family.parts.iter().enumerate() {
        let name = part.key.strip_prefix(dir).unwrap_or(&part.key);
        let number = name
            .strip_prefix(family.name.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|rest| rest.split('.').next())
            .and_then(|digits| digits.parse::<usize>().ok());
        if number != Some(index + 1) {
            return Err(Error::Corrupt(format!(
                "Missing file {}{}_{:04}.tar* for server {server}",
                dir,
                family.name,
                index + 1
            )));
        }
    }
    Ok(())
}

/// Reads and checks the integrity manifest when the backup has one: the archives found
/// must be exactly those it lists, with the sizes it records.
async fn load_manifest(
    storage: &CloudStorage,
    dir: &str,
    key: &str,
    objects: &[ObjectInfo],
    archives: &[(String, &ObjectInfo)],
) -> Result<Option<IntegrityManifest>> {
    if !objects.iter().any(|o| o.key == key) {
        tracing::info!("No integrity manifest ({key}): checking stream integrity only");
        return Ok(None);
    }
    let bytes = storage.get(key).await?;
    let manifest = IntegrityManifest::parse(&bytes)
        .map_err(|e| Error::Corrupt(format!("Cannot read the integrity manifest {key}: {e}")))?;
    for entry in manifest.objects() {
        match archives.iter().find(|(name, _)| *name == entry.name) {
            None => {
                return Err(Error::Corrupt(format!(
                    "Missing file {dir}{} listed in the integrity manifest",
                    entry.name
                )));
            }
            Some((_, object)) if object.size != entry.digest.size => {
                return Err(Error::Corrupt(format!(
                    "{} is {} bytes, the integrity manifest says {}",
                    object.key, object.size, entry.digest.size
                )));
            }
            Some(_) => {}
        }
    }
    if let Some((name, _)) = archives
        .iter()
        .find(|(name, _)| manifest.get(name).is_none())
    {
        return Err(Error::Refused(format!(
            "{dir}{name} is not listed in the integrity manifest: refusing to restore it"
        )));
    }
    Ok(Some(manifest))
}

pub async fn restore_backup(storage: &CloudStorage, request: &RestoreRequest) -> Result<()> {
    let server = &request.server_name;
    let id = &request.backup_id;
    if !is_backup_id(id) {
        return Err(Error::InvalidInput(format!("'{id}' is not a backup ID")));
    }
    let info = read_backup_info(&BucketCatalog::new(storage, server), id)
        .await?
        .ok_or_else(|| {
            Error::Missing(format!("Backup {id} for server {server} does not exists"))
        })?;
    if info.status != Some(BackupStatus::Done) {
        let status = info.status.as_ref().map_or("unknown", |s| s.as_str());
        let error = info
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(Error::Refused(format!(
            "Backup {id} for server {server} has status {status}{error}; only DONE backups \
             can be restored"
        )));
    }
    if info.snapshots_info.is_some() {
        return snapshot::restore_snapshot_backup(
            storage,
            server,
            id,
            &info,
            &request.destination,
            &request.relocations,
            &request.snapshot_recovery,
            &request.snapshot_recovery.options,
            &crate::snapshot::host::LocalHost,
        )
        .await;
    }
    check_empty(&request.destination)?;

    // (archive name, target) for PGDATA, then each tablespace in backup.info order.
    let mut targets: Vec<(String, PathBuf)> =
        vec![("PGDATA".into(), real_path(&request.destination))];
    let mut links: Vec<(u32, PathBuf)> = Vec::new();
    for tablespace in info.tablespaces.iter().flatten() {
        let target = match request
            .relocations
            .iter()
            .find(|(name, _)| *name == tablespace.name)
        {
            Some((_, location)) => real_path(location),
            None => {
                let location = Path::new(&tablespace.location);
                if !location.is_absolute()
                    || location
                        .components()
                        .any(|c| c == std::path::Component::ParentDir)
                {
                    return Err(Error::Refused(format!(
                        "Tablespace {} has the location '{}' in backup.info, which is not a \
                         plain absolute path; relocate it with --tablespace {}:LOCATION",
                        tablespace.name, tablespace.location, tablespace.name
                    )));
                }
                real_path(location)
            }
        };
        check_empty(&target)?;
        targets.push((format!("tablespace {}", tablespace.name), target.clone()));
        links.push((tablespace.oid, target));
    }
    check_disjoint(&targets)?;

    let layout = ServerLayout::new(storage, server);
    let dir = layout.backup_prefix(id);
    let objects = storage.list(&dir).await?;
    let families = backup_archives(&info, &dir, &objects);
    let mut found: Vec<(String, &ObjectInfo)> = Vec::new();
    for family in &families {
        if family.main.is_none() {
            return Err(Error::Corrupt(format!(
                "Missing file {dir}{}.* for server {server}",
                family.name
            )));
        }
        check_parts(family, &dir, server)?;
        for archive in family.objects() {
            if let Some(object) = objects.iter().find(|o| o.key == archive.key) {
                let name = archive.key.strip_prefix(&dir).unwrap_or(&archive.key);
                found.push((name.to_string(), object));
            }
        }
    }
    let manifest_key = layout.manifest(id);
    let manifest = load_manifest(storage, &dir, &manifest_key, &objects, &found).await?;

    let mut roots = Vec::new();
    for (_, target) in &targets {
        roots.push(Arc::new(
            tokio::task::spawn_blocking({
                let target = target.clone();
                move || Root::create(&target).map_err(|e| Error::io(&target, e))
            })
            .await
            .map_err(|e| Error::Failed(format!("restore task failed: {e}")))??,
        ));
    }
    // Checked again on the directories actually opened: a location reached through a
    // link (or one that did not exist before) may only now show that it is another target.
    let opened: Vec<(String, PathBuf)> = targets
        .iter()
        .zip(&roots)
        .map(|((name, _), root)| {
            root.real_path()
                .map(|path| (name.clone(), path))
                .map_err(|e| Error::io(root.path(), e))
        })
        .collect::<Result<_>>()?;
    check_disjoint(&opened)?;
    let mut archives = Vec::new();
    for (family, root) in families.iter().zip(&roots) {
        for object in family.objects() {
            let name = object
                .key
                .strip_prefix(&dir)
                .unwrap_or(&object.key)
                .to_string();
            archives.push(Archive {
                key: object.key.clone(),
                expected: manifest.as_ref().and_then(|m| m.get(&name).copied()),
                name,
                compression: object.compression,
                root: Arc::clone(root),
            });
        }
    }

    let parallel = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let results: Vec<Result<(Arc<Root>, Vec<DeferredDir>)>> = futures::stream::iter(archives)
        .map(|archive| extract(storage, archive))
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut deferred: Vec<(Arc<Root>, Vec<DeferredDir>)> = Vec::new();
    for result in results {
        deferred.push(result?);
    }

    let data_root = Arc::clone(&roots[0]);
    let wal_directory = info.wal_directory().unwrap_or("pg_wal");
    let expected_label = manifest
        .as_ref()
        .and_then(|m| m.get(BACKUP_LABEL_ENTRY).copied());
    tokio::task::spawn_blocking(move || -> Result<()> {
        for (root, directories) in deferred {
            extract::finish_directories(&root, directories)
                .map_err(|e| Error::io(root.path(), e))?;
        }
        finish_data_directory(&data_root, &links, wal_directory, expected_label)
    })
    .await
    .map_err(|e| Error::Failed(format!("restore task failed: {e}")))??;

    // Targets are disjoint (checked above): one sync each.
    let sync_roots: Vec<PathBuf> = targets.into_iter().map(|(_, target)| target).collect();
    tokio::task::spawn_blocking(move || {
        sync_roots.iter().try_for_each(|root| sync_filesystem(root))
    })
    .await
    .map_err(|e| Error::Failed(format!("fsync task failed: {e}")))??;
    tracing::info!("Restored backup {id} to {}", request.destination.display());
    Ok(())
}

/// A write that failed: refusing to go through a link (the archive's fault, exit 1) or
/// an I/O error of the disk (its cause and path).
fn write_error(path: PathBuf, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::InvalidData {
        Error::Failed(format!("cannot restore {}: {source}", path.display()))
    } else {
        Error::io(path, source)
    }
}

/// Tablespace links, the WAL directory and the backup label check, all through the
/// PGDATA descriptor.
fn finish_data_directory(
    root: &Root,
    links: &[(u32, PathBuf)],
    wal_directory: &str,
    expected_label: Option<Digest256>,
) -> Result<()> {
    let at = |member: &MemberPath| root.show(member);
    if !links.is_empty() {
        let tblspc = MemberPath::from_components(["pg_tblspc"]);
        root.make_dir(&tblspc)
            .map_err(|e| write_error(at(&tblspc), e))?;
        for (oid, target) in links {
            let link = MemberPath::from_components(["pg_tblspc".to_string(), oid.to_string()]);
            root.symlink(&link, target)
                .map_err(|e| write_error(at(&link), e))?;
        }
    }
    let wal = MemberPath::from_components([wal_directory]);
    if root
        .entry_type(&wal)
        .map_err(|e| write_error(at(&wal), e))?
        .is_none()
    {
        root.make_dir(&wal).map_err(|e| write_error(at(&wal), e))?;
    }
    let label = MemberPath::from_components([BACKUP_LABEL_ENTRY]);
    let mut file = root.open_file(&label).map_err(|e| {
        Error::Corrupt(format!(
            "The restored data directory has no usable backup_label ({}: {e}): the backup is \
             incomplete",
            at(&label).display()
        ))
    })?;
    let mut hasher = StreamHasher::default();
    let mut buffer = [0u8; 8192];
    loop {
        match std::io::Read::read(&mut file, &mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) => return Err(Error::io(at(&label), e)),
        }
    }
    let digest = hasher.finish();
    if digest.size == 0 {
        return Err(Error::Corrupt(format!(
            "{} is empty: the backup is incomplete",
            at(&label).display()
        )));
    }
    if let Some(expected) = expected_label
        && expected != digest
    {
        return Err(Error::Corrupt(format!(
            "{} differs from the backup_label recorded in the integrity manifest",
            at(&label).display()
        )));
    }
    Ok(())
}

/// Counts and hashes the bytes of an object as they are read, and notes whether its end
/// was reached.
struct HashingReader<R> {
    inner: R,
    state: Arc<Mutex<HashState>>,
}

#[derive(Default)]
struct HashState {
    hasher: StreamHasher,
    at_end: bool,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 && !buf.is_empty() {
            state.at_end = true;
        } else {
            state.hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Streams one archive object through its decompressor into the extractor, and checks it
/// against the manifest when there is one.
async fn extract(
    storage: &CloudStorage,
    archive: Archive,
) -> Result<(Arc<Root>, Vec<DeferredDir>)> {
    let Archive {
        key,
        name,
        compression,
        root,
        expected,
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
    let state = Arc::new(Mutex::new(HashState::default()));
    let source = Box::new(HashingReader {
        inner: source,
        state: Arc::clone(&state),
    });
    let unpack_root = Arc::clone(&root);
    let unpack_key = key.clone();
    let unpacker = tokio::task::spawn_blocking(move || -> Result<Vec<DeferredDir>> {
        // Reading, hashing and decompressing get a thread of their own, so that they
        // overlap with writing the files.
        let input = DecodeThread::spawn(compression, source)?;
        extract::unpack(input, &unpack_root)
            .map_err(|error| extract_error(error, &unpack_key, &unpack_root, compression))
    });
    if let Some((stream, chunks)) = stream.as_mut() {
        while let Some(chunk) = stream.next().await {
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
    }
    drop(stream);
    let directories = unpacker
        .await
        .map_err(|e| Error::Failed(format!("extraction task failed: {e}")))??;
    if let Some(expected) = expected {
        let state = std::mem::take(&mut *state.lock().unwrap_or_else(|e| e.into_inner()));
        let digest = state.hasher.finish();
        if !state.at_end || digest != expected {
            return Err(Error::Corrupt(format!(
                "{key} does not match the integrity manifest (read {} bytes, SHA-256 {}; \
                 expected {} bytes, SHA-256 {}): the archive is corrupt",
                digest.size,
                digest.hex(),
                expected.size,
                expected.hex()
            )));
        }
        tracing::debug!("{name}: size and SHA-256 match the integrity manifest");
    }
    Ok((root, directories))
}

/// Turns an extraction failure into the library's error, naming the object.
fn extract_error(
    error: ExtractError,
    key: &str,
    root: &Root,
    compression: Option<Compression>,
) -> Error {
    match error {
        ExtractError::Read(e) => match into_storage_error(e) {
            Ok(storage_error) => storage_error,
            Err(e) => match compression {
                Some(codec) if e.kind() != std::io::ErrorKind::UnexpectedEof => {
                    Error::Failed(format!("cannot restore {key}: {}", codec.decode_error(e)))
                }
                _ => Error::Failed(format!("cannot restore {key}: {e}")),
            },
        },
        ExtractError::Write { member, source } => write_error(root.show(&member), source),
        other => Error::Failed(format!("cannot restore {key}: {other}")),
    }
}

/// Reads (and decompresses) on a thread of its own, handing the plain bytes over in
/// bounded chunks.
struct DecodeThread {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: std::io::Cursor<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DecodeThread {
    const CHUNK: usize = 1 << 20;

    /// Reads `reader` (through its decoder when compressed) on a new thread.
    fn spawn(codec: Option<Compression>, reader: Box<dyn std::io::Read + Send>) -> Result<Self> {
        let mut decoder = match codec {
            Some(codec) => codec.decoder(reader).map_err(|e| codec.decode_error(e))?,
            None => reader,
        };
        let (sender, chunks) = std::sync::mpsc::sync_channel(4);
        let thread = std::thread::Builder::new()
            .name("read-archive".into())
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
            .map_err(|e| Error::Failed(format!("cannot start a decompression thread: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::BackupInfo;
    use crate::catalog::manifest::{Digest256, IntegrityManifest};
    use crate::catalog_store::{BucketCatalog, CatalogStore};
    use crate::storage::in_memory;

    const ID: &str = "20261129T000000";

    /// A tar of `members` (name, content), with its end-of-archive marker.
    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            builder.append_data(&mut header, name, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A DONE backup whose data archive is split in two objects, with its manifest.
    async fn backup_in(storage: &CloudStorage) {
        let store = BucketCatalog::new(storage, "srv");
        let layout = store.layout();
        let label = b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n";
        // Each object of a split archive is a whole tar of its own.
        let first = tar_of(&[("PG_VERSION", b"15\n"), ("base/1/1259", &[7u8; 3000])]);
        let second = tar_of(&[("global/pg_control", b"control"), ("backup_label", label)]);
        let mut manifest = IntegrityManifest::default();
        for (name, data) in [("data.tar", &first), ("data_0001.tar", &second)] {
            let key = layout.backup_object(ID, name);
            storage.put(&key, data.clone().into(), &[]).await.unwrap();
            manifest.insert(name, Digest256::of(data));
        }
        manifest.insert(
            crate::catalog::manifest::BACKUP_LABEL_ENTRY,
            Digest256::of(label),
        );
        let text = manifest.render();
        storage
            .put(&layout.manifest(ID), text.into_bytes().into(), &[])
            .await
            .unwrap();
        let info = BackupInfo {
            backup_id: Some(ID.into()),
            status: Some(BackupStatus::Done),
            version: Some(150000),
            ..Default::default()
        };
        let text = info.to_file_text().unwrap();
        store.write_backup_info(ID, text.into(), &[]).await.unwrap();
    }

    fn request(destination: &Path) -> RestoreRequest {
        RestoreRequest {
            server_name: "srv".into(),
            backup_id: ID.into(),
            destination: destination.to_path_buf(),
            relocations: Vec::new(),
            snapshot_recovery: Default::default(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_split_backup_restores_whole_from_an_in_memory_store() {
        let storage = in_memory("s3://bucket/pg");
        backup_in(&storage).await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("pgdata");
        restore_backup(&storage, &request(&target)).await.unwrap();
        assert_eq!(std::fs::read(target.join("PG_VERSION")).unwrap(), b"15\n");
        assert_eq!(
            std::fs::read(target.join("base/1/1259")).unwrap(),
            [7u8; 3000]
        );
        assert_eq!(
            std::fs::read(target.join("global/pg_control")).unwrap(),
            b"control"
        );
        assert!(target.join("pg_wal").is_dir(), "the WAL directory is made");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_or_incomplete_backup_is_refused() {
        let storage = in_memory("s3://bucket/pg");
        backup_in(&storage).await;
        let layout = ServerLayout::new(&storage, "srv");
        let dir = tempfile::tempdir().unwrap();

        // One flipped byte in the second part: the manifest's digest catches it.
        let key = layout.backup_object(ID, "data_0001.tar");
        let mut damaged = storage.get(&key).await.unwrap().to_vec();
        damaged[600] ^= 1;
        storage.put(&key, damaged.into(), &[]).await.unwrap();
        let error = restore_backup(&storage, &request(&dir.path().join("a")))
            .await
            .unwrap_err();
        assert!(matches!(error.root(), Error::Corrupt(_)), "{error:?}");

        // A missing part: refused before anything is written.
        storage
            .delete_objects(&[key], 1, 1)
            .await
            .into_result()
            .unwrap();
        let target = dir.path().join("b");
        let error = restore_backup(&storage, &request(&target))
            .await
            .unwrap_err();
        assert!(matches!(error.root(), Error::Corrupt(_)), "{error:?}");
        assert!(!target.join("PG_VERSION").exists());

        // An unknown backup.
        let mut other = request(&dir.path().join("c"));
        other.backup_id = "20200101T000000".into();
        let error = restore_backup(&storage, &other).await.unwrap_err();
        assert!(matches!(error, Error::Missing(_)), "{error:?}");
    }
}
