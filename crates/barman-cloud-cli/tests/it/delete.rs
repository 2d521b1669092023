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

/// A tar holding one file that names the archive, so restores can be checked (and, in
/// the PGDATA archive, the `pg_tblspc` directory a restore puts tablespace links in).
fn write_tar(path: &Path, member: &str, content: &str, gzip: bool) {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join(member), content).unwrap();
    let mut members = vec![member];
    if member == "PG_VERSION" {
        std::fs::create_dir(work.path().join("pg_tblspc")).unwrap();
        members.push("pg_tblspc");
    }
    let status = std::process::Command::new("tar")
        .arg(if gzip { "-czf" } else { "-cf" })
        .arg(path)
        .arg("-C")
        .arg(work.path())
        .args(members)
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
    assert_same_exit(&our_dry, &barman_dry, &format!("{dry:?}"));
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
    assert_same_exit(&our_run, &barman_run, &format!("{options:?}"));
    let left = ours.object_keys();
    assert_eq!(
        without_orphaned_manifests(&left),
        left,
        "{options:?}: we left an integrity manifest without its backup"
    );
    // Barman leaves the integrity manifest of our backups it deletes; we do not.
    assert_eq!(
        left,
        without_orphaned_manifests(&barman.object_keys()),
        "{options:?}: the objects left differ"
    );
    left
}

/// `keys` without the `barman-rs.manifest` of directories that have no backup.info.
fn without_orphaned_manifests(keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| {
            k.strip_suffix("/barman-rs.manifest")
                .is_none_or(|dir| keys.contains(&format!("{dir}/backup.info")))
        })
        .cloned()
        .collect()
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
    /// Days (in January 2025) of the backups expected to go: a check of our reading of
    /// Barman's rules on top of the comparison with Barman itself.
    deleted: &'static [u32],
}

/// The synthetic backups left once those of `deleted` days went.
fn backups_except(deleted: &[u32]) -> Vec<String> {
    (1..=11)
        .filter(|day| !deleted.contains(day))
        .map(|day| format!("202501{day:02}T000000"))
        .collect()
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            options: &["-r", "REDUNDANCY 2"],
            keeps: &[],
            deleted: &[1, 2, 4, 5, 7, 9],
        },
        // Kept backups use up redundancy slots; standalone ones let WAL before them go.
        Scenario {
            options: &["-r", "redundancy   3"],
            keeps: &[
                ("20250101T000000", "standalone"),
                ("20250109T000000", "full"),
                ("20250104T000000", ""),
            ],
            deleted: &[2, 4, 5, 7],
        },
        Scenario {
            options: &["-r", "REDUNDANCY 1", "-m", "4"],
            keeps: &[("20250102T000000", "standalone")],
            deleted: &[1, 4, 5],
        },
        Scenario {
            options: &["-r", "RECOVERY WINDOW OF 12 DAYS", "--batch-size", "3"],
            keeps: &[("20250101T000000", "full")],
            deleted: &[2, 4],
        },
        Scenario {
            options: &["-r", "recovery window of 1 week", "-m", "5"],
            keeps: &[("20250105T000000", "standalone")],
            deleted: &[1, 2, 4],
        },
        Scenario {
            options: &["-r", "RECOVERY WINDOW OF 1 MONTH"],
            keeps: &[("20250102T000000", "standalone\n")],
            deleted: &[1],
        },
        Scenario {
            options: &["-b", "oldest"],
            keeps: &[],
            deleted: &[1],
        },
        // The newest backup on timeline 2: WAL of timeline 1 is protected.
        Scenario {
            options: &["-b", "last"],
            keeps: &[],
            deleted: &[11],
        },
        Scenario {
            options: &["-b", "monthly", "-m", "2"],
            keeps: &[("20250101T000000", "standalone")],
            deleted: &[5],
        },
        Scenario {
            options: &["-b", "last-failed"],
            keeps: &[],
            deleted: &[3],
        },
        // Refused: kept (even by an empty annotation), and minimum redundancy.
        Scenario {
            options: &["-b", "20250104T000000"],
            keeps: &[("20250104T000000", "")],
            deleted: &[],
        },
        Scenario {
            options: &["-b", "first", "-m", "10"],
            keeps: &[],
            deleted: &[],
        },
        // A well-formed ID of no backup: a warning, exit 0, nothing deleted.
        Scenario {
            options: &["-b", "20240101T000000"],
            keeps: &[],
            deleted: &[],
        },
    ]
}

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
            backups_except(scenario.deleted),
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
                backups_except(scenario.deleted),
                "{service:?} {:?}",
                scenario.options
            );
        }
    }
}

