#!/usr/bin/env bash
# Runs every fuzz target: `fuzz/run.sh SECONDS` (a smoke, as CI does) or `fuzz/run.sh runs N`
# (N executions each). Works on the stable toolchain (RUSTC_BOOTSTRAP for libFuzzer's flags, no
# sanitizer); the seeds in fuzz/seeds/<target> start each corpus; crashes land in
# fuzz/artifacts/<target> and fail the run.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
if [ "${1:-}" = runs ]; then limit="-runs=${2:-10000000}"; else limit="-max_total_time=${1:-5}"; fi
cargo fuzz build -s none -O >/dev/null
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  start=$(date +%s)
  out=$(cargo fuzz run "$t" -s none -O "corpus/$t" "seeds/$t" -- $limit 2>&1) || {
    echo "$out" | tail -20; echo "fuzz target $t FAILED" >&2; exit 1; }
  echo "$t: $(echo "$out" | grep -E '^Done' | tail -1) ($(( $(date +%s) - start )) s)"
done
