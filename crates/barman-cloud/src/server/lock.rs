//! Barman's lock files (`lockfile.py`): an exclusive `flock` on a file in the lock
//! directory, which then holds the owner's PID. Python Barman takes the same `flock`, so
//! a barman-rs process and a Barman process on the same `barman_home` exclude each
//! other. The lock goes with the file descriptor: dropping the [`LockFile`] (or the
//! process ending) releases it; the file itself stays, as Barman leaves it.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: File,
}

impl LockFile {
    /// Takes the lock on `path`, waiting for its holder to release it (how Barman takes
    /// the xlog.db lock).
    pub fn acquire_wait(path: &Path) -> Result<LockFile> {
        Self::acquire(path, true)?
            .ok_or_else(|| Error::Failed(format!("{}: lock not acquired", path.display())))
    }

    /// Takes the lock on `path` if it is free; `None` when another process holds it
    /// (Barman's `LockFileBusy`, e.g. another archive-wal running).
    pub fn try_acquire(path: &Path) -> Result<Option<LockFile>> {
        Self::acquire(path, false)
    }

    fn acquire(path: &Path, wait: bool) -> Result<Option<LockFile>> {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let operation = if wait {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::NonBlockingLockExclusive
        };
        loop {
            match flock(&file, operation) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) if !wait => return Ok(None),
                Err(e) => return Err(Error::io(path, e.into())),
            }
        }
        // Only the holder writes its PID, so the content names the current owner.
        let pid = format!("{}\n", std::process::id());
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.set_len(pid.len() as u64))
            .map_err(|e| Error::io(path, e))?;
        Ok(Some(LockFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock too; unlocking first says so plainly.
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_release_and_pid_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".pg-archive-wal.lock");
        std::fs::write(&path, "999999999999\n").unwrap();
        let held = LockFile::try_acquire(&path).unwrap().expect("free");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to the open file description: a second open is refused
        // even in the same process, as in another one.
        assert!(LockFile::try_acquire(&path).unwrap().is_none());
        drop(held);
        let again = LockFile::acquire_wait(&path).unwrap();
        assert_eq!(again.path(), path);
        // A lock file we create is private to its owner, as Barman's.
        use std::os::unix::fs::PermissionsExt;
        let fresh = dir.path().join(".pg-xlogdb.lock");
        let _held = LockFile::acquire_wait(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
