// Neuron pass: pipeline, per-frame uniforms (camera, value range, colormap table), instance buffer.
#include "engine/render/neuron_pass.hpp"

#include <cmath>
#include <cstring>

#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {

Expected<VkDescriptorSetLayout> createUniformSetLayout(Context& ctx, VkShaderStageFlags stages) {
    VkDescriptorSetLayoutBinding b{};
    b.binding = 0;
    b.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER;
    b.descriptorCount = 1;
    b.stageFlags = stages;
    VkDescriptorSetLayoutCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    ci.bindingCount = 1;
    ci.pBindings = &b;
    VkDescriptorSetLayout layout;
    VkResult r = vkCreateDescriptorSetLayout(ctx.device(), &ci, nullptr, &layout);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateDescriptorSetLayout", __FILE__, __LINE__);
    return layout;
}

Expected<std::unique_ptr<NeuronPass>> NeuronPass::create(Context& ctx, VkFormat colorFormat, uint32_t frames) {
    std::unique_ptr<NeuronPass> p(new NeuronPass(ctx));
    auto setLayout = createUniformSetLayout(ctx, VK_SHADER_STAGE_VERTEX_BIT | VK_SHADER_STAGE_FRAGMENT_BIT);
    if (!setLayout) return setLayout.error();
    p->m_setLayout = *setLayout;

    GraphicsPipelineDesc d;
    d.vertexShader = "neurons.vert";
    d.fragmentShader = "neurons.frag";
    d.bindings = {{0, sizeof(NeuronInstance), VK_VERTEX_INPUT_RATE_INSTANCE}};
    d.attributes = {
        {0, 0, VK_FORMAT_R32G32B32_SFLOAT, offsetof(NeuronInstance, position)},
        {1, 0, VK_FORMAT_R32_SFLOAT, offsetof(NeuronInstance, radius)},
        {2, 0, VK_FORMAT_R32_SFLOAT, offsetof(NeuronInstance, value)},
        {3, 0, VK_FORMAT_R32_UINT, offsetof(NeuronInstance, flags)},
    };
    d.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_STRIP;
    d.colorFormat = colorFormat;
    d.setLayouts = {p->m_setLayout};
    auto pipe = Pipeline::createGraphics(ctx, d);
    if (!pipe) return pipe.error();
    p->m_pipeline = std::move(pipe.value());

    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER, frames};
    VkDescriptorPoolCreateInfo pci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pci.maxSets = frames;
    pci.poolSizeCount = 1;
    pci.pPoolSizes = &size;
    TS_VK_CHECK(vkCreateDescriptorPool(ctx.device(), &pci, nullptr, &p->m_pool));
    p->m_sets.resize(frames);
    std::vector<VkDescriptorSetLayout> layouts(frames, p->m_setLayout);
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = p->m_pool;
    ai.descriptorSetCount = frames;
    ai.pSetLayouts = layouts.data();
    TS_VK_CHECK(vkAllocateDescriptorSets(ctx.device(), &ai, p->m_sets.data()));
    for (uint32_t i = 0; i < frames; ++i) {
        auto ubo = Buffer::create(ctx, {sizeof(shader::NeuronFrameUniforms), VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT,
                                        MemoryUsage::Upload});
        if (!ubo) return ubo.error();
        VkDescriptorBufferInfo bi{ubo->handle(), 0, sizeof(shader::NeuronFrameUniforms)};
        VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w.dstSet = p->m_sets[i];
        w.dstBinding = 0;
        w.descriptorCount = 1;
        w.descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER;
        w.pBufferInfo = &bi;
        vkUpdateDescriptorSets(ctx.device(), 1, &w, 0, nullptr);
        p->m_uniforms.push_back(std::move(ubo.value()));
    }
    return p;
}

NeuronPass::~NeuronPass() {
    vkDeviceWaitIdle(m_ctx.device());
    if (m_pool) vkDestroyDescriptorPool(m_ctx.device(), m_pool, nullptr);
    if (m_setLayout) vkDestroyDescriptorSetLayout(m_ctx.device(), m_setLayout, nullptr);
}

Status NeuronPass::setInstances(std::span<const NeuronInstance> instances) {
    VkDeviceSize bytes = instances.size_bytes();
    m_count = static_cast<uint32_t>(instances.size());
    if (bytes == 0) return Status::ok();
    TS_VK_CHECK(vkQueueWaitIdle(m_ctx.queue())); // the previous frames may still read the buffer
    if (!m_instances || m_instances.size() < bytes) {
        m_instances.reset();
        auto buf = Buffer::create(m_ctx, {bytes + bytes / 4, VK_BUFFER_USAGE_VERTEX_BUFFER_BIT |
                                                                  VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                                                  VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                          MemoryUsage::DeviceLocal});
        if (!buf) return buf.error();
        m_instances = std::move(buf.value());
    }
    return uploadToBuffer(m_ctx, m_instances, instances.data(), bytes);
}

void NeuronPass::record(const Frame& frame, const Camera& camera) {
    if (m_count == 0) return;
    float w = float(frame.extent.width), h = float(frame.extent.height);
    shader::NeuronFrameUniforms u{};
    u.view = camera.view();
    u.proj = camera.projection(w / h);
    // Key light from the upper left, slightly towards the viewer (view space).
    u.lightDirView = glm::vec4(glm::normalize(glm::vec3(-0.45f, 0.6f, 0.65f)), 0.0f);
    float lo = m_style.valueMin, hi = m_style.valueMax;
    float span = hi - lo;
    u.valueRange = glm::vec4(lo, hi, std::fabs(span) > 1e-30f ? 1.0f / span : 0.0f, 0.0f);
    u.viewport = glm::vec4(w, h, m_style.minPixelRadius, 0.0f);
    u.params = glm::uvec4(m_style.lit ? TS_SHADING_LIT : TS_SHADING_FLAT, 0, 0, 0);
    auto table = colormapTableRgba(m_style.colormap);
    std::memcpy(u.lut, table.data(), sizeof(u.lut));
    std::memcpy(m_uniforms[frame.slot].mapped(), &u, sizeof(u));

    vkCmdBindPipeline(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_pipeline.handle());
    vkCmdBindDescriptorSets(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_pipeline.layout(), 0, 1,
                            &m_sets[frame.slot], 0, nullptr);
    VkBuffer vb = m_instances.handle();
    VkDeviceSize off = 0;
    vkCmdBindVertexBuffers(frame.cmd, 0, 1, &vb, &off);
    vkCmdDraw(frame.cmd, 4, m_count, 0, 0);
}

} // namespace ts::render