/// One bucket holding the synthetic catalog.
fn catalog_bucket(service: Service, keeps: &[(&str, &str)]) -> Destination {
    let catalog = temp_dir("delcatalog");
    write_synthetic_catalog(catalog.path());
    twin_buckets(service, catalog.path(), keeps).0
}

fn keep_status(out: &Output) -> String {
    assert_success(out, "keep --status");
    stdout(out).trim_end().to_string()
}

#[test]
fn keep_annotations_interoperate_with_barman() {
    for service in [Service::S3, Service::Azure, Service::Gcs] {
        let dest = catalog_bucket(service, &[]);
        let keep = "barman-cloud-backup-keep";
        let status = |ours: bool, id: &str| {
            keep_status(&if ours {
                dest.ours_with(keep, &["--status"], &[SERVER, id])
            } else {
                dest.barman(keep, &["--status"], &[SERVER, id])
            })
        };
        // Ours written, Barman reads; Barman's written (by name), ours reads.
        assert_success(
            &dest.ours_with(keep, &["--target", "full"], &[SERVER, "20250104T000000"]),
            "our keep",
        );
        assert_eq!(status(false, "20250104T000000"), "Keep: full");
        assert_success(
            &dest.barman(keep, &["--target", "standalone"], &[SERVER, "monthly"]),
            "Barman's keep",
        );
        assert_eq!(status(true, "monthly"), "Keep: standalone");
        assert_eq!(status(true, "20250101T000000"), "Keep: nokeep");
        assert_eq!(status(false, "20250101T000000"), "Keep: nokeep");
        let list = |ours: bool| {
            let out = if ours {
                dest.ours_with("barman-cloud-backup-list", &[], &[SERVER])
            } else {
                dest.barman("barman-cloud-backup-list", &[], &[SERVER])
            };
            assert_success(&out, "backup-list");
            stdout(&out)
        };
        let listing = list(true);
        assert!(listing.contains("KEEP:FULL") && listing.contains("KEEP:STANDALONE"));
        assert_eq!(listing, list(false), "{service:?}: backup-list differs");

        // The annotation object is where Barman puts it, with Barman's content.
        let keys = dest.object_keys();
        assert!(keys.contains(&"pg/srv/base/20250104T000000/annotations/keep".to_string()));

        // Refusals and odd cases give Barman's exit codes.
        for (options, id) in [
            (&["--target", "full"][..], "20250103T000000"), // FAILED: exit 1
            (&["--target", "full"][..], "20240101T000000"), // no such backup: exit 4
            (&["--status"][..], "20240101T000000"),         // nokeep, exit 0
            (&["--target", "full"][..], "no-such-name"),    // unknown name: exit 4
        ] {
            let ours = dest.ours_with(keep, options, &[SERVER, id]);
            let barman = dest.barman(keep, options, &[SERVER, id]);
            assert_same_exit(
                &ours,
                &barman,
                &format!("{service:?} keep {options:?} {id}"),
            );
            assert_eq!(stdout(&ours), stdout(&barman), "{options:?} {id}");
        }
        // Releasing a keep that is not there is no error (Barman agrees except on GCS,
        // where its batch delete fails on the missing object: exit 4).
        let ours = dest.ours_with(keep, &["--release"], &[SERVER, "20250101T000000"]);
        assert_success(&ours, "releasing an absent keep");
        if service != Service::Gcs {
            let barman = dest.barman(keep, &["--release"], &[SERVER, "20250101T000000"]);
            assert_success(&barman, "Barman releasing an absent keep");
        }

        // Releases cross over too.
        assert_success(
            &dest.ours_with(keep, &["--release"], &[SERVER, "monthly"]),
            "our release",
        );
        assert_success(
            &dest.barman(keep, &["-r"], &[SERVER, "20250104T000000"]),
            "Barman's release",
        );
        assert_eq!(status(true, "20250104T000000"), "Keep: nokeep");
        assert_eq!(status(false, "monthly"), "Keep: nokeep");
        assert!(!dest.object_keys().iter().any(|k| k.contains("annotations")));
    }
}

