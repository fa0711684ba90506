// `landscape`: computes a loss surface (engine/landscape, reference-script HDF5 layout) and shows it as a
// 3D height field to fly through, in a window, or rendered headless to a PNG and a recorded flight. The flags
// (computation and display) are parsed in landscape_cli.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "app/commands.hpp"
#include "app/keyframes.hpp"
#include "app/landscape_cli.hpp"
#include "app/viewer.hpp"
#include "engine/core/log.hpp"
#include "engine/core/video.hpp"
#include "engine/landscape/command.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/mesh.hpp"
#include "engine/landscape/plot.hpp"
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

using DisplayFlags = LandscapeDisplay;

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

// The surface, its markers and path drawn offscreen, frame by frame, with any camera.
class OffscreenSurface {
  public:
    static Expected<std::unique_ptr<OffscreenSurface>> create(const SurfaceScene& sc, uint32_t width, uint32_t height) {
        auto o = std::unique_ptr<OffscreenSurface>(new OffscreenSurface());
        TS_ASSIGN_OR_RETURN(ctx, Context::create({}));
        o->m_ctx = std::move(ctx);
        TS_ASSIGN_OR_RETURN(target, OffscreenTarget::create(*o->m_ctx, width, height));
        o->m_target = std::move(target);
        TS_ASSIGN_OR_RETURN(surface, SurfacePass::create(*o->m_ctx, kColorFormat, 1));
        o->m_surface = std::move(surface);
        TS_ASSIGN_OR_RETURN(markers, NeuronPass::create(*o->m_ctx, kColorFormat, 1));
        o->m_markers = std::move(markers);
        TS_ASSIGN_OR_RETURN(path3d, EdgePass::create(*o->m_ctx, kColorFormat, 1));
        o->m_path = std::move(path3d);
        TS_TRY(o->m_surface->setMesh(sc.view()));
        TS_TRY(o->m_markers->setInstances(sc.markers));
        o->m_markers->setStyle(markerStyle());
        TS_TRY(o->m_path->setPolylines(sc.trajectory));
        o->m_path->setStyle(pathStyle());
        return o;
    }

    Status draw(const Camera& cam, ImageRgba8& img) {
        TS_ASSIGN_OR_RETURN(frame, m_target->beginFrame());
        TS_TRY(m_markers->prepare(frame, cam));
        beginRendering(frame, true, 0.035f, 0.04f, 0.06f);
        m_surface->record(frame, cam);
        m_markers->record(frame, cam);
        m_path->record(frame, cam);
        endRendering(frame);
        return m_target->endFrame(frame, &img);
    }

    // The surface, its contour lines, the markers and the path were all drawn: any validation message fails.
    Status checkValidation() const {
        if (const auto n = m_ctx->validationMessageCount(); n > 0)
            return makeError(ErrorKind::Failed, std::to_string(n) + " Vulkan validation messages (see above)");
        return {};
    }

  private:
    OffscreenSurface() = default;
    std::unique_ptr<Context> m_ctx;
    std::unique_ptr<OffscreenTarget> m_target;
    std::unique_ptr<SurfacePass> m_surface;
    std::unique_ptr<NeuronPass> m_markers;
    std::unique_ptr<EdgePass> m_path;
};

// The recorded flight at u in [0, 1]: three quarters of an orbit around the surface while the camera sinks
// towards the horizon, then a glide that rises to look down on the minimum from above (eased in and out), so
// the surface's rim never stands between the camera and the valley.
Camera flightCamera(const SurfaceScene& sc, float aspect, float u) {
    const auto ease = [](float t) { t = std::clamp(t, 0.0f, 1.0f); return t * t * (3.0f - 2.0f * t); };
    const Camera start = surfaceCamera(sc.bounds, aspect);
    constexpr float kOrbit = 0.65f;
    Camera c = start;
    const float v = ease(std::min(u, kOrbit) / kOrbit);
    c.yaw = start.yaw + v * 1.5f * glm::pi<float>();
    c.pitch = start.pitch + v * (0.42f - start.pitch);
    if (u <= kOrbit || !sc.mesh.hasMinimum) return c;
    const float w = ease((u - kOrbit) / (1.0f - kOrbit));
    const glm::vec3 minimum(sc.mesh.minimumPosition[0], sc.mesh.minimumPosition[1], sc.mesh.minimumPosition[2]);
    c.target = glm::mix(start.target, minimum, w);
    c.distance = start.distance * (1.0f - 0.4f * w);
    c.pitch = c.pitch + w * (1.15f - c.pitch);
    return c;
}

