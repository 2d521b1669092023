#!/usr/bin/env python3
"""Markdown tables for bench/server-wal-bench.sh (Python standard library only).

    server-wal-report.py RESULTS.tsv RUNS.tsv ARCHIVE.tsv SEGMENTS RUNS

RESULTS.tsv: one line per measured process, tab-separated:

    run scenario compression client server segment wall_us rss_kib user_s sys_s
        remote_wall_s remote_rss_kib remote_user_s remote_sys_s rc

  scenario      put-wal, put-wal-cross, wal-restore (client over ssh) or get-wal (local -o)
  client server rs (barman-rs) or py (Barman); for get-wal both are the tool itself; ssh ssh:
                the floor (`cat` over the same ssh connection; its speed-up in parentheses)
  wall_us       bash $EPOCHREALTIME around `/usr/bin/time CMD`
  rss_kib user_s sys_s   the client process (with its ssh child)
  remote_*      the remote `barman` started by sshd (0 for get-wal: there is none)
  rc            exit status; 99: output differs from the source; 97: the remote barman never ran

RUNS.tsv: run scenario compression client server ok|FAILED; only "ok" runs count (a run with
one failed or unverified segment is left out entirely).

ARCHIVE.tsv: run compression tool wall_us rss_kib user_s sys_s stored_bytes (`barman
archive-wal`, one line per run, compression and tool; wall from bash's clock, the rest from
`/usr/bin/time`; stored_bytes: wals/ without xlog.db).
"""

import math
import statistics
import sys
from collections import defaultdict

NAMES = {"py": "Barman 3.20.1", "rs": "barman-rs", "ssh": "ssh floor: `cat` over the same ssh"}
SCENARIOS = (
    ("put-wal", "put-wal: barman-wal-archive → ssh → barman put-wal"),
    ("put-wal-cross", "put-wal, crossed"),
    ("wal-restore", "wal-restore: barman-wal-restore → ssh → barman get-wal"),
    ("get-wal", "barman get-wal -o DIR (local)"),
)
COMPS = ("none", "gzip", "zstd")


def p90(values):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def f1(v):
    return f"{v:.1f}"


def f0(v):
    return f"{v:.0f}"


