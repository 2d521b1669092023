//! libpq's connection keywords, the environment variables behind them, and which of them
//! hold secrets.

use super::invalid;
use crate::Result;

/// A connection keyword libpq knows, and the environment variable that supplies its default.
pub(super) struct Keyword {
    pub(super) name: &'static str,
    pub(super) env: Option<&'static str>,
}

const fn kw(name: &'static str, env: Option<&'static str>) -> Keyword {
    Keyword { name, env }
}

/// libpq's keywords (PostgreSQL 18). `requiressl` is accepted too and stored as `sslmode`.
pub(super) const KEYWORDS: &[Keyword] = &[
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
pub(super) const IGNORED: &[&str] = &[
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
pub(super) fn is_secret(key: &str) -> bool {
    matches!(
        key,
        "password"
            | "sslpassword"
            | "oauth_client_secret"
            | "scram_client_key"
            | "scram_server_key"
    )
}

/// The keyword's canonical name and value, or libpq's error for an unknown keyword.
pub(super) fn canonical(key: &str, value: &str) -> Result<(&'static str, String)> {
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
