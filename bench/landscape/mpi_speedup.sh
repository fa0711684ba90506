#!/usr/bin/env bash
# Loss landscape over MPI ranks against one process, same run, same grid (per-point CNN evaluation, where
# the work is in LibTorch forward passes): prints the wall time of each and the speed-up, and checks that the
# surface files agree bit for bit. Usage: bench/landscape/mpi_speedup.sh [BUILD_DIR] [RANKS...] (default: build 2)
# Numbers: docs/PERFORMANCE.md, "Loss landscape over MPI ranks".
set -euo pipefail
BUILD=${1:-build}
shift || true
RANKS=("${@:-2}")
BIN="$BUILD/app/tensorscape"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
FLAGS=(landscape --model builtin:cnn --data fashion-mnist --limit 1000 --grid 11 --headless --quiet)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
t0=$EPOCHREALTIME
"$BIN" "${FLAGS[@]}" --out "$OUT/one.h5" >/dev/null
one=$(awk "BEGIN { print $EPOCHREALTIME - $t0 }")
printf "1 process : %6.1f s\n" "$one"
for n in "${RANKS[@]}"; do
  t0=$EPOCHREALTIME
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$n" "$BIN" "${FLAGS[@]}" --out "$OUT/n$n.h5" >/dev/null
  t=$(awk "BEGIN { print $EPOCHREALTIME - $t0 }")
  same=$(/usr/bin/python3 -c "import h5py; a, b = h5py.File('$OUT/one.h5', 'r'), h5py.File('$OUT/n$n.h5', 'r'); print('bit-identical' if a['train_loss'][()].tobytes() == b['train_loss'][()].tobytes() else 'DIFFERENT')")
  printf "%d ranks   : %6.1f s  speed-up %.2fx  surface %s\n" "$n" "$t" "$(awk "BEGIN { print $one / $t }")" "$same"
done
