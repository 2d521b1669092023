//! Python Barman's own AWS snapshot backup cycle against the EC2 fake and the findmnt
//! stand-in (see `ec2`): backup of a real cluster whose PGDATA lies on a "disk", backup-show,
//! restore onto a recovery instance whose volume is made from the snapshot, delete, and a
//! locked snapshot refusing deletion. It proves the fakes are faithful enough for Barman
//! 3.20.1, so that our commands can be tested against them and compared with Barman.

use std::process::Output;
use std::time::Instant;

use serde_json::{Value, json};

use crate::ec2::*;
use crate::postgres::Cluster;
use crate::support::*;

/// Runs one of Barman's commands: (command, options, arguments after the URL).
type Run<'a> = dyn Fn(&str, &[&str], &[&str]) -> Output + 'a;

/// Barman's backup IDs of server `srv`, oldest first (barman-cloud-backup-list's JSON).
fn barman_backup_ids(run: &Run) -> Vec<String> {
    let out = run("barman-cloud-backup-list", &["--format", "json"], &["srv"]);
    assert_success(&out, "barman-cloud-backup-list");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    list["backups_list"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn barman_snapshot_backup_show_restore_delete_and_lock() {
    let started = Instant::now();
    let world = Ec2World::new("snapbarman", 1);
    let volume = world.volume(0).clone();

    // The source disk: the cluster's root directory, PGDATA at <disk>/data.
    let source = Cluster::initdb("snapdisk");
    source.start();
    source.psql("create table t as select generate_series(1, 1000) as i");
    let disk = source.root.path().to_path_buf();
    let disk_text = disk.display().to_string();
    let mounts = FakeMounts::new(0);

    let mut env = world.env();
    env.extend(mounts.env());
    let dest = Destination::new(Service::S3, "snapbarman");
    let run = |command: &str, options: &[&str], rest: &[&str]| -> Output {
        barman_command(&dest, command, options, rest)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run Python Barman")
    };
    assert_success(
        &run("barman-cloud-check-wal-archive", &[], &["srv"]),
        "creating the bucket",
    );
    let mut options = source.backup_options();
    options.extend([
        "--snapshot-instance".to_string(),
        world.instance_name().to_string(),
        "--snapshot-disk".to_string(),
        volume.name.clone(),
    ]);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();

    // -- precondition: the disk must be mounted ----------------------------------------------
    let out = run("barman-cloud-backup", &options, &["srv"]);
    assert_exit(&out, 4, "backup of an unmounted disk");
    assert!(
        stderr(&out).contains(
            "WARNING: Error resolving mount point: Could not find device /dev/sdf at any mount point\n"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "ERROR: Barman cloud backup exception: Cannot find disks mounted on compute instance {}: {}\n",
            world.instance_name(),
            volume.name
        )),
        "{}",
        stderr(&out)
    );
    assert!(barman_backup_ids(&run).is_empty());
    assert!(world.snapshots_of_volume(&volume.id).is_empty());

    // -- backup -------------------------------------------------------------------------------
    mounts.mount(&volume.device, &disk, DEFAULT_MOUNT_OPTIONS);
    let first_call = world.tool_calls().last().unwrap().seq;
    let out = run("barman-cloud-backup", &options, &["srv"]);
    assert_success(&out, "Barman's snapshot backup");
    let ids = barman_backup_ids(&run);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let backup_id = ids[0].clone();

    let snapshots = world.snapshots_of_volume(&volume.id);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let snapshot = snapshots[0].clone();
    let snapshot_name = format!("{}-{}", volume.name, backup_id.to_lowercase());
    assert_eq!(snapshot.name(), Some(snapshot_name.as_str()));
    assert_eq!(snapshot.tags.len(), 1, "{:?}", snapshot.tags);
    assert_eq!(snapshot.state, "completed");
    // Barman's EC2 calls, in order.
    let calls: Vec<Call> = world
        .tool_calls()
        .into_iter()
        .filter(|c| c.seq > first_call)
        .collect();
    let actions: Vec<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            // preconditions: instance_exists, then get_attached_volumes
            "DescribeInstances",
            "DescribeInstances",
            "DescribeVolumes",
            // the backup: get_attached_volumes, take_snapshot_backup, the waiter
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeInstances",
            "CreateSnapshot",
            "DescribeSnapshots"
        ],
        "{calls:#?}"
    );
    assert!(calls.iter().all(|c| c.status == Some(200)), "{calls:#?}");
    assert_eq!(
        calls[0].param("Filter.1.Value.1"),
        Some(world.instance_name())
    );
    let create = &calls[6];
    assert_eq!(create.param("VolumeId"), Some(volume.id.as_str()));
    assert_eq!(
        create.param("TagSpecification.1.Tag.1.Value"),
        Some(snapshot_name.as_str())
    );
    assert_eq!(calls[7].param("SnapshotId.1"), Some(snapshot.id.as_str()));

    // -- backup-show -------------------------------------------------------------------------
    let out = run("barman-cloud-backup-show", &[], &["srv", &backup_id]);
    assert_success(&out, "barman-cloud-backup-show");
    let block = format!(
        "  Snapshot information:
    provider             : aws
    account_id           : 123456789012
    region               : us-east-1

    device_name          : /dev/sdf
    snapshot_id          : {}
    snapshot_lock_mode   : None
    snapshot_name        : {snapshot_name}
    Mount point          : {disk_text}
    Mount options        : rw,noatime

  Base backup information:
",
        snapshot.id
    );
    assert!(stdout(&out).contains(&block), "{}", stdout(&out));
    let out = run(
        "barman-cloud-backup-show",
        &["--format", "json"],
        &["srv", &backup_id],
    );
    assert_success(&out, "barman-cloud-backup-show --format json");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["srv"]["snapshots_info"],
        serde_json::json!({
            "provider": "aws",
            "provider_info": {"account_id": snapshot.owner_id, "region": "us-east-1"},
            "snapshots": [{
                "mount": {"mount_options": "rw,noatime", "mount_point": disk_text},
                "provider": {
                    "device_name": "/dev/sdf",
                    "snapshot_id": snapshot.id,
                    "snapshot_name": snapshot_name,
                    "snapshot_lock_mode": null,
                },
            }],
        })
    );
    let label = shown["srv"]["backup_label"].as_str().unwrap();
    let label = label
        .trim_matches('\'')
        .replace("\\n", "\n")
        .replace("\\\\", "\\");
    assert!(
        label.contains(&format!("LABEL: Barman backup srv {backup_id}\n")),
        "{label}"
    );

    // -- restore -----------------------------------------------------------------------------
    source.pg_ctl("stop");
    let before = file_names(&source.data());
    assert!(!before.contains(&"backup_label".to_string()));
    let recovery = world.recovery_instance("snaprecovery", &[(&snapshot.id, "/dev/sdk")]);
    let clone = recovery.volumes[0].clone();
    assert_eq!(clone.snapshot_id.as_deref(), Some(snapshot.id.as_str()));
    let data = source.data();
    let restore = || {
        run(
            "barman-cloud-restore",
            &["--snapshot-recovery-instance", &recovery.name],
            &["srv", &backup_id, data.to_str().unwrap()],
        )
    };
    // The clone is not mounted (the table has the source's /dev/sdf only).
    let out = restore();
    assert_exit(&out, 4, "restore with the clone unmounted");
    assert!(
        stderr(&out).contains(&format!(
            "ERROR: Barman cloud restore exception: Error checking mount points: Error finding mount point for disk {}: Could not find device /dev/sdk at any mount point\n",
            clone.id
        )),
        "{}",
        stderr(&out)
    );
    // Mounted where the source was, with other options.
    mounts.unmount(&volume.device);
    mounts.mount(&clone.device, &disk, "rw,relatime");
    let out = restore();
    assert_exit(&out, 4, "restore with other mount options");
    assert!(
        stderr(&out).contains(&format!(
            "ERROR: Barman cloud restore exception: Error checking mount options: Disk {} cloned from snapshot {} is mounted with rw,relatime but rw,noatime was expected.\n",
            clone.id, snapshot.id
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(file_names(&data), before, "failed restores wrote nothing");
    // As the source was: only the backup label is written.
    mounts.mount(&clone.device, &disk, DEFAULT_MOUNT_OPTIONS);
    let out = restore();
    assert_success(&out, "Barman's snapshot restore");
    assert_eq!(stdout(&out), "");
    let mut expected = before.clone();
    expected.push("backup_label".into());
    expected.sort();
    assert_eq!(file_names(&data), expected);
    assert_eq!(
        std::fs::read_to_string(data.join("backup_label")).unwrap(),
        label
    );

    // -- delete ------------------------------------------------------------------------------
    let last = world.tool_calls().last().unwrap().seq;
    let out = run(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &backup_id],
    );
    assert_success(&out, "Barman's delete of the snapshot backup");
    assert_eq!(stdout(&out), "");
    assert!(
        world.snapshot(&snapshot.id).is_none(),
        "snapshot not deleted"
    );
    assert!(barman_backup_ids(&run).is_empty());
    let deletes: Vec<(String, Option<u16>)> = world
        .tool_calls()
        .into_iter()
        .filter(|c| c.seq > last)
        .map(|c| (c.action, c.status))
        .collect();
    assert_eq!(
        deletes,
        [
            ("DescribeSnapshots".to_string(), Some(200)),
            ("DeleteSnapshot".to_string(), Some(200))
        ]
    );

    // -- a locked snapshot refuses deletion --------------------------------------------------
    std::fs::remove_file(data.join("backup_label")).unwrap();
    mounts.unmount(&clone.device);
    mounts.mount(&volume.device, &disk, DEFAULT_MOUNT_OPTIONS);
    source.start();
    wait_past(&backup_id);
    let mut locked_options = options.clone();
    locked_options.extend([
        "--aws-snapshot-lock-mode",
        "governance",
        "--aws-snapshot-lock-duration",
        "1",
    ]);
    let last = world.tool_calls().last().unwrap().seq;
    let out = run("barman-cloud-backup", &locked_options, &["srv"]);
    assert_success(&out, "Barman's backup with a snapshot lock");
    let ids = barman_backup_ids(&run);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let locked_id = ids[0].clone();
    let snapshots = world.snapshots_of_volume(&volume.id);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let locked = snapshots[0].id.clone();
    let lock = world.lock_of(&locked).expect("the snapshot is locked");
    assert_eq!(
        (&lock["lockMode"], &lock["lockState"], &lock["lockDuration"]),
        (&json!("governance"), &json!("governance"), &json!("1"))
    );
    let lock_calls: Vec<Call> = world
        .tool_calls()
        .into_iter()
        .filter(|c| c.seq > last && c.action == "LockSnapshot")
        .collect();
    assert_eq!(lock_calls.len(), 1);
    assert_eq!(
        lock_calls[0].params,
        [
            ("Action", "LockSnapshot"),
            ("LockDuration", "1"),
            ("LockMode", "governance"),
            ("SnapshotId", locked.as_str()),
            ("Version", "2016-11-15"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
    let out = run("barman-cloud-backup-show", &[], &["srv", &locked_id]);
    assert!(
        stdout(&out).contains("    snapshot_lock_mode   : governance\n"),
        "{}",
        stdout(&out)
    );

    let out = run(
        "barman-cloud-backup-delete",
        &[],
        &["srv", "-b", &locked_id],
    );
    assert_exit(&out, 1, "Barman's delete of a locked snapshot");
    assert!(
        stderr(&out).ends_with(&format!(
            "Locked snapshot: {locked}.\nBefore deleting a snapshot, please ensure that it is not locked or that the lock has expired.\n"
        )),
        "{}",
        stderr(&out)
    );
    assert!(world.snapshot(&locked).is_some());
    assert_eq!(barman_backup_ids(&run), vec![locked_id]);

    eprintln!("Barman snapshot cycle: {:?}", started.elapsed());
}
