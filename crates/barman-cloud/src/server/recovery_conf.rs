//! The PostgreSQL configuration of a recovered data directory, as Barman 3.20.1 prepares it
//! (`recovery_executor.py`): the recovery settings appended to `postgresql.auto.conf`,
//! settings that would harm the recovered server commented out (`#BARMAN#`) and replaced,
//! and settings the user must review (paths of the old server) listed.
//!
//! The recovery settings are appended after a blank line, as Barman appends them (its check
//! for a missing final newline never fails). Beyond Barman: when every line was commented
//! out and the last one has no newline, it is ended before the recovery settings (Barman
//! appends them to that comment, which disables them).

/// A setting found in a configuration file: the file's base name, the line (counted from
/// 0, as Barman prints it), the setting, and the value Barman prints (the replacement for
/// a changed setting, `None` when only commented out; the value as written for a setting
/// to review).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub filename: String,
    pub line: usize,
    pub key: String,
    pub value: Option<String>,
}

impl Assertion {
    /// The value as Barman prints it (`None` for a setting only commented out).
    pub fn shown_value(&self) -> &str {
        self.value.as_deref().unwrap_or("None")
    }
}

/// Settings commented out in the recovered configuration, with their replacement.
const MANGLED: [(&str, Option<&str>); 9] = [
    ("archive_command", Some("false")),
    ("recovery_target", None),
    ("recovery_target_name", None),
    ("recovery_target_time", None),
    ("recovery_target_xid", None),
    ("recovery_target_lsn", None),
    ("recovery_target_inclusive", None),
    ("recovery_target_timeline", None),
    ("recovery_target_action", None),
];

/// Settings naming paths or files of the original server.
const DANGEROUS: [&str; 14] = [
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "unix_socket_directory",
    "unix_socket_directories",
    "include",
    "include_dir",
    "include_if_exists",
];

/// A configuration line read as Barman reads it (`^\s*([^\s=]+)\s*=?\s*(.*)$`): the first
/// word up to blank or `=`, then the rest after an optional `=`. Comment lines match too
/// (their word starts with `#`, so it is never a setting name).
pub fn setting(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let start = line.trim_start();
    let end = start
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(start.len());
    if end == 0 {
        return None;
    }
    let (key, rest) = start.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    Some((key, rest))
}

/// The lines of `content`, each with its `\n` (the last one may lack it).
fn lines(content: &[u8]) -> Vec<&[u8]> {
    content.split_inclusive(|b| *b == b'\n').collect()
}

/// Barman's `ConfigurationFileMangeler.mangle_options`: the new content of `filename` with
/// every dangerous setting commented out (`#BARMAN#`) and replaced, and `append` added at
/// the end; the changes made.
pub fn mangle(
    content: &[u8],
    filename: &str,
    append: Option<&[String]>,
) -> (Vec<u8>, Vec<Assertion>) {
    let mut out = Vec::with_capacity(content.len() + 256);
    let mut changes = Vec::new();
    let mut kept_a_line = false;
    for (number, line) in lines(content).into_iter().enumerate() {
        let text = String::from_utf8_lossy(line);
        if let Some((key, _)) = setting(&text)
            && let Some((_, replacement)) = MANGLED.iter().find(|(k, _)| *k == key)
        {
            out.extend_from_slice(b"#BARMAN#");
            out.extend_from_slice(line);
            if let Some(value) = replacement {
                if !line.ends_with(b"\n") {
                    out.push(b'\n');
                }
                out.extend_from_slice(format!("{key} = {value}\n").as_bytes());
            }
            changes.push(Assertion {
                filename: filename.to_string(),
                line: number,
                key: key.to_string(),
                value: replacement.map(str::to_string),
            });
            continue;
        }
        kept_a_line = true;
        out.extend_from_slice(line);
    }
    if let Some(append) = append.filter(|a| !a.is_empty()) {
        // Barman's test for a missing final newline is always true (it compares a byte
        // with a one-byte string), so after any kept line it adds one: a blank line when
        // the file ended properly.
        if kept_a_line {
            out.push(b'\n');
        }
        if out.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
        out.extend_from_slice(append.join("\n").as_bytes());
        out.push(b'\n');
    }
    (out, changes)
}

