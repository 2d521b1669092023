//! The `postgresql://` URI form of a conninfo string, parsed as libpq's
//! `conninfo_uri_parse_options` does.

use super::keywords::{canonical, is_secret};
use super::{ConnInfo, invalid};
use crate::Result;

pub(super) fn uri_prefix_len(text: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .iter()
        .find(|p| text.starts_with(*p))
        .map(|p| p.len())
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
pub(super) fn parse_uri(uri: &str, prefix: usize, info: &mut ConnInfo) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{pairs, parse, parse_err};

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
}
