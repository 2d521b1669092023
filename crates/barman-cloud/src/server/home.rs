//! Where one server's backups and WAL live in a `barman_home` (Barman 3.20.1's layout):
//! [`ServerHome`] maps `barman.conf` onto paths, and [`HomeCatalog`] is the
//! [`CatalogStore`] of those backups, so listing, resolving IDs and shortcuts, keep
//! annotations and retention run on the server exactly as they run on a bucket.
//!
//! Layout (Barman 3.20.1):
//! * `meta/<id>-backup.info`; before 3.13.2 it was `base/<id>/backup.info`, still read
//!   (the `meta/` one wins when both exist, as in Barman's `_load_backup_cache`);
//! * `base/<id>/data/backup_label` for snapshot backups (the only file of the backup);
//! * `meta/<id>-keep` holds a keep annotation; before 3.13.3 it was
//!   `base/<id>/annotations/keep`, still read, and moved to `meta/` when written or
//!   removed (as Barman's `AnnotationManagerFile` does);
//! * `wals/`, `xlog.db`: [`WalArchivePaths`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::catalog::{BackupInfo, KeepAnnotations, keep_target_from_annotation};
use crate::catalog_store::{CatalogStore, KeepTarget};
use crate::error::{Error, Result};
use crate::server::config::ServerConfig;
use crate::server::paths::WalArchivePaths;
use crate::server::xlogdb::XlogDb;
use crate::wal::WalName;

/// The paths of one server in a `barman_home`, as its configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHome {
    pub server: String,
    /// `backup_directory` (`<barman_home>/<server>` by default).
    pub dir: PathBuf,
    /// `basebackups_directory` (`<dir>/base`).
    pub base: PathBuf,
    /// `<dir>/meta`: backup.info files and annotations.
    pub meta: PathBuf,
    pub wal: WalArchivePaths,
}

impl ServerHome {
    pub fn from_config(server: &ServerConfig) -> Self {
        let dir = PathBuf::from(&server.backup_directory);
        let path_or = |value: &Option<String>, default: &str| {
            value
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join(default))
        };
        let wals = path_or(&server.wals_directory, "wals");
        let xlogdb_dir = server
            .xlogdb_directory
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| wals.clone());
        let lock_dir = server
            .barman_lock_directory
            .as_ref()
            .or(server.barman_home.as_ref())
            .map(PathBuf::from)
            .unwrap_or_default();
        let wal = WalArchivePaths {
            server: server.name.clone(),
            incoming: path_or(&server.incoming_wals_directory, "incoming"),
            streaming: path_or(&server.streaming_wals_directory, "streaming"),
            errors: path_or(&server.errors_directory, "errors"),
            xlogdb_file: xlogdb_dir.join(format!("{}-xlog.db", server.name)),
            wals,
            lock_dir,
        };
        ServerHome {
            server: server.name.clone(),
            base: path_or(&server.basebackups_directory, "base"),
            meta: dir.join("meta"),
            dir,
            wal,
        }
    }

    /// Barman's defaults under `dir` (`<barman_home>/<server>`), locks in `lock_dir`.
    pub fn with_defaults(
        server: &str,
        dir: impl Into<PathBuf>,
        lock_dir: impl Into<PathBuf>,
    ) -> Self {
        let dir = dir.into();
        ServerHome {
            server: server.to_string(),
            base: dir.join("base"),
            meta: dir.join("meta"),
            wal: WalArchivePaths::with_defaults(server, &dir, lock_dir),
            dir,
        }
    }

    /// `meta/<id>-backup.info`, where Barman 3.13.2 and later write it.
    pub fn backup_info(&self, backup_id: &str) -> PathBuf {
        self.meta.join(format!("{backup_id}-backup.info"))
    }

    /// `base/<id>/backup.info`, where Barman before 3.13.2 wrote it.
    pub fn legacy_backup_info(&self, backup_id: &str) -> PathBuf {
        self.backup_dir(backup_id).join("backup.info")
    }

    /// `base/<id>`: the backup's files.
    pub fn backup_dir(&self, backup_id: &str) -> PathBuf {
        self.base.join(backup_id)
    }

    /// `base/<id>/data`: PGDATA's copy (for snapshot backups, only the label).
    pub fn data_dir(&self, backup_id: &str) -> PathBuf {
        self.backup_dir(backup_id).join("data")
    }

    /// `base/<id>/data/backup_label`.
    pub fn backup_label(&self, backup_id: &str) -> PathBuf {
        self.data_dir(backup_id).join("backup_label")
    }

    /// `meta/<id>-keep`.
    pub fn keep_annotation(&self, backup_id: &str) -> PathBuf {
        self.meta.join(format!("{backup_id}-keep"))
    }

    /// `base/<id>/annotations/keep`, before Barman 3.13.3.
    pub fn legacy_keep_annotation(&self, backup_id: &str) -> PathBuf {
        self.backup_dir(backup_id).join("annotations").join("keep")
    }

    pub fn lock_dir(&self) -> &Path {
        &self.wal.lock_dir
    }

    /// `.<server>-backup.lock`: one backup of the server at a time.
    pub fn backup_lock(&self) -> PathBuf {
        self.lock_dir()
            .join(format!(".{}-backup.lock", self.server))
    }

    /// `.<server>-<id>.lock`: held while a backup is deleted (or recovered from).
    pub fn backup_id_lock(&self, backup_id: &str) -> PathBuf {
        self.lock_dir()
            .join(format!(".{}-{backup_id}.lock", self.server))
    }

    /// `.<server>-cron.lock`.
    pub fn cron_lock(&self) -> PathBuf {
        self.lock_dir().join(format!(".{}-cron.lock", self.server))
    }

    /// Every backup.info on disk by backup ID, the `meta/` one winning over the legacy one.
    fn backup_info_files(&self) -> Result<BTreeMap<String, PathBuf>> {
        let mut found = BTreeMap::new();
        for entry in read_dir_if_present(&self.base)? {
            let id = entry.file_name().to_string_lossy().into_owned();
            let legacy = entry.path().join("backup.info");
            if legacy.is_file() {
                found.insert(id, legacy);
            }
        }
        for entry in read_dir_if_present(&self.meta)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix("-backup.info") {
                found.insert(id.to_string(), entry.path());
            }
        }
        Ok(found)
    }

    /// Moves a pre-3.13.3 keep annotation to `meta/` (as Barman does on any write or
    /// removal), so that the two locations never disagree.
    fn relocate_legacy_keep(&self, backup_id: &str) -> Result<()> {
        let legacy = self.legacy_keep_annotation(backup_id);
        if legacy.is_file() {
            std::fs::create_dir_all(&self.meta).map_err(|e| Error::io(&self.meta, e))?;
            let target = self.keep_annotation(backup_id);
            std::fs::rename(&legacy, &target).map_err(|e| io_error(&legacy, e))?;
            crate::durable::sync_dir(&self.meta)?;
        }
        Ok(())
    }
}

