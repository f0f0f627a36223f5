#!/usr/bin/env bash
# The crash loop's long run: the real node under concurrent signers, SIGKILL at random moments,
# restart, N rounds (default 1000); every acknowledged entry and every checkpoint returned is
# checked after each restart, and the whole log is audited at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p coopledger-cli
COOP_CRASH_ROUNDS="${1:-1000}" cargo test -p coopledger-e2e --test crash_loop -- --nocapture
