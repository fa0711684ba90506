// A host RGBA8 image and PNG file I/O (stb). Screenshots, golden images and test pictures use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/core/error.hpp"

namespace ts {

struct ImageRgba8 {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels; // row-major, top row first, 4 bytes per pixel (R, G, B, A)

    ImageRgba8() = default;
    ImageRgba8(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 4, 0) {}

    std::uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * 4]; }
    const std::uint8_t* at(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * 4]; }
};

Status writePng(const std::string& path, const ImageRgba8& image);

// CPU drawing for headless pictures (explain's figures, landscape plots), clipped to the image, opaque.
void fillRect(ImageRgba8& img, int x0, int y0, int w, int h, Rgb8 c);
// A straight line `thickness` pixels wide (square pen) from (x0, y0) to (x1, y1).
void drawLine(ImageRgba8& img, float x0, float y0, float x1, float y1, Rgb8 c, int thickness = 1);
Expected<ImageRgba8> readPng(const std::string& path);

} // namespace ts
