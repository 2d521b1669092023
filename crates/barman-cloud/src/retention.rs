//! Retention policies (`REDUNDANCY n`, `RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS`) and the
//! report that says, for every backup of a catalog, whether the policy still needs it.
//!
//! The report follows Barman 3.20.1 to the letter, quirks included, because a bucket is
//! shared with Barman's own `barman-cloud-backup-delete` and both must agree on what goes:
//! kept backups use up redundancy slots, only DONE backups are judged, the newest backup
//! older than the window is still valid, a month is 31 days.

use std::collections::BTreeMap;
use std::fmt;

use crate::catalog::{BackupInfo, BackupStatus, Timestamp};
use crate::error::{Error, Result};

/// The keep annotation text that protects only what one backup needs to be consistent.
pub const KEEP_STANDALONE: &str = "standalone";
/// The keep annotation text that protects a backup and every later WAL.
pub const KEEP_FULL: &str = "full";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    Days,
    Weeks,
    Months,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPolicy {
    /// Keep the `n` newest DONE backups.
    Redundancy(u64),
    /// Keep what recovery to any point of the last `n` units needs.
    RecoveryWindow(u64, WindowUnit),
}

/// What the policy makes of one backup (Barman's retention status strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionStatus {
    Valid,
    Obsolete,
    /// Older than the window but kept for `--minimum-redundancy`: not deleted.
    PotentiallyObsolete,
    KeepFull,
    KeepStandalone,
    /// Not judged (any status but DONE).
    NotApplicable,
}

impl RetentionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Valid => "VALID",
            RetentionStatus::Obsolete => "OBSOLETE",
            RetentionStatus::PotentiallyObsolete => "OBSOLETE*",
            RetentionStatus::KeepFull => "KEEP:FULL",
            RetentionStatus::KeepStandalone => "KEEP:STANDALONE",
            RetentionStatus::NotApplicable => "-",
        }
    }
}

fn invalid(text: &str) -> Error {
    Error::InvalidInput(format!(
        "Could not create retention policy {text}: Cannot parse option retention_policy: {text}"
    ))
}

