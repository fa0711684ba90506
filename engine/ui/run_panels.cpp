// Views of whole runs, drawn with ImGui's draw lists (charts, polylines, ridgelines, squares) and, for images of
// many cells (the series density, the weights canvas), as GPU images (engine/ui/panel_images.hpp).
//
// Sections: helpers (placement, axes) | snapshot level | layer level | distributions | Hinton
#include "engine/ui/run_panels.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <imgui.h>
#include <tuple>

#include "engine/core/colormap.hpp"
#include "engine/ui/panel_images.hpp"
#include "engine/ui/panels.hpp"

namespace ts::ui {

// --- Helpers ---
namespace {

constexpr const char* kStatNames[8] = {"mean", "mean |x|", "variance", "min", "max", "zero fraction", "NaN count",
                                       "Inf count"};

void place(const PanelRect& r, ImVec2 pos, ImVec2 size) {
    if (r.fixed) {
        ImGui::SetNextWindowPos(ImVec2(r.x, r.y), ImGuiCond_Always);
        ImGui::SetNextWindowSize(ImVec2(r.w, r.h), ImGuiCond_Always);
    } else {
        ImGui::SetNextWindowPos(pos, ImGuiCond_FirstUseEver);
        ImGui::SetNextWindowSize(size, ImGuiCond_FirstUseEver);
    }
}

ImU32 col(Rgb8 c, int a = 255) {
    return IM_COL32(c.r, c.g, c.b, a);
}

// A plot area: data (x0..x1, y0..y1) onto the screen rectangle p0..p1 (y up).
struct Axes {
    ImVec2 p0, p1;
    double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    ImVec2 at(double x, double y) const {
        const double fx = x1 > x0 ? (x - x0) / (x1 - x0) : 0.5, fy = y1 > y0 ? (y - y0) / (y1 - y0) : 0.5;
        return ImVec2(p0.x + float(fx) * (p1.x - p0.x), p1.y - float(fy) * (p1.y - p0.y));
    }
    double xOf(float px) const { return x0 + double((px - p0.x) / std::max(p1.x - p0.x, 1.0f)) * (x1 - x0); }
    double yOf(float py) const { return y0 + double((p1.y - py) / std::max(p1.y - p0.y, 1.0f)) * (y1 - y0); }
    bool contains(ImVec2 p) const { return p.x >= p0.x && p.x <= p1.x && p.y >= p0.y && p.y <= p1.y; }
};

// Frame, a few value ticks on the left and step ticks below. Reserves the space with an invisible button
// (so clicks land on this item) and returns the plot area inside the margins.
Axes plotArea(const char* id, ImVec2 size, double x0, double x1, double y0, double y1, bool xTicks = true) {
    const ImVec2 c = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    recordLastItem(id);
    Axes a;
    a.p0 = ImVec2(c.x + 52, c.y + 4);
    a.p1 = ImVec2(c.x + size.x - 6, c.y + size.y - (xTicks ? 18 : 4));
    a.x0 = x0, a.x1 = x1, a.y0 = y0, a.y1 = y1;
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(a.p0, a.p1, IM_COL32(18, 20, 28, 255));
    char buf[32];
    for (int k = 0; k <= 2; ++k) {
        const double v = y0 + (y1 - y0) * k / 2.0;
        const ImVec2 p = a.at(x0, v);
        dl->AddLine(ImVec2(a.p0.x, p.y), ImVec2(a.p1.x, p.y), IM_COL32(60, 64, 80, 120));
        std::snprintf(buf, sizeof buf, "%.3g", v);
        dl->AddText(ImVec2(c.x + 2, p.y - 7), IM_COL32(170, 175, 190, 255), buf);
    }
    if (xTicks)
        for (int k = 0; k <= 4; ++k) {
            const double v = x0 + (x1 - x0) * k / 4.0;
            const ImVec2 p = a.at(v, y0);
            std::snprintf(buf, sizeof buf, "%.0f", v);
            const float w = ImGui::CalcTextSize(buf).x;
            dl->AddText(ImVec2(std::clamp(p.x - w / 2, a.p0.x, a.p1.x - w), a.p1.y + 2), IM_COL32(170, 175, 190, 255), buf);
        }
    dl->AddRect(a.p0, a.p1, IM_COL32(90, 95, 115, 255));
    return a;
}

void polyline(ImDrawList* dl, const Axes& a, const std::vector<int64_t>& xs, const std::vector<double>& ys, ImU32 c,
              float thickness) {
    std::vector<ImVec2> pts;
    auto flush = [&]() {
        if (pts.size() >= 2) dl->AddPolyline(pts.data(), int(pts.size()), c, 0, thickness);
        pts.clear();
    };
    for (size_t i = 0; i < ys.size() && i < xs.size(); ++i) {
        if (!std::isfinite(ys[i])) continue; // sparse logs (validation) connect across rows without a value
        pts.push_back(a.at(double(xs[i]), std::clamp(ys[i], a.y0, a.y1)));
    }
    flush();
}

ImU32 anomalyColour(dynamics::AnomalyKind k) {
    switch (k) {
    case dynamics::AnomalyKind::Spike: return IM_COL32(255, 170, 60, 255);
    case dynamics::AnomalyKind::NonFinite: return IM_COL32(255, 70, 70, 255);
    case dynamics::AnomalyKind::Plateau: return IM_COL32(150, 150, 255, 255);
    case dynamics::AnomalyKind::Overfitting: return IM_COL32(230, 90, 230, 255);
    case dynamics::AnomalyKind::Underfitting: return IM_COL32(120, 200, 255, 255);
    }
    return IM_COL32_WHITE;
}

bool isLossLike(const std::string& n) {
    return n.find("loss") != std::string::npos;
}
bool isAccuracyLike(const std::string& n) {
    return n.find("acc") != std::string::npos;
}

// Finite min and max of some columns.
std::pair<double, double> rangeOf(const std::vector<const std::vector<double>*>& cols) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto* c : cols)
        for (double v : *c)
            if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(lo <= hi)) return {0, 1};
    if (lo == hi) return {lo - 0.5, hi + 0.5};
    return {lo, hi};
}

} // namespace

