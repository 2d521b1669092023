//! Durable file operations: what is reported stored has reached the disk (file and
//! directory entry). Used by the server's WAL archive (as Barman's `fsync_file`/`fsync_dir`)
//! and by barman-cloud-wal-restore's spool.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{Error, Result};

/// Flushes a directory's entries (a file created, renamed or removed in it).
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Flushes a file's content and metadata.
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Creates `dir` and its missing parents with mode 0755, as Barman's `mkpath`.
pub fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Moves `from` to `to`: a rename, or, across file systems, a copy (fsynced) then the
/// removal of `from`, as Python's `shutil.move`.
pub fn move_file(from: &Path, to: &Path) -> Result<()> {
    move_file_io(from, to).map_err(|e| Error::io(from, e))
}

/// [`move_file`] for callers that word the error themselves. Across file systems the copy
/// goes to a temporary name next to `to` and is renamed once synced, so `to` never holds
/// a partial file.
pub fn move_file_io(from: &Path, to: &Path) -> std::io::Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let dir = to
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let temp = dir.join(format!(".barman-rs-move-{}.tmp", std::process::id()));
            fs::copy(from, &temp)?;
            File::open(&temp)?.sync_all()?;
            fs::rename(&temp, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Sets the modification time of `path` to `mtime` (seconds since the epoch), keeping
/// the source's time on a stored copy as Barman's `copystat` does.
pub fn set_mtime(path: &Path, mtime: std::time::SystemTime) -> Result<()> {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(mtime))
        .map_err(|e| Error::io(path, e))
}