impl RetentionPolicy {
    /// Parses Barman's syntax: case-insensitive, any whitespace between words and around,
    /// singular or plural unit (`REDUNDANCY 3`, `recovery window of 1 week`).
    pub fn parse(text: &str) -> Result<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let number = |word: &str| -> Result<u64> {
            if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(text));
            }
            // Barman accepts any number of digits; more than u64 holds is nonsense anyway.
            word.parse().map_err(|_| invalid(text))
        };
        match lower.as_slice() {
            ["redundancy", n] => Ok(RetentionPolicy::Redundancy(number(n)?)),
            ["recovery", "window", "of", n, unit] => {
                let unit = match unit.strip_suffix('s').unwrap_or(unit) {
                    "day" => WindowUnit::Days,
                    "week" => WindowUnit::Weeks,
                    "month" => WindowUnit::Months,
                    _ => return Err(invalid(text)),
                };
                Ok(RetentionPolicy::RecoveryWindow(number(n)?, unit))
            }
            _ => Err(invalid(text)),
        }
    }

    /// The report: every backup of `backups` (any order) with its retention status.
    /// `keep_targets` maps backup IDs to their keep annotation's text; `now` is the
    /// current time (the recovery window ends there).
    pub fn report(
        &self,
        backups: &[BackupInfo],
        keep_targets: &BTreeMap<String, String>,
        minimum_redundancy: u64,
        now: Timestamp,
    ) -> Result<BTreeMap<String, RetentionStatus>> {
        let mut newest_first: Vec<&BackupInfo> = backups.iter().collect();
        newest_first.sort_by(|a, b| b.backup_id.cmp(&a.backup_id));
        // Incremental backups (with a parent) are skipped; a full backup with children
        // stops Barman itself, whose cloud catalog cannot walk a backup tree.
        if newest_first
            .iter()
            .any(|b| b.children_backup_ids.is_some() && b.parent_backup_id.is_none())
        {
            return Err(Error::Config(
                "retention policies cannot be applied to a catalog holding incremental \
                 backups with children"
                    .into(),
            ));
        }
        let keep_status = |id: &str| match keep_targets.get(id).map(String::as_str) {
            Some(KEEP_STANDALONE) => Some(RetentionStatus::KeepStandalone),
            Some(text) if !text.is_empty() => Some(RetentionStatus::KeepFull),
            _ => None,
        };
        // Only DONE backups are judged; incremental ones (with a parent) are not listed.
        let mut report = BTreeMap::new();
        let mut done: Vec<(String, &BackupInfo)> = Vec::new();
        for backup in newest_first {
            let Some(id) = backup.backup_id.clone() else {
                continue;
            };
            if backup.parent_backup_id.is_some() {
                continue;
            }
            if backup.status == Some(BackupStatus::Done) {
                done.push((id, backup));
            } else {
                report.insert(id, RetentionStatus::NotApplicable);
            }
        }
        match *self {
            RetentionPolicy::Redundancy(n) => {
                let redundancy = if n < minimum_redundancy {
                    tracing::warn!(
                        "Retention policy redundancy ({n}) is lower than the required minimum \
                         redundancy ({minimum_redundancy}). Enforce {minimum_redundancy}."
                    );
                    minimum_redundancy
                } else {
                    n
                };
                // Kept backups take a slot too.
                for (position, (id, _)) in (0u64..).zip(done) {
                    let status = keep_status(&id).unwrap_or(if position < redundancy {
                        RetentionStatus::Valid
                    } else {
                        RetentionStatus::Obsolete
                    });
                    report.insert(id, status);
                }
            }
            RetentionPolicy::RecoveryWindow(n, unit) => {
                let point = now - window_length(n, unit)?;
                let mut past_window = false;
                let mut valid = 0;
                for (id, backup) in done {
                    let keep = keep_status(&id);
                    let status = if !past_window {
                        valid += 1;
                        let end_time = backup.end_time.ok_or_else(|| {
                            Error::Config(format!("backup {id} is DONE but has no end_time"))
                        })?;
                        // The newest backup that ended before the window opened is still
                        // needed: recovery to the window's first moment starts from it.
                        past_window = end_time < point;
                        keep.unwrap_or(RetentionStatus::Valid)
                    } else if valid < minimum_redundancy {
                        valid += 1;
                        keep.unwrap_or_else(|| {
                            tracing::warn!(
                                "Keeping obsolete backup {id} (older than {point}) due to \
                                 minimum redundancy requirements ({minimum_redundancy})"
                            );
                            RetentionStatus::PotentiallyObsolete
                        })
                    } else {
                        keep.unwrap_or(RetentionStatus::Obsolete)
                    };
                    report.insert(id, status);
                }
            }
        }
        Ok(report)
    }
}