// --- Snapshot level ---
namespace {

// Some of the run's scalars as lines in a plot, with a legend along its top edge.
void curvesWithLegend(ImDrawList* dl, const Axes& a, const dynamics::RunOverview& run,
                      const std::vector<const std::vector<double>*>& cols, const std::vector<size_t>& names) {
    const ImU32 colours[] = {IM_COL32(90, 170, 255, 255), IM_COL32(255, 140, 80, 255), IM_COL32(120, 220, 140, 255)};
    for (size_t k = 0; k < cols.size(); ++k)
        polyline(dl, a, run.scalarSteps, *cols[k], colours[k % 3], 1.5f);
    // The legend on a dark plate over the curves (they often start at the top left).
    float lx = a.p0.x + 8;
    for (size_t k = 0; k < cols.size(); ++k) {
        const std::string& n = run.scalarNames[names[k]];
        const float tw = ImGui::CalcTextSize(n.c_str()).x;
        dl->AddRectFilled(ImVec2(lx - 4, a.p0.y + 2), ImVec2(lx + 22 + tw, a.p0.y + 19), IM_COL32(16, 18, 24, 220), 3.0f);
        dl->AddLine(ImVec2(lx, a.p0.y + 10), ImVec2(lx + 14, a.p0.y + 10), colours[k % 3], 2.0f);
        dl->AddText(ImVec2(lx + 18, a.p0.y + 3), IM_COL32(220, 220, 230, 255), n.c_str());
        lx += 30 + tw;
    }
}

// The logged curves with anomaly markers, the focus snapshot and its averaging window. Returns a click.
std::optional<int64_t> curvesChart(const DynamicsView& v, float height) {
    const auto& run = *v.run;
    std::optional<int64_t> focus;
    if (run.scalarSteps.empty() || run.snapshotSteps.empty()) {
        ImGui::TextDisabled("no scalars logged");
        return focus;
    }
    std::vector<const std::vector<double>*> loss, acc;
    std::vector<size_t> lossIdx, accIdx;
    for (size_t i = 0; i < run.scalarNames.size(); ++i) {
        if (isLossLike(run.scalarNames[i])) loss.push_back(&run.scalarValues[i]), lossIdx.push_back(i);
        else if (isAccuracyLike(run.scalarNames[i])) acc.push_back(&run.scalarValues[i]), accIdx.push_back(i);
    }
    const double x0 = double(run.scalarSteps.front()), x1 = double(std::max(run.scalarSteps.back(), run.snapshotSteps.back()));
    const float w = ImGui::GetContentRegionAvail().x;
    const float lossH = acc.empty() ? height : height * 0.62f, accH = height - lossH - 4;
    auto [lo, hi] = rangeOf(loss.empty() ? acc : loss);
    Axes a = plotArea("##curves", ImVec2(w, lossH), x0, x1, lo, hi + 0.05 * (hi - lo), acc.empty());
    const bool hovered = ImGui::IsItemHovered();
    const bool clicked = ImGui::IsItemClicked();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    // The window around the focus, then the focus line.
    const int64_t f = std::clamp<int64_t>(v.focus, 0, int64_t(run.snapshotSteps.size()) - 1);
    const int64_t wa = std::max<int64_t>(0, f - v.window), wb = std::min<int64_t>(int64_t(run.snapshotSteps.size()) - 1, f + v.window);
    auto band = [&](const Axes& ax) {
        dl->AddRectFilled(ImVec2(ax.at(double(run.snapshotSteps[size_t(wa)]), 0).x, ax.p0.y),
                          ImVec2(std::max(ax.at(double(run.snapshotSteps[size_t(wb)]), 0).x, ax.at(double(run.snapshotSteps[size_t(wa)]), 0).x + 2), ax.p1.y),
                          IM_COL32(255, 255, 255, 22));
        const float fx = ax.at(double(run.snapshotSteps[size_t(f)]), 0).x;
        dl->AddLine(ImVec2(fx, ax.p0.y), ImVec2(fx, ax.p1.y), IM_COL32(255, 255, 255, 200), 1.5f);
    };
    band(a);
    curvesWithLegend(dl, a, run, loss, lossIdx);
    // Anomaly markers: a triangle on the top edge (and a line), a span for plateaus and fitting problems.
    int hoveredAnomaly = -1;
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    for (size_t i = 0; i < run.anomalies.size(); ++i) {
        const auto& an = run.anomalies[i];
        const ImU32 c = anomalyColour(an.kind);
        const float xa = a.at(double(an.step), 0).x, xb = a.at(double(an.endStep), 0).x;
        if (an.kind == dynamics::AnomalyKind::Plateau || an.kind == dynamics::AnomalyKind::Overfitting ||
            an.kind == dynamics::AnomalyKind::Underfitting)
            dl->AddRectFilled(ImVec2(xa, a.p1.y - 5), ImVec2(std::max(xb, xa + 2), a.p1.y), (c & 0x00FFFFFF) | 0xB0000000);
        else
            dl->AddLine(ImVec2(xa, a.p0.y), ImVec2(xa, a.p1.y), (c & 0x00FFFFFF) | 0x70000000, 1.0f);
        dl->AddTriangleFilled(ImVec2(xa - 5, a.p0.y), ImVec2(xa + 5, a.p0.y), ImVec2(xa, a.p0.y + 9), c);
        if (hovered && std::fabs(mouse.x - xa) < 6 && mouse.y < a.p0.y + 14) hoveredAnomaly = int(i);
    }
    if (hoveredAnomaly >= 0) {
        ImGui::SetTooltip("%s\n(click: focus this snapshot)", run.anomalies[size_t(hoveredAnomaly)].message.c_str());
    } else if (hovered && a.contains(mouse)) {
        const int64_t step = int64_t(std::llround(a.xOf(mouse.x)));
        ImGui::SetTooltip("step %lld (click: focus the snapshot there)", (long long)step);
    }
    if (clicked) {
        const int64_t step = hoveredAnomaly >= 0 ? run.anomalies[size_t(hoveredAnomaly)].step
                                                 : int64_t(std::llround(a.xOf(mouse.x)));
        focus = run.snapshotAt(step);
    }
    if (!acc.empty()) {
        auto [alo, ahi] = rangeOf(acc);
        Axes b = plotArea("##acc", ImVec2(w, accH), x0, x1, alo, ahi + 0.05 * (ahi - alo));
        band(b);
        curvesWithLegend(dl, b, run, acc, accIdx);
        if (ImGui::IsItemClicked()) focus = run.snapshotAt(int64_t(std::llround(b.xOf(ImGui::GetIO().MousePos.x))));
    }
    return focus;
}

// One layer's trend: the chosen statistic over every snapshot (pooled to the width), centred on nothing:
// the focus is a vertical line. Returns a clicked snapshot.
std::optional<int64_t> trend(const char* id, const std::vector<dynamics::SummaryRow>& rows, int column, int64_t focus,
                             int64_t nonFinite, ImVec2 size) {
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    std::optional<int64_t> clicked;
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p0, ImVec2(p0.x + size.x, p0.y + size.y), IM_COL32(18, 20, 28, 255));
    const size_t n = rows.size();
    if (n == 0) return clicked;
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& r : rows)
        if (std::isfinite(r[size_t(column)])) lo = std::min(lo, r[size_t(column)]), hi = std::max(hi, r[size_t(column)]);
    const int cols = std::max(1, int(std::min<size_t>(n, size_t(size.x))));
    if (lo <= hi) {
        if (lo == hi) lo -= 0.5, hi += 0.5;
        std::vector<ImVec2> pts;
        for (int c = 0; c < cols; ++c) {
            const size_t a = n * size_t(c) / size_t(cols), b = std::max(a + 1, n * size_t(c + 1) / size_t(cols));
            double s = 0;
            int k = 0;
            for (size_t i = a; i < b; ++i)
                if (std::isfinite(rows[i][size_t(column)])) s += rows[i][size_t(column)], ++k;
            if (!k) continue;
            const float x = p0.x + (float(c) + 0.5f) * size.x / float(cols);
            const float y = p0.y + size.y - 2 - float((s / k - lo) / (hi - lo)) * (size.y - 4);
            pts.push_back(ImVec2(x, y));
        }
        if (pts.size() >= 2) dl->AddPolyline(pts.data(), int(pts.size()), IM_COL32(140, 200, 255, 255), 0, 1.2f);
    }
    auto xOf = [&](int64_t s) { return p0.x + (float(s) + 0.5f) * size.x / float(n); };
    if (nonFinite >= 0)
        dl->AddRectFilled(ImVec2(xOf(nonFinite), p0.y), ImVec2(p0.x + size.x, p0.y + size.y), IM_COL32(255, 60, 60, 60));
    dl->AddLine(ImVec2(xOf(focus), p0.y), ImVec2(xOf(focus), p0.y + size.y), IM_COL32(255, 255, 255, 200));
    if (ImGui::IsItemHovered()) {
        const int64_t s = std::clamp<int64_t>(int64_t((ImGui::GetIO().MousePos.x - p0.x) / size.x * float(n)), 0, int64_t(n) - 1);
        ImGui::SetTooltip("snapshot %lld: %.4g", (long long)s, rows[size_t(s)][size_t(column)]);
        if (ImGui::IsItemClicked()) clicked = s;
    }
    return clicked;
}

