//! Cloud disk snapshots: the provider seam shared by snapshot backups, their recovery
//! preparation and their deletion (Barman: `barman/cloud.py` `CloudSnapshotInterface`,
//! `barman/cloud_providers/*`).
//!
//! A snapshot backup is PostgreSQL's backup mode around one snapshot per listed disk; the
//! backup label and backup.info go to the catalog as for any backup, the disks' data never
//! leaves the cloud. Everything a flow needs from a cloud is in [`SnapshotProvider`];
//! everything it needs from the machine the disks are attached to (which device is
//! mounted where) goes through [`host::Host`], so that the same code serves
//! `barman-cloud-backup` (local commands) and, later, a Barman server (commands over ssh).
//!
//! Modules: [`host`] (commands on the disks' machine), [`mounts`] (findmnt and device-name
//! resolution, as Barman does it), [`aws`] (EBS through the EC2 Query API).

pub mod aws;
pub mod azure;
#[cfg(test)]
pub(crate) mod fake;
pub mod gcp;
pub mod host;
pub mod mounts;
pub mod rest;

use std::sync::Arc;

use async_trait::async_trait;

use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::Result;
pub use mounts::Mount;

/// How a disk appears on the machine it is attached to: what mount discovery starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRef {
    /// EBS: the attachment's device name (`/dev/sdf`), the volume ID (NVMe serial
    /// numbers carry it) and whether the instance is paravirtual (`/dev/hdX` names) or HVM
    /// (`/dev/xvdX`).
    Aws {
        device_name: String,
        volume_id: String,
        paravirtual: bool,
    },
    /// GCP: the attached disk's device name (`/dev/disk/by-id/google-<name>`).
    Gcp { device_name: String },
    /// Azure: the data disk's LUN (`/dev/disk/azure/scsi1/lun<n>`).
    Azure { lun: i64 },
}

/// A disk attached to an instance, as its provider describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedDisk {
    /// What the user named it by (a volume ID or `Name` tag on AWS, a disk name elsewhere),
    /// or the provider's own ID when every disk of an instance is listed. Snapshot names
    /// are `<identifier>-<backup id>`.
    pub identifier: String,
    /// The provider's ID of the disk (AWS volume ID, GCP/Azure disk name).
    pub disk_id: String,
    pub device: DeviceRef,
    /// The snapshot the disk was created from, as `snapshots_info` names snapshots (AWS
    /// snapshot ID, GCP/Azure snapshot name); how recovery finds the clones of a backup.
    pub source_snapshot: Option<String>,
}

/// A snapshot just created: its metadata for `snapshots_info`, and what the provider told
/// about the account that owns it (AWS: `OwnerId`).
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedSnapshot {
    pub metadata: SnapshotMetadata,
    pub owner: Option<String>,
}

/// One cloud's disk snapshots. Implementations are stateless between calls apart from
/// their clients and settings, and safe to call concurrently.
#[async_trait]
pub trait SnapshotProvider: Send + Sync {
    fn cloud(&self) -> SnapshotCloud;

    /// Whether the instance exists. Ambiguities (several instances match) and API
    /// failures are errors, with Barman's messages.
    async fn instance_exists(&self, instance: &str) -> Result<bool>;

