//! The server's WAL commands: `put-wal`, `archive-wal`, `get-wal`, and `cron` (which
//! starts archive-wal in the background). Each one picks its server as Barman does
//! (unknown, inactive and disabled servers), maps the server's configuration onto the
//! library's paths and settings, calls `barman_cloud::server`, and prints Barman's
//! messages.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use barman_cloud::Error;
use barman_cloud::compression::{Compression, CompressionLevel};
use barman_cloud::server::archive::{ArchiveOutcome, ArchiveSettings, archive_incoming};
use barman_cloud::server::config::{Config, ServerConfig, Value};
use barman_cloud::server::get_wal::{
    WalOutput, candidate_paths, parse_requested_name, peek, send_wal, ssh_host_suffix,
};
use barman_cloud::server::home::ServerHome;
use barman_cloud::server::lock::LockFile;
use barman_cloud::server::paths::WalArchivePaths;
use barman_cloud::server::put_wal::{Received, put_wal};

use super::args::GetWalArgs;
use super::output::Output;
use super::{emit, report_stop};

/// Exit code of get-wal for an invalid WAL name or an unusable output directory.
const BAD_INPUT: u8 = 3;

/// How a single-server command treats inactive and disabled servers (the flags of
/// Barman's `get_server`).
#[derive(Clone, Copy)]
pub(super) struct Policy {
    /// Inactive: say `Skipping inactive server` and stop with success.
    skip_inactive: bool,
    /// Inactive: an error.
    inactive_is_error: bool,
    /// Disabled (a configuration error): an error, Barman's first reason.
    disabled_is_error: bool,
}

const ARCHIVE_WAL: Policy = Policy {
    skip_inactive: true,
    inactive_is_error: false,
    disabled_is_error: true,
};
const PUT_WAL: Policy = Policy {
    skip_inactive: false,
    inactive_is_error: true,
    disabled_is_error: true,
};
const GET_WAL: Policy = Policy {
    skip_inactive: false,
    inactive_is_error: false,
    disabled_is_error: true,
};

/// The catalog commands (list-backups aside): inactive and disabled servers are served.
pub(super) const CATALOG: Policy = Policy {
    skip_inactive: false,
    inactive_is_error: false,
    disabled_is_error: false,
};
/// `recover`: inactive servers recover too, disabled ones are refused.
pub(super) const RECOVER: Policy = Policy {
    skip_inactive: false,
    inactive_is_error: false,
    disabled_is_error: true,
};

/// The server a command runs on, or the exit code when it must not run.
pub(super) fn get_server(
    config: &Config,
    name: &str,
    policy: Policy,
    out: &mut Output,
) -> Result<ServerConfig, u8> {
    if name == "all" {
        out.error(
            "You cannot use 'all' in a single server context",
            "barman.cli",
        );
        return Err(out.close());
    }
    let mut warnings = Vec::new();
    let configs = config.server_configs(&mut warnings);
    emit(warnings, out);
    let configs = configs.map_err(|e| report_stop(&e, out))?;
    if !configs.errors.is_empty() {
        for error in &configs.errors {
            out.error(error, "barman.cli");
        }
        return Err(out.close());
    }
    let Some(mut server) = configs.servers.into_iter().find(|s| s.name == name) else {
        out.error(&format!("Unknown server '{name}'"), "barman.cli");
        return Err(out.close());
    };
    emit(server.initialise(), out);
    if !server.active {
        if policy.skip_inactive && !policy.inactive_is_error {
            out.info(&format!("Skipping inactive server '{name}'"));
            return Err(out.close());
        }
        if policy.inactive_is_error {
            out.error(&format!("Inactive server: {name}"), "barman.cli");
            return Err(out.close());
        }
    }
    // Barman reports the first reason only.
    if policy.disabled_is_error
        && server.disabled
        && let Some(first) = server.msg_list.first()
    {
        out.error(first, "barman.cli");
        return Err(out.close());
    }
    Ok(server)
}

