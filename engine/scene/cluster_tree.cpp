// Cluster hierarchy per layer: k-means on activation profiles or k-d splits of positions (see cluster_tree.hpp).
#include "engine/scene/cluster_tree.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>

#include "engine/core/thread_pool.hpp"

namespace ts::scene {

namespace {

struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        return s;
    }
    std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
};

float dist2(const float* a, const float* b, std::uint32_t dim) {
    float d = 0;
    for (std::uint32_t i = 0; i < dim; ++i) {
        const float t = a[i] - b[i];
        d += t * t;
    }
    return d;
}

// Equal chunks: the fallback that guarantees progress when rows cannot be told apart.
std::vector<std::uint32_t> equalChunks(std::uint32_t count, std::uint32_t k) {
    k = std::min(k, count);
    std::vector<std::uint32_t> b(k + 1);
    for (std::uint32_t g = 0; g <= k; ++g) b[g] = static_cast<std::uint32_t>(std::uint64_t(count) * g / k);
    return b;
}

} // namespace

std::vector<std::uint32_t> kmeansSplit(const float* data, std::uint32_t dim, std::uint32_t* ids,
                                       std::uint32_t count, std::uint32_t k, std::uint64_t seed) {
    if (count <= k) return equalChunks(count, count);
    Rng rng{seed * 0x9E3779B97F4A7C15ull + 1};
    // Fit centres on a sample (mini-batch k-means): cost per split stays O(count * k * dim) for the assignment.
    const std::uint32_t sampleN = std::min<std::uint32_t>(count, 2048);
    std::vector<std::uint32_t> sample(sampleN);
    for (std::uint32_t i = 0; i < sampleN; ++i)
        sample[i] = ids[static_cast<std::uint32_t>(std::uint64_t(i) * count / sampleN)];
    auto row = [&](std::uint32_t id) { return data + std::size_t(id) * dim; };
    // k-means++ seeding.
    std::vector<float> centre(std::size_t(k) * dim);
    std::vector<float> best(sampleN, std::numeric_limits<float>::max());
    std::uint32_t chosen = 0;
    std::copy_n(row(sample[rng.below(sampleN)]), dim, centre.data());
    chosen = 1;
    for (; chosen < k; ++chosen) {
        double total = 0;
        for (std::uint32_t i = 0; i < sampleN; ++i) {
            best[i] = std::min(best[i], dist2(row(sample[i]), &centre[std::size_t(chosen - 1) * dim], dim));
            total += best[i];
        }
        if (!(total > 0)) break; // every sample coincides with a centre
        double pick = double(rng.next() >> 11) / double(1ull << 53) * total;
        std::uint32_t i = 0;
        for (; i + 1 < sampleN; ++i) {
            pick -= best[i];
            if (pick <= 0) break;
        }
        std::copy_n(row(sample[i]), dim, &centre[std::size_t(chosen) * dim]);
    }
    const std::uint32_t kk = chosen;
    if (kk < 2) return equalChunks(count, k);
    centre.resize(std::size_t(kk) * dim);
    auto nearest = [&](const float* r) {
        std::uint32_t bi = 0;
        float bd = std::numeric_limits<float>::max();
        for (std::uint32_t c = 0; c < kk; ++c) {
            const float d = dist2(r, &centre[std::size_t(c) * dim], dim);
            if (d < bd) bd = d, bi = c;
        }
        return bi;
    };
    std::vector<double> sum(std::size_t(kk) * dim);
    std::vector<std::uint32_t> cnt(kk);
    for (int iter = 0; iter < 8; ++iter) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::fill(cnt.begin(), cnt.end(), 0u);
        for (std::uint32_t i = 0; i < sampleN; ++i) {
            const auto c = nearest(row(sample[i]));
            ++cnt[c];
            for (std::uint32_t d = 0; d < dim; ++d) sum[std::size_t(c) * dim + d] += row(sample[i])[d];
        }
        for (std::uint32_t c = 0; c < kk; ++c)
            if (cnt[c])
                for (std::uint32_t d = 0; d < dim; ++d)
                    centre[std::size_t(c) * dim + d] = float(sum[std::size_t(c) * dim + d] / cnt[c]);
    }
    // Chain the centres nearest-neighbour first, from the one farthest from their mean, so that clusters
    // that are close in profile space also end up adjacent in the order (a layout ordered by cluster
    // keeps similar neurons together even when k exceeds the number of natural groups).
    {
        std::vector<float> mean(dim, 0.0f);
        for (std::uint32_t c = 0; c < kk; ++c)
            for (std::uint32_t d = 0; d < dim; ++d) mean[d] += centre[std::size_t(c) * dim + d] / float(kk);
        std::vector<std::uint32_t> chain;
        std::vector<bool> used(kk, false);
        std::uint32_t cur = 0;
        float far = -1;
        for (std::uint32_t c = 0; c < kk; ++c) {
            const float d = dist2(&centre[std::size_t(c) * dim], mean.data(), dim);
            if (d > far) far = d, cur = c;
        }
        for (;;) {
            chain.push_back(cur);
            used[cur] = true;
            if (chain.size() == kk) break;
            float bd = std::numeric_limits<float>::max();
            std::uint32_t next = 0;
            for (std::uint32_t c = 0; c < kk; ++c) {
                if (used[c]) continue;
                const float d = dist2(&centre[std::size_t(c) * dim], &centre[std::size_t(cur) * dim], dim);
                if (d < bd) bd = d, next = c;
            }
            cur = next;
        }
        std::vector<float> reordered(centre.size());
        for (std::uint32_t i = 0; i < kk; ++i)
            std::copy_n(&centre[std::size_t(chain[i]) * dim], dim, &reordered[std::size_t(i) * dim]);
        centre.swap(reordered);
    }
    // Assign every row, in parallel for large ranges.
    std::vector<std::uint32_t> label(count);
    auto assign = [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t i = b; i < e; ++i) label[i] = nearest(row(ids[i]));
    };
    if (std::uint64_t(count) * kk * dim > (1u << 20)) ThreadPool::global().parallelFor(count, 4096, assign);
    else assign(0, count, 0);
    // Counting sort by label; empty groups vanish.
    std::vector<std::uint32_t> start(kk + 1, 0);
    for (auto l : label) ++start[l + 1];
    std::vector<std::uint32_t> bounds{0};
    for (std::uint32_t c = 0; c < kk; ++c) {
        if (start[c + 1] == count) return equalChunks(count, k); // one group: no progress
        start[c + 1] += start[c];
        if (start[c + 1] != bounds.back()) bounds.push_back(start[c + 1]);
    }
    std::vector<std::uint32_t> sorted(count);
    std::vector<std::uint32_t> cursor(start.begin(), start.end() - 1);
    for (std::uint32_t i = 0; i < count; ++i) sorted[cursor[label[i]]++] = ids[i];
    std::copy(sorted.begin(), sorted.end(), ids);
    return bounds;
}

