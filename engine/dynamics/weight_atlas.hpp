// Every weight of a model at once: each weight matrix tiled as an image (one cell per weight at scale 1),
// the tiles packed by layer into one atlas, and the atlas reduced to a grid of screen cells for any zoom (the
// mean of the weights under a cell when there are many, the weight itself when a cell holds one or less).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ts::dynamics {

// One parameter as a matrix: rows = outputs, cols = everything else (a vector is one row).
struct WeightMatrix {
    std::string name;
    int64_t rows = 0, cols = 0;
    std::vector<float> values; // rows x cols, row-major
};

// Where a matrix sits in the atlas (weight units). Long rows are folded into `folds` bands stacked below each
// other, so a [64 x 50176] matrix is an image of about 1800 x 1800 cells instead of a 50176-wide line:
// cell (x, y) of the tile holds weight (row y % rows, column (y / rows) * bandWidth + x), none past the end.
// Tall matrices (an embedding's [16000 x 512]) are folded the other way: `rowFolds` bands of `bandHeight` rows
// side by side, cell (x, y) holding (row (x / cols) * bandHeight + y, column x % cols).
struct AtlasTile {
    size_t matrix = 0;
    int64_t x = 0, y = 0, width = 0, height = 0;
    int64_t folds = 1, bandWidth = 0;
    int64_t rowFolds = 1, bandHeight = 0;
};
struct AtlasLayout {
    std::vector<AtlasTile> tiles;
    int64_t width = 0, height = 0;
};
// Shelf packing in the matrices' order, tiles `gap` cells apart, shelves at most about sqrt(aspect x area) wide
// (an atlas about `aspect` times as wide as it is tall, to fill a canvas of that shape), never narrower than the
// widest tile.
AtlasLayout layoutAtlas(std::span<const WeightMatrix> matrices, int64_t gap = 4, double aspect = 1.0);

// The weight under atlas cell (x, y), or null (a gap or past a folded row's end).
const float* weightAt(std::span<const WeightMatrix> matrices, const AtlasLayout& layout, int64_t x, int64_t y);

// The atlas region [x0, x0 + w) x [y0, y0 + h) (weight units, fractional) on a cols x rows grid of cells: each
// cell the mean of the finite weights inside it (NaN where there are none); when a cell spans at most one
// weight, the weight at its centre. `values` may give a different array per matrix (the same shapes: updates
// or gradients; a matrix whose array is missing or of another size is left out); empty: the weights.
// `scales`, when given (one per matrix), multiplies each matrix's values (each tensor on its own colour scale).
std::vector<float> rasterizeAtlas(std::span<const WeightMatrix> matrices, const AtlasLayout& layout, double x0,
                                  double y0, double w, double h, int cols, int rows,
                                  std::span<const std::vector<float>> values = {}, std::span<const float> scales = {});

} // namespace ts::dynamics
