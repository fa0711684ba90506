// The `landscape` command line and its headless run (see landscape_cli.hpp).
#include "app/landscape_cli.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "engine/core/log.hpp"
#include "engine/landscape/distributed.hpp"
#include "engine/landscape/grid.hpp"

namespace ts::app {

namespace {

Error usage(const std::string& m) {
    return makeError(ErrorKind::Usage, m);
}

} // namespace

const CommandSpec& landscapeSpec() {
    static const CommandSpec spec{
        "landscape",
        "Computes a loss surface (Li et al. 2018) around a model, writes it as HDF5 laid out like the reference\n"
        "loss-landscape scripts' files, and shows it as a 3D height field to fly through (a window), or renders\n"
        "it headless to a PNG or a recorded fly-through.",
        "tensorscape landscape [--model M] [--data D] [--out FILE.h5] [options]",
        {
            // The computation.
            {"model", "PATH|builtin:NAME", "model: TorchScript .pt, builtin:mlp or builtin:cnn", "builtin:mlp"},
            {"model2", "PATH", "x direction = model2 - model (1D interpolation between checkpoints)", ""},
            {"model3", "PATH", "y direction = model3 - model", ""},
            {"trajectory", "A,B,...", "checkpoints along training: PCA directions (new directions file) and the path "
                                      "projected to <out>.proj.h5 and drawn in --png", ""},
            {"run", "DIR", "a recorded run with checkpoints: its trajectory (PCA directions, as --trajectory) around "
                           "its last checkpoint; the model defaults to the run's", ""},
            {"max-steps", "N", "at most N of the run's checkpoints, evenly spaced", "100"},
            {"data", "SPEC", "fashion-mnist | IDX folder | spirals | circles | xor | gaussians", "fashion-mnist"},
            {"split", "NAME", "train | validation", "train"},
            {"limit", "N", "first N samples of the split (0: all)", "2000"},
            {"out", "FILE.h5", "surface file", "landscape.h5"},
            {"directions", "FILE.h5|hessian",
             "directions file, read if it exists, else written (default <out>.directions.h5); 'hessian': the two "
             "sharpest directions, the top eigenvectors of the loss Hessian (unit norm: coordinates are distances "
             "in weight space), with the eigenvalues (and trace, density when asked) in <out>.directions.h5", ""},
            {"curve", "bezier", "with --model2 and a 1D --x: also train a quadratic Bezier curve between the two models "
                                "(mode connectivity) and report its barrier and the line's", ""},
            {"curve-steps", "N", "Adam steps on the curve's bend", "300"},
            {"curve-lr", "X", "their learning rate", "0.01"},
            {"hessian-top", "K", "eigenpairs to compute, largest first", "2"},
            {"hessian-trace", "N", "Hutchinson samples for the Hessian trace (0: none)", "0"},
            {"hessian-esd", "N", "stochastic Lanczos quadrature runs for the eigenvalue density (0: none)", "0"},
            {"grid", "N", "N x N grid over [-1, 1]^2", "51"},
            {"x", "MIN:MAX:N", "x axis (alone: a 1D plot), as the reference scripts spell it", ""},
            {"y", "MIN:MAX:N", "y axis", ""},
            {"norm", "MODE", "filter | layer | weight | none", "filter"},
            {"ignore", "MODE", "biasbn (zero directions for 1-D parameters) | none", "biasbn"},
            {"dir-type", "TYPE", "weights | states (states adds buffers such as BN statistics)", "weights"},
            {"seed", "N", "random directions (and built-in model initialisation)", "123"},
            {"mode", "MODE", "auto | batched | unbatched", "auto"},
            {"png", "FILE.png", "also write the surface as a figure (contours, axes, colour bar)", ""},
            {"log", "", "log-scale heights in the pictures", ""},
            {"quiet", "", "no progress bar", ""},
            // The display.
            {"headless", "", "never open a window; write the 3D picture instead", ""},
            {"render", "PATH", "3D picture of the surface (default when headless: OUT with .h5 replaced by _3d.png)",
             ""},
            {"width", "W", "picture or window width", "1280"},
            {"height", "H", "picture or window height", "720"},
            {"frames", "N", "window: close after N frames (0: when closed)", "0"},
            {"screenshot", "PATH", "window: save the last frame to PATH (with --frames)", ""},
            {"record", "PATH.mp4", "record a fly-through (an orbit, then down to the minimum) to an MP4 with ffmpeg, "
                                   "headless, at --width x --height (1920x1080, 3840x2160 for 4K)", ""},
            {"keyframes", "FILE.json", "with --record: fly through these keyframes (saved from the window with K) "
                                       "instead of the default orbit; in the window: where K saves them",
             "<out>.keyframes.json"},
            {"record-seconds", "S", "length of the fly-through", "8"},
            {"fps", "N", "its frame rate", "30"},
        },
        false,
        "exit codes: 0 done, 1 the evaluation failed (e.g. NaN everywhere), 2 bad usage or input.\n"};
    return spec;
}

Expected<LandscapeCommandLine> landscapeCommandLine(const Args& f) {
    LandscapeCommandLine line;
    landscape::LandscapeArgs& a = line.args;
    auto whole = [&](const char* flag, long fallback, long lo, long hi) { return f.getInt(flag, fallback, lo, hi); };
    if (f.has("model")) a.model = f.get("model");
    a.model2 = f.get("model2");
    a.model3 = f.get("model3");
    a.run = f.get("run");
    TS_ASSIGN_OR_RETURN(maxSteps, whole("max-steps", 100, 2, 100000));
    a.runMaxSteps = maxSteps;
    if (f.has("trajectory")) {
        for (const std::string& p : splitCommas(f.get("trajectory")))
            if (!p.empty()) a.trajectory.push_back(p);
        if (a.trajectory.size() < 2) return usage("--trajectory needs at least two checkpoints (A,B,...)");
    }
    a.data = f.get("data", a.data);
    a.split = f.get("split", a.split);
    if (a.split != "train" && a.split != "validation")
        return usage("--split expects train or validation, got '" + a.split + "'");
    TS_ASSIGN_OR_RETURN(limit, whole("limit", 2000, 0, long{1} << 40));
    a.limit = limit;
    a.out = f.get("out", a.out);
    if (f.has("directions")) {
        a.hessian = f.get("directions") == "hessian";
        a.directions = a.hessian ? "" : f.get("directions");
    }
    if (f.has("curve")) {
        if (f.get("curve") != "bezier") return usage("--curve expects bezier, got '" + f.get("curve") + "'");
        a.curve = true;
    }
    TS_ASSIGN_OR_RETURN(curveSteps, whole("curve-steps", a.curveSteps, 0, 1000000));
    a.curveSteps = int(curveSteps);
    TS_ASSIGN_OR_RETURN(curveLr, f.getFloat("curve-lr", a.curveLr));
    if (!(curveLr > 0)) return usage("--curve-lr expects a positive number, got '" + f.get("curve-lr") + "'");
    a.curveLr = curveLr;
    TS_ASSIGN_OR_RETURN(top, whole("hessian-top", a.hessianTop, 1, 100));
    TS_ASSIGN_OR_RETURN(trace, whole("hessian-trace", a.hessianTrace, 0, 100000));
    TS_ASSIGN_OR_RETURN(esd, whole("hessian-esd", a.hessianEsd, 0, 1000));
    a.hessianTop = int(top);
    a.hessianTrace = int(trace);
    a.hessianEsd = int(esd);
    if (f.has("grid")) {
        TS_ASSIGN_OR_RETURN(n, whole("grid", 51, 1, 100000));
        a.grid.x = landscape::GridAxis{-1, 1, n};
        a.grid.y = landscape::GridAxis{-1, 1, n};
    }
    if (f.has("x")) {
        TS_ASSIGN_OR_RETURN(ax, landscape::parseAxis(f.get("x")));
        a.grid.x = ax;
    }
    if (f.has("y")) {
        TS_ASSIGN_OR_RETURN(ax, landscape::parseAxis(f.get("y")));
        a.grid.y = ax;
    }
    a.rangeGiven = f.has("x") || f.has("y");
    if (f.has("norm")) {
        TS_ASSIGN_OR_RETURN(n, landscape::parseNorm(f.get("norm")));
        a.norm = n;
    }
    if (f.has("ignore")) {
        TS_ASSIGN_OR_RETURN(ig, landscape::parseIgnore(f.get("ignore")));
        a.ignore = ig;
    }
    if (f.has("dir-type")) {
        TS_ASSIGN_OR_RETURN(t, landscape::parseDirType(f.get("dir-type")));
        a.dirType = t;
    }
    TS_ASSIGN_OR_RETURN(seed, whole("seed", 123, 0, std::numeric_limits<long>::max()));
    a.seed = uint64_t(seed);
    const std::string mode = f.get("mode", "auto");
    if (mode == "auto")
        a.mode = landscape::EvalMode::Auto;
    else if (mode == "batched")
        a.mode = landscape::EvalMode::Batched;
    else if (mode == "unbatched")
        a.mode = landscape::EvalMode::Unbatched;
    else
        return usage("--mode expects auto, batched or unbatched, got '" + mode + "'");
    a.png = f.get("png");
    a.logScale = f.has("log");
    a.quiet = f.has("quiet");

    // Combinations.
    if (f.has("grid") && (f.has("x") || f.has("y"))) return usage("use either --grid N or --x/--y, not both");
    if (f.has("y") && !f.has("x")) return usage("--y needs --x as well");
    if (f.has("x") && !f.has("y")) a.grid.y.reset(); // the reference scripts: --x alone is a 1D plot
    TS_TRY(landscape::validateGrid(a.grid));
    if (a.out.empty()) return usage("--out must name a file");
    if (a.directions.empty()) {
        std::string stem = a.out;
        if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".h5") stem.resize(stem.size() - 3);
        a.directions = stem + ".directions.h5";
    }
    if (a.directions == a.out) return usage("--directions and --out must be different files");
    if (!a.trajectory.empty() && !a.grid.is2d()) return usage("--trajectory needs a 2D grid");
    if (!a.run.empty()) {
        if (!a.trajectory.empty() || !a.model2.empty() || !a.model3.empty() || a.hessian)
            return usage("--run gives the trajectory: it does not combine with --trajectory, --model2, --model3 or "
                         "--directions hessian");
        if (!a.grid.is2d()) return usage("--run needs a 2D grid (the trajectory is drawn in a plane)");
        if (!f.has("model")) a.model.clear(); // the run's
    }
    if ((f.has("curve-steps") || f.has("curve-lr")) && !a.curve)
        return usage("--curve-steps/--curve-lr need --curve bezier");
    if (a.curve) {
        if (a.model2.empty()) return usage("--curve bezier needs --model2 (the curve joins --model and --model2)");
        if (a.grid.is2d()) return usage("--curve bezier needs a 1D axis (--x MIN:MAX:N alone)");
        if (a.dirType != landscape::DirType::Weights) return usage("--curve bezier needs --dir-type weights");
    }
    const bool hessianFlag = f.has("hessian-top") || f.has("hessian-trace") || f.has("hessian-esd");
    if (hessianFlag && !a.hessian) return usage("--hessian-top/-trace/-esd need --directions hessian");
    if (a.hessian) {
        if (!a.model2.empty() || !a.model3.empty() || !a.trajectory.empty())
            return usage("--directions hessian does not combine with --model2, --model3 or --trajectory");
        if (a.dirType != landscape::DirType::Weights)
            return usage("--directions hessian needs --dir-type weights (buffers have no curvature)");
        if (a.grid.is2d() && a.hessianTop < 2)
            return usage("--hessian-top must be at least 2 for a 2D grid (x and y are the top two eigenvectors)");
    }

