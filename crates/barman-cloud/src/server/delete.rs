//! Deleting a backup of a `barman_home` server (`barman delete`) and enforcing the
//! server's retention policy (`barman cron`), with Barman 3.20.1's rules, order and
//! messages:
//!
//! 1. a `meta/<id>-delete_this` annotation says a deletion started (a `cron` finishes
//!    what an interrupted deletion left);
//! 2. the cloud snapshots go first, each checked to be named for the backup;
//! 3. then `base/<id>/data`, then the WAL nobody needs any more (xlog.db rewritten
//!    first, then the files), then the annotation, `base/<id>/` and last the backup.info.
//!
//! The hook scripts run as Barman runs them: `pre_delete_script` then
//! `pre_delete_retry_script` before step 2 (a stop request, exit 63, ends the deletion
//! there with an error), `wal_delete_script`/`wal_delete_retry_script` pre and post around
//! each WAL file removed in step 3 (a stop request before one ends the deletion with the
//! index put back as it was), and `post_delete_retry_script` then `post_delete_script`
//! once the backup is gone ([`crate::server::hooks`]).
//!
//! A run stopped anywhere can be run again: snapshots already gone are skipped, and the
//! backup.info stays until everything else is gone.
//!
//! [`refusal`] says why `barman delete` would not delete a backup (a keep annotation,
//! `minimum_redundancy`), [`delete_backup`] runs one deletion and [`retention_plan`]
//! says which backups the retention policy makes obsolete. The callers take the locks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::catalog::{BackupInfo, BackupStatus, Keep, KeepAnnotations, Timestamp};
use crate::delete::snapshots::check_backup;
use crate::error::{Error, Result};
use crate::retention::{RetentionPolicy, RetentionStatus};
use crate::server::backup_id::{COPY_DONE, is_full};
use crate::server::config::ServerConfig;
use crate::server::home::{ServerHome, load_backups, write_file_durably};
use crate::server::hooks::{Hooks, WalDeleteHooks, backup_env, os_error_text};
use crate::server::xlogdb::XlogDb;
use crate::snapshot::ProviderSource;
use crate::wal::{WalKind, WalName};

/// How a message reaches the user (Barman's `output` levels); `Log` is only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Log,
    /// A record of the hook scripts' logger at this Python level.
    Hook(i64),
    Info,
    Warning,
    Error,
}

/// Where [`delete_backup`] and the retention enforcement say what they do.
pub type Say<'a> = dyn FnMut(Level, String) + 'a;

/// Barman's annotation marking a deletion under way.
pub const DELETE_ANNOTATION: &str = "delete_this";

/// `meta/<id>-delete_this`.
pub fn delete_annotation(home: &ServerHome, backup_id: &str) -> std::path::PathBuf {
    home.meta.join(format!("{backup_id}-{DELETE_ANNOTATION}"))
}

/// `.<server>-<id>-sync-backup.lock`, removed when its backup goes.
pub fn sync_lock(home: &ServerHome, backup_id: &str) -> std::path::PathBuf {
    home.lock_dir()
        .join(format!(".{}-{backup_id}-sync-backup.lock", home.server))
}

/// What a deletion needs besides the backup.
pub struct DeleteContext<'a> {
    pub home: &'a ServerHome,
    /// The server, for its hook scripts.
    pub server: &'a ServerConfig,
    /// The configuration file (`BARMAN_CONFIGURATION` of hooks).
    pub config_file: &'a Path,
    pub providers: &'a dyn ProviderSource,
    /// `concurrent_backup` in `backup_options` (snapshot servers: always): when the last
    /// backup goes, the WAL from its start on stays for the next backup.
    pub concurrent_backup: bool,
}

/// The keep annotations of the server's backups (`meta/` and the legacy location).
pub async fn keep_annotations(home: &ServerHome) -> Result<KeepAnnotations> {
    use crate::catalog_store::CatalogStore;
    crate::server::home::HomeCatalog::new(home)
        .keep_annotations()
        .await
}

