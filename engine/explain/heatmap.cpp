#include "engine/explain/heatmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/capture/network.hpp"
#include "engine/core/colormap.hpp"
#include "engine/core/text_raster.hpp"

namespace ts::explain {

namespace {

// The sample as rows x columns x channels: images keep their channels, sequences [C, L] become C rows.
struct Layout {
    int64_t channels = 1, height = 1, width = 1;
};

Layout layoutOf(const std::vector<int64_t>& shape) {
    const auto g = capture::foldToGrid(shape);
    if (g[1] == 1 && g[0] > 1) return {1, g[0], g[2]}; // [C, L]: one row per channel
    return {g[0], g[1], g[2]};
}

float percentileAbs(const std::vector<float>& v, double q) {
    std::vector<float> a;
    a.reserve(v.size());
    for (float x : v)
        if (std::isfinite(x)) a.push_back(std::fabs(x));
    if (a.empty()) return 0.0f;
    const size_t k = std::min(a.size() - 1, static_cast<size_t>(q * double(a.size() - 1) + 0.5));
    std::nth_element(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(k), a.end());
    return a[k];
}

struct Panel {
    int height = 0, width = 0;
    std::vector<Rgb8> pixels;
};

// The input as colours: RGB for three channels, grey otherwise (channel mean), each stretched to its range.
Panel inputPanel(const HeatmapSource& src, const Layout& l) {
    Panel p{int(l.height), int(l.width), std::vector<Rgb8>(size_t(l.height * l.width))};
    float lo = INFINITY, hi = -INFINITY;
    for (float x : src.input)
        if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
    const float span = hi > lo ? hi - lo : 1.0f;
    const int64_t plane = l.height * l.width;
    for (int64_t i = 0; i < plane; ++i) {
        float c[3] = {0, 0, 0};
        if (l.channels == 3) {
            for (int k = 0; k < 3; ++k)
                c[k] = (src.input[size_t(k * plane + i)] - lo) / span;
        } else {
            float m = 0;
            for (int64_t k = 0; k < l.channels; ++k)
                m += src.input[size_t(k * plane + i)];
            c[0] = c[1] = c[2] = (m / float(l.channels) - lo) / span;
        }
        auto u8 = [](float v) { return static_cast<std::uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f); };
        p.pixels[size_t(i)] = {u8(c[0]), u8(c[1]), u8(c[2])};
    }
    return p;
}

Rgb8 heatColour(float v, const Map2D& m, bool signedMap) {
    if (!std::isfinite(v)) return {40, 40, 40};
    if (signedMap) return sampleColormap(Colormap::CoolWarm, 0.5f + 0.5f * std::clamp(v / m.scale, -1.0f, 1.0f));
    return sampleColormap(Colormap::Inferno, std::clamp(std::fabs(v) / m.scale, 0.0f, 1.0f));
}

void blit(ImageRgba8& img, const Panel& p, int x0, int y0, int fx, int fy) {
    for (int y = 0; y < p.height * fy; ++y)
        for (int x = 0; x < p.width * fx; ++x) {
            const Rgb8 c = p.pixels[size_t((y / fy) * p.width + x / fx)];
            std::uint8_t* d = img.at(x0 + x, y0 + y);
            d[0] = c.r, d[1] = c.g, d[2] = c.b, d[3] = 255;
        }
}

} // namespace

Map2D reduceMap(const HeatmapSource& src) {
    const Layout l = layoutOf(src.shape);
    Map2D m;
    m.height = int(l.height);
    m.width = int(l.width);
    const int64_t plane = l.height * l.width;
    m.values.assign(size_t(plane), 0.0f);
    for (int64_t i = 0; i < plane; ++i) {
        float acc = 0.0f;
        for (int64_t k = 0; k < l.channels; ++k) {
            const float v = src.attribution[size_t(k * plane + i)];
            acc = src.signedMap ? acc + v : std::max(acc, std::fabs(v));
        }
        m.values[size_t(i)] = acc;
    }
    const float s = percentileAbs(m.values, 0.995);
    m.scale = s > 0 ? s : 1.0f;
    return m;
}

