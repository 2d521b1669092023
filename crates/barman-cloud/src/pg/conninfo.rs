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

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{
    ChannelBinding, SslMode as PgSslMode, SslNegotiation, TargetSessionAttrs,
};

use crate::{Error, Result};

/// The socket directory libpq is compiled with on Debian and in the PGDG packages. A password
/// file entry for `localhost` matches a connection through it (or through the defaulted one).
const LIBPQ_DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// Where we look for the server's socket when no host is given, in order.
const DEFAULT_SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/tmp"];
/// libpq's SYSCONFDIR on Debian, where the system-wide `pg_service.conf` lives.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// A connection keyword libpq knows, and the environment variable that supplies its default.
struct Keyword {
    name: &'static str,
    env: Option<&'static str>,
}

const fn kw(name: &'static str, env: Option<&'static str>) -> Keyword {
    Keyword { name, env }
}

/// libpq's keywords (PostgreSQL 18). `requiressl` is accepted too and stored as `sslmode`.
const KEYWORDS: &[Keyword] = &[
    kw("service", Some("PGSERVICE")),
    kw("servicefile", Some("PGSERVICEFILE")),
    kw("user", Some("PGUSER")),
    kw("password", Some("PGPASSWORD")),
    kw("passfile", Some("PGPASSFILE")),
    kw("channel_binding", Some("PGCHANNELBINDING")),
    kw("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    kw("dbname", Some("PGDATABASE")),
    kw("host", Some("PGHOST")),
    kw("hostaddr", Some("PGHOSTADDR")),
    kw("port", Some("PGPORT")),
    kw("client_encoding", Some("PGCLIENTENCODING")),
    kw("options", Some("PGOPTIONS")),
    kw("application_name", Some("PGAPPNAME")),
    kw("fallback_application_name", None),
    kw("keepalives", None),
    kw("keepalives_idle", None),
    kw("keepalives_interval", None),
    kw("keepalives_count", None),
    kw("tcp_user_timeout", None),
    kw("sslmode", Some("PGSSLMODE")),
    kw("sslnegotiation", Some("PGSSLNEGOTIATION")),
    kw("sslcompression", Some("PGSSLCOMPRESSION")),
    kw("sslcert", Some("PGSSLCERT")),
    kw("sslkey", Some("PGSSLKEY")),
    kw("sslcertmode", Some("PGSSLCERTMODE")),
    kw("sslpassword", None),
    kw("sslkeylogfile", None),
    kw("sslrootcert", Some("PGSSLROOTCERT")),
    kw("sslcrl", Some("PGSSLCRL")),
    kw("sslcrldir", Some("PGSSLCRLDIR")),
    kw("sslsni", Some("PGSSLSNI")),
    kw("requirepeer", Some("PGREQUIREPEER")),
    kw("require_auth", Some("PGREQUIREAUTH")),
    kw("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    kw("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    kw("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    kw("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    kw("gssencmode", Some("PGGSSENCMODE")),
    kw("krbsrvname", Some("PGKRBSRVNAME")),
    kw("gsslib", Some("PGGSSLIB")),
    kw("gssdelegation", Some("PGGSSDELEGATION")),
    kw("replication", None),
    kw("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    kw("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    kw("scram_client_key", None),
    kw("scram_server_key", None),
    kw("oauth_issuer", None),
    kw("oauth_client_id", None),
    kw("oauth_client_secret", None),
    kw("oauth_scope", None),
];

/// Keywords libpq accepts whose effect tokio-postgres cannot reproduce and whose absence does
/// not weaken the connection: we accept and ignore them.
const IGNORED: &[&str] = &[
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslkeylogfile",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
];

/// Values never printed, in `Debug` output or error messages.
fn is_secret(key: &str) -> bool {
    matches!(
        key,
        "password"
            | "sslpassword"
            | "oauth_client_secret"
            | "scram_client_key"
            | "scram_server_key"
    )
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// The keyword's canonical name and value, or libpq's error for an unknown keyword.
fn canonical(key: &str, value: &str) -> Result<(&'static str, String)> {
    if key == "requiressl" {
        // libpq's translation of the pre-7.4 keyword.
        let mode = if value.starts_with('1') {
            "require"
        } else {
            "prefer"
        };
        return Ok(("sslmode", mode.to_owned()));
    }
    KEYWORDS
        .iter()
        .find(|k| k.name == key)
        .map(|k| (k.name, value.to_owned()))
        .ok_or_else(|| invalid(format!("invalid connection option \"{key}\"")))
}

/// libpq's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn uri_prefix_len(text: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| text.starts_with(*p))
        .map(|p| p.len())
}

/// libpq's `recognized_connection_string`: a value of `dbname` that is itself a conninfo.
fn is_connection_string(value: &str) -> bool {
    uri_prefix_len(value).is_some() || value.contains('=')
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

    fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        sys: &SystemDefaults,
    ) -> Result<ResolvedConnInfo> {
        let mut params = self.params.clone();

        // Service file, then environment, fill what the conninfo left unset.
        let service = params
            .get("service")
            .cloned()
            .or_else(|| env("PGSERVICE"))
            .filter(|s| !s.is_empty());
        if let Some(service) = service {
            for (key, value) in service_params(&service, &params, env, sys)? {
                params.entry(key).or_insert(value);
            }
        }
        for keyword in KEYWORDS {
            if let Some(var) = keyword.env
                && !params.contains_key(keyword.name)
                && let Some(value) = env(var)
            {
                params.insert(keyword.name, value);
            }
        }
        // An empty value means "the default", as in libpq.
        let val = |key: &str| params.get(key).map(String::as_str).unwrap_or("");

        for key in IGNORED {
            if !val(key).is_empty() {
                tracing::debug!("connection option \"{key}\" is not supported and is ignored");
            }
        }

        let mut config = tokio_postgres::Config::new();

        // Host, hostaddr and port: libpq's list rules, then the first entry only.
        let hosts: Vec<&str> = val("host").split(',').collect();
        let hostaddrs: Vec<&str> = match val("hostaddr") {
            "" => Vec::new(),
            list => list.split(',').collect(),
        };
        let ports: Vec<&str> = val("port").split(',').collect();
        let host_count = if val("host").is_empty() && !hostaddrs.is_empty() {
            hostaddrs.len()
        } else {
            hosts.len()
        };
        if !val("host").is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
            return Err(invalid(format!(
                "could not match {} host names to {} hostaddr values",
                hosts.len(),
                hostaddrs.len()
            )));
        }
        if ports.len() > 1 && ports.len() != host_count {
            return Err(invalid(format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                host_count
            )));
        }
        if host_count > 1 {
            let list = if val("host").is_empty() {
                val("hostaddr")
            } else {
                val("host")
            };
            tracing::warn!("several hosts given (\"{list}\"); only the first one is used");
        }
        let host = hosts[0];
        let hostaddr = hostaddrs.first().copied().unwrap_or("");
        let port_text = match ports[0] {
            "" => "5432",
            p => p,
        };
        let port = match parse_int("port", port_text)? {
            p @ 1..=65535 => p as u16,
            _ => return Err(invalid(format!("invalid port number: \"{port_text}\""))),
        };
        config.port(port);

        let mut host_defaulted = false;
        let endpoint = if !hostaddr.is_empty() {
            let addr: IpAddr = hostaddr
                .parse()
                .map_err(|_| invalid(format!("could not parse network address \"{hostaddr}\"")))?;
            config.hostaddr(addr);
            let name = if host.is_empty() || is_socket_path(host) {
                addr.to_string()
            } else {
                // libpq connects to hostaddr but uses host for TLS and the password file.
                config.host(host);
                host.to_owned()
            };
            Endpoint::Tcp {
                host: name,
                hostaddr: Some(addr),
                port,
            }
        } else if host.is_empty() {
            host_defaulted = true;
            let dir = sys.default_socket_dir(port);
            config.host_path(&dir);
            Endpoint::Socket { dir, port }
        } else if host.starts_with('@') {
            return Err(Error::Config(format!(
                "host \"{host}\": abstract Unix sockets are not supported"
            )));
        } else if host.starts_with('/') {
            config.host_path(host);
            Endpoint::Socket {
                dir: PathBuf::from(host),
                port,
            }
        } else {
            config.host(host);
            Endpoint::Tcp {
                host: host.to_owned(),
                hostaddr: None,
                port,
            }
        };

        let user = match val("user") {
            "" => sys.os_user(env)?,
            u => u.to_owned(),
        };
        let dbname = match val("dbname") {
            "" => user.clone(),
            d => d.to_owned(),
        };
        config.user(&user);
        config.dbname(&dbname);

        let mut password_file = None;
        if !val("password").is_empty() {
            config.password(val("password"));
        } else {
            let file = match val("passfile") {
                "" => sys.home_dir(env).map(|h| h.join(".pgpass")),
                f => Some(PathBuf::from(f)),
            };
            if let Some(file) = file {
                // libpq keys the file on host, else hostaddr; the default socket is "localhost".
                let pw_host = if host.is_empty() { hostaddr } else { host };
                let pw_host = if pw_host.is_empty()
                    || host_defaulted
                    || pw_host == LIBPQ_DEFAULT_SOCKET_DIR
                {
                    "localhost"
                } else {
                    pw_host
                };
                if let Some(password) =
                    password_from_file(&file, pw_host, port_text, &dbname, &user)
                {
                    config.password(password);
                    password_file = Some(file);
                }
            }
        }

        if !val("options").is_empty() {
            config.options(val("options"));
        }
        if !val("application_name").is_empty() {
            config.application_name(val("application_name"));
        }
        let fallback_application_name =
            Some(val("fallback_application_name").to_owned()).filter(|s| !s.is_empty());

        if !val("connect_timeout").is_empty() {
            // libpq: zero or negative waits forever, and the minimum is 2 seconds.
            let seconds = parse_int("connect_timeout", val("connect_timeout"))?;
            if seconds > 0 {
                config.connect_timeout(Duration::from_secs(seconds.max(2) as u64));
            }
        }
        if !val("keepalives").is_empty() {
            config.keepalives(parse_int("keepalives", val("keepalives"))? != 0);
        }
        if !val("keepalives_idle").is_empty() {
            let seconds = parse_int("keepalives_idle", val("keepalives_idle"))?;
            if seconds > 0 {
                config.keepalives_idle(Duration::from_secs(seconds as u64));
            }
        }
        if !val("keepalives_interval").is_empty() {
            let seconds = parse_int("keepalives_interval", val("keepalives_interval"))?;
            if seconds > 0 {
                config.keepalives_interval(Duration::from_secs(seconds as u64));
            }
        }
        if !val("keepalives_count").is_empty() {
            let count = parse_int("keepalives_count", val("keepalives_count"))?;
            if count > 0 {
                config.keepalives_retries(u32::try_from(count).unwrap_or(u32::MAX));
            }
        }
        if !val("tcp_user_timeout").is_empty() {
            let millis = parse_int("tcp_user_timeout", val("tcp_user_timeout"))?;
            if millis > 0 {
                config.tcp_user_timeout(Duration::from_millis(millis as u64));
            }
        }

        match val("target_session_attrs") {
            "" | "any" | "prefer-standby" => {}
            "read-write" => {
                config.target_session_attrs(TargetSessionAttrs::ReadWrite);
            }
            "read-only" => {
                config.target_session_attrs(TargetSessionAttrs::ReadOnly);
            }
            v @ ("primary" | "standby") => {
                return Err(Error::Config(format!(
                    "target_session_attrs=\"{v}\" is not supported (use \"read-write\" or \"read-only\")"
                )));
            }
            v => {
                return Err(invalid(format!(
                    "invalid target_session_attrs value: \"{v}\""
                )));
            }
        }
        match val("load_balance_hosts") {
            "" | "disable" | "random" => {}
            v => {
                return Err(invalid(format!(
                    "invalid load_balance_hosts value: \"{v}\""
                )));
            }
        }

        // TLS. sslrootcert=system makes verify-full the default and the only mode allowed.
        let sslmode = match (val("sslmode"), val("sslrootcert")) {
            ("", "system") => SslMode::VerifyFull,
            ("", _) => SslMode::Prefer,
            (v, rootcert) => {
                let mode = SslMode::parse(v)
                    .ok_or_else(|| invalid(format!("invalid sslmode value: \"{v}\"")))?;
                if rootcert == "system" && mode != SslMode::VerifyFull {
                    return Err(invalid(format!(
                        "weak sslmode \"{v}\" may not be used with sslrootcert=system (use \"verify-full\")"
                    )));
                }
                mode
            }
        };
        config.ssl_mode(match sslmode {
            SslMode::Disable | SslMode::Allow => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        match val("sslnegotiation") {
            "" | "postgres" => {}
            "direct" => {
                if !sslmode.requires_tls() {
                    return Err(invalid(format!(
                        "weak sslmode \"{}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")",
                        sslmode.as_str()
                    )));
                }
                config.ssl_negotiation(SslNegotiation::Direct);
            }
            v => return Err(invalid(format!("invalid sslnegotiation value: \"{v}\""))),
        }
        match val("channel_binding") {
            "" | "prefer" => {}
            "disable" => {
                config.channel_binding(ChannelBinding::Disable);
            }
            "require" => {
                config.channel_binding(ChannelBinding::Require);
            }
            v => return Err(invalid(format!("invalid channel_binding value: \"{v}\""))),
        }
        match val("sslcertmode") {
            "" | "disable" | "allow" => {}
            "require" => {
                return Err(Error::Config(
                    "sslcertmode=require needs TLS, which this build does not support yet".into(),
                ));
            }
            v => return Err(invalid(format!("invalid sslcertmode value: \"{v}\""))),
        }
        match val("gssencmode") {
            "" | "disable" | "prefer" => {}
            "require" => {
                return Err(Error::Config(
                    "gssencmode value \"require\" invalid when GSSAPI support is not compiled in"
                        .into(),
                ));
            }
            v => return Err(invalid(format!("invalid gssencmode value: \"{v}\""))),
        }
        for key in ["require_auth", "requirepeer"] {
            if !val(key).is_empty() {
                return Err(Error::Config(format!(
                    "connection option \"{key}\" is not supported by this build"
                )));
            }
        }
        match val("replication").to_ascii_lowercase().as_str() {
            "" | "0" | "off" | "false" | "no" => {}
            _ => {
                return Err(Error::Config(
                    "replication connections are not supported".into(),
                ));
            }
        }
        match val("client_encoding").to_ascii_lowercase().as_str() {
            "" | "utf8" | "utf-8" | "unicode" | "auto" => {}
            other => {
                tracing::debug!("client_encoding \"{other}\" ignored: the session always uses UTF8")
            }
        }

        Ok(ResolvedConnInfo {
            config,
            sslmode,
            endpoint,
            password_file,
            fallback_application_name,
        })
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

/// Connects without TLS, spawns the connection task on the current tokio runtime and returns
/// the client and that task.
///
/// If neither the conninfo nor `PGAPPNAME` set `application_name`, the session gets
/// `default_application_name` (if empty, libpq's `fallback_application_name` if given).
/// `sslmode=require`, `verify-ca` and `verify-full` are refused (no TLS support yet); `prefer`
/// and `allow` connect in clear text, like a libpq built without SSL.
///
/// Errors are worded like libpq's (`connection to server on socket "..." failed: ...`), with
/// the server's message when it sent one; they never contain the password.
pub async fn connect(
    info: &ResolvedConnInfo,
    default_application_name: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>)> {
    if info.sslmode.requires_tls() {
        return Err(Error::Config(format!(
            "sslmode={} needs TLS, which this build does not support yet",
            info.sslmode.as_str()
        )));
    }
    let mut config = info.config.clone();
    if config.get_application_name().is_none() {
        if !default_application_name.is_empty() {
            config.application_name(default_application_name);
        } else if let Some(name) = &info.fallback_application_name {
            config.application_name(name);
        }
    }
    // libpq's connect_timeout bounds the whole establishment, tokio-postgres's only the
    // socket connection: a server that accepts and never answers would hang us.
    let attempt = config.connect(tokio_postgres::NoTls);
    let result = match config.get_connect_timeout() {
        Some(limit) => tokio::time::timeout(*limit, attempt).await.map_err(|_| {
            Error::Postgres(format!(
                "connection to {} failed: timeout expired",
                info.endpoint
            ))
        })?,
        None => attempt.await,
    };
    let (client, connection) =
        result.map_err(|e| Error::Postgres(describe_connect_error(info, &e)))?;
    let task = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("PostgreSQL connection lost: {}", error_chain(&e));
        }
    });
    Ok((client, task))
}

/// `e` and its sources, joined with ": ".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A connection failure as libpq words it.
fn describe_connect_error(info: &ResolvedConnInfo, e: &tokio_postgres::Error) -> String {
    let prefix = format!("connection to {} failed", info.endpoint);
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{prefix}: {}:  {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("\nDETAIL:  {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("\nHINT:  {hint}"));
        }
        if *db.code() == tokio_postgres::error::SqlState::INVALID_PASSWORD
            && let Some(file) = &info.password_file
        {
            text.push_str(&format!(
                "\npassword retrieved from file \"{}\"",
                file.display()
            ));
        }
        return text;
    }

    const CLOSED: &str = "server closed the connection unexpectedly\n\tThis probably means \
        the server terminated abnormally\n\tbefore or while processing the request.";
    if e.is_closed() {
        return format!("{prefix}: {CLOSED}");
    }
    let connecting = e.to_string() == "error connecting to server";
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            let mut reason = io.to_string();
            if let Some(code) = io.raw_os_error()
                && let Some(stripped) = reason.strip_suffix(&format!(" (os error {code})"))
            {
                reason = stripped.to_owned();
            }
            if let Some(rest) = reason.strip_prefix("failed to lookup address information: ")
                && let Endpoint::Tcp { host, .. } = &info.endpoint
            {
                return format!("could not translate host name \"{host}\" to address: {rest}");
            }
            // libpq says this for a reset too, once connected.
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || (io.kind() == std::io::ErrorKind::ConnectionReset && !connecting)
                || reason == "bytes remaining on stream"
            {
                return format!("{prefix}: {CLOSED}");
            }
            if io.kind() == std::io::ErrorKind::TimedOut && io.raw_os_error().is_none() {
                return format!("{prefix}: timeout expired");
            }
            let hint = match (&info.endpoint, connecting && io.raw_os_error().is_some()) {
                (Endpoint::Socket { .. }, true) => {
                    "\n\tIs the server running locally and accepting connections on that socket?"
                }
                (Endpoint::Tcp { .. }, true) => {
                    "\n\tIs the server running on that host and accepting TCP/IP connections?"
                }
                _ => "",
            };
            return format!("{prefix}: {reason}{hint}");
        }
        if s.to_string() == "password missing" {
            return format!("{prefix}: fe_sendauth: no password supplied");
        }
        source = s.source();
    }
    format!("{prefix}: {}", error_chain(e))
}

