//! Write options of wal-archive on real servers: tags, encryption, Azure block uploads.

use crate::support::*;

/// Tags (or GCS metadata) of one object, read by the SDKs Barman uses.
fn object_tags(dest: &Destination, key: &str) -> String {
    let out = dest
        .sdk_script("object_tags.py")
        .args([&dest.bucket(), key])
        .output()
        .unwrap();
    assert_success(&out, "reading object tags");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn tags_and_history_tags_reach_the_objects() {
    for service in [Service::S3, Service::Azure, Service::Gcs] {
        let dest = Destination::create(service, "tags");
        let work = temp_dir("tags");
        let segment = work.path().join("000000010000000000000001");
        let history = work.path().join("00000002.history");
        std::fs::write(&segment, b"segment").unwrap();
        std::fs::write(&history, b"1\t0/3000000\tno recovery target specified\n").unwrap();
        let options = [
            "--tag",
            "env,prod",
            "--tag",
            "team,db",
            "--history-tag",
            "kind,history",
        ];
        for file in [&segment, &history] {
            let out = dest.ours_with(
                "barman-cloud-wal-archive",
                &options,
                &["srv", file.to_str().unwrap()],
            );
            assert_success(&out, &format!("archive with tags on {service:?}"));
        }
        assert_eq!(
            object_tags(
                &dest,
                "pg/srv/wals/0000000100000000/000000010000000000000001"
            ),
            r#"{"env": "prod", "team": "db"}"#,
            "segment tags on {service:?}"
        );
        assert_eq!(
            object_tags(&dest, "pg/srv/wals/00000002.history"),
            r#"{"kind": "history"}"#,
            "history tags on {service:?}"
        );
    }
}

fn round_trip_with(
    dest: &Destination,
    archive_options: &[&str],
    restore_options: &[&str],
    len: usize,
) {
    let work = temp_dir("opts");
    let wal = work.path().join("000000010000000000000007");
    let content = wal_content(7, len, len / 2);
    std::fs::write(&wal, &content).unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        archive_options,
        &["srv", wal.to_str().unwrap()],
    );
    assert_success(&out, &format!("archive with {archive_options:?}"));
    let target = work.path().join("out");
    let out = dest.barman(
        "barman-cloud-wal-restore",
        restore_options,
        &["srv", "000000010000000000000007", target.to_str().unwrap()],
    );
    assert_success(
        &out,
        &format!("Barman restores what we archived with {archive_options:?}"),
    );
    assert_eq!(std::fs::read(&target).unwrap(), content);
}

#[test]
fn s3_server_side_encryption() {
    let dest = Destination::create(Service::S3, "sse");
    round_trip_with(&dest, &["-e", "AES256"], &[], 1 << 20);

    let work = temp_dir("ssec");
    let key_file = work.path().join("key");
    // base64 of 32 bytes 0..31
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let uri = format!("file://{}", key_file.display());
    let dest = Destination::create(Service::S3, "ssec");
    round_trip_with(
        &dest,
        &["--sse-customer-key", &uri],
        &["--sse-customer-key", &uri],
        1 << 20,
    );

    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["--sse-kms-key-id", "k"],
        &["srv", key_file.to_str().unwrap()],
    );
    assert_exit(&out, 3, "invalid WAL name is checked first");
    std::fs::write(work.path().join("000000010000000000000009"), b"x").unwrap();
    let wal = work.path().join("000000010000000000000009");
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["--sse-kms-key-id", "k"],
        &["srv", wal.to_str().unwrap()],
    );
    assert_exit(&out, 4, "--sse-kms-key-id without -e aws:kms");
    let bad_key = work.path().join("badkey");
    std::fs::write(&bad_key, "c2hvcnQ=").unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &[
            "--sse-customer-key",
            &format!("file://{}", bad_key.display()),
        ],
        &["srv", wal.to_str().unwrap()],
    );
    assert_exit(&out, 4, "SSE-C key of the wrong length");
}

#[test]
fn azure_encryption_scope_and_block_uploads() {
    let dest = Destination::create(Service::Azure, "scope");
    // Azurite checks shared-key signatures, so this also proves the re-signed requests.
    round_trip_with(&dest, &["--encryption-scope", "scope1"], &[], 1 << 20);
    let dest = Destination::create(Service::Azure, "blocks");
    round_trip_with(
        &dest,
        &[
            "--max-single-put-size",
            "1MB",
            "--max-block-size",
            "256KB",
            "--max-concurrency",
            "4",
        ],
        &[],
        3 << 20,
    );
}

#[test]
fn gcs_kms_key_name() {
    let dest = Destination::create(Service::Gcs, "kms");
    round_trip_with(
        &dest,
        &[
            "--kms-key-name",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k",
        ],
        &[],
        1 << 20,
    );
}

#[test]
fn aws_profiles_and_irsa() {
    let work = temp_dir("profile");
    let credentials = work.path().join("credentials");
    std::fs::write(
        &credentials,
        "[archiver]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\n",
    )
    .unwrap();
    let config = work.path().join("config");
    std::fs::write(&config, "[profile archiver]\nregion = us-east-1\n").unwrap();
    let mut dest = Destination::create(Service::S3, "profile");
    dest.env.retain(|(k, _)| !k.starts_with("AWS_"));
    dest.env.push((
        "AWS_SHARED_CREDENTIALS_FILE".into(),
        credentials.display().to_string(),
    ));
    dest.env
        .push(("AWS_CONFIG_FILE".into(), config.display().to_string()));
    dest.env
        .push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
    let wal = work.path().join("000000010000000000000001");
    std::fs::write(&wal, b"profile").unwrap();
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["-P", "archiver"],
        &["srv", wal.to_str().unwrap()],
    );
    assert_success(&out, "archive with a named profile");
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["--profile", "archiver"],
        &["srv", wal.to_str().unwrap()],
    );
    assert_success(&out, "deprecated --profile spelling");
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["-P", "nosuchprofile"],
        &["srv", wal.to_str().unwrap()],
    );
    assert_exit(&out, 4, "unknown profile");
    assert!(!stderr(&out).contains("profilesecret"), "{}", stderr(&out));
    let out = dest.ours_with(
        "barman-cloud-wal-archive",
        &["--aws-irsa"],
        &["srv", wal.to_str().unwrap()],
    );
    assert_exit(&out, 4, "--aws-irsa without the web identity variables");
    assert!(
        stderr(&out).contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "{}",
        stderr(&out)
    );
}
