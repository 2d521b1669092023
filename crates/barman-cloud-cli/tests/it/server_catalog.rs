//! `barman list-backups`, `show-backup` and `keep` against Python Barman 3.20.1 on one
//! `barman_home`: catalogs crafted the way Barman 3.20.1 writes them for snapshot backups
//! (`meta/<id>-backup.info` and the legacy `base/<id>/backup.info`, every status, named
//! backups, keep annotations in both locations, xlog.db with compressed and plain WALs on
//! two timelines, history files plain and gzip), under REDUNDANCY and RECOVERY WINDOW
//! policies. Both tools run with the same arguments and must print the same lines and
//! exit with the same code; what one writes with `keep`, the other reads.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use chrono::{Local, TimeZone, Utc};

use crate::server_world::{World, python_barman};
use crate::support::{stderr, stdout};

const CONF: &str = "[barman]
barman_home = {home}
barman_user = root
log_level = INFO
log_file = {dir}/barman.log

[snap]
description = Snapshot server
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on
retention_policy = REDUNDANCY 2
minimum_redundancy = 1

[window]
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on
compression = gzip
retention_policy = RECOVERY WINDOW OF 7 DAYS
minimum_redundancy = 4

[plain]
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on

[empty]
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on

[badcomp]
description = Disabled (backup_compression is refused for snapshot backups)
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
backup_compression = gzip
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on

[oddwal]
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on

[idle]
active = false
conninfo = host=pg user=postgres
ssh_command = ssh pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on
";

/// One crafted backup.info.
#[derive(Clone)]
struct Backup {
    id: String,
    status: &'static str,
    name: Option<&'static str>,
    timeline: u32,
    begin: u32,
    end: u32,
    /// Offset of the times, e.g. `+00:00`.
    offset: &'static str,
    copy_stats: &'static str,
    tablespaces: &'static str,
    error: Option<&'static str>,
    /// Write to `base/<id>/backup.info` (before Barman 3.13.2) instead of `meta/`.
    legacy: bool,
    /// Seconds since the epoch of the start (the ID is its local time).
    start: i64,
}

fn seg(tli: u32, n: u32) -> String {
    format!("{tli:08X}00000000{n:08X}")
}

fn local_id(start: i64) -> String {
    Local
        .timestamp_opt(start, 0)
        .unwrap()
        .format("%Y%m%dT%H%M%S")
        .to_string()
}

fn backup(start: i64, status: &'static str, timeline: u32, begin: u32, end: u32) -> Backup {
    Backup {
        id: local_id(start),
        status,
        name: None,
        timeline,
        begin,
        end,
        offset: "+00:00",
        copy_stats: "{'copy_time': 0.060936, 'total_time': 0.060936}",
        tablespaces: "None",
        error: None,
        legacy: false,
        start,
    }
}

fn time_text(seconds: i64, micros: u32, offset: &str) -> String {
    let hours: i32 = offset[1..3].parse().unwrap();
    let minutes: i32 = offset[4..6].parse().unwrap();
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let zone = chrono::FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).unwrap();
    let t = zone.timestamp_opt(seconds, micros * 1000).unwrap();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}")
    };
    format!("{}{fraction}{offset}", t.format("%Y-%m-%d %H:%M:%S"))
}

