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

ImageRgba8 renderPlot(const Surface& surface, const HeightFieldMesh& mesh, const PlotLabels& labels) {
    if (surface.x.empty()) return ImageRgba8(1, 1);
    return surface.is2d() ? plot_detail::plot2d(surface, mesh, labels) : plot_detail::plot1d(surface, mesh, labels);
}

} // namespace ts::landscape
