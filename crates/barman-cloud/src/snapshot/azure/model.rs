//! The ARM JSON documents the provider reads (Microsoft.Compute `virtualMachines`, `disks`,
//! `snapshots`, long-running operation status, error bodies). Only the fields used are
//! declared; everything else is ignored.

use serde::Deserialize;

/// `GET .../virtualMachines/{vm}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualMachine {
    pub id: String,
    pub name: String,
    pub location: String,
    pub properties: VmProperties,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VmProperties {
    pub storage_profile: StorageProfile,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageProfile {
    /// Read only so that tests can check it is never chosen.
    pub os_disk: Option<OsDisk>,
    /// In the VM's attachment order.
    pub data_disks: Vec<DataDisk>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OsDisk {
    pub name: Option<String>,
}

/// One attached data disk.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DataDisk {
    pub lun: i64,
    pub name: String,
    pub managed_disk: Option<ManagedDiskRef>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedDiskRef {
    pub id: Option<String>,
}

/// `GET .../disks/{disk}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Disk {
    pub id: String,
    pub name: String,
    pub location: String,
    pub properties: DiskProperties,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DiskProperties {
    pub creation_data: CreationData,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CreationData {
    pub create_option: Option<String>,
    pub source_resource_id: Option<String>,
    pub source_uri: Option<String>,
}

/// `GET .../snapshots/{snapshot}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub location: String,
    pub properties: SnapshotProperties,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SnapshotProperties {
    pub provisioning_state: Option<String>,
    pub incremental: Option<bool>,
    /// Percentage of the background copy; Microsoft documents it for snapshots made with
    /// `CopyStart`, and for incremental snapshots of Premium SSD v2 and Ultra disks.
    pub completion_percent: Option<f64>,
}

impl Snapshot {
    pub fn provisioning_state(&self) -> &str {
        self.properties.provisioning_state.as_deref().unwrap_or("")
    }

    /// Whether the background copy is done (or the snapshot has none).
    pub fn copy_complete(&self) -> bool {
        self.properties
            .completion_percent
            .is_none_or(|p| p >= 100.0)
    }
}

/// The document an `Azure-AsyncOperation` URL answers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationStatus {
    pub status: String,
    pub error: Option<ErrorDetail>,
}

/// ARM's error body: `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CloudError {
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The code and message of an ARM error body, `None` when it is not one.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let parsed: CloudError = serde_json::from_slice(body).ok()?;
    let detail = parsed.error?;
    (!detail.code.is_empty()).then_some((detail.code, detail.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arm_documents() {
        let vm: VirtualMachine = serde_json::from_str(
            r#"{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/pg",
                "name": "pg", "location": "westeurope", "type": "Microsoft.Compute/virtualMachines",
                "properties": {"vmId": "x", "provisioningState": "Succeeded", "storageProfile": {
                  "osDisk": {"osType": "Linux", "name": "pg-os", "managedDisk": {"id": "/x/disks/pg-os"}},
                  "dataDisks": [
                    {"lun": 3, "name": "wal", "createOption": "Attach", "managedDisk": {"id": "/x/disks/wal"}},
                    {"lun": 0, "name": "data", "createOption": "Attach", "managedDisk": {"id": "/x/disks/data"}}
                  ]}}}"#,
        )
        .unwrap();
        assert_eq!(vm.properties.storage_profile.data_disks.len(), 2);
        assert_eq!(vm.properties.storage_profile.data_disks[0].lun, 3);
        assert_eq!(
            vm.properties.storage_profile.data_disks[1]
                .managed_disk
                .as_ref()
                .unwrap()
                .id
                .as_deref(),
            Some("/x/disks/data")
        );
        let disk: Disk = serde_json::from_str(
            r#"{"name": "data", "location": "westeurope", "properties": {"creationData":
                {"createOption": "Copy", "sourceResourceId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/snapshots/snap"}}}"#,
        )
        .unwrap();
        assert_eq!(
            disk.properties.creation_data.create_option.as_deref(),
            Some("Copy")
        );
        let snap: Snapshot = serde_json::from_str(
            r#"{"name": "s", "properties": {"provisioningState": "Succeeded", "incremental": true, "completionPercent": 42.5}}"#,
        )
        .unwrap();
        assert_eq!(snap.provisioning_state(), "Succeeded");
        assert!(!snap.copy_complete());
        assert_eq!(
            parse_error(br#"{"error": {"code": "ResourceGroupNotFound", "message": "gone"}}"#),
            Some(("ResourceGroupNotFound".into(), "gone".into()))
        );
        assert_eq!(parse_error(b"<html>"), None);
        assert_eq!(parse_error(b"{}"), None);
    }
}
