//! `barman-wal-archive BARMAN_HOST SERVER_NAME WAL_PATH`: PostgreSQL's archive_command
//! for a `barman` server. Sends the WAL file (compressed first when asked) as the tar
//! stream `barman put-wal` reads, through `ssh`. With `--parallel N`, the next ready
//! segments (their `.ready` markers in `archive_status/`) go along in parallel and a
//! cache file remembers the last one sent, so that PostgreSQL's later requests for them
//! end at once.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use barman_cloud::compression::{Compression, CompressionLevel, StreamError};
use barman_cloud::server::put_wal::{SumsKind, sha256_hex, write_put_wal_tar};
use barman_cloud::wal::name::{WalKind, WalName};

use crate::argparse::{Arg, flag, valued};

use super::{Spec, Stop, connectivity_test, error_exit, exit_code_of, py_error, ssh_base};

const USAGE: &str = "usage: barman-wal-archive [-h] [-V] [-U USER] [--port PORT] [-c CONFIG] [-t]
                          [--md5] [-z] [-j] [--xz] [--snappy] [--zstd] [--lz4]
                          [--compression-level COMPRESSION_LEVEL]
                          [-p PARALLEL]
                          [--prefetch-cache-dir PREFETCH_CACHE_DIR]
                          BARMAN_HOST SERVER_NAME WAL_PATH";

const HELP: &str = "PostgreSQL archive_command for a Barman server: sends WAL_PATH to SERVER_NAME
with 'barman put-wal' over ssh.

positional arguments:
  BARMAN_HOST           the Barman server's host
  SERVER_NAME           the server's name in the Barman configuration
  WAL_PATH              the WAL file to send (archive_command's %p)

options:
  -h, --help            show this help and exit
  -V, --version         show the version and exit
  -U USER, --user USER  ssh user on the Barman host (default: barman)
  --port PORT           ssh port on the Barman host
  -c CONFIG, --config CONFIG
                        Barman configuration file on the Barman host
  -t, --test            only check the connection and that the server accepts
                        WAL files (WAL_PATH is not read)
  --md5                 send an MD5SUMS member instead of SHA256SUMS (for older
                        Barman servers)
  -z, --gzip            compress with gzip before sending
  -j, --bzip2           compress with bzip2 before sending
  --xz                  compress with xz before sending
  --snappy              compress with snappy before sending
  --zstd                compress with zstd before sending
  --lz4                 compress with lz4 before sending
  --compression-level COMPRESSION_LEVEL
                        low, medium, high or an integer for the codec
  -p PARALLEL, --parallel PARALLEL
                        send up to PARALLEL WAL files at once (the requested
                        one and the next ready ones)
  --prefetch-cache-dir PREFETCH_CACHE_DIR
                        where --parallel remembers the last WAL sent (default:
                        /tmp/barman-SERVER_NAME-COMPUTED_HASH)";

const OPTS: &[Arg] = &[
    valued(&["-U", "--user"], "user"),
    valued(&["--port"], "port"),
    valued(&["-c", "--config"], "config"),
    flag(&["-t", "--test"], "test"),
    flag(&["--md5"], "md5"),
    flag(&["-z", "--gzip"], "gzip"),
    flag(&["-j", "--bzip2"], "bzip2"),
    flag(&["--xz"], "xz"),
    flag(&["--snappy"], "snappy"),
    flag(&["--zstd"], "zstd"),
    flag(&["--lz4"], "lz4"),
    valued(&["--compression-level"], "compression-level"),
    valued(&["-p", "--parallel"], "parallel"),
    valued(&["--prefetch-cache-dir"], "prefetch-cache-dir"),
];

const SPEC: Spec = Spec {
    prog: "barman-wal-archive",
    usage: USAGE,
    help: HELP,
    opts: OPTS,
    positionals: &["BARMAN_HOST", "SERVER_NAME", "WAL_PATH"],
};

const CACHE_FILE: &str = "wal-last-archived";

struct Config {
    user: String,
    port: Option<String>,
    config: Option<String>,
    test: bool,
    md5: bool,
    compression: Option<Compression>,
    level: CompressionLevel,
    parallel: i64,
    cache_dir: PathBuf,
    host: String,
    server: String,
    wal_path: PathBuf,
}

fn parse(args: &[String]) -> Result<Config, Stop> {
    let parsed = SPEC.parse(args)?;
    // The last compression flag given wins, as with argparse's store_const.
    let compression = parsed.values.iter().rev().find_map(|(k, _)| match *k {
        "gzip" => Some(Compression::Gzip),
        "bzip2" => Some(Compression::Bzip2),
        "xz" => Some(Compression::Xz),
        "snappy" => Some(Compression::Snappy),
        "zstd" => Some(Compression::Zstd),
        "lz4" => Some(Compression::Lz4),
        _ => None,
    });
    let level =
        match parsed.get("compression-level") {
            None => CompressionLevel::default(),
            Some(text) => match CompressionLevel::parse(text.trim_start_matches('+')) {
                Ok(level) if valid_level(text) => level,
                _ => return Err(SPEC.error(&format!(
                    "argument --compression-level: invalid parse_compression_level value: '{text}'"
                ))),
            },
        };
    let parallel = SPEC.int(&parsed, "parallel", 0)?;
    let p = &parsed.positionals;
    let port = parsed.get("port").map(str::to_string);
    let config = parsed.get("config").map(str::to_string);
    let cache_dir = match parsed.get("prefetch-cache-dir") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            // Scoped to the destination: host, port and configuration file, each as
            // Python prints it (`None` when not given).
            let destination = format!(
                "{}:{}:{}",
                p[0],
                port.as_deref().unwrap_or("None"),
                config.as_deref().unwrap_or("None")
            );
            let hash = sha256_hex(destination.as_bytes());
            PathBuf::from(format!("/tmp/barman-{}-{}", p[1], &hash[..16]))
        }
    };
    Ok(Config {
        user: parsed.get("user").unwrap_or("barman").to_string(),
        port,
        config,
        test: parsed.has("test"),
        md5: parsed.has("md5"),
        compression,
        level,
        parallel,
        cache_dir,
        host: p[0].clone(),
        server: p[1].clone(),
        wal_path: PathBuf::from(&p[2]),
    })
}

