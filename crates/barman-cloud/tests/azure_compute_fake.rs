//! The Azure managed-disk snapshot provider against `tests/fakes/azure_compute_fake.py` (the
//! ARM fake `scripts/test-services.sh` starts; `BARMAN_RS_TEST_AZURE_ARM_ENDPOINT`).
//!
//! One test function running every scenario in order, in a subscription named per run so
//! that runs against a long-lived fake do not meet. Without the variable it is skipped,
//! unless `CI=true`, where it fails. The service principal scenario needs the fake's HTTPS
//! instance (`BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT`, its CA in `..._TLS_CA`, given to the
//! TLS stack as `SSL_CERT_FILE`).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barman_cloud::Error;
use barman_cloud::catalog::pyliteral::PyValue;
use barman_cloud::catalog::snapshots::{SnapshotCloud, SnapshotMetadata};
use barman_cloud::snapshot::azure::{
    ArmClient, AzureSnapshotSettings, AzureSnapshots, DefaultChain, StaticToken,
};
use barman_cloud::snapshot::{DeviceRef, Mount, SnapshotProvider};
use serde_json::{Value, json};

fn endpoint() -> Option<String> {
    match std::env::var("BARMAN_RS_TEST_AZURE_ARM_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BARMAN_RS_TEST_AZURE_ARM_ENDPOINT is not set: start scripts/test-services.sh")
        }
        _ => {
            eprintln!(
                "note: skipping the Azure Compute tests: BARMAN_RS_TEST_AZURE_ARM_ENDPOINT is \
                 not set (scripts/test-services.sh start DIR && source DIR/env)"
            );
            None
        }
    }
}

/// One blocking HTTP/1.1 exchange with the fake's control API.
fn control(endpoint: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = url::Url::parse(endpoint).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = std::net::TcpStream::connect(&host).expect("fake reachable");
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path}: {head}\n{body}"
    );
    serde_json::from_str(body).unwrap()
}

struct Fake {
    endpoint: String,
    subscription: String,
}

impl Fake {
    fn post(&self, path: &str, body: Value) -> Value {
        control(&self.endpoint, "POST", path, Some(body))
    }

    fn behaviour(&self, disk: &str, settings: Value) {
        self.post(&format!("/_fake/disk/{disk}/behaviour"), settings);
    }

    /// Calls recorded after `since` in this run's subscription.
    fn calls(&self, since: u64) -> Vec<Value> {
        let calls = control(
            &self.endpoint,
            "GET",
            &format!("/_fake/calls?since={since}"),
            None,
        );
        calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!("/subscriptions/{}/", self.subscription)))
            })
            .cloned()
            .collect()
    }

    fn last_seq(&self) -> u64 {
        let calls = control(&self.endpoint, "GET", "/_fake/calls?since=0", None);
        calls
            .as_array()
            .unwrap()
            .last()
            .and_then(|c| c["seq"].as_u64())
            .unwrap_or(0)
    }

    fn snapshot_state(&self, name: &str) -> Option<Value> {
        let state = control(&self.endpoint, "GET", "/_fake/state", None);
        state["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["name"] == name
                    && s["id"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("/subscriptions/{}/", self.subscription))
            })
            .cloned()
    }
}

fn mount(point: &str) -> Mount {
    Mount {
        mount_point: point.into(),
        mount_options: "rw,noatime".into(),
    }
}

fn provider(fake: &Fake, group: &str) -> AzureSnapshots {
    let settings = AzureSnapshotSettings {
        subscription_id: fake.subscription.clone(),
        resource_group: Some(group.into()),
        await_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let client = ArmClient::new(
        &fake.endpoint,
        &fake.subscription,
        Arc::new(StaticToken("test-token".into())),
    )
    .unwrap()
    .with_poll_interval(Duration::from_millis(200));
    AzureSnapshots::with_client(settings, client)
}

#[test]
fn azure_snapshots_on_the_fake() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let tls = tls_endpoint();
    // SAFETY: the only test of this binary; no other thread runs yet.
    unsafe {
        for name in [
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_AUTHORITY_HOST",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
        ] {
            std::env::remove_var(name);
        }
        // Should the default chain ever fall through to managed identity, it must ask a
        // loopback address (App Service style), never the instance metadata service.
        std::env::set_var("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token");
        std::env::set_var("IDENTITY_HEADER", "test");
        if let Some((_, ca)) = &tls {
            std::env::set_var("SSL_CERT_FILE", ca);
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            scenarios(endpoint.clone()).await;
            service_principal_over_plain_http(&endpoint);
            if let Some((tls, _)) = tls {
                service_principal_over_tls(tls).await;
            }
        });
}

