//! Which filesystem entries go into a base backup: Barman's include/exclude rules and
//! their rsync-like wildcard syntax, reproduced so that our archives hold the same files.
//!
//! Quirks kept on purpose (a restore must see the same tree as Barman's): `[` and `]` are
//! literal characters, so Barman's rule for temporary relation files never matches; an
//! excluded directory hides its own entry and files but its subdirectories are judged on
//! their own.

use regex_lite::Regex;

/// Contents Barman never archives from PGDATA, whatever the PostgreSQL version.
const PGDATA_EXCLUDES: &[&str] = &[
    "/pg_log/*",
    "/log/*",
    "/pg_xlog/*",
    "/pg_wal/*",
    "/global/pg_control",
];

/// Runtime files excluded everywhere (PGDATA and tablespaces).
const COMMON_EXCLUDES: &[&str] = &[
    "pgsql_tmp*",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "pg_internal.init",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "standby.signal",
    "**/[0-9]*/t[0-9]*_[0-9]*",
    "pg_dynshmem/*",
    "pg_notify/*",
    "pg_replslot/*",
    "pg_serial/*",
    "pg_stat_tmp/*",
    "pg_snapshots/*",
    "pg_subtrans/*",
];

struct Rule {
    regex: Regex,
    directories_only: bool,
}

impl Rule {
    fn new(text: &str) -> Self {
        let (text, directories_only) = match text.strip_suffix('/') {
            Some(stripped) => (stripped, true),
            None => (text, false),
        };
        let pattern = match text.strip_prefix('/') {
            Some(anchored) => format!("^(?s){}$", wildcard_to_regex(anchored)),
            None => format!("^(?s)(?:.*/)?{}$", wildcard_to_regex(text)),
        };
        Rule {
            regex: Regex::new(&pattern).expect("wildcard translation yields a valid regex"),
            directories_only,
        }
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        (is_dir || !self.directories_only) && self.regex.is_match(path)
    }
}

/// `**` any characters, `*` any characters but `/`, `?` one character, all else literal.
fn wildcard_to_regex(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("**") {
            out.push_str(".*");
            rest = &rest[2..];
            continue;
        }
        match c {
            '*' => out.push_str("[^/]*"),
            '?' => out.push('.'),
            other => out.push_str(&regex_lite::escape(other.encode_utf8(&mut [0; 4]))),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Include rules win over exclude rules; anything matched by neither is accepted.
pub struct PathRules {
    include: Vec<Rule>,
    exclude: Vec<Rule>,
}

impl PathRules {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        PathRules {
            include: include.iter().map(|r| Rule::new(r)).collect(),
            exclude: exclude.iter().map(|r| Rule::new(r)).collect(),
        }
    }

    /// Rules for PGDATA: the runtime files Barman skips, each tablespace link, and any
    /// tablespace whose location lies inside PGDATA (archived on its own).
    pub fn for_pgdata(tablespace_oids: &[u32], tablespaces_inside_pgdata: &[String]) -> Self {
        let mut exclude: Vec<String> = PGDATA_EXCLUDES
            .iter()
            .chain(COMMON_EXCLUDES)
            .map(|s| s.to_string())
            .collect();
        exclude.extend(
            tablespace_oids
                .iter()
                .map(|oid| format!("/pg_tblspc/{oid}")),
        );
        exclude.extend(
            tablespaces_inside_pgdata
                .iter()
                .map(|rel| format!("/{rel}")),
        );
        PathRules::new(&[], &exclude)
    }

    /// Rules for a tablespace location: only its `PG_<major>_*` directories.
    pub fn for_tablespace(pg_major_version: &str) -> Self {
        let mut exclude = vec!["/*".to_string()];
        exclude.extend(COMMON_EXCLUDES.iter().map(|s| s.to_string()));
        PathRules::new(&[format!("/PG_{pg_major_version}_*")], &exclude)
    }

    /// `path` is relative to the archive source, `./name` for files at its top.
    pub fn allows(&self, path: &str, is_dir: bool) -> bool {
        if self.include.iter().any(|r| r.matches(path, is_dir)) {
            return true;
        }
        !self.exclude.iter().any(|r| r.matches(path, is_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgdata_rules_skip_runtime_contents_but_keep_their_directories() {
        let rules = PathRules::for_pgdata(&[16400], &["inside/ts".to_string()]);
        for (path, is_dir, allowed) in [
            (".", true, true),
            ("./PG_VERSION", false, true),
            ("./postmaster.pid", false, false),
            ("./postmaster.opts", false, false),
            ("./standby.signal", false, false),
            ("./recovery.signal", false, true),
            ("./backup_label.old", false, true),
            ("./postgresql.auto.conf", false, true),
            ("pg_wal", true, true),
            ("pg_wal/000000010000000000000001", false, false),
            ("pg_wal/archive_status", true, false),
            ("pg_wal/archive_status/x", true, true),
            ("global/pg_control", false, false),
            ("global/1262", false, true),
            ("pg_tblspc/16400", true, false),
            ("pg_tblspc/16401", true, true),
            ("inside/ts", true, false),
            ("base/1/pgsql_tmp", true, false),
            ("base/pgsql_tmp/pgsql_tmp123.0", false, false),
            ("base/1/pg_internal.init", false, false),
            ("base/16384/t3_16390", false, true),
            ("pg_stat_tmp/global.stat", false, false),
            ("pg_stat_tmp", true, true),
            ("pg_log/postgresql.log", false, false),
            ("sub/pg_notify/0000", false, false),
        ] {
            assert_eq!(rules.allows(path, is_dir), allowed, "{path}");
        }
    }

    #[test]
    fn tablespace_rules_keep_only_the_version_directory() {
        let rules = PathRules::for_tablespace("15");
        assert!(!rules.allows(".", true));
        assert!(rules.allows("PG_15_202209061", true));
        assert!(rules.allows("PG_15_202209061/16384", true));
        assert!(rules.allows("PG_15_202209061/16384/16385", false));
        assert!(!rules.allows("PG_14_202107181", true));
        assert!(!rules.allows("lost+found", true));
        assert!(!rules.allows("PG_15_202209061/16384/pgsql_tmp", true));
    }

    #[test]
    fn wildcards_follow_barman_not_fnmatch() {
        let rules = PathRules::new(&[], &["/a/*.x".into(), "b?c".into(), "/d/**".into()]);
        assert!(!rules.allows("a/f.x", false));
        assert!(rules.allows("a/sub/f.x", false));
        assert!(!rules.allows("q/bzc", false));
        assert!(!rules.allows("d/e/f", false));
        let literal = PathRules::new(&[], &["[0-9]".into()]);
        assert!(literal.allows("5", false));
        assert!(!literal.allows("[0-9]", false));
        let dirs_only = PathRules::new(&[], &["cache/".into()]);
        assert!(!dirs_only.allows("x/cache", true));
        assert!(dirs_only.allows("x/cache", false));
    }
}
