//! The hook scripts `barman delete`, `barman cron` (retention) and `barman recover` run,
//! against Python Barman 3.20.1 on two copies of one crafted `barman_home` (see
//! `server_delete`): every hook is `./dump.sh <hook>`, which writes its arguments and
//! `BARMAN_*` environment to `hooks/<n>-<hook>` (`n` counting the runs, so the order of
//! phases and WAL files shows) and exits with the code in `exit-<hook>` if any. Both
//! tools must run the same hooks in the same order with the same environment (each
//! copy's directory masked).

use std::collections::BTreeMap;
use std::path::Path;

use crate::server_delete::{Pair, compare_cron, spec};
use crate::server_world::python_barman;
use crate::support::*;

const DUMP: &str = "#!/bin/sh\n\
mkdir -p hooks\n\
n=$(ls hooks | wc -l)\n\
f=hooks/$(printf %03d \"$n\")-$1\n\
{ echo \"argv: $*\"; env | grep '^BARMAN_' | sort; } > \"$f\"\n\
if [ -f \"exit-$1\" ]; then exit \"$(cat \"exit-$1\")\"; fi\n\
exit 0\n";

const DELETE_HOOKS: [&str; 8] = [
    "pre_delete_script",
    "pre_delete_retry_script",
    "post_delete_retry_script",
    "post_delete_script",
    "pre_wal_delete_script",
    "pre_wal_delete_retry_script",
    "post_wal_delete_retry_script",
    "post_wal_delete_script",
];

pub(crate) const RECOVERY_HOOKS: [&str; 4] = [
    "pre_recovery_script",
    "pre_recovery_retry_script",
    "post_recovery_retry_script",
    "post_recovery_script",
];

pub(crate) fn hook_lines(hooks: &[&str]) -> String {
    hooks
        .iter()
        .map(|h| format!("{h} = ./dump.sh {h}\n"))
        .collect()
}

/// Installs `dump.sh` in both copies' directories.
fn install_dump(pair: &Pair) {
    for home in [&pair.theirs, &pair.ours] {
        install_dump_in(&home.world);
    }
}

