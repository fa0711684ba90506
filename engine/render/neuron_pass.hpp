// Draws N neurons as lit sphere impostors coloured through a colormap. Neurons under a few pixels are
// splatted by a compute pass instead (64-bit atomicMin of depth and colour per pixel, then a resolve that
// writes colour and depth), so a million-neuron overview costs one compute invocation per neuron rather than
// a rasterised quad; both paths write the same depth, so they compose.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/descriptors.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/pipeline.hpp"
#include "engine/render/target.hpp"
#include "shaders/shared/neuron_shared.h"

namespace ts::render {

using NeuronInstance = shader::NeuronInstance;

struct NeuronStyle {
    Colormap colormap = Colormap::Viridis;
    float valueMin = 0.0f; // value drawn with the colormap's first colour
    float valueMax = 1.0f; // ... and its last
    bool lit = true;       // false: flat colormap colour (tests, exports)
    float minPixelRadius = 0.75f;
    float splatBelowPixels = 1.5f; // projected radius under which neurons are splatted; 0 turns splatting off
};

class NeuronPass {
  public:
    static Expected<std::unique_ptr<NeuronPass>> create(Context& ctx, VkFormat colorFormat,
                                                        uint32_t framesInFlight);
    ~NeuronPass();

    // Takes a copy of the instances; each frame slot uploads it into its own instance buffer when it next
    // prepares (or records), so changing instances every frame never waits for frames in flight.
    Status setInstances(std::span<const NeuronInstance> instances);
    uint32_t instanceCount() const { return m_count; }
    void setStyle(const NeuronStyle& style) { m_style = style; }
    const NeuronStyle& style() const { return m_style; }

    // Records the splat compute pass; call before beginRendering() on the same frame.
    Status prepare(const Frame& frame, const Camera& camera);
    // Records the draws into an active rendering scope of `frame` (after beginRendering()). Without a
    // prepare() on this frame, every neuron is drawn as an impostor.
    void record(const Frame& frame, const Camera& camera);
    bool splattingSupported() const { return m_splatSupported; }

  private:
    explicit NeuronPass(Context& ctx) : m_ctx(ctx) {}
    Context& m_ctx;
    struct Slot { // per frame in flight
        Buffer uniforms, splat, drawList, instances, staging;
        uint32_t count = 0;       // instances uploaded to this slot
        uint64_t version = ~0ull; // m_version they came from
        bool prepared = false;
    };
    shader::NeuronFrameUniforms makeUniforms(const Frame& frame, const Camera& camera, bool splat) const;
    // Sizes the slot's buffers, uploads pending instances (recorded into `cmd` when the buffer is not
    // host-visible; null: a blocking staging upload) and binds the descriptors.
    Status ensureSlotResources(uint32_t slotIndex, VkExtent2D extent, VkCommandBuffer cmd);

    Pipeline m_impostors, m_resolve, m_splat;
    BufferSets m_sets;
    std::vector<Slot> m_slots;
    bool m_splatSupported = false;
    std::vector<NeuronInstance> m_pending; // the newest instances
    uint64_t m_version = 0;
    bool m_warnedLimit = false;
    uint32_t m_count = 0;
    NeuronStyle m_style;
};

} // namespace ts::render
