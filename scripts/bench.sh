#!/usr/bin/env bash
# The benchmark of README § Benchmarks: builds the release binaries, then runs `coop-bench`
# (coopledger over JSON-RPC, PostgreSQL and anvil on one pre-signed workload, back to back).
# Arguments go to coop-bench (`--help` lists them); needs what scripts/setup.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p coopledger-cli -p coopledger-bench
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="$target/x86_64-unknown-linux-gnu/release"
[ -x "$bin/coop-bench" ] || bin="$target/release"
# Let the compiler's processes end before measuring (coop-bench refuses while one runs).
sleep 2
exec "$bin/coop-bench" "$@"
