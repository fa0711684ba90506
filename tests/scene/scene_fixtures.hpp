// Hand-built networks and independent geometric checks shared by the scene tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene::test {

inline LayerSpec layer(std::string name, LayerKind kind, std::vector<std::int64_t> shape) {
    return {std::move(name), kind, std::move(shape), 0};
}

// A small ResNet-like model: stem, two residual blocks (with skip edges), an inception-style split, a head.
inline NetworkDesc resnetLike() {
    NetworkDesc d;
    auto add = [&](std::string n, LayerKind k, std::vector<std::int64_t> s) {
        d.layers.push_back(layer(std::move(n), k, std::move(s)));
        return static_cast<std::uint32_t>(d.layers.size() - 1);
    };
    auto edge = [&](std::uint32_t a, std::uint32_t b) { d.edges.push_back({a, b}); };
    const auto in = add("input", LayerKind::Input, {3, 8, 8});
    const auto stem = add("stem", LayerKind::Conv, {8, 8, 8});
    edge(in, stem);
    std::uint32_t prev = stem;
    for (int b = 0; b < 2; ++b) {
        const std::string p = "layer1." + std::to_string(b) + ".";
        const auto c1 = add(p + "conv1", LayerKind::Conv, {8, 8, 8});
        const auto bn = add(p + "bn1", LayerKind::Norm, {8, 8, 8});
        const auto r = add(p + "relu", LayerKind::Act, {8, 8, 8});
        const auto c2 = add(p + "conv2", LayerKind::Conv, {8, 8, 8});
        const auto sum = add(p + "add", LayerKind::Other, {8, 8, 8});
        edge(prev, c1), edge(c1, bn), edge(bn, r), edge(r, c2), edge(c2, sum), edge(prev, sum); // skip
        prev = sum;
    }
    const auto a = add("branch.a", LayerKind::Conv, {4, 8, 8});
    const auto b = add("branch.b", LayerKind::Conv, {4, 8, 8});
    const auto b2 = add("branch.b2", LayerKind::Conv, {4, 8, 8});
    const auto cat = add("concat", LayerKind::Other, {8, 8, 8});
    edge(prev, a), edge(prev, b), edge(b, b2), edge(a, cat), edge(b2, cat);
    const auto pool = add("pool", LayerKind::Pool, {8});
    const auto fc = add("fc", LayerKind::Dense, {10});
    edge(cat, pool), edge(pool, fc);
    return d;
}

// A chain of dense layers with the given widths (layer i -> i + 1).
inline NetworkDesc mlp(const std::vector<std::int64_t>& widths) {
    NetworkDesc d;
    for (std::size_t i = 0; i < widths.size(); ++i) {
        d.layers.push_back(layer("fc" + std::to_string(i), i ? LayerKind::Dense : LayerKind::Input, {widths[i]}));
        if (i) d.edges.push_back({static_cast<std::uint32_t>(i - 1), static_cast<std::uint32_t>(i)});
    }
    return d;
}

inline std::vector<float> randomVector(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = u(rng);
    return v;
}

// Does the segment p -> q pass through the open box lo..hi (shrunk by eps)? Slab test in float64.
inline bool segmentHitsBox(glm::vec3 p, glm::vec3 q, glm::vec3 lo, glm::vec3 hi, double eps = 1e-3) {
    double t0 = 0, t1 = 1;
    for (int a = 0; a < 3; ++a) {
        const double d = double(q[a]) - p[a], l = double(lo[a]) + eps, h = double(hi[a]) - eps;
        if (std::fabs(d) < 1e-12) {
            if (p[a] <= l || p[a] >= h) return false;
            continue;
        }
        double ta = (l - p[a]) / d, tb = (h - p[a]) / d;
        if (ta > tb) std::swap(ta, tb);
        t0 = std::max(t0, ta);
        t1 = std::min(t1, tb);
        if (t0 > t1) return false;
    }
    return true;
}

} // namespace ts::scene::test
