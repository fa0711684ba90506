// Neuron pass: splat compute, splat resolve and impostor pipelines; per-frame uniforms and buffers.
#include "engine/render/neuron_pass.hpp"

#include "engine/core/log.hpp"

#include <cmath>
#include <cstring>

#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {

Expected<std::unique_ptr<NeuronPass>> NeuronPass::create(Context& ctx, VkFormat colorFormat,
                                                         uint32_t frames) {
    std::unique_ptr<NeuronPass> p(new NeuronPass(ctx));
    p->m_splatSupported = ctx.hasShaderInt64Atomics();

    // Bindings: 0 frame uniforms, 1 instances, 2 splat buffer, 3 draw list (indirect header + indices).
    VkShaderStageFlags all =
        VK_SHADER_STAGE_VERTEX_BIT | VK_SHADER_STAGE_FRAGMENT_BIT | VK_SHADER_STAGE_COMPUTE_BIT;
    TS_TRY(p->m_sets.init(ctx,
                          {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                           VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER},
                          all, frames));

    GraphicsPipelineDesc d;
    d.vertexShader = "neurons.vert";
    d.fragmentShader = "neurons.frag";
    d.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_STRIP;
    d.colorFormat = colorFormat;
    d.setLayouts = {p->m_sets.layout()};
    auto impostors = Pipeline::createGraphics(ctx, d);
    if (!impostors) return impostors.error();
    p->m_impostors = std::move(impostors.value());
    if (p->m_splatSupported) {
        GraphicsPipelineDesc r = d;
        r.vertexShader = "neuron_resolve.vert";
        r.fragmentShader = "neuron_resolve.frag";
        r.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_LIST;
        auto resolve = Pipeline::createGraphics(ctx, r);
        if (!resolve) return resolve.error();
        p->m_resolve = std::move(resolve.value());
        auto splat = Pipeline::createCompute(ctx, {"neuron_splat.comp", {p->m_sets.layout()}, {}});
        if (!splat) return splat.error();
        p->m_splat = std::move(splat.value());
    }

    p->m_slots.resize(frames);
    for (auto& slot : p->m_slots) {
        auto ubo = Buffer::create(ctx, {sizeof(shader::NeuronFrameUniforms),
                                        VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, MemoryUsage::Upload});
        if (!ubo) return ubo.error();
        slot.uniforms = std::move(ubo.value());
    }
    return p;
}

NeuronPass::~NeuronPass() {
    vkDeviceWaitIdle(m_ctx.device());
}

Status NeuronPass::setInstances(std::span<const NeuronInstance> instances) {
    // One storage buffer holds them; more than the device can address are not drawn (said once).
    const size_t fit = size_t(m_ctx.maxStorageBufferRange() / sizeof(NeuronInstance));
    if (instances.size() > fit) {
        if (!m_warnedLimit)
            TS_LOG_WARN("%zu neuron instances exceed the device's storage-buffer range; drawing the first %zu "
                        "(lower the LOD budget)",
                        instances.size(), fit);
        m_warnedLimit = true;
        instances = instances.first(fit);
    }
    m_pending.assign(instances.begin(), instances.end());
    m_count = static_cast<uint32_t>(instances.size());
    ++m_version;
    return Status::ok();
}

shader::NeuronFrameUniforms NeuronPass::makeUniforms(const Frame& frame, const Camera& camera,
                                                     bool splat) const {
    float w = float(frame.extent.width), h = float(frame.extent.height);
    shader::NeuronFrameUniforms u{};
    u.view = camera.view();
    u.proj = camera.projection(w / h);
    // Key light from the upper left, slightly towards the viewer (view space).
    u.lightDirView = glm::vec4(glm::normalize(glm::vec3(-0.45f, 0.6f, 0.65f)), 0.0f);
    float lo = m_style.valueMin, hi = m_style.valueMax;
    float span = hi - lo;
    u.valueRange = glm::vec4(lo, hi, std::fabs(span) > 1e-30f ? 1.0f / span : 0.0f, 0.0f);
    u.viewport = glm::vec4(w, h, m_style.minPixelRadius, m_style.splatBelowPixels);
    u.params = glm::uvec4(m_style.lit ? TS_SHADING_LIT : TS_SHADING_FLAT, splat ? 1u : 0u,
                          m_slots[frame.slot].count, 0);
    auto table = colormapTableRgba(m_style.colormap);
    std::memcpy(u.lut, table.data(), sizeof(u.lut));
    return u;
}