/// libpq's `parse_int_param`: an integer, surrounding whitespace allowed.
fn parse_int(key: &str, value: &str) -> Result<i64> {
    value
        .trim_matches(|c: char| c.is_ascii() && is_space(c as u8))
        .parse::<i64>()
        .ok()
        .ok_or_else(|| {
            invalid(format!(
                "invalid integer value \"{value}\" for connection option \"{key}\""
            ))
        })
}

fn is_socket_path(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

/// Parses `key=value` pairs the way libpq's `conninfo_parse` does.
fn parse_key_values(text: &str, info: &mut ConnInfo, expand_dbname: bool) -> Result<()> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut dbname_seen = !expand_dbname;
    // After a secret, an error about the next token may be quoting part of the secret (an
    // unquoted password with a space): don't repeat it.
    let mut after_secret = false;
    let masked = || {
        invalid(
            "invalid connection info string after the password value \
             (values containing spaces must be quoted)",
        )
    };
    while i < b.len() {
        if is_space(b[i]) {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && !is_space(b[i]) {
            i += 1;
        }
        let name = &text[name_start..i];
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            if after_secret {
                return Err(masked());
            }
            return Err(invalid(format!(
                "missing \"=\" after \"{name}\" in connection info string"
            )));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                let Some(&c) = b.get(i) else {
                    return Err(invalid(
                        "unterminated quoted string in connection info string",
                    ));
                };
                i += 1;
                match c {
                    b'\\' => {
                        if let Some(&next) = b.get(i) {
                            value.push(next);
                            i += 1;
                        }
                    }
                    b'\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = b.get(i) {
                i += 1;
                match c {
                    c if is_space(c) => break,
                    b'\\' => {
                        if let Some(&next) = b.get(i) {
                            value.push(next);
                            i += 1;
                        }
                    }
                    c => value.push(c),
                }
            }
        }
        // Only ASCII bytes were removed from valid UTF-8, so this cannot fail.
        let value = String::from_utf8(value)
            .map_err(|_| invalid("invalid UTF-8 in connection info string"))?;

        if name == "dbname" && !dbname_seen {
            dbname_seen = true;
            if is_connection_string(&value) {
                info.set_dbname_expanding(&value)?;
                after_secret = false;
                continue;
            }
        }
        let (key, value) =
            canonical(name, &value).map_err(|e| if after_secret { masked() } else { e })?;
        after_secret = is_secret(key);
        info.params.insert(key, value);
    }
    Ok(())
}

