//! The integrity manifest (`base/<id>/barman-rs.manifest`) of our backups, on real
//! object stores with a real PostgreSQL 15: its entries are the stored objects (sizes and
//! SHA-256 computed here by Python from the downloaded bytes) and the backup_label inside
//! the data archive; Python Barman 3.20.1 lists, shows, restores, keeps and deletes such
//! backups as if the manifest were not there; the directory Barman's delete leaves with
//! only the manifest is invisible to our catalog and cleaned by our delete.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use barman_cloud::catalog::manifest::{
    BACKUP_LABEL_ENTRY, Digest256, IntegrityManifest, MANIFEST_NAME,
};

use crate::postgres::{Cluster, chown_postgres};
use crate::support::*;

const SERVER: &str = "srv";

/// Downloads every object below `pg/<server>/base/<id>/` with the SDKs Barman uses and
/// prints `object NAME SIZE SHA256` for each, `member OBJECT NAME SIZE SHA256` for a
/// `backup_label` found in a data archive, then the manifest text after `---manifest---`.
const INSPECT_PY: &str = r#"
import bz2, gzip, hashlib, io, os, sys, tarfile
service, bucket, prefix = sys.argv[1:4]
if service == "s3":
    import boto3
    client = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    get = lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()
elif service == "azure":
    from azure.storage.blob import BlobServiceClient
    container = BlobServiceClient.from_connection_string(
        os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    ).get_container_client(bucket)
    keys = [b.name for b in container.list_blobs(name_starts_with=prefix)]
    get = lambda key: container.download_blob(key).readall()
else:
    from google.cloud import storage
    gcs = storage.Client().bucket(bucket)
    keys = [b.name for b in gcs.client.list_blobs(bucket, prefix=prefix)]
    get = lambda key: gcs.blob(key).download_as_bytes()

def plain(name, data):
    if name.endswith(".tar"):
        return data
    if name.endswith(".tar.gz"):
        return gzip.decompress(data)
    if name.endswith(".tar.bz2"):
        return bz2.decompress(data)
    if name.endswith(".tar.zst"):
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if name.endswith(".tar.lz4"):
        import lz4.frame
        return lz4.frame.decompress(data)
    raise SystemExit("unexpected object " + name)

manifest = None
for key in sorted(keys):
    name = key[len(prefix):]
    data = get(key)
    print("object", name, len(data), hashlib.sha256(data).hexdigest())
    if name == "barman-rs.manifest":
        manifest = data.decode()
    elif name.startswith("data"):
        with tarfile.open(fileobj=io.BytesIO(plain(name, data))) as tar:
            for member in tar.getmembers():
                if member.name == "backup_label":
                    label = tar.extractfile(member).read()
                    print("member", name, member.name, len(label), hashlib.sha256(label).hexdigest())
print("---manifest---")
print(manifest or "", end="")
"#;

/// What [`INSPECT_PY`] found below a backup directory.
struct Stored {
    /// Object name → (size, SHA-256 hex).
    objects: BTreeMap<String, (u64, String)>,
    /// (object holding it, size, SHA-256 hex) of each backup_label in a data archive.
    labels: Vec<(String, u64, String)>,
    manifest: String,
}

