// Pipeline creation.
#include "engine/render/pipeline.hpp"

#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"
#include "shaders/registry.hpp"

namespace ts::render {

Expected<VkShaderModule> createShaderModule(Context& ctx, const std::string& name) {
    auto words = shaders::spirv(name);
    if (words.empty())
        return makeError(ErrorKind::Failed, "shader " + name + " is not embedded in this build");
    VkShaderModuleCreateInfo ci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    ci.codeSize = words.size() * 4;
    ci.pCode = words.data();
    VkShaderModule m;
    VkResult r = vkCreateShaderModule(ctx.device(), &ci, nullptr, &m);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateShaderModule", __FILE__, __LINE__);
    return m;
}

static Expected<VkPipelineLayout> createLayout(Context& ctx, const std::vector<VkDescriptorSetLayout>& sets,
                                               const std::vector<VkPushConstantRange>& pcs) {
    VkPipelineLayoutCreateInfo li{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    li.setLayoutCount = static_cast<uint32_t>(sets.size());
    li.pSetLayouts = sets.data();
    li.pushConstantRangeCount = static_cast<uint32_t>(pcs.size());
    li.pPushConstantRanges = pcs.data();
    VkPipelineLayout layout;
    VkResult r = vkCreatePipelineLayout(ctx.device(), &li, nullptr, &layout);
    if (r != VK_SUCCESS) return vkError(r, "vkCreatePipelineLayout", __FILE__, __LINE__);
    return layout;
}

Expected<Pipeline> Pipeline::createGraphics(Context& ctx, const GraphicsPipelineDesc& d) {
    Pipeline p;
    p.m_device = ctx.device();
    auto layout = createLayout(ctx, d.setLayouts, d.pushConstants);
    if (!layout) return layout.error();
    p.m_layout = *layout;
    auto vs = createShaderModule(ctx, d.vertexShader);
    if (!vs) return vs.error();
    auto fs = createShaderModule(ctx, d.fragmentShader);
    if (!fs) {
        vkDestroyShaderModule(ctx.device(), *vs, nullptr);
        return fs.error();
    }
    VkPipelineShaderStageCreateInfo stages[2]{};
    stages[0] = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                 nullptr,
                 0,
                 VK_SHADER_STAGE_VERTEX_BIT,
                 *vs,
                 "main",
                 nullptr};
    stages[1] = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                 nullptr,
                 0,
                 VK_SHADER_STAGE_FRAGMENT_BIT,
                 *fs,
                 "main",
                 nullptr};

    VkPipelineVertexInputStateCreateInfo vi{VK_STRUCTURE_TYPE_PIPELINE_VERTEX_INPUT_STATE_CREATE_INFO};
    vi.vertexBindingDescriptionCount = static_cast<uint32_t>(d.bindings.size());
    vi.pVertexBindingDescriptions = d.bindings.data();
    vi.vertexAttributeDescriptionCount = static_cast<uint32_t>(d.attributes.size());
    vi.pVertexAttributeDescriptions = d.attributes.data();
    VkPipelineInputAssemblyStateCreateInfo ia{VK_STRUCTURE_TYPE_PIPELINE_INPUT_ASSEMBLY_STATE_CREATE_INFO};
    ia.topology = d.topology;
    VkPipelineViewportStateCreateInfo vp{VK_STRUCTURE_TYPE_PIPELINE_VIEWPORT_STATE_CREATE_INFO};
    vp.viewportCount = 1;
    vp.scissorCount = 1;
    VkPipelineRasterizationStateCreateInfo rs{VK_STRUCTURE_TYPE_PIPELINE_RASTERIZATION_STATE_CREATE_INFO};
    rs.polygonMode = VK_POLYGON_MODE_FILL;
    rs.cullMode = d.cull;
    rs.frontFace = VK_FRONT_FACE_COUNTER_CLOCKWISE;
    rs.lineWidth = 1.0f;
    VkPipelineMultisampleStateCreateInfo ms{VK_STRUCTURE_TYPE_PIPELINE_MULTISAMPLE_STATE_CREATE_INFO};
    ms.rasterizationSamples = VK_SAMPLE_COUNT_1_BIT;
    VkPipelineDepthStencilStateCreateInfo ds{VK_STRUCTURE_TYPE_PIPELINE_DEPTH_STENCIL_STATE_CREATE_INFO};
    ds.depthTestEnable = d.depthTest;
    ds.depthWriteEnable = d.depthWrite;
    ds.depthCompareOp = VK_COMPARE_OP_LESS_OR_EQUAL;
    VkPipelineColorBlendAttachmentState att{};
    att.colorWriteMask = VK_COLOR_COMPONENT_R_BIT | VK_COLOR_COMPONENT_G_BIT | VK_COLOR_COMPONENT_B_BIT |
                         VK_COLOR_COMPONENT_A_BIT;
    if (d.blend != BlendMode::Opaque) {
        att.blendEnable = VK_TRUE;
        att.srcColorBlendFactor = VK_BLEND_FACTOR_SRC_ALPHA;
        att.dstColorBlendFactor =
            d.blend == BlendMode::Alpha ? VK_BLEND_FACTOR_ONE_MINUS_SRC_ALPHA : VK_BLEND_FACTOR_ONE;
        att.colorBlendOp = VK_BLEND_OP_ADD;
        att.srcAlphaBlendFactor = VK_BLEND_FACTOR_ONE;
        att.dstAlphaBlendFactor = VK_BLEND_FACTOR_ONE_MINUS_SRC_ALPHA;
        att.alphaBlendOp = VK_BLEND_OP_ADD;
    }
    VkPipelineColorBlendStateCreateInfo cb{VK_STRUCTURE_TYPE_PIPELINE_COLOR_BLEND_STATE_CREATE_INFO};
    cb.attachmentCount = 1;
    cb.pAttachments = &att;
    VkDynamicState dyn[] = {VK_DYNAMIC_STATE_VIEWPORT, VK_DYNAMIC_STATE_SCISSOR};
    VkPipelineDynamicStateCreateInfo dy{VK_STRUCTURE_TYPE_PIPELINE_DYNAMIC_STATE_CREATE_INFO};
    dy.dynamicStateCount = 2;
    dy.pDynamicStates = dyn;
    VkPipelineRenderingCreateInfo rend{VK_STRUCTURE_TYPE_PIPELINE_RENDERING_CREATE_INFO};
    rend.colorAttachmentCount = 1;
    rend.pColorAttachmentFormats = &d.colorFormat;
    rend.depthAttachmentFormat = d.depthFormat;

