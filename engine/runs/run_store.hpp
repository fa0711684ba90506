// The run store: one folder per training run (docs/RUN_FORMAT.md), HDF5 in SWMR mode so that it is readable
// while it is written and survives a killed writer. RunWriter appends snapshots of per-neuron statistics (the
// C++ trainer's `--run DIR`); RunReader opens a finished or growing run (written by the Python module or by
// the C++ trainer) for `tensorscape open`. Torch-free.
//
// Contract: a RunWriter or RunReader is used from one thread at a time. A reader sees only committed
// snapshots: it reads the commit counter (/steps) first and never reads rows past it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::runs {

inline constexpr int kFormatVersion = 1;
inline constexpr int kNeuronStats = 8; // rows of activation/gradient, the engine's order (stats_layout.h)
inline constexpr int kLayerStats = 8;  // count, mean, std, min, max, l2_norm, nan_count, inf_count
inline constexpr int kSummaryStats = 8; // per layer and snapshot, see LayerSummaryRow

enum class Kind { Activation, Gradient };
const char* kindName(Kind k);

struct RunLayer {
    std::string name, type;
    std::vector<int64_t> shape; // per sample
    int64_t neurons = 0, params = 0;
    // [rows, cols] of the weight matrix stored at every snapshot (a Linear's [out, in]; a convolution
    // flattened per output channel); empty when the run does not store it.
    std::vector<int64_t> matrixShape = {};
    // The layers whose outputs this one reads (indices; -1: the model input): the layer DAG. Empty when the
    // file does not say (a reader then assumes a chain).
    std::vector<int64_t> inputs = {};
};

struct RunInfo {
    std::string model, writer;
    int64_t every = 1, worldSize = 1;
    int histogramBins = 0;
    std::vector<int64_t> inputShape; // empty when unknown
};

// Layer-level statistics of a module's own parameters (or their gradients); NaN when there are none.
struct ParamStats {
    std::array<double, kLayerStats> v{};
    double count() const { return v[0]; }
    double mean() const { return v[1]; }
    double std() const { return v[2]; }
    double l2() const { return v[5]; }
};

// What health checks need of a layer at one snapshot, stored beside the per-neuron statistics so a long run's
// alerts are found without reading them (docs/RUN_FORMAT.md, `summary`).
struct LayerSummaryRow {
    std::array<double, kSummaryStats> v{};
    double activationNonFinite() const { return v[0]; } // NaN + Inf values over the batch and neurons
    double gradientNonFinite() const { return v[1]; }
    double deadFraction() const { return v[2]; }        // neurons whose activation was 0 on every row
    double gradientNorm() const { return v[3]; }        // L2 norm of the output gradient over the batch (NaN: none)
};
// The summary row of per-neuron statistics [8 x stride] (activation and gradient, either may be null).
LayerSummaryRow summarize(const float* activation, int64_t activationStride, const float* gradient,
                          int64_t gradientStride, int64_t neurons, int64_t rows);

struct ParamHistogram {
    std::vector<uint64_t> counts;
    double lo = 0, hi = 0;
};

// One layer of a snapshot to write. Per-neuron statistic s of neuron i is at activation[s * activationStride
// + i] (the reducer's layout; stride >= neurons); a null pointer writes NaN rows (no gradient reached it).
struct LayerRecord {
    const float* activation = nullptr;
    int64_t activationStride = 0;
    const float* gradient = nullptr;
    int64_t gradientStride = 0;
    int64_t rows = 0;
    ParamStats weight, weightGrad; // set NaN by default in the constructor
    ParamHistogram weightHist, weightGradHist;
    const float* matrix = nullptr; // rows x cols of RunLayer::matrixShape (null: a NaN row); ignored without one
    LayerRecord();
};

struct WriterOptions {
    std::string dir;
    RunInfo info;
    bool overwrite = false; // a folder that already holds a run is an error unless set
};

