//! barman-cloud-restore and barman-cloud-wal-restore on crafted buckets: archives that try
//! to write outside the restore targets, backups that are not DONE, incomplete or damaged,
//! WAL files that are damaged or are not the segment asked for, and a restore into a full
//! file system. None may end with exit 0; legitimate variants of each are kept as controls.
//!
//! The buckets are written by `craft_bucket.py`, run with the Python of Barman's
//! virtualenv: the archives come from the modules Barman itself writes them with
//! (tarfile, gzip, bz2, python-snappy, lz4, zstandard), independently of our own encoders,
//! and backup.info from Barman's BackupInfo class; tarfile writes any member name, type
//! and link target it is given, which is what the attacks need. Each suite's bucket is
//! generated once into a workspace, used directly as a `file://` destination and uploaded
//! to S3 (a subset to Azure and GCS), and every case runs on each.
//!
//! Each run is checked for its exit code, for one stderr line naming the problem, and for
//! containment: the whole workspace except the restore targets (the sentinel directory
//! whose victim file is the target of every link and escaping name in the attacks, the
//! bucket, the parent of the destination) is compared entry by entry before and after
//! (type, inode, link count, size, mode, modification time, content). Failures are
//! collected over all cases and reported together.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use barman_cloud::catalog::manifest::Digest256;

use crate::support::*;

const VICTIM: &[u8] = b"precious, must stay as it is\n";
const TS_OID: &str = "16385";

/// A workspace holding a generated bucket (layout in craft_bucket.py).
struct Crafted {
    work: tempfile::TempDir,
    /// Generated case -> (server, backup ID or WAL name).
    cases: BTreeMap<String, (String, String)>,
}

impl Crafted {
    fn generate(suite: &str) -> Self {
        let work = temp_dir(&format!("crafted-{suite}"));
        let root = work.path();
        let sentinel = root.join("sentinel");
        std::fs::create_dir_all(sentinel.join("sub")).unwrap();
        std::fs::write(sentinel.join("victim"), VICTIM).unwrap();
        // Named as the tablespace OID: the target of the pg_tblspc attack.
        std::fs::write(sentinel.join(TS_OID), b"not a tablespace link\n").unwrap();
        std::fs::write(sentinel.join("sub").join("inner"), b"inner\n").unwrap();
        for dir in ["runs", "ts", "walout", "spool"] {
            std::fs::create_dir(root.join(dir)).unwrap();
        }
        let python = Path::new(&required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/craft_bucket.py");
        let out = Command::new(python)
            .arg(script)
            .arg(suite)
            .arg(root)
            .output()
            .expect("run craft_bucket.py");
        assert_success(&out, &format!("craft_bucket.py {suite}"));
        let cases = stdout(&out)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let [case, server, name] = fields.as_slice() else {
                    panic!("craft_bucket.py printed {line:?}");
                };
                (case.to_string(), (server.to_string(), name.to_string()))
            })
            .collect();
        Crafted { work, cases }
    }

    fn root(&self) -> &Path {
        self.work.path()
    }

    fn sentinel(&self) -> PathBuf {
        self.root().join("sentinel")
    }

    fn case(&self, name: &str) -> &(String, String) {
        self.cases
            .get(name)
            .unwrap_or_else(|| panic!("craft_bucket.py made no case {name}"))
    }

    /// `"<sha256> <size>"` written by the generator under `expected/`.
    fn expected(&self, name: &str) -> String {
        std::fs::read_to_string(self.root().join("expected").join(name))
            .unwrap()
            .trim()
            .to_string()
    }

    fn local(&self) -> Destination {
        Destination::local_at(&self.root().join("bucket").join("pg"))
    }

    /// A new bucket on `service` holding the backups of `cases` (every object when
    /// `None`).
    fn upload(&self, service: Service, cases: Option<&[&str]>) -> Destination {
        let dest = Destination::create(service, "crafted");
        let bucket = self.root().join("bucket");
        let source = match cases {
            None => bucket.clone(),
            Some(cases) => {
                let stage = self.root().join("stage");
                for case in cases {
                    let (server, id) = self.case(case);
                    let relative = Path::new("pg").join(server).join("base").join(id);
                    std::fs::create_dir_all(stage.join(&relative)).unwrap();
                    for entry in std::fs::read_dir(bucket.join(&relative)).unwrap() {
                        let entry = entry.unwrap();
                        std::fs::hard_link(
                            entry.path(),
                            stage.join(&relative).join(entry.file_name()),
                        )
                        .unwrap();
                    }
                }
                stage
            }
        };
        dest.bucket_tool(&["upload", source.to_str().unwrap(), &dest.bucket()]);
        if cases.is_some() {
            std::fs::remove_dir_all(&source).unwrap();
        }
        dest
    }
}

// ------------------------------------------------------------------ containment check

/// What is known of one directory entry (never following links).
#[derive(Debug, PartialEq)]
struct Entry {
    kind: &'static str,
    ino: u64,
    /// Link count, but of the directories runs add entries to.
    nlink: Option<u64>,
    mode: u32,
    size: u64,
    /// Modification time (ns), but of the directories runs add entries to.
    mtime: Option<i128>,
    /// Content of small files, target of links.
    content: Option<Vec<u8>>,
}

