//! `barman backup` of a snapshot server against Python Barman 3.20.1 on one barman_home:
//! a real PostgreSQL 15 archiving into the server's `incoming/`, EC2 volumes in moto, the
//! `findmnt` stand-in reached over the real sshd (set-up of `server_check`). Both tools
//! take backups in the same set-up; their output, backup.info and hook environments are
//! compared, and each reads the other's backups.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::ec2::Ec2World;
use crate::postgres::{Cluster, chown_postgres};
use crate::server_world::{CheckHost, python_barman};
use crate::support::*;

const CONF: &str = "[barman]
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
{extra}
";

struct Setup {
    host: CheckHost,
    ec2: Ec2World,
}

impl std::ops::Deref for Setup {
    type Target = CheckHost;

    fn deref(&self) -> &CheckHost {
        &self.host
    }
}

impl Setup {
    /// A snapshot server on `volumes` EC2 volumes: volume 0 holds PGDATA, the others are
    /// mounted on empty directories.
    fn new(tag: &str, volumes: usize) -> Setup {
        let ec2 = Ec2World::new(tag, volumes);
        let host = CheckHost::new(tag, "snap", ec2.env());
        host.mounts
            .mount(&ec2.volume(0).device, &host.cluster.data(), "rw,noatime");
        for i in 1..volumes {
            let dir = host.world.path(&format!("disk{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            host.mounts.mount(&ec2.volume(i).device, &dir, "rw");
        }
        let setup = Setup { host, ec2 };
        setup.conf("", "");
        setup
    }

    /// The configuration with `disks` (default: every volume's Name) and `extra` lines.
    fn conf(&self, disks: &str, extra: &str) {
        let all: Vec<String> = self.ec2.volumes().iter().map(|v| v.name.clone()).collect();
        let disks = if disks.is_empty() {
            all.join(",")
        } else {
            disks.to_string()
        };
        self.host.write_conf(
            &CONF
                .replace("{ssh}", &self.good_ssh.display().to_string())
                .replace("{instance}", self.ec2.instance_name())
                .replace("{disks}", &disks)
                .replace("{extra}", extra),
        );
    }

    fn ours(&self, args: &[&str]) -> Output {
        self.run(&self.world.ours(), args)
    }

    fn barman(&self, args: &[&str]) -> Output {
        self.run(&python_barman(), args)
    }

    fn meta(&self) -> std::path::PathBuf {
        self.world.path("home/snap/meta")
    }

    /// backup.info files by backup ID.
    fn infos(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut infos = BTreeMap::new();
        for name in file_names(&self.meta()) {
            if let Some(id) = name.strip_suffix("-backup.info") {
                infos.insert(id.to_string(), read_info(&self.meta().join(&name)));
            }
        }
        infos
    }

    /// The only backup not in `before`.
    fn new_backup(
        &self,
        before: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> (String, BTreeMap<String, String>) {
        let mut new: Vec<_> = self
            .infos()
            .into_iter()
            .filter(|(id, _)| !before.contains_key(id))
            .collect();
        assert_eq!(new.len(), 1, "one new backup: {new:?}");
        new.pop().unwrap()
    }

    fn snapshot_count(&self) -> usize {
        self.ec2
            .volumes()
            .iter()
            .map(|v| self.ec2.snapshots_of_volume(&v.id).len())
            .sum()
    }
}

fn read_info(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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

/// A line with every word holding a digit (IDs, WALs, LSNs, times, sizes) replaced by
/// `#`, and the human-readable durations dropped.
fn shape(line: &str) -> String {
    let mut line = line.to_string();
    for cut in ["(time: ", "elapsed time: "] {
        if let Some(at) = line.find(cut) {
            line.truncate(at + cut.len());
        }
    }
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    // `.backup` files are listed among the WALs (where they fall depends on the run).
    out.replace("#.#.backup", "#")
}

/// The shapes of `text`'s lines, runs of identical shapes (WAL lists) collapsed, and
/// consecutive archive-wal runs (how many the wait takes depends on timing) as one.
fn shapes(text: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for line in text.lines() {
        let s = shape(line);
        let repeated_run = s.starts_with("Processing xlog segments")
            && all.len() >= 2
            && all[all.len() - 1] == "\t#"
            && all[all.len() - 2] == s;
        if all.last() != Some(&s) && !repeated_run {
            all.push(s);
        }
    }
    all
}

/// Python-literal values' shapes: `None`, a number, a string, a dict, a list.
fn value_kind(value: &str) -> &'static str {
    if value == "None" {
        "None"
    } else if value.starts_with('{') {
        "dict"
    } else if value.starts_with('[') {
        "list"
    } else if value.len() < 20 && value.parse::<f64>().is_ok() {
        "number"
    } else {
        "text"
    }
}

fn remove_backup(setup: &Setup, id: &str) {
    std::fs::remove_file(setup.meta().join(format!("{id}-backup.info"))).unwrap();
    std::fs::remove_dir_all(setup.world.path(&format!("home/snap/base/{id}"))).unwrap();
}

fn snapshot_ids(info: &BTreeMap<String, String>) -> Vec<String> {
    let text = info.get("snapshots_info").cloned().unwrap_or_default();
    text.split("'snapshot_id': '")
        .skip(1)
        .map(|rest| rest.split('\'').next().unwrap().to_string())
        .collect()
}

#[test]
fn server_backup_with_wait_under_load_matches_barman() {
    let setup = Setup::new("srvbackup", 1);
    setup.cluster.pgbench(&["-i", "-s", "2"]);
    let check = setup.ours(&["check", "snap"]);
    assert_success(&check, "check");

    // Python Barman's first backup, under load.
    let load = pgbench_load(&setup.cluster, 8);
    let before = setup.infos();
    let theirs = setup.barman(&["backup", "--wait", "--immediate-checkpoint", "snap"]);
    assert_success(&theirs, "Barman's backup");
    let (their_id, their_info) = setup.new_backup(&before);
    assert_eq!(their_info["status"], "DONE");
    // Barman's identity.json, which ours writes the same way (checked in the next test).
    assert_eq!(
        std::fs::read_to_string(setup.world.path("home/snap/identity.json")).unwrap(),
        format!(
            "{{\n    \"systemid\": \"{}\",\n    \"version\": \"15\"\n}}\n",
            their_info["systemid"]
        )
    );
    let their_label = std::fs::read_to_string(
        setup
            .world
            .path(&format!("home/snap/base/{their_id}/data/backup_label")),
    )
    .unwrap();
    // Forgotten, so that ours is a first backup too (its snapshot stays in moto until the
    // world is dropped).
    remove_backup(&setup, &their_id);

    // Ours, under load too.
    let before = setup.infos();
    let ours = setup.ours(&["backup", "--wait", "--immediate-checkpoint", "snap"]);
    assert_success(&ours, "our backup");
    let mut load = load;
    let _ = load.wait();
    let (our_id, info) = setup.new_backup(&before);
    assert_eq!(info["status"], "DONE", "{info:?}");
    assert_eq!(info["mode"], "snapshot-concurrent");
    assert_eq!(info["server_name"], "snap");
    assert_eq!(info["compression"], "None");
    assert_eq!(info["xlog_segment_size"], "16777216");
    assert!(!info.contains_key("backup_name"));
    let label_path = setup
        .world
        .path(&format!("home/snap/base/{our_id}/data/backup_label"));
    let label = std::fs::read_to_string(&label_path).unwrap();
    assert!(
        label.contains(&format!("LABEL: Barman backup snap {our_id}\n")),
        "{label}"
    );
    assert_eq!(info["size"], label.len().to_string());
    assert_eq!(info["deduplicated_size"], label.len().to_string());
    assert_eq!(
        file_names(&setup.world.path(&format!("home/snap/base/{our_id}"))),
        ["data"]
    );

    // Same keys, same kinds of values, the same server facts.
    assert_eq!(
        info.keys().collect::<Vec<_>>(),
        their_info.keys().collect::<Vec<_>>()
    );
    for (key, value) in &info {
        assert_eq!(
            value_kind(value),
            value_kind(&their_info[key]),
            "{key}: ours {value}, Barman's {}",
            their_info[key]
        );
    }
    for key in [
        "mode",
        "server_name",
        "compression",
        "config_file",
        "hba_file",
        "ident_file",
        "included_files",
        "pgdata",
        "systemid",
        "version",
        "timeline",
        "tablespaces",
        "xlog_segment_size",
        "data_checksums",
        "parent_backup_id",
        "children_backup_ids",
        "encryption",
        "summarize_wal",
        "status",
    ] {
        assert_eq!(info[key], their_info[key], "{key}");
    }
    assert_eq!(
        label.len(),
        their_label.len() + our_id.len() - their_id.len()
    );
    // The snapshots_info of both, IDs and names aside.
    let mask = |text: &str, id: &str| {
        let mut text = text.replace(&id.to_lowercase(), "<id>");
        for snapshot in text
            .split("'snapshot_id': '")
            .skip(1)
            .map(|r| r.split('\'').next().unwrap().to_string())
            .collect::<Vec<_>>()
        {
            text = text.replace(&snapshot, "<snap>");
        }
        text
    };
    assert_eq!(
        mask(&info["snapshots_info"], &our_id),
        mask(&their_info["snapshots_info"], &their_id)
    );
    let snapshots = snapshot_ids(&info);
    assert_eq!(snapshots.len(), 1);
    let snapshot = setup
        .ec2
        .snapshot(&snapshots[0])
        .expect("our snapshot in EC2");
    assert_eq!(snapshot.volume_id, setup.ec2.volume(0).id);
    assert_eq!(snapshot.state, "completed");
    // The end WAL is archived and indexed, with the .backup file.
    let xlogdb = std::fs::read_to_string(setup.world.path("home/snap/wals/snap-xlog.db")).unwrap();
    assert!(
        xlogdb.contains(&format!("{}\t", info["end_wal"])),
        "{xlogdb}"
    );
    assert!(xlogdb.contains(".backup\t"), "{xlogdb}");
    // The first backup removed the older WALs (Python Barman's among them).
    let begin = &info["begin_wal"];
    for line in xlogdb.lines() {
        let name = line.split('\t').next().unwrap();
        assert!(
            name.ends_with(".history") || name >= begin.as_str(),
            "{name} older than {begin}"
        );
    }
    // The restore point.
    let log = std::fs::read_to_string(setup.cluster.root.path().join("server.log")).unwrap();
    assert!(
        log.contains(&format!("restore point \"barman_{our_id}\"")),
        "{log}"
    );

    // The console output, line shapes compared (WAL lists collapsed).
    let (our_text, their_text) = (stdout(&ours), stdout(&theirs));
    assert_eq!(
        shapes(&our_text),
        shapes(&their_text),
        "ours:\n{our_text}\nBarman's:\n{their_text}"
    );
    assert!(our_text.starts_with(&format!(
        "Starting backup using snapshot-concurrent method for server snap in {}\n",
        setup.world.path(&format!("home/snap/base/{our_id}")).display()
    )));
    for expected in [
        "This is the first backup for server snap\n",
        &format!("Starting backup with disk snapshots for {our_id}\n"),
        "Asking PostgreSQL server to finalize the backup.\n",
        &format!("Backup size: {} B\n", label.len()),
        &format!(
            "Waiting for the WAL file {} from server 'snap'\n",
            info["end_wal"]
        ),
        "Processing xlog segments from file archival for snap\n",
    ] {
        assert!(our_text.contains(expected), "{expected}\n{our_text}");
    }

    // Python Barman reads our backup.
    let shown = setup.barman(&["show-backup", "snap", &our_id]);
    assert_success(&shown, "Barman's show-backup of ours");
    let text = stdout(&shown);
    for expected in [
        "Status                 : DONE",
        &snapshots[0],
        "Snapshot information:",
        &format!("{}", setup.cluster.data().display()),
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    let listed = setup.barman(&["list-backups", "snap"]);
    assert_success(&listed, "Barman's list-backups");
    assert!(
        stdout(&listed).contains(&format!("snap {our_id} ")),
        "{}",
        stdout(&listed)
    );

    // A second backup: not the first, with a name, no WAL removed.
    let before = setup.infos();
    let second = setup.ours(&["backup", "--wait", "--name", "second one", "snap"]);
    assert_success(&second, "second backup");
    let (_, info2) = setup.new_backup(&before);
    assert_eq!(info2["backup_name"], "second one");
    assert_eq!(info2["status"], "DONE");
    assert!(
        !stdout(&second).contains("first backup"),
        "{}",
        stdout(&second)
    );
}

#[test]
fn server_backup_waiting_for_wals_then_archive_wal_marks_it_done() {
    let setup = Setup::new("srvbackupwfw", 1);
    assert_success(&setup.ours(&["check", "snap"]), "check");
    // The archiver now copies into a held directory, moved to incoming/ by hand.
    let held = setup.world.path("held");
    std::fs::create_dir_all(&held).unwrap();
    chown_postgres(&held);
    setup.cluster.configure(&format!(
        "archive_command = 'test ! -f {dir}/%f && cp %p {dir}/%f'\n",
        dir = held.display()
    ));
    setup.cluster.psql("select pg_reload_conf()");

    let before = setup.infos();
    let out = setup.ours(&["backup", "snap"]);
    assert_success(&out, "backup without --wait");
    let (id, info) = setup.new_backup(&before);
    assert_eq!(info["status"], "WAITING_FOR_WALS", "{info:?}");
    // The server's identity, as Barman writes it on a backup.
    assert_eq!(
        std::fs::read_to_string(setup.world.path("home/snap/identity.json")).unwrap(),
        format!(
            "{{\n    \"systemid\": \"{}\",\n    \"version\": \"15\"\n}}\n",
            info["systemid"]
        )
    );
    assert!(
        stderr(&out).contains("WARNING: IMPORTANT: this backup is classified as WAITING_FOR_WALS"),
        "{}",
        stderr(&out)
    );
    // Python Barman sees it waiting.
    let shown = setup.barman(&["show-backup", "snap", &id]);
    assert!(
        stdout(&shown).contains("WAITING_FOR_WALS"),
        "{}",
        stdout(&shown)
    );

    // The WALs arrive: archive-wal files them and the backup is DONE.
    let end_wal = info["end_wal"].clone();
    setup
        .cluster
        .wait_for("the end WAL archived", Duration::from_secs(60), || {
            held.join(&end_wal).exists()
        });
    for name in file_names(&held) {
        std::fs::rename(
            held.join(&name),
            setup.world.path("home/snap/incoming").join(&name),
        )
        .unwrap();
    }
    let archived = setup.ours(&["archive-wal", "snap"]);
    assert_success(&archived, "archive-wal");
    assert!(
        stdout(&archived).contains(&end_wal),
        "{}",
        stdout(&archived)
    );
    let info = read_info(&setup.meta().join(format!("{id}-backup.info")));
    assert_eq!(info["status"], "DONE");
    let shown = setup.barman(&["show-backup", "snap", &id]);
    assert!(
        stdout(&shown).contains("Status                 : DONE"),
        "{}",
        stdout(&shown)
    );

    // Again, and this time `barman cron` (its archive-wal in the background) completes it.
    wait_past(&id);
    let before = setup.infos();
    assert_success(&setup.ours(&["backup", "snap"]), "second backup");
    let (id, info) = setup.new_backup(&before);
    assert_eq!(info["status"], "WAITING_FOR_WALS", "{info:?}");
    let end_wal = info["end_wal"].clone();
    setup
        .cluster
        .wait_for("the end WAL archived", Duration::from_secs(60), || {
            held.join(&end_wal).exists()
        });
    for name in file_names(&held) {
        std::fs::rename(
            held.join(&name),
            setup.world.path("home/snap/incoming").join(&name),
        )
        .unwrap();
    }
    assert_success(&setup.ours(&["cron"]), "cron");
    let path = setup.meta().join(format!("{id}-backup.info"));
    setup
        .cluster
        .wait_for("cron's archive-wal", Duration::from_secs(60), || {
            read_info(&path)["status"] == "DONE"
        });
}

#[test]
fn server_backup_failures_match_barman_and_leave_no_snapshot() {
    let setup = Setup::new("srvbackupfail", 2);
    assert_success(&setup.ours(&["check", "snap"]), "check");

    // A disk that is not attached: refused by the checks, as Barman refuses it.
    let disks = format!(
        "{},{},nosuchdisk",
        setup.ec2.volume(0).name,
        setup.ec2.volume(1).name
    );
    setup.conf(&disks, "");
    let out = setup.compare(&["backup", "snap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "ERROR: Impossible to start the backup. Check the log for more details, or run \
             'barman check snap'"
        ),
        "{}",
        stderr(&out)
    );
    assert!(setup.infos().is_empty());
    setup.conf("", "");

    // --incremental: the parent must exist (then snapshot servers refuse it anyway).
    let out = setup.compare(&["backup", "--incremental", "latest", "snap"]);
    assert!(
        stderr(&out).contains("ERROR: Unknown backup 'latest' for server 'snap'"),
        "{}",
        stderr(&out)
    );

    // Another backup running: the lock is held.
    let lock = setup.world.path("home/.snap-backup.lock");
    // flock's child (sleep) holds the lock too: the whole process group is ended.
    let mut holder = {
        use std::os::unix::process::CommandExt;
        Command::new("flock")
            .arg("-x")
            .arg(&lock)
            .args(["sleep", "30"])
            .process_group(0)
            .spawn()
            .expect("flock")
    };
    std::thread::sleep(Duration::from_millis(500));
    let out = setup.compare(&["backup", "snap"]);
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", holder.id())])
        .status();
    let _ = holder.wait();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ERROR: Another backup process is running"),
        "{}",
        stderr(&out)
    );
    assert!(setup.infos().is_empty());

    // CreateSnapshot fails for the second disk: FAILED, and no snapshot left.
    setup
        .ec2
        .set_create_error(&setup.ec2.volume(1).id, Some("IncorrectState"));
    let out = setup.ours(&["backup", "snap"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let infos = setup.infos();
    assert_eq!(
        infos.len(),
        1,
        "{infos:?}\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let info = infos.values().next().unwrap();
    assert_eq!(info["status"], "FAILED");
    assert!(
        info["error"].starts_with("failure copying files (")
            && info["error"].contains("IncorrectState"),
        "{}",
        info["error"]
    );
    assert!(!info.contains_key("snapshots_info"), "{info:?}");
    assert_eq!(setup.snapshot_count(), 0, "no snapshot left in EC2");
    let err = stderr(&out);
    assert!(
        err.contains("ERROR: Backup failed copying files.\nDETAILS: "),
        "{err}"
    );
    // PostgreSQL left backup mode (the session ended).
    assert_eq!(
        setup.cluster.psql("select count(*) from pg_stat_activity where backend_type = 'client backend' and application_name = 'barman'"),
        "0"
    );
    let shown = setup.barman(&["show-backup", "snap", infos.keys().next().unwrap()]);
    assert!(stdout(&shown).contains("FAILED"), "{}", stdout(&shown));
    // Python Barman in the same failure (it leaves the first disk's snapshot, deleted with
    // the EC2 world): the same messages, lines compared by shape.
    wait_past(infos.keys().next().unwrap());
    let theirs = setup.barman(&["backup", "snap"]);
    setup.ec2.set_create_error(&setup.ec2.volume(1).id, None);
    let (_, their_info) = setup.new_backup(&infos);
    assert_same_exit(&out, &theirs, "CreateSnapshot error");
    assert_eq!(their_info["status"], "FAILED");
    assert!(their_info["error"].starts_with("failure copying files ("));
    // Both ended backup mode: the same keys, the same kinds of values (end LSN, label...).
    let ours_failed = infos.values().next().unwrap();
    assert_eq!(
        ours_failed.keys().collect::<Vec<_>>(),
        their_info.keys().collect::<Vec<_>>()
    );
    for (key, value) in ours_failed {
        assert_eq!(
            value_kind(value),
            value_kind(&their_info[key]),
            "{key}: ours {value}, Barman's {}",
            their_info[key]
        );
    }
    assert_eq!(
        shapes(&stdout(&out)),
        shapes(&stdout(&theirs)),
        "ours:\n{}\nBarman's:\n{}",
        stdout(&out),
        stdout(&theirs)
    );
    let errors = |text: &str| -> Vec<String> {
        crate::server_world::prefixed_lines(text)
            .iter()
            .map(|l| shape(l.split(" (").next().unwrap_or(l)))
            .collect()
    };
    assert_eq!(
        errors(&stderr(&out)),
        errors(&stderr(&theirs)),
        "ours:\n{}\nBarman's:\n{}",
        stderr(&out),
        stderr(&theirs)
    );

    // PostgreSQL down.
    setup.cluster.pg_ctl("stop");
    let out = setup.compare(&["backup", "snap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ERROR: Impossible to start the backup."),
        "{}",
        stderr(&out)
    );
    assert_eq!(setup.infos().len(), 2);
    setup.cluster.start();
}

/// `BARMAN_*` variables of an env dump.
fn barman_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| l.starts_with("BARMAN_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn server_backup_hooks_get_barmans_environment() {
    let setup = Setup::new("srvbackuphooks", 1);
    assert_success(&setup.ours(&["check", "snap"]), "check");
    let dir = setup.world.path("hooks");
    std::fs::create_dir_all(&dir).unwrap();
    let mut extra = String::new();
    for hook in [
        "pre_backup_script",
        "pre_backup_retry_script",
        "post_backup_retry_script",
        "post_backup_script",
    ] {
        extra.push_str(&format!("{hook} = env > {}/{hook}.env\n", dir.display()));
    }
    setup.conf("", &extra);

    let dumps = |dir: &Path| -> BTreeMap<String, BTreeMap<String, String>> {
        file_names(dir)
            .into_iter()
            .map(|n| (n.clone(), barman_env(&dir.join(&n))))
            .collect()
    };
    // Options a snapshot backup does not use are accepted (`--reuse-backup link` changes
    // the size line only).
    let options = [
        "backup",
        "--wait",
        "--reuse-backup",
        "--bwlimit",
        "100",
        "--jobs",
        "2",
        "--no-manifest",
        "snap",
    ];
    let before = setup.infos();
    let theirs = setup.barman(&options);
    assert_success(&theirs, "Barman's backup");
    assert!(stdout(&theirs).contains(". Actual size on disk: "));
    let (their_id, _) = setup.new_backup(&before);
    let theirs = dumps(&dir);
    for name in file_names(&dir) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    wait_past(&their_id);
    let before = setup.infos();
    let out = setup.ours(&options);
    assert_success(&out, "our backup");
    assert!(stdout(&out).contains(". Actual size on disk: "));
    let (our_id, _) = setup.new_backup(&before);
    let out = setup.compare(&["backup", "--incremental", "latest", "snap"]);
    assert!(
        stderr(&out).contains(
            "ERROR: failed to start backup: Postgres version 17 or greater is required for \
             incremental backups using the Postgres backup method"
        ),
        "{}",
        stderr(&out)
    );
    let ours = dumps(&dir);
    assert_eq!(ours.keys().count(), 4, "{ours:?}");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (hook, env) in &ours {
        let their_env = &theirs[hook];
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            their_env.keys().collect::<Vec<_>>(),
            "{hook}"
        );
        for (key, value) in env {
            let theirs = their_env[key].replace(&their_id, "<id>");
            let value = value.replace(&our_id, "<id>");
            match key.as_str() {
                // Barman's backup came first.
                "BARMAN_PREVIOUS_ID" => {
                    assert_eq!(theirs, "", "{hook}");
                    assert_eq!(value, their_id, "{hook}");
                }
                _ => assert_eq!(value, theirs, "{hook} {key}"),
            }
        }
    }
    assert_eq!(ours["pre_backup_script.env"]["BARMAN_STATUS"], "EMPTY");
    assert_eq!(ours["post_backup_script.env"]["BARMAN_STATUS"], "DONE");
    assert_eq!(ours["pre_backup_retry_script.env"]["BARMAN_RETRY"], "1");
    assert_eq!(ours["post_backup_script.env"]["BARMAN_PHASE"], "post");

    // A pre-backup retry hook asking to stop (exit 63): the backup fails before PostgreSQL
    // is touched, with Barman's message.
    setup.conf("", "pre_backup_retry_script = exit 63\n");
    wait_past(&our_id);
    let before = setup.infos();
    let theirs = setup.barman(&["backup", "snap"]);
    let (their_failed, their_info) = setup.new_backup(&before);
    wait_past(&their_failed);
    let before = setup.infos();
    let ours = setup.ours(&["backup", "snap"]);
    let (_, info) = setup.new_backup(&before);
    assert_same_exit(&ours, &theirs, "aborted by the retry hook");
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(info["status"], "FAILED");
    assert_eq!(info["error"], their_info["error"]);
    assert_eq!(
        info["error"],
        "failure starting backup (Abort 'pre_backup_retry_script' retry hook script (exit 63, \
         exit code: 63))"
    );
    assert_eq!(shapes(&stdout(&ours)), shapes(&stdout(&theirs)));
    assert_eq!(
        crate::server_world::prefixed_lines(&stderr(&ours)),
        crate::server_world::prefixed_lines(&stderr(&theirs))
    );
}
