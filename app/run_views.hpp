// The views of whole runs in the program: owns a second reader of the run (its loads run on one worker
// thread so the window never waits on HDF5), hands finished loads to the UI thread whole, and builds the
// Run dynamics, Layer series, Distributions and Hinton panels. Shared selection: a layer chosen here or in the
// scene, a focus snapshot, brushed neurons; what the user picks comes back as requests to the screen.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/dynamics/hinton.hpp"
#include "engine/dynamics/run_dynamics.hpp"
#include "engine/dynamics/weight_atlas.hpp"

namespace ts::app {

class RunViews {
  public:
    // Explain and Landscape are drawn by the training screen (they need the live model), the others here.
    enum View : unsigned { Dynamics = 1, Series = 2, Distributions = 4, Hinton = 8, Weights = 16, Explain = 32, Landscape = 64 };
    // View names for --view: dynamics (Run dynamics + Layer series), series, distributions, hinton, weights.
    static std::optional<unsigned> parseView(const std::string& name);

    // How the views reach the run's reader: a function that calls its argument with the reader under the lock
    // of whoever owns it (LiveSession::withRunReader); empty for a live session, where only Hinton diagrams are
    // shown, fed by the screen. compareDir: a second run whose distributions are overlaid (layers matched by
    // name, else position), read through a reader of its own.
    using ReaderAccess = std::function<Status(const std::function<Status(const runs::RunReader&)>&)>;
    static Expected<std::unique_ptr<RunViews>> create(ReaderAccess access, const std::string& runName,
                                                      const std::string& compareDir = {});
    ~RunViews();

    unsigned shown() const { return m_shown; }
    void setShown(unsigned views) { m_shown = views; }
    // The layer the views show, by name (the scene's selection); unknown names are ignored.
    void selectLayer(const std::string& name);
    const std::string& selectedLayer() const { return m_layerName; }
    // Focuses the snapshot at or before `step` (--step), once the run's overview has arrived.
    void focusStep(int64_t step) { m_pendingFocusStep = step; }
    // The focused snapshot's step (-1: none yet).
    int64_t focusedStep() const;
    // Live sessions: the selected layer's weight matrix (rows = outputs), aggregated here for the Hinton panel.
    void setWeights(const std::string& layer, int64_t rows, int64_t cols, std::vector<float> w, int64_t step);

    // Live sessions: every parameter of a new snapshot for the weights view (the previous one is kept for the
    // update colouring).
    void setParameters(int64_t step, std::vector<dynamics::WeightMatrix> values, std::vector<std::vector<float>> grads);

    struct Requests {
        std::optional<std::string> layer; // chosen in the dynamics table
        std::optional<int64_t> step;      // focus: show the snapshot at or before this step
        std::optional<std::string> neuron; // "LAYER:INDEX" to select and trace (the first brushed neuron)
        std::optional<std::vector<int64_t>> brushed; // every brushed neuron (indices in brushedLayer), to mark in 3D
        std::string brushedLayer;                    // the layer of `brushed`
    };
    // fill: the shown views split the whole display between them (headless --view); else floating windows.
    Requests buildUi(bool fill);
    // Headless: blocks until no load (or raster) is pending or running, then applies the results.
    void waitIdle();
    // The first failed load's message (empty: none).
    std::string error() const;
    // What the views found, for the headless VIEW.json: anomalies of the run and the layer shown.
    std::vector<dynamics::Anomaly> anomalies() const;
    bool recorded() const { return bool(m_access); }
    bool hasWeights() const { return m_weights && !m_weights->matrices.empty(); }
    // Why the Hinton view of a recorded run has nothing to show (empty: it has a matrix, or is not shown).
    const std::string& hintonStatus() const { return m_hintonStatus; }

  private:
    RunViews() = default;
    void worker();
    void post(std::function<void()> job);
    void collect(); // UI thread: takes finished results
    void requestLoads();
    // Its steps: one load each, posted to the worker when what it depends on changed.
    void requestOverview();
    void chooseDefaultLayer();
    void requestSeries(const std::string& snaps);
    void requestMatrix();
    void requestWeights(const std::string& snaps);
    void requestDistributions(const std::string& snaps);

