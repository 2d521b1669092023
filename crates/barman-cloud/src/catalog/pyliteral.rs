//! Python literals, the encoding backup.info uses for `backup_label`, `tablespaces`,
//! `included_files`, `copy_stats` and `snapshots_info`: Barman writes them with `repr()` and
//! reads them with `ast.literal_eval`.
//!
//! [`parse`] accepts the literal syntax `literal_eval` accepts for these types (every string
//! prefix and escape `repr()` can emit, adjacent-string concatenation, bare top-level tuples,
//! comments), and [`repr`] writes exactly the text CPython 3.12's `repr()` writes, so a value
//! read and written back is byte-identical to what Barman would save.
//!
//! Not supported, because no Barman version writes them into backup.info: complex numbers,
//! bytes, sets, `...`, `\N{NAME}` escapes, lone surrogates (`'\ud800'`, which Rust strings
//! cannot hold) and integers outside the `i128` range.

use std::borrow::Cow;
use std::fmt;

use super::printable::NON_PRINTABLE;

/// A value built from the Python types backup.info literals use.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    None,
    Bool(bool),
    /// Python ints are unbounded; `i128` covers every `i64` and `u64` value.
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<PyValue>),
    Tuple(Vec<PyValue>),
    Dict(PyDict),
}

/// A Python dict: insertion-ordered, keys compared with Python's equality (`1 == 1.0 ==
/// True`), a repeated key keeps its first position and takes the last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PyDict {
    entries: Vec<(PyValue, PyValue)>,
}

/// Why a text is not a literal we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Python literal at offset {offset}: {reason}")]
pub struct LiteralError {
    /// Byte offset in the parsed text.
    pub offset: usize,
    pub reason: String,
}

impl PyDict {
    pub fn new() -> Self {
        PyDict::default()
    }

    /// Inserts as a Python dict display does; fails for unhashable keys (lists, dicts, and
    /// tuples containing them), which Python rejects with `TypeError`.
    pub fn insert(&mut self, key: PyValue, value: PyValue) -> Result<(), String> {
        if let Some(kind) = key.unhashable_type() {
            return Err(format!("unhashable type: '{kind}'"));
        }
        match self.entries.iter_mut().find(|(k, _)| keys_equal(k, &key)) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
        Ok(())
    }

    /// Sets a string key (always hashable), keeping the position of an existing one.
    pub fn set(&mut self, key: &str, value: PyValue) {
        match self
            .entries
            .iter_mut()
            .find(|(k, _)| k.as_str() == Some(key))
        {
            Some(entry) => entry.1 = value,
            None => self.entries.push((PyValue::Str(key.to_string()), value)),
        }
    }

    /// The value under the string key `key`, as Python's `d.get(key)`.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PyValue, &PyValue)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PyValue {
    pub fn str(text: impl Into<String>) -> Self {
        PyValue::Str(text.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&PyDict> {
        match self {
            PyValue::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Python's `bool(value)`.
    pub fn is_truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) => !v.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// Python's `type(value).__name__`, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
        }
    }

    /// Python's `str(value)`: the text itself for strings, `repr()` for everything else
    /// (what `"{}".format(value)` prints).
    pub fn py_str(&self) -> Cow<'_, str> {
        match self {
            PyValue::Str(s) => Cow::Borrowed(s),
            other => Cow::Owned(repr(other)),
        }
    }

    /// The number a Python `int`/`float`/`bool` stands for (bools are ints in Python).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
            PyValue::Int(i) => Some(*i as f64),
            PyValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn unhashable_type(&self) -> Option<&'static str> {
        match self {
            PyValue::List(_) | PyValue::Dict(_) => Some(self.type_name()),
            PyValue::Tuple(items) => items.iter().find_map(PyValue::unhashable_type),
            _ => None,
        }
    }
}

