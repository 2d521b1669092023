//! Our GCP persistent-disk snapshot backups (`barman-cloud-backup --cloud-provider
//! google-cloud-storage --gcp-project --gcp-zone --snapshot-instance --snapshot-disk`),
//! restores and deletions against the Compute Engine fake (`tests/fakes/gcp_compute_fake.py`,
//! `BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT`) and the findmnt stand-in (see `ec2`), with the
//! backups in the GCS emulator.
//!
//! Python Barman 3.20.1 runs against the same fake (`gcp_interop_with_barman`): its
//! google-cloud-compute clients are pointed there by the test-only `sitecustomize` of
//! `tests/fakes/barman_site`, Barman's code unchanged.
//!
//! Every test has its own instance and disks (named with a unique suffix) on the one fake,
//! its own mount table, bucket, key file and PostgreSQL cluster, so the tests run in
//! parallel.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{Value, json};

use crate::ec2::{
    DEFAULT_MOUNT_OPTIONS, FakeMounts, barman_command, barman_compute_fake_env, ours_command,
};
use crate::postgres::Cluster;
use crate::support::*;

pub(crate) const PROJECT: &str = "barman-rs-test";
pub(crate) const ZONE: &str = "europe-west1-b";
pub(crate) const REGION: &str = "europe-west1";

type Env = Vec<(String, String)>;

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

/// `http://host:port` of the Compute Engine fake.
pub(crate) fn fake_base() -> String {
    required_env("BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT")
        .trim_end_matches('/')
        .trim_end_matches("/compute/v1")
        .to_string()
}

/// One HTTP/1.1 request to the fake: (status, body).
fn http(method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> (u16, String) {
    let base = fake_base();
    let hostport = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(hostport).expect("connect to the GCP fake");
    let body = body.map(Value::to_string).unwrap_or_default();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, text) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, text.to_string())
}

/// The control API: must answer 200 with JSON.
pub(crate) fn control(method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, text) = http(method, path, body.as_ref(), None);
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// A Compute Engine API call (any bearer token is accepted): (status, body).
fn api(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, text) = http(
        method,
        &format!("/compute/v1/projects/{PROJECT}/{path}"),
        body.as_ref(),
        Some("test-helper-token"),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The snapshots of the fake (current status).
fn fake_snapshots() -> Vec<Value> {
    control("GET", "/_fake/state", None)["snapshots"]
        .as_array()
        .unwrap()
        .clone()
}

/// The fake's snapshot named `name`, if any.
fn fake_snapshot(name: &str) -> Option<Value> {
    fake_snapshots().into_iter().find(|s| s["name"] == name)
}

/// The snapshots of disk `disk` (by their source disk).
fn snapshots_of_disk(disk: &str) -> Vec<Value> {
    let suffix = format!("/disks/{disk}");
    fake_snapshots()
        .into_iter()
        .filter(|s| {
            s["sourceDisk"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&suffix)
        })
        .collect()
}

fn settings(key: &str, value: Value) {
    control("POST", &format!("/_fake/settings/{key}"), Some(value));
}

/// Recorded calls concerning `key` after sequence number `since`.
fn calls(key: &str, since: u64) -> Vec<Value> {
    control(
        "GET",
        &format!("/_fake/calls?match={key}&since={since}"),
        None,
    )
    .as_array()
    .unwrap()
    .clone()
}

fn last_seq() -> u64 {
    control("GET", "/_fake/calls", None)
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |c| c["seq"].as_u64().unwrap())
}

fn is_insert(call: &Value) -> bool {
    call["method"] == "POST"
        && call["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/global/snapshots")
}

// ---------------------------------------------------------------------------------------------
// One test's world
// ---------------------------------------------------------------------------------------------

/// A disk of the world's instance.
#[derive(Clone, Debug)]
struct GcpDisk {
    name: String,
    device_name: String,
}

impl GcpDisk {
    /// The device findmnt knows it by.
    fn device(&self) -> String {
        format!("/dev/disk/by-id/google-{}", self.device_name)
    }
}

/// An instance with a boot disk and disks of the given roles (`"regional:<role>"` for a
/// regional disk), a mount table, a GCS bucket, a service-account key file and the
/// environment our commands get.
struct GcpWorld {
    run: String,
    instance: String,
    disks: Vec<GcpDisk>,
    mounts: FakeMounts,
    dest: Destination,
    /// One line of the private key's base64 text (must never be printed).
    key_line: String,
    _key_dir: tempfile::TempDir,
    env: Env,
}

