//! The `snapshots_info` field of snapshot backups (Barman: `barman/infofile.py`
//! `load_snapshots_info` and `output_snapshots_info`, `barman/cloud_providers/__init__.py`
//! `snapshots_info_from_dict`, and the `GcpSnapshotsInfo`, `AzureSnapshotsInfo` and
//! `AwsSnapshotsInfo` classes of `barman/cloud_providers/`).
//!
//! Barman does not keep the stored dict: it rebuilds it through per-provider classes, so on
//! reading, the provider's known keys are picked (missing ones become `None`, others are
//! dropped) and on writing the dict always has every known key, in the class's order. We
//! do the same, which makes a re-saved backup.info identical to Barman's re-save.

use super::pyliteral::{PyDict, PyValue};

/// The cloud whose disks a snapshot backup's snapshots are of (`snapshots_info.provider`).
/// Not named provider: that name is kept for the trait the snapshot providers implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCloud {
    Gcp,
    Azure,
    Aws,
}

impl SnapshotCloud {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotCloud::Gcp => "gcp",
            SnapshotCloud::Azure => "azure",
            SnapshotCloud::Aws => "aws",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gcp" => Some(SnapshotCloud::Gcp),
            "azure" => Some(SnapshotCloud::Azure),
            "aws" => Some(SnapshotCloud::Aws),
            _ => None,
        }
    }

    /// Keys of `provider_info`, in the order Barman writes them.
    pub fn info_fields(self) -> &'static [&'static str] {
        match self {
            SnapshotCloud::Gcp => &["project"],
            SnapshotCloud::Azure => &["subscription_id", "resource_group"],
            SnapshotCloud::Aws => &["account_id", "region"],
        }
    }

    /// Keys of each snapshot's `provider` dict, in the order Barman writes them.
    pub fn snapshot_fields(self) -> &'static [&'static str] {
        match self {
            SnapshotCloud::Gcp => &["device_name", "snapshot_name", "snapshot_project"],
            SnapshotCloud::Azure => &["location", "lun", "snapshot_name"],
            SnapshotCloud::Aws => &[
                "device_name",
                "snapshot_id",
                "snapshot_name",
                "snapshot_lock_mode",
            ],
        }
    }

    /// The field naming a snapshot in the provider's API.
    pub fn identifier_field(self) -> &'static str {
        match self {
            SnapshotCloud::Aws => "snapshot_id",
            SnapshotCloud::Gcp | SnapshotCloud::Azure => "snapshot_name",
        }
    }
}

/// Metadata of a snapshot backup: the provider, its account-level fields and one entry per
/// snapshotted disk.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotsInfo {
    provider: SnapshotCloud,
    /// Values of `provider.info_fields()`, same order.
    info: Vec<PyValue>,
    pub snapshots: Vec<SnapshotMetadata>,
}

/// One snapshotted disk.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotMetadata {
    provider: SnapshotCloud,
    pub mount_options: PyValue,
    pub mount_point: PyValue,
    /// Values of `provider.snapshot_fields()`, same order.
    fields: Vec<PyValue>,
}

impl SnapshotsInfo {
    /// Every provider field unset, no snapshots.
    pub fn new(provider: SnapshotCloud) -> Self {
        SnapshotsInfo {
            provider,
            info: vec![PyValue::None; provider.info_fields().len()],
            snapshots: Vec::new(),
        }
    }

    pub fn provider(&self) -> SnapshotCloud {
        self.provider
    }

    /// A `provider_info` value; `None` for a key the provider does not have.
    pub fn info(&self, key: &str) -> Option<&PyValue> {
        let i = self.provider.info_fields().iter().position(|k| *k == key)?;
        self.info.get(i)
    }

    /// Sets a `provider_info` value; returns false (and changes nothing) for a key the
    /// provider does not have, which Barman would not store.
    pub fn set_info(&mut self, key: &str, value: PyValue) -> bool {
        match self.provider.info_fields().iter().position(|k| *k == key) {
            Some(i) => {
                self.info[i] = value;
                true
            }
            None => false,
        }
    }

