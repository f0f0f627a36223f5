#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine, and nothing that is
# already there:
#   - libclang (Debian's libclang-dev): bindgen loads it at build time for RocksDB's bindings;
#   - npm (Debian's npm), to install the next item when the machine has none;
#   - anvil (npm package @foundry-rs/anvil, pinned), the local EVM node of the anchoring tests,
#     into tools/;
#   - cargo-fuzz (crates.io), for the fuzz smoke CI runs (`fuzz/run.sh`).
# Each check looks for exactly what its user loads, not for something with a similar name
# (a machine may ship libclang-cpp, which bindgen cannot use). `tests/tests/setup_script.rs`
# runs this script against stub package managers and fake library folders.
#
# Test hooks (environment): COOP_SETUP_LIBDIRS — a space-separated list of directory globs to
# search instead of clang-sys's own list.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# True when a shared library that clang-sys (bindgen's loader, `runtime` feature) accepts exists
# where it searches: LIBCLANG_PATH, `llvm-config --libdir`, then its fixed Linux directory list.
# The names it loads are libclang.so, libclang-*.so, libclang.so.* and libclang-*.so.*, minus
# any name containing "-cpp." (libclang-cpp is the C++ API, not libclang).
have_libclang() {
  local dirs=()
  if [ -n "${COOP_SETUP_LIBDIRS:-}" ]; then
    read -r -a dirs <<<"$COOP_SETUP_LIBDIRS"
  else
    [ -n "${LIBCLANG_PATH:-}" ] && dirs+=("$LIBCLANG_PATH")
    if command -v llvm-config >/dev/null 2>&1; then
      dirs+=("$(llvm-config --libdir 2>/dev/null || true)")
    fi
    dirs+=("/usr/local/llvm*/lib*" "/usr/local/lib*/*/*" "/usr/local/lib*/*" "/usr/local/lib*"
      "/usr/lib*/*/*" "/usr/lib*/*" "/usr/lib*")
  fi
  local pattern dir f name
  for pattern in "${dirs[@]}"; do
    [ -n "$pattern" ] || continue
    for dir in $pattern; do
      [ -d "$dir" ] || continue
      for f in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
        [ -e "$f" ] || continue
        name=$(basename "$f")
        case "$name" in *-cpp.*) continue ;; esac
        return 0
      done
    done
  done
  return 1
}

if ! have_libclang; then
  echo "installing libclang-dev (bindgen needs libclang to build RocksDB's bindings)…" >&2
  apt_install libclang-dev
  if ! have_libclang; then
    echo "libclang-dev was installed but no libclang.so is where bindgen looks" >&2
    exit 1
  fi
fi

if [ ! -x tools/node_modules/.bin/anvil ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "installing npm (needed to install anvil)…" >&2
    apt_install npm
  fi
  echo "installing anvil (@foundry-rs/anvil) into tools/…" >&2
  mkdir -p tools
  npm install --prefix tools --no-audit --no-fund --silent @foundry-rs/anvil@1.7.1 >/dev/null 2>&1 || {
    echo "npm install @foundry-rs/anvil failed" >&2
    exit 1
  }
  if [ ! -x tools/node_modules/.bin/anvil ]; then
    echo "npm installed @foundry-rs/anvil but tools/node_modules/.bin/anvil is missing" >&2
    exit 1
  fi
fi

# cargo-fuzz, for `fuzz/run.sh` (CI's fuzz smoke); only where cargo is on the PATH.
if command -v cargo >/dev/null 2>&1 && ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz…" >&2
  cargo install --quiet --locked cargo-fuzz@0.13.2 || {
    echo "cargo install cargo-fuzz failed" >&2
    exit 1
  }
fi

