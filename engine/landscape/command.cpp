// The landscape computation behind the `landscape` command: model/data/directions setup, evaluation (across
// MPI ranks when started so), the surface file, the projection, connectivity and curvature files, the figure.
#include "engine/landscape/command.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "engine/capture/checkpoint_weights.hpp"
#include "engine/capture/dataset.hpp"
#include "engine/capture/model.hpp"
#include "engine/core/image.hpp"
#include "engine/core/log.hpp"
#include "engine/landscape/connectivity.hpp"
#include "engine/landscape/distributed.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/hessian.hpp"
#include "engine/landscape/mesh.hpp"
#include "engine/landscape/plot.hpp"
#include "engine/landscape/tensor_io.hpp"
#include "engine/runs/checkpoint.hpp"
#include "engine/runs/run_store.hpp"

namespace ts::landscape {

namespace {

Error usage(const std::string& m) {
    return makeError(ErrorKind::Usage, m);
}

Expected<std::unique_ptr<capture::Model>> loadFor(const std::string& spec, const capture::Dataset& d) {
    return capture::loadModel(spec, d.sampleShape, d.numClasses);
}

// The run's checkpoint steps, at most `maxSteps` evenly spaced ones, always with the last.
Expected<std::vector<int64_t>> runCheckpointSteps(const std::string& run, int64_t maxSteps) {
    std::error_code ec;
    if (!std::filesystem::is_directory(run, ec)) return usage("run " + run + " is not a folder");
    const auto all = runs::listCheckpoints(run);
    if (all.size() < 2)
        return usage("run " + run + " has " + std::to_string(all.size()) +
                     " checkpoints; a trajectory needs at least two (record with train --checkpoint-every N or "
                     "tensorscape.init(..., checkpoints=N))");
    if (static_cast<int64_t>(all.size()) <= maxSteps) return all;
    std::vector<int64_t> picked;
    for (int64_t i = 0; i < maxSteps; ++i) {
        const size_t k = static_cast<size_t>(i * int64_t(all.size() - 1) / (maxSteps - 1));
        if (picked.empty() || picked.back() != all[k]) picked.push_back(all[k]);
    }
    TS_LOG_INFO("landscape: %zu of the run's %zu checkpoints (--max-steps)", picked.size(), all.size());
    return picked;
}

Expected<TensorList> checkpointWeights(const std::string& spec, const capture::Dataset& d, DirType type,
                                       const ParameterSpace& like) {
    if (!std::filesystem::exists(spec)) return usage(spec + ": checkpoint not found");
    TS_ASSIGN_OR_RETURN(m, loadFor(spec, d));
    auto space = parameterSpace(*m, type);
    if (space.live.size() != like.live.size())
        return usage(spec + ": has " + std::to_string(space.live.size()) + " tensors but the model has " +
                     std::to_string(like.live.size()));
    return space.snapshot();
}

HostArray doubles(const std::vector<double>& v) {
    HostArray a;
    a.shape = {static_cast<int64_t>(v.size())};
    a.data = v;
    a.float64 = true;
    return a;
}

// --directions hessian: computes the top eigenvectors (and what else was asked) and writes them with their
// values to the default directions file, or reads them back from a Hessian file written before.
Expected<Directions> hessianDirectionsFor(const LandscapeArgs& args, capture::Model& model,
                                          const ParameterSpace& space, const EvalSet& set,
                                          LandscapeResult& result) {
    LandscapeResult::Curvature c;
    const std::string& path = args.directions;
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        Expected<DirectionsFile> file = directionsFileExists(path) ? readDirectionsFile(path)
                                                                   : Expected<DirectionsFile>(usage(""));
        if (!file || file->attributes["tensorscape_directions"] != "hessian")
            return usage(path + " exists and does not hold Hessian directions; move it away or choose another "
                                "--out");
        TS_LOG_INFO("landscape: reading Hessian directions from %s", path.c_str());
        TS_ASSIGN_OR_RETURN(dirs, loadDirections(path));
        TS_TRY(checkDirectionShapes(dirs.x, space, path, "xdirection"));
        if (args.grid.is2d()) {
            if (!dirs.is2d()) return usage(path + ": has one Hessian direction, but a 2D grid was asked");
            TS_TRY(checkDirectionShapes(dirs.y, space, path, "ydirection"));
        }
        if (auto values = readArray(path, "hessian_eigenvalues")) c.eigenvalues = values->data;
        if (auto trace = readArray(path, "hessian_trace"); trace && trace->data.size() == 3) {
            c.trace = trace->data[0];
            c.traceStdError = trace->data[1];
            c.traceSamples = static_cast<int>(trace->data[2]);
        }
        auto nodes = readArray(path, "esd_nodes");
        auto weights = readArray(path, "esd_weights");
        if (nodes && weights && nodes->data.size() == weights->data.size()) {
            c.esdNodes = nodes->data;
            c.esdWeights = weights->data;
        }
        result.curvature = c;
        return dirs;
    }
    HessianOptions opt;
    opt.topK = std::max(args.hessianTop, args.grid.is2d() ? 2 : 1);
    opt.traceSamples = args.hessianTrace;
    opt.esdRuns = args.hessianEsd;
    opt.seed = args.seed;
    TS_LOG_INFO("landscape: Hessian of the loss over %lld samples (top %d eigenpairs%s%s)",
                static_cast<long long>(set.inputs.size(0)), opt.topK, opt.traceSamples ? ", trace" : "",
                opt.esdRuns ? ", density" : "");
    TS_ASSIGN_OR_RETURN(r, analyseHessian(model, set, opt));
    auto dirs = hessianDirections(r, args.grid.is2d());
    const std::map<std::string, std::string> attrs = {{"tensorscape_model", args.model},
                                                      {"tensorscape_directions", "hessian"},
                                                      {"tensorscape_dir_type", "weights"},
                                                      {"tensorscape_seed", std::to_string(args.seed)},
                                                      {"tensorscape_hessian_samples",
                                                       std::to_string(set.inputs.size(0))}};
    TS_TRY(saveDirections(path, dirs, attrs));
    TS_TRY(writeArray(path, "hessian_eigenvalues", doubles(r.eigenvalues), false));
    TS_TRY(writeArray(path, "hessian_residuals", doubles(r.residuals), false));
    if (r.traceSamples > 0)
        TS_TRY(writeArray(path, "hessian_trace", doubles({r.trace, r.traceStdError, double(r.traceSamples)}),
                          false));
    if (!r.esdNodes.empty()) {
        TS_TRY(writeArray(path, "esd_nodes", doubles(r.esdNodes), false));
        TS_TRY(writeArray(path, "esd_weights", doubles(r.esdWeights), false));
    }
    result.directionsWritten = true;
    c.eigenvalues = r.eigenvalues;
    c.trace = r.trace;
    c.traceStdError = r.traceStdError;
    c.traceSamples = r.traceSamples;
    c.esdNodes = r.esdNodes;
    c.esdWeights = r.esdWeights;
    c.products = r.products;
    c.seconds = r.seconds;
    result.curvature = c;
    return dirs;
}

} // namespace

