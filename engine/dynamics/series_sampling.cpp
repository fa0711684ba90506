// Density images and blue-noise sampling of polylines (see the header for the method). Series are
// independent, so both passes split them over the global thread pool.
#include "engine/dynamics/series_sampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/core/thread_pool.hpp"

namespace ts::dynamics {

ValueRange finiteRange(const SeriesMatrix& m) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (float v : m.values)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    if (!(lo <= hi)) return {};
    if (lo == hi) return {lo - 0.5f, hi + 0.5f};
    return {lo, hi};
}

uint32_t DensityImage::maxCount() const {
    return counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
}

void seriesSpans(const SeriesMatrix& m, int64_t i, int width, int height, ValueRange range, int16_t* lo, int16_t* hi) {
    const int64_t T = m.points;
    const double scale = double(height) / double(range.hi - range.lo);
    auto row = [&](double v) {
        const double y = std::floor((v - double(range.lo)) * scale);
        return int16_t(std::clamp(y, 0.0, double(height - 1)));
    };
    // The polyline's value at fractional time u (NaN where a segment touches a non-finite point).
    auto value = [&](double u) {
        const int64_t a = std::min<int64_t>(int64_t(std::floor(u)), T - 1);
        const double f = u - double(a);
        const double va = m.at(a, i);
        if (f <= 0 || a + 1 >= T) return va;
        const double vb = m.at(a + 1, i);
        return va + (vb - va) * f;
    };
    for (int x = 0; x < width; ++x) {
        lo[x] = 1;
        hi[x] = 0;
        double vmin = std::numeric_limits<double>::infinity(), vmax = -vmin;
        auto take = [&](double v) {
            if (std::isfinite(v)) {
                vmin = std::min(vmin, v);
                vmax = std::max(vmax, v);
            }
        };
        if (T == 1) {
            take(m.at(0, i));
        } else {
            const double u0 = double(x) * double(T - 1) / width, u1 = double(x + 1) * double(T - 1) / width;
            take(value(u0));
            take(value(u1));
            for (int64_t t = int64_t(std::ceil(u0)); double(t) <= u1 && t < T; ++t)
                take(m.at(t, i));
        }
        if (vmin <= vmax) {
            lo[x] = row(vmin);
            hi[x] = row(vmax);
        }
    }
}

DensityImage densityImage(const SeriesMatrix& m, int width, int height, ValueRange range) {
    DensityImage img;
    img.width = std::max(1, width);
    img.height = std::clamp(height, 1, 32767);
    img.range = range;
    img.counts.assign(size_t(img.width) * size_t(img.height), 0);
    if (range.empty() || m.points <= 0 || m.series <= 0) return img;
    // Each chunk of series fills a private image; the images are summed (a few per thread).
    auto& pool = ThreadPool::global();
    const size_t chunks = std::min<size_t>(size_t(m.series), std::max<size_t>(1, size_t(pool.workerCount()) * 2));
    std::vector<std::vector<uint32_t>> partial(chunks);
    pool.parallelFor(chunks, 1, [&](size_t c0, size_t c1, unsigned) {
        std::vector<int16_t> lo(size_t(img.width)), hi(size_t(img.width));
        for (size_t c = c0; c < c1; ++c) {
            auto& acc = partial[c];
            acc.assign(img.counts.size(), 0);
            const int64_t s0 = m.series * int64_t(c) / int64_t(chunks), s1 = m.series * int64_t(c + 1) / int64_t(chunks);
            for (int64_t i = s0; i < s1; ++i) {
                seriesSpans(m, i, img.width, img.height, range, lo.data(), hi.data());
                for (int x = 0; x < img.width; ++x)
                    for (int y = lo[size_t(x)]; y <= hi[size_t(x)]; ++y)
                        ++acc[size_t(y) * size_t(img.width) + size_t(x)];
            }
        }
    });
    for (const auto& p : partial)
        for (size_t k = 0; k < p.size(); ++k)
            img.counts[k] += p[k];
    return img;
}

