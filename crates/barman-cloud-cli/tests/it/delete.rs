//! barman-cloud-backup-delete and -backup-keep against Barman 3.20.1: the same catalog is
//! uploaded to two buckets, each tool deletes from its own, and the objects left, the
//! exit codes and the dry-run output must be the same.

use std::path::Path;
use std::process::Output;

use crate::support::*;

const SERVER: &str = "srv";

/// One backup of a synthetic catalog.
#[derive(Clone)]
struct Synthetic {
    id: &'static str,
    status: &'static str,
    timeline: u32,
    begin: u64,
    /// `None`: the backup never finished (no end WAL, no end time).
    end: Option<u64>,
    /// When it ended, in hours before now (recovery windows are relative to now).
    hours_ago: i64,
    name: Option<&'static str>,
    /// Extra parts of the PGDATA archive (`data_0001.tar`...).
    parts: usize,
    tablespace: bool,
    gzip: bool,
}

const fn backup(
    id: &'static str,
    status: &'static str,
    timeline: u32,
    begin: u64,
    end: Option<u64>,
    hours_ago: i64,
) -> Synthetic {
    Synthetic {
        id,
        status,
        timeline,
        begin,
        end,
        hours_ago,
        name: None,
        parts: 0,
        tablespace: false,
        gzip: false,
    }
}

fn wal(timeline: u32, segment: u64) -> String {
    format!("{timeline:08X}{:08X}{:08X}", segment >> 8, segment & 0xff)
}

fn lsn(segment: u64, offset: u64) -> String {
    let position = (segment << 24) + offset;
    format!("{:X}/{:X}", position >> 32, position & 0xffff_ffff)
}

fn time(hours_ago: i64) -> String {
    (chrono::Local::now() - chrono::TimeDelta::hours(hours_ago))
        .fixed_offset()
        .format("%Y-%m-%d %H:%M:%S%:z")
        .to_string()
}

fn backup_info(b: &Synthetic) -> String {
    let mut lines = vec![
        "backup_label=None".to_string(),
        format!("backup_name={}", b.name.unwrap_or("None")),
        "begin_offset=40".into(),
        format!("begin_time={}", time(b.hours_ago + 1)),
        format!("begin_wal={}", wal(b.timeline, b.begin)),
        format!("begin_xlog={}", lsn(b.begin, 40)),
    ];
    match b.end {
        Some(end) => lines.extend([
            "end_offset=312".to_string(),
            format!("end_time={}", time(b.hours_ago)),
            format!("end_wal={}", wal(b.timeline, end)),
            format!("end_xlog={}", lsn(end, 312)),
        ]),
        None => lines.extend([
            "end_offset=None".to_string(),
            "end_time=None".into(),
            "end_wal=None".into(),
            "end_xlog=None".into(),
        ]),
    }
    if b.status == "FAILED" {
        lines.push("error=failure uploading data (connection lost)".into());
    }
    lines.extend([
        "pgdata=/var/lib/postgresql/15/main".to_string(),
        "server_name=cloud".into(),
        format!("status={}", b.status),
        "systemid=7400000000000000000".into(),
        format!(
            "tablespaces={}",
            if b.tablespace {
                "[('tbs', 16385, '/srv/tbs')]"
            } else {
                "None"
            }
        ),
        format!("timeline={}", b.timeline),
        "version=150000".into(),
        "xlog_segment_size=16777216".into(),
    ]);
    lines.join("\n") + "\n"
}

/// A tar holding one file that names the archive, so restores can be checked.
fn write_tar(path: &Path, member: &str, content: &str, gzip: bool) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join(member), content).unwrap();
    let status = std::process::Command::new("tar")
        .arg(if gzip { "-czf" } else { "-cf" })
        .arg(path)
        .arg("-C")
        .arg(work.path())
        .arg(member)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The synthetic bucket: backups on two timelines with every status, split archives,
