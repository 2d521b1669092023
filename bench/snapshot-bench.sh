#!/usr/bin/env bash
# Snapshot backup benchmark (AWS EBS on moto; GCP and Azure on local fakes): barman-rs against
# Python Barman 3.20.1 side by side, on the same PostgreSQL cluster, instances and disks.
#
#   bench/snapshot-bench.sh [--runs N] [--scenarios LIST] [--tools LIST] [--pending S]
#                           [--create-latency S] [--cloud-latency S] [--load TPS] [--output FILE]
#                           [--keep-workdir]
#
#   --runs N            repetitions of every scenario and tool (default 3; the report gives
#                       the median)
#   --scenarios LIST    comma-separated, from 1disk, 4disks (moto: snapshots complete at once),
#                       1disk-slow, 4disks-slow (the EC2 fake makes every snapshot "pending"
#                       for --pending seconds and CreateSnapshot take --create-latency
#                       seconds), gcp-1disk, gcp-4disks, azure-1disk, azure-4disks (on the
#                       GCP / Azure fakes: every snapshot operation takes --cloud-latency
#                       seconds). Default: all eight
#   --tools LIST        barman,barman-rs (default both; barman alone tests the harness)
#   --pending S         seconds a snapshot stays pending in the slow scenarios (default 5)
#   --create-latency S  seconds CreateSnapshot takes in the slow scenarios (default 0.5)
#   --cloud-latency S   seconds a GCP / Azure snapshot operation takes (default 3)
#   --load TPS          a light pgbench write load (-R TPS, one client) during the whole
#                       benchmark; 0 = none (default 10)
#   --output FILE       where the Markdown report goes (default bench/snapshot-bench-results.md);
#                       it is also printed on stdout
#   --keep-workdir      keep the temp dir (logs, outputs, EC2 call records, raw results)
#
# What it does:
#   1. installs what it needs when missing (apt `time`, `curl`; Barman and moto through
#      `scripts/test-services.sh install`) and builds the release barman-rs (`cargo build
#      --release -p barman-cloud-cli`, in $CARGO_TARGET_DIR when set).
#   2. starts the test services (`scripts/test-services.sh start`: moto for S3 and, behind the
#      EC2 fake tests/fakes/ec2_fake.py, for EC2), makes an EC2 instance with 4 volumes
#      (Name tags, attached as /dev/sdf../dev/sdi; crates/barman-cloud-cli/tests/it/
#      ec2_world.py) and a mount table for the findmnt stand-in (tests/fakes/findmnt, first on
#      PATH for both tools): disk 0 holds PGDATA, disks 1-3 are mounted, empty, elsewhere.
#   3. a throwaway PostgreSQL 15 cluster on disk 0 (Unix socket only, archive_command
#      '/bin/true'), `pgbench -i -s 1`, and the --load pgbench in the background.
#   4. per repetition and scenario, each tool (the one going first alternates):
#      `barman-cloud-backup --immediate-checkpoint ... --snapshot-instance NAME
#      --snapshot-disk D0 [--snapshot-disk D1..D3] s3://snapbench-TOOL/run-N-SCENARIO srv`
#      under /usr/bin/time -v (wall, user+sys CPU, peak RSS), the backup read back with the
#      tool's own `barman-cloud-backup-show --format json ... last` (status, begin_time_iso and
#      end_time_iso: PostgreSQL's now() at pg_backup_start and at pg_backup_stop, i.e. the
#      time in backup mode; the snapshots), the EC2 requests it made from the fake's record
#      (GET /_fake/calls), the snapshots' states from DescribeSnapshots, which are then
#      deleted. A run counts when the backup is DONE with one completed snapshot per disk.
#   4b. the gcp-*/azure-* scenarios run on the GCP Compute Engine fake and the TLS instance
#      of the Azure ARM fake (also started by test-services.sh), each with an instance / VM of
#      4 disks mounted (findmnt stand-in) at the same 4 directories, credentials and endpoints
#      as crates/barman-cloud-cli/tests/it/snapshot_gcp.rs / snapshot_azure.rs set them, the
#      backups in the GCS emulator / Azurite, and every snapshot operation taking
#      --cloud-latency seconds. Barman's google-cloud-compute / azure-mgmt-compute clients are
#      pointed at the fakes by the test-only tests/fakes/barman_site/sitecustomize.py
#      (PYTHONPATH), Barman's code unchanged; the report also gives the floor of Barman's
#      sequential algorithm computed from that latency and its polling, as a cross-check.
#   5. writes the Markdown report (bench/snapshot-report.py).
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO (default cargo; CARGO=true
# skips the build and uses the existing release binary), CARGO_TARGET_DIR. Needs root. Debian
# 12 tested.
set -euo pipefail
export LC_ALL=C
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
PG_BIN=/usr/lib/postgresql/15/bin
ALL_SCENARIOS=1disk,4disks,1disk-slow,4disks-slow,gcp-1disk,gcp-4disks,azure-1disk,azure-4disks
DEVICES=(/dev/sdf /dev/sdg /dev/sdh /dev/sdi)
MOUNT_OPTIONS=rw,noatime
WORLD_AGENT=barman-rs-ec2-world # ec2_world.py's user agent suffix: its calls are not counted
SRV=srv                         # the Barman server name in every bucket

RUNS=3
SCENARIOS=$ALL_SCENARIOS
TOOL_NAMES=barman,barman-rs
PENDING=5
CREATE_LATENCY=0.5
CLOUD_LATENCY=3
AZURE_RETRY_AFTER=1 # the Retry-After (s) of the Azure fake's operation answers
GCP_PROJECT=barman-rs-bench GCP_ZONE=europe-west1-b
LOAD_TPS=10
OUTPUT=$REPO/bench/snapshot-bench-results.md
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh" # say, die, install, process-group helpers and timed
usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?}; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --scenarios=*) SCENARIOS=${1#*=}; shift ;;
    --tools) TOOL_NAMES=${2:?}; shift 2 ;;
    --tools=*) TOOL_NAMES=${1#*=}; shift ;;
    --pending) PENDING=${2:?}; shift 2 ;;
    --pending=*) PENDING=${1#*=}; shift ;;
    --create-latency) CREATE_LATENCY=${2:?}; shift 2 ;;
    --create-latency=*) CREATE_LATENCY=${1#*=}; shift ;;
    --cloud-latency) CLOUD_LATENCY=${2:?}; shift 2 ;;
    --cloud-latency=*) CLOUD_LATENCY=${1#*=}; shift ;;
    --load) LOAD_TPS=${2:?}; shift 2 ;;
    --load=*) LOAD_TPS=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
