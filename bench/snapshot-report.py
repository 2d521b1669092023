#!/usr/bin/env python3
"""Markdown tables for bench/snapshot-bench.sh (Python standard library only).

    snapshot-report.py RESULTS.tsv WORLD_AGENT [CLOUD_LATENCY AZURE_RETRY_AFTER]

RESULTS.tsv, one line per measured run, tab-separated:

    scenario tool rep disks rc time_file show_json calls_json snaps_json

  tool        py (Barman) or rs (barman-rs)
  disks       the number of --snapshot-disk given
  time_file   the `/usr/bin/time -v -o` output of the run
  show_json   `barman-cloud-backup-show --format json URL srv last` of the tool itself
  calls_json  the EC2 (GCP, Azure) fake's recorded calls during the run (GET
              /_fake/calls?since=SEQ); calls whose User-Agent contains WORLD_AGENT are the
              harness's, not counted
  snaps_json  {snapshot ID or name: state} of the disks' snapshots after the run
              (DescribeSnapshots; the GCP / Azure fake's state, READY / Succeeded = completed)

For the gcp-* and azure-* scenarios the report also computes the floor of Barman's time in
backup mode from its sequential algorithm and polling, snapshot operations taking
CLOUD_LATENCY seconds each (see poll_wait), as a cross-check of the measured value.
"""

import json
import os
import statistics
import sys
from collections import Counter, defaultdict
import math
import random
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
    "gcp-1disk": "GCP, 1 disk",
    "gcp-4disks": "GCP, 4 disks",
    "azure-1disk": "Azure, 1 disk",
    "azure-4disks": "Azure, 4 disks",
}
CLOUDS = {"aws": "AWS (EC2 fake on moto)", "gcp": "GCP (Compute Engine fake)",
          "azure": "Azure (ARM fake)"}
# Barman 3.20.1 waiting on GCP (spec snapshots.md §11 item 11): globalOperations.get after
# 1 s, the pause growing x1.5 up to 20 s.
GCP_FIRST, GCP_FACTOR, GCP_MAX = 1.0, 1.5, 20.0


def cloud_of(scn):
    return scn.split("-")[0] if scn.startswith(("gcp-", "azure-")) else "aws"


def poll_wait(cloud, latency, retry_after):
    """Seconds from a snapshot's creation request to the poll that sees its operation done,
    when the operation takes `latency` seconds: GCP polls at 1, 2.5, 4.75, 8.125... s
    (cumulative pauses min(1.5^k, 20)); Azure every Retry-After seconds."""
    if cloud == "azure":
        return retry_after * max(1, math.ceil(latency / retry_after - 1e-9))
    t, pause = 0.0, GCP_FIRST
    while True:
        t += pause
        if t >= latency - 1e-9:
            return t
        pause = min(pause * GCP_FACTOR, GCP_MAX)


def gcp_jitter_mean(latency, draws=100000):
    """The same wait with google-api-core 2.44's full jitter (each pause uniform in [0, cap]),
    mean of `draws` seeded simulations."""
    rng = random.Random(1)
    total = 0.0
    for _ in range(draws):
        t, cap = 0.0, GCP_FIRST
        while t < latency:
            t += rng.uniform(0.0, cap)
            cap = min(cap * GCP_FACTOR, GCP_MAX)
        total += t
    return total / draws


def action_of(call, cloud):
    """A short name for a recorded call (the EC2 fake records the action itself)."""
    if cloud == "aws":
        return call.get("action", "?")
    path = call.get("path", "")
    method = call.get("method", "?")
    if cloud == "gcp":
        parts = [p for p in path.split("/") if p]
        if path == "/token":
            return "token"
        if parts[-1:] == ["wait"]:
            return "operations.wait"
        for kind in ("operations", "snapshots", "disks", "instances"):
            if kind in parts:
                one = parts.index(kind) + 1 < len(parts)
                verb = {"POST": "insert", "DELETE": "delete"}.get(method, "get" if one else "list")
                return "%s.%s" % (kind, verb)
        return "%s %s" % (method, path)
    kind = call.get("kind") or "?"
    return "%s %s" % (kind, method) if kind != "token" else "token"


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
    cloud = cloud_of(scn)
    calls = [c for c in load_json(calls_file, []) if agent not in (c.get("agent") or "")]
    listed = [s.get("provider", {}).get("snapshot_id") or s.get("provider", {}).get("snapshot_name")
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
    failed_calls = [c for c in calls if not 200 <= (c.get("status") or 0) < 300]
    return {
        "scn": scn, "cloud": cloud, "tool": tool, "rep": int(rep), "disks": disks, "rc": int(rc),
        "time": parse_time(time_file), "mode": backup_mode(info) if info else None,
        "calls": Counter(action_of(c, cloud) for c in calls),
        "failed_calls": len(failed_calls), "problems": problems,
    }


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2):
    return "–" if value is None else "%.*f" % (digits, value)


