// Height-field mesh of a loss surface (positions, normals, holes, contours, markers, trajectory) and a
// top-down preview picture of it.
#include "engine/landscape/mesh.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/core/math.hpp"

namespace ts::landscape {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What the mesh shows at one surface point: NaN for holes (NaN loss or not computed).
std::vector<double> shownValues(const Surface& s, const MeshOptions& opt) {
    const auto& src = opt.useAccuracy ? s.acc : s.loss;
    std::vector<double> v(src.size(), kNaN);
    for (size_t k = 0; k < src.size(); ++k)
        if (s.computed.empty() || s.computed[k]) v[k] = src[k];
    return v;
}

double displayOf(double v, double clamp, const MeshOptions& opt) {
    v = std::min(v, clamp); // +inf is a huge loss: clamped, not a hole
    if (opt.logScale) return std::log(std::max(v + opt.logOffset, 1e-300));
    return v;
}

Point3 fromGlm(const glm::vec3& v) {
    return {v.x, v.y, v.z};
}

} // namespace

double clampFor(const std::vector<double>& values, bool logScale) {
    std::vector<double> finite;
    for (double v : values)
        if (std::isfinite(v)) finite.push_back(v);
    if (finite.empty()) return std::numeric_limits<double>::max();
    const double maxV = *std::max_element(finite.begin(), finite.end());
    if (logScale) return maxV;
    std::nth_element(finite.begin(), finite.begin() + static_cast<std::ptrdiff_t>(finite.size() / 2),
                     finite.end());
    const double median = finite[finite.size() / 2];
    return median > 0 ? std::min(maxV, 10.0 * median) : maxV;
}

