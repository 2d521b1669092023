//! Destination URLs, split into bucket and key prefix exactly as Barman splits them.

use crate::error::{Error, Result};

/// `--cloud-provider`, plus the local directory backend chosen by a `file://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    AwsS3,
    AzureBlobStorage,
    GoogleCloudStorage,
    Local,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "aws-s3" => Some(Provider::AwsS3),
            "azure-blob-storage" => Some(Provider::AzureBlobStorage),
            "google-cloud-storage" => Some(Provider::GoogleCloudStorage),
            _ => None,
        }
    }
}

/// Where an Azure container lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAccount {
    /// `https://<account>.blob.core.windows.net`
    Service { account: String, url: String },
    /// Any other host (Azurite, sovereign clouds): `<scheme>://<host>/<account>`; Barman
    /// then insists on a connection string.
    Emulated { account: String, url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub provider: Provider,
    /// S3/GCS bucket, Azure container, or the root directory for `file://`.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (Barman joins keys with
    /// `os.path.join`, so both forms give the same data and WAL keys).
    pub prefix: String,
    pub azure_account: Option<AzureAccount>,
}

fn invalid(url: &str, reason: &str) -> Error {
    Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

fn trim_slashes(s: &str) -> String {
    s.trim_matches('/').to_string()
}

impl Location {
    /// Parses `url` for `provider`. A `file://` URL always selects the local backend, since
    /// it cannot mean anything else.
    pub fn parse(url: &str, provider: Provider) -> Result<Self> {
        if let Some(path) = url.strip_prefix("file://") {
            return Self::parse_file(url, path);
        }
        match provider {
            Provider::AwsS3 => Self::parse_s3(url),
            Provider::AzureBlobStorage => Self::parse_azure(url),
            Provider::GoogleCloudStorage => Self::parse_gcs(url),
            Provider::Local => Err(invalid(url, "expected a file:// URL")),
        }
    }

    fn parse_file(url: &str, path: &str) -> Result<Self> {
        if !path.starts_with('/') {
            return Err(invalid(
                url,
                "a file:// URL needs an absolute path (file:///dir)",
            ));
        }
        let root = path.trim_end_matches('/');
        Ok(Location {
            provider: Provider::Local,
            bucket: if root.is_empty() {
                "/".into()
            } else {
                root.into()
            },
            prefix: String::new(),
            azure_account: None,
        })
    }

    fn parse_s3(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid(url, "Invalid s3 URL address"))?;
        if rest.starts_with("arn:") {
            return Err(invalid(
                url,
                "S3 access point ARNs are not supported yet by barman-rs",
            ));
        }
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(url, "Invalid s3 URL address"));
        }
        Ok(Location {
            provider: Provider::AwsS3,
            bucket: bucket.to_string(),
            prefix: trim_slashes(path),
            azure_account: None,
        })
    }

    fn parse_azure(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| invalid(url, &e.to_string()))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid(url, "missing host in Azure URL"))?;
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|s| s.collect())
            .unwrap_or_default();
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let (account, container_at) = if host.ends_with("blob.core.windows.net") {
            let account = host.split('.').next().unwrap_or_default().to_string();
            (
                AzureAccount::Service {
                    account,
                    url: format!("https://{host}{port}"),
                },
                0,
            )
        } else {
            let account = segments
                .first()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(url, "emulated Azure URL needs /<account>/<container>"))?
                .to_string();
            (
                AzureAccount::Emulated {
                    url: format!("{}://{host}{port}/{account}", parsed.scheme()),
                    account,
                },
                1,
            )
        };
        let container = segments
            .get(container_at)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(url, "the Azure URL has no container"))?;
        Ok(Location {
            provider: Provider::AzureBlobStorage,
            bucket: container.to_string(),
            prefix: trim_slashes(&segments[container_at + 1..].join("/")),
            azure_account: Some(account),
        })
    }

    fn parse_gcs(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("gs://")
            .or_else(|| url.strip_prefix("https://console.cloud.google.com/storage/browser/"))
            .ok_or_else(|| invalid(url, "Google Cloud Storage URL must start with gs://"))?;
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(url, "missing bucket name"));
        }
        Ok(Location {
            provider: Provider::GoogleCloudStorage,
            bucket: bucket.to_string(),
            prefix: trim_slashes(path),
            azure_account: None,
        })
    }

    /// Key of `parts` under the prefix, joined like Barman's `os.path.join`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts.iter().filter(|p| !p.is_empty()) {
            if !key.is_empty() && !key.ends_with('/') {
                key.push('/');
            }
            key.push_str(part);
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_split_like_barman() {
        let loc = Location::parse("s3://bucket/some/prefix/", Provider::AwsS3).unwrap();
        assert_eq!(
            (loc.bucket.as_str(), loc.prefix.as_str()),
            ("bucket", "some/prefix")
        );
        assert_eq!(
            loc.key(&["srv", "wals", "00000002.history"]),
            "some/prefix/srv/wals/00000002.history"
        );
        let bare = Location::parse("s3://bucket", Provider::AwsS3).unwrap();
        assert_eq!(bare.key(&["srv", "base"]), "srv/base");
        assert!(Location::parse("s3:///x", Provider::AwsS3).is_err());
        assert!(Location::parse("gs://bucket/x", Provider::AwsS3).is_err());
    }

    #[test]
    fn azure_service_and_emulated_urls() {
        let svc = Location::parse(
            "https://acct.blob.core.windows.net/cont/a/b",
            Provider::AzureBlobStorage,
        )
        .unwrap();
        assert_eq!(svc.bucket, "cont");
        assert_eq!(svc.prefix, "a/b");
        assert_eq!(
            svc.azure_account,
            Some(AzureAccount::Service {
                account: "acct".into(),
                url: "https://acct.blob.core.windows.net".into()
            })
        );
        let emu = Location::parse(
            "http://127.0.0.1:10000/devstoreaccount1/cont/pg",
            Provider::AzureBlobStorage,
        )
        .unwrap();
        assert_eq!(emu.bucket, "cont");
        assert_eq!(emu.prefix, "pg");
        assert_eq!(
            emu.azure_account,
            Some(AzureAccount::Emulated {
                account: "devstoreaccount1".into(),
                url: "http://127.0.0.1:10000/devstoreaccount1".into()
            })
        );
        assert!(
            Location::parse(
                "https://acct.blob.core.windows.net/",
                Provider::AzureBlobStorage
            )
            .is_err()
        );
    }

    #[test]
    fn gcs_and_file_urls() {
        let gs = Location::parse("gs://b/p/q/", Provider::GoogleCloudStorage).unwrap();
        assert_eq!((gs.bucket.as_str(), gs.prefix.as_str()), ("b", "p/q"));
        let console = Location::parse(
            "https://console.cloud.google.com/storage/browser/b/p",
            Provider::GoogleCloudStorage,
        )
        .unwrap();
        assert_eq!(
            (console.bucket.as_str(), console.prefix.as_str()),
            ("b", "p")
        );
        let file = Location::parse("file:///srv/backups/", Provider::AwsS3).unwrap();
        assert_eq!(file.provider, Provider::Local);
        assert_eq!(file.bucket, "/srv/backups");
        assert!(Location::parse("file://relative", Provider::AwsS3).is_err());
    }
}