/// The HTTPS instance of the fake and the CA file that certifies it, when test-services.sh
/// started one.
fn tls_endpoint() -> Option<(String, String)> {
    let endpoint = std::env::var("BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT").unwrap_or_default();
    let ca = std::env::var("BARMAN_RS_TEST_AZURE_ARM_TLS_CA").unwrap_or_default();
    if endpoint.is_empty() || ca.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT/_CA are not set: start scripts/test-services.sh"
        );
        eprintln!("note: skipping the service principal over TLS: no TLS instance of the fake");
        return None;
    }
    Some((endpoint, ca))
}

async fn scenarios(endpoint: String) {
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let fake = Fake {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        subscription: format!("sub-{run}"),
    };
    let sub = fake.subscription.clone();
    // Disk names are per run too: behaviours are keyed by disk name.
    let data = format!("pgdata{run}");
    let wal = format!("pgwal{run}");
    let failing = format!("pgfail{run}");
    fake.post(
        "/_fake/vm",
        json!({"subscription": sub, "resource_group": "rg-pg", "name": "pg", "location": "westeurope",
               "os_disk": format!("os{run}"),
               "data_disks": [{"name": wal, "lun": 3}, {"name": data, "lun": 1},
                              {"name": failing, "lun": 5}]}),
    );
    fake.post(
        "/_fake/resource-group",
        json!({"subscription": sub, "resource_group": "rg-other"}),
    );
    for disk in [&data, &wal, &failing] {
        fake.behaviour(disk, json!({"retry_after": 0}));
    }
    let azure = provider(&fake, "rg-pg");

    // Instance and disks.
    assert!(azure.instance_exists("pg").await.unwrap());
    assert!(!azure.instance_exists("nope").await.unwrap());
    let err = azure.attached_disks("nope", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Cannot find instance with name nope in resource group rg-pg in subscription {sub}"
        )
    );
    let all = azure.attached_disks("pg", None).await.unwrap();
    let found: Vec<(&str, &DeviceRef)> = all
        .iter()
        .map(|d| (d.identifier.as_str(), &d.device))
        .collect();
    // Attachment order; the OS disk never.
    assert_eq!(
        found,
        [
            (wal.as_str(), &DeviceRef::Azure { lun: 3 }),
            (data.as_str(), &DeviceRef::Azure { lun: 1 }),
            (failing.as_str(), &DeviceRef::Azure { lun: 5 }),
        ]
    );
    assert!(all.iter().all(|d| d.source_snapshot.is_none()));
    let named = azure
        .attached_disks(
            "pg",
            Some(&[data.clone(), format!("os{run}"), "missing".into()]),
        )
        .await
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].identifier, data);

    // Create and wait: the creation returns once the operation succeeded.
    fake.behaviour(&data, json!({"latency": 1.5, "retry_after": 1}));
    let since = fake.last_seq();
    let name = format!("{data}-20250101t000000");
    let started = Instant::now();
    let created = azure
        .create_snapshot("pg", &named[0], &name, &mount("/srv/pgdata"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let meta = &created.metadata;
    assert_eq!(meta.field("lun"), Some(&PyValue::Int(1)));
    assert_eq!(meta.field("location"), Some(&PyValue::str("westeurope")));
    assert_eq!(meta.field("snapshot_name"), Some(&PyValue::str(&name)));
    assert_eq!(meta.mount_point, PyValue::str("/srv/pgdata"));
    let snapshot = fake.snapshot_state(&name).expect("the snapshot exists");
    assert_eq!(snapshot["properties"]["provisioningState"], "Succeeded");
    assert_eq!(snapshot["properties"]["incremental"], true);
    assert!(
        snapshot["properties"]["creationData"]["sourceResourceId"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/disks/{data}"))
    );
    let calls = fake.calls(since);
    let summary: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c["method"].as_str().unwrap(),
                c["kind"].as_str().unwrap_or(""),
                c["status"]
            )
        })
        .collect();
    assert_eq!(summary.first().unwrap(), "GET virtualMachines 200");
    assert!(
        summary.contains(&"PUT snapshots 202".to_string()),
        "{summary:?}"
    );
    assert_eq!(summary.last().unwrap(), "GET snapshots 200", "{summary:?}");
    assert!(
        summary.iter().any(|s| s == "GET operation 200"),
        "{summary:?}"
    );
    for call in &calls {
        assert_eq!(call["bearer"], true);
        match call["kind"].as_str() {
            Some("virtualMachines") => assert_eq!(call["api_version"], "2026-04-01"),
            Some("snapshots") | Some("disks") => assert_eq!(call["api_version"], "2026-03-02"),
            _ => {}
        }
    }
    azure
        .await_snapshots(std::slice::from_ref(meta))
        .await
        .unwrap();

    // A background copy under way is waited for.
    fake.behaviour(&wal, json!({"completion_seconds": 2}));
    let wal_disk = all[0].clone();
    let wal_name = format!("{wal}-20250101t000000");
    let wal_created = azure
        .create_snapshot("pg", &wal_disk, &wal_name, &mount("/srv/pgwal"))
        .await
        .unwrap();
    let waited = Instant::now();
    azure
        .await_snapshots(&[meta.clone(), wal_created.metadata.clone()])
        .await
        .unwrap();
    assert!(waited.elapsed() >= Duration::from_millis(1000));
    fake.behaviour(&wal, json!({"completion_seconds": null}));

    // snapshots_info and ownership names.
    let info = azure.snapshots_info(&[created.clone(), wal_created.clone()]);
    assert_eq!(info.provider(), SnapshotCloud::Azure);
    assert_eq!(info.info("subscription_id"), Some(&PyValue::str(&sub)));
    assert_eq!(info.info("resource_group"), Some(&PyValue::str("rg-pg")));
    assert_eq!(info.snapshots.len(), 2);
    assert_eq!(
        azure.snapshot_name(meta, &info).await.unwrap(),
        Some(name.clone())
    );
    let mut unknown = SnapshotMetadata::new(SnapshotCloud::Azure);
    unknown.set_field("snapshot_name", PyValue::str("never-made"));
    assert_eq!(azure.snapshot_name(&unknown, &info).await.unwrap(), None);
    let mut lost = info.clone();
    lost.set_info("resource_group", PyValue::str("rg-gone"));
    let err = azure.snapshot_name(meta, &lost).await.unwrap_err();
    assert!(err.to_string().contains("ResourceGroupNotFound"), "{err}");

    // Recovery: a disk made from a backup snapshot names it.
    let snapshot_id = snapshot["id"].as_str().unwrap().to_string();
    let clone = format!("clone{run}");
    fake.post(
        "/_fake/vm",
        json!({"subscription": sub, "resource_group": "rg-pg", "name": "restore",
               "data_disks": [{"name": clone, "lun": 0, "source_snapshot_id": snapshot_id}]}),
    );
    let restored = azure.attached_disks("restore", None).await.unwrap();
    assert_eq!(restored[0].source_snapshot.as_deref(), Some(name.as_str()));

    // Throttling is retried after Retry-After.
    fake.behaviour(&wal, json!({"throttle_next": 2, "retry_after": 0}));
    let since = fake.last_seq();
    let again = azure
        .attached_disks("pg", Some(std::slice::from_ref(&wal)))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    let statuses: Vec<u64> = fake
        .calls(since)
        .iter()
        .filter(|c| c["kind"] == "disks")
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [429, 429, 200]);
    // Endless throttling gives up, as an API error.
    fake.behaviour(&wal, json!({"throttle_next": 100}));
    let err = azure
        .attached_disks("pg", Some(std::slice::from_ref(&wal)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Provider(_)), "{err:?}");
    assert!(err.to_string().contains("TooManyRequests"), "{err}");
    fake.behaviour(&wal, json!({"throttle_next": null}));

    // A failed operation.
    fake.behaviour(&failing, json!({"fail": "InternalDiskManagementError"}));
    let failing_disk = all[2].clone();
    let err = azure
        .create_snapshot(
            "pg",
            &failing_disk,
            &format!("{failing}-20250101t000000"),
            &mount("/srv/x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Snapshot '{failing}-20250101t000000' failed with error code Failed: \
             (InternalDiskManagementError) Injected failure"
        )
    );
    assert!(
        fake.snapshot_state(&format!("{failing}-20250101t000000"))
            .is_none(),
        "the failed snapshot was left"
    );
    fake.behaviour(&failing, json!({"fail": null}));

    // A creation that outlives the operation timeout: an error, and the snapshot's deletion
    // asked for at once (it ends on ARM's side after our own wait for it gave up too).
    fake.behaviour(&failing, json!({"latency": 2}));
    let impatient = AzureSnapshots::with_client(
        AzureSnapshotSettings {
            subscription_id: fake.subscription.clone(),
            resource_group: Some("rg-pg".into()),
            ..Default::default()
        },
        ArmClient::new(
            &fake.endpoint,
            &fake.subscription,
            Arc::new(StaticToken("test-token".into())),
        )
        .unwrap()
        .with_poll_interval(Duration::from_millis(200))
        .with_operation_timeout(Duration::from_secs(1)),
    );
    let slow_name = format!("{failing}-20250101t000001");
    let since = fake.last_seq();
    let err = impatient
        .create_snapshot("pg", &failing_disk, &slow_name, &mount("/srv/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
    assert!(
        err.to_string().contains("not finished within 1 seconds"),
        "{err}"
    );
    let asked: Vec<Value> = fake
        .calls(since)
        .into_iter()
        .filter(|c| c["method"] == "DELETE" && c["name"] == slow_name.as_str())
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "the timed-out snapshot's deletion was not asked for"
    );
    let gone_by = Instant::now() + Duration::from_secs(10);
    while fake.snapshot_state(&slow_name).is_some() {
        assert!(Instant::now() < gone_by, "the timed-out snapshot was left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A snapshot whose background copy outlives the wait: await_snapshots gives up with an
    // error (the backup then deletes what it created).
    fake.behaviour(&failing, json!({"latency": null, "completion_seconds": 5}));
    let copying_name = format!("{failing}-20250101t000002");
    let copying = azure
        .create_snapshot("pg", &failing_disk, &copying_name, &mount("/srv/x"))
        .await
        .expect("created, still copying");
    let hurried = AzureSnapshots::with_client(
        AzureSnapshotSettings {
            subscription_id: fake.subscription.clone(),
            resource_group: Some("rg-pg".into()),
            await_timeout: Duration::from_secs(1),
            ..Default::default()
        },
        ArmClient::new(
            &fake.endpoint,
            &fake.subscription,
            Arc::new(StaticToken("test-token".into())),
        )
        .unwrap(),
    );
    let err = hurried
        .await_snapshots(std::slice::from_ref(&copying.metadata))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "Snapshot '{copying_name}' not completed within 1 seconds"
        )),
        "{err}"
    );
    fake.behaviour(&failing, json!({"completion_seconds": null}));
    azure
        .delete_snapshot(
            &copying.metadata,
            &azure.snapshots_info(std::slice::from_ref(&copying)),
        )
        .await
        .unwrap();
    assert!(fake.snapshot_state(&copying_name).is_none());

    // Deletion uses the resource group snapshots_info recorded, not the provider's.
    let elsewhere = provider(&fake, "rg-other");
    let since = fake.last_seq();
    elsewhere.delete_snapshot(meta, &info).await.unwrap();
    assert!(fake.snapshot_state(&name).is_none());
    let deletes: Vec<Value> = fake
        .calls(since)
        .into_iter()
        .filter(|c| c["method"] == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["resource_group"], "rg-pg");
    assert_eq!(deletes[0]["status"], 202);
    assert_eq!(elsewhere.snapshot_name(meta, &info).await.unwrap(), None);
    // Twice: already gone is fine.
    elsewhere.delete_snapshot(meta, &info).await.unwrap();
    elsewhere
        .delete_snapshot(&wal_created.metadata, &info)
        .await
        .unwrap();
    assert!(fake.snapshot_state(&wal_name).is_none());
}

