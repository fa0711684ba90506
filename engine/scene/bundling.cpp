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

// ---------------------------------------------------------------------------------------------------------
// Kernel-density edge bundling.
namespace ts::scene {

namespace {

// Two passes of a box filter of radius r along one axis of a [nz][ny][nx] grid (a triangle kernel).
void boxBlurAxis(std::vector<float>& g, std::vector<float>& tmp, int nx, int ny, int nz, int r, bool alongX) {
    const int n = alongX ? nx : ny;
    const int lines = alongX ? ny * nz : nx * nz;
    ThreadPool::global().parallelFor(lines, 64, [&](std::size_t b, std::size_t e, unsigned) {
        std::vector<float> line(n), out(n);
        for (std::size_t li = b; li < e; ++li) {
            std::size_t base, stride;
            if (alongX) {
                base = li * nx;
                stride = 1;
            } else {
                const std::size_t z = li / nx, x = li % nx;
                base = z * std::size_t(nx) * ny + x;
                stride = nx;
            }
            for (int i = 0; i < n; ++i) line[i] = g[base + i * stride];
            for (int pass = 0; pass < 2; ++pass) {
                double acc = 0;
                for (int i = -r; i <= r; ++i) acc += (i >= 0 && i < n) ? line[i] : 0.0f;
                for (int i = 0; i < n; ++i) {
                    out[i] = float(acc / (2 * r + 1));
                    const int add = i + r + 1, sub = i - r;
                    if (add < n) acc += line[add];
                    if (sub >= 0) acc -= line[sub];
                }
                line.swap(out);
            }
            for (int i = 0; i < n; ++i) g[base + i * stride] = line[i];
        }
    });
    (void)tmp;
}

} // namespace

EdgePolylines bundleKde(const std::vector<BundleEdge>& edges, const KdeOptions& opt) {
    EdgePolylines out = straightLines(edges, opt.samples);
    const std::uint32_t S = std::max(opt.samples, 2u);
    if (edges.empty() || S < 3) return out;
    Aabb box;
    for (const auto& e : edges) box.extend(e.a), box.extend(e.b);
    const glm::vec3 ext = glm::max(box.extent(), glm::vec3(1e-3f));
    const float extXY = std::max(ext.x, ext.y);
    const float cell = extXY / float(std::max(opt.grid, 8u));
    // Margin so samples pulled outwards stay on the grid.
    const glm::vec3 lo = box.lo - glm::vec3(4 * cell, 4 * cell, 0);
    const int nx = int(std::ceil((ext.x + 8 * cell) / cell)) + 1, ny = int(std::ceil((ext.y + 8 * cell) / cell)) + 1;
    const int nz = int(std::max(opt.zSlices, 1u));
    const float zcell = ext.z / float(nz);
    const std::size_t cells = std::size_t(nx) * ny * nz;
    std::vector<float> density(cells), tmp;
    const unsigned workers = ThreadPool::global().workerCount();
    std::vector<std::vector<float>> partial(workers, std::vector<float>(cells));
    std::vector<float> endWeight(S);
    for (std::uint32_t s = 0; s < S; ++s) {
        const float t = float(s) / float(S - 1), d = std::min(t, 1.0f - t);
        endWeight[s] = opt.endFalloff > 0 ? std::min(1.0f, d / opt.endFalloff) : 1.0f;
    }
    auto cellOf = [&](const glm::vec3& p, int& ix, int& iy, int& iz) {
        ix = std::clamp(int((p.x - lo.x) / cell), 0, nx - 1);
        iy = std::clamp(int((p.y - lo.y) / cell), 0, ny - 1);
        iz = std::clamp(int((p.z - lo.z) / zcell), 0, nz - 1);
    };
    const std::size_t E = edges.size();
    float kernelCells = std::max(1.0f, opt.kernel * extXY / cell);
    std::vector<glm::vec3> prev(S);
    for (std::uint32_t it = 0; it < opt.iterations; ++it) {
        const int r = std::max(1, int(std::lround(kernelCells)));
        // Splat interior samples (per-worker grids, then a sum).
        ThreadPool::global().parallelFor(E, 1024, [&](std::size_t b, std::size_t e, unsigned w) {
            auto& g = partial[w];
            for (std::size_t i = b; i < e; ++i)
                for (std::uint32_t s = 1; s + 1 < S; ++s) {
                    int ix, iy, iz;
                    cellOf(out.points[i * S + s].position, ix, iy, iz);
                    g[(std::size_t(iz) * ny + iy) * nx + ix] += 1.0f;
                }
        });
        ThreadPool::global().parallelFor(cells, 1 << 16, [&](std::size_t b, std::size_t e, unsigned) {
            for (std::size_t c = b; c < e; ++c) {
                float sum = 0;
                for (auto& g : partial) sum += g[c], g[c] = 0.0f;
                density[c] = sum;
            }
        });
        boxBlurAxis(density, tmp, nx, ny, nz, r, true);
        boxBlurAxis(density, tmp, nx, ny, nz, r, false);
        // Advect up the x-y gradient, then smooth along each line; ends stay fixed.
        const float stepWorld = opt.step * float(r) * cell;
        ThreadPool::global().parallelFor(E, 512, [&](std::size_t b, std::size_t e, unsigned) {
            std::vector<glm::vec3> p(S);
            for (std::size_t i = b; i < e; ++i) {
                EdgePoint* pts = out.points.data() + i * S;
                for (std::uint32_t s = 0; s < S; ++s) p[s] = pts[s].position;
                for (std::uint32_t s = 1; s + 1 < S; ++s) {
                    int ix, iy, iz;
                    cellOf(p[s], ix, iy, iz);
                    const std::size_t row = std::size_t(iz) * ny;
                    auto at = [&](int x, int y) {
                        return density[(row + std::clamp(y, 0, ny - 1)) * nx + std::clamp(x, 0, nx - 1)];
                    };
                    const glm::vec2 grad(at(ix + 1, iy) - at(ix - 1, iy), at(ix, iy + 1) - at(ix, iy - 1));
                    const float len = glm::length(grad);
                    if (len > 1e-12f) {
                        const glm::vec2 d = grad / len * stepWorld * endWeight[s];
                        p[s].x += d.x;
                        p[s].y += d.y;
                    }
                }
                for (std::uint32_t s = 1; s + 1 < S; ++s) {
                    const glm::vec3 avg = 0.5f * (p[s - 1] + p[s + 1]);
                    const float k = opt.smoothing * endWeight[s];
                    pts[s].position.x = (1 - k) * p[s].x + k * avg.x;
                    pts[s].position.y = (1 - k) * p[s].y + k * avg.y;
                }
            }
        });
        kernelCells = std::max(1.0f, kernelCells * opt.kernelDecay);
    }
    for (std::size_t i = 0; i < E; ++i) writeArcParameter(out.points.data() + i * S, S);
    return out;
}

} // namespace ts::scene
