// The neurogram's 3D graph: layout, links, picking, labels.
#include "app/neurogram_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "app/projection_view.hpp"
#include "engine/core/colormap.hpp"
#include "engine/core/text_raster.hpp"

namespace ts::app {

namespace {

constexpr float kLayerY = -0.6f, kKpiY = 0.75f, kHalfWidth = 1.5f;

// A curve from a layer up to a KPI node: a quadratic Bezier bowed towards the KPI's side.
void addLink(scene::EdgePolylines& out, glm::vec3 from, glm::vec3 to, float weight) {
    const glm::vec3 control(glm::mix(from.x, to.x, 0.2f), 0.35f, glm::mix(from.z, to.z, 0.6f));
    const uint32_t first = uint32_t(out.points.size()), n = 20;
    for (uint32_t k = 0; k < n; ++k) {
        const float t = float(k) / float(n - 1), u = 1.0f - t;
        out.points.push_back({u * u * from + 2.0f * u * t * control + t * t * to, t});
    }
    out.lines.push_back({first, n, weight, 0.0f}); // magnitude set once the kind's largest is known
}

std::string percent(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f%%", 100.0 * v);
    return b;
}

} // namespace

NeurogramScene buildNeurogramScene(const explain::Neurogram& g) {
    NeurogramScene sc;
    const size_t n = g.layers.size();
    int64_t maxParams = 1;
    double maxDrop = 0.0;
    for (const auto& l : g.layers) {
        maxParams = std::max(maxParams, l.params);
        if (l.ablated) maxDrop = std::max(maxDrop, l.accuracyDrop);
    }
    const float spacing = n > 1 ? 2.0f * kHalfWidth / float(n - 1) : 1.0f;
    const float rMax = std::min(0.09f, 0.45f * spacing);
    for (size_t i = 0; i < n; ++i) {
        const auto& l = g.layers[i];
        const glm::vec3 p(n > 1 ? -kHalfWidth + spacing * float(i) : 0.0f, kLayerY, 0.0f);
        const float r = std::max(0.3f * rMax, rMax * std::sqrt(float(l.params) / float(maxParams)));
        sc.layerPositions.push_back(p);
        sc.layerRadii.push_back(r);
        render::NeuronInstance node{};
        node.position = p;
        node.radius = r;
        // Inferno: dim purple for a layer whose output at its mean costs nothing, bright for the largest drop.
        node.value = 0.12f + (l.ablated && maxDrop > 0 ? 0.78f * float(std::clamp(l.accuracyDrop / maxDrop, 0.0, 1.0)) : 0.0f);
        node.id = uint32_t(i);
        sc.nodes.push_back(node);
    }
    // KPI nodes: validation accuracy and loss (every layer links to them), the strongest shift when measured.
    std::string shift;
    for (const auto& l : g.layers)
        if (l.ablated && !l.shift.empty()) shift = l.shift;
    double shiftAccuracy = 1.0; // the layers were measured under the shift that costs the model most accuracy
    for (const auto& s : g.stability)
        shiftAccuracy = std::min(shiftAccuracy, s.accuracy);
    sc.kpiPositions = {{-0.7f, kKpiY, -0.2f}, {0.7f, kKpiY, -0.2f}};
    sc.kpiLabels = {"validation accuracy " + percent(g.validation.accuracy),
                    "validation loss " + std::to_string(g.validation.loss).substr(0, 6)};
    if (!shift.empty()) {
        sc.kpiPositions.push_back({0.0f, kKpiY + 0.25f, -0.7f});
        sc.kpiLabels.push_back("accuracy under " + shift + " " + percent(shiftAccuracy));
    }
    for (size_t k = 0; k < sc.kpiPositions.size(); ++k) {
        render::NeuronInstance node{};
        node.position = sc.kpiPositions[k];
        node.radius = 0.07f;
        node.value = 1.0f; // inferno's light end
        node.id = uint32_t(n + k);
        sc.nodes.push_back(node);
    }
    // Links, one kind at a time so each kind's widths span its own range: accuracy (red), loss (blue), shift (red).
    for (int kind = 0; kind < int(sc.kpiPositions.size()); ++kind) {
        const size_t first = sc.links.lines.size();
        float largest = 0.0f;
        for (size_t i = 0; i < n; ++i) {
            const auto& l = g.layers[i];
            if (!l.ablated) continue;
            const double v = kind == 0 ? l.accuracyDrop : kind == 1 ? l.lossIncrease : l.shiftedAccuracyDrop;
            if (!(v > 0)) continue;
            addLink(sc.links, sc.layerPositions[i], sc.kpiPositions[size_t(kind)], kind == 1 ? -float(v) : float(v));
            largest = std::max(largest, float(v));
        }
        for (size_t k = first; k < sc.links.lines.size(); ++k)
            sc.links.lines[k].magnitude = largest > 0 ? std::fabs(sc.links.lines[k].weight) / largest : 0.0f;
    }
    // Names: every layer up to 16, else the 8 that cost the most accuracy.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    if (n > 16) {
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            const double da = g.layers[a].ablated ? g.layers[a].accuracyDrop : -1e9;
            const double db = g.layers[b].ablated ? g.layers[b].accuracyDrop : -1e9;
            return da > db;
        });
        order.resize(8);
        std::sort(order.begin(), order.end());
    }
    sc.labelled = order;
    for (const auto& node : sc.nodes)
        sc.bounds.extend(node.position, node.radius);
    sc.bounds.extend({0.0f, kKpiY + 0.4f, 0.0f});
    return sc;
}

