//! Barman's output module: results and messages through a console writer (info on
//! stdout, `WARNING: `/`ERROR: `/`EXCEPTION: ` lines on stderr, passwords redacted,
//! optional ANSI colours) or a JSON writer (one object with sorted keys printed at the
//! end, messages under `_WARNING`, `_ERROR`, `_EXCEPTION`); and Barman's log, which
//! records every message again in `log_format` to `log_file`, or to stderr when no file
//! is configured (so a warning shows twice there, as with Barman).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use barman_cloud::catalog::json;
use barman_cloud::catalog::{PyDict, PyValue};

use super::args::Format;
use crate::exit::Stdout;

/// Python `logging` levels.
pub const WARNING: i64 = 30;
pub const ERROR: i64 = 40;
pub const CRITICAL: i64 = 50;

fn level_name(level: i64) -> String {
    match level {
        50 => "CRITICAL".into(),
        40 => "ERROR".into(),
        30 => "WARNING".into(),
        20 => "INFO".into(),
        10 => "DEBUG".into(),
        0 => "NOTSET".into(),
        other => format!("Level {other}"),
    }
}

/// Where log records go once logging is configured; before, only records of level
/// WARNING or above reach stderr, bare (Python's last-resort handler).
pub struct Log {
    file: Option<PathBuf>,
    format: String,
    level: i64,
    configured: bool,
}

impl Log {
    pub fn new() -> Self {
        Log {
            file: None,
            format: barman_cloud::server::config::DEFAULT_LOG_FORMAT.to_string(),
            level: WARNING,
            configured: false,
        }
    }

    /// Barman's `configure_logging`: `log_file` (parent directories created) or stderr.
    /// Returns whether the file could not be opened (Barman then warns and uses stderr).
    pub fn configure(&mut self, log_file: Option<&str>, level: i64, format: &str) -> bool {
        self.level = level;
        self.format = format.to_string();
        self.configured = true;
        let Some(file) = log_file.filter(|f| !f.is_empty()) else {
            return false;
        };
        let path = std::path::absolute(file).unwrap_or_else(|_| PathBuf::from(file));
        let opened = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        match opened {
            Ok(_) => {
                self.file = Some(path);
                false
            }
            Err(_) => true,
        }
    }

    pub fn record(&self, level: i64, logger: &str, message: &str) {
        if !self.configured {
            if level >= WARNING {
                let _ = writeln!(std::io::stderr().lock(), "{message}");
            }
            return;
        }
        if level < self.level {
            return;
        }
        let line = self.render(level, logger, message);
        if let Some(path) = &self.file
            && let Ok(mut file) = OpenOptions::new().append(true).open(path)
        {
            let _ = writeln!(file, "{line}");
            return;
        }
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// `log_format` with the attributes Barman's default format uses.
    fn render(&self, level: i64, logger: &str, message: &str) -> String {
        let now = chrono::Local::now();
        let mut line = String::new();
        let mut rest = self.format.as_str();
        while let Some(start) = rest.find("%(") {
            line.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find(")s") else {
                line.push_str(&rest[start..]);
                rest = "";
                break;
            };
            match &after[..end] {
                "asctime" => line.push_str(&now.format("%Y-%m-%d %H:%M:%S,%3f").to_string()),
                "process" => line.push_str(&std::process::id().to_string()),
                "name" => line.push_str(logger),
                "levelname" => line.push_str(&level_name(level)),
                "message" => line.push_str(message),
                other => {
                    line.push_str("%(");
                    line.push_str(other);
                    line.push_str(")s");
                }
            }
            rest = &after[end + 2..];
        }
        line.push_str(rest);
        line
    }
}

/// The output writer.
pub struct Output {
    pub format: Format,
    quiet: bool,
    colors: bool,
    /// `_WARNING`, `_ERROR`, ... and results, for the JSON writer.
    json: BTreeMap<String, PyValue>,
    pub error_occurred: bool,
    /// The exit code when an error was emitted (Barman's `error_exit_code`: 1, or 3 for
    /// some get-wal errors).
    pub error_exit_code: u8,
    pub log: Log,
    /// Barman's Nagios writer (`check --nagios`): nothing printed on the way, only the
    /// summary the check command prints when it closes.
    pub nagios: bool,
}

impl Output {
    pub fn new() -> Self {
        Output {
            format: Format::Console,
            quiet: false,
            colors: false,
            json: BTreeMap::new(),
            error_occurred: false,
            error_exit_code: 1,
            log: Log::new(),
            nagios: false,
        }
    }

    pub fn set_writer(&mut self, format: Format, quiet: bool, colors: bool) {
        self.format = format;
        self.quiet = quiet;
        self.colors = colors;
    }

