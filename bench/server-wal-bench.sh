#!/usr/bin/env bash
# Barman server WAL path benchmark: barman-rs against Python Barman 3.20.1, side by side, same
# machine, same run: `barman put-wal` (through barman-wal-archive over ssh), `barman
# archive-wal`, `barman get-wal` (through barman-wal-restore over ssh, and locally with -o).
#
#   bench/server-wal-bench.sh [--segments N] [--runs N] [--scenarios LIST] [--tools LIST]
#                             [--compressions LIST] [--wal-source pgbench|synthetic]
#                             [--output FILE] [--keep-workdir]
#
#   --segments N        WAL segments of 16 MiB (default 20)
#   --runs N            repetitions of everything (default 3; the tool going first alternates;
#                       the report gives medians)
#   --scenarios LIST    comma-separated, from: put-wal (each tool's barman-wal-archive -> ssh ->
#                       its own `barman put-wal`), put-wal-cross (our client -> Barman's server
#                       and Barman's client -> ours), wal-restore (each tool's
#                       barman-wal-restore -> ssh -> its own `barman get-wal`), get-wal (local
#                       `barman get-wal -o DIR`). `barman archive-wal` always runs and is always
#                       reported: the get-wal scenarios need what it files. Default: all
#   --tools LIST        barman,barman-rs (default both; barman alone tests the harness)
#   --compressions LIST server `compression` settings from none, gzip, zstd (default all three;
#                       put-wal and put-wal-cross only use none: put-wal does not compress)
#   --wal-source S      pgbench (default): real WAL from a throwaway PostgreSQL 15 cluster under
#                       pgbench load, as bench/wal-bench.sh makes it; synthetic: a generated mix
#   --output FILE       where the Markdown report goes (default
#                       bench/server-wal-bench-results.md); it is also printed on stdout
#   --keep-workdir      keep the temp dir (logs, outputs, raw results)
#
# What it does:
#   1. installs what it needs when missing (apt `time`, openssh-server/-client; Barman through
#      `scripts/test-services.sh install`) and builds the release barman-rs (`cargo build
#      --release -p barman-cloud-cli`, in $CARGO_TARGET_DIR when set).
#   2. makes N WAL segments (the same generator as bench/wal-bench.sh).
#   3. starts its own OpenSSH server on 127.0.0.1 (the configuration of scripts/test-services.sh
#      start_sshd: throw-away host and client keys, key-only root login; only sshd, none of the
#      other test services, so that nothing else idles on the 2 cores). The clients run
#      `ssh [-p PORT] -q -T root@127.0.0.1 barman -c CONF ...`; an `ssh` wrapper first on their
#      PATH adds the key, records no host key, and puts `PATH=DIR:$PATH` before the remote
#      command so that the remote `barman` is the server under test (as the integration tests
#      crates/barman-cloud-cli/tests/it/wal_clients.rs do). That remote `barman` is a small sh
#      script running the real one under `/usr/bin/time`, so the server side's own wall, CPU
#      and peak RSS are recorded too (the same ~1-2 ms for both tools).
#   4. each tool has its own barman_home and barman.conf (server sections srv-none, srv-gzip,
#      srv-zstd: `compression =` that codec; srv-cross for put-wal-cross), emptied before every
#      run. Per run: put-wal of every segment into srv-none (one client process per segment, as
#      archive_command runs it; tools alternate who goes first), the incoming files compared
#      with the sources; the other servers' incoming/ filled by cp (not measured);
#      `barman archive-wal srv-COMP` once per tool and compression under `/usr/bin/time -v`,
#      checked (xlog.db has N lines naming the N segments with the right compression, incoming/
#      empty); barman-wal-restore and `barman get-wal -o DIR` of every segment, each output
#      compared with the source by cmp. A (scenario, tool, run) counts only when every segment
#      of it succeeded and was verified.
#   5. writes the Markdown report (bench/server-wal-report.py).
# Everything it starts is stopped and its temp dir removed on exit, also on error or ^C.
#
# Environment: BARMAN_RS_TOOLS (default /opt/barman-rs-tools), CARGO (default cargo; CARGO=true
# skips the build and uses the existing release binary), CARGO_TARGET_DIR. Needs root (root is
# the barman_user and the ssh login). Debian 12 tested.
set -euo pipefail
export LC_ALL=C
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
PG_BIN=/usr/lib/postgresql/15/bin
SEG_BYTES=$((16 * 1024 * 1024))
PGBENCH_SCALE=50 # as bench/wal-bench.sh: random TPC-B updates touch many pages -> FPIs
ALL_SCENARIOS=put-wal,put-wal-cross,wal-restore,get-wal

