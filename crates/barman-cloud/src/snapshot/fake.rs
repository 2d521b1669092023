//! An in-memory cloud for unit tests of the snapshot flows: one [`FakeCloud`] is both the
//! [`ProviderSource`] a flow is given and the [`SnapshotProvider`] it returns (clones share
//! one state, so a test keeps a handle and looks at what the flow did).
//!
//! It holds instances with their attached disks, and snapshots with a name, an owner, a
//! lock and a completion state; every call is logged ([`Call`]), every `snapshots_info` a
//! provider was asked for is recorded, and any operation can be made to fail
//! ([`FakeCloud::fail`]). Semantics follow the EC2 API the AWS provider uses:
//! snapshots owned by another account are invisible to [`SnapshotProvider::snapshot_name`]
//! (`DescribeSnapshots` with `OwnerIds=self`) and cannot be deleted; deleting a snapshot
//! that is gone succeeds; a locked one gives [`Error::SnapshotLocked`] with Barman's text.
//!
//! ```ignore
//! let cloud = FakeCloud::aws("eu-west-1");
//! cloud.add_snapshot("snap-1", "pgdata-20250101t000000");
//! cloud.lock("snap-1");
//! let info = cloud.snapshots_info_of(&["snap-1"]);
//! // ... run a flow with `&cloud` as its `&dyn ProviderSource` ...
//! assert_eq!(cloud.deleted(), Vec::<String>::new());
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{AttachedDisk, CreatedSnapshot, DeviceRef, Mount, ProviderSource, SnapshotProvider};
use crate::catalog::pyliteral::PyValue;
use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};

/// The account the fake's own snapshots belong to.
pub(crate) const ACCOUNT: &str = "123456789012";

/// The operations of [`SnapshotProvider`] and [`ProviderSource`], to inject failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    ForBackup,
    InstanceExists,
    AttachedDisks,
    CreateSnapshot,
    AwaitSnapshots,
    ProtectSnapshots,
    SnapshotName,
    DeleteSnapshot,
}

/// One call made to the fake, in the order made. Snapshots are named by identifier (AWS
/// snapshot ID, GCP/Azure snapshot name), disks by [`AttachedDisk::identifier`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// [`ProviderSource::for_backup`]; the `snapshots_info` given is in
    /// [`FakeCloud::requests`].
    ForBackup,
    InstanceExists(String),
    AttachedDisks {
        instance: String,
        disks: Option<Vec<String>>,
    },
    CreateSnapshot {
        instance: String,
        disk: String,
        name: String,
    },
    AwaitSnapshots(Vec<String>),
    ProtectSnapshots(Vec<String>),
    SnapshotName(String),
    DeleteSnapshot(String),
}

/// A snapshot as the fake cloud holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FakeSnapshot {
    pub id: String,
    /// AWS: the `Name` tag ("" for none); GCP/Azure: the identifier itself.
    pub name: String,
    pub owner: String,
    /// [`AttachedDisk::disk_id`] of the disk it was taken of, when created by the fake.
    pub disk: Option<String>,
    pub locked: bool,
    /// Whether [`SnapshotProvider::await_snapshots`] saw it complete.
    pub complete: bool,
}

type MakeError = Box<dyn Fn() -> Error + Send + Sync>;

struct Failure {
    op: Op,
    /// Instance, disk identifier or snapshot identifier; `None`: every call of `op`.
    target: Option<String>,
    make: MakeError,
}

#[derive(Default)]
struct State {
    /// Instance → attached disks, in attachment order.
    instances: BTreeMap<String, Vec<AttachedDisk>>,
    snapshots: BTreeMap<String, FakeSnapshot>,
    failures: Vec<Failure>,
    calls: Vec<Call>,
    requests: Vec<SnapshotsInfo>,
    created: u64,
    lock_on_protect: bool,
}

/// An in-memory cloud: a [`ProviderSource`] whose providers are itself.
#[derive(Clone)]
pub(crate) struct FakeCloud {
    cloud: SnapshotCloud,
    /// `provider_info` of the `snapshots_info` it writes.
    provider_info: Vec<(&'static str, PyValue)>,
    state: Arc<Mutex<State>>,
}

/// Barman's message for a snapshot a lock protects (`SystemExit` in aws_s3.py).
pub(crate) fn locked_message(id: &str) -> String {
    format!(
        "Locked snapshot: {id}.\nBefore deleting a snapshot, please ensure that it is not \
         locked or that the lock has expired."
    )
}

impl FakeCloud {
    /// An empty cloud of `cloud`, with no `provider_info`.
    pub fn new(cloud: SnapshotCloud) -> Self {
        FakeCloud {
            cloud,
            provider_info: Vec::new(),
            state: Arc::default(),
        }
    }

