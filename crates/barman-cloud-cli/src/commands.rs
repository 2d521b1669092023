//! Each command: turn parsed arguments into a library call.

use std::sync::Arc;

use barman_cloud::backup::{self, BackupRequest};
use barman_cloud::pg::PgSession;
use barman_cloud::storage::{BucketState, CloudStorage, Provider, StorageOptions};
use barman_cloud::wal::{self, WalArchiveCheck, WalArchiveRequest, WalRestoreRequest};
use barman_cloud::{Error, Result};

use crate::args::{
    BackupArgs, BackupDeleteArgs, BackupKeepArgs, BackupListArgs, BackupShowArgs,
    CheckWalArchiveArgs, LockMode, RestoreArgs, WalArchiveArgs, WalRestoreArgs, effective_tags,
};
use crate::exit::Stdout;
use crate::progress::BackupProgress;

/// `-t/--test`: Barman's connectivity and bucket-existence probe.
async fn connectivity_test(storage: &CloudStorage) -> Result<()> {
    match storage.bucket_state().await? {
        BucketState::Exists => Ok(()),
        BucketState::Missing => Err(Error::BucketMissing(storage.location().bucket.clone())),
    }
}

/// Opens the storage for `url`, or with `-t` runs Barman's connectivity and
/// bucket-existence probe instead and returns `None`.
async fn open_or_test(
    url: &str,
    mut options: StorageOptions,
    sse_customer_key: &Option<String>,
    test: bool,
) -> Result<Option<CloudStorage>> {
    options.sse_customer_key_uri = sse_customer_key.clone();
    let storage = CloudStorage::open(url, &options).await?;
    if test {
        connectivity_test(&storage).await?;
        return Ok(None);
    }
    Ok(Some(storage))
}

pub async fn wal_archive(args: WalArchiveArgs) -> Result<()> {
    let wal_path = match hook_wal_path()? {
        // Barman takes BARMAN_FILE even when a WAL_PATH is given too.
        Some(path) => path.into(),
        None => args.wal_path.clone().ok_or_else(|| {
            Error::InvalidInput("the following arguments are required: WAL_PATH".into())
        })?,
    };
    let basename = wal_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    barman_cloud::wal::WalName::try_parse(basename).ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} is an invalid name for a WAL file",
            wal_path.display()
        ))
    })?;
    let mut options: StorageOptions = args.common.storage_options();
    args.encryption.apply(&mut options);
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let request = WalArchiveRequest {
        server_name: args.server_name.clone(),
        wal_path,
        compression: args.compression(),
        compression_level: args.compression_level.unwrap_or_default(),
        tags: effective_tags(&args.tag, &args.tags),
        history_tags: effective_tags(&args.history_tag, &args.history_tags),
        // Barman applies the block options to Azure only.
        max_single_put_size: (storage.location().provider == Provider::AzureBlobStorage)
            .then(|| args.max_single_put_size.unwrap_or(64 << 20)),
        // Azure's largest block: a larger one could never be sent.
        block_size: args.max_block_size.unwrap_or(4 << 20).min(4000 << 20),
        block_concurrency: args.max_concurrency.unwrap_or(1) as usize,
    };
    wal::archive_wal(&storage, &request).await.map(|_| ())
}

/// The hook script Barman runs us as: (`BARMAN_HOOK`, `BARMAN_PHASE`) when both are set.
fn barman_hook() -> Option<(String, String)> {
    let hook = std::env::var("BARMAN_HOOK").ok()?;
    let phase = std::env::var("BARMAN_PHASE").ok()?;
    Some((hook, phase))
}

/// In Barman hook mode the WAL path comes from `BARMAN_FILE`, and only the `pre` phase of
/// `archive_script`/`archive_retry_script` is a hook we can be. Barman ends both refusals
/// with a traceback (exit 1).
fn hook_wal_path() -> Result<Option<String>> {
    let Some((hook, phase)) = barman_hook() else {
        return Ok(None);
    };
    if !(matches!(hook.as_str(), "archive_script" | "archive_retry_script") && phase == "pre") {
        return Err(Error::Refused(format!(
            "barman-cloud-wal-archive called as unsupported hook script: {phase}_{hook}"
        )));
    }
    std::env::var("BARMAN_FILE")
        .map(Some)
        .map_err(|_| Error::Refused("Expected environment variable BARMAN_FILE not set".into()))
}

