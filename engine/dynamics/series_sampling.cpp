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

namespace {

// The image row of a value: (v - base) * scale truncated into [0, top]. NaN (a range too wide for float, whose
// scale is 0 against an infinite offset) goes to row 0: never an out-of-range index.
inline float clampRow(float r, float top) {
    r = r > 0.0f ? r : 0.0f; // NaN and negatives
    return r < top ? r : top;
}
// Rows per unit value, in double: a range wider than a float holds (+-3e38) still gives a usable scale (a value
// whose offset from the base overflows is then near the top, where it belongs).
inline float rowScale(int rows, ValueRange range) {
    return float(double(rows) / (double(range.hi) - double(range.lo)));
}
inline int rowOf(float v, float base, float scale, int top) {
    return int(clampRow((v - base) * scale, float(top)));
}

// Per column x of a W-column image over T points: its edges as (point, fraction) pairs and the points inside.
struct Columns {
    int width = 0;
    std::vector<int64_t> a0, a1;      // the points at or before each edge
    std::vector<float> f0, f1;        // the edges' fractions past them
    std::vector<int64_t> first, last; // points t inside the column, edges included (first > last: none)
    Columns(int64_t T, int W)
        : width(W), a0(size_t(W)), a1(size_t(W)), f0(size_t(W)), f1(size_t(W)), first(size_t(W)), last(size_t(W)) {
        for (int x = 0; x < W; ++x) {
            const double u0 = T > 1 ? double(x) * double(T - 1) / W : 0.0;
            const double u1 = T > 1 ? double(x + 1) * double(T - 1) / W : 0.0;
            a0[size_t(x)] = std::min<int64_t>(int64_t(u0), std::max<int64_t>(T - 1, 0));
            a1[size_t(x)] = std::min<int64_t>(int64_t(u1), std::max<int64_t>(T - 1, 0));
            f0[size_t(x)] = float(u0 - double(a0[size_t(x)]));
            f1[size_t(x)] = float(u1 - double(a1[size_t(x)]));
            first[size_t(x)] = int64_t(std::ceil(u0));
            last[size_t(x)] = std::min<int64_t>(int64_t(std::floor(u1)), T - 1);
        }
    }
};

// The rows one series (its T values, contiguous) crosses in each column; lo > hi where it has no finite value.
// A column's span covers the polyline at its two edges and at the points inside it; neighbouring columns share
// an edge, so the W + 1 edge values are found once (a third of the work of finding each column's two).
void spansOf(const float* v, int64_t T, const Columns& c, int height, ValueRange range, int16_t* lo, int16_t* hi) {
    const float scale = rowScale(height, range), base = range.lo;
    const int top = height - 1;
    const int W = c.width;
    // The polyline's value at an edge (NaN where its segment touches a non-finite point).
    auto edge = [&](int64_t a, float f) {
        const float va = v[a];
        if (f <= 0.0f || a + 1 >= T) return va;
        const float d = v[a + 1] - va; // overflows only between values of opposite sign near the float limit
        return std::isfinite(d) || !std::isfinite(v[a + 1]) ? va + d * f : va * (1.0f - f) + v[a + 1] * f;
    };
    float next = T == 1 ? v[0] : edge(c.a0[0], c.f0[0]);
    for (int x = 0; x < W; ++x) {
        const float e0 = next;
        next = T == 1 ? v[0] : edge(c.a1[size_t(x)], c.f1[size_t(x)]);
        float vmin = std::numeric_limits<float>::infinity(), vmax = -vmin;
        auto take = [&](float val) {
            if (std::isfinite(val)) {
                vmin = std::min(vmin, val);
                vmax = std::max(vmax, val);
            }
        };
        take(e0);
        if (T > 1) {
            take(next);
            for (int64_t t = c.first[size_t(x)]; t <= c.last[size_t(x)]; ++t)
                take(v[t]);
        }
        if (vmin <= vmax) {
            lo[x] = int16_t(rowOf(vmin, base, scale, top));
            hi[x] = int16_t(rowOf(vmax, base, scale, top));
        } else {
            lo[x] = 1;
            hi[x] = 0;
        }
    }
}

// spansOf for the widths the series view asks for, a whole number of columns per segment or of segments per
// column, when every value is finite (then no segment is cut): the same spans with a few flops per column.
// False (nothing written) otherwise.
bool fastSpans(const float* v, int64_t T, int W, int height, ValueRange range, int16_t* lo, int16_t* hi) {
    if (T < 2) return false;
    const int64_t segments = T - 1;
    const bool perSegment = W % segments == 0, perColumn = segments % W == 0;
    if (!perSegment && !perColumn) return false;
    for (int64_t t = 0; t < T; ++t)
        if (!std::isfinite(v[t])) return false;
    const float scale = rowScale(height, range), base = range.lo;
    const int top = height - 1;
    auto row = [&](float val) { return int16_t(rowOf(val, base, scale, top)); };
    if (perSegment) {
        const int k = int(W / segments);
        const float inv = 1.0f / float(k);
        for (int64_t t = 0; t < segments; ++t) {
            const float a = v[t], d = (v[t + 1] - a) * inv;
            // Edges as spansOf finds them: a + (b - a) f at f = j / k (exactly b at the segment's end).
            float e0 = a;
            for (int j = 0; j < k; ++j) {
                const float e1 = j + 1 == k ? v[t + 1] : a + d * float(j + 1);
                const size_t x = size_t(t * k + j);
                lo[x] = row(std::min(e0, e1));
                hi[x] = row(std::max(e0, e1));
                e0 = e1;
            }
        }
    } else {
        const int64_t per = segments / W;
        for (int x = 0; x < W; ++x) {
            float a = v[x * per], b = a;
            for (int64_t t = x * per + 1; t <= (x + 1) * per; ++t) {
                a = std::min(a, v[t]);
                b = std::max(b, v[t]);
            }
            lo[x] = row(a);
            hi[x] = row(b);
        }
    }
    return true;
}

// The density of one series added straight into a column-major difference image (per column height + 1
// counters: +1 where a span starts, -1 past its end; prefix sums give the counts) when W is a whole number of
// columns per segment and every value is finite: fastSpans' spans without storing them or looping over their
// rows (the series view's usual case; a span's length is unpredictable, so a loop over it mispredicts).
bool fillSegments(const float* v, int64_t T, int W, int height, ValueRange range, int32_t* diff) {
    if (T < 2 || W % (T - 1) != 0) return false;
    for (int64_t t = 0; t < T; ++t)
        if (!std::isfinite(v[t])) return false;
    const int64_t segments = T - 1;
    const int k = int(W / segments);
    const float scale = rowScale(height, range), base = range.lo, inv = 1.0f / float(k);
    const int top = height - 1;
    auto row = [&](float val) { return rowOf(val, base, scale, top); };
    int32_t* column = diff;
    const size_t stride = size_t(height) + 1;
    for (int64_t t = 0; t < segments; ++t) {
        const float a = v[t], d = (v[t + 1] - a) * inv;
        float e0 = a;
        for (int j = 0; j < k; ++j, column += stride) {
            const float e1 = j + 1 == k ? v[t + 1] : a + d * float(j + 1);
            ++column[row(std::min(e0, e1))];
            --column[row(std::max(e0, e1)) + 1];
            e0 = e1;
        }
    }
    return true;
}

// fillSegments for series [i0, i1) at once, read straight from the time-major matrix: per column the edge
// values and rows of all the block's series are computed in straight loops the compiler vectorises, then
// added to that column's difference counters. False (nothing written) unless every value of the block is
// finite and W is a whole number of columns per segment.
bool fillBlock(const SeriesMatrix& m, int64_t i0, int64_t i1, int W, int height, ValueRange range, int32_t* diff) {
    const int64_t T = m.points, N = m.series, B = i1 - i0;
    if (T < 2 || W % (T - 1) != 0 || B <= 0 || B > 256) return false;
    for (int64_t t = 0; t < T; ++t) {
        const float* row = m.values.data() + t * N + i0;
        bool finite = true;
        for (int64_t b = 0; b < B; ++b)
            finite &= std::isfinite(row[b]);
        if (!finite) return false;
    }
    const int k = int(W / (T - 1));
    const float scale = rowScale(height, range), base = range.lo, inv = 1.0f / float(k);
    const float top = float(height - 1);
    const size_t stride = size_t(height) + 1;
    float ya[256], yb[256];
    int32_t lo[256], hi[256];
    for (int64_t t = 0; t + 1 < T; ++t) {
        const float* va = m.values.data() + t * N + i0;
        const float* vb = va + N;
        for (int64_t b = 0; b < B; ++b) { // in row units: (v - base) * scale, as fillSegments' row() takes it
            ya[b] = (va[b] - base) * scale;
            yb[b] = (vb[b] - base) * scale;
        }
        for (int j = 0; j < k; ++j) {
            const float f0 = float(j) * inv, f1 = float(j + 1) * inv;
            for (int64_t b = 0; b < B; ++b) {
                const float d = yb[b] - ya[b];
                const float e0 = ya[b] + d * f0, e1 = j + 1 == k ? yb[b] : ya[b] + d * f1;
                lo[b] = int32_t(clampRow(std::min(e0, e1), top));
                hi[b] = int32_t(clampRow(std::max(e0, e1), top)) + 1;
            }
            int32_t* column = diff + size_t(t * k + j) * stride;
            for (int64_t b = 0; b < B; ++b) {
                ++column[lo[b]];
                --column[hi[b]];
            }
        }
    }
    return true;
}

// Calls f(i, values) for series [i0, i1), each as T contiguous values: the time-major matrix is gathered 64
// series at a time (reads of 64 neighbouring floats per point instead of one float per cache line).
template <class F>
void forEachSeries(const SeriesMatrix& m, int64_t i0, int64_t i1, std::vector<float>& buf, F&& f) {
    constexpr int64_t B = 64;
    const int64_t T = m.points;
    buf.resize(size_t(B * T));
    for (int64_t b0 = i0; b0 < i1; b0 += B) {
        const int64_t nb = std::min(B, i1 - b0);
        for (int64_t t = 0; t < T; ++t) {
            const float* row = m.values.data() + t * m.series + b0;
            for (int64_t b = 0; b < nb; ++b)
                buf[size_t(b * T + t)] = row[b];
        }
        for (int64_t b = 0; b < nb; ++b)
            f(b0 + b, buf.data() + b * T);
    }
}

} // namespace

