//! Our AWS snapshot backups (`barman-cloud-backup --snapshot-instance --snapshot-disk`),
//! restores and deletions against the EC2 fake and the findmnt stand-in (see `ec2`),
//! compared with Python Barman 3.20.1 on the same EC2 wherever Barman has the same case
//! (`snapshot_barman` shows Barman's own cycle against these fakes).
//!
//! Every test has its own EC2 world, mount table, bucket and PostgreSQL cluster, so the
//! tests run in parallel; inside a test, independent runs of both tools go at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ec2::*;
use crate::postgres::{Cluster, chown_postgres};
use crate::support::*;

type Env = Vec<(String, String)>;

/// The advice Barman prints after `Locked snapshot: <id>.`
const LOCK_ADVICE: &str =
    "Before deleting a snapshot, please ensure that it is not locked or that the lock has expired.";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One test's EC2 world, mount table and destination, and the environment both tools get.
struct Snap {
    world: Ec2World,
    mounts: FakeMounts,
    dest: Destination,
    env: Env,
}

impl Snap {
    /// A world of `volumes` volumes, `disks` disk directories (nothing mounted) and a
    /// created bucket (directory for `Local`).
    fn new(tag: &str, volumes: usize, disks: usize, service: Service) -> Snap {
        let world = Ec2World::new(tag, volumes);
        let mounts = FakeMounts::new(disks);
        let dest = Destination::create(service, tag);
        let mut env = world.env();
        env.extend(mounts.env());
        Snap {
            world,
            mounts,
            dest,
            env,
        }
    }

    fn ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        with_env(ours_command(&self.dest, command, options, rest), &self.env)
    }

    fn barman(&self, command: &str, options: &[&str], rest: &[&str]) -> Command {
        with_env(
            barman_command(&self.dest, command, options, rest),
            &self.env,
        )
    }

    fn run_ours(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        run(self.ours(command, options, rest))
    }

    fn run_barman(&self, command: &str, options: &[&str], rest: &[&str]) -> Output {
        run(self.barman(command, options, rest))
    }

    /// Our `barman-cloud-backup` of `cluster`, snapshotting `disks` (server `srv`).
    fn backup_ours(&self, cluster: &Cluster, disks: &[&str], extra: &[&str]) -> Output {
        let options = backup_options(cluster, self.world.instance_name(), disks, extra);
        self.run_ours("barman-cloud-backup", &strs(&options), &["srv"])
    }

    fn backup_barman(&self, cluster: &Cluster, disks: &[&str], extra: &[&str]) -> Output {
        let options = backup_options(cluster, self.world.instance_name(), disks, extra);
        self.run_barman("barman-cloud-backup", &strs(&options), &["srv"])
    }

    /// The only backup of `srv` (our list), which must be DONE.
    fn single_done_backup(&self) -> String {
        let ids = backup_ids(&self.dest);
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(ids[0].1, "DONE", "{ids:?}");
        ids[0].0.clone()
    }

    /// The tool calls made since `since` (a sequence number).
    fn calls_since(&self, since: u64) -> Vec<Call> {
        self.world
            .tool_calls()
            .into_iter()
            .filter(|c| c.seq > since)
            .collect()
    }

    /// The sequence number of the last recorded call concerning the world.
    fn last_seq(&self) -> u64 {
        self.world.calls().last().map_or(0, |c| c.seq)
    }
}

