//! barman-cloud-backup against a real PostgreSQL 15 under pgbench load: point-in-time
//! recovery of our backups through our restore and wal-restore, two tablespaces with and
//! without relocation, Python Barman restoring and listing what we wrote, every
//! compression, split archives, failures that must leave a FAILED backup, bad input.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::postgres::{CHECKSUM_SQL, Cluster, chown_postgres, recover};
use crate::support::*;

const TABLESPACES_SQL: &str = "select (select count(*) || ':' || sum(x) from in_ts1) || '/' || (select count(*) || ':' || sum(x) from in_ts2)";

fn state(cluster: &Cluster) -> (String, String) {
    (cluster.psql(CHECKSUM_SQL), cluster.psql(TABLESPACES_SQL))
}

fn our_backup(dest: &Destination, cluster: &Cluster, options: &[&str]) -> Output {
    cluster.backup_with_ours(dest, "srv", options)
}

/// pgbench writing in the background for `seconds`.
fn pgbench_load(cluster: &Cluster, seconds: u32) -> Child {
    Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            "/usr/bin/pgbench",
            "-n",
            "-c",
            "2",
            "-T",
        ])
        .arg(seconds.to_string())
        .args(["-h", &cluster.socket_dir(), "-p", &cluster.port.to_string()])
        .args(["-U", "postgres", "postgres"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pgbench")
}

/// Two tablespaces under `base`, with a table each.
fn make_tablespaces(source: &Cluster, base: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    chown_postgres(base);
    let ts1 = base.join("ts1");
    let ts2 = base.join("ts2");
    for (dir, name, table) in [(&ts1, "ts1", "in_ts1"), (&ts2, "ts2", "in_ts2")] {
        std::fs::create_dir(dir).unwrap();
        chown_postgres(dir);
        source.psql(&format!(
            "create tablespace {name} location '{}'",
            dir.display()
        ));
        source.psql(&format!("create table {table} (x int) tablespace {name}"));
        source.psql(&format!(
            "insert into {table} select generate_series(1, 3000)"
        ));
    }
    (ts1, ts2)
}

#[test]
fn point_in_time_recovery_of_our_backup_under_load() {
    let dest = Destination::create(Service::S3, "pitr");
    let scripts = temp_dir("bscripts");
    let source = Cluster::archiving("bsource", &dest, scripts.path(), "--gzip");
    let ts_base = temp_dir("bts");
    let (ts1, ts2) = make_tablespaces(&source, ts_base.path());
    source.pgbench(&["-i", "-s", "3", "-q"]);

    // The backup runs while pgbench writes; -S forces several parts per archive.
    let mut load = pgbench_load(&source, 8);
    std::thread::sleep(Duration::from_secs(1));
    let out = our_backup(
        &dest,
        &source,
        &["--zstd", "-J", "3", "-S", "4MB", "-n", "nightly", "-v"],
    );
    assert_success(&out, "our backup under load");
    assert!(load.wait().unwrap().success(), "pgbench failed");
    let log = stderr(&out);
    assert!(log.contains("Backup end at LSN"), "{log}");

    // Recovery target: after these rows, before the next ones.
    source.psql("insert into in_ts1 values (-1)");
    let at_target = state(&source);
    let target_time = source.psql("select clock_timestamp()");
    std::thread::sleep(Duration::from_millis(1500));
    source.psql("insert into in_ts1 select generate_series(1, 500)");
    source.psql("insert into in_ts2 select generate_series(1, 700)");
    source.pgbench(&["-n", "-c", "2", "-t", "100"]);
    let at_end = state(&source);
    source.archive_everything();

    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "DONE");
    let id = ids[0].0.clone();
    let objects = dest.ours_with(
        "barman-cloud-backup-show",
        &["--format", "json"],
        &["srv", "nightly"],
    );
    assert_success(&objects, "show by name");
    let show = String::from_utf8_lossy(&objects.stdout).to_string();
    assert!(show.contains(&format!("\"backup_id\": \"{id}\"")), "{show}");

    // Python Barman reads our catalog exactly as we do.
    for (command, options) in [
        ("barman-cloud-backup-list", vec!["--format", "json"]),
        ("barman-cloud-backup-list", vec![]),
        ("barman-cloud-backup-show", vec!["--format", "json"]),
        ("barman-cloud-backup-show", vec![]),
    ] {
        let mut rest = vec!["srv"];
        if command.ends_with("show") {
            rest.push(&id);
        }
        let theirs = dest.barman(command, &options, &rest);
        let ours = dest.ours_with(command, &options, &rest);
        assert_success(&theirs, command);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{command} {options:?}"
        );
    }

    // 1. Our restore to the target time, both tablespaces relocated, source still live.
    let work = temp_dir("bwork");
    let root = temp_dir("pitr-restore");
    let (new1, new2) = (work.path().join("new1"), work.path().join("new2"));
    let out = dest.ours_with(
        "barman-cloud-restore",
        &[
            "--tablespace",
            &format!("ts1:{}", new1.display()),
            "--tablespace",
            &format!("ts2:{}", new2.display()),
        ],
        &["srv", &id, root.path().join("data").to_str().unwrap()],
    );
    assert_success(&out, "our restore");
    chown_postgres(work.path());
    let restored = recover(
        root,
        scripts.path(),
        &dest,
        &format!("recovery_target_time = '{target_time}'\nrecovery_target_action = 'promote'\n"),
    );
    assert_eq!(state(&restored), at_target, "point-in-time recovery");
    drop(restored);

    // 2. Python Barman restores our backup; recovery to the end of the archive.
    let root = temp_dir("barman-restore");
    let (b1, b2) = (work.path().join("b1"), work.path().join("b2"));
    let out = dest.barman(
        "barman-cloud-restore",
        &[
            "--tablespace",
            &format!("ts1:{}", b1.display()),
            "--tablespace",
            &format!("ts2:{}", b2.display()),
        ],
        &["srv", &id, root.path().join("data").to_str().unwrap()],
    );
    assert_success(&out, "Barman restoring our backup");
    chown_postgres(work.path());
    let restored = recover(root, scripts.path(), &dest, "");
    assert_eq!(state(&restored), at_end, "Barman restore, end of WAL");
    drop(restored);

    // 3. Without relocation: the tablespaces go back to their original locations.
    drop(source);
    for dir in [&ts1, &ts2] {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let root = temp_dir("in-place");
    let out = dest.ours(
        "barman-cloud-restore",
        &["srv", "last", root.path().join("data").to_str().unwrap()],
    );
    assert_success(&out, "restore without relocation");
    for dir in [&ts1, &ts2] {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.len() == 1 && names[0].starts_with("PG_15_"),
            "{names:?}"
        );
    }
    chown_postgres(&ts1);
    chown_postgres(&ts2);
    let restored = recover(root, scripts.path(), &dest, "");
    assert_eq!(state(&restored), at_end, "restore in place, end of WAL");
}