/// Barman's level syntax: a symbolic name (any case), digits with optional leading `-`s,
/// or empty.
fn valid_level(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let digits = lower.trim_start_matches('-');
    lower.is_empty()
        || ["low", "medium", "high"].contains(&lower.as_str())
        || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn ssh_command(config: &Config) -> std::process::Command {
    let mut command = ssh_base(config.port.as_deref(), &config.user, &config.host);
    if let Some(file) = &config.config {
        command.arg(format!("--config='{file}'"));
    }
    command.args(["put-wal", &config.server]);
    if config.test {
        command.arg("--test");
    }
    command
}

pub fn main(args: &[String]) -> i32 {
    let config = match parse(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if config.test {
        return connectivity_test(ssh_command(&config), "put-wal");
    }
    if config.wal_path.is_dir() {
        return error_exit(
            &format!(
                "WAL_PATH cannot be a directory: {}",
                config.wal_path.display()
            ),
            2,
            0,
        );
    }
    archive(&config)
}

/// Why sending one WAL file did not succeed.
enum SendError {
    /// ssh could not be run, or the file could not be read or sent.
    Local(String),
    /// ssh ended with this code.
    Remote(i32),
}

impl SendError {
    fn describe(&self) -> String {
        match self {
            SendError::Local(message) => message.clone(),
            SendError::Remote(code) => {
                format!(
                    "ArchiverFailure:Remote 'barman put-wal' command has failed! (exit code {code})"
                )
            }
        }
    }
}

fn archive(config: &Config) -> i32 {
    let mut parallel = config.parallel;
    if parallel > 1 && !cache_dir_is_secure(&config.cache_dir) {
        parallel = 0;
        eprintln!(
            "Cache directory {} is not secure; disabling parallel WAL archiving.",
            config.cache_dir.display()
        );
    }
    let wal_name = file_name(&config.wal_path);
    if parallel > 1 && already_archived(&config.cache_dir, &wal_name) {
        return 0;
    }
    let segment_size = match fs::metadata(&config.wal_path) {
        Ok(meta) => meta.len(),
        Err(e) => {
            let message = py_error(&e, Some(&config.wal_path));
            eprintln!(
                "Archival of WAL file {} failed: {message}",
                config.wal_path.display()
            );
            return error_exit(&format!("Error executing ssh: {message}"), 2, 0);
        }
    };
    let prefetch = if parallel > 1 {
        wals_to_prefetch(&config.wal_path, (parallel - 1) as usize, segment_size)
    } else {
        Vec::new()
    };
    if let Err(error) = send(config, &config.wal_path) {
        eprintln!(
            "Archival of WAL file {} failed: {}",
            config.wal_path.display(),
            error.describe()
        );
        return match error {
            SendError::Local(message) => {
                error_exit(&format!("Error executing ssh: {message}"), 2, 0)
            }
            SendError::Remote(255) => error_exit("Connection problem with ssh", 3, 0),
            SendError::Remote(code) => {
                error_exit("Remote 'barman put-wal' command has failed!", code, 0)
            }
        };
    }
    if prefetch.is_empty() {
        return 0;
    }
    let results: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = prefetch
            .iter()
            .map(|path| scope.spawn(move || send(config, path)))
            .collect();
        handles
            .into_iter()
            .zip(&prefetch)
            .map(|(handle, path)| match handle.join() {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    eprintln!(
                        "Prefetch of WAL file {} failed: {}",
                        path.display(),
                        error.describe()
                    );
                    false
                }
                Err(_) => false,
            })
            .collect()
    });
    // The cache records the last WAL of the unbroken run of successes only: a later
    // one would make PostgreSQL's retry of a failed one look already done.
    let mut last = wal_name;
    for (path, ok) in prefetch.iter().zip(results) {
        if !ok {
            break;
        }
        last = file_name(path);
    }
    if is_segment(&last) {
        write_cache(&config.cache_dir, &last);
    }
    0
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_segment(name: &str) -> bool {
    WalName::try_parse(name).is_some_and(|w| w.kind() == WalKind::Segment)
}

