//! Hook scripts of a `barman` server (Barman 3.20.1's plain and retry hook scripts):
//! `<phase>_<name>` from the server's configuration, run through `/bin/sh -c` with the
//! `BARMAN_*` environment of the operation (a backup, a WAL file, a recovery).
//!
//! A plain hook runs once and its failure is only logged. A retry hook runs until it exits
//! 0, 62 (abort, the operation goes on) or 63 (abort, the operation stops: an error here,
//! which post-phase callers only log), pausing 3 s between attempts and 60 s after every
//! 5 failed attempts.

use std::path::Path;
use std::time::Duration;

use crate::catalog::BackupInfo;
use crate::catalog::pyliteral::repr_float;
use crate::error::{Error, Result};
use crate::server::backup::BARMAN_VERSION;
use crate::server::config::{ServerConfig, Value};
use crate::server::home::{ServerHome, load_backups};
use crate::server::xlogdb::{RemovalHooks, XlogEntry};

/// Retry hook exit codes.
pub const EXIT_ABORT_STOP: i32 = 63;
pub const EXIT_ABORT_CONTINUE: i32 = 62;
const ATTEMPTS_BEFORE_NAP: u32 = 5;
const BREAK_TIME: Duration = Duration::from_secs(3);
const NAP_TIME: Duration = Duration::from_secs(60);

/// Where hook messages go: a log record (Python levels: 10 debug, 30 warning, 40 error).
pub type HookLog<'a> = dyn Fn(i64, &str) + 'a;

/// Environment variables of one hook run.
pub type Env = Vec<(String, String)>;

/// The hooks of one server.
pub struct Hooks<'a> {
    pub server: &'a ServerConfig,
    /// The configuration file (`BARMAN_CONFIGURATION`).
    pub config_file: &'a Path,
    pub log: &'a HookLog<'a>,
}

/// Whether a backup's status lets it be another backup's previous or next one (Barman's
/// default status filter).
fn copy_done(info: &BackupInfo) -> bool {
    use crate::catalog::BackupStatus;
    matches!(
        info.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    )
}

/// `BARMAN_BACKUP_*`, `BARMAN_PREVIOUS_ID`, `BARMAN_NEXT_ID`, `BARMAN_STATUS`,
/// `BARMAN_ERROR` of a backup; the neighbours are read from the home now (a backup being
/// deleted needs not be there any more).
pub fn backup_env(home: &ServerHome, info: &BackupInfo) -> Env {
    let id = info.backup_id.clone().unwrap_or_default();
    let backups = load_backups(home);
    let previous = backups
        .iter()
        .rev()
        .find(|b| b.backup_id.as_deref().unwrap_or_default() < id.as_str() && copy_done(b))
        .and_then(|b| b.backup_id.clone())
        .unwrap_or_default();
    let next = backups
        .iter()
        .find(|b| b.backup_id.as_deref().unwrap_or_default() > id.as_str() && copy_done(b))
        .and_then(|b| b.backup_id.clone())
        .unwrap_or_default();
    vec![
        (
            "BARMAN_BACKUP_DIR".into(),
            home.backup_dir(&id).display().to_string(),
        ),
        (
            "BARMAN_BACKUP_INFO_PATH".into(),
            home.backup_info(&id).display().to_string(),
        ),
        ("BARMAN_BACKUP_ID".into(), id),
        ("BARMAN_PREVIOUS_ID".into(), previous),
        ("BARMAN_NEXT_ID".into(), next),
        (
            "BARMAN_STATUS".into(),
            info.status
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "None".into()),
        ),
        (
            "BARMAN_ERROR".into(),
            info.error.clone().unwrap_or_default(),
        ),
    ]
}

/// `BARMAN_SEGMENT`, `BARMAN_FILE`, `BARMAN_SIZE`, `BARMAN_TIMESTAMP`,
/// `BARMAN_COMPRESSION` and `BARMAN_ERROR` of a WAL file of the archive.
pub fn wal_env(entry: &XlogEntry, file: &Path, error: Option<&str>) -> Env {
    vec![
        ("BARMAN_SEGMENT".into(), entry.name.clone()),
        ("BARMAN_FILE".into(), file.display().to_string()),
        ("BARMAN_SIZE".into(), entry.size.to_string()),
        ("BARMAN_TIMESTAMP".into(), repr_float(entry.time)),
        (
            "BARMAN_COMPRESSION".into(),
            entry.compression.clone().unwrap_or_default(),
        ),
        ("BARMAN_ERROR".into(), error.unwrap_or_default().to_string()),
    ]
}

