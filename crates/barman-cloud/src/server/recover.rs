//! `barman recover` (`restore`) of a snapshot backup, as Barman 3.20.1's
//! `SnapshotRecoveryExecutor` does it. The user has cloned a disk from each snapshot of
//! the backup, attached the disks to the recovery instance and mounted them where the
//! source disks were; the destination already holds the cloned PGDATA. We check that
//! (locally or through `--remote-ssh-command`), then prepare the directory for recovery:
//! `backup_label`, `.barman-recover.info`, the WALs (copied, or `get-wal`), the recovery
//! settings and signal file, and the dangerous settings of the old server disarmed.
//!
//! Remote files move with rsync over the ssh command, as Barman's do.
//!
//! Beyond Barman: files are written under temporary names, fsynced and renamed, and the
//! directories fsynced at the end (local recoveries). When a step fails after the backup label was put in place, the label
//! and the signal file written by this run are removed again, so that the directory is
//! not left looking ready for recovery (Barman leaves it half-prepared).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use crate::catalog::BackupInfo;
use crate::catalog::backup_info::BackupStatus;
use crate::catalog::pyliteral::repr_str;
use crate::catalog::timestamp;
use crate::error::{Error, Result};
use crate::server::get_wal::{WalOutput, send_wal};
use crate::server::home::ServerHome;
use crate::server::recovery_conf::{self, Assertion, Targets, WalSource};
use crate::server::xlogdb::XlogDb;
use crate::snapshot::SnapshotProvider;
use crate::snapshot::host::{Host, LocalHost, SshHost, shell_quote};
use crate::wal::name::{WalKind, WalName};

/// Where the output of the recovery goes, line by line, as it happens.
pub trait Report {
    fn info(&mut self, line: &str);
    fn warning(&mut self, line: &str);
}

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct RecoverOptions {
    pub destination: String,
    pub remote_ssh_command: Option<String>,
    pub recovery_instance: String,
    pub target_time: Option<String>,
    pub target_xid: Option<String>,
    pub target_lsn: Option<String>,
    pub target_name: Option<String>,
    pub target_immediate: bool,
    pub exclusive: bool,
    pub target_tli: Option<String>,
    pub target_action: Option<String>,
    pub standby_mode: bool,
    /// `get-wal` in `recovery_options`, after `--get-wal`/`--no-get-wal`.
    pub get_wal: bool,
    pub restore_command: Option<String>,
    pub recovery_option_port: Option<String>,
    pub recovery_conf_filename: Option<String>,
    /// `--staging-wal-directory`.
    pub wal_directory: Option<String>,
    pub partial_wal: bool,
    pub parallel_jobs: usize,
    /// `--network-compression`: rsync's `-z` for remote copies.
    pub network_compression: bool,
    /// `--bwlimit` (KiB/s; 0 or absent: none) for remote copies.
    pub bwlimit: Option<i64>,
    pub barman_user: String,
    /// The Barman host's name for barman-wal-restore (Python's `socket.getfqdn()`).
    pub fqdn: String,
}

/// What the recovery did, for Barman's closing report.
#[derive(Debug, Clone)]
pub struct RecoveryResults {
    pub changes: Vec<Assertion>,
    pub warnings: Vec<Assertion>,
    pub missing_files: Vec<String>,
    pub get_wal: bool,
    pub recovery_configuration_file: String,
    pub start_time: DateTime<Local>,
}

/// The configuration files Barman examines (PostgreSQL 9.4 and later).
const CONFIGURATION_FILES: [&str; 2] = ["postgresql.conf", "postgresql.auto.conf"];
/// Files only reported when missing.
const HARDCODED_FILES: [&str; 2] = ["pg_hba.conf", "pg_ident.conf"];

/// The recovery host: this machine, or the one behind `--remote-ssh-command`.
struct Place {
    remote: Option<(String, SshHost)>,
}

impl Place {
    fn host(&self) -> &dyn Host {
        match &self.remote {
            Some((_, host)) => host,
            None => &LocalHost,
        }
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        match &self.remote {
            Some((_, host)) => host.exists(path).await,
            None => Ok(Path::new(path).exists()),
        }
    }

