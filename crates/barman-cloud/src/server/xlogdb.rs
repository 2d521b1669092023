//! `xlog.db`, the server's WAL index (Barman's `WalFileInfo.to_xlogdb_line` and
//! `from_xlogdb_line`): one line per archived file, in archive order,
//! `name TAB size TAB time TAB compression TAB encryption LF`, where `size` is the stored
//! (compressed) size, `time` the source file's mtime as Python prints a float, and the
//! last two a name or the literal `None`. Both tools append to the same file, under the
//! same `.<server>-xlogdb.lock`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::pyliteral::{repr_float, repr_str};
use crate::compression::{Compression, magic};
use crate::durable;
use crate::error::{Error, Result};
use crate::server::lock::LockFile;
use crate::server::paths::WalArchivePaths;
use crate::wal::name::WalName;

/// One xlog.db line.
#[derive(Debug, Clone, PartialEq)]
pub struct XlogEntry {
    /// Base name of the WAL file (segment, `.backup`, `.history`, `.partial`).
    pub name: String,
    /// Size as stored, after compression.
    pub size: u64,
    /// Modification time of the file Barman received, in seconds since the epoch.
    pub time: f64,
    /// Barman's compression name (`gzip`, `pigz`, `custom`...), `None` if stored plain.
    pub compression: Option<String>,
    /// Barman's encryption name (`gpg`), `None` if stored in clear.
    pub encryption: Option<String>,
}

impl XlogEntry {
    /// Reads one line as Barman does: 3, 4 or 5 fields separated by any whitespace
    /// (older files lack compression and encryption), `None` meaning absent.
    pub fn parse_line(line: &str) -> Result<Self> {
        let fields: Vec<&str> = line
            .split(is_python_space)
            .filter(|f| !f.is_empty())
            .collect();
        let bad = || Error::Corrupt(format!("cannot parse line: {}", repr_str(line)));
        if !(3..=5).contains(&fields.len()) {
            return Err(bad());
        }
        let optional = |index: usize| {
            fields
                .get(index)
                .filter(|value| **value != "None")
                .map(|value| value.to_string())
        };
        Ok(XlogEntry {
            name: fields[0].to_string(),
            size: fields[1].parse().map_err(|_| bad())?,
            time: parse_python_float(fields[2]).ok_or_else(bad)?,
            compression: optional(3),
            encryption: optional(4),
        })
    }

    /// The line Barman writes for this entry, LF included.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\n",
            self.name,
            self.size,
            repr_float(self.time),
            self.compression.as_deref().unwrap_or("None"),
            self.encryption.as_deref().unwrap_or("None"),
        )
    }

    /// The codec of the stored file, when its compression is one barman-rs decodes.
    pub fn codec(&self) -> Option<Compression> {
        self.compression
            .as_deref()
            .and_then(magic::from_barman_name)
    }
}

/// A file time as Python's `os.stat().st_mtime` computes it (`sec + nsec * 1e-9` in
/// double precision), so the xlog.db `time` of a file is the same whichever tool
/// archived it.
pub fn python_timestamp(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as f64 + f64::from(after.subsec_nanos()) * 1e-9,
        Err(before) => {
            // Before the epoch: Python sees a negative second count and positive nanos.
            let d = before.duration();
            let (mut secs, mut nanos) = (-(d.as_secs() as i64), -i64::from(d.subsec_nanos()));
            if nanos < 0 {
                secs -= 1;
                nanos += 1_000_000_000;
            }
            secs as f64 + nanos as f64 * 1e-9
        }
    }
}

/// Python's `float(text)` for the forms xlog.db holds (and the spellings Python accepts
/// that Rust's parser does not: digit-separating underscores).
fn parse_python_float(text: &str) -> Option<f64> {
    let plain: String = if text.contains('_') {
        // Python allows `_` only between digits.
        let bytes = text.as_bytes();
        let ok = bytes.iter().enumerate().all(|(i, b)| {
            *b != b'_'
                || (i > 0
                    && i + 1 < bytes.len()
                    && bytes[i - 1].is_ascii_digit()
                    && bytes[i + 1].is_ascii_digit())
        });
        if !ok {
            return None;
        }
        text.replace('_', "")
    } else {
        text.to_string()
    };
    plain.parse().ok()
}

/// Python's `str.split()` separators (ASCII ones; xlog.db lines are ASCII).
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A server's xlog.db with its lock.
#[derive(Debug, Clone)]
pub struct XlogDb {
    file: PathBuf,
    lock: PathBuf,
}