namespace {

// What every rank loads before the directions: data, model (at the run's last checkpoint with --run), the
// parameter space, the trajectory's checkpoints and the origin.
struct Prepared {
    capture::DataSplit split;
    bool train = true;
    std::string modelSpec;
    std::unique_ptr<capture::Model> model;
    ParameterSpace space;
    std::vector<TensorList> checkpoints;
    std::vector<int64_t> runSteps;
    TensorList weights;

    const capture::Dataset& data() const { return train ? split.train : split.validation; }
};

Expected<std::unique_ptr<Prepared>> prepare(const LandscapeArgs& args) {
    TS_TRY(validateGrid(args.grid));
    auto p = std::make_unique<Prepared>();
    capture::DataOptions dopt;
    dopt.limit = args.limit;
    dopt.seed = args.seed;
    TS_ASSIGN_OR_RETURN(split, capture::loadDataset(args.data, dopt));
    p->split = std::move(split);
    p->train = args.split == "train";
    const capture::Dataset& data = p->data();
    if (data.size() == 0) return usage("data '" + args.data + "' has no " + args.split + " samples");

    p->modelSpec = args.model;
    if (!args.run.empty()) {
        TS_ASSIGN_OR_RETURN(steps, runCheckpointSteps(args.run, args.runMaxSteps));
        p->runSteps = std::move(steps);
        if (p->modelSpec.empty()) {
            TS_ASSIGN_OR_RETURN(reader, runs::RunReader::open(args.run));
            p->modelSpec = reader->info().model;
            if (p->modelSpec.empty()) return usage("run " + args.run + " does not name its model: give --model");
        }
    }
    torch::manual_seed(args.seed); // built-in models initialise from torch's global generator
    TS_ASSIGN_OR_RETURN(model, loadFor(p->modelSpec, data));
    p->model = std::move(model);
    p->space = parameterSpace(*p->model, args.dirType);
    for (const auto& c : args.trajectory) {
        TS_ASSIGN_OR_RETURN(w, checkpointWeights(c, data, args.dirType, p->space));
        p->checkpoints.push_back(std::move(w));
    }
    for (int64_t step : p->runSteps) { // the model ends holding the last one: the origin
        TS_ASSIGN_OR_RETURN(tensors, runs::readCheckpoint(args.run, step));
        if (auto st = capture::loadCheckpoint(*p->model, tensors); !st)
            return usage(runs::checkpointPath(args.run, step) + ": " + st.message());
        p->checkpoints.push_back(p->space.snapshot());
    }
    p->weights = p->space.snapshot();
    return p;
}

// Reads a directions file and checks it against the model and the grid.
Expected<Directions> readDirectionsFor(const std::string& path, const ParameterSpace& space, const GridSpec& grid) {
    TS_ASSIGN_OR_RETURN(dirs, loadDirections(path));
    TS_TRY(checkDirectionShapes(dirs.x, space, path, "xdirection"));
    if (grid.is2d()) {
        if (!dirs.is2d()) return usage(path + ": has no ydirection, but a 2D grid was asked (use --x alone for 1D)");
        TS_TRY(checkDirectionShapes(dirs.y, space, path, "ydirection"));
    }
    return dirs;
}

// The directions (rank 0, or the only process): read, or made and written.
Expected<Directions> setUpDirections(const LandscapeArgs& args, Prepared& p, LandscapeResult& result) {
    const capture::Dataset& data = p.data();
    std::error_code ec;
    if (args.hessian)
        return hessianDirectionsFor(args, *p.model, p.space, {data.inputs, data.labels}, result);
    if (std::filesystem::exists(args.directions, ec) && !directionsFileExists(args.directions))
        // A file that exists but is not a directions file (empty, truncated, text, other groups) is an error:
        // it is the user's, and writing new directions would destroy it.
        return usage(args.directions +
                     " exists but is not a readable directions file (HDF5 with an 'xdirection' group); "
                     "move it away or name another --directions file");
    if (directionsFileExists(args.directions)) {
        TS_LOG_INFO("landscape: reading directions from %s (--norm, --ignore, --seed, --model2/3 do not apply)",
                    args.directions.c_str());
        return readDirectionsFor(args.directions, p.space, args.grid);
    }
    Directions dirs;
    const DirectionOptions dopt2{args.norm, args.ignore};
    if (!p.checkpoints.empty()) {
        TS_ASSIGN_OR_RETURN(pca, pcaDirections(p.checkpoints, p.weights, args.ignore));
        dirs = std::move(pca);
    } else {
        dirs = randomDirections(p.weights, dopt2, args.seed, args.grid.is2d());
    }
    if (!args.model2.empty()) {
        TS_ASSIGN_OR_RETURN(w2, checkpointWeights(args.model2, data, args.dirType, p.space));
        TS_ASSIGN_OR_RETURN(dx, targetDirection(p.weights, w2));
        dirs.x = std::move(dx);
    }
    if (!args.model3.empty() && args.grid.is2d()) {
        TS_ASSIGN_OR_RETURN(w3, checkpointWeights(args.model3, data, args.dirType, p.space));
        TS_ASSIGN_OR_RETURN(dy, targetDirection(p.weights, w3));
        dirs.y = std::move(dy);
    }
    std::map<std::string, std::string> attrs = {{"tensorscape_model", p.modelSpec},
                                                {"tensorscape_norm", normName(args.norm)},
                                                {"tensorscape_ignore", ignoreName(args.ignore)},
                                                {"tensorscape_dir_type", dirTypeName(args.dirType)},
                                                {"tensorscape_seed", std::to_string(args.seed)}};
    if (!p.checkpoints.empty()) attrs["tensorscape_directions"] = "pca";
    if (!args.run.empty()) attrs["tensorscape_run"] = args.run;
    TS_TRY(saveDirections(args.directions, dirs, attrs));
    result.directionsWritten = true;
    // From here on the directions as stored (float32, as the reference stores them): what another rank, or a
    // later run with --directions, reads, so every use of them gives the same numbers.
    return readDirectionsFor(args.directions, p.space, args.grid);
}

// Every rank's outcome of a step: when any rank failed, every rank stops (the failing ones with their own
// error, the others with a silent one), so no rank waits forever for the others.
Status agree(const Ranks& ranks, Status status) {
    if (!ranks.distributed()) return status;
    if (allRanksAgree(ranks, status.isOk())) return Status::ok();
    if (!status.isOk()) return makeError(status.error().kind, "rank " + std::to_string(ranks.rank) + ": " + status.message());
    return makeError(ErrorKind::Usage, ""); // another rank said why
}

// The grid over all ranks: units of whole evaluator passes, taken from a shared counter; rank 0 recomputes the
// points of units that failed elsewhere.
Expected<Surface> evaluateAcrossRanks(SurfaceEvaluator& ev, const GridSpec& grid, const Ranks& ranks,
                                      const GridRunOptions& run) {
    Surface surface = Surface::onGrid(grid);
    const int64_t total = grid.pointCount();
    const int64_t unit = ev.unitPoints();
    const int64_t units = (total + unit - 1) / unit;
    const char* failEnv = std::getenv("TS_LANDSCAPE_FAIL_RANK"); // fault injection for the tests
    const int failRank = failEnv ? std::atoi(failEnv) : -1;
    auto pointsOf = [&](int64_t u) {
        std::vector<std::array<double, 2>> pts;
        for (int64_t k = u * unit; k < std::min(total, (u + 1) * unit); ++k)
            pts.push_back({surface.x[static_cast<size_t>(k % surface.nx())],
                           surface.is2d() ? surface.y[static_cast<size_t>(k / surface.nx())] : 0.0});
        return pts;
    };
    int64_t done = 0;
    auto rows = runUnitsAcrossRanks(ranks, units, [&](int64_t u, std::vector<PointRow>& out) -> std::string {
        const auto pts = pointsOf(u);
        std::string failure;
        Expected<std::vector<PointValue>> values = std::vector<PointValue>{};
        if (ranks.rank == failRank && ranks.distributed())
            failure = "TS_LANDSCAPE_FAIL_RANK made this rank fail";
        else if (!(values = ev.evaluate(pts)))
            failure = values.error().message;
        for (size_t j = 0; j < pts.size(); ++j) {
            const double k = double(u * unit + int64_t(j));
            if (failure.empty())
                out.push_back({k, (*values)[j].loss, (*values)[j].acc, 1});
            else
                out.push_back({k, 0, 0, 0});
        }
        done += static_cast<int64_t>(pts.size());
        if (ranks.root() && run.progress) run.progress(std::min(done * ranks.size, total), total, surface, 1);
        return failure;
    });
    if (!ranks.root()) return surface;
    std::vector<int64_t> failed;
    for (const auto& r : rows) {
        const auto k = static_cast<size_t>(r.index);
        if (r.ok == 0) {
            failed.push_back(static_cast<int64_t>(k));
            continue;
        }
        surface.loss[k] = r.loss;
        surface.acc[k] = r.acc;
        surface.computed[k] = 1;
    }
    if (!failed.empty()) {
        TS_LOG_WARN("landscape: rank 0 recomputes %zu points whose units failed on other ranks", failed.size());
        // Whole units again, so each point is computed in the same pass as anywhere else.
        std::vector<int64_t> redo;
        for (int64_t k : failed)
            if (redo.empty() || redo.back() != k / unit) redo.push_back(k / unit);
        for (int64_t u : redo) {
            TS_ASSIGN_OR_RETURN(values, ev.evaluate(pointsOf(u)));
            for (size_t j = 0; j < values.size(); ++j) {
                const auto k = static_cast<size_t>(u * unit) + j;
                surface.loss[k] = values[j].loss;
                surface.acc[k] = values[j].acc;
                surface.computed[k] = 1;
            }
        }
    }
    if (!surface.complete())
        return makeError(ErrorKind::Failed, "landscape: points are missing after gathering the ranks' results");
    if (run.progress) run.progress(total, total, surface, 1);
    return surface;
}

// <out>.proj.h5: the trajectory's coordinates (and with --run each point's training step), as the
// reference's projection files hold them.
Status writeProjection(const LandscapeArgs& args, const Prepared& p, LandscapeResult& result) {
    std::string stem = args.out;
    if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".h5") stem.resize(stem.size() - 3);
    result.projectionPath = stem + ".proj.h5";
    HostArray px, py;
    px.shape = py.shape = {static_cast<int64_t>(result.trajectory.size())};
    px.float64 = py.float64 = true;
    for (const auto& pt : result.trajectory) {
        px.data.push_back(pt[0]);
        py.data.push_back(pt[1]);
    }
    TS_TRY(writeArray(result.projectionPath, "proj_xcoord", px, true));
    TS_TRY(writeArray(result.projectionPath, "proj_ycoord", py, false));
    if (!p.runSteps.empty()) {
        HostArray steps;
        steps.shape = px.shape;
        steps.float64 = true;
        steps.data.assign(p.runSteps.begin(), p.runSteps.end());
        TS_TRY(writeArray(result.projectionPath, "proj_steps", steps, false));
    }
    return {};
}

// --curve bezier: trains the curve between the origin (model) and model2, writes <out>.curve.h5.
Status connectModels(const LandscapeArgs& args, Prepared& p, LandscapeResult& result) {
    const capture::Dataset& data = p.data();
    TS_ASSIGN_OR_RETURN(w1, checkpointWeights(args.model2, data, DirType::Weights, p.space));
    CurveOptions co;
    co.steps = args.curveSteps;
    co.lr = args.curveLr;
    co.seed = args.seed;
    TS_LOG_INFO("landscape: training a Bezier curve to %s (%d steps)", args.model2.c_str(), co.steps);
    const EvalSet set{data.inputs, data.labels};
    TS_ASSIGN_OR_RETURN(r, fitBezierCurve(*p.model, p.weights, w1, set, set, co));
    std::string stem = args.out;
    if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".h5") stem.resize(stem.size() - 3);
    LandscapeResult::Connectivity c;
    c.path = stem + ".curve.h5";
    TS_TRY(writeArray(c.path, "t", doubles(r.t), true));
    TS_TRY(writeArray(c.path, "curve_loss", doubles(r.curveLoss), false));
    TS_TRY(writeArray(c.path, "curve_acc", doubles(r.curveAcc), false));
    TS_TRY(writeArray(c.path, "line_loss", doubles(r.lineLoss), false));
    TS_TRY(writeArray(c.path, "line_acc", doubles(r.lineAcc), false));
    for (size_t i = 0; i < r.bend.size(); ++i) { // the bend: bend_0, bend_1, ... in named_parameters() order
        const auto t = r.bend[i].to(torch::kFloat64).contiguous();
        HostArray a;
        a.shape = t.sizes().vec();
        a.data.assign(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
        TS_TRY(writeArray(c.path, "bend_" + std::to_string(i), a, false));
    }
    c.t = r.t;
    c.curveLoss = r.curveLoss;
    c.lineLoss = r.lineLoss;
    c.curveBarrier = r.curveBarrier;
    c.lineBarrier = r.lineBarrier;
    c.curveBarrierAt = r.curveBarrierAt;
    c.lineBarrierAt = r.lineBarrierAt;
    c.steps = r.steps;
    c.seconds = r.seconds;
    result.connectivity = c;
    return {};
}

