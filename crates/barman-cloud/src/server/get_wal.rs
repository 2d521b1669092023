//! `barman get-wal` (Barman's `Server.get_wal` and `get_wal_sendfile`): finds a WAL in the
//! archive, `incoming/` or `streaming/`, and streams it decompressed (by its magic bytes),
//! recompressed, or as stored; `--peek` lists the WALs present from a given one on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::compression::{Compression, CompressionLevel, magic};
use crate::error::{Error, Result};
use crate::server::paths::WalArchivePaths;
use crate::wal::name::{WalKind, WalName};

/// How the WAL is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalOutput {
    /// The WAL as PostgreSQL wrote it.
    #[default]
    Plain,
    /// Compressed with this codec (`-z` gzip, `-j` bzip2).
    Compressed(Compression),
    /// `--keep-compression`: the stored bytes as they are.
    AsStored,
}

/// ` (SSH host: <ip>)` when the command runs under SSH (`SSH_CONNECTION` set), which
/// Barman appends to every get-wal and put-wal message; empty otherwise.
pub fn ssh_host_suffix(ssh_connection: Option<&str>) -> String {
    ssh_connection
        .and_then(|value| value.split_whitespace().next())
        .map(|ip| format!(" (SSH host: {ip})"))
        .unwrap_or_default()
}

/// The requested name, or Barman's error (exit code 3 in its CLI).
pub fn parse_requested_name(name: &str, ssh_suffix: &str) -> Result<WalName> {
    WalName::try_parse(name).ok_or_else(|| {
        Error::InvalidInput(format!("'{name}' is not a valid wal file name{ssh_suffix}"))
    })
}

/// Where `wal` may be, in Barman's search order: the archive, `incoming/`,
/// `streaming/`, with `partial` the `.partial` variants (and `streaming/` again, for
/// pg_receivewal completing the segment meanwhile), and the archive again last, for a
/// file the archiver moved meanwhile.
pub fn candidate_paths(paths: &WalArchivePaths, wal: &WalName, partial: bool) -> Vec<PathBuf> {
    let archived = paths.stored_path(wal);
    let incoming = paths.incoming.join(wal.as_str());
    let streaming = paths.streaming.join(wal.as_str());
    let mut candidates = vec![archived.clone(), incoming.clone(), streaming.clone()];
    if partial {
        candidates.push(with_partial(&streaming));
        candidates.push(streaming);
        candidates.push(with_partial(&archived));
        candidates.push(with_partial(&incoming));
    }
    candidates.push(archived);
    candidates
}

fn with_partial(path: &Path) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(".partial");
    PathBuf::from(text)
}

/// What [`send_wal`] sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentWal {
    /// The file read.
    pub path: PathBuf,
    /// Bytes written to the output.
    pub bytes: u64,
}

/// Writes the WAL `wal` of the server to `output` as `how` asks, reading the first
/// candidate that exists (a file vanishing before it is opened is skipped, as Barman
/// does). Memory stays bounded; a decoding error can come after some output was
/// written. `.partial` files are sent as they are, whatever `how` says (Barman never
/// compresses them). Not found: Barman's `WAL file '<name>' not found in server '<srv>'`.
pub fn send_wal<W: Write>(
    paths: &WalArchivePaths,
    wal: &WalName,
    partial: bool,
    how: WalOutput,
    level: CompressionLevel,
    ssh_suffix: &str,
    output: &mut W,
) -> Result<SentWal> {
    for path in candidate_paths(paths, wal, partial) {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Error::io(&path, io::Error::other("Is a directory")));
        }
        let bytes = send_file(&path, file, how, level, output)?;
        return Ok(SentWal { path, bytes });
    }
    Err(Error::Missing(format!(
        "WAL file '{wal}' not found in server '{}'{ssh_suffix}",
        paths.server
    )))
}

fn send_file<W: Write>(
    path: &Path,
    mut file: File,
    how: WalOutput,
    level: CompressionLevel,
    output: &mut W,
) -> Result<u64> {
    let is_partial = path
        .file_name()
        .and_then(|n| WalName::try_parse(&n.to_string_lossy()))
        .is_some_and(|w| w.kind() == WalKind::Partial);
    let stored = magic::identify_file(path).map_err(|e| Error::io(path, e))?;
    let wanted = match how {
        WalOutput::Plain => None,
        WalOutput::Compressed(codec) => Some(codec),
        WalOutput::AsStored => stored,
    };
    let mut counted = Counting {
        inner: output,
        bytes: 0,
        write_failed: None,
    };
    if is_partial || stored == wanted {
        io::copy(&mut file, &mut counted).map_err(|e| copy_error(path, e, &counted))?;
        return Ok(counted.bytes);
    }
    let mut decoded: Box<dyn Read + Send> = match stored {
        Some(codec) => codec.decoder(file).map_err(|e| codec.decode_error(e))?,
        None => Box::new(file),
    };
    match wanted {
        None => {
            io::copy(&mut decoded, &mut counted).map_err(|e| match stored {
                Some(codec) if counted.write_failed.is_none() => {
                    codec.decode_error(e).context(path.display().to_string())
                }
                _ => Error::io(path, e),
            })?;
        }
        Some(codec) => {
            codec
                .compress(level, &mut decoded, &mut counted)
                .map_err(|e| match (e, stored) {
                    (crate::compression::StreamError::Read(e), Some(src)) => {
                        src.decode_error(e).context(path.display().to_string())
                    }
                    (crate::compression::StreamError::Read(e), None) => Error::io(path, e),
                    (crate::compression::StreamError::Write(e), _) => {
                        Error::Failed(format!("writing WAL {}: {e}", path.display()))
                    }
                })?;
        }
    }
    Ok(counted.bytes)
}

