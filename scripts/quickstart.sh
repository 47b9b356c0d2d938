#!/usr/bin/env bash
# Gatehouse in one command, on a fresh Debian 12:
#   1. scripts/setup.sh: installs whatever build/test packages are missing, configures and builds
#      into ./build (or $GATEHOUSE_BUILD_DIR);
#   2. imports the demo world (scripts/demo/world.jsonl) into ./var/data unless it is there;
#   3. prints three commands to try from another terminal;
#   4. runs the daemon in the foreground on ./var/gatehouse.sock with policies/respondio
#      (Ctrl-C stops it; run this script again to restart with the same data).
# Start over with: rm -rf var
# Arguments are passed to scripts/setup.sh (cmake), e.g. a faster first run without the test and
# benchmark suites: scripts/quickstart.sh -DGATEHOUSE_BUILD_TESTS=OFF -DGATEHOUSE_BUILD_BENCH=OFF
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${GATEHOUSE_BUILD_DIR:-build}"
export GATEHOUSE_BUILD_DIR="$BUILD_DIR"
scripts/setup.sh "$@"

GH="$BUILD_DIR/daemon/cli/gatehouse"
if [ ! -x "$GH" ]; then
  echo "quickstart: $GH was not built" >&2
  exit 1
fi

mkdir -p var
if [ ! -f var/data/data.mdb ]; then
  echo "quickstart: importing the demo world into ./var/data"
  "$GH" import scripts/demo/world.jsonl --data ./var/data
else
  echo "quickstart: ./var/data already holds a store; keeping it (rm -rf var to start over)"
fi

SOCK=./var/gatehouse.sock
cat <<EOT

Gatehouse is starting on $SOCK (policy: policies/respondio, data: ./var/data).
Try, from another terminal in $(pwd):

  # why may (or may not) Frank export data in Acme's Sales workspace? (manager with no_data_export)
  $GH --socket $SOCK check frank data.export --workspace acme-sales --explain

  # the raw protocol: one JSON object per line
  echo '{"op":"check","user":"alice","action":"org.billing.view","org":"acme"}' | socat - UNIX-CONNECT:$SOCK

  # everything Grace (manager with no_ws_settings, no_contact_delete) may do in Acme Support
  $GH --socket $SOCK list-actions grace --workspace acme-support

More: $GH --help, docs/operations.md, scripts/demo/README.md (who is who in the demo world).
Ctrl-C stops the daemon.

EOT
exec "$GH" serve --socket "$SOCK" --data ./var/data --policy ./policies/respondio