SEGMENTS=20
RUNS=3
SCENARIOS=$ALL_SCENARIOS
TOOL_NAMES=barman,barman-rs
COMPRESSIONS=none,gzip,zstd
WAL_SOURCE=pgbench
OUTPUT=$REPO/bench/server-wal-bench-results.md
KEEP=0

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh" # say, die, install, build, process-group helpers and timed
SAY_FORMAT='[server-wal-bench %s] %s\n'
usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case $1 in
    --segments) SEGMENTS=${2:?}; shift 2 ;;
    --segments=*) SEGMENTS=${1#*=}; shift ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --scenarios=*) SCENARIOS=${1#*=}; shift ;;
    --tools) TOOL_NAMES=${2:?}; shift 2 ;;
    --tools=*) TOOL_NAMES=${1#*=}; shift ;;
    --compressions) COMPRESSIONS=${2:?}; shift 2 ;;
    --compressions=*) COMPRESSIONS=${1#*=}; shift ;;
    --wal-source) WAL_SOURCE=${2:?}; shift 2 ;;
    --wal-source=*) WAL_SOURCE=${1#*=}; shift ;;
    --output) OUTPUT=${2:?}; shift 2 ;;
    --output=*) OUTPUT=${1#*=}; shift ;;
    --keep-workdir) KEEP=1; shift ;;
    -h | --help) usage 0 ;;
    *) say "unknown argument: $1"; usage 2 ;;
    esac
done
[[ $SEGMENTS =~ ^[1-9][0-9]*$ ]] || die "--segments must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive integer"
case $WAL_SOURCE in pgbench | synthetic) ;; *) die "--wal-source must be pgbench or synthetic" ;; esac
parse_scenarios_and_tools # bench/lib.sh: SCENARIO_LIST, TOOL_LIST (py, rs)
IFS=, read -r -a COMP_LIST <<<"$COMPRESSIONS"
[ ${#COMP_LIST[@]} -gt 0 ] || die "--compressions is empty"
for c in "${COMP_LIST[@]}"; do
    case $c in none | gzip | zstd) ;; *) die "unknown compression '$c' (known: none, gzip, zstd)" ;; esac
