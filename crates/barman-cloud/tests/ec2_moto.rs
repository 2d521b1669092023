//! The EBS snapshot provider against moto's EC2 (the moto server of
//! `scripts/test-services.sh`, whose S3 endpoint serves EC2 too).
//!
//! One test function: it sets the process environment (endpoint, keys) before any thread
//! reads it, then runs every scenario in order on its own instances and volumes, named
//! with a per-run suffix so that runs against a long-lived moto do not meet.
//! Without `BARMAN_RS_TEST_S3_ENDPOINT` it is skipped, unless `CI=true`, where it fails.
//! Snapshot locks are not tested here: moto has no LockSnapshot.

use std::time::Duration;

use barman_cloud::Error;
use barman_cloud::catalog::pyliteral::PyValue;
use barman_cloud::catalog::snapshots::{SnapshotCloud, SnapshotMetadata, SnapshotsInfo};
use barman_cloud::snapshot::aws::{AwsSnapshotSettings, AwsSnapshots, Ec2Client, Params};
use barman_cloud::snapshot::{AttachedDisk, DeviceRef, Mount, SnapshotProvider};

fn endpoint() -> Option<String> {
    match std::env::var("BARMAN_RS_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BARMAN_RS_TEST_S3_ENDPOINT is not set: start scripts/test-services.sh")
        }
        _ => {
            eprintln!(
                "note: skipping the EC2 tests: BARMAN_RS_TEST_S3_ENDPOINT is not set \
                 (scripts/test-services.sh start DIR && source DIR/env)"
            );
            None
        }
    }
}

#[test]
fn ebs_snapshots_on_moto() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    // SAFETY: the only test of this binary; no other thread runs yet.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_EC2", &endpoint);
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(scenarios(endpoint));
}

/// The text of the first `<tag>` element of `xml`.
fn first(xml: &str, tag: &str) -> String {
    all(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// The texts of every `<tag>` element of `xml`.
fn all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let end = after.find(&close).expect("closed element");
        found.push(after[..end].to_string());
        rest = &after[end..];
    }
    found
}

struct Moto<'a> {
    client: &'a Ec2Client,
}

impl Moto<'_> {
    async fn call(&self, action: &str, params: Params) -> String {
        self.client
            .call(action, &params)
            .await
            .unwrap_or_else(|e| panic!("{action}: {e}"))
    }

    /// Launches `count` instances in one reservation, named `name`; their IDs.
    async fn run_instances(&self, name: &str, count: u32) -> Vec<String> {
        let xml = self
            .call(
                "RunInstances",
                Params::new()
                    .add("ImageId", "ami-12c6146b")
                    .add("MinCount", count.to_string())
                    .add("MaxCount", count.to_string())
                    .add("Placement.AvailabilityZone", "us-east-1a")
                    .tag_specification(1, "instance", &[("Name".to_string(), name.to_string())]),
            )
            .await;
        all(&xml, "instanceId")
    }

    async fn create_volume(&self, name: &str) -> String {
        let xml = self
            .call(
                "CreateVolume",
                Params::new()
                    .add("AvailabilityZone", "us-east-1a")
                    .add("Size", "1")
                    .tag_specification(1, "volume", &[("Name".to_string(), name.to_string())]),
            )
            .await;
        first(&xml, "volumeId")
    }

    async fn attach(&self, volume: &str, instance: &str, device: &str) {
        self.call(
            "AttachVolume",
            Params::new()
                .add("VolumeId", volume)
                .add("InstanceId", instance)
                .add("Device", device),
        )
        .await;
    }

    /// The root volume's ID of an instance.
    async fn root_volume(&self, instance: &str) -> String {
        let xml = self
            .call(
                "DescribeInstances",
                Params::new().list("InstanceId", &[instance]),
            )
            .await;
        let root = first(&xml, "rootDeviceName");
        assert_eq!(root, "/dev/sda1", "moto's root device");
        first(&xml, "volumeId")
    }
}