fn inspect(dest: &Destination, id: &str) -> Stored {
    let prefix = format!("pg/{SERVER}/base/{id}/");
    let mut cmd = dest.sdk_python(&["-c".as_ref(), INSPECT_PY.as_ref()]);
    cmd.args([dest.bucket(), prefix]);
    let out = cmd.output().expect("run the inspection script");
    assert_success(&out, "downloading the backup's objects");
    let text = stdout(&out);
    let (listing, manifest) = text.split_once("---manifest---\n").unwrap();
    let mut stored = Stored {
        objects: BTreeMap::new(),
        labels: Vec::new(),
        manifest: manifest.to_string(),
    };
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["object", name, size, sha] => {
                stored
                    .objects
                    .insert(name.to_string(), (size.parse().unwrap(), sha.to_string()));
            }
            ["member", object, "backup_label", size, sha] => {
                stored
                    .labels
                    .push((object.to_string(), size.parse().unwrap(), sha.to_string()));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    stored
}

/// Checks the manifest of backup `id` against the objects stored; returns it.
fn assert_manifest_matches_objects(dest: &Destination, id: &str) -> IntegrityManifest {
    let stored = inspect(dest, id);
    assert!(
        stored
            .manifest
            .starts_with("barman-rs integrity manifest 1\n"),
        "{id}: {:?}",
        stored.manifest
    );
    let manifest = IntegrityManifest::parse(stored.manifest.as_bytes())
        .unwrap_or_else(|e| panic!("{id}: unreadable manifest: {e}"));
    // Every archive object is in the manifest and nothing else is.
    let archives: BTreeMap<&String, &(u64, String)> = stored
        .objects
        .iter()
        .filter(|(name, _)| *name != "backup.info" && *name != MANIFEST_NAME)
        .collect();
    let listed: BTreeMap<&String, &Digest256> =
        manifest.objects().map(|e| (&e.name, &e.digest)).collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        archives.keys().collect::<Vec<_>>(),
        "{id}: manifest entries vs objects"
    );
    for (name, (size, sha)) in &archives {
        let digest = listed[name];
        assert_eq!(digest.size, *size, "{id}/{name}: size");
        assert_eq!(&digest.hex(), sha, "{id}/{name}: SHA-256");
    }
    // The label is in the last data object, as recorded.
    let [(object, size, sha)] = stored.labels.as_slice() else {
        panic!("{id}: backup_label found {} times", stored.labels.len());
    };
    let last_data = archives
        .keys()
        .filter(|name| name.starts_with("data"))
        .max()
        .unwrap();
    assert_eq!(object, *last_data, "{id}: backup_label not at the end");
    let label = manifest
        .get(BACKUP_LABEL_ENTRY)
        .expect("no backup_label entry");
    assert_eq!(
        (label.size, label.hex()),
        (*size, sha.clone()),
        "{id}: label"
    );
    manifest
}

/// Keys below `pg/srv/base/<id>/`.
fn keys_of(dest: &Destination, id: &str) -> Vec<String> {
    let dir = format!("pg/{SERVER}/base/{id}/");
    dest.object_keys()
        .into_iter()
        .filter_map(|k| k.strip_prefix(&dir).map(str::to_string))
        .collect()
}

/// Our barman-cloud-backup; returns the new backup's ID.
fn our_backup(dest: &Destination, cluster: &Cluster, options: &[&str]) -> String {
    let before: Vec<String> = backup_ids(dest).into_iter().map(|(id, _)| id).collect();
    let out = cluster.backup_with_ours(dest, SERVER, options);
    assert_success(&out, &format!("our backup {options:?}"));
    let ids = backup_ids(dest);
    let (id, status) = ids
        .iter()
        .find(|(id, _)| !before.contains(id))
        .expect("a new backup")
        .clone();
    assert_eq!(status, "DONE");
    id
}

/// Our command and Barman's print the same and both succeed.
fn same_successful_output(dest: &Destination, command: &str, options: &[&str], rest: &[&str]) {
    let ours = assert_same_output(dest, command, options, rest);
    assert_success(&ours, &format!("{command} {options:?} (both tools)"));
}

/// Every regular file under `root` (following the tablespace links) with its content.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    local_files(root)
        .into_iter()
        .map(|f| {
            let content = std::fs::read(root.join(&f)).unwrap();
            (f, content)
        })
        .collect()
}

/// Restores `id` with Barman and with ours (the tablespace relocated), and checks both
/// give the same files with the same content.
fn restores_agree(dest: &Destination, id: &str, tablespace: Option<&str>, work: &Path) {
    let mut trees = Vec::new();
    for tool in ["barman", "ours"] {
        let data = work.join(format!("{tool}-{id}"));
        let mut options = Vec::new();
        if let Some(name) = tablespace {
            options.push("--tablespace".to_string());
            options.push(format!(
                "{name}:{}",
                work.join(format!("{tool}-ts")).display()
            ));
        }
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let rest = [SERVER, id, data.to_str().unwrap()];
        let out: Output = if tool == "barman" {
            dest.barman("barman-cloud-restore", &options, &rest)
        } else {
            dest.ours_with("barman-cloud-restore", &options, &rest)
        };
        assert_success(&out, &format!("{tool}'s restore of {id}"));
        trees.push(tree(&data));
    }
    let (theirs, ours) = (&trees[0], &trees[1]);
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "restored file sets differ"
    );
    for (name, content) in theirs {
        assert!(
            ours[name] == *content,
            "{name} differs between the restores"
        );
    }
    assert!(theirs.len() > 900, "only {} files", theirs.len());
    if tablespace.is_some() {
        assert!(
            theirs.keys().any(|f| f.starts_with("pg_tblspc/")),
            "tablespace missing"
        );
    }
}

