// Panel implementations. Layout: panels dock themselves to screen edges on first use; the user may move them.
//
// Sections: item recording (tests) | view | training | layers | inspector | health | landscape
#include "engine/ui/panels.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <imgui.h>
#include <numeric>

#include "engine/core/colormap.hpp"
#include "engine/ui/panel_images.hpp"

namespace ts::ui {

// --- Item recording (tests) ---
namespace {
bool g_record = false;
std::map<std::string, ItemRect> g_items;

void record(const char* label) {
    if (!g_record) return;
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    g_items[label] = {a.x, a.y, b.x, b.y};
}

bool button(const char* label, ImVec2 size = ImVec2(0, 0)) {
    bool r = ImGui::Button(label, size);
    record(label);
    return r;
}

// Panels dock to the screen edges on first use; on small screens (under 1000 x 600) they start collapsed
// so the network stays visible.
void placeWindow(ImVec2 pos, ImVec2 size, ImVec2 pivot = ImVec2(0, 0)) {
    ImGui::SetNextWindowPos(pos, ImGuiCond_FirstUseEver, pivot);
    ImGui::SetNextWindowSize(size, ImGuiCond_FirstUseEver);
    ImVec2 display = ImGui::GetIO().DisplaySize;
    if (display.x < 1000.0f || display.y < 600.0f)
        ImGui::SetNextWindowCollapsed(true, ImGuiCond_FirstUseEver);
}

void drawHistogram(const char* id, const Histogram& h, ImVec2 size) {
    if (h.counts.empty()) {
        ImGui::TextDisabled("(no data)");
        return;
    }
    float maxCount = *std::max_element(h.counts.begin(), h.counts.end());
    char overlay[64];
    std::snprintf(overlay, sizeof(overlay), "[%.3g, %.3g]", h.lo, h.hi);
    ImGui::PlotHistogram(id, h.counts.data(), int(h.counts.size()), 0, overlay, 0.0f, maxCount * 1.1f, size);
}
// Draws a pooled map as cells of a sequential colormap (value / vmax), `size` pixels in all, at the cursor;
// returns the cell under the mouse (row, col) or (-1, -1).
std::pair<int, int> drawMap(const char* id, const PooledMap& m, float vmax, ImVec2 size) {
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    ImGui::InvisibleButton(id, size);
    record(id);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float cw = size.x / float(std::max(m.cols, 1)), ch = size.y / float(std::max(m.rows, 1));
    const float inv = vmax > 0.0f ? 1.0f / vmax : 0.0f;
    for (int r = 0; r < m.rows; ++r)
        for (int c = 0; c < m.cols; ++c) {
            const float v = m.values[size_t(r) * size_t(m.cols) + size_t(c)];
            const Rgb8 rgb = sampleColormap(Colormap::Magma, std::isfinite(v) ? v * inv : 0.0f);
            const ImVec2 a(p0.x + float(c) * cw, p0.y + float(r) * ch);
            dl->AddRectFilled(a, ImVec2(a.x + cw + 0.5f, a.y + ch + 0.5f), IM_COL32(rgb.r, rgb.g, rgb.b, 255));
        }
    if (!ImGui::IsItemHovered()) return {-1, -1};
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    const int c = std::clamp(int((mouse.x - p0.x) / cw), 0, m.cols - 1);
    const int r = std::clamp(int((mouse.y - p0.y) / ch), 0, m.rows - 1);
    return {r, c};
}

float mapMax(std::span<const float> v) {
    float hi = 0.0f;
    for (float x : v)
        if (std::isfinite(x)) hi = std::max(hi, x);
    return hi;
}

std::span<const float> headOf(const AttentionMaps& a, int head) {
    const size_t n = size_t(a.queries) * size_t(a.keys);
    return std::span<const float>(a.values).subspan(size_t(head) * n, n);
}

// Thumbnails of every head, four to a row; returns the head clicked.
std::optional<int> attentionThumbnails(const AttentionMaps& a) {
    std::optional<int> clicked;
    ImGui::Text("attention maps: %d heads x %d queries x %d keys", a.heads, a.queries, a.keys);
    const int perRow = std::min(a.heads, 4);
    const float side = std::max((ImGui::GetContentRegionAvail().x - 6.0f * float(perRow - 1)) / float(perRow), 24.0f);
    for (int h = 0; h < a.heads; ++h) {
        const auto map = headOf(a, h);
        const PooledMap pooled = poolMap(map, a.queries, a.keys, int(side));
        ImGui::BeginGroup();
        const std::string id = "##head" + std::to_string(h);
        drawMap(id.c_str(), pooled, mapMax(pooled.values), ImVec2(side, side));
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("head %d: click to open it", h);
        if (ImGui::IsItemClicked()) clicked = h;
        ImGui::TextDisabled("head %d", h);
        ImGui::EndGroup();
        if ((h + 1) % perRow != 0 && h + 1 < a.heads) ImGui::SameLine(0, 6.0f);
    }
    return clicked;
}
} // namespace

PooledMap poolMap(std::span<const float> map, int rows, int cols, int maxCells) {
    PooledMap out;
    if (rows <= 0 || cols <= 0 || maxCells <= 0 || map.size() < size_t(rows) * size_t(cols)) return out;
    out.blockRows = (rows + maxCells - 1) / maxCells;
    out.blockCols = (cols + maxCells - 1) / maxCells;
    out.rows = (rows + out.blockRows - 1) / out.blockRows;
    out.cols = (cols + out.blockCols - 1) / out.blockCols;
    out.values.assign(size_t(out.rows) * size_t(out.cols), 0.0f);
    std::vector<int> count(out.values.size(), 0);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const size_t cell = size_t(r / out.blockRows) * size_t(out.cols) + size_t(c / out.blockCols);
            out.values[cell] += map[size_t(r) * size_t(cols) + size_t(c)];
            ++count[cell];
        }
    for (size_t i = 0; i < out.values.size(); ++i)
        out.values[i] /= float(count[i]);
    return out;
}

