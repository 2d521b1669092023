//! `barman-wal-archive` and `barman-wal-restore`: the PostgreSQL-side clients of a
//! `barman` server (Barman's `barman-cli` package). Each runs `ssh ... barman put-wal`
//! or `ssh ... barman get-wal` and exits with Barman 3.20.1's codes and messages.
//!
//! Their command lines follow Python's argparse (usage, `PROG: error: ...`, exit 2), so
//! they have a small parser of their own rather than clap.

mod archive;
mod restore;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use crate::argparse::{self, Arg, Matched};

pub const NAMES: [&str; 2] = ["barman-wal-archive", "barman-wal-restore"];

/// Runs the client `name` (one of [`NAMES`]) with `argv` (argv[0] first).
pub fn main(name: &str, argv: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = argv
        .into_iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = match name {
        "barman-wal-archive" => archive::main(&args),
        _ => restore::main(&args),
    };
    let _ = io::stdout().flush();
    ExitCode::from((code & 0xff) as u8)
}

/// A command line description: program name, usage text, help body, options and the
/// names of the required positionals.
pub struct Spec {
    pub prog: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    pub opts: &'static [Arg],
    pub positionals: &'static [&'static str],
}

/// Why parsing stopped without arguments to run with: the exit code to use.
pub type Stop = i32;

impl Spec {
    pub fn error(&self, message: &str) -> Stop {
        eprintln!("{}\n{}: error: {message}", self.usage, self.prog);
        2
    }

    /// Parses `args` as argparse would; `-h` and `-V` print and stop with 0.
    pub fn parse(&self, args: &[String]) -> Result<Matched, Stop> {
        let mut matched = match argparse::match_args(args, self.opts, true) {
            Ok(matched) => matched,
            Err(argparse::Stop::Help) => {
                println!("{}\n\n{}", self.usage, self.help);
                return Err(0);
            }
            Err(argparse::Stop::Version) => {
                println!("{} {}", self.prog, crate::BARMAN_VERSION);
                return Err(0);
            }
            Err(argparse::Stop::Error(message)) => return Err(self.error(&message)),
        };
        let wanted = self.positionals.len();
        if matched.positionals.len() < wanted {
            return Err(self.error(&format!(
                "the following arguments are required: {}",
                self.positionals[matched.positionals.len()..].join(", ")
            )));
        }
        let extra: Vec<String> = matched.positionals.drain(wanted..).collect();
        matched.unrecognized.extend(extra);
        if !matched.unrecognized.is_empty() {
            return Err(self.error(&format!(
                "unrecognized arguments: {}",
                matched.unrecognized.join(" ")
            )));
        }
        Ok(matched)
    }

    /// An `int` option (Python's `int()`: surrounding blanks, a sign, `_` separators).
    pub fn int(&self, parsed: &Matched, long: &str, default: i64) -> Result<i64, Stop> {
        let Some(text) = parsed.get(long) else {
            return Ok(default);
        };
        let opt = self
            .opts
            .iter()
            .find(|o| o.key == long)
            .expect("known option");
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
        let valid = !digits.is_empty()
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
        match trimmed.replace('_', "").parse::<i64>() {
            Ok(n) if valid => Ok(n),
            _ => Err(self.error(&format!(
                "argument {}: invalid int value: '{text}'",
                opt.shown()
            ))),
        }
    }
}

/// `ERROR: message` on stderr, then the exit code; with `sleep`, Barman's pause.
pub fn error_exit(message: &str, status: i32, sleep: i64) -> i32 {
    eprintln!("ERROR: {message}");
    if sleep > 0 {
        eprintln!("Sleeping for {sleep} seconds.");
        std::thread::sleep(std::time::Duration::from_secs(sleep as u64));
    }
    status
}

/// The start of an ssh command line as both clients build it:
/// `ssh [-p PORT] -q -T USER@HOST barman`.
pub fn ssh_base(port: Option<&str>, user: &str, host: &str) -> Command {
    let mut command = Command::new("ssh");
    if let Some(port) = port {
        command.args(["-p", port]);
    }
    command.args(["-q", "-T", &format!("{user}@{host}"), "barman"]);
    command
}

/// An OS error as Python prints it: `[Errno N] Text: 'path'`.
pub fn py_error(error: &io::Error, path: Option<&Path>) -> String {
    let Some(code) = error.raw_os_error() else {
        return error.to_string();
    };
    let text = io::Error::from_raw_os_error(code).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text)
        .to_string();
    match path {
        Some(p) => format!("[Errno {code}] {text}: '{}'", p.display()),
        None => format!("[Errno {code}] {text}"),
    }
}

/// `--test`: runs `command` with stderr merged into stdout, prints what it said (and a
/// newline, as Python's `print` does) and exits with its code.
pub fn connectivity_test(mut command: Command, what: &str) -> i32 {
    let (mut reader, writer) = match io::pipe() {
        Ok(pair) => pair,
        Err(e) => return error_exit(&format!("Impossible to invoke remote {what}: {e}"), 2, 0),
    };
    let writer2 = match writer.try_clone() {
        Ok(w) => w,
        Err(e) => return error_exit(&format!("Impossible to invoke remote {what}: {e}"), 2, 0),
    };
    command
        .stdin(Stdio::inherit())
        .stdout(writer)
        .stderr(writer2);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return error_exit(
                &format!("Error executing ssh: {}", py_error(&e, None)),
                2,
                0,
            );
        }
    };
    // The parent's copies of the write end are gone with `command`.
    drop(command);
    let mut output = Vec::new();
    let _ = reader.read_to_end(&mut output);
    let status = child.wait().map(|s| exit_code_of(&s)).unwrap_or(1);
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(&output);
    let _ = stdout.write_all(b"\n");
    status
}

/// A child's exit code as Python's `returncode`, mapped to a process exit status
/// (a signal `-N` exits as `256 - N`, as `sys.exit(-N)` does).
pub fn exit_code_of(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 256 - signal,
        _ => 1,
    }
}

/// Writes `path`'s data and its directory entry to disk.
pub fn sync_dir_of(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// A fresh file next to `target`, created exclusively with mode 0600 (hidden name, so
/// PostgreSQL and Barman ignore it), and its path.
pub fn create_temp_next_to(target: &Path) -> io::Result<(std::fs::File, std::path::PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{base}.barman-rs-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
