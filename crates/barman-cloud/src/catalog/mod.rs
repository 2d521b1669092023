//! The backup catalog: `base/<backup_id>/backup.info` files and what the list, show, backup,
//! restore and delete commands make of them.
//!
//! [`backup_info`] reads and writes backup.info exactly as Barman 3.20.1 does,
//! [`pyliteral`] is the Python-literal encoding some of its fields use, [`timestamp`] its
//! times, [`snapshots`] the snapshot-backup metadata, [`render`] the backup-list and
//! backup-show outputs, [`keep`] keep annotations, [`json`] Python's `json.dumps`.
//! Nothing here does I/O: callers fetch objects and pass their bytes.

pub mod backup_info;
mod error;
pub mod json;
pub mod keep;
pub mod manifest;
mod printable;
pub mod pyliteral;
pub mod render;
pub mod snapshots;
#[cfg(test)]
mod tests_support;
pub mod timestamp;

pub use backup_info::{BackupInfo, BackupStatus, Field, Tablespace};
pub use error::CatalogError;
pub use keep::{Keep, KeepAnnotations, keep_target_from_annotation};
pub use pyliteral::{PyDict, PyValue};
pub use render::{
    ListEntry, backup_list_console, backup_list_json, backup_show_console, backup_show_json,
};
pub use snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
pub use timestamp::Timestamp;