/// Barman's `ConfigIssueDetection.detect_issues`: the settings of `content` that name
/// paths of the original server.
pub fn detect_issues(content: &[u8], filename: &str) -> Vec<Assertion> {
    let text = String::from_utf8_lossy(content);
    let mut found = Vec::new();
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if let Some((key, value)) = setting(line)
            && DANGEROUS.contains(&key)
        {
            found.push(Assertion {
                filename: filename.to_string(),
                line: number,
                key: key.to_string(),
                value: Some(value.to_string()),
            });
        }
    }
    found
}

/// How the recovered server gets its WALs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalSource {
    /// `get-wal` from this Barman server; `remote`: Barman's host name when the recovery
    /// is remote (barman-wal-restore), `None` for a local one (barman get-wal).
    GetWal {
        remote: Option<String>,
        port: Option<String>,
        parallel_jobs: usize,
    },
    /// `--restore-command`, with get-wal.
    Custom(String),
    /// WALs copied into this directory (`cp`).
    Copied(String),
}

/// The recovery targets, as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Normalised (Python's `str()` of the parsed time, with its zone).
    pub time: Option<String>,
    pub xid: Option<String>,
    pub lsn: Option<String>,
    pub name: Option<String>,
    pub immediate: bool,
    pub exclusive: bool,
    /// As given (`latest`, `current` or a number).
    pub tli: Option<String>,
    pub action: Option<String>,
}