AttentionEdits attentionPanel(const AttentionMaps& a, int head, int query) {
    AttentionEdits e;
    if (a.empty()) return e;
    head = std::clamp(head, 0, a.heads - 1);
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    const float side = std::clamp(std::min(display.x, display.y) * 0.55f, 160.0f, 720.0f);
    ImGui::SetNextWindowPos(ImVec2(display.x * 0.5f, display.y * 0.5f), ImGuiCond_FirstUseEver, ImVec2(0.5f, 0.5f));
    ImGui::SetNextWindowSize(ImVec2(side + 30.0f, side + 110.0f), ImGuiCond_FirstUseEver);
    bool open = true;
    const std::string title = "Attention maps - " + a.layer + "###attention";
    ImGui::Begin(title.c_str(), &open);
    if (!open) e.close = true;
    int h = head;
    ImGui::PushItemWidth(160);
    if (ImGui::SliderInt("head", &h, 0, a.heads - 1) && h != head) e.head = h;
    record("head");
    ImGui::PopItemWidth();
    ImGui::SameLine();
    ImGui::TextDisabled("of %d", a.heads);
    ImGui::TextDisabled("queries down, keys across; the mean over the batch");
    const auto map = headOf(a, head);
    const float avail = std::max(std::min(ImGui::GetContentRegionAvail().x, ImGui::GetContentRegionAvail().y - 24.0f), 64.0f);
    const PooledMap pooled = poolMap(map, a.queries, a.keys, int(avail));
    const float vmax = mapMax(pooled.values);
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    auto [r, c] = drawMap("##map", pooled, vmax, ImVec2(avail, avail));
    if (r >= 0) {
        const int q = r * pooled.blockRows, k = c * pooled.blockCols;
        if (pooled.blockRows == 1 && pooled.blockCols == 1)
            ImGui::SetTooltip("query %d -> key %d: %.4f", q, k, double(map[size_t(q) * size_t(a.keys) + size_t(k)]));
        else
            ImGui::SetTooltip("queries %d..%d -> keys %d..%d: mean %.4f", q, std::min(q + pooled.blockRows, a.queries) - 1,
                              k, std::min(k + pooled.blockCols, a.keys) - 1,
                              double(pooled.values[size_t(r) * size_t(pooled.cols) + size_t(c)]));
    }
    if (query >= 0 && query < a.queries) { // the selected neuron's row
        const float ch = avail / float(pooled.rows);
        const float y = p0.y + float(query / pooled.blockRows) * ch;
        ImGui::GetWindowDrawList()->AddRect(ImVec2(p0.x - 1, y - 1), ImVec2(p0.x + avail + 1, y + ch + 1),
                                            IM_COL32(80, 220, 255, 255), 0.0f, 0, 2.0f);
    }
    ImGui::Text("largest weight %.3g (brightest); colour: weight / largest, magma", double(vmax));
    ImGui::End();
    return e;
}

void enableItemRecording(bool on) {
    g_record = on;
    g_items.clear();
}
void recordLastItem(const char* label) {
    record(label);
}

const std::map<std::string, ItemRect>& recordedItems() {
    return g_items;
}

