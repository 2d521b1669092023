//! `barman-wal-restore BARMAN_HOST SERVER_NAME WAL_NAME WAL_DEST`: PostgreSQL's
//! restore_command for a `barman` server. Fetches the WAL file with `barman get-wal`
//! through `ssh` into a temp file next to WAL_DEST, decompresses it when it arrives
//! compressed, and renames it into place once on disk. With `--parallel N`, asks the
//! server (`get-wal --peek N`) which files follow and fetches those into the spool
//! directory meanwhile; later requests for them are served from there.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use barman_cloud::compression::{Compression, StreamError, magic};

use crate::argparse::{Arg, flag, valued};

use super::{
    Spec, Stop, connectivity_test, create_temp_next_to, error_exit, exit_code_of, py_error,
    ssh_base, sync_dir_of,
};

const USAGE: &str = "usage: barman-wal-restore [-h] [-V] [-U USER] [--port PORT] [-s SECONDS]
                          [-p JOBS] [--spool-dir SPOOL_DIR] [-P]
                          [-z | -j | --keep-compression] [-c CONFIG] [-t]
                          BARMAN_HOST SERVER_NAME WAL_NAME WAL_DEST";

const HELP: &str = "PostgreSQL restore_command for a Barman server: fetches WAL_NAME of
SERVER_NAME with 'barman get-wal' over ssh and writes it to WAL_DEST.