pub async fn wal_restore(args: WalRestoreArgs) -> Result<()> {
    barman_cloud::wal::WalName::parse(&args.wal_name)?;
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let request = WalRestoreRequest {
        server_name: args.server_name,
        wal_name: args.wal_name,
        destination: args.wal_dest,
        no_partial: args.no_partial,
        parallel: args.parallel,
        spool_dir: args.spool_dir,
    };
    wal::restore_wal(&storage, &request).await.map(|_| ())
}

pub async fn check_wal_archive(args: CheckWalArchiveArgs) -> Result<()> {
    let mut storage = CloudStorage::open(&args.url, &args.common.storage_options()).await?;
    // Barman probes connectivity first, and with -t stops there, bucket or not.
    storage.bucket_state().await?;
    if args.common.test {
        return Ok(());
    }
    let check = WalArchiveCheck {
        server_name: args.server_name,
        timeline: args.timeline,
    };
    wal::check_wal_archive(&mut storage, &check).await
}

pub async fn backup_list(args: BackupListArgs) -> Result<()> {
    use barman_cloud::backup_catalog::{BackupCatalog, BucketCatalog, CatalogStore};
    use barman_cloud::catalog::{ListEntry, backup_list_console, backup_list_json};
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let store = BucketCatalog::new(&storage, &args.server_name);
    let catalog = BackupCatalog::load(&store).await?;
    let output = if args.format == "console" {
        let keeps = store.keep_annotations().await?;
        let entries: Vec<ListEntry> = catalog
            .backups
            .iter()
            .map(|info| ListEntry {
                info,
                keep_target: info.backup_id.as_ref().and_then(|id| keeps.text(id)),
            })
            .collect();
        backup_list_console(&entries)?
    } else {
        backup_list_json(&catalog.backups)?
    };
    Stdout::print(&output)
}

pub async fn backup_show(args: BackupShowArgs) -> Result<()> {
    use barman_cloud::backup_catalog::{BucketCatalog, read_backup_info, resolve_backup_id};
    use barman_cloud::catalog::{backup_show_console, backup_show_json};
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let server = &args.server_name;
    let store = BucketCatalog::new(&storage, server);
    let backup_id = resolve_backup_id(&store, &args.backup_id).await?;
    let info = read_backup_info(&store, &backup_id).await?.ok_or_else(|| {
        Error::Missing(format!(
            "Backup {backup_id} for server {server} does not exist"
        ))
    })?;
    let output = if args.format == "console" {
        backup_show_console(&info)?
    } else {
        backup_show_json(&info)?
    };
    Stdout::print(&output)
}

pub async fn backup_delete(args: BackupDeleteArgs) -> Result<()> {
    use barman_cloud::delete::{DeleteRequest, DeleteTarget, execute_deletion, plan_deletion};
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let target = match (args.backup_id, args.retention_policy) {
        (Some(id), _) => DeleteTarget::Backup(id),
        (None, Some(policy)) => DeleteTarget::Policy(policy),
        (None, None) => unreachable!("clap requires -b or -r"),
    };
    let request = DeleteRequest {
        server_name: args.server_name,
        target,
        minimum_redundancy: args.minimum_redundancy,
        dry_run: args.dry_run,
        batch_size: args.batch_size,
        check_object_lock: args.check_object_lock,
    };
    // Built once for the plan's ownership checks and the deletions that follow.
    let providers =
        barman_cloud::snapshot::CachedProviders::new(delete_snapshot_providers(&args.common));
    let plan = plan_deletion(&storage, &request, &providers).await?;
    if request.dry_run {
        Stdout::print(&dry_run_lines(&plan))
    } else {
        execute_deletion(&storage, &request, &plan, &providers).await
    }
}

/// Where a deletion finds the snapshots of snapshot backups: everything from each
/// backup's `snapshots_info` (the AWS region included: barman-cloud-backup-delete has no
/// `--aws-region`), the credentials from `-P/--aws-profile`, as Barman's
/// `get_snapshot_interface_from_backup_info`.
fn delete_snapshot_providers(
    common: &crate::args::Common,
) -> barman_cloud::snapshot::ProviderOptions {
    use barman_cloud::snapshot::ProviderOptions;
    use barman_cloud::snapshot::aws::AwsSnapshotSettings;
    ProviderOptions {
        aws: AwsSnapshotSettings {
            profile: common.aws_profile.clone(),
            ..Default::default()
        },
        azure_credential: common.azure_credential,
        ..Default::default()
    }
}