namespace {
bool validAt(const HeightFieldMesh& m, int64_t ix, int64_t iy) {
    return ix >= 0 && iy >= 0 && ix < m.nx && iy < m.ny && m.vertices[static_cast<size_t>(iy * m.nx + ix)].valid > 0;
}
glm::vec3 posAt(const HeightFieldMesh& m, int64_t ix, int64_t iy) {
    const auto& v = m.vertices[static_cast<size_t>(iy * m.nx + ix)];
    return glm::vec3(v.position[0], v.position[1], v.position[2]);
}

// Normals from central differences over valid neighbours (one-sided at holes and borders).
void computeNormals(HeightFieldMesh& m) {
    for (int64_t iy = 0; iy < m.ny; ++iy)
        for (int64_t ix = 0; ix < m.nx; ++ix) {
            auto& v = m.vertices[static_cast<size_t>(iy * m.nx + ix)];
            glm::vec3 n(0, 1, 0);
            if (v.valid > 0) {
                const int64_t xl = validAt(m, ix - 1, iy) ? ix - 1 : ix, xr = validAt(m, ix + 1, iy) ? ix + 1 : ix;
                const int64_t yl = validAt(m, ix, iy - 1) ? iy - 1 : iy, yr = validAt(m, ix, iy + 1) ? iy + 1 : iy;
                const glm::vec3 tx = xr != xl ? posAt(m, xr, iy) - posAt(m, xl, iy) : glm::vec3(1, 0, 0);
                const glm::vec3 ty = yr != yl ? posAt(m, ix, yr) - posAt(m, ix, yl) : glm::vec3(0, 0, -1);
                const glm::vec3 c = glm::cross(tx, ty); // +y for a flat surface (tx = +x, ty = -z)
                if (glm::length(c) > 0) n = glm::normalize(c);
            }
            v.normal[0] = n.x;
            v.normal[1] = n.y;
            v.normal[2] = n.z;
        }
}

// Contours by marching squares on the displayed values `disp`, levels evenly spaced inside (dmin, dmax),
// drawn `lift` above the surface.
void addContours(HeightFieldMesh& m, const std::vector<double>& disp, double dmin, double dmax, const MeshOptions& opt,
                 float lift) {
    if (!(dmax > dmin)) return;
    const double range = dmax - dmin;
    const auto valid = [&](int64_t ix, int64_t iy) { return validAt(m, ix, iy); };
    const auto pos = [&](int64_t ix, int64_t iy) { return posAt(m, ix, iy); };
    // Levels as displayed values: evenly spaced, or at fixed losses (the reference's arange levels).
    std::vector<double> displayed;
    if (opt.contourStep > 0) {
        const auto shown = [&](double loss) { return opt.logScale ? std::log(loss + opt.logOffset) : loss; };
        double step = opt.contourStep;
        for (;;) {
            displayed.clear();
            for (int64_t k = 0; k < 100000; ++k) {
                const double loss = opt.contourStart + double(k) * step;
                if (opt.logScale && loss + opt.logOffset <= 0) continue;
                const double d = shown(loss);
                if (d >= dmax) break;
                if (d > dmin) displayed.push_back(d);
            }
            if (displayed.size() <= 40) break;
            step *= 2;
        }
        // A surface that varies by less than a few steps (an untrained model) gets even levels instead.
        if (displayed.size() < 4) displayed.clear();
    }
    if (displayed.empty() && opt.contourLevels > 0) {
        for (int j = 1; j <= opt.contourLevels; ++j)
            displayed.push_back(dmin + static_cast<double>(j) / (opt.contourLevels + 1) * range);
    }
    for (const double level : displayed) {
        const double t = (level - dmin) / range;
        m.contourLosses.push_back(opt.logScale ? std::exp(level) - opt.logOffset : level);
        m.contourHeights.push_back(static_cast<float>(t));
        for (int64_t iy = 0; iy + 1 < m.ny; ++iy)
            for (int64_t ix = 0; ix + 1 < m.nx; ++ix) {
                const int64_t cx[4] = {ix, ix + 1, ix + 1, ix}, cy[4] = {iy, iy, iy + 1, iy + 1};
                double c[4];
                bool ok = true;
                for (int q = 0; q < 4; ++q) {
                    ok = ok && valid(cx[q], cy[q]);
                    c[q] = ok ? disp[static_cast<size_t>(cy[q] * m.nx + cx[q])] : 0.0;
                }
                if (!ok) continue;
                // Crossing points on the 4 edges (corner q to q+1).
                glm::vec3 p[4];
                bool cross[4];
                for (int e = 0; e < 4; ++e) {
                    const int a = e, b = (e + 1) % 4;
                    cross[e] = (c[a] < level) != (c[b] < level);
                    if (!cross[e]) continue;
                    const float u = static_cast<float>((level - c[a]) / (c[b] - c[a]));
                    p[e] = glm::mix(pos(cx[a], cy[a]), pos(cx[b], cy[b]), u);
                    p[e].y = static_cast<float>(t * m.heightScale) + lift;
                }
                const auto seg = [&](int e0, int e1) {
                    m.contourLines.push_back(fromGlm(p[e0]));
                    m.contourLines.push_back(fromGlm(p[e1]));
                    m.contourValues.push_back(static_cast<float>(t));
                };
                const int count = cross[0] + cross[1] + cross[2] + cross[3];
                if (count == 2) {
                    int e[2], n = 0;
                    for (int q = 0; q < 4; ++q)
                        if (cross[q]) e[n++] = q;
                    seg(e[0], e[1]);
                } else if (count == 4) {
                    // Saddle: the cell centre decides which corners are joined.
                    const bool centreAbove = (c[0] + c[1] + c[2] + c[3]) / 4 >= level;
                    if (centreAbove == (c[0] >= level)) { // corners 1 and 3 are cut off
                        seg(0, 1);
                        seg(2, 3);
                    } else { // corners 0 and 2 are cut off
                        seg(3, 0);
                        seg(1, 2);
                    }
                }
            }
    }
}
} // namespace

