// Scene layout: layer placement invariants (no overlap, DAG order, routed skips, fewer crossings, groups),
// neuron grids and orderings, and the cluster tree's structure against brute-force references.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "engine/scene/cluster_tree.hpp"
#include "engine/scene/layer_layout.hpp"
#include "engine/scene/neuron_layout.hpp"
#include "engine/scene/scene.hpp"
#include "tests/scene/scene_fixtures.hpp"

using namespace ts;
using namespace ts::scene;
using namespace ts::scene::test;

namespace {

bool boxesOverlap(const LayerPlacement& a, const LayerPlacement& b) {
    for (int k = 0; k < 3; ++k)
        if (std::fabs(a.center[k] - b.center[k]) >= a.halfExtent[k] + b.halfExtent[k]) return false;
    return true;
}

void expectLayoutInvariants(const NetworkDesc& d, const LayerLayout& lay) {
    const auto L = d.layers.size();
    for (std::size_t i = 0; i < L; ++i)
        for (std::size_t j = i + 1; j < L; ++j) {
            if (lay.layers[i].collapsedGroup >= 0 || lay.layers[j].collapsedGroup >= 0) continue;
            EXPECT_FALSE(boxesOverlap(lay.layers[i], lay.layers[j]))
                << d.layers[i].name << " overlaps " << d.layers[j].name;
        }
    ASSERT_EQ(lay.routes.size(), d.edges.size());
    for (std::size_t e = 0; e < d.edges.size(); ++e) {
        const auto& A = lay.layers[d.edges[e].from];
        const auto& B = lay.layers[d.edges[e].to];
        if (A.collapsedGroup >= 0 && A.collapsedGroup == B.collapsedGroup) continue;
        // Data flows along +z: the target's front face lies beyond the source's back face.
        EXPECT_GT(B.center.z - B.halfExtent.z, A.center.z + A.halfExtent.z)
            << d.layers[d.edges[e].from].name << " -> " << d.layers[d.edges[e].to].name;
        const auto& r = lay.routes[e];
        ASSERT_GE(r.pointCount, 2u);
        const auto* pts = lay.routePoints.data() + r.firstPoint;
        // Routes start and end on the layers' faces (on the group box for layers of a collapsed group).
        if (A.collapsedGroup < 0) {
            EXPECT_NEAR(pts[0].z, A.center.z + A.halfExtent.z, 1e-3);
        } else {
            EXPECT_GE(pts[0].z, A.center.z + A.halfExtent.z - 1e-3);
        }
        if (B.collapsedGroup < 0) {
            EXPECT_NEAR(pts[r.pointCount - 1].z, B.center.z - B.halfExtent.z, 1e-3);
        } else {
            EXPECT_LE(pts[r.pointCount - 1].z, B.center.z - B.halfExtent.z + 1e-3);
        }
        EXPECT_EQ(r.skip, B.rank - A.rank > 1);
        // No route segment passes through a layer box other than its own two ends.
        for (std::uint32_t k = 1; k < r.pointCount; ++k)
            for (std::size_t l = 0; l < L; ++l) {
                if (l == d.edges[e].from || l == d.edges[e].to || lay.layers[l].collapsedGroup >= 0) continue;
                const auto& P = lay.layers[l];
                EXPECT_FALSE(segmentHitsBox(pts[k - 1], pts[k], P.center - P.halfExtent, P.center + P.halfExtent))
                    << "route " << d.layers[d.edges[e].from].name << " -> " << d.layers[d.edges[e].to].name
                    << " crosses " << d.layers[l].name;
            }
    }
}

std::vector<glm::vec3> footprints(const NetworkDesc& d) {
    std::vector<glm::vec3> h;
    for (const auto& l : d.layers) h.push_back(layoutLayerNeurons(l, nullptr, {}).halfExtent);
    return h;
}

// Crossings measured from final x coordinates (independent of the layout's own counter).
std::uint32_t geometricCrossings(const NetworkDesc& d, const LayerLayout& lay) {
    std::uint32_t c = 0;
    for (std::size_t i = 0; i < d.edges.size(); ++i)
        for (std::size_t j = i + 1; j < d.edges.size(); ++j) {
            const auto &e = d.edges[i], &f = d.edges[j];
            const auto &a0 = lay.layers[e.from], &a1 = lay.layers[e.to], &b0 = lay.layers[f.from], &b1 = lay.layers[f.to];
            if (a0.rank != b0.rank || a1.rank != b1.rank || a1.rank != a0.rank + 1) continue;
            if (e.from == f.from || e.to == f.to) continue;
            if ((a0.center.x < b0.center.x) != (a1.center.x < b1.center.x)) ++c;
        }
    return c;
}

} // namespace

