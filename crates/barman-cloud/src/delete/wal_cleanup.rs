//! Which WAL files can go once a backup is deleted: Barman 3.20.1's rules, reproduced
//! exactly so that both tools leave the same archive behind.
//!
//! WAL goes only when no older DONE backup remains that could need it for point-in-time
//! recovery (older `standalone` backups, during retention runs, protect only their own
//! begin..end range), only on the timeline of the next backup, and only names that sort
//! before the next backup's first WAL (plain string comparison). History files stay.

use std::collections::BTreeSet;

use crate::catalog::{BackupInfo, BackupStatus, Keep, KeepAnnotations};
use crate::error::{Error, Result};
use crate::wal::{WalCatalog, WalKind, WalName};

/// What the deletion of one backup allows to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupScope {
    /// Inclusive (begin_wal, end_wal) ranges that older standalone backups still need.
    pub protected_ranges: Vec<(String, String)>,
    /// WAL sorting before this name may go: the next backup's first WAL (or the deleted
    /// backup's own when no backup follows it).
    pub remove_until: Option<String>,
    /// Timelines of the other backups: their WAL stays.
    pub protected_timelines: BTreeSet<i64>,
}

/// Barman's "copy done" statuses: the backups recovery can start from.
fn is_copy_done(backup: &BackupInfo) -> bool {
    matches!(
        backup.status,
        Some(BackupStatus::Done | BackupStatus::WaitingForWals)
    )
}

/// Steps 1-3 of the cleanup for `deleted` (its backup.info as stored) with the in-memory
/// `catalog` (sorted by ID, still holding `deleted`). `None` means no WAL may go.
/// `skip_if_standalone` is Barman's choice for deletions by ID: older backups that are all
/// `standalone` still stop the cleanup.
pub fn cleanup_scope(
    deleted: &BackupInfo,
    catalog: &[BackupInfo],
    keeps: &KeepAnnotations,
    skip_if_standalone: bool,
) -> Result<Option<CleanupScope>> {
    let deleted_id = deleted.backup_id.as_deref().unwrap_or_default();
    let position = catalog
        .iter()
        .position(|b| b.backup_id.as_deref() == Some(deleted_id))
        .ok_or_else(|| Error::BadCatalog(format!("Could not find backup_id {deleted_id}")))?;

    let mut protected_ranges = Vec::new();
    for previous in catalog[..position].iter().rev().filter(|b| is_copy_done(b)) {
        let id = previous.backup_id.as_deref().unwrap_or_default();
        if keeps.keep(id) != Some(Keep::Standalone) || skip_if_standalone {
            return Ok(None);
        }
        protected_ranges.push((
            previous.begin_wal.clone().unwrap_or_default(),
            previous.end_wal.clone().unwrap_or_default(),
        ));
    }

    let remove_until = catalog[position + 1..]
        .iter()
        .find(|b| is_copy_done(b))
        .unwrap_or(deleted);
    // Barman means to leave the deleted backup out of this set but compares it with a
    // different copy of itself, so its timeline is protected too (unless it is the next
    // backup's).
    let mut protected_timelines: BTreeSet<i64> =
        catalog.iter().filter_map(|b| b.timeline).collect();
    if let Some(timeline) = remove_until.timeline {
        protected_timelines.remove(&timeline);
    }
    Ok(Some(CleanupScope {
        protected_ranges,
        remove_until: remove_until.begin_wal.clone(),
        protected_timelines,
    }))
}

/// Timeline, log and segment numbers of a WAL name (Barman's `decode_segment_name`).
fn decode_segment(name: &str) -> Result<(i64, i64)> {
    let parsed = WalName::try_parse(name)
        .filter(|w| w.kind() != WalKind::History)
        .ok_or_else(|| Error::BadCatalog(format!("{name} is not a WAL segment name")))?;
    let text = parsed.as_str();
    let number = |range: std::ops::Range<usize>| i64::from_str_radix(&text[range], 16).unwrap_or(0);
    Ok((number(0..8), number(8..16)))
}

fn remove_until(scope: &CleanupScope) -> Result<&str> {
    scope.remove_until.as_deref().ok_or_else(|| {
        Error::BadCatalog("cannot clean up WAL: the backup that bounds it has no begin_wal".into())
    })
}

