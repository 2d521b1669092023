//! Multi-threaded compressors that still emit one gzip member / bzip2 stream.
//!
//! Barman's restore reads only the first gzip member of a `.tar.gz` and only the first
//! bzip2 stream of a `.tar.bz2`, so a parallel compressor may not simply concatenate
//! independently compressed pieces: everything it writes must be one member / stream.
//!
//! * [`ParallelGzipWriter`] uses pigz's technique: the input is cut into
//!   [`GZIP_BLOCK_SIZE`] blocks, each compressed on a worker thread as raw deflate primed
//!   with the previous 32 KiB of input as dictionary, ending with a sync flush (so the bit
//!   stream is byte-aligned) or, for the last block, with the final deflate block. The
//!   CRC-32 of every block is combined in order for the trailer.
//! * [`ParallelBzip2Writer`] cuts the input into chunks that fit exactly one bzip2 block
//!   (counting bzip2's initial run-length encoding as libbzip2 does), compresses each into
//!   its own stream on a worker thread, then splices the blocks' bits into a single stream
//!   with one end-of-stream marker and the combined CRC.
//!
//! Both keep at most [`IN_FLIGHT_PER_THREAD`] × threads blocks in flight: `write` blocks
//! while the pipeline is full. Compressed output is written to the inner writer, in
//! order, on the caller's thread, so the inner writer needs not be `Send`. With one
//! thread they are plain [`flate2::write::GzEncoder`] / [`bzip2::write::BzEncoder`].
//!
//! With two threads or more the output depends only on the input, the level and the
//! block size, not on the number of threads, the sizes of the writes or the scheduling;
//! it differs slightly from the single-threaded encoders' (a little larger: sync flushes
//! every block for gzip, blocks cut a few bytes short of full for bzip2). If no worker
//! thread can be spawned, `new` falls back to the single-threaded encoder.
//!
//! Dropping a writer without [`finish`](ParallelGzipWriter::finish) abandons the stream
//! (no trailer is written, so the output is detectably truncated) and stops its threads.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// Input bytes per parallel gzip block (pigz uses 128 KiB too).
pub const GZIP_BLOCK_SIZE: usize = 128 * 1024;
/// Deflate's window: how much of the previous input primes each gzip block.
const GZIP_DICT_SIZE: usize = 32 * 1024;
/// Blocks queued or being compressed, per worker thread, before `write` blocks.
pub const IN_FLIGHT_PER_THREAD: usize = 2;
/// A bzip2 chunk holds at most this many times the block size of *input* (runs of equal
/// bytes shrink up to 51× in bzip2's first RLE; this caps the memory such input takes).
const BZIP2_MAX_INPUT_PER_BLOCK_SIZE: usize = 4;

// ---------------------------------------------------------------------------------------
// Ordered worker pool
// ---------------------------------------------------------------------------------------

type Reply<R> = mpsc::SyncSender<io::Result<R>>;

fn worker_gone() -> io::Error {
    io::Error::other("a compression worker thread ended unexpectedly")
}

fn poisoned() -> io::Error {
    io::Error::other("the compressed stream is unusable after an earlier error")
}

/// Jobs go to a pool of threads; results come back in submission order.
struct Pipeline<T, R> {
    jobs: Option<mpsc::Sender<(T, Reply<R>)>>,
    pending: VecDeque<mpsc::Receiver<io::Result<R>>>,
    workers: Vec<thread::JoinHandle<()>>,
    cancelled: Arc<AtomicBool>,
    capacity: usize,
}

