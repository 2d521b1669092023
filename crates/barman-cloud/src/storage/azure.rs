//! Azure Blob Storage, with Barman's credential precedence: `--azure-credential`, then
//! `AZURE_STORAGE_CONNECTION_STRING`, `AZURE_STORAGE_SAS_TOKEN`, `AZURE_STORAGE_KEY`, then
//! the default token chain.

use std::sync::Arc;

use object_store::azure::{AzureAuthorizer, AzureCredentialProvider, MicrosoftAzureBuilder};
use object_store::client::HttpRequest;

use super::headers::ExtraWriteHeaders;
use super::{AzureAccount, AzureCredentialKind, BucketState, Location, StorageOptions};
use crate::error::{Error, Result};

pub(super) struct AzureAdmin {
    client_options: object_store::ClientOptions,
    credentials: AzureCredentialProvider,
    account: String,
    container_url: String,
    container: String,
}

/// The fields of an Azure storage connection string we use.
#[derive(Default, PartialEq, Eq)]
struct ConnectionString {
    account_name: Option<String>,
    account_key: Option<String>,
    blob_endpoint: Option<String>,
    sas: Option<String>,
    protocol: Option<String>,
    endpoint_suffix: Option<String>,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account_name", &self.account_name)
            .field("blob_endpoint", &self.blob_endpoint)
            .finish_non_exhaustive()
    }
}

