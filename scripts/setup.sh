#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine: libclang (bindgen for
# RocksDB's C++ bindings) and anvil (the local EVM node of the anchoring tests, from npm).
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.]'; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing libclang-dev (needed to build RocksDB bindings)…" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi
# anvil (a local EVM node, npm package @foundry-rs/anvil) for the anchoring tests, into tools/.
if [ ! -x tools/node_modules/.bin/anvil ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "installing anvil (@foundry-rs/anvil) into tools/…" >&2
    mkdir -p tools
    npm install --prefix tools --no-audit --no-fund --silent @foundry-rs/anvil@1.7.1 >/dev/null 2>&1 || {
      echo "npm install @foundry-rs/anvil failed" >&2; exit 1; }
  else
    echo "npm is needed to install anvil for the anchoring tests" >&2; exit 1
  fi
fi
