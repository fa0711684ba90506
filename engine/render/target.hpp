// Render targets behind one interface: an offscreen image with readback to PNG, or a GLFW window with a
// swapchain. Passes record into Frame::cmd between beginFrame() and endFrame() and never care which it is.
#pragma once

#include <memory>
#include <string>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/render/memory.hpp"

struct GLFWwindow;

namespace ts::render {

class Context;

inline constexpr VkFormat kColorFormat = VK_FORMAT_B8G8R8A8_UNORM; // 1.6x faster than RGBA8 on lavapipe
inline constexpr VkFormat kDepthFormat = VK_FORMAT_D32_SFLOAT;

// One frame being recorded. On entry colour is in COLOR_ATTACHMENT_OPTIMAL and depth in
// DEPTH_ATTACHMENT_OPTIMAL, both with undefined contents (clear them in the first pass).
struct Frame {
    bool valid = false; // false: nothing to draw this time (minimised window); skip recording
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkImage colorImage = VK_NULL_HANDLE;
    VkImageView colorView = VK_NULL_HANDLE;
    VkImage depthImage = VK_NULL_HANDLE;
    VkImageView depthView = VK_NULL_HANDLE;
    VkExtent2D extent{};
    uint32_t slot = 0;       // frame-in-flight index, for per-frame resources such as uniform buffers
    uint64_t generation = 0; // changes whenever the target's images are recreated (resize, vsync toggle)
};

class RenderTarget {
  public:
    virtual ~RenderTarget() = default;
    virtual VkExtent2D extent() const = 0;
    virtual uint32_t framesInFlight() const = 0;
    virtual Expected<Frame> beginFrame() = 0;
    // Submits the frame. With `screenshot`, the finished colour image is read back into it (RGBA8).
    virtual Status endFrame(Frame& frame, ImageRgba8* screenshot = nullptr) = 0;
};

// Offscreen: one colour + depth image pair; every frame is submitted and waited for (frame time is real).
class OffscreenTarget final : public RenderTarget {
  public:
    static Expected<std::unique_ptr<OffscreenTarget>> create(Context& ctx, uint32_t width, uint32_t height);
    ~OffscreenTarget() override;
    VkExtent2D extent() const override { return m_extent; }
    uint32_t framesInFlight() const override { return 1; }
    Expected<Frame> beginFrame() override;
    Status endFrame(Frame& frame, ImageRgba8* screenshot = nullptr) override;

  private:
    explicit OffscreenTarget(Context& ctx) : m_ctx(ctx) {}
    Context& m_ctx;
    VkExtent2D m_extent{};
    Image m_color, m_depth;
    Buffer m_readback;
    VkCommandBuffer m_cmd = VK_NULL_HANDLE;
    VkFence m_fence = VK_NULL_HANDLE;
};

// GLFW window with a swapchain: resize, minimise (0x0: frames are skipped), vsync toggle, screenshots.
class WindowTarget final : public RenderTarget {
  public:
    static Expected<std::unique_ptr<WindowTarget>> create(Context& ctx, GLFWwindow* window, bool vsync);
    ~WindowTarget() override;
    VkExtent2D extent() const override { return m_extent; }
    uint32_t framesInFlight() const override { return kFramesInFlight; }
    Expected<Frame> beginFrame() override;
    Status endFrame(Frame& frame, ImageRgba8* screenshot = nullptr) override;

    void setVsync(bool on);
    bool vsync() const { return m_vsync; }
    void notifyResized() { m_needsRecreate = true; }
    VkFormat swapchainFormat() const { return m_format; }
    uint32_t imageCount() const { return static_cast<uint32_t>(m_images.size()); }

  private:
    static constexpr uint32_t kFramesInFlight = 2;
    explicit WindowTarget(Context& ctx, GLFWwindow* w) : m_ctx(ctx), m_window(w) {}
    Status createSwapchain();
    void destroySwapchain();

    Context& m_ctx;
    GLFWwindow* m_window;
    VkSwapchainKHR m_swapchain = VK_NULL_HANDLE;
    VkFormat m_format = kColorFormat;
    VkExtent2D m_extent{};
    bool m_vsync = true;
    bool m_needsRecreate = false;
    bool m_canCopyFrom = false;
    std::vector<VkImage> m_images;
    std::vector<VkImageView> m_views;
    std::vector<VkSemaphore> m_renderDone; // per swapchain image
    Image m_depth;
    Buffer m_readback;
    VkCommandBuffer m_cmds[kFramesInFlight]{};
    VkFence m_fences[kFramesInFlight]{};
    VkSemaphore m_acquired[kFramesInFlight]{};
    uint32_t m_slot = 0;
    uint32_t m_imageIndex = 0;
    uint64_t m_generation = 0;
};

// Begins dynamic rendering on the frame's colour and depth, clearing both (or loading them).
void beginRendering(const Frame& frame, bool clear, float r = 0.f, float g = 0.f, float b = 0.f);
void endRendering(const Frame& frame);

// Converts a BGRA8 readback into an RGBA8 image.
void bgraToRgba(const void* bgra, uint32_t width, uint32_t height, ImageRgba8& out);

} // namespace ts::render
