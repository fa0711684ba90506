// A generated network-shaped neuron scene (layers of grids along z with smooth signed values), used by the
// `render` subcommand, the demo before a model is loaded, tests and benchmarks.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/math.hpp"
#include "shaders/shared/neuron_shared.h"

namespace ts::render {

struct SyntheticScene {
    std::vector<shader::NeuronInstance> neurons;
    std::vector<uint32_t> layerSizes;
    Aabb bounds;
    float valueMin = -1.0f, valueMax = 1.0f;
};

// About `totalNeurons` neurons in 5 layers (input image-like, hidden, output). Deterministic for a seed.
SyntheticScene makeSyntheticNetwork(uint32_t totalNeurons, uint32_t seed);

} // namespace ts::render