// --- View ---
ViewEdits viewPanel(const ViewSettings& in, const FrameStats& stats,
                    std::span<const std::string> statisticNames) {
    ViewEdits e;
    e.settings = in;
    ViewSettings& s = e.settings;
    ImVec2 display = ImGui::GetIO().DisplaySize;
    placeWindow(ImVec2(display.x - 10, 10), ImVec2(310, 0), ImVec2(1, 0));
    ImGui::Begin("View");
    ImGui::PushItemWidth(-110);
    if (stats.frameMs > 0.0f && stats.offscreen)
        ImGui::Text("offscreen picture: %.1f ms", stats.frameMs);
    else if (stats.frameMs > 0.0f)
        ImGui::Text("%.1f ms/frame (%.0f fps)", stats.frameMs, 1000.0f / stats.frameMs);
    ImGui::Text("%llu neurons, %llu drawn", (unsigned long long)stats.neuronsTotal,
                (unsigned long long)stats.instancesDrawn);
    if (!stats.device.empty()) {
        ImGui::TextDisabled("%s", stats.device.c_str());
        ImGui::TextDisabled("%.1f MiB of device memory", stats.gpuBytes / 1048576.0);
    }
    ImGui::Separator();
    if (!statisticNames.empty()) {
        int stat = std::clamp(s.statistic, 0, int(statisticNames.size()) - 1);
        if (ImGui::BeginCombo("colour by", statisticNames[size_t(stat)].c_str())) {
            for (int i = 0; i < int(statisticNames.size()); ++i)
                if (ImGui::Selectable(statisticNames[size_t(i)].c_str(), i == stat)) s.statistic = i;
            ImGui::EndCombo();
        }
        record("colour by");
    }
    if (ImGui::BeginCombo("colormap", colormapName(Colormap(s.colormap)))) {
        for (int i = 0; i < int(Colormap::Count); ++i)
            if (ImGui::Selectable(colormapName(Colormap(i)), i == s.colormap)) s.colormap = i;
        ImGui::EndCombo();
    }
    record("colormap");
    ImGui::Checkbox("lit spheres", &s.lit);
    record("lit spheres");
    ImGui::SliderFloat("splat below (px)", &s.splatBelowPixels, 0.0f, 4.0f, "%.1f");
    ImGui::Checkbox("edges", &s.showEdges);
    record("edges");
    ImGui::SliderFloat("edge threshold", &s.edgeThreshold, 0.0f, 1.0f, "%.2f");
    ImGui::SliderFloat("bundling", &s.bundlingStrength, 0.0f, 1.0f, "%.2f");
    ImGui::SliderInt("LOD budget", &s.lodBudget, 1000, 2000000, "%d", ImGuiSliderFlags_Logarithmic);
    ImGui::Checkbox("vsync", &s.vsync);
    record("vsync");
    if (button("fit (F)")) e.fitRequested = true;
    ImGui::SameLine();
    if (button("screenshot (F12)")) e.screenshotRequested = true;
    ImGui::PopItemWidth();
    ImGui::End();
    e.changed = !(s == in);
    return e;
}

