#!/usr/bin/env bash
# Where the module's bytes go: the release module of the last build, its names kept
# (wasm-bindgen, then wasm-opt -Oz without stripping), measured by twiggy and summed
# by area into target/size-breakdown.txt. Skipped, with a note, without twiggy.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
use_toolchain
OUT=target/size-breakdown.txt
if ! command -v twiggy >/dev/null; then
  echo "module breakdown: twiggy is not installed (scripts/setup.sh installs it)" | tee "$OUT"
  exit 0
fi
WASM=target/wasm32-unknown-unknown/release/b24_openlines.wasm
DIR=target/size-named
rm -rf "$DIR" && mkdir -p "$DIR"
wasm-bindgen --target web --out-dir "$DIR" "$WASM"
wasm-opt -g -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals "$DIR/b24_openlines_bg.wasm" -o "$DIR/named.wasm"
twiggy top -n 100000 -f csv "$DIR/named.wasm" > "$DIR/top.csv"
node scripts/size-breakdown.mjs "$DIR/top.csv" > "$OUT"
cat "$OUT"
