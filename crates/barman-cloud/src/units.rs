//! Barman's value syntaxes: sizes (with its inverted KB/KiB bases) and object tags.

use crate::error::{Error, Result};

/// Parses a size the way Barman does: `KB`, `MB`... are powers of **1024** and `KiB`,
/// `MiB`... powers of **1000** (the reverse of IEC, reproduced on purpose); a bare number
/// is bytes; the number may be fractional before a prefix. Zero or less is refused.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = || Error::InvalidInput(format!("'{text}' is not a valid size"));
    let upper = text.trim().to_ascii_uppercase();
    let (number, multiplier) = match upper.strip_suffix('B') {
        None => (upper.as_str(), 1f64),
        Some(rest) => {
            let (rest, base) = match rest.strip_suffix('I') {
                Some(r) => (r, 1000f64),
                None => (rest, 1024f64),
            };
            match rest.chars().last() {
                Some(c) if c.is_ascii_alphabetic() => {
                    let power = "KMGTPEZY".find(c).ok_or_else(bad)? as i32 + 1;
                    (&rest[..rest.len() - 1], base.powi(power))
                }
                _ => (rest, 1f64),
            }
        }
    };
    let value = if multiplier == 1f64 {
        number.trim().parse::<u64>().map_err(|_| bad())? as f64
    } else {
        number.trim().parse::<f64>().map_err(|_| bad())? * multiplier
    };
    let bytes = value as u64;
    if !value.is_finite() || bytes < 1 {
        return Err(Error::InvalidInput(format!(
            "size '{text}' must be positive"
        )));
    }
    Ok(bytes)
}

fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// `--tag KEY,VALUE`: split on the first comma, trimmed, checked like Barman's `check_tag`.
pub fn parse_tag(text: &str) -> Result<(String, String)> {
    let bad = |why: &str| Error::InvalidInput(format!("invalid tag '{text}': {why}"));
    let (key, value) = text
        .split_once(',')
        .ok_or_else(|| bad("expected KEY,VALUE"))?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || key.chars().count() > 128 {
        return Err(bad("the key must have 1 to 128 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(bad("keys starting with 'aws:' are reserved"));
    }
    if value.chars().count() > 256 {
        return Err(bad("the value must have at most 256 characters"));
    }
    if !tag_chars_ok(key) || !tag_chars_ok(value) {
        return Err(bad(
            "only letters, digits, spaces and _ . : / = + - @ are allowed",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// `--tags KEY,VALUE` (deprecated form): one CSV record of exactly two fields.
pub fn parse_csv_tag(text: &str) -> Result<(String, String)> {
    let bad = || Error::InvalidInput(format!("invalid tag '{text}': expected KEY,VALUE"));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let record = reader
        .records()
        .next()
        .ok_or_else(bad)?
        .map_err(|_| bad())?;
    if record.len() != 2 {
        return Err(bad());
    }
    Ok((record[0].to_string(), record[1].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_barmans_inverted_bases() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("5MB").unwrap(), 5_242_880);
        assert_eq!(parse_size("5MiB").unwrap(), 5_000_000);
        assert_eq!(parse_size("100GB").unwrap(), 107_374_182_400);
        assert_eq!(parse_size("2tib").unwrap(), 2_000_000_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("10B").unwrap(), 10);
        for bad in ["0", "-1", "abc", "5XB", "", "0.1B"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags_are_checked_like_barman() {
        assert_eq!(parse_tag(" k , v ").unwrap(), ("k".into(), "v".into()));
        assert!(parse_tag("k,v,w").is_err());
        assert!(parse_tag("aws:x,v").is_err());
        assert!(parse_tag("k").is_err());
        assert!(parse_tag("k,v!").is_err());
        assert_eq!(
            parse_csv_tag("\"a,b\",c").unwrap(),
            ("a,b".into(), "c".into())
        );
        assert!(parse_csv_tag("a,b,c").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Sizes, tags: no text panics, and a size is never zero.
        #[test]
        fn no_value_panics(
            text in proptest::prelude::any::<String>(),
            size in "[ +-]?[0-9.eE+-]{0,24} ?[kKmMgGtTpPeEzZyYxX]?[iI]?[bB]?",
        ) {
            for candidate in [&text, &size] {
                if let Ok(n) = parse_size(candidate) {
                    proptest::prop_assert!(n >= 1);
                }
                let _ = parse_tag(candidate);
                let _ = parse_csv_tag(candidate);
            }
        }
    }
}
