// `landscape`: computes a loss surface (engine/landscape, reference-script HDF5 layout) and shows it as a
// 3D height field to fly through, in a window, or rendered headless to a PNG. Flags of the computation are
// the landscape module's; the display flags below are the app's.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "app/commands.hpp"
#include "app/viewer.hpp"
#include "engine/core/log.hpp"
#include "engine/landscape/command.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/mesh.hpp"
#include "engine/render/context.hpp"
#include "engine/render/edge_pass.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/surface_pass.hpp"
#include "engine/render/target.hpp"
#include "engine/ui/imgui_layer.hpp"
#include "engine/ui/panels.hpp"

namespace ts::app {

using namespace ts::render;

namespace {

struct DisplayFlags {
    bool headless = false;
    std::string render; // 3D picture path (headless)
    uint32_t width = 1280, height = 720;
    long frames = 0;
    std::string screenshot;
};

const char* kDisplayHelp =
    "display options (tensorscape):\n"
    "  --headless                never open a window; write the 3D picture instead\n"
    "  --render PATH             3D picture of the surface (default when headless:\n"
    "                            OUT with .h5 replaced by _3d.png)\n"
    "  --width W, --height H     picture or window size (default 1280x720)\n"
    "  --frames N                window: close after N frames\n"
    "  --screenshot PATH         window: save the last frame to PATH (with --frames)\n";

// Takes the app's display flags out of argv; the rest goes to the landscape module.
Expected<DisplayFlags> splitDisplayFlags(int argc, char** argv, std::vector<std::string>& rest) {
    DisplayFlags d;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* flag) -> Expected<std::string> {
            if (i + 1 >= argc) return makeError(ErrorKind::Usage, std::string(flag) + " needs a value");
            return std::string(argv[++i]);
        };
        auto number = [&](const char* flag, long lo, long hi) -> Expected<long> {
            auto v = value(flag);
            if (!v) return v.error();
            char* end = nullptr;
            long n = std::strtol(v->c_str(), &end, 10);
            if (v->empty() || *end || n < lo || n > hi)
                return makeError(ErrorKind::Usage, std::string(flag) + " expects a whole number in " +
                                                       std::to_string(lo) + ".." + std::to_string(hi));
            return n;
        };
        if (a == "--headless") {
            d.headless = true;
        } else if (a == "--render" || a == "--screenshot") {
            auto v = value(a.c_str());
            if (!v) return v.error();
            (a == "--render" ? d.render : d.screenshot) = *v;
        } else if (a == "--width" || a == "--height" || a == "--frames") {
            auto n = number(a.c_str(), a == "--frames" ? 0 : 16, a == "--frames" ? 1'000'000 : 16384);
            if (!n) return n.error();
            if (a == "--width")
                d.width = uint32_t(*n);
            else if (a == "--height")
                d.height = uint32_t(*n);
            else
                d.frames = *n;
        } else {
            rest.push_back(a);
        }
    }
    return d;
}

// The panel offers filter, layer, weight, none (in that order).
constexpr landscape::Norm kPanelNorms[] = {landscape::Norm::Filter, landscape::Norm::Layer,
                                           landscape::Norm::Weight, landscape::Norm::None};
int panelNormIndex(landscape::Norm n) {
    for (int i = 0; i < 4; ++i)
        if (kPanelNorms[i] == n) return i;
    return 0;
}

std::string metricPrefix(const landscape::LandscapeArgs& a) {
    return a.split == "validation" ? "test" : "train";
}

// Surface -> the renderer's plain arrays, markers (minimum red, current weights white) and trajectory.
struct SurfaceScene {
    landscape::HeightFieldMesh mesh;
    std::vector<SurfaceVertex> vertices;
    std::vector<NeuronInstance> markers;
    scene::EdgePolylines trajectory;
    Aabb bounds;

    std::vector<std::array<double, 2>> path; // training trajectory in direction coordinates (may be empty)