/// Percent-decodes a URI component (libpq's `conninfo_uri_decode`; `+` stays `+`). `what`
/// names the component in errors; a password is never quoted.
fn uri_decode(text: &str, what: &str) -> Result<String> {
    let shown = if what == "password" {
        String::new()
    } else {
        format!(": \"{text}\"")
    };
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) else {
                return Err(invalid(format!(
                    "invalid percent-encoded token in URI {what}{shown}"
                )));
            };
            let c = (hi * 16 + lo) as u8;
            if c == 0 {
                return Err(invalid(format!(
                    "forbidden value %00 in percent-encoded value in URI {what}{shown}"
                )));
            }
            out.push(c);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        invalid(format!(
            "percent-encoded value in URI {what} is not valid UTF-8{shown}"
        ))
    })
}

/// Parses a `postgresql://` URI the way libpq's `conninfo_uri_parse_options` does.
fn parse_uri(uri: &str, prefix: usize, info: &mut ConnInfo) -> Result<()> {
    let rest = &uri[prefix..];
    let b = rest.as_bytes();
    let mut p = 0;

    // [user[:password]@]: the first '@' before any '/'.
    if let Some(at) = b.iter().position(|&c| c == b'@' || c == b'/')
        && b[at] == b'@'
    {
        let credentials = &rest[..at];
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (credentials, None),
        };
        if !user.is_empty() {
            info.params.insert("user", uri_decode(user, "user name")?);
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            info.params
                .insert("password", uri_decode(password, "password")?);
        }
        p = at + 1;
    }

    // host[:port][,host[:port]...]
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut terminator;
    loop {
        let host;
        if b.get(p) == Some(&b'[') {
            p += 1;
            let start = p;
            while p < b.len() && b[p] != b']' {
                p += 1;
            }
            if p >= b.len() {
                return Err(invalid(
                    "end of string reached when looking for matching \"]\" in IPv6 host address in URI",
                ));
            }
            if p == start {
                return Err(invalid("IPv6 host address may not be empty in URI"));
            }
            host = &rest[start..p];
            p += 1;
            if let Some(&c) = b.get(p)
                && !matches!(c, b':' | b'/' | b'?' | b',')
            {
                return Err(invalid(format!(
                    "unexpected character \"{}\" at position {} in URI (expected \":\" or \"/\")",
                    rest[p..].chars().next().unwrap_or('?'),
                    prefix + p + 1
                )));
            }
        } else {
            let start = p;
            while p < b.len() && !matches!(b[p], b':' | b'/' | b'?' | b',') {
                p += 1;
            }
            host = &rest[start..p];
        }
        hosts.push_str(host);
        terminator = b.get(p).copied();
        if terminator == Some(b':') {
            p += 1;
            let start = p;
            while p < b.len() && !matches!(b[p], b'/' | b'?' | b',') {
                p += 1;
            }
            ports.push_str(&rest[start..p]);
            terminator = b.get(p).copied();
        }
        if terminator != Some(b',') {
            break;
        }
        p += 1;
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        info.params.insert("host", uri_decode(&hosts, "host")?);
    }
    if !ports.is_empty() {
        info.params.insert("port", uri_decode(&ports, "port")?);
    }

    // [/dbname]
    if terminator == Some(b'/') {
        p += 1;
        let start = p;
        while p < b.len() && b[p] != b'?' {
            p += 1;
        }
        let dbname = &rest[start..p];
        if !dbname.is_empty() {
            info.params
                .insert("dbname", uri_decode(dbname, "database name")?);
        }
        terminator = b.get(p).copied();
    }

    // [?key=value&...]
    if terminator.is_some() {
        parse_uri_query(&rest[p + 1..], info)?;
    }
    Ok(())
}

