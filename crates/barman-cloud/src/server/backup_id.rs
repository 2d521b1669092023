//! What the server's commands accept where a backup is expected (`show-backup`, `delete`,
//! `keep`, `recover`): a backup ID, a shortcut or a backup name, resolved as Barman 3.20.1
//! resolves them (`utils.get_backup_id_using_shortcut`, then the name, then the lookup).
//! The server's rules differ from barman-cloud's ([`crate::backup_catalog`]): its
//! shortcuts consider only backups whose copy is done (WAITING_FOR_WALS, DONE), and it
//! has `latest-full`.

use crate::catalog::{BackupInfo, BackupStatus};
use crate::error::{Error, Result};
use crate::layout::is_backup_id;

/// Barman's `STATUS_COPY_DONE`, the default filter of shortcuts and names.
pub const COPY_DONE: [BackupStatus; 2] = [BackupStatus::WaitingForWals, BackupStatus::Done];

fn copy_done(info: &BackupInfo) -> bool {
    info.status.as_ref().is_some_and(|s| COPY_DONE.contains(s))
}

/// Not incremental: snapshot, rsync and full `postgres` backups (Barman's
/// `NOT_INCREMENTAL` backup types, what `delete`'s minimum redundancy counts).
pub fn is_full(info: &BackupInfo) -> bool {
    let mode = info.mode.as_deref().unwrap_or("");
    mode.starts_with("snapshot") || mode.starts_with("rsync") || info.parent_backup_id.is_none()
}

/// Barman's `LocalBackupInfo.is_full`, what `latest-full` looks for: a backup type other
/// than `snapshot` and `incremental` (so a snapshot backup is never "latest-full").
pub fn is_full_for_shortcut(info: &BackupInfo) -> bool {
    !info.mode.as_deref().unwrap_or("").starts_with("snapshot") && is_full(info)
}

fn id_of(info: &BackupInfo) -> Option<String> {
    info.backup_id.clone()
}

/// The backup ID a shortcut names, `None` when it names none (Barman's
/// `get_backup_id_using_shortcut`). `backups` sorted by backup ID. Barman tests
/// `last-failed` with Python's `in` on a string, so any substring of `last-failed` that
/// is no earlier shortcut (`failed`, `-`, the empty string...) also means the last FAILED
/// backup: kept, since scripts may rely on what Barman accepts.
pub fn shortcut(backups: &[BackupInfo], text: &str) -> Option<String> {
    match text {
        "latest" | "last" => backups.iter().rev().find(|b| copy_done(b)).and_then(id_of),
        "oldest" | "first" => backups.iter().find(|b| copy_done(b)).and_then(id_of),
        _ if "last-failed".contains(text) => backups
            .iter()
            .rev()
            .find(|b| b.status == Some(BackupStatus::Failed))
            .and_then(id_of),
        "latest-full" | "last-full" => backups
            .iter()
            .rev()
            .find(|b| copy_done(b) && is_full_for_shortcut(b))
            .and_then(id_of),
        _ if is_backup_id(text) => Some(text.to_string()),
        _ => None,
    }
}

/// Resolves `text` to one of `backups` (sorted by backup ID): a shortcut or ID first, then
/// a backup name among the backups whose copy is done. Errors are Barman's messages.
pub fn resolve<'a>(backups: &'a [BackupInfo], text: &str, server: &str) -> Result<&'a BackupInfo> {
    let id = match shortcut(backups, text) {
        Some(id) => Some(id),
        None => {
            let named: Vec<&BackupInfo> = backups
                .iter()
                .filter(|b| copy_done(b) && b.backup_name.as_deref() == Some(text))
                .collect();
            if named.len() > 1 {
                let ids: Vec<String> = named.iter().filter_map(|b| id_of(b)).collect();
                return Err(Error::UnknownBackup(format!(
                    "Multiple backups found matching name '{text}' (try using backup ID \
                     instead): {}",
                    ids.join(" ")
                )));
            }
            named.first().and_then(|b| id_of(b))
        }
    };
    id.and_then(|id| backups.iter().find(|b| b.backup_id.as_deref() == Some(&id)))
        .ok_or_else(|| {
            Error::UnknownBackup(format!("Unknown backup '{text}' for server '{server}'"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, status: &str, name: Option<&str>) -> BackupInfo {
        let mut text = format!("backup_id={id}\nstatus={status}\nmode=snapshot-concurrent\n");
        if let Some(name) = name {
            text.push_str(&format!("backup_name={name}\n"));
        }
        BackupInfo::load(id, text.as_bytes()).unwrap()
    }

    #[test]
    fn shortcuts_names_and_ids_as_barman() {
        let backups = vec![
            backup("20260101T000000", "FAILED", None),
            backup("20260102T000000", "DONE", Some("weekly")),
            backup("20260103T000000", "WAITING_FOR_WALS", Some("twice")),
            backup("20260104T000000", "DONE", Some("twice")),
            backup("20260105T000000", "FAILED", None),
            backup("20260106T000000", "STARTED", None),
        ];
        let id = |text: &str| {
            resolve(&backups, text, "pg")
                .map(|b| b.backup_id.clone().unwrap())
                .map_err(|e| e.to_string())
        };
        assert_eq!(id("latest").unwrap(), "20260104T000000");
        assert_eq!(id("first").unwrap(), "20260102T000000");
        assert_eq!(id("last-failed").unwrap(), "20260105T000000");
        assert_eq!(id("failed").unwrap(), "20260105T000000");
        assert_eq!(id("").unwrap(), "20260105T000000");
        assert!(
            id("last-full")
                .unwrap_err()
                .contains("Unknown backup 'last-full' for server 'pg'")
        );
        assert_eq!(id("weekly").unwrap(), "20260102T000000");
        assert_eq!(id("20260106T000000").unwrap(), "20260106T000000");
        assert!(id("twice").unwrap_err().contains(
            "Multiple backups found matching name 'twice' (try using backup ID instead): \
             20260103T000000 20260104T000000"
        ));
        assert!(
            id("20260107T000000")
                .unwrap_err()
                .contains("Unknown backup '20260107T000000' for server 'pg'")
        );
        assert!(
            id("nightly")
                .unwrap_err()
                .contains("Unknown backup 'nightly' for server 'pg'")
        );
        assert!(
            resolve(&[], "latest", "pg")
                .unwrap_err()
                .to_string()
                .contains("Unknown backup 'latest' for server 'pg'")
        );
    }
}
