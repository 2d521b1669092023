//! Our Azure managed-disk snapshot backups (`barman-cloud-backup --cloud-provider
//! azure-blob-storage --azure-subscription-id --azure-resource-group --snapshot-instance
//! --snapshot-disk`), restores and deletions against the ARM fake
//! (`tests/fakes/azure_compute_fake.py`, its HTTPS instance: azure_identity refuses a
//! plain-HTTP authority host, so the service principal's token comes from the fake's Entra ID
//! endpoint over TLS) and the findmnt stand-in (`/dev/disk/azure/scsi1/lun<N>`).
//!
//! Python Barman 3.20.1 runs against the same fake (`azure_interop_with_barman`): its
//! ComputeManagementClient is pointed there by the test-only `sitecustomize` of
//! `tests/fakes/barman_site`, Barman's code unchanged.
//!
//! Every test has its own subscription, tenant, VM and disk names (the behaviour the fake
//! injects is per disk name), mount table, bucket and cluster, so the tests run in parallel.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ec2::{
    DEFAULT_MOUNT_OPTIONS, FakeMounts, barman_command, barman_compute_fake_env, ours_command,
};
use crate::postgres::Cluster;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The ARM fake (HTTPS instance)
// ---------------------------------------------------------------------------------------------

/// One test's corner of the ARM fake: a subscription, a resource group, a tenant and a
/// service principal of its own.
pub(crate) struct Arm {
    pub(crate) endpoint: String,
    pub(crate) ca: String,
    pub(crate) subscription: String,
    pub(crate) group: String,
    tenant: String,
    secret: String,
    tag: String,
}

pub(crate) fn lun_device(lun: u32) -> String {
    format!("/dev/disk/azure/scsi1/lun{lun}")
}

impl Arm {
    pub(crate) fn new(tag: &str) -> Arm {
        let endpoint = required_env("BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT")
            .trim_end_matches('/')
            .to_string();
        let ca = required_env("BARMAN_RS_TEST_AZURE_ARM_TLS_CA");
        let unique = unique_name(tag).to_lowercase();
        let arm = Arm {
            endpoint,
            ca,
            subscription: format!("sub-{unique}"),
            group: format!("rg-{unique}"),
            tenant: format!("tenant-{unique}"),
            secret: format!("s3cret-{unique}-value"),
            tag: unique,
        };
        arm.post(
            "/_fake/service-principal",
            json!({"tenant": arm.tenant, "client_id": "client-1", "client_secret": arm.secret}),
        );
        arm
    }

    /// A name unique to this test (VMs, disks).
    pub(crate) fn name(&self, what: &str) -> String {
        format!("{what}-{}", self.tag)
    }

    fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--fail-with-body",
            "--cacert",
            &self.ca,
            "-X",
            method,
        ]);
        if let Some(body) = body {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.endpoint))
            .stdin(Stdio::null())
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{method} {path}: {}{}",
            stderr(&out),
            stdout(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.control("POST", path, Some(body))
    }

    /// A VM with an OS disk and data disks `(name, lun)`, in westeurope.
    pub(crate) fn vm(&self, name: &str, data_disks: &[(&str, u32)]) -> Value {
        let disks: Vec<Value> = data_disks
            .iter()
            .map(|(n, lun)| json!({"name": n, "lun": lun}))
            .collect();
        self.post(
            "/_fake/vm",
            json!({"subscription": self.subscription, "resource_group": self.group,
                   "name": name, "location": "westeurope", "os_disk": format!("{name}-os"),
                   "data_disks": disks}),
        )
    }

    fn behaviour(&self, disk: &str, settings: Value) {
        self.post(&format!("/_fake/disk/{disk}/behaviour"), settings);
    }

    /// Calls concerning this test's subscription after `since`.
    fn calls(&self, since: u64) -> Vec<Value> {
        let calls = self.control("GET", &format!("/_fake/calls?since={since}"), None);
        let marker = format!("/subscriptions/{}/", self.subscription);
        calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["path"].as_str().is_some_and(|p| p.contains(&marker)))
            .cloned()
            .collect()
    }

    fn last_seq(&self) -> u64 {
        let calls = self.control("GET", "/_fake/calls?since=0", None);
        calls
            .as_array()
            .unwrap()
            .last()
            .and_then(|c| c["seq"].as_u64())
            .unwrap_or(0)
    }

    /// Deletes snapshot `name` through ARM itself (the fake does not check the token).
    fn arm_delete(&self, name: &str) {
        self.arm_snapshot_call("DELETE", name, None);
    }

    /// Snapshots disk `disk` as `name` through ARM itself (incremental, in westeurope).
    fn arm_create(&self, name: &str, disk: &str) {
        let disk_id = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/disks/{disk}",
            self.subscription, self.group
        );
        self.arm_snapshot_call(
            "PUT",
            name,
            Some(json!({"location": "westeurope", "properties": {
                "creationData": {"createOption": "Copy", "sourceResourceId": disk_id},
                "incremental": true}})),
        );
    }

    fn arm_snapshot_call(&self, method: &str, name: &str, body: Option<Value>) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--fail-with-body",
            "--cacert",
            &self.ca,
            "-X",
            method,
        ])
        .args(["-H", "Authorization: Bearer not-checked"]);
        if let Some(body) = body {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ]);
        }
        let out = cmd
            .arg(format!(
                "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Compute/snapshots/\
                 {name}?api-version=2026-03-02",
                self.endpoint, self.subscription, self.group
            ))
            .stdin(Stdio::null())
            .output()
            .expect("curl");
        assert_success(&out, &format!("{method} of a snapshot"));
    }

    /// This subscription's snapshots, as the fake holds them.
    fn snapshots(&self) -> Vec<Value> {
        let state = self.control("GET", "/_fake/state", None);
        let marker = format!("/subscriptions/{}/", self.subscription);
        state["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["id"].as_str().unwrap().contains(&marker))
            .cloned()
            .collect()
    }

    fn snapshot(&self, name: &str) -> Option<Value> {
        self.snapshots().into_iter().find(|s| s["name"] == name)
    }

    /// The environment of our commands: the service principal (EnvironmentCredential of
    /// `--azure-credential default`), the fake as authority host and ARM, its CA, and a
    /// loopback managed identity endpoint so that the chain never asks a real metadata
    /// address.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AZURE_TENANT_ID", self.tenant.as_str()),
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_CLIENT_SECRET", self.secret.as_str()),
            ("AZURE_AUTHORITY_HOST", self.endpoint.as_str()),
            ("AZURE_RESOURCE_MANAGER_ENDPOINT", self.endpoint.as_str()),
            ("SSL_CERT_FILE", self.ca.as_str()),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token"),
            ("IDENTITY_HEADER", "test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// One test's world
// ---------------------------------------------------------------------------------------------

struct World {
    arm: Arm,
    mounts: FakeMounts,
    dest: Destination,
    env: Vec<(String, String)>,
}

impl World {
    fn new(tag: &str, disks: usize, service: Service) -> World {
        let arm = Arm::new(tag);
        let mounts = FakeMounts::new(disks);
        let mut dest = Destination::create(service, tag);
        if service == Service::Local {
            // The snapshot provider follows --cloud-provider.
            dest.args
                .extend(["--cloud-provider".into(), "azure-blob-storage".into()]);
        }
        let mut env = arm.env();
        env.extend(mounts.env());
        World {
            arm,
            mounts,
            dest,
            env,
        }
    }

    fn ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        let mut cmd = ours_command(&self.dest, command, options, rest);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    fn run_ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        run(self.ours(command, options, rest))
    }

    /// Barman's `command` with the world's environment, its ComputeManagementClient pointed
    /// at the fake (whose CA requests must trust): Barman's own Azure snapshot code at work.
    fn barman_on_fake(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        let mut cmd = barman_command(&self.dest, command, options, rest);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env("REQUESTS_CA_BUNDLE", &self.arm.ca);
        cmd.envs(barman_compute_fake_env(
            "BARMAN_RS_FAKE_ARM",
            &self.arm.endpoint,
        ));
        run(cmd)
    }

    /// Our snapshot backup of `cluster` (server `srv`) of `disks` of `vm`, with the
    /// subscription and group unless `extra` says otherwise (`omit`: options left out).
    fn backup(
        &self,
        cluster: &Cluster,
        vm: &str,
        disks: &[&str],
        omit: &[&str],
        extra: &[&str],
    ) -> Output {
        let options = self.snapshot_options(cluster, vm, disks, omit, extra);
        self.run_ours("barman-cloud-backup", &strs(&options), &["srv"])
    }

    /// barman-cloud-backup's options for [`World::backup`].
    fn snapshot_options(
        &self,
        cluster: &Cluster,
        vm: &str,
        disks: &[&str],
        omit: &[&str],
        extra: &[&str],
    ) -> Vec<String> {
        let mut options = cluster.backup_options();
        options.extend(["--snapshot-instance".into(), vm.to_string()]);
        for disk in disks {
            options.extend(["--snapshot-disk".into(), disk.to_string()]);
        }
        if !omit.contains(&"--azure-subscription-id") {
            options.extend([
                "--azure-subscription-id".into(),
                self.arm.subscription.clone(),
            ]);
        }
        if !omit.contains(&"--azure-resource-group") {
            options.extend(["--azure-resource-group".into(), self.arm.group.clone()]);
        }
        options.extend(extra.iter().map(|s| s.to_string()));
        options
    }

    fn show_json(&self, id: &str) -> Value {
        let out = self.run_ours(
            "barman-cloud-backup-show",
            &["--format", "json"],
            &["srv", id],
        );
        assert_success(&out, "backup-show --format json");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["srv"].clone()
    }

    /// Our show and list (console and JSON) and, on Azurite, Barman's: the same outputs.
    /// Returns our show's console output.
    fn catalog_views(&self, id: &str) -> String {
        let views: [(&str, &[&str], Vec<&str>); 4] = [
            ("barman-cloud-backup-show", &[], vec!["srv", id]),
            (
                "barman-cloud-backup-show",
                &["--format", "json"],
                vec!["srv", id],
            ),
            ("barman-cloud-backup-list", &[], vec!["srv"]),
            (
                "barman-cloud-backup-list",
                &["--format", "json"],
                vec!["srv"],
            ),
        ];
        let mut shown = String::new();
        for (i, (command, options, rest)) in views.iter().enumerate() {
            let ours = self.run_ours(command, options, rest);
            assert_success(&ours, command);
            if i == 0 {
                shown = stdout(&ours);
            }
            if self.dest.service == Service::Azure {
                let barman = run(barman_command(&self.dest, command, options, rest));
                assert_success(&barman, &format!("Barman's {command} {options:?}"));
                assert_eq!(
                    stdout(&ours),
                    stdout(&barman),
                    "{command} {options:?}: ours and Barman's differ"
                );
            }
        }
        shown
    }
}

/// Neither the client secret nor an access token of the fake (`fake-` and 32 URL-safe
/// characters) nor a bearer header in `out`.
fn assert_no_credentials(out: &Output, arm: &Arm, what: &str) {
    let text = format!("{}{}", stdout(out), stderr(out));
    assert!(
        !text.contains(&arm.secret),
        "{what}: the secret shows\n{text}"
    );
    assert!(!text.contains("Bearer "), "{what}: a bearer header shows");
    for (at, _) in text.match_indices("fake-") {
        let token: String = text[at + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert!(token.len() < 32, "{what}: an access token shows\n{text}");
    }
}

/// `snapshots_info.snapshots[*].provider.<field>` of a shown backup.
fn snapshot_fields(shown: &Value, field: &str) -> Vec<Value> {
    shown["snapshots_info"]["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("no snapshots in {shown}"))
        .iter()
        .map(|s| s["provider"][field].clone())
        .collect()
}

fn cluster_on(world: &World, tag: &str, lun: u32) -> Cluster {
    let cluster = Cluster::initdb(tag);
    cluster.start();
    world
        .mounts
        .mount(&lun_device(lun), cluster.root.path(), DEFAULT_MOUNT_OPTIONS);
    cluster
}

// ---------------------------------------------------------------------------------------------
// 1. The whole cycle
// ---------------------------------------------------------------------------------------------

/// Backups of one and of two data disks (Azurite bucket), shown as Barman shows them;
/// snapshots created at once, incremental, in the disk's location; restore onto a recovery
/// VM whose disk is a copy of the snapshot; deletion in the recorded resource group.
#[test]
fn azure_full_cycle() {
    let started = Instant::now();
    let world = World::new("azcycle", 1, Service::Azure);
    let arm = &world.arm;
    let (vm, d0, d1) = (arm.name("pg"), arm.name("data0"), arm.name("data1"));
    arm.vm(&vm, &[(&d0, 0), (&d1, 1)]);
    let source = cluster_on(&world, "azcycle", 0);
    source.psql("create table t as select generate_series(1, 1000) as i");
    let pgroot = source.root.path().display().to_string();
    world
        .mounts
        .mount(&lun_device(1), &world.mounts.disk(0), "rw,relatime");

    // -- one disk ---------------------------------------------------------------------------
    let out = world.backup(&source, &vm, &[&d0], &[], &["-vv", "--name", "one"]);
    assert_success(&out, "our Azure snapshot backup of one disk");
    assert_no_credentials(&out, arm, "backup -vv");
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "DONE");
    let first = ids[0].0.clone();
    let name0 = format!("{d0}-{}", first.to_lowercase());
    let snap0 = arm.snapshot(&name0).expect("snapshot of the first backup");
    assert_eq!(snap0["location"], "westeurope");
    assert_eq!(snap0["properties"]["incremental"], true);
    assert_eq!(snap0["properties"]["provisioningState"], "Succeeded");

    let shown = world.catalog_views(&first);
    let block = format!(
        "  Snapshot information:
    provider             : azure
    subscription_id      : {}
    resource_group       : {}

    location             : westeurope
    lun                  : 0
    snapshot_name        : {name0}
    Mount point          : {pgroot}
    Mount options        : {DEFAULT_MOUNT_OPTIONS}
",
        arm.subscription, arm.group
    );
    assert!(shown.contains(&block), "{shown}");
    let json_shown = world.show_json(&first);
    assert_eq!(
        json_shown["snapshots_info"],
        json!({
            "provider": "azure",
            "provider_info": {"subscription_id": arm.subscription, "resource_group": arm.group},
            "snapshots": [{
                "mount": {"mount_options": DEFAULT_MOUNT_OPTIONS, "mount_point": pgroot},
                "provider": {"lun": 0, "snapshot_name": name0, "location": "westeurope"},
            }],
        })
    );

    // -- two disks, snapshotted at once -----------------------------------------------------
    std::thread::sleep(Duration::from_millis(1100)); // a new backup ID
    for d in [&d0, &d1] {
        arm.behaviour(d, json!({"latency": 2}));
    }
    let since = arm.last_seq();
    let out = world.backup(&source, &vm, &[&d1, &d0], &[], &["--name", "two"]);
    assert_success(&out, "our Azure snapshot backup of two disks");
    for d in [&d0, &d1] {
        arm.behaviour(d, json!({"latency": null}));
    }
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let second = ids.iter().find(|(i, _)| *i != first).unwrap().0.clone();
    let calls = arm.calls(since);
    let puts: Vec<&Value> = calls
        .iter()
        .filter(|c| c["method"] == "PUT" && c["kind"] == "snapshots")
        .collect();
    assert_eq!(puts.len(), 2, "{calls:#?}");
    let times: Vec<f64> = puts.iter().map(|c| c["time"].as_f64().unwrap()).collect();
    // Each operation ends 2 s after its PUT: the second PUT came before the first ended.
    assert!(
        (times[1] - times[0]).abs() < 2.0,
        "the second snapshot was asked for after the first had completed: {calls:#?}"
    );
    let first_poll = calls
        .iter()
        .position(|c| c["kind"] == "operation")
        .expect("operations polled");
    let last_put = calls
        .iter()
        .rposition(|c| c["method"] == "PUT" && c["kind"] == "snapshots")
        .unwrap();
    assert!(
        last_put < first_poll,
        "both PUTs before any wait: {calls:#?}"
    );
    assert!(calls.iter().all(|c| c["bearer"] == true), "{calls:#?}");
    // The api-versions of the 3.20.1 SDKs (spec §11 item 12).
    for call in &calls {
        let expected = match call["kind"].as_str() {
            Some("virtualMachines") => Some("2026-04-01"),
            Some("disks") | Some("snapshots") => Some("2026-03-02"),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(call["api_version"], expected, "{call}");
        }
    }
    let json_shown = world.show_json(&second);
    assert_eq!(
        snapshot_fields(&json_shown, "lun"),
        [json!(0), json!(1)],
        "in attachment order, as Barman (spec §11 item 8)"
    );
    assert_eq!(
        snapshot_fields(&json_shown, "snapshot_name"),
        [
            json!(format!("{d0}-{}", second.to_lowercase())),
            json!(format!("{d1}-{}", second.to_lowercase()))
        ]
    );
    for s in arm.snapshots() {
        assert_eq!(s["properties"]["incremental"], true, "{s}");
        assert_eq!(s["location"], "westeurope", "{s}");
    }
    assert_eq!(arm.snapshots().len(), 3);
    world.catalog_views(&second);

    // -- restore the first backup onto a recovery VM -----------------------------------------
    source.pg_ctl("stop");
    let data = source.data();
    let before = file_names(&data);
    let recovery = arm.name("rec");
    let clone = arm.name("clone0");
    arm.post(
        "/_fake/vm",
        json!({"subscription": arm.subscription, "resource_group": arm.group,
               "name": recovery, "location": "westeurope",
               "data_disks": [{"name": clone, "lun": 0, "source_snapshot_id": snap0["id"]}]}),
    );
    let restore = [
        "--snapshot-recovery-instance",
        recovery.as_str(),
        "--azure-resource-group",
        arm.group.as_str(),
    ];
    let rest = ["srv", first.as_str(), data.to_str().unwrap()];
    let out = world.run_ours("barman-cloud-restore", &restore, &rest);
    assert_success(&out, "our Azure snapshot restore");
    assert_no_credentials(&out, arm, "restore");
    let mut expected = before.clone();
    expected.push("backup_label".into());
    expected.sort();
    assert_eq!(file_names(&data), expected, "only backup_label");
    let label = std::fs::read_to_string(data.join("backup_label")).unwrap();
    assert!(
        label.contains(&format!("LABEL: Barman backup srv {first}\n")),
        "{label}"
    );

    // -- delete both, without --azure-resource-group -----------------------------------------
    let since = arm.last_seq();
    for id in [&first, &second] {
        let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", id]);
        assert_success(&out, "our delete of an Azure snapshot backup");
        assert_no_credentials(&out, arm, "delete");
    }
    assert_eq!(arm.snapshots(), Vec::<Value>::new(), "snapshots left");
    let deletes: Vec<Value> = arm
        .calls(since)
        .into_iter()
        .filter(|c| c["method"] == "DELETE")
        .collect();
    let snapshot_calls: Vec<(String, String)> = arm
        .calls(since)
        .into_iter()
        .filter(|c| c["kind"] == "snapshots")
        .map(|c| {
            (
                c["method"].as_str().unwrap().to_string(),
                c["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (i, (method, name)) in snapshot_calls.iter().enumerate() {
        if method == "DELETE" {
            assert!(
                snapshot_calls[..i].contains(&("GET".to_string(), name.clone())),
                "snapshots.get before begin_delete: {snapshot_calls:?}"
            );
        }
    }
    assert_eq!(deletes.len(), 3, "{deletes:#?}");
    assert!(
        deletes
            .iter()
            .all(|c| c["resource_group"].as_str() == Some(arm.group.as_str())),
        "{deletes:#?}"
    );
    let left: Vec<String> = world
        .dest
        .object_keys()
        .into_iter()
        .filter(|k| k.contains("/base/"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "objects left");
    eprintln!("azure_full_cycle: {:?}", started.elapsed());
}

/// Python Barman's own Azure code (azure-mgmt-compute pointed at the fake by
/// `tests/fakes/barman_site`) and ours on one container and one resource group: each lists,
/// shows, restores and deletes the other's snapshot backups.
#[test]
fn azure_interop_with_barman() {
    let started = Instant::now();
    let world = World::new("azinterop", 1, Service::Azure);
    let arm = &world.arm;
    let (vm, d0, d1) = (arm.name("pg"), arm.name("data0"), arm.name("data1"));
    arm.vm(&vm, &[(&d0, 0), (&d1, 1)]);
    let source = cluster_on(&world, "azinterop", 0);
    source.psql("create table t as select generate_series(1, 1000) as i");
    let other = world.mounts.disk(0);
    world
        .mounts
        .mount(&lun_device(1), &other, DEFAULT_MOUNT_OPTIONS);
    let options = world.snapshot_options(&source, &vm, &[&d0, &d1], &[], &[]);
    let names = |id: &str| [d0.as_str(), d1.as_str()].map(|d| format!("{d}-{}", id.to_lowercase()));

    // -- Barman's backup of two disks: each snapshot awaited before the next ---------------
    for d in [&d0, &d1] {
        arm.behaviour(d, json!({"latency": 1}));
    }
    let since = arm.last_seq();
    let out = world.barman_on_fake("barman-cloud-backup", &strs(&options), &["srv"]);
    for d in [&d0, &d1] {
        arm.behaviour(d, json!({"latency": null}));
    }
    assert_success(&out, "Barman's Azure snapshot backup");
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "DONE");
    let a = ids[0].0.clone();
    let puts: Vec<f64> = arm
        .calls(since)
        .iter()
        .filter(|c| c["method"] == "PUT" && c["kind"] == "snapshots")
        .map(|c| c["time"].as_f64().unwrap())
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert!(
        puts[1] - puts[0] >= 1.0,
        "Barman's second snapshot came {} s after the first: the fake did not run Barman's code",
        puts[1] - puts[0]
    );
    world.catalog_views(&a);
    let shown_a = world.show_json(&a);
    assert_eq!(snapshot_fields(&shown_a, "lun"), [json!(0), json!(1)]);
    assert_eq!(
        snapshot_fields(&shown_a, "snapshot_name"),
        names(&a).map(|n| json!(n))
    );
    for name in names(&a) {
        let snapshot = arm
            .snapshot(&name)
            .unwrap_or_else(|| panic!("no snapshot {name}"));
        assert_eq!(snapshot["properties"]["incremental"], true, "{snapshot}");
    }

    // -- our backup of the same disks, as Barman sees it ------------------------------------
    wait_past(&a);
    let out = world.run_ours("barman-cloud-backup", &strs(&options), &["srv"]);
    assert_success(&out, "our Azure snapshot backup");
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let b = ids.iter().find(|(id, _)| *id != a).unwrap().0.clone();
    world.catalog_views(&b);
    let shown_b = world.show_json(&b);
    let label_of = |shown: &Value| {
        shown["backup_label"]
            .as_str()
            .unwrap()
            .trim_matches('\'')
            .replace("\\n", "\n")
            .replace("\\\\", "\\")
    };

    // -- each prepares the recovery of the other's backup ------------------------------------
    source.pg_ctl("stop");
    let data = source.data();
    let before = file_names(&data);
    let mut with_label = before.clone();
    with_label.push("backup_label".into());
    with_label.sort();
    world.mounts.unmount(&lun_device(0));
    world.mounts.unmount(&lun_device(1));
    // A recovery VM with a copy of the first snapshot only: both refuse, alike.
    let partial = arm.name("partial");
    let first = arm.snapshot(&names(&a)[0]).expect("the first snapshot");
    arm.post(
        "/_fake/vm",
        json!({"subscription": arm.subscription, "resource_group": arm.group,
               "name": partial, "location": "westeurope",
               "data_disks": [{"name": format!("{partial}-clone0"), "lun": 0,
                               "source_snapshot_id": first["id"]}]}),
    );
    let partial_options = [
        "--snapshot-recovery-instance",
        partial.as_str(),
        "--azure-resource-group",
        arm.group.as_str(),
    ];
    let rest = ["srv", a.as_str(), data.to_str().unwrap()];
    for (who, out) in [
        (
            "ours",
            world.run_ours("barman-cloud-restore", &partial_options, &rest),
        ),
        (
            "Barman",
            world.barman_on_fake("barman-cloud-restore", &partial_options, &rest),
        ),
    ] {
        assert_exit_mentions(
            &out,
            4,
            &format!(
                "The following snapshots are not attached to recovery instance {partial}: {}",
                names(&a)[1]
            ),
            &format!("{who} restore with a snapshot not attached"),
        );
    }
    assert_eq!(file_names(&data), before);
    for (who, id, shown) in [("ours", &a, &shown_a), ("Barman", &b, &shown_b)] {
        let recovery = arm.name(&format!("rec{}", who.to_lowercase()));
        let clones: Vec<Value> = names(id)
            .iter()
            .enumerate()
            .map(|(lun, name)| {
                let snapshot = arm.snapshot(name).unwrap_or_else(|| panic!("no {name}"));
                json!({"name": format!("{recovery}-clone{lun}"), "lun": lun,
                       "source_snapshot_id": snapshot["id"]})
            })
            .collect();
        arm.post(
            "/_fake/vm",
            json!({"subscription": arm.subscription, "resource_group": arm.group,
                   "name": recovery, "location": "westeurope", "data_disks": clones}),
        );
        world
            .mounts
            .mount(&lun_device(0), source.root.path(), DEFAULT_MOUNT_OPTIONS);
        world
            .mounts
            .mount(&lun_device(1), &other, DEFAULT_MOUNT_OPTIONS);
        let restore = [
            "--snapshot-recovery-instance",
            recovery.as_str(),
            "--azure-resource-group",
            arm.group.as_str(),
        ];
        let rest = ["srv", id.as_str(), data.to_str().unwrap()];
        let out = if who == "ours" {
            world.run_ours("barman-cloud-restore", &restore, &rest)
        } else {
            world.barman_on_fake("barman-cloud-restore", &restore, &rest)
        };
        assert_success(&out, &format!("{who} restore of the other's backup {id}"));
        assert_eq!(
            file_names(&data),
            with_label,
            "{who}: only backup_label is written"
        );
        assert_eq!(
            std::fs::read_to_string(data.join("backup_label")).unwrap(),
            label_of(shown),
            "{who}"
        );
        std::fs::remove_file(data.join("backup_label")).unwrap();
    }

    // -- each deletes the other's backup -----------------------------------------------------
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &a]);
    assert_success(&out, "our delete of Barman's backup");
    let out = world.barman_on_fake("barman-cloud-backup-delete", &[], &["srv", "-b", &b]);
    assert_success(&out, "Barman's delete of our backup");
    assert_eq!(arm.snapshots(), Vec::<Value>::new(), "snapshots left");
    // Barman's delete leaves our integrity manifest (README); ours removes that orphan.
    let base = |dest: &Destination| -> Vec<String> {
        dest.object_keys()
            .into_iter()
            .filter(|k| k.contains("/base/"))
            .collect()
    };
    assert_eq!(
        base(&world.dest),
        [format!("pg/srv/base/{b}/barman-rs.manifest")]
    );
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &b]);
    assert_success(&out, "our delete of the manifest Barman left");
    assert_eq!(base(&world.dest), Vec::<String>::new(), "objects left");
    eprintln!("azure_interop_with_barman: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 2. Failures
// ---------------------------------------------------------------------------------------------

fn assert_exit_mentions(out: &Output, code: i32, text: &str, what: &str) {
    assert_exit(out, code, what);
    assert!(
        stderr(out).contains(text),
        "{what}: stderr lacks {text:?}\nstderr: {}",
        stderr(out)
    );
}

/// The preconditions Barman checks before a snapshot backup (exit 4, nothing created), an
/// injected operation failure (exit 1, FAILED, the snapshot deleted), throttling retried.
#[test]
fn azure_backup_failures() {
    let started = Instant::now();
    let world = World::new("azfail", 1, Service::Local);
    let arm = &world.arm;
    let (vm, d0, d1) = (arm.name("pg"), arm.name("data0"), arm.name("data1"));
    arm.vm(&vm, &[(&d0, 0), (&d1, 1)]);
    let source = cluster_on(&world, "azfail", 0);

    let out = world.backup(&source, &vm, &[&d0], &["--azure-subscription-id"], &[]);
    assert_exit_mentions(
        &out,
        4,
        "--azure-subscription-id option must be set for snapshot backups when cloud provider \
         is azure-blob-storage",
        "no subscription",
    );
    let out = world.backup(&source, &vm, &[&d0], &["--azure-resource-group"], &[]);
    assert_exit_mentions(
        &out,
        4,
        "Incomplete options for snapshot backup - missing: azure_resource_group",
        "no resource group",
    );
    let out = world.backup(&source, "no-such-vm", &[&d0], &[], &[]);
    assert_exit_mentions(
        &out,
        4,
        "ERROR: Cannot find compute instance no-such-vm\n",
        "unknown VM",
    );
    let out = world.backup(&source, &vm, &[&d0, "no-such-disk"], &[], &[]);
    assert_exit_mentions(
        &out,
        4,
        &format!("Cannot find disks attached to compute instance {vm}: no-such-disk"),
        "unknown disk",
    );
    let os = format!("{vm}-os");
    let out = world.backup(&source, &vm, &[&os], &[], &[]);
    assert_exit_mentions(
        &out,
        4,
        &format!("Cannot find disks attached to compute instance {vm}: {os}"),
        "the OS disk",
    );
    // data1 (lun 1) is mounted nowhere.
    let out = world.backup(&source, &vm, &[&d0, &d1], &[], &[]);
    assert_exit_mentions(
        &out,
        4,
        &format!("ERROR: Cannot find disks mounted on compute instance {vm}: {d1}\n"),
        "a disk not mounted",
    );
    assert!(
        stderr(&out).contains("Could not find volume with lun 1 at any mount point"),
        "{}",
        stderr(&out)
    );
    // PGDATA outside the disks listed.
    world.mounts.unmount(&lun_device(0));
    world
        .mounts
        .mount(&lun_device(0), &world.mounts.disk(0), DEFAULT_MOUNT_OPTIONS);
    let out = world.backup(&source, &vm, &[&d0], &[], &[]);
    assert_exit_mentions(
        &out,
        4,
        "which is none of the disks to snapshot",
        "PGDATA not on a listed disk",
    );
    world
        .mounts
        .mount(&lun_device(0), source.root.path(), DEFAULT_MOUNT_OPTIONS);
    assert_eq!(arm.snapshots(), Vec::<Value>::new());
    assert_eq!(backup_ids(&world.dest), Vec::<(String, String)>::new());

    // -- throttled twice, then served --------------------------------------------------------
    arm.behaviour(&d0, json!({"throttle_next": 2, "retry_after": 1}));
    let since = arm.last_seq();
    let out = world.backup(
        &source,
        &vm,
        &[&d0],
        &[],
        &["-vv", "--azure-credential", "default"],
    );
    assert_success(&out, "a throttled backup");
    assert_no_credentials(&out, arm, "throttled backup -vv");
    let throttled = arm
        .calls(since)
        .into_iter()
        .filter(|c| c["status"] == 429)
        .count();
    assert_eq!(throttled, 2);
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "DONE", "{ids:?}");
    let id = ids[0].0.clone();
    let name = format!("{d0}-{}", id.to_lowercase());
    assert!(arm.snapshot(&name).is_some());

    // -- restore preconditions ---------------------------------------------------------------
    let data = source.data();
    let rest = ["srv", id.as_str(), data.to_str().unwrap()];
    let out = world.run_ours(
        "barman-cloud-restore",
        &["--snapshot-recovery-instance", &vm],
        &rest,
    );
    assert_exit_mentions(
        &out,
        4,
        "Incomplete options for snapshot restore - missing: azure_resource_group",
        "restore without a resource group",
    );
    let recovery = arm.name("rec");
    let snapshot_id = arm.snapshot(&name).unwrap()["id"].clone();
    arm.post(
        "/_fake/vm",
        json!({"subscription": arm.subscription, "resource_group": arm.group,
               "name": recovery, "location": "westeurope",
               "data_disks": [{"name": arm.name("clone0"), "lun": 3, "source_snapshot_id": snapshot_id}]}),
    );
    world
        .mounts
        .mount(&lun_device(3), source.root.path(), "rw,relatime");
    let out = world.run_ours(
        "barman-cloud-restore",
        &[
            "--snapshot-recovery-instance",
            &recovery,
            "--azure-resource-group",
            &arm.group,
        ],
        &rest,
    );
    assert_exit_mentions(
        &out,
        4,
        &format!(
            "Error checking mount options: Disk {} cloned from snapshot {name} is mounted with \
             rw,relatime but rw,noatime was expected.",
            arm.name("clone0")
        ),
        "clone mounted with other options",
    );
    assert!(!data.join("backup_label").exists());

    // -- deletion: a snapshot not named after the backup is refused ---------------------------
    // (A name that does not exist is taken as already deleted, as by Barman: the refused
    // snapshot must exist.)
    let info_path = Path::new(&world.dest.bucket()).join(format!("srv/base/{id}/backup.info"));
    let info = std::fs::read_to_string(&info_path).unwrap();
    let renamed = format!("{d0}-other");
    arm.arm_create(&renamed, &d0);
    assert!(arm.snapshot(&renamed).is_some());
    std::fs::write(&info_path, info.replace(&name, &renamed)).unwrap();
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_exit_mentions(
        &out,
        4,
        &format!(
            "Refusing to delete snapshot {renamed}: it is not recognized as a snapshot created \
             for backup {id}"
        ),
        "a renamed snapshot",
    );
    assert!(arm.snapshot(&name).is_some());
    assert!(arm.snapshot(&renamed).is_some());
    assert!(info_path.exists());
    assert!(info_path.with_file_name("backup_label").exists());
    std::fs::write(&info_path, &info).unwrap();

    // -- already gone: the deletion goes on ---------------------------------------------------
    arm.arm_delete(&name);
    assert!(arm.snapshot(&name).is_none(), "deleted behind our back");
    let out = world.run_ours(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &id, "-vv"],
    );
    assert_success(&out, "delete of a backup whose snapshot is gone");
    assert_no_credentials(&out, arm, "delete -vv");
    assert!(!info_path.exists());
    assert!(arm.snapshot(&name).is_none());
    arm.arm_delete(&renamed);
    eprintln!("azure_backup_failures: {:?}", started.elapsed());
}

/// An operation that ends Failed: exit 1, a FAILED backup, and no snapshot left (ours deletes
/// the snapshots of a failed backup, as on AWS).
#[test]
fn azure_operation_failure_leaves_no_snapshot() {
    let world = World::new("azopfail", 0, Service::Local);
    let arm = &world.arm;
    let (vm, d0) = (arm.name("pg"), arm.name("data0"));
    arm.vm(&vm, &[(&d0, 0)]);
    let source = cluster_on(&world, "azopfail", 0);
    arm.behaviour(&d0, json!({"fail": "InternalDiskManagementError"}));
    let out = world.backup(&source, &vm, &[&d0], &[], &[]);
    assert_exit_mentions(
        &out,
        1,
        "InternalDiskManagementError",
        "an injected failure",
    );
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "FAILED", "{ids:?}");
    assert_eq!(arm.snapshots(), Vec::<Value>::new(), "snapshot left");
}