fn parse_uri_query(query: &str, info: &mut ConnInfo) -> Result<()> {
    let mut pairs: Vec<&str> = query.split('&').collect();
    // One trailing '&' (or an empty query) is accepted, as by libpq.
    if pairs.last() == Some(&"") {
        pairs.pop();
    }
    let mut after_secret = false;
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            if after_secret {
                return Err(invalid(
                    "missing key/value separator \"=\" in URI query parameter after the password \
                     (percent-encode \"&\" in values)",
                ));
            }
            return Err(invalid(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{pair}\""
            )));
        };
        if value.contains('=') {
            return Err(invalid(format!(
                "extra key/value separator \"=\" in URI query parameter: \"{key}\""
            )));
        }
        let key = uri_decode(key, "query parameter name")?;
        let value = uri_decode(
            value,
            if is_secret(&key) {
                "password"
            } else {
                "query parameter"
            },
        )?;
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_owned(), "require".to_owned())
        } else {
            (key, value)
        };
        let (key, value) = canonical(&key, &value).map_err(|_| {
            if after_secret {
                invalid("invalid URI query parameter after the password (percent-encode \"&\" in values)")
            } else {
                invalid(format!("invalid URI query parameter: \"{key}\""))
            }
        })?;
        after_secret = is_secret(key);
        info.params.insert(key, value);
    }
    Ok(())
}

/// What the machine provides when the user did not: socket directories, the user database,
/// the effective user ID, the system configuration directory. Injected by the tests.
struct SystemDefaults {
    socket_dirs: Vec<PathBuf>,
    passwd: PathBuf,
    euid: Option<u32>,
    sysconfdir: PathBuf,
}

impl SystemDefaults {
    fn system() -> Self {
        SystemDefaults {
            socket_dirs: DEFAULT_SOCKET_DIRS.iter().map(PathBuf::from).collect(),
            passwd: PathBuf::from("/etc/passwd"),
            euid: effective_uid(),
            sysconfdir: PathBuf::from(DEFAULT_SYSCONFDIR),
        }
    }