void seriesSpans(const SeriesMatrix& m, int64_t i, int width, int height, ValueRange range, int16_t* lo, int16_t* hi) {
    std::vector<float> v(static_cast<size_t>(m.points));
    for (int64_t t = 0; t < m.points; ++t)
        v[size_t(t)] = m.at(t, i);
    spansOf(v.data(), m.points, Columns(m.points, width), height, range, lo, hi);
}

DensityImage densityImage(const SeriesMatrix& m, int width, int height, ValueRange range) {
    DensityImage img;
    img.width = std::max(1, width);
    img.height = std::clamp(height, 1, 32767);
    img.range = range;
    img.counts.assign(size_t(img.width) * size_t(img.height), 0);
    if (range.empty() || m.points <= 0 || m.series <= 0) return img;
    const Columns cols(m.points, img.width);
    // Each chunk of series fills a private image; the images are summed (a few per thread).
    auto& pool = ThreadPool::global();
    const size_t chunks = std::min<size_t>(size_t(m.series), std::max<size_t>(1, size_t(pool.workerCount()) * 2));
    // Private difference images, column-major (H + 1 counters per column: +1 at a span's first row, -1 past
    // its last); the sum adds them and takes each column's prefix sums.
    const size_t H = size_t(img.height), stride = H + 1;
    std::vector<std::vector<int32_t>> partial(chunks);
    pool.parallelFor(chunks, 1, [&](size_t c0, size_t c1, unsigned) {
        std::vector<int16_t> lo(static_cast<size_t>(img.width)), hi(static_cast<size_t>(img.width));
        std::vector<float> buf;
        for (size_t c = c0; c < c1; ++c) {
            auto& acc = partial[c];
            acc.assign(size_t(img.width) * stride, 0);
            const int64_t s0 = m.series * int64_t(c) / int64_t(chunks), s1 = m.series * int64_t(c + 1) / int64_t(chunks);
            // Blocks of 256 series: all finite (the usual case) in one vectorised pass, else series by series.
            for (int64_t b0 = s0; b0 < s1; b0 += 256) {
                const int64_t b1 = std::min(s1, b0 + 256);
                if (fillBlock(m, b0, b1, img.width, img.height, range, acc.data())) continue;
            forEachSeries(m, b0, b1, buf, [&](int64_t, const float* v) {
                if (fillSegments(v, m.points, img.width, img.height, range, acc.data())) return;
                if (!fastSpans(v, m.points, img.width, img.height, range, lo.data(), hi.data()))
                    spansOf(v, m.points, cols, img.height, range, lo.data(), hi.data());
                for (int x = 0; x < img.width; ++x) {
                    if (lo[size_t(x)] > hi[size_t(x)]) continue; // no finite value in this column
                    int32_t* column = acc.data() + size_t(x) * stride;
                    ++column[lo[size_t(x)]];
                    --column[hi[size_t(x)] + 1];
                }
            });
            }
        }
    });
    std::vector<int32_t> total(size_t(img.width) * stride, 0);
    for (const auto& p : partial)
        for (size_t k = 0; k < p.size(); ++k)
            total[k] += p[k];
    for (size_t x = 0; x < size_t(img.width); ++x) {
        int64_t run = 0;
        for (size_t y = 0; y < H; ++y) {
            run += total[x * stride + y];
            img.counts[y * size_t(img.width) + x] = uint32_t(run);
        }
    }
    return img;
}

