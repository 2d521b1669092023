//! What a deletion removes, decided without touching the storage: from the catalog, the
//! listings and the backup.info files read first ([`super::plan_deletion`] reads them),
//! pure functions give the backups to delete, each backup's objects, and the WAL each
//! deletion frees, step by step as Barman 3.20.1 would (barman/clients/cloud_backup_delete.py
//! `_delete_backup` and `_remove_wals_for_backup`). A dry run prints this plan; a real run
//! hands it to [`super::execute_deletion`].

use std::collections::{BTreeMap, BTreeSet, HashSet};

use bytes::Bytes;

use super::wal_cleanup::{self, CleanupScope};
use super::{DeleteTarget, is_interrupted_deletion};
use crate::backup_catalog::BackupCatalog;
use crate::catalog::snapshots::{SnapshotMetadata, SnapshotsInfo};
use crate::catalog::{BackupInfo, BackupStatus, KeepAnnotations, Timestamp};
use crate::error::{Error, Result};
use crate::layout::{BACKUP_INFO, ServerLayout, backup_archives, manifest_backup};
use crate::retention::RetentionStatus;
use crate::storage::ObjectInfo;
use crate::wal::WalCatalog;

/// Everything one deletion run removes, in the order it goes.
#[derive(Debug, Clone, Default)]
pub struct DeletionPlan {
    pub steps: Vec<BackupStep>,
    /// Backups whose directory held only our integrity manifest (no backup.info) when the
    /// run started (`-r` only): each is looked at again before its manifest goes.
    pub orphaned_manifests: Vec<String>,
}

/// One backup to delete, and the WAL its deletion frees.
#[derive(Debug, Clone)]
pub enum BackupStep {
    /// The backup has no backup.info: nothing of it is deleted, except a manifest left
    /// alone in its directory, and no WAL.
    Missing {
        id: String,
    },
    Delete(Box<BackupDeletion>),
}

#[derive(Debug, Clone)]
pub struct BackupDeletion {
    pub id: String,
    /// backup.info as read at the start of the run.
    pub info: BackupInfo,
    /// Its bytes, put back if nothing of the backup could be deleted.
    pub original: Bytes,
    pub info_key: String,
    /// The archive objects: PGDATA's family, then each tablespace's by OID; in each, the
    /// main archive then its parts.
    pub archives: Vec<String>,
    /// Our integrity manifest, when the backup has one (never in dry-run output).
    pub manifest: Option<String>,
    /// The `backup_label` object of a snapshot backup.
    pub snapshot_label: Option<String>,
    /// The snapshots of a snapshot backup, as the provider holds them when the run starts;
    /// set by [`super::snapshots::check_snapshots`] only (a snapshot backup without it is
    /// never deleted).
    pub snapshots: Option<SnapshotDeletion>,
    pub wal: WalCleanup,
}

/// What deleting a snapshot backup does to its snapshots, checked with the provider:
/// every snapshot `snapshots_info` lists is either gone already or named for the backup.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotDeletion {
    /// The backup's `snapshots_info`: what the provider is built from.
    pub info: SnapshotsInfo,
    /// The snapshots that exist, named for the backup: what a real run deletes, in the
    /// order `snapshots_info` lists them.
    pub to_delete: Vec<SnapshotMetadata>,
    /// Identifiers of the snapshots the provider no longer has (nothing to delete).
    pub gone: Vec<String>,
}

