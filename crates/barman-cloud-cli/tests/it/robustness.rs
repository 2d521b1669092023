//! The command line under abuse: a reader that goes away, absurd values, secrets in
//! arguments, file systems that refuse writes. No panic, no secret, a cause named.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::*;

const SEG1: &str = "000000010000000000000001";

/// The directory of a `file://` destination.
/// A DONE backup.info (plus a data.tar) per ID under `srv/base/`, a day apart.
fn fake_backups(dest: &Destination, count: usize) -> Vec<String> {
    let root = PathBuf::from(dest.bucket());
    (0..count)
        .map(|i| {
            let day =
                chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(i as u64);
            let id = format!("{}T000000", day.format("%Y%m%d"));
            let dir = root.join("srv/base").join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("backup.info"),
                format!(
                    "backup_id={id}\nbackup_name=None\nstatus=DONE\n\
                     begin_time={day} 00:00:00.000000+00:00\n\
                     end_time={day} 01:00:00.000000+00:00\n\
                     begin_wal=000000010000000000000002\nend_wal=000000010000000000000002\n\
                     timeline=1\nsize=100\nversion=150000\nsystemid=123\n"
                ),
            )
            .unwrap();
            std::fs::write(dir.join("data.tar"), b"").unwrap();
            id
        })
        .collect()
}

fn with_url(dest: &Destination, url: &str) -> Destination {
    let mut other = dest.clone();
    other.url = url.to_string();
    other
}

fn assert_no_panic(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        out.status.code() != Some(101) && !err.contains("panicked"),
        "{what}: exit {:?}\n{err}",
        out.status.code()
    );
}

/// Runs one of our commands with its standard output read by `reader` (which may stop
/// early and close it), returning the command's exit status and standard error.
fn with_stdout_reader(mut cmd: Command, reader: impl FnOnce(std::process::ChildStdout)) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    reader(child.stdout.take().unwrap());
    let mut err = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout: Vec::new(),
        stderr: err,
    }
}

/// `barman-cloud-backup-list ... | head -1` and friends: the reader closing standard
/// output ends the command quietly with exit 0, whether it closes before anything was
/// written or after the first line of an output larger than the pipe buffer.
#[test]
fn a_closed_stdout_ends_quietly() {
    let dest = Destination::create(Service::Local, "closedout");
    let ids = fake_backups(&dest, 800);
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("barman-cloud-backup-list", vec!["srv"]),
        ("barman-cloud-backup-list", vec!["srv", "--format", "json"]),
        ("barman-cloud-backup-show", vec!["srv", &ids[3]]),
        ("barman-cloud-backup-keep", vec!["srv", &ids[3], "--status"]),
        (
            "barman-cloud-backup-delete",
            vec!["srv", "-r", "REDUNDANCY 1", "--dry-run"],
        ),
        ("barman-cloud-backup-list", vec!["srv", "--help"]),
    ];
    for (command, args) in &commands {
        // Closed before the command writes anything.
        let out = with_stdout_reader(dest.command_for_ours(command, &[], args), drop);
        assert_no_panic(&out, &format!("{command} {args:?}, stdout closed at once"));
        assert_exit(
            &out,
            0,
            &format!("{command} {args:?}, stdout closed at once"),
        );
        assert!(stderr(&out).is_empty(), "{command}: {}", stderr(&out));
        // `| head -1`.
        let out = with_stdout_reader(dest.command_for_ours(command, &[], args), |stdout| {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
        });
        assert_no_panic(&out, &format!("{command} {args:?} | head -1"));
        assert_exit(&out, 0, &format!("{command} {args:?} | head -1"));
        assert!(stderr(&out).is_empty(), "{command}: {}", stderr(&out));
    }
    // The dry run listed nothing it deleted: every backup is still there.
    assert_eq!(backup_ids(&dest).len(), ids.len());
}

