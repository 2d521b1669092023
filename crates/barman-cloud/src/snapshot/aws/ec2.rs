//! A thin client of the EC2 Query API: form-encoded POSTs signed with SigV4 (object_store's
//! signer, service `ec2`), XML answers, `NextToken` paging, and retries with exponential
//! backoff that never repeat a call that may have created something.
//!
//! Only what the snapshot provider needs has a typed method; [`Ec2Client::call`] sends any
//! other action (tests use it to set up instances and volumes on an emulator).

use std::collections::HashSet;
use std::time::Duration;

use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpClient, HttpErrorKind, HttpRequest};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::SnapshotLock;
use super::model::{
    self, DescribeInstancesPage, DescribeSnapshotsPage, DescribeVolumesPage, LockSnapshotResult,
    Page, Reservation, Snapshot, Volume,
};
use crate::error::{Error, Result, error_chain};

/// The EC2 API version every call names.
pub const API_VERSION: &str = "2016-11-15";

/// What is left unescaped in a form value: RFC 3986 unreserved characters (botocore's
/// encoding of Query API bodies).
const FORM_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The EC2 endpoint boto3 uses: `AWS_ENDPOINT_URL_EC2`, else `AWS_ENDPOINT_URL`, else the
/// region's public endpoint. (The S3 side's `--endpoint-url` never applies to EC2.)
pub fn endpoint_url(region: &str, ec2_env: Option<&str>, generic_env: Option<&str>) -> String {
    let configured = [ec2_env, generic_env]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|e| !e.is_empty());
    match configured {
        Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
        None => {
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://ec2.{region}.{domain}")
        }
    }
}

