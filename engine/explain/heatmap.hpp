// Attribution maps as pictures (torch-free): the input, the map and the map over the input, side by side.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/image.hpp"

namespace ts::explain {

// One sample and its attribution, both in the sample's shape (per sample, batch dropped).
struct HeatmapSource {
    std::vector<int64_t> shape;     // {C, H, W} images, {D} vectors, {C, L} sequences, ...
    std::vector<float> input;       // product(shape) values
    std::vector<float> attribution; // product(shape) values
    bool signedMap = true;          // signed: sum over channels, diverging colours; else max |.|, sequential
    std::string title;              // first line over the panels (method, class), may be empty
    std::string subtitle;           // second line (input, prediction), may be empty
    std::string mapLabel = "map";   // under the middle panel ("relevance", "|gradient|")
};

// The map reduced to 2D: images sum (signed) or take the largest magnitude (unsigned) over channels; a
// vector is one row; other shapes fold to [C, H, W] as the 3D view does.
struct Map2D {
    int height = 0, width = 0;
    std::vector<float> values; // row-major
    float scale = 1.0f;        // the 99.5th percentile of |values| (colours saturate beyond it); 1 when all zero
};
Map2D reduceMap(const HeatmapSource& src);

// [input | map | map over the input] on a dark background, the title lines above, a label under each panel
// and a colour bar with the map's scale; each panel at least `cell` pixels on its long side (nearest-neighbour
// upscaling by a whole factor), short rows stretched to stay visible.
ImageRgba8 renderExplanation(const HeatmapSource& src, int cell = 256);

// LRP per layer: one tile per layer with a spatial output ([C, H, W], H and W > 1), the relevance summed over
// channels in diverging colours (each tile on its own scale), captioned with the layer's name and total.
struct LayerMap {
    std::string name;
    std::vector<int64_t> shape; // per sample
    std::vector<float> relevance;
    double sum = 0.0;
};
ImageRgba8 renderLayerMaps(const std::vector<LayerMap>& layers, const std::string& title, int tile = 128);

} // namespace ts::explain
