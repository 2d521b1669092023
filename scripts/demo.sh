#!/usr/bin/env bash
# The main job, end to end on a throwaway PostgreSQL 15, with a local file:// destination
# (no cloud account needed):
#   1. build and install the commands into a temporary prefix;
#   2. start a cluster whose archive_command is barman-cloud-wal-archive (gzip), after
#      checking the empty archive with barman-cloud-check-wal-archive;
#   3. load data with pgbench and take a base backup with barman-cloud-backup (zstd);
#   4. list the backups and show the new one (barman-cloud-backup-list, -show);
#   5. write data after the backup, commit a marker (phase 1), note the time (the recovery
#      target), write more data and a second marker (phase 2), switch WAL and wait until
#      every segment is archived;
#   6. restore the backup with barman-cloud-restore and start it as a second cluster whose
#      restore_command is barman-cloud-wal-restore, with recovery_target_time = the noted
#      time and recovery_target_action = promote;
#   7. compare: the recovered cluster must have exactly what the primary had at the target
#      time (phase 1 but not phase 2, same pgbench data), else exit 1;
#   8. retention: a second backup, then barman-cloud-backup-delete -r "REDUNDANCY 1" (dry run
#      first) removes the first backup and the WAL only it needed; the second stays;
#   9. stop both clusters and delete everything (also on error or Ctrl-C).
#
#   scripts/demo.sh            (run as root or as a user that can run PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT1=54321
PORT2=54322

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# PostgreSQL, its clients and the barman-cloud-* commands all run as `postgres` when we are
# root, so that the cluster's archive_command and the other commands share one bucket owner.
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
die() { echo "demo.sh: $*" >&2; exit 1; }

if [ ! -x "$PG_BIN/initdb" ]; then
    step "Installing PostgreSQL 15"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15
fi