/// Recovery windows past what Python's dates hold fail as Barman's do (exit 4, its
/// OverflowError message); long ones that still fit keep every backup; nothing panics.
#[test]
fn huge_recovery_windows_fail_as_barmans_and_never_panic() {
    let dest = Destination::create(Service::Local, "window");
    let ids = fake_backups(&dest, 3);
    for (policy, code, message) in [
        (
            "RECOVERY WINDOW OF 999999999999 DAYS",
            4,
            "must have magnitude <= 999999999",
        ),
        (
            "RECOVERY WINDOW OF 999999999 DAYS",
            4,
            "date value out of range",
        ),
        (
            "recovery window of 99999999999999999999999999 months",
            4,
            "must have magnitude <= 999999999",
        ),
        ("RECOVERY WINDOW OF 60000 WEEKS", 0, ""),
        ("REDUNDANCY 99999999999999999999999999", 0, ""),
    ] {
        for dry_run in [&["--dry-run"][..], &[]] {
            let mut args = vec!["srv", "-r", policy];
            args.extend(dry_run);
            let out = dest.ours("barman-cloud-backup-delete", &args);
            assert_no_panic(&out, policy);
            assert_exit(&out, code, policy);
            assert!(stderr(&out).contains(message), "{policy}: {}", stderr(&out));
            assert!(stdout(&out).is_empty(), "{policy}: {}", stdout(&out));
        }
    }
    assert_eq!(backup_ids(&dest).len(), ids.len());
}

/// Sizes and counts out of range: exit 3 with one line (clap's or ours), or accepted
/// and clamped as Barman does; never a panic.
#[test]
fn bad_sizes_and_counts_exit_3_with_one_line() {
    let dest = Destination::create(Service::Local, "badsizes");
    let refused: Vec<(&str, Vec<&str>)> = vec![
        ("barman-cloud-backup", vec!["-S", "0"]),
        ("barman-cloud-backup", vec!["-S", "-1"]),
        ("barman-cloud-backup", vec!["-S", "1e400KB"]),
        ("barman-cloud-backup", vec!["-S", "nanGB"]),
        ("barman-cloud-backup", vec!["-S", "99999999999999999999999"]),
        ("barman-cloud-backup", vec!["--min-chunk-size", "0"]),
        ("barman-cloud-backup", vec!["--max-bandwidth", "0"]),
        ("barman-cloud-backup", vec!["--max-bandwidth", "-5MB"]),
        ("barman-cloud-backup", vec!["-J", "0"]),
        ("barman-cloud-backup", vec!["-J", "-3"]),
        ("barman-cloud-backup", vec!["-J", "99999999999999"]),
        ("barman-cloud-backup", vec!["--keepalive-interval", "-1"]),
        (
            "barman-cloud-backup-delete",
            vec!["-r", "REDUNDANCY 1", "-m", "-1"],
        ),
        (
            "barman-cloud-backup-delete",
            vec!["-r", "REDUNDANCY 1", "-m", "1e3"],
        ),
        (
            "barman-cloud-backup-delete",
            vec!["-r", "REDUNDANCY 1", "--batch-size", "1e3"],
        ),
        ("barman-cloud-backup-delete", vec!["-r", "REDUNDANCY -1"]),
        (
            "barman-cloud-backup-delete",
            vec!["-r", "RECOVERY WINDOW OF -1 DAYS"],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["--parallel", "1.5", SEG1, "/tmp/x"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--zstd", "--compression-level", "+5", "/tmp/x"],
        ),
        (
            "barman-cloud-wal-archive",
            vec!["--max-concurrency", "0", "/tmp/x"],
        ),
        ("barman-cloud-check-wal-archive", vec!["--timeline", "0"]),
        (
            "barman-cloud-check-wal-archive",
            vec!["--timeline", "4294967296"],
        ),
    ];
    for (command, options) in &refused {
        let out = dest.ours(command, &[&["srv"][..], options].concat());
        let what = format!("{command} {options:?}");
        assert_no_panic(&out, &what);
        assert_exit(&out, 3, &what);
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{what}: {}",
            stderr(&out)
        );
    }
    // Accepted: clamped or harmless. They get past argument checking and fail (or not)
    // for their own reasons, without a panic.
    let work = temp_dir("badsizes");
    let wal = work.path().join(SEG1);
    std::fs::write(&wal, segment_content(SEG1, 1, 1 << 20, 1000)).unwrap();
    let wal = wal.to_str().unwrap();
    let target = work.path().join("restored");
    let target = target.to_str().unwrap();
    // Barman reads these with Python's int: any length is fine.
    let accepted: Vec<(&str, Vec<&str>)> = vec![
        (
            "barman-cloud-wal-archive",
            vec![
                "--zstd",
                "--compression-level",
                "99999999999999999999999",
                wal,
            ],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["--parallel", "99999999999999999999", SEG1, target],
        ),
        (
            "barman-cloud-backup-delete",
            vec![
                "-r",
                "REDUNDANCY 1",
                "--batch-size",
                "-99999999999999999999",
            ],
        ),
        ("barman-cloud-backup-list", vec!["--read-timeout", "1_000"]),
        // Part sizes beyond what a provider accepts are capped where the provider is known.
        (
            "barman-cloud-wal-archive",
            vec!["--max-block-size", "5000MB", wal],
        ),
        ("barman-cloud-backup", vec!["--min-chunk-size", "6GB"]),
        ("barman-cloud-backup", vec!["--min-chunk-size", "1e30KB"]),
        (
            "barman-cloud-wal-archive",
            vec!["--zstd", "--compression-level", "-2147483648", wal],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["--parallel", "9223372036854775807", SEG1, target],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["--parallel", "-9223372036854775808", SEG1, target],
        ),
        (
            "barman-cloud-backup-list",
            vec!["--read-timeout", "9223372036854775807"],
        ),
        (
            "barman-cloud-backup-list",
            vec!["--read-timeout", "-9223372036854775808"],
        ),
        (
            "barman-cloud-backup-delete",
            vec![
                "-r",
                "REDUNDANCY 1",
                "--batch-size",
                "-9223372036854775808",
                "-m",
                "9223372036854775807",
            ],
        ),
    ];
    for (command, options) in &accepted {
        let out = dest.ours(command, &[&["srv"][..], options].concat());
        let what = format!("{command} {options:?}");
        assert_no_panic(&out, &what);
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 2 | 4)),
            "{what}: {:?} {}",
            out.status.code(),
            stderr(&out)
        );
    }
    // On S3 too, where the timeout reaches the HTTP client.
    let s3 = Destination::create(Service::S3, "badsizes");
    for timeout in ["9223372036854775807", "-9223372036854775808", "0"] {
        let out = s3.ours_with(
            "barman-cloud-backup-list",
            &["--read-timeout", timeout],
            &["srv"],
        );
        assert_no_panic(&out, timeout);
        assert_success(&out, &format!("--read-timeout {timeout}"));
    }
}

