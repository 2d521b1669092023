//! Test harness: the storage servers started by `scripts/test.sh`, the reference Barman
//! commands, our binary, and throwaway PostgreSQL clusters.
//!
//! The servers are required: a test that cannot reach them fails (with a hint to run
//! `scripts/test.sh`), it never passes silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests through scripts/test.sh, which starts the storage servers")
    })
}

/// A storage service the commands can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Local,
    S3,
    Azure,
    Gcs,
}

pub const ALL_SERVICES: [Service; 4] = [Service::Local, Service::S3, Service::Azure, Service::Gcs];

/// One destination (a fresh bucket or directory) on a service, with the arguments and
/// environment that both our commands and Barman's need to reach it.
#[derive(Debug, Clone)]
pub struct Destination {
    pub service: Service,
    pub url: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{n}-{}", std::process::id(), nanos % 100_000)
}

impl Destination {
    /// A new, not yet created bucket on `service` (a directory path for `Local`).
    pub fn new(service: Service, tag: &str) -> Self {
        let bucket = unique_name(tag).to_lowercase();
        let mut env = Vec::new();
        let mut args = Vec::new();
        let mut dir = None;
        let url = match service {
            Service::Local => {
                let temp = tempfile::Builder::new()
                    .prefix("barman-rs-it-")
                    .tempdir()
                    .unwrap();
                make_world_accessible(temp.path());
                let url = format!("file://{}/{bucket}", temp.path().display());
                dir = Some(std::sync::Arc::new(temp));
                url
            }
            Service::S3 => {
                args.extend([
                    "--endpoint-url".into(),
                    required_env("BARMAN_RS_TEST_S3_ENDPOINT"),
                ]);
                env.extend([
                    ("AWS_ACCESS_KEY_ID".into(), "test".into()),
                    ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
                    ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
                ]);
                format!("s3://{bucket}/pg")
            }
            Service::Azure => {
                args.extend(["--cloud-provider".into(), "azure-blob-storage".into()]);
                env.push((
                    "AZURE_STORAGE_CONNECTION_STRING".into(),
                    required_env("BARMAN_RS_TEST_AZURE_CONNECTION_STRING"),
                ));
                format!(
                    "{}/{bucket}/pg",
                    required_env("BARMAN_RS_TEST_AZURE_BLOB_ENDPOINT")
                )
            }
            Service::Gcs => {
                args.extend(["--cloud-provider".into(), "google-cloud-storage".into()]);
                env.push((
                    "STORAGE_EMULATOR_HOST".into(),
                    required_env("BARMAN_RS_TEST_GCS_ENDPOINT"),
                ));
                env.push(("GOOGLE_CLOUD_PROJECT".into(), "barman-rs-test".into()));
                format!("gs://{bucket}/pg")
            }
        };
        Destination {
            service,
            url,
            args,
            env,
            _dir: dir,
        }
    }

    /// A `file://` destination at `path`, which the caller owns.
    pub fn local_at(path: &Path) -> Self {
        Destination {
            service: Service::Local,
            url: format!("file://{}", path.display()),
            args: Vec::new(),
            env: Vec::new(),
            _dir: None,
        }
    }

    /// Creates the bucket with our check-wal-archive (which creates missing buckets).
    pub fn create(service: Service, tag: &str) -> Self {
        let dest = Self::new(service, tag);
        let out = dest.ours("barman-cloud-check-wal-archive", &["srv"]);
        assert_success(&out, "check-wal-archive creating the bucket");
        dest
    }

    fn command(&self, program: &Path, prefix: &[&str], name: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(prefix);
        let _ = name;
        cmd.args(&self.args);
        cmd.args(extra);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs one of our commands: `<command> <args> <url> <rest...>`.
    pub fn ours(&self, command: &str, rest: &[&str]) -> Output {
        self.ours_with(command, &[], rest)
    }

    pub fn ours_with(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        self.command_for_ours(command, options, rest)
            .output()
            .expect("run barman-rs")
    }

    /// The command line of [`Self::ours_with`], for tests that run it in the background.
    pub fn command_for_ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        let mut extra: Vec<&str> = options.to_vec();
        extra.push(&self.url);
        extra.extend(rest);
        self.command(&our_binary(), &[command], command, &extra)
    }

    /// Runs the reference Python Barman command with the same destination.
    pub fn barman(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        assert_ne!(
            self.service,
            Service::Local,
            "Barman has no file:// support"
        );
        let program = PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join(command);
        let mut extra: Vec<&str> = options.to_vec();
        extra.push(&self.url);
        extra.extend(rest);
        self.command(&program, &[], command, &extra)
            .output()
            .expect("run Python Barman")
    }