/// a tablespace, names; WAL of every kind (segments, compressed ones, `.partial`,
/// `.backup`, `.history`) over three `wals/` directories per timeline; objects Barman
/// ignores (a stray file, a malformed directory).
fn synthetic_backups() -> Vec<Synthetic> {
    let mut backups = vec![
        backup("20250101T000000", "DONE", 1, 0x002, Some(0x003), 24 * 40),
        backup("20250102T000000", "DONE", 1, 0x040, Some(0x041), 24 * 35),
        backup("20250103T000000", "FAILED", 1, 0x080, None, 24 * 33),
        backup("20250104T000000", "DONE", 1, 0x100, Some(0x102), 24 * 30),
        backup("20250105T000000", "DONE", 1, 0x140, Some(0x141), 24 * 20),
        backup("20250106T000000", "STARTED", 1, 0x150, None, 24 * 19),
        backup("20250107T000000", "DONE", 1, 0x200, Some(0x201), 24 * 10),
        backup(
            "20250108T000000",
            "WAITING_FOR_WALS",
            1,
            0x210,
            Some(0x211),
            24 * 8,
        ),
        backup("20250109T000000", "DONE", 1, 0x220, Some(0x221), 24 * 5),
        backup("20250110T000000", "DONE", 2, 0x232, Some(0x233), 24 * 2),
        backup("20250111T000000", "DONE", 2, 0x238, Some(0x239), 24),
    ];
    backups[4].name = Some("monthly");
    backups[6].parts = 2;
    backups[6].tablespace = true;
    backups[10].gzip = true;
    backups
}

fn write_synthetic_catalog(root: &Path) {
    let base = root.join(SERVER).join("base");
    for b in synthetic_backups() {
        let dir = base.join(b.id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("backup.info"), backup_info(&b)).unwrap();
        let ext = if b.gzip { "tar.gz" } else { "tar" };
        write_tar(&dir.join(format!("data.{ext}")), "PG_VERSION", b.id, b.gzip);
        for part in 1..=b.parts {
            let name = format!("data_{part:04}.{ext}");
            write_tar(&dir.join(&name), &format!("part{part}"), b.id, b.gzip);
        }
        if b.tablespace {
            write_tar(&dir.join(format!("16385.{ext}")), "tbs", b.id, b.gzip);
        }
    }
    let wals = root.join(SERVER).join("wals");
    let mut names: Vec<String> = Vec::new();
    // Sparse timeline 1 up to the switch to timeline 2 at 0x230.
    for segment in (0x001..0x230).step_by(0x10) {
        names.push(wal(1, segment));
    }
    for b in synthetic_backups() {
        for segment in b.begin..=b.end.unwrap_or(b.begin) {
            names.push(wal(b.timeline, segment));
        }
        names.push(format!("{}.00000028.backup", wal(b.timeline, b.begin)));
    }
    names.push(format!("{}.partial", wal(1, 0x230)));
    names.push(format!("{}.partial", wal(1, 0x031)));
    for segment in 0x230..0x240 {
        names.push(wal(2, segment));
    }
    names.sort();
    names.dedup();
    for (i, name) in names.iter().enumerate() {
        let dir = wals.join(&name[..16]);
        std::fs::create_dir_all(&dir).unwrap();
        let file = match i % 3 {
            0 => name.clone(),
            1 => format!("{name}.gz"),
            _ => format!("{name}.zst"),
        };
        std::fs::write(dir.join(file), name).unwrap();
    }
    std::fs::write(
        wals.join("00000002.history"),
        "1\t0/23000000\tno recovery target\n",
    )
    .unwrap();
    std::fs::write(wals.join("0000000100000000").join("notes.txt"), "not a WAL").unwrap();
    std::fs::create_dir_all(wals.join("garbage")).unwrap();
    std::fs::write(wals.join("garbage").join(wal(1, 0x0fe)), "misplaced").unwrap();
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two identical buckets holding `catalog` (a directory whose top level is the URL
/// prefix's content) plus `keeps`, one for each tool.
fn twin_buckets(
    service: Service,
    catalog: &Path,
    keeps: &[(&str, &str)],
) -> (Destination, Destination) {
    let ours = Destination::create(service, "delours");
    let barman = Destination::create(service, "delbarman");
    let staging = temp_dir("delstage");
    let prefixed = staging.path().join("pg");
    copy_tree(catalog, &prefixed);
    for (id, target) in keeps {
        let dir = prefixed
            .join(SERVER)
            .join("base")
            .join(id)
            .join("annotations");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keep"), target).unwrap();
    }
    ours.bucket_tool(&[
        "upload",
        &staging.path().display().to_string(),
        &ours.bucket(),
        &barman.bucket(),
    ]);
    (ours, barman)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs the same delete with both tools (dry run first, then for real) and checks that
/// they agree on everything: exit code, dry-run lines, and the objects left.
fn same_deletion(ours: &Destination, barman: &Destination, options: &[&str]) -> Vec<String> {
    let before = ours.object_keys();
    assert_eq!(before, barman.object_keys(), "the twin buckets differ");

    let mut dry = options.to_vec();
    dry.push("--dry-run");
    let our_dry = ours.ours_with("barman-cloud-backup-delete", &dry, &[SERVER]);
    let barman_dry = barman.barman("barman-cloud-backup-delete", &dry, &[SERVER]);
    assert_eq!(
        our_dry.status.code(),
        barman_dry.status.code(),
        "{dry:?}: exit codes differ\nours: {}\nBarman: {}",
        stderr(&our_dry),
        stderr(&barman_dry)
    );
    // Keys differ only by bucket name, which is not printed.
    assert_eq!(
        stdout(&our_dry),
        stdout(&barman_dry),
        "{dry:?}: dry-run output differs"
    );
    assert_eq!(
        ours.object_keys(),
        before,
        "{dry:?}: our dry run changed the bucket"
    );
    assert_eq!(
        barman.object_keys(),
        before,
        "{dry:?}: Barman's dry run changed the bucket"
    );

    let our_run = ours.ours_with("barman-cloud-backup-delete", options, &[SERVER]);
    let barman_run = barman.barman("barman-cloud-backup-delete", options, &[SERVER]);
    assert_eq!(
        our_run.status.code(),
        barman_run.status.code(),
        "{options:?}: exit codes differ\nours: {}\nBarman: {}",
        stderr(&our_run),
        stderr(&barman_run)
    );
    let left = ours.object_keys();
    assert_eq!(
        left,
        barman.object_keys(),
        "{options:?}: the objects left differ"
    );
    left
}

fn backups_left(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| k.ends_with("/backup.info"))
        .map(|k| k.rsplit('/').nth(1).unwrap().to_string())
        .collect()
}

fn wal_count(keys: &[String]) -> usize {
    keys.iter().filter(|k| k.contains("/wals/")).count()
}

struct Scenario {
    options: &'static [&'static str],
    keeps: &'static [(&'static str, &'static str)],
    /// Backups expected to be left (a sanity check on top of the comparison with Barman).
    left: &'static [&'static str],
}

