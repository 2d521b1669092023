#!/usr/bin/env python3
"""Markdown tables for bench/wal-bench.sh (Python standard library only).

    wal-bench-report.py RESULTS.tsv SERVER_LABEL...

RESULTS.tsv has one line per process invocation, tab-separated:

    server compression command tool segment wall_us rss_kib user_s sys_s server_ticks rc

  wall_us       wall time of the invocation (bash $EPOCHREALTIME around `/usr/bin/time CMD`)
  rss_kib       peak RSS of the process (`/usr/bin/time -f %M`)
  user_s sys_s  CPU time of the process (`/usr/bin/time -f %U %S`)
  server_ticks  CPU time the S3 server's processes used during the invocation (clock ticks)
  rc            exit status (a restore whose output differs from the source counts as rc 99)

tool is py (Barman), rs (barman-rs) or curl (a bare signed PUT/GET of the uncompressed segment:
the most any client could gain on that server; its speed-up is shown in parentheses).

SERVER_LABEL is "key=Human readable name"; one table is printed per server, in that order.
Failed invocations (rc != 0) are left out of the statistics and counted in the row.
"""

import math
import os
import statistics
import sys
from collections import defaultdict

TOOLS = {
    "py": "Barman 3.20.1 (Python)",
    "rs": "barman-rs",
    "curl": "curl: bare PUT/GET (server floor)",
}
COMMANDS = ("wal-archive", "wal-restore")
COMPRESSIONS = ("none", "gzip")
TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def p90(values):
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def fmt(value, digits=1):
    return f"{value:.{digits}f}"


def main():
    path, labels = sys.argv[1], sys.argv[2:]
    rows = defaultdict(list)
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 11:
            continue
        server, comp, command, tool, _seg = f[:5]
        wall_us, rss_kib = int(f[5]), int(f[6] or 0)
        cpu_s = float(f[7] or 0) + float(f[8] or 0)
        ticks, rc = int(f[9] or 0), int(f[10])
        rows[(server, comp, command, tool)].append((wall_us / 1000.0, rss_kib / 1024.0, cpu_s * 1000.0, ticks * TICK_MS, rc))

    for label in labels:
        key, _, name = label.partition("=")
        if not any(k[0] == key for k in rows):
            continue
        print(f"#### {name}\n")
        print("| tool | command | compression | median ms | p90 ms | min ms | median peak RSS MiB "
              "| max peak RSS MiB | speed-up (median) | tool CPU ms (mean) | server CPU ms (mean) |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for command in COMMANDS:
            for comp in COMPRESSIONS:
                medians = {}
                lines = []
                for tool in TOOLS:
                    samples = rows.get((key, comp, command, tool), [])
                    ok = [s for s in samples if s[4] == 0]
                    failed = len(samples) - len(ok)
                    name_cell = TOOLS[tool] + (f" ({failed} of {len(samples)} FAILED)" if failed else "")
                    if not ok:
                        if samples:
                            lines.append([name_cell, command, comp] + ["–"] * 8)
                        continue
                    wall = [s[0] for s in ok]
                    rss = [s[1] for s in ok]
                    medians[tool] = statistics.median(wall)
                    lines.append([
                        name_cell, command, comp,
                        fmt(statistics.median(wall)), fmt(p90(wall)), fmt(min(wall)),
                        fmt(statistics.median(rss)), fmt(max(rss)),
                        None,
                        fmt(statistics.fmean(s[2] for s in ok), 0),
                        fmt(statistics.fmean(s[3] for s in ok), 0),
                    ])
                for cells in lines:
                    if cells[8] is None:
                        if cells[0].startswith("barman-rs") and "py" in medians and "rs" in medians:
                            cells[8] = f"**{medians['py'] / medians['rs']:.1f}x**"
                        elif cells[0].startswith("curl") and "py" in medians and "curl" in medians:
                            cells[8] = f"({medians['py'] / medians['curl']:.1f}x)"
                        else:
                            cells[8] = "1.0x" if cells[0].startswith("Barman") else "–"
                    print("| " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