    /// The bucket or container (the root directory for `Local`).
    pub fn bucket(&self) -> String {
        let rest = match self.service {
            Service::Local => return self.url.trim_start_matches("file://").to_string(),
            Service::Azure => return self.url.rsplit('/').nth(1).unwrap().to_string(),
            Service::S3 => self.url.trim_start_matches("s3://"),
            Service::Gcs => self.url.trim_start_matches("gs://"),
        };
        rest.split('/').next().unwrap().to_string()
    }

    /// `python tests/it/<script> <service>` with the Python of Barman's virtualenv (its
    /// cloud SDKs) and this destination's connection environment.
    pub fn sdk_script(&self, script: &str) -> Command {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it")
            .join(script);
        self.sdk_python(&[path.as_os_str()])
    }

    /// `python <program...> <service>` (a script path, or `-c CODE`) with the Python of
    /// Barman's virtualenv and this destination's connection environment.
    pub fn sdk_python(&self, program: &[&std::ffi::OsStr]) -> Command {
        let python = Path::new(&required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("python");
        let service = match self.service {
            Service::S3 => "s3",
            Service::Azure => "azure",
            Service::Gcs => "gcs",
            Service::Local => panic!("{program:?} is for object stores"),
        };
        let mut cmd = Command::new(python);
        cmd.args(program).arg(service);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if self.service == Service::S3 {
            cmd.env("S3_ENDPOINT", required_env("BARMAN_RS_TEST_S3_ENDPOINT"));
        }
        cmd
    }

    /// Runs `bucket_tool.py` (the SDKs Barman uses) against this destination's service.
    pub fn bucket_tool(&self, args: &[&str]) -> Output {
        let out = self
            .sdk_script("bucket_tool.py")
            .args(args)
            .output()
            .expect("run bucket_tool.py");
        assert_success(&out, &format!("bucket_tool.py {args:?}"));
        out
    }

    /// Every object key of the bucket (of the directory for `Local`), sorted.
    pub fn object_keys(&self) -> Vec<String> {
        if self.service == Service::Local {
            return local_files(Path::new(&self.bucket()));
        }
        let out = self.bucket_tool(&["list", &self.bucket()]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Environment assignments as shell text, for scripts run by PostgreSQL.
    pub fn shell_env(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("export {k}='{v}'\n"))
            .collect()
    }

    pub fn shell_args(&self) -> String {
        self.args.iter().map(|a| format!("'{a}' ")).collect()
    }
}

pub fn our_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_barman-rs"))
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Our command and Barman's ended with the same exit code.
pub fn assert_same_exit(ours: &Output, barman: &Output, what: &str) {
    assert_eq!(
        ours.status.code(),
        barman.status.code(),
        "{what}: exit codes differ\nours: {}\nBarman: {}",
        stderr(ours),
        stderr(barman)
    );
}

/// Runs `command` with both tools: exit codes and stdout must be the same. Returns ours.
pub fn assert_same_output(
    dest: &Destination,
    command: &str,
    options: &[&str],
    rest: &[&str],
) -> Output {
    let ours = dest.ours_with(command, options, rest);
    let barman = dest.barman(command, options, rest);
    let what = format!("{command} {options:?} {rest:?}");
    assert_same_exit(&ours, &barman, &what);
    assert_eq!(stdout(&ours), stdout(&barman), "{what}: outputs differ");
    ours
}

/// WAL-like content: a random-looking head (xorshift, deterministic per seed) followed by
/// zeros, as in a segment switched before it filled up.
pub fn wal_content(seed: u64, len: usize, random_len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = vec![0u8; len];
    for chunk in data[..random_len.min(len)].chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    data
}

/// A WAL segment `name` of `len` bytes (a valid segment size) that wal-restore accepts:
/// [`wal_content`] under the long page header PostgreSQL 15 writes at its start
/// (magic, `XLP_LONG_HEADER`, timeline, page address, system id, segment and page size).
pub fn segment_content(name: &str, seed: u64, len: usize, random_len: usize) -> Vec<u8> {
    let hex = |at: usize| u64::from_str_radix(&name[at..at + 8], 16).unwrap();
    let mut data = wal_content(seed, len, random_len);
    data[..40].fill(0);
    data[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
    data[2..4].copy_from_slice(&2u16.to_le_bytes());
    data[4..8].copy_from_slice(&(hex(0) as u32).to_le_bytes());
    data[8..16].copy_from_slice(&((hex(8) << 32) + hex(16) * len as u64).to_le_bytes());
    data[24..32].copy_from_slice(&seed.to_le_bytes());
    data[32..36].copy_from_slice(&(len as u32).to_le_bytes());
    data[36..40].copy_from_slice(&8192u32.to_le_bytes());
    data
}

pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("barman-rs-{tag}-"))
        .tempdir()
        .unwrap();
    make_world_accessible(dir.path());
    dir
}

pub fn make_world_accessible(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// Every object key below `root` of a local destination (relative paths, sorted).
pub fn local_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// A small tmpfs, unmounted on drop (needs root, which the test script and CI have).
pub struct TinyFilesystem(pub tempfile::TempDir);

impl TinyFilesystem {
    pub fn mount(size: &str) -> Self {
        let dir = temp_dir("tinyfs");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root: run the suite through scripts/test.sh as root"
        );
        TinyFilesystem(dir)
    }
}

impl Drop for TinyFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// A TCP relay to a storage server that can be cut at a chosen moment, as if the server
/// had stopped: open connections are shut down and new ones closed at once.
pub struct CuttableRelay {
    pub port: u16,
    state: std::sync::Arc<RelayState>,
    accept_thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct RelayState {
    cut: std::sync::atomic::AtomicBool,
    stopping: std::sync::atomic::AtomicBool,
    connections: std::sync::Mutex<Vec<std::net::TcpStream>>,
    /// Cut everything, before relaying them, at the first client bytes holding one of these.
    cut_on: Vec<Vec<u8>>,
}

impl RelayState {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Copies client bytes to the server until one of `state.cut_on` shows up in them (also
/// across reads), which cuts every connection before those bytes are relayed.
fn relay_client_bytes(
    from: &mut std::net::TcpStream,
    to: &mut std::net::TcpStream,
    state: &RelayState,
) {
    use std::io::{Read, Write};
    let keep = state.cut_on.iter().map(Vec::len).max().unwrap_or(1) - 1;
    let mut window: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        window.extend_from_slice(&buffer[..n]);
        if state.cut_on.iter().any(|pattern| {
            window
                .windows(pattern.len())
                .any(|w| w == pattern.as_slice())
        }) {
            state.cut();
            return;
        }
        if to.write_all(&buffer[..n]).is_err() {
            return;
        }
        let drop_len = window.len().saturating_sub(keep);
        window.drain(..drop_len);
    }
}

impl CuttableRelay {
    /// Relays 127.0.0.1:<new port> to `target` (`host:port`) and cuts by itself, before
    /// relaying them, at the first request bytes that hold one of `patterns` (a key in a
    /// request line or a DeleteObjects body): the cut falls exactly between two requests
    /// of the client, whatever the timing.
    pub fn start_cutting_on(target: &str, patterns: &[&str]) -> Self {
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::new(RelayState {
            cut_on: patterns.iter().map(|p| p.as_bytes().to_vec()).collect(),
            ..RelayState::default()
        });
        let target = target.to_string();
        let shared = state.clone();
        let accept_thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if shared.cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                shared
                    .connections
                    .lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let relay_state = shared.clone();
                std::thread::spawn(move || {
                    relay_client_bytes(&mut client_in, &mut server_out, &relay_state);
                    let _ = server_out.shutdown(Shutdown::Write);
                });
                let (mut server_in, mut client_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(Shutdown::Write);
                });
            }
        });
        CuttableRelay {
            port,
            state,
            accept_thread: Some(accept_thread),
        }
    }
}

