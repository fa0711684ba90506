// Per-layer cluster hierarchy over neurons: the level-of-detail tree, the bounding-sphere hierarchy for
// picking, and the tree that hierarchical edge bundling routes through.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene {

// One cluster. Members are order[begin, end) (global neuron ids); children are nodes
// [firstChild, firstChild + childCount); childCount == 0 marks a leaf.
struct ClusterNode {
    glm::vec3 center{0.0f}; // mean of member positions
    float boundRadius = 0;  // sphere around `center` holding every member sphere
    float value = 0;        // mean of members' finite values (NaN when none is finite)
    // What a cluster is drawn with: the root mean square of its members' values with the sign of their mean.
    // A plain mean of signed values cancels to 0, the white middle of a diverging colormap, so far feature
    // maps came out as white blobs; this keeps how strong the members are.
    float display = 0;
    std::uint32_t begin = 0, end = 0;
    std::uint32_t firstChild = 0;
    std::uint16_t childCount = 0;
    std::uint16_t level = 0; // 0 at the layer root
    std::uint32_t layer = 0;
    std::uint32_t parent = ~0u; // ~0u at the layer root
};

enum class ClusterMode : std::uint8_t {
    Auto,    // k-means on profiles where a dense layer has them, spatial otherwise
    Spatial, // k-d splits of positions; maps split by channel first, then by H x W quadrants
    Profile, // k-means on activation profiles (falls back to spatial for layers without profiles)
};

struct ClusterOptions {
    ClusterMode mode = ClusterMode::Auto;
    std::uint32_t branching = 8; // children per node (k of k-means, 2^3 for k-d splits)
    std::uint32_t leafSize = 16; // at most this many neurons per leaf
    std::uint32_t seed = 1;
};

struct ClusterTree {
    std::vector<ClusterNode> nodes;
    std::vector<std::uint32_t> order;     // global neuron ids, each node's members contiguous
    std::vector<std::uint32_t> layerRoot; // root node of each layer
    std::vector<std::uint32_t> leafOf;    // per global neuron: its leaf node
    // Per layer, per channel: the node holding exactly that channel's map (spatial mode on maps), or ~0u.
    std::vector<std::vector<std::uint32_t>> channelNode;

    // Recomputes centers and bounding spheres bottom-up from neuron positions and radii.
    void computeBounds(const std::vector<glm::vec3>& position, const std::vector<float>& radius);
    // Recomputes node values bottom-up (mean of finite member values). O(neurons), parallel.
    void computeValues(const std::vector<float>& value);
    // Ancestor of `node` at `level` (or `node` itself when it is shallower).
    std::uint32_t ancestorAt(std::uint32_t node, std::uint32_t level) const;
};

// Builds the tree of every layer. `position` holds every neuron's world position (used by spatial splits);
// `data` supplies profiles for k-means (may be empty).
ClusterTree buildClusterTree(const NetworkDesc& desc, const NetworkData& data,
                             const std::vector<glm::vec3>& position, const ClusterOptions& opt);

// K-means split used by the tree and by NeuronOrder::Cluster: reorders ids[0, count) so that each of at most
// k groups is contiguous (groups of similar rows data[id * dim ...]) and returns the group boundaries
// (first 0, last count). Falls back to equal chunks when all rows coincide, so every split makes progress.
std::vector<std::uint32_t> kmeansSplit(const float* data, std::uint32_t dim, std::uint32_t* ids,
                                       std::uint32_t count, std::uint32_t k, std::uint64_t seed);

} // namespace ts::scene
