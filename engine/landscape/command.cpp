// The headless `landscape` subcommand: flag parsing, model/data/directions setup, evaluation with a
// terminal progress bar, the surface file, an optional picture.
#include "engine/landscape/command.hpp"

#include <unistd.h>

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

std::string landscapeHelp() {
    return "tensorscape landscape: compute a loss surface (Li et al. 2018) and write it as HDF5 laid out "
           "like\n"
           "the reference loss-landscape scripts' files.\n\n"
           "usage: tensorscape landscape [options]\n\n"
           "  --model PATH|builtin:mlp|builtin:cnn  model (TorchScript .pt or built-in)   [builtin:mlp]\n"
           "  --model2 PATH       x direction = model2 - model (1D interpolation between checkpoints)\n"
           "  --model3 PATH       y direction = model3 - model\n"
           "  --trajectory A,B,.. checkpoints along training: PCA directions (new directions file) and the\n"
           "                      path projected to <out>.proj.h5 and drawn in --png\n"
           "  --run DIR           a recorded run with checkpoints: its trajectory (PCA directions, as\n"
           "                      --trajectory) around its last checkpoint; the model defaults to the run's\n"
           "  --max-steps N       at most N of the run's checkpoints, evenly spaced        [100]\n"
           "  --data SPEC         fashion-mnist | IDX folder | spirals|circles|xor|gaussians  "
           "[fashion-mnist]\n"
           "  --split NAME        train | validation                                   [train]\n"
           "  --limit N           first N samples of the split (0: all)                  [2000]\n"
           "  --out FILE.h5       surface file                                          [landscape.h5]\n"
           "  --directions FILE.h5  read if it exists, else written  [<out>.directions.h5]\n"
           "  --directions hessian  the two sharpest directions: top eigenvectors of the loss Hessian (unit\n"
           "                      norm, so coordinates are distances in weight space), with the eigenvalues\n"
           "                      (and trace, density when asked) written to <out>.directions.h5\n"
           "  --curve bezier      with --model2 and a 1D --x: also train a quadratic Bezier curve between the\n"
           "                      two models (mode connectivity) and report its barrier and the line's\n"
           "  --curve-steps N     Adam steps on the curve's bend                          [300]\n"
           "  --curve-lr X        their learning rate                                     [0.01]\n"
           "  --hessian-top K     eigenpairs to compute, largest first                  [2]\n"
           "  --hessian-trace N   Hutchinson samples for the Hessian trace (0: none)     [0]\n"
           "  --hessian-esd N     stochastic Lanczos quadrature runs for the eigenvalue density (0: none) [0]\n"
           "  --grid N            N x N grid over [-1, 1]^2                              [51]\n"
           "  --x MIN:MAX:N       x axis (alone: a 1D plot), as the reference scripts spell it\n"
           "  --y MIN:MAX:N       y axis\n"
           "  --norm MODE         filter | layer | weight | none                         [filter]\n"
           "  --ignore MODE       biasbn (zero directions for 1-D parameters) | none      [biasbn]\n"
           "  --dir-type TYPE     weights | states (states adds buffers such as BN statistics) [weights]\n"
           "  --seed N            random directions (and built-in model initialisation)   [123]\n"
           "  --mode MODE         auto | batched | unbatched                             [auto]\n"
           "  --png FILE.png      also write a top-down picture of the surface\n"
           "  --log               log-scale heights in the picture\n"
           "  --quiet             no progress bar\n"
           "  --help              this text\n\n"
           "exit codes: 0 done, 1 the evaluation failed (e.g. NaN everywhere), 2 bad usage or input.\n";
}

