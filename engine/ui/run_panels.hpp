// Panels of the views of whole runs (engine/dynamics): the snapshot level (curves with anomalies, layers
// coloured by window averages around the focus snapshot, each with its trend), the layer level (density image
// of every neuron's series under blue-noise sampled polylines, brushing), distributions over time (ridgelines,
// a second run overlaid) and Hinton diagrams. Functions of plain state returning edits, like panels.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/dynamics/hinton.hpp"
#include "engine/dynamics/run_dynamics.hpp"
#include "engine/dynamics/weight_atlas.hpp"

namespace ts::ui {

// Where a panel goes: floating (placed on first use, movable) or fixed to a rectangle (headless --view).
struct PanelRect {
    float x = 0, y = 0, w = 0, h = 0;
    bool fixed = false;
};

// The summary statistics a layer row can show (docs/RUN_FORMAT.md `summary` columns).
struct SummaryChoice {
    int column;
    const char* name;
};
inline constexpr std::array<SummaryChoice, 5> kSummaryChoices{{{4, "mean activation"},
                                                               {5, "RMS activation"},
                                                               {3, "gradient norm"},
                                                               {6, "mean |gradient|"},
                                                               {2, "dead fraction"}}};

struct DynamicsView {
    const dynamics::RunOverview* run = nullptr; // null: still loading (status says)
    std::string status;
    int64_t focus = 0;   // snapshot index
    int window = 4;      // half width of the averaging window, snapshots
    int choice = 0;      // index into kSummaryChoices
    int selectedLayer = -1;
    PanelRect rect;
};
struct DynamicsEdits {
    std::optional<int64_t> focus; // a click on the curves, an anomaly or a trend
    std::optional<int> window, choice, selectLayer;
};
DynamicsEdits dynamicsPanel(const DynamicsView& v);

struct SeriesPanelView {
    const dynamics::LayerSeriesView* series = nullptr;
    uint64_t version = 0; // changes whenever *series does (its density image is kept on the GPU until then; 0: none)
    std::string status;
    int64_t focusStep = -1;
    std::vector<int64_t> brushed; // selected neurons (drawn in yellow)
    PanelRect rect;
};
struct SeriesEdits {
    // A dragged box: time points [t0, t1] (indices into the series' points) and a value band.
    std::optional<std::array<float, 4>> brush;
    bool clearBrush = false;
    std::optional<int> kind, statistic; // 0 activation, 1 gradient; statistic index (stats_layout.h order)
    std::optional<int64_t> focusStep;   // a click without a drag
};
SeriesEdits seriesPanel(const SeriesPanelView& v);

struct DistributionsPanelView {
    const dynamics::LayerDistributions* dist = nullptr;
    const dynamics::LayerDistributions* compare = nullptr; // a second run's same layer, overlaid
    std::string compareName, status;
    int64_t focusStep = -1;
    PanelRect rect;
};
void distributionsPanel(const DistributionsPanelView& v);

struct HintonPanelView {
    const dynamics::HintonBlocks* blocks = nullptr;
    std::string layer, status;
    int64_t step = -1;
    PanelRect rect;
};
void hintonPanel(const HintonPanelView& v);

// Every weight of a model: the atlas (engine/dynamics/weight_atlas.hpp) reduced to the canvas' cells by the
// caller, drawn as cells (2 px each); wheel zooms about the mouse, dragging pans, a double click fits.
struct WeightsPanelView {
    std::span<const dynamics::WeightMatrix> matrices; // names and shapes, for the tooltip
    const dynamics::AtlasLayout* layout = nullptr;
    const std::vector<float>* cells = nullptr; // cellCols x cellRows, row-major, for `region`
    uint64_t cellsVersion = 0;                 // changes whenever *cells does (0: not cached)
    int cellCols = 0, cellRows = 0;
    std::array<double, 4> region{};            // x0, y0, w, h of the atlas the cells cover (weight units)
    int mode = 0;                              // 0 value, 1 update |w_t - w_prev|, 2 gradient
    bool hasUpdate = false, hasGradient = false;
    float range = 1.0f;                        // colour scale: [-range, range] (value, gradient), [0, range]
    bool perTensor = true;                     // each tensor on its own scale (cells are then in units of it)
    bool aggregated = false;                   // `range` is that of the aggregated cells shown
    int64_t step = -1, totalWeights = 0;
    std::string status;
    std::string note;                          // what is not shown (a recorded run's layers without a matrix)
    PanelRect rect;
};
struct WeightsEdits {
    std::optional<int> mode;
    std::optional<bool> perTensor;
    std::optional<std::array<double, 4>> region; // zoomed or panned
    bool fit = false;
    int canvasCols = 0, canvasRows = 0;          // the cells the canvas holds now (what to rasterise)
};
constexpr float kWeightCellPixels = 1.0f; // one weight per pixel at full zoom
WeightsEdits weightsPanel(const WeightsPanelView& v);

// A small bar of toggles for the views above (bits in the order dynamics, series, distributions, Hinton,
// weights, explain, landscape).
// `recorded`: the first three need a recorded run and are offered only then. Returns the new bits.
unsigned viewsBar(unsigned shown, bool recorded);

} // namespace ts::ui