// The axes' names for the figure, from the directions file's own record of what it holds.
PlotLabels directionNames(const LandscapeArgs& args) {
    PlotLabels l;
    auto file = readDirectionsFile(args.directions);
    if (!file) return l;
    auto& attrs = file->attributes;
    const std::string kind = attrs["tensorscape_directions"];
    char buf[160];
    if (kind == "hessian") {
        auto values = readArray(args.directions, "hessian_eigenvalues");
        for (int i = 0; i < 2; ++i) {
            std::snprintf(buf, sizeof buf, "Hessian eigenvector %d (eigenvalue %.4g, unit norm)", i + 1,
                          values && values->data.size() > size_t(i) ? values->data[size_t(i)] : NAN);
            (i == 0 ? l.xName : l.yName) = buf;
        }
    } else if (kind == "pca") {
        for (int i = 0; i < 2; ++i) {
            const auto& r = file->explainedVarianceRatio;
            if (r.size() > size_t(i))
                std::snprintf(buf, sizeof buf, "PC%d of the training path (%.1f%% of its variance)", i + 1, 100 * r[size_t(i)]);
            else
                std::snprintf(buf, sizeof buf, "PC%d of the training path", i + 1);
            (i == 0 ? l.xName : l.yName) = buf;
        }
    } else if (!attrs["tensorscape_norm"].empty()) {
        const std::string how = "random direction, " + attrs["tensorscape_norm"] + "-normalised, seed " + attrs["tensorscape_seed"];
        l.xName = args.model2.empty() ? how : "model2 - model (" + std::filesystem::path(args.model2).filename().string() + ")";
        l.yName = args.model3.empty() ? how : "model3 - model (" + std::filesystem::path(args.model3).filename().string() + ")";
    } else {
        l.xName = "xdirection of " + args.directions;
        l.yName = "ydirection of " + args.directions;
    }
    return l;
}