/// Creates the cache directory (0700) if needed and accepts it only if it is a real
/// directory owned by us that nobody else may write to.
fn cache_dir_is_secure(dir: &Path) -> bool {
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        eprintln!("Could not create cache directory {}: {e}", dir.display());
    }
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return false;
    };
    if !meta.is_dir() {
        eprintln!(
            "Cache directory {} is not a regular directory (possibly a symlink); refusing to use it.",
            dir.display()
        );
        return false;
    }
    // SAFETY: getuid cannot fail.
    if meta.uid() != unsafe { libc::getuid() } {
        eprintln!(
            "Cache directory {} is not owned by the current user; refusing to use it.",
            dir.display()
        );
        return false;
    }
    if meta.mode() & 0o022 != 0 {
        eprintln!(
            "Cache directory {} is writable by group or others; refusing to use it.",
            dir.display()
        );
        return false;
    }
    true
}

fn already_archived(cache_dir: &Path, wal_name: &str) -> bool {
    let Ok(text) = fs::read_to_string(cache_dir.join(CACHE_FILE)) else {
        return false;
    };
    let cached = text.trim();
    !cached.is_empty() && is_segment(wal_name) && wal_name <= cached
}

fn write_cache(cache_dir: &Path, wal_name: &str) {
    if !cache_dir_is_secure(cache_dir) {
        return;
    }
    let target = cache_dir.join(CACHE_FILE);
    let result = super::create_temp_next_to(&target).and_then(|(mut file, temp)| {
        let written = file
            .write_all(wal_name.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, &target));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    });
    if let Err(e) = result {
        eprintln!(
            "Failed to write last archived WAL file name to cache file {}: {e}",
            target.display()
        );
    }
}

