// The live training view, independent of where it is shown (window or headless frames): turns the session's
// timeline into scene values and bundled edges for the NetworkRenderer, and builds the ImGui panels
// (model tree, inspector, training, view, health) from plain state, applying the edits they return.
#pragma once

#include <memory>
#include <optional>

#include "app/live_session.hpp"
#include "app/run_views.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/network_renderer.hpp"
#include "engine/scene/scene.hpp"
#include "engine/ui/panels.hpp"

namespace ts::app {

class TrainingScreen {
  public:
    // `collapsed`: stages (module prefixes, e.g. "layer1") drawn as one box each at the start.
    // `runDir`/`compareDir`: the recorded run shown (and one compared with it) for the views of whole runs;
    // `views`: RunViews::View bits open at the start.
    static Expected<std::unique_ptr<TrainingScreen>> create(LiveSession& session,
                                                            const std::vector<std::string>& collapsed = {},
                                                            const std::string& runDir = {},
                                                            const std::string& compareDir = {}, unsigned views = 0);

    const scene::Scene& scene() const { return m_scene; }
    Aabb bounds() const { return m_bounds; }

    // Brings the renderer up to date with the timeline (values, edges, style). Cheap when nothing changed.
    Status update(render::NetworkRenderer& renderer);
    // Builds this frame's panels and applies the user's edits. Returns camera requests through the flags.
    void buildUi(render::Camera& camera, float aspect, const ui::FrameStats& stats);
    // Advances camera flights, the guided tour and timeline replay.
    void tick(render::Camera& camera, float dt);
    // Window only: the neuron under the mouse (when no panel has it) named in a tooltip: stage, layer, index,
    // shape and the shown statistic.
    void hoverTooltip(const render::NetworkRenderer& renderer, const render::Camera& camera, VkExtent2D extent);
    // The scripted flight for presentations: overview, then each layer in turn, then the overview again,
    // looping until toggled off (T key, or --tour).
    void toggleTour(const render::Camera& camera, float aspect);
    // The L key: the live Loss landscape view on or off.
    void toggleLandscape();
    bool touring() const { return m_tour; }
    void selectLayer(int layer) { m_selectedLayer = layer; }
    // Shows the snapshot at or before `step` (headless frames of a recorded run); nullopt follows the newest.
    void pinStep(std::optional<int64_t> step) { m_pinnedStep = step; }
    // A click in the view: on a stage or group name, folds that stage into one box (or unfolds it); elsewhere
    // picks the neuron under it (or clears the selection) and traces its contributors backward (|w * g|) and
    // where its signal goes forward (|w * a|), three hops each.
    Status click(render::NetworkRenderer& renderer, const render::Camera& camera, VkExtent2D extent,
                 glm::vec2 pixel);
    Status selectNeuron(render::NetworkRenderer& renderer, std::optional<uint32_t> neuron);
    // "LAYER:INDEX" (e.g. "fc2:3") -> global neuron id; errors name the layer or the range.
    Expected<uint32_t> parseNeuron(const std::string& spec) const;
    // "LAYER:I[,J,...]" (--select): the first is selected and traced, all are marked (as brushed in the layer
    // series view). Errors as parseNeuron's.
    Expected<std::vector<uint32_t>> parseNeurons(const std::string& spec) const;
    void markNeurons(std::vector<uint32_t> neurons) { m_brushedNeurons = std::move(neurons); }
    // Neurons marked in 3D now: the selected one and the brushed ones.
    size_t markedNeurons() const;

    // Headless --view: only the views of whole runs are drawn, filling the picture.
    void showOnlyRunViews(bool on) { m_onlyRunViews = on; }
    RunViews* runViews() { return m_runViews.get(); }
    // Selects a layer by name (--layer): the scene's selection and the run views'. Errors name the layer.
    Status selectLayerByName(const std::string& name);

    bool fitRequested = false, screenshotRequested = false;
    std::optional<bool> vsyncRequest;
    ui::ViewSettings settings;

    // Neurons coloured by relevance: the layers that have values in the picture now, and why none do (the
    // explanation's error, e.g. a model without an LRP rule), for the summary and the tooltip.
    size_t relevanceLayers() const { return m_relevanceLayers; }
    bool logRelevanceErrors = true; // a warning line when the explanation fails (off where the caller reports it)
    // The explanation the neurons show (its raw per-layer values), or null.
    std::shared_ptr<const LiveSession::Explanation> relevanceShown() const { return m_relevanceShown; }
    const std::string& relevanceError() const { return m_relevanceError; }

