#!/usr/bin/env bash
# `barman backup` of a snapshot server (backup_method = snapshot, AWS EBS on moto): barman-rs
# against Python Barman 3.20.1 side by side, on the same PostgreSQL cluster, instance and disks.
#
#   bench/server-backup-bench.sh [--runs N] [--scenarios LIST] [--load TPS] [--output FILE]
#                                [--keep-workdir]
#
#   --runs N          repetitions of every scenario and tool (default 3; the report gives the
#                     median and the range)
#   --scenarios LIST  comma-separated, from 1disk, 4disks (default both)
#   --load TPS        a light pgbench write load (-R TPS, one client) during the whole
#                     benchmark; 0 = none (default 10)
#   --output FILE     the Markdown report (default bench/server-backup-bench-results.md); also
#                     printed on stdout
#   --keep-workdir    keep the temp dir (configurations, outputs, backup.info files)
#
# Needs the test services running (`scripts/test-services.sh start`) and their environment
# file sourced, or named by BARMAN_RS_SERVICES_ENV: the EC2 fake in front of moto
# (BARMAN_RS_TEST_EC2_ENDPOINT), the sshd on 127.0.0.1 (BARMAN_RS_TEST_SSH_COMMAND), Python
# Barman (BARMAN_RS_TEST_BARMAN_BIN).
#
# What it does:
#   1. builds the release barman-rs (CARGO=true skips the build; BARMAN_RS_BIN=PATH uses that
#      binary instead), links it as `barman`.
#   2. an EC2 instance with 4 volumes (crates/barman-cloud-cli/tests/it/ec2_world.py), a mount
#      table for the findmnt stand-in (tests/fakes/findmnt) reached through ssh_command over the
#      real sshd (the wrapper of tests/it/server_world.rs): disk 0 holds PGDATA, disks 1-3 are
#      mounted, empty, elsewhere.
#   3. a PostgreSQL 15 cluster on disk 0 archiving (cp) into the incoming/ of every server of
#      both barman_homes (one per tool: servers snap1 on disk 0, snap4 on disks 0-3),
#      `pgbench -i -s 1`, the --load pgbench in the background; `barman check` of every server.
#   4. per repetition and scenario, each tool (the one going first alternates):
#      `barman -c CONF backup --wait --immediate-checkpoint snapN` under /usr/bin/time (wall,
#      user+sys CPU, peak RSS); the new backup.info read back: the run counts when it is DONE
#      with one snapshot per disk, each `completed` in EC2 (DescribeSnapshots); time in
#      backup mode = end_time - begin_time (PostgreSQL's clock at pg_backup_start and
#      pg_backup_stop). The snapshots are then deleted.
#   5. writes the Markdown report.
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
set -euo pipefail
export LC_ALL=C
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin
RUNS=3
SCENARIOS=1disk,4disks
LOAD_TPS=10
OUTPUT=$REPO/bench/server-backup-bench-results.md
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --load) LOAD_TPS=${2:?}; shift 2 ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $LOAD_TPS =~ ^[0-9]+$ ]] || die "--load must be a non-negative integer"
IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
for s in "${SCENARIO_LIST[@]}"; do
    case $s in 1disk | 4disks) ;; *) die "unknown scenario $s" ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (runuser -u postgres)"
if [ -n "${BARMAN_RS_SERVICES_ENV:-}" ]; then
    # shellcheck disable=SC1090
    . "$BARMAN_RS_SERVICES_ENV"
fi
for v in BARMAN_RS_TEST_EC2_ENDPOINT BARMAN_RS_TEST_SSH_COMMAND BARMAN_RS_TEST_BARMAN_BIN; do
    [ -n "${!v:-}" ] || die "$v unset: start scripts/test-services.sh and source its env file"
done
mkdir -p "$(dirname "$OUTPUT")"
OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")
PY=$BARMAN_RS_TEST_BARMAN_BIN/python
BARMAN_PY=$BARMAN_RS_TEST_BARMAN_BIN/barman