impl Backup {
    fn text(&self, server: &str) -> String {
        let begin = seg(self.timeline, self.begin);
        let end = seg(self.timeline, self.end);
        let begin_lsn = format!("0/{:X}028", self.begin * 0x1000);
        let end_lsn = format!("0/{:X}100", self.end * 0x1000);
        let label = format!(
            "START WAL LOCATION: {begin_lsn} (file {begin})\\nCHECKPOINT LOCATION: \
             0/{:X}060\\nBACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: {} \
             UTC\\nLABEL: Barman backup {server} {}\\nSTART TIMELINE: {}\\n",
            self.begin * 0x1000,
            Utc.timestamp_opt(self.start, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S"),
            self.id,
            self.timeline
        );
        let snapshots = format!(
            "{{'provider': 'aws', 'provider_info': {{'account_id': '123456789012', 'region': \
             'us-east-1'}}, 'snapshots': [{{'mount': {{'mount_options': 'rw,noatime', \
             'mount_point': '/mnt/pg'}}, 'provider': {{'device_name': '/dev/sdf', \
             'snapshot_id': 'snap-{:017x}', 'snapshot_name': 'pgdata-{}', \
             'snapshot_lock_mode': None}}}}]}}",
            self.start,
            self.id.to_lowercase()
        );
        let copy_done = matches!(self.status, "DONE" | "WAITING_FOR_WALS");
        let mut lines = vec![
            format!("backup_id={}", self.id),
            format!(
                "backup_label={}",
                if copy_done {
                    format!("'{label}'")
                } else {
                    "None".into()
                }
            ),
            "begin_offset=40".to_string(),
            format!("begin_time={}", time_text(self.start, 577_742, self.offset)),
            format!("begin_wal={begin}"),
            format!("begin_xlog={begin_lsn}"),
            "children_backup_ids=None".to_string(),
            "cluster_size=23183659".to_string(),
            "compression=None".to_string(),
            "config_file=/var/lib/pg/data/postgresql.conf".to_string(),
            format!(
                "copy_stats={}",
                if copy_done { self.copy_stats } else { "None" }
            ),
            "data_checksums=off".to_string(),
            "deduplicated_size=234".to_string(),
            "encryption=None".to_string(),
            format!("end_offset={}", if copy_done { "256" } else { "None" }),
            format!(
                "end_time={}",
                if copy_done {
                    time_text(self.start + 5, 0, self.offset)
                } else {
                    "None".into()
                }
            ),
            format!("end_wal={}", if copy_done { end } else { "None".into() }),
            format!(
                "end_xlog={}",
                if copy_done { end_lsn } else { "None".into() }
            ),
            format!("error={}", self.error.unwrap_or("None")),
            "hba_file=/var/lib/pg/data/pg_hba.conf".to_string(),
            "ident_file=/var/lib/pg/data/pg_ident.conf".to_string(),
            "included_files=None".to_string(),
            "mode=snapshot-concurrent".to_string(),
            "parent_backup_id=None".to_string(),
            "pgdata=/var/lib/pg/data".to_string(),
            format!("server_name={server}"),
            "size=234".to_string(),
            format!(
                "snapshots_info={}",
                if copy_done { snapshots } else { "None".into() }
            ),
            format!("status={}", self.status),
            "summarize_wal=None".to_string(),
            "systemid=7713653521696452786".to_string(),
            format!("tablespaces={}", self.tablespaces),
            format!("timeline={}", self.timeline),
            "version=150018".to_string(),
            "xlog_segment_size=16777216".to_string(),
        ];
        if let Some(name) = self.name {
            lines.insert(2, format!("backup_name={name}"));
        }
        lines.join("\n") + "\n"
    }
}

fn server_dir(world: &World, server: &str) -> PathBuf {
    world.path("home").join(server)
}

fn write_backup(world: &World, server: &str, backup: &Backup) {
    let dir = server_dir(world, server);
    let data = dir.join("base").join(&backup.id).join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("backup_label"), "START WAL LOCATION: x\n").unwrap();
    let path = if backup.legacy {
        dir.join("base").join(&backup.id).join("backup.info")
    } else {
        fs::create_dir_all(dir.join("meta")).unwrap();
        dir.join("meta").join(format!("{}-backup.info", backup.id))
    };
    fs::write(path, backup.text(server)).unwrap();
}

