//! Secrets never reach a message. Everything we print on stderr (log lines, our errors,
//! clap's argument errors) goes through [`redact`], which hides
//!
//! - the secrets given on the command line or in the environment, wherever they show up
//!   (a library error may quote a URL, a bucket name, a rejected value): an
//!   `--sse-customer-key` that is not a `file://` URI (the key itself, given by mistake),
//!   the password of a libpq connection string or URI (`-d`), the password of any URL's
//!   user information, any URL's query string (Azure SAS tokens), and the credentials the
//!   SDKs read from the environment;
//! - and, whatever their value, what follows `password=`, `AccountKey=`,
//!   `SharedAccessSignature=`, `sig=` and the password part of `scheme://user:password@`.

use std::ffi::OsString;
use std::sync::OnceLock;

const MASK: &str = "***";

/// Values hidden wherever they appear.
static KNOWN: OnceLock<Vec<String>> = OnceLock::new();

/// Environment variables holding credentials, as SDKs and libpq read them.
const SECRET_VARIABLES: [&str; 7] = [
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CONNECTION_STRING",
];

/// Secrets from the environment shorter than this are left alone (hiding every "test"
/// in messages would hide more than it protects); those on the command line from 4.
const MIN_ENV_SECRET: usize = 8;
const MIN_ARG_SECRET: usize = 4;

/// Records the secrets of this run's arguments and environment. Call once, early.
pub fn init(argv: &[OsString]) {
    let mut known = Vec::new();
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        // `--sse-customer-key VALUE`, `--sse-customer-key=VALUE` and their unique
        // prefixes (argparse and clap accept `--sse-c`).
        if let Some(option) = arg.strip_prefix("--")
            && option.len() >= 3
        {
            let (name, inline) = match option.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (option, None),
            };
            if "sse-customer-key".starts_with(name) {
                let value = inline.or_else(|| args.get(i + 1).cloned());
                if let Some(value) = value.filter(|v| !v.starts_with("file://")) {
                    known.push(value);
                }
            }
        }
        known.extend(secrets_in(arg));
    }
    known.retain(|s| s.chars().count() >= MIN_ARG_SECRET);
    for name in SECRET_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            let mut found = secrets_in(&value);
            found.push(value);
            known.extend(
                found
                    .into_iter()
                    .filter(|s| s.chars().count() >= MIN_ENV_SECRET),
            );
        }
    }
    // Longest first, so that a secret containing another is hidden whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    known.dedup();
    let _ = KNOWN.set(known);
}

