// Layer placement along the data-flow axis (+z): Sugiyama-style layering (longest path), dummy nodes for
// edges that skip ranks, barycentre crossing minimisation, x placement by overlap-free averaging, and
// collapsible groups of repeated blocks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/network.hpp"

namespace ts::scene {

struct LayerLayoutOptions {
    float rankGapMin = 4.0f;     // smallest free space between consecutive ranks along z
    float rankGapFactor = 0.35f; // ... or this share of the wider of the two ranks, whichever is larger
    float nodeGap = 2.0f;        // free space between neighbours in one rank along x
    float laneWidth = 1.0f;      // width reserved for a skip edge passing through a rank
    std::uint32_t sweeps = 12;   // barycentre sweeps (down + up) of crossing minimisation
    std::uint32_t placementIterations = 8;
    std::vector<std::string> collapsed; // names of groups (groupsFromNames) drawn as one box
    // Deep chains fold into rows side by side (a serpentine: odd rows run back), cut between ranks, at stage
    // boundaries (stagesOf) where one is near, so that the picture is about as
    // deep as it is wide instead of a thin thread. Chains shorter than foldMinRanks ranks never fold.
    bool fold = true;
    std::uint32_t foldMinRanks = 24;
    float foldAspect = 1.0f; // rows' length over the rows' total width (footprint), approximately
    float collapsedSide = 0.0f;  // side of a collapsed group's cube; 0: from its neuron count
};

struct LayerPlacement {
    glm::vec3 center{0.0f};
    glm::vec3 halfExtent{0.0f}; // world box = center +- halfExtent (after `scale`)
    float scale = 1.0f;         // local neuron layout scale (< 1 inside a collapsed group)
    std::uint32_t rank = 0;
    std::uint32_t orderInRank = 0;
    std::int32_t collapsedGroup = -1; // outermost collapsed group holding the layer, or -1
};

// Route of one LayerEdge: a polyline from the back face of `from` to the front face of `to` through the
// lanes reserved in the ranks in between (a skip edge never crosses another layer's box).
struct EdgeRoute {
    std::uint32_t from = 0, to = 0;
    std::uint32_t firstPoint = 0, pointCount = 0; // into LayerLayout::routePoints; 0 points inside a collapsed group
    bool skip = false;                            // spans more than one rank
};

struct GroupBox {
    std::string name;
    std::int32_t parent = -1;
    Aabb box;               // bounding box of the group's layers
    bool collapsed = false; // drawn as one box
    std::uint32_t layerCount = 0;
};

struct LayerLayout {
    std::vector<LayerPlacement> layers;
    std::vector<EdgeRoute> routes; // one per NetworkDesc::edges entry, same order
    std::vector<glm::vec3> routePoints;
    std::vector<GroupBox> groups; // groupsFromNames order
    std::uint32_t rankCount = 0;
    std::uint32_t rows = 1;             // rows of the fold (1: not folded)
    std::uint32_t crossings = 0;        // edge crossings between adjacent ranks after minimisation
    std::uint32_t initialCrossings = 0; // before (input order)
    Aabb bounds;
};

// `localHalfExtent[l]` is the box of layer l's neuron layout (neuron_layout.hpp) at scale 1.
Expected<LayerLayout> layoutLayers(const NetworkDesc& desc, const std::vector<glm::vec3>& localHalfExtent,
                                   const LayerLayoutOptions& opt);

} // namespace ts::scene
