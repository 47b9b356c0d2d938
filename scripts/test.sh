#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${GATEHOUSE_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 600
