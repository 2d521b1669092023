#!/usr/bin/env bash
# End-to-end smoke test of the test services with the reference Python Barman 3.20.1.
#
#   scripts/test-services-smoke.sh [STATE_DIR]
#
# With STATE_DIR, uses the services `scripts/test-services.sh start STATE_DIR` started; without
# it, starts its own in a temporary directory and stops them at the end.
#
# 1. tests/fakes/gcs_emulator_smoke.py against the GCS emulator: every XML API route (the
#    requests object_store makes) and JSON API visibility through google-cloud-storage.
# 2. For S3 (moto), Azure Blob (Azurite) and GCS: barman-cloud-check-wal-archive (creates the
#    bucket/container), barman-cloud-wal-archive of a 16 MiB segment, plain and --gzip, and
#    barman-cloud-wal-restore back, byte-identical.
# 3. If PostgreSQL binaries are installed (initdb, pg_ctl, as user postgres): one throwaway
#    cluster, barman-cloud-backup --immediate-checkpoint to each provider (data.tar goes through
#    each provider's multipart API: S3 multipart, Azure blocks, GCS XML multipart), then
#    barman-cloud-backup-list and barman-cloud-restore. Skip with SMOKE_SKIP_BACKUP=1.
#
# Prints one line per check and ends with "N passed, 0 failed"; exits non-zero on a failure.
set -euo pipefail
umask 022

ROOT=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES=$REPO/scripts/test-services.sh

WORK=$(mktemp -d /tmp/barman-rs-smoke.XXXXXX)
chmod 711 "$WORK" # the postgres user must reach $WORK/pg
OWN_STATE=0
PG_STARTED=0
PASSED=0

