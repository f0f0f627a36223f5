#!/usr/bin/env bash
# Installs the system packages the build needs on a fresh Debian machine: libclang (bindgen for
# RocksDB's C++ bindings). Idempotent and quiet when everything is already there.
set -euo pipefail
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang[-.]'; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing libclang-dev (needed to build RocksDB bindings)…" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi
