//! An HTTP connector that adds provider headers object_store has no option for (Azure
//! encryption scope, GCS KMS key name) to write requests only.

use std::fmt;

use http::{HeaderName, HeaderValue, Method, Uri};
use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};

/// Which requests get the extra headers.
pub(super) type WriteFilter = fn(&Method, &Uri) -> bool;

#[derive(Clone)]
pub(super) struct ExtraWriteHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
    applies_to: WriteFilter,
    /// Shared-key requests are signed over every `x-ms-*` header, so a header added after
    /// object_store signed the request needs a new signature.
    azure_resign: Option<(String, String)>,
}

impl fmt::Debug for ExtraWriteHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtraWriteHeaders")
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("azure_resign", &self.azure_resign.is_some())
            .finish()
    }
}

impl ExtraWriteHeaders {
    pub(super) fn new(headers: Vec<(HeaderName, HeaderValue)>, applies_to: WriteFilter) -> Self {
        Self {
            headers,
            applies_to,
            azure_resign: None,
        }
    }

    pub(super) fn resigning_with_azure_key(mut self, account: &str, key: &str) -> Self {
        self.azure_resign = Some((account.to_string(), key.to_string()));
        self
    }
}

impl HttpConnector for ExtraWriteHeaders {
    fn connect(&self, options: &object_store::ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(WithHeaders {
            inner,
            config: self.clone(),
        }))
    }
}

#[derive(Debug)]
struct WithHeaders {
    inner: HttpClient,
    config: ExtraWriteHeaders,
}

#[async_trait::async_trait]
impl HttpService for WithHeaders {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if (self.config.applies_to)(request.method(), request.uri()) {
            for (name, value) in &self.config.headers {
                request.headers_mut().insert(name.clone(), value.clone());
            }
            if let Some((account, key)) = &self.config.azure_resign
                && request.headers().contains_key(http::header::AUTHORIZATION)
            {
                request.headers_mut().remove(http::header::AUTHORIZATION);
                let key = AzureAccessKey::try_new(key)
                    .map_err(|e| HttpError::new(object_store::client::HttpErrorKind::Unknown, e))?;
                let credential = AzureCredential::AccessKey(key);
                AzureAuthorizer::new(&credential, account)
                    .try_authorize(&mut request)
                    .map_err(|e| HttpError::new(object_store::client::HttpErrorKind::Unknown, e))?;
            }
        }
        self.inner.execute(request).await
    }
}
