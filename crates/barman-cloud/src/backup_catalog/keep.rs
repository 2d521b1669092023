//! Keeping a backup (barman-cloud-backup-keep): the rule on the backup's status; the
//! annotation itself is written by the [`CatalogStore`].

use super::read_backup_info;
use crate::catalog::BackupStatus;
use crate::catalog_store::{CatalogStore, KeepTarget};
use crate::error::{Error, Result};

/// `barman-cloud-backup-keep --target`: only a DONE backup can be kept.
pub async fn add_keep(
    store: &impl CatalogStore,
    backup_id: &str,
    target: KeepTarget,
) -> Result<()> {
    let server = store.server();
    let info = read_backup_info(store, backup_id).await?.ok_or_else(|| {
        Error::Missing(format!(
            "Backup {backup_id} for server {server} does not exist"
        ))
    })?;
    if info.status != Some(BackupStatus::Done) {
        let status = info.status.as_ref().map_or("None", BackupStatus::as_str);
        return Err(Error::Refused(format!(
            "Cannot add keep to backup {backup_id} because it has status {status}. \
             Only backups with status DONE can be kept."
        )));
    }
    store.write_keep(backup_id, target).await
}
