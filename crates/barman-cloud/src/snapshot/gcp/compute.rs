//! A thin client of the Compute Engine REST API v1: JSON over HTTPS with a bearer token
//! ([`super::auth`]), the few calls snapshots need, and bounded retries that honour
//! `Retry-After`.
//!
//! The endpoint is `CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE` (a base URL ending in
//! `/compute/v1/`), else `https://compute.googleapis.com/compute/v1/`.

use std::time::Duration;

use object_store::client::{HttpClient, HttpErrorKind, HttpRequest};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::auth::Tokens;
use crate::error::{Error, Result, error_chain};

pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";

/// What stays unescaped in a path segment (RFC 3986 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The API's base URL: the override when set (a `/` added if missing), else Google's.
pub fn endpoint_url(override_env: Option<&str>) -> String {
    match override_env.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.ends_with('/') => e.to_string(),
        Some(e) => format!("{e}/"),
        None => DEFAULT_ENDPOINT.to_string(),
    }
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// `projects/{p}/zones/{z}/instances/{i}`.
pub fn instance_path(project: &str, zone: &str, instance: &str) -> String {
    format!(
        "projects/{}/zones/{}/instances/{}",
        seg(project),
        seg(zone),
        seg(instance)
    )
}

/// `projects/{p}/zones/{z}/disks/{d}`: also the `sourceDisk` of a snapshot insert.
pub fn disk_path(project: &str, zone: &str, disk: &str) -> String {
    format!(
        "projects/{}/zones/{}/disks/{}",
        seg(project),
        seg(zone),
        seg(disk)
    )
}

/// `projects/{p}/global/snapshots[/{s}]`.
pub fn snapshot_path(project: &str, snapshot: Option<&str>) -> String {
    match snapshot {
        Some(s) => format!("projects/{}/global/snapshots/{}", seg(project), seg(s)),
        None => format!("projects/{}/global/snapshots", seg(project)),
    }
}

/// `projects/{p}/global/operations/{op}`.
pub fn operation_path(project: &str, operation: &str) -> String {
    format!(
        "projects/{}/global/operations/{}",
        seg(project),
        seg(operation)
    )
}

/// An instance, as far as snapshots read it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub disks: Vec<InstanceDisk>,
}

/// One disk attachment of an instance.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDisk {
    #[serde(default)]
    pub device_name: Option<String>,
    /// The disk's URL: `.../projects/p/zones/z/disks/d` or `.../regions/r/disks/d`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub boot: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Disk {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source_snapshot: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    #[serde(default)]
    pub name: String,
    /// CREATING, UPLOADING, READY, FAILED, DELETING.
    #[serde(default)]
    pub status: String,
}