/// Why `barman delete` does not delete a backup (Barman's warning text).
pub fn refusal(
    backup: &BackupInfo,
    backups: &[BackupInfo],
    keeps: &KeepAnnotations,
    minimum_redundancy: u64,
    server: &str,
) -> Option<String> {
    let id = backup.backup_id.as_deref().unwrap_or_default();
    if keeps.keep(id).is_some() {
        return Some(format!(
            "Skipping delete of backup {id} for server {server} as it has a current keep \
             request. If you really want to delete this backup please remove the keep and \
             try again."
        ));
    }
    let done_full = backups
        .iter()
        .filter(|b| b.status == Some(BackupStatus::Done) && is_full(b))
        .count() as u64;
    if backup.status == Some(BackupStatus::Done)
        && is_full(backup)
        && minimum_redundancy >= done_full
    {
        return Some(format!(
            "Skipping delete of backup {id} for server {server} due to minimum redundancy \
             requirements (minimum redundancy = {minimum_redundancy}, current redundancy = \
             {done_full})"
        ));
    }
    None
}

fn has_status(backup: &BackupInfo, statuses: &[BackupStatus]) -> bool {
    backup.status.as_ref().is_some_and(|s| statuses.contains(s))
}

/// Barman's `STATUS_ARCHIVING`: backups whose timeline protects its WAL.
const ARCHIVING: [BackupStatus; 4] = [
    BackupStatus::Started,
    BackupStatus::WaitingForWals,
    BackupStatus::Done,
    BackupStatus::Syncing,
];

/// Whether deleting `backup` frees WAL, and the WAL ranges (inclusive) kept for older
/// standalone-kept backups (Barman's `should_remove_wals`). `backups` sorted by ID.
fn should_remove_wals(
    backup: &BackupInfo,
    backups: &[BackupInfo],
    keeps: &KeepAnnotations,
    skip_wal_cleanup_if_standalone: bool,
) -> (bool, Vec<(String, String)>) {
    let id = backup.backup_id.as_deref().unwrap_or_default();
    let mut ranges = Vec::new();
    let older = backups
        .iter()
        .rev()
        .filter(|b| b.backup_id.as_deref().is_some_and(|b| b < id))
        .filter(|b| has_status(b, &COPY_DONE));
    for previous in older {
        let previous_id = previous.backup_id.as_deref().unwrap_or_default();
        if keeps.keep(previous_id) != Some(Keep::Standalone) || skip_wal_cleanup_if_standalone {
            return (false, Vec::new());
        }
        ranges.push((
            previous.begin_wal.clone().unwrap_or_default(),
            previous.end_wal.clone().unwrap_or_default(),
        ));
    }
    (true, ranges)
}

/// The first backup after `backup` whose copy is done.
fn next_backup<'a>(backup: &BackupInfo, backups: &'a [BackupInfo]) -> Option<&'a BackupInfo> {
    let id = backup.backup_id.as_deref().unwrap_or_default();
    backups
        .iter()
        .filter(|b| b.backup_id.as_deref().is_some_and(|b| b > id))
        .find(|b| has_status(b, &COPY_DONE))
}

/// Which xlog.db entries go when WAL before `until` is removed (Barman's
/// `remove_wal_before_backup`): history files, timelines of other backups, protected
/// ranges and everything from `until`'s begin WAL on stay. `until` `None`: all else goes.
fn wal_is_removed(
    name: &WalName,
    until: Option<&BackupInfo>,
    timelines_to_protect: &BTreeSet<u32>,
    ranges: &[(String, String)],
) -> bool {
    if name.kind() == WalKind::History {
        return false;
    }
    if timelines_to_protect.contains(&name.timeline()) {
        return false;
    }
    let text = name.as_str();
    let segment = if name.kind() == WalKind::BackupLabel {
        &text[..24]
    } else {
        text
    };
    if ranges
        .iter()
        .any(|(begin, end)| segment >= begin.as_str() && segment <= end.as_str())
    {
        return false;
    }
    if let Some(begin) = until.and_then(|b| b.begin_wal.as_deref())
        && text >= begin
    {
        return false;
    }
    true
}