fn with_env(mut command: Command, env: &Env) -> Command {
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// barman-cloud-backup's options for a snapshot backup of `cluster` (either tool's).
fn backup_options(
    cluster: &Cluster,
    instance: &str,
    disks: &[&str],
    extra: &[&str],
) -> Vec<String> {
    let mut options = cluster.backup_options();
    options.extend(["--snapshot-instance".to_string(), instance.to_string()]);
    for disk in disks {
        options.extend(["--snapshot-disk".to_string(), disk.to_string()]);
    }
    options.extend(extra.iter().map(|s| s.to_string()));
    options
}

/// Object keys of the destination relative to its URL (`srv/base/...`).
fn keys(dest: &Destination) -> Vec<String> {
    dest.object_keys()
        .into_iter()
        .filter_map(|k| match dest.service {
            Service::S3 => k.strip_prefix("pg/").map(str::to_string),
            _ => Some(k),
        })
        .collect()
}

/// The keys of backup `id` (relative to `srv/base/<id>/`).
fn backup_keys(dest: &Destination, id: &str) -> Vec<String> {
    let prefix = format!("srv/base/{id}/");
    keys(dest)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// The content of object `key` (relative to the URL).
fn object(dest: &Destination, key: &str) -> Vec<u8> {
    match dest.service {
        Service::Local => std::fs::read(Path::new(&dest.bucket()).join(key))
            .unwrap_or_else(|e| panic!("{key}: {e}")),
        Service::S3 => {
            let code = "import os, sys, boto3\n\
                c = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT'])\n\
                sys.stdout.buffer.write(c.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())\n";
            let bucket = dest.bucket();
            let full = format!("pg/{key}");
            let out = dest
                .sdk_python(&["-c".as_ref(), code.as_ref()])
                .arg(&bucket)
                .arg(&full)
                .output()
                .unwrap();
            assert_success(&out, &format!("reading {full}"));
            out.stdout
        }
        other => panic!("object() on {other:?}"),
    }
}

fn object_text(dest: &Destination, key: &str) -> String {
    String::from_utf8(object(dest, key)).unwrap()
}

/// `key=value` of a backup.info text.
fn info_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

fn parse_info_time(text: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z")
        .unwrap_or_else(|e| panic!("time {text:?}: {e}"))
}

/// Seconds between begin_time and end_time of backup `id`: the time in backup mode.
fn backup_mode_seconds(dest: &Destination, id: &str) -> f64 {
    let info = object_text(dest, &format!("srv/base/{id}/backup.info"));
    let begin = parse_info_time(&info_field(&info, "begin_time").unwrap());
    let end = parse_info_time(&info_field(&info, "end_time").unwrap());
    (end - begin).num_milliseconds() as f64 / 1000.0
}

/// `barman-cloud-backup-show --format json` of ours: the backup's entry.
fn show_json(snap: &Snap, id: &str) -> Value {
    let out = snap.run_ours(
        "barman-cloud-backup-show",
        &["--format", "json"],
        &["srv", id],
    );
    assert_success(&out, "backup-show --format json");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    shown["srv"].clone()
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

/// show (console and JSON) and list (console and JSON) of both tools, all at once: the
/// same exit codes and standard outputs. Returns our show's console output.
fn assert_same_catalog_views(snap: &Snap, id: &str) -> String {
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
        commands.push(snap.ours(command, options, rest));
        commands.push(snap.barman(command, options, rest));
    }
    let outputs = run_all(commands);
    for (i, (command, options, _)) in views.iter().enumerate() {
        let (ours, barman) = (&outputs[2 * i], &outputs[2 * i + 1]);
        let what = format!("{command} {options:?}");
        assert_success(barman, &format!("Barman's {what}"));
        assert_same_exit(ours, barman, &what);
        assert_eq!(stdout(ours), stdout(barman), "{what}: outputs differ");
    }
    stdout(&outputs[0])
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

/// The snapshots of `volume_id` whose Name is `<disk>-<id lowercase>`.
fn snapshots_named(
    world: &Ec2World,
    volume: &Ec2Volume,
    disk: &str,
    id: &str,
) -> Vec<SnapshotInfo> {
    let name = format!("{disk}-{}", id.to_lowercase());
    world
        .snapshots_of_volume(&volume.id)
        .into_iter()
        .filter(|s| s.name() == Some(name.as_str()))
        .collect()
}

/// The only snapshot of `volume` (there must be exactly one).
fn only_snapshot(world: &Ec2World, volume: &Ec2Volume) -> SnapshotInfo {
    let snapshots = world.snapshots_of_volume(&volume.id);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    snapshots[0].clone()
}

/// `snapshots_info.snapshots[*].provider.<field>` of a shown backup.
fn snapshot_fields(shown: &Value, field: &str) -> Vec<String> {
    shown["snapshots_info"]["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("no snapshots in {shown}"))
        .iter()
        .map(|s| s["provider"][field].as_str().unwrap_or("None").to_string())
        .collect()
}

fn mount_points(shown: &Value) -> Vec<String> {
    shown["snapshots_info"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mount"]["mount_point"].as_str().unwrap().to_string())
        .collect()
}

/// The message of a failed command's first ERROR line, without Barman's `Barman cloud
/// <command> exception: ` prefix (ours has none): the text both tools must agree on.
fn error_message(out: &Output) -> String {
    let err = stderr(out);
    let start = err
        .find(" ERROR: ")
        .unwrap_or_else(|| panic!("no ERROR line in {err}"))
        + " ERROR: ".len();
    let line = err[start..].lines().next().unwrap_or_default();
    [
        "Barman cloud restore exception: ",
        "Barman cloud backup exception: ",
    ]
    .iter()
    .find_map(|p| line.strip_prefix(p))
    .unwrap_or(line)
    .to_string()
}

/// A cluster whose PGDATA (`<root>/data`) lies on `volume`, mounted at the cluster's root.
fn cluster_on(snap: &Snap, tag: &str, volume: &Ec2Volume) -> Cluster {
    let cluster = Cluster::initdb(tag);
    cluster.start();
    snap.mounts
        .mount(&volume.device, cluster.root.path(), DEFAULT_MOUNT_OPTIONS);
    cluster
}

// ---------------------------------------------------------------------------------------------
// 1. The whole cycle, one disk
// ---------------------------------------------------------------------------------------------

#[test]
fn full_cycle_one_disk() {
    let started = Instant::now();
    let snap = Snap::new("snapcycle", 1, 0, Service::S3);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snapcycle", &volume);
    source.psql("create table t as select generate_series(1, 1000) as i");
    let disk = source.root.path().display().to_string();

    // -- backup: the snapshot stays pending 3 s, backup mode must not last that long ------
    snap.world.set_pending_seconds(&volume.id, 3.0);
    let first = snap.last_seq();
    let began = Instant::now();
    let out = snap.backup_ours(
        &source,
        &[&volume.name],
        &[
            "--tag",
            "env,snaptest",
            "--tag",
            "team,dba",
            "--name",
            "cycle",
        ],
    );
    let took = began.elapsed();
    assert_success(&out, "our snapshot backup");
    let id = snap.single_done_backup();
    assert!(
        took >= Duration::from_secs(3),
        "the backup ended before its snapshot completed ({took:?})"
    );
    let in_backup_mode = backup_mode_seconds(&snap.dest, &id);
    assert!(
        in_backup_mode < 2.5,
        "{in_backup_mode} s in backup mode: it must end once CreateSnapshot has returned"
    );

    let snapshot = only_snapshot(&snap.world, &volume);
    let snapshot_name = format!("{}-{}", volume.name, id.to_lowercase());
    assert_eq!(snapshot.name(), Some(snapshot_name.as_str()));
    assert_eq!(snapshot.state, "completed");
    let expected_tags: BTreeMap<String, String> = [
        ("Name", snapshot_name.as_str()),
        ("env", "snaptest"),
        ("team", "dba"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(snapshot.tags, expected_tags);
    let calls = snap.calls_since(first);
    let creates: Vec<&Call> = calls
        .iter()
        .filter(|c| c.action == "CreateSnapshot")
        .collect();
    assert_eq!(creates.len(), 1, "{calls:#?}");
    let tag_params: Vec<(Option<&str>, Option<&str>)> = (1..=3)
        .map(|i| {
            (
                creates[0].param(&format!("TagSpecification.1.Tag.{i}.Key")),
                creates[0].param(&format!("TagSpecification.1.Tag.{i}.Value")),
            )
        })
        .collect();
    assert_eq!(
        tag_params,
        [
            (Some("Name"), Some(snapshot_name.as_str())),
            (Some("env"), Some("snaptest")),
            (Some("team"), Some("dba"))
        ],
        "the Name tag first, then the user's"
    );
    assert_eq!(
        creates[0].param("TagSpecification.1.ResourceType"),
        Some("snapshot")
    );
    assert_eq!(creates[0].param("VolumeId"), Some(volume.id.as_str()));
    assert!(calls.iter().all(|c| c.status == Some(200)), "{calls:#?}");

    // -- the catalog, as both tools show it ------------------------------------------------
    let shown_text = assert_same_catalog_views(&snap, &id);
    let block = format!(
        "  Snapshot information:
    provider             : aws
    account_id           : {}
    region               : us-east-1

    device_name          : /dev/sdf
    snapshot_id          : {}
    snapshot_lock_mode   : None
    snapshot_name        : {snapshot_name}
    Mount point          : {disk}
    Mount options        : rw,noatime

  Base backup information:
",
        snapshot.owner_id, snapshot.id
    );
    assert!(shown_text.contains(&block), "{shown_text}");
    let shown = show_json(&snap, &id);
    assert_eq!(
        shown["snapshots_info"],
        json!({
            "provider": "aws",
            "provider_info": {"account_id": snapshot.owner_id, "region": "us-east-1"},
            "snapshots": [{
                "mount": {"mount_options": "rw,noatime", "mount_point": disk},
                "provider": {
                    "device_name": "/dev/sdf",
                    "snapshot_id": snapshot.id,
                    "snapshot_name": snapshot_name,
                    "snapshot_lock_mode": null,
                },
            }],
        })
    );
    let label = label_of(&shown);
    assert!(
        label.contains(&format!("LABEL: Barman backup srv {id}\n")),
        "{label}"
    );

    // The label object, our manifest of it, and nothing else.
    assert_eq!(
        backup_keys(&snap.dest, &id),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );
    let label_object = object_text(&snap.dest, &format!("srv/base/{id}/backup_label"));
    assert_eq!(label_object, label);
    assert_eq!(
        object_text(&snap.dest, &format!("srv/base/{id}/barman-rs.manifest")),
        format!(
            "barman-rs integrity manifest 1\nsha256 {} {} backup_label\n",
            sha256_hex(label.as_bytes()),
            label.len()
        )
    );

    // The user tags are on the objects too, as Barman puts them on every upload.
    for name in ["backup.info", "backup_label", "barman-rs.manifest"] {
        let out = snap
            .dest
            .sdk_script("object_tags.py")
            .arg(snap.dest.bucket())
            .arg(format!("pg/srv/base/{id}/{name}"))
            .output()
            .unwrap();
        assert_success(&out, "object_tags.py");
        assert_eq!(
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
            json!({"env": "snaptest", "team": "dba"}),
            "{name}"
        );
    }

    // -- restore by both tools onto a recovery instance ------------------------------------
    source.pg_ctl("stop");
    let data = source.data();
    let before = file_names(&data);
    let recovery = snap
        .world
        .recovery_instance("snapcyclerec", &[(&snapshot.id, "/dev/sdk")]);
    let clone = recovery.volumes[0].clone();
    snap.mounts.unmount(&volume.device);
    snap.mounts
        .mount(&clone.device, source.root.path(), DEFAULT_MOUNT_OPTIONS);
    let mut expected = before.clone();
    expected.push("backup_label".into());
    expected.sort();
    let restore_options = ["--snapshot-recovery-instance", recovery.name.as_str()];
    let rest = ["srv", id.as_str(), data.to_str().unwrap()];
    for tool in ["Barman", "ours"] {
        let out = if tool == "ours" {
            snap.run_ours("barman-cloud-restore", &restore_options, &rest)
        } else {
            snap.run_barman("barman-cloud-restore", &restore_options, &rest)
        };
        assert_success(&out, &format!("{tool} snapshot restore"));
        assert_eq!(stdout(&out), "", "{tool}");
        assert_eq!(file_names(&data), expected, "{tool}: only backup_label");
        assert_eq!(
            std::fs::read_to_string(data.join("backup_label")).unwrap(),
            label,
            "{tool}"
        );
        std::fs::remove_file(data.join("backup_label")).unwrap();
    }

    // -- delete, by name --------------------------------------------------------------------
    let dry = run_all(vec![
        snap.ours(
            "barman-cloud-backup-delete",
            &["--dry-run"],
            &["srv", "-b", "cycle"],
        ),
        snap.barman(
            "barman-cloud-backup-delete",
            &["--dry-run"],
            &["srv", "-b", "cycle"],
        ),
    ]);
    assert_success(&dry[1], "Barman's dry run");
    assert_success(&dry[0], "our dry run");
    assert_eq!(stdout(&dry[0]), stdout(&dry[1]), "dry runs differ");
    assert_eq!(
        stdout(&dry[0]),
        format!(
            "Skipping deletion of snapshots due to --dry-run option\n\
             Skipping deletion of pg/srv/base/{id}/backup_label due to --dry-run option\n\
             Skipping deletion of objects ['pg/srv/base/{id}/backup.info'] due to --dry-run option\n"
        )
    );
    assert!(snap.world.snapshot(&snapshot.id).is_some());
    let last = snap.last_seq();
    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", "cycle"]);
    assert_success(&out, "our delete of the snapshot backup");
    assert_eq!(stdout(&out), "");
    assert!(
        snap.world.snapshot(&snapshot.id).is_none(),
        "snapshot not deleted"
    );
    assert_eq!(keys(&snap.dest), Vec::<String>::new(), "objects left");
    let actions: Vec<(String, Option<u16>)> = snap
        .calls_since(last)
        .into_iter()
        .map(|c| (c.action, c.status))
        .collect();
    assert_eq!(
        actions,
        [
            ("DescribeSnapshots".to_string(), Some(200)),
            ("DeleteSnapshot".to_string(), Some(200))
        ]
    );
    eprintln!("full_cycle_one_disk: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 2. Several disks
// ---------------------------------------------------------------------------------------------

/// Four disks, given out of attachment order: PGDATA on disk 0, a tablespace on disk 1. The
/// snapshots are created at once (each CreateSnapshot answers 1 s late) before any wait,
/// and recorded in the order given, as Barman records them; Barman shows the backup as we do.
#[test]
fn four_disks_snapshotted_at_once_in_the_order_given() {
    let started = Instant::now();
    let snap = Snap::new("snapdisks", 4, 4, Service::S3);
    let volumes: Vec<Ec2Volume> = snap.world.volumes().to_vec();
    let source = cluster_on(&snap, "snapdisks", &volumes[0]);
    for (i, volume) in volumes.iter().enumerate().skip(1) {
        snap.mounts
            .mount(&volume.device, &snap.mounts.disk(i), DEFAULT_MOUNT_OPTIONS);
    }
    source.psql(&format!(
        "create tablespace ts location '{}'",
        snap.mounts.disk(1).display()
    ));
    source.psql("create table tst tablespace ts as select generate_series(1, 100) as i");
    for volume in &volumes {
        snap.world.set_create_latency(&volume.id, 1.0);
    }

    // The instance by ID, disks 2 and 1 by volume ID, 0 and 3 by Name tag (3's in mixed
    // case, kept as given in the snapshot's name); disk 0 named twice counts once.
    let mixed_case = format!("PgData-{}", volumes[3].name);
    ec2_call(
        "create_tags",
        json!({"Resources": [volumes[3].id], "Tags": [{"Key": "Name", "Value": mixed_case}]}),
    )
    .unwrap();
    let order = [2usize, 0, 3, 1];
    let disks: Vec<&str> = order
        .iter()
        .map(|&i| match i {
            1 | 2 => volumes[i].id.as_str(),
            3 => mixed_case.as_str(),
            _ => volumes[i].name.as_str(),
        })
        .collect();
    let mut given = disks.clone();
    given.push(&volumes[0].name);
    let first = snap.last_seq();
    let options = backup_options(
        &source,
        snap.world.instance_id(),
        &given,
        &["--name", "four disks"],
    );
    let out = snap.run_ours("barman-cloud-backup", &strs(&options), &["srv"]);
    assert_success(&out, "our snapshot backup of four disks");
    let id = snap.single_done_backup();

    let mut snapshot_ids = Vec::new();
    for (&i, disk) in order.iter().zip(&disks) {
        let found = snapshots_named(&snap.world, &volumes[i], disk, &id);
        assert_eq!(found.len(), 1, "disk {i}: {found:?}");
        assert_eq!(snap.world.snapshots_of_volume(&volumes[i].id).len(), 1);
        snapshot_ids.push(found[0].id.clone());
    }

    // All created at once, all before the first wait.
    let calls = snap.calls_since(first);
    let creates: Vec<&Call> = calls
        .iter()
        .filter(|c| c.action == "CreateSnapshot")
        .collect();
    assert_eq!(creates.len(), 4, "{calls:#?}");
    let times: Vec<f64> = creates.iter().map(|c| c.time).collect();
    let spread = times.iter().cloned().fold(f64::MIN, f64::max)
        - times.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.9,
        "CreateSnapshot calls spread over {spread} s: not concurrent (each answers 1 s late)"
    );
    let first_describe = calls
        .iter()
        .find(|c| c.action == "DescribeSnapshots")
        .expect("a DescribeSnapshots");
    assert!(
        creates.iter().all(|c| c.seq < first_describe.seq),
        "{calls:#?}"
    );

    // Recorded in the order given.
    let shown = show_json(&snap, &id);
    assert_eq!(
        snapshot_fields(&shown, "device_name"),
        order.iter().map(|&i| DEVICES[i]).collect::<Vec<_>>()
    );
    assert_eq!(snapshot_fields(&shown, "snapshot_id"), snapshot_ids);
    assert_eq!(
        snapshot_fields(&shown, "snapshot_name"),
        disks
            .iter()
            .map(|disk| format!("{disk}-{}", id.to_lowercase()))
            .collect::<Vec<_>>()
    );
    assert_eq!(shown["backup_name"], "four disks");
    let disk_path = |i: usize| {
        if i == 0 {
            source.root.path().display().to_string()
        } else {
            snap.mounts.disk(i).display().to_string()
        }
    };
    assert_eq!(
        mount_points(&shown),
        order.iter().map(|&i| disk_path(i)).collect::<Vec<_>>()
    );
    assert_same_catalog_views(&snap, &id);

    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_success(&out, "our delete of the four-disk backup");
    for snapshot in &snapshot_ids {
        assert!(snap.world.snapshot(snapshot).is_none(), "{snapshot} kept");
    }
    assert_eq!(keys(&snap.dest), Vec::<String>::new());
    eprintln!("four_disks: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 3. Interoperability with Barman
// ---------------------------------------------------------------------------------------------

/// Restores `id` with `tool` ("ours" or "Barman") into `data`, through a recovery instance
/// whose volumes are clones of `snapshots` (snapshot ID, clone device, mount point); checks
/// that only `backup_label` was written, with `label`, and removes it.
/// With `swapped_first`, both tools first refuse the clones mounted at each other's
/// places, with the same message.
fn restore_through_clones(
    snap: &Snap,
    tool: &str,
    id: &str,
    snapshots: &[(&str, &str, &Path)],
    data: &Path,
    label: &str,
    swapped_first: bool,
) {
    let from: Vec<(&str, &str)> = snapshots.iter().map(|(s, d, _)| (*s, *d)).collect();
    let recovery = snap.world.recovery_instance("snaprec", &from);
    let before = file_names(data);
    assert!(!before.contains(&"backup_label".to_string()));
    let options = ["--snapshot-recovery-instance", recovery.name.as_str()];
    let rest = ["srv", id, data.to_str().unwrap()];
    if swapped_first {
        let n = snapshots.len();
        for (i, volume) in recovery.volumes.iter().enumerate() {
            let point = snapshots[(i + 1) % n].2;
            snap.mounts
                .mount(&volume.device, point, DEFAULT_MOUNT_OPTIONS);
        }
        let outputs = run_all(vec![
            snap.ours("barman-cloud-restore", &options, &rest),
            snap.barman("barman-cloud-restore", &options, &rest),
        ]);
        assert_exit(&outputs[0], 4, "ours, clones swapped");
        assert_exit(&outputs[1], 4, "Barman, clones swapped");
        let message = error_message(&outputs[1]);
        assert_eq!(error_message(&outputs[0]), message, "clones swapped");
        // One error per clone, in the order of the clones' volume IDs.
        let mut clones: Vec<(&Ec2Volume, usize)> = recovery.volumes.iter().zip(0..n).collect();
        clones.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let expected: Vec<String> = clones
            .iter()
            .map(|(volume, i)| {
                format!(
                    "Disk {} cloned from snapshot {} is mounted at {} but {} was expected.",
                    volume.id,
                    snapshots[*i].0,
                    snapshots[(i + 1) % n].2.display(),
                    snapshots[*i].2.display()
                )
            })
            .collect();
        assert_eq!(
            message,
            format!("Error checking mount points: {}", expected.join(", "))
        );
        assert_eq!(file_names(data), before, "a refused restore wrote");
    }
    for (volume, (_, _, point)) in recovery.volumes.iter().zip(snapshots) {
        snap.mounts
            .mount(&volume.device, point, DEFAULT_MOUNT_OPTIONS);
    }
    let out = if tool == "ours" {
        snap.run_ours("barman-cloud-restore", &options, &rest)
    } else {
        snap.run_barman("barman-cloud-restore", &options, &rest)
    };
    assert_success(&out, &format!("{tool} restore of {id}"));
    let mut expected = before;
    expected.push("backup_label".into());
    expected.sort();
    assert_eq!(file_names(data), expected, "{tool}: only backup_label");
    assert_eq!(
        std::fs::read_to_string(data.join("backup_label")).unwrap(),
        label,
        "{tool}"
    );
    std::fs::remove_file(data.join("backup_label")).unwrap();
}

/// Barman's snapshot backup (two disks, given in reverse attachment order): our list and
/// show print it as Barman does, our restore and delete work on it. Then our backup:
/// Barman's restore and delete work on it.
#[test]
fn interoperability_with_barman() {
    let started = Instant::now();
    let snap = Snap::new("snapinterop", 2, 2, Service::S3);
    let (vol0, vol1) = (snap.world.volume(0).clone(), snap.world.volume(1).clone());
    let source = cluster_on(&snap, "snapinterop", &vol0);
    snap.mounts
        .mount(&vol1.device, &snap.mounts.disk(1), DEFAULT_MOUNT_OPTIONS);
    source.psql(&format!(
        "create tablespace ts location '{}'",
        snap.mounts.disk(1).display()
    ));
    let root = source.root.path().to_path_buf();
    let disk1 = snap.mounts.disk(1);
    let data = source.data();

    // -- Barman's backup -------------------------------------------------------------------
    let out = snap.backup_barman(&source, &[&vol1.name, &vol0.name], &[]);
    assert_success(&out, "Barman's snapshot backup");
    let barman_id = snap.single_done_backup();
    let snap1 = only_snapshot(&snap.world, &vol1);
    let snap0 = only_snapshot(&snap.world, &vol0);
    let shown = show_json(&snap, &barman_id);
    assert_eq!(
        snapshot_fields(&shown, "snapshot_id"),
        [snap1.id.clone(), snap0.id.clone()],
        "Barman records the snapshots in the order given"
    );
    assert_same_catalog_views(&snap, &barman_id);
    assert_eq!(
        backup_keys(&snap.dest, &barman_id),
        ["backup.info", "backup_label"]
    );
    let label = object_text(&snap.dest, &format!("srv/base/{barman_id}/backup_label"));
    assert_eq!(label, label_of(&shown));

    // Our restore and delete of it.
    restore_through_clones(
        &snap,
        "ours",
        &barman_id,
        &[
            (&snap1.id, "/dev/sdk", &disk1),
            (&snap0.id, "/dev/sdl", &root),
        ],
        &data,
        &label,
        true,
    );
    let out = snap.run_ours(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &barman_id],
    );
    assert_success(&out, "our delete of Barman's snapshot backup");
    assert!(snap.world.snapshot(&snap0.id).is_none());
    assert!(snap.world.snapshot(&snap1.id).is_none());
    assert_eq!(keys(&snap.dest), Vec::<String>::new());

    // -- our backup ------------------------------------------------------------------------
    wait_past(&barman_id);
    let out = snap.backup_ours(&source, &[&vol0.name, &vol1.name], &[]);
    assert_success(&out, "our snapshot backup");
    let our_id = snap.single_done_backup();
    let snap0 = only_snapshot(&snap.world, &vol0);
    let snap1 = only_snapshot(&snap.world, &vol1);
    let label = object_text(&snap.dest, &format!("srv/base/{our_id}/backup_label"));
    restore_through_clones(
        &snap,
        "Barman",
        &our_id,
        &[
            (&snap0.id, "/dev/sdm", &root),
            (&snap1.id, "/dev/sdn", &disk1),
        ],
        &data,
        &label,
        false,
    );
    let out = snap.run_barman("barman-cloud-backup-delete", &[], &["srv", "-b", &our_id]);
    assert_success(&out, "Barman's delete of our snapshot backup");
    assert!(snap.world.snapshot(&snap0.id).is_none());
    assert!(snap.world.snapshot(&snap1.id).is_none());
    // Barman leaves our manifest (README), which both tools ignore.
    assert_eq!(backup_keys(&snap.dest, &our_id), ["barman-rs.manifest"]);
    let lists = run_all(vec![
        snap.ours("barman-cloud-backup-list", &[], &["srv"]),
        snap.barman("barman-cloud-backup-list", &[], &["srv"]),
    ]);
    assert_success(&lists[0], "our list");
    assert_success(&lists[1], "Barman's list");
    assert_eq!(stdout(&lists[0]), stdout(&lists[1]));
    assert!(backup_ids(&snap.dest).is_empty());
    eprintln!("interoperability: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 4. Failures
// ---------------------------------------------------------------------------------------------

/// One failing case run by both tools: the options after the cluster's, the mount table,
/// the exit code both must give and the text both must print (None: Barman's and ours are
/// checked separately by the caller).
struct Case {
    name: &'static str,
    options: Vec<String>,
    mounts: FakeMounts,
    exit: i32,
    /// Text in both tools' stderr.
    both_say: Vec<String>,
    /// Text in Barman's stderr only (its wording of a case ours words otherwise).
    barman_says: Vec<String>,
    /// Text in our stderr only.
    ours_say: Vec<String>,
}

/// Runs every case with both tools at once (`barman-cloud-backup` of `cluster` to `dest`)
/// and checks exit codes and messages.
fn run_backup_cases(world: &Ec2World, dest: &Destination, cluster: &Cluster, cases: &[Case]) {
    let mut commands = Vec::new();
    for case in cases {
        let mut options = cluster.backup_options();
        options.extend(case.options.iter().cloned());
        let mut env = world.env();
        env.extend(case.mounts.env());
        commands.push(with_env(
            ours_command(dest, "barman-cloud-backup", &strs(&options), &["srv"]),
            &env,
        ));
        commands.push(with_env(
            barman_command(dest, "barman-cloud-backup", &strs(&options), &["srv"]),
            &env,
        ));
    }
    let outputs = run_all(commands);
    for (i, case) in cases.iter().enumerate() {
        let (ours, barman) = (&outputs[2 * i], &outputs[2 * i + 1]);
        assert_exit(barman, case.exit, &format!("Barman, {}", case.name));
        assert_exit(ours, case.exit, &format!("ours, {}", case.name));
        for text in &case.both_say {
            assert_mentions(barman, text, &format!("Barman, {}", case.name));
            assert_mentions(ours, text, &format!("ours, {}", case.name));
        }
        if case.exit == 4 {
            assert_eq!(
                error_message(ours),
                error_message(barman),
                "{}: the messages differ",
                case.name
            );
        }
        for text in &case.barman_says {
            assert_mentions(barman, text, &format!("Barman, {}", case.name));
        }
        for text in &case.ours_say {
            assert_mentions(ours, text, &format!("ours, {}", case.name));
        }
    }
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The preconditions of a snapshot backup, both tools on the same EC2 and mount tables:
/// unknown instance (by Name and by a well-formed ID), unknown disk, a Name tag shared by
/// two instances (in two reservations, and in one), the root volume named as a disk, a disk
/// not mounted or mounted twice. Ours only: the same volume named twice. Nothing is created.
#[test]
fn preconditions_as_barman() {
    let started = Instant::now();
    let world = Ec2World::new("snappre", 1);
    let dest = Destination::create(Service::S3, "snappre");
    let volume = world.volume(0).clone();
    let cluster = Cluster::initdb("snappre");
    cluster.start();
    let mounted = || {
        let mounts = FakeMounts::new(0);
        mounts.mount(&volume.device, cluster.root.path(), DEFAULT_MOUNT_OPTIONS);
        mounts
    };
    let instance = world.instance_name().to_string();
    let disk = volume.name.clone();
    let target = |instance: &str, disks: &[&str]| {
        let mut options = owned(&["--snapshot-instance", instance]);
        for disk in disks {
            options.extend(owned(&["--snapshot-disk", disk]));
        }
        options
    };
    let unknown_name = unique_name("nosuchinstance");
    let unknown_id = "i-0123456789abcdef0";
    let twins = unique_name("snaptwins");
    world.instances_named(&twins, 1);
    world.instances_named(&twins, 1);
    let triplets = unique_name("snaptriplets");
    world.instances_named(&triplets, 2);
    let root_volume = world.root_volume(world.instance_id());
    let unknown_disk = unique_name("nosuchdisk");
    let twice = FakeMounts::new(1);
    twice.mount(&volume.device, cluster.root.path(), DEFAULT_MOUNT_OPTIONS);
    twice.add_line(&volume.device, &twice.disk(0), DEFAULT_MOUNT_OPTIONS);

    let cases = vec![
        Case {
            name: "unknown instance Name",
            options: target(&unknown_name, &[&disk]),
            mounts: mounted(),
            exit: 4,
            both_say: vec![format!("Cannot find compute instance {unknown_name}\n")],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "unknown instance ID",
            options: target(unknown_id, &[&disk]),
            mounts: mounted(),
            exit: 4,
            both_say: vec!["InvalidInstanceID.NotFound".into(), unknown_id.into()],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "unknown disk",
            options: target(&instance, &[&disk, &unknown_disk]),
            mounts: mounted(),
            exit: 4,
            both_say: vec![format!(
                "Cannot find disks attached to compute instance {instance}: {unknown_disk}\n"
            )],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "Name of instances in two reservations",
            options: target(&twins, &[&disk]),
            mounts: mounted(),
            exit: 4,
            both_say: vec![format!(
                "Cannot find a unique EC2 reservation containing instance {twins}\n"
            )],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "Name of two instances of one reservation",
            options: target(&triplets, &[&disk]),
            mounts: mounted(),
            exit: 4,
            both_say: vec![format!(
                "Cannot find a unique EC2 instance matching {triplets}\n"
            )],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "root volume",
            options: target(&instance, &[&root_volume]),
            mounts: mounted(),
            exit: 4,
            both_say: vec![format!(
                "Cannot find disks attached to compute instance {instance}: {root_volume}\n"
            )],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "disk not mounted",
            options: target(&instance, &[&disk]),
            mounts: FakeMounts::new(0),
            exit: 4,
            both_say: vec![
                "Error resolving mount point: Could not find device /dev/sdf at any mount point\n"
                    .into(),
                format!("Cannot find disks mounted on compute instance {instance}: {disk}\n"),
            ],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "disk mounted twice",
            options: target(&instance, &[&disk]),
            mounts: twice,
            exit: 4,
            both_say: vec![
                "Error resolving mount point: Error finding mount point for device path /dev/sdf: Unexpected findmnt output: ".into(),
                format!("Cannot find disks mounted on compute instance {instance}: {disk}\n"),
            ],
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "disks without instance",
            options: owned(&["--snapshot-disk", &disk]),
            mounts: mounted(),
            exit: 4,
            both_say: owned(&[
                "Incomplete options for snapshot backup - missing: snapshot_instance\n",
            ]),
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "instance without disks",
            options: owned(&["--snapshot-instance", &instance]),
            mounts: mounted(),
            exit: 4,
            both_say: owned(&["Incomplete options for snapshot backup - missing: snapshot_disks\n"]),
            barman_says: vec![],
            ours_say: vec![],
        },
        Case {
            name: "compression",
            options: {
                let mut options = target(&instance, &[&disk]);
                options.push("--gzip".into());
                options
            },
            mounts: mounted(),
            exit: 4,
            both_say: owned(&["Compression options cannot be used with snapshot backups\n"]),
            barman_says: vec![],
            ours_say: vec![],
        },
    ];
    run_backup_cases(&world, &dest, &cluster, &cases);

    // Ours only: the same volume by Name and by ID (Barman snapshots it twice).
    let mounts = mounted();
    let mut env = world.env();
    env.extend(mounts.env());
    let mut options = cluster.backup_options();
    options.extend(target(&instance, &[&disk, &volume.id]));
    let out = run(with_env(
        ours_command(&dest, "barman-cloud-backup", &strs(&options), &["srv"]),
        &env,
    ));
    assert_exit(&out, 4, "ours, the same volume twice");
    assert_mentions(
        &out,
        &format!(
            "Disks {disk} and {} are the same volume {}",
            volume.id, volume.id
        ),
        "ours, the same volume twice",
    );

    assert!(world.snapshots_of_volume(&volume.id).is_empty());
    assert!(
        !world.tool_actions().iter().any(|a| a == "CreateSnapshot"),
        "{:?}",
        world.tool_actions()
    );
    assert!(backup_ids(&dest).is_empty(), "{:?}", backup_ids(&dest));
    eprintln!("preconditions: {:?}", started.elapsed());
}

/// Ours only (Barman takes a backup that silently misses them): PGDATA and every
/// tablespace, symbolic links resolved, must be on a listed disk; otherwise exit 4 naming
/// the path, before backup mode (no snapshot, no backup.info). Listing both disks then
/// succeeds, on a `file://` destination, and our delete removes it all.
#[test]
fn data_outside_the_listed_disks_is_refused() {
    let started = Instant::now();
    let snap = Snap::new("snapdata", 2, 1, Service::Local);
    let (vol0, vol1) = (snap.world.volume(0).clone(), snap.world.volume(1).clone());
    // PGDATA on vol1 (the cluster's root), an empty disk 0 on vol0.
    let source = cluster_on(&snap, "snapdata", &vol1);
    let disk0 = snap.mounts.disk(0);
    snap.mounts
        .mount(&vol0.device, &disk0, DEFAULT_MOUNT_OPTIONS);
    let data = source.data().display().to_string();
    let refused = |disks: &[&str], path: &str, what: &str| {
        let out = snap.backup_ours(&source, disks, &[]);
        assert_exit(&out, 4, what);
        assert_mentions(
            &out,
            &format!("{what} ({path}) is on the filesystem mounted at"),
            what,
        );
        assert!(
            snap.world.snapshots_of_volume(&vol0.id).is_empty(),
            "{what}"
        );
        assert!(
            snap.world.snapshots_of_volume(&vol1.id).is_empty(),
            "{what}"
        );
        assert_eq!(keys(&snap.dest), Vec::<String>::new(), "{what}");
    };

    // PGDATA on the disk not listed.
    refused(&[&vol0.name], &data, "PGDATA");
    // A tablespace on the disk not listed.
    source.psql(&format!(
        "create tablespace ts1 location '{}'",
        disk0.display()
    ));
    refused(
        &[&vol1.name],
        &disk0.display().to_string(),
        "tablespace ts1",
    );
    // A tablespace whose location, on the listed disk, is a link to the other one.
    source.psql("drop tablespace ts1");
    let real = disk0.join("real");
    std::fs::create_dir(&real).unwrap();
    chown_postgres(&real);
    let link = source.root.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    source.psql(&format!(
        "create tablespace ts2 location '{}'",
        link.display()
    ));
    source.psql("create table t2 tablespace ts2 as select 1 as i");
    refused(&[&vol1.name], &link.display().to_string(), "tablespace ts2");
    assert!(
        !snap
            .world
            .tool_actions()
            .iter()
            .any(|a| a == "CreateSnapshot"),
        "{:?}",
        snap.world.tool_actions()
    );

    // Both disks listed: a backup, to a file:// destination.
    let out = snap.backup_ours(&source, &[&vol1.name, &vol0.name], &[]);
    assert_success(&out, "our snapshot backup of both disks");
    let id = snap.single_done_backup();
    let snap0 = only_snapshot(&snap.world, &vol0);
    let snap1 = only_snapshot(&snap.world, &vol1);
    let shown = show_json(&snap, &id);
    assert_eq!(
        snapshot_fields(&shown, "snapshot_id"),
        [snap1.id.clone(), snap0.id.clone()]
    );
    assert_eq!(
        backup_keys(&snap.dest, &id),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );
    assert_eq!(
        object_text(&snap.dest, &format!("srv/base/{id}/backup_label")),
        label_of(&shown)
    );
    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_success(&out, "our delete on file://");
    assert!(snap.world.snapshot(&snap0.id).is_none());
    assert!(snap.world.snapshot(&snap1.id).is_none());
    assert_eq!(keys(&snap.dest), Vec::<String>::new());
    eprintln!("data outside: {:?}", started.elapsed());
}

/// A snapshot in state error, the wait timing out, and CreateSnapshot failing for the
/// second of two disks: both tools exit 1 with a FAILED backup.info; ours deletes every
/// snapshot it made (Barman leaves them). Each tool has its own EC2 world (same injections)
/// and bucket; both back up the same cluster at once.
#[test]
fn failed_snapshots_are_deleted() {
    let started = Instant::now();
    let ours = Snap::new("snapfailours", 2, 1, Service::S3);
    let theirs = Snap::new("snapfailbarman", 2, 1, Service::S3);
    let cluster = Cluster::initdb("snapfail");
    cluster.start();
    for side in [&ours, &theirs] {
        side.mounts.mount(
            &side.world.volume(0).device,
            cluster.root.path(),
            DEFAULT_MOUNT_OPTIONS,
        );
        side.mounts.mount(
            &side.world.volume(1).device,
            &side.mounts.disk(0),
            DEFAULT_MOUNT_OPTIONS,
        );
    }
    // Runs both backups at once with `disks` (indexes) and `extra`; returns (ours, Barman's)
    // and the ID of the newest backup of each.
    let both = |disks: &[usize], extra: &[&str]| {
        let options = |side: &Snap| {
            let names: Vec<&str> = disks
                .iter()
                .map(|&i| side.world.volume(i).name.as_str())
                .collect();
            backup_options(&cluster, side.world.instance_name(), &names, extra)
        };
        let (our_options, their_options) = (options(&ours), options(&theirs));
        let outputs = run_all(vec![
            ours.ours("barman-cloud-backup", &strs(&our_options), &["srv"]),
            theirs.barman("barman-cloud-backup", &strs(&their_options), &["srv"]),
        ]);
        let newest = |side: &Snap| {
            let ids = backup_ids(&side.dest);
            let (id, status) = ids.last().cloned().expect("a backup.info");
            assert_eq!(status, "FAILED", "{ids:?}");
            id
        };
        let ids = (newest(&ours), newest(&theirs));
        (outputs, ids)
    };
    let failure_of = |side: &Snap, id: &str| {
        let shown = show_json(side, id);
        let error = shown["error"].as_str().unwrap_or_default().to_string();
        assert!(error.starts_with("failure uploading data ("), "{error}");
        (error, shown)
    };

    // -- a snapshot in state error ---------------------------------------------------------
    for side in [&ours, &theirs] {
        side.world
            .set_snapshot_state(&side.world.volume(0).id, Some("error"));
    }
    let (outputs, (our_id, their_id)) = both(&[0], &[]);
    assert_exit(&outputs[0], 1, "ours, snapshot in error");
    assert_exit(&outputs[1], 1, "Barman, snapshot in error");
    let created: Vec<String> = ours
        .world
        .tool_calls()
        .iter()
        .filter(|c| c.action == "CreateSnapshot")
        .flat_map(|c| {
            c.resources
                .iter()
                .filter(|r| r.starts_with("snap-"))
                .cloned()
        })
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let (error, shown) = failure_of(&ours, &our_id);
    assert!(error.contains(&created[0]), "{error}");
    assert!(shown["snapshots_info"].is_null(), "{shown}");
    assert!(
        ours.world
            .snapshots_of_volume(&ours.world.volume(0).id)
            .is_empty()
    );
    failure_of(&theirs, &their_id);
    let left = only_snapshot(&theirs.world, theirs.world.volume(0));
    assert_eq!(left.state, "error", "Barman leaves the snapshot in error");
    for side in [&ours, &theirs] {
        side.world
            .set_snapshot_state(&side.world.volume(0).id, None);
    }
    theirs.world.delete_snapshot(&left.id).unwrap();

    // -- the wait times out ----------------------------------------------------------------
    for side in [&ours, &theirs] {
        side.world
            .set_pending_seconds(&side.world.volume(0).id, 5.0);
    }
    let (outputs, (our_id, their_id)) = both(&[0], &["--aws-await-snapshots-timeout", "1"]);
    assert_exit(&outputs[0], 1, "ours, timeout");
    assert_exit(&outputs[1], 1, "Barman, timeout");
    let (error, _) = failure_of(&ours, &our_id);
    assert!(error.contains("not completed within 1 seconds"), "{error}");
    assert!(
        ours.world
            .snapshots_of_volume(&ours.world.volume(0).id)
            .is_empty()
    );
    failure_of(&theirs, &their_id);
    let left = only_snapshot(&theirs.world, theirs.world.volume(0));
    for side in [&ours, &theirs] {
        side.world
            .set_pending_seconds(&side.world.volume(0).id, 0.0);
    }
    theirs.world.delete_snapshot(&left.id).unwrap();

    // -- CreateSnapshot fails for the second disk -------------------------------------------
    for side in [&ours, &theirs] {
        side.world
            .set_create_error(&side.world.volume(1).id, Some("IncorrectState"));
    }
    let first = ours.last_seq();
    let (outputs, (our_id, their_id)) = both(&[0, 1], &[]);
    assert_exit(&outputs[0], 1, "ours, CreateSnapshot error");
    assert_exit(&outputs[1], 1, "Barman, CreateSnapshot error");
    let (error, _) = failure_of(&ours, &our_id);
    assert!(error.contains("IncorrectState"), "{error}");
    assert!(
        ours.world
            .snapshots_of_volume(&ours.world.volume(0).id)
            .is_empty()
    );
    assert!(
        ours.world
            .snapshots_of_volume(&ours.world.volume(1).id)
            .is_empty()
    );
    let deleted: Vec<Option<u16>> = ours
        .calls_since(first)
        .iter()
        .filter(|c| c.action == "DeleteSnapshot")
        .map(|c| c.status)
        .collect();
    assert_eq!(deleted, [Some(200)], "the first disk's snapshot is deleted");
    failure_of(&theirs, &their_id);
    let left = only_snapshot(&theirs.world, theirs.world.volume(0));
    assert!(
        theirs
            .world
            .snapshots_of_volume(&theirs.world.volume(1).id)
            .is_empty()
    );
    theirs.world.delete_snapshot(&left.id).unwrap();
    for side in [&ours, &theirs] {
        side.world.set_create_error(&side.world.volume(1).id, None);
    }
    assert_eq!(backup_ids(&ours.dest).len(), 3);
    // Our FAILED backups, as both tools show them.
    let views = run_all(vec![
        ours.ours(
            "barman-cloud-backup-show",
            &["--format", "json"],
            &["srv", &our_id],
        ),
        ours.barman(
            "barman-cloud-backup-show",
            &["--format", "json"],
            &["srv", &our_id],
        ),
        ours.ours("barman-cloud-backup-show", &[], &["srv", &our_id]),
        ours.barman("barman-cloud-backup-show", &[], &["srv", &our_id]),
        ours.ours("barman-cloud-backup-list", &[], &["srv"]),
        ours.barman("barman-cloud-backup-list", &[], &["srv"]),
    ]);
    for pair in views.chunks(2) {
        assert_success(&pair[1], "Barman's view of our FAILED backups");
        assert_same_exit(&pair[0], &pair[1], "views of FAILED backups");
        assert_eq!(
            stdout(&pair[0]),
            stdout(&pair[1]),
            "views of FAILED backups differ"
        );
    }

    // -- a lock AWS refuses (a mode without duration nor date): ours locks only complete
    // snapshots, and deletes this one; Barman leaves it ------------------------------------
    let (outputs, (our_id, their_id)) = both(&[0], &["--aws-snapshot-lock-mode", "governance"]);
    assert_exit(&outputs[0], 1, "ours, lock refused");
    assert_exit(&outputs[1], 1, "Barman, lock refused");
    let (error, _) = failure_of(&ours, &our_id);
    assert!(error.contains("MissingParameter"), "{error}");
    assert!(
        ours.world
            .snapshots_of_volume(&ours.world.volume(0).id)
            .is_empty()
    );
    failure_of(&theirs, &their_id);
    let left = only_snapshot(&theirs.world, theirs.world.volume(0));
    assert!(theirs.world.lock_of(&left.id).is_none());
    let lock_failure_output = outputs[0].clone();
    theirs.world.delete_snapshot(&left.id).unwrap();

    // -- a missing bucket: nothing is snapshotted, by either ---------------------------------
    let options = |side: &Snap| {
        let disks = [side.world.volume(0).name.as_str()];
        backup_options(&cluster, side.world.instance_name(), &disks, &[])
    };
    let (our_options, their_options) = (options(&ours), options(&theirs));
    let nowhere = Destination::new(Service::S3, "snapnobucket");
    let outputs = run_all(vec![
        with_env(
            ours_command(
                &nowhere,
                "barman-cloud-backup",
                &strs(&our_options),
                &["srv"],
            ),
            &ours.env,
        ),
        with_env(
            barman_command(
                &nowhere,
                "barman-cloud-backup",
                &strs(&their_options),
                &["srv"],
            ),
            &theirs.env,
        ),
    ]);
    for (out, side, tool) in [
        (&outputs[0], &ours, "ours"),
        (&outputs[1], &theirs, "Barman"),
    ] {
        assert_exit(out, 1, &format!("{tool}, missing bucket"));
        assert_mentions(out, "NoSuchBucket", &format!("{tool}, missing bucket"));
        assert!(
            side.world
                .snapshots_of_volume(&side.world.volume(0).id)
                .is_empty()
        );
    }

    // Barman logs the failure once (`ERROR: Backup failed uploading data (...)`).
    let reported = stderr(&lock_failure_output)
        .matches("ERROR: Backup failed uploading data (")
        .count();
    assert_eq!(
        reported,
        1,
        "ours, lock refused: the failure is logged {reported} times\n{}",
        stderr(&lock_failure_output)
    );
    eprintln!("failed snapshots: {:?}", started.elapsed());
}

/// Lock options refused as Barman refuses them (exit codes; messages where Barman prints
/// one of its own); locks applied once the snapshots are complete, with the options given;
/// backup-show as Barman's; a locked snapshot stops our delete (exit 1, Barman's message,
/// the backup kept whole), and once unlocked the delete succeeds.
#[test]
fn locks() {
    let started = Instant::now();
    let snap = Snap::new("snaplock", 1, 0, Service::S3);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snaplock", &volume);
    let instance = snap.world.instance_name().to_string();
    let expiration = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string();

    // -- option validation, both tools -----------------------------------------------------
    let lock_cases: Vec<(&str, Vec<&str>, i32, Vec<&str>)> = vec![
        (
            "governance with a cool-off period",
            vec![
                "--aws-snapshot-lock-mode",
                "governance",
                "--aws-snapshot-lock-cool-off-period",
                "1",
                "--aws-snapshot-lock-duration",
                "1",
            ],
            4,
            vec![
                "'aws_snapshot_lock_mode' = 'governance' cannot be used with 'aws_snapshot_lock_cool_off_period'",
            ],
        ),
        (
            "duration and expiration date",
            vec![
                "--aws-snapshot-lock-mode",
                "compliance",
                "--aws-snapshot-lock-duration",
                "1",
                "--aws-snapshot-lock-expiration-date",
                &expiration,
            ],
            3,
            vec![
                "--aws-snapshot-lock-duration",
                "--aws-snapshot-lock-expiration-date",
            ],
        ),
        (
            "expiration date without fractional seconds",
            vec![
                "--aws-snapshot-lock-mode",
                "compliance",
                "--aws-snapshot-lock-expiration-date",
                "2030-01-01T00:00:00Z",
            ],
            3,
            vec!["--aws-snapshot-lock-expiration-date"],
        ),
        (
            "expiration date without time",
            vec![
                "--aws-snapshot-lock-mode",
                "compliance",
                "--aws-snapshot-lock-expiration-date",
                "2030-01-01",
            ],
            3,
            vec!["--aws-snapshot-lock-expiration-date"],
        ),
        (
            "duration 0",
            vec![
                "--aws-snapshot-lock-mode",
                "governance",
                "--aws-snapshot-lock-duration",
                "0",
            ],
            3,
            vec!["--aws-snapshot-lock-duration"],
        ),
        (
            "duration 36501",
            vec![
                "--aws-snapshot-lock-mode",
                "governance",
                "--aws-snapshot-lock-duration",
                "36501",
            ],
            3,
            vec!["--aws-snapshot-lock-duration"],
        ),
        (
            "cool-off 73",
            vec![
                "--aws-snapshot-lock-mode",
                "compliance",
                "--aws-snapshot-lock-cool-off-period",
                "73",
                "--aws-snapshot-lock-duration",
                "1",
            ],
            3,
            vec!["--aws-snapshot-lock-cool-off-period"],
        ),
        (
            "cool-off 0",
            vec![
                "--aws-snapshot-lock-mode",
                "compliance",
                "--aws-snapshot-lock-cool-off-period",
                "0",
                "--aws-snapshot-lock-duration",
                "1",
            ],
            3,
            vec!["--aws-snapshot-lock-cool-off-period"],
        ),
        (
            "unknown mode",
            vec![
                "--aws-snapshot-lock-mode",
                "strict",
                "--aws-snapshot-lock-duration",
                "1",
            ],
            3,
            vec!["--aws-snapshot-lock-mode"],
        ),
    ];
    let cases: Vec<Case> = lock_cases
        .into_iter()
        .map(|(name, lock, exit, texts)| {
            let mut options = owned(&[
                "--snapshot-instance",
                &instance,
                "--snapshot-disk",
                &volume.name,
            ]);
            options.extend(owned(&lock));
            let mounts = FakeMounts::new(0);
            mounts.mount(&volume.device, source.root.path(), DEFAULT_MOUNT_OPTIONS);
            Case {
                name,
                options,
                mounts,
                exit,
                both_say: owned(&texts),
                barman_says: vec![],
                ours_say: vec![],
            }
        })
        .collect();
    run_backup_cases(&snap.world, &snap.dest, &source, &cases);
    assert!(
        snap.world.tool_actions().is_empty(),
        "{:?}",
        snap.world.tool_actions()
    );
    assert!(backup_ids(&snap.dest).is_empty());

    // -- compliance, with a cool-off period and an expiration date -------------------------
    snap.world.set_pending_seconds(&volume.id, 2.0);
    let first = snap.last_seq();
    let out = snap.backup_ours(
        &source,
        &[&volume.name],
        &[
            "--aws-snapshot-lock-mode",
            "compliance",
            "--aws-snapshot-lock-cool-off-period",
            "1",
            "--aws-snapshot-lock-expiration-date",
            &expiration,
        ],
    );
    assert_success(&out, "our backup with a compliance lock");
    let compliance_id = snap.single_done_backup();
    let compliance_snapshot = only_snapshot(&snap.world, &volume).id;
    let calls = snap.calls_since(first);
    let create = calls.iter().find(|c| c.action == "CreateSnapshot").unwrap();
    let locks: Vec<&Call> = calls
        .iter()
        .filter(|c| c.action == "LockSnapshot")
        .collect();
    assert_eq!(locks.len(), 1, "{calls:#?}");
    let lock = locks[0];
    assert_eq!(lock.status, Some(200));
    assert!(
        lock.time - create.time >= 2.0,
        "locked {} s after the creation, before the snapshot completed",
        lock.time - create.time
    );
    let mut params = lock.params.clone();
    let sent_expiration = params.remove("ExpirationDate").expect("ExpirationDate");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&sent_expiration).unwrap(),
        chrono::DateTime::parse_from_rfc3339(&expiration).unwrap()
    );
    assert_eq!(
        params,
        [
            ("Action", "LockSnapshot"),
            ("CoolOffPeriod", "1"),
            ("LockMode", "compliance"),
            ("SnapshotId", compliance_snapshot.as_str()),
            ("Version", "2016-11-15"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
    let held = snap.world.lock_of(&compliance_snapshot).expect("locked");
    assert_eq!(
        (&held["lockMode"], &held["lockState"]),
        (&json!("compliance"), &json!("compliance-cooloff"))
    );
    let shown = assert_same_catalog_views(&snap, &compliance_id);
    assert!(
        shown.contains("    snapshot_lock_mode   : compliance\n"),
        "{shown}"
    );
    snap.world.set_pending_seconds(&volume.id, 0.0);

    // -- governance, with a duration -------------------------------------------------------
    let first = snap.last_seq();
    let out = snap.backup_ours(
        &source,
        &[&volume.name],
        &[
            "--aws-snapshot-lock-mode",
            "governance",
            "--aws-snapshot-lock-duration",
            "1",
        ],
    );
    assert_success(&out, "our backup with a governance lock");
    let ids = backup_ids(&snap.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let governance_id = ids[1].0.clone();
    let governance_snapshot = snapshots_named(&snap.world, &volume, &volume.name, &governance_id)
        .pop()
        .expect("the governance backup's snapshot")
        .id;
    let locks: Vec<Call> = snap
        .calls_since(first)
        .into_iter()
        .filter(|c| c.action == "LockSnapshot")
        .collect();
    assert_eq!(locks.len(), 1);
    assert_eq!(
        locks[0].params,
        [
            ("Action", "LockSnapshot"),
            ("LockDuration", "1"),
            ("LockMode", "governance"),
            ("SnapshotId", governance_snapshot.as_str()),
            ("Version", "2016-11-15"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
    let shown = assert_same_catalog_views(&snap, &governance_id);
    assert!(
        shown.contains("    snapshot_lock_mode   : governance\n"),
        "{shown}"
    );

    // -- a locked snapshot stops the deletion, with Barman's message -------------------------
    let intact = |what: &str| {
        assert!(
            snap.world.snapshot(&compliance_snapshot).is_some(),
            "{what}"
        );
        assert_eq!(
            backup_keys(&snap.dest, &compliance_id),
            ["backup.info", "backup_label", "barman-rs.manifest"],
            "{what}"
        );
        assert!(
            backup_ids(&snap.dest).contains(&(compliance_id.clone(), "DONE".to_string())),
            "{what}: {:?}",
            backup_ids(&snap.dest)
        );
    };
    let locked_text = format!("Locked snapshot: {compliance_snapshot}.\n{LOCK_ADVICE}\n");
    let out = snap.run_ours(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &compliance_id],
    );
    assert_exit(&out, 1, "our delete of a locked snapshot");
    assert_mentions(&out, &locked_text, "our delete of a locked snapshot");
    intact("after our delete");
    let out = snap.run_barman(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &compliance_id],
    );
    assert_exit(&out, 1, "Barman's delete of a locked snapshot");
    assert_mentions(&out, &locked_text, "Barman's delete of a locked snapshot");
    intact("after Barman's delete");

    // Unlocked (possible during the cool-off period), it goes.
    snap.world.unlock_snapshot(&compliance_snapshot).unwrap();
    let out = snap.run_ours(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &compliance_id],
    );
    assert_success(&out, "our delete once unlocked");
    assert!(snap.world.snapshot(&compliance_snapshot).is_none());
    assert_eq!(
        backup_keys(&snap.dest, &compliance_id),
        Vec::<String>::new()
    );
    assert_eq!(
        backup_ids(&snap.dest),
        [(governance_id.clone(), "DONE".to_string())]
    );
    assert!(snap.world.snapshot(&governance_snapshot).is_some());
    eprintln!("locks: {:?}", started.elapsed());
}

/// The second snapshot of a two-disk backup renamed: our delete refuses with Barman's
/// message (exit 4) before deleting anything, and so does our dry run; Barman refuses too,
/// but only after deleting the first snapshot. Named back, our delete finishes the job.
#[test]
fn renamed_snapshot_refuses_deletion() {
    let started = Instant::now();
    let snap = Snap::new("snaprename", 2, 1, Service::S3);
    let (vol0, vol1) = (snap.world.volume(0).clone(), snap.world.volume(1).clone());
    let source = cluster_on(&snap, "snaprename", &vol0);
    snap.mounts
        .mount(&vol1.device, &snap.mounts.disk(0), DEFAULT_MOUNT_OPTIONS);
    let out = snap.backup_ours(&source, &[&vol0.name, &vol1.name], &[]);
    assert_success(&out, "our snapshot backup");
    let id = snap.single_done_backup();
    let snap0 = only_snapshot(&snap.world, &vol0);
    let snap1 = only_snapshot(&snap.world, &vol1);
    let rename = |snapshot: &str, name: &str| {
        ec2_call(
            "create_tags",
            json!({"Resources": [snapshot], "Tags": [{"Key": "Name", "Value": name}]}),
        )
        .unwrap();
    };
    rename(&snap1.id, "somebody-elses-snapshot");
    let refusal = format!(
        "Refusing to delete snapshot {}: it is not recognized as a snapshot created for backup {id}\n",
        snap1.id
    );
    let all_there = |what: &str, first_too: bool| {
        assert_eq!(
            snap.world.snapshot(&snap0.id).is_some(),
            first_too,
            "{what}"
        );
        assert!(snap.world.snapshot(&snap1.id).is_some(), "{what}");
        assert_eq!(
            backup_keys(&snap.dest, &id),
            ["backup.info", "backup_label", "barman-rs.manifest"],
            "{what}"
        );
        assert_eq!(
            backup_ids(&snap.dest),
            [(id.clone(), "DONE".to_string())],
            "{what}"
        );
    };

    let outputs = run_all(vec![
        snap.ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]),
        snap.ours(
            "barman-cloud-backup-delete",
            &["--dry-run"],
            &["srv", "-b", &id],
        ),
        snap.barman(
            "barman-cloud-backup-delete",
            &["--dry-run"],
            &["srv", "-b", &id],
        ),
    ]);
    // Barman's dry run never asks EC2 (README: ours reports the refusal as the run would).
    assert_success(&outputs[2], "Barman's dry run");
    assert!(
        stdout(&outputs[2]).starts_with("Skipping deletion of snapshots due to --dry-run option\n"),
        "{}",
        stdout(&outputs[2])
    );
    for (out, what) in outputs.iter().zip(["our delete", "our dry run"]) {
        assert_exit(out, 4, what);
        assert_mentions(out, &refusal, what);
        assert_eq!(stdout(out), "", "{what}: no plan printed");
    }
    all_there("after our delete and dry run", true);
    assert!(
        !snap
            .world
            .tool_actions()
            .iter()
            .any(|a| a == "DeleteSnapshot"),
        "{:?}",
        snap.world.tool_actions()
    );

    // Barman: the same refusal, after deleting the first snapshot.
    let out = snap.run_barman("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_exit(&out, 4, "Barman's delete");
    assert_mentions(&out, &refusal, "Barman's delete");
    all_there("after Barman's delete", false);

    // Named back: our delete deletes what is left.
    rename(&snap1.id, &format!("{}-{}", vol1.name, id.to_lowercase()));
    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_success(&out, "our delete once named back");
    assert!(snap.world.snapshot(&snap1.id).is_none());
    assert_eq!(keys(&snap.dest), Vec::<String>::new());
    eprintln!("renamed: {:?}", started.elapsed());
}

/// One restore both tools run: options, arguments after the URL, mount table, what both
/// must say and what neither may.
struct RestoreCase {
    name: &'static str,
    options: Vec<String>,
    rest: Vec<String>,
    mounts: FakeMounts,
    exit: i32,
    both_say: Vec<String>,
    neither_says: Vec<String>,
}

/// Restores of our snapshot backup that must fail, each run by both tools at once: the
/// recovery instance missing, unknown, or without a clone of the snapshot; the clone
/// unmounted, mounted elsewhere, with other options (or both: mount points are reported
/// alone, as Barman does); the destination missing or a file; a tablespace rule. Nothing
/// is written. Then the restore that must work does, with both.
#[test]
fn restore_failures_as_barman() {
    let started = Instant::now();
    let snap = Snap::new("snaprestore", 1, 1, Service::S3);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snaprestore", &volume);
    let out = snap.backup_ours(&source, &[&volume.name], &[]);
    assert_success(&out, "our snapshot backup");
    let id = snap.single_done_backup();
    let snapshot = only_snapshot(&snap.world, &volume).id;
    source.pg_ctl("stop");
    let root = source.root.path().to_path_buf();
    let data = source.data();
    let before = file_names(&data);

    let recovery = snap
        .world
        .recovery_instance("snaprestorerec", &[(&snapshot, "/dev/sdk")]);
    let clone = recovery.volumes[0].id.clone();
    let empty = snap.world.recovery_instance("snaprestoreempty", &[]);
    let elsewhere = snap.mounts.disk(0);
    let table = |point: Option<&Path>, options: &str| {
        let mounts = FakeMounts::new(0);
        if let Some(point) = point {
            mounts.mount("/dev/sdk", point, options);
        }
        mounts
    };
    let good = || table(Some(&root), DEFAULT_MOUNT_OPTIONS);
    let data_text = data.display().to_string();
    let with_instance = |name: &str| owned(&["--snapshot-recovery-instance", name]);
    let rest = |dir: &str| owned(&["srv", &id, dir]);
    let missing_dir = root.join("missing").display().to_string();
    let file = root.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let file_text = file.display().to_string();
    let unknown = unique_name("nosuchrecovery");
    let point_error = format!(
        "Error checking mount points: Disk {clone} cloned from snapshot {snapshot} is mounted at {} but {} was expected.\n",
        elsewhere.display(),
        root.display()
    );
    let options_error = format!(
        "Error checking mount options: Disk {clone} cloned from snapshot {snapshot} is mounted with rw,relatime but rw,noatime was expected.\n"
    );
    let cases = vec![
        RestoreCase {
            name: "no recovery instance",
            options: vec![],
            rest: rest(&data_text),
            mounts: good(),
            exit: 4,
            both_say: owned(&[
                "Incomplete options for snapshot restore - missing: snapshot_recovery_instance\n",
            ]),
            neither_says: vec![],
        },
        RestoreCase {
            name: "unknown recovery instance",
            options: with_instance(&unknown),
            rest: rest(&data_text),
            mounts: good(),
            exit: 4,
            both_say: vec![format!("Cannot find instance {unknown}\n")],
            neither_says: vec![],
        },
        RestoreCase {
            name: "no clone attached",
            options: with_instance(&empty.name),
            rest: rest(&data_text),
            mounts: good(),
            exit: 4,
            both_say: vec![format!(
                "The following snapshots are not attached to recovery instance {}: {snapshot}\n",
                empty.name
            )],
            neither_says: vec![],
        },
        RestoreCase {
            name: "clone not mounted",
            options: with_instance(&recovery.name),
            rest: rest(&data_text),
            mounts: table(None, ""),
            exit: 4,
            both_say: vec![format!(
                "Error checking mount points: Error finding mount point for disk {clone}: Could not find device /dev/sdk at any mount point\n"
            )],
            neither_says: vec![],
        },
        RestoreCase {
            name: "clone mounted elsewhere",
            options: with_instance(&recovery.name),
            rest: rest(&data_text),
            mounts: table(Some(&elsewhere), DEFAULT_MOUNT_OPTIONS),
            exit: 4,
            both_say: vec![point_error.clone()],
            neither_says: vec![],
        },
        RestoreCase {
            name: "clone mounted with other options",
            options: with_instance(&recovery.name),
            rest: rest(&data_text),
            mounts: table(Some(&root), "rw,relatime"),
            exit: 4,
            both_say: vec![options_error.clone()],
            neither_says: vec![],
        },
        RestoreCase {
            name: "clone mounted elsewhere with other options",
            options: with_instance(&recovery.name),
            rest: rest(&data_text),
            mounts: table(Some(&elsewhere), "rw,relatime"),
            exit: 4,
            both_say: vec![point_error.clone()],
            neither_says: owned(&["Error checking mount options"]),
        },
        RestoreCase {
            name: "missing destination",
            options: with_instance(&recovery.name),
            rest: rest(&missing_dir),
            mounts: good(),
            exit: 4,
            both_say: vec![format!(
                "Recovery directory '{missing_dir}' does not exist on the recovery instance. Check all required disks have been created, attached and mounted.\n"
            )],
            neither_says: vec![],
        },
        RestoreCase {
            name: "destination is a file",
            options: with_instance(&recovery.name),
            rest: rest(&file_text),
            mounts: good(),
            exit: 4,
            both_say: owned(&["A file with the same name exists, but is not a directory"]),
            neither_says: vec![],
        },
        RestoreCase {
            name: "tablespace rule",
            options: {
                let mut options = with_instance(&recovery.name);
                options.extend(owned(&["--tablespace", "ts:/tmp/elsewhere"]));
                options
            },
            rest: rest(&data_text),
            mounts: good(),
            exit: 4,
            both_say: vec![format!(
                "Backup {id} is a snapshot backup therefore tablespace relocation rules cannot be used.\n"
            )],
            neither_says: vec![],
        },
    ];
    let mut commands = Vec::new();
    for case in &cases {
        let mut env = snap.world.env();
        env.extend(case.mounts.env());
        let (options, rest) = (strs(&case.options), strs(&case.rest));
        commands.push(with_env(
            ours_command(&snap.dest, "barman-cloud-restore", &options, &rest),
            &env,
        ));
        commands.push(with_env(
            barman_command(&snap.dest, "barman-cloud-restore", &options, &rest),
            &env,
        ));
    }
    let outputs = run_all(commands);
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(
            error_message(&outputs[2 * i]),
            error_message(&outputs[2 * i + 1]),
            "{}: the messages differ",
            case.name
        );
        for (out, tool) in [(&outputs[2 * i], "ours"), (&outputs[2 * i + 1], "Barman")] {
            let what = format!("{tool}, {}", case.name);
            assert_exit(out, case.exit, &what);
            for text in &case.both_say {
                assert_mentions(out, text, &what);
            }
            for text in &case.neither_says {
                assert!(
                    !stderr(out).contains(text.as_str()),
                    "{what}: {}",
                    stderr(out)
                );
            }
        }
    }
    assert_eq!(file_names(&data), before, "failed restores wrote nothing");
    assert!(!Path::new(&missing_dir).exists());
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");

    // The restore that must work does, with both tools (the recovery instance by ID, the
    // backup as `latest`).
    let label = object_text(&snap.dest, &format!("srv/base/{id}/backup_label"));
    let mounts = good();
    let mut env = snap.world.env();
    env.extend(mounts.env());
    let options = with_instance(&recovery.id);
    let latest = ["srv", "latest", data_text.as_str()];
    for (tool, command) in [
        (
            "ours",
            ours_command(&snap.dest, "barman-cloud-restore", &strs(&options), &latest),
        ),
        (
            "Barman",
            barman_command(&snap.dest, "barman-cloud-restore", &strs(&options), &latest),
        ),
    ] {
        let out = run(with_env(command, &env));
        assert_success(&out, &format!("{tool} restore"));
        assert_eq!(
            std::fs::read_to_string(data.join("backup_label")).unwrap(),
            label,
            "{tool}"
        );
        std::fs::remove_file(data.join("backup_label")).unwrap();
    }

    // Ours only: a label that is not the one our manifest records is refused (Barman
    // restores whatever the object holds).
    let tampered = label.replace("START TIMELINE: 1", "START TIMELINE: 2");
    assert_ne!(tampered, label);
    snap.dest.bucket_tool(&[
        "put",
        &snap.dest.bucket(),
        &format!("pg/srv/base/{id}/backup_label"),
        &tampered,
    ]);
    let out = run(with_env(
        ours_command(
            &snap.dest,
            "barman-cloud-restore",
            &strs(&options),
            &strs(&rest(&data_text)),
        ),
        &env,
    ));
    assert_exit(&out, 1, "ours, a label the manifest does not record");
    assert_mentions(
        &out,
        &format!(
            "srv/base/{id}/backup_label is not the backup label the integrity manifest records"
        ),
        "ours, a label the manifest does not record",
    );
    assert_eq!(file_names(&data), before, "the refused label was written");
    eprintln!("restore failures: {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// 5. Retention
// ---------------------------------------------------------------------------------------------

/// Two snapshot backups of a cluster archiving its WAL with our wal-archive: the dry run of
/// `-r "REDUNDANCY 1"` prints Barman's lines exactly and deletes nothing; the real run
/// deletes the older backup's snapshot, objects (manifest included) and the WAL before the
/// newer backup, and nothing of the newer backup.
#[test]
fn retention_deletes_the_older_snapshots() {
    let started = Instant::now();
    let snap = Snap::new("snapretain", 1, 0, Service::S3);
    let volume = snap.world.volume(0).clone();
    let scripts = temp_dir("snapretainscripts");
    let source = Cluster::archiving("snapretain", &snap.dest, scripts.path(), "");
    snap.mounts
        .mount(&volume.device, source.root.path(), DEFAULT_MOUNT_OPTIONS);
    source.psql("create table t as select generate_series(1, 1000) as i");

    let out = snap.backup_ours(&source, &[&volume.name], &[]);
    assert_success(&out, "our first snapshot backup");
    let older = snap.single_done_backup();
    let older_snapshot = only_snapshot(&snap.world, &volume).id;
    source.psql("insert into t select generate_series(1, 1000)");
    source.psql("select pg_switch_wal()");
    let out = snap.backup_ours(&source, &[&volume.name], &[]);
    assert_success(&out, "our second snapshot backup");
    let ids = backup_ids(&snap.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let newer = ids[1].0.clone();
    let newer_snapshot = snapshots_named(&snap.world, &volume, &volume.name, &newer)
        .pop()
        .expect("the newer backup's snapshot")
        .id;
    source.archive_everything();
    let newer_info = object_text(&snap.dest, &format!("srv/base/{newer}/backup.info"));
    let begin_wal = info_field(&newer_info, "begin_wal").unwrap();
    let wal_names = |keys: &[String]| -> Vec<String> {
        keys.iter()
            .filter_map(|k| k.strip_prefix("srv/wals/"))
            .filter_map(|k| k.rsplit('/').next())
            .map(|name| name[..24].to_string())
            .collect()
    };
    let keys_before = keys(&snap.dest);
    assert!(
        wal_names(&keys_before).iter().any(|w| *w < begin_wal),
        "no WAL before {begin_wal}: {keys_before:?}"
    );

    // The dry run: Barman's lines, nothing deleted.
    let policy = ["-r", "REDUNDANCY 1", "--dry-run"];
    let outputs = run_all(vec![
        snap.ours("barman-cloud-backup-delete", &policy, &["srv"]),
        snap.barman("barman-cloud-backup-delete", &policy, &["srv"]),
    ]);
    assert_success(&outputs[1], "Barman's dry run");
    assert_success(&outputs[0], "our dry run");
    assert_eq!(stdout(&outputs[0]), stdout(&outputs[1]), "dry runs differ");
    let printed = stdout(&outputs[0]);
    assert!(
        printed.starts_with(&format!(
            "Skipping deletion of snapshots due to --dry-run option\nSkipping deletion of pg/srv/base/{older}/backup_label due to --dry-run option\n"
        )),
        "{printed}"
    );
    assert!(printed.contains("wals/"), "{printed}");
    assert_eq!(keys(&snap.dest), keys_before, "the dry run deleted objects");
    assert!(snap.world.snapshot(&older_snapshot).is_some());

    // The real run.
    let out = snap.run_ours(
        "barman-cloud-backup-delete",
        &["-r", "REDUNDANCY 1"],
        &["srv"],
    );
    assert_success(&out, "our retention run");
    assert!(
        snap.world.snapshot(&older_snapshot).is_none(),
        "older snapshot kept"
    );
    assert!(
        snap.world.snapshot(&newer_snapshot).is_some(),
        "newer snapshot deleted"
    );
    assert_eq!(backup_keys(&snap.dest, &older), Vec::<String>::new());
    assert_eq!(
        backup_keys(&snap.dest, &newer),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );
    assert_eq!(
        backup_ids(&snap.dest),
        [(newer.clone(), "DONE".to_string())]
    );
    let left = keys(&snap.dest);
    let old_wals: Vec<String> = wal_names(&left)
        .into_iter()
        .filter(|w| *w < begin_wal)
        .collect();
    assert!(
        old_wals.is_empty(),
        "WAL before {begin_wal} kept: {old_wals:?}"
    );
    assert!(wal_names(&left).contains(&begin_wal), "{left:?}");
    eprintln!("retention: {:?}", started.elapsed());
}

/// Ours only (Barman dies at once, leaving its snapshots): SIGTERM while CreateSnapshot is
/// in flight, then while waiting for a pending snapshot: the creation is awaited, the
/// snapshot deleted, the backup FAILED, exit 1. On a `file://` destination.
#[test]
fn sigterm_deletes_the_snapshots() {
    let started = Instant::now();
    let snap = Snap::new("snapterm", 1, 0, Service::Local);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snapterm", &volume);
    let options = backup_options(&source, snap.world.instance_name(), &[&volume.name], &[]);

    // Starts our backup, waits for a call `until` matches, sends SIGTERM; returns the output.
    let terminated = |until: &dyn Fn(&Call) -> bool, what: &str, before: &dyn Fn()| -> Output {
        let since = snap.last_seq();
        let mut child = snap
            .ours("barman-cloud-backup", &strs(&options), &["srv"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !snap.calls_since(since).iter().any(until) {
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("{what}: the call never came\nstderr: {}", stderr(&out));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        before();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    };
    let check = |out: &Output, what: &str, count: usize| {
        assert_exit(out, 1, what);
        let ids = backup_ids(&snap.dest);
        assert_eq!(ids.len(), count, "{what}: {ids:?}");
        let (id, status) = ids.last().unwrap().clone();
        assert_eq!(status, "FAILED", "{what}");
        let shown = show_json(&snap, &id);
        assert_eq!(
            shown["error"], "failure uploading data (terminated by SIGTERM)",
            "{what}"
        );
        assert!(
            snap.world.snapshots_of_volume(&volume.id).is_empty(),
            "{what}: snapshot left"
        );
        let deletes: Vec<Option<u16>> = snap
            .world
            .tool_calls()
            .iter()
            .filter(|c| c.action == "DeleteSnapshot")
            .map(|c| c.status)
            .collect();
        assert_eq!(deletes, vec![Some(200); count], "{what}");
    };

    // CreateSnapshot answers 3 s late: the signal comes while it is in flight.
    snap.world.set_create_latency(&volume.id, 3.0);
    let out = terminated(
        &|c: &Call| c.action == "CreateSnapshot" && c.status.is_none(),
        "SIGTERM during CreateSnapshot",
        &|| {},
    );
    check(&out, "SIGTERM during CreateSnapshot", 1);
    snap.world.set_create_latency(&volume.id, 0.0);

    // The snapshot stays pending: the signal comes during the wait.
    snap.world.set_pending_seconds(&volume.id, 120.0);
    let out = terminated(
        &|c: &Call| c.action == "DescribeSnapshots",
        "SIGTERM during the wait",
        // The backup in progress is listed as such.
        &|| {
            let ids = backup_ids(&snap.dest);
            assert_eq!(ids.len(), 2, "{ids:?}");
            assert_eq!(ids[1].1, "STARTED", "{ids:?}");
        },
    );
    check(&out, "SIGTERM during the wait", 2);

    // A snapshot the cleanup cannot delete (locked by someone during the wait) stays listed
    // in the FAILED backup.info, and deleting that backup deletes it once it can.
    let locked = std::cell::RefCell::new(String::new());
    let out = terminated(
        &|c: &Call| c.action == "DescribeSnapshots",
        "SIGTERM with a locked snapshot",
        &|| {
            let pending = only_snapshot(&snap.world, &volume);
            snap.world
                .lock_snapshot(&pending.id, "governance", 1)
                .unwrap();
            *locked.borrow_mut() = pending.id;
        },
    );
    let locked = locked.into_inner();
    assert_exit(&out, 1, "SIGTERM with a locked snapshot");
    let ids = backup_ids(&snap.dest);
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (id, status) = ids[2].clone();
    assert_eq!(status, "FAILED");
    assert!(snap.world.snapshot(&locked).is_some());
    let shown = show_json(&snap, &id);
    assert_eq!(snapshot_fields(&shown, "snapshot_id"), [locked.as_str()]);
    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_exit(&out, 1, "our delete of the FAILED backup, still locked");
    assert_mentions(
        &out,
        &format!("Locked snapshot: {locked}.\n{LOCK_ADVICE}\n"),
        "our delete of the FAILED backup, still locked",
    );
    assert_eq!(backup_ids(&snap.dest).len(), 3);
    snap.world.unlock_snapshot(&locked).unwrap();
    let out = snap.run_ours("barman-cloud-backup-delete", &[], &["srv", "-b", &id]);
    assert_success(&out, "our delete of the FAILED backup");
    assert!(snap.world.snapshot(&locked).is_none());
    assert_eq!(backup_ids(&snap.dest).len(), 2);
    eprintln!("sigterm: {:?}", started.elapsed());
}

/// Credentials and region from a profile (`-P`, no AWS_* keys in the environment), and
/// throttled EC2 calls (two `RequestLimitExceeded` answers before each success): Barman's
/// backup, ours, and our delete of both all get through, with one snapshot per backup.
#[test]
fn profile_and_throttling_as_barman() {
    let started = Instant::now();
    let snap = Snap::new("snapprofile", 1, 0, Service::S3);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snapprofile", &volume);
    let profiles = temp_dir("snapprofile");
    let credentials = profiles.path().join("credentials");
    let config = profiles.path().join("config");
    std::fs::write(
        &credentials,
        "[snapprofile]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::write(&config, "[profile snapprofile]\nregion = us-east-1\n").unwrap();
    let profiled = |mut command: Command| {
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_PROFILE",
        ] {
            command.env_remove(key);
        }
        command
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_CONFIG_FILE", &config);
        run(command)
    };
    let options = backup_options(
        &source,
        snap.world.instance_name(),
        &[&volume.name],
        &["-P", "snapprofile"],
    );
    let creates_since = |since: u64| -> Vec<Option<u16>> {
        snap.calls_since(since)
            .iter()
            .filter(|c| c.action == "CreateSnapshot")
            .map(|c| c.status)
            .collect()
    };

    let first = snap.last_seq();
    snap.world.throttle_next(&volume.id, 2);
    let out = profiled(snap.barman("barman-cloud-backup", &strs(&options), &["srv"]));
    assert_success(&out, "Barman's backup, throttled");
    assert_eq!(creates_since(first), [Some(503), Some(503), Some(200)]);
    let barman_id = snap.single_done_backup();
    wait_past(&barman_id);

    let first = snap.last_seq();
    snap.world.throttle_next(&volume.id, 2);
    let out = profiled(snap.ours("barman-cloud-backup", &strs(&options), &["srv"]));
    assert_success(&out, "our backup, throttled");
    assert_eq!(creates_since(first), [Some(503), Some(503), Some(200)]);
    let ids = backup_ids(&snap.dest);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|(_, status)| status == "DONE"), "{ids:?}");
    let snapshots = snap.world.snapshots_of_volume(&volume.id);
    assert_eq!(snapshots.len(), 2, "one snapshot per backup: {snapshots:?}");

    for (id, _) in &ids {
        snap.world.throttle_next(&volume.id, 2);
        let out = profiled(snap.ours(
            "barman-cloud-backup-delete",
            &["-P", "snapprofile"],
            &["srv", "-b", id],
        ));
        assert_success(&out, &format!("our delete of {id}, throttled"));
    }
    assert!(snap.world.snapshots_of_volume(&volume.id).is_empty());
    assert!(backup_ids(&snap.dest).is_empty());
    eprintln!("profile and throttling: {:?}", started.elapsed());
}

/// EC2 unreachable (its endpoint a closed port): backup, restore and delete fail as Barman's
/// do (same exit codes), and nothing is created or deleted.
#[test]
fn ec2_unreachable_as_barman() {
    let started = Instant::now();
    let snap = Snap::new("snapnoec2", 1, 0, Service::S3);
    let volume = snap.world.volume(0).clone();
    let source = cluster_on(&snap, "snapnoec2", &volume);
    let out = snap.backup_ours(&source, &[&volume.name], &[]);
    assert_success(&out, "our snapshot backup");
    let id = snap.single_done_backup();
    let snapshot = only_snapshot(&snap.world, &volume).id;
    let recovery = snap
        .world
        .recovery_instance("snapnoec2rec", &[(&snapshot, "/dev/sdk")]);
    snap.mounts
        .mount("/dev/sdk", source.root.path(), DEFAULT_MOUNT_OPTIONS);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable = |mut command: Command| {
        command.env("AWS_ENDPOINT_URL_EC2", format!("http://127.0.0.1:{port}"));
        command
    };
    let backup = backup_options(&source, snap.world.instance_name(), &[&volume.name], &[]);
    let restore_options = ["--snapshot-recovery-instance", recovery.name.as_str()];
    let data = source.data().display().to_string();
    let restore_rest = ["srv", id.as_str(), data.as_str()];
    let delete_rest = ["srv", "-b", id.as_str()];
    let before = file_names(&source.data());
    let outputs = run_all(vec![
        unreachable(snap.ours("barman-cloud-backup", &strs(&backup), &["srv"])),
        unreachable(snap.barman("barman-cloud-backup", &strs(&backup), &["srv"])),
        unreachable(snap.ours("barman-cloud-restore", &restore_options, &restore_rest)),
        unreachable(snap.barman("barman-cloud-restore", &restore_options, &restore_rest)),
        unreachable(snap.ours("barman-cloud-backup-delete", &[], &delete_rest)),
        unreachable(snap.barman("barman-cloud-backup-delete", &[], &delete_rest)),
    ]);
    for (pair, what) in outputs.chunks(2).zip(["backup", "restore", "delete"]) {
        assert_exit(&pair[1], 4, &format!("Barman's {what}"));
        assert_exit(&pair[0], 4, &format!("our {what}"));
        assert_mentions(&pair[0], "Connection refused", &format!("our {what}"));
    }
    assert_eq!(backup_ids(&snap.dest), [(id.clone(), "DONE".to_string())]);
    assert_eq!(
        backup_keys(&snap.dest, &id),
        ["backup.info", "backup_label", "barman-rs.manifest"]
    );
    assert_eq!(only_snapshot(&snap.world, &volume).id, snapshot);
    assert_eq!(file_names(&source.data()), before);
    eprintln!("ec2 unreachable: {:?}", started.elapsed());
}
