//! One archive family of a base backup (`data`, or a tablespace OID): a tar stream,
//! compressed as one gzip member / bzip2 stream / lz4 frame / zstd frame / snappy framed
//! stream per object (Barman's reader decodes only the first), cut into objects at
//! `-S` and into upload parts at the chunk size.
//!
//! Runs on a blocking thread: reading files, tar and compression are synchronous; parts
//! cross to the async uploader through a bounded channel, so memory stays at a few parts.

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::owners::Owners;
use crate::catalog::manifest::{Digest256, StreamHasher};
use crate::compression::Compression;
use crate::compression::parallel::{ParallelBzip2Writer, ParallelGzipWriter};
use crate::error::{Error, Result};
use crate::layout::{ServerLayout, archive_object_name};

/// What the uploader receives, in order, for every object.
#[derive(Debug)]
pub enum UploadMessage {
    Start {
        family: String,
        key: String,
    },
    Part(Bytes),
    /// Size and SHA-256 of every byte sent in the object's parts, in order.
    Finish {
        digest: Digest256,
    },
}

/// Settings shared by every family of one backup.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// Where the backup's objects go.
    pub layout: ServerLayout,
    pub backup_id: String,
    pub compression: Option<Compression>,
    /// `-S`: a new object starts before an entry once the current one exceeds this.
    pub max_archive_size: u64,
    /// Upload part size (Barman's chunk size formula).
    pub chunk_size: usize,
    /// `--max-bandwidth` in bytes per second.
    pub max_bandwidth: Option<u64>,
    /// Threads the codecs may use.
    pub compression_threads: usize,
}

/// Object-name extension of a backup archive.
pub fn archive_extension(compression: Option<Compression>) -> Result<&'static str> {
    Ok(match compression {
        None => ".tar",
        Some(Compression::Gzip) => ".tar.gz",
        Some(Compression::Bzip2) => ".tar.bz2",
        Some(Compression::Snappy) => ".tar.snappy",
        Some(Compression::Lz4) => ".tar.lz4",
        Some(Compression::Zstd) => ".tar.zst",
        Some(Compression::Xz) => {
            return Err(Error::Unsupported(
                "xz compression is not available for base backups".into(),
            ));
        }
    })
}

/// Barman writes gzip at level 9; with zlib-rs level 6 is twice as fast (measured in
/// compression::parallel's benchmark) for archives about 5% larger (bench/backup-bench.sh).
const GZIP_LEVEL: u32 = 6;

/// Hashes an object's parts, in order, on a thread of its own: the producer thread (tar and
/// the codec) is the bottleneck of fast backups, so the SHA-256 of the manifest runs beside
/// it. Parts are shared (`Bytes`), not copied; at most two wait for the hasher.
struct PartHasher {
    parts: std::sync::mpsc::SyncSender<Bytes>,
    thread: std::thread::JoinHandle<Digest256>,
}

impl PartHasher {
    fn spawn() -> io::Result<Self> {
        let (parts, received) = std::sync::mpsc::sync_channel::<Bytes>(2);
        let thread = std::thread::Builder::new()
            .name("hash".into())
            .spawn(move || {
                let mut hasher = StreamHasher::default();
                for part in received {
                    hasher.update(&part);
                }
                hasher.finish()
            })?;
        Ok(PartHasher { parts, thread })
    }

    fn hash(&self, part: &Bytes) -> io::Result<()> {
        self.parts
            .send(part.clone())
            .map_err(|_| io::Error::other("the hashing thread stopped"))
    }

    fn finish(self) -> io::Result<Digest256> {
        drop(self.parts);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))
    }
}

/// Collects compressed bytes into parts of `chunk_size` and hands them to the uploader
/// and to the object's [`PartHasher`].
struct PartSink {
    buffer: Vec<u8>,
    chunk_size: usize,
    written: u64,
    hasher: PartHasher,
    uploads: mpsc::Sender<UploadMessage>,
    bandwidth: Option<u64>,
    last_part: Option<(Instant, usize)>,
}

fn upload_stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the uploader stopped")
}

