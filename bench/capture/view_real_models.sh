#!/usr/bin/env bash
# `view` of real architectures at 224x224 (batch 4, random probe): time to the first picture and peak RSS,
# against the bare LibTorch forward+backward of the same TorchScript model and batch, measured in the same run
# (Python's torch is the same LibTorch 1.13). Usage: bench/capture/view_real_models.sh [BUILD_DIR]
set -euo pipefail
BUILD=${1:-build}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 - "$TMP" <<'PY'
import sys, time, torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
for name in ["resnet50", "densenet121", "vit_b_16", "vgg11"]:
    m = getattr(torchvision.models, name)().eval()
    s = torch.jit.script(m)
    s.save(f"{out}/{name}.pt")
    x = torch.rand(4, 3, 224, 224)
    s.train()
    for i in range(2):  # warm-up, then timed
        t0 = time.perf_counter()
        y = s(x)
        torch.nn.functional.cross_entropy(y, y.argmax(1)).backward()
        dt = time.perf_counter() - t0
    weights = sum(p.numel() for p in m.parameters()) * 4 / 2**20
    print(f"{name} {dt:.3f} {weights:.0f}", file=open(f"{out}/{name}.base", "w"))
PY
printf "| model | bare forward+backward (s) | view to first picture (s) | ratio | peak RSS (MiB) | weights (MiB) |\n|---|---:|---:|---:|---:|---:|\n"
for name in resnet50 densenet121 vit_b_16 vgg11; do
  read -r _ base weights < "$TMP/$name.base"
  /usr/bin/time -f "%e %M" -o "$TMP/$name.time" "$BUILD/app/tensorscape" view "$TMP/$name.pt" --input-shape 3,224,224 \
      --batch 4 --headless --out "$TMP/$name.png" > "$TMP/$name.log" 2>&1
  read -r wall rss < "$TMP/$name.time"
  printf "| %s | %.2f | %.2f | %.1fx | %d | %d |\n" "$name" "$base" "$wall" "$(echo "$wall / $base" | bc -l)" \
      "$((rss / 1024))" "$weights"
done
