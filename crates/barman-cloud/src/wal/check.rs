//! `barman-cloud-check-wal-archive`: is this destination safe for a new cluster's WAL?

use super::name::{WalName, split_compression_suffix};
use crate::error::{Error, Result};
use crate::storage::{BucketState, CloudStorage};

#[derive(Debug, Clone)]
pub struct WalArchiveCheck {
    pub server_name: String,
    /// Accept WAL files from timelines older than this one.
    pub timeline: Option<u32>,
}

/// Creates the bucket when missing (as Barman does), then fails with Barman's message if
/// the archive holds WAL that would clash with a new cluster.
pub async fn check_wal_archive(storage: &mut CloudStorage, check: &WalArchiveCheck) -> Result<()> {
    if storage.bucket_state().await? == BucketState::Missing {
        tracing::info!("creating bucket {}", storage.location().bucket);
        storage.create_bucket().await?;
    }
    let wals = crate::layout::ServerLayout::new(storage, &check.server_name).wals();
    let names: Vec<WalName> = storage
        .list_tree(&wals)
        .await?
        .iter()
        .filter_map(|o| {
            let basename = o.key.rsplit('/').next().unwrap_or_default();
            WalName::try_parse(split_compression_suffix(basename).0)
        })
        .collect();
    let failure = |reason: String| {
        Error::Refused(format!(
            "WAL archive check failed for server {}: {reason}",
            check.server_name
        ))
    };
    match check.timeline {
        None if !names.is_empty() => Err(failure("Expected empty archive".into())),
        None => Ok(()),
        Some(timeline) => {
            let clashing = names.iter().filter(|n| n.timeline() >= timeline).count();
            match clashing {
                0 => Ok(()),
                1 => Err(failure(format!(
                    "Found 1 file in WAL archive equal to or newer than timeline {timeline}"
                ))),
                n => Err(failure(format!(
                    "Found {n} files in WAL archive equal to or newer than timeline {timeline}"
                ))),
            }
        }
    }
}
