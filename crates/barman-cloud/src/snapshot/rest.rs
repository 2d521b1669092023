//! What the providers' REST clients (EC2, Compute Engine, Azure Resource Manager) share:
//! an HTTP client on the storage clients' stack for a checked endpoint, and how failed
//! calls are spaced out.

use std::time::Duration;

use object_store::client::{HttpClient, HttpConnector};

use crate::error::{Error, Result, error_chain};

/// `endpoint` checked as an http(s) URL (without a trailing `/`), and an HTTP client for
/// it; plain HTTP is allowed only for an `http://` endpoint. `api` names the API in errors.
pub fn endpoint_client(endpoint: &str, api: &str) -> Result<(String, HttpClient)> {
    endpoint_client_with(endpoint, api, None)
}

/// [`endpoint_client`] for an API with calls that answer only when something happened
/// (Compute Engine's `globalOperations.wait`, up to about 2 minutes): the silence allowed
/// on a connection is longer than that, instead of the storage clients' 60 s.
pub fn long_poll_endpoint_client(endpoint: &str, api: &str) -> Result<(String, HttpClient)> {
    endpoint_client_with(endpoint, api, Some(LONG_POLL_READ_TIMEOUT_SECS))
}

/// Longest silence on a connection of [`long_poll_endpoint_client`].
const LONG_POLL_READ_TIMEOUT_SECS: u64 = 150;

fn endpoint_client_with(
    endpoint: &str,
    api: &str,
    read_timeout_secs: Option<u64>,
) -> Result<(String, HttpClient)> {
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let url = url::Url::parse(&endpoint)
        .map_err(|e| Error::Config(format!("invalid {api} endpoint URL '{endpoint}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "invalid {api} endpoint URL '{endpoint}': not an http(s) URL"
        )));
    }
    let client = http_client_with(&endpoint, read_timeout_secs)?;
    Ok((endpoint, client))
}

/// An HTTP client for `url`: plain HTTP allowed (and no trust store loaded) only for an
/// `http://` URL.
pub fn http_client_for(url: &str) -> Result<HttpClient> {
    http_client_with(url, None)
}

fn http_client_with(url: &str, read_timeout_secs: Option<u64>) -> Result<HttpClient> {
    let allow_http = url.starts_with("http://");
    let storage = crate::storage::StorageOptions {
        read_timeout_secs,
        ..Default::default()
    };
    let options = crate::storage::client_options(&storage, allow_http);
    object_store::client::ReqwestConnector::default()
        .connect(&options)
        .map_err(|e| Error::Config(format!("cannot build HTTP client: {}", error_chain(&e))))
}

/// How often a call is sent and how long between sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Sends at most, the first one included.
    pub max_attempts: u32,
    /// Delay after the first failure, doubled for each further one...
    pub base_delay: Duration,
    /// ...up to this; also the longest `Retry-After` honoured.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five sends, about 0.5, 1, 2 and 4 s apart (botocore's legacy mode also sends five
    /// times); a server may ask for up to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff after the `attempt`th send failed, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max_delay)
    }

    /// [`RetryPolicy::backoff`] with its upper half randomized, so that parallel clients
    /// spread out.
    pub fn jittered(&self, attempt: u32) -> Duration {
        // std's randomly keyed hasher is random enough to spread clients out.
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(attempt);
        let jitter = (hasher.finish() % 1000) as f64 / 1000.0; // 0..1
        self.backoff(attempt).mul_f64(0.5 + jitter / 2.0)
    }

    /// The wait the server asked for (capped), else [`RetryPolicy::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.max_delay),
            None => self.backoff(attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_the_server() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(500));
        assert_eq!(policy.backoff(3), Duration::from_secs(2));
        assert_eq!(policy.backoff(40), policy.max_delay);
        for attempt in 1..8 {
            let d = policy.jittered(attempt);
            assert!(d >= policy.backoff(attempt) / 2 && d <= policy.backoff(attempt));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3600))),
            policy.max_delay
        );
        assert!(endpoint_client("ftp://x", "EC2").is_err());
        assert_eq!(
            endpoint_client("http://127.0.0.1:1/", "EC2").unwrap().0,
            "http://127.0.0.1:1"
        );
    }
}
