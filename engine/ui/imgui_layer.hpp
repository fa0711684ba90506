// Dear ImGui on our Vulkan renderer: one render pass that loads the frame's colour and draws the UI on top.
// Works in a GLFW window (input through the GLFW backend) and offscreen (display size set per frame), so
// headless PNGs can show the overlay too.
#pragma once

#include <map>
#include <memory>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"
#include "engine/render/target.hpp"
#include "engine/ui/panel_image_pass.hpp"

struct GLFWwindow;
struct ImGuiContext;

namespace ts::ui {

class ImGuiLayer {
  public:
    // `window` may be null (offscreen); `imageCount` is the swapchain's image count (>= 2).
    static Expected<std::unique_ptr<ImGuiLayer>> create(render::Context& ctx, VkFormat colorFormat,
                                                        uint32_t imageCount, GLFWwindow* window);
    ~ImGuiLayer();

    void newFrame(VkExtent2D extent, float dtSeconds); // begins an ImGui frame
    Status render(const render::Frame& frame);         // ends it and records the draw (outside rendering)
    // Ends the frame without drawing. Auto-sized windows are measured on their first frame and drawn from
    // the second, so a single headless picture runs one discarded frame first.
    void discardFrame();
    bool wantsMouse() const;
    bool wantsKeyboard() const;
    // Textures of panel images held now (engine/ui/panel_images.hpp).
    size_t panelTextures() const;

  private:
    explicit ImGuiLayer(render::Context& ctx) : m_ctx(ctx) {}
    Expected<VkFramebuffer> framebufferFor(const render::Frame& frame);

    render::Context& m_ctx;
    ImGuiContext* m_imgui = nullptr;
    bool m_glfw = false;
    bool m_vulkanInit = false;
    VkRenderPass m_renderPass = VK_NULL_HANDLE;
    VkDescriptorPool m_pool = VK_NULL_HANDLE;
    VkExtent2D m_fbExtent{};
    uint64_t m_fbGeneration = 0;
    std::map<VkImageView, VkFramebuffer> m_framebuffers;
    std::unique_ptr<PanelImagePass> m_images;
};

// Applies tensorscape's colours and spacing to the current ImGui context.
void applyStyle();

} // namespace ts::ui
