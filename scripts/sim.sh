#!/usr/bin/env bash
# The long run of the deterministic simulation (tests/sim.rs): the client's state
# machine against the local portal's request logic in-process, on a virtual clock,
# over a range of seeds. The normal test run checks 300 seeds; this checks many more,
# in chunks run in parallel, and stops at the first failing seed, printing it with
# its trace. Not part of scripts/test.sh.
#
#   bash scripts/sim.sh                   # seeds 1 .. 1,000,000
#   bash scripts/sim.sh 5000000 2000000   # seeds 5,000,000 .. 6,999,999
#   SIM_CHUNK=50000 SIM_THREADS=2 bash scripts/sim.sh
#
# Repeat one seed with: SIM_FIRST=<seed> SIM_SEEDS=1 cargo test --test sim -- --nocapture
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
use_toolchain

FIRST=${1:-1}
COUNT=${2:-1000000}
CHUNK=${SIM_CHUNK:-20000}
THREADS=${SIM_THREADS:-2}

use_speed_profile target/sim
cargo test --release --test sim --no-run --quiet
bin=$(ls -t target/sim/release/deps/sim-* | grep -v '\.d$' | head -n1)

started=$(date +%s)
failed=0
run_chunk() {
  SIM_FIRST=$1 SIM_SEEDS=$2 "$bin" --nocapture --test-threads=1 >"$3" 2>&1
}
seed=$FIRST
end=$((FIRST + COUNT))
while [ "$seed" -lt "$end" ] && [ "$failed" -eq 0 ]; do
  pids=()
  logs=()
  for _ in $(seq 1 "$THREADS"); do
    [ "$seed" -ge "$end" ] && break
    n=$(( end - seed < CHUNK ? end - seed : CHUNK ))
    log=$(mktemp)
    run_chunk "$seed" "$n" "$log" &
    pids+=("$!")
    logs+=("$log")
    seed=$((seed + n))
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      failed=1
      grep -A80 -m1 '^seed [0-9]*:' "${logs[$i]}" || cat "${logs[$i]}"
    else
      grep -h 'schedules from seed' "${logs[$i]}" || true
    fi
    rm -f "${logs[$i]}"
  done
done
echo "seeds $FIRST..$((seed - 1)) in $(( $(date +%s) - started )) s: $([ "$failed" -eq 0 ] && echo 'no invariant violated' || echo 'FAILED')"
exit "$failed"