/// The default chain's service principal: azure_identity refuses a plain-HTTP authority host,
/// so the token endpoint of the fake can only serve it over HTTPS.
fn service_principal_over_plain_http(endpoint: &str) {
    // SAFETY: set while no other thread reads the environment (the runtime's workers read
    // none), and removed at once.
    unsafe {
        std::env::set_var("AZURE_TENANT_ID", "tenant-1");
        std::env::set_var("AZURE_CLIENT_ID", "client-1");
        std::env::set_var("AZURE_CLIENT_SECRET", "not-a-secret");
        std::env::set_var("AZURE_AUTHORITY_HOST", endpoint);
    }
    let chain = DefaultChain::from_environment();
    let text = format!("{chain:?}");
    assert!(!text.contains("not-a-secret"), "{text}");
    assert!(text.contains("doesn't use HTTPS scheme"), "{text}");
    unsafe {
        std::env::remove_var("AZURE_AUTHORITY_HOST");
    }
}

/// `--azure-credential default` end to end over HTTPS: a service principal from the
/// environment gets its token from the fake's Entra ID endpoint (`AZURE_AUTHORITY_HOST`) and
/// the provider reaches ARM at `AZURE_RESOURCE_MANAGER_ENDPOINT`.
async fn service_principal_over_tls(endpoint: String) {
    let endpoint = endpoint.trim_end_matches('/').to_string();
    let sub = format!("sub-tls-{}", std::process::id());
    let tenant = format!("tenant-{}", std::process::id());
    tls_control(
        &endpoint,
        "/_fake/service-principal",
        json!({"tenant": tenant, "client_id": "client-1", "client_secret": "right"}),
    );
    tls_control(
        &endpoint,
        "/_fake/vm",
        json!({"subscription": sub, "resource_group": "rg", "name": "pg", "data_disks": [{"name": "tlsdisk", "lun": 0}]}),
    );
    // SAFETY: as above.
    unsafe {
        std::env::set_var("AZURE_TENANT_ID", &tenant);
        std::env::set_var("AZURE_CLIENT_ID", "client-1");
        std::env::set_var("AZURE_CLIENT_SECRET", "right");
        std::env::set_var("AZURE_AUTHORITY_HOST", &endpoint);
        std::env::set_var("AZURE_RESOURCE_MANAGER_ENDPOINT", &endpoint);
    }
    let azure = AzureSnapshots::new(AzureSnapshotSettings {
        subscription_id: sub.clone(),
        resource_group: Some("rg".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(azure.instance_exists("pg").await.unwrap());
    let disks = azure.attached_disks("pg", None).await.unwrap();
    assert_eq!(disks.len(), 1);
    // A wrong secret is a configuration error that shows no secret (asked of the service
    // principal credential alone: the chain would go on to managed identity).
    let wrong = azure_identity::ClientSecretCredential::new(
        &tenant,
        "client-1".into(),
        azure_core::credentials::Secret::new("wrong-secret-value"),
        None,
    )
    .unwrap();
    let refused = AzureSnapshots::with_credential(
        AzureSnapshotSettings {
            subscription_id: sub,
            resource_group: Some("rg".into()),
            ..Default::default()
        },
        &endpoint,
        wrong,
    )
    .unwrap();
    let err = refused.instance_exists("pg").await.unwrap_err();
    assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    unsafe {
        for name in [
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_AUTHORITY_HOST",
            "AZURE_RESOURCE_MANAGER_ENDPOINT",
        ] {
            std::env::remove_var(name);
        }
    }
}

/// A control call to the HTTPS instance, through curl (the test has no TLS client of its own).
fn tls_control(endpoint: &str, path: &str, body: Value) {
    let ca = std::env::var("BARMAN_RS_TEST_AZURE_ARM_TLS_CA").unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sSf",
            "--cacert",
            &ca,
            "-X",
            "POST",
            "-d",
            &body.to_string(),
        ])
        .arg(format!("{endpoint}{path}"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