positional arguments:
  BARMAN_HOST           the Barman server's host
  SERVER_NAME           the server's name in the Barman configuration
  WAL_NAME              the WAL file to fetch (restore_command's %f)
  WAL_DEST              where to write it (restore_command's %p)

options:
  -h, --help            show this help and exit
  -V, --version         show the version and exit
  -U USER, --user USER  ssh user on the Barman host (default: barman)
  --port PORT           ssh port on the Barman host
  -s SECONDS, --sleep SECONDS
                        wait SECONDS after a failed request (default: 0)
  -p JOBS, --parallel JOBS
                        also fetch the next JOBS-1 files into the spool
                        directory (default: 0, off)
  --spool-dir SPOOL_DIR
                        the spool directory (default: /var/tmp/walrestore)
  -P, --partial         also fetch partial WAL files (.partial)
  -z, --gzip            transfer gzip-compressed (deprecated)
  -j, --bzip2           transfer bzip2-compressed (deprecated)
  --keep-compression    transfer as the server stores it, decompress here
  -c CONFIG, --config CONFIG
                        Barman configuration file on the Barman host
  -t, --test            only check the connection and that the server can
                        serve WAL files (WAL_NAME and WAL_DEST are ignored)";

const OPTS: &[Arg] = &[
    valued(&["-U", "--user"], "user"),
    valued(&["--port"], "port"),
    valued(&["-s", "--sleep"], "sleep"),
    valued(&["-p", "--parallel"], "parallel"),
    valued(&["--spool-dir"], "spool-dir"),
    flag(&["-P", "--partial"], "partial"),
    flag(&["-z", "--gzip"], "gzip"),
    flag(&["-j", "--bzip2"], "bzip2"),
    flag(&["--keep-compression"], "keep-compression"),
    valued(&["-c", "--config"], "config"),
    flag(&["-t", "--test"], "test"),
];

const SPEC: Spec = Spec {
    prog: "barman-wal-restore",
    usage: USAGE,
    help: HELP,
    opts: OPTS,
    positionals: &["BARMAN_HOST", "SERVER_NAME", "WAL_NAME", "WAL_DEST"],
};

const DEFAULT_SPOOL_DIR: &str = "/var/tmp/walrestore";

struct Config {
    user: String,
    port: Option<String>,
    sleep: i64,
    parallel: i64,
    spool_dir: PathBuf,
    partial: bool,
    /// `gzip` or `bzip2` (`-z`/`-j`).
    compression: Option<&'static str>,
    keep_compression: bool,
    config: Option<String>,
    test: bool,
    host: String,
    server: String,
    wal_name: String,
    wal_dest: PathBuf,
}

fn parse(args: &[String]) -> Result<Config, Stop> {
    let parsed = SPEC.parse(args)?;
    // -z, -j and --keep-compression exclude each other (the same one twice is fine).
    let group = ["gzip", "bzip2", "keep-compression"];
    let display = |k: &str| match k {
        "gzip" => "-z/--gzip",
        "bzip2" => "-j/--bzip2",
        _ => "--keep-compression",
    };
    let mut first: Option<&str> = None;
    for (key, _) in &parsed.values {
        if !group.contains(key) {
            continue;
        }
        match first {
            None => first = Some(key),
            Some(f) if f != *key => {
                return Err(SPEC.error(&format!(
                    "argument {}: not allowed with argument {}",
                    display(key),
                    display(f)
                )));
            }
            _ => {}
        }
    }
    let sleep = SPEC.int(&parsed, "sleep", 0)?;
    let parallel = SPEC.int(&parsed, "parallel", 0)?;
    let p = &parsed.positionals;
    Ok(Config {
        user: parsed.get("user").unwrap_or("barman").to_string(),
        port: parsed.get("port").map(str::to_string),
        sleep,
        parallel,
        spool_dir: PathBuf::from(parsed.get("spool-dir").unwrap_or(DEFAULT_SPOOL_DIR)),
        partial: parsed.has("partial"),
        compression: match first {
            Some("gzip") => Some("gzip"),
            Some("bzip2") => Some("bzip2"),
            _ => None,
        },
        keep_compression: first == Some("keep-compression"),
        config: parsed.get("config").map(str::to_string),
        test: parsed.has("test"),
        host: p[0].clone(),
        server: p[1].clone(),
        wal_name: p[2].clone(),
        wal_dest: PathBuf::from(&p[3]),
    })
}

/// `ssh ... barman [--config FILE] get-wal [OPTIONS] 'SERVER' 'WAL'`, the get-wal part
/// one argument as Barman builds it.
fn ssh_command(config: &Config, wal_name: &str, peek: i64) -> Command {
    let mut command = ssh_base(config.port.as_deref(), &config.user, &config.host);
    if let Some(file) = &config.config {
        command.arg(format!("--config {file}"));
    }
    let mut options: Vec<String> = Vec::new();
    if config.test {
        options.push("--test".into());
    }
    if peek != 0 {
        options.push(format!("--peek '{peek}'"));
    }
    if let Some(codec) = config.compression {
        options.push(format!("--{codec}"));
    }
    if config.keep_compression {
        options.push("--keep-compression".into());
    }
    if config.partial {
        options.push("--partial".into());
    }
    let options = if options.is_empty() {
        String::new()
    } else {
        format!("{} ", options.join(" "))
    };
    command.arg(format!("get-wal {options}'{}' '{wal_name}'", config.server));
    command
}

pub fn main(args: &[String]) -> i32 {
    let config = match parse(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if config.test {
        return connectivity_test(ssh_command(&config, "dummy_wal_name", 0), "get-wal");
    }
    if let Some(codec) = config.compression {
        println!(
            "WARNING: `{codec}` option is deprecated and will be removed in future versions. \
             For WAL compression, please make sure to enable it directly on the Barman \
             server via the `compression` configuration option"
        );
    }
    let dest = &config.wal_dest;
    if dest.is_dir() {
        return error_exit(
            &format!("WAL_DEST cannot be a directory: {}", dest.display()),
            3,
            0,
        );
    }
    let (file, temp) = match create_temp_next_to(dest) {
        Ok(pair) => pair,
        Err(e) => {
            return error_exit(
                &format!(
                    "Cannot open '{}' (WAL_DEST) for writing: {}",
                    dest.display(),
                    py_error(&e, Some(dest))
                ),
                3,
                0,
            );
        }
    };
    let mut temp = TempFile(Some(temp));
    let code = restore(&config, file, &mut temp);
    let _ = io::stdout().flush();
    code
}

fn restore(config: &Config, file: File, temp: &mut TempFile) -> i32 {
    let dest = &config.wal_dest;
    let spooled = config.spool_dir.join(&config.wal_name);
    if spooled.exists() {
        return match move_into_place(&spooled, dest, temp) {
            Ok(()) => 0,
            Err(e) => error_exit(
                &format!(
                    "Failure moving {} to {}: {e}",
                    spooled.display(),
                    dest.display()
                ),
                2,
                0,
            ),
        };
    }
    let mut additional: Vec<String> = Vec::new();
    if config.parallel != 0 {
        if !config.spool_dir.exists()
            && let Err(e) = fs::create_dir(&config.spool_dir)
        {
            return error_exit(
                &format!(
                    "Cannot create '{}' directory: {}",
                    config.spool_dir.display(),
                    py_error(&e, Some(&config.spool_dir))
                ),
                2,
                0,
            );
        }
        additional = match peek(config) {
            Ok(names) => names,
            Err(message) => {
                return error_exit(
                    &format!("Impossible to invoke remote get-wal --peek: {message}"),
                    2,
                    0,
                );
            }
        };
        if additional.first() != Some(&config.wal_name) {
            return error_exit(
                &format!("The required file is not available: {}", config.wal_name),
                2,
                0,
            );
        }
        additional.remove(0);
    }
    let main = std::thread::scope(|scope| {
        for name in &additional {
            scope.spawn(move || prefetch(config, name));
        }
        fetch(
            config,
            &config.wal_name,
            file,
            temp.0.clone().expect("temp"),
            dest,
        )
    });
    match main {
        Ok(0) => {
            temp.0 = None;
            0
        }
        Ok(255) => error_exit("Connection problem with ssh", 2, config.sleep),
        Ok(code) => error_exit(
            "Remote 'barman get-wal' command has failed!",
            code,
            config.sleep,
        ),
        Err(Failure::Spawn(message)) => error_exit(
            &format!("Error executing \"ssh\": {message}"),
            2,
            config.sleep,
        ),
        Err(Failure::Local(message)) => error_exit(&message, 2, config.sleep),
    }
}

/// `get-wal --peek N`: the names the server would serve from WAL_NAME on.
fn peek(config: &Config) -> Result<Vec<String>, String> {
    let output = ssh_command(config, &config.wal_name, config.parallel)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| py_error(&e, None))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Fetches `name` into the spool directory; on any failure nothing is left there.
fn prefetch(config: &Config, name: &str) {
    let target = config.spool_dir.join(name);
    let Ok((file, temp)) = create_temp_next_to(&target) else {
        return;
    };
    let mut guard = TempFile(Some(temp.clone()));
    if let Ok(0) = fetch(config, name, file, temp, &target) {
        guard.0 = None;
    }
}

enum Failure {
    Spawn(String),
    Local(String),
}

/// Runs get-wal for `name` with its output in `temp` (open as `file`); when it
/// succeeds, decompresses the file if it came compressed and renames it to `target`,
/// durably. Returns ssh's exit code.
fn fetch(
    config: &Config,
    name: &str,
    file: File,
    temp: PathBuf,
    target: &Path,
) -> Result<i32, Failure> {
    let status = ssh_command(config, name, 0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .status()
        .map_err(|e| Failure::Spawn(py_error(&e, None)))?;
    let code = exit_code_of(&status);
    if code != 0 {
        return Ok(code);
    }
    let local = |e: io::Error, path: &Path| Failure::Local(py_error(&e, Some(path)));
    let codec = magic::identify_file(&temp).map_err(|e| local(e, &temp))?;
    let final_temp = match codec {
        None => {
            File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(|e| local(e, &temp))?;
            temp
        }
        Some(codec) => {
            let result = decompress(codec, &temp, target);
            let _ = fs::remove_file(&temp);
            result?
        }
    };
    if let Err(e) = fs::rename(&final_temp, target).and_then(|()| sync_dir_of(target)) {
        let _ = fs::remove_file(&final_temp);
        return Err(local(e, target));
    }
    Ok(0)
}

/// Decompresses `compressed` into a new temp file next to `target`, on disk.
fn decompress(codec: Compression, compressed: &Path, target: &Path) -> Result<PathBuf, Failure> {
    let (file, out) =
        create_temp_next_to(target).map_err(|e| Failure::Local(py_error(&e, Some(target))))?;
    let mut guard = TempFile(Some(out.clone()));
    let input =
        File::open(compressed).map_err(|e| Failure::Local(py_error(&e, Some(compressed))))?;
    let mut writer = BufWriter::with_capacity(128 * 1024, file);
    codec
        .decompress(BufReader::new(input), &mut writer)
        .map_err(|e| match e {
            StreamError::Read(e) => Failure::Local(format!(
                "Cannot decompress the {} WAL file {}: {e}",
                codec.name(),
                compressed.display()
            )),
            StreamError::Write(e) => Failure::Local(py_error(&e, Some(&out))),
        })?;
    writer
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .map_err(|e| Failure::Local(py_error(&e, Some(&out))))?;
    guard.0 = None;
    Ok(out)
}

/// Moves a spooled file to WAL_DEST: a rename, or a copy through `temp` (already
/// created next to WAL_DEST) when the spool is on another file system.
fn move_into_place(spooled: &Path, dest: &Path, temp: &mut TempFile) -> Result<(), String> {
    let show = |e: io::Error, p: &Path| py_error(&e, Some(p));
    match fs::rename(spooled, dest) {
        Ok(()) => {
            sync_dir_of(dest).map_err(|e| show(e, dest))?;
            return Ok(());
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(e) => return Err(show(e, spooled)),
    }
    let temp_path = temp.0.clone().expect("temp");
    let mut input = File::open(spooled).map_err(|e| show(e, spooled))?;
    let mut output = fs::OpenOptions::new()
        .write(true)
        .open(&temp_path)
        .map_err(|e| show(e, &temp_path))?;
    let mut buffer = vec![0u8; 128 * 1024];
    loop {
        let n = input.read(&mut buffer).map_err(|e| show(e, spooled))?;
        if n == 0 {
            break;
        }
        output
            .write_all(&buffer[..n])
            .map_err(|e| show(e, &temp_path))?;
    }
    output.sync_all().map_err(|e| show(e, &temp_path))?;
    fs::rename(&temp_path, dest).map_err(|e| show(e, dest))?;
    temp.0 = None;
    sync_dir_of(dest).map_err(|e| show(e, dest))?;
    fs::remove_file(spooled).map_err(|e| show(e, spooled))
}

/// Removes a temp file when dropped, unless taken.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}
