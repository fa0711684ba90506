// The whole CPU scene pipeline in one call: validate, lay out neurons and layers, build the cluster tree,
// aggregate values, find outliers. The result is what LodSelector, the edge functions, picking and the
// renderer read; everything in it is a flat array indexed by global neuron id, node or layer.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/scene/cluster_tree.hpp"
#include "engine/scene/layer_layout.hpp"
#include "engine/scene/lod.hpp"
#include "engine/scene/network.hpp"
#include "engine/scene/neuron_layout.hpp"

namespace ts::scene {

struct SceneOptions {
    NeuronLayoutOptions neurons;
    LayerLayoutOptions layers;
    ClusterOptions clusters;
    OutlierOptions outliers;
};

struct Scene {
    std::vector<std::uint32_t> offsets; // layer l owns neurons [offsets[l], offsets[l + 1])
    LayerLayout layout;
    std::vector<glm::vec3> position;    // per neuron, world space
    std::vector<float> radius;          // per neuron, world space
    std::vector<float> value;           // per neuron: LayerStats::value, else activation, else 0
    std::vector<std::uint8_t> outliers; // per neuron: kInstanceNaN | kInstanceDead | kInstanceExtreme
    ClusterTree tree;                   // bounds include radii; node values aggregate `value`
    std::vector<bool> hiddenLayer;      // inside a collapsed group
    std::vector<SceneInstance> groupProxies; // one per outermost collapsed group

    std::uint32_t layerOf(std::uint32_t neuron) const;
    // A selector wired to this scene's arrays (values, outliers, collapsed groups).
    LodSelector makeSelector() const;
};

Expected<Scene> buildScene(const NetworkDesc& desc, const NetworkData& data, const SceneOptions& opt = {});

// Updates values (e.g. new statistics from the reducer) without re-laying out: node values and outliers.
Status updateSceneValues(Scene& scene, const NetworkDesc& desc, const NetworkData& data, const OutlierOptions& opt = {});

} // namespace ts::scene