START=$SECONDS
WORK=$(mktemp -d /tmp/barman-rs-demo.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$rc" != 0 ]; then
        for log in "$WORK/primary.log" "$WORK/recovered.log"; do
            [ -s "$log" ] && { echo "--- last lines of $log:" >&2; tail -15 "$log" >&2; }
        done
    fi
    for d in "$WORK/primary" "$WORK/recovered"; do
        [ -f "$d/postmaster.pid" ] && run_pg "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
    if [ "$rc" != 0 ]; then echo "demo.sh: FAILED (exit $rc); $WORK removed" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Building and installing barman-rs into $WORK/bin"
PREFIX="$WORK" bash scripts/install.sh | tail -2
BIN="$WORK/bin"
DEST="file://$WORK/bucket"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"

step "Creating the destination and checking it is a safe, empty WAL archive"
run_pg "$BIN/barman-cloud-check-wal-archive" "$DEST" demo
echo "barman-cloud-check-wal-archive $DEST demo: OK"

step "Starting a throwaway PostgreSQL 15 (Unix socket in $WORK, port $PORT1) that archives WAL with barman-cloud-wal-archive --gzip"
run_pg "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<CONF
listen_addresses = ''
port = $PORT1
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = '$BIN/barman-cloud-wal-archive --gzip $DEST demo %p'
CONF
run_pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
grep "^archive_command" "$WORK/primary/postgresql.conf"
PSQL1=("$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h "$WORK" -p $PORT1 -U postgres -d postgres)
PGBENCH=("$PG_BIN/pgbench" -h "$WORK" -p $PORT1 -U postgres)
# One line, rows|sum|phases, describing the data the recovery must get back exactly.
STATE_SQL="select (select count(*) from pgbench_history) || '|'
                  || (select sum(abalance) from pgbench_accounts) || '|'
                  || coalesce((select string_agg(phase::text, ',' order by phase) from demo_marker), '-')"
describe() { local h s m; IFS='|' read -r h s m <<<"$1"; echo "pgbench_history rows $h, sum(abalance) $s, demo_marker phases $m"; }

step "Loading data (pgbench -i -s 5: 500000 accounts)"
run_pg "${PGBENCH[@]}" -i -s 5 -q postgres 2>&1 | tail -1

step "Taking a base backup with barman-cloud-backup (zstd, 2 upload jobs, named demo-backup)"
echo "\$ barman-cloud-backup --immediate-checkpoint --zstd -J 2 -n demo-backup -v -h $WORK -p $PORT1 -U postgres $DEST demo"
run_pg "$BIN/barman-cloud-backup" --immediate-checkpoint --zstd -J 2 -n demo-backup -v \
    -h "$WORK" -p $PORT1 -U postgres "$DEST" demo 2>&1

step "Listing the backups (barman-cloud-backup-list) and showing ours by name (barman-cloud-backup-show)"
run_pg "$BIN/barman-cloud-backup-list" "$DEST" demo
echo
run_pg "$BIN/barman-cloud-backup-show" "$DEST" demo demo-backup

step "Writing after the backup: pgbench -t 250 (2 clients), then marker phase 1; noting the recovery target time"
run_pg "${PGBENCH[@]}" -n -c 2 -t 250 postgres 2>&1 | grep -E "^number of transactions actually processed" || true
run_pg "${PSQL1[@]}" -c "create table demo_marker as select 1 as phase, now() as at" >/dev/null
EXPECTED=$(run_pg "${PSQL1[@]}" -c "$STATE_SQL")
TARGET=$(run_pg "${PSQL1[@]}" -c "select clock_timestamp()")
echo "recovery target time: $TARGET"
echo "primary at that time: $(describe "$EXPECTED")"
sleep 2

step "Writing after the target time: pgbench -t 500 (2 clients), then marker phase 2"
run_pg "${PGBENCH[@]}" -n -c 2 -t 500 postgres 2>&1 | grep -E "^(number of transactions actually processed|tps)" || true
run_pg "${PSQL1[@]}" -c "insert into demo_marker values (2, now())" >/dev/null
PRIMARY_NOW=$(run_pg "${PSQL1[@]}" -c "$STATE_SQL")
echo "primary now: $(describe "$PRIMARY_NOW")"

step "Switching WAL and waiting until every segment is archived"
LAST=$(run_pg "${PSQL1[@]}" -c "select pg_walfile_name(pg_current_wal_lsn())")
run_pg "${PSQL1[@]}" -c "select pg_switch_wal()" >/dev/null
archived=
for _ in $(seq 1 300); do
    ARCHIVED=$(run_pg "${PSQL1[@]}" -c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
    if [[ "$ARCHIVED" > "$LAST" || "$ARCHIVED" == "$LAST" ]]; then archived=1; break; fi
    sleep 0.2
done
[ -n "$archived" ] || die "WAL segment $LAST was not archived within 60 s (last archived: '$ARCHIVED')"
run_pg "${PSQL1[@]}" -c "select 'archived: ' || archived_count || ', failed: ' || failed_count || ', last: ' || last_archived_wal from pg_stat_archiver"
echo "objects in the bucket:"
(cd "$WORK/bucket" && find . -type f | sort | sed 's/^/  /')

step "Restoring demo-backup with barman-cloud-restore into $WORK/recovered"
echo "\$ barman-cloud-restore $DEST demo demo-backup $WORK/recovered"
run_pg "$BIN/barman-cloud-restore" "$DEST" demo demo-backup "$WORK/recovered"
du -sh "$WORK/recovered" | sed 's/^/restored PGDATA: /'

step "Recovering to $TARGET through barman-cloud-wal-restore (port $PORT2), then promoting"
cat >> "$WORK/recovered/postgresql.conf" <<CONF
port = $PORT2
archive_mode = off
restore_command = '$BIN/barman-cloud-wal-restore $DEST demo %f %p'
recovery_target_time = '$TARGET'
recovery_target_action = 'promote'
CONF
touch "$WORK/recovered/recovery.signal"
[ "$(id -u)" = 0 ] && chown -R postgres: "$WORK/recovered"
chmod 700 "$WORK/recovered"
tail -5 "$WORK/recovered/postgresql.conf"
run_pg "$PG_BIN/pg_ctl" -D "$WORK/recovered" -l "$WORK/recovered.log" -w -t 300 start >/dev/null
PSQL2=("$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h "$WORK" -p $PORT2 -U postgres -d postgres)
promoted=
for _ in $(seq 1 600); do
    [ "$(run_pg "${PSQL2[@]}" -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && { promoted=1; break; }
    run_pg "$PG_BIN/pg_ctl" -D "$WORK/recovered" status >/dev/null 2>&1 || die "the recovered cluster stopped"
    sleep 0.2
done
[ -n "$promoted" ] || die "the recovered cluster is still in recovery after 120 s"
echo "WAL files restored by barman-cloud-wal-restore: $(grep -c "restored log file" "$WORK/recovered.log")"
grep -E "recovery stopping|last completed transaction|selected new timeline" "$WORK/recovered.log" | sed 's/^.*LOG: */  /'
GOT=$(run_pg "${PSQL2[@]}" -c "$STATE_SQL")

step "Comparing the recovered cluster with the primary at the target time"
IFS='|' read -r e_hist e_sum e_mark <<<"$EXPECTED"
IFS='|' read -r g_hist g_sum g_mark <<<"$GOT"
IFS='|' read -r n_hist n_sum n_mark <<<"$PRIMARY_NOW"
row() { printf '  %-22s %-19s %-19s %s\n' "$@"; }
row "" "primary at target" "recovered" "(primary now)"
row "pgbench_history rows" "$e_hist" "$g_hist" "($n_hist)"
row "sum(abalance)" "$e_sum" "$g_sum" "($n_sum)"
row "demo_marker phases" "$e_mark" "$g_mark" "($n_mark)"
[ "$g_mark" = 1 ] || die "MISMATCH: the recovered cluster should have demo_marker phase 1 only, it has: $g_mark"
[ "$EXPECTED" = "$GOT" ] || die "MISMATCH: the recovered cluster differs from the primary at the target time"
echo "OK: point-in-time recovery to $TARGET got back exactly what was committed by then"

step "Retention: a second backup, then barman-cloud-backup-delete -r 'REDUNDANCY 1'"
run_pg "$BIN/barman-cloud-backup" --immediate-checkpoint --zstd -n demo-backup-2 \
    -h "$WORK" -p $PORT1 -U postgres "$DEST" demo
run_pg "$BIN/barman-cloud-backup-list" "$DEST" demo
wal_objects() { find "$WORK/bucket/demo/wals" -type f | wc -l; }
WAL_BEFORE=$(wal_objects)
echo "\$ barman-cloud-backup-delete --dry-run -r 'REDUNDANCY 1' $DEST demo"
run_pg "$BIN/barman-cloud-backup-delete" --dry-run -r 'REDUNDANCY 1' "$DEST" demo | cut -c1-200
[ "$(wal_objects)" = "$WAL_BEFORE" ] || die "the dry run deleted WAL"
echo "\$ barman-cloud-backup-delete -r 'REDUNDANCY 1' $DEST demo"
run_pg "$BIN/barman-cloud-backup-delete" -r 'REDUNDANCY 1' "$DEST" demo
run_pg "$BIN/barman-cloud-backup-list" "$DEST" demo
LEFT=$(run_pg "$BIN/barman-cloud-backup-list" --format json "$DEST" demo | grep -o '"backup_name": "[^"]*"' | tr '\n' ' ')
echo "WAL objects: $WAL_BEFORE before, $(wal_objects) after"
[ "$LEFT" = '"backup_name": "demo-backup-2" ' ] || die "expected only demo-backup-2 left, got: $LEFT"
[ "$(wal_objects)" -lt "$WAL_BEFORE" ] || die "no WAL was deleted with the first backup"
echo "OK: retention kept the newest backup and removed the first one with the WAL only it needed ($((SECONDS - START)) s in all)"