impl XlogDb {
    pub fn new(paths: &WalArchivePaths) -> Self {
        XlogDb {
            file: paths.xlogdb_file.clone(),
            lock: paths.xlogdb_lock(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Takes the xlog.db lock (waiting for another holder, Barman's or ours) and creates
    /// the index empty if it does not exist yet.
    pub fn lock(&self) -> Result<XlogDbGuard<'_>> {
        let lock = LockFile::acquire_wait(&self.lock)?;
        if !self.file.exists() {
            if let Some(dir) = self.file.parent() {
                durable::make_dir(dir)?;
            }
            File::options()
                .append(true)
                .create(true)
                .open(&self.file)
                .map_err(|e| Error::io(&self.file, e))?;
            if let Some(dir) = self.file.parent() {
                durable::sync_dir(dir)?;
            }
        }
        Ok(XlogDbGuard {
            db: self,
            _lock: lock,
        })
    }

    /// Every entry, in file order (under the lock).
    pub fn entries(&self) -> Result<Vec<XlogEntry>> {
        let guard = self.lock()?;
        let mut entries = Vec::new();
        guard.for_each(|entry| {
            entries.push(entry);
            Ok(())
        })?;
        Ok(entries)
    }
}

/// The held xlog.db lock: reads and appends happen through it.
#[derive(Debug)]
pub struct XlogDbGuard<'a> {
    db: &'a XlogDb,
    _lock: LockFile,
}

impl XlogDbGuard<'_> {
    /// Calls `visit` on each entry in file order, one line in memory at a time (an
    /// index holds a line per WAL ever kept).
    pub fn for_each(&self, mut visit: impl FnMut(XlogEntry) -> Result<()>) -> Result<()> {
        let path = &self.db.file;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| Error::io(path, e))?;
            if n == 0 {
                return Ok(());
            }
            visit(
                XlogEntry::parse_line(&line).map_err(|e| e.context(path.display().to_string()))?,
            )?;
        }
    }

    /// Appends `entries` and fsyncs the index before returning: an entry is durable
    /// once this returns.
    pub fn append(&mut self, entries: &[XlogEntry]) -> Result<()> {
        let path = &self.db.file;
        let text: String = entries.iter().map(XlogEntry::to_line).collect();
        let mut file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(path, e))
    }
}

