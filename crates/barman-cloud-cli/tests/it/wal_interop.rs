//! Interoperability with Barman 3.20.1: what we archive, Barman restores byte-identical,
//! and the other way round, for every compression, WAL kind and cloud service.

use crate::support::*;

const COMPRESSIONS: [Option<&str>; 7] = [
    None,
    Some("--gzip"),
    Some("--bzip2"),
    Some("--xz"),
    Some("--snappy"),
    Some("--zstd"),
    Some("--lz4"),
];

fn segment_name(n: usize) -> String {
    format!("0000000100000000{n:08X}")
}

fn archive_then_restore(service: Service, ours_archives: bool) {
    let dest = Destination::create(service, if ours_archives { "o2b" } else { "b2o" });
    let work = temp_dir("interop");
    for (i, compression) in COMPRESSIONS.iter().enumerate() {
        let name = segment_name(i + 1);
        let source = work.path().join(&name);
        std::fs::write(&source, segment_content(&name, i as u64, 1 << 20, 300_000)).unwrap();
        let options: Vec<&str> = compression.iter().copied().collect();
        let source_arg = source.to_str().unwrap();
        let archived = if ours_archives {
            dest.ours_with("barman-cloud-wal-archive", &options, &["srv", source_arg])
        } else {
            dest.barman("barman-cloud-wal-archive", &options, &["srv", source_arg])
        };
        assert_success(&archived, &format!("archive {name} with {compression:?}"));

        let target = work.path().join(format!("restored-{name}"));
        let target_arg = target.to_str().unwrap();
        let restored = if ours_archives {
            dest.barman("barman-cloud-wal-restore", &[], &["srv", &name, target_arg])
        } else {
            dest.ours("barman-cloud-wal-restore", &["srv", &name, target_arg])
        };
        assert_success(
            &restored,
            &format!("restore {name} archived with {compression:?}"),
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            std::fs::read(&source).unwrap(),
            "{name} with {compression:?} differs after the round trip"
        );
    }
}

/// `.history` files (kept directly in `wals/`) and `.partial` segments, both directions,
/// plain and compressed, plus a full-size 16 MiB segment.
fn special_files(service: Service) {
    let dest = Destination::create(service, "special");
    let work = temp_dir("special");
    let history = b"1\t0/3000000\tno recovery target specified\n".to_vec();
    // (name, content, compression option); even rows are archived by us, odd by Barman.
    let files: [(&str, Vec<u8>, Option<&str>); 6] = [
        ("00000002.history", history.clone(), None),
        ("00000003.history", history, Some("--gzip")),
        (
            "000000010000000000000010.partial",
            wal_content(10, 1 << 20, 100_000),
            None,
        ),
        (
            "000000010000000000000011.partial",
            wal_content(11, 1 << 20, 100_000),
            Some("--zstd"),
        ),
        (
            "000000010000000000000012",
            segment_content("000000010000000000000012", 12, 16 << 20, 4 << 20),
            None,
        ),
        (
            "000000010000000000000013",
            segment_content("000000010000000000000013", 13, 16 << 20, 4 << 20),
            Some("--gzip"),
        ),
    ];
    for (i, (name, content, compression)) in files.iter().enumerate() {
        let source = work.path().join(name);
        std::fs::write(&source, content).unwrap();
        let ours_archives = i % 2 == 0;
        let options: Vec<&str> = compression.iter().copied().collect();
        let archived = if ours_archives {
            dest.ours_with(
                "barman-cloud-wal-archive",
                &options,
                &["srv", source.to_str().unwrap()],
            )
        } else {
            dest.barman(
                "barman-cloud-wal-archive",
                &options,
                &["srv", source.to_str().unwrap()],
            )
        };
        assert_success(&archived, &format!("archive {name}"));
        // PostgreSQL asks for a .partial segment by its complete name only at the end of
        // recovery; both tools serve the .partial object for that name.
        let wanted = name.trim_end_matches(".partial");
        let target = work.path().join(format!("out-{name}"));
        let restored = if ours_archives {
            dest.barman(
                "barman-cloud-wal-restore",
                &[],
                &["srv", wanted, target.to_str().unwrap()],
            )
        } else {
            dest.ours(
                "barman-cloud-wal-restore",
                &["srv", wanted, target.to_str().unwrap()],
            )
        };
        assert_success(&restored, &format!("restore {wanted}"));
        assert_eq!(&std::fs::read(&target).unwrap(), content, "{name} differs");
    }
}

macro_rules! interop_tests {
    ($($module:ident => $service:expr),*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn ours_archive_barman_restores_every_compression() {
                archive_then_restore($service, true);
            }

            #[test]
            fn barman_archives_ours_restores_every_compression() {
                archive_then_restore($service, false);
            }

            #[test]
            fn history_partial_and_full_segments_both_ways() {
                special_files($service);
            }
        }
    )*};
}

interop_tests!(s3 => Service::S3, azure => Service::Azure, gcs => Service::Gcs);

/// Full-size segments are compressed on several cores (concatenated gzip members and
/// bzip2 streams): Barman must still restore them whole; the other codecs for company.
#[test]
fn parallel_compressed_full_segments_restore_with_barman() {
    let dest = Destination::create(Service::S3, "parallel");
    let work = temp_dir("parallel");
    for (i, option) in ["--gzip", "--bzip2", "--xz", "--zstd"].iter().enumerate() {
        let name = segment_name(0x20 + i);
        let source = work.path().join(&name);
        std::fs::write(&source, wal_content(0x20 + i as u64, 16 << 20, 6 << 20)).unwrap();
        let out = dest.ours_with(
            "barman-cloud-wal-archive",
            &[option],
            &["srv", source.to_str().unwrap()],
        );
        assert_success(&out, &format!("archive {name} {option}"));
        let target = work.path().join(format!("out-{name}"));
        let out = dest.barman(
            "barman-cloud-wal-restore",
            &[],
            &["srv", &name, target.to_str().unwrap()],
        );
        assert_success(&out, &format!("Barman restores {name} {option}"));
        assert!(
            std::fs::read(&target).unwrap() == std::fs::read(&source).unwrap(),
            "{name} {option} differs"
        );
    }
}
