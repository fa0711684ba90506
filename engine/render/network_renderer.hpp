// Draws a network scene (engine/scene): each frame the LOD selector picks which clusters and neurons to
// draw within an instance budget, the neuron pass draws them (splatting the tiny ones), and the edge pass
// draws the bundled connections. Frame cost follows what is visible, not the model's size.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "engine/render/edge_pass.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/scene/lod.hpp"
#include "engine/scene/scene.hpp"

namespace ts::render {

class NetworkRenderer {
  public:
    static Expected<std::unique_ptr<NetworkRenderer>> create(Context& ctx, VkFormat colorFormat,
                                                             uint32_t framesInFlight);

    // The scene must outlive the renderer (or the next setScene). Values may change later: call
    // valuesChanged() after updateSceneValues().
    void setScene(const scene::Scene* scene);
    void valuesChanged();
    // Selected neurons get a white rim, highlighted ones (e.g. traced contributors) a warm glow; both are
    // always drawn individually, whatever the level of detail.
    void setSelection(const std::vector<uint32_t>& neurons, const std::vector<uint32_t>& highlighted = {});
    // The neuron under pixel (x, y) (origin top left) for this camera and viewport, if any.
    std::optional<uint32_t> pick(const Camera& camera, VkExtent2D extent, float x, float y) const;
    Status setEdges(const scene::EdgePolylines& lines) { return m_edges->setPolylines(lines); }
    void setLod(const scene::LodOptions& lod) {
        m_lod = lod;
        m_dirty = true;
    }
    NeuronPass& neurons() { return *m_neurons; }
    EdgePass& edges() { return *m_edges; }
    bool showEdges = true;

    // Selects and uploads the instances for this camera (only when the camera or data changed), then
    // records the splat pass. Call before beginRendering().
    Status prepare(const Frame& frame, const Camera& camera);
    void record(const Frame& frame, const Camera& camera);
    const scene::LodStats& lastStats() const { return m_stats; }

  private:
    std::unique_ptr<NeuronPass> m_neurons;
    std::unique_ptr<EdgePass> m_edges;
    const scene::Scene* m_scene = nullptr;
    std::unique_ptr<scene::LodSelector> m_selector;
    scene::LodOptions m_lod;
    scene::LodStats m_stats;
    std::vector<scene::SceneInstance> m_instances;
    glm::mat4 m_lastViewProj{0.0f};
    std::vector<uint32_t> m_highlighted; // sorted
    bool m_dirty = true;
};

// The scene camera (for LOD and picking) that matches a render camera and viewport.
scene::Camera sceneCamera(const Camera& camera, VkExtent2D extent);

} // namespace ts::render