namespace {

// K-d split of items into up to `parts` (a power of two) pieces by medians along the longest axis.
template <class PosFn>
std::vector<std::uint32_t> kdSplit(std::uint32_t* items, std::uint32_t count, std::uint32_t parts,
                                   std::uint32_t minPiece, PosFn pos) {
    std::vector<std::uint32_t> bounds{0, count};
    for (std::uint32_t round = 1; round < parts; round *= 2) {
        std::vector<std::uint32_t> next{0};
        for (std::size_t s = 0; s + 1 < bounds.size(); ++s) {
            const auto b = bounds[s], e = bounds[s + 1];
            if (e - b > minPiece && e - b >= 2) {
                Aabb box;
                for (auto i = b; i < e; ++i) box.extend(pos(items[i]));
                const auto ext = box.extent();
                const int axis = ext.x >= ext.y ? (ext.x >= ext.z ? 0 : 2) : (ext.y >= ext.z ? 1 : 2);
                const auto mid = b + (e - b) / 2;
                std::nth_element(items + b, items + mid, items + e,
                                 [&](std::uint32_t p, std::uint32_t q) { return pos(p)[axis] < pos(q)[axis]; });
                next.push_back(mid);
            }
            next.push_back(e);
        }
        bounds.swap(next);
    }
    return bounds;
}

struct Work {
    std::uint32_t node;
    bool wholeChannels; // the range is a union of whole feature maps, grouped by channel
};

} // namespace