/// A long-running operation.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub name: String,
    /// PENDING, RUNNING, DONE.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<OperationErrors>,
    #[serde(default)]
    pub warnings: Vec<OperationMessage>,
    #[serde(default)]
    pub http_error_status_code: Option<i64>,
    #[serde(default)]
    pub http_error_message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct OperationErrors {
    #[serde(default)]
    pub errors: Vec<OperationMessage>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct OperationMessage {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

impl Operation {
    pub fn is_done(&self) -> bool {
        self.status == "DONE"
    }

    /// `(code, message)` when the operation failed: the HTTP error status and message
    /// (what Barman's client reports as `error_code`/`error_message`), else the first error's.
    pub fn failure(&self) -> Option<(String, String)> {
        let errors = self
            .error
            .as_ref()
            .map(|e| e.errors.as_slice())
            .unwrap_or(&[]);
        if errors.is_empty() && self.http_error_status_code.is_none_or(|c| c < 400) {
            return None;
        }
        let first = errors.first();
        let code = match self.http_error_status_code {
            Some(c) if c >= 400 => c.to_string(),
            _ => first.map(|e| e.code.clone()).unwrap_or_default(),
        };
        // As google-api-core words the exception Barman shows: "BAD REQUEST CODE: message".
        let details = errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let message = match self.http_error_message.as_deref().filter(|m| !m.is_empty()) {
            Some(http) if !details.is_empty() => format!("{http} {details}"),
            Some(http) => http.to_string(),
            None => details,
        };
        Some((code, message))
    }

    /// `code:message, ...` of the warnings (Barman's log format).
    pub fn warnings_text(&self) -> Option<String> {
        (!self.warnings.is_empty()).then(|| {
            self.warnings
                .iter()
                .map(|w| format!("{}:{}", w.code, w.message))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// What went wrong with a Compute call. No variant holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeError {
    /// The API answered with an error (`{"error": {"code", "message", "errors": [{"reason"}]}}`).
    Api {
        method: String,
        url: String,
        status: u16,
        reason: String,
        message: String,
        attempts: u32,
    },
    /// The API (or the token endpoint) could not be reached, after retries.
    Unreachable { call: String, detail: String },
    /// No token could be had.
    Credentials(String),
    /// The request could not be built, or the answer not read.
    Invalid { call: String, detail: String },
}

impl ComputeError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ComputeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl std::fmt::Display for ComputeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // google-api-core's wording: "404 GET https://...: message".
            ComputeError::Api {
                method,
                url,
                status,
                message,
                attempts,
                ..
            } => {
                write!(f, "{status} {method} {url}: {message}")?;
                if *attempts > 1 {
                    write!(f, " (after {attempts} attempts)")?;
                }
                Ok(())
            }
            ComputeError::Unreachable { call, detail } => {
                write!(f, "cannot reach Compute Engine for {call}: {detail}")
            }
            ComputeError::Credentials(detail) => {
                write!(f, "no usable GCP credentials: {detail}")
            }
            ComputeError::Invalid { call, detail } => write!(f, "Compute Engine {call}: {detail}"),
        }
    }
}

impl std::error::Error for ComputeError {}

impl From<ComputeError> for Error {
    fn from(e: ComputeError) -> Self {
        match e {
            ComputeError::Unreachable { .. } => Error::Connectivity(e.to_string()),
            ComputeError::Credentials(_) => Error::Config(e.to_string()),
            ComputeError::Api { .. } | ComputeError::Invalid { .. } => {
                Error::Provider(e.to_string())
            }
        }
    }
}

pub use crate::snapshot::rest::RetryPolicy;

/// Whether a failed send may be sent again: throttling (429) and unavailability (503)
/// always (the API did not run the call), other server errors and lost answers only for
/// calls that change nothing; a connection never made always.
pub fn is_retryable(
    status: Option<u16>,
    transport: Option<HttpErrorKind>,
    idempotent: bool,
) -> bool {
    match (status, transport) {
        (Some(429 | 503), _) => true,
        (Some(500 | 502 | 504), _) => idempotent,
        (Some(_), _) => false,
        (None, Some(HttpErrorKind::Connect)) => true,
        (None, Some(_)) => idempotent,
        (None, None) => false,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Google APIs).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The `{"error": {...}}` of an answer: `(reason, message)`.
pub fn parse_api_error(body: &[u8]) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let message = error.get("message")?.as_str()?.to_string();
    let reason = error
        .get("errors")
        .and_then(|e| e.get(0))
        .and_then(|e| e.get("reason"))
        .and_then(|r| r.as_str())
        .or_else(|| error.get("status").and_then(|s| s.as_str()))
        .unwrap_or("")
        .to_string();
    Some((reason, message))
}

/// A Compute Engine API client.
pub struct ComputeClient {
    http: HttpClient,
    endpoint: String,
    tokens: Tokens,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ComputeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeClient")
            .field("endpoint", &self.endpoint)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

enum SendError {
    Api {
        status: u16,
        reason: String,
        message: String,
        retry_after: Option<Duration>,
    },
    Transport {
        kind: HttpErrorKind,
        detail: String,
    },
    Fatal(ComputeError),
}

impl ComputeClient {
    /// A client of `endpoint` (a base URL ending in `/compute/v1/`). Contacts nothing.
    pub fn new(endpoint: &str, tokens: Tokens) -> Result<Self> {
        // Paths are relative to the base URL, whose final `/` stays.
        let endpoint = endpoint_url(Some(endpoint));
        let (_, http) =
            crate::snapshot::rest::long_poll_endpoint_client(&endpoint, "Compute Engine")?;
        Ok(ComputeClient {
            http,
            endpoint,
            tokens,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `method` to `path` (relative to the endpoint) with an optional JSON body;
    /// the answer's JSON as `T`.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: http::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<T, ComputeError> {
        let url = format!("{}{path}", self.endpoint);
        let body = body.map(|b| bytes::Bytes::from(b.to_string()));
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let (status, transport, retry_after, error) =
                match self.send_once(&method, &url, body.clone()).await {
                    Ok(bytes) => {
                        return serde_json::from_slice(&bytes).map_err(|e| ComputeError::Invalid {
                            call: format!("{method} {url}"),
                            detail: format!("cannot read the answer: {e}"),
                        });
                    }
                    Err(SendError::Fatal(e)) => return Err(e),
                    Err(SendError::Api {
                        status,
                        reason,
                        message,
                        retry_after,
                    }) => {
                        // An expired or revoked token: get a new one, once.
                        if status == 401 && !refreshed {
                            refreshed = true;
                            self.tokens.invalidate().await;
                            continue;
                        }
                        (
                            Some(status),
                            None,
                            retry_after,
                            ComputeError::Api {
                                method: method.to_string(),
                                url: url.clone(),
                                status,
                                reason,
                                message,
                                attempts: attempt,
                            },
                        )
                    }
                    Err(SendError::Transport { kind, detail }) => (
                        None,
                        Some(kind),
                        None,
                        match kind {
                            HttpErrorKind::Connect
                            | HttpErrorKind::Timeout
                            | HttpErrorKind::Request
                            | HttpErrorKind::Interrupted => ComputeError::Unreachable {
                                call: format!("{method} {url}"),
                                detail,
                            },
                            _ => ComputeError::Invalid {
                                call: format!("{method} {url}"),
                                detail,
                            },
                        },
                    ),
                };
            if attempt >= self.retry.max_attempts || !is_retryable(status, transport, idempotent) {
                return Err(error);
            }
            let delay = self.retry.delay(attempt, retry_after);
            tracing::debug!(
                "Compute {method} {path} failed (attempt {attempt}), retrying in {} ms: {error}",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: &http::Method,
        url: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<bytes::Bytes, SendError> {
        let token = self.tokens.token().await.map_err(SendError::Fatal)?;
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request: HttpRequest = builder.body(body.unwrap_or_default().into()).map_err(|e| {
            SendError::Fatal(ComputeError::Invalid {
                call: format!("{method} {url}"),
                detail: format!("bad URL: {e}"),
            })
        })?;
        let transport = |e: object_store::client::HttpError| SendError::Transport {
            kind: e.kind(),
            detail: error_chain(&e),
        };
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status();
        let retry_after = parse_retry_after(
            response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let bytes = response.into_body().bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(bytes);
        }
        let (reason, message) = parse_api_error(&bytes).unwrap_or_else(|| {
            (
                String::new(),
                status.canonical_reason().unwrap_or("").to_string(),
            )
        });
        Err(SendError::Api {
            status: status.as_u16(),
            reason,
            message,
            retry_after,
        })
    }

    pub async fn get_instance(
        &self,
        project: &str,
        zone: &str,
        instance: &str,
    ) -> Result<Instance, ComputeError> {
        self.call(
            http::Method::GET,
            &instance_path(project, zone, instance),
            None,
            true,
        )
        .await
    }

    pub async fn get_disk(
        &self,
        project: &str,
        zone: &str,
        disk: &str,
    ) -> Result<Disk, ComputeError> {
        self.call(
            http::Method::GET,
            &disk_path(project, zone, disk),
            None,
            true,
        )
        .await
    }

    /// `snapshots.insert` of `name` from the zonal disk. Sent again only when the API
    /// said it did not run it; a repeat after a lost answer would meet 409 anyway (the
    /// name is taken).
    pub async fn insert_snapshot(
        &self,
        project: &str,
        zone: &str,
        disk: &str,
        name: &str,
    ) -> Result<Operation, ComputeError> {
        let body = serde_json::json!({
            "name": name,
            "sourceDisk": disk_path(project, zone, disk),
        });
        self.call(
            http::Method::POST,
            &snapshot_path(project, None),
            Some(&body),
            false,
        )
        .await
    }

    pub async fn get_snapshot(&self, project: &str, name: &str) -> Result<Snapshot, ComputeError> {
        self.call(
            http::Method::GET,
            &snapshot_path(project, Some(name)),
            None,
            true,
        )
        .await
    }

    pub async fn delete_snapshot(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Operation, ComputeError> {
        self.call(
            http::Method::DELETE,
            &snapshot_path(project, Some(name)),
            None,
            true,
        )
        .await
    }

    /// `globalOperations.wait`: answers once the operation is DONE, or as it is when the
    /// server's own deadline (about 2 minutes) nears; best effort, so it may also answer
    /// sooner with the operation still running.
    pub async fn wait_operation(
        &self,
        project: &str,
        operation: &str,
    ) -> Result<Operation, ComputeError> {
        self.call(
            http::Method::POST,
            &format!("{}/wait", operation_path(project, operation)),
            None,
            true,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_paths() {
        assert_eq!(endpoint_url(None), DEFAULT_ENDPOINT);
        assert_eq!(endpoint_url(Some(" ")), DEFAULT_ENDPOINT);
        assert_eq!(
            endpoint_url(Some("http://127.0.0.1:9/compute/v1")),
            "http://127.0.0.1:9/compute/v1/"
        );
        assert_eq!(
            instance_path("p", "europe-west1-b", "pg 1"),
            "projects/p/zones/europe-west1-b/instances/pg%201"
        );
        assert_eq!(disk_path("p", "z", "d"), "projects/p/zones/z/disks/d");
        assert_eq!(snapshot_path("p", None), "projects/p/global/snapshots");
        assert_eq!(
            snapshot_path("p", Some("d-20250101t000000")),
            "projects/p/global/snapshots/d-20250101t000000"
        );
        assert_eq!(
            operation_path("p", "operation-1/x"),
            "projects/p/global/operations/operation-1%2Fx"
        );
    }

    #[test]
    fn answers_parse() {
        let instance: Instance = serde_json::from_str(
            r#"{"kind": "compute#instance", "name": "pg", "disks": [
                {"deviceName": "boot", "boot": true, "index": 0,
                 "source": "https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/pg"},
                {"deviceName": "pgdata", "index": 1,
                 "source": "https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/data"}]}"#,
        )
        .unwrap();
        assert_eq!(instance.disks.len(), 2);
        assert!(instance.disks[0].boot);
        assert_eq!(instance.disks[1].device_name.as_deref(), Some("pgdata"));
        let op: Operation = serde_json::from_str(
            r#"{"name": "operation-1", "status": "DONE", "httpErrorStatusCode": 400,
                "httpErrorMessage": "BAD REQUEST",
                "error": {"errors": [{"code": "RESOURCE_NOT_READY", "message": "disk busy"}]},
                "warnings": [{"code": "W", "message": "careful"}]}"#,
        )
        .unwrap();
        assert!(op.is_done());
        assert_eq!(
            op.failure(),
            Some((
                "400".to_string(),
                "BAD REQUEST RESOURCE_NOT_READY: disk busy".to_string()
            ))
        );
        assert_eq!(op.warnings_text().as_deref(), Some("W:careful"));
        let only_errors: Operation = serde_json::from_str(
            r#"{"name": "o", "status": "DONE",
                "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "no quota"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            only_errors.failure(),
            Some((
                "QUOTA_EXCEEDED".to_string(),
                "QUOTA_EXCEEDED: no quota".to_string()
            ))
        );
        let fine: Operation =
            serde_json::from_str(r#"{"name": "o", "status": "RUNNING"}"#).unwrap();
        assert_eq!(fine.failure(), None);
        assert_eq!(
            parse_api_error(
                br#"{"error": {"code": 404, "message": "The resource 'x' was not found",
                    "errors": [{"reason": "notFound", "message": "m"}]}}"#
            ),
            Some(("notFound".into(), "The resource 'x' was not found".into()))
        );
        assert_eq!(parse_api_error(b"<html>"), None);
    }

    #[test]
    fn retries() {
        use HttpErrorKind::*;
        for idempotent in [true, false] {
            assert!(is_retryable(Some(429), None, idempotent));
            assert!(is_retryable(Some(503), None, idempotent));
            assert!(is_retryable(None, Some(Connect), idempotent));
            assert!(!is_retryable(Some(404), None, idempotent));
            assert!(!is_retryable(Some(403), None, idempotent));
        }
        assert!(is_retryable(Some(500), None, true));
        assert!(!is_retryable(Some(500), None, false));
        assert!(is_retryable(None, Some(Timeout), true));
        assert!(!is_retryable(None, Some(Timeout), false));
        assert_eq!(parse_retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn errors_map_and_hide_tokens() {
        let e = ComputeError::Api {
            method: "GET".into(),
            url: "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i".into(),
            status: 404,
            reason: "notFound".into(),
            message: "The resource was not found".into(),
            attempts: 1,
        };
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "404 GET https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances/i: The resource was not found"
        );
        assert!(matches!(Error::from(e), Error::Provider(_)));
        assert!(matches!(
            Error::from(ComputeError::Unreachable {
                call: "GET x".into(),
                detail: "refused".into()
            }),
            Error::Connectivity(_)
        ));
        let client = ComputeClient::new(
            "http://127.0.0.1:9/compute/v1/",
            Tokens::new(super::super::auth::TokenSource::Static(
                "ya29.SECRET".into(),
            )),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("SECRET"));
        assert!(
            ComputeClient::new(
                "ftp://x/compute/v1/",
                Tokens::new(super::super::auth::TokenSource::Static("t".into()))
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn unreachable_is_connectivity() {
        let client = ComputeClient::new(
            "http://127.0.0.1:9/compute/v1/",
            Tokens::new(super::super::auth::TokenSource::Static(
                "ya29.SECRET".into(),
            )),
        )
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        });
        let err = client.get_instance("p", "z", "i").await.unwrap_err();
        assert!(matches!(err, ComputeError::Unreachable { .. }), "{err:?}");
        let text = Error::from(err).to_string();
        assert!(
            text.starts_with("Can't connect to cloud provider"),
            "{text}"
        );
        assert!(!text.contains("SECRET"));
    }
}