// The grid to evaluate: the user's, or around a trajectory without --x/--y, a square that holds the path.
GridSpec gridFor(const LandscapeArgs& args, const std::vector<std::array<double, 2>>& path) {
    GridSpec g = args.grid;
    if (args.rangeGiven || path.empty() || !g.is2d()) return g;
    double r = 0;
    for (const auto& pt : path)
        r = std::max({r, std::abs(pt[0]), std::abs(pt[1])});
    if (!(r > 0) || !std::isfinite(r)) return g;
    r *= 1.25;
    g.x.min = g.y->min = -r;
    g.x.max = g.y->max = r;
    TS_LOG_INFO("landscape: grid fitted to the trajectory: [%.3g, %.3g]^2 (give --x/--y to choose)", -r, r);
    return g;
}

} // namespace

std::string spectrumPathFor(const std::string& png) {
    std::filesystem::path p(png);
    return (p.parent_path() / (p.stem().string() + "_esd.png")).string();
}

Expected<LandscapeResult> computeLandscape(const LandscapeArgs& args, const GridRunOptions& run, const Ranks& ranks) {
    const auto start = std::chrono::steady_clock::now();
    LandscapeResult result;
    result.directionsPath = args.directions;
    // Every rank loads the data and the model; rank 0 makes (or reads) the directions and writes them; the
    // others then read that file (it must be in a folder they share).
    auto prepared = prepare(args);
    TS_TRY(agree(ranks, prepared.status()));
    Prepared& p = **prepared;
    result.trajectorySteps = p.runSteps;
    Directions dirs;
    Status made = Status::ok();
    if (ranks.root()) {
        auto d = setUpDirections(args, p, result);
        if (d) dirs = std::move(*d);
        made = d.status();
    }
    TS_TRY(agree(ranks, made));
    if (!ranks.root()) {
        Status seen = Status::ok();
        if (!directionsFileExists(args.directions)) {
            seen = usage("cannot see the directions file " + args.directions +
                         " that rank 0 wrote: with mpirun, --out (and --directions) must be in a folder every rank shares");
        } else if (auto d = readDirectionsFor(args.directions, p.space, args.grid)) {
            dirs = std::move(*d);
        } else {
            seen = d.status();
        }
        TS_TRY(agree(ranks, seen));
    } else if (ranks.distributed()) {
        TS_TRY(agree(ranks, Status::ok()));
    }
    if (!args.grid.is2d()) dirs.y.clear();

    if (!p.checkpoints.empty()) {
        TS_ASSIGN_OR_RETURN(path, projectTrajectory(p.checkpoints, p.weights, dirs, Projection::Cos));
        result.trajectory = std::move(path);
    }
    const GridSpec grid = gridFor(args, result.trajectory);

    EvaluatorOptions eopt;
    eopt.mode = args.mode;
    const capture::Dataset& data = p.data();
    auto created = SurfaceEvaluator::create(*p.model, p.space, dirs, {data.inputs, data.labels}, eopt);
    TS_TRY(agree(ranks, created.status()));
    auto& ev = *created;
    result.batched = ev->batched();
    Surface surface;
    if (ranks.distributed()) {
        TS_ASSIGN_OR_RETURN(s, evaluateAcrossRanks(*ev, grid, ranks, run));
        surface = std::move(s);
    } else {
        TS_ASSIGN_OR_RETURN(s, ev->evaluateGrid(grid, run));
        surface = std::move(s);
    }
    result.ranks = ranks.size;
    if (!ranks.root()) {
        result.worker = true;
        return result;
    }
    const std::string prefix = args.split == "train" ? "train" : "test";
    TS_TRY(writeSurfaceFile(args.out, surface, args.directions, prefix));
    if (!result.trajectory.empty()) TS_TRY(writeProjection(args, p, result));
    if (args.curve) TS_TRY(connectModels(args, p, result));
    if (!args.png.empty()) {
        MeshOptions mo;
        mo.logScale = args.logScale;
        mo.contourStep = 0.5; // the reference's plot_2D levels: 0.1, 0.6, 1.1, ...
        auto mesh = buildHeightField(surface, mo);
        if (!result.trajectory.empty()) addTrajectory(mesh, surface, result.trajectory, mo);
        PlotLabels labels = directionNames(args);
        if (const auto& c = result.connectivity)
            for (size_t i = 0; i < c->t.size(); ++i)
                labels.curve.push_back({c->t[i], c->curveLoss[i]});
        labels.title = std::string(args.split == "train" ? "train" : "validation") + " loss of " +
                       std::filesystem::path(p.modelSpec).filename().string() + " on " + args.data + " (" +
                       std::to_string(data.size()) + " samples), " + std::to_string(surface.nx()) +
                       (surface.is2d() ? "x" + std::to_string(surface.ny()) : "") + " points";
        TS_TRY(writePng(args.png, renderPlot(surface, mesh, labels)));
        // The eigenvalue spectral density, when computed (or read back with the directions), beside it.
        if (const auto& c = result.curvature; c && !c->esdNodes.empty()) {
            SpectrumLabels sl;
            sl.title = "Hessian eigenvalue spectral density of " +
                       std::filesystem::path(p.modelSpec).filename().string() + " (" + args.split + " loss, " +
                       std::to_string(data.size()) + " samples)";
            sl.topEigenvalues = c->eigenvalues;
            sl.trace = c->traceSamples > 0 ? c->trace : 0;
            result.spectrumPath = spectrumPathFor(args.png);
            TS_TRY(writePng(result.spectrumPath, renderSpectrum(c->esdNodes, c->esdWeights, sl)));
        }
    }
    result.surface = std::move(surface);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace ts::landscape
