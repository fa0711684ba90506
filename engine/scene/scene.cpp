// buildScene: the scene pipeline (see scene.hpp).
#include "engine/scene/scene.hpp"

#include <algorithm>
#include <cmath>

#include "engine/core/thread_pool.hpp"

namespace ts::scene {

std::uint32_t Scene::layerOf(std::uint32_t neuron) const {
    return static_cast<std::uint32_t>(std::upper_bound(offsets.begin(), offsets.end(), neuron) - offsets.begin() - 1);
}

LodSelector Scene::makeSelector() const {
    LodSelector sel(tree, position, radius);
    sel.setValues(value);
    sel.setOutliers(outliers);
    sel.setHiddenLayers(hiddenLayer, groupProxies);
    return sel;
}

namespace {
void gatherValues(Scene& s, const NetworkDesc& desc, const NetworkData& data) {
    s.value.assign(s.offsets.back(), 0.0f);
    for (std::uint32_t l = 0; l < desc.layers.size() && l < data.layers.size(); ++l) {
        const auto& st = data.layers[l];
        const auto& v = !st.value.empty() ? st.value : st.activation;
        if (!v.empty()) std::copy(v.begin(), v.end(), s.value.begin() + s.offsets[l]);
    }
}

void buildGroupProxies(Scene& s) {
    s.groupProxies.clear();
    s.hiddenLayer.assign(s.layout.layers.size(), false);
    std::vector<std::int32_t> seen;
    for (std::uint32_t l = 0; l < s.layout.layers.size(); ++l) {
        const auto g = s.layout.layers[l].collapsedGroup;
        if (g < 0) continue;
        s.hiddenLayer[l] = true;
        if (std::find(seen.begin(), seen.end(), g) != seen.end()) continue;
        seen.push_back(g);
        const auto& box = s.layout.groups[g].box;
        double sum = 0;
        std::uint32_t count = 0, finite = 0;
        for (std::uint32_t m = 0; m < s.layout.layers.size(); ++m) {
            if (s.layout.layers[m].collapsedGroup != g) continue;
            const auto& root = s.tree.nodes[s.tree.layerRoot[m]];
            const auto n = root.end - root.begin;
            count += n;
            if (std::isfinite(root.value)) sum += double(root.value) * n, finite += n;
        }
        const glm::vec3 h = 0.5f * box.extent();
        s.groupProxies.push_back({box.center(), std::max({h.x, h.y, h.z}),
                                  finite ? float(sum / finite) : std::nanf(""),
                                  kInstanceCluster | kInstanceGroup, static_cast<std::uint32_t>(g), count});
    }
}
} // namespace

Expected<Scene> buildScene(const NetworkDesc& desc, const NetworkData& data, const SceneOptions& opt) {
    TS_TRY(validate(desc, data));
    Scene s;
    s.offsets = neuronOffsets(desc);
    const auto L = static_cast<std::uint32_t>(desc.layers.size());
    std::vector<LocalLayout> local(L);
    ThreadPool::global().parallelFor(L, 1, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t l = b; l < e; ++l)
            local[l] = layoutLayerNeurons(desc.layers[l], l < data.layers.size() ? &data.layers[l] : nullptr, opt.neurons);
    });
    std::vector<glm::vec3> half(L);
    for (std::uint32_t l = 0; l < L; ++l) half[l] = local[l].halfExtent;
    auto layout = layoutLayers(desc, half, opt.layers);
    if (!layout) return layout.status();
    s.layout = std::move(*layout);
    s.position.resize(s.offsets.back());
    s.radius.resize(s.offsets.back());
    ThreadPool::global().parallelFor(L, 1, [&](std::size_t b, std::size_t e, unsigned) {
        for (std::size_t l = b; l < e; ++l) {
            const auto& p = s.layout.layers[l];
            for (std::uint32_t i = 0; i < local[l].position.size(); ++i) {
                s.position[s.offsets[l] + i] = p.center + p.scale * local[l].position[i];
                s.radius[s.offsets[l] + i] = p.scale * local[l].radius;
            }
        }
    });
    local.clear();
    s.tree = buildClusterTree(desc, data, s.position, opt.clusters);
    s.tree.computeBounds(s.position, s.radius);
    gatherValues(s, desc, data);
    s.tree.computeValues(s.value);
    s.outliers = detectOutliers(desc, data, s.value, opt.outliers);
    buildGroupProxies(s);
    return s;
}

Status updateSceneValues(Scene& s, const NetworkDesc& desc, const NetworkData& data, const OutlierOptions& opt) {
    TS_TRY(validate(desc, data));
    if (s.offsets != neuronOffsets(desc))
        return makeError(ErrorKind::Usage, "scene: new statistics describe a different network than the scene");
    gatherValues(s, desc, data);
    s.tree.computeValues(s.value);
    s.outliers = detectOutliers(desc, data, s.value, opt);
    buildGroupProxies(s);
    return Status::ok();
}

} // namespace ts::scene