// The layer DAG as a strip: layers in columns by depth (the longest path from the input; a run without a
// recorded DAG is a chain), branches in lanes, coloured by their window value on [lo, hi]. When the columns
// would be under 3 pixels wide, each stage (first name component) is one box over its columns. Returns the
// clicked layer.
std::optional<int> dagStrip(const dynamics::RunOverview& run, const std::vector<double>& avg, double lo, double hi,
                            int selected, float height) {
    const size_t n = run.layers.size();
    if (n == 0) return std::nullopt;
    std::vector<int> rank(n, 1), lane(n, 0);
    int ranks = 0, lanes = 1;
    std::vector<int> used; // lanes taken per rank
    for (size_t l = 0; l < n; ++l) {
        const auto& in = run.layers[l].inputs;
        int r = 1;
        if (in.empty()) r = l == 0 ? 1 : rank[l - 1] + 1;
        for (int64_t k : in)
            if (k >= 0 && size_t(k) < l) r = std::max(r, rank[size_t(k)] + 1);
        rank[l] = r;
        if (int(used.size()) <= r) used.resize(size_t(r) + 1, 0);
        lane[l] = used[size_t(r)]++;
        ranks = std::max(ranks, r);
        lanes = std::max(lanes, lane[l] + 1);
    }
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    const float width = std::max(ImGui::GetContentRegionAvail().x, 50.0f);
    ImGui::InvisibleButton("##dag", ImVec2(width, height));
    recordLastItem("##dag");
    const bool hovered = ImGui::IsItemHovered(), clicked = ImGui::IsItemClicked();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p0, ImVec2(p0.x + width, p0.y + height), IM_COL32(20, 23, 31, 255));
    // A band at the bottom names the stages over their columns.
    const float band = 13.0f, graphH = std::max(height - band, 8.0f);
    const float colW = width / float(ranks), laneH = std::min(14.0f, graphH / float(lanes));
    for (size_t i = 0; i < n;) {
        const size_t j = stageEnd(i, n, [&](size_t k) -> const std::string& { return run.layers[k].name; });
        int r0 = rank[i], r1 = rank[i];
        for (size_t l = i; l < j; ++l)
            r0 = std::min(r0, rank[l]), r1 = std::max(r1, rank[l]);
        const float x0 = p0.x + float(r0 - 1) * colW, x1 = p0.x + float(r1) * colW;
        const std::string& name = run.layers[i].name;
        const std::string stage = j - i > 1 ? name.substr(0, name.find('.')) : name;
        const ImVec2 ts = ImGui::CalcTextSize(stage.c_str());
        if (ts.x + 4 <= x1 - x0) {
            dl->AddText(ImVec2((x0 + x1 - ts.x) / 2, p0.y + graphH), IM_COL32(170, 175, 190, 255), stage.c_str());
            if (j - i > 1) dl->AddLine(ImVec2(x0 + 1, p0.y + graphH + 1), ImVec2(x1 - 2, p0.y + graphH + 1), IM_COL32(90, 95, 110, 255));
        }
        i = j;
    }
    auto colour = [&](double a) {
        return std::isfinite(a) && hi > lo ? col(sampleColormap(Colormap::Viridis, float((a - lo) / (hi - lo))))
                                           : IM_COL32(70, 70, 80, 255);
    };
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    std::optional<int> hit;
    auto node = [&](size_t l) {
        const float x = p0.x + float(rank[l] - 1) * colW, y = p0.y + float(lane[l]) * laneH;
        return std::array<float, 4>{x, y, x + std::max(colW - 1.0f, 1.0f), y + std::max(laneH - 1.0f, 1.0f)};
    };
    if (colW >= 3.0f) {
        for (size_t l = 0; l < n; ++l) // edges first, under the nodes
            for (int64_t k : run.layers[l].inputs) {
                if (k < 0 || size_t(k) >= l) continue;
                const auto a = node(size_t(k)), b = node(l);
                dl->AddLine(ImVec2(a[2], (a[1] + a[3]) / 2), ImVec2(b[0], (b[1] + b[3]) / 2), IM_COL32(150, 160, 180, 110));
            }
        for (size_t l = 0; l < n; ++l) {
            const auto r = node(l);
            dl->AddRectFilled(ImVec2(r[0], r[1]), ImVec2(r[2], r[3]), colour(avg[l]));
            if (int(l) == selected) dl->AddRect(ImVec2(r[0] - 1, r[1] - 1), ImVec2(r[2] + 1, r[3] + 1), IM_COL32(255, 255, 255, 255));
            if (hovered && mouse.x >= r[0] && mouse.x < r[2] + 1 && mouse.y >= r[1] && mouse.y < r[3] + 1) hit = int(l);
        }
    } else {
        for (size_t i = 0; i < n;) { // stages as boxes over their columns
            const size_t j = stageEnd(i, n, [&](size_t k) -> const std::string& { return run.layers[k].name; });
            int r0 = rank[i], r1 = rank[i];
            double sum = 0;
            int cnt = 0;
            for (size_t l = i; l < j; ++l) {
                r0 = std::min(r0, rank[l]), r1 = std::max(r1, rank[l]);
                if (std::isfinite(avg[l])) sum += avg[l], ++cnt;
            }
            const float x0 = p0.x + float(r0 - 1) * colW, x1 = p0.x + float(r1) * colW;
            dl->AddRectFilled(ImVec2(x0, p0.y), ImVec2(std::max(x1 - 1.0f, x0 + 1.0f), p0.y + graphH),
                              colour(cnt ? sum / cnt : NAN));
            if (selected >= int(i) && selected < int(j))
                dl->AddRect(ImVec2(x0 - 1, p0.y), ImVec2(x1, p0.y + graphH), IM_COL32(255, 255, 255, 255));
            if (hovered && mouse.x >= x0 && mouse.x < x1) hit = int(i);
            i = j;
        }
    }
    if (hit) {
        const auto& l = run.layers[size_t(*hit)];
        ImGui::SetTooltip("%s (%s): %.4g", l.name.c_str(), l.type.c_str(), avg[size_t(*hit)]);
        if (clicked) return hit;
    }
    return std::nullopt;
}

} // namespace

