//! CloudNativePG's use of the commands, on a real PostgreSQL and the S3 emulator, through
//! `cnpg/cnpg_shim.go`: a Go program that calls the commands exactly as CloudNativePG's
//! operator (1.25.1) and plugin-barman-cloud do, and decodes their output with the same
//! Go types, time layouts, version regex and semver parser. The same scenario runs once with
//! our commands first on PATH and once with Python Barman's; every outcome a CloudNativePG
//! cluster depends on (the version it detects, exit codes and their classification, the
//! catalog it decodes, the backup it picks for a point in time, the recovered data) must be
//! the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::postgres::{Cluster, chown_postgres, free_port, recover_with};
use crate::support::*;

const SERVER: &str = "cluster-example";

/// The shim, built once per test run with Debian's Go and blang/semver (GOPATH mode: no
/// module download).
fn shim_binary() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cnpg");
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("cnpg_shim");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/cnpg/cnpg_shim.go");
        let out = Command::new("go")
            .arg("build")
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", dir.join("go-cache"))
            .env("GOFLAGS", "")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run go ({e}): scripts/test-services.sh install installs Debian's golang-go and golang-github-blang-semver-dev")
            });
        assert_success(&out, "go build cnpg_shim.go");
        binary
    })
}

/// Which implementation of the commands comes first on PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tools {
    Ours,
    Barman,
}

/// The directory holding the nine commands of `tools`: for ours, one link per command
/// name to the test build, as scripts/install.sh lays them out.
fn bin_dir(tools: Tools) -> PathBuf {
    static OURS: OnceLock<PathBuf> = OnceLock::new();
    match tools {
        Tools::Barman => PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")),
        Tools::Ours => OURS
            .get_or_init(|| {
                let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cnpg/ours-bin");
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                for command in commands() {
                    std::os::unix::fs::symlink(our_binary(), dir.join(command)).unwrap();
                }
                dir
            })
            .clone(),
    }
}

/// The nine command names, as `barman-rs` lists them in its usage.
fn commands() -> Vec<String> {
    let usage = Command::new(our_binary()).output().unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&usage.stderr)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("barman-cloud-"))
        .map(|rest| format!("barman-cloud-{rest}"))
        .collect();
    assert_eq!(names.len(), 9, "{}", stderr(&usage));
    names
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    )
}

/// The shim's JSON answer, or a panic with everything it said.
fn json(out: &Output, what: &str) -> Value {
    assert_success(out, what);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", stdout(out)))
}