    /// An empty EBS region of account [`ACCOUNT`].
    pub fn aws(region: &str) -> Self {
        FakeCloud::new(SnapshotCloud::Aws)
            .with_info("account_id", ACCOUNT)
            .with_info("region", region)
    }

    /// Sets a `provider_info` value of the `snapshots_info` it writes (ignored for a key
    /// the cloud does not have).
    pub fn with_info(mut self, key: &str, value: &str) -> Self {
        if let Some(key) = self.cloud.info_fields().iter().find(|k| **k == key) {
            self.provider_info.retain(|(k, _)| k != key);
            self.provider_info.push((key, PyValue::str(value)));
        }
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_instance(&self, instance: &str) {
        self.state().instances.entry(instance.into()).or_default();
    }

    /// Attaches `disk` to `instance` (created if needed), after the disks attached already.
    pub fn attach(&self, instance: &str, disk: AttachedDisk) {
        self.state()
            .instances
            .entry(instance.into())
            .or_default()
            .push(disk);
    }

    /// A disk as [`FakeCloud::attach`] takes it: EBS device `/dev/sdX` for AWS, the name as
    /// GCP device name, LUN `lun` for Azure; `identifier` is also its disk ID.
    pub fn disk(&self, identifier: &str, lun: i64) -> AttachedDisk {
        let device = match self.cloud {
            SnapshotCloud::Aws => DeviceRef::Aws {
                device_name: format!("/dev/sd{}", (b'f' + lun as u8) as char),
                volume_id: identifier.into(),
                paravirtual: false,
            },
            SnapshotCloud::Gcp => DeviceRef::Gcp {
                device_name: identifier.into(),
            },
            SnapshotCloud::Azure => DeviceRef::Azure { lun },
        };
        AttachedDisk {
            identifier: identifier.into(),
            disk_id: identifier.into(),
            device,
            source_snapshot: None,
        }
    }

    /// A complete, unlocked snapshot of this account. On GCP/Azure, `id` is the name
    /// (pass the same text twice).
    pub fn add_snapshot(&self, id: &str, name: &str) {
        self.add_foreign_snapshot(id, name, ACCOUNT);
    }

    /// A complete, unlocked snapshot owned by `owner`: invisible and undeletable unless
    /// `owner` is [`ACCOUNT`].
    pub fn add_foreign_snapshot(&self, id: &str, name: &str, owner: &str) {
        self.state().snapshots.insert(
            id.into(),
            FakeSnapshot {
                id: id.into(),
                name: name.into(),
                owner: owner.into(),
                disk: None,
                locked: false,
                complete: true,
            },
        );
    }

    /// Removes a snapshot behind the flow's back.
    pub fn remove_snapshot(&self, id: &str) {
        self.state().snapshots.remove(id);
    }

    pub fn lock(&self, id: &str) {
        if let Some(s) = self.state().snapshots.get_mut(id) {
            s.locked = true;
        }
    }

    pub fn unlock(&self, id: &str) {
        if let Some(s) = self.state().snapshots.get_mut(id) {
            s.locked = false;
        }
    }

    /// Whether [`SnapshotProvider::protect_snapshots`] locks the snapshots it is given.
    pub fn lock_on_protect(&self, lock: bool) {
        self.state().lock_on_protect = lock;
    }

    /// Makes every later call of `op` on `target` (every call when `None`) fail with
    /// `make()`, until [`FakeCloud::heal`]. Targets: the instance (instance_exists,
    /// attached_disks), the disk identifier (create_snapshot), a snapshot identifier
    /// (await/protect: any of those given; snapshot_name, delete_snapshot), none for
    /// for_backup.
    pub fn fail(
        &self,
        op: Op,
        target: Option<&str>,
        make: impl Fn() -> Error + Send + Sync + 'static,
    ) {
        self.state().failures.push(Failure {
            op,
            target: target.map(str::to_string),
            make: Box::new(make),
        });
    }

    /// Forgets every injected failure.
    pub fn heal(&self) {
        self.state().failures.clear();
    }

    pub fn snapshot(&self, id: &str) -> Option<FakeSnapshot> {
        self.state().snapshots.get(id).cloned()
    }

    /// Every snapshot, by identifier.
    pub fn snapshots(&self) -> Vec<FakeSnapshot> {
        self.state().snapshots.values().cloned().collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The snapshots `delete_snapshot` was called for, in order (successful or not).
    pub fn deleted(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::DeleteSnapshot(id) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The `snapshots_info` of each [`ProviderSource::for_backup`] call, in order.
    pub fn requests(&self) -> Vec<SnapshotsInfo> {
        self.state().requests.clone()
    }

    /// The metadata `snapshots_info` records for snapshot `id`, whether the fake holds it
    /// or not (then `name` is its recorded name); the disk is `/dev/sdf`, mounted at
    /// `/opt/disk0`.
    pub fn metadata(&self, id: &str, name: &str) -> SnapshotMetadata {
        let mut meta = SnapshotMetadata::new(self.cloud);
        meta.mount_point = PyValue::str("/opt/disk0");
        meta.mount_options = PyValue::str("rw,noatime");
        let fields: Vec<(&str, PyValue)> = match self.cloud {
            SnapshotCloud::Aws => vec![
                ("device_name", PyValue::str("/dev/sdf")),
                ("snapshot_id", PyValue::str(id)),
                ("snapshot_name", PyValue::str(name)),
            ],
            SnapshotCloud::Gcp => vec![
                ("device_name", PyValue::str("disk0")),
                ("snapshot_name", PyValue::str(id)),
                ("snapshot_project", self.info_value("project")),
            ],
            SnapshotCloud::Azure => vec![
                ("location", PyValue::str("fakeregion")),
                ("lun", PyValue::Int(0)),
                ("snapshot_name", PyValue::str(id)),
            ],
        };
        for (key, value) in fields {
            meta.set_field(key, value);
        }
        meta
    }

    /// The `snapshots_info` of a backup made of the snapshots `ids` (names as the fake
    /// holds them, "" for unknown ones).
    pub fn snapshots_info_of(&self, ids: &[&str]) -> SnapshotsInfo {
        let mut info = self.empty_info();
        for id in ids {
            let name = self.snapshot(id).map(|s| s.name).unwrap_or_default();
            info.snapshots.push(self.metadata(id, &name));
        }
        info
    }

    fn info_value(&self, key: &str) -> PyValue {
        self.provider_info
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(PyValue::None, |(_, v)| v.clone())
    }

    fn empty_info(&self) -> SnapshotsInfo {
        let mut info = SnapshotsInfo::new(self.cloud);
        for (key, value) in &self.provider_info {
            info.set_info(key, value.clone());
        }
        info
    }

    /// Logs `call`, then fails if a failure was injected for `op` on one of `targets`.
    fn enter(&self, call: Call, op: Op, targets: &[&str]) -> Result<()> {
        let mut state = self.state();
        state.calls.push(call);
        let failure = state
            .failures
            .iter()
            .find(|f| f.op == op && f.target.as_deref().is_none_or(|t| targets.contains(&t)));
        match failure {
            Some(f) => Err((f.make)()),
            None => Ok(()),
        }
    }
}

fn identifiers(snapshots: &[SnapshotMetadata]) -> Vec<String> {
    snapshots
        .iter()
        .map(|s| s.identifier().unwrap_or_default().to_string())
        .collect()
}

#[async_trait]
impl ProviderSource for FakeCloud {
    async fn for_backup(
        &self,
        info: &SnapshotsInfo,
    ) -> Result<std::sync::Arc<dyn SnapshotProvider>> {
        self.state().requests.push(info.clone());
        self.enter(Call::ForBackup, Op::ForBackup, &[])?;
        if info.provider() != self.cloud {
            return Err(Error::Unsupported(format!(
                "fake cloud of {} asked for snapshots of {}",
                self.cloud.as_str(),
                info.provider().as_str()
            )));
        }
        Ok(std::sync::Arc::new(self.clone()))
    }
}

#[async_trait]
impl SnapshotProvider for FakeCloud {
    fn cloud(&self) -> SnapshotCloud {
        self.cloud
    }

    async fn instance_exists(&self, instance: &str) -> Result<bool> {
        self.enter(
            Call::InstanceExists(instance.into()),
            Op::InstanceExists,
            &[instance],
        )?;
        Ok(self.state().instances.contains_key(instance))
    }

    async fn attached_disks(
        &self,
        instance: &str,
        disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>> {
        self.enter(
            Call::AttachedDisks {
                instance: instance.into(),
                disks: disks.map(<[String]>::to_vec),
            },
            Op::AttachedDisks,
            &[instance],
        )?;
        let state = self.state();
        let attached = state
            .instances
            .get(instance)
            .ok_or_else(|| Error::Provider(format!("Cannot find instance {instance}")))?;
        Ok(match disks {
            None => attached.clone(),
            Some(names) => attached
                .iter()
                .filter_map(|disk| {
                    let asked = names
                        .iter()
                        .find(|n| **n == disk.identifier || **n == disk.disk_id)?;
                    Some(AttachedDisk {
                        identifier: asked.clone(),
                        ..disk.clone()
                    })
                })
                .collect(),
        })
    }

    async fn create_snapshot(
        &self,
        instance: &str,
        disk: &AttachedDisk,
        name: &str,
        mount: &Mount,
    ) -> Result<CreatedSnapshot> {
        self.enter(
            Call::CreateSnapshot {
                instance: instance.into(),
                disk: disk.identifier.clone(),
                name: name.into(),
            },
            Op::CreateSnapshot,
            &[&disk.identifier],
        )?;
        let mut state = self.state();
        if !state.instances.contains_key(instance) {
            return Err(Error::Provider(format!("Cannot find instance {instance}")));
        }
        state.created += 1;
        let id = match self.cloud {
            SnapshotCloud::Aws => format!("snap-{:017x}", state.created),
            SnapshotCloud::Gcp | SnapshotCloud::Azure => name.to_string(),
        };
        if state.snapshots.contains_key(&id) {
            return Err(Error::Provider(format!("snapshot {id} already exists")));
        }
        state.snapshots.insert(
            id.clone(),
            FakeSnapshot {
                id: id.clone(),
                name: name.into(),
                owner: ACCOUNT.into(),
                disk: Some(disk.disk_id.clone()),
                locked: false,
                complete: false,
            },
        );
        drop(state);
        let mut metadata = self.metadata(&id, name);
        metadata.mount_point = PyValue::str(&mount.mount_point);
        metadata.mount_options = PyValue::str(&mount.mount_options);
        match &disk.device {
            DeviceRef::Aws { device_name, .. } | DeviceRef::Gcp { device_name } => {
                metadata.set_field("device_name", PyValue::str(device_name));
            }
            DeviceRef::Azure { lun } => {
                metadata.set_field("lun", PyValue::Int(i128::from(*lun)));
            }
        }
        Ok(CreatedSnapshot {
            metadata,
            owner: (self.cloud == SnapshotCloud::Aws).then(|| ACCOUNT.to_string()),
        })
    }

    async fn await_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        let ids = identifiers(snapshots);
        let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.enter(
            Call::AwaitSnapshots(ids.clone()),
            Op::AwaitSnapshots,
            &targets,
        )?;
        let mut state = self.state();
        for id in &ids {
            let snapshot = state
                .snapshots
                .get_mut(id)
                .ok_or_else(|| Error::Provider(format!("snapshot {id} not found")))?;
            snapshot.complete = true;
        }
        Ok(())
    }

    async fn protect_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        let ids = identifiers(snapshots);
        let targets: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.enter(
            Call::ProtectSnapshots(ids.clone()),
            Op::ProtectSnapshots,
            &targets,
        )?;
        let mut state = self.state();
        if state.lock_on_protect {
            for id in &ids {
                if let Some(s) = state.snapshots.get_mut(id) {
                    s.locked = true;
                }
            }
        }
        Ok(())
    }

    fn snapshots_info(&self, created: &[CreatedSnapshot]) -> SnapshotsInfo {
        let mut info = self.empty_info();
        info.snapshots = created.iter().map(|c| c.metadata.clone()).collect();
        info
    }

    async fn snapshot_name(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<Option<String>> {
        let Some(id) = snapshot.identifier() else {
            // A malformed identifier names nothing that could match (as EC2's
            // InvalidSnapshotID.Malformed does in Barman).
            self.enter(Call::SnapshotName(String::new()), Op::SnapshotName, &[])?;
            return Ok(Some(String::new()));
        };
        self.enter(Call::SnapshotName(id.into()), Op::SnapshotName, &[id])?;
        Ok(self
            .state()
            .snapshots
            .get(id)
            .filter(|s| s.owner == ACCOUNT)
            .map(|s| s.name.clone()))
    }

    async fn delete_snapshot(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<()> {
        let id = snapshot.identifier().unwrap_or_default();
        self.enter(Call::DeleteSnapshot(id.into()), Op::DeleteSnapshot, &[id])?;
        let mut state = self.state();
        match state.snapshots.get(id) {
            None => Ok(()),
            Some(s) if s.owner != ACCOUNT => Err(Error::Provider(format!(
                "Deletion of snapshot {id} failed with error code UnauthorizedOperation"
            ))),
            Some(s) if s.locked => Err(Error::SnapshotLocked(locked_message(id))),
            Some(_) => {
                state.snapshots.remove(id);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn behaves_as_a_small_cloud() {
        let cloud = FakeCloud::aws("eu-west-1");
        cloud.attach("pg", cloud.disk("vol-1", 0));
        cloud.attach("pg", cloud.disk("vol-2", 1));
        let provider = cloud
            .for_backup(&cloud.snapshots_info_of(&[]))
            .await
            .unwrap();
        assert!(provider.instance_exists("pg").await.unwrap());
        assert!(!provider.instance_exists("other").await.unwrap());
        cloud.add_instance("other");
        assert!(provider.instance_exists("other").await.unwrap());
        assert!(
            provider
                .attached_disks("other", None)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(provider.attached_disks("pg", None).await.unwrap().len(), 2);
        let disks = provider
            .attached_disks("pg", Some(&["vol-2".to_string()]))
            .await
            .unwrap();
        assert_eq!(disks.len(), 1);
        let mount = Mount {
            mount_point: "/opt/pg".into(),
            mount_options: "rw".into(),
        };
        let created = provider
            .create_snapshot("pg", &disks[0], "vol-2-20250101t000000", &mount)
            .await
            .unwrap();
        let id = created.metadata.identifier().unwrap().to_string();
        assert!(!cloud.snapshot(&id).unwrap().complete);
        provider
            .await_snapshots(std::slice::from_ref(&created.metadata))
            .await
            .unwrap();
        cloud.lock_on_protect(true);
        provider
            .protect_snapshots(std::slice::from_ref(&created.metadata))
            .await
            .unwrap();
        let snapshot = cloud.snapshot(&id).unwrap();
        assert!(snapshot.complete && snapshot.locked);
        let info = provider.snapshots_info(std::slice::from_ref(&created));
        assert_eq!(info.info("region"), Some(&PyValue::str("eu-west-1")));
        assert_eq!(
            info.snapshots[0].field("device_name"),
            Some(&PyValue::str("/dev/sdg"))
        );
        let meta = &info.snapshots[0];
        assert_eq!(
            provider
                .snapshot_name(meta, &info)
                .await
                .unwrap()
                .as_deref(),
            Some("vol-2-20250101t000000")
        );
        let locked = provider.delete_snapshot(meta, &info).await.unwrap_err();
        assert!(matches!(locked, Error::SnapshotLocked(_)), "{locked}");
        cloud.unlock(&id);
        cloud.fail(Op::DeleteSnapshot, Some(&id), || {
            Error::Provider("injected".into())
        });
        assert!(provider.delete_snapshot(meta, &info).await.is_err());
        cloud.heal();
        provider.delete_snapshot(meta, &info).await.unwrap();
        provider.delete_snapshot(meta, &info).await.unwrap();
        assert_eq!(provider.snapshot_name(meta, &info).await.unwrap(), None);
        assert_eq!(cloud.deleted(), [id.clone(), id.clone(), id.clone(), id]);

        cloud.add_foreign_snapshot("snap-x", "vol-1-20250101t000000", "999");
        let foreign = cloud.metadata("snap-x", "vol-1-20250101t000000");
        assert_eq!(provider.snapshot_name(&foreign, &info).await.unwrap(), None);
        assert!(provider.delete_snapshot(&foreign, &info).await.is_err());
        assert_eq!(cloud.requests().len(), 1);
    }
}
