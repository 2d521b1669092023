"""Crafts the barman_home of bench/server-catalog-bench.sh (Python standard library only).

    server-catalog.py HOME SERVER BACKUPS WALS_PER_BACKUP

Writes HOME/SERVER as Barman 3.20.1 leaves a snapshot server: BACKUPS backups one day apart
ending yesterday (IDs in UTC, the script runs with TZ=UTC), each a
meta/<id>-backup.info of `mode=snapshot-concurrent` (the first 10 in the pre-3.13.2 place
base/<id>/backup.info) and base/<id>/data/backup_label; every 97th backup FAILED, the
newest WAITING_FOR_WALS, every 50th named, three kept (full, standalone, and one in the
pre-3.13.3 annotation place). The xlog.db indexes WALS_PER_BACKUP gzip segments per backup
(stored sizes around 16 KiB, mtimes as Python floats) plus one .backup file per backup and
a 00000002.history line; the segments themselves are not written (the catalog commands
read only xlog.db).
"""

import os
import random
import sys
import time

DAY = 86400


def seg(n, tli=1):
    return "%08X%08X%08X" % (tli, n >> 8, n & 0xFF)


def lsn(n, offset):
    return "%X/%X" % (n >> 8, ((n & 0xFF) << 24) + offset)


def info(server, bid, start, status, begin, end, name):
    fmt = "%Y-%m-%d %H:%M:%S"
    begin_time = time.strftime(fmt, time.gmtime(start)) + ".123456+00:00"
    end_time = time.strftime(fmt, time.gmtime(start + 7)) + ".654321+00:00"
    done = status in ("DONE", "WAITING_FOR_WALS")
    label = (
        "'START WAL LOCATION: %s (file %s)\\nCHECKPOINT LOCATION: %s\\nBACKUP METHOD: "
        "streamed\\nBACKUP FROM: primary\\nSTART TIME: %s UTC\\nLABEL: Barman backup %s "
        "%s\\nSTART TIMELINE: 1\\n'"
        % (lsn(begin, 0x28), seg(begin), lsn(begin, 0x60), begin_time[:19], server, bid)
    )
    snapshots = (
        "{'provider': 'aws', 'provider_info': {'account_id': '123456789012', 'region': "
        "'us-east-1'}, 'snapshots': [{'mount': {'mount_options': 'rw,noatime', "
        "'mount_point': '/mnt/pg'}, 'provider': {'device_name': '/dev/sdf', 'snapshot_id': "
        "'snap-%017x', 'snapshot_name': 'pgdata-%s', 'snapshot_lock_mode': None}}]}"
        % (start, bid.lower())
    )
    fields = {
        "backup_id": bid,
        "backup_label": label if done else "None",
        "begin_offset": "40",
        "begin_time": begin_time,
        "begin_wal": seg(begin),
        "begin_xlog": lsn(begin, 0x28),
        "children_backup_ids": "None",
        "cluster_size": str(23183659 + start % 100000),
        "compression": "None",
        "config_file": "/var/lib/pg/data/postgresql.conf",
        "copy_stats": "{'copy_time': 0.%06d, 'total_time': 1.5}" % (start % 999983)
        if done
        else "None",
        "data_checksums": "on",
        "deduplicated_size": "234",
        "encryption": "None",
        "end_offset": "256" if done else "None",
        "end_time": end_time if done else "None",
        "end_wal": seg(end) if done else "None",
        "end_xlog": lsn(end, 0x100) if done else "None",
        "error": "None" if status != "FAILED" else "failure during snapshot creation",
        "hba_file": "/var/lib/pg/data/pg_hba.conf",
        "ident_file": "/var/lib/pg/data/pg_ident.conf",
        "included_files": "None",
        "mode": "snapshot-concurrent",
        "parent_backup_id": "None",
        "pgdata": "/var/lib/pg/data",
        "server_name": server,
        "size": "234",
        "snapshots_info": snapshots if done else "None",
        "status": status,
        "summarize_wal": "None",
        "systemid": "7713653521696452786",
        "tablespaces": "None",
        "timeline": "1",
        "version": "150018",
        "xlog_segment_size": "16777216",
    }
    if name:
        fields["backup_name"] = name
    return "".join("%s=%s\n" % (k, fields[k]) for k in sorted(fields))


def main():
    home, server, count, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(20261130)
    root = os.path.join(home, server)
    for sub in ("base", "meta", "wals", "incoming", "streaming", "errors"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    first = (int(time.time()) // DAY - count) * DAY + 3600
    ids = []
    xlog = []
    wal_time = float(first - DAY)
    for i in range(count):
        start = first + i * DAY
        bid = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start))
        begin = 2 + i * per
        end = begin + 1
        status = "DONE"
        if i % 97 == 96:
            status = "FAILED"
        if i == count - 1:
            status = "WAITING_FOR_WALS"
        name = "weekly-%d" % i if i % 50 == 49 else None
        backup_dir = os.path.join(root, "base", bid)
        os.makedirs(os.path.join(backup_dir, "data"))
        with open(os.path.join(backup_dir, "data", "backup_label"), "w") as f:
            f.write("START WAL LOCATION: %s (file %s)\n" % (lsn(begin, 0x28), seg(begin)))
        path = (
            os.path.join(backup_dir, "backup.info")
            if i < 10
            else os.path.join(root, "meta", "%s-backup.info" % bid)
        )
        with open(path, "w") as f:
            f.write(info(server, bid, start, status, begin, end, name))
        ids.append(bid)
        for n in range(begin, begin + per):
            wal_time += DAY / per + rng.random()
            xlog.append((seg(n), 15000 + rng.randrange(3000), wal_time, "gzip"))
            if n == begin:
                xlog.append(("%s.00000028.backup" % seg(n), 258, wal_time + 0.01, "gzip"))
        if i == count // 2:
            xlog.append(("00000002.history", 42, wal_time + 0.5, "None"))
    for bid, target in ((ids[100], "full"), (ids[200], "standalone")):
        with open(os.path.join(root, "meta", "%s-keep" % bid), "w") as f:
            f.write(target)
    legacy = os.path.join(root, "base", ids[5], "annotations")
    os.makedirs(legacy)
    with open(os.path.join(legacy, "keep"), "w") as f:
        f.write("full")
    with open(os.path.join(root, "wals", "%s-xlog.db" % server), "w") as f:
        for name, size, mtime, comp in xlog:
            f.write("%s\t%d\t%r\t%s\tNone\n" % (name, size, mtime, comp))
    print(ids[len(ids) // 2])


if __name__ == "__main__":
    main()
