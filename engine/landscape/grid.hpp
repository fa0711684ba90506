// Grids and surfaces: the evaluation lattice (as the reference scripts spell it, MIN:MAX:N) and the values
// computed on it. Torch-free, so the mesh builder, the HDF5 code and the renderer can use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::landscape {

// One axis: `count` points evenly spaced over [min, max] (numpy.linspace), count >= 1.
struct GridAxis {
    double min = -1.0;
    double max = 1.0;
    int64_t count = 51;

    std::vector<double> coordinates() const;
};

// A 2D grid, or a 1D one when y is absent (the reference scripts' "--x only" plots).
struct GridSpec {
    GridAxis x;
    std::optional<GridAxis> y = GridAxis{};

    bool is2d() const { return y.has_value(); }
    int64_t pointCount() const { return x.count * (y ? y->count : 1); }
};

// "MIN:MAX:N" (e.g. "-1:1:51"). Errors name the text and the expected form.
Expected<GridAxis> parseAxis(const std::string& text);
// Rejects empty or non-finite grids with a one-line message.
Status validateGrid(const GridSpec& grid);

// Values on a grid. Flat index k = iy * nx + ix (x fastest), which is also the order the reference scripts
// fill their arrays in (numpy.meshgrid(x, y) raveled), so files round-trip without transposes.
struct Surface {
    std::vector<double> x;         // coordinates along the x direction
    std::vector<double> y;         // empty for a 1D surface
    std::vector<double> loss;      // mean cross-entropy; NaN where the model produced NaN
    std::vector<double> acc;       // accuracy in percent (as the reference scripts store it)
    std::vector<uint8_t> computed; // 1 where loss/acc hold a value (progressive or cancelled runs)

    int64_t nx() const { return static_cast<int64_t>(x.size()); }
    int64_t ny() const { return y.empty() ? 1 : static_cast<int64_t>(y.size()); }
    bool is2d() const { return !y.empty(); }
    size_t index(int64_t ix, int64_t iy) const { return static_cast<size_t>(iy * nx() + ix); }
    bool complete() const;

    // An empty surface on the grid: every value NaN, nothing computed.
    static Surface onGrid(const GridSpec& grid);
};

// Coarse-to-fine order for progressive refinement: lattice strides (largest first, ending with 1) and,
// for each level, the flat indices first computed at that level. Every index appears exactly once.
struct RefinementPlan {
    std::vector<int64_t> strides;
    std::vector<std::vector<int64_t>> levels;
};
RefinementPlan planRefinement(int64_t nx, int64_t ny, bool progressive);

// A display copy of a partly computed surface: each missing point takes the value of the computed lattice
// point at (ix - ix % stride, iy - iy % stride), where `stride` is that of the last finished level.
Surface previewFilled(const Surface& partial, int64_t stride);

// The loss barrier of the straight line between two models (a 1D surface along model2 - model, which holds
// both ends at x = 0 and x = 1): the largest excess of the loss over the line between the ends' losses,
// max over 0 <= x <= 1 of L(x) - ((1 - x) L(0) + x L(1)) (Frankle et al. 2020; 0 when the path is convex or
// linear). Absent when the surface is 2D, lacks either end, or a point in between is NaN.
struct Barrier {
    double height = 0; // loss units
    double at = 0;     // x of the highest point above the line
    double loss = 0;   // L(at)
    double start = 0, end = 0; // L(0), L(1)
    int64_t points = 0; // grid points in [0, 1]
};
std::optional<Barrier> linearBarrier(const Surface& surface);

} // namespace ts::landscape
