"""Writes buckets of malicious and corrupted backups and WAL files for crafted.rs.

Run with the Python of Barman's virtualenv, so that the archives are made by the very
modules Barman uses (tarfile, gzip, bz2, python-snappy, lz4, zstandard), independently
of our own encoders, and backup.info by Barman's own BackupInfo class:

    craft_bucket.py SUITE WORKDIR

SUITE is containment, completeness, wal or disk. WORKDIR is laid out as:

    WORKDIR/bucket/pg/<server>/...    the bucket tree (file://WORKDIR/bucket/pg, or
                                      uploaded as is: s3://<bucket>/pg)
    WORKDIR/sentinel/                 made by the test; the attacks aim at it
    WORKDIR/runs/<case>/pgdata        where the test restores <case>
    WORKDIR/ts/<case>[-N]             tablespace locations written in backup.info
    WORKDIR/expected/<case>           "<sha256> <size>" of the WAL files that must restore
    WORKDIR/expected/relation         "<sha256> <size>" of base/1/1259 in every PGDATA

Prints one line per case: `<case> <server> <backup id or WAL name>`. Everything is
deterministic (fixed seeds, times and gzip headers).
"""

import bz2
import gzip
import hashlib
import io
import os
import random
import struct
import sys
import tarfile
from datetime import datetime, timedelta, timezone

import lz4.frame
import snappy
import zstandard

import barman.output  # noqa: F401  (breaks barman.infofile's circular import)
from barman.infofile import BackupInfo, Tablespace

SUITE, WORK = sys.argv[1], os.path.abspath(sys.argv[2])
BUCKET = os.path.join(WORK, "bucket", "pg")
SENTINEL = os.path.join(WORK, "sentinel")
MTIME = 1_700_000_000
TS_OID = 16385
DELETION = "deletion in progress (barman-cloud-backup-delete was interrupted; run it again)"


def dest(case):
    return os.path.join(WORK, "runs", case, "pgdata")


def ts_location(case):
    return os.path.join(WORK, "ts", case)


def noise(seed, size):
    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------- tar members


def _info(name, kind, size=0, target="", mode=0o600):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = target
    info.mode = mode
    info.mtime = MTIME
    info.uname = info.gname = "postgres"
    info.uid = info.gid = 26
    return info


def File(name, data, mode=0o600):
    return (_info(name, tarfile.REGTYPE, len(data), mode=mode), data)


def Dir(name):
    return (_info(name, tarfile.DIRTYPE, mode=0o700), None)


def Symlink(name, target):
    return (_info(name, tarfile.SYMTYPE, target=target, mode=0o777), None)


def Hardlink(name, target):
    return (_info(name, tarfile.LNKTYPE, target=target), None)


def Special(name, kind):
    info = _info(name, kind)
    info.devmajor, info.devminor = 1, 3
    return (info, None)


def Pax(name, data):
    """A member whose name is carried by a PAX `path` record (the ustar name is benign)."""
    info = _info("benign-pax-name", tarfile.REGTYPE, len(data))
    info.pax_headers = {"path": name}
    return (info, data)


