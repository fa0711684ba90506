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

// Conv-like layers keep channels in dimension 1 of a 3-D activation ([N, C, L]); everything else with a 3-D
// output is a sequence layer ([N, T, features]: Linear on tokens, LSTM, attention, LayerNorm), units last.
inline bool channelsFirst(const std::string& type) {
    const std::string t = lower(type);
    for (const char* k : {"conv", "batchnorm", "batch_norm", "pool", "instancenorm", "groupnorm"})
        if (t.find(k) != std::string::npos) return true;
    return false;
}

using ts::fillRect; // engine/core/image.hpp

} // namespace ts::explain::detail
