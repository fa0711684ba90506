// The overlay's pass for panel images (engine/ui/panel_images.hpp): uploads each new image to a sampled
// texture before the overlay's render pass, and draws requests as quads from ImGui's draw-list callbacks inside
// it. Textures are kept while their image object is drawn and released 8 frames after its last use (frames in
// flight may still read them until then).
#pragma once

#include <map>
#include <memory>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/pipeline.hpp"
#include "engine/ui/panel_images.hpp"

namespace ts::render {
class Context;
}

namespace ts::ui {

class PanelImagePass {
  public:
    // `renderPass`: the overlay's (colour only, subpass 0).
    static Expected<std::unique_ptr<PanelImagePass>> create(render::Context& ctx, VkRenderPass renderPass);
    ~PanelImagePass();
    PanelImagePass(const PanelImagePass&) = delete;
    PanelImagePass& operator=(const PanelImagePass&) = delete;

    // Outside the render pass: uploads this frame's new images (copies recorded into cmd), releases old ones.
    Status prepare(VkCommandBuffer cmd);
    // Around ImGui_ImplVulkan_RenderDrawData: the callbacks draw into cmd, on a framebuffer of `extent`.
    void begin(VkCommandBuffer cmd, VkExtent2D extent, ImVec2 displaySize);
    void end();

    size_t textureCount() const { return m_textures.size(); }

  private:
    explicit PanelImagePass(render::Context& ctx) : m_ctx(ctx) {}
    static void draw(const PanelImageRequest& request, const ImDrawCmd& cmd);

    struct Texture {
        std::shared_ptr<const PanelImage> image; // keeps the key's address from being reused while cached
        render::Image texture;
        render::Buffer staging;
        VkDescriptorSet set = VK_NULL_HANDLE;
        uint64_t lastUsed = 0;
    };
    render::Context& m_ctx;
    VkDescriptorSetLayout m_setLayout = VK_NULL_HANDLE;
    VkDescriptorPool m_pool = VK_NULL_HANDLE;
    VkSampler m_sampler = VK_NULL_HANDLE;
    render::Pipeline m_pipeline;
    std::map<const PanelImage*, Texture> m_textures;
    uint64_t m_frame = 0;
    // While recording (begin..end).
    VkCommandBuffer m_cmd = VK_NULL_HANDLE;
    VkExtent2D m_extent{};
    ImVec2 m_display{};
};

} // namespace ts::ui