/// Python's `==` between hashable values, as dict keys are compared.
fn keys_equal(a: &PyValue, b: &PyValue) -> bool {
    use PyValue::*;
    match (a, b) {
        (None, None) => true,
        (Str(x), Str(y)) => x == y,
        (Tuple(x), Tuple(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| keys_equal(p, q))
        }
        (Int(x), Int(y)) => x == y,
        (Bool(x), Bool(y)) => x == y,
        (Int(i), Bool(b)) | (Bool(b), Int(i)) => *i == i128::from(*b),
        (Float(f), other) | (other, Float(f)) => match other {
            Float(g) => f == g,
            Int(i) => int_equals_float(*i, *f),
            Bool(b) => *f == f64::from(u8::from(*b)),
            _ => false,
        },
        _ => false,
    }
}

fn int_equals_float(i: i128, f: f64) -> bool {
    // Exact comparison: only whole floats inside the i128 range can equal an int.
    f.fract() == 0.0 && f.abs() < 1.7e38 && (f as i128) == i
}

impl fmt::Display for PyValue {
    /// Formats as `repr()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self))
    }
}

// ---------------------------------------------------------------------------------------
// Writing: repr()

/// Python's `repr(value)`.
pub fn repr(value: &PyValue) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &PyValue) {
    match value {
        PyValue::None => out.push_str("None"),
        PyValue::Bool(true) => out.push_str("True"),
        PyValue::Bool(false) => out.push_str("False"),
        PyValue::Int(i) => out.push_str(&i.to_string()),
        PyValue::Float(f) => out.push_str(&repr_float(*f)),
        PyValue::Str(s) => out.push_str(&repr_str(s)),
        PyValue::List(items) => {
            out.push('[');
            write_items(out, items);
            out.push(']');
        }
        PyValue::Tuple(items) => {
            out.push('(');
            write_items(out, items);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        PyValue::Dict(dict) => {
            out.push('{');
            for (n, (k, v)) in dict.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_repr(out, k);
                out.push_str(": ");
                write_repr(out, v);
            }
            out.push('}');
        }
    }
}

fn write_items(out: &mut String, items: &[PyValue]) {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        write_repr(out, item);
    }
}

