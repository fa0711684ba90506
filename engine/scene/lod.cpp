// Level-of-detail selection (see lod.hpp): a greedy refinement of the cluster tree, largest projected cluster
// first (a bucket queue on log2 of the pixel radius), then a parallel pass that writes the instances.
#include "engine/scene/lod.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "engine/core/thread_pool.hpp"

namespace ts::scene {

std::vector<std::uint8_t> detectOutliers(const NetworkDesc& desc, const NetworkData& data,
                                         const std::vector<float>& value, const OutlierOptions& opt) {
    const auto off = neuronOffsets(desc);
    std::vector<std::uint8_t> flags(off.back(), 0);
    for (std::uint32_t l = 0; l < desc.layers.size(); ++l) {
        const auto b = off[l], e = off[l + 1];
        std::vector<float> finite;
        finite.reserve(e - b);
        for (auto i = b; i < e; ++i) {
            const float v = i < value.size() ? value[i] : 0.0f;
            if (!std::isfinite(v)) flags[i] |= kInstanceNaN;
            else finite.push_back(v);
        }
        if (l < data.layers.size() && !data.layers[l].activeFraction.empty()) {
            const auto& af = data.layers[l].activeFraction;
            for (auto i = b; i < e; ++i)
                if (af[i - b] <= opt.deadFraction) flags[i] |= kInstanceDead;
        }
        if (finite.size() < 3 || value.size() < e) continue;
        // Robust z-score: median and MAD (scaled to sigma); mean absolute deviation when the MAD is zero.
        auto mid = finite.begin() + finite.size() / 2;
        std::nth_element(finite.begin(), mid, finite.end());
        const float median = *mid;
        double meanAbs = 0;
        for (auto& v : finite) {
            v = std::fabs(v - median);
            meanAbs += v;
        }
        meanAbs /= double(finite.size());
        std::nth_element(finite.begin(), mid, finite.end());
        double scale = 1.4826 * double(*mid);
        if (!(scale > 0)) scale = 1.2533 * meanAbs; // sigma from the mean absolute deviation of a normal
        if (!(scale > 0)) continue;
        for (auto i = b; i < e; ++i)
            if (std::isfinite(value[i]) && std::fabs(value[i] - median) > opt.extremeZ * scale)
                flags[i] |= kInstanceExtreme;
    }
    return flags;
}

LodSelector::LodSelector(const ClusterTree& tree, const std::vector<glm::vec3>& position,
                         const std::vector<float>& radius)
    : m_tree(tree), m_position(position), m_radius(radius), m_forcedFlag(position.size(), 0),
      m_nodeState(tree.nodes.size(), 0) {}

void LodSelector::setOutliers(const std::vector<std::uint8_t>& flags) {
    m_outlierFlags = flags;
    m_outlierFlags.resize(m_position.size(), 0);
    rebuildForced();
}

void LodSelector::setSelection(const std::vector<std::uint32_t>& neurons) {
    m_selection.clear();
    for (auto n : neurons)
        if (n < m_position.size()) m_selection.push_back(n);
    rebuildForced();
}

void LodSelector::setHiddenLayers(const std::vector<bool>& hidden, const std::vector<SceneInstance>& groupProxies) {
    m_hiddenLayer = hidden;
    m_groupProxies = groupProxies;
}

void LodSelector::rebuildForced() {
    for (auto n : m_forced) m_forcedFlag[n] = 0;
    m_forced.clear();
    // Outliers are drawn whatever the budget, but not millions of them (a ReLU network on random inputs has
    // millions of dead units): NaN/Inf first, then an even sample of the rest, kMaxForcedOutliers in all.
    constexpr std::uint32_t kMaxForcedOutliers = 65536;
    if (!m_outlierFlags.empty()) {
        std::uint64_t nan = 0, other = 0;
        for (auto f : m_outlierFlags) {
            nan += (f & kInstanceNaN) != 0;
            other += f && !(f & kInstanceNaN);
        }
        const std::uint64_t room = nan >= kMaxForcedOutliers ? 0 : kMaxForcedOutliers - nan;
        const std::uint64_t stride = other > room ? (other + room - 1) / std::max<std::uint64_t>(room, 1) : 1;
        std::uint64_t seen = 0;
        for (std::uint32_t i = 0; i < m_outlierFlags.size(); ++i) {
            const auto f = m_outlierFlags[i];
            if (!f) continue;
            const bool isNan = f & kInstanceNaN;
            if (isNan ? m_forced.size() >= kMaxForcedOutliers : (room == 0 || seen++ % stride != 0)) continue;
            m_forcedFlag[i] = f, m_forced.push_back(i);
        }
    }
    for (auto n : m_selection) {
        if (!m_forcedFlag[n]) m_forced.push_back(n);
        m_forcedFlag[n] |= kInstanceSelected;
    }
}

namespace {

struct Frustum {
    std::array<glm::vec4, 6> plane;
    glm::vec4 wRow;
    float focal; // pixels per world unit at w = 1