    /// Builds it from the stored dict as Barman's `snapshots_info_from_dict` does; the error
    /// text is Python's exception message.
    pub fn from_literal(value: &PyValue) -> Result<Self, String> {
        let dict = value
            .as_dict()
            .ok_or_else(|| format!("snapshots_info must be a dict, not {}", value.type_name()))?;
        let provider_value = dict.get("provider").ok_or("'provider'")?;
        let provider = provider_value
            .as_str()
            .and_then(SnapshotCloud::from_name)
            .ok_or_else(|| {
                format!(
                    "Unsupported snapshot provider in backup info: {}",
                    provider_value.py_str()
                )
            })?;
        let mut info = SnapshotsInfo::new(provider);
        if let Some(provider_info) = dict.get("provider_info") {
            let provider_info = provider_info.as_dict().ok_or_else(|| {
                format!(
                    "provider_info must be a dict, not {}",
                    provider_info.type_name()
                )
            })?;
            for (i, key) in provider.info_fields().iter().enumerate() {
                if let Some(v) = provider_info.get(key) {
                    info.info[i] = v.clone();
                }
            }
        }
        let snapshots = match dict.get("snapshots").ok_or("'snapshots'")? {
            PyValue::List(items) | PyValue::Tuple(items) => items,
            other => return Err(format!("'{}' object is not iterable", other.type_name())),
        };
        info.snapshots = snapshots
            .iter()
            .map(|s| SnapshotMetadata::from_literal(provider, s))
            .collect::<Result<_, _>>()?;
        Ok(info)
    }

    /// The dict Barman writes: `provider`, `provider_info`, `snapshots`.
    pub fn to_literal(&self) -> PyValue {
        let mut provider_info = PyDict::new();
        for (key, value) in self.provider.info_fields().iter().zip(&self.info) {
            provider_info.set(key, value.clone());
        }
        let mut dict = PyDict::new();
        dict.set("provider", PyValue::str(self.provider.as_str()));
        dict.set("provider_info", PyValue::Dict(provider_info));
        dict.set(
            "snapshots",
            PyValue::List(
                self.snapshots
                    .iter()
                    .map(SnapshotMetadata::to_literal)
                    .collect(),
            ),
        );
        PyValue::Dict(dict)
    }
}

impl SnapshotMetadata {
    pub fn new(provider: SnapshotCloud) -> Self {
        SnapshotMetadata {
            provider,
            mount_options: PyValue::None,
            mount_point: PyValue::None,
            fields: vec![PyValue::None; provider.snapshot_fields().len()],
        }
    }

    /// A provider field (`snapshot_id`, `lun`...); `None` for a key the provider lacks.
    pub fn field(&self, key: &str) -> Option<&PyValue> {
        let i = self
            .provider
            .snapshot_fields()
            .iter()
            .position(|k| *k == key)?;
        self.fields.get(i)
    }

    /// Sets a provider field; false for a key the provider does not have.
    pub fn set_field(&mut self, key: &str, value: PyValue) -> bool {
        match self
            .provider
            .snapshot_fields()
            .iter()
            .position(|k| *k == key)
        {
            Some(i) => {
                self.fields[i] = value;
                true
            }
            None => false,
        }
    }

    /// The name of the snapshot in the provider's API (`snapshot_id` on AWS,
    /// `snapshot_name` elsewhere), when it is a string.
    pub fn identifier(&self) -> Option<&str> {
        self.field(self.provider.identifier_field())?.as_str()
    }

