//! barman-cloud-backup and barman-cloud-wal-archive as the hook scripts of a real Python
//! Barman 3.20.1 server (`post_backup_retry_script`, `pre_archive_retry_script`):
//! `backup_method = postgres` (pg_basebackup from a PostgreSQL 15 cluster with a
//! tablespace), `archiver = on` (archive_command `cp` into the server's `incoming/`) or
//! `streaming_archiver = on` (a replication slot and `barman receive-wal`).
//! What the server leaves in the bucket through our hooks is restored by our
//! barman-cloud-restore and wal-restore (and, on S3, by Python Barman's) and recovered to
//! a target time. Also: Barman's refusals with its exit codes (compared with Python
//! Barman's commands), a hook upload cut mid-way (exit 1, no backup.info, nothing
//! listed) and its retry, and a snapshot backup of a server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::postgres::{Cluster, chown_postgres, recover_with, restore_script};
use crate::server_world::{CheckHost, World, python_barman};
use crate::support::*;

const CONF: &str = "[barman]
barman_home = {home}
barman_user = root
log_file = {dir}/barman.log
log_level = INFO

[pg]
description = Hook test server
conninfo = host={socket} port={port} user=postgres dbname=postgres
streaming_conninfo = host={socket} port={port} user=postgres
backup_method = postgres
archiver = on
immediate_checkpoint = true
path_prefix = {pgbin}
post_backup_retry_script = {dir}/backup-hook.sh
pre_archive_retry_script = {dir}/wal-hook.sh
";

const SERVER: &str = "srv";

fn pg_bin_dir() -> String {
    std::env::var("BARMAN_RS_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into())
}

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A hook wrapper: the destination's credentials, then `exec` of our command, its stderr
/// appended to `<log>`. While a file `<path>.fail-once` exists (S3 only), one run is
/// pointed at a closed port instead, and removes the file: storage unreachable once.
fn hook_script(path: &Path, dest: &Destination, command: &str, options: &str, log: &Path) {
    let exec = |args: &str| {
        format!(
            "exec '{}' {command} {args}{options} '{}' {SERVER} 2>>'{}'\n",
            our_binary().display(),
            dest.url,
            log.display()
        )
    };
    let flag = format!("{}.fail-once", path.display());
    let fail_once = if dest.service == Service::S3 {
        format!(
            "if [ -e '{flag}' ]; then\n  rm -f '{flag}'\n  {}fi\n",
            exec("--endpoint-url 'http://127.0.0.1:1' ")
        )
    } else {
        String::new()
    };
    executable(
        path,
        &format!(
            "#!/bin/sh\n{}{fail_once}{}",
            dest.shell_env(),
            exec(&dest.shell_args())
        ),
    );
}

/// How WAL reaches the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WalShipping {
    /// `archiver = on`: archive_command `cp` into `incoming/`.
    ArchiveCommand,
    /// `streaming_archiver = on` through the replication slot `barman` (pg_receivewal
    /// run by `barman receive-wal`); PostgreSQL's archive_mode off.
    Streaming,
}

/// A Python Barman 3.20.1 server `pg` whose hooks are our commands to `dest`.
struct HookServer {
    host: CheckHost,
    dest: Destination,
    shipping: WalShipping,
    /// `barman receive-wal pg`, running while streaming.
    receiver: Option<std::process::Child>,
}

impl HookServer {
    fn new(tag: &str, dest: Destination, backup_options: &str, shipping: WalShipping) -> Self {
        let host = CheckHost::new(tag, "pg", Vec::new());
        let world = &host.world;
        hook_script(
            &world.path("backup-hook.sh"),
            &dest,
            "barman-cloud-backup",
            backup_options,
            &world.path("backup-hook.log"),
        );
        hook_script(
            &world.path("wal-hook.sh"),
            &dest,
            "barman-cloud-wal-archive",
            "",
            &world.path("wal-hook.log"),
        );
        let mut conf = CONF.replace("{pgbin}", &pg_bin_dir());
        if shipping == WalShipping::Streaming {
            conf = conf.replace(
                "archiver = on\n",
                "archiver = off\nstreaming_archiver = on\nslot_name = barman\n",
            );
            // (pg_ctl restart would log to, and hold, our output pipe.)
            host.cluster.pg_ctl("stop");
            host.cluster.configure("archive_mode = off\n");
            host.cluster.start();
        }
        host.write_conf(&conf);
        let mut server = HookServer {
            host,
            dest,
            shipping,
            receiver: None,
        };
        if shipping == WalShipping::Streaming {
            let out = server.barman(&["receive-wal", "--create-slot", "pg"]);
            assert_success(&out, "barman receive-wal --create-slot");
            let conf = server.world().path("barman.conf");
            let log = std::fs::File::create(server.world().path("receive-wal.log")).unwrap();
            let child = Command::new(python_barman())
                .arg("-c")
                .arg(&conf)
                .args(["receive-wal", "pg"])
                .current_dir(server.world().path(""))
                .env_remove("BARMAN_CONFIG_FILE")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start barman receive-wal");
            server.receiver = Some(child);
        }
        server
    }

