//! The GCP persistent-disk snapshot provider against `tests/fakes/gcp_compute_fake.py`
//! (started by `scripts/test-services.sh`, `BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT`).
//!
//! One test function: it sets the process environment (endpoint, key file) before any
//! thread reads it, then runs every scenario in order on resources named with a per-run
//! suffix. Without the variable it is skipped, unless `CI=true`, where it fails.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use barman_cloud::Error;
use barman_cloud::catalog::snapshots::SnapshotCloud;
use barman_cloud::snapshot::gcp::{
    ComputeClient, GcpSnapshotSettings, GcpSnapshots, Polling, TokenSource, Tokens,
};
use barman_cloud::snapshot::{DeviceRef, Mount, SnapshotProvider};
use base64::Engine;
use serde_json::{Value, json};

fn endpoint() -> Option<String> {
    match std::env::var("BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT is not set: start scripts/test-services.sh")
        }
        _ => {
            eprintln!(
                "note: skipping the Compute Engine tests: BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT \
                 is not set (scripts/test-services.sh start DIR && source DIR/env)"
            );
            None
        }
    }
}

/// `http://host:port` of the fake.
fn base(endpoint: &str) -> String {
    endpoint
        .trim_end_matches('/')
        .trim_end_matches("/compute/v1")
        .to_string()
}

/// One request to the fake's control API (plain HTTP/1.1, `Connection: close`).
fn control(base: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let hostport = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(hostport).expect("connect to the fake");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, text) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path}: {head}\n{text}"
    );
    serde_json::from_str(text).expect("JSON")
}

