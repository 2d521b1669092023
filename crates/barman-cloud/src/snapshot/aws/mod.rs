//! AWS EBS snapshots through the EC2 Query API (Barman: `barman/cloud_providers/aws_s3.py`
//! `AwsCloudSnapshotInterface`, `AwsVolumeMetadata`).
//!
//! Modules: [`ec2`] (the signed Query API client: endpoint, form bodies, retries, paging,
//! errors), [`model`] (the XML answers). This file is the provider: which calls Barman
//! makes, in which order, and what its answers mean.
//!
//! Where barman-rs differs from Barman 3.20.1, on purpose:
//! * snapshots are locked once they are complete ([`SnapshotProvider::protect_snapshots`]),
//!   not right after each is created, so that a backup that fails before then leaves no
//!   locked snapshot behind that nobody can delete;
//! * the same volume named twice (by ID and by `Name` tag) is refused instead of being
//!   snapshotted twice;
//! * `Describe*` answers are read to their last page (`NextToken`);
//! * completion is checked at once, then after 1 s and at intervals growing by half up to
//!   Barman's 15 s, within the same time limit; a snapshot not visible yet right after its
//!   creation is waited for, not an error.

pub mod ec2;
#[cfg(test)]
mod fake;
pub mod model;

use std::time::Duration;

use async_trait::async_trait;

use super::{AttachedDisk, CreatedSnapshot, DeviceRef, Mount, SnapshotProvider};
use crate::catalog::pyliteral::PyValue;
use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};
pub use ec2::{CallKind, Ec2Client, Ec2Error, Params, RetryPolicy};
pub use model::{Instance, Reservation, Snapshot, Volume};

/// `--aws-snapshot-lock-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }
}

/// A snapshot lock (EC2 LockSnapshot), options as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLock {
    pub mode: LockMode,
    /// Days (1-36500).
    pub duration: Option<i64>,
    /// Hours (1-72), compliance mode only.
    pub cool_off_period: Option<i64>,
    /// `YYYY-MM-DDThh:mm:ss.fffZ`, as given.
    pub expiration_date: Option<String>,
}

/// What an EBS snapshot provider is built from.
#[derive(Debug, Clone, Default)]
pub struct AwsSnapshotSettings {
    /// `--aws-profile` (else `AWS_PROFILE`, else the default chain).
    pub profile: Option<String>,
    /// `--aws-region` or the region recorded in `snapshots_info`; else the profile's or
    /// the environment's, as the S3 client finds it.
    pub region: Option<String>,
    /// `--aws-await-snapshots-timeout`.
    pub await_timeout: Duration,
    pub lock: Option<SnapshotLock>,
    /// User tags added to each snapshot after its `Name` tag.
    pub tags: Vec<(String, String)>,
}

/// The instance states Barman accepts: all but `terminated`.
const INSTANCE_STATES: [&str; 5] = ["pending", "running", "shutting-down", "stopping", "stopped"];

/// Longest pause between two completion checks (Barman's fixed interval).
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(15);

/// EBS snapshots of one account and region.
pub struct AwsSnapshots {
    settings: AwsSnapshotSettings,
    client: Ec2Client,
    /// `MaxResults` of filtered `Describe*` calls; `None` (EC2 answers everything at once)
    /// except in tests of paging.
    page_size: Option<u32>,
    /// The instance as described for the first snapshot of a backup: the snapshots of its
    /// other disks, created concurrently, reuse it (Barman describes it once per backup).
    snapshot_instance: tokio::sync::Mutex<Option<(String, Instance)>>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AwsSnapshots {
    /// The provider of `settings`: the region is `settings.region`, else the one the S3
    /// client would use (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's, `us-east-1`);
    /// credentials are found as the S3 client finds them (environment keys, profile, web
    /// identity, container and instance metadata); the endpoint is boto3's
    /// (`AWS_ENDPOINT_URL_EC2`, `AWS_ENDPOINT_URL`, the region's). Contacts nothing but
    /// credential sources.
    pub async fn new(settings: AwsSnapshotSettings) -> Result<Self> {
        let profile = settings
            .profile
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| env_nonempty("AWS_PROFILE"));
        let region = match settings.region.clone().filter(|r| !r.is_empty()) {
            Some(region) => region,
            None => crate::storage::aws::resolve_region(profile.as_deref()).await,
        };
        // The S3-only options (`--aws-irsa`, encryption...) play no part here.
        let credentials = crate::storage::aws::credential_provider(
            &crate::storage::StorageOptions::default(),
            profile.as_deref(),
            &region,
        )
        .await?;
        let endpoint = ec2::endpoint_url(
            &region,
            env_nonempty("AWS_ENDPOINT_URL_EC2").as_deref(),
            env_nonempty("AWS_ENDPOINT_URL").as_deref(),
        );
        let client = Ec2Client::new(&endpoint, &region, credentials)?;
        Ok(Self::with_client(settings, client))
    }

    /// The provider of `settings` over a client built by the caller (whose region wins
    /// over `settings.region`).
    pub fn with_client(settings: AwsSnapshotSettings, client: Ec2Client) -> Self {
        AwsSnapshots {
            settings,
            client,
            page_size: None,
            snapshot_instance: tokio::sync::Mutex::new(None),
        }
    }