fn remove_dir_all_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_file_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn now() -> Timestamp {
    chrono::Local::now().fixed_offset()
}

/// Deletes one backup (Barman's `BackupManager.delete_backup`), the caller holding
/// `.<server>-<id>.lock`. `Ok(false)`: a file could not be removed (said as Barman says
/// it); `Err`: a snapshot could not be deleted (locked, not the backup's, provider error)
/// and the backup.info, its data and the WAL stay.
///
/// The delete hooks run before (`pre_delete_script`, `pre_delete_retry_script`: a stop
/// request is an `Err` before anything is deleted) and after a complete deletion; the
/// WAL deletion hooks around each WAL file removed. Their log records go to `say` as
/// [`Level::Hook`].
pub async fn delete_backup(
    ctx: &DeleteContext<'_>,
    backup: &BackupInfo,
    skip_wal_cleanup_if_standalone: bool,
    say: &mut Say<'_>,
) -> Result<bool> {
    let records = std::cell::RefCell::new(Vec::new());
    let log = |level: i64, text: &str| records.borrow_mut().push((level, text.to_string()));
    let hooks = Hooks {
        server: ctx.server,
        config_file: ctx.config_file,
        log: &log,
    };
    let mut say_all = |level: Level, text: String| {
        for (level, text) in records.borrow_mut().drain(..) {
            say(Level::Hook(level), text);
        }
        say(level, text);
    };
    let result = delete_with_hooks(
        ctx,
        backup,
        skip_wal_cleanup_if_standalone,
        &hooks,
        &mut say_all,
    )
    .await;
    for (level, text) in records.borrow_mut().drain(..) {
        say(Level::Hook(level), text);
    }
    result
}