#[test]
fn bad_arguments_and_an_unreadable_catalog_are_refused_like_barman() {
    let dest = catalog_bucket(Service::S3, &[]);
    let before = dest.object_keys();
    let delete = "barman-cloud-backup-delete";
    for options in [
        &["-r", "REDUNDANCY"][..],
        &["-r", "RECOVERY WINDOW OF 2 YEARS"],
        &["-r", "redundancy two"],
        &["-b", "first", "-r", "REDUNDANCY 1"],
        &[],
        &["-b", "first", "-m", "-1"],
        &["-b", "no-such-name"],
    ] {
        let ours = dest.ours_with(delete, options, &[SERVER]);
        let barman = dest.barman(delete, options, &[SERVER]);
        assert_same_exit(&ours, &barman, &format!("delete {options:?}"));
        assert_eq!(
            stderr(&ours).trim_end().lines().count(),
            1,
            "{options:?}: one error line expected, got {}",
            stderr(&ours)
        );
    }
    let bad_policy = dest.ours_with(delete, &["-r", "REDUNDANCY two"], &[SERVER]);
    assert!(
        stderr(&bad_policy).contains("Could not create retention policy REDUNDANCY two"),
        "{}",
        stderr(&bad_policy)
    );
    // Barman crashes on MAIN (exit 4); we refuse it as the bad input it is.
    assert_exit(
        &dest.ours_with(delete, &["-r", "MAIN"], &[SERVER]),
        3,
        "MAIN policy",
    );
    let keep = "barman-cloud-backup-keep";
    for options in [&[][..], &["-r", "-s"], &["--target", "forever"]] {
        let ours = dest.ours_with(keep, options, &[SERVER, "first"]);
        let barman = dest.barman(keep, options, &[SERVER, "first"]);
        assert_same_exit(&ours, &barman, &format!("keep {options:?}"));
        assert_eq!(ours.status.code(), Some(3), "keep {options:?}");
    }
    assert_eq!(dest.object_keys(), before, "bad input changed the bucket");

    // One unreadable backup.info: nothing may be deleted (exit 1).
    dest.bucket_tool(&[
        "put",
        &dest.bucket(),
        "pg/srv/base/20250112T000000/backup.info",
        "status=DONE\nbegin_time=not a time\n",
    ]);
    let before = dest.object_keys();
    for options in [&["-r", "REDUNDANCY 1"][..], &["-b", "oldest"]] {
        let ours = dest.ours_with(delete, options, &[SERVER]);
        let barman = dest.barman(delete, options, &[SERVER]);
        assert_exit(&ours, 1, "delete with an unreadable backup.info");
        assert_exit(&barman, 1, "Barman's delete with an unreadable backup.info");
        assert!(stderr(&ours).contains("Cannot read the following backups: ['20250112T000000']"));
    }
    assert_eq!(dest.object_keys(), before);
}

#[test]
fn object_lock_check_refuses_to_delete_a_locked_backup() {
    let catalog = temp_dir("delcatalog");
    write_synthetic_catalog(catalog.path());
    let mut buckets = Vec::new();
    for tag in ["lockours", "lockbarman"] {
        let dest = Destination::new(Service::S3, tag);
        dest.bucket_tool(&["mklocked", &dest.bucket()]);
        buckets.push(dest);
    }
    let staging = temp_dir("delstage");
    copy_tree(catalog.path(), &staging.path().join("pg"));
    buckets[0].bucket_tool(&[
        "upload",
        &staging.path().display().to_string(),
        &buckets[0].bucket(),
        &buckets[1].bucket(),
    ]);
    for dest in &buckets {
        dest.bucket_tool(&[
            "lock",
            &dest.bucket(),
            "pg/srv/base/20250101T000000/data.tar",
        ]);
    }
    let before = buckets[0].object_keys();
    let options = ["-b", "oldest", "--check-object-lock"];
    let ours = buckets[0].ours_with("barman-cloud-backup-delete", &options, &[SERVER]);
    let barman = buckets[1].barman("barman-cloud-backup-delete", &options, &[SERVER]);
    assert_exit(&barman, 1, "Barman's delete of a locked backup");
    assert_exit(&ours, 1, "our delete of a locked backup");
    assert!(stderr(&ours).contains("legal hold"), "{}", stderr(&ours));
    assert_eq!(
        buckets[0].object_keys(),
        before,
        "a locked backup lost objects"
    );
    // Nothing was marked either: the backup still lists as DONE.
    let ids = backup_ids(&buckets[0]);
    assert!(ids.contains(&("20250101T000000".to_string(), "DONE".to_string())));
    for dest in &buckets {
        dest.bucket_tool(&[
            "unlock",
            &dest.bucket(),
            "pg/srv/base/20250101T000000/data.tar",
        ]);
    }
    let left = same_deletion(&buckets[0], &buckets[1], &options);
    assert_eq!(backups_left(&left), backups_except(&[1]));
}