    /// Barman's `create_dir_if_not_exists`: nothing when the directory is there, an error
    /// when something else is; else `mkdir -p`, the last directory with `mode`.
    async fn create_dir(&self, path: &str, mode: Option<u32>) -> Result<()> {
        match &self.remote {
            Some((_, host)) => {
                if host.directory_exists(path).await? {
                    return Ok(());
                }
                let mode = mode.map(|m| format!("{m:o}"));
                let mut args = vec!["-p", path];
                if let Some(mode) = &mode {
                    args.extend(["-m", mode.as_str()]);
                }
                if host.run("mkdir", &args).await?.success {
                    Ok(())
                } else {
                    Err(Error::Failed("mkdir execution failed".to_string()))
                }
            }
            None => {
                if LocalHost.directory_exists(path).await? {
                    return Ok(());
                }
                let mut builder = fs::DirBuilder::new();
                builder.recursive(true);
                if let Some(mode) = mode {
                    builder.mode(mode);
                }
                builder
                    .create(path)
                    .map_err(|e| Error::io(Path::new(path), e))
            }
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        match &self.remote {
            Some((_, host)) => {
                let moved = host.run("mv", &[from, to]).await?;
                if moved.success {
                    Ok(())
                } else {
                    Err(Error::Failed(format!("mv execution failed for {from}")))
                }
            }
            None => fs::rename(from, to).map_err(|e| Error::io(Path::new(from), e)),
        }
    }

    async fn remove(&self, path: &str) {
        match &self.remote {
            Some((_, host)) => {
                let _ = host.run("rm", &["-f", path]).await;
            }
            None => {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// `rsync` over the ssh command (`:` marks the remote side), as Barman's `RsyncPgData`
/// does for single files; `flags` are `-z` and `--bwlimit`.
async fn rsync_with(ssh: &str, flags: &[String], args: &[&str]) -> Result<()> {
    let mut line = format!("rsync -e {}", shell_quote(ssh));
    for flag in flags {
        line.push(' ');
        line.push_str(&shell_quote(flag));
    }
    line.push_str(" -rLKpts");
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    let output = crate::snapshot::host::run_shell(&line).await?;
    if output.code == Some(0) {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "rsync returned {}\nSTDERR: {}",
            output.code.unwrap_or(-1),
            output.stderr.trim_end()
        )))
    }
}

/// A file copy that keeps the source's permission bits (rsync `-p`), written under a
/// temporary name and renamed into place.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    let content = fs::read(from).map_err(|e| Error::io(from, e))?;
    let mode = fs::metadata(from)
        .map_err(|e| Error::io(from, e))?
        .permissions()
        .mode();
    write_file(to, &content, mode & 0o7777)
}

/// Beyond Barman: a file written into the data directory gets the owner of `like` (the
/// file it replaces, or the directory), so that a recovery run as root leaves files the
/// PostgreSQL user can read. Only root can do this; failures are ignored.
fn owned_like(path: &Path, like: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = fs::metadata(like) {
        let _ = std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()));
    }
}

/// [`owned_like`] for `dir` and everything below it.
fn owned_tree(dir: &Path, like: &Path) {
    owned_like(dir, like);
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                owned_tree(&path, like);
            } else {
                owned_like(&path, like);
            }
        }
    }
}