/// What happens to the WAL after a backup's deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalCleanup {
    /// The backup's deletion frees no WAL (an older backup still needs it).
    Nothing,
    Remove(WalRemoval),
    /// `wals/` could not be listed: this error is logged, the WAL stays for a later run.
    Unlisted(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalRemoval {
    /// `wals/<TTTTTTTTLLLLLLLL>/` prefixes deleted whole (S3 and `file://`), with the keys
    /// listed below each (empty in a dry run, which deletes nothing).
    pub directories: Vec<(String, Vec<String>)>,
    /// Every WAL object Barman deletes one by one, sorted by key (what a dry run names).
    pub files: Vec<String>,
    /// Those of `files` not already gone with a directory: what a real run sends.
    pub files_to_delete: Vec<String>,
}

/// The backups a deletion removes, and whether older `standalone` backups stop the WAL
/// clean-up (deletions by ID). Refuses by ID a kept backup or one below the minimum
/// redundancy, with Barman's messages.
pub fn backups_to_delete(
    catalog: &BackupCatalog,
    server: &str,
    target: &DeleteTarget,
    keeps: &KeepAnnotations,
    minimum_redundancy: u64,
    now: Timestamp,
) -> Result<(Vec<String>, bool)> {
    match target {
        DeleteTarget::Backup(text) => {
            let id = catalog.resolve(text, server)?;
            if keeps.blocks_deletion(&id) {
                return Err(Error::Refused(format!(
                    "Skipping delete of backup {id} for server {server} as it has a current \
                     keep request. If you really want to delete this backup please remove the \
                     keep and try again."
                )));
            }
            let completed = catalog
                .backups
                .iter()
                .filter(|b| b.status != Some(BackupStatus::Started))
                .count() as u64;
            if minimum_redundancy > 0 && minimum_redundancy >= completed {
                return Err(Error::Refused(format!(
                    "Skipping delete of backup {id} for server {server} due to minimum \
                     redundancy requirements (minimum redundancy = {minimum_redundancy}, \
                     current redundancy = {completed})"
                )));
            }
            Ok((vec![id], true))
        }
        DeleteTarget::Policy(policy) => {
            let report = policy.report(&catalog.backups, keeps, minimum_redundancy, now)?;
            let mut doomed: Vec<String> = report
                .iter()
                .filter(|(_, status)| **status == RetentionStatus::Obsolete)
                .map(|(id, _)| id.clone())
                .collect();
            // Deletions barman-rs started and could not finish are finished now.
            doomed.extend(
                catalog
                    .backups
                    .iter()
                    .filter(|b| is_interrupted_deletion(b))
                    .filter_map(|b| b.backup_id.clone()),
            );
            doomed.sort();
            doomed.dedup();
            Ok((doomed, false))
        }
    }
}

/// A backup's step, and the WAL clean-up scope its deletion opens (filled in by
/// [`plan_wal_cleanup`]).
pub type ScopedStep = (BackupStep, Option<CleanupScope>);

/// What [`plan_backups`] needs, read from the storage at the start of the run.
pub struct Survey<'a> {
    pub server: &'a str,
    pub layout: &'a ServerLayout,
    /// The catalog, sorted by backup ID.
    pub backups: &'a [BackupInfo],
    /// Every object below `base/`.
    pub base_listing: &'a [ObjectInfo],
    pub keeps: &'a KeepAnnotations,
    /// backup.info of each backup to delete, as stored; `None` when it has none.
    pub fresh: &'a BTreeMap<String, Option<Bytes>>,
}

/// Step 1: the objects of each backup in `doomed` (in that order), and the WAL clean-up
/// scope each deletion opens. The in-memory catalog loses each deleted backup after its
/// step, as Barman's does (a missing one stays). Warnings (missing archives) are returned
/// for the caller to log.
pub fn plan_backups(
    survey: &Survey,
    doomed: &[String],
    skip_wal_cleanup_if_standalone: bool,
) -> Result<(Vec<ScopedStep>, Vec<String>)> {
    let layout = survey.layout;
    let mut catalog: Vec<BackupInfo> = survey.backups.to_vec();
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    for id in doomed {
        let Some(Some(original)) = survey.fresh.get(id) else {
            warnings.push(format!("Backup {id} does not exist"));
            steps.push((BackupStep::Missing { id: id.clone() }, None));
            continue;
        };
        let info = BackupInfo::load(id, original)?;
        let dir = layout.backup_prefix(id);
        let objects: Vec<ObjectInfo> = survey
            .base_listing
            .iter()
            .filter(|o| {
                o.key
                    .strip_prefix(&dir)
                    .is_some_and(|name| !name.contains('/'))
            })
            .cloned()
            .collect();
        let manifest_key = layout.manifest(id);
        let manifest = objects
            .iter()
            .any(|o| o.key == manifest_key)
            .then_some(manifest_key);
        let mut families = backup_archives(&info, &dir, &objects);
        families.sort_by_key(|f| f.oid.map_or(-1, i64::from));
        let mut archives = Vec::new();
        for family in &families {
            if family.main.is_none() && info.snapshots_info.is_none() {
                warnings.push(format!(
                    "Missing file {dir}{}.* for server {}",
                    family.name, survey.server
                ));
            }
            archives.extend(family.objects().map(|o| o.key.clone()));
        }
        let scope = wal_cleanup::cleanup_scope(
            &info,
            &catalog,
            survey.keeps,
            skip_wal_cleanup_if_standalone,
        )?;
        catalog.retain(|b| b.backup_id.as_deref() != Some(id.as_str()));
        let snapshot_label = info
            .snapshots_info
            .is_some()
            .then(|| layout.backup_label(id));
        steps.push((
            BackupStep::Delete(Box::new(BackupDeletion {
                id: id.clone(),
                info_key: layout.backup_info(id),
                info,
                original: original.clone(),
                archives,
                manifest,
                snapshot_label,
                snapshots: None,
                wal: WalCleanup::Nothing,
            })),
            scope,
        ));
    }
    Ok((steps, warnings))
}

/// The objects below `wals/` as listed once, and what the run deleted of them since.
/// Barman lists the `wals/` directories again for every backup it deletes; deriving them
/// from one listing gives the same answers (WAL archiving only ever adds newer WAL, which
/// no deletion touches) without thousands of listing requests on large archives.
struct WalListing {
    /// `<prefix>/<server>/wals/`
    prefix: String,
    objects: Vec<ObjectInfo>,
    /// `TTTTTTTTLLLLLLLL` (or any other name) of every subdirectory still there.
    directories: BTreeSet<String>,
    /// Key prefixes (ending in `/`) of the directories deleted whole.
    deleted_prefixes: Vec<String>,
    /// Keys deleted one by one, so that a directory deleted later is not asked to delete
    /// them again.
    deleted_keys: HashSet<String>,
}

