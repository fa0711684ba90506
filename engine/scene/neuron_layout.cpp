// Neuron grids inside a layer (see neuron_layout.hpp).
#include "engine/scene/neuron_layout.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/scene/cluster_tree.hpp"

namespace ts::scene {

std::vector<std::uint32_t> clusterOrder(const float* data, std::uint32_t rows, std::uint32_t dim,
                                        std::uint32_t branching, std::uint32_t leafSize, std::uint32_t seed) {
    std::vector<std::uint32_t> ids(rows);
    std::iota(ids.begin(), ids.end(), 0u);
    struct Range {
        std::uint32_t begin, end;
        std::uint64_t seed;
    };
    std::vector<Range> stack{{0, rows, seed}};
    leafSize = std::max(leafSize, 1u);
    while (!stack.empty()) {
        auto r = stack.back();
        stack.pop_back();
        const auto n = r.end - r.begin;
        if (n <= leafSize) continue;
        auto bounds = kmeansSplit(data, dim, ids.data() + r.begin, n, std::max(branching, 2u), r.seed);
        for (std::size_t g = 0; g + 1 < bounds.size(); ++g)
            stack.push_back({r.begin + bounds[g], r.begin + bounds[g + 1], r.seed * 6364136223846793005ull + g + 1});
    }
    return ids;
}

namespace {

// Descending by value, NaN last, ties by index (a stable, deterministic order).
std::vector<std::uint32_t> orderByValue(const std::vector<float>& v) {
    std::vector<std::uint32_t> ids(v.size());
    std::iota(ids.begin(), ids.end(), 0u);
    std::stable_sort(ids.begin(), ids.end(), [&](std::uint32_t a, std::uint32_t b) {
        const bool na = std::isnan(v[a]), nb = std::isnan(v[b]);
        if (na != nb) return nb;
        if (na) return false;
        return v[a] > v[b];
    });
    return ids;
}

} // namespace

std::pair<std::uint32_t, std::uint32_t> slabTile(std::uint32_t h, std::uint32_t w) {
    if (h != 1 || w < 16) return {h, w};
    const auto root = std::sqrt(double(w));
    for (auto cols = std::uint32_t(std::ceil(root)); cols <= std::uint32_t(2.0 * root); ++cols)
        if (w % cols == 0) return {w / cols, cols};
    return {h, w};
}

LocalLayout layoutLayerNeurons(const LayerSpec& layer, const LayerStats* stats, const NeuronLayoutOptions& opt) {
    LocalLayout out;
    const float s = opt.spacing;
    out.radius = opt.radiusFactor * s;
    const auto n = static_cast<std::uint32_t>(neuronCount(layer));
    out.position.resize(n);
    const std::vector<float>* values = nullptr;
    if (stats) values = !stats->value.empty() ? &stats->value : (!stats->activation.empty() ? &stats->activation : nullptr);
    const bool hasProfile = stats && !stats->profile.empty() && stats->probeCount > 0;
    const Chw chw = foldShape(layer);
    const bool maps = layer.shape.size() >= 2;

    if (!maps) {
        // Dense: near-square grid, slot k at row k / cols, column k % cols.
        const auto cols = static_cast<std::uint32_t>(std::ceil(std::sqrt(double(n))));
        const auto rows = (n + cols - 1) / cols;
        std::vector<std::uint32_t> slot;
        if (opt.order == NeuronOrder::Statistic && values) slot = orderByValue(*values);
        else if (opt.order == NeuronOrder::Cluster && hasProfile)
            slot = clusterOrder(stats->profile.data(), n, stats->probeCount, opt.clusterBranching, 4, opt.seed);
        else {
            slot.resize(n);
            std::iota(slot.begin(), slot.end(), 0u);
        }
        for (std::uint32_t k = 0; k < n; ++k) {
            const float col = float(k % cols), row = float(k / cols);
            out.position[slot[k]] = {(col - 0.5f * float(cols - 1)) * s, (0.5f * float(rows - 1) - row) * s, 0.0f};
        }
        out.halfExtent = {0.5f * float(cols - 1) * s + out.radius, 0.5f * float(rows - 1) * s + out.radius, out.radius};
        out.slotOrder = std::move(slot);
        return out;
    }

    // Maps: C slabs of H x W side by side, the slab grid chosen so the whole layer is near-square.
    const std::uint32_t C = chw.c;
    const auto [H, W] = slabTile(chw.h, chw.w);
    auto mc = static_cast<std::uint32_t>(std::max(1.0, std::round(std::sqrt(double(C) * H / W))));
    mc = std::min(mc, C);
    const std::uint32_t mr = (C + mc - 1) / mc;
    const float gap = std::max(1.0f, opt.mapGapFactor * float(std::min(H, W))) * s;
    const float mapW = float(W - 1) * s, mapH = float(H - 1) * s;
    const float totalW = float(mc) * mapW + float(mc - 1) * (gap + s);
    const float totalH = float(mr) * mapH + float(mr - 1) * (gap + s);

    std::vector<std::uint32_t> slot(C);
    std::iota(slot.begin(), slot.end(), 0u);
    const std::uint32_t HW = H * W;
    if (opt.order == NeuronOrder::Statistic && values) {
        std::vector<float> mean(C, 0.0f);
        for (std::uint32_t c = 0; c < C; ++c) {
            double acc = 0;
            std::uint32_t cnt = 0;
            for (std::uint32_t i = 0; i < HW; ++i) {
                const float v = (*values)[chw.neuron(c, i)];
                if (std::isfinite(v)) acc += v, ++cnt;
            }
            mean[c] = cnt ? float(acc / cnt) : std::nanf("");
        }
        slot = orderByValue(mean);
    } else if (opt.order == NeuronOrder::Cluster && hasProfile) {
        const auto P = stats->probeCount;
        std::vector<float> chanProfile(std::size_t(C) * P, 0.0f);
        for (std::uint32_t c = 0; c < C; ++c)
            for (std::uint32_t i = 0; i < HW; ++i)
                for (std::uint32_t p = 0; p < P; ++p)
                    chanProfile[std::size_t(c) * P + p] +=
                        stats->profile[std::size_t(chw.neuron(c, i)) * P + p] / float(HW);
        slot = clusterOrder(chanProfile.data(), C, P, opt.clusterBranching, 4, opt.seed);
    }
    for (std::uint32_t k = 0; k < C; ++k) {
        const std::uint32_t c = slot[k];
        const float x0 = -0.5f * totalW + float(k % mc) * (mapW + gap + s);
        const float y0 = 0.5f * totalH - float(k / mc) * (mapH + gap + s);
        for (std::uint32_t h = 0; h < H; ++h)
            for (std::uint32_t w = 0; w < W; ++w)
                out.position[chw.neuron(c, h * W + w)] = {x0 + float(w) * s, y0 - float(h) * s, 0.0f};
    }
    out.halfExtent = {0.5f * totalW + out.radius, 0.5f * totalH + out.radius, out.radius};
    out.slotOrder = std::move(slot);
    return out;
}

} // namespace ts::scene
