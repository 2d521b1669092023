//! Compression codecs for WAL files, named and leveled as Barman names them.
//!
//! Barman recognises a compressed object only by its name suffix, never by magic bytes,
//! so the suffix is the contract: `.gz .bz2 .xz .snappy .zst .lz4`.

pub mod magic;
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
    /// Barman's syntax: a symbolic level in any case, or digits with an optional `-`, of
    /// any length (Python's `int`): integers beyond `i32` saturate, which the per-codec
    /// clamping makes the same level.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "low" => Ok(Self::Low),
            // Barman passes an empty value through, which then means the medium level.
            "" | "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            other => {
                let (negative, digits) = match other.strip_prefix('-') {
                    Some(digits) => (true, digits),
                    None => (false, other),
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::InvalidInput(format!(
                        "'{text}' is not a valid compression level (low, medium, high or an integer)"
                    )));
                }
                let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
                let value = if negative { -magnitude } else { magnitude };
                Ok(Self::Exact(
                    value.clamp(i32::MIN.into(), i32::MAX.into()) as i32
                ))
            }
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
                let mut encoder = zstd_encoder(output, level.unwrap_or(4)).map_err(finish)?;
                pump(input, &mut encoder)?;
                encoder.finish().map_err(finish)
            }
            Compression::Lz4 => {
                // lz4_flex implements only the fast compressor; the level is a hint Barman's
                // reader does not need (any valid frame decodes).
                let mut encoder = lz4_encoder(output);
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
            Compression::Lz4 => Box::new(Lz4Reader::new(input)),
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

/// A zstd encoder whose frame ends with the content checksum (XXH64), so that a reader,
/// ours or Python's `zstandard`, refuses a frame whose bytes changed.
pub fn zstd_encoder<W: Write>(
    output: W,
    level: i32,
) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(output, level)?;
    encoder.include_checksum(true)?;
    Ok(encoder)
}

/// An lz4 frame encoder whose frame ends with the content checksum (XXH32), so that a
/// reader, ours or Python's `lz4.frame`, refuses a frame whose bytes changed.
pub fn lz4_encoder<W: Write>(output: W) -> lz4_flex::frame::FrameEncoder<W> {
    lz4_flex::frame::FrameEncoder::with_frame_info(
        lz4_flex::frame::FrameInfo::new().content_checksum(true),
        output,
    )
}

/// Counts what a decoder consumed and notes where its input ended.
struct EofProbe<R> {
    inner: R,
    consumed: u64,
    ended: bool,
}

impl<R: Read> Read for EofProbe<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.ended = true;
                Ok(0)
            }
            Ok(n) => {
                self.consumed += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.ended |= e.kind() == io::ErrorKind::UnexpectedEof;
                Err(e)
            }
        }
    }
}

/// lz4 frames read to the true end of the input. lz4_flex's `FrameDecoder` alone has two
/// gaps: input that stops where a block header or the end mark should be ends decoding
/// quietly (a truncated frame looks complete), and each frame's end mark reads as the end
/// of the stream (a reader stopping there ignores later frames, which Python's
/// `lz4.frame` decodes). Here every frame must close with its end mark, frames are read
/// until the input ends, and input ending anywhere else is an `UnexpectedEof` error.
pub struct Lz4Reader<R: Read> {
    decoder: lz4_flex::frame::FrameDecoder<EofProbe<R>>,
    /// Input bytes consumed when the last complete frame ended.
    frame_end: Option<u64>,
    finished: bool,
}

impl<R: Read> Lz4Reader<R> {
    pub fn new(input: R) -> Self {
        Lz4Reader {
            decoder: lz4_flex::frame::FrameDecoder::new(EofProbe {
                inner: input,
                consumed: 0,
                ended: false,
            }),
            frame_end: None,
            finished: false,
        }
    }
}