    /// Every WAL written so far reaches the server's archive (the WAL hook running for
    /// each file), as cron would do it.
    fn archive_wal(&self) {
        match self.shipping {
            WalShipping::ArchiveCommand => {
                self.cluster().archive_everything();
                let out = self.barman(&["archive-wal", "pg"]);
                assert_success(&out, &format!("barman archive-wal\n{}", self.logs()));
            }
            WalShipping::Streaming => {
                let out = self.barman(&[
                    "switch-wal",
                    "--force",
                    "--archive",
                    "--archive-timeout",
                    "120",
                    "pg",
                ]);
                assert_success(
                    &out,
                    &format!("barman switch-wal --archive\n{}", self.logs()),
                );
            }
        }
    }

    fn world(&self) -> &World {
        &self.host.world
    }

    fn cluster(&self) -> &Cluster {
        &self.host.cluster
    }

    fn barman(&self, args: &[&str]) -> Output {
        self.host.run(&python_barman(), args)
    }

    fn logs(&self) -> String {
        let receiver =
            std::fs::read_to_string(self.world().path("receive-wal.log")).unwrap_or_default();
        let read =
            |name: &str| std::fs::read_to_string(self.world().path(name)).unwrap_or_default();
        format!(
            "backup hook:\n{}\nwal hook:\n{}\nreceive-wal:\n{receiver}\nbarman.log:\n{}",
            read("backup-hook.log"),
            read("wal-hook.log"),
            read("barman.log")
        )
    }

    /// `barman backup [extra] pg`; the backup ID.
    fn backup(&self, extra: &[&str]) -> String {
        let mut args = vec!["backup"];
        args.extend(extra);
        args.push("pg");
        let out = self.barman(&args);
        assert_success(&out, &format!("barman {args:?}\n{}", self.logs()));
        let text = stdout(&out);
        let line = text
            .lines()
            .find(|l| l.starts_with("Starting backup using postgres method"))
            .unwrap_or_else(|| panic!("no backup ID in {text}"));
        line.rsplit('/').next().unwrap().trim().to_string()
    }