TEST(LayerLayout, ResnetLikeKeepsInvariants) {
    const auto d = resnetLike();
    auto lay = layoutLayers(d, footprints(d), {});
    ASSERT_TRUE(lay) << lay.error().message;
    expectLayoutInvariants(d, *lay);
    std::uint32_t skips = 0;
    for (const auto& r : lay->routes) skips += r.skip;
    EXPECT_EQ(skips, 3u); // the two residual skips and branch.a -> concat (branch.b has two layers)
    // Branches of the split sit side by side in one rank.
    EXPECT_EQ(lay->layers[12].rank, lay->layers[13].rank); // branch.a, branch.b
}

TEST(LayerLayout, BarycentreSweepsRemoveCrossings) {
    // Input order puts the two chains crosswise: a0 -> b1, a1 -> b0, and b1 -> c1, b0 -> c0.
    NetworkDesc d;
    for (auto n : {"s", "a0", "a1", "b0", "b1", "c0", "c1"}) d.layers.push_back(layer(n, LayerKind::Dense, {16}));
    d.edges = {{0, 1}, {0, 2}, {1, 4}, {2, 3}, {3, 6}, {4, 5}};
    auto lay = layoutLayers(d, footprints(d), {});
    ASSERT_TRUE(lay) << lay.error().message;
    EXPECT_GT(lay->initialCrossings, 0u);
    EXPECT_EQ(lay->crossings, 0u);
    EXPECT_EQ(geometricCrossings(d, *lay), 0u);
    expectLayoutInvariants(d, *lay);
}

TEST(LayerLayout, HundredsOfLayersWithSkips) {
    NetworkDesc d;
    std::mt19937 rng(7);
    for (int i = 0; i < 400; ++i) {
        const std::int64_t w = 4 + rng() % 60;
        d.layers.push_back(layer("block" + std::to_string(i / 4) + ".l" + std::to_string(i % 4), LayerKind::Dense, {w}));
        if (i) d.edges.push_back({std::uint32_t(i - 1), std::uint32_t(i)});
        if (i >= 3 && i % 4 == 3) d.edges.push_back({std::uint32_t(i - 3), std::uint32_t(i)});
    }
    LayerLayoutOptions straight;
    straight.fold = false; // the invariants below assume one row along +z
    auto lay = layoutLayers(d, footprints(d), straight);
    ASSERT_TRUE(lay) << lay.error().message;
    EXPECT_EQ(lay->rankCount, 400u);
    EXPECT_EQ(lay->rows, 1u);
    expectLayoutInvariants(d, *lay);

    // Folded (the default for deep chains): rows side by side, a footprint about as deep as it is wide instead
    // of a thread 400 ranks long, still no two layers overlapping, every stage cut where a block ends.
    auto folded = layoutLayers(d, footprints(d), {});
    ASSERT_TRUE(folded) << folded.error().message;
    EXPECT_GT(folded->rows, 2u);
    const glm::vec3 e = folded->bounds.extent(), e1 = lay->bounds.extent();
    EXPECT_GT(e1.z / e1.x, 20.0f) << "unfolded: a thread";
    EXPECT_LT(e.z / e.x, 3.0f) << "folded: rows " << folded->rows;
    EXPECT_GT(e.z / e.x, 0.3f) << "folded: rows " << folded->rows;
    for (std::size_t i = 0; i < d.layers.size(); ++i)
        for (std::size_t j = i + 1; j < d.layers.size(); ++j)
            EXPECT_FALSE(boxesOverlap(folded->layers[i], folded->layers[j]))
                << d.layers[i].name << " overlaps " << d.layers[j].name;
    // Consecutive layers stay neighbours: a chain edge is short compared with the picture, even across a cut.
    for (std::size_t i = 1; i < d.layers.size(); ++i)
        EXPECT_LT(glm::length(folded->layers[i].center - folded->layers[i - 1].center), 0.5f * glm::length(e))
            << d.layers[i].name;
    ASSERT_EQ(folded->routes.size(), d.edges.size());
}

