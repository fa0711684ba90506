// Histograms on a common axis for ridgelines.
#include "engine/dynamics/distributions.hpp"

#include <algorithm>
#include <cmath>

namespace ts::dynamics {

std::vector<double> rebin(std::span<const double> counts, double lo, double hi, int bins, double outLo, double outHi) {
    std::vector<double> out(size_t(std::max(bins, 1)), 0.0);
    const size_t nb = out.size();
    if (counts.empty() || !(outHi > outLo)) return out;
    const double w = (outHi - outLo) / double(nb);
    auto target = [&](double x) { return std::clamp(long((x - outLo) / w), 0L, long(nb) - 1); };
    const double sw = (hi - lo) / double(counts.size());
    for (size_t b = 0; b < counts.size(); ++b) {
        const double c = counts[b];
        if (c == 0) continue;
        if (!(sw > 0)) { // a degenerate source range: everything at lo
            out[size_t(target(lo))] += c;
            continue;
        }
        const double a0 = lo + double(b) * sw, a1 = a0 + sw;
        // Parts of [a0, a1) below or above the target range land in the end bins.
        double placed = 0;
        for (long t = target(a0); t <= target(a1) && t < long(nb); ++t) {
            const double t0 = outLo + double(t) * w, t1 = t0 + w;
            const double lo2 = t == 0 ? a0 : std::max(a0, t0), hi2 = t + 1 == long(nb) ? a1 : std::min(a1, t1);
            const double overlap = std::max(0.0, hi2 - lo2);
            const double part = c * overlap / sw;
            out[size_t(t)] += part;
            placed += part;
        }
        out[size_t(target(0.5 * (a0 + a1)))] += c - placed; // rounding, and bins wholly outside
    }
    return out;
}

double wasserstein1(std::span<const double> a, double aLo, double aHi, std::span<const double> b, double bLo, double bHi) {
    // Prefix sums make each CDF a lookup; both are piecewise linear, integrated on a common grid of 4096 steps.
    auto prefix = [](std::span<const double> h) {
        std::vector<double> p(h.size() + 1, 0.0);
        for (size_t j = 0; j < h.size(); ++j)
            p[j + 1] = p[j] + h[j];
        return p;
    };
    const auto pa = prefix(a), pb = prefix(b);
    if (a.empty() || b.empty() || !(pa.back() > 0) || !(pb.back() > 0)) return std::nan("");
    const double lo = std::min(aLo, bLo), hi = std::max(aHi, bHi);
    if (!(hi > lo)) return 0.0;
    auto cdf = [](const std::vector<double>& p, double hLo, double hHi, double x) {
        const size_t n = p.size() - 1;
        if (!(hHi > hLo)) return x >= hLo ? 1.0 : 0.0;
        const double pos = (x - hLo) / (hHi - hLo) * double(n);
        if (pos <= 0) return 0.0;
        if (pos >= double(n)) return 1.0;
        const size_t k = size_t(pos);
        return (p[k] + (p[k + 1] - p[k]) * (pos - double(k))) / p.back();
    };
    const int steps = 4096;
    const double dx = (hi - lo) / steps;
    double sum = 0;
    for (int i = 0; i < steps; ++i) {
        const double x = lo + (double(i) + 0.5) * dx;
        sum += std::fabs(cdf(pa, aLo, aHi, x) - cdf(pb, bLo, bHi, x)) * dx;
    }
    return sum;
}

std::vector<double> histogram(std::span<const float> values, int bins, double lo, double hi) {
    std::vector<double> out(size_t(std::max(bins, 1)), 0.0);
    const double w = (hi - lo) / double(out.size());
    for (float v : values) {
        if (!std::isfinite(v)) continue;
        const long b = w > 0 ? long(std::floor((double(v) - lo) / w)) : 0;
        out[size_t(std::clamp(b, 0L, long(out.size()) - 1))] += 1;
    }
    return out;
}

} // namespace ts::dynamics