/// The segments after `wal_path` whose `.ready` marker exists, up to `number`, stopping
/// at the first one without a marker (a marked one whose file is gone is skipped).
fn wals_to_prefetch(wal_path: &Path, number: usize, segment_size: u64) -> Vec<PathBuf> {
    let name = file_name(wal_path);
    if !is_segment(&name) || number == 0 || segment_size == 0 {
        return Vec::new();
    }
    let pg_wal = wal_path.parent().unwrap_or(Path::new("."));
    let status = pg_wal.join("archive_status");
    if !status.is_dir() {
        eprintln!(
            "WARNING: archive_status directory {} does not exist; prefetching skipped.",
            status.display()
        );
        return Vec::new();
    }
    let parse = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
    let (tli, mut log, mut seg) = (parse(&name[..8]), parse(&name[8..16]), parse(&name[16..]));
    let per_log = (0x1_0000_0000u64 / segment_size).max(1);
    let mut found = Vec::new();
    // A bound on names looked at: skipped (recycled) ones do not end the scan.
    for _ in 0..number * 64 {
        if found.len() >= number {
            break;
        }
        if u64::from(seg) + 1 >= per_log {
            seg = 0;
            log = log.wrapping_add(1);
        } else {
            seg += 1;
        }
        let next = format!("{tli:08X}{log:08X}{seg:08X}");
        if !status.join(format!("{next}.ready")).exists() {
            break;
        }
        let path = pg_wal.join(&next);
        if path.exists() {
            found.push(path);
        }
    }
    found
}

/// Sends one WAL file through `ssh ... barman put-wal`.
fn send(config: &Config, wal_path: &Path) -> Result<(), SendError> {
    let name = file_name(wal_path);
    // A compressed copy first, in a private temp file: the tar header needs its size.
    let mut compressed = TempFile(None);
    let source: PathBuf = match config.compression {
        None => wal_path.to_path_buf(),
        Some(codec) => {
            let temp_target = std::env::temp_dir().join(format!("barman-wal-archive-{name}"));
            let (file, temp) = super::create_temp_next_to(&temp_target)
                .map_err(|e| SendError::Local(py_error(&e, None)))?;
            compressed.0 = Some(temp.clone());
            let mut input = fs::File::open(wal_path)
                .map_err(|e| SendError::Local(py_error(&e, Some(wal_path))))?;
            let stream_error = |e: StreamError| match e {
                StreamError::Read(e) => SendError::Local(py_error(&e, Some(wal_path))),
                StreamError::Write(e) => SendError::Local(py_error(&e, Some(&temp))),
            };
            let mut writer = codec
                .compress(config.level, &mut input, BufWriter::new(file))
                .map_err(stream_error)?;
            writer
                .flush()
                .map_err(|e| SendError::Local(py_error(&e, Some(&temp))))?;
            temp
        }
    };
    let mut child = ssh_command(config)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| SendError::Local(py_error(&e, None)))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let sums = if config.md5 {
        SumsKind::Md5
    } else {
        SumsKind::Sha256
    };
    let writer = BufWriter::with_capacity(64 * 1024, stdin);
    let write_error = match write_put_wal_tar(&source, &name, sums, writer) {
        // Dropping our end tells put-wal the stream is complete.
        Ok(mut writer) => writer.flush().err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let status = child
        .wait()
        .map_err(|e| SendError::Local(py_error(&e, None)))?;
    match (exit_code_of(&status), write_error) {
        (0, None) => Ok(()),
        (0, Some(message)) => Err(SendError::Local(message)),
        // ssh stopped reading (it failed, or put-wal refused early): its code says why.
        (code, _) => Err(SendError::Remote(code)),
    }
}

/// Removes a temp file when dropped.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}
