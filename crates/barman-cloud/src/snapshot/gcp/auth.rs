//! Access tokens for the Compute Engine API: a service-account key (`GOOGLE_APPLICATION_CREDENTIALS`)
//! exchanged for a token at the key's `token_uri` (RFC 7523 JWT bearer grant, RS256), else the
//! metadata server of the machine (`GCE_METADATA_HOST` overrides its address, as Google's
//! libraries allow).
//!
//! object_store's GCP credential code signs such JWTs too, but its key type and signer are
//! not public and its scope is the storage one, so this module signs with aws-lc-rs (the
//! crypto library object_store and rustls already build). Tokens and keys never reach a log
//! line, an error message or a `Debug` output.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use object_store::client::HttpRequest;

use super::compute::ComputeError;
use crate::error::{Error, Result, error_chain};

/// The OAuth scope asked for: Compute Engine's calls need `compute` or `cloud-platform`.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The metadata server's default address.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Lifetime asked for a self-signed assertion (Google accepts at most one hour).
const ASSERTION_LIFETIME: u64 = 3600;

/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(120);

/// A service-account key file, as `gcloud iam service-accounts keys create` writes it.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: Option<String>,
    pub token_uri: String,
    key: aws_lc_rs::signature::RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// Google's token endpoint, for key files that do not name one.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

impl ServiceAccountKey {
    /// Reads a key file's JSON. Other credential types (`authorized_user`,
    /// `external_account`) are refused with a message saying so.
    pub fn from_json(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("cannot read the GCP credentials file: {e}")))?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str());
        let kind = field("type").unwrap_or("");
        if kind != "service_account" {
            return Err(Error::Unsupported(format!(
                "GCP credentials of type '{kind}' are not supported for snapshots by \
                 barman-rs: use a service-account key file or the metadata server"
            )));
        }
        let client_email = field("client_email")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::Config("the GCP credentials file has no client_email".into()))?
            .to_string();
        let pem = field("private_key")
            .ok_or_else(|| Error::Config("the GCP credentials file has no private_key".into()))?;
        let der = pem_to_der(pem)?;
        let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            Error::Config(format!(
                "the private_key of the GCP credentials file is not a PKCS#8 RSA key: {e}"
            ))
        })?;
        Ok(ServiceAccountKey {
            client_email,
            private_key_id: field("private_key_id")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            token_uri: field("token_uri")
                .filter(|s| !s.is_empty())
                .unwrap_or(DEFAULT_TOKEN_URI)
                .to_string(),
            key,
        })
    }

    /// The signed assertion exchanged for a token: `iss` the account, `scope`
    /// [`SCOPE`], `aud` the token URI, valid from `now` for an hour.
    pub fn assertion(&self, now: u64) -> Result<String> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = serde_json::Value::String(kid.clone());
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Config("cannot sign the GCP token request".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The DER bytes of a PEM `PRIVATE KEY` block.
fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    if body.is_empty() {
        return Err(Error::Config(
            "the private_key of the GCP credentials file is not a PEM block".into(),
        ));
    }
    STANDARD.decode(body.as_bytes()).map_err(|_| {
        Error::Config("the private_key of the GCP credentials file is not valid PEM".into())
    })
}

/// Where tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    ServiceAccount(Arc<ServiceAccountKey>),
    /// The metadata server at this `http://host[:port]`.
    Metadata {
        base_url: String,
    },
    /// A fixed token (tests, or a token obtained elsewhere).
    Static(String),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::ServiceAccount(key) => f.debug_tuple("ServiceAccount").field(key).finish(),
            TokenSource::Metadata { base_url } => f
                .debug_struct("Metadata")
                .field("base_url", base_url)
                .finish(),
            TokenSource::Static(_) => f.write_str("Static(..)"),
        }
    }
}

impl TokenSource {
    /// Google's application-default order, as far as snapshots need it:
    /// `GOOGLE_APPLICATION_CREDENTIALS` (a service-account key file), else the metadata
    /// server (`GCE_METADATA_HOST`, else `metadata.google.internal`).
    pub fn from_env() -> Result<Self> {
        if let Some(path) =
            std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty())
        {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::Config(format!(
                    "cannot read GOOGLE_APPLICATION_CREDENTIALS file {}: {e}",
                    std::path::Path::new(&path).display()
                ))
            })?;
            return Ok(TokenSource::ServiceAccount(Arc::new(
                ServiceAccountKey::from_json(&text)?,
            )));
        }
        let host = std::env::var("GCE_METADATA_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string());
        Ok(TokenSource::Metadata {
            base_url: metadata_base_url(&host),
        })
    }
}

/// `http://<host>` for a `GCE_METADATA_HOST` value (`host`, `host:port`, or a URL).
pub fn metadata_base_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("http://{host}")
    }
}

