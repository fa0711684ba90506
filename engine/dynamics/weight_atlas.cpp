// Atlas layout (shelf packing with folding of long rows) and its reduction to screen cells.
#include "engine/dynamics/weight_atlas.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/core/thread_pool.hpp"

namespace ts::dynamics {

AtlasLayout layoutAtlas(std::span<const WeightMatrix> matrices, int64_t gap, double aspect) {
    AtlasLayout a;
    int64_t total = 0, widest = 0;
    std::vector<AtlasTile> tiles;
    for (size_t i = 0; i < matrices.size(); ++i) {
        const auto& m = matrices[i];
        AtlasTile t;
        t.matrix = i;
        // Fold rows much longer than the matrix is tall into bands, towards a square tile.
        t.folds = m.rows > 0 && m.cols > 4 * m.rows ? std::max<int64_t>(1, int64_t(std::sqrt(double(m.cols) / double(m.rows)))) : 1;
        t.bandWidth = (m.cols + t.folds - 1) / t.folds;
        t.rowFolds = m.cols > 0 && m.rows > 4 * m.cols ? std::max<int64_t>(1, int64_t(std::sqrt(double(m.rows) / double(m.cols)))) : 1;
        t.bandHeight = (m.rows + t.rowFolds - 1) / t.rowFolds;
        t.width = t.bandWidth * t.rowFolds;
        t.height = t.rowFolds > 1 ? t.bandHeight : m.rows * t.folds;
        total += (t.width + gap) * (t.height + gap);
        widest = std::max(widest, t.width);
        tiles.push_back(t);
    }
    const int64_t shelf = std::max<int64_t>(widest, int64_t(std::sqrt(double(total) * std::clamp(aspect, 0.05, 20.0))));
    int64_t x = 0, y = 0, shelfHeight = 0;
    for (auto& t : tiles) {
        if (x > 0 && x + t.width > shelf) {
            y += shelfHeight + gap;
            x = 0;
            shelfHeight = 0;
        }
        t.x = x;
        t.y = y;
        x += t.width + gap;
        shelfHeight = std::max(shelfHeight, t.height);
        a.width = std::max(a.width, t.x + t.width);
    }
    a.height = y + shelfHeight;
    a.tiles = std::move(tiles);
    return a;
}

namespace {
// The index into a matrix's values of tile cell (cx, cy) (tile-local), or -1.
int64_t indexIn(const WeightMatrix& m, const AtlasTile& t, int64_t cx, int64_t cy) {
    if (cx < 0 || cy < 0 || cx >= t.width || cy >= t.height) return -1;
    if (t.rowFolds > 1) { // bands of rows side by side
        const int64_t row = (cx / m.cols) * t.bandHeight + cy, col = cx % m.cols;
        return row < m.rows ? row * m.cols + col : -1;
    }
    const int64_t row = cy % m.rows, band = cy / m.rows, col = band * t.bandWidth + cx;
    return col < m.cols ? row * m.cols + col : -1;
}
} // namespace

const float* weightAt(std::span<const WeightMatrix> matrices, const AtlasLayout& layout, int64_t x, int64_t y) {
    for (const auto& t : layout.tiles) {
        const int64_t k = indexIn(matrices[t.matrix], t, x - t.x, y - t.y);
        if (k >= 0) return &matrices[t.matrix].values[size_t(k)];
    }
    return nullptr;
}

std::vector<float> rasterizeAtlas(std::span<const WeightMatrix> matrices, const AtlasLayout& layout, double x0,
                                  double y0, double w, double h, int cols, int rows,
                                  std::span<const std::vector<float>> values, std::span<const float> scales) {
    const size_t cells = size_t(std::max(cols, 0)) * size_t(std::max(rows, 0));
    std::vector<float> out(cells, std::numeric_limits<float>::quiet_NaN());
    if (cells == 0 || !(w > 0) || !(h > 0)) return out;
    const double sx = double(cols) / w, sy = double(rows) / h; // cells per weight
    // Other values (updates, gradients) replace the weights; a matrix without them (a parameter without a
    // gradient) is left out.
    auto data = [&](size_t i) -> const float* {
        if (values.empty()) return matrices[i].values.data();
        return i < values.size() && values[i].size() == matrices[i].values.size() ? values[i].data() : nullptr;
    };
    auto scale = [&](size_t i) { return i < scales.size() ? scales[i] : 1.0f; };
    if (sx >= 1.0 && sy >= 1.0) {
        // Zoomed in: each cell shows the weight at its centre.
        ThreadPool::global().parallelFor(size_t(rows), 16, [&](size_t r0, size_t r1, unsigned) {
            for (size_t r = r0; r < r1; ++r) {
                const int64_t y = int64_t(std::floor(y0 + (double(r) + 0.5) / sy)); // sy >= 1: within the region
                for (const auto& t : layout.tiles) {
                    if (y < t.y || y >= t.y + t.height) continue;
                    const auto& m = matrices[t.matrix];
                    const float* v = data(t.matrix);
                    if (!v) continue;
                    // The cells whose centre falls in the tile's columns.
                    // (clamped as doubles first: a deep zoom puts far tiles billions of cells away)
                    const int c0 = int(std::clamp(std::ceil((double(t.x) - x0) * sx - 0.5), 0.0, double(cols)));
                    const int c1 = int(std::clamp(std::ceil((double(t.x + t.width) - x0) * sx - 0.5), 0.0, double(cols)));
                    for (int c = c0; c < c1; ++c) {
                        const int64_t x = int64_t(std::floor(x0 + (double(c) + 0.5) / sx));
                        const int64_t k = indexIn(m, t, x - t.x, y - t.y);
                        if (k >= 0) out[r * size_t(cols) + size_t(c)] = v[k] * scale(t.matrix);
                    }
                }
            }
        });
        return out;
    }
    // Zoomed out: every weight in the region added to the cell it falls in (rows of cells split over threads).
    std::vector<double> sum(cells, 0.0);
    std::vector<uint32_t> count(cells, 0);
    ThreadPool::global().parallelFor(size_t(rows), 4, [&](size_t r0, size_t r1, unsigned) {
        const int64_t ya = int64_t(std::floor(y0 + double(r0) / sy)), yb = int64_t(std::ceil(y0 + double(r1) / sy));
        for (const auto& t : layout.tiles) {
            const auto& m = matrices[t.matrix];
            const float* v = data(t.matrix);
            if (!v) continue;
            const int64_t ty0 = std::max(ya, t.y), ty1 = std::min(yb, t.y + t.height);
            const int64_t tx0 = std::max(int64_t(std::floor(x0)), t.x), tx1 = std::min(int64_t(std::ceil(x0 + w)), t.x + t.width);
            for (int64_t y = ty0; y < ty1; ++y) {
                const double rr = std::floor((double(y) + 0.5 - y0) * sy);
                if (rr < double(r0) || rr >= double(r1)) continue;
                const long r = long(rr);
                for (int64_t x = tx0; x < tx1; ++x) {
                    const double cc = std::floor((double(x) + 0.5 - x0) * sx);
                    if (cc < 0 || cc >= double(cols)) continue;
                    const long c = long(cc);
                    const int64_t k = indexIn(m, t, x - t.x, y - t.y);
                    if (k < 0 || !std::isfinite(v[k])) continue;
                    sum[size_t(r) * size_t(cols) + size_t(c)] += double(v[k] * scale(t.matrix));
                    ++count[size_t(r) * size_t(cols) + size_t(c)];
                }
            }
        }
    });
    for (size_t i = 0; i < cells; ++i)
        if (count[i]) out[i] = float(sum[i] / double(count[i]));
    return out;
}

} // namespace ts::dynamics