impl<R: Read> Read for Lz4Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.finished {
            return Ok(0);
        }
        loop {
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let probe = self.decoder.get_ref();
            if !probe.ended {
                // The decoder met an end mark (and checked the content checksum, if the
                // frame has one): the frame is whole. Another may follow.
                self.frame_end = Some(probe.consumed);
                continue;
            }
            if self.frame_end == Some(probe.consumed) {
                self.finished = true;
                return Ok(0);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                if probe.consumed == 0 {
                    "empty input: no lz4 frame"
                } else {
                    "incomplete lz4 frame: the input ends before its end mark"
                },
            ));
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
pub(crate) fn pump<R: Read + ?Sized, W: Write + ?Sized>(
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
        // Any length, as Python's int; no '+', no blanks, as Barman.
        assert_eq!(
            CompressionLevel::parse("99999999999999999999999").unwrap(),
            CompressionLevel::Exact(i32::MAX)
        );
        assert_eq!(
            CompressionLevel::parse("-99999999999").unwrap(),
            CompressionLevel::Exact(i32::MIN)
        );
        assert_eq!(
            Compression::Zstd.effective_level(CompressionLevel::Exact(i32::MAX)),
            Some(22)
        );
        assert_eq!(
            CompressionLevel::parse("").unwrap(),
            CompressionLevel::Medium
        );
        // Barman also takes digits of other scripts ("٣" is 3); we do not (README).
        for bad in ["+5", " 5", "5 ", "--5", "-", "1e3", "٣"] {
            assert!(CompressionLevel::parse(bad).is_err(), "{bad}");
        }
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

    /// 300 KB that compress well but not trivially (several blocks/chunks per codec).
    fn sample() -> Vec<u8> {
        (0..75_000u32)
            .flat_map(|i| (i / 3 % 251 + (i % 7) * 1000).to_le_bytes())
            .collect()
    }

    fn decode(codec: Compression, stream: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        codec.decompress(stream, &mut out).map(|_| out)
    }

    /// Offsets where a snappy framed stream may end unnoticed: before anything (python-snappy
    /// writes nothing at all for empty input), after the stream identifier and after each
    /// chunk (the format has no end marker).
    fn snappy_chunk_ends(stream: &[u8]) -> Vec<usize> {
        let mut ends = vec![0, 10];
        let mut at = 10;
        while at + 4 <= stream.len() {
            let len = u32::from_le_bytes([stream[at + 1], stream[at + 2], stream[at + 3], 0]);
            at += 4 + len as usize;
            ends.push(at);
        }
        ends
    }

    #[test]
    fn zstd_and_lz4_frames_announce_a_content_checksum() {
        let data = sample();
        // zstd: magic FD2FB528, then the frame header descriptor, bit 2 Content_Checksum_flag.
        let zst = Compression::Zstd
            .compress(CompressionLevel::Medium, &mut &data[..], Vec::new())
            .unwrap();
        assert_eq!(zst[..4], 0xFD2F_B528u32.to_le_bytes());
        assert_ne!(zst[4] & 0b100, 0, "zstd frame without content checksum");
        // The multithreaded encoder of base backups writes the same frame header.
        let mut mt = zstd_encoder(Vec::new(), 3).unwrap();
        mt.multithread(2).unwrap();
        mt.write_all(&data).unwrap();
        let mt = mt.finish().unwrap();
        assert_ne!(mt[4] & 0b100, 0, "zstdmt frame without content checksum");
        assert_eq!(decode(Compression::Zstd, &mt).unwrap(), data);
        // lz4: magic 184D2204, then FLG, bit 2 C.Checksum.
        let lz4 = Compression::Lz4
            .compress(CompressionLevel::Medium, &mut &data[..], Vec::new())
            .unwrap();
        assert_eq!(lz4[..4], 0x184D_2204u32.to_le_bytes());
        assert_ne!(lz4[4] & 0b100, 0, "lz4 frame without content checksum");
    }

    /// Every codec refuses a stream cut short, wherever the cut. The exceptions are what
    /// the formats cannot see: a snappy framed stream has no end marker, so one cut right
    /// after a chunk decodes as a shorter stream (and so would a gzip, bzip2 or xz stream
    /// cut between two members/streams, and an lz4 or zstd one between two frames: none
    /// of our single-member writers produce those, but the parallel WAL gzip and bzip2
    /// do). barman-cloud-wal-restore catches these with its segment size and header
    /// check.
    #[test]
    fn truncated_streams_fail_to_decode() {
        let data = sample();
        for codec in ALL {
            let stream = codec
                .compress(CompressionLevel::Low, &mut &data[..], Vec::new())
                .unwrap();
            let snappy_ends = snappy_chunk_ends(&stream);
            let step = (stream.len() / 97).max(1);
            let cuts = (0..stream.len())
                .step_by(step)
                .chain(stream.len().saturating_sub(24)..stream.len());
            for cut in cuts {
                match decode(codec, &stream[..cut]) {
                    Err(StreamError::Read(_)) => {}
                    Err(StreamError::Write(e)) => panic!("{} cut at {cut}: {e}", codec.name()),
                    Ok(out) => {
                        assert!(
                            codec == Compression::Snappy && snappy_ends.contains(&cut),
                            "{} cut at {cut} of {} decoded quietly ({} bytes)",
                            codec.name(),
                            stream.len(),
                            out.len()
                        );
                        assert!(data.starts_with(&out));
                    }
                }
            }
        }
    }

    /// Every byte flipped anywhere either fails decoding or changes nothing in the output
    /// (gzip's mtime, for example): wrong data never comes out quietly. This holds for
    /// the zstd and lz4 streams we write because they carry a content checksum.
    #[test]
    fn flipped_bytes_fail_to_decode() {
        let data = sample();
        for codec in ALL {
            let stream = codec
                .compress(CompressionLevel::Low, &mut &data[..], Vec::new())
                .unwrap();
            let step = (stream.len() / 151).max(1);
            let positions = (0..stream.len())
                .step_by(step)
                .chain(stream.len().saturating_sub(16)..stream.len());
            for position in positions {
                for mask in [0x01, 0x55, 0xff] {
                    let mut bad = stream.clone();
                    bad[position] ^= mask;
                    if let Ok(out) = decode(codec, &bad) {
                        assert!(
                            out == data,
                            "{}: byte {position} of {} ^ {mask:#x} decoded to wrong data",
                            codec.name(),
                            stream.len()
                        );
                    }
                }
            }
        }
    }

    /// Frames without a content checksum, as Python's `lz4.frame.compress` and
    /// `zstandard` write them by default (so Barman's WAL and backups): truncation is
    /// still caught, but a flipped byte inside a block may decode to wrong data of the
    /// right length, which no decoder can see. barman-cloud-wal-restore refuses such a
    /// segment when its size or first page header no longer fits its name (and
    /// PostgreSQL checks every record's CRC when it replays).
    #[test]
    fn checksumless_frames_are_still_read_to_their_end() {
        let data = sample();
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&data).unwrap();
        let lz4 = lz4.finish().unwrap();
        assert_eq!(lz4[4] & 0b100, 0);
        let zst = zstd::stream::encode_all(&data[..], 3).unwrap();
        assert_eq!(zst[4] & 0b100, 0);
        for (codec, stream) in [(Compression::Lz4, &lz4), (Compression::Zstd, &zst)] {
            assert_eq!(decode(codec, stream).unwrap(), data);
            for cut in (0..stream.len())
                .step_by(37)
                .chain(stream.len() - 8..stream.len())
            {
                assert!(
                    decode(codec, &stream[..cut]).is_err(),
                    "{} cut at {cut} of {}",
                    codec.name(),
                    stream.len()
                );
            }
        }
    }

    #[test]
    fn lz4_reads_every_concatenated_frame_and_nothing_else() {
        let data = sample();
        let one = Compression::Lz4
            .compress(CompressionLevel::Low, &mut &data[..], Vec::new())
            .unwrap();
        let two = [one.clone(), one.clone()].concat();
        assert_eq!(
            decode(Compression::Lz4, &two).unwrap(),
            [&data[..], &data[..]].concat()
        );
        // A frame that is empty but whole is a valid stream; nothing at all is not.
        let empty = Compression::Lz4
            .compress(CompressionLevel::Low, &mut &b""[..], Vec::new())
            .unwrap();
        assert_eq!(decode(Compression::Lz4, &empty).unwrap(), b"");
        assert!(decode(Compression::Lz4, b"").is_err());
        // Trailing bytes that are not a frame are refused.
        let garbage = [one.clone(), b"garbage!".to_vec()].concat();
        assert!(decode(Compression::Lz4, &garbage).is_err());
        let stray = [one, vec![0u8]].concat();
        assert!(decode(Compression::Lz4, &stray).is_err());
    }
}