/// The DONE backups of `dest` with Barman's own listing, each restored by Barman's
/// barman-cloud-restore: an interrupted deletion must not leave a DONE backup that
/// cannot be restored.
fn assert_done_backups_restore(dest: &Destination) -> Vec<String> {
    let out = dest.barman("barman-cloud-backup-list", &["--format", "json"], &[SERVER]);
    assert_success(&out, "Barman's backup-list");
    let text = stdout(&out);
    let mut done = Vec::new();
    for entry in text.split("{\"backup_label\": ").skip(1) {
        let field = |key: &str| {
            entry
                .split(&format!("\"{key}\": \""))
                .nth(1)
                .map(|r| r.split('"').next().unwrap().to_string())
                .unwrap_or_default()
        };
        if field("status") == "DONE" {
            done.push(field("backup_id"));
        }
    }
    for id in &done {
        let target = temp_dir("delrestore");
        let dir = target.path().join("data");
        std::fs::create_dir(target.path().join("tbs")).unwrap();
        let tablespace = format!("tbs:{}", target.path().join("tbs").display());
        let out = dest.barman(
            "barman-cloud-restore",
            &["--tablespace", &tablespace],
            &[SERVER, id, dir.to_str().unwrap()],
        );
        assert_success(&out, &format!("Barman restoring {id}"));
        assert_eq!(
            std::fs::read_to_string(dir.join("PG_VERSION")).unwrap(),
            *id
        );
    }
    done
}

#[test]
fn an_interrupted_deletion_never_leaves_a_broken_done_backup() {
    // Storage stops while the third backup is being deleted: before its archives go, and
    // after they went but before its backup.info did (where Barman leaves a DONE backup
    // without data). The relay cuts on the request itself (the key in the DeleteObjects
    // body), so the cut falls exactly there whatever the timing.
    interrupted_deletion(
        "Marked backup 20250104T000000 as being deleted",
        &["20250104T000000/data"],
    );
    interrupted_deletion(
        "Deleted the 1 archives of backup 20250104T000000",
        &["20250104T000000/backup.info</Key>"],
    );
}

fn interrupted_deletion(cut_after: &str, cut_on: &[&str]) {
    let catalog = temp_dir("delcatalog");
    write_synthetic_catalog(catalog.path());
    let (ours, barman) = twin_buckets(Service::S3, catalog.path(), &[]);
    let endpoint = required_env("BARMAN_RS_TEST_S3_ENDPOINT");
    let relay = CuttableRelay::start_cutting_on(endpoint.trim_start_matches("http://"), cut_on);
    let mut through_relay = ours.clone();
    through_relay.args = vec![
        "--endpoint-url".into(),
        format!("http://127.0.0.1:{}", relay.port),
    ];
    let policy = ["-r", "REDUNDANCY 1"];
    let mut verbose = vec!["-v"];
    verbose.extend(policy);
    let out = through_relay.ours_with("barman-cloud-backup-delete", &verbose, &[SERVER]);
    let log = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run cut after {cut_after:?} must fail:\n{log}"
    );
    assert!(log.contains(cut_after), "{log}");

    let ids = backup_ids(&ours);
    assert!(
        ids.contains(&("20250104T000000".to_string(), "FAILED".to_string())),
        "the backup being deleted must list as FAILED: {ids:?}"
    );
    let done = assert_done_backups_restore(&ours);
    assert!(done.contains(&"20250111T000000".to_string()));

    // The next run finishes the job: the bucket ends as Barman's uninterrupted run leaves it.
    let rerun = ours.ours_with("barman-cloud-backup-delete", &policy, &[SERVER]);
    assert_success(&rerun, "the deletion run again");
    let barman_run = barman.barman("barman-cloud-backup-delete", &policy, &[SERVER]);
    assert_success(&barman_run, "Barman's deletion");
    assert_eq!(ours.object_keys(), barman.object_keys());
}

