#!/usr/bin/env bash
# Builds barman-rs in release mode and installs the nine barman-cloud-* commands, and the
# barman server commands (barman, barman-wal-archive, barman-wal-restore) unless another
# install of them would be shadowed: one binary, barman-rs, and one link per command name,
# in $PREFIX/bin.
#
#   scripts/install.sh                  installs into /usr/local/bin
#   PREFIX=$HOME/.local scripts/install.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PREFIX=${PREFIX:-/usr/local}
COMMANDS=(backup backup-delete backup-keep backup-list backup-show check-wal-archive
          restore wal-archive wal-restore)

command -v cargo >/dev/null || { echo "install.sh: cargo (Rust) is required" >&2; exit 1; }
cargo build --release --locked -p barman-cloud-cli
mkdir -p "$PREFIX/bin"
install -m 0755 target/release/barman-rs "$PREFIX/bin/barman-rs"
for c in "${COMMANDS[@]}"; do
    ln -sfn barman-rs "$PREFIX/bin/barman-cloud-$c"
done
echo "installed barman-rs and barman-cloud-{$(IFS=,; echo "${COMMANDS[*]}")} in $PREFIX/bin"
# The barman server and its PostgreSQL-side clients. The server is not complete yet (no
# backup or recover: see the README), so a `barman`, `barman-wal-archive` or
# `barman-wal-restore` already installed elsewhere (Python Barman, barman-cli) is not
# shadowed unless BARMAN_RS_LINK_SERVER=1.
for c in barman barman-wal-archive barman-wal-restore; do
    other=$(command -v "$c" 2>/dev/null || true)
    if [ -n "$other" ] && [ "$(readlink -f "$other")" != "$(readlink -f "$PREFIX/bin/barman-rs")" ] &&
        [ "${BARMAN_RS_LINK_SERVER:-0}" != 1 ]; then
        echo "install.sh: not linking $c: $other exists (BARMAN_RS_LINK_SERVER=1 links it anyway)"
        continue
    fi
    ln -sfn barman-rs "$PREFIX/bin/$c"
    echo "installed $c in $PREFIX/bin"
done
"$PREFIX/bin/barman-cloud-wal-archive" --version
"$PREFIX/bin/barman-rs" --version