/// Every entry below `root` except the `skip` subtrees, by path.
fn snapshot(root: &Path, skip: &[PathBuf]) -> BTreeMap<PathBuf, Entry> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        if skip.iter().any(|s| s == &path) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let (kind_name, content, timed) = if kind.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            stack.extend(children);
            // Directories that runs legitimately add entries to have no time.
            let parent = path.parent();
            let volatile = path == root
                || ["runs", "ts", "walout", "spool"]
                    .iter()
                    .any(|d| path == root.join(d) || parent == Some(&root.join(d)));
            ("dir", None, !volatile)
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            (
                "symlink",
                Some(target.into_os_string().into_encoded_bytes()),
                true,
            )
        } else if kind.is_file() {
            let content = (meta.len() <= 1 << 16).then(|| std::fs::read(&path).unwrap());
            ("file", content, true)
        } else {
            ("other", None, true)
        };
        found.insert(
            path,
            Entry {
                kind: kind_name,
                ino: meta.ino(),
                nlink: (timed || !kind.is_dir()).then_some(meta.nlink()),
                mode: meta.mode(),
                size: if kind.is_dir() { 0 } else { meta.len() },
                mtime: timed.then_some(mtime),
                content,
            },
        );
    }
    found
}

/// The differences between two snapshots, one line each; empty when identical.
fn differences(before: &BTreeMap<PathBuf, Entry>, after: &BTreeMap<PathBuf, Entry>) -> String {
    let mut lines = Vec::new();
    for (path, entry) in before {
        match after.get(path) {
            None => lines.push(format!("deleted {}", path.display())),
            Some(now) if now != entry => {
                lines.push(format!("changed {}: {entry:?} -> {now:?}", path.display()))
            }
            Some(_) => {}
        }
    }
    for (path, entry) in after {
        if !before.contains_key(path) {
            lines.push(format!("created {} ({})", path.display(), entry.kind));
        }
    }
    lines.join("\n")
}

/// Removes a restore target (links inside are removed, never followed).
fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// The line of `out`'s stderr holding every fragment: exactly one, and no panic.
fn message_problem(out: &Output, fragments: &[&str]) -> Option<String> {
    let text = stderr(out);
    if text.contains("panicked") {
        return Some(format!("panic in stderr:\n{text}"));
    }
    let matching = text
        .lines()
        .filter(|line| fragments.iter().all(|f| line.contains(f)))
        .count();
    (matching != 1)
        .then(|| format!("expected one stderr line with {fragments:?}, found {matching}:\n{text}"))
}

// ------------------------------------------------------------------ restore cases

/// What a run of a case is checked against (after the exit code and containment).
struct Run<'a> {
    crafted: &'a Crafted,
    dest: PathBuf,
    /// The tablespace location backup.info names for the case (WORK/ts/<backup case>).
    ts: PathBuf,
}

type Check = fn(&Run) -> Result<(), String>;

