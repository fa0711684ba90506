// ImGui panels as functions of plain state (STYLE.md point 9): each takes what it shows and returns the
// edits the user made. None reaches into engine internals, so tests drive them without a GPU.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ts::ui {

// --- View controls and frame readout ---
struct ViewSettings {
    int colormap = 5; // ts::Colormap index (5: rdbu)
    bool lit = true;
    float splatBelowPixels = 1.5f;
    bool vsync = true;
    int statistic = 0;          // index into the statistic names the caller passes
    float edgeThreshold = 0.5f; // fraction of the strongest edge below which edges are hidden
    float bundlingStrength = 0.85f;
    int lodBudget = 200000; // instances drawn individually
    bool showEdges = true;
    bool operator==(const ViewSettings&) const = default;
};

struct FrameStats {
    float frameMs = 0.0f; // 0: not measured yet (nothing is shown)
    uint64_t neuronsTotal = 0;
    uint64_t instancesDrawn = 0;
    std::string device;
    uint64_t gpuBytes = 0;
    bool offscreen = false; // headless: the time to render a picture, not a frame rate anyone sees
};

struct ViewEdits {
    ViewSettings settings;
    bool changed = false;
    bool fitRequested = false;
    bool screenshotRequested = false;
};

ViewEdits viewPanel(const ViewSettings& settings, const FrameStats& stats,
                    std::span<const std::string> statisticNames);

// --- Training controls and charts ---
struct TrainingView {
    bool available = false;
    bool paused = false;
    bool finished = false;
    bool recorded = false; // a recorded run (open): nothing to control, values as they were logged
    int64_t step = 0;
    int64_t totalSteps = 0;
    float learningRate = 0.0f;
    int batchSize = 0;
    std::string model, data, status;
    std::vector<float> trainLoss, valLoss, trainAcc, valAcc; // one entry per recorded step
};

struct TrainingEdits {
    bool play = false, pause = false, stepOnce = false;
    std::optional<float> learningRate;
    bool any() const { return play || pause || stepOnce || learningRate; }
};

TrainingEdits trainingPanel(const TrainingView& view);

// --- Model tree / layer list ---
struct LayerRow {
    std::string name, type, shape;
    int64_t parameters = 0;
    int64_t neurons = 0;
    int depth = 0; // nesting in the module tree
};

struct LayerEdits {
    std::optional<int> selected;
    bool flyTo = false;
    std::optional<std::string> filter; // the search text, when the user changed it
    std::optional<std::string> toggleCollapse; // a stage whose fold button was pressed
};

// The model as a tree of stages (first name component; collapsible, closed by default for deep models) with
// full names in tooltips, and a search box: with a filter, a flat list of the layers whose name contains it.
// Each stage row has a fold button: drawn as one box in the scene (stages listed in `collapsed`) or expanded.
LayerEdits layerPanel(std::span<const LayerRow> layers, int selected, const std::string& filter = {},
                      std::span<const std::string> collapsed = {});

// Stages of a layer list (the Model panel, the Run dynamics table): layers [i, end) share the first name
// component of layer i ("layer1" of "layer1.0.conv1"); end is i + 1 when layer i stands alone (a one-layer
// stage, or a name without a dot). nameOf(k) gives layer k's name.
template <class NameOf>
size_t stageEnd(size_t i, size_t count, NameOf&& nameOf) {
    const std::string& name = nameOf(i);
    const std::string stage = name.substr(0, name.find('.'));
    if (stage == name) return i + 1;
    size_t j = i + 1;
    while (j < count && nameOf(j).rfind(stage + ".", 0) == 0)
        ++j;
    return j;
}

// --- Layer inspector: distributions over time, two snapshots side by side ---
struct Histogram {
    std::vector<float> counts;
    float lo = 0.0f, hi = 0.0f;
};

