#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine, and nothing that is
# already there:
#   - libclang (Debian's libclang-dev): bindgen loads it at build time for RocksDB's bindings;
#   - npm (Debian's npm), to install the next item when the machine has none;
#   - anvil (npm package @foundry-rs/anvil, pinned), the local EVM node of the anchoring tests,
#     into tools/;
#   - cargo-fuzz (crates.io), for the fuzz smoke CI runs (`fuzz/run.sh`);
#   - Node.js ≥ 18 with npm (Debian's nodejs, npm) for the portal's build and browser driver;
#   - Chromium (Debian's chromium), the browser of the portal's end-to-end test;
#   - PostgreSQL (Debian's postgresql: 15 on bookworm), the peer of the benchmark
#     (`scripts/bench.sh`, `bench/`) and its smoke test;
#   - the Rust target wasm32-wasip1 (rustup), for the portal's verifier;
# and then builds the portal (where the checkout has one and cargo is on the PATH): the
# verifier as WebAssembly (`cargo build --profile wasm -p coopledger-verifier --target
# wasm32-wasip1`, copied to portal/public/verifier.wasm), `npm ci` when the lockfile changed,
# `npm run build` into portal/dist, which the coop binary embeds when it is next built.
# Each check looks for exactly what its user loads, not for something with a similar name
# (a machine may ship libclang-cpp, which bindgen cannot use). `tests/tests/setup_script.rs`
# runs this script against stub package managers and fake library folders.
#
# Test hooks (environment): COOP_SETUP_LIBDIRS — a space-separated list of directory globs to
# search instead of clang-sys's own list; COOP_SETUP_PGROOT — where Debian puts PostgreSQL's
# versions (default /usr/lib/postgresql).
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

# Node.js ≥ 18 (Vite 6 needs it), with npm.
node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' >/dev/null 2>&1
}
if ! node_ok; then
  echo "installing Node.js and npm (the portal's build and browser tests need them)…" >&2
  apt_install nodejs npm
  if ! node_ok; then
    echo "nodejs was installed but no node ≥ 18 is on the PATH" >&2
    exit 1
  fi
fi

# Chromium, the headless browser of the portal's end-to-end test (tests/tests/portal.rs).
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (the portal's browser tests drive it headless)…" >&2
  apt_install chromium
  if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium was installed but is not on the PATH" >&2
    exit 1
  fi
fi

# iproute2's `ip`, with which the replication test makes network namespaces of its own to cut
# a replica off (tests/tests/cluster_partition.rs).
if ! command -v ip >/dev/null 2>&1; then
  echo "installing iproute2 (the partition test makes network namespaces)…" >&2
  apt_install iproute2
  if ! command -v ip >/dev/null 2>&1; then
    echo "iproute2 was installed but ip is not on the PATH" >&2
    exit 1
  fi
fi

# PostgreSQL's server programs, which the benchmark starts on a cluster of its own (Debian keeps
# them out of the PATH, under /usr/lib/postgresql/VERSION/bin).
pgroot="${COOP_SETUP_PGROOT:-/usr/lib/postgresql}"
have_postgres() {
  local p
  for p in "$pgroot"/*/bin/postgres; do
    [ -x "$p" ] && return 0
  done
  return 1
}
if ! have_postgres; then
  echo "installing postgresql (the benchmark's peer)…" >&2
  apt_install postgresql
  if ! have_postgres; then
    echo "postgresql was installed but there is no $pgroot/*/bin/postgres" >&2
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

# The portal: its verifier (the ledger's Rust checks as WebAssembly), its npm packages (when the
# lockfile is newer than what is installed), and its build into portal/dist.
if [ -f portal/package.json ] && command -v cargo >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1 &&
    ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    echo "adding the Rust target wasm32-wasip1 (the portal's verifier)…" >&2
    rustup target add wasm32-wasip1 >/dev/null
  fi
  echo "building the portal's verifier (WebAssembly)…" >&2
  cargo build --quiet --profile wasm -p coopledger-verifier --target wasm32-wasip1 || {
    echo "building the verifier for wasm32-wasip1 failed" >&2
    exit 1
  }
  mkdir -p portal/public
  cat target/wasm32-wasip1/wasm/coop-verify.wasm >portal/public/verifier.wasm
  if [ ! -f portal/node_modules/.package-lock.json ] ||
    [ portal/package-lock.json -nt portal/node_modules/.package-lock.json ]; then
    echo "installing the portal's npm packages (npm ci)…" >&2
    (cd portal && npm ci --no-audit --no-fund --silent) || {
      echo "npm ci in portal/ failed" >&2
      exit 1
    }
  fi
  echo "building the portal (npm run build)…" >&2
  (cd portal && npm run --silent build >/dev/null) || {
    echo "the portal's build failed (cd portal && npm run build shows why)" >&2
    exit 1
  }
fi
