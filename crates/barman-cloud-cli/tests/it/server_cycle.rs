//! The life of a snapshot server, end to end, on one barman_home that Python Barman 3.20.1
//! serves in turn: `check`, backups by both tools while pgbench writes, `list-backups` and
//! `show-backup` identical from both, `keep`, `cron` retention, `recover` onto a disk
//! cloned from a snapshot (a moto volume created from it, attached to a recovery instance,
//! mounted where PGDATA was according to the `findmnt` stand-in) with PostgreSQL 15
//! started on it and stopping at the target, then `delete` — the real PostgreSQL, moto EC2
//! and sshd of the other server tests (see `server_check`).
//!
//! The cloned disk's content: moto keeps no data, so the test makes it. PostgreSQL is
//! stopped after the backups and PGDATA copied; the copy plays the snapshot. Its pages are
//! newer than the backup's end, which recovery handles as long as the target lies after
//! the copy, and the archive holds every WAL from the backup's start to the target.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ec2::{DEFAULT_MOUNT_OPTIONS, Ec2World};
use crate::postgres::{as_postgres, chown_postgres};
use crate::server_world::{CheckHost, python_barman};
use crate::support::*;

const CONF: &str = "[barman]
barman_home = {home}
barman_user = root
log_level = INFO
log_file = {dir}/barman.log

[snap]
description = Snapshot server
conninfo = host={socket} port={port} user=postgres dbname=postgres
ssh_command = {ssh}
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = {instance}
snapshot_disks = {disks}
archiver = on
retention_policy = REDUNDANCY 2
minimum_redundancy = 1
";

/// The backup ID in `Starting backup using snapshot-concurrent method for server snap in
/// <home>/snap/base/<id>`.
fn started_backup_id(out: &std::process::Output) -> String {
    let text = stdout(out);
    let line = text
        .lines()
        .find(|l| l.starts_with("Starting backup using snapshot-concurrent method"))
        .unwrap_or_else(|| panic!("no start line in:\n{text}\n{}", stderr(out)));
    line.rsplit('/').next().unwrap().to_string()
}

fn show_json(host: &CheckHost, id: &str) -> Value {
    let out = host.run(
        &host.world.ours(),
        &["-f", "json", "show-backup", "snap", id],
    );
    assert_success(&out, "show-backup -f json");
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all["snap"].clone()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert_success(&out, "cp -a");
}

