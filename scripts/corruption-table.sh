#!/usr/bin/env bash
# The corruption table's long run: one random bit flipped in each kind of RocksDB file of copies
# of a stopped and a killed data folder, N times each (default 50); prints the table of outcomes
# (refused / read error / no effect). The test fails on any silent loss, changed entry or fork.
set -euo pipefail
cd "$(dirname "$0")/.."
COOP_CORRUPTION_TRIALS="${1:-50}" cargo test -p coopledger-ledger --test rollback -- \
  --nocapture a_flipped_byte_in_any_file