  private:
    void buildExplain();
    // The explanation wanted now: the Explain view's choice while it is open, and while the neurons are coloured
    // by relevance (then with each layer's relevance). None otherwise.
    std::optional<LiveSession::ExplainRequest> explainRequest() const;
    int m_explainMethod = 4, m_explainTarget = -1, m_explainSample = 0;
    std::shared_ptr<const LiveSession::Explanation> m_relevanceShown; // the explanation the neurons show
    size_t m_relevanceLayers = 0;
    std::string m_relevanceError;
    void buildLandscape();
    int m_landscapeEvery = 5, m_landscapeGrid = 21;
    explicit TrainingScreen(LiveSession& s) : m_session(s) {}
    void flyToLayer(render::Camera& camera, int layer, float aspect);
    size_t shownIndex() const;

    LiveSession& m_session;
    scene::NetworkDesc m_desc;
    scene::Scene m_scene;
    Aabb m_bounds;
    std::vector<ui::LayerRow> m_rows;
    std::vector<ui::SceneLabel> m_labels; // stage and layer names drawn in the scene
    std::vector<ui::PlacedLabel> m_placedLabels; // where they were drawn in the last frame (clicks)
    // Folds or unfolds a stage (a module prefix) on the next update(): the Model panel's button, a click on a name.
    void toggleCollapse(const std::string& stage);
    std::string m_layerFilter;            // the Model panel's search text
    std::vector<std::string> m_stages;    // scene::stagesOf, per layer (made on first hover)
    int m_selectedLayer = -1;
    // Steps, not timeline indices: indices shift when the timeline thins (Timeline::indexOfStep resolves).
    std::optional<int64_t> m_pinnedStep; // snapshot step shown; unset: follow the newest snapshot
    std::optional<int64_t> m_compareStep;
    bool m_replaying = false;
    float m_replayClock = 0.0f;
    uint64_t m_shownVersion = ~0ull;
    size_t m_shownEntry = ~size_t(0);
    ui::ViewSettings m_appliedSettings;
    uint64_t m_edgesVersion = ~0ull;
    bool m_firstUpdate = true;
    std::vector<std::string> m_collapsed; // stages drawn as one box (Model panel's fold buttons, --collapse)
    bool m_rebuildRequested = false;
    Status rebuildScene();
    render::CameraFlight m_flight;
    std::optional<uint32_t> m_selectedNeuron;
    bool m_tour = false;
    int m_tourStop = -1;
    float m_tourClock = 0.0f, m_tourAspect = 1.0f;
    render::Camera m_tourHome;
    std::vector<std::string> m_contributors;
    // The selected neuron's series over a recorded run, refetched when the selection or the run changes.
    std::optional<uint32_t> m_seriesNeuron;
    size_t m_seriesSnapshots = 0;
    runs::Series m_series;
    bool m_clearSelectionRequested = false;
    // The attention window: the selected attention layer's maps at the shown step (rebuilt when either
    // changes), the head shown (unset: window closed) and the selected neuron's query row.
    std::shared_ptr<const ui::AttentionMaps> attentionMaps(int layer, std::shared_ptr<const SnapshotSummary> shown);
    std::shared_ptr<const ui::AttentionMaps> m_attention;
    int m_attentionLayer = -1;
    std::shared_ptr<const SnapshotSummary> m_attentionSnapshot; // held: the cache key cannot be recycled
    std::optional<int> m_attentionHead;
    // Views of whole runs (dynamics, series, distributions, Hinton) and what they asked of the scene.
    std::unique_ptr<RunViews> m_runViews;
    bool m_onlyRunViews = false;
    std::optional<std::string> m_pendingNeuron; // "LAYER:INDEX", selected on the next update()
    // Neurons brushed in the layer series view: marked (white rim) in 3D beside the selected one.
    std::optional<std::pair<std::string, std::vector<int64_t>>> m_pendingBrush;
    std::vector<uint32_t> m_brushedNeurons;
    std::string m_hintonKey;
    std::shared_ptr<const LiveSession::ParameterSet> m_parameters; // the set the weights view shows (live)
    void buildRunViews(render::Camera& camera, float aspect);
    int m_attentionQuery = -1;
};

} // namespace ts::app
