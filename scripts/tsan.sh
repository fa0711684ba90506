#!/usr/bin/env bash
# ThreadSanitizer run (part of scripts/test.sh): the program built with -fsanitize=thread trains a CNN
# headless and in a window under a private Xvfb (trainer thread + UI thread + reducer pool; the weights view
# open, so parameters are published and rasterised on the views' worker), records a run
# while a window follows it with the run views open (follower thread + UI thread + neuron loader + the views'
# loader on one reader), plus the unit tests
# of the thread pool and the timeline. Any report fails the run. LibTorch, OpenBLAS, libgomp and
# lavapipe are not instrumented; scripts/tsan.supp and ignore_noninstrumented_modules keep their internal
# thread pools out of the reports (see the comments there).
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 -g1: a LibTorch translation unit compiles in half the time of -O2 -g (40 s against 82 s under ASan here),
# and sanitizer reports keep file and line.
BUILD_DIR=${TS_TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DTS_SANITIZE=thread -DTS_ENABLE_CUDA=OFF \
    -DTS_BUILD_BENCH=OFF -DTS_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target tensorscape app_unit_tests core_tests
export TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1"
OUT=$(mktemp -d)
trap 'kill "${XVFB_PID:-}" 2>/dev/null || true; rm -rf "$OUT"' EXIT
"$BUILD_DIR/tests/core/core_tests" --gtest_brief=1
"$BUILD_DIR/tests/app/app_unit_tests" --gtest_brief=1
"$BUILD_DIR/app/tensorscape" train --model builtin:cnn --data fashion-mnist --limit 2000 --steps 60 \
    --capture-every 2 --headless --frames 30 --width 320 --height 240 --out "$OUT/headless"
# The Explain view: the trainer thread computes heatmaps at its snapshots while frames are drawn.
"$BUILD_DIR/app/tensorscape" train --model builtin:cnn --data fashion-mnist --limit 1000 --steps 40 \
    --capture-every 2 --headless --frames 8 --width 320 --height 240 --view explain --out "$OUT/explain"
# The live Loss landscape: the trainer thread prepares each surface at a snapshot and the landscape thread
# computes it (the MLP's batched path, detached with copies of the weights) while training goes on and frames
# are drawn; the last one at the final weights on the UI thread. (A CNN's layer program uses the same threads and
# hand-over; under TSan it takes 40 s instead of 3 s here, so the MLP stands for both.)
"$BUILD_DIR/app/tensorscape" train --model builtin:mlp --data spirals --steps 60 \
    --capture-every 2 --headless --frames 6 --width 320 --height 240 --view landscape --out "$OUT/landscape"
DISPLAY_NUM=":$((200 + RANDOM % 50))"
Xvfb "$DISPLAY_NUM" -screen 0 800x600x24 -nolisten tcp >/dev/null 2>&1 &
XVFB_PID=$!
sleep 1
DISPLAY="$DISPLAY_NUM" "$BUILD_DIR/app/tensorscape" train --model builtin:cnn --data fashion-mnist --limit 2000 \
    --steps 400 --capture-every 2 --width 640 --height 480 --frames 150 --view weights
"$BUILD_DIR/app/tensorscape" train --model builtin:cnn --data fashion-mnist --limit 2000 --steps 300 \
    --capture-every 2 --headless --frames 2 --width 320 --height 240 --out "$OUT/recording" --run "$OUT/run" &
RECORDER_PID=$!
for _ in $(seq 300); do [[ -e "$OUT/run/run.json" ]] && break; sleep 0.2; done
DISPLAY="$DISPLAY_NUM" "$BUILD_DIR/app/tensorscape" open "$OUT/run" --width 640 --height 480 --frames 150 \
    --select conv2:40 --view dynamics
wait "$RECORDER_PID"
"$BUILD_DIR/app/tensorscape" open "$OUT/run" --headless --frames 4 --width 320 --height 240 --out "$OUT/opened"
echo "tensorscape tsan: no data races reported"
