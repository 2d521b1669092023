//! `barman recover` of a snapshot backup against Python Barman 3.20.1, on one barman_home:
//! a real PostgreSQL 15 archiving into the server's `incoming/`, an EC2 instance with one
//! volume in moto holding PGDATA (the `findmnt` stand-in mounts the volume's device on the
//! data directory), the real sshd for remote recoveries. Python Barman takes the backup.
//!
//! The "cloned disks": after the backup PostgreSQL is stopped and PGDATA copied (`cp -a`)
//! once per recovery to run; it is restarted, writes marker rows around a restore point,
//! switches WAL and stops. A recovery instance gets a volume made from the backup's
//! snapshot, whose device the mount table mounts on the data directory; each copy is put
//! in place in turn, recovered by one tool, and moved aside. Both tools' outputs and every
//! file they write are compared; PostgreSQL 15 then starts on our result, fetches its WALs
//! with our `barman get-wal`, and stops at the restore point.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::ec2::{DEFAULT_MOUNT_OPTIONS, Ec2World, fakes_dir};
use crate::postgres::chown_postgres;
use crate::server_world::{CheckHost, prefixed_lines, python_barman};
use crate::support::*;

const CONF: &str = "[barman]
barman_home = {home}
barman_user = {user}
log_level = INFO
{log}

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

/// The device the clone is attached at on the recovery instance.
const CLONE_DEVICE: &str = "/dev/sdk";

/// Names of the PGDATA copies, one per recovery run.
const COPIES: [&str; 26] = [
    "ours-custom",
    "barman-custom",
    "ours-auto",
    "barman-auto",
    "ours-json",
    "barman-json",
    "ours-broken",
    "barman-broken",
    "ours-getwal",
    "barman-getwal",
    "ours-nogetwal",
    "barman-nogetwal",
    "ours-standby",
    "barman-standby",
    "ours-remote",
    "barman-remote",
    "ours-time",
    "barman-time",
    "ours-lsn",
    "barman-lsn",
    "ours-xid",
    "barman-xid",
    "ours-immediate",
    "barman-immediate",
    "ours-plain",
    "barman-plain",
];

struct Setup {
    host: CheckHost,
    ec2: Ec2World,
    backup_id: String,
    recovery: String,
    /// After the `wanted` row, before the `after` one: UTC, without a zone.
    target_time: String,
    target_lsn: String,
    target_xid: String,
}

fn conf_text(host: &CheckHost, ec2: &Ec2World, user: &str, log: bool) -> String {
    CONF.replace("{ssh}", &host.good_ssh.display().to_string())
        .replace("{instance}", ec2.instance_name())
        .replace("{disks}", &ec2.volume(0).name)
        .replace("{user}", user)
        .replace(
            "{log}",
            if log {
                "log_file = {dir}/barman.log"
            } else {
                ""
            },
        )
        .replace("{socket}", &host.cluster.socket_dir())
        .replace("{port}", &host.cluster.port.to_string())
}

impl Setup {
    fn data(&self) -> PathBuf {
        self.host.cluster.data()
    }

    fn copy(&self, name: &str) -> PathBuf {
        self.host.cluster.root.path().join(format!("copy-{name}"))
    }

    /// `program -c barman.conf args`, with the fake mount table reachable locally.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        let conf = self.host.world.path("barman.conf").display().to_string();
        let mut command = Command::new(program);
        command
            .arg("-c")
            .arg(&conf)
            .args(args)
            .current_dir(self.host.world.path(""))
            .env_remove("BARMAN_CONFIG_FILE")
            .env_remove("SSH_CONNECTION")
            .envs(self.host.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", path_with_fakes())
            .env("BARMAN_RS_FAKE_MOUNTS", self.host.mounts.table_path())
            .stdin(std::process::Stdio::null());
        command.output().expect("run barman")
    }

    /// Puts copy `name` at the data directory, runs `program recover ...`, moves the
    /// result to `result-<name>`; returns the output and the result's path.
    fn recover_copy(&self, program: &Path, name: &str, extra: &[&str]) -> (Output, PathBuf) {
        self.recover_copy_with(program, name, &[], &self.backup_id, extra)
    }