/// Relative paths of the regular files under `root`, sorted.
fn file_set(root: &Path) -> Vec<String> {
    let mut files = local_files(root);
    files.sort();
    files
}

#[test]
fn every_compression_is_restored_whole_by_barman() {
    let dest = Destination::create(Service::S3, "bcomp");
    let scripts = temp_dir("bcscripts");
    let source = Cluster::archiving("bcsource", &dest, scripts.path(), "");
    source.pgbench(&["-i", "-s", "2", "-q"]);
    let compressions: [&[&str]; 6] = [
        &[],
        &["--gzip"],
        &["--bzip2"],
        &["--snappy"],
        &["--lz4"],
        &["--zstd"],
    ];
    for compression in compressions {
        // A small -S splits every archive into several objects.
        let mut options = vec!["-S", "3MB", "-J", "2"];
        options.extend(compression);
        let out = our_backup(&dest, &source, &options);
        assert_success(&out, &format!("our backup {compression:?}"));
    }
    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), compressions.len(), "{ids:?}");
    let work = temp_dir("bcwork");
    for ((id, status), compression) in ids.iter().zip(compressions) {
        assert_eq!(status, "DONE");
        let theirs = work.path().join(format!("barman-{id}"));
        let ours = work.path().join(format!("ours-{id}"));
        assert_success(
            &dest.barman(
                "barman-cloud-restore",
                &[],
                &["srv", id, theirs.to_str().unwrap()],
            ),
            &format!("Barman restore of {compression:?}"),
        );
        assert_success(
            &dest.ours("barman-cloud-restore", &["srv", id, ours.to_str().unwrap()]),
            &format!("our restore of {compression:?}"),
        );
        // Barman decodes only the first gzip member / frame of an object: a file missing
        // from its restore would show a multi-member archive.
        let files = file_set(&theirs);
        assert_eq!(files, file_set(&ours), "{compression:?}");
        for needed in [
            "PG_VERSION",
            "global/pg_control",
            "backup_label",
            "postgresql.conf",
        ] {
            assert!(
                files.iter().any(|f| f == needed),
                "{needed} missing for {compression:?}"
            );
        }
        assert!(
            files.len() > 900,
            "only {} files for {compression:?}",
            files.len()
        );
        for excluded in ["postmaster.pid", "postmaster.opts"] {
            assert!(!files.iter().any(|f| f == excluded), "{excluded} archived");
        }
        assert!(
            !files.iter().any(|f| f.starts_with("pg_wal/0")),
            "WAL archived"
        );
        let label = std::fs::read_to_string(theirs.join("backup_label")).unwrap();
        assert!(
            label.contains(&format!("LABEL: Barman backup cloud {id}")),
            "{label}"
        );
    }
    // The zstd backup starts and recovers.
    let root = temp_dir("bcstart");
    let id = &ids.last().unwrap().0;
    assert_success(
        &dest.ours(
            "barman-cloud-restore",
            &["srv", id, root.path().join("data").to_str().unwrap()],
        ),
        "restore for start",
    );
    let expected = source.psql(CHECKSUM_SQL);
    source.archive_everything();
    let restored = recover(root, scripts.path(), &dest, "");
    assert_eq!(restored.psql(CHECKSUM_SQL), expected);
}