    fn from_literal(provider: SnapshotCloud, value: &PyValue) -> Result<Self, String> {
        let dict = value.as_dict().ok_or_else(|| {
            format!(
                "snapshot metadata must be a dict, not {}",
                value.type_name()
            )
        })?;
        let mut meta = SnapshotMetadata::new(provider);
        if let Some(mount) = dict.get("mount") {
            let mount = mount
                .as_dict()
                .ok_or_else(|| format!("mount must be a dict, not {}", mount.type_name()))?;
            if let Some(v) = mount.get("mount_options") {
                meta.mount_options = v.clone();
            }
            if let Some(v) = mount.get("mount_point") {
                meta.mount_point = v.clone();
            }
        }
        // Barman looks each field up inside one try block, so a missing or non-dict
        // `provider` entry only leaves the fields unset... unless it is not subscriptable
        // by a string, which raises; a dict is the only literal that is.
        if let Some(fields) = dict.get("provider") {
            let fields = fields.as_dict().ok_or_else(|| {
                format!(
                    "'{}' object is not subscriptable by str",
                    fields.type_name()
                )
            })?;
            for (i, key) in provider.snapshot_fields().iter().enumerate() {
                if let Some(v) = fields.get(key) {
                    meta.fields[i] = v.clone();
                }
            }
        }
        Ok(meta)
    }

    fn to_literal(&self) -> PyValue {
        let mut mount = PyDict::new();
        mount.set("mount_options", self.mount_options.clone());
        mount.set("mount_point", self.mount_point.clone());
        let mut fields = PyDict::new();
        for (key, value) in self.provider.snapshot_fields().iter().zip(&self.fields) {
            fields.set(key, value.clone());
        }
        let mut dict = PyDict::new();
        dict.set("mount", PyValue::Dict(mount));
        dict.set("provider", PyValue::Dict(fields));
        PyValue::Dict(dict)
    }
}

#[cfg(test)]
mod tests {
    use super::super::pyliteral::{parse, repr};
    use super::*;

    fn load(text: &str) -> Result<SnapshotsInfo, String> {
        SnapshotsInfo::from_literal(&parse(text).expect("literal"))
    }

    #[test]
    fn round_trips_what_barman_writes() {
        let text = "{'provider': 'aws', 'provider_info': {'account_id': '123456789012', 'region': 'eu-west-1'}, 'snapshots': [{'mount': {'mount_options': 'rw,noatime', 'mount_point': '/opt/pg'}, 'provider': {'device_name': '/dev/sdf', 'snapshot_id': 'snap-0abc', 'snapshot_name': 'pgdata-20250304t101112', 'snapshot_lock_mode': None}}]}";
        let info = load(text).expect("valid");
        assert_eq!(info.provider(), SnapshotCloud::Aws);
        assert_eq!(info.snapshots[0].identifier(), Some("snap-0abc"));
        assert_eq!(info.info("region"), Some(&PyValue::str("eu-west-1")));
        assert_eq!(repr(&info.to_literal()), text);
    }

    #[test]
    fn normalizes_as_barman_classes_do() {
        let info = load(
            "{'snapshots': [{'provider': {'lun': 3, 'extra': 1}}], 'provider': 'azure', \
             'provider_info': {'resource_group': 'rg', 'other': 'x'}}",
        )
        .expect("valid");
        assert_eq!(
            repr(&info.to_literal()),
            "{'provider': 'azure', 'provider_info': {'subscription_id': None, 'resource_group': 'rg'}, \
             'snapshots': [{'mount': {'mount_options': None, 'mount_point': None}, \
             'provider': {'location': None, 'lun': 3, 'snapshot_name': None}}]}"
        );
        let bare = load("{'provider': 'gcp', 'snapshots': []}").expect("valid");
        assert_eq!(
            repr(&bare.to_literal()),
            "{'provider': 'gcp', 'provider_info': {'project': None}, 'snapshots': []}"
        );
    }

    #[test]
    fn refuses_what_barman_cannot_load() {
        assert_eq!(
            load("{'provider': 'oracle', 'snapshots': []}").unwrap_err(),
            "Unsupported snapshot provider in backup info: oracle"
        );
        assert_eq!(load("{'snapshots': []}").unwrap_err(), "'provider'");
        assert_eq!(load("{'provider': 'gcp'}").unwrap_err(), "'snapshots'");
        assert!(load("[1]").is_err());
        assert!(load("{'provider': 'gcp', 'snapshots': [1]}").is_err());
        assert!(load("{'provider': 'gcp', 'snapshots': 3}").is_err());
    }
}