/// A service-account key file for a fresh RSA key whose `token_uri` is the fake's.
fn key_file(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    use aws_lc_rs::encoding::AsDer;
    let key = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("RSA key");
    let der = key.as_der().expect("PKCS#8");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let path = dir.join("key.json");
    std::fs::write(
        &path,
        json!({
            "type": "service_account",
            "project_id": "barman-rs-test",
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": "barman@barman-rs-test.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    path
}

#[test]
fn gcp_snapshots_on_the_fake() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let base = base(&endpoint);
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), &format!("{base}/token"));
    // SAFETY: the only test of this binary; no other thread runs yet.
    unsafe {
        std::env::set_var("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", &endpoint);
        std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", &key);
        std::env::remove_var("GCE_METADATA_HOST");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(scenarios(endpoint, base));
}

const PROJECT: &str = "barman-rs-test";
const ZONE: &str = "europe-west1-b";

fn fast_polling() -> Polling {
    Polling {
        first: Duration::from_millis(50),
        factor_percent: 150,
        max_interval: Duration::from_millis(200),
        timeout: Duration::from_secs(20),
    }
}

fn mount(point: &str) -> Mount {
    Mount {
        mount_point: point.into(),
        mount_options: "rw,noatime".into(),
    }
}

fn calls(base: &str, matching: &str, since: u64) -> Vec<Value> {
    control(
        base,
        "GET",
        &format!("/_fake/calls?match={matching}&since={since}"),
        None,
    )
    .as_array()
    .unwrap()
    .clone()
}

fn last_seq(base: &str) -> u64 {
    control(base, "GET", "/_fake/calls", None)
        .as_array()
        .unwrap()
        .last()
        .map(|c| c["seq"].as_u64().unwrap())
        .unwrap_or(0)
}

async fn scenarios(endpoint: String, base: String) {
    let run = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000
    );
    let data = format!("pgdata-{run}");
    let wal = format!("pgwal-{run}");
    let shared = format!("shared-{run}");
    let boot = format!("boot-{run}");
    let instance = format!("pg-{run}");
    for (name, region) in [
        (&boot, None),
        (&wal, None),
        (&data, None),
        (&shared, Some("europe-west1")),
    ] {
        let mut disk = json!({"project": PROJECT, "name": name});
        match region {
            Some(r) => disk["region"] = json!(r),
            None => disk["zone"] = json!(ZONE),
        }
        control(&base, "POST", "/_fake/disk", Some(disk));
    }
    control(
        &base,
        "POST",
        "/_fake/instance",
        Some(
            json!({"project": PROJECT, "zone": ZONE, "name": instance, "disks": [
                {"name": boot, "device_name": "persistent-disk-0", "boot": true},
                {"name": wal, "device_name": "wal"},
                {"name": data, "device_name": "data"},
                {"name": shared, "region": "europe-west1", "device_name": "shared"},
            ]}),
        ),
    );

    // From the environment: endpoint override and a key file whose token_uri is the fake.
    let provider = GcpSnapshots::new(GcpSnapshotSettings {
        project: PROJECT.into(),
        zone: Some(ZONE.into()),
    })
    .await
    .expect("provider")
    .with_polling(fast_polling());
    assert_eq!(provider.cloud(), SnapshotCloud::Gcp);

    // Instance lookup; the token exchange happened once, with the right claims.
    let since = last_seq(&base);
    assert!(provider.instance_exists(&instance).await.unwrap());
    assert!(!provider.instance_exists("no-such-instance").await.unwrap());
    let token_calls = calls(&base, "token", since);
    assert_eq!(token_calls.len(), 1, "{token_calls:?}");
    assert_eq!(token_calls[0]["status"], 200);
    assert_eq!(
        token_calls[0]["claims"]["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(token_calls[0]["claims"]["aud"], format!("{base}/token"));
    let api_calls = calls(&base, &instance, since);
    assert!(
        api_calls.iter().all(|c| c["token"]
            .as_str()
            .unwrap_or("")
            .starts_with("fake-access-token-")),
        "{api_calls:?}"
    );

    // Disks: attachment order, not the order named; device names; regional refused.
    let named = vec![data.clone(), wal.clone(), "not-attached".to_string()];
    let disks = provider
        .attached_disks(&instance, Some(&named))
        .await
        .unwrap();
    let ids: Vec<&str> = disks.iter().map(|d| d.disk_id.as_str()).collect();
    assert_eq!(ids, [wal.as_str(), data.as_str()]);
    assert_eq!(
        disks[1].device,
        DeviceRef::Gcp {
            device_name: "data".into()
        }
    );
    assert_eq!(disks[1].source_snapshot, None);
    let err = provider
        .attached_disks(&instance, Some(std::slice::from_ref(&shared)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&shared) && err.contains("regional"), "{err}");
    let all = provider.attached_disks(&instance, None).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|d| d.disk_id.as_str()).collect();
    assert_eq!(ids, [boot.as_str(), wal.as_str(), data.as_str()]);
    let err = provider
        .attached_disks("no-such-instance", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Cannot find instance with name no-such-instance"),
        "{err}"
    );

    // Create with CREATING then UPLOADING latency: returns once the operation is DONE.
    control(
        &base,
        "POST",
        &format!("/_fake/settings/{data}"),
        Some(json!({"creating_seconds": 0.3, "uploading_seconds": 0.7})),
    );
    let name = format!("{data}-20250101t000000");
    let since = last_seq(&base);
    let started = Instant::now();
    let created = provider
        .create_snapshot(&instance, &disks[1], &name, &mount("/srv/pgdata"))
        .await
        .expect("snapshot");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    // Waited for with globalOperations.wait, which the fake answers when the operation is
    // DONE: one call, no polling.
    let waits: Vec<(String, String)> = calls(&base, "operations", since)
        .iter()
        .map(|c| {
            (
                c["method"].as_str().unwrap().to_string(),
                c["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        waits,
        [("POST".to_string(), "wait".to_string())],
        "{waits:?}"
    );
    let meta = &created.metadata;
    assert_eq!(meta.identifier(), Some(name.as_str()));
    assert_eq!(
        meta.field("device_name").and_then(|v| v.as_str()),
        Some("data")
    );
    assert_eq!(
        meta.field("snapshot_project").and_then(|v| v.as_str()),
        Some(PROJECT)
    );
    provider
        .await_snapshots(std::slice::from_ref(meta))
        .await
        .expect("ready");
    let info = provider.snapshots_info(std::slice::from_ref(&created));
    assert_eq!(info.info("project").and_then(|v| v.as_str()), Some(PROJECT));
    assert_eq!(
        provider.snapshot_name(meta, &info).await.unwrap(),
        Some(name.clone())
    );
    let insert = calls(&base, &name, 0)
        .into_iter()
        .find(|c| c["method"] == "POST")
        .expect("insert recorded");
    assert_eq!(
        insert["path"],
        format!("/compute/v1/projects/{PROJECT}/global/snapshots")
    );

    // A disk created from that snapshot names it as its source.
    let clone = format!("clone-{run}");
    control(
        &base,
        "POST",
        "/_fake/disk",
        Some(json!({"project": PROJECT, "zone": ZONE, "name": clone, "source_snapshot": name})),
    );
    let recovery = format!("recovery-{run}");
    control(
        &base,
        "POST",
        "/_fake/instance",
        Some(
            json!({"project": PROJECT, "zone": ZONE, "name": recovery, "disks": [
            {"name": clone, "device_name": "data"}]}),
        ),
    );
    let clones = provider.attached_disks(&recovery, None).await.unwrap();
    assert_eq!(clones[0].source_snapshot.as_deref(), Some(name.as_str()));

    // Delete twice: the second finds nothing, which is fine; the name is gone.
    provider.delete_snapshot(meta, &info).await.expect("delete");
    provider
        .delete_snapshot(meta, &info)
        .await
        .expect("delete again");
    assert_eq!(provider.snapshot_name(meta, &info).await.unwrap(), None);

    // Throttling: two 429s with Retry-After: 1, then success.
    control(
        &base,
        "POST",
        &format!("/_fake/settings/{wal}"),
        Some(json!({"throttle_next": 2, "retry_after": 1})),
    );
    let since = last_seq(&base);
    let started = Instant::now();
    let wal_name = format!("{wal}-20250101t000000");
    let created = provider
        .create_snapshot(&instance, &disks[0], &wal_name, &mount("/srv/wal"))
        .await
        .expect("snapshot after throttling");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    let throttled = calls(&base, &wal, since)
        .into_iter()
        .filter(|c| c["status"] == 429)
        .count();
    assert_eq!(throttled, 2);
    provider
        .delete_snapshot(&created.metadata, &info)
        .await
        .unwrap();

    // The operation fails: Failed, with the code and message.
    control(
        &base,
        "POST",
        &format!("/_fake/settings/{data}"),
        Some(json!({"creating_seconds": 0, "uploading_seconds": 0.2,
                    "operation_error": "RESOURCE_OPERATION_RATE_EXCEEDED"})),
    );
    let failing = format!("{data}-20250101t000001");
    let err = provider
        .create_snapshot(&instance, &disks[1], &failing, &mount("/srv/pgdata"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
    assert!(
        err.to_string()
            == format!(
                "Snapshot '{failing}' failed with error code 400: BAD REQUEST \
             RESOURCE_OPERATION_RATE_EXCEEDED: Injected by gcp_compute_fake"
            ),
        "{err}"
    );

    // An operation that outlives the time limit: an error, and the snapshot deleted.
    control(
        &base,
        "POST",
        &format!("/_fake/settings/{data}"),
        Some(json!({"creating_seconds": 3, "uploading_seconds": 0, "operation_error": null})),
    );
    let impatient = GcpSnapshots::new(GcpSnapshotSettings {
        project: PROJECT.into(),
        zone: Some(ZONE.into()),
    })
    .await
    .unwrap()
    .with_polling(Polling {
        timeout: Duration::from_secs(1),
        ..fast_polling()
    });
    let slow = format!("{data}-20250101t000002");
    let err = impatient
        .create_snapshot(&instance, &disks[1], &slow, &mount("/srv/pgdata"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Failed(_)), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "Timed out after 1 seconds waiting for snapshot '{slow}'"
        )),
        "{err}"
    );
    let state = control(&base, "GET", "/_fake/state", None);
    assert!(
        !state["snapshots"].to_string().contains(&slow),
        "the timed-out snapshot was left: {state}"
    );
    control(
        &base,
        "POST",
        &format!("/_fake/settings/{data}"),
        Some(json!({"creating_seconds": null})),
    );

    // The metadata server as the token source.
    let metadata_client = ComputeClient::new(
        &endpoint,
        Tokens::new(TokenSource::Metadata {
            base_url: base.clone(),
        }),
    )
    .unwrap();
    let via_metadata = GcpSnapshots::with_client(
        GcpSnapshotSettings {
            project: PROJECT.into(),
            zone: Some(ZONE.into()),
        },
        metadata_client,
    )
    .unwrap();
    let since = last_seq(&base);
    assert!(via_metadata.instance_exists(&instance).await.unwrap());
    let metadata_calls = calls(&base, "metadata", since);
    assert_eq!(metadata_calls.len(), 1);
    assert_eq!(metadata_calls[0]["status"], 200);

    // Deletion needs no zone.
    let zoneless = GcpSnapshots::new(GcpSnapshotSettings {
        project: PROJECT.into(),
        zone: None,
    })
    .await
    .unwrap();
    assert_eq!(zoneless.snapshot_name(meta, &info).await.unwrap(), None);
    zoneless.delete_snapshot(meta, &info).await.unwrap();
}
