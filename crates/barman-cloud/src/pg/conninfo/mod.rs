//! libpq connection parameters.
//!
//! tokio-postgres parses connection strings but does none of what libpq does around them: it
//! reads no `PG*` environment variable, no password file, no service file, and has no default
//! host or user. This module does that part the way libpq does, then hands a ready
//! [`tokio_postgres::Config`] to [`connect`].
//!
//! Precedence, as in libpq: explicit parameters > service file (`service=`/`PGSERVICE`) >
//! environment variables > built-in defaults; then the password comes from the parameters or
//! `PGPASSWORD`, else from the password file.
//!
//! Limits of this implementation (tokio-postgres cannot honour the rest):
//! - only the first host of a multi-host list (`host=a,b`, `postgresql://a,b/db`) is used;
//! - no TLS yet: `sslmode=require`, `verify-ca` and `verify-full` are refused by [`connect`];
//! - parameters that only tune TLS or GSSAPI (`sslcert`, `sslrootcert`, `krbsrvname`...) are
//!   accepted and ignored; parameters whose silent omission would weaken security
//!   (`gssencmode=require`, `require_auth`, `requirepeer`, `sslcertmode=require`) or change what
//!   the session is (`replication`) are refused.
//!
//! One file per concern: `keywords` (libpq's keyword table), `parse` (`key=value` strings),
//! `uri` (`postgresql://` URIs), `resolve` (precedence, defaults and the mapping to
//! tokio-postgres), `defaults` (what the machine provides), `service` (service files),
//! `pgpass` (password files) and `connect` (the connection and libpq's wording of its
//! errors).

mod connect;
mod defaults;
mod keywords;
mod parse;
mod pgpass;
mod resolve;
mod service;
#[cfg(test)]
mod tests_support;
mod uri;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

pub use connect::connect;
use defaults::SystemDefaults;
use keywords::{canonical, is_secret};
use parse::{is_connection_string, parse_key_values};
use uri::{parse_uri, uri_prefix_len};

use crate::{Error, Result};

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// Connection parameters as written by the user (conninfo string, URI or Barman's options),
/// before environment variables and defaults are applied. `Debug` hides the password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    params: BTreeMap<&'static str, String>,
}

/// Prints a parameter map with secret values masked.
struct Redacted<'a>(&'a BTreeMap<&'static str, String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            if is_secret(key) {
                map.entry(key, &"********");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("params", &Redacted(&self.params))
            .finish()
    }
}

