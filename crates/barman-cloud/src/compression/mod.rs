//! Compression codecs for WAL files, named and leveled as Barman names them.
//!
//! Barman recognises a compressed object only by its name suffix, never by magic bytes,
//! so the suffix is the contract: `.gz .bz2 .xz .snappy .zst .lz4`.

pub mod parallel;

use std::io::{self, Read, Write};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    Bzip2,
    Xz,
    Snappy,
    Zstd,
    Lz4,
}

/// `--compression-level`: Barman's symbolic levels or a raw integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionLevel {
    Low,
    #[default]
    Medium,
    High,
    Exact(i32),
}

impl CompressionLevel {
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            other => other.parse::<i32>().map(Self::Exact).map_err(|_| {
                Error::InvalidInput(format!(
                    "'{text}' is not a valid compression level (low, medium, high or an integer)"
                ))
            }),
        }
    }
}

pub const ALL: [Compression; 6] = [
    Compression::Gzip,
    Compression::Bzip2,
    Compression::Xz,
    Compression::Snappy,
    Compression::Zstd,
    Compression::Lz4,
];

impl Compression {
    /// Object-name suffix, including the dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Xz => ".xz",
            Compression::Snappy => ".snappy",
            Compression::Zstd => ".zst",
            Compression::Lz4 => ".lz4",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }

    /// The codec whose suffix ends `name`, if any.
    pub fn from_suffix_of(name: &str) -> Option<Self> {
        ALL.into_iter().find(|c| name.ends_with(c.suffix()))
    }

    /// Barman's (low, medium, high) levels and the accepted integer range.
    fn level_table(self) -> Option<([i32; 3], (i32, i32))> {
        match self {
            Compression::Gzip => Some(([1, 6, 9], (1, 9))),
            Compression::Bzip2 => Some(([1, 5, 9], (1, 9))),
            Compression::Xz => Some(([1, 3, 5], (1, 9))),
            Compression::Snappy => None,
            Compression::Zstd => Some(([1, 4, 9], (-22, 22))),
            Compression::Lz4 => Some(([0, 6, 10], (0, 16))),
        }
    }

    /// The numeric level this codec uses for `level` (out-of-range integers are clamped,
    /// as Barman does). `None` for codecs without levels.
    pub fn effective_level(self, level: CompressionLevel) -> Option<i32> {
        let ([low, medium, high], (min, max)) = self.level_table()?;
        Some(match level {
            CompressionLevel::Low => low,
            CompressionLevel::Medium => medium,
            CompressionLevel::High => high,
            CompressionLevel::Exact(n) => {
                let clamped = n.clamp(min, max);
                if clamped != n {
                    tracing::debug!(
                        "compression level {n} out of range for {}, using {clamped}",
                        self.name()
                    );
                }
                clamped
            }
        })
    }

    /// Compresses everything `input` yields into one stream (one gzip member, one zstd or
    /// lz4 frame...), which is what every Barman reader decodes in full. Read errors come
    /// back as [`StreamError::Read`], encoder or output errors as [`StreamError::Write`].
    pub fn compress<R: Read, W: Write>(
        self,
        level: CompressionLevel,
        input: &mut R,
        output: W,
    ) -> Result<W, StreamError> {
        let level = self.effective_level(level);
        let finish = StreamError::Write;
        match self {
            Compression::Gzip => {
                let mtime = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as u32)
                    .unwrap_or(0);
                let mut encoder = flate2::GzBuilder::new()
                    .mtime(mtime)
                    .write(output, flate2::Compression::new(level.unwrap_or(6) as u32));
                pump(input, &mut encoder)?;
                encoder.finish().map_err(finish)
            }
            Compression::Bzip2 => {
                let mut encoder = bzip2::write::BzEncoder::new(
                    output,
                    bzip2::Compression::new(level.unwrap_or(5) as u32),
                );
                pump(input, &mut encoder)?;
                encoder.finish().map_err(finish)
            }
            Compression::Xz => {
                let mut encoder = liblzma::write::XzEncoder::new(output, level.unwrap_or(3) as u32);
                pump(input, &mut encoder)?;
                encoder.finish().map_err(finish)
            }
            Compression::Snappy => {
                let mut encoder = snap::write::FrameEncoder::new(output);
                pump(input, &mut encoder)?;
                encoder.into_inner().map_err(|e| finish(e.into_error()))
            }
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(output, level.unwrap_or(4))
                    .map_err(finish)?;
                pump(input, &mut encoder)?;
                encoder.finish().map_err(finish)
            }
            Compression::Lz4 => {
                // lz4_flex implements only the fast compressor; the level is a hint Barman's
                // reader does not need (any valid frame decodes).
                let mut encoder = lz4_flex::frame::FrameEncoder::new(output);
                pump(input, &mut encoder)?;
                encoder.finish().map_err(|e| finish(io::Error::other(e)))
            }
        }
    }

    /// Compresses the file at `path` (`len` bytes), returning the compressed stream as
    /// consecutive pieces. gzip and bzip2, the slow common codecs, use up to `threads`
    /// cores: the file is split and the independent members/streams are concatenated,
    /// which Python's `gzip` and `bz2` readers (and so Barman's WAL restore) decode in
    /// full. Each thread reads its own range, so the input is never held whole in memory.
    /// zstd, lz4 and snappy are fast alone, and zstd must stay one frame (Barman's reader
    /// stops after the first); xz stays single-threaded because each of its encoders needs
    /// tens of MiB. Only for WAL files: Barman's base-backup reader wants a single member.
    pub fn compress_file_parallel(
        self,
        level: CompressionLevel,
        path: &std::path::Path,
        len: u64,
        threads: usize,
    ) -> Result<Vec<Vec<u8>>, StreamError> {
        const MIN_SPLIT: u64 = 2 << 20;
        let threads = threads.clamp(1, (len / MIN_SPLIT).max(1) as usize);
        let open_range = |offset: u64,
                          size: u64|
         -> Result<io::Take<io::BufReader<std::fs::File>>, StreamError> {
            use std::io::Seek;
            let mut file = std::fs::File::open(path).map_err(StreamError::Read)?;
            file.seek(io::SeekFrom::Start(offset))
                .map_err(StreamError::Read)?;
            Ok(io::BufReader::with_capacity(128 * 1024, file).take(size))
        };
        match self {
            Compression::Gzip | Compression::Bzip2 if threads > 1 => {
                let chunk = len.div_ceil(threads as u64);
                std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..threads as u64)
                        .map(|i| {
                            let (offset, size) =
                                (i * chunk, chunk.min(len.saturating_sub(i * chunk)));
                            scope.spawn(move || {
                                self.compress(level, &mut open_range(offset, size)?, Vec::new())
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(StreamError::Write(io::Error::other(
                                    "compression thread panicked",
                                )))
                            })
                        })
                        .collect()
                })
            }
            _ => Ok(vec![self.compress(
                level,
                &mut open_range(0, len)?,
                Vec::new(),
            )?]),
        }
    }

    /// Decompresses `input` into `output`, accepting concatenated members/frames as
    /// Python's readers do. Decoding errors come back as [`StreamError::Read`], output
    /// errors (a full disk) as [`StreamError::Write`]. Returns the bytes written.
    pub fn decompress<R: Read + Send, W: Write>(
        self,
        input: R,
        output: &mut W,
    ) -> Result<u64, StreamError> {
        let mut decoder = self.decoder(input).map_err(StreamError::Read)?;
        pump(&mut decoder, output)
    }

    /// A streaming decoder over `input` (concatenated members/frames are read too).
    pub fn decoder<'a, R: Read + Send + 'a>(
        self,
        input: R,
    ) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(input)),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(input)),
            Compression::Snappy => Box::new(snap::read::FrameDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
            Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        })
    }

    /// Wraps a decoding failure for the user.
    pub fn decode_error(self, source: io::Error) -> Error {
        Error::Compression {
            codec: self.name(),
            source,
        }
    }
}

