//! The INI dialect of barman.conf, read as Python's `ConfigParser(strict=False)` reads it,
//! since that is what decides which values Barman sees: `[section]` headers (anything
//! between the first `[` and the last `]`), `key = value` or `key: value` lines split at
//! the first delimiter, keys lower-cased, full-line `#`/`;` comments, continuation lines
//! indented deeper than their key (blank lines kept inside a value, trailing ones dropped),
//! repeated sections merged and repeated keys overwritten in place, and `%(name)s`
//! interpolation (`%%` for a literal percent sign).

use std::fmt;

/// Interpolation gives up after this many nested references, as Python does.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Keys in the order of their first appearance, each holding its latest value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options(Vec<(String, String)>);

impl Options {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces the value of `key` where it stands, or appends it.
    pub(crate) fn set(&mut self, key: &str, value: String) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A line the parser cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// One file, parsed, before interpolation: `DEFAULT` apart, the other sections in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawFile {
    pub defaults: Options,
    pub sections: Vec<(String, Options)>,
}

impl RawFile {
    fn section_mut(&mut self, name: &str) -> &mut Options {
        let index = match self.sections.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                self.sections.push((name.to_string(), Options::default()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index].1
    }

    /// Each section with every key resolved: the section's own keys, then the `DEFAULT`
    /// keys it does not override, values interpolated against the section and `DEFAULT`
    /// (what Barman copies from each file it reads into its merged configuration).
    pub(crate) fn resolve(&self) -> Result<Vec<(String, Options)>, String> {
        let mut resolved = Vec::with_capacity(self.sections.len());
        for (name, options) in &self.sections {
            let lookup = |key: &str| {
                options
                    .get(key)
                    .or_else(|| self.defaults.get(key))
                    .map(str::to_string)
            };
            let keys = options.iter().map(|(k, _)| k).chain(
                self.defaults
                    .iter()
                    .map(|(k, _)| k)
                    .filter(|k| options.get(k).is_none()),
            );
            let mut out = Options::default();
            for key in keys {
                let raw = lookup(key).unwrap_or_default();
                let value = interpolate(name, key, &raw, &lookup)?;
                check_stored_value(&value)?;
                out.set(key, value);
            }
            resolved.push((name.clone(), out));
        }
        Ok(resolved)
    }
}

/// Python's `BasicInterpolation.before_set`: a value stored again after interpolation may
/// hold `%` only as `%%` or in a `%(name)s` reference.
fn check_stored_value(value: &str) -> Result<(), String> {
    let without_escapes = value.replace("%%", "");
    let mut remaining = String::new();
    let mut rest = without_escapes.as_str();
    while let Some(p) = rest.find('%') {
        remaining.push_str(&rest[..p]);
        let after = &rest[p..];
        match reference_len(after) {
            Some(len) => rest = &after[len..],
            None => {
                remaining.push('%');
                rest = &after[1..];
            }
        }
    }
    remaining.push_str(rest);
    match remaining.find('%') {
        None => Ok(()),
        Some(p) => Err(format!(
            "invalid interpolation syntax in '{value}' at position {}",
            remaining[..p].chars().count()
        )),
    }
}

/// The length of the `%(name)s` reference `text` starts with, if it does.
fn reference_len(text: &str) -> Option<usize> {
    let inner = text.strip_prefix("%(")?;
    let close = inner.find(')')?;
    (close > 0 && inner[close + 1..].starts_with('s')).then_some(close + 4)
}

/// Substitutes `%(name)s` references (names looked up lower-cased, values themselves
/// interpolated) and `%%`, as Python's `BasicInterpolation.before_get`.
pub(crate) fn interpolate(
    section: &str,
    option: &str,
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::new();
    interpolate_into(&mut out, section, option, value, value, lookup, 1)?;
    Ok(out)
}

fn interpolate_into(
    out: &mut String,
    section: &str,
    option: &str,
    raw: &str,
    mut rest: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err(format!(
            "Recursion limit exceeded in value substitution: option '{option}' in section \
             '{section}' contains an interpolation key which cannot be substituted in \
             {MAX_INTERPOLATION_DEPTH} steps. Raw value: '{raw}'"
        ));
    }
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if rest[1..].starts_with('%') {
            out.push('%');
            rest = &rest[2..];
        } else if rest[1..].starts_with('(') {
            let Some(len) = reference_len(rest) else {
                return Err(format!(
                    "bad interpolation variable reference '{rest}' (option '{option}' in \
                     section '{section}')"
                ));
            };
            let name = rest[2..len - 2].to_lowercase();
            rest = &rest[len..];
            let Some(referenced) = lookup(&name) else {
                return Err(format!(
                    "Bad value substitution: option '{option}' in section '{section}' \
                     contains an interpolation key '{name}' which is not a valid option \
                     name. Raw value: '{raw}'"
                ));
            };
            if referenced.contains('%') {
                interpolate_into(out, section, option, raw, &referenced, lookup, depth + 1)?;
            } else {
                out.push_str(&referenced);
            }
        } else {
            return Err(format!(
                "'%' must be followed by '%' or '(', found: '{rest}' (option '{option}' in \
                 section '{section}')"
            ));
        }
    }
    out.push_str(rest);
    Ok(())
}