    /// [`Self::recover_copy`] with global options.
    fn recover_copy_with(
        &self,
        program: &Path,
        name: &str,
        global: &[&str],
        id: &str,
        extra: &[&str],
    ) -> (Output, PathBuf) {
        let data = self.data();
        std::fs::rename(self.copy(name), &data).unwrap();
        let dest = data.display().to_string();
        let mut args = global.to_vec();
        args.extend([
            "recover",
            "snap",
            id,
            dest.as_str(),
            "--snapshot-recovery-instance",
            self.recovery.as_str(),
        ]);
        args.extend(extra);
        let out = self.run(program, &args);
        let result = self.host.cluster.root.path().join(format!("result-{name}"));
        std::fs::rename(&data, &result).unwrap();
        (out, result)
    }

    /// Both tools, each on its own copy; same output and the same files. Returns our
    /// result directory and stdout.
    fn compare_recoveries(&self, ours: &str, theirs: &str, extra: &[&str]) -> (PathBuf, String) {
        let (their_out, their_dir) = self.recover_copy(&python_barman(), theirs, extra);
        let (our_out, our_dir) = self.recover_copy(&self.host.world.ours(), ours, extra);
        let what = format!("recover {}", extra.join(" "));
        assert_eq!(
            our_out.status.code(),
            Some(0),
            "{what}\n{}\n{}",
            stdout(&our_out),
            stderr(&our_out)
        );
        assert_eq!(
            their_out.status.code(),
            Some(0),
            "{what}\n{}\n{}",
            stdout(&their_out),
            stderr(&their_out)
        );
        assert_eq!(
            mask_start_time(&stdout(&our_out)),
            mask_start_time(&stdout(&their_out)),
            "stdout of {what}\nour stderr: {}\nBarman's stderr: {}",
            stderr(&our_out),
            stderr(&their_out)
        );
        assert_eq!(
            prefixed_lines(&stderr(&our_out)),
            prefixed_lines(&stderr(&their_out)),
            "stderr of {what}"
        );
        compare_trees(&our_dir, &their_dir, &what);
        (our_dir, stdout(&our_out))
    }

