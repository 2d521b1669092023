//! What the machine provides when the user did not: the socket directory, the effective user
//! and its home directory, the system configuration directory.

use std::path::PathBuf;

use crate::accounts::{self, User};
use crate::{Error, Result};

/// The socket directory libpq is compiled with on Debian and in the PGDG packages. A password
/// file entry for `localhost` matches a connection through it (or through the defaulted one).
pub(super) const LIBPQ_DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Where we look for the server's socket when no host is given, in order.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];
/// libpq's SYSCONFDIR on Debian, where the system-wide `pg_service.conf` lives.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// What the machine provides when the user did not: socket directories, the effective user
/// ID and the user accounts, the system configuration directory. Injected by the tests.
pub(super) struct SystemDefaults {
    pub(super) socket_dirs: Vec<PathBuf>,
    pub(super) euid: u32,
    /// The account of a user ID: [`accounts::user_by_uid`], a fake one in the tests.
    pub(super) user_by_uid: Box<dyn Fn(u32) -> Option<User>>,
    pub(super) sysconfdir: PathBuf,
}

impl SystemDefaults {
    pub(super) fn system() -> Self {
        SystemDefaults {
            socket_dirs: DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
            euid: accounts::effective_uid(),
            user_by_uid: Box::new(accounts::user_by_uid),
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

    /// The account of the effective user: name and home directory.
    fn effective_user(&self) -> Option<User> {
        (self.user_by_uid)(self.euid)
    }

    /// The effective OS user's name (libpq's default user), else `$USER`, else `$LOGNAME`.
    pub(super) fn os_user(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
        if let Some(user) = self.effective_user() {
            return Ok(user.name);
        }
        if let Some(name) = ["USER", "LOGNAME"]
            .iter()
            .find_map(|v| env(v).filter(|n| !n.is_empty()))
        {
            tracing::debug!(
                "no account for the effective user ID {}; using {name}",
                self.euid
            );
            return Ok(name);
        }
        Err(Error::Config(format!(
            "could not look up local user ID {}: user does not exist; give a user name (-U)",
            self.euid
        )))
    }

    /// `$HOME`, else the user's home directory.
    pub(super) fn home_dir(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| self.effective_user().map(|user| user.home))
    }
}