    // Worker side (the compared run's reader is used by the worker thread only).
    ReaderAccess m_access;
    std::unique_ptr<runs::RunReader> m_compareReader; // opened once: the compared run as it was then
    bool m_compareSame = false;                       // --compare names the run itself
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv, m_idle;
    std::deque<std::function<void()>> m_jobs;
    bool m_busy = false, m_stop = false;
    // Results handed over under m_mutex (whole objects, swapped).
    std::shared_ptr<const dynamics::RunOverview> m_doneOverview;
    std::shared_ptr<const dynamics::LayerSeriesView> m_doneSeries;
    std::shared_ptr<const dynamics::LayerDistributions> m_doneDist, m_doneCompare;
    struct Matrix {
        std::string layer;
        int64_t step = 0, rows = 0, cols = 0;
        std::vector<float> w;
    };
    std::shared_ptr<Matrix> m_doneMatrix; // a recorded run's weight matrix at the focus
    // The weights view's data: every matrix at one step, the updates since the snapshot before and the
    // gradients (when known), their atlas and colour ranges (value, update, gradient).
    struct WeightsData {
        uint64_t serial = 0; // unique per made (a raster's key; addresses can be reused)
        int64_t step = -1, total = 0;
        std::vector<dynamics::WeightMatrix> matrices;
        std::vector<std::vector<float>> update, grads;
        dynamics::AtlasLayout layout;
        float range[3] = {1, 1, 1};
        std::vector<float> inverse[3]; // per matrix: 1 / its own range of each colouring (per-tensor scales)
    };
    static std::shared_ptr<WeightsData> makeWeights(int64_t step, std::vector<dynamics::WeightMatrix> values,
                                                    std::vector<std::vector<float>> grads,
                                                    const std::vector<dynamics::WeightMatrix>* previous,
                                                    double aspect);
    double canvasAspect() const; // of the weights view's canvas (width / height), for the atlas layout
    std::shared_ptr<WeightsData> m_doneWeights;
    struct Cells { // a finished raster of the weights view and what it was made for
        std::vector<float> cells;
        int cols = 0, rows = 0, mode = 0;
        bool perTensor = true;
        std::array<double, 4> region{};
        uint64_t serial = 0;
        float contrast = 0; // colour range of aggregated cells (0: one weight per cell, the weights' own range)
    };
    std::shared_ptr<Cells> m_doneCells;
    void buildWeightsPanel(bool fill);
    std::string m_error;

    // UI side.
    unsigned m_shown = 0;
    std::string m_runName, m_compareName;
    std::shared_ptr<const dynamics::RunOverview> m_overview;
    std::shared_ptr<const dynamics::LayerSeriesView> m_series;
    std::shared_ptr<const dynamics::LayerDistributions> m_dist, m_compare;
    std::string m_layerName;
    int m_layer = -1;
    int m_kind = 0, m_statistic = 0; // series: activation mean
    int64_t m_focus = -1;            // snapshot index (-1: the last)
    std::optional<int64_t> m_pendingFocusStep;
    int m_window = 4, m_choice = 0;
    std::vector<int64_t> m_brushed;
    // What was requested last, so a change starts one load.
    bool m_overviewRequested = false;
    std::string m_seriesKey, m_distKey;
    double m_lastPoll = 0;
    bool m_runClosed = true;
    std::string m_matrixKey;    // layer and snapshot of the matrix asked for
    std::string m_hintonStatus; // why a recorded run has no Hinton diagram for the layer (empty: it has)
    std::shared_ptr<const WeightsData> m_weights;
    std::string m_weightsKey;           // recorded runs: the snapshot loaded
    int m_weightsMode = 0;
    bool m_perTensor = true, m_cellsPerTensor = true;
    float m_cellsContrast = 0;
    uint64_t m_cellsVersion = 0, m_seriesVersion = 0; // bumped when m_cells / m_series change (panel images)
    bool m_rasterPending = false; // a raster job is on the worker
    std::optional<std::array<double, 4>> m_region; // unset: fit the atlas
    int m_canvasCols = 0, m_canvasRows = 0;
    std::vector<float> m_cells;         // the raster drawn, and what it was made for
    int m_cellCols = 0, m_cellRows = 0;
    std::array<double, 4> m_cellsRegion{};
    uint64_t m_cellsSerial = 0;
    int m_cellsMode = -1;
    std::string m_hintonLayer;
    int64_t m_hintonStep = -1;
    dynamics::HintonBlocks m_hinton;
};

} // namespace ts::app