TEST(LayerLayout, CollapsedGroupsBecomeOneBox) {
    const auto d = resnetLike();
    LayerLayoutOptions opt;
    opt.collapsed = {"layer1.0"};
    auto lay = layoutLayers(d, footprints(d), opt);
    ASSERT_TRUE(lay) << lay.error().message;
    const auto groups = groupsFromNames(d);
    auto it = std::find_if(groups.begin(), groups.end(), [](auto& g) { return g.name == "layer1.0"; });
    ASSERT_NE(it, groups.end());
    EXPECT_EQ(it->layers.size(), 5u);
    std::set<std::uint32_t> ranks;
    for (auto l : it->layers) {
        EXPECT_EQ(lay->layers[l].collapsedGroup, it - groups.begin());
        ranks.insert(lay->layers[l].rank);
    }
    EXPECT_EQ(ranks.size(), 1u);
    expectLayoutInvariants(d, *lay);
    // The collapsed block takes fewer ranks than the expanded one.
    auto full = layoutLayers(d, footprints(d), {});
    ASSERT_TRUE(full);
    EXPECT_EQ(full->rankCount - lay->rankCount, 4u);
    // Nested groups: "layer1" contains both blocks.
    auto parent = std::find_if(groups.begin(), groups.end(), [](auto& g) { return g.name == "layer1"; });
    ASSERT_NE(parent, groups.end());
    EXPECT_EQ(it->parent, parent - groups.begin());

    opt.collapsed = {"nope"};
    auto bad = layoutLayers(d, footprints(d), opt);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("nope"), std::string::npos);
}

TEST(LayerLayout, RejectsCyclesAndBadShapes) {
    auto d = mlp({4, 5, 6});
    d.edges.push_back({2, 0});
    auto st = validate(d, {});
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("cycle"), std::string::npos);
    auto e = mlp({4, 5});
    NetworkData data;
    data.layers.resize(2);
    data.layers[1].value = {1, 2, 3};
    st = validate(e, data);
    ASSERT_FALSE(st);
    EXPECT_NE(st.message().find("fc1"), std::string::npos);
    EXPECT_NE(st.message().find("expected 5"), std::string::npos);
    auto s = buildScene(e, data);
    EXPECT_FALSE(s);
}

TEST(NeuronLayout, DenseGridIsNearSquareAndDistinct) {
    for (std::int64_t n : {1, 7, 10, 64, 1000}) {
        auto ll = layoutLayerNeurons(layer("x", LayerKind::Dense, {n}), nullptr, {});
        ASSERT_EQ(ll.position.size(), std::size_t(n));
        std::set<std::pair<float, float>> seen;
        for (auto& p : ll.position) {
            EXPECT_TRUE(seen.insert({p.x, p.y}).second);
            EXPECT_LE(std::fabs(p.x) + ll.radius, ll.halfExtent.x + 1e-4f);
            EXPECT_LE(std::fabs(p.y) + ll.radius, ll.halfExtent.y + 1e-4f);
        }
        const auto cols = std::ceil(std::sqrt(double(n)));
        EXPECT_NEAR(ll.halfExtent.x, 0.5 * (cols - 1) + 0.4, 1e-4);
        EXPECT_LE(ll.halfExtent.y, ll.halfExtent.x + 1e-4);
    }
}