fn window_length(n: u64, unit: WindowUnit) -> Result<chrono::TimeDelta> {
    let days = match unit {
        WindowUnit::Days => Some(n),
        WindowUnit::Weeks => n.checked_mul(7),
        WindowUnit::Months => n.checked_mul(31),
    };
    days.and_then(|d| i64::try_from(d).ok())
        .and_then(chrono::TimeDelta::try_days)
        .ok_or_else(|| Error::Config(format!("recovery window of {n} is too large")))
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPolicy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            RetentionPolicy::RecoveryWindow(n, unit) => {
                let unit = match unit {
                    WindowUnit::Days => "DAYS",
                    WindowUnit::Weeks => "WEEKS",
                    WindowUnit::Months => "MONTHS",
                };
                write!(f, "RECOVERY WINDOW OF {n} {unit}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text).unwrap()
    }

    fn backup(id: &str, status: BackupStatus, end: &str) -> BackupInfo {
        BackupInfo {
            backup_id: Some(id.into()),
            status: Some(status),
            end_time: Some(ts(end)),
            ..Default::default()
        }
    }

    #[test]
    fn parses_barman_syntax_only() {
        use RetentionPolicy::*;
        assert_eq!(
            RetentionPolicy::parse("REDUNDANCY 3").unwrap(),
            Redundancy(3)
        );
        assert_eq!(
            RetentionPolicy::parse("  redundancy\t0 ").unwrap(),
            Redundancy(0)
        );
        assert_eq!(
            RetentionPolicy::parse("Recovery Window Of 2 week").unwrap(),
            RecoveryWindow(2, WindowUnit::Weeks)
        );
        assert_eq!(
            RetentionPolicy::parse("RECOVERY WINDOW OF 1 MONTHS").unwrap(),
            RecoveryWindow(1, WindowUnit::Months)
        );
        for bad in [
            "",
            "REDUNDANCY",
            "REDUNDANCY -1",
            "REDUNDANCY 1.5",
            "REDUNDANCY 2 DAYS",
            "RECOVERY WINDOW 2 DAYS",
            "RECOVERY WINDOW OF 2 YEARS",
            "RECOVERY WINDOW OF 2 DAYSS",
            "MAIN",
        ] {
            let err = RetentionPolicy::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Input, "{bad}");
            assert!(
                err.to_string()
                    .contains("Could not create retention policy")
            );
        }
        assert_eq!(
            RetentionPolicy::parse("recovery window of 7 days")
                .unwrap()
                .to_string(),
            "RECOVERY WINDOW OF 7 DAYS"
        );
    }

    #[test]
    fn redundancy_counts_kept_backups_and_skips_unfinished_ones() {
        let backups = vec![
            backup(
                "20250101T000000",
                BackupStatus::Done,
                "2025-01-01T01:00:00Z",
            ),
            backup(
                "20250102T000000",
                BackupStatus::Done,
                "2025-01-02T01:00:00Z",
            ),
            backup(
                "20250103T000000",
                BackupStatus::Failed,
                "2025-01-03T01:00:00Z",
            ),
            backup(
                "20250104T000000",
                BackupStatus::Done,
                "2025-01-04T01:00:00Z",
            ),
            backup(
                "20250105T000000",
                BackupStatus::Done,
                "2025-01-05T01:00:00Z",
            ),
            backup(
                "20250106T000000",
                BackupStatus::Started,
                "2025-01-06T01:00:00Z",
            ),
        ];
        let keeps = BTreeMap::from([
            ("20250104T000000".to_string(), "standalone".to_string()),
            ("20250101T000000".to_string(), "full".to_string()),
        ]);
        let report = RetentionPolicy::Redundancy(2)
            .report(&backups, &keeps, 0, ts("2025-02-01T00:00:00Z"))
            .unwrap();
        let got: Vec<&str> = report.values().map(|s| s.as_str()).collect();
        assert_eq!(
            got,
            [
                "KEEP:FULL",
                "OBSOLETE",
                "-",
                "KEEP:STANDALONE",
                "VALID",
                "-"
            ]
        );
        // Minimum redundancy raises the policy.
        let report = RetentionPolicy::Redundancy(1)
            .report(&backups, &BTreeMap::new(), 3, ts("2025-02-01T00:00:00Z"))
            .unwrap();
        assert_eq!(report["20250102T000000"], RetentionStatus::Valid);
        assert_eq!(report["20250101T000000"], RetentionStatus::Obsolete);
    }

    #[test]
    fn recovery_window_keeps_the_first_backup_before_the_window() {
        let backups = vec![
            backup(
                "20250101T000000",
                BackupStatus::Done,
                "2025-01-01T01:00:00Z",
            ),
            backup(
                "20250110T000000",
                BackupStatus::Done,
                "2025-01-10T01:00:00Z",
            ),
            backup(
                "20250120T000000",
                BackupStatus::Done,
                "2025-01-20T01:00:00Z",
            ),
            backup(
                "20250128T000000",
                BackupStatus::Done,
                "2025-01-28T01:00:00Z",
            ),
        ];
        let now = ts("2025-01-31T00:00:00Z");
        let keeps = BTreeMap::from([("20250101T000000".to_string(), String::new())]);
        let report = RetentionPolicy::RecoveryWindow(7, WindowUnit::Days)
            .report(&backups, &keeps, 0, now)
            .unwrap();
        let got: Vec<&str> = report.values().map(|s| s.as_str()).collect();
        // An empty keep annotation is no keep for retention.
        assert_eq!(got, ["OBSOLETE", "OBSOLETE", "VALID", "VALID"]);
        let report = RetentionPolicy::RecoveryWindow(7, WindowUnit::Days)
            .report(&backups, &BTreeMap::new(), 3, now)
            .unwrap();
        let got: Vec<&str> = report.values().map(|s| s.as_str()).collect();
        assert_eq!(got, ["OBSOLETE", "OBSOLETE*", "VALID", "VALID"]);
        // A month is 31 days.
        let report = RetentionPolicy::RecoveryWindow(1, WindowUnit::Months)
            .report(&backups, &BTreeMap::new(), 0, ts("2025-02-01T00:30:00Z"))
            .unwrap();
        assert_eq!(report["20250101T000000"], RetentionStatus::Valid);
    }
}