const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl ConnectionString {
    fn parse(text: &str) -> Result<Self> {
        let mut cs = ConnectionString::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                Error::Config("AZURE_STORAGE_CONNECTION_STRING is not a list of key=value".into())
            })?;
            let value = value.to_string();
            match key.to_ascii_lowercase().as_str() {
                "accountname" => cs.account_name = Some(value),
                "accountkey" => cs.account_key = Some(value),
                "blobendpoint" => cs.blob_endpoint = Some(value.trim_end_matches('/').to_string()),
                "sharedaccesssignature" => cs.sas = Some(value),
                "defaultendpointsprotocol" => cs.protocol = Some(value),
                "endpointsuffix" => cs.endpoint_suffix = Some(value),
                "usedevelopmentstorage" if value.eq_ignore_ascii_case("true") => {
                    cs.account_name = Some(DEV_ACCOUNT.into());
                    cs.account_key = Some(DEV_KEY.into());
                    cs.blob_endpoint = Some(format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
                }
                _ => {}
            }
        }
        Ok(cs)
    }

    fn endpoint(&self) -> Result<String> {
        if let Some(endpoint) = &self.blob_endpoint {
            return Ok(endpoint.clone());
        }
        let account = self.account_name.as_ref().ok_or_else(|| {
            Error::Config(
                "AZURE_STORAGE_CONNECTION_STRING has neither BlobEndpoint nor AccountName".into(),
            )
        })?;
        Ok(format!(
            "{}://{account}.blob.{}",
            self.protocol.as_deref().unwrap_or("https"),
            self.endpoint_suffix
                .as_deref()
                .unwrap_or("core.windows.net")
        ))
    }

    /// Account name, from the key or the endpoint's host or path.
    fn account(&self, endpoint: &str) -> Option<String> {
        if let Some(account) = &self.account_name {
            return Some(account.clone());
        }
        let url = url::Url::parse(endpoint).ok()?;
        let host = url.host_str()?;
        if host.contains(".blob.") {
            return host.split('.').next().map(str::to_string);
        }
        url.path_segments()?.next().map(str::to_string)
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn sas_pairs(sas: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn build(
    location: &Location,
    options: &StorageOptions,
) -> Result<(Arc<object_store::azure::MicrosoftAzure>, AzureAdmin)> {
    let account_info = location
        .azure_account
        .clone()
        .ok_or_else(|| Error::Config("missing Azure account".into()))?;
    let connection_string = env_nonempty("AZURE_STORAGE_CONNECTION_STRING");

    let mut builder = MicrosoftAzureBuilder::new().with_container_name(&location.bucket);
    let mut shared_key: Option<(String, String)> = None;
    let (endpoint, account) = match (&options.azure_credential, &account_info) {
        (Some(kind), AzureAccount::Service { account, url }) => {
            builder = match kind {
                AzureCredentialKind::AzureCli => builder.with_credential_type("azure_cli"),
                AzureCredentialKind::ManagedIdentity => {
                    builder.with_credential_type("managed_identity")
                }
                AzureCredentialKind::Default => default_chain(builder),
            };
            (url.clone(), account.clone())
        }
        (_, AzureAccount::Emulated { .. }) | (None, _) if connection_string.is_some() => {
            let cs = ConnectionString::parse(connection_string.as_deref().unwrap_or_default())?;
            let endpoint = cs.endpoint()?;
            let account = cs.account(&endpoint).ok_or_else(|| {
                Error::Config(
                    "cannot tell the storage account from AZURE_STORAGE_CONNECTION_STRING".into(),
                )
            })?;
            if let Some(key) = &cs.account_key {
                builder = builder.with_access_key(key);
                shared_key = Some((account.clone(), key.clone()));
            } else if let Some(sas) = &cs.sas {
                builder = builder.with_sas_authorization(sas_pairs(sas));
            } else {
                return Err(Error::Config(
                    "AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor SharedAccessSignature".into(),
                ));
            }
            (endpoint, account)
        }
        (_, AzureAccount::Emulated { .. }) => {
            return Err(Error::Config(
                "A connection string must be provided when using emulated storage".into(),
            ));
        }
        (None, AzureAccount::Service { account, url }) => {
            if let Some(sas) = env_nonempty("AZURE_STORAGE_SAS_TOKEN") {
                builder = builder.with_sas_authorization(sas_pairs(&sas));
            } else if let Some(key) = env_nonempty("AZURE_STORAGE_KEY") {
                builder = builder.with_access_key(&key);
                shared_key = Some((account.clone(), key));
            } else {
                builder = default_chain(builder);
            }
            (url.clone(), account.clone())
        }
    };

    let allow_http = endpoint.starts_with("http://");
    let client_options = super::client_options(options, allow_http);
    builder = builder
        .with_account(&account)
        .with_endpoint(endpoint.clone())
        .with_allow_http(allow_http)
        .with_client_options(client_options.clone())
        .with_retry(super::retry_config());
    if let Some(scope) = &options.encryption_scope {
        let value = http::HeaderValue::from_str(scope)
            .map_err(|_| Error::Config(format!("invalid encryption scope {scope:?}")))?;
        let mut connector = ExtraWriteHeaders::new(
            vec![(
                http::HeaderName::from_static("x-ms-encryption-scope"),
                value,
            )],
            |method, uri| {
                method == http::Method::PUT
                    && !uri.query().unwrap_or_default().contains("comp=tags")
            },
        );
        if let Some((account, key)) = &shared_key {
            connector = connector.resigning_with_azure_key(account, key);
        }
        builder = builder.with_http_connector(connector);
    }
    let store = builder
        .build()
        .map_err(|e| Error::Config(format!("cannot configure Azure client: {e}")))?;
    let credentials = store.credentials().clone();
    let admin = AzureAdmin {
        client_options,
        credentials,
        container_url: format!("{endpoint}/{}", location.bucket),
        container: location.bucket.clone(),
        account,
    };
    Ok((Arc::new(store), admin))
}

/// The closest thing to Azure's DefaultAzureCredential object_store offers: client secret
/// or workload identity from the environment, then managed identity.
fn default_chain(builder: MicrosoftAzureBuilder) -> MicrosoftAzureBuilder {
    let mut builder = builder;
    for (var, key) in [
        (
            "AZURE_CLIENT_ID",
            object_store::azure::AzureConfigKey::ClientId,
        ),
        (
            "AZURE_CLIENT_SECRET",
            object_store::azure::AzureConfigKey::ClientSecret,
        ),
        (
            "AZURE_TENANT_ID",
            object_store::azure::AzureConfigKey::AuthorityId,
        ),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            object_store::azure::AzureConfigKey::FederatedTokenFile,
        ),
    ] {
        if let Some(value) = env_nonempty(var) {
            builder = builder.with_config(key, value);
        }
    }
    builder.with_credential_type("auto")
}

impl AzureAdmin {
    async fn send(&self, method: http::Method, query: &str) -> Result<(http::StatusCode, String)> {
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| Error::Config(crate::error::error_chain(&e)))?;
        let mut request: HttpRequest = http::Request::builder()
            .method(method)
            .uri(format!("{}?{query}", self.container_url))
            .header("Content-Length", "0")
            .body(bytes::Bytes::new().into())
            .map_err(|e| Error::Config(format!("bad container URL {}: {e}", self.container_url)))?;
        AzureAuthorizer::new(&credential, &self.account)
            .try_authorize(&mut request)
            .map_err(|e| Error::Config(crate::error::error_chain(&e)))?;
        super::send_admin_request(&self.client_options, request)
            .await
            .map(|r| (r.status, r.text))
    }

    pub(super) async fn container_state(&self) -> Result<BucketState> {
        let (status, text) = self
            .send(
                http::Method::GET,
                "restype=container&comp=list&maxresults=1",
            )
            .await?;
        match status.as_u16() {
            200..=299 => Ok(BucketState::Exists),
            404 => Ok(BucketState::Missing),
            // Barman counts every HTTP error response here as a connectivity failure.
            other => Err(Error::Connectivity(format!(
                "HTTP {other} listing container {}: {}",
                self.container,
                first_error_code(&text)
            ))),
        }
    }

    pub(super) async fn create_container(&self) -> Result<()> {
        let (status, text) = self.send(http::Method::PUT, "restype=container").await?;
        if status.is_success() || text.contains("ContainerAlreadyExists") {
            Ok(())
        } else {
            Err(Error::Storage(format!(
                "cannot create container {}: HTTP {status}: {}",
                self.container,
                first_error_code(&text)
            )))
        }
    }
}

fn first_error_code(xml: &str) -> &str {
    xml.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_give_endpoint_and_account() {
        let cs = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;"
        ))
        .unwrap();
        let endpoint = cs.endpoint().unwrap();
        assert_eq!(endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(cs.account(&endpoint).as_deref(), Some("devstoreaccount1"));

        let real = ConnectionString::parse(
            "AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(
            real.endpoint().unwrap(),
            "https://acct.blob.core.windows.net"
        );

        let sas = ConnectionString::parse(
            "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2020&sig=abc",
        )
        .unwrap();
        assert_eq!(
            sas.account("https://acct.blob.core.windows.net").as_deref(),
            Some("acct")
        );
        assert_eq!(sas_pairs(sas.sas.as_deref().unwrap()).len(), 2);
        assert!(!format!("{sas:?}").contains("sig=abc"));
    }
}