TEST(NeuronLayout, ConvMapsAreSeparateSlabs) {
    const auto L = layer("c", LayerKind::Conv, {6, 4, 5});
    auto ll = layoutLayerNeurons(L, nullptr, {});
    std::vector<Aabb> maps(6);
    for (std::uint32_t c = 0; c < 6; ++c)
        for (std::uint32_t h = 0; h < 4; ++h)
            for (std::uint32_t w = 0; w < 5; ++w) {
                const auto& p = ll.position[(c * 4 + h) * 5 + w];
                maps[c].extend(p, ll.radius);
                if (w) {
                    EXPECT_NEAR(p.x - ll.position[(c * 4 + h) * 5 + w - 1].x, 1.0f, 1e-5f); // w along +x
                }
                if (h) {
                    EXPECT_NEAR(ll.position[(c * 4 + h - 1) * 5 + w].y - p.y, 1.0f, 1e-5f); // h along -y
                }
            }
    for (int a = 0; a < 6; ++a) {
        EXPECT_NEAR(maps[a].extent().x, 4.8f, 1e-4f);
        EXPECT_NEAR(maps[a].extent().y, 3.8f, 1e-4f);
        for (int b = a + 1; b < 6; ++b) {
            const bool apart = maps[a].hi.x < maps[b].lo.x || maps[b].hi.x < maps[a].lo.x ||
                               maps[a].hi.y < maps[b].lo.y || maps[b].hi.y < maps[a].lo.y;
            EXPECT_TRUE(apart) << a << " " << b;
        }
    }
}

// A sequence layer [T, D] (T tokens of D features) is T tiles of rows x cols = D, near-square, side by side:
// a ViT block's [17, 768] is 17 tiles of 24 x 32 in a near-square grid, not 17 rows 768 long. Feature d of
// token t sits at row d / 32, column d % 32 of tile t; tiles do not overlap. A D without a divisor near its
// square root (17) keeps its row.
TEST(NeuronLayout, SequenceLayersAreTilesNotThreads) {
    EXPECT_EQ(slabTile(1, 768), std::make_pair(24u, 32u));
    EXPECT_EQ(slabTile(1, 64), std::make_pair(8u, 8u));
    EXPECT_EQ(slabTile(1, 1000), std::make_pair(25u, 40u));
    EXPECT_EQ(slabTile(1, 17), std::make_pair(1u, 17u)); // prime: no tile
    EXPECT_EQ(slabTile(1, 8), std::make_pair(1u, 8u));   // short rows stay rows
    EXPECT_EQ(slabTile(4, 5), std::make_pair(4u, 5u));   // conv maps as they are
    const std::uint32_t T = 17, D = 768;
    auto ll = layoutLayerNeurons(layer("encoder.layers.encoder_layer_0", LayerKind::Other, {T, D}), nullptr, {});
    ASSERT_EQ(ll.position.size(), std::size_t(T * D));
    std::vector<Aabb> tiles(T);
    for (std::uint32_t t = 0; t < T; ++t)
        for (std::uint32_t d = 0; d < D; ++d) {
            const auto& p = ll.position[t * D + d];
            tiles[t].extend(p, ll.radius);
            if (d % 32) {
                EXPECT_NEAR(p.x - ll.position[t * D + d - 1].x, 1.0f, 1e-5f); // along +x in a tile row
            }
            if (d >= 32) {
                EXPECT_NEAR(ll.position[t * D + d - 32].y - p.y, 1.0f, 1e-5f); // rows along -y
            }
        }
    for (std::uint32_t a = 0; a < T; ++a) {
        EXPECT_NEAR(tiles[a].extent().x, 31.8f, 1e-4f);
        EXPECT_NEAR(tiles[a].extent().y, 23.8f, 1e-4f);
        for (std::uint32_t b = a + 1; b < T; ++b)
            EXPECT_TRUE(tiles[a].hi.x < tiles[b].lo.x || tiles[b].hi.x < tiles[a].lo.x || tiles[a].hi.y < tiles[b].lo.y ||
                        tiles[b].hi.y < tiles[a].lo.y)
                << a << " " << b;
    }
    const float aspect = ll.halfExtent.x / ll.halfExtent.y;
    EXPECT_GT(aspect, 0.5f);
    EXPECT_LT(aspect, 2.0f) << "a [17, 768] layer should be about square, not a thread";
}

