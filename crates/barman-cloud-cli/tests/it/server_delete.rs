//! `barman delete` and the retention enforcement of `barman cron` on a snapshot server,
//! against Python Barman 3.20.1: two copies of one crafted `barman_home` (backup.info
//! files as 3.20.1 writes them for snapshot backups, `base/<id>/data/backup_label`,
//! stored WAL without suffix and xlog.db), each copy's backups owning real snapshots of
//! one volume in moto's EC2. Python Barman works on one copy, ours on the other; the
//! outputs, the resulting trees and xlog.db must be the same, and the snapshots of the
//! deleted backups must be gone from EC2 (the others kept).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::ec2::Ec2World;
use crate::server_world::{World, prefixed_lines, python_barman};
use crate::support::*;

const CONF: &str = "[barman]
barman_home = {home}
barman_user = root
log_level = INFO
log_file = {dir}/barman.log

[snap]
description = Snapshot server
conninfo = host=/nonexistent user=postgres dbname=postgres
ssh_command = ssh -o BatchMode=yes nowhere.invalid
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = {instance}
snapshot_disks = {disk}
archiver = on
";

/// One crafted backup.
#[derive(Clone)]
pub(crate) struct Spec {
    pub id: String,
    pub status: &'static str,
    /// Segment numbers of begin_wal and end_wal (timeline 1).
    begin: u32,
    end: u32,
    /// Days before now of end_time.
    age_days: i64,
    name: Option<&'static str>,
    keep: Option<&'static str>,
    /// Whether it has snapshots (a FAILED one may not).
    snapshot: bool,
}

pub(crate) fn spec(id: &str, begin: u32, end: u32) -> Spec {
    Spec {
        id: id.to_string(),
        status: "DONE",
        begin,
        end,
        age_days: 1,
        name: None,
        keep: None,
        snapshot: true,
    }
}

pub(crate) fn wal(segment: u32) -> String {
    format!("00000001{:08X}{:08X}", 0, segment)
}

/// One copy of the crafted home, with its own snapshots.
pub(crate) struct Home {
    pub world: World,
    /// Snapshot IDs by backup ID.
    pub snapshots: BTreeMap<String, String>,
}

/// One "now" for the whole test binary, so that both copies get the same times.
fn test_now() -> chrono::DateTime<chrono::Local> {
    static NOW: std::sync::OnceLock<chrono::DateTime<chrono::Local>> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| {
        let now = chrono::Local::now();
        now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
    })
}

fn end_time(days: i64) -> chrono::DateTime<chrono::FixedOffset> {
    (test_now() - chrono::Duration::days(days)).fixed_offset()
}

fn backup_info(s: &Spec, snapshot: Option<&str>) -> String {
    let end = end_time(s.age_days);
    let begin = end - chrono::Duration::seconds(30);
    let fmt =
        |t: chrono::DateTime<chrono::FixedOffset>| t.format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string();
    let label = format!(
        "START WAL LOCATION: 0/{b:X}000028 (file {bw})\\nCHECKPOINT LOCATION: 0/{b:X}000060\\n\
         BACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: {st}\\nLABEL: Barman \
         backup snap {id}\\nSTART TIMELINE: 1\\n",
        b = s.begin,
        bw = wal(s.begin),
        st = begin.format("%Y-%m-%d %H:%M:%S UTC"),
        id = s.id
    );
    let snapshots_info = match snapshot {
        Some(snap) => format!(
            "{{'provider': 'aws', 'provider_info': {{'account_id': '123456789012', 'region': \
             'us-east-1'}}, 'snapshots': [{{'mount': {{'mount_options': 'rw,noatime', \
             'mount_point': '/mnt/pg'}}, 'provider': {{'device_name': '/dev/sdf', \
             'snapshot_id': '{snap}', 'snapshot_name': 'pgdata-{lower}', \
             'snapshot_lock_mode': None}}}}]}}",
            lower = s.id.to_lowercase()
        ),
        None => "None".to_string(),
    };
    let mut lines = vec![
        format!("backup_id={}", s.id),
        format!("backup_label='{label}'"),
    ];
    if let Some(name) = s.name {
        lines.push(format!("backup_name={name}"));
    }
    lines.extend([
        "begin_offset=40".to_string(),
        format!("begin_time={}", fmt(begin)),
        format!("begin_wal={}", wal(s.begin)),
        format!("begin_xlog=0/{:X}000028", s.begin),
        "children_backup_ids=None".into(),
        "cluster_size=30000000".into(),
        "compression=None".into(),
        "config_file=/var/lib/postgresql/data/postgresql.conf".into(),
        "copy_stats={'copy_time': 0.060936, 'total_time': 0.060936}".into(),
        "data_checksums=off".into(),
        "deduplicated_size=234".into(),
        "encryption=None".into(),
        format!("end_offset={}", 0x100),
        format!("end_time={}", fmt(end)),
        format!("end_wal={}", wal(s.end)),
        format!("end_xlog=0/{:X}000100", s.end),
        format!(
            "error={}",
            if s.status == "FAILED" {
                "failure for the test"
            } else {
                "None"
            }
        ),
        "hba_file=/var/lib/postgresql/data/pg_hba.conf".into(),
        "ident_file=/var/lib/postgresql/data/pg_ident.conf".into(),
        "included_files=None".into(),
        "mode=snapshot-concurrent".into(),
        "parent_backup_id=None".into(),
        "pgdata=/mnt/pg/data".into(),
        "server_name=snap".into(),
        "size=234".into(),
        format!("snapshots_info={snapshots_info}"),
        format!("status={}", s.status),
        "summarize_wal=None".into(),
        "systemid=7400000000000000001".into(),
        "tablespaces=None".into(),
        "timeline=1".into(),
        "version=150010".into(),
        "xlog_segment_size=16777216".into(),
    ]);
    lines.join("\n") + "\n"
}

