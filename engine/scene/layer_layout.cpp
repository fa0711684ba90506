// Sugiyama-style layer layout along z (see layer_layout.hpp). Sections: contraction of collapsed groups,
// longest-path ranks and dummy nodes, barycentre crossing minimisation, x placement, z placement, routes.
#include "engine/scene/layer_layout.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

namespace ts::scene {

namespace {

struct Graph {
    // Nodes: real (a layer or a collapsed group) then dummies. Proper layered edges only (rank difference 1).
    std::vector<std::uint32_t> rank;
    std::vector<glm::vec3> half; // footprint half extent
    std::vector<bool> dummy;
    std::vector<std::vector<std::uint32_t>> pred, succ;
    std::vector<std::vector<std::uint32_t>> ranks; // node ids per rank, in order
    std::vector<std::uint32_t> pos;                // index within its rank

    std::uint32_t addNode(std::uint32_t r, glm::vec3 h, bool isDummy) {
        rank.push_back(r);
        half.push_back(h);
        dummy.push_back(isDummy);
        pred.emplace_back();
        succ.emplace_back();
        return static_cast<std::uint32_t>(rank.size() - 1);
    }
    void addEdge(std::uint32_t u, std::uint32_t v) {
        succ[u].push_back(v);
        pred[v].push_back(u);
    }
    void updatePos() {
        pos.resize(rank.size());
        for (auto& r : ranks)
            for (std::uint32_t i = 0; i < r.size(); ++i) pos[r[i]] = i;
    }
};

// Crossings between rank r and r + 1: inversions among edges sorted by (upper position, lower position).
std::uint32_t crossingsBetween(const Graph& g, std::uint32_t r) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> e;
    for (auto u : g.ranks[r])
        for (auto v : g.succ[u]) e.emplace_back(g.pos[u], g.pos[v]);
    std::sort(e.begin(), e.end());
    std::uint32_t c = 0;
    for (std::size_t i = 0; i < e.size(); ++i)
        for (std::size_t j = i + 1; j < e.size(); ++j)
            if (e[j].first != e[i].first && e[j].second < e[i].second) ++c;
    return c;
}

std::uint32_t totalCrossings(const Graph& g) {
    std::uint32_t c = 0;
    for (std::uint32_t r = 0; r + 1 < g.ranks.size(); ++r) c += crossingsBetween(g, r);
    return c;
}

// Reorders rank r by the barycentre of each node's neighbours in the adjacent rank (`down`: predecessors).
void sweepRank(Graph& g, std::uint32_t r, bool down) {
    auto& nodes = g.ranks[r];
    std::vector<std::pair<double, std::uint32_t>> key;
    for (auto v : nodes) {
        const auto& nb = down ? g.pred[v] : g.succ[v];
        double b = g.pos[v];
        if (!nb.empty()) {
            b = 0;
            for (auto u : nb) b += g.pos[u];
            b /= double(nb.size());
        }
        key.emplace_back(b, v);
    }
    std::stable_sort(key.begin(), key.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (std::uint32_t i = 0; i < nodes.size(); ++i) nodes[i] = key[i].second;
    for (std::uint32_t i = 0; i < nodes.size(); ++i) g.pos[nodes[i]] = i;
}

// Minimal-displacement overlap removal in one rank with the order fixed: blocks of touching nodes sit at the
// mean of their members' desired positions (the classic 1D quadratic-programming merge).
void removeOverlap(const Graph& g, const std::vector<std::uint32_t>& nodes, const std::vector<double>& desired,
                   std::vector<double>& x, double gap) {
    struct Block {
        std::uint32_t first, last;
        double sum;
        std::uint32_t n;
        double lastOff;
    };
    std::vector<double> off(nodes.size(), 0.0);
    std::vector<Block> blocks;
    for (std::uint32_t i = 0; i < nodes.size(); ++i) {
        Block b{i, i, desired[nodes[i]], 1, 0.0};
        while (!blocks.empty()) {
            Block& a = blocks.back();
            const double sep = g.half[nodes[a.last]].x + g.half[nodes[b.first]].x + gap;
            if (a.sum / a.n + a.lastOff + sep <= b.sum / b.n) break;
            const double shift = a.lastOff + sep;
            for (auto k = b.first; k <= b.last; ++k) off[k] += shift;
            a.sum += b.sum - b.n * shift;
            a.n += b.n;
            a.lastOff = shift + b.lastOff;
            a.last = b.last;
            b = a;
            blocks.pop_back();
        }
        blocks.push_back(b);
    }
    for (const auto& b : blocks)
        for (auto k = b.first; k <= b.last; ++k) x[nodes[k]] = b.sum / b.n + off[k];
}

} // namespace

// Maps unfolded positions (flow along +z) to rows side by side along +x: row i holds z in [cut[i], cut[i+1]),
// odd rows run back (-z), so the end of one row meets the start of the next.
struct FoldMap {
    std::vector<double> cuts; // row starts in unfolded z, plus the end
    double pitch = 0.0;       // x distance between rows
    double length = 0.0;      // longest row
    std::uint32_t rows() const { return cuts.size() > 1 ? std::uint32_t(cuts.size() - 1) : 1u; }
    std::uint32_t rowOf(double z) const {
        std::uint32_t r = 0;
        while (r + 1 < rows() && z >= cuts[r + 1]) ++r;
        return r;
    }
    glm::vec3 place(glm::vec3 p, std::uint32_t r) const {
        if (rows() <= 1) return p;
        const double local = double(p.z) - cuts[r];
        const double z = (r % 2 == 0) ? local : (cuts[r + 1] - cuts[r]) - local;
        return glm::vec3(float(double(p.x) + pitch * r), p.y, float(z));
    }
    glm::vec3 apply(glm::vec3 p) const { return place(p, rowOf(p.z)); }
    // Points where the segment a -> b leaves one row and enters the next (two per crossed cut).
    std::vector<glm::vec3> turns(glm::vec3 a, glm::vec3 b) const {
        std::vector<glm::vec3> out;
        const std::uint32_t ra = rowOf(a.z), rb = rowOf(b.z);
        for (std::uint32_t r = ra; r < rb; ++r) {
            const double t = (cuts[r + 1] - a.z) / std::max(1e-9, double(b.z - a.z));
            glm::vec3 c = a + float(t) * (b - a);
            c.z = float(cuts[r + 1]);
            out.push_back(place(c - glm::vec3(0, 0, 1e-3f), r));
            out.push_back(place(c, r + 1));
        }
        return out;
    }
};

// Chooses the rows: about sqrt(length / (width * aspect)) of them, each cut in the gap between two ranks
// nearest the ideal position, preferring gaps where the stage (stagesOf) changes.
template <class G>
FoldMap planFold(const NetworkDesc& desc, const G& g, const std::vector<std::uint32_t>& nodeOf,
                 const std::vector<double>& zc, const std::vector<double>& depth, const std::vector<double>& width,
                 const std::vector<double>& x, const LayerLayoutOptions& opt) {
    FoldMap fold;
    const std::uint32_t R = std::uint32_t(zc.size());
    if (!opt.fold || R < std::max<std::uint32_t>(opt.foldMinRanks, 2)) return fold;
    double lo = 1e300, hi = -1e300;
    for (std::uint32_t r = 0; r < R; ++r)
        for (auto v : g.ranks[r]) {
            lo = std::min(lo, x[v] - g.half[v].x);
            hi = std::max(hi, x[v] + g.half[v].x);
        }
    const double W = std::max(1.0, hi - lo) + opt.nodeGap * 2.0;
    const double z0 = zc[0] - 0.5 * depth[0], z1 = zc[R - 1] + 0.5 * depth[R - 1];
    const double Z = z1 - z0;
    const auto rows = std::uint32_t(std::clamp(std::lround(std::sqrt(Z / (W * std::max(0.1f, opt.foldAspect)))), 1L, 24L));
    if (rows <= 1) return fold;
    // Stage of each rank (stagesOf) of its first real layer.
    const std::vector<std::string> stages = stagesOf(desc);
    std::vector<std::string> stage(R);
    for (std::uint32_t l = 0; l < desc.layers.size(); ++l) {
        const auto r = g.rank[nodeOf[l]];
        if (stage[r].empty()) stage[r] = stages[l];
    }
    // Candidate cuts: the middle of each gap between ranks.
    std::vector<double> gapMid(R - 1);
    for (std::uint32_t r = 0; r + 1 < R; ++r) gapMid[r] = 0.5 * (zc[r] + 0.5 * depth[r] + zc[r + 1] - 0.5 * depth[r + 1]);
    fold.cuts.push_back(z0);
    const double rowLen = Z / rows;
    std::uint32_t lastGap = 0;
    for (std::uint32_t k = 1; k < rows; ++k) {
        const double ideal = z0 + k * rowLen;
        double best = 1e300;
        std::uint32_t bestGap = UINT32_MAX;
        for (std::uint32_t r = std::max(lastGap, 1u); r + 1 < R; ++r) {
            double score = std::fabs(gapMid[r] - ideal) / rowLen;
            if (score > 0.35) continue;
            if (stage[r] != stage[r + 1]) score -= 0.2;
            if (score < best) best = score, bestGap = r;
        }
        if (bestGap == UINT32_MAX) continue;
        fold.cuts.push_back(gapMid[bestGap]);
        lastGap = bestGap + 1;
    }
    fold.cuts.push_back(z1 + 1.0);
    if (fold.cuts.size() < 3) return FoldMap{};
    for (size_t i = 0; i + 1 < fold.cuts.size(); ++i) fold.length = std::max(fold.length, fold.cuts[i + 1] - fold.cuts[i]);
    fold.pitch = W + opt.rankGapMin;
    (void)width;
    return fold;
}

Expected<LayerLayout> layoutLayers(const NetworkDesc& desc, const std::vector<glm::vec3>& localHalfExtent,
                                   const LayerLayoutOptions& opt) {
    const auto L = static_cast<std::uint32_t>(desc.layers.size());
    if (localHalfExtent.size() != L)
        return makeError(ErrorKind::Usage, "scene: layer layout got " + std::to_string(localHalfExtent.size()) +
                                               " footprints for " + std::to_string(L) + " layers");
    LayerLayout out;
    out.layers.resize(L);

    // --- Collapsed groups: each outermost collapsed group becomes one node.
    const auto groups = groupsFromNames(desc);
    std::vector<bool> collapsed(groups.size(), false);
    for (const auto& name : opt.collapsed) {
        auto it = std::find_if(groups.begin(), groups.end(), [&](const LayerGroup& g) { return g.name == name; });
        if (it == groups.end())
            return makeError(ErrorKind::Usage, "scene: cannot collapse '" + name +
                                                   "': no group of two or more layers has that name prefix");
        collapsed[it - groups.begin()] = true;
    }
    for (std::uint32_t gi = 0; gi < groups.size(); ++gi) // parents precede children: outermost wins
        if (collapsed[gi])
            for (auto l : groups[gi].layers)
                if (out.layers[l].collapsedGroup < 0) out.layers[l].collapsedGroup = static_cast<std::int32_t>(gi);

    Graph g;
    std::vector<std::uint32_t> nodeOf(L);
    std::map<std::int32_t, std::uint32_t> groupNode;
    std::vector<std::int32_t> nodeGroup; // collapsed group of a real node, or -1
    std::vector<std::uint32_t> nodeLayer;
    for (std::uint32_t l = 0; l < L; ++l) {
        const auto cg = out.layers[l].collapsedGroup;
        if (cg < 0) {
            nodeOf[l] = g.addNode(0, localHalfExtent[l], false);
            nodeGroup.push_back(-1);
            nodeLayer.push_back(l);
        } else if (auto it = groupNode.find(cg); it != groupNode.end()) {
            nodeOf[l] = it->second;
        } else {
            float side = opt.collapsedSide;
            if (side <= 0)
                for (auto m : groups[cg].layers)
                    side = std::max(side, std::max(localHalfExtent[m].x, localHalfExtent[m].y));
            side = std::max(side, 1.0f);
            nodeOf[l] = groupNode[cg] = g.addNode(0, glm::vec3(0.5f * side), false);
            nodeGroup.push_back(cg);
            nodeLayer.push_back(l);
        }
    }
    const auto realCount = static_cast<std::uint32_t>(g.rank.size());
    std::set<std::pair<std::uint32_t, std::uint32_t>> cedgeSet;
    std::vector<LayerEdge> cedges;
    for (const auto& e : desc.edges) {
        const auto u = nodeOf[e.from], v = nodeOf[e.to];
        if (u != v && cedgeSet.insert({u, v}).second) cedges.push_back({u, v});
    }
    auto topo = topologicalOrder(realCount, cedges);
    if (!topo)
        return makeError(ErrorKind::Usage,
                         "scene: collapsing the requested groups would make the layer graph cyclic (a path "
                         "leaves a collapsed group and re-enters it); expand one of them");

    // --- Longest-path ranks, then a dummy node per rank crossed by a long edge.
    std::vector<std::vector<std::uint32_t>> cpred(realCount);
    for (const auto& e : cedges) cpred[e.to].push_back(e.from);
    for (auto v : *topo)
        for (auto u : cpred[v]) g.rank[v] = std::max(g.rank[v], g.rank[u] + 1);
    std::uint32_t R = 0;
    for (std::uint32_t v = 0; v < realCount; ++v) R = std::max(R, g.rank[v] + 1);
    g.ranks.resize(R);
    // Start from the input order (node ids follow layer indices); the sweeps improve on it.
    for (std::uint32_t v = 0; v < realCount; ++v) g.ranks[g.rank[v]].push_back(v);
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<std::uint32_t>> chain;
    for (const auto& e : cedges) {
        std::uint32_t prev = e.from;
        auto& c = chain[{e.from, e.to}];
        for (auto r = g.rank[e.from] + 1; r < g.rank[e.to]; ++r) {
            const auto d = g.addNode(r, glm::vec3(0.5f * opt.laneWidth, 0.0f, 0.0f), true);
            g.ranks[r].push_back(d);
            g.addEdge(prev, d);
            c.push_back(d);
            prev = d;
        }
        g.addEdge(prev, e.to);
    }
    g.updatePos();

    // --- Crossing minimisation: alternate down and up barycentre sweeps, keep the best order seen.
    out.initialCrossings = totalCrossings(g);
    auto best = g.ranks;
    std::uint32_t bestC = out.initialCrossings;
    for (std::uint32_t it = 0; it < opt.sweeps && bestC > 0; ++it) {
        for (std::uint32_t r = 1; r < R; ++r) sweepRank(g, r, true);
        for (std::uint32_t r = R - 1; r-- > 0;) sweepRank(g, r, false);
        const auto c = totalCrossings(g);
        if (c < bestC) bestC = c, best = g.ranks;
    }
    g.ranks = best;
    g.updatePos();
    out.crossings = bestC;

    // --- x placement: packed start, then iterate towards neighbour means without overlap.
    const auto N = static_cast<std::uint32_t>(g.rank.size());
    std::vector<double> x(N, 0.0), desired(N, 0.0);
    for (auto& nodes : g.ranks) {
        double w = 0;
        for (auto v : nodes) w += 2.0 * g.half[v].x + opt.nodeGap;
        double cur = -0.5 * w;
        for (auto v : nodes) {
            x[v] = cur + g.half[v].x;
            cur += 2.0 * g.half[v].x + opt.nodeGap;
        }
    }
    for (std::uint32_t it = 0; it < opt.placementIterations; ++it) {
        const bool down = it % 2 == 0;
        for (std::uint32_t k = 0; k < R; ++k) {
            const auto r = down ? k : R - 1 - k;
            for (auto v : g.ranks[r]) {
                const auto& nb = down ? g.pred[v] : g.succ[v];
                const auto& nb2 = down ? g.succ[v] : g.pred[v];
                const auto& use = nb.empty() ? nb2 : nb;
                if (use.empty()) {
                    desired[v] = x[v];
                    continue;
                }
                double s = 0;
                for (auto u : use) s += x[u];
                desired[v] = s / double(use.size());
            }
            removeOverlap(g, g.ranks[r], desired, x, opt.nodeGap);
        }
    }

    // --- z placement: ranks are slabs; the gap grows with the ranks' width so edges keep a readable slope.
    std::vector<double> depth(R, 0.0), width(R, 0.0), zc(R, 0.0);
    for (std::uint32_t r = 0; r < R; ++r) {
        double lo = 1e300, hi = -1e300;
        for (auto v : g.ranks[r]) {
            depth[r] = std::max(depth[r], 2.0 * g.half[v].z);
            lo = std::min(lo, x[v] - g.half[v].x);
            hi = std::max(hi, x[v] + g.half[v].x);
        }
        width[r] = std::max(0.0, hi - lo);
    }
    for (std::uint32_t r = 1; r < R; ++r) {
        const double gap = std::max<double>(opt.rankGapMin, opt.rankGapFactor * std::max(width[r - 1], width[r]));
        zc[r] = zc[r - 1] + 0.5 * depth[r - 1] + gap + 0.5 * depth[r];
    }

    // --- Folding of long chains (see LayerLayoutOptions::fold).
    const FoldMap fold = planFold(desc, g, nodeOf, zc, depth, width, x, opt);

    // --- Outputs.
    out.rankCount = R;
    out.rows = fold.rows();
    for (std::uint32_t l = 0; l < L; ++l) {
        const auto v = nodeOf[l];
        auto& p = out.layers[l];
        p.center = fold.apply(glm::vec3(float(x[v]), 0.0f, float(zc[g.rank[v]])));
        p.rank = g.rank[v];
        p.orderInRank = g.pos[v];
        if (p.collapsedGroup < 0) {
            p.halfExtent = localHalfExtent[l];
        } else {
            const auto h = localHalfExtent[l];
            p.scale = std::min(1.0f, g.half[v].x / std::max({h.x, h.y, 1e-6f}));
            p.halfExtent = h * p.scale;
        }
        out.bounds.extend(p.center - p.halfExtent);
        out.bounds.extend(p.center + p.halfExtent);
    }
    auto nodePoint = [&](std::uint32_t v, double z) { return glm::vec3(float(x[v]), 0.0f, float(z)); };
    // Route points in unfolded space, folded; a segment that crosses a cut turns at the row ends.
    auto emit = [&](const std::vector<glm::vec3>& pts) {
        for (size_t i = 0; i < pts.size(); ++i) {
            if (i > 0)
                for (const glm::vec3& t : fold.turns(pts[i - 1], pts[i])) out.routePoints.push_back(t);
            out.routePoints.push_back(fold.apply(pts[i]));
        }
    };
    for (const auto& e : desc.edges) {
        EdgeRoute route;
        route.from = e.from;
        route.to = e.to;
        route.firstPoint = static_cast<std::uint32_t>(out.routePoints.size());
        const auto u = nodeOf[e.from], v = nodeOf[e.to];
        if (u != v) {
            std::vector<glm::vec3> pts;
            auto push = [&](glm::vec3 p) {
                if (pts.empty() || glm::length(pts.back() - p) > 1e-6f) pts.push_back(p);
            };
            const auto ru = g.rank[u], rv = g.rank[v];
            push(nodePoint(u, zc[ru] + g.half[u].z));
            push(nodePoint(u, zc[ru] + 0.5 * depth[ru]));
            for (auto d : chain[{u, v}]) {
                push(nodePoint(d, zc[g.rank[d]] - 0.5 * depth[g.rank[d]]));
                push(nodePoint(d, zc[g.rank[d]] + 0.5 * depth[g.rank[d]]));
            }
            push(nodePoint(v, zc[rv] - 0.5 * depth[rv]));
            push(nodePoint(v, zc[rv] - g.half[v].z));
            emit(pts);
            route.pointCount = static_cast<std::uint32_t>(out.routePoints.size()) - route.firstPoint;
            route.skip = rv - ru > 1;
        }
        out.routes.push_back(route);
    }
    out.groups.resize(groups.size());
    for (std::uint32_t gi = 0; gi < groups.size(); ++gi) {
        auto& gb = out.groups[gi];
        gb.name = groups[gi].name;
        gb.parent = groups[gi].parent;
        gb.collapsed = collapsed[gi];
        gb.layerCount = static_cast<std::uint32_t>(groups[gi].layers.size());
        for (auto l : groups[gi].layers) {
            gb.box.extend(out.layers[l].center - out.layers[l].halfExtent);
            gb.box.extend(out.layers[l].center + out.layers[l].halfExtent);
        }
    }
    (void)nodeGroup;
    (void)nodeLayer;
    return out;
}

} // namespace ts::scene