fn read_dir_if_present(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| io_error(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error(dir, e)),
    }
}

fn io_error(path: &Path, error: std::io::Error) -> Error {
    Error::io(path, error)
}

/// Writes `content` to `path` through a synced temporary file in the same directory, so
/// that a reader sees the old file or the new one, never a part.
pub fn write_file_durably(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(content)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(&temporary, e));
    }
    std::fs::rename(&temporary, path).map_err(|e| io_error(path, e))?;
    crate::durable::sync_dir(dir)
}

/// Every backup of the server, read as Barman reads them (unreadable files skipped),
/// sorted by backup ID.
pub fn load_backups(home: &ServerHome) -> Vec<BackupInfo> {
    let Ok(files) = home.backup_info_files() else {
        return Vec::new();
    };
    files
        .into_iter()
        .filter_map(|(id, path)| {
            let bytes = std::fs::read(path).ok()?;
            BackupInfo::load(&id, &bytes).ok()
        })
        .collect()
}

/// The [`CatalogStore`] of a server in a `barman_home`.
pub struct HomeCatalog<'a> {
    home: &'a ServerHome,
}

impl<'a> HomeCatalog<'a> {
    pub fn new(home: &'a ServerHome) -> Self {
        HomeCatalog { home }
    }

    pub fn home(&self) -> &'a ServerHome {
        self.home
    }
}

