//! `barman put-wal`, `archive-wal`, `get-wal` and `cron` against Python Barman on one
//! `barman_home`: what one files the other serves byte for byte, both index alike, and
//! both print the same messages and exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use barman_cloud::compression::Compression;
use barman_cloud::server::lock::LockFile;

use crate::server_world::{World, prefixed_lines, python_barman};
use crate::support::{stderr, stdout, wal_content};

const SEGMENT: usize = 16 << 20;

const CONF: &str = "[barman]
barman_home = {home}
barman_user = root
log_level = INFO

[gz]
conninfo = host=pg
ssh_command = ssh pg
backup_options = concurrent_backup
archiver = on
compression = gzip

[plain]
conninfo = host=pg
ssh_command = ssh pg
backup_options = concurrent_backup
archiver = on

[py]
conninfo = host=pg
ssh_command = ssh pg
backup_options = concurrent_backup
archiver = on
compression = gzip

[pyplain]
conninfo = host=pg
ssh_command = ssh pg
backup_options = concurrent_backup
archiver = on

[old]
conninfo = host=pg
ssh_command = ssh pg
backup_options = concurrent_backup
active = false

[broken]
conninfo = host=pg
backup_options = concurrent_backup
archiver = on
";

fn world() -> (World, String) {
    let world = World::new("server-wal");
    let conf = world.write("barman.conf", CONF);
    (world, conf.to_str().unwrap().to_string())
}

fn home(world: &World, server: &str) -> PathBuf {
    world.path("home").join(server)
}

fn seg(n: u32) -> String {
    format!("0000000100000000{n:08X}")
}

/// Puts a WAL file into `incoming/` with a fixed mtime (with a fraction of a second).
fn put_incoming(world: &World, server: &str, name: &str, data: &[u8], seconds: u64) {
    let dir = home(world, server).join("incoming");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, data).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::new(1_700_000_000 + seconds, 123_456_789))
        .unwrap();
}

fn segment_data(seed: u64) -> Vec<u8> {
    wal_content(seed, SEGMENT, SEGMENT)
}

fn xlogdb(world: &World, server: &str) -> Vec<Vec<String>> {
    let file = home(world, server)
        .join("wals")
        .join(format!("{server}-xlog.db"));
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn run(world: &World, program: &Path, args: &[&str]) -> Output {
    world.run_with(program, args, None, &[])
}

/// The outcome users see: stdout, the prefixed stderr lines, the exit code.
fn seen(out: &Output) -> (String, Vec<String>, Option<i32>) {
    (
        stdout(out),
        prefixed_lines(&stderr(out))
            .into_iter()
            .map(str::to_string)
            .collect(),
        out.status.code(),
    )
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        stderr(out)
    );
}

#[test]
fn server_wal_archived_by_either_is_served_by_the_other() {
    let (world, conf) = world();
    let ours = world.ours();
    let python = python_barman();
    let names: Vec<String> = (1..=3).map(seg).collect();
    let data: Vec<Vec<u8>> = (1..=3).map(segment_data).collect();
    // The same inputs for ours (gz, plain) and Barman (py, pyplain).
    for (server, program) in [
        ("gz", &ours),
        ("plain", &ours),
        ("py", &python),
        ("pyplain", &python),
    ] {
        for (i, name) in names.iter().enumerate() {
            put_incoming(&world, server, name, &data[i], i as u64 * 10);
        }
        let out = run(&world, program, &["-c", &conf, "archive-wal", server]);
        assert_ok(&out, server);
        assert_eq!(
            stdout(&out),
            format!(
                "Processing xlog segments from file archival for {server}\n\t{}\n\t{}\n\t{}\n",
                names[0], names[1], names[2]
            )
        );
        assert_eq!(
            fs::read_dir(home(&world, server).join("incoming"))
                .unwrap()
                .count(),
            0
        );
    }
    // Each serves what the other filed, byte for byte, as stored by either.
    for (server, reader) in [
        ("gz", &python),
        ("plain", &python),
        ("py", &ours),
        ("pyplain", &ours),
    ] {
        for (i, name) in names.iter().enumerate() {
            let out = run(&world, reader, &["-c", &conf, "get-wal", server, name]);
            assert_ok(&out, name);
            assert!(out.stdout == data[i], "{server} {name}: content differs");
        }
    }
    // The index: same names, compression and times; sizes are the stored files'.
    for (mine, theirs, compressed) in [("gz", "py", true), ("plain", "pyplain", false)] {
        let (a, b) = (xlogdb(&world, mine), xlogdb(&world, theirs));
        assert_eq!(a.len(), 3);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x[0], y[0]);
            assert_eq!(x[2], y[2], "time of {}", x[0]);
            assert_eq!(x[2], format!("{}.1234567", 1_700_000_000 + i * 10));
            assert_eq!(x[3], y[3]);
            assert_eq!(x[3], if compressed { "gzip" } else { "None" });
            assert_eq!(x[4..], y[4..]);
            let stored = home(&world, mine).join("wals/0000000100000000").join(&x[0]);
            assert_eq!(x[1], fs::metadata(&stored).unwrap().len().to_string());
            if !compressed {
                assert_eq!(x[1], y[1]);
            }
        }
    }
}

