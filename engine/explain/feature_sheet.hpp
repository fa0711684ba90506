// Feature visualisation as a picture (torch-free): one row per unit, its activation-maximisation image and the
// real inputs that excite it most, each with its value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/image.hpp"

namespace ts::explain {

struct FeatureRow {
    std::string caption;                  // "unit 3", "class 3 Dress"
    std::vector<float> maximised;         // sample-shaped; empty when activation maximisation was not run
    double maximisedValue = 0.0;
    std::vector<std::vector<float>> top;  // sample-shaped inputs, most exciting first
    std::vector<double> topValues;
    std::vector<std::string> topCaptions; // under each input ("#123 Dress")
};

struct FeatureSheet {
    std::vector<int64_t> shape; // per sample: {C, H, W} images, {D} vectors, {C, L} sequences
    float lo = 0.0f, hi = 1.0f; // value range drawn black to white (the data's)
    std::string title, subtitle;
    std::vector<FeatureRow> rows;
};

// Dark background, the title lines, column headings ("maximised", "top 1", ...), then the rows. Images keep their
// aspect (nearest-neighbour, whole factors up to `cell` pixels on the long side, box-averaged down when larger);
// single-row samples are stretched to a strip. RGB for three channels, grey (channel mean) otherwise.
ImageRgba8 renderFeatureSheet(const FeatureSheet& sheet, int cell = 96);

} // namespace ts::explain
