//! `barman put-wal` (Barman's `Server.put_wal`) and the tar stream its client,
//! `barman-wal-archive`, sends over SSH: the WAL file and a `MD5SUMS` or `SHA256SUMS`
//! member (`<hex> *<name>` lines, as `md5sum -b` prints). Received files land in
//! `incoming/` only once their checksum is verified and they are on disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::durable;
use crate::error::{Error, Result};
use crate::server::archive::move_to_errors;
use crate::server::paths::WalArchivePaths;

/// What put-wal did with each received file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Now in `incoming/`.
    Stored(String),
    /// `incoming/` already held the same content: nothing changed.
    AlreadyThere(String),
    /// `incoming/` held other content: the received file went to this path.
    Duplicate {
        name: String,
        moved_to: PathBuf,
        /// The message Barman prints for it.
        message: String,
    },
}

/// The outcome of a put-wal that succeeded: the files and the warnings to print
/// (bad checksum lines).
#[derive(Debug, Default)]
pub struct PutWalReport {
    pub files: Vec<Received>,
    pub warnings: Vec<String>,
}

struct Extracted {
    name: String,
    temp: PathBuf,
    md5: String,
    sha256: String,
}

/// Removes the temp files left when put-wal stops early.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Reads a put-wal tar stream from `input` into `incoming/`. Refusals carry Barman's
/// message with `ssh_suffix` (see [`crate::server::get_wal::ssh_host_suffix`]).
pub fn put_wal<R: Read>(
    paths: &WalArchivePaths,
    input: R,
    ssh_suffix: &str,
) -> Result<PutWalReport> {
    let server = &paths.server;
    let refuse = |message: String| {
        Error::Refused(format!(
            "{message} in put-wal for server '{server}'{ssh_suffix}"
        ))
    };
    durable::make_dir(&paths.incoming)?;
    let mut report = PutWalReport::default();
    let mut temps = TempFiles(Vec::new());
    let mut extracted: Vec<Extracted> = Vec::new();
    let mut sums: Vec<(String, String)> = Vec::new();
    let mut use_md5 = false;
    let read_error =
        |e: io::Error| Error::Failed(format!("cannot read the put-wal tar stream: {e}"));

    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let raw_name = entry
            .path()
            .map_err(read_error)?
            .to_string_lossy()
            .into_owned();
        let name = raw_name.strip_prefix("./").unwrap_or(&raw_name).to_string();
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            let code = kind.as_byte();
            let shown = if code.is_ascii_graphic() {
                format!("b'{}'", code as char)
            } else {
                format!("b'\\x{code:02x}'")
            };
            return Err(refuse(format!(
                "Unsupported file type '{shown}' for file '{name}'"
            )));
        }
        if name.contains('/') {
            return Err(refuse(format!("Unsupported filename '{name}'")));
        }
        if name == "MD5SUMS" || name == "SHA256SUMS" {
            for line in io::BufReader::new(&mut entry).split(b'\n') {
                let line = line.map_err(read_error)?;
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end();
                match split_checksum_line(line) {
                    Some((sum, path)) => {
                        let path = path.strip_prefix("./").unwrap_or(path);
                        sums.retain(|(p, _)| p != path);
                        sums.push((path.to_string(), sum.to_string()));
                    }
                    None => report.warnings.push(format!(
                        "Bad checksum line '{line}' found in put-wal for server '{server}'{ssh_suffix}"
                    )),
                }
            }
            use_md5 |= name == "MD5SUMS";
            continue;
        }
        let temp = paths
            .incoming
            .join(format!(".{}-{name}", std::process::id()));
        temps.0.push(temp.clone());
        let mtime = pax_mtime(&mut entry).or_else(|| {
            entry
                .header()
                .mtime()
                .ok()
                .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        });
        let (md5, sha256) = receive(&mut entry, &temp)?;
        if let Some(mtime) = mtime {
            durable::set_mtime(&temp, mtime)?;
        }
        extracted.retain(|e| e.name != name);
        extracted.push(Extracted {
            name,
            temp,
            md5,
            sha256,
        });
    }

    let checksum_of = |e: &Extracted| {
        if use_md5 {
            e.md5.clone()
        } else {
            e.sha256.clone()
        }
    };
    let mut validated: HashMap<&str, bool> = HashMap::new();
    for (path, expected) in &sums {
        let Some(file) = extracted.iter().find(|e| &e.name == path) else {
            return Err(refuse(format!(
                "Checksum without corresponding file '{path}'"
            )));
        };
        let actual = checksum_of(file);
        if &actual != expected {
            return Err(refuse(format!(
                "Bad file checksum '{actual}' (should be {expected}) for file '{path}'"
            )));
        }
        validated.insert(&file.name, true);
    }
    for file in &extracted {
        if !validated.contains_key(file.name.as_str()) {
            return Err(refuse(format!("Missing checksum for file '{}'", file.name)));
        }
        let target = paths.incoming.join(&file.name);
        let checksum = checksum_of(file);
        if target.exists() {
            let existing = file_checksum(&target, use_md5)?;
            if existing == checksum {
                report.files.push(Received::AlreadyThere(file.name.clone()));
                continue;
            }
            let moved_to = move_to_errors(paths, &file.temp, &file.name, "duplicate")?;
            // Barman's text, missing space included.
            let message = format!(
                "\tError: Duplicate Files Detected with Mismatched Checksums. File {} already \
                 exists on server {server} with checksum {existing}, but the checksum of the \
                 incoming file is{checksum}. The file has been moved to the errors directory.",
                file.name
            );
            report.files.push(Received::Duplicate {
                name: file.name.clone(),
                moved_to,
                message,
            });
            continue;
        }
        // Linked then unlinked, so a file that appeared meanwhile is never replaced.
        fs::hard_link(&file.temp, &target).map_err(|e| Error::io(&target, e))?;
        fs::remove_file(&file.temp).map_err(|e| Error::io(&file.temp, e))?;
        report.files.push(Received::Stored(file.name.clone()));
    }
    durable::sync_dir(&paths.incoming)?;
    Ok(report)
}