impl CatalogStore for HomeCatalog<'_> {
    fn server(&self) -> &str {
        &self.home.server
    }

    async fn backup_ids(&self) -> Result<Vec<String>> {
        Ok(self.home.backup_info_files()?.into_keys().collect())
    }

    async fn read_backup_info(&self, backup_id: &str) -> Result<Option<Bytes>> {
        for path in [
            self.home.backup_info(backup_id),
            self.home.legacy_backup_info(backup_id),
        ] {
            match std::fs::read(&path) {
                Ok(bytes) => return Ok(Some(Bytes::from(bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Ok(None)
    }

    /// Always to `meta/` (a legacy `base/<id>/backup.info` is left for Barman's own
    /// migration; `meta/` wins when both exist). No tags on a file system.
    async fn write_backup_info(
        &self,
        backup_id: &str,
        text: Bytes,
        _tags: &[(String, String)],
    ) -> Result<()> {
        write_file_durably(&self.home.backup_info(backup_id), &text)
    }

    async fn keep_annotations(&self) -> Result<KeepAnnotations> {
        let mut annotations = KeepAnnotations::default();
        for entry in read_dir_if_present(&self.home.base)? {
            let id = entry.file_name().to_string_lossy().into_owned();
            let legacy = self.home.legacy_keep_annotation(&id);
            if let Ok(content) = std::fs::read(&legacy) {
                let target = keep_target_from_annotation(&content).map_err(Error::from)?;
                annotations.insert(id, target);
            }
        }
        for entry in read_dir_if_present(&self.home.meta)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix("-keep") {
                let content =
                    std::fs::read(entry.path()).map_err(|e| io_error(&entry.path(), e))?;
                let target = keep_target_from_annotation(&content).map_err(Error::from)?;
                annotations.insert(id.to_string(), target);
            }
        }
        Ok(annotations)
    }

    async fn write_keep(&self, backup_id: &str, target: KeepTarget) -> Result<()> {
        self.home.relocate_legacy_keep(backup_id)?;
        write_file_durably(
            &self.home.keep_annotation(backup_id),
            target.as_str().as_bytes(),
        )
    }

    async fn remove_keep(&self, backup_id: &str) -> Result<()> {
        self.home.relocate_legacy_keep(backup_id)?;
        let path = self.home.keep_annotation(backup_id);
        match std::fs::remove_file(&path) {
            Ok(()) => crate::durable::sync_dir(&self.home.meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// The names in xlog.db (the server's WAL index), read under its lock.
    async fn wal_names(&self) -> Result<Vec<WalName>> {
        let db = XlogDb::new(&self.home.wal);
        Ok(db
            .entries()?
            .into_iter()
            .filter_map(|entry| WalName::try_parse(&entry.name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> (tempfile::TempDir, ServerHome) {
        let dir = tempfile::tempdir().unwrap();
        let home = ServerHome::with_defaults("pg", dir.path().join("pg"), dir.path());
        (dir, home)
    }

    const INFO: &str = "backup_id=20260101T000000\nstatus=DONE\n";

    #[tokio::test]
    async fn backup_info_in_meta_wins_over_the_legacy_location() {
        let (_dir, home) = home();
        let catalog = HomeCatalog::new(&home);
        std::fs::create_dir_all(home.backup_dir("20260101T000000")).unwrap();
        std::fs::write(
            home.legacy_backup_info("20260101T000000"),
            "status=FAILED\n",
        )
        .unwrap();
        std::fs::create_dir_all(home.backup_dir("20260102T000000")).unwrap();
        std::fs::write(home.legacy_backup_info("20260102T000000"), "status=DONE\n").unwrap();
        catalog
            .write_backup_info("20260101T000000", Bytes::from(INFO), &[])
            .await
            .unwrap();
        assert_eq!(
            catalog.backup_ids().await.unwrap(),
            ["20260101T000000", "20260102T000000"]
        );
        assert_eq!(
            catalog
                .read_backup_info("20260101T000000")
                .await
                .unwrap()
                .unwrap(),
            INFO
        );
        assert_eq!(
            catalog
                .read_backup_info("20260102T000000")
                .await
                .unwrap()
                .unwrap(),
            "status=DONE\n"
        );
        assert!(
            catalog
                .read_backup_info("20260103T000000")
                .await
                .unwrap()
                .is_none()
        );
        let loaded = load_backups(&home);
        assert_eq!(loaded.len(), 2);
    }

    #[tokio::test]
    async fn keep_annotations_in_both_locations_move_to_meta() {
        let (_dir, home) = home();
        let catalog = HomeCatalog::new(&home);
        let legacy = home.legacy_keep_annotation("20260101T000000");
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "standalone").unwrap();
        catalog
            .write_keep("20260102T000000", KeepTarget::Full)
            .await
            .unwrap();
        let found = catalog.keep_annotations().await.unwrap();
        assert_eq!(found.text("20260101T000000"), Some("standalone"));
        assert_eq!(found.text("20260102T000000"), Some("full"));
        assert_eq!(
            std::fs::read_to_string(home.keep_annotation("20260102T000000")).unwrap(),
            "full"
        );
        catalog.remove_keep("20260101T000000").await.unwrap();
        assert!(!legacy.exists());
        assert!(!home.keep_annotation("20260101T000000").exists());
        let left = catalog.keep_annotations().await.unwrap();
        assert_eq!(left.text("20260101T000000"), None);
        assert_eq!(left.text("20260102T000000"), Some("full"));
        catalog.remove_keep("20260101T000000").await.unwrap();
    }
}
