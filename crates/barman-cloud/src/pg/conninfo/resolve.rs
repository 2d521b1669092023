//! From the parameters as written to a [`tokio_postgres::Config`]: libpq's precedence (service
//! file, environment, defaults), its checks of each value, and what tokio-postgres can and
//! cannot honour.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::{
    ChannelBinding, SslMode as PgSslMode, SslNegotiation, TargetSessionAttrs,
};

use super::defaults::{LIBPQ_DEFAULT_SOCKET_DIR, SystemDefaults};
use super::keywords::{IGNORED, KEYWORDS};
use super::parse::is_space;
use super::pgpass::password_from_file;
use super::service::service_params;
use super::{ConnInfo, Endpoint, ResolvedConnInfo, SslMode, invalid};
use crate::{Error, Result};

impl ConnInfo {
    pub(super) fn resolve_with(
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
            return Err(Error::Unsupported(format!(
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
                return Err(Error::Unsupported(format!(
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
                return Err(Error::Unsupported(
                    "sslcertmode=require needs TLS, which this build does not support yet".into(),
                ));
            }
            v => return Err(invalid(format!("invalid sslcertmode value: \"{v}\""))),
        }
        match val("gssencmode") {
            "" | "disable" | "prefer" => {}
            "require" => {
                return Err(Error::Unsupported(
                    "gssencmode value \"require\" invalid when GSSAPI support is not compiled in"
                        .into(),
                ));
            }
            v => return Err(invalid(format!("invalid gssencmode value: \"{v}\""))),
        }
        for key in ["require_auth", "requirepeer"] {
            if !val(key).is_empty() {
                return Err(Error::Unsupported(format!(
                    "connection option \"{key}\" is not supported by this build"
                )));
            }
        }
        match val("replication").to_ascii_lowercase().as_str() {
            "" | "0" | "off" | "false" | "no" => {}
            _ => {
                return Err(Error::Unsupported(
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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{Machine, parse, password, tcp_host, unix_host};
    use super::*;

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

        // The OS user falls back to $USER when the uid has no account.
        let mut other = Machine::new();
        other.sys.euid = 4242;
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
}
