// Hinton diagrams of weight matrices: square size = |w|, colour = sign. A matrix larger than the picture is
// aggregated into blocks (level of detail): each block keeps the sum of |w|, the signed sum and its count, so
// the drawn size is the block's mean |w| and the colour the sign of its net weight.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ts::dynamics {

struct HintonBlocks {
    int64_t rows = 0, cols = 0;          // of the matrix
    int64_t blockRows = 1, blockCols = 1; // matrix entries per block
    int64_t gridRows = 0, gridCols = 0;
    std::vector<double> sumAbs, sum;     // [gridRows][gridCols]
    std::vector<int64_t> count;
    double maxMeanAbs = 0;                // the largest block mean |w| (the full square)
    double meanAbs(size_t b) const { return count[b] ? sumAbs[b] / double(count[b]) : 0.0; }
};

// A rows x cols matrix (row-major; a conv weight flattened per output channel: rows = out channels,
// cols = in channels x kernel) in at most maxRows x maxCols blocks. Non-finite weights are skipped.
HintonBlocks hintonBlocks(std::span<const float> w, int64_t rows, int64_t cols, int64_t maxRows, int64_t maxCols);

} // namespace ts::dynamics