/// Runs `args` once with each program on the state `setup` makes, and asserts the same
/// outcome (stdout compared after `normalize`).
fn compare_on(
    world: &World,
    setup: &dyn Fn(&World),
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&Path>,
    normalize: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Output {
    let mut results = Vec::new();
    for program in [python_barman(), world.ours()] {
        setup(world);
        let out = world.run_with(&program, args, stdin, env);
        results.push(out);
    }
    let (theirs, ours) = (&results[0], &results[1]);
    let what = format!("barman {}", args.join(" "));
    assert!(
        normalize(&ours.stdout) == normalize(&theirs.stdout),
        "stdout of {what}:\nours: {}\nBarman: {}",
        stdout(ours),
        stdout(theirs)
    );
    let (_, our_err, our_code) = seen(ours);
    let (_, their_err, their_code) = seen(theirs);
    assert_eq!(
        our_err,
        their_err,
        "stderr of {what}:\nours: {}\nBarman: {}",
        stderr(ours),
        stderr(theirs)
    );
    assert_eq!(our_code, their_code, "exit of {what}");
    results.pop().unwrap()
}

fn same(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

fn decompressed(codec: Compression) -> impl Fn(&[u8]) -> Vec<u8> {
    move |bytes: &[u8]| {
        let mut out = Vec::new();
        codec.decompress(bytes, &mut out).expect("decompresses");
        out
    }
}

fn reset(world: &World, server: &str) {
    let _ = fs::remove_dir_all(home(world, server));
}

/// Sorted `errors/` names with the time stamp taken out.
fn error_files(world: &World, server: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(home(world, server).join("errors"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for name in &mut names {
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() >= 3 {
            *name = format!("{}.{}", parts[0], parts[parts.len() - 1]);
        }
    }
    names.sort();
    names
}

#[test]
fn server_wal_messages_and_exit_codes_match_barman() {
    let (world, conf) = world();
    let c = conf.as_str();
    let (one, two, three) = (segment_data(11), segment_data(12), segment_data(13));

    // archive-wal with an identical duplicate, a different one, an unknown file, a new WAL.
    let setup = |w: &World| {
        reset(w, "gz");
        // As `barman check` leaves it: Barman's archive-wal does not create errors/.
        fs::create_dir_all(home(w, "gz").join("errors")).unwrap();
        put_incoming(w, "gz", &seg(1), &one, 0);
        put_incoming(w, "gz", &seg(2), &two, 1);
        let first = run(w, &w.ours(), &["-c", c, "archive-wal", "gz"]);
        assert_ok(&first, "first archive-wal");
        put_incoming(w, "gz", &seg(1), &one, 2);
        put_incoming(w, "gz", &seg(2), &three, 3);
        put_incoming(w, "gz", &seg(3), &three, 4);
        put_incoming(w, "gz", "junk", b"not a WAL", 5);
    };
    let mut errors = Vec::new();
    for program in [python_barman(), world.ours()] {
        setup(&world);
        let out = run(&world, &program, &["-c", c, "archive-wal", "gz"]);
        errors.push((
            seen(&out),
            error_files(&world, "gz"),
            xlogdb(&world, "gz").len(),
        ));
    }
    assert_eq!(errors[1], errors[0]);
    assert!(
        fs::read_dir(home(&world, "gz").join("incoming"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(errors[0].0.0.contains("is already present in server gz"));
    assert_eq!(
        errors[0].1,
        [format!("{}.duplicate", seg(2)), "junk.unknown".to_string()]
    );

    // get-wal: the archive holds 1 (gzip), 2; 3 is in incoming; 5 only as .partial.
    let prepare = |w: &World| {
        reset(w, "gz");
        put_incoming(w, "gz", &seg(1), &one, 0);
        put_incoming(w, "gz", &seg(2), &two, 1);
        assert_ok(&run(w, &w.ours(), &["-c", c, "archive-wal", "gz"]), "setup");
        put_incoming(w, "gz", &seg(3), &three, 2);
        let streaming = home(w, "gz").join("streaming");
        fs::create_dir_all(&streaming).unwrap();
        fs::write(
            streaming.join(format!("{}.partial", seg(5))),
            b"partial bytes",
        )
        .unwrap();
    };
    // get-wal and put-wal --test change nothing: one state serves every comparison.
    prepare(&world);
    let setup = |_: &World| {};
    let s1 = seg(1);
    let s5 = seg(5);
    for args in [
        vec!["-c", c, "get-wal", "gz", "000000010000000000000009"],
        vec!["-c", c, "get-wal", "gz", "00000001000000000000000G"],
        vec!["-c", c, "get-wal", "gz", &s1, "--peek", "3"],
        vec!["-c", c, "get-wal", "gz", &s5],
        vec!["-c", c, "get-wal", "-P", "gz", &s5],
        vec!["-c", c, "get-wal", "-z", "--keep-compression", "gz", &s1],
        vec!["-c", c, "get-wal", "-t", "gz", &s1],
        vec!["-c", c, "get-wal", "nosuch", &s1],
        vec!["-c", c, "get-wal", "all", &s1],
        vec!["-c", c, "get-wal", "broken", &s1],
        vec!["-c", c, "get-wal", "old", &s1],
        vec!["-c", c, "put-wal", "--test", "gz"],
        vec!["-c", c, "put-wal", "old"],
        vec!["-c", c, "put-wal", "broken"],
        vec!["-c", c, "archive-wal", "old"],
        vec!["-c", c, "archive-wal", "nosuch"],
    ] {
        compare_on(&world, &setup, &args, &[], None, &same);
    }
    // With the SSH client named in messages.
    let ssh = [("SSH_CONNECTION", "192.0.2.7 50000 192.0.2.1 22")];
    for args in [
        vec!["-c", c, "get-wal", "gz", "000000010000000000000009"],
        vec!["-c", c, "get-wal", "gz", "bogus"],
    ] {
        compare_on(&world, &setup, &args, &ssh, None, &same);
    }
    // Compressed output: the same WAL once decompressed.
    let out = compare_on(
        &world,
        &setup,
        &["-c", c, "get-wal", "-z", "gz", &seg(3)],
        &[],
        None,
        &decompressed(Compression::Gzip),
    );
    assert!(decompressed(Compression::Gzip)(&out.stdout) == three);
    let out = compare_on(
        &world,
        &setup,
        &["-c", c, "get-wal", "-j", "gz", &s1],
        &[],
        None,
        &decompressed(Compression::Bzip2),
    );
    assert!(decompressed(Compression::Bzip2)(&out.stdout) == one);
    // --keep-compression sends the stored gzip file as it is (gzip headers carry the time
    // of compression, so each setup stores other bytes: compared decompressed, then as
    // stored).
    compare_on(
        &world,
        &setup,
        &["-c", c, "get-wal", "--keep-compression", "gz", &s1],
        &[],
        None,
        &decompressed(Compression::Gzip),
    );
    let out = run(
        &world,
        &world.ours(),
        &["-c", c, "get-wal", "--keep-compression", "gz", &s1],
    );
    let stored = fs::read(home(&world, "gz").join("wals/0000000100000000").join(&s1)).unwrap();
    assert!(out.stdout == stored);

    // -o DIR: the WAL lands there, complete; the message names the file.
    let target = world.path("restored");
    fs::create_dir_all(&target).unwrap();
    let dir = target.to_str().unwrap();
    let out = compare_on(
        &world,
        &setup,
        &["-c", c, "get-wal", "-o", dir, "gz", &s1],
        &[],
        None,
        &same,
    );
    assert!(stdout(&out).starts_with(&format!("Sending WAL '{s1}' for server 'gz' into '")));
    assert!(fs::read(target.join(&s1)).unwrap() == one);
    assert_eq!(fs::read_dir(&target).unwrap().count(), 1);
    let missing = world.path("nowhere");
    compare_on(
        &world,
        &setup,
        &[
            "-c",
            c,
            "get-wal",
            "-o",
            missing.to_str().unwrap(),
            "gz",
            &s1,
        ],
        &[],
        None,
        &same,
    );
}

/// What Barman's own `barman-wal-archive` sends for `wal`, captured by a fake `ssh`.
fn barman_wal_archive_stream(world: &World, wal: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fake_bin = world.path("fakebin");
    fs::create_dir_all(&fake_bin).unwrap();
    let ssh = fake_bin.join("ssh");
    fs::write(&ssh, "#!/bin/sh\ncat > \"$FAKE_SSH_OUT\"\n").unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let stream = world.path("stream.tar");
    let bin = python_barman().parent().unwrap().to_path_buf();
    let status = Command::new(bin.join("barman-wal-archive"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                fake_bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("FAKE_SSH_OUT", &stream)
        .arg("--prefetch-cache-dir")
        .arg(world.path("cache"))
        .arg("backup.example")
        .arg("plain")
        .arg(wal)
        .status()
        .unwrap();
    assert!(status.success());
    stream
}

#[test]
fn server_wal_put_wal_takes_barman_wal_archive_streams_as_barman_does() {
    let (world, conf) = world();
    let c = conf.as_str();
    let name = seg(7);
    let data = segment_data(7);
    let wal = world.path(&name);
    fs::write(&wal, &data).unwrap();
    let stream = barman_wal_archive_stream(&world, &wal);
    let ssh = [("SSH_CONNECTION", "192.0.2.7 50000 192.0.2.1 22")];
    let incoming = |w: &World| home(w, "plain").join("incoming");

    // Accepted alike: the file lands in incoming/, the same bytes and mtime.
    let clean = |w: &World| reset(w, "plain");
    let mut received = Vec::new();
    for program in [python_barman(), world.ours()] {
        clean(&world);
        let out = world.run_with(
            &program,
            &["-c", c, "put-wal", "plain"],
            Some(&stream),
            &ssh,
        );
        assert_ok(&out, "put-wal");
        assert_eq!(stdout(&out), "");
        let path = incoming(&world).join(&name);
        assert!(fs::read(&path).unwrap() == data);
        let names: Vec<String> = fs::read_dir(incoming(&world))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        received.push((names, mtime.duration_since(UNIX_EPOCH).unwrap().as_secs()));
    }
    assert_eq!(received[1], received[0]);
    // Sent twice: the identical file is skipped silently by both.
    let twice = |w: &World| {
        reset(w, "plain");
        let out = w.run_with(
            &w.ours(),
            &["-c", c, "put-wal", "plain"],
            Some(&stream),
            &[],
        );
        assert_ok(&out, "first put-wal");
    };
    compare_on(
        &world,
        &twice,
        &["-c", c, "put-wal", "plain"],
        &ssh,
        Some(&stream),
        &same,
    );

    // A corrupted WAL member: refused with the same message, nothing stored.
    let mut bytes = fs::read(&stream).unwrap();
    bytes[512 + 4096] ^= 0xFF;
    let bad = world.path("bad.tar");
    fs::write(&bad, &bytes).unwrap();
    let out = compare_on(
        &world,
        &clean,
        &["-c", c, "put-wal", "plain"],
        &ssh,
        Some(&bad),
        &same,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ERROR: Bad file checksum") && stderr(&out).contains("192.0.2.7"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = fs::read_dir(incoming(&world))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn server_wal_cron_archives_in_the_background() {
    let (world, conf) = world();
    let c = conf.as_str();
    // Nothing to do: the same lines as Barman's cron (the disabled server skipped).
    let python = run(&world, &python_barman(), &["-c", c, "cron"]);
    wait_for_archivers(&world);
    let ours = run(&world, &world.ours(), &["-c", c, "cron"]);
    wait_for_archivers(&world);
    assert_eq!(seen(&ours), seen(&python));
    assert!(stdout(&ours).contains("Starting WAL archiving for server gz\n"));
    assert!(stdout(&ours).contains("Skipping temporarily disabled server 'broken'\n"));
    assert!(!stdout(&ours).contains("server old"));

    // Files waiting in incoming/ are filed by the archive-wal cron started.
    let data = [segment_data(21), segment_data(22)];
    for server in ["gz", "plain"] {
        for (i, bytes) in data.iter().enumerate() {
            put_incoming(&world, server, &seg(0x21 + i as u32), bytes, i as u64);
        }
    }
    let out = run(&world, &world.ours(), &["-c", c, "cron"]);
    assert_ok(&out, "cron");
    let deadline = Instant::now() + Duration::from_secs(120);
    while ["gz", "plain"].iter().any(|s| xlogdb(&world, s).len() < 2) {
        assert!(Instant::now() < deadline, "cron did not archive in time");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_archivers(&world);
    for server in ["gz", "plain"] {
        let names: Vec<String> = xlogdb(&world, server)
            .into_iter()
            .map(|l| l[0].clone())
            .collect();
        assert_eq!(names, [seg(0x21), seg(0x22)]);
        for (i, bytes) in data.iter().enumerate() {
            let out = run(
                &world,
                &python_barman(),
                &["-c", c, "get-wal", server, &seg(0x21 + i as u32)],
            );
            assert!(out.stdout == *bytes);
        }
    }
}

/// Waits until no archive-wal started by a cron holds a server's lock.
fn wait_for_archivers(world: &World) {
    // Give the detached processes time to start and take their lock first.
    std::thread::sleep(Duration::from_secs(2));
    let deadline = SystemTime::now() + Duration::from_secs(120);
    for server in ["gz", "plain", "py", "pyplain"] {
        let lock = world
            .path("home")
            .join(format!(".{server}-archive-wal.lock"));
        loop {
            match LockFile::try_acquire(&lock) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => {
                    assert!(SystemTime::now() < deadline, "archive-wal still running");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}
