//! Concurrent `barman-cloud-wal-archive` processes for one WAL name with different
//! compressions ("one WAL, one content", see `wal::archive`): whatever the race, at most one
//! succeeds, every other fails, exactly one object remains, and it restores to the input of
//! the one that succeeded.
//!
//! What is asserted does not depend on how the race goes: each round starts its processes
//! together and checks only the end state.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use crate::support::*;

const ALL_CODECS: [&str; 5] = ["", "--gzip", "--zstd", "--lz4", "--bzip2"];
/// Without the uncompressed key, which sorts first and is the quickest to write: the
/// smallest key (`.bz2`) is then the slowest, so it often has to wait for the others.
const COMPRESSED_CODECS: [&str; 4] = ["--gzip", "--zstd", "--lz4", "--bzip2"];

struct Round {
    segment: String,
    codecs: &'static [&'static str],
    identical: bool,
}

/// Runs `barman-cloud-wal-archive` on each (options, file) at the same moment: every process
/// is spawned behind a shell `read`, and released by one line on its stdin once all exist.
fn archive_at_once(dest: &Destination, runs: &[(&[&str], PathBuf)]) -> Vec<Output> {
    let mut children = Vec::new();
    for (options, wal) in runs {
        let ours = dest.command_for_ours(
            "barman-cloud-wal-archive",
            options,
            &["srv", wal.to_str().unwrap()],
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"read go && exec "$0" "$@""#)
            .arg(ours.get_program())
            .args(ours.get_args());
        for (name, value) in ours.get_envs() {
            if let Some(value) = value {
                cmd.env(name, value);
            }
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(cmd.spawn().expect("start barman-cloud-wal-archive"));
    }
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect()
}

/// Keys of the objects (files, staging files included, for `Local`) of one WAL name.
fn copies_of(keys: &[String], segment: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k.rsplit('/').next().unwrap().starts_with(segment))
        .cloned()
        .collect()
}

/// Archives one round's inputs at once; returns the outputs and the inputs, in codec order.
fn run_round(dest: &Destination, round: &Round, seed: u64) -> (Vec<Output>, Vec<Vec<u8>>) {
    let work = temp_dir("walrace");
    let mut runs: Vec<(&[&str], PathBuf)> = Vec::new();
    let mut inputs = Vec::new();
    for (i, codec) in round.codecs.iter().enumerate() {
        let dir = work.path().join(format!("p{i}"));
        std::fs::create_dir(&dir).unwrap();
        let wal = dir.join(&round.segment);
        let data = segment_content(
            &round.segment,
            if round.identical {
                seed
            } else {
                seed + i as u64
            },
            1 << 20,
            128 << 10,
        );
        std::fs::write(&wal, &data).unwrap();
        inputs.push(data);
        let options: &[&str] = if codec.is_empty() {
            &[]
        } else {
            std::slice::from_ref(codec)
        };
        runs.push((options, wal));
    }
    (archive_at_once(dest, &runs), inputs)
}

fn check_round(
    dest: &Destination,
    all_keys: &[String],
    round: &Round,
    outputs: &[Output],
    inputs: &[Vec<u8>],
) {
    let report: String = round
        .codecs
        .iter()
        .zip(outputs)
        .map(|(codec, out)| {
            format!(
                "\n  [{codec:8}] exit {:?}: {}",
                out.status.code(),
                stderr(out).trim()
            )
        })
        .collect();
    let what = format!(
        "{:?} round on {} ({}):{report}",
        dest.service,
        round.segment,
        if round.identical {
            "identical contents"
        } else {
            "different contents"
        }
    );
    for out in outputs {
        assert!(out.status.code().is_some(), "killed by a signal: {what}");
        assert!(!stderr(out).contains("panicked"), "{what}");
    }
    let winners: Vec<usize> = (0..outputs.len())
        .filter(|&i| outputs[i].status.success())
        .collect();
    if round.identical {
        // Archivers that find the identical copy already there succeed without writing.
        assert!(!winners.is_empty(), "nobody succeeded: {what}");
    } else {
        assert_eq!(winners.len(), 1, "exactly one archiver must win: {what}");
    }
    let copies = copies_of(all_keys, &round.segment);
    assert_eq!(
        copies.len(),
        1,
        "one object must remain, found {copies:?}: {what}"
    );

    let work = temp_dir("walrace-restore");
    let target = work.path().join("restored");
    let out = dest.ours(
        "barman-cloud-wal-restore",
        &["srv", &round.segment, target.to_str().unwrap()],
    );
    assert_success(&out, &format!("restore of {what}"));
    let restored = std::fs::read(&target).unwrap();
    assert!(
        restored == inputs[winners[0]],
        "the object left ({}) does not restore to the winner's input: {what}",
        copies[0]
    );
}

fn races_leave_one_copy(service: Service) {
    let dest = Destination::create(service, "walrace");
    let plan: [(&'static [&'static str], bool); 5] = [
        (&ALL_CODECS, false),
        (&COMPRESSED_CODECS, false),
        (&ALL_CODECS, false),
        (&COMPRESSED_CODECS, false),
        (&ALL_CODECS, true),
    ];
    let rounds: Vec<Round> = plan
        .iter()
        .enumerate()
        .map(|(i, (codecs, identical))| Round {
            segment: format!("0000000100000000000000{:02X}", 0x10 + i),
            codecs,
            identical: *identical,
        })
        .collect();
    // The rounds run side by side (fresh WAL names, so they do not meet): a round whose
    // smallest key has to wait for a copy that already won takes the whole wait (10 s).
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = rounds
            .iter()
            .enumerate()
            .map(|(i, round)| {
                let dest = &dest;
                scope.spawn(move || run_round(dest, round, 1000 * (i as u64 + 1)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let keys = dest.object_keys();
    for (round, (outputs, inputs)) in rounds.iter().zip(&results) {
        check_round(&dest, &keys, round, outputs, inputs);
    }
}

#[test]
fn racing_archivers_with_other_compressions_leave_one_copy_on_s3() {
    races_leave_one_copy(Service::S3);
}

#[test]
fn racing_archivers_with_other_compressions_leave_one_copy_on_local() {
    races_leave_one_copy(Service::Local);
}