impl GcpWorld {
    fn new(tag: &str, roles: &[&str], mount_dirs: usize) -> GcpWorld {
        let run = unique_name(tag).to_lowercase();
        let instance = format!("{run}-pg");
        let boot = format!("{run}-boot");
        control(
            "POST",
            "/_fake/disk",
            Some(json!({"project": PROJECT, "zone": ZONE, "name": boot})),
        );
        let mut attached =
            vec![json!({"name": boot, "device_name": "persistent-disk-0", "boot": true})];
        let mut disks = Vec::new();
        for role in roles {
            let (regional, role) = match role.strip_prefix("regional:") {
                Some(r) => (true, r),
                None => (false, *role),
            };
            let name = format!("{run}-{role}");
            let device_name = format!("{role}-dev");
            let mut disk = json!({"project": PROJECT, "name": name});
            let mut attachment = json!({"name": name, "device_name": device_name});
            if regional {
                disk["region"] = json!(REGION);
                attachment["region"] = json!(REGION);
            } else {
                disk["zone"] = json!(ZONE);
            }
            control("POST", "/_fake/disk", Some(disk));
            attached.push(attachment);
            disks.push(GcpDisk { name, device_name });
        }
        control(
            "POST",
            "/_fake/instance",
            Some(json!({"project": PROJECT, "zone": ZONE, "name": instance, "disks": attached})),
        );
        let key_dir = temp_dir("gcpkey");
        let (key_path, key_line) = key_file(key_dir.path(), &format!("{}/token", fake_base()));
        let mounts = FakeMounts::new(mount_dirs);
        let dest = Destination::create(Service::Gcs, tag);
        let mut env: Env = vec![
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE".into(),
                required_env("BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT"),
            ),
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                key_path.display().to_string(),
            ),
        ];
        env.extend(mounts.env());
        GcpWorld {
            run,
            instance,
            disks,
            mounts,
            dest,
            key_line,
            _key_dir: key_dir,
            env,
        }
    }

    fn disk(&self, i: usize) -> &GcpDisk {
        &self.disks[i]
    }

    /// Our `command` with the world's environment (no metadata server).
    fn ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        let mut cmd = ours_command(&self.dest, command, options, rest);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env_remove("GCE_METADATA_HOST");
        cmd
    }

    fn run_ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        run(self.ours(command, options, rest))
    }

    /// Barman's catalog `command` on our bucket (the bucket's environment only).
    fn barman(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        barman_command(&self.dest, command, options, rest)
    }

    /// Barman's `command` with the world's environment, its Compute client pointed at the
    /// fake: Barman's own GCP snapshot code at work.
    fn barman_on_fake(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        let mut cmd = self.barman(command, options, rest);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.envs(barman_compute_fake_env(
            "BARMAN_RS_FAKE_GCP_COMPUTE",
            &fake_base(),
        ));
        cmd.env_remove("GCE_METADATA_HOST");
        run(cmd)
    }

    /// Our snapshot backup of `cluster` (server `srv`) of `disks` of the world's instance.
    fn backup(&self, cluster: &Cluster, disks: &[&str], extra: &[&str]) -> Output {
        let options = snapshot_options(
            cluster,
            Some(PROJECT),
            Some(ZONE),
            &self.instance,
            disks,
            extra,
        );
        self.run_ours("barman-cloud-backup", &strs(&options), &["srv"])
    }

    /// A recovery instance with one disk cloned from each snapshot: (instance, disks).
    fn recovery_instance(&self, tag: &str, snapshots: &[&str]) -> (String, Vec<GcpDisk>) {
        let instance = format!("{}-{tag}", self.run);
        let mut disks = Vec::new();
        let mut attached = Vec::new();
        for (i, snapshot) in snapshots.iter().enumerate() {
            let name = format!("{instance}-clone{i}");
            control(
                "POST",
                "/_fake/disk",
                Some(json!({"project": PROJECT, "zone": ZONE, "name": name,
                            "source_snapshot": snapshot})),
            );
            let device_name = format!("clone{i}-dev");
            attached.push(json!({"name": name, "device_name": device_name}));
            disks.push(GcpDisk { name, device_name });
        }
        control(
            "POST",
            "/_fake/instance",
            Some(json!({"project": PROJECT, "zone": ZONE, "name": instance, "disks": attached})),
        );
        (instance, disks)
    }

    /// The only backup of `srv` (our list), with its status.
    fn single_backup(&self) -> (String, String) {
        let ids = backup_ids(&self.dest);
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0].clone()
    }
}

/// A service-account key file for a fresh RSA key (`openssl genpkey`) whose `token_uri` is
/// `token_uri`: (path, one line of the key's base64 text).
pub(crate) fn key_file(dir: &Path, token_uri: &str) -> (std::path::PathBuf, String) {
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl");
    assert_success(&out, "openssl genpkey");
    let pem = stdout(&out);
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let key_line = pem.lines().nth(5).unwrap().to_string();
    let path = dir.join("key.json");
    std::fs::write(
        &path,
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key",
            "private_key": pem,
            "client_email": "barman@barman-rs-test.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string(),
    )
    .unwrap();
    (path, key_line)
}

/// barman-cloud-backup's options for a snapshot backup of `cluster`.
fn snapshot_options(
    cluster: &Cluster,
    project: Option<&str>,
    zone: Option<&str>,
    instance: &str,
    disks: &[&str],
    extra: &[&str],
) -> Vec<String> {
    let mut options = cluster.backup_options();
    if let Some(project) = project {
        options.extend(["--gcp-project".to_string(), project.to_string()]);
    }
    if let Some(zone) = zone {
        options.extend(["--gcp-zone".to_string(), zone.to_string()]);
    }
    options.extend(["--snapshot-instance".to_string(), instance.to_string()]);
    for disk in disks {
        options.extend(["--snapshot-disk".to_string(), disk.to_string()]);
    }
    options.extend(extra.iter().map(|s| s.to_string()));
    options
}