std::optional<size_t> pickLayer(const NeurogramScene& sc, const render::Camera& camera, float width, float height,
                                float x, float y) {
    float r = 0.0f;
    for (float v : sc.layerRadii)
        r = std::max(r, v);
    return pickPoint(sc.layerPositions, r, camera, width, height, x, y);
}

std::string layerLine(const explain::LayerContribution& l) {
    char b[320];
    if (!l.ablated) {
        std::snprintf(b, sizeof b, "%s (%s, %lld params): not measured (%s)", l.name.c_str(), l.type.c_str(),
                      static_cast<long long>(l.params), l.note.c_str());
        return b;
    }
    std::snprintf(b, sizeof b, "%s (%s, %lld params): accuracy %+.1f pt, loss %+.4g (first-order %+.4g)",
                  l.name.c_str(), l.type.c_str(), static_cast<long long>(l.params), -100 * l.accuracyDrop,
                  l.lossIncrease, l.taylorLossIncrease);
    return b;
}

void drawNeurogramOverlay(ImageRgba8& img, const explain::Neurogram& g, const NeurogramScene& sc,
                          const render::Camera& camera, const std::string& title) {
    const Rgb8 text{230, 230, 235}, dim{160, 160, 170};
    const float w = float(img.width), h = float(img.height);
    const glm::mat4 vp = camera.projection(w / h) * camera.view();
    drawText(img, 16, 14, title, text);
    drawText(img, 16, 32,
             "layers (forward order, left to right): size = parameters, brighter = more accuracy lost with the output at "
             "its mean; links: red = accuracy drop, blue = loss increase",
             dim);
    auto label = [&](glm::vec3 p, float dy, const std::string& s, Rgb8 c) {
        const glm::vec4 q = render::projectToPixels(vp, p, w, h);
        if (q.w <= 0) return;
        drawText(img, int(q.x) - textWidth(s) / 2, int(q.y + dy), s, c);
    };
    for (size_t k = 0; k < sc.kpiPositions.size(); ++k)
        label(sc.kpiPositions[k], -30.0f, sc.kpiLabels[k], text);
    for (size_t i : sc.labelled) {
        // Alternate above and below so neighbours' names do not overlap.
        const bool below = i % 2 == 0;
        label(sc.layerPositions[i], below ? 14.0f : -24.0f, g.layers[i].name, below ? text : dim);
    }
    int y = img.height - 18 * int(std::min<size_t>(g.diagnoses.size(), 4)) - 12;
    for (size_t k = 0; k < g.diagnoses.size() && k < 4; ++k, y += 18)
        drawText(img, 16, y, "- " + g.diagnoses[k], dim);
}

} // namespace ts::app