    void build(const landscape::Surface& surface, bool logScale) {
        landscape::MeshOptions mo;
        mo.logScale = logScale;
        mesh = landscape::buildHeightField(surface, mo);
        if (!path.empty()) landscape::addTrajectory(mesh, surface, path, mo);
        vertices.resize(mesh.vertices.size());
        static_assert(sizeof(SurfaceVertex) == sizeof(landscape::MeshVertex));
        std::memcpy(vertices.data(), mesh.vertices.data(), vertices.size() * sizeof(SurfaceVertex));
        bounds = Aabb{};
        bounds.extend({mesh.boundsLo[0], mesh.boundsLo[1], mesh.boundsLo[2]});
        bounds.extend({mesh.boundsHi[0], mesh.boundsHi[1], mesh.boundsHi[2]});
        float r = 0.012f * glm::length(bounds.extent());
        markers.clear();
        if (mesh.hasMinimum) {
            NeuronInstance m{};
            m.position = {mesh.minimumPosition[0], mesh.minimumPosition[1] + r, mesh.minimumPosition[2]};
            m.radius = r;
            m.value = 1.0f; // red end of rdbu
            markers.push_back(m);
        }
        if (mesh.hasOrigin) {
            NeuronInstance o{};
            o.position = {mesh.originPosition[0], mesh.originPosition[1] + r, mesh.originPosition[2]};
            o.radius = r * 0.8f;
            o.value = 0.5f; // white middle of rdbu
            markers.push_back(o);
        }
        trajectory = {};
        for (size_t i = 0; i + 1 < mesh.trajectoryLines.size(); i += 2) {
            uint32_t first = uint32_t(trajectory.points.size());
            for (int k = 0; k < 2; ++k) {
                const auto& p = mesh.trajectoryLines[i + size_t(k)];
                trajectory.points.push_back({glm::vec3(p[0], p[1], p[2]), float(k)});
            }
            trajectory.lines.push_back({first, 2, 1.0f, 1.0f});
        }
    }
    SurfaceMeshView view() const {
        return {vertices, mesh.indices,
                std::span<const std::array<float, 3>>(mesh.contourLines.data(), mesh.contourLines.size())};
    }
};

Camera surfaceCamera(const Aabb& b, float aspect) {
    Camera cam;
    cam.yaw = 0.7f;
    cam.pitch = 0.55f;
    cam.fitToScene(b, aspect);
    return cam;
}

// The training path: a bright, opaque ribbon (inferno's light end) over the surface.
EdgeStyle pathStyle() {
    EdgeStyle s;
    s.colormap = Colormap::Inferno;
    s.alpha = 1.0f;
    s.minWidthPixels = 3.0f;
    s.maxWidthPixels = 3.5f;
    return s;
}

NeuronStyle markerStyle() {
    NeuronStyle s;
    s.colormap = Colormap::RdBu;
    s.valueMin = 0.0f;
    s.valueMax = 1.0f;
    return s;
}

int renderHeadless(const SurfaceScene& sc, const DisplayFlags& d, const std::string& path) {
    auto ctx = Context::create({});
    if (!ctx) return reportError(ctx.error());
    auto target = OffscreenTarget::create(**ctx, d.width, d.height);
    if (!target) return reportError(target.error());
    auto surface = SurfacePass::create(**ctx, kColorFormat, 1);
    auto markers = NeuronPass::create(**ctx, kColorFormat, 1);
    auto path3d = EdgePass::create(**ctx, kColorFormat, 1);
    if (!surface) return reportError(surface.error());
    if (!markers) return reportError(markers.error());
    if (!path3d) return reportError(path3d.error());
    if (auto s = (*surface)->setMesh(sc.view()); !s) return reportError(s.error());
    if (auto s = (*markers)->setInstances(sc.markers); !s) return reportError(s.error());
    (*markers)->setStyle(markerStyle());
    if (auto s = (*path3d)->setPolylines(sc.trajectory); !s) return reportError(s.error());
    (*path3d)->setStyle(pathStyle());
    Camera cam = surfaceCamera(sc.bounds, float(d.width) / float(d.height));
    auto frame = (*target)->beginFrame();
    if (!frame) return reportError(frame.error());
    if (auto s = (*markers)->prepare(*frame, cam); !s) return reportError(s.error());
    beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
    (*surface)->record(*frame, cam);
    (*markers)->record(*frame, cam);
    (*path3d)->record(*frame, cam);
    endRendering(*frame);
    ImageRgba8 img;
    if (auto s = (*target)->endFrame(*frame, &img); !s) return reportError(s.error());
    if (auto s = writePng(path, img); !s) return reportError(s.error());
    // The surface, its contour lines, the markers and the path were all drawn: any validation message fails.
    if ((*ctx)->validationMessageCount() > 0)
        return reportError(makeError(ErrorKind::Failed, std::to_string((*ctx)->validationMessageCount()) +
                                                            " Vulkan validation messages (see above)"));
    TS_LOG_INFO("wrote %s (3D view of the surface, %zu contour segments)", path.c_str(),
                sc.mesh.contourLines.size() / 2);
    return 0;
}

