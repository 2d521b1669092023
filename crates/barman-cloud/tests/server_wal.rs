//! The barman server's WAL archive against Python Barman 3.20.1's own code (its venv from
//! `scripts/test-services.sh`, `BARMAN_RS_TEST_BARMAN_BIN`): xlog.db lines, compression
//! by magic bytes, stored files and lock files are read and written alike by both tools.
//! Without the variable the tests are skipped, unless `CI=true`, where they fail.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use barman_cloud::catalog::pyliteral::repr_float;
use barman_cloud::compression::{ALL, Compression, CompressionLevel, magic};
use barman_cloud::server::archive::{ArchiveOutcome, ArchiveSettings, archive_incoming};
use barman_cloud::server::get_wal::{WalOutput, send_wal};
use barman_cloud::server::paths::WalArchivePaths;
use barman_cloud::server::xlogdb::{XlogDb, XlogEntry, python_timestamp};
use barman_cloud::wal::name::WalName;

/// Barman's python, or `None` (with a note) when the test services are not set up.
fn barman_python() -> Option<PathBuf> {
    match std::env::var("BARMAN_RS_TEST_BARMAN_BIN") {
        Ok(bin) if !bin.is_empty() => Some(Path::new(&bin).join("python")),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BARMAN_RS_TEST_BARMAN_BIN is not set: start scripts/test-services.sh")
        }
        _ => {
            eprintln!(
                "note: skipping the Barman interop tests: BARMAN_RS_TEST_BARMAN_BIN is not set \
                 (scripts/test-services.sh start DIR && source DIR/env)"
            );
            None
        }
    }
}

/// Runs `script` with Barman's python, `args` after it; returns its stdout.
fn python(python: &Path, script: &str, args: &[&str]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run Barman's python");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn paths_in(dir: &Path) -> WalArchivePaths {
    let paths = WalArchivePaths::with_defaults("pg", dir.join("pg"), dir);
    fs::create_dir_all(&paths.incoming).unwrap();
    paths
}

/// A WAL-sized buffer that compresses, different for each seed.
fn wal_bytes(seed: u32) -> Vec<u8> {
    (0..1_000_000u32)
        .map(|i| ((i / 7).wrapping_mul(seed + 3) % 253) as u8)
        .collect()
}

const IDENTIFY_AND_DECOMPRESS: &str = r#"
import sys
from barman.compression import CompressionManager, get_internal_compressor
manager = CompressionManager(get_internal_compressor("gzip").config, None)
for path in sys.argv[1:]:
    codec = manager.identify_compression(path)
    get_internal_compressor(codec).decompress(path, path + ".plain")
    print(codec)
"#;

