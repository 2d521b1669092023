//! WAL file names as PostgreSQL and Barman use them.

use std::fmt;

use crate::compression::Compression;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalKind {
    /// A 16-MiB-style segment `TTTTTTTTLLLLLLLLSSSSSSSS`.
    Segment,
    /// A segment closed early at promotion or by pg_receivewal: `<segment>.partial`.
    Partial,
    /// A backup history file: `<segment>.<offset 8 hex>.backup`.
    BackupLabel,
    /// A timeline history file: `<timeline 8 hex>.history`.
    History,
}

/// A validated WAL-ish file name (case preserved as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalName {
    name: String,
    kind: WalKind,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl WalName {
    pub fn parse(name: &str) -> Result<Self> {
        Self::try_parse(name)
            .ok_or_else(|| Error::InvalidInput(format!("{name} is an invalid name for a WAL file")))
    }

    pub fn try_parse(name: &str) -> Option<Self> {
        let kind = if is_hex(name, 24) {
            WalKind::Segment
        } else if let Some(seg) = name.strip_suffix(".partial") {
            is_hex(seg, 24).then_some(WalKind::Partial)?
        } else if let Some(rest) = name.strip_suffix(".backup") {
            let (seg, offset) = rest.split_once('.')?;
            (is_hex(seg, 24) && is_hex(offset, 8)).then_some(WalKind::BackupLabel)?
        } else if let Some(tli) = name.strip_suffix(".history") {
            is_hex(tli, 8).then_some(WalKind::History)?
        } else {
            return None;
        };
        Some(WalName {
            name: name.to_string(),
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> WalKind {
        self.kind
    }

    /// Timeline, from the first 8 hex digits of every WAL-ish name.
    pub fn timeline(&self) -> u32 {
        u32::from_str_radix(&self.name[..8], 16).unwrap_or(0)
    }

    /// The "hash directory" under `wals/` that holds this file: `TTTTTTTTLLLLLLLL` in upper
    /// case, or nothing for history files, which Barman keeps directly in `wals/`.
    pub fn hash_dir(&self) -> Option<String> {
        match self.kind {
            WalKind::History => None,
            _ => Some(self.name[..16].to_ascii_uppercase()),
        }
    }

    /// For a `.partial` file, the segment it would complete.
    pub fn without_partial(&self) -> &str {
        self.name.strip_suffix(".partial").unwrap_or(&self.name)
    }
}

impl fmt::Display for WalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Splits an archived object's basename into the WAL name and the compression its
/// suffix announces (one suffix at most, as Barman strips).
pub fn split_compression_suffix(basename: &str) -> (&str, Option<Compression>) {
    match Compression::from_suffix_of(basename) {
        Some(codec) => (
            &basename[..basename.len() - codec.suffix().len()],
            Some(codec),
        ),
        None => (basename, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_wal_kind_and_rejects_the_rest() {
        let cases = [
            ("000000010000000000000005", Some(WalKind::Segment)),
            ("00000001000000000000000a", Some(WalKind::Segment)),
            ("000000010000000000000005.partial", Some(WalKind::Partial)),
            (
                "000000010000000000000005.00000028.backup",
                Some(WalKind::BackupLabel),
            ),
            ("00000002.history", Some(WalKind::History)),
            ("00000001000000000000005", None),
            ("000000010000000000000005.gz", None),
            ("0000000G0000000000000005", None),
            ("00000002.History", None),
            ("../00000002.history", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                WalName::try_parse(name).map(|w| w.kind()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn hash_directory_is_upper_case_and_absent_for_history() {
        let seg = WalName::parse("0000000a000000ff0000001c.partial").unwrap();
        assert_eq!(seg.hash_dir().as_deref(), Some("0000000A000000FF"));
        assert_eq!(seg.timeline(), 10);
        assert_eq!(seg.without_partial(), "0000000a000000ff0000001c");
        assert_eq!(WalName::parse("0000000A.history").unwrap().hash_dir(), None);
    }

    #[test]
    fn strips_one_known_compression_suffix() {
        assert_eq!(
            split_compression_suffix("000000010000000000000005.partial.zst"),
            ("000000010000000000000005.partial", Some(Compression::Zstd))
        );
        assert_eq!(
            split_compression_suffix("000000010000000000000005"),
            ("000000010000000000000005", None)
        );
    }
}