    /// Asks filtered `Describe*` calls for pages of `n` items (EC2 wants 5 to 1000), to
    /// exercise paging; the answers are the same.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n);
        self
    }

    /// The region every call goes to.
    pub fn region(&self) -> &str {
        self.client.region()
    }

    pub fn client(&self) -> &Ec2Client {
        &self.client
    }

    pub fn settings(&self) -> &AwsSnapshotSettings {
        &self.settings
    }

    /// The instance an ID or `Name` tag designates, `None` when nothing matches
    /// (Barman's `_get_instance_metadata`).
    pub async fn find_instance(&self, identifier: &str) -> Result<Option<Instance>> {
        let mut reservations = None;
        if identifier.starts_with("i-") {
            let params = Params::new()
                .list("InstanceId", &[identifier])
                .filter("instance-state-name", &INSTANCE_STATES);
            // EC2 refuses MaxResults with instance IDs.
            match self.client.describe_instances(&params, None).await {
                Ok(found) => reservations = Some(found),
                // Not an ID after all: try it as a name.
                Err(e) if e.code() == Some("InvalidInstanceID.Malformed") => {}
                Err(e) => return Err(e.into()),
            }
        }
        let reservations = match reservations {
            Some(found) => found,
            None => {
                let params = Params::new()
                    .filter("tag:Name", &[identifier])
                    .filter("instance-state-name", &INSTANCE_STATES);
                self.client
                    .describe_instances(&params, self.page_size)
                    .await?
            }
        };
        select_instance(identifier, reservations)
    }

    /// The instance, or Barman's "Cannot find instance" error.
    async fn instance(&self, identifier: &str) -> Result<Instance> {
        self.find_instance(identifier)
            .await?
            .ok_or_else(|| Error::Provider(format!("Cannot find instance {identifier}")))
    }

    /// Every volume attached to the instance.
    async fn attached_volumes(&self, instance: &Instance) -> Result<Vec<Volume>> {
        let params = Params::new().filter("attachment.instance-id", &[&instance.instance_id]);
        Ok(self
            .client
            .describe_volumes(&params, self.page_size)
            .await?)
    }

    /// The IDs of snapshots of a backup, or an error naming the first that has none.
    fn snapshot_ids(snapshots: &[SnapshotMetadata]) -> Result<Vec<&str>> {
        snapshots
            .iter()
            .map(|s| {
                s.identifier().ok_or_else(|| {
                    Error::Provider("A snapshot of the backup has no snapshot_id".into())
                })
            })
            .collect()
    }

    /// One completion check: `Ok(None)` when all are completed, else what is still
    /// pending (`snap-1 (pending, 40%)`); a failed snapshot is an error.
    async fn check_completed(&self, ids: &[&str]) -> Result<Option<String>> {
        let params = Params::new().list("SnapshotId", ids);
        let found = match self.client.describe_snapshots(&params, None).await {
            Ok(found) => found,
            // A snapshot just created may not be visible yet.
            Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        completion_state(ids, &found)
    }
}

/// Barman's choice among the reservations a lookup found: exactly one instance, else an
/// error for several, `None` for none.
pub fn select_instance(
    identifier: &str,
    mut reservations: Vec<Reservation>,
) -> Result<Option<Instance>> {
    match reservations.len() {
        0 => Ok(None),
        1 => {
            let mut instances = reservations.remove(0).instances;
            match instances.len() {
                0 => Ok(None),
                1 => Ok(instances.pop()),
                _ => Err(Error::Provider(format!(
                    "Cannot find a unique EC2 instance matching {identifier}"
                ))),
            }
        }
        _ => Err(Error::Provider(format!(
            "Cannot find a unique EC2 reservation containing instance {identifier}"
        ))),
    }
}