DynamicsEdits dynamicsPanel(const DynamicsView& v) {
    DynamicsEdits e;
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    place(v.rect, ImVec2(330, 110), ImVec2(std::clamp(display.x - 660.0f, 320.0f, 1000.0f), display.y * 0.5f - 110));
    ImGui::Begin("Run dynamics");
    if (!v.run) {
        ImGui::TextDisabled("%s", v.status.empty() ? "loading the run..." : v.status.c_str());
        ImGui::End();
        return e;
    }
    const auto& run = *v.run;
    const int64_t snaps = int64_t(run.snapshotSteps.size());
    const int64_t f = std::clamp<int64_t>(v.focus, 0, std::max<int64_t>(snaps - 1, 0));
    ImGui::Text("focus: snapshot %lld of %lld, step %lld", (long long)f, (long long)snaps,
                (long long)(snaps ? run.snapshotSteps[size_t(f)] : 0));
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    int window = v.window;
    if (ImGui::SliderInt("window +-", &window, 0, 64)) e.window = window;
    ImGui::SameLine();
    ImGui::SetNextItemWidth(150);
    int choice = v.choice;
    if (ImGui::BeginCombo("##stat", kSummaryChoices[size_t(std::clamp(choice, 0, 4))].name)) {
        for (int k = 0; k < int(kSummaryChoices.size()); ++k)
            if (ImGui::Selectable(kSummaryChoices[size_t(k)].name, k == choice)) e.choice = k;
        ImGui::EndCombo();
    }
    if (auto c = curvesChart(v, std::clamp(ImGui::GetContentRegionAvail().y * 0.42f, 150.0f, 280.0f))) e.focus = c;
    // Anomalies as a list a person reads.
    if (!run.anomalies.empty()) {
        ImGui::TextColored(ImVec4(1.0f, 0.75f, 0.4f, 1.0f), "%zu anomalies", run.anomalies.size());
        for (size_t i = 0; i < run.anomalies.size() && i < 6; ++i) {
            const auto& a = run.anomalies[i];
            const ImU32 c = anomalyColour(a.kind);
            ImGui::PushStyleColor(ImGuiCol_Text, c);
            ImGui::PushID(int(i));
            if (ImGui::Selectable(a.message.c_str(), false)) e.focus = run.snapshotAt(a.step);
            ImGui::PopID();
            ImGui::PopStyleColor();
        }
        if (run.anomalies.size() > 6) ImGui::TextDisabled("... and %zu more", run.anomalies.size() - 6);
    }
    // Layers: name, window average (coloured on the layers' range), trend over the run.
    const int column = kSummaryChoices[size_t(std::clamp(v.choice, 0, 4))].column;
    std::vector<double> avg(run.layers.size());
    double lo = INFINITY, hi = -INFINITY;
    for (size_t l = 0; l < run.layers.size(); ++l) {
        avg[l] = dynamics::windowAverage<8>(run.layers[l].summary, f, v.window)[size_t(column)];
        if (std::isfinite(avg[l])) lo = std::min(lo, avg[l]), hi = std::max(hi, avg[l]);
    }
    ImGui::TextDisabled("layer graph: depth left to right, branches stacked; colour: the window mean (click selects)");
    if (auto l = dagStrip(run, avg, lo, hi, v.selectedLayer, 44.0f)) e.selectLayer = *l;
    if (ImGui::BeginTable("layers", 3, ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV)) {
        ImGui::TableSetupColumn("layer", ImGuiTableColumnFlags_WidthFixed, 190.0f);
        ImGui::TableSetupColumn("window mean", ImGuiTableColumnFlags_WidthFixed, 90.0f);
        ImGui::TableSetupColumn("over the run (white: focus)", ImGuiTableColumnFlags_WidthStretch);
        ImGui::TableSetupScrollFreeze(0, 1);
        ImGui::TableHeadersRow();
        // Stages (first name component) group their layers; deep models start with the groups closed.
        const bool deep = run.layers.size() > 40;
        auto row = [&](size_t l, const std::string& label) {
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImGui::PushID(int(l));
            if (ImGui::Selectable(label.c_str(), int(l) == v.selectedLayer, ImGuiSelectableFlags_SpanAllColumns |
                                                                                 ImGuiSelectableFlags_AllowItemOverlap))
                e.selectLayer = int(l);
            if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s (%s, %lld neurons)", run.layers[l].name.c_str(),
                                                          run.layers[l].type.c_str(), (long long)run.layers[l].neurons);
            ImGui::TableNextColumn();
            const double a = avg[l];
            if (std::isfinite(a) && hi > lo) {
                const Rgb8 c = sampleColormap(Colormap::Viridis, float((a - lo) / (hi - lo)));
                ImGui::TableSetBgColor(ImGuiTableBgTarget_CellBg, col(c, 200));
                const bool light = (c.r * 3 + c.g * 6 + c.b) > 1300;
                ImGui::TextColored(light ? ImVec4(0, 0, 0, 1) : ImVec4(1, 1, 1, 1), "%.3g", a);
            } else {
                ImGui::TextDisabled(std::isfinite(a) ? "%.3g" : "-", a);
            }
            ImGui::TableNextColumn();
            if (auto s = trend("##trend", run.layers[l].summary, column, f, run.layers[l].firstNonFinite,
                               ImVec2(ImGui::GetContentRegionAvail().x, 18)))
                e.focus = s, e.selectLayer = int(l);
            ImGui::PopID();
        };
        for (size_t i = 0; i < run.layers.size();) {
            const std::string& name = run.layers[i].name;
            const std::string stage = name.substr(0, name.find('.'));
            const size_t j = stageEnd(i, run.layers.size(), [&](size_t k) -> const std::string& { return run.layers[k].name; });
            if (j - i == 1) {
                row(i, name);
                ++i;
                continue;
            }
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImGui::SetNextItemOpen(!deep, ImGuiCond_Once);
            const bool open = ImGui::TreeNodeEx(stage.c_str(), ImGuiTreeNodeFlags_SpanFullWidth, "%s (%zu)", stage.c_str(), j - i);
            // The group's row shows its layers' mean window value.
            ImGui::TableNextColumn();
            double s = 0;
            int k = 0;
            for (size_t l = i; l < j; ++l)
                if (std::isfinite(avg[l])) s += avg[l], ++k;
            if (k) ImGui::TextDisabled("%.3g", s / k);
            if (open) {
                for (size_t l = i; l < j; ++l)
                    row(l, "  " + run.layers[l].name.substr(stage.size() + 1));
                ImGui::TreePop();
            }
            i = j;
        }
        ImGui::EndTable();
    }
    ImGui::End();
    return e;
}