/// The parameters of one call, in order. List and filter helpers number their members
/// from 1, as the Query API wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
    filters: usize,
}

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name=value`.
    pub fn add(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((name.into(), value.into()));
        self
    }

    /// `prefix.1=v1&prefix.2=v2...`.
    pub fn list(mut self, prefix: &str, values: &[&str]) -> Self {
        for (i, value) in values.iter().enumerate() {
            self.pairs
                .push((format!("{prefix}.{}", i + 1), value.to_string()));
        }
        self
    }

    /// The next `Filter.N.Name=name&Filter.N.Value.M=value...`.
    pub fn filter(mut self, name: &str, values: &[&str]) -> Self {
        self.filters += 1;
        let n = self.filters;
        self.pairs
            .push((format!("Filter.{n}.Name"), name.to_string()));
        self.list(&format!("Filter.{n}.Value"), values)
    }

    /// `TagSpecification.N.ResourceType=resource_type&TagSpecification.N.Tag.M.Key=...`,
    /// for the `n`th tag specification.
    pub fn tag_specification(
        mut self,
        n: usize,
        resource_type: &str,
        tags: &[(String, String)],
    ) -> Self {
        let prefix = format!("TagSpecification.{n}");
        self.pairs
            .push((format!("{prefix}.ResourceType"), resource_type.to_string()));
        for (i, (key, value)) in tags.iter().enumerate() {
            let m = i + 1;
            self.pairs
                .push((format!("{prefix}.Tag.{m}.Key"), key.clone()));
            self.pairs
                .push((format!("{prefix}.Tag.{m}.Value"), value.clone()));
        }
        self
    }

    /// The value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The request body: `Action=...&Version=...&<params>`, form-encoded.
    pub fn form_body(&self, action: &str) -> String {
        let encode =
            |s: &str| percent_encoding::utf8_percent_encode(s, FORM_ENCODE_SET).to_string();
        let mut body = format!("Action={}&Version={API_VERSION}", encode(action));
        for (name, value) in &self.pairs {
            body.push('&');
            body.push_str(&encode(name));
            body.push('=');
            body.push_str(&encode(value));
        }
        body
    }
}

/// What went wrong with an EC2 call. No variant holds credentials: messages come from EC2's
/// answer or the HTTP client, and requests carry no secrets in their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ec2Error {
    /// EC2 answered with an error. `code` is EC2's (`InvalidInstanceID.NotFound`), or the
    /// HTTP status when the answer was not an EC2 error document.
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
        /// How many times the call was sent.
        attempts: u32,
    },
    /// EC2 could not be reached (refused, reset, timed out), after retries.
    Unreachable {
        action: String,
        endpoint: String,
        detail: String,
    },
    /// No usable credentials.
    Credentials(String),
    /// The request could not be built, or the answer not read.
    Invalid { action: String, detail: String },
}

impl Ec2Error {
    /// EC2's error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Ec2Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The error as Barman shows boto3's `response["Error"]`: `{'Code': ..., 'Message': ...}`.
    pub fn error_dict(&self) -> String {
        use crate::catalog::pyliteral::{PyDict, PyValue, repr};
        let (code, message) = match self {
            Ec2Error::Api { code, message, .. } => (code.clone(), message.clone()),
            other => (String::new(), other.to_string()),
        };
        let mut dict = PyDict::new();
        dict.set("Code", PyValue::str(code));
        dict.set("Message", PyValue::str(message));
        repr(&PyValue::Dict(dict))
    }
}

impl std::fmt::Display for Ec2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // botocore's wording, which Barman's messages show.
            Ec2Error::Api {
                action,
                code,
                message,
                attempts,
                ..
            } => {
                write!(
                    f,
                    "An error occurred ({code}) when calling the {action} operation"
                )?;
                if *attempts > 1 {
                    write!(f, " (reached max retries: {})", attempts - 1)?;
                }
                write!(f, ": {message}")
            }
            Ec2Error::Unreachable {
                action,
                endpoint,
                detail,
            } => {
                write!(f, "cannot reach EC2 at {endpoint} for {action}: {detail}")
            }
            Ec2Error::Credentials(detail) => write!(f, "cannot sign EC2 requests: {detail}"),
            Ec2Error::Invalid { action, detail } => write!(f, "EC2 {action}: {detail}"),
        }
    }
}

impl std::error::Error for Ec2Error {}

impl From<Ec2Error> for Error {
    fn from(e: Ec2Error) -> Self {
        match e {
            Ec2Error::Unreachable { .. } => Error::Connectivity(e.to_string()),
            Ec2Error::Credentials(_) => Error::Config(e.to_string()),
            Ec2Error::Api { .. } | Ec2Error::Invalid { .. } => Error::Provider(e.to_string()),
        }
    }
}

pub use crate::snapshot::rest::RetryPolicy;

/// EC2's retries: botocore's five sends, at most 8 s apart.
fn ec2_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_delay: Duration::from_secs(8),
        ..RetryPolicy::default()
    }
}

/// Whether repeating a call can do harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Reading, or a change that is the same when made twice (deleting, locking).
    Idempotent,
    /// A call that creates something (CreateSnapshot): repeated only when EC2 said it did
    /// not run it (throttling) or the request never left (connection refused).
    Creates,
}

/// Error codes that mean "slow down, nothing was done" (botocore's throttling codes).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes of transient server trouble (botocore's), retried for idempotent calls.
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
];

/// One failed send, as the retry decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Api { status: u16, code: String },
    Transport(HttpErrorKind),
}

/// Whether a failed send of a `kind` call may be sent again.
pub fn is_retryable(failure: &Failure, kind: CallKind) -> bool {
    match failure {
        Failure::Api { status, code } => {
            if *status == 429 || THROTTLING_CODES.contains(&code.as_str()) {
                return true;
            }
            kind == CallKind::Idempotent
                && (matches!(status, 500 | 502 | 503 | 504)
                    || TRANSIENT_CODES.contains(&code.as_str()))
        }
        // The connection was never made: nothing was sent.
        Failure::Transport(HttpErrorKind::Connect) => true,
        // The request may have reached EC2.
        Failure::Transport(_) => kind == CallKind::Idempotent,
    }
}

/// A signed-request client of one region's EC2 endpoint.
#[derive(Clone)]
pub struct Ec2Client {
    http: HttpClient,
    credentials: AwsCredentialProvider,
    region: String,
    endpoint: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Ec2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Client")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// Why one send failed.
enum SendError {
    Api {
        status: u16,
        code: String,
        message: String,
    },
    Transport {
        kind: HttpErrorKind,
        detail: String,
    },
    Fatal(Ec2Error),
}

impl Ec2Client {
    /// A client of `endpoint` (`https://ec2.<region>.amazonaws.com`, or an emulator's URL)
    /// signing for `region` with `credentials`. Contacts nothing.
    pub fn new(endpoint: &str, region: &str, credentials: AwsCredentialProvider) -> Result<Self> {
        let (endpoint, http) = crate::snapshot::rest::endpoint_client(endpoint, "EC2")?;
        Ok(Ec2Client {
            http,
            credentials,
            region: region.to_string(),
            endpoint,
            retry: ec2_retry_policy(),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `action` with `params` and returns the answer's XML. Retried as a call that
    /// may create something ([`CallKind::Creates`]), since nothing is known of `action`.
    pub async fn call(&self, action: &str, params: &Params) -> Result<String, Ec2Error> {
        self.send(action, params, CallKind::Creates).await
    }

    /// Sends a call, retrying as `kind` allows; the answer's XML on success.
    pub async fn send(
        &self,
        action: &str,
        params: &Params,
        kind: CallKind,
    ) -> Result<String, Ec2Error> {
        let body = bytes::Bytes::from(params.form_body(action));
        let mut attempt = 1;
        loop {
            let (failure, error) = match self.send_once(action, body.clone()).await {
                Ok(text) => return Ok(text),
                Err(SendError::Fatal(e)) => return Err(e),
                Err(SendError::Api {
                    status,
                    code,
                    message,
                }) => (
                    Failure::Api {
                        status,
                        code: code.clone(),
                    },
                    Ec2Error::Api {
                        action: action.to_string(),
                        status,
                        code,
                        message,
                        attempts: attempt,
                    },
                ),
                Err(SendError::Transport { kind: k, detail }) => {
                    let error = match k {
                        HttpErrorKind::Connect
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Request
                        | HttpErrorKind::Interrupted => Ec2Error::Unreachable {
                            action: action.to_string(),
                            endpoint: self.endpoint.clone(),
                            detail,
                        },
                        _ => Ec2Error::Invalid {
                            action: action.to_string(),
                            detail,
                        },
                    };
                    (Failure::Transport(k), error)
                }
            };
            if attempt >= self.retry.max_attempts || !is_retryable(&failure, kind) {
                return Err(error);
            }
            let delay = self.retry.jittered(attempt);
            tracing::debug!(
                "EC2 {action} failed (attempt {attempt}), retrying in {} ms: {error}",
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, action: &str, body: bytes::Bytes) -> Result<String, SendError> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| SendError::Fatal(Ec2Error::Credentials(error_chain(&e))))?;
        let mut request: HttpRequest = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("{}/", self.endpoint))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body.into())
            .map_err(|e| {
                SendError::Fatal(Ec2Error::Invalid {
                    action: action.to_string(),
                    detail: format!("bad EC2 endpoint URL {}: {e}", self.endpoint),
                })
            })?;
        AwsAuthorizer::new(&credential, "ec2", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| {
                SendError::Fatal(Ec2Error::Invalid {
                    action: action.to_string(),
                    detail: format!("cannot sign the request: {}", error_chain(&e)),
                })
            })?;
        let transport = |e: object_store::client::HttpError| SendError::Transport {
            kind: e.kind(),
            detail: error_chain(&e),
        };
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status();
        let bytes = response.into_body().bytes().await.map_err(transport)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_success() {
            return Ok(text);
        }
        let (code, message) = model::parse_error(&text).unwrap_or_else(|| {
            (
                status.as_u16().to_string(),
                status.canonical_reason().unwrap_or("").to_string(),
            )
        });
        Err(SendError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }

    /// Sends and reads the answer as `T`.
    async fn send_parsed<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        params: &Params,
        kind: CallKind,
    ) -> Result<T, Ec2Error> {
        let text = self.send(action, params, kind).await?;
        model::parse(&text).map_err(|detail| Ec2Error::Invalid {
            action: action.to_string(),
            detail: format!("cannot read the answer: {detail}"),
        })
    }

    /// Every item of a `Describe*` call, following `NextToken`; `page_size` sets
    /// `MaxResults` (which EC2 refuses together with ID lists).
    async fn paged<P: Page>(
        &self,
        action: &str,
        params: &Params,
        page_size: Option<u32>,
    ) -> Result<Vec<P::Item>, Ec2Error> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let mut page_params = params.clone();
            if let Some(n) = page_size {
                page_params = page_params.add("MaxResults", n.to_string());
            }
            if let Some(t) = &token {
                page_params = page_params.add("NextToken", t.clone());
            }
            let page: P = self
                .send_parsed(action, &page_params, CallKind::Idempotent)
                .await?;
            let (mut items, next) = page.into_page();
            all.append(&mut items);
            match next.filter(|t| !t.is_empty()) {
                None => return Ok(all),
                Some(t) if seen.insert(t.clone()) => token = Some(t),
                Some(_) => {
                    return Err(Ec2Error::Invalid {
                        action: action.to_string(),
                        detail: "EC2 returned the same NextToken twice".into(),
                    });
                }
            }
        }
    }

    /// `DescribeInstances`, every page.
    pub async fn describe_instances(
        &self,
        params: &Params,
        page_size: Option<u32>,
    ) -> Result<Vec<Reservation>, Ec2Error> {
        self.paged::<DescribeInstancesPage>("DescribeInstances", params, page_size)
            .await
    }

    /// `DescribeVolumes`, every page.
    pub async fn describe_volumes(
        &self,
        params: &Params,
        page_size: Option<u32>,
    ) -> Result<Vec<Volume>, Ec2Error> {
        self.paged::<DescribeVolumesPage>("DescribeVolumes", params, page_size)
            .await
    }

    /// `DescribeSnapshots`, every page.
    pub async fn describe_snapshots(
        &self,
        params: &Params,
        page_size: Option<u32>,
    ) -> Result<Vec<Snapshot>, Ec2Error> {
        self.paged::<DescribeSnapshotsPage>("DescribeSnapshots", params, page_size)
            .await
    }

    /// `CreateSnapshot` of `volume_id` with `tags` (the `Name` tag first). Sent again only
    /// when EC2 said it did not run it: a retry after a lost answer could leave a second
    /// snapshot behind, and CreateSnapshot has no idempotency token.
    pub async fn create_snapshot(
        &self,
        volume_id: &str,
        tags: &[(String, String)],
        outpost_arn: Option<&str>,
    ) -> Result<Snapshot, Ec2Error> {
        self.send_parsed(
            "CreateSnapshot",
            &create_snapshot_params(volume_id, tags, outpost_arn),
            CallKind::Creates,
        )
        .await
    }

    /// `DeleteSnapshot`.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Ec2Error> {
        self.send(
            "DeleteSnapshot",
            &Params::new().add("SnapshotId", snapshot_id),
            CallKind::Idempotent,
        )
        .await
        .map(|_| ())
    }

    /// `LockSnapshot` with the options of `lock` that are set.
    pub async fn lock_snapshot(
        &self,
        snapshot_id: &str,
        lock: &SnapshotLock,
    ) -> Result<LockSnapshotResult, Ec2Error> {
        self.send_parsed(
            "LockSnapshot",
            &lock_snapshot_params(snapshot_id, lock),
            CallKind::Idempotent,
        )
        .await
    }
}

