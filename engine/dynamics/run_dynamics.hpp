// Reads what the dynamics views show out of a recorded run: the overview (scalars, anomalies, per-layer
// summaries over every snapshot), one layer's neuron series (density image and blue-noise sample) and one
// layer's distributions over the run (ridgelines of weights, activations and gradients). Each reads only what
// it draws: the series view reads one row per time point, never the whole run.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/dynamics/anomalies.hpp"
#include "engine/dynamics/distributions.hpp"
#include "engine/dynamics/series_sampling.hpp"
#include "engine/runs/run_store.hpp"

namespace ts::dynamics {

using SummaryRow = std::array<double, runs::kSummaryStats>;

struct RunOverview {
    std::vector<int64_t> scalarSteps;
    std::vector<std::string> scalarNames;
    std::vector<std::vector<double>> scalarValues; // [name][row], NaN where not logged
    std::vector<Anomaly> anomalies;                // scalars' anomalies, then layers' non-finite onsets
    std::vector<int64_t> snapshotSteps;
    struct Layer {
        std::string name, type;
        int64_t neurons = 0, params = 0;
        std::vector<SummaryRow> summary; // per snapshot (docs/RUN_FORMAT.md `summary`)
        int64_t firstNonFinite = -1;     // snapshot where activations or gradients first held NaN/Inf
        std::vector<int64_t> matrixShape; // [rows, cols] of the weight matrix the run stores (empty: none)
        std::vector<int64_t> inputs;      // the layers it reads (-1: the input); empty: unknown (a chain)
    };
    std::vector<Layer> layers;
    // The snapshot of a step (the last one at or before it; 0 when before the first).
    int64_t snapshotAt(int64_t step) const;
};
Expected<RunOverview> loadOverview(const runs::RunReader& reader, const AnomalyOptions& o = {});

struct SeriesViewOptions {
    int maxPoints = 512;
    int width = 384, height = 160; // the density image
    SamplingOptions sampling;
    int64_t maxBytes = int64_t(1) << 30;
};
struct LayerSeriesView {
    int layer = -1;
    std::string name;
    runs::Kind kind = runs::Kind::Activation;
    int statistic = 0;
    int level = 0;
    std::vector<int64_t> steps;
    SeriesMatrix matrix;
    DensityImage density;
    SeriesSample sample;
    double readMs = 0, densityMs = 0, sampleMs = 0;
};
Expected<LayerSeriesView> loadLayerSeries(const runs::RunReader& reader, int layer, runs::Kind kind, int statistic,
                                          const SeriesViewOptions& o = {});

struct LayerDistributions {
    int layer = -1;
    std::string name;
    Ridgelines weights, activations, gradients; // empty (no rows) when the layer has none
};
// maxRows snapshots spread evenly over the run (always the first and the last), `bins` per row for the
// weights; activations and gradients (histograms over neurons) get about 2 sqrt(neurons) bins, 12 to `bins`.
// atSteps, when given: one row per step instead, the snapshot at or before it (the first snapshot for steps
// before it), so a second run is compared at the same training steps.
Expected<LayerDistributions> loadDistributions(const runs::RunReader& reader, int layer, int maxRows = 24,
                                               int bins = 64, const std::vector<int64_t>* atSteps = nullptr);

// The index of a layer by its name (exact, else the only one containing it); -1 when none or ambiguous.
int findLayer(const runs::RunReader& reader, const std::string& name);

} // namespace ts::dynamics
