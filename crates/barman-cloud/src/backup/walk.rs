//! Walks a source directory (PGDATA or a tablespace location) top-down in directory
//! order, adding what the rules allow to an archive: a directory entry, then its files,
//! then its subdirectories. Directory symlinks are neither stored nor followed, entries
//! that vanish during the walk are skipped (PostgreSQL drops relations while we copy).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::archive::ArchiveWriter;
use super::rules::PathRules;
use crate::error::{Error, Result};

/// Bytes of file content read so far, for progress reports.
#[derive(Debug, Default)]
pub struct WalkProgress {
    pub bytes: AtomicU64,
    /// Expected total (the cluster size PostgreSQL reports), 0 while unknown.
    pub total: AtomicU64,
}

fn join(rel: &str, name: &str) -> String {
    if rel == "." {
        format!("./{name}")
    } else {
        format!("{rel}/{name}")
    }
}

fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Archives `source` into `writer` under the rules.
pub fn archive_tree(
    writer: &mut ArchiveWriter,
    source: &Path,
    rules: &PathRules,
    progress: &WalkProgress,
    cancel: &AtomicBool,
) -> Result<()> {
    Walk {
        rules,
        progress,
        cancel,
    }
    .visit(writer, source, ".")
}

struct Walk<'a> {
    rules: &'a PathRules,
    progress: &'a WalkProgress,
    cancel: &'a AtomicBool,
}

fn cancelled() -> Error {
    Error::Failed("the backup was cancelled".into())
}

impl Walk<'_> {
    fn visit(&self, writer: &mut ArchiveWriter, dir: &Path, rel: &str) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        let (rules, progress) = (self.rules, self.progress);
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e) if vanished(&e) => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in listing {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(Error::io(dir, e)),
            };
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(Error::io(entry.path(), e)),
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if file_type.is_dir() {
                subdirs.push(name);
            } else if file_type.is_symlink() && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir())
            {
                // Like a directory for the walk, which never follows links: not archived.
            } else {
                files.push(name);
            }
        }

        if rules.allows(rel, true) {
            let meta = match fs::symlink_metadata(dir) {
                Ok(meta) => meta,
                Err(e) if vanished(&e) => return Ok(()),
                Err(e) => return Err(Error::io(dir, e)),
            };
            writer.add_directory(rel, &meta)?;
            for name in &files {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(cancelled());
                }
                let member = join(rel, name);
                if !rules.allows(&member, false) {
                    continue;
                }
                let path = dir.join(name);
                let meta = match fs::symlink_metadata(&path) {
                    Ok(meta) => meta,
                    Err(e) if vanished(&e) => continue,
                    Err(e) => return Err(Error::io(&path, e)),
                };
                let file_type = meta.file_type();
                if file_type.is_symlink() {
                    match fs::read_link(&path) {
                        Ok(target) => writer.add_symlink(&member, &target, &meta)?,
                        Err(e) if vanished(&e) => continue,
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                } else if file_type.is_file() {
                    if writer.add_file(&member, &path, &meta)? {
                        progress.bytes.fetch_add(meta.len(), Ordering::Relaxed);
                    }
                } else {
                    tracing::warn!("skipping {}: not a regular file", path.display());
                }
            }
        }
        for name in subdirs {
            self.visit(writer, &dir.join(&name), &join_dir(rel, &name))?;
        }
        Ok(())
    }
}

fn join_dir(rel: &str, name: &str) -> String {
    if rel == "." {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}