def main():
    results, agent = sys.argv[1], sys.argv[2]
    latency = float(sys.argv[3]) if len(sys.argv) > 3 else None
    retry_after = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
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
    for cloud in CLOUDS:
        scns = [s for s in scenarios if cloud_of(s) == cloud]
        if scns:
            summary_table(cloud, scns, summary, groups, latency, retry_after)
    every_run(runs, scenarios, groups)


def summary_table(cloud, scenarios, summary, groups, latency, retry_after):
    requests = "EC2 requests" if cloud == "aws" else "requests"
    print(f"{CLOUDS[cloud]}:")
    print()
    print(f"| scenario | tool | wall s | in backup mode s | CPU s | peak RSS MiB | {requests} "
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
    if cloud != "aws" and latency is not None:
        floor_note(cloud, scenarios, groups, latency, retry_after)


def floor_note(cloud, scenarios, groups, latency, retry_after):
    """Barman's computed floor in backup mode beside the measured one: it snapshots the disks
    one after the other, waiting for each operation before the next."""
    wait = poll_wait(cloud, latency, retry_after)
    floors = []
    for scn in scenarios:
        runs = next((groups[k] for k in ((scn, "py"), (scn, "rs")) if k in groups), None)
        if runs:
            floors.append(f"{SCENARIOS[scn]} {runs[0]['disks'] * wait:.2f} s")
    if cloud == "gcp":
        polling = ("GCP polls the operation after 1 s, the pause growing x1.5 up to 20 s (polls "
                   "at 1, 2.5, 4.75, 8.125... s: T = the first of them >= L; with the jitter "
                   "below, less on average)")
    else:
        polling = f"Azure polls every Retry-After (the fake sends {retry_after:g} s)"
    print(f"Cross-check: every snapshot operation takes L = {latency:g} s (injected); Barman "
          "snapshots the disks one after the other, waiting for each operation before the "
          f"next, so its time in backup mode is at least n x T(L), n disks, T(L) the wait of "
          f"one snapshot under its polling: {polling}; T = {wait:.2f} s, floors: "
          + "; ".join(floors) + ".")
    if cloud == "gcp":
        jitter = gcp_jitter_mean(latency)
        print(f"google-api-core (Barman's venv) draws each pause uniformly between 0 and the "
              f"schedule's value (full jitter, after an immediate first poll): by simulation "
              f"(10^5 draws) its mean wait per {latency:g} s snapshot is {jitter:.2f} s rather "
              f"than T. barman-rs waits with globalOperations.wait, which answers when the "
              f"operation is done (operations.wait in the table below).")
    print()


def every_run(runs, scenarios, groups):
    print("#### Every run")
    print()
    for cloud in CLOUDS:
        scns = [s for s in scenarios if cloud_of(s) == cloud]
        if scns:
            every_run_table(cloud, runs, scns, groups)


def every_run_table(cloud, runs, scenarios, groups):
    actions = sorted({a for r in runs if r["cloud"] == cloud for a in r["calls"]})
    print(f"{CLOUDS[cloud]}:")
    print()
    print("| scenario | tool | run | exit | wall s | in backup mode s | CPU s | peak RSS MiB | "
          + "".join(a + " | " for a in actions) + "non-2xx | problems |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
          + "".join("---: | " for _ in actions) + "---: | --- |")
    for scn in scenarios:
        for tool in ("py", "rs"):
            for r in sorted(groups.get((scn, tool), []), key=lambda r: r["rep"]):
                t = r["time"]
                print(f"| {SCENARIOS[scn]} | {TOOLS[tool]} | {r['rep']} | {r['rc']} "
                      f"| {fmt(t[0] if t else None)} | {fmt(r['mode'])} "
                      f"| {fmt(t[1] if t else None)} | {fmt(t[2] / 1024 if t else None, 1)} | "
                      + "".join(str(r["calls"].get(a, 0)) + " | " for a in actions)
                      + f"{r['failed_calls']} | {'; '.join(r['problems']) or 'ok'} |")
    print()


if __name__ == "__main__":
    main()