    /// The disks attached to `instance` that `disks` names, or every disk Barman would
    /// consider when `disks` is `None` (AWS: never the root volume; Azure: data disks
    /// only; GCP: every attached disk), in the order Barman snapshots and records them
    /// (AWS: the order named, else the block-device mappings'; GCP/Azure: the instance's
    /// attachment order). A named
    /// disk that is not attached is simply absent: callers decide whether that is an error.
    async fn attached_disks(
        &self,
        instance: &str,
        disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>>;

    /// Creates a snapshot named `name` of `disk` (mounted at `mount` on the source
    /// machine) and returns as soon as its point in time is fixed: writes made to the disk
    /// afterwards are not in it, although the snapshot may not be complete yet.
    async fn create_snapshot(
        &self,
        instance: &str,
        disk: &AttachedDisk,
        name: &str,
        mount: &Mount,
    ) -> Result<CreatedSnapshot>;

    /// Waits until every snapshot is complete and usable; an error when one failed or the
    /// provider's time limit passed.
    async fn await_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()>;

    /// Protections applied once the snapshots are complete (AWS snapshot locks). The
    /// default does nothing.
    async fn protect_snapshots(&self, _snapshots: &[SnapshotMetadata]) -> Result<()> {
        Ok(())
    }

    /// The `snapshots_info` of a backup made of `created`.
    fn snapshots_info(&self, created: &[CreatedSnapshot]) -> SnapshotsInfo;

    /// The snapshot's name as the provider holds it now (AWS: its `Name` tag, "" without
    /// one), `None` when it does not exist: what deletion checks ownership against, never
    /// backup.info.
    async fn snapshot_name(
        &self,
        snapshot: &SnapshotMetadata,
        info: &SnapshotsInfo,
    ) -> Result<Option<String>>;

    /// Deletes the snapshot; one already gone is not an error. A lock that forbids it is
    /// [`crate::Error::SnapshotLocked`].
    async fn delete_snapshot(
        &self,
        snapshot: &SnapshotMetadata,
        info: &SnapshotsInfo,
    ) -> Result<()>;
}

/// `<disk identifier>-<backup id in lower case>`: the name Barman gives a backup's snapshot
/// of a disk (AWS `Name` tag, GCP/Azure resource name).
pub fn snapshot_name(disk_identifier: &str, backup_id: &str) -> String {
    format!("{disk_identifier}-{}", backup_id.to_lowercase())
}

/// Whether a snapshot named `name` was made for `backup_id` (Barman 3.20.1's ownership
/// rule: the name ends with `-<backup id>`, case aside).
pub fn name_matches_backup(name: &str, backup_id: &str) -> bool {
    name.to_lowercase()
        .ends_with(&format!("-{}", backup_id.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cached_providers_build_one_provider_per_account() {
        let cloud = fake::FakeCloud::aws("eu-west-1");
        let cached = CachedProviders::new(cloud.clone());
        let info = cloud.snapshots_info_of(&[]);
        let mut elsewhere = info.clone();
        elsewhere.set_info(
            "region",
            crate::catalog::pyliteral::PyValue::str("us-east-2"),
        );
        for info in [&info, &info, &elsewhere, &info] {
            cached.for_backup(info).await.unwrap();
        }
        let asked: Vec<_> = cloud
            .requests()
            .iter()
            .map(|i| {
                i.info("region")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(
            asked,
            [Some("eu-west-1".to_string()), Some("us-east-2".to_string())]
        );
    }

    #[test]
    fn names_and_ownership_follow_barman() {
        assert_eq!(
            snapshot_name("pgdata", "20250304T101112"),
            "pgdata-20250304t101112"
        );
        assert!(name_matches_backup(
            "PGDATA-20250304t101112",
            "20250304T101112"
        ));
        assert!(!name_matches_backup(
            "pgdata-20250304t101113",
            "20250304T101112"
        ));
        assert!(!name_matches_backup("20250304t101112", "20250304T101112"));
        assert!(!name_matches_backup("", "20250304T101112"));
    }
}

/// Settings that complete what a backup's `snapshots_info` records, from the command line
/// (or a server's configuration).
#[derive(Debug, Clone, Default)]
pub struct ProviderOptions {
    pub aws: aws::AwsSnapshotSettings,
    /// `--gcp-zone` (`--snapshot-recovery-zone`): where the recovery instance is.
    pub gcp_zone: Option<String>,
    /// `--azure-resource-group`: where the recovery VM and its disks are (deletion uses the
    /// one `snapshots_info` recorded).
    pub azure_resource_group: Option<String>,
    /// `--azure-credential` (default: the default chain).
    pub azure_credential: Option<crate::storage::AzureCredentialKind>,
}

impl ProviderOptions {
    /// The options a recovery preparation on `cloud` needs and lacks, by Barman's names.
    pub fn missing_for_restore(&self, cloud: SnapshotCloud) -> Vec<&'static str> {
        match cloud {
            SnapshotCloud::Gcp if self.gcp_zone.is_none() => vec!["gcp_zone"],
            SnapshotCloud::Azure if self.azure_resource_group.is_none() => {
                vec!["azure_resource_group"]
            }
            _ => Vec::new(),
        }
    }
}

/// Where the flows get providers from: [`ProviderOptions`] builds real ones; tests give
/// fakes.
#[async_trait]
pub trait ProviderSource: Send + Sync {
    /// The provider holding the snapshots `info` describes.
    async fn for_backup(&self, info: &SnapshotsInfo) -> Result<Arc<dyn SnapshotProvider>>;
}

#[async_trait]
impl ProviderSource for ProviderOptions {
    async fn for_backup(&self, info: &SnapshotsInfo) -> Result<Arc<dyn SnapshotProvider>> {
        provider_for_backup(info, self).await
    }
}

/// A [`ProviderSource`] that builds one provider per cloud account (the cloud and its
/// `provider_info`) and hands it out again: a deletion asks while planning, then while
/// deleting, and building one may mean a credential chain or a token request.
pub struct CachedProviders<S> {
    source: S,
    built: tokio::sync::Mutex<Vec<(String, Arc<dyn SnapshotProvider>)>>,
}

impl<S: ProviderSource> CachedProviders<S> {
    pub fn new(source: S) -> Self {
        CachedProviders {
            source,
            built: tokio::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl<S: ProviderSource> ProviderSource for CachedProviders<S> {
    async fn for_backup(&self, info: &SnapshotsInfo) -> Result<Arc<dyn SnapshotProvider>> {
        let cloud = info.provider();
        let account = format!(
            "{}{:?}",
            cloud.as_str(),
            cloud
                .info_fields()
                .iter()
                .map(|key| info.info(key))
                .collect::<Vec<_>>()
        );
        let mut built = self.built.lock().await;
        if let Some((_, provider)) = built.iter().find(|(key, _)| *key == account) {
            return Ok(provider.clone());
        }
        let provider = self.source.for_backup(info).await?;
        built.push((account, provider.clone()));
        Ok(provider)
    }
}

/// The provider holding the snapshots of a backup: the cloud and its account-level fields
/// come from `snapshots_info` (AWS: the region, unless `options` gives one), the rest from
/// `options`.
pub async fn provider_for_backup(
    info: &SnapshotsInfo,
    options: &ProviderOptions,
) -> Result<Arc<dyn SnapshotProvider>> {
    match info.provider() {
        SnapshotCloud::Aws => {
            let mut settings = options.aws.clone();
            if settings.region.is_none() {
                settings.region = info
                    .info("region")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
            }
            Ok(Arc::new(aws::AwsSnapshots::new(settings).await?))
        }
        SnapshotCloud::Gcp => {
            let project = info
                .info("project")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    crate::Error::Config(
                        "backup_info has snapshot provider 'gcp' but project is not set".into(),
                    )
                })?;
            Ok(Arc::new(
                gcp::GcpSnapshots::new(gcp::GcpSnapshotSettings {
                    project: project.to_string(),
                    zone: options.gcp_zone.clone(),
                })
                .await?,
            ))
        }
        SnapshotCloud::Azure => {
            // The subscription is always the backup's; the resource group and credential
            // come from the options (Barman: recovery resources may be elsewhere).
            let subscription = info
                .info("subscription_id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    crate::Error::Config(
                        "backup_info has snapshot provider 'azure' but subscription_id is not \
                         set"
                        .into(),
                    )
                })?;
            let mut settings = azure::AzureSnapshotSettings {
                subscription_id: subscription.to_string(),
                resource_group: options.azure_resource_group.clone(),
                ..Default::default()
            };
            if let Some(credential) = options.azure_credential {
                settings.credential = credential;
            }
            Ok(Arc::new(azure::AzureSnapshots::new(settings).await?))
        }
    }
}