    /// The first socket directory holding the server's socket for `port`, else the first that
    /// exists, else the first.
    fn default_socket_dir(&self, port: u16) -> PathBuf {
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
    fn os_user(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
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
    fn home_dir(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
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

/// The parameters of `service` from the user's service file, else the system one (libpq's
/// `parseServiceInfo`). Only keys not set in `params` will be used by the caller.
fn service_params(
    service: &str,
    params: &BTreeMap<&'static str, String>,
    env: &dyn Fn(&str) -> Option<String>,
    sys: &SystemDefaults,
) -> Result<Vec<(&'static str, String)>> {
    let user_file = params
        .get("servicefile")
        .cloned()
        .or_else(|| env("PGSERVICEFILE"))
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| sys.home_dir(env).map(|h| h.join(".pg_service.conf")));
    let sysconfdir = env("PGSYSCONFDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| sys.sysconfdir.clone());
    for file in user_file
        .into_iter()
        .chain([sysconfdir.join("pg_service.conf")])
    {
        if let Some(found) = read_service_file(&file, service)? {
            return Ok(found);
        }
    }
    Err(invalid(format!(
        "definition of service \"{service}\" not found"
    )))
}

/// The `[service]` group of a service file; `None` if the file or the group is missing.
fn read_service_file(file: &Path, service: &str) -> Result<Option<Vec<(&'static str, String)>>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let syntax = |n: usize| {
        invalid(format!(
            "syntax error in service file \"{}\", line {n}",
            file.display()
        ))
    };
    let mut found: Option<Vec<(&'static str, String)>> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if group
                .strip_prefix(service)
                .is_some_and(|r| r.starts_with(']'))
            {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(entries) = found.as_mut() else {
            continue;
        };
        let (key, value) = line.split_once('=').ok_or_else(|| syntax(n + 1))?;
        if key == "service" {
            return Err(invalid(format!(
                "nested service specifications not supported in service file \"{}\", line {}",
                file.display(),
                n + 1
            )));
        }
        let (key, value) = canonical(key, value).map_err(|_| syntax(n + 1))?;
        // The first setting of a key wins.
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, value));
        }
    }
    Ok(found)
}

/// The password for host/port/dbname/user from a libpq password file, if one line matches.
/// A missing file is no error; a file that is not a plain file or is readable by group or
/// others is ignored with a warning, as libpq does.
fn password_from_file(
    file: &Path,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<Vec<u8>> {
    let metadata = std::fs::metadata(file).ok()?;
    if !metadata.is_file() {
        tracing::warn!("password file \"{}\" is not a plain file", file.display());
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                file.display()
            );
            return None;
        }
    }
    let content = std::fs::read(file).ok()?;
    content.split(|&c| c == b'\n').find_map(|line| {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\r' | b'\n') {
            end -= 1;
        }
        let line = &line[..end];
        if line.is_empty() || line[0] == b'#' {
            return None;
        }
        let rest = match_pgpass_field(line, host.as_bytes())?;
        let rest = match_pgpass_field(rest, port.as_bytes())?;
        let rest = match_pgpass_field(rest, dbname.as_bytes())?;
        let rest = match_pgpass_field(rest, user.as_bytes())?;
        // The password runs to the next unescaped ':' or the end of the line.
        let mut password = Vec::new();
        let mut i = 0;
        while i < rest.len() && rest[i] != b':' {
            if rest[i] == b'\\' && i + 1 < rest.len() {
                i += 1;
            }
            password.push(rest[i]);
            i += 1;
        }
        Some(password)
    })
}