/// Barman's dry-run output for a deletion plan: what each step would delete, in order.
/// Our integrity manifest is left out, so the lines stay Barman's.
fn dry_run_lines(plan: &barman_cloud::delete::DeletionPlan) -> String {
    use barman_cloud::catalog::pyliteral::repr_str;
    use barman_cloud::delete::{BackupStep, WalCleanup};
    let py_list = |keys: &[String]| {
        let items: Vec<String> = keys.iter().map(|k| repr_str(k)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut out = String::new();
    for step in &plan.steps {
        let BackupStep::Delete(deletion) = step else {
            continue;
        };
        if let Some(label) = &deletion.snapshot_label {
            out.push_str("Skipping deletion of snapshots due to --dry-run option\n");
            out.push_str(&format!(
                "Skipping deletion of {label} due to --dry-run option\n"
            ));
        }
        let mut objects = deletion.archives.clone();
        objects.push(deletion.info_key.clone());
        out.push_str(&format!(
            "Skipping deletion of objects {} due to --dry-run option\n",
            py_list(&objects)
        ));
        if let WalCleanup::Remove(removal) = &deletion.wal {
            for (prefix, _) in &removal.directories {
                out.push_str(&format!(
                    "Skipping deletion of all objects under prefix {prefix} due to --dry-run option\n"
                ));
            }
            if !removal.files.is_empty() {
                out.push_str(&format!(
                    "Skipping deletion of objects {} due to --dry-run option\n",
                    py_list(&removal.files)
                ));
            }
        }
    }
    out
}

pub async fn backup_keep(args: BackupKeepArgs) -> Result<()> {
    use barman_cloud::backup_catalog::{
        BucketCatalog, CatalogStore, KeepTarget, add_keep, resolve_backup_id,
    };
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let store = BucketCatalog::new(&storage, &args.server_name);
    let backup_id = resolve_backup_id(&store, &args.backup_id).await?;
    if args.release {
        store.remove_keep(&backup_id).await
    } else if args.status {
        // As Barman: all the annotations are read (so a missing bucket is an error).
        let keeps = store.keep_annotations().await?;
        let target = keeps.text(&backup_id);
        match target {
            Some(text) if !text.is_empty() => Stdout::print(&format!("Keep: {text}\n")),
            _ => Stdout::print("Keep: nokeep\n"),
        }
    } else {
        let target = args.target.unwrap_or(KeepTarget::Full);
        add_keep(&store, &backup_id, target).await
    }
}

pub async fn restore(args: RestoreArgs) -> Result<()> {
    use barman_cloud::backup_catalog::{BackupSelector, BucketCatalog, RecoveryTarget};
    use barman_cloud::restore::{RestoreRequest, restore_backup};
    let options = args.common.storage_options();
    let Some(storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(());
    };
    let target = RecoveryTarget {
        time: args.target_time,
        lsn: args.target_lsn,
        timeline: args.target_tli,
    };
    let store = BucketCatalog::new(&storage, &args.server_name);
    let backup_id = BackupSelector::new(&args.backup_id, target)
        .select(&store)
        .await?;
    tracing::info!("Restoring from backup_id: {backup_id}");
    let request = RestoreRequest {
        server_name: args.server_name,
        backup_id,
        destination: args.recovery_dir,
        relocations: args.tablespace,
        snapshot_recovery: barman_cloud::restore::snapshot::SnapshotRecovery {
            instance: args.snapshot_recovery_instance,
            options: barman_cloud::snapshot::ProviderOptions {
                aws: barman_cloud::snapshot::aws::AwsSnapshotSettings {
                    profile: args.common.aws_profile.clone(),
                    region: args.aws_region.clone(),
                    ..Default::default()
                },
                gcp_zone: args.gcp_zone.clone(),
                azure_resource_group: args.azure_resource_group.clone(),
                azure_credential: args.common.azure_credential,
            },
        },
    };
    restore_backup(&storage, &request).await
}

/// The destination of a backup, or `None` after a `-t` test.
async fn open_backup_destination(args: &BackupArgs) -> Result<Option<CloudStorage>> {
    let mut options: StorageOptions = args.common.storage_options();
    args.encryption.apply(&mut options);
    let Some(mut storage) =
        open_or_test(&args.url, options, &args.sse_customer_key, args.common.test).await?
    else {
        return Ok(None);
    };
    // A local destination is ours, not Barman's: create it rather than fail. Cloud
    // buckets are never created by a backup, as in Barman.
    if storage.location().provider == Provider::Local
        && storage.bucket_state().await? == BucketState::Missing
    {
        storage.create_bucket().await?;
    }
    Ok(Some(storage))
}

/// `barman-cloud-backup --snapshot-instance I --snapshot-disk D...`.
async fn snapshot_backup(args: BackupArgs, tags: Vec<(String, String)>) -> Result<()> {
    use barman_cloud::backup::snapshot::{SnapshotBackupRequest, take_snapshot_backup};
    use barman_cloud::snapshot::SnapshotProvider;
    use barman_cloud::snapshot::aws::{AwsSnapshotSettings, AwsSnapshots, SnapshotLock};
    use barman_cloud::snapshot::azure::{AzureSnapshotSettings, AzureSnapshots};
    use barman_cloud::snapshot::gcp::{GcpSnapshotSettings, GcpSnapshots};
    use barman_cloud::snapshot::host::LocalHost;
    let Some(storage) = open_backup_destination(&args).await? else {
        return Ok(());
    };
    let session =
        PgSession::connect_with(&args.connection_options(), "barman_cloud_backup").await?;
    // The provider follows --cloud-provider, as in Barman (a file:// destination keeps the
    // default, aws-s3).
    // The provider follows --cloud-provider, as in Barman (a file:// destination keeps the
    // default, aws-s3), with where the instance is (GCP: the zone, Azure: the resource
    // group; AWS: the region, which has defaults) and whether that is missing.
    let (provider, location): (Box<dyn SnapshotProvider>, Option<(&str, bool)>) =
        match args.common.cloud_provider {
            Provider::AzureBlobStorage => {
                let Some(subscription_id) = args.azure_subscription_id.clone() else {
                    return Err(Error::Config(
                        "--azure-subscription-id option must be set for snapshot backups when \
                         cloud provider is azure-blob-storage"
                            .into(),
                    ));
                };
                let mut settings = AzureSnapshotSettings {
                    subscription_id,
                    resource_group: args.azure_resource_group.clone(),
                    ..Default::default()
                };
                if let Some(credential) = args.common.azure_credential {
                    settings.credential = credential;
                }
                let group_missing = settings.resource_group.is_none();
                (
                    Box::new(AzureSnapshots::new(settings).await?),
                    Some(("azure_resource_group", group_missing)),
                )
            }
            Provider::GoogleCloudStorage => {
                let Some(project) = args.gcp_project.clone() else {
                    return Err(Error::Config(
                        "--gcp-project option must be set for snapshot backups when cloud \
                         provider is google-cloud-storage"
                            .into(),
                    ));
                };
                let zone = args.gcp_zone.clone().or_else(|| args.snapshot_zone.clone());
                let settings = GcpSnapshotSettings { project, zone };
                let zone_missing = settings.zone.is_none();
                (
                    Box::new(GcpSnapshots::new(settings).await?),
                    Some(("gcp_zone", zone_missing)),
                )
            }
            _ => {
                let settings = AwsSnapshotSettings {
                    profile: args.common.aws_profile.clone(),
                    region: args.aws_region.clone(),
                    await_timeout: std::time::Duration::from_secs(
                        args.aws_await_snapshots_timeout.into(),
                    ),
                    lock: args.aws_snapshot_lock_mode.map(|mode| SnapshotLock {
                        mode,
                        duration: args.aws_snapshot_lock_duration,
                        cool_off_period: args.aws_snapshot_lock_cool_off_period,
                        expiration_date: args.aws_snapshot_lock_expiration_date.clone(),
                    }),
                    tags: tags.clone(),
                };
                (Box::new(AwsSnapshots::new(settings).await?), None)
            }
        };
    let missing: Vec<&str> = [
        ("snapshot_disks", args.snapshot_disks.is_empty()),
        ("snapshot_instance", args.snapshot_instance.is_none()),
        location.unwrap_or(("", false)),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "Incomplete options for snapshot backup - missing: {}",
            missing.join(", ")
        )));
    }
    let request = SnapshotBackupRequest {
        server_name: args.server_name.clone(),
        backup_name: args.name.clone(),
        immediate_checkpoint: args.immediate_checkpoint,
        keepalive_interval: args.keepalive_interval,
        tags,
        instance: args.snapshot_instance.clone().unwrap_or_default(),
        disks: args.snapshot_disks.clone(),
    };
    let outcome = take_snapshot_backup(
        Arc::new(storage),
        session,
        provider.as_ref(),
        &LocalHost,
        &request,
    )
    .await?;
    tracing::debug!(
        "backup {}: {} snapshots",
        outcome.backup_id,
        outcome.objects
    );
    Ok(())
}