ClusterTree buildClusterTree(const NetworkDesc& desc, const NetworkData& data,
                             const std::vector<glm::vec3>& position, const ClusterOptions& opt) {
    ClusterTree t;
    const auto off = neuronOffsets(desc);
    const auto L = static_cast<std::uint32_t>(desc.layers.size());
    t.order.resize(off[L]);
    std::iota(t.order.begin(), t.order.end(), 0u);
    t.layerRoot.resize(L);
    t.channelNode.resize(L);
    t.leafOf.assign(off[L], 0);
    const std::uint32_t branching = std::clamp(opt.branching, 2u, 64u); // lod.cpp handles up to 256 children
    std::uint32_t kdParts = 1;
    while (kdParts * 2 <= branching) kdParts *= 2;
    const std::uint32_t leafSize = std::max(opt.leafSize, 1u);
    auto posOf = [&](std::uint32_t id) -> const glm::vec3& { return position[id]; };

    for (std::uint32_t l = 0; l < L; ++l) {
        const auto& layer = desc.layers[l];
        const LayerStats* stats = l < data.layers.size() ? &data.layers[l] : nullptr;
        const bool hasProfile = stats && !stats->profile.empty() && stats->probeCount > 0;
        const bool maps = layer.shape.size() >= 2;
        const bool useProfile = hasProfile && (opt.mode == ClusterMode::Profile ||
                                               (opt.mode == ClusterMode::Auto && !maps));
        const Chw chw = foldShape(layer);
        const std::uint32_t HW = chw.h * chw.w;
        // Channel blocks are contiguous only in [C, H, W] order; a channels-last layer is split by position.
        const bool chanSplit = maps && !useProfile && !chw.channelsLast;
        t.channelNode[l].assign(chanSplit ? chw.c : 0, ~0u);

        ClusterNode root;
        root.begin = off[l];
        root.end = off[l + 1];
        root.layer = l;
        t.layerRoot[l] = static_cast<std::uint32_t>(t.nodes.size());
        t.nodes.push_back(root);
        std::deque<Work> queue{{t.layerRoot[l], chanSplit && chw.c > 1}};
        if (chanSplit && chw.c == 1) t.channelNode[l][0] = t.layerRoot[l];
        std::vector<std::uint32_t> scratch;
        while (!queue.empty()) {
            const Work w = queue.front();
            queue.pop_front();
            const auto b = t.nodes[w.node].begin, e = t.nodes[w.node].end;
            const auto n = e - b;
            std::uint32_t* ids = t.order.data() + b;
            std::vector<std::uint32_t> bounds;
            std::vector<bool> childWhole;
            if (w.wholeChannels) {
                // Split the maps (items = channel blocks) by their centres, then rewrite the range.
                const std::uint32_t chans = n / HW;
                std::vector<std::uint32_t> chan(chans);
                for (std::uint32_t i = 0; i < chans; ++i) chan[i] = (ids[i * HW] - off[l]) / HW;
                std::vector<glm::vec3> centre(chw.c);
                for (auto c : chan)
                    centre[c] = 0.5f * (position[off[l] + c * HW] + position[off[l] + c * HW + HW - 1]);
                auto cb = kdSplit(chan.data(), chans, kdParts, 1, [&](std::uint32_t c) -> const glm::vec3& {
                    return centre[c];
                });
                scratch.resize(n);
                for (std::uint32_t i = 0; i < chans; ++i)
                    for (std::uint32_t j = 0; j < HW; ++j) scratch[i * HW + j] = off[l] + chan[i] * HW + j;
                std::copy(scratch.begin(), scratch.begin() + n, ids);
                for (auto& x : cb) x *= HW;
                bounds = std::move(cb);
                for (std::size_t g = 0; g + 1 < bounds.size(); ++g) childWhole.push_back(bounds[g + 1] - bounds[g] > HW);
            } else if (n <= leafSize) {
                continue;
            } else if (useProfile) {
                // Profiles are indexed by the neuron's index within its layer.
                for (std::uint32_t i = 0; i < n; ++i) ids[i] -= off[l];
                bounds = kmeansSplit(stats->profile.data(), stats->probeCount, ids, n, branching,
                                     opt.seed + std::uint64_t(w.node) * 7919u);
                for (std::uint32_t i = 0; i < n; ++i) ids[i] += off[l];
            } else {
                bounds = kdSplit(ids, n, kdParts, leafSize, posOf);
            }
            childWhole.resize(bounds.size() - 1, false);
            if (bounds.size() <= 2) continue; // could not split: stays a leaf
            const auto first = static_cast<std::uint32_t>(t.nodes.size());
            t.nodes[w.node].firstChild = first;
            t.nodes[w.node].childCount = static_cast<std::uint16_t>(bounds.size() - 1);
            for (std::size_t g = 0; g + 1 < bounds.size(); ++g) {
                ClusterNode c;
                c.begin = b + bounds[g];
                c.end = b + bounds[g + 1];
                c.layer = l;
                c.parent = w.node;
                c.level = static_cast<std::uint16_t>(t.nodes[w.node].level + 1);
                const auto idx = static_cast<std::uint32_t>(t.nodes.size());
                t.nodes.push_back(c);
                if (w.wholeChannels && !childWhole[g])
                    t.channelNode[l][(t.order[c.begin] - off[l]) / HW] = idx;
                queue.push_back({idx, bool(childWhole[g])});
            }
            (void)first;
        }
    }
    for (std::uint32_t i = 0; i < t.nodes.size(); ++i)
        if (t.nodes[i].childCount == 0)
            for (auto k = t.nodes[i].begin; k < t.nodes[i].end; ++k) t.leafOf[t.order[k]] = i;
    std::vector<float> radius(position.size(), 0.0f);
    t.computeBounds(position, radius);
    return t;
}

