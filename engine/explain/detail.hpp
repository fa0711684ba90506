// Internal to engine/explain: small helpers its translation units share.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

#include "engine/core/colormap.hpp"
#include "engine/core/error.hpp"
#include "engine/core/image.hpp"

namespace ts::explain::detail {

inline Error usage(std::string message) {
    return makeError(ErrorKind::Usage, std::move(message));
}

inline std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Module classes and ops as capture names them ("Linear", "Conv2d", "BatchNorm2d", "batch_norm").
inline bool isWeightLayer(const std::string& type) {
    const std::string t = lower(type);
    return t == "linear" || t == "conv1d" || t == "conv2d" || t == "conv3d";
}

inline bool isBatchNorm(const std::string& type) {
    const std::string t = lower(type);
    return t == "batchnorm1d" || t == "batchnorm2d" || t == "batchnorm3d" || t == "batch_norm";
}

// An opaque rectangle in a CPU-drawn picture, clipped to it.
inline void fillRect(ImageRgba8& img, int x0, int y0, int w, int h, Rgb8 c) {
    for (int y = std::max(0, y0); y < std::min(img.height, y0 + h); ++y)
        for (int x = std::max(0, x0); x < std::min(img.width, x0 + w); ++x) {
            std::uint8_t* d = img.at(x, y);
            d[0] = c.r, d[1] = c.g, d[2] = c.b, d[3] = 255;
        }
}

} // namespace ts::explain::detail
