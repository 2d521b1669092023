//! `barman-cloud-wal-restore`: fetch one WAL for PostgreSQL's restore_command, optionally
//! prefetching the following ones into a spool directory (Barman 3.20's `--parallel`).

use std::io::{self, Read, Write};
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
    if spooled.is_file() && spooled_segment_is_sound(&spooled, &wal) {
        crate::durable::move_file_io(&spooled, &request.destination).map_err(|e| {
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
        Error::Missing(format!(
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
/// according to the key's suffix, checked (a WAL segment must look like one, see
/// [`check_segment`]), fsynced, then renamed over `target`. On any failure the temporary
/// file goes and `target` is left as it was.
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
    let result = write_object(storage, key, &temp, target)
        .await
        .and_then(|()| {
            std::fs::rename(&temp, target).map_err(|e| Error::io(target, e))?;
            crate::durable::sync_dir(dir)
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The segment name `key` holds, when its content must pass [`check_segment`]: a full
/// segment (not `.partial`, `.history` or `.backup`).
fn segment_of_key(key: &str) -> Option<WalName> {
    let basename = key.rsplit('/').next().unwrap_or_default();
    WalName::try_parse(split_compression_suffix(basename).0)
        .filter(|name| name.kind() == WalKind::Segment)
}

/// Writes `object` (as decoded) to `temp`; I/O errors name `target`, the file the user
/// asked for, with the operating system's cause.
async fn write_object(storage: &CloudStorage, key: &str, temp: &Path, target: &Path) -> Result<()> {
    let basename = key.rsplit('/').next().unwrap_or_default();
    let codec = split_compression_suffix(basename).1;
    let segment = segment_of_key(key);
    let file = std::fs::File::create(temp).map_err(|e| Error::io(target, e))?;
    let mut tap = SegmentTap::new(file, segment.is_some());
    match codec {
        None => {
            let mut stream = storage.get_stream(key).await?;
            while let Some(chunk) = stream.next().await {
                tap.write_all(&chunk?)
                    .map_err(|e| tap.error(key, target, e))?;
            }
        }
        Some(codec) => {
            // Decompress while downloading: only a few chunks are ever in memory.
            let mut stream = storage.get_stream(key).await?;
            let (chunks, reader) = ChannelReader::new(8);
            let (key_owned, target_owned) = (key.to_string(), target.to_path_buf());
            let decoder = tokio::task::spawn_blocking(move || {
                let mut writer = io::BufWriter::with_capacity(256 * 1024, tap);
                let decoded = codec.decompress(reader, &mut writer);
                // On failure the buffered rest is dropped, not written: the file goes.
                let flushed = match decoded {
                    Ok(_) => writer.flush(),
                    Err(_) => Ok(()),
                };
                let (tap, _) = writer.into_parts();
                match decoded {
                    Err(StreamError::Read(e)) => Err(match into_storage_error(e) {
                        Ok(storage_error) => storage_error,
                        Err(e) => codec
                            .decode_error(e)
                            .context(format!("Failure downloading WAL {key_owned}")),
                    }),
                    Err(StreamError::Write(e)) => Err(tap.error(&key_owned, &target_owned, e)),
                    Ok(_) => flushed
                        .map_err(|e| tap.error(&key_owned, &target_owned, e))
                        .map(|()| tap),
                }
            });
            while let Some(chunk) = stream.next().await {
                // A closed channel means the decoder stopped: its result says why.
                if chunks.send(chunk).await.is_err() {
                    break;
                }
            }
            drop(chunks);
            tap = decoder
                .await
                .map_err(|e| Error::Failed(format!("decompression task failed: {e}")))??;
        }
    }
    if let Some(segment) = &segment {
        check_segment(segment.as_str(), tap.written, &tap.head[..tap.head_len])
            .map_err(|reason| refused(key, segment, &reason))?;
    }
    tap.inner.sync_all().map_err(|e| Error::io(target, e))
}

fn refused(key: &str, segment: &WalName, reason: &str) -> Error {
    Error::Refused(format!(
        "refusing to restore {key}: its content is not WAL segment {segment} ({reason})"
    ))
}

/// Size of PostgreSQL's `XLogLongPageHeaderData`, the header of a segment's first page
/// (`src/include/access/xlog_internal.h`): `xlp_magic` u16 at 0, `xlp_info` u16 at 2,
/// `xlp_tli` u32 at 4, `xlp_pageaddr` u64 at 8, `xlp_rem_len` u32 at 16 (padded to 24),
/// `xlp_sysid` u64 at 24, `xlp_seg_size` u32 at 32, `xlp_xlog_blcksz` u32 at 36.
const LONG_HEADER_LEN: usize = 40;
/// `xlp_info` flag: this page starts with the long header.
const XLP_LONG_HEADER: u16 = 0x0002;
/// PostgreSQL's limits on `wal_segment_size`.
const MIN_SEGMENT_SIZE: u64 = 1 << 20;
const MAX_SEGMENT_SIZE: u64 = 1 << 30;

/// Does `head`, the start of `size` bytes restored as segment `name`, belong there?
/// The size must be a valid `wal_segment_size` and the first page's long header must
/// carry `XLP_LONG_HEADER`, a timeline no later than the name's, the segment's own start
/// LSN and the same segment size (`xlp_magic`, which changes with every PostgreSQL
/// version, and `xlp_sysid`, unknown here, are not checked). The
/// header is in the byte order of the server that wrote it: either is accepted, as long
/// as all fields agree in it. Errors are the reason, for the user.
pub(crate) fn check_segment(name: &str, size: u64, head: &[u8]) -> std::result::Result<(), String> {
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) || !size.is_power_of_two() {
        return Err(format!(
            "{size} bytes, not a WAL segment size (a power of two from 1 MiB to 1 GiB)"
        ));
    }
    let hex_at = |at: usize| {
        name.get(at..at + 8)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    let (Some(timeline), Some(log), Some(seg)) = (hex_at(0), hex_at(8), hex_at(16)) else {
        return Err("not a WAL segment name".into());
    };
    let segments_per_log = (1u64 << 32) / size;
    if u64::from(seg) >= segments_per_log {
        return Err(format!(
            "its name is no segment of {} MiB, the size of its content",
            size >> 20
        ));
    }
    let start_lsn = (u64::from(log) << 32) + u64::from(seg) * size;
    let Some(head) = head.get(..LONG_HEADER_LEN) else {
        return Err("too short for a WAL page header".into());
    };
    let le16 = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
    let le32 = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    let le64 = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    let little = (le16(2), le32(4), le64(8), le32(32));
    let big = (
        little.0.swap_bytes(),
        little.1.swap_bytes(),
        little.2.swap_bytes(),
        little.3.swap_bytes(),
    );
    let mut first_mismatch = None;
    for (info, page_timeline, page_address, segment_size) in [little, big] {
        let mismatch = if info & XLP_LONG_HEADER == 0 {
            "its first page has no long page header".to_string()
        } else if page_timeline > timeline {
            // Pages of an earlier timeline are normal (a new timeline's first segment
            // starts as a copy of the old one's); of a later one, impossible.
            format!("its first page is of timeline {page_timeline}, later than {timeline}")
        } else if page_address != start_lsn {
            format!(
                "its first page is at {:X}/{:08X}, the segment starts at {:X}/{:08X}",
                page_address >> 32,
                page_address as u32,
                start_lsn >> 32,
                start_lsn as u32
            )
        } else if u64::from(segment_size) != size {
            format!("its header says a segment has {segment_size} bytes, it has {size}")
        } else {
            return Ok(());
        };
        first_mismatch.get_or_insert(mismatch);
    }
    Err(first_mismatch.expect("set in the loop"))
}

/// Whether the spooled copy of `wal` (fetched by an earlier `--parallel` run, or put
/// there by someone else) may be delivered. A bad one is removed, with a warning, and
/// the WAL is downloaded again.
fn spooled_segment_is_sound(path: &Path, wal: &WalName) -> bool {
    if wal.kind() != WalKind::Segment {
        return true;
    }
    let verdict = std::fs::File::open(path).and_then(|mut file| {
        let size = file.metadata()?.len();
        let mut head = Vec::with_capacity(LONG_HEADER_LEN);
        (&mut file)
            .take(LONG_HEADER_LEN as u64)
            .read_to_end(&mut head)?;
        Ok(check_segment(wal.as_str(), size, &head))
    });
    match verdict {
        Ok(Ok(())) => true,
        Ok(Err(reason)) => {
            tracing::warn!(
                "discarding {} from the spool directory: its content is not WAL segment {wal} \
                 ({reason})",
                path.display()
            );
            let _ = std::fs::remove_file(path);
            false
        }
        // Unreadable: let the move report the cause.
        Err(_) => true,
    }
}

/// The writer under the decoder: keeps the first page header and counts the bytes, and
/// for a segment stops as soon as the content outgrows the largest segment size (a
/// decompression bomb or a wrong object does not fill the disk).
struct SegmentTap {
    inner: std::fs::File,
    head: [u8; LONG_HEADER_LEN],
    head_len: usize,
    written: u64,
    limit: Option<u64>,
    over_limit: bool,
}

impl SegmentTap {
    fn new(inner: std::fs::File, is_segment: bool) -> Self {
        SegmentTap {
            inner,
            head: [0; LONG_HEADER_LEN],
            head_len: 0,
            written: 0,
            limit: is_segment.then_some(MAX_SEGMENT_SIZE),
            over_limit: false,
        }
    }

    /// A write failure as the user should see it.
    fn error(&self, key: &str, target: &Path, source: io::Error) -> Error {
        if self.over_limit {
            refused(
                key,
                &segment_of_key(key).expect("limits apply to segments only"),
                &format!("more than {MAX_SEGMENT_SIZE} bytes, the largest WAL segment size"),
            )
        } else {
            Error::io(target, source)
        }
    }
}

impl Write for SegmentTap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(limit) = self.limit
            && self.written + buf.len() as u64 > limit
        {
            self.over_limit = true;
            return Err(io::Error::other("content larger than a WAL segment"));
        }
        let n = self.inner.write(buf)?;
        let take = n.min(LONG_HEADER_LEN - self.head_len);
        self.head[self.head_len..self.head_len + take].copy_from_slice(&buf[..take]);
        self.head_len += take;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// The first 40 bytes of segment 000000010000000000000001 as PostgreSQL 15's initdb
    /// wrote it (16 MiB segments, x86-64).
    fn pg15_16mib_head() -> Vec<u8> {
        hex(
            "10d1 0200 0100 0000 0000 0001 0000 0000 0000 0000 0000 0000 \
             ba05 39f2 c87d 0c6b 0000 0001 0020 0000",
        )
    }

    /// Segment 000000010000000000000006 of a PostgreSQL 15 cluster initialised with
    /// `--wal-segsize=1`, and segment ...07 of the same cluster: a recycled file whose
    /// header is still that of segment ...04.
    fn pg15_1mib_heads() -> (Vec<u8>, Vec<u8>) {
        (
            hex(
                "10d1 0700 0100 0000 0000 6000 0000 0000 d100 0000 0000 0000 \
                 5523 4e25 c57d 0c6b 0000 1000 0020 0000",
            ),
            hex(
                "10d1 0700 0100 0000 0000 4000 0000 0000 3700 0000 0000 0000 \
                 5523 4e25 c57d 0c6b 0000 1000 0020 0000",
            ),
        )
    }

    /// A long page header of timeline 1 in either byte order.
    fn head(info: u16, page_address: u64, segment_size: u32, little: bool) -> Vec<u8> {
        let mut head = vec![0u8; LONG_HEADER_LEN];
        let put = |head: &mut Vec<u8>, at: usize, le: &[u8], be: &[u8]| {
            head[at..at + le.len()].copy_from_slice(if little { le } else { be })
        };
        put(
            &mut head,
            0,
            &0xD110u16.to_le_bytes(),
            &0xD110u16.to_be_bytes(),
        );
        put(&mut head, 2, &info.to_le_bytes(), &info.to_be_bytes());
        put(&mut head, 4, &1u32.to_le_bytes(), &1u32.to_be_bytes());
        put(
            &mut head,
            8,
            &page_address.to_le_bytes(),
            &page_address.to_be_bytes(),
        );
        put(
            &mut head,
            32,
            &segment_size.to_le_bytes(),
            &segment_size.to_be_bytes(),
        );
        head
    }

    #[test]
    fn real_postgresql_15_segments_pass() {
        check_segment("000000010000000000000001", 16 << 20, &pg15_16mib_head()).unwrap();
        let (six, recycled) = pg15_1mib_heads();
        check_segment("000000010000000000000006", 1 << 20, &six).unwrap();
        // Lower-case hex names are WAL names too.
        check_segment(
            "00000001000000000000000a",
            1 << 20,
            &head(2, 0xA << 20, 1 << 20, true),
        )
        .unwrap();
        let why = check_segment("000000010000000000000007", 1 << 20, &recycled).unwrap_err();
        assert!(
            why.contains("0/00400000") && why.contains("0/00700000"),
            "{why}"
        );
    }

    #[test]
    fn content_that_does_not_fit_its_name_is_refused() {
        let good = pg15_16mib_head();
        let name = "000000010000000000000001";
        // Sizes: not a power of two, too small, too large.
        for size in [(16 << 20) - 1, 512 << 10, 2 << 30, 0, (16 << 20) + 8192] {
            let why = check_segment(name, size, &good).unwrap_err();
            assert!(why.contains("not a WAL segment size"), "{size}: {why}");
        }
        // A 16 MiB segment restored under another name, or the same name on another log.
        assert!(check_segment("000000010000000000000002", 16 << 20, &good).is_err());
        assert!(check_segment("000000010000000100000001", 16 << 20, &good).is_err());
        // A valid size that is not the header's (a stream cut at a chunk boundary).
        let why = check_segment(name, 8 << 20, &good).unwrap_err();
        assert!(
            why.contains("page is at") || why.contains("header says"),
            "{why}"
        );
        // Segment number beyond what the size allows: 16 MiB segments end at ...FF.
        let why = check_segment("000000010000000000000100", 16 << 20, &good).unwrap_err();
        assert!(why.contains("no segment of 16 MiB"), "{why}");
        // No long header flag, wrong segment size field, short or garbage content.
        assert!(check_segment(name, 16 << 20, &head(0, 1 << 24, 16 << 20, true)).is_err());
        assert!(check_segment(name, 16 << 20, &head(2, 1 << 24, 8 << 20, true)).is_err());
        assert!(check_segment(name, 16 << 20, &good[..39]).is_err());
        assert!(check_segment(name, 16 << 20, &[0u8; 40]).is_err());
        // Pages of an earlier timeline are normal, of a later one impossible.
        check_segment("000000020000000000000001", 16 << 20, &good).unwrap();
        let mut later = good.clone();
        later[4] = 2;
        let why = check_segment(name, 16 << 20, &later).unwrap_err();
        assert!(why.contains("timeline 2, later than 1"), "{why}");
        // A byte flipped anywhere in the checked fields.
        for at in (2..3).chain(8..16).chain(32..36) {
            let mut bad = good.clone();
            bad[at] ^= if at == 2 { XLP_LONG_HEADER as u8 } else { 0x10 };
            assert!(check_segment(name, 16 << 20, &bad).is_err(), "byte {at}");
        }
    }

    #[test]
    fn either_byte_order_and_every_segment_size_pass() {
        for shift in 20..=30u32 {
            let size = 1u64 << shift;
            let per_log = (1u64 << 32) / size;
            for (log, seg) in [(0u64, 1u64), (0x2A, per_log - 1), (0xFFFF_FFFF, 0)] {
                let name = format!("0000000B{log:08X}{seg:08X}");
                let address = (log << 32) + seg * size;
                for little in [true, false] {
                    let h = head(0x0006, address, size as u32, little);
                    check_segment(&name, size, &h)
                        .unwrap_or_else(|why| panic!("{name} {size} {little}: {why}"));
                }
            }
        }
        // Mixed byte orders do not combine into a pass.
        let mut mixed = head(2, 1 << 24, 16 << 20, true);
        mixed[32..36].copy_from_slice(&(16u32 << 20).to_be_bytes());
        assert!(check_segment("000000010000000000000001", 16 << 20, &mixed).is_err());
    }

    #[test]
    fn only_full_segments_are_checked() {
        let key = "p/srv/wals/0000000100000000/";
        assert!(segment_of_key(&format!("{key}000000010000000000000001.lz4")).is_some());
        assert!(segment_of_key(&format!("{key}000000010000000000000001")).is_some());
        for other in [
            "000000010000000000000001.partial.gz",
            "000000010000000000000001.00000028.backup",
            "00000002.history",
            "junk",
        ] {
            assert!(
                segment_of_key(&format!("{key}{other}")).is_none(),
                "{other}"
            );
        }
    }

    #[test]
    fn a_bad_spooled_segment_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let wal = WalName::parse("000000010000000000000001").unwrap();
        let path = dir.path().join(wal.as_str());
        let mut good = pg15_16mib_head();
        good.resize(16 << 20, 0);
        std::fs::write(&path, &good).unwrap();
        assert!(spooled_segment_is_sound(&path, &wal));
        std::fs::write(&path, &good[..8 << 20]).unwrap();
        assert!(!spooled_segment_is_sound(&path, &wal));
        assert!(!path.exists());
        let history = WalName::parse("00000002.history").unwrap();
        std::fs::write(
            dir.path().join("00000002.history"),
            "1\t0/3000000\tno reason\n",
        )
        .unwrap();
        assert!(spooled_segment_is_sound(
            &dir.path().join("00000002.history"),
            &history
        ));
    }

    /// The fast tier: archive then restore through the in-memory store, with prefetch
    /// into the spool, as `archive_command` and `restore_command` use them.
    #[tokio::test]
    async fn archived_segments_restore_from_an_in_memory_store() {
        use crate::compression::Compression;
        use crate::wal::{ArchiveOutcome, WalArchiveRequest, archive_wal};
        let storage = crate::storage::in_memory("s3://bucket/pg");
        let dir = tempfile::tempdir().unwrap();
        let mut segment = pg15_16mib_head();
        segment.resize(16 << 20, 0);
        segment[100] = 7;
        let name = "000000010000000000000001";
        let wal_path = dir.path().join(name);
        std::fs::write(&wal_path, &segment).unwrap();
        let history = dir.path().join("00000002.history");
        std::fs::write(&history, "1\t0/3000000\tno reason\n").unwrap();
        let archive = |wal_path: &std::path::Path, compression| WalArchiveRequest {
            server_name: "srv".into(),
            wal_path: wal_path.to_path_buf(),
            compression,
            ..Default::default()
        };
        let first = archive_wal(&storage, &archive(&wal_path, Some(Compression::Zstd)))
            .await
            .unwrap();
        let key = "pg/srv/wals/0000000100000000/000000010000000000000001.zst";
        assert_eq!(first, ArchiveOutcome::Uploaded { key: key.into() });
        let again = archive_wal(&storage, &archive(&wal_path, Some(Compression::Gzip))).await;
        assert_eq!(
            again.unwrap(),
            ArchiveOutcome::AlreadyArchived { key: key.into() }
        );
        archive_wal(&storage, &archive(&history, None))
            .await
            .unwrap();

        let spool = dir.path().join("spool");
        let restore = |wal_name: &str, destination: &std::path::Path| WalRestoreRequest {
            server_name: "srv".into(),
            wal_name: wal_name.into(),
            destination: destination.to_path_buf(),
            no_partial: false,
            parallel: 3,
            spool_dir: spool.clone(),
        };
        let restored = dir.path().join("restored");
        let outcome = restore_wal(&storage, &restore(name, &restored))
            .await
            .unwrap();
        assert!(
            matches!(outcome, RestoreOutcome::Downloaded { .. }),
            "{outcome:?}"
        );
        assert!(std::fs::read(&restored).unwrap() == segment);
        let restored_history = dir.path().join("history");
        restore_wal(&storage, &restore("00000002.history", &restored_history))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&restored_history).unwrap(),
            "1\t0/3000000\tno reason\n"
        );
        let missing = restore_wal(
            &storage,
            &restore("000000010000000000000002", &dir.path().join("none")),
        )
        .await
        .unwrap_err();
        assert!(matches!(missing, Error::Missing(_)), "{missing:?}");
        assert!(!dir.path().join("none").exists());
    }
}