/// Which side of a stream failed.
#[derive(Debug)]
pub enum StreamError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy` that remembers whether reading or writing failed.
fn pump<R: Read + ?Sized, W: Write + ?Sized>(
    input: &mut R,
    output: &mut W,
) -> Result<u64, StreamError> {
    let mut buffer = vec![0u8; 128 * 1024];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StreamError::Read(e)),
        };
        output.write_all(&buffer[..n]).map_err(StreamError::Write)?;
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_uses_barman_suffixes() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in ALL {
            let compressed = codec
                .compress(CompressionLevel::Medium, &mut &data[..], Vec::new())
                .unwrap();
            assert!(
                compressed.len() < data.len(),
                "{} did not compress",
                codec.name()
            );
            let mut out = Vec::new();
            codec.decompress(&compressed[..], &mut out).unwrap();
            assert_eq!(out, data, "{} round trip", codec.name());
            assert_eq!(
                Compression::from_suffix_of(&format!("x{}", codec.suffix())),
                Some(codec)
            );
        }
    }

    #[test]
    fn levels_follow_barman_tables_and_clamp() {
        assert_eq!(
            Compression::Gzip.effective_level(CompressionLevel::Medium),
            Some(6)
        );
        assert_eq!(
            Compression::Zstd.effective_level(CompressionLevel::Exact(-40)),
            Some(-22)
        );
        assert_eq!(
            Compression::Lz4.effective_level(CompressionLevel::High),
            Some(10)
        );
        assert_eq!(
            Compression::Snappy.effective_level(CompressionLevel::High),
            None
        );
        assert_eq!(
            CompressionLevel::parse("HIGH").unwrap(),
            CompressionLevel::High
        );
        assert_eq!(
            CompressionLevel::parse("-3").unwrap(),
            CompressionLevel::Exact(-3)
        );
        assert!(CompressionLevel::parse("fast").is_err());
    }

    #[test]
    fn parallel_compression_decodes_to_the_input() {
        let data: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i / 7).to_le_bytes())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        std::fs::write(&path, &data).unwrap();
        for codec in ALL {
            let pieces = codec
                .compress_file_parallel(CompressionLevel::Low, &path, data.len() as u64, 4)
                .unwrap();
            let expected_pieces = match codec {
                Compression::Gzip | Compression::Bzip2 => 4,
                _ => 1,
            };
            assert_eq!(pieces.len(), expected_pieces, "{}", codec.name());
            let compressed = pieces.concat();
            let mut out = Vec::new();
            codec.decompress(&compressed[..], &mut out).unwrap();
            assert!(out == data, "{} parallel round trip", codec.name());
        }
    }

    #[test]
    fn gzip_output_is_a_single_member() {
        let data = vec![7u8; 100_000];
        let gz = Compression::Gzip
            .compress(CompressionLevel::Low, &mut &data[..], Vec::new())
            .unwrap();
        let mut single = flate2::read::GzDecoder::new(&gz[..]);
        let mut out = Vec::new();
        single.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }
}