impl XlogDbGuard<'_> {
    /// Removes from the archive every entry `remove` selects: first from the index,
    /// rewritten through a synced temporary file and renamed over it, then the stored files
    /// (and hash directories left empty). A crash between the two leaves files that the
    /// index no longer lists, never an index entry without its file. Returns the removed
    /// entries in index order.
    pub fn remove_where(
        &mut self,
        paths: &WalArchivePaths,
        remove: impl FnMut(&XlogEntry) -> bool,
    ) -> Result<Vec<XlogEntry>> {
        self.remove_where_with(paths, remove, &mut NoRemovalHooks)
    }

    /// [`Self::remove_where`] with `hooks` run around the removal of each file (Barman's
    /// WAL deletion hook scripts). A `pre` error stops the removal there (the index is
    /// already rewritten).
    pub fn remove_where_with(
        &mut self,
        paths: &WalArchivePaths,
        mut remove: impl FnMut(&XlogEntry) -> bool,
        hooks: &mut dyn RemovalHooks,
    ) -> Result<Vec<XlogEntry>> {
        let path = self.db.file.clone();
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let temporary = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let mut removed = Vec::new();
        let written = (|| -> Result<()> {
            let mut out = std::io::BufWriter::new(
                File::create(&temporary).map_err(|e| Error::io(&temporary, e))?,
            );
            self.for_each(|entry| {
                if remove(&entry) {
                    removed.push(entry);
                } else {
                    out.write_all(entry.to_line().as_bytes())
                        .map_err(|e| Error::io(&temporary, e))?;
                }
                Ok(())
            })?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io(&temporary, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&temporary, e))
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        if removed.is_empty() {
            let _ = std::fs::remove_file(&temporary);
            return Ok(removed);
        }
        // The index as it was, put back if a hook stops the removal (Barman then leaves
        // the index untouched).
        let saved = dir.join(format!(
            ".{}.saved-{}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&saved);
        let saved = std::fs::hard_link(&path, &saved).is_ok().then_some(saved);
        std::fs::rename(&temporary, &path).map_err(|e| Error::io(&path, e))?;
        durable::sync_dir(&dir)?;
        let result = Self::remove_files(paths, &removed, hooks);
        if let Some(saved) = &saved {
            if matches!(result, Err(Error::RetryHookStop(_))) {
                std::fs::rename(saved, &path).map_err(|e| Error::io(&path, e))?;
                durable::sync_dir(&dir)?;
            } else {
                let _ = std::fs::remove_file(saved);
            }
        }
        result?;
        Ok(removed)
    }

    fn remove_files(
        paths: &WalArchivePaths,
        removed: &[XlogEntry],
        hooks: &mut dyn RemovalHooks,
    ) -> Result<()> {
        // The files, hash directory by hash directory (in order of first appearance): a
        // directory whose every file goes is removed whole, the hooks of all its files
        // run before and after; otherwise each file goes between its own hooks.
        let mut groups: Vec<(PathBuf, Vec<(XlogEntry, PathBuf)>)> = Vec::new();
        for entry in removed {
            let Some(wal) = WalName::try_parse(&entry.name) else {
                continue;
            };
            let stored = paths.stored_path(&wal);
            let parent = stored.parent().map(Path::to_path_buf).unwrap_or_default();
            match groups.iter_mut().find(|(d, _)| *d == parent) {
                Some((_, files)) => files.push((entry.clone(), stored)),
                None => groups.push((parent, vec![(entry.clone(), stored)])),
            }
        }
        for (dir, files) in &groups {
            let whole = *dir != paths.wals
                && (files.len() >= 256
                    || std::fs::read_dir(dir).is_ok_and(|listing| {
                        listing.flatten().all(|e| {
                            let name = e.file_name();
                            files
                                .iter()
                                .any(|(f, _)| std::ffi::OsStr::new(&f.name) == name)
                        })
                    }));
            if whole {
                for (entry, stored) in files {
                    hooks.pre(entry, stored)?;
                }
                match std::fs::remove_dir_all(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(dir, e)),
                }
                for (entry, stored) in files {
                    hooks.post(entry, stored, None);
                }
                continue;
            }
            for (entry, stored) in files {
                hooks.pre(entry, stored)?;
                match std::fs::remove_file(stored) {
                    Ok(()) => hooks.post(entry, stored, None),
                    Err(e) => {
                        hooks.post(entry, stored, Some(&e));
                        if e.kind() != std::io::ErrorKind::NotFound {
                            return Err(Error::io(stored, e));
                        }
                    }
                }
            }
            // Only an empty hash directory goes.
            if *dir != paths.wals && std::fs::remove_dir(dir).is_ok() {
                continue;
            }
            durable::sync_dir(dir)?;
        }
        if paths.wals.is_dir() {
            durable::sync_dir(&paths.wals)?;
        }
        Ok(())
    }
}

/// What runs around the removal of each WAL file of the archive.
pub trait RemovalHooks {
    /// Before `file` goes; an error stops the removal ([`Error::RetryHookStop`]: the index is
    /// put back as it was).
    fn pre(&mut self, entry: &XlogEntry, file: &Path) -> Result<()>;
    /// After `file` went, or could not (`error`).
    fn post(&mut self, entry: &XlogEntry, file: &Path, error: Option<&std::io::Error>);
}

/// No hooks.
pub struct NoRemovalHooks;

impl RemovalHooks for NoRemovalHooks {
    fn pre(&mut self, _: &XlogEntry, _: &Path) -> Result<()> {
        Ok(())
    }
    fn post(&mut self, _: &XlogEntry, _: &Path, _: Option<&std::io::Error>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Values and their Python 3 `repr`.
        let cases: [(f64, &str); 14] = [
            (1795974932.6966207, "1795974932.6966207"),
            (1795974932.0, "1795974932.0"),
            (1700000000.1, "1700000000.1"),
            (
                "1700000000.123456789".parse().unwrap(),
                "1700000000.1234567",
            ),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.5, "0.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (-12.25, "-12.25"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr_float(value), expected, "{value:?}");
        }
        assert_eq!(repr_float(f64::NAN), "nan");
        assert_eq!(repr_float(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn file_times_are_computed_as_python_does() {
        let time = UNIX_EPOCH + std::time::Duration::new(1_795_974_932, 696_620_702);
        assert_eq!(repr_float(python_timestamp(time)), "1795974932.6966207");
        let whole = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        assert_eq!(python_timestamp(whole), 1_700_000_000.0);
    }

    #[test]
    fn lines_round_trip_and_old_formats_are_read() {
        let line = "000000010000000000000003\t16521\t1795974932.6966207\tgzip\tNone\n";
        let entry = XlogEntry::parse_line(line).unwrap();
        assert_eq!(
            entry,
            XlogEntry {
                name: "000000010000000000000003".into(),
                size: 16521,
                time: 1795974932.6966207,
                compression: Some("gzip".into()),
                encryption: None,
            }
        );
        assert_eq!(entry.to_line(), line);
        assert_eq!(entry.codec(), Some(Compression::Gzip));

        let three = XlogEntry::parse_line("00000002.history 42 1700000000\n").unwrap();
        assert_eq!((three.compression, three.encryption), (None, None));
        assert_eq!(
            XlogEntry::parse_line("00000002.history\t42\t1700000000\t")
                .unwrap()
                .to_line(),
            "00000002.history\t42\t1700000000.0\tNone\tNone\n"
        );
        let four = XlogEntry::parse_line("a  1 2.5 bzip2").unwrap();
        assert_eq!(four.compression.as_deref(), Some("bzip2"));
        let five = XlogEntry::parse_line("a 1 2.5 None gpg\r\n").unwrap();
        assert_eq!(five.encryption.as_deref(), Some("gpg"));
        assert_eq!(XlogEntry::parse_line("a\t1\t1_000.5").unwrap().time, 1000.5);
    }

    #[test]
    fn bad_lines_are_refused_with_barman_message() {
        for line in [
            "\n",
            "a 1\n",
            "a 1 2 3 4 5\n",
            "a x 2\n",
            "a 1 two\n",
            "a 1 _1\n",
        ] {
            assert!(XlogEntry::parse_line(line).is_err(), "{line:?}");
        }
        assert_eq!(
            XlogEntry::parse_line("a 1\n").unwrap_err().to_string(),
            "cannot parse line: 'a 1\\n'"
        );
        assert_eq!(
            XlogEntry::parse_line("it's 1\n").unwrap_err().to_string(),
            "cannot parse line: \"it's 1\\n\""
        );
    }

    #[test]
    fn appends_under_lock_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths = WalArchivePaths::with_defaults("pg", dir.path().join("pg"), dir.path());
        let db = XlogDb::new(&paths);
        assert!(db.entries().unwrap().is_empty(), "created empty");
        let entry = |name: &str, size| XlogEntry {
            name: name.into(),
            size,
            time: 1700000000.25,
            compression: None,
            encryption: None,
        };
        {
            let mut guard = db.lock().unwrap();
            guard
                .append(&[entry("000000010000000000000001", 16)])
                .unwrap();
            guard
                .append(&[entry("000000010000000000000002", 17)])
                .unwrap();
            // The lock is held: a non-waiting attempt fails.
            assert!(
                LockFile::try_acquire(&paths.xlogdb_lock())
                    .unwrap()
                    .is_none()
            );
        }
        let names: Vec<_> = db.entries().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            ["000000010000000000000001", "000000010000000000000002"]
        );
        std::fs::write(db.path(), "garbage\n").unwrap();
        assert!(db.entries().is_err());
    }

    #[test]
    fn remove_where_rewrites_the_index_then_removes_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let paths = WalArchivePaths::with_defaults("pg", dir.path().join("pg"), dir.path());
        let db = XlogDb::new(&paths);
        let names = [
            "000000010000000000000001",
            "000000010000000100000002",
            "00000002.history",
            "000000010000000100000003",
        ];
        let mut guard = db.lock().unwrap();
        let entries: Vec<XlogEntry> = names
            .iter()
            .map(|name| {
                let stored = paths.stored_path(&WalName::parse(name).unwrap());
                std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
                std::fs::write(&stored, name).unwrap();
                XlogEntry::parse_line(&format!("{name}\t4\t1.5\tNone\tNone\n")).unwrap()
            })
            .collect();
        guard.append(&entries).unwrap();
        let removed = guard
            .remove_where(&paths, |e| {
                e.name.as_str() < "000000010000000100000003" && !e.name.ends_with(".history")
            })
            .unwrap();
        assert_eq!(
            removed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            &names[..2]
        );
        drop(guard);
        let left: Vec<String> = db.entries().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(left, ["00000002.history", "000000010000000100000003"]);
        assert!(!paths.wals.join("0000000100000000").exists());
        assert!(
            paths
                .wals
                .join("0000000100000001/000000010000000100000003")
                .exists()
        );
        assert!(
            !paths
                .wals
                .join("0000000100000001/000000010000000100000002")
                .exists()
        );
        assert!(paths.wals.join("00000002.history").exists());
    }
}
