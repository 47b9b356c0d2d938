#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages (only what is missing),
# then configures and builds Gatehouse into ./build (or $GATEHOUSE_BUILD_DIR).
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build pkg-config git
      libboost1.81-dev libyaml-cpp-dev liblmdb-dev liblmdb++-dev lmdb-utils
      nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev socat)
[ -n "${GATEHOUSE_EXTRA_PKGS:-}" ] && PKGS+=(${GATEHOUSE_EXTRA_PKGS})

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install packages" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_DIR="${GATEHOUSE_BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja "$@"
cmake --build "$BUILD_DIR" -j "$(nproc)"