fn write_file(to: &Path, content: &[u8], mode: u32) -> Result<()> {
    let name = to.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = to.with_file_name(format!(
        ".{}.barman-rs.{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(content)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&temp, to)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(|e| Error::io(to, e))
}

/// Python's `repr()` of a target value in the PITR message.
fn target_repr(value: &str) -> String {
    repr_str(value)
}

/// The WAL segment holding `lsn` on timeline `tli` (Barman's
/// `location_to_xlogfile_name_offset`).
fn lsn_segment(lsn: &str, tli: u32, segment_size: u64) -> Result<String> {
    let invalid = || Error::Config(format!("Invalid LSN: {lsn}"));
    let (hi, lo) = lsn.split_once('/').ok_or_else(invalid)?;
    let hi = u64::from_str_radix(hi, 16).map_err(|_| invalid())?;
    let lo = u64::from_str_radix(lo, 16).map_err(|_| invalid())?;
    let position = (hi << 32) | lo;
    let per_id = 0x1_0000_0000 / segment_size;
    let segment = position / segment_size;
    Ok(format!(
        "{tli:08X}{:08X}{:08X}",
        segment / per_id,
        segment % per_id
    ))
}

/// Whether a target time names its zone: a second zone cannot be appended to a time
/// that has one (a date alone gets a midnight first).
fn explicit_zone(text: &str) -> bool {
    timestamp::parse(&format!("{text} UTC")).is_err()
        && timestamp::parse(&format!("{text} 00:00:00 UTC")).is_err()
}

/// Everything the recovery computed before touching the destination.
struct Plan {
    is_pitr: bool,
    targets: Targets,
    wal_dest: String,
    /// Timeline the WAL selection stops at.
    target_tli: Option<u32>,
}

/// Barman's `_set_pitr_targets`: the targets checked and normalised, the PITR message.
fn plan_targets(
    home: &ServerHome,
    info: &BackupInfo,
    options: &RecoverOptions,
    report: &mut dyn Report,
) -> Result<Plan> {
    let dest = &options.destination;
    let tli =
        match options.target_tli.as_deref() {
            None => None,
            Some("current") => Some(info.timeline.unwrap_or(1) as u32),
            Some("latest") => {
                let latest = crate::server::check::latest_archived(&home.wal);
                Some(
                    latest.keys().next_back().copied().ok_or_else(|| {
                        Error::Config("max() arg is an empty sequence".to_string())
                    })?,
                )
            }
            Some(number) => {
                Some(number.parse::<u32>().map_err(|_| {
                    Error::Config(format!("{number} is not a valid timeline keyword"))
                })?)
            }
        };
    let mut targets = Targets {
        exclusive: options.exclusive,
        tli: options.target_tli.clone(),
        ..Default::default()
    };
    let mut shown: Vec<String> = Vec::new();
    let is_pitr = options.target_time.is_some()
        || options.target_xid.is_some()
        || options.target_tli.is_some()
        || options.target_name.is_some()
        || options.target_immediate
        || options.target_lsn.is_some();
    if !is_pitr {
        if options.target_action.is_some() {
            return Err(Error::Config(
                "Can't enable recovery target action when PITR is not required".into(),
            ));
        }
        let wal_dest = format!("{dest}/pg_wal");
        return Ok(Plan {
            is_pitr,
            targets,
            wal_dest,
            target_tli: tli,
        });
    }
    if let Some(text) = &options.target_time {
        let parsed = timestamp::parse(text).map_err(|e| {
            Error::Config(format!(
                "Unable to parse the target time parameter {}: {e}",
                repr_str(text)
            ))
        })?;
        if !explicit_zone(text) {
            report.warning(
                "No time zone has been specified through '--target-time' command-line \
                 option. Barman assumed the same time zone from the Barman host.",
            );
        }
        if let Some(end) = &info.end_time
            && *end > parsed
        {
            return Err(Error::Config(format!(
                "The requested target time {} is before the backup end time {}",
                timestamp::python_str(&parsed),
                timestamp::python_str(end)
            )));
        }
        let normalised = timestamp::python_str(&parsed);
        shown.push(format!("time: {}", target_repr(&normalised)));
        targets.time = Some(normalised);
    }
    if let Some(xid) = &options.target_xid {
        shown.push(format!("xid: {}", target_repr(xid)));
        targets.xid = Some(xid.clone());
    }
    if let Some(lsn) = &options.target_lsn {
        shown.push(format!("lsn: {}", target_repr(lsn)));
        targets.lsn = Some(lsn.clone());
    }
    if let Some(tli) = tli {
        shown.push(format!("timeline: {}", target_repr(&tli.to_string())));
    }
    if let Some(name) = &options.target_name {
        shown.push(format!("name: {}", target_repr(name)));
        targets.name = Some(name.clone());
    }
    if options.target_immediate {
        shown.push("immediate: True".to_string());
        targets.immediate = true;
    }
    match options.target_action.as_deref() {
        None => {}
        Some(action @ ("pause" | "shutdown" | "promote")) => {
            targets.action = Some(action.to_string());
        }
        Some(other) => {
            return Err(Error::Config(format!(
                "Illegal target action '{other}' for this version of PostgreSQL"
            )));
        }
    }
    report.info(&format!("Doing PITR. Recovery target {}", shown.join(", ")));
    let wal_dest = options
        .wal_directory
        .clone()
        .unwrap_or_else(|| format!("{dest}/barman_wal"));
    Ok(Plan {
        is_pitr,
        targets,
        wal_dest,
        target_tli: tli,
    })
}

/// Barman's `get_required_xlog_files`: history files, and the segments from the backup's
/// first one on the target timeline (or earlier), up to the end of the archive, or to
/// the target LSN's segment, or to the backup's last one with `--target-immediate`.
fn required_wals(
    home: &ServerHome,
    info: &BackupInfo,
    options: &RecoverOptions,
    plan: &Plan,
) -> Result<Vec<String>> {
    let begin = info.begin_wal.clone().unwrap_or_default();
    let mut end = info.end_wal.clone().unwrap_or_default();
    let tli = match plan.target_tli {
        Some(tli) => tli,
        None => crate::server::check::latest_archived(&home.wal)
            .keys()
            .next_back()
            .copied()
            .unwrap_or(1),
    };
    let segment_size = info.xlog_segment_size.unwrap_or(16 << 20).max(1) as u64;
    let target_wal = match &options.target_lsn {
        Some(lsn) => Some(lsn_segment(lsn, tli, segment_size)?),
        None => None,
    };
    let entries = XlogDb::new(&home.wal).entries()?;
    let mut wanted = Vec::new();
    let mut stopped = false;
    for entry in entries {
        let name = entry.name;
        let kind = WalName::try_parse(&name).map(|w| w.kind());
        if kind == Some(WalKind::History) {
            wanted.push(name);
            continue;
        }
        if stopped {
            continue;
        }
        if name < begin {
            continue;
        }
        let Some(wal_tli) = name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()) else {
            continue;
        };
        if wal_tli > tli {
            continue;
        }
        if name > end {
            if options.target_immediate {
                stopped = true;
                continue;
            }
            if let Some(target) = &target_wal
                && name > *target
            {
                stopped = true;
                continue;
            }
            end = name.clone();
        }
        if !options.partial_wal && kind == Some(WalKind::Partial) {
            continue;
        }
        wanted.push(name);
    }
    Ok(wanted)
}

/// Copies (decompressed) `names` from the archive into `dir`; `.partial` files lose their
/// suffix.
fn copy_wals(home: &ServerHome, names: &[String], dir: &Path) -> Result<()> {
    for name in names {
        let wal = WalName::parse(name)?;
        let partial = wal.kind() == WalKind::Partial;
        let target = dir.join(wal.without_partial());
        let temp = dir.join(format!(".{}.barman-rs", wal.without_partial()));
        let mut file = fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        send_wal(
            &home.wal,
            &wal,
            partial,
            WalOutput::Plain,
            crate::compression::CompressionLevel::Medium,
            "",
            &mut file,
        )?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))?;
    }
    Ok(())
}

