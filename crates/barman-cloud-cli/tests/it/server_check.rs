//! `barman check` of a snapshot server against Python Barman 3.20.1 on one barman_home:
//! a real PostgreSQL 15 archiving into the server's `incoming/` with `cp`, an EC2 instance
//! with one volume in moto, PGDATA "mounted" from that volume through the `findmnt`
//! stand-in, reached over the real sshd. Both tools run with the same arguments and
//! environment and must print the same stdout and exit with the same code.
//!
//! How the stand-in reaches the remote side (`server_world::ssh_wrapper`): over ssh the remote shell gets sshd's
//! environment, so `ssh_command` is a small wrapper script (written per test) that runs
//! the test's ssh command with `env PATH=<tests/fakes>:... BARMAN_RS_FAKE_MOUNTS=<table>`
//! in front of the remote command. Barman runs `ssh_command` two ways — split into words
//! with `-o BatchMode=yes -o StrictHostKeyChecking=no` appended (the `ssh` check) and
//! whole, through the shell (the snapshot checks) — so the wrapper takes leading `-o X`
//! pairs as ssh options and everything after as the remote command; a plain `ssh ... env
//! ...` ssh_command would put the `-o` options after `env` on the remote side.

use crate::ec2::Ec2World;
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
check_timeout = 30

[badcomp]
description = Disabled
conninfo = host={socket} port={port} user=postgres dbname=postgres
ssh_command = {ssh}
backup_method = snapshot
backup_options = concurrent_backup
backup_compression = gzip
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = {instance}
snapshot_disks = {disks}
archiver = on
check_timeout = 3
";

struct Setup {
    host: CheckHost,
    ec2: Ec2World,
}

impl std::ops::Deref for Setup {
    type Target = CheckHost;

    fn deref(&self) -> &CheckHost {
        &self.host
    }
}

impl Setup {
    fn conf(&self, ssh: &str, instance: &str, disks: &str) {
        self.host.write_conf(
            &CONF
                .replace("{ssh}", ssh)
                .replace("{instance}", instance)
                .replace("{disks}", disks),
        );
    }

    fn default_conf(&self) {
        let disk = self.ec2.volume(0).name.clone();
        let instance = self.ec2.instance_name().to_string();
        self.conf(&self.good_ssh.display().to_string(), &instance, &disk);
    }
}

fn setup() -> Setup {
    let ec2 = Ec2World::new("srvcheck", 1);
    let host = CheckHost::new("srvcheck", "snap", ec2.env());
    host.mounts
        .mount(&ec2.volume(0).device, &host.cluster.data(), "rw,noatime");
    let setup = Setup { host, ec2 };
    setup.default_conf();
    setup
}