    LandscapeDisplay& d = line.display;
    d.headless = f.has("headless");
    d.render = f.get("render");
    d.screenshot = f.get("screenshot");
    d.record = f.get("record");
    d.keyframes = f.get("keyframes");
    if (f.has("keyframes") && d.keyframes.empty()) return usage("--keyframes needs a file name");
    if (f.has("record") && d.record.empty()) return usage("--record needs a file name");
    TS_ASSIGN_OR_RETURN(seconds, whole("record-seconds", 8, 1, 600));
    TS_ASSIGN_OR_RETURN(fps, whole("fps", 30, 1, 120));
    TS_ASSIGN_OR_RETURN(width, whole("width", 1280, 16, 16384));
    TS_ASSIGN_OR_RETURN(height, whole("height", 720, 16, 16384));
    TS_ASSIGN_OR_RETURN(frames, whole("frames", 0, 0, 1000000));
    d.recordSeconds = double(seconds);
    d.fps = int(fps);
    d.width = uint32_t(width);
    d.height = uint32_t(height);
    d.frames = frames;
    return line;
}

std::optional<LandscapeCommandLine> parseLandscapeCommand(int argc, char** argv, int& exitCode) {
    auto flags = parseCommand(landscapeSpec(), argc, argv, exitCode);
    if (!flags) return std::nullopt;
    auto line = landscapeCommandLine(*flags);
    if (!line) {
        std::fprintf(stderr, "tensorscape: error: %s\n", line.error().message.c_str());
        exitCode = line.error().exitCode();
        return std::nullopt;
    }
    return std::move(line.value());
}