namespace {
// Sampling step 1, crowding, from K <= 16 evenly spaced time points (rows of the matrix, read 64 series at a
// time): the density of all series at those points, then each series' median density over them (the median,
// so a series that only passes through a bundle on its way is still an outlier). Infinity: never finite.
void measureCrowding(const SeriesMatrix& m, ValueRange range, int H, std::vector<float>& crowding) {
    const int64_t n = m.series;
    const int64_t T = m.points, K = std::min<int64_t>(16, T);
    std::vector<int64_t> at(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k)
        at[size_t(k)] = K == 1 ? 0 : k * (T - 1) / (K - 1);
    const float scale = rowScale(H, range);
    std::vector<uint8_t> cell(size_t(n * K)); // row of series i at point k (255: not finite)
    auto& threads = ThreadPool::global();
    const size_t blocks = size_t((n + 63) / 64);
    const size_t parts = std::min<size_t>(blocks, std::max<size_t>(1, size_t(threads.workerCount()) * 2));
    std::vector<std::vector<uint32_t>> partial(parts, std::vector<uint32_t>(size_t(K * H), 0));
    threads.parallelFor(parts, 1, [&](size_t p0, size_t p1, unsigned) {
        for (size_t p = p0; p < p1; ++p) {
            auto& hist = partial[p];
            for (size_t b = blocks * p / parts; b < blocks * (p + 1) / parts; ++b) {
                const int64_t i0 = int64_t(b) * 64, i1 = std::min(n, i0 + 64);
                for (int64_t k = 0; k < K; ++k) {
                    const float* row = m.values.data() + at[size_t(k)] * n;
                    for (int64_t i = i0; i < i1; ++i) {
                        const float v = row[i];
                        uint8_t y = 255;
                        if (std::isfinite(v)) {
                            y = uint8_t(rowOf(v, range.lo, scale, H - 1));
                            ++hist[size_t(y) * size_t(K) + size_t(k)];
                        }
                        cell[size_t(i * K + k)] = y;
                    }
                }
            }
        }
    });
    std::vector<uint32_t> hist(size_t(K * H), 0);
    for (const auto& p : partial)
        for (size_t c = 0; c < hist.size(); ++c)
            hist[c] += p[c];
    threads.parallelFor(size_t(n), 1024, [&](size_t a, size_t b, unsigned) {
        float vals[16];
        for (size_t i = a; i < b; ++i) {
            int c = 0;
            for (int64_t k = 0; k < K; ++k) {
                const uint8_t y = cell[i * size_t(K) + size_t(k)];
                if (y != 255) vals[c++] = float(hist[size_t(y) * size_t(K) + size_t(k)]);
            }
            if (c == 0) {
                crowding[i] = std::numeric_limits<float>::infinity();
                continue;
            }
            std::nth_element(vals, vals + c / 2, vals + c);
            crowding[i] = vals[c / 2] / float(n);
        }
    });
}

// Step 2, the candidates: the least crowded 10 x target series (partitioned out, then sorted), and 10 x target
// more taken at an even stride over all series (the dense bundles, in proportion), in linear time.
std::vector<int64_t> candidatePool(const std::vector<float>& crowding, size_t target) {
    const int64_t n = int64_t(crowding.size());
    auto byCrowding = [&](int64_t a, int64_t b) {
        return crowding[size_t(a)] < crowding[size_t(b)] || (crowding[size_t(a)] == crowding[size_t(b)] && a < b);
    };
    std::vector<int64_t> pool;
    if (size_t(n) <= 20 * target + 2) {
        pool.resize(size_t(n));
        std::iota(pool.begin(), pool.end(), int64_t(0));
        std::sort(pool.begin(), pool.end(), byCrowding);
    } else {
        std::vector<int64_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), int64_t(0));
        const size_t head = 10 * target;
        std::nth_element(order.begin(), order.begin() + long(head), order.end(), byCrowding);
        std::sort(order.begin(), order.begin() + long(head), byCrowding);
        pool.assign(order.begin(), order.begin() + long(head));
        std::vector<char> inPool(static_cast<size_t>(n), 0);
        for (int64_t i : pool)
            inPool[size_t(i)] = 1;
        std::vector<int64_t> spread;
        for (size_t k = 0; k < 10 * target; ++k) {
            const int64_t i = int64_t(k * size_t(n) / (10 * target));
            if (!inPool[size_t(i)]) spread.push_back(i);
        }
        std::sort(spread.begin(), spread.end(), byCrowding);
        pool.insert(pool.end(), spread.begin(), spread.end());
    }
    return pool;
}

