//! Writing below one directory without ever leaving it.
//!
//! A restore target (PGDATA or a tablespace location) is opened once; every file,
//! directory and link of the archives is then created relative to that descriptor with the
//! `*at` system calls, walking the path one component at a time with `O_NOFOLLOW`. A
//! symbolic link met on the way is never followed, whoever created it (an archive member,
//! an earlier member of another part, or something else on the machine), so no archive
//! content and no backup.info value can make the restore create, change or delete anything
//! outside the directory. Links themselves may be created inside it, with any target: they
//! are the archive's content, and nothing is written through them.
//!
//! Paths are [`MemberPath`]s: relative, made of plain components only (no `..`, no root,
//! no empty names), checked once when a tar member is read.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Timespec, Timestamps};

/// A relative path of plain components, safe to resolve below a [`Root`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPath(Vec<OsString>);

impl MemberPath {
    /// Parses a tar member name: `/`-separated, `.` and empty components dropped (so
    /// `./base/1` is `base/1`), `..` or a leading `/` refused. An empty result is the root.
    pub fn parse(name: &[u8]) -> Result<Self, String> {
        if name.first() == Some(&b'/') {
            return Err("absolute member name".into());
        }
        if name.contains(&0) {
            return Err("member name contains a NUL byte".into());
        }
        let mut parts = Vec::new();
        for part in name.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err("member name contains '..'".into()),
                _ => parts.push(OsStr::from_bytes(part).to_os_string()),
            }
        }
        Ok(MemberPath(parts))
    }

    pub fn from_components<I: IntoIterator<Item = S>, S: Into<OsString>>(parts: I) -> Self {
        MemberPath(parts.into_iter().map(Into::into).collect())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn components(&self) -> &[OsString] {
        &self.0
    }

    /// The path as shown in messages.
    pub fn display(&self) -> String {
        let joined: PathBuf = self.0.iter().collect();
        joined.display().to_string()
    }

    fn split_last(&self) -> Option<(&[OsString], &OsStr)> {
        self.0
            .split_last()
            .map(|(last, parents)| (parents, last.as_os_str()))
    }
}

/// An opened target directory of the restore.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn nofollow_dir() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Root {
    /// Creates `path` if missing (mode 0700, as PostgreSQL wants its data directory),
    /// sets it to 0700 and opens it. `path` itself is the user's choice and is resolved
    /// as given; everything below it is resolved by this module only.
    pub fn create(path: &Path) -> io::Result<Root> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the opened directory really is (links resolved), from the kernel.
    pub fn real_path(&self) -> io::Result<PathBuf> {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Where `member` is, for messages.
    pub fn show(&self, member: &MemberPath) -> PathBuf {
        self.path.join(member.display())
    }

    /// Opens the directory at `parts`, creating missing components (mode 0700) when
    /// `create`; any component that is not a real directory is an error.
    fn open_dir(&self, parts: &[OsString], create: bool) -> io::Result<OwnedFd> {
        let mut current = rustix::fs::openat(&self.fd, ".", nofollow_dir(), Mode::empty())?;
        for part in parts {
            let next =
                match rustix::fs::openat(&current, part.as_os_str(), nofollow_dir(), Mode::empty())
                {
                    Err(rustix::io::Errno::NOENT) if create => {
                        match rustix::fs::mkdirat(
                            &current,
                            part.as_os_str(),
                            Mode::from_raw_mode(0o700),
                        ) {
                            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                            Err(e) => return Err(e.into()),
                        }
                        rustix::fs::openat(
                            &current,
                            part.as_os_str(),
                            nofollow_dir(),
                            Mode::empty(),
                        )
                    }
                    other => other,
                }
                .map_err(|e| not_a_directory(e, part))?;
            current = next;
        }
        Ok(current)
    }

    /// Makes the directory `member` (and its parents); an existing directory is fine.
    pub fn make_dir(&self, member: &MemberPath) -> io::Result<OwnedFd> {
        self.open_dir(member.components(), true)
    }

    /// Opens an existing directory without creating anything.
    pub fn open_existing_dir(&self, member: &MemberPath) -> io::Result<OwnedFd> {
        self.open_dir(member.components(), false)
    }

    /// Removes whatever non-directory entry is at `name` in `parent` (tar semantics: a
    /// later member replaces an earlier one); a directory there is an error.
    fn clear(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
        match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn parent_of<'m>(&self, member: &'m MemberPath) -> io::Result<(OwnedFd, &'m OsStr)> {
        let (parents, name) = member
            .split_last()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty member name"))?;
        Ok((self.open_dir(parents, true)?, name))
    }

    /// Creates the regular file `member` (replacing a non-directory entry there), open for
    /// writing, mode 0600 until [`set_mode_and_mtime`] is called.
    pub fn create_file(&self, member: &MemberPath) -> io::Result<File> {
        let (parent, name) = self.parent_of(member)?;
        Self::clear(&parent, name)?;
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// Creates the symbolic link `member` pointing at `target` (not checked: nothing is
    /// ever resolved through it here).
    pub fn symlink(&self, member: &MemberPath, target: &Path) -> io::Result<()> {
        let (parent, name) = self.parent_of(member)?;
        Self::clear(&parent, name)?;
        rustix::fs::symlinkat(target, &parent, name)?;
        Ok(())
    }

    /// Creates `member` as a hard link to the existing entry `existing`, both below this
    /// root; the link is to the entry itself, never to what a symbolic link points at.
    pub fn hard_link(&self, member: &MemberPath, existing: &MemberPath) -> io::Result<()> {
        let (source_parent, source_name) = {
            let (parents, name) = existing.split_last().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "empty hard link target")
            })?;
            (self.open_dir(parents, false)?, name)
        };
        let (parent, name) = self.parent_of(member)?;
        Self::clear(&parent, name)?;
        rustix::fs::linkat(&source_parent, source_name, &parent, name, AtFlags::empty())?;
        Ok(())
    }

    /// The type of the entry at `member`, without following a link; `None` if missing.
    pub fn entry_type(&self, member: &MemberPath) -> io::Result<Option<FileType>> {
        let Some((parents, name)) = member.split_last() else {
            return Ok(Some(FileType::Directory));
        };
        let parent = match self.open_dir(parents, false) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the regular file `member` for reading; a link there is refused.
    pub fn open_file(&self, member: &MemberPath) -> io::Result<File> {
        let (parents, name) = member
            .split_last()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty member name"))?;
        let parent = self.open_dir(parents, false)?;
        let fd = rustix::fs::openat(
            &parent,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if rustix::fs::fstat(&fd)?.st_mode & 0o170000 != 0o100000 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        Ok(File::from(fd))
    }
}

/// Sets permission bits (without set-user/group-ID: a restore never makes those) and the
/// modification time of an open file or directory.
pub fn set_mode_and_mtime(fd: impl AsFd, mode: u32, mtime: Option<u64>) -> io::Result<()> {
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o1777))?;
    if let Some(seconds) = mtime {
        let time = Timespec {
            tv_sec: i64::try_from(seconds).unwrap_or(i64::MAX),
            tv_nsec: 0,
        };
        rustix::fs::futimens(
            &fd,
            &Timestamps {
                last_access: time,
                last_modification: time,
            },
        )?;
    }
    Ok(())
}