// Attention maps of an attention layer (a MultiheadAttention's attn_weights): every head's queries x keys
// map, the mean over the probe batch.
struct AttentionMaps {
    std::string layer;
    int heads = 0, queries = 0, keys = 0;
    std::vector<float> values; // [heads][queries][keys], row-major
    bool empty() const { return heads <= 0 || queries <= 0 || keys <= 0; }
};

// A rows x cols map mean-pooled into at most maxCells x maxCells cells: each cell is the mean of a block of
// ceil(rows / maxCells) x ceil(cols / maxCells) entries (the last block of a row or column may be smaller).
struct PooledMap {
    int rows = 0, cols = 0;
    int blockRows = 1, blockCols = 1; // entries of the map per cell
    std::vector<float> values;        // rows x cols, row-major
};
PooledMap poolMap(std::span<const float> map, int rows, int cols, int maxCells);

struct InspectorView {
    std::string layer;
    int64_t step = 0;
    int timelineIndex = 0, timelineSize = 0;
    Histogram activations, gradients, weights;
    std::optional<int64_t> compareStep; // when set, compare* hold the other snapshot
    Histogram compareActivations, compareGradients, compareWeights;
    std::vector<float> gradNormHistory; // per snapshot, for this layer
    float deadFraction = 0.0f, updateRatio = 0.0f;
    std::string selectedNeuron;            // e.g. "fc1 #12 (value 0.83)"; empty: none selected
    std::vector<std::string> contributors; // traced neurons, strongest first ("<- input #301 (0.92)")
    // A recorded run: the selected neuron's mean activation over the whole run (windows of 2^level
    // snapshots: min, max and mean of each window).
    std::vector<float> seriesMean, seriesMin, seriesMax;
    int64_t seriesFirstStep = 0, seriesLastStep = 0;
    int seriesLevel = 0;
    // The selected layer's attention maps (shared, not copied each frame); null for other layers.
    std::shared_ptr<const AttentionMaps> attention;
};

struct InspectorEdits {
    std::optional<int> timelineIndex;
    std::optional<int> compareIndex; // -1 clears the comparison
    bool replay = false;
    bool clearSelection = false;
    std::optional<int> openAttentionHead; // a head's thumbnail was clicked
};

InspectorEdits inspectorPanel(const InspectorView& view);

// One head of an attention layer at full resolution (pooled only beyond the window's pixels): queries down,
// keys across, colour by weight relative to the head's largest; hovering names the query, key and weight.
// `query` (-1: none) is outlined: the row of the selected neuron.
struct AttentionEdits {
    std::optional<int> head; // another head chosen
    bool close = false;
};
AttentionEdits attentionPanel(const AttentionMaps& maps, int head, int query = -1);

// --- Health alerts ---
enum class Severity { Info, Warning, Error };

struct HealthAlert {
    Severity severity = Severity::Warning;
    std::string message;
    std::string layer;
    int layerIndex = -1;
    int64_t step = 0;
    int timelineIndex = -1;
};

// Returns the index of the alert the user clicked ("jump to it").
std::optional<int> healthPanel(std::span<const HealthAlert> alerts);

// --- Landscape controls ---
struct LandscapeSettings {
    int grid = 51;
    float range = 1.0f;
    int norm = 0; // 0 filter, 1 layer, 2 weight, 3 none
    bool logScale = true;
    bool operator==(const LandscapeSettings&) const = default;
};

struct LandscapeView {
    LandscapeSettings settings;
    bool computing = false;
    float progress = 0.0f;
    std::string status;
    std::optional<float> minLoss;
    // --directions hessian --hessian-esd N: the eigenvalue spectral density as log10 values per column (floor
    // -10), over [spectrumMin, spectrumMax]; empty: none.
    std::vector<float> spectrum;
    float spectrumMin = 0, spectrumMax = 0;
    int keyframes = 0;         // fly-through keyframes saved so far
    std::string keyframesPath; // where they are saved
};