/// `<checksum><space><space or *><path>`, split at the first such separator.
fn split_checksum_line(line: &str) -> Option<(&str, &str)> {
    let at = line
        .as_bytes()
        .windows(2)
        .position(|w| w[0] == b' ' && (w[1] == b' ' || w[1] == b'*'))?;
    Some((&line[..at], &line[at + 2..]))
}

/// The float mtime Python's tarfile puts in a PAX header, when there is one.
fn pax_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> Option<std::time::SystemTime> {
    let extensions = entry.pax_extensions().ok()??;
    for extension in extensions.flatten() {
        if extension.key() == Ok("mtime") {
            let seconds: f64 = extension.value().ok()?.parse().ok()?;
            return Duration::try_from_secs_f64(seconds)
                .ok()
                .map(|d| UNIX_EPOCH + d);
        }
    }
    None
}

/// Writes `input` to `temp`, fsynced, and returns its md5 and sha256 (hex).
fn receive(input: &mut impl Read, temp: &Path) -> Result<(String, String)> {
    let mut file = File::create(temp).map_err(|e| Error::io(temp, e))?;
    let (mut md5, mut sha) = (Md5::new(), Sha256::new());
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Failed(format!(
                    "cannot read the put-wal tar stream: {e}"
                )));
            }
        };
        md5.update(&buffer[..n]);
        sha.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(temp, e))?;
    }
    file.sync_all().map_err(|e| Error::io(temp, e))?;
    Ok((hex(&md5.finalize()), hex(&sha.finalize())))
}

fn file_checksum(path: &Path, use_md5: bool) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut sink = HashingWriter {
        md5: Md5::new(),
        sha: Sha256::new(),
    };
    io::copy(&mut file, &mut sink).map_err(|e| Error::io(path, e))?;
    Ok(if use_md5 {
        hex(&sink.md5.finalize())
    } else {
        hex(&sink.sha.finalize())
    })
}

struct HashingWriter {
    md5: Md5,
    sha: Sha256,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.md5.update(buf);
        self.sha.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum file the client adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumsKind {
    /// `SHA256SUMS`, Barman 3.20.1's default.
    #[default]
    Sha256,
    /// `MD5SUMS` (`barman-wal-archive --md5`, for older servers).
    Md5,
}

/// The client side (`barman-wal-archive`): writes to `output` the tar stream put-wal
/// reads, the file at `wal_path` as member `name` followed by its checksum file. The
/// file is read once, in bounded memory.
pub fn write_put_wal_tar<W: Write>(
    wal_path: &Path,
    name: &str,
    sums: SumsKind,
    output: W,
) -> Result<W> {
    let file = File::open(wal_path).map_err(|e| Error::io(wal_path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(wal_path, e))?;
    let mut builder = tar::Builder::new(output);
    let mut header = tar::Header::new_ustar();
    header.set_metadata(&meta);
    header.set_entry_type(tar::EntryType::Regular);
    let mut hashing = HashingReader {
        inner: file,
        md5: Md5::new(),
        sha: Sha256::new(),
    };
    let write_error =
        |e: io::Error| Error::Failed(format!("cannot write the put-wal tar stream: {e}"));
    builder
        .append_data(&mut header, name, &mut hashing)
        .map_err(write_error)?;
    let (sum, sums_name) = match sums {
        SumsKind::Sha256 => (hex(&hashing.sha.finalize()), "SHA256SUMS"),
        SumsKind::Md5 => (hex(&hashing.md5.finalize()), "MD5SUMS"),
    };
    let line = format!("{sum} *{name}\n");
    let mut header = tar::Header::new_ustar();
    header.set_size(line.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs()),
    );
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, sums_name, line.as_bytes())
        .map_err(write_error)?;
    builder.into_inner().map_err(write_error)
}

