// NetworkRenderer: LOD selection -> instance upload -> neuron and edge passes.
#include "engine/render/network_renderer.hpp"

#include <cstring>

namespace ts::render {

static_assert(sizeof(scene::SceneInstance) == sizeof(NeuronInstance), "scene instances upload as-is");
static_assert(scene::kInstanceSelected == TS_NEURON_SELECTED && scene::kInstanceHighlighted == TS_NEURON_HIGHLIGHTED &&
              scene::kInstanceHidden == TS_NEURON_HIDDEN);

scene::Camera sceneCamera(const Camera& camera, VkExtent2D extent) {
    float aspect = extent.height ? float(extent.width) / float(extent.height) : 1.0f;
    scene::Camera c;
    c.eye = camera.position();
    c.viewProj = camera.projection(aspect) * camera.view();
    c.viewport = glm::vec2(float(extent.width), float(extent.height));
    return c;
}

Expected<std::unique_ptr<NetworkRenderer>> NetworkRenderer::create(Context& ctx, VkFormat colorFormat,
                                                                   uint32_t frames) {
    std::unique_ptr<NetworkRenderer> r(new NetworkRenderer());
    auto n = NeuronPass::create(ctx, colorFormat, frames);
    if (!n) return n.error();
    r->m_neurons = std::move(n.value());
    auto e = EdgePass::create(ctx, colorFormat, frames);
    if (!e) return e.error();
    r->m_edges = std::move(e.value());
    return r;
}

void NetworkRenderer::setScene(const scene::Scene* s) {
    m_scene = s;
    m_selector.reset();
    if (s) {
        m_selector = std::make_unique<scene::LodSelector>(s->makeSelector());
    }
    m_dirty = true;
}

void NetworkRenderer::valuesChanged() {
    if (m_selector && m_scene) {
        m_selector->setValues(m_scene->value);
        m_selector->setOutliers(m_scene->outliers);
        m_selector->setHiddenLayers(m_scene->hiddenLayer, m_scene->groupProxies);
    }
    m_dirty = true;
}

void NetworkRenderer::setSelection(const std::vector<uint32_t>& neurons) {
    if (m_selector) m_selector->setSelection(neurons);
    m_dirty = true;
}

Status NetworkRenderer::prepare(const Frame& frame, const Camera& camera) {
    if (m_selector) {
        scene::Camera sc = sceneCamera(camera, frame.extent);
        if (m_dirty || sc.viewProj != m_lastViewProj) {
            m_stats = m_selector->select(sc, m_lod, m_instances);
            std::span<const NeuronInstance> span(reinterpret_cast<const NeuronInstance*>(m_instances.data()),
                                                 m_instances.size());
            TS_TRY(m_neurons->setInstances(span));
            m_lastViewProj = sc.viewProj;
            m_dirty = false;
        }
    }
    return m_neurons->prepare(frame, camera);
}

void NetworkRenderer::record(const Frame& frame, const Camera& camera) {
    m_neurons->record(frame, camera);
    if (showEdges) m_edges->record(frame, camera);
}

} // namespace ts::render
