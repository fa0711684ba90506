// Offscreen target, the shared dynamic-rendering helpers and BGRA readback conversion.
#include "engine/render/context.hpp"
#include "engine/render/target.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {

void bgraToRgba(const void* bgra, uint32_t width, uint32_t height, ImageRgba8& out) {
    out = ImageRgba8(static_cast<int>(width), static_cast<int>(height));
    const auto* src = static_cast<const uint8_t*>(bgra);
    for (size_t i = 0, n = static_cast<size_t>(width) * height; i < n; ++i) {
        out.pixels[i * 4 + 0] = src[i * 4 + 2];
        out.pixels[i * 4 + 1] = src[i * 4 + 1];
        out.pixels[i * 4 + 2] = src[i * 4 + 0];
        out.pixels[i * 4 + 3] = 255;
    }
}

void beginRendering(const Frame& frame, bool clear, float r, float g, float b) {
    VkRenderingAttachmentInfo color{VK_STRUCTURE_TYPE_RENDERING_ATTACHMENT_INFO};
    color.imageView = frame.colorView;
    color.imageLayout = VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL;
    color.loadOp = clear ? VK_ATTACHMENT_LOAD_OP_CLEAR : VK_ATTACHMENT_LOAD_OP_LOAD;
    color.storeOp = VK_ATTACHMENT_STORE_OP_STORE;
    color.clearValue.color = {{r, g, b, 1.0f}};
    VkRenderingAttachmentInfo depth{VK_STRUCTURE_TYPE_RENDERING_ATTACHMENT_INFO};
    depth.imageView = frame.depthView;
    depth.imageLayout = VK_IMAGE_LAYOUT_DEPTH_ATTACHMENT_OPTIMAL;
    depth.loadOp = clear ? VK_ATTACHMENT_LOAD_OP_CLEAR : VK_ATTACHMENT_LOAD_OP_LOAD;
    depth.storeOp = VK_ATTACHMENT_STORE_OP_STORE;
    depth.clearValue.depthStencil = {1.0f, 0};
    VkRenderingInfo ri{VK_STRUCTURE_TYPE_RENDERING_INFO};
    ri.renderArea = {{0, 0}, frame.extent};
    ri.layerCount = 1;
    ri.colorAttachmentCount = 1;
    ri.pColorAttachments = &color;
    ri.pDepthAttachment = &depth;
    vkCmdBeginRendering(frame.cmd, &ri);
    VkViewport vp{0, 0, float(frame.extent.width), float(frame.extent.height), 0.0f, 1.0f};
    VkRect2D sc{{0, 0}, frame.extent};
    vkCmdSetViewport(frame.cmd, 0, 1, &vp);
    vkCmdSetScissor(frame.cmd, 0, 1, &sc);
}

void endRendering(const Frame& frame) {
    vkCmdEndRendering(frame.cmd);
}

Expected<std::unique_ptr<OffscreenTarget>> OffscreenTarget::create(Context& ctx, uint32_t width,
                                                                   uint32_t height) {
    if (width == 0 || height == 0 || width > 16384 || height > 16384)
        return makeError(ErrorKind::Usage, "image size " + std::to_string(width) + "x" +
                                               std::to_string(height) + " is out of range (1..16384)");
    std::unique_ptr<OffscreenTarget> t(new OffscreenTarget(ctx));
    t->m_extent = {width, height};
    auto color = Image::create(ctx, {width, height, kColorFormat,
                                     VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | VK_IMAGE_USAGE_TRANSFER_SRC_BIT |
                                         VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_STORAGE_BIT,
                                     VK_IMAGE_ASPECT_COLOR_BIT});
    if (!color) return color.error();
    t->m_color = std::move(color.value());
    auto depth = Image::create(ctx, {width, height, kDepthFormat, VK_IMAGE_USAGE_DEPTH_STENCIL_ATTACHMENT_BIT,
                                     VK_IMAGE_ASPECT_DEPTH_BIT});
    if (!depth) return depth.error();
    t->m_depth = std::move(depth.value());
    auto rb = Buffer::create(
        ctx, {VkDeviceSize(width) * height * 4, VK_BUFFER_USAGE_TRANSFER_DST_BIT, MemoryUsage::Readback});
    if (!rb) return rb.error();
    t->m_readback = std::move(rb.value());

    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = ctx.commandPool();
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    TS_VK_CHECK(vkAllocateCommandBuffers(ctx.device(), &ai, &t->m_cmd));
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    TS_VK_CHECK(vkCreateFence(ctx.device(), &fci, nullptr, &t->m_fence));
    return t;
}