/// Secrets given on the command line never appear in what we print, whichever message
/// (ours, a library's, clap's) would quote them.
#[test]
fn secrets_in_arguments_never_appear() {
    const SECRET: &str = "Sup3rS3cretValue";
    let check = |out: &Output, what: &str| {
        assert_no_panic(out, what);
        assert!(
            !stderr(out).contains(SECRET) && !stdout(out).contains(SECRET),
            "{what} leaked the secret:\n{}{}",
            stdout(out),
            stderr(out)
        );
    };
    let s3 = Destination::create(Service::S3, "secretargs");
    let local = Destination::create(Service::Local, "secretargs");

    // A key where a file:// URI belongs, on every command that takes one.
    for command in [
        "barman-cloud-backup-list",
        "barman-cloud-backup-delete",
        "barman-cloud-wal-restore",
    ] {
        for option in [
            format!("--sse-customer-key={SECRET}"),
            format!("--sse-c={SECRET}"),
        ] {
            let rest: &[&str] = match command {
                "barman-cloud-wal-restore" => &["srv", SEG1, "/tmp/x"],
                "barman-cloud-backup-delete" => &["srv", "-r", "REDUNDANCY 1"],
                _ => &["srv"],
            };
            let out = s3.ours_with(command, &["-vv", &option], rest);
            check(&out, &format!("{command} {option}"));
            assert!(!out.status.success(), "{command}: a bad key was accepted");
        }
    }
    let out = s3.ours_with(
        "barman-cloud-backup-list",
        &["--sse-customer-key", SECRET],
        &["srv"],
    );
    check(&out, "--sse-customer-key KEY");
    // Clap's own errors quote values: the key given to an option that refuses it.
    let out = local.ours_with(
        "barman-cloud-backup",
        &["--sse-customer-key", SECRET, "-J", SECRET],
        &["srv"],
    );
    check(&out, "-J KEY");
    assert_exit(&out, 3, "-J KEY");

    // Connection strings and URIs with a password (-d), with debug logging on.
    for dbname in [
        format!("host=/nonexistent dbname=postgres password={SECRET}"),
        format!("host=/nonexistent password='{SECRET} x'"),
        format!("host=/nonexistent password={SECRET} broken"),
        format!("postgresql://alice:{SECRET}@127.0.0.1:1/postgres"),
        format!("postgresql://alice:{SECRET}@/postgres?host=/nonexistent"),
        format!("host=/nonexistent password = {SECRET} 'unterminated"),
    ] {
        let out = local.ours_with("barman-cloud-backup", &["-vv", "-d", &dbname], &["srv"]);
        check(&out, &dbname);
        assert!(!out.status.success(), "{dbname}");
    }
    let out = local.ours_with(
        "barman-cloud-backup",
        &["-d", &format!("password={SECRET}"), "--bogus"],
        &["srv"],
    );
    check(&out, "unknown option beside -d");

    // URLs with user information and SAS tokens.
    let endpoint = required_env("BARMAN_RS_TEST_S3_ENDPOINT");
    let with_userinfo = endpoint.replacen("://", &format!("://user:{SECRET}@"), 1);
    let out = s3.ours_with(
        "barman-cloud-backup-list",
        &["-vv", "--endpoint-url", &with_userinfo],
        &["srv"],
    );
    check(&out, "--endpoint-url with a password");
    let mut bucket_userinfo = with_url(&s3, &format!("s3://user:{SECRET}@nobucket/pg"));
    bucket_userinfo.args.push("-vv".into());
    let out = bucket_userinfo.ours("barman-cloud-backup-list", &["srv"]);
    check(&out, "s3:// URL with a password");
    let azure = Destination::new(Service::Azure, "secretargs");
    let sas = with_url(
        &azure,
        &format!("{}?sv=2022-11-02&ss=b&sig={SECRET}%2B", azure.url),
    );
    let out = sas.ours_with("barman-cloud-backup-list", &["-vv"], &["srv"]);
    check(&out, "Azure URL with a SAS token");
}