// --- Layer level ---
SeriesEdits seriesPanel(const SeriesPanelView& v) {
    SeriesEdits e;
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    place(v.rect, ImVec2(330, display.y * 0.5f + 6), ImVec2(std::clamp(display.x - 660.0f, 320.0f, 1000.0f), display.y * 0.5f - 60));
    ImGui::Begin("Layer series");
    const auto* s = v.series;
    if (!s) {
        ImGui::TextDisabled("%s", v.status.empty() ? "select a layer (Run dynamics or Model panel)" : v.status.c_str());
        ImGui::End();
        return e;
    }
    int kind = s->kind == runs::Kind::Activation ? 0 : 1;
    ImGui::Text("%s", s->name.c_str());
    ImGui::SameLine();
    ImGui::SetNextItemWidth(110);
    if (ImGui::Combo("##kind", &kind, "activation\0gradient\0")) e.kind = kind;
    ImGui::SameLine();
    ImGui::SetNextItemWidth(120);
    int stat = s->statistic;
    if (ImGui::Combo("##stat", &stat, kStatNames, 6)) e.statistic = stat;
    ImGui::SameLine();
    ImGui::TextDisabled("%lld neurons x %lld points%s, %zu drawn", (long long)s->matrix.series,
                        (long long)s->matrix.points,
                        s->level ? (" (means of " + std::to_string(1 << s->level) + " snapshots)").c_str() : "",
                        s->sample.kept.size());
    if (!v.brushed.empty()) {
        ImGui::TextColored(ImVec4(1, 0.9f, 0.3f, 1), "%zu neurons brushed", v.brushed.size());
        ImGui::SameLine();
        if (ImGui::SmallButton("clear")) e.clearBrush = true;
    } else {
        ImGui::TextDisabled("drag a box over the plot to select the neurons that pass through it");
    }
    const auto& d = s->density;
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const double x0 = s->steps.empty() ? 0 : double(s->steps.front()), x1 = s->steps.empty() ? 1 : double(s->steps.back());
    Axes a = plotArea("##series", ImVec2(avail.x, std::max(avail.y, 120.0f)), x0, x1, d.range.lo, d.range.hi);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    // Density: log-scaled magma cells, one texel each, drawn by the GPU as one image (kept while the series is).
    static std::pair<uint64_t, std::shared_ptr<const PanelImage>> densityCache;
    if (v.version == 0 || densityCache.first != v.version) {
        auto img = std::make_shared<PanelImage>();
        img->width = d.width;
        img->height = d.height;
        img->rgba.assign(size_t(d.width) * size_t(d.height), 0u); // see-through where no series passes
        const uint32_t maxCount = d.maxCount();
        const float norm = maxCount > 0 ? 1.0f / std::log1p(float(maxCount)) : 0.0f;
        for (int y = 0; y < d.height; ++y)
            for (int x = 0; x < d.width; ++x) {
                const uint32_t c = d.counts[size_t(y) * size_t(d.width) + size_t(x)];
                if (c) // row 0 of the counts is the lowest value: the image's bottom row
                    img->rgba[size_t(d.height - 1 - y) * size_t(d.width) + size_t(x)] =
                        col(sampleColormap(Colormap::Magma, 0.15f + 0.85f * std::log1p(float(c)) * norm));
            }
        densityCache = {v.version, std::move(img)};
    }
    drawPanelImage(dl, densityCache.second, a.p0, a.p1);
    // Sampled polylines over it; the least crowded (first kept) in a warmer colour.
    const int64_t T = s->matrix.points;
    auto drawSeries = [&](int64_t i, ImU32 c, float thick) {
        std::vector<ImVec2> pts;
        for (int64_t t = 0; t < T; ++t) {
            const float val = s->matrix.at(t, i);
            if (!std::isfinite(val)) {
                if (pts.size() >= 2) dl->AddPolyline(pts.data(), int(pts.size()), c, 0, thick);
                pts.clear();
                continue;
            }
            pts.push_back(a.at(double(s->steps[size_t(t)]), val));
        }
        if (pts.size() >= 2) dl->AddPolyline(pts.data(), int(pts.size()), c, 0, thick);
    };
    const size_t outliers = std::min<size_t>(s->sample.kept.size(), std::max<size_t>(4, s->sample.kept.size() / 10));
    for (size_t k = s->sample.kept.size(); k-- > 0;)
        drawSeries(s->sample.kept[k], k < outliers ? IM_COL32(120, 255, 200, 235) : IM_COL32(170, 210, 255, 110),
                   k < outliers ? 1.5f : 1.0f);
    for (size_t k = 0; k < v.brushed.size() && k < 400; ++k)
        drawSeries(v.brushed[k], IM_COL32(255, 225, 80, 220), 1.4f);
    if (v.focusStep >= 0 && v.focusStep >= int64_t(x0) && v.focusStep <= int64_t(x1)) {
        const float fx = a.at(double(v.focusStep), 0).x;
        dl->AddLine(ImVec2(fx, a.p0.y), ImVec2(fx, a.p1.y), IM_COL32(255, 255, 255, 200), 1.5f);
    }
    // Brushing: drag from the press point; a click without a drag focuses that step.
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 3.0f)) {
        const ImVec2 start = ImGui::GetIO().MouseClickedPos[0];
        dl->AddRect(start, mouse, IM_COL32(255, 225, 80, 255), 0, 0, 1.5f);
        dl->AddRectFilled(start, mouse, IM_COL32(255, 225, 80, 30));
    }
    if (ImGui::IsItemDeactivated()) {
        const ImVec2 start = ImGui::GetIO().MouseClickedPos[0];
        auto pointOf = [&](float px) {
            const double step = a.xOf(px);
            auto it = std::lower_bound(s->steps.begin(), s->steps.end(), int64_t(std::llround(step)));
            return float(std::clamp<int64_t>(int64_t(it - s->steps.begin()), 0, T - 1));
        };
        if (std::fabs(mouse.x - start.x) + std::fabs(mouse.y - start.y) > 4.0f)
            e.brush = std::array<float, 4>{pointOf(std::min(start.x, mouse.x)), pointOf(std::max(start.x, mouse.x)),
                                           float(a.yOf(std::max(start.y, mouse.y))), float(a.yOf(std::min(start.y, mouse.y)))};
        else
            e.focusStep = int64_t(std::llround(a.xOf(mouse.x)));
    }
    if (ImGui::IsItemHovered() && !ImGui::IsItemActive())
        ImGui::SetTooltip("step %.0f, value %.4g\ncolour: how many neurons pass there (log)", a.xOf(mouse.x), a.yOf(mouse.y));
    ImGui::End();
    return e;
}