/// The Barman version every command reports, as the operator detects it.
#[test]
fn version_parses_as_barman_3_20_1() {
    for command in commands() {
        let command = command.as_str();
        let mut answers = Vec::new();
        for tools in [Tools::Ours, Tools::Barman] {
            let out = Command::new(shim_binary())
                .args(["version", command])
                .env("PATH", path_with(&bin_dir(tools)))
                .output()
                .unwrap();
            let caps = json(&out, &format!("{command} --version ({tools:?})"));
            assert_eq!(caps["version"], "3.20.1", "{command} ({tools:?}): {caps}");
            for flag in ["has_name", "has_tags", "has_check_wal_archive"] {
                assert_eq!(caps[flag], true, "{command} ({tools:?}): {flag}");
            }
            assert!(
                caps["compressions"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from("zstd")),
                "{caps}"
            );
            answers.push(caps);
        }
        // Byte for byte what Barman prints.
        assert_eq!(answers[0]["output"], answers[1]["output"], "{command}");
    }

    // The line barman-rs printed before (our own version after Barman's) is what broke
    // CloudNativePG: the shim must refuse it as the operator did.
    let fake = temp_dir("cnpg-oldversion");
    let script = fake.path().join("barman-cloud-wal-archive");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'barman-cloud-wal-archive 3.20.1 (barman-rs 0.1.0)'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(shim_binary())
        .args(["version", "barman-cloud-wal-archive"])
        .env("PATH", path_with(fake.path()))
        .output()
        .unwrap();
    assert_exit(&out, 1, "the old version line");
    assert!(stderr(&out).contains("0.1.0)"), "{}", stderr(&out));

    // Our own version is still one command away.
    let out = Command::new(our_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert_success(&out, "barman-rs --version");
    assert_eq!(
        stdout(&out),
        format!(
            "barman-rs {} (compatible with Barman 3.20.1)\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// One CloudNativePG-shaped cluster's life with one implementation of the commands.
struct Scenario {
    tools: Tools,
    dest: Destination,
    work: tempfile::TempDir,
    endpoint: String,
    /// What CloudNativePG would see at each step, with IDs and times replaced by their
    /// roles, for the comparison between the two implementations.
    transcript: BTreeMap<String, String>,
}

impl Scenario {
    fn new(tools: Tools) -> Scenario {
        let work = temp_dir("cnpg");
        for dir in ["archive-spool", "restore-spool-1", "restore-spool-2", "tmp"] {
            std::fs::create_dir(work.path().join(dir)).unwrap();
        }
        std::fs::write(work.path().join("journal"), b"").unwrap();
        std::fs::set_permissions(
            work.path().join("journal"),
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        chown_postgres(work.path());
        Scenario {
            tools,
            dest: Destination::create(Service::S3, "cnpg"),
            work,
            endpoint: required_env("BARMAN_RS_TEST_S3_ENDPOINT"),
            transcript: BTreeMap::new(),
        }
    }

    /// The environment CloudNativePG gives the commands: the object store configuration
    /// (here read by the shim), the credentials, and PATH with the tools under test.
    fn env(&self, spool: &str, pgdata: &Path) -> Vec<(String, String)> {
        let work = self.work.path();
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path_with(&bin_dir(self.tools))),
            ("CNPG_DESTINATION_PATH".into(), self.dest.url.clone()),
            ("CNPG_SERVER_NAME".into(), SERVER.into()),
            ("CNPG_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("CNPG_PGDATA".into(), pgdata.display().to_string()),
            ("CNPG_SPOOL".into(), work.join(spool).display().to_string()),
            ("CNPG_MAX_PARALLEL".into(), "4".into()),
            ("CNPG_WAL_COMPRESSION".into(), "zstd".into()),
            ("CNPG_DATA_COMPRESSION".into(), "gzip".into()),
            ("CNPG_DATA_JOBS".into(), "2".into()),
            (
                "CNPG_BACKUP_EXTRA_ARGS".into(),
                "--min-chunk-size=5MB --read-timeout=60".into(),
            ),
            ("CNPG_RESTORE_EXTRA_ARGS".into(), "--read-timeout=60".into()),
            ("CNPG_TAGS".into(), "cnpg=test".into()),
            ("CNPG_HISTORY_TAGS".into(), "kind=history".into()),
            ("CNPG_TMPDIR".into(), work.join("tmp").display().to_string()),
            (
                "CNPG_JOURNAL".into(),
                work.join("journal").display().to_string(),
            ),
        ];
        env.extend(self.dest.env.iter().cloned());
        env
    }

    /// A script PostgreSQL runs (archive_command, restore_command): its children only
    /// inherit pg_ctl's environment, so the script sets it.
    fn postgres_script(&self, name: &str, spool: &str, pgdata: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let mut text = String::from("#!/bin/sh\n");
        for (k, v) in self.env(spool, pgdata) {
            text.push_str(&format!("export {k}='{v}'\n"));
        }
        text.push_str(&format!("exec '{}' \"$@\"\n", shim_binary().display()));
        let path = self.work.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Runs the shim as the instance manager would (as root here, which changes nothing
    /// for the commands), with `extra` environment on top.
    fn shim(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(shim_binary());
        cmd.args(args);
        for (k, v) in self.env("archive-spool", Path::new("/nonexistent")) {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run cnpg_shim")
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(self.work.path().join("journal")).unwrap()
    }

    fn note(&mut self, step: &str, outcome: impl Into<String>) {
        self.transcript.insert(step.to_string(), outcome.into());
    }
}

/// The shape of a backup as CloudNativePG keeps it, with its ID replaced by its role.
fn backup_shape(backup: &Value, roles: &BTreeMap<String, String>) -> String {
    if backup.is_null() {
        return "none".into();
    }
    let id = backup["id"].as_str().unwrap();
    format!(
        "{} name={} done={} timeline={} error={:?}",
        roles.get(id).map(String::as_str).unwrap_or("unknown"),
        backup["name"],
        backup["done"],
        backup["timeline"],
        backup["error"].as_str().unwrap_or(""),
    )
}

fn markers(cluster: &Cluster) -> String {
    cluster
        .psql("select coalesce(string_agg(phase::text, ',' order by phase), '') from cnpg_marker")
}

/// A restored PGDATA started as CloudNativePG's recovery job configures it: the instance
/// manager's wal-restore as restore_command (with its prefetch spool), promotion at the
/// end, and the target if any.
fn recover(scenario: &Scenario, root: tempfile::TempDir, spool: &str, target: &str) -> Cluster {
    let data = root.path().join("data");
    let script = scenario.postgres_script(&format!("{spool}.sh"), spool, &data);
    recover_with(
        root,
        &format!("{} wal-restore %f %p", script.display()),
        &format!("recovery_target_action = promote\n{target}"),
    )
}

fn run_scenario(tools: Tools) -> BTreeMap<String, String> {
    let mut s = Scenario::new(tools);
    let what = |step: &str| format!("{step} ({tools:?})");

    // A new cluster: CloudNativePG leaves the empty-archive check flag in PGDATA, and
    // WAL piles up (.ready) before the first archive_command call, so that call archives
    // in parallel.
    let primary = Cluster::initdb("cnpg-primary");
    std::fs::write(primary.data().join(".check-empty-wal-archive"), b"").unwrap();
    chown_postgres(&primary.data());
    primary.configure("archive_mode = on\narchive_command = ''\n");
    primary.start();
    primary.psql("create table cnpg_marker(phase int); create table filler(x int)");
    primary.pgbench(&["-i", "-s", "1", "-q"]);
    for _ in 0..5 {
        primary.psql("insert into filler select generate_series(1, 1000); select pg_switch_wal()");
    }
    let ready = std::fs::read_dir(primary.data().join("pg_wal/archive_status"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".ready")
        })
        .count();
    assert!(
        ready >= 5,
        "expected WAL waiting for archiving, got {ready}"
    );

    let archive = s.postgres_script("archive.sh", "archive-spool", &primary.data());
    primary.configure(&format!(
        "archive_command = '{} wal-archive %p'\n",
        archive.display()
    ));
    primary.psql("select pg_reload_conf()");
    primary.archive_everything();
    assert_eq!(
        primary.psql("select failed_count from pg_stat_archiver"),
        "0",
        "{}",
        s.journal()
    );
    let journal = s.journal();
    let first = journal.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("barman-cloud-check-wal-archive --endpoint-url")
            && first.ends_with(&format!("{} {SERVER} => 0", s.dest.url)),
        "the first archive_command checks the empty archive first:\n{journal}"
    );
    assert_eq!(
        journal.matches("barman-cloud-check-wal-archive").count(),
        1,
        "the check runs once, until a WAL is archived:\n{journal}"
    );
    assert!(
        journal.contains("archived (parallel)"),
        "some WAL was archived ahead by a parallel call:\n{journal}"
    );
    for line in journal
        .lines()
        .filter(|l| l.starts_with("barman-cloud-wal-archive "))
    {
        assert!(
            line.contains(" --zstd --endpoint-url ")
                && line.contains(
                    " --tags cnpg,test --history-tags kind,history --cloud-provider aws-s3 "
                )
                && line.ends_with("=> 0"),
            "{line}"
        );
    }
    s.note("archive", "check once, parallel, all archived");

    // Two backups as the instance manager takes them (PGHOST/PGPORT from the pod's
    // environment, --user postgres, --name backup-<time>), a PITR target between them.
    let pg_env = [
        ("PGHOST", primary.socket_dir()),
        ("PGPORT", primary.port.to_string()),
    ];
    let pg_env: Vec<(&str, &str)> = pg_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let take_backup = |s: &Scenario, name: &str| -> Value {
        json(&s.shim(&["backup", name], &pg_env), &what(name))
    };
    let backup1 = take_backup(&s, "backup-20261129000001");
    primary.psql("insert into cnpg_marker values (1)");
    std::thread::sleep(Duration::from_millis(1100));
    // In PostgreSQL's form, as users write recoveryTarget.targetTime.
    let target = primary.psql(
        "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US\"+00\"')",
    );
    std::thread::sleep(Duration::from_millis(1100));
    primary.psql("insert into cnpg_marker values (2)");
    let backup2 = take_backup(&s, "backup-20261129000002");
    primary.psql("insert into cnpg_marker values (3)");
    primary.archive_everything();

    let mut roles = BTreeMap::new();
    for (role, backup) in [("backup1", &backup1), ("backup2", &backup2)] {
        roles.insert(backup["id"].as_str().unwrap().to_string(), role.to_string());
    }
    assert_eq!(roles.len(), 2, "two backups: {backup1} {backup2}");
    s.note("backup1", backup_shape(&backup1, &roles));
    s.note("backup2", backup_shape(&backup2, &roles));
    assert_eq!(backup1["done"], true, "{backup1}");
    assert_eq!(backup1["name"], "backup-20261129000001");
    assert_eq!(backup1["timeline"], 1);

    // The catalog as the operator decodes it, and the backups it picks.
    let list = json(&s.shim(&["list"], &[]), &what("list"));
    let listed: Vec<String> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| backup_shape(b, &roles))
        .collect();
    s.note("list", listed.join("; "));
    assert_eq!(list["backups"][0], backup1, "list and show agree");
    assert_eq!(list["backups"][1], backup2, "list and show agree");
    s.note("latest", backup_shape(&list["latest"], &roles));
    assert_eq!(
        list["first_recoverability_point"], backup1["end_time"],
        "{list}"
    );
    for (step, args) in [
        ("find target time", ["", target.as_str(), ""]),
        ("find latest", ["", "", ""]),
        ("find target time on timeline 2", ["", target.as_str(), "2"]),
        ("find by id", [backup2["id"].as_str().unwrap(), "", ""]),
    ] {
        let found = json(
            &s.shim(&["find", args[0], args[1], args[2]], &[]),
            &what(step),
        );
        s.note(step, backup_shape(&found, &roles));
    }

    // Retention as the operator applies it, and keep (which CloudNativePG does not call).
    for policy in ["30d", "4w", "1m"] {
        let out = json(&s.shim(&["delete", policy], &[]), &what("delete"));
        s.note(&format!("delete {policy}"), out.to_string());
    }
    let id1 = backup1["id"].as_str().unwrap();
    for args in [
        vec![id1, "--target", "standalone"],
        vec![id1, "--status"],
        vec![id1, "--release"],
        vec![id1, "--status"],
    ] {
        let out = json(
            &s.shim(&[&["keep"][..], &args].concat(), &[]),
            &what("keep"),
        );
        s.note(&format!("keep {}", args[1..].join(" ")), out.to_string());
    }
    let after = json(&s.shim(&["list"], &[]), &what("list after retention"));
    assert_eq!(after["backups"], list["backups"], "nothing was deleted");

    // PITR: the operator restores the backup it picked (its argument order), then the
    // recovery replays WAL through wal-restore with prefetch to the target.
    let restore1 = temp_dir("cnpg-restore1");
    let pgdata1 = restore1.path().join("data");
    let outcome = json(
        &s.shim(
            &["restore", "operator", id1, pgdata1.to_str().unwrap()],
            &[],
        ),
        &what("restore (operator)"),
    );
    s.note("restore operator", outcome.to_string());
    assert_eq!(outcome["exit_code"], 0, "{outcome}");
    let recovered = recover(
        &s,
        restore1,
        "restore-spool-1",
        &format!("recovery_target_time = '{target}'\n"),
    );
    s.note("recovered to the target", markers(&recovered));
    drop(recovered);

    // The plugin: checks the backup's first WAL is archived, restores (its argument
    // order), and recovers to the end of the archive.
    let restore2 = temp_dir("cnpg-restore2");
    let pgdata2 = restore2.path().join("data");
    let outcome = json(
        &s.shim(
            &[
                "restore",
                "plugin",
                backup2["id"].as_str().unwrap(),
                pgdata2.to_str().unwrap(),
                backup2["begin_wal"].as_str().unwrap(),
            ],
            &[],
        ),
        &what("restore (plugin)"),
    );
    s.note("restore plugin", outcome.to_string());
    let recovered = recover(&s, restore2, "restore-spool-2", "");
    s.note("recovered to the end", markers(&recovered));
    drop(recovered);
    let journal = s.journal();
    assert!(
        journal.contains("restored from the spool"),
        "prefetched WAL was used:\n{journal}"
    );
    let restore_lines: Vec<&str> = journal
        .lines()
        .filter(|l| l.starts_with("barman-cloud-wal-restore "))
        .collect();
    assert!(!restore_lines.is_empty());
    for line in &restore_lines {
        assert!(
            line.contains(&format!(" {} {SERVER} --read-timeout=60 ", s.dest.url)),
            "options after the positionals: {line}"
        );
    }

    // Failures, as the operator classifies them.
    // Each failing call gets a destination of its own, so no call sees another's leftovers.
    let scratch: Vec<String> = (0..5)
        .map(|i| {
            s.work
                .path()
                .join(format!("tmp/scratch-{i}"))
                .display()
                .to_string()
        })
        .collect();
    let closed = format!("http://127.0.0.1:{}", free_port());
    for (step, args, extra) in [
        (
            "wal-restore of a missing WAL",
            vec!["wal-restore", "0000000100000000000000FE", &scratch[0]],
            vec![],
        ),
        (
            "wal-restore of a bad name",
            vec!["wal-restore", "not-a-wal-name", &scratch[1]],
            vec![],
        ),
        (
            "wal-restore with the storage down",
            vec!["wal-restore", "000000010000000000000001", &scratch[2]],
            vec![("CNPG_ENDPOINT_URL", closed.as_str())],
        ),
        (
            "restore of an unknown backup",
            vec!["restore", "operator", "20000101T000000", &scratch[3]],
            vec![],
        ),
        (
            "restore with the storage down",
            vec!["restore", "plugin", id1, &scratch[4]],
            vec![("CNPG_ENDPOINT_URL", closed.as_str())],
        ),
        (
            "check-wal-archive of a used archive",
            vec!["check-wal-archive"],
            vec![],
        ),
        (
            "backup with the storage down",
            vec!["backup", "backup-20261129000003"],
            [&pg_env[..], &[("CNPG_ENDPOINT_URL", closed.as_str())]].concat(),
        ),
    ] {
        let before = s.journal().len();
        let mut extra = extra;
        extra.push(("CNPG_MAX_PARALLEL", "1"));
        let out = s.shim(&args, &extra);
        // Each command's exit code and the operator's classification of it.
        let seen: Vec<String> = s.journal()[before..]
            .lines()
            // The primary's archive_command goes on meanwhile.
            .filter(|l| !l.starts_with("barman-cloud-wal-archive ") && !l.starts_with("spool:"))
            .map(|line| match line.split_once(": ") {
                Some((_, class)) if line.starts_with("classified") => class.to_string(),
                _ => {
                    let command = line.split(' ').next().unwrap_or_default();
                    let code = line.rsplit(' ').next().unwrap_or_default();
                    format!("{command} => {code}")
                }
            })
            .collect();
        s.note(
            step,
            format!(
                "shim exit {:?}; {}; {}",
                out.status.code(),
                seen.join(", "),
                stdout(&out)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
    s.transcript
}

/// The whole cluster life with our commands and with Barman's, side by side.
#[test]
fn cloudnativepg_cluster_life_is_the_same_with_barman_rs_and_barman() {
    shim_binary();
    let (ours, barman) = std::thread::scope(|scope| {
        let ours = scope.spawn(|| run_scenario(Tools::Ours));
        let barman = scope.spawn(|| run_scenario(Tools::Barman));
        (ours.join().unwrap(), barman.join().unwrap())
    });
    // What CloudNativePG needs, whoever answers.
    assert_eq!(ours["recovered to the target"], "1", "{ours:#?}");
    assert_eq!(ours["recovered to the end"], "1,2,3", "{ours:#?}");
    assert_eq!(ours["find target time"], ours["backup1"], "{ours:#?}");
    assert_eq!(ours["find latest"], ours["backup2"], "{ours:#?}");
    assert_eq!(ours["find target time on timeline 2"], "none");
    assert!(ours["wal-restore of a missing WAL"].contains("WAL not found"));
    assert!(ours["wal-restore with the storage down"].contains("connectivity failure"));
    // And the same as with Barman, step by step.
    for (step, outcome) in &barman {
        assert_eq!(
            ours.get(step),
            Some(outcome),
            "{step}: barman-rs and Barman differ\nbarman-rs: {ours:#?}\nBarman: {barman:#?}"
        );
    }
    assert_eq!(ours.len(), barman.len());
}
