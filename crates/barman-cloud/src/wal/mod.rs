//! WAL archiving and restoring in Barman's bucket layout:
//! `<prefix>/<server>/wals/<TTTTTTTTLLLLLLLL>/<name>[.<ext>]`, history files in `wals/`.

mod archive;
pub mod catalog;
mod check;
mod lsn;
pub mod name;
mod restore;

pub use archive::{ArchiveOutcome, WalArchiveRequest, archive_wal};
pub use catalog::WalCatalog;
pub use check::{WalArchiveCheck, check_wal_archive};
pub use lsn::Lsn;
pub use name::{WalKind, WalName, split_compression_suffix};
pub use restore::{RestoreOutcome, WalRestoreRequest, restore_wal};

use crate::layout::ServerLayout;
use crate::storage::CloudStorage;

/// Key of the directory holding `wal` for `server` (no trailing `/`).
pub fn wal_directory(storage: &CloudStorage, server: &str, wal: &WalName) -> String {
    ServerLayout::new(storage, server).wal_directory(wal)
}