// --- Distributions ---
namespace {
// Ridgelines of one kind: a filled curve per snapshot, earliest at the top, each normalised to its peak.
void ridgelines(const char* title, const dynamics::Ridgelines& r, const dynamics::Ridgelines* other, ImVec2 size,
                int64_t focusStep) {
    ImGui::BeginGroup();
    ImGui::Text("%s", title);
    if (r.rows() == 0) {
        ImGui::TextDisabled("(none in this layer)");
        ImGui::Dummy(ImVec2(size.x, size.y - 20));
        ImGui::EndGroup();
        return;
    }
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(title, ImVec2(size.x, size.y - 36));
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float left = p0.x + 44, right = p0.x + size.x - 4, top = p0.y + 4, bottom = p0.y + size.y - 40;
    dl->AddRectFilled(ImVec2(left, top), ImVec2(right, bottom + 6), IM_COL32(18, 20, 28, 255));
    const size_t rows = r.rows();
    const float pitch = (bottom - top) / float(rows + 2), amp = pitch * 3.0f;
    // The runs' difference per row: the earth mover's distance between the two histograms.
    std::vector<double> w1(rows, std::nan(""));
    double maxW1 = 0;
    for (size_t row = 0; other && row < rows && row < other->rows(); ++row) {
        w1[row] = dynamics::wasserstein1(
            std::span<const double>(r.counts).subspan(row * size_t(r.bins), size_t(r.bins)), r.lo, r.hi,
            std::span<const double>(other->counts).subspan(row * size_t(other->bins), size_t(other->bins)), other->lo,
            other->hi);
        if (std::isfinite(w1[row])) maxW1 = std::max(maxW1, w1[row]);
    }
    // One value axis for both runs.
    const double axLo = other && other->rows() ? std::min(r.lo, other->lo) : r.lo;
    const double axHi = other && other->rows() ? std::max(r.hi, other->hi) : r.hi;
    // Comparison rows share this one's axis: the other run's histograms are drawn as outlines.
    auto curve = [&](const dynamics::Ridgelines& h, size_t row, float base, ImU32 fill, ImU32 line) {
        const double* c = h.counts.data() + row * size_t(h.bins);
        double peak = 0;
        for (int b = 0; b < h.bins; ++b)
            peak = std::max(peak, c[b]);
        if (peak <= 0) return;
        std::vector<ImVec2> pts;
        for (int b = 0; b < h.bins; ++b) {
            const double centre = h.lo + (h.hi - h.lo) * (b + 0.5) / h.bins;
            const float x = left + float((centre - axLo) / (axHi - axLo)) * (right - left);
            pts.push_back(ImVec2(std::clamp(x, left, right), base - float(c[b] / peak) * amp));
        }
        if (fill)
            for (size_t k = 0; k + 1 < pts.size(); ++k)
                dl->AddQuadFilled(ImVec2(pts[k].x, base), pts[k], pts[k + 1], ImVec2(pts[k + 1].x, base), fill);
        dl->AddPolyline(pts.data(), int(pts.size()), line, 0, 1.2f);
    };
    for (size_t row = 0; row < rows; ++row) {
        const float base = top + pitch * float(row + 3);
        const Rgb8 c = sampleColormap(Colormap::Viridis, rows > 1 ? float(row) / float(rows - 1) : 0.5f);
        const bool focused = focusStep >= 0 && (row + 1 == rows || r.steps[row + 1] > focusStep) && r.steps[row] <= focusStep;
        curve(r, row, base, col(c, 150), focused ? IM_COL32(255, 255, 255, 255) : col(c, 255));
        if (other && row < other->rows()) {
            curve(*other, row, base, 0, IM_COL32(255, 120, 90, 230));
            // The difference: a bar at the right edge, full length at the largest row difference.
            if (std::isfinite(w1[row]) && maxW1 > 0) {
                const float len = float(w1[row] / maxW1) * 48.0f;
                dl->AddRectFilled(ImVec2(right - len, base - 4), ImVec2(right, base), IM_COL32(255, 90, 70, 230));
            }
        }
        if (row % std::max<size_t>(1, rows / 6) == 0 || row + 1 == rows) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%lld", (long long)r.steps[row]);
            dl->AddText(ImVec2(p0.x, base - 12), IM_COL32(170, 175, 190, 255), buf);
        }
    }
    char lo[32], hi[32];
    std::snprintf(lo, sizeof lo, "%.3g", axLo);
    std::snprintf(hi, sizeof hi, "%.3g", axHi);
    dl->AddText(ImVec2(left, bottom + 8), IM_COL32(170, 175, 190, 255), lo);
    dl->AddText(ImVec2(right - ImGui::CalcTextSize(hi).x, bottom + 8), IM_COL32(170, 175, 190, 255), hi);
    if (other && maxW1 > 0) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "largest difference %.3g", maxW1);
        dl->AddText(ImVec2(left + (right - left) * 0.5f - ImGui::CalcTextSize(buf).x * 0.5f, bottom + 8),
                    IM_COL32(255, 120, 90, 255), buf);
    }
    if (axLo < 0 && axHi > 0) {
        const float zx = left + float(-axLo / (axHi - axLo)) * (right - left);
        dl->AddLine(ImVec2(zx, top), ImVec2(zx, bottom + 6), IM_COL32(255, 255, 255, 60));
    }
    ImGui::Dummy(ImVec2(size.x, 20));
    ImGui::EndGroup();
}
} // namespace

