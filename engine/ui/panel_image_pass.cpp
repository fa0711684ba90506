// Panel images on the GPU: one texture per image object, one quad per request.
#include "engine/ui/panel_image_pass.hpp"

#include <algorithm>
#include <cstring>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::ui {

using namespace ts::render;

namespace {
constexpr uint32_t kMaxTextures = 64;
PanelImagePass* g_active = nullptr; // the pass recording now (the UI thread's)
} // namespace

Expected<std::unique_ptr<PanelImagePass>> PanelImagePass::create(Context& ctx, VkRenderPass renderPass) {
    std::unique_ptr<PanelImagePass> p(new PanelImagePass(ctx));
    VkDevice dev = ctx.device();
    VkDescriptorSetLayoutBinding b{0, VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, 1, VK_SHADER_STAGE_FRAGMENT_BIT, nullptr};
    VkDescriptorSetLayoutCreateInfo sl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    sl.bindingCount = 1;
    sl.pBindings = &b;
    TS_VK_CHECK(vkCreateDescriptorSetLayout(dev, &sl, nullptr, &p->m_setLayout));
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, kMaxTextures};
    VkDescriptorPoolCreateInfo pci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
    pci.maxSets = kMaxTextures;
    pci.poolSizeCount = 1;
    pci.pPoolSizes = &size;
    TS_VK_CHECK(vkCreateDescriptorPool(dev, &pci, nullptr, &p->m_pool));
    VkSamplerCreateInfo si{VK_STRUCTURE_TYPE_SAMPLER_CREATE_INFO};
    si.magFilter = si.minFilter = VK_FILTER_NEAREST; // one texel per cell, crisp at any zoom
    si.mipmapMode = VK_SAMPLER_MIPMAP_MODE_NEAREST;
    si.addressModeU = si.addressModeV = si.addressModeW = VK_SAMPLER_ADDRESS_MODE_CLAMP_TO_EDGE;
    si.maxLod = 0.0f;
    TS_VK_CHECK(vkCreateSampler(dev, &si, nullptr, &p->m_sampler));
    GraphicsPipelineDesc gd;
    gd.vertexShader = "panel_image.vert";
    gd.fragmentShader = "panel_image.frag";
    gd.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_STRIP; // 4 vertices, no vertex buffer
    gd.blend = BlendMode::Alpha;                         // as ImGui blends its own vertices
    gd.depthTest = gd.depthWrite = false;
    gd.setLayouts = {p->m_setLayout};
    gd.pushConstants = {{VK_SHADER_STAGE_VERTEX_BIT, 0, sizeof(float) * 4}};
    gd.renderPass = renderPass;
    auto pipeline = Pipeline::createGraphics(ctx, gd);
    if (!pipeline) return pipeline.error();
    p->m_pipeline = std::move(pipeline.value());
    return p;
}

PanelImagePass::~PanelImagePass() {
    if (g_active == this) g_active = nullptr;
    VkDevice dev = m_ctx.device();
    m_textures.clear(); // the owner waited for the device
    m_pipeline.reset();
    if (m_sampler) vkDestroySampler(dev, m_sampler, nullptr);
    if (m_pool) vkDestroyDescriptorPool(dev, m_pool, nullptr);
    if (m_setLayout) vkDestroyDescriptorSetLayout(dev, m_setLayout, nullptr);
}

