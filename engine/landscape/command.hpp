// The landscape computation, headless: model + data + grid + directions -> surface .h5 (reference layout).
// It takes a plain option struct; the program's command line (app/landscape_cli.hpp) fills it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/distributed.hpp"
#include "engine/landscape/evaluator.hpp"
#include "engine/landscape/grid.hpp"

namespace ts::landscape {

struct LandscapeArgs {
    std::string model = "builtin:mlp";
    // x (y) direction = model2 (model3) - model, as the reference's --model_file2/3.
    std::string model2, model3;
    // Checkpoints along training (same architecture as `model`, usually ending with it): PCA directions when
    // the directions file is new, and their projection written to "<out>.proj.h5" (proj_xcoord,
    // proj_ycoord, as the reference's projection files) and drawn in the picture.
    std::vector<std::string> trajectory;
    // A recorded run (train --run DIR --checkpoint-every N, or the Python module with checkpoints=N): its
    // checkpoints are the trajectory and its last one the origin (the reference's plot_trajectory on the
    // final model); the model defaults to the run's. At most `runMaxSteps` checkpoints, evenly spaced.
    std::string run;
    int64_t runMaxSteps = 100;
    std::string data = "fashion-mnist";
    std::string split = "train"; // train | validation (the surface's metric names follow it)
    int64_t limit = 2000;        // first N samples of the split (0: all)
    std::string out = "landscape.h5";
    std::string directions; // read if it exists, else written; empty: "<out without .h5>.directions.h5"
    // --directions hessian: the two sharpest directions (top Hessian eigenvectors, unit norm), computed on the
    // evaluation set and written to the default directions file with the eigenvalues, the trace and the
    // spectral density (a hessian file there is read again; any other file there is an error).
    bool hessian = false;
    // --curve bezier (with --model2 and a 1D axis): also train a quadratic Bezier curve between model and
    // model2 (Garipov et al. 2018) and compare its loss barrier with the straight line's.
    bool curve = false;
    int curveSteps = 300;
    double curveLr = 0.01;
    int hessianTop = 2;   // eigenpairs (>= 2 for a 2D grid)
    int hessianTrace = 0; // Hutchinson samples (0: no trace)
    int hessianEsd = 0;   // stochastic Lanczos quadrature runs (0: no density)
    GridSpec grid;          // default 51x51 over [-1, 1]^2
    // --x/--y given: the axes' ranges are the user's. Without them, a grid around a trajectory (--trajectory,
    // --run) is fitted to the path: a square centred on the origin, 1.25 times the path's largest coordinate.
    bool rangeGiven = false;
    Norm norm = Norm::Filter;
    Ignore ignore = Ignore::BiasBn;
    DirType dirType = DirType::Weights;
    uint64_t seed = 123; // directions (and built-in model initialisation)
    EvalMode mode = EvalMode::Auto;
    std::string png; // optional top-down picture of the surface
    bool logScale = false;
    bool quiet = false;
};

struct LandscapeResult {
    Surface surface;
    std::string directionsPath;
    bool directionsWritten = false;
    std::vector<std::array<double, 2>> trajectory; // projected checkpoints (empty without --trajectory)
    std::vector<int64_t> trajectorySteps;          // --run: the training step of each projected checkpoint
    std::string projectionPath;
    std::string spectrumPath; // --png with a spectral density: spectrumPathFor(png)
    // --directions hessian: what was computed (or read back with the directions).
    struct Curvature {
        std::vector<double> eigenvalues;
        double trace = 0, traceStdError = 0;
        int traceSamples = 0;
        std::vector<double> esdNodes, esdWeights; // the spectral density's Ritz values and weights
        int64_t products = 0;
        double seconds = 0;
    };
    std::optional<Curvature> curvature;
    // --curve bezier: the trained curve and the straight line, evaluated at the same t (<out>.curve.h5).
    struct Connectivity {
        std::vector<double> t, curveLoss, lineLoss;
        double curveBarrier = 0, lineBarrier = 0, curveBarrierAt = 0, lineBarrierAt = 0;
        int steps = 0;
        double seconds = 0;
        std::string path;
    };
    std::optional<Connectivity> connectivity;
    bool batched = false;
    double seconds = 0;
    int ranks = 1;       // MPI ranks that evaluated the grid
    bool worker = false; // a rank other than 0: it wrote nothing and has no surface
};

// Where --png FILE.png puts the eigenvalue spectral density figure: FILE_esd.png.
std::string spectrumPathFor(const std::string& png);

// Loads model and data, sets up or reads the directions, evaluates and writes the surface file.
// Under mpirun (`ranks` from RankSession::start()) every rank calls it: the grid is spread over the ranks and
// rank 0 writes the files (see distributed.hpp).
Expected<LandscapeResult> computeLandscape(const LandscapeArgs& args, const GridRunOptions& run = {},
                                          const Ranks& ranks = {});

} // namespace ts::landscape