/// A value of `BARMAN_RECOVER_OPTIONS` (Python's JSON of the recovery's options).
#[derive(Debug, Clone)]
pub enum RecoverOption {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// Python's `json.dumps(..., sort_keys=True)` of the non-empty options ("" when none).
fn options_json<'a>(options: impl IntoIterator<Item = (&'a str, RecoverOption)>) -> String {
    let mut kept: Vec<(&str, String)> = options
        .into_iter()
        .filter_map(|(key, value)| match value {
            RecoverOption::Text(t) if !t.is_empty() => Some((key, crate::catalog::json::quote(&t))),
            RecoverOption::Int(n) if n != 0 => Some((key, n.to_string())),
            RecoverOption::Bool(true) => Some((key, "true".into())),
            _ => None,
        })
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    kept.sort();
    let body: Vec<String> = kept
        .iter()
        .map(|(k, v)| format!("{}: {v}", crate::catalog::json::quote(k)))
        .collect();
    format!("{{{}}}", body.join(", "))
}

/// The environment of recovery hooks: the backup's, then `BARMAN_DESTINATION_DIRECTORY`,
/// `BARMAN_TABLESPACES` (JSON of the relocations, "" for none), `BARMAN_REMOTE_COMMAND`,
/// `BARMAN_RECOVER_OPTIONS` (JSON of the options set) and an empty `BARMAN_ERROR`.
pub fn recover_env<'a>(
    home: &ServerHome,
    info: &BackupInfo,
    destination: &str,
    tablespaces: &[(String, String)],
    remote_command: Option<&str>,
    options: impl IntoIterator<Item = (&'a str, RecoverOption)>,
) -> Env {
    let mut env = backup_env(home, info);
    let tablespaces = if tablespaces.is_empty() {
        String::new()
    } else {
        let mut sorted: Vec<&(String, String)> = tablespaces.iter().collect();
        sorted.sort();
        let body: Vec<String> = sorted
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}: {}",
                    crate::catalog::json::quote(k),
                    crate::catalog::json::quote(v)
                )
            })
            .collect();
        format!("{{{}}}", body.join(", "))
    };
    env.retain(|(k, _)| k != "BARMAN_ERROR");
    env.extend([
        ("BARMAN_DESTINATION_DIRECTORY".into(), destination.into()),
        ("BARMAN_TABLESPACES".into(), tablespaces),
        (
            "BARMAN_REMOTE_COMMAND".into(),
            remote_command.unwrap_or_default().into(),
        ),
        ("BARMAN_RECOVER_OPTIONS".into(), options_json(options)),
        ("BARMAN_ERROR".into(), String::new()),
    ]);
    env
}