/// A private working directory (`barman_recovery-*` in the temporary directory), removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "barman_recovery-{}-{nanos:08x}",
            std::process::id()
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Files this run created in the destination, removed again if it fails.
#[derive(Default)]
struct Written {
    paths: Vec<String>,
}

/// Barman reports its failed recovery preconditions as errors ([`Error::Refused`] here);
/// what the cloud or the host answered otherwise stays an [`Error::Provider`] (Barman
/// lets those exceptions through).
fn precondition(error: Error) -> Error {
    const PRECONDITIONS: [&str; 4] = [
        "The following snapshots are not attached to recovery instance",
        "Error checking mount points: ",
        "Error checking mount options: ",
        "Recovery directory '",
    ];
    match error {
        Error::Provider(text) if PRECONDITIONS.iter().any(|p| text.starts_with(p)) => {
            Error::Refused(text)
        }
        other => other,
    }
}

/// Checks the recovery instance and prepares `options.destination` for recovery of the
/// snapshot backup `info`. Errors carry Barman's message.
pub async fn recover_snapshot(
    home: &ServerHome,
    server_name: &str,
    info: &BackupInfo,
    options: &RecoverOptions,
    provider: &dyn SnapshotProvider,
    report: &mut dyn Report,
) -> Result<RecoveryResults> {
    let Some(snapshots) = &info.snapshots_info else {
        return Err(Error::Refused(format!(
            "Backup {} is not a snapshot backup",
            info.backup_id.as_deref().unwrap_or_default()
        )));
    };
    // PostgreSQL 11 and older read recovery.conf, which Barman writes for them; we do
    // not, so such backups are refused before anything is touched.
    if info.version.is_some_and(|v| v < 120000) {
        return Err(Error::Refused(format!(
            "Backup {} is of PostgreSQL {}: barman-rs recovers PostgreSQL 12 and later only",
            info.backup_id.as_deref().unwrap_or_default(),
            info.version.unwrap_or_default()
        )));
    }
    let place = Place {
        remote: match &options.remote_ssh_command {
            Some(ssh) => Some((ssh.clone(), SshHost::connect(ssh).await?)),
            None => None,
        },
    };
    let dest = options.destination.as_str();
    crate::restore::snapshot::check_recovery_instance(
        snapshots,
        &options.recovery_instance,
        provider,
        place.host(),
        Path::new(dest),
    )
    .await
    .map_err(precondition)?;
    place.create_dir(dest, Some(0o700)).await.map_err(|e| {
        Error::Failed(format!(
            "unable to initialise destination directory '{dest}': {e}"
        ))
    })?;

    let start_time = Local::now();
    let backup_id = info.backup_id.clone().unwrap_or_default();
    report.info(&format!(
        "Starting {} restore for server {server_name} using backup {backup_id}",
        if place.remote.is_some() {
            "remote"
        } else {
            "local"
        }
    ));
    report.info(&format!("Destination directory: {dest}"));
    if let Some(ssh) = &options.remote_ssh_command {
        report.info(&format!("Remote command: {ssh}"));
    }
    let waiting = info.status == Some(BackupStatus::WaitingForWals);
    if !options.get_wal && waiting {
        report.warning(
            "IMPORTANT: You have requested a recovery operation for a backup that does not \
             have yet all the WAL files that are required for consistency.",
        );
    }
    if options.partial_wal {
        if options.get_wal {
            report.warning(
                "The --partial-wal option was ignored as it only works with --no-get-wal.",
            );
        } else if options.target_immediate {
            report.warning(
                "The --partial-wal option was ignored as it has no effect with \
                 --target-immediate.",
            );
        }
    }
    let plan = plan_targets(home, info, options, report)?;
    let temp = TempDir::new()?;

    let mut written = Written::default();
    let outcome = prepare(
        home,
        server_name,
        info,
        options,
        &plan,
        &place,
        temp.path(),
        &mut written,
        report,
    )
    .await;
    match outcome {
        Ok((changes, warnings, missing_files, get_wal, recovery_configuration_file)) => {
            Ok(RecoveryResults {
                changes,
                warnings,
                missing_files,
                get_wal,
                recovery_configuration_file,
                start_time,
            })
        }
        Err(error) => {
            for path in written.paths.iter().rev() {
                place.remove(path).await;
            }
            Err(error)
        }
    }
}