#[test]
fn snapshot_server_cycle_shared_with_barman() {
    let ec2 = Ec2World::new("srvcycle", 1);
    let host = CheckHost::new("srvcycle", "snap", ec2.env());
    let data = host.cluster.data();
    let volume = ec2.volume(0).clone();
    host.mounts
        .mount(&volume.device, &data, DEFAULT_MOUNT_OPTIONS);
    host.write_conf(
        &CONF
            .replace("{ssh}", &host.good_ssh.display().to_string())
            .replace("{instance}", ec2.instance_name())
            .replace("{disks}", &volume.name),
    );
    let ours = host.world.ours();
    let barman = python_barman();

    // -- check, then backups by both tools while pgbench writes ---------------------------
    // Healthy but for minimum_redundancy = 1, which no backup meets yet; the same from both.
    let check = host.compare(&["check", "snap"]);
    assert_eq!(check.status.code(), Some(1));
    let failed: Vec<String> = stdout(&check)
        .lines()
        .filter(|l| l.contains("FAILED"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        failed,
        [
            "\tminimum redundancy requirements: FAILED (have 0 non-incremental backups, expected at least 1)"
        ]
    );
    host.cluster.pgbench(&["-i", "-s", "2", "-q"]);
    let writer = {
        let socket = host.cluster.socket_dir();
        let port = host.cluster.port.to_string();
        std::thread::spawn(move || {
            as_postgres(
                Path::new("/usr/bin/pgbench"),
                &[
                    "-h", &socket, "-p", &port, "-U", "postgres", "-c", "2", "-T", "25", "postgres",
                ],
            )
        })
    };
    let first = host.run(&ours, &["backup", "snap", "--wait", "--name", "monday"]);
    assert_success(&first, "our first backup");
    let first_id = started_backup_id(&first);
    wait_past(&first_id);
    let second = host.run(&barman, &["backup", "snap", "--wait"]);
    assert_success(&second, "Barman's backup");
    let second_id = started_backup_id(&second);
    wait_past(&second_id);
    let third = host.run(&ours, &["backup", "snap", "--wait"]);
    assert_success(&third, "our third backup");
    let third_id = started_backup_id(&third);
    let pgbench = writer.join().unwrap();
    assert_success(&pgbench, "pgbench during the backups");
    for id in [&first_id, &second_id, &third_id] {
        let shown = show_json(&host, id);
        assert_eq!(shown["status"], "DONE", "{id}: {shown}");
        assert_eq!(shown["snapshots_info"]["provider"], "aws", "{id}");
    }

    // -- the catalog, identical from both tools -----------------------------------------
    host.compare(&["list-backups", "snap"]);
    host.compare(&["-f", "json", "list-backups", "snap"]);
    for id in [
        first_id.as_str(),
        second_id.as_str(),
        third_id.as_str(),
        "monday",
        "latest",
        "oldest",
    ] {
        host.compare(&["show-backup", "snap", id]);
    }
    host.compare(&["-f", "json", "show-backup", "snap", &second_id]);

    // -- keep and retention: REDUNDANCY 2 leaves the kept first backup alone, then
    //    deletes it (and its snapshot) once released -------------------------------------
    let keep = host.run(&ours, &["keep", "snap", "monday", "--target", "full"]);
    assert_success(&keep, "keep");
    let status = host.compare(&["keep", "snap", &first_id, "--status"]);
    assert_eq!(stdout(&status), "Server snap:\n\tKeep: full\n");
    assert!(stdout(&host.compare(&["list-backups", "snap"])).contains("KEEP:FULL"));
    let first_snapshot = show_json(&host, &first_id)["snapshots_info"]["snapshots"][0]["provider"]
        ["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_success(&host.run(&ours, &["cron"]), "cron with the keep");
    assert!(
        host.world
            .path(&format!("home/snap/meta/{first_id}-backup.info"))
            .exists()
    );
    let release = host.run(&barman, &["keep", "snap", &first_id, "--release"]);
    assert_success(&release, "Barman's keep --release");
    assert_success(&host.run(&ours, &["cron"]), "cron");
    let first_info = host
        .world
        .path(&format!("home/snap/meta/{first_id}-backup.info"));
    wait_until(
        "retention of the first backup",
        Duration::from_secs(60),
        || !first_info.exists(),
    );
    assert!(
        ec2.snapshot(&first_snapshot)
            .is_none_or(|s| s.state == "deleted"),
        "the obsolete backup's snapshot is deleted"
    );
    let listed = stdout(&host.compare(&["list-backups", "snap"]));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // -- recover our latest backup onto a disk cloned from its snapshot -------------------
    host.cluster.pg_ctl("stop");
    let clone_source = host.world.path("clone-source");
    copy_tree(&data, &clone_source);
    host.cluster.start();
    host.cluster
        .psql("create table marker(what text); insert into marker values ('before')");
    host.cluster
        .psql("select pg_create_restore_point('cycle_target')");
    host.cluster.psql("insert into marker values ('after')");
    host.cluster.archive_everything();
    assert_success(&host.run(&ours, &["archive-wal", "snap"]), "archive-wal");
    host.cluster.pg_ctl("stop");
    // The recovery host's disk: the clone, mounted where PGDATA was.
    std::fs::rename(&data, host.world.path("source-data")).unwrap();
    std::fs::rename(&clone_source, &data).unwrap();
    chown_postgres(&data);
    let snapshot =
        show_json(&host, &third_id)["snapshots_info"]["snapshots"][0]["provider"]["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
    let recovery = ec2.recovery_instance("srvcyclerec", &[(&snapshot, "/dev/sdf")]);
    host.mounts.unmount(&volume.device);
    host.mounts
        .mount(&recovery.volumes[0].device, &data, DEFAULT_MOUNT_OPTIONS);
    // The recovery host is this one: findmnt answers from the fake table here too.
    let conf = host.world.path("barman.conf").display().to_string();
    let mut env: Vec<(String, String)> = ec2.env();
    env.extend(host.mounts.env());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let recover = host.world.run_with(
        &ours,
        &[
            "-c",
            &conf,
            "recover",
            "snap",
            &third_id,
            data.to_str().unwrap(),
            "--snapshot-recovery-instance",
            &recovery.name,
            "--target-name",
            "cycle_target",
            "--target-action",
            "promote",
            "--no-get-wal",
        ],
        None,
        &env,
    );
    assert_success(&recover, "recover");
    assert!(
        stdout(&recover)
            .contains("Your PostgreSQL server has been successfully prepared for recovery!"),
        "{}",
        stdout(&recover)
    );
    assert_eq!(
        std::fs::read(data.join("backup_label")).unwrap(),
        std::fs::read(
            host.world
                .path(&format!("home/snap/base/{third_id}/data/backup_label"))
        )
        .unwrap()
    );
    chown_postgres(&data);
    host.cluster.start();
    host.cluster
        .wait_for("the end of recovery", Duration::from_secs(180), || {
            host.cluster.psql("select pg_is_in_recovery()") == "f"
        });
    assert_eq!(
        host.cluster
            .psql("select string_agg(what, ',') from marker"),
        "before",
        "recovery stops at the restore point"
    );
    assert!(
        host.cluster
            .psql("select count(*) from pgbench_accounts")
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // -- delete: ours of the oldest, then both refuse to go below minimum_redundancy -------
    let delete = host.run(&ours, &["delete", "snap", "oldest"]);
    assert_success(&delete, "delete");
    assert!(stdout(&delete).contains(&format!("Deleted backup {second_id}")));
    // Both refuse alike; Barman's ERROR line then prints the backup object's repr where
    // ours names the backup (a deliberate difference).
    let refused = host.run(&ours, &["delete", "snap", &third_id]);
    let theirs = host.run(&barman, &["delete", "snap", &third_id]);
    assert_exit(&refused, 1, "our refused delete");
    assert_exit(&theirs, 1, "Barman's refused delete");
    let warning = |out: &std::process::Output| {
        stderr(out)
            .lines()
            .find(|l| l.starts_with("WARNING: Skipping delete"))
            .map(str::to_string)
    };
    assert!(warning(&refused).is_some(), "{}", stderr(&refused));
    assert_eq!(warning(&refused), warning(&theirs));
    assert_mentions(
        &refused,
        &format!("ERROR: Cannot delete backup (snap {third_id})"),
        "ours",
    );
    assert_eq!(
        stdout(&host.compare(&["list-backups", "snap"]))
            .lines()
            .count(),
        1
    );
}

/// A server with another backup method is refused before any work: barman-rs takes
/// snapshot backups only. Its WAL commands and catalog still work (list-backups as Barman).
#[test]
fn backup_of_a_server_with_another_method_is_refused() {
    let world = crate::server_world::World::new("srvrsync");
    world.write(
        "barman.conf",
        "[barman]\nbarman_home = {home}\nbarman_user = root\n\n[r]\ndescription = rsync\n\
         conninfo = host=/nonexistent port=1 user=postgres\nssh_command = false\n\
         backup_method = rsync\narchiver = on\n",
    );
    let conf = world.path("barman.conf").display().to_string();
    let out = world.run(&world.path("barman"), &["-c", &conf, "backup", "r"]);
    assert_exit(&out, 1, "backup of an rsync server");
    assert_mentions(
        &out,
        "barman-rs takes snapshot backups only (backup_method = snapshot); server 'r' has \
         backup_method = rsync",
        "refusal",
    );
    assert!(
        !world.path("home/r/base").exists() || file_names(&world.path("home/r/base")).is_empty()
    );
    world.compare(&["-c", &conf, "list-backups", "r"]);
}
