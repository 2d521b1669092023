//! Command behaviour: idempotency, refusal to overwrite, exit codes and error messages,
//! mostly on file:// destinations (no network needed) and checked on the cloud services.

use crate::support::*;

const SEG1: &str = "000000010000000000000001";
const SEG2: &str = "000000010000000000000002";

#[test]
fn rearchiving_identical_content_succeeds_without_a_second_object() {
    for service in ALL_SERVICES {
        let dest = Destination::create(service, "idem");
        let work = temp_dir("idem");
        let wal = work.path().join(SEG1);
        std::fs::write(&wal, segment_content(SEG1, 1, 1 << 20, 1 << 19)).unwrap();
        for attempt in 0..3 {
            let out = dest.ours_with(
                "barman-cloud-wal-archive",
                &["--gzip"],
                &["srv", wal.to_str().unwrap()],
            );
            assert_success(&out, &format!("archive attempt {attempt} on {service:?}"));
        }
        // Same WAL again without compression: already archived (as .gz), nothing new.
        let out = dest.ours("barman-cloud-wal-archive", &["srv", wal.to_str().unwrap()]);
        assert_success(&out, "re-archive with another compression");
        if service == Service::Local {
            assert_eq!(
                local_files(&std::path::PathBuf::from(dest.bucket())),
                vec![format!("srv/wals/0000000100000000/{SEG1}.gz")]
            );
        }
        let target = work.path().join("restored");
        let out = dest.ours(
            "barman-cloud-wal-restore",
            &["srv", SEG1, target.to_str().unwrap()],
        );
        assert_success(&out, "restore");
        assert_eq!(
            std::fs::read(&target).unwrap(),
            std::fs::read(&wal).unwrap()
        );
    }
}

#[test]
fn different_content_under_an_archived_name_is_refused_and_not_overwritten() {
    for service in ALL_SERVICES {
        let dest = Destination::create(service, "conflict");
        let work = temp_dir("conflict");
        let wal = work.path().join(SEG1);
        let original = segment_content(SEG1, 1, 1 << 20, 1 << 19);
        std::fs::write(&wal, &original).unwrap();
        assert_success(
            &dest.ours("barman-cloud-wal-archive", &["srv", wal.to_str().unwrap()]),
            "first archive",
        );

        std::fs::write(&wal, segment_content(SEG1, 2, 1 << 20, 1 << 19)).unwrap();
        for options in [&[][..], &["--zstd"][..]] {
            let out = dest.ours_with(
                "barman-cloud-wal-archive",
                options,
                &["srv", wal.to_str().unwrap()],
            );
            assert_exit(
                &out,
                1,
                &format!("conflicting archive {options:?} on {service:?}"),
            );
            assert!(
                stderr(&out).contains("different content"),
                "{}",
                stderr(&out)
            );
        }
        let target = work.path().join("restored");
        let out = dest.ours(
            "barman-cloud-wal-restore",
            &["srv", SEG1, target.to_str().unwrap()],
        );
        assert_success(&out, "restore after refused overwrite");
        assert_eq!(
            std::fs::read(&target).unwrap(),
            original,
            "the archived WAL changed"
        );
        if service == Service::Local {
            assert_eq!(
                local_files(&std::path::PathBuf::from(dest.bucket())),
                vec![format!("srv/wals/0000000100000000/{SEG1}")]
            );
        }
    }
}

