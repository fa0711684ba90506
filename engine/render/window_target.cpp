// Swapchain window target: two frames in flight, recreation on resize / out-of-date, 0x0 skips frames.
#include <GLFW/glfw3.h>
#include <algorithm>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/target.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {

Expected<std::unique_ptr<WindowTarget>> WindowTarget::create(Context& ctx, GLFWwindow* window, bool vsync) {
    if (!ctx.surface())
        return makeError(ErrorKind::Failed, "the Vulkan context was created without a window");
    std::unique_ptr<WindowTarget> t(new WindowTarget(ctx, window));
    t->m_vsync = vsync;
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = ctx.commandPool();
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = kFramesInFlight;
    TS_VK_CHECK(vkAllocateCommandBuffers(ctx.device(), &ai, t->m_cmds));
    for (uint32_t i = 0; i < kFramesInFlight; ++i) {
        VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        fci.flags = VK_FENCE_CREATE_SIGNALED_BIT;
        TS_VK_CHECK(vkCreateFence(ctx.device(), &fci, nullptr, &t->m_fences[i]));
        VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
        TS_VK_CHECK(vkCreateSemaphore(ctx.device(), &sci, nullptr, &t->m_acquired[i]));
    }
    TS_TRY(t->createSwapchain());
    return t;
}

WindowTarget::~WindowTarget() {
    VkDevice dev = m_ctx.device();
    vkDeviceWaitIdle(dev);
    destroySwapchain();
    for (uint32_t i = 0; i < kFramesInFlight; ++i) {
        if (m_fences[i]) vkDestroyFence(dev, m_fences[i], nullptr);
        if (m_acquired[i]) vkDestroySemaphore(dev, m_acquired[i], nullptr);
    }
    vkFreeCommandBuffers(dev, m_ctx.commandPool(), kFramesInFlight, m_cmds);
}

void WindowTarget::setVsync(bool on) {
    if (on != m_vsync) {
        m_vsync = on;
        m_needsRecreate = true;
    }
}

void WindowTarget::destroySwapchain() {
    VkDevice dev = m_ctx.device();
    for (auto v : m_views)
        vkDestroyImageView(dev, v, nullptr);
    for (auto s : m_renderDone)
        vkDestroySemaphore(dev, s, nullptr);
    m_views.clear();
    m_renderDone.clear();
    m_images.clear();
    m_depth.reset();
    if (m_swapchain) vkDestroySwapchainKHR(dev, m_swapchain, nullptr);
    m_swapchain = VK_NULL_HANDLE;
}

