//! backup-list and backup-show on a catalog written by Barman 3.20.1's barman-cloud-backup:
//! our output must be Barman's, byte for byte, console and JSON.

use crate::postgres::Cluster;
use crate::support::*;

fn list_and_show_match_barman(service: Service) {
    let dest = Destination::create(service, "catalog");
    let scripts = temp_dir("catalogscripts");
    let cluster = Cluster::archiving("catalog", &dest, scripts.path(), "");
    cluster.pgbench(&["-i", "-s", "1", "-q"]);
    let port = cluster.port.to_string();
    let socket = cluster.socket_dir();
    let connection = [
        "--immediate-checkpoint",
        "-h",
        socket.as_str(),
        "-p",
        port.as_str(),
        "-U",
        "postgres",
    ];
    let first = dest.barman("barman-cloud-backup", &connection, &["srv"]);
    assert_success(&first, "Barman's first backup");
    // Backup IDs have a one-second resolution.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut named = connection.to_vec();
    named.extend(["-n", "nightly", "--gzip"]);
    assert_success(
        &dest.barman("barman-cloud-backup", &named, &["srv"]),
        "Barman's named backup",
    );

    let json = stdout(&dest.barman("barman-cloud-backup-list", &["--format", "json"], &["srv"]));
    let first_id = json.split("\"backup_id\": \"").nth(1).unwrap()[..15].to_string();
    assert_success(
        &dest.barman(
            "barman-cloud-backup-keep",
            &["--target", "standalone"],
            &["srv", &first_id],
        ),
        "Barman's keep annotation",
    );

    assert_same_output(&dest, "barman-cloud-backup-list", &[], &["srv"]);
    let listing = stdout(&dest.ours("barman-cloud-backup-list", &["srv"]));
    assert_eq!(listing.lines().count(), 3, "{listing}");
    assert!(
        listing.contains("KEEP:STANDALONE") && listing.contains("nightly"),
        "{listing}"
    );
    assert_same_output(
        &dest,
        "barman-cloud-backup-list",
        &["--format", "json"],
        &["srv"],
    );
    for id in [
        first_id.as_str(),
        "first",
        "last",
        "latest",
        "oldest",
        "nightly",
    ] {
        assert_same_output(&dest, "barman-cloud-backup-show", &[], &["srv", id]);
        assert_same_output(
            &dest,
            "barman-cloud-backup-show",
            &["--format", "json"],
            &["srv", id],
        );
    }
    // Unknown names, missing IDs, an empty server.
    assert_same_output(
        &dest,
        "barman-cloud-backup-show",
        &[],
        &["srv", "no-such-name"],
    );
    assert_same_output(
        &dest,
        "barman-cloud-backup-show",
        &[],
        &["srv", "20000101T000000"],
    );
    assert_same_output(
        &dest,
        "barman-cloud-backup-show",
        &[],
        &["srv", "last-failed"],
    );
    assert_same_output(&dest, "barman-cloud-backup-list", &[], &["other"]);
}

#[test]
fn list_and_show_match_barman_s3() {
    list_and_show_match_barman(Service::S3);
}

#[test]
fn list_and_show_match_barman_azure() {
    list_and_show_match_barman(Service::Azure);
}
