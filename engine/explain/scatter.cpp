#include "engine/explain/scatter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "engine/core/text_raster.hpp"
#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {

using detail::fillRect;

void disc(ImageRgba8& img, float cx, float cy, float r, Rgb8 c, float alpha) {
    for (int y = int(std::floor(cy - r - 1)); y <= int(std::ceil(cy + r + 1)); ++y)
        for (int x = int(std::floor(cx - r - 1)); x <= int(std::ceil(cx + r + 1)); ++x) {
            if (x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
            const float d = std::hypot(float(x) + 0.5f - cx, float(y) + 0.5f - cy);
            const float a = alpha * std::clamp(r + 0.5f - d, 0.0f, 1.0f); // anti-aliased edge
            if (a <= 0) continue;
            std::uint8_t* p = img.at(x, y);
            p[0] = std::uint8_t(p[0] + (c.r - p[0]) * a + 0.5f);
            p[1] = std::uint8_t(p[1] + (c.g - p[1]) * a + 0.5f);
            p[2] = std::uint8_t(p[2] + (c.b - p[2]) * a + 0.5f);
        }
}

} // namespace

Rgb8 classColour(int64_t c) {
    static const Rgb8 tableau[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                                     {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    if (c < 0) return {120, 120, 120};
    if (c < 10) return tableau[c];
    const float h = std::fmod(float(c) * 137.508f, 360.0f) / 60.0f; // golden-angle hues, s 0.65, v 0.9
    const float v = 0.9f, s = 0.65f, f = h - std::floor(h);
    const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    float r = v, g = t, b = p;
    switch (int(h) % 6) {
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    case 5: r = v, g = p, b = q; break;
    default: break;
    }
    return {std::uint8_t(r * 255), std::uint8_t(g * 255), std::uint8_t(b * 255)};
}

ImageRgba8 renderScatter(const ScatterSource& src, int width, int height) {
    ImageRgba8 img(width, height);
    fillRect(img, 0, 0, width, height, {24, 24, 28});
    const Rgb8 text{230, 230, 235}, dim{160, 160, 170}, frame{70, 70, 80};
    int classes = 0;
    for (int64_t l : src.labels)
        classes = std::max<int>(classes, int(l) + 1);
    const int legendW = classes > 0 ? 40 + [&] {
        int w = 0;
        for (int c = 0; c < classes; ++c)
            w = std::max(w, textWidth(size_t(c) < src.classNames.size() ? src.classNames[size_t(c)] : std::to_string(c)));
        return std::min(w, 220);
    }() : 0;
    const int left = 40, top = 66, right = width - 16 - legendW, bottom = height - 40;
    drawText(img, 12, 10, src.title, text);
    drawText(img, 12, 28, src.subtitle, dim);
    // Plot frame and the points' range, padded by 4 %.
    fillRect(img, left, top, right - left, 1, frame), fillRect(img, left, bottom, right - left + 1, 1, frame);
    fillRect(img, left, top, 1, bottom - top, frame), fillRect(img, right, top, 1, bottom - top, frame);
    const size_t n = std::min(src.x.size(), src.y.size());
    float x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; ++i)
        if (std::isfinite(src.x[i]) && std::isfinite(src.y[i]))
            x0 = std::min(x0, src.x[i]), x1 = std::max(x1, src.x[i]), y0 = std::min(y0, src.y[i]), y1 = std::max(y1, src.y[i]);
    if (!(x1 >= x0)) x0 = -1, x1 = 1, y0 = -1, y1 = 1;
    const float px = (x1 - x0) * 0.04f + 1e-6f, py = (y1 - y0) * 0.04f + 1e-6f;
    x0 -= px, x1 += px, y0 -= py, y1 += py;
    // A fixed pseudo-random drawing order, so no class is always drawn on top.
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    for (size_t i = n; i > 1; --i)
        std::swap(order[i - 1], order[(i * 2654435761u) % i]);
    const float r = n > 5000 ? 1.6f : n > 1000 ? 2.2f : 3.0f;
    for (size_t i : order) {
        if (!std::isfinite(src.x[i]) || !std::isfinite(src.y[i])) continue;
        const float sx = float(left) + (src.x[i] - x0) / (x1 - x0) * float(right - left);
        const float sy = float(bottom) - (src.y[i] - y0) / (y1 - y0) * float(bottom - top);
        disc(img, sx, sy, r, classColour(i < src.labels.size() ? src.labels[i] : -1), 0.85f);
    }
    drawText(img, left + (right - left - textWidth(src.xTitle)) / 2, bottom + 8, src.xTitle, dim);
    // The y title runs along the top of the axis (no rotated text): left-aligned over the frame.
    drawText(img, left, top - 15, src.yTitle + " ^", dim);
    char range[96];
    std::snprintf(range, sizeof range, "%.3g .. %.3g", double(x0 + px), double(x1 - px));
    drawText(img, right - textWidth(range), bottom + 8, range, frame.r > 0 ? dim : text);
    for (int c = 0; c < classes; ++c) {
        const int ly = top + 4 + c * 18;
        if (ly + 14 > bottom) break;
        fillRect(img, right + 14, ly + 2, 10, 10, classColour(c));
        const std::string name = size_t(c) < src.classNames.size() ? src.classNames[size_t(c)] : std::to_string(c);
        drawText(img, right + 30, ly, name, text);
    }
    return img;
}

} // namespace ts::explain
