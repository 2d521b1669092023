#!/usr/bin/env bash
# Barman server catalog benchmark: barman-rs against Python Barman 3.20.1, side by side, same
# machine, same run: `barman list-backups` (console and JSON), `barman show-backup` of the
# middle backup, and `barman cron`, on a crafted snapshot server with many backups.
#
#   bench/server-catalog-bench.sh [--backups N] [--wals-per-backup N] [--runs N]
#                                 [--tools LIST] [--output FILE] [--keep-workdir]
#
#   --backups N          backups of the server (default 1000)
#   --wals-per-backup N  WAL segments indexed in xlog.db per backup (default 24, one a hour)
#   --runs N             repetitions (default 3; the tool going first alternates; the report
#                        gives medians)
#   --tools LIST         barman,barman-rs (default both; barman alone tests the harness)
#   --output FILE        where the Markdown report goes (default
#                        bench/server-catalog-bench-results.md); it is also printed on stdout
#   --keep-workdir       keep the temp dir (logs, outputs, raw results)
#
# What it does:
#   1. builds the release barman-rs (`cargo build --release -p barman-cloud-cli`, in
#      $CARGO_TARGET_DIR when set; CARGO=true skips the build).
#   2. crafts one barman_home (bench/server-catalog.py: server `srv`, backup_method snapshot,
#      BACKUPS backup.info files one day apart, some legacy-placed, FAILED, named and kept
#      ones, the newest WAITING_FOR_WALS, and an xlog.db of BACKUPS x WALS_PER_BACKUP gzip
#      segments plus .backup lines) and gives each tool its own copy and barman.conf, with
#      `retention_policy = RECOVERY WINDOW OF 520 WEEKS` and `minimum_redundancy = 1`: every
#      backup is inside the window, so statuses are computed for all and nothing is obsolete
#      (retention never has snapshots to delete: there is no cloud here).
#   3. per run and tool (under /usr/bin/time -v): `list-backups srv`, `-f json list-backups
#      srv`, `show-backup srv <middle ID>`, `-f json show-backup srv <middle ID>`, and `cron`
#      on a fresh copy of the home (cron may change the catalog: a WAITING_FOR_WALS backup
#      whose WALs are all archived becomes DONE, and retention will delete obsolete backups
#      once the server's cron enforces it). cron starts archive-wal in the background; the
#      harness waits for it before the next command.
#   4. checks the outputs: each command's stdout must be byte-identical between the tools
#      (cron's too), and so must `list-backups` after cron. Differences are reported.
#   5. writes the Markdown report.
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO, CARGO_TARGET_DIR. Needs
# root (root is the barman_user). Debian 12 tested.
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
ALL_SCENARIOS=catalog
SCENARIOS=catalog
BACKUPS=1000
PER=24
RUNS=3
TOOL_NAMES=barman,barman-rs
OUTPUT=$REPO/bench/server-catalog-bench-results.md
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --backups) BACKUPS=${2:?}; shift 2 ;;
    --backups=*) BACKUPS=${1#*=}; shift ;;
    --wals-per-backup) PER=${2:?}; shift 2 ;;
    --wals-per-backup=*) PER=${1#*=}; shift ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --tools) TOOL_NAMES=${2:?}; shift 2 ;;
    --tools=*) TOOL_NAMES=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $BACKUPS =~ ^[1-9][0-9]*$ ]] && ((BACKUPS >= 300)) || die "--backups must be an integer >= 300"
[[ $PER =~ ^[1-9][0-9]*$ ]] && ((PER >= 2 && PER < 256)) || die "--wals-per-backup must be in 2..255"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
parse_scenarios_and_tools
[ "$(id -u)" = 0 ] || die "run as root (root is the barman_user)"

BARMAN_PY=$TOOLS/barman-venv/bin/barman
[ -x "$BARMAN_PY" ] || die "$BARMAN_PY missing (scripts/test-services.sh install)"
[ -x /usr/bin/time ] || apt_install time

WORK=$(mktemp -d /tmp/barman-rs-catalog-bench.XXXXXX)
LOG=$WORK/log
ERRORS=$WORK/errors
mkdir -p "$WORK/time" "$WORK/out" "$WORK/results"
: >"$LOG"
: >"$ERRORS"
SERVER_PIDS=""
CHILD_PID=""

cleanup() {
    local rc=$?
    [ -z "$CHILD_PID" ] || kill -- -"$CHILD_PID" 2>/dev/null || true
    finish_cleanup "$rc"
}
install_traps