#[test]
fn libpq_environment_and_conninfo_strings_reach_the_server() {
    let dest = Destination::create(Service::Local, "bconn");
    // PostgreSQL's archive_command writes there as the postgres user, while this test
    // runs the backup as root: give the WAL directory to postgres up front.
    let root = Path::new(dest.url.strip_prefix("file://").unwrap());
    std::fs::create_dir_all(root.join("srv/wals")).unwrap();
    chown_postgres(root);
    let scripts = temp_dir("bconnscripts");
    let source = Cluster::archiving("bconn", &dest, scripts.path(), "");
    // PG* variables instead of options.
    let mut cmd = Command::new(our_binary());
    cmd.args([
        "barman-cloud-backup",
        "--immediate-checkpoint",
        &dest.url,
        "srv",
    ])
    .env("PGHOST", source.socket_dir())
    .env("PGPORT", source.port.to_string())
    .env("PGUSER", "postgres");
    assert_success(&cmd.output().unwrap(), "backup with PG* variables");
    std::thread::sleep(Duration::from_millis(1100));
    // A conninfo string in -d overrides -h/-p/-U.
    let conninfo = format!(
        "host={} port={} user=postgres application_name=nightly_job",
        source.socket_dir(),
        source.port
    );
    let out = dest.ours_with(
        "barman-cloud-backup",
        &[
            "-h",
            "/nonexistent",
            "-p",
            "1",
            "-d",
            &conninfo,
            "--lz4",
            "--immediate-checkpoint",
            "-S",
            "1MB",
        ],
        &["srv"],
    );
    assert_success(&out, "backup with a conninfo string");
    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|(_, status)| status == "DONE"), "{ids:?}");
    // -S 1MB split the second backup's data archive into numbered objects.
    let objects = file_set(&root.join("srv/base").join(&ids[1].0));
    for name in ["data.tar.lz4", "data_0001.tar.lz4", "backup.info"] {
        assert!(
            objects.iter().any(|o| o == name),
            "{name} not in {objects:?}"
        );
    }
}