/// Python's `repr()` of a str: single quotes unless the text has `'` and no `"`; `\\`,
/// the quote, `\t`, `\n`, `\r` escaped; other non-printable characters as `\xNN`, `\uNNNN`
/// or `\UNNNNNNNN`; printable characters (including non-ASCII) as they are.
pub fn repr_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = u32::from(c);
                if cp < 0x100 {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp < 0x10000 {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable()` for one character.
pub fn is_printable(c: char) -> bool {
    let cp = u32::from(c);
    if (0x20..0x7f).contains(&cp) {
        return true;
    }
    // NON_PRINTABLE holds sorted [start, end] pairs: find the last start <= cp.
    let pairs = NON_PRINTABLE.len() / 2;
    let idx = partition_point(pairs, |i| NON_PRINTABLE[2 * i] <= cp);
    idx == 0 || cp > NON_PRINTABLE[2 * (idx - 1) + 1]
}

fn partition_point(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Python's `repr()` of a float: the shortest digits that read back as the same value,
/// in positional notation when the decimal exponent is in `-4..16`, else as `1.5e-05` /
/// `1e+16` (two exponent digits at least); `.0` added to whole numbers; `inf`, `nan`.
pub fn repr_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    // Rust's `{:e}` prints the same shortest round-trip digits as Python's repr, in the
    // form `D[.DDD]eX`; only the layout differs.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Position of the decimal point relative to the digits: value = 0.DIGITS * 10^point.
    let point = exponent + 1;
    let body = if (-3..=16).contains(&point) {
        let n = digits.len() as i32;
        if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= n {
            format!("{}{}.0", digits, "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{first}{dot}{rest}e{exp_sign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

// ---------------------------------------------------------------------------------------
// Reading: ast.literal_eval()

/// Python's nesting limit is about 200 levels; refusing deeper input keeps the recursion
/// bounded on hostile files.
const MAX_DEPTH: usize = 200;

/// Evaluates `text` as `ast.literal_eval` does (leading blanks ignored, a bare `a, b` is a
/// tuple, `#` starts a comment).
pub fn parse(text: &str) -> Result<PyValue, LiteralError> {
    let mut p = Parser { src: text, pos: 0 };
    p.skip_blanks();
    if p.at_end() {
        return Err(p.error("empty expression"));
    }
    let first = p.expr(0)?;
    p.skip_blanks();
    let value = if p.peek() == Some(',') {
        let mut items = vec![first];
        while p.eat(',') {
            p.skip_blanks();
            if p.at_end() {
                break;
            }
            items.push(p.expr(0)?);
            p.skip_blanks();
        }
        PyValue::Tuple(items)
    } else {
        first
    };
    p.skip_blanks();
    if !p.at_end() {
        return Err(p.error("unexpected text after the literal"));
    }
    Ok(value)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, reason: impl Into<String>) -> LiteralError {
        LiteralError {
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), LiteralError> {
        self.skip_blanks();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}'")))
        }
    }

    /// Blanks and comments. Newlines are accepted everywhere: backup.info values are one
    /// line, and inside brackets Python joins lines anyway.
    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' | '\n' | '\r' => {
                    self.pos += 1;
                }
                '#' => {
                    let end = self
                        .rest()
                        .find('\n')
                        .map_or(self.src.len(), |i| self.pos + i);
                    self.pos = end;
                }
                _ => break,
            }
        }
    }

    fn expr(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        if depth > MAX_DEPTH {
            return Err(self.error("too many nested parentheses"));
        }
        self.skip_blanks();
        let Some(c) = self.peek() else {
            return Err(self.error("unexpected end of text"));
        };
        match c {
            '(' => self.parenthesized(depth),
            '[' => {
                self.bump();
                Ok(PyValue::List(self.items(']', depth)?))
            }
            '{' => self.dict(depth),
            '+' | '-' => {
                self.bump();
                self.skip_blanks();
                match self.peek() {
                    Some(d) if d.is_ascii_digit() || d == '.' => {}
                    _ => return Err(self.error("a sign must be followed by a number")),
                }
                // The sign goes with the digits: -2**127 fits where 2**127 does not.
                self.signed_number(c == '-')
            }
            '0'..='9' => self.number(),
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            '\'' | '"' => self.strings(),
            c if c.is_ascii_alphabetic() || c == '_' => {
                if self.string_prefix_len().is_some() {
                    return self.strings();
                }
                let name = self.identifier().to_string();
                match name.as_str() {
                    "None" => Ok(PyValue::None),
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    other => Err(self.error(format!("'{other}' is not a literal"))),
                }
            }
            other => Err(self.error(format!("unexpected character {other:?}"))),
        }
    }

    fn identifier(&mut self) -> &str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// `(` already seen: `()`, `(x)` (just x), `(x,)`, `(x, y, ...)`.
    fn parenthesized(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        self.bump();
        self.skip_blanks();
        if self.eat(')') {
            return Ok(PyValue::Tuple(Vec::new()));
        }
        let first = self.expr(depth + 1)?;
        self.skip_blanks();
        if self.eat(')') {
            return Ok(first);
        }
        self.expect(',')?;
        let mut items = vec![first];
        items.extend(self.items(')', depth)?);
        Ok(PyValue::Tuple(items))
    }

    /// Comma-separated expressions up to `close` (trailing comma allowed).
    fn items(&mut self, close: char, depth: usize) -> Result<Vec<PyValue>, LiteralError> {
        let mut items = Vec::new();
        loop {
            self.skip_blanks();
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.expr(depth + 1)?);
            self.skip_blanks();
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(',')?;
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, LiteralError> {
        self.bump();
        let mut dict = PyDict::new();
        loop {
            self.skip_blanks();
            if self.eat('}') {
                return Ok(PyValue::Dict(dict));
            }
            let key_at = self.pos;
            let key = self.expr(depth + 1)?;
            self.skip_blanks();
            if matches!(self.peek(), Some(',' | '}')) {
                return Err(self.error("sets are not supported"));
            }
            self.expect(':')?;
            let value = self.expr(depth + 1)?;
            dict.insert(key, value).map_err(|reason| LiteralError {
                offset: key_at,
                reason,
            })?;
            self.skip_blanks();
            if self.eat('}') {
                return Ok(PyValue::Dict(dict));
            }
            self.expect(',')?;
        }
    }

    fn number(&mut self) -> Result<PyValue, LiteralError> {
        self.signed_number(false)
    }

    fn signed_number(&mut self, negative: bool) -> Result<PyValue, LiteralError> {
        let sign = if negative { "-" } else { "" };
        let start = self.pos;
        let rest = self.rest().as_bytes();
        if rest.len() > 1
            && rest[0] == b'0'
            && matches!(rest[1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
        {
            let radix = match rest[1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            self.pos += 2;
            // Python allows one underscore after the prefix and between digits.
            let digits = self.digits(radix, true)?;
            if digits.is_empty() {
                return Err(self.error("invalid number"));
            }
            self.no_trailing_name()?;
            return i128::from_str_radix(&format!("{sign}{digits}"), radix)
                .map(PyValue::Int)
                .map_err(|_| self.error("integer too large"));
        }
        let int_part = self.digits(10, false)?;
        let mut is_float = false;
        let mut text = int_part.clone();
        if self.peek() == Some('.') {
            is_float = true;
            self.pos += 1;
            text.push('.');
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                text.push_str(&self.digits(10, false)?);
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.pos += 1;
            let mut exp = String::from("e");
            if let Some(sign @ ('+' | '-')) = self.peek() {
                exp.push(sign);
                self.pos += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                exp.push_str(&self.digits(10, false)?);
                text.push_str(&exp);
                is_float = true;
            } else {
                self.pos = save;
            }
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            return Err(self.error("complex numbers are not supported"));
        }
        self.no_trailing_name()?;
        if is_float {
            return text
                .parse::<f64>()
                .map(|f| PyValue::Float(if negative { -f } else { f }))
                .map_err(|_| LiteralError {
                    offset: start,
                    reason: "invalid float".into(),
                });
        }
        if int_part.len() > 1 && int_part.starts_with('0') && int_part.bytes().any(|b| b != b'0') {
            return Err(LiteralError {
                offset: start,
                reason: "leading zeros in decimal integer literals are not permitted".into(),
            });
        }
        format!("{sign}{int_part}")
            .parse::<i128>()
            .map(PyValue::Int)
            .map_err(|_| LiteralError {
                offset: start,
                reason: "integer too large".into(),
            })
    }

    /// Digits of `radix` with single underscores between them (and, for prefixed ints,
    /// directly after the prefix); returns them without underscores.
    fn digits(&mut self, radix: u32, underscore_first: bool) -> Result<String, LiteralError> {
        let mut out = String::new();
        let mut allow_underscore = underscore_first;
        while let Some(c) = self.peek() {
            if c == '_' && allow_underscore {
                self.pos += 1;
                allow_underscore = false;
                match self.peek() {
                    Some(d) if d.is_digit(radix) => {}
                    _ => return Err(self.error("invalid number")),
                }
            } else if c.is_digit(radix) {
                out.push(c);
                self.pos += 1;
                allow_underscore = true;
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn no_trailing_name(&self) -> Result<(), LiteralError> {
        match self.peek() {
            Some(c) if c.is_alphanumeric() || c == '_' => Err(self.error("invalid number")),
            _ => Ok(()),
        }
    }

    /// Length of a string prefix (`r`, `u`, any case) directly followed by a quote.
    fn string_prefix_len(&self) -> Option<usize> {
        let mut chars = self.rest().chars();
        match (chars.next(), chars.next()) {
            (Some('r' | 'R' | 'u' | 'U'), Some('\'' | '"')) => Some(1),
            _ => None,
        }
    }

    /// One or more adjacent string literals, concatenated as Python's parser does.
    fn strings(&mut self) -> Result<PyValue, LiteralError> {
        let mut value = String::new();
        loop {
            self.string(&mut value)?;
            let save = self.pos;
            self.skip_blanks();
            let next_is_string = match self.peek() {
                Some('\'' | '"') => true,
                Some(_) => self.string_prefix_len().is_some(),
                None => false,
            };
            if !next_is_string {
                self.pos = save;
                return Ok(PyValue::Str(value));
            }
        }
    }

    fn string(&mut self, out: &mut String) -> Result<(), LiteralError> {
        let start = self.pos;
        let raw = match self.string_prefix_len() {
            Some(n) => {
                let raw = self.rest()[..n].eq_ignore_ascii_case("r");
                self.pos += n;
                raw
            }
            None => false,
        };
        let Some(quote) = self.bump() else {
            return Err(self.error("expected a string"));
        };
        let triple = self.peek() == Some(quote) && self.peek_at(1) == Some(quote);
        if triple {
            self.pos += 2;
        }
        loop {
            let Some(c) = self.bump() else {
                return Err(LiteralError {
                    offset: start,
                    reason: "unterminated string literal".into(),
                });
            };
            if c == quote {
                if !triple {
                    return Ok(());
                }
                if self.peek() == Some(quote) && self.peek_at(1) == Some(quote) {
                    self.pos += 2;
                    return Ok(());
                }
                out.push(c);
            } else if c == '\n' && !triple {
                return Err(LiteralError {
                    offset: start,
                    reason: "unterminated string literal".into(),
                });
            } else if c == '\\' {
                if raw {
                    // A backslash still protects the next character from ending the
                    // string, but both are kept.
                    out.push('\\');
                    if let Some(next) = self.bump() {
                        out.push(next);
                    }
                } else {
                    self.escape(out)?;
                }
            } else {
                out.push(c);
            }
        }
    }

    /// After a backslash in a non-raw string.
    fn escape(&mut self, out: &mut String) -> Result<(), LiteralError> {
        let at = self.pos - 1;
        let Some(c) = self.bump() else {
            return Err(self.error("unterminated string literal"));
        };
        let simple = match c {
            '\n' => return Ok(()),
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '0'..='7' => {
                let mut cp = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            cp = cp * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                return self.push_code_point(out, cp, at);
            }
            'x' | 'u' | 'U' => {
                let len = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex = self.rest().get(..len).unwrap_or("");
                if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(LiteralError {
                        offset: at,
                        reason: format!("truncated \\{c} escape"),
                    });
                }
                let cp = u32::from_str_radix(hex, 16).unwrap_or(u32::MAX);
                self.pos += len;
                return self.push_code_point(out, cp, at);
            }
            'N' => {
                return Err(LiteralError {
                    offset: at,
                    reason: "\\N{...} escapes are not supported".into(),
                });
            }
            // Unknown escapes keep the backslash (Python only warns).
            other => {
                out.push('\\');
                other
            }
        };
        out.push(simple);
        Ok(())
    }

    fn push_code_point(&self, out: &mut String, cp: u32, at: usize) -> Result<(), LiteralError> {
        match char::from_u32(cp) {
            Some(c) => {
                out.push(c);
                Ok(())
            }
            None => Err(LiteralError {
                offset: at,
                reason: format!("code point U+{cp:04X} cannot be represented"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> PyValue {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn s(text: &str) -> PyValue {
        PyValue::str(text)
    }

    #[test]
    fn scalars() {
        assert_eq!(ok("None"), PyValue::None);
        assert_eq!(ok("True"), PyValue::Bool(true));
        assert_eq!(ok(" \tFalse # comment"), PyValue::Bool(false));
        assert_eq!(ok("42"), PyValue::Int(42));
        assert_eq!(ok("-42"), PyValue::Int(-42));
        assert_eq!(ok("+ 7"), PyValue::Int(7));
        assert_eq!(ok("1_000"), PyValue::Int(1000));
        assert_eq!(ok("0x_1F"), PyValue::Int(31));
        assert_eq!(ok("0o17"), PyValue::Int(15));
        assert_eq!(ok("0b101"), PyValue::Int(5));
        assert_eq!(ok("00"), PyValue::Int(0));
        assert_eq!(ok("18446744073709551615"), PyValue::Int(u64::MAX.into()));
        assert_eq!(ok("-9223372036854775808"), PyValue::Int(i64::MIN.into()));
        assert_eq!(ok("12.5"), PyValue::Float(12.5));
        assert_eq!(ok("1e-05"), PyValue::Float(1e-5));
        assert_eq!(ok("1E5"), PyValue::Float(1e5));
        assert_eq!(ok(".5"), PyValue::Float(0.5));
        assert_eq!(ok("5."), PyValue::Float(5.0));
        assert_eq!(ok("1_0.2_5"), PyValue::Float(10.25));
        assert_eq!(ok("007.5"), PyValue::Float(7.5));
        assert!(matches!(ok("-0.0"), PyValue::Float(f) if f == 0.0 && f.is_sign_negative()));
        assert_eq!(ok("1e999"), PyValue::Float(f64::INFINITY));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(ok("'a'"), s("a"));
        assert_eq!(ok("\"it's\""), s("it's"));
        assert_eq!(ok(r"'\'\\\n\r\t\a\b\f\v'"), s("'\\\n\r\t\x07\x08\x0c\x0b"));
        assert_eq!(ok(r"'\x41\u00e9\U0001F600\101\0'"), s("Aé😀A\0"));
        assert_eq!(ok(r"'\d'"), s("\\d"));
        assert_eq!(ok("'caf\u{e9} ☕'"), s("café ☕"));
        assert_eq!(ok(r"r'a\'b\n'"), s("a\\'b\\n"));
        assert_eq!(ok("u'x' \"y\" 'z'"), s("xyz"));
        assert_eq!(ok("'''a'b''c'''"), s("a'b''c"));
        assert_eq!(ok("\"\"\"x\"\"\""), s("x"));
    }

    #[test]
    fn containers() {
        assert_eq!(ok("[]"), PyValue::List(vec![]));
        assert_eq!(ok("()"), PyValue::Tuple(vec![]));
        assert_eq!(ok("(1,)"), PyValue::Tuple(vec![PyValue::Int(1)]));
        assert_eq!(ok("(1)"), PyValue::Int(1));
        assert_eq!(ok("((('x')))"), s("x"));
        assert_eq!(
            ok("1, 2,"),
            PyValue::Tuple(vec![PyValue::Int(1), PyValue::Int(2)])
        );
        assert_eq!(
            ok("[('tbs', 16400, '/srv'),]"),
            PyValue::List(vec![PyValue::Tuple(vec![
                s("tbs"),
                PyValue::Int(16400),
                s("/srv")
            ])])
        );
        let PyValue::Dict(d) = ok("{'b': 1, 'a': {'x': [None]}, }") else {
            panic!("not a dict")
        };
        let keys: Vec<_> = d.iter().map(|(k, _)| repr(k)).collect();
        assert_eq!(keys, ["'b'", "'a'"]);
        assert_eq!(d.get("b"), Some(&PyValue::Int(1)));
    }

    #[test]
    fn dict_keys_follow_python_equality() {
        let v = ok("{1: 'a', True: 'b', 1.0: 'c', 'k': 1, 'k': 2, (1, 'x'): 0}");
        assert_eq!(repr(&v), "{1: 'c', 'k': 2, (1, 'x'): 0}");
        assert_eq!(repr(&ok("{0: 1, False: 2, -0.0: 3}")), "{0: 3}");
    }

    #[test]
    fn rejects_what_literal_eval_rejects() {
        for bad in [
            "",
            "   ",
            "foo",
            "inf",
            "'abc",
            "'a\nb'",
            "[1, 2",
            "[1 2]",
            "{1, 2}",
            "{[1]: 2}",
            "{(1, [2]): 3}",
            "0123",
            "1__0",
            "1_",
            "0x",
            "1abc",
            "1j",
            "--1",
            "-'a'",
            "-True",
            "b'x'",
            "f'x'",
            "'\\N{DASH}'",
            "'\\ud800'",
            "'\\U00110000'",
            "'\\x4'",
            "1 2",
            "set()",
            "...",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(parse(&deep).is_err());
        let ok_depth = format!("{}{}", "[".repeat(150), "]".repeat(150));
        assert!(parse(&ok_depth).is_ok());
    }

    #[test]
    fn repr_of_strings() {
        assert_eq!(repr_str(""), "''");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("say \"hi\""), "'say \"hi\"'");
        assert_eq!(repr_str("both ' and \""), "'both \\' and \"'");
        assert_eq!(
            repr_str("a\\b\n\r\t\x00\x1b\x7f"),
            "'a\\\\b\\n\\r\\t\\x00\\x1b\\x7f'"
        );
        assert_eq!(
            repr_str("é\u{a0}\u{ad}\u{2028}😀\u{e0001}"),
            "'é\\xa0\\xad\\u2028😀\\U000e0001'"
        );
    }

    #[test]
    fn repr_of_floats() {
        let cases = [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (12.5, "12.5"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e22, "1e+22"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (value, expected) in cases {
            assert_eq!(repr_float(value), expected, "{value:e}");
        }
    }

    #[test]
    fn repr_of_containers() {
        let v = ok("{'a': [1, (2,), ()], 'b': {}, 'c': (None, True, 1.0)}");
        assert_eq!(
            repr(&v),
            "{'a': [1, (2,), ()], 'b': {}, 'c': (None, True, 1.0)}"
        );
    }

    #[test]
    fn truthiness_and_str() {
        assert!(!ok("{}").is_truthy());
        assert!(!ok("''").is_truthy());
        assert!(!ok("0.0").is_truthy());
        assert!(ok("(0,)").is_truthy());
        assert_eq!(ok("'x'").py_str(), "x");
        assert_eq!(ok("[1, 'x']").py_str(), "[1, 'x']");
        assert_eq!(ok("None").py_str(), "None");
    }

    /// Lines of `<hex of the UTF-8 text>\t<Python repr>`, written by generate.py.
    #[test]
    fn string_repr_matches_python() {
        let golden = super::super::tests_support::fixture("pyliteral/strings.tsv");
        let mut count = 0;
        for line in golden.lines() {
            let (hex, expected) = line.split_once('\t').expect("tab");
            let text = String::from_utf8(super::super::tests_support::unhex(hex)).expect("utf-8");
            assert_eq!(repr_str(&text), expected, "{text:?}");
            assert_eq!(parse(expected).expect(expected), PyValue::Str(text));
            count += 1;
        }
        assert!(count > 100);
    }

    /// Lines of `<16 hex digits of the f64 bits>\t<Python repr>`, written by generate.py.
    #[test]
    fn float_repr_matches_python() {
        let golden = super::super::tests_support::fixture("pyliteral/floats.tsv");
        let mut count = 0;
        for line in golden.lines() {
            let (bits, expected) = line.split_once('\t').expect("tab");
            let value = f64::from_bits(u64::from_str_radix(bits, 16).expect("hex"));
            assert_eq!(repr_float(value), expected, "{bits}");
            if value.is_finite() {
                let PyValue::Float(back) = parse(expected).expect(expected) else {
                    panic!("{expected} is not a float")
                };
                assert_eq!(back.to_bits(), value.to_bits(), "{expected}");
            }
            count += 1;
        }
        assert!(count > 100);
    }

    /// Lines of `<repr of a nested value>` whose repr round-trips (written by generate.py
    /// from values built in Python).
    #[test]
    fn nested_repr_round_trips_python_output() {
        let golden = super::super::tests_support::fixture("pyliteral/values.txt");
        for line in golden.lines() {
            let value = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(repr(&value), line);
        }
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// Pieces of Python literal syntax, to reach deeper into the parser than random
    /// characters do.
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        ",",
        ":",
        "'",
        "\"",
        "'''",
        "\"\"\"",
        "\\",
        "\\x4",
        "\\u00e9",
        "\\U0001F600",
        "\\N{BULLET}",
        "\\n",
        "\\0",
        "b'",
        "r'",
        "u'",
        "f'",
        "x",
        "0",
        "1",
        "9",
        "-",
        "+",
        "~",
        "e",
        "E",
        ".",
        "_",
        "0x",
        "0o",
        "0b",
        "j",
        "None",
        "True",
        "False",
        "inf",
        "nan",
        "#",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\u{e9}",
        "\u{1F600}",
        "\u{0}",
        "\u{85}",
        "\u{2028}",
        "1e308",
        "1e-400",
        "99999999999999999999999999999999999999999",
    ];

    fn has_infinity(value: &PyValue) -> bool {
        match value {
            PyValue::Float(f) => !f.is_finite(),
            PyValue::List(items) | PyValue::Tuple(items) => items.iter().any(has_infinity),
            PyValue::Dict(dict) => dict.iter().any(|(k, v)| has_infinity(k) || has_infinity(v)),
            _ => false,
        }
    }

    fn token_soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat())
    }

    fn scalar() -> impl Strategy<Value = PyValue> {
        prop_oneof![
            Just(PyValue::None),
            any::<bool>().prop_map(PyValue::Bool),
            any::<i64>().prop_map(|i| PyValue::Int(i.into())),
            any::<u64>().prop_map(|i| PyValue::Int(i.into())),
            any::<f64>()
                .prop_filter("repr of inf and nan is no literal", |f| f.is_finite())
                .prop_map(PyValue::Float),
            any::<String>().prop_map(PyValue::Str),
        ]
    }

    fn value() -> impl Strategy<Value = PyValue> {
        scalar().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
                prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
                prop::collection::vec((scalar(), inner), 0..6).prop_map(|pairs| {
                    let mut dict = PyDict::new();
                    for (key, value) in pairs {
                        dict.insert(key, value).expect("scalars are hashable");
                    }
                    PyValue::Dict(dict)
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn literal_like_text_never_panics(text in token_soup()) {
            if let Ok(value) = parse(&text).map_err(|e| e.to_string())
                && !has_infinity(&value)
            {
                // Whatever parses renders, and the rendering reads back the same (but
                // for floats out of range, which Python too reads as inf and writes as
                // the name `inf`, no literal).
                let again = parse(&repr(&value));
                prop_assert_eq!(again.as_ref(), Ok(&value), "{:?}", text);
            }
        }

        #[test]
        fn what_repr_writes_parses_back(value in value()) {
            let text = repr(&value);
            let back = parse(&text);
            prop_assert_eq!(back.as_ref(), Ok(&value), "{}", text);
        }
    }

    #[test]
    fn the_widest_integers_round_trip() {
        for n in [i128::MAX, i128::MIN, i128::MIN + 1, u64::MAX as i128 + 1] {
            let value = PyValue::Int(n);
            assert_eq!(parse(&repr(&value)), Ok(value), "{n}");
        }
    }
}