/// A read-only mount, unmounted on drop.
struct ReadOnlyFilesystem(tempfile::TempDir);

impl ReadOnlyFilesystem {
    fn mount() -> Self {
        let dir = temp_dir("rofs");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root");
        ReadOnlyFilesystem(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for ReadOnlyFilesystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// wal-restore into a read-only or full file system: the error names the file and
/// the operating system's cause, and nothing is left behind.
#[test]
fn io_errors_name_the_path_and_the_cause() {
    let work = temp_dir("ioerr");
    let dest = Destination::create(Service::Local, "ioerr");
    for n in 1..=3u64 {
        let name = format!("00000001000000000000000{n}");
        let wal = work.path().join(&name);
        std::fs::write(&wal, segment_content(&name, n, 1 << 20, 1 << 20)).unwrap();
        assert_success(
            &dest.ours_with(
                "barman-cloud-wal-archive",
                &["--gzip"],
                &["srv", wal.to_str().unwrap()],
            ),
            "archive",
        );
    }
    let read_only = ReadOnlyFilesystem::mount();
    let target = read_only.path().join("RECOVERYXLOG");
    let out = dest.ours(
        "barman-cloud-wal-restore",
        &["srv", SEG1, target.to_str().unwrap()],
    );
    assert_no_panic(&out, "read-only");
    assert_exit(&out, 4, "restore into a read-only file system");
    let err = stderr(&out);
    assert!(
        err.contains("Read-only file system (os error 30)")
            && err.contains(read_only.path().to_str().unwrap()),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // A spool directory that cannot be created: exit 2 as in Barman, with the cause.
    let spool = read_only.path().join("spool");
    let elsewhere = work.path().join("RECOVERYXLOG");
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--parallel", "3", "--spool-dir", spool.to_str().unwrap()],
        &["srv", SEG1, elsewhere.to_str().unwrap()],
    );
    assert_no_panic(&out, "spool");
    assert_exit(&out, 2, "unusable spool directory");
    assert!(
        stderr(&out).contains("Read-only file system") && stderr(&out).contains("spool"),
        "{}",
        stderr(&out)
    );

    let full = TinyFilesystem::mount("256k");
    let target = full.0.path().join("RECOVERYXLOG");
    let out = dest.ours(
        "barman-cloud-wal-restore",
        &["srv", SEG1, target.to_str().unwrap()],
    );
    assert_no_panic(&out, "full");
    assert_exit(&out, 4, "restore into a full file system");
    let err = stderr(&out);
    assert!(
        err.contains("No space left on device (os error 28)")
            && err.contains(target.to_str().unwrap()),
        "{err}"
    );
    assert!(
        local_files(full.0.path()).is_empty(),
        "{:?}",
        local_files(full.0.path())
    );
    assert!(local_files(read_only.path()).is_empty());
}

/// wal-restore delivers a segment only if its content is that segment, whether it is
/// downloaded, prefetched with --parallel, or found in the spool directory.
#[test]
fn wal_restore_checks_prefetched_and_spooled_segments() {
    let dest = Destination::create(Service::Local, "walcheck");
    let work = temp_dir("walcheck");
    let name = |n: u64| format!("0000000100000000000000{n:02X}");
    // Segment 2 holds segment 7's content; the others are what their names say.
    for n in 1..=5u64 {
        let content_of = if n == 2 { 7 } else { n };
        let path = work.path().join(name(n));
        std::fs::write(&path, segment_content(&name(content_of), n, 1 << 20, 5000)).unwrap();
        assert_success(
            &dest.ours_with(
                "barman-cloud-wal-archive",
                &["--lz4"],
                &["srv", path.to_str().unwrap()],
            ),
            "archive",
        );
    }
    let spool = work.path().join("spool");
    let spool_arg = spool.to_str().unwrap();
    let target = work.path().join("RECOVERYXLOG");
    let target_arg = target.to_str().unwrap();
    // Prefetching 2 and 3: the bad 2 is not spooled.
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--parallel", "3", "--spool-dir", spool_arg],
        &["srv", &name(1), target_arg],
    );
    assert_success(&out, "restore of segment 1 with prefetch");
    assert!(std::fs::read(&target).unwrap() == segment_content(&name(1), 1, 1 << 20, 5000));
    assert!(stderr(&out).contains(&name(2)), "{}", stderr(&out));
    let spooled: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(spooled, vec![name(3)]);
    // Asked for, segment 2 is refused and nothing is left.
    std::fs::remove_file(&target).unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--spool-dir", spool_arg],
        &["srv", &name(2), target_arg],
    );
    assert_exit(&out, 1, "segment 2 holding segment 7");
    assert!(stderr(&out).contains(&name(2)), "{}", stderr(&out));
    assert!(!target.exists());
    // A spooled file that is not the segment is discarded and the segment fetched.
    std::fs::write(
        spool.join(name(5)),
        segment_content(&name(6), 5, 1 << 20, 5000),
    )
    .unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-restore",
        &["--spool-dir", spool_arg],
        &["srv", &name(5), target_arg],
    );
    assert_success(&out, "segment 5 over a bad spooled copy");
    assert!(std::fs::read(&target).unwrap() == segment_content(&name(5), 5, 1 << 20, 5000));
    assert!(!spool.join(name(5)).exists());
    // Our lz4 frames carry a checksum: a flipped byte anywhere is refused.
    let object =
        PathBuf::from(dest.bucket()).join(format!("srv/wals/0000000100000000/{}.lz4", name(4)));
    let original = std::fs::read(&object).unwrap();
    for at in [original.len() / 3, original.len() / 2, original.len() - 6] {
        let mut bad = original.clone();
        bad[at] ^= 0x20;
        std::fs::write(&object, &bad).unwrap();
        std::fs::remove_file(&target).ok();
        let out = dest.ours("barman-cloud-wal-restore", &["srv", &name(4), target_arg]);
        assert!(!out.status.success(), "byte {at} flipped: exit 0");
        assert!(stderr(&out).contains(&name(4)), "{}", stderr(&out));
        assert!(!target.exists(), "byte {at} flipped: a file was left");
    }
}
