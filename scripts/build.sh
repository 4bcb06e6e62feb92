#!/usr/bin/env bash
# Builds the npm package into pkg/ (release profile, wasm-opt -Oz) and prints the
# gzipped size of what a browser downloads. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
use_toolchain

build() {
  wasm-pack --quiet build --release --target web --out-dir pkg
  node scripts/package.mjs
}
step "Build the package (pkg/)" build