    fn collect(&mut self, field: &str, message: &str) {
        let entry = self
            .json
            .entry(field.to_string())
            .or_insert_with(|| PyValue::List(Vec::new()));
        if let PyValue::List(items) = entry {
            items.push(PyValue::str(message));
        }
    }

    fn err_line(&self, text: &str, color: &str) {
        if self.nagios {
            return;
        }
        let text = if self.colors {
            format!("\x1b[{color}m{text}\x1b[0m")
        } else {
            text.to_string()
        };
        let _ = writeln!(std::io::stderr().lock(), "{}", redact_passwords(&text));
    }

    pub fn info(&mut self, message: &str) {
        match self.format {
            Format::Json => self.collect("_INFO", message),
            Format::Console if !self.quiet && !self.nagios => {
                let _ = Stdout::print(&format!("{}\n", redact_passwords(message)));
            }
            Format::Console => {}
        }
    }

    pub fn warning(&mut self, message: &str, logger: &str) {
        match self.format {
            Format::Json => self.collect("_WARNING", message),
            Format::Console => self.err_line(&format!("WARNING: {message}"), "33"),
        }
        self.log.record(WARNING, logger, message);
    }

    pub fn error(&mut self, message: &str, logger: &str) {
        self.error_occurred = true;
        match self.format {
            Format::Json => self.collect("_ERROR", message),
            Format::Console => self.err_line(&format!("ERROR: {message}"), "31"),
        }
        self.log.record(ERROR, logger, message);
    }

    pub fn exception(&mut self, message: &str, logger: &str) {
        self.error_occurred = true;
        match self.format {
            Format::Json => self.collect("_EXCEPTION", message),
            Format::Console => self.err_line(&format!("EXCEPTION: {message}"), "31"),
        }
        self.log.record(ERROR, logger, message);
    }

    /// Stores a JSON result under `key` (ignored by the console writer).
    pub fn json_result(&mut self, key: &str, value: PyValue) {
        self.json.insert(key.to_string(), value);
    }

    /// `close_and_exit`: the JSON writer prints its object (no newline, as `json.dump`);
    /// exit 1 if an error was emitted.
    pub fn close(&mut self) -> u8 {
        if self.format == Format::Json && !self.quiet && !self.nagios {
            let mut dict = PyDict::new();
            for (key, value) in std::mem::take(&mut self.json) {
                dict.set(&key, value);
            }
            if let Ok(text) = json::dumps(&PyValue::Dict(dict)) {
                let _ = Stdout::print(&text);
            }
        }
        if self.error_occurred {
            self.error_exit_code
        } else {
            0
        }
    }
}

/// Barman's `redact_passwords`: the value of `password=` in connection strings and the
/// password of `postgresql://user:password@` URLs become `*REDACTED*`.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        out.push_str(&rest[..at + 9]);
        let value = &rest[at + 9..];
        let len = quoted_len(value)
            .unwrap_or_else(|| value.find([' ', '\'', '"']).unwrap_or(value.len()));
        out.push_str("*REDACTED*");
        rest = &value[len..];
    }
    out.push_str(rest);
    let text = out;
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("postgresql://") {
        out.push_str(&rest[..at + 13]);
        rest = &rest[at + 13..];
        let user_end = rest.find([' ', ':', '@']).unwrap_or(rest.len());
        if user_end > 0 && rest[user_end..].starts_with(':') {
            let after = &rest[user_end + 1..];
            let password_end = after.find([' ', ':', '@']).unwrap_or(after.len());
            if after[password_end..].starts_with('@') {
                out.push_str(&rest[..=user_end]);
                out.push_str("*REDACTED*@");
                rest = &after[password_end + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The length of a `'...'` value (with `\'` inside) at the start of `value`.
fn quoted_len(value: &str) -> Option<usize> {
    let inner = value.strip_prefix('\'')?;
    let mut chars = inner.char_indices().peekable();
    let mut count = 0;
    while let Some((i, c)) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some((_, '\''))) {
            chars.next();
            count += 1;
            continue;
        }
        if c == '\'' {
            return (count > 0).then_some(i + 2);
        }
        count += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_as_barman_does() {
        assert_eq!(
            redact_passwords("host=h password=secret user=u"),
            "host=h password=*REDACTED* user=u"
        );
        assert_eq!(
            redact_passwords("password='a b' x"),
            "password=*REDACTED* x"
        );
        assert_eq!(
            redact_passwords("postgresql://me:pw@host/db"),
            "postgresql://me:*REDACTED*@host/db"
        );
        assert_eq!(redact_passwords("nothing here"), "nothing here");
    }

    #[test]
    fn log_lines_follow_log_format() {
        let mut log = Log::new();
        log.configure(None, WARNING, "%(name)s %(levelname)s: %(message)s");
        assert_eq!(
            log.render(WARNING, "barman.config", "hello"),
            "barman.config WARNING: hello"
        );
    }
}