/// Installs `dump.sh` in `world`'s directory.
pub(crate) fn install_dump_in(world: &crate::server_world::World) {
    use std::os::unix::fs::PermissionsExt;
    let path = world.write("dump.sh", DUMP);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Sets the exit code of `hook` in both copies (`None`: 0).
fn exit_code(pair: &Pair, hook: &str, code: Option<i32>) {
    for home in [&pair.theirs, &pair.ours] {
        let path = home.world.path(&format!("exit-{hook}"));
        match code {
            Some(code) => std::fs::write(&path, code.to_string()).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// The dumps of one copy (its directory masked), emptied for the next command.
pub(crate) fn take_dumps(dir: &Path, masked: impl Fn(&str) -> String) -> BTreeMap<String, String> {
    let dir = dir.join("hooks");
    if !dir.exists() {
        return BTreeMap::new();
    }
    let dumps = file_names(&dir)
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            (name, masked(&text))
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    dumps
}

/// Both copies' dumps, asserted identical; returns them.
fn same_dumps(pair: &Pair, what: &str) -> BTreeMap<String, String> {
    let theirs = take_dumps(&pair.theirs.world.path(""), |t| pair.theirs.masked(t));
    let ours = take_dumps(&pair.ours.world.path(""), |t| pair.ours.masked(t));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "hooks run by {what}"
    );
    for (name, text) in &ours {
        assert_eq!(text, &theirs[name], "{name} of {what}");
    }
    ours
}

fn env_of(dump: &str) -> BTreeMap<&str, &str> {
    dump.lines().filter_map(|l| l.split_once('=')).collect()
}

#[test]
fn server_hooks_delete_and_wal_delete_match_barman() {
    let specs = [
        spec("20261102T100000", 5, 6),
        spec("20261103T100000", 8, 9),
        spec("20261104T100000", 11, 12),
        spec("20261105T100000", 13, 14),
    ];
    let wals: Vec<u32> = (1..=15).collect();
    let pair = Pair::new("srvhookdel", &hook_lines(&DELETE_HOOKS), &specs, &wals);
    install_dump(&pair);
    // A WAL file already gone: its post hooks get the error.
    for home in [&pair.theirs, &pair.ours] {
        std::fs::remove_file(
            home.world
                .path("home/snap/wals/0000000100000000/000000010000000000000002"),
        )
        .unwrap();
    }

    // The oldest backup: delete hooks around it, WAL hooks around each WAL before the
    // next backup.
    pair.compare(&["delete", "snap", "20261102T100000"]);
    let dumps = same_dumps(&pair, "delete of the oldest backup");
    let names: Vec<&str> = dumps.keys().map(|k| &k[4..]).collect();
    assert_eq!(names.first(), Some(&"pre_delete_script"), "{names:?}");
    assert_eq!(names[1], "pre_delete_retry_script");
    assert_eq!(names[names.len() - 2], "post_delete_retry_script");
    assert_eq!(names[names.len() - 1], "post_delete_script");
    assert_eq!(
        names[2..6],
        [
            "pre_wal_delete_script",
            "pre_wal_delete_retry_script",
            "post_wal_delete_retry_script",
            "post_wal_delete_script"
        ]
    );
    let pre = env_of(dumps.values().next().unwrap());
    assert_eq!(pre["BARMAN_BACKUP_ID"], "20261102T100000");
    assert_eq!(pre["BARMAN_NEXT_ID"], "20261103T100000");
    assert_eq!(pre["BARMAN_PHASE"], "pre");
    assert_eq!(pre["BARMAN_STATUS"], "DONE");
    let errors: Vec<&String> = dumps
        .values()
        .filter(|d| d.contains("BARMAN_ERROR=Ignoring deletion of WAL file"))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("BARMAN_SEGMENT=000000010000000000000002\n"));

    // Retry hooks: 62 lets the deletion go on, as does 63 after it (only logged).
    exit_code(&pair, "pre_delete_retry_script", Some(62));
    exit_code(&pair, "pre_wal_delete_retry_script", Some(62));
    exit_code(&pair, "post_delete_retry_script", Some(63));
    exit_code(&pair, "post_wal_delete_retry_script", Some(63));
    pair.compare(&["delete", "snap", "20261103T100000"]);
    let dumps = same_dumps(&pair, "delete with retry hooks exiting 62 and 63");
    assert!(
        dumps
            .keys()
            .last()
            .unwrap()
            .ends_with("-post_delete_script")
    );
    assert!(
        !pair
            .ours
            .world
            .path("home/snap/meta/20261103T100000-backup.info")
            .exists()
    );

    // 63 before: the deletion stops before anything goes (Barman's exception).
    exit_code(&pair, "pre_delete_retry_script", Some(63));
    let out = pair.compare(&["delete", "snap", "20261104T100000"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains(
            "Abort 'pre_delete_retry_script' retry hook script (./dump.sh \
             pre_delete_retry_script, exit code: 63)"
        ),
        "{}",
        stderr(&out)
    );
    let dumps = same_dumps(&pair, "delete stopped by its pre retry hook");
    let names: Vec<&str> = dumps.keys().map(|k| &k[4..]).collect();
    assert_eq!(names, ["pre_delete_script", "pre_delete_retry_script"]);
    assert!(
        pair.ours
            .world
            .path("home/snap/meta/20261104T100000-backup.info")
            .exists()
    );

    // 63 before a WAL file: the deletion stops there too.
    exit_code(&pair, "pre_delete_retry_script", None);
    exit_code(&pair, "pre_wal_delete_retry_script", Some(63));
    let out = pair.compare(&["delete", "snap", "20261104T100000"]);
    assert_ne!(out.status.code(), Some(0));
    same_dumps(&pair, "delete stopped by a pre WAL retry hook");
}

#[test]
fn server_hooks_cron_retention_matches_barman() {
    let specs = [
        spec("20261102T100000", 5, 6),
        spec("20261103T100000", 8, 9),
        spec("20261104T100000", 11, 12),
    ];
    let wals: Vec<u32> = (1..=13).collect();
    let extra = format!(
        "retention_policy = REDUNDANCY 1\n{}",
        hook_lines(&DELETE_HOOKS)
    );
    let pair = Pair::new("srvhookcron", &extra, &specs, &wals);
    install_dump(&pair);
    compare_cron(&pair);
    let dumps = same_dumps(&pair, "cron");
    let deleted: Vec<&str> = dumps
        .iter()
        .filter(|(k, _)| k.ends_with("-pre_delete_script"))
        .map(|(_, d)| env_of(d)["BARMAN_BACKUP_ID"])
        .collect();
    assert_eq!(deleted, ["20261102T100000", "20261103T100000"]);
    assert!(dumps.keys().any(|k| k.ends_with("-post_wal_delete_script")));
}

#[test]
fn server_hooks_recovery_pre_hooks_match_barman() {
    let specs = [spec("20261102T100000", 5, 6)];
    let wals: Vec<u32> = (4..=7).collect();
    let pair = Pair::new("srvhookrec", &hook_lines(&RECOVERY_HOOKS), &specs, &wals);
    install_dump(&pair);
    // A recovery instance without the backup's snapshot attached: Barman runs the pre
    // hooks, then refuses.
    let instance = pair.ec2.recovery_instance("srvhookrecinst", &[]);
    let recover = |home: &crate::server_delete::Home, program: &Path, more: &[&str]| {
        let dest = home.world.path("dest").display().to_string();
        let mut args = vec![
            "recover",
            "snap",
            "20261102T100000",
            dest.as_str(),
            "--snapshot-recovery-instance",
            instance.name.as_str(),
            "--target-name",
            "rp1",
            "--target-action",
            "pause",
        ];
        args.extend(more);
        home.run(program, &args, &pair.ec2)
    };
    let compare = |more: &[&str], what: &str| {
        let theirs = recover(&pair.theirs, &python_barman(), more);
        let ours = recover(&pair.ours, &pair.ours.world.ours(), more);
        assert_eq!(
            stdout(&ours),
            stdout(&theirs),
            "{what}\n{}\n{}",
            stderr(&ours),
            stderr(&theirs)
        );
        let masked = |home: &crate::server_delete::Home, text: &str| {
            let mut text = home.masked(text);
            for (id, snap) in &home.snapshots {
                text = text.replace(snap, &format!("SNAP-OF-{id}"));
            }
            crate::server_world::prefixed_lines(&text)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            masked(&pair.ours, &stderr(&ours)),
            masked(&pair.theirs, &stderr(&theirs)),
            "{what}\nours: {}\nBarman's: {}",
            stderr(&ours),
            stderr(&theirs)
        );
        assert_eq!(ours.status.code(), theirs.status.code(), "{what}");
        ours
    };
    let out = compare(&["--standby-mode", "--target-tli", "1"], "refused recovery");
    assert!(
        stderr(&out).contains("are not attached to recovery instance"),
        "{}",
        stderr(&out)
    );
    let dumps = same_dumps(&pair, "refused recovery");
    let names: Vec<&str> = dumps.keys().map(|k| &k[4..]).collect();
    assert_eq!(names, ["pre_recovery_script", "pre_recovery_retry_script"]);
    let env = env_of(dumps.values().next().unwrap());
    assert_eq!(env["BARMAN_DESTINATION_DIRECTORY"], "<DIR>/dest");
    assert_eq!(env["BARMAN_REMOTE_COMMAND"], "");
    assert_eq!(env["BARMAN_TABLESPACES"], "");
    assert!(
        env["BARMAN_RECOVER_OPTIONS"].contains("\"target_tli\": 1"),
        "{env:?}"
    );

    // 63 from the pre retry hook: Barman stops before the recovery (an exception).
    exit_code(&pair, "pre_recovery_retry_script", Some(63));
    let out = compare(&[], "recovery stopped by its pre retry hook");
    assert!(
        stderr(&out).contains(
            "Abort 'pre_recovery_retry_script' retry hook script (./dump.sh \
             pre_recovery_retry_script, exit code: 63)"
        ),
        "{}",
        stderr(&out)
    );
    same_dumps(&pair, "recovery stopped by its pre retry hook");
    // 62: it goes on (to the refusal).
    exit_code(&pair, "pre_recovery_retry_script", Some(62));
    let out = compare(&[], "recovery after 62");
    assert!(stderr(&out).contains("are not attached to recovery instance"));
    same_dumps(&pair, "recovery after 62");

    // A remote command that cannot connect: Barman fails before the hooks.
    exit_code(&pair, "pre_recovery_retry_script", None);
    let out = compare(
        &[
            "--remote-ssh-command",
            "ssh -o BatchMode=yes -o ConnectTimeout=5 nowhere.invalid",
        ],
        "recovery with a remote command that cannot connect",
    );
    assert_ne!(out.status.code(), Some(0));
    let dumps = same_dumps(&pair, "recovery with a remote command that cannot connect");
    assert!(dumps.is_empty(), "{dumps:?}");
}

#[test]
fn server_hooks_wal_directory_removed_whole_matches_barman() {
    // Every WAL of the hash directory goes: Barman runs all the pre hooks, removes the
    // directory, then runs all the post hooks.
    let specs = [spec("20261102T100000", 5, 6), spec("20261103T100000", 8, 9)];
    let wals: Vec<u32> = (1..=7).collect();
    let pair = Pair::new("srvhookwhole", &hook_lines(&DELETE_HOOKS), &specs, &wals);
    install_dump(&pair);
    pair.compare(&["delete", "snap", "20261102T100000"]);
    let dumps = same_dumps(&pair, "delete emptying a hash directory");
    let names: Vec<&str> = dumps.keys().map(|k| &k[4..]).collect();
    // 7 segments and a .backup file: 16 pre hooks, then 16 post hooks.
    let pre = names
        .iter()
        .position(|n| n.starts_with("post_wal"))
        .unwrap();
    assert_eq!(pre, 2 + 16, "{names:?}");
    assert!(names[2..pre].iter().all(|n| n.starts_with("pre_wal")));
    assert!(
        !pair
            .ours
            .world
            .path("home/snap/wals/0000000100000000")
            .exists()
    );
}