fn ids(disks: &[AttachedDisk]) -> Vec<(&str, &str)> {
    disks
        .iter()
        .map(|d| (d.identifier.as_str(), d.disk_id.as_str()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn provider_error(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Provider(message)) => message,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

async fn scenarios(endpoint: String) {
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let settings = AwsSnapshotSettings {
        region: Some("us-east-1".into()),
        await_timeout: Duration::from_secs(30),
        tags: vec![("team".into(), "db".into())],
        ..Default::default()
    };
    let provider = AwsSnapshots::new(settings.clone()).await.expect("provider");
    assert_eq!(provider.region(), "us-east-1");
    assert_eq!(provider.client().endpoint(), endpoint.trim_end_matches('/'));
    let moto = Moto {
        client: provider.client(),
    };

    // An instance with a root volume, two data volumes and a spare one.
    let name = format!("pg-{run}");
    let instance = moto.run_instances(&name, 1).await.remove(0);
    let root = moto.root_volume(&instance).await;
    let data = moto.create_volume(&format!("pgdata-{run}")).await;
    let wal = moto.create_volume(&format!("pgwal-{run}")).await;
    let spare = moto.create_volume(&format!("spare-{run}")).await;
    moto.attach(&data, &instance, "/dev/sdf").await;
    moto.attach(&wal, &instance, "/dev/sdg").await;

    // Instance lookup, by ID and by Name tag.
    assert!(provider.instance_exists(&instance).await.unwrap());
    assert!(provider.instance_exists(&name).await.unwrap());
    assert!(
        !provider
            .instance_exists(&format!("nothing-{run}"))
            .await
            .unwrap()
    );
    // A well-formed unknown ID surfaces EC2's error (spec §11.2).
    let unknown = provider_error(provider.instance_exists("i-0123456789abcdef0").await);
    assert!(
        unknown.contains("InvalidInstanceID.NotFound") && unknown.contains("DescribeInstances"),
        "{unknown}"
    );
    assert_eq!(
        provider_error(
            provider
                .attached_disks(&format!("nothing-{run}"), None)
                .await
        ),
        format!("Cannot find instance nothing-{run}")
    );

    // Two instances of one reservation, two reservations: not unique.
    let pair = format!("pair-{run}");
    assert_eq!(moto.run_instances(&pair, 2).await.len(), 2);
    assert_eq!(
        provider_error(provider.instance_exists(&pair).await),
        format!("Cannot find a unique EC2 instance matching {pair}")
    );
    let twice = format!("twice-{run}");
    moto.run_instances(&twice, 1).await;
    moto.run_instances(&twice, 1).await;
    let reservation_error =
        format!("Cannot find a unique EC2 reservation containing instance {twice}");
    assert_eq!(
        provider_error(provider.instance_exists(&twice).await),
        reservation_error
    );

    // Paging: moto pages DescribeInstances by reservation; the provider reads every page.
    let first_page = moto
        .call(
            "DescribeInstances",
            Params::new()
                .filter("tag:Name", &[&twice])
                .add("MaxResults", "1"),
        )
        .await;
    assert_eq!(all(&first_page, "reservationId").len(), 1);
    assert!(!first(&first_page, "nextToken").is_empty());
    let paged = AwsSnapshots::new(settings.clone())
        .await
        .unwrap()
        .with_page_size(1);
    assert_eq!(
        provider_error(paged.instance_exists(&twice).await),
        reservation_error
    );
    assert!(paged.instance_exists(&name).await.unwrap());
    assert_eq!(paged.attached_disks(&name, None).await.unwrap().len(), 2);

    // A terminated instance does not count.
    let gone = moto
        .run_instances(&format!("gone-{run}"), 1)
        .await
        .remove(0);
    moto.call(
        "TerminateInstances",
        Params::new().list("InstanceId", &[&gone]),
    )
    .await;
    assert!(!provider.instance_exists(&gone).await.unwrap());

    // Every data disk, in block-device-mapping order, without the root volume.
    let every = provider.attached_disks(&instance, None).await.unwrap();
    assert_eq!(
        ids(&every),
        [(data.as_str(), data.as_str()), (wal.as_str(), wal.as_str())]
    );
    assert_eq!(
        every[0].device,
        DeviceRef::Aws {
            device_name: "/dev/sdf".into(),
            volume_id: data.clone(),
            paravirtual: false,
        }
    );
    assert_eq!(every[0].source_snapshot, None);
    // Named disks, by Name tag or ID, in the order asked; root and unattached ones absent.
    let pgwal = format!("pgwal-{run}");
    let pgdata = format!("pgdata-{run}");
    let named = provider
        .attached_disks(
            &name,
            Some(&strings(&[
                &pgwal,
                &data,
                &root,
                &spare,
                &format!("spare-{run}"),
            ])),
        )
        .await
        .unwrap();
    assert_eq!(
        ids(&named),
        [
            (pgwal.as_str(), wal.as_str()),
            (data.as_str(), data.as_str())
        ]
    );
    // The same volume by ID and by name.
    let same = provider_error(
        provider
            .attached_disks(&instance, Some(&strings(&[&data, &pgdata])))
            .await,
    );
    assert_eq!(
        same,
        format!("Disks {data} and {pgdata} are the same volume {data}: name each disk once")
    );
    // Two attached volumes with one name.
    let other = moto
        .run_instances(&format!("other-{run}"), 1)
        .await
        .remove(0);
    let twin = format!("twin-{run}");
    let twin_a = moto.create_volume(&twin).await;
    let twin_b = moto.create_volume(&twin).await;
    moto.attach(&twin_a, &other, "/dev/sdf").await;
    moto.attach(&twin_b, &other, "/dev/sdg").await;
    let duplicate = provider_error(
        provider
            .attached_disks(&other, Some(&strings(&[&twin])))
            .await,
    );
    assert!(
        duplicate == format!("Duplicate volumes found matching {twin}: {twin_a}, {twin_b}")
            || duplicate == format!("Duplicate volumes found matching {twin}: {twin_b}, {twin_a}"),
        "{duplicate}"
    );

    // Snapshots: create, wait, name, delete.
    let backup_id = "20250101T000000";
    let mount = Mount {
        mount_point: "/opt/pgdata".into(),
        mount_options: "rw,noatime".into(),
    };
    let mut created = Vec::new();
    for disk in &named {
        let snapshot_name = barman_cloud::snapshot::snapshot_name(&disk.identifier, backup_id);
        let snapshot = provider
            .create_snapshot(&name, disk, &snapshot_name, &mount)
            .await
            .expect("snapshot created");
        assert_eq!(snapshot.owner.as_deref(), Some("123456789012"));
        let meta = &snapshot.metadata;
        let id = meta.identifier().expect("snapshot_id").to_string();
        assert!(id.starts_with("snap-"), "{id}");
        assert_eq!(
            meta.field("snapshot_name"),
            Some(&PyValue::str(snapshot_name.clone()))
        );
        assert_eq!(meta.field("snapshot_lock_mode"), Some(&PyValue::None));
        assert_eq!(meta.mount_point, PyValue::str("/opt/pgdata"));
        assert_eq!(meta.mount_options, PyValue::str("rw,noatime"));
        // The Name tag first, then the user's tags.
        let described = moto
            .call(
                "DescribeSnapshots",
                Params::new().list("SnapshotId", &[&id]),
            )
            .await;
        assert_eq!(all(&described, "key"), ["Name", "team"]);
        assert_eq!(all(&described, "value"), [snapshot_name.as_str(), "db"]);
        created.push(snapshot);
    }
    assert_eq!(
        created[0].metadata.field("device_name"),
        Some(&PyValue::str("/dev/sdg"))
    );
    assert_eq!(
        created[1].metadata.field("device_name"),
        Some(&PyValue::str("/dev/sdf"))
    );
    let metadata: Vec<SnapshotMetadata> = created.iter().map(|c| c.metadata.clone()).collect();
    provider
        .await_snapshots(&metadata)
        .await
        .expect("completed");
    provider
        .protect_snapshots(&metadata)
        .await
        .expect("no lock configured");
    let info = provider.snapshots_info(&created);
    assert_eq!(info.info("account_id"), Some(&PyValue::str("123456789012")));
    assert_eq!(info.info("region"), Some(&PyValue::str("us-east-1")));
    assert_eq!(info.snapshots, metadata);

    // A disk that is not attached (any more) is refused before anything is created.
    let detached = AttachedDisk {
        identifier: "spare".into(),
        disk_id: spare.clone(),
        device: DeviceRef::Aws {
            device_name: "/dev/sdz".into(),
            volume_id: spare.clone(),
            paravirtual: false,
        },
        source_snapshot: None,
    };
    assert_eq!(
        provider_error(
            provider
                .create_snapshot(&name, &detached, "spare-x", &mount)
                .await
        ),
        format!("Disk spare not attached to instance {name}")
    );

    // A volume created from a snapshot names it as its source.
    let restored_xml = moto
        .call(
            "CreateVolume",
            Params::new()
                .add("AvailabilityZone", "us-east-1a")
                .add("SnapshotId", metadata[1].identifier().unwrap()),
        )
        .await;
    let restored = first(&restored_xml, "volumeId");
    moto.attach(&restored, &other, "/dev/sdh").await;
    let clones = provider
        .attached_disks(&other, Some(&strings(&[&restored])))
        .await
        .unwrap();
    assert_eq!(
        clones[0].source_snapshot.as_deref(),
        metadata[1].identifier()
    );

    // Ownership check and deletion; a snapshot already gone is no error.
    let empty_info = SnapshotsInfo::new(SnapshotCloud::Aws);
    let snapshot = &metadata[0];
    assert_eq!(
        provider.snapshot_name(snapshot, &info).await.unwrap(),
        Some(barman_cloud::snapshot::snapshot_name(&pgwal, backup_id))
    );
    provider.delete_snapshot(snapshot, &info).await.unwrap();
    assert_eq!(provider.snapshot_name(snapshot, &info).await.unwrap(), None);
    provider
        .delete_snapshot(snapshot, &empty_info)
        .await
        .unwrap();
    provider.delete_snapshot(&metadata[1], &info).await.unwrap();

    let mut unknown = SnapshotMetadata::new(SnapshotCloud::Aws);
    unknown.set_field("snapshot_id", PyValue::str("snap-0123456789abcdef0"));
    assert_eq!(provider.snapshot_name(&unknown, &info).await.unwrap(), None);
}