/// Parses one file's text (lines already split the way Python's universal newlines
/// split them: `\n`, `\r\n` or `\r`).
pub(crate) fn parse(text: &str) -> Result<RawFile, SyntaxError> {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut file = RawFile::default();
    // Where values go: `None` before the first header, `Some(None)` in DEFAULT.
    let mut section: Option<Option<String>> = None;
    let mut option: Option<String> = None;
    // The lines of the value being read, joined when the next key starts.
    let mut pending: Vec<String> = Vec::new();
    let mut indent_level = 0usize;

    fn flush(
        file: &mut RawFile,
        section: &Option<Option<String>>,
        option: &Option<String>,
        pending: &mut Vec<String>,
    ) {
        if let (Some(target), Some(key)) = (section, option) {
            let value = pending.join("\n").trim_end().to_string();
            let options = match target {
                Some(name) => file.section_mut(name),
                None => &mut file.defaults,
            };
            options.set(key, value);
        }
        pending.clear();
    }

    for (index, line) in normalised.split('\n').enumerate() {
        let number = index + 1;
        let stripped = line.trim();
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        if stripped.is_empty() || is_comment {
            // A blank line belongs to the value being read; a comment line is dropped.
            if !is_comment && section.is_some() && option.is_some() {
                pending.push(String::new());
            }
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if section.is_some() && option.is_some() && indent > indent_level {
            pending.push(stripped.to_string());
            continue;
        }
        flush(&mut file, &section, &option, &mut pending);
        option = None;
        indent_level = indent;
        if let Some(header) = section_header(stripped) {
            section = Some(if header == "DEFAULT" {
                None
            } else {
                file.section_mut(header);
                Some(header.to_string())
            });
            continue;
        }
        if section.is_none() {
            return Err(SyntaxError {
                line: number,
                reason: format!("no [section] header before '{stripped}'"),
            });
        }
        let Some(delimiter) = stripped.find(['=', ':']) else {
            return Err(SyntaxError {
                line: number,
                reason: format!(
                    "expected 'key = value', a [section] header or a comment, found '{stripped}'"
                ),
            });
        };
        let key = stripped[..delimiter].trim_end();
        if key.is_empty() {
            return Err(SyntaxError {
                line: number,
                reason: format!("no key before the delimiter in '{stripped}'"),
            });
        }
        option = Some(key.to_lowercase());
        pending.push(stripped[delimiter + 1..].trim().to_string());
    }
    flush(&mut file, &section, &option, &mut pending);
    Ok(file)
}

/// `[name]` followed by anything: the name runs to the last `]` and is not empty.
fn section_header(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Vec<(String, Vec<(String, String)>)> {
        parse(text)
            .expect("parses")
            .resolve()
            .expect("resolves")
            .into_iter()
            .map(|(name, options)| {
                let pairs = options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (name, pairs)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn delimiters_case_comments_and_whitespace() {
        let text = "# comment\n; other\n[barman]\n  Barman_Home = /var/lib/barman \nlog_level:INFO\n\
                    url = a=b:c\n   # indented comment\n[srv]\nkey=\n";
        assert_eq!(
            sections(text),
            vec![
                (
                    "barman".to_string(),
                    pairs(&[
                        ("barman_home", "/var/lib/barman"),
                        ("log_level", "INFO"),
                        ("url", "a=b:c"),
                    ])
                ),
                ("srv".to_string(), pairs(&[("key", "")])),
            ]
        );
    }

    #[test]
    fn continuation_lines_keep_inner_blank_lines() {
        let text = "[s]\nk = one\n  two\n\n  three\n\n\nnext = x\n";
        assert_eq!(
            sections(text)[0].1,
            pairs(&[("k", "one\ntwo\n\nthree"), ("next", "x")])
        );
        // Not deeper than the key: a new key, not a continuation.
        let text = "[s]\n  a = 1\n  b = 2\n";
        assert_eq!(sections(text)[0].1, pairs(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn repeated_sections_merge_and_later_keys_win_in_place() {
        let text = "[s]\na = 1\nb = 2\n[t]\nx = 0\n[s]\na = 3\nc = 4\n";
        assert_eq!(
            sections(text),
            vec![
                (
                    "s".to_string(),
                    pairs(&[("a", "3"), ("b", "2"), ("c", "4")])
                ),
                ("t".to_string(), pairs(&[("x", "0")])),
            ]
        );
    }

    #[test]
    fn defaults_join_every_section_and_interpolate() {
        let text =
            "[DEFAULT]\nroot = /srv\n[a]\ndir = %(root)s/%(Name)s\nname = a\n[b]\nroot = /other\n";
        assert_eq!(
            sections(text),
            vec![
                (
                    "a".to_string(),
                    pairs(&[("dir", "/srv/a"), ("name", "a"), ("root", "/srv")])
                ),
                ("b".to_string(), pairs(&[("root", "/other")])),
            ]
        );
    }

    #[test]
    fn interpolation_escapes_nesting_and_errors() {
        let text = "[s]\na = 100%%%%\nb = %(c)s!\nc = %(d)s\nd = deep\n";
        assert_eq!(
            sections(text)[0].1,
            pairs(&[("a", "100%%"), ("b", "deep!"), ("c", "deep"), ("d", "deep")])
        );
        // `%%` gives `%`, which Python then refuses to store (as Barman's merge does).
        let escaped = parse("[s]\na = 100%%\n").unwrap().resolve().unwrap_err();
        assert_eq!(
            escaped,
            "invalid interpolation syntax in '100%' at position 3"
        );
        let missing = parse("[s]\nfoo = %(bar)s\n")
            .unwrap()
            .resolve()
            .unwrap_err();
        assert_eq!(
            missing,
            "Bad value substitution: option 'foo' in section 's' contains an interpolation \
             key 'bar' which is not a valid option name. Raw value: '%(bar)s'"
        );
        let lone = parse("[s]\nfoo = 5%\n").unwrap().resolve().unwrap_err();
        assert!(lone.starts_with("'%' must be followed by"), "{lone}");
        let looped = parse("[s]\na = %(b)s\nb = %(a)s\n").unwrap().resolve();
        assert!(looped.unwrap_err().starts_with("Recursion limit exceeded"));
        // `%%(x)s` survives the first pass as a reference, `%%%%` as `%%`: both are valid
        // stored values; a lone `%` is not.
        assert!(check_stored_value("%(x)s and %%").is_ok());
        assert_eq!(
            check_stored_value("50% off").unwrap_err(),
            "invalid interpolation syntax in '50% off' at position 2"
        );
    }

    #[test]
    fn header_forms() {
        assert_eq!(section_header("[a] trailing"), Some("a"));
        assert_eq!(section_header("[a]b]"), Some("a]b"));
        assert_eq!(section_header("[]"), None);
        assert_eq!(section_header("[]]"), Some("]"));
        assert_eq!(section_header("a]"), None);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(
            parse("x = 1\n[barman]\n").unwrap_err(),
            SyntaxError {
                line: 1,
                reason: "no [section] header before 'x = 1'".to_string()
            }
        );
        let error = parse("[barman]\na = 1\n\ngarbage\n").unwrap_err();
        assert_eq!(error.line, 4);
        assert!(error.reason.contains("'garbage'"), "{error}");
        assert_eq!(parse("[s]\n = 1\n").unwrap_err().line, 2);
        // CR and CRLF line ends count lines as LF does.
        assert_eq!(parse("[s]\r\na = 1\rbad\r\n").unwrap_err().line, 3);
    }
}
