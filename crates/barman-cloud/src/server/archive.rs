//! `barman archive-wal` for files PostgreSQL's archive_command (or put-wal) left in
//! `incoming/` (Barman's `FileWalArchiver` and `WalArchiver.archive`): each WAL file is
//! stored in `wals/<hash>/` (history files in `wals/`) under its bare name, compressed
//! with the server's `compression` unless it arrived compressed, and indexed in xlog.db;
//! duplicates and unknown files go to `errors/`.
//!
//! A WAL is reported filed only once its stored copy and its index line are on disk, and
//! a stored WAL is never replaced: the copy reaches its final name by a hard link, which
//! fails rather than overwrite.
//!
//! Left to the caller, which knows the backup catalog: removing WALs older than the first
//! backup and promoting WAITING_FOR_WALS backups, from [`ArchiveReport::archived`].

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::compression::{Compression, CompressionLevel, StreamError, magic};
use crate::durable;
use crate::error::{Error, Result};
use crate::server::lock::LockFile;
use crate::server::paths::WalArchivePaths;
use crate::server::xlogdb::{XlogDb, XlogDbGuard, XlogEntry, python_timestamp};
use crate::wal::name::WalName;

/// The server settings archiving follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveSettings {
    /// `compression`: how WALs that arrive uncompressed are stored.
    pub compression: Option<Compression>,
    /// `compression_level`.
    pub level: CompressionLevel,
    /// `archiver_batch_size`: at most this many files of `incoming/` per run; 0 = all.
    pub batch_size: usize,
}

/// What became of one WAL file of the batch.
#[derive(Debug)]
pub enum Filed {
    /// Stored and indexed with this entry.
    Archived(XlogEntry),
    /// Already stored with the same content: the incoming copy was removed.
    AlreadyArchived,
    /// Already stored with other content: the incoming copy was moved to this path.
    Duplicate(PathBuf),
}

/// What one archive-wal run did, in the order Barman reports it.
#[derive(Debug)]
pub struct ArchiveReport {
    pub server: String,
    /// Files of `incoming/` seen (every name the `*` glob matches, before the batch limit).
    pub total: usize,
    /// WAL files of this run, in name order, with what became of each; a file whose
    /// processing failed is the last one, without outcome.
    pub files: Vec<(String, Option<Filed>)>,
    /// Names that are not WAL files, moved to `errors/<name>.<UTCSTAMP>.unknown`.
    pub unknown: Vec<String>,
    /// The error that stopped the run, after the files listed before it.
    pub failure: Option<Error>,
}

/// The result of [`archive_incoming`].
#[derive(Debug)]
pub enum ArchiveOutcome {
    /// Another archive-wal (Barman's or ours) holds the server's archive lock.
    Busy {
        server: String,
    },
    Ran(ArchiveReport),
}

impl ArchiveOutcome {
    /// The lines Barman prints for this run (`verbose` false, as under cron, prints only
    /// when there was something to do).
    pub fn lines(&self, verbose: bool) -> Vec<String> {
        match self {
            ArchiveOutcome::Busy { server } => vec![format!(
                "Another archive-wal process is already running on server {server}. \
                 Skipping to the next server"
            )],
            ArchiveOutcome::Ran(report) => report.lines(verbose),
        }
    }
}

impl ArchiveReport {
    /// Entries appended to xlog.db by this run.
    pub fn archived(&self) -> impl Iterator<Item = &XlogEntry> {
        self.files.iter().filter_map(|(_, filed)| match filed {
            Some(Filed::Archived(entry)) => Some(entry),
            _ => None,
        })
    }

    /// Barman's output: header (with the batch size when fewer files than the directory
    /// holds were taken, which also happens when some of them are unknown or `.tmp`),
    /// a `\t<name>` line per file, duplicate errors, `\tno file found`, the unknown files.
    pub fn lines(&self, verbose: bool) -> Vec<String> {
        let server = &self.server;
        let run_size = self.files.len();
        let mut header = format!("Processing xlog segments from file archival for {server}");
        if run_size > 0 && self.total > run_size {
            header.push_str(&format!(" (batch size: {run_size})"));
        }
        let mut lines = Vec::new();
        if verbose || run_size > 0 {
            lines.push(header);
        }
        for (name, filed) in &self.files {
            lines.push(format!("\t{name}"));
            if let Some(Filed::Duplicate(_)) = filed {
                lines.push(format!(
                    "\tError: {name} is already present in server {server}. \
                     File moved to errors directory."
                ));
            }
        }
        if run_size == 0 && verbose {
            lines.push("\tno file found".into());
        }
        if !self.unknown.is_empty() {
            lines.push(format!(
                "Some unknown objects have been found while processing xlog segments for \
                 {server}. Objects moved to errors directory:"
            ));
            lines.extend(self.unknown.iter().map(|name| format!("\t{name}")));
        }
        lines
    }
}