/// Barman's `_generate_recovery_conf` (PostgreSQL 12 and later): the lines appended to the
/// recovery configuration file, in Barman's order.
pub fn recovery_lines(
    source: &WalSource,
    server: &str,
    barman_user: &str,
    standby_mode: bool,
    targets: &Targets,
) -> Vec<String> {
    let mut lines = Vec::new();
    let partial = if standby_mode { "" } else { "-P" };
    match source {
        WalSource::Custom(command) => {
            lines.push(format!(
                "restore_command = '{}'",
                command.replace('\'', "''")
            ));
        }
        WalSource::GetWal {
            remote: Some(host),
            port,
            parallel_jobs,
        } => {
            lines.push(
                "# The 'barman-wal-restore' command is provided in the 'barman-cli' package"
                    .to_string(),
            );
            let port = port
                .as_deref()
                .map(|p| format!("--port {p}"))
                .unwrap_or_default();
            let mut command = format!(
                "restore_command = 'barman-wal-restore {partial} -U {barman_user} {port} {host} \
                 {server} %f %p'"
            );
            if *parallel_jobs > 1 {
                command.pop();
                command.push_str(&format!(" -p {parallel_jobs}'"));
            }
            lines.push(command.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        WalSource::GetWal { remote: None, .. } => {
            lines.push(format!(
                "# The 'barman get-wal' command must run as '{barman_user}' user"
            ));
            // Barman does not collapse the double space of the standby form here.
            lines.push(format!(
                "restore_command = 'barman get-wal {partial} {server} %f > %p'"
            ));
        }
        WalSource::Copied(dir) => {
            if !standby_mode {
                lines.push(format!("restore_command = 'cp {dir}/%f %p'"));
                lines.push(format!("recovery_end_command = 'rm -fr {dir}'"));
            }
        }
    }
    if let Some(time) = &targets.time {
        lines.push(format!("recovery_target_time = '{time}'"));
    }
    if let Some(xid) = &targets.xid {
        lines.push(format!("recovery_target_xid = '{xid}'"));
    }
    if let Some(lsn) = &targets.lsn {
        lines.push(format!("recovery_target_lsn = '{lsn}'"));
    }
    if let Some(name) = &targets.name {
        lines.push(format!("recovery_target_name = '{name}'"));
    }
    if targets.immediate {
        lines.push("recovery_target = 'immediate'".to_string());
    }
    if (targets.xid.is_some() || targets.time.is_some() || targets.lsn.is_some())
        && targets.exclusive
    {
        lines.push("recovery_target_inclusive = 'False'".to_string());
    }
    if let Some(tli) = &targets.tli {
        lines.push(format!("recovery_target_timeline = {tli}"));
    }
    if let Some(action) = &targets.action {
        lines.push(format!("recovery_target_action = '{action}'"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_as_barman_reads_them() {
        assert_eq!(
            setting("archive_command = 'cp'\n"),
            Some(("archive_command", "'cp'"))
        );
        assert_eq!(setting("  port=5432"), Some(("port", "5432")));
        assert_eq!(setting("include 'x.conf'"), Some(("include", "'x.conf'")));
        assert_eq!(
            setting("#archive_command = ''"),
            Some(("#archive_command", "''"))
        );
        assert_eq!(setting("\n"), None);
        assert_eq!(setting("   \n"), None);
    }

    #[test]
    fn dangerous_settings_are_commented_out_and_replaced() {
        let content = b"port = 5\narchive_command = 'cp %p /x'\n#archive_command = ''\nrecovery_target_name = 'a'\n";
        let append = vec!["restore_command = 'x'".to_string()];
        let (out, changes) = mangle(content, "postgresql.conf", Some(&append));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "port = 5\n#BARMAN#archive_command = 'cp %p /x'\narchive_command = false\n\
             #archive_command = ''\n#BARMAN#recovery_target_name = 'a'\n\nrestore_command = 'x'\n"
        );
        assert_eq!(changes.len(), 2);
        assert_eq!((changes[0].line, changes[0].shown_value()), (1, "false"));
        assert_eq!((changes[1].line, changes[1].shown_value()), (3, "None"));
    }

    #[test]
    fn appended_lines_start_on_their_own_line() {
        let append = vec!["a = 1".to_string()];
        let (out, _) = mangle(b"port = 5", "f", Some(&append));
        assert_eq!(out, b"port = 5\na = 1\n");
        let (out, _) = mangle(b"port = 5\n", "f", Some(&append));
        assert_eq!(out, b"port = 5\n\na = 1\n");
        // Barman would append to the comment; we end it first.
        let (out, _) = mangle(b"recovery_target = 'immediate'", "f", Some(&append));
        assert_eq!(out, b"#BARMAN#recovery_target = 'immediate'\na = 1\n");
        let (out, _) = mangle(b"", "f", Some(&append));
        assert_eq!(out, b"a = 1\n");
    }

    #[test]
    fn paths_to_review_are_listed_with_their_values() {
        let found = detect_issues(
            b"a = 1\nunix_socket_directories = '/tmp' # x\ninclude_dir 'conf.d'\n",
            "postgresql.conf",
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].line, 1);
        assert_eq!(found[0].shown_value(), "'/tmp' # x");
        assert_eq!(found[1].key, "include_dir");
    }

    #[test]
    fn recovery_lines_follow_barmans_order_and_forms() {
        let targets = Targets {
            time: Some("2026-01-01 00:00:00+00:00".into()),
            exclusive: true,
            tli: Some("2".into()),
            action: Some("promote".into()),
            ..Default::default()
        };
        let local = WalSource::GetWal {
            remote: None,
            port: None,
            parallel_jobs: 1,
        };
        assert_eq!(
            recovery_lines(&local, "snap", "barman", false, &targets),
            [
                "# The 'barman get-wal' command must run as 'barman' user",
                "restore_command = 'barman get-wal -P snap %f > %p'",
                "recovery_target_time = '2026-01-01 00:00:00+00:00'",
                "recovery_target_inclusive = 'False'",
                "recovery_target_timeline = 2",
                "recovery_target_action = 'promote'",
            ]
        );
        let standby = recovery_lines(&local, "snap", "barman", true, &Targets::default());
        assert_eq!(
            standby[1],
            "restore_command = 'barman get-wal  snap %f > %p'"
        );
        let remote = WalSource::GetWal {
            remote: Some("bkp.example".into()),
            port: Some("2222".into()),
            parallel_jobs: 4,
        };
        assert_eq!(
            recovery_lines(&remote, "snap", "barman", true, &Targets::default())[1],
            "restore_command = 'barman-wal-restore -U barman --port 2222 bkp.example snap %f %p -p 4'"
        );
        let copied = WalSource::Copied("/d/barman_wal".into());
        assert_eq!(
            recovery_lines(&copied, "snap", "barman", false, &Targets::default()),
            [
                "restore_command = 'cp /d/barman_wal/%f %p'",
                "recovery_end_command = 'rm -fr /d/barman_wal'"
            ]
        );
        assert!(recovery_lines(&copied, "snap", "b", true, &Targets::default()).is_empty());
        assert_eq!(
            recovery_lines(
                &WalSource::Custom("a 'b'".into()),
                "s",
                "b",
                false,
                &Targets::default()
            ),
            ["restore_command = 'a ''b'''"]
        );
    }
}
