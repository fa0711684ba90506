// Block aggregation for Hinton diagrams: one pass over the matrix, row by row.
#include "engine/dynamics/hinton.hpp"

#include <algorithm>
#include <cmath>

namespace ts::dynamics {

HintonBlocks hintonBlocks(std::span<const float> w, int64_t rows, int64_t cols, int64_t maxRows, int64_t maxCols) {
    HintonBlocks h;
    if (rows <= 0 || cols <= 0 || int64_t(w.size()) < rows * cols) return h;
    h.rows = rows;
    h.cols = cols;
    h.blockRows = (rows + std::max<int64_t>(maxRows, 1) - 1) / std::max<int64_t>(maxRows, 1);
    h.blockCols = (cols + std::max<int64_t>(maxCols, 1) - 1) / std::max<int64_t>(maxCols, 1);
    h.gridRows = (rows + h.blockRows - 1) / h.blockRows;
    h.gridCols = (cols + h.blockCols - 1) / h.blockCols;
    const size_t cells = size_t(h.gridRows * h.gridCols);
    h.sumAbs.assign(cells, 0.0);
    h.sum.assign(cells, 0.0);
    h.count.assign(cells, 0);
    for (int64_t r = 0; r < rows; ++r) {
        const size_t base = size_t(r / h.blockRows * h.gridCols);
        const float* row = w.data() + r * cols;
        for (int64_t c = 0; c < cols; ++c) {
            const float v = row[c];
            if (!std::isfinite(v)) continue;
            const size_t b = base + size_t(c / h.blockCols);
            h.sumAbs[b] += std::fabs(double(v));
            h.sum[b] += double(v);
            ++h.count[b];
        }
    }
    for (size_t b = 0; b < cells; ++b)
        h.maxMeanAbs = std::max(h.maxMeanAbs, h.meanAbs(b));
    return h;
}

} // namespace ts::dynamics