async fn delete_with_hooks(
    ctx: &DeleteContext<'_>,
    backup: &BackupInfo,
    skip_wal_cleanup_if_standalone: bool,
    hooks: &Hooks<'_>,
    say: &mut Say<'_>,
) -> Result<bool> {
    let home = ctx.home;
    let id = backup
        .backup_id
        .clone()
        .ok_or_else(|| Error::BadCatalog("backup without an ID".into()))?;
    write_file_durably(&delete_annotation(home, &id), b"delete")?;
    let started = now();
    hooks.pre("delete", &backup_env(home, backup))?;
    say(
        Level::Info,
        format!("Deleting backup {id} for server {}", home.server),
    );
    let backups = load_backups(home);
    let keeps = keep_annotations(home).await?;
    // Barman looks among the copied backups and the deleted one, whatever its status.
    let available: Vec<BackupInfo> = backups
        .iter()
        .filter(|b| has_status(b, &COPY_DONE) || b.backup_id.as_deref() == Some(id.as_str()))
        .cloned()
        .collect();
    let (remove_wals, ranges) =
        should_remove_wals(backup, &available, &keeps, skip_wal_cleanup_if_standalone);
    let next = next_backup(backup, &available).cloned();

    // The snapshots, each checked with the provider first.
    if let Some(info) = &backup.snapshots_info {
        let listed: Vec<String> = info
            .snapshots
            .iter()
            .filter_map(|s| s.identifier().map(str::to_string))
            .collect();
        say(
            Level::Log,
            format!("Deleting the following snapshots: {}", listed.join(", ")),
        );
        let checked = check_backup(&id, info, ctx.providers).await?;
        for gone in &checked.gone {
            say(
                Level::Log,
                format!("Snapshot {gone} could not be found: nothing to delete"),
            );
        }
        if !checked.to_delete.is_empty() {
            let provider = ctx.providers.for_backup(info).await?;
            for snapshot in &checked.to_delete {
                let snapshot_id = snapshot
                    .identifier()
                    .map(str::to_string)
                    .unwrap_or_default();
                say(
                    Level::Log,
                    format!("Deleting snapshot '{snapshot_id}' for backup {id}"),
                );
                provider.delete_snapshot(snapshot, info).await?;
                say(Level::Log, format!("Snapshot {snapshot_id} deleted"));
            }
        }
    }
    let data = home.data_dir(&id);
    if let Err(e) = remove_dir_all_if_present(&data) {
        say(
            Level::Error,
            format!(
                "Failure deleting backup {id} for server {}.\n{}",
                home.server,
                os_error_text(&e, &data)
            ),
        );
        return Ok(false);
    }

    if remove_wals {
        let until = match &next {
            Some(next) => Some(next),
            None if ctx.concurrent_backup => Some(backup),
            None => None,
        };
        let mut timelines = BTreeSet::new();
        if let Some(until) = until {
            for other in backups.iter().filter(|b| has_status(b, &ARCHIVING)) {
                if other.backup_id.as_deref() == Some(id.as_str()) {
                    continue;
                }
                if let Some(tli) = other.timeline {
                    timelines.insert(tli as u32);
                }
            }
            if let Some(tli) = until.timeline {
                timelines.remove(&(tli as u32));
            }
        }
        say(Level::Info, "Delete associated WAL segments:".into());
        let db = XlogDb::new(&home.wal);
        let mut guard = db.lock()?;
        let mut invalid = Vec::new();
        // What each hash directory held before the removal, to say which listed files
        // were already missing as Barman does.
        let mut listings: BTreeMap<std::path::PathBuf, BTreeSet<String>> = BTreeMap::new();
        let mut selected: Vec<(std::path::PathBuf, String)> = Vec::new();
        let removed = guard.remove_where_with(
            &home.wal,
            |entry| match WalName::try_parse(&entry.name) {
                Some(name) => {
                    let removed = wal_is_removed(&name, until, &timelines, &ranges);
                    if removed {
                        let stored = home.wal.stored_path(&name);
                        let dir = stored.parent().map(Path::to_path_buf).unwrap_or_default();
                        listings.entry(dir.clone()).or_insert_with(|| {
                            std::fs::read_dir(&dir)
                                .map(|entries| {
                                    entries
                                        .flatten()
                                        .map(|e| e.file_name().to_string_lossy().into_owned())
                                        .collect()
                                })
                                .unwrap_or_default()
                        });
                        selected.push((dir, entry.name.clone()));
                    }
                    removed
                }
                None => {
                    invalid.push(entry.name.clone());
                    false
                }
            },
            &mut WalDeleteHooks { hooks },
        )?;
        drop(guard);
        for (dir, listing) in &listings {
            let names: BTreeSet<&str> = selected
                .iter()
                .filter(|(d, _)| d == dir)
                .map(|(_, n)| n.as_str())
                .collect();
            // Barman removes a directory whole when everything in it goes (no warning).
            let whole = names.len() >= 256 || listing.iter().all(|n| names.contains(n.as_str()));
            if whole {
                continue;
            }
            for name in names.iter().filter(|n| !listing.contains(**n)) {
                let path = dir.join(name);
                say(
                    Level::Warning,
                    format!(
                        "Ignoring deletion of WAL file {name} for server {}: [Errno 2] No such \
                         file or directory: '{}'",
                        home.server,
                        path.display()
                    ),
                );
            }
        }
        for name in invalid {
            say(
                Level::Error,
                format!(
                    "invalid WAL segment name {}\nHINT: Please run \"barman rebuild-xlogdb {}\" \
                     to solve this issue",
                    crate::catalog::pyliteral::repr_str(&name),
                    home.server
                ),
            );
        }
        for entry in removed {
            say(Level::Info, format!("\t{}", entry.name));
        }
    }

    let annotation = delete_annotation(home, &id);
    remove_file_if_present(&annotation).map_err(|e| Error::io(&annotation, e))?;
    let dir = home.backup_dir(&id);
    if let Err(e) = remove_dir_all_if_present(&dir) {
        say(
            Level::Error,
            format!(
                "Failure deleting backup {id} for server {}.\n{}\nPlease manually remove the \
                 '{}' directory",
                home.server,
                os_error_text(&e, &dir),
                dir.display()
            ),
        );
        return Ok(false);
    }
    let info_file = if home.backup_info(&id).exists() {
        home.backup_info(&id)
    } else {
        home.legacy_backup_info(&id)
    };
    if let Err(e) = remove_file_if_present(&info_file) {
        say(
            Level::Error,
            format!(
                "Failure deleting file {} for server {}.\n{}\nPlease manually remove the file",
                info_file.display(),
                home.server,
                os_error_text(&e, &info_file)
            ),
        );
        return Ok(false);
    }
    for dir in [&home.meta, &home.base] {
        if dir.is_dir() {
            crate::durable::sync_dir(dir)?;
        }
    }
    let elapsed = (now() - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let human =
        crate::catalog::render::human_readable_timedelta(&crate::catalog::PyValue::Float(elapsed))
            .unwrap_or_default();
    say(
        Level::Info,
        format!(
            "Deleted backup {id} (start time: {}, elapsed time: {human})",
            crate::catalog::timestamp::ctime(&started)
        ),
    );
    let _ = remove_file_if_present(&sync_lock(home, &id));
    hooks.post("delete", "post-delete", &backup_env(home, backup));
    Ok(true)
}

/// The server's `retention_policy` if it is enforced automatically (`None` for no
/// policy or one that does not parse: Barman then enforces nothing).
pub fn enforced_policy(text: Option<&str>) -> Option<RetentionPolicy> {
    RetentionPolicy::parse(text?).ok()
}

/// What `cron` does about one backup of the retention report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionAction {
    /// Obsolete (or marked by an interrupted deletion): delete it.
    Delete(String),
    /// Obsolete but its directory is gone: only its backup.info is left.
    SkipOrphan(String),
}

