#!/usr/bin/env python3
"""Markdown tables for bench/snapshot-bench.sh (Python standard library only).

    snapshot-report.py RESULTS.tsv WORLD_AGENT

RESULTS.tsv, one line per measured run, tab-separated:

    scenario tool rep disks rc time_file show_json calls_json snaps_json

  tool        py (Barman) or rs (barman-rs)
  disks       the number of --snapshot-disk given
  time_file   the `/usr/bin/time -v -o` output of the run
  show_json   `barman-cloud-backup-show --format json URL srv last` of the tool itself
  calls_json  the EC2 fake's recorded calls during the run (GET /_fake/calls?since=SEQ);
              calls whose User-Agent contains WORLD_AGENT are the harness's, not counted
  snaps_json  {snapshot ID: state} of the volumes' snapshots after the run (DescribeSnapshots)
"""

import json
import os
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime

# timefile.py sits next to this script: importable whatever the current directory is; no
# __pycache__ left in bench/.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from timefile import parse_time  # noqa: E402

TOOLS = {"py": "Barman 3.20.1", "rs": "barman-rs"}
SCENARIOS = {
    "1disk": "1 disk",
    "4disks": "4 disks",
    "1disk-slow": "1 disk, slow provider",
    "4disks-slow": "4 disks, slow provider",
}


def load_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def backup_mode(info):
    """end_time - begin_time in seconds, from backup-show's *_iso fields (None if missing)."""
    try:
        begin = datetime.fromisoformat(info["begin_time_iso"])
        end = datetime.fromisoformat(info["end_time_iso"])
    except (KeyError, TypeError, ValueError):
        return None
    return (end - begin).total_seconds()


def run_of(fields, agent):
    scn, tool, rep, disks, rc, time_file, show_file, calls_file, snaps_file = fields
    disks = int(disks)
    show = load_json(show_file, {})
    info = next(iter(show.values()), {}) if isinstance(show, dict) and show else {}
    snaps = load_json(snaps_file, {})
    calls = [c for c in load_json(calls_file, []) if agent not in c.get("agent", "")]
    listed = [s.get("provider", {}).get("snapshot_id")
              for s in (info.get("snapshots_info") or {}).get("snapshots", [])]
    problems = []
    if int(rc) != 0:
        problems.append("exit %s" % rc)
    if not info:
        problems.append("no DONE backup shown")
    elif info.get("status") != "DONE":
        problems.append("status %s" % info.get("status"))
    if info and len(listed) != disks:
        problems.append("%d snapshots listed, %d disks" % (len(listed), disks))
    not_done = [s for s in listed if snaps.get(s) != "completed"]
    if info and not_done:
        problems.append("snapshots not completed: %s" % ", ".join(
            "%s (%s)" % (s, snaps.get(s, "missing")) for s in not_done))
    extra = set(snaps) - set(listed)
    if extra:
        problems.append("%d snapshots not in the backup" % len(extra))
    failed_calls = [c for c in calls if c.get("status") != 200]
    return {
        "scn": scn, "tool": tool, "rep": int(rep), "disks": disks, "rc": int(rc),
        "time": parse_time(time_file), "mode": backup_mode(info) if info else None,
        "calls": Counter(c.get("action", "?") for c in calls),
        "failed_calls": len(failed_calls), "problems": problems,
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    return "–" if value is None else "%.*f" % (digits, value)


def main():
    results, agent = sys.argv[1], sys.argv[2]
    runs = []
    for line in open(results, encoding="utf-8"):
        fields = line.rstrip("\n").split("\t")
        if len(fields) == 9:
            runs.append(run_of(fields, agent))
    scenarios = [s for s in SCENARIOS if any(r["scn"] == s for r in runs)]
    groups = defaultdict(list)
    for r in runs:
        groups[r["scn"], r["tool"]].append(r)

    def summary(scn, tool):
        rs = [r for r in groups.get((scn, tool), []) if not r["problems"]]
        if not rs:
            return None
        return {
            "wall": median([r["time"][0] for r in rs if r["time"]]),
            "mode": median([r["mode"] for r in rs]),
            "cpu": median([r["time"][1] for r in rs if r["time"]]),
            "rss": median([r["time"][2] / 1024 for r in rs if r["time"]]),
            "calls": median([sum(r["calls"].values()) for r in rs]),
            "ok": len(rs), "all": len(groups[scn, tool]),
        }

    print("#### Summary (medians)")
    print()
    print("| scenario | tool | wall s | in backup mode s | CPU s | peak RSS MiB | EC2 requests "
          "| speed-up (wall) | speed-up (backup mode) | ok runs |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scn in scenarios:
        base = summary(scn, "py")
        for tool in ("py", "rs"):
            if (scn, tool) not in groups:
                continue
            s = summary(scn, tool)
            if s is None:
                n = len(groups[scn, tool])
                print(f"| {SCENARIOS[scn]} | {TOOLS[tool]} | – | – | – | – | – | – | – "
                      f"| **0 / {n}** |")
                continue
            speed = mode_speed = "–"
            if tool == "rs" and base:
                if base["wall"] and s["wall"]:
                    speed = "**%.1fx**" % (base["wall"] / s["wall"])
                if base["mode"] and s["mode"]:
                    mode_speed = "**%.1fx**" % (base["mode"] / s["mode"])
            ok = "%d / %d" % (s["ok"], s["all"])
            if s["ok"] < s["all"]:
                ok = "**" + ok + "**"
            calls = "%g" % s["calls"]
            print(f"| {SCENARIOS[scn]} | {TOOLS[tool]} | {fmt(s['wall'])} | {fmt(s['mode'])} "
                  f"| {fmt(s['cpu'])} | {fmt(s['rss'], 1)} | {calls} | {speed} | {mode_speed} "
                  f"| {ok} |")
    print()

    actions = sorted({a for r in runs for a in r["calls"]})
    print("#### Every run")
    print()
    print("| scenario | tool | run | exit | wall s | in backup mode s | CPU s | peak RSS MiB | "
          + " | ".join(actions) + " | non-200 | problems |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
          + " | ".join("---:" for _ in actions) + " | ---: | --- |")
    for scn in scenarios:
        for tool in ("py", "rs"):
            for r in sorted(groups.get((scn, tool), []), key=lambda r: r["rep"]):
                t = r["time"]
                print(f"| {SCENARIOS[scn]} | {TOOLS[tool]} | {r['rep']} | {r['rc']} "
                      f"| {fmt(t[0] if t else None)} | {fmt(r['mode'])} "
                      f"| {fmt(t[1] if t else None)} | {fmt(t[2] / 1024 if t else None, 1)} | "
                      + " | ".join(str(r["calls"].get(a, 0)) for a in actions)
                      + f" | {r['failed_calls']} | {'; '.join(r['problems']) or 'ok'} |")
    print()


if __name__ == "__main__":
    main()