/// libpq's `pwdfMatchesString`: if the field at the start of `line` matches `token` (`*`
/// matches anything, `\` escapes), the rest of the line after its ':'.
fn match_pgpass_field<'a>(line: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if line.starts_with(b"*:") {
        return Some(&line[2..]);
    }
    let (mut i, mut t, mut escaped) = (0, 0, false);
    while i < line.len() {
        if line[i] == b'\\' && !escaped {
            i += 1;
            escaped = true;
            if i >= line.len() {
                return None;
            }
        }
        if line[i] == b':' && t == token.len() && !escaped {
            return Some(&line[i + 1..]);
        }
        escaped = false;
        if t == token.len() || line[i] != token[t] {
            return None;
        }
        i += 1;
        t += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tokio_postgres::config::Host;

    fn parse(text: &str) -> ConnInfo {
        ConnInfo::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn parse_err(text: &str) -> String {
        match ConnInfo::parse(text) {
            Ok(info) => panic!("{text}: parsed as {info:?}"),
            Err(e) => {
                assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
                e.to_string()
            }
        }
    }

    fn pairs(info: &ConnInfo) -> Vec<(&str, &str)> {
        info.params.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// A fake machine: two socket directories, a passwd file with uid 1000 = alice, home in
    /// the temp dir.
    struct Machine {
        dir: tempfile::TempDir,
        sys: SystemDefaults,
    }

    impl Machine {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let run = dir.path().join("run");
            let tmp = dir.path().join("tmp");
            let home = dir.path().join("home");
            std::fs::create_dir(&home).unwrap();
            let passwd = dir.path().join("passwd");
            std::fs::write(
                &passwd,
                format!(
                    "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::{}:/bin/sh\n",
                    home.display()
                ),
            )
            .unwrap();
            let sys = SystemDefaults {
                socket_dirs: vec![run, tmp],
                passwd,
                euid: Some(1000),
                sysconfdir: dir.path().join("etc"),
            };
            Machine { dir, sys }
        }

        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }

        fn resolve(&self, info: &ConnInfo, env: &[(&str, &str)]) -> Result<ResolvedConnInfo> {
            let env: HashMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            info.resolve_with(&|k| env.get(k).cloned(), &self.sys)
        }

        fn resolved(&self, text: &str, env: &[(&str, &str)]) -> ResolvedConnInfo {
            self.resolve(&parse(text), env)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
        }

        /// Writes a password file with the given mode; returns its path.
        fn pgpass(&self, content: &str, mode: u32) -> PathBuf {
            use std::os::unix::fs::PermissionsExt;
            let path = self.home().join(".pgpass");
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    fn password(r: &ResolvedConnInfo) -> Option<&str> {
        r.config
            .get_password()
            .map(|p| std::str::from_utf8(p).unwrap())
    }

    fn unix_host(r: &ResolvedConnInfo) -> PathBuf {
        match r.config.get_hosts() {
            [Host::Unix(p)] => p.clone(),
            other => panic!("not one Unix host: {other:?}"),
        }
    }

    fn tcp_host(r: &ResolvedConnInfo) -> String {
        match r.config.get_hosts() {
            [Host::Tcp(h)] => h.clone(),
            other => panic!("not one TCP host: {other:?}"),
        }
    }

    #[test]
    fn key_values_with_quotes_escapes_and_spaces() {
        let info = parse(
            "  host = db.example port=5433\tuser= bob dbname ='my db' \
             options='-c search_path=a\\'b' password=a\\ b\\\\c application_name=''",
        );
        assert_eq!(
            pairs(&info),
            [
                ("application_name", ""),
                ("dbname", "my db"),
                ("host", "db.example"),
                ("options", "-c search_path=a'b"),
                ("password", "a b\\c"),
                ("port", "5433"),
                ("user", "bob"),
            ]
        );
        assert_eq!(parse("").params.len(), 0);
        // Later values override earlier ones; requiressl becomes sslmode.
        let info = parse("port=1 port=2 requiressl=1");
        assert_eq!(info.get("port"), Some("2"));
        assert_eq!(info.get("sslmode"), Some("require"));
        assert_eq!(info.get("requiressl"), None);
        // Non-ASCII values survive.
        assert_eq!(parse("dbname='bàse ü'").get("dbname"), Some("bàse ü"));
    }

    #[test]
    fn key_value_errors() {
        assert_eq!(
            parse_err("host=x bogus=1"),
            "invalid connection option \"bogus\""
        );
        assert_eq!(
            parse_err("dbname='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            parse_err("dbname='abc\\'"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            parse_err("host=x dbname"),
            "missing \"=\" after \"dbname\" in connection info string"
        );
        // A password with an unquoted space must not leak into the message.
        for text in ["password=top secret", "password=top secret=1 host=x"] {
            let e = parse_err(text);
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn uri_forms() {
        let info = parse("postgresql://bob:s%40cret@db.example:5433/mydb");
        assert_eq!(
            pairs(&info),
            [
                ("dbname", "mydb"),
                ("host", "db.example"),
                ("password", "s@cret"),
                ("port", "5433"),
                ("user", "bob"),
            ]
        );
        let info = parse("postgres://%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(info.get("host"), Some("/var/run/postgresql"));
        assert_eq!(info.get("dbname"), Some("db"));

        let info = parse("postgresql:///mydb?host=/tmp&port=5433&application_name=x");
        assert_eq!(
            pairs(&info),
            [
                ("application_name", "x"),
                ("dbname", "mydb"),
                ("host", "/tmp"),
                ("port", "5433"),
            ]
        );
        let info = parse("postgresql://h?sslmode=disable&connect_timeout=10&options=-c%20a%3Db&");
        assert_eq!(
            pairs(&info),
            [
                ("connect_timeout", "10"),
                ("host", "h"),
                ("options", "-c a=b"),
                ("sslmode", "disable"),
            ]
        );
        assert_eq!(parse("postgresql://").params.len(), 0);
        assert_eq!(parse("postgresql://u@").get("user"), Some("u"));
        assert_eq!(
            pairs(&parse("postgresql://[::1]:5433,h2:5434/db")),
            [("dbname", "db"), ("host", "::1,h2"), ("port", "5433,5434")]
        );
        assert_eq!(
            parse("postgresql://h/db?ssl=true").get("sslmode"),
            Some("require")
        );
        // An empty database name is not set (PGDATABASE still applies).
        assert_eq!(parse("postgresql://h/").get("dbname"), None);

        assert_eq!(
            parse_err("postgresql://h/db?bogus=1"),
            "invalid URI query parameter: \"bogus\""
        );
        assert!(parse_err("postgresql://h/db?port").contains("missing key/value separator"));
        assert!(parse_err("postgresql://h/db?port=1=2").contains("extra key/value separator"));
        assert!(parse_err("postgresql://[::1/db").contains("\"]\""));
        assert!(parse_err("postgresql://h/d%zz").contains("invalid percent-encoded token"));
        assert!(parse_err("postgresql://h/d%00").contains("%00"));
        let e = parse_err("postgresql://u:p%zzsecret@h/db");
        assert!(!e.contains("secret"), "{e}");
        let e = parse_err("postgresql://h/db?password=abc&secret");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn dbname_expansion() {
        let info = parse("host=ignored port=1 dbname=postgresql://u@h:5433/db?application_name=a");
        assert_eq!(
            pairs(&info),
            [
                ("application_name", "a"),
                ("dbname", "db"),
                ("host", "h"),
                ("port", "5433"),
                ("user", "u"),
            ]
        );
        // A conninfo in dbname; later keys override it; only the first dbname is expanded.
        let info = parse("dbname='host=h dbname=d port=2' port=3 dbname='x=y'");
        assert_eq!(
            pairs(&info),
            [("dbname", "x=y"), ("host", "h"), ("port", "3")]
        );
        // An expanded URI without a database leaves dbname unset.
        assert_eq!(parse("dbname=postgresql://h").get("dbname"), None);
        assert_eq!(
            parse_err("dbname='bogus=1'"),
            "invalid connection option \"bogus\""
        );
    }

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
    fn environment_precedence_and_defaults() {
        let m = Machine::new();
        // Explicit beats the environment.
        let r = m.resolved(
            "host=explicit port=6000 user=u dbname=d",
            &[
                ("PGHOST", "envhost"),
                ("PGPORT", "7000"),
                ("PGUSER", "eu"),
                ("PGDATABASE", "ed"),
            ],
        );
        assert_eq!(tcp_host(&r), "explicit");
        assert_eq!(r.config.get_ports(), [6000]);
        assert_eq!(r.config.get_user(), Some("u"));
        assert_eq!(r.config.get_dbname(), Some("d"));

        // The environment beats the defaults.
        let r = m.resolved(
            "",
            &[
                ("PGHOST", "envhost"),
                ("PGPORT", "7000"),
                ("PGUSER", "eu"),
                ("PGDATABASE", "ed"),
                ("PGAPPNAME", "envapp"),
                ("PGOPTIONS", "-c work_mem=1MB"),
                ("PGCONNECT_TIMEOUT", "1"),
                ("PGPASSWORD", "envpw"),
                ("PGSSLMODE", "disable"),
                ("PGSSLROOTCERT", "/nowhere"),
            ],
        );
        assert_eq!(tcp_host(&r), "envhost");
        assert_eq!(r.config.get_ports(), [7000]);
        assert_eq!(r.config.get_user(), Some("eu"));
        assert_eq!(r.config.get_dbname(), Some("ed"));
        assert_eq!(r.config.get_application_name(), Some("envapp"));
        assert_eq!(r.config.get_options(), Some("-c work_mem=1MB"));
        assert_eq!(
            r.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(password(&r), Some("envpw"));
        assert_eq!(r.sslmode, SslMode::Disable);
        assert_eq!(r.config.get_ssl_mode(), PgSslMode::Disable);
        assert_eq!(
            r.endpoint,
            Endpoint::Tcp {
                host: "envhost".into(),
                hostaddr: None,
                port: 7000
            }
        );

        // Defaults: the first existing socket directory, 5432, the OS user, dbname = user.
        let r = m.resolved("", &[]);
        assert_eq!(
            unix_host(&r),
            m.sys.socket_dirs[0],
            "nothing exists: the first"
        );
        assert_eq!(r.config.get_ports(), [5432]);
        assert_eq!(r.config.get_user(), Some("alice"));
        assert_eq!(r.config.get_dbname(), Some("alice"));
        assert_eq!(r.config.get_application_name(), None);
        assert_eq!(r.config.get_password(), None);
        assert_eq!(r.sslmode, SslMode::Prefer);
        std::fs::create_dir(&m.sys.socket_dirs[1]).unwrap();
        assert_eq!(unix_host(&m.resolved("", &[])), m.sys.socket_dirs[1]);
        std::fs::create_dir(&m.sys.socket_dirs[0]).unwrap();
        assert_eq!(unix_host(&m.resolved("", &[])), m.sys.socket_dirs[0]);
        // The directory that holds the server's socket wins.
        std::fs::write(m.sys.socket_dirs[1].join(".s.PGSQL.5432"), "").unwrap();
        let r = m.resolved("", &[]);
        assert_eq!(unix_host(&r), m.sys.socket_dirs[1]);
        assert_eq!(
            r.endpoint.to_string(),
            format!(
                "server on socket \"{}/.s.PGSQL.5432\"",
                m.sys.socket_dirs[1].display()
            )
        );
        assert_eq!(
            unix_host(&m.resolved("port=5433", &[])),
            m.sys.socket_dirs[0]
        );

        // An explicit empty value blocks the environment and means the default.
        let r = m.resolved(
            "host='' user=''",
            &[("PGHOST", "envhost"), ("PGUSER", "eu")],
        );
        assert!(matches!(r.endpoint, Endpoint::Socket { .. }));
        assert_eq!(r.config.get_user(), Some("alice"));
        // PGDATABASE is the default database; the user name only after it.
        let r = m.resolved("user=bob", &[("PGDATABASE", "")]);
        assert_eq!(r.config.get_dbname(), Some("bob"));

        // The OS user falls back to $USER when the uid is not in the passwd file.
        let mut other = Machine::new();
        other.sys.euid = Some(4242);
        let r = other
            .resolve(&ConnInfo::default(), &[("USER", "carol")])
            .unwrap();
        assert_eq!(r.config.get_user(), Some("carol"));
        let e = other.resolve(&ConnInfo::default(), &[]).unwrap_err();
        assert!(e.to_string().contains("4242"), "{e}");
        // ...but an explicit user needs no lookup.
        assert!(other.resolve(&parse("user=x"), &[]).is_ok());
    }

    #[test]
    fn hosts_ports_and_options_mapping() {
        let m = Machine::new();
        let r = m.resolved("host=/some/dir port=6543", &[]);
        assert_eq!(unix_host(&r), PathBuf::from("/some/dir"));
        assert_eq!(
            r.endpoint.to_string(),
            "server on socket \"/some/dir/.s.PGSQL.6543\""
        );

        let r = m.resolved("host=db hostaddr=10.1.2.3", &[]);
        assert_eq!(
            r.config.get_hostaddrs(),
            ["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(tcp_host(&r), "db");
        assert_eq!(
            r.endpoint.to_string(),
            "server at \"db\" (10.1.2.3), port 5432"
        );
        let r = m.resolved("hostaddr=::1", &[("PGHOST", "")]);
        assert!(r.config.get_hosts().is_empty());
        assert_eq!(r.endpoint.to_string(), "server at \"::1\", port 5432");

        // Only the first host is used; counts are checked like libpq.
        let r = m.resolved("host=a,b port=1,2", &[]);
        assert_eq!(tcp_host(&r), "a");
        assert_eq!(r.config.get_ports(), [1]);
        assert!(m.resolve(&parse("host=a,b port=1,2,3"), &[]).is_err());
        assert!(m.resolve(&parse("host=a,b hostaddr=1.1.1.1"), &[]).is_err());

        for bad in [
            "port=0",
            "port=x",
            "port=70000",
            "hostaddr=db",
            "sslmode=bogus",
            "connect_timeout=abc",
            "target_session_attrs=bogus",
            "host=@abstract",
            "gssencmode=require",
            "require_auth=scram-sha-256",
            "replication=database",
            "sslrootcert=system sslmode=require",
        ] {
            assert!(m.resolve(&parse(bad), &[]).is_err(), "{bad}");
        }
        assert_eq!(
            m.resolve(&parse("port=x"), &[]).unwrap_err().to_string(),
            "invalid integer value \"x\" for connection option \"port\""
        );

        let r = m.resolved(
            "connect_timeout=' 10 ' keepalives=0 keepalives_idle=30 keepalives_interval=5 \
             keepalives_count=3 tcp_user_timeout=1500 target_session_attrs=read-write \
             sslcert=/x sslkey=/y krbsrvname=k gssencmode=prefer channel_binding=require \
             replication=false client_encoding=LATIN1 passfile=/nonexistent",
            &[],
        );
        assert_eq!(
            r.config.get_connect_timeout(),
            Some(&Duration::from_secs(10))
        );
        assert!(!r.config.get_keepalives());
        assert_eq!(r.config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(
            r.config.get_keepalives_interval(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(r.config.get_keepalives_retries(), Some(3));
        assert_eq!(
            r.config.get_tcp_user_timeout(),
            Some(&Duration::from_millis(1500))
        );
        assert_eq!(
            r.config.get_target_session_attrs(),
            TargetSessionAttrs::ReadWrite
        );
        assert_eq!(r.config.get_channel_binding(), ChannelBinding::Require);

        // TLS modes resolve; connect() refuses the ones that need TLS.
        for (mode, expected) in [
            ("allow", SslMode::Allow),
            ("require", SslMode::Require),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(
                m.resolved(&format!("sslmode={mode}"), &[]).sslmode,
                expected
            );
        }
        assert_eq!(
            m.resolved("sslrootcert=system", &[]).sslmode,
            SslMode::VerifyFull
        );
    }

    #[test]
    fn service_file() {
        let m = Machine::new();
        std::fs::write(
            m.home().join(".pg_service.conf"),
            "# comment\n[other]\nhost=wrong\n\n[mysvc]\n host=svchost\nport=6000\ndbname=svcdb\n[last]\nhost=no\n",
        )
        .unwrap();
        let home = m.home().display().to_string();
        let env = [
            ("HOME", home.as_str()),
            ("PGPORT", "7000"),
            ("PGUSER", "envuser"),
        ];
        let r = m.resolved("service=mysvc dbname=mine", &env);
        assert_eq!(tcp_host(&r), "svchost");
        assert_eq!(
            r.config.get_ports(),
            [6000],
            "the service beats the environment"
        );
        assert_eq!(
            r.config.get_dbname(),
            Some("mine"),
            "the conninfo beats the service"
        );
        assert_eq!(r.config.get_user(), Some("envuser"));
        let mut env_service = env.to_vec();
        env_service.push(("PGSERVICE", "mysvc"));
        assert_eq!(tcp_host(&m.resolved("", &env_service)), "svchost");

        // The system file, from PGSYSCONFDIR.
        let etc = m.dir.path().join("etc2");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("pg_service.conf"), "[sys]\nhost=syshost\n").unwrap();
        let etc = etc.display().to_string();
        let mut env_sys = env.to_vec();
        env_sys.push(("PGSYSCONFDIR", etc.as_str()));
        assert_eq!(tcp_host(&m.resolved("service=sys", &env_sys)), "syshost");

        let e = m.resolve(&parse("service=nope"), &env).unwrap_err();
        assert_eq!(e.to_string(), "definition of service \"nope\" not found");
        std::fs::write(m.home().join(".pg_service.conf"), "[bad]\nbogus=1\n").unwrap();
        let e = m.resolve(&parse("service=bad"), &env).unwrap_err();
        assert!(
            e.to_string().contains("syntax error in service file"),
            "{e}"
        );
    }

    #[test]
    fn pgpass_matching() {
        let m = Machine::new();
        let home = m.home().display().to_string();
        let env = [("HOME", home.as_str())];
        let file = m.pgpass(
            "# comment\n\
             \n\
             other:*:*:*:wrong\n\
             db.example:5432:app:bob:first\n\
             db.example:5432:app:bob:second\n\
             db.example:*:*:carol:wild\\:card\\\\x:ignored\n\
             we\\:ird:5432:*:*:escaped\r\n\
             localhost:5432:*:alice:local\n\
             /custom/dir:5433:*:*:custom\n\
             *:*:*:dave:star\n",
            0o600,
        );
        let pw = |text: &str| {
            let r = m.resolved(text, &env);
            password(&r).map(str::to_owned)
        };
        assert_eq!(
            pw("host=db.example user=bob dbname=app").as_deref(),
            Some("first")
        );
        assert_eq!(pw("host=db.example user=bob dbname=other"), None);
        assert_eq!(pw("host=db.example user=bob dbname=app port=5433"), None);
        assert_eq!(
            pw("host=db.example port=6000 user=carol dbname=x").as_deref(),
            Some("wild:card\\x")
        );
        assert_eq!(
            pw("host=we:ird user=x dbname=y").as_deref(),
            Some("escaped")
        );
        assert_eq!(pw("host=anywhere user=dave").as_deref(), Some("star"));
        // Unix sockets: the default socket directory is "localhost", others match by path.
        assert_eq!(pw("user=alice").as_deref(), Some("local"));
        assert_eq!(pw("host='' user=alice").as_deref(), Some("local"));
        assert_eq!(
            pw("host=/var/run/postgresql user=alice").as_deref(),
            Some("local")
        );
        assert_eq!(pw("host=localhost user=alice").as_deref(), Some("local"));
        assert_eq!(
            pw("host=/custom/dir port=5433 user=alice").as_deref(),
            Some("custom")
        );
        assert_eq!(pw("host=/custom/dir user=alice"), None);
        // An explicit password (or PGPASSWORD) wins over the file.
        assert_eq!(
            pw("host=db.example user=bob dbname=app password=given").as_deref(),
            Some("given")
        );
        let r = m.resolved(
            "host=db.example user=bob dbname=app",
            &[("HOME", home.as_str()), ("PGPASSWORD", "envpw")],
        );
        assert_eq!(password(&r), Some("envpw"));
        assert_eq!(r.password_file, None);
        let r = m.resolved("host=db.example user=bob dbname=app", &env);
        assert_eq!(r.password_file.as_deref(), Some(file.as_path()));

        // passfile= and PGPASSFILE point elsewhere.
        let elsewhere = m.dir.path().join("pw");
        std::fs::copy(&file, &elsewhere).unwrap();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(pw("user=dave"), None, "missing file: no password, no error");
        let p = elsewhere.display().to_string();
        assert_eq!(
            pw(&format!("user=dave passfile={p}")).as_deref(),
            Some("star")
        );
        let r = m.resolved("user=dave", &[("PGPASSFILE", p.as_str())]);
        assert_eq!(password(&r), Some("star"));

        // A file readable by others is ignored, as is a directory.
        m.pgpass("*:*:*:*:open\n", 0o644);
        assert_eq!(pw("user=dave"), None);
        m.pgpass("*:*:*:*:ok\n", 0o600);
        assert_eq!(pw("user=dave").as_deref(), Some("ok"));
        let r = m.resolved(&format!("user=dave passfile={}", m.home().display()), &[]);
        assert_eq!(password(&r), None);
        // Without HOME, the home directory comes from the passwd file.
        assert_eq!(password(&m.resolved("user=dave", &[])), Some("ok"));
    }

    #[test]
    fn pgpass_field_matching() {
        assert_eq!(match_pgpass_field(b"*:rest", b"x"), Some(&b"rest"[..]));
        assert_eq!(match_pgpass_field(b"abc:rest", b"abc"), Some(&b"rest"[..]));
        assert_eq!(match_pgpass_field(b"abc:rest", b"ab"), None);
        assert_eq!(match_pgpass_field(b"ab:rest", b"abc"), None);
        assert_eq!(
            match_pgpass_field(b"a\\:b:rest", b"a:b"),
            Some(&b"rest"[..])
        );
        assert_eq!(
            match_pgpass_field(b"a\\\\:rest", b"a\\"),
            Some(&b"rest"[..])
        );
        // '*' is a wildcard only as the whole field.
        assert_eq!(match_pgpass_field(b"*x:rest", b"abc"), None);
        assert_eq!(match_pgpass_field(b"abc", b"abc"), None);
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

    #[tokio::test]
    async fn connect_errors() {
        let m = Machine::new();
        let missing = m.dir.path().join("no-server");
        let r = m.resolved(&format!("host={} password=hunter2", missing.display()), &[]);
        let e = connect(&r, "barman_cloud_backup").await.unwrap_err();
        assert!(matches!(e, Error::Postgres(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "connection to server on socket \"{}/.s.PGSQL.5432\" failed: No such file or \
                 directory\n\tIs the server running locally and accepting connections on that socket?",
                missing.display()
            )
        );
        // Servers that close the connection: at once, after reading the startup message,
        // mid-message; then one that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            drop(listener.accept().await.unwrap());
            for reply in [&b""[..], b"R\0"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let len = socket.read_u32().await.unwrap() as usize;
                let mut startup = vec![0; len - 4];
                socket.read_exact(&mut startup).await.unwrap();
                socket.write_all(reply).await.unwrap();
            }
            let (_silent, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        for _ in 0..3 {
            let r = m.resolved(&format!("host=127.0.0.1 port={port} user=u"), &[]);
            let e = connect(&r, "x").await.unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "connection to server at \"127.0.0.1\", port {port} failed: server closed the \
                 connection unexpectedly\n\tThis probably means the server terminated \
                 abnormally\n\tbefore or while processing the request."
                )
            );
        }
        let r = m.resolved(
            &format!("host=127.0.0.1 port={port} user=u connect_timeout=2"),
            &[],
        );
        let e = connect(&r, "x").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("connection to server at \"127.0.0.1\", port {port} failed: timeout expired")
        );
        server.abort();

        let r = m.resolved("host=h sslmode=verify-full", &[]);
        let e = connect(&r, "x").await.unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "sslmode=verify-full needs TLS, which this build does not support yet"
        );
    }
}
