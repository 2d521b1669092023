//! `barman-wal-archive` and `barman-wal-restore`, ours and Python Barman's, through a real
//! OpenSSH server (`BARMAN_RS_TEST_SSH_*`) against PYTHON Barman's `barman put-wal` /
//! `get-wal` / `archive-wal`, so that the clients are compared with Barman's on Barman's
//! own server; the end-to-end test with PostgreSQL also runs against our server.
//!
//! The clients run `ssh [-p PORT] -q -T USER@HOST barman ...`. A wrapper script named
//! `ssh`, first on PATH, adds the test key and disables host key checks, and puts
//! `PATH=<dir>:$PATH` before the remote command so that the remote `barman` is a link
//! to the server under test (Python Barman's `barman`, or ours).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use barman_cloud::compression::magic;

use crate::support::{our_binary, required_env, stderr, stdout, temp_dir};

const SEG: [&str; 5] = [
    "000000010000000000000001",
    "000000010000000000000002",
    "000000010000000000000003",
    "000000010000000000000004",
    "000000010000000000000005",
];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Ours,
    Barman,
}

struct World {
    dir: tempfile::TempDir,
    port: String,
}

impl World {
    /// A world whose remote `barman` is Python Barman's.
    fn new() -> Self {
        Self::with_server(Who::Barman)
    }