def main():
    results, runs_path, archive_path, segments, nruns = sys.argv[1:6]
    segments, nruns = int(segments), int(nruns)
    status = {}
    for line in open(runs_path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) == 6:
            key = tuple(f[:5])
            # a FAILED line wins over an ok line of the same key
            status[key] = "FAILED" if status.get(key) == "FAILED" else f[5]

    rows = defaultdict(list)  # (scen, comp, client, server) -> samples of counted runs
    runs_ok = defaultdict(set)
    runs_all = defaultdict(set)
    totals = defaultdict(lambda: defaultdict(float))  # key -> run -> sum of wall ms
    for line in open(results, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 15:
            continue
        run, scen, comp, client, server = f[:5]
        key = (scen, comp, client, server)
        runs_all[key].add(run)
        if status.get((run,) + key) != "ok" or int(f[14]) != 0:
            continue
        runs_ok[key].add(run)
        wall_ms = int(f[6]) / 1000.0
        rows[key].append({
            "wall": wall_ms,
            "rss": int(f[7] or 0) / 1024.0,
            "cpu": (float(f[8] or 0) + float(f[9] or 0)) * 1000.0,
            "rwall": float(f[10] or 0) * 1000.0,
            "rrss": int(f[11] or 0) / 1024.0,
            "rcpu": (float(f[12] or 0) + float(f[13] or 0)) * 1000.0,
        })
        totals[key][run] += wall_ms

    def median_wall(key):
        s = rows.get(key)
        return statistics.median(x["wall"] for x in s) if s else None

    print(f"#### Per segment ({segments} segments per run, one process each)\n")
    print("| scenario | client → server | stored | runs counted | median ms / segment | p90 ms | "
          f"total s for {segments} (median of runs) | client CPU ms (mean) | client peak RSS MiB | "
          "remote barman ms (median) | remote barman CPU ms (mean) | remote barman peak RSS MiB | speed-up |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scen, title in SCENARIOS:
        for comp in COMPS:
            keys = sorted((k for k in runs_all if k[0] == scen and k[1] == comp),
                          key=lambda k: (k[2] != "py", k[3] != "py", k[2], k[3]))
            base_key = ("put-wal" if scen == "put-wal-cross" else scen, comp, "py", "py")
            base = median_wall(base_key)
            for key in keys:
                _, _, client, server = key
                floor = client == "ssh"
                who = NAMES[client] if scen == "get-wal" or floor else f"{NAMES[client]} → {NAMES[server]}"
                counted = f"{len(runs_ok[key])} of {len(runs_all[key])}"
                s = rows.get(key)
                if not s:
                    print(f"| {title} | {who} | {comp} | {counted} (FAILED) |" + " – |" * 9)
                    continue
                wall = [x["wall"] for x in s]
                med = statistics.median(wall)
                total = statistics.median(totals[key][r] for r in runs_ok[key]) / 1000.0
                remote = scen != "get-wal" and not floor
                if key == base_key:
                    speed = "1.0x"
                elif base is not None and med > 0:
                    speed = f"({base / med:.1f}x)" if floor else f"**{base / med:.1f}x**"
                else:
                    speed = "–"
                cells = [
                    title, who, comp, counted, f1(med), f1(p90(wall)), f1(total),
                    f0(statistics.fmean(x["cpu"] for x in s)), f1(max(x["rss"] for x in s)),
                    f1(statistics.median(x["rwall"] for x in s)) if remote else "–",
                    f0(statistics.fmean(x["rcpu"] for x in s)) if remote else "–",
                    f1(max(x["rrss"] for x in s)) if remote else "–",
                    speed,
                ]
                print("| " + " | ".join(cells) + " |")
    print()

    arch = defaultdict(list)
    arch_all = defaultdict(int)
    for line in open(archive_path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 8:
            continue
        run, comp, tool = f[:3]
        arch_all[(comp, tool)] += 1
        if status.get((run, "archive-wal", comp, tool, tool)) != "ok":
            continue
        rss = int(f[4]) if f[4].isdigit() else 0
        cpu = float(f[5] or 0) + float(f[6] or 0)
        arch[(comp, tool)].append((int(f[3]) / 1e6, cpu, rss / 1024.0, int(f[7]) / 1048576.0))

    print(f"#### barman archive-wal: filing {segments} segments from incoming/ into wals/ (one process)\n")
    print("| tool | compression | runs counted | wall s (median) | ms / segment | CPU s (median) "
          "| peak RSS MiB (max) | stored MiB | speed-up |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for comp in COMPS:
        base = arch.get((comp, "py"))
        base_wall = statistics.median(x[0] for x in base) if base else None
        for tool in ("py", "rs"):
            if (comp, tool) not in arch_all:
                continue
            s = arch.get((comp, tool), [])
            counted = f"{len(s)} of {arch_all[(comp, tool)]}"
            if not s:
                print(f"| {NAMES[tool]} | {comp} | {counted} (FAILED) |" + " – |" * 6)
                continue
            wall = statistics.median(x[0] for x in s)
            if tool == "py":
                speed = "1.0x"
            elif base_wall and wall > 0:
                speed = f"**{base_wall / wall:.1f}x**"
            else:
                speed = "–"
            print("| " + " | ".join([
                NAMES[tool], comp, counted, f"{wall:.2f}", f0(wall * 1000 / segments),
                f"{statistics.median(x[1] for x in s):.2f}", f1(max(x[2] for x in s)),
                f0(statistics.median(x[3] for x in s)), speed,
            ]) + " |")
    print()


if __name__ == "__main__":
    main()