enum Expect {
    /// Exit 0, `WHICH` names this generated case, base/1/1259 intact, a backup_label.
    Restored(&'static str),
    /// As `Restored`, but the relation file is not the original: a damage no format can
    /// see without a manifest.
    RestoredDamaged(&'static str),
    /// A non-zero exit (this one, if given) and one stderr line holding every fragment.
    Refused(Option<i32>, &'static [&'static str]),
}

struct Case {
    /// The generated case whose backup is restored.
    backup: &'static str,
    /// The backup argument instead of the generated ID (shortcuts, names, bad IDs).
    argument: Option<String>,
    /// `{work}` and `{dest}` are replaced by the workspace and the destination.
    options: Vec<String>,
    /// Restore targets besides the destination and WORK/ts/<backup case> (relocations).
    also_written: Vec<&'static str>,
    expect: Expect,
    /// Made before the run (links the user or the host may have).
    prepare: Option<fn(&Run)>,
    check: Option<Check>,
}

fn case(backup: &'static str, expect: Expect) -> Case {
    Case {
        backup,
        argument: None,
        options: Vec::new(),
        also_written: Vec::new(),
        expect,
        prepare: None,
        check: None,
    }
}

fn refused(backup: &'static str, fragments: &'static [&'static str]) -> Case {
    case(backup, Expect::Refused(None, fragments))
}

impl Case {
    fn argument(mut self, argument: &str) -> Self {
        self.argument = Some(argument.to_string());
        self
    }

    fn options(mut self, options: &[&str]) -> Self {
        self.options = options.iter().map(|o| o.to_string()).collect();
        self
    }

    fn also_written(mut self, target: &'static str) -> Self {
        self.also_written.push(target);
        self
    }

    fn prepare(mut self, prepare: fn(&Run)) -> Self {
        self.prepare = Some(prepare);
        self
    }

    fn check(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    fn label(&self) -> String {
        match (&self.argument, self.options.is_empty()) {
            (None, true) => self.backup.to_string(),
            (argument, _) => format!(
                "{} [{} {}]",
                self.backup,
                argument.as_deref().unwrap_or("<id>"),
                self.options.join(" ")
            ),
        }
    }
}

fn digest_of(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let digest = Digest256::of(&bytes);
    Ok(format!("{} {}", digest.hex(), digest.size))
}

fn link_of(path: &Path) -> Result<PathBuf, String> {
    std::fs::read_link(path).map_err(|e| format!("{} is not a link: {e}", path.display()))
}

fn expect_link(path: &Path, target: &Path) -> Result<(), String> {
    let found = link_of(path)?;
    (found == target).then_some(()).ok_or_else(|| {
        format!(
            "{} points to {}, not {}",
            path.display(),
            found.display(),
            target.display()
        )
    })
}

/// The restore of `dest` holds the `which` backup, whole (or with its relation damaged).
fn check_restored(run: &Run, which: &str, damaged: bool) -> Result<(), String> {
    let found = std::fs::read_to_string(run.dest.join("WHICH")).map_err(|e| e.to_string())?;
    if found != which {
        return Err(format!("restored the backup of {found}, not {which}"));
    }
    let label = std::fs::symlink_metadata(run.dest.join("backup_label"));
    if !label.is_ok_and(|m| m.is_file() && m.len() > 0) {
        return Err("no backup_label restored".into());
    }
    let relation = digest_of(&run.dest.join("base/1/1259"))?;
    let original = run.crafted.expected("relation");
    match (damaged, relation == original) {
        (false, false) => Err("base/1/1259 differs from the original".into()),
        (true, true) => Err("base/1/1259 is intact: the case did not damage it".into()),
        _ => Ok(()),
    }
}

/// Runs every case on `file://` and S3, and the cases of the backups in `subset` (those
/// without a special argument) on Azure and GCS; returns the failures.
fn run_everywhere(crafted: &Crafted, cases: fn() -> Vec<Case>, subset: &[&str]) -> Vec<String> {
    let all = cases();
    let mut failures = run_restores(crafted, &crafted.local(), &all);
    failures.extend(run_restores(
        crafted,
        &crafted.upload(Service::S3, None),
        &all,
    ));
    for service in [Service::Azure, Service::Gcs] {
        let dest = crafted.upload(service, Some(subset));
        let some: Vec<Case> = cases()
            .into_iter()
            .filter(|c| subset.contains(&c.backup) && c.argument.is_none())
            .collect();
        failures.extend(run_restores(crafted, &dest, &some));
    }
    failures
}

fn run_restores(crafted: &Crafted, dest: &Destination, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let label = format!("{} on {:?}", case.label(), dest.service);
        let (server, id) = crafted.case(case.backup);
        // Generated destinations are <work>/runs/<backup case>/pgdata (backup.info of the
        // overlap cases names them); the parent exists, as a user's would.
        let parent = crafted.root().join("runs").join(case.backup);
        std::fs::create_dir_all(&parent).unwrap();
        let run = Run {
            crafted,
            dest: parent.join("pgdata"),
            ts: crafted.root().join("ts").join(case.backup),
        };
        let mut targets = vec![run.dest.clone(), run.ts.clone()];
        let mut options = case.options.clone();
        let expand = |text: &str| {
            text.replace("{work}", crafted.root().to_str().unwrap())
                .replace("{dest}", run.dest.to_str().unwrap())
        };
        for option in &mut options {
            *option = expand(option);
        }
        targets.extend(case.also_written.iter().map(|t| PathBuf::from(expand(t))));
        if let Some(prepare) = case.prepare {
            prepare(&run);
        }
        let before = snapshot(crafted.root(), &targets);
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let argument = case.argument.as_deref().unwrap_or(id);
        let out = dest.ours_with(
            "barman-cloud-restore",
            &options,
            &[server, argument, run.dest.to_str().unwrap()],
        );
        let mut problems = Vec::new();
        match &case.expect {
            Expect::Restored(which) | Expect::RestoredDamaged(which) => {
                if !out.status.success() {
                    problems.push(format!(
                        "expected exit 0, got {:?}: {}",
                        out.status.code(),
                        stderr(&out).trim()
                    ));
                } else if let Err(e) = check_restored(
                    &run,
                    which,
                    matches!(case.expect, Expect::RestoredDamaged(_)),
                ) {
                    problems.push(e);
                }
            }
            Expect::Refused(code, fragments) => {
                match (out.status.code(), code) {
                    (Some(0), _) => problems.push(format!(
                        "expected a failure, got exit 0 (stderr: {})",
                        stderr(&out).trim()
                    )),
                    (found, Some(code)) if found != Some(*code) => {
                        problems.push(format!("expected exit {code}, got {found:?}"))
                    }
                    _ => {}
                }
                problems.extend(message_problem(&out, fragments));
            }
        }
        if let Some(check) = case.check
            && out.status.success()
            && let Err(e) = check(&run)
        {
            problems.push(e);
        }
        // The outcome, for --nocapture: exit code and the last stderr line.
        println!(
            "{label}: exit {:?}: {}",
            out.status.code(),
            stderr(&out).lines().last().unwrap_or_default()
        );
        let after = snapshot(crafted.root(), &targets);
        let changed = differences(&before, &after);
        if !changed.is_empty() {
            problems.push(format!("OUTSIDE THE TARGETS:\n{changed}"));
        }
        if !problems.is_empty() {
            failures.push(format!("[{index}] {label}: {}", problems.join("\n   ")));
        }
        for target in &targets {
            remove(target);
        }
        remove(&parent);
    }
    failures
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn containment_cases() -> Vec<Case> {
    const THROUGH: &str = "refusing to write through it";
    let mut cases = vec![
        case("ok_tablespace", Expect::Restored("ok_tablespace")).check(|run| {
            expect_link(&run.dest.join("pg_tblspc").join(TS_OID), &run.ts)?;
            digest_of(&run.ts.join("PG_16_202307071/5/16386"))?;
            digest_of(&run.dest.join("base/2/2600")).map(|_| ())
        }),
        // A PGDATA archive holds pg_tblspc/<oid> as a link to the original location
        // (here the sentinel's file): restore replaces the link, its target stays.
        case(
            "ok_tblspc_oid_link_member",
            Expect::Restored("ok_tblspc_oid_link_member"),
        )
        .check(|run| expect_link(&run.dest.join("pg_tblspc").join(TS_OID), &run.ts)),
        // pg_tblspc itself a link to the sentinel: the tablespace link would be made in
        // it, replacing <sentinel>/16385 (what Barman's restore does).
        refused("evil_tblspc_dir_link", &["pgdata/pg_tblspc", THROUGH]),
        // pg_wal as a link (initdb --waldir) is content: kept, nothing made through it.
        case(
            "ok_pg_wal_link_missing_target",
            Expect::Restored("ok_pg_wal_link_missing_target"),
        )
        .check(|run| {
            expect_link(
                &run.dest.join("pg_wal"),
                &run.crafted.sentinel().join("walsdir"),
            )
        }),
        case(
            "ok_pg_wal_link_to_sentinel",
            Expect::Restored("ok_pg_wal_link_to_sentinel"),
        )
        .check(|run| expect_link(&run.dest.join("pg_wal"), &run.crafted.sentinel())),
        refused("evil_dotdot", &["refusing member '../escape'", "'..'"]),
        refused(
            "evil_dotdot_victim",
            &["refusing member '../../../sentinel/victim'", "'..'"],
        ),
        refused(
            "evil_absolute",
            &["created_by_absolute_name", "absolute member name"],
        ),
        refused(
            "evil_absolute_victim",
            &["/sentinel/victim'", "absolute member name"],
        ),
        refused(
            "evil_inner_dotdot",
            &["refusing member 'a/../../b'", "'..'"],
        ),
        refused(
            "evil_dotdot_directory_only",
            &["refusing member '..'", "'..'"],
        ),
        refused(
            "evil_longname_dotdot",
            &["refusing member '../xxxxxxxx", "'..'"],
        ),
        refused(
            "evil_dotdot_directory",
            &["refusing member '../escape_dir", "'..'"],
        ),
        refused(
            "evil_pax_dotdot",
            &["refusing member '../../../sentinel/victim'", "'..'"],
        ),
        refused(
            "evil_root_as_file",
            &[
                "refusing member '.'",
                "cannot replace the restore directory",
            ],
        ),
        refused("evil_link_then_file", &["pgdata/evil/victim", THROUGH]),
        refused(
            "evil_relative_link_then_file",
            &["pgdata/evil/created", THROUGH],
        ),
        refused(
            "evil_link_then_directory",
            &["pgdata/evil/created_dir", THROUGH],
        ),
        refused("evil_link_then_nested_file", &["pgdata/evil/new", THROUGH]),
        refused(
            "evil_link_then_link",
            &["pgdata/evil/created_link", THROUGH],
        ),
        refused(
            "evil_link_then_hardlink",
            &["pgdata/evil/created_hl", THROUGH],
        ),
        // The parts are unpacked side by side: which of the link and the directory
        // `evil` comes first varies, and so does the message (a link there, or a
        // directory where the link should go); both name the member.
        refused("evil_link_across_parts", &["pgdata/evil"]),
        refused("evil_link_across_parts_reversed", &["pgdata/evil"]),
        refused(
            "evil_tablespace_archive_link_then_file",
            &["PG_16_202307071/victim", THROUGH],
        ),
        // A later member replaces an earlier one (tar semantics): the link goes, the
        // file it pointed to stays.
        case(
            "ok_file_replaces_link",
            Expect::Restored("ok_file_replaces_link"),
        )
        .check(|run| {
            let path = run.dest.join("victimlink");
            let meta = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
            let content = std::fs::read(&path).map_err(|e| e.to_string())?;
            (meta.is_file() && content == b"mine\n")
                .then_some(())
                .ok_or_else(|| "victimlink is not the archive's file".into())
        }),
        // A hard link to a link member links the link itself, not its target.
        case(
            "ok_hardlink_to_link_member",
            Expect::Restored("ok_hardlink_to_link_member"),
        )
        .check(|run| expect_link(&run.dest.join("hl"), &run.crafted.sentinel().join("victim"))),
        refused(
            "evil_hardlink_absolute",
            &[
                "refusing member 'hl'",
                "hard link target: absolute member name",
            ],
        ),
        refused(
            "evil_hardlink_dotdot",
            &[
                "refusing member 'hl'",
                "hard link target: member name contains '..'",
            ],
        ),
        refused("evil_hardlink_through_link", &["'out'", THROUGH]),
        refused(
            "evil_hardlink_from_through_link",
            &["pgdata/out/hl", THROUGH],
        ),
        refused(
            "evil_fifo",
            &["refusing member 'fifo'", "unsupported member type"],
        ),
        refused(
            "evil_char_device",
            &["refusing member 'null'", "unsupported member type"],
        ),
        refused(
            "evil_block_device",
            &["refusing member 'sda'", "unsupported member type"],
        ),
        // backup_label a link to a non-empty file outside: not a label.
        refused(
            "evil_backup_label_link",
            &["pgdata/backup_label", "no usable backup_label"],
        ),
        refused(
            "ts_relative",
            &["'relative/ts'", "not a plain absolute path"],
        ),
        refused(
            "ts_dotdot",
            &["/ts/../sentinel'", "not a plain absolute path"],
        ),
        refused(
            "ts_dotdot_fresh",
            &["/ts/x/../fresh'", "not a plain absolute path"],
        ),
        refused("ts_empty", &["location ''", "not a plain absolute path"]),
        refused("ts_equal_destination", &["overlap"]),
        refused("ts_inside_destination", &["overlap"]),
        refused("ts_contains_destination", &["overlap"]),
        refused("ts_twice", &["overlap"]),
        refused(
            "ts_sentinel",
            &["/sentinel already exists and it is not empty"],
        ),
        // --tablespace relocations.
        refused(
            "ts_relocated",
            &["/sentinel already exists and it is not empty"],
        )
        .options(&["--tablespace", "tbs:{work}/sentinel"]),
        refused("ts_relocated", &["overlap"]).options(&["--tablespace", "tbs:{dest}"]),
        refused("ts_relocated", &["overlap"]).options(&["--tablespace", "tbs:{dest}/inner"]),
        refused("ts_relocated", &["overlap"])
            .options(&["--tablespace", "tbs:{work}/runs/ts_relocated"]),
        // A location that is a dangling link to the destination: the destination is
        // created first, and the tablespace would then be unpacked into it.
        refused("ts_relocated", &["overlap"])
            .options(&["--tablespace", "tbs:{work}/runs/ts_relocated/alias"])
            .prepare(|run| {
                let alias = run.dest.parent().unwrap().join("alias");
                std::os::unix::fs::symlink("pgdata", alias).unwrap();
            }),
        // The destination itself, spelt through a link in an existing parent: the path
        // does not exist yet when the overlap is judged.
        refused("ts_relocated", &["overlap"])
            .options(&["--tablespace", "tbs:{work}/runs/ts_relocated/self/pgdata"])
            .prepare(|run| {
                let this = run.dest.parent().unwrap().join("self");
                std::os::unix::fs::symlink(".", this).unwrap();
            }),
        case("ts_relocated", Expect::Restored("ts_relocated"))
            .options(&["--tablespace", "tbs:{work}/runs/ts_relocated/elsewhere"])
            .also_written("{work}/runs/ts_relocated/elsewhere")
            .check(|run| {
                let elsewhere = run.dest.parent().unwrap().join("elsewhere");
                expect_link(&run.dest.join("pg_tblspc").join(TS_OID), &elsewhere)
            }),
    ];
    // Backup IDs that are paths.
    for argument in [
        "../20250101T000000",
        "20250101T000000/..",
        "20250101T000000/../20250101T000100",
        "..",
        "a/b",
        "/etc",
        "",
    ] {
        cases.push(refused("ok_tablespace", &["Unknown backup"]).argument(argument));
    }
    cases
}

/// Archives that try to leave the restore targets.
#[test]
fn crafted_restore_containment() {
    let crafted = Crafted::generate("containment");
    let subset = [
        "ok_tablespace",
        "evil_tblspc_dir_link",
        "evil_link_across_parts",
        "evil_dotdot_victim",
        "evil_hardlink_through_link",
    ];
    report(run_everywhere(&crafted, containment_cases, &subset));
}

/// The containment check itself sees every kind of change made outside the targets.
#[test]
fn crafted_containment_check_sees_every_change() {
    let work = temp_dir("crafted-self");
    let root = work.path();
    let sentinel = root.join("sentinel");
    let victim = sentinel.join("victim");
    let reset = || {
        remove(&sentinel);
        std::fs::create_dir_all(sentinel.join("sub")).unwrap();
        std::fs::write(&victim, VICTIM).unwrap();
        std::fs::write(sentinel.join("sub/inner"), b"inner\n").unwrap();
        std::fs::create_dir_all(root.join("runs/case")).unwrap();
    };
    type Change = fn(&Path);
    let changes: [(&str, Change); 9] = [
        ("same-size rewrite", |s| {
            let mut content = std::fs::read(s.join("victim")).unwrap();
            content[0] ^= 1;
            std::fs::write(s.join("victim"), content).unwrap();
        }),
        ("new file in a subdirectory", |s| {
            std::fs::write(s.join("sub/new"), b"").unwrap()
        }),
        ("file created then removed", |s| {
            std::fs::write(s.join("sub/tmp"), b"").unwrap();
            std::fs::remove_file(s.join("sub/tmp")).unwrap();
        }),
        ("hard link to the victim", |s| {
            let outside = s.parent().unwrap().join("runs/case/hl");
            std::fs::hard_link(s.join("victim"), outside).unwrap();
        }),
        ("victim replaced by a link", |s| {
            std::fs::remove_file(s.join("victim")).unwrap();
            std::os::unix::fs::symlink("/etc/hostname", s.join("victim")).unwrap();
        }),
        ("victim replaced by a copy", |s| {
            std::fs::copy(s.join("victim"), s.join("copy")).unwrap();
            std::fs::rename(s.join("copy"), s.join("victim")).unwrap();
        }),
        ("mode changed", |s| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(s.join("victim"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }),
        ("victim deleted", |s| {
            std::fs::remove_file(s.join("victim")).unwrap()
        }),
        ("escape beside the destination", |s| {
            std::fs::write(s.parent().unwrap().join("runs/case/escape"), b"").unwrap()
        }),
    ];
    for (what, change) in changes {
        reset();
        let skip = [root.join("runs/case/pgdata")];
        let before = snapshot(root, &skip);
        // Coarse file system clocks would hide a rewrite within the same tick.
        std::thread::sleep(std::time::Duration::from_millis(10));
        change(&sentinel);
        assert!(
            !differences(&before, &snapshot(root, &skip)).is_empty(),
            "{what} went unnoticed"
        );
    }
}

fn completeness_cases() -> Vec<Case> {
    const END_MARKER: &str = "the end-of-archive marker is missing";
    const UNREADABLE: &str = "Cannot read the integrity manifest";
    let mut cases = Vec::new();
    for backup in [
        "ok_tar",
        "ok_tar_gz",
        "ok_tar_bz2",
        "ok_tar_snappy",
        "ok_tar_lz4",
        "ok_tar_zst",
    ] {
        cases.push(
            case(backup, Expect::Restored(backup))
                .check(|run| digest_of(&run.dest.join("base/2/2600")).map(|_| ())),
        );
    }
    cases.extend([
        case("ok_no_manifest", Expect::Restored("ok_no_manifest")),
        case(
            "ok_zst_without_checksum",
            Expect::Restored("ok_zst_without_checksum"),
        ),
        // Status.
        case(
            "failed_by_id",
            Expect::Refused(Some(1), &["has status FAILED", "only DONE backups"]),
        ),
        case(
            "started_by_id",
            Expect::Refused(Some(1), &["has status STARTED", "only DONE backups"]),
        ),
        case(
            "waiting_for_wals_by_id",
            Expect::Refused(Some(1), &["has status WAITING_FOR_WALS", "only DONE"]),
        ),
        case(
            "half_deleted",
            Expect::Refused(Some(1), &["has status FAILED: deletion in progress"]),
        ),
        case(
            "failed_by_name",
            Expect::Refused(Some(1), &["has status FAILED", "only DONE backups"]),
        )
        .argument("nightly"),
    ]);
    // Shortcuts on a server whose oldest and newest backups are FAILED and STARTED.
    for shortcut in ["latest", "last", "oldest", "first", "auto"] {
        cases.push(case("pick_done", Expect::Restored("pick_done")).argument(shortcut));
    }
    cases.extend([
        case(
            "pick_failed_newest",
            Expect::Refused(Some(1), &["has status FAILED", "only DONE backups"]),
        )
        .argument("last-failed"),
        case(
            "nodone_failed",
            Expect::Refused(
                Some(1),
                &["No DONE backup for server nodone matches 'latest'"],
            ),
        )
        .argument("latest"),
        case(
            "nodone_failed",
            Expect::Refused(
                Some(1),
                &["No DONE backup for server nodone matches 'oldest'"],
            ),
        )
        .argument("oldest"),
        case(
            "nodone_failed",
            Expect::Refused(Some(1), &["Cannot find any candidate backup"]),
        )
        .argument("auto"),
        // Missing archives.
        refused("missing_data", &["Missing file", "/data.*"]),
        refused("missing_data_parts_only", &["Missing file", "/data.*"]),
        refused("missing_tablespace_archive", &["Missing file", "/16385.*"]),
        refused("parts_gap", &["Missing file", "/data_0002.tar*"]),
        refused(
            "manifest_missing_last_part",
            &["data_0002.tar listed in the integrity manifest"],
        ),
        refused(
            "manifest_extra_archive",
            &["data_0002.tar is not listed in the integrity manifest"],
        ),
        // Manifests that cannot vouch for anything.
        refused("manifest_garbage", &[UNREADABLE, "line 1"]),
        refused("manifest_empty", &[UNREADABLE, "line 1"]),
        refused("manifest_cut_in_a_line", &[UNREADABLE]),
        refused(
            "manifest_unknown_algorithm",
            &[UNREADABLE, "unknown hash algorithm"],
        ),
        refused("manifest_bad_name", &[UNREADABLE]),
        // Manifests that disagree with the archives.
        refused(
            "manifest_wrong_hash",
            &["data.tar does not match the integrity manifest"],
        ),
        refused(
            "manifest_wrong_size",
            &["data.tar is", "bytes, the integrity manifest says"],
        ),
        refused(
            "manifest_wrong_label",
            &["backup_label differs from the backup_label recorded in the integrity manifest"],
        ),
        // Every manifest we write has a backup_label line; one without cannot check the
        // label, but the archives are still checked in full.
        case(
            "manifest_without_label_entry",
            Expect::Restored("manifest_without_label_entry"),
        ),
        // backup_label.
        refused("no_backup_label", &["no usable backup_label"]),
        refused("empty_backup_label", &["backup_label is empty"]),
        refused("backup_label_directory", &["no usable backup_label"]),
        refused("no_backup_label_with_manifest", &["no usable backup_label"]),
        // Truncations.
        refused("tar_cut_at_member_boundary", &["/data.tar:", END_MARKER]),
        refused(
            "tar_cut_at_member_boundary_with_manifest",
            &["/data.tar is", "bytes, the integrity manifest says"],
        ),
        refused("tar_cut_in_end_marker", &["/data.tar:", END_MARKER]),
        refused(
            "tar_cut_inside_member",
            &["/data.tar:", "member 'base/1/1259' has"],
        ),
        refused(
            "gz_tar_cut_at_member_boundary",
            &["/data.tar.gz:", END_MARKER],
        ),
        refused("gz_truncated", &["/data.tar.gz:"]),
        refused("gz_without_trailer", &["/data.tar.gz:"]),
        refused("gz_bad_crc", &["/data.tar.gz:"]),
        refused("bz2_truncated", &["/data.tar.bz2:"]),
        refused("snappy_truncated_mid_chunk", &["/data.tar.snappy:"]),
        refused("lz4_truncated", &["/data.tar.lz4:"]),
        refused("lz4_without_end_mark", &["/data.tar.lz4:"]),
        refused("zst_truncated", &["/data.tar.zst:"]),
        // A snappy framed stream has no end marker: only the tar's shows the cut.
        refused(
            "snappy_cut_at_chunk_boundary",
            &["/data.tar.snappy:", "incomplete archive"],
        ),
        refused("tablespace_archive_cut", &["/16385.tar:", END_MARKER]),
        refused(
            "part_cut_at_member_boundary",
            &["/data_0001.tar:", END_MARKER],
        ),
        // Flipped bytes.
        refused(
            "tar_flipped_with_manifest",
            &["data.tar does not match the integrity manifest"],
        ),
        // The documented limit: an uncompressed tar has no checksum over file data, so
        // without a manifest one flipped byte in a file restores unnoticed.
        case(
            "tar_flipped_without_manifest",
            Expect::RestoredDamaged("tar_flipped_without_manifest"),
        ),
        refused("tar_flipped_header", &["/data.tar:"]),
        refused("zst_flipped", &["/data.tar.zst:"]),
        refused("lz4_flipped", &["/data.tar.lz4:"]),
        refused("bz2_flipped", &["/data.tar.bz2:"]),
        refused("snappy_flipped", &["/data.tar.snappy:"]),
        refused("gz_flipped", &["/data.tar.gz:"]),
        refused(
            "zst_without_checksum_flipped_with_manifest",
            &["/data.tar.zst"],
        ),
        refused(
            "part_flipped_with_manifest",
            &["data_0001.tar does not match the integrity manifest"],
        ),
    ]);
    cases
}

/// Backups that are not DONE, incomplete or damaged.
#[test]
fn crafted_restore_completeness() {
    let crafted = Crafted::generate("completeness");
    let subset = [
        "ok_tar_zst",
        "failed_by_id",
        "parts_gap",
        "manifest_wrong_hash",
        "gz_tar_cut_at_member_boundary",
        "lz4_flipped",
    ];
    report(run_everywhere(&crafted, completeness_cases, &subset));
}

// ------------------------------------------------------------------ WAL restore

enum WalExpect {
    /// Exit 0 and the content `expected/<case>` describes.
    Restored,
    /// A non-zero exit (this one, if given), one stderr line holding every fragment
    /// (`{wal}` stands for the WAL name), nothing left at or beside the destination.
    Refused(Option<i32>, &'static [&'static str]),
}

struct WalCase {
    case: &'static str,
    /// The WAL name argument instead of the generated one.
    name: Option<&'static str>,
    expect: WalExpect,
}

fn wal_case(case: &'static str, expect: WalExpect) -> WalCase {
    WalCase {
        case,
        name: None,
        expect,
    }
}

fn run_wal_restores(crafted: &Crafted, dest: &Destination, cases: &[WalCase]) -> Vec<String> {
    let mut failures = Vec::new();
    let spool = crafted.root().join("spool");
    for (index, case) in cases.iter().enumerate() {
        let (server, generated) = crafted.case(case.case);
        let name = case.name.unwrap_or(generated);
        let label = format!("{} [{name}] on {:?}", case.case, dest.service);
        let directory = crafted.root().join("walout").join(index.to_string());
        std::fs::create_dir(&directory).unwrap();
        let target = directory.join("RECOVERYXLOG");
        let before = snapshot(crafted.root(), std::slice::from_ref(&target));
        let out = dest.ours_with(
            "barman-cloud-wal-restore",
            &["--spool-dir", spool.to_str().unwrap()],
            &[server, name, target.to_str().unwrap()],
        );
        println!(
            "{label}: exit {:?}: {}",
            out.status.code(),
            stderr(&out).lines().last().unwrap_or_default()
        );
        let mut problems = Vec::new();
        match &case.expect {
            WalExpect::Restored => {
                if !out.status.success() {
                    problems.push(format!(
                        "expected exit 0, got {:?}: {}",
                        out.status.code(),
                        stderr(&out).trim()
                    ));
                } else {
                    match digest_of(&target) {
                        Ok(found) if found == crafted.expected(case.case) => {}
                        Ok(found) => problems.push(format!(
                            "restored {found}, expected {}",
                            crafted.expected(case.case)
                        )),
                        Err(e) => problems.push(e),
                    }
                }
            }
            WalExpect::Refused(code, fragments) => {
                match (out.status.code(), code) {
                    (Some(0), _) => problems.push(format!(
                        "expected a failure, got exit 0 (stderr: {})",
                        stderr(&out).trim()
                    )),
                    (found, Some(code)) if found != Some(*code) => {
                        problems.push(format!("expected exit {code}, got {found:?}"))
                    }
                    _ => {}
                }
                let fragments: Vec<String> =
                    fragments.iter().map(|f| f.replace("{wal}", name)).collect();
                let fragments: Vec<&str> = fragments.iter().map(String::as_str).collect();
                problems.extend(message_problem(&out, &fragments));
                if std::fs::symlink_metadata(&target).is_ok() {
                    problems.push(format!("{} was left behind", target.display()));
                }
            }
        }
        let changed = differences(&before, &snapshot(crafted.root(), &[target]));
        if !changed.is_empty() {
            problems.push(format!("OUTSIDE THE DESTINATION:\n{changed}"));
        }
        if !problems.is_empty() {
            failures.push(format!("[{index}] {label}: {}", problems.join("\n   ")));
        }
        remove(&directory);
    }
    failures
}

/// What a refused download says: the stream failed to decode, or the content is not
/// the segment asked for (a missing object says neither).
const DECODE: &str = "Failure downloading WAL";
const NOT_SEGMENT: &str = "is not WAL segment";

fn wal_cases() -> Vec<WalCase> {
    use WalExpect::*;
    let mut cases: Vec<WalCase> = [
        "wal_ok_plain",
        "wal_ok_gz",
        "wal_ok_bz2",
        "wal_ok_zst",
        "wal_ok_zst_barman",
        "wal_ok_lz4",
        "wal_ok_lz4_barman",
        "wal_ok_snappy",
        // Asked for by its segment name, as PostgreSQL does.
        "wal_ok_partial",
        "wal_ok_1mib_segment",
        "wal_ok_history",
    ]
    .into_iter()
    .map(|case| wal_case(case, Restored))
    .collect();
    cases.extend([
        wal_case("wal_lz4_flipped", Refused(None, &["{wal}", DECODE])),
        wal_case("wal_zst_flipped", Refused(None, &["{wal}", DECODE])),
        wal_case("wal_gz_truncated", Refused(None, &["{wal}", DECODE])),
        wal_case("wal_gz_without_trailer", Refused(None, &["{wal}", DECODE])),
        wal_case("wal_lz4_truncated", Refused(None, &["{wal}", DECODE])),
        wal_case("wal_zst_truncated", Refused(None, &["{wal}", DECODE])),
        wal_case(
            "wal_short_plain",
            Refused(None, &["{wal}", NOT_SEGMENT, "size"]),
        ),
        wal_case(
            "wal_long_gz",
            Refused(None, &["{wal}", NOT_SEGMENT, "size"]),
        ),
        wal_case("wal_empty", Refused(None, &["{wal}", NOT_SEGMENT, "size"])),
        // The first page header must match the name: page address, and a timeline no
        // later than the name's (pages of an earlier one are legitimate, below).
        wal_case("wal_other_segment", Refused(None, &["{wal}", NOT_SEGMENT])),
        wal_case("wal_other_timeline", Refused(None, &["{wal}", NOT_SEGMENT])),
        wal_case("wal_zeros", Refused(None, &["{wal}", NOT_SEGMENT])),
        wal_case(
            "wal_header_size_mismatch",
            Refused(None, &["{wal}", NOT_SEGMENT]),
        ),
        wal_case("wal_ok_older_timeline_pages", Restored),
    ]);
    for name in [
        "../000000010000000000000010",
        "0000000100000000/000000010000000000000010",
        "000000010000000000000010/..",
        "..",
        "/etc/passwd",
    ] {
        cases.push(WalCase {
            case: "wal_ok_plain",
            name: Some(name),
            expect: Refused(Some(3), &["is an invalid name for a WAL file"]),
        });
    }
    cases
}

/// WAL files that are damaged or are not the segment asked for, and names that are
/// paths: nothing may be left at the destination.
#[test]
fn crafted_wal_restore() {
    let crafted = Crafted::generate("wal");
    let cases = wal_cases();
    let mut failures = run_wal_restores(&crafted, &crafted.local(), &cases);
    failures.extend(run_wal_restores(
        &crafted,
        &crafted.upload(Service::S3, None),
        &cases,
    ));
    report(failures);
}

// ------------------------------------------------------------------ full disk

/// A whole backup restored into a file system too small for it.
#[test]
fn crafted_restore_full_disk() {
    let crafted = Crafted::generate("disk");
    let tiny = TinyFilesystem::mount("4m");
    let (server, id) = crafted.case("disk_full");
    for dest in [crafted.local(), crafted.upload(Service::S3, None)] {
        let target = tiny.0.path().join("pgdata");
        let before = snapshot(crafted.root(), &[]);
        let out = dest.ours(
            "barman-cloud-restore",
            &[server, id, target.to_str().unwrap()],
        );
        let service = dest.service;
        assert!(!out.status.success(), "{service:?}: exit 0 on a full disk");
        let fragments = ["No space left on device", target.to_str().unwrap()];
        if let Some(problem) = message_problem(&out, &fragments) {
            panic!("{service:?}: {problem}");
        }
        assert_eq!(
            differences(&before, &snapshot(crafted.root(), &[])),
            "",
            "{service:?}"
        );
        remove(&target);
    }
}