HeightFieldMesh buildHeightField(const Surface& s, const MeshOptions& opt) {
    HeightFieldMesh m;
    const auto shown = shownValues(s, opt);
    m.clampValue = opt.clampMax > 0 ? opt.clampMax : clampFor(shown, opt.logScale);

    const bool twoD = s.is2d();
    const int64_t snx = s.nx();
    m.nx = snx;
    m.ny = twoD ? s.ny() : 2; // 1D: a thin ribbon of two identical rows
    const double x0 = s.x.front(), x1 = s.x.back();
    const double xspan = std::max(x1 - x0, 1e-12);
    const double y0 = twoD ? s.y.front() : -0.05 * xspan, y1 = twoD ? s.y.back() : 0.05 * xspan;
    const double yspan = std::max(y1 - y0, 1e-12);
    m.heightScale = opt.heightScale > 0 ? opt.heightScale : static_cast<float>(0.6 * std::max(xspan, yspan));

    // Displayed values and their range.
    std::vector<double> disp(static_cast<size_t>(m.nx * m.ny), kNaN);
    double dmin = std::numeric_limits<double>::infinity(), dmax = -dmin;
    for (int64_t iy = 0; iy < m.ny; ++iy)
        for (int64_t ix = 0; ix < m.nx; ++ix) {
            const double v = shown[s.index(ix, twoD ? iy : 0)];
            if (std::isnan(v)) continue;
            const double d = displayOf(v, m.clampValue, opt);
            disp[static_cast<size_t>(iy * m.nx + ix)] = d;
            dmin = std::min(dmin, d);
            dmax = std::max(dmax, d);
        }
    if (!(dmin <= dmax)) dmin = dmax = 0; // everything is a hole
    m.displayMin = dmin;
    m.displayMax = dmax;
    const double range = dmax > dmin ? dmax - dmin : 1.0;

    const auto coordY = [&](int64_t iy) { return twoD ? s.y[static_cast<size_t>(iy)] : (iy == 0 ? y0 : y1); };
    m.vertices.resize(disp.size());
    for (int64_t iy = 0; iy < m.ny; ++iy)
        for (int64_t ix = 0; ix < m.nx; ++ix) {
            const size_t k = static_cast<size_t>(iy * m.nx + ix);
            auto& v = m.vertices[k];
            const bool ok = !std::isnan(disp[k]);
            const double t = ok ? (disp[k] - dmin) / range : 0.0;
            v.position[0] = static_cast<float>(s.x[static_cast<size_t>(ix)]);
            v.position[1] = static_cast<float>(t * m.heightScale);
            v.position[2] = static_cast<float>(-coordY(iy));
            v.value = static_cast<float>(t);
            v.valid = ok ? 1.0f : 0.0f;
        }
    computeNormals(m);
    const auto valid = [&](int64_t ix, int64_t iy) { return validAt(m, ix, iy); };
    // Triangles: cells whose four corners are valid.
    for (int64_t iy = 0; iy + 1 < m.ny; ++iy)
        for (int64_t ix = 0; ix + 1 < m.nx; ++ix) {
            if (!valid(ix, iy) || !valid(ix + 1, iy) || !valid(ix, iy + 1) || !valid(ix + 1, iy + 1))
                continue;
            const auto i00 = static_cast<uint32_t>(iy * m.nx + ix), i10 = i00 + 1;
            const auto i01 = static_cast<uint32_t>((iy + 1) * m.nx + ix), i11 = i01 + 1;
            m.indices.insert(m.indices.end(), {i00, i10, i11, i00, i11, i01});
        }
    const float lift = 0.004f * m.heightScale;
    addContours(m, disp, dmin, dmax, opt, lift);
    // Minimum marker (over the shown values; NaN never wins).
    double best = std::numeric_limits<double>::infinity();
    for (int64_t ix = 0; ix < snx; ++ix)
        for (int64_t iy = 0; iy < (twoD ? s.ny() : 1); ++iy) {
            const double v = shown[s.index(ix, iy)];
            if (std::isnan(v) || !(v < best)) continue;
            best = v;
            m.hasMinimum = true;
            m.minimumLoss = v;
            m.minimumA = s.x[static_cast<size_t>(ix)];
            m.minimumB = twoD ? s.y[static_cast<size_t>(iy)] : 0.0;
            const auto& vert = m.vertices[static_cast<size_t>((twoD ? iy : 0) * m.nx + ix)];
            m.minimumPosition = {vert.position[0], vert.position[1] + lift, twoD ? vert.position[2] : 0.0f};
        }
    Point3 o;
    if (surfacePoint(m, s, 0.0, 0.0, o)) {
        m.hasOrigin = true;
        m.originPosition = {o[0], o[1] + lift, o[2]};
    }
    // Bounds of the valid vertices (or of the grid when all are holes).
    Aabb box;
    for (const auto& v : m.vertices)
        if (v.valid > 0) box.extend({v.position[0], v.position[1], v.position[2]});
    if (box.empty()) {
        box.extend({static_cast<float>(x0), 0.0f, static_cast<float>(-y1)});
        box.extend({static_cast<float>(x1), 0.0f, static_cast<float>(-y0)});
    }
    m.boundsLo = fromGlm(box.lo);
    m.boundsHi = fromGlm(box.hi);
    return m;
}

