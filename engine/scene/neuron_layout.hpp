// Neuron placement inside a layer: dense layers as a near-square grid, feature maps as C slabs of H x W
// side by side, in an order chosen by index, by a statistic, or by cluster (similar neurons sit together).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene {

enum class NeuronOrder : std::uint8_t {
    Index,     // PyTorch order
    Statistic, // descending LayerStats::value (NaN last); for maps, channels by their mean value
    Cluster,   // leaf order of a k-means hierarchy over activation profiles (channels: mean profile per map)
};

struct NeuronLayoutOptions {
    float spacing = 1.0f;       // distance between neighbouring neuron centres (world units)
    float radiusFactor = 0.4f;  // neuron radius = radiusFactor * spacing
    float mapGapFactor = 0.25f; // gap between feature maps, in units of the smaller map side (at least 1)
    NeuronOrder order = NeuronOrder::Index;
    std::uint32_t clusterBranching = 8; // k of the k-means hierarchy used by NeuronOrder::Cluster
    std::uint32_t seed = 1;
};

// Positions of one layer's neurons relative to the layer centre, in the layer's x-y plane (z = 0).
struct LocalLayout {
    std::vector<glm::vec3> position; // per neuron of the layer, PyTorch index order
    glm::vec3 halfExtent{0.0f};      // box holding every neuron sphere
    float radius = 0.0f;             // per-neuron radius
    std::vector<std::uint32_t> slotOrder; // slotOrder[k] = neuron (or channel, for maps) at grid slot k
};

// The rows x cols tile one slab of h x w neurons is drawn as. A slab that is one long row (a sequence layer
// [T, D]: T tokens of D features, a Transformer's or an RNN's; a Conv1d map [C, L]) is folded into a
// near-square tile, rows x cols = w with cols the smallest divisor of w from sqrt(w) to 2 sqrt(w), so such a
// layer is a block of tiles rather than a thread (768 features: 24 x 32). Neuron i of a slab sits at row
// i / cols, column i % cols. Other slabs (and rows without such a divisor) keep h x w.
std::pair<std::uint32_t, std::uint32_t> slabTile(std::uint32_t h, std::uint32_t w);

// `stats` may be null or partially filled; a missing statistic falls back to index order.
LocalLayout layoutLayerNeurons(const LayerSpec& layer, const LayerStats* stats, const NeuronLayoutOptions& opt);

// Leaf order of a k-means hierarchy (k = branching, leaves of at most `leafSize` rows) over `rows` rows of
// `dim` floats: similar rows end up adjacent. Deterministic for a given seed.
std::vector<std::uint32_t> clusterOrder(const float* data, std::uint32_t rows, std::uint32_t dim,
                                        std::uint32_t branching, std::uint32_t leafSize, std::uint32_t seed);

} // namespace ts::scene