type Prepared = (Vec<Assertion>, Vec<Assertion>, Vec<String>, bool, String);

#[allow(clippy::too_many_arguments)]
async fn prepare(
    home: &ServerHome,
    server_name: &str,
    info: &BackupInfo,
    options: &RecoverOptions,
    plan: &Plan,
    place: &Place,
    temp: &Path,
    written: &mut Written,
    report: &mut dyn Report,
) -> Result<Prepared> {
    let dest = options.destination.as_str();
    let backup_id = info.backup_id.clone().unwrap_or_default();
    let ssh = place.remote.as_ref().map(|(ssh, _)| ssh.as_str());
    let mut flags = Vec::new();
    if options.network_compression {
        flags.push("-z".to_string());
    }
    if let Some(limit) = options.bwlimit.filter(|l| *l > 0) {
        flags.push(format!("--bwlimit={limit}"));
    }
    let rsync = |ssh: &str, args: &[&str]| {
        let ssh = ssh.to_string();
        let flags = flags.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            rsync_with(&ssh, &flags, &args).await
        }
    };

    // The backup label.
    report.info("Copying the backup label.");
    let label = home.backup_label(&backup_id);
    let label_dest = format!("{dest}/backup_label");
    let copied = match ssh {
        Some(ssh) => {
            rsync(
                ssh,
                &[&label.display().to_string(), &format!(":{label_dest}")],
            )
            .await
        }
        None => copy_file(&label, Path::new(&label_dest))
            .map(|()| owned_like(Path::new(&label_dest), Path::new(dest))),
    };
    if let Err(e) = copied {
        return Err(Error::Failed(format!(
            "Failure copying the backup label: {e}"
        )));
    }
    written.paths.push(label_dest);

    // The backup's metadata.
    let info_file = home.backup_info(&backup_id);
    let info_dest = format!("{dest}/.barman-recover.info");
    let saved = match ssh {
        Some(ssh) => {
            rsync(
                ssh,
                &[&info_file.display().to_string(), &format!(":{info_dest}")],
            )
            .await
        }
        None => copy_file(&info_file, Path::new(&info_dest)),
    };
    if let Err(e) = saved {
        return Err(Error::Failed(format!(
            "copy of recovery metadata file failed: {e}"
        )));
    }
    let manifest = format!("{dest}/backup_manifest");
    if place.exists(&manifest).await? {
        place
            .rename(&manifest, &format!("{dest}/backup_manifest.{backup_id}"))
            .await?;
    }

    // WALs copied, when not fetched by get-wal.
    if !options.get_wal {
        if info.status == Some(BackupStatus::WaitingForWals) {
            report.warning(
                "IMPORTANT: The backup we have restored IS NOT VALID. Required WAL files for \
                 consistency are missing. Please verify that WAL archiving is working \
                 correctly or evaluate using the 'get-wal' option for recovery",
            );
        }
        place
            .create_dir(&plan.wal_dest, Some(0o700))
            .await
            .map_err(|e| {
                Error::Failed(format!(
                    "unable to initialise WAL destination directory '{}': {e}",
                    options.wal_directory.as_deref().unwrap_or("None")
                ))
            })?;
        report.info("Copying required WAL segments.");
        let names = required_wals(home, info, options, plan)?;
        let copied = match ssh {
            Some(ssh) => {
                let staging = temp.join("wals");
                fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
                copy_wals(home, &names, &staging)?;
                rsync(
                    ssh,
                    &[
                        &format!("{}/", staging.display()),
                        &format!(":{}/", plan.wal_dest),
                    ],
                )
                .await
            }
            None => copy_wals(home, &names, Path::new(&plan.wal_dest)),
        };
        copied.map_err(|e| Error::Failed(format!("Failure copying WAL files: {e}")))?;
        if !plan.is_pitr {
            report.info("Generating archive status files");
            let status = match ssh {
                Some(_) => temp.join("archive_status"),
                None => Path::new(&plan.wal_dest).join("archive_status"),
            };
            fs::create_dir_all(&status).map_err(|e| Error::io(&status, e))?;
            for name in &names {
                let done = status.join(format!("{}.done", name));
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&done)
                    .map_err(|e| Error::io(&done, e))?;
            }
            if let Some(ssh) = ssh {
                rsync(
                    ssh,
                    &[
                        &format!("{}/", status.display()),
                        &format!(":{}/archive_status", plan.wal_dest),
                    ],
                )
                .await
                .map_err(|e| {
                    Error::Failed(format!("unable to populate archive_status directory: {e}"))
                })?;
            }
        }
    }

    // The recovery settings and the signal file.
    let recovery_configuration_file = options
        .recovery_conf_filename
        .clone()
        .unwrap_or_else(|| "postgresql.auto.conf".to_string());
    let mut append: Option<Vec<String>> = None;
    let mut get_wal = false;
    if plan.is_pitr || options.get_wal || options.standby_mode {
        report.info("Generating recovery configuration");
        let source = if options.get_wal {
            get_wal = true;
            match &options.restore_command {
                Some(command) => {
                    report.info(&format!(
                        "Custom restore command override: restore_command = '{}'",
                        command.replace('\'', "''")
                    ));
                    WalSource::Custom(command.clone())
                }
                None => WalSource::GetWal {
                    remote: ssh.map(|_| options.fqdn.clone()),
                    port: options.recovery_option_port.clone(),
                    parallel_jobs: options.parallel_jobs,
                },
            }
        } else {
            if options.restore_command.is_some() && !options.standby_mode {
                report.warning(
                    "The provided custom restore command was ignored as it only works with \
                     get-wal mode.",
                );
            }
            WalSource::Copied(plan.wal_dest.clone())
        };
        append = Some(recovery_conf::recovery_lines(
            &source,
            server_name,
            &options.barman_user,
            options.standby_mode,
            &plan.targets,
        ));
        let signal = if options.standby_mode {
            "standby.signal"
        } else {
            "recovery.signal"
        };
        let signal_dest = format!("{dest}/{signal}");
        let local = match ssh {
            Some(_) => temp.join(signal),
            None => PathBuf::from(&signal_dest),
        };
        let existed = place.exists(&signal_dest).await?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&local)
            .map_err(|e| Error::io(&local, e))?;
        if !existed {
            written.paths.push(signal_dest.clone());
        }
        if let Some(ssh) = ssh {
            rsync(ssh, &[&local.display().to_string(), &format!(":{dest}/")])
                .await
                .map_err(|e| Error::Failed(format!("remote copy of {signal} failed: {e}")))?;
        }
    }
    let status_dir = format!("{}/archive_status", plan.wal_dest);
    place.create_dir(&status_dir, None).await.map_err(|e| {
        Error::Failed(format!(
            "unable to create the archive_status directory '{status_dir}': {e}"
        ))
    })?;

    // The configuration: dangerous settings disarmed, settings to review listed.
    report.info("Identify dangerous settings in destination directory.");
    let mut missing_files = Vec::new();
    let mut present: Vec<&str> = Vec::new();
    for name in CONFIGURATION_FILES.iter().chain(HARDCODED_FILES.iter()) {
        if place.exists(&format!("{dest}/{name}")).await? {
            if CONFIGURATION_FILES.contains(name) {
                present.push(name);
            }
        } else {
            missing_files.push(name.to_string());
        }
    }
    let work_dir = match ssh {
        Some(ssh) => {
            if !present.is_empty() {
                let mut args: Vec<String> = present
                    .iter()
                    .map(|name| format!(":{dest}/{name}"))
                    .collect();
                args.push(format!("{}/", temp.display()));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                rsync(ssh, &args).await?;
            }
            temp.to_path_buf()
        }
        None => PathBuf::from(dest),
    };
    let mut files: Vec<String> = present.iter().map(|s| s.to_string()).collect();
    if !files.contains(&recovery_configuration_file) {
        let path = work_dir.join(&recovery_configuration_file);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        files.push(recovery_configuration_file.clone());
    }
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for name in &files {
        let path = work_dir.join(name);
        let origin = work_dir.join(format!("{name}.origin"));
        let content = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let lines = if path
            .to_string_lossy()
            .ends_with(recovery_configuration_file.as_str())
        {
            append.as_deref()
        } else {
            None
        };
        let base = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mangled, found) = recovery_conf::mangle(&content, &base, lines);
        let mode = fs::metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .permissions()
            .mode()
            & 0o7777;
        fs::rename(&path, &origin).map_err(|e| Error::io(&path, e))?;
        write_file(&path, &mangled, mode)?;
        if ssh.is_none() {
            owned_like(&path, &origin);
        }
        changes.extend(found);
        warnings.extend(recovery_conf::detect_issues(&mangled, &base));
    }
    if let Some(ssh) = ssh {
        let mut args: Vec<String> = Vec::new();
        for name in &files {
            args.push(work_dir.join(name).display().to_string());
            args.push(
                work_dir
                    .join(format!("{name}.origin"))
                    .display()
                    .to_string(),
            );
        }
        args.push(format!(":{dest}/"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rsync(ssh, &args).await.map_err(|e| {
            Error::Failed(format!("remote copy of configuration files failed: {e}"))
        })?;
    }
    if ssh.is_none() {
        // The WAL directory and what was copied into it belong to the data directory's
        // owner, who runs the restore_command (beyond Barman).
        owned_tree(Path::new(&plan.wal_dest), Path::new(dest));
        // The renames and new files survive a crash (beyond Barman).
        if !options.get_wal {
            crate::durable::sync_dir(Path::new(&plan.wal_dest))?;
        }
        crate::durable::sync_dir(Path::new(dest))?;
    }
    Ok((
        changes,
        warnings,
        missing_files,
        get_wal,
        recovery_configuration_file,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_zones_are_told_from_local_times() {
        assert!(!explicit_zone("2026-11-30 10:00:00"));
        assert!(!explicit_zone("2026-11-30 10:00:00.123456"));
        assert!(!explicit_zone("2026-11-30"));
        assert!(explicit_zone("2026-11-30 10:00:00+02"));
        assert!(explicit_zone("2026-11-30 10:00:00+02:00"));
        assert!(explicit_zone("2026-11-30T10:00:00Z"));
        assert!(explicit_zone("2026-11-30 10:00:00 UTC"));
    }

    #[test]
    fn lsn_segments_are_named_as_postgresql_names_them() {
        assert_eq!(
            lsn_segment("0/3000028", 1, 16 << 20).unwrap(),
            "000000010000000000000003"
        );
        assert_eq!(
            lsn_segment("1/FF000000", 2, 16 << 20).unwrap(),
            "0000000200000001000000FF"
        );
        assert!(lsn_segment("nonsense", 1, 16 << 20).is_err());
    }
}