    VkGraphicsPipelineCreateInfo gi{VK_STRUCTURE_TYPE_GRAPHICS_PIPELINE_CREATE_INFO};
    gi.pNext = d.renderPass ? nullptr : &rend;
    gi.renderPass = d.renderPass;
    gi.subpass = 0;
    gi.stageCount = 2;
    gi.pStages = stages;
    gi.pVertexInputState = &vi;
    gi.pInputAssemblyState = &ia;
    gi.pViewportState = &vp;
    gi.pRasterizationState = &rs;
    gi.pMultisampleState = &ms;
    gi.pDepthStencilState = &ds;
    gi.pColorBlendState = &cb;
    gi.pDynamicState = &dy;
    gi.layout = p.m_layout;
    VkResult r = vkCreateGraphicsPipelines(ctx.device(), VK_NULL_HANDLE, 1, &gi, nullptr, &p.m_pipeline);
    vkDestroyShaderModule(ctx.device(), *vs, nullptr);
    vkDestroyShaderModule(ctx.device(), *fs, nullptr);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateGraphicsPipelines", __FILE__, __LINE__);
    return p;
}

Expected<Pipeline> Pipeline::createCompute(Context& ctx, const ComputePipelineDesc& d) {
    Pipeline p;
    p.m_device = ctx.device();
    auto layout = createLayout(ctx, d.setLayouts, d.pushConstants);
    if (!layout) return layout.error();
    p.m_layout = *layout;
    auto cs = createShaderModule(ctx, d.shader);
    if (!cs) return cs.error();
    VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                nullptr,
                0,
                VK_SHADER_STAGE_COMPUTE_BIT,
                *cs,
                "main",
                nullptr};
    ci.layout = p.m_layout;
    VkResult r = vkCreateComputePipelines(ctx.device(), VK_NULL_HANDLE, 1, &ci, nullptr, &p.m_pipeline);
    vkDestroyShaderModule(ctx.device(), *cs, nullptr);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateComputePipelines", __FILE__, __LINE__);
    return p;
}

Pipeline& Pipeline::operator=(Pipeline&& o) noexcept {
    if (this != &o) {
        reset();
        m_device = o.m_device;
        m_pipeline = std::exchange(o.m_pipeline, VK_NULL_HANDLE);
        m_layout = std::exchange(o.m_layout, VK_NULL_HANDLE);
    }
    return *this;
}

void Pipeline::reset() {
    if (m_pipeline) vkDestroyPipeline(m_device, m_pipeline, nullptr);
    if (m_layout) vkDestroyPipelineLayout(m_device, m_layout, nullptr);
    m_pipeline = VK_NULL_HANDLE;
    m_layout = VK_NULL_HANDLE;
}

} // namespace ts::render
