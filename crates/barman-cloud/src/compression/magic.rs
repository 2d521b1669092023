//! Compression identified by a file's first bytes, as Barman's `identify_compression`
//! does for the WAL files it stores on a `barman` server: those keep the bare WAL name
//! (no suffix), so the content says how they were compressed.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::Compression;

/// Each codec's magic bytes, in the order Barman tries its registry (names sorted:
/// bzip2, gzip, lz4, snappy, xz, zstd). No two prefixes overlap, so the order only
/// matters for faithfulness.
const MAGICS: [(Compression, &[u8]); 6] = [
    (Compression::Bzip2, b"BZh"),
    (Compression::Gzip, b"\x1f\x8b\x08"),
    (Compression::Lz4, b"\x04\x22\x4d\x18"),
    (Compression::Snappy, b"\xff\x06\x00\x00sNaPpY"),
    (Compression::Xz, b"\xfd7zXZ\x00"),
    (Compression::Zstd, b"\x28\xb5\x2f\xfd"),
];

/// How many leading bytes identification looks at: the longest magic (snappy's stream
/// identifier chunk).
pub const MAGIC_MAX_LEN: usize = 10;

/// The codec whose magic starts `start`, or `None` for anything else (an uncompressed
/// WAL segment, a history file, a file shorter than the magic).
pub fn identify(start: &[u8]) -> Option<Compression> {
    MAGICS
        .iter()
        .find(|(_, magic)| start.starts_with(magic))
        .map(|(codec, _)| *codec)
}

/// [`identify`] applied to the first [`MAGIC_MAX_LEN`] bytes of `path`.
pub fn identify_file(path: &Path) -> io::Result<Option<Compression>> {
    let mut start = Vec::with_capacity(MAGIC_MAX_LEN);
    File::open(path)?
        .take(MAGIC_MAX_LEN as u64)
        .read_to_end(&mut start)?;
    Ok(identify(&start))
}

/// The codec Barman means by a compression name as it appears in xlog.db: its own
/// aliases (`pygzip`, `pigz`, `pybzip2`) name the same on-disk formats. `None` for
/// `custom` and unknown names, which barman-rs cannot decode.
pub fn from_barman_name(name: &str) -> Option<Compression> {
    match name {
        "gzip" | "pygzip" | "pigz" => Some(Compression::Gzip),
        "bzip2" | "pybzip2" => Some(Compression::Bzip2),
        "xz" => Some(Compression::Xz),
        "snappy" => Some(Compression::Snappy),
        "zstd" => Some(Compression::Zstd),
        "lz4" => Some(Compression::Lz4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::{ALL, CompressionLevel};

    #[test]
    fn every_codec_is_identified_from_what_it_writes() {
        let data = vec![7u8; 100_000];
        for codec in ALL {
            let compressed = codec
                .compress(CompressionLevel::Medium, &mut &data[..], Vec::new())
                .unwrap();
            assert_eq!(identify(&compressed), Some(codec), "{}", codec.name());
            assert_eq!(from_barman_name(codec.name()), Some(codec));
        }
    }

    #[test]
    fn plain_and_short_content_is_not_compressed() {
        // A WAL page header (magic 0xD110, little endian) and a history file.
        assert_eq!(identify(b"\x10\xd1\x06\x00\x01\x00\x00\x00"), None);
        assert_eq!(
            identify(b"1\t0/3000000\tno recovery target specified\n"),
            None
        );
        assert_eq!(identify(b""), None);
        // A prefix of a magic is not the magic.
        assert_eq!(identify(b"\x1f\x8b"), None);
        assert_eq!(identify(b"\xff\x06\x00\x00sNaP"), None);
        assert_eq!(from_barman_name("custom"), None);
        assert_eq!(from_barman_name("pigz"), Some(Compression::Gzip));
    }

    #[test]
    fn identifies_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000000010000000000000001");
        std::fs::write(&path, b"BZh91AY&SY").unwrap();
        assert_eq!(identify_file(&path).unwrap(), Some(Compression::Bzip2));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(identify_file(&path).unwrap(), None);
    }
}