namespace {

Error usage(const std::string& m) {
    return makeError(ErrorKind::Usage, m);
}

Expected<int64_t> parseInt(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
    try {
        size_t used = 0;
        const long long x = std::stoll(v, &used);
        if (used != v.size() || x < lo || x > hi) throw std::out_of_range(v);
        return static_cast<int64_t>(x);
    } catch (const std::exception&) {
        return usage("--" + flag + " expects a whole number in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + v + "'");
    }
}

} // namespace

Expected<LandscapeArgs> parseLandscapeArgs(const std::vector<std::string>& argv, bool& help) {
    LandscapeArgs a;
    help = false;
    bool haveGrid = false, haveX = false, haveY = false, hessianFlag = false, haveModel = false, curveFlag = false;
    for (size_t i = 0; i < argv.size(); ++i) {
        std::string flag = argv[i], value;
        if (flag == "--help" || flag == "-h") {
            help = true;
            return a;
        }
        if (flag.rfind("--", 0) != 0)
            return usage("unexpected argument '" + flag + "' (see tensorscape landscape --help)");
        flag = flag.substr(2);
        const size_t eq = flag.find('=');
        bool inlineValue = false;
        if (eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag = flag.substr(0, eq);
            inlineValue = true;
        }
        const bool isSwitch = flag == "log" || flag == "quiet";
        if (isSwitch) {
            if (inlineValue) return usage("--" + flag + " takes no value");
            (flag == "log" ? a.logScale : a.quiet) = true;
            continue;
        }
        if (!inlineValue) {
            if (i + 1 >= argv.size()) return usage("--" + flag + " needs a value");
            value = argv[++i];
        }
        if (flag == "model") {
            a.model = value;
            haveModel = true;
        } else if (flag == "run")
            a.run = value;
        else if (flag == "max-steps") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 2, 100000));
            a.runMaxSteps = n;
        }
        else if (flag == "model2")
            a.model2 = value;
        else if (flag == "model3")
            a.model3 = value;
        else if (flag == "trajectory") {
            a.trajectory.clear();
            for (size_t p = 0; p <= value.size();) {
                const size_t q = std::min(value.find(',', p), value.size());
                if (q > p) a.trajectory.push_back(value.substr(p, q - p));
                p = q + 1;
            }
            if (a.trajectory.size() < 2)
                return usage("--trajectory needs at least two checkpoints (A,B,...)");
        } else if (flag == "data")
            a.data = value;
        else if (flag == "split") {
            if (value != "train" && value != "validation")
                return usage("--split expects train or validation, got '" + value + "'");
            a.split = value;
        } else if (flag == "limit") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 0, int64_t{1} << 40));
            a.limit = n;
        } else if (flag == "out")
            a.out = value;
        else if (flag == "directions") {
            a.hessian = value == "hessian";
            a.directions = a.hessian ? "" : value;
        } else if (flag == "curve") {
            if (value != "bezier") return usage("--curve expects bezier, got '" + value + "'");
            a.curve = true;
        } else if (flag == "curve-steps") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 0, 1000000));
            a.curveSteps = static_cast<int>(n);
            curveFlag = true;
        } else if (flag == "curve-lr") {
            char* end = nullptr;
            const double x = std::strtod(value.c_str(), &end);
            if (value.empty() || *end || !(x > 0) || !std::isfinite(x))
                return usage("--curve-lr expects a positive number, got '" + value + "'");
            a.curveLr = x;
            curveFlag = true;
        } else if (flag == "hessian-top") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 1, 100));
            a.hessianTop = static_cast<int>(n);
            hessianFlag = true;
        } else if (flag == "hessian-trace") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 0, 100000));
            a.hessianTrace = static_cast<int>(n);
            hessianFlag = true;
        } else if (flag == "hessian-esd") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 0, 1000));
            a.hessianEsd = static_cast<int>(n);
            hessianFlag = true;
        }        else if (flag == "grid") {
            TS_ASSIGN_OR_RETURN(n, parseInt(flag, value, 1, 100000));
            a.grid.x = GridAxis{-1, 1, n};
            a.grid.y = GridAxis{-1, 1, n};
            haveGrid = true;
        } else if (flag == "x") {
            TS_ASSIGN_OR_RETURN(ax, parseAxis(value));
            a.grid.x = ax;
            haveX = true;
            a.rangeGiven = true;
        } else if (flag == "y") {
            TS_ASSIGN_OR_RETURN(ax, parseAxis(value));
            a.grid.y = ax;
            haveY = true;
            a.rangeGiven = true;
        } else if (flag == "norm") {
            TS_ASSIGN_OR_RETURN(n, parseNorm(value));
            a.norm = n;
        } else if (flag == "ignore") {
            TS_ASSIGN_OR_RETURN(ig, parseIgnore(value));
            a.ignore = ig;
        } else if (flag == "dir-type") {
            TS_ASSIGN_OR_RETURN(t, parseDirType(value));
            a.dirType = t;
        } else if (flag == "seed") {
            TS_ASSIGN_OR_RETURN(s, parseInt(flag, value, 0, std::numeric_limits<int64_t>::max()));
            a.seed = static_cast<uint64_t>(s);
        } else if (flag == "mode") {
            if (value == "auto")
                a.mode = EvalMode::Auto;
            else if (value == "batched")
                a.mode = EvalMode::Batched;
            else if (value == "unbatched")
                a.mode = EvalMode::Unbatched;
            else
                return usage("--mode expects auto, batched or unbatched, got '" + value + "'");
        } else if (flag == "png")
            a.png = value;
        else
            return usage("unknown flag '--" + flag + "' (see tensorscape landscape --help)");
    }
    if (haveGrid && (haveX || haveY)) return usage("use either --grid N or --x/--y, not both");
    if (haveY && !haveX) return usage("--y needs --x as well");
    if (haveX && !haveY) a.grid.y.reset(); // the reference scripts: --x alone is a 1D plot
    TS_TRY(validateGrid(a.grid));
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
        if (!haveModel) a.model.clear(); // the run's
    }
    if (curveFlag && !a.curve) return usage("--curve-steps/--curve-lr need --curve bezier");
    if (a.curve) {
        if (a.model2.empty()) return usage("--curve bezier needs --model2 (the curve joins --model and --model2)");
        if (a.grid.is2d()) return usage("--curve bezier needs a 1D axis (--x MIN:MAX:N alone)");
        if (a.dirType != DirType::Weights) return usage("--curve bezier needs --dir-type weights");
    }
    if (hessianFlag && !a.hessian) return usage("--hessian-top/-trace/-esd need --directions hessian");
    if (a.hessian) {
        if (!a.model2.empty() || !a.model3.empty() || !a.trajectory.empty())
            return usage("--directions hessian does not combine with --model2, --model3 or --trajectory");
        if (a.dirType != DirType::Weights)
            return usage("--directions hessian needs --dir-type weights (buffers have no curvature)");
        if (a.grid.is2d() && a.hessianTop < 2)
            return usage("--hessian-top must be at least 2 for a 2D grid (x and y are the top two eigenvectors)");
    }
    return a;
}