/// Step 4 (S3 only in Barman): the `wals/<TTTTTTTTLLLLLLLL>` directories whose every WAL
/// predates the next backup, so that they can go in one listing and bulk deletion.
pub fn deletable_directories(scope: &CleanupScope, directories: &[String]) -> Result<Vec<String>> {
    let mut deletable = Vec::new();
    for directory in directories {
        if directory.len() != 16 || !directory.bytes().all(|b| b.is_ascii_hexdigit()) {
            tracing::warn!("Ignoring malformed WAL object prefix: {directory}");
            continue;
        }
        let timeline = i64::from_str_radix(&directory[..8], 16).unwrap_or(0);
        let log = i64::from_str_radix(&directory[8..], 16).unwrap_or(0);
        if scope.protected_timelines.contains(&timeline) {
            continue;
        }
        let mut in_range = false;
        for (begin, end) in &scope.protected_ranges {
            let (begin_tli, begin_log) = decode_segment(begin)?;
            let (end_tli, end_log) = decode_segment(end)?;
            if timeline >= begin_tli && log >= begin_log && timeline <= end_tli && log <= end_log {
                in_range = true;
                break;
            }
        }
        if in_range {
            continue;
        }
        let (until_tli, until_log) = decode_segment(remove_until(scope)?)?;
        if timeline == until_tli && log < until_log {
            deletable.push(directory.clone());
        }
    }
    Ok(deletable)
}