done
has_scenario() { [[ ,$SCENARIOS, == *,"$1",* ]]; }
has_tool() { [[ " ${TOOL_LIST[*]} " == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || die "run as root (apt installs, root is barman_user and the ssh login)"
mkdir -p "$(dirname "$OUTPUT")"
OUTPUT=$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")

T_START=$EPOCHREALTIME
WORK=$(mktemp -d /tmp/server-wal-bench.XXXXXX)
chmod 711 "$WORK" # user postgres must reach $WORK/pg
cd "$WORK"
LOG=$WORK/bench.log
: >"$LOG"
mkdir -p "$WORK/time" "$WORK/out"

# ---------------------------------------------------------------------------------------------
# cleanup: everything started here is tracked in these variables
# ---------------------------------------------------------------------------------------------
PG_DATA='' PGBENCH_PID='' SSHD_PID='' CHILD_PID=''

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$CHILD_PID" ]; then stop_group "$CHILD_PID" 5; fi
    if [ -n "$PGBENCH_PID" ]; then kill "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null; fi
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D '$PG_DATA' -m immediate -w stop" >/dev/null 2>&1
    fi
    if [ -n "$SSHD_PID" ]; then stop_group "$SSHD_PID" 10; fi
    finish_cleanup "$rc" # bench/lib.sh: log tail on failure, $WORK removed, exit
}
install_traps

# ---------------------------------------------------------------------------------------------
# 1. install and build
# ---------------------------------------------------------------------------------------------
say "work dir $WORK; log $LOG"
apt_install time openssh-server openssh-client
"$REPO/scripts/test-services.sh" install >>"$LOG" 2>&1 || die "scripts/test-services.sh install failed"
BARMAN_BIN=$TOOLS/barman-venv/bin
REPORT_PY=/usr/bin/python3
[ -x "$REPORT_PY" ] || REPORT_PY=$BARMAN_BIN/python
build_barman_rs # bench/lib.sh: RS, GIT_REV

# Per tool: bin/ (its client commands, named as installed), remote/barman (the server as ssh
# reaches it: /usr/bin/time around remote/real/barman), remote/time (that measurement), home/,
# barman.conf. One ssh wrapper directory per server tool: ssh-rs/ssh, ssh-py/ssh.
tool_dir() { printf '%s/%s' "$WORK" "$1"; }
for t in rs py; do
    d=$(tool_dir "$t")
    mkdir -p "$d/bin" "$d/remote/real" "$d/home" "$d/spool" "$d/restore"
    if [ "$t" = rs ]; then
        for c in barman barman-wal-archive barman-wal-restore; do ln -s "$RS" "$d/bin/$c"; done
    else
        for c in barman barman-wal-archive barman-wal-restore; do ln -s "$BARMAN_BIN/$c" "$d/bin/$c"; done
    fi
    ln -s "$d/bin/barman" "$d/remote/real/barman"
    printf '#!/bin/sh\nexec /usr/bin/time -o %s -f "%%e %%M %%U %%S" %s "$@"\n' \
        "$d/remote/time" "$d/remote/real/barman" >"$d/remote/barman"
    chmod 755 "$d/remote/barman"
done
RS_VERSION=$("$WORK/rs/bin/barman" --version 2>&1 | head -n1)
PY_VERSION=$("$WORK/py/bin/barman" --version 2>&1 | head -n1)

write_conf() { # write_conf TOOL: its barman.conf (servers srv-none, srv-gzip, srv-zstd, srv-cross)
    local d c
    d=$(tool_dir "$1")
    {
        printf '[barman]\nbarman_home = %s\nbarman_user = root\nlog_file = %s\nlog_level = INFO\n' \
            "$d/home" "$d/barman.log"
        for c in none gzip zstd cross; do
            printf '\n[srv-%s]\ndescription = bench %s\nconninfo = host=127.0.0.1\nssh_command = true\n' "$c" "$c"
            printf 'backup_method = rsync\narchiver = on\n'
            case $c in gzip | zstd) printf 'compression = %s\n' "$c" ;; esac
        done
    } >"$d/barman.conf"
}
write_conf rs
write_conf py

# ---------------------------------------------------------------------------------------------
# 2. WAL segments (as bench/wal-bench.sh makes them)
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
    for f in "$pg"/archive/*; do
        f=${f##*/}
        [[ $f =~ ^[0-9A-F]{24}$ && $f > $start_seg ]] || continue
        i=$((i + 1))
        mv "$pg/archive/$f" "$SEG_DIR/$(seg_name "$i")"
        [ $i -ge "$SEGMENTS" ] && break
    done
    rm -rf "$pg"
    PG_DATA=''
    unset PGHOST PGPORT PGUSER PGDATABASE
    WAL_DESC="real WAL from PostgreSQL $pgver (\`pgbench -i -s $PGBENCH_SCALE\`, then TPC-B \`pgbench -c 4 -j 2\`, checkpoint_timeout 30s so full-page images are in the mix), the first $SEGMENTS segments written entirely under the load, renamed $(seg_name 1)..$(seg_name "$SEGMENTS"); generated in $((SECONDS - t0)) s"
}

