//! AWS EBS snapshots through the EC2 Query API (Barman: `barman/cloud_providers/aws_s3.py`
//! `AwsCloudSnapshotInterface`, `AwsVolumeMetadata`).
//!
//! PLACEHOLDER: the EC2 client and the provider are being written; every call fails.

use std::time::Duration;

use async_trait::async_trait;

use super::{AttachedDisk, CreatedSnapshot, Mount, SnapshotProvider};
use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};

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

/// EBS snapshots of one account and region.
pub struct AwsSnapshots {
    settings: AwsSnapshotSettings,
}

impl AwsSnapshots {
    pub async fn new(settings: AwsSnapshotSettings) -> Result<Self> {
        Ok(AwsSnapshots { settings })
    }

    /// The region every call goes to.
    pub fn region(&self) -> &str {
        self.settings.region.as_deref().unwrap_or("us-east-1")
    }
}

fn unwritten() -> Error {
    Error::Unsupported("AWS EBS snapshots are not written yet".into())
}

#[async_trait]
impl SnapshotProvider for AwsSnapshots {
    fn cloud(&self) -> SnapshotCloud {
        SnapshotCloud::Aws
    }

    async fn instance_exists(&self, _instance: &str) -> Result<bool> {
        Err(unwritten())
    }

    async fn attached_disks(
        &self,
        _instance: &str,
        _disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>> {
        Err(unwritten())
    }

    async fn create_snapshot(
        &self,
        _instance: &str,
        _disk: &AttachedDisk,
        _name: &str,
        _mount: &Mount,
    ) -> Result<CreatedSnapshot> {
        Err(unwritten())
    }

    async fn await_snapshots(&self, _snapshots: &[SnapshotMetadata]) -> Result<()> {
        Err(unwritten())
    }

    fn snapshots_info(&self, _created: &[CreatedSnapshot]) -> SnapshotsInfo {
        SnapshotsInfo::new(SnapshotCloud::Aws)
    }

    async fn snapshot_name(
        &self,
        _snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<Option<String>> {
        Err(unwritten())
    }

    async fn delete_snapshot(
        &self,
        _snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<()> {
        Err(unwritten())
    }
}
