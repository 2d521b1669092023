//! AWS S3 and S3-compatible servers.
//!
//! Credentials follow boto3's order (environment keys, profile, web identity for IRSA,
//! container and instance metadata) through `aws-config`; the static-key case skips it
//! so that `wal-archive` starts in milliseconds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use object_store::aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential, AwsCredentialProvider};
use object_store::client::HttpRequest;
use tokio::sync::Mutex;

use super::{AddressingStyle, BucketState, Location, S3Encryption, StorageOptions};
use crate::error::{Error, Result};

/// What S3 leaves unescaped in a key path: RFC 3986 unreserved characters and `/`.
const KEY_ENCODE_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub(super) struct S3Admin {
    client_options: object_store::ClientOptions,
    /// SSE-C headers a HEAD of an object encrypted with the customer key needs.
    sse_c_headers: Vec<(&'static str, String)>,
    credentials: AwsCredentialProvider,
    region: String,
    bucket_url: String,
    bucket: String,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(super) async fn build(
    location: &Location,
    options: &StorageOptions,
) -> Result<(Arc<object_store::aws::AmazonS3>, S3Admin)> {
    let profile = options
        .aws_profile
        .clone()
        .or_else(|| env_nonempty("AWS_PROFILE"));
    let region = resolve_region(profile.as_deref()).await;
    let credentials = credential_provider(options, profile.as_deref(), &region).await?;

    let endpoint = options
        .endpoint_url
        .clone()
        .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env_nonempty("AWS_ENDPOINT_URL"))
        .map(|e| e.trim_end_matches('/').to_string());
    let virtual_hosted = match options.addressing_style {
        AddressingStyle::Virtual => true,
        AddressingStyle::Path => false,
        // botocore's "auto" uses virtual hosts on AWS itself and paths elsewhere.
        AddressingStyle::Auto => endpoint.is_none(),
    };
    let base = endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let bucket_url = if virtual_hosted {
        match base.split_once("://") {
            Some((scheme, host)) => format!("{scheme}://{}.{host}", location.bucket),
            None => format!("https://{}.{base}", location.bucket),
        }
    } else {
        format!("{base}/{}", location.bucket)
    };
    let allow_http = base.starts_with("http://");
    let client_options = super::client_options(options, allow_http);

    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&location.bucket)
        .with_region(&region)
        .with_credentials(credentials.clone())
        .with_client_options(client_options.clone())
        .with_retry(super::retry_config())
        .with_virtual_hosted_style_request(virtual_hosted);
    if virtual_hosted {
        builder = builder.with_endpoint(&bucket_url);
    } else if let Some(endpoint) = &endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let (builder, customer_key) = apply_encryption(builder, options)?;
    let store = builder
        .build()
        .map_err(|e| Error::Config(format!("cannot configure S3 client: {e}")))?;

    Ok((
        Arc::new(store),
        S3Admin {
            client_options,
            sse_c_headers: customer_key
                .as_deref()
                .map(sse_c_headers)
                .unwrap_or_default(),
            credentials,
            region,
            bucket_url,
            bucket: location.bucket.clone(),
        },
    ))
}

/// The builder with the server-side encryption the options ask for, and the SSE-C key (base64)
/// when one was given.
fn apply_encryption(
    builder: AmazonS3Builder,
    options: &StorageOptions,
) -> Result<(AmazonS3Builder, Option<String>)> {
    if options.sse_kms_key_id.is_some() && options.s3_encryption != Some(S3Encryption::AwsKms) {
        return Err(Error::Config(
            "Encryption type must be \"aws:kms\" if SSE KMS Key ID is specified".into(),
        ));
    }
    if let Some(uri) = &options.sse_customer_key_uri {
        if options.s3_encryption.is_some() || options.sse_kms_key_id.is_some() {
            return Err(Error::Config(
                "--sse-customer-key cannot be used together with --encryption or --sse-kms-key-id"
                    .into(),
            ));
        }
        let key = read_customer_key(uri)?;
        return Ok((builder.with_ssec_encryption(&key), Some(key)));
    }
    let builder = match options.s3_encryption {
        Some(S3Encryption::Aes256) => builder.with_config(
            "aws_server_side_encryption"
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .map_err(|e| Error::Config(e.to_string()))?,
            "AES256",
        ),
        Some(S3Encryption::AwsKms) => {
            builder.with_sse_kms_encryption(options.sse_kms_key_id.clone().unwrap_or_default())
        }
        None => builder,
    };
    Ok((builder, None))
}

