// Generated networks with plausible statistics, for benchmarks, tests and the renderer's demo scenes when no
// model is loaded: a ~1.1M-neuron VGG-like CNN and a small MLP with dense weights.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scene/network.hpp"

namespace ts::scene {

struct SyntheticNetwork {
    NetworkDesc desc;
    NetworkData data;
};

// n uniform values in [lo, hi) from a seed.
std::vector<float> uniformValues(std::size_t n, std::uint32_t seed, float lo, float hi);

// ~1.1M neurons: conv feature maps from 3x128x128 down to 256x16x16, then a dense head 4096-1024-10 whose
// layers carry activation profiles over 16 probes. Values and active fractions are uniform random.
SyntheticNetwork makeVggLikeNetwork();

// input [1, 28, 28] then dense layers of the given widths, with N(0, 1) weights and tanh(N(0, 1)) values.
SyntheticNetwork makeMlpNetwork(const std::vector<std::int64_t>& widths, std::uint32_t seed);

} // namespace ts::scene
