#!/usr/bin/env python3
"""Markdown tables for bench/backup-bench.sh (Python standard library only).

    backup-report.py RESULTS.tsv DATA_BYTES

RESULTS.tsv has one line per measured command, tab-separated:

    op tool compression destination rc time_file size_bytes server_ticks note

  op           backup or restore
  tool         py (Barman), rs (barman-rs), rs-file (barman-rs to file://), pgbr (pgBackRest),
               tar / tar-file / pg (the floors: tar | cat, tar to a file, PostgreSQL's own
               pg_backup_start + pg_backup_stop)
  time_file    the `/usr/bin/time -v -o` output of the command
  size_bytes   backup: bytes stored (objects or files of that backup); restore: du -sb of the
               restored directory
  server_ticks CPU time the S3 server used during the command (clock ticks; 0 when no server)
  note         a warning (restored size off, files missing), or empty

DATA_BYTES is what a base backup copies (PGDATA minus pg_wal/ contents): the restored size is
shown as a percentage of it.
"""

import os
import re
import sys

# timefile.py sits next to this script: importable whatever the current directory is; no
# __pycache__ left in bench/.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from timefile import parse_time  # noqa: E402

TOOLS = {
    "py": "Barman 3.20.1",
    "rs": "barman-rs",
    "rs-file": "barman-rs",
    "pgbr": "pgBackRest",
    "tar": "floor: tar \\| cat",
    "tar-file": "floor: tar to a file",
    "pg": "floor: pg_backup_start + pg_backup_stop",
}
DEST = {"s3": "S3 (SeaweedFS)", "file": "file://", "posix": "posix repo", "pipe": "pipe", "postgres": "psql"}
COMPRESSIONS = ("none", "gzip", "bzip2", "snappy", "lz4", "zstd")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def mib(n):
    return f"{n / 1048576:.1f}"


def main():
    path, data_bytes = sys.argv[1], int(sys.argv[2])
    rows = []
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 9:
            continue
        op, tool, comp, dest, rc, time_file, size, ticks, note = f
        rows.append({
            "op": op, "tool": tool, "comp": comp, "dest": dest, "rc": int(rc),
            "time": parse_time(time_file), "size": int(size) if re.fullmatch(r"\d+", size) else None,
            "ticks": int(ticks or 0), "note": note,
        })

    order = list(TOOLS)
    for op in ("backup", "restore"):
        sel = [r for r in rows if r["op"] == op]
        if not sel:
            continue
        size_head = "stored MiB (% of data)" if op == "backup" else "restored MiB (% of data)"
        print(f"#### {op.capitalize()}\n")
        print(f"| tool | compression | destination | wall s | CPU s | peak RSS MiB | S3 server CPU s | {size_head} | speed-up vs Barman (wall) | note |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        sel.sort(key=lambda r: (COMPRESSIONS.index(r["comp"]) if r["comp"] in COMPRESSIONS else 99, order.index(r["tool"])))
        for r in sel:
            barman = next((b for b in sel if b["tool"] == "py" and b["comp"] == r["comp"] and b["rc"] == 0 and b["time"]), None)
            name = TOOLS[r["tool"]]
            if op == "restore" and r["tool"] == "tar-file":
                name = "floor: tar xf a file"
            if r["tool"] == "rs":
                name = "**barman-rs**"
            note = r["note"]
            if r["rc"] != 0:
                note = (f"FAILED (exit {r['rc']}); " + note).rstrip("; ")
            if r["time"] is None or r["rc"] != 0:
                print(f"| {name} | {r['comp']} | {DEST.get(r['dest'], r['dest'])} | – | – | – | – | – | – | {note} |")
                continue
            wall, cpu, rss = r["time"]
            server = f"{r['ticks'] * TICK_S:.1f}" if r["dest"] == "s3" else "–"
            if r["size"]:
                size = f"{mib(r['size'])} ({100 * r['size'] / data_bytes:.0f}%)" if data_bytes else mib(r["size"])
            else:
                size = "–"
            if barman and wall > 0:
                speed = barman["time"][0] / wall
                speed = f"**{speed:.1f}x**" if r["tool"] in ("rs", "rs-file") else f"{speed:.1f}x"
            else:
                speed = "–"
            print(f"| {name} | {r['comp']} | {DEST.get(r['dest'], r['dest'])} | {wall:.2f} | {cpu:.2f} | {rss / 1024:.1f} | {server} | {size} | {speed} | {note} |")
        print()

    def wall(tool, comp="none"):
        r = next((r for r in rows if r["op"] == "backup" and r["tool"] == tool and r["comp"] == comp
                  and r["time"] and r["rc"] == 0), None)
        return r["time"][0] if r else None

    tar, pg, rs_file = wall("tar"), wall("pg"), wall("rs-file")
    if tar and rs_file:
        ratio = rs_file / tar
        verdict = "within" if ratio <= 1.5 else "NOT within"
        print(f"Uncompressed file:// backup vs the tar | cat floor: {rs_file:.2f} s / {tar:.2f} s = "
              f"**{ratio:.2f}x** ({verdict} the 1.5x target)", end="")
        if pg:
            both = tar + pg
            print(f"; vs tar | cat + pg_backup_start/stop ({both:.2f} s, what any backup that waits for "
                  f"WAL archiving pays): **{rs_file / both:.2f}x**", end="")
        print(".\n")

if __name__ == "__main__":
    main()