// `keys`: the flight's keyframes (--keyframes), empty for the default flight.
int renderHeadless(const SurfaceScene& sc, const DisplayFlags& d, const std::string& path,
                   const std::vector<Keyframe>& keys) {
    auto renderer = OffscreenSurface::create(sc, d.width, d.height);
    if (!renderer) return reportError(renderer.error());
    const float aspect = float(d.width) / float(d.height);
    ImageRgba8 img;
    if (auto s = (*renderer)->draw(surfaceCamera(sc.bounds, aspect), img); !s) return reportError(s.error());
    if (auto s = writePng(path, img); !s) return reportError(s.error());
    if (auto s = (*renderer)->checkValidation(); !s) return reportError(s.error());
    TS_LOG_INFO("wrote %s (3D view of the surface, %zu contour segments)", path.c_str(),
                sc.mesh.contourLines.size() / 2);
    if (d.record.empty()) return 0;

    // The fly-through: every frame rendered offscreen and piped to ffmpeg.
    const int frames = std::max(1, int(std::lround(d.recordSeconds * d.fps)));
    auto video = VideoWriter::open(d.record, int(d.width), int(d.height), d.fps);
    if (!video) return reportError(video.error());
    const auto t0 = std::chrono::steady_clock::now();
    for (int f = 0; f < frames; ++f) {
        const float u = frames > 1 ? float(f) / float(frames - 1) : 0.0f;
        const Camera camera = keys.empty() ? flightCamera(sc, aspect, u) : cameraAlong(keys, sc.bounds, u);
        if (auto s = (*renderer)->draw(camera, img); !s) return reportError(s.error());
        if (auto s = (*video)->write(img); !s) return reportError(s.error());
    }
    if (auto s = (*video)->close(); !s) return reportError(s.error());
    if (auto s = (*renderer)->checkValidation(); !s) return reportError(s.error());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    TS_LOG_INFO("wrote %s (%d frames, %ux%u at %d fps, %.1f s of video, recorded in %.1f s%s)", d.record.c_str(),
                frames, d.width, d.height, d.fps, double(frames) / d.fps, secs,
                keys.empty() ? "" : (", through " + std::to_string(keys.size()) + " keyframes").c_str());
    return 0;
}

// What the panel says of a finished surface beyond its file: the Hessian's values (and its spectral density,
// for the panel's plot: log10 density per column over [spectrumMin, spectrumMax]) and the mode-connectivity
// barriers, when computed.
std::string curvatureText(const landscape::LandscapeResult& r, std::vector<float>& spectrum, float& spectrumMin,
                          float& spectrumMax) {
    std::string text;
    char buf[160];
    if (const auto& c = r.curvature) { // --directions hessian
        std::snprintf(buf, sizeof buf, "; Hessian eigenvalues %.4g, %.4g", c->eigenvalues.size() > 0 ? c->eigenvalues[0] : NAN,
                      c->eigenvalues.size() > 1 ? c->eigenvalues[1] : NAN);
        text += buf;
        if (c->traceSamples > 0) {
            std::snprintf(buf, sizeof buf, ", trace %.4g +- %.2g", c->trace, c->traceStdError);
            text += buf;
        }
        std::vector<double> grid;
        const auto density = landscape::spectralDensity(c->esdNodes, c->esdWeights, 4000, grid);
        spectrum.assign(density.empty() ? 0 : 150, -10.0f);
        for (size_t i = 0; i < density.size(); ++i) { // the largest value in each column
            const size_t col = std::min<size_t>(149, i * 150 / density.size());
            spectrum[col] = std::max(spectrum[col], float(std::log10(std::max(density[i], 1e-10))));
        }
        if (!grid.empty()) spectrumMin = float(grid.front()), spectrumMax = float(grid.back());
    }
    if (const auto& c = r.connectivity) {
        std::snprintf(buf, sizeof buf, "; barrier: Bezier curve %.4g, straight line %.4g", c->curveBarrier, c->lineBarrier);
        text += buf;
    }
    return text;
}