fn copy_error<W>(path: &Path, error: io::Error, counted: &Counting<'_, W>) -> Error {
    match &counted.write_failed {
        Some(_) => Error::Failed(format!("writing WAL {}: {error}", path.display())),
        None => Error::io(path, error),
    }
}

/// Counts what reaches the output, and remembers whether the output failed (so a broken
/// pipe is not blamed on the stored file).
struct Counting<'a, W> {
    inner: &'a mut W,
    bytes: u64,
    write_failed: Option<io::ErrorKind>,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.write_failed = Some(e.kind());
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.write_failed = Some(e.kind()))
    }
}

/// Barman's segment-name generator without a known segment size: every segment number
/// up to 0x7FFFF of a log, then the next log.
const SEGMENTS_PER_LOG: u64 = 0x7FFFF;

/// `get-wal --peek count`: the names, from `wal` on, of WALs present in the archive,
/// `incoming/` or `streaming/` (not `.partial`), at most `count`, stopping at the first
/// missing one, except that a missing segment whose number is a power of two may be the
/// end of a log with bigger segments, so the search goes on at the next log's first
/// segment. Names come out as Barman generates them (hex in upper case). A non-segment
/// name yields only itself, if present.
pub fn peek(paths: &WalArchivePaths, wal: &WalName, count: usize) -> Vec<String> {
    let present = |name: &str| {
        WalName::try_parse(name)
            .is_some_and(|w| candidate_paths(paths, &w, false).iter().any(|p| p.exists()))
    };
    let name = wal.as_str();
    let field = |range: std::ops::Range<usize>| {
        name.get(range)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
    };
    // History files have no log and segment numbers.
    let is_history = wal.kind() == WalKind::History;
    let tli = field(0..8).unwrap_or(0);
    let (mut log, mut seg) = if is_history {
        (None, None)
    } else {
        (field(8..16), field(16..24))
    };
    let mut found = Vec::new();
    // Only a plain segment has successors; other names are tried alone.
    let mut single = (wal.kind() != WalKind::Segment).then(|| name.to_string());
    let mut generating = wal.kind() == WalKind::Segment;
    while found.len() < count {
        let candidate = if generating {
            let (l, s) = (log.expect("segment"), seg.expect("segment"));
            format!("{tli:08X}{l:08X}{s:08X}")
        } else {
            match single.take() {
                Some(name) => name,
                None => break,
            }
        };
        if present(&candidate) {
            found.push(candidate);
            if generating {
                let next = seg.expect("segment") + 1;
                if next > SEGMENTS_PER_LOG {
                    seg = Some(0);
                    log = log.map(|l| l + 1);
                } else {
                    seg = Some(next);
                }
            }
            continue;
        }
        match (log, seg) {
            (Some(l), Some(s)) if s.is_power_of_two() => {
                log = Some(l + 1);
                seg = Some(0);
                generating = true;
            }
            _ => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn setup() -> (tempfile::TempDir, WalArchivePaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = WalArchivePaths::with_defaults("pg", dir.path().join("pg"), dir.path());
        for d in [&paths.incoming, &paths.streaming, &paths.wals] {
            fs::create_dir_all(d).unwrap();
        }
        (dir, paths)
    }

    fn store(paths: &WalArchivePaths, name: &str, bytes: &[u8]) {
        let path = paths.stored_path(&WalName::parse(name).unwrap());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn get(paths: &WalArchivePaths, name: &str, partial: bool, how: WalOutput) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let wal = parse_requested_name(name, "")?;
        send_wal(
            paths,
            &wal,
            partial,
            how,
            CompressionLevel::Medium,
            "",
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn names_and_messages_are_barman_ones() {
        assert_eq!(
            parse_requested_name("foo", " (SSH host: 10.0.0.1)")
                .unwrap_err()
                .to_string(),
            "'foo' is not a valid wal file name (SSH host: 10.0.0.1)"
        );
        assert_eq!(
            ssh_host_suffix(Some("10.0.0.1 5555 10.0.0.2 22")),
            " (SSH host: 10.0.0.1)"
        );
        assert_eq!(ssh_host_suffix(None), "");
        let (_dir, paths) = setup();
        assert_eq!(
            get(&paths, "000000010000000000000009", true, WalOutput::Plain)
                .unwrap_err()
                .to_string(),
            "WAL file '000000010000000000000009' not found in server 'pg'"
        );
    }

    #[test]
    fn decompresses_by_magic_recompresses_or_keeps_stored_bytes() {
        let (_dir, paths) = setup();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 199) as u8).collect();
        let xz = Compression::Xz
            .compress(CompressionLevel::Low, &mut &data[..], Vec::new())
            .unwrap();
        store(&paths, "000000010000000000000001", &xz);
        let name = "000000010000000000000001";
        assert_eq!(get(&paths, name, false, WalOutput::Plain).unwrap(), data);
        assert_eq!(get(&paths, name, false, WalOutput::AsStored).unwrap(), xz);
        for codec in [Compression::Gzip, Compression::Bzip2, Compression::Xz] {
            let out = get(&paths, name, false, WalOutput::Compressed(codec)).unwrap();
            assert_eq!(magic::identify(&out), Some(codec));
            let mut plain = Vec::new();
            codec.decompress(&out[..], &mut plain).unwrap();
            assert_eq!(plain, data);
        }
        // A damaged stored file is an error, not a short WAL.
        store(&paths, name, &xz[..xz.len() / 2]);
        assert!(get(&paths, name, false, WalOutput::Plain).is_err());
    }

    #[test]
    fn lookup_order_and_partial_files() {
        let (_dir, paths) = setup();
        let name = "000000010000000000000002";
        fs::write(paths.streaming.join(name), b"streaming").unwrap();
        assert_eq!(
            get(&paths, name, false, WalOutput::Plain).unwrap(),
            b"streaming"
        );
        fs::write(paths.incoming.join(name), b"incoming").unwrap();
        assert_eq!(
            get(&paths, name, false, WalOutput::Plain).unwrap(),
            b"incoming"
        );
        store(&paths, name, b"archived");
        assert_eq!(
            get(&paths, name, false, WalOutput::Plain).unwrap(),
            b"archived"
        );

        let other = "000000010000000000000003";
        fs::write(
            paths.incoming.join(format!("{other}.partial")),
            b"in-partial",
        )
        .unwrap();
        assert!(get(&paths, other, false, WalOutput::Plain).is_err());
        assert_eq!(
            get(&paths, other, true, WalOutput::Plain).unwrap(),
            b"in-partial"
        );
        fs::write(
            paths.streaming.join(format!("{other}.partial")),
            b"st-partial",
        )
        .unwrap();
        // A partial file is sent as it is even when compression is asked for.
        assert_eq!(
            get(
                &paths,
                other,
                true,
                WalOutput::Compressed(Compression::Gzip)
            )
            .unwrap(),
            b"st-partial"
        );
        // History files live directly in wals/.
        store(&paths, "00000002.history", b"1\t0/3000000\treason\n");
        assert_eq!(
            get(&paths, "00000002.history", false, WalOutput::Plain).unwrap(),
            b"1\t0/3000000\treason\n"
        );
    }

    #[test]
    fn peek_follows_barman_rules() {
        let (_dir, paths) = setup();
        for seg in [
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003",
        ] {
            store(&paths, seg, b"x");
        }
        // Segment 4 missing (a power of two): next log, whose segment 0 is there.
        store(&paths, "000000010000000100000000", b"x");
        fs::write(paths.incoming.join("000000010000000100000001"), b"x").unwrap();
        let wal = |n: &str| WalName::parse(n).unwrap();
        assert_eq!(
            peek(&paths, &wal("000000010000000000000001"), 10),
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000100000000",
                "000000010000000100000001",
            ]
        );
        assert_eq!(peek(&paths, &wal("000000010000000000000001"), 2).len(), 2);
        // A missing segment that is not a power of two ends the list.
        store(&paths, "000000010000000000000006", b"x");
        assert_eq!(
            peek(&paths, &wal("000000010000000000000006"), 5),
            ["000000010000000000000006"]
        );
        // Lower case in, upper case out.
        store(&paths, "0000000100000002000000AA", b"x");
        assert_eq!(
            peek(&paths, &wal("0000000100000002000000aa"), 5),
            ["0000000100000002000000AA"]
        );
        // Other names only themselves (a `.partial` name too, looked up as it is).
        store(&paths, "00000002.history", b"x");
        assert_eq!(
            peek(&paths, &wal("00000002.history"), 5),
            ["00000002.history"]
        );
        assert!(peek(&paths, &wal("00000003.history"), 5).is_empty());
        fs::write(
            paths.streaming.join("000000010000000300000005.partial"),
            b"x",
        )
        .unwrap();
        assert_eq!(
            peek(&paths, &wal("000000010000000300000005.partial"), 5),
            ["000000010000000300000005.partial"]
        );
    }
}
