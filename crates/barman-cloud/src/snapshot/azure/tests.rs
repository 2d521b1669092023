use super::*;

fn vm() -> VirtualMachine {
    serde_json::from_str(
        r#"{"name": "pg", "location": "westeurope", "properties": {"storageProfile": {
            "osDisk": {"name": "pg-os", "managedDisk": {"id": "/s/disks/pg-os"}},
            "dataDisks": [
              {"lun": 4, "name": "pgwal", "managedDisk": {"id": "/s/disks/pgwal"}},
              {"lun": 1, "name": "pgdata", "managedDisk": {"id": "/s/disks/pgdata"}},
              {"lun": 2, "name": "other", "managedDisk": {"id": "/s/disks/other"}}
            ]}}}"#,
    )
    .unwrap()
}

fn disk(create_option: &str, source: &str) -> Disk {
    serde_json::from_value(serde_json::json!({
        "name": "pgdata", "location": "westeurope",
        "properties": {"creationData": {"createOption": create_option, "sourceResourceId": source}}
    }))
    .unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn names(disks: &[&DataDisk]) -> Vec<(String, i64)> {
    disks.iter().map(|d| (d.name.clone(), d.lun)).collect()
}

#[test]
fn data_disks_in_attachment_order_never_the_os_disk() {
    let vm = vm();
    assert_eq!(
        names(&select_data_disks(&vm, None)),
        [
            ("pgwal".into(), 4),
            ("pgdata".into(), 1),
            ("other".into(), 2)
        ]
    );
    // Attachment order, not the order named; unknown and OS disks are simply absent.
    assert_eq!(
        names(&select_data_disks(
            &vm,
            Some(&strings(&["pgdata", "pg-os", "missing", "pgwal"]))
        )),
        [("pgwal".into(), 4), ("pgdata".into(), 1)]
    );
    // Barman: an empty list means every disk.
    assert_eq!(select_data_disks(&vm, Some(&[])).len(), 3);
}

#[test]
fn source_snapshot_follows_barman() {
    let id = "/subscriptions/sub/resourceGroups/other-rg/providers/Microsoft.Compute/snapshots/pgdata-20250101t000000";
    assert_eq!(
        source_snapshot_name(&disk("Copy", id)).unwrap().as_deref(),
        Some("pgdata-20250101t000000")
    );
    // Not a copy, or a copy of a disk: no source snapshot.
    assert_eq!(source_snapshot_name(&disk("Empty", id)).unwrap(), None);
    assert_eq!(
        source_snapshot_name(&disk(
            "Copy",
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d"
        ))
        .unwrap(),
        None
    );
    let mut none = disk("Copy", "");
    none.properties.creation_data.source_resource_id = None;
    assert_eq!(source_snapshot_name(&none).unwrap(), None);
    // Unreadable IDs are errors, with Barman's message.
    for bad in [
        "providers/Microsoft.Compute/snapshots/x",
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/",
        "/subscriptions//resourceGroups/g/providers/Microsoft.Compute/snapshots/x",
    ] {
        let err = source_snapshot_name(&disk("Copy", bad)).unwrap_err();
        assert!(matches!(err, Error::Provider(_)));
        assert_eq!(
            err.to_string(),
            format!(
                "Could not determine source snapshot for disk pgdata with source resource ID {bad}"
            )
        );
    }
    assert_eq!(
        parse_snapshot_id(
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/a/providers/Microsoft.Compute/snapshots/b"
        ),
        Some("b")
    );
}

fn provider(group: Option<&str>) -> AzureSnapshots {
    AzureSnapshots::with_credential(
        AzureSnapshotSettings {
            subscription_id: "sub-1".into(),
            resource_group: group.map(str::to_string),
            ..Default::default()
        },
        "http://127.0.0.1:9",
        Arc::new(StaticToken("t".into())),
    )
    .unwrap()
}

#[test]
fn snapshots_info_records_subscription_group_and_luns() {
    let provider = provider(Some("rg-1"));
    let mut meta = SnapshotMetadata::new(SnapshotCloud::Azure);
    meta.set_field("location", PyValue::str("westeurope"));
    meta.set_field("lun", PyValue::Int(1));
    meta.set_field("snapshot_name", PyValue::str("pgdata-x"));
    let info = provider.snapshots_info(&[CreatedSnapshot {
        metadata: meta,
        owner: None,
    }]);
    assert_eq!(info.provider(), SnapshotCloud::Azure);
    assert_eq!(info.info("subscription_id"), Some(&PyValue::str("sub-1")));
    assert_eq!(info.info("resource_group"), Some(&PyValue::str("rg-1")));
    assert_eq!(info.snapshots[0].identifier(), Some("pgdata-x"));
    assert_eq!(info.snapshots[0].field("lun"), Some(&PyValue::Int(1)));
    assert_eq!(AzureSnapshots::recorded_group(&info).unwrap(), "rg-1");
    let empty = SnapshotsInfo::new(SnapshotCloud::Azure);
    assert!(AzureSnapshots::recorded_group(&empty).is_err());
}

#[tokio::test]
async fn settings_are_checked() {
    let err = AzureSnapshots::with_credential(
        AzureSnapshotSettings::default(),
        "http://127.0.0.1:9",
        Arc::new(StaticToken("t".into())),
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::Config(_)));
    let err = provider(None).instance_exists("pg").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Incomplete options for snapshot backup - missing: azure_resource_group"
    );
    // Nothing listens on port 9: a connectivity error, after the bounded retries.
    let quick = AzureSnapshots::with_client(
        AzureSnapshotSettings {
            subscription_id: "s".into(),
            resource_group: Some("g".into()),
            ..Default::default()
        },
        ArmClient::new("http://127.0.0.1:9", "s", Arc::new(StaticToken("t".into())))
            .unwrap()
            .with_retry_policy(RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            }),
    );
    let err = quick.instance_exists("pg").await.unwrap_err();
    assert!(matches!(err, Error::Connectivity(_)), "{err:?}");
    assert!(!err.to_string().contains("Bearer"), "{err}");
}

#[test]
fn static_tokens_do_not_show() {
    assert_eq!(format!("{:?}", StaticToken("secret".into())), "StaticToken");
}