/// The lowercase hex SHA-256 of `data` (the clients scope caches by it).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

struct HashingReader<R> {
    inner: R,
    md5: Md5,
    sha: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, WalArchivePaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = WalArchivePaths::with_defaults("pg", dir.path().join("pg"), dir.path());
        (dir, paths)
    }

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_mtime(1_700_000_000);
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    const SEG: &str = "000000010000000000000001";

    #[test]
    fn our_client_tar_is_accepted_and_lands_in_incoming() {
        let (dir, paths) = setup();
        let wal = dir.path().join(SEG);
        fs::write(&wal, b"wal content").unwrap();
        for sums in [SumsKind::Sha256, SumsKind::Md5] {
            let stream = write_put_wal_tar(&wal, SEG, sums, Vec::new()).unwrap();
            let report = put_wal(&paths, &stream[..], "").unwrap();
            assert!(report.warnings.is_empty());
            assert_eq!(fs::read(paths.incoming.join(SEG)).unwrap(), b"wal content");
            let expected = if sums == SumsKind::Sha256 {
                Received::Stored(SEG.into())
            } else {
                Received::AlreadyThere(SEG.into())
            };
            assert_eq!(report.files, [expected]);
        }
        // Only the WAL in incoming: no temp file left.
        assert_eq!(fs::read_dir(&paths.incoming).unwrap().count(), 1);
    }

    #[test]
    fn checksum_problems_are_refused_with_barman_messages() {
        let (_dir, paths) = setup();
        let md5_of_x = "9dd4e461268c8034f5c8564e155c67a6";
        let err = |members: &[(&str, &[u8])]| {
            put_wal(&paths, &tar_of(members)[..], " (SSH host: 1.2.3.4)")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[
                (SEG, b"x"),
                ("MD5SUMS", format!("{md5_of_x}0 *{SEG}\n").as_bytes())
            ]),
            format!(
                "Bad file checksum '{md5_of_x}' (should be {md5_of_x}0) for file '{SEG}' in put-wal for server 'pg' (SSH host: 1.2.3.4)"
            )
        );
        assert_eq!(
            err(&[(SEG, b"x")]),
            format!(
                "Missing checksum for file '{SEG}' in put-wal for server 'pg' (SSH host: 1.2.3.4)"
            )
        );
        assert_eq!(
            err(&[("MD5SUMS", format!("{md5_of_x} *{SEG}\n").as_bytes())]),
            format!(
                "Checksum without corresponding file '{SEG}' in put-wal for server 'pg' (SSH host: 1.2.3.4)"
            )
        );
        assert_eq!(
            err(&[("sub/x", b"x")]),
            "Unsupported filename 'sub/x' in put-wal for server 'pg' (SSH host: 1.2.3.4)"
        );
        assert!(
            fs::read_dir(&paths.incoming).unwrap().next().is_none(),
            "temp files removed"
        );
        // A bad line is a warning; `./` prefixes are stripped; two spaces work too.
        let report = put_wal(
            &paths,
            &tar_of(&[
                (&format!("./{SEG}"), b"x"),
                (
                    "MD5SUMS",
                    format!("garbage\n{md5_of_x}  ./{SEG}\n").as_bytes(),
                ),
            ])[..],
            "",
        )
        .unwrap();
        assert_eq!(
            report.warnings,
            ["Bad checksum line 'garbage' found in put-wal for server 'pg'"]
        );
        assert_eq!(report.files, [Received::Stored(SEG.into())]);
        // Other content under the same name goes to errors/.
        let other = hex(&Md5::digest(b"y"));
        let report = put_wal(
            &paths,
            &tar_of(&[
                (SEG, b"y"),
                ("MD5SUMS", format!("{other} *{SEG}\n").as_bytes()),
            ])[..],
            "",
        )
        .unwrap();
        let Received::Duplicate {
            message, moved_to, ..
        } = &report.files[0]
        else {
            panic!("{:?}", report.files)
        };
        assert!(
            message.contains(&format!(
                "with checksum {md5_of_x}, but the checksum of the incoming file is{other}."
            )),
            "{message}"
        );
        assert_eq!(fs::read(moved_to).unwrap(), b"y");
        assert_eq!(fs::read(paths.incoming.join(SEG)).unwrap(), b"x");
    }
}
