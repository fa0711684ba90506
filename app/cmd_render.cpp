// `render`: a generated network scene rendered headless to a PNG.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "app/cli.hpp"
#include "app/commands.hpp"
#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/synthetic_scene.hpp"
#include "engine/render/target.hpp"

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
    if (!map)
        return makeError(ErrorKind::Usage,
                         "unknown --colormap '" + args.get("colormap") +
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
                                              uint32_t h, const std::vector<std::string>& paths,
                                              float orbitDeg) {
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
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        TS_TRY(writePng(paths[i], img));
    }
    if ((*ctx)->validationMessageCount() > 0)
        return makeError(ErrorKind::Failed, std::to_string((*ctx)->validationMessageCount()) +
                                                " Vulkan validation messages (see above)");
    return ms;
}

} // namespace

int cmdRender(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kRenderSpec, argc, argv, code);
    if (!args) return code;
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
    TS_LOG_INFO("wrote %s (%ldx%ld, %zu neurons, %.1f ms)", out.c_str(), *w, *h, scene.neurons.size(),
                (*ms)[0]);
    return 0;
}

} // namespace ts::app
