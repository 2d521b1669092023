//! A thin client of Azure Resource Manager for Microsoft.Compute: JSON over HTTPS with a
//! bearer token from an `azure_identity` credential, retries of throttled and unavailable
//! answers (honouring `Retry-After`), and long-running operations polled through their
//! `Azure-AsyncOperation` or `Location` URL as the Python SDK's ARM poller does.
//!
//! Every call the provider makes is idempotent (GETs, a PUT by name, a DELETE), so each may
//! be sent again after a lost answer.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use object_store::client::{HttpClient, HttpErrorKind, HttpRequest};
use percent_encoding::{AsciiSet, CONTROLS};
use serde::de::DeserializeOwned;

use super::model::{self, Disk, OperationStatus, Snapshot, VirtualMachine};
use crate::error::{Error, error_chain};

/// api-version of `virtualMachines` calls (what azure-mgmt-compute sends with Barman 3.20.1).
pub const VM_API_VERSION: &str = "2026-04-01";
/// api-version of `disks` and `snapshots` calls.
pub const DISK_API_VERSION: &str = "2026-03-02";
/// The public cloud's ARM endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// Pause between two polls of an operation when ARM gives no `Retry-After` (the Python
/// SDK's default).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Longest `Retry-After` obeyed as such; longer ones are cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Characters escaped in one path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The ARM endpoint: `AZURE_RESOURCE_MANAGER_ENDPOINT` when set (sovereign clouds, Azure
/// Stack, emulators), else the public cloud's; no trailing slash.
pub fn endpoint_url(configured: Option<&str>) -> String {
    configured
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or(DEFAULT_ENDPOINT)
        .trim_end_matches('/')
        .to_string()
}

/// The token scope of an ARM endpoint: the endpoint's origin followed by `/.default`
/// (`https://management.azure.com/.default`; `https://management.chinacloudapi.cn/.default`
/// for Azure China), except Azure US Government's. The Python SDK keeps its cloud's scope
/// whatever `base_url` it is given; deriving it from the endpoint serves sovereign clouds
/// and Azure Stack without a second setting.
pub fn token_scope(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    // The one public cloud whose ARM audience differs from its endpoint (as
    // azure-mgmt-core's `get_arm_endpoints` lists them).
    if endpoint.eq_ignore_ascii_case("https://management.usgovcloudapi.net") {
        return "https://management.core.usgovcloudapi.net/.default".into();
    }
    format!("{endpoint}/.default")
}

/// What went wrong with an ARM call. No variant holds a token: messages come from ARM's
/// error body, the HTTP client or the credential's own error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmError {
    /// ARM answered with an error status. `code` is ARM's (`ResourceNotFound`), or the HTTP
    /// status when the body was not an ARM error.
    Api {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A long-running operation ended in `Failed` or `Canceled`.
    OperationFailed {
        operation: String,
        status: String,
        code: String,
        message: String,
    },
    /// ARM could not be reached (refused, reset, timed out), after retries.
    Unreachable { operation: String, detail: String },
    /// No token could be had.
    Credentials(String),
    /// The request could not be built, or the answer not read.
    Invalid { operation: String, detail: String },
}

impl ArmError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ArmError::Api { code, .. } | ArmError::OperationFailed { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 404 other than a missing resource group: the resource itself is not there.
    pub fn is_resource_not_found(&self) -> bool {
        self.status() == Some(404) && self.code() != Some("ResourceGroupNotFound")
    }
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The Python SDK's HttpResponseError wording: `(Code) Message`.
            ArmError::Api {
                operation,
                code,
                message,
                ..
            } => write!(f, "{operation}: ({code}) {message}"),
            ArmError::OperationFailed {
                operation,
                status,
                code,
                message,
            } => {
                write!(f, "{operation} ended in status {status}")?;
                if !code.is_empty() || !message.is_empty() {
                    write!(f, ": ({code}) {message}")?;
                }
                Ok(())
            }
            ArmError::Unreachable { operation, detail } => {
                write!(
                    f,
                    "cannot reach Azure Resource Manager for {operation}: {detail}"
                )
            }
            ArmError::Credentials(detail) => {
                write!(f, "cannot get an Azure Resource Manager token: {detail}")
            }
            ArmError::Invalid { operation, detail } => write!(f, "{operation}: {detail}"),
        }
    }
}

