//! `barman check` of GCP and Azure snapshot servers against Python Barman 3.20.1 on one
//! barman_home (see `server_check` for AWS and how the `findmnt` stand-in is reached over
//! the real sshd): a real PostgreSQL 15 whose PGDATA is "mounted" from a disk of an
//! instance in the Compute Engine fake (`/dev/disk/by-id/google-<device_name>`) or of a
//! VM in the ARM fake (`/dev/disk/azure/scsi1/lun<N>`). Python Barman reaches the fakes
//! through the test-only `sitecustomize` (`barman_compute_fake_env`); both tools must print
//! the same stdout and exit with the same code.

use serde_json::json;

use crate::ec2::barman_compute_fake_env;
use crate::server_world::{CheckHost, python_barman};
use crate::snapshot_azure::{Arm, lun_device};
use crate::snapshot_gcp::{PROJECT, REGION, ZONE, control, fake_base, key_file};
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
snapshot_instance = {instance}
snapshot_disks = {disks}
archiver = on
check_timeout = 30
{provider}";

/// The checks of a healthy snapshot server, the first time (an empty archive: the check
/// switches a WAL and waits for it).
const HEALTHY: &str = "Server snap:\n\
    \tPostgreSQL: OK\n\
    \tsuperuser or standard user with backup privileges: OK\n\
    \twal_level: OK\n\
    \tdirectories: OK\n\
    \tretention policy settings: OK\n\
    \tbackup maximum age: OK (no last_backup_maximum_age provided)\n\
    \tbackup minimum size: OK (0 B)\n\
    \twal maximum age: OK (no last_wal_maximum_age provided)\n\
    \twal size: OK (0 B)\n\
    \tcompression settings: OK\n\
    \tfailed backups: OK (there are 0 failed backups)\n\
    \tminimum redundancy requirements: OK (have 0 non-incremental backups, expected at least 0)\n\
    \tssh: OK (PostgreSQL server)\n\
    \tsnapshot instance exists: OK\n\
    \tsnapshot disks attached to instance: OK\n\
    \tsnapshot disks mounted on instance: OK\n\
    \tsystemid coherence: OK (no system Id stored on disk)\n\
    \tarchive_mode: OK\n\
    \tarchive_command: OK\n\
    \tcontinuous archiving: OK\n\
    \tarchiver errors: OK\n";

fn conf(host: &CheckHost, instance: &str, disks: &str, provider: &str) {
    host.write_conf(
        &CONF
            .replace("{ssh}", &host.good_ssh.display().to_string())
            .replace("{instance}", instance)
            .replace("{disks}", disks)
            .replace("{provider}", provider),
    );
}

/// Our first check (alone: it archives the first WAL), then the same as Barman's.
fn healthy(host: &CheckHost) {
    let ours = host.run(&host.world.ours(), &["check", "snap"]);
    assert_eq!(stdout(&ours), HEALTHY, "{}", stderr(&ours));
    assert_eq!(ours.status.code(), Some(0));
    let out = host.compare(&["check", "snap"]);
    assert_eq!(stdout(&out), HEALTHY);
    let out = host.compare(&["check", "--nagios", "snap"]);
    assert!(stdout(&out).starts_with("BARMAN OK"), "{}", stdout(&out));
    host.compare(&["-f", "json", "check", "snap"]);
}

/// `HEALTHY` up to and including `line`, a check line.
fn healthy_until(line: &str) -> String {
    let end = HEALTHY.find(line).expect(line) + line.len();
    HEALTHY[..end].to_string()
}

/// `HEALTHY` with check line `check` (its whole line) replaced by `with`.
fn healthy_but(check: &str, with: &str) -> String {
    let start = HEALTHY.find(&format!("\t{check}: ")).expect(check);
    let end = start + HEALTHY[start..].find('\n').unwrap() + 1;
    format!("{}{with}{}", &HEALTHY[..start], &HEALTHY[end..])
}

