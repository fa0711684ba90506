#!/usr/bin/env python3
"""Run stats_bench (or read its JSON) and print the statistics comparison table for docs/PERFORMANCE.md.

usage: /usr/bin/python3 bench/stats/compare.py BUILD_DIR/bench/stats/stats_bench [--json FILE]
"""
import json
import subprocess
import sys


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    if "--json" in args:
        data = json.load(open(args[args.index("--json") + 1]))
    else:
        out = subprocess.run([args[0], "--benchmark_format=json", "--benchmark_min_time=1"],
                             check=True, capture_output=True, text=True).stdout
        data = json.loads(out)
    ms = {}
    cached = None
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = b["name"].replace("/real_time", "").split("/iterations:")[0]
        if "Cached" in name:  # a smaller matrix: its own line below, not a row of this table
            cached = b
            continue
        ms[name] = b["real_time"]  # milliseconds (Unit kMillisecond)
    gb = 64 * (1 << 20) * 4 / 1e9
    read1 = ms.get("BM_PlainRead_1Thread")
    readp = ms.get("BM_PlainRead_Pool")
    fused = ms.get("BM_FusedStats_Cpu/64/0")
    torch = ms.get("BM_TorchChain")
    print("| [64 x 1M] float32 (268 MB) | time (ms) | GB/s | fused vs this |")
    print("|---|---:|---:|---:|")
    for name, t in sorted(ms.items(), key=lambda kv: kv[1]):
        ratio = ""
        if fused and name != "BM_FusedStats_Cpu/64/0":
            ratio = "%.2fx" % (t / fused)
        print("| %s | %.1f | %.1f | %s |" % (name, t, gb / (t / 1e3), ratio))
    if fused:
        print()
        if read1:
            print("fused = %.0f%% of the single-thread read bandwidth (target >= 70%%)" % (100 * read1 / fused))
        if readp:
            print("fused = %.0f%% of the all-threads read bandwidth (target >= 80%%)" % (100 * readp / fused))
        if torch:
            print("fused is %.0fx faster than the LibTorch chain (target >= 3x)" % (torch / fused))
    if cached:
        print("fused on cached data: %.1f GB/s" % (cached["bytes_per_second"] / 1e9))
    return 0


if __name__ == "__main__":
    sys.exit(main())
