//! Integration tests of the commands against real servers (see `support`): one test
//! binary with modules, so the whole suite links once.

mod backup;
mod backup_catalog;
mod cnpg;
mod crafted;
mod delete;
mod ec2;
mod hook_mode;
mod manifest;
mod postgres;
mod restore;
mod robustness;
mod server_backup;
mod server_catalog;
mod server_check;
mod server_check_clouds;
mod server_config;
mod server_cycle;
mod server_delete;
mod server_hooks;
mod server_recover;
mod server_status;
mod server_wal_cli;
mod server_world;
mod snapshot_aws;
mod snapshot_azure;
mod snapshot_barman;
mod snapshot_gcp;
mod support;
mod wal_cli;
mod wal_clients;
mod wal_interop;
mod wal_options;
mod wal_race;