    explicit Frustum(const Camera& cam) {
        const glm::mat4& m = cam.viewProj;
        auto row = [&](int i) { return glm::vec4(m[0][i], m[1][i], m[2][i], m[3][i]); };
        const auto r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
        plane = {r3 + r0, r3 - r0, r3 + r1, r3 - r1, r2, r3 - r2};
        for (auto& p : plane) {
            const float len = glm::length(glm::vec3(p));
            if (len > 0) p /= len;
        }
        wRow = r3;
        // The y row of a perspective (or orthographic) view-projection is P11 times a unit view axis.
        focal = 0.5f * cam.viewport.y * glm::length(glm::vec3(r1));
    }
    bool outside(const glm::vec3& c, float r) const {
        for (const auto& p : plane)
            if (glm::dot(glm::vec3(p), c) + p.w < -r) return true;
        return false;
    }
    float pixelRadius(const glm::vec3& c, float r) const {
        const float w = glm::dot(glm::vec3(wRow), c) + wRow.w;
        if (w <= r) return std::numeric_limits<float>::infinity(); // the eye is inside or at the sphere
        return r * focal / w;
    }
};

constexpr int kBuckets = 128;
int bucketOf(float px) {
    if (!(px > 0)) return 0;
    if (std::isinf(px)) return kBuckets - 1;
    return std::clamp(int(std::floor(std::log2(px) * 4.0f)) + 64, 0, kBuckets - 1);
}

} // namespace

LodStats LodSelector::select(const Camera& camera, const LodOptions& opt, std::vector<SceneInstance>& out) {
    LodStats st;
    for (auto n : m_touched) m_nodeState[n] = 0;
    m_touched.clear();
    out.clear();
    const Frustum fr(camera);
    const auto& nodes = m_tree.nodes;
    const auto& order = m_tree.order;
    const std::vector<float>* values = m_value;
    auto valueOf = [&](std::uint32_t n) { return values && n < values->size() ? (*values)[n] : 0.0f; };

    // Forced neurons and group proxies first: they are drawn whatever the camera and the budget.
    for (auto n : m_forced)
        out.push_back({m_position[n], m_radius[n], valueOf(n), std::uint32_t(m_forcedFlag[n]), n, 1u});
    st.forced = static_cast<std::uint32_t>(m_forced.size());
    for (const auto& g : m_groupProxies) out.push_back(g);
    std::uint64_t used = out.size();

    struct Item {
        std::uint32_t node;
        float px;
    };
    std::array<std::vector<Item>, kBuckets> bucket;
    int top = -1;
    auto push = [&](std::uint32_t node) {
        const auto& nd = nodes[node];
        const float px = fr.pixelRadius(nd.center, nd.boundRadius);
        const int b = bucketOf(px);
        bucket[b].push_back({node, px});
        top = std::max(top, b);
    };
    for (std::uint32_t l = 0; l < m_tree.layerRoot.size(); ++l) {
        if (l < m_hiddenLayer.size() && m_hiddenLayer[l]) continue;
        const auto root = m_tree.layerRoot[l];
        if (opt.cullOutsideFrustum && fr.outside(nodes[root].center, nodes[root].boundRadius)) {
            ++st.culled;
            continue;
        }
        push(root);
        ++used;
    }

    std::vector<std::uint32_t> proxies;
    struct Leaf {
        std::uint32_t node, count;
    };
    std::vector<Leaf> leaves;
    std::uint32_t visible[256];
    while (top >= 0) {
        if (bucket[top].empty()) {
            --top;
            continue;
        }
        const Item it = bucket[top].back();
        bucket[top].pop_back();
        const auto& nd = nodes[it.node];
        m_touched.push_back(it.node);
        if (!(it.px > opt.expandPixels)) {
            proxies.push_back(it.node);
            continue;
        }
        if (nd.childCount == 0) {
            std::uint32_t free = 0;
            for (auto k = nd.begin; k < nd.end; ++k) free += m_forcedFlag[order[k]] == 0;
            if (used - 1 + free <= opt.budget) {
                used = used - 1 + free;
                leaves.push_back({it.node, free});
            } else {
                proxies.push_back(it.node);
                st.budgetLimited = true;
            }
            continue;
        }
        std::uint32_t vc = 0;
        for (std::uint32_t c = 0; c < nd.childCount && c < 256; ++c) {
            const auto ch = nd.firstChild + c;
            if (opt.cullOutsideFrustum && fr.outside(nodes[ch].center, nodes[ch].boundRadius)) {
                ++st.culled;
                continue;
            }
            visible[vc++] = ch;
        }
        if (used - 1 + vc <= opt.budget) {
            used = used - 1 + vc;
            for (std::uint32_t c = 0; c < vc; ++c) push(visible[c]);
        } else {
            proxies.push_back(it.node);
            st.budgetLimited = true;
        }
    }

    // Write the instances: proxies, then each expanded leaf's unforced neurons, in parallel.
    const std::size_t base = out.size();
    std::vector<std::size_t> leafStart(leaves.size() + 1, 0);
    for (std::size_t i = 0; i < leaves.size(); ++i) leafStart[i + 1] = leafStart[i] + leaves[i].count;
    out.resize(base + proxies.size() + leafStart.back());
    SceneInstance* dst = out.data() + base;
    for (auto p : proxies) m_nodeState[p] = 1;
    for (const auto& lf : leaves) m_nodeState[lf.node] = 2;
    ThreadPool::global().parallelFor(proxies.size(), 4096, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t i = b; i < e; ++i) {
            const auto& nd = nodes[proxies[i]];
            const std::uint32_t count = nd.end - nd.begin;
            const float r = std::min(nd.boundRadius, m_radius[order[nd.begin]] * std::sqrt(float(count)));
            dst[i] = {nd.center, r, nd.display, kInstanceCluster, proxies[i], count};
        }
    });
    SceneInstance* leafDst = dst + proxies.size();
    ThreadPool::global().parallelFor(leaves.size(), 256, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t i = b; i < e; ++i) {
            const auto& nd = nodes[leaves[i].node];
            SceneInstance* o = leafDst + leafStart[i];
            for (auto k = nd.begin; k < nd.end; ++k) {
                const auto n = order[k];
                if (m_forcedFlag[n]) continue;
                *o++ = {m_position[n], m_radius[n], valueOf(n), 0u, n, 1u};
            }
        }
    });
    st.clusters = static_cast<std::uint32_t>(proxies.size());
    st.neurons = static_cast<std::uint32_t>(leafStart.back() + m_forced.size());
    st.instances = static_cast<std::uint32_t>(out.size());
    return st;
}

} // namespace ts::scene