def tar(members, fmt=tarfile.GNU_FORMAT):
    """A tar stream as Python's tarfile writes it (names are written as given: tarfile
    checks nothing when writing), with the end-of-archive marker and record padding."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member_offsets(stream):
    """(name, header offset, data offset, size) of every member of a plain tar."""
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r") as archive:
        return [(m.name, m.offset, m.offset_data, m.size) for m in archive.getmembers()]


def label_text(backup_id):
    return (
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
        "CHECKPOINT LOCATION: 0/2000060\n"
        "BACKUP METHOD: streamed\n"
        "BACKUP FROM: primary\n"
        "START TIME: 2025-03-01 00:00:00 UTC\n"
        f"LABEL: Barman backup cloud {backup_id}\n"
        "START TIMELINE: 1\n"
    ).encode()


RELATION = noise(2, 48 << 10) + bytes(48 << 10)


def pgdata(case, backup_id, label=True, extra=(), big=0):
    """A small PGDATA: the directories PostgreSQL needs, PG_VERSION, backup_label, a
    WHICH file naming the case (to tell restores apart) and a relation file of noise
    (large enough that every compressor writes several blocks)."""
    members = [Dir("."), Dir("base"), Dir("base/1"), Dir("global"), Dir("pg_tblspc")]
    members.append(Dir("pg_wal"))
    members.append(File("PG_VERSION", b"16\n"))
    if label:
        members.append(File("backup_label", label_text(backup_id)))
    members.append(File("WHICH", case.encode()))
    members.append(File("global/pg_control", noise(1, 8192)))
    members.extend(extra)
    members.append(File("base/1/1259", RELATION))
    if big:
        members.append(File("base/1/16384", noise(3, big)))
    return members


def part(number):
    return [Dir(f"base/{number + 1}"), File(f"base/{number + 1}/2600", noise(100 + number, 20000))]


def tablespace_members():
    return [
        Dir("PG_16_202307071"),
        Dir("PG_16_202307071/5"),
        File("PG_16_202307071/5/16386", noise(7, 30000)),
    ]


# ---------------------------------------------------------------- compressors


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def bz(data):
    return bz2.compress(data)


def snappy_stream(data):
    return snappy.StreamCompressor().add_chunk(data)


def lz4_checked(data):
    return lz4.frame.compress(data, content_checksum=True)


def zst_checked(data):
    writer = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    return writer.compress(data) + writer.flush()


def zst_barman(data):
    """As Barman's ZstdCompressor writes archives: no content checksum."""
    writer = zstandard.ZstdCompressor().compressobj()
    return writer.compress(data) + writer.flush()


CODECS = {
    "tar": lambda d: d,
    "tar.gz": gz,
    "tar.bz2": bz,
    "tar.snappy": snappy_stream,
    "tar.lz4": lz4_checked,
    "tar.zst": zst_checked,
}


def flip(data, offset):
    data = bytearray(data)
    data[offset] ^= 0x5A
    return bytes(data)


def snappy_chunk_ends(stream):
    """Offsets where a snappy framed stream ends a chunk (it may be cut there unnoticed)."""
    ends, at = [], 0
    while at < len(stream):
        length = int.from_bytes(stream[at + 1 : at + 4], "little")
        at += 4 + length
        ends.append(at)
    return ends


# ---------------------------------------------------------------- catalog


def sha256_line(name, data):
    return f"sha256 {hashlib.sha256(data).hexdigest()} {len(data)} {name}\n"


def manifest(objects, label):
    lines = [sha256_line(name, data) for name, data in objects.items()]
    if label is not None:
        lines.append(sha256_line("backup_label", label))
    return ("barman-rs integrity manifest 1\n" + "".join(sorted(lines))).encode()