#[test]
fn manifest_matches_objects_and_barman_tolerates_it_s3() {
    let dest = Destination::create(Service::S3, "manifest");
    let scripts = temp_dir("mfscripts");
    let source = Cluster::archiving("mfsource", &dest, scripts.path(), "--gzip");
    let ts_dir = source.root.path().join("ts");
    std::fs::create_dir(&ts_dir).unwrap();
    chown_postgres(&ts_dir);
    source.psql(&format!(
        "create tablespace tbs location '{}'",
        ts_dir.display()
    ));
    // Hashes compress poorly, and files are never split: several tables give the
    // tablespace's archive several objects too (zstd on several threads hands over its
    // output a job of several MiB at a time, so -S is only seen past that).
    for table in 0..10 {
        source.psql(&format!(
            "create table in_tbs{table} tablespace tbs as \
             select md5(i::text) as x from generate_series(1, 50000) i"
        ));
    }
    source.pgbench(&["-i", "-s", "2", "-q"]);

    // zstd split into several objects per archive, the tablespace's too.
    let main = our_backup(&dest, &source, &["--zstd", "-S", "1MB", "-J", "2"]);
    let second = our_backup(&dest, &source, &["--gzip"]);
    let third = our_backup(&dest, &source, &[]);

    let manifest = assert_manifest_matches_objects(&dest, &main);
    let names: Vec<&str> = manifest.objects().map(|e| e.name.as_str()).collect();
    let oid = source.psql("select oid from pg_tablespace where spcname = 'tbs'");
    for expected in [
        "data.tar.zst".to_string(),
        "data_0001.tar.zst".into(),
        format!("{oid}.tar.zst"),
        format!("{oid}_0001.tar.zst"),
    ] {
        assert!(
            names.contains(&expected.as_str()),
            "{expected} not in {names:?}"
        );
    }
    for id in [&second, &third] {
        assert_manifest_matches_objects(&dest, id);
    }

    // Barman reads the catalog as we do.
    for options in [&["--format", "json"][..], &[]] {
        same_successful_output(&dest, "barman-cloud-backup-list", options, &[SERVER]);
        same_successful_output(&dest, "barman-cloud-backup-show", options, &[SERVER, &main]);
    }

    // Barman's restore and ours (which checks the manifest) give the same files.
    let work = temp_dir("mfwork");
    restores_agree(&dest, &main, Some("tbs"), work.path());

    // Keep: set, read and released by Barman.
    let keep = "barman-cloud-backup-keep";
    assert_success(
        &dest.barman(keep, &["--target", "standalone"], &[SERVER, &main]),
        "Barman's keep",
    );
    for out in [
        dest.barman(keep, &["--status"], &[SERVER, &main]),
        dest.ours_with(keep, &["--status"], &[SERVER, &main]),
    ] {
        assert_success(&out, "keep --status");
        assert_eq!(stdout(&out).trim_end(), "Keep: standalone");
    }
    assert_success(
        &dest.barman(keep, &["--release"], &[SERVER, &main]),
        "Barman's release",
    );
    assert_eq!(
        stdout(&dest.barman(keep, &["--status"], &[SERVER, &main])).trim_end(),
        "Keep: nokeep"
    );

    // Barman deletes two of our backups, leaving their manifests behind.
    for id in [&main, &second] {
        let out = dest.barman("barman-cloud-backup-delete", &["-b", id], &[SERVER]);
        assert_success(&out, &format!("Barman deleting {id}"));
        assert_eq!(keys_of(&dest, id), [MANIFEST_NAME], "left by Barman");
    }

    // Our catalog does not see the orphans, silently.
    for options in [&["--format", "json"][..], &[]] {
        same_successful_output(&dest, "barman-cloud-backup-list", options, &[SERVER]);
    }
    let list = dest.ours("barman-cloud-backup-list", &[SERVER]);
    assert_eq!(stderr(&list), "", "backup-list complained");
    assert!(!stdout(&list).contains(&main));
    assert_eq!(backup_ids(&dest), [(third.clone(), "DONE".to_string())]);

    // -b of a backup Barman deleted: Barman's dry-run output and exit, then its orphan
    // goes, and only its own.
    let dry = ["-b", main.as_str(), "--dry-run"];
    let ours = dest.ours_with("barman-cloud-backup-delete", &dry, &[SERVER]);
    let theirs = dest.barman("barman-cloud-backup-delete", &dry, &[SERVER]);
    assert_same_exit(&ours, &theirs, "dry run -b of a deleted backup");
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert_eq!(
        keys_of(&dest, &main),
        [MANIFEST_NAME],
        "the dry run deleted"
    );
    let ours = dest.ours_with("barman-cloud-backup-delete", &["-b", &main], &[SERVER]);
    assert_success(&ours, "our -b of a backup Barman deleted");
    assert!(keys_of(&dest, &main).is_empty());
    assert_eq!(keys_of(&dest, &second), [MANIFEST_NAME]);

    // -r removes every orphan (nothing to print: Barman's dry run prints nothing either).
    let policy = ["-r", "REDUNDANCY 1"];
    let dry = ["-r", "REDUNDANCY 1", "--dry-run"];
    let ours = dest.ours_with("barman-cloud-backup-delete", &dry, &[SERVER]);
    let theirs = dest.barman("barman-cloud-backup-delete", &dry, &[SERVER]);
    assert_same_exit(&ours, &theirs, "dry run -r");
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert_eq!(
        keys_of(&dest, &second),
        [MANIFEST_NAME],
        "the dry run deleted"
    );
    let ours = dest.ours_with("barman-cloud-backup-delete", &policy, &[SERVER]);
    assert_success(&ours, "our -r");
    assert!(keys_of(&dest, &second).is_empty());
    assert!(keys_of(&dest, &third).contains(&MANIFEST_NAME.to_string()));

    // Our delete of one of our backups leaves nothing of it.
    let dry = ["-b", third.as_str(), "--dry-run"];
    let ours = dest.ours_with("barman-cloud-backup-delete", &dry, &[SERVER]);
    let theirs = dest.barman("barman-cloud-backup-delete", &dry, &[SERVER]);
    assert_same_exit(&ours, &theirs, "dry run -b");
    assert_eq!(stdout(&ours), stdout(&theirs), "dry-run line");
    assert!(!stdout(&ours).contains(MANIFEST_NAME));
    let ours = dest.ours_with("barman-cloud-backup-delete", &["-b", &third], &[SERVER]);
    assert_success(&ours, "our delete");
    assert!(keys_of(&dest, &third).is_empty());
    assert!(
        !dest
            .object_keys()
            .iter()
            .any(|k| k.starts_with(&format!("pg/{SERVER}/base/"))),
        "{:?}",
        dest.object_keys()
    );
}