// --- Training ---
TrainingEdits trainingPanel(const TrainingView& v) {
    TrainingEdits e;
    ImVec2 display = ImGui::GetIO().DisplaySize;
    placeWindow(ImVec2(10, 220), ImVec2(310, std::max(display.y - 230, 200.0f)));
    ImGui::Begin("Training");
    if (!v.available) {
        ImGui::TextDisabled("no training in this view");
        ImGui::End();
        return e;
    }
    ImGui::Text("%s on %s", v.model.c_str(), v.data.c_str());
    if (v.totalSteps > 0)
        ImGui::ProgressBar(float(v.step) / float(v.totalSteps), ImVec2(-1, 0),
                           (std::to_string(v.step) + " / " + std::to_string(v.totalSteps)).c_str());
    else
        ImGui::Text("step %lld", (long long)v.step);
    if (!v.status.empty()) ImGui::TextWrapped("%s", v.status.c_str());
    if (!v.finished && !v.recorded) {
        if (v.paused) {
            if (button("play")) e.play = true;
        } else {
            if (button("pause")) e.pause = true;
        }
        ImGui::SameLine();
        ImGui::BeginDisabled(!v.paused);
        if (button("step")) e.stepOnce = true;
        ImGui::EndDisabled();
    }
    if (v.recorded) {
        if (std::isfinite(v.learningRate)) ImGui::Text("learning rate %.5g", double(v.learningRate));
        ImGui::Text("batch size %d (of the recorded statistics)", v.batchSize);
    } else {
        float lr = v.learningRate;
        if (ImGui::InputFloat("learning rate", &lr, 0.0f, 0.0f, "%.5f", ImGuiInputTextFlags_EnterReturnsTrue) &&
            lr > 0)
            e.learningRate = lr;
        record("learning rate");
        ImGui::Text("batch size %d", v.batchSize);
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("fixed for a run: set it with --batch");
    }
    auto chart = [](const char* label, const std::vector<float>& a, const std::vector<float>& b,
                    const char* la, const char* lb) {
        // A curve with no finite value (accuracy of unlabelled inputs) is not drawn; the range and the last
        // values shown are those of the finite points ("n/a" when the last one is not).
        float lo = INFINITY, hi = -INFINITY;
        for (const auto* curve : {&a, &b})
            for (float x : *curve)
                if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
        if (a.empty() || lo > hi) return;
        auto last = [](const std::vector<float>& c) {
            char t[32];
            if (c.empty() || !std::isfinite(c.back())) return std::string("n/a");
            std::snprintf(t, sizeof t, "%.4g", double(c.back()));
            return std::string(t);
        };
        char overlay[96];
        if (b.empty())
            std::snprintf(overlay, sizeof(overlay), "%s %s", la, last(a).c_str());
        else
            std::snprintf(overlay, sizeof(overlay), "%s %s   %s %s", la, last(a).c_str(), lb, last(b).c_str());
        float w = std::max(ImGui::GetContentRegionAvail().x - 70.0f, 60.0f);
        ImGui::PlotLines(label, a.data(), int(a.size()), 0, overlay, lo, hi, ImVec2(w, 60));
        record(label);
        if (!b.empty()) {
            ImGui::PushStyleColor(ImGuiCol_PlotLines, ImVec4(1.0f, 0.6f, 0.25f, 1.0f));
            ImGui::PlotLines("##val", b.data(), int(b.size()), 0, nullptr, lo, hi, ImVec2(w, 40));
            ImGui::PopStyleColor();
        }
    };
    chart("loss", v.trainLoss, v.valLoss, "train", "val");
    chart("accuracy", v.trainAcc, v.valAcc, "train", "val");
    ImGui::End();
    return e;
}

// --- Layers ---
LayerEdits layerPanel(std::span<const LayerRow> layers, int selected, const std::string& filter,
                      std::span<const std::string> collapsed) {
    LayerEdits e;
    placeWindow(ImVec2(10, 10), ImVec2(310, 200));
    ImGui::Begin("Model");
    char buf[128];
    std::snprintf(buf, sizeof(buf), "%s", filter.c_str());
    ImGui::SetNextItemWidth(-1);
    if (ImGui::InputTextWithHint("##search", "search layers", buf, sizeof(buf))) e.filter = std::string(buf);
    record("search");
    auto row = [&](int i, const std::string& shown, float indent) {
        const LayerRow& l = layers[size_t(i)];
        ImGui::TableNextRow();
        ImGui::TableNextColumn();
        if (indent > 0) ImGui::Indent(indent);
        ImGui::PushID(i);
        if (ImGui::Selectable(shown.c_str(), i == selected,
                              ImGuiSelectableFlags_SpanAllColumns | ImGuiSelectableFlags_AllowDoubleClick)) {
            e.selected = i;
            if (ImGui::IsMouseDoubleClicked(0)) e.flyTo = true;
        }
        ImGui::PopID();
        record(l.name.c_str());
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip("%s (%s)\n%s, %lld parameters, %lld neurons\ndouble-click: fly there", l.name.c_str(),
                              l.type.c_str(), l.shape.c_str(), (long long)l.parameters, (long long)l.neurons);
        if (indent > 0) ImGui::Unindent(indent);
        ImGui::TableNextColumn();
        ImGui::TextUnformatted(l.shape.c_str());
        ImGui::TableNextColumn();
        ImGui::Text("%lld", (long long)l.parameters);
        ImGui::TableNextColumn();
        ImGui::Text("%lld", (long long)l.neurons);
    };
    if (ImGui::BeginTable("layers", 4,
                          ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_Resizable)) {
        ImGui::TableSetupColumn("layer", ImGuiTableColumnFlags_WidthStretch);
        ImGui::TableSetupColumn("output", ImGuiTableColumnFlags_WidthFixed, 78.0f);
        ImGui::TableSetupColumn("params", ImGuiTableColumnFlags_WidthFixed, 58.0f);
        ImGui::TableSetupColumn("neurons", ImGuiTableColumnFlags_WidthFixed, 58.0f);
        ImGui::TableHeadersRow();
        if (!filter.empty()) {
            for (int i = 0; i < int(layers.size()); ++i)
                if (layers[size_t(i)].name.find(filter) != std::string::npos) row(i, layers[size_t(i)].name, 0.0f);
        } else {
            // Stages: runs of consecutive layers sharing the first name component; one-layer stages are rows.
            const bool deep = layers.size() > 40;
            for (int i = 0; i < int(layers.size());) {
                const std::string& name = layers[size_t(i)].name;
                const std::string stage = name.substr(0, name.find('.'));
                const int j = int(stageEnd(size_t(i), layers.size(), [&](size_t k) -> const std::string& { return layers[k].name; }));
                if (j - i == 1) {
                    row(i, name, 0.0f);
                    ++i;
                    continue;
                }
                ImGui::TableNextRow();
                ImGui::TableNextColumn();
                ImGui::SetNextItemOpen(!deep, ImGuiCond_Once);
                const bool open = ImGui::TreeNodeEx(stage.c_str(), ImGuiTreeNodeFlags_SpanFullWidth, "%s (%d layers)",
                                                    stage.c_str(), j - i);
                record(("stage:" + stage).c_str());
                ImGui::TableNextColumn();
                const bool folded = std::find(collapsed.begin(), collapsed.end(), stage) != collapsed.end();
                ImGui::PushID(stage.c_str());
                if (ImGui::SmallButton(folded ? "unfold" : "fold")) e.toggleCollapse = stage;
                ImGui::PopID();
                record(("fold:" + stage).c_str());
                if (ImGui::IsItemHovered())
                    ImGui::SetTooltip(folded ? "draw %s's layers again" : "draw %s as one box in the scene", stage.c_str());
                if (open) {
                    for (int k = i; k < j; ++k)
                        row(k, layers[size_t(k)].name.substr(stage.size() + 1), 4.0f);
                    ImGui::TreePop();
                }
                i = j;
            }
        }
        ImGui::EndTable();
    }
    ImGui::End();
    return e;
}