/// xlog.db lines (`name`, stored size, time, compression) and the stored files.
fn write_wals(world: &World, server: &str, entries: &[(String, u64, f64, &str)]) {
    let wals = server_dir(world, server).join("wals");
    fs::create_dir_all(&wals).unwrap();
    let mut db = String::new();
    for (name, size, time, compression) in entries {
        db.push_str(&format!("{name}\t{size}\t{time:?}\t{compression}\tNone\n"));
        if name.len() >= 24 && !name.ends_with(".history") {
            let hash = wals.join(&name[..16]);
            fs::create_dir_all(&hash).unwrap();
            fs::write(hash.join(name), vec![0u8; *size as usize]).unwrap();
        }
    }
    fs::write(wals.join(format!("{server}-xlog.db")), db).unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

const NOV_1: i64 = 1_793_527_200; // 2026-11-01 10:00:00 UTC
const DAY: i64 = 86_400;

/// The `snap` server: seven backups of every status on two timelines.
fn snap_catalog(world: &World) -> Vec<Backup> {
    let mut b1 = backup(NOV_1, "DONE", 1, 2, 2);
    b1.legacy = true;
    let mut b2 = backup(NOV_1 + DAY, "FAILED", 1, 3, 3);
    b2.error = Some("failure snapshot creation (ClientError: volume busy)");
    let mut b3 = backup(NOV_1 + 2 * DAY, "DONE", 1, 4, 5);
    b3.name = Some("weekly");
    b3.offset = "+01:00";
    b3.copy_stats =
        "{'copy_time': 75.5, 'analysis_time': 2.0, 'number_of_workers': 2, 'total_time': 80}";
    let mut b4 = backup(NOV_1 + 3 * DAY, "DONE", 1, 7, 7);
    b4.name = Some("nightly");
    b4.copy_stats = "{'copy_time': 3, 'total_time': 3}";
    b4.tablespaces = "[('tbs_a', 16400, '/srv/tbs_a'), ('tbs_b', 16401, '/srv/tbs b')]";
    let b5 = backup(NOV_1 + 4 * DAY, "WAITING_FOR_WALS", 1, 9, 9);
    let b6 = backup(NOV_1 + 5 * DAY, "STARTED", 1, 0x0B, 0x0B);
    let mut b7 = backup(NOV_1 + 6 * DAY, "DONE", 2, 0x0A, 0x0A);
    b7.name = Some("nightly");
    let backups = vec![b1, b2, b3, b4, b5, b6, b7];
    for b in &backups {
        write_backup(world, "snap", b);
    }
    // Keep annotations: full in meta/, standalone in the pre-3.13.3 place.
    let dir = server_dir(world, "snap");
    fs::write(
        dir.join("meta").join(format!("{}-keep", backups[2].id)),
        "full",
    )
    .unwrap();
    let legacy = dir.join("base").join(&backups[3].id).join("annotations");
    fs::create_dir_all(&legacy).unwrap();
    fs::write(legacy.join("keep"), "standalone").unwrap();

    let t = NOV_1 as f64;
    let mut entries = Vec::new();
    for n in 1..=0x0Bu32 {
        let compressed = n % 3 != 0;
        let size = if compressed {
            16_000 + u64::from(n) * 977
        } else {
            16_777_216
        };
        let time = t + f64::from(n) * 43_210.123_456_7;
        entries.push((
            seg(1, n),
            size,
            time,
            if compressed { "gzip" } else { "None" },
        ));
        if [2, 4, 7, 9].contains(&n) {
            entries.push((
                format!("{}.00000028.backup", seg(1, n)),
                258,
                time + 0.25,
                "gzip",
            ));
        }
        if n == 8 {
            entries.push(("00000002.history".to_string(), 42, time + 1.0, "None"));
        }
    }
    entries.push((
        format!("{}.partial", seg(1, 0x0C)),
        16_777_216,
        t + 600_000.5,
        "None",
    ));
    for n in 0x0A..=0x0Cu32 {
        entries.push((
            seg(2, n),
            17_000 + u64::from(n),
            t + 500_000.0 + f64::from(n) * 1_000.0,
            "gzip",
        ));
    }
    write_wals(world, "snap", &entries);
    fs::write(
        dir.join("wals").join("00000002.history"),
        "1\t0/8000000\tno recovery target specified\n",
    )
    .unwrap();
    backups
}

/// The `window` server: backups around a 7-day window ending now, a gzip history file.
fn window_catalog(world: &World) -> Vec<Backup> {
    let now = Utc::now().timestamp() - 3600;
    let days = [20, 15, 10, 3, 1];
    let backups: Vec<Backup> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let n = 2 * i as u32 + 2;
            backup(now - d * DAY, "DONE", 1, n, n)
        })
        .collect();
    for b in &backups {
        write_backup(world, "window", b);
    }
    let start = (now - 21 * DAY) as f64;
    let entries: Vec<(String, u64, f64, &str)> = (1..=12u32)
        .map(|n| {
            (
                seg(1, n),
                20_000 + u64::from(n),
                start + f64::from(n) * DAY as f64 * 1.5,
                "gzip",
            )
        })
        .collect();
    write_wals(world, "window", &entries);
    fs::write(
        server_dir(world, "window")
            .join("wals")
            .join("00000002.history"),
        gzip(b"1\t0/5000000\tbefore transaction 1234\n"),
    )
    .unwrap();
    backups
}