Status NeuronPass::ensureSlotResources(uint32_t slotIndex, VkExtent2D extent, VkCommandBuffer cmd) {
    Slot& slot = m_slots[slotIndex];
    // beginFrame() waited for this slot's previous frame, so its buffers are free to rewrite.
    if (slot.version != m_version) {
        VkDeviceSize bytes =
            std::max<VkDeviceSize>(m_pending.size() * sizeof(NeuronInstance), sizeof(NeuronInstance));
        auto grow = [&](Buffer& buf, VkBufferUsageFlags usage, MemoryUsage memory) -> Status {
            if (buf && buf.size() >= bytes) return Status::ok();
            buf.reset();
            auto b = Buffer::create(m_ctx, {bytes + bytes / 4, usage, memory});
            if (!b) return b.error();
            buf = std::move(b.value());
            return Status::ok();
        };
        TS_TRY(grow(slot.instances, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                    MemoryUsage::DeviceLocal));
        VkDeviceSize used = m_pending.size() * sizeof(NeuronInstance);
        if (used > 0 && slot.instances.mapped()) {
            std::memcpy(slot.instances.mapped(), m_pending.data(), used);
        } else if (used > 0 && cmd) {
            TS_TRY(grow(slot.staging, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, MemoryUsage::Upload));
            std::memcpy(slot.staging.mapped(), m_pending.data(), used);
            VkBufferCopy region{0, 0, used};
            vkCmdCopyBuffer(cmd, slot.staging.handle(), slot.instances.handle(), 1, &region);
            VkMemoryBarrier2 mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER_2};
            mb.srcStageMask = VK_PIPELINE_STAGE_2_COPY_BIT;
            mb.srcAccessMask = VK_ACCESS_2_TRANSFER_WRITE_BIT;
            mb.dstStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_2_VERTEX_SHADER_BIT;
            mb.dstAccessMask = VK_ACCESS_2_SHADER_READ_BIT;
            VkDependencyInfo dep{VK_STRUCTURE_TYPE_DEPENDENCY_INFO};
            dep.memoryBarrierCount = 1;
            dep.pMemoryBarriers = &mb;
            vkCmdPipelineBarrier2(cmd, &dep);
        } else if (used > 0) {
            TS_TRY(uploadToBuffer(m_ctx, slot.instances, m_pending.data(), used));
        }
        slot.count = static_cast<uint32_t>(m_pending.size());
        slot.version = m_version;
    }
    VkDeviceSize splatBytes = VkDeviceSize(extent.width) * extent.height * 8;
    if (!slot.splat || slot.splat.size() != splatBytes) {
        slot.splat.reset();
        auto b = Buffer::create(m_ctx, {splatBytes,
                                        VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                        MemoryUsage::DeviceLocal});
        if (!b) return b.error();
        slot.splat = std::move(b.value());
    }
    VkDeviceSize listBytes = (TS_DRAW_LIST_HEADER_WORDS + std::max<VkDeviceSize>(slot.count, 1)) * 4;
    if (!slot.drawList || slot.drawList.size() < listBytes) {
        slot.drawList.reset();
        auto b =
            Buffer::create(m_ctx, {listBytes + listBytes / 4,
                                   VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                                   MemoryUsage::DeviceLocal});
        if (!b) return b.error();
        slot.drawList = std::move(b.value());
    }
    m_sets.bind(slotIndex, {&slot.uniforms, &slot.instances, &slot.splat, &slot.drawList});
    return Status::ok();
}

