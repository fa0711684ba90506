// Draws N neurons from per-instance data as lit sphere impostors coloured through a colormap.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/render/camera.hpp"
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
};

class NeuronPass {
  public:
    static Expected<std::unique_ptr<NeuronPass>> create(Context& ctx, VkFormat colorFormat, uint32_t framesInFlight);
    ~NeuronPass();

    // Copies the instances into the GPU instance buffer (grown as needed). Waits for frames in flight.
    Status setInstances(std::span<const NeuronInstance> instances);
    uint32_t instanceCount() const { return m_count; }
    void setStyle(const NeuronStyle& style) { m_style = style; }
    const NeuronStyle& style() const { return m_style; }

    // Records the draw into an active rendering scope of `frame` (after beginRendering()).
    void record(const Frame& frame, const Camera& camera);

  private:
    explicit NeuronPass(Context& ctx) : m_ctx(ctx) {}
    Context& m_ctx;
    Pipeline m_pipeline;
    VkDescriptorSetLayout m_setLayout = VK_NULL_HANDLE;
    VkDescriptorPool m_pool = VK_NULL_HANDLE;
    std::vector<VkDescriptorSet> m_sets;
    std::vector<Buffer> m_uniforms; // one per frame in flight
    Buffer m_instances;
    uint32_t m_count = 0;
    NeuronStyle m_style;
};

// Shared by passes that need per-frame uniforms: a UBO descriptor set layout at binding 0 for `stages`.
Expected<VkDescriptorSetLayout> createUniformSetLayout(Context& ctx, VkShaderStageFlags stages);

} // namespace ts::render