pub async fn backup(args: BackupArgs) -> Result<()> {
    if args.is_snapshot_backup() && args.compression().is_some() {
        return Err(Error::Config(
            "Compression options cannot be used with snapshot backups".into(),
        ));
    }
    if args.aws_snapshot_lock_mode == Some(LockMode::Governance)
        && args.aws_snapshot_lock_cool_off_period.is_some()
    {
        return Err(Error::Config(
            "'aws_snapshot_lock_mode' = 'governance' cannot be used with \
             'aws_snapshot_lock_cool_off_period'"
                .into(),
        ));
    }
    let tags = effective_tags(&args.tag, &args.tags);
    backup::check_tags(&tags)?;
    // Barman refuses it while building the GCS client, only with --snapshot-instance.
    if args.common.cloud_provider == Provider::GoogleCloudStorage
        && args.encryption.kms_key_name.is_some()
        && args.snapshot_instance.is_some()
    {
        return Err(Error::Config(
            "KMS key cannot be specified for snapshot backups".into(),
        ));
    }
    if let Some(hook) = barman_hook() {
        // As in Barman: -t first, then the hook checks; snapshot options are ignored.
        if args.max_archive_size >= backup::MAX_ARCHIVE_SIZE {
            tracing::warn!("max-archive-size too big. Capping it to to 1.0 TiB");
        }
        let Some(storage) = open_backup_destination(&args).await? else {
            return Ok(());
        };
        return hook_backup(args, tags, hook, storage).await;
    }
    if args.is_snapshot_backup() {
        return snapshot_backup(args, tags).await;
    }
    if args.max_archive_size >= backup::MAX_ARCHIVE_SIZE {
        // The part size still follows the requested value, as in Barman.
        tracing::warn!("max-archive-size too big. Capping it to to 1.0 TiB");
    }
    let Some(storage) = open_backup_destination(&args).await? else {
        return Ok(());
    };
    let session =
        PgSession::connect_with(&args.connection_options(), "barman_cloud_backup").await?;
    let request = BackupRequest {
        server_name: args.server_name.clone(),
        backup_name: args.name.clone(),
        compression: args.compression(),
        jobs: args.jobs as usize,
        max_archive_size: args.max_archive_size,
        min_chunk_size: args.min_chunk_size,
        max_bandwidth: args.max_bandwidth,
        immediate_checkpoint: args.immediate_checkpoint,
        keepalive_interval: args.keepalive_interval,
        tags,
    };
    let progress = Arc::new(backup::WalkProgress::default());
    let bar = BackupProgress::start(progress.clone(), args.common.quiet > 0);
    let outcome = backup::take_backup(Arc::new(storage), session, &request, progress).await;
    drop(bar);
    let outcome = outcome?;
    tracing::debug!(
        "backup {}: {} bytes read, {} bytes stored in {} objects",
        outcome.backup_id,
        outcome.bytes_read,
        outcome.bytes_stored,
        outcome.objects
    );
    Ok(())
}

