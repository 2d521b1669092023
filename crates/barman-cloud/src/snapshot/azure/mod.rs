//! Azure managed-disk snapshots through Azure Resource Manager (Barman:
//! `barman/cloud_providers/azure_blob_storage.py` `AzureCloudSnapshotInterface`,
//! `AzureVolumeMetadata`, `AzureSnapshotMetadata`, `AzureSnapshotsInfo`).
//!
//! Modules: [`arm`] (the ARM REST client: URLs, tokens, retries, long-running operations,
//! errors), [`model`] (the JSON answers). This file is the provider: which calls Barman
//! makes, in which order, and what its answers mean.
//!
//! Point in time. Microsoft documents that an incremental snapshot is the disk "when the
//! incremental snapshot was taken" and can be used at once: "Both full snapshots and
//! incremental snapshots can be used immediately after being taken. In other words, once
//! you take either snapshot, you can immediately read the underlying data and use it to
//! restore disks." (<https://learn.microsoft.com/en-us/azure/virtual-machines/disks-incremental-snapshots>).
//! The snapshot is "taken" when its creation (the PUT's long-running operation) ends with
//! `provisioningState` `Succeeded`; nothing earlier is documented as fixing the point in
//! time. `properties.completionPercent` is documented for the background copy of
//! resources created with `CopyStart` (and of Premium SSD v2/Ultra disk snapshots), not as
//! the moment the point in time is fixed. So [`SnapshotProvider::create_snapshot`] waits for
//! the operation as Barman does, and [`SnapshotProvider::await_snapshots`] then only waits
//! for a background copy that is still reported under way.
//!
//! Where barman-rs differs from Barman 3.20.1, on purpose:
//! * a PUT answered 201 is accepted along with 200 and 202 (ARM allows it for creations);
//! * throttled (429) and unavailable (5xx) answers are retried a few times after their
//!   `Retry-After`; a creation or deletion is waited for at most an hour;
//! * the default credential chain is environment service principal, workload identity,
//!   managed identity, Azure CLI (what `azure_identity` 1.x offers of Python's
//!   `DefaultAzureCredential` order).

pub mod arm;
pub mod model;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use super::{AttachedDisk, CreatedSnapshot, DeviceRef, Mount, SnapshotProvider};
use crate::catalog::pyliteral::PyValue;
use crate::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use crate::error::{Error, Result};
pub use crate::storage::AzureCredentialKind;
pub use arm::{ArmClient, ArmError, RetryPolicy};
pub use model::{DataDisk, Disk, Snapshot, VirtualMachine};

/// What an Azure snapshot provider is built from.
#[derive(Debug, Clone)]
pub struct AzureSnapshotSettings {
    /// `--azure-subscription-id` / `azure_subscription_id`, or the one recorded in
    /// `snapshots_info`.
    pub subscription_id: String,
    /// `--azure-resource-group` / `azure_resource_group`: where the VM, its disks and the
    /// new snapshots are. Deletion uses the one `snapshots_info` recorded instead.
    pub resource_group: Option<String>,
    /// `--azure-credential` (default: the default chain).
    pub credential: AzureCredentialKind,
    /// How long [`SnapshotProvider::await_snapshots`] waits for background copies.
    pub await_timeout: Duration,
}

impl Default for AzureSnapshotSettings {
    fn default() -> Self {
        AzureSnapshotSettings {
            subscription_id: String::new(),
            resource_group: None,
            credential: AzureCredentialKind::Default,
            await_timeout: Duration::from_secs(3600),
        }
    }
}

