#include "engine/explain/feature_sheet.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/capture/network.hpp"
#include "engine/core/colormap.hpp"
#include "engine/core/text_raster.hpp"
#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {
namespace sheet { // named: this module is a unity build, and heatmap.cpp has file-local helpers too

struct Geometry {
    int64_t channels = 1, height = 1, width = 1; // the sample as an image
    int down = 1;                                // box average over down x down source pixels
    int fx = 1, fy = 1;                          // then each pixel drawn fx x fy
    int w() const { return int(width / down) * fx; }
    int h() const { return int(height / down) * fy; }
};

Geometry geometryOf(const std::vector<int64_t>& shape, int cell) {
    const auto g = capture::foldToGrid(shape);
    Geometry s;
    if (g[1] == 1 && g[0] > 1) s.channels = 1, s.height = g[0], s.width = g[2]; // [C, L]: a row per channel
    else s.channels = g[0], s.height = g[1], s.width = g[2];
    const int64_t longSide = std::max(s.height, s.width);
    if (longSide > 2 * cell) s.down = int(longSide / cell);
    const int64_t h = s.height / s.down, w = s.width / s.down;
    if (h == 1) {
        s.fx = std::max(1, int(cell / std::max<int64_t>(1, w)));
        s.fy = std::max(1, cell / 4);
    } else {
        s.fx = s.fy = std::max(1, int(cell / std::max(h, w)));
    }
    return s;
}

using detail::fillRect;

void drawSample(ImageRgba8& img, int x0, int y0, const std::vector<float>& v, const Geometry& g, float lo, float hi) {
    const int64_t plane = g.height * g.width, h = g.height / g.down, w = g.width / g.down;
    const float span = hi > lo ? hi - lo : 1.0f;
    auto u8 = [](float t) { return static_cast<std::uint8_t>(std::clamp(t, 0.0f, 1.0f) * 255.0f + 0.5f); };
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
            float c[3] = {0, 0, 0};
            const int nc = g.channels == 3 ? 3 : 1;
            for (int k = 0; k < nc; ++k) {
                double acc = 0;
                int count = 0;
                for (int64_t ch = (nc == 3 ? k : 0); ch < (nc == 3 ? k + 1 : g.channels); ++ch)
                    for (int dy = 0; dy < g.down; ++dy)
                        for (int dx = 0; dx < g.down; ++dx) {
                            const float s = v[size_t(ch * plane + (y * g.down + dy) * g.width + x * g.down + dx)];
                            if (std::isfinite(s)) acc += s, ++count;
                        }
                c[k] = count ? (float(acc / count) - lo) / span : 0.0f;
            }
            if (nc == 1) c[1] = c[2] = c[0];
            fillRect(img, x0 + int(x) * g.fx, y0 + int(y) * g.fy, g.fx, g.fy, {u8(c[0]), u8(c[1]), u8(c[2])});
        }
}

std::string fit(std::string s, int width) {
    while (s.size() > 3 && textWidth(s) > width) s = s.substr(0, s.size() - 3) + "..";
    return s;
}

std::vector<std::string> wrap(const std::string& text, int width) {
    std::vector<std::string> lines;
    std::string line, word;
    auto flush = [&] {
        if (word.empty()) return;
        const std::string joined = line.empty() ? word : line + " " + word;
        if (!line.empty() && textWidth(joined) > width) lines.push_back(line), line = word;
        else line = joined;
        word.clear();
    };
    for (char c : text)
        if (c == ' ') flush();
        else word += c;
    flush();
    if (!line.empty()) lines.push_back(line);
    return lines;
}

} // namespace sheet
} // namespace

ImageRgba8 renderFeatureSheet(const FeatureSheet& f, int cell) {
    const sheet::Geometry g = sheet::geometryOf(f.shape, cell);
    size_t tops = 0;
    bool maximised = false;
    for (const auto& r : f.rows)
        tops = std::max(tops, r.top.size()), maximised = maximised || !r.maximised.empty();
    int label = 80;
    for (const auto& r : f.rows)
        label = std::max(label, textWidth(r.caption) + 16);
    label = std::min(label, 220);
    const int gap = 8, margin = 14, text = kTextHeight + 2;
    const int colW = std::max(g.w(), 72), rowH = g.h() + 2 * text + 6;
    const int amW = maximised ? colW + 3 * gap : 0;
    const int width = std::max(2 * margin + label + amW + int(tops) * (colW + gap), 320);
    // Title and subtitle wrap at spaces where they are wider than the picture.
    const std::vector<std::string> title = sheet::wrap(f.title, width - 2 * margin);
    const std::vector<std::string> sub = sheet::wrap(f.subtitle, width - 2 * margin);
    const int header = 20 * int(title.size()) + 18 * int(sub.size()) + text + 6;
    const int height = margin + header + int(f.rows.size()) * (rowH + gap) + margin;
    ImageRgba8 img(width, std::max(height, 80));
    sheet::fillRect(img, 0, 0, img.width, img.height, {24, 24, 28});
    const Rgb8 bright{230, 230, 235}, dim{160, 160, 170}, accent{255, 160, 60};
    int y = margin;
    for (const auto& line : title)
        drawText(img, margin, y, sheet::fit(line, img.width - 2 * margin), bright), y += 20;
    for (const auto& line : sub)
        drawText(img, margin, y, sheet::fit(line, img.width - 2 * margin), dim), y += 18;
    const int x0 = margin + label;
    if (maximised) drawText(img, x0, y, "maximised", accent);
    for (size_t k = 0; k < tops; ++k)
        drawText(img, x0 + amW + int(k) * (colW + gap), y, "top " + std::to_string(k + 1), dim);
    y += text + 6;
    char value[48];
    for (const auto& r : f.rows) {
        drawText(img, margin, y + g.h() / 2 - text / 2, sheet::fit(r.caption, label - gap), bright);
        if (!r.maximised.empty()) {
            sheet::fillRect(img, x0 - 2, y - 2, g.w() + 4, g.h() + 4, accent); // the frame marks the synthetic image
            sheet::drawSample(img, x0, y, r.maximised, g, f.lo, f.hi);
            std::snprintf(value, sizeof value, "%.4g", r.maximisedValue);
            drawText(img, x0, y + g.h() + 4, value, accent);
        }
        for (size_t k = 0; k < r.top.size(); ++k) {
            const int x = x0 + amW + int(k) * (colW + gap);
            sheet::drawSample(img, x, y, r.top[k], g, f.lo, f.hi);
            std::snprintf(value, sizeof value, "%.4g", k < r.topValues.size() ? r.topValues[k] : 0.0);
            drawText(img, x, y + g.h() + 4, value, bright);
            if (k < r.topCaptions.size()) drawText(img, x, y + g.h() + 4 + text, sheet::fit(r.topCaptions[k], colW), dim);
        }
        y += rowH + gap;
    }
    return img;
}

} // namespace ts::explain