void distributionsPanel(const DistributionsPanelView& v) {
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    place(v.rect, ImVec2(330, 60), ImVec2(std::clamp(display.x - 660.0f, 320.0f, 1000.0f), display.y * 0.6f));
    ImGui::Begin("Distributions over the run");
    if (!v.dist) {
        ImGui::TextDisabled("%s", v.status.empty() ? "select a layer" : v.status.c_str());
        ImGui::End();
        return;
    }
    ImGui::Text("%s: per snapshot, top to bottom (white: the focus)", v.dist->name.c_str());
    if (v.compare) {
        ImGui::SameLine();
        ImGui::TextColored(ImVec4(1.0f, 0.5f, 0.35f, 1.0f), "outlines: %s (%s); red bars: how far apart (earth mover's distance)",
                           v.compareName.c_str(), v.compare->name.c_str());
    }
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const ImVec2 each((avail.x - 16) / 3.0f, avail.y);
    ridgelines("weights", v.dist->weights, v.compare ? &v.compare->weights : nullptr, each, v.focusStep);
    ImGui::SameLine();
    ridgelines("activations (neuron means)", v.dist->activations, v.compare ? &v.compare->activations : nullptr, each,
               v.focusStep);
    ImGui::SameLine();
    ridgelines("gradients (neuron means)", v.dist->gradients, v.compare ? &v.compare->gradients : nullptr, each,
               v.focusStep);
    ImGui::End();
}

// --- Hinton ---
void hintonPanel(const HintonPanelView& v) {
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    place(v.rect, ImVec2(330, 60), ImVec2(std::clamp(display.x - 660.0f, 320.0f, 700.0f), display.y * 0.7f));
    ImGui::Begin("Hinton diagram");
    const auto* h = v.blocks;
    if (!h || h->gridRows == 0) {
        ImGui::TextDisabled("%s", v.status.empty() ? "select a Linear or convolution layer" : v.status.c_str());
        ImGui::End();
        return;
    }
    ImGui::Text("%s%s: %lld x %lld weights", v.layer.c_str(), v.step >= 0 ? (" at step " + std::to_string(v.step)).c_str() : "",
                (long long)h->rows, (long long)h->cols);
    if (h->blockRows * h->blockCols > 1)
        ImGui::TextDisabled("each square: a block of %lld x %lld weights (size: mean |w|, colour: sign of the sum)",
                            (long long)h->blockRows, (long long)h->blockCols);
    else
        ImGui::TextDisabled("square size: |w|; white positive, black negative");
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float cell = std::max(1.0f, std::min(avail.x / float(h->gridCols), avail.y / float(h->gridRows)));
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("##hinton", ImVec2(cell * float(h->gridCols), cell * float(h->gridRows)));
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p0, ImVec2(p0.x + cell * float(h->gridCols), p0.y + cell * float(h->gridRows)), IM_COL32(128, 128, 128, 255));
    const double inv = h->maxMeanAbs > 0 ? 1.0 / h->maxMeanAbs : 0.0;
    for (int64_t r = 0; r < h->gridRows; ++r)
        for (int64_t c = 0; c < h->gridCols; ++c) {
            const size_t b = size_t(r * h->gridCols + c);
            const float side = cell * float(std::sqrt(h->meanAbs(b) * inv)); // area proportional to |w|
            if (side < 0.35f) continue;
            const ImVec2 centre(p0.x + (float(c) + 0.5f) * cell, p0.y + (float(r) + 0.5f) * cell);
            dl->AddRectFilled(ImVec2(centre.x - side / 2, centre.y - side / 2), ImVec2(centre.x + side / 2, centre.y + side / 2),
                              h->sum[b] >= 0 ? IM_COL32(250, 250, 250, 255) : IM_COL32(10, 10, 10, 255));
        }
    if (ImGui::IsItemHovered()) {
        const ImVec2 m = ImGui::GetIO().MousePos;
        const int64_t c = std::clamp<int64_t>(int64_t((m.x - p0.x) / cell), 0, h->gridCols - 1);
        const int64_t r = std::clamp<int64_t>(int64_t((m.y - p0.y) / cell), 0, h->gridRows - 1);
        const size_t b = size_t(r * h->gridCols + c);
        ImGui::SetTooltip("rows %lld..%lld, columns %lld..%lld\nmean |w| %.4g, sum %.4g", (long long)(r * h->blockRows),
                          (long long)std::min(h->rows - 1, (r + 1) * h->blockRows - 1), (long long)(c * h->blockCols),
                          (long long)std::min(h->cols - 1, (c + 1) * h->blockCols - 1), h->meanAbs(b), h->sum[b]);
    }
    ImGui::End();
}

