// Edge bundling, two algorithms with one output: hierarchical edge bundling (Holten 2006) over the cluster
// tree, in 3D: each edge becomes a cubic B-spline through the centres of the clusters on its tree path,
// straightened by beta, so edges that share clusters merge into bundles; and kernel-density bundling
// (KDEEB / CUBu) in image space, which needs no tree. Output is polylines for instanced ribbons.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/cluster_tree.hpp"
#include "engine/scene/edges.hpp"

namespace ts::scene {

// 16 bytes: a polyline vertex and its arc-length share along the line (0 at the source, 1 at the target),
// for fades or arrow heads in the ribbon shader.
struct EdgePoint {
    glm::vec3 position;
    float t;
};
static_assert(sizeof(EdgePoint) == 16);

// 16 bytes: one polyline = points [firstPoint, firstPoint + pointCount). Colour from the sign of `weight`,
// width from `magnitude` = |weight| / max |weight| over the set, in [0, 1].
struct EdgeLine {
    std::uint32_t firstPoint;
    std::uint32_t pointCount;
    float weight;
    float magnitude;
};
static_assert(sizeof(EdgeLine) == 16);

struct EdgePolylines {
    std::vector<EdgePoint> points;
    std::vector<EdgeLine> lines;
};

struct BundleOptions {
    float beta = 0.85f;          // bundling strength: 0 straight lines, 1 the full tree path
    std::uint32_t samples = 24;  // points per polyline (>= 2)
    std::uint32_t topLevel = 1;  // highest tree level a path climbs to (0: the layer roots, as Holten does;
                                 // 1 keeps one bundle per pair of top-level clusters, which reads better)
    float lift = 0.7f;           // share of the gap between two layers that their cluster trees are lifted
                                 // into (along z; the root furthest), so bundles form between the layers
};

// Hierarchical edge bundling. The control polygon of an edge is: its source point, the centres of its source
// node and that node's ancestors up to `topLevel` (lifted along z by `lift`), the same on the target side in
// reverse, its target point.
// Endpoints in one layer route through their lowest common ancestor instead. Parallel over edges.
EdgePolylines bundleHierarchical(const ClusterTree& tree, const std::vector<BundleEdge>& edges,
                                 const BundleOptions& opt);

// Kernel-density edge bundling (KDEEB, Hurter et al. 2012, in CUBu's fast form, van der Zwan et al. 2016),
// adapted to the layered 3D scene: samples move only across the data-flow axis (x, y); z stays the straight
// line's, so edges never leave the gap between their layers. Each iteration splats the samples into a
// density grid (x, y, z slices), blurs it across x and y with a shrinking kernel (two box passes ~ a
// triangle kernel, O(1) per cell), moves every sample a step up the density gradient, and smooths each
// polyline (Laplacian). Samples near the ends move less (a falloff over `endFalloff` of the line), and the
// end points never move.
struct KdeOptions {
    std::uint32_t samples = 24;     // points per polyline
    std::uint32_t iterations = 12;
    std::uint32_t grid = 160;       // density cells along the longer of x and y
    std::uint32_t zSlices = 48;     // density slices along z
    float kernel = 0.1f;            // initial kernel radius, share of the x-y extent
    float kernelDecay = 0.85f;      // kernel radius factor per iteration
    float step = 1.0f;              // advection step, share of the current kernel radius
    float smoothing = 0.5f;         // Laplacian smoothing weight per iteration
    float endFalloff = 0.2f;        // share of the line (each end) over which motion fades in
};
EdgePolylines bundleKde(const std::vector<BundleEdge>& edges, const KdeOptions& opt);

// Unbundled reference: straight lines with the same sample count.
EdgePolylines straightLines(const std::vector<BundleEdge>& edges, std::uint32_t samples);

// Ink measures for comparing bundlings. Coverage: pixels of a res x res raster that some polyline crosses,
// after projecting onto the plane spanned by axes (u, v) (0 x, 1 y, 2 z) over the box `area`.
double totalLength(const EdgePolylines& lines);
std::uint64_t inkCoverage(const EdgePolylines& lines, const Aabb& area, int u, int v, int res);

} // namespace ts::scene
