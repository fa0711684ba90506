// Edge selection and aggregation (see edges.hpp).
#include "engine/scene/edges.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "engine/core/thread_pool.hpp"

namespace ts::scene {

std::vector<NeuronEdge> selectDenseEdges(const NetworkDesc& desc, const NetworkData& data,
                                         const DenseWeights& weights, const EdgeSelectOptions& opt) {
    const auto off = neuronOffsets(desc);
    const auto nIn = off[weights.from + 1] - off[weights.from];
    const auto nOut = off[weights.to + 1] - off[weights.to];
    const std::vector<float>* act = nullptr;
    if (opt.metric == EdgeMetric::AbsContribution && weights.from < data.layers.size() &&
        !data.layers[weights.from].activation.empty())
        act = &data.layers[weights.from].activation;
    const std::uint32_t k = opt.topK ? std::min(opt.topK, nIn) : nIn;
    std::vector<NeuronEdge> out(std::size_t(nOut) * k);
    std::vector<std::uint32_t> kept(nOut, 0);
    ThreadPool::global().parallelFor(nOut, 16, [&](std::size_t b, std::size_t e, unsigned) {
        std::vector<std::pair<float, std::uint32_t>> score(nIn);
        for (std::size_t row = b; row < e; ++row) {
            const float* w = weights.w.data() + row * nIn;
            std::uint32_t m = 0;
            for (std::uint32_t j = 0; j < nIn; ++j) {
                const float s = std::fabs(act ? w[j] * (*act)[j] : w[j]);
                if (std::isfinite(s) && (opt.threshold <= 0 || s >= opt.threshold)) score[m++] = {s, j};
            }
            const std::uint32_t keep = std::min(k, m);
            std::partial_sort(score.begin(), score.begin() + keep, score.begin() + m, [](auto& p, auto& q) {
                return p.first > q.first || (p.first == q.first && p.second < q.second);
            });
            for (std::uint32_t i = 0; i < keep; ++i) {
                const auto j = score[i].second;
                out[row * k + i] = {off[weights.from] + j, off[weights.to] + static_cast<std::uint32_t>(row),
                                    act ? w[j] * (*act)[j] : w[j]};
            }
            kept[row] = keep;
        }
    });
    // Compact rows that kept fewer than k.
    std::size_t n = 0;
    for (std::uint32_t row = 0; row < nOut; ++row)
        for (std::uint32_t i = 0; i < kept[row]; ++i)
            out[n++] = out[std::size_t(row) * k + i];
    out.resize(n);
    return out;
}

std::vector<NeuronEdge> selectAllDenseEdges(const NetworkDesc& desc, const NetworkData& data,
                                            const EdgeSelectOptions& opt) {
    std::vector<NeuronEdge> all;
    for (const auto& d : data.dense) {
        auto e = selectDenseEdges(desc, data, d, opt);
        all.insert(all.end(), e.begin(), e.end());
    }
    return all;
}

std::vector<ChannelEdge> selectChannelEdges(const NetworkDesc& desc, const KernelNorms& norms,
                                            std::uint32_t topK) {
    const std::uint32_t cin = foldShape(desc.layers[norms.from]).c, cout = foldShape(desc.layers[norms.to]).c;
    const std::uint32_t k = topK ? std::min(topK, cin) : cin;
    std::vector<ChannelEdge> out;
    std::vector<std::uint32_t> idx(cin);
    for (std::uint32_t o = 0; o < cout; ++o) {
        const float* row = norms.norms.data() + std::size_t(o) * cin;
        for (std::uint32_t i = 0; i < cin; ++i)
            idx[i] = i;
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](std::uint32_t a, std::uint32_t b) {
            return row[a] > row[b] || (row[a] == row[b] && a < b);
        });
        for (std::uint32_t i = 0; i < k; ++i)
            if (std::isfinite(row[idx[i]])) out.push_back({norms.from, idx[i], norms.to, o, row[idx[i]]});
    }
    return out;
}

namespace {
// Merges neuron edges whose endpoints map (through nodeOf) to the same pair of tree nodes.
template <class NodeOf>
std::vector<NodeEdge> mergeByNodes(const std::vector<NeuronEdge>& edges, NodeOf nodeOf) {
    std::unordered_map<std::uint64_t, std::uint32_t> index;
    std::vector<NodeEdge> out;
    for (const auto& e : edges) {
        const std::uint32_t s = nodeOf(e.src), d = nodeOf(e.dst);
        const std::uint64_t key = (std::uint64_t(s) << 32) | d;
        auto [it, fresh] = index.try_emplace(key, static_cast<std::uint32_t>(out.size()));
        if (fresh) out.push_back({s, d, 0.0f, 0.0f, 0});
        auto& ne = out[it->second];
        ne.weight += e.weight;
        ne.absWeight += std::fabs(e.weight);
        ++ne.count;
    }
    return out;
}
} // namespace

std::vector<NodeEdge> aggregateEdges(const ClusterTree& tree, const std::vector<NeuronEdge>& edges,
                                     std::uint32_t level) {
    return mergeByNodes(edges,
                        [&](std::uint32_t neuron) { return tree.ancestorAt(tree.leafOf[neuron], level); });
}

std::vector<NodeEdge> aggregateEdgesToCut(const ClusterTree& tree, const std::vector<NeuronEdge>& edges,
                                          const std::vector<std::uint8_t>& nodeState) {
    return mergeByNodes(edges, [&](std::uint32_t neuron) {
        std::uint32_t n = tree.leafOf[neuron];
        // Walk up to the highest ancestor drawn as a proxy; a leaf expanded into neurons (state 2) keeps its
        // leaf.
        std::uint32_t best = n;
        for (std::uint32_t a = n; a != ~0u; a = tree.nodes[a].parent)
            if (nodeState[a] == 1) best = a;
        return best;
    });
}

std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<glm::vec3>& position,
                                      const std::vector<NeuronEdge>& edges) {
    std::vector<BundleEdge> out(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const auto& e = edges[i];
        out[i] = {position[e.src], position[e.dst], tree.leafOf[e.src], tree.leafOf[e.dst], e.weight};
    }
    return out;
}

std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<NodeEdge>& edges) {
    std::vector<BundleEdge> out(edges.size());
    for (std::size_t i = 0; i < edges.size(); ++i) {
        const auto& e = edges[i];
        out[i] = {tree.nodes[e.srcNode].center, tree.nodes[e.dstNode].center, e.srcNode, e.dstNode, e.weight};
    }
    return out;
}

std::vector<BundleEdge> toBundleEdges(const ClusterTree& tree, const std::vector<ChannelEdge>& edges) {
    std::vector<BundleEdge> out;
    out.reserve(edges.size());
    auto nodeOf = [&](std::uint32_t layer, std::uint32_t ch) {
        const auto& cn = tree.channelNode[layer];
        return ch < cn.size() && cn[ch] != ~0u ? cn[ch] : tree.layerRoot[layer];
    };
    for (const auto& e : edges) {
        const auto s = nodeOf(e.fromLayer, e.fromChannel), d = nodeOf(e.toLayer, e.toChannel);
        out.push_back({tree.nodes[s].center, tree.nodes[d].center, s, d, e.weight});
    }
    return out;
}

} // namespace ts::scene
