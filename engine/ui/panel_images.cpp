// The ImGui side of panel images: requests per frame and the draw-list callbacks that carry them.
#include "engine/ui/panel_images.hpp"

#include <cstdint>

namespace ts::ui {
namespace {
// Requests of one ImGui context's frame (the UI thread is the only one that builds panels).
struct Requests {
    ImGuiContext* context = nullptr;
    int frame = -1;
    std::vector<PanelImageRequest> list;
};
Requests& requests() {
    static Requests r;
    if (r.context != ImGui::GetCurrentContext() || r.frame != ImGui::GetFrameCount()) {
        r.context = ImGui::GetCurrentContext();
        r.frame = ImGui::GetFrameCount();
        r.list.clear();
    }
    return r;
}
PanelImageDrawFn g_drawer = nullptr;

void callback(const ImDrawList*, const ImDrawCmd* cmd) {
    const auto& list = requests().list;
    const size_t index = size_t(reinterpret_cast<uintptr_t>(cmd->UserCallbackData));
    if (g_drawer && index < list.size()) g_drawer(list[index], *cmd);
}
} // namespace

std::shared_ptr<const PanelImage> panelImageOf(const ImageRgba8& img) {
    auto pi = std::make_shared<PanelImage>();
    pi->width = img.width;
    pi->height = img.height;
    pi->rgba.resize(size_t(img.width) * size_t(img.height));
    for (size_t i = 0; i < pi->rgba.size(); ++i)
        pi->rgba[i] = uint32_t(img.pixels[4 * i]) | uint32_t(img.pixels[4 * i + 1]) << 8 |
                      uint32_t(img.pixels[4 * i + 2]) << 16 | 0xff000000u;
    return pi;
}

void drawPanelImage(ImDrawList* dl, std::shared_ptr<const PanelImage> image, ImVec2 p0, ImVec2 p1) {
    if (!dl || !image || image->width <= 0 || image->height <= 0 || image->width > 16384 ||
        image->height > 16384 || image->rgba.size() != size_t(image->width) * size_t(image->height))
        return;
    auto& r = requests();
    r.list.push_back({std::move(image), p0, p1});
    dl->AddCallback(callback, reinterpret_cast<void*>(uintptr_t(r.list.size() - 1)));
    dl->AddCallback(ImDrawCallback_ResetRenderState, nullptr); // ImGui rebinds its own pipeline after it
}

const std::vector<PanelImageRequest>& panelImageRequests() {
    return requests().list;
}

void setPanelImageDrawer(PanelImageDrawFn fn) {
    g_drawer = fn;
}

} // namespace ts::ui
