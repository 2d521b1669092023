//! Real PostgreSQL 15: archive_command runs our wal-archive under pgbench load, and a
//! second cluster, made with pg_basebackup, recovers through restore_command with our
//! wal-restore to exactly the data committed on the first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

fn pg_bin(tool: &str) -> PathBuf {
    let dir = std::env::var("BARMAN_RS_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&dir).join(tool)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (PostgreSQL refuses root).
pub(crate) fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    // `timeout` keeps a stuck tool (pg_basebackup waiting for WAL that never gets
    // archived) from hanging the suite.
    let mut cmd = Command::new(if is_root() { "runuser" } else { "timeout" });
    if is_root() {
        cmd.args(["-u", "postgres", "--", "timeout"]);
    }
    cmd.arg("300").arg(program);
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

pub(crate) fn chown_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway cluster listening only on a Unix socket in its own directory.
pub(crate) struct Cluster {
    pub(crate) root: tempfile::TempDir,
    pub(crate) port: u16,
}

impl Cluster {
    /// `pg_ctl ACTION` (stop, start...) on the cluster, fast and waiting.
    pub(crate) fn pg_ctl(&self, action: &str) {
        let data = self.data();
        let out = as_postgres(
            &pg_bin("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", action],
        );
        assert_success(&out, &format!("pg_ctl {action}"));
    }

    pub(crate) fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub(crate) fn socket_dir(&self) -> String {
        self.root.path().display().to_string()
    }

    /// barman-cloud-backup's options to reach this cluster (either tool's).
    pub(crate) fn backup_options(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.socket_dir(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
            // A spread checkpoint would make each backup wait minutes.
            "--immediate-checkpoint".into(),
        ]
    }

    /// Our barman-cloud-backup of this cluster to `dest` (server `server`), with `options`
    /// after [`Self::backup_options`].
    pub(crate) fn backup_with_ours(
        &self,
        dest: &Destination,
        server: &str,
        options: &[&str],
    ) -> std::process::Output {
        let mut all = self.backup_options();
        all.extend(options.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        dest.ours_with("barman-cloud-backup", &all, &[server])
    }

    pub(crate) fn initdb(tag: &str) -> Cluster {
        let root = temp_dir(tag);
        chown_postgres(root.path());
        let data = root.path().join("data");
        let out = as_postgres(
            &pg_bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
        );
        assert_success(&out, "initdb");
        let cluster = Cluster {
            root,
            port: free_port(),
        };
        cluster.configure(&format!(
            "listen_addresses = ''\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nmax_wal_size = 64MB\nwal_level = replica\n",
            cluster.port,
            cluster.socket_dir()
        ));
        cluster
    }

    /// A started cluster whose archive_command is our wal-archive (with `options`) to
    /// `dest`, its script written in `scripts`.
    pub(crate) fn archiving(
        tag: &str,
        dest: &Destination,
        scripts: &Path,
        options: &str,
    ) -> Cluster {
        let cluster = Cluster::initdb(tag);
        let archive = archive_script(scripts, dest, options);
        cluster.configure(&format!(
            "archive_mode = on\narchive_command = '{} %p'\n",
            archive.display()
        ));
        cluster.start();
        cluster
    }

    /// Appends settings (later lines win in postgresql.conf).
    pub(crate) fn configure(&self, settings: &str) {
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .unwrap();
        conf.write_all(settings.as_bytes()).unwrap();
    }

    pub(crate) fn start(&self) {
        let log = self.root.path().join("server.log");
        let out = as_postgres(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
        if !out.status.success() {
            panic!(
                "pg_ctl start failed: {}\n{}",
                stderr(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }

    fn stop(&self) {
        let _ = as_postgres(
            &pg_bin("pg_ctl"),
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    pub(crate) fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = as_postgres(
            Path::new("/usr/bin/psql"),
            &[
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.socket_dir(),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        );
        assert_success(&out, &format!("psql {sql}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub(crate) fn pgbench(&self, args: &[&str]) {
        let port = self.port.to_string();
        let mut all = vec![
            "-h",
            self.socket_dir().leak(),
            "-p",
            port.as_str(),
            "-U",
            "postgres",
        ];
        all.extend(args);
        all.push("postgres");
        let out = as_postgres(Path::new("/usr/bin/pgbench"), &all);
        assert_success(&out, "pgbench");
    }

    /// Switches WAL and waits until every segment up to the current one is archived.
    pub(crate) fn archive_everything(&self) {
        let last = self.psql("select pg_walfile_name(pg_current_wal_lsn())");
        self.psql("select pg_switch_wal()");
        self.wait_for("the archiver", Duration::from_secs(120), || {
            self.psql("select coalesce(last_archived_wal, '') from pg_stat_archiver") >= last
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    pub(crate) fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            if start.elapsed() > timeout {
                panic!("timed out waiting for {what}\nserver log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A script PostgreSQL runs as archive/restore command: the destination's credentials
/// live in the script, since the server's children only inherit pg_ctl's environment.
fn command_script(dir: &Path, name: &str, dest: &Destination, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let script = format!(
        "#!/bin/sh\n{}exec '{}' {body}\n",
        dest.shell_env(),
        our_binary().display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// archive_command script: our wal-archive (with `options`) of `%p` to `dest`, server `srv`.
pub(crate) fn archive_script(dir: &Path, dest: &Destination, options: &str) -> PathBuf {
    let body = format!(
        "barman-cloud-wal-archive {} {options} '{}' srv \"$1\"",
        dest.shell_args(),
        dest.url
    );
    command_script(dir, "archive.sh", dest, &body)
}

/// restore_command script: our wal-restore of `%f` into `%p` from `dest`, server `srv`.
pub(crate) fn restore_script(dir: &Path, dest: &Destination) -> PathBuf {
    let body = format!(
        "barman-cloud-wal-restore {} '{}' srv \"$1\" \"$2\"",
        dest.shell_args(),
        dest.url
    );
    command_script(dir, "restore.sh", dest, &body)
}

/// Starts a restored PGDATA (at `<root>/data`) with recovery through our wal-restore.
pub(crate) fn recover(
    root: tempfile::TempDir,
    scripts: &Path,
    dest: &Destination,
    extra: &str,
) -> Cluster {
    let restore_command = restore_script(scripts, dest);
    recover_with(root, &format!("{} %f %p", restore_command.display()), extra)
}

/// Starts a restored PGDATA (at `<root>/data`) in recovery with `restore_command` and the
/// `extra` settings, and waits until it is promoted.
pub(crate) fn recover_with(root: tempfile::TempDir, restore_command: &str, extra: &str) -> Cluster {
    chown_postgres(root.path());
    let cluster = Cluster {
        root,
        port: free_port(),
    };
    cluster.configure(&format!(
        "port = {}\nunix_socket_directories = '{}'\narchive_mode = off\nrestore_command = '{restore_command}'\n{extra}",
        cluster.port,
        cluster.socket_dir(),
    ));
    std::fs::write(cluster.data().join("recovery.signal"), b"").unwrap();
    chown_postgres(cluster.root.path());
    cluster.start();
    cluster.wait_for("the end of recovery", Duration::from_secs(180), || {
        cluster.psql("select pg_is_in_recovery()") == "f"
    });
    cluster
}

pub(crate) const CHECKSUM_SQL: &str = "select count(*) || ':' || sum(abalance) || ':' || (select count(*) from pgbench_history) || ':' || (select coalesce(sum(delta), 0) from pgbench_history) from pgbench_accounts";

fn archive_and_recover(service: Service) {
    let dest = Destination::create(service, "pg");
    if let Some(root) = dest.url.strip_prefix("file://") {
        chown_postgres(Path::new(root));
    }
    let scripts = temp_dir("pgscripts");
    let primary = Cluster::archiving("primary", &dest, scripts.path(), "--gzip");
    primary.pgbench(&["-i", "-s", "2", "-q"]);

    let standby_root = temp_dir("standby");
    chown_postgres(standby_root.path());
    let standby_data = standby_root.path().join("data");
    let port = primary.port.to_string();
    let out = as_postgres(
        &pg_bin("pg_basebackup"),
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
    assert_success(&out, "pg_basebackup");

    primary.pgbench(&["-n", "-c", "2", "-t", "300"]);
    let expected = primary.psql(CHECKSUM_SQL);
    primary.archive_everything();
    let failed = primary.psql("select failed_count from pg_stat_archiver");
    assert_eq!(failed, "0", "archive_command failures:\n{}", primary.log());

    // Every segment PostgreSQL marked as archived is in the bucket, and restores identical.
    let status_dir = primary.data().join("pg_wal/archive_status");
    let done: Vec<String> = std::fs::read_dir(&status_dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .into_string()
                .unwrap()
                .strip_suffix(".done")
                .map(str::to_string)
        })
        .collect();
    assert!(
        done.len() >= 3,
        "expected several archived segments, got {done:?}"
    );
    let check_dir = temp_dir("pgcheck");
    // Barman's restore never serves .backup files (PostgreSQL does not ask for them).
    for name in done.iter().filter(|n| !n.ends_with(".backup")) {
        let target = check_dir.path().join(name);
        let out = dest.ours(
            "barman-cloud-wal-restore",
            &["srv", name, target.to_str().unwrap()],
        );
        assert_success(&out, &format!("restore archived {name}"));
        let original = primary.data().join("pg_wal").join(name);
        if original.exists() {
            assert_eq!(
                std::fs::read(&target).unwrap(),
                std::fs::read(&original).unwrap(),
                "{name} differs"
            );
        }
    }

    let restore = restore_script(scripts.path(), &dest);
    let standby = Cluster {
        root: standby_root,
        port: free_port(),
    };
    standby.configure(&format!(
        "port = {}\nunix_socket_directories = '{}'\narchive_mode = off\nrestore_command = '{} %f %p'\n",
        standby.port,
        standby.socket_dir(),
        restore.display()
    ));
    std::fs::write(standby.data().join("recovery.signal"), b"").unwrap();
    chown_postgres(standby.root.path());
    standby.start();
    standby.wait_for("the end of recovery", Duration::from_secs(180), || {
        standby.psql("select pg_is_in_recovery()") == "f"
    });
    assert_eq!(
        standby.psql(CHECKSUM_SQL),
        expected,
        "recovered data differ from the primary's"
    );
    assert!(
        standby.log().contains("restored log file"),
        "{}",
        standby.log()
    );
}

#[test]
fn archive_command_and_recovery_local() {
    archive_and_recover(Service::Local);
}

#[test]
fn archive_command_and_recovery_s3() {
    archive_and_recover(Service::S3);
}

#[test]
fn archive_command_and_recovery_azure() {
    archive_and_recover(Service::Azure);
}

#[test]
fn archive_command_and_recovery_gcs() {
    archive_and_recover(Service::Gcs);
}