/// The volume `identifier` designates among `volumes`: by volume ID, else by `Name` tag
/// (Barman's `_lookup_volume`).
fn lookup_volume<'a>(volumes: &'a [Volume], identifier: &str) -> Result<Option<&'a Volume>> {
    let mut matching: Vec<&Volume> = volumes
        .iter()
        .filter(|v| v.volume_id == identifier)
        .collect();
    if matching.is_empty() {
        matching = volumes
            .iter()
            .filter(|v| model::has_tag(&v.tags, "Name", identifier))
            .collect();
    }
    match matching.len() {
        0 => Ok(None),
        1 => Ok(Some(matching[0])),
        _ => Err(Error::Provider(format!(
            "Duplicate volumes found matching {identifier}: {}",
            matching
                .iter()
                .map(|v| v.volume_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The disks of `instance` that `disks` names, in the order named (a name given twice
/// counts once), or every EBS volume of its block-device mappings, in their order; the
/// root volume and volumes not attached to the instance are left out (Barman's
/// `_get_requested_volumes`). Two names of the same volume are refused.
pub fn select_volumes(
    instance: &Instance,
    volumes: &[Volume],
    disks: Option<&[String]>,
) -> Result<Vec<AttachedDisk>> {
    let requested: Vec<&str> = match disks {
        Some(disks) => {
            let mut unique: Vec<&str> = Vec::new();
            for disk in disks {
                if !unique.contains(&disk.as_str()) {
                    unique.push(disk);
                }
            }
            unique
        }
        None => instance
            .block_device_mappings
            .iter()
            .filter_map(|m| m.volume_id())
            .collect(),
    };
    let paravirtual = instance.virtualization_type.as_deref() == Some("paravirtual");
    let mut selected: Vec<AttachedDisk> = Vec::new();
    for identifier in requested {
        let Some(volume) = lookup_volume(volumes, identifier)? else {
            continue;
        };
        let Some(attachment) = volume
            .attachments
            .iter()
            .find(|a| a.instance_id == instance.instance_id)
        else {
            continue;
        };
        if Some(attachment.device.as_str()) == instance.root_device_name.as_deref() {
            continue;
        }
        if let Some(earlier) = selected.iter().find(|d| d.disk_id == volume.volume_id) {
            return Err(Error::Provider(format!(
                "Disks {} and {identifier} are the same volume {}: name each disk once",
                earlier.identifier, volume.volume_id
            )));
        }
        selected.push(AttachedDisk {
            identifier: identifier.to_string(),
            disk_id: volume.volume_id.clone(),
            device: DeviceRef::Aws {
                device_name: attachment.device.clone(),
                volume_id: volume.volume_id.clone(),
                paravirtual,
            },
            source_snapshot: volume.source_snapshot().map(str::to_string),
        });
    }
    Ok(selected)
}

/// `None` when every snapshot of `ids` is among `found` and completed; else what is not
/// yet (`snap-1 (pending, 40%)`, `snap-2 (not found)`). A snapshot in state `error` is
/// [`Error::Failed`].
fn completion_state(ids: &[&str], found: &[Snapshot]) -> Result<Option<String>> {
    if let Some(failed) = found.iter().find(|s| s.state == "error") {
        let mut message = format!("Snapshot {} failed", failed.snapshot_id);
        if let Some(why) = failed.state_message.as_deref().filter(|m| !m.is_empty()) {
            message.push_str(&format!(": {why}"));
        }
        return Err(Error::Failed(message));
    }
    let waiting: Vec<String> = ids
        .iter()
        .filter_map(|id| match found.iter().find(|s| s.snapshot_id == *id) {
            None => Some(format!("{id} (not found)")),
            Some(s) if s.state == "completed" => None,
            Some(s) => Some(match s.progress.as_deref().filter(|p| !p.is_empty()) {
                Some(progress) => format!("{id} ({}, {progress})", s.state),
                None => format!("{id} ({})", s.state),
            }),
        })
        .collect();
    Ok((!waiting.is_empty()).then(|| waiting.join(", ")))
}

/// The pause after a completion check that found snapshots pending: 1 s, growing by half
/// each time, at most 15 s.
fn next_poll_interval(previous: Option<Duration>) -> Duration {
    match previous {
        None => Duration::from_secs(1),
        Some(d) => d.mul_f64(1.5).min(MAX_POLL_INTERVAL),
    }
}

#[async_trait]
impl SnapshotProvider for AwsSnapshots {
    fn cloud(&self) -> SnapshotCloud {
        SnapshotCloud::Aws
    }

    async fn instance_exists(&self, instance: &str) -> Result<bool> {
        Ok(self.find_instance(instance).await?.is_some())
    }

    async fn attached_disks(
        &self,
        instance: &str,
        disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>> {
        let instance = self.instance(instance).await?;
        let volumes = self.attached_volumes(&instance).await?;
        select_volumes(&instance, &volumes, disks)
    }

    async fn create_snapshot(
        &self,
        instance: &str,
        disk: &AttachedDisk,
        name: &str,
        mount: &Mount,
    ) -> Result<CreatedSnapshot> {
        let metadata = {
            let mut described = self.snapshot_instance.lock().await;
            match described.as_ref() {
                Some((identifier, metadata)) if identifier == instance => metadata.clone(),
                _ => {
                    let metadata = self.instance(instance).await?;
                    *described = Some((instance.to_string(), metadata.clone()));
                    metadata
                }
            }
        };
        let outpost = metadata.outpost();
        if let (Some(arn), Some(_)) = (outpost, &self.settings.lock) {
            return Err(Error::Provider(format!(
                "Cannot use aws_snapshot_lock_mode with instance {instance}: it is attached \
                 to Outpost {arn}, and AWS does not support locking local EBS snapshots on \
                 Outposts. Remove aws_snapshot_lock_mode, or take this backup from an \
                 instance that is not attached to an Outpost."
            )));
        }
        let mapping = metadata.ebs_mapping(&disk.disk_id).ok_or_else(|| {
            Error::Provider(format!(
                "Disk {} not attached to instance {instance}",
                disk.identifier
            ))
        })?;
        tracing::info!(
            "Taking snapshot '{name}' of disk '{}' ({})",
            disk.identifier,
            disk.disk_id
        );
        let mut tags = vec![("Name".to_string(), name.to_string())];
        tags.extend(self.settings.tags.iter().cloned());
        let snapshot = self
            .client
            .create_snapshot(&disk.disk_id, &tags, outpost)
            .await
            .map_err(|e| {
                let maybe_created = matches!(e, Ec2Error::Unreachable { .. });
                let error = Error::from(e);
                if maybe_created {
                    error.context(format!(
                        "Snapshot '{name}' of disk '{}' may or may not have been created",
                        disk.identifier
                    ))
                } else {
                    error
                }
            })?;
        if snapshot.state == "error" {
            let mut message = format!(
                "Snapshot '{name}' failed: {} is in state error",
                snapshot.snapshot_id
            );
            if let Some(why) = snapshot.state_message.as_deref().filter(|m| !m.is_empty()) {
                message.push_str(&format!(": {why}"));
            }
            // It exists all the same, and the caller never learns its ID: it goes now.
            if let Err(e) = self.client.delete_snapshot(&snapshot.snapshot_id).await {
                tracing::error!(
                    "Could not delete snapshot {} after its creation failed ({e}): delete it \
                     by hand",
                    snapshot.snapshot_id
                );
            }
            return Err(Error::Provider(message));
        }
        let mut meta = SnapshotMetadata::new(SnapshotCloud::Aws);
        meta.mount_point = PyValue::str(mount.mount_point.clone());
        meta.mount_options = PyValue::str(mount.mount_options.clone());
        meta.set_field("device_name", PyValue::str(mapping.device_name.clone()));
        meta.set_field("snapshot_id", PyValue::str(snapshot.snapshot_id.clone()));
        meta.set_field("snapshot_name", PyValue::str(name));
        meta.set_field(
            "snapshot_lock_mode",
            match &self.settings.lock {
                Some(lock) => PyValue::str(lock.mode.as_str()),
                None => PyValue::None,
            },
        );
        Ok(CreatedSnapshot {
            metadata: meta,
            owner: snapshot.owner_id.filter(|o| !o.is_empty()),
        })
    }

    async fn await_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        let ids = Self::snapshot_ids(snapshots)?;
        if ids.is_empty() {
            return Ok(());
        }
        tracing::info!("Waiting for completion of snapshots: {}", ids.join(", "));
        let limit = self.settings.await_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let mut interval = None;
        loop {
            let Some(waiting) = self.check_completed(&ids).await? else {
                return Ok(());
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::Failed(format!(
                    "Snapshots not completed within {} seconds: {waiting}",
                    limit.as_secs()
                )));
            }
            tracing::debug!("Snapshots not completed yet: {waiting}");
            let pause = next_poll_interval(interval);
            interval = Some(pause);
            tokio::time::sleep(pause.min(deadline - now)).await;
        }
    }

    /// Locks each snapshot when a lock is configured. Called once the snapshots are
    /// complete, not right after their creation as Barman does: a backup that fails in
    /// between then leaves no locked snapshot that its cleanup could not delete.
    async fn protect_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        let Some(lock) = &self.settings.lock else {
            return Ok(());
        };
        for id in Self::snapshot_ids(snapshots)? {
            let answer = self
                .client
                .lock_snapshot(id, lock)
                .await
                .map_err(|e| Error::from(e).context(format!("Cannot lock snapshot {id}")))?;
            tracing::info!("Snapshot locked: \n{}", answer.to_log_json());
        }
        Ok(())
    }

    fn snapshots_info(&self, created: &[CreatedSnapshot]) -> SnapshotsInfo {
        let mut info = SnapshotsInfo::new(SnapshotCloud::Aws);
        // Every snapshot has the same owner; Barman takes the last one's.
        info.set_info(
            "account_id",
            match created.last().and_then(|c| c.owner.clone()) {
                Some(owner) => PyValue::str(owner),
                None => PyValue::None,
            },
        );
        info.set_info("region", PyValue::str(self.region()));
        info.snapshots = created.iter().map(|c| c.metadata.clone()).collect();
        info
    }

    async fn snapshot_name(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<Option<String>> {
        // Without an ID nothing can be looked up, and no name can match.
        let Some(id) = snapshot.identifier() else {
            return Ok(Some(String::new()));
        };
        let params = Params::new()
            .list("SnapshotId", &[id])
            .list("Owner", &["self"]);
        match self.client.describe_snapshots(&params, None).await {
            Ok(found) => Ok(Some(
                found
                    .first()
                    .and_then(|s| model::tag_value(&s.tags, "Name"))
                    .unwrap_or("")
                    .to_string(),
            )),
            Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => Ok(None),
            // A corrupt ID is not a missing snapshot, but can never match either.
            Err(e) if e.code() == Some("InvalidSnapshotID.Malformed") => Ok(Some(String::new())),
            Err(e @ Ec2Error::Api { .. }) => Err(Error::Provider(format!(
                "Could not verify ownership of snapshot {id}: {}",
                e.error_dict()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_snapshot(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<()> {
        let id = snapshot.identifier().ok_or_else(|| {
            Error::Provider("Cannot delete a snapshot without snapshot_id".into())
        })?;
        match self.client.delete_snapshot(id).await {
            Ok(()) => {}
            Err(e) if e.code() == Some("InvalidSnapshot.NotFound") => {
                tracing::warn!("Snapshot {id} could not be found");
            }
            Err(e) if e.code() == Some("SnapshotLocked") => {
                return Err(Error::SnapshotLocked(format!(
                    "Locked snapshot: {id}.\nBefore deleting a snapshot, please ensure that \
                     it is not locked or that the lock has expired."
                )));
            }
            Err(e @ Ec2Error::Api { .. }) => {
                return Err(Error::Provider(format!(
                    "Deletion of snapshot {id} failed with error code {}: {}",
                    e.code().unwrap_or_default(),
                    e.error_dict()
                )));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!("Snapshot {id} deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::model::{BlockDeviceMapping, EbsDevice, Tag, VolumeAttachment};
    use super::*;

    fn instance(id: &str) -> Instance {
        Instance {
            instance_id: id.to_string(),
            root_device_name: Some("/dev/xvda".into()),
            virtualization_type: Some("hvm".into()),
            outpost_arn: None,
            block_device_mappings: vec![
                mapping("/dev/xvda", Some("vol-root")),
                mapping("/dev/sdf", Some("vol-data")),
                mapping("/dev/sdb", None),
                mapping("/dev/sdg", Some("vol-wal")),
            ],
            tags: vec![],
        }
    }

    fn mapping(device: &str, volume: Option<&str>) -> BlockDeviceMapping {
        BlockDeviceMapping {
            device_name: device.into(),
            ebs: volume.map(|v| EbsDevice {
                volume_id: v.into(),
            }),
        }
    }

    fn volume(id: &str, name: Option<&str>, attached: &[(&str, &str)]) -> Volume {
        Volume {
            volume_id: id.into(),
            snapshot_id: Some(String::new()),
            attachments: attached
                .iter()
                .map(|(instance, device)| VolumeAttachment {
                    volume_id: id.into(),
                    instance_id: instance.to_string(),
                    device: device.to_string(),
                })
                .collect(),
            tags: name
                .map(|n| {
                    vec![Tag {
                        key: "Name".into(),
                        value: n.into(),
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn volumes() -> Vec<Volume> {
        let mut data = volume("vol-data", Some("pgdata"), &[("i-1", "/dev/sdf")]);
        data.snapshot_id = Some("snap-source".into());
        vec![
            volume("vol-root", Some("root"), &[("i-1", "/dev/xvda")]),
            // Attached to another instance as well (multi-attach).
            volume(
                "vol-wal",
                Some("pgwal"),
                &[("i-2", "/dev/sdh"), ("i-1", "/dev/sdg")],
            ),
            data,
        ]
    }

    fn names(disks: &[AttachedDisk]) -> Vec<(&str, &str)> {
        disks
            .iter()
            .map(|d| (d.identifier.as_str(), d.disk_id.as_str()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_data_volume_in_mapping_order_without_root() {
        let disks = select_volumes(&instance("i-1"), &volumes(), None).unwrap();
        assert_eq!(
            names(&disks),
            [("vol-data", "vol-data"), ("vol-wal", "vol-wal")]
        );
        assert_eq!(
            disks[0].device,
            DeviceRef::Aws {
                device_name: "/dev/sdf".into(),
                volume_id: "vol-data".into(),
                paravirtual: false,
            }
        );
        assert_eq!(disks[0].source_snapshot.as_deref(), Some("snap-source"));
        assert_eq!(disks[1].source_snapshot, None);
        // The attachment of this instance gives the device name.
        assert!(matches!(&disks[1].device,
            DeviceRef::Aws { device_name, .. } if device_name == "/dev/sdg"));
    }

    #[test]
    fn named_volumes_by_id_or_name_in_requested_order() {
        let requested = strings(&["pgwal", "vol-data", "missing", "root", "pgwal"]);
        let disks = select_volumes(&instance("i-1"), &volumes(), Some(&requested)).unwrap();
        // Missing and root volumes are left out; a name given twice counts once.
        assert_eq!(
            names(&disks),
            [("pgwal", "vol-wal"), ("vol-data", "vol-data")]
        );
        let mut paravirtual = instance("i-1");
        paravirtual.virtualization_type = Some("paravirtual".into());
        let disks = select_volumes(&paravirtual, &volumes(), Some(&strings(&["pgdata"]))).unwrap();
        assert!(matches!(
            disks[0].device,
            DeviceRef::Aws {
                paravirtual: true,
                ..
            }
        ));
    }

    #[test]
    fn volumes_of_other_instances_are_not_attached() {
        let disks =
            select_volumes(&instance("i-3"), &volumes(), Some(&strings(&["pgwal"]))).unwrap();
        assert!(disks.is_empty());
    }

    #[test]
    fn ids_win_over_names_and_duplicate_names_are_errors() {
        let mut all = volumes();
        // A volume whose Name tag is another volume's ID: the ID wins.
        all.push(volume("vol-x", Some("vol-data"), &[("i-1", "/dev/sdi")]));
        let disks = select_volumes(&instance("i-1"), &all, Some(&strings(&["vol-data"]))).unwrap();
        assert_eq!(names(&disks), [("vol-data", "vol-data")]);
        all.push(volume("vol-y", Some("pgdata"), &[("i-1", "/dev/sdj")]));
        let err = select_volumes(&instance("i-1"), &all, Some(&strings(&["pgdata"]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Duplicate volumes found matching pgdata: vol-data, vol-y"
        );
    }

    #[test]
    fn one_volume_named_twice_is_refused() {
        let err = select_volumes(
            &instance("i-1"),
            &volumes(),
            Some(&strings(&["vol-data", "pgdata"])),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Provider(_)));
        assert_eq!(
            err.to_string(),
            "Disks vol-data and pgdata are the same volume vol-data: name each disk once"
        );
    }

    fn reservation(id: &str, instances: &[&str]) -> Reservation {
        Reservation {
            reservation_id: id.into(),
            instances: instances.iter().map(|i| instance(i)).collect(),
        }
    }

    #[test]
    fn instance_must_be_unique() {
        assert_eq!(select_instance("x", vec![]).unwrap(), None);
        assert_eq!(
            select_instance("x", vec![reservation("r-1", &[])]).unwrap(),
            None
        );
        assert_eq!(
            select_instance("x", vec![reservation("r-1", &["i-1"])])
                .unwrap()
                .map(|i| i.instance_id),
            Some("i-1".to_string())
        );
        assert_eq!(
            select_instance("x", vec![reservation("r-1", &["i-1", "i-2"])])
                .unwrap_err()
                .to_string(),
            "Cannot find a unique EC2 instance matching x"
        );
        assert_eq!(
            select_instance(
                "x",
                vec![reservation("r-1", &["i-1"]), reservation("r-2", &["i-2"])]
            )
            .unwrap_err()
            .to_string(),
            "Cannot find a unique EC2 reservation containing instance x"
        );
    }

    fn snapshot(id: &str, state: &str, progress: Option<&str>) -> Snapshot {
        Snapshot {
            snapshot_id: id.into(),
            volume_id: "vol-1".into(),
            state: state.into(),
            state_message: None,
            progress: progress.map(str::to_string),
            owner_id: Some("123456789012".into()),
            tags: vec![],
        }
    }

    #[test]
    fn completion_needs_every_snapshot_completed() {
        let ids = ["snap-1", "snap-2"];
        assert_eq!(
            completion_state(
                &ids,
                &[
                    snapshot("snap-1", "completed", Some("100%")),
                    snapshot("snap-2", "completed", None)
                ]
            )
            .unwrap(),
            None
        );
        assert_eq!(
            completion_state(&ids, &[snapshot("snap-1", "pending", Some("40%"))]).unwrap(),
            Some("snap-1 (pending, 40%), snap-2 (not found)".to_string())
        );
        let mut failed = snapshot("snap-2", "error", None);
        failed.state_message = Some("Internal error".into());
        let err =
            completion_state(&ids, &[snapshot("snap-1", "pending", None), failed]).unwrap_err();
        assert!(matches!(err, Error::Failed(_)));
        assert_eq!(err.to_string(), "Snapshot snap-2 failed: Internal error");
    }

    #[test]
    fn polling_starts_fast_and_slows_to_barmans_interval() {
        let mut intervals = Vec::new();
        let mut last = None;
        for _ in 0..10 {
            let next = next_poll_interval(last);
            intervals.push(next.as_millis());
            last = Some(next);
        }
        assert_eq!(
            intervals,
            [
                1000, 1500, 2250, 3375, 5062, 7593, 11390, 15000, 15000, 15000
            ]
        );
    }

    fn provider(settings: AwsSnapshotSettings) -> AwsSnapshots {
        let creds: object_store::aws::AwsCredentialProvider = std::sync::Arc::new(
            object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
                key_id: "test".into(),
                secret_key: "test".into(),
                token: None,
            }),
        );
        let client = Ec2Client::new("http://127.0.0.1:9", "eu-west-3", creds).unwrap();
        AwsSnapshots::with_client(settings, client)
    }

    #[test]
    fn snapshots_info_has_owner_of_last_and_region() {
        let provider = provider(AwsSnapshotSettings::default());
        assert_eq!(provider.region(), "eu-west-3");
        let mut first = SnapshotMetadata::new(SnapshotCloud::Aws);
        first.set_field("snapshot_id", PyValue::str("snap-1"));
        let mut second = first.clone();
        second.set_field("snapshot_id", PyValue::str("snap-2"));
        let created = [
            CreatedSnapshot {
                metadata: first,
                owner: Some("111".into()),
            },
            CreatedSnapshot {
                metadata: second,
                owner: Some("222".into()),
            },
        ];
        let info = provider.snapshots_info(&created);
        assert_eq!(info.provider(), SnapshotCloud::Aws);
        assert_eq!(info.info("account_id"), Some(&PyValue::str("222")));
        assert_eq!(info.info("region"), Some(&PyValue::str("eu-west-3")));
        assert_eq!(info.snapshots.len(), 2);
        assert_eq!(info.snapshots[1].identifier(), Some("snap-2"));
        let empty = provider.snapshots_info(&[]);
        assert_eq!(empty.info("account_id"), Some(&PyValue::None));
    }

    #[tokio::test]
    async fn nothing_to_wait_for_or_lock_without_calls() {
        // The endpoint is unreachable: these succeed only because they call nothing.
        let provider = provider(AwsSnapshotSettings::default());
        provider.await_snapshots(&[]).await.unwrap();
        let mut meta = SnapshotMetadata::new(SnapshotCloud::Aws);
        meta.set_field("snapshot_id", PyValue::str("snap-1"));
        provider.protect_snapshots(&[meta.clone()]).await.unwrap();
        // A snapshot without ID has no name that could match a backup.
        let info = SnapshotsInfo::new(SnapshotCloud::Aws);
        let no_id = SnapshotMetadata::new(SnapshotCloud::Aws);
        assert_eq!(
            provider.snapshot_name(&no_id, &info).await.unwrap(),
            Some(String::new())
        );
        assert!(provider.delete_snapshot(&no_id, &info).await.is_err());
    }

    mod scripted {
        //! The provider against a scripted endpoint: what moto cannot show (locks, retries,
        //! failed snapshots, errors).
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::super::fake::{FakeEc2, Form, error, param};
        use super::*;

        fn instance_xml(outpost: Option<&str>) -> String {
            let outpost = outpost
                .map(|a| format!("<outpostArn>{a}</outpostArn>"))
                .unwrap_or_default();
            format!(
                "<DescribeInstancesResponse><reservationSet><item><reservationId>r-1</reservationId>\
                 <instancesSet><item><instanceId>i-1</instanceId><rootDeviceName>/dev/xvda</rootDeviceName>\
                 <blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-root</volumeId></ebs></item>\
                 <item><deviceName>/dev/sdf</deviceName><ebs><volumeId>vol-1</volumeId></ebs></item></blockDeviceMapping>\
                 <virtualizationType>hvm</virtualizationType>{outpost}</item></instancesSet></item></reservationSet>\
                 </DescribeInstancesResponse>"
            )
        }

        fn snapshot_xml(root: &str, id: &str, state: &str) -> String {
            format!(
                "<{root}><snapshotId>{id}</snapshotId><volumeId>vol-1</volumeId><status>{state}</status>\
                 <ownerId>123456789012</ownerId></{root}>"
            )
        }

        fn snapshots_xml(items: &[(&str, &str)]) -> String {
            let items: String = items
                .iter()
                .map(|(id, state)| snapshot_xml("item", id, state))
                .collect();
            format!(
                "<DescribeSnapshotsResponse><snapshotSet>{items}</snapshotSet></DescribeSnapshotsResponse>"
            )
        }

        fn disk() -> AttachedDisk {
            AttachedDisk {
                identifier: "pgdata".into(),
                disk_id: "vol-1".into(),
                device: DeviceRef::Aws {
                    device_name: "/dev/sdf".into(),
                    volume_id: "vol-1".into(),
                    paravirtual: false,
                },
                source_snapshot: None,
            }
        }

        fn mount() -> Mount {
            Mount {
                mount_point: "/pg".into(),
                mount_options: "rw".into(),
            }
        }

        fn lock() -> SnapshotLock {
            SnapshotLock {
                mode: LockMode::Compliance,
                duration: Some(3),
                cool_off_period: Some(1),
                expiration_date: None,
            }
        }

        fn meta(id: &str) -> SnapshotMetadata {
            let mut meta = SnapshotMetadata::new(SnapshotCloud::Aws);
            meta.set_field("snapshot_id", PyValue::str(id));
            meta
        }

        fn action(form: &Form) -> &str {
            param(form, "Action").unwrap_or_default()
        }

        #[tokio::test]
        async fn throttling_is_retried_and_malformed_ids_are_names() {
            let throttled = Arc::new(AtomicUsize::new(0));
            let count = throttled.clone();
            let fake = FakeEc2::start(move |form| {
                if param(form, "InstanceId.1").is_some() {
                    return (400, error("InvalidInstanceID.Malformed", "Invalid id"));
                }
                if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    return (
                        503,
                        error("RequestLimitExceeded", "Request limit exceeded."),
                    );
                }
                (200, instance_xml(None))
            })
            .await;
            let provider = AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client());
            assert!(provider.instance_exists("i-not-an-id").await.unwrap());
            let requests = fake.requests();
            assert_eq!(requests.len(), 3);
            assert_eq!(param(&requests[1], "Filter.1.Name"), Some("tag:Name"));
            assert_eq!(param(&requests[1], "Filter.1.Value.1"), Some("i-not-an-id"));
            assert_eq!(
                param(&requests[1], "Filter.2.Name"),
                Some("instance-state-name")
            );
            assert_eq!(param(&requests[1], "Filter.2.Value.5"), Some("stopped"));
            assert_eq!(requests[1], requests[2]);
        }

        #[tokio::test]
        async fn errors_after_retries_name_the_code() {
            let fake = FakeEc2::start(|_| (503, error("RequestLimitExceeded", "slow down"))).await;
            let provider = AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client());
            let err = provider.instance_exists("pg").await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "An error occurred (RequestLimitExceeded) when calling the DescribeInstances operation (reached max retries: 2): slow down"
            );
            assert_eq!(fake.requests().len(), 3);
        }

        #[tokio::test]
        async fn create_snapshot_is_not_repeated_unless_throttled() {
            let creates = Arc::new(AtomicUsize::new(0));
            let count = creates.clone();
            let fake = FakeEc2::start(move |form| match action(form) {
                "DescribeInstances" => (200, instance_xml(None)),
                "CreateSnapshot" => match count.fetch_add(1, Ordering::SeqCst) {
                    0 => (400, error("RequestLimitExceeded", "slow down")),
                    1 => (
                        200,
                        snapshot_xml("CreateSnapshotResponse", "snap-1", "pending"),
                    ),
                    _ => (500, error("InternalError", "oops")),
                },
                _ => (400, error("Unexpected", "")),
            })
            .await;
            let settings = AwsSnapshotSettings {
                lock: Some(lock()),
                tags: vec![("k".into(), "v".into())],
                ..Default::default()
            };
            let provider = AwsSnapshots::with_client(settings, fake.client());
            let created = provider
                .create_snapshot("i-1", &disk(), "pgdata-20250101t000000", &mount())
                .await
                .unwrap();
            assert_eq!(creates.load(Ordering::SeqCst), 2);
            assert_eq!(created.owner.as_deref(), Some("123456789012"));
            let meta = &created.metadata;
            assert_eq!(meta.field("device_name"), Some(&PyValue::str("/dev/sdf")));
            assert_eq!(meta.field("snapshot_id"), Some(&PyValue::str("snap-1")));
            assert_eq!(
                meta.field("snapshot_name"),
                Some(&PyValue::str("pgdata-20250101t000000"))
            );
            assert_eq!(
                meta.field("snapshot_lock_mode"),
                Some(&PyValue::str("compliance"))
            );
            let create = fake
                .requests()
                .into_iter()
                .rfind(|f| action(f) == "CreateSnapshot")
                .unwrap();
            assert_eq!(param(&create, "VolumeId"), Some("vol-1"));
            assert_eq!(param(&create, "TagSpecification.1.Tag.2.Key"), Some("k"));
            assert_eq!(param(&create, "OutpostArn"), None);
            // Creating is never locking.
            assert!(!fake.actions().iter().any(|a| a == "LockSnapshot"));

            // A server error may have come after the snapshot was made: not repeated.
            let err = provider
                .create_snapshot("i-1", &disk(), "pgdata-x", &mount())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Provider(_)), "{err:?}");
            assert!(err.to_string().contains("(InternalError)"), "{err}");
            assert_eq!(creates.load(Ordering::SeqCst), 3);
        }

        #[tokio::test]
        async fn failed_snapshots_and_outposts() {
            let fake = FakeEc2::start(|form| match action(form) {
                "DescribeInstances" => (200, instance_xml(Some("arn:aws:outposts:op-1"))),
                "CreateSnapshot" => (
                    200,
                    snapshot_xml("CreateSnapshotResponse", "snap-9", "error"),
                ),
                _ => (400, error("Unexpected", "")),
            })
            .await;
            let locked = AwsSnapshots::with_client(
                AwsSnapshotSettings {
                    lock: Some(lock()),
                    ..Default::default()
                },
                fake.client(),
            );
            let err = locked
                .create_snapshot("i-1", &disk(), "pgdata-x", &mount())
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Cannot use aws_snapshot_lock_mode with instance i-1: it is attached to Outpost \
                 arn:aws:outposts:op-1, and AWS does not support locking local EBS snapshots on \
                 Outposts. Remove aws_snapshot_lock_mode, or take this backup from an instance \
                 that is not attached to an Outpost."
            );
            let unlocked = AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client());
            let err = unlocked
                .create_snapshot("i-1", &disk(), "pgdata-x", &mount())
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Snapshot 'pgdata-x' failed: snap-9 is in state error"
            );
            let create = fake
                .requests()
                .into_iter()
                .rfind(|f| action(f) == "CreateSnapshot")
                .unwrap();
            assert_eq!(param(&create, "OutpostArn"), Some("arn:aws:outposts:op-1"));
            let mut elsewhere = disk();
            elsewhere.identifier = "other".into();
            elsewhere.disk_id = "vol-2".into();
            assert_eq!(
                unlocked
                    .create_snapshot("i-1", &elsewhere, "other-x", &mount())
                    .await
                    .unwrap_err()
                    .to_string(),
                "Disk other not attached to instance i-1"
            );
        }

        #[tokio::test]
        async fn waits_for_completion() {
            let polls = Arc::new(AtomicUsize::new(0));
            let count = polls.clone();
            let fake = FakeEc2::start(move |form| match param(form, "SnapshotId.1") {
                Some("snap-bad") => (200, snapshots_xml(&[("snap-bad", "error")])),
                Some("snap-slow") => (200, snapshots_xml(&[("snap-slow", "pending")])),
                _ => match count.fetch_add(1, Ordering::SeqCst) {
                    0 => (400, error("InvalidSnapshot.NotFound", "not yet")),
                    1 => (
                        200,
                        snapshots_xml(&[("snap-1", "completed"), ("snap-2", "pending")]),
                    ),
                    _ => (
                        200,
                        snapshots_xml(&[("snap-1", "completed"), ("snap-2", "completed")]),
                    ),
                },
            })
            .await;
            let settings = AwsSnapshotSettings {
                await_timeout: Duration::from_secs(30),
                ..Default::default()
            };
            let provider = AwsSnapshots::with_client(settings, fake.client());
            provider
                .await_snapshots(&[meta("snap-1"), meta("snap-2")])
                .await
                .unwrap();
            assert_eq!(polls.load(Ordering::SeqCst), 3);
            let last = fake.requests().pop().unwrap();
            assert_eq!(param(&last, "SnapshotId.2"), Some("snap-2"));
            assert_eq!(param(&last, "MaxResults"), None);
            let err = provider
                .await_snapshots(&[meta("snap-bad")])
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Failed(_)));
            assert_eq!(err.to_string(), "Snapshot snap-bad failed");
            let impatient =
                AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client());
            let err = impatient
                .await_snapshots(&[meta("snap-slow")])
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "Snapshots not completed within 0 seconds: snap-slow (pending)"
            );
        }

        #[tokio::test]
        async fn locks_once_complete_with_the_options_set() {
            let fake = FakeEc2::start(|form| match param(form, "SnapshotId") {
                Some("snap-1") => (
                    200,
                    "<LockSnapshotResponse><snapshotId>snap-1</snapshotId><lockState>compliance-cooloff</lockState>\
                     <lockDuration>3</lockDuration><coolOffPeriod>1</coolOffPeriod></LockSnapshotResponse>"
                        .into(),
                ),
                _ => (400, error("IncorrectState", "snapshot is pending")),
            })
            .await;
            let provider = AwsSnapshots::with_client(
                AwsSnapshotSettings {
                    lock: Some(lock()),
                    ..Default::default()
                },
                fake.client(),
            );
            provider.protect_snapshots(&[meta("snap-1")]).await.unwrap();
            let request = fake.requests().pop().unwrap();
            assert_eq!(
                request,
                [
                    ("Action", "LockSnapshot"),
                    ("Version", "2016-11-15"),
                    ("SnapshotId", "snap-1"),
                    ("LockMode", "compliance"),
                    ("LockDuration", "3"),
                    ("CoolOffPeriod", "1"),
                ]
                .map(|(n, v)| (n.to_string(), v.to_string()))
            );
            let err = provider
                .protect_snapshots(&[meta("snap-2")])
                .await
                .unwrap_err();
            assert!(matches!(err.root(), Error::Provider(_)));
            assert_eq!(
                err.to_string(),
                "Cannot lock snapshot snap-2: An error occurred (IncorrectState) when calling the LockSnapshot operation: snapshot is pending"
            );
        }

        #[tokio::test]
        async fn names_and_deletions_follow_barman() {
            let fake = FakeEc2::start(|form| {
                let id = param(form, "SnapshotId.1").or(param(form, "SnapshotId"));
                match (action(form), id) {
                    ("DescribeSnapshots", Some("snap-bad")) => {
                        (400, error("InvalidSnapshotID.Malformed", "bad id"))
                    }
                    ("DescribeSnapshots", Some("snap-deny")) => {
                        (403, error("UnauthorizedOperation", "You are not 'allowed'"))
                    }
                    ("DescribeSnapshots", Some("snap-none")) => (200, snapshots_xml(&[])),
                    ("DescribeSnapshots", _) => (200, snapshots_xml(&[("snap-1", "completed")])),
                    ("DeleteSnapshot", Some("snap-locked")) => {
                        (400, error("SnapshotLocked", "locked"))
                    }
                    ("DeleteSnapshot", Some("snap-deny")) => {
                        (403, error("UnauthorizedOperation", "no"))
                    }
                    ("DeleteSnapshot", _) => (
                        200,
                        "<DeleteSnapshotResponse><return>true</return></DeleteSnapshotResponse>"
                            .into(),
                    ),
                    _ => (400, error("Unexpected", "")),
                }
            })
            .await;
            let provider = AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client());
            let info = SnapshotsInfo::new(SnapshotCloud::Aws);
            assert_eq!(
                provider
                    .snapshot_name(&meta("snap-bad"), &info)
                    .await
                    .unwrap(),
                Some(String::new())
            );
            assert_eq!(
                provider
                    .snapshot_name(&meta("snap-none"), &info)
                    .await
                    .unwrap(),
                Some(String::new())
            );
            // No Name tag.
            assert_eq!(
                provider
                    .snapshot_name(&meta("snap-1"), &info)
                    .await
                    .unwrap(),
                Some(String::new())
            );
            let owner = fake.requests().pop().unwrap();
            assert_eq!(param(&owner, "Owner.1"), Some("self"));
            assert_eq!(
                provider
                    .snapshot_name(&meta("snap-deny"), &info)
                    .await
                    .unwrap_err()
                    .to_string(),
                "Could not verify ownership of snapshot snap-deny: {'Code': 'UnauthorizedOperation', 'Message': \"You are not 'allowed'\"}"
            );
            provider
                .delete_snapshot(&meta("snap-1"), &info)
                .await
                .unwrap();
            let err = provider
                .delete_snapshot(&meta("snap-locked"), &info)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::SnapshotLocked(_)));
            assert_eq!(
                err.to_string(),
                "Locked snapshot: snap-locked.\nBefore deleting a snapshot, please ensure that it is not locked or that the lock has expired."
            );
            let err = provider
                .delete_snapshot(&meta("snap-deny"), &info)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Provider(_)));
            assert_eq!(
                err.to_string(),
                "Deletion of snapshot snap-deny failed with error code UnauthorizedOperation: {'Code': 'UnauthorizedOperation', 'Message': 'no'}"
            );
        }

        #[tokio::test]
        async fn volumes_are_read_to_the_last_page() {
            let fake = FakeEc2::start(|form| match (action(form), param(form, "NextToken")) {
                ("DescribeInstances", _) => (200, instance_xml(None)),
                ("DescribeVolumes", None) => (
                    200,
                    "<DescribeVolumesResponse><volumeSet><item><volumeId>vol-root</volumeId><attachmentSet><item>\
                     <instanceId>i-1</instanceId><device>/dev/xvda</device></item></attachmentSet></item></volumeSet>\
                     <nextToken>page-2</nextToken></DescribeVolumesResponse>"
                        .into(),
                ),
                ("DescribeVolumes", Some("page-2")) => (
                    200,
                    "<DescribeVolumesResponse><volumeSet><item><volumeId>vol-1</volumeId><attachmentSet><item>\
                     <instanceId>i-1</instanceId><device>/dev/sdf</device></item></attachmentSet></item></volumeSet>\
                     </DescribeVolumesResponse>"
                        .into(),
                ),
                _ => (400, error("Unexpected", "")),
            })
            .await;
            let provider = AwsSnapshots::with_client(AwsSnapshotSettings::default(), fake.client())
                .with_page_size(5);
            let disks = provider.attached_disks("pg", None).await.unwrap();
            assert_eq!(names(&disks), [("vol-1", "vol-1")]);
            let requests = fake.requests();
            let volumes: Vec<&Form> = requests
                .iter()
                .filter(|f| action(f) == "DescribeVolumes")
                .collect();
            assert_eq!(volumes.len(), 2);
            assert_eq!(
                param(volumes[0], "Filter.1.Name"),
                Some("attachment.instance-id")
            );
            assert_eq!(param(volumes[0], "Filter.1.Value.1"), Some("i-1"));
            assert_eq!(param(volumes[0], "MaxResults"), Some("5"));
            assert_eq!(param(volumes[1], "NextToken"), Some("page-2"));
        }
    }
}
