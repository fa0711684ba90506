// Panels of the views of whole runs (engine/dynamics): the snapshot level (curves with anomalies, layers
// coloured by window averages around the focus snapshot, each with its trend), the layer level (density image
// of every neuron's series under blue-noise sampled polylines, brushing), distributions over time (ridgelines,
// a second run overlaid) and Hinton diagrams. Functions of plain state returning edits, like panels.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/dynamics/hinton.hpp"
#include "engine/dynamics/run_dynamics.hpp"

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

// A small bar of toggles for the views above (bits in the order dynamics, series, distributions, Hinton).
// `recorded`: the first three need a recorded run and are offered only then. Returns the new bits.
unsigned viewsBar(unsigned shown, bool recorded);

} // namespace ts::ui
