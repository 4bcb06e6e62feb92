# Shared helpers for the scripts in this folder; sourced, not run.

# step "title" command...: runs the command, printing the title and how long it took.
step() {
  local title=$1 t0 t1 rc
  shift
  echo "==> $title"
  t0=$(date +%s)
  # Run in a subshell with errexit on: a failing command inside a function must stop
  # the step (errexit is ignored in functions called from `cmd || ...`).
  local had_e=0
  [[ $- == *e* ]] && had_e=1
  set +e
  (set -e; "$@")
  rc=$?
  [ "$had_e" = 1 ] && set -e
  t1=$(date +%s)
  if [ "$rc" -ne 0 ]; then
    echo "<== $title: FAILED after $((t1 - t0)) s" >&2
    return "$rc"
  fi
  echo "<== $title: $((t1 - t0)) s"
}

# Puts the project's toolchain (from setup.sh) and its npm tools on PATH.
use_toolchain() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ -f "$root/target/toolchain.env" ]; then
    # shellcheck source=/dev/null
    . "$root/target/toolchain.env"
  fi
  export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"
}

# The release profile is tuned for the size of the wasm package (opt-level z, fat LTO,
# one codegen unit); the long native runs (fuzz.sh, sim.sh) want speed of running and
# of building, in a target directory of their own ($1) so that the package's build is
# not disturbed.
use_speed_profile() {
  export CARGO_TARGET_DIR=$1
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=3
  export CARGO_PROFILE_RELEASE_LTO=false
  export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
  export CARGO_PROFILE_RELEASE_PANIC=unwind
}
