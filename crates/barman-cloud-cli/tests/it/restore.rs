//! barman-cloud-restore of backups taken by Barman 3.20.1's barman-cloud-backup: every
//! compression, a relocated tablespace, and the restored cluster recovers through our
//! wal-restore to the data committed before the backup ended.

use std::path::Path;
use std::time::Duration;

use crate::postgres::{CHECKSUM_SQL, Cluster, chown_postgres, recover};
use crate::support::*;

const TABLESPACE_SQL: &str = "select count(*) || ':' || sum(x) from in_tablespace";

fn backup_ids(dest: &Destination) -> Vec<String> {
    let out = dest.barman("barman-cloud-backup-list", &["--format", "json"], &["srv"]);
    assert_success(&out, "Barman backup-list");
    String::from_utf8_lossy(&out.stdout)
        .split("\"backup_id\": \"")
        .skip(1)
        .map(|s| s[..15].to_string())
        .collect()
}

fn restore(dest: &Destination, id: &str, target: &Path, tablespace: &Path) -> std::process::Output {
    let rule = format!("ts:{}", tablespace.display());
    dest.ours_with(
        "barman-cloud-restore",
        &["--tablespace", &rule],
        &["srv", id, target.to_str().unwrap()],
    )
}

#[test]
fn restores_barman_backups_of_every_compression() {
    let dest = Destination::create(Service::S3, "restore");
    let scripts = temp_dir("rscripts");
    let source = Cluster::archiving("rsource", &dest, scripts.path(), "");
    let ts_dir = source.root.path().join("ts1");
    std::fs::create_dir(&ts_dir).unwrap();
    chown_postgres(&ts_dir);
    source.psql(&format!(
        "create tablespace ts location '{}'",
        ts_dir.display()
    ));
    source.psql("create table in_tablespace (x int) tablespace ts");
    source.psql("insert into in_tablespace select generate_series(1, 5000)");
    source.pgbench(&["-i", "-s", "1", "-q"]);
    let expected = (source.psql(CHECKSUM_SQL), source.psql(TABLESPACE_SQL));

    let port = source.port.to_string();
    let socket = source.socket_dir();
    let compressions: [&[&str]; 6] = [
        &[],
        &["--gzip"],
        &["--bzip2"],
        &["--snappy"],
        &["--lz4"],
        &["--zstd"],
    ];
    for compression in compressions {
        let mut options = vec![
            "--immediate-checkpoint",
            "-h",
            socket.as_str(),
            "-p",
            port.as_str(),
            "-U",
            "postgres",
        ];
        options.extend(compression);
        assert_success(
            &dest.barman("barman-cloud-backup", &options, &["srv"]),
            &format!("Barman backup {compression:?}"),
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    let ids = backup_ids(&dest);
    assert_eq!(ids.len(), 6);

    let work = temp_dir("restored");
    // The first two restores go where a Cluster can start them: <root>/data.
    let roots: Vec<tempfile::TempDir> = (0..2).map(|_| temp_dir("rcluster")).collect();
    let ts_oid = source.psql("select oid from pg_tablespace where spcname = 'ts'");
    let table_file = source.psql("select pg_relation_filepath('in_tablespace')");
    let accounts_file = source.psql("select pg_relation_filepath('pgbench_accounts')");
    for (i, (id, compression)) in ids.iter().zip(compressions).enumerate() {
        let pgdata = match roots.get(i) {
            Some(root) => root.path().join("data"),
            None => work.path().join(format!("pg-{id}")),
        };
        let tablespace = work.path().join(format!("ts-{id}"));
        let out = restore(&dest, id, &pgdata, &tablespace);
        assert_success(&out, &format!("restore of the {compression:?} backup"));
        assert_eq!(
            std::fs::read_link(pgdata.join("pg_tblspc").join(&ts_oid)).unwrap(),
            tablespace
        );
        assert!(pgdata.join("pg_wal").is_dir());
        assert!(pgdata.join("backup_label").is_file());
        assert!(
            !local_files(&tablespace).is_empty(),
            "tablespace {compression:?} is empty"
        );
        // The source is live (autovacuum adds visibility maps between backups), so check
        // the files that matter rather than identical trees.
        for file in [
            "PG_VERSION",
            "global/pg_control",
            table_file.as_str(),
            accounts_file.as_str(),
        ] {
            assert!(
                pgdata.join(file).is_file(),
                "{file} missing from the {compression:?} restore"
            );
        }
    }

    // The plain and the gzip restores start and recover to the source's data.
    for (root, id) in roots.into_iter().zip(&ids) {
        chown_postgres(&work.path().join(format!("ts-{id}")));
        let restored = recover(root, scripts.path(), &dest, "");
        assert_eq!(
            (restored.psql(CHECKSUM_SQL), restored.psql(TABLESPACE_SQL)),
            expected,
            "backup {id}"
        );
    }

    // Refusals, with Barman's exit codes.
    let busy = work.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("file"), b"x").unwrap();
    for (id, target) in [
        (ids[0].as_str(), busy.as_path()),
        ("20000101T000000", work.path().join("new").as_path()),
        ("no-such-name", work.path().join("new2").as_path()),
    ] {
        let ours = restore(&dest, id, target, &work.path().join("tsx"));
        let barman = dest.barman(
            "barman-cloud-restore",
            &["--tablespace", "ts:/nonexistent"],
            &["srv", id, target.to_str().unwrap()],
        );
        assert_same_exit(&ours, &barman, id);
        assert!(!ours.status.success());
    }
    // auto picks the newest backup.
    let auto = work.path().join("auto");
    assert_success(
        &restore(&dest, "auto", &auto, &work.path().join("ts-auto")),
        "restore auto",
    );
    assert!(auto.join("PG_VERSION").is_file());
}

/// Recovery targets are checked where Barman checks them: `--target-tli` by the argument
/// parser (exit 3), time and LSN only for `auto` and after the catalog is read (exit 4),
/// and not at all for a named backup.
#[test]
fn recovery_targets_are_checked_where_barman_checks_them() {
    let dest = Destination::create(Service::S3, "targets");
    let missing = Destination::new(Service::S3, "targets-missing");
    let dir = temp_dir("targets");
    let target = dir.path().join("pgdata");
    let target = target.to_str().unwrap();
    for dest in [&dest, &missing] {
        for (options, backup) in [
            (vec!["--target-tli", "foo"], "auto"),
            (vec!["--target-tli", "0"], "auto"),
            (vec!["--target-tli", " +2 "], "auto"),
            (vec!["--target-tli", "latest"], "auto"),
            (vec!["--target-lsn", "zz"], "auto"),
            (vec!["--target-time", "not a time"], "auto"),
            (vec!["--target-time", "2026-01-01"], "auto"),
            (vec!["--target-lsn", "zz"], "20260101T000000"),
            (vec!["--target-time", "not a time"], "latest"),
        ] {
            let what = format!("{options:?} {backup} ({})", dest.url);
            let ours = dest.ours_with("barman-cloud-restore", &options, &["srv", backup, target]);
            let barman = dest.barman("barman-cloud-restore", &options, &["srv", backup, target]);
            assert_same_exit(&ours, &barman, &what);
            assert!(!Path::new(target).exists(), "{what}: nothing restored");
        }
    }
}
