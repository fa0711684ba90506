// Text in CPU-drawn pictures (headless PNGs made without the renderer): Dear ImGui's built-in pixel font
// (ProggyClean, 13 px), rasterised once into an atlas and blitted glyph by glyph. ASCII; other bytes draw '?'.
#pragma once

#include <string>

#include "engine/core/colormap.hpp"
#include "engine/core/image.hpp"

namespace ts {

inline constexpr int kTextHeight = 13; // pixels per line at scale 1

// Width in pixels of `text` at `scale` (a whole factor: 1, 2, ...).
int textWidth(const std::string& text, int scale = 1);

// Draws `text` with its top-left corner at (x, y), clipped to the image; alpha-blended over what is there.
void drawText(ImageRgba8& image, int x, int y, const std::string& text, Rgb8 colour, int scale = 1);

} // namespace ts