/// archive_command script running Barman's own barman-cloud-wal-archive.
fn barman_archive_script(dir: &Path, dest: &Destination) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("barman-archive.sh");
    let program =
        Path::new(&required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman-cloud-wal-archive");
    let script = format!(
        "#!/bin/sh\n{}exec '{}' {} '{}' {SERVER} \"$1\"\n",
        dest.shell_env(),
        program.display(),
        dest.shell_args(),
        dest.url
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn real_backups_of_both_tools_keep_recovering_after_retention() {
    use crate::postgres::{Cluster, recover};
    let template = Destination::create(Service::S3, "delreal");
    let scripts = temp_dir("delscripts");
    let cluster = Cluster::archiving("delreal", &template, scripts.path(), "");
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    cluster.psql("create table marks (phase int)");
    let connection = cluster.backup_options();
    let with = |extra: &[&str]| -> Vec<String> {
        connection
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // Phase n: rows, a WAL switch, then a backup by one tool or the other; WAL archived
    // by ours first, by Barman's wal-archive from phase 3 on.
    let mut ids = Vec::new();
    for (phase, tool, options) in [
        (1, "barman", &[][..]),
        (2, "ours", &["--gzip"][..]),
        (3, "barman", &["--snappy"][..]),
        (4, "ours", &["--zstd", "-S", "1MB"][..]),
    ] {
        cluster.psql(&format!("insert into marks values ({phase})"));
        cluster.pgbench(&["-t", "200", "-n"]);
        if phase == 3 {
            let script = barman_archive_script(scripts.path(), &template);
            cluster.configure(&format!("archive_command = '{} %p'\n", script.display()));
            cluster.psql("select pg_reload_conf()");
        }
        cluster.archive_everything();
        let args = with(options);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = if tool == "ours" {
            template.ours_with("barman-cloud-backup", &args, &[SERVER])
        } else {
            template.barman("barman-cloud-backup", &args, &[SERVER])
        };
        assert_success(&out, &format!("{tool}'s backup of phase {phase}"));
        let listed = backup_ids(&template);
        ids.push(listed.last().unwrap().0.clone());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    cluster.psql("insert into marks values (5)");
    cluster.pgbench(&["-t", "200", "-n"]);
    cluster.archive_everything();
    let final_state = cluster.psql("select count(*) || ':' || max(phase) from marks");

    // Keeps set by each tool, then retention: phase 2's backup goes, with the WAL between
    // phase 1's end and phase 3's start (phase 1 is standalone, phase 3 full).
    assert_success(
        &template.barman(
            "barman-cloud-backup-keep",
            &["--target", "standalone"],
            &[SERVER, &ids[0]],
        ),
        "Barman's keep",
    );
    assert_success(
        &template.ours_with(
            "barman-cloud-backup-keep",
            &["--target", "full"],
            &[SERVER, &ids[2]],
        ),
        "our keep",
    );
    for options in [&["-r", "REDUNDANCY 1"][..], &["-b", "oldest"]] {
        let ours = Destination::create(Service::S3, "delrealours");
        let barman = Destination::create(Service::S3, "delrealbarman");
        template.bucket_tool(&["copy", &template.bucket(), &ours.bucket(), &barman.bucket()]);
        let before = wal_count(&ours.object_keys());
        let left = same_deletion(&ours, &barman, options);
        if options[0] == "-b" {
            // The oldest is kept (standalone): refused.
            assert_eq!(backups_left(&left).len(), 4);
            continue;
        }
        assert_eq!(
            backups_left(&left),
            [ids[0].clone(), ids[2].clone(), ids[3].clone()]
        );
        assert!(wal_count(&left) < before, "no WAL was deleted");

        // Every backup left restores and PostgreSQL starts on it; from the full-kept and
        // the newest one it recovers every phase, from the standalone one its own.
        for (id, expect_all) in [(&ids[0], false), (&ids[2], true), (&ids[3], true)] {
            let root = temp_dir("delrecover");
            let data = root.path().join("data");
            let out = ours.ours_with(
                "barman-cloud-restore",
                &[],
                &[SERVER, id, data.to_str().unwrap()],
            );
            assert_success(&out, &format!("restoring {id}"));
            let recovered = recover(root, scripts.path(), &ours, "");
            let state = recovered.psql("select count(*) || ':' || max(phase) from marks");
            if expect_all {
                assert_eq!(state, final_state, "recovery from {id}");
            } else {
                assert!(
                    state.ends_with(":1"),
                    "standalone {id} recovered to {state}"
                );
            }
        }
    }
}