make_wal_synthetic() {
    local t0=$SECONDS
    "$REPORT_PY" - "$SEG_DIR" "$SEGMENTS" <<'EOF'
import os, random, sys
# As bench/wal-bench.sh: per 8 KiB page, seeded: 45% random bytes, 40% pgbench-like tuples, 15% zeros.
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
# Renamed (real) or made-up (synthetic) segments: the first page's long header made to match
# the new name (magic, info, timeline, page address; system id, segment and block size), as
# bench/wal-bench.sh does, since the WAL clients may check it against the name.
"$REPORT_PY" - "$SEG_DIR" <<'EOF'
import os, struct, sys
for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    tli, log, seg = (int(name[i:i + 8], 16) for i in (0, 8, 16))
    with open(path, "r+b") as f:
        header = bytearray(f.read(40))
        magic, info = struct.unpack_from("<HH", header, 0)
        if not info & 0x0002:
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
GZ_RATIO=$(for i in 1 $(((SEGMENTS + 1) / 2)) "$SEGMENTS"; do gzip -6 -c "$SEG_DIR/$(seg_name "$i")" | wc -c; done |
    awk -v b=$SEG_BYTES '{ s += $1; n++ } END { printf "%.0f%%", 100 * s / (n * b) }')
say "$SEGMENTS segments ready ($WAL_SOURCE; gzip -6 sample ratio $GZ_RATIO)"

# ---------------------------------------------------------------------------------------------
# 3. sshd on 127.0.0.1 (scripts/test-services.sh start_sshd's configuration)
# ---------------------------------------------------------------------------------------------
start_sshd() {
    local dir=$WORK/sshd i
    SSH_PORT=$(free_port)
    mkdir -p "$dir"
    ssh-keygen -q -t ed25519 -N '' -C server-wal-bench-host -f "$dir/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C server-wal-bench-client -f "$dir/client_ed25519"
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    printf '%s\n' "Port $SSH_PORT" "ListenAddress 127.0.0.1" "HostKey $dir/host_ed25519" \
        "PidFile $dir/sshd.pid" "AuthorizedKeysFile $dir/authorized_keys" \
        "PermitRootLogin prohibit-password" "PubkeyAuthentication yes" \
        "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" \
        "StrictModes no" "PrintMotd no" "X11Forwarding no" "AllowTcpForwarding no" \
        "MaxStartups 100" "LogLevel ERROR" >"$dir/sshd_config"
    mkdir -p /run/sshd
    setsid /usr/sbin/sshd -D -e -f "$dir/sshd_config" </dev/null >"$dir/sshd.log" 2>&1 &
    SSHD_PID=$!
    local ssh=(/usr/bin/ssh -p "$SSH_PORT" -i "$dir/client_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1)
    for ((i = 0; i < 100; i++)); do
        "${ssh[@]}" true 2>/dev/null && break
        kill -0 "$SSHD_PID" 2>/dev/null || die "sshd died: $(tail -n 20 "$dir/sshd.log")"
        sleep 0.1
    done
    "${ssh[@]}" true 2>/dev/null || die "sshd: no login within 10 s: $(tail -n 20 "$dir/sshd.log")"
    SSH_VERSION=$(/usr/bin/ssh -V 2>&1)
    say "sshd on 127.0.0.1:$SSH_PORT ($SSH_VERSION)"
    # ssh wrappers, as crates/barman-cloud-cli/tests/it/wal_clients.rs write_ssh_wrapper: the
    # key, no host key records, and the remote `barman` found in the server tool's remote/.
    local t
    for t in rs py; do
        mkdir -p "$WORK/ssh-$t"
        cat >"$WORK/ssh-$t/ssh" <<EOF
#!/bin/bash
args=(); inserted=; skip=
for a in "\$@"; do
  if [ -n "\$inserted" ] || [ -n "\$skip" ]; then args+=("\$a"); skip=; continue; fi
  case "\$a" in
    -p|-i|-o|-l) args+=("\$a"); skip=1;;
    -*) args+=("\$a");;
    *) args+=("\$a" "PATH=$(tool_dir "$t")/remote:\\\$PATH"); inserted=1;;
  esac
done
exec /usr/bin/ssh -i $dir/client_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "\${args[@]}"
EOF
        chmod 755 "$WORK/ssh-$t/ssh"
    done
}
start_sshd

# ---------------------------------------------------------------------------------------------
# 4. measurement
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv  # one line per process (see bench/server-wal-report.py)
RUNS_TSV=$WORK/runs.tsv    # one line per (run, scenario, compression, client, server): ok/FAILED
ARCHIVE_TSV=$WORK/archive.tsv
: >"$RESULTS"
: >"$RUNS_TSV"
: >"$ARCHIVE_TSV"
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