bool surfacePoint(const HeightFieldMesh& m, const Surface& s, double a, double b, Point3& out) {
    if (m.vertices.empty()) return false;
    const double x0 = s.x.front(), x1 = s.x.back();
    const double fx = m.nx > 1 ? (a - x0) / (x1 - x0) * static_cast<double>(m.nx - 1) : 0.0;
    double fy = 0.0;
    if (s.is2d() && m.ny > 1) {
        const double y0 = s.y.front(), y1 = s.y.back();
        fy = (b - y0) / (y1 - y0) * static_cast<double>(m.ny - 1);
    } else if (!s.is2d()) {
        fy = 0.5; // the middle of the 1D ribbon
    }
    const double eps = 1e-9;
    if (fx < -eps || fy < -eps || fx > static_cast<double>(m.nx - 1) + eps ||
        fy > static_cast<double>(m.ny - 1) + eps)
        return false;
    const int64_t ix =
        std::clamp<int64_t>(static_cast<int64_t>(std::floor(fx)), 0, std::max<int64_t>(m.nx - 2, 0));
    const int64_t iy =
        std::clamp<int64_t>(static_cast<int64_t>(std::floor(fy)), 0, std::max<int64_t>(m.ny - 2, 0));
    const int64_t jx = std::min(ix + 1, m.nx - 1), jy = std::min(iy + 1, m.ny - 1);
    const float tx = static_cast<float>(std::clamp(fx - static_cast<double>(ix), 0.0, 1.0));
    const float ty = static_cast<float>(std::clamp(fy - static_cast<double>(iy), 0.0, 1.0));
    const auto& v00 = m.vertices[static_cast<size_t>(iy * m.nx + ix)];
    const auto& v10 = m.vertices[static_cast<size_t>(iy * m.nx + jx)];
    const auto& v01 = m.vertices[static_cast<size_t>(jy * m.nx + ix)];
    const auto& v11 = m.vertices[static_cast<size_t>(jy * m.nx + jx)];
    if (v00.valid <= 0 || v10.valid <= 0 || v01.valid <= 0 || v11.valid <= 0) return false;
    const float h = (1 - ty) * ((1 - tx) * v00.position[1] + tx * v10.position[1]) +
                    ty * ((1 - tx) * v01.position[1] + tx * v11.position[1]);
    const double zb = s.is2d() ? b : 0.0;
    out = {static_cast<float>(a), h, static_cast<float>(-zb)};
    return true;
}

void addTrajectory(HeightFieldMesh& m, const Surface& s, const std::vector<std::array<double, 2>>& path,
                   const MeshOptions& /*options*/) {
    const float lift = 0.01f * m.heightScale;
    bool havePrev = false;
    Point3 prev{};
    for (const auto& p : path) {
        Point3 q;
        if (!surfacePoint(m, s, p[0], p[1], q)) {
            havePrev = false; // a break: outside the grid or over a hole
            continue;
        }
        q[1] += lift;
        if (havePrev) {
            m.trajectoryLines.push_back(prev);
            m.trajectoryLines.push_back(q);
        }
        prev = q;
        havePrev = true;
    }
}