#[test]
fn xlogdb_lines_are_the_same_in_both_tools() {
    let Some(py) = barman_python() else { return };
    // Lines Barman writes, for times a float can hold, parse and print back identically.
    let barman_lines = python(
        &py,
        r#"
import random
import barman.output
from barman.infofile import WalFileInfo
random.seed(14)
times = [random.uniform(1e9, 2e9) for _ in range(500)] + [1700000000.0, 0.5, 1e-05, 1e16]
comps = [None, "gzip", "bzip2", "xz", "zstd", "lz4", "snappy", "pigz", "custom"]
for i, t in enumerate(times):
    name = "%08X%08X%08X" % (1, i // 256, i % 256)
    w = WalFileInfo(name=name, size=random.randint(0, 1 << 24), time=t,
                    compression=comps[i % len(comps)], encryption="gpg" if i % 7 == 0 else None)
    print(w.to_xlogdb_line(), end="")
"#,
        &[],
    );
    let mut ours = String::new();
    for line in barman_lines.lines() {
        ours.push_str(&XlogEntry::parse_line(line).unwrap().to_line());
    }
    assert_eq!(ours, barman_lines);

    // Lines we write from file times (with nanoseconds) are what Barman reads and writes.
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for i in 0..300u32 {
        let mtime = UNIX_EPOCH
            + Duration::new(
                1_600_000_000 + u64::from(i) * 7_919,
                i.wrapping_mul(2_654_435_761) % 1_000_000_000,
            );
        entries.push(XlogEntry {
            name: format!("0000000100000000{i:08X}"),
            size: u64::from(i) * 1000,
            time: python_timestamp(mtime),
            compression: (i % 2 == 0).then(|| "gzip".to_string()),
            encryption: None,
        });
    }
    let ours: String = entries.iter().map(XlogEntry::to_line).collect();
    let file = dir.path().join("pg-xlog.db");
    fs::write(&file, &ours).unwrap();
    let reprinted = python(
        &py,
        r#"
import sys
import barman.output
from barman.infofile import WalFileInfo
with open(sys.argv[1]) as f:
    for line in f:
        print(WalFileInfo.from_xlogdb_line(line).to_xlogdb_line(), end="")
"#,
        &[file.to_str().unwrap()],
    );
    assert_eq!(reprinted, ours);
}

#[test]
fn file_times_match_python_stat() {
    let Some(py) = barman_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut expected = String::new();
    let mut args = Vec::new();
    for i in 0..50u32 {
        let path = dir.path().join(format!("f{i}"));
        let file = fs::File::create(&path).unwrap();
        let mtime = UNIX_EPOCH
            + Duration::new(
                1_700_000_000 + u64::from(i) * 86_413,
                i.wrapping_mul(387_420_489) % 1_000_000_000,
            );
        file.set_modified(mtime).unwrap();
        let seen = fs::metadata(&path).unwrap().modified().unwrap();
        expected.push_str(&format!("{}\n", repr_float(python_timestamp(seen))));
        args.push(path.to_str().unwrap().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let barman = python(
        &py,
        "import os, sys\nfor p in sys.argv[1:]: print(repr(os.stat(p).st_mtime))",
        &args,
    );
    assert_eq!(barman, expected);
}

#[test]
fn wals_we_store_are_read_by_barman_and_the_other_way_round() {
    let Some(py) = barman_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let paths = paths_in(dir.path());

    // Ours → Barman: one segment per codec, archived with that `compression`.
    let mut stored = Vec::new();
    for (i, codec) in ALL.into_iter().enumerate() {
        let name = format!("0000000100000000{:08X}", i + 1);
        fs::write(paths.incoming.join(&name), wal_bytes(i as u32)).unwrap();
        let settings = ArchiveSettings {
            compression: Some(codec),
            ..Default::default()
        };
        let ArchiveOutcome::Ran(report) = archive_incoming(&paths, &settings).unwrap() else {
            panic!("busy")
        };
        assert!(report.failure.is_none());
        stored.push(paths.stored_path(&WalName::parse(&name).unwrap()));
    }
    let args: Vec<&str> = stored.iter().map(|p| p.to_str().unwrap()).collect();
    let identified = python(&py, IDENTIFY_AND_DECOMPRESS, &args);
    let names: Vec<&str> = ALL.iter().map(|c| c.name()).collect();
    assert_eq!(identified.lines().collect::<Vec<_>>(), names);
    for (i, path) in stored.iter().enumerate() {
        let plain = fs::read(format!("{}.plain", path.display())).unwrap();
        assert!(plain == wal_bytes(i as u32), "{}", ALL[i].name());
        fs::remove_file(format!("{}.plain", path.display())).unwrap();
    }
    // Barman reads our index: each line names the stored file's codec and size.
    let index = python(
        &py,
        r#"
import sys
import barman.output
from barman.infofile import WalFileInfo
with open(sys.argv[1]) as f:
    for line in f:
        w = WalFileInfo.from_xlogdb_line(line)
        print(w.name, w.size, w.compression)
"#,
        &[paths.xlogdb_file.to_str().unwrap()],
    );
    let expected: String = stored
        .iter()
        .zip(ALL)
        .map(|(path, codec)| {
            format!(
                "{} {} {}\n",
                path.file_name().unwrap().to_str().unwrap(),
                fs::metadata(path).unwrap().len(),
                codec.name()
            )
        })
        .collect();
    assert_eq!(index, expected);

    // Barman → ours: files Barman's compressors wrote are identified and decoded by us.
    let barman_dir = dir.path().join("barman");
    fs::create_dir_all(&barman_dir).unwrap();
    let source = barman_dir.join("source");
    fs::write(&source, wal_bytes(99)).unwrap();
    python(
        &py,
        r#"
import sys
from barman.compression import get_internal_compressor
for codec in sys.argv[2:]:
    get_internal_compressor(codec).compress(sys.argv[1], sys.argv[1] + "." + codec)
"#,
        &[&[source.to_str().unwrap()][..], &names[..]].concat(),
    );
    for codec in ALL {
        let compressed = fs::read(format!("{}.{}", source.display(), codec.name())).unwrap();
        assert_eq!(
            magic::identify(&compressed),
            Some(codec),
            "{}",
            codec.name()
        );
        // Served by get-wal from where Barman would have stored it.
        let wal = WalName::parse("000000020000000000000001").unwrap();
        let target = paths.stored_path(&wal);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, &compressed).unwrap();
        let mut out = Vec::new();
        send_wal(
            &paths,
            &wal,
            false,
            WalOutput::Plain,
            CompressionLevel::Medium,
            "",
            &mut out,
        )
        .unwrap();
        assert!(out == wal_bytes(99), "{}", codec.name());
        // `-z`/`-j` output is what Barman's own decompressors read.
        for (output, name) in [(Compression::Gzip, "gzip"), (Compression::Bzip2, "bzip2")] {
            let mut out = Vec::new();
            send_wal(
                &paths,
                &wal,
                false,
                WalOutput::Compressed(output),
                CompressionLevel::Medium,
                "",
                &mut out,
            )
            .unwrap();
            let file = barman_dir.join(format!("out-{name}"));
            fs::write(&file, out).unwrap();
            let seen = python(&py, IDENTIFY_AND_DECOMPRESS, &[file.to_str().unwrap()]);
            assert_eq!(seen.trim(), name);
            assert!(fs::read(format!("{}.plain", file.display())).unwrap() == wal_bytes(99));
        }
    }
}

#[test]
fn barman_and_barman_rs_exclude_each_other_with_their_locks() {
    let Some(py) = barman_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let paths = paths_in(dir.path());
    fs::write(paths.incoming.join("000000010000000000000001"), b"wal").unwrap();
    // Barman holds the archive-wal lock in a child process until told to stop.
    let mut holder = Command::new(&py)
        .arg("-c")
        .arg(
            r#"
import sys
from barman.lockfile import ServerWalArchiveLock
with ServerWalArchiveLock(sys.argv[1], "pg"):
    print("locked", flush=True)
    sys.stdin.read()
"#,
        )
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let outcome = archive_incoming(&paths, &ArchiveSettings::default()).unwrap();
    assert!(matches!(outcome, ArchiveOutcome::Busy { .. }));
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let ArchiveOutcome::Ran(report) =
        archive_incoming(&paths, &ArchiveSettings::default()).unwrap()
    else {
        panic!("still busy")
    };
    assert_eq!(report.archived().count(), 1);

    // And the other way: while we hold the xlog.db lock, Barman's non-waiting attempt fails.
    let db = XlogDb::new(&paths);
    let guard = db.lock().unwrap();
    let busy = python(
        &py,
        r#"
import sys
from barman.lockfile import ServerXLOGDBLock
from barman.exceptions import LockFileBusy
try:
    ServerXLOGDBLock(sys.argv[1], "pg").acquire(wait=False)
    print("acquired")
except LockFileBusy:
    print("busy")
"#,
        &[dir.path().to_str().unwrap()],
    );
    assert_eq!(busy, "busy\n");
    drop(guard);
    let pid = fs::read_to_string(paths.xlogdb_lock()).unwrap();
    assert_eq!(pid, format!("{}\n", std::process::id()));
}

#[test]
fn put_wal_accepts_the_tar_barman_wal_archive_sends() {
    let Some(py) = barman_python() else { return };
    let bin = py.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = paths_in(dir.path());
    // A fake `ssh`, first on PATH, saves what barman-wal-archive writes to it.
    let fake_bin = dir.path().join("bin");
    fs::create_dir_all(&fake_bin).unwrap();
    let ssh = fake_bin.join("ssh");
    fs::write(&ssh, "#!/bin/sh\ncat > \"$FAKE_SSH_OUT\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let path_var = format!(
        "{}:{}",
        fake_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, extra) in [None, Some("--md5")].into_iter().enumerate() {
        let name = format!("00000001000000000000000{}", i + 1);
        let wal = dir.path().join(&name);
        fs::write(&wal, wal_bytes(i as u32)).unwrap();
        let stream = dir.path().join(format!("stream{i}.tar"));
        let mut command = Command::new(bin.join("barman-wal-archive"));
        command
            .env("PATH", &path_var)
            .env("FAKE_SSH_OUT", &stream)
            .arg("--prefetch-cache-dir")
            .arg(dir.path().join("cache"));
        if let Some(option) = extra {
            command.arg(option);
        }
        let status = command
            .arg("backup.example")
            .arg("pg")
            .arg(&wal)
            .status()
            .unwrap();
        assert!(status.success());
        let report =
            barman_cloud::server::put_wal::put_wal(&paths, fs::File::open(&stream).unwrap(), "")
                .unwrap();
        assert!(report.warnings.is_empty());
        assert_eq!(
            report.files,
            [barman_cloud::server::put_wal::Received::Stored(
                name.clone()
            )]
        );
        assert!(fs::read(paths.incoming.join(&name)).unwrap() == wal_bytes(i as u32));
        // The received file keeps the source's mtime (PAX float or ustar seconds).
        let source_mtime = fs::metadata(&wal).unwrap().modified().unwrap();
        let received = fs::metadata(paths.incoming.join(&name))
            .unwrap()
            .modified()
            .unwrap();
        let gap = source_mtime
            .duration_since(received)
            .unwrap_or_else(|e| e.duration());
        assert!(gap < Duration::from_secs(1), "{gap:?}");
    }
}
