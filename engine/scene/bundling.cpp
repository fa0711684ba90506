// Hierarchical edge bundling and ink measures (see bundling.hpp).
#include "engine/scene/bundling.hpp"

#include <algorithm>
#include <cmath>

#include "engine/core/thread_pool.hpp"

namespace ts::scene {

namespace {

// Node path of one edge: source side climbing, then target side descending.
void treePath(const ClusterTree& tree, std::uint32_t s, std::uint32_t d, std::uint32_t topLevel,
              std::vector<std::uint32_t>& up, std::vector<std::uint32_t>& down) {
    up.clear();
    down.clear();
    const auto& nodes = tree.nodes;
    if (nodes[s].layer == nodes[d].layer) {
        // Same layer: climb both sides to the lowest common ancestor, which appears once.
        while (s != d) {
            if (nodes[s].level >= nodes[d].level) up.push_back(s), s = nodes[s].parent;
            else down.push_back(d), d = nodes[d].parent;
        }
        up.push_back(s);
        return;
    }
    for (;;) {
        up.push_back(s);
        if (nodes[s].level <= topLevel || nodes[s].parent == ~0u) break;
        s = nodes[s].parent;
    }
    for (;;) {
        down.push_back(d);
        if (nodes[d].level <= topLevel || nodes[d].parent == ~0u) break;
        d = nodes[d].parent;
    }
}

void writeArcParameter(EdgePoint* p, std::uint32_t n) {
    float len = 0;
    p[0].t = 0;
    for (std::uint32_t i = 1; i < n; ++i) {
        len += glm::length(p[i].position - p[i - 1].position);
        p[i].t = len;
    }
    for (std::uint32_t i = 0; i < n; ++i) p[i].t = len > 0 ? p[i].t / len : float(i) / float(n - 1);
}

float maxAbs(const std::vector<BundleEdge>& edges) {
    float m = 0;
    for (const auto& e : edges)
        if (std::isfinite(e.weight)) m = std::max(m, std::fabs(e.weight));
    return m;
}

} // namespace

EdgePolylines bundleHierarchical(const ClusterTree& tree, const std::vector<BundleEdge>& edges,
                                 const BundleOptions& opt) {
    EdgePolylines out;
    const std::uint32_t S = std::max(opt.samples, 2u);
    const float beta = std::clamp(opt.beta, 0.0f, 1.0f);
    const float lift = std::clamp(opt.lift, 0.0f, 1.0f);
    out.points.resize(edges.size() * S);
    out.lines.resize(edges.size());
    const float wmax = maxAbs(edges);
    ThreadPool::global().parallelFor(edges.size(), 512, [&](std::size_t b, std::size_t e, unsigned) {
        std::vector<std::uint32_t> up, down;
        std::vector<glm::vec3> ctrl, ext;
        for (std::size_t i = b; i < e; ++i) {
            const auto& edge = edges[i];
            treePath(tree, edge.srcNode, edge.dstNode, opt.topLevel, up, down);
            ctrl.clear();
            ctrl.push_back(edge.a);
            // Lift each side's tree out of its layer plane towards the other layer, higher levels further,
            // so edges leave a neuron forwards and merge in the gap instead of running along the layer.
            const float dz = (edge.b.z - edge.a.z) * 0.5f * lift;
            const auto nu = static_cast<float>(up.size()), nd = static_cast<float>(down.size());
            for (std::size_t k = 0; k < up.size(); ++k)
                ctrl.push_back(tree.nodes[up[k]].center + glm::vec3(0, 0, dz * float(k + 1) / (nu + 1)));
            for (std::size_t k = down.size(); k-- > 0;)
                ctrl.push_back(tree.nodes[down[k]].center - glm::vec3(0, 0, dz * float(k + 1) / (nd + 1)));
            ctrl.push_back(edge.b);
            // Straightening (Holten's beta): pull control points towards the chord.
            const auto n = static_cast<std::uint32_t>(ctrl.size());
            for (std::uint32_t k = 1; k + 1 < n; ++k) {
                const glm::vec3 chord = edge.a + (edge.b - edge.a) * (float(k) / float(n - 1));
                ctrl[k] = beta * ctrl[k] + (1.0f - beta) * chord;
            }
            // Uniform cubic B-spline clamped at both ends by tripling the end control points.
            ext.clear();
            ext.push_back(ctrl.front());
            ext.push_back(ctrl.front());
            ext.insert(ext.end(), ctrl.begin(), ctrl.end());
            ext.push_back(ctrl.back());
            ext.push_back(ctrl.back());
            const auto segs = static_cast<std::uint32_t>(ext.size() - 3);
            EdgePoint* p = out.points.data() + i * S;
            for (std::uint32_t s = 0; s < S; ++s) {
                const float u = float(s) / float(S - 1) * float(segs);
                const auto seg = std::min(static_cast<std::uint32_t>(u), segs - 1);
                const float t = u - float(seg), t2 = t * t, t3 = t2 * t;
                const float b0 = (1 - 3 * t + 3 * t2 - t3) / 6, b1 = (4 - 6 * t2 + 3 * t3) / 6,
                            b2 = (1 + 3 * t + 3 * t2 - 3 * t3) / 6, b3 = t3 / 6;
                p[s].position = b0 * ext[seg] + b1 * ext[seg + 1] + b2 * ext[seg + 2] + b3 * ext[seg + 3];
            }
            // The clamped spline meets the ends up to rounding; pin them exactly.
            p[0].position = edge.a;
            p[S - 1].position = edge.b;
            writeArcParameter(p, S);
            out.lines[i] = {static_cast<std::uint32_t>(i * S), S, edge.weight,
                            wmax > 0 ? std::fabs(edge.weight) / wmax : 0.0f};
        }
    });
    return out;
}

EdgePolylines straightLines(const std::vector<BundleEdge>& edges, std::uint32_t samples) {
    EdgePolylines out;
    const std::uint32_t S = std::max(samples, 2u);
    out.points.resize(edges.size() * S);
    out.lines.resize(edges.size());
    const float wmax = maxAbs(edges);
    for (std::size_t i = 0; i < edges.size(); ++i) {
        for (std::uint32_t s = 0; s < S; ++s) {
            const float t = float(s) / float(S - 1);
            out.points[i * S + s] = {edges[i].a + (edges[i].b - edges[i].a) * t, t};
        }
        out.lines[i] = {static_cast<std::uint32_t>(i * S), S, edges[i].weight,
                        wmax > 0 ? std::fabs(edges[i].weight) / wmax : 0.0f};
    }
    return out;
}

double totalLength(const EdgePolylines& lines) {
    double len = 0;
    for (const auto& l : lines.lines)
        for (std::uint32_t k = 1; k < l.pointCount; ++k)
            len += glm::length(lines.points[l.firstPoint + k].position - lines.points[l.firstPoint + k - 1].position);
    return len;
}

std::uint64_t inkCoverage(const EdgePolylines& lines, const Aabb& area, int u, int v, int res) {
    std::vector<std::uint8_t> img(std::size_t(res) * res, 0);
    const float su = float(res) / std::max(area.extent()[u], 1e-6f), sv = float(res) / std::max(area.extent()[v], 1e-6f);
    auto plot = [&](float x, float y) {
        const int ix = int(x), iy = int(y);
        if (ix >= 0 && iy >= 0 && ix < res && iy < res) img[std::size_t(iy) * res + ix] = 1;
    };
    for (const auto& l : lines.lines)
        for (std::uint32_t k = 1; k < l.pointCount; ++k) {
            const auto& p = lines.points[l.firstPoint + k - 1].position;
            const auto& q = lines.points[l.firstPoint + k].position;
            const float x0 = (p[u] - area.lo[u]) * su, y0 = (p[v] - area.lo[v]) * sv;
            const float x1 = (q[u] - area.lo[u]) * su, y1 = (q[v] - area.lo[v]) * sv;
            const int steps = std::max(1, int(std::ceil(std::max(std::fabs(x1 - x0), std::fabs(y1 - y0)) * 2)));
            for (int s = 0; s <= steps; ++s) {
                const float t = float(s) / float(steps);
                plot(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            }
        }
    std::uint64_t c = 0;
    for (auto px : img) c += px;
    return c;
}

} // namespace ts::scene