/// `text` with every WAL segment name replaced by `<WAL>`.
fn mask_wals(text: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 24 && word.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push_str("<WAL>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn xlogdb_lines(setup: &Setup) -> usize {
    std::fs::read_to_string(setup.world.path("home/snap/wals/snap-xlog.db"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn check_of_a_snapshot_server_matches_barman() {
    let setup = setup();

    // First check, ours: the archive is empty, so it switches a WAL and archives it.
    let ours = setup.run(&setup.world.ours(), &["check", "snap"]);
    let text = stdout(&ours);
    assert_eq!(ours.status.code(), Some(0), "{text}\n{}", stderr(&ours));
    assert!(xlogdb_lines(&setup) >= 1, "xlog.db filled by check");
    for dir in ["base", "errors", "incoming", "meta", "streaming", "wals"] {
        assert!(setup.world.path("home/snap").join(dir).is_dir(), "{dir}");
    }
    let expected = "Server snap:\n\
        \tPostgreSQL: OK\n\
        \tsuperuser or standard user with backup privileges: OK\n\
        \twal_level: OK\n\
        \tdirectories: OK\n\
        \tretention policy settings: OK\n\
        \tbackup maximum age: OK (no last_backup_maximum_age provided)\n\
        \tbackup minimum size: OK (0 B)\n\
        \twal maximum age: OK (no last_wal_maximum_age provided)\n\
        \twal size: OK (0 B)\n\
        \tcompression settings: OK\n\
        \tfailed backups: OK (there are 0 failed backups)\n\
        \tminimum redundancy requirements: OK (have 0 non-incremental backups, expected at least 0)\n\
        \tssh: OK (PostgreSQL server)\n\
        \tsnapshot instance exists: OK\n\
        \tsnapshot disks attached to instance: OK\n\
        \tsnapshot disks mounted on instance: OK\n\
        \tsystemid coherence: OK (no system Id stored on disk)\n\
        \tarchive_mode: OK\n\
        \tarchive_command: OK\n\
        \tcontinuous archiving: OK\n\
        \tarchiver errors: OK\n";
    assert_eq!(text, expected);

    // Healthy: every writer.
    setup.compare(&["check", "snap"]);
    let nagios = setup.compare(&["check", "--nagios", "snap"]);
    assert_eq!(
        stdout(&nagios),
        "BARMAN OK - Ready to serve the Espresso backup for snap|snap=0B snap_wals=0B\n"
    );
    let json = setup.compare(&["-f", "json", "check", "snap"]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["snap"]["ssh"]["hint"], "PostgreSQL server");

    // switch-wal: a forced switch, waiting for the closed WAL to be archived. The WAL
    // names differ (each run closes the next segment) and are masked; ours must be in
    // xlog.db afterwards.
    let switch = [
        "switch-wal",
        "--force",
        "--archive",
        "--archive-timeout",
        "20",
        "snap",
    ];
    let theirs = setup.run(&python_barman(), &switch);
    let ours = setup.run(&setup.world.ours(), &switch);
    assert_eq!(ours.status.code(), Some(0), "{}", stderr(&ours));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(mask_wals(&stdout(&ours)), mask_wals(&stdout(&theirs)));
    assert_eq!(
        mask_wals(&stdout(&ours)),
        "The WAL file <WAL> has been closed on server 'snap'\n\
         Waiting for the WAL file <WAL> from server 'snap' (max: 20 seconds)\n\
         Processing xlog segments from file archival for snap\n\t<WAL>\n"
    );
    let closed = stdout(&ours).split_whitespace().nth(3).unwrap().to_string();
    let xlogdb = std::fs::read_to_string(setup.world.path("home/snap/wals/snap-xlog.db")).unwrap();
    assert!(xlogdb.contains(&format!("{closed}\t")), "{xlogdb}");
    setup.compare(&["switch-wal", "nosuchserver"]);
    setup.compare(&["switch-wal", "badcomp"]);

    // A FAILED backup in meta/.
    let meta = setup
        .world
        .path("home/snap/meta/20261129T000000-backup.info");
    std::fs::write(
        &meta,
        format!(
            "backup_id=20261129T000000\nbegin_time=2026-11-29 00:00:00.000000+00:00\n\
             error=failure testing (check)\nmode=snapshot-concurrent\npgdata={}\n\
             server_name=snap\nstatus=FAILED\nversion=150000\n",
            setup.cluster.data().display()
        ),
    )
    .unwrap();
    let out = setup.compare(&["check", "snap"]);
    assert!(stdout(&out).contains("\tfailed backups: FAILED (there are 1 failed backups)\n"));
    assert_eq!(out.status.code(), Some(1));
    let out = setup.compare(&["check", "--nagios", "snap"]);
    assert_eq!(out.status.code(), Some(2));
    setup.compare(&["-f", "json", "check", "snap"]);
    std::fs::remove_file(&meta).unwrap();

    // An unknown disk: attached FAILED, mounted OK (only attached disks are examined).
    let disk = setup.ec2.volume(0).name.clone();
    let instance = setup.ec2.instance_name().to_string();
    let good = setup.good_ssh.display().to_string();
    setup.conf(&good, &instance, &format!("{disk},nosuchdisk"));
    let out = setup.compare(&["check", "snap"]);
    assert!(stdout(&out).contains(&format!(
        "\tsnapshot disks attached to instance: FAILED (cannot find snapshot disks attached \
         to instance {instance}: nosuchdisk)\n"
    )));

    // The disk not mounted.
    setup.default_conf();
    let device = setup.ec2.volume(0).device.clone();
    setup.mounts.unmount(&device);
    let out = setup.compare(&["check", "snap"]);
    assert!(stdout(&out).contains(&format!(
        "\tsnapshot disks mounted on instance: FAILED (cannot find snapshot disks mounted on \
         instance {instance}: {disk})\n"
    )));
    setup
        .mounts
        .mount(&device, &setup.cluster.data(), "rw,noatime");

    // An unknown instance (by name): the remaining snapshot checks are skipped.
    let missing = unique_name("nosuchinstance");
    setup.conf(&good, &missing, &disk);
    let out = setup.compare(&["check", "snap"]);
    assert!(stdout(&out).contains(&format!(
        "\tsnapshot instance exists: FAILED (cannot find compute instance {missing})\n"
    )));
    assert!(!stdout(&out).contains("snapshot disks"));

    // ssh failing (nothing listens on the port).
    let bad_ssh = format!(
        "ssh -p 1 -i {} -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1",
        required_env("BARMAN_RS_TEST_SSH_KEY")
    );
    setup.conf(&bad_ssh, &instance, &disk);
    let out = setup.compare(&["check", "snap"]);
    let text = stdout(&out);
    assert!(text.contains("\tssh: FAILED (Connection failed using 'ssh -p 1"));
    // Barman stops at the first command it has to run on the host for the snapshot
    // checks: an error, and nothing after `snapshot instance exists`.
    assert!(text.ends_with("\tsnapshot instance exists: OK\n"), "{text}");
    assert!(
        stderr(&out).contains(&format!(
            "ERROR: Unable to connect to the target host using the command '{bad_ssh}'"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    setup.compare(&["-f", "json", "check", "snap"]);

    // A check slower than --check-timeout: the results so far, then `check timeout`.
    let slow = setup.world.path("ssh-slow");
    std::fs::write(&slow, format!("#!/bin/sh\nsleep 8\nexec {} \"$@\"\n", good)).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    setup.conf(&slow.display().to_string(), &instance, &disk);
    let out = setup.compare(&["check", "--check-timeout", "3", "snap"]);
    let text = stdout(&out);
    assert!(
        text.ends_with(
            "\tminimum redundancy requirements: OK (have 0 non-incremental backups, expected \
             at least 0)\n\tcheck timeout: FAILED (barman check command timed out)\n"
        ),
        "{text}"
    );

    // A disabled server.
    setup.default_conf();
    let out = setup.compare(&["check", "badcomp"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("Server badcomp (WARNING: disabled):\n"),
        "{text}"
    );
    assert!(text.contains(
        "\tconfiguration: FAILED\n\t\tbackup_compression option is not supported by snapshot \
         backup_method\n"
    ));
    assert!(
        !text.contains("\tdirectories") && !text.contains("\tsnapshot "),
        "{text}"
    );
    setup.compare(&["check", "--nagios", "badcomp"]);

    // PostgreSQL stopped.
    setup.cluster.pg_ctl("stop");
    let out = setup.compare(&["check", "snap"]);
    let text = stdout(&out);
    assert!(text.contains("\tPostgreSQL: FAILED\n"));
    assert!(text.contains("\tsystemid coherence: OK (no system Id available)\n"));
    assert!(
        !text.contains("wal_level") && !text.contains("archive_mode"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
    setup.compare(&["check", "--nagios", "snap"]);
}
