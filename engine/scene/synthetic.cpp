// Synthetic networks.
#include "engine/scene/synthetic.hpp"

#include <cmath>
#include <random>

namespace ts::scene {

std::vector<float> uniformValues(std::size_t n, std::uint32_t seed, float lo, float hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

SyntheticNetwork makeVggLikeNetwork() {
    SyntheticNetwork m;
    auto add = [&](const char* name, LayerKind k, std::vector<std::int64_t> shape) {
        m.desc.layers.push_back({name, k, std::move(shape), 0});
        const auto i = static_cast<std::uint32_t>(m.desc.layers.size() - 1);
        if (i) m.desc.edges.push_back({i - 1, i});
    };
    add("input", LayerKind::Input, {3, 128, 128});
    add("features.0", LayerKind::Conv, {32, 64, 64});
    add("features.1", LayerKind::Conv, {64, 64, 64});
    add("features.2", LayerKind::Conv, {64, 64, 64});
    add("features.3", LayerKind::Conv, {128, 32, 32});
    add("features.4", LayerKind::Conv, {128, 32, 32});
    add("features.5", LayerKind::Conv, {256, 16, 16});
    add("features.6", LayerKind::Conv, {256, 16, 16});
    add("classifier.0", LayerKind::Dense, {4096});
    add("classifier.1", LayerKind::Dense, {1024});
    add("classifier.2", LayerKind::Dense, {10});
    const auto off = neuronOffsets(m.desc);
    m.data.layers.resize(m.desc.layers.size());
    for (std::uint32_t l = 0; l < m.desc.layers.size(); ++l) {
        auto& st = m.data.layers[l];
        st.value = uniformValues(off[l + 1] - off[l], 10 + l, -1.0f, 1.0f);
        st.activeFraction = uniformValues(off[l + 1] - off[l], 50 + l, 0.0f, 1.0f);
    }
    for (std::uint32_t l = 8; l <= 9; ++l) {
        m.data.layers[l].probeCount = 16;
        m.data.layers[l].profile = uniformValues(std::size_t(off[l + 1] - off[l]) * 16, 90 + l, 0.0f, 1.0f);
    }
    return m;
}

SyntheticNetwork makeMlpNetwork(const std::vector<std::int64_t>& widths, std::uint32_t seed) {
    SyntheticNetwork m;
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    m.desc.layers.push_back({"input", LayerKind::Input, {1, 28, 28}, 0});
    std::vector<std::uint32_t> sizes = {784};
    for (std::size_t i = 0; i < widths.size(); ++i) {
        std::int64_t in = sizes.back(), out = widths[i];
        m.desc.layers.push_back({"fc" + std::to_string(i + 1), LayerKind::Dense, {out}, in * out + out});
        m.desc.edges.push_back({std::uint32_t(i), std::uint32_t(i + 1)});
        sizes.push_back(std::uint32_t(out));
    }
    m.data.layers.resize(sizes.size());
    for (std::size_t l = 0; l < sizes.size(); ++l) {
        m.data.layers[l].value.resize(sizes[l]);
        for (auto& v : m.data.layers[l].value) v = std::tanh(nd(rng));
    }
    for (std::uint32_t l = 0; l + 1 < sizes.size(); ++l) {
        DenseWeights w{l, l + 1, {}};
        w.w.resize(std::size_t(sizes[l]) * sizes[l + 1]);
        for (auto& x : w.w) x = nd(rng);
        m.data.dense.push_back(std::move(w));
    }
    return m;
}

} // namespace ts::scene