impl Drop for CuttableRelay {
    fn drop(&mut self) {
        self.state.cut();
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping` and ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// (backup ID, status) of every backup, from our backup-list's JSON.
pub fn backup_ids(dest: &Destination) -> Vec<(String, String)> {
    let out = dest.ours_with("barman-cloud-backup-list", &["--format", "json"], &["srv"]);
    assert_success(&out, "backup-list");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |entry: &str, key: &str| {
        entry
            .split(&format!("\"{key}\": \""))
            .nth(1)
            .map(|r| r.split('"').next().unwrap().to_string())
            .unwrap_or_default()
    };
    // One JSON object per backup, each starting with its first key.
    text.split("{\"backup_label\": ")
        .skip(1)
        .map(|entry| (field(entry, "backup_id"), field(entry, "status")))
        .collect()
}

/// Runs `command` with no stdin and returns what it did.
pub fn run(mut command: Command) -> Output {
    command
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs every command at once; their outputs, in order.
pub fn run_all(commands: Vec<Command>) -> Vec<Output> {
    use std::process::Stdio;
    let children: Vec<std::process::Child> = commands
        .into_iter()
        .map(|mut c| {
            c.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"))
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Waits until the local time (the backup ID clock of both tools) is past `backup_id`, so
/// that the next backup cannot get the same ID.
pub fn wait_past(backup_id: &str) {
    loop {
        let now = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
        if now.as_str() > backup_id {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The names in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `out`'s stderr contains `text` (our ERROR lines are prefixed differently from Barman's:
/// tests compare the text after the prefix).
pub fn assert_mentions(out: &Output, text: &str, what: &str) {
    assert!(
        stderr(out).contains(text),
        "{what}: stderr lacks {text:?}\nstderr: {}",
        stderr(out)
    );
}