impl ConnInfo {
    /// Builds from Barman's `-h/--host`, `-p/--port`, `-U/--user` and `-d/--dbname` options.
    ///
    /// `dbname` defaults to `postgres`. A `dbname` that is empty or contains `=` is the whole
    /// conninfo and the other options are ignored, as in Barman. Otherwise the given (non-empty)
    /// options become `host`, `port`, `user` and `dbname`; a `dbname` that is a
    /// `postgresql://` URI is expanded like libpq expands `dbname` (its parameters override
    /// `-h/-p/-U`).
    pub fn from_barman_options(
        host: Option<&str>,
        port: Option<&str>,
        user: Option<&str>,
        dbname: Option<&str>,
    ) -> Result<Self> {
        let dbname = dbname.unwrap_or("postgres");
        if dbname.is_empty() || dbname.contains('=') {
            return Self::parse(dbname);
        }
        let mut info = ConnInfo::default();
        for (key, value) in [("host", host), ("port", port), ("user", user)] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                info.params.insert(key, value.to_owned());
            }
        }
        info.set_dbname_expanding(dbname)?;
        Ok(info)
    }

    /// Parses a libpq conninfo: either `key=value` pairs separated by whitespace (values may be
    /// single-quoted; `\\` and `\'` escape; whitespace around `=` is allowed) or a URI
    /// `postgresql://[user[:password]@][host][:port][,host2[:port2]...][/dbname][?key=value&...]`
    /// (also `postgres://`), percent-decoded, where the host may be a percent-encoded socket
    /// directory (`%2Fvar%2Frun%2Fpostgresql`) or given as a query parameter
    /// (`?host=/var/run/postgresql`).
    ///
    /// In the `key=value` form, the first `dbname` whose value is itself a URI or contains `=`
    /// is expanded in place, as libpq does for `PQconnectdbParams(expand_dbname)`. Unknown
    /// keywords are rejected like libpq rejects them; later values override earlier ones.
    pub fn parse(text: &str) -> Result<Self> {
        let mut info = ConnInfo::default();
        if let Some(prefix) = uri_prefix_len(text) {
            parse_uri(text, prefix, &mut info)?;
        } else {
            parse_key_values(text, &mut info, true)?;
        }
        Ok(info)
    }

    /// The explicitly given value of a parameter (no environment, no default).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Sets a parameter, as if it had been written in the conninfo (libpq's keyword names;
    /// unknown keywords are refused).
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let (key, value) = canonical(key, value)?;
        self.params.insert(key, value);
        Ok(())
    }

    fn set_dbname_expanding(&mut self, value: &str) -> Result<()> {
        if is_connection_string(value) {
            let mut expanded = ConnInfo::default();
            if let Some(prefix) = uri_prefix_len(value) {
                parse_uri(value, prefix, &mut expanded)?;
            } else {
                parse_key_values(value, &mut expanded, false)?;
            }
            self.params.extend(expanded.params);
        } else {
            self.params.insert("dbname", value.to_owned());
        }
        Ok(())
    }

    /// Applies libpq's precedence and defaults and finds the password; see the module
    /// documentation.
    ///
    /// `env` looks up environment variables (`PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`, `PGSSLMODE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`,
    /// `PGOPTIONS`, `PGSERVICE`... and `HOME`, `USER`, `LOGNAME`, `PGSYSCONFDIR`). Defaults:
    /// host = the first of `/var/run/postgresql` and `/tmp` holding the server's socket, else
    /// the first existing one; port 5432; user = the effective OS user; dbname = user.
    ///
    /// The password, when not given (or empty), comes from the password file (`passfile`,
    /// `PGPASSFILE`, else `$HOME/.pgpass`) by libpq's rules, including refusing a file that is
    /// not a plain file or is group/world accessible (with a warning).
    ///
    /// Only the first host (and hostaddr, port) of a comma-separated list is used; a warning
    /// says so.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<ResolvedConnInfo> {
        self.resolve_with(env, &SystemDefaults::system())
    }

    /// [`ConnInfo::resolve`] with the process environment.
    pub fn resolve_from_env(&self) -> Result<ResolvedConnInfo> {
        self.resolve(&process_env)
    }
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the session must be encrypted (`require`, `verify-ca`, `verify-full`).
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// Where the connection goes, for messages worded like libpq's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket in `dir` (the socket file is `dir/.s.PGSQL.<port>`).
    Socket { dir: PathBuf, port: u16 },
    /// TCP to `host`, or to `hostaddr` when given (then `host` only names it).
    Tcp {
        host: String,
        hostaddr: Option<IpAddr>,
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    /// `server on socket "/var/run/postgresql/.s.PGSQL.5432"` or
    /// `server at "db" (10.0.0.1), port 5432`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket { dir, port } => write!(
                f,
                "server on socket \"{}\"",
                dir.join(format!(".s.PGSQL.{port}")).display()
            ),
            Endpoint::Tcp {
                host,
                hostaddr: Some(addr),
                port,
            } if *host != addr.to_string() => {
                write!(f, "server at \"{host}\" ({addr}), port {port}")
            }
            Endpoint::Tcp { host, port, .. } => write!(f, "server at \"{host}\", port {port}"),
        }
    }
}