/// The secret parts of one value: a connection string's or URI's password, a URL's
/// password and query string, an Azure connection string's key or SAS, each also
/// percent-decoded.
fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for key in ["password", "accountkey", "sharedaccesssignature", "sig"] {
        found.extend(values_after(text, key).into_iter().map(|(_, v)| v));
    }
    for (_, password) in url_passwords(text) {
        found.push(password);
    }
    if text.contains("://")
        && let Some((_, query)) = text.split_once('?')
    {
        found.push(query.split('#').next().unwrap_or_default().to_string());
    }
    let decoded: Vec<String> = found
        .iter()
        .filter_map(|s| percent_decode(s))
        .filter(|d| !found.contains(d))
        .collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty() && s != MASK);
    found
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Byte ranges and values of what follows `key=` (ASCII case-insensitive, spaces around
/// `=` allowed as libpq does, a quoted value up to its closing quote, otherwise up to
/// whitespace, `;`, `&`, a quote or `)`). `key` must be lower case.
fn values_after(text: &str, key: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(key).map(|p| p + from) {
        from = at + key.len();
        // A whole word: `sig` must not match inside `x-sig`... only after a separator.
        let boundary = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let mut i = at + key.len();
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if !boundary || bytes.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let (start, end) = match bytes.get(i) {
            Some(&quote @ (b'\'' | b'"')) => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != quote {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                (i + 1, j.min(bytes.len()))
            }
            _ => {
                let mut j = i;
                while j < bytes.len()
                    && !bytes[j].is_ascii_whitespace()
                    && !b";&'\")".contains(&bytes[j])
                {
                    j += 1;
                }
                (i, j)
            }
        };
        if end > start
            && let Some(value) = text.get(start..end)
        {
            found.push((start..end, value.to_string()));
        }
        from = from.max(end);
    }
    found
}

/// Byte ranges and values of the passwords in `scheme://user:password@host` forms.
fn url_passwords(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("://").map(|p| p + from) {
        let start = at + 3;
        from = start;
        let authority_end = text[start..]
            .find(|c: char| "/?#".contains(c) || c.is_whitespace() || c == '\'' || c == '"')
            .map_or(text.len(), |p| p + start);
        let authority = &text[start..authority_end];
        if let Some(at_sign) = authority.rfind('@')
            && let Some(colon) = authority[..at_sign].find(':')
            && at_sign > colon + 1
        {
            let range = start + colon + 1..start + at_sign;
            found.push((range.clone(), text[range].to_string()));
        }
    }
    found
}

/// `text` with every secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for key in ["password", "accountkey", "sharedaccesssignature", "sig"] {
        ranges.extend(values_after(text, key).into_iter().map(|(r, _)| r));
    }
    ranges.extend(url_passwords(text).into_iter().map(|(r, _)| r));
    for secret in KNOWN.get().map(Vec::as_slice).unwrap_or_default() {
        let mut from = 0;
        while let Some(at) = text[from..].find(secret.as_str()).map(|p| p + from) {
            ranges.push(at..at + secret.len());
            from = at + secret.len();
        }
    }
    if ranges.is_empty() {
        return text.to_string();
    }
    ranges.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in ranges {
        if range.end <= at {
            continue;
        }
        let start = range.start.max(at);
        out.push_str(&text[at..start]);
        if start == range.start {
            out.push_str(MASK);
        }
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_hidden_whatever_their_value() {
        for (text, expected) in [
            (
                "could not parse \"host=h password=s3cr3t dbname=x\"",
                "could not parse \"host=h password=*** dbname=x\"",
            ),
            ("password = 'it\\'s here' x", "password = '***' x"),
            ("PASSWORD=abc;", "PASSWORD=***;"),
            (
                "postgresql://alice:pw%40x@db:5432/postgres failed",
                "postgresql://alice:***@db:5432/postgres failed",
            ),
            (
                "GET https://a.blob.core.windows.net/c?sv=2022&sig=AbC%2Bd%3D&se=1 403",
                "GET https://a.blob.core.windows.net/c?sv=2022&sig=***&se=1 403",
            ),
            (
                "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=Eby8==;BlobEndpoint=x",
                "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=***;BlobEndpoint=x",
            ),
            (
                "no secrets: s3://bucket/path",
                "no secrets: s3://bucket/path",
            ),
            ("signature=x design=y", "signature=x design=y"),
            ("http://user@host/", "http://user@host/"),
        ] {
            assert_eq!(redact(text), expected, "{text}");
        }
    }

    #[test]
    fn secrets_are_found_in_arguments() {
        let found = secrets_in("host=x password='p w' user=u");
        assert!(found.contains(&"p w".to_string()), "{found:?}");
        let found = secrets_in("https://u:pa%24s@h/c?sv=1&sig=zz%2B");
        for expected in ["pa%24s", "pa$s", "sv=1&sig=zz%2B", "zz%2B", "zz+"] {
            assert!(
                found.contains(&expected.to_string()),
                "{expected}: {found:?}"
            );
        }
        assert!(secrets_in("s3://bucket/prefix").is_empty());
        assert!(secrets_in("file:///etc/key").is_empty());
    }

    #[test]
    fn overlapping_ranges_make_one_mask() {
        // KNOWN is process-wide: this test only uses the pattern part.
        assert_eq!(redact("password=a password=b"), "password=*** password=***");
        assert_eq!(redact("x://u:p@h password=q"), "x://u:***@h password=***");
    }
}