    /// The environment Barman gives a `post_backup_retry_script` for `backup_id`.
    fn hook_env(&self, backup_id: &str) -> Vec<(String, String)> {
        let home = self.world().path("home/pg");
        vec![
            ("BARMAN_HOOK".into(), "backup_retry_script".into()),
            ("BARMAN_PHASE".into(), "post".into()),
            ("BARMAN_STATUS".into(), "DONE".into()),
            ("BARMAN_BACKUP_ID".into(), backup_id.into()),
            (
                "BARMAN_BACKUP_DIR".into(),
                home.join("base").join(backup_id).display().to_string(),
            ),
            (
                "BARMAN_BACKUP_INFO_PATH".into(),
                home.join(format!("meta/{backup_id}-backup.info"))
                    .display()
                    .to_string(),
            ),
        ]
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        let Some(mut child) = self.receiver.take() else {
            return;
        };
        let _ = self.barman(&["receive-wal", "--stop", "pg"]);
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A tablespace archive (`<oid>.tar...`, `<oid>_0001.tar...`).
fn is_tablespace_archive(name: &str) -> bool {
    name.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Keys of `dest` below `srv/` (the `pg/` prefix of cloud URLs dropped), sorted.
fn server_keys(dest: &Destination) -> Vec<String> {
    dest.object_keys()
        .into_iter()
        .filter_map(|k| {
            k.find(&format!("{SERVER}/"))
                .map(|at| k[at + SERVER.len() + 1..].to_string())
        })
        .collect()
}

fn base_keys(dest: &Destination, backup_id: &str) -> Vec<String> {
    let prefix = format!("base/{backup_id}/");
    server_keys(dest)
        .into_iter()
        .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

/// The bytes of `srv/<key>` in `dest`.
fn object_bytes(dest: &Destination, key: &str) -> Vec<u8> {
    if dest.service == Service::Local {
        return std::fs::read(Path::new(&dest.bucket()).join(SERVER).join(key)).unwrap();
    }
    assert_eq!(
        dest.service,
        Service::S3,
        "object_bytes reads S3 and file://"
    );
    let code = format!(
        "import boto3, os, sys\n\
         body = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT']).get_object(\
         Bucket='{}', Key='pg/{SERVER}/{key}')['Body'].read()\n\
         sys.stdout.buffer.write(body)",
        dest.bucket()
    );
    let out = dest
        .sdk_python(&[std::ffi::OsStr::new("-c"), std::ffi::OsStr::new(&code)])
        .output()
        .unwrap();
    assert_success(&out, &format!("download {key}"));
    out.stdout
}

/// Python Barman's backup IDs and statuses (barman-cloud-backup-list's JSON).
fn barman_listing(dest: &Destination) -> Vec<(String, String)> {
    let out = dest.barman("barman-cloud-backup-list", &["--format", "json"], &[SERVER]);
    assert_success(&out, "Barman's backup-list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    list["backups_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["backup_id"].as_str().unwrap().to_string(),
                b["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// restore_command script with Python Barman's barman-cloud-wal-restore.
fn barman_restore_script(dir: &Path, dest: &Destination) -> PathBuf {
    let path = dir.join("barman-restore.sh");
    executable(
        &path,
        &format!(
            "#!/bin/sh\n{}exec '{}/barman-cloud-wal-restore' {}'{}' {SERVER} \"$1\" \"$2\"\n",
            dest.shell_env(),
            required_env("BARMAN_RS_TEST_BARMAN_BIN"),
            dest.shell_args(),
            dest.url
        ),
    );
    path
}

/// Which tools restore: the base backup and the WAL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tools {
    Ours,
    Barman,
}

/// The cluster's data as the checks see it: rows of each phase, and the big table.
const DATA_SQL: &str = "select (select count(*) from marks where phase = 'base') || ':' || \
     (select count(*) from marks where phase = 'a') || ':' || \
     (select count(*) from marks where phase = 'b') || ':' || (select count(*) from big)";

/// Restores `backup_id` from `dest` with `tools` (tablespace `ts` relocated), recovers it
/// to `target_time` and returns what [`DATA_SQL`] says.
fn restore_and_recover(
    dest: &Destination,
    backup_id: &str,
    target_time: &str,
    tools: Tools,
) -> String {
    let root = temp_dir("hookrec");
    let data = root.path().join("data");
    let tablespace = temp_dir("hookrects");
    let relocation = format!("ts:{}", tablespace.path().display());
    let options = ["--tablespace", relocation.as_str()];
    let rest = [SERVER, backup_id, data.to_str().unwrap()];
    let out = match tools {
        Tools::Ours => dest.ours_with("barman-cloud-restore", &options, &rest),
        Tools::Barman => dest.barman("barman-cloud-restore", &options, &rest),
    };
    assert_success(&out, &format!("{tools:?} barman-cloud-restore"));
    chown_postgres(tablespace.path());
    let scripts = temp_dir("hookrecscripts");
    let restore = match tools {
        Tools::Ours => restore_script(scripts.path(), dest),
        Tools::Barman => barman_restore_script(scripts.path(), dest),
    };
    let cluster = recover_with(
        root,
        &format!("{} %f %p", restore.display()),
        &format!("recovery_target_time = '{target_time}'\nrecovery_target_action = 'promote'\n"),
    );
    let result = cluster.psql(DATA_SQL);
    drop(cluster);
    drop(tablespace);
    result
}

/// The whole cycle on `service`: Barman's backups and WAL reach the bucket through our
/// hooks, and come back to a target time.
fn server_cycle(
    service: Service,
    backup_options: &str,
    shipping: WalShipping,
) -> (HookServer, String) {
    let dest = Destination::create(service, "hooksrv");
    let server = HookServer::new("hooksrv", dest, backup_options, shipping);
    let cluster = server.cluster();
    let tablespace = server.world().path("tbs");
    std::fs::create_dir(&tablespace).unwrap();
    chown_postgres(&tablespace);
    cluster.psql(&format!(
        "create tablespace ts location '{}'",
        tablespace.display()
    ));
    cluster.psql("create table marks (phase text, i int) tablespace ts");
    cluster.psql("insert into marks select 'base', g from generate_series(1, 20000) g");
    cluster
        .psql("create table big as select g, md5(g::text) as h from generate_series(1, 200000) g");
    // What cron would do first: the WAL so far reaches the server (and the bucket).
    server.archive_wal();

    // Without --wait, Barman runs the post-backup hooks while the backup waits for its
    // WAL: the hook refuses it with 63, which ends Barman's retries; nothing is uploaded.
    let waiting = server.backup(&[]);
    let log = std::fs::read_to_string(server.world().path("backup-hook.log")).unwrap_or_default();
    assert!(
        log.contains("has status 'WAITING_FOR_WALS' (status should be: DONE)"),
        "{}",
        server.logs()
    );
    assert!(
        base_keys(&server.dest, &waiting).is_empty(),
        "{:?}",
        server_keys(&server.dest)
    );
    wait_past(&waiting);

    // Storage unreachable for the first run of the hook (S3): exit 1, and Barman retries
    // the hook until it succeeds.
    let fail_once = server.world().path("backup-hook.sh.fail-once");
    if service == Service::S3 {
        std::fs::write(&fail_once, b"").unwrap();
    }
    let backup_id = server.backup(&["--wait"]);
    if service == Service::S3 {
        assert!(
            !fail_once.exists(),
            "the hook never ran:\n{}",
            server.logs()
        );
        let log = std::fs::read_to_string(server.world().path("backup-hook.log")).unwrap();
        assert_eq!(
            log.matches("Backup upload failed uploading data").count(),
            1,
            "{}",
            server.logs()
        );
        let barman_log = std::fs::read_to_string(server.world().path("barman.log")).unwrap();
        assert!(
            barman_log.contains("backup-hook.sh returned 1"),
            "{}",
            server.logs()
        );
    }
    let keys = base_keys(&server.dest, &backup_id);
    assert!(
        keys.contains(&"backup.info".to_string()),
        "{keys:?}\n{}",
        server.logs()
    );
    assert!(keys.iter().any(|k| is_tablespace_archive(k)), "{keys:?}");
    let info_path = server
        .world()
        .path(&format!("home/pg/meta/{backup_id}-backup.info"));
    assert_eq!(
        object_bytes(&server.dest, &format!("base/{backup_id}/backup.info")),
        std::fs::read(&info_path).unwrap(),
        "the server's backup.info, byte for byte"
    );
    assert_eq!(
        backup_ids(&server.dest),
        vec![(backup_id.clone(), "DONE".to_string())]
    );

    // Changes after the backup, a target time between two of them, and the WAL that
    // holds them archived by the server (archive-wal runs the WAL hook for each file).
    cluster.psql("insert into marks select 'a', g from generate_series(1, 1000) g");
    let target = cluster.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1200));
    cluster.psql("insert into marks select 'b', g from generate_series(1, 1000) g");
    let last = cluster.psql("select pg_walfile_name(pg_current_wal_lsn())");
    server.archive_wal();
    let wal_key = format!("wals/{}/{last}", &last[..16]);
    let stored = server
        .world()
        .path(&format!("home/pg/wals/{}/{last}", &last[..16]));
    assert_eq!(
        object_bytes(&server.dest, &wal_key),
        std::fs::read(&stored).unwrap(),
        "{last} in the bucket and in the server's archive"
    );

    assert_eq!(
        restore_and_recover(&server.dest, &backup_id, &target, Tools::Ours),
        "20000:1000:0:200000",
        "our restore to {target}"
    );
    (server, backup_id)
}

#[test]
fn hook_server_backup_and_wal_recover_local() {
    let (server, _) = server_cycle(
        Service::Local,
        "-z -S 2MB -J 3 ",
        WalShipping::ArchiveCommand,
    );
    // gzip archives split at 2 MB.
    let keys = server_keys(&server.dest);
    assert!(
        keys.iter().any(|k| k.ends_with("/data_0001.tar.gz")),
        "{keys:?}"
    );
}

#[test]
fn hook_server_streaming_archiver_backup_and_wal_recover_local() {
    let (server, backup_id) = server_cycle(Service::Local, "--lz4 ", WalShipping::Streaming);
    assert!(
        base_keys(&server.dest, &backup_id).contains(&"data.tar.lz4".to_string()),
        "{:?}",
        server_keys(&server.dest)
    );
}

#[test]
fn hook_server_backup_and_wal_recover_s3_with_both_tools_and_cut_upload() {
    let (server, backup_id) =
        server_cycle(Service::S3, "--zstd -J 3 ", WalShipping::ArchiveCommand);
    assert_eq!(
        barman_listing(&server.dest),
        vec![(backup_id.clone(), "DONE".to_string())]
    );
    let target_sql = "select now()::text";
    let target = server.cluster().psql(target_sql);
    // Python Barman's restore and wal-restore, to a time after everything.
    std::thread::sleep(Duration::from_millis(1200));
    server.cluster().psql("insert into marks select 'c', 1");
    server.archive_wal();
    assert_eq!(
        restore_and_recover(&server.dest, &backup_id, &target, Tools::Barman),
        "20000:1000:1000:200000",
        "Barman's restore to {target}"
    );

    // The hook cut mid-way (the storage gone when the third data archive starts): exit 1,
    // no backup.info, so neither tool lists a backup.
    let cut = Destination::create(Service::S3, "hookcut");
    let endpoint = required_env("BARMAN_RS_TEST_S3_ENDPOINT");
    let relay =
        CuttableRelay::start_cutting_on(endpoint.trim_start_matches("http://"), &["data_0002"]);
    let mut through_relay = cut.clone();
    through_relay.args = vec![
        "--endpoint-url".into(),
        format!("http://127.0.0.1:{}", relay.port),
    ];
    let env = server.hook_env(&backup_id);
    let mut command =
        through_relay.command_for_ours("barman-cloud-backup", &["-S", "1MB"], &[SERVER]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(command);
    drop(relay);
    assert_exit(&out, 1, "hook upload cut mid-way");
    assert_mentions(&out, "Backup upload failed uploading data", "cut upload");
    let keys = base_keys(&cut, &backup_id);
    assert!(keys.contains(&"data.tar".to_string()), "{keys:?}");
    assert!(!keys.contains(&"backup.info".to_string()), "{keys:?}");
    assert!(backup_ids(&cut).is_empty());
    assert!(barman_listing(&cut).is_empty());

    // The retry (another compression: the first attempt's archives are removed).
    let mut command = cut.command_for_ours("barman-cloud-backup", &["--snappy"], &[SERVER]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    assert_success(&run(command), "hook retry");
    let mut keys = base_keys(&cut, &backup_id);
    keys.retain(|k| !is_tablespace_archive(k));
    assert_eq!(
        keys,
        ["backup.info", "barman-rs.manifest", "data.tar.snappy"],
        "only the retry's objects"
    );
    assert!(
        base_keys(&cut, &backup_id)
            .iter()
            .any(|k| is_tablespace_archive(k) && k.ends_with(".tar.snappy")),
        "{:?}",
        base_keys(&cut, &backup_id)
    );
    assert_eq!(
        backup_ids(&cut),
        vec![(backup_id.clone(), "DONE".to_string())]
    );
    assert_eq!(
        barman_listing(&cut),
        vec![(backup_id.clone(), "DONE".to_string())]
    );
    let check = temp_dir("hookcutcheck");
    let relocation = format!("ts:{}", check.path().join("ts").display());
    let data = check.path().join("data");
    let out = cut.ours_with(
        "barman-cloud-restore",
        &["--tablespace", &relocation],
        &[SERVER, &backup_id, data.to_str().unwrap()],
    );
    assert_success(&out, "restore of the retried upload");
}

/// A backup directory as a Barman server leaves it (`data/` with a label, pg_control and
/// a file), and its backup.info with `extra` lines.
fn fake_server_backup(dir: &Path, backup_id: &str, extra: &str) -> (PathBuf, PathBuf) {
    let backup_dir = dir.join("base").join(backup_id);
    let data = backup_dir.join("data");
    std::fs::create_dir_all(data.join("global")).unwrap();
    std::fs::write(
        data.join("backup_label"),
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
    )
    .unwrap();
    std::fs::write(data.join("global/pg_control"), vec![7u8; 8192]).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    std::fs::create_dir_all(dir.join("meta")).unwrap();
    let info = dir.join(format!("meta/{backup_id}-backup.info"));
    std::fs::write(
        &info,
        format!(
            "backup_label='START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\\n'\n\
             begin_wal=000000010000000000000002\nend_wal=000000010000000000000002\n\
             end_time=2025-01-01 00:00:01+00:00\nmode=postgres\npgdata=/var/lib/pg/data\n\
             server_name=pg\nstatus=DONE\ntimeline=1\nversion=150004\n{extra}"
        ),
    )
    .unwrap();
    (backup_dir, info)
}

/// Runs ours and Python Barman's barman-cloud-backup on `dest` with `env`; same exit.
fn compare_hook(
    dest: &Destination,
    options: &[&str],
    env: &[(&str, String)],
    code: i32,
    what: &str,
) -> Output {
    compare_hook_on(dest, dest, options, env, code, what)
}

/// [`compare_hook`] with Barman on its own destination.
fn compare_hook_on(
    dest: &Destination,
    barman_dest: &Destination,
    options: &[&str],
    env: &[(&str, String)],
    code: i32,
    what: &str,
) -> Output {
    let with_env = |mut command: Command| {
        for name in [
            "BARMAN_HOOK",
            "BARMAN_PHASE",
            "BARMAN_STATUS",
            "BARMAN_BACKUP_DIR",
            "BARMAN_BACKUP_ID",
            "BARMAN_BACKUP_INFO_PATH",
        ] {
            command.env_remove(name);
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        run(command)
    };
    let ours = with_env(dest.command_for_ours("barman-cloud-backup", options, &[SERVER]));
    let program =
        PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman-cloud-backup");
    let mut theirs = Command::new(program);
    theirs
        .args(&barman_dest.args)
        .args(options)
        .arg(&barman_dest.url)
        .arg(SERVER);
    for (k, v) in &barman_dest.env {
        theirs.env(k, v);
    }
    let theirs = with_env(theirs);
    assert_exit(&theirs, code, &format!("Barman: {what}"));
    assert_exit(&ours, code, &format!("ours: {what}"));
    ours
}

#[test]
fn hook_refusals_exit_as_barman_and_upload_nothing() {
    let dest = Destination::create(Service::S3, "hookrefuse");
    let dir = temp_dir("hookrefuse");
    let id = "20250101T000000";
    let (backup_dir, info) = fake_server_backup(dir.path(), id, "");
    let (_, compressed) = fake_server_backup(&dir.path().join("gz"), id, "compression=gzip\n");
    let hook = |phase: &str, hook: &str, status: &str, info: Option<&Path>| {
        let mut env = vec![
            ("BARMAN_HOOK", hook.to_string()),
            ("BARMAN_PHASE", phase.to_string()),
            ("BARMAN_STATUS", status.to_string()),
            ("BARMAN_BACKUP_DIR", backup_dir.display().to_string()),
            ("BARMAN_BACKUP_ID", id.to_string()),
        ];
        if let Some(info) = info {
            env.push(("BARMAN_BACKUP_INFO_PATH", info.display().to_string()));
        }
        env
    };
    // -t comes before the hook checks.
    compare_hook(
        &dest,
        &["-t"],
        &hook("pre", "backup_script", "DONE", None),
        0,
        "-t",
    );
    let out = compare_hook(
        &dest,
        &[],
        &hook("pre", "backup_script", "DONE", Some(&info)),
        4,
        "pre phase",
    );
    assert_mentions(
        &out,
        "called as unsupported hook script: pre_backup_script",
        "pre",
    );
    compare_hook(
        &dest,
        &[],
        &hook("post", "archive_script", "DONE", Some(&info)),
        4,
        "archive hook",
    );
    let out = compare_hook(
        &dest,
        &["-n", "x"],
        &hook("post", "backup_retry_script", "DONE", Some(&info)),
        4,
        "-n",
    );
    assert_mentions(
        &out,
        "Cannot set backup name when running as a hook script",
        "-n",
    );
    let mut no_dir = hook("post", "backup_script", "DONE", Some(&info));
    no_dir.retain(|(k, _)| *k != "BARMAN_BACKUP_DIR");
    compare_hook(&dest, &[], &no_dir, 4, "no BARMAN_BACKUP_DIR");
    // The status comes before BARMAN_BACKUP_INFO_PATH.
    let out = compare_hook(
        &dest,
        &[],
        &hook("post", "backup_retry_script", "FAILED", None),
        63,
        "FAILED",
    );
    assert_mentions(
        &out,
        "has status 'FAILED' (status should be: DONE)",
        "FAILED",
    );
    compare_hook(
        &dest,
        &[],
        &hook("post", "backup_retry_script", "FAILED", Some(&info)),
        63,
        "FAILED",
    );
    compare_hook(
        &dest,
        &[],
        &hook("post", "backup_retry_script", "DONE", None),
        4,
        "no info path",
    );
    let out = compare_hook(
        &dest,
        &[],
        &hook("post", "backup_retry_script", "DONE", Some(&compressed)),
        4,
        "compressed",
    );
    assert_mentions(
        &out,
        "Compressed backups are not supported when running as a hook script",
        "gz",
    );
    // Not in Barman (which uploads it): an incremental backup is refused with 63.
    let (_, incremental) = fake_server_backup(
        &dir.path().join("incr"),
        id,
        "parent_backup_id=20241231T000000\n",
    );
    let mut ours = dest.command_for_ours("barman-cloud-backup", &[], &[SERVER]);
    ours.envs(
        hook("post", "backup_retry_script", "DONE", Some(&incremental))
            .iter()
            .map(|(k, v)| (k, v)),
    );
    let out = run(ours);
    assert_exit(&out, 63, "incremental backup");
    assert_mentions(
        &out,
        "is an incremental backup (parent 20241231T000000)",
        "incr",
    );
    assert!(server_keys(&dest).is_empty(), "{:?}", server_keys(&dest));

    // Accepted: both tools upload it (each to its own bucket), backup.info unchanged.
    let ok = hook("post", "backup_retry_script", "DONE", Some(&info));
    let theirs = Destination::create(Service::S3, "hookrefusebarman");
    compare_hook_on(&dest, &theirs, &[], &ok, 0, "upload");
    assert_eq!(
        base_keys(&dest, id),
        ["backup.info", "barman-rs.manifest", "data.tar"]
    );
    assert_eq!(
        object_bytes(&dest, &format!("base/{id}/backup.info")),
        std::fs::read(&info).unwrap()
    );
    assert_eq!(
        barman_listing(&dest),
        vec![(id.to_string(), "DONE".to_string())]
    );

    // Uploaded again with another compression: the first upload's archive goes.
    let mut again = dest.command_for_ours("barman-cloud-backup", &["--gzip"], &[SERVER]);
    again.envs(ok.iter().map(|(k, v)| (k, v)));
    assert_success(&run(again), "second upload");
    assert_eq!(
        base_keys(&dest, id),
        ["backup.info", "barman-rs.manifest", "data.tar.gz"]
    );
    let restored = temp_dir("hookrefuserestore");
    let target = restored.path().join("data");
    let out = dest.ours(
        "barman-cloud-restore",
        &[SERVER, id, target.to_str().unwrap()],
    );
    assert_success(&out, "restore of the second upload");
    assert_eq!(
        local_files(&target),
        ["PG_VERSION", "backup_label", "global/pg_control"]
    );
}

#[test]
fn hook_wal_archive_takes_barman_file_and_refuses_other_phases() {
    let dest = Destination::create(Service::S3, "hookwal");
    let dir = temp_dir("hookwal");
    let name = "000000010000000000000007";
    let wal = dir.path().join(name);
    std::fs::write(&wal, segment_content(name, 7, 16 << 20, 4096)).unwrap();
    let missing = dir.path().join("000000010000000000000099");
    let run_both = |env: &[(&str, &str)], code: i32, what: &str| {
        let mut ours = dest.command_for_ours(
            "barman-cloud-wal-archive",
            &[],
            &[SERVER, missing.to_str().unwrap()],
        );
        let program = PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN"))
            .join("barman-cloud-wal-archive");
        let mut theirs = Command::new(program);
        theirs
            .args(&dest.args)
            .arg(&dest.url)
            .arg(SERVER)
            .arg(&missing);
        for (k, v) in &dest.env {
            theirs.env(k, v);
        }
        for command in [&mut ours, &mut theirs] {
            command.env_remove("BARMAN_FILE");
            command.envs(env.iter().copied());
        }
        let (ours, theirs) = (run(ours), run(theirs));
        assert_exit(&theirs, code, &format!("Barman: {what}"));
        assert_exit(&ours, code, &format!("ours: {what}"));
        ours
    };
    let wal_path = wal.to_str().unwrap();
    let out = run_both(
        &[
            ("BARMAN_HOOK", "archive_script"),
            ("BARMAN_PHASE", "post"),
            ("BARMAN_FILE", wal_path),
        ],
        1,
        "post phase",
    );
    assert_mentions(
        &out,
        "called as unsupported hook script: post_archive_script",
        "post",
    );
    run_both(
        &[
            ("BARMAN_HOOK", "backup_script"),
            ("BARMAN_PHASE", "pre"),
            ("BARMAN_FILE", wal_path),
        ],
        1,
        "backup hook",
    );
    let out = run_both(
        &[
            ("BARMAN_HOOK", "archive_retry_script"),
            ("BARMAN_PHASE", "pre"),
        ],
        1,
        "no BARMAN_FILE",
    );
    assert_mentions(&out, "BARMAN_FILE not set", "no file");
    assert!(server_keys(&dest).is_empty(), "{:?}", server_keys(&dest));
    // BARMAN_FILE wins over the (missing) WAL_PATH argument; a second run (Barman's
    // retry, then ours) finds the same content and succeeds.
    for hook in ["archive_retry_script", "archive_script"] {
        run_both(
            &[
                ("BARMAN_HOOK", hook),
                ("BARMAN_PHASE", "pre"),
                ("BARMAN_FILE", wal_path),
            ],
            0,
            hook,
        );
    }
    assert_eq!(
        server_keys(&dest),
        [format!("wals/0000000100000000/{name}")]
    );
    assert_eq!(
        object_bytes(&dest, &format!("wals/0000000100000000/{name}")),
        std::fs::read(&wal).unwrap()
    );
}

#[test]
fn hook_refuses_a_server_snapshot_backup_with_63() {
    let id = "20261129T175532";
    let dir = temp_dir("hooksnap");
    let backup_dir = dir.path().join("base").join(id);
    std::fs::create_dir_all(backup_dir.join("data")).unwrap();
    let label = "START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\nCHECKPOINT LOCATION: 0/3000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-11-29 17:55:32 UTC\nLABEL: Barman backup snap 20261129T175532\nSTART TIMELINE: 1\n";
    std::fs::write(backup_dir.join("data/backup_label"), label).unwrap();
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let info = dir.path().join(format!("meta/{id}-backup.info"));
    std::fs::write(
        &info,
        format!(
            "backup_label={label:?}\nbegin_offset=40\nbegin_time=2026-11-29 17:55:32.577742+00:00\n\
             begin_wal=000000010000000000000003\nbegin_xlog=0/3000028\ncompression=None\n\
             end_offset=312\nend_time=2026-11-29 17:55:33.577742+00:00\n\
             end_wal=000000010000000000000003\nend_xlog=0/3000138\nmode=snapshot-concurrent\n\
             pgdata=/mnt/pg/data\nserver_name=snap\nsize=234\n\
             snapshots_info={{'provider': 'aws', 'provider_info': {{'account_id': '123456789012', 'region': 'us-east-1'}}, 'snapshots': [{{'mount': {{'mount_options': 'rw,noatime', 'mount_point': '/mnt/pg'}}, 'provider': {{'device_name': '/dev/sdf', 'snapshot_id': 'snap-1e4a8a51595fdf7eb', 'snapshot_name': 'pgdata-20261129t175532', 'snapshot_lock_mode': None}}}}]}}\n\
             status=DONE\nsystemid=7000000000000000000\ntablespaces=None\ntimeline=1\nversion=150004\n"
        )
        .replace("backup_label=\"", "backup_label='")
        .replace("\\n\"\n", "\\n'\n"),
    )
    .unwrap();
    let env = [
        ("BARMAN_HOOK", "backup_retry_script".to_string()),
        ("BARMAN_PHASE", "post".to_string()),
        ("BARMAN_STATUS", "DONE".to_string()),
        ("BARMAN_BACKUP_DIR", backup_dir.display().to_string()),
        ("BARMAN_BACKUP_ID", id.to_string()),
        ("BARMAN_BACKUP_INFO_PATH", info.display().to_string()),
    ];
    // Barman 3.20.1 fails on the missing global/pg_control, uploading nothing.
    let dest = Destination::create(Service::S3, "hooksnap");
    let program =
        PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman-cloud-backup");
    let mut theirs = Command::new(program);
    theirs.args(&dest.args).arg(&dest.url).arg(SERVER);
    theirs
        .envs(dest.env.iter().cloned())
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(theirs);
    assert_exit(&out, 1, "Barman's hook on a snapshot backup");
    assert_mentions(&out, "global/pg_control", "Barman");
    assert!(server_keys(&dest).is_empty());

    // Ours refuses with 63 (Barman stops retrying, the backup stays DONE) and uploads
    // nothing: the snapshots belong to the server's catalog.
    let mut ours = dest.command_for_ours("barman-cloud-backup", &[], &[SERVER]);
    ours.envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(ours);
    assert_exit(&out, 63, "our hook on a snapshot backup");
    assert_mentions(&out, "is a snapshot backup", "ours");
    assert!(server_keys(&dest).is_empty());
}

/// The hook's upload path on Azure and GCS: a server backup split into several objects,
/// restored identical by our restore and by Python Barman's.
fn upload_and_restore_with_both(service: Service) {
    let dest = Destination::create(service, "hookcloud");
    let dir = temp_dir("hookcloud");
    let id = "20250102T030405";
    let (backup_dir, info) = fake_server_backup(dir.path(), id, "");
    let relation = backup_dir.join("data/base/1/16384");
    std::fs::create_dir_all(relation.parent().unwrap()).unwrap();
    std::fs::write(&relation, wal_content(3, 3 << 20, 3 << 20)).unwrap();
    let env = [
        ("BARMAN_HOOK", "backup_retry_script".to_string()),
        ("BARMAN_PHASE", "post".to_string()),
        ("BARMAN_STATUS", "DONE".to_string()),
        ("BARMAN_BACKUP_DIR", backup_dir.display().to_string()),
        ("BARMAN_BACKUP_ID", id.to_string()),
        ("BARMAN_BACKUP_INFO_PATH", info.display().to_string()),
    ];
    let mut ours =
        dest.command_for_ours("barman-cloud-backup", &["-S", "1MB", "-J", "2"], &[SERVER]);
    ours.envs(env.iter().map(|(k, v)| (k, v)));
    assert_success(&run(ours), &format!("hook upload to {service:?}"));
    let keys = base_keys(&dest, id);
    for expected in [
        "backup.info",
        "barman-rs.manifest",
        "data.tar",
        "data_0001.tar",
    ] {
        assert!(keys.contains(&expected.to_string()), "{keys:?}");
    }
    assert_eq!(
        backup_ids(&dest),
        vec![(id.to_string(), "DONE".to_string())]
    );
    let restored = temp_dir("hookcloudrestore");
    for (tools, target) in [(Tools::Ours, "ours"), (Tools::Barman, "barman")] {
        let target = restored.path().join(target);
        let rest = [SERVER, id, target.to_str().unwrap()];
        let out = match tools {
            Tools::Ours => dest.ours("barman-cloud-restore", &rest),
            Tools::Barman => dest.barman("barman-cloud-restore", &[], &rest),
        };
        assert_success(&out, &format!("{tools:?} restore from {service:?}"));
        assert_eq!(
            local_files(&target),
            [
                "PG_VERSION",
                "backup_label",
                "base/1/16384",
                "global/pg_control"
            ]
        );
        assert_eq!(
            std::fs::read(target.join("base/1/16384")).unwrap(),
            std::fs::read(&relation).unwrap()
        );
    }
}

#[test]
fn hook_upload_restores_from_azure() {
    upload_and_restore_with_both(Service::Azure);
}

#[test]
fn hook_upload_restores_from_gcs() {
    upload_and_restore_with_both(Service::Gcs);
}