/// The same check of `snap` by both tools, ending in failure (exit 1) with stdout
/// `expected`; returns our stderr.
fn failing(host: &CheckHost, expected: &str) -> String {
    let out = host.compare(&["check", "snap"]);
    assert_eq!(stdout(&out), expected, "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    host.compare(&["check", "--nagios", "snap"]);
    stderr(&out)
}

/// A provider error ends the checks after `ssh` or `snapshot instance exists` (`last`):
/// Barman's exception (its text is Google's or Azure's library's; ours says what is wrong,
/// `ours`), then where to look. The JSON writer prints the same.
fn stops_with_exception(host: &CheckHost, last: &str, ours: &str) {
    let text = failing(host, &healthy_until(last));
    assert!(
        text.starts_with(&format!("EXCEPTION: {ours}"))
            && text.ends_with("\nSee log file for more details.\n"),
        "{text}"
    );
    let theirs = host.run(&python_barman(), &["check", "snap"]);
    let theirs = stderr(&theirs);
    assert!(
        theirs.starts_with("EXCEPTION: ") && theirs.ends_with("\nSee log file for more details.\n"),
        "{theirs}"
    );
    // JSON: the same but for the exception's text.
    let json = |program: &std::path::Path| {
        let out = host.run(program, &["-f", "json", "check", "snap"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let mut value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let exception = value
            .as_object_mut()
            .unwrap()
            .remove("_EXCEPTION")
            .expect("_EXCEPTION");
        let [text] = exception.as_array().unwrap().as_slice() else {
            panic!("{exception}")
        };
        assert!(
            text.as_str()
                .unwrap()
                .ends_with("\nSee log file for more details."),
            "{text}"
        );
        (value, text.as_str().unwrap().to_string())
    };
    let (ours_json, ours_text) = json(&host.world.ours());
    let (theirs_json, _) = json(&python_barman());
    assert_eq!(ours_json, theirs_json);
    assert!(ours_text.starts_with(ours), "{ours_text}");
}

#[test]
fn check_of_a_gcp_snapshot_server_matches_barman() {
    let run = unique_name("chkgcp").to_lowercase();
    let instance = format!("{run}-pg");
    let (boot, data, regional) = (
        format!("{run}-boot"),
        format!("{run}-data"),
        format!("{run}-regional"),
    );
    control(
        "POST",
        "/_fake/disk",
        Some(json!({"project": PROJECT, "zone": ZONE, "name": boot})),
    );
    control(
        "POST",
        "/_fake/disk",
        Some(json!({"project": PROJECT, "zone": ZONE, "name": data})),
    );
    control(
        "POST",
        "/_fake/disk",
        Some(json!({"project": PROJECT, "region": REGION, "name": regional})),
    );
    control(
        "POST",
        "/_fake/instance",
        Some(
            json!({"project": PROJECT, "zone": ZONE, "name": instance, "disks": [
                {"name": boot, "device_name": "persistent-disk-0", "boot": true},
                {"name": data, "device_name": "data-dev"},
                {"name": regional, "region": REGION, "device_name": "regional-dev"},
            ]}),
        ),
    );
    let key_dir = temp_dir("chkgcpkey");
    let (key, _) = key_file(key_dir.path(), &format!("{}/token", fake_base()));
    let env = vec![
        (
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE".to_string(),
            required_env("BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT"),
        ),
        (
            "GOOGLE_APPLICATION_CREDENTIALS".to_string(),
            key.display().to_string(),
        ),
    ];
    let mut host = CheckHost::new("chkgcp", "snap", env);
    host.barman_env = barman_compute_fake_env("BARMAN_RS_FAKE_GCP_COMPUTE", &fake_base());
    let device = "/dev/disk/by-id/google-data-dev";
    host.mounts
        .mount(device, &host.cluster.data(), "rw,noatime");
    let provider = format!("snapshot_provider = gcp\ngcp_project = {PROJECT}\ngcp_zone = {ZONE}\n");

    // Healthy.
    conf(&host, &instance, &data, &provider);
    healthy(&host);

    // An unknown disk: attached FAILED, mounted OK (only attached disks are examined).
    conf(&host, &instance, &format!("{data},nosuchdisk"), &provider);
    failing(
        &host,
        &healthy_but(
            "snapshot disks attached to instance",
            &format!(
                "\tsnapshot disks attached to instance: FAILED (cannot find snapshot disks \
                 attached to instance {instance}: nosuchdisk)\n"
            ),
        ),
    );

    // The disk not mounted.
    conf(&host, &instance, &data, &provider);
    host.mounts.unmount(device);
    failing(
        &host,
        &healthy_but(
            "snapshot disks mounted on instance",
            &format!(
                "\tsnapshot disks mounted on instance: FAILED (cannot find snapshot disks \
                 mounted on instance {instance}: {data})\n"
            ),
        ),
    );
    host.mounts
        .mount(device, &host.cluster.data(), "rw,noatime");

    // An unknown instance: the remaining snapshot checks are skipped.
    let missing = format!("{run}-nosuch");
    conf(&host, &missing, &data, &provider);
    let expected = healthy_but(
        "snapshot instance exists",
        &format!("\tsnapshot instance exists: FAILED (cannot find compute instance {missing})\n"),
    )
    .replace("\tsnapshot disks attached to instance: OK\n", "")
    .replace("\tsnapshot disks mounted on instance: OK\n", "");
    failing(&host, &expected);

    // A regional disk named: Barman looks it up among the zone's disks and fails the
    // command; ours refuses the regional disk.
    conf(&host, &instance, &format!("{data},{regional}"), &provider);
    stops_with_exception(
        &host,
        "\tsnapshot instance exists: OK\n",
        &format!("Disk {regional} attached to instance {instance} is a regional disk"),
    );

    // No gcp_zone: the server is not disabled; the first API call fails the command.
    conf(
        &host,
        &instance,
        &data,
        &format!("snapshot_provider = gcp\ngcp_project = {PROJECT}\n"),
    );
    stops_with_exception(
        &host,
        "\tssh: OK (PostgreSQL server)\n",
        "a GCP zone (--gcp-zone) is required",
    );

    // Healthy again.
    conf(&host, &instance, &data, &provider);
    let out = host.compare(&["check", "snap"]);
    assert_eq!(stdout(&out), HEALTHY);
}

#[test]
fn check_of_an_azure_snapshot_server_matches_barman() {
    let arm = Arm::new("chkaz");
    let vm = arm.name("pg");
    let data = arm.name("data");
    arm.vm(&vm, &[(&data, 3)]);
    let mut host = CheckHost::new("chkaz", "snap", arm.env());
    host.barman_env = barman_compute_fake_env("BARMAN_RS_FAKE_ARM", &arm.endpoint);
    host.barman_env
        .push(("REQUESTS_CA_BUNDLE".into(), arm.ca.clone()));
    let device = lun_device(3);
    host.mounts
        .mount(&device, &host.cluster.data(), "rw,noatime");
    let provider = format!(
        "snapshot_provider = azure\nazure_subscription_id = {}\nazure_resource_group = {}\n\
         azure_credential = default\n",
        arm.subscription, arm.group
    );

    conf(&host, &vm, &data, &provider);
    healthy(&host);

    // An unknown disk.
    conf(&host, &vm, &format!("{data},nosuchdisk"), &provider);
    failing(
        &host,
        &healthy_but(
            "snapshot disks attached to instance",
            &format!(
                "\tsnapshot disks attached to instance: FAILED (cannot find snapshot disks \
                 attached to instance {vm}: nosuchdisk)\n"
            ),
        ),
    );

    // The disk not mounted.
    conf(&host, &vm, &data, &provider);
    host.mounts.unmount(&device);
    failing(
        &host,
        &healthy_but(
            "snapshot disks mounted on instance",
            &format!(
                "\tsnapshot disks mounted on instance: FAILED (cannot find snapshot disks \
                 mounted on instance {vm}: {data})\n"
            ),
        ),
    );
    host.mounts
        .mount(&device, &host.cluster.data(), "rw,noatime");

    // An unknown VM.
    let missing = arm.name("nosuch");
    conf(&host, &missing, &data, &provider);
    let expected = healthy_but(
        "snapshot instance exists",
        &format!("\tsnapshot instance exists: FAILED (cannot find compute instance {missing})\n"),
    )
    .replace("\tsnapshot disks attached to instance: OK\n", "")
    .replace("\tsnapshot disks mounted on instance: OK\n", "");
    failing(&host, &expected);

    // The OS disk named: only data disks count as attached.
    let os = format!("{vm}-os");
    conf(&host, &vm, &format!("{data},{os}"), &provider);
    failing(
        &host,
        &healthy_but(
            "snapshot disks attached to instance",
            &format!(
                "\tsnapshot disks attached to instance: FAILED (cannot find snapshot disks \
                 attached to instance {vm}: {os})\n"
            ),
        ),
    );

    // No azure_resource_group: the server is not disabled; the first API call fails the
    // command.
    conf(
        &host,
        &vm,
        &data,
        &format!(
            "snapshot_provider = azure\nazure_subscription_id = {}\nazure_credential = default\n",
            arm.subscription
        ),
    );
    stops_with_exception(
        &host,
        "\tssh: OK (PostgreSQL server)\n",
        "Incomplete options for snapshot backup - missing: azure_resource_group",
    );

    // Healthy again.
    conf(&host, &vm, &data, &provider);
    let out = host.compare(&["check", "snap"]);
    assert_eq!(stdout(&out), HEALTHY);
}