impl Home {
    /// Writes the configuration, the backups (each with a snapshot of the world's volume
    /// named for it when `snapshot`), `wals` (segment numbers, each stored with a
    /// `.backup` file for every backup beginning there) and a timeline history file.
    fn craft(tag: &str, ec2: &Ec2World, extra: &str, specs: &[Spec], wals: &[u32]) -> Home {
        let world = World::new(tag);
        world.write(
            "barman.conf",
            &(CONF
                .replace("{instance}", ec2.instance_name())
                .replace("{disk}", &ec2.volume(0).name)
                + extra),
        );
        let root = world.path("home/snap");
        for dir in ["base", "errors", "incoming", "meta", "streaming", "wals"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let mut snapshots = BTreeMap::new();
        for s in specs {
            let snap = s.snapshot.then(|| {
                ec2.create_snapshot(
                    &ec2.volume(0).id,
                    &format!("pgdata-{}", s.id.to_lowercase()),
                )
                .unwrap()
            });
            std::fs::write(
                root.join(format!("meta/{}-backup.info", s.id)),
                backup_info(s, snap.as_deref()),
            )
            .unwrap();
            let data = root.join(format!("base/{}/data", s.id));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("backup_label"), format!("LABEL of {}\n", s.id)).unwrap();
            if let Some(keep) = s.keep {
                std::fs::write(root.join(format!("meta/{}-keep", s.id)), keep).unwrap();
            }
            if let Some(snap) = snap {
                snapshots.insert(s.id.clone(), snap);
            }
        }
        let mut xlog = String::new();
        let add = |name: &str, xlog: &mut String| {
            let dir = if name.ends_with(".history") {
                root.join("wals")
            } else {
                root.join("wals").join(&name[..16])
            };
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), format!("content of {name}")).unwrap();
            xlog.push_str(&format!(
                "{name}\t{}\t1795974932.6966207\tNone\tNone\n",
                10 + name.len()
            ));
        };
        for segment in wals {
            add(&wal(*segment), &mut xlog);
            for _ in specs.iter().filter(|s| s.begin == *segment) {
                add(&format!("{}.00000028.backup", wal(*segment)), &mut xlog);
            }
        }
        add("00000002.history", &mut xlog);
        std::fs::write(root.join("wals/snap-xlog.db"), xlog).unwrap();
        Home { world, snapshots }
    }

    pub fn run(&self, program: &Path, args: &[&str], ec2: &Ec2World) -> Output {
        let conf = self.world.path("barman.conf").display().to_string();
        let mut all = vec!["-c", conf.as_str()];
        all.extend(args);
        let env = ec2.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.world.run_with(program, &all, None, &env)
    }

    /// Every file and directory under `home/`, with contents (snapshot IDs masked; lock
    /// files by name only).
    fn tree(&self) -> BTreeMap<String, String> {
        let root = self.world.path("home");
        let mut found = BTreeMap::new();
        walk(&root, &root, &mut found);
        let mut masked = BTreeMap::new();
        // Barman's cron writes its configuration-changes queue (not a part of this).
        found.remove("cfg_changes.queue");
        for (path, mut content) in found {
            if path.ends_with(".lock") {
                content = String::new();
            }
            for (id, snap) in &self.snapshots {
                content = content.replace(snap, &format!("SNAP-OF-{id}"));
            }
            masked.insert(path, content);
        }
        masked
    }

    /// [`Self::tree`] without the lock files of `barman_home` (cron's detached archive-wal takes and leaves locks at its own pace).
    fn tree_without_locks(&self) -> BTreeMap<String, String> {
        let mut tree = self.tree();
        tree.retain(|path, _| !path.ends_with(".lock"));
        tree
    }

    /// `text` with this copy's directory written `<DIR>`.
    pub fn masked(&self, text: &str) -> String {
        text.replace(&self.world.path("").display().to_string(), "<DIR>/")
    }

    fn exists(&self, relative: &str) -> bool {
        self.world.path("home/snap").join(relative).exists()
    }
}

fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        if path.is_dir() {
            found.insert(format!("{relative}/"), String::new());
            walk(root, &path, found);
        } else {
            found.insert(
                relative,
                String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
            );
        }
    }
}

/// Barman names the backup of `Cannot delete backup (<server> <backup>)` by the repr of
/// its `LocalBackupInfo` object; we print the backup ID.
pub(crate) fn error_lines(text: &str) -> Vec<String> {
    prefixed_lines(text)
        .into_iter()
        .map(
            |line| match line.strip_prefix("ERROR: Cannot delete backup (") {
                Some(rest) => format!(
                    "ERROR: Cannot delete backup ({} <BACKUP>)",
                    rest.split(' ').next().unwrap_or_default()
                ),
                None => line.to_string(),
            },
        )
        .collect()
}

/// The run's `Deleted backup ... (start time: ..., elapsed time: ...)` times masked.
pub(crate) fn mask(text: &str) -> String {
    text.lines()
        .map(|line| match line.find(" (start time: ") {
            Some(at) if line.starts_with("Deleted backup ") => {
                format!("{} (start time: <T>, elapsed time: <E>)", &line[..at])
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The two copies and the world their snapshots live in.
pub(crate) struct Pair {
    pub ec2: Ec2World,
    pub theirs: Home,
    pub ours: Home,
}

impl Pair {
    pub fn new(tag: &str, extra: &str, specs: &[Spec], wals: &[u32]) -> Pair {
        let ec2 = Ec2World::new(tag, 1);
        let theirs = Home::craft(&format!("{tag}-py"), &ec2, extra, specs, wals);
        let ours = Home::craft(&format!("{tag}-rs"), &ec2, extra, specs, wals);
        assert_eq!(theirs.tree(), ours.tree());
        Pair { ec2, theirs, ours }
    }

    /// Runs `args` on both copies: same stdout (times masked), same error lines, same
    /// exit code, same trees afterwards. Returns ours.
    pub fn compare(&self, args: &[&str]) -> Output {
        let theirs = self.theirs.run(&python_barman(), args, &self.ec2);
        let ours = self.ours.run(&self.ours.world.ours(), args, &self.ec2);
        let what = format!("barman {}", args.join(" "));
        assert_eq!(
            mask(&stdout(&ours)),
            mask(&stdout(&theirs)),
            "stdout of {what}\nour stderr: {}\nBarman's stderr: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(
            error_lines(&self.ours.masked(&stderr(&ours))),
            error_lines(&self.theirs.masked(&stderr(&theirs))),
            "stderr of {what}\nours: {}\nBarman's: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "exit of {what}");
        self.assert_same_trees(&what);
        ours
    }

    fn assert_same_trees(&self, what: &str) {
        let (ours, theirs) = (self.ours.tree(), self.theirs.tree());
        if ours != theirs {
            let only = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
                a.iter()
                    .filter(|(k, v)| b.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
            };
            panic!(
                "trees differ after {what}: ours only/different {:?}, Barman's only/different {:?}",
                only(&ours, &theirs),
                only(&theirs, &ours)
            );
        }
    }

    /// Asserts which backups' snapshots still exist in EC2, in both copies.
    fn assert_snapshots(&self, kept: &[&str], gone: &[&str]) {
        for home in [&self.theirs, &self.ours] {
            for id in kept {
                let snap = &home.snapshots[*id];
                assert!(self.ec2.snapshot(snap).is_some(), "{snap} of {id} kept");
            }
            for id in gone {
                let snap = &home.snapshots[*id];
                assert!(self.ec2.snapshot(snap).is_none(), "{snap} of {id} deleted");
            }
        }
    }
}

pub(crate) fn xlog(home: &Home) -> String {
    std::fs::read_to_string(home.world.path("home/snap/wals/snap-xlog.db")).unwrap()
}

#[test]
fn server_delete_matches_barman_with_shortcuts_names_and_wal_cleanup() {
    let mut failed = spec("20261101T100000", 3, 3);
    failed.status = "FAILED";
    failed.snapshot = false;
    let mut named = spec("20261103T100000", 8, 9);
    named.name = Some("nightly");
    let specs = [
        spec("20261102T100000", 5, 6),
        failed,
        named,
        spec("20261104T100000", 11, 12),
    ];
    let wals: Vec<u32> = (1..=14).collect();
    let pair = Pair::new("srvdel", "", &specs, &wals);

    pair.compare(&["delete", "snap", "nosuch"]);
    pair.compare(&["delete", "nosuchserver", "latest"]);
    // The last failed backup (no snapshots), the oldest of all: the WAL before the next
    // copied backup goes.
    let out = pair.compare(&["delete", "snap", "last-failed"]);
    let text = stdout(&out);
    assert!(
        text.starts_with("Deleting backup 20261101T100000 for server snap\n"),
        "{text}"
    );
    assert!(text.contains("Delete associated WAL segments:\n\t000000010000000000000001\n"));
    // By name, with an older backup left: no WAL goes.
    let out = pair.compare(&["delete", "snap", "nightly"]);
    assert!(!stdout(&out).contains("WAL"), "{}", stdout(&out));
    // The oldest: its snapshot, then the WAL before the next backup's begin WAL (history
    // files kept).
    let out = pair.compare(&["delete", "snap", "oldest"]);
    let text = stdout(&out);
    assert!(text.contains("Delete associated WAL segments:\n\t000000010000000000000005\n"));
    assert!(!text.contains("history"), "{text}");
    assert!(!xlog(&pair.ours).contains("00000001000000000000000A\t"));
    assert!(xlog(&pair.ours).contains("00000001000000000000000B\t"));
    assert!(xlog(&pair.ours).contains("00000002.history\t"));
    assert!(
        !pair
            .ours
            .exists("wals/0000000100000000/00000001000000000000000A")
    );
    pair.assert_snapshots(
        &["20261104T100000"],
        &["20261102T100000", "20261103T100000"],
    );
    // The last one: the WAL from its begin WAL on stays (concurrent backups).
    pair.compare(&["delete", "snap", "latest"]);
    pair.assert_snapshots(&[], &["20261103T100000", "20261104T100000"]);
    assert!(xlog(&pair.ours).starts_with("00000001000000000000000B\t"));
    assert!(!pair.ours.exists("meta/20261104T100000-backup.info"));
    assert!(!pair.ours.exists("base/20261104T100000"));
    pair.compare(&["delete", "snap", "latest"]);
}

#[test]
fn server_delete_refusals_match_barman() {
    let mut kept = spec("20261102T100000", 5, 6);
    kept.keep = Some("full");
    let specs = [kept, spec("20261103T100000", 8, 9)];
    let wals: Vec<u32> = (4..=10).collect();
    let pair = Pair::new("srvdelref", "minimum_redundancy = 2\n", &specs, &wals);
    let out = pair.compare(&["delete", "snap", "20261102T100000"]);
    assert!(
        stderr(&out).contains("current keep request"),
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    let out = pair.compare(&["delete", "snap", "latest"]);
    assert!(
        stderr(&out).contains("due to minimum redundancy requirements"),
        "{}",
        stderr(&out)
    );
    // The same refusal with the JSON writer.
    // Barman's `_ERROR` names the backup by its object's repr (see `error_lines`).
    let args = ["-f", "json", "delete", "snap", "latest"];
    let theirs = pair.theirs.run(&python_barman(), &args, &pair.ec2);
    let ours = pair.ours.run(&pair.ours.world.ours(), &args, &pair.ec2);
    let parse = |out: &Output| {
        let mut value: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        let error = value["_ERROR"][0].as_str().unwrap().to_string();
        assert!(error.starts_with("Cannot delete backup (snap "), "{error}");
        value["_ERROR"][0] = "Cannot delete backup (snap <BACKUP>)".into();
        value
    };
    assert_eq!(parse(&ours), parse(&theirs));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(stdout(&ours).contains("\"_WARNING\""), "{}", stdout(&ours));
    pair.assert_same_trees("delete in JSON");
    pair.assert_snapshots(&["20261102T100000", "20261103T100000"], &[]);
}

#[test]
fn server_delete_locked_snapshot_keeps_the_backup() {
    let specs = [spec("20261102T100000", 5, 6), spec("20261103T100000", 8, 9)];
    let wals: Vec<u32> = (4..=10).collect();
    let pair = Pair::new("srvdellock", "", &specs, &wals);
    for home in [&pair.theirs, &pair.ours] {
        pair.ec2
            .lock_snapshot(&home.snapshots["20261102T100000"], "governance", 1)
            .unwrap();
    }
    let before = xlog(&pair.ours);
    let out = pair.compare(&["delete", "snap", "oldest"]);
    assert_eq!(out.status.code(), Some(1));
    let snap = &pair.ours.snapshots["20261102T100000"];
    assert!(
        stderr(&out).contains(&format!("Locked snapshot: {snap}.")),
        "{}",
        stderr(&out)
    );
    assert_eq!(xlog(&pair.ours), before);
    assert!(pair.ours.exists("meta/20261102T100000-backup.info"));
    assert!(pair.ours.exists("base/20261102T100000/data/backup_label"));
    pair.assert_snapshots(&["20261102T100000", "20261103T100000"], &[]);
    // Unlocked, the deletion runs again to its end.
    for home in [&pair.theirs, &pair.ours] {
        pair.ec2
            .unlock_snapshot(&home.snapshots["20261102T100000"])
            .unwrap();
    }
    pair.compare(&["delete", "snap", "oldest"]);
    pair.assert_snapshots(&["20261103T100000"], &["20261102T100000"]);
}

/// `barman cron` on both copies, then the trees compared once the background
/// archive-wal runs have finished (Barman's retention runs inside cron itself, its
/// archive-wal in a detached process).
pub(crate) fn compare_cron(pair: &Pair) -> (Output, Output) {
    let theirs = pair.theirs.run(&python_barman(), &["cron"], &pair.ec2);
    let ours = pair.ours.run(&pair.ours.world.ours(), &["cron"], &pair.ec2);
    assert_eq!(
        mask(&stdout(&ours)),
        mask(&stdout(&theirs)),
        "stdout of cron\nours: {}\nBarman's: {}",
        stderr(&ours),
        stderr(&theirs)
    );
    assert_eq!(
        error_lines(&pair.ours.masked(&stderr(&ours))),
        error_lines(&pair.theirs.masked(&stderr(&theirs))),
        "stderr of cron\nours: {}\nBarman's: {}",
        stderr(&ours),
        stderr(&theirs)
    );
    assert_eq!(ours.status.code(), theirs.status.code());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ours, theirs) = (
            pair.ours.tree_without_locks(),
            pair.theirs.tree_without_locks(),
        );
        if ours == theirs {
            break;
        }
        if Instant::now() > deadline {
            assert_eq!(
                ours.keys().collect::<Vec<_>>(),
                theirs.keys().collect::<Vec<_>>()
            );
            assert_eq!(ours, theirs, "trees after cron");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The detached archive-wal runs leave lock files at their own pace: once they are
    // done (their lock free), every lock file goes, so later comparisons see only the
    // commands they compare.
    for home in [&pair.theirs, &pair.ours] {
        let root = home.world.path("home");
        let archive = root.join(".snap-archive-wal.lock");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Barman's archive-wal takes the lock soon after cron returns: give it time.
            std::thread::sleep(Duration::from_millis(1500));
            let free = barman_cloud::server::lock::LockFile::try_acquire(&archive)
                .unwrap()
                .is_some();
            if free || Instant::now() > deadline {
                break;
            }
        }
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    (ours, theirs)
}

#[test]
fn server_delete_cron_retention_redundancy() {
    let mut standalone = spec("20261101T100000", 2, 3);
    standalone.keep = Some("standalone");
    let specs = [
        standalone,
        spec("20261102T100000", 5, 6),
        spec("20261103T100000", 8, 9),
        spec("20261104T100000", 11, 12),
        spec("20261105T100000", 14, 15),
    ];
    let wals: Vec<u32> = (1..=16).collect();
    let pair = Pair::new(
        "srvdelred",
        "retention_policy = REDUNDANCY 2\n",
        &specs,
        &wals,
    );
    let (ours, _) = compare_cron(&pair);
    let text = stdout(&ours);
    assert!(
        text.contains(
            "Enforcing retention policy: removing backup 20261102T100000 for server snap\n"
        ),
        "{text}"
    );
    pair.assert_snapshots(
        &["20261101T100000", "20261104T100000", "20261105T100000"],
        &["20261102T100000", "20261103T100000"],
    );
    // The standalone backup's range stays, the rest before the oldest remaining one goes.
    let left = xlog(&pair.ours);
    assert!(left.contains("000000010000000000000002\t"), "{left}");
    assert!(left.contains("000000010000000000000003\t"), "{left}");
    assert!(!left.contains("000000010000000000000001\t"), "{left}");
    assert!(!left.contains("000000010000000000000004\t"), "{left}");
    assert!(!left.contains("00000001000000000000000A\t"), "{left}");
    assert!(left.contains("00000001000000000000000B\t"), "{left}");
    // Nothing more to do on a second run.
    compare_cron(&pair);
}

#[test]
fn server_delete_cron_retention_recovery_window() {
    let ids: Vec<String> = [40, 30, 20, 10, 1]
        .iter()
        .map(|days| {
            (test_now() - chrono::Duration::days(*days))
                .format("%Y%m%dT%H%M%S")
                .to_string()
        })
        .collect();
    let ages = [40, 30, 20, 10, 1];
    let specs: Vec<Spec> = ids
        .iter()
        .zip(ages)
        .enumerate()
        .map(|(i, (id, age))| {
            let mut s = spec(id, 2 + 3 * i as u32, 3 + 3 * i as u32);
            s.age_days = age;
            s
        })
        .collect();
    let wals: Vec<u32> = (1..=17).collect();
    // The 20-day-old backup is the newest one older than the window: needed. The 30-day
    // one is kept for minimum_redundancy (OBSOLETE*), the 40-day one goes.
    let pair = Pair::new(
        "srvdelwin",
        "retention_policy = RECOVERY WINDOW OF 2 WEEKS\nminimum_redundancy = 4\n",
        &specs,
        &wals,
    );
    let (ours, _) = compare_cron(&pair);
    assert!(
        stdout(&ours).contains(&format!(
            "Enforcing retention policy: removing backup {} for server snap\n",
            ids[0]
        )),
        "{}",
        stdout(&ours)
    );
    pair.assert_snapshots(&[&ids[1], &ids[2], &ids[3], &ids[4]], &[&ids[0]]);
    let left = xlog(&pair.ours);
    assert!(left.starts_with("000000010000000000000005\t"), "{left}");
}

/// What an interrupted deletion leaves in one copy: the delete annotation, the snapshot
/// gone (when `snapshot_gone`) and `base/<id>/data` removed.
fn interrupt(pair: &Pair, id: &str, snapshot_gone: bool) {
    for home in [&pair.theirs, &pair.ours] {
        let root = home.world.path("home/snap");
        std::fs::write(root.join(format!("meta/{id}-delete_this")), "delete").unwrap();
        if snapshot_gone {
            pair.ec2.delete_snapshot(&home.snapshots[id]).unwrap();
        }
        std::fs::remove_dir_all(root.join(format!("base/{id}/data"))).unwrap();
    }
}

#[test]
fn server_delete_interrupted_deletions_are_finished_by_cron_and_delete() {
    let specs = [
        spec("20261102T100000", 5, 6),
        spec("20261103T100000", 8, 9),
        spec("20261104T100000", 11, 12),
        spec("20261105T100000", 14, 15),
    ];
    let wals: Vec<u32> = (4..=16).collect();
    let pair = Pair::new(
        "srvdelint",
        "retention_policy = REDUNDANCY 10\n",
        &specs,
        &wals,
    );
    interrupt(&pair, "20261102T100000", true);
    // An orphan: only the backup.info of 20261104T100000 is left, without annotation.
    // And a WAL xlog.db lists is missing.
    for home in [&pair.theirs, &pair.ours] {
        std::fs::remove_dir_all(home.world.path("home/snap/base/20261104T100000")).unwrap();
        std::fs::remove_file(
            home.world
                .path("home/snap/wals/0000000100000000/000000010000000000000006"),
        )
        .unwrap();
    }
    let (ours, _) = compare_cron(&pair);
    assert!(
        stderr(&ours).contains(
            "WARNING: Ignoring deletion of WAL file 000000010000000000000006 for server snap: \
             [Errno 2] No such file or directory: "
        ),
        "{}",
        stderr(&ours)
    );
    assert!(
        stdout(&ours).contains(
            "Enforcing retention policy: removing backup 20261102T100000 for server snap\n"
        ),
        "{}",
        stdout(&ours)
    );
    assert!(
        stderr(&ours).contains("Backup '20261104T100000' is an orphan backup"),
        "{}",
        stderr(&ours)
    );
    assert!(!pair.ours.exists("meta/20261102T100000-backup.info"));
    assert!(xlog(&pair.ours).starts_with("000000010000000000000008\t"));
    // Interrupted before its snapshot went: `delete` finishes it.
    interrupt(&pair, "20261103T100000", false);
    pair.compare(&["delete", "snap", "20261103T100000"]);
    pair.assert_snapshots(&["20261105T100000"], &["20261103T100000"]);
}

#[test]
fn server_delete_refuses_a_snapshot_of_another_backup() {
    let specs = [spec("20261102T100000", 5, 6), spec("20261103T100000", 8, 9)];
    let wals: Vec<u32> = (4..=10).collect();
    let pair = Pair::new("srvdelown", "", &specs, &wals);
    // 20261102T100000's backup.info names the snapshot of 20261103T100000.
    for home in [&pair.theirs, &pair.ours] {
        let info = home
            .world
            .path("home/snap/meta/20261102T100000-backup.info");
        let text = std::fs::read_to_string(&info).unwrap().replace(
            &home.snapshots["20261102T100000"],
            &home.snapshots["20261103T100000"],
        );
        std::fs::write(&info, text).unwrap();
    }
    let before = xlog(&pair.ours);
    let out = pair.compare(&["delete", "snap", "oldest"]);
    assert_eq!(out.status.code(), Some(1));
    let refusal = format!(
        "EXCEPTION: Refusing to delete snapshot {}: it is not recognized as a snapshot \
         created for backup 20261102T100000\nSee log file for more details.",
        pair.ours.snapshots["20261103T100000"]
    );
    assert!(stderr(&out).contains(&refusal), "{}", stderr(&out));
    assert_eq!(xlog(&pair.ours), before);
    assert!(pair.ours.exists("base/20261102T100000/data/backup_label"));
    pair.assert_snapshots(&["20261102T100000", "20261103T100000"], &[]);
}

#[test]
fn server_delete_busy_locks_and_other_servers() {
    use barman_cloud::server::lock::LockFile;
    let specs = [
        spec("20261102T100000", 5, 6),
        spec("20261103T100000", 8, 9),
        spec("20261104T100000", 11, 12),
    ];
    let wals: Vec<u32> = (4..=13).collect();
    let extra = "retention_policy = REDUNDANCY 1\n\n[off]\ndescription = Inactive\n\
                 active = false\nconninfo = host=/nonexistent\nssh_command = ssh nowhere\n\
                 backup_method = snapshot\nbackup_options = concurrent_backup\n\
                 snapshot_provider = aws\nsnapshot_instance = i\nsnapshot_disks = d\n\n\
                 [broken]\ndescription = Disabled\nconninfo = host=/nonexistent\n\
                 ssh_command = ssh nowhere\nbackup_method = snapshot\n\
                 backup_options = concurrent_backup\nbackup_compression = gzip\n\
                 snapshot_provider = aws\nsnapshot_instance = i\nsnapshot_disks = d\n";
    let pair = Pair::new("srvdelbusy", extra, &specs, &wals);
    pair.compare(&["delete", "off", "latest"]);
    pair.compare(&["delete", "broken", "latest"]);
    pair.compare(&["delete", "all", "latest"]);
    let hold = |name: &str| -> Vec<LockFile> {
        [&pair.theirs, &pair.ours]
            .iter()
            .map(|home| {
                LockFile::try_acquire(&home.world.path("home").join(name))
                    .unwrap()
                    .unwrap()
            })
            .collect()
    };
    {
        let _held = hold(".snap-backup.lock");
        let out = pair.compare(&["delete", "snap", "oldest"]);
        assert!(
            stderr(&out).contains("Another process in running on server snap."),
            "{}",
            stderr(&out)
        );
    }
    {
        let _held = hold(".snap-20261102T100000.lock");
        let out = pair.compare(&["delete", "snap", "oldest"]);
        assert!(
            stderr(&out).contains("Another process is holding the lock for backup"),
            "{}",
            stderr(&out)
        );
        // cron leaves the locked backup and deletes the other obsolete one.
        let (ours, _) = compare_cron(&pair);
        assert!(
            stderr(&ours).contains(
                "Another action is in progress for the backup 20261102T100000 of server \
                 snap, skipping retention policy application"
            ),
            "{}",
            stderr(&ours)
        );
        pair.assert_snapshots(
            &["20261102T100000", "20261104T100000"],
            &["20261103T100000"],
        );
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
check_timeout = 30
";

/// Python Barman takes real snapshot backups of a running PostgreSQL on moto's EC2 (the
/// `server_check` set-up); ours deletes one, Python Barman then sees the catalog ours
/// left and deletes the next; cron's retention by ours deletes another one.
#[test]
fn server_delete_of_backups_python_barman_took() {
    use crate::server_world::CheckHost;
    let ec2 = Ec2World::new("srvdelreal", 1);
    let host = CheckHost::new("srvdelreal", "snap", ec2.env());
    host.mounts
        .mount(&ec2.volume(0).device, &host.cluster.data(), "rw,noatime");
    let conf = REAL_CONF
        .replace("{ssh}", &host.good_ssh.display().to_string())
        .replace("{instance}", ec2.instance_name())
        .replace("{disks}", &ec2.volume(0).name);
    host.write_conf(&conf);
    let python = python_barman();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let out = host.run(&python, &["backup", "snap", "--wait"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let ls = host.run(&python, &["list-backups", "--minimal", "snap"]);
        let newest = stdout(&ls).lines().next().unwrap().trim().to_string();
        assert!(!ids.contains(&newest), "two backups in one second");
        ids.push(newest);
        // Backup IDs have a one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let snapshot_of = |id: &str| -> String {
        let info =
            std::fs::read_to_string(host.world.path(&format!("home/snap/meta/{id}-backup.info")))
                .unwrap();
        let at = info.find("'snapshot_id': '").unwrap() + "'snapshot_id': '".len();
        info[at..at + info[at..].find('\'').unwrap()].to_string()
    };
    let snapshots: Vec<String> = ids.iter().map(|id| snapshot_of(id)).collect();

    // Ours deletes the oldest: its snapshot, its files and the WAL before the next one.
    let out = host.run(&host.world.ours(), &["delete", "snap", "oldest"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.starts_with(&format!("Deleting backup {} for server snap\n", ids[0])),
        "{text}"
    );
    assert!(text.contains("Delete associated WAL segments:\n"), "{text}");
    assert!(ec2.snapshot(&snapshots[0]).is_none());
    assert!(ec2.snapshot(&snapshots[1]).is_some());
    let next_info = std::fs::read_to_string(
        host.world
            .path(&format!("home/snap/meta/{}-backup.info", ids[1])),
    )
    .unwrap();
    let begin_wal = next_info
        .lines()
        .find_map(|l| l.strip_prefix("begin_wal="))
        .unwrap()
        .to_string();
    let xlog = std::fs::read_to_string(host.world.path("home/snap/wals/snap-xlog.db")).unwrap();
    for line in xlog.lines() {
        let name = line.split('\t').next().unwrap();
        assert!(
            name.ends_with(".history") || name >= begin_wal.as_str(),
            "{name} older than {begin_wal} kept"
        );
    }

    // Python Barman reads what ours left and deletes the next one.
    let ls = host.run(&python, &["list-backups", "--minimal", "snap"]);
    assert_eq!(
        stdout(&ls).lines().collect::<Vec<_>>(),
        [&ids[3], &ids[2], &ids[1]]
    );
    let out = host.run(&python, &["delete", "snap", "oldest"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ec2.snapshot(&snapshots[1]).is_none());

    // Ours enforces REDUNDANCY 1 in cron: the older of the two left goes.
    host.write_conf(&(conf + "retention_policy = REDUNDANCY 1\n"));
    let out = host.run(&host.world.ours(), &["cron"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "Enforcing retention policy: removing backup {} for server snap\n",
            ids[2]
        )),
        "{}",
        stdout(&out)
    );
    assert!(ec2.snapshot(&snapshots[2]).is_none());
    assert!(ec2.snapshot(&snapshots[3]).is_some());
    let ls = host.run(&python, &["list-backups", "--minimal", "snap"]);
    assert_eq!(stdout(&ls).lines().collect::<Vec<_>>(), [&ids[3]]);
    let check = host.run(&python, &["check", "snap"]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    // Let the detached archive-wal finish before the home goes.
    std::thread::sleep(Duration::from_secs(2));
}