SeriesSample blueNoiseSample(const SeriesMatrix& m, const DensityImage& d, const SamplingOptions& o) {
    SeriesSample out;
    const int64_t n = m.series;
    out.crowding.assign(size_t(std::max<int64_t>(n, 0)), 0.0f);
    if (n <= 0 || d.range.empty() || d.counts.empty()) return out;
    const int W = d.width, H = d.height;
    // 1. Crowding: the median over columns of the density where the series crosses them (the median, so a
    //    series that only passes through a bundle on its way is still an outlier).
    ThreadPool::global().parallelFor(size_t(n), 256, [&](size_t a, size_t b, unsigned) {
        std::vector<int16_t> lo(static_cast<size_t>(W)), hi(static_cast<size_t>(W));
        std::vector<double> perColumn;
        for (size_t i = a; i < b; ++i) {
            seriesSpans(m, int64_t(i), W, H, d.range, lo.data(), hi.data());
            perColumn.clear();
            for (int x = 0; x < W; ++x) {
                if (lo[size_t(x)] > hi[size_t(x)]) continue;
                double sum = 0;
                for (int y = lo[size_t(x)]; y <= hi[size_t(x)]; ++y)
                    sum += d.counts[size_t(y) * size_t(W) + size_t(x)];
                perColumn.push_back(sum / double(hi[size_t(x)] - lo[size_t(x)] + 1));
            }
            if (perColumn.empty()) {
                out.crowding[i] = std::numeric_limits<float>::infinity();
                continue;
            }
            auto mid = perColumn.begin() + long(perColumn.size() / 2);
            std::nth_element(perColumn.begin(), mid, perColumn.end());
            out.crowding[i] = float(*mid / double(n));
        }
    });
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return out.crowding[size_t(a)] < out.crowding[size_t(b)]; });
    // 2. Poisson-disk passes from the least crowded series, loosening the conflict until the target is met.
    const size_t target = size_t(std::clamp<int64_t>(o.target, 0, n));
    std::vector<uint8_t> taken(d.counts.size(), 0);
    std::vector<char> kept(size_t(n), 0);
    std::vector<int16_t> lo(static_cast<size_t>(W)), hi(static_cast<size_t>(W));
    // Passes: the disk shrinks (radius, radius - 1, .. 0) at the first conflict, then the conflict loosens
    // (0.5, 0.8, 1: anything) until the target is met; each pass marks with its own radius.
    std::vector<std::pair<int, double>> passes;
    for (int r = std::max(o.radius, 0); r >= 0; --r)
        passes.push_back({r, o.conflict});
    for (double c : {0.5, 0.8, 1.0})
        if (c > o.conflict) passes.push_back({0, c});
    for (auto [radius, conflict] : passes) {
        // The taken cells of this pass: every kept polyline dilated by this pass's radius.
        std::fill(taken.begin(), taken.end(), uint8_t(0));
        auto mark = [&](int64_t i) {
            seriesSpans(m, i, W, H, d.range, lo.data(), hi.data());
            for (int x = 0; x < W; ++x) {
                if (lo[size_t(x)] > hi[size_t(x)]) continue;
                const int y0 = std::max(0, lo[size_t(x)] - radius), y1 = std::min(H - 1, hi[size_t(x)] + radius);
                for (int y = y0; y <= y1; ++y)
                    taken[size_t(y) * size_t(W) + size_t(x)] = 1;
            }
        };
        for (int64_t i : out.kept)
            mark(i);
        for (int64_t i : order) {
            if (out.kept.size() >= target) break;
            if (kept[size_t(i)] || !std::isfinite(out.crowding[size_t(i)])) continue;
            seriesSpans(m, i, W, H, d.range, lo.data(), hi.data());
            int64_t cells = 0, clash = 0;
            for (int x = 0; x < W; ++x)
                for (int y = lo[size_t(x)]; y <= hi[size_t(x)]; ++y) {
                    clash += taken[size_t(y) * size_t(W) + size_t(x)];
                    ++cells;
                }
            if (double(clash) > conflict * double(cells)) continue;
            kept[size_t(i)] = 1;
            out.kept.push_back(i);
            mark(i);
        }
        if (out.kept.size() >= target) break;
    }
    return out;
}

std::vector<int64_t> brushSeries(const SeriesMatrix& m, int64_t t0, int64_t t1, float vlo, float vhi) {
    std::vector<int64_t> out;
    if (m.points <= 0) return out;
    t0 = std::clamp<int64_t>(t0, 0, m.points - 1);
    t1 = std::clamp<int64_t>(t1, 0, m.points - 1);
    if (t1 < t0) std::swap(t0, t1);
    if (vhi < vlo) std::swap(vlo, vhi);
    for (int64_t i = 0; i < m.series; ++i)
        for (int64_t t = t0; t <= t1; ++t) {
            const float v = m.at(t, i);
            if (v >= vlo && v <= vhi) {
                out.push_back(i);
                break;
            }
        }
    return out;
}

} // namespace ts::dynamics
