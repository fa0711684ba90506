// Which connections are drawn: top-k dense connections per neuron (by |w| or |w * a|, or a threshold),
// conv channel-to-channel connections by kernel norm, and edges aggregated between clusters.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/cluster_tree.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene {

// A connection between two neurons (global ids). `weight` is signed: w, or w * a for contribution.
struct NeuronEdge {
    std::uint32_t src = 0, dst = 0;
    float weight = 0;
};

enum class EdgeMetric : std::uint8_t {
    AbsWeight,       // |w|
    AbsContribution, // |w * a_src| (a = LayerStats::activation of the source layer; |w| where absent)
};

struct EdgeSelectOptions {
    EdgeMetric metric = EdgeMetric::AbsWeight;
    std::uint32_t topK = 4;   // strongest incoming connections kept per target neuron (0: no top-k limit)
    float threshold = 0.0f;   // when > 0, keep only connections whose metric is at least this
};

// Edges of one dense connection. Rows (targets) are processed in parallel; output is ordered by target.
std::vector<NeuronEdge> selectDenseEdges(const NetworkDesc& desc, const NetworkData& data,
                                         const DenseWeights& weights, const EdgeSelectOptions& opt);
// All dense connections of `data`, concatenated.
std::vector<NeuronEdge> selectAllDenseEdges(const NetworkDesc& desc, const NetworkData& data,
                                            const EdgeSelectOptions& opt);

struct ChannelEdge {
    std::uint32_t fromLayer = 0, fromChannel = 0, toLayer = 0, toChannel = 0;
    float weight = 0; // kernel norm
};
// The topK largest kernel norms per output channel (0: all).
std::vector<ChannelEdge> selectChannelEdges(const NetworkDesc& desc, const KernelNorms& norms, std::uint32_t topK);

// An edge between two cluster-tree nodes: signed sum and absolute sum of the neuron edges it stands for.
struct NodeEdge {
    std::uint32_t srcNode = 0, dstNode = 0;
    float weight = 0, absWeight = 0;
    std::uint32_t count = 0;
};
// Each endpoint is replaced by its ancestor at `level` (0: layer root); parallel edges are merged.
std::vector<NodeEdge> aggregateEdges(const ClusterTree& tree, const std::vector<NeuronEdge>& edges,
                                     std::uint32_t level);
// Each endpoint is replaced by the node that draws it in the last LOD frame (LodSelector::nodeState: the
// nearest ancestor drawn as a proxy); endpoints drawn individually keep their leaf (count them via `count`).
std::vector<NodeEdge> aggregateEdgesToCut(const ClusterTree& tree, const std::vector<NeuronEdge>& edges,
                                          const std::vector<std::uint8_t>& nodeState);

// What the bundler needs of any edge: its two end points and the tree node each end hangs from.
struct BundleEdge {
    glm::vec3 a{0.0f}, b{0.0f};
    std::uint32_t srcNode = 0, dstNode = 0;
    float weight = 0;
};
std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<glm::vec3>& position,
                                      const std::vector<NeuronEdge>& edges);
std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<NodeEdge>& edges);
// Channel endpoints hang from the node of their feature map (the layer root when the tree has none).
std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<ChannelEdge>& edges);

} // namespace ts::scene