impl<T: Send + 'static, R: Send + 'static> Pipeline<T, R> {
    /// Starts up to `threads` workers, each running its own closure from `make_worker`;
    /// `None` if not a single thread could be started.
    fn start<F>(threads: usize, name: &str, mut make_worker: impl FnMut() -> F) -> Option<Self>
    where
        F: FnMut(T) -> io::Result<R> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel::<(T, Reply<R>)>();
        let queue = Arc::new(Mutex::new(queue));
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let queue = Arc::clone(&queue);
            let cancelled = Arc::clone(&cancelled);
            let mut work = make_worker();
            let spawned = thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    loop {
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok((job, reply)) = next else { return };
                        if cancelled.load(Ordering::Relaxed) {
                            return;
                        }
                        // Nobody listens any more if the writer was dropped meanwhile.
                        let _ = reply.send(work(job));
                    }
                });
            if let Ok(handle) = spawned {
                workers.push(handle);
            }
        }
        if workers.is_empty() {
            return None;
        }
        let capacity = IN_FLIGHT_PER_THREAD * workers.len();
        Some(Self {
            jobs: Some(jobs),
            pending: VecDeque::with_capacity(capacity),
            workers,
            cancelled,
            capacity,
        })
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= self.capacity
    }

    fn submit(&mut self, job: T) -> io::Result<()> {
        let (reply, result) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(worker_gone)?;
        jobs.send((job, reply)).map_err(|_| worker_gone())?;
        self.pending.push_back(result);
        Ok(())
    }

    /// The oldest result: waits for it if `wait`, else only if it is ready.
    fn next(&mut self, wait: bool) -> Option<io::Result<R>> {
        let front = self.pending.front()?;
        let received = if wait {
            front.recv().ok()
        } else {
            match front.try_recv() {
                Ok(result) => Some(result),
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        self.pending.pop_front();
        Some(received.unwrap_or_else(|| Err(worker_gone())))
    }
}

impl<T, R> Drop for Pipeline<T, R> {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
        self.jobs = None;
        self.pending.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Where finished blocks go, in order.
trait Sink<R> {
    fn emit(&mut self, done: R) -> io::Result<()>;
}

/// Submits `job`, first emitting the oldest results while the pipeline is full, then
/// whatever results are ready anyway.
fn submit<T, R, S>(pipe: &mut Pipeline<T, R>, sink: &mut S, job: T) -> io::Result<()>
where
    T: Send + 'static,
    R: Send + 'static,
    S: Sink<R>,
{
    while pipe.is_full() {
        match pipe.next(true) {
            Some(done) => sink.emit(done?)?,
            None => break,
        }
    }
    pipe.submit(job)?;
    while let Some(done) = pipe.next(false) {
        sink.emit(done?)?;
    }
    Ok(())
}

/// Waits for and emits every result still in flight.
fn drain<T, R, S>(pipe: &mut Pipeline<T, R>, sink: &mut S) -> io::Result<()>
where
    T: Send + 'static,
    R: Send + 'static,
    S: Sink<R>,
{
    while let Some(done) = pipe.next(true) {
        sink.emit(done?)?;
    }
    Ok(())
}

/// Marks the writer unusable when `result` is an error.
fn check<T>(poisoned: &mut bool, result: io::Result<T>) -> io::Result<T> {
    if result.is_err() {
        *poisoned = true;
    }
    result
}

// ---------------------------------------------------------------------------------------
// gzip
// ---------------------------------------------------------------------------------------

/// Writes one gzip member, compressing with several threads (pigz's technique).
///
/// `level` is zlib's 0..=9 (larger values are taken as 9); `threads` ≤ 1 means a plain
/// single-threaded [`flate2::write::GzEncoder`].
pub struct ParallelGzipWriter<W: Write> {
    imp: GzImpl<W>,
}

enum GzImpl<W: Write> {
    Single(flate2::write::GzEncoder<W>),
    Parallel(GzipPipeline<W>),
}

impl<W: Write> ParallelGzipWriter<W> {
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let level = level.min(9);
        let started = if threads > 1 {
            GzipPipeline::<W>::start(threads, level)
        } else {
            None
        };
        let imp = match started {
            Some((pipe, header)) => GzImpl::Parallel(GzipPipeline {
                pipe,
                sink: GzSink {
                    inner,
                    header: Some(header),
                    crc: crc32fast::Hasher::new(),
                    spare: Vec::new(),
                },
                block: Vec::with_capacity(GZIP_BLOCK_SIZE),
                dict: Vec::with_capacity(GZIP_DICT_SIZE),
                poisoned: false,
            }),
            _ => GzImpl::Single(single_gzip(inner, level)),
        };
        Self { imp }
    }

    pub fn get_ref(&self) -> &W {
        match &self.imp {
            GzImpl::Single(encoder) => encoder.get_ref(),
            GzImpl::Parallel(parallel) => &parallel.sink.inner,
        }
    }

    /// Compresses what is left, writes the trailer, flushes and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.imp {
            GzImpl::Single(encoder) => {
                let mut inner = encoder.finish()?;
                inner.flush()?;
                Ok(inner)
            }
            GzImpl::Parallel(parallel) => parallel.finish(),
        }
    }
}

fn single_gzip<W: Write>(inner: W, level: u32) -> flate2::write::GzEncoder<W> {
    flate2::write::GzEncoder::new(inner, flate2::Compression::new(level))
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.imp {
            GzImpl::Single(encoder) => encoder.write(data),
            GzImpl::Parallel(parallel) => parallel.write(data),
        }
    }

    /// Compresses and writes out everything written so far (ending a block early, which
    /// costs a little ratio), then flushes the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.imp {
            GzImpl::Single(encoder) => encoder.flush(),
            GzImpl::Parallel(parallel) => parallel.flush(),
        }
    }
}

struct GzJob {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
}

struct GzDone {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
    data: Vec<u8>,
}

struct GzSink<W> {
    inner: W,
    header: Option<[u8; 10]>,
    crc: crc32fast::Hasher,
    spare: Vec<Vec<u8>>,
}

impl<W: Write> GzSink<W> {
    fn write_header(&mut self) -> io::Result<()> {
        if let Some(header) = self.header.take() {
            self.inner.write_all(&header)?;
        }
        Ok(())
    }
}

impl<W: Write> Sink<GzDone> for GzSink<W> {
    fn emit(&mut self, done: GzDone) -> io::Result<()> {
        self.write_header()?;
        self.inner.write_all(&done.deflated)?;
        self.crc.combine(&done.crc);
        let mut data = done.data;
        data.clear();
        self.spare.push(data);
        Ok(())
    }
}

struct GzipPipeline<W: Write> {
    pipe: Pipeline<GzJob, GzDone>,
    sink: GzSink<W>,
    /// Input not yet handed to a worker.
    block: Vec<u8>,
    /// The last [`GZIP_DICT_SIZE`] bytes of input handed to workers.
    dict: Vec<u8>,
    poisoned: bool,
}

impl<W: Write> GzipPipeline<W> {
    /// The pool and the member header, as flate2's `GzEncoder` writes it.
    fn start(threads: usize, level: u32) -> Option<(Pipeline<GzJob, GzDone>, [u8; 10])> {
        // A fresh deflate state per block: zlib-rs's `reset` leaves the old window, which
        // can change (not break) the output, making it depend on which worker got what.
        let pipe = Pipeline::start(threads, "gzip", || {
            move |job| {
                let mut deflate = flate2::Compress::new(flate2::Compression::new(level), false);
                deflate_block(&mut deflate, job)
            }
        })?;
        let extra_flags = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        Some((pipe, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extra_flags, 255]))
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(poisoned());
        }
        let taken = data.len().min(GZIP_BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&data[..taken]);
        if self.block.len() >= GZIP_BLOCK_SIZE {
            let result = self.dispatch(false);
            check(&mut self.poisoned, result)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(poisoned());
        }
        let result = self.flush_blocks();
        check(&mut self.poisoned, result)
    }

    fn flush_blocks(&mut self) -> io::Result<()> {
        if !self.block.is_empty() {
            self.dispatch(false)?;
        }
        drain(&mut self.pipe, &mut self.sink)?;
        self.sink.inner.flush()
    }

    /// Hands the current block to the workers.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let fresh = self
            .sink
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(GZIP_BLOCK_SIZE));
        let data = std::mem::replace(&mut self.block, fresh);
        let dict = self.dict.clone();
        keep_tail(&mut self.dict, &data, GZIP_DICT_SIZE);
        submit(&mut self.pipe, &mut self.sink, GzJob { data, dict, last })
    }

    fn finish(mut self) -> io::Result<W> {
        if self.poisoned {
            return Err(poisoned());
        }
        self.dispatch(true)?;
        drain(&mut self.pipe, &mut self.sink)?;
        let GzipPipeline { pipe, mut sink, .. } = self;
        drop(pipe);
        sink.write_header()?;
        let size = sink.crc.total_len() as u32; // ISIZE is the length modulo 2^32
        let crc = sink.crc.clone().finalize();
        let mut trailer = [0; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        trailer[4..].copy_from_slice(&size.to_le_bytes());
        sink.inner.write_all(&trailer)?;
        sink.inner.flush()?;
        Ok(sink.inner)
    }
}