namespace {

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
    c.esdNodes = r.esdNodes.size();
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
    }
    result.surface = std::move(surface);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
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

int runLandscapeCommand(int argc, char** argv) {
    std::vector<std::string> av(argv, argv + argc);
    bool help = false;
    auto args = parseLandscapeArgs(av, help);
    if (!args) return fail(args.error());
    if (help) {
        std::fputs(landscapeHelp().c_str(), stdout);
        return 0;
    }
    // Under mpirun with several ranks: join the job (MPI_Finalize when this function returns).
    auto session = RankSession::start();
    if (!session) return fail(session.error());
    const Ranks& ranks = session->ranks();
    if (ranks.distributed() && ranks.root())
        TS_LOG_INFO("landscape: %d MPI ranks share the grid", ranks.size);
    ProgressBar bar(!args->quiet && ranks.root());
    GridRunOptions run;
    run.progressive = false; // headless: no preview needed, one pass in file order
    run.progress = [&](int64_t done, int64_t total, const Surface&, int64_t) { bar.update(done, total); };
    Expected<LandscapeResult> r = [&]() -> Expected<LandscapeResult> {
        try {
            return computeLandscape(*args, run, ranks);
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
                              "every grid point gave a NaN loss (surface written to " + args->out + ")"));
    const int64_t bx = static_cast<int64_t>(best) % s.nx(), by = static_cast<int64_t>(best) / s.nx();
    const std::string how = std::string(r->batched ? "batched" : "per point") +
                            (r->ranks > 1 ? ", " + std::to_string(r->ranks) + " MPI ranks" : "");
    std::printf("wrote %s: %lldx%lld points in %.2f s (%s), min loss %.4f at (%.3f, %.3f), %zu NaN; "
                "directions %s %s\n",
                args->out.c_str(), static_cast<long long>(s.nx()), static_cast<long long>(s.ny()), r->seconds,
                how.c_str(), s.loss[best], s.x[static_cast<size_t>(bx)],
                s.is2d() ? s.y[static_cast<size_t>(by)] : 0.0, nans,
                r->directionsWritten ? "written to" : "read from", r->directionsPath.c_str());
    if (!args->model2.empty())
        if (const auto b = linearBarrier(s))
            std::printf("straight line %s -> %s: loss barrier %.4g at x = %.3g (loss %.4g; ends %.4g and %.4g; "
                        "%lld points on the line)\n",
                        args->model.c_str(), args->model2.c_str(), b->height, b->at, b->loss, b->start, b->end,
                        static_cast<long long>(b->points));
    if (const auto& c = r->connectivity)
        std::printf("Bezier curve %s -> %s (%d steps, %.1f s): loss barrier %.4g at t = %.3g; straight line: %.4g at "
                    "t = %.3g; wrote %s\n",
                    args->model.c_str(), args->model2.c_str(), c->steps, c->seconds, c->curveBarrier, c->curveBarrierAt,
                    c->lineBarrier, c->lineBarrierAt, c->path.c_str());
    if (const auto& c = r->curvature) {
        std::string values;
        for (double v : c->eigenvalues)
            values += (values.empty() ? "" : ", ") + formatNumber(v);
        std::printf("hessian: top eigenvalues %s", values.c_str());
        if (c->traceSamples > 0)
            std::printf("; trace %s +- %s (%d Hutchinson samples)", formatNumber(c->trace).c_str(),
                        formatNumber(c->traceStdError).c_str(), c->traceSamples);
        if (c->esdNodes > 0) std::printf("; spectral density: %zu Ritz values", c->esdNodes);
        if (c->products > 0) std::printf("; %lld Hessian-vector products in %.2f s", static_cast<long long>(c->products), c->seconds);
        std::printf("\n");
    }
    return 0;
}

} // namespace ts::landscape
