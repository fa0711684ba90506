// `project --3d`: the point cloud in a window (hover shows a point's sample, a click keeps it) or, without a
// display, one picture rendered offscreen with the legend and the selected sample's card.
#include <cstdio>

#include <imgui.h>

#include "app/commands.hpp"
#include "app/projection_view.hpp"
#include "app/viewer.hpp"
#include "engine/core/colormap.hpp"
#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/target.hpp"
#include "engine/ui/panel_images.hpp"

namespace ts::app {

using namespace ts::render;

namespace {

NeuronStyle cloudStyle() {
    NeuronStyle s;
    s.colormap = Colormap::Tab10;
    s.valueMin = 0.0f;
    s.valueMax = 1.0f;
    s.lit = true;
    return s;
}

Camera cloudCamera(const Aabb& bounds, float aspect) {
    Camera cam;
    cam.yaw = 0.45f;
    cam.pitch = 0.3f;
    cam.fitToScene(bounds, aspect);
    return cam;
}

int headless(const explain::ProjectionCloud& cloud, const CloudDisplay& d) {
    const auto sc = buildCloudScene(cloud, d.select);
    auto ctx = Context::create({});
    if (!ctx) return reportError(ctx.error());
    auto target = OffscreenTarget::create(**ctx, d.width, d.height);
    if (!target) return reportError(target.error());
    auto pass = NeuronPass::create(**ctx, kColorFormat, 1);
    if (!pass) return reportError(pass.error());
    if (auto st = (*pass)->setInstances(sc.instances); !st) return reportError(st.error());
    (*pass)->setStyle(cloudStyle());
    const float aspect = float(d.width) / float(d.height);
    const Camera cam = cloudCamera(sc.bounds, aspect);
    auto frame = (*target)->beginFrame();
    if (!frame) return reportError(frame.error());
    if (auto st = (*pass)->prepare(*frame, cam); !st) return reportError(st.error());
    beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
    (*pass)->record(*frame, cam);
    endRendering(*frame);
    ImageRgba8 img;
    if (auto st = (*target)->endFrame(*frame, &img); !st) return reportError(st.error());
    glm::vec2 pixel(0.0f);
    if (d.select) {
        const glm::vec4 p = projectToPixels(cam.projection(aspect) * cam.view(), sc.positions[*d.select], float(d.width),
                                            float(d.height));
        pixel = glm::vec2(p);
    }
    drawCloudOverlay(img, cloud, d.select, pixel);
    if ((*ctx)->validationMessageCount() > 0)
        return reportError(makeError(ErrorKind::Failed, "Vulkan validation messages (see above)"));
    if (auto st = writePng(d.out, img); !st) return reportError(st.error());
    TS_LOG_INFO("wrote %s (3D view of %lld points%s)", d.out.c_str(), static_cast<long long>(cloud.points.rows),
                d.select ? (", selected " + sampleText(cloud, *d.select) + " at pixel " +
                            std::to_string(int(pixel.x)) + "," + std::to_string(int(pixel.y)))
                               .c_str()
                         : "");
    return 0;
}

int window(const explain::ProjectionCloud& cloud, const CloudDisplay& d) {
    auto viewer = Viewer::create(ViewerOptions::make("tensorscape project", d.width, d.height, d.frames, d.screenshot));
    if (!viewer) return reportError(viewer.error());
    Viewer& v = **viewer;
    std::optional<size_t> selected = d.select, hovered, lastHovered;
    CloudScene sc = buildCloudScene(cloud, selected);
    if (auto st = v.neurons().setInstances(sc.instances); !st) return reportError(st.error());
    v.neurons().setStyle(cloudStyle());
    v.sceneBounds = sc.bounds;
    v.camera() = cloudCamera(sc.bounds, v.aspect());
    Status failure;
    std::optional<size_t> shownCard;
    std::shared_ptr<const ui::PanelImage> card;
    auto s = v.run(
        [&](float) {},
        [&](const Frame&) {},
        [&] {
            const ImGuiIO& io = ImGui::GetIO();
            hovered.reset();
            if (!io.WantCaptureMouse && io.MousePos.x >= 0 && io.MousePos.y >= 0)
                hovered = pickPoint(sc.positions, sc.radius, v.camera(), io.DisplaySize.x, io.DisplaySize.y,
                                    io.MousePos.x, io.MousePos.y);
            if (hovered != lastHovered && hovered) TS_LOG_DEBUG("pointing at %s", sampleText(cloud, *hovered).c_str());
            lastHovered = hovered;
            if (hovered && ImGui::IsMouseClicked(0) && selected != hovered) {
                selected = hovered;
                sc = buildCloudScene(cloud, selected);
                if (auto st = v.neurons().setInstances(sc.instances); !st && failure.isOk()) failure = st;
                TS_LOG_INFO("selected %s", sampleText(cloud, *selected).c_str());
            }
            ImGui::SetNextWindowPos(ImVec2(10, 10), ImGuiCond_FirstUseEver);
            ImGui::Begin("Projection", nullptr, ImGuiWindowFlags_AlwaysAutoResize);
            ImGui::TextUnformatted(cloud.title.c_str());
            ImGui::TextDisabled("x %s, y %s, z %s", cloud.axes[0].c_str(), cloud.axes[1].c_str(), cloud.axes[2].c_str());
            int64_t classes = int64_t(cloud.classNames.size());
            for (int64_t l : cloud.labels)
                classes = std::max(classes, l + 1);
            for (int64_t c = 0; c < classes; ++c) {
                const Rgb8 col = sampleColormap(Colormap::Tab10, tab10KeyOf(c));
                ImGui::ColorButton(("##class" + std::to_string(c)).c_str(), ImVec4(col.r / 255.f, col.g / 255.f, col.b / 255.f, 1),
                                   ImGuiColorEditFlags_NoTooltip, ImVec2(10, 10));
                ImGui::SameLine();
                ImGui::TextUnformatted(size_t(c) < cloud.classNames.size() ? cloud.classNames[size_t(c)].c_str()
                                                                           : std::to_string(c).c_str());
            }
            ImGui::Separator();
            const std::optional<size_t> show = hovered ? hovered : selected;
            if (show) {
                if (show != shownCard) {
                    const ImageRgba8 thumb = sampleThumbnail(cloud, *show, 112);
                    card = thumb.width > 0 ? ui::panelImageOf(thumb) : nullptr;
                    shownCard = show;
                }
                const std::string line = std::string(hovered ? "under the pointer: " : "selected: ") + sampleText(cloud, *show);
                ImGui::TextUnformatted(line.c_str());
                if (card) {
                    const ImVec2 p0 = ImGui::GetCursorScreenPos();
                    ui::drawPanelImage(ImGui::GetWindowDrawList(), card, p0,
                                       ImVec2(p0.x + float(card->width), p0.y + float(card->height)));
                    ImGui::Dummy(ImVec2(float(card->width), float(card->height)));
                }
            } else {
                ImGui::TextDisabled("point at a sample to see it; click to keep it");
            }
            ImGui::End();
        });
    return windowExitCode(v, s, failure);
}

} // namespace

int showProjectionCloud(const explain::ProjectionCloud& cloud, const CloudDisplay& d) {
    if (d.select && *d.select >= size_t(cloud.points.rows))
        return reportError(makeError(ErrorKind::Usage, "--select " + std::to_string(*d.select) + ": there are " +
                                                           std::to_string(cloud.points.rows) + " points"));
    if (d.headless || !displayAvailable()) {
        if (!d.headless) TS_LOG_INFO("no display: rendering the 3D view offscreen into %s", d.out.c_str());
        return headless(cloud, d);
    }
    return window(cloud, d);
}

} // namespace ts::app
