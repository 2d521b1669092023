//! The integrity manifest of a backup: `base/<backup_id>/barman-rs.manifest`, one line per
//! archive object (and one for `backup_label`) with its size and SHA-256.
//!
//! Barman's formats cannot tell a damaged archive from a good one in every case: an
//! uncompressed tar has no checksum at all, and a tar cut at a member boundary still looks
//! complete to a reader that stops at end of input. The manifest, written by
//! `barman-cloud-backup` after every archive is stored and before the DONE backup.info,
//! lets `barman-cloud-restore` check each object byte for byte while it streams it.
//!
//! The object name is one Barman 3.20.1 ignores: its restore only picks objects named
//! `data*` or `<tablespace oid>*`, its catalog reads only `backup.info`, so a bucket with
//! manifests stays readable by Barman (Barman's delete leaves the manifest behind; an
//! orphaned manifest is ignored by both tools and removed by ours).
//!
//! Text format, UTF-8, one entry per line after a header line:
//!
//! ```text
//! barman-rs integrity manifest 1
//! sha256 <64 hex digits> <size in bytes> <name>
//! ```
//!
//! `<name>` is the object's name inside the backup directory (`data.tar.zst`,
//! `data_0001.tar.zst`, `16385.tar`), or `backup_label` for the label stored in the data
//! archive. Names never contain whitespace or `/`. Nothing here does I/O.

use sha2::{Digest, Sha256};

use crate::error::Error;

/// The manifest's object name inside a backup directory.
pub const MANIFEST_NAME: &str = "barman-rs.manifest";

/// The entry name that stands for the backup label extracted into PGDATA.
pub const BACKUP_LABEL_ENTRY: &str = "backup_label";

const HEADER: &str = "barman-rs integrity manifest 1";

/// Size and SHA-256 of one stream of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest256 {
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Digest256 {
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = StreamHasher::default();
        hasher.update(bytes);
        hasher.finish()
    }

    pub fn hex(&self) -> String {
        self.sha256.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Computes a [`Digest256`] of bytes seen in order.
#[derive(Default, Clone)]
pub struct StreamHasher {
    hasher: Sha256,
    size: u64,
}

impl StreamHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn finish(self) -> Digest256 {
        Digest256 {
            size: self.size,
            sha256: self.hasher.finalize().into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub name: String,
    pub digest: Digest256,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityManifest {
    pub entries: Vec<ManifestEntry>,
}

impl IntegrityManifest {
    /// Adds (or replaces) the entry for `name`.
    pub fn insert(&mut self, name: impl Into<String>, digest: Digest256) {
        let name = name.into();
        self.entries.retain(|e| e.name != name);
        self.entries.push(ManifestEntry { name, digest });
    }

    pub fn get(&self, name: &str) -> Option<&Digest256> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.digest)
    }

    /// Entries of archive objects (everything but the backup label).
    pub fn objects(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.entries.iter().filter(|e| e.name != BACKUP_LABEL_ENTRY)
    }

    pub fn render(&self) -> String {
        let mut text = format!("{HEADER}\n");
        let mut entries: Vec<&ManifestEntry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            text.push_str(&format!(
                "sha256 {} {} {}\n",
                entry.digest.hex(),
                entry.digest.size,
                entry.name
            ));
        }
        text
    }

    /// Parses a manifest; anything unexpected is an error (a manifest that cannot be read
    /// cannot vouch for anything, so restore refuses it rather than skipping checks).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |line: usize, why: &str| {
            Error::Corrupt(format!("integrity manifest line {line}: {why}"))
        };
        let text = std::str::from_utf8(bytes).map_err(|_| bad(1, "not UTF-8"))?;
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, HEADER)) => {}
            _ => return Err(bad(1, &format!("expected \"{HEADER}\""))),
        }
        let mut manifest = IntegrityManifest::default();
        for (number, line) in lines {
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(' ').collect();
            let [algorithm, hex, size, name] = fields.as_slice() else {
                return Err(bad(number, "expected \"sha256 HASH SIZE NAME\""));
            };
            if *algorithm != "sha256" {
                return Err(bad(number, "unknown hash algorithm"));
            }
            let sha256 = parse_hex32(hex).ok_or_else(|| bad(number, "bad SHA-256"))?;
            let size: u64 = size.parse().map_err(|_| bad(number, "bad size"))?;
            if !valid_name(name) {
                return Err(bad(number, "bad object name"));
            }
            if manifest.get(name).is_some() {
                return Err(bad(number, "duplicate object name"));
            }
            manifest.entries.push(ManifestEntry {
                name: name.to_string(),
                digest: Digest256 { size, sha256 },
            });
        }
        Ok(manifest)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_and_parses_back() {
        let mut manifest = IntegrityManifest::default();
        manifest.insert("data_0001.tar.zst", Digest256::of(b"two"));
        manifest.insert("data.tar.zst", Digest256::of(b"one"));
        manifest.insert(BACKUP_LABEL_ENTRY, Digest256::of(b"label"));
        let text = manifest.render();
        assert!(text.starts_with("barman-rs integrity manifest 1\nsha256 "));
        let names: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(names, ["backup_label", "data.tar.zst", "data_0001.tar.zst"]);
        let parsed = IntegrityManifest::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.get("data.tar.zst"), Some(&Digest256::of(b"one")));
        assert_eq!(parsed.objects().count(), 2);
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            Digest256::of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn refuses_anything_unexpected() {
        let good = format!("sha256 {} 3 data.tar", "00".repeat(32));
        for text in [
            String::new(),
            "barman-rs integrity manifest 2\n".to_string(),
            format!(
                "barman-rs integrity manifest 1\n{}",
                good.replace("sha256", "md5")
            ),
            format!(
                "barman-rs integrity manifest 1\n{}",
                good.replace(" 3 ", " -3 ")
            ),
            format!("barman-rs integrity manifest 1\n{good} extra"),
            format!(
                "barman-rs integrity manifest 1\n{}",
                good.replace("data.tar", "../x")
            ),
            format!(
                "barman-rs integrity manifest 1\n{}",
                good.replace("data.tar", "a/b")
            ),
            format!("barman-rs integrity manifest 1\n{good}\n{good}"),
            format!(
                "barman-rs integrity manifest 1\nsha256 {} 3 data.tar",
                "0".repeat(63)
            ),
        ] {
            assert!(
                IntegrityManifest::parse(text.as_bytes()).is_err(),
                "{text:?}"
            );
        }
    }
}