// The candidates' spans on the disk test's grid, once: their values gathered row by row (ascending series
// within a row, so the reads move forward through memory), then the spans on the thread pool.
void candidateSpans(const SeriesMatrix& m, const std::vector<int64_t>& pool, const Columns& cols, int H,
                    ValueRange range, std::vector<int16_t>& spanLo, std::vector<int16_t>& spanHi) {
    const int64_t T = m.points, n = m.series;
    const int W = cols.width;
    auto& threads = ThreadPool::global();
    spanLo.assign(pool.size() * size_t(W), 0);
    spanHi.assign(pool.size() * size_t(W), 0);
    std::vector<size_t> byIndex(pool.size());
    std::iota(byIndex.begin(), byIndex.end(), size_t(0));
    std::sort(byIndex.begin(), byIndex.end(), [&](size_t a, size_t b) { return pool[a] < pool[b]; });
    std::vector<float> vals(pool.size() * size_t(T));
    for (int64_t t = 0; t < T; ++t) {
        const float* row = m.values.data() + t * n;
        for (size_t k : byIndex)
            vals[k * size_t(T) + size_t(t)] = row[pool[k]];
    }
    threads.parallelFor(pool.size(), 64, [&](size_t a, size_t b, unsigned) {
        for (size_t k = a; k < b; ++k)
            spansOf(vals.data() + k * size_t(T), T, cols, H, range, spanLo.data() + k * size_t(W),
                    spanHi.data() + k * size_t(W));
    });
}

