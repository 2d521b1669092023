#!/usr/bin/env bash
# The main job, end to end on a throwaway PostgreSQL 15, with a local file:// destination
# (no cloud account needed):
#   1. build and install the commands into a temporary prefix;
#   2. start a cluster whose archive_command is barman-cloud-wal-archive (gzip);
#   3. check the empty archive, load data with pgbench, take a base backup;
#   4. write more data, switch WAL and wait until every segment is archived;
#   5. start a second cluster from the base backup whose restore_command is
#      barman-cloud-wal-restore, let it replay the archive and promote;
#   6. compare the data on both clusters, then stop and delete everything.
# The base backup is made with pg_basebackup until barman-cloud-backup lands (issue 3).
#
#   scripts/demo.sh            (run as root or as a user that can run PostgreSQL)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ ! -x "$PG_BIN/initdb" ]; then
    step "Installing PostgreSQL 15"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15
fi

WORK=$(mktemp -d /tmp/barman-rs-demo.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    for d in "$WORK/primary" "$WORK/recovered"; do
        [ -f "$d/postmaster.pid" ] && run_pg "$PG_BIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step "Building and installing barman-rs into $WORK/bin"
PREFIX="$WORK" bash scripts/install.sh | tail -2
BIN="$WORK/bin"
DEST="file://$WORK/bucket"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"

step "Creating the destination and checking it is a safe, empty WAL archive"
run_pg "$BIN/barman-cloud-check-wal-archive" "$DEST" demo
echo "barman-cloud-check-wal-archive $DEST demo: OK"

step "Starting a throwaway PostgreSQL 15 that archives WAL with barman-cloud-wal-archive --gzip"
run_pg "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<CONF
listen_addresses = ''
port = 54321
unix_socket_directories = '$WORK'
wal_level = replica
archive_mode = on
archive_command = '$BIN/barman-cloud-wal-archive --gzip $DEST demo %p'
CONF
run_pg "$PG_BIN/pg_ctl" -D "$WORK/primary" -l "$WORK/primary.log" -w start >/dev/null
PSQL=(psql -X -At -h "$WORK" -p 54321 -U postgres -d postgres)
PGBENCH=(pgbench -h "$WORK" -p 54321 -U postgres)

step "Loading data (pgbench -i -s 5) and taking a base backup"
run_pg "${PGBENCH[@]}" -i -s 5 -q postgres 2>&1 | tail -1
run_pg "$PG_BIN/pg_basebackup" -h "$WORK" -p 54321 -U postgres -D "$WORK/recovered" -X none -c fast
echo "base backup in $WORK/recovered"

step "Running transactions after the backup (pgbench -t 500), then switching WAL"
run_pg "${PGBENCH[@]}" -n -c 2 -t 500 postgres 2>&1 | grep -E "^(number of transactions actually processed|tps)" || true
EXPECTED=$(run_pg "${PSQL[@]}" -c "select count(*) || ' rows in pgbench_history, balance sum ' || (select sum(abalance) from pgbench_accounts) from pgbench_history")
LAST=$(run_pg "${PSQL[@]}" -c "select pg_walfile_name(pg_current_wal_lsn())")
run_pg "${PSQL[@]}" -c "select pg_switch_wal()" >/dev/null
for _ in $(seq 1 300); do
    ARCHIVED=$(run_pg "${PSQL[@]}" -c "select coalesce(last_archived_wal, '') from pg_stat_archiver")
    [[ "$ARCHIVED" > "$LAST" || "$ARCHIVED" == "$LAST" ]] && break
    sleep 0.2
done
run_pg "${PSQL[@]}" -c "select 'archived: ' || archived_count || ', failed: ' || failed_count from pg_stat_archiver"
echo "objects in the archive:"
(cd "$WORK/bucket" && find . -type f | sort | sed 's/^/  /')

step "Recovering a second cluster from the backup through barman-cloud-wal-restore"
cat >> "$WORK/recovered/postgresql.conf" <<CONF
port = 54322
archive_mode = off
restore_command = '$BIN/barman-cloud-wal-restore $DEST demo %f %p'
CONF
touch "$WORK/recovered/recovery.signal"
[ "$(id -u)" = 0 ] && chown -R postgres: "$WORK/recovered"
run_pg "$PG_BIN/pg_ctl" -D "$WORK/recovered" -l "$WORK/recovered.log" -w -t 300 start >/dev/null
PSQL2=(psql -X -At -h "$WORK" -p 54322 -U postgres -d postgres)
for _ in $(seq 1 600); do
    [ "$(run_pg "${PSQL2[@]}" -c 'select pg_is_in_recovery()')" = f ] && break
    sleep 0.2
done
grep -c "restored log file" "$WORK/recovered.log" | sed 's/^/WAL files restored by barman-cloud-wal-restore: /'
GOT=$(run_pg "${PSQL2[@]}" -c "select count(*) || ' rows in pgbench_history, balance sum ' || (select sum(abalance) from pgbench_accounts) from pgbench_history")

step "Comparing"
echo "primary:   $EXPECTED"
echo "recovered: $GOT"
if [ "$EXPECTED" = "$GOT" ]; then
    echo "OK: the recovered cluster has every committed transaction"
else
    echo "MISMATCH" >&2
    exit 1
fi