ImageRgba8 renderExplanation(const HeatmapSource& src, int cell) {
    const Layout l = layoutOf(src.shape);
    const Map2D map = reduceMap(src);
    const Panel in = inputPanel(src, l);
    Panel heat{map.height, map.width, std::vector<Rgb8>(map.values.size())}, over = heat;
    for (size_t i = 0; i < map.values.size(); ++i) {
        const Rgb8 h = heatColour(map.values[i], map, src.signedMap);
        heat.pixels[i] = h;
        // Over the input: the input in grey, darkened, with the map's colour where the map is strong.
        const Rgb8 c = in.pixels[i];
        const float grey = (0.299f * c.r + 0.587f * c.g + 0.114f * c.b) * 0.55f;
        const float a = std::isfinite(map.values[i]) ? std::pow(std::clamp(std::fabs(map.values[i]) / map.scale, 0.0f, 1.0f), 0.6f) : 0.0f;
        auto mix = [&](std::uint8_t hc) { return static_cast<std::uint8_t>(grey * (1 - a) + float(hc) * a + 0.5f); };
        over.pixels[i] = {mix(h.r), mix(h.g), mix(h.b)};
    }
    const int longSide = std::max(map.height, map.width);
    const int f = std::max(1, cell / std::max(1, longSide));
    const int fy = map.height * f < 24 ? (24 + map.height - 1) / map.height : f;
    const int pw = std::max(map.width * f, 160), ph = map.height * fy, gap = 12;
    const int header = (src.title.empty() ? 0 : 20) + (src.subtitle.empty() ? 0 : 18);
    const int top = gap + header, footer = 64;
    ImageRgba8 img(3 * pw + 4 * gap, top + ph + footer);
    for (size_t i = 0; i < img.pixels.size(); i += 4)
        img.pixels[i] = 24, img.pixels[i + 1] = 24, img.pixels[i + 2] = 28, img.pixels[i + 3] = 255;
    const int px0 = (pw - map.width * f) / 2; // panels narrower than a label are centred in their column
    blit(img, in, gap + px0, top, f, fy);
    blit(img, heat, 2 * gap + pw + px0, top, f, fy);
    blit(img, over, 3 * gap + 2 * pw + px0, top, f, fy);
    const Rgb8 text{230, 230, 235}, dim{160, 160, 170};
    if (!src.title.empty()) drawText(img, gap, gap, src.title, text);
    if (!src.subtitle.empty()) drawText(img, gap, gap + (src.title.empty() ? 0 : 20), src.subtitle, dim);
    const int labelY = top + ph + 6;
    const char* labels[3] = {"input", src.mapLabel.c_str(), "over the input"};
    for (int p = 0; p < 3; ++p)
        drawText(img, gap + p * (pw + gap) + (pw - textWidth(labels[p])) / 2, labelY, labels[p], dim);
    // Colour bar under the map: -scale .. 0 .. +scale (signed) or 0 .. scale.
    const int barX = 2 * gap + pw + 8, barW = pw - 16, barY = labelY + 18;
    for (int x = 0; x < barW; ++x) {
        const float t = float(x) / float(std::max(1, barW - 1));
        const float v = src.signedMap ? (2 * t - 1) * map.scale : t * map.scale;
        const Rgb8 c = heatColour(v, map, src.signedMap);
        for (int y = 0; y < 8; ++y) {
            std::uint8_t* d = img.at(barX + x, barY + y);
            d[0] = c.r, d[1] = c.g, d[2] = c.b, d[3] = 255;
        }
    }
    char lo[32], hi[32];
    std::snprintf(lo, sizeof lo, "%.3g", src.signedMap ? -double(map.scale) : 0.0);
    std::snprintf(hi, sizeof hi, "%.3g", double(map.scale));
    drawText(img, barX, barY + 11, lo, dim);
    drawText(img, barX + barW - textWidth(hi), barY + 11, hi, dim);
    if (src.signedMap) drawText(img, barX + barW / 2 - textWidth("0") / 2, barY + 11, "0", dim);
    return img;
}

ImageRgba8 renderLayerMaps(const std::vector<LayerMap>& layers, const std::string& title, int tile) {
    std::vector<const LayerMap*> shown;
    for (const auto& l : layers) {
        const auto g = capture::foldToGrid(l.shape);
        if (g[1] > 1 && g[2] > 1) shown.push_back(&l);
    }
    const int gap = 12, caption = 32, columns = std::max(1, std::min<int>(6, int(shown.size())));
    const int rows = std::max(1, int((shown.size() + size_t(columns) - 1) / size_t(columns)));
    ImageRgba8 img(columns * (tile + gap) + gap, 34 + rows * (tile + caption + gap));
    for (size_t i = 0; i < img.pixels.size(); i += 4)
        img.pixels[i] = 24, img.pixels[i + 1] = 24, img.pixels[i + 2] = 28, img.pixels[i + 3] = 255;
    drawText(img, gap, 10, shown.empty() ? title + " (no layer has a spatial output)" : title, {230, 230, 235});
    for (size_t k = 0; k < shown.size(); ++k) {
        const LayerMap& l = *shown[k];
        HeatmapSource src;
        src.shape = l.shape;
        src.attribution = l.relevance;
        src.signedMap = true;
        const Map2D m = reduceMap(src);
        const int x0 = gap + int(k % size_t(columns)) * (tile + gap), y0 = 34 + int(k / size_t(columns)) * (tile + caption + gap);
        const int f = std::max(1, tile / std::max(m.height, m.width));
        const int ox = x0 + (tile - m.width * f) / 2, oy = y0 + (tile - m.height * f) / 2;
        for (int y = 0; y < m.height * f; ++y)
            for (int x = 0; x < m.width * f; ++x) {
                const Rgb8 c = heatColour(m.values[size_t((y / f) * m.width + x / f)], m, true);
                std::uint8_t* d = img.at(ox + x, oy + y);
                d[0] = c.r, d[1] = c.g, d[2] = c.b, d[3] = 255;
            }
        std::string name = l.name;
        while (name.size() > 3 && textWidth(name) > tile) name = name.substr(0, name.size() - 4) + "..";
        drawText(img, x0, y0 + tile + 3, name, {230, 230, 235});
        char sum[48];
        std::snprintf(sum, sizeof sum, "sum %.3g", l.sum);
        drawText(img, x0, y0 + tile + 17, sum, {160, 160, 170});
    }
    return img;
}

} // namespace ts::explain
