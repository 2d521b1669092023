//! What the machine provides when the user did not: the socket directory, the effective user
//! and its home directory, the system configuration directory.

use std::path::PathBuf;

use crate::{Error, Result};

/// The socket directory libpq is compiled with on Debian and in the PGDG packages. A password
/// file entry for `localhost` matches a connection through it (or through the defaulted one).
pub(super) const LIBPQ_DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Where we look for the server's socket when no host is given, in order.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];
/// libpq's SYSCONFDIR on Debian, where the system-wide `pg_service.conf` lives.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// What the machine provides when the user did not: socket directories, the user database,
/// the effective user ID, the system configuration directory. Injected by the tests.
pub(super) struct SystemDefaults {
    pub(super) socket_dirs: Vec<PathBuf>,
    pub(super) passwd: PathBuf,
    pub(super) euid: Option<u32>,
    pub(super) sysconfdir: PathBuf,
}

impl SystemDefaults {
    pub(super) fn system() -> Self {
        SystemDefaults {
            socket_dirs: DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
            passwd: PathBuf::from("/etc/passwd"),
            euid: effective_uid(),
            sysconfdir: PathBuf::from(DEFAULT_SYSCONFDIR),
        }
    }

    /// The first socket directory holding the server's socket for `port`, else the first that
    /// exists, else the first.
    pub(super) fn default_socket_dir(&self, port: u16) -> PathBuf {
        let socket = format!(".s.PGSQL.{port}");
        self.socket_dirs
            .iter()
            .find(|d| d.join(&socket).exists())
            .or_else(|| self.socket_dirs.iter().find(|d| d.is_dir()))
            .or_else(|| self.socket_dirs.first())
            .cloned()
            .unwrap_or_else(|| PathBuf::from(LIBPQ_DEFAULT_SOCKET_DIR))
    }

    /// The `/etc/passwd` entry of the effective user: name and home directory.
    fn passwd_entry(&self) -> Option<(String, PathBuf)> {
        let uid = self.euid?.to_string();
        let text = std::fs::read_to_string(&self.passwd).ok()?;
        text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 6 && fields[2] == uid)
                .then(|| (fields[0].to_owned(), PathBuf::from(fields[5])))
        })
    }

    /// The effective OS user's name (libpq's default user), else `$USER`, else `$LOGNAME`.
    pub(super) fn os_user(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        if let Some((name, _)) = self.passwd_entry() {
            return Ok(name);
        }
        if let Some(name) = ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| env(v).filter(|n| !n.is_empty()))
        {
            tracing::debug!(
                "effective user not found in {}; using {name}",
                self.passwd.display()
            );
            return Ok(name);
        }
        Err(Error::Config(match self.euid {
            Some(uid) => format!(
                "could not look up local user ID {uid}: not found in {}; give a user name (-U)",
                self.passwd.display()
            ),
            None => "could not determine the local user name; give a user name (-U)".into(),
        }))
    }

    /// `$HOME`, else the user's home directory.
    pub(super) fn home_dir(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| self.passwd_entry().map(|(_, home)| home))
    }
}

/// The effective user ID, from `/proc/self/status` (`Uid: real effective saved fs`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
}