/// Keeps in `tail` the last `size` bytes of `tail` followed by `data`.
fn keep_tail(tail: &mut Vec<u8>, data: &[u8], size: usize) {
    if data.len() >= size {
        tail.clear();
        tail.extend_from_slice(&data[data.len() - size..]);
    } else {
        let keep = size - data.len();
        if tail.len() > keep {
            tail.drain(..tail.len() - keep);
        }
        tail.extend_from_slice(data);
    }
}

/// Raw deflate of one block: primed with `dict`, ended by a sync flush (byte-aligned, so
/// blocks concatenate) or, for the last block, by the final deflate block.
fn deflate_block(deflate: &mut flate2::Compress, job: GzJob) -> io::Result<GzDone> {
    use flate2::{FlushCompress, Status};

    deflate.reset();
    if !job.dict.is_empty() {
        deflate
            .set_dictionary(&job.dict)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut deflated = Vec::with_capacity(job.data.len() + job.data.len() / 512 + 64);
    let mut consumed = 0;
    let mut stalls = 0;
    loop {
        if deflated.capacity() - deflated.len() < 64 {
            deflated.reserve(deflated.capacity() / 4 + 1024);
        }
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress_vec(&job.data[consumed..], &mut deflated, flush)?;
        consumed += (deflate.total_in() - before_in) as usize;
        let done = if job.last {
            status == Status::StreamEnd
        } else {
            consumed == job.data.len() && deflated.len() < deflated.capacity()
        };
        if done {
            break;
        }
        if deflate.total_in() == before_in && deflate.total_out() == before_out {
            stalls += 1;
            if stalls > 8 {
                return Err(io::Error::other("deflate made no progress"));
            }
            deflated.reserve(deflated.capacity() + 1024);
        }
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&job.data);
    Ok(GzDone {
        deflated,
        crc,
        data: job.data,
    })
}

// ---------------------------------------------------------------------------------------
// bzip2
// ---------------------------------------------------------------------------------------

/// Writes one bzip2 stream, compressing its blocks with several threads.
///
/// `level` is bzip2's 1..=9 (the block size in 100k units; out-of-range values are
/// clamped); `threads` ≤ 1 means a plain single-threaded [`bzip2::write::BzEncoder`].
pub struct ParallelBzip2Writer<W: Write> {
    imp: BzImpl<W>,
}

enum BzImpl<W: Write> {
    Single(bzip2::write::BzEncoder<W>),
    Parallel(Bzip2Pipeline<W>),
}

impl<W: Write> ParallelBzip2Writer<W> {
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        let level = level.clamp(1, 9);
        let imp = if threads > 1 {
            match Pipeline::start(threads, "bzip2", || move |job| bzip2_chunk(level, job)) {
                Some(pipe) => {
                    let block_size = level as usize * 100_000;
                    let mut bits = BitWriter::default();
                    bits.bytes.extend_from_slice(b"BZh");
                    bits.bytes.push(b'0' + level as u8);
                    BzImpl::Parallel(Bzip2Pipeline {
                        pipe,
                        sink: BzSink {
                            inner,
                            bits,
                            crc: 0,
                            spare: Vec::new(),
                        },
                        chunk: Vec::new(),
                        rle: Rle1Counter::new(block_size - 19 - 1),
                        max_chunk: block_size * BZIP2_MAX_INPUT_PER_BLOCK_SIZE,
                        poisoned: false,
                    })
                }
                None => BzImpl::Single(single_bzip2(inner, level)),
            }
        } else {
            BzImpl::Single(single_bzip2(inner, level))
        };
        Self { imp }
    }

    pub fn get_ref(&self) -> &W {
        match &self.imp {
            BzImpl::Single(encoder) => encoder.get_ref(),
            BzImpl::Parallel(parallel) => &parallel.sink.inner,
        }
    }

    /// Compresses what is left, writes the end of stream, flushes and returns the inner
    /// writer.
    pub fn finish(self) -> io::Result<W> {
        match self.imp {
            BzImpl::Single(encoder) => {
                let mut inner = encoder.finish()?;
                inner.flush()?;
                Ok(inner)
            }
            BzImpl::Parallel(parallel) => parallel.finish(),
        }
    }
}

fn single_bzip2<W: Write>(inner: W, level: u32) -> bzip2::write::BzEncoder<W> {
    bzip2::write::BzEncoder::new(inner, bzip2::Compression::new(level))
}

impl<W: Write> Write for ParallelBzip2Writer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.imp {
            BzImpl::Single(encoder) => encoder.write(data),
            BzImpl::Parallel(parallel) => parallel.write(data),
        }
    }

    /// Compresses and writes out everything written so far as complete blocks (ending a
    /// block early, which costs ratio), except the last few bits that do not fill a
    /// byte; then flushes the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.imp {
            BzImpl::Single(encoder) => encoder.flush(),
            BzImpl::Parallel(parallel) => parallel.flush(),
        }
    }
}

