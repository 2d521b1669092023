//! `barman-cloud-wal-archive`: one WAL file to one object.
//!
//! # One WAL, one content
//!
//! Barman overwrites an archived WAL silently; here a WAL name ends up with exactly one
//! object, whatever the compressions of the archivers that race for it, and an archived
//! WAL is never replaced (that silently loses data):
//!
//! 1. **Pre-check.** List the WAL name under every suffix (`NAME`, `NAME.gz`, `NAME.zst`…).
//!    A copy there is compared with the file, decompressed: identical is success without
//!    an upload (PostgreSQL re-runs `archive_command` after failures), different is refused
//!    (exit 1) and the archived copy kept.
//! 2. **Create-only write** of our key: If-None-Match on S3 and Azure, generation 0 on GCS,
//!    a no-clobber hard link for `file://` (whose staging files `KEY#N` never show in
//!    listings). If the key exists already, step 1's comparison applies to it. A copy that
//!    vanishes before step 1 or 2 reads it was withdrawn by a losing archiver: start over.
//! 3. **Settle.** List the WAL name again (this listing also checks our object's size; it
//!    replaces the HEAD request that did, so the uncontended path stays LIST, PUT, LIST).
//!    Alone: success. A smaller key of the same WAL is there: we lose. Ours is the
//!    smallest: the others' writers are concurrent losers about to withdraw theirs, so poll
//!    the listing (50 ms, doubling to 250 ms) until we are alone (success), a smaller key
//!    shows up (we lose), or [`SETTLE_WAIT`] passes with others still there (one of them
//!    had already seen itself alone and succeeded: we lose). A loser deletes its own
//!    object, never another's, and exits 1 naming the copy that won; a retry of it then
//!    goes through step 1.
//!
//! Why at most one archiver succeeds, and its object stays: an archiver succeeds only when a
//! listing taken after its write shows its object alone, and objects are deleted only by
//! their own writers, only when they lose. Listings are strongly consistent (S3, Azure,
//! GCS, local directories), so if A saw itself alone at time t, every object written before
//! t had been withdrawn, and any archiver writing after t finds A's object in its own settle
//! listing, never sees itself alone, and loses. This holds whatever the wait; the wait only
//! decides when the smallest key gives up on a copy that does not go away.
//!
//! Corner cases: if a settle listing fails, our object is withdrawn and the archive fails
//! (the retry uploads again). If withdrawing fails, the error names the copy left behind.
//! If our object is gone from the settle listing, or has the wrong size, the archive fails
//! and nothing is deleted. An archiver that stalls for longer than the wait between its
//! write and its decision can make the waiting one give up as well: then no copy remains,
//! both fail and PostgreSQL retries. An archiver that wrote its own copy never reports
//! success unless that copy stays.
//!
//! Limits: a copy found identical in step 1 or 2 is trusted as it is. If it belongs to an
//! archiver still settling that then loses (to a copy with different content: three
//! archivers of one WAL with two contents, which only a misconfiguration produces; or to
//! nothing after such a stall), the success was reported for content that is not kept.
//! Block uploads (Azure, above `--max-single-put-size`) cannot be create-only: two with the
//! same compression can still overwrite each other; other compressions settle as above.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::PutPayload;

use super::name::{WalKind, WalName, split_compression_suffix};
use crate::compression::{Compression, CompressionLevel, StreamError};
use crate::error::{Error, Result};
use crate::storage::{CloudStorage, ObjectInfo, PutOutcome};

/// How long the archiver holding the smallest key waits for the other copies of its WAL to
/// be withdrawn before concluding that one of them had already won.
pub const SETTLE_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct WalArchiveRequest {
    pub server_name: String,
    pub wal_path: PathBuf,
    pub compression: Option<Compression>,
    pub compression_level: CompressionLevel,
    /// Tags for every WAL file.
    pub tags: Vec<(String, String)>,
    /// Tags used instead for `.history` files, when not empty.
    pub history_tags: Vec<(String, String)>,
    /// Files larger than this go up in blocks (`--max-single-put-size`; Azure only, as in
    /// Barman, where it defaults to 64 MiB).
    pub max_single_put_size: Option<u64>,
    /// Block size and parallelism of such uploads (`--max-block-size`, `--max-concurrency`).
    pub block_size: u64,
    pub block_concurrency: usize,
}