namespace {

// "\r[#####-----]  52%  1352/2601 points  0.4 s" on a terminal; nothing otherwise.
class ProgressBar {
  public:
    explicit ProgressBar(bool enabled) : m_enabled(enabled && isatty(fileno(stderr))) {}
    void update(int64_t done, int64_t total) {
        if (!m_enabled) return;
        const auto now = std::chrono::steady_clock::now();
        if (done < total && now - m_last < std::chrono::milliseconds(100)) return;
        m_last = now;
        const int width = 30;
        const int fill = total > 0 ? static_cast<int>(width * done / total) : width;
        std::string bar(static_cast<size_t>(fill), '#');
        bar.append(static_cast<size_t>(width - fill), '-');
        const double s = std::chrono::duration<double>(now - m_start).count();
        std::fprintf(stderr, "\rlandscape [%s] %3d%%  %lld/%lld points  %.1f s", bar.c_str(),
                     total > 0 ? static_cast<int>(100 * done / total) : 100, static_cast<long long>(done),
                     static_cast<long long>(total), s);
        if (done >= total) std::fputc('\n', stderr);
        std::fflush(stderr);
    }

  private:
    bool m_enabled;
    std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now(), m_last{};
};

std::string formatNumber(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

int fail(const Error& e) {
    std::fprintf(stderr, "tensorscape: error: %s\n", e.message.c_str());
    return e.exitCode();
}

} // namespace

int runLandscapeHeadless(const landscape::LandscapeArgs& args) {
    using namespace ts::landscape;
    // Under mpirun with several ranks: join the job (MPI_Finalize when this function returns).
    auto session = RankSession::start();
    if (!session) return fail(session.error());
    const Ranks& ranks = session->ranks();
    if (ranks.distributed() && ranks.root())
        TS_LOG_INFO("landscape: %d MPI ranks share the grid", ranks.size);
    ProgressBar bar(!args.quiet && ranks.root());
    GridRunOptions run;
    run.progressive = false; // headless: no preview needed, one pass in file order
    run.progress = [&](int64_t done, int64_t total, const Surface&, int64_t) { bar.update(done, total); };
    Expected<LandscapeResult> r = [&]() -> Expected<LandscapeResult> {
        try {
            return computeLandscape(args, run, ranks);
        } catch (const std::exception& e) {
            std::string what = e.what();
            return makeError(ErrorKind::Failed, "landscape failed: " + oneLineReason(what));
        }
    }();
    if (!r) {
        if (r.error().message.empty()) return r.error().exitCode(); // another rank printed why
        return fail(r.error());
    }
    if (r->worker) return 0; // rank 0 reports
    const Surface& s = r->surface;
    size_t nans = 0, best = 0;
    bool any = false;
    for (size_t k = 0; k < s.loss.size(); ++k) {
        if (std::isnan(s.loss[k])) {
            ++nans;
            continue;
        }
        if (!any || s.loss[k] < s.loss[best]) best = k;
        any = true;
    }
    if (!any)
        return fail(makeError(ErrorKind::Failed,
                              "every grid point gave a NaN loss (surface written to " + args.out + ")"));
    const int64_t bx = static_cast<int64_t>(best) % s.nx(), by = static_cast<int64_t>(best) / s.nx();
    const std::string how = std::string(r->batched ? "batched" : "per point") +
                            (r->ranks > 1 ? ", " + std::to_string(r->ranks) + " MPI ranks" : "");
    std::printf("wrote %s: %lldx%lld points in %.2f s (%s), min loss %.4f at (%.3f, %.3f), %zu NaN; "
                "directions %s %s\n",
                args.out.c_str(), static_cast<long long>(s.nx()), static_cast<long long>(s.ny()), r->seconds,
                how.c_str(), s.loss[best], s.x[static_cast<size_t>(bx)],
                s.is2d() ? s.y[static_cast<size_t>(by)] : 0.0, nans,
                r->directionsWritten ? "written to" : "read from", r->directionsPath.c_str());
    if (!args.model2.empty())
        if (const auto b = linearBarrier(s))
            std::printf("straight line %s -> %s: loss barrier %.4g at x = %.3g (loss %.4g; ends %.4g and %.4g; "
                        "%lld points on the line)\n",
                        args.model.c_str(), args.model2.c_str(), b->height, b->at, b->loss, b->start, b->end,
                        static_cast<long long>(b->points));
    if (const auto& c = r->connectivity)
        std::printf("Bezier curve %s -> %s (%d steps, %.1f s): loss barrier %.4g at t = %.3g; straight line: %.4g at "
                    "t = %.3g; wrote %s\n",
                    args.model.c_str(), args.model2.c_str(), c->steps, c->seconds, c->curveBarrier, c->curveBarrierAt,
                    c->lineBarrier, c->lineBarrierAt, c->path.c_str());
    if (const auto& c = r->curvature) {
        std::string values;
        for (double v : c->eigenvalues)
            values += (values.empty() ? "" : ", ") + formatNumber(v);
        std::printf("hessian: top eigenvalues %s", values.c_str());
        if (c->traceSamples > 0)
            std::printf("; trace %s +- %s (%d Hutchinson samples)", formatNumber(c->trace).c_str(),
                        formatNumber(c->traceStdError).c_str(), c->traceSamples);
        if (!c->esdNodes.empty()) std::printf("; spectral density: %zu Ritz values", c->esdNodes.size());
        if (c->products > 0)
            std::printf("; %lld Hessian-vector products in %.2f s", static_cast<long long>(c->products), c->seconds);
        std::printf("\n");
    }
    if (!r->spectrumPath.empty()) std::printf("wrote %s (eigenvalue spectral density)\n", r->spectrumPath.c_str());
    return 0;
}

int runLandscapeCommand(int argc, char** argv) {
    int code = 0;
    auto line = parseLandscapeCommand(argc, argv, code);
    if (!line) return code;
    return runLandscapeHeadless(line->args);
}

} // namespace ts::app
