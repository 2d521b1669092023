//! GCP persistent-disk snapshots through the Compute Engine REST API v1 (Barman:
//! `barman/cloud_providers/google_cloud_storage.py` `GcpCloudSnapshotInterface`,
//! `GcpVolumeMetadata`, `GcpSnapshotMetadata`, `GcpSnapshotsInfo`).
//!
//! Modules: [`auth`] (access tokens: service-account key or metadata server), [`compute`]
//! (the REST client: endpoint, calls, retries, errors). This file is the provider.
//!
//! Where barman-rs differs from Barman 3.20.1, on purpose:
//! * an attached disk is identified by its full `source` URL, not by its last path
//!   component: a regional disk, or a zonal disk of another zone or project, is refused
//!   with a message naming it, where Barman would look up (and snapshot) a same-named disk
//!   of the configured zone (spec §11.10); when every disk is listed (recovery), such
//!   disks are left out with a warning;
//! * `await_snapshots` checks each snapshot's own status (READY) once the operations are
//!   done; Barman never reads it.
//!
//! Point in time: [`GcpSnapshots::create_snapshot`] returns once the insert operation is
//! DONE, as Barman does. Google's reference documents the snapshot statuses (CREATING,
//! UPLOADING, READY, ...) but no statement that the point in time is fixed once a
//! snapshot leaves CREATING could be found in the documentation available here, so
//! nothing earlier is relied on.

pub mod auth;
pub mod compute;

use std::time::Duration;

use async_trait::async_trait;

use super::{AttachedDisk, CreatedSnapshot, DeviceRef, Mount, SnapshotProvider};
use crate::catalog::pyliteral::PyValue;
use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};
pub use auth::{ServiceAccountKey, TokenSource, Tokens};
pub use compute::{ComputeClient, ComputeError, Instance, InstanceDisk, Operation, RetryPolicy};

/// How operations and snapshots are waited for (Barman: first check after 1 s, growing by
/// half up to 20 s, giving up after 900 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    pub first: Duration,
    pub factor_percent: u32,
    pub max_interval: Duration,
    pub timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            first: Duration::from_secs(1),
            factor_percent: 150,
            max_interval: Duration::from_secs(20),
            timeout: Duration::from_secs(900),
        }
    }
}

impl Polling {
    /// The pause after `previous` (None: the first pause).
    pub fn next(&self, previous: Option<Duration>) -> Duration {
        match previous {
            None => self.first.min(self.max_interval),
            Some(d) => (d * self.factor_percent / 100).min(self.max_interval),
        }
    }
}

/// What a GCP snapshot provider is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpSnapshotSettings {
    /// `--gcp-project`, or the project recorded in `snapshots_info`.
    pub project: String,
    /// `--gcp-zone`: needed for instances and disks; deleting snapshots does without.
    pub zone: Option<String>,
}

/// Persistent-disk snapshots of one project (and zone).
pub struct GcpSnapshots {
    settings: GcpSnapshotSettings,
    client: ComputeClient,
    polling: Polling,
}

impl GcpSnapshots {
    /// The provider of `settings`: endpoint `CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE`, else
    /// Google's; credentials `GOOGLE_APPLICATION_CREDENTIALS` (service-account key), else
    /// the metadata server. Contacts nothing.
    pub async fn new(settings: GcpSnapshotSettings) -> Result<Self> {
        let endpoint = compute::endpoint_url(
            std::env::var("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE")
                .ok()
                .as_deref(),
        );
        let client = ComputeClient::new(&endpoint, Tokens::new(TokenSource::from_env()?))?;
        Self::with_client(settings, client)
    }

    /// The provider of `settings` over a client built by the caller.
    pub fn with_client(settings: GcpSnapshotSettings, client: ComputeClient) -> Result<Self> {
        if settings.project.is_empty() {
            return Err(Error::Config(
                "a GCP project is required for snapshots".into(),
            ));
        }
        Ok(GcpSnapshots {
            settings,
            client,
            polling: Polling::default(),
        })
    }

    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    pub fn settings(&self) -> &GcpSnapshotSettings {
        &self.settings
    }

    pub fn client(&self) -> &ComputeClient {
        &self.client
    }

    fn project(&self) -> &str {
        &self.settings.project
    }

    fn zone(&self) -> Result<&str> {
        self.settings
            .zone
            .as_deref()
            .filter(|z| !z.is_empty())
            .ok_or_else(|| Error::Config("a GCP zone (--gcp-zone) is required".into()))
    }

