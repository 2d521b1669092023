#!/usr/bin/env bash
# Builds barman-rs in release mode and installs the barman server command, its clients
# barman-wal-archive and barman-wal-restore, and the nine
# barman-cloud-* commands:
# one binary, barman-rs, and one link per command name, in $PREFIX/bin.
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
ln -sfn barman-rs "$PREFIX/bin/barman"
for c in barman-wal-archive barman-wal-restore; do
    ln -sfn barman-rs "$PREFIX/bin/$c"
done
for c in "${COMMANDS[@]}"; do
    ln -sfn barman-rs "$PREFIX/bin/barman-cloud-$c"
done
echo "installed barman-rs, barman, barman-wal-archive, barman-wal-restore and barman-cloud-{$(IFS=,; echo "${COMMANDS[*]}")} in $PREFIX/bin"
"$PREFIX/bin/barman-cloud-wal-archive" --version
"$PREFIX/bin/barman-rs" --version
