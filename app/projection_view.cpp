// The projection point cloud: scene, picking, sample pictures and the headless overlay.
#include "app/projection_view.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/colormap.hpp"
#include "engine/core/text_raster.hpp"

namespace ts::app {

namespace {

int64_t sampleSize(const explain::ProjectionCloud& cloud) {
    int64_t n = 1;
    for (int64_t d : cloud.sampleShape)
        n *= d;
    return n;
}

std::string className(const explain::ProjectionCloud& cloud, int64_t c) {
    if (c < 0) return "none";
    return size_t(c) < cloud.classNames.size() ? cloud.classNames[size_t(c)] : std::to_string(c);
}

void fill(ImageRgba8& img, int x0, int y0, int w, int h, Rgb8 c, float alpha = 1.0f) {
    for (int y = std::max(0, y0); y < std::min(img.height, y0 + h); ++y)
        for (int x = std::max(0, x0); x < std::min(img.width, x0 + w); ++x) {
            std::uint8_t* p = img.at(x, y);
            p[0] = std::uint8_t(p[0] + (c.r - p[0]) * alpha);
            p[1] = std::uint8_t(p[1] + (c.g - p[1]) * alpha);
            p[2] = std::uint8_t(p[2] + (c.b - p[2]) * alpha);
            p[3] = 255;
        }
}

} // namespace

CloudScene buildCloudScene(const explain::ProjectionCloud& cloud, std::optional<size_t> selected) {
    CloudScene sc;
    const int64_t n = cloud.points.rows;
    float extent = 0.0f;
    glm::vec3 centre(0.0f);
    for (int64_t i = 0; i < n; ++i)
        centre += glm::vec3(cloud.points.at(i, 0), cloud.points.at(i, 1), cloud.points.at(i, 2));
    if (n > 0) centre /= float(n);
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < 3; ++c)
            extent = std::max(extent, std::fabs(cloud.points.at(i, c) - centre[c]));
    const float scale = extent > 0 && std::isfinite(extent) ? 1.0f / extent : 1.0f;
    // Spheres shrink as the cloud fills: 2.5 % of its half-size for 100 points, 0.6 % from about 1,700 on.
    sc.radius = std::clamp(0.25f / std::sqrt(float(std::max<int64_t>(n, 1))), 0.006f, 0.04f);
    sc.positions.reserve(size_t(n));
    sc.instances.reserve(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
        // x: the first axis, y (up): the second, as in the 2D scatter; z: the third.
        const glm::vec3 p = (glm::vec3(cloud.points.at(i, 0), cloud.points.at(i, 1), cloud.points.at(i, 2)) - centre) * scale;
        sc.positions.push_back(p);
        render::NeuronInstance inst{};
        inst.position = p;
        const bool isSelected = selected && *selected == size_t(i);
        inst.radius = sc.radius * (isSelected ? 2.5f : 1.0f);
        inst.value = tab10KeyOf(size_t(i) < cloud.labels.size() ? cloud.labels[size_t(i)] : -1);
        inst.flags = isSelected ? TS_NEURON_SELECTED : 0u;
        inst.id = uint32_t(i);
        sc.instances.push_back(inst);
        sc.bounds.extend(p, inst.radius);
    }
    if (sc.bounds.empty()) sc.bounds.extend(glm::vec3(0.0f), 1.0f);
    return sc;
}

std::optional<size_t> pickPoint(const std::vector<glm::vec3>& positions, float radius, const render::Camera& camera,
                                float width, float height, float x, float y, float minPixels) {
    if (width <= 0 || height <= 0) return std::nullopt;
    const glm::mat4 viewProj = camera.projection(width / height) * camera.view();
    const glm::vec3 up = glm::normalize(glm::cross(glm::cross(camera.forward(), glm::vec3(0, 1, 0)), camera.forward()));
    std::optional<size_t> best;
    float bestDepth = 0.0f;
    for (size_t i = 0; i < positions.size(); ++i) {
        const glm::vec4 c = render::projectToPixels(viewProj, positions[i], width, height);
        if (c.w <= 0) continue; // behind the camera
        // The sphere's projected radius: its centre and a point one radius above it on the screen.
        const glm::vec4 e = render::projectToPixels(viewProj, positions[i] + up * radius, width, height);
        const float r = std::max(0.5f * minPixels, glm::length(glm::vec2(e) - glm::vec2(c)));
        if (glm::length(glm::vec2(x, y) - glm::vec2(c)) > r) continue;
        if (!best || c.z < bestDepth) best = i, bestDepth = c.z;
    }
    return best;
}