build_barman_rs
say "barman-rs at $RS ($GIT_REV)"

say "crafting a snapshot server of $BACKUPS backups, $((BACKUPS * PER)) WALs in xlog.db"
mkdir -p "$WORK/template"
MIDDLE=$(python3 "$REPO/bench/server-catalog.py" "$WORK/template" srv "$BACKUPS" "$PER")
say "middle backup: $MIDDLE"

# One barman_home, barman.conf and `barman` program per tool.
for t in "${TOOL_LIST[@]}"; do
    cat >"$WORK/$t.conf" <<EOF
[barman]
barman_home = $WORK/home-$t
barman_user = root
log_level = INFO
log_file = $WORK/barman-$t.log

[srv]
description = Snapshot server
conninfo = host=127.0.0.1 user=postgres dbname=postgres
ssh_command = ssh postgres@127.0.0.1
backup_method = snapshot
backup_options = concurrent_backup
snapshot_provider = aws
aws_region = us-east-1
snapshot_instance = i-0123456789abcdef0
snapshot_disks = vol-0123456789abcdef0
archiver = on
retention_policy = RECOVERY WINDOW OF 520 WEEKS
minimum_redundancy = 1
EOF
done
# barman-rs is a multi-call binary: it is `barman` when called by that name.
mkdir -p "$WORK/bin"
ln -s "$RS" "$WORK/bin/barman"
program() { if [ "$1" = py ]; then echo "$BARMAN_PY"; else echo "$WORK/bin/barman"; fi; }
fresh_home() { rm -rf "$WORK/home-$1" && cp -a "$WORK/template" "$WORK/home-$1"; }
# cron's archive-wal runs in the background: wait until no archive-wal of this home is left.
wait_archivers() {
    local n=0
    while pgrep -f -- "-c $WORK/$1.conf" >/dev/null 2>&1 && ((n < 100)); do
        sleep 0.1
        n=$((n + 1))
    done
}

COMMANDS=(list list-json show show-json cron)
run_one() { # run_one TOOL RUN COMMAND
    local t=$1 run=$2 c=$3 bin id conf
    bin=$(program "$t")
    conf=$WORK/$t.conf
    id=$c-$t-$run
    case $c in
    list) timed "$id" "$bin" -c "$conf" list-backups srv ;;
    list-json) timed "$id" "$bin" -c "$conf" -f json list-backups srv ;;
    show) timed "$id" "$bin" -c "$conf" show-backup srv "$MIDDLE" ;;
    show-json) timed "$id" "$bin" -c "$conf" -f json show-backup srv "$MIDDLE" ;;
    cron)
        fresh_home "$t"
        timed "$id" "$bin" -c "$conf" cron
        wait_archivers "$t"
        "$bin" -c "$conf" list-backups srv >"$WORK/out/after-cron-$t-$run" 2>&1 || true
        ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$c" "$t" "$run" "$RC" >>"$WORK/results/runs.tsv"
}