// --- Inspector ---
InspectorEdits inspectorPanel(const InspectorView& v) {
    InspectorEdits e;
    ImVec2 display = ImGui::GetIO().DisplaySize;
    placeWindow(ImVec2(display.x - 10, display.y - 10), ImVec2(310, std::max(display.y - 380, 200.0f)),
                ImVec2(1, 1));
    ImGui::Begin("Layer inspector");
    if (!v.selectedNeuron.empty()) {
        ImGui::TextColored(ImVec4(1.0f, 0.85f, 0.4f, 1.0f), "selected %s", v.selectedNeuron.c_str());
        if (!v.seriesMean.empty()) {
            float lo = INFINITY, hi = -INFINITY;
            for (size_t i = 0; i < v.seriesMean.size(); ++i) {
                if (std::isfinite(v.seriesMin[i])) lo = std::min(lo, v.seriesMin[i]);
                if (std::isfinite(v.seriesMax[i])) hi = std::max(hi, v.seriesMax[i]);
            }
            char overlay[128];
            std::snprintf(overlay, sizeof overlay, "steps %lld..%lld  [%.3g, %.3g]", (long long)v.seriesFirstStep,
                          (long long)v.seriesLastStep, double(lo), double(hi));
            ImGui::PlotLines("##series", v.seriesMean.data(), int(v.seriesMean.size()), 0, overlay,
                             std::isfinite(lo) ? lo : FLT_MAX, std::isfinite(hi) ? hi : FLT_MAX,
                             ImVec2(std::max(ImGui::GetContentRegionAvail().x, 200.0f), 60));
            if (ImGui::IsItemHovered())
                ImGui::SetTooltip("mean activation of this neuron over the whole run (%zu points%s)",
                                  v.seriesMean.size(),
                                  v.seriesLevel > 0 ? ("; each the mean of " + std::to_string(1 << v.seriesLevel) +
                                                       " snapshots").c_str()
                                                    : "");
        }
        for (const auto& c : v.contributors)
            ImGui::BulletText("%s", c.c_str());
        if (button("clear selection")) e.clearSelection = true;
        ImGui::Separator();
    }
    if (v.layer.empty()) {
        ImGui::TextDisabled("select a layer (Model panel) or click a neuron");
        ImGui::End();
        return e;
    }
    ImGui::Text("%s at step %lld", v.layer.c_str(), (long long)v.step);
    ImGui::Text("dead neurons %.1f%%   |grad|/|w| %.2e", v.deadFraction * 100.0f, v.updateRatio);
    if (v.timelineSize > 1) {
        int t = v.timelineIndex;
        if (ImGui::SliderInt("timeline", &t, 0, v.timelineSize - 1)) e.timelineIndex = t;
        record("timeline");
        if (button("replay")) e.replay = true;
        ImGui::SameLine();
        if (!v.compareStep) {
            if (button("compare with this")) e.compareIndex = v.timelineIndex;
        } else if (button("clear comparison")) {
            e.compareIndex = -1;
        }
    }
    bool compare = v.compareStep.has_value();
    float w = compare ? (ImGui::GetContentRegionAvail().x - 8) * 0.5f : ImGui::GetContentRegionAvail().x;
    auto row = [&](const char* title, const Histogram& a, const Histogram& b) {
        ImGui::TextUnformatted(title);
        drawHistogram((std::string("##a") + title).c_str(), a, ImVec2(w, 60));
        if (compare) {
            ImGui::SameLine();
            drawHistogram((std::string("##b") + title).c_str(), b, ImVec2(w, 60));
        }
    };
    if (compare)
        ImGui::Text("left: step %lld   right: step %lld", (long long)v.step, (long long)*v.compareStep);
    row("activations", v.activations, v.compareActivations);
    row("gradients", v.gradients, v.compareGradients);
    row("weights", v.weights, v.compareWeights);
    if (!v.gradNormHistory.empty())
        ImGui::PlotLines("|grad| over time", v.gradNormHistory.data(), int(v.gradNormHistory.size()), 0,
                         nullptr, FLT_MAX, FLT_MAX, ImVec2(-1, 50));
    if (v.attention && !v.attention->empty()) {
        ImGui::Separator();
        e.openAttentionHead = attentionThumbnails(*v.attention);
    }
    ImGui::End();
    return e;
}