fn not_a_directory(error: rustix::io::Errno, part: &OsStr) -> io::Error {
    match error {
        // O_NOFOLLOW on a link gives ELOOP, O_DIRECTORY on a file ENOTDIR.
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "'{}' is a symbolic link or not a directory; refusing to write through it",
                part.to_string_lossy()
            ),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(text: &str) -> MemberPath {
        MemberPath::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn member_names_are_plain_relative_paths() {
        assert_eq!(
            member("./base/1/"),
            MemberPath::from_components(["base", "1"])
        );
        assert!(member("./").is_root());
        for bad in ["/etc/passwd", "a/../../b", "..", "a/..", "x\0y"] {
            assert!(MemberPath::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nothing_is_written_through_links() {
        let outside = tempfile::tempdir().unwrap();
        let inside = tempfile::tempdir().unwrap();
        let root = Root::create(&inside.path().join("pgdata")).unwrap();
        std::fs::write(outside.path().join("victim"), b"keep").unwrap();
        // A link to a directory outside, created as an archive member would be.
        root.symlink(&member("pg_tblspc"), outside.path()).unwrap();
        root.symlink(&member("escape"), &outside.path().join("victim"))
            .unwrap();

        let through = member("pg_tblspc/victim");
        assert!(root.create_file(&through).is_err());
        assert!(root.symlink(&through, Path::new("/tmp")).is_err());
        assert!(root.make_dir(&member("pg_tblspc/new")).is_err());
        assert!(
            root.hard_link(&member("hl"), &member("pg_tblspc/victim"))
                .is_err()
        );
        assert!(root.open_file(&member("escape")).is_err());
        // Replacing the link itself stays inside: the link goes, the victim stays.
        let mut file = root.create_file(&member("escape")).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        assert_eq!(
            std::fs::read(outside.path().join("victim")).unwrap(),
            b"keep"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        assert_eq!(
            std::fs::read(inside.path().join("pgdata/escape")).unwrap(),
            b"new"
        );
    }

    #[test]
    fn files_directories_and_links_inside_work() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::create(&dir.path().join("d")).unwrap();
        let mut file = root.create_file(&member("base/1/1259")).unwrap();
        std::io::Write::write_all(&mut file, b"data").unwrap();
        set_mode_and_mtime(&file, 0o4640, Some(1_700_000_000)).unwrap();
        drop(file);
        root.hard_link(&member("copy"), &member("base/1/1259"))
            .unwrap();
        root.symlink(&member("link"), Path::new("base")).unwrap();
        let meta = std::fs::metadata(dir.path().join("d/base/1/1259")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mode() & 0o7777, 0o640);
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert_eq!(meta.nlink(), 2);
        assert_eq!(
            root.entry_type(&member("link")).unwrap(),
            Some(FileType::Symlink)
        );
        assert_eq!(root.entry_type(&member("nothing/here")).unwrap(), None);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut root.open_file(&member("copy")).unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "data");
    }
}