#[test]
fn manifest_on_azure_and_barman_delete_leftover_cleaned_by_retention() {
    let scripts = temp_dir("mfascripts");
    let local = Destination::create(Service::Local, "mfawal");
    let wal_root = Path::new(local.url.strip_prefix("file://").unwrap());
    std::fs::create_dir_all(wal_root.join("srv/wals")).unwrap();
    chown_postgres(wal_root);
    let source = Cluster::archiving("mfasource", &local, scripts.path(), "");
    source.pgbench(&["-i", "-s", "1", "-q"]);
    let dest = Destination::create(Service::Azure, "mfazure");
    // Blocks of 1 MiB and several objects per archive.
    let options = ["--gzip", "-S", "2MB", "--min-chunk-size", "1MB"];
    let first = our_backup(&dest, &source, &options);
    let second = our_backup(&dest, &source, &options);
    for id in [&first, &second] {
        assert_manifest_matches_objects(&dest, id);
    }
    assert!(keys_of(&dest, &first).contains(&"data_0001.tar.gz".to_string()));
    for options in [&["--format", "json"][..], &[]] {
        same_successful_output(&dest, "barman-cloud-backup-list", options, &[SERVER]);
        same_successful_output(
            &dest,
            "barman-cloud-backup-show",
            options,
            &[SERVER, &first],
        );
    }
    let work = temp_dir("mfawork");
    restores_agree(&dest, &first, None, work.path());

    let out = dest.barman("barman-cloud-backup-delete", &["-b", &first], &[SERVER]);
    assert_success(&out, "Barman's delete");
    assert_eq!(keys_of(&dest, &first), [MANIFEST_NAME], "left by Barman");
    same_successful_output(&dest, "barman-cloud-backup-list", &[], &[SERVER]);

    let ours = dest.ours_with(
        "barman-cloud-backup-delete",
        &["-r", "REDUNDANCY 1"],
        &[SERVER],
    );
    assert_success(&ours, "our -r");
    assert!(keys_of(&dest, &first).is_empty());
    let ours = dest.ours_with("barman-cloud-backup-delete", &["-b", &second], &[SERVER]);
    assert_success(&ours, "our delete");
    assert!(keys_of(&dest, &second).is_empty());
}