/// `barman-cloud-backup` as the `post` phase of a Barman server's `backup_script` or
/// `backup_retry_script`: Barman 3.20.1's checks, in its order, then the upload of the
/// server's backup.
async fn hook_backup(
    args: BackupArgs,
    tags: Vec<(String, String)>,
    (hook, phase): (String, String),
    storage: CloudStorage,
) -> Result<()> {
    use barman_cloud::backup::hook::{HookUploadRequest, ServerBackup, upload_server_backup};
    if !(matches!(hook.as_str(), "backup_script" | "backup_retry_script") && phase == "post") {
        return Err(Error::Config(format!(
            "barman-cloud-backup called as unsupported hook script: {phase}_{hook}"
        )));
    }
    if args.name.is_some() {
        return Err(Error::Config(
            "Cannot set backup name when running as a hook script".into(),
        ));
    }
    let required = |name: &str| {
        std::env::var(name)
            .map_err(|_| Error::Config(format!("{name} environment variable not set")))
    };
    let backup_dir = required("BARMAN_BACKUP_DIR")?;
    let backup_id = required("BARMAN_BACKUP_ID")?;
    let status = std::env::var("BARMAN_STATUS").unwrap_or_else(|_| "None".into());
    if status != "DONE" {
        return Err(Error::HookAbort(format!(
            "backup in '{backup_dir}' has status '{status}' (status should be: DONE)"
        )));
    }
    let info_path = required("BARMAN_BACKUP_INFO_PATH")?;
    let backup = ServerBackup::load(
        &backup_id,
        std::path::Path::new(&backup_dir),
        std::path::Path::new(&info_path),
    )?;
    if backup.is_compressed() {
        return Err(Error::Config(
            "Compressed backups are not supported when running as a hook script".into(),
        ));
    }
    // Not in Barman, which uploads it: an incremental backup holds only the blocks changed
    // since its parent, and no restore from object storage can combine it. 63 ends
    // Barman's retries (a retry cannot change it) without failing the backup.
    if let Some(parent) = backup.incremental_parent() {
        return Err(Error::HookAbort(format!(
            "backup {backup_id} is an incremental backup (parent {parent}): it cannot be \
             restored from object storage, not uploading it"
        )));
    }
    // Not in Barman, which fails on the missing global/pg_control (exit 1, retried
    // forever). A snapshot backup's data is in the cloud provider's snapshots, which the
    // server's catalog owns: a second catalog of the same snapshots in the bucket would let
    // either side's retention delete snapshots the other still lists. 63 ends the retries
    // without failing the backup; the WAL hook still copies the WAL.
    if backup.is_snapshot() {
        return Err(Error::HookAbort(format!(
            "backup {backup_id} is a snapshot backup: its data stays in the snapshots the \
             server's catalog owns, not uploading it"
        )));
    }
    let request = HookUploadRequest {
        server_name: args.server_name.clone(),
        compression: args.compression(),
        jobs: args.jobs as usize,
        max_archive_size: args.max_archive_size,
        min_chunk_size: args.min_chunk_size,
        max_bandwidth: args.max_bandwidth,
        tags,
    };
    let progress = Arc::new(backup::WalkProgress::default());
    let bar = BackupProgress::start(progress.clone(), args.common.quiet > 0);
    let outcome = upload_server_backup(Arc::new(storage), &backup, &request, progress).await;
    drop(bar);
    let outcome = outcome?;
    tracing::debug!(
        "backup {backup_id}: {} bytes stored in {} objects",
        outcome.bytes_stored,
        outcome.objects
    );
    Ok(())
}

