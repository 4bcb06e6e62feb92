#!/usr/bin/env bash
# The demo: builds the package and the local portal, then sends the README's example
# message from Node through the built package and prints the id and the ledger entry,
# then serves the demo placement app and prints the address of the portal page that
# shows it (until Ctrl+C; pass --once to stop after the message).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/lib.sh
use_toolchain
step "build the package" bash scripts/build.sh
step "build the local portal" cargo build --quiet -p b24-portal
echo
B24_PORTAL_BIN=$PWD/target/debug/b24-portal node www/node-demo.mjs "$@"
