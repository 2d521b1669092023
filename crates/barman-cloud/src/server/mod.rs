//! The `barman` server of `backup_method = snapshot` (Barman 3.20.1's on-disk layout, so a
//! `barman_home` is served by Python Barman or by us interchangeably): its configuration
//! (`barman.conf`), its WAL archive (`incoming/` filed into `wals/<hash>/` and indexed in
//! `xlog.db`, `put-wal`, `get-wal`) and, later, its backups and recoveries. The `barman`
//! front-end of the CLI crate only parses arguments, calls this and maps errors to exit
//! codes.

pub mod archive;
pub mod backup;
pub mod backup_id;
pub mod catalog_view;
pub mod check;
pub mod config;
pub mod delete;
pub mod get_wal;
pub mod home;
pub mod hooks;
mod ini;
pub mod lock;
pub mod paths;
pub mod put_wal;
pub mod recover;
pub mod recovery_conf;
pub mod status;
pub mod xlogdb;
