// Edge ribbons: a triangle strip per polyline, pulled from point and line buffers.
#include "engine/render/edge_pass.hpp"

#include <algorithm>
#include <cstring>

#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"
#include "shaders/shared/edge_shared.h"

namespace ts::render {

static_assert(sizeof(scene::EdgePoint) == 16 && sizeof(scene::EdgeLine) == 16,
              "edges.vert reads vec4 / uvec4");

Expected<std::unique_ptr<EdgePass>> EdgePass::create(Context& ctx, VkFormat colorFormat, uint32_t frames) {
    std::unique_ptr<EdgePass> p(new EdgePass(ctx));
    TS_TRY(p->m_sets.init(ctx,
                          {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                           VK_DESCRIPTOR_TYPE_STORAGE_BUFFER},
                          VK_SHADER_STAGE_VERTEX_BIT, frames));
    GraphicsPipelineDesc d;
    d.vertexShader = "edges.vert";
    d.fragmentShader = "edges.frag";
    d.topology = VK_PRIMITIVE_TOPOLOGY_TRIANGLE_STRIP;
    d.blend = BlendMode::Alpha;
    d.depthWrite = false;
    d.colorFormat = colorFormat;
    d.setLayouts = {p->m_sets.layout()};
    auto pipe = Pipeline::createGraphics(ctx, d);
    if (!pipe) return pipe.error();
    p->m_pipeline = std::move(pipe.value());
    for (uint32_t i = 0; i < frames; ++i) {
        auto ubo = Buffer::create(ctx, {sizeof(shader::EdgeFrameUniforms), VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                                        MemoryUsage::Upload});
        if (!ubo) return ubo.error();
        p->m_uniforms.push_back(std::move(ubo.value()));
    }
    return p;
}

EdgePass::~EdgePass() {
    vkDeviceWaitIdle(m_ctx.device());
}

Status EdgePass::setPolylines(const scene::EdgePolylines& lines) {
    TS_VK_CHECK(vkQueueWaitIdle(m_ctx.queue()));
    m_lines = 0;
    m_maxPoints = 0;
    if (lines.lines.empty() || lines.points.empty()) return Status::ok();
    for (const auto& l : lines.lines) {
        if (uint64_t(l.firstPoint) + l.pointCount > lines.points.size())
            return makeError(ErrorKind::Failed, "edge polyline points past the end of its point array");
        m_maxPoints = std::max(m_maxPoints, l.pointCount);
    }
    auto upload = [&](Buffer& dst, const void* data, VkDeviceSize bytes) -> Status {
        if (!dst || dst.size() < bytes) {
            dst.reset();
            auto b = Buffer::create(
                m_ctx, {bytes, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                        MemoryUsage::DeviceLocal});
            if (!b) return b.error();
            dst = std::move(b.value());
        }
        return uploadToBuffer(m_ctx, dst, data, bytes);
    };
    TS_TRY(upload(m_points, lines.points.data(), lines.points.size() * sizeof(scene::EdgePoint)));
    TS_TRY(upload(m_lineBuffer, lines.lines.data(), lines.lines.size() * sizeof(scene::EdgeLine)));
    m_lines = uint32_t(lines.lines.size());
    return Status::ok();
}

void EdgePass::record(const Frame& frame, const Camera& camera) {
    if (m_lines == 0 || m_maxPoints < 2) return;
    float w = float(frame.extent.width), h = float(frame.extent.height);
    shader::EdgeFrameUniforms u{};
    u.view = camera.view();
    u.proj = camera.projection(w / h);
    u.viewport = glm::vec4(w, h, m_style.minWidthPixels, m_style.maxWidthPixels);
    u.style = glm::vec4(m_style.alpha, m_style.threshold, float(m_maxPoints), 0.0f);
    auto table = colormapTableRgba(m_style.colormap);
    std::memcpy(u.lut, table.data(), sizeof(u.lut));
    std::memcpy(m_uniforms[frame.slot].mapped(), &u, sizeof(u));
    m_sets.bind(frame.slot, {&m_uniforms[frame.slot], &m_points, &m_lineBuffer});
    VkDescriptorSet set = m_sets.set(frame.slot);
    vkCmdBindPipeline(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_pipeline.handle());
    vkCmdBindDescriptorSets(frame.cmd, VK_PIPELINE_BIND_POINT_GRAPHICS, m_pipeline.layout(), 0, 1, &set, 0,
                            nullptr);
    vkCmdDraw(frame.cmd, 2 * m_maxPoints, m_lines, 0, 0);
}

} // namespace ts::render