// --- Health ---
std::optional<int> healthPanel(std::span<const HealthAlert> alerts) {
    std::optional<int> clicked;
    if (alerts.empty()) return clicked;
    ImVec2 display = ImGui::GetIO().DisplaySize;
    placeWindow(ImVec2(display.x * 0.5f, 10), ImVec2(std::min(440.0f, display.x - 680.0f), 0),
                ImVec2(0.5f, 0));
    ImGui::Begin("Health", nullptr, ImGuiWindowFlags_AlwaysAutoResize);
    // Errors first, then in the order they were raised; beyond kShown the rest fold away, so a model with
    // many flagged layers does not cover the scene.
    constexpr size_t kShown = 5;
    std::vector<int> order(alerts.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_partition(order.begin(), order.end(),
                          [&](int i) { return alerts[size_t(i)].severity == Severity::Error; });
    auto row = [&](int i) {
        const HealthAlert& a = alerts[size_t(i)];
        ImVec4 col = a.severity == Severity::Error     ? ImVec4(1.0f, 0.35f, 0.3f, 1.0f)
                     : a.severity == Severity::Warning ? ImVec4(1.0f, 0.78f, 0.3f, 1.0f)
                                                       : ImVec4(0.6f, 0.8f, 1.0f, 1.0f);
        ImGui::PushStyleColor(ImGuiCol_Text, col);
        std::string label =
            a.message + " - " + a.layer + " @ step " + std::to_string(a.step) + "##" + std::to_string(i);
        if (ImGui::Selectable(label.c_str())) clicked = i;
        record(("alert" + std::to_string(i)).c_str());
        ImGui::PopStyleColor();
    };
    for (size_t k = 0; k < std::min(kShown, order.size()); ++k)
        row(order[k]);
    if (order.size() > kShown) {
        const std::string more = std::to_string(order.size() - kShown) + " more alerts###more alerts";
        const bool open = ImGui::TreeNode(more.c_str());
        record("more alerts");
        if (open) {
            for (size_t k = kShown; k < order.size(); ++k)
                row(order[k]);
            ImGui::TreePop();
        }
    }
    ImGui::End();
    return clicked;
}

// --- Landscape ---
LandscapeEdits landscapePanel(const LandscapeView& v) {
    LandscapeEdits e;
    e.settings = v.settings;
    LandscapeSettings& s = e.settings;
    placeWindow(ImVec2(10, 10), ImVec2(320, 0));
    ImGui::Begin("Loss landscape", nullptr, ImGuiWindowFlags_AlwaysAutoResize);
    ImGui::PushItemWidth(200);
    ImGui::SliderInt("grid", &s.grid, 5, 101);
    ImGui::SliderFloat("range", &s.range, 0.1f, 3.0f, "+-%.2f");
    const char* norms[] = {"filter", "layer", "weight", "none"};
    ImGui::Combo("normalisation", &s.norm, norms, 4);
    ImGui::Checkbox("log scale", &s.logScale);
    if (v.computing) {
        ImGui::ProgressBar(v.progress, ImVec2(-1, 0));
        if (button("cancel")) e.cancel = true;
    } else if (button("recompute")) {
        e.recompute = true;
    }
    if (v.minLoss) {
        ImGui::Text("minimum loss %.4g", *v.minLoss);
        ImGui::SameLine();
        if (button("fly to minimum")) e.flyToMinimum = true;
    }
    if (!v.status.empty()) {
        ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + 300.0f);
        ImGui::TextUnformatted(v.status.c_str());
        ImGui::PopTextWrapPos();
    }
    if (!v.spectrum.empty()) {
        ImGui::TextUnformatted("Hessian eigenvalue density (log10)");
        ImGui::PlotLines("##esd", v.spectrum.data(), int(v.spectrum.size()), 0, nullptr, -10.0f, FLT_MAX,
                         ImVec2(300, 70));
        ImGui::Text("eigenvalue %.3g .. %.3g", v.spectrumMin, v.spectrumMax);
    }
    ImGui::Separator();
    if (button("add keyframe")) e.addKeyframe = true;
    if (v.keyframes > 0) {
        ImGui::SameLine();
        if (button("clear keyframes")) e.clearKeyframes = true;
        ImGui::Text("%d keyframe%s in %s", v.keyframes, v.keyframes == 1 ? "" : "s", v.keyframesPath.c_str());
        ImGui::TextDisabled("record: --record flight.mp4 --keyframes <that file>");
    } else {
        ImGui::TextDisabled("K adds the current view as a fly-through keyframe");
    }
    ImGui::PopItemWidth();
    ImGui::End();
    return e;
}