ImageRgba8 sampleThumbnail(const explain::ProjectionCloud& cloud, size_t i, int size) {
    const auto& s = cloud.sampleShape;
    if (s.size() != 3 || (s[0] != 1 && s[0] != 3) || s[1] < 4 || s[2] < 4 || size <= 0) return {};
    const int64_t per = sampleSize(cloud);
    if (int64_t(i + 1) * per > int64_t(cloud.samples.size())) return {};
    const float* x = cloud.samples.data() + int64_t(i) * per;
    float lo = x[0], hi = x[0];
    for (int64_t k = 0; k < per; ++k)
        lo = std::min(lo, x[k]), hi = std::max(hi, x[k]);
    const float span = hi > lo ? hi - lo : 1.0f;
    const int64_t c = s[0], h = s[1], w = s[2];
    const int outH = size, outW = int(std::lround(double(size) * double(w) / double(h)));
    ImageRgba8 img(outW, outH);
    for (int y = 0; y < outH; ++y)
        for (int xx = 0; xx < outW; ++xx) {
            const int64_t sy = std::min<int64_t>(h - 1, int64_t(y) * h / outH), sx = std::min<int64_t>(w - 1, int64_t(xx) * w / outW);
            std::uint8_t* p = img.at(xx, y);
            for (int k = 0; k < 3; ++k) {
                const float v = x[(c == 3 ? k : 0) * h * w + sy * w + sx];
                p[k] = std::uint8_t(std::lround(255.0f * std::clamp((v - lo) / span, 0.0f, 1.0f)));
            }
            p[3] = 255;
        }
    return img;
}

std::string sampleText(const explain::ProjectionCloud& cloud, size_t i) {
    std::string t = "sample " + std::to_string(i);
    if (i < cloud.labels.size()) t += " | label " + className(cloud, cloud.labels[i]);
    if (i < cloud.predicted.size()) t += " | predicted " + className(cloud, cloud.predicted[i]);
    const int64_t per = sampleSize(cloud);
    if (per <= 4 && int64_t(i + 1) * per <= int64_t(cloud.samples.size())) {
        t += " | (";
        for (int64_t k = 0; k < per; ++k) {
            char b[32];
            std::snprintf(b, sizeof b, "%s%.3g", k ? ", " : "", double(cloud.samples[size_t(int64_t(i) * per + k)]));
            t += b;
        }
        t += ")";
    }
    return t;
}

void drawCloudOverlay(ImageRgba8& img, const explain::ProjectionCloud& cloud, std::optional<size_t> selected,
                      glm::vec2 pixel) {
    const Rgb8 text{230, 230, 235}, dim{160, 160, 170}, panel{24, 24, 30};
    drawText(img, 16, 14, cloud.title, text);
    drawText(img, 16, 32, "axes: x " + cloud.axes[0] + ", y " + cloud.axes[1] + ", z " + cloud.axes[2], dim);
    // Legend: the classes present, in Tab10 colours (as the spheres).
    int64_t classes = 0;
    for (int64_t l : cloud.labels)
        classes = std::max(classes, l + 1);
    classes = std::max<int64_t>(classes, int64_t(cloud.classNames.size()));
    int y = 58;
    for (int64_t c = 0; c < classes && y + 16 < img.height; ++c, y += 18) {
        fill(img, 16, y + 2, 10, 10, sampleColormap(Colormap::Tab10, tab10KeyOf(c)));
        drawText(img, 32, y, className(cloud, c), text);
    }
    if (!selected || *selected >= size_t(cloud.points.rows)) return;
    // A ring around the selected point, and its card in the lower left corner.
    const float r0 = 14.0f, r1 = 17.0f;
    for (int yy = int(pixel.y - r1) - 1; yy <= int(pixel.y + r1) + 1; ++yy)
        for (int xx = int(pixel.x - r1) - 1; xx <= int(pixel.x + r1) + 1; ++xx) {
            if (xx < 0 || yy < 0 || xx >= img.width || yy >= img.height) continue;
            const float d = glm::length(glm::vec2(float(xx) + 0.5f, float(yy) + 0.5f) - pixel);
            if (d >= r0 && d <= r1) fill(img, xx, yy, 1, 1, {255, 255, 255});
        }
    const ImageRgba8 thumb = sampleThumbnail(cloud, *selected, 112);
    const std::string line = sampleText(cloud, *selected);
    const int cardW = std::max(thumb.width, textWidth(line)) + 20, cardH = thumb.height + 40;
    const int cx = 16, cy = img.height - cardH - 16;
    fill(img, cx, cy, cardW, cardH, panel, 0.92f);
    for (int ty = 0; ty < thumb.height; ++ty)
        for (int tx = 0; tx < thumb.width; ++tx) {
            const std::uint8_t* s = thumb.at(tx, ty);
            if (cx + 10 + tx < img.width && cy + 10 + ty < img.height && cy + 10 + ty >= 0)
                fill(img, cx + 10 + tx, cy + 10 + ty, 1, 1, {s[0], s[1], s[2]});
        }
    drawText(img, cx + 10, cy + thumb.height + 18, line, text);
}

} // namespace ts::app
