//! Google Cloud Storage. Credentials come from `GOOGLE_APPLICATION_CREDENTIALS` (or the
//! metadata server); `STORAGE_EMULATOR_HOST` points both us and Google's own libraries at
//! an emulator, without credentials.

use std::sync::Arc;

use object_store::gcp::{GcpCredentialProvider, GoogleCloudStorageBuilder};

use super::headers::ExtraWriteHeaders;
use super::{BucketState, Location, StorageOptions};
use crate::error::{Error, Result};

pub(super) struct GcsAdmin {
    client_options: object_store::ClientOptions,
    credentials: Option<GcpCredentialProvider>,
    base_url: String,
    bucket: String,
    project: Option<String>,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The emulator address as Google's libraries read it (scheme optional).
fn emulator_url() -> Option<String> {
    env_nonempty("STORAGE_EMULATOR_HOST").map(|host| {
        let host = host.trim_end_matches('/');
        if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        }
    })
}

/// The project to create buckets in: GOOGLE_CLOUD_PROJECT, else the credentials file's.
fn project_id() -> Option<String> {
    env_nonempty("GOOGLE_CLOUD_PROJECT").or_else(|| {
        let path = env_nonempty("GOOGLE_APPLICATION_CREDENTIALS")?;
        let text = std::fs::read_to_string(path).ok()?;
        let (_, rest) = text.split_once("\"project_id\"")?;
        let (_, rest) = rest.split_once('"')?;
        rest.split_once('"').map(|(id, _)| id.to_string())
    })
}

pub(super) fn build(
    location: &Location,
    options: &StorageOptions,
) -> Result<(Arc<object_store::gcp::GoogleCloudStorage>, GcsAdmin)> {
    let emulator = emulator_url();
    let base_url = emulator.clone().unwrap_or_else(|| {
        let domain =
            env_nonempty("GOOGLE_CLOUD_UNIVERSE_DOMAIN").unwrap_or_else(|| "googleapis.com".into());
        format!("https://storage.{domain}")
    });
    let allow_http = base_url.starts_with("http://");
    let client_options = super::client_options(options, allow_http);
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&location.bucket)
        .with_base_url(&base_url)
        .with_client_options(client_options.clone())
        .with_retry(super::retry_config());
    if emulator.is_some() {
        // Emulators take any token; object_store sends one on writes whatever
        // skip_signature says, so give it a static one rather than let it ask the
        // metadata server.
        builder = builder.with_credentials(Arc::new(object_store::StaticCredentialProvider::new(
            object_store::gcp::GcpCredential {
                bearer: "emulator".into(),
            },
        )));
    } else if let Some(path) = env_nonempty("GOOGLE_APPLICATION_CREDENTIALS") {
        builder = builder.with_application_credentials(path);
    }
    if let Some(key) = &options.kms_key_name {
        let value = http::HeaderValue::from_str(key)
            .map_err(|_| Error::Config(format!("invalid KMS key name {key:?}")))?;
        builder = builder.with_http_connector(ExtraWriteHeaders::new(
            vec![(
                http::HeaderName::from_static("x-goog-encryption-kms-key-name"),
                value,
            )],
            // Object writes and multipart initiation; parts and completion inherit the key.
            |method, uri| {
                let query = uri.query().unwrap_or_default();
                (method == http::Method::PUT && !query.contains("uploadId"))
                    || (method == http::Method::POST && query.contains("uploads"))
            },
        ));
    }
    let store = builder
        .build()
        .map_err(|e| Error::Config(format!("cannot configure Google Cloud Storage client: {e}")))?;
    let credentials = emulator.is_none().then(|| store.credentials().clone());
    let admin = GcsAdmin {
        client_options,
        credentials,
        base_url,
        bucket: location.bucket.clone(),
        project: project_id(),
    };
    Ok((Arc::new(store), admin))
}

impl GcsAdmin {
    async fn send(
        &self,
        method: http::Method,
        url: String,
        body: bytes::Bytes,
    ) -> Result<(http::StatusCode, String)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("Content-Type", "application/json");
        if let Some(credentials) = &self.credentials {
            let token = credentials
                .get_credential()
                .await
                .map_err(|e| Error::Config(crate::error::error_chain(&e)))?;
            request = request.header("Authorization", format!("Bearer {}", token.bearer));
        }
        let request = request
            .body(body.into())
            .map_err(|e| Error::Config(format!("bad GCS URL: {e}")))?;
        super::send_admin_request(&self.client_options, request)
            .await
            .map(|r| (r.status, r.text))
    }

    pub(super) async fn bucket_state(&self) -> Result<BucketState> {
        let url = format!("{}/storage/v1/b/{}", self.base_url, self.bucket);
        let (status, text) = self
            .send(http::Method::GET, url, bytes::Bytes::new())
            .await?;
        match status.as_u16() {
            200..=299 => Ok(BucketState::Exists),
            404 => Ok(BucketState::Missing),
            // Barman's GCS client reports every API error here as a connectivity failure.
            other => Err(Error::Connectivity(format!(
                "HTTP {other} checking bucket {}: {}",
                self.bucket,
                text.lines().next().unwrap_or_default()
            ))),
        }
    }

    pub(super) async fn create_bucket(&self) -> Result<()> {
        let project = self.project.clone().unwrap_or_else(|| "barman-rs".into());
        let url = format!(
            "{}/storage/v1/b?project={}",
            self.base_url,
            percent_encoding::utf8_percent_encode(&project, percent_encoding::NON_ALPHANUMERIC)
        );
        let body = bytes::Bytes::from(format!("{{\"name\": \"{}\"}}", self.bucket));
        let (status, text) = self.send(http::Method::POST, url, body).await?;
        if status.is_success() || status.as_u16() == 409 {
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