cleanup() {
    local rc=$?
    if [ "$PG_STARTED" = 1 ]; then
        su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$WORK/pg/data' -m immediate -w stop" >/dev/null 2>&1 || true
    fi
    if [ "$OWN_STATE" = 1 ]; then
        "$SERVICES" stop "$STATE" >/dev/null || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n%s passed, 1 failed\n' "$*" "$PASSED"; exit 1; }
# run LABEL CMD...: runs CMD quietly, shows its output only when it fails.
run() {
    local label=$1; shift
    if "$@" >"$WORK/cmd.log" 2>&1; then ok "$label"; else cat "$WORK/cmd.log"; fail "$label"; fi
}

if [ $# -ge 1 ]; then
    STATE=$1
else
    STATE=$WORK/services
    OWN_STATE=1
    "$SERVICES" start "$STATE"
fi
[ -f "$STATE/env" ] || fail "no $STATE/env (are the services started?)"
# shellcheck disable=SC1091
. "$STATE/env"
B=$BARMAN_RS_TEST_BARMAN_BIN

# --- 1. GCS emulator: XML API + JSON API -------------------------------------------------------
"$ROOT/gcs-venv/bin/python" "$REPO/tests/fakes/gcs_emulator_smoke.py" \
    --endpoint "$BARMAN_RS_TEST_GCS_ENDPOINT" --data-dir "$STATE/gcs" \
    --json-python "$ROOT/barman-venv/bin/python" >"$WORK/gcs_smoke.log" 2>&1 || {
    cat "$WORK/gcs_smoke.log"
    fail "tests/fakes/gcs_emulator_smoke.py"
}
grep -v ' passed, ' "$WORK/gcs_smoke.log"
PASSED=$((PASSED + $(tail -n 1 "$WORK/gcs_smoke.log" | cut -d' ' -f1)))

# --- per-provider Barman arguments -------------------------------------------------------------
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
export AZURE_STORAGE_CONNECTION_STRING=$BARMAN_RS_TEST_AZURE_CONNECTION_STRING
export STORAGE_EMULATOR_HOST=$BARMAN_RS_TEST_GCS_ENDPOINT
RUN=smoke-$(date +%s)-$$ # fresh buckets, so that reruns against one STATE_DIR work
PROVIDERS=(s3 azure gcs)
declare -A URL ARGS
URL[s3]=s3://$RUN/barman
ARGS[s3]="--endpoint-url $BARMAN_RS_TEST_S3_ENDPOINT"
URL[azure]=$BARMAN_RS_TEST_AZURE_BLOB_ENDPOINT/$RUN/barman
ARGS[azure]="--cloud-provider azure-blob-storage"
URL[gcs]=gs://$RUN/barman
ARGS[gcs]="--cloud-provider google-cloud-storage"

# --- 2. WAL archive / restore ------------------------------------------------------------------
WAL=000000010000000000000001
mkdir -p "$WORK/wal"
head -c $((16 << 20)) /dev/urandom >"$WORK/wal/$WAL"
for p in "${PROVIDERS[@]}"; do
    # shellcheck disable=SC2086  # ARGS are plain words
    for mode in plain gzip; do
        srv=smoke-$mode
        comp=()
        [ "$mode" = gzip ] && comp=(--gzip)
        run "$p: barman-cloud-check-wal-archive $srv" "$B/barman-cloud-check-wal-archive" ${ARGS[$p]} "${URL[$p]}" "$srv"
        run "$p: barman-cloud-wal-archive ${comp[*]:-(no compression)} 16 MiB" \
            "$B/barman-cloud-wal-archive" ${ARGS[$p]} "${comp[@]}" "${URL[$p]}" "$srv" "$WORK/wal/$WAL"
        rm -f "$WORK/restored"
        run "$p: barman-cloud-wal-restore ($mode)" "$B/barman-cloud-wal-restore" ${ARGS[$p]} "${URL[$p]}" "$srv" "$WAL" "$WORK/restored"
        cmp -s "$WORK/wal/$WAL" "$WORK/restored" || fail "$p: restored WAL ($mode) differs"
        ok "$p: restored WAL ($mode) is byte-identical"
    done
done

# --- 3. base backup / restore through each provider's multipart API -----------------------------
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "$PG_BIN/initdb" ] || PG_BIN=
if [ "${SMOKE_SKIP_BACKUP:-0}" = 1 ]; then
    printf 'skip backup checks (SMOKE_SKIP_BACKUP=1)\n'
elif [ -z "$PG_BIN" ] || ! id postgres >/dev/null 2>&1; then
    printf 'skip backup checks (no PostgreSQL server binaries or no user postgres)\n'
else
    PG_PORT=$("$ROOT/moto-venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$WORK/pg"
    chown postgres: "$WORK/pg"
    run "initdb" su postgres -s /bin/sh -c "$PG_BIN/initdb -D '$WORK/pg/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8"
    cat >>"$WORK/pg/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
wal_level = replica
EOF
    run "pg_ctl start" su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$WORK/pg/data' -l '$WORK/pg/pg.log' -w start"
    PG_STARTED=1
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAtc "create table t as select g from generate_series(1, 100000) g" >/dev/null
    for p in "${PROVIDERS[@]}"; do
        # shellcheck disable=SC2086
        run "$p: barman-cloud-backup" "$B/barman-cloud-backup" ${ARGS[$p]} --immediate-checkpoint \
            -h 127.0.0.1 -p "$PG_PORT" -U postgres "${URL[$p]}" smoke-backup
        # shellcheck disable=SC2086
        backup_id=$("$B/barman-cloud-backup-list" ${ARGS[$p]} --format json "${URL[$p]}" smoke-backup |
            "$ROOT/barman-venv/bin/python" -c 'import json,sys; b=json.load(sys.stdin)["backups_list"]; print(b[-1]["backup_id"] if len(b)==1 and b[0]["status"]=="DONE" else "")')
        [ -n "$backup_id" ] || fail "$p: barman-cloud-backup-list shows one DONE backup"
        ok "$p: barman-cloud-backup-list shows backup $backup_id"
        # shellcheck disable=SC2086
        run "$p: barman-cloud-restore" "$B/barman-cloud-restore" ${ARGS[$p]} "${URL[$p]}" smoke-backup "$backup_id" "$WORK/restore-$p"
        if ! [ -f "$WORK/restore-$p/backup_label" ] ||
            ! cmp -s "$WORK/pg/data/PG_VERSION" "$WORK/restore-$p/PG_VERSION"; then
            fail "$p: restored data directory has PG_VERSION and backup_label"
        fi
        ok "$p: restored data directory has PG_VERSION and backup_label"
    done
fi

printf '%s passed, 0 failed\n' "$PASSED"