/// The three headers that let a request read an object encrypted with the customer key.
fn sse_c_headers(key_base64: &str) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use md5::Digest;
    let engine = base64::engine::general_purpose::STANDARD;
    let raw = engine.decode(key_base64).unwrap_or_default();
    vec![
        (
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256".to_string(),
        ),
        (
            "x-amz-server-side-encryption-customer-key",
            key_base64.to_string(),
        ),
        (
            "x-amz-server-side-encryption-customer-key-md5",
            engine.encode(md5::Md5::digest(&raw)),
        ),
    ]
}

/// Reads an SSE-C key file given as `file:///absolute/path`: base64 of 32 bytes.
fn read_customer_key(uri: &str) -> Result<String> {
    use base64::Engine;
    let path = uri
        .strip_prefix("file://")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| {
            Error::Config(format!(
                "--sse-customer-key must be a file:// URI with an absolute path, got {uri}"
            ))
        })?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let key = text.trim();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| Error::Config(format!("SSE-C key in {path} is not valid base64")))?;
    if raw.len() != 32 {
        return Err(Error::Config(format!(
            "SSE-C key in {path} must decode to 32 bytes, got {}",
            raw.len()
        )));
    }
    Ok(key.to_string())
}

pub(crate) async fn resolve_region(profile: Option<&str>) -> String {
    if let Some(region) = env_nonempty("AWS_REGION").or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
    {
        return region;
    }
    use aws_config::meta::region::ProvideRegion;
    let mut builder = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(profile) = profile {
        builder = builder.profile_name(profile);
    }
    match builder.build().region().await {
        Some(region) => region.to_string(),
        None => "us-east-1".to_string(),
    }
}

pub(crate) async fn credential_provider(
    options: &StorageOptions,
    profile: Option<&str>,
    region: &str,
) -> Result<AwsCredentialProvider> {
    let region = aws_config::Region::new(region.to_string());
    if options.aws_irsa {
        if env_nonempty("AWS_ROLE_ARN").is_none()
            || env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE").is_none()
        {
            return Err(Error::Config(
                "--aws-irsa needs AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (set by EKS for service accounts)".into(),
            ));
        }
        let config =
            aws_config::provider_config::ProviderConfig::default().with_region(Some(region));
        let provider =
            aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                .configure(&config)
                .build();
        return Ok(Arc::new(CachedAwsCredentials::new(provider)));
    }
    if let (None, Some(key_id), Some(secret_key)) = (
        profile,
        env_nonempty("AWS_ACCESS_KEY_ID"),
        env_nonempty("AWS_SECRET_ACCESS_KEY"),
    ) {
        {
            return Ok(Arc::new(object_store::StaticCredentialProvider::new(
                AwsCredential {
                    key_id,
                    secret_key,
                    token: env_nonempty("AWS_SESSION_TOKEN"),
                },
            )));
        }
    }
    let mut chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .region(region);
    if let Some(profile) = profile {
        chain = chain.profile_name(profile);
    }
    Ok(Arc::new(CachedAwsCredentials::new(chain.build().await)))
}

/// Bridges an `aws-config` provider into object_store, caching until shortly before expiry.
struct CachedAwsCredentials<P> {
    provider: P,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl<P> std::fmt::Debug for CachedAwsCredentials<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedAwsCredentials")
    }
}

