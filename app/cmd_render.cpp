// `render` and the renderer-only `demo`: a generated network scene, headless to PNG or in a window.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli.hpp"
#include "app/commands.hpp"
#include "app/viewer.hpp"
#include "engine/core/log.hpp"
#include "engine/render/synthetic_scene.hpp"
#include "engine/ui/panels.hpp"

namespace ts::app {

using namespace ts::render;

int reportError(const ts::Error& e) {
    std::fprintf(stderr, "tensorscape: error: %s\n", e.message.c_str());
    return e.exitCode();
}

namespace {

const CommandSpec kRenderSpec{
    "render",
    "Renders a generated network-shaped scene of N neurons offscreen and writes a PNG.",
    "tensorscape render [--out FILE.png] [--width W] [--height H] [--neurons N] [options]",
    {
        {"out", "PATH", "PNG file to write", "out/render.png"},
        {"width", "W", "image width in pixels", "1280"},
        {"height", "H", "image height in pixels", "720"},
        {"neurons", "N", "number of neurons in the generated scene", "20000"},
        {"seed", "N", "random seed of the generated values", "1"},
        {"colormap", "NAME", "viridis, magma, inferno, plasma, cividis, rdbu, coolwarm", "rdbu"},
        {"flat", "", "flat colormap colours instead of lit spheres", ""},
        {"yaw", "DEG", "camera yaw around the scene", "35"},
        {"pitch", "DEG", "camera pitch above the horizon", "20"},
        {"headless", "", "always render offscreen (render is offscreen anyway)", ""},
    }};

struct SceneView {
    Colormap colormap = Colormap::RdBu;
    bool lit = true;
    float yawDeg = 35.0f, pitchDeg = 20.0f;
};

Expected<SceneView> parseView(const Args& args) {
    SceneView v;
    auto map = colormapFromName(args.get("colormap", "rdbu"));
    if (!map) return makeError(ErrorKind::Usage, "unknown --colormap '" + args.get("colormap") +
                                                      "' (viridis, magma, inferno, plasma, cividis, rdbu, coolwarm)");
    v.colormap = *map;
    v.lit = !args.has("flat");
    auto yaw = args.getFloat("yaw", 35.0);
    if (!yaw) return yaw.error();
    auto pitch = args.getFloat("pitch", 20.0);
    if (!pitch) return pitch.error();
    v.yawDeg = float(*yaw);
    v.pitchDeg = float(*pitch);
    return v;
}

Camera sceneCamera(const SyntheticScene& scene, const SceneView& v, float aspect) {
    Camera cam;
    cam.yaw = glm::radians(v.yawDeg);
    cam.pitch = glm::radians(v.pitchDeg);
    cam.fitToScene(scene.bounds, aspect);
    return cam;
}

NeuronStyle sceneStyle(const SyntheticScene& scene, const SceneView& v) {
    NeuronStyle s;
    s.colormap = v.colormap;
    s.valueMin = scene.valueMin;
    s.valueMax = scene.valueMax;
    s.lit = v.lit;
    return s;
}

// Renders `count` frames of a slow orbit into PNG files; returns per-frame milliseconds.
Expected<std::vector<double>> renderOffscreen(const SyntheticScene& scene, const SceneView& view, uint32_t w,
                                              uint32_t h, const std::vector<std::string>& paths, float orbitDeg) {
    auto ctx = Context::create({});
    if (!ctx) return ctx.error();
    auto target = OffscreenTarget::create(**ctx, w, h);
    if (!target) return target.error();
    auto pass = NeuronPass::create(**ctx, kColorFormat, 1);
    if (!pass) return pass.error();
    TS_TRY((*pass)->setInstances(scene.neurons));
    (*pass)->setStyle(sceneStyle(scene, view));
    std::vector<double> ms;
    for (size_t i = 0; i < paths.size(); ++i) {
        SceneView v = view;
        v.yawDeg += orbitDeg * float(i) / float(std::max<size_t>(paths.size(), 1));
        Camera cam = sceneCamera(scene, v, float(w) / float(h));
        auto t0 = std::chrono::steady_clock::now();
        auto frame = (*target)->beginFrame();
        if (!frame) return frame.error();
        TS_TRY((*pass)->prepare(*frame, cam));
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        (*pass)->record(*frame, cam);
        endRendering(*frame);
        ImageRgba8 img;
        TS_TRY((*target)->endFrame(*frame, &img));
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        TS_TRY(writePng(paths[i], img));
    }
    if ((*ctx)->validationMessageCount() > 0)
        return makeError(ErrorKind::Failed, std::to_string((*ctx)->validationMessageCount()) +
                                                " Vulkan validation messages (see above)");
    return ms;
}

} // namespace

int cmdRender(int argc, char** argv) {
    bool help = false;
    auto args = parseArgs(kRenderSpec, argc, argv, help);
    if (!args) return reportError(args.error());
    if (help) {
        std::fputs(helpText(kRenderSpec).c_str(), stdout);
        return 0;
    }
    auto w = args->getInt("width", 1280, 1, 16384);
    auto h = args->getInt("height", 720, 1, 16384);
    auto n = args->getInt("neurons", 20000, 1, 50'000'000);
    auto seed = args->getInt("seed", 1, 0, 1L << 31);
    for (auto* e : {&w, &h, &n, &seed})
        if (!*e) return reportError(e->error());
    auto view = parseView(*args);
    if (!view) return reportError(view.error());
    std::string out = args->get("out", "out/render.png");
    auto scene = makeSyntheticNetwork(uint32_t(*n), uint32_t(*seed));
    auto ms = renderOffscreen(scene, *view, uint32_t(*w), uint32_t(*h), {out}, 0.0f);
    if (!ms) return reportError(ms.error());
    TS_LOG_INFO("wrote %s (%ldx%ld, %zu neurons, %.1f ms)", out.c_str(), *w, *h, scene.neurons.size(), (*ms)[0]);
    return 0;
}

// The renderer's demo scene: in a window when a display exists, else a short orbit of PNG frames.
int runSceneDemo(const Args& args, const std::string& outDir, long frames) {
    auto view = parseView(args);
    if (!view) return reportError(view.error());
    auto n = args.getInt("neurons", 20000, 1, 50'000'000);
    if (!n) return reportError(n.error());
    auto scene = makeSyntheticNetwork(uint32_t(*n), 1);
    bool headless = args.has("headless") || !displayAvailable();
    if (!headless) {
        ViewerOptions opts;
        opts.title = "tensorscape demo";
        opts.maxFrames = frames;
        opts.finalScreenshot = args.get("screenshot");
        auto viewer = Viewer::create(opts);
        if (!viewer) return reportError(viewer.error());
        Viewer& v = **viewer;
        v.sceneBounds = scene.bounds;
        if (auto s = v.neurons().setInstances(scene.neurons); !s) return reportError(s.error());
        v.neurons().setStyle(sceneStyle(scene, *view));
        v.camera() = sceneCamera(scene, *view, v.aspect());
        ui::ViewSettings settings;
        settings.colormap = int(view->colormap);
        settings.lit = view->lit;
        auto s = v.run(
            [&](float dt) {
                if (frames > 0) v.camera().orbit(-40.0f * dt, 0.0f);
            },
            {},
            [&] {
                ui::FrameStats stats{v.lastFrameMs(), scene.neurons.size(), scene.neurons.size(),
                                     v.context().deviceInfo().name, v.context().allocator().bytesInUse()};
                auto edits = ui::viewPanel(settings, stats, {});
                if (edits.fitRequested) v.camera().fitToScene(scene.bounds, v.aspect());
                if (edits.screenshotRequested) v.requestScreenshot();
                if (edits.changed) {
                    if (edits.settings.vsync != settings.vsync) v.setVsync(edits.settings.vsync);
                    settings = edits.settings;
                    NeuronStyle style = v.neurons().style();
                    style.colormap = Colormap(settings.colormap);
                    style.lit = settings.lit;
                    style.splatBelowPixels = settings.splatBelowPixels;
                    v.neurons().setStyle(style);
                }
            });
        if (!s) return reportError(s.error());
        return 0;
    }
    TS_LOG_INFO("no display: rendering the demo offscreen into %s", outDir.c_str());
    std::vector<std::string> paths;
    long count = frames > 0 ? frames : 8;
    for (long i = 0; i < count; ++i) {
        char name[64];
        std::snprintf(name, sizeof(name), "/frame_%03ld.png", i);
        paths.push_back(outDir + name);
    }
    auto ms = renderOffscreen(scene, *view, 1280, 720, paths, 90.0f);
    if (!ms) return reportError(ms.error());
    std::ofstream summary(outDir + "/summary.txt");
    summary << "tensorscape demo (renderer scene)\nneurons: " << scene.neurons.size() << "\nframes: " << count
            << "\nsize: 1280x720\n";
    double total = 0;
    for (double m : *ms) total += m;
    summary << "mean frame time (ms): " << total / double(ms->size()) << "\n";
    TS_LOG_INFO("wrote %ld frames and summary.txt to %s", count, outDir.c_str());
    return 0;
}

} // namespace ts::app