def backup_info(backup_id, status, tablespaces=None, error=None, name=None):
    """backup.info as Barman writes it, through Barman's own BackupInfo."""
    info = BackupInfo(backup_id=backup_id, server_name="cloud")
    begin = datetime.strptime(backup_id, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    fields = {
        "backup_label": label_text(backup_id).decode(),
        "backup_name": name,
        "begin_offset": 40,
        "begin_time": begin,
        "begin_wal": "000000010000000000000002",
        "begin_xlog": "0/2000028",
        "cluster_size": 31457280,
        "config_file": "/etc/postgresql/16/main/postgresql.conf",
        "data_checksums": "on",
        "hba_file": "/etc/postgresql/16/main/pg_hba.conf",
        "ident_file": "/etc/postgresql/16/main/pg_ident.conf",
        "pgdata": "/var/lib/postgresql/16/main",
        "status": status,
        "summarize_wal": "off",
        "systemid": "7345678901234567890",
        "timeline": 1,
        "version": 160004,
        "xlog_segment_size": 16777216,
        "error": error,
    }
    if status in ("DONE", "WAITING_FOR_WALS"):
        fields.update(
            end_offset=312,
            end_time=begin + timedelta(minutes=10),
            end_wal="000000010000000000000002",
            end_xlog="0/2000138",
        )
    if tablespaces:
        fields["tablespaces"] = [Tablespace(n, o, loc) for n, o, loc in tablespaces]
    for key, value in fields.items():
        if value is not None:
            info.set_attribute(key, value)
    out = io.BytesIO()
    info.save(file_object=out)
    return out.getvalue()


PRINTED = []
NEXT_ID = {}
SAME = object()  # the label in the backup's own data.tar


def peek_id(server="srv"):
    """The ID the next backup of `server` gets: one a minute from 2025-01-01."""
    day, minute = divmod(NEXT_ID.get(server, 0), 24 * 60)
    return f"202501{day + 1:02d}T{minute // 60:02d}{minute % 60:02d}00"


def new_id(server):
    backup_id = peek_id(server)
    NEXT_ID[server] = NEXT_ID.get(server, 0) + 1
    return backup_id


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def backup(
    case,
    objects,
    status="DONE",
    server="srv",
    tablespaces=None,
    error=None,
    name=None,
    with_manifest=None,
    manifest_bytes=None,
    label=SAME,
):
    """Writes one backup: backup.info, `objects` ({name: bytes}), and the manifest
    (`with_manifest`: {name: bytes} it vouches for, or True for exactly `objects`;
    `label`: the backup_label it vouches for, None for no backup_label line)."""
    backup_id = new_id(server)
    base = os.path.join(BUCKET, server, "base", backup_id)
    write(
        os.path.join(base, "backup.info"),
        backup_info(backup_id, status, tablespaces, error, name),
    )
    for name_, data in objects.items():
        write(os.path.join(base, name_), data)
    if label is SAME:
        label = label_text(backup_id)
    if with_manifest is True:
        with_manifest = objects
    if with_manifest is not None:
        manifest_bytes = manifest(with_manifest, label)
    if manifest_bytes is not None:
        write(os.path.join(base, "barman-rs.manifest"), manifest_bytes)
    PRINTED.append(f"{case} {server} {backup_id}")
    return backup_id


def evil(case, members, parts=(), tablespaces=None, ts_archive=None, fmt=tarfile.GNU_FORMAT):
    """A DONE backup whose data.tar holds `members` after a normal PGDATA."""
    objects = {"data.tar": tar(pgdata(case, peek_id(), extra=members), fmt)}
    for number, extra in enumerate(parts, 1):
        objects[f"data_{number:04d}.tar"] = tar(extra)
    if ts_archive is not None:
        objects[f"{TS_OID}.tar"] = tar(ts_archive)
    backup(case, objects, tablespaces=tablespaces)


def one_tablespace(case, location=None):
    return [("tbs", TS_OID, location if location is not None else ts_location(case))]


# ---------------------------------------------------------------- suites


def containment():
    s = SENTINEL
    victim = os.path.join(s, "victim")
    # Legitimate archives the attacks are variations of.
    evil(
        "ok_tablespace",
        [],
        parts=[part(1)],
        tablespaces=one_tablespace("ok_tablespace"),
        ts_archive=tablespace_members(),
    )
    # A real PGDATA archive holds pg_tblspc/<oid> as a link to the original location:
    # restore replaces it with a link to the restore location, the target stays as is.
    evil(
        "ok_tblspc_oid_link_member",
        [Symlink(f"pg_tblspc/{TS_OID}", os.path.join(s, str(TS_OID)))],
        tablespaces=one_tablespace("ok_tblspc_oid_link_member"),
        ts_archive=tablespace_members(),
    )
    # The attack that once made restore delete <sentinel>/16385 and link it: pg_tblspc
    # itself a link to the sentinel, then the tablespace link made "inside" it.
    objects = {
        "data.tar": tar(
            [m for m in pgdata("evil_tblspc_dir_link", peek_id()) if m[0].name != "pg_tblspc"]
            + [Symlink("pg_tblspc", s)]
        ),
        f"{TS_OID}.tar": tar(tablespace_members()),
    }
    backup("evil_tblspc_dir_link", objects, tablespaces=one_tablespace("evil_tblspc_dir_link"))
    # pg_wal as a link (initdb --waldir): kept as a link, nothing made through it.
    for case, target in [
        ("ok_pg_wal_link_missing_target", os.path.join(s, "walsdir")),
        ("ok_pg_wal_link_to_sentinel", s),
    ]:
        objects = {
            "data.tar": tar(
                [m for m in pgdata(case, peek_id()) if m[0].name != "pg_wal"]
                + [Symlink("pg_wal", target)]
            )
        }
        backup(case, objects)
    # Names that leave the destination.
    for case, name in [
        ("evil_dotdot", "../escape"),
        ("evil_dotdot_victim", "../../../sentinel/victim"),
        ("evil_absolute", os.path.join(s, "created_by_absolute_name")),
        ("evil_absolute_victim", victim),
        ("evil_inner_dotdot", "a/../../b"),
        ("evil_dotdot_directory_only", ".."),
        ("evil_longname_dotdot", "../" + "x" * 150),
    ]:
        evil(case, [File(name, b"pwned\n")])
    evil("evil_dotdot_directory", [Dir("../escape_dir")])
    evil("evil_pax_dotdot", [Pax("../../../sentinel/victim", b"pwned\n")], fmt=tarfile.PAX_FORMAT)
    evil("evil_root_as_file", [File(".", b"pwned\n")])
    # Links then writes through them.
    evil("evil_link_then_file", [Symlink("evil", s), File("evil/victim", b"pwned\n")])
    evil(
        "evil_relative_link_then_file",
        [Symlink("evil", "../../../sentinel"), File("evil/created", b"pwned\n")],
    )
    evil("evil_link_then_directory", [Symlink("evil", s), Dir("evil/created_dir")])
    evil("evil_link_then_nested_file", [Symlink("evil", s), File("evil/new/deep", b"x")])
    evil("evil_link_then_link", [Symlink("evil", s), Symlink("evil/created_link", "/")])
    evil(
        "evil_link_then_hardlink",
        [Symlink("evil", s), File("mine", b"x"), Hardlink("evil/created_hl", "mine")],
    )
    evil(
        "evil_link_across_parts",
        [Symlink("evil", s)],
        parts=[[Dir("evil"), File("evil/victim", b"pwned\n"), File("evil/created", b"x")]],
    )
    evil(
        "evil_link_across_parts_reversed",
        [File("evil/victim", b"pwned\n")],
        parts=[[Symlink("evil", s)]],
    )
    evil(
        "evil_tablespace_archive_link_then_file",
        [],
        tablespaces=one_tablespace("evil_tablespace_archive_link_then_file"),
        ts_archive=[Symlink("PG_16_202307071", s), File("PG_16_202307071/victim", b"pwned\n")],
    )
    # Replacing a link to a file is tar semantics: the link goes, the victim stays.
    evil("ok_file_replaces_link", [Symlink("victimlink", victim), File("victimlink", b"mine\n")])
    # A hard link to a link member links the link itself.
    evil("ok_hardlink_to_link_member", [Symlink("lnk", victim), Hardlink("hl", "lnk")])
    # Hard links out of the destination.
    evil("evil_hardlink_absolute", [Hardlink("hl", victim)])
    evil("evil_hardlink_dotdot", [Hardlink("hl", "../../../sentinel/victim")])
    evil("evil_hardlink_through_link", [Symlink("out", s), Hardlink("hl", "out/victim")])
    evil(
        "evil_hardlink_from_through_link",
        [Symlink("out", s), File("mine", b"x"), Hardlink("out/hl", "mine")],
    )
    # Members that are not files, directories or links.
    evil("evil_fifo", [Special("fifo", tarfile.FIFOTYPE)])
    evil("evil_char_device", [Special("null", tarfile.CHRTYPE)])
    evil("evil_block_device", [Special("sda", tarfile.BLKTYPE)])
    # backup_label as a link to a non-empty file outside: must not pass for a label.
    case = "evil_backup_label_link"
    members = pgdata(case, peek_id(), label=False, extra=[Symlink("backup_label", victim)])
    backup(case, {"data.tar": tar(members)})
    # Tablespace locations in backup.info.
    plain = lambda case: {  # noqa: E731
        "data.tar": tar(pgdata(case, peek_id())),
        f"{TS_OID}.tar": tar(tablespace_members()),
    }
    for case, location in [
        ("ts_relative", "relative/ts"),
        ("ts_dotdot", os.path.join(WORK, "ts", "..", "sentinel")),
        ("ts_dotdot_fresh", os.path.join(WORK, "ts", "x", "..", "fresh")),
        ("ts_equal_destination", dest("ts_equal_destination")),
        ("ts_inside_destination", os.path.join(dest("ts_inside_destination"), "pg_tblspc", "in")),
        ("ts_contains_destination", os.path.dirname(dest("ts_contains_destination"))),
        ("ts_sentinel", s),
        ("ts_empty", ""),
    ]:
        backup(case, plain(case), tablespaces=one_tablespace(case, location))
    case = "ts_twice"
    objects = plain(case)
    objects[f"{TS_OID + 1}.tar"] = tar(tablespace_members())
    backup(
        case,
        objects,
        tablespaces=[("a", TS_OID, ts_location(case)), ("b", TS_OID + 1, ts_location(case))],
    )
    # Relocated with --tablespace by the test (to the sentinel, the destination...).
    backup("ts_relocated", plain("ts_relocated"), tablespaces=one_tablespace("ts_relocated"))


def completeness():
    full = lambda case, codec="tar", parts=1, server="srv": {  # noqa: E731
        **{f"data.{codec}": CODECS[codec](tar(pgdata(case, peek_id(server))))},
        **{f"data_{n:04d}.{codec}": CODECS[codec](tar(part(n))) for n in range(1, parts + 1)},
    }
    # Whole backups of every compression, with and without a manifest.
    for codec in CODECS:
        case = "ok_" + codec.replace(".", "_")
        backup(case, full(case, codec), with_manifest=True)
    backup("ok_no_manifest", full("ok_no_manifest"))
    case = "ok_zst_without_checksum"
    backup(case, {"data.tar.zst": zst_barman(tar(pgdata(case, peek_id())))})
    # Status.
    lost = "failure uploading data (connection lost)"
    backup("failed_by_id", full("failed_by_id"), status="FAILED", error=lost)
    backup("started_by_id", full("started_by_id"), status="STARTED")
    backup("waiting_for_wals_by_id", full("waiting_for_wals_by_id"), status="WAITING_FOR_WALS")
    backup("half_deleted", {"data_0001.tar": tar(part(1))}, status="FAILED", error=DELETION)
    backup("failed_by_name", full("failed_by_name"), status="FAILED", name="nightly", error=lost)
    # Shortcuts on a server whose oldest and newest backups are not DONE.
    for case, status in [
        ("pick_failed_oldest", "FAILED"),
        ("pick_done", "DONE"),
        ("pick_failed_newest", "FAILED"),
    ]:
        error = lost if status == "FAILED" else None
        backup(case, full(case, server="pick"), status=status, server="pick", error=error)
    case = "pick_started_newest"
    backup(case, full(case, server="pick"), status="STARTED", server="pick")
    case = "nodone_failed"
    backup(case, full(case, server="nodone"), status="FAILED", server="nodone", error=lost)
    # Missing archives.
    backup("missing_data", {})
    backup("missing_data_parts_only", {"data_0001.tar": tar(part(1))})
    case = "missing_tablespace_archive"
    backup(case, full(case), tablespaces=one_tablespace(case))
    objects = full("parts_gap", parts=3)
    del objects["data_0002.tar"]
    backup("parts_gap", objects)
    objects = full("manifest_missing_last_part", parts=2)
    vouched = dict(objects)
    del objects["data_0002.tar"]
    backup("manifest_missing_last_part", objects, with_manifest=vouched)
    objects = full("manifest_extra_archive", parts=2)
    vouched = dict(objects)
    del vouched["data_0002.tar"]
    backup("manifest_extra_archive", objects, with_manifest=vouched)
    # Manifests that cannot vouch for anything.
    for case, edit in [
        ("manifest_garbage", lambda m: b"garbage\n" + m),
        ("manifest_empty", lambda m: b""),
        ("manifest_cut_in_a_line", lambda m: m[: m.rindex(b" ") - 20]),
        ("manifest_unknown_algorithm", lambda m: m.replace(b"sha256 ", b"md5 ", 1)),
        ("manifest_bad_name", lambda m: m.replace(b" data.tar\n", b" ../data.tar\n")),
    ]:
        objects = full(case)
        backup(case, objects, manifest_bytes=edit(manifest(objects, label_text(peek_id()))))
    # Manifests that disagree with the archives.
    case = "manifest_wrong_hash"
    objects = full(case)
    text = manifest(objects, label_text(peek_id())).decode().splitlines(keepends=True)
    # One hex digit of data.tar's SHA-256 changed ("sha256 " is 7 characters).
    text = [
        line[:7] + ("0" if line[7] != "0" else "1") + line[8:]
        if line.endswith(" data.tar\n")
        else line
        for line in text
    ]
    backup(case, objects, manifest_bytes="".join(text).encode())
    case = "manifest_wrong_size"
    objects = full(case)
    text = manifest(objects, label_text(peek_id())).decode()
    size = str(len(objects["data.tar"]))
    text = text.replace(f" {size} data.tar\n", f" {int(size) + 512} data.tar\n")
    backup(case, objects, manifest_bytes=text.encode())
    case = "manifest_wrong_label"
    backup(case, full(case), with_manifest=full(case), label=b"another label\n")
    case = "manifest_without_label_entry"
    backup(case, full(case), with_manifest=full(case), label=None)
    # backup_label.
    backup("no_backup_label", {"data.tar": tar(pgdata("no_backup_label", peek_id(), label=False))})
    for case, label in [
        ("empty_backup_label", File("backup_label", b"")),
        ("backup_label_directory", Dir("backup_label")),
    ]:
        backup(case, {"data.tar": tar(pgdata(case, peek_id(), label=False, extra=[label]))})
    case = "no_backup_label_with_manifest"
    objects = {"data.tar": tar(pgdata(case, peek_id(), label=False))}
    backup(case, objects, with_manifest=objects, label=label_text(peek_id()))
    # Truncations.
    case = "tar_cut_at_member_boundary"
    whole = tar(pgdata(case, peek_id()))
    last_header = member_offsets(whole)[-1][1]
    backup(case, {"data.tar": whole[:last_header]})
    case = "tar_cut_at_member_boundary_with_manifest"
    whole = tar(pgdata(case, peek_id()))
    cut = whole[: member_offsets(whole)[-1][1]]
    backup(case, {"data.tar": cut}, with_manifest={"data.tar": whole})
    case = "tar_cut_in_end_marker"
    whole = tar(pgdata(case, peek_id()))
    end = member_offsets(whole)[-1][2] + (48 << 10) * 2  # after the last member's data
    backup(case, {"data.tar": whole[: end + 512]})
    case = "tar_cut_inside_member"
    whole = tar(pgdata(case, peek_id()))
    backup(case, {"data.tar": whole[: member_offsets(whole)[-1][2] + 1000]})
    case = "gz_tar_cut_at_member_boundary"
    whole = tar(pgdata(case, peek_id()))
    backup(case, {"data.tar.gz": gz(whole[: member_offsets(whole)[-1][1]])})
    case = "gz_truncated"
    stream = gz(tar(pgdata(case, peek_id())))
    backup(case, {"data.tar.gz": stream[: len(stream) // 2]})
    case = "gz_without_trailer"
    stream = gz(tar(pgdata(case, peek_id())))
    backup(case, {"data.tar.gz": stream[:-8]})
    case = "gz_bad_crc"
    stream = gz(tar(pgdata(case, peek_id())))
    backup(case, {"data.tar.gz": flip(stream, len(stream) - 6)})
    for case, codec in [
        ("bz2_truncated", "tar.bz2"),
        ("snappy_truncated_mid_chunk", "tar.snappy"),
        ("lz4_truncated", "tar.lz4"),
        ("zst_truncated", "tar.zst"),
    ]:
        stream = CODECS[codec](tar(pgdata(case, peek_id())))
        backup(case, {f"data.{codec}": stream[: len(stream) * 2 // 3]})
    case = "lz4_without_end_mark"
    stream = lz4_checked(tar(pgdata(case, peek_id())))
    backup(case, {"data.tar.lz4": stream[:-8]})  # end mark (4) and content checksum (4)
    case = "snappy_cut_at_chunk_boundary"
    stream = snappy_stream(tar(pgdata(case, peek_id())))
    ends = snappy_chunk_ends(stream)
    assert len(ends) >= 3, ends  # identifier, then at least two data chunks
    backup(case, {"data.tar.snappy": stream[: ends[1]]})
    case = "tablespace_archive_cut"
    whole = tar(tablespace_members())
    backup(
        case,
        {
            "data.tar": tar(pgdata(case, peek_id())),
            f"{TS_OID}.tar": whole[: member_offsets(whole)[-1][1]],
        },
        tablespaces=one_tablespace(case),
    )
    case = "part_cut_at_member_boundary"
    objects = full(case)
    stream = objects["data_0001.tar"]
    objects["data_0001.tar"] = stream[: member_offsets(stream)[-1][1]]
    backup(case, objects)
    # Flipped bytes.
    for case, with_manifest in [
        ("tar_flipped_with_manifest", True),
        ("tar_flipped_without_manifest", False),
    ]:
        whole = tar(pgdata(case, peek_id()))
        offset = member_offsets(whole)[-1][2] + 100  # inside base/1/1259's data
        backup(
            case,
            {"data.tar": flip(whole, offset)},
            with_manifest={"data.tar": whole} if with_manifest else None,
        )
    case = "tar_flipped_header"
    whole = tar(pgdata(case, peek_id()))
    backup(case, {"data.tar": flip(whole, member_offsets(whole)[-1][1] + 3)})
    for case, codec, encode in [
        ("zst_flipped", "tar.zst", zst_checked),
        ("lz4_flipped", "tar.lz4", lz4_checked),
        ("bz2_flipped", "tar.bz2", bz),
        ("snappy_flipped", "tar.snappy", snappy_stream),
        ("gz_flipped", "tar.gz", gz),
    ]:
        stream = encode(tar(pgdata(case, peek_id())))
        backup(case, {f"data.{codec}": flip(stream, len(stream) // 2)})
    case = "zst_without_checksum_flipped_with_manifest"
    stream = zst_barman(tar(pgdata(case, peek_id())))
    flipped = flip(stream, len(stream) // 2)
    backup(case, {"data.tar.zst": flipped}, with_manifest={"data.tar.zst": stream})
    case = "part_flipped_with_manifest"
    objects = full(case)
    vouched = dict(objects)
    objects["data_0001.tar"] = flip(objects["data_0001.tar"], 2000)
    backup(case, objects, with_manifest=vouched)


# ---------------------------------------------------------------- WAL


SEG = 16 << 20
PAGE = 8192
MAGIC = 0xD113  # PostgreSQL 16
SYSID = 7345678901234567890


def segment(tli, segno, size=SEG, sysid=SYSID):
    """A WAL segment: a long page header naming (tli, segno), a few pages of records
    (short page headers, noise), zeros after the switch."""
    data = bytearray(size)
    pageaddr = segno * size
    struct.pack_into("<HHIQI4xQII", data, 0, MAGIC, 0x0002, tli, pageaddr, 0, sysid, size, PAGE)
    fill = noise(segno, 3 * PAGE)
    data[40:PAGE] = fill[40:PAGE]
    for page in (1, 2):
        at = page * PAGE
        data[at : at + PAGE] = fill[at : at + PAGE]
        struct.pack_into("<HHIQI4x", data, at, MAGIC, 0, tli, pageaddr + at, 0)
    return bytes(data)


def wal_name(tli, segno, size=SEG):
    per_log = 0x100000000 // size
    return f"{tli:08X}{segno // per_log:08X}{segno % per_log:08X}"


def wal(case, name, stored, expected=None, suffix=""):
    """Stores `stored` as wals/<dir>/<name><suffix>; `expected` is what must be restored."""
    directory = name[:16] if not name.endswith(".history") else ""
    write(os.path.join(BUCKET, "srv", "wals", directory, name + suffix), stored)
    if expected is not None:
        digest = hashlib.sha256(expected).hexdigest()
        write(os.path.join(WORK, "expected", case), f"{digest} {len(expected)}\n".encode())
    PRINTED.append(f"{case} srv {name.removesuffix('.partial')}")


def wals():
    segno = iter(range(0x10, 0x100))
    for case, encode, suffix in [
        ("wal_ok_plain", lambda d: d, ""),
        ("wal_ok_gz", gz, ".gz"),
        ("wal_ok_bz2", bz, ".bz2"),
        ("wal_ok_zst", zst_checked, ".zst"),
        ("wal_ok_zst_barman", lambda d: zstandard.ZstdCompressor().compress(d), ".zst"),
        ("wal_ok_lz4", lz4_checked, ".lz4"),
        ("wal_ok_lz4_barman", lz4.frame.compress, ".lz4"),
        ("wal_ok_snappy", snappy_stream, ".snappy"),
    ]:
        n = next(segno)
        data = segment(1, n)
        wal(case, wal_name(1, n), encode(data), data, suffix)
    n = next(segno)
    data = segment(1, n)
    wal("wal_ok_partial", wal_name(1, n) + ".partial", gz(data), data, ".gz")
    # A cluster initialised with --wal-segsize=1: segment numbers past 0xFF.
    data = segment(1, 0xA00, size=1 << 20)
    wal("wal_ok_1mib_segment", wal_name(1, 0xA00, size=1 << 20), zst_checked(data), data, ".zst")
    history = b"1\t0/3000000\tno recovery target specified\n"
    wal("wal_ok_history", "00000002.history", history, history)
    # Damaged.
    n = next(segno)
    stream = lz4_checked(segment(1, n))
    wal("wal_lz4_flipped", wal_name(1, n), flip(stream, len(stream) // 2), suffix=".lz4")
    n = next(segno)
    stream = zst_checked(segment(1, n))
    wal("wal_zst_flipped", wal_name(1, n), flip(stream, len(stream) // 2), suffix=".zst")
    n = next(segno)
    stream = gz(segment(1, n))
    wal("wal_gz_truncated", wal_name(1, n), stream[: len(stream) // 2], suffix=".gz")
    n = next(segno)
    stream = gz(segment(1, n))
    wal("wal_gz_without_trailer", wal_name(1, n), stream[:-8], suffix=".gz")
    n = next(segno)
    stream = lz4_checked(segment(1, n))
    wal("wal_lz4_truncated", wal_name(1, n), stream[: len(stream) // 2], suffix=".lz4")
    n = next(segno)
    stream = zst_checked(segment(1, n))
    wal("wal_zst_truncated", wal_name(1, n), stream[: len(stream) // 2], suffix=".zst")
    n = next(segno)
    wal("wal_short_plain", wal_name(1, n), segment(1, n)[: SEG - PAGE])
    n = next(segno)
    wal("wal_long_gz", wal_name(1, n), gz(segment(1, n) + bytes(512)), suffix=".gz")
    n = next(segno)
    wal("wal_empty", wal_name(1, n), b"")
    n = next(segno)
    wal("wal_other_segment", wal_name(1, n), zst_checked(segment(1, n + 1)), suffix=".zst")
    n = next(segno)
    wal("wal_other_timeline", wal_name(1, n), gz(segment(2, n)), suffix=".gz")
    n = next(segno)
    wal("wal_zeros", wal_name(1, n), gz(bytes(SEG)), suffix=".gz")
    n = next(segno)
    # 16 MiB whose header says the segments are of 1 MiB.
    data = bytearray(segment(1, n))
    struct.pack_into("<I", data, 32, 1 << 20)  # xlp_seg_size
    wal("wal_header_size_mismatch", wal_name(1, n), gz(bytes(data)), suffix=".gz")
    # The first segment of a new timeline starts as a copy of the old timeline's: pages
    # of timeline 1 in a segment named for timeline 2.
    n = next(segno)
    data = segment(1, n)
    wal("wal_ok_older_timeline_pages", wal_name(2, n), gz(data), data, ".gz")


def disk():
    # 8 MiB of incompressible relation data, for a tmpfs of a few MiB.
    case = "disk_full"
    objects = {"data.tar.gz": gz(tar(pgdata(case, peek_id(), big=8 << 20)))}
    backup(case, objects, with_manifest=True)


{"containment": containment, "completeness": completeness, "wal": wals, "disk": disk}[SUITE]()
# What base/1/1259 must hold once restored.
write(
    os.path.join(WORK, "expected", "relation"),
    f"{hashlib.sha256(RELATION).hexdigest()} {len(RELATION)}\n".encode(),
)
print("\n".join(PRINTED))
