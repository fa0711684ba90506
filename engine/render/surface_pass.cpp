// Surface pass: height-field triangles and contour lines.
#include "engine/render/surface_pass.hpp"

#include <cstring>

#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"
#include "shaders/shared/surface_shared.h"

namespace ts::render {

Expected<std::unique_ptr<SurfacePass>> SurfacePass::create(Context& ctx, VkFormat colorFormat,
                                                           uint32_t frames) {
    std::unique_ptr<SurfacePass> p(new SurfacePass(ctx));
    TS_TRY(p->m_sets.init(ctx, {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER},
                          VK_SHADER_STAGE_VERTEX_BIT | VK_SHADER_STAGE_FRAGMENT_BIT, frames));
    GraphicsPipelineDesc d;
    d.vertexShader = "surface.vert";
    d.fragmentShader = "surface.frag";
    d.bindings = {{0, sizeof(SurfaceVertex), VK_VERTEX_INPUT_RATE_VERTEX}};
    d.attributes = {{0, 0, VK_FORMAT_R32G32B32_SFLOAT, offsetof(SurfaceVertex, position)},
                    {1, 0, VK_FORMAT_R32G32B32_SFLOAT, offsetof(SurfaceVertex, normal)},
                    {2, 0, VK_FORMAT_R32_SFLOAT, offsetof(SurfaceVertex, value)}};
    d.colorFormat = colorFormat;
    d.setLayouts = {p->m_sets.layout()};
    auto surface = Pipeline::createGraphics(ctx, d);
    if (!surface) return surface.error();
    p->m_surface = std::move(surface.value());
    GraphicsPipelineDesc l = d;
    l.vertexShader = "lines.vert";
    l.fragmentShader = "lines.frag";
    l.bindings = {{0, sizeof(float) * 3, VK_VERTEX_INPUT_RATE_VERTEX}};
    l.attributes = {{0, 0, VK_FORMAT_R32G32B32_SFLOAT, 0}};
    l.topology = VK_PRIMITIVE_TOPOLOGY_LINE_LIST;
    l.blend = BlendMode::Alpha;
    l.depthWrite = false;
    auto lines = Pipeline::createGraphics(ctx, l);
    if (!lines) return lines.error();
    p->m_lines = std::move(lines.value());
    for (uint32_t i = 0; i < frames; ++i) {
        auto ubo = Buffer::create(ctx, {sizeof(shader::SurfaceFrameUniforms),
                                        VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, MemoryUsage::Upload});
        if (!ubo) return ubo.error();
        p->m_uniforms.push_back(std::move(ubo.value()));
    }
    return p;
}

SurfacePass::~SurfacePass() {
    vkDeviceWaitIdle(m_ctx.device());
}

Status SurfacePass::setMesh(const SurfaceMeshView& mesh) {
    TS_VK_CHECK(vkQueueWaitIdle(m_ctx.queue()));
    for (uint32_t i : mesh.indices)
        if (i >= mesh.vertices.size()) return makeError(ErrorKind::Failed, "surface mesh index out of range");
    auto upload = [&](Buffer& dst, const void* data, VkDeviceSize bytes, VkBufferUsageFlags usage) -> Status {
        if (bytes == 0) return Status::ok();
        if (!dst || dst.size() < bytes) {
            dst.reset();
            auto b = Buffer::create(
                m_ctx, {bytes, usage | VK_BUFFER_USAGE_TRANSFER_DST_BIT, MemoryUsage::DeviceLocal});
            if (!b) return b.error();
            dst = std::move(b.value());
        }
        return uploadToBuffer(m_ctx, dst, data, bytes);
    };
    TS_TRY(upload(m_vertices, mesh.vertices.data(), mesh.vertices.size_bytes(),
                  VK_BUFFER_USAGE_VERTEX_BUFFER_BIT));
    TS_TRY(
        upload(m_indices, mesh.indices.data(), mesh.indices.size_bytes(), VK_BUFFER_USAGE_INDEX_BUFFER_BIT));
    TS_TRY(upload(m_contours, mesh.contours.data(), mesh.contours.size_bytes(),
                  VK_BUFFER_USAGE_VERTEX_BUFFER_BIT));
    m_indexCount = uint32_t(mesh.indices.size());
    m_contourVertices = uint32_t(mesh.contours.size());
    return Status::ok();
}

void SurfacePass::record(const Frame& frame, const Camera& camera) {
    if (m_indexCount == 0) return;
    float w = float(frame.extent.width), h = float(frame.extent.height);
    shader::SurfaceFrameUniforms u{};
    u.view = camera.view();
    u.proj = camera.projection(w / h);
    u.lightDirView = glm::vec4(glm::normalize(glm::vec3(-0.3f, 0.8f, 0.5f)), 0.0f);
    u.lineColor = glm::vec4(0.05f, 0.05f, 0.08f, 0.75f);
    auto table = colormapTableRgba(m_colormap);
    std::memcpy(u.lut, table.data(), sizeof(u.lut));
    std::memcpy(m_uniforms[frame.slot].mapped(), &u, sizeof(u));
    m_sets.bind(frame.slot, {&m_uniforms[frame.slot]});
    VkDescriptorSet set = m_sets.set(frame.slot);
    VkDeviceSize off = 0;
    VkBuffer vb = m_vertices.handle();
    vkCmdBindPipeline(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_surface.handle());
    vkCmdBindDescriptorSets(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_surface.layout(), 0, 1, &set, 0,
                            nullptr);
    vkCmdBindVertexBuffers(frame.cmd, 0, 1, &vb, &off);
    vkCmdBindIndexBuffer(frame.cmd, m_indices.handle(), 0, VK_INDEX_TYPE_UINT32);
    vkCmdDrawIndexed(frame.cmd, m_indexCount, 1, 0, 0, 0);
    if (m_contourVertices >= 2) {
        VkBuffer cb = m_contours.handle();
        vkCmdBindPipeline(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_lines.handle());
        vkCmdBindDescriptorSets(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_lines.layout(), 0, 1, &set, 0,
                                nullptr);
        vkCmdBindVertexBuffers(frame.cmd, 0, 1, &cb, &off);
        vkCmdDraw(frame.cmd, m_contourVertices, 1, 0, 0);
    }
}

} // namespace ts::render