/// Where the server's WAL archive lives, as its configuration says.
pub(super) fn archive_paths(server: &ServerConfig) -> WalArchivePaths {
    ServerHome::from_config(server).wal
}

/// `compression` and `compression_level` of the server. Barman's aliases of gzip and
/// bzip2 (`pigz`, `pygzip`, `pybzip2`) store the same format; `custom` is not supported.
pub(super) fn archive_settings(server: &ServerConfig) -> Result<ArchiveSettings, String> {
    let compression = match server.compression.as_deref() {
        None | Some("") => None,
        Some("gzip" | "pigz" | "pygzip") => Some(Compression::Gzip),
        Some("bzip2" | "pybzip2") => Some(Compression::Bzip2),
        Some("xz") => Some(Compression::Xz),
        Some("zstd") => Some(Compression::Zstd),
        Some("lz4") => Some(Compression::Lz4),
        Some("snappy") => Some(Compression::Snappy),
        Some(other) => {
            return Err(format!(
                "compression '{other}' of server '{}' is not supported by barman-rs",
                server.name
            ));
        }
    };
    let level = match &server.compression_level {
        Some(Value::Int(i)) => {
            CompressionLevel::Exact((*i).clamp(i32::MIN.into(), i32::MAX.into()) as i32)
        }
        Some(Value::Text(text)) => CompressionLevel::parse(text).map_err(|e| e.to_string())?,
        _ => CompressionLevel::Medium,
    };
    Ok(ArchiveSettings {
        compression,
        level,
        batch_size: usize::try_from(server.archiver_batch_size).unwrap_or(0),
    })
}

/// An unexpected failure, as Barman's main loop reports exceptions.
fn exception(error: &Error, out: &mut Output) -> u8 {
    out.exception(
        &format!("{error}\nSee log file for more details."),
        "barman.cli",
    );
    out.close()
}

/// Python's text for an `OSError` on `path`: `[Errno 2] No such file or directory: 'p'`.
fn os_error(error: &io::Error, path: &Path) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    match error.raw_os_error() {
        Some(code) => format!("[Errno {code}] {text}: '{}'", path.display()),
        None => format!("{text}: '{}'", path.display()),
    }
}

fn ssh_suffix() -> String {
    ssh_host_suffix(std::env::var("SSH_CONNECTION").ok().as_deref())
}

