//! The connection itself, and its failures worded as libpq words them.

use super::{Endpoint, ResolvedConnInfo};
use crate::error::error_chain;
use crate::{Error, Result};

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
        return Err(Error::Unsupported(format!(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests_support::Machine;
    use super::*;

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
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "sslmode=verify-full needs TLS, which this build does not support yet"
        );
    }
}
