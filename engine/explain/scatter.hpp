// A labelled 2D scatter plot as a picture (torch-free): points coloured by class, axis titles, a title and a
// legend. For projections of activations (PCA, t-SNE).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/core/image.hpp"

namespace ts::explain {

struct ScatterSource {
    std::vector<float> x, y;         // one entry per point
    std::vector<int64_t> labels;     // class per point (>= 0); -1 draws grey
    std::vector<std::string> classNames; // legend entries by class index (may be shorter: numbers then)
    std::string title, subtitle, xTitle, yTitle;
};

// The colour of class c: Tableau's ten categorical colours, then hues spaced by the golden angle.
Rgb8 classColour(int64_t c);

ImageRgba8 renderScatter(const ScatterSource& src, int width = 960, int height = 720);

} // namespace ts::explain