/// `put-wal SERVER [-t]`: a tar stream on stdin into `incoming/`.
pub(super) fn put_wal_command(config: &Config, name: &str, test: bool, out: &mut Output) -> u8 {
    let server = match get_server(config, name, PUT_WAL, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    if test {
        out.info(&format!(
            "Ready to accept WAL files for the server {}",
            server.name
        ));
        return out.close();
    }
    let paths = archive_paths(&server);
    let stdin = io::stdin();
    match put_wal(&paths, stdin.lock(), &ssh_suffix()) {
        Ok(report) => {
            for warning in &report.warnings {
                out.warning(warning, "barman.server");
            }
            for file in &report.files {
                if let Received::Duplicate { message, .. } = file {
                    out.info(message);
                }
            }
            out.close()
        }
        Err(Error::Refused(message)) => {
            out.error(&message, "barman.server");
            out.close()
        }
        Err(other) => exception(&other, out),
    }
}

/// `archive-wal SERVER`: `incoming/` filed into the archive.
pub(super) fn archive_wal_command(config: &Config, name: &str, out: &mut Output) -> u8 {
    let server = match get_server(config, name, ARCHIVE_WAL, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    if !server.archiver {
        // Only the file archiver exists here; a streaming-only server has nothing to
        // file from `incoming/`.
        return out.close();
    }
    let settings = match archive_settings(&server) {
        Ok(settings) => settings,
        Err(message) => {
            out.error(&message, "barman.server");
            return out.close();
        }
    };
    let paths = archive_paths(&server);
    match archive_incoming(&paths, &settings) {
        Ok(outcome) => {
            for line in outcome.lines(true) {
                out.info(&line);
            }
            match outcome {
                ArchiveOutcome::Ran(report) => match &report.failure {
                    Some(error) => exception(error, out),
                    None => {
                        // WAITING_FOR_WALS backups whose WALs are now all archived: DONE.
                        let home = ServerHome::from_config(&server);
                        let reporter = super::backup::OutputReporter {
                            out: std::cell::RefCell::new(&mut *out),
                            logger: "barman.backup",
                        };
                        let checked =
                            barman_cloud::server::backup::check_waiting_backups(&home, &reporter);
                        if let Err(error) = checked {
                            return exception(&error, out);
                        }
                        out.close()
                    }
                },
                ArchiveOutcome::Busy { .. } => out.close(),
            }
        }
        Err(error) => exception(&error, out),
    }
}

/// Standard output that remembers a closed pipe, so that ends quietly.
struct StdoutSink {
    inner: io::StdoutLock<'static>,
    broken: bool,
}

impl Write for StdoutSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .write(buf)
            .inspect_err(|e| self.broken |= e.kind() == io::ErrorKind::BrokenPipe)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .inspect_err(|e| self.broken |= e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// `get-wal SERVER WAL_NAME [...]`.
pub(super) fn get_wal_command(config: &Config, args: &GetWalArgs, out: &mut Output) -> u8 {
    let server = match get_server(config, &args.server, GET_WAL, out) {
        Ok(server) => server,
        Err(code) => return code,
    };
    if args.test {
        out.info(&format!(
            "Ready to retrieve WAL files from the server {}",
            server.name
        ));
        return out.close();
    }
    if let Some(compression) = args.compression
        && args.keep_compression
    {
        out.error(
            &format!("argument `{compression}` not allowed with argument `keep-compression`"),
            "barman.cli",
        );
        return out.close();
    }
    let suffix = ssh_suffix();
    let wal = match parse_requested_name(&args.wal_name, &suffix) {
        Ok(wal) => wal,
        Err(error) => {
            let message = match error {
                Error::InvalidInput(message) => message,
                other => other.to_string(),
            };
            out.error_exit_code = BAD_INPUT;
            out.error(&message, "barman.server");
            return out.close();
        }
    };
    let paths = archive_paths(&server);
    if let Some(count) = args.peek {
        for name in peek(&paths, &wal, count) {
            out.info(&name);
        }
        return out.close();
    }
    let how = match (args.keep_compression, args.compression) {
        (true, _) => WalOutput::AsStored,
        (false, Some("gzip")) => WalOutput::Compressed(Compression::Gzip),
        (false, Some(_)) => WalOutput::Compressed(Compression::Bzip2),
        (false, None) => WalOutput::Plain,
    };
    let level = CompressionLevel::Medium;
    let found = candidate_paths(&paths, &wal, args.partial)
        .into_iter()
        .find(|p| p.exists());
    let sending = |destination: &str, out: &mut Output| {
        if let Some(path) = &found {
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let message = format!(
                "Sending WAL '{base}' for server '{}' {destination}{suffix}",
                server.name
            );
            out.log.record(20, "barman.server", &message);
            message
        } else {
            String::new()
        }
    };
    match &args.output_directory {
        Some(directory) => {
            let destination = Path::new(directory).join(wal.as_str());
            let description = format!("into '{}' file", destination.display());
            let temp = Path::new(directory).join(format!(
                ".{}.barman-rs-{}.tmp",
                wal.as_str(),
                std::process::id()
            ));
            let mut file = match File::create(&temp) {
                Ok(file) => file,
                Err(e) => {
                    out.error_exit_code = BAD_INPUT;
                    out.error(
                        &format!(
                            "Unable to open '{}' file{suffix}: {}",
                            destination.display(),
                            os_error(&e, &destination)
                        ),
                        "barman.server",
                    );
                    return out.close();
                }
            };
            // With an output directory, Barman says what it sends on stdout.
            let message = sending(&description, out);
            if !message.is_empty() {
                out.info(&message);
            }
            let sent = send_wal(&paths, &wal, args.partial, how, level, &suffix, &mut file)
                .and_then(|_| file.sync_all().map_err(|e| Error::io(&temp, e)))
                .and_then(|()| {
                    std::fs::rename(&temp, &destination).map_err(|e| Error::io(&destination, e))
                })
                .and_then(|()| barman_cloud::durable::sync_dir(Path::new(directory)));
            drop(file);
            let _ = std::fs::remove_file(&temp);
            finish_get_wal(sent, out)
        }
        None => {
            sending("to standard output", out);
            let mut sink = StdoutSink {
                inner: io::stdout().lock(),
                broken: false,
            };
            let sent = send_wal(&paths, &wal, args.partial, how, level, &suffix, &mut sink)
                .and_then(|_| {
                    sink.flush()
                        .map_err(|e| Error::Failed(format!("writing WAL: {e}")))
                });
            if sent.is_err() && sink.broken {
                // The reader went away: nothing more to say to anyone.
                return 1;
            }
            finish_get_wal(sent, out)
        }
    }
}

fn finish_get_wal(sent: Result<(), Error>, out: &mut Output) -> u8 {
    match sent {
        Ok(()) => out.close(),
        Err(Error::Missing(message)) => {
            out.error(&message, "barman.server");
            out.close()
        }
        Err(error) => exception(&error, out),
    }
}

/// `cron`: for each server Barman handles, start archive-wal in the background.
pub(super) fn cron_command(config: &Config, keep_descriptors: bool, out: &mut Output) -> u8 {
    let lock_dir = config
        .barman_lock_directory
        .as_ref()
        .or(config.barman_home.as_ref())
        .map(PathBuf::from)
        .unwrap_or_default();
    // The configuration-changes queue is processed under this lock (not implemented
    // yet: the lock is taken so a concurrent config-update sees cron as Barman).
    match LockFile::try_acquire(&lock_dir.join(".config-update.lock")) {
        Ok(Some(_lock)) => {}
        Ok(None) => out.warning(
            "another process is updating barman configuration files",
            "barman.cli",
        ),
        Err(error) => return exception(&error, out),
    }
    let mut warnings = Vec::new();
    let configs = config.server_configs(&mut warnings);
    emit(warnings, out);
    let configs = match configs {
        Ok(configs) => configs,
        Err(error) => return report_stop(&error, out),
    };
    if !configs.errors.is_empty() {
        for error in &configs.errors {
            out.error(error, "barman.cli");
        }
        return out.close();
    }
    let mut servers = Vec::new();
    for mut server in configs.servers {
        emit(server.initialise(), out);
        if server.disabled {
            out.info(&format!(
                "Skipping temporarily disabled server '{}'",
                server.name
            ));
            continue;
        }
        servers.push(server);
    }
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    for server in &servers {
        if !server_cron(config, server, keep_descriptors, out) {
            // A locked snapshot stopped this server's retention (Barman's whole cron
            // would end here; the other servers still get theirs).
            out.error_occurred = true;
        }
    }
    if config.lock_directory_cleanup {
        lock_files_cleanup(&lock_dir, out);
    }
    out.close()
}

/// One server's part of cron, under its cron lock. `false`: a locked snapshot stopped
/// its retention.
fn server_cron(
    config: &Config,
    server: &ServerConfig,
    keep_descriptors: bool,
    out: &mut Output,
) -> bool {
    let paths = archive_paths(server);
    let cron_lock = paths.lock_dir.join(format!(".{}-cron.lock", server.name));
    let _cron = match LockFile::try_acquire(&cron_lock) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            out.info(&format!(
                "Another cron process is already running on server {}. Skipping to the \
                 next server",
                server.name
            ));
            return true;
        }
        Err(error) => {
            out.error(&lock_error(&error, &cron_lock), "barman.server");
            return true;
        }
    };
    // Inactive servers only stop their receive-wal (not run by barman-rs); passive
    // nodes sync from their primary (not supported yet).
    if !server.active || server.passive_node {
        return true;
    }
    archive_step(config, server, &paths, keep_descriptors, out);
    cron_check_backup(server, out);
    super::delete::enforce_retention(&config.config_file, server, out)
}

/// Barman's `cron_check_backup`: the oldest WAITING_FOR_WALS backup is announced when its
/// backup-ID lock is free, then checked. Barman starts `check-backup` in the background;
/// the check is cheap (xlog.db and the archive's files), so it runs here, under the same
/// lock, and the archive-wal just started repeats it once it has filed the new WALs.
fn cron_check_backup(server: &ServerConfig, out: &mut Output) {
    let home = ServerHome::from_config(server);
    let waiting = barman_cloud::server::home::load_backups(&home)
        .into_iter()
        .find(|b| b.status == Some(barman_cloud::catalog::BackupStatus::WaitingForWals))
        .and_then(|b| b.backup_id);
    let Some(id) = waiting else {
        return;
    };
    match LockFile::try_acquire(&home.backup_id_lock(&id)) {
        // Printed, not logged, as Barman does.
        Ok(Some(_lock)) => out.info(&format!(
            "Starting check-backup for backup {id} of server {}",
            server.name
        )),
        _ => return,
    }
    let reporter = super::backup::OutputReporter {
        out: std::cell::RefCell::new(&mut *out),
        logger: "barman.backup",
    };
    if let Err(error) = barman_cloud::server::backup::check_waiting_backups(&home, &reporter) {
        out.error(&error.to_string(), "barman.server");
    }
}

fn lock_error(error: &Error, path: &Path) -> String {
    match error {
        Error::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            format!("Permission denied, unable to access '{}'", path.display())
        }
        Error::Io { source, .. } => os_error(source, path),
        other => other.to_string(),
    }
}