// Step 3, Poisson-disk passes from the least crowded: the disk shrinks (radius, radius - 1, .. 0) at the first
// conflict, then the conflict loosens (0.5, 0.8, 1: anything) until the target is met.
void diskPasses(const std::vector<int64_t>& pool, const std::vector<int16_t>& spanLo,
                const std::vector<int16_t>& spanHi, int W, int H, size_t target, const SamplingOptions& o,
                SeriesSample& out) {
    std::vector<std::pair<int, double>> passes;
    for (int r = std::max(o.radius, 0); r >= 0; --r)
        passes.push_back({r, o.conflict});
    for (double c : {0.5, 0.8, 1.0})
        if (c > o.conflict) passes.push_back({0, c});
    std::vector<uint8_t> taken(size_t(W) * size_t(H), 0);
    std::vector<char> kept(pool.size(), 0);
    std::vector<size_t> keptSlots;
    for (auto [radius, conflict] : passes) {
        std::fill(taken.begin(), taken.end(), uint8_t(0));
        auto mark = [&](size_t k) {
            const int16_t* lo = spanLo.data() + k * size_t(W);
            const int16_t* hi = spanHi.data() + k * size_t(W);
            for (int x = 0; x < W; ++x) {
                if (lo[x] > hi[x]) continue;
                const int y0 = std::max(0, lo[x] - radius), y1 = std::min(H - 1, hi[x] + radius);
                for (int y = y0; y <= y1; ++y)
                    taken[size_t(y) * size_t(W) + size_t(x)] = 1;
            }
        };
        for (size_t k : keptSlots)
            mark(k);
        for (size_t k = 0; k < pool.size() && out.kept.size() < target; ++k) {
            if (kept[k] || !std::isfinite(out.crowding[size_t(pool[k])])) continue;
            const int16_t* lo = spanLo.data() + k * size_t(W);
            const int16_t* hi = spanHi.data() + k * size_t(W);
            int64_t cells = 0, clash = 0;
            for (int x = 0; x < W; ++x)
                for (int y = lo[x]; y <= hi[x]; ++y) {
                    clash += taken[size_t(y) * size_t(W) + size_t(x)];
                    ++cells;
                }
            if (double(clash) > conflict * double(cells)) continue;
            kept[k] = 1;
            keptSlots.push_back(k);
            out.kept.push_back(pool[k]);
            mark(k);
        }
        if (out.kept.size() >= target) break;
    }
}
} // namespace

SeriesSample blueNoiseSample(const SeriesMatrix& m, const DensityImage& display, const SamplingOptions& o) {
    SeriesSample out;
    const int64_t n = m.series;
    out.crowding.assign(size_t(std::max<int64_t>(n, 0)), 0.0f);
    if (n <= 0 || display.range.empty() || m.points <= 0) return out;
    // The disk test runs on a grid of at most 128 x 96 cells (the disk is a few cells; finer grids cost time
    // without changing which polylines are far apart).
    const int W = std::min(display.width, 128), H = std::min(display.height, 96);
    measureCrowding(m, display.range, H, out.crowding);
    const size_t target = size_t(std::clamp<int64_t>(o.target, 0, n));
    const std::vector<int64_t> pool = candidatePool(out.crowding, target);
    std::vector<int16_t> spanLo, spanHi;
    candidateSpans(m, pool, Columns(m.points, W), H, display.range, spanLo, spanHi);
    diskPasses(pool, spanLo, spanHi, W, H, target, o, out);
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