#[cfg(test)]
mod delete_tests {
    use barman_cloud::delete::{BackupDeletion, BackupStep, DeletionPlan, WalCleanup};
    use clap::Parser;

    use super::*;

    #[test]
    fn snapshots_are_found_with_the_profile_and_the_recorded_region() {
        let args = BackupDeleteArgs::try_parse_from([
            "barman-cloud-backup-delete",
            "-P",
            "prod",
            "s3://bucket/pg",
            "main",
            "-b",
            "latest",
        ])
        .unwrap();
        let providers = delete_snapshot_providers(&args.common);
        assert_eq!(providers.aws.profile.as_deref(), Some("prod"));
        assert_eq!(providers.aws.region, None, "snapshots_info gives it");
    }

    #[test]
    fn a_dry_run_of_a_snapshot_backup_prints_barmans_lines() {
        let dir = "pg/main/base/20250101T000000";
        let deletion = BackupDeletion {
            id: "20250101T000000".into(),
            info: Default::default(),
            original: Default::default(),
            info_key: format!("{dir}/backup.info"),
            archives: Vec::new(),
            manifest: None,
            snapshot_label: Some(format!("{dir}/backup_label")),
            snapshots: None,
            wal: WalCleanup::Nothing,
        };
        let plan = DeletionPlan {
            steps: vec![BackupStep::Delete(Box::new(deletion))],
            orphaned_manifests: Vec::new(),
        };
        assert_eq!(
            dry_run_lines(&plan),
            format!(
                "Skipping deletion of snapshots due to --dry-run option\n\
                 Skipping deletion of {dir}/backup_label due to --dry-run option\n\
                 Skipping deletion of objects ['{dir}/backup.info'] due to --dry-run option\n"
            )
        );
    }
}