/// Managed-disk snapshots of one subscription.
pub struct AzureSnapshots {
    settings: AzureSnapshotSettings,
    client: ArmClient,
    /// Locations of the disks `attached_disks` looked up, by name: what a snapshot's PUT
    /// needs, without asking again.
    locations: std::sync::Mutex<HashMap<String, String>>,
    /// The VM as read for the first snapshot of a backup (Barman reads it once per backup).
    snapshot_vm: tokio::sync::Mutex<Option<(String, VirtualMachine)>>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AzureSnapshots {
    /// Deletes a snapshot whose creation was accepted but failed: the backup's cleanup
    /// never learns of it, as creation returned an error.
    async fn discard_failed(&self, group: &str, name: &str) {
        if let Err(e) = self.client.delete_snapshot(group, name).await {
            tracing::error!(
                "Could not delete snapshot '{name}' after its creation failed ({e}): delete it \
                 by hand"
            );
        }
    }

    /// The provider of `settings`: ARM at `AZURE_RESOURCE_MANAGER_ENDPOINT` (else the public
    /// cloud's), tokens from the credential `settings.credential` names. Contacts nothing.
    pub async fn new(settings: AzureSnapshotSettings) -> Result<Self> {
        let credential = credential(settings.credential)?;
        let endpoint =
            arm::endpoint_url(env_nonempty("AZURE_RESOURCE_MANAGER_ENDPOINT").as_deref());
        Self::with_credential(settings, &endpoint, credential)
    }

    /// The provider of `settings` at `endpoint` with `credential`.
    pub fn with_credential(
        settings: AzureSnapshotSettings,
        endpoint: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self> {
        if settings.subscription_id.is_empty() {
            return Err(Error::Config("subscription_id cannot be None".into()));
        }
        let client = ArmClient::new(endpoint, &settings.subscription_id, credential)?;
        Ok(Self::with_client(settings, client))
    }

    /// The provider of `settings` over a client built by the caller (whose subscription
    /// wins).
    pub fn with_client(settings: AzureSnapshotSettings, client: ArmClient) -> Self {
        AzureSnapshots {
            settings,
            client,
            locations: std::sync::Mutex::new(HashMap::new()),
            snapshot_vm: tokio::sync::Mutex::new(None),
        }
    }

    pub fn client(&self) -> &ArmClient {
        &self.client
    }

    pub fn settings(&self) -> &AzureSnapshotSettings {
        &self.settings
    }

    pub fn subscription_id(&self) -> &str {
        self.client.subscription_id()
    }

    /// The resource group of backups and recoveries (`--azure-resource-group`).
    fn resource_group(&self) -> Result<&str> {
        self.settings
            .resource_group
            .as_deref()
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "Incomplete options for snapshot backup - missing: azure_resource_group".into(),
                )
            })
    }

    /// The VM, or Barman's "Cannot find instance" error.
    pub async fn vm(&self, name: &str) -> Result<VirtualMachine> {
        let group = self.resource_group()?;
        match self.client.get_vm(group, name).await {
            Ok(vm) => Ok(vm),
            Err(e) if e.status() == Some(404) => Err(Error::Provider(format!(
                "Cannot find instance with name {name} in resource group {group} in \
                 subscription {}",
                self.subscription_id()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The disk, or Barman's "Cannot find disk" error.
    pub async fn disk(&self, name: &str) -> Result<Disk> {
        let group = self.resource_group()?;
        match self.client.get_disk(group, name).await {
            Ok(disk) => {
                if let Ok(mut locations) = self.locations.lock() {
                    locations.insert(name.to_string(), disk.location.clone());
                }
                Ok(disk)
            }
            Err(e) if e.status() == Some(404) => Err(Error::Provider(format!(
                "Cannot find disk with name {name} in resource group {group} in subscription {}",
                self.subscription_id()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn location(&self, disk: &str) -> Result<String> {
        let known = self
            .locations
            .lock()
            .ok()
            .and_then(|l| l.get(disk).cloned());
        match known {
            Some(location) => Ok(location),
            None => Ok(self.disk(disk).await?.location),
        }
    }

    /// The resource group a backup's snapshots are in (`snapshots_info`).
    fn recorded_group(info: &SnapshotsInfo) -> Result<String> {
        info.info("resource_group")
            .and_then(|v| v.as_str())
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::Provider("snapshots_info of the backup has no resource_group".into())
            })
    }

    fn snapshot_name_of(snapshot: &SnapshotMetadata) -> Result<&str> {
        snapshot
            .identifier()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::Provider("A snapshot of the backup has no snapshot_name".into()))
    }
}

/// The data disks of `vm` that `disks` names (all of them when `disks` is `None` or
/// empty), in the VM's attachment order; the OS disk is never one of them.
pub fn select_data_disks<'a>(
    vm: &'a VirtualMachine,
    disks: Option<&[String]>,
) -> Vec<&'a DataDisk> {
    vm.properties
        .storage_profile
        .data_disks
        .iter()
        .filter(|d| match disks {
            Some(names) if !names.is_empty() => names.iter().any(|n| n == &d.name),
            _ => true,
        })
        .collect()
}

/// The name of the snapshot a disk was created from, when it was copied from one: the
/// text after `.../providers/Microsoft.Compute/snapshots/` of its `sourceResourceId`
/// (Barman ignores the subscription and resource group there); an ID it cannot read is an
/// error.
pub fn source_snapshot_name(disk: &Disk) -> Result<Option<String>> {
    const MARKER: &str = "providers/Microsoft.Compute/snapshots";
    let creation = &disk.properties.creation_data;
    let source = creation.source_resource_id.as_deref().unwrap_or("");
    if creation.create_option.as_deref() != Some("Copy") || !source.contains(MARKER) {
        return Ok(None);
    }
    match parse_snapshot_id(source) {
        Some(name) => Ok(Some(name.to_string())),
        None => Err(Error::Provider(format!(
            "Could not determine source snapshot for disk {} with source resource ID {source}",
            disk.name
        ))),
    }
}

/// `<name>` of `.../subscriptions/<s>/resourceGroups/<g>/providers/Microsoft.Compute/snapshots/<name>`
/// (the last such marker wins, as Barman's greedy pattern does; `<s>` and `<g>` must not
/// start with `/`); `None` when absent or empty.
fn parse_snapshot_id(id: &str) -> Option<&str> {
    const SUBSCRIPTIONS: &str = "/subscriptions/";
    const GROUPS: &str = "/resourceGroups/";
    const SNAPSHOTS: &str = "/providers/Microsoft.Compute/snapshots/";
    let line = id.split('\n').next().unwrap_or("");
    let after_subscription = line
        .match_indices(SUBSCRIPTIONS)
        .map(|(i, _)| i + SUBSCRIPTIONS.len())
        .find(|&start| !line[start..].starts_with('/'))?;
    let after_group = line[after_subscription..]
        .match_indices(GROUPS)
        .map(|(i, _)| after_subscription + i + GROUPS.len())
        .find(|&start| !line[start..].starts_with('/'))?;
    let marker = line[after_group..].rfind(SNAPSHOTS)?;
    let name = &line[after_group + marker + SNAPSHOTS.len()..];
    (!name.is_empty()).then_some(name)
}

#[async_trait]
impl SnapshotProvider for AzureSnapshots {
    fn cloud(&self) -> SnapshotCloud {
        SnapshotCloud::Azure
    }

    async fn instance_exists(&self, instance: &str) -> Result<bool> {
        let group = self.resource_group()?;
        match self.client.get_vm(group, instance).await {
            Ok(_) => Ok(true),
            // Barman: any ResourceNotFoundError, a missing resource group included.
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn attached_disks(
        &self,
        instance: &str,
        disks: Option<&[String]>,
    ) -> Result<Vec<AttachedDisk>> {
        let vm = self.vm(instance).await?;
        let mut attached = Vec::new();
        for data_disk in select_data_disks(&vm, disks) {
            let disk = self.disk(&data_disk.name).await?;
            attached.push(AttachedDisk {
                identifier: data_disk.name.clone(),
                disk_id: data_disk.name.clone(),
                device: DeviceRef::Azure { lun: data_disk.lun },
                source_snapshot: source_snapshot_name(&disk)?,
            });
        }
        Ok(attached)
    }

    async fn create_snapshot(
        &self,
        instance: &str,
        disk: &AttachedDisk,
        name: &str,
        mount: &Mount,
    ) -> Result<CreatedSnapshot> {
        let group = self.resource_group()?.to_string();
        let vm = {
            let mut read = self.snapshot_vm.lock().await;
            match read.as_ref() {
                Some((known, vm)) if known == instance => vm.clone(),
                _ => {
                    let vm = self.vm(instance).await?;
                    *read = Some((instance.to_string(), vm.clone()));
                    vm
                }
            }
        };
        let attached = vm
            .properties
            .storage_profile
            .data_disks
            .iter()
            .find(|d| d.name == disk.disk_id)
            .ok_or_else(|| {
                Error::Provider(format!(
                    "Disk {} not attached to instance {instance}",
                    disk.disk_id
                ))
            })?;
        let disk_id = attached
            .managed_disk
            .as_ref()
            .and_then(|m| m.id.clone())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::Provider(format!(
                    "Disk {} of instance {instance} is not a managed disk",
                    disk.disk_id
                ))
            })?;
        let location = self.location(&disk.disk_id).await?;
        tracing::info!("Taking snapshot '{name}' of disk '{}'", disk.disk_id);
        // The point in time is fixed when the creation succeeds (see the module's notes).
        let (status, snapshot) = match self
            .client
            .create_snapshot(&group, name, &location, &disk_id)
            .await
        {
            Ok(done) => done,
            Err(ArmError::OperationFailed {
                status,
                code,
                message,
                ..
            }) => {
                self.discard_failed(&group, name).await;
                return Err(Error::Failed(format!(
                    "Snapshot '{name}' failed with error code {status}: ({code}) {message}"
                )));
            }
            Err(e @ ArmError::Unreachable { .. }) => {
                return Err(Error::from(e).context(format!(
                    "Snapshot '{name}' of disk '{}' may or may not have been created",
                    disk.disk_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if !status.eq_ignore_ascii_case("succeeded")
            || !snapshot
                .provisioning_state()
                .eq_ignore_ascii_case("succeeded")
        {
            self.discard_failed(&group, name).await;
            return Err(Error::Failed(format!(
                "Snapshot '{name}' failed with error code {status}: provisioningState {}",
                snapshot.provisioning_state()
            )));
        }
        tracing::info!("Snapshot '{name}' completed");
        let mut meta = SnapshotMetadata::new(SnapshotCloud::Azure);
        meta.mount_point = PyValue::str(mount.mount_point.clone());
        meta.mount_options = PyValue::str(mount.mount_options.clone());
        meta.set_field("location", PyValue::str(location));
        meta.set_field("lun", PyValue::Int(i128::from(attached.lun)));
        meta.set_field("snapshot_name", PyValue::str(name));
        Ok(CreatedSnapshot {
            metadata: meta,
            owner: None,
        })
    }

    /// Snapshots are usable once created; this only waits for a background copy that a
    /// snapshot still reports under way (`completionPercent` below 100).
    async fn await_snapshots(&self, snapshots: &[SnapshotMetadata]) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let group = self.resource_group()?;
        let deadline = tokio::time::Instant::now() + self.settings.await_timeout;
        let mut pause = Duration::from_secs(1);
        for snapshot in snapshots {
            let name = Self::snapshot_name_of(snapshot)?;
            loop {
                let found = self.client.get_snapshot(group, name).await?;
                let state = found.provisioning_state();
                if state.eq_ignore_ascii_case("failed") || state.eq_ignore_ascii_case("canceled") {
                    return Err(Error::Failed(format!(
                        "Snapshot '{name}' is in provisioning state {state}"
                    )));
                }
                if state.eq_ignore_ascii_case("succeeded") && found.copy_complete() {
                    break;
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(Error::Failed(format!(
                        "Snapshot '{name}' not completed within {} seconds ({state}, {}%)",
                        self.settings.await_timeout.as_secs(),
                        found.properties.completion_percent.unwrap_or(0.0)
                    )));
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = pause.mul_f64(1.5).min(Duration::from_secs(30));
            }
        }
        Ok(())
    }

    fn snapshots_info(&self, created: &[CreatedSnapshot]) -> SnapshotsInfo {
        let mut info = SnapshotsInfo::new(SnapshotCloud::Azure);
        info.set_info("subscription_id", PyValue::str(self.subscription_id()));
        info.set_info(
            "resource_group",
            match &self.settings.resource_group {
                Some(group) => PyValue::str(group.clone()),
                None => PyValue::None,
            },
        );
        info.snapshots = created.iter().map(|c| c.metadata.clone()).collect();
        info
    }

    async fn snapshot_name(
        &self,
        snapshot: &SnapshotMetadata,
        info: &SnapshotsInfo,
    ) -> Result<Option<String>> {
        let Some(name) = snapshot.identifier().filter(|n| !n.is_empty()) else {
            return Ok(Some(String::new()));
        };
        let group = Self::recorded_group(info)?;
        match self.client.get_snapshot(&group, name).await {
            Ok(_) => Ok(Some(name.to_string())),
            Err(e) if e.is_resource_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_snapshot(
        &self,
        snapshot: &SnapshotMetadata,
        info: &SnapshotsInfo,
    ) -> Result<()> {
        let name = Self::snapshot_name_of(snapshot)?;
        let group = Self::recorded_group(info)?;
        match self.client.delete_snapshot(&group, name).await {
            Ok(_) => {}
            Err(ArmError::OperationFailed {
                status,
                code,
                message,
                ..
            }) => {
                return Err(Error::Failed(format!(
                    "Deletion of snapshot {name} failed with error code {status}: ({code}) {message}"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!("Snapshot {name} deleted");
        Ok(())
    }
}

/// The credential `--azure-credential` names.
pub fn credential(kind: AzureCredentialKind) -> Result<Arc<dyn TokenCredential>> {
    let failed = |what: &str, e: azure_core::Error| {
        Error::Config(format!("cannot set up the {what} credential: {e}"))
    };
    Ok(match kind {
        AzureCredentialKind::AzureCli => {
            azure_identity::AzureCliCredential::new(None).map_err(|e| failed("Azure CLI", e))?
        }
        AzureCredentialKind::ManagedIdentity => {
            azure_identity::ManagedIdentityCredential::new(None)
                .map_err(|e| failed("managed identity", e))?
        }
        AzureCredentialKind::Default => Arc::new(DefaultChain::from_environment()),
    })
}

/// One credential of [`DefaultChain`]: its name, and the credential or why it cannot be
/// used here.
type ChainLink = (
    &'static str,
    std::result::Result<Arc<dyn TokenCredential>, String>,
);

/// Python's `DefaultAzureCredential`, as far as `azure_identity` 1.x goes: an environment
/// service principal (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`),
/// workload identity (`AZURE_FEDERATED_TOKEN_FILE`), managed identity, Azure CLI; the first
/// that gives a token is kept for the next ones.
#[derive(Debug)]
pub struct DefaultChain {
    sources: Vec<ChainLink>,
    chosen: std::sync::Mutex<Option<usize>>,
}

impl DefaultChain {
    pub fn from_environment() -> Self {
        let mut sources: Vec<ChainLink> = Vec::new();
        let service_principal = match (
            env_nonempty("AZURE_TENANT_ID"),
            env_nonempty("AZURE_CLIENT_ID"),
            env_nonempty("AZURE_CLIENT_SECRET"),
        ) {
            (Some(tenant), Some(client), Some(secret)) => {
                azure_identity::ClientSecretCredential::new(
                    &tenant,
                    client,
                    azure_core::credentials::Secret::new(secret),
                    None,
                )
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| e.to_string())
            }
            _ => Err(
                "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not all set"
                    .to_string(),
            ),
        };
        sources.push(("EnvironmentCredential", service_principal));
        let workload = if env_nonempty("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            azure_identity::WorkloadIdentityCredential::new(None)
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| e.to_string())
        } else {
            Err("AZURE_FEDERATED_TOKEN_FILE is not set".to_string())
        };
        sources.push(("WorkloadIdentityCredential", workload));
        sources.push((
            "ManagedIdentityCredential",
            azure_identity::ManagedIdentityCredential::new(None)
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| e.to_string()),
        ));
        sources.push((
            "AzureCliCredential",
            azure_identity::AzureCliCredential::new(None)
                .map(|c| c as Arc<dyn TokenCredential>)
                .map_err(|e| e.to_string()),
        ));
        DefaultChain {
            sources,
            chosen: std::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl TokenCredential for DefaultChain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let chosen = self.chosen.lock().ok().and_then(|c| *c);
        if let Some(i) = chosen
            && let Some((_, Ok(credential))) = self.sources.get(i)
        {
            return credential.get_token(scopes, options).await;
        }
        let mut failures = Vec::new();
        for (i, (name, source)) in self.sources.iter().enumerate() {
            match source {
                Ok(credential) => match credential.get_token(scopes, options.clone()).await {
                    Ok(token) => {
                        if let Ok(mut c) = self.chosen.lock() {
                            *c = Some(i);
                        }
                        return Ok(token);
                    }
                    Err(e) => failures.push(format!("{name}: {e}")),
                },
                Err(why) => failures.push(format!("{name}: {why}")),
            }
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            format!(
                "DefaultAzureCredential failed to retrieve a token from the included \
                 credentials.\n{}",
                failures.join("\n")
            ),
        ))
    }
}

/// A credential that hands out a fixed token: for emulators and tests.
#[derive(Clone)]
pub struct StaticToken(pub String);

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken")
    }
}

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

#[cfg(test)]
mod tests;
