//! Unpacking one tar stream below a [`Root`], refusing anything that would leave it and
//! anything that shows the stream is incomplete.
//!
//! The `tar` crate parses headers (ustar, GNU long names, PAX); everything touching the
//! filesystem is ours, through [`Root`], so that no member can be written through a link.
//! A tar stream is complete only if every member's data is there and the end-of-archive
//! marker (two zero blocks) follows the last member: a reader that stops at end of input
//! would take an archive cut at a member boundary for a whole one.

use std::io::{self, Read};

use super::beneath::{MemberPath, Root, set_mode_and_mtime};
use crate::compression::{StreamError, pump};

/// Directory permissions are applied once every member is in place (a read-only
/// directory would refuse its own files otherwise).
#[derive(Debug)]
pub struct DeferredDir {
    pub path: MemberPath,
    pub mode: u32,
    pub mtime: Option<u64>,
}

/// Why a tar stream was refused; the caller adds which object it came from.
#[derive(Debug)]
pub enum ExtractError {
    /// Reading the stream failed (download, decompression, or the stream ended early).
    Read(io::Error),
    /// Writing a member failed (disk full, permissions...).
    Write {
        member: MemberPath,
        source: io::Error,
    },
    /// The archive holds something we refuse to restore.
    Refused { member: String, reason: String },
    /// The stream ended without the end-of-archive marker.
    Truncated(String),
}

impl std::fmt::Display for ExtractError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExtractError::Read(e) => write!(f, "{e}"),
            ExtractError::Write { member, source } => write!(f, "{}: {source}", member.display()),
            ExtractError::Refused { member, reason } => {
                write!(f, "refusing member '{member}': {reason}")
            }
            ExtractError::Truncated(why) => write!(f, "incomplete archive: {why}"),
        }
    }
}

/// Unpacks `input` below `root`; returns the directories whose modes are still to be set.
/// `input` is read to its very end (so decoders check their trailers and checksums).
pub fn unpack<R: Read>(input: R, root: &Root) -> Result<Vec<DeferredDir>, ExtractError> {
    let mut archive = tar::Archive::new(input);
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(ExtractError::Read)? {
        let mut entry = entry.map_err(ExtractError::Read)?;
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let refuse = |reason: &str| ExtractError::Refused {
            member: shown.clone(),
            reason: reason.to_string(),
        };
        let path = MemberPath::parse(&raw_name).map_err(|reason| refuse(&reason))?;
        let header = entry.header();
        let mode = header.mode().map_err(ExtractError::Read)?;
        let mtime = header.mtime().ok();
        let kind = header.entry_type();
        let write_error = |source: io::Error| ExtractError::Write {
            member: path.clone(),
            source,
        };
        match kind {
            tar::EntryType::Directory => {
                root.make_dir(&path).map_err(write_error)?;
                directories.push(DeferredDir { path, mode, mtime });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if path.is_root() {
                    return Err(refuse("a file cannot replace the restore directory"));
                }
                let expected = entry.size();
                let mut file = root.create_file(&path).map_err(write_error)?;
                // A failed read is the stream's fault, a failed write the disk's.
                let written = pump(&mut entry, &mut file).map_err(|e| match e {
                    StreamError::Read(e) => ExtractError::Read(e),
                    StreamError::Write(source) => write_error(source),
                })?;
                if written != expected {
                    return Err(ExtractError::Truncated(format!(
                        "member '{shown}' has {written} of its {expected} bytes"
                    )));
                }
                set_mode_and_mtime(&file, mode, mtime).map_err(write_error)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(ExtractError::Read)?
                    .ok_or_else(|| refuse("symbolic link without a target"))?;
                if path.is_root() {
                    return Err(refuse("a link cannot replace the restore directory"));
                }
                root.symlink(&path, &target).map_err(write_error)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hard link without a target"))?
                    .into_owned();
                let existing = MemberPath::parse(&target)
                    .map_err(|reason| refuse(&format!("hard link target: {reason}")))?;
                if path.is_root() || existing.is_root() {
                    return Err(refuse("a hard link cannot involve the restore directory"));
                }
                root.hard_link(&path, &existing).map_err(write_error)?;
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(refuse(&format!(
                    "unsupported member type {:?} (devices and FIFOs are never restored)",
                    other
                )));
            }
        }
    }
    // `entries` stops at the first zero block or at end of input; only the former, followed
    // by the second zero block, is the end of a whole archive.
    let mut input = archive.into_inner();
    let mut second_block = [0u8; 512];
    let mut filled = 0;
    while filled < second_block.len() {
        match input.read(&mut second_block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ExtractError::Read(e)),
        }
    }
    if filled < second_block.len() || second_block.iter().any(|b| *b != 0) {
        return Err(ExtractError::Truncated(
            "the end-of-archive marker is missing".into(),
        ));
    }
    // Record padding, and whatever a decoder still has to check at the end of its stream.
    io::copy(&mut input, &mut io::sink()).map_err(ExtractError::Read)?;
    Ok(directories)
}

