// NetworkRenderer: LOD selection -> instance upload -> neuron and edge passes.
#include "engine/render/network_renderer.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "engine/scene/picking.hpp"

namespace ts::render {

static_assert(sizeof(scene::SceneInstance) == sizeof(NeuronInstance), "scene instances upload as-is");
static_assert(scene::kInstanceSelected == TS_NEURON_SELECTED &&
              scene::kInstanceHighlighted == TS_NEURON_HIGHLIGHTED &&
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

void NetworkRenderer::setSelection(const std::vector<uint32_t>& neurons,
                                   const std::vector<uint32_t>& highlighted) {
    std::vector<uint32_t> all = neurons;
    all.insert(all.end(), highlighted.begin(), highlighted.end());
    if (m_selector) m_selector->setSelection(all);
    // A neuron both selected and highlighted shows as selected (sorted sets: thousands of brushed neurons).
    std::vector<uint32_t> sel = neurons, glow = highlighted;
    std::sort(sel.begin(), sel.end());
    std::sort(glow.begin(), glow.end());
    m_highlighted.clear();
    std::set_difference(glow.begin(), glow.end(), sel.begin(), sel.end(), std::back_inserter(m_highlighted));
    m_dirty = true;
}

std::optional<uint32_t> NetworkRenderer::pick(const Camera& camera, VkExtent2D extent, float x,
                                              float y) const {
    if (!m_scene) return std::nullopt;
    // Vulkan clip space: y grows downwards, like pixel rows (Camera::projection is built for it).
    scene::Ray ray = scene::rayFromPixel(sceneCamera(camera, extent), glm::vec2(x, y), true);
    auto hit =
        scene::pickNeuron(m_scene->tree, m_scene->position, m_scene->radius, ray, m_scene->hiddenLayer);
    if (!hit.hit()) return std::nullopt;
    return hit.neuron;
}

Status NetworkRenderer::prepare(const Frame& frame, const Camera& camera) {
    if (m_selector) {
        scene::Camera sc = sceneCamera(camera, frame.extent);
        if (m_dirty || sc.viewProj != m_lastViewProj) {
            m_stats = m_selector->select(sc, m_lod, m_instances);
            if (!m_highlighted.empty())
                for (auto& inst : m_instances)
                    if ((inst.flags & scene::kInstanceSelected) && !(inst.flags & scene::kInstanceCluster) &&
                        std::binary_search(m_highlighted.begin(), m_highlighted.end(), inst.id))
                        inst.flags =
                            (inst.flags & ~uint32_t(scene::kInstanceSelected)) | scene::kInstanceHighlighted;
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
