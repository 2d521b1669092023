//! `barman` with a set of configuration files: Python Barman and ours must print the same
//! stdout, the same `WARNING:`/`ERROR:`/`FATAL` lines on stderr and exit alike. (Both
//! also log each warning a second time on stderr, in log format, when `log_file` is unset;
//! those lines carry a time and a PID, so only the prefixed lines are compared.)

use std::path::PathBuf;
use std::process::Output;

use crate::server_world::World;
use crate::support::{required_env, stderr, stdout};

const GLOBAL: &str = "[barman]\nbarman_home = {home}\nbarman_user = root\nlog_level = INFO\n";

const TWO_SERVERS: &str = "
[pg1]
description = \"Main PostgreSQL\"
conninfo = host=pg1 user=barman password=secret
ssh_command = ssh postgres@pg1
archiver = on
backup_options = concurrent_backup

[old]
description = Decommissioned
active = false

[pg2]
description = Second
conninfo = host=pg2
ssh_command = ssh pg2
";

const SNAPSHOT_GZIP: &str = "
[snap]
description = Snapshot server
conninfo = host=pg3
ssh_command = ssh pg3
backup_method = snapshot
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123
snapshot_disks = pgdata
archiver = on
backup_options = concurrent_backup
backup_compression = gzip
";

#[test]
fn server_config_list_servers_console_json_minimal() {
    let world = World::new("server-config");
    let conf = world.write(
        "barman.conf",
        &format!("{GLOBAL}{TWO_SERVERS}{SNAPSHOT_GZIP}"),
    );
    let conf = conf.to_str().unwrap();
    let out = world.compare(&["-c", conf, "list-servers"]);
    assert_eq!(
        stdout(&out),
        "old - Decommissioned (inactive)\npg1 - Main PostgreSQL\npg2 - Second\n\
         snap - Snapshot server (WARNING: disabled)\n"
    );
    assert!(stderr(&out).contains("WARNING: No backup strategy set for server 'pg2'"));
    let out = world.compare(&["-c", conf, "-f", "json", "list-servers"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        json["snap"]["description"],
        "Snapshot server (WARNING: disabled)"
    );
    assert_eq!(json["_WARNING"].as_array().map(Vec::len), Some(3));
    world.compare(&["-c", conf, "list-servers", "--minimal"]);
    world.compare(&["-c", conf, "-q", "list-server"]);
}

#[test]
fn server_config_unknown_keys_invalid_values_interpolation() {
    let world = World::new("server-config");
    let conf = world.write(
        "barman.conf",
        &format!(
            // One unknown key in [barman] (`site`, from DEFAULT): Barman warns about those
            // in Python set order, which changes from run to run.
            "{GLOBAL}[DEFAULT]\nsite = eu\n\n[s1]\ndescription = %(site)s site\n\
             conninfo = host=x\nssh_command = ssh x\narchiver = sometimes\n\
             check_timeout = 1O\nsnapshot_disks = a,,b\nbackup_options = concurrent_backup\n\
             streaming_archiver = on\nmystery = 1\n"
        ),
    );
    let out = world.compare(&["-c", conf.to_str().unwrap(), "list-servers"]);
    assert_eq!(stdout(&out), "s1 - eu site (WARNING: disabled)\n");
}

#[test]
fn server_config_included_files_in_order_and_fatal_barman_section() {
    let world = World::new("server-config");
    let conf = world.write(
        "barman.conf",
        &format!("{GLOBAL}configuration_files_directory = {{dir}}/conf.d\n"),
    );
    world.write(
        "conf.d/20-b.conf",
        "[b]\ndescription = B wins\nconninfo = host=b\nssh_command = ssh b\n",
    );
    world.write("conf.d/10-a.conf", "[b]\ndescription = A first\n[a]\ndescription = A\nconninfo = host=a\nssh_command = ssh a\n");
    world.write("conf.d/notes.txt", "[ignored]\n");
    let conf = conf.to_str().unwrap();
    let out = world.compare(&["-c", conf, "list-servers"]);
    assert_eq!(stdout(&out), "a - A\nb - B wins\n");
    world.write("conf.d/30-global.conf", "[barman]\nlog_level = DEBUG\n");
    let out = world.compare(&["-c", conf, "list-servers"]);
    assert!(stderr(&out).contains(
        "FATAL: the configuration file 30-global.conf contains a not empty [barman] section"
    ));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn server_config_missing_file_version_and_usage_errors() {
    let world = World::new("server-config");
    let missing = world.path("nowhere.conf");
    let out = world.compare(&["-c", missing.to_str().unwrap(), "list-servers"]);
    assert_eq!(out.status.code(), Some(1));
    let out = world.compare(&["-v"]);
    assert_eq!(
        stdout(&out),
        "3.20.1 Barman by EnterpriseDB (www.enterprisedb.com)\n"
    );
    let conf = world.write("barman.conf", GLOBAL);
    let conf = conf.to_str().unwrap();
    for args in [
        vec!["-c", conf, "list-servers", "-f", "json"],
        vec!["-c", conf, "-f", "xml", "list-servers"],
        vec!["-c", conf, "bogus"],
    ] {
        let python = PathBuf::from(required_env("BARMAN_RS_TEST_BARMAN_BIN")).join("barman");
        let theirs = world.run(&python, &args);
        let ours = world.run(&world.path("barman"), &args);
        assert_eq!(ours.status.code(), Some(2), "{args:?}");
        assert_eq!(theirs.status.code(), Some(2), "{args:?}");
        let last = |o: &Output| stderr(o).lines().last().unwrap_or_default().to_string();
        if args.contains(&"bogus") {
            assert!(
                last(&ours).starts_with("barman: error: argument command: invalid choice: 'bogus'")
            );
        } else {
            assert_eq!(last(&ours), last(&theirs), "{args:?}");
        }
    }
}

#[test]
fn server_config_malformed_file_names_the_line() {
    let world = World::new("server-config");
    let conf = world.write("barman.conf", &format!("{GLOBAL}this is not ini\n"));
    let out = world.run(
        &world.path("barman"),
        &["-c", conf.to_str().unwrap(), "list-servers"],
    );
    assert_eq!(out.status.code(), Some(1));
    // Deliberate difference: Barman prints EXCEPTION and a traceback; we print one line
    // (and, as Barman, its copy from the not yet configured log).
    let expected = format!(
        "Configuration file '{}', line 5: expected 'key = value', a [section] header or a \
         comment, found 'this is not ini'",
        conf.display()
    );
    assert_eq!(
        stderr(&out).lines().collect::<Vec<_>>(),
        vec![format!("EXCEPTION: {expected}"), expected.clone()]
    );
}
