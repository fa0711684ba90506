// ImGui Vulkan/GLFW backend set-up, font upload, framebuffer cache and drawing.
#include "engine/ui/imgui_layer.hpp"

#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_vulkan.h>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"
#include "engine/ui/panel_image_pass.hpp"

namespace ts::ui {

using namespace ts::render;

void applyStyle() {
    ImGuiStyle& s = ImGui::GetStyle();
    ImGui::StyleColorsDark(&s);
    s.WindowRounding = 6.0f;
    s.FrameRounding = 4.0f;
    s.GrabRounding = 4.0f;
    s.WindowBorderSize = 0.0f;
    s.WindowPadding = ImVec2(10, 8);
    s.ItemSpacing = ImVec2(8, 5);
    ImVec4* c = s.Colors;
    c[ImGuiCol_WindowBg] = ImVec4(0.07f, 0.08f, 0.11f, 0.86f);
    c[ImGuiCol_TitleBg] = ImVec4(0.09f, 0.11f, 0.16f, 0.95f);
    c[ImGuiCol_TitleBgActive] = ImVec4(0.12f, 0.17f, 0.27f, 0.95f);
    c[ImGuiCol_Header] = ImVec4(0.20f, 0.32f, 0.52f, 0.55f);
    c[ImGuiCol_HeaderHovered] = ImVec4(0.26f, 0.42f, 0.68f, 0.80f);
    c[ImGuiCol_FrameBg] = ImVec4(0.13f, 0.16f, 0.22f, 0.90f);
    c[ImGuiCol_Button] = ImVec4(0.20f, 0.32f, 0.52f, 0.70f);
    c[ImGuiCol_ButtonHovered] = ImVec4(0.28f, 0.45f, 0.72f, 0.90f);
    c[ImGuiCol_PlotLines] = ImVec4(0.45f, 0.75f, 1.00f, 1.00f);
    c[ImGuiCol_PlotHistogram] = ImVec4(0.95f, 0.55f, 0.25f, 1.00f);
}

Expected<std::unique_ptr<ImGuiLayer>> ImGuiLayer::create(Context& ctx, VkFormat colorFormat,
                                                         uint32_t imageCount, GLFWwindow* window) {
    std::unique_ptr<ImGuiLayer> l(new ImGuiLayer(ctx));
    IMGUI_CHECKVERSION();
    l->m_imgui = ImGui::CreateContext();
    ImGui::SetCurrentContext(l->m_imgui);
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr; // no imgui.ini files left in the user's folders
    applyStyle();
    if (window) {
        if (!ImGui_ImplGlfw_InitForVulkan(window, true))
            return makeError(ErrorKind::Environment, "ImGui could not attach to the GLFW window");
        l->m_glfw = true;
    }

    VkAttachmentDescription color{};
    color.format = colorFormat;
    color.samples = VK_SAMPLE_COUNT_1_BIT;
    color.loadOp = VK_ATTACHMENT_LOAD_OP_LOAD;
    color.storeOp = VK_ATTACHMENT_STORE_OP_STORE;
    color.stencilLoadOp = VK_ATTACHMENT_LOAD_OP_DONT_CARE;
    color.stencilStoreOp = VK_ATTACHMENT_STORE_OP_DONT_CARE;
    color.initialLayout = VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL;
    color.finalLayout = VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL;
    VkAttachmentReference ref{0, VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL};
    VkSubpassDescription sub{};
    sub.pipelineBindPoint = VK_PIPELINE_BIND_POINT_GRAPHICS;
    sub.colorAttachmentCount = 1;
    sub.pColorAttachments = &ref;
    VkSubpassDependency deps[2]{};
    deps[0].srcSubpass = VK_SUBPASS_EXTERNAL;
    deps[0].dstSubpass = 0;
    deps[0].srcStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    deps[0].dstStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    deps[0].srcAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT;
    deps[0].dstAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_COLOR_ATTACHMENT_READ_BIT;
    deps[1].srcSubpass = 0;
    deps[1].dstSubpass = VK_SUBPASS_EXTERNAL;
    deps[1].srcStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT;
    deps[1].dstStageMask = VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    deps[1].srcAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT;
    deps[1].dstAccessMask = VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT;
    VkRenderPassCreateInfo rp{VK_STRUCTURE_TYPE_RENDER_PASS_CREATE_INFO};
    rp.attachmentCount = 1;
    rp.pAttachments = &color;
    rp.subpassCount = 1;
    rp.pSubpasses = &sub;
    rp.dependencyCount = 2;
    rp.pDependencies = deps;
    TS_VK_CHECK(vkCreateRenderPass(ctx.device(), &rp, nullptr, &l->m_renderPass));

    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, 16};
    VkDescriptorPoolCreateInfo pci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pci.flags = VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT;
    pci.maxSets = 16;
    pci.poolSizeCount = 1;
    pci.pPoolSizes = &size;
    TS_VK_CHECK(vkCreateDescriptorPool(ctx.device(), &pci, nullptr, &l->m_pool));

