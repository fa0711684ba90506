// capture::Network -> scene::NetworkDesc / NetworkData.
#include "app/model_scene.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace ts::app {

scene::LayerKind layerKindOf(const std::string& type) {
    std::string t = type;
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    auto has = [&](const char* s) { return t.find(s) != std::string::npos; };
    if (t == "input") return scene::LayerKind::Input;
    if (has("linear") || t == "addmm" || t == "matmul") return scene::LayerKind::Dense;
    if (has("conv")) return scene::LayerKind::Conv;
    if (has("pool")) return scene::LayerKind::Pool;
    if (has("norm")) return scene::LayerKind::Norm;
    if (has("relu") || has("tanh") || has("sigmoid") || has("gelu") || has("silu") || has("elu") ||
        has("softmax") || has("hardswish") || has("mish"))
        return scene::LayerKind::Act;
    return scene::LayerKind::Other;
}

namespace {

// Channels-last layers: a permute of a [C, H, W] output to [H, W, C], and, in forward order, every rank-3
// layer fed by a channels-last layer with the same H and W, or both divided by one factor (LayerNorm, Linear,
// GELU, attention, adds, patch merging; ConvNeXt and Swin blocks). A convolution or pooling output is [C, H,
// W] whatever feeds it, and the permute back to [C, H, W] is not marked, so the marking stops there.
void markChannelsLast(const capture::Network& net, scene::NetworkDesc& d) {
    std::vector<std::vector<uint32_t>> inputs(d.layers.size());
    for (const auto& e : d.edges)
        if (e.to < inputs.size()) inputs[e.to].push_back(e.from);
    for (size_t i = 0; i < d.layers.size(); ++i) {
        auto& l = d.layers[i];
        if (l.shape.size() != 3 || l.kind == scene::LayerKind::Conv || l.kind == scene::LayerKind::Pool)
            continue;
        std::string type = net.nodes[i].type;
        std::transform(type.begin(), type.end(), type.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        for (uint32_t from : inputs[i]) {
            const auto& in = d.layers[from].shape;
            if (in.size() != 3) continue;
            const bool permute = type.find("permute") != std::string::npos;
            const bool toLast = permute && !d.layers[from].channelsLast && in[0] == l.shape[2] &&
                                in[1] == l.shape[0] && in[2] == l.shape[1];
            // H and W kept, or both divided by the same whole factor (Swin's patch merging: [H/2, W/2, 4C]).
            const bool sameGrid = l.shape[0] > 0 && l.shape[1] > 0 && in[0] % l.shape[0] == 0 &&
                                  in[1] % l.shape[1] == 0 && in[0] / l.shape[0] == in[1] / l.shape[1];
            const bool kept = !permute && d.layers[from].channelsLast && sameGrid;
            if (toLast || kept) l.channelsLast = true;
        }
    }
}

} // namespace

scene::NetworkDesc toSceneDesc(const capture::Network& net) {
    scene::NetworkDesc d;
    for (const auto& n : net.nodes) {
        scene::LayerSpec l;
        l.name = n.name;
        l.kind = layerKindOf(n.type);
        l.shape = n.outputShape.empty() ? std::vector<int64_t>{1} : n.outputShape;
        l.paramCount = n.paramCount;
        d.layers.push_back(std::move(l));
    }
    for (const auto& e : net.edges)
        d.edges.push_back({e.from, e.to});
    markChannelsLast(net, d);
    return d;
}

int nodeIndexOf(const capture::Network& net, const std::string& layerName) {
    return net.find(layerName);
}

namespace {

// Per-layer normalisation: layers differ in scale by orders of magnitude (inputs in [0, 1], logits, gradients),
// so each is divided by its own robust maximum |v| (98th percentile) to fill [-1, 1].
void normaliseLayer(std::vector<float>& values) {
    std::vector<float> a;
    for (float v : values)
        if (std::isfinite(v)) a.push_back(std::fabs(v));
    if (a.empty()) return;
    size_t k = std::min(a.size() - 1, size_t(double(a.size()) * 0.98));
    std::nth_element(a.begin(), a.begin() + long(k), a.end());
    float scale = a[k] > 0 ? 1.0f / a[k] : 1.0f;
    for (float& v : values)
        v = std::clamp(v * scale, -1.0f, 1.0f);
}

} // namespace

scene::NetworkData toSceneData(const capture::Network& net, const SnapshotSummary* snapshot,
                               NeuronStatistic shown, bool normalisePerLayer, const LayerValues* relevance) {
    scene::NetworkData data;
    data.layers.resize(net.nodes.size());
    auto neurons = [&](int i) { return size_t(std::max<int64_t>(net.nodes[size_t(i)].neurons, 0)); };
    if (shown == NeuronStatistic::Relevance && relevance)
        for (const auto& [name, values] : *relevance) {
            const int i = nodeIndexOf(net, name);
            if (i < 0 || values.size() != neurons(i)) continue;
            auto& v = data.layers[size_t(i)].value;
            v = values;
            if (normalisePerLayer) normaliseLayer(v);
        }
    if (!snapshot) return data;
    for (const auto& l : snapshot->layers) {
        int i = nodeIndexOf(net, l.name);
        if (i < 0 || !l.hasNeuronData()) continue;
        size_t n = neurons(i);
        auto fit = [&](const std::vector<float>& v) { return v.size() == n ? v : std::vector<float>{}; };
        auto& st = data.layers[size_t(i)];
        if (shown != NeuronStatistic::Relevance) {
            st.value = fit(l.statistic(shown));
            if (normalisePerLayer && !st.value.empty() && shown != NeuronStatistic::DeadFraction)
                normaliseLayer(st.value);
        }
        st.activation = fit(l.meanActivation);
        st.gradient = fit(l.meanAbsGradient);
        if (l.zeroFraction.size() == n) {
            st.activeFraction.resize(n);
            for (size_t k = 0; k < n; ++k)
                st.activeFraction[k] = 1.0f - l.zeroFraction[k];
        }
    }
    return data;
}

} // namespace ts::app