WORK=$(mktemp -d /tmp/server-backup-bench.XXXXXX)
chmod 711 "$WORK"
cd "$WORK"
LOG=$WORK/bench.log
: >"$LOG"
mkdir -p "$WORK/out" "$WORK/bin"
PG_DATA='' LOAD_PID='' WORLD=''

export EC2_ENDPOINT=$BARMAN_RS_TEST_EC2_ENDPOINT AWS_ENDPOINT_URL_EC2=$BARMAN_RS_TEST_EC2_ENDPOINT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_ENDPOINT_URL || true

world() { # world COMMAND JSON: ec2_world.py with Barman's boto3
    printf '%s' "$2" | "$PY" "$REPO/crates/barman-cloud-cli/tests/it/ec2_world.py" "$1"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    [ -z "$LOAD_PID" ] || { kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null; }
    [ -z "$PG_DATA" ] || runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG" 2>&1
    [ -z "$WORLD" ] || world cleanup "$WORLD" >>"$LOG" 2>&1
    finish_cleanup "$rc"
}
install_traps

# 1. the binary
if [ -n "${BARMAN_RS_BIN:-}" ]; then
    RS=$BARMAN_RS_BIN
    GIT_REV="$(cd "$REPO" && git rev-parse --short HEAD), binary $RS"
else
    build_barman_rs
fi
ln -s "$RS" "$WORK/bin/barman"
BARMAN_RS=$WORK/bin/barman