#[test]
fn failures_leave_a_failed_backup_and_bad_input_is_refused() {
    let dest = Destination::create(Service::S3, "bfail");
    let scripts = temp_dir("bfscripts");
    let source = Cluster::archiving("bfsource", &dest, scripts.path(), "");
    source.pgbench(&["-i", "-s", "4", "-q"]);

    // The storage fills up in the middle of an archive: the upload is aborted (no staging
    // file left) and the backup is FAILED.
    let full = TinyFilesystem::mount("24m");
    let tiny = Destination::local_at(&full.0.path().join("bucket"));
    let out = our_backup(&tiny, &source, &[]);
    assert_exit(&out, 1, "backup onto a full filesystem");
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    let ids = backup_ids(&tiny);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "FAILED");
    let left: Vec<String> = local_files(&full.0.path().join("bucket"))
        .into_iter()
        .filter(|f| !f.ends_with("backup.info"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(full);

    // PostgreSQL goes away while the (throttled) copy runs.
    let mut options = source.backup_options();
    options.extend(
        [
            "--max-bandwidth",
            "4MB",
            "--keepalive-interval",
            "1",
            "--min-chunk-size",
            "5MB",
        ]
        .map(String::from),
    );
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let backup = dest
        .command_for_ours("barman-cloud-backup", &options, &["srv"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let pid = std::fs::read_to_string(source.data().join("postmaster.pid")).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = backup.wait_with_output().unwrap();
    assert_exit(&out, 1, "backup with PostgreSQL killed");
    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].1, "FAILED");
    let show = dest.barman("barman-cloud-backup-show", &[], &["srv", &ids[0].0]);
    assert_success(&show, "Barman shows the failed backup");
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("failure uploading data"),
        "{}",
        String::from_utf8_lossy(&show.stdout)
    );

    // Bad input: argparse errors exit 3, cross-checks 4, unreachable PostgreSQL 1.
    for (options, code) in [
        (vec!["-J", "0"], 3),
        (vec!["--max-bandwidth", "0"], 3),
        (vec!["-S", "lots"], 3),
        (vec!["--gzip", "--zstd"], 3),
        (vec!["--snapshot-disk", "d1", "--gzip"], 4),
        (vec!["--sse-kms-key-id", "k"], 4),
        (vec!["-h", "/nonexistent", "-p", "1"], 1),
        (vec!["-d", "host=/nonexistent nosuchkey=1"], 1),
    ] {
        let out = dest.ours_with("barman-cloud-backup", &options, &["srv"]);
        assert_exit(&out, code, &format!("{options:?}"));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{options:?}: {err}");
        let theirs = dest.barman("barman-cloud-backup", &options, &["srv"]);
        assert_same_exit(&out, &theirs, &format!("{options:?}"));
    }
}

#[test]
fn backups_on_azure_and_gcs_are_restored_by_barman() {
    let scripts = temp_dir("bagscripts");
    let local = Destination::create(Service::Local, "bagwal");
    let wal_root = Path::new(local.url.strip_prefix("file://").unwrap());
    std::fs::create_dir_all(wal_root.join("srv/wals")).unwrap();
    chown_postgres(wal_root);
    let source = Cluster::archiving("bagsource", &local, scripts.path(), "");
    source.pgbench(&["-i", "-s", "1", "-q"]);
    let work = temp_dir("bagwork");
    for service in [Service::Azure, Service::Gcs] {
        let dest = Destination::create(service, "bag");
        // Parts of 1 MiB (Azure blocks, GCS XML multipart) and several objects per archive.
        let out = our_backup(
            &dest,
            &source,
            &[
                "--gzip",
                "-S",
                "2MB",
                "--min-chunk-size",
                "1MB",
                "--tag",
                "owner,dba",
            ],
        );
        assert_success(&out, &format!("backup to {service:?}"));
        let ids = backup_ids(&dest);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].1, "DONE");
        let theirs = work.path().join(format!("{service:?}-barman"));
        let ours = work.path().join(format!("{service:?}-ours"));
        assert_success(
            &dest.barman(
                "barman-cloud-restore",
                &[],
                &["srv", &ids[0].0, theirs.to_str().unwrap()],
            ),
            &format!("Barman restore from {service:?}"),
        );
        assert_success(
            &dest.ours(
                "barman-cloud-restore",
                &["srv", &ids[0].0, ours.to_str().unwrap()],
            ),
            &format!("our restore from {service:?}"),
        );
        let files = file_set(&theirs);
        assert_eq!(files, file_set(&ours), "{service:?}");
        assert!(files.len() > 900 && files.iter().any(|f| f == "global/pg_control"));
    }
}
