//! The async side of a backup upload: turns the archive writers' messages into multipart
//! uploads with up to `jobs` parts in flight, confirms each object's size once it is
//! complete, and aborts the open upload on any failure so no orphan parts stay billed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::archive::UploadMessage;
use crate::catalog::manifest::Digest256;
use crate::error::{Error, Result};
use crate::storage::{CloudStorage, MultipartObject};

/// Timing of one archive family, for `copy_stats`.
#[derive(Debug, Clone)]
pub struct FamilyTimes {
    pub first_start: Instant,
    pub last_end: Instant,
    /// Sum of the part upload durations (Barman's "serialized" time).
    pub serialized: Duration,
}

#[derive(Debug, Default)]
pub struct UploadReport {
    /// Every object written (key), with the size and SHA-256 of what was sent; the size
    /// is confirmed against the stored object.
    pub objects: Vec<(String, Digest256)>,
    pub families: BTreeMap<String, FamilyTimes>,
    pub parts: u64,
}

impl UploadReport {
    pub fn total_bytes(&self) -> u64 {
        self.objects.iter().map(|(_, digest)| digest.size).sum()
    }
}

struct OpenObject {
    family: String,
    upload: MultipartObject,
    in_flight: JoinSet<Result<(Instant, Instant)>>,
}

/// Consumes `messages` until the senders are gone. An object left open then (the
/// producer failed) is aborted and reported as an error.
pub async fn run_uploads(
    storage: Arc<CloudStorage>,
    mut messages: mpsc::Receiver<UploadMessage>,
    jobs: usize,
    tags: Vec<(String, String)>,
) -> Result<UploadReport> {
    let mut report = UploadReport::default();
    let mut open: Option<OpenObject> = None;
    let result = async {
        loop {
            // Room for the next part before taking it off the channel: the parts held in
            // memory stay at `jobs` in flight, one queued and one being filled.
            if let Some(object) = open.as_mut() {
                while object.in_flight.len() >= jobs.max(1) {
                    record(
                        &mut report,
                        &object.family,
                        object.in_flight.join_next().await,
                    )?;
                }
            }
            let Some(message) = messages.recv().await else {
                break;
            };
            match message {
                UploadMessage::Start { family, key } => {
                    tracing::debug!("uploading {key}");
                    // A family's copy time runs from its first object's start, as the
                    // archive is produced while it uploads.
                    let now = Instant::now();
                    report
                        .families
                        .entry(family.clone())
                        .or_insert(FamilyTimes {
                            first_start: now,
                            last_end: now,
                            serialized: Duration::ZERO,
                        });
                    let upload = storage.start_multipart(&key, &tags).await?;
                    open = Some(OpenObject {
                        family,
                        upload,
                        in_flight: JoinSet::new(),
                    });
                }
                UploadMessage::Part(data) => {
                    let object = open
                        .as_mut()
                        .ok_or_else(|| Error::Failed("upload part outside of an object".into()))?;
                    while object.in_flight.len() >= jobs.max(1) {
                        record(
                            &mut report,
                            &object.family,
                            object.in_flight.join_next().await,
                        )?;
                    }
                    let part = object.upload.put_part(data);
                    report.parts += 1;
                    object.in_flight.spawn(async move {
                        let start = Instant::now();
                        part.await?;
                        Ok((start, Instant::now()))
                    });
                }
                UploadMessage::Finish { digest } => {
                    let mut object = open.take().ok_or_else(|| {
                        Error::Failed("upload completion outside of an object".into())
                    })?;
                    while !object.in_flight.is_empty() {
                        let joined = object.in_flight.join_next().await;
                        if let Err(e) = record(&mut report, &object.family, joined) {
                            let _ = object.upload.abort().await;
                            return Err(e);
                        }
                    }
                    let key = object.upload.key().to_string();
                    object.upload.complete().await?;
                    storage.verify_size(&key, digest.size).await?;
                    report.objects.push((key, digest));
                }
            }
        }
        match open.take() {
            None => Ok(()),
            Some(object) => {
                let _ = object.upload.abort().await;
                Err(Error::Failed(
                    "the archive producer stopped before the upload was complete".into(),
                ))
            }
        }
    }
    .await;
    if let Err(e) = result {
        if let Some(mut object) = open.take() {
            object.in_flight.abort_all();
            while object.in_flight.join_next().await.is_some() {}
            let key = object.upload.key().to_string();
            if let Err(abort_error) = object.upload.abort().await {
                tracing::warn!("cannot abort the upload of {key}: {abort_error}");
            }
        }
        return Err(e);
    }
    Ok(report)
}

fn record(
    report: &mut UploadReport,
    family: &str,
    joined: Option<std::result::Result<Result<(Instant, Instant)>, tokio::task::JoinError>>,
) -> Result<()> {
    let Some(joined) = joined else {
        return Ok(());
    };
    let (start, end) = joined.map_err(|e| Error::Failed(format!("upload task failed: {e}")))??;
    let times = report
        .families
        .entry(family.to_string())
        .or_insert(FamilyTimes {
            first_start: start,
            last_end: end,
            serialized: Duration::ZERO,
        });
    times.first_start = times.first_start.min(start);
    times.last_end = times.last_end.max(end);
    times.serialized += end - start;
    Ok(())
}