/// How many bytes of input fit one bzip2 block: counts the output of bzip2's first
/// run-length encoding (runs of 4..=255 equal bytes become 4 bytes and a count) exactly as
/// libbzip2 fills a block.
struct Rle1Counter {
    limit: usize,
    /// Bytes of finished runs.
    written: usize,
    /// The byte of the current run and its length (0: no run yet).
    byte: u8,
    run: u32,
}

impl Rle1Counter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            written: 0,
            byte: 0,
            run: 0,
        }
    }

    fn encoded(run: u32) -> usize {
        if run < 4 { run as usize } else { 5 }
    }

    fn reset(&mut self) {
        self.written = 0;
        self.run = 0;
    }

    /// How many bytes of `data` still fit the block.
    fn take(&mut self, data: &[u8]) -> usize {
        for (index, &byte) in data.iter().enumerate() {
            let (written, run) = if self.run > 0 && byte == self.byte && self.run < 255 {
                (self.written, self.run + 1)
            } else {
                (self.written + Self::encoded(self.run), 1)
            };
            if written + Self::encoded(run) > self.limit {
                return index;
            }
            self.written = written;
            self.run = run;
            self.byte = byte;
        }
        data.len()
    }
}

struct BzDone {
    blocks: Vec<BzBlock>,
    data: Vec<u8>,
}

/// One compressed block: `nbits` bits of `stream` from byte 4 (after `BZh<level>`).
struct BzBlock {
    stream: Vec<u8>,
    nbits: u64,
    crc: u32,
}

const BZIP2_BLOCK_MAGIC: u64 = 0x3141_5926_5359;
const BZIP2_EOS_MAGIC: u64 = 0x1772_4538_5090;

fn bzip2_chunk(level: u32, data: Vec<u8>) -> io::Result<BzDone> {
    let mut blocks = Vec::with_capacity(1);
    bzip2_blocks(level, &data, &mut blocks)?;
    Ok(BzDone { blocks, data })
}

/// Compresses `data` into one block; should libbzip2 make several of it (never, if
/// [`Rle1Counter`] counts right), compresses each half on its own.
fn bzip2_blocks(level: u32, data: &[u8], blocks: &mut Vec<BzBlock>) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut compress = bzip2::Compress::new(bzip2::Compression::new(level), 30);
    let mut stream = Vec::with_capacity(data.len() + data.len() / 64 + 1024);
    let mut consumed = 0;
    loop {
        if stream.capacity() - stream.len() < 1024 {
            stream.reserve(stream.capacity() / 4 + 4096);
        }
        let before = compress.total_in();
        let status =
            compress.compress_vec(&data[consumed..], &mut stream, bzip2::Action::Finish)?;
        consumed += (compress.total_in() - before) as usize;
        if status == bzip2::Status::StreamEnd {
            break;
        }
    }
    let (nbits, stream_crc) = bzip2_stream_body(&stream)
        .ok_or_else(|| io::Error::other("unexpected bzip2 stream layout from the compressor"))?;
    if nbits < 80 || read_bits(&stream, 32, 48) != BZIP2_BLOCK_MAGIC {
        return Err(io::Error::other(
            "unexpected bzip2 block layout from the compressor",
        ));
    }
    let block_crc = read_bits(&stream, 80, 32) as u32;
    // A one-block stream's CRC is its block's CRC.
    if block_crc == stream_crc {
        blocks.push(BzBlock {
            stream,
            nbits,
            crc: block_crc,
        });
        return Ok(());
    }
    let half = data.len() / 2;
    if half == 0 {
        return Err(io::Error::other("bzip2 made several blocks of one byte"));
    }
    bzip2_blocks(level, &data[..half], blocks)?;
    bzip2_blocks(level, &data[half..], blocks)
}

/// The bit length of a complete stream's blocks (from byte 4) and its CRC, found from the
/// end-of-stream marker: 48 magic bits, 32 CRC bits, 0..=7 zero padding bits.
fn bzip2_stream_body(stream: &[u8]) -> Option<(u64, u32)> {
    if stream.len() < 14 || &stream[..3] != b"BZh" {
        return None;
    }
    let total = stream.len() as u64 * 8;
    (0..8).find_map(|padding| {
        let end = total - padding;
        let marker = end - 80;
        let found = read_bits(stream, end, padding as u32) == 0
            && read_bits(stream, marker, 48) == BZIP2_EOS_MAGIC;
        found.then(|| (marker - 32, read_bits(stream, marker + 48, 32) as u32))
    })
}

/// `count` (≤ 64) bits at bit offset `position`, most significant first.
fn read_bits(bytes: &[u8], position: u64, count: u32) -> u64 {
    (position..position + u64::from(count)).fold(0, |value, bit| {
        let byte = bytes[(bit / 8) as usize];
        (value << 1) | u64::from((byte >> (7 - bit % 8)) & 1)
    })
}

/// Bytes plus up to 7 pending bits (the high bits of `partial`).
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    partial: u8,
    pending: u32,
}

impl BitWriter {
    fn put_bits(&mut self, value: u64, count: u32) {
        for shift in (0..count).rev() {
            self.partial |= (((value >> shift) & 1) as u8) << (7 - self.pending);
            self.pending += 1;
            if self.pending == 8 {
                self.bytes.push(self.partial);
                self.partial = 0;
                self.pending = 0;
            }
        }
    }

    /// Appends the first `count` bits of `source`.
    fn append(&mut self, source: &[u8], count: u64) {
        let whole = (count / 8) as usize;
        let rest = (count % 8) as u32;
        if self.pending == 0 {
            self.bytes.extend_from_slice(&source[..whole]);
        } else {
            let shift = self.pending;
            self.bytes.reserve(whole);
            for &byte in &source[..whole] {
                self.bytes.push(self.partial | (byte >> shift));
                self.partial = byte << (8 - shift);
            }
        }
        if rest > 0 {
            self.put_bits(u64::from(source[whole] >> (8 - rest)), rest);
        }
    }

