// `neurogram --3d`: the graph in a window (hover a layer node for its numbers; a table of every layer; a step
// slider over a run's checkpoints) or, without a display, one picture rendered offscreen with its labels.
#include <cstdio>

#include <imgui.h>

#include "app/commands.hpp"
#include "app/neurogram_view.hpp"
#include "app/viewer.hpp"
#include "engine/core/colormap.hpp"
#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/edge_pass.hpp"
#include "engine/render/target.hpp"

namespace ts::app {

using namespace ts::render;

namespace {

NeuronStyle nodeStyle() {
    NeuronStyle s;
    s.colormap = Colormap::Inferno;
    s.valueMin = 0.0f;
    s.valueMax = 1.0f;
    return s;
}

EdgeStyle linkStyle() {
    EdgeStyle s;
    s.colormap = Colormap::CoolWarm; // brighter ends than rdbu on the dark background
    s.minWidthPixels = 0.75f;
    s.maxWidthPixels = 7.0f;
    s.alpha = 0.75f;
    s.threshold = 0.01f;
    return s;
}

Camera graphCamera(const Aabb& bounds, float aspect) {
    Camera cam;
    cam.yaw = 0.25f;
    cam.pitch = 0.2f;
    cam.fitToScene(bounds, aspect);
    return cam;
}

int headless(const explain::NeurogramStep& step, const std::string& title, const Display3d& d) {
    const auto sc = buildNeurogramScene(step.graph);
    auto ctx = Context::create({});
    if (!ctx) return reportError(ctx.error());
    auto target = OffscreenTarget::create(**ctx, d.width, d.height);
    if (!target) return reportError(target.error());
    auto nodes = NeuronPass::create(**ctx, kColorFormat, 1);
    if (!nodes) return reportError(nodes.error());
    auto links = EdgePass::create(**ctx, kColorFormat, 1);
    if (!links) return reportError(links.error());
    if (auto st = (*nodes)->setInstances(sc.nodes); !st) return reportError(st.error());
    (*nodes)->setStyle(nodeStyle());
    if (auto st = (*links)->setPolylines(sc.links); !st) return reportError(st.error());
    (*links)->setStyle(linkStyle());
    const float aspect = float(d.width) / float(d.height);
    const Camera cam = graphCamera(sc.bounds, aspect);
    auto frame = (*target)->beginFrame();
    if (!frame) return reportError(frame.error());
    if (auto st = (*nodes)->prepare(*frame, cam); !st) return reportError(st.error());
    beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
    (*links)->record(*frame, cam);
    (*nodes)->record(*frame, cam);
    endRendering(*frame);
    ImageRgba8 img;
    if (auto st = (*target)->endFrame(*frame, &img); !st) return reportError(st.error());
    drawNeurogramOverlay(img, step.graph, sc, cam, title);
    if ((*ctx)->validationMessageCount() > 0)
        return reportError(makeError(ErrorKind::Failed, "Vulkan validation messages (see above)"));
    if (auto st = writePng(d.out, img); !st) return reportError(st.error());
    TS_LOG_INFO("wrote %s (3D neurogram: %zu layers, %zu links)", d.out.c_str(), step.graph.layers.size(),
                sc.links.lines.size());
    return 0;
}

int window(const std::vector<explain::NeurogramStep>& steps, const std::string& title, const Display3d& d) {
    auto viewer = Viewer::create(ViewerOptions::make("tensorscape neurogram", d.width, d.height, d.frames, d.screenshot));
    if (!viewer) return reportError(viewer.error());
    Viewer& v = **viewer;
    int shown = int(steps.size()) - 1, built = -1;
    NeurogramScene sc;
    Status failure;
    std::optional<size_t> lastHovered;
    auto rebuild = [&] {
        sc = buildNeurogramScene(steps[size_t(shown)].graph);
        for (Status st : {v.neurons().setInstances(sc.nodes), v.network().setEdges(sc.links)})
            if (!st && failure.isOk()) failure = st;
        if (!failure.isOk()) v.requestClose();
        if (built < 0) { // the graph in the left part of the window, the panel on the right
            v.camera() = graphCamera(sc.bounds, v.aspect() * 0.6f);
            v.camera().target.x += 0.35f * sc.bounds.extent().x;
        }
        v.sceneBounds = sc.bounds;
        built = shown;
    };
    rebuild();
    v.neurons().setStyle(nodeStyle());
    v.network().edges().setStyle(linkStyle());
    v.network().showEdges = true;
    auto s = v.run(
        [&](float) {
            if (shown != built) rebuild();
        },
        [&](const Frame&) {},
        [&] {
            const explain::Neurogram& g = steps[size_t(shown)].graph;
            const ImGuiIO& io = ImGui::GetIO();
            const float w = io.DisplaySize.x, h = io.DisplaySize.y;
            // Labels at the nodes: KPIs and the named layers.
            const glm::mat4 vp = v.camera().projection(w / h) * v.camera().view();
            ImDrawList* fg = ImGui::GetBackgroundDrawList();
            auto label = [&](glm::vec3 p, float dy, const std::string& text, ImU32 colour) {
                const glm::vec4 q = projectToPixels(vp, p, w, h);
                if (q.w <= 0) return;
                const ImVec2 size = ImGui::CalcTextSize(text.c_str());
                fg->AddText(ImVec2(q.x - size.x / 2, q.y + dy), colour, text.c_str());
            };
            for (size_t k = 0; k < sc.kpiPositions.size(); ++k)
                label(sc.kpiPositions[k], -34.0f, sc.kpiLabels[k], IM_COL32(230, 230, 235, 255));
            for (size_t i : sc.labelled)
                label(sc.layerPositions[i], i % 2 == 0 ? 14.0f : -28.0f, g.layers[i].name,
                      i % 2 == 0 ? IM_COL32(230, 230, 235, 255) : IM_COL32(160, 160, 170, 255));
            std::optional<size_t> hovered;
            if (!io.WantCaptureMouse && io.MousePos.x >= 0) hovered = pickLayer(sc, v.camera(), w, h, io.MousePos.x, io.MousePos.y);
            if (hovered != lastHovered && hovered) TS_LOG_DEBUG("pointing at %s", layerLine(g.layers[*hovered]).c_str());
            lastHovered = hovered;
            if (hovered) ImGui::SetTooltip("%s", layerLine(g.layers[*hovered]).c_str());

            const float panelW = std::min(600.0f, w * 0.4f);
            ImGui::SetNextWindowPos(ImVec2(w - panelW - 10, 10), ImGuiCond_FirstUseEver);
            ImGui::SetNextWindowSize(ImVec2(panelW, std::min(520.0f, h - 20)), ImGuiCond_FirstUseEver);
            ImGui::Begin("Neurogram");
            ImGui::TextWrapped("%s", title.c_str());
            if (steps.size() > 1) {
                int k = shown;
                ImGui::SliderInt("checkpoint", &k, 0, int(steps.size()) - 1, ("step " + std::to_string(steps[size_t(k)].step)).c_str());
                shown = std::clamp(k, 0, int(steps.size()) - 1);
            }
            ImGui::Text("validation accuracy %.1f%%, loss %.4g; training accuracy %.1f%%", 100 * g.validation.accuracy,
                        g.validation.loss, 100 * g.train.accuracy);
            for (const auto& st : g.stability)
                ImGui::TextDisabled("%s %.3g: accuracy %.1f%%", st.corruption.c_str(), st.strength, 100 * st.accuracy);
            ImGui::TextDisabled("%lld parameters, %lld FLOPs per sample, %.3g ms per sample", static_cast<long long>(g.params),
                                static_cast<long long>(g.flops), g.latencyMs);
            if (ImGui::BeginTable("layers", 5, ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV,
                                  ImVec2(0, 220))) {
                ImGui::TableSetupScrollFreeze(0, 1);
                for (const char* c : {"layer", "type", "params", "accuracy", "loss (first-order)"})
                    ImGui::TableSetupColumn(c);
                ImGui::TableHeadersRow();
                for (size_t i = 0; i < g.layers.size(); ++i) {
                    const auto& l = g.layers[i];
                    ImGui::TableNextRow();
                    if (hovered && *hovered == i)
                        ImGui::TableSetBgColor(ImGuiTableBgTarget_RowBg0, IM_COL32(90, 60, 40, 255));
                    ImGui::TableNextColumn();
                    ImGui::TextUnformatted(l.name.c_str());
                    ImGui::TableNextColumn();
                    ImGui::TextUnformatted(l.type.c_str());
                    ImGui::TableNextColumn();
                    ImGui::Text("%lld", static_cast<long long>(l.params));
                    ImGui::TableNextColumn();
                    if (l.ablated) ImGui::Text("%+.1f pt", -100 * l.accuracyDrop);
                    else ImGui::TextDisabled("-");
                    ImGui::TableNextColumn();
                    if (l.ablated) ImGui::Text("%+.4g (%+.4g)", l.lossIncrease, l.taylorLossIncrease);
                    else ImGui::TextDisabled("%s", l.note.c_str());
                }
                ImGui::EndTable();
            }
            for (const auto& diag : g.diagnoses)
                ImGui::TextWrapped("- %s", diag.c_str());
            ImGui::End();
        });
    return windowExitCode(v, s, failure);
}

} // namespace

int showNeurogram3d(const std::vector<explain::NeurogramStep>& steps, const std::string& title, const Display3d& d) {
    if (steps.empty()) return reportError(makeError(ErrorKind::Failed, "no neurogram to show"));
    if (d.headless || !displayAvailable()) {
        if (!d.headless) TS_LOG_INFO("no display: rendering the 3D neurogram offscreen into %s", d.out.c_str());
        return headless(steps.back(), title, d);
    }
    return window(steps, title, d);
}

} // namespace ts::app