fn plain_catalog(world: &World) -> Vec<Backup> {
    let mut one = backup(NOV_1 - 10 * DAY, "DONE", 1, 0x20, 0x22);
    one.copy_stats = "{}";
    let two = backup(NOV_1 - 9 * DAY, "DONE", 1, 0x30, 0x30);
    for b in [&one, &two] {
        write_backup(world, "plain", b);
    }
    let entries: Vec<(String, u64, f64, &str)> = (0x20..=0x24u32)
        .map(|n| {
            (
                seg(1, n),
                16_777_216,
                NOV_1 as f64 - 10.0 * DAY as f64 + f64::from(n),
                "None",
            )
        })
        .collect();
    write_wals(world, "plain", &entries);
    let idle = backup(NOV_1, "DONE", 1, 1, 1);
    write_backup(world, "idle", &idle);
    write_backup(world, "badcomp", &idle);
    // An xlog.db line Barman cannot decode: list-backups reports it and goes on,
    // show-backup stops.
    for b in [&one, &two] {
        write_backup(world, "oddwal", b);
    }
    let mut odd = entries.clone();
    odd.insert(2, ("garbage-name".to_string(), 10, NOV_1 as f64, "None"));
    write_wals(world, "oddwal", &odd);
    vec![one, two]
}

fn world() -> (World, String, Vec<Backup>, Vec<Backup>) {
    let world = World::new("server-catalog");
    let conf = world.write("barman.conf", CONF);
    let snap = snap_catalog(&world);
    let window = window_catalog(&world);
    plain_catalog(&world);
    (world, conf.to_str().unwrap().to_string(), snap, window)
}

#[test]
fn server_catalog_list_backups_as_barman() {
    let (world, conf, _, _) = world();
    let c = conf.as_str();
    for args in [
        vec!["-c", c, "list-backups", "snap"],
        vec!["-c", c, "list-backups", "--minimal", "snap"],
        vec!["-c", c, "-f", "json", "list-backups", "snap"],
        vec!["-c", c, "-f", "json", "list-backups", "--minimal", "snap"],
        vec!["-c", c, "list-backups", "window"],
        vec!["-c", c, "-f", "json", "list-backups", "window"],
        vec!["-c", c, "list-backups", "plain"],
        vec!["-c", c, "list-backups", "empty"],
        vec!["-c", c, "-f", "json", "list-backups", "empty"],
        vec!["-c", c, "list-backups", "idle"],
        vec!["-c", c, "list-backups", "badcomp"],
        vec!["-c", c, "list-backups", "oddwal"],
        vec!["-c", c, "-f", "json", "list-backups", "oddwal"],
        vec!["-c", c, "list-backups", "all"],
        vec!["-c", c, "-f", "json", "list-backups", "all"],
        vec!["-c", c, "list-backup", "window", "snap", "nosuch"],
        vec!["-c", c, "-f", "json", "list-backups", "plain", "nosuch"],
    ] {
        world.compare(&args);
    }
    let listed = stdout(&world.compare(&["-c", c, "list-backups", "snap"]));
    assert!(listed.contains(" - KEEP:STANDALONE"), "{listed}");
    assert!(listed.contains(" - WAITING_FOR_WALS"), "{listed}");
    assert!(listed.contains(" - OBSOLETE"), "{listed}");
    let window = stdout(&world.compare(&["-c", c, "list-backups", "window"]));
    assert!(window.contains(" - OBSOLETE*"), "{window}");
}