fail() { # fail RUN SCENARIO COMP CLIENT SERVER MESSAGE: the (run, ...) will not count
    printf '%s\t%s\t%s\t%s\t%s\tFAILED\n' "$1" "$2" "$3" "$4" "$5" >>"$RUNS_TSV"
    printf 'run %s %s %s %s->%s: %s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$ERRORS"
    say "FAILED: run $1 $2 $3 $4->$5: $6"
}

# measure RUN SCENARIO COMP CLIENT SERVER SEG CMD...: one process, one line in $RESULTS; for the
# ssh scenarios SERVER's remote/time holds the remote barman's own measurement afterwards.
measure() {
    local run=$1 scen=$2 comp=$3 client=$4 server=$5 seg=$6
    shift 6
    local rc=0 t0 t1 rss=0 user=0 sys=0 r_wall=0 r_rss=0 r_user=0 r_sys=0 rtime=''
    if [ "$client" != ssh ]; then
        case $scen in put-wal* | wal-restore) rtime=$(tool_dir "$server")/remote/time; rm -f "$rtime" ;; esac
    fi
    t0=$EPOCHREALTIME
    # its own process group, waited for in the background: a TERM/INT runs cleanup at once
    setsid -w /usr/bin/time -f '%M %U %S' -o "$TIME_OUT" "$@" </dev/null >"$CMD_OUT" 2>&1 &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    t1=$EPOCHREALTIME
    CHILD_PID=''
    read -r rss user sys < <(tail -n 1 "$TIME_OUT") || true
    [[ $rss =~ ^[0-9]+$ ]] || rss=0
    if [ -n "$rtime" ]; then
        if [ -s "$rtime" ]; then read -r r_wall r_rss r_user r_sys < <(tail -n 1 "$rtime") || true; fi
        [[ $r_rss =~ ^[0-9]+$ ]] || { r_rss=0; [ "$rc" != 0 ] || rc=97; } # the remote barman never ran
    fi
    if [ "$rc" != 0 ]; then
        {
            printf 'run %s %s %s %s->%s %s: exit %s: %s\n' "$run" "$scen" "$comp" "$client" "$server" "$seg" "$rc" "$*"
            sed 's/^/    /' "$CMD_OUT" | head -n 20
        } >>"$ERRORS"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scen" "$comp" "$client" \
        "$server" "$seg" $((${t1/./} - ${t0/./})) "$rss" "$user" "$sys" "$r_wall" "$r_rss" "$r_user" "$r_sys" "$rc" >>"$RESULTS"
    MEASURE_RC=$rc
}

client_path() { printf 'PATH=%s/ssh-%s:%s' "$WORK" "$1" "$PATH"; } # the ssh wrapper reaching $1's barman first

reset_home() { # reset_home TOOL: an empty barman_home (the servers' directories are created by barman)
    local d
    d=$(tool_dir "$1")
    rm -rf "${d:?}/home" "${d:?}/spool" "${d:?}/restore"
    mkdir -p "$d/home" "$d/spool" "$d/restore"
    : >"$d/barman.log"
}