/// `barman -c CONF -q archive-wal SERVER`, ourselves, detached: own session, stdin
/// (and unless `keep_descriptors`, stdout and stderr) on /dev/null, not waited for.
fn spawn_archive_wal(config_file: &Path, server: &str, keep_descriptors: bool) -> io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg0("barman")
        .arg("-c")
        .arg(config_file)
        .arg("-q")
        .arg("archive-wal")
        .arg(server)
        .stdin(Stdio::null());
    if !keep_descriptors {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map(drop)
}

/// cron's archive-wal step for one server: start `archive-wal` in the background unless
/// one is running.
fn archive_step(
    config: &Config,
    server: &ServerConfig,
    paths: &WalArchivePaths,
    keep_descriptors: bool,
    out: &mut Output,
) {
    let archive_lock = paths.archive_wal_lock();
    match LockFile::try_acquire(&archive_lock) {
        Ok(Some(lock)) => {
            out.info(&format!(
                "Starting WAL archiving for server {}",
                server.name
            ));
            drop(lock);
        }
        Ok(None) => {
            out.info(&format!(
                "Another archive-wal process is already running on server {}. Skipping \
                 to the next server",
                server.name
            ));
            return;
        }
        Err(error) => {
            out.error(&lock_error(&error, &archive_lock), "barman.server");
            return;
        }
    }
    if let Err(error) = spawn_archive_wal(&config.config_file, &server.name, keep_descriptors) {
        out.error(&os_error(&error, Path::new("barman")), "barman.server");
    }
}

/// The server `barman delete` works on (Barman's `get_server` with inactive servers
/// accepted and disabled ones an error).
pub(super) fn server_for_delete(
    config: &Config,
    name: &str,
    out: &mut Output,
) -> Result<ServerConfig, u8> {
    get_server(config, name, GET_WAL, out)
}

/// Barman's `lock_files_cleanup`: every `.*.lock` of the lock directory that nobody
/// holds is removed.
fn lock_files_cleanup(lock_dir: &Path, out: &mut Output) {
    out.log
        .record(20, "barman.utils", "Cleaning up lockfiles directory.");
    let Ok(entries) = std::fs::read_dir(lock_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.ends_with(".lock")) {
            continue;
        }
        let path = entry.path();
        if let Ok(Some(lock)) = LockFile::try_acquire(&path) {
            let _ = std::fs::remove_file(&path);
            drop(lock);
        }
    }
}