/// Object keys of backup `id` (relative to `srv/base/<id>/`).
fn backup_keys(dest: &Destination, id: &str) -> Vec<String> {
    let prefix = format!("pg/srv/base/{id}/");
    dest.object_keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// Replaces `from` by `to` in object `key` (under `pg/`) of the bucket.
fn replace_in_object(dest: &Destination, key: &str, from: &str, to: &str) {
    let code = "import sys\n\
        from google.cloud import storage\n\
        b = storage.Client().bucket(sys.argv[2]).blob(sys.argv[3])\n\
        t = b.download_as_text()\n\
        assert sys.argv[4] in t, t\n\
        b.upload_from_string(t.replace(sys.argv[4], sys.argv[5]))\n";
    let out = dest
        .sdk_python(&["-c".as_ref(), code.as_ref()])
        .arg(dest.bucket())
        .arg(format!("pg/{key}"))
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert_success(&out, &format!("rewriting {key}"));
}

/// One `key : value` row of the console show (Barman's nested row format).
fn row(key: &str, value: &str) -> String {
    format!("    {key:<21}: {value}\n")
}

/// Our and Barman's show (console and JSON) of `id` and list (console and JSON), all at
/// once: the same exit codes and standard outputs. Returns our (console show, JSON show).
fn assert_same_catalog_views(world: &GcpWorld, id: &str) -> (String, Value) {
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
    let mut commands = Vec::new();
    for (command, options, rest) in &views {
        commands.push(world.ours(command, options, rest));
        commands.push(world.barman(command, options, rest));
    }
    let outputs = run_all(commands);
    for (i, (command, options, _)) in views.iter().enumerate() {
        let (ours, barman) = (&outputs[2 * i], &outputs[2 * i + 1]);
        let what = format!("{command} {options:?}");
        assert_success(barman, &format!("Barman's {what}"));
        assert_success(ours, &format!("our {what}"));
        assert_eq!(stdout(ours), stdout(barman), "{what}: outputs differ");
    }
    let shown: Value = serde_json::from_slice(&outputs[2].stdout).unwrap();
    (stdout(&outputs[0]), shown["srv"].clone())
}

/// The backup label as backup-show's JSON shows it (a Python literal).
fn label_of(shown: &Value) -> String {
    shown["backup_label"]
        .as_str()
        .unwrap()
        .trim_matches('\'')
        .replace("\\n", "\n")
        .replace("\\\\", "\\")
}

/// Neither the service-account private key nor any access token the fake saw in the calls
/// concerning `key` after `since` appears in `out`.
fn assert_no_credentials(world: &GcpWorld, out: &Output, key: &str, since: u64) {
    let tokens: Vec<String> = calls(key, since)
        .iter()
        .filter_map(|c| c["token"].as_str().map(str::to_string))
        .collect();
    assert!(!tokens.is_empty(), "no token recorded for {key}");
    let text = format!("{}{}", stdout(out), stderr(out));
    assert!(!text.is_empty(), "-vv printed nothing");
    assert!(
        !text.contains(&world.key_line),
        "the private key was printed"
    );
    assert!(!text.contains("PRIVATE KEY"), "the private key was printed");
    for token in &tokens {
        assert!(
            !text.contains(token.as_str()),
            "the access token was printed"
        );
    }
}

/// A started cluster whose PGDATA (`<root>/data`) lies on `disk`, mounted at the root.
fn cluster_on(world: &GcpWorld, tag: &str, disk: &GcpDisk) -> Cluster {
    let cluster = Cluster::initdb(tag);
    cluster.start();
    world
        .mounts
        .mount(&disk.device(), cluster.root.path(), DEFAULT_MOUNT_OPTIONS);
    cluster
}

fn snapshot_name(disk: &GcpDisk, id: &str) -> String {
    format!("{}-{}", disk.name, id.to_lowercase())
}

/// The `snapshots_info` of a GCP backup of `disks` (with their mount points).
fn expected_snapshots_info(id: &str, disks: &[(&GcpDisk, &str)]) -> Value {
    json!({
        "provider": "gcp",
        "provider_info": {"project": PROJECT},
        "snapshots": disks.iter().map(|(disk, point)| json!({
            "mount": {"mount_options": DEFAULT_MOUNT_OPTIONS, "mount_point": point},
            "provider": {
                "device_name": disk.device_name,
                "snapshot_name": snapshot_name(disk, id),
                "snapshot_project": PROJECT,
            },
        })).collect::<Vec<_>>(),
    })
}

/// The console block of the same.
fn expected_block(id: &str, disks: &[(&GcpDisk, &str)]) -> String {
    let mut block = String::from("  Snapshot information:\n");
    block += &row("provider", "gcp");
    block += &row("project", PROJECT);
    block += "\n";
    for (disk, point) in disks {
        block += &row("device_name", &disk.device_name);
        block += &row("snapshot_name", &snapshot_name(disk, id));
        block += &row("snapshot_project", PROJECT);
        block += &row("Mount point", point);
        block += &row("Mount options", DEFAULT_MOUNT_OPTIONS);
        block += "\n";
    }
    block + "  Base backup information:\n"
}

// ---------------------------------------------------------------------------------------------
// 1. The whole cycle: one disk, two disks, restore, delete
// ---------------------------------------------------------------------------------------------

#[test]
fn gcp_full_cycle() {
    let started = Instant::now();
    let world = GcpWorld::new("gcpcycle", &["data", "ts"], 1);
    let (data, ts) = (world.disk(0).clone(), world.disk(1).clone());
    let source = cluster_on(&world, "gcpcycle", &data);
    source.psql("create table t as select generate_series(1, 1000) as i");
    let root = source.root.path().display().to_string();
    let other = world.mounts.disk(0);
    world
        .mounts
        .mount(&ts.device(), &other, DEFAULT_MOUNT_OPTIONS);
    let other_point = other.display().to_string();

    // -- backup A: one disk ---------------------------------------------------------------
    let out = world.backup(&source, &[&data.name], &[]);
    assert_success(&out, "our GCP snapshot backup of one disk");
    let (a, status) = world.single_backup();
    assert_eq!(status, "DONE");
    let name_a = snapshot_name(&data, &a);
    let snapshot = fake_snapshot(&name_a).unwrap_or_else(|| panic!("no snapshot {name_a}"));
    assert_eq!(snapshot["status"], "READY", "{snapshot}");
    assert!(
        snapshot["sourceDisk"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/zones/{ZONE}/disks/{}", data.name)),
        "{snapshot}"
    );
    assert_eq!(snapshots_of_disk(&ts.name), Vec::<Value>::new());
    assert_eq!(
        backup_keys(&world.dest, &a),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );

    let (shown_text, shown) = assert_same_catalog_views(&world, &a);
    assert!(
        shown_text.contains(&expected_block(&a, &[(&data, &root)])),
        "{shown_text}"
    );
    assert_eq!(
        shown["snapshots_info"],
        expected_snapshots_info(&a, &[(&data, &root)])
    );
    let label_a = label_of(&shown);
    assert!(
        label_a.contains(&format!("LABEL: Barman backup srv {a}\n")),
        "{label_a}"
    );

    // -- backup B: two disks, given out of attachment order, created at once ---------------
    wait_past(&a);
    for disk in [&data, &ts] {
        settings(&disk.name, json!({"creating_seconds": 2}));
    }
    let since = last_seq();
    let out = world.backup(&source, &[&ts.name, &data.name], &[]);
    for disk in [&data, &ts] {
        settings(&disk.name, json!({"creating_seconds": null}));
    }
    assert_success(&out, "our GCP snapshot backup of two disks");
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let b = ids.iter().find(|(id, _)| *id != a).unwrap().0.clone();
    assert!(ids.iter().all(|(_, s)| s == "DONE"), "{ids:?}");
    let inserts: Vec<Value> = calls(&world.instance, since)
        .into_iter()
        .chain(calls(&data.name, since))
        .chain(calls(&ts.name, since))
        .filter(is_insert)
        .map(|c| (c["seq"].as_u64().unwrap(), c))
        .collect::<std::collections::BTreeMap<u64, Value>>()
        .into_values()
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:#?}");
    let times: Vec<f64> = inserts
        .iter()
        .map(|c| c["time"].as_f64().unwrap())
        .collect();
    assert!(
        times[1] - times[0] < 1.5,
        "the second insert came {} s after the first: not before the first snapshot was done",
        times[1] - times[0]
    );
    for disk in [&data, &ts] {
        let name = snapshot_name(disk, &b);
        let s = fake_snapshot(&name).unwrap_or_else(|| panic!("no snapshot {name}"));
        assert_eq!(s["status"], "READY", "{s}");
    }
    // Recorded in the instance's attachment order (Barman's), not the order given.
    let (shown_text, shown) = assert_same_catalog_views(&world, &b);
    let order = [(&data, root.as_str()), (&ts, other_point.as_str())];
    assert!(
        shown_text.contains(&expected_block(&b, &order)),
        "{shown_text}"
    );
    assert_eq!(shown["snapshots_info"], expected_snapshots_info(&b, &order));

    // -- restore A onto a recovery instance --------------------------------------------------
    source.pg_ctl("stop");
    let pgdata = source.data();
    let before = file_names(&pgdata);
    let (recovery, clones) = world.recovery_instance("rec", &[&name_a]);
    world.mounts.unmount(&data.device());
    world.mounts.mount(
        &clones[0].device(),
        source.root.path(),
        DEFAULT_MOUNT_OPTIONS,
    );
    let rest = ["srv", a.as_str(), pgdata.to_str().unwrap()];
    // Without a zone: Barman's message.
    let out = world.run_ours(
        "barman-cloud-restore",
        &["--snapshot-recovery-instance", &recovery],
        &rest,
    );
    assert_exit(&out, 4, "restore without --gcp-zone");
    assert_mentions(
        &out,
        "Incomplete options for snapshot restore - missing: gcp_zone",
        "restore without --gcp-zone",
    );
    assert_eq!(file_names(&pgdata), before);
    let restore_options = [
        "--snapshot-recovery-instance",
        recovery.as_str(),
        "--gcp-zone",
        ZONE,
    ];
    let since = last_seq();
    let verbose: Vec<&str> = restore_options.iter().copied().chain(["-vv"]).collect();
    let out = world.run_ours("barman-cloud-restore", &verbose, &rest);
    assert_success(&out, "our GCP snapshot restore");
    assert_eq!(stdout(&out), "");
    assert_no_credentials(&world, &out, &recovery, since);
    let mut expected = before.clone();
    expected.push("backup_label".into());
    expected.sort();
    assert_eq!(
        file_names(&pgdata),
        expected,
        "only backup_label is written"
    );
    assert_eq!(
        std::fs::read_to_string(pgdata.join("backup_label")).unwrap(),
        label_a
    );
    std::fs::remove_file(pgdata.join("backup_label")).unwrap();

    // The clone mounted elsewhere: Barman's message, nothing written.
    world
        .mounts
        .mount(&clones[0].device(), &other, DEFAULT_MOUNT_OPTIONS);
    let out = world.run_ours("barman-cloud-restore", &restore_options, &rest);
    assert_exit(&out, 4, "restore with the clone mounted elsewhere");
    assert_mentions(
        &out,
        &format!(
            "Disk {} cloned from snapshot {name_a} is mounted at {other_point} but {root} was \
             expected.",
            clones[0].name
        ),
        "restore with the clone mounted elsewhere",
    );
    assert_eq!(file_names(&pgdata), before);

    // -- delete A, then B: snapshots and objects gone -----------------------------------------
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &a]);
    assert_success(&out, "our delete of backup A");
    assert_eq!(stdout(&out), "");
    assert!(fake_snapshot(&name_a).is_none(), "snapshot {name_a} left");
    assert_eq!(backup_keys(&world.dest, &a), Vec::<String>::new());
    assert_eq!(backup_ids(&world.dest), [(b.clone(), "DONE".to_string())]);
    for disk in [&data, &ts] {
        assert!(fake_snapshot(&snapshot_name(disk, &b)).is_some());
    }
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &b]);
    assert_success(&out, "our delete of backup B");
    assert_eq!(snapshots_of_disk(&data.name), Vec::<Value>::new());
    assert_eq!(snapshots_of_disk(&ts.name), Vec::<Value>::new());
    assert_eq!(
        world.dest.object_keys(),
        Vec::<String>::new(),
        "objects left"
    );
    eprintln!("gcp_full_cycle: {:?}", started.elapsed());
}

