// Images inside panels drawn by the GPU: a panel hands an RGBA image and a rectangle to drawPanelImage, and
// the overlay's Vulkan pass uploads it once (while the same image object is drawn, it stays a texture) and draws
// it as one nearest-sampled quad, instead of one ImGui rectangle per cell. The series view's density image and
// the weights view's canvas (one pixel per weight at full zoom) use it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <imgui.h>

#include "engine/core/image.hpp"

namespace ts::ui {

struct PanelImage {
    int width = 0, height = 0;
    std::vector<uint32_t> rgba; // row-major, top row first, IM_COL32 order (R in the low byte); alpha 0: see-through
};

// A CPU picture as panels draw it (opaque).
std::shared_ptr<const PanelImage> panelImageOf(const ImageRgba8& image);

// Draws `image` over [p0, p1) of `dl` (clipped like the draw list's other items). Images larger than 16384 a
// side, or empty, are skipped. Without an overlay pass (ImGui without Vulkan, as in the UI tests) only the
// request is recorded.
void drawPanelImage(ImDrawList* dl, std::shared_ptr<const PanelImage> image, ImVec2 p0, ImVec2 p1);

struct PanelImageRequest {
    std::shared_ptr<const PanelImage> image;
    ImVec2 p0, p1;
};
// The requests of the current ImGui context's current frame, in order (the overlay pass reads them).
const std::vector<PanelImageRequest>& panelImageRequests();

// The draw-list callback that draws request `index` (set by drawPanelImage; the pass installs the drawing).
using PanelImageDrawFn = void (*)(const PanelImageRequest& request, const ImDrawCmd& cmd);
void setPanelImageDrawer(PanelImageDrawFn fn);

} // namespace ts::ui
