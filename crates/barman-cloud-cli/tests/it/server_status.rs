//! `barman status` of a snapshot server against Python Barman 3.20.1 on one barman_home:
//! a real PostgreSQL 15 archiving into the server's `incoming/` with `cp`, the server's
//! snapshot settings pointing at an EC2 instance in moto (status never calls the
//! provider nor ssh; the provider's environment is there as for `check`). Both tools run
//! with the same arguments and must print the same lines and exit with the same code.
//!
//! Two values move on their own between the two runs and are compared by their format
//! only: `Current data size` (PostgreSQL's files grow with its own background writes)
//! and `Server WAL archiving rate` (archived WALs divided by the time since the
//! statistics reset, which grows by the second). Everything else — the archived WAL and
//! its time, the current segment, counters, backups — is compared exactly.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::ec2::Ec2World;
use crate::postgres::{Cluster, chown_postgres};
use crate::server_world::{World, prefixed_lines, python_barman};
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
retention_policy = RECOVERY WINDOW OF 4 WEEKS
minimum_redundancy = 2

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

[plain]
description = Without backup privileges
conninfo = host={socket} port={port} user=plain dbname=postgres
ssh_command = {ssh}
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = {instance}
snapshot_disks = {disks}
archiver = on

[idle]
active = false
conninfo = host={socket} port={port} user=postgres dbname=postgres
ssh_command = {ssh}
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = {instance}
snapshot_disks = {disks}
archiver = on
";

struct Setup {
    world: World,
    cluster: Cluster,
    env: Vec<(String, String)>,
    _ec2: Ec2World,
}

/// A message check.
type Format = fn(&str) -> bool;

/// Lines whose message is compared by format (see the module docs): the label, and a
/// check of the message.
const VOLATILE: [(&str, Format); 2] = [
    ("Current data size", is_pretty_size),
    ("Server WAL archiving rate", is_hourly_rate),
];

/// `22.1 MiB`, `512 B`.
fn is_pretty_size(text: &str) -> bool {
    let Some((number, unit)) = text.split_once(' ') else {
        return false;
    };
    match unit {
        "B" => number.parse::<u64>().is_ok(),
        "KiB" | "MiB" | "GiB" | "TiB" => number.split_once('.').is_some_and(|(whole, decimal)| {
            whole.parse::<u64>().is_ok() && decimal.len() == 1 && decimal.parse::<u8>().is_ok()
        }),
        _ => false,
    }
}

/// `404.47/hour`.
fn is_hourly_rate(text: &str) -> bool {
    text.strip_suffix("/hour")
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(whole, decimal)| {
            whole.parse::<u64>().is_ok() && decimal.len() == 2 && decimal.parse::<u8>().is_ok()
        })
}

/// The console output with the volatile messages checked and replaced by `<label>`.
fn mask_console(text: &str) -> String {
    text.lines()
        .map(|line| {
            for (label, valid) in VOLATILE {
                if let Some(message) = line.strip_prefix(&format!("\t{label}: ")) {
                    assert!(valid(message), "{label}: {message:?}");
                    return format!("\t{label}: <{label}>\n");
                }
            }
            format!("{line}\n")
        })
        .collect()
}

/// The JSON text with the volatile messages replaced by `<label>` (checked by
/// [`mask_json`]), to compare the text itself: key order, separators.
fn mask_json_text(text: &str) -> String {
    let mut out = text.to_string();
    for (label, _) in VOLATILE {
        let marker = format!("\"description\": \"{label}\", \"message\": \"");
        let mask = format!("<{label}>");
        let mut from = 0;
        while let Some(at) = out[from..].find(&marker) {
            let start = from + at + marker.len();
            let end = start + out[start..].find('"').expect("closing quote");
            out.replace_range(start..end, &mask);
            from = start + mask.len();
        }
    }
    out
}

/// The JSON output parsed, with the volatile messages checked and masked.
fn mask_json(text: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(text).expect("JSON output");
    if let Some(servers) = value.as_object_mut() {
        for (_, lines) in servers.iter_mut() {
            let Some(lines) = lines.as_object_mut() else {
                continue;
            };
            for (_, entry) in lines.iter_mut() {
                let label = entry["description"].as_str().unwrap_or("").to_string();
                if let Some((_, valid)) = VOLATILE.iter().find(|(l, _)| *l == label) {
                    let message = entry["message"].as_str().unwrap_or("");
                    assert!(valid(message), "{label}: {message:?}");
                    entry["message"] = serde_json::Value::String(format!("<{label}>"));
                }
            }
        }
    }
    value
}