// A channels-last layer [H, W, C] (ConvNeXt, Swin) is drawn as C maps of H x W: its neuron (h, w, c) sits
// where neuron (c, h, w) of the same layer in [C, H, W] order sits, also when maps are ordered by a
// statistic; the LOD tree splits it by position (its channel blocks are not contiguous).
TEST(NeuronLayout, ChannelsLastLayersAreMapsLikeConvolutions) {
    const std::uint32_t H = 4, W = 6, C = 5;
    LayerSpec hwc = layer("features.1.0.block.3", LayerKind::Dense, {H, W, C});
    hwc.channelsLast = true;
    const LayerSpec chw = layer("conv", LayerKind::Conv, {C, H, W});
    LayerStats sh, sc;
    sh.value.resize(H * W * C);
    sc.value.resize(H * W * C);
    for (std::uint32_t c = 0; c < C; ++c)
        for (std::uint32_t i = 0; i < H * W; ++i) {
            const float v = float((c * 7) % C) + 0.01f * float(i); // channel means in a shuffled order
            sh.value[i * C + c] = v;
            sc.value[c * H * W + i] = v;
        }
    for (auto order : {NeuronOrder::Index, NeuronOrder::Statistic}) {
        NeuronLayoutOptions opt;
        opt.order = order;
        auto a = layoutLayerNeurons(hwc, &sh, opt), b = layoutLayerNeurons(chw, &sc, opt);
        ASSERT_EQ(a.position.size(), b.position.size());
        EXPECT_EQ(a.slotOrder, b.slotOrder);
        for (std::uint32_t c = 0; c < C; ++c)
            for (std::uint32_t i = 0; i < H * W; ++i) {
                const auto& p = a.position[i * C + c];
                const auto& q = b.position[c * H * W + i];
                EXPECT_EQ(p, q) << "channel " << c << " position " << i << " order " << int(order);
            }
        EXPECT_EQ(a.halfExtent, b.halfExtent);
    }
    // Without the flag the same shape is 4 maps of 6 x 5 (what the layout did before).
    LayerSpec plain = hwc;
    plain.channelsLast = false;
    EXPECT_NE(layoutLayerNeurons(plain, nullptr, {}).halfExtent,
              layoutLayerNeurons(chw, nullptr, {}).halfExtent);
}

