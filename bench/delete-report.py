#!/usr/bin/env python3
"""Markdown tables for bench/delete-bench.sh (Python standard library only).

    delete-report.py RESULTS.tsv COMPARE.tsv

RESULTS.tsv, one line per measured run, tab-separated:

    scenario tool rc time_file server_ticks objects_before objects_after as_expected bucket metrics

  tool         py (Barman) or rs (barman-rs)
  time_file    the `/usr/bin/time -v -o` output of the run
  server_ticks CPU time SeaweedFS used during the run (clock ticks)
  as_expected  "yes", or "no (N keys differ)" against delete-catalog.py's expected key set
  metrics      METRICS.before / METRICS.after: SeaweedFS_s3_* Prometheus lines around the run

COMPARE.tsv, one line per scenario run with both tools:

    scenario status diff_file dry_run_output

  status       equal or MISMATCH (then diff_file holds `diff -u` of the two key lists)
  dry_run_output  identical / differs (N lines) for dry-run, "-" otherwise
"""

import os
import re
import sys
from collections import defaultdict

# timefile.py sits next to this script: importable whatever the current directory is; no
# __pycache__ left in bench/.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from timefile import parse_time  # noqa: E402

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
ARGS = {
    "redundancy": '`-r "REDUNDANCY 1"`',
    "window": '`-r "RECOVERY WINDOW OF 30 DAYS"`',
    "oldest": "`-b oldest`",
    "dry-run": '`-r "REDUNDANCY 1" --dry-run`',
}
TOOLS = {"py": "Barman 3.20.1", "rs": "barman-rs"}
METRIC = re.compile(r'^(SeaweedFS_s3_\w+)\{([^}]*)\}\s+(\S+)$')


def read_metrics(path, bucket):
    """{(name, type, code): value} of the bucket's SeaweedFS_s3_* counters."""
    out = {}
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        return out
    for line in lines:
        m = METRIC.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if labels.get("bucket") != bucket:
            continue
        try:
            out[(m.group(1), labels.get("type", ""), labels.get("code", ""))] = float(m.group(3))
        except ValueError:
            pass
    return out


def requests(prefix, bucket):
    """({type: count}, failed count, objects deleted) during the run, from the counters."""
    before, after = read_metrics(prefix + ".before", bucket), read_metrics(prefix + ".after", bucket)
    by_type, failed, deleted = defaultdict(int), 0, 0
    for key, value in after.items():
        n = int(value - before.get(key, 0))
        if n <= 0:
            continue
        name, typ, code = key
        if name == "SeaweedFS_s3_request_total":
            by_type[typ] += n
            if not code.startswith("2"):
                failed += n
        elif name == "SeaweedFS_s3_deleted_objects":
            deleted += n
    return by_type, failed, deleted


def main():
    results, compare_path = sys.argv[1], sys.argv[2]
    runs = {}
    scenarios = []
    for line in open(results, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if len(f) != 10:
            continue
        scn, tool, rc, time_file, ticks, before, after, expected, bucket, metrics = f
        if scn not in scenarios:
            scenarios.append(scn)
        req, failed, deleted = requests(metrics, bucket)
        runs[scn, tool] = {
            "rc": int(rc), "time": parse_time(time_file), "server": int(ticks or 0) * TICK_S,
            "before": int(before), "after": int(after), "expected": expected,
            "req": req, "failed": failed, "deleted": deleted,
        }
    compare = {}
    if os.path.exists(compare_path):
        for line in open(compare_path, encoding="utf-8"):
            f = line.rstrip("\n").split("\t")
            if len(f) == 4:
                compare[f[0]] = {"status": f[1], "diff": f[2], "output": f[3]}

    def pair(scn, fmt):
        cells = []
        for tool in ("py", "rs"):
            r = runs.get((scn, tool))
            cells.append(fmt(r) if r else "–")
        return " / ".join(cells)

    def wall(r):
        return f"{r['time'][0]:.2f}" if r["time"] else "?"

    print("#### Summary")
    print()
    print("| scenario | Barman wall s | barman-rs wall s | speed-up | CPU s (Barman / barman-rs) "
          "| peak RSS MiB (Barman / barman-rs) | S3 requests (Barman / barman-rs) "
          "| SeaweedFS CPU s (Barman / barman-rs) | objects before → after (Barman / barman-rs) "
          "| remaining sets equal? |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for scn in scenarios:
        py, rs = runs.get((scn, "py")), runs.get((scn, "rs"))
        speed = "–"
        if py and rs and py["time"] and rs["time"] and rs["time"][0] > 0:
            speed = f"**{py['time'][0] / rs['time'][0]:.1f}x**"
        c = compare.get(scn)
        if c:
            equal = "yes" if c["status"] == "equal" else "**MISMATCH**"
            if c["output"] != "-":
                equal += f"; dry-run output {c['output']}"
        else:
            equal = "– (one tool)"
        before = next(r["before"] for r in (py, rs) if r)
        cpu = pair(scn, lambda r: "%.2f" % r["time"][1] if r["time"] else "?")
        rss = pair(scn, lambda r: "%.1f" % (r["time"][2] / 1024) if r["time"] else "?")
        reqs = pair(scn, lambda r: str(sum(r["req"].values())))
        server = pair(scn, lambda r: "%.2f" % r["server"])
        after = pair(scn, lambda r: str(r["after"]))
        print(
            f"| {scn}: {ARGS.get(scn, scn)} | {wall(py) if py else '–'} | {wall(rs) if rs else '–'} | {speed} "
            f"| {cpu} | {rss} | {reqs} | {server} | {before} → {after} | {equal} |"
        )
    print()

    types = sorted({t for r in runs.values() for t in r["req"]})
    print("#### Per run")
    print()
    print("| scenario | tool | exit | " + " | ".join(f"{t} requests" for t in types)
          + " | non-2xx responses | objects deleted (server) | left as expected? |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in types) + " | ---: | ---: | --- |")
    for scn in scenarios:
        for tool in ("py", "rs"):
            r = runs.get((scn, tool))
            if not r:
                continue
            print(f"| {scn} | {TOOLS[tool]} | {r['rc']} | "
                  + " | ".join(str(r["req"].get(t, 0)) for t in types)
                  + f" | {r['failed']} | {r['deleted']} | {r['expected']} |")
    print()

    for scn in scenarios:
        c = compare.get(scn)
        if c and c["status"] != "equal" and os.path.exists(c["diff"]):
            lines = open(c["diff"], encoding="utf-8", errors="replace").read().splitlines()
            print(f"#### MISMATCH in {scn}: remaining keys, Barman (-) vs barman-rs (+)")
            print()
            print("```")
            print("\n".join(lines[:80]))
            if len(lines) > 80:
                print(f"... {len(lines) - 80} more lines")
            print("```")
            print()


if __name__ == "__main__":
    main()