impl PartSink {
    fn send_part(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let (Some(limit), Some((at, size))) = (self.bandwidth, self.last_part) {
            // Barman throttles the pace at which parts are queued, not the socket.
            let due = Duration::from_secs_f64(size as f64 / limit as f64);
            let elapsed = at.elapsed();
            if elapsed < due {
                std::thread::sleep(due - elapsed);
            }
        }
        let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.chunk_size));
        self.last_part = Some((Instant::now(), part.len()));
        let part = Bytes::from(part);
        self.hasher.hash(&part)?;
        self.uploads
            .blocking_send(UploadMessage::Part(part))
            .map_err(|_| upload_stopped())
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len() >= self.chunk_size {
            self.send_part()?;
        }
        let room = self.chunk_size.saturating_sub(self.buffer.len()).max(1);
        let n = data.len().min(room);
        self.buffer.extend_from_slice(&data[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The codec between tar and the part sink.
enum Encoder {
    Plain(PartSink),
    Gzip(ParallelGzipWriter<PartSink>),
    Bzip2(ParallelBzip2Writer<PartSink>),
    Snappy(Box<snap::write::FrameEncoder<PartSink>>),
    Lz4(lz4_flex::frame::FrameEncoder<PartSink>),
    Zstd(zstd::stream::write::Encoder<'static, PartSink>),
}

impl Encoder {
    fn new(sink: PartSink, compression: Option<Compression>, threads: usize) -> io::Result<Self> {
        Ok(match compression {
            None => Encoder::Plain(sink),
            Some(Compression::Gzip) => {
                Encoder::Gzip(ParallelGzipWriter::new(sink, GZIP_LEVEL, threads))
            }
            Some(Compression::Bzip2) => Encoder::Bzip2(ParallelBzip2Writer::new(sink, 9, threads)),
            Some(Compression::Snappy) => {
                Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(sink)))
            }
            // Both frames end with their content checksum (see compression::lz4_encoder).
            Some(Compression::Lz4) => Encoder::Lz4(crate::compression::lz4_encoder(sink)),
            Some(Compression::Zstd) => {
                let mut encoder = crate::compression::zstd_encoder(sink, 3)?;
                if threads > 1 {
                    // zstdmt still writes a single frame.
                    encoder.multithread(threads as u32)?;
                }
                encoder.include_contentsize(false)?;
                Encoder::Zstd(encoder)
            }
            Some(Compression::Xz) => {
                return Err(io::Error::other("xz is not a base-backup compression"));
            }
        })
    }

    fn sink(&self) -> &PartSink {
        match self {
            Encoder::Plain(s) => s,
            Encoder::Gzip(e) => e.get_ref(),
            Encoder::Bzip2(e) => e.get_ref(),
            Encoder::Snappy(e) => e.get_ref(),
            Encoder::Lz4(e) => e.get_ref(),
            Encoder::Zstd(e) => e.get_ref(),
        }
    }

    fn finish(self) -> io::Result<PartSink> {
        Ok(match self {
            Encoder::Plain(s) => s,
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Bzip2(e) => e.finish()?,
            Encoder::Snappy(e) => e.into_inner().map_err(|e| e.into_error())?,
            Encoder::Lz4(e) => e.finish().map_err(io::Error::other)?,
            Encoder::Zstd(e) => e.finish()?,
        })
    }
}

impl Write for Encoder {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(data),
            Encoder::Gzip(w) => w.write(data),
            Encoder::Bzip2(w) => w.write(data),
            Encoder::Snappy(w) => w.write(data),
            Encoder::Lz4(w) => w.write(data),
            Encoder::Zstd(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Yields exactly `size` bytes of a file that may change while it is read: a shrunk file
/// is padded with zeros, growth past the size recorded in the header is left out. The
/// WAL replayed at recovery repairs both.
struct FixedSizeReader {
    file: io::Take<File>,
    remaining: u64,
    short: bool,
}

impl Read for FixedSizeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.remaining as usize);
        let n = if self.short {
            0
        } else {
            self.file.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The archive objects of one family, written entry by entry.
pub struct ArchiveWriter {
    family: String,
    settings: Arc<ArchiveSettings>,
    owners: Arc<Owners>,
    uploads: mpsc::Sender<UploadMessage>,
    next_index: u32,
    current: Option<tar::Builder<Encoder>>,
}

impl ArchiveWriter {
    pub fn new(
        family: &str,
        settings: Arc<ArchiveSettings>,
        owners: Arc<Owners>,
        uploads: mpsc::Sender<UploadMessage>,
    ) -> Self {
        ArchiveWriter {
            family: family.to_string(),
            settings,
            owners,
            uploads,
            next_index: 0,
            current: None,
        }
    }

    fn object_name(&self, index: u32) -> Result<String> {
        let ext = archive_extension(self.settings.compression)?;
        Ok(archive_object_name(&self.family, index, ext))
    }

    fn io_error(&self, source: io::Error) -> Error {
        Error::Failed(format!("writing archive {}: {source}", self.family))
    }

    /// The tar builder to add the next entry to, opening a new object when the current
    /// one holds more than `-S` compressed bytes (files are never split).
    fn builder(&mut self) -> Result<&mut tar::Builder<Encoder>> {
        let full = self
            .current
            .as_ref()
            .is_some_and(|b| b.get_ref().sink().written > self.settings.max_archive_size);
        if full {
            self.finish_object()?;
        }
        if self.current.is_none() {
            let name = self.object_name(self.next_index)?;
            self.next_index += 1;
            let key = (self.settings.layout).backup_object(&self.settings.backup_id, &name);
            self.uploads
                .blocking_send(UploadMessage::Start {
                    family: self.family.clone(),
                    key,
                })
                .map_err(|_| self.io_error(upload_stopped()))?;
            let sink = PartSink {
                buffer: Vec::with_capacity(self.settings.chunk_size),
                chunk_size: self.settings.chunk_size,
                written: 0,
                hasher: PartHasher::spawn().map_err(|e| self.io_error(e))?,
                uploads: self.uploads.clone(),
                bandwidth: self.settings.max_bandwidth,
                last_part: None,
            };
            let encoder = Encoder::new(
                sink,
                self.settings.compression,
                self.settings.compression_threads,
            )
            .map_err(|e| self.io_error(e))?;
            let mut builder = tar::Builder::new(encoder);
            builder.mode(tar::HeaderMode::Complete);
            self.current = Some(builder);
        }
        Ok(self.current.as_mut().expect("opened above"))
    }

    fn finish_object(&mut self) -> Result<()> {
        let Some(builder) = self.current.take() else {
            return Ok(());
        };
        let encoder = builder.into_inner().map_err(|e| self.io_error(e))?;
        let mut sink = encoder.finish().map_err(|e| self.io_error(e))?;
        sink.send_part().map_err(|e| self.io_error(e))?;
        // Every part sent went through the hasher: digest.size == sink.written.
        let digest = sink.hasher.finish().map_err(|e| self.io_error(e))?;
        debug_assert_eq!(digest.size, sink.written);
        self.uploads
            .blocking_send(UploadMessage::Finish { digest })
            .map_err(|_| self.io_error(upload_stopped()))
    }

    fn header_for(&self, meta: &Metadata, entry_type: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid() as u64);
        header.set_gid(meta.gid() as u64);
        header.set_mtime(meta.mtime().max(0) as u64);
        if let Some(name) = self.owners.user(meta.uid()) {
            let _ = header.set_username(&name);
        }
        if let Some(name) = self.owners.group(meta.gid()) {
            let _ = header.set_groupname(&name);
        }
        header.set_size(0);
        header
    }

    pub fn add_directory(&mut self, name: &str, meta: &Metadata) -> Result<()> {
        let mut header = self.header_for(meta, tar::EntryType::Directory);
        let builder = self.builder()?;
        builder
            .append_data(&mut header, name, io::empty())
            .map_err(|e| Error::Failed(format!("archiving directory {name}: {e}")))
    }

    /// Adds a regular file; `Ok(false)` if it vanished before it could be opened.
    pub fn add_file(&mut self, name: &str, path: &Path, meta: &Metadata) -> Result<bool> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        };
        let size = meta.len();
        let mut header = self.header_for(meta, tar::EntryType::Regular);
        header.set_size(size);
        let mut reader = FixedSizeReader {
            file: file.take(size),
            remaining: size,
            short: false,
        };
        let builder = self.builder()?;
        builder
            .append_data(&mut header, name, &mut reader)
            .map_err(|e| Error::Failed(format!("archiving {}: {e}", path.display())))?;
        if reader.short {
            tracing::debug!("{} shrank while being archived", path.display());
        }
        Ok(true)
    }

    pub fn add_symlink(&mut self, name: &str, target: &Path, meta: &Metadata) -> Result<()> {
        let mut header = self.header_for(meta, tar::EntryType::Symlink);
        let builder = self.builder()?;
        builder
            .append_link(&mut header, name, target)
            .map_err(|e| Error::Failed(format!("archiving symlink {name}: {e}")))
    }

    /// Adds in-memory content, as Barman adds `backup_label`: mode 0644, owner root,
    /// group of PGDATA, mtime 0.
    pub fn add_bytes(&mut self, name: &str, content: &[u8], gid: u32) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(gid as u64);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        let builder = self.builder()?;
        builder
            .append_data(&mut header, name, content)
            .map_err(|e| Error::Failed(format!("archiving {name}: {e}")))
    }

    /// Ends the last object of this family.
    pub fn finish(mut self) -> Result<()> {
        self.finish_object()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest announced at the end of each object is that of the bytes of its parts.
    #[test]
    fn each_object_digest_covers_exactly_its_parts() {
        for compression in [None, Some(Compression::Zstd), Some(Compression::Gzip)] {
            let settings = Arc::new(ArchiveSettings {
                layout: ServerLayout::new(&crate::storage::in_memory("s3://b/pg"), "srv"),
                backup_id: "20250101T000000".into(),
                compression,
                max_archive_size: 100_000,
                chunk_size: 4096,
                max_bandwidth: None,
                compression_threads: 1,
            });
            let (sender, mut receiver) = mpsc::channel(4096);
            let mut writer =
                ArchiveWriter::new("data", settings, Arc::new(Owners::default()), sender);
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            for i in 0..12 {
                // Incompressible content, so that objects fill up past -S.
                let content: Vec<u8> = (0..64_000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                writer.add_bytes(&format!("file{i}"), &content, 0).unwrap();
            }
            writer.finish().unwrap();
            let mut objects = Vec::new();
            let mut finished = 0;
            let mut bytes = Vec::new();
            while let Ok(message) = receiver.try_recv() {
                match message {
                    UploadMessage::Start { key, .. } => {
                        bytes.clear();
                        objects.push(key);
                    }
                    UploadMessage::Part(part) => bytes.extend_from_slice(&part),
                    UploadMessage::Finish { digest } => {
                        assert_eq!(digest, Digest256::of(&bytes), "{compression:?}");
                        finished += 1;
                    }
                }
            }
            assert!(objects.len() > 2, "{compression:?}: {objects:?}");
            assert_eq!(finished, objects.len());
        }
    }
}