void ClusterTree::computeBounds(const std::vector<glm::vec3>& position, const std::vector<float>& radius) {
    const auto N = static_cast<std::uint32_t>(nodes.size());
    ThreadPool::global().parallelFor(N, 256, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t i = b; i < e; ++i) {
            auto& nd = nodes[i];
            if (nd.childCount) continue;
            glm::dvec3 acc(0.0);
            for (auto k = nd.begin; k < nd.end; ++k) acc += glm::dvec3(position[order[k]]);
            nd.center = glm::vec3(acc / double(std::max(1u, nd.end - nd.begin)));
            float r = 0;
            for (auto k = nd.begin; k < nd.end; ++k)
                r = std::max(r, glm::length(position[order[k]] - nd.center) + radius[order[k]]);
            nd.boundRadius = r;
        }
    });
    // Children have larger indices than their parent, so a reverse sweep sees children first.
    for (std::uint32_t i = N; i-- > 0;) {
        auto& nd = nodes[i];
        if (!nd.childCount) continue;
        glm::vec3 c(0.0f);
        for (std::uint32_t k = 0; k < nd.childCount; ++k) {
            const auto& ch = nodes[nd.firstChild + k];
            c += ch.center * float(ch.end - ch.begin);
        }
        nd.center = c / float(nd.end - nd.begin);
        float r = 0;
        for (std::uint32_t k = 0; k < nd.childCount; ++k) {
            const auto& ch = nodes[nd.firstChild + k];
            r = std::max(r, glm::length(ch.center - nd.center) + ch.boundRadius);
        }
        nd.boundRadius = r;
    }
}

void ClusterTree::computeValues(const std::vector<float>& value) {
    const auto N = static_cast<std::uint32_t>(nodes.size());
    std::vector<double> sum(N, 0.0), sumSq(N, 0.0);
    std::vector<std::uint32_t> finite(N, 0);
    ThreadPool::global().parallelFor(N, 256, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t i = b; i < e; ++i) {
            const auto& nd = nodes[i];
            if (nd.childCount) continue;
            for (auto k = nd.begin; k < nd.end; ++k) {
                const float v = value[order[k]];
                if (std::isfinite(v)) sum[i] += v, sumSq[i] += double(v) * v, ++finite[i];
            }
        }
    });
    for (std::uint32_t i = N; i-- > 0;) {
        auto& nd = nodes[i];
        for (std::uint32_t k = 0; k < nd.childCount; ++k) {
            sum[i] += sum[nd.firstChild + k];
            sumSq[i] += sumSq[nd.firstChild + k];
            finite[i] += finite[nd.firstChild + k];
        }
        if (!finite[i]) {
            nd.value = nd.display = std::numeric_limits<float>::quiet_NaN();
            continue;
        }
        nd.value = float(sum[i] / finite[i]);
        nd.display = std::copysign(float(std::sqrt(sumSq[i] / finite[i])), nd.value);
    }
}

std::uint32_t ClusterTree::ancestorAt(std::uint32_t node, std::uint32_t level) const {
    while (nodes[node].level > level && nodes[node].parent != ~0u) node = nodes[node].parent;
    return node;
}

} // namespace ts::scene