impl std::error::Error for ArmError {}

impl From<ArmError> for Error {
    fn from(e: ArmError) -> Self {
        match e {
            ArmError::Unreachable { .. } => Error::Connectivity(e.to_string()),
            ArmError::Credentials(_) => Error::Config(e.to_string()),
            ArmError::OperationFailed { .. } => Error::Failed(e.to_string()),
            ArmError::Api { .. } | ArmError::Invalid { .. } => Error::Provider(e.to_string()),
        }
    }
}

pub use crate::snapshot::rest::RetryPolicy;

/// ARM's retries: five sends, from 0.8 s apart up to 16 s (a `Retry-After` is honoured up
/// to [`MAX_RETRY_AFTER`] instead).
fn arm_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(800),
        max_delay: Duration::from_secs(16),
    }
}

/// The delay an answer asks for: `retry-after-ms`, `x-ms-retry-after-ms` (milliseconds) or
/// `Retry-After` (seconds), capped.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let delay = value("retry-after-ms")
        .or_else(|| value("x-ms-retry-after-ms"))
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| value("retry-after").map(Duration::from_secs_f64))?;
    Some(delay.min(MAX_RETRY_AFTER))
}

/// One answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

/// An ARM client of one endpoint and subscription.
#[derive(Clone)]
pub struct ArmClient {
    http: HttpClient,
    credential: Arc<dyn TokenCredential>,
    endpoint: String,
    scope: String,
    subscription_id: String,
    retry: RetryPolicy,
    poll_interval: Duration,
    operation_timeout: Duration,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.endpoint)
            .field("subscription_id", &self.subscription_id)
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    /// A client of `endpoint` (`https://management.azure.com`, or an emulator's URL) for
    /// `subscription_id`, authenticated by `credential`. Contacts nothing.
    pub fn new(
        endpoint: &str,
        subscription_id: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> crate::Result<Self> {
        let (endpoint, http) = crate::snapshot::rest::endpoint_client(endpoint, "ARM")?;
        Ok(ArmClient {
            http,
            credential,
            scope: token_scope(&endpoint),
            endpoint,
            subscription_id: subscription_id.to_string(),
            retry: arm_retry_policy(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            operation_timeout: Duration::from_secs(3600),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The pause between two polls of an operation when ARM gives no `Retry-After`.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long a long-running operation is waited for.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `<endpoint>/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/<kind>/<name>?api-version=<v>`.
    pub fn resource_url(&self, resource_group: &str, kind: &str, name: &str) -> String {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string();
        let api_version = if kind == "virtualMachines" {
            VM_API_VERSION
        } else {
            DISK_API_VERSION
        };
        format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/{kind}/{}?api-version={api_version}",
            self.endpoint,
            enc(&self.subscription_id),
            enc(resource_group),
            enc(name)
        )
    }

    /// `virtualMachines.get`.
    pub async fn get_vm(&self, resource_group: &str, vm: &str) -> Result<VirtualMachine, ArmError> {
        let url = self.resource_url(resource_group, "virtualMachines", vm);
        self.get_json("virtualMachines.get", &url).await
    }

    /// `disks.get`.
    pub async fn get_disk(&self, resource_group: &str, disk: &str) -> Result<Disk, ArmError> {
        let url = self.resource_url(resource_group, "disks", disk);
        self.get_json("disks.get", &url).await
    }

    /// `snapshots.get`.
    pub async fn get_snapshot(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<Snapshot, ArmError> {
        let url = self.resource_url(resource_group, "snapshots", name);
        self.get_json("snapshots.get", &url).await
    }

    /// `snapshots.begin_create_or_update` of an incremental copy of the managed disk
    /// `disk_id` in `location`, waited for; then the snapshot as a final GET reads it, and
    /// the operation's final status.
    pub async fn create_snapshot(
        &self,
        resource_group: &str,
        name: &str,
        location: &str,
        disk_id: &str,
    ) -> Result<(String, Snapshot), ArmError> {
        let url = self.resource_url(resource_group, "snapshots", name);
        let body = snapshot_body(location, disk_id);
        let status = self
            .long_running(
                "snapshots.begin_create_or_update",
                http::Method::PUT,
                &url,
                Some(body),
                &[200, 201, 202],
            )
            .await?;
        let snapshot = self.get_json("snapshots.get", &url).await?;
        Ok((status, snapshot))
    }

    /// `snapshots.begin_delete`, waited for; the operation's final status. ARM answers a
    /// deletion of a missing snapshot with success.
    pub async fn delete_snapshot(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<String, ArmError> {
        let url = self.resource_url(resource_group, "snapshots", name);
        self.long_running(
            "snapshots.begin_delete",
            http::Method::DELETE,
            &url,
            None,
            &[200, 202, 204],
        )
        .await
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &str,
        url: &str,
    ) -> Result<T, ArmError> {
        let answer = self.send(operation, http::Method::GET, url, None).await?;
        if answer.status != 200 {
            return Err(api_error(operation, &answer));
        }
        parse_json(operation, &answer.body)
    }

    /// Sends the first request of a long-running operation (its status must be one of
    /// `accepted`), then polls until it ends; its final status (`Succeeded`), or
    /// [`ArmError::OperationFailed`].
    async fn long_running(
        &self,
        operation: &str,
        method: http::Method,
        url: &str,
        body: Option<serde_json::Value>,
        accepted: &[u16],
    ) -> Result<String, ArmError> {
        let first = self
            .send(operation, method.clone(), url, body.as_ref())
            .await?;
        if !accepted.contains(&first.status) {
            return Err(api_error(operation, &first));
        }
        let header = |name: &str| {
            first
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let async_operation = header("azure-asyncoperation");
        let location = header("location");
        // Nothing to poll: the answer is final (a 204 of a deletion, a 200 of a PUT whose
        // resource is already in a terminal state).
        if async_operation.is_none() && location.is_none() {
            if method == http::Method::PUT && first.status != 202 {
                let snapshot: Snapshot = parse_json(operation, &first.body)?;
                let state = snapshot.provisioning_state().to_string();
                if is_terminal(&state) || state.is_empty() {
                    return finished(
                        operation,
                        if state.is_empty() {
                            "Succeeded".into()
                        } else {
                            state
                        },
                        None,
                    );
                }
                return self.poll_resource(operation, url, &first.headers).await;
            }
            return Ok("Succeeded".into());
        }
        let deadline = tokio::time::Instant::now() + self.operation_timeout;
        let mut delay = retry_after(&first.headers).unwrap_or(self.poll_interval);
        loop {
            self.pause(operation, deadline, delay).await?;
            if let Some(status_url) = &async_operation {
                let answer = self
                    .send(operation, http::Method::GET, status_url, None)
                    .await?;
                if answer.status != 200 {
                    return Err(api_error(operation, &answer));
                }
                let status: OperationStatus = parse_json(operation, &answer.body)?;
                if is_terminal(&status.status) {
                    return finished(operation, status.status, status.error);
                }
                delay = retry_after(&answer.headers).unwrap_or(self.poll_interval);
            } else if let Some(location_url) = &location {
                let answer = self
                    .send(operation, http::Method::GET, location_url, None)
                    .await?;
                match answer.status {
                    202 => delay = retry_after(&answer.headers).unwrap_or(self.poll_interval),
                    200..=204 => return Ok("Succeeded".into()),
                    _ => return Err(api_error(operation, &answer)),
                }
            }
        }
    }

    /// Polls a resource until its `provisioningState` is terminal.
    async fn poll_resource(
        &self,
        operation: &str,
        url: &str,
        headers: &http::HeaderMap,
    ) -> Result<String, ArmError> {
        let deadline = tokio::time::Instant::now() + self.operation_timeout;
        let mut delay = retry_after(headers).unwrap_or(self.poll_interval);
        loop {
            self.pause(operation, deadline, delay).await?;
            let answer = self.send(operation, http::Method::GET, url, None).await?;
            if answer.status != 200 {
                return Err(api_error(operation, &answer));
            }
            let snapshot: Snapshot = parse_json(operation, &answer.body)?;
            if is_terminal(snapshot.provisioning_state()) {
                return finished(operation, snapshot.provisioning_state().to_string(), None);
            }
            delay = retry_after(&answer.headers).unwrap_or(self.poll_interval);
        }
    }

    async fn pause(
        &self,
        operation: &str,
        deadline: tokio::time::Instant,
        delay: Duration,
    ) -> Result<(), ArmError> {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(ArmError::OperationFailed {
                operation: operation.to_string(),
                status: "InProgress".into(),
                code: "Timeout".into(),
                message: format!(
                    "not finished within {} seconds",
                    self.operation_timeout.as_secs()
                ),
            });
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        Ok(())
    }

    /// Sends one request, retrying throttled (429), unavailable (500, 502, 503, 504) and
    /// unreachable ones, after `Retry-After` when given.
    async fn send(
        &self,
        operation: &str,
        method: http::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ArmError> {
        let mut attempt = 1;
        loop {
            let result = self.send_once(operation, method.clone(), url, body).await;
            let (wait, error) = match result {
                Ok(answer) if matches!(answer.status, 429 | 500 | 502 | 503 | 504) => {
                    let wait = retry_after(&answer.headers);
                    (wait, api_error(operation, &answer))
                }
                Ok(answer) => return Ok(answer),
                Err((error, retryable)) => {
                    if !retryable {
                        return Err(error);
                    }
                    (None, error)
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = wait.unwrap_or_else(|| self.retry.backoff(attempt));
            tracing::debug!(
                "Azure {operation} failed (attempt {attempt}), retrying in {} ms: {error}",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One send; an error says whether sending again may help.
    async fn send_once(
        &self,
        operation: &str,
        method: http::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, (ArmError, bool)> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| (ArmError::Credentials(e.to_string()), false))?;
        let invalid = |detail: String| ArmError::Invalid {
            operation: operation.to_string(),
            detail,
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::ACCEPT, "application/json");
        let mut authorization =
            http::HeaderValue::from_str(&format!("Bearer {}", token.token.secret())).map_err(
                |_| {
                    (
                        invalid("the token is not a valid header value".into()),
                        false,
                    )
                },
            )?;
        authorization.set_sensitive(true);
        builder = builder.header(http::header::AUTHORIZATION, authorization);
        let payload = match body {
            Some(value) => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                bytes::Bytes::from(value.to_string())
            }
            None => bytes::Bytes::new(),
        };
        let request: HttpRequest = builder
            .body(payload.into())
            .map_err(|e| (invalid(format!("bad URL {url}: {e}")), false))?;
        let transport = |e: object_store::client::HttpError| {
            let kind = e.kind();
            let detail = error_chain(&e);
            let error = match kind {
                HttpErrorKind::Connect
                | HttpErrorKind::Timeout
                | HttpErrorKind::Request
                | HttpErrorKind::Interrupted => ArmError::Unreachable {
                    operation: operation.to_string(),
                    detail,
                },
                _ => invalid(detail),
            };
            (error, true)
        };
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().bytes().await.map_err(transport)?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The body of Barman's snapshot PUT.
pub fn snapshot_body(location: &str, disk_id: &str) -> serde_json::Value {
    serde_json::json!({
        "location": location,
        "properties": {
            "creationData": {"createOption": "Copy", "sourceUri": disk_id},
            "incremental": true,
        },
    })
}

fn is_terminal(status: &str) -> bool {
    ["succeeded", "failed", "canceled", "cancelled"].contains(&status.to_ascii_lowercase().as_str())
}

/// A terminal status: `Ok` for success, else [`ArmError::OperationFailed`].
fn finished(
    operation: &str,
    status: String,
    error: Option<model::ErrorDetail>,
) -> Result<String, ArmError> {
    if status.eq_ignore_ascii_case("succeeded") {
        return Ok(status);
    }
    let error = error.unwrap_or_default();
    Err(ArmError::OperationFailed {
        operation: operation.to_string(),
        status,
        code: error.code,
        message: error.message,
    })
}

fn api_error(operation: &str, answer: &Answer) -> ArmError {
    let (code, message) = model::parse_error(&answer.body).unwrap_or_else(|| {
        let reason = http::StatusCode::from_u16(answer.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string();
        (answer.status.to_string(), reason)
    });
    ArmError::Api {
        operation: operation.to_string(),
        status: answer.status,
        code,
        message,
    }
}

fn parse_json<T: DeserializeOwned>(operation: &str, body: &[u8]) -> Result<T, ArmError> {
    serde_json::from_slice(body).map_err(|e| ArmError::Invalid {
        operation: operation.to_string(),
        detail: format!("cannot read the answer: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::azure::StaticToken;

    #[test]
    fn endpoints_scopes_and_urls() {
        assert_eq!(endpoint_url(None), "https://management.azure.com");
        assert_eq!(endpoint_url(Some(" ")), "https://management.azure.com");
        assert_eq!(
            endpoint_url(Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            token_scope("https://management.azure.com"),
            "https://management.azure.com/.default"
        );
        assert_eq!(
            token_scope("https://management.usgovcloudapi.net/"),
            "https://management.core.usgovcloudapi.net/.default"
        );
        let client = ArmClient::new(
            "https://management.azure.com/",
            "sub 1",
            Arc::new(StaticToken("t".into())),
        )
        .unwrap();
        assert_eq!(
            client.resource_url("rg", "virtualMachines", "pg"),
            "https://management.azure.com/subscriptions/sub%201/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/pg?api-version=2026-04-01"
        );
        assert_eq!(
            client.resource_url("rg", "snapshots", "a/b?"),
            "https://management.azure.com/subscriptions/sub%201/resourceGroups/rg/providers/Microsoft.Compute/snapshots/a%2Fb%3F?api-version=2026-03-02"
        );
        assert!(ArmClient::new("ftp://x", "s", Arc::new(StaticToken("t".into()))).is_err());
        assert!(!format!("{client:?}").contains("StaticToken"));
    }

    #[test]
    fn snapshot_body_is_barmans() {
        assert_eq!(
            snapshot_body("westeurope", "/subscriptions/s/disks/d").to_string(),
            r#"{"location":"westeurope","properties":{"creationData":{"createOption":"Copy","sourceUri":"/subscriptions/s/disks/d"},"incremental":true}}"#
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        headers.clear();
        headers.insert("retry-after", "100000".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn errors_map_to_kinds() {
        let api = ArmError::Api {
            operation: "disks.get".into(),
            status: 404,
            code: "ResourceNotFound".into(),
            message: "gone".into(),
        };
        assert!(api.is_resource_not_found());
        assert_eq!(api.to_string(), "disks.get: (ResourceNotFound) gone");
        assert!(matches!(Error::from(api), Error::Provider(_)));
        let rg = ArmError::Api {
            operation: "snapshots.get".into(),
            status: 404,
            code: "ResourceGroupNotFound".into(),
            message: "no rg".into(),
        };
        assert!(!rg.is_resource_not_found());
        let failed = ArmError::OperationFailed {
            operation: "x".into(),
            status: "Failed".into(),
            code: "InternalDiskManagementError".into(),
            message: "boom".into(),
        };
        assert!(matches!(Error::from(failed), Error::Failed(_)));
        let down = ArmError::Unreachable {
            operation: "x".into(),
            detail: "refused".into(),
        };
        assert!(matches!(Error::from(down), Error::Connectivity(_)));
        assert!(is_terminal("Canceled") && is_terminal("succeeded") && !is_terminal("InProgress"));
    }
}
