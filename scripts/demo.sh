#!/usr/bin/env bash
# The README's main command: set up, build, and run the demo on built-in defaults.
# In a window when a display exists, else PNG frames and a summary under out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target tensorscape
exec "${TS_BUILD_DIR:-build}"/app/tensorscape demo "$@"