/// `CreateSnapshot`'s parameters, as Barman passes them: the volume, one tag specification
/// for the snapshot, the Outpost when the instance is on one.
pub fn create_snapshot_params(
    volume_id: &str,
    tags: &[(String, String)],
    outpost_arn: Option<&str>,
) -> Params {
    let mut params = Params::new()
        .add("VolumeId", volume_id)
        .tag_specification(1, "snapshot", tags);
    if let Some(arn) = outpost_arn {
        params = params.add("OutpostArn", arn);
    }
    params
}

/// `LockSnapshot`'s parameters: the snapshot, the mode, and only the options that are set.
pub fn lock_snapshot_params(snapshot_id: &str, lock: &SnapshotLock) -> Params {
    let mut params = Params::new()
        .add("SnapshotId", snapshot_id)
        .add("LockMode", lock.mode.as_str());
    if let Some(days) = lock.duration {
        params = params.add("LockDuration", days.to_string());
    }
    if let Some(hours) = lock.cool_off_period {
        params = params.add("CoolOffPeriod", hours.to_string());
    }
    if let Some(date) = &lock.expiration_date {
        params = params.add("ExpirationDate", date.clone());
    }
    params
}

#[cfg(test)]
mod tests {
    use super::super::LockMode;
    use super::*;

