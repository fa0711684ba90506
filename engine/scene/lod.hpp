// Per-frame level of detail: which clusters to expand given the camera, screen-space size and an instance
// budget. Selected and outlier neurons (NaN, dead, extreme) are always drawn one by one.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/cluster_tree.hpp"

namespace ts::scene {

// Instance flags. The first three match shaders/shared/neuron_shared.h (TS_NEURON_*).
enum InstanceFlags : std::uint32_t {
    kInstanceSelected = 1u,
    kInstanceHighlighted = 2u,
    kInstanceHidden = 4u,
    kInstanceCluster = 8u,   // a proxy for `count` neurons (id is a ClusterTree node) or a collapsed group
    kInstanceGroup = 16u,    // a collapsed group of layers (id is a LayerLayout::groups index)
    kInstanceNaN = 32u,      // value NaN or infinite
    kInstanceDead = 64u,     // never active on the probe batch
    kInstanceExtreme = 128u, // value far outside its layer's distribution
};
constexpr std::uint32_t kInstanceOutlierMask = kInstanceNaN | kInstanceDead | kInstanceExtreme;

// One drawn instance: 32 bytes, the same layout as the renderer's NeuronInstance (position, radius, value,
// flags, id), with the last word carrying how many neurons the instance stands for.
struct SceneInstance {
    glm::vec3 position;  // world space
    float radius;        // world space
    float value;         // neuron value, or the mean of a cluster's finite values (NaN when none)
    std::uint32_t flags; // InstanceFlags
    std::uint32_t id;    // global neuron id; node index for clusters; group index for groups
    std::uint32_t count; // neurons represented (1 for a neuron)
};
static_assert(sizeof(SceneInstance) == 32);

struct Camera {
    glm::vec3 eye{0.0f};
    glm::mat4 viewProj{1.0f}; // clip = viewProj * world, depth 0..1 (GLM_FORCE_DEPTH_ZERO_TO_ONE)
    glm::vec2 viewport{1280.0f, 720.0f};
};

struct OutlierOptions {
    float extremeZ = 8.0f;       // |v - median| > extremeZ * 1.4826 * MAD marks an extreme value
    float deadFraction = 0.0f;   // activeFraction <= this marks a dead neuron
};

// Per-neuron outlier flags (kInstanceNaN / kInstanceDead / kInstanceExtreme) of every layer.
std::vector<std::uint8_t> detectOutliers(const NetworkDesc& desc, const NetworkData& data,
                                         const std::vector<float>& value, const OutlierOptions& opt = {});

struct LodOptions {
    std::uint32_t budget = 200000;   // most instances per frame (forced neurons count too)
    float expandPixels = 3.0f;       // a cluster whose projected radius is larger than this is refined
    bool cullOutsideFrustum = true;  // clusters outside the view are not drawn (forced neurons always are)
};

struct LodStats {
    std::uint32_t instances = 0, clusters = 0, neurons = 0, forced = 0, culled = 0;
    bool budgetLimited = false; // refinement stopped because of the budget
};

// Holds the per-neuron inputs that change rarely (positions, values, forced flags) and answers select()
// each frame. The tree must outlive the selector.
class LodSelector {
  public:
    LodSelector(const ClusterTree& tree, const std::vector<glm::vec3>& position, const std::vector<float>& radius);

    // Values drawn for neurons; cluster values come from ClusterTree::computeValues.
    void setValues(const std::vector<float>& value) { m_value = &value; }
    // Outlier flags from detectOutliers (one per neuron), drawn individually whatever the camera.
    void setOutliers(const std::vector<std::uint8_t>& flags);
    void setSelection(const std::vector<std::uint32_t>& neurons);
    // Layers hidden behind a collapsed group proxy; the proxies themselves are passed in `groupProxies`.
    void setHiddenLayers(const std::vector<bool>& hidden, const std::vector<SceneInstance>& groupProxies);

    // Fills `out` (cleared first) with at most max(budget, forced + visible roots) instances.
    LodStats select(const Camera& camera, const LodOptions& opt, std::vector<SceneInstance>& out);

    // Per node, after select(): 1 drawn as a proxy, 2 expanded into individual neurons (a leaf), else 0.
    const std::vector<std::uint8_t>& nodeState() const { return m_nodeState; }

  private:
    const ClusterTree& m_tree;
    const std::vector<glm::vec3>& m_position;
    const std::vector<float>& m_radius;
    const std::vector<float>* m_value = nullptr;
    std::vector<std::uint8_t> m_forcedFlag;       // per neuron: outlier bits | kInstanceSelected
    std::vector<std::uint32_t> m_forced;          // neurons with a non-zero forced flag
    std::vector<std::uint32_t> m_selection;
    std::vector<std::uint8_t> m_outlierFlags;
    std::vector<bool> m_hiddenLayer;
    std::vector<SceneInstance> m_groupProxies;
    std::vector<std::uint8_t> m_nodeState;
    std::vector<std::uint32_t> m_touched; // nodes whose state select() set, to reset cheaply
    void rebuildForced();
};

} // namespace ts::scene