ImageRgba8 renderTopDown(const HeightFieldMesh& m, int width, int height, Colormap map) {
    ImageRgba8 img(width, height);
    if (m.vertices.empty() || width <= 0 || height <= 0) return img;
    const float ax = m.vertices.front().position[0],
                bx = m.vertices[static_cast<size_t>(m.nx - 1)].position[0];
    const float az = m.vertices.front().position[2], bz = m.vertices.back().position[2]; // z = -b
    const auto put = [&](int x, int y, uint8_t r, uint8_t g, uint8_t b) {
        if (x < 0 || y < 0 || x >= width || y >= height) return;
        auto* px = img.at(x, y);
        px[0] = r, px[1] = g, px[2] = b, px[3] = 255;
    };
    // World (x, z) -> pixel: x to the right, -z (= b) upwards.
    const auto toPixel = [&](float x, float z, float& px, float& py) {
        px = (x - ax) / std::max(bx - ax, 1e-12f) * static_cast<float>(width - 1);
        py = static_cast<float>(height - 1) - (z - az) / (bz - az) * static_cast<float>(height - 1);
    };
    const std::vector<float>& levels = m.contourHeights; // ascending
    std::vector<float> t(static_cast<size_t>(width) * height, -1.0f);
    for (int py = 0; py < height; ++py)
        for (int px = 0; px < width; ++px) {
            const double fx = (px + 0.5) / width * static_cast<double>(m.nx - 1);
            const double fy = (1.0 - (py + 0.5) / height) * static_cast<double>(m.ny - 1);
            const int64_t ix = std::min<int64_t>(static_cast<int64_t>(fx), std::max<int64_t>(m.nx - 2, 0));
            const int64_t iy = std::min<int64_t>(static_cast<int64_t>(fy), std::max<int64_t>(m.ny - 2, 0));
            const int64_t jx = std::min(ix + 1, m.nx - 1), jy = std::min(iy + 1, m.ny - 1);
            const auto& v00 = m.vertices[static_cast<size_t>(iy * m.nx + ix)];
            const auto& v10 = m.vertices[static_cast<size_t>(iy * m.nx + jx)];
            const auto& v01 = m.vertices[static_cast<size_t>(jy * m.nx + ix)];
            const auto& v11 = m.vertices[static_cast<size_t>(jy * m.nx + jx)];
            if (v00.valid <= 0 || v10.valid <= 0 || v01.valid <= 0 || v11.valid <= 0) {
                put(px, py, 50, 50, 50);
                continue;
            }
            const float ux = static_cast<float>(fx - ix), uy = static_cast<float>(fy - iy);
            const float v = (1 - uy) * ((1 - ux) * v00.value + ux * v10.value) +
                            uy * ((1 - ux) * v01.value + ux * v11.value);
            t[static_cast<size_t>(py) * width + px] = v;
            const Rgb8 c = sampleColormap(map, v);
            put(px, py, c.r, c.g, c.b);
        }
    // Contour lines where the level band changes between neighbouring pixels.
    if (!levels.empty())
        for (int py = 0; py + 1 < height; ++py)
            for (int px = 0; px + 1 < width; ++px) {
                const float a = t[static_cast<size_t>(py) * width + px];
                const float r = t[static_cast<size_t>(py) * width + px + 1];
                const float d = t[static_cast<size_t>(py + 1) * width + px];
                if (a < 0) continue;
                const auto band = [&](float v) { return std::upper_bound(levels.begin(), levels.end(), v) - levels.begin(); };
                if ((r >= 0 && band(r) != band(a)) || (d >= 0 && band(d) != band(a))) put(px, py, 0, 0, 0);
            }
    const auto line = [&](const Point3& p, const Point3& q, uint8_t r, uint8_t g, uint8_t b) {
        float x0, y0, x1, y1;
        toPixel(p[0], p[2], x0, y0);
        toPixel(q[0], q[2], x1, y1);
        const int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
        for (int i = 0; i <= steps; ++i) {
            const float u = static_cast<float>(i) / steps;
            const int x = static_cast<int>(std::lround(x0 + u * (x1 - x0))),
                      y = static_cast<int>(std::lround(y0 + u * (y1 - y0)));
            put(x, y, r, g, b);
            put(x + 1, y, r, g, b);
            put(x, y + 1, r, g, b);
        }
    };
    for (size_t i = 0; i + 1 < m.trajectoryLines.size(); i += 2)
        line(m.trajectoryLines[i], m.trajectoryLines[i + 1], 255, 255, 255);
    const auto disc = [&](const Point3& p, int radius, bool ring, uint8_t r, uint8_t g, uint8_t b) {
        float cx, cy;
        toPixel(p[0], p[2], cx, cy);
        for (int dy = -radius; dy <= radius; ++dy)
            for (int dx = -radius; dx <= radius; ++dx) {
                const int d2 = dx * dx + dy * dy;
                if (d2 > radius * radius || (ring && d2 < (radius - 1) * (radius - 1))) continue;
                put(static_cast<int>(std::lround(cx)) + dx, static_cast<int>(std::lround(cy)) + dy, r, g, b);
            }
    };
    const int markerRadius = std::max(3, std::min(width, height) / 80);
    if (m.hasOrigin) disc(m.originPosition, markerRadius + 2, true, 255, 255, 255);
    if (m.hasMinimum) disc(m.minimumPosition, markerRadius, false, 230, 30, 30);
    return img;
}

} // namespace ts::landscape