#[test]
fn bad_input_exits_3_with_one_line() {
    let dest = Destination::create(Service::Local, "badinput");
    let work = temp_dir("badinput");
    let bad = work.path().join("not-a-wal");
    std::fs::write(&bad, b"x").unwrap();
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "barman-cloud-wal-archive",
            vec![],
            vec!["srv", bad.to_str().unwrap()],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--no-such-option"],
            vec!["srv"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--gzip", "--bzip2"],
            vec!["srv"],
        ),
        ("barman-cloud-wal-archive", vec!["-v", "-q"], vec!["srv"]),
        (
            "barman-cloud-wal-archive",
            vec!["--compression-level", "fastest"],
            vec!["srv"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--tag", "aws:x,y"],
            vec!["srv"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--max-block-size", "0"],
            vec!["srv"],
        ),
        ("barman-cloud-wal-archive", vec![], vec!["srv"]),
        (
            "barman-cloud-wal-restore",
            vec![],
            vec!["srv", "nonsense", "/tmp/x"],
        ),
        ("barman-cloud-wal-restore", vec![], vec!["srv"]),
        (
            "barman-cloud-check-wal-archive",
            vec!["--timeline", "0"],
            vec!["srv"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--cloud-provider", "dropbox"],
            vec!["srv"],
        ),
    ];
    for (command, options, rest) in cases {
        let out = dest.ours_with(command, &options, &rest);
        assert_exit(&out, 3, &format!("{command} {options:?} {rest:?}"));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn errors_map_to_barman_exit_codes() {
    let work = temp_dir("codes");
    let dest = Destination::create(Service::Local, "codes");
    // Missing WAL file: other error (4).
    let out = dest.ours(
        "barman-cloud-wal-archive",
        &["srv", work.path().join(SEG1).to_str().unwrap()],
    );
    assert_exit(&out, 4, "archive of a missing file");
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one-line error: {}",
        stderr(&out)
    );
    // WAL not in the archive: 1, which PostgreSQL takes as "not available".
    let out = dest.ours(
        "barman-cloud-wal-restore",
        &["srv", SEG2, work.path().join("x").to_str().unwrap()],
    );
    assert_exit(&out, 1, "restore of a missing WAL");
    assert!(stderr(&out).contains(&format!("WAL file {SEG2} for server srv does not exist")));
    // Destination directory missing: 4, and nothing left behind.
    let wal = work.path().join(SEG1);
    std::fs::write(&wal, b"content").unwrap();
    assert_success(
        &dest.ours("barman-cloud-wal-archive", &["srv", wal.to_str().unwrap()]),
        "archive",
    );
    let out = dest.ours(
        "barman-cloud-wal-restore",
        &["srv", SEG1, "/nonexistent-dir/x"],
    );
    assert_exit(&out, 4, "restore into a missing directory");
    // Bad URL: 4.
    let mut bad_url = dest.clone();
    bad_url.url = "s3:///nobucket".into();
    let out = bad_url.ours("barman-cloud-wal-archive", &["srv", wal.to_str().unwrap()]);
    assert_exit(&out, 4, "bad URL");
    // Not yet implemented commands refuse with 4 but answer --version and --help.
    let out = std::process::Command::new(our_binary())
        .args(["barman-cloud-backup", "--version"])
        .output()
        .unwrap();
    assert_success(&out, "backup --version");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("barman-cloud-backup 3.20.1"));
}

#[test]
fn connectivity_test_mode_uses_barman_codes() {
    for service in ALL_SERVICES {
        let existing = Destination::create(service, "tmode");
        let out = existing.ours_with("barman-cloud-wal-archive", &["-t"], &["srv", SEG1]);
        assert_exit(&out, 0, &format!("-t on an existing bucket ({service:?})"));
        let missing = Destination::new(service, "tmissing");
        let out = missing.ours_with(
            "barman-cloud-wal-restore",
            &["-t"],
            &["srv", SEG1, "/tmp/x"],
        );
        assert_exit(&out, 1, &format!("-t on a missing bucket ({service:?})"));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    }
    // Nothing listens on this port: network error, exit 2, for every command.
    let mut down = Destination::new(Service::S3, "down");
    down.args = vec!["--endpoint-url".into(), "http://127.0.0.1:9".into()];
    let out = down.ours_with("barman-cloud-wal-archive", &["-t"], &["srv", SEG1]);
    assert_exit(&out, 2, "-t with the server down");
    let out = down.ours("barman-cloud-check-wal-archive", &["srv"]);
    assert_exit(&out, 2, "check-wal-archive with the server down");
    let out = down.ours("barman-cloud-wal-restore", &["srv", SEG1, "/tmp/x"]);
    assert_exit(&out, 2, "wal-restore with the server down");

    // Without -t, Barman exits 2 only where it tests connectivity itself (wal-restore,
    // check-wal-archive); elsewhere the failure reaches its catch-all, exit 4. Clients
    // classify these codes (CloudNativePG's restore), so ours are the same.
    let wal = temp_dir("down-wal");
    let wal_path = wal.path().join(SEG1);
    std::fs::write(&wal_path, b"x").unwrap();
    let wal_path = wal_path.to_str().unwrap();
    let restore_dir = wal.path().join("restore");
    let restore_dir = restore_dir.to_str().unwrap();
    let calls: [(&str, Vec<&str>); 8] = [
        ("barman-cloud-wal-archive", vec!["srv", wal_path]),
        ("barman-cloud-wal-restore", vec!["srv", SEG1, "/tmp/x"]),
        ("barman-cloud-check-wal-archive", vec!["srv"]),
        ("barman-cloud-backup-list", vec!["srv"]),
        ("barman-cloud-backup-show", vec!["srv", "20261129T000000"]),
        (
            "barman-cloud-backup-delete",
            vec!["srv", "-r", "REDUNDANCY 1"],
        ),
        (
            "barman-cloud-backup-keep",
            vec!["srv", "20261129T000000", "--status"],
        ),
        (
            "barman-cloud-restore",
            vec!["srv", "20261129T000000", restore_dir],
        ),
    ];
    for (command, rest) in calls {
        let ours = down.ours(command, &rest);
        let barman = down.barman(command, &[], &rest);
        assert_same_exit(&ours, &barman, &format!("{command} with the server down"));
    }
}

#[test]
fn check_wal_archive_creates_the_bucket_and_honours_timelines() {
    for service in ALL_SERVICES {
        let dest = Destination::new(service, "check");
        let out = dest.ours("barman-cloud-check-wal-archive", &["srv"]);
        assert_success(&out, &format!("check on a new bucket ({service:?})"));
        let work = temp_dir("check");
        let wal = work.path().join(SEG1);
        std::fs::write(&wal, b"wal").unwrap();
        assert_success(
            &dest.ours("barman-cloud-wal-archive", &["srv", wal.to_str().unwrap()]),
            "archive",
        );
        let out = dest.ours("barman-cloud-check-wal-archive", &["srv"]);
        assert_exit(&out, 1, "check with WAL present");
        assert!(
            stderr(&out)
                .contains("WAL archive check failed for server srv: Expected empty archive")
        );
        let out = dest.ours_with(
            "barman-cloud-check-wal-archive",
            &["--timeline", "2"],
            &["srv"],
        );
        assert_success(&out, "only older timelines present");
        let out = dest.ours_with(
            "barman-cloud-check-wal-archive",
            &["--timeline", "1"],
            &["srv"],
        );
        assert_exit(&out, 1, "same timeline present");
        assert!(
            stderr(&out).contains("Found 1 file in WAL archive equal to or newer than timeline 1")
        );
        // Another server name in the same bucket is independent.
        assert_success(
            &dest.ours("barman-cloud-check-wal-archive", &["other"]),
            "other server",
        );
    }
}

#[test]
fn partial_segments_and_prefetch() {
    let dest = Destination::create(Service::Local, "partial");
    let work = temp_dir("partial");
    let partial = work.path().join(format!("{SEG1}.partial"));
    std::fs::write(&partial, b"partial content").unwrap();
    assert_success(
        &dest.ours(
            "barman-cloud-wal-archive",
            &["srv", partial.to_str().unwrap()],
        ),
        "archive partial",
    );
    let target = work.path().join("out");
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--no-partial"],
        &["srv", SEG1, target.to_str().unwrap()],
    );
    assert_exit(&out, 1, "--no-partial ignores the .partial");
    assert_success(
        &dest.ours(
            "barman-cloud-wal-restore",
            &["srv", SEG1, target.to_str().unwrap()],
        ),
        "partial served",
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"partial content");

    // The complete segment wins over its .partial.
    let complete = work.path().join(SEG1);
    let complete_content = segment_content(SEG1, 1, 1 << 20, 1000);
    std::fs::write(&complete, &complete_content).unwrap();
    assert_success(
        &dest.ours(
            "barman-cloud-wal-archive",
            &["srv", complete.to_str().unwrap()],
        ),
        "archive complete",
    );
    assert_success(
        &dest.ours(
            "barman-cloud-wal-restore",
            &["srv", SEG1, target.to_str().unwrap()],
        ),
        "complete served",
    );
    assert!(std::fs::read(&target).unwrap() == complete_content);

    // --parallel 3 fetches the next two segments into the spool; the next request is served from it.
    for n in 2..=4 {
        let wal = work.path().join(format!("0000000100000000000000{n:02X}"));
        let name = format!("0000000100000000000000{n:02X}");
        std::fs::write(&wal, segment_content(&name, n, 1 << 20, 1000)).unwrap();
        assert_success(
            &dest.ours_with(
                "barman-cloud-wal-archive",
                &["--lz4"],
                &["srv", wal.to_str().unwrap()],
            ),
            "archive",
        );
    }
    let spool = work.path().join("spool");
    let spool_arg = spool.to_str().unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["-p", "3", "--spool-dir", spool_arg],
        &["srv", SEG2, target.to_str().unwrap()],
    );
    assert_success(&out, "restore with prefetch");
    assert!(std::fs::read(&target).unwrap() == segment_content(SEG2, 2, 1 << 20, 1000));
    let mut spooled: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    spooled.sort();
    assert_eq!(
        spooled,
        vec!["000000010000000000000003", "000000010000000000000004"]
    );
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--spool-dir", spool_arg],
        &["srv", "000000010000000000000003", target.to_str().unwrap()],
    );
    assert_success(&out, "restore from spool");
    let seg3 = segment_content("000000010000000000000003", 3, 1 << 20, 1000);
    assert!(std::fs::read(&target).unwrap() == seg3);
    assert!(
        !spool.join("000000010000000000000003").exists(),
        "spooled file moved, not copied"
    );
}