// Window: the surface computes progressively in the background (coarse grid first) while the user flies.
int runWindow(landscape::LandscapeArgs args, const DisplayFlags& d) {
    auto viewer = Viewer::create(
        ViewerOptions::make("tensorscape landscape", d.width, d.height, d.frames, d.screenshot));
    if (!viewer) return reportError(viewer.error());
    Viewer& v = **viewer;
    auto surface =
        SurfacePass::create(v.context(), v.target().swapchainFormat(), v.target().framesInFlight());
    if (!surface) return reportError(surface.error());
    v.neurons().setStyle(markerStyle());
    v.network().edges().setStyle(pathStyle());

    std::mutex mutex;
    std::optional<landscape::Surface> latest; // newest partial or final surface from the worker
    std::vector<std::array<double, 2>> trajectory;
    std::atomic<bool> cancel{false}, computing{false};
    std::atomic<float> progress{0.0f};
    std::string status;
    std::thread worker;
    auto launch = [&](const landscape::LandscapeArgs& a) {
        if (worker.joinable()) {
            cancel = true;
            worker.join();
        }
        cancel = false;
        computing = true;
        progress = 0.0f;
        worker = std::thread([&, a] {
            landscape::GridRunOptions run;
            run.cancel = &cancel;
            run.progress = [&](int64_t done, int64_t total, const landscape::Surface& partial, int64_t) {
                progress = float(done) / float(std::max<int64_t>(total, 1));
                std::lock_guard lock(mutex);
                latest = partial;
            };
            auto r = landscape::computeLandscape(a, run);
            std::lock_guard lock(mutex);
            if (r) {
                latest = r->surface;
                trajectory = r->trajectory;
                status = "wrote " + a.out + (r->batched ? " (batched evaluation)" : "");
            } else {
                status = r.error().message;
            }
            computing = false;
        });
    };
    launch(args);

    SurfaceScene sc;
    ui::LandscapeSettings settings;
    settings.grid = int(args.grid.x.count);
    settings.range = float(std::max(std::fabs(args.grid.x.min), std::fabs(args.grid.x.max)));
    settings.norm = panelNormIndex(args.norm);
    settings.logScale = args.logScale;
    bool haveMesh = false, rebuild = false;
    Status uploadFailure;
    CameraFlight flight;
    auto s = v.run(
        [&](float dt) {
            flight.step(v.camera(), dt);
            std::optional<landscape::Surface> fresh;
            {
                std::lock_guard lock(mutex);
                fresh.swap(latest);
                sc.path = trajectory;
            }
            static landscape::Surface current;
            if (fresh) current = std::move(*fresh);
            if ((fresh || rebuild) && !current.x.empty()) {
                sc.build(current, settings.logScale);
                // An upload that fails (out of device memory) ends the window with its error.
                for (Status st : {(*surface)->setMesh(sc.view()), v.neurons().setInstances(sc.markers),
                                  v.network().setEdges(sc.trajectory)})
                    if (!st && uploadFailure.isOk()) uploadFailure = st;
                if (!uploadFailure.isOk()) v.requestClose();
                v.sceneBounds = sc.bounds;
                if (!haveMesh) v.camera() = surfaceCamera(sc.bounds, v.aspect());
                haveMesh = true;
                rebuild = false;
            }
        },
        [&](const Frame& frame) { (*surface)->record(frame, v.camera()); },
        [&] {
            ui::LandscapeView lv;
            lv.settings = settings;
            lv.computing = computing;
            lv.progress = progress;
            {
                std::lock_guard lock(mutex);
                lv.status = status;
            }
            if (sc.mesh.hasMinimum) lv.minLoss = float(sc.mesh.minimumLoss);
            auto e = ui::landscapePanel(lv);
            if (e.settings.logScale != settings.logScale) rebuild = true;
            settings = e.settings;
            if (e.cancel) cancel = true;
            if (e.recompute) {
                landscape::LandscapeArgs a = args;
                a.grid.x = {-settings.range, settings.range, settings.grid};
                if (a.grid.y) a.grid.y = landscape::GridAxis{-settings.range, settings.range, settings.grid};
                a.norm = kPanelNorms[std::clamp(settings.norm, 0, 3)];
                a.logScale = settings.logScale;
                // Directions belong to their normalisation: another norm gets its own file (made on first use,
                // reused after), so the first run's file never overrides the panel's choice.
                if (a.norm != args.norm) {
                    std::filesystem::path dir(args.directions);
                    a.directions = (dir.parent_path() / (dir.stem().string() + ".norm-" + landscape::normName(a.norm) + dir.extension().string()))
                                       .string();
                }
                a.quiet = true;
                launch(a);
            }
            if (e.flyToMinimum && sc.mesh.hasMinimum) {
                Camera to = v.camera();
                to.setMode(Camera::Mode::Orbit);
                to.target = {sc.mesh.minimumPosition[0], sc.mesh.minimumPosition[1],
                             sc.mesh.minimumPosition[2]};
                to.distance = 0.35f * glm::length(sc.bounds.extent());
                to.pitch = 0.6f;
                flight.start(v.camera(), to, 1.2f);
            }
        });
    cancel = true;
    if (worker.joinable()) worker.join();
    if (!s) return reportError(s.error());
    if (!uploadFailure) return reportError(uploadFailure.error());
    if (const auto n = v.context().validationMessageCount(); n > 0)
        return reportError(makeError(ErrorKind::Failed, std::to_string(n) + " Vulkan validation messages (see above)"));
    return 0;
}

} // namespace