    /// Both tools with `args` after `recover snap`: same stdout, error lines and exit code.
    fn compare_refusal(&self, args: &[&str]) -> Output {
        let mut all = vec!["recover", "snap"];
        all.extend(args);
        let theirs = self.run(&python_barman(), &all);
        let ours = self.run(&self.host.world.ours(), &all);
        let what = format!("barman {}", all.join(" "));
        assert_eq!(stdout(&ours), stdout(&theirs), "stdout of {what}");
        assert_eq!(
            prefixed_lines(&stderr(&ours)),
            prefixed_lines(&stderr(&theirs)),
            "stderr of {what}\nours: {}\nBarman: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "exit of {what}");
        assert_ne!(ours.status.code(), Some(0), "{what}");
        ours
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn path_with_fakes() -> String {
    format!(
        "{}:{}",
        fakes_dir().canonicalize().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The line with the recovery's start time and duration, masked.
fn mask_start_time(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("Restore operation completed (start time: ") {
                "Restore operation completed (<time>)"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Entries the recovery may write (or leave): compared byte for byte, with their modes.
const WRITTEN: [&str; 11] = [
    "custom.conf",
    "custom.conf.origin",
    "backup_label",
    ".barman-recover.info",
    "postgresql.auto.conf",
    "postgresql.auto.conf.origin",
    "postgresql.conf",
    "postgresql.conf.origin",
    "recovery.signal",
    "standby.signal",
    "backup_manifest",
];

/// Same top-level entries, same recovery files (content and mode), same `barman_wal/`.
fn compare_trees(ours: &Path, theirs: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(ours), names(theirs), "entries of {what}");
    for name in WRITTEN {
        let (a, b) = (ours.join(name), theirs.join(name));
        assert_eq!(a.exists(), b.exists(), "{name} of {what}");
        if !a.exists() {
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&std::fs::read(&a).unwrap()),
            String::from_utf8_lossy(&std::fs::read(&b).unwrap()),
            "{name} of {what}"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&a), mode(&b), "mode of {name} of {what}");
    }
    for sub in [
        "barman_wal",
        "barman_wal/archive_status",
        "pg_wal/archive_status",
    ] {
        let (a, b) = (ours.join(sub), theirs.join(sub));
        assert_eq!(a.is_dir(), b.is_dir(), "{sub} of {what}");
        if a.is_dir() {
            assert_eq!(names(&a), names(&b), "{sub} of {what}");
            for name in names(&a) {
                let (x, y) = (a.join(&name), b.join(&name));
                if x.is_file() {
                    assert!(
                        std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                        "{sub}/{name} of {what}"
                    );
                }
            }
        }
    }
}

/// PostgreSQL started (as postgres) on `data`, `barman` on its PATH being ours with a
/// configuration whose barman_user is postgres.
fn start_recovered(setup: &Setup, data: &Path) {
    let bin = setup.host.world.path("pgbin");
    std::fs::create_dir_all(&bin).unwrap();
    let conf = setup.host.world.write(
        "barman-pg.conf",
        &conf_text(&setup.host, &setup.ec2, "postgres", false),
    );
    let wrapper = bin.join("barman");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec '{}' -c '{}' \"$@\"\n",
            setup.host.world.ours().display(),
            conf.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    chown_postgres(&setup.host.world.path("home"));
    // No chown of the data directory: our recovery keeps it PostgreSQL's (Barman, run
    // as root, leaves root's files there).
    {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(data).unwrap().uid();
        for name in ["postgresql.conf", "postgresql.auto.conf", "backup_label"] {
            assert_eq!(
                std::fs::metadata(data.join(name)).unwrap().uid(),
                owner,
                "owner of {name}"
            );
        }
    }
    let log = setup.host.cluster.root.path().join("recovered.log");
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "env"])
        .arg(format!("PATH={}:{}", bin.display(), path_with_fakes()))
        .arg("/usr/lib/postgresql/15/bin/pg_ctl")
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "120", "start"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl start: {}\n{}",
        stderr(&out),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn setup() -> Setup {
    let ec2 = Ec2World::new("srvrec", 1);
    let host = CheckHost::new("srvrec", "snap", ec2.env());
    host.mounts.mount(
        &ec2.volume(0).device,
        &host.cluster.data(),
        DEFAULT_MOUNT_OPTIONS,
    );
    host.world
        .write("barman.conf", &conf_text(&host, &ec2, "root", true));
    host.cluster
        .psql("create table marks (i int, phase text); insert into marks values (1, 'base')");

    // Python Barman takes the backup.
    let mut setup = Setup {
        host,
        ec2,
        backup_id: String::new(),
        recovery: String::new(),
        target_time: String::new(),
        target_lsn: String::new(),
        target_xid: String::new(),
    };
    let out = setup.run(&python_barman(), &["backup", "snap", "--wait"]);
    assert_success(&out, "barman backup snap --wait");
    let mut ids: Vec<String> = std::fs::read_dir(setup.host.world.path("home/snap/base"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 1, "{ids:?}");
    setup.backup_id = ids.remove(0);

    // The cloned disks' content: PGDATA as it stands after the backup.
    let (time, lsn, xid) = {
        let cluster = &setup.host.cluster;
        cluster.pg_ctl("stop");
        for name in COPIES {
            cp_a(&cluster.data(), &setup.copy(name));
        }
        cluster.start();
        let xid = cluster.psql("insert into marks values (2, 'wanted') returning txid_current()");
        cluster.psql("select pg_create_restore_point('rp1')");
        let lsn = cluster.psql("select pg_current_wal_lsn()");
        std::thread::sleep(Duration::from_millis(1100));
        let time =
            cluster.psql("select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
        std::thread::sleep(Duration::from_millis(1100));
        cluster.psql("insert into marks values (3, 'after')");
        cluster.archive_everything();
        cluster.pg_ctl("stop");
        let out = setup.run(&setup.host.world.ours(), &["archive-wal", "snap"]);
        assert_success(&out, "barman archive-wal snap");
        std::fs::rename(cluster.data(), cluster.root.path().join("data-original")).unwrap();
        (time, lsn, xid)
    };
    let cluster = &setup.host.cluster;

    // The recovery instance: a volume from the backup's snapshot, mounted where PGDATA
    // was.
    let snapshots = setup.ec2.snapshots_of_volume(&setup.ec2.volume(0).id);
    assert_eq!(snapshots.len(), 1);
    let recovery = setup
        .ec2
        .recovery_instance("srvrecrec", &[(&snapshots[0].id, CLONE_DEVICE)]);
    setup
        .host
        .mounts
        .mount(CLONE_DEVICE, &cluster.data(), DEFAULT_MOUNT_OPTIONS);
    setup.recovery = recovery.name.clone();
    setup.target_time = time;
    setup.target_lsn = lsn;
    setup.target_xid = xid;
    setup
}

#[test]
fn server_recover_of_a_snapshot_backup_matches_barman_and_postgresql_replays_it() {
    let setup = setup();
    let dest = setup.data().display().to_string();
    let id = setup.backup_id.clone();

    // Refusals, before anything is written (the data directory holds a copy).
    std::fs::rename(setup.copy("ours-remote"), setup.data()).unwrap();
    let out = setup.compare_refusal(&[&id, &dest]);
    assert!(
        stderr(&out).contains("--snapshot-recovery-instance"),
        "{}",
        stderr(&out)
    );
    let instance = setup.recovery.clone();
    let with_instance = |more: &[&str]| {
        let mut args = vec![
            id.as_str(),
            dest.as_str(),
            "--snapshot-recovery-instance",
            instance.as_str(),
        ];
        args.extend(more);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args = with_instance(&["--target-name", "rp1", "--target-xid", "5"]);
    let out = setup.compare_refusal(&strs(&args));
    assert!(stderr(&out).contains("You cannot specify multiple targets"));
    let args = with_instance(&["--target-time", "2020-01-01 00:00:00+00:00"]);
    let out = setup.compare_refusal(&strs(&args));
    assert!(
        stderr(&out).contains("is before the backup end time"),
        "{}",
        stderr(&out)
    );
    let args = with_instance(&["--tablespace", "tbs:/somewhere"]);
    setup.compare_refusal(&strs(&args));
    let args = with_instance(&["--target-action", "promote"]);
    setup.compare_refusal(&strs(&args));
    // A recovery instance without the clone attached.
    let empty = setup.ec2.recovery_instance("srvrecempty", &[]);
    let args = vec![
        id.clone(),
        dest.clone(),
        "--snapshot-recovery-instance".to_string(),
        empty.name.clone(),
    ];
    let out = setup.compare_refusal(&strs(&args));
    assert!(
        stderr(&out).contains("are not attached to recovery instance"),
        "{}",
        stderr(&out)
    );
    // `auto` refusals: a target Barman cannot choose by, no backup before the target.
    let auto_args = |more: &[&str]| {
        let mut args = vec![
            "auto".to_string(),
            dest.clone(),
            "--snapshot-recovery-instance".to_string(),
            instance.clone(),
        ];
        args.extend(more.iter().map(|s| s.to_string()));
        args
    };
    let out = setup.compare_refusal(&strs(&auto_args(&["--target-name", "rp1"])));
    assert!(stderr(&out).contains("is not allowed without a backup_id"));
    let out = setup.compare_refusal(&strs(&auto_args(&[
        "--target-time",
        "2020-01-01 00:00:00+00:00",
    ])));
    assert!(stderr(&out).contains("Cannot find any candidate backup for recovery."));

    // Another region: the recovery instance is not found there (Barman: an exception).
    let args = with_instance(&["--aws-region", "eu-west-3"]);
    let out = setup.compare_refusal(&strs(&args));
    assert!(
        stderr(&out).contains(&format!("EXCEPTION: Cannot find instance {instance}")),
        "{}",
        stderr(&out)
    );
    // The clone not mounted where the source disk was.
    setup.host.mounts.unmount(CLONE_DEVICE);
    let elsewhere = setup.host.cluster.root.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    setup
        .host
        .mounts
        .mount(CLONE_DEVICE, &elsewhere, DEFAULT_MOUNT_OPTIONS);
    let args = with_instance(&[]);
    let out = setup.compare_refusal(&strs(&args));
    assert!(
        stderr(&out).contains("ERROR: Error checking mount points: "),
        "{}",
        stderr(&out)
    );
    setup.host.mounts.unmount(CLONE_DEVICE);
    setup
        .host
        .mounts
        .mount(CLONE_DEVICE, &setup.data(), DEFAULT_MOUNT_OPTIONS);
    let files: Vec<String> = std::fs::read_dir(setup.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.contains(&"backup_label".to_string()), "{files:?}");
    std::fs::rename(setup.data(), setup.copy("ours-remote")).unwrap();

    // get-wal, stopping at the restore point.
    let (ours, text) = setup.compare_recoveries(
        "ours-getwal",
        "barman-getwal",
        &["--get-wal", "--target-name", "rp1"],
    );
    assert!(
        text.contains("Doing PITR. Recovery target name: 'rp1'\n"),
        "{text}"
    );
    assert!(text.contains("Copying the backup label.\n"), "{text}");
    let auto = std::fs::read_to_string(ours.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.ends_with(
            "# The 'barman get-wal' command must run as 'root' user\n\
             restore_command = 'barman get-wal -P snap %f > %p'\n\
             recovery_target_name = 'rp1'\n"
        ),
        "{auto}"
    );
    let conf = std::fs::read_to_string(ours.join("postgresql.conf")).unwrap();
    assert!(conf.contains("#BARMAN#archive_command = "), "{conf}");
    assert!(conf.contains("\narchive_command = false\n"), "{conf}");
    assert!(ours.join("recovery.signal").exists());
    assert!(ours.join("barman_wal/archive_status").is_dir());
    let label = std::fs::read(ours.join("backup_label")).unwrap();
    let stored = std::fs::read(
        setup
            .host
            .world
            .path(&format!("home/snap/base/{id}/data/backup_label")),
    )
    .unwrap();
    assert_eq!(label, stored);

    // --no-get-wal: the WALs copied next to the data, cp as restore_command.
    let (nogetwal, text) = setup.compare_recoveries(
        "ours-nogetwal",
        "barman-nogetwal",
        &["--no-get-wal", "--target-name", "rp1"],
    );
    assert!(text.contains("Copying required WAL segments.\n"), "{text}");
    let auto = std::fs::read_to_string(nogetwal.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains(&format!(
            "restore_command = 'cp {dest}/barman_wal/%f %p'\n\
             recovery_end_command = 'rm -fr {dest}/barman_wal'\n"
        )),
        "{auto}"
    );

    // --standby-mode with get-wal: standby.signal and Barman's double space.
    let (standby, _) = setup.compare_recoveries(
        "ours-standby",
        "barman-standby",
        &["--get-wal", "--standby-mode"],
    );
    assert!(standby.join("standby.signal").exists());
    let auto = std::fs::read_to_string(standby.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("restore_command = 'barman get-wal  snap %f > %p'\n"),
        "{auto}"
    );

    // Remote: checks and files over the ssh command. The recovery hook scripts dump
    // their arguments and environment (see `server_hooks`); the post retry hook asks to
    // stop (63), which a post hook cannot do.
    let conf = setup.host.world.path("barman.conf");
    let original = std::fs::read_to_string(&conf).unwrap();
    let hooks = crate::server_hooks::RECOVERY_HOOKS;
    std::fs::write(
        &conf,
        format!("{original}{}", crate::server_hooks::hook_lines(&hooks)),
    )
    .unwrap();
    crate::server_hooks::install_dump_in(&setup.host.world);
    std::fs::write(
        setup.host.world.path("exit-post_recovery_retry_script"),
        "63",
    )
    .unwrap();
    let ssh = setup.host.good_ssh.display().to_string();
    let (remote, text) = setup.compare_recoveries(
        "ours-remote",
        "barman-remote",
        &[
            "--get-wal",
            "--target-name",
            "rp1",
            "--remote-ssh-command",
            &ssh,
            "--recovery-option-port",
            "2222",
            "--network-compression",
            "--bwlimit",
            "100000",
        ],
    );
    assert!(
        text.contains("Starting remote restore for server snap"),
        "{text}"
    );
    let auto = std::fs::read_to_string(remote.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("restore_command = 'barman-wal-restore -P -U root --port 2222 "));
    std::fs::write(&conf, original).unwrap();
    // Barman's run came first: its four dumps, then ours, the same.
    let dumps = crate::server_hooks::take_dumps(&setup.host.world.path(""), |t| t.to_string());
    let dumps: Vec<(&str, &String)> = dumps.iter().map(|(k, v)| (&k[4..], v)).collect();
    assert_eq!(dumps.len(), 8, "{dumps:?}");
    assert_eq!(dumps[..4], dumps[4..]);
    let names: Vec<&str> = dumps[..4].iter().map(|(k, _)| *k).collect();
    assert_eq!(names, hooks);
    let env: std::collections::BTreeMap<&str, &str> = dumps[3]
        .1
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(env["BARMAN_REMOTE_COMMAND"], ssh);
    assert_eq!(env["BARMAN_DESTINATION_DIRECTORY"], dest);
    assert_eq!(env["BARMAN_PHASE"], "post");
    assert!(
        env["BARMAN_RECOVER_OPTIONS"].contains("\"recovery_option_port\": \"2222\""),
        "{env:?}"
    );

    let cluster = &setup.host.cluster;

    // Targets: a time without zone (local time assumed, normalised with its zone), not
    // inclusive, a promotion, the backup's timeline.
    let time = setup.target_time.clone();
    let (_, text) = setup.compare_recoveries(
        "ours-time",
        "barman-time",
        &[
            "--no-get-wal",
            "--target-time",
            &time,
            "--exclusive",
            "--target-action",
            "promote",
            "--target-tli",
            "current",
        ],
    );
    assert!(
        text.contains("Doing PITR. Recovery target time: '"),
        "{text}"
    );
    // An LSN (the WALs copied stop at its segment), a timeline number.
    let lsn = setup.target_lsn.clone();
    setup.compare_recoveries(
        "ours-lsn",
        "barman-lsn",
        &["--no-get-wal", "--target-lsn", &lsn, "--target-tli", "1"],
    );
    // An xid with a custom restore command (quotes doubled), latest timeline.
    let xid = setup.target_xid.clone();
    let (xid_dir, _) = setup.compare_recoveries(
        "ours-xid",
        "barman-xid",
        &[
            "--get-wal",
            "--target-xid",
            &xid,
            "--restore-command",
            "cp '/somewhere/%f' %p",
            "--target-tli",
            "latest",
            "--exclusive",
        ],
    );
    let auto = std::fs::read_to_string(xid_dir.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("restore_command = 'cp ''/somewhere/%f'' %p'\n"),
        "{auto}"
    );
    // Another recovery configuration file (created, then treated as Barman treats it).
    let (custom, text) = setup.compare_recoveries(
        "ours-custom",
        "barman-custom",
        &[
            "--get-wal",
            "--target-immediate",
            "--recovery-conf-filename",
            "custom.conf",
        ],
    );
    assert!(
        text.contains("please review the custom.conf file"),
        "{text}"
    );
    let written = std::fs::read_to_string(custom.join("custom.conf")).unwrap();
    assert!(
        written.ends_with("recovery_target = 'immediate'\n"),
        "{written}"
    );
    // Immediate, WALs copied.
    setup.compare_recoveries(
        "ours-immediate",
        "barman-immediate",
        &["--no-get-wal", "--target-immediate"],
    );
    // No target, no get-wal: the WALs into pg_wal with their .done files, no recovery
    // settings.
    let (plain, _) = setup.compare_recoveries("ours-plain", "barman-plain", &["--no-get-wal"]);
    assert!(!plain.join("recovery.signal").exists());

    // `auto`: the backup chosen by the target LSN.
    let mut outputs = Vec::new();
    for (program, name) in [
        (python_barman(), "barman-auto"),
        (setup.host.world.ours(), "ours-auto"),
    ] {
        let (out, dir) = setup.recover_copy_with(
            &program,
            name,
            &[],
            "auto",
            &["--get-wal", "--target-lsn", &lsn],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        outputs.push((mask_start_time(&stdout(&out)), dir));
    }
    assert_eq!(outputs[0].0, outputs[1].0);
    assert!(
        outputs[1].0.contains(&format!("using backup {id}\n")),
        "{}",
        outputs[1].0
    );
    compare_trees(&outputs[1].1, &outputs[0].1, "recover auto");

    // JSON output: the same document but for the times.
    let mut documents = Vec::new();
    for (program, name) in [
        (python_barman(), "barman-json"),
        (setup.host.world.ours(), "ours-json"),
    ] {
        let (out, _) = setup.recover_copy_with(
            &program,
            name,
            &["-f", "json"],
            &setup.backup_id,
            &["--get-wal", "--target-name", "rp1"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        for key in [
            "recovery_start_time",
            "recovery_start_time_timestamp",
            "recovery_elapsed_time",
            "recovery_elapsed_time_seconds",
        ] {
            assert!(value.get(key).is_some(), "{key}: {value}");
            value.as_object_mut().unwrap().remove(key);
        }
        documents.push(value);
    }
    assert_eq!(documents[0], documents[1]);
    assert_eq!(documents[1]["changes"][0][3], "false", "{}", documents[1]);

    // A failure after the backup label was copied (postgresql.conf is a directory): both
    // fail; Barman leaves the label and recovery.signal behind, we remove them.
    for name in ["ours-broken", "barman-broken"] {
        let conf = setup.copy(name).join("postgresql.conf");
        std::fs::remove_file(&conf).unwrap();
        std::fs::create_dir(&conf).unwrap();
    }
    let args = ["--get-wal", "--target-name", "rp1"];
    let (theirs, their_dir) = setup.recover_copy(&python_barman(), "barman-broken", &args);
    let (our_out, our_dir) = setup.recover_copy(&setup.host.world.ours(), "ours-broken", &args);
    assert_eq!(theirs.status.code(), Some(1));
    assert_eq!(our_out.status.code(), Some(1));
    assert_eq!(
        mask_start_time(&stdout(&our_out)),
        mask_start_time(&stdout(&theirs))
    );
    assert!(their_dir.join("backup_label").exists());
    assert!(their_dir.join("recovery.signal").exists());
    assert!(!our_dir.join("backup_label").exists());
    assert!(!our_dir.join("recovery.signal").exists());

    // PostgreSQL 15 on our time-target result (WALs copied, cp): promoted after the
    // wanted row, without the later one.
    let time_dir = cluster.root.path().join("result-ours-time");
    std::fs::rename(&time_dir, setup.data()).unwrap();
    start_recovered(&setup, &setup.data());
    cluster.wait_for("the promotion", Duration::from_secs(180), || {
        cluster.psql("select pg_is_in_recovery()") == "f"
    });
    assert_eq!(
        cluster.psql("select string_agg(i || ':' || phase, ',' order by i) from marks"),
        "1:base,2:wanted"
    );
    cluster.pg_ctl("stop");
    std::fs::rename(setup.data(), &time_dir).unwrap();

    // PostgreSQL 15 on our get-wal result: replays through our get-wal up to the
    // restore point and pauses there.
    std::fs::rename(&ours, setup.data()).unwrap();
    start_recovered(&setup, &setup.data());
    cluster.wait_for("the recovery target", Duration::from_secs(180), || {
        cluster.psql("select pg_get_wal_replay_pause_state()") == "paused"
    });
    assert_eq!(
        cluster.psql("select string_agg(i || ':' || phase, ',' order by i) from marks"),
        "1:base,2:wanted"
    );
}