    /// Pads the pending bits with zeros to a byte.
    fn pad(&mut self) {
        if self.pending > 0 {
            self.put_bits(0, 8 - self.pending);
        }
    }
}

struct BzSink<W> {
    inner: W,
    bits: BitWriter,
    /// The stream CRC: each block's CRC folded in order.
    crc: u32,
    spare: Vec<Vec<u8>>,
}

impl<W: Write> BzSink<W> {
    fn write_out(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.bits.bytes)?;
        self.bits.bytes.clear();
        Ok(())
    }
}

impl<W: Write> Sink<BzDone> for BzSink<W> {
    fn emit(&mut self, done: BzDone) -> io::Result<()> {
        for block in &done.blocks {
            self.bits.append(&block.stream[4..], block.nbits);
            self.crc = self.crc.rotate_left(1) ^ block.crc;
        }
        let mut data = done.data;
        data.clear();
        self.spare.push(data);
        self.write_out()
    }
}

struct Bzip2Pipeline<W: Write> {
    pipe: Pipeline<Vec<u8>, BzDone>,
    sink: BzSink<W>,
    /// Input not yet handed to a worker: at most one block, counted by `rle`.
    chunk: Vec<u8>,
    rle: Rle1Counter,
    max_chunk: usize,
    poisoned: bool,
}

