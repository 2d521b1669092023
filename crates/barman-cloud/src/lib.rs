//! barman-rs library: Barman-compatible backups of PostgreSQL to object storage.
//!
//! A bucket written by this crate is laid out exactly as Barman 3.20's `barman-cloud-*`
//! commands lay it out, so either tool reads what the other wrote:
//!
//! ```text
//! <prefix>/<server>/base/<backup_id>/backup.info, data.tar[.gz]...
//! <prefix>/<server>/wals/<TTTTTTTTLLLLLLLL>/<segment>[.gz|.bz2|.xz|.snappy|.zst|.lz4]
//! <prefix>/<server>/wals/<timeline>.history
//! ```
//!
//! Modules follow the domain: [`storage`] (one client over S3, Azure, GCS and local
//! directories), [`wal`] (archive, restore and check of WAL files), [`backup_catalog`] (the
//! backups of a server in a bucket, identifier resolution), [`catalog`] (backup.info
//! and the backup-list/-show outputs), [`compression`] (Barman's codecs and levels),
//! [`units`] (Barman's value syntaxes), [`stream`] (async-to-blocking bridges), [`error`];
//! [`server`] holds what the `barman` server adds (configuration, its WAL archive).
//! Command front-ends only parse arguments and call these.

mod accounts;
pub mod backup;
pub mod backup_catalog;
pub mod catalog;
pub mod catalog_store;
pub mod compression;
pub mod delete;
pub mod durable;
pub mod error;
pub mod layout;
pub mod pg;
pub mod restore;
pub mod retention;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod stream;
pub mod units;
pub mod wal;

pub use error::{Error, Result};

/// Version reported by `--version`: the Barman release whose behaviour we reproduce.
pub const BARMAN_COMPAT_VERSION: &str = "3.20.1";
