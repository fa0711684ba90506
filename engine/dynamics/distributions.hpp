// Distributions over a run, for ridgelines: one histogram per chosen snapshot on a common value axis, and
// window averages of the per-layer summaries around a focus snapshot (the snapshot level's layer colours).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace ts::dynamics {

// rows x bins counts over [lo, hi] (bin b covers [lo + b w, lo + (b+1) w), the last one closed).
struct Ridgelines {
    int bins = 0;
    double lo = 0, hi = 0;
    std::vector<int64_t> steps;       // one per row
    std::vector<double> counts;       // [rows][bins]
    size_t rows() const { return steps.size(); }
};

// Moves a histogram over [lo, hi] onto `bins` bins over [outLo, outHi], spreading each source bin's count
// over the target bins in proportion to their overlap (values assumed uniform within a bin); counts outside
// the target range go to the end bins. Conserves the total.
std::vector<double> rebin(std::span<const double> counts, double lo, double hi, int bins, double outLo, double outHi);

// Wasserstein-1 (earth mover's) distance between two histograms, each over its own [lo, hi], both normalised
// to unit mass: the integral of |CDF_a - CDF_b| over the union of their ranges (values uniform within a bin).
// 0 for identical distributions; in the values' unit. NaN when either is empty.
double wasserstein1(std::span<const double> a, double aLo, double aHi, std::span<const double> b, double bLo, double bHi);

// Histogram of the finite values on [lo, hi] in `bins` bins (values outside are clamped into the end bins).
std::vector<double> histogram(std::span<const float> values, int bins, double lo, double hi);

// Mean of each statistic over snapshots [focus - half, focus + half] (clamped to the run), ignoring NaN:
// rows is [snapshots][K]. A statistic with no finite value in the window is NaN.
template <size_t K>
std::array<double, K> windowAverage(std::span<const std::array<double, K>> rows, int64_t focus, int64_t half);

} // namespace ts::dynamics

#include <cmath>
#include <algorithm>

namespace ts::dynamics {
template <size_t K>
std::array<double, K> windowAverage(std::span<const std::array<double, K>> rows, int64_t focus, int64_t half) {
    std::array<double, K> sum{}, out{};
    std::array<int64_t, K> n{};
    const int64_t last = int64_t(rows.size()) - 1;
    for (int64_t r = std::max<int64_t>(0, focus - half); r <= std::min(last, focus + half); ++r)
        for (size_t k = 0; k < K; ++k)
            if (std::isfinite(rows[size_t(r)][k])) {
                sum[k] += rows[size_t(r)][k];
                ++n[k];
            }
    for (size_t k = 0; k < K; ++k)
        out[k] = n[k] ? sum[k] / double(n[k]) : std::nan("");
    return out;
}
} // namespace ts::dynamics