/// Connection parameters after libpq's precedence and defaults, ready for [`connect`].
/// `Debug` does not show the password (tokio-postgres redacts it).
#[derive(Debug, Clone)]
pub struct ResolvedConnInfo {
    /// Host (first one only), port, user, dbname, password, options, timeouts... Its
    /// `application_name` is only the one given (conninfo or `PGAPPNAME`); [`connect`] adds
    /// the default.
    pub config: tokio_postgres::Config,
    /// The `sslmode` asked for (default `prefer`).
    pub sslmode: SslMode,
    /// Where the connection goes.
    pub endpoint: Endpoint,
    /// The password file the password was read from, if it was (libpq names it when the
    /// server rejects the password).
    pub password_file: Option<PathBuf>,
    fallback_application_name: Option<String>,
}

/// The process environment, for [`ConnInfo::resolve`].
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

#[cfg(test)]
mod tests {
    use super::tests_support::{Machine, pairs, parse, password};
    use super::*;

    #[test]
    fn barman_options() {
        let opts = ConnInfo::from_barman_options;
        assert_eq!(
            pairs(&opts(Some("h"), Some("5433"), Some("bob"), None).unwrap()),
            [
                ("dbname", "postgres"),
                ("host", "h"),
                ("port", "5433"),
                ("user", "bob")
            ]
        );
        assert_eq!(
            pairs(&opts(None, None, None, Some("app")).unwrap()),
            [("dbname", "app")]
        );
        // Empty options are left out, like Barman's truthiness test.
        assert_eq!(
            pairs(&opts(Some(""), Some(""), Some(""), Some("db")).unwrap()),
            [("dbname", "db")]
        );
        // -d with '=' is the whole conninfo; -h/-p/-U are ignored.
        assert_eq!(
            pairs(&opts(Some("h"), Some("1"), Some("u"), Some("host=other dbname=x")).unwrap()),
            [("dbname", "x"), ("host", "other")]
        );
        // -d "" is an empty conninfo: everything from the environment and defaults.
        assert!(
            opts(Some("h"), Some("1"), Some("u"), Some(""))
                .unwrap()
                .params
                .is_empty()
        );
        // A URI in -d is expanded; its parts override -h/-p/-U.
        assert_eq!(
            pairs(
                &opts(
                    Some("h"),
                    Some("1"),
                    Some("u"),
                    Some("postgresql://v@h2/db")
                )
                .unwrap()
            ),
            [
                ("dbname", "db"),
                ("host", "h2"),
                ("port", "1"),
                ("user", "v")
            ]
        );
        // A URI with a query contains '=', so it is the conninfo verbatim.
        assert_eq!(
            pairs(&opts(Some("h"), None, None, Some("postgresql:///db?port=7")).unwrap()),
            [("dbname", "db"), ("port", "7")]
        );
        // Values with spaces are fine (Barman itself would refuse them).
        assert_eq!(
            opts(None, None, None, Some("my db")).unwrap().get("dbname"),
            Some("my db")
        );
        assert!(opts(None, None, None, Some("bogus=1")).is_err());
    }
    #[test]
    fn password_never_shown() {
        let m = Machine::new();
        let info = parse("host=h password=hunter2 sslpassword=hunter3");
        let debug = format!("{info:?}");
        assert!(!debug.contains("hunter"), "{debug}");
        assert!(debug.contains("\"host\": \"h\""), "{debug}");
        let uri = parse("postgresql://u:hunter2@h/db");
        assert!(!format!("{uri:?}").contains("hunter2"));
        let r = m.resolve(&info, &[]).unwrap();
        assert_eq!(password(&r), Some("hunter2"));
        let debug = format!("{r:?}");
        assert!(!debug.contains("hunter"), "{debug}");
        let barman =
            ConnInfo::from_barman_options(None, None, None, Some("host=h password=hunter2"))
                .unwrap();
        assert!(!format!("{barman:?}").contains("hunter2"));
    }
}