    /// A world whose remote `barman` (reached over ssh, and run by [`World::barman`]) is
    /// `server`'s.
    fn with_server(server: Who) -> Self {
        let key = required_env("BARMAN_RS_TEST_SSH_KEY");
        let port = required_env("BARMAN_RS_TEST_SSH_PORT");
        let python = PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN"));
        let dir = temp_dir("wal-clients");
        let root = dir.path();
        for sub in [
            "home",
            "remote",
            "bin",
            "ours",
            "pg_wal/archive_status",
            "out",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let remote_barman = match server {
            Who::Barman => python.join("barman"),
            Who::Ours => our_binary(),
        };
        std::os::unix::fs::symlink(remote_barman, root.join("remote/barman")).unwrap();
        for name in ["barman-wal-archive", "barman-wal-restore"] {
            std::os::unix::fs::symlink(our_binary(), root.join("ours").join(name)).unwrap();
        }
        write_ssh_wrapper(&root.join("bin"), &key, &root.join("remote"));
        let home = root.join("home");
        std::fs::write(
            root.join("barman.conf"),
            format!(
                "[barman]\nbarman_home = {home}\nbarman_user = root\nlog_file = {log}\n\
                 log_level = INFO\n\n[ours]\ndescription = ours\nconninfo = host=127.0.0.1\n\
                 ssh_command = true\nbackup_method = rsync\narchiver = on\n\n\
                 [theirs]\ndescription = theirs\nconninfo = host=127.0.0.1\n\
                 ssh_command = true\nbackup_method = rsync\narchiver = on\n",
                home = home.display(),
                log = root.join("barman.log").display()
            ),
        )
        .unwrap();
        World { dir, port }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn conf(&self) -> String {
        self.path("barman.conf").display().to_string()
    }

    fn client(&self, who: Who, name: &str) -> PathBuf {
        match who {
            Who::Ours => self.path("ours").join(name),
            Who::Barman => PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join(name),
        }
    }

    fn run(&self, who: Who, name: &str, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(self.client(who, name))
            .args(args)
            .env("PATH", path)
            .current_dir(self.dir.path())
            .output()
            .expect("run the client")
    }

    /// `-U root --port P -c CONF` and then `rest`.
    fn args<'a>(&'a self, conf: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["-U", "root", "--port", self.port.as_str(), "-c", conf];
        all.extend_from_slice(rest);
        all
    }

    fn archive(&self, who: Who, rest: &[&str]) -> Output {
        let conf = self.conf();
        self.run(who, "barman-wal-archive", &self.args(&conf, rest))
    }

    fn restore(&self, who: Who, rest: &[&str]) -> Output {
        let conf = self.conf();
        self.run(who, "barman-wal-restore", &self.args(&conf, rest))
    }

    /// The server's `barman` (the one the clients reach over ssh).
    fn barman(&self, args: &[&str]) -> Output {
        let conf = self.conf();
        let mut all = vec!["-c", conf.as_str()];
        all.extend_from_slice(args);
        Command::new(self.path("remote/barman"))
            .args(all)
            .output()
            .unwrap()
    }

    fn write_wal(&self, name: &str, len: usize, seed: u64) -> PathBuf {
        let path = self.path("pg_wal").join(name);
        std::fs::write(
            &path,
            crate::support::wal_content(seed, len, len.min(1 << 20)),
        )
        .unwrap();
        path
    }

    fn incoming(&self, server: &str, name: &str) -> PathBuf {
        self.path("home").join(server).join("incoming").join(name)
    }
}

/// Writes `dir/ssh`: ssh with `key`, no host key records, and the remote `barman`
/// found in `remote` (`PATH=...` inserted before the remote command).
fn write_ssh_wrapper(dir: &Path, key: &str, remote: &Path) {
    let wrapper = format!(
        "#!/bin/bash\n\
         # Test ssh: the test key, no host key records, and the remote `barman` found in\n\
         # {remote} (PATH=... inserted before the remote command).\n\
         args=(); inserted=; skip=\n\
         for a in \"$@\"; do\n\
         \x20 if [ -n \"$inserted\" ] || [ -n \"$skip\" ]; then args+=(\"$a\"); skip=; continue; fi\n\
         \x20 case \"$a\" in\n\
         \x20   -p|-i|-o|-l) args+=(\"$a\"); skip=1;;\n\
         \x20   -*) args+=(\"$a\");;\n\
         \x20   *) args+=(\"$a\" \"PATH={remote}:\\$PATH\"); inserted=1;;\n\
         \x20 esac\n\
         done\n\
         exec /usr/bin/ssh -i {key} -o BatchMode=yes -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"${{args[@]}}\"\n",
        remote = remote.display(),
    );
    std::fs::create_dir_all(dir).unwrap();
    let ssh = dir.join("ssh");
    std::fs::write(&ssh, wrapper).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// The lines that are the client's own (not the remote Barman's warnings).
fn error_lines(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| !l.starts_with("WARNING: No backup strategy"))
        .map(str::to_string)
        .collect()
}

fn decompressed(path: &Path) -> (Option<barman_cloud::compression::Compression>, Vec<u8>) {
    let data = std::fs::read(path).unwrap();
    match magic::identify(&data) {
        None => (None, data),
        Some(codec) => {
            let mut out = Vec::new();
            codec.decompress(&data[..], &mut out).unwrap();
            (Some(codec), out)
        }
    }
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

#[test]
fn archive_sends_the_same_wal_as_barman() {
    let world = World::new();
    let wal = world.write_wal(SEG[0], 16 << 20, 1);
    let wal = wal.to_str().unwrap();
    let original = std::fs::read(wal).unwrap();
    let cases: [&[&str]; 7] = [
        &[],
        &["--md5"],
        &["-z"],
        &["-j", "--compression-level", "low"],
        &["--xz"],
        &["--zstd", "--compression-level", "high"],
        &["--lz4"],
    ];
    for options in cases {
        for (who, server) in [(Who::Ours, "ours"), (Who::Barman, "theirs")] {
            let mut args = options.to_vec();
            args.extend(["127.0.0.1", server, wal]);
            let out = world.archive(who, &args);
            ok(&out, &format!("{who:?} barman-wal-archive {options:?}"));
            assert_eq!(stdout(&out), "", "{who:?} {options:?}");
        }
        let ours = decompressed(&world.incoming("ours", SEG[0]));
        let theirs = decompressed(&world.incoming("theirs", SEG[0]));
        assert_eq!(ours.0, theirs.0, "codec of {options:?}");
        assert!(ours.1 == original, "ours {options:?}: content differs");
        assert!(
            theirs.1 == original,
            "Barman's {options:?}: content differs"
        );
        if options.is_empty() || options == ["--md5"] {
            assert!(std::fs::read(world.incoming("ours", SEG[0])).unwrap() == original);
        }
        for server in ["ours", "theirs"] {
            std::fs::remove_file(world.incoming(server, SEG[0])).unwrap();
        }
    }
    // Barman's archive-wal files what our client sent.
    let out = world.archive(Who::Ours, &["-z", "127.0.0.1", "ours", wal]);
    ok(&out, "archive");
    let out = world.barman(&["archive-wal", "ours"]);
    ok(&out, "barman archive-wal");
    assert!(stdout(&out).contains(SEG[0]), "{}", stdout(&out));
}

#[test]
fn archive_test_mode_and_failures_match_barman() {
    let world = World::new();
    // Small files: the failures below end before the client has written everything.
    let wal = world.write_wal("00000002.history", 200, 2);
    let wal = wal.to_str().unwrap();
    let closed = free_port();
    let cases: Vec<(Vec<&str>, Option<i32>)> = vec![
        (vec!["-t", "127.0.0.1", "ours", "ignored"], Some(0)),
        (vec!["-t", "127.0.0.1", "nosuch", "ignored"], Some(1)),
        (vec!["127.0.0.1", "nosuch", wal], Some(1)),
        (vec!["--port", &closed, "127.0.0.1", "ours", wal], Some(3)),
        (
            vec!["--port", &closed, "-t", "127.0.0.1", "ours", wal],
            Some(255),
        ),
        (vec!["127.0.0.1", "ours"], Some(2)),
        (
            vec!["--compression-level", "huge", "127.0.0.1", "ours", wal],
            Some(2),
        ),
        (vec!["-p", "x", "127.0.0.1", "ours", wal], Some(2)),
        (vec!["--version"], Some(0)),
    ];
    for (args, code) in cases {
        let ours = world.archive(Who::Ours, &args);
        let theirs = world.archive(Who::Barman, &args);
        assert_eq!(ours.status.code(), code, "ours {args:?}: {}", stderr(&ours));
        assert_eq!(
            theirs.status.code(),
            code,
            "Barman {args:?}: {}",
            stderr(&theirs)
        );
        assert_eq!(
            remote_lines(&ours),
            remote_lines(&theirs),
            "stdout of {args:?}"
        );
        assert_eq!(
            error_lines(&ours),
            error_lines(&theirs),
            "stderr of {args:?}"
        );
    }
    // A directory as WAL_PATH.
    let dir = world.path("pg_wal").display().to_string();
    let ours = world.archive(Who::Ours, &["127.0.0.1", "ours", &dir]);
    let theirs = world.archive(Who::Barman, &["127.0.0.1", "ours", &dir]);
    assert_eq!(ours.status.code(), Some(2));
    assert_eq!(stderr(&ours), stderr(&theirs));
}

#[test]
fn parallel_archive_sends_ready_segments_and_skips_them_later() {
    let world = World::new();
    for (i, name) in SEG.iter().enumerate() {
        world.write_wal(name, 1 << 20, 10 + i as u64);
    }
    // Segments 2 and 3 are ready, 4 is not: the prefetch stops at 4.
    for name in [SEG[1], SEG[2]] {
        std::fs::write(
            world.path(&format!("pg_wal/archive_status/{name}.ready")),
            "",
        )
        .unwrap();
    }
    let cache = world.path("cache");
    let cache = cache.to_str().unwrap();
    let first = world.path("pg_wal").join(SEG[0]);
    let out = world.archive(
        Who::Ours,
        &[
            "-p",
            "4",
            "--prefetch-cache-dir",
            cache,
            "127.0.0.1",
            "ours",
            first.to_str().unwrap(),
        ],
    );
    ok(&out, "parallel archive");
    for name in &SEG[..3] {
        assert!(
            std::fs::read(world.incoming("ours", name)).unwrap()
                == std::fs::read(world.path("pg_wal").join(name)).unwrap(),
            "{name} in incoming"
        );
    }
    assert!(!world.incoming("ours", SEG[3]).exists());
    assert_eq!(
        std::fs::read_to_string(world.path("cache/wal-last-archived")).unwrap(),
        SEG[2]
    );
    // PostgreSQL's request for segment 2 ends at once: no connection needed.
    let second = world.path("pg_wal").join(SEG[1]);
    let closed = free_port();
    let out = world.archive(
        Who::Ours,
        &[
            "--port",
            &closed,
            "-p",
            "4",
            "--prefetch-cache-dir",
            cache,
            "127.0.0.1",
            "ours",
            second.to_str().unwrap(),
        ],
    );
    ok(&out, "cached archive");
    // Without --parallel the cache is not consulted.
    let out = world.archive(
        Who::Ours,
        &[
            "--port",
            &closed,
            "--prefetch-cache-dir",
            cache,
            "127.0.0.1",
            "ours",
            second.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
}

/// Five segments in Barman's archive of server `ours`, filed by Barman's archive-wal.
fn world_with_archive() -> (World, Vec<Vec<u8>>) {
    let world = World::new();
    let mut contents = Vec::new();
    for (i, name) in SEG.iter().enumerate() {
        let wal = world.write_wal(name, 16 << 20, 20 + i as u64);
        let out = world.archive(Who::Barman, &["127.0.0.1", "ours", wal.to_str().unwrap()]);
        ok(&out, "Barman's barman-wal-archive");
        contents.push(std::fs::read(&wal).unwrap());
    }
    ok(
        &world.barman(&["archive-wal", "ours"]),
        "barman archive-wal",
    );
    (world, contents)
}

#[test]
fn restore_fetches_the_same_wal_as_barman() {
    let (world, contents) = world_with_archive();
    let spool = world.path("spool").display().to_string();
    for (options, index) in [
        (vec![], 0),
        (vec!["-z"], 1),
        (vec!["-j"], 2),
        (vec!["--keep-compression"], 3),
        (vec!["-P"], 4),
    ] {
        for who in [Who::Ours, Who::Barman] {
            let dest = world.path(&format!("out/{who:?}-{index}"));
            let mut args = options.clone();
            args.extend(["--spool-dir", &spool, "127.0.0.1", "ours", SEG[index]]);
            let dest_str = dest.display().to_string();
            args.push(&dest_str);
            let out = world.restore(who, &args);
            ok(&out, &format!("{who:?} barman-wal-restore {options:?}"));
            assert!(
                std::fs::read(&dest).unwrap() == contents[index],
                "{who:?} {options:?}"
            );
        }
        let ours = world.restore(Who::Ours, &["--version"]);
        assert_eq!(stdout(&ours), "barman-wal-restore 3.20.1\n");
    }
    // Not found, unknown server, no connection, -t, usage errors: same codes and output.
    let closed = free_port();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["127.0.0.1", "ours", "000000010000000000000009"], 1),
        (vec!["127.0.0.1", "nosuch", SEG[0]], 1),
        (vec!["--port", &closed, "127.0.0.1", "ours", SEG[0]], 2),
        (
            vec!["-p", "3", "127.0.0.1", "ours", "000000010000000000000009"],
            2,
        ),
        (vec!["-z", "-j", "127.0.0.1", "ours", SEG[0]], 2),
        (vec!["-t", "127.0.0.1", "ours", "x"], 0),
        (vec!["-t", "127.0.0.1", "nosuch", "x"], 1),
        (vec!["127.0.0.1", "ours", SEG[0], "out"], 3),
    ];
    for (mut args, code) in cases {
        let dest = world.path("out/failed").display().to_string();
        args.insert(0, "--spool-dir");
        args.insert(1, &spool);
        if args.last() != Some(&"out") {
            args.push(&dest);
        }
        let ours = world.restore(Who::Ours, &args);
        assert!(
            !world.path("out/failed").exists() || code == 0,
            "no file left by ours"
        );
        let theirs = world.restore(Who::Barman, &args);
        let _ = std::fs::remove_file(world.path("out/failed"));
        assert_eq!(
            ours.status.code(),
            Some(code),
            "ours {args:?}: {}",
            stderr(&ours)
        );
        assert_eq!(
            theirs.status.code(),
            Some(code),
            "Barman {args:?}: {}",
            stderr(&theirs)
        );
        assert_eq!(
            remote_lines(&ours),
            remote_lines(&theirs),
            "stdout of {args:?}"
        );
        assert_eq!(
            error_lines(&ours),
            error_lines(&theirs),
            "stderr of {args:?}"
        );
    }
    // No temp file left next to the destinations.
    let left: Vec<_> = std::fs::read_dir(world.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn restore_parallel_prefetches_into_the_spool() {
    let (world, contents) = world_with_archive();
    let spool = world.path("spool");
    let spool_str = spool.display().to_string();
    let dest = world.path("out/RECOVERYXLOG");
    let dest_str = dest.display().to_string();
    let out = world.restore(
        Who::Ours,
        &[
            "-p",
            "3",
            "--spool-dir",
            &spool_str,
            "127.0.0.1",
            "ours",
            SEG[1],
            &dest_str,
        ],
    );
    ok(&out, "parallel restore");
    assert!(std::fs::read(&dest).unwrap() == contents[1]);
    let mut spooled = crate::support::file_names(&spool);
    spooled.sort();
    assert_eq!(spooled, [SEG[2], SEG[3]]);
    // The next request is served from the spool, even with no connection possible.
    let closed = free_port();
    let out = world.restore(
        Who::Ours,
        &[
            "--port",
            &closed,
            "-p",
            "3",
            "--spool-dir",
            &spool_str,
            "127.0.0.1",
            "ours",
            SEG[2],
            &dest_str,
        ],
    );
    ok(&out, "restore from the spool");
    assert!(std::fs::read(&dest).unwrap() == contents[2]);
    assert_eq!(crate::support::file_names(&spool), [SEG[3]]);
    // Barman's client reads our spool the same way, and ours reads one Barman filled.
    let out = world.restore(
        Who::Barman,
        &[
            "--port",
            &closed,
            "--spool-dir",
            &spool_str,
            "127.0.0.1",
            "ours",
            SEG[3],
            &dest_str,
        ],
    );
    ok(&out, "Barman's restore from our spool");
    assert!(std::fs::read(&dest).unwrap() == contents[3]);
    assert!(crate::support::file_names(&spool).is_empty());
}

/// PostgreSQL 15 archives through our barman-wal-archive into Python Barman's server
/// (filed by Barman's archive-wal), and a copy made with pg_basebackup recovers through
/// our barman-wal-restore (with prefetching) to exactly the primary's data. PostgreSQL
/// runs as `postgres`: its ssh wrapper uses that user's copy of the key.
#[test]
fn postgres_archives_and_recovers_through_the_clients() {
    archive_and_recover_through_server(Who::Barman);
}

/// The same with our server at the other end of ssh (`barman put-wal`, `cron` filing the
/// WAL in the background, `get-wal`): the whole WAL path of a barman server without Python.
#[test]
fn postgres_archives_and_recovers_through_our_server() {
    archive_and_recover_through_server(Who::Ours);
}

fn archive_and_recover_through_server(server: Who) {
    use crate::postgres::{CHECKSUM_SQL, Cluster, as_postgres, chown_postgres, recover_with};
    let world = World::with_server(server);
    let key = required_env("BARMAN_RS_TEST_SSH_KEY_POSTGRES");
    let pg_bin_dir = world.path("bin-pg");
    write_ssh_wrapper(&pg_bin_dir, &key, &world.path("remote"));
    let spool = world.path("pg-spool");
    std::fs::create_dir(&spool).unwrap();
    chown_postgres(&spool);
    let client = |name: &str, rest: &str| {
        format!(
            "PATH={}:$PATH {} -U root --port {} -c {} {rest}",
            pg_bin_dir.display(),
            world.path("ours").join(name).display(),
            world.port,
            world.conf()
        )
    };
    // PostgreSQL's user must reach the server before anything waits on archiving (a key it
    // cannot read would otherwise show only as pg_basebackup waiting 300 s).
    let reach = as_postgres(
        Path::new("/bin/sh"),
        &[
            "-c",
            &client("barman-wal-archive", "-t 127.0.0.1 ours unused"),
        ],
    );
    ok(&reach, "barman-wal-archive -t as postgres");
    let primary = Cluster::initdb("wal-clients-primary");
    primary.configure(&format!(
        "archive_mode = on\narchive_command = '{}'\n",
        client("barman-wal-archive", "127.0.0.1 ours %p")
    ));
    primary.start();
    primary.pgbench(&["-i", "-s", "1", "-q"]);
    let standby_root = temp_dir("wal-clients-standby");
    chown_postgres(standby_root.path());
    let standby_data = standby_root.path().join("data");
    let pg_basebackup = std::env::var("BARMAN_RS_TEST_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/lib/postgresql/15/bin"))
        .join("pg_basebackup");
    let port = primary.port.to_string();
    let out = as_postgres(
        &pg_basebackup,
        &[
            "-h",
            &primary.socket_dir(),
            "-p",
            &port,
            "-U",
            "postgres",
            "-D",
            standby_data.to_str().unwrap(),
            "-X",
            "none",
            "-c",
            "fast",
        ],
    );
    ok(&out, "pg_basebackup");
    primary.pgbench(&["-n", "-c", "2", "-t", "300"]);
    let expected = primary.psql(CHECKSUM_SQL);
    primary.archive_everything();
    assert_eq!(
        primary.psql("select failed_count from pg_stat_archiver"),
        "0"
    );
    match server {
        Who::Barman => {
            let out = world.barman(&["archive-wal", "ours"]);
            ok(&out, "barman archive-wal");
            assert!(stdout(&out).contains("00000001"), "{}", stdout(&out));
        }
        Who::Ours => {
            // As a DBA runs it: cron starts archive-wal in the background.
            let out = world.barman(&["cron"]);
            ok(&out, "barman cron");
            assert!(
                stdout(&out).contains("Starting WAL archiving for server ours"),
                "{}",
                stdout(&out)
            );
            let incoming = world.path("home/ours/incoming");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !crate::support::file_names(&incoming).is_empty() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "cron's archive-wal left {:?}",
                    crate::support::file_names(&incoming)
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let xlogdb =
                std::fs::read_to_string(world.path("home/ours/wals/ours-xlog.db")).unwrap();
            assert!(xlogdb.lines().count() >= 2, "{xlogdb}");
        }
    }
    let restore = client(
        "barman-wal-restore",
        &format!("-p 3 --spool-dir {} 127.0.0.1 ours %f %p", spool.display()),
    );
    let standby = recover_with(standby_root, &restore, "");
    assert_eq!(standby.psql(CHECKSUM_SQL), expected);
}

/// A client's standard output as a multiset of lines. In test mode both clients pass on
/// what the remote `barman` writes to its stdout ("Ready to ...") and to its stderr
/// (warnings) as it arrives over ssh's two channels, so the order of the two kinds of line
/// varies from run to run, with either tool.
fn remote_lines(out: &std::process::Output) -> Vec<String> {
    let mut lines: Vec<String> = stdout(out).lines().map(str::to_string).collect();
    lines.sort();
    lines
}