int sceneLabels(std::span<const SceneLabel> labels, const float* m, float width, float height, float minPixels,
                std::vector<PlacedLabel>* where) {
    struct Placed {
        float x0, y0, x1, y1;
    };
    std::vector<Placed> placed;
    if (where) where->clear();
    const ImGuiIO& io = ImGui::GetIO();
    std::vector<size_t> order(labels.size());
    for (size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (labels[a].priority != labels[b].priority) return labels[a].priority < labels[b].priority;
        if (labels[a].always != labels[b].always) return labels[a].always; // the ends before other layers
        return labels[a].worldSize > labels[b].worldSize;
    });
    ImDrawList* draw = ImGui::GetBackgroundDrawList();
    int drawn = 0;
    for (size_t i : order) {
        const SceneLabel& l = labels[i];
        const float* p = l.anchor;
        const float cx = m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12];
        const float cy = m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13];
        const float cw = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
        if (cw <= 1e-6f) continue;
        const float sx = (cx / cw * 0.5f + 0.5f) * width, sy = (cy / cw * 0.5f + 0.5f) * height;
        // Projected height of the named box: world size over distance, scaled like the projection's y.
        const float pixels = l.worldSize * std::fabs(m[5]) / cw * 0.5f * height;
        if (pixels < minPixels && l.priority > 0 && !l.always) continue;
        const float scale = l.priority == 0 ? 1.15f : 1.0f;
        const ImVec2 size = ImGui::CalcTextSize(l.text.c_str());
        const float w = size.x * scale, h = size.y * scale;
        Placed r{sx - 0.5f * w - 3, sy - h - 4, sx + 0.5f * w + 3, sy};
        if (r.x1 < 0 || r.y1 < 0 || r.x0 > width || r.y0 > height) continue;
        bool overlaps = false;
        for (const Placed& q : placed)
            overlaps = overlaps || !(r.x1 < q.x0 || q.x1 < r.x0 || r.y1 < q.y0 || q.y1 < r.y0);
        if (overlaps) continue;
        placed.push_back(r);
        if (where) where->push_back({i, r.x0, r.y0, r.x1, r.y1});
        const ImU32 bg = l.priority == 0 ? IM_COL32(20, 24, 34, 200) : IM_COL32(20, 24, 34, 150);
        const ImU32 fg = l.priority == 0 ? IM_COL32(255, 214, 120, 255) : IM_COL32(225, 230, 240, 255);
        draw->AddRectFilled(ImVec2(r.x0, r.y0), ImVec2(r.x1, r.y1), bg, 3.0f);
        const bool hovered = l.foldable && !io.WantCaptureMouse && io.MousePos.x >= r.x0 && io.MousePos.x <= r.x1 &&
                             io.MousePos.y >= r.y0 && io.MousePos.y <= r.y1;
        if (hovered) {
            draw->AddRect(ImVec2(r.x0 - 1, r.y0 - 1), ImVec2(r.x1 + 1, r.y1 + 1), IM_COL32(255, 214, 120, 255), 3.0f);
            ImGui::SetTooltip("%s: click to fold it into one box, or to unfold it",
                              (l.name.empty() ? l.text : l.name).c_str());
        }
        draw->AddText(ImGui::GetFont(), ImGui::GetFontSize() * scale, ImVec2(r.x0 + 3, r.y0 + 2), fg, l.text.c_str());
        ++drawn;
    }
    return drawn;
}