int cmdLandscape(int argc, char** argv) {
    std::vector<std::string> rest;
    auto display = splitDisplayFlags(argc, argv, rest);
    if (!display) return reportError(display.error());
    bool help = false;
    auto args = landscape::parseLandscapeArgs(rest, help);
    if (help) {
        std::fputs(landscape::landscapeHelp().c_str(), stdout);
        std::fputs(kDisplayHelp, stdout);
        return 0;
    }
    if (!args) return reportError(args.error());
    for (const std::string& f : {args->out, args->directions, display->render}) { // create output folders
        auto parent = std::filesystem::path(f).parent_path();
        std::error_code ec;
        if (!f.empty() && !parent.empty()) std::filesystem::create_directories(parent, ec);
    }
    const bool mpi = landscape::launcherWorldSize() > 1;
    bool window = !display->headless && !mpi && displayAvailable();
    if (window) return runWindow(*args, *display);
    if (!display->headless && mpi && landscape::launcherRank() == 0)
        TS_LOG_INFO("started by mpirun: computing headless and writing the 3D view to a PNG");
    else if (!display->headless && !mpi)
        TS_LOG_INFO("no display: computing headless and writing the 3D view to a PNG");

    // Headless: the module's own command (progress bar, summary line), then the 3D picture from the file.
    std::vector<char*> av;
    for (auto& r : rest)
        av.push_back(r.data());
    int code = landscape::runLandscapeCommand(int(av.size()), av.data());
    if (code != 0) return code;
    if (mpi && landscape::launcherRank() != 0) return 0; // rank 0 wrote the files and draws the picture
    auto surface = landscape::readSurfaceFile(args->out, metricPrefix(*args));
    if (!surface) return reportError(surface.error());
    SurfaceScene sc;
    if (!args->trajectory.empty() || !args->run.empty()) { // the command wrote the projected checkpoints
        std::string stem = args->out;
        if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".h5") stem.resize(stem.size() - 3);
        auto px = landscape::readArray(stem + ".proj.h5", "proj_xcoord");
        auto py = landscape::readArray(stem + ".proj.h5", "proj_ycoord");
        if (!px || !py) return reportError(!px ? px.error() : py.error());
        for (size_t i = 0; i < px->data.size() && i < py->data.size(); ++i) sc.path.push_back({px->data[i], py->data[i]});
    }
    sc.build(*surface, args->logScale);
    std::string path = display->render;
    if (path.empty()) {
        path = args->out;
        if (path.size() > 3 && path.substr(path.size() - 3) == ".h5") path.resize(path.size() - 3);
        path += "_3d.png";
    }
    return renderHeadless(sc, *display, path);
}

} // namespace ts::app