// The arguments of a recomputation with the panel's settings. Directions belong to their normalisation: another
// norm gets its own file (made on first use, reused after), so the first run's file never overrides the choice.
landscape::LandscapeArgs recomputeArgs(const landscape::LandscapeArgs& args, const ui::LandscapeSettings& settings) {
    landscape::LandscapeArgs a = args;
    a.grid.x = {-settings.range, settings.range, settings.grid};
    if (a.grid.y) a.grid.y = landscape::GridAxis{-settings.range, settings.range, settings.grid};
    a.norm = kPanelNorms[std::clamp(settings.norm, 0, 3)];
    a.logScale = settings.logScale;
    if (a.norm != args.norm) {
        std::filesystem::path dir(args.directions);
        a.directions =
            (dir.parent_path() / (dir.stem().string() + ".norm-" + landscape::normName(a.norm) + dir.extension().string()))
                .string();
    }
    a.quiet = true;
    return a;
}

// The keyframe file of the window (--keyframes, else next to --out) and the keyframes already in it: a user's
// file is appended to, never replaced.
Expected<std::pair<std::string, std::vector<Keyframe>>> windowKeyframes(const landscape::LandscapeArgs& args,
                                                                         const DisplayFlags& d) {
    std::string path = d.keyframes;
    if (path.empty()) {
        std::filesystem::path out(args.out);
        path = (out.parent_path() / (out.stem().string() + ".keyframes.json")).string();
    }
    std::vector<Keyframe> keys;
    std::error_code existsError;
    if (std::filesystem::exists(path, existsError)) {
        auto read = readKeyframes(path, 0);
        if (!read) return read.error();
        keys = std::move(read).value();
        TS_LOG_INFO("%zu keyframes from %s; K adds more", keys.size(), path.c_str());
    }
    return std::pair{path, std::move(keys)};
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
    std::vector<float> spectrum; // log10 density per column, the panel's plot
    float spectrumMin = 0, spectrumMax = 0;
    std::thread worker;
    auto launch = [&](const landscape::LandscapeArgs& a) {
        if (worker.joinable()) {
            cancel = true;
            worker.join();
        }
        cancel = false;
        computing = true;
        progress = 0.0f;
        {
            std::lock_guard lock(mutex);
            status = a.hessian ? "computing the Hessian's sharpest directions (Lanczos), then the grid ..."
                     : a.curve ? "computing the grid, then training the Bezier curve ..."
                               : "";
        }
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
                status = "wrote " + a.out + (r->batched ? " (batched evaluation)" : "") +
                         curvatureText(*r, spectrum, spectrumMin, spectrumMax);
            } else {
                status = r.error().message;
            }
            computing = false;
        });
    };
    launch(args);

    // Fly-through keyframes: K (or the panel's button) adds the current view and saves the list at once.
    auto keyFile = windowKeyframes(args, d);
    if (!keyFile) return reportError(keyFile.error());
    const std::string keyPath = keyFile->first;
    std::vector<Keyframe> keys = std::move(keyFile->second);
    int addKeyframes = 0; // presses of K (or the panel's button) not yet saved: each one is a keyframe
    v.keyHook = [&](int key) {
        if (key == 'K') ++addKeyframes; // GLFW key codes of letters are their upper-case ASCII
    };

    SurfaceScene sc;
    bool haveMesh = false, rebuild = false;
    v.framesCount = [&] { return haveMesh || !computing; }; // a failed computation counts frames too
    ui::LandscapeSettings settings;
    settings.grid = int(args.grid.x.count);
    settings.range = float(std::max(std::fabs(args.grid.x.min), std::fabs(args.grid.x.max)));
    settings.norm = panelNormIndex(args.norm);
    settings.logScale = args.logScale;
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
                lv.spectrum = spectrum;
                lv.spectrumMin = spectrumMin;
                lv.spectrumMax = spectrumMax;
            }
            lv.keyframes = int(keys.size());
            lv.keyframesPath = keyPath;
            if (sc.mesh.hasMinimum) lv.minLoss = float(sc.mesh.minimumLoss);
            auto e = ui::landscapePanel(lv);
            addKeyframes += e.addKeyframe ? 1 : 0; // kept until there is a surface to frame
            for (; addKeyframes > 0 && haveMesh; --addKeyframes) {
                keys.push_back(keyframeOf(v.camera(), sc.bounds));
                if (auto st = writeKeyframes(keyPath, keys); st)
                    TS_LOG_INFO("keyframe %zu saved to %s", keys.size(), keyPath.c_str());
                else
                    TS_LOG_ERROR("%s", st.error().message.c_str());
            }
            if (e.clearKeyframes) {
                keys.clear();
                std::error_code ec;
                std::filesystem::remove(keyPath, ec);
                TS_LOG_INFO("keyframes cleared (%s removed)", keyPath.c_str());
            }
            if (e.settings.logScale != settings.logScale) rebuild = true;
            settings = e.settings;
            if (e.cancel) cancel = true;
            if (e.recompute) launch(recomputeArgs(args, settings));
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
    if (addKeyframes > 0)
        TS_LOG_WARN("%d keyframe request(s) not saved: the window closed before the first surface", addKeyframes);
    return windowExitCode(v, s, uploadFailure);
}

} // namespace