Status WindowTarget::createSwapchain() {
    VkPhysicalDevice pd = m_ctx.physicalDevice();
    VkSurfaceKHR surface = m_ctx.surface();
    VkSurfaceCapabilitiesKHR caps;
    TS_VK_CHECK(vkGetPhysicalDeviceSurfaceCapabilitiesKHR(pd, surface, &caps));
    int fbw = 0, fbh = 0;
    glfwGetFramebufferSize(m_window, &fbw, &fbh);
    VkExtent2D extent = caps.currentExtent;
    if (extent.width == UINT32_MAX) {
        extent.width =
            std::clamp(uint32_t(std::max(fbw, 0)), caps.minImageExtent.width, caps.maxImageExtent.width);
        extent.height =
            std::clamp(uint32_t(std::max(fbh, 0)), caps.minImageExtent.height, caps.maxImageExtent.height);
    }
    if (extent.width == 0 || extent.height == 0 || fbw == 0 || fbh == 0) {
        m_extent = {0, 0}; // minimised: try again on a later frame
        m_needsRecreate = true;
        return Status::ok();
    }

    uint32_t nf = 0;
    vkGetPhysicalDeviceSurfaceFormatsKHR(pd, surface, &nf, nullptr);
    std::vector<VkSurfaceFormatKHR> formats(nf);
    vkGetPhysicalDeviceSurfaceFormatsKHR(pd, surface, &nf, formats.data());
    VkSurfaceFormatKHR chosen =
        formats.empty() ? VkSurfaceFormatKHR{kColorFormat, VK_COLOR_SPACE_SRGB_NONLINEAR_KHR} : formats[0];
    for (auto& f : formats)
        if (f.format == kColorFormat) chosen = f;
    m_format = chosen.format;

    uint32_t np = 0;
    vkGetPhysicalDeviceSurfacePresentModesKHR(pd, surface, &np, nullptr);
    std::vector<VkPresentModeKHR> modes(np);
    vkGetPhysicalDeviceSurfacePresentModesKHR(pd, surface, &np, modes.data());
    VkPresentModeKHR mode = VK_PRESENT_MODE_FIFO_KHR; // always available: vsync on
    if (!m_vsync) {
        for (auto want : {VK_PRESENT_MODE_MAILBOX_KHR, VK_PRESENT_MODE_IMMEDIATE_KHR})
            if (std::find(modes.begin(), modes.end(), want) != modes.end()) {
                mode = want;
                break;
            }
    }
    m_canCopyFrom = caps.supportedUsageFlags & VK_IMAGE_USAGE_TRANSFER_SRC_BIT;

    VkSwapchainCreateInfoKHR sci{VK_STRUCTURE_TYPE_SWAPCHAIN_CREATE_INFO_KHR};
    sci.surface = surface;
    sci.minImageCount = caps.minImageCount + 1;
    if (caps.maxImageCount) sci.minImageCount = std::min(sci.minImageCount, caps.maxImageCount);
    sci.imageFormat = chosen.format;
    sci.imageColorSpace = chosen.colorSpace;
    sci.imageExtent = extent;
    sci.imageArrayLayers = 1;
    sci.imageUsage =
        VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | (m_canCopyFrom ? VK_IMAGE_USAGE_TRANSFER_SRC_BIT : 0);
    sci.imageSharingMode = VK_SHARING_MODE_EXCLUSIVE;
    sci.preTransform = caps.currentTransform;
    sci.compositeAlpha = VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR;
    sci.presentMode = mode;
    sci.clipped = VK_TRUE;
    sci.oldSwapchain = m_swapchain;
    VkSwapchainKHR created;
    TS_VK_CHECK(vkCreateSwapchainKHR(m_ctx.device(), &sci, nullptr, &created));
    destroySwapchain();
    m_swapchain = created;
    m_extent = extent;
    ++m_generation;

    uint32_t n = 0;
    vkGetSwapchainImagesKHR(m_ctx.device(), m_swapchain, &n, nullptr);
    m_images.resize(n);
    vkGetSwapchainImagesKHR(m_ctx.device(), m_swapchain, &n, m_images.data());
    for (VkImage img : m_images) {
        VkImageViewCreateInfo vci{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO};
        vci.image = img;
        vci.viewType = VK_IMAGE_VIEW_TYPE_2D;
        vci.format = m_format;
        vci.subresourceRange = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 1, 0, 1};
        VkImageView v;
        TS_VK_CHECK(vkCreateImageView(m_ctx.device(), &vci, nullptr, &v));
        m_views.push_back(v);
        VkSemaphoreCreateInfo semci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
        VkSemaphore s;
        TS_VK_CHECK(vkCreateSemaphore(m_ctx.device(), &semci, nullptr, &s));
        m_renderDone.push_back(s);
    }
    auto depth =
        Image::create(m_ctx, {extent.width, extent.height, kDepthFormat,
                              VK_IMAGE_USAGE_DEPTH_STENCIL_ATTACHMENT_BIT, VK_IMAGE_ASPECT_DEPTH_BIT});
    if (!depth) return depth.error();
    m_depth = std::move(depth.value());
    m_needsRecreate = false;
    return Status::ok();
}

Expected<Frame> WindowTarget::beginFrame() {
    Frame f;
    int fbw = 0, fbh = 0;
    glfwGetFramebufferSize(m_window, &fbw, &fbh);
    if (fbw == 0 || fbh == 0) return f; // minimised: skip
    if (m_needsRecreate || !m_swapchain || uint32_t(fbw) != m_extent.width ||
        uint32_t(fbh) != m_extent.height) {
        vkDeviceWaitIdle(m_ctx.device());
        TS_TRY(createSwapchain());
        if (!m_swapchain || m_extent.width == 0) return f;
    }
    VkDevice dev = m_ctx.device();
    TS_VK_CHECK(vkWaitForFences(dev, 1, &m_fences[m_slot], VK_TRUE, UINT64_MAX));
    VkResult r = vkAcquireNextImageKHR(dev, m_swapchain, UINT64_MAX, m_acquired[m_slot], VK_NULL_HANDLE,
                                       &m_imageIndex);
    if (r == VK_ERROR_OUT_OF_DATE_KHR) {
        m_needsRecreate = true;
        return f;
    }
    if (r != VK_SUCCESS && r != VK_SUBOPTIMAL_KHR) TS_VK_CHECK(r);
    if (r == VK_SUBOPTIMAL_KHR) m_needsRecreate = true;
    TS_VK_CHECK(vkResetFences(dev, 1, &m_fences[m_slot]));
    VkCommandBuffer cmd = m_cmds[m_slot];
    TS_VK_CHECK(vkResetCommandBuffer(cmd, 0));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    TS_VK_CHECK(vkBeginCommandBuffer(cmd, &bi));
    transitionImage(cmd, m_images[m_imageIndex], VK_IMAGE_ASPECT_COLOR_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
                    VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL, VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT,
                    0, VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT,
                    VK_ACCESS_2_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_2_COLOR_ATTACHMENT_READ_BIT);
    transitionImage(
        cmd, m_depth.handle(), VK_IMAGE_ASPECT_DEPTH_BIT, VK_IMAGE_LAYOUT_UNDEFINED,
        VK_IMAGE_LAYOUT_DEPTH_ATTACHMENT_OPTIMAL,
        VK_PIPELINE_STAGE_2_EARLY_FRAGMENT_TESTS_BIT | VK_PIPELINE_STAGE_2_LATE_FRAGMENT_TESTS_BIT,
        VK_ACCESS_2_DEPTH_STENCIL_ATTACHMENT_WRITE_BIT,
        VK_PIPELINE_STAGE_2_EARLY_FRAGMENT_TESTS_BIT | VK_PIPELINE_STAGE_2_LATE_FRAGMENT_TESTS_BIT,
        VK_ACCESS_2_DEPTH_STENCIL_ATTACHMENT_WRITE_BIT | VK_ACCESS_2_DEPTH_STENCIL_ATTACHMENT_READ_BIT);
    f.valid = true;
    f.cmd = cmd;
    f.colorImage = m_images[m_imageIndex];
    f.colorView = m_views[m_imageIndex];
    f.depthImage = m_depth.handle();
    f.depthView = m_depth.view();
    f.extent = m_extent;
    f.slot = m_slot;
    f.generation = m_generation;
    return f;
}