const ALL: &[&str] = &[
    "20250101T000000",
    "20250102T000000",
    "20250103T000000",
    "20250104T000000",
    "20250105T000000",
    "20250106T000000",
    "20250107T000000",
    "20250108T000000",
    "20250109T000000",
    "20250110T000000",
    "20250111T000000",
];

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            options: &["-r", "REDUNDANCY 2"],
            keeps: &[],
            left: &[
                "20250103T000000",
                "20250106T000000",
                "20250108T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        // Kept backups use up redundancy slots; standalone ones let WAL before them go.
        Scenario {
            options: &["-r", "redundancy   3"],
            keeps: &[
                ("20250101T000000", "standalone"),
                ("20250109T000000", "full"),
                ("20250104T000000", ""),
            ],
            left: &[
                "20250101T000000",
                "20250103T000000",
                "20250106T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-r", "REDUNDANCY 1", "-m", "4"],
            keeps: &[("20250102T000000", "standalone")],
            left: &[
                "20250102T000000",
                "20250103T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-r", "RECOVERY WINDOW OF 12 DAYS", "--batch-size", "3"],
            keeps: &[("20250101T000000", "full")],
            left: &[
                "20250101T000000",
                "20250103T000000",
                "20250105T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-r", "recovery window of 1 week", "-m", "5"],
            keeps: &[("20250105T000000", "standalone")],
            left: &[
                "20250103T000000",
                "20250105T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-r", "RECOVERY WINDOW OF 1 MONTH"],
            keeps: &[("20250102T000000", "standalone\n")],
            left: &[
                "20250102T000000",
                "20250103T000000",
                "20250104T000000",
                "20250105T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-b", "oldest"],
            keeps: &[],
            left: &ALL_BUT_FIRST,
        },
        // The newest backup on timeline 2: WAL of timeline 1 is protected.
        Scenario {
            options: &["-b", "last"],
            keeps: &[],
            left: &ALL_BUT_LAST,
        },
        Scenario {
            options: &["-b", "monthly", "-m", "2"],
            keeps: &[("20250101T000000", "standalone")],
            left: &[
                "20250101T000000",
                "20250102T000000",
                "20250103T000000",
                "20250104T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        Scenario {
            options: &["-b", "last-failed"],
            keeps: &[],
            left: &[
                "20250101T000000",
                "20250102T000000",
                "20250104T000000",
                "20250105T000000",
                "20250106T000000",
                "20250107T000000",
                "20250108T000000",
                "20250109T000000",
                "20250110T000000",
                "20250111T000000",
            ],
        },
        // Refused: kept (even by an empty annotation), and minimum redundancy.
        Scenario {
            options: &["-b", "20250104T000000"],
            keeps: &[("20250104T000000", "")],
            left: ALL,
        },
        Scenario {
            options: &["-b", "first", "-m", "10"],
            keeps: &[],
            left: ALL,
        },
        // A well-formed ID of no backup: a warning, exit 0, nothing deleted.
        Scenario {
            options: &["-b", "20240101T000000"],
            keeps: &[],
            left: ALL,
        },
    ]
}