impl Hooks<'_> {
    /// The configured `<phase>_<name>` (`None`: not set or empty).
    pub fn script(&self, name: &str, phase: &str) -> Option<String> {
        let key = format!("{phase}_{name}");
        self.server
            .hooks
            .get(&key)
            .cloned()
            .or_else(|| match self.server.value(&key) {
                Some(Value::Text(text)) => Some(text.clone()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
    }

    fn environment(&self, name: &str, phase: &str, retry: bool, extra: &[(String, String)]) -> Env {
        let mut env: Env = vec![
            ("BARMAN_VERSION".into(), BARMAN_VERSION.into()),
            ("BARMAN_SERVER".into(), self.server.name.clone()),
            (
                "BARMAN_CONFIGURATION".into(),
                self.config_file.display().to_string(),
            ),
            ("BARMAN_HOOK".into(), name.into()),
            ("BARMAN_RETRY".into(), if retry { "1" } else { "0" }.into()),
            ("BARMAN_PHASE".into(), phase.into()),
        ];
        env.extend(extra.iter().cloned());
        env
    }

    /// Runs the script once through the shell; its exit code (`None`: it could not run).
    fn execute(&self, script: &str, env: &[(String, String)]) -> Option<i32> {
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(script)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null());
        if let Some(prefix) = &self.server.path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            command.env("PATH", format!("{prefix}:{path}"));
        }
        match command.output() {
            Ok(output) => {
                let code = output.status.code().unwrap_or(-1);
                if code != 0 {
                    (self.log)(
                        30,
                        &format!(
                            "{script} returned {code}\nOutput details:\n{}{}",
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        ),
                    );
                } else {
                    (self.log)(10, &format!("{script} returned {code}"));
                }
                Some(code)
            }
            Err(e) => {
                (self.log)(40, &format!("Exception running {script}: {e}"));
                None
            }
        }
    }

    /// A plain hook `<phase>_<name>`: run once, its failure only logged.
    pub fn run(&self, name: &str, phase: &str, extra: &[(String, String)]) {
        if let Some(script) = self.script(name, phase) {
            let env = self.environment(name, phase, false, extra);
            self.execute(&script, &env);
        }
    }

    /// A retry hook `<phase>_<name>`: `Err` when it asked to stop (63).
    pub fn run_retry(&self, name: &str, phase: &str, extra: &[(String, String)]) -> Result<()> {
        let Some(script) = self.script(name, phase) else {
            return Ok(());
        };
        let env = self.environment(name, phase, true, extra);
        let mut attempts = 1;
        let status = loop {
            let status = self.execute(&script, &env);
            if let Some(code @ (0 | EXIT_ABORT_CONTINUE | EXIT_ABORT_STOP)) = status {
                break code;
            }
            if attempts <= ATTEMPTS_BEFORE_NAP {
                attempts += 1;
                std::thread::sleep(BREAK_TIME);
            } else {
                attempts = 1;
                std::thread::sleep(NAP_TIME);
            }
        };
        match status {
            EXIT_ABORT_CONTINUE => {
                (self.log)(
                    30,
                    &format!("{script} was aborted (got exit status {status}, Barman resumes)"),
                );
                Ok(())
            }
            EXIT_ABORT_STOP => {
                (self.log)(
                    40,
                    &format!(
                        "{script} was aborted (got exit status {status}, Barman requested \
                         to stop)"
                    ),
                );
                Err(Error::RetryHookStop(format!(
                    "Abort '{phase}_{name}' retry hook script ({script}, exit code: {status})"
                )))
            }
            _ => Ok(()),
        }
    }

    /// A post-phase retry hook: a stop request (63) is only logged, as Barman does, with
    /// what the operation is (`post-delete`, `post-recovery`...).
    pub fn run_retry_post(&self, name: &str, what: &str, extra: &[(String, String)]) {
        if self.run_retry(name, "post", extra).is_err() {
            let script = self.script(name, "post").unwrap_or_default();
            (self.log)(
                30,
                &format!(
                    "Ignoring stop request after receiving abort (exit code \
                     {EXIT_ABORT_STOP}) from {what} retry hook script: {script}"
                ),
            );
        }
    }

    /// The four hooks of a phase in Barman's order: the plain hook then the retry hook
    /// before (`pre`); the retry hook then the plain hook after (`post`).
    pub fn pre(&self, name: &str, extra: &[(String, String)]) -> Result<()> {
        self.run(&format!("{name}_script"), "pre", extra);
        self.run_retry(&format!("{name}_retry_script"), "pre", extra)
    }

    /// See [`Hooks::pre`]; `what` names the operation in the log (`post-delete`...).
    pub fn post(&self, name: &str, what: &str, extra: &[(String, String)]) {
        self.run_retry_post(&format!("{name}_retry_script"), what, extra);
        self.run(&format!("{name}_script"), "post", extra);
    }
}

/// The WAL deletion hooks (`wal_delete_script`, `wal_delete_retry_script`) around the
/// removal of each WAL file of the archive.
pub struct WalDeleteHooks<'a> {
    pub hooks: &'a Hooks<'a>,
}

impl RemovalHooks for WalDeleteHooks<'_> {
    fn pre(&mut self, entry: &XlogEntry, file: &Path) -> Result<()> {
        self.hooks.pre("wal_delete", &wal_env(entry, file, None))
    }

    fn post(&mut self, entry: &XlogEntry, file: &Path, error: Option<&std::io::Error>) {
        let error = error.map(|e| {
            format!(
                "Ignoring deletion of WAL file {} for server {}: {}",
                entry.name,
                self.hooks.server.name,
                os_error_text(e, file)
            )
        });
        self.hooks.post(
            "wal_delete",
            "post-wal-delete",
            &wal_env(entry, file, error.as_deref()),
        );
    }
}

/// Python's text of an `OSError` about `path`.
pub fn os_error_text(error: &std::io::Error, path: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_python_json() {
        assert_eq!(
            options_json([
                ("target_tli", RecoverOption::Int(2)),
                ("exclusive", RecoverOption::Bool(false)),
                ("target_name", RecoverOption::Text("é\"x".into())),
                ("standby_mode", RecoverOption::Bool(true)),
                ("target_xid", RecoverOption::Text(String::new())),
            ]),
            r#"{"standby_mode": true, "target_name": "\u00e9\"x", "target_tli": 2}"#
        );
        assert_eq!(options_json([("a", RecoverOption::Bool(false))]), "");
    }
}