for t in "${TOOL_LIST[@]}"; do fresh_home "$t"; done
for run in $(seq 1 "$RUNS"); do
    order=("${TOOL_LIST[@]}")
    if ((run % 2 == 0)) && [ ${#order[@]} = 2 ]; then order=("${order[1]}" "${order[0]}"); fi
    say "run $run/$RUNS (first: ${order[0]})"
    for c in "${COMMANDS[@]}"; do
        for t in "${order[@]}"; do run_one "$t" "$run" "$c"; done
    done
done

# Outputs: byte-identical between the tools? (timed keeps stdout+stderr together; the
# stderr of both is empty when all goes well, Barman's logging goes to log_file.)
: >"$WORK/results/compare.tsv"
if [ ${#TOOL_LIST[@]} = 2 ]; then
    for c in "${COMMANDS[@]}" after-cron; do
        verdict=same
        for run in $(seq 1 "$RUNS"); do
            cmp -s "$WORK/out/$c-py-$run" "$WORK/out/$c-rs-$run" || verdict=DIFFERENT
        done
        if [ "$verdict" != same ]; then
            diff "$WORK/out/$c-py-1" "$WORK/out/$c-rs-1" | head -40 >"$WORK/results/diff-$c" || true
        fi
        printf '%s\t%s\t%s\n' "$c" "$verdict" "$(wc -c <"$WORK/out/$c-py-1")" >>"$WORK/results/compare.tsv"
    done
fi

CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
python3 - "$WORK" "$REPO/bench" "$OUTPUT" "$BACKUPS" "$PER" "$RUNS" "$GIT_REV" "$CPU" "$MIDDLE" <<'PY'
import os, statistics, sys
work, bench, output, backups, per, runs, rev, cpu, middle = sys.argv[1:]
sys.path.insert(0, bench)
from timefile import parse_time

labels = {
    "list": "`barman list-backups srv`",
    "list-json": "`barman -f json list-backups srv`",
    "show": "`barman show-backup srv <middle>`",
    "show-json": "`barman -f json show-backup srv <middle>`",
    "cron": "`barman cron`",
}
tools = {"py": "Barman 3.20.1", "rs": "barman-rs"}
rows = {}
failed = {}
for line in open(os.path.join(work, "results", "runs.tsv")):
    c, t, run, rc = line.rstrip("\n").split("\t")
    if rc != "0":
        failed[(c, t)] = failed.get((c, t), 0) + 1
        continue
    m = parse_time(os.path.join(work, "time", "%s-%s-%s" % (c, t, run)))
    if m:
        rows.setdefault((c, t), []).append(m)
compare = {}
path = os.path.join(work, "results", "compare.tsv")
if os.path.exists(path):
    for line in open(path):
        c, verdict, size = line.rstrip("\n").split("\t")
        compare[c] = (verdict, int(size))

out = []
out.append("# barman server catalog benchmark: barman-rs vs Python Barman 3.20.1\n")
out.append(
    "One run of `bench/server-catalog-bench.sh --backups %s --wals-per-backup %s --runs %s` "
    "(barman-rs %s), %s, 2 cores shared with other work. A snapshot server of %s backups "
    "(%s WAL segments indexed in xlog.db), `retention_policy = RECOVERY WINDOW OF 520 WEEKS`; "
    "show-backup of the middle backup `%s`. Medians of %s runs, the tool going first "
    "alternating; wall and CPU (user+system) seconds and peak RSS from `/usr/bin/time -v`.\n"
    % (backups, per, runs, rev, cpu, backups, int(backups) * int(per), middle, runs)
)
out.append("| command | tool | wall s | CPU s | peak RSS MiB | speed-up (wall) | output |")
out.append("|---|---|---:|---:|---:|---:|---|")
for c, label in labels.items():
    py = rows.get((c, "py"))
    for t, name in tools.items():
        ms = rows.get((c, t))
        if not ms:
            if (c, t) in failed:
                out.append("| %s | %s | FAILED | | | | |" % (label, name))
            continue
        wall = statistics.median(m[0] for m in ms)
        cpu_s = statistics.median(m[1] for m in ms)
        rss = max(m[2] for m in ms) / 1024
        speed = ""
        if t == "rs" and py:
            pw = statistics.median(m[0] for m in py)
            speed = "%.1fx" % (pw / wall) if wall > 0 else "n/a"
        verdict = ""
        if c in compare and t == "rs":
            v, size = compare[c]
            verdict = "identical (%d bytes)" % size if v == "same" else "**DIFFERENT**"
        out.append(
            "| %s | %s | %.3f | %.3f | %.1f | %s | %s |"
            % (label, name, wall, cpu_s, rss, speed, verdict)
        )
if "after-cron" in compare:
    v, size = compare["after-cron"]
    out.append(
        "\n`list-backups` after each tool's cron: %s."
        % ("identical" if v == "same" else "**DIFFERENT**")
    )
out.append(
    "\nNotes: cron runs on a fresh copy of the home each time (not timed) and is timed until "
    "its own process exits (the archive-wal it starts in the background is not included). "
    "What cron does depends on the barman-rs build: retention enforcement in cron belongs to "
    "the delete/cron work; with this window nothing is obsolete, so the row measures the "
    "catalog walk and the status computation, not snapshot deletions."
)
for name in sorted(os.listdir(os.path.join(work, "results"))):
    if name.startswith("diff-"):
        out.append("\nDifference in %s (Barman `<`, barman-rs `>`):\n\n```" % name[5:])
        out.append(open(os.path.join(work, "results", name)).read().rstrip())
        out.append("```")
errors = open(os.path.join(work, "errors")).read().strip()
if errors:
    out.append("\nFailures:\n\n```\n%s\n```" % errors)
text = "\n".join(out) + "\n"
open(output, "w").write(text)
print(text)
PY
say "report: $OUTPUT"