/// Whether only the backup.info of `backup` is left (Barman's `is_orphan`).
pub fn is_orphan(home: &ServerHome, backup: &BackupInfo) -> bool {
    if backup.status == Some(BackupStatus::Empty) {
        return false;
    }
    let Some(id) = backup.backup_id.as_deref() else {
        return false;
    };
    let dir = home.backup_dir(id);
    if home.backup_info(id).exists() && !dir.exists() {
        return true;
    }
    if dir.exists() && home.legacy_backup_info(id).exists() {
        return std::fs::read_dir(&dir)
            .map(|d| d.count() == 1)
            .unwrap_or(false);
    }
    false
}

/// Barman's `cron_retention_policy` up to the deletions: the report of `policy` on the
/// server's backups, backups with a delete annotation made obsolete (the annotation is
/// removed), orphans warned about; then the obsolete backups, oldest first.
pub async fn retention_plan(
    home: &ServerHome,
    policy: RetentionPolicy,
    minimum_redundancy: u64,
    say: &mut Say<'_>,
) -> Result<Vec<(RetentionAction, BackupInfo)>> {
    let backups = load_backups(home);
    let keeps = keep_annotations(home).await?;
    let not_empty: Vec<BackupInfo> = backups
        .iter()
        .filter(|b| b.status.is_some() && b.status != Some(BackupStatus::Empty))
        .cloned()
        .collect();
    let mut report: BTreeMap<String, RetentionStatus> =
        policy.report(&not_empty, &keeps, minimum_redundancy, now())?;
    for backup in &backups {
        let Some(id) = backup.backup_id.as_deref() else {
            continue;
        };
        let annotation = delete_annotation(home, id);
        if annotation.exists() {
            report.insert(id.to_string(), RetentionStatus::Obsolete);
            remove_file_if_present(&annotation).map_err(|e| Error::io(&annotation, e))?;
        } else if is_orphan(home, backup) {
            let info_file = if home.backup_info(id).exists() {
                home.backup_info(id)
            } else {
                home.legacy_backup_info(id)
            };
            say(
                Level::Warning,
                format!(
                    "Backup '{id}' is an orphan backup, this is possibly the result of an \
                     incomplete delete operation. Please manually delete the following \
                     files or directories if present:\n* {} \n* {} \n",
                    home.backup_dir(id).display(),
                    info_file.display()
                ),
            );
        }
    }
    let mut plan = Vec::new();
    for (id, status) in report {
        if status != RetentionStatus::Obsolete {
            continue;
        }
        let Some(backup) = backups
            .iter()
            .find(|b| b.backup_id.as_deref() == Some(id.as_str()))
        else {
            continue;
        };
        let action = if is_orphan(home, backup) {
            RetentionAction::SkipOrphan(id)
        } else {
            RetentionAction::Delete(id)
        };
        plan.push((action, backup.clone()));
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, status: &str, begin: &str, end: &str) -> BackupInfo {
        BackupInfo::parse(&format!(
            "backup_id={id}\nstatus={status}\nbegin_wal={begin}\nend_wal={end}\ntimeline=1\n\
             mode=snapshot-concurrent\nend_time=2026-01-01 00:00:00+00:00\n"
        ))
        .unwrap()
    }

    #[test]
    fn wal_removal_keeps_history_ranges_and_later_wal() {
        let next = backup(
            "20260102T000000",
            "DONE",
            "000000010000000000000010",
            "000000010000000000000011",
        );
        let ranges = vec![(
            "000000010000000000000003".to_string(),
            "000000010000000000000004".to_string(),
        )];
        let none = BTreeSet::new();
        let removed =
            |n: &str| wal_is_removed(&WalName::try_parse(n).unwrap(), Some(&next), &none, &ranges);
        assert!(removed("000000010000000000000002"));
        assert!(!removed("000000010000000000000003"));
        assert!(!removed("000000010000000000000004.00000028.backup"));
        assert!(removed("000000010000000000000005"));
        assert!(!removed("00000002.history"));
        assert!(!removed("000000010000000000000010"));
        assert!(!removed("000000010000000000000011"));
        let protected: BTreeSet<u32> = [2].into();
        assert!(!wal_is_removed(
            &WalName::try_parse("000000020000000000000002").unwrap(),
            Some(&next),
            &protected,
            &[]
        ));
        assert!(wal_is_removed(
            &WalName::try_parse("000000010000000000000099").unwrap(),
            None,
            &none,
            &[]
        ));
    }

    #[test]
    fn refusals_follow_barman() {
        let a = backup("20260101T000000", "DONE", "", "");
        let b = backup("20260102T000000", "DONE", "", "");
        let failed = backup("20260103T000000", "FAILED", "", "");
        let all = vec![a.clone(), b.clone(), failed.clone()];
        let mut keeps = KeepAnnotations::default();
        assert_eq!(refusal(&a, &all, &keeps, 1, "s"), None);
        assert_eq!(
            refusal(&a, &all, &keeps, 2, "s").unwrap(),
            "Skipping delete of backup 20260101T000000 for server s due to minimum \
             redundancy requirements (minimum redundancy = 2, current redundancy = 2)"
        );
        assert_eq!(refusal(&failed, &all, &keeps, 5, "s"), None);
        keeps.insert("20260101T000000", "standalone");
        assert!(
            refusal(&a, &all, &keeps, 0, "s")
                .unwrap()
                .contains("as it has a current keep request")
        );
    }

    #[test]
    fn standalone_backups_before_protect_their_range_only_for_retention() {
        let a = backup(
            "20260101T000000",
            "DONE",
            "000000010000000000000002",
            "000000010000000000000003",
        );
        let b = backup(
            "20260102T000000",
            "DONE",
            "000000010000000000000005",
            "000000010000000000000006",
        );
        let all = vec![a.clone(), b.clone()];
        let mut keeps = KeepAnnotations::default();
        assert_eq!(should_remove_wals(&a, &all, &keeps, true), (true, vec![]));
        assert_eq!(should_remove_wals(&b, &all, &keeps, false), (false, vec![]));
        keeps.insert("20260101T000000", "standalone");
        assert_eq!(should_remove_wals(&b, &all, &keeps, true), (false, vec![]));
        assert_eq!(
            should_remove_wals(&b, &all, &keeps, false),
            (
                true,
                vec![(
                    "000000010000000000000002".to_string(),
                    "000000010000000000000003".to_string()
                )]
            )
        );
        assert_eq!(
            next_backup(&a, &all).and_then(|b| b.backup_id.clone()),
            b.backup_id
        );
    }
}