/// Python Barman's own GCP code (google-cloud-compute pointed at the fake by
/// `tests/fakes/barman_site`) and ours on one bucket and one project: each lists, shows,
/// restores and deletes the other's snapshot backups.
#[test]
fn gcp_interop_with_barman() {
    let started = Instant::now();
    let world = GcpWorld::new("gcpinterop", &["data", "ts"], 1);
    let (data, ts) = (world.disk(0).clone(), world.disk(1).clone());
    let source = cluster_on(&world, "gcpinterop", &data);
    source.psql("create table t as select generate_series(1, 1000) as i");
    let root = source.root.path().display().to_string();
    let other = world.mounts.disk(0);
    world
        .mounts
        .mount(&ts.device(), &other, DEFAULT_MOUNT_OPTIONS);
    let other_point = other.display().to_string();
    let order = [(&data, root.as_str()), (&ts, other_point.as_str())];
    let options = snapshot_options(
        &source,
        Some(PROJECT),
        Some(ZONE),
        &world.instance,
        &[&data.name, &ts.name],
        &[],
    );

    // -- Barman's backup of two disks: each snapshot awaited before the next ---------------
    for disk in [&data, &ts] {
        settings(&disk.name, json!({"creating_seconds": 1}));
    }
    let since = last_seq();
    let out = world.barman_on_fake("barman-cloud-backup", &strs(&options), &["srv"]);
    for disk in [&data, &ts] {
        settings(&disk.name, json!({"creating_seconds": null}));
    }
    assert_success(&out, "Barman's GCP snapshot backup");
    let (a, status) = world.single_backup();
    assert_eq!(status, "DONE");
    let inserts: Vec<f64> = calls(&data.name, since)
        .into_iter()
        .chain(calls(&ts.name, since))
        .filter(is_insert)
        .map(|c| c["time"].as_f64().unwrap())
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert!(
        (inserts[1] - inserts[0]).abs() >= 1.0,
        "Barman inserted its snapshots {} s apart: the fake did not run Barman's code",
        (inserts[1] - inserts[0]).abs()
    );
    let (shown_text, shown) = assert_same_catalog_views(&world, &a);
    assert!(
        shown_text.contains(&expected_block(&a, &order)),
        "{shown_text}"
    );
    assert_eq!(shown["snapshots_info"], expected_snapshots_info(&a, &order));
    let label_a = label_of(&shown);

    // -- our backup of the same disks, as Barman sees it ------------------------------------
    wait_past(&a);
    let out = world.backup(&source, &[&data.name, &ts.name], &[]);
    assert_success(&out, "our GCP snapshot backup");
    let ids = backup_ids(&world.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let b = ids.iter().find(|(id, _)| *id != a).unwrap().0.clone();
    let (shown_text, shown) = assert_same_catalog_views(&world, &b);
    assert!(
        shown_text.contains(&expected_block(&b, &order)),
        "{shown_text}"
    );
    assert_eq!(shown["snapshots_info"], expected_snapshots_info(&b, &order));
    let label_b = label_of(&shown);

    // -- each prepares the recovery of the other's backup ------------------------------------
    source.pg_ctl("stop");
    let pgdata = source.data();
    let before = file_names(&pgdata);
    let mut with_label = before.clone();
    with_label.push("backup_label".into());
    with_label.sort();
    for disk in [&data, &ts] {
        world.mounts.unmount(&disk.device());
    }
    // A recovery instance with a clone of the first snapshot only: both refuse, alike.
    let second = snapshot_name(&ts, &a);
    let (partial, _) = world.recovery_instance("partial", &[&snapshot_name(&data, &a)]);
    let partial_options = ["--snapshot-recovery-instance", &partial, "--gcp-zone", ZONE];
    let rest = ["srv", a.as_str(), pgdata.to_str().unwrap()];
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
        assert_exit(
            &out,
            4,
            &format!("{who} restore with a snapshot not attached"),
        );
        assert_mentions(
            &out,
            &format!(
                "The following snapshots are not attached to recovery instance {partial}: \
                 {second}"
            ),
            &format!("{who} restore with a snapshot not attached"),
        );
    }
    assert_eq!(file_names(&pgdata), before);
    let restores: [(&str, &String, &String); 2] =
        [("ours", &a, &label_a), ("Barman", &b, &label_b)];
    for (who, id, label) in restores {
        let names = [snapshot_name(&data, id), snapshot_name(&ts, id)];
        let (recovery, clones) =
            world.recovery_instance(&format!("rec{who}").to_lowercase(), &strs(&names));
        world.mounts.mount(
            &clones[0].device(),
            source.root.path(),
            DEFAULT_MOUNT_OPTIONS,
        );
        world
            .mounts
            .mount(&clones[1].device(), &other, DEFAULT_MOUNT_OPTIONS);
        let restore_options = [
            "--snapshot-recovery-instance",
            &recovery,
            "--gcp-zone",
            ZONE,
        ];
        let rest = ["srv", id.as_str(), pgdata.to_str().unwrap()];
        let out = if who == "ours" {
            world.run_ours("barman-cloud-restore", &restore_options, &rest)
        } else {
            world.barman_on_fake("barman-cloud-restore", &restore_options, &rest)
        };
        assert_success(&out, &format!("{who} restore of the other's backup {id}"));
        assert_eq!(stdout(&out), "");
        assert_eq!(
            file_names(&pgdata),
            with_label,
            "{who}: only backup_label is written"
        );
        assert_eq!(
            &std::fs::read_to_string(pgdata.join("backup_label")).unwrap(),
            label,
            "{who}"
        );
        std::fs::remove_file(pgdata.join("backup_label")).unwrap();
        for clone in &clones {
            world.mounts.unmount(&clone.device());
        }
    }

    // -- each deletes the other's backup: snapshots first, then the objects ------------------
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &a]);
    assert_success(&out, "our delete of Barman's backup");
    let out = world.barman_on_fake("barman-cloud-backup-delete", &[], &["srv", "-b", &b]);
    assert_success(&out, "Barman's delete of our backup");
    for id in [&a, &b] {
        for disk in [&data, &ts] {
            let name = snapshot_name(disk, id);
            assert!(fake_snapshot(&name).is_none(), "snapshot {name} left");
        }
    }
    // Barman's delete leaves our integrity manifest (README); ours removes that orphan.
    assert_eq!(
        world.dest.object_keys(),
        [format!("pg/srv/base/{b}/barman-rs.manifest")]
    );
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &b]);
    assert_success(&out, "our delete of the manifest Barman left");
    assert_eq!(
        world.dest.object_keys(),
        Vec::<String>::new(),
        "objects left"
    );
    eprintln!("gcp_interop_with_barman: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 2. Backup failures, retries, credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn gcp_backup_failures() {
    let started = Instant::now();
    let world = GcpWorld::new(
        "gcpfail",
        &["data", "regional:shared", "loose", "elsewhere"],
        1,
    );
    let (data, shared, loose, elsewhere) = (
        world.disk(0).clone(),
        world.disk(1).clone(),
        world.disk(2).clone(),
        world.disk(3).clone(),
    );
    let source = cluster_on(&world, "gcpfail", &data);
    world.mounts.mount(
        &elsewhere.device(),
        &world.mounts.disk(0),
        DEFAULT_MOUNT_OPTIONS,
    );
    world.mounts.mount(
        &shared.device(),
        &world.mounts.disk(0),
        DEFAULT_MOUNT_OPTIONS,
    );
    let instance = world.instance.as_str();
    let since = last_seq();

    // -- refused before any snapshot, all at once --------------------------------------------
    struct Case {
        name: &'static str,
        project: Option<&'static str>,
        zone: Option<&'static str>,
        instance: String,
        disks: Vec<String>,
        extra: Vec<&'static str>,
        message: String,
    }
    let case = |name, project, zone, instance: &str, disks: &[&str], extra, message: String| Case {
        name,
        project,
        zone,
        instance: instance.to_string(),
        disks: disks.iter().map(|d| d.to_string()).collect(),
        extra,
        message,
    };
    let cases = [
        case(
            "no --gcp-project",
            None,
            Some(ZONE),
            instance,
            &[&data.name],
            vec![],
            "--gcp-project option must be set for snapshot backups when cloud provider is \
             google-cloud-storage"
                .into(),
        ),
        case(
            "no --gcp-zone",
            Some(PROJECT),
            None,
            instance,
            &[&data.name],
            vec![],
            "Incomplete options for snapshot backup - missing: gcp_zone".into(),
        ),
        case(
            "--kms-key-name",
            Some(PROJECT),
            Some(ZONE),
            instance,
            &[&data.name],
            vec![
                "--kms-key-name",
                "projects/p/locations/l/keyRings/r/cryptoKeys/k",
            ],
            "KMS key cannot be specified for snapshot backups".into(),
        ),
        case(
            "unknown instance",
            Some(PROJECT),
            Some(ZONE),
            &format!("{}-nosuch", world.run),
            &[&data.name],
            vec![],
            format!("Cannot find compute instance {}-nosuch", world.run),
        ),
        case(
            "unknown disk",
            Some(PROJECT),
            Some(ZONE),
            instance,
            &[&data.name, "nosuch-disk"],
            vec![],
            format!("Cannot find disks attached to compute instance {instance}: nosuch-disk"),
        ),
        case(
            "regional disk",
            Some(PROJECT),
            Some(ZONE),
            instance,
            &[&data.name, &shared.name],
            vec![],
            format!(
                "Disk {} attached to instance {instance} is a regional disk (region {REGION})",
                shared.name
            ),
        ),
        case(
            "disk not mounted",
            Some(PROJECT),
            Some(ZONE),
            instance,
            &[&data.name, &loose.name],
            vec![],
            format!(
                "Cannot find disks mounted on compute instance {instance}: {}",
                loose.name
            ),
        ),
        case(
            "PGDATA on no listed disk",
            Some(PROJECT),
            Some(ZONE),
            instance,
            &[&elsewhere.name],
            vec![],
            format!(
                "PGDATA ({}) is on the filesystem mounted at {}, which is none of the disks to \
                 snapshot",
                source.data().display(),
                source.root.path().display()
            ),
        ),
    ];
    let commands = cases
        .iter()
        .map(|c| {
            let disks: Vec<&str> = c.disks.iter().map(String::as_str).collect();
            let options =
                snapshot_options(&source, c.project, c.zone, &c.instance, &disks, &c.extra);
            world.ours("barman-cloud-backup", &strs(&options), &["srv"])
        })
        .collect();
    for (c, out) in cases.iter().zip(run_all(commands)) {
        assert_exit(&out, 4, c.name);
        assert_mentions(&out, &c.message, c.name);
    }
    assert_eq!(
        backup_ids(&world.dest),
        [],
        "a refused backup left a backup"
    );
    for disk in [&data, &shared, &loose, &elsewhere] {
        assert!(
            !calls(&disk.name, since).iter().any(is_insert),
            "a snapshot of {} was attempted",
            disk.name
        );
    }

    // -- the insert operation fails: FAILED backup, no snapshot left -------------------------
    settings(
        &data.name,
        json!({"operation_error": "QUOTA_EXCEEDED", "operation_error_message": "Quota exceeded"}),
    );
    let out = world.backup(&source, &[&data.name], &[]);
    settings(
        &data.name,
        json!({"operation_error": null, "operation_error_message": null}),
    );
    assert_exit(&out, 1, "backup with a failing snapshot operation");
    let (failed, status) = world.single_backup();
    assert_eq!(status, "FAILED");
    assert_mentions(
        &out,
        &format!(
            "Snapshot '{}' failed with error code 400: BAD REQUEST",
            snapshot_name(&data, &failed)
        ),
        "backup with a failing snapshot operation",
    );
    assert_mentions(&out, "QUOTA_EXCEEDED", "the operation's error");
    // The FAILED snapshot the fake keeps is left behind by ours (see
    // gcp_failed_operation_leaves_no_snapshot): removed here so the fake stays clean.
    for snapshot in snapshots_of_disk(&data.name) {
        let name = snapshot["name"].as_str().unwrap();
        let (status, answer) = api("DELETE", &format!("global/snapshots/{name}"), None);
        assert_eq!(status, 200, "{answer}");
    }

    // -- throttled twice (429, Retry-After: 1), then fine; -vv shows no credential ----------
    wait_past(&failed);
    settings(&data.name, json!({"throttle_next": 2, "retry_after": 1}));
    let since = last_seq();
    let out = world.backup(&source, &[&data.name], &["-vv"]);
    assert_success(&out, "throttled backup");
    let ids = backup_ids(&world.dest);
    let done = ids
        .iter()
        .find(|(id, _)| *id != failed)
        .expect("the throttled backup")
        .clone();
    assert_eq!(done.1, "DONE", "{ids:?}");
    let statuses: Vec<u64> = calls(&data.name, since)
        .iter()
        .map(|c| c["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
    assert!(fake_snapshot(&snapshot_name(&data, &done.0)).is_some());
    assert_no_credentials(&world, &out, &world.instance, since);

    // Clean up the fake through our delete.
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &done.0]);
    assert_success(&out, "delete of the throttled backup");
    assert_eq!(snapshots_of_disk(&data.name), Vec::<Value>::new());
    eprintln!("gcp_backup_failures: {:?}", started.elapsed());
}

