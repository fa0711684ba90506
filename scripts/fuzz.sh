#!/usr/bin/env bash
# libFuzzer targets for the readers of untrusted files (tests/fuzz): the IDX reader, the run store reader,
# the landscape's HDF5 readers and the --input readers (.npy, images, .pt), built with clang
# (-fsanitize=fuzzer,address,undefined) into build-fuzz/ from the readers' own sources, then run from the seed
# corpora in tests/fuzz/corpus. Any crash, leak, hang
# (-timeout) or oversized allocation fails the run: one allocation over 2 GiB (-malloc_limit_mb; the readers'
# budget is 1 GiB a tensor) or a process over 6 GiB (-rss_limit_mb; an image at that budget goes through
# several tensors of its size when resized and normalised). TS_FUZZ_RUNS executions per target
# (default 1,000,000; TS_FUZZ_TARGETS picks targets; TS_FUZZ_SECONDS, when set, stops each after that long).
# Inputs that fail are written to build-fuzz/. The findings so far: docs/ARCHITECTURE.md, "Fuzzing".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
OUT=${TS_FUZZ_BUILD_DIR:-build-fuzz}
RUNS=${TS_FUZZ_RUNS:-1000000}
mkdir -p "$OUT"
CXX=${TS_FUZZ_CXX:-clang++}
FLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. -I/usr/include/hdf5/serial)
HDF5=(-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)
CORE=(engine/core/error.cpp engine/core/log.cpp)
build_all() {
    build() { # name sources... -- libs...
        local name=$1; shift
        "$CXX" "${FLAGS[@]}" "$@" -o "$OUT/$name"
    }
    build fuzz_idx tests/fuzz/fuzz_idx.cpp engine/capture/idx.cpp "${CORE[@]}" -lz
    # The HDF5 readers first have libhdf5 read a file in a checking process (engine/core/h5_check.hpp): built here
    # as CMake builds it (AddressSanitizer only, no fuzzer), found through TS_H5CHECK.
    "$CXX" -std=c++20 -O2 -fsanitize=address -fno-omit-frame-pointer -I/usr/include/hdf5/serial engine/runs/h5check_main.cpp \
        "${HDF5[@]}" -o "$OUT/tensorscape-h5check"
    build fuzz_run_store tests/fuzz/fuzz_run_store.cpp engine/runs/run_reader.cpp engine/runs/run_writer.cpp "${CORE[@]}" engine/core/h5_check.cpp "${HDF5[@]}"
    build fuzz_h5_landscape tests/fuzz/fuzz_h5_landscape.cpp engine/landscape/h5_io.cpp "${CORE[@]}" engine/core/h5_check.cpp "${HDF5[@]}"
    # The --input readers link LibTorch (g++-built, uninstrumented; its unpickler reads the .pt files) and stb.
    # C++17 for them: clang 14 with GCC 12's library cannot parse LibTorch 1.13's headers as C++20.
    TORCH=(-std=c++17 -I/usr/include/stb -isystem /usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1
           -ltorch -ltorch_cpu -lc10 -lstb)
    build fuzz_inputs tests/fuzz/fuzz_inputs.cpp engine/capture/inputs.cpp engine/capture/pt_archive.cpp "${CORE[@]}" "${TORCH[@]}"
}
# TS_FUZZ_SKIP_BUILD=1 runs the binaries already in build-fuzz/ (a second run beside one that built them).
[[ "${TS_FUZZ_SKIP_BUILD:-0}" == 1 ]] || build_all
export ASAN_OPTIONS="detect_leaks=1 halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp print_suppressions=0"
export HDF5_USE_FILE_LOCKING=FALSE
export TS_H5CHECK="$PWD/$OUT/tensorscape-h5check" TS_H5CHECK_TIMEOUT_S=${TS_H5CHECK_TIMEOUT_S:-4} # below -timeout
for t in ${TS_FUZZ_TARGETS:-fuzz_idx fuzz_run_store fuzz_h5_landscape fuzz_inputs}; do
    work="$OUT/corpus_$t"
    rm -rf "$work" && mkdir -p "$work"
    cp tests/fuzz/corpus/"${t#fuzz_}"/* "$work"/
    echo "tensorscape fuzz: $t, $RUNS executions"
    "$OUT/$t" -runs="$RUNS" ${TS_FUZZ_SECONDS:+-max_total_time=$TS_FUZZ_SECONDS} -seed="${TS_FUZZ_SEED:-1}" -timeout=10 -malloc_limit_mb=2048 -rss_limit_mb=6144 -max_len=262144 -print_final_stats=1 -artifact_prefix="$OUT/" "$work" \
        > "$OUT/$t.log" 2>&1 || { tail -40 "$OUT/$t.log"; echo "tensorscape fuzz: $t FAILED (see $OUT/$t.log)"; exit 1; }
    grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb" "$OUT/$t.log" || true
done
echo "tensorscape fuzz: no crash, leak or hang"