# 2. EC2 and mounts
say "EC2 instance with 4 volumes"
NAME=srvbench-$$-$RANDOM
SPECS=$(for i in 0 1 2 3; do
    dev=(/dev/sdf /dev/sdg /dev/sdh /dev/sdi)
    printf '{"name": "%s-d%s", "device": "%s", "size": 1}\n' "$NAME" "$i" "${dev[$i]}"
done | paste -sd, -)
ANSWER=$(world instance "{\"name\": \"$NAME\", \"virtualization\": \"hvm\", \"volumes\": [$SPECS]}")
WORLD=$("$PY" -c '
import json, sys
a = json.loads(sys.argv[1])["ok"] if "ok" in json.loads(sys.argv[1]) else json.loads(sys.argv[1])
print(json.dumps({"instances": [a["instance_id"]], "volumes": [v["id"] for v in a["volumes"]],
    "snapshots": [], "attachments": [{"volume": v["id"], "instance": a["instance_id"],
    "device": v["device"]} for v in a["volumes"]]}))' "$ANSWER")
mkdir -p "$WORK/disks"
for i in 0 1 2 3; do mkdir -p "$WORK/disks/disk$i"; done
chown postgres "$WORK/disks/disk0"
{
    echo "/dev/sdf $WORK/disks/disk0 rw,noatime"
    echo "/dev/sdg $WORK/disks/disk1 rw,noatime"
    echo "/dev/sdh $WORK/disks/disk2 rw,noatime"
    echo "/dev/sdi $WORK/disks/disk3 rw,noatime"
} >"$WORK/mounts"
FAKES=$(cd "$REPO/tests/fakes" && pwd)
cat >"$WORK/ssh-pg" <<EOF
#!/bin/sh
opts=''
while [ "\$1" = '-o' ]; do opts="\$opts -o \$2"; shift 2; done
exec $BARMAN_RS_TEST_SSH_COMMAND \$opts "env PATH=$FAKES:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin BARMAN_RS_FAKE_MOUNTS=$WORK/mounts \$*"
EOF
chmod 755 "$WORK/ssh-pg"

# 3. PostgreSQL, homes, configurations
PG_DATA=$WORK/disks/disk0/data
PORT=$((20000 + RANDOM % 20000))
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C -N >>"$LOG" 2>&1
INCOMINGS=()
for tool in py rs; do
    for srv in snap1 snap4; do
        mkdir -p "$WORK/home-$tool/$srv/incoming"
        chown postgres "$WORK/home-$tool/$srv/incoming"
        INCOMINGS+=("$WORK/home-$tool/$srv/incoming")
    done
done
cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK/disks/disk0'
archive_mode = on
archive_command = 'for d in ${INCOMINGS[*]}; do cp %p \$d/%f || exit 1; done'
EOF
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/disks/disk0/pg.log" -w start >>"$LOG" 2>&1
PSQL=(runuser -u postgres -- /usr/bin/psql -X -At -h "$WORK/disks/disk0" -p "$PORT" -U postgres postgres)
runuser -u postgres -- /usr/bin/pgbench -h "$WORK/disks/disk0" -p "$PORT" -U postgres -i -s 1 postgres >>"$LOG" 2>&1
if [ "$LOAD_TPS" -gt 0 ]; then
    runuser -u postgres -- /usr/bin/pgbench -h "$WORK/disks/disk0" -p "$PORT" -U postgres -n -c 1 \
        -R "$LOAD_TPS" -T 36000 postgres >>"$LOG" 2>&1 &
    LOAD_PID=$!
fi
DISKS1="$NAME-d0"
DISKS4="$NAME-d0,$NAME-d1,$NAME-d2,$NAME-d3"
for tool in py rs; do
    cat >"$WORK/barman-$tool.conf" <<EOF
[barman]
barman_home = $WORK/home-$tool
barman_user = root
log_level = INFO
log_file = $WORK/barman-$tool.log

[snap1]
conninfo = host=$WORK/disks/disk0 port=$PORT user=postgres dbname=postgres
ssh_command = $WORK/ssh-pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = $NAME
snapshot_disks = $DISKS1
archiver = on

[snap4]
conninfo = host=$WORK/disks/disk0 port=$PORT user=postgres dbname=postgres
ssh_command = $WORK/ssh-pg
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = $NAME
snapshot_disks = $DISKS4
archiver = on
EOF
done
tool_bin() { if [ "$1" = py ]; then echo "$BARMAN_PY"; else echo "$BARMAN_RS"; fi; }
for tool in py rs; do
    for srv in snap1 snap4; do
        "$(tool_bin $tool)" -c "$WORK/barman-$tool.conf" check "$srv" >>"$LOG" 2>&1 ||
            die "barman check $srv ($tool) failed"
    done
done

# 4. runs
RESULTS=$WORK/results.tsv
printf 'run\tscenario\ttool\tok\twall\tcpu\trss_kb\tbackup_mode\n' >"$RESULTS"
measure() { # measure RUN SCENARIO TOOL
    local run=$1 scen=$2 tool=$3 srv disks id out
    case $scen in 1disk) srv=snap1 disks=1 ;; 4disks) srv=snap4 disks=4 ;; esac
    id=$run-$scen-$tool
    local before
    before=$(ls "$WORK/home-$tool/$srv/meta" 2>/dev/null | sort | tail -n 1)
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/out/$id.time" \
        "$(tool_bin "$tool")" -c "$WORK/barman-$tool.conf" backup --wait --immediate-checkpoint "$srv" \
        >"$WORK/out/$id.out" 2>&1 || true
    cat "$WORK/out/$id.out" >>"$LOG"
    local info
    info=$(ls "$WORK/home-$tool/$srv/meta"/*-backup.info 2>/dev/null | sort | tail -n 1)
    [ -n "$info" ] && [ "$(basename "$info")" != "$before" ] || info=''
    out=$("$PY" - "$info" "$disks" "$WORK/out/$id.time" <<'PYEOF'
import ast, datetime, json, os, subprocess, sys
path, disks, timefile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
wall, user, system, rss = open(timefile).read().split()[-4:]
ok, mode = 0, ""
if path:
    info = dict(l.rstrip("\n").split("=", 1) for l in open(path) if "=" in l)
    snaps = ast.literal_eval(info.get("snapshots_info", "None") or "None") or {}
    ids = [s["provider"]["snapshot_id"] for s in snaps.get("snapshots", [])]
    def call(op, params):
        a = subprocess.run([sys.executable, os.environ["WORLD_PY"], "call"], input=json.dumps({"op": op, "params": params}),
                           capture_output=True, text=True, check=True)
        return json.loads(a.stdout)
    states = []
    if ids:
        r = call("describe_snapshots", {"SnapshotIds": ids})
        states = [s["State"] for s in r.get("result", r).get("Snapshots", [])]
    ok = int(info.get("status") == "DONE" and len(ids) == disks and states == ["completed"] * disks)
    b = datetime.datetime.fromisoformat(info["begin_time"])
    e = datetime.datetime.fromisoformat(info["end_time"])
    mode = "%.3f" % (e - b).total_seconds()
    for i in ids:
        call("delete_snapshot", {"SnapshotId": i})
print("%d\t%s\t%.2f\t%s\t%s" % (ok, wall, float(user) + float(system), rss, mode))
PYEOF
)
    printf '%s\t%s\t%s\t%s\n' "$run" "$scen" "$tool" "$out" >>"$RESULTS"
    say "run $run $scen $tool: ok/wall/cpu/rss/backup-mode = $(echo "$out" | tr '\t' ' ')"
}
export WORLD_PY=$REPO/crates/barman-cloud-cli/tests/it/ec2_world.py
for run in $(seq 1 "$RUNS"); do
    for scen in "${SCENARIO_LIST[@]}"; do
        if [ $((run % 2)) = 1 ]; then order="py rs"; else order="rs py"; fi
        for tool in $order; do measure "$run" "$scen" "$tool"; done
    done
done

# 5. report
"$PY" - "$RESULTS" "$OUTPUT" "$RUNS" "$GIT_REV" "$LOAD_TPS" <<'PYEOF'
import statistics, sys, datetime
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
out, runs, rev, load = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
names = {"py": "Python Barman 3.20.1", "rs": "barman-rs"}
lines = ["# `barman backup` of a snapshot server: barman-rs vs Python Barman 3.20.1", "",
         "Generated by `bench/server-backup-bench.sh` on %s (barman-rs %s), %s runs per cell, "
         "pgbench load %s TPS. AWS EBS on moto behind the EC2 fake (snapshots complete at "
         "once), the findmnt stand-in over the real sshd, PostgreSQL 15. "
         "`backup --wait --immediate-checkpoint`; medians, range in brackets." %
         (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), rev, runs, load), "",
         "| disks | tool | runs ok | wall (s) | time in backup mode (s) | CPU user+sys (s) | peak RSS (MiB) |",
         "|---|---|---|---|---|---|---|"]
for scen in ("1disk", "4disks"):
    for tool in ("py", "rs"):
        sel = [r for r in rows if r[1] == scen and r[2] == tool]
        if not sel:
            continue
        good = [r for r in sel if r[3] == "1"]
        def cell(i, conv=float, fmt="%.2f"):
            vals = [conv(r[i]) for r in good if r[i]]
            if not vals:
                return "-"
            return "%s [%s-%s]" % (fmt % statistics.median(vals), fmt % min(vals), fmt % max(vals))
        lines.append("| %s | %s | %d/%d | %s | %s | %s | %s |" % (
            scen[0], names[tool], len(good), len(sel), cell(4), cell(7), cell(5),
            cell(6, lambda v: float(v) / 1024, "%.0f")))
lines += ["", "A run counts when the new backup.info is DONE with one snapshot per disk, each "
          "`completed` in EC2. Time in backup mode is backup.info's end_time - begin_time "
          "(PostgreSQL's clock at pg_backup_start and pg_backup_stop).", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PYEOF
