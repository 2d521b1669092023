//! The one place where outcomes become process exit codes, as Barman's cloud commands
//! use them: 0 ok, 1 operation failed, 2 network, 3 bad input, 4 anything else; and
//! where results reach standard output.

use std::io::{self, Write};
use std::process::ExitCode;

use barman_cloud::Error;
use barman_cloud::catalog::CatalogError;

use crate::secrets::redact;

pub const OK: u8 = 0;
const FAILED: u8 = 1;
const NETWORK: u8 = 2;
const BAD_INPUT: u8 = 3;
const OTHER: u8 = 4;
/// Barman's `UnrecoverableHookScriptError`: the hook must not be retried.
const HOOK_ABORT: u8 = 63;

/// Logs `error` as one line (through the same logger as everything else, so `-q` works,
/// and secrets are hidden there) and returns its exit code.
pub fn report(error: &Error, rules: ExitRules) -> ExitCode {
    tracing::error!("{error}");
    ExitCode::from(rules.code_for(error))
}

/// How one command turns what happened into Barman's exit code. Barman 3.20.1 gives
/// unreachable storage exit 2, and a missing bucket exit 1, only where it asks the
/// question itself: unreachable storage in wal-restore, check-wal-archive and every `-t`
/// probe, a missing bucket in `-t` probes. Elsewhere the failure reaches the command's
/// catch-all handler, exit 4, and clients (such as CloudNativePG classifying
/// barman-cloud-restore's exit) see that code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRules {
    /// Unreachable storage is exit 2 (else 4).
    pub connectivity_probe: bool,
    /// A missing bucket is exit 1 (else 4).
    pub bucket_probe: bool,
    /// A backup that does not exist is exit 4, not 1: barman-cloud-backup-keep reads the
    /// status of the backup.info it did not find and crashes.
    pub missing_backup_crashes: bool,
}

impl ExitRules {
    pub const DEFAULT: ExitRules = ExitRules {
        connectivity_probe: false,
        bucket_probe: false,
        missing_backup_crashes: false,
    };

    pub fn for_command(command: &str, test: bool) -> Self {
        ExitRules {
            connectivity_probe: test
                || matches!(
                    command,
                    "barman-cloud-wal-restore" | "barman-cloud-check-wal-archive"
                ),
            bucket_probe: test,
            missing_backup_crashes: command == "barman-cloud-backup-keep",
        }
    }

    pub fn code_for(self, error: &Error) -> u8 {
        match error.root() {
            Error::InvalidInput(_) => BAD_INPUT,
            Error::HookAbort(_) => HOOK_ABORT,
            Error::Connectivity(_) if self.connectivity_probe => NETWORK,
            Error::Spool(_) => NETWORK,
            Error::BucketMissing(_) if self.bucket_probe => FAILED,
            Error::Missing(_) if self.missing_backup_crashes => OTHER,
            // Barman stops at once on a key it does not know (exit 1); any other defect
            // of a backup.info is an ordinary exception.
            Error::Catalog(CatalogError::UnsupportedField(_)) => FAILED,
            Error::NotFound(_)
            | Error::Missing(_)
            | Error::Refused(_)
            | Error::Corrupt(_)
            | Error::Conflict(_)
            | Error::Failed(_)
            | Error::RetryHookStop(_)
            | Error::SnapshotLocked(_)
            | Error::Postgres(_) => FAILED,
            Error::Connectivity(_)
            | Error::BucketMissing(_)
            | Error::Config(_)
            | Error::Provider(_)
            | Error::Unsupported(_)
            | Error::UnknownBackup(_)
            | Error::BadCatalog(_)
            | Error::Catalog(_)
            | Error::InvalidUrl { .. }
            | Error::Io { .. }
            | Error::Storage(_)
            | Error::Compression { .. }
            | Error::Context { .. } => OTHER,
        }
    }
}

/// Writes `text` on stderr with its secrets hidden ([`crate::secrets::redact`]), ignoring a
/// closed stderr (nothing else can be done).
pub fn eprint_line(text: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{}", redact(text));
}

/// Argument errors: clap prints usage and message; Barman exits 3 for all of them.
pub fn report_usage(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    match error.kind() {
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Help on a closed pipe (`--help | head -1`) ends quietly too.
            let _ = error.print();
            ExitCode::from(OK)
        }
        _ => {
            // One line, as every error we print: clap's own hint lines add nothing. The
            // value clap quotes may be a secret given to the wrong option.
            let text = error.render().to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error");
            eprint_line(line.trim_end());
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Standard output for command results. A reader that went away (`| head -1`) is not
/// an error: as Unix tools do, the rest of the output is dropped quietly and the command
/// ends with its own exit code (a deletion in progress is not cut short by it). Other
/// write errors name standard output and keep their cause.
#[derive(Default)]
pub struct Stdout {
    closed: bool,
}

impl Stdout {
    /// Prints `text` and flushes.
    pub fn print(text: &str) -> barman_cloud::Result<()> {
        let mut out = Stdout::default();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::io("<stdout>", e))
    }

    fn guard(&mut self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.closed {
            let result = io::stdout().lock().write_all(buf);
            self.guard(result)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = io::stdout().lock().flush();
        self.guard(result)
    }
}
