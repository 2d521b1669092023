//! How one server's catalog is laid out below the destination prefix: the only module
//! that names keys. Barman's cloud layout (barman/cloud.py `CloudBackupCatalog`,
//! `CloudBackupUploader`, `CloudWalUploader`):
//!
//! ```text
//! <prefix>/<server>/base/<backup_id>/backup.info
//!                                   /data.tar[.gz|.bz2|.snappy|.lz4|.zst]     PGDATA
//!                                   /data_0001.tar[...]                        split parts
//!                                   /<tablespace oid>.tar[...], <oid>_0001.tar[...]
//!                                   /backup_label                              snapshot backups
//!                                   /annotations/keep                          keep annotation
//!                                   /barman-rs.manifest                        ours (integrity)
//! <prefix>/<server>/wals/<TTTTTTTTLLLLLLLL>/<segment>[.<compression>]
//! <prefix>/<server>/wals/<TTTTTTTT>.history[.<compression>]
//! ```
//!
//! Everything else (catalog reading, backup, restore, deletion, WAL) asks this module for
//! keys and for what a key means.

use crate::catalog::BackupInfo;
use crate::catalog::manifest::MANIFEST_NAME;
use crate::compression::Compression;
use crate::storage::{CloudStorage, ObjectInfo};
use crate::wal::WalName;

/// The keys of one server's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLayout {
    /// `<prefix>/<server>` (just `<server>` without a prefix).
    root: String,
}

impl ServerLayout {
    pub fn new(storage: &CloudStorage, server: &str) -> Self {
        ServerLayout {
            root: storage.key(&[server]),
        }
    }

    fn join(&self, parts: &[&str]) -> String {
        let mut key = self.root.clone();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            if !key.is_empty() {
                key.push('/');
            }
            key.push_str(part);
        }
        key
    }

    /// `<server>/base`: one directory per backup below it.
    pub fn base(&self) -> String {
        self.join(&["base"])
    }

    /// `<server>/base/<id>` (no trailing `/`).
    pub fn backup_dir(&self, backup_id: &str) -> String {
        self.join(&["base", backup_id])
    }

    /// `<server>/base/<id>/`: the prefix of every object of the backup.
    pub fn backup_prefix(&self, backup_id: &str) -> String {
        self.backup_dir(backup_id) + "/"
    }

    /// An object directly in the backup's directory (an archive, for instance).
    pub fn backup_object(&self, backup_id: &str, name: &str) -> String {
        self.join(&["base", backup_id, name])
    }

    pub fn backup_info(&self, backup_id: &str) -> String {
        self.backup_object(backup_id, BACKUP_INFO)
    }

    /// The `backup_label` object of a snapshot backup.
    pub fn backup_label(&self, backup_id: &str) -> String {
        self.backup_object(backup_id, BACKUP_LABEL)
    }

    /// Our integrity manifest of the backup ([`crate::catalog::manifest`]).
    pub fn manifest(&self, backup_id: &str) -> String {
        self.backup_object(backup_id, MANIFEST_NAME)
    }

    /// `<server>/base/<id>/annotations/keep`, where Barman keeps the keep annotation.
    pub fn keep_annotation(&self, backup_id: &str) -> String {
        self.join(&["base", backup_id, "annotations", "keep"])
    }

    /// `<server>/wals`: history files, and one directory per timeline and log.
    pub fn wals(&self) -> String {
        self.join(&["wals"])
    }

    /// The directory holding `wal` (no trailing `/`): its `TTTTTTTTLLLLLLLL` directory,
    /// or `wals` itself for history files.
    pub fn wal_directory(&self, wal: &WalName) -> String {
        match wal.hash_dir() {
            Some(dir) => self.join(&["wals", &dir]),
            None => self.wals(),
        }
    }
}

pub const BACKUP_INFO: &str = "backup.info";
pub const BACKUP_LABEL: &str = "backup_label";

/// The backup whose keep annotation `key` is (`.../base/<id>/annotations/keep`).
pub fn keep_annotation_backup(key: &str) -> Option<&str> {
    let dir = key.strip_suffix("/annotations/keep")?;
    Some(dir.rsplit('/').next().unwrap_or(dir))
}

/// The backup whose integrity manifest `key` is (`.../base/<id>/barman-rs.manifest`).
pub fn manifest_backup(key: &str) -> Option<&str> {
    let dir = key.strip_suffix(MANIFEST_NAME)?.strip_suffix('/')?;
    Some(dir.rsplit('/').next().unwrap_or(dir))
}

/// `^\d{8}T\d{6}$`: a string used as a backup ID without looking it up.
pub fn is_backup_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 15
        && bytes[8] == b'T'
        && bytes[..8].iter().chain(&bytes[9..]).all(u8::is_ascii_digit)
}

/// Name of one archive object: `<family><extension>` for the first, then
/// `<family>_0001<extension>`... for the parts of a split archive (`family` is `data` or a
/// tablespace OID, `extension` `.tar` plus the compression's).
pub fn archive_object_name(family: &str, index: u32, extension: &str) -> String {
    if index == 0 {
        format!("{family}{extension}")
    } else {
        format!("{family}_{index:04}{extension}")
    }
}

/// One archive object of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    pub key: String,
    pub compression: Option<Compression>,
}

/// The archives of PGDATA (`data.tar...`) or of one tablespace (`<oid>.tar...`): the main
/// object and the additional parts of a split archive (`data_0001.tar...`), in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFamily {
    /// `None` for PGDATA.
    pub oid: Option<u32>,
    /// `data` or the tablespace OID: the start of the object names.
    pub name: String,
    pub main: Option<ArchiveObject>,
    pub parts: Vec<ArchiveObject>,
}