std::optional<size_t> foldableLabelAt(std::span<const SceneLabel> labels, std::span<const PlacedLabel> placed,
                                      float x, float y) {
    for (const auto& p : placed)
        if (p.index < labels.size() && labels[p.index].foldable && x >= p.x0 && x <= p.x1 && y >= p.y0 && y <= p.y1)
            return p.index;
    return std::nullopt;
}


// A picture the session computes (Explain, Loss landscape): its error in red, "computing" until the first one,
// else its line and the picture at the largest size that fits, keeping its aspect.
static void computedPicture(int64_t step, const std::string& line, const std::string& error,
                     const std::shared_ptr<const PanelImage>& image, const char* itemLabel) {
    if (!error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1.0f, 0.45f, 0.4f, 1.0f));
        ImGui::TextWrapped("%s", error.c_str());
        ImGui::PopStyleColor();
        return;
    }
    if (!image) {
        ImGui::TextDisabled("computing at the next snapshot ...");
        return;
    }
    if (step >= 0) ImGui::Text("step %lld: %s", static_cast<long long>(step), line.c_str());
    else ImGui::Text("%s", line.c_str());
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float scale = std::max(0.1f, std::min(avail.x / float(image->width), avail.y / float(image->height)));
    const ImVec2 size(float(image->width) * scale, float(image->height) * scale);
    const ImVec2 p0 = ImGui::GetCursorScreenPos();
    drawPanelImage(ImGui::GetWindowDrawList(), image, p0, ImVec2(p0.x + size.x, p0.y + size.y));
    ImGui::Dummy(size);
    recordLastItem(itemLabel);
}

ExplainEdits explainPanel(const ExplainView& v) {
    ExplainEdits e{v.method, v.target, v.sample, false};
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    if (v.fill) {
        ImGui::SetNextWindowPos(ImVec2(0, 0));
        ImGui::SetNextWindowSize(display);
    } else {
        ImGui::SetNextWindowPos(ImVec2(display.x - 12, 40), ImGuiCond_FirstUseEver, ImVec2(1, 0));
        ImGui::SetNextWindowSize(ImVec2(420, 300), ImGuiCond_FirstUseEver);
    }
    ImGui::Begin("Explain", nullptr, v.fill ? ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize : 0);
    ImGui::SetNextItemWidth(140);
    if (ImGui::Combo("method", &e.method, kExplainMethods, kExplainMethodCount)) e.changed = true;
    recordLastItem("explain.method");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(100);
    if (ImGui::InputInt("class", &e.target)) {
        e.target = std::clamp(e.target, -1, std::max(0, v.classes - 1));
        e.changed = true;
    }
    recordLastItem("explain.class");
    if (v.samples > 1) {
        ImGui::SetNextItemWidth(260);
        if (ImGui::SliderInt("sample", &e.sample, 0, v.samples - 1)) e.changed = true;
        recordLastItem("explain.sample");
    }
    ImGui::TextDisabled(v.live ? "class -1: the predicted one; recomputed at every snapshot of training"
                               : "class -1: the predicted one");
    computedPicture(v.step, v.line, v.error, v.image, "explain.image");
    ImGui::End();
    return e;
}

LiveLandscapeEdits liveLandscapePanel(const LiveLandscapeView& v) {
    LiveLandscapeEdits e{v.every, v.grid, false};
    const ImVec2 display = ImGui::GetIO().DisplaySize;
    if (v.fill) {
        ImGui::SetNextWindowPos(ImVec2(0, 0));
        ImGui::SetNextWindowSize(display);
    } else {
        ImGui::SetNextWindowPos(ImVec2(display.x - 12, 360), ImGuiCond_FirstUseEver, ImVec2(1, 0));
        ImGui::SetNextWindowSize(ImVec2(460, 420), ImGuiCond_FirstUseEver);
    }
    ImGui::Begin("Landscape (live)", nullptr, v.fill ? ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoResize : 0);
    if (v.live) {
        ImGui::SetNextItemWidth(140);
        if (ImGui::SliderInt("every N snapshots", &e.every, 1, 50)) e.changed = true;
        recordLastItem("landscape.every");
        ImGui::SameLine();
    }
    ImGui::SetNextItemWidth(120);
    if (ImGui::SliderInt("grid", &e.grid, 7, 41)) e.changed = true;
    recordLastItem("landscape.grid");
    ImGui::TextDisabled(v.live ? "axes: PCA of the weights at each snapshot since opened; L toggles this view"
                               : "random filter-normalised directions around the model");
    if (v.computing) ImGui::TextDisabled("computing a new surface beside training ...");
    if (!v.computing || v.image || !v.error.empty())
        computedPicture(v.step, v.line, v.error, v.image, "landscape.image");
    ImGui::End();
    return e;
}

} // namespace ts::ui