OffscreenTarget::~OffscreenTarget() {
    vkDeviceWaitIdle(m_ctx.device());
    if (m_fence) vkDestroyFence(m_ctx.device(), m_fence, nullptr);
    if (m_cmd) vkFreeCommandBuffers(m_ctx.device(), m_ctx.commandPool(), 1, &m_cmd);
}

Expected<Frame> OffscreenTarget::beginFrame() {
    TS_VK_CHECK(vkResetCommandBuffer(m_cmd, 0));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    TS_VK_CHECK(vkBeginCommandBuffer(m_cmd, &bi));
    transitionImage(m_cmd, m_color.handle(), VK_IMAGE_ASPECT_COLOR_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
                    VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL, VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT, 0,
                    VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT | VK_PIPELINE_STAGE_2_COMPUTE_SHADER_BIT,
                    VK_ACCESS_2_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_2_COLOR_ATTACHMENT_READ_BIT);
    transitionImage(
        m_cmd, m_depth.handle(), VK_IMAGE_ASPECT_DEPTH_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
        VK_IMAGE_LAYOUT_DEPTH_ATTACHMENT_OPTIMAL, VK_PIPELINE_STAGE_2_ALL_COMMANDS_BIT, 0,
        VK_PIPELINE_STAGE_2_EARLY_FRAGMENT_TESTS_BIT | VK_PIPELINE_STAGE_2_LATE_FRAGMENT_TESTS_BIT,
        VK_ACCESS_2_DEPTH_STENCIL_ATTACHMENT_WRITE_BIT | VK_ACCESS_2_DEPTH_STENCIL_ATTACHMENT_READ_BIT);
    Frame f;
    f.valid = true;
    f.cmd = m_cmd;
    f.colorImage = m_color.handle();
    f.colorView = m_color.view();
    f.depthImage = m_depth.handle();
    f.depthView = m_depth.view();
    f.extent = m_extent;
    f.slot = 0;
    return f;
}

Status OffscreenTarget::endFrame(Frame& frame, ImageRgba8* screenshot) {
    if (screenshot) {
        transitionImage(m_cmd, m_color.handle(), VK_IMAGE_ASPECT_COLOR_BIT,
                        VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                        VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT,
                        VK_ACCESS_2_COLOR_ATTACHMENT_WRITE_BIT, VK_PIPELINE_STAGE_2_COPY_BIT,
                        VK_ACCESS_2_TRANSFER_READ_BIT);
        VkBufferImageCopy region{};
        region.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        region.imageExtent = {m_extent.width, m_extent.height, 1};
        vkCmdCopyImageToBuffer(m_cmd, m_color.handle(), VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                               m_readback.handle(), 1, &region);
        VkMemoryBarrier2 mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER_2};
        mb.srcStageMask = VK_PIPELINE_STAGE_2_COPY_BIT;
        mb.srcAccessMask = VK_ACCESS_2_TRANSFER_WRITE_BIT;
        mb.dstStageMask = VK_PIPELINE_STAGE_2_HOST_BIT;
        mb.dstAccessMask = VK_ACCESS_2_HOST_READ_BIT;
        VkDependencyInfo dep{VK_STRUCTURE_TYPE_DEPENDENCY_INFO};
        dep.memoryBarrierCount = 1;
        dep.pMemoryBarriers = &mb;
        vkCmdPipelineBarrier2(m_cmd, &dep);
    }
    TS_VK_CHECK(vkEndCommandBuffer(m_cmd));
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &m_cmd;
    TS_VK_CHECK(vkQueueSubmit(m_ctx.queue(), 1, &si, m_fence));
    TS_VK_CHECK(vkWaitForFences(m_ctx.device(), 1, &m_fence, VK_TRUE, UINT64_MAX));
    TS_VK_CHECK(vkResetFences(m_ctx.device(), 1, &m_fence));
    frame.valid = false;
    if (screenshot) bgraToRgba(m_readback.mapped(), m_extent.width, m_extent.height, *screenshot);
    return Status::ok();
}

} // namespace ts::render