/// Applies the deferred directory modes and times, deepest first.
pub fn finish_directories(root: &Root, mut directories: Vec<DeferredDir>) -> io::Result<()> {
    directories.sort_by_key(|d| std::cmp::Reverse(d.path.components().len()));
    for dir in directories {
        if dir.path.is_root() {
            // The restore directory keeps 0700 (PostgreSQL insists), only its time is set.
            let fd = root.open_existing_dir(&dir.path)?;
            set_mode_and_mtime(&fd, 0o700, dir.mtime)?;
            continue;
        }
        let fd = root.open_existing_dir(&dir.path)?;
        set_mode_and_mtime(&fd, dir.mode | 0o700, dir.mtime)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, data).unwrap();
    }

    fn raw_link(
        builder: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        name: &str,
        target: &str,
    ) {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o777);
        header.set_entry_type(kind);
        header.set_link_name_literal(target).unwrap();
        header.set_path(name).unwrap();
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
    }

    #[test]
    fn whole_archives_unpack() {
        let data = tar_with(|b| {
            file(b, "base/1/1259", b"rel");
            file(b, "PG_VERSION", b"15\n");
        });
        let dir = tempfile::tempdir().unwrap();
        let root = Root::create(dir.path()).unwrap();
        let dirs = unpack(&data[..], &root).unwrap();
        finish_directories(&root, dirs).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("base/1/1259")).unwrap(),
            b"rel"
        );
    }

    #[test]
    fn archives_cut_anywhere_are_refused() {
        let data = tar_with(|b| {
            file(b, "a", &[7u8; 700]);
            file(b, "b", b"second");
        });
        // At the member boundary (before "b"), inside a member, inside the end marker.
        for cut in [1536, 1000, data.len() - 512, data.len() - 1] {
            let dir = tempfile::tempdir().unwrap();
            let root = Root::create(dir.path()).unwrap();
            let error = unpack(&data[..cut], &root).expect_err(&format!("cut at {cut}"));
            assert!(
                matches!(error, ExtractError::Truncated(_) | ExtractError::Read(_)),
                "cut at {cut}: {error}"
            );
        }
    }

    #[test]
    fn hostile_members_are_refused_and_nothing_escapes() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("victim"), b"keep").unwrap();
        let target = outside.path().to_str().unwrap().to_string();
        let victim = format!("{target}/victim");
        type Build = Box<dyn Fn(&mut tar::Builder<Vec<u8>>)>;
        let cases: Vec<(&str, Build)> = vec![
            ("link then write through it", {
                let target = target.clone();
                Box::new(move |b| {
                    raw_link(b, tar::EntryType::Symlink, "pg_tblspc", &target);
                    file(b, "pg_tblspc/victim", b"evil");
                })
            }),
            ("dotdot", Box::new(raw_dotdot)),
            ("hard link to outside", {
                let victim = victim.clone();
                Box::new(move |b| raw_link(b, tar::EntryType::Link, "hl", &victim))
            }),
            ("hard link through a link", {
                let target = target.clone();
                Box::new(move |b| {
                    raw_link(b, tar::EntryType::Symlink, "out", &target);
                    raw_link(b, tar::EntryType::Link, "hl", "out/victim");
                })
            }),
            (
                "fifo",
                Box::new(|b| raw_link(b, tar::EntryType::Fifo, "fifo", "")),
            ),
        ];
        for (name, build) in cases {
            let data = tar_with(|b| build(b));
            let dir = tempfile::tempdir().unwrap();
            let root = Root::create(dir.path()).unwrap();
            assert!(unpack(&data[..], &root).is_err(), "{name}");
            assert_eq!(
                std::fs::read(outside.path().join("victim")).unwrap(),
                b"keep",
                "{name}"
            );
            assert_eq!(
                std::fs::read_dir(outside.path()).unwrap().count(),
                1,
                "{name}"
            );
        }
    }

    fn raw_dotdot(builder: &mut tar::Builder<Vec<u8>>) {
        // tar::Header::set_path refuses "..", so the name is written into the header raw.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..12].copy_from_slice(b"../x/escaped");
        header.set_size(4);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &b"evil"[..]).unwrap();
    }
}
