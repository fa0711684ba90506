// The annotated surface figure for --png: contour map (2D) or loss curve (1D) with axes, ticks, colour bar
// and the minimum's value.
#include "engine/landscape/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "engine/core/text_raster.hpp"

namespace ts::landscape {

namespace plot_detail {

constexpr Rgb8 kInk{20, 20, 28}, kGrey{130, 130, 140}, kPaper{255, 255, 255}, kRed{214, 39, 40},
    kBlue{31, 84, 180};

std::string formatValue(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

void textRightAligned(ImageRgba8& img, int right, int y, const std::string& s, Rgb8 c) {
    drawText(img, right - textWidth(s), y, s, c);
}

void textCentred(ImageRgba8& img, int centre, int y, const std::string& s, Rgb8 c) {
    drawText(img, centre - textWidth(s) / 2, y, s, c);
}

void frame(ImageRgba8& img, int x, int y, int w, int h) {
    fillRect(img, x - 1, y - 1, w + 2, 1, kInk);
    fillRect(img, x - 1, y + h, w + 2, 1, kInk);
    fillRect(img, x - 1, y - 1, 1, h + 2, kInk);
    fillRect(img, x + w, y - 1, 1, h + 2, kInk);
}

// Ticks and labels along the bottom (x) and the left (y) of a plot area; `toX`/`toY` map values to pixels.
template <class ToX, class ToY>
void axes(ImageRgba8& img, int x0, int y0, int h, double xlo, double xhi, double ylo, double yhi, ToX toX,
          ToY toY) {
    for (double v : niceTicks(xlo, xhi, 6)) {
        const int px = static_cast<int>(std::lround(toX(v)));
        fillRect(img, px, y0 + h, 1, 5, kInk);
        textCentred(img, px, y0 + h + 8, tickLabel(v), kInk);
    }
    for (double v : niceTicks(ylo, yhi, 6)) {
        const int py = static_cast<int>(std::lround(toY(v)));
        fillRect(img, x0 - 5, py, 5, 1, kInk);
        textRightAligned(img, x0 - 8, py - kTextHeight / 2, tickLabel(v), kInk);
    }
}

ImageRgba8 plot2d(const Surface& s, const HeightFieldMesh& m, const PlotLabels& labels) {
    const int S = 512, x0 = 96, y0 = 64, W = 820, H = 680;
    ImageRgba8 img(W, H);
    fillRect(img, 0, 0, W, H, kPaper);
    // The map: the same colours, contours, holes, path and markers as the top-down picture.
    const ImageRgba8 map = renderTopDown(m, S, S);
    for (int y = 0; y < S; ++y)
        std::copy(map.at(0, y), map.at(0, y) + 4 * S, img.at(x0, y0 + y));
    frame(img, x0, y0, S, S);
    const double xlo = s.x.front(), xhi = s.x.back(), ylo = s.y.front(), yhi = s.y.back();
    const auto toX = [&](double v) { return x0 + (v - xlo) / std::max(xhi - xlo, 1e-300) * (S - 1); };
    const auto toY = [&](double v) { return y0 + (S - 1) - (v - ylo) / std::max(yhi - ylo, 1e-300) * (S - 1); };
    axes(img, x0, y0, S, xlo, xhi, ylo, yhi, toX, toY);

    drawText(img, 16, 10, labels.title, kInk);
    std::string sub = "minimum " + formatValue(m.minimumLoss) + " at (" + tickLabel(m.minimumA) + ", " +
                      tickLabel(m.minimumB) + ")";
    double largest = 0;
    for (size_t i = 0; i < s.loss.size(); ++i)
        if (s.computed[i] && std::isfinite(s.loss[i])) largest = std::max(largest, s.loss[i]);
    if (m.clampValue > 0 && largest > m.clampValue)
        sub += "; losses above " + formatValue(m.clampValue) + " (up to " + formatValue(largest) + ") drawn at it";
    drawText(img, 16, 28, sub, kGrey);
    drawText(img, x0, y0 - 18, "y: " + labels.yName, kInk);
    textCentred(img, x0 + S / 2, y0 + S + 28, "x: " + labels.xName, kInk);

    // Colour bar: the displayed range bottom to top, labelled at the contour levels (thinned to fit).
    const int bx = x0 + S + 36, bw = 18;
    for (int y = 0; y < S; ++y) {
        const float t = 1.0f - static_cast<float>(y) / static_cast<float>(S - 1);
        fillRect(img, bx, y0 + y, bw, 1, sampleColormap(Colormap::Viridis, t));
    }
    frame(img, bx, y0, bw, S);
    drawText(img, bx - 4, y0 - 18, "loss", kInk);
    const size_t levels = m.contourHeights.size();
    const size_t every = std::max<size_t>(1, (levels + 11) / 12);
    for (size_t i = 0; i < levels; i += every) {
        const int py = y0 + static_cast<int>(std::lround((1.0f - m.contourHeights[i]) * (S - 1)));
        fillRect(img, bx + bw, py, 5, 1, kInk);
        fillRect(img, bx, py, bw, 1, kInk);
        drawText(img, bx + bw + 8, py - kTextHeight / 2, formatValue(m.contourLosses[i]), kInk);
    }
    // The ends of the range, where no level label sits close to them.
    const auto clear = [&](int py) {
        for (size_t i = 0; i < levels; i += every)
            if (std::abs(y0 + (1.0f - m.contourHeights[i]) * (S - 1) - py) < kTextHeight + 2) return false;
        return true;
    };
    const double top = m.clampValue > 0 ? m.clampValue : m.displayMax;
    if (clear(y0)) drawText(img, bx + bw + 8, y0 - 4, formatValue(top), kGrey);
    if (clear(y0 + S - 1)) drawText(img, bx + bw + 8, y0 + S - 8, formatValue(m.minimumLoss), kGrey);

    // Legend under the axis name.
    int lx = x0, ly = y0 + S + 50;
    fillRect(img, lx, ly + 2, 9, 9, kRed);
    drawText(img, lx + 14, ly, "minimum", kInk);
    lx += 14 + textWidth("minimum") + 24;
    if (m.hasOrigin) {
        fillRect(img, lx, ly, 13, 13, {60, 60, 70});
        fillRect(img, lx + 3, ly + 3, 7, 7, {235, 235, 235});
        fillRect(img, lx + 5, ly + 5, 3, 3, {60, 60, 70});
        drawText(img, lx + 18, ly, "the model's weights (0, 0)", kInk);
        lx += 18 + textWidth("the model's weights (0, 0)") + 24;
    }
    if (!m.trajectoryLines.empty()) {
        fillRect(img, lx, ly, 22, 13, {60, 60, 70});
        fillRect(img, lx + 3, ly + 6, 16, 2, {245, 245, 245});
        drawText(img, lx + 28, ly, "training path", kInk);
    }
    return img;
}

ImageRgba8 plot1d(const Surface& s, const HeightFieldMesh& m, const PlotLabels& labels) {
    const int x0 = 96, y0 = 64, w = 640, h = 280, W = 820, H = labels.curve.empty() ? 420 : 440;
    ImageRgba8 img(W, H);
    fillRect(img, 0, 0, W, H, kPaper);
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (size_t i = 0; i < s.loss.size(); ++i)
        if (s.computed[i] && std::isfinite(s.loss[i])) lo = std::min(lo, s.loss[i]), hi = std::max(hi, s.loss[i]);
    for (const auto& c : labels.curve)
        if (std::isfinite(c[1])) lo = std::min(lo, c[1]), hi = std::max(hi, c[1]);
    if (!(hi >= lo)) lo = 0, hi = 1;
    const double pad = std::max((hi - lo) * 0.06, 1e-12);
    lo -= pad;
    hi += pad;
    const double xlo = s.x.front(), xhi = s.x.back();
    const auto toX = [&](double v) { return x0 + (v - xlo) / std::max(xhi - xlo, 1e-300) * (w - 1); };
    const auto toY = [&](double v) { return y0 + (h - 1) - (std::min(v, hi) - lo) / (hi - lo) * (h - 1); };
    frame(img, x0, y0, w, h);
    axes(img, x0, y0, h, xlo, xhi, lo, hi, toX, toY);
    if (const auto b = linearBarrier(s)) { // the straight line between the ends, and the barrier above it
        drawLine(img, static_cast<float>(toX(0)), static_cast<float>(toY(b->start)), static_cast<float>(toX(1)),
                 static_cast<float>(toY(b->end)), kGrey, 1);
        if (b->height > 0) {
            const float bxp = static_cast<float>(toX(b->at));
            drawLine(img, bxp, static_cast<float>(toY(b->loss)), bxp,
                     static_cast<float>(toY((1 - b->at) * b->start + b->at * b->end)), kRed, 2);
            drawText(img, static_cast<int>(bxp) + 6, static_cast<int>(toY(b->loss)) - 16,
                     "barrier " + formatValue(b->height), kRed);
        }
    }
    for (size_t i = 0; i + 1 < s.loss.size(); ++i) {
        if (!s.computed[i] || !s.computed[i + 1] || !std::isfinite(s.loss[i]) || !std::isfinite(s.loss[i + 1])) continue;
        drawLine(img, static_cast<float>(toX(s.x[i])), static_cast<float>(toY(s.loss[i])), static_cast<float>(toX(s.x[i + 1])),
                 static_cast<float>(toY(s.loss[i + 1])), kBlue, 2);
    }
    // The trained Bezier curve between the same models, and its own barrier over its chord.
    constexpr Rgb8 kOrange{230, 120, 20};
    for (size_t i = 0; i + 1 < labels.curve.size(); ++i)
        drawLine(img, static_cast<float>(toX(labels.curve[i][0])), static_cast<float>(toY(labels.curve[i][1])),
                 static_cast<float>(toX(labels.curve[i + 1][0])), static_cast<float>(toY(labels.curve[i + 1][1])), kOrange, 2);
    if (!labels.curve.empty()) {
        const auto& c = labels.curve;
        double height = 0, at = 0, atLoss = c.front()[1];
        for (const auto& pt : c) {
            const double excess = pt[1] - ((1 - pt[0]) * c.front()[1] + pt[0] * c.back()[1]);
            if (excess > height) height = excess, at = pt[0], atLoss = pt[1];
        }
        drawText(img, static_cast<int>(toX(at)) + 6, static_cast<int>(toY(atLoss)) - 18,
                 "Bezier curve: barrier " + formatValue(height), kOrange);
        const int ly = y0 + h + 50;
        fillRect(img, x0, ly + 5, 22, 3, kBlue);
        drawText(img, x0 + 28, ly, "straight line", kInk);
        fillRect(img, x0 + 140, ly + 5, 22, 3, kOrange);
        drawText(img, x0 + 168, ly, "trained quadratic Bezier curve (x = its t)", kInk);
    }
    if (m.hasMinimum) fillRect(img, static_cast<int>(toX(m.minimumA)) - 4, static_cast<int>(toY(m.minimumLoss)) - 4, 9, 9, kRed);
    drawText(img, 16, 10, labels.title, kInk);
    drawText(img, 16, 28, "minimum " + formatValue(m.minimumLoss) + " at " + tickLabel(m.minimumA), kGrey);
    drawText(img, x0, y0 - 18, "loss", kInk);
    textCentred(img, x0 + w / 2, y0 + h + 28, "x: " + labels.xName, kInk);
    return img;
}

} // namespace plot_detail

std::vector<double> niceTicks(double lo, double hi, int count) {
    std::vector<double> out;
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || count < 1) return out;
    const double raw = (hi - lo) / count;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (double f : {1.0, 2.0, 5.0, 10.0})
        if (f * mag >= raw) {
            step = f * mag;
            break;
        }
    const double eps = step * 1e-9;
    for (double v = std::ceil((lo - eps) / step) * step; v <= hi + eps; v += step)
        out.push_back(std::abs(v) < eps ? 0.0 : v);
    return out;
}

std::string tickLabel(double v) {
    if (std::abs(v) < 1e-12) return "0"; // a grid coordinate that is zero up to rounding
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::vector<double> spectralDensity(const std::vector<double>& nodes, const std::vector<double>& weights,
                                    int points, std::vector<double>& grid) {
    grid.clear();
    if (nodes.empty() || nodes.size() != weights.size() || points < 2) return {};
    const auto [mn, mx] = std::minmax_element(nodes.begin(), nodes.end());
    const double spread = std::max(*mx - *mn, 1e-12), lo = *mn - 0.01 * spread - 1e-3, hi = *mx + 0.01 * spread + 1e-3;
    const double variance = 1e-5 * std::max(1.0, hi - lo);
    // The grid must resolve the Gaussians (a standard deviation spans a few points), else the density would
    // miss narrow peaks between grid values: the grid is refined up to that, within 200,000 points.
    const double sd = std::sqrt(variance);
    const int n = static_cast<int>(std::clamp((hi - lo) / (sd / 3.0), double(points), 200000.0));
    grid.resize(static_cast<size_t>(n));
    std::vector<double> density(static_cast<size_t>(n), 0.0);
    const double step = (hi - lo) / (n - 1), norm = 1.0 / std::sqrt(2 * M_PI * variance);
    for (int i = 0; i < n; ++i) grid[static_cast<size_t>(i)] = lo + step * i;
    for (size_t k = 0; k < nodes.size(); ++k) {
        // Only the points within 8 standard deviations: the rest are below 1e-14 of the peak.
        const int a = std::max(0, static_cast<int>(std::floor((nodes[k] - 8 * sd - lo) / step)));
        const int b = std::min(n - 1, static_cast<int>(std::ceil((nodes[k] + 8 * sd - lo) / step)));
        for (int i = a; i <= b; ++i) {
            const double d = grid[static_cast<size_t>(i)] - nodes[k];
            density[static_cast<size_t>(i)] += weights[k] * norm * std::exp(-d * d / (2 * variance));
        }
    }
    return density;
}

ImageRgba8 renderSpectrum(const std::vector<double>& nodes, const std::vector<double>& weights,
                          const SpectrumLabels& labels) {
    using namespace plot_detail;
    const int x0 = 96, y0 = 64, w = 640, h = 280, W = 820, H = 420;
    ImageRgba8 img(W, H);
    fillRect(img, 0, 0, W, H, kPaper);
    std::vector<double> grid;
    const std::vector<double> density = spectralDensity(nodes, weights, 4000, grid);
    drawText(img, 16, 10, labels.title, kInk);
    if (density.empty()) {
        drawText(img, x0, y0, "no spectral density (give --hessian-esd N)", kGrey);
        return img;
    }
    const double xlo = grid.front(), xhi = grid.back();
    const double peak = *std::max_element(density.begin(), density.end());
    const double dlo = -10, dhi = std::ceil(std::log10(std::max(peak, 1e-9)));
    const auto toX = [&](double v) { return x0 + (v - xlo) / std::max(xhi - xlo, 1e-300) * (w - 1); };
    const auto toY = [&](double logv) { return y0 + (h - 1) - (std::clamp(logv, dlo, dhi) - dlo) / (dhi - dlo) * (h - 1); };
    frame(img, x0, y0, w, h);
    for (double v : niceTicks(xlo, xhi, 6)) {
        const int px = static_cast<int>(std::lround(toX(v)));
        fillRect(img, px, y0 + h, 1, 5, kInk);
        textCentred(img, px, y0 + h + 8, tickLabel(v), kInk);
    }
    for (double e = dlo; e <= dhi; e += 2) { // decades, every other one labelled
        const int py = static_cast<int>(std::lround(toY(e)));
        fillRect(img, x0 - 5, py, 5, 1, kInk);
        textRightAligned(img, x0 - 8, py - kTextHeight / 2, "1e" + std::to_string(static_cast<int>(e)), kInk);
    }
    // The curve: per pixel column the largest density in it, so no peak narrower than a pixel is lost.
    std::vector<double> column(static_cast<size_t>(w), 0.0);
    for (size_t i = 0; i < grid.size(); ++i) {
        const int c = std::clamp(static_cast<int>(std::lround(toX(grid[i]))) - x0, 0, w - 1);
        column[static_cast<size_t>(c)] = std::max(column[static_cast<size_t>(c)], density[i]);
    }
    const auto logOf = [&](double d) { return std::log10(std::max(d, 1e-300)); };
    // The top eigenvalues: a dotted red line under the curve, and a red triangle at the top of the plot.
    std::vector<int> markers;
    for (double v : labels.topEigenvalues)
        if (v >= xlo && v <= xhi) markers.push_back(static_cast<int>(std::lround(toX(v))));
    constexpr Rgb8 kLightRed{240, 160, 160};
    for (int px : markers)
        for (int y = y0; y < y0 + h; y += 4) fillRect(img, px, y, 1, 2, kLightRed);
    for (int c = 0; c + 1 < w; ++c)
        drawLine(img, static_cast<float>(x0 + c), static_cast<float>(toY(logOf(column[static_cast<size_t>(c)]))),
                 static_cast<float>(x0 + c + 1), static_cast<float>(toY(logOf(column[static_cast<size_t>(c + 1)]))),
                 kBlue, 2);
    for (int px : markers)
        for (int row = 0; row < 8; ++row) fillRect(img, px - (7 - row) / 2, y0 + 1 + row, 1 + 2 * ((7 - row) / 2), 1, kRed);
    std::string sub = std::to_string(nodes.size()) + " Ritz values (stochastic Lanczos quadrature), eigenvalues " +
                      formatValue(*std::min_element(nodes.begin(), nodes.end())) + " .. " +
                      formatValue(*std::max_element(nodes.begin(), nodes.end()));
    if (labels.trace != 0) sub += "; trace " + formatValue(labels.trace);
    drawText(img, 16, 28, sub, kGrey);
    drawText(img, x0, y0 - 18, "density (log scale)", kInk);
    textCentred(img, x0 + w / 2, y0 + h + 28, "eigenvalue of the loss Hessian", kInk);
    if (!labels.topEigenvalues.empty()) {
        const int ly = y0 + h + 50;
        for (int row = 0; row < 8; ++row) fillRect(img, x0 + 4 - (7 - row) / 2, ly + 3 + row, 1 + 2 * ((7 - row) / 2), 1, kRed);
        drawText(img, x0 + 14, ly, "top eigenvalues (Lanczos)", kInk);
    }
    return img;
}

ImageRgba8 renderPlot(const Surface& surface, const HeightFieldMesh& mesh, const PlotLabels& labels) {
    if (surface.x.empty()) return ImageRgba8(1, 1);
    return surface.is2d() ? plot_detail::plot2d(surface, mesh, labels) : plot_detail::plot1d(surface, mesh, labels);
}

} // namespace ts::landscape