const ALL_BUT_FIRST: [&str; 10] = [
    "20250102T000000",
    "20250103T000000",
    "20250104T000000",
    "20250105T000000",
    "20250106T000000",
    "20250107T000000",
    "20250108T000000",
    "20250109T000000",
    "20250110T000000",
    "20250111T000000",
];

const ALL_BUT_LAST: [&str; 10] = [
    "20250101T000000",
    "20250102T000000",
    "20250103T000000",
    "20250104T000000",
    "20250105T000000",
    "20250106T000000",
    "20250107T000000",
    "20250108T000000",
    "20250109T000000",
    "20250110T000000",
];

#[test]
fn retention_policies_and_keeps_leave_what_barman_leaves_s3() {
    let catalog = temp_dir("delcatalog");
    write_synthetic_catalog(catalog.path());
    let mut wal_deleted_somewhere = false;
    for scenario in scenarios() {
        let (ours, barman) = twin_buckets(Service::S3, catalog.path(), scenario.keeps);
        let before = wal_count(&ours.object_keys());
        let left = same_deletion(&ours, &barman, scenario.options);
        assert_eq!(
            backups_left(&left),
            scenario.left,
            "{:?}: unexpected backups left",
            scenario.options
        );
        wal_deleted_somewhere |= wal_count(&left) < before;

        // Our local directories follow the same rules (with S3's directory shortcut).
        let local_root = temp_dir("dellocal");
        let local = Destination::local_at(local_root.path());
        copy_tree(catalog.path(), local_root.path());
        for (id, target) in scenario.keeps {
            let dir = local_root
                .path()
                .join(SERVER)
                .join("base")
                .join(id)
                .join("annotations");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("keep"), target).unwrap();
        }
        local.ours_with("barman-cloud-backup-delete", scenario.options, &[SERVER]);
        let on_s3: Vec<String> = left.iter().map(|k| k["pg/".len()..].to_string()).collect();
        assert_eq!(
            local_files(local_root.path()),
            on_s3,
            "{:?}: file:// and S3 differ",
            scenario.options
        );
    }
    assert!(wal_deleted_somewhere, "no scenario deleted any WAL");
}

#[test]
fn retention_on_azure_and_gcs_leaves_what_barman_leaves() {
    let catalog = temp_dir("delcatalog");
    write_synthetic_catalog(catalog.path());
    for service in [Service::Azure, Service::Gcs] {
        for scenario in scenarios().into_iter().filter(|s| {
            matches!(
                s.options,
                ["-r", "REDUNDANCY 2"] | ["-r", "redundancy   3"] | ["-b", "oldest"]
            )
        }) {
            let (ours, barman) = twin_buckets(service, catalog.path(), scenario.keeps);
            let left = same_deletion(&ours, &barman, scenario.options);
            assert_eq!(
                backups_left(&left),
                scenario.left,
                "{service:?} {:?}",
                scenario.options
            );
        }
    }
}