TEST(NeuronLayout, OrderByStatisticAndByCluster) {
    const std::uint32_t n = 200;
    LayerStats st;
    st.value = randomVector(n, 3);
    NeuronLayoutOptions opt;
    opt.order = NeuronOrder::Statistic;
    auto ll = layoutLayerNeurons(layer("d", LayerKind::Dense, {n}), &st, opt);
    // Reading slots in row-major order (top row first) gives descending values.
    std::vector<std::uint32_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0u);
    std::sort(ids.begin(), ids.end(), [&](auto a, auto b) {
        const auto &p = ll.position[a], &q = ll.position[b];
        return p.y != q.y ? p.y > q.y : p.x < q.x;
    });
    for (std::uint32_t k = 1; k < n; ++k) EXPECT_GE(st.value[ids[k - 1]], st.value[ids[k]]);

    // Four well-separated profile groups, interleaved by index: clustering must make each group contiguous.
    st.probeCount = 6;
    st.profile.resize(n * 6);
    auto noise = randomVector(n * 6, 5, -0.05f, 0.05f);
    for (std::uint32_t i = 0; i < n; ++i)
        for (std::uint32_t p = 0; p < 6; ++p) st.profile[i * 6 + p] = float((i * 7) % 4 == p % 4) * 3.0f + noise[i * 6 + p];
    opt.order = NeuronOrder::Cluster;
    ll = layoutLayerNeurons(layer("d", LayerKind::Dense, {n}), &st, opt);
    std::vector<std::uint32_t> groupRuns(4, 0);
    std::uint32_t prev = ~0u;
    for (auto id : ll.slotOrder) {
        const auto g = (id * 7) % 4;
        if (g != prev) ++groupRuns[g];
        prev = g;
    }
    for (auto r : groupRuns) EXPECT_EQ(r, 1u);
}

TEST(ClusterTree, PartitionsNeuronsAndBoundsContainMembers) {
    const auto d = resnetLike();
    NetworkData data;
    data.layers.resize(d.layers.size());
    const auto off = neuronOffsets(d);
    // Profiles for the dense head so it is clustered by k-means; maps split spatially.
    data.layers.back().probeCount = 4;
    data.layers.back().profile = randomVector(10 * 4, 9);
    for (std::uint32_t l = 0; l < d.layers.size(); ++l) data.layers[l].value = randomVector(off[l + 1] - off[l], 100 + l);
    SceneOptions so;
    so.clusters.leafSize = 4;
    auto s = buildScene(d, data, so);
    ASSERT_TRUE(s) << s.error().message;
    const auto& t = s->tree;
    std::vector<int> seen(off.back(), 0);
    for (std::uint32_t i = 0; i < t.nodes.size(); ++i) {
        const auto& nd = t.nodes[i];
        if (nd.childCount == 0) {
            EXPECT_LE(nd.end - nd.begin, 4u);
            for (auto k = nd.begin; k < nd.end; ++k) {
                ++seen[t.order[k]];
                EXPECT_EQ(t.leafOf[t.order[k]], i);
            }
        } else {
            EXPECT_EQ(t.nodes[nd.firstChild].begin, nd.begin);
            EXPECT_EQ(t.nodes[nd.firstChild + nd.childCount - 1].end, nd.end);
            for (std::uint32_t c = 1; c < nd.childCount; ++c)
                EXPECT_EQ(t.nodes[nd.firstChild + c].begin, t.nodes[nd.firstChild + c - 1].end);
        }
        // Every member sphere lies inside the node sphere; the value is the float64 mean of members.
        double sum = 0, sumSq = 0;
        for (auto k = nd.begin; k < nd.end; ++k) {
            const auto n = t.order[k];
            EXPECT_EQ(s->layerOf(n), nd.layer);
            EXPECT_LE(glm::length(s->position[n] - nd.center) + s->radius[n], nd.boundRadius * (1 + 1e-5f) + 1e-4f);
            sum += s->value[n];
            sumSq += double(s->value[n]) * s->value[n];
        }
        const double count = double(nd.end - nd.begin);
        EXPECT_NEAR(nd.value, sum / count, 1e-5);
        // Drawn with the signed root mean square: strength survives members of both signs.
        EXPECT_NEAR(nd.display, std::copysign(std::sqrt(sumSq / count), sum), 1e-5);
    }
    for (auto c : seen) EXPECT_EQ(c, 1);
    // Conv layers: one node per feature map, holding exactly that channel.
    const std::uint32_t stem = 1;
    ASSERT_EQ(t.channelNode[stem].size(), 8u);
    for (std::uint32_t c = 0; c < 8; ++c) {
        const auto& nd = t.nodes[t.channelNode[stem][c]];
        EXPECT_EQ(nd.end - nd.begin, 64u);
        for (auto k = nd.begin; k < nd.end; ++k) EXPECT_EQ((t.order[k] - off[stem]) / 64, c);
    }
}