[[ $PENDING =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--pending must be a number of seconds"
[[ $CREATE_LATENCY =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--create-latency must be a number of seconds"
[[ $CLOUD_LATENCY =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--cloud-latency must be a number of seconds"
[[ $LOAD_TPS =~ ^[0-9]+$ ]] || die "--load must be a non-negative integer"
parse_scenarios_and_tools
GCP=0 AZURE=0
for s in "${SCENARIO_LIST[@]}"; do
    case $s in gcp-*) GCP=1 ;; azure-*) AZURE=1 ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (apt installs, runuser -u postgres)"
id postgres >/dev/null 2>&1 || die "user postgres missing (install postgresql-15)"
{ [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pgbench" ]; } || die "PostgreSQL 15 not found in $PG_BIN"
[ -x "$REPO/tests/fakes/findmnt" ] || die "$REPO/tests/fakes/findmnt missing or not executable"
mkdir -p "$(dirname "$OUTPUT")"
OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/snapshot-bench.XXXXXX)
chmod 711 "$WORK" # user postgres must reach $WORK/disks/disk0/data
cd "$WORK"        # a cwd that user postgres can enter too
LOG=$WORK/bench.log
: >"$LOG"
mkdir -p "$WORK/time" "$WORK/out" "$WORK/show" "$WORK/calls" "$WORK/snaps"

# ---------------------------------------------------------------------------------------------
# cleanup: everything started here is tracked in these variables
# ---------------------------------------------------------------------------------------------
PG_DATA='' SERVICES='' LOAD_PID='' CHILD_PID=''

as_postgres() { runuser -u postgres -- "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$CHILD_PID" ]; then
        say "stopping the measured command (process group $CHILD_PID)"
        stop_group "$CHILD_PID" 15
    fi
    if [ -n "$LOAD_PID" ]; then stop_group "$LOAD_PID" 10; fi
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG" 2>&1
    fi
    if [ -n "$SERVICES" ]; then
        "$REPO/scripts/test-services.sh" stop "$SERVICES" >>"$LOG" 2>&1 ||
            say "WARNING: scripts/test-services.sh stop $SERVICES failed (see $LOG)"
    fi
    finish_cleanup "$rc" # bench/lib.sh: log tail on failure, $WORK removed, exit
}
install_traps

# ---------------------------------------------------------------------------------------------
# 1. install and build
# ---------------------------------------------------------------------------------------------
say "work dir $WORK; log $LOG"
say "$RUNS run(s); scenarios ${SCENARIO_LIST[*]}; tools ${TOOL_LIST[*]}; slow: pending ${PENDING} s, CreateSnapshot ${CREATE_LATENCY} s; GCP/Azure latency ${CLOUD_LATENCY} s; load ${LOAD_TPS} tps"
apt_install time curl
"$REPO/scripts/test-services.sh" install >>"$LOG" 2>&1 || die "scripts/test-services.sh install failed"
BARMAN_BIN=$TOOLS/barman-venv/bin
PY=$BARMAN_BIN/python # boto3 for the EC2 world
REPORT_PY=/usr/bin/python3
[ -x "$REPORT_PY" ] || REPORT_PY=$PY

RS_VERSION='' GIT_REV=''
if [[ " ${TOOL_LIST[*]} " == *" rs "* ]]; then
    build_barman_rs
    # with CARGO=true the binary may be older than the tree GIT_REV describes
    GIT_REV="$GIT_REV (binary built $(date -u -r "$RS" '+%Y-%m-%d %H:%M UTC'))"
    RS_VERSION=$("$RS" barman-cloud-backup --version 2>&1 | head -n1)
fi
PY_VERSION=$("$BARMAN_BIN/barman-cloud-backup" --version 2>&1 | head -n1)

tool_name() { if [ "$1" = py ]; then echo Barman; else echo barman-rs; fi; }
tool_cmd() { # tool_cmd TOOL COMMAND: sets CMD
    if [ "$1" = py ]; then CMD=("$BARMAN_BIN/$2"); else CMD=("$RS" "$2"); fi
}

# ---------------------------------------------------------------------------------------------
# 2. services, EC2 world, mount table
# ---------------------------------------------------------------------------------------------
say "starting moto and the EC2 fake (scripts/test-services.sh start)"
SERVICES=$WORK/services
"$REPO/scripts/test-services.sh" start "$SERVICES" >>"$LOG" 2>&1 || die "scripts/test-services.sh start failed"
# shellcheck source=/dev/null # written by test-services.sh start
. "$SERVICES/env"
S3=$BARMAN_RS_TEST_S3_ENDPOINT
EC2=$BARMAN_RS_TEST_EC2_ENDPOINT
# The only AWS settings the tools see: moto takes any keys.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 || true
export AWS_ENDPOINT_URL_EC2=$EC2
MOTO_VERSION=$("$TOOLS/moto-venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?')

WORLD_NAME=snapbench-$$
say "EC2: instance $WORLD_NAME with ${#DEVICES[@]} volumes (ec2_world.py)"
specs=''
for i in "${!DEVICES[@]}"; do
    specs+="${specs:+, }{\"name\": \"$WORLD_NAME-d$i\", \"device\": \"${DEVICES[$i]}\", \"size\": 1}"
done
EC2_ENDPOINT=$EC2 "$PY" "$REPO/crates/barman-cloud-cli/tests/it/ec2_world.py" instance \
    <<<"{\"name\": \"$WORLD_NAME\", \"virtualization\": \"hvm\", \"volumes\": [$specs]}" \
    >"$WORK/world.json" 2>>"$LOG" || die "could not create the EC2 instance and volumes"
# shellcheck disable=SC2207 # IDs: no blanks
VOLUME_IDS=($("$REPORT_PY" -c 'import json, sys; print(" ".join(v["id"] for v in json.load(open(sys.argv[1]))["volumes"]))' "$WORK/world.json"))
[ ${#VOLUME_IDS[@]} = ${#DEVICES[@]} ] || die "expected ${#DEVICES[@]} volumes in $WORK/world.json"
say "volumes ${VOLUME_IDS[*]}"

DISKS=$WORK/disks
MOUNTS=$WORK/mounts
: >"$MOUNTS"
for i in "${!DEVICES[@]}"; do
    mkdir -p "$DISKS/disk$i"
    chown postgres:postgres "$DISKS/disk$i"
    printf '%s %s %s\n' "${DEVICES[$i]}" "$DISKS/disk$i" "$MOUNT_OPTIONS" >>"$MOUNTS"
done
chmod 711 "$DISKS"

# The EC2 fake's control API.
fake() { # fake METHOD PATH [JSON]
    local args=(-sf -X "$1" "$EC2$2")
    [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
    curl "${args[@]}"
}
LAST_SEQ=0
fake_seq() { # prints the sequence number of the fake's last recorded call
    fake GET "/_fake/calls?since=$LAST_SEQ" |
        "$REPORT_PY" -c "import json, sys; print(max([c['seq'] for c in json.load(sys.stdin)] + [$LAST_SEQ]))"
}
inject() { # inject JSON: the same settings on every volume
    local v
    for v in "${VOLUME_IDS[@]}"; do fake POST "/_fake/volume/$v" "$1" >/dev/null || die "EC2 fake: POST /_fake/volume/$v failed"; done
}

# ec2py snapshots VOLUME...: prints {snapshot ID: state} of the volumes' snapshots, then
# deletes them (boto3 from the Barman venv, with ec2_world.py's user agent)
ec2py() {
    "$PY" - "$EC2" "$WORLD_AGENT" "$@" <<'EOF'
import json, sys, boto3
from botocore.config import Config
endpoint, agent, cmd = sys.argv[1:4]
ec2 = boto3.client("ec2", endpoint_url=endpoint, config=Config(user_agent_extra=agent))
if cmd == "snapshots":
    snaps = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": sys.argv[4:]}])["Snapshots"]
    print(json.dumps({s["SnapshotId"]: s["State"] for s in snaps}))
    for s in snaps:
        ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
EOF
}

# ---------------------------------------------------------------------------------------------
# 3. the PostgreSQL cluster, on disk 0
# ---------------------------------------------------------------------------------------------
PG=$WORK/pg # socket and log, outside the disks
mkdir -p "$PG"
chown postgres:postgres "$PG"
PG_PORT=$(free_port)
PG_DATA=$DISKS/disk0/data
say "initdb + start PostgreSQL 15 in $PG_DATA (socket $PG, port $PG_PORT)"
as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >>"$LOG" 2>&1
cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
fsync = off
EOF
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG/postgres.log" -w start >>"$LOG" 2>&1 || die "PostgreSQL did not start"
PSQL=("$PG_BIN/psql" -h "$PG" -p "$PG_PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1)
PG_VERSION=$("${PSQL[@]}" -Atc 'show server_version')
"$PG_BIN/pgbench" -h "$PG" -p "$PG_PORT" -U postgres -i -s 1 -q postgres >>"$LOG" 2>&1 || die "pgbench -i failed"
if [ "$LOAD_TPS" -gt 0 ]; then
    say "pgbench load: -c 1 -R $LOAD_TPS in the background"
    setsid "$PG_BIN/pgbench" -h "$PG" -p "$PG_PORT" -U postgres -n -c 1 -R "$LOAD_TPS" -T 86400 postgres \
        </dev/null >"$WORK/load.log" 2>&1 &
    LOAD_PID=$!
    sleep 0.5
    [ -n "$(group_pids "$LOAD_PID")" ] || { cat "$WORK/load.log" >&2; die "the pgbench load did not start"; }
fi

# For both tools from here on: the findmnt stand-in and its table.
export PATH=$REPO/tests/fakes:$PATH BARMAN_RS_FAKE_MOUNTS=$MOUNTS
[ "$(findmnt -n -o TARGET -T "$PG_DATA")" = "$DISKS/disk0" ] || die "the findmnt stand-in does not put PGDATA on disk 0"

# ---------------------------------------------------------------------------------------------
# 3b. GCP and Azure worlds, as crates/barman-cloud-cli/tests/it/snapshot_gcp.rs and
#     snapshot_azure.rs set them up: same 4 directories, their own device names; the backups
#     in the GCS emulator / Azurite (Barman has no file:// destination)
# ---------------------------------------------------------------------------------------------
CLOUD_ENV_GCP=() CLOUD_ENV_AZURE=() GCP_BASE='' ARM=''
BARMAN_SITE=$REPO/tests/fakes/barman_site # points Barman's compute clients at the fakes
if [ "$GCP" = 1 ]; then
    GCP_BASE=${BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT%/}
    GCP_BASE=${GCP_BASE%/compute/v1}
    gcpfake() { # gcpfake METHOD PATH [JSON]: the GCP fake's control API
        local args=(-sf -X "$1" "$GCP_BASE$2")
        [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
        curl "${args[@]}"
    }
    say "GCP: instance $WORLD_NAME with 4 persistent disks (tests/fakes/gcp_compute_fake.py)"
    gcpfake POST /_fake/disk "{\"project\": \"$GCP_PROJECT\", \"zone\": \"$GCP_ZONE\", \"name\": \"$WORLD_NAME-boot\"}" >/dev/null ||
        die "GCP fake: could not create the boot disk"
    attached="{\"name\": \"$WORLD_NAME-boot\", \"device_name\": \"persistent-disk-0\", \"boot\": true}"
    : >"$WORK/mounts-gcp"
    for i in 0 1 2 3; do
        gcpfake POST /_fake/disk "{\"project\": \"$GCP_PROJECT\", \"zone\": \"$GCP_ZONE\", \"name\": \"$WORLD_NAME-d$i\"}" >/dev/null ||
            die "GCP fake: could not create disk $i"
        attached+=", {\"name\": \"$WORLD_NAME-d$i\", \"device_name\": \"d$i-dev\"}"
        printf '%s %s %s\n' "/dev/disk/by-id/google-d$i-dev" "$DISKS/disk$i" "$MOUNT_OPTIONS" >>"$WORK/mounts-gcp"
        gcpfake POST "/_fake/settings/$WORLD_NAME-d$i" "{\"creating_seconds\": $CLOUD_LATENCY, \"uploading_seconds\": 0}" >/dev/null ||
            die "GCP fake: could not set the latency of disk $i"
    done
    gcpfake POST /_fake/instance "{\"project\": \"$GCP_PROJECT\", \"zone\": \"$GCP_ZONE\", \"name\": \"$WORLD_NAME\", \"disks\": [$attached]}" >/dev/null ||
        die "GCP fake: could not create the instance"
    # A service-account key whose token_uri is the fake's (it does not check signatures).
    mkdir -m 700 "$WORK/gcp"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/gcp/key.pem" 2>>"$LOG" ||
        die "openssl genpkey failed"
    "$REPORT_PY" -c 'import json, sys
print(json.dumps({"type": "service_account", "project_id": sys.argv[2], "private_key_id": "bench-key",
                  "private_key": open(sys.argv[1]).read(),
                  "client_email": "barman@%s.iam.gserviceaccount.com" % sys.argv[2], "token_uri": sys.argv[3]}))' \
        "$WORK/gcp/key.pem" "$GCP_PROJECT" "$GCP_BASE/token" >"$WORK/gcp/key.json"
    unset GCE_METADATA_HOST || true # no metadata server
    CLOUD_ENV_GCP=("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=$BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT"
        "GOOGLE_APPLICATION_CREDENTIALS=$WORK/gcp/key.json" "BARMAN_RS_FAKE_MOUNTS=$WORK/mounts-gcp"
        "STORAGE_EMULATOR_HOST=$BARMAN_RS_TEST_GCS_ENDPOINT" "GOOGLE_CLOUD_PROJECT=$GCP_PROJECT"
        "PYTHONPATH=$BARMAN_SITE" "BARMAN_RS_FAKE_GCP_COMPUTE=$GCP_BASE")
fi
if [ "$AZURE" = 1 ]; then
    ARM=${BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT%/}
    ARM_CA=$BARMAN_RS_TEST_AZURE_ARM_TLS_CA
    AZ_SUB=sub-$WORLD_NAME AZ_RG=rg-$WORLD_NAME AZ_TENANT=tenant-$WORLD_NAME
    AZ_SECRET=bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    azfake() { # azfake METHOD PATH [JSON]: the (TLS) ARM fake's control API
        local args=(-sf --cacert "$ARM_CA" -X "$1" "$ARM$2")
        [ $# -lt 3 ] || args+=(-H 'Content-Type: application/json' --data "$3")
        curl "${args[@]}"
    }
    say "Azure: VM $WORLD_NAME with 4 managed data disks (tests/fakes/azure_compute_fake.py, TLS)"
    azfake POST /_fake/service-principal "{\"tenant\": \"$AZ_TENANT\", \"client_id\": \"bench\", \"client_secret\": \"$AZ_SECRET\"}" >/dev/null ||
        die "Azure fake: could not register the service principal"
    data_disks=''
    : >"$WORK/mounts-azure"
    for i in 0 1 2 3; do
        data_disks+="${data_disks:+, }{\"name\": \"$WORLD_NAME-d$i\", \"lun\": $i}"
        printf '%s %s %s\n' "/dev/disk/azure/scsi1/lun$i" "$DISKS/disk$i" "$MOUNT_OPTIONS" >>"$WORK/mounts-azure"
    done
    azfake POST /_fake/vm "{\"subscription\": \"$AZ_SUB\", \"resource_group\": \"$AZ_RG\", \"name\": \"$WORLD_NAME\", \"location\": \"westeurope\", \"os_disk\": \"$WORLD_NAME-os\", \"data_disks\": [$data_disks]}" >/dev/null ||
        die "Azure fake: could not create the VM"
    for i in 0 1 2 3; do
        azfake POST "/_fake/disk/$WORLD_NAME-d$i/behaviour" "{\"latency\": $CLOUD_LATENCY, \"retry_after\": $AZURE_RETRY_AFTER}" >/dev/null ||
            die "Azure fake: could not set the latency of disk $i"
    done
    # EnvironmentCredential (--azure-credential default) with the fake as authority host and
    # ARM, its CA trusted; a loopback managed-identity endpoint so no real metadata address is asked.
    CLOUD_ENV_AZURE=("AZURE_TENANT_ID=$AZ_TENANT" AZURE_CLIENT_ID=bench "AZURE_CLIENT_SECRET=$AZ_SECRET"
        "AZURE_AUTHORITY_HOST=$ARM" "AZURE_RESOURCE_MANAGER_ENDPOINT=$ARM" "SSL_CERT_FILE=$ARM_CA"
        IDENTITY_ENDPOINT=http://127.0.0.1:1/msi/token IDENTITY_HEADER=test "BARMAN_RS_FAKE_MOUNTS=$WORK/mounts-azure"
        "AZURE_STORAGE_CONNECTION_STRING=$BARMAN_RS_TEST_AZURE_CONNECTION_STRING"
        "PYTHONPATH=$BARMAN_SITE" "BARMAN_RS_FAKE_ARM=$ARM" "REQUESTS_CA_BUNDLE=$ARM_CA")
fi
cloud_calls() { # cloud_calls CLOUD [SINCE]: the fake's recorded calls (JSON list)
    if [ "$1" = gcp ]; then gcpfake GET "/_fake/calls?since=${2:-0}"; else azfake GET "/_fake/calls?since=${2:-0}"; fi
}
cloud_seq() { # cloud_seq CLOUD: the sequence number of the fake's last recorded call
    cloud_calls "$1" | "$REPORT_PY" -c 'import json, sys; print(max([c["seq"] for c in json.load(sys.stdin)] + [0]))'
}
cloud_snaps() { # cloud_snaps CLOUD BEFORE_FILE: {snapshot name: completed|state} of the world's
    # disks' snapshots not listed in BEFORE_FILE (a JSON list of names; "-": print the names)
    local state
    if [ "$1" = gcp ]; then state=$(gcpfake GET /_fake/state); else state=$(azfake GET /_fake/state); fi
    "$REPORT_PY" -c 'import json, sys
cloud, before, world = sys.argv[1:4]
snaps = json.loads(sys.stdin.read())["snapshots"]
if cloud == "gcp":
    mine = {s["name"]: s["status"] for s in snaps if "/disks/%s-d" % world in s.get("sourceDisk", "")}
    done = "READY"
else:
    mine = {s["name"]: s["properties"]["provisioningState"] for s in snaps
            if "/disks/%s-d" % world in s["properties"]["creationData"].get("sourceResourceId", "")
            + s["properties"]["creationData"].get("sourceUri", "")}
    done = "Succeeded"
if before == "-":
    print(json.dumps(sorted(mine)))
else:
    old = set(json.load(open(before)))
    print(json.dumps({n: "completed" if v == done else v for n, v in mine.items() if n not in old}))' \
        "$1" "$2" "$WORLD_NAME" <<<"$state"
}

# ---------------------------------------------------------------------------------------------
# 4. the runs
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
ERRORS=$WORK/errors.txt
: >"$ERRORS"
SERVER_PIDS='' # timed: no S3 server CPU is read

say "creating the buckets"
for tool in "${TOOL_LIST[@]}"; do
    "$BARMAN_BIN/barman-cloud-check-wal-archive" --endpoint-url "$S3" "s3://snapbench-$tool/init" "$SRV" >>"$LOG" 2>&1 ||
        die "could not create bucket snapbench-$tool on $S3"
done

next_second() { # sleeps until the wall clock's second changes (backup IDs have 1 s resolution)
    local us=${EPOCHREALTIME#*.}
    sleep "$(awk -v us="$us" 'BEGIN { printf "%.3f", (1000000 - us) / 1000000 + 0.01 }')"
}

# cloud_url CLOUD TOOL: the tool's bucket for CLOUD (GCS emulator / Azurite)
cloud_url() {
    if [ "$1" = gcp ]; then echo "gs://snapbench-gcp-$2"; else echo "$BARMAN_RS_TEST_AZURE_BLOB_ENDPOINT/snapbench-az-$2"; fi
}

# with_cloud_env CLOUD COMMAND...: runs COMMAND with CLOUD's environment, exported (not on a
# command line: the secret stays out of the logs), and the AWS mount table back afterwards
with_cloud_env() {
    local cloud=$1 envs=() e rc=0
    shift
    if [ "$cloud" = gcp ]; then envs=("${CLOUD_ENV_GCP[@]}"); else envs=("${CLOUD_ENV_AZURE[@]}"); fi
    export "${envs[@]}"
    "$@" || rc=$?
    for e in "${envs[@]}"; do unset "${e%%=*}"; done
    export BARMAN_RS_FAKE_MOUNTS=$MOUNTS
    return "$rc"
}

# run_cloud CLOUD SCENARIO NDISKS REP TOOL: one backup on the GCP or Azure fake
run_cloud() {
    local cloud=$1 scn=$2 n=$3 rep=$4 tool=$5 id=$2-$5-$4 seq0 i
    local url
    url=$(cloud_url "$cloud" "$tool")/run-$rep-$scn
    local args=() cloud_args=()
    for ((i = 0; i < n; i++)); do args+=(--snapshot-disk "$WORLD_NAME-d$i"); done
    if [ "$cloud" = gcp ]; then
        cloud_args=(--cloud-provider google-cloud-storage)
        args=(--gcp-project "$GCP_PROJECT" --gcp-zone "$GCP_ZONE" "${args[@]}")
    else
        cloud_args=(--cloud-provider azure-blob-storage)
        args=(--azure-subscription-id "$AZ_SUB" --azure-resource-group "$AZ_RG" "${args[@]}")
    fi
    cloud_snaps "$cloud" - >"$WORK/snaps/$id.before" || die "$cloud fake: cannot read its state"
    next_second
    seq0=$(cloud_seq "$cloud")
    say "run $rep/$RUNS, $scn: $(tool_name "$tool") barman-cloud-backup -> $url"
    tool_cmd "$tool" barman-cloud-backup
    with_cloud_env "$cloud" timed "$id" "${CMD[@]}" "${cloud_args[@]}" --immediate-checkpoint \
        -h "$PG" -p "$PG_PORT" -U postgres --snapshot-instance "$WORLD_NAME" "${args[@]}" "$url" "$SRV"
    cloud_calls "$cloud" "$seq0" >"$WORK/calls/$id.json" || echo '[]' >"$WORK/calls/$id.json"
    tool_cmd "$tool" barman-cloud-backup-show
    with_cloud_env "$cloud" "${CMD[@]}" "${cloud_args[@]}" --format json "$url" "$SRV" last \
        >"$WORK/show/$id.json" 2>>"$LOG" || say "WARNING: $id: barman-cloud-backup-show found no DONE backup"
    cloud_snaps "$cloud" "$WORK/snaps/$id.before" >"$WORK/snaps/$id.json" 2>>"$LOG" ||
        { echo '{}' >"$WORK/snaps/$id.json"; say "WARNING: $id: could not list the snapshots"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scn" "$tool" "$rep" "$n" "$RC" \
        "$WORK/time/$id" "$WORK/show/$id.json" "$WORK/calls/$id.json" "$WORK/snaps/$id.json" >>"$RESULTS"
    say "exit $RC, $(awk '/Elapsed/ { print $NF }' "$WORK/time/$id") wall"
}
for cloud in gcp azure; do
    { [ "$cloud" = gcp ] && [ "$GCP" = 1 ]; } || { [ "$cloud" = azure ] && [ "$AZURE" = 1 ]; } || continue
    for tool in "${TOOL_LIST[@]}"; do
        with_cloud_env "$cloud" "$BARMAN_BIN/barman-cloud-check-wal-archive" \
            --cloud-provider "$([ "$cloud" = gcp ] && echo google-cloud-storage || echo azure-blob-storage)" \
            "$(cloud_url "$cloud" "$tool")/init" "$SRV" >>"$LOG" 2>&1 ||
            die "could not create the $cloud bucket of $tool"
    done
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
current=''
idx=0
for ((rep = 1; rep <= RUNS; rep++)); do
    for scn in "${SCENARIO_LIST[@]}"; do
        case $scn in
        1disk | 1disk-slow | gcp-1disk | azure-1disk) ndisks=1 ;;
        4disks | 4disks-slow | gcp-4disks | azure-4disks) ndisks=4 ;;
        esac
        cloud=aws
        case $scn in gcp-*) cloud=gcp ;; azure-*) cloud=azure ;; esac
        order=("${TOOL_LIST[@]}")
        if ((idx % 2 == 1)) && [ ${#order[@]} = 2 ]; then order=("${order[1]}" "${order[0]}"); fi
        idx=$((idx + 1))
        if [ "$cloud" != aws ]; then
            for tool in "${order[@]}"; do run_cloud "$cloud" "$scn" "$ndisks" "$rep" "$tool"; done
            continue
        fi
        if [ "$current" != "$scn" ]; then
            if [[ $scn == *-slow ]]; then
                inject "{\"pending_seconds\": $PENDING, \"create_latency\": $CREATE_LATENCY}"
            else
                inject '{"pending_seconds": null, "create_latency": null}'
            fi
            current=$scn
        fi
        disk_args=()
        for ((i = 0; i < ndisks; i++)); do disk_args+=(--snapshot-disk "$WORLD_NAME-d$i"); done
        for tool in "${order[@]}"; do
            id=$scn-$tool-$rep
            url=s3://snapbench-$tool/run-$rep-$scn
            tool_cmd "$tool" barman-cloud-backup
            next_second
            LAST_SEQ=$(fake_seq)
            seq0=$LAST_SEQ
            say "run $rep/$RUNS, $scn: $(tool_name "$tool") barman-cloud-backup -> $url"
            timed "$id" "${CMD[@]}" --immediate-checkpoint -h "$PG" -p "$PG_PORT" -U postgres \
                --endpoint-url "$S3" --snapshot-instance "$WORLD_NAME" "${disk_args[@]}" "$url" "$SRV"
            fake GET "/_fake/calls?since=$seq0" >"$WORK/calls/$id.json" || echo '[]' >"$WORK/calls/$id.json"
            LAST_SEQ=$(fake_seq)
            tool_cmd "$tool" barman-cloud-backup-show
            "${CMD[@]}" --format json --endpoint-url "$S3" "$url" "$SRV" last >"$WORK/show/$id.json" 2>>"$LOG" ||
                say "WARNING: $id: barman-cloud-backup-show found no DONE backup"
            ec2py snapshots "${VOLUME_IDS[@]}" >"$WORK/snaps/$id.json" 2>>"$LOG" ||
                { echo '{}' >"$WORK/snaps/$id.json"; say "WARNING: $id: could not list/delete the snapshots"; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scn" "$tool" "$rep" "$ndisks" "$RC" \
                "$WORK/time/$id" "$WORK/show/$id.json" "$WORK/calls/$id.json" "$WORK/snaps/$id.json" >>"$RESULTS"
            say "exit $RC, $(awk '/Elapsed/ { print $NF }' "$WORK/time/$id") wall"
        done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$LOAD_PID" ]; then
    stop_group "$LOAD_PID" 10
    LOAD_PID=''
fi
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >>"$LOG" 2>&1 || true
PG_DATA=''
"$REPO/scripts/test-services.sh" stop "$SERVICES" >>"$LOG" 2>&1 || say "WARNING: scripts/test-services.sh stop failed"
SERVICES=''
TOTAL_S=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# 5. report
# ---------------------------------------------------------------------------------------------
REPORT=$WORK/report.md
{
    echo "### Snapshot backups (AWS EBS on moto; GCP and Azure on local fakes): barman-rs vs Barman 3.20.1 (bench/snapshot-bench.sh)"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr); load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- $([ -n "$RS_VERSION" ] && echo "barman-rs: \`$RS_VERSION\`, release build of $GIT_REV; ")Barman: \`$PY_VERSION\` ($("$PY" --version 2>&1), boto3 $("$PY" -c 'import boto3; print(boto3.__version__)' 2>/dev/null)); moto $MOTO_VERSION (S3, and EC2 behind tests/fakes/ec2_fake.py), all on 127.0.0.1"
    echo "- PostgreSQL $PG_VERSION, \`pgbench -i -s 1\`, archive_command '/bin/true'$([ "$LOAD_TPS" -gt 0 ] && echo ", a pgbench load of $LOAD_TPS TPC-B transactions/s (one client) running throughout")"
    echo "- EC2: one instance, 4 volumes attached as /dev/sdf-/dev/sdi; the findmnt stand-in (tests/fakes/findmnt) mounts them at 4 directories, PGDATA on the first (the other three hold nothing); 1-disk scenarios snapshot the first, 4-disk ones all four"
    echo "- slow scenarios: the EC2 fake makes CreateSnapshot answer ${CREATE_LATENCY} s late and DescribeSnapshots show each snapshot \`pending\` until ${PENDING} s after its creation; otherwise moto completes snapshots at once"
    echo "- each run: \`barman-cloud-backup --immediate-checkpoint -h SOCKDIR -p PORT -U postgres --endpoint-url S3 --snapshot-instance NAME --snapshot-disk NAME-d0 [... NAME-d3] s3://snapbench-TOOL/run-N-SCENARIO $SRV\` under \`/usr/bin/time -v\` (wall; CPU = user + sys; peak RSS), $RUNS run(s) per scenario and tool, the tool going first alternating; medians"
    echo "- in backup mode = backup.info \`end_time - begin_time\` (PostgreSQL's \`now()\` in the pg_backup_start and pg_backup_stop transactions, so the immediate checkpoint counts) as the tool's own \`barman-cloud-backup-show --format json\` shows them (\`begin_time_iso\`, \`end_time_iso\`); a run is ok when that backup is DONE and lists one snapshot per disk, each \`completed\` in DescribeSnapshots afterwards; EC2 requests = the requests the fake recorded during the run; speed-up = Barman's median / barman-rs's median"
    if [ "$GCP" = 1 ] || [ "$AZURE" = 1 ]; then
        echo "- GCP / Azure: the same cluster and directories, an instance / VM with 4 disks on tests/fakes/gcp_compute_fake.py (device names /dev/disk/by-id/google-d0-dev..) / the TLS instance of tests/fakes/azure_compute_fake.py (data disks at LUN 0-3, /dev/disk/azure/scsi1/lun0..); every snapshot operation takes ${CLOUD_LATENCY} s (GCP: \`creating_seconds\`; Azure: \`latency\`, Retry-After ${AZURE_RETRY_AFTER} s); each run: \`barman-cloud-backup --cloud-provider google-cloud-storage --gcp-project P --gcp-zone Z\` / \`--cloud-provider azure-blob-storage --azure-subscription-id S --azure-resource-group G\` \`--immediate-checkpoint ... --snapshot-instance NAME --snapshot-disk NAME-d0 [...] gs://snapbench-gcp-TOOL/run-N-SCENARIO\` (GCS emulator) / \`AZURITE/snapbench-az-TOOL/run-N-SCENARIO\` \`$SRV\`; Barman's google-cloud-compute $("$PY" -c 'from google.cloud import compute_v1; print(compute_v1.__version__)' 2>/dev/null || echo '?') / azure-mgmt-compute $("$PY" -c 'from azure.mgmt.compute import __version__ as v; print(v)' 2>/dev/null || echo '?') pointed at the fakes by tests/fakes/barman_site/sitecustomize.py; ok = DONE, one snapshot per disk, each READY / Succeeded in the fake; requests = the fake's record (token calls included)"
    fi
    echo "- whole run ${TOTAL_S} s"
    echo
    "$REPORT_PY" "$REPO/bench/snapshot-report.py" "$RESULTS" "$WORLD_AGENT" "$CLOUD_LATENCY" "$AZURE_RETRY_AFTER"
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