Status NeuronPass::prepare(const Frame& frame, const Camera& camera) {
    Slot& slot = m_slots[frame.slot];
    slot.prepared = false;
    if (m_count == 0) return Status::ok();
    TS_TRY(ensureSlotResources(frame.slot, frame.extent, frame.cmd));
    bool splat = m_splatSupported && m_style.splatBelowPixels > 0.0f;
    auto u = makeUniforms(frame, camera, splat);
    std::memcpy(slot.uniforms.mapped(), &u, sizeof(u));
    slot.prepared = true;
    if (!splat) return Status::ok();

    VkCommandBuffer cmd = frame.cmd;
    VkDescriptorSet set = m_sets.set(frame.slot);
    vkCmdFillBuffer(cmd, slot.splat.handle(), 0, VK_WHOLE_SIZE, 0xFFFFFFFFu);
    uint32_t header[TS_DRAW_LIST_HEADER_WORDS] = {4, 0, 0, 0}; // vertexCount, instanceCount, first*, first*
    vkCmdUpdateBuffer(cmd, slot.drawList.handle(), 0, sizeof(header), header);
    VkMemoryBarrier2 toCompute{VK_STRUCTURE_TYPE_MEMORY_BARRIER_2};
    toCompute.srcStageMask = VK_PIPELINE_STAGE_2_CLEAR_BIT | VK_PIPELINE_STAGE_2_COPY_BIT |
                             VK_PIPELINE_STAGE_2_DRAW_INDIRECT_BIT | VK_PIPELINE_STAGE_2_FRAGMENT_SHADER_BIT |
                             VK_PIPELINE_STAGE_2_VERTEX_SHADER_BIT;
    toCompute.srcAccessMask =
        VK_ACCESS_2_TRANSFER_WRITE_BIT | VK_ACCESS_2_SHADER_READ_BIT | VK_ACCESS_2_INDIRECT_COMMAND_READ_BIT;
    toCompute.dstStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT;
    toCompute.dstAccessMask = VK_ACCESS_2_SHADER_READ_BIT | VK_ACCESS_2_SHADER_WRITE_BIT;
    VkDependencyInfo dep{VK_STRUCTURE_TYPE_DEPENDENCY_INFO};
    dep.memoryBarrierCount = 1;
    dep.pMemoryBarriers = &toCompute;
    vkCmdPipelineBarrier2(cmd, &dep);

    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, m_splat.handle());
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, m_splat.layout(), 0, 1, &set, 0, nullptr);
    vkCmdDispatch(cmd, (slot.count + TS_SPLAT_GROUP_SIZE - 1) / TS_SPLAT_GROUP_SIZE, 1, 1);

    VkMemoryBarrier2 toDraw{VK_STRUCTURE_TYPE_MEMORY_BARRIER_2};
    toDraw.srcStageMask = VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT;
    toDraw.srcAccessMask = VK_ACCESS_2_SHADER_WRITE_BIT;
    toDraw.dstStageMask = VK_PIPELINE_STAGE_2_DRAW_INDIRECT_BIT | VK_PIPELINE_STAGE_2_VERTEX_SHADER_BIT |
                          VK_PIPELINE_STAGE_2_FRAGMENT_SHADER_BIT;
    toDraw.dstAccessMask = VK_ACCESS_2_INDIRECT_COMMAND_READ_BIT | VK_ACCESS_2_SHADER_READ_BIT;
    dep.pMemoryBarriers = &toDraw;
    vkCmdPipelineBarrier2(cmd, &dep);
    return Status::ok();
}

void NeuronPass::record(const Frame& frame, const Camera& camera) {
    if (m_count == 0) return;
    Slot& slot = m_slots[frame.slot];
    bool splat = slot.prepared && m_splatSupported && m_style.splatBelowPixels > 0.0f;
    if (!slot.prepared) {
        if (!ensureSlotResources(frame.slot, frame.extent, VK_NULL_HANDLE)) return;
        auto u = makeUniforms(frame, camera, false);
        std::memcpy(slot.uniforms.mapped(), &u, sizeof(u));
    }
    slot.prepared = false;
    VkCommandBuffer cmd = frame.cmd;
    VkDescriptorSet set = m_sets.set(frame.slot);
    if (splat) {
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_resolve.handle());
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_resolve.layout(), 0, 1, &set, 0,
                                nullptr);
        vkCmdDraw(cmd, 3, 1, 0, 0);
    }
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_impostors.handle());
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_impostors.layout(), 0, 1, &set, 0,
                            nullptr);
    if (splat)
        vkCmdDrawIndirect(cmd, slot.drawList.handle(), 0, 1, sizeof(VkDrawIndirectCommand));
    else
        vkCmdDraw(cmd, 4, slot.count, 0, 0);
}

} // namespace ts::render