#[test]
fn secrets_never_reach_the_logs() {
    let dest = Destination::create(Service::Azure, "secret");
    let key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq";
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["-vv"],
        &["srv", SEG1, "/tmp/x"],
    );
    assert_exit(&out, 1, "restore of a missing WAL on Azure");
    assert!(
        !stderr(&out).contains(key),
        "the account key leaked: {}",
        stderr(&out)
    );
    let mut s3 = Destination::create(Service::S3, "secret");
    s3.env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    s3.env
        .push(("AWS_SECRET_ACCESS_KEY".into(), "SuperSecretValue42".into()));
    let out = s3.ours_with(
        "barman-cloud-wal-restore",
        &["-vv"],
        &["srv", SEG1, "/tmp/x"],
    );
    assert!(
        !stderr(&out).contains("SuperSecretValue42"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn restore_onto_a_full_disk_fails_cleanly() {
    let work = temp_dir("diskfull");
    let wal = work.path().join(SEG1);
    std::fs::write(&wal, segment_content(SEG1, 3, 1 << 20, 1 << 20)).unwrap();
    let full = TinyFilesystem::mount("64k");
    for options in [&[][..], &["--gzip"][..]] {
        let dest = Destination::create(Service::Local, "diskfull");
        assert_success(
            &dest.ours_with(
                "barman-cloud-wal-archive",
                options,
                &["srv", wal.to_str().unwrap()],
            ),
            "archive",
        );
        let target = full.0.path().join("RECOVERYXLOG");
        let out = dest.ours(
            "barman-cloud-wal-restore",
            &["srv", SEG1, target.to_str().unwrap()],
        );
        assert_exit(
            &out,
            4,
            &format!("restore {options:?} onto a full filesystem"),
        );
        assert!(
            stderr(&out).contains("No space left on device"),
            "{}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
        assert!(
            local_files(full.0.path()).is_empty(),
            "left behind: {:?}",
            local_files(full.0.path())
        );
    }
}

#[test]
fn wrong_credentials_give_barmans_exit_codes() {
    let mut dest = Destination::create(Service::Azure, "badkey");
    let work = temp_dir("badkey");
    let wal = work.path().join(SEG1);
    std::fs::write(&wal, b"wal").unwrap();
    let wrong_key = "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IHdyb25nIGtleQ==";
    for (k, v) in dest.env.iter_mut() {
        if k == "AZURE_STORAGE_CONNECTION_STRING" {
            let start = v.find("AccountKey=").unwrap() + "AccountKey=".len();
            let end = start + v[start..].find(';').unwrap();
            v.replace_range(start..end, wrong_key);
        }
    }
    let target = work.path().join("out");
    let cases: [(&str, Vec<&str>); 3] = [
        (
            "barman-cloud-wal-archive",
            vec!["srv", wal.to_str().unwrap()],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["srv", SEG1, target.to_str().unwrap()],
        ),
        ("barman-cloud-check-wal-archive", vec!["srv"]),
    ];
    for (command, rest) in cases {
        let ours = dest.ours(command, &rest);
        let barman = dest.barman(command, &[], &rest);
        assert_ne!(
            ours.status.code(),
            Some(0),
            "{command} succeeded with a wrong key"
        );
        assert_same_exit(&ours, &barman, command);
        assert!(!stderr(&ours).contains(wrong_key), "the key leaked");
    }
}

#[test]
fn missing_bucket_gives_barmans_exit_codes() {
    for service in [Service::S3, Service::Azure, Service::Gcs] {
        let dest = Destination::new(service, "nobucket");
        let work = temp_dir("nobucket");
        let wal = work.path().join(SEG1);
        std::fs::write(&wal, b"wal").unwrap();
        let target = work.path().join("out");
        let restore_dir = work.path().join("restore");
        let restore_dir = restore_dir.to_str().unwrap();
        let id = "20261129T000000";
        let cases: [(&str, &[&str], Vec<&str>); 9] = [
            (
                "barman-cloud-wal-archive",
                &[],
                vec!["srv", wal.to_str().unwrap()],
            ),
            (
                "barman-cloud-wal-archive",
                &["-t"],
                vec!["srv", wal.to_str().unwrap()],
            ),
            (
                "barman-cloud-wal-restore",
                &[],
                vec!["srv", SEG1, target.to_str().unwrap()],
            ),
            (
                "barman-cloud-wal-restore",
                &["-t"],
                vec!["srv", SEG1, target.to_str().unwrap()],
            ),
            // Outside -t, Barman never asks whether the bucket exists: the failure
            // reaches its catch-all (exit 4), also when reading one object.
            ("barman-cloud-backup-list", &[], vec!["srv"]),
            ("barman-cloud-backup-show", &[], vec!["srv", id]),
            ("barman-cloud-backup-keep", &["--status"], vec!["srv", id]),
            ("barman-cloud-restore", &[], vec!["srv", id, restore_dir]),
            ("barman-cloud-backup-delete", &["-b", id], vec!["srv"]),
        ];
        for (command, options, rest) in cases {
            let ours = dest.ours_with(command, options, &rest);
            let barman = dest.barman(command, options, &rest);
            assert_same_exit(
                &ours,
                &barman,
                &format!("{command} {options:?} on a missing {service:?} bucket"),
            );
        }
    }
}