int cmdLandscape(int argc, char** argv) {
    int exitCode = 0;
    auto line = parseLandscapeCommand(argc, argv, exitCode);
    if (!line) return exitCode;
    const landscape::LandscapeArgs* args = &line->args;
    const LandscapeDisplay* display = &line->display;
    for (const std::string& f : {args->out, args->directions, display->render, display->record}) { // output folders
        auto parent = std::filesystem::path(f).parent_path();
        std::error_code ec;
        if (!f.empty() && !parent.empty()) std::filesystem::create_directories(parent, ec);
    }
    const bool mpi = landscape::launcherWorldSize() > 1;
    if (!display->record.empty()) {
        // Checked before the surface is computed: a recording that cannot be written is known in a second.
        if (findFfmpeg().empty())
            return reportError(makeError(ErrorKind::Environment, "ffmpeg not found on PATH; install it (apt-get install ffmpeg) to record " + display->record));
        if (display->width % 2 || display->height % 2)
            return reportError(usageError("--record needs an even --width and --height (H.264 in yuv420p)"));
        const auto dir = std::filesystem::path(display->record).parent_path();
        std::error_code ec;
        if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
            return reportError(usageError("cannot write " + display->record + ": " + dir.string() + " is not a folder"));
    }
    std::vector<Keyframe> keys; // the recorded flight's, read before anything is computed
    if (!display->record.empty() && !display->keyframes.empty()) {
        auto read = readKeyframes(display->keyframes);
        if (!read) return reportError(read.error());
        keys = std::move(read).value();
    }
    bool window = !display->headless && !mpi && display->record.empty() && displayAvailable();
    if (window) return runWindow(*args, *display);
    if (!display->headless && mpi && landscape::launcherRank() == 0)
        TS_LOG_INFO("started by mpirun: computing headless and writing the 3D view to a PNG");
    else if (!display->headless && !mpi && display->record.empty())
        TS_LOG_INFO("no display: computing headless and writing the 3D view to a PNG");

    // Headless: the computation (progress bar, summary line), then the 3D picture from the file.
    if (int code = runLandscapeHeadless(*args); code != 0) return code;
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
    return renderHeadless(sc, *display, path, keys);
}

} // namespace ts::app