/// Files `incoming/` into the archive: one archive-wal run for the server.
pub fn archive_incoming(
    paths: &WalArchivePaths,
    settings: &ArchiveSettings,
) -> Result<ArchiveOutcome> {
    let Some(_lock) = LockFile::try_acquire(&paths.archive_wal_lock())? else {
        return Ok(ArchiveOutcome::Busy {
            server: paths.server.clone(),
        });
    };
    let Batch {
        wals: batch,
        unknown,
        total,
    } = next_batch(&paths.incoming, settings.batch_size)?;
    let mut report = ArchiveReport {
        server: paths.server.clone(),
        total,
        files: Vec::new(),
        unknown: Vec::new(),
        failure: None,
    };
    let xlogdb = XlogDb::new(paths);
    for (wal, source) in batch {
        report.files.push((wal.as_str().to_string(), None));
        match file_one(paths, settings, &xlogdb, &wal, &source) {
            Ok(filed) => report.files.last_mut().expect("just pushed").1 = Some(filed),
            Err(e) => {
                report.failure = Some(e.context(source.display().to_string()));
                return Ok(ArchiveOutcome::Ran(report));
            }
        }
    }
    for name in unknown {
        let source = paths.incoming.join(&name);
        if let Err(e) = move_to_errors(paths, &source, &name, "unknown") {
            report.failure = Some(e);
            break;
        }
        report.unknown.push(name);
    }
    Ok(ArchiveOutcome::Ran(report))
}

/// The files of one run, both lists in name order.
struct Batch {
    wals: Vec<(WalName, PathBuf)>,
    unknown: Vec<String>,
    /// How many names the directory offered, before the batch limit.
    total: usize,
}