impl ArchiveFamily {
    /// Main archive first, then the parts.
    pub fn objects(&self) -> impl Iterator<Item = &ArchiveObject> {
        self.main.iter().chain(&self.parts)
    }
}

/// The compression a base-backup archive name announces (the text after its first `.`).
fn archive_compression(extension: &str) -> Option<Option<Compression>> {
    match extension {
        "tar" => Some(None),
        "tar.gz" => Some(Some(Compression::Gzip)),
        "tar.bz2" => Some(Some(Compression::Bzip2)),
        "tar.snappy" => Some(Some(Compression::Snappy)),
        "tar.lz4" => Some(Some(Compression::Lz4)),
        "tar.zst" => Some(Some(Compression::Zstd)),
        _ => None,
    }
}

/// Sorts the objects of a backup directory (`dir` ends with `/`) into archive families,
/// PGDATA first then the tablespaces of backup.info, as Barman finds them
/// (barman/cloud.py `CloudBackupCatalog.get_backup_files`): an object belongs to the first
/// family whose name it starts with followed by `.` (main archive) or `_` (additional
/// part); unknown extensions are skipped with a warning.
pub fn backup_archives(info: &BackupInfo, dir: &str, objects: &[ObjectInfo]) -> Vec<ArchiveFamily> {
    let mut families = vec![ArchiveFamily {
        oid: None,
        name: "data".into(),
        main: None,
        parts: Vec::new(),
    }];
    for tablespace in info.tablespaces.iter().flatten() {
        families.push(ArchiveFamily {
            oid: Some(tablespace.oid),
            name: tablespace.oid.to_string(),
            main: None,
            parts: Vec::new(),
        });
    }
    let mut sorted: Vec<&ObjectInfo> = objects.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for object in sorted {
        let Some(rest) = object.key.strip_prefix(dir) else {
            continue;
        };
        for family in &mut families {
            let Some(after) = rest.strip_prefix(family.name.as_str()) else {
                continue;
            };
            let (is_main, extension) = match after.as_bytes().first() {
                Some(b'.') => (true, &after[1..]),
                Some(b'_') => (false, after.split_once('.').map_or(after, |(_, ext)| ext)),
                _ => continue,
            };
            match archive_compression(extension) {
                Some(compression) => {
                    let archive = ArchiveObject {
                        key: object.key.clone(),
                        compression,
                    };
                    if is_main {
                        family.main = Some(archive);
                    } else {
                        family.parts.push(archive);
                    }
                }
                None => tracing::warn!("Skipping unknown extension: {extension}"),
            }
            break;
        }
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(url: &str) -> ServerLayout {
        ServerLayout::new(&crate::storage::in_memory(url), "srv")
    }

    #[test]
    fn keys_of_a_server_catalog() {
        let l = layout("s3://bucket/some/prefix/");
        let id = "20261129T101112";
        assert_eq!(l.base(), "some/prefix/srv/base");
        assert_eq!(l.backup_prefix(id), format!("some/prefix/srv/base/{id}/"));
        assert_eq!(
            l.backup_info(id),
            format!("some/prefix/srv/base/{id}/backup.info")
        );
        assert_eq!(
            l.keep_annotation(id),
            format!("some/prefix/srv/base/{id}/annotations/keep")
        );
        assert_eq!(keep_annotation_backup(&l.keep_annotation(id)), Some(id));
        assert_eq!(manifest_backup(&l.manifest(id)), Some(id));
        assert_eq!(manifest_backup(&l.backup_info(id)), None);
        assert_eq!(
            l.backup_object(id, &archive_object_name("16385", 2, ".tar.gz")),
            format!("some/prefix/srv/base/{id}/16385_0002.tar.gz")
        );
        let segment = WalName::parse("0000000200000001000000FE").unwrap();
        assert_eq!(
            l.wal_directory(&segment),
            "some/prefix/srv/wals/0000000200000001"
        );
        let history = WalName::parse("00000002.history").unwrap();
        assert_eq!(l.wal_directory(&history), "some/prefix/srv/wals");
        // Without a prefix the server is the first component.
        assert_eq!(layout("s3://bucket").wals(), "srv/wals");
    }

    #[test]
    fn backup_ids_are_fifteen_characters_with_a_t() {
        assert!(is_backup_id("20250304T101112"));
        for bad in [
            "2025030T101112",
            "20250304t101112",
            "20250304T10111a",
            "latest",
            "",
        ] {
            assert!(!is_backup_id(bad), "{bad}");
        }
    }

    #[test]
    fn archives_are_grouped_by_family_like_barman() {
        let info = BackupInfo {
            tablespaces: Some(vec![crate::catalog::Tablespace {
                name: "tbs".into(),
                oid: 16385,
                location: "/t".into(),
            }]),
            ..Default::default()
        };
        let dir = "p/srv/base/20250101T000000/";
        let objects: Vec<ObjectInfo> = [
            "16385_0001.tar.gz",
            "16385.tar.gz",
            "163850.tar",
            "backup.info",
            "data_0002.tar.gz",
            "data.tar.gz",
            "data_0001.tar.gz",
            "data.tar.xz",
            "database.tar",
        ]
        .iter()
        .map(|name| ObjectInfo {
            key: format!("{dir}{name}"),
            size: 1,
        })
        .collect();
        let families = backup_archives(&info, dir, &objects);
        let names: Vec<Vec<&str>> = families
            .iter()
            .map(|f| f.objects().map(|o| &o.key[dir.len()..]).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["data.tar.gz", "data_0001.tar.gz", "data_0002.tar.gz"],
                vec!["16385.tar.gz", "16385_0001.tar.gz"],
            ]
        );
        assert_eq!(families[1].oid, Some(16385));
        assert_eq!(
            families[0].main.as_ref().unwrap().compression,
            Some(Compression::Gzip)
        );
    }
}