Status WindowTarget::endFrame(Frame& frame, ImageRgba8* screenshot) {
    if (!frame.valid) return Status::ok();
    VkCommandBuffer cmd = frame.cmd;
    bool copy = screenshot && m_canCopyFrom;
    if (screenshot && !m_canCopyFrom) TS_LOG_WARN("this swapchain cannot be read back; screenshot skipped");
    VkDeviceSize bytes = VkDeviceSize(m_extent.width) * m_extent.height * 4;
    if (copy && (!m_readback || m_readback.size() < bytes)) {
        auto rb = Buffer::create(m_ctx, {bytes, VK_BUFFER_USAGE_TRANSFER_DST_BIT, MemoryUsage::Readback});
        if (!rb) return rb.error();
        m_readback = std::move(rb.value());
    }
    VkImageLayout last = VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL;
    if (copy) {
        transitionImage(cmd, frame.colorImage, VK_IMAGE_ASPECT_COLOR_BIT, last,
                        VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT,
                        VK_ACCESS_2_COLOR_ATTACHMENT_WRITE_BIT, VK_PIPELINE_STAGE_2_COPY_BIT,
                        VK_ACCESS_2_TRANSFER_READ_BIT);
        VkBufferImageCopy region{};
        region.imageSubresource = {VK_IMAGE_ASPECT_COLOR_BIT, 0, 0, 1};
        region.imageExtent = {m_extent.width, m_extent.height, 1};
        vkCmdCopyImageToBuffer(cmd, frame.colorImage, VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
                               m_readback.handle(), 1, &region);
        last = VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL;
    }
    transitionImage(cmd, frame.colorImage, VK_IMAGE_ASPECT_COLOR_BIT, last, VK_IMAGE_LAYOUT_PRESENT_SRC_KHR,
                    VK_PIPELINE_STAGE_2_COLOR_ATTACHMENT_OUTPUT_BIT | VK_PIPELINE_STAGE_2_COPY_BIT,
                    VK_ACCESS_2_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_2_TRANSFER_READ_BIT,
                    VK_PIPELINE_STAGE_2_BOTTOM_OF_PIPE_BIT, 0);
    TS_VK_CHECK(vkEndCommandBuffer(cmd));

    VkPipelineStageFlags waitStage = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.waitSemaphoreCount = 1;
    si.pWaitSemaphores = &m_acquired[m_slot];
    si.pWaitDstStageMask = &waitStage;
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    si.signalSemaphoreCount = 1;
    si.pSignalSemaphores = &m_renderDone[m_imageIndex];
    TS_VK_CHECK(vkQueueSubmit(m_ctx.queue(), 1, &si, m_fences[m_slot]));

    VkPresentInfoKHR pi{VK_STRUCTURE_TYPE_PRESENT_INFO_KHR};
    pi.waitSemaphoreCount = 1;
    pi.pWaitSemaphores = &m_renderDone[m_imageIndex];
    pi.swapchainCount = 1;
    pi.pSwapchains = &m_swapchain;
    pi.pImageIndices = &m_imageIndex;
    VkResult r = vkQueuePresentKHR(m_ctx.queue(), &pi);
    if (r == VK_ERROR_OUT_OF_DATE_KHR || r == VK_SUBOPTIMAL_KHR)
        m_needsRecreate = true;
    else if (r != VK_SUCCESS)
        TS_VK_CHECK(r);

    if (copy) {
        TS_VK_CHECK(vkWaitForFences(m_ctx.device(), 1, &m_fences[m_slot], VK_TRUE, UINT64_MAX));
        bgraToRgba(m_readback.mapped(), m_extent.width, m_extent.height, *screenshot);
    }
    frame.valid = false;
    m_slot = (m_slot + 1) % kFramesInFlight;
    return Status::ok();
}

} // namespace ts::render