/// The files of this run. Dot-files are invisible (Barman's `*` glob),
/// `.tmp` files are skipped, and anything that is not a regular file with a WAL name is
/// unknown.
fn next_batch(incoming: &Path, batch_size: usize) -> Result<Batch> {
    let mut names = Vec::new();
    let listing = match fs::read_dir(incoming) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Batch {
                wals: Vec::new(),
                unknown: Vec::new(),
                total: 0,
            });
        }
        Err(e) => return Err(Error::io(incoming, e)),
    };
    for entry in listing {
        let entry = entry.map_err(|e| Error::io(incoming, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    let total = names.len();
    if batch_size > 0 {
        names.truncate(batch_size);
    }
    let (mut wals, mut unknown) = (Vec::new(), Vec::new());
    for name in names {
        if name.ends_with(".tmp") {
            continue;
        }
        let path = incoming.join(&name);
        match WalName::try_parse(&name) {
            Some(wal) if path.is_file() => wals.push((wal, path)),
            _ => unknown.push(name),
        }
    }
    Ok(Batch {
        wals,
        unknown,
        total,
    })
}

/// Files one WAL under the xlog.db lock, as Barman does.
fn file_one(
    paths: &WalArchivePaths,
    settings: &ArchiveSettings,
    xlogdb: &XlogDb,
    wal: &WalName,
    source: &Path,
) -> Result<Filed> {
    let mut index = xlogdb.lock()?;
    let target = paths.stored_path(wal);
    let target_dir = target.parent().expect("stored paths have a directory");
    durable::make_dir(target_dir)?;
    let source_codec = magic::identify_file(source).map_err(|e| Error::io(source, e))?;

    if target.exists() {
        if same_wal_content(source, source_codec, &target)? {
            index_if_missing(&mut index, wal, &target)?;
            fs::remove_file(source).map_err(|e| Error::io(source, e))?;
            durable::sync_dir(&paths.incoming)?;
            return Ok(Filed::AlreadyArchived);
        }
        let moved = move_to_errors(paths, source, wal.as_str(), "duplicate")?;
        return Ok(Filed::Duplicate(moved));
    }

    let mtime = fs::metadata(source)
        .and_then(|m| m.modified())
        .map_err(|e| Error::io(source, e))?;
    let (stored_codec, compression) = match (source_codec, settings.compression) {
        (Some(codec), _) => (Some(codec), None),
        (None, wanted) => (wanted, wanted),
    };
    store(source, &target, compression, settings.level, mtime)?;
    let entry = XlogEntry {
        name: wal.as_str().to_string(),
        size: fs::metadata(&target)
            .map_err(|e| Error::io(&target, e))?
            .len(),
        time: python_timestamp(mtime),
        compression: stored_codec.map(|c| c.name().to_string()),
        encryption: None,
    };
    index.append(std::slice::from_ref(&entry))?;
    fs::remove_file(source).map_err(|e| Error::io(source, e))?;
    durable::sync_dir(&paths.incoming)?;
    Ok(Filed::Archived(entry))
}

/// Puts `source`'s content (compressed with `compression` if given) at `target`, which
/// must not exist, with `source`'s mtime, file and directory entry fsynced.
fn store(
    source: &Path,
    target: &Path,
    compression: Option<Compression>,
    level: CompressionLevel,
    mtime: SystemTime,
) -> Result<()> {
    let target_dir = target.parent().expect("stored paths have a directory");
    // A plain WAL on the same file system is linked as it is.
    if compression.is_none() {
        match fs::hard_link(source, target) {
            Ok(()) => {
                durable::sync_file(target)?;
                return durable::sync_dir(target_dir);
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
            Err(e) => return Err(Error::io(target, e)),
        }
    }
    let name = target.file_name().expect("a WAL name").to_string_lossy();
    // Barman's name for its compressed intermediate, so leftovers look alike.
    let temp = target_dir.join(format!("{name}.compressed"));
    let written = (|| {
        let mut input = File::open(source).map_err(|e| Error::io(source, e))?;
        let output = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let output = match compression {
            Some(codec) => codec
                .compress(level, &mut input, output)
                .map_err(|e| stream_error(e, source, &temp))?,
            None => {
                let mut output = output;
                io::copy(&mut input, &mut output).map_err(|e| Error::io(&temp, e))?;
                output
            }
        };
        output.sync_all().map_err(|e| Error::io(&temp, e))?;
        drop(output);
        durable::set_mtime(&temp, mtime)?;
        fs::hard_link(&temp, target).map_err(|e| Error::io(target, e))?;
        durable::sync_file(target)
    })();
    let _ = fs::remove_file(&temp);
    written?;
    durable::sync_dir(target_dir)
}

fn stream_error(error: StreamError, source: &Path, temp: &Path) -> Error {
    match error {
        StreamError::Read(e) => Error::io(source, e),
        StreamError::Write(e) => Error::io(temp, e),
    }
}

/// Whether two WAL files hold the same WAL once each is decompressed according to its
/// magic bytes (Barman's duplicate test), compared in bounded memory.
fn same_wal_content(
    source: &Path,
    source_codec: Option<Compression>,
    stored: &Path,
) -> Result<bool> {
    let stored_codec = magic::identify_file(stored).map_err(|e| Error::io(stored, e))?;
    let mut a = open_decoded(source, source_codec)?;
    let mut b = open_decoded(stored, stored_codec)?;
    same_stream(&mut a, &mut b).map_err(|e| Error::io(stored, e))
}

/// `path` as its decoded content.
pub(crate) fn open_decoded(
    path: &Path,
    codec: Option<Compression>,
) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    match codec {
        None => Ok(Box::new(file)),
        Some(codec) => codec.decoder(file).map_err(|e| codec.decode_error(e)),
    }
}

fn same_stream(a: &mut dyn Read, b: &mut dyn Read) -> io::Result<bool> {
    const CHUNK: usize = 64 * 1024;
    let (mut left, mut right) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = fill(a, &mut left)?;
        let m = fill(b, &mut right)?;
        if n != m || left[..n] != right[..m] {
            return Ok(false);
        }
        if n < CHUNK {
            return Ok(true);
        }
    }
}

/// Reads until `buffer` is full or the input ends.
fn fill(input: &mut dyn Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A stored WAL whose index line is missing (a run interrupted between the two) gets
/// it now, when its incoming twin shows up again; Barman would leave it unindexed until
/// a rebuild-xlogdb.
fn index_if_missing(index: &mut XlogDbGuard<'_>, wal: &WalName, stored: &Path) -> Result<()> {
    let mut present = false;
    index.for_each(|entry| {
        present |= entry.name == wal.as_str();
        Ok(())
    })?;
    if present {
        return Ok(());
    }
    let meta = fs::metadata(stored).map_err(|e| Error::io(stored, e))?;
    let entry = XlogEntry {
        name: wal.as_str().to_string(),
        size: meta.len(),
        time: python_timestamp(meta.modified().map_err(|e| Error::io(stored, e))?),
        compression: magic::identify_file(stored)
            .map_err(|e| Error::io(stored, e))?
            .map(|c| c.name().to_string()),
        encryption: None,
    };
    index.append(&[entry])
}

/// Moves `source` to `errors/<name>.<UTCSTAMP>.<kind>` and returns that path.
pub(crate) fn move_to_errors(
    paths: &WalArchivePaths,
    source: &Path,
    name: &str,
    kind: &str,
) -> Result<PathBuf> {
    durable::make_dir(&paths.errors)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let target = paths.errors.join(format!("{name}.{stamp}.{kind}"));
    durable::move_file(source, &target)?;
    durable::sync_dir(&paths.errors)?;
    if let Some(dir) = source.parent() {
        durable::sync_dir(dir)?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG1: &str = "000000010000000000000001";
    const SEG2: &str = "000000010000000000000002";

    fn setup() -> (tempfile::TempDir, WalArchivePaths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = WalArchivePaths::with_defaults("pg", dir.path().join("pg"), dir.path());
        fs::create_dir_all(&paths.incoming).unwrap();
        (dir, paths)
    }

    fn segment(seed: u8) -> Vec<u8> {
        (0..200_000u32).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    fn run(paths: &WalArchivePaths, settings: &ArchiveSettings) -> ArchiveReport {
        match archive_incoming(paths, settings).unwrap() {
            ArchiveOutcome::Ran(report) => {
                assert!(report.failure.is_none(), "{:?}", report.failure);
                report
            }
            ArchiveOutcome::Busy { .. } => panic!("busy"),
        }
    }

    fn errors_dir(paths: &WalArchivePaths) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&paths.errors)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn files_wals_compressed_without_suffix_and_indexes_them() {
        let (_dir, paths) = setup();
        let data = segment(1);
        fs::write(paths.incoming.join(SEG1), &data).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 250_000_000);
        File::options()
            .write(true)
            .open(paths.incoming.join(SEG1))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        fs::write(
            paths.incoming.join("00000002.history"),
            b"1\t0/3000000\tno recovery target specified\n",
        )
        .unwrap();
        let settings = ArchiveSettings {
            compression: Some(Compression::Gzip),
            ..Default::default()
        };
        let report = run(&paths, &settings);
        assert_eq!(
            ArchiveOutcome::Ran(report).lines(true),
            [
                "Processing xlog segments from file archival for pg",
                "\t000000010000000000000001",
                "\t00000002.history",
            ]
        );
        let stored = paths.wals.join("0000000100000000").join(SEG1);
        let bytes = fs::read(&stored).unwrap();
        assert_eq!(magic::identify(&bytes), Some(Compression::Gzip));
        let mut plain = Vec::new();
        Compression::Gzip
            .decompress(&bytes[..], &mut plain)
            .unwrap();
        assert_eq!(plain, data);
        assert!(paths.wals.join("00000002.history").is_file());
        assert!(fs::read_dir(&paths.incoming).unwrap().next().is_none());
        let entries = XlogDb::new(&paths).entries().unwrap();
        assert_eq!(
            entries[0].to_line(),
            format!("{SEG1}\t{}\t1700000000.25\tgzip\tNone\n", bytes.len())
        );
        assert_eq!(entries[1].name, "00000002.history");
        assert_eq!(entries[1].compression.as_deref(), Some("gzip"));
        // The stored file keeps the source's mtime.
        assert_eq!(fs::metadata(&stored).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    fn already_compressed_wals_are_kept_as_they_came() {
        let (_dir, paths) = setup();
        let compressed = Compression::Bzip2
            .compress(CompressionLevel::Low, &mut &segment(2)[..], Vec::new())
            .unwrap();
        fs::write(paths.incoming.join(SEG1), &compressed).unwrap();
        let settings = ArchiveSettings {
            compression: Some(Compression::Gzip),
            ..Default::default()
        };
        run(&paths, &settings);
        let stored = paths.wals.join("0000000100000000").join(SEG1);
        assert_eq!(fs::read(stored).unwrap(), compressed);
        let entry = &XlogDb::new(&paths).entries().unwrap()[0];
        assert_eq!(entry.compression.as_deref(), Some("bzip2"));
        assert_eq!(entry.size, compressed.len() as u64);
    }

    #[test]
    fn duplicates_identical_dropped_different_moved_to_errors() {
        let (_dir, paths) = setup();
        fs::write(paths.incoming.join(SEG1), segment(1)).unwrap();
        fs::write(paths.incoming.join(SEG2), segment(2)).unwrap();
        let gzip = ArchiveSettings {
            compression: Some(Compression::Gzip),
            ..Default::default()
        };
        run(&paths, &gzip);
        // Same content arriving plain (stored gzip): silently dropped.
        fs::write(paths.incoming.join(SEG1), segment(1)).unwrap();
        // Other content: kept aside, stored copy untouched.
        fs::write(paths.incoming.join(SEG2), segment(3)).unwrap();
        let stored2 = paths.wals.join("0000000100000000").join(SEG2);
        let before = fs::read(&stored2).unwrap();
        let report = run(&paths, &ArchiveSettings::default());
        assert!(matches!(report.files[0].1, Some(Filed::AlreadyArchived)));
        assert!(matches!(report.files[1].1, Some(Filed::Duplicate(_))));
        assert_eq!(
            report.lines(false),
            [
                "Processing xlog segments from file archival for pg",
                "\t000000010000000000000001",
                "\t000000010000000000000002",
                "\tError: 000000010000000000000002 is already present in server pg. File moved to errors directory.",
            ]
        );
        assert_eq!(fs::read(&stored2).unwrap(), before);
        let errors = errors_dir(&paths);
        assert_eq!(errors.len(), 1);
        let re =
            regex_lite::Regex::new(r"^000000010000000000000002\.\d{8}T\d{6}Z\.duplicate$").unwrap();
        assert!(re.is_match(&errors[0]), "{errors:?}");
        assert_eq!(fs::read(paths.errors.join(&errors[0])).unwrap(), segment(3));
        // Neither duplicate added an index line.
        assert_eq!(XlogDb::new(&paths).entries().unwrap().len(), 2);
        assert!(fs::read_dir(&paths.incoming).unwrap().next().is_none());
    }

    #[test]
    fn a_stored_wal_missing_from_the_index_is_indexed_when_it_comes_again() {
        let (_dir, paths) = setup();
        fs::write(paths.incoming.join(SEG1), segment(1)).unwrap();
        run(&paths, &ArchiveSettings::default());
        fs::write(&paths.xlogdb_file, "").unwrap();
        fs::write(paths.incoming.join(SEG1), segment(1)).unwrap();
        run(&paths, &ArchiveSettings::default());
        let entries = XlogDb::new(&paths).entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].name.as_str(), entries[0].compression.as_deref()),
            (SEG1, None)
        );
    }

    #[test]
    fn unknown_tmp_dot_files_and_batch_size() {
        let (_dir, paths) = setup();
        for name in [SEG1, SEG2, "000000010000000000000003"] {
            fs::write(paths.incoming.join(name), b"x").unwrap();
        }
        fs::write(paths.incoming.join("000000010000000000000004.tmp"), b"x").unwrap();
        fs::write(paths.incoming.join(".000000010000000000000005.AbCd"), b"x").unwrap();
        fs::write(paths.incoming.join("00000001000000000000000"), b"x").unwrap();
        fs::create_dir(paths.incoming.join("000000010000000000000006")).unwrap();
        let batch = ArchiveSettings {
            batch_size: 2,
            ..Default::default()
        };
        // Name order: 00000001000000000000000 (unknown), SEG1, ... only two taken.
        let report = run(&paths, &batch);
        assert_eq!(
            report.lines(true),
            [
                "Processing xlog segments from file archival for pg (batch size: 1)",
                "\t000000010000000000000001",
                "Some unknown objects have been found while processing xlog segments for pg. Objects moved to errors directory:",
                "\t00000001000000000000000",
            ]
        );
        let report = run(&paths, &ArchiveSettings::default());
        let lines = report.lines(true);
        // 5 names remain (SEG2, SEG3, .tmp, the directory), 2 filed.
        assert_eq!(
            lines[0],
            "Processing xlog segments from file archival for pg (batch size: 2)"
        );
        assert_eq!(
            &lines[1..3],
            ["\t000000010000000000000002", "\t000000010000000000000003"]
        );
        assert_eq!(lines[4], "\t000000010000000000000006");
        // The .tmp and the dot-file stay in incoming, untouched.
        let mut left: Vec<String> = fs::read_dir(&paths.incoming)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".000000010000000000000005.AbCd",
                "000000010000000000000004.tmp"
            ]
        );
        assert_eq!(errors_dir(&paths).len(), 2);
        // Nothing left to do.
        let report = run(&paths, &ArchiveSettings::default());
        assert_eq!(
            report.lines(true),
            [
                "Processing xlog segments from file archival for pg",
                "\tno file found",
            ]
        );
        assert!(report.lines(false).is_empty());
    }

    #[test]
    fn a_held_archive_lock_skips_the_run() {
        let (_dir, paths) = setup();
        let _held = LockFile::try_acquire(&paths.archive_wal_lock())
            .unwrap()
            .unwrap();
        let outcome = archive_incoming(&paths, &ArchiveSettings::default()).unwrap();
        assert_eq!(
            outcome.lines(false),
            [
                "Another archive-wal process is already running on server pg. Skipping to the next server"
            ]
        );
    }
}
