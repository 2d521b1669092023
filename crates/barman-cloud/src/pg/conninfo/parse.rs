//! The `key=value` form of a conninfo string, parsed as libpq's `conninfo_parse` does.

use super::keywords::{canonical, is_secret};
use super::uri::uri_prefix_len;
use super::{ConnInfo, invalid};
use crate::Result;

/// libpq's `isspace` in the C locale.
pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// libpq's `recognized_connection_string`: a value of `dbname` that is itself a conninfo.
pub(super) fn is_connection_string(value: &str) -> bool {
    uri_prefix_len(value).is_some() || value.contains('=')
}

/// Parses `key=value` pairs the way libpq's `conninfo_parse` does.
pub(super) fn parse_key_values(text: &str, info: &mut ConnInfo, expand_dbname: bool) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{pairs, parse, parse_err};

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
}