impl Default for WalArchiveRequest {
    fn default() -> Self {
        Self {
            server_name: String::new(),
            wal_path: PathBuf::new(),
            compression: None,
            compression_level: CompressionLevel::default(),
            tags: Vec::new(),
            history_tags: Vec::new(),
            max_single_put_size: None,
            block_size: 4 << 20,
            block_concurrency: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveOutcome {
    Uploaded { key: String },
    AlreadyArchived { key: String },
}

pub async fn archive_wal(
    storage: &CloudStorage,
    request: &WalArchiveRequest,
) -> Result<ArchiveOutcome> {
    archive_wal_settling(storage, request, SettleTiming::DEFAULT).await
}

/// The polling of step 3 (see the module documentation).
#[derive(Debug, Clone, Copy)]
struct SettleTiming {
    wait: Duration,
    first_poll: Duration,
    max_poll: Duration,
}

impl SettleTiming {
    const DEFAULT: SettleTiming = SettleTiming {
        wait: SETTLE_WAIT,
        first_poll: Duration::from_millis(50),
        max_poll: Duration::from_millis(250),
    };
}

async fn archive_wal_settling(
    storage: &CloudStorage,
    request: &WalArchiveRequest,
    timing: SettleTiming,
) -> Result<ArchiveOutcome> {
    let basename = request
        .wal_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let wal = WalName::parse(basename).map_err(|_| {
        Error::InvalidInput(format!(
            "{} is an invalid name for a WAL file",
            request.wal_path.display()
        ))
    })?;
    let directory = super::wal_directory(storage, &request.server_name, &wal);
    let name_key = format!("{directory}/{wal}");
    let suffix = request.compression.map(|c| c.suffix()).unwrap_or("");
    let key = format!("{name_key}{suffix}");

    // Reading (and compressing) the file overlaps with the listing round trip.
    let path = request.wal_path.clone();
    let (compression, level) = (request.compression, request.compression_level);
    let mut payload = Payload::Pending(tokio::task::spawn_blocking(move || {
        read_payload(&path, compression, level)
    }));
    let tags = if wal.kind() == WalKind::History && !request.history_tags.is_empty() {
        &request.history_tags
    } else {
        &request.tags
    };
    // A copy found by the pre-check or at our key can vanish before we read it: a
    // concurrent archiver withdrew it after losing. Then we start over.
    let mut passes = 0;
    let (size, blocks) = loop {
        passes += 1;
        if passes > MAX_PASSES {
            return Err(Error::Failed(format!(
                "copies of WAL file {} kept appearing and vanishing during {MAX_PASSES} attempts to archive it",
                request.wal_path.display()
            )));
        }
        let existing = archived_copies(storage, &name_key, wal.as_str()).await?;
        if !existing.is_empty() {
            match compare_with_archived(storage, &request.wal_path, &existing).await? {
                Some(outcome) => return Ok(outcome),
                None => continue,
            }
        }
        let payload = payload.get().await?;
        let size = payload.content_length() as u64;
        let blocks = request
            .max_single_put_size
            .is_some_and(|limit| size > limit);
        if blocks {
            // Block uploads cannot be create-only; the listing above is the guard against
            // another archiver using the same key.
            storage
                .put_multipart(
                    &key,
                    Bytes::from(payload),
                    request.block_size as usize,
                    request.block_concurrency,
                    tags,
                )
                .await?;
            break (size, blocks);
        }
        match storage.put_if_absent(&key, payload, tags).await? {
            PutOutcome::Created => break (size, blocks),
            // Someone stored the same name between our listing and our write.
            PutOutcome::AlreadyExists => {
                let info = ObjectInfo {
                    key: key.clone(),
                    size,
                };
                if let Some(outcome) =
                    compare_with_archived(storage, &request.wal_path, &[info]).await?
                {
                    return Ok(outcome);
                }
            }
        }
    };
    storage.sync_to_disk(&key)?;
    let ours = ObjectInfo { key, size };
    settle(storage, &request.wal_path, &name_key, &wal, &ours, timing).await?;
    let key = ours.key;
    if blocks {
        tracing::info!("archived {} as {key} in blocks", request.wal_path.display());
    } else {
        tracing::info!("archived {} as {key}", request.wal_path.display());
    }
    Ok(ArchiveOutcome::Uploaded { key })
}

/// Most rounds of pre-check and write when copies vanish under our feet.
const MAX_PASSES: u32 = 3;

/// The file's bytes to upload: read (and compressed) once, while the first listing runs.
enum Payload {
    Pending(tokio::task::JoinHandle<Result<PutPayload>>),
    Ready(PutPayload),
}

impl Payload {
    async fn get(&mut self) -> Result<PutPayload> {
        if let Payload::Pending(task) = self {
            let ready = task
                .await
                .map_err(|e| Error::Failed(format!("compression task failed: {e}")))??;
            *self = Payload::Ready(ready);
        }
        match self {
            Payload::Ready(payload) => Ok(payload.clone()),
            Payload::Pending(_) => unreachable!("resolved above"),
        }
    }
}

/// What one settle listing says about our freshly written copy.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The only copy of the WAL: archived.
    Alone,
    /// Ours is the smallest key; the others should be withdrawn soon.
    Wait,
    /// Another copy wins (`winner`); ours must be withdrawn.
    Lose { winner: String, after_wait: bool },
}

/// Step 3's rule for one listing of the WAL's copies (`copies`, any order), our copy
/// `ours`, and whether the wait is over.
fn judge(copies: &[ObjectInfo], ours: &ObjectInfo, wait_over: bool) -> Result<Verdict> {
    let Some(listed) = copies.iter().find(|c| c.key == ours.key) else {
        return Err(Error::Failed(format!(
            "archived object {} disappeared right after it was written (deleted by someone else?)",
            ours.key
        )));
    };
    if listed.size != ours.size {
        return Err(Error::Corrupt(format!(
            "stored object {} has {} bytes, expected {}",
            ours.key, listed.size, ours.size
        )));
    }
    let smallest_other = copies
        .iter()
        .filter(|c| c.key != ours.key)
        .map(|c| c.key.as_str())
        .min();
    Ok(match smallest_other {
        None => Verdict::Alone,
        Some(other) if other < ours.key.as_str() => Verdict::Lose {
            winner: other.to_string(),
            after_wait: false,
        },
        Some(other) if wait_over => Verdict::Lose {
            winner: other.to_string(),
            after_wait: true,
        },
        Some(_) => Verdict::Wait,
    })
}

/// Step 3: lists the WAL's copies until ours is alone (`Ok`) or has lost and been
/// withdrawn (`Err`).
async fn settle(
    storage: &CloudStorage,
    local: &Path,
    name_key: &str,
    wal: &WalName,
    ours: &ObjectInfo,
    timing: SettleTiming,
) -> Result<()> {
    let start = Instant::now();
    let mut poll = timing.first_poll;
    let mut waiting = false;
    loop {
        let wait_over = start.elapsed() >= timing.wait;
        let copies = match archived_copies(storage, name_key, wal.as_str()).await {
            Ok(copies) => copies,
            Err(e) => {
                // Whether we won is unknown: withdrawing leaves the decision to the others
                // and to the retry.
                let (detail, network) = match e {
                    Error::Connectivity(m) => (m, true),
                    other => (other.to_string(), false),
                };
                let message = withdraw(
                    storage,
                    ours,
                    format!(
                        "WAL file {}: cannot check for concurrent archivers of {wal} ({detail})",
                        local.display()
                    ),
                    "a retry compares it with the file",
                )
                .await;
                return Err(if network {
                    Error::Connectivity(message)
                } else {
                    Error::Failed(message)
                });
            }
        };
        match judge(&copies, ours, wait_over)? {
            Verdict::Alone => return Ok(()),
            Verdict::Wait => {
                if !waiting {
                    waiting = true;
                    tracing::info!(
                        "{wal} is being archived concurrently with another compression too; waiting for the other copies to be withdrawn"
                    );
                }
            }
            Verdict::Lose { winner, after_wait } => {
                let why = if after_wait {
                    format!(
                        "WAL file {} was archived concurrently by another archiver with another compression, as {winner}, which was still there after {} s",
                        local.display(),
                        timing.wait.as_secs_f64()
                    )
                } else {
                    format!(
                        "WAL file {}: a concurrent archiver of the same WAL with another compression won, as {winner}",
                        local.display()
                    )
                };
                let hint = format!("two copies of {wal} remain: delete {} by hand", ours.key);
                return Err(Error::Conflict(withdraw(storage, ours, why, &hint).await));
            }
        }
        let left = timing.wait.saturating_sub(start.elapsed());
        tokio::time::sleep(poll.min(left)).await;
        poll = (poll * 2).min(timing.max_poll);
    }
}

/// Deletes our own copy after losing (or not knowing whether we won); returns the error
/// message: `why`, then whether the copy is gone, with `hint` if it is not.
async fn withdraw(storage: &CloudStorage, ours: &ObjectInfo, why: String, hint: &str) -> String {
    match storage
        .delete_objects(std::slice::from_ref(&ours.key), 1, 1)
        .await
        .into_result()
    {
        Ok(()) => format!("{why}; our copy {} was withdrawn", ours.key),
        Err(e) => format!(
            "{why}; our copy {} could NOT be withdrawn ({e}), it is left behind: {hint}",
            ours.key
        ),
    }
}

fn read_payload(
    path: &Path,
    compression: Option<Compression>,
    level: CompressionLevel,
) -> Result<PutPayload> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let Some(codec) = compression else {
        let mut data = Vec::with_capacity(len as usize);
        file.read_to_end(&mut data)
            .map_err(|e| Error::io(path, e))?;
        return Ok(PutPayload::from(data));
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pieces = codec
        .compress_file_parallel(level, path, len, threads)
        .map_err(|e| match e {
            StreamError::Read(e) => Error::io(path, e),
            StreamError::Write(e) => Error::Compression {
                codec: codec.name(),
                source: e,
            },
        })?;
    Ok(pieces.into_iter().map(Bytes::from).collect())
}

/// Objects that hold `wal_name` under any compression suffix.
async fn archived_copies(
    storage: &CloudStorage,
    name_key: &str,
    wal_name: &str,
) -> Result<Vec<ObjectInfo>> {
    let listed = storage.list(name_key).await?;
    Ok(listed
        .into_iter()
        .filter(|o| {
            let basename = o.key.rsplit('/').next().unwrap_or_default();
            split_compression_suffix(basename).0 == wal_name
        })
        .collect())
}

/// Compares the local file with the listed copies of its WAL: `Some` (identical) when every
/// copy still there is identical, `None` when all of them vanished meanwhile (withdrawn by
/// concurrent archivers that lost), a conflict if any differs.
async fn compare_with_archived(
    storage: &CloudStorage,
    local: &Path,
    existing: &[ObjectInfo],
) -> Result<Option<ArchiveOutcome>> {
    let local_data = tokio::fs::read(local)
        .await
        .map_err(|e| Error::io(local, e))?;
    let mut found = None;
    for object in existing {
        let stored = match storage.get(&object.key).await {
            Ok(stored) => stored,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let basename = object.key.rsplit('/').next().unwrap_or_default();
        let content = match split_compression_suffix(basename).1 {
            None => stored.to_vec(),
            Some(codec) => {
                let mut out = Vec::with_capacity(local_data.len());
                codec
                    .decompress(&stored[..], &mut out)
                    .map_err(|e| match e {
                        StreamError::Read(e) | StreamError::Write(e) => codec.decode_error(e),
                    })?;
                out
            }
        };
        if content != local_data {
            return Err(Error::Conflict(format!(
                "WAL file {} is already archived as {} with different content; refusing to overwrite it",
                local.display(),
                object.key
            )));
        }
        found.get_or_insert_with(|| object.key.clone());
    }
    let Some(key) = found else {
        return Ok(None);
    };
    tracing::info!(
        "{} is already archived with identical content as {key}; nothing to do",
        local.display()
    );
    Ok(Some(ArchiveOutcome::AlreadyArchived { key }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    const SEG: &str = "000000010000000000000003";

    struct Bucket {
        dir: tempfile::TempDir,
        storage: CloudStorage,
        name_key: String,
    }

    impl Bucket {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("file://{}", dir.path().display());
            let storage = CloudStorage::open(&url, &StorageOptions::default())
                .await
                .unwrap();
            let name_key = format!(
                "{}/{SEG}",
                super::super::wal_directory(&storage, "srv", &WalName::parse(SEG).unwrap())
            );
            Bucket {
                dir,
                storage,
                name_key,
            }
        }

        fn key(&self, suffix: &str) -> String {
            format!("{}{suffix}", self.name_key)
        }

        async fn put(&self, suffix: &str, data: &[u8]) -> ObjectInfo {
            let key = self.key(suffix);
            self.storage
                .put(&key, PutPayload::from(data.to_vec()), &[])
                .await
                .unwrap();
            ObjectInfo {
                key,
                size: data.len() as u64,
            }
        }

        /// Object keys of the WAL, as suffixes.
        async fn suffixes(&self) -> Vec<String> {
            archived_copies(&self.storage, &self.name_key, SEG)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key[self.name_key.len()..].to_string())
                .collect()
        }

        /// The one copy of the WAL, decompressed.
        async fn content(&self) -> Vec<u8> {
            let copies = archived_copies(&self.storage, &self.name_key, SEG)
                .await
                .unwrap();
            assert_eq!(copies.len(), 1, "{copies:?}");
            let stored = self.storage.get(&copies[0].key).await.unwrap();
            let basename = copies[0].key.rsplit('/').next().unwrap();
            match split_compression_suffix(basename).1 {
                None => stored.to_vec(),
                Some(codec) => {
                    let mut out = Vec::new();
                    codec.decompress(&stored[..], &mut out).unwrap();
                    out
                }
            }
        }

        async fn settle(&self, ours: &ObjectInfo, wait: Duration) -> Result<()> {
            let timing = SettleTiming {
                wait,
                first_poll: Duration::from_millis(10),
                max_poll: Duration::from_millis(50),
            };
            let wal = WalName::parse(SEG).unwrap();
            settle(
                &self.storage,
                Path::new(SEG),
                &self.name_key,
                &wal,
                ours,
                timing,
            )
            .await
        }

        /// Archives `data` under SEG with `compression` from a file of its own.
        async fn archive(
            &self,
            compression: Option<Compression>,
            data: &[u8],
            wait: Duration,
        ) -> Result<ArchiveOutcome> {
            let work = self.dir.path().join("pg").join(unique());
            std::fs::create_dir_all(&work).unwrap();
            let wal_path = work.join(SEG);
            std::fs::write(&wal_path, data).unwrap();
            let request = WalArchiveRequest {
                server_name: "srv".into(),
                wal_path,
                compression,
                ..Default::default()
            };
            let timing = SettleTiming {
                wait,
                ..SettleTiming::DEFAULT
            };
            archive_wal_settling(&self.storage, &request, timing).await
        }
    }

    fn unique() -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .to_string()
    }

    fn info(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
        }
    }

    fn content(seed: u8) -> Vec<u8> {
        (0..64 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
            .collect()
    }

    #[test]
    fn judge_alone_smaller_other_and_wait() {
        let ours = info("w/X.gz", 5);
        assert_eq!(
            judge(std::slice::from_ref(&ours), &ours, false).unwrap(),
            Verdict::Alone
        );
        // A smaller key wins at once, wait or not.
        let copies = [info("w/X", 9), ours.clone(), info("w/X.zst", 3)];
        assert_eq!(
            judge(&copies, &ours, false).unwrap(),
            Verdict::Lose {
                winner: "w/X".into(),
                after_wait: false
            }
        );
        // Ours smallest: wait, then lose to the copy that stayed.
        let copies = [ours.clone(), info("w/X.zst", 3), info("w/X.lz4", 3)];
        assert_eq!(judge(&copies, &ours, false).unwrap(), Verdict::Wait);
        assert_eq!(
            judge(&copies, &ours, true).unwrap(),
            Verdict::Lose {
                winner: "w/X.lz4".into(),
                after_wait: true
            }
        );
    }

    #[test]
    fn judge_refuses_a_missing_or_truncated_copy_of_ours() {
        let ours = info("w/X.gz", 5);
        let err = judge(&[info("w/X.zst", 5)], &ours, false).unwrap_err();
        assert!(err.to_string().contains("disappeared"), "{err}");
        let err = judge(&[info("w/X.gz", 4)], &ours, false).unwrap_err();
        assert!(err.to_string().contains("has 4 bytes, expected 5"), "{err}");
    }

    #[tokio::test]
    async fn smallest_copy_waits_for_a_concurrent_loser_to_withdraw() {
        let bucket = Bucket::new().await;
        let ours = bucket.put("", b"ours").await;
        let other = bucket.put(".gz", b"other").await;
        let storage = &bucket.storage;
        let withdraw_other = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            storage
                .delete_objects(std::slice::from_ref(&other.key), 1, 1)
                .await
                .into_result()
                .unwrap();
        };
        let start = Instant::now();
        let (settled, ()) = tokio::join!(
            bucket.settle(&ours, Duration::from_secs(20)),
            withdraw_other
        );
        settled.unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(bucket.suffixes().await, [""]);
    }

    #[tokio::test]
    async fn smallest_copy_gives_up_when_a_committed_copy_stays() {
        let bucket = Bucket::new().await;
        let ours = bucket.put("", b"ours").await;
        bucket.put(".gz", b"committed").await;
        let start = Instant::now();
        let err = bucket
            .settle(&ours, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(matches!(err, Error::Conflict(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&bucket.key(".gz")), "{text}");
        assert!(text.contains("still there after 0.3 s"), "{text}");
        assert!(text.contains("was withdrawn"), "{text}");
        // Ours is gone, the committed copy untouched.
        assert_eq!(bucket.suffixes().await, [".gz"]);
    }

    #[tokio::test]
    async fn greater_copy_loses_at_once_and_withdraws_only_itself() {
        let bucket = Bucket::new().await;
        bucket.put(".gz", b"other").await;
        let ours = bucket.put(".zst", b"ours").await;
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            bucket.settle(&ours, Duration::from_secs(60)),
        )
        .await
        .expect("a greater key must not wait")
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "a concurrent archiver of the same WAL with another compression won, as {}",
                bucket.key(".gz")
            )),
            "{text}"
        );
        assert_eq!(bucket.suffixes().await, [".gz"]);
    }

    #[tokio::test]
    async fn waiting_copy_loses_to_a_smaller_newcomer() {
        let bucket = Bucket::new().await;
        let ours = bucket.put(".gz", b"ours").await;
        bucket.put(".zst", b"slow loser").await;
        let newcomer = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            bucket.put("", b"newcomer").await;
        };
        let (settled, ()) = tokio::join!(bucket.settle(&ours, Duration::from_secs(60)), newcomer);
        let text = settled.unwrap_err().to_string();
        assert!(
            text.contains(&format!("won, as {}", bucket.key(""))),
            "{text}"
        );
        // Only ours was deleted: the others are their writers' business.
        assert_eq!(bucket.suffixes().await, ["", ".zst"]);
    }

    #[tokio::test]
    async fn uncontended_archive_then_identical_retry_and_refused_change() {
        let bucket = Bucket::new().await;
        let data = content(1);
        let wait = Duration::from_secs(1);
        let first = bucket
            .archive(Some(Compression::Gzip), &data, wait)
            .await
            .unwrap();
        assert_eq!(
            first,
            ArchiveOutcome::Uploaded {
                key: bucket.key(".gz")
            }
        );
        // PostgreSQL's retry, with the same or another compression: nothing new.
        for compression in [Some(Compression::Gzip), None, Some(Compression::Zstd)] {
            assert_eq!(
                bucket.archive(compression, &data, wait).await.unwrap(),
                ArchiveOutcome::AlreadyArchived {
                    key: bucket.key(".gz")
                }
            );
        }
        let err = bucket
            .archive(Some(Compression::Lz4), &content(2), wait)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("different content"), "{err}");
        assert_eq!(bucket.suffixes().await, [".gz"]);
        assert_eq!(bucket.content().await, data);
        // No staging file left over either.
        let dir = bucket
            .dir
            .path()
            .join(&bucket.name_key)
            .parent()
            .unwrap()
            .to_owned();
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_archivers_with_other_compressions_leave_one_copy() {
        let codecs = [
            None,
            Some(Compression::Gzip),
            Some(Compression::Zstd),
            Some(Compression::Lz4),
            Some(Compression::Bzip2),
        ];
        for identical in [false, false, false, true] {
            let bucket = Bucket::new().await;
            let inputs: Vec<Vec<u8>> = (0..codecs.len())
                .map(|i| content(if identical { 7 } else { i as u8 + 10 }))
                .collect();
            let results = futures::future::join_all(
                codecs
                    .iter()
                    .zip(&inputs)
                    .map(|(codec, data)| bucket.archive(*codec, data, Duration::from_secs(2))),
            )
            .await;
            let stored = bucket.content().await;
            let succeeded: Vec<usize> =
                (0..results.len()).filter(|&i| results[i].is_ok()).collect();
            if identical {
                assert!(!succeeded.is_empty(), "{results:?}");
                assert_eq!(stored, inputs[0]);
            } else {
                assert_eq!(succeeded.len(), 1, "{results:?}");
                assert_eq!(stored, inputs[succeeded[0]], "{results:?}");
                assert!(
                    matches!(results[succeeded[0]], Ok(ArchiveOutcome::Uploaded { .. })),
                    "{results:?}"
                );
            }
        }
    }
}