// --- Every weight ---
WeightsEdits weightsPanel(const WeightsPanelView& v) {
    WeightsEdits e;
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    place(v.rect, ImVec2(330, 60), ImVec2(std::clamp(display.x - 660.0f, 320.0f, 1000.0f), display.y * 0.7f));
    ImGui::Begin("Weights");
    if (!v.layout || v.matrices.empty()) {
        ImGui::TextDisabled("%s", v.status.empty() ? "waiting for the first snapshot..." : v.status.c_str());
        ImGui::End();
        return e;
    }
    int mode = v.mode;
    ImGui::SetNextItemWidth(170);
    if (ImGui::Combo("colour by", &mode, "value\0update |w - previous|\0gradient\0")) e.mode = mode;
    ImGui::SameLine();
    bool perTensor = v.perTensor;
    if (ImGui::Checkbox("each tensor on its own scale", &perTensor)) e.perTensor = perTensor;
    ImGui::SameLine();
    if (ImGui::SmallButton("fit")) e.fit = true;
    ImGui::SameLine();
    const double perCell = v.region[2] / std::max(v.cellCols, 1);
    ImGui::TextDisabled("%lld weights in %zu tensors%s; %s", (long long)v.totalWeights, v.matrices.size(),
                        v.step >= 0 ? (" at step " + std::to_string(v.step)).c_str() : "",
                        perCell <= 1.0 ? "one cell per weight"
                                       : ("a cell: the mean of " + std::to_string(int64_t(std::ceil(perCell * perCell))) +
                                          " weights" + (v.aggregated ? ", coloured on the cells' range" : ""))
                                             .c_str());
    if (!v.note.empty()) ImGui::TextDisabled("%s", v.note.c_str());
    if ((mode == 1 && !v.hasUpdate) || (mode == 2 && !v.hasGradient))
        ImGui::TextColored(ImVec4(1, 0.7f, 0.3f, 1), "%s", mode == 1 ? "no previous snapshot yet" : "no gradients here");
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton("##weights", ImVec2(std::max(avail.x, 32.0f), std::max(avail.y, 32.0f)));
    recordLastItem("##weights");
    e.canvasCols = int(std::max(avail.x, 32.0f) / kWeightCellPixels);
    e.canvasRows = int(std::max(avail.y, 32.0f) / kWeightCellPixels);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p0, ImVec2(p0.x + avail.x, p0.y + avail.y), IM_COL32(14, 16, 22, 255));
    if (v.cells && v.cellCols > 0 && v.cellRows > 0 && v.cells->size() == size_t(v.cellCols) * size_t(v.cellRows)) {
        // The canvas as one GPU image (a cell per pixel), rebuilt when the raster or its colouring changes.
        static std::tuple<uint64_t, int, float, std::shared_ptr<const PanelImage>> cache;
        if (v.cellsVersion == 0 || std::get<0>(cache) != v.cellsVersion || std::get<1>(cache) != mode ||
            std::get<2>(cache) != v.range) {
            const float inv = v.range > 0 ? 1.0f / v.range : 0.0f;
            const Colormap map = mode == 1 ? Colormap::Magma : Colormap::RdBu;
            auto img = std::make_shared<PanelImage>();
            img->width = v.cellCols;
            img->height = v.cellRows;
            img->rgba.assign(v.cells->size(), 0u); // non-finite cells (gaps, NaN weights): the background
            for (size_t k = 0; k < v.cells->size(); ++k) {
                const float x = (*v.cells)[k];
                if (!std::isfinite(x)) continue;
                const float t = mode == 1 ? x * inv : 0.5f + 0.5f * x * inv;
                img->rgba[k] = col(sampleColormap(map, std::clamp(t, 0.0f, 1.0f)));
            }
            cache = {v.cellsVersion, mode, v.range, std::move(img)};
        }
        drawPanelImage(dl, std::get<3>(cache), p0,
                       ImVec2(p0.x + float(v.cellCols) * kWeightCellPixels, p0.y + float(v.cellRows) * kWeightCellPixels));
    }
    // Tensor names at their tiles' top left when there is room.
    const double sx = double(v.cellCols) * kWeightCellPixels / std::max(v.region[2], 1e-9);
    const double sy = double(v.cellRows) * kWeightCellPixels / std::max(v.region[3], 1e-9);
    for (const auto& t : v.layout->tiles) {
        const float x = p0.x + float((double(t.x) - v.region[0]) * sx), y = p0.y + float((double(t.y) - v.region[1]) * sy);
        const float w = float(double(t.width) * sx), h = float(double(t.height) * sy);
        // A dark outline: zoomed out, the gaps between tiles are narrower than a cell.
        if (w >= 4 && h >= 4) dl->AddRect(ImVec2(x, y), ImVec2(x + w, y + h), IM_COL32(14, 16, 22, 255));
        if (w < 60 || x < p0.x - 1 || y < p0.y - 1 || x > p0.x + avail.x - 40 || y > p0.y + avail.y - 14) continue;
        // On a dark plate: the tiles' own colours are mostly pale.
        const char* name = v.matrices[t.matrix].name.c_str();
        const ImVec2 size = ImGui::CalcTextSize(name);
        if (size.x + 4 > w) continue;
        dl->AddRectFilled(ImVec2(x, y), ImVec2(x + size.x + 4, y + size.y + 2), IM_COL32(14, 16, 22, 200));
        dl->AddText(ImVec2(x + 2, y + 1), IM_COL32(235, 235, 245, 255), name);
    }
    // Zoom about the mouse, pan by dragging, fit on double click.
    const ImGuiIO& io = ImGui::GetIO();
    auto region = v.region;
    const double ppx = region[2] / std::max(double(avail.x), 1.0), ppy = region[3] / std::max(double(avail.y), 1.0);
    if (ImGui::IsItemHovered()) {
        const double mx = region[0] + double(io.MousePos.x - p0.x) * ppx, my = region[1] + double(io.MousePos.y - p0.y) * ppy;
        // Zoom stops at about 8 weights across and at 64 atlases across.
        const double limit = 64.0 * double(std::max(v.layout->width, v.layout->height));
        if (io.MouseWheel != 0.0f && !(io.MouseWheel > 0 && region[2] < 8.0) && !(io.MouseWheel < 0 && region[2] > limit)) {
            const double f = std::pow(0.8, double(io.MouseWheel));
            region = {mx - (mx - region[0]) * f, my - (my - region[1]) * f, region[2] * f, region[3] * f};
            e.region = region;
        }
        if (ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) e.fit = true;
        const int64_t ax = int64_t(std::floor(mx)), ay = int64_t(std::floor(my));
        for (const auto& t : v.layout->tiles) {
            if (ax < t.x || ay < t.y || ax >= t.x + t.width || ay >= t.y + t.height) continue;
            const auto& m = v.matrices[t.matrix];
            const int64_t cx = ax - t.x, cy = ay - t.y;
            const int64_t row = t.rowFolds > 1 ? (cx / m.cols) * t.bandHeight + cy : cy % m.rows;
            const int64_t col = t.rowFolds > 1 ? cx % m.cols : (cy / m.rows) * t.bandWidth + cx;
            if (col < m.cols && row < m.rows)
                ImGui::SetTooltip("%s [%lld x %lld]\nrow %lld, column %lld: %.5g", m.name.c_str(), (long long)m.rows,
                                  (long long)m.cols, (long long)row, (long long)col,
                                  double(m.values[size_t(row * m.cols + col)]));
        }
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(ImGuiMouseButton_Left, 2.0f)) {
        region[0] -= double(io.MouseDelta.x) * ppx;
        region[1] -= double(io.MouseDelta.y) * ppy;
        e.region = region;
    }
    ImGui::End();
    return e;
}

// --- Views bar ---
unsigned viewsBar(unsigned shown, bool recorded) {
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    // Bottom centre: the top centre belongs to the Health panel.
    ImGui::SetNextWindowPos(ImVec2(display.x * 0.5f, display.y - 8), ImGuiCond_FirstUseEver, ImVec2(0.5f, 1));
    ImGui::Begin("Views", nullptr, ImGuiWindowFlags_AlwaysAutoResize | ImGuiWindowFlags_NoCollapse);
    static const char* names[7] = {"run dynamics", "layer series", "distributions", "Hinton", "weights", "explain",
                                   "landscape"};
    for (unsigned k = 0; k < 7; ++k) {
        if (k < 3 && !recorded) continue;
        if (k >= 5 && recorded) continue; // explanations and the live landscape need the live model
        bool on = (shown >> k) & 1u;
        if (k > (recorded ? 0u : 3u)) ImGui::SameLine();
        if (ImGui::Checkbox(names[k], &on)) shown = on ? shown | (1u << k) : shown & ~(1u << k);
    }
    ImGui::End();
    return shown;
}

} // namespace ts::ui
