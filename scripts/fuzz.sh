#!/usr/bin/env bash
# The long run of the core's property tests: the same properties as `cargo test`
# (tests/props.rs and the portal's tests/roundtrip.rs), with many more generated
# inputs each, in an optimized build. Not part of scripts/test.sh.
#
#   bash scripts/fuzz.sh            # 100,000 cases per property
#   FUZZ_CASES=20000 bash scripts/fuzz.sh
#
# Each test binary is stopped after FUZZ_MAX_SECONDS (default 900). Prints the number
# of properties, the inputs run in total and the time taken. A failure is shrunk to a
# minimal input, printed, and saved under proptest-regressions/ next to the test, so
# that the normal test run repeats it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_toolchain

CASES=${FUZZ_CASES:-100000}
MAX_SECONDS=${FUZZ_MAX_SECONDS:-900}
THREADS=${FUZZ_THREADS:-2}

# The release profile is tuned for the size of the wasm package (opt-level z, fat LTO,
# one codegen unit); this build wants speed of running and of building, in its own
# target directory so that it does not disturb the package's build.
export CARGO_TARGET_DIR=target/fuzz
export CARGO_PROFILE_RELEASE_OPT_LEVEL=3
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_PANIC=unwind

TARGETS=("b24-openlines props" "b24-portal roundtrip")

step "build the property tests (release)" \
  cargo test --quiet --release -p b24-openlines --test props -p b24-portal --test roundtrip --no-run

total_props=0
t0=$(date +%s)
for t in "${TARGETS[@]}"; do
  read -r package test <<<"$t"
  log=$(mktemp)
  echo "==> $package/$test: $CASES cases per property"
  t_start=$(date +%s)
  set +e
  PROPTEST_CASES=$CASES timeout "$MAX_SECONDS" \
    cargo test --quiet --release -p "$package" --test "$test" -- --test-threads="$THREADS" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 124 ] && echo "<== $package/$test: stopped after $MAX_SECONDS s" >&2
    echo "<== $package/$test: FAILED" >&2
    rm -f "$log"
    exit "$rc"
  fi
  passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
  rm -f "$log"
  echo "<== $package/$test: $passed properties x $CASES cases in $(($(date +%s) - t_start)) s"
  total_props=$((total_props + passed))
done
elapsed=$(($(date +%s) - t0))
echo "fuzz: $total_props properties, $((total_props * CASES)) inputs, $elapsed s (after the build)"