// The LOD tree of a channels-last layer: its first split groups neighbouring positions, so each cluster
// covers part of the layer (split as if its channel blocks were contiguous, each "channel" spread over every
// map).
TEST(ClusterTree, ChannelsLastLayersSplitIntoCompactClusters) {
    NetworkDesc d;
    d.layers.push_back(layer("in", LayerKind::Input, {16}));
    LayerSpec hwc = layer("norm", LayerKind::Norm, {16, 16, 32});
    hwc.channelsLast = true;
    d.layers.push_back(hwc);
    d.edges.push_back({0, 1});
    auto s = buildScene(d, {});
    ASSERT_TRUE(s) << s.error().message;
    const auto& t = s->tree;
    const auto& root = t.nodes[t.layerRoot[1]];
    ASSERT_GT(root.childCount, 1u);
    for (std::uint32_t k = 0; k < root.childCount; ++k) {
        const auto& child = t.nodes[root.firstChild + k];
        EXPECT_LT(child.boundRadius, 0.75f * root.boundRadius) << "cluster " << k << " spans the layer";
    }
}

TEST(ClusterTree, KmeansSeparatesGroups) {
    // 3 groups of 50 in 5-D, interleaved; the first split must put each group into its own child.
    const std::uint32_t n = 150, dim = 5;
    auto data = randomVector(n * dim, 11, -0.1f, 0.1f);
    for (std::uint32_t i = 0; i < n; ++i) data[i * dim + i % 3] += 5.0f;
    std::vector<std::uint32_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0u);
    auto b = kmeansSplit(data.data(), dim, ids.data(), n, 3, 42);
    ASSERT_EQ(b.size(), 4u);
    for (std::size_t g = 0; g + 1 < b.size(); ++g) {
        EXPECT_EQ(b[g + 1] - b[g], 50u);
        for (auto k = b[g]; k < b[g + 1]; ++k) EXPECT_EQ(ids[k] % 3, ids[b[g]] % 3);
    }
    // Identical rows still split (equal chunks) so recursion terminates.
    std::vector<float> same(40 * 2, 1.0f);
    std::iota(ids.begin(), ids.begin() + 40, 0u);
    auto c = kmeansSplit(same.data(), 2, ids.data(), 40, 4, 1);
    EXPECT_EQ(c.size(), 5u);
}

// Stage labels drop the prefix every repeated block shares, unless that leaves bare numbers.
TEST(StageLabels, DropTheSharedPrefixWhenWhatRemainsIsAName) {
    std::vector<std::string> vit;
    for (int i = 0; i < 12; ++i)
        vit.push_back("encoder.layers.encoder_layer_" + std::to_string(i));
    EXPECT_EQ(stageLabelPrefix(vit), "encoder.layers.");
    EXPECT_EQ(stageLabelPrefix({"features.denseblock1", "features.transition1", "features.denseblock2"}),
              "features.");
    EXPECT_EQ(stageLabelPrefix({"features.0", "features.1", "features.2"}), "") << "'0', '1' say nothing";
    EXPECT_EQ(stageLabelPrefix({"layer1", "layer2", "layer3", "layer4"}), "") << "no dots";
    EXPECT_EQ(stageLabelPrefix({"encoder.layers.a", "decoder.layers.b"}), "") << "nothing shared";
    EXPECT_EQ(stageLabelPrefix({"blocks.stage1", "blocks.stage1x"}), "blocks.") << "whole components only";
    EXPECT_EQ(stageLabelPrefix({"a.b.c1", "a.b.c2", "a.bx.c3"}), "a.");
    EXPECT_EQ(stageLabelPrefix({"only.one"}), "") << "one stage: nothing repeats";
}