# put_wal_run RUN SCENARIO PAIRS...: each pair CLIENT:SERVER puts every segment into srv-SECTION
# of SERVER's home (srv-none for put-wal, srv-cross for put-wal-cross), then the incoming files
# are compared with the sources.
put_wal_run() {
    local run=$1 scen=$2 section=none pair client server i seg failed
    shift 2
    [ "$scen" = put-wal-cross ] && section=cross
    local -A bad=()
    say "run $run: $scen x $SEGMENTS segments ($*)"
    for ((i = 1; i <= SEGMENTS; i++)); do
        seg=$(seg_name "$i")
        for pair in $(rotate $((i + run)) "$@"); do
            client=${pair%:*} server=${pair#*:}
            if [ "$client" = ssh ]; then
                # the floor: the same ssh connection and 16 MiB stream, `cat` on the other side
                # shellcheck disable=SC2016 # expanded by that bash -c
                measure "$run" "$scen" none ssh ssh "$seg" bash -c 'exec "$0" -p "$1" -q -T root@127.0.0.1 "cat > $2" <"$3"' \
                    "$WORK/ssh-rs/ssh" "$SSH_PORT" "$WORK/ssh/home/$seg" "$SEG_DIR/$seg"
                [ "$MEASURE_RC" = 0 ] || bad[$pair]=1
                continue
            fi
            measure "$run" "$scen" none "$client" "$server" "$seg" env "$(client_path "$server")" \
                "$(tool_dir "$client")/bin/barman-wal-archive" -U root --port "$SSH_PORT" \
                -c "$(tool_dir "$server")/barman.conf" 127.0.0.1 "srv-$section" "$SEG_DIR/$seg"
            [ "$MEASURE_RC" = 0 ] || bad[$pair]=1
        done
    done
    for pair in "$@"; do
        client=${pair%:*} server=${pair#*:}
        failed=${bad[$pair]:-}
        local inc
        inc=$(tool_dir "$server")/home/srv-$section/incoming
        [ "$client" != ssh ] || inc=$WORK/ssh/home
        for ((i = 1; i <= SEGMENTS; i++)); do
            seg=$(seg_name "$i")
            cmp -s "$SEG_DIR/$seg" "$inc/$seg" || { failed="incoming/$seg missing or differs"; break; }
        done
        # shellcheck disable=SC2012
        [ -n "$failed" ] || [ "$(ls "$inc" | wc -l)" = "$SEGMENTS" ] || failed="incoming/ has $(ls "$inc" | wc -l) files"
        if [ -n "$failed" ]; then
            fail "$run" "$scen" none "$client" "$server" "$failed"
        else
            printf '%s\t%s\tnone\t%s\t%s\tok\n' "$run" "$scen" "$client" "$server" >>"$RUNS_TSV"
        fi
    done
}

# archive_run RUN COMP TOOL: `barman archive-wal srv-COMP` under /usr/bin/time -v, then checks
archive_run() {
    local run=$1 comp=$2 tool=$3 d id failed='' i seg n lines
    d=$(tool_dir "$tool")
    id=archive-$run-$comp-$tool
    # As bench/lib.sh `timed`, but with bash's clock for the wall time (`time -v` rounds it to
    # 10 ms): in its own process group, waited for in the background (a ^C runs cleanup at
    # once, and cleanup stops the group).
    local rc=0 t0 t1 rss=0 user=0 sys=0
    printf '%s: %s\n' "$id" "$d/bin/barman -c $d/barman.conf archive-wal srv-$comp" >>"$LOG"
    t0=$EPOCHREALTIME
    setsid -w /usr/bin/time -f '%M %U %S' -o "$WORK/time/$id" "$d/bin/barman" -c "$d/barman.conf" \
        archive-wal "srv-$comp" </dev/null >"$WORK/out/$id" 2>&1 &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    t1=$EPOCHREALTIME
    CHILD_PID=''
    cat "$WORK/out/$id" >>"$LOG"
    read -r rss user sys < <(tail -n 1 "$WORK/time/$id") || true
    sync # not measured: the filed WAL's writeback must not slow the next command down
    if [ "$rc" != 0 ]; then
        failed="exit $rc"
        { printf 'archive-wal %s %s run %s: exit %s\n' "$comp" "$tool" "$run" "$rc"; tail -n 20 "$WORK/out/$id" | sed 's/^/    /'; } >>"$ERRORS"
    fi
    local home=$d/home/srv-$comp want=$comp
    [ "$comp" = none ] && want=None
    if [ -z "$failed" ]; then
        lines=$(wc -l <"$home/wals/srv-$comp-xlog.db")
        [ "$lines" = "$SEGMENTS" ] || failed="xlog.db has $lines lines"
    fi
    if [ -z "$failed" ]; then
        for ((i = 1; i <= SEGMENTS; i++)); do
            seg=$(seg_name "$i")
            # xlog.db: name \t size \t time \t compression
            n=$(awk -F'\t' -v s="$seg" -v c="$want" '$1 "" == s && $4 "" == c { n++ } END { print n + 0 }' "$home/wals/srv-$comp-xlog.db")
            [ "$n" = 1 ] || { failed="xlog.db: $seg with compression $want appears $n times"; break; }
            [ -f "$home/wals/${seg:0:16}/$seg" ] || { failed="wals/${seg:0:16}/$seg missing"; break; }
        done
    fi
    # shellcheck disable=SC2012
    [ -n "$failed" ] || [ "$(ls "$home/incoming" | wc -l)" = 0 ] || failed="incoming/ not empty"
    local stored
    stored=$(du -sb --exclude="*xlog.db" "$home/wals" 2>/dev/null | cut -f1)
    if [ -n "$failed" ]; then
        fail "$run" archive-wal "$comp" "$tool" "$tool" "$failed"
    else
        printf '%s\tarchive-wal\t%s\t%s\t%s\tok\n' "$run" "$comp" "$tool" "$tool" >>"$RUNS_TSV"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$comp" "$tool" $((${t1/./} - ${t0/./})) "$rss" "$user" "$sys" "${stored:-0}" >>"$ARCHIVE_TSV"
}

# restore_run RUN SCENARIO COMP: wal-restore (over ssh) or get-wal (-o DIR) of every segment
# from each tool's own srv-COMP, each output compared with the source.
restore_run() {
    local run=$1 scen=$2 comp=$3 i seg tool d out
    local -A bad=()
    local -a who=("${TOOL_LIST[@]}")
    # the floor, uncompressed only: the same ssh connection streaming the segment with `cat`
    [ "$scen:$comp" != wal-restore:none ] || who+=(ssh)
    say "run $run: $scen from srv-$comp x $SEGMENTS segments (${TOOL_LIST[*]}; each output compared with cmp)"
    for ((i = 1; i <= SEGMENTS; i++)); do
        seg=$(seg_name "$i")
        for tool in $(rotate $((i + run)) "${who[@]}"); do
            d=$(tool_dir "$tool")
            out=$d/restore
            rm -f "$out/$seg"
            if [ "$tool" = ssh ]; then
                # shellcheck disable=SC2016 # expanded by that bash -c
                measure "$run" "$scen" "$comp" ssh ssh "$seg" bash -c 'exec "$0" -p "$1" -q -T root@127.0.0.1 "cat $2" >"$3"' \
                    "$WORK/ssh-rs/ssh" "$SSH_PORT" "$SEG_DIR/$seg" "$out/$seg"
            elif [ "$scen" = wal-restore ]; then
                measure "$run" "$scen" "$comp" "$tool" "$tool" "$seg" env "$(client_path "$tool")" \
                    "$d/bin/barman-wal-restore" -U root --port "$SSH_PORT" --spool-dir "$d/spool" \
                    -c "$d/barman.conf" 127.0.0.1 "srv-$comp" "$seg" "$out/$seg"
            else
                measure "$run" "$scen" "$comp" "$tool" "$tool" "$seg" \
                    "$d/bin/barman" -c "$d/barman.conf" get-wal -o "$out" "srv-$comp" "$seg"
            fi
            if [ "$MEASURE_RC" != 0 ]; then
                bad[$tool]="$seg: exit $MEASURE_RC"
            elif ! cmp -s "$SEG_DIR/$seg" "$out/$seg"; then
                bad[$tool]="$seg: output differs from the source"
                sed -i '$ s/\t[0-9]*$/\t99/' "$RESULTS"
            fi
            rm -f "$out/$seg"
        done
    done
    for tool in "${who[@]}"; do
        if [ -n "${bad[$tool]:-}" ]; then
            fail "$run" "$scen" "$comp" "$tool" "$tool" "${bad[$tool]}"
        else
            printf '%s\t%s\t%s\t%s\t%s\tok\n' "$run" "$scen" "$comp" "$tool" "$tool" >>"$RUNS_TSV"
        fi
    done
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_MEASURE=$EPOCHREALTIME
for ((run = 1; run <= RUNS; run++)); do
    for t in "${TOOL_LIST[@]}" ssh; do reset_home "$t"; done
    pairs=()
    for t in "${TOOL_LIST[@]}" ssh; do pairs+=("$t:$t"); done
    if has_scenario put-wal; then put_wal_run "$run" put-wal "${pairs[@]}"; fi
    if has_scenario put-wal-cross && has_tool rs && has_tool py; then
        put_wal_run "$run" put-wal-cross rs:py py:rs
    fi
    # incoming/ of the servers put-wal did not fill: plain copies (not measured)
    for t in "${TOOL_LIST[@]}"; do
        for comp in "${COMP_LIST[@]}"; do
            inc=$(tool_dir "$t")/home/srv-$comp/incoming
            if [ "$comp" = none ] && has_scenario put-wal; then continue; fi
            mkdir -p "$inc"
            cp "$SEG_DIR"/* "$inc/"
        done
    done
    sync
    for comp in "${COMP_LIST[@]}"; do
        say "run $run: archive-wal srv-$comp (${TOOL_LIST[*]})"
        for t in $(rotate "$run" "${TOOL_LIST[@]}"); do archive_run "$run" "$comp" "$t"; done
    done
    for scen in wal-restore get-wal; do
        has_scenario "$scen" || continue
        for comp in "${COMP_LIST[@]}"; do restore_run "$run" "$scen" "$comp"; done
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
MEASURE_S=$(awk -v a="$T_MEASURE" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
TOTAL_S=$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------------------------
# 5. report
# ---------------------------------------------------------------------------------------------
REPORT=$WORK/report.md
{
    echo "### Barman server WAL path: barman-rs vs Barman 3.20.1 (bench/server-wal-bench.sh)"
    echo
    echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -sr), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), /tmp on $(df -T /tmp | awk 'NR == 2 { print $2 }'); load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
    echo "- barman-rs: \`$RS_VERSION\`, release build of $GIT_REV; Barman: \`$PY_VERSION\` ($("$BARMAN_BIN/python" --version 2>&1)); $SSH_VERSION, sshd on 127.0.0.1"
    echo "- $SEGMENTS segments of 16 MiB: $WAL_DESC; gzip -6 compresses a sample to $GZ_RATIO"
    echo "- $RUNS run(s); per run each tool starts from an empty barman_home of its own (servers srv-none, srv-gzip, srv-zstd with that \`compression\`); the tool (or client→server pair) going first alternates per segment and per run"
    echo "- **put-wal**: \`barman-wal-archive -U root --port P -c CONF 127.0.0.1 srv-none SEGMENT\` per segment (as archive_command runs it) → ssh → \`barman -c CONF put-wal srv-none\` of the server tool; checked: incoming/ holds the N segments byte-identical. **put-wal-cross**: the same, our client against Barman's server and Barman's client against ours"
    echo "- **archive-wal**: \`barman -c CONF archive-wal srv-COMP\` once, filing the N segments from incoming/ (put there by put-wal, or by cp for the other servers); checked: xlog.db has N lines naming each segment once with the right compression, every file in wals/, incoming/ empty"
    echo "- **wal-restore**: \`barman-wal-restore -U root --port P -c CONF 127.0.0.1 srv-COMP SEGMENT FILE\` per segment → ssh → the same tool's \`barman get-wal\` (decompressing on the server); **get-wal -o**: \`barman -c CONF get-wal -o DIR srv-COMP SEGMENT\` per segment, locally. Every output compared with the source by cmp"
    echo "- **ssh floor** rows: the same ssh connection (same wrapper, key, sshd) streaming the segment with \`cat\` on the other side (\`ssh ... \"cat > FILE\" < SEGMENT\`, \`ssh ... \"cat SEGMENT\" > FILE\`), interleaved with the tools and checked the same way: what any client going through ssh pays for one segment on this machine"
    echo "- a (run, scenario, compression, client, server) counts only when every one of its processes exited 0 and everything was verified; per-segment figures: wall = bash \$EPOCHREALTIME around \`setsid -w /usr/bin/time\` (includes their ~1-2 ms); client CPU and peak RSS = \`/usr/bin/time\` of the client process (with its ssh child); server-side figures = the remote \`barman\` process under \`/usr/bin/time\` (started by sshd through a 2-line sh wrapper, the same for both tools; sshd's own cost is in neither); total = the N segments' wall added up, median over runs; speed-up = Barman's median / the row's"
    echo "- measurement time ${MEASURE_S} s; whole run (install checks, build, WAL generation, sshd) ${TOTAL_S} s"
    echo
    "$REPORT_PY" "$REPO/bench/server-wal-report.py" "$RESULTS" "$RUNS_TSV" "$ARCHIVE_TSV" "$SEGMENTS" "$RUNS"
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
cp "$REPORT" "$OUTPUT"
if [ "$KEEP" = 1 ]; then cp "$LOG" "$WORK/bench.log.final" 2>/dev/null || true; fi
say "done in ${TOTAL_S} s; report written to $OUTPUT"