class RunWriter {
  public:
    // Creates DIR (and DIR/run.json); the HDF5 datasets are made by begin().
    static Expected<std::unique_ptr<RunWriter>> create(const WriterOptions& options);
    ~RunWriter(); // closes (marks the run closed)

    // Fixes the layers and scalar names and turns SWMR on (nothing can be created after that).
    Status begin(const std::vector<RunLayer>& layers, const std::vector<std::string>& scalarNames);
    bool begun() const;
    // One snapshot: records[i] for layer i. Committed (visible to readers) when this returns.
    Status appendSnapshot(int64_t step, const std::vector<LayerRecord>& records);
    // One log() call: values for some of the scalar names given to begin() (others NaN; unknown ones ignored).
    Status appendScalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
    Status close();

  private:
    RunWriter();
    struct Impl;
    std::unique_ptr<Impl> m;
};

// A time series of one neuron's statistic, possibly aggregated over windows of 2^level snapshots.
struct Series {
    int level = 0;              // 0: every snapshot
    std::vector<int64_t> steps; // first step of each window
    std::vector<float> min, max, mean;
};

// Every neuron's statistic over the run at up to maxPoints time points (see RunReader::layerSeries).
struct LayerSeries {
    int level = 0;              // 0: snapshots themselves; K: windows of 2^K snapshots (their means)
    std::vector<int64_t> steps; // first step of each point
    int64_t neurons = 0;
    std::vector<float> values;  // [points][neurons]
};

struct Scalars {
    std::vector<int64_t> steps;
    std::vector<std::string> names;
    std::vector<std::vector<double>> values; // values[name][row], NaN where not logged
    const std::vector<double>* find(const std::string& name) const;
};

class RunReader {
  public:
    // Checks the folder, the format and version; errors are one line naming the file and what is wrong.
    static Expected<std::unique_ptr<RunReader>> open(const std::string& dir);
    ~RunReader();

    const RunInfo& info() const;
    const std::vector<RunLayer>& layers() const;
    // Picks up snapshots committed since the last call (a growing run). Returns the committed count.
    Expected<int64_t> refresh();
    int64_t snapshots() const;
    const std::vector<int64_t>& steps() const;
    bool closed() const; // run.json says the writer closed it
    const std::string& path() const;

    // [8 x neurons] of one snapshot (row-major, the statistics' order).
    Expected<std::vector<float>> neuronStats(int layer, int64_t snapshot, Kind kind) const;
    int64_t rows(int layer, int64_t snapshot) const;
    Expected<ParamStats> paramStats(int layer, int64_t snapshot, bool gradient) const;
    Expected<ParamHistogram> paramHistogram(int layer, int64_t snapshot, bool gradient) const;
    // The layer's weight matrix at a snapshot (RunLayer::matrixShape); nullopt when the run does not store it.
    Expected<std::optional<std::vector<float>>> weightMatrix(int layer, int64_t snapshot) const;
    // Summary rows [first, first + count) of a layer; nullopt when the file has none (then read the statistics).
    Expected<std::optional<std::vector<LayerSummaryRow>>> summaries(int layer, int64_t first, int64_t count) const;
    Expected<Scalars> scalars() const;
    // One neuron's statistic over the run in at most maxPoints windows: activation `mean` and gradient
    // `mean_abs` come from the time pyramids (a few chunks per point), other statistics from level 0.
    Expected<Series> series(int layer, int64_t neuron, Kind kind, int statistic, int maxPoints) const;
    // Every neuron of a layer at once, one row read per point: all snapshots when there are at most maxPoints;
    // else the finest pyramid level that fits for the pyramided statistics (windowMeans), or maxPoints evenly
    // spaced snapshots. Refuses (one line) when points x neurons floats would pass maxBytes.
    Expected<LayerSeries> layerSeries(int layer, Kind kind, int statistic, int maxPoints, bool windowMeans = true,
                                      int64_t maxBytes = int64_t(1) << 30) const;

  private:
    RunReader();
    struct Impl;
    std::unique_ptr<Impl> m;
};

} // namespace ts::runs
