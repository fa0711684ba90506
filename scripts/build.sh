#!/usr/bin/env bash
# Installs what is missing, configures (Release, Ninja) and builds. Extra arguments go to cmake --build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${TS_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${TS_BUILD_TYPE:-Release} ${TS_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" "$@"