struct LandscapeEdits {
    LandscapeSettings settings;
    bool recompute = false, cancel = false, flyToMinimum = false;
    bool addKeyframe = false, clearKeyframes = false;
};

LandscapeEdits landscapePanel(const LandscapeView& view);

// --- Names in the 3D scene ---
// A name anchored at a point of the scene (world space), drawn in screen space so it faces the camera and
// stays readable at any distance. Stages come before layers; a label is shown only when the thing it names
// is at least `minPixels` tall on screen and its text does not overlap a label already placed (thinning by
// level of detail).
struct SceneLabel {
    std::string text;            // what is drawn
    std::string name;            // the stage, group or layer it names ("" = text)
    float anchor[3] = {0, 0, 0}; // world position (the top of the named box)
    float worldSize = 1.0f;      // height of the named box in world units
    int priority = 0;            // 0: stage, 1: layer; lower goes first
    bool foldable = false;       // names a stage or group that a click folds into one box (or unfolds)
    bool always = false;         // drawn however small its box (the network's input and output layers), if it fits
};
// Where a label was drawn this frame (screen pixels), for clicks on it.
struct PlacedLabel {
    size_t index = 0; // into the labels passed
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};
// viewProj: column-major 4x4 (Vulkan clip space, y down). Returns how many labels were drawn; `placed`, when
// given, receives their rectangles. A foldable label under the mouse is outlined, with a tooltip.
int sceneLabels(std::span<const SceneLabel> labels, const float* viewProj, float width, float height,
                float minPixels = 18.0f, std::vector<PlacedLabel>* placed = nullptr);
// The foldable label drawn at (x, y) (screen pixels), if any.
std::optional<size_t> foldableLabelAt(std::span<const SceneLabel> labels, std::span<const PlacedLabel> placed,
                                      float x, float y);

// Test hook: when enabled, panels record the screen rectangle of every interactive item by label, so tests
// can click them through ImGui's normal input path.
struct ItemRect {
    float x0, y0, x1, y1;
};
void enableItemRecording(bool on);
// --- Explain: an attribution heatmap of one sample for one class ---
inline constexpr const char* kExplainMethods[] = {"gradient", "gradxinput", "smoothgrad", "ig", "lrp", "lrp-ab"};
inline constexpr int kExplainMethodCount = 6;
struct PanelImage;
struct ExplainView {
    int method = 4;  // index into kExplainMethods
    int target = -1; // class; -1: the predicted one
    int sample = 0;
    int samples = 0, classes = 0;
    int64_t step = -1;      // of the shown explanation (-1: none yet)
    std::string line, error; // what it shows; why it could not be computed
    std::shared_ptr<const PanelImage> image;
    bool fill = false; // the panel fills the display (headless --view explain)
    bool live = false; // training: recomputed at every snapshot
};
struct ExplainEdits {
    int method = 4, target = -1, sample = 0;
    bool changed = false;
};
ExplainEdits explainPanel(const ExplainView& view);

// The live Loss landscape panel (training): the loss surface around the current weights with the path so far (a picture made by the
// session), and how often it is recomputed.
struct LiveLandscapeView {
    int64_t step = -1;       // of the shown surface (-1: none yet)
    std::string line, error; // what it shows; why it could not be computed
    std::shared_ptr<const PanelImage> image;
    int every = 5, grid = 21;
    bool fill = false; // the panel fills the display (headless --view landscape)
    bool live = false; // training: recomputed every `every` snapshots
    bool computing = false; // a surface is being computed beside training now
};
struct LiveLandscapeEdits {
    int every = 5, grid = 21;
    bool changed = false;
};
LiveLandscapeEdits liveLandscapePanel(const LiveLandscapeView& view);

// Records the last ImGui item under `label` (when recording is on): for panels in other files.
void recordLastItem(const char* label);
const std::map<std::string, ItemRect>& recordedItems();

} // namespace ts::ui
