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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Serves `count` requests on 127.0.0.1 with `201 Created` and returns their heads.
    fn capture_requests(count: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for _ in 0..count {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 65536];
                let mut head = String::new();
                while !head.contains("\r\n\r\n") {
                    let n = stream.read(&mut buf).unwrap();
                    head.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                stream
                    .write_all(
                        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
                heads.push(head.to_ascii_lowercase());
            }
            heads
        });
        (url, handle)
    }

    #[tokio::test]
    async fn scope_header_goes_on_writes_only_and_shared_key_requests_are_resigned() {
        let (url, server) = capture_requests(2);
        let key = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=";
        let connector = ExtraWriteHeaders::new(
            vec![(
                HeaderName::from_static("x-ms-encryption-scope"),
                HeaderValue::from_static("scope1"),
            )],
            |method, _| method == Method::PUT,
        )
        .resigning_with_azure_key("acct", key);
        let options = object_store::ClientOptions::new().with_allow_http(true);
        let client = connector.connect(&options).unwrap();
        for method in [Method::PUT, Method::GET] {
            let mut request: HttpRequest = http::Request::builder()
                .method(method)
                .uri(format!("{url}/acct/container/blob"))
                .body(bytes::Bytes::from_static(b"data").into())
                .unwrap();
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_static("SharedKey acct:stale"),
            );
            client.execute(request).await.unwrap();
        }
        let heads = server.join().unwrap();
        assert!(
            heads[0].contains("x-ms-encryption-scope: scope1"),
            "{}",
            heads[0]
        );
        assert!(
            heads[0].contains("authorization: sharedkey acct:"),
            "{}",
            heads[0]
        );
        assert!(
            !heads[0].contains("acct:stale"),
            "the PUT kept its old signature"
        );
        assert_eq!(heads[0].matches("authorization:").count(), 1);
        assert!(!heads[1].contains("x-ms-encryption-scope"), "{}", heads[1]);
        assert!(
            heads[1].contains("acct:stale"),
            "a GET must be left as signed"
        );
    }
}
