//! JSON as Python's `json.dumps(obj)` writes it with default arguments, which is what
//! backup-list and backup-show print: `", "` and `": "` separators, every non-ASCII
//! character escaped as `\uXXXX` (surrogate pairs beyond the BMP), floats as `repr()` with
//! `NaN`/`Infinity`, dict keys converted to strings as Python converts them.

use super::error::CatalogError;
use super::pyliteral::{PyValue, repr_float};

/// `json.dumps(value)`.
pub fn dumps(value: &PyValue) -> Result<String, CatalogError> {
    let mut out = String::new();
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut String, value: &PyValue) -> Result<(), CatalogError> {
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(i) => out.push_str(&i.to_string()),
        PyValue::Float(f) => out.push_str(&float_text(*f)),
        PyValue::Str(s) => write_str(out, s),
        PyValue::List(items) | PyValue::Tuple(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
        PyValue::Dict(dict) => {
            out.push('{');
            for (n, (key, item)) in dict.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_str(out, &key_text(key)?);
                out.push_str(": ");
                write_value(out, item)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        repr_float(f)
    }
}

/// Python converts str, float, bool, None and int keys to strings and refuses the rest.
fn key_text(key: &PyValue) -> Result<String, CatalogError> {
    match key {
        PyValue::Str(s) => Ok(s.clone()),
        PyValue::Float(f) => Ok(float_text(*f)),
        PyValue::Bool(b) => Ok(if *b { "true" } else { "false" }.to_string()),
        PyValue::None => Ok("null".to_string()),
        PyValue::Int(i) => Ok(i.to_string()),
        other => Err(CatalogError::Render(format!(
            "keys must be str, int, float, bool or None, not {}",
            other.type_name()
        ))),
    }
}

/// `text` as Python's `json.dumps` writes a string (`ensure_ascii`).
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::new();
    write_str(&mut out, text);
    out
}

/// A JSON string with `ensure_ascii`: only printable ASCII is kept as is.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::pyliteral::parse;
    use super::*;

    fn dump(literal: &str) -> String {
        dumps(&parse(literal).expect("literal")).expect("json")
    }

    #[test]
    fn python_defaults() {
        assert_eq!(
            dump("{'a': [1, 2.5, None, True], 'b': (), 'c': {}}"),
            r#"{"a": [1, 2.5, null, true], "b": [], "c": {}}"#
        );
        assert_eq!(
            dump("[1e-05, 1e+16, -0.0, 1e999, -1e999]"),
            "[1e-05, 1e+16, -0.0, Infinity, -Infinity]"
        );
        assert_eq!(
            dump("{1: 0, 2.5: 0, False: 0, None: 0}"),
            r#"{"1": 0, "2.5": 0, "false": 0, "null": 0}"#
        );
        assert!(dumps(&parse("{(1,): 0}").expect("literal")).is_err());
    }

    #[test]
    fn ascii_escaping() {
        assert_eq!(
            dump(r#"'"\\\n\r\t\b\f\x00\x1f\x7f é☕😀'"#),
            r#""\"\\\n\r\t\b\f\u0000\u001f\u007f \u00e9\u2615\ud83d\ude00""#
        );
    }
}