/// A token source with its current token, renewed shortly before it expires.
pub struct Tokens {
    source: TokenSource,
    cached: tokio::sync::Mutex<Option<(String, std::time::Instant)>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(source: TokenSource) -> Self {
        Tokens {
            source,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access token.
    pub async fn token(&self) -> Result<String, ComputeError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && expires.saturating_duration_since(std::time::Instant::now()) > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        *cached = Some((token.clone(), std::time::Instant::now() + lifetime));
        Ok(token)
    }

    /// Forgets the current token (after the API refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(String, Duration), ComputeError> {
        match &self.source {
            TokenSource::Static(token) => Ok((token.clone(), Duration::from_secs(3600))),
            TokenSource::ServiceAccount(key) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let assertion = key
                    .assertion(now)
                    .map_err(|e| ComputeError::Credentials(e.to_string()))?;
                let body = format!(
                    "grant_type={}&assertion={assertion}",
                    percent_encoding::utf8_percent_encode(
                        "urn:ietf:params:oauth:grant-type:jwt-bearer",
                        percent_encoding::NON_ALPHANUMERIC
                    )
                );
                let request = http::Request::builder()
                    .method(http::Method::POST)
                    .uri(&key.token_uri)
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.into());
                token_request(&key.token_uri, request).await
            }
            TokenSource::Metadata { base_url } => {
                let url = format!(
                    "{base_url}/computeMetadata/v1/instance/service-accounts/default/token"
                );
                let request = http::Request::builder()
                    .method(http::Method::GET)
                    .uri(&url)
                    .header("Metadata-Flavor", "Google")
                    .body(Vec::<u8>::new().into());
                token_request(&url, request).await
            }
        }
    }
}

/// Sends a token request and reads `access_token` and `expires_in` from the answer. Errors
/// name the URL and status, never the answer's body (it may hold a token).
async fn token_request(
    url: &str,
    request: std::result::Result<HttpRequest, http::Error>,
) -> Result<(String, Duration), ComputeError> {
    let request =
        request.map_err(|e| ComputeError::Credentials(format!("invalid token URL {url}: {e}")))?;
    let http = http_client_for(url).map_err(|e| ComputeError::Credentials(e.to_string()))?;
    let response = http
        .execute(request)
        .await
        .map_err(|e| ComputeError::Unreachable {
            call: "token".into(),
            detail: format!("cannot get an access token from {url}: {}", error_chain(&e)),
        })?;
    let status = response.status();
    let bytes = response
        .into_body()
        .bytes()
        .await
        .map_err(|e| ComputeError::Unreachable {
            call: "token".into(),
            detail: format!("cannot get an access token from {url}: {}", error_chain(&e)),
        })?;
    if !status.is_success() {
        // OAuth errors (`{"error": "invalid_grant", "error_description": ...}`) carry no
        // secret; show them.
        let why = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                let error = v.get("error")?.as_str()?.to_string();
                Some(match v.get("error_description").and_then(|d| d.as_str()) {
                    Some(d) => format!("{error}: {d}"),
                    None => error,
                })
            })
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
        return Err(ComputeError::Credentials(format!(
            "cannot get an access token from {url}: HTTP {}: {why}",
            status.as_u16()
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| ComputeError::Credentials(format!("the token answer of {url} is not JSON")))?;
    let token = value
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ComputeError::Credentials(format!("the token answer of {url} has no access_token"))
        })?;
    let lifetime = value
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .unwrap_or(3600);
    Ok((token.to_string(), Duration::from_secs(lifetime)))
}

pub(crate) use crate::snapshot::rest::http_client_for;

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair, UnparsedPublicKey};

    use super::*;

    /// A fresh RSA key as a service-account key file's JSON, and the key.
    pub(crate) fn key_file(token_uri: Option<&str>) -> (String, RsaKeyPair) {
        let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = key.as_der().unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let mut json = serde_json::json!({
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "kid-1",
            "private_key": pem,
            "client_email": "barman@proj.iam.gserviceaccount.com",
        });
        if let Some(uri) = token_uri {
            json["token_uri"] = serde_json::Value::String(uri.into());
        }
        (json.to_string(), key)
    }

    #[test]
    fn assertion_claims_and_signature() {
        let (json, key) = key_file(Some("http://127.0.0.1:1/token"));
        let account = ServiceAccountKey::from_json(&json).unwrap();
        assert_eq!(account.token_uri, "http://127.0.0.1:1/token");
        assert!(!format!("{account:?}").contains("PRIVATE"));
        let jwt = account.assertion(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "barman@proj.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key().as_ref(),
        )
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("a valid RS256 signature");
    }

    #[test]
    fn key_files_default_and_refusals() {
        let (json, _) = key_file(None);
        assert_eq!(
            ServiceAccountKey::from_json(&json).unwrap().token_uri,
            DEFAULT_TOKEN_URI
        );
        let user = r#"{"type": "authorized_user", "client_id": "x"}"#;
        assert!(matches!(
            ServiceAccountKey::from_json(user),
            Err(Error::Unsupported(_))
        ));
        let bad = r#"{"type": "service_account", "client_email": "a@b", "private_key": "nope"}"#;
        let err = ServiceAccountKey::from_json(bad).unwrap_err().to_string();
        assert!(err.contains("PEM"), "{err}");
        assert!(ServiceAccountKey::from_json("{").is_err());
    }

    #[test]
    fn metadata_host_forms() {
        assert_eq!(
            metadata_base_url("metadata.google.internal"),
            "http://metadata.google.internal"
        );
        assert_eq!(metadata_base_url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            metadata_base_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
    }
}
