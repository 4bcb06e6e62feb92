#!/usr/bin/env bash
# The long run of the core's property tests: the same properties as `cargo test`
# (tests/props.rs and the portal's tests/roundtrip.rs), with many more generated
# inputs each, in an optimized build. Not part of scripts/test.sh.
#
#   bash scripts/fuzz.sh            # 100,000 cases per property
#   FUZZ_CASES=20000 bash scripts/fuzz.sh
#
# The run is stopped after FUZZ_MAX_SECONDS (default 900). Prints the number
# of properties, the inputs run in total and the time taken. A failure is shrunk to a
# minimal input, printed, and saved in a .proptest-regressions file next to the test, so
# that the normal test run repeats it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_toolchain

CASES=${FUZZ_CASES:-100000}
MAX_SECONDS=${FUZZ_MAX_SECONDS:-900}
THREADS=${FUZZ_THREADS:-2}

use_speed_profile target/fuzz

# Both test targets in one cargo command: built together, the core and the portal
# share one set of dependency features, so the run reuses the build.
TARGETS=(-p b24-openlines -p b24-portal --test props --test roundtrip)

step "build the property tests (optimized)" cargo test --quiet --release "${TARGETS[@]}" --no-run

echo "==> property tests: $CASES cases per property"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
t0=$(date +%s)
set +e
PROPTEST_CASES=$CASES timeout "$MAX_SECONDS" \
  cargo test --quiet --release "${TARGETS[@]}" -- --test-threads="$THREADS" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(($(date +%s) - t0))
if [ "$rc" -ne 0 ]; then
  [ "$rc" -eq 124 ] && echo "<== stopped after $MAX_SECONDS s" >&2
  echo "<== property tests: FAILED after $elapsed s" >&2
  exit "$rc"
fi
# Ignored properties (known defects) are not counted.
props=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
echo "fuzz: $props properties x $CASES cases = $((props * CASES)) inputs in $elapsed s (after the build)"
