#!/usr/bin/env bash
# Builds the npm package into pkg/ (release profile, wasm-opt -Oz) and prints the
# gzipped size of what a browser downloads, with a breakdown of the module by area in
# target/size-breakdown.txt. Run scripts/setup.sh first.
#
# When the toolchain has the standard library's source (rust-src), the module's std
# is rebuilt with it for size: panics abort at once, without their messages and
# source locations (the module never panics: clippy denies it, and a panic in wasm
# traps either way). That needs unstable flags, enabled with RUSTC_BOOTSTRAP for this
# build only; without rust-src the build is the plain release build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
use_toolchain

CARGO_EXTRA=()
if [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  export RUSTC_BOOTSTRAP=1
  export RUSTFLAGS="-Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort"
  CARGO_EXTRA=(-Zbuild-std=std,panic_abort)
else
  echo "  (no rust-src for this toolchain: plain release build, a few KB larger)"
fi

build() {
  wasm-pack --quiet build --release --target web --out-dir pkg . "${CARGO_EXTRA[@]}"
  node scripts/package.mjs
}
step "Build the package (pkg/)" build
step "Size breakdown (target/size-breakdown.txt)" bash scripts/size-breakdown.sh