/// Step 5: the WAL files (name, key) to delete one by one, sorted by key. `deleted_dirs`
/// are the key prefixes (ending in `/`) of directories already removed in step 4.
pub fn wals_to_delete(
    scope: &CleanupScope,
    wals: &WalCatalog,
    deleted_dirs: &[String],
) -> Result<Vec<(String, String)>> {
    let mut selected = Vec::new();
    for (name, key) in wals.iter() {
        if deleted_dirs.iter().any(|dir| key.starts_with(dir.as_str())) {
            continue;
        }
        let Some(wal) = WalName::try_parse(name) else {
            continue;
        };
        if wal.kind() == WalKind::History {
            continue;
        }
        if scope
            .protected_timelines
            .contains(&i64::from(wal.timeline()))
        {
            continue;
        }
        let range_name = if wal.kind() == WalKind::BackupLabel {
            &name[..24]
        } else {
            name
        };
        if scope
            .protected_ranges
            .iter()
            .any(|(begin, end)| begin.as_str() <= range_name && range_name <= end.as_str())
        {
            continue;
        }
        if name < remove_until(scope)? {
            selected.push((name.to_string(), key.to_string()));
        }
    }
    selected.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ObjectInfo;

    fn backup(id: &str, status: BackupStatus, tli: i64, begin: &str, end: &str) -> BackupInfo {
        BackupInfo {
            backup_id: Some(id.into()),
            status: Some(status),
            timeline: Some(tli),
            begin_wal: Some(begin.into()),
            end_wal: Some(end.into()),
            ..Default::default()
        }
    }

    fn wal(tli: u32, seg: u64) -> String {
        format!("{tli:08X}{:08X}{:08X}", seg >> 8, seg & 0xff)
    }

    fn catalog_of(names: &[String]) -> WalCatalog {
        let objects: Vec<ObjectInfo> = names
            .iter()
            .map(|n| ObjectInfo {
                key: match n.len() {
                    16 => format!("srv/wals/{n}"),
                    _ => format!("srv/wals/{}/{n}", &n[..16]),
                },
                size: 1,
            })
            .collect();
        WalCatalog::from_listing(&objects)
    }

    fn chain() -> Vec<BackupInfo> {
        vec![
            backup(
                "20250101T000000",
                BackupStatus::Done,
                1,
                &wal(1, 2),
                &wal(1, 3),
            ),
            backup(
                "20250102T000000",
                BackupStatus::Failed,
                1,
                &wal(1, 5),
                &wal(1, 5),
            ),
            backup(
                "20250103T000000",
                BackupStatus::Done,
                1,
                &wal(1, 8),
                &wal(1, 9),
            ),
            backup(
                "20250104T000000",
                BackupStatus::Done,
                1,
                &wal(1, 300),
                &wal(1, 301),
            ),
        ]
    }

    #[test]
    fn no_cleanup_while_an_older_backup_needs_the_wal() {
        let catalog = chain();
        let keeps = KeepAnnotations::default();
        assert_eq!(
            cleanup_scope(&catalog[2], &catalog, &keeps, true).unwrap(),
            None
        );
        let scope = cleanup_scope(&catalog[0], &catalog, &keeps, true)
            .unwrap()
            .unwrap();
        // The next copy-done backup bounds the cleanup; FAILED ones are skipped.
        assert_eq!(scope.remove_until.as_deref(), Some(wal(1, 8).as_str()));
        assert!(scope.protected_timelines.is_empty());
    }

    #[test]
    fn standalone_backups_protect_their_range_in_retention_runs_only() {
        let catalog = chain();
        let keeps: KeepAnnotations = [("20250101T000000".to_string(), "standalone".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            cleanup_scope(&catalog[2], &catalog, &keeps, true).unwrap(),
            None
        );
        let scope = cleanup_scope(&catalog[2], &catalog, &keeps, false)
            .unwrap()
            .unwrap();
        assert_eq!(scope.protected_ranges, vec![(wal(1, 2), wal(1, 3))]);
        assert_eq!(scope.remove_until.as_deref(), Some(wal(1, 300).as_str()));

        let mut names: Vec<String> = (1..=10).map(|s| wal(1, s)).collect();
        names.push(format!("{}.00000028.backup", wal(1, 3)));
        names.push(format!("{}.00000028.backup", wal(1, 4)));
        names.push(format!("{}.partial", wal(1, 6)));
        names.push("00000002.history".into());
        names.push(wal(2, 4));
        names.push(wal(1, 300));
        let wals = catalog_of(&names);
        let doomed: Vec<String> = wals_to_delete(&scope, &wals, &[])
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut expected: Vec<String> = [1, 4, 5, 6, 7, 8, 9, 10].map(|s| wal(1, s)).to_vec();
        expected.push(format!("{}.00000028.backup", wal(1, 4)));
        expected.push(format!("{}.partial", wal(1, 6)));
        // Timeline 2 sorts after the bound: string comparison keeps it.
        expected.sort_by_key(|n| format!("srv/wals/{}/{n}", &n[..16]));
        assert_eq!(doomed, expected);

        // Directory shortcut: log 0 holds the protected range, log 1 can go whole.
        let dirs = vec![
            "0000000100000000".to_string(),
            "0000000100000001".to_string(),
            "0000000200000000".to_string(),
            "notahexdirectory".to_string(),
        ];
        assert_eq!(
            deletable_directories(&scope, &dirs).unwrap(),
            Vec::<String>::new()
        );
        let mut scope_without_range = scope.clone();
        scope_without_range.protected_ranges.clear();
        assert_eq!(
            deletable_directories(&scope_without_range, &dirs).unwrap(),
            vec!["0000000100000000".to_string()]
        );
    }

    #[test]
    fn other_timelines_and_the_deleted_backups_own_are_protected() {
        let catalog = vec![
            backup(
                "20250101T000000",
                BackupStatus::Done,
                1,
                &wal(1, 2),
                &wal(1, 3),
            ),
            backup(
                "20250102T000000",
                BackupStatus::Done,
                2,
                &wal(2, 8),
                &wal(2, 9),
            ),
        ];
        let scope = cleanup_scope(&catalog[0], &catalog, &KeepAnnotations::default(), true)
            .unwrap()
            .unwrap();
        assert_eq!(scope.protected_timelines, BTreeSet::from([1]));
        let wals = catalog_of(&[wal(1, 1), wal(2, 1), wal(2, 9)]);
        let doomed: Vec<String> = wals_to_delete(&scope, &wals, &[])
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(doomed, vec![wal(2, 1)]);
    }

    #[test]
    fn a_bound_without_begin_wal_is_an_error_only_when_compared() {
        let mut failed = backup("20250101T000000", BackupStatus::Failed, 1, "", "");
        failed.begin_wal = None;
        failed.timeline = None;
        let catalog = vec![failed.clone()];
        let scope = cleanup_scope(&failed, &catalog, &KeepAnnotations::default(), true)
            .unwrap()
            .unwrap();
        assert!(
            wals_to_delete(&scope, &WalCatalog::default(), &[])
                .unwrap()
                .is_empty()
        );
        assert!(wals_to_delete(&scope, &catalog_of(&[wal(1, 1)]), &[]).is_err());
    }
}