impl<W: Write> Bzip2Pipeline<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(poisoned());
        }
        if data.is_empty() {
            return Ok(0);
        }
        loop {
            let room = self.max_chunk - self.chunk.len();
            let fits = &data[..data.len().min(room)];
            let taken = self.rle.take(fits);
            self.chunk.extend_from_slice(&fits[..taken]);
            if taken < data.len() {
                // The block is full: the rest of `data` goes to the next one.
                let result = self.dispatch();
                check(&mut self.poisoned, result)?;
            }
            if taken > 0 {
                return Ok(taken);
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(poisoned());
        }
        let result = self.flush_blocks();
        check(&mut self.poisoned, result)
    }

    fn flush_blocks(&mut self) -> io::Result<()> {
        self.dispatch()?;
        drain(&mut self.pipe, &mut self.sink)?;
        self.sink.inner.flush()
    }

    /// Hands the current chunk, if any, to the workers.
    fn dispatch(&mut self) -> io::Result<()> {
        self.rle.reset();
        if self.chunk.is_empty() {
            return Ok(());
        }
        let fresh = self.sink.spare.pop().unwrap_or_default();
        let chunk = std::mem::replace(&mut self.chunk, fresh);
        submit(&mut self.pipe, &mut self.sink, chunk)
    }

    fn finish(mut self) -> io::Result<W> {
        if self.poisoned {
            return Err(poisoned());
        }
        self.dispatch()?;
        drain(&mut self.pipe, &mut self.sink)?;
        let Bzip2Pipeline { pipe, mut sink, .. } = self;
        drop(pipe);
        sink.bits.put_bits(BZIP2_EOS_MAGIC, 48);
        sink.bits.put_bits(u64::from(sink.crc), 32);
        sink.bits.pad();
        sink.write_out()?;
        sink.inner.flush()?;
        Ok(sink.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// pgbench-like text rows: compressible, but not trivially.
    fn text_rows(len: usize, seed: u64) -> Vec<u8> {
        let noise = random_bytes(len / 8 + 64, seed);
        let words = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
        ];
        let mut out = Vec::with_capacity(len + 200);
        let mut row = 0usize;
        while out.len() < len {
            let n = &noise[(row * 6) % (noise.len() - 8)..];
            let balance = i32::from_le_bytes([n[0], n[1], n[2], 0]) - (1 << 23);
            writeln!(
                out,
                "{}\t{}\t{}\t{} {} {:08x}\t{}",
                row + 1,
                row / 100_000 + 1,
                balance,
                words[usize::from(n[3]) % 8],
                words[usize::from(n[4]) % 8],
                u32::from_le_bytes([n[5], n[3], n[1], n[0]]),
                " ".repeat(usize::from(n[2] % 40)),
            )
            .unwrap();
            row += 1;
        }
        out.truncate(len);
        out
    }

    /// Text, random bytes, zeros and runs of every length, in turn.
    fn mixed(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 300_000);
        let mut seed = 7;
        while out.len() < len {
            out.extend(text_rows(150_000, seed));
            out.extend(random_bytes(70_000, seed + 1));
            out.extend(std::iter::repeat_n(0u8, 200_000));
            for run in 1..300 {
                out.extend(std::iter::repeat_n((run % 7) as u8, run));
            }
            seed += 2;
        }
        out.truncate(len);
        out
    }

    /// Writes `data` in pieces of the given sizes, cycled.
    fn write_in<W: Write>(writer: &mut W, data: &[u8], sizes: &[usize]) {
        let mut offset = 0;
        for &size in sizes.iter().cycle() {
            if offset >= data.len() {
                break;
            }
            let end = (offset + size).min(data.len());
            writer.write_all(&data[offset..end]).unwrap();
            offset = end;
        }
    }

    fn gzip(data: &[u8], level: u32, threads: usize, sizes: &[usize]) -> Vec<u8> {
        let mut writer = ParallelGzipWriter::new(Vec::new(), level, threads);
        write_in(&mut writer, data, sizes);
        writer.finish().unwrap()
    }

    fn bzip2(data: &[u8], level: u32, threads: usize, sizes: &[usize]) -> Vec<u8> {
        let mut writer = ParallelBzip2Writer::new(Vec::new(), level, threads);
        write_in(&mut writer, data, sizes);
        writer.finish().unwrap()
    }

    /// Decodes the first gzip member and checks nothing follows it.
    fn gunzip_one_member(compressed: &[u8]) -> Vec<u8> {
        let mut decoder = flate2::bufread::GzDecoder::new(compressed);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        assert!(
            decoder.into_inner().is_empty(),
            "data after the first gzip member"
        );
        out
    }

    /// Decodes the first bzip2 stream and checks nothing follows it.
    fn bunzip_one_stream(compressed: &[u8]) -> Vec<u8> {
        let mut decoder = bzip2::bufread::BzDecoder::new(compressed);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        assert!(
            decoder.into_inner().is_empty(),
            "data after the first bzip2 stream"
        );
        out
    }

    fn check_gzip(data: &[u8], level: u32, threads: usize, sizes: &[usize]) -> Vec<u8> {
        let compressed = gzip(data, level, threads, sizes);
        let back = gunzip_one_member(&compressed);
        assert!(
            back == data,
            "gzip round trip differs: level {level}, {threads} threads, {} bytes",
            data.len()
        );
        // And through flate2's read::GzDecoder, which reads only the first member.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        compressed
    }

    fn check_bzip2(data: &[u8], level: u32, threads: usize, sizes: &[usize]) -> Vec<u8> {
        let compressed = bzip2(data, level, threads, sizes);
        let back = bunzip_one_stream(&compressed);
        assert!(
            back == data,
            "bzip2 round trip differs: level {level}, {threads} threads, {} bytes",
            data.len()
        );
        let mut back = Vec::new();
        bzip2::read::BzDecoder::new(&compressed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        compressed
    }

    const ALL_AT_ONCE: &[usize] = &[usize::MAX];
    const ODD_SIZES: &[usize] = &[1, 7, 65_537, 3, 200_003, 1, 31_000];

    #[test]
    fn gzip_small_inputs_all_levels_and_threads() {
        let block = GZIP_BLOCK_SIZE;
        let text = text_rows(2 * block + 1, 1);
        for level in [1, 6, 9] {
            for threads in 1..=4 {
                for len in [0, 1, block - 1, block, block + 1, 2 * block, 2 * block + 1] {
                    check_gzip(&text[..len], level, threads, ALL_AT_ONCE);
                }
            }
        }
    }

    #[test]
    fn gzip_empty_is_one_valid_member() {
        for threads in [1, 2] {
            let compressed = gzip(b"", 9, threads, ALL_AT_ONCE);
            assert_eq!(&compressed[..4], &[0x1f, 0x8b, 8, 0]);
            assert_eq!(&compressed[compressed.len() - 8..], &[0; 8]);
            assert!(gunzip_one_member(&compressed).is_empty());
        }
        // The same header as flate2's single-threaded encoder, whatever the level.
        for level in 0..=9 {
            assert_eq!(
                gzip(b"x", level, 2, ALL_AT_ONCE)[..10],
                gzip(b"x", level, 1, ALL_AT_ONCE)[..10],
                "level {level}"
            );
        }
    }

    #[test]
    fn gzip_random_zeros_and_mixed() {
        let random = random_bytes(3 << 20, 2);
        let zeros = vec![0u8; 6 << 20];
        let mixed = mixed(3 << 20);
        for (level, threads) in [(1, 2), (6, 3), (9, 4), (9, 1)] {
            check_gzip(&random, level, threads, ALL_AT_ONCE);
            check_gzip(&mixed, level, threads, ODD_SIZES);
        }
        for (level, threads) in [(1, 2), (9, 3)] {
            let compressed = check_gzip(&zeros, level, threads, ALL_AT_ONCE);
            let single = gzip(&zeros, level, 1, ALL_AT_ONCE);
            assert!(
                compressed.len() < single.len() * 6 / 5,
                "{} bytes",
                compressed.len()
            );
        }
    }

    #[test]
    fn gzip_dictionary_carries_matches_across_blocks() {
        // 16 KiB of noise, repeated: without the previous block's tail as dictionary,
        // every block would store the noise again.
        let pattern = random_bytes(16 << 10, 12);
        let data: Vec<u8> = pattern.iter().copied().cycle().take(2 << 20).collect();
        let single = gzip(&data, 6, 1, ALL_AT_ONCE);
        let parallel = check_gzip(&data, 6, 2, ALL_AT_ONCE);
        assert!(
            parallel.len() < single.len() + 2_000,
            "{} bytes in parallel, {} bytes alone",
            parallel.len(),
            single.len()
        );
    }

    #[test]
    fn gzip_one_byte_writes() {
        let data = mixed(300_000);
        for threads in [1, 3] {
            check_gzip(&data, 6, threads, &[1]);
        }
    }

    #[test]
    fn gzip_flush_keeps_one_member() {
        let data = text_rows(500_000, 3);
        let mut writer = ParallelGzipWriter::new(Vec::new(), 6, 2);
        writer.write_all(&data[..1000]).unwrap();
        writer.flush().unwrap();
        writer.flush().unwrap();
        let seen = writer.get_ref().len();
        assert!(seen > 10);
        // What was flushed decodes already (as a truncated stream).
        let mut partial = Vec::new();
        let _ = flate2::read::GzDecoder::new(&writer.get_ref()[..]).read_to_end(&mut partial);
        assert_eq!(partial, &data[..1000]);
        writer.write_all(&data[1000..]).unwrap();
        writer.flush().unwrap();
        let compressed = writer.finish().unwrap();
        assert_eq!(gunzip_one_member(&compressed), data);
    }

    #[test]
    fn gzip_output_does_not_depend_on_thread_count_or_write_sizes() {
        let data = mixed(1 << 20);
        let reference = gzip(&data, 6, 2, ALL_AT_ONCE);
        for threads in [3, 4] {
            assert!(gzip(&data, 6, threads, ODD_SIZES) == reference);
        }
    }

    #[test]
    fn bzip2_small_inputs_all_levels_and_threads() {
        // Random bytes have (almost) no runs: a level-1 block holds 99_980 of them.
        let fit = 100_000 - 19 - 1;
        let random = random_bytes(2 * fit + 2, 4);
        for level in [1, 9] {
            for threads in 1..=4 {
                for len in [0, 1, 2, fit - 1, fit, fit + 1] {
                    check_bzip2(&random[..len], level, threads, ALL_AT_ONCE);
                }
            }
        }
        for threads in [2, 3] {
            check_bzip2(&random[..2 * fit], 1, threads, &[4096]);
            check_bzip2(&random[..2 * fit + 2], 1, threads, ODD_SIZES);
        }
    }

    #[test]
    fn bzip2_empty_is_the_standard_empty_stream() {
        for threads in [1, 2] {
            let compressed = bzip2(b"", 9, threads, ALL_AT_ONCE);
            assert_eq!(compressed, b"BZh9\x17\x72\x45\x38\x50\x90\0\0\0\0");
            assert!(bunzip_one_stream(&compressed).is_empty());
        }
    }

    #[test]
    fn bzip2_chunks_are_exactly_one_block() {
        // Runs of exactly 4 expand most in RLE1 (5 bytes for 4); runs of 255 and 256
        // cross the run length limit.
        let mut runs4 = Vec::new();
        for index in 0..100_000u32 {
            runs4.extend([(index % 251) as u8; 4]);
        }
        let mut long_runs = Vec::new();
        for index in 0..16_000u32 {
            let len = [255, 256, 254, 4, 3, 260, 510, 511][index as usize % 8];
            long_runs.extend(std::iter::repeat_n((index % 5) as u8, len));
        }
        for data in [&runs4, &long_runs] {
            for threads in [2, 3] {
                check_bzip2(data, 1, threads, ODD_SIZES);
            }
            // Whatever the worker found, the writer cut chunks that libbzip2 kept whole.
            let mut blocks = Vec::new();
            let mut rle = Rle1Counter::new(100_000 - 19 - 1);
            let mut rest = &data[..];
            while !rest.is_empty() {
                let taken = rle.take(rest);
                assert!(taken > 0);
                rle.reset();
                let before = blocks.len();
                bzip2_blocks(1, &rest[..taken], &mut blocks).unwrap();
                assert_eq!(blocks.len(), before + 1, "a chunk made several blocks");
                rest = &rest[taken..];
            }
        }
    }

    #[test]
    fn bzip2_random_zeros_and_mixed() {
        let random = random_bytes(1_500_000, 5);
        let zeros = vec![0u8; 12 << 20];
        let mixed = mixed(1_500_000);
        for (level, threads) in [(1, 2), (9, 3)] {
            check_bzip2(&random, level, threads, ALL_AT_ONCE);
            check_bzip2(&mixed, level, threads, ODD_SIZES);
        }
        check_bzip2(&mixed, 1, 4, &[1]);
        check_bzip2(&mixed, 9, 1, ODD_SIZES);
        for (level, threads) in [(1, 2), (9, 4)] {
            let compressed = check_bzip2(&zeros, level, threads, ALL_AT_ONCE);
            assert!(compressed.len() < 2_000, "{} bytes", compressed.len());
        }
    }

    #[test]
    fn bzip2_output_does_not_depend_on_thread_count_or_write_sizes() {
        let data = mixed(600_000);
        let reference = bzip2(&data, 1, 2, ALL_AT_ONCE);
        for threads in [3, 4] {
            assert!(bzip2(&data, 1, threads, ODD_SIZES) == reference);
        }
    }

    #[test]
    fn bzip2_flush_keeps_one_stream() {
        let data = text_rows(300_000, 6);
        let mut writer = ParallelBzip2Writer::new(Vec::new(), 1, 2);
        writer.write_all(&data[..1000]).unwrap();
        writer.flush().unwrap();
        writer.flush().unwrap();
        assert!(writer.get_ref().len() > 10);
        writer.write_all(&data[1000..]).unwrap();
        writer.flush().unwrap();
        let compressed = writer.finish().unwrap();
        assert_eq!(bunzip_one_stream(&compressed), data);
    }

    #[test]
    fn bit_writer_splices_at_every_offset() {
        let source = random_bytes(40, 8);
        for lead in 0..8 {
            for count in [0, 1, 7, 8, 9, 100, 319, 320] {
                let mut bits = BitWriter::default();
                bits.put_bits(0b1011_0110 >> (8 - lead), lead);
                bits.append(&source, count);
                bits.put_bits(0b101, 3);
                bits.pad();
                let total = u64::from(lead) + count + 3;
                assert_eq!(bits.bytes.len() as u64, total.div_ceil(8));
                for bit in 0..count {
                    assert_eq!(
                        read_bits(&bits.bytes, u64::from(lead) + bit, 1),
                        read_bits(&source, bit, 1)
                    );
                }
                assert_eq!(read_bits(&bits.bytes, u64::from(lead) + count, 3), 0b101);
            }
        }
    }

    /// Accepts `left` bytes, then fails every write.
    struct FailAfter {
        left: usize,
    }

    impl Write for FailAfter {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "upload failed"));
            }
            let taken = data.len().min(self.left);
            self.left -= taken;
            Ok(taken)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `body` on a thread and fails if it does not end within a minute.
    fn without_hanging(body: impl FnOnce() + Send + 'static) {
        let (done, ended) = mpsc::channel();
        let runner = thread::spawn(move || {
            body();
            let _ = done.send(());
        });
        match ended.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => runner.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(panic) = runner.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the writer hung"),
        }
    }

    /// Feeds `data` to the writer made by `make` over a failing inner writer; the error
    /// must come out of write, flush or finish.
    fn check_inner_error<W: Write>(
        data: &[u8],
        make: impl Fn(FailAfter) -> W,
        finish: impl Fn(W) -> io::Result<FailAfter>,
    ) {
        for fail_after in [0, 10, 5_000, 200_000] {
            let mut writer = make(FailAfter { left: fail_after });
            let mut error = None;
            for piece in data.chunks(50_000) {
                if let Err(e) = writer.write_all(piece) {
                    error = Some(e);
                    break;
                }
            }
            let error = match error {
                Some(error) => {
                    // Later calls fail too, and dropping does not hang.
                    assert!(writer.write_all(b"more").is_err());
                    assert!(writer.flush().is_err());
                    error
                }
                None => finish(writer).err().expect("finish should fail"),
            };
            assert!(
                error.kind() == io::ErrorKind::BrokenPipe || error.to_string().contains("earlier"),
                "{error}"
            );
        }
    }

    #[test]
    fn inner_errors_surface_without_hanging() {
        without_hanging(|| {
            let data = mixed(2 << 20);
            for threads in [1, 2, 4] {
                check_inner_error(
                    &data,
                    |inner| ParallelGzipWriter::new(inner, 6, threads),
                    ParallelGzipWriter::finish,
                );
                check_inner_error(
                    &data[..700_000],
                    |inner| ParallelBzip2Writer::new(inner, 1, threads),
                    ParallelBzip2Writer::finish,
                );
            }
        });
    }

    #[test]
    fn dropping_unfinished_writers_stops_their_threads() {
        without_hanging(|| {
            let data = random_bytes(1 << 20, 9);
            let started = Instant::now();
            let mut gzip = ParallelGzipWriter::new(Vec::new(), 9, 4);
            gzip.write_all(&data).unwrap();
            drop(gzip);
            let mut bzip2 = ParallelBzip2Writer::new(Vec::new(), 9, 4);
            bzip2.write_all(&data).unwrap();
            drop(bzip2);
            assert!(started.elapsed() < Duration::from_secs(30));
        });
    }

    #[test]
    fn inner_writer_needs_not_be_send() {
        let data = text_rows(400_000, 10);
        let shared = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, data: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().write(data)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut writer = ParallelGzipWriter::new(Shared(shared.clone()), 6, 2);
        writer.write_all(&data).unwrap();
        writer.finish().unwrap();
        assert_eq!(gunzip_one_member(&shared.borrow()), data);
    }

    /// Python's decompressors stop at the end of the first member / stream: all the input
    /// must be consumed with nothing unused.
    #[test]
    fn python_reads_one_member_and_one_stream() {
        let python = std::path::Path::new("/usr/bin/python3");
        if !python.exists() {
            eprintln!("note: /usr/bin/python3 not found, skipping the Python check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = mixed(1_200_000);
        let mut cases = Vec::new();
        for (level, threads) in [(9, 2), (1, 3)] {
            cases.push(("gz", gzip(&data, level, threads, ODD_SIZES), data.clone()));
            cases.push(("bz2", bzip2(&data, level, threads, ODD_SIZES), data.clone()));
        }
        cases.push(("gz", gzip(b"", 6, 2, ALL_AT_ONCE), Vec::new()));
        cases.push(("bz2", bzip2(b"", 9, 2, ALL_AT_ONCE), Vec::new()));
        let script = r#"
import bz2, sys, zlib
kind, path = sys.argv[1], sys.argv[2]
raw = open(path, 'rb').read()
d = zlib.decompressobj(wbits=31) if kind == 'gz' else bz2.BZ2Decompressor()
out = d.decompress(raw)
assert d.eof, 'not at the end of the stream'
assert d.unused_data == b'', 'data after the first member/stream'
print(len(out), zlib.crc32(out))
"#;
        for (index, (kind, compressed, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("case{index}.{kind}"));
            std::fs::write(&path, compressed).unwrap();
            let output = std::process::Command::new(python)
                .args(["-c", script, kind])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "python on case {index}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let expected = format!("{} {}\n", expected.len(), crc32fast::hash(expected));
            assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
        }
    }

    /// `cargo test --release -p barman-cloud --lib compression::parallel -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark"]
    fn benchmark() {
        let data = text_rows(64 << 20, 11);
        let mib = data.len() as f64 / f64::from(1 << 20);
        println!(
            "input: {mib:.0} MiB of pgbench-like rows, {} cores",
            thread::available_parallelism().map_or(0, |n| n.get())
        );
        let report = |name: &str, compress: &dyn Fn() -> Vec<u8>, check: &dyn Fn(&[u8])| {
            // Best of two: the machine may be shared.
            let mut seconds = f64::MAX;
            let mut compressed = Vec::new();
            for _ in 0..2 {
                let started = Instant::now();
                compressed = compress();
                seconds = seconds.min(started.elapsed().as_secs_f64());
            }
            println!(
                "{name:<34} {:>7.1} MB/s  {:>10} bytes ({:.3}%)",
                data.len() as f64 / 1e6 / seconds,
                compressed.len(),
                compressed.len() as f64 * 100.0 / data.len() as f64,
            );
            check(&compressed);
        };
        let gz_check = |c: &[u8]| assert!(gunzip_one_member(c) == data);
        let bz_check = |c: &[u8]| assert!(bunzip_one_stream(c) == data);
        for level in [6, 9] {
            report(
                &format!("flate2 GzEncoder level {level}"),
                &|| {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                    e.write_all(&data).unwrap();
                    e.finish().unwrap()
                },
                &gz_check,
            );
            for threads in [1, 2, 4] {
                report(
                    &format!("ParallelGzipWriter level {level} ×{threads}"),
                    &|| gzip(&data, level, threads, &[1 << 20]),
                    &gz_check,
                );
            }
        }
        report(
            "bzip2 BzEncoder level 9",
            &|| {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(9));
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            },
            &bz_check,
        );
        for threads in [1, 2, 4] {
            report(
                &format!("ParallelBzip2Writer level 9 ×{threads}"),
                &|| bzip2(&data, 9, threads, &[1 << 20]),
                &bz_check,
            );
        }
    }
}
