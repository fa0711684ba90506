// Graphics and compute pipelines from embedded SPIR-V, described by a plain Desc struct (dynamic rendering,
// dynamic viewport/scissor). Move-only; owns its VkPipeline and VkPipelineLayout.
#pragma once

#include <string>
#include <vector>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

namespace ts::render {

class Context;

enum class BlendMode { Opaque, Alpha, Additive };

struct GraphicsPipelineDesc {
    std::string vertexShader;   // embedded shader name, e.g. "neurons.vert"
    std::string fragmentShader; // e.g. "neurons.frag"
    std::vector<VkVertexInputBindingDescription> bindings;
    std::vector<VkVertexInputAttributeDescription> attributes;
    VkPrimitiveTopology topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_LIST;
    VkCullModeFlags cull = VK_CULL_MODE_NONE;
    BlendMode blend = BlendMode::Opaque;
    bool depthTest = true;
    bool depthWrite = true;
    VkFormat colorFormat = VK_FORMAT_B8G8R8A8_UNORM;
    VkFormat depthFormat = VK_FORMAT_D32_SFLOAT;
    std::vector<VkDescriptorSetLayout> setLayouts;
    std::vector<VkPushConstantRange> pushConstants;
    // Set: a pipeline for subpass 0 of this render pass (the overlay's) instead of dynamic rendering;
    // colorFormat and depthFormat are then unused.
    VkRenderPass renderPass = VK_NULL_HANDLE;
};

struct ComputePipelineDesc {
    std::string shader;
    std::vector<VkDescriptorSetLayout> setLayouts;
    std::vector<VkPushConstantRange> pushConstants;
};

class Pipeline {
  public:
    Pipeline() = default;
    static Expected<Pipeline> createGraphics(Context& ctx, const GraphicsPipelineDesc& desc);
    static Expected<Pipeline> createCompute(Context& ctx, const ComputePipelineDesc& desc);
    ~Pipeline() { reset(); }
    Pipeline(Pipeline&& o) noexcept { *this = std::move(o); }
    Pipeline& operator=(Pipeline&& o) noexcept;
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    VkPipeline handle() const { return m_pipeline; }
    VkPipelineLayout layout() const { return m_layout; }
    void reset();

  private:
    VkDevice m_device = VK_NULL_HANDLE;
    VkPipeline m_pipeline = VK_NULL_HANDLE;
    VkPipelineLayout m_layout = VK_NULL_HANDLE;
};

Expected<VkShaderModule> createShaderModule(Context& ctx, const std::string& name);

} // namespace ts::render
