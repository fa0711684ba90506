#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer over the whole ctest suite (part of scripts/test.sh): every
# module, LibTorch ones included, built with -fsanitize=address,undefined in build-asan/, then ctest there.
# LibTorch, OpenBLAS, Mesa's lavapipe (LLVM) and Python are not instrumented; scripts/asan.supp lists the
# leaks LeakSanitizer sees inside them at exit, with the reasons. Any other report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 -g1: a LibTorch translation unit compiles in half the time of -O2 -g (40 s against 82 s under ASan here),
# and sanitizer reports keep file and line.
BUILD_DIR=${TS_ASAN_BUILD_DIR:-build-asan}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DTS_SANITIZE=address -DTS_ENABLE_CUDA=OFF \
    -DTS_BUILD_BENCH=OFF -DTS_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
# detect_container_overflow=0: LibTorch's std::vector annotations do not match ours across the library edge.
export ASAN_OPTIONS="detect_leaks=1 detect_container_overflow=0 halt_on_error=1 abort_on_error=0 exitcode=67"
export LSAN_OPTIONS="suppressions=$PWD/scripts/asan.supp print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 exitcode=68"
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1800 -j2)
echo "tensorscape asan: no reports"