Status PanelImagePass::prepare(VkCommandBuffer cmd) {
    ++m_frame;
    VkDevice dev = m_ctx.device();
    // Release what no frame has drawn for 8 frames (no frame in flight reads it any more).
    for (auto it = m_textures.begin(); it != m_textures.end();) {
        if (it->second.lastUsed + 8 < m_frame) {
            vkFreeDescriptorSets(dev, m_pool, 1, &it->second.set);
            it = m_textures.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& req : panelImageRequests()) {
        const PanelImage* key = req.image.get();
        if (auto it = m_textures.find(key); it != m_textures.end()) {
            it->second.lastUsed = m_frame;
            continue;
        }
        if (m_textures.size() >= kMaxTextures) {
            TS_LOG_WARN("more than %u panel images at once; the rest are not drawn this frame", kMaxTextures);
            break;
        }
        Texture t;
        t.image = req.image;
        t.lastUsed = m_frame;
        const PanelImage& img = *req.image;
        const VkDeviceSize bytes = VkDeviceSize(img.rgba.size()) * 4;
        auto staging = Buffer::create(m_ctx, {bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, MemoryUsage::Upload});
        if (!staging) return staging.error();
        t.staging = std::move(staging.value());
        std::memcpy(t.staging.mapped(), img.rgba.data(), size_t(bytes));
        auto tex = Image::create(m_ctx, {uint32_t(img.width), uint32_t(img.height), VK_FORMAT_R8G8B8A8_UNORM,
                                         VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT});
        if (!tex) return tex.error();
        t.texture = std::move(tex.value());
        transitionImage(cmd, t.texture.handle(), VK_IMAGE_ASPECT_COLOR_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
                        VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, VK_PIPELINE_STAGE_2_NONE, 0,
                        VK_PIPELINE_STAGE_2_COPY_BIT, VK_ACCESS_2_TRANSFER_WRITE_BIT);
        VkBufferImageCopy region{};
        region.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        region.imageExtent = {uint32_t(img.width), uint32_t(img.height), 1};
        vkCmdCopyBufferToImage(cmd, t.staging.handle(), t.texture.handle(), VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 1,
                               &region);
        transitionImage(cmd, t.texture.handle(), VK_IMAGE_ASPECT_COLOR_BIT, VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                        VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL, VK_PIPELINE_STAGE_2_COPY_BIT,
                        VK_ACCESS_2_TRANSFER_WRITE_BIT, VK_PIPELINE_STAGE_2_FRAGMENT_SHADER_BIT,
                        VK_ACCESS_2_SHADER_SAMPLED_READ_BIT);
        VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = m_pool;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &m_setLayout;
        TS_VK_CHECK(vkAllocateDescriptorSets(dev, &ai, &t.set));
        VkDescriptorImageInfo ii{m_sampler, t.texture.view(), VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL};
        VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w.dstSet = t.set;
        w.descriptorCount = 1;
        w.descriptorType = VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER;
        w.pImageInfo = &ii;
        vkUpdateDescriptorSets(dev, 1, &w, 0, nullptr);
        m_textures.emplace(key, std::move(t));
    }
    return Status::ok();
}

void PanelImagePass::begin(VkCommandBuffer cmd, VkExtent2D extent, ImVec2 displaySize) {
    m_cmd = cmd;
    m_extent = extent;
    m_display = displaySize;
    g_active = this;
    setPanelImageDrawer(&PanelImagePass::draw);
}

void PanelImagePass::end() {
    m_cmd = VK_NULL_HANDLE;
    if (g_active == this) g_active = nullptr;
}

void PanelImagePass::draw(const PanelImageRequest& request, const ImDrawCmd& cmd) {
    PanelImagePass* p = g_active;
    if (!p || !p->m_cmd || p->m_display.x <= 0 || p->m_display.y <= 0) return;
    auto it = p->m_textures.find(request.image.get());
    if (it == p->m_textures.end()) return;
    // ImGui's clip rectangle in framebuffer pixels (one viewport at the origin), clamped to the framebuffer.
    const float sx = float(p->m_extent.width) / p->m_display.x, sy = float(p->m_extent.height) / p->m_display.y;
    const int32_t x0 = std::clamp(int32_t(cmd.ClipRect.x * sx), 0, int32_t(p->m_extent.width));
    const int32_t y0 = std::clamp(int32_t(cmd.ClipRect.y * sy), 0, int32_t(p->m_extent.height));
    const int32_t x1 = std::clamp(int32_t(cmd.ClipRect.z * sx), 0, int32_t(p->m_extent.width));
    const int32_t y1 = std::clamp(int32_t(cmd.ClipRect.w * sy), 0, int32_t(p->m_extent.height));
    if (x1 <= x0 || y1 <= y0) return;
    VkCommandBuffer c = p->m_cmd;
    vkCmdBindPipeline(c, VK_PIPELINE_BIND_POINT_GRAPHICS, p->m_pipeline.handle());
    vkCmdBindDescriptorSets(c, VK_PIPELINE_BIND_POINT_GRAPHICS, p->m_pipeline.layout(), 0, 1, &it->second.set, 0,
                            nullptr);
    VkViewport vp{0, 0, float(p->m_extent.width), float(p->m_extent.height), 0, 1};
    vkCmdSetViewport(c, 0, 1, &vp);
    VkRect2D scissor{{x0, y0}, {uint32_t(x1 - x0), uint32_t(y1 - y0)}};
    vkCmdSetScissor(c, 0, 1, &scissor);
    const float rect[4] = {request.p0.x / p->m_display.x * 2.0f - 1.0f, request.p0.y / p->m_display.y * 2.0f - 1.0f,
                           request.p1.x / p->m_display.x * 2.0f - 1.0f, request.p1.y / p->m_display.y * 2.0f - 1.0f};
    vkCmdPushConstants(c, p->m_pipeline.layout(), VK_SHADER_STAGE_VERTEX_BIT, 0, sizeof rect, rect);
    vkCmdDraw(c, 4, 1, 0, 0);
}

} // namespace ts::ui