    ImGui_ImplVulkan_InitInfo info{};
    info.Instance = ctx.instance();
    info.PhysicalDevice = ctx.physicalDevice();
    info.Device = ctx.device();
    info.QueueFamily = ctx.queueFamily();
    info.Queue = ctx.queue();
    info.DescriptorPool = l->m_pool;
    info.MinImageCount = std::max(imageCount, 2u);
    info.ImageCount = std::max(imageCount, 2u);
    info.MSAASamples = VK_SAMPLE_COUNT_1_BIT;
    if (!ImGui_ImplVulkan_Init(&info, l->m_renderPass))
        return makeError(ErrorKind::Failed, "ImGui Vulkan backend failed to initialise");
    l->m_vulkanInit = true;
    TS_TRY(ctx.submitAndWait([](VkCommandBuffer cmd) { ImGui_ImplVulkan_CreateFontsTexture(cmd); }));
    ImGui_ImplVulkan_DestroyFontUploadObjects();
    auto images = PanelImagePass::create(ctx, l->m_renderPass);
    if (!images) return images.error();
    l->m_images = std::move(images.value());
    return l;
}

ImGuiLayer::~ImGuiLayer() {
    vkDeviceWaitIdle(m_ctx.device());
    m_images.reset();
    ImGui::SetCurrentContext(m_imgui);
    if (m_vulkanInit) ImGui_ImplVulkan_Shutdown();
    if (m_glfw) ImGui_ImplGlfw_Shutdown();
    for (auto& [view, fb] : m_framebuffers)
        vkDestroyFramebuffer(m_ctx.device(), fb, nullptr);
    if (m_pool) vkDestroyDescriptorPool(m_ctx.device(), m_pool, nullptr);
    if (m_renderPass) vkDestroyRenderPass(m_ctx.device(), m_renderPass, nullptr);
    if (m_imgui) ImGui::DestroyContext(m_imgui);
}

void ImGuiLayer::discardFrame() {
    ImGui::SetCurrentContext(m_imgui);
    ImGui::EndFrame();
}

bool ImGuiLayer::wantsMouse() const {
    return ImGui::GetIO().WantCaptureMouse;
}
bool ImGuiLayer::wantsKeyboard() const {
    return ImGui::GetIO().WantCaptureKeyboard;
}
size_t ImGuiLayer::panelTextures() const {
    return m_images ? m_images->textureCount() : 0;
}

void ImGuiLayer::newFrame(VkExtent2D extent, float dt) {
    ImGui::SetCurrentContext(m_imgui);
    ImGui_ImplVulkan_NewFrame();
    if (m_glfw) {
        ImGui_ImplGlfw_NewFrame();
    } else {
        ImGuiIO& io = ImGui::GetIO();
        io.DisplaySize = ImVec2(float(extent.width), float(extent.height));
        io.DeltaTime = dt > 0.0f ? dt : 1.0f / 60.0f;
    }
    ImGui::NewFrame();
}

Expected<VkFramebuffer> ImGuiLayer::framebufferFor(const Frame& frame) {
    if (frame.extent.width != m_fbExtent.width || frame.extent.height != m_fbExtent.height ||
        frame.generation != m_fbGeneration) {
        vkDeviceWaitIdle(m_ctx.device());
        for (auto& [view, fb] : m_framebuffers)
            vkDestroyFramebuffer(m_ctx.device(), fb, nullptr);
        m_framebuffers.clear();
        m_fbExtent = frame.extent;
        m_fbGeneration = frame.generation;
    }
    auto it = m_framebuffers.find(frame.colorView);
    if (it != m_framebuffers.end()) return it->second;
    VkFramebufferCreateInfo fci{VK_STRUCTURE_TYPE_FRAMEBUFFER_CREATE_INFO};
    fci.renderPass = m_renderPass;
    fci.attachmentCount = 1;
    fci.pAttachments = &frame.colorView;
    fci.width = frame.extent.width;
    fci.height = frame.extent.height;
    fci.layers = 1;
    VkFramebuffer fb;
    VkResult r = vkCreateFramebuffer(m_ctx.device(), &fci, nullptr, &fb);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateFramebuffer", __FILE__, __LINE__);
    m_framebuffers[frame.colorView] = fb;
    return fb;
}

Status ImGuiLayer::render(const Frame& frame) {
    ImGui::SetCurrentContext(m_imgui);
    ImGui::Render();
    ImDrawData* data = ImGui::GetDrawData();
    if (m_images) TS_TRY(m_images->prepare(frame.cmd)); // uploads (outside the render pass) and releases
    if (!data || data->CmdListsCount == 0) return Status::ok();
    auto fb = framebufferFor(frame);
    if (!fb) return fb.error();
    VkRenderPassBeginInfo rbi{VK_STRUCTURE_TYPE_RENDER_PASS_BEGIN_INFO};
    rbi.renderPass = m_renderPass;
    rbi.framebuffer = *fb;
    rbi.renderArea = {{0, 0}, frame.extent};
    vkCmdBeginRenderPass(frame.cmd, &rbi, VK_SUBPASS_CONTENTS_INLINE);
    if (m_images) m_images->begin(frame.cmd, frame.extent, data->DisplaySize);
    ImGui_ImplVulkan_RenderDrawData(data, frame.cmd);
    if (m_images) m_images->end();
    vkCmdEndRenderPass(frame.cmd);
    return Status::ok();
}

} // namespace ts::ui