impl Setup {
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        let conf = self.world.path("barman.conf").display().to_string();
        let mut all = vec!["-c", conf.as_str()];
        all.extend(args);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.world.run_with(program, &all, None, &env)
    }

    /// Runs Barman then ours: the same stdout (volatile messages by format), the same
    /// error lines, the same exit code. Returns ours.
    fn compare(&self, args: &[&str]) -> Output {
        let theirs = self.run(&python_barman(), args);
        let ours = self.run(&self.world.ours(), args);
        let what = format!("barman {}", args.join(" "));
        let context = format!(
            "{what}\nours: {}{}\nBarman's: {}{}",
            stdout(&ours),
            stderr(&ours),
            stdout(&theirs),
            stderr(&theirs)
        );
        if args.contains(&"json") {
            assert_eq!(
                mask_json(&stdout(&ours)),
                mask_json(&stdout(&theirs)),
                "{context}"
            );
            assert_eq!(
                mask_json_text(&stdout(&ours)),
                mask_json_text(&stdout(&theirs)),
                "{context}"
            );
        } else {
            assert_eq!(
                mask_console(&stdout(&ours)),
                mask_console(&stdout(&theirs)),
                "{context}"
            );
        }
        assert_eq!(
            prefixed_lines(&stderr(&ours)),
            prefixed_lines(&stderr(&theirs)),
            "stderr of {context}"
        );
        assert_eq!(
            ours.status.code(),
            theirs.status.code(),
            "exit of {context}"
        );
        ours
    }

    fn write_backup(&self, id: &str, status: &str) {
        let meta = self.world.path("home/snap/meta");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join(format!("{id}-backup.info")),
            format!(
                "backup_id={id}\nbegin_time=2026-11-01 00:00:00.000000+00:00\n\
                 mode=snapshot-concurrent\npgdata={}\nserver_name=snap\nstatus={status}\n\
                 version=150000\n",
                self.cluster.data().display()
            ),
        )
        .unwrap();
    }
}