impl WalListing {
    fn new(wals_dir: &str, objects: Vec<ObjectInfo>) -> Self {
        let prefix = format!("{wals_dir}/");
        let directories = objects
            .iter()
            .filter_map(|o| o.key.strip_prefix(&prefix)?.split_once('/'))
            .map(|(directory, _)| directory.to_string())
            .collect();
        WalListing {
            prefix,
            objects,
            directories,
            deleted_prefixes: Vec::new(),
            deleted_keys: Default::default(),
        }
    }

    fn is_deleted(&self, key: &str) -> bool {
        self.deleted_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    }

    fn keys_under(&self, dir_prefix: &str) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.key.starts_with(dir_prefix) && !self.deleted_keys.contains(&o.key))
            .map(|o| o.key.clone())
            .collect()
    }

    fn objects_left(&self) -> Vec<ObjectInfo> {
        self.objects
            .iter()
            .filter(|o| !self.is_deleted(&o.key))
            .cloned()
            .collect()
    }
}

/// Step 2: the WAL each deletion frees, given the listing of `wals/` (made only when some
/// step has a scope). `directory_shortcut`: whole `wals/<TTTTTTTTLLLLLLLL>/` directories
/// go at once (Barman does so on S3). A dry run deletes nothing, so later steps see every
/// directory still there, as Barman's dry run does.
pub fn plan_wal_cleanup(
    steps: Vec<ScopedStep>,
    wals_dir: &str,
    wal_listing: std::result::Result<Vec<ObjectInfo>, String>,
    directory_shortcut: bool,
    dry_run: bool,
) -> Result<Vec<BackupStep>> {
    let mut listing = wal_listing.map(|objects| WalListing::new(wals_dir, objects));
    // Barman lists the WAL files once, after the first directories went: names under
    // directories deleted later stay in its list (and are deleted again, harmlessly).
    let mut wals: Option<WalCatalog> = None;
    let mut planned = Vec::with_capacity(steps.len());
    for (mut step, scope) in steps {
        if let (BackupStep::Delete(deletion), Some(scope)) = (&mut step, scope) {
            deletion.wal = match &mut listing {
                Err(error) => WalCleanup::Unlisted(error.clone()),
                Ok(listing) => WalCleanup::Remove(plan_wal_removal(
                    &scope,
                    listing,
                    &mut wals,
                    directory_shortcut,
                    dry_run,
                )?),
            };
        }
        planned.push(step);
    }
    Ok(planned)
}

fn plan_wal_removal(
    scope: &CleanupScope,
    listing: &mut WalListing,
    wals: &mut Option<WalCatalog>,
    directory_shortcut: bool,
    dry_run: bool,
) -> Result<WalRemoval> {
    let mut removal = WalRemoval::default();
    let mut deleted_now: Vec<String> = Vec::new();
    if directory_shortcut {
        let directories: Vec<String> = listing.directories.iter().cloned().collect();
        for directory in wal_cleanup::deletable_directories(scope, &directories)? {
            let dir_prefix = format!("{}{directory}/", listing.prefix);
            let keys = if dry_run {
                Vec::new()
            } else {
                let keys = listing.keys_under(&dir_prefix);
                listing.directories.remove(&directory);
                listing.deleted_prefixes.push(dir_prefix.clone());
                keys
            };
            removal.directories.push((dir_prefix.clone(), keys));
            deleted_now.push(dir_prefix);
        }
    }
    let wals = wals.get_or_insert_with(|| WalCatalog::from_listing(&listing.objects_left()));
    let doomed = wal_cleanup::wals_to_delete(scope, wals, &deleted_now)?;
    removal.files = doomed.iter().map(|(_, key)| key.clone()).collect();
    removal.files_to_delete = removal
        .files
        .iter()
        .filter(|key| !listing.is_deleted(key))
        .cloned()
        .collect();
    if !dry_run {
        listing
            .deleted_keys
            .extend(removal.files_to_delete.iter().cloned());
    }
    for (name, _) in &doomed {
        wals.remove(name);
    }
    Ok(removal)
}

/// `-r`: the backups whose directory in the listing of `base/` holds our manifest but no
/// backup.info. A backup of barman-rs writes backup.info before its manifest, and its
/// deletion removes the manifest before backup.info, so such a manifest belongs to no
/// backup.
pub fn orphaned_manifests(layout: &ServerLayout, base_listing: &[ObjectInfo]) -> Vec<String> {
    let base = format!("{}/", layout.base());
    let in_a_backup_directory = |key: &str| {
        key.strip_prefix(&base)
            .is_some_and(|rest| rest.split('/').count() == 2)
    };
    let infos: HashSet<&str> = base_listing
        .iter()
        .filter(|o| in_a_backup_directory(&o.key))
        .filter_map(|o| o.key.strip_suffix(BACKUP_INFO)?.strip_suffix('/'))
        .filter_map(|dir| dir.rsplit('/').next())
        .collect();
    base_listing
        .iter()
        .filter(|o| in_a_backup_directory(&o.key))
        .filter_map(|o| manifest_backup(&o.key))
        .filter(|id| !infos.contains(id))
        .map(str::to_string)
        .collect()
}