    #[test]
    fn endpoint_follows_boto3() {
        assert_eq!(
            endpoint_url("eu-west-1", None, None),
            "https://ec2.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_url("cn-north-1", None, None),
            "https://ec2.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint_url(
                "us-east-1",
                Some("http://127.0.0.1:5000/"),
                Some("http://other")
            ),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            endpoint_url("us-east-1", None, Some("http://generic:1")),
            "http://generic:1"
        );
        // An empty variable counts as unset.
        assert_eq!(
            endpoint_url("us-east-1", Some(""), Some("http://generic:1")),
            "http://generic:1"
        );
        assert_eq!(
            endpoint_url("us-east-1", Some(" "), None),
            "https://ec2.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn bodies_are_form_encoded_in_order() {
        let params = Params::new()
            .list("InstanceId", &["i-1"])
            .filter(
                "instance-state-name",
                &["pending", "running", "shutting-down", "stopping", "stopped"],
            )
            .filter("tag:Name", &["a b&c=d/é"]);
        assert_eq!(
            params.form_body("DescribeInstances"),
            "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1\
             &Filter.1.Name=instance-state-name&Filter.1.Value.1=pending\
             &Filter.1.Value.2=running&Filter.1.Value.3=shutting-down\
             &Filter.1.Value.4=stopping&Filter.1.Value.5=stopped\
             &Filter.2.Name=tag%3AName&Filter.2.Value.1=a%20b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(params.get("Filter.2.Value.1"), Some("a b&c=d/é"));
        assert_eq!(params.get("Nope"), None);
    }

    #[test]
    fn create_snapshot_tags_name_first() {
        let tags = vec![
            ("Name".to_string(), "pgdata-20250101t000000".to_string()),
            ("team".to_string(), "db".to_string()),
        ];
        let params = create_snapshot_params("vol-1", &tags, None);
        assert_eq!(
            params.form_body("CreateSnapshot"),
            "Action=CreateSnapshot&Version=2016-11-15&VolumeId=vol-1\
             &TagSpecification.1.ResourceType=snapshot\
             &TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=pgdata-20250101t000000\
             &TagSpecification.1.Tag.2.Key=team&TagSpecification.1.Tag.2.Value=db"
        );
        let outpost = create_snapshot_params("vol-1", &tags[..1], Some("arn:op"));
        assert_eq!(outpost.get("OutpostArn"), Some("arn:op"));
        assert_eq!(outpost.get("ClientToken"), None);
    }

    #[test]
    fn lock_parameters_are_only_those_set() {
        let governance = SnapshotLock {
            mode: LockMode::Governance,
            duration: Some(7),
            cool_off_period: None,
            expiration_date: None,
        };
        assert_eq!(
            lock_snapshot_params("snap-1", &governance).pairs(),
            [
                ("SnapshotId".to_string(), "snap-1".to_string()),
                ("LockMode".to_string(), "governance".to_string()),
                ("LockDuration".to_string(), "7".to_string()),
            ]
        );
        let compliance = SnapshotLock {
            mode: LockMode::Compliance,
            duration: None,
            cool_off_period: Some(24),
            expiration_date: Some("2030-01-01T00:00:00.000Z".into()),
        };
        assert_eq!(
            lock_snapshot_params("snap-2", &compliance).form_body("LockSnapshot"),
            "Action=LockSnapshot&Version=2016-11-15&SnapshotId=snap-2&LockMode=compliance\
             &CoolOffPeriod=24&ExpirationDate=2030-01-01T00%3A00%3A00.000Z"
        );
    }

    #[test]
    fn creating_calls_are_retried_only_when_not_run() {
        let api = |status: u16, code: &str| Failure::Api {
            status,
            code: code.to_string(),
        };
        for kind in [CallKind::Idempotent, CallKind::Creates] {
            assert!(is_retryable(&api(503, "RequestLimitExceeded"), kind));
            assert!(is_retryable(&api(400, "Throttling"), kind));
            assert!(is_retryable(&api(429, "429"), kind));
            assert!(is_retryable(
                &Failure::Transport(HttpErrorKind::Connect),
                kind
            ));
            assert!(!is_retryable(&api(400, "InvalidInstanceID.NotFound"), kind));
            assert!(!is_retryable(&api(403, "AuthFailure"), kind));
        }
        assert!(is_retryable(&api(503, "Unavailable"), CallKind::Idempotent));
        assert!(is_retryable(
            &api(500, "InternalError"),
            CallKind::Idempotent
        ));
        assert!(is_retryable(
            &Failure::Transport(HttpErrorKind::Timeout),
            CallKind::Idempotent
        ));
        assert!(!is_retryable(&api(503, "Unavailable"), CallKind::Creates));
        assert!(!is_retryable(&api(500, "InternalError"), CallKind::Creates));
        assert!(!is_retryable(
            &Failure::Transport(HttpErrorKind::Timeout),
            CallKind::Creates
        ));
        assert!(!is_retryable(
            &Failure::Transport(HttpErrorKind::Interrupted),
            CallKind::Creates
        ));
    }

    #[test]
    fn errors_read_as_botocore_and_barman_show_them() {
        let e = Ec2Error::Api {
            action: "DescribeInstances".into(),
            status: 400,
            code: "InvalidInstanceID.NotFound".into(),
            message: "The instance ID 'i-1' does not exist".into(),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "An error occurred (InvalidInstanceID.NotFound) when calling the DescribeInstances operation: The instance ID 'i-1' does not exist"
        );
        assert_eq!(
            e.error_dict(),
            "{'Code': 'InvalidInstanceID.NotFound', 'Message': \"The instance ID 'i-1' does not exist\"}"
        );
        assert!(matches!(Error::from(e), Error::Provider(_)));
        let throttled = Ec2Error::Api {
            action: "DescribeSnapshots".into(),
            status: 503,
            code: "RequestLimitExceeded".into(),
            message: "Request limit exceeded.".into(),
            attempts: 5,
        };
        assert_eq!(
            throttled.to_string(),
            "An error occurred (RequestLimitExceeded) when calling the DescribeSnapshots operation (reached max retries: 4): Request limit exceeded."
        );
        let unreachable = Ec2Error::Unreachable {
            action: "DescribeInstances".into(),
            endpoint: "http://127.0.0.1:1/".into(),
            detail: "connection refused".into(),
        };
        assert!(matches!(Error::from(unreachable), Error::Connectivity(_)));
        assert!(matches!(
            Error::from(Ec2Error::Credentials("none".into())),
            Error::Config(_)
        ));
    }

    #[test]
    fn client_rejects_bad_endpoints() {
        let creds: AwsCredentialProvider = std::sync::Arc::new(
            object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
                key_id: "AKIDEXAMPLE".into(),
                secret_key: "secret".into(),
                token: None,
            }),
        );
        assert!(Ec2Client::new("ec2.example.com", "us-east-1", creds.clone()).is_err());
        assert!(Ec2Client::new("ftp://ec2.example.com", "us-east-1", creds.clone()).is_err());
        let client = Ec2Client::new("http://127.0.0.1:9/", "us-east-1", creds).unwrap();
        assert_eq!(client.endpoint(), "http://127.0.0.1:9");
        assert!(!format!("{client:?}").contains("secret"));
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_connectivity() {
        let creds: AwsCredentialProvider = std::sync::Arc::new(
            object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
                key_id: "AKIDEXAMPLE".into(),
                secret_key: "wJalrXUtnFEMI".into(),
                token: None,
            }),
        );
        // Port 9 (discard) on loopback: nothing listens in test environments.
        let client = Ec2Client::new("http://127.0.0.1:9", "us-east-1", creds)
            .unwrap()
            .with_retry_policy(RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
            });
        let err = client
            .describe_instances(&Params::new(), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Ec2Error::Unreachable { .. }), "{err:?}");
        let text = Error::from(err).to_string();
        assert!(
            text.starts_with("Can't connect to cloud provider"),
            "{text}"
        );
        assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("AKIDEXAMPLE"));
    }
}