fn setup() -> Setup {
    let world = World::new("srvstatus");
    let ec2 = Ec2World::new("srvstatus", 1);
    let incoming = world.path("home/snap/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    chown_postgres(&incoming);
    let cluster = Cluster::initdb("srvstatus");
    // A time zone other than the machine's and a non-ISO DateStyle: archiver times are
    // the session's wall clock, whatever the date style.
    cluster.configure(&format!(
        "archive_mode = on\narchive_command = 'test ! -f {dir}/%f && cp %p {dir}/%f'\n\
         timezone = 'Asia/Kolkata'\ndatestyle = 'SQL, DMY'\n",
        dir = incoming.display()
    ));
    cluster.start();
    let text = CONF
        .replace("{socket}", &cluster.socket_dir())
        .replace("{port}", &cluster.port.to_string())
        .replace("{ssh}", &required_env("BARMAN_RS_TEST_SSH_COMMAND"))
        .replace("{instance}", ec2.instance_name())
        .replace("{disks}", &ec2.volume(0).name);
    world.write("barman.conf", &text);
    let env = ec2.env();
    Setup {
        world,
        cluster,
        env,
        _ec2: ec2,
    }
}

/// The labels of a console status block, in order.
fn labels(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| l.split(": ").next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn status_of_a_snapshot_server_matches_barman() {
    let setup = setup();

    // Nothing archived yet.
    let out = setup.compare(&["status", "snap"]);
    let text = stdout(&out);
    assert!(
        text.contains("\tLast archived WAL: No WAL segment shipped yet\n"),
        "{text}"
    );

    // One WAL archived by PostgreSQL.
    setup
        .cluster
        .psql("CREATE TABLE t AS SELECT 1 AS a; SELECT pg_switch_wal();");
    setup
        .cluster
        .wait_for("an archived WAL", Duration::from_secs(30), || {
            !setup
                .cluster
                .psql("SELECT last_archived_wal FROM pg_stat_archiver")
                .trim()
                .is_empty()
        });
    let out = setup.compare(&["status", "snap"]);
    let text = stdout(&out);
    assert_eq!(
        labels(&text),
        [
            "Description",
            "Active",
            "Disabled",
            "Active configuration model",
            "PostgreSQL version",
            "Cluster state",
            "Current data size",
            "PostgreSQL Data directory",
            "Current WAL segment",
            "PostgreSQL 'archive_command' setting",
            "Last archived WAL",
            "Failures of WAL archiver",
            "Server WAL archiving rate",
            "Passive node",
            "Retention policies",
            "No. of available backups",
            "First available backup",
            "Last available backup",
            "Minimum redundancy requirements",
        ],
        "{text}"
    );
    assert!(text.starts_with("Server snap:\n\tDescription: Snapshot server\n\tActive: True\n"));
    assert!(text.contains(&format!(
        "\tPostgreSQL Data directory: {}\n",
        setup.cluster.data().display()
    )));
    assert!(text.contains(
        "\tRetention policies: enforced (mode: auto, retention: RECOVERY WINDOW OF 4 WEEKS, \
         WAL retention: MAIN)\n"
    ));
    assert!(
        text.ends_with("\tMinimum redundancy requirements: FAILED (0/2)\n"),
        "{text}"
    );
    setup.compare(&["-f", "json", "status", "snap"]);

    // Backups in meta/: DONE and WAITING_FOR_WALS are available, FAILED is not; the
    // count is of DONE ones.
    setup.write_backup("20261101T000000", "DONE");
    setup.write_backup("20261102T000000", "FAILED");
    setup.write_backup("20261103T000000", "WAITING_FOR_WALS");
    let out = setup.compare(&["status", "snap"]);
    let text = stdout(&out);
    assert!(
        text.ends_with(
            "\tNo. of available backups: 1\n\tFirst available backup: 20261101T000000\n\
             \tLast available backup: 20261103T000000\n\
             \tMinimum redundancy requirements: FAILED (1/2)\n"
        ),
        "{text}"
    );
    setup.write_backup("20261104T000000", "DONE");
    let out = setup.compare(&["status", "snap"]);
    assert!(stdout(&out).ends_with("\tMinimum redundancy requirements: satisfied (2/2)\n"));

    // Every server: the disabled one is shown in full, the inactive one without
    // PostgreSQL (and without a description line, having none).
    let out = setup.compare(&["status", "all"]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "Server badcomp:\n\tDescription: Disabled\n\tActive: True\n\tDisabled: True\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Server idle:\n\tActive: False\n\tDisabled: False\n\tActive configuration model: \
             None\n\tPassive node: False\n\tRetention policies: not enforced\n"
        ),
        "{text}"
    );
    setup.compare(&["-f", "json", "status", "all"]);
    setup.compare(&["status", "badcomp", "idle"]);

    // A user without backup privileges: no data size, no data directory.
    setup.cluster.psql("CREATE ROLE plain LOGIN");
    let out = setup.compare(&["status", "plain"]);
    let text = stdout(&out);
    assert!(text.contains("\tCluster state: in production\n"), "{text}");
    assert!(
        !text.contains("Current data size") && !text.contains("Data directory"),
        "{text}"
    );

    // The archiver failing: the count, the WAL and when (stable once archiving works
    // again, so compared exactly).
    setup
        .cluster
        .psql("ALTER SYSTEM SET archive_command = 'false'");
    setup.cluster.psql("SELECT pg_reload_conf()");
    setup
        .cluster
        .psql("INSERT INTO t SELECT 2; SELECT pg_switch_wal();");
    setup
        .cluster
        .wait_for("an archiver failure", Duration::from_secs(30), || {
            setup
                .cluster
                .psql("SELECT failed_count FROM pg_stat_archiver")
                .trim()
                != "0"
        });
    setup.cluster.psql("ALTER SYSTEM RESET archive_command");
    setup.cluster.psql("SELECT pg_reload_conf()");
    setup
        .cluster
        .wait_for("the failed WAL archived", Duration::from_secs(90), || {
            setup
                .cluster
                .psql("SELECT last_archived_wal = last_failed_wal FROM pg_stat_archiver")
                .trim()
                == "t"
        });
    let out = setup.compare(&["status", "snap"]);
    let text = stdout(&out);
    let failures = text
        .lines()
        .find_map(|l| l.strip_prefix("\tFailures of WAL archiver: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        failures.contains(" (000000010000000000000002 at "),
        "{text}"
    );
    setup.compare(&["-f", "json", "status", "snap"]);

    // Unknown servers: an error each, the known ones still shown, exit 1.
    let out = setup.compare(&["status", "nosuchserver"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ERROR: Unknown server 'nosuchserver'"));
    setup.compare(&["status", "snap", "nosuchserver"]);
    setup.compare(&["-f", "json", "status", "nosuchserver", "snap"]);
    setup.compare(&["status", "all", "snap"]);

    // PostgreSQL stopped: the version line says so, nothing else from PostgreSQL.
    setup.cluster.pg_ctl("stop");
    let out = setup.compare(&["status", "snap"]);
    let text = stdout(&out);
    assert!(
        text.contains(
            "\tActive configuration model: None\n\
             \tPostgreSQL version: FAILED trying to get PostgreSQL version\n\
             \tPassive node: False\n"
        ),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0));
    setup.compare(&["-f", "json", "status", "snap"]);
}