impl<P> CachedAwsCredentials<P> {
    fn new(provider: P) -> Self {
        Self {
            provider,
            cached: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl<P: ProvideCredentials + Send + Sync + 'static> object_store::CredentialProvider
    for CachedAwsCredentials<P>
{
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh = expiry
                .map(|e| e > SystemTime::now() + Duration::from_secs(300))
                .unwrap_or(true);
            if fresh {
                return Ok(credential.clone());
            }
        }
        let creds = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no usable AWS credentials: {}",
                    crate::error::error_chain(&e)
                )
                .into(),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), creds.expiry()));
        Ok(credential)
    }
}

impl S3Admin {
    async fn send(
        &self,
        method: http::Method,
        body: bytes::Bytes,
    ) -> Result<(http::StatusCode, String)> {
        self.send_to("", method, body, &[])
            .await
            .map(|r| (r.status, r.text))
    }

    /// A signed request to `<bucket URL>/<key>` (`key` empty for the bucket itself).
    async fn send_to(
        &self,
        key: &str,
        method: http::Method,
        body: bytes::Bytes,
        headers: &[(&'static str, String)],
    ) -> Result<super::AdminResponse> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| Error::Config(crate::error::error_chain(&e)))?;
        let encoded = percent_encoding::utf8_percent_encode(key, KEY_ENCODE_SET);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}/{encoded}", self.bucket_url));
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        let mut request: HttpRequest = builder
            .body(body.into())
            .map_err(|e| Error::Config(format!("bad bucket URL {}: {e}", self.bucket_url)))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| Error::Config(crate::error::error_chain(&e)))?;
        super::send_admin_request(&self.client_options, request).await
    }

    /// Why S3 Object Lock forbids deleting `key` now, if it does: HeadObject shows the
    /// retention date and legal hold to callers allowed to read them.
    pub(super) async fn object_lock(&self, key: &str) -> Result<Option<String>> {
        let response = self
            .send_to(
                key,
                http::Method::HEAD,
                bytes::Bytes::new(),
                &self.sse_c_headers,
            )
            .await?;
        match response.status.as_u16() {
            200..=299 => {}
            403 => {
                return Err(Error::Storage(format!(
                    "Access denied when checking Object Lock for {key}"
                )));
            }
            code => {
                return Err(Error::Storage(format!(
                    "Error checking Object Lock for {key}: HTTP {code}"
                )));
            }
        }
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(until) = header("x-amz-object-lock-retain-until-date") {
            let date = chrono::DateTime::parse_from_rfc3339(&until).map_err(|_| {
                Error::Storage(format!(
                    "Error checking Object Lock for {key}: unreadable retain-until date {until}"
                ))
            })?;
            if date > chrono::Utc::now() {
                return Ok(Some(format!(
                    "Object is locked and can't be deleted until {until}"
                )));
            }
        }
        if header("x-amz-object-lock-legal-hold").as_deref() == Some("ON") {
            return Ok(Some(
                "Object has a legal hold and can't be deleted until the legal hold is removed"
                    .into(),
            ));
        }
        Ok(None)
    }

    pub(super) async fn bucket_state(&self) -> Result<BucketState> {
        let (status, _) = self.send(http::Method::HEAD, bytes::Bytes::new()).await?;
        match status.as_u16() {
            200..=299 => Ok(BucketState::Exists),
            404 => Ok(BucketState::Missing),
            403 => Err(Error::Storage(format!(
                "Permission denied when accessing bucket {}",
                self.bucket
            ))),
            400 => Err(Error::Storage(format!(
                "Bad request when accessing bucket {}: invalid or misconfigured credentials?",
                self.bucket
            ))),
            other => Err(Error::Storage(format!(
                "unexpected HTTP status {other} when checking bucket {}",
                self.bucket
            ))),
        }
    }

    pub(super) async fn create_bucket(&self) -> Result<()> {
        let body = if self.region == "us-east-1" {
            bytes::Bytes::new()
        } else {
            bytes::Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let (status, text) = self.send(http::Method::PUT, body).await?;
        if status.is_success() || text.contains("BucketAlreadyOwnedByYou") {
            Ok(())
        } else {
            Err(Error::Storage(format!(
                "cannot create bucket {}: HTTP {status}: {}",
                self.bucket,
                text.lines().next().unwrap_or_default()
            )))
        }
    }
}