/// The insert operation ends with an error (the fake then keeps the snapshot, FAILED): the
/// backup fails, and the snapshot it made must not be left behind.
#[test]
fn gcp_failed_operation_leaves_no_snapshot() {
    let world = GcpWorld::new("gcpoperr", &["data"], 0);
    let data = world.disk(0).clone();
    let source = cluster_on(&world, "gcpoperr", &data);
    settings(&data.name, json!({"operation_error": "QUOTA_EXCEEDED"}));
    let out = world.backup(&source, &[&data.name], &[]);
    assert_exit(&out, 1, "backup with a failing snapshot operation");
    let (_, status) = world.single_backup();
    assert_eq!(status, "FAILED");
    let left = snapshots_of_disk(&data.name);
    // Leave the fake clean whatever the outcome.
    for snapshot in &left {
        let name = snapshot["name"].as_str().unwrap();
        api("DELETE", &format!("global/snapshots/{name}"), None);
    }
    assert_eq!(left, Vec::<Value>::new(), "a failed snapshot was left");
}

// ---------------------------------------------------------------------------------------------
// 3. Deletion: a snapshot that is not the backup's is refused; a gone one is fine
// ---------------------------------------------------------------------------------------------

#[test]
fn gcp_deletion_checks() {
    let started = Instant::now();
    let world = GcpWorld::new("gcpdel", &["data", "ts"], 1);
    let (data, ts) = (world.disk(0).clone(), world.disk(1).clone());
    let source = cluster_on(&world, "gcpdel", &data);
    world
        .mounts
        .mount(&ts.device(), &world.mounts.disk(0), DEFAULT_MOUNT_OPTIONS);
    let out = world.backup(&source, &[&data.name, &ts.name], &[]);
    assert_success(&out, "our backup of two disks");
    let (id, status) = world.single_backup();
    assert_eq!(status, "DONE");
    let (name0, name1) = (snapshot_name(&data, &id), snapshot_name(&ts, &id));

    // The second snapshot replaced by another of the disk, whose name is not the backup's.
    let foreign = format!("{}-someone-elses", world.run);
    let (status, answer) = api(
        "POST",
        "global/snapshots",
        Some(json!({"name": foreign,
                    "sourceDisk": format!("projects/{PROJECT}/zones/{ZONE}/disks/{}", ts.name)})),
    );
    assert_eq!(status, 200, "{answer}");
    let info_key = format!("srv/base/{id}/backup.info");
    replace_in_object(&world.dest, &info_key, &name1, &foreign);
    let since = last_seq();
    let out = world.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_exit(&out, 4, "delete with a foreign snapshot");
    assert_mentions(
        &out,
        &format!(
            "Refusing to delete snapshot {foreign}: it is not recognized as a snapshot created \
             for backup {id}"
        ),
        "delete with a foreign snapshot",
    );
    for name in [&name0, &name1, &foreign] {
        assert!(fake_snapshot(name).is_some(), "{name} deleted");
    }
    assert_eq!(
        backup_keys(&world.dest, &id),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );
    assert!(
        !calls(&foreign, since)
            .iter()
            .chain(calls(&data.name, since).iter())
            .chain(calls(&ts.name, since).iter())
            .any(|c| c["method"] == "DELETE"),
        "a snapshot deletion was attempted"
    );

    // Named back, with the first snapshot already gone: the deletion succeeds.
    replace_in_object(&world.dest, &info_key, &foreign, &name1);
    let (status, answer) = api("DELETE", &format!("global/snapshots/{name0}"), None);
    assert_eq!(status, 200, "{answer}");
    assert!(fake_snapshot(&name0).is_none());
    let since = last_seq();
    let out = world.run_ours("barman-cloud-backup-delete", &["-vv"], &["srv", "-b", &id]);
    assert_success(&out, "delete with a snapshot already gone");
    assert_no_credentials(&world, &out, &name1, since);
    assert!(fake_snapshot(&name1).is_none(), "{name1} left");
    assert_eq!(
        world.dest.object_keys(),
        Vec::<String>::new(),
        "objects left"
    );
    // The foreign snapshot is not the backup's: ours to remove.
    let (status, answer) = api("DELETE", &format!("global/snapshots/{foreign}"), None);
    assert_eq!(status, 200, "{answer}");
    eprintln!("gcp_deletion_checks: {:?}", started.elapsed());
}