    /// The instance, `None` when the API says 404.
    pub async fn find_instance(&self, instance: &str) -> Result<Option<Instance>> {
        let zone = self.zone()?;
        match self
            .client
            .get_instance(self.project(), zone, instance)
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for operation `op` to be DONE; `Ok(op)` even when the operation failed (the
    /// caller words that), an error when the time limit passed.
    ///
    /// Through `globalOperations.wait`, which answers as soon as the operation is DONE:
    /// backup mode ends when the snapshot is, not at the next poll (Barman polls with
    /// `globalOperations.get` after 1, 2.5, 4.75... s, so a 3 s snapshot costs it 4.75 s
    /// on that schedule). The call is best effort: an answer that comes back at once with
    /// the operation still running is followed by a pause of that polling schedule, so a
    /// server that does not block is polled as Barman polls it.
    async fn wait_operation(&self, mut op: Operation, what: &str) -> Result<Operation> {
        let deadline = tokio::time::Instant::now() + self.polling.timeout;
        let timed_out = |name: &str| {
            Error::Failed(format!(
                "Timed out after {} seconds waiting for {what} (operation {name})",
                self.polling.timeout.as_secs(),
            ))
        };
        let mut pause = None;
        while !op.is_done() {
            let asked = tokio::time::Instant::now();
            if asked >= deadline {
                return Err(timed_out(&op.name));
            }
            let name = op.name.clone();
            op = tokio::time::timeout(
                deadline - asked,
                self.client.wait_operation(self.project(), &name),
            )
            .await
            .map_err(|_| timed_out(&name))??;
            let now = tokio::time::Instant::now();
            if !op.is_done() && now - asked < Duration::from_secs(1) && now < deadline {
                let next = self.polling.next(pause);
                pause = Some(next);
                tokio::time::sleep(next.min(deadline - now)).await;
            }
        }
        Ok(op)
    }
}

/// Where an attached disk's `source` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskLocation {
    Zonal {
        project: String,
        zone: String,
        name: String,
    },
    Regional {
        project: String,
        region: String,
        name: String,
    },
}

impl DiskLocation {
    /// Reads `.../projects/{p}/zones/{z}/disks/{d}` or `.../projects/{p}/regions/{r}/disks/{d}`
    /// (full URL or relative path).
    pub fn parse(source: &str) -> Option<Self> {
        let path = match url::Url::parse(source) {
            Ok(url) => url.path().to_string(),
            Err(_) => source.to_string(),
        };
        let parts: Vec<String> = path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let start = parts.iter().rposition(|p| p == "projects")?;
        match &parts[start..] {
            [_, project, kind, scope, disks, name] if disks == "disks" && !name.is_empty() => {
                match kind.as_str() {
                    "zones" => Some(DiskLocation::Zonal {
                        project: project.clone(),
                        zone: scope.clone(),
                        name: name.clone(),
                    }),
                    "regions" => Some(DiskLocation::Regional {
                        project: project.clone(),
                        region: scope.clone(),
                        name: name.clone(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DiskLocation::Zonal { name, .. } | DiskLocation::Regional { name, .. } => name,
        }
    }
}

/// The last path component of a URL or path (Barman's reading of `source` and
/// `sourceSnapshot`).
pub fn last_component(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("")
}

/// One attachment chosen by [`select_disks`]: the disk's name and device name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedDisk {
    pub name: String,
    pub device_name: String,
}

/// The attachments of `instance` that `disks` names (by disk name), or all of them, in
/// the instance's attachment order (Barman's `get_attached_volumes`). A named disk must
/// be a zonal disk of `project`/`zone`: anything else is refused by name. When every
/// disk is listed, disks elsewhere are left out with a warning.
pub fn select_disks(
    instance_name: &str,
    instance: &Instance,
    project: &str,
    zone: &str,
    disks: Option<&[String]>,
) -> Result<Vec<SelectedDisk>> {
    let mut selected: Vec<SelectedDisk> = Vec::new();
    for attachment in &instance.disks {
        let source = attachment.source.as_deref().unwrap_or("");
        let name = last_component(source);
        if let Some(wanted) = disks
            && !wanted.iter().any(|w| w == name)
        {
            continue;
        }
        if name.is_empty() {
            return Err(Error::Provider(format!(
                "Could not parse disk name for source {source} attached to instance {instance_name}"
            )));
        }
        let refusal = match DiskLocation::parse(source) {
            Some(DiskLocation::Zonal {
                project: p,
                zone: z,
                ..
            }) if p == project && z == zone => None,
            Some(DiskLocation::Zonal {
                project: p,
                zone: z,
                ..
            }) => Some(format!(
                "Disk {name} attached to instance {instance_name} is in zone {z} of project \
                 {p}, not in zone {zone} of project {project}: only disks of the configured \
                 project and zone can be snapshotted"
            )),
            Some(DiskLocation::Regional { region, .. }) => Some(format!(
                "Disk {name} attached to instance {instance_name} is a regional disk (region \
                 {region}): regional persistent disks are not supported for snapshot backups, \
                 only zonal disks in zone {zone}"
            )),
            None => Some(format!(
                "Disk {name} attached to instance {instance_name} has an unexpected source \
                 {source}: only zonal disks in zone {zone} are supported"
            )),
        };
        if let Some(refusal) = refusal {
            if disks.is_some() {
                return Err(Error::Provider(refusal));
            }
            tracing::warn!("{refusal}; left out");
            continue;
        }
        if selected.iter().any(|d| d.name == name) {
            // The same disk attached twice cannot happen on GCP; count it once.
            continue;
        }
        selected.push(SelectedDisk {
            name: name.to_string(),
            device_name: attachment.device_name.clone().unwrap_or_default(),
        });
    }
    Ok(selected)
}

#[async_trait]
impl SnapshotProvider for GcpSnapshots {
    fn cloud(&self) -> SnapshotCloud {
        SnapshotCloud::Gcp
    }

    async fn instance_exists(&self, instance: &str) -> Result<bool> {
        Ok(self.find_instance(instance).await?.is_some())
    }

    /// Follows Barman: every attached disk (the boot disk too) is considered, in
    /// attachment order.
    async fn attached_disks(
        &self,
        instance: &str,
        disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>> {
        let zone = self.zone()?;
        let found = self.find_instance(instance).await?.ok_or_else(|| {
            Error::Provider(format!(
                "Cannot find instance with name {instance} in zone {zone} for project {}",
                self.project()
            ))
        })?;
        let mut attached = Vec::new();
        for disk in select_disks(instance, &found, self.project(), zone, disks)? {
            let metadata = match self.client.get_disk(self.project(), zone, &disk.name).await {
                Ok(d) => d,
                Err(e) if e.is_not_found() => {
                    return Err(Error::Provider(format!(
                        "Cannot find disk with name {} in zone {zone} for project {}",
                        disk.name,
                        self.project()
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            let source_snapshot = metadata
                .source_snapshot
                .as_deref()
                .map(last_component)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            attached.push(AttachedDisk {
                identifier: disk.name.clone(),
                disk_id: disk.name,
                device: DeviceRef::Gcp {
                    device_name: disk.device_name,
                },
                source_snapshot,
            });
        }
        Ok(attached)
    }

    async fn create_snapshot(
        &self,
        _instance: &str,
        disk: &AttachedDisk,
        name: &str,
        mount: &Mount,
    ) -> Result<CreatedSnapshot> {
        let zone = self.zone()?;
        let DeviceRef::Gcp { device_name } = &disk.device else {
            return Err(Error::Provider(format!(
                "Disk {} is not a GCP disk",
                disk.identifier
            )));
        };
        tracing::info!("Taking snapshot '{name}' of disk '{}'", disk.disk_id);
        let op = self
            .client
            .insert_snapshot(self.project(), zone, &disk.disk_id, name)
            .await
            .map_err(|e| {
                let maybe_created = matches!(e, ComputeError::Unreachable { .. });
                let error = Error::from(e);
                if maybe_created {
                    error.context(format!(
                        "Snapshot '{name}' of disk '{}' may or may not have been created",
                        disk.disk_id
                    ))
                } else {
                    error
                }
            })?;
        let mut meta = SnapshotMetadata::new(SnapshotCloud::Gcp);
        meta.mount_point = PyValue::str(mount.mount_point.clone());
        meta.mount_options = PyValue::str(mount.mount_options.clone());
        meta.set_field("device_name", PyValue::str(device_name.clone()));
        meta.set_field("snapshot_name", PyValue::str(name));
        meta.set_field("snapshot_project", PyValue::str(self.project()));
        tracing::info!("Waiting for snapshot '{name}' completion");
        let finished = async {
            let op = self
                .wait_operation(op, &format!("snapshot '{name}'"))
                .await?;
            if let Some((code, message)) = op.failure() {
                return Err(Error::Failed(format!(
                    "Snapshot '{name}' failed with error code {code}: {message}"
                )));
            }
            Ok(op)
        }
        .await;
        let op = match finished {
            Ok(op) => op,
            Err(error) => {
                // The insert was accepted, so a (failed or unfinished) snapshot of that
                // name may exist: the caller never learns of it, so it goes now.
                if let Err(e) = self.delete_snapshot(&meta, &self.snapshots_info(&[])).await {
                    tracing::error!(
                        "Could not delete snapshot '{name}' after its creation failed ({e}): \
                         delete it by hand"
                    );
                }
                return Err(error);
            }
        };
        if let Some(warnings) = op.warnings_text() {
            tracing::warn!("Warnings encountered during snapshot {name}: {warnings}");
        }
        tracing::info!("Snapshot '{name}' completed");
        Ok(CreatedSnapshot {
            metadata: meta,
            owner: None,
        })
    }

    async fn await_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.polling.timeout;
        let mut pause = None;
        for snapshot in snapshots {
            let name = snapshot.identifier().ok_or_else(|| {
                Error::Provider("A snapshot of the backup has no snapshot_name".into())
            })?;
            loop {
                let found = self.client.get_snapshot(self.project(), name).await?;
                match found.status.as_str() {
                    "READY" => break,
                    "FAILED" => {
                        return Err(Error::Failed(format!("Snapshot {name} failed")));
                    }
                    status => {
                        let now = tokio::time::Instant::now();
                        if now >= deadline {
                            return Err(Error::Failed(format!(
                                "Snapshot {name} not ready within {} seconds (status {status})",
                                self.polling.timeout.as_secs()
                            )));
                        }
                        tracing::debug!("Snapshot {name} is {status}");
                        let next = self.polling.next(pause);
                        pause = Some(next);
                        tokio::time::sleep(next.min(deadline - now)).await;
                    }
                }
            }
        }
        Ok(())
    }

    fn snapshots_info(&self, created: &[CreatedSnapshot]) -> SnapshotsInfo {
        let mut info = SnapshotsInfo::new(SnapshotCloud::Gcp);
        info.set_info("project", PyValue::str(self.project()));
        info.snapshots = created.iter().map(|c| c.metadata.clone()).collect();
        info
    }

    async fn snapshot_name(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<Option<String>> {
        let Some(name) = snapshot.identifier() else {
            return Ok(Some(String::new()));
        };
        match self.client.get_snapshot(self.project(), name).await {
            Ok(_) => Ok(Some(name.to_string())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_snapshot(
        &self,
        snapshot: &SnapshotMetadata,
        _info: &SnapshotsInfo,
    ) -> Result<()> {
        let name = snapshot.identifier().ok_or_else(|| {
            Error::Provider("Cannot delete a snapshot without snapshot_name".into())
        })?;
        let op = match self.client.delete_snapshot(self.project(), name).await {
            Ok(op) => op,
            Err(e) if e.is_not_found() => {
                tracing::warn!("Snapshot {name} could not be found");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let op = self
            .wait_operation(op, &format!("the deletion of snapshot {name}"))
            .await?;
        if let Some((code, message)) = op.failure() {
            return Err(Error::Failed(format!(
                "Deletion of snapshot {name} failed with error code {code}: {message}"
            )));
        }
        if let Some(warnings) = op.warnings_text() {
            tracing::warn!("Warnings encountered during deletion of {name}: {warnings}");
        }
        tracing::info!("Snapshot {name} deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(device: &str, source: &str, boot: bool) -> InstanceDisk {
        InstanceDisk {
            device_name: Some(device.into()),
            source: Some(source.into()),
            boot,
        }
    }

    const BASE: &str = "https://www.googleapis.com/compute/v1/projects/";

    fn instance() -> Instance {
        Instance {
            name: "pg".into(),
            disks: vec![
                attachment("boot", &format!("{BASE}p/zones/z/disks/pg"), true),
                attachment("wal", &format!("{BASE}p/zones/z/disks/pgwal"), false),
                attachment("data", &format!("{BASE}p/zones/z/disks/pgdata"), false),
                attachment("reg", &format!("{BASE}p/regions/r/disks/shared"), false),
                attachment("other", &format!("{BASE}p/zones/z2/disks/elsewhere"), false),
            ],
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn attachment_order_not_request_order() {
        let wanted = strings(&["pgdata", "pgwal", "missing"]);
        let disks = select_disks("pg", &instance(), "p", "z", Some(&wanted)).unwrap();
        assert_eq!(
            disks,
            vec![
                SelectedDisk {
                    name: "pgwal".into(),
                    device_name: "wal".into()
                },
                SelectedDisk {
                    name: "pgdata".into(),
                    device_name: "data".into()
                },
            ]
        );
    }

    #[test]
    fn every_disk_follows_barman_and_leaves_out_foreign_ones() {
        let disks = select_disks("pg", &instance(), "p", "z", None).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["pg", "pgwal", "pgdata"]);
    }

    #[test]
    fn regional_and_foreign_disks_are_refused_by_name() {
        let err = select_disks("pg", &instance(), "p", "z", Some(&strings(&["shared"])))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Disk shared")
                && err.contains("regional")
                && err.contains("not supported"),
            "{err}"
        );
        let err = select_disks("pg", &instance(), "p", "z", Some(&strings(&["elsewhere"])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("zone z2"), "{err}");
        // Same disk name, other project: not the configured project's disk.
        let mut other = instance();
        other.disks[2].source = Some(format!("{BASE}q/zones/z/disks/pgdata"));
        assert!(select_disks("pg", &other, "p", "z", Some(&strings(&["pgdata"]))).is_err());
    }

    #[test]
    fn unparsable_source_is_barmans_error() {
        let mut broken = instance();
        broken.disks[1].source = Some(format!("{BASE}p/zones/z/disks/"));
        let err = select_disks("pg", &broken, "p", "z", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Could not parse disk name for source"),
            "{err}"
        );
    }

    #[test]
    fn locations_and_components() {
        assert_eq!(
            DiskLocation::parse("projects/p/zones/z/disks/d"),
            Some(DiskLocation::Zonal {
                project: "p".into(),
                zone: "z".into(),
                name: "d".into()
            })
        );
        assert_eq!(
            DiskLocation::parse(&format!("{BASE}p/regions/r/disks/d"))
                .map(|l| l.name().to_string()),
            Some("d".into())
        );
        assert_eq!(
            DiskLocation::parse(&format!("{BASE}p/zones/z/images/d")),
            None
        );
        assert_eq!(
            last_component(&format!("{BASE}p/global/snapshots/pgdata-20250101t000000")),
            "pgdata-20250101t000000"
        );
        assert_eq!(last_component(""), "");
    }

    #[test]
    fn polling_follows_barman() {
        let p = Polling::default();
        let mut pauses = vec![];
        let mut last = None;
        for _ in 0..10 {
            let next = p.next(last);
            pauses.push(next.as_millis());
            last = Some(next);
        }
        assert_eq!(
            pauses,
            [
                1000, 1500, 2250, 3375, 5062, 7593, 11390, 17085, 20000, 20000
            ]
        );
    }

    #[test]
    fn snapshots_info_fields() {
        let client = ComputeClient::new(
            "http://127.0.0.1:9/compute/v1/",
            Tokens::new(TokenSource::Static("t".into())),
        )
        .unwrap();
        let provider = GcpSnapshots::with_client(
            GcpSnapshotSettings {
                project: "proj".into(),
                zone: Some("z".into()),
            },
            client,
        )
        .unwrap();
        let mut meta = SnapshotMetadata::new(SnapshotCloud::Gcp);
        meta.set_field("device_name", PyValue::str("data"));
        meta.set_field("snapshot_name", PyValue::str("pgdata-x"));
        meta.set_field("snapshot_project", PyValue::str("proj"));
        let info = provider.snapshots_info(&[CreatedSnapshot {
            metadata: meta,
            owner: None,
        }]);
        assert_eq!(info.provider(), SnapshotCloud::Gcp);
        assert_eq!(info.info("project"), Some(&PyValue::str("proj")));
        assert_eq!(info.snapshots[0].identifier(), Some("pgdata-x"));
        assert!(
            GcpSnapshots::with_client(
                GcpSnapshotSettings::default(),
                ComputeClient::new(
                    "http://127.0.0.1:9/compute/v1/",
                    Tokens::new(TokenSource::Static("t".into())),
                )
                .unwrap()
            )
            .is_err()
        );
    }
}
