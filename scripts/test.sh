#!/usr/bin/env bash
# The README's test command: set up, build everything, run every ctest suite (validation layers on).
# GPU-labelled tests skip cleanly on machines without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
(cd "${TS_BUILD_DIR:-build}" && ctest --output-on-failure --timeout 900 -j2)
# The trainer and UI threads under ThreadSanitizer (a separate build directory).
bash scripts/tsan.sh
# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan).
bash scripts/asan.sh