#[test]
fn server_catalog_show_backup_as_barman() {
    let (world, conf, snap, window) = world();
    let c = conf.as_str();
    let mut ids: Vec<String> = snap.iter().map(|b| b.id.clone()).collect();
    ids.extend(window.iter().map(|b| b.id.clone()));
    for id in &ids {
        let server = if snap.iter().any(|b| b.id == *id) {
            "snap"
        } else {
            "window"
        };
        world.compare(&["-c", c, "show-backup", server, id]);
        world.compare(&["-c", c, "-f", "json", "show-backup", server, id]);
    }
    for shortcut in [
        "latest",
        "last",
        "oldest",
        "first",
        "last-failed",
        "failed",
        "latest-full",
        "weekly",
        "nightly",
        "20990101T000000",
        "nosuch",
    ] {
        world.compare(&["-c", c, "show-backup", "snap", shortcut]);
        world.compare(&["-c", c, "-f", "json", "show-backups", "snap", shortcut]);
    }
    for args in [
        vec!["-c", c, "show-backup", "plain", "latest"],
        vec!["-c", c, "show-backup", "plain", "oldest"],
        vec!["-c", c, "-f", "json", "show-backup", "plain", "oldest"],
        vec!["-c", c, "show-backup", "idle", "latest"],
        vec!["-c", c, "show-backup", "badcomp", "latest"],
        vec!["-c", c, "show-backup", "oddwal", "latest"],
        vec!["-c", c, "show-backup", "oddwal", "oldest"],
        vec!["-c", c, "-f", "json", "show-backup", "oddwal", "oldest"],
        vec!["-c", c, "show-backup", "empty", "latest"],
        vec!["-c", c, "show-backup", "nosuch", "latest"],
        vec!["-c", c, "show-backup", "all", "latest"],
    ] {
        world.compare(&args);
    }
    let shown = stdout(&world.compare(&["-c", c, "show-backup", "snap", &snap[2].id]));
    for expected in [
        "Reachable timelines  : 2",
        "Retention Policy     : KEEP:FULL",
        "Estimated throughput : 3 B/s (2 jobs)",
        "Snapshot information:",
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    let shown = stdout(&world.compare(&["-c", c, "show-backup", "snap", &snap[3].id]));
    assert!(
        shown.contains("  Tablespaces:\n    tbs_a                : /srv/tbs_a (oid: 16400)\n"),
        "{shown}"
    );
}

#[test]
fn server_catalog_keep_as_barman() {
    let (world, conf, snap, _) = world();
    let c = conf.as_str();
    let ours = world.ours();
    let theirs = python_barman();
    let status = |id: &str| {
        world.compare(&["-c", c, "keep", "snap", id, "--status"]);
        world.compare(&["-c", c, "-f", "json", "keep", "snap", id, "--status"]);
        stdout(&world.run(&ours, &["-c", c, "keep", "snap", id, "--status"]))
    };
    // Existing annotations, both locations.
    assert!(status(&snap[2].id).contains("\tKeep: full"));
    assert!(status(&snap[3].id).contains("\tKeep: standalone"));
    assert!(status(&snap[0].id).contains("\tKeep: nokeep"));
    // Set by us, read by Barman.
    let set = world.run(
        &ours,
        &[
            "-c",
            c,
            "keep",
            "snap",
            &snap[0].id,
            "--target",
            "standalone",
        ],
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert_eq!(stdout(&set), "");
    let read = world.run(&theirs, &["-c", c, "keep", "snap", &snap[0].id, "--status"]);
    assert_eq!(stdout(&read), format!("Server snap:\n\tKeep: standalone\n"));
    world.compare(&["-c", c, "list-backups", "snap"]);
    world.compare(&["-c", c, "show-backup", "snap", &snap[0].id]);
    // Released by Barman, seen by us.
    let released = world.run(
        &theirs,
        &["-c", c, "keep", "snap", &snap[0].id, "--release"],
    );
    assert_eq!(released.status.code(), Some(0), "{}", stderr(&released));
    assert!(status(&snap[0].id).contains("nokeep"));
    // Set by Barman (by name), released by us (by shortcut).
    let set = world.run(
        &theirs,
        &["-c", c, "keep", "snap", "latest", "--target", "full"],
    );
    assert_eq!(set.status.code(), Some(0), "{}", stderr(&set));
    assert!(status("latest").contains("\tKeep: full"));
    world.compare(&["-c", c, "list-backups", "snap"]);
    let released = world.run(&ours, &["-c", c, "keep", "snap", "latest", "--release"]);
    assert_eq!(released.status.code(), Some(0), "{}", stderr(&released));
    assert!(status("latest").contains("nokeep"));
    // The legacy annotation released by us: gone for Barman too.
    let released = world.run(&ours, &["-c", c, "keep", "snap", &snap[3].id, "--release"]);
    assert_eq!(released.status.code(), Some(0), "{}", stderr(&released));
    assert!(status(&snap[3].id).contains("nokeep"));
    world.compare(&["-c", c, "list-backups", "snap"]);
    // Both set the same keep: same files, same outputs.
    world.compare(&["-c", c, "keep", "snap", "weekly", "--target", "standalone"]);
    assert!(status("weekly").contains("standalone"));
    // Refusals and usage.
    for args in [
        vec!["-c", c, "keep", "snap", &snap[1].id, "--target", "full"],
        vec!["-c", c, "keep", "snap", &snap[4].id, "--target", "full"],
        vec![
            "-c",
            c,
            "keep",
            "snap",
            &snap[5].id,
            "--target",
            "standalone",
        ],
        vec![
            "-c",
            c,
            "-f",
            "json",
            "keep",
            "snap",
            &snap[1].id,
            "--target",
            "full",
        ],
        vec!["-c", c, "keep", "snap", "last-failed", "--status"],
        vec!["-c", c, "keep", "snap", "latest"],
        vec!["-c", c, "-f", "json", "keep", "snap", "latest"],
        vec!["-c", c, "keep", "snap", "nosuch", "--status"],
        vec!["-c", c, "keep", "snap", "nightly", "--status"],
        vec!["-c", c, "keep", "nosuch", "latest", "--status"],
        vec!["-c", c, "keep", "all", "latest", "--status"],
        vec!["-c", c, "keep", "idle", "latest", "--status"],
        vec!["-c", c, "keep", "badcomp", "latest", "--status"],
    ] {
        world.compare(&args);
    }
}

const REAL_CONF: &str = "[barman]
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
retention_policy = REDUNDANCY 1
";

/// A real snapshot backup taken by Python Barman (`barman backup snap --wait`) of a real
/// PostgreSQL 15 whose PGDATA sits on an EC2 volume in moto (the set-up of
/// `server_check`), then a second one named: both tools show the same catalog.
#[test]
fn server_catalog_of_real_snapshot_backups_as_barman() {
    use crate::ec2::Ec2World;
    use crate::server_world::CheckHost;

    let ec2 = Ec2World::new("srvcatalog", 1);
    let host = CheckHost::new("srvcatalog", "snap", ec2.env());
    host.mounts
        .mount(&ec2.volume(0).device, &host.cluster.data(), "rw,noatime");
    host.write_conf(
        &REAL_CONF
            .replace("{ssh}", &host.good_ssh.display().to_string())
            .replace("{instance}", ec2.instance_name())
            .replace("{disks}", &ec2.volume(0).name),
    );
    for args in [
        vec!["backup", "snap", "--wait"],
        vec!["backup", "snap", "--wait", "--name", "second"],
    ] {
        let out = host.run(&python_barman(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "Barman's backup:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
    }
    for args in [
        vec!["list-backups", "snap"],
        vec!["-f", "json", "list-backups", "snap"],
        vec!["show-backup", "snap", "latest"],
        vec!["show-backup", "snap", "oldest"],
        vec!["show-backup", "snap", "second"],
        vec!["-f", "json", "show-backup", "snap", "latest"],
        vec!["-f", "json", "show-backup", "snap", "oldest"],
        vec!["keep", "snap", "oldest", "--status"],
    ] {
        host.compare(&args);
    }
    let kept = host.run(
        &host.world.ours(),
        &["keep", "snap", "oldest", "--target", "full"],
    );
    assert_eq!(kept.status.code(), Some(0), "{}", stderr(&kept));
    for args in [
        vec!["list-backups", "snap"],
        vec!["show-backup", "snap", "oldest"],
        vec!["keep", "snap", "oldest", "--status"],
    ] {
        host.compare(&args);
    }
    let shown = stdout(&host.compare(&["show-backup", "snap", "oldest"]));
    assert!(
        shown.contains("Retention Policy     : KEEP:FULL"),
        "{shown}"
    );
    assert!(shown.contains("Snapshot information:"), "{shown}");
}
