// TrainingScreen: timeline -> scene values, bundled edges and styles; panels -> session controls.
#include "app/training_screen.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <imgui.h>
#include <map>
#include <set>

#include "app/model_scene.hpp"
#include "engine/core/log.hpp"
#include "engine/scene/bundling.hpp"
#include "engine/scene/edges.hpp"
#include "engine/scene/tracing.hpp"
#include "engine/ui/run_panels.hpp"

namespace ts::app {

namespace {

// The colormap that suits a statistic: signed values diverge around zero, magnitudes are sequential.
Colormap defaultColormap(NeuronStatistic s) {
    switch (s) {
    case NeuronStatistic::MeanActivation:
        return Colormap::RdBu;
    case NeuronStatistic::MeanAbsGradient:
        return Colormap::Magma;
    case NeuronStatistic::ActivationStd:
        return Colormap::Viridis;
    case NeuronStatistic::Relevance:
        return Colormap::RdBu;
    default:
        return Colormap::Inferno;
    }
}

// An attention layer (a MultiheadAttention's attn_weights, [heads, queries, keys] per sample, or [queries,
// keys] when averaged over heads) has maps to show.
bool isAttentionLayer(const ui::LayerRow& row, const std::vector<std::int64_t>& shape) {
    const std::string suffix = ".attn_weights";
    return row.type == "MultiheadAttention" && row.name.size() > suffix.size() &&
           row.name.compare(row.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
           (shape.size() == 2 || shape.size() == 3);
}

ui::Histogram histogramOf(const SnapshotSummary* s, const std::string& layer, int which) {
    if (!s) return {};
    for (const auto& l : s->layers)
        if (l.name == layer) return which == 0 ? l.activations : which == 1 ? l.gradients : l.weights;
    return {};
}

// Names for the scene: stages ("layer1", "features.denseblock2"), the groups inside them ("layer1.0"), then
// every layer, each anchored above its box.
std::vector<ui::SceneLabel> sceneLabelsOf(const scene::Scene& scene, const scene::NetworkDesc& desc) {
    std::vector<ui::SceneLabel> out;
    // Stages, groups and layers inside them are named without the prefix all stages share (a ViT's
    // "encoder.layers."), so that twelve labels do not each repeat it; the Model panel keeps full names.
    const auto stages = scene::stagesOf(desc);
    std::map<std::string, int> layersIn;
    for (const auto& s : stages)
        ++layersIn[s];
    std::vector<std::string> blocks; // stages of several layers (a layer with a short name is its own stage)
    for (const auto& [name, count] : layersIn)
        if (count > 1) blocks.push_back(name);
    const std::string prefix = scene::stageLabelPrefix(blocks);
    auto add = [&](const std::string& name, const Aabb& box, int priority, bool foldable = false,
                   bool always = false) {
        if (box.empty()) return;
        ui::SceneLabel l;
        l.name = name;
        l.text = !prefix.empty() && name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0
                     ? name.substr(prefix.size())
                     : name;
        l.always = always;
        const glm::vec3 c = box.center();
        l.anchor[0] = c.x;
        l.anchor[1] = box.hi.y;
        l.anchor[2] = c.z;
        l.worldSize = std::max(box.extent().y, 0.25f * std::max(box.extent().x, box.extent().z));
        l.priority = priority;
        l.foldable = foldable;
        out.push_back(std::move(l));
    };
    // Stages (stagesOf) first, then the groups one level inside them.
    const std::set<std::string> stageNames(stages.begin(), stages.end());
    const auto& groups = scene.layout.groups;
    for (const auto& g : groups)
        if (stageNames.count(g.name)) add(g.name, g.box, 0, true);
    for (const auto& g : groups)
        if (g.parent >= 0 && stageNames.count(groups[size_t(g.parent)].name)) add(g.name, g.box, 1, true);
    for (size_t l = 0; l < desc.layers.size() && l < scene.layout.layers.size(); ++l) {
        const auto& p = scene.layout.layers[l];
        if (p.collapsedGroup >= 0) continue;
        Aabb box;
        box.extend(p.center - p.halfExtent);
        box.extend(p.center + p.halfExtent);
        // The input and the output are named however small they are drawn (a 4-class head is a few dots).
        add(desc.layers[l].name, box, 2, false, l == 0 || l + 1 == desc.layers.size());
    }
    return out;
}

} // namespace

Expected<std::unique_ptr<TrainingScreen>> TrainingScreen::create(LiveSession& session,
                                                                  const std::vector<std::string>& collapsed,
                                                                  const std::string& runDir,
                                                                  const std::string& compareDir, unsigned views) {
    std::unique_ptr<TrainingScreen> t(new TrainingScreen(session));
    const auto& net = session.network();
    t->m_desc = toSceneDesc(net);
    t->m_collapsed = collapsed;
    TS_TRY(t->rebuildScene());
    for (const auto& n : net.nodes)
        t->m_rows.push_back({n.name, n.type, capture::shapeString(n.outputShape), n.paramCount, n.neurons,
                             int(std::count(n.name.begin(), n.name.end(), '.'))});
    t->settings.colormap = int(defaultColormap(NeuronStatistic::MeanActivation));
    t->settings.edgeThreshold = 0.15f;
    RunViews::ReaderAccess access;
    if (session.recordedRun())
        access = [&session](const std::function<Status(const runs::RunReader&)>& fn) { return session.withRunReader(fn); };
    auto rv = RunViews::create(std::move(access), runDir, compareDir);
    if (!rv) return rv.error();
    t->m_runViews = std::move(rv.value());
    t->m_runViews->setShown(views);
    return t;
}

std::shared_ptr<const ui::AttentionMaps> TrainingScreen::attentionMaps(int layer, std::shared_ptr<const SnapshotSummary> shown) {
    if (layer < 0 || size_t(layer) >= m_rows.size() || !shown) return nullptr;
    const auto& shape = m_desc.layers[size_t(layer)].shape;
    if (!isAttentionLayer(m_rows[size_t(layer)], shape)) return nullptr;
    if (layer == m_attentionLayer && shown == m_attentionSnapshot) return m_attention;
    m_attentionLayer = layer;
    m_attentionSnapshot = shown;
    m_attention.reset();
    for (const auto& l : shown->layers) {
        if (l.name != m_rows[size_t(layer)].name || !l.hasNeuronData()) continue;
        auto maps = std::make_shared<ui::AttentionMaps>();
        maps->layer = l.name;
        maps->heads = shape.size() == 3 ? int(shape[0]) : 1;
        maps->queries = int(shape[shape.size() - 2]);
        maps->keys = int(shape[shape.size() - 1]);
        if (l.meanActivation.size() != size_t(maps->heads) * size_t(maps->queries) * size_t(maps->keys)) break;
        maps->values = l.meanActivation; // the mean over the batch of each weight
        m_attention = std::move(maps);
    }
    return m_attention;
}

// Lays the scene out again with the stages in m_collapsed drawn as one box each; values, edges and labels
// follow on the next update().
Status TrainingScreen::rebuildScene() {
    scene::SceneOptions opt;
    opt.layers.rankGapFactor = 1.0f; // room between layers for the bundles
    opt.layers.collapsed = m_collapsed;
    auto sc = scene::buildScene(m_desc, toSceneData(m_session.network(), nullptr, NeuronStatistic::MeanActivation), opt);
    if (!sc) return sc.error();
    m_scene = std::move(sc.value());
    m_bounds = Aabb();
    for (size_t i = 0; i < m_scene.position.size(); ++i)
        m_bounds.extend(m_scene.position[i], m_scene.radius[i]);
    m_labels = sceneLabelsOf(m_scene, m_desc);
    m_firstUpdate = true;     // hand the new scene to the renderer
    m_shownVersion = ~0ull;   // and its values
    m_edgesVersion = ~0ull;   // and its bundles
    m_selectedNeuron.reset();
    m_contributors.clear();
    return Status::ok();
}

void TrainingScreen::toggleCollapse(const std::string& stage) {
    auto it = std::find(m_collapsed.begin(), m_collapsed.end(), stage);
    if (it == m_collapsed.end())
        m_collapsed.push_back(stage);
    else
        m_collapsed.erase(it);
    m_rebuildRequested = true; // between frames: the renderer still draws the current scene now
}

size_t TrainingScreen::shownIndex() const {
    size_t n = m_session.timeline().size();
    if (n == 0) return 0;
    return m_pinnedStep ? std::min(m_session.timeline().indexOfStep(*m_pinnedStep), n - 1) : n - 1;
}

Status TrainingScreen::update(render::NetworkRenderer& renderer) {
    if (m_rebuildRequested) {
        m_rebuildRequested = false;
        renderer.setScene(nullptr);
        TS_TRY(rebuildScene());
    }
    if (m_firstUpdate) {
        renderer.setScene(&m_scene);
        m_firstUpdate = false;
    }
    Timeline& tl = m_session.timeline();
    uint64_t version = tl.version();
    size_t index = shownIndex();
    bool settingsChanged = !(settings == m_appliedSettings);
    auto stat = NeuronStatistic(std::clamp(settings.statistic, 0, int(NeuronStatistic::Count) - 1));
    if (settings.statistic != m_appliedSettings.statistic) settings.colormap = int(defaultColormap(stat));

    // Relevance: the newest explanation of the chosen sample, with every layer's relevance (computed where the
    // model lives: at once when it is idle, else at the next snapshot).
    std::shared_ptr<const LiveSession::Explanation> relevance;
    if (stat == NeuronStatistic::Relevance) {
        m_session.wantExplanation(explainRequest());
        relevance = m_session.latestExplanation();
        if (relevance && !relevance->request.layers) relevance.reset(); // one for the panel alone
    }
    if (version != m_shownVersion || index != m_shownEntry ||
        settings.statistic != m_appliedSettings.statistic || relevance != m_relevanceShown) {
        auto snap = tl.withNeuronData(index);
        if (snap) {
            auto data = toSceneData(m_session.network(), snap.get(), stat, true, relevance ? &relevance->relevance : nullptr);
            m_relevanceLayers = 0;
            if (stat == NeuronStatistic::Relevance)
                for (const auto& l : data.layers)
                    m_relevanceLayers += l.value.empty() ? 0 : 1;
            TS_TRY(scene::updateSceneValues(m_scene, m_desc, std::move(data)));
            renderer.valuesChanged();
        }
        const std::string error = relevance ? relevance->error : "";
        if (logRelevanceErrors && !error.empty() && error != m_relevanceError) TS_LOG_WARN("relevance on the neurons: %s", error.c_str());
        m_relevanceError = error;
        m_relevanceShown = relevance;
        m_shownVersion = version;
        m_shownEntry = index;
        settingsChanged = true; // the value range may have moved
    }
    if (settingsChanged) {
        render::NeuronStyle style = renderer.neurons().style();
        style.colormap = Colormap(settings.colormap);
        // Values arrive normalised per layer (toSceneData): signed statistics in [-1, 1], others in [0, 1].
        bool signedStat = stat == NeuronStatistic::MeanActivation || stat == NeuronStatistic::Relevance;
        style.valueMin = signedStat ? -1.0f : 0.0f;
        style.valueMax = 1.0f;
        style.lit = settings.lit;
        style.splatBelowPixels = settings.splatBelowPixels;
        renderer.neurons().setStyle(style);
        render::EdgeStyle es;
        es.threshold = settings.edgeThreshold;
        renderer.edges().setStyle(es);
        renderer.showEdges = settings.showEdges;
        if (settings.lodBudget != m_appliedSettings.lodBudget)
            renderer.setLod({uint32_t(settings.lodBudget), 3.0f, true});
    }
    if (m_clearSelectionRequested) {
        m_clearSelectionRequested = false;
        TS_TRY(selectNeuron(renderer, std::nullopt));
    }
    if (m_pendingBrush) { // the brushed set (global neuron ids), marked with the selection
        const auto [layerName, indices] = std::move(*m_pendingBrush);
        m_pendingBrush.reset();
        m_brushedNeurons.clear();
        for (size_t l = 0; l < m_rows.size(); ++l) {
            if (m_rows[l].name != layerName || l + 1 >= m_scene.offsets.size()) continue;
            const uint64_t begin = m_scene.offsets[l], count = m_scene.offsets[l + 1] - begin;
            for (int64_t i : indices)
                if (i >= 0 && uint64_t(i) < count) m_brushedNeurons.push_back(uint32_t(begin + uint64_t(i)));
        }
        if (m_brushedNeurons.empty() && !m_pendingNeuron) TS_TRY(selectNeuron(renderer, std::nullopt));
    }
    if (m_pendingNeuron) { // picked in a run view (the first brushed neuron)
        auto id = parseNeuron(*m_pendingNeuron);
        m_pendingNeuron.reset();
        if (id) TS_TRY(selectNeuron(renderer, *id));
    }
    // Edges follow the newest weights, refreshed every few snapshots (bundling is the costly part). While a
    // neuron is selected its traced connections are drawn instead.
    bool edgesStale = m_edgesVersion == ~0ull || version >= m_edgesVersion + 5 ||
                      settings.bundlingStrength != m_appliedSettings.bundlingStrength;
    if (settings.showEdges && edgesStale && version > 0 && !m_selectedNeuron) {
        scene::NetworkData data;
        data.layers.resize(m_desc.layers.size());
        data.dense = m_session.latestDenseWeights();
        if (!data.dense.empty()) {
            auto edges = scene::selectAllDenseEdges(m_desc, data, {scene::EdgeMetric::AbsWeight, 2, 0.0f});
            if (edges.size() > 40000) edges.resize(40000);
            scene::BundleOptions bo;
            bo.beta = settings.bundlingStrength;
            bo.samples = 20;
            auto lines = scene::bundleHierarchical(
                m_scene.tree, scene::toBundleEdges(m_scene.tree, m_scene.position, edges), bo);
            TS_TRY(renderer.setEdges(lines));
        }
        m_edgesVersion = version;
    }
    m_appliedSettings = settings;
    return Status::ok();
}

Status TrainingScreen::click(render::NetworkRenderer& renderer, const render::Camera& camera,
                             VkExtent2D extent, glm::vec2 pixel) {
    // A stage or group name folds (or unfolds) it; labels are placed in ImGui's display coordinates.
    const ImGuiIO& io = ImGui::GetIO();
    const float sx = io.DisplayFramebufferScale.x > 0 ? io.DisplayFramebufferScale.x : 1.0f;
    const float sy = io.DisplayFramebufferScale.y > 0 ? io.DisplayFramebufferScale.y : 1.0f;
    if (auto label = ui::foldableLabelAt(m_labels, m_placedLabels, pixel.x / sx, pixel.y / sy)) {
        toggleCollapse(m_labels[*label].name.empty() ? m_labels[*label].text : m_labels[*label].name);
        return Status::ok();
    }
    return selectNeuron(renderer, renderer.pick(camera, extent, pixel.x, pixel.y));
}

Status TrainingScreen::selectNeuron(render::NetworkRenderer& renderer, std::optional<uint32_t> neuron) {
    m_selectedNeuron = neuron;
    m_contributors.clear();
    if (!neuron) {
        m_brushedNeurons.clear();
        renderer.setSelection({}, {});
        m_edgesVersion = ~0ull; // bring the bundles back
        return Status::ok();
    }
    uint32_t layer = m_scene.layerOf(*neuron);
    m_selectedLayer = int(layer);
    if (layer < m_rows.size() && isAttentionLayer(m_rows[layer], m_desc.layers[layer].shape)) {
        // A weight of an attention map: open its head with its query row outlined.
        const auto& shape = m_desc.layers[layer].shape;
        const int64_t keys = shape.back(), queries = shape[shape.size() - 2];
        const int64_t i = int64_t(*neuron - m_scene.offsets[layer]);
        m_attentionHead = int(i / (queries * keys));
        m_attentionQuery = int((i / keys) % queries);
    }
    auto snap = m_session.timeline().withNeuronData(shownIndex());
    scene::NetworkData data =
        toSceneData(m_session.network(), snap.get(), NeuronStatistic::MeanActivation, false);
    for (auto& l : data.layers)
        l.value.clear();
    data.dense = m_session.latestDenseWeights();
    data.conv = m_session.latestConvWeights();
    scene::TraceOptions opt{3, 4, 2};
    auto back = scene::traceBackward(m_desc, data, *neuron, opt);
    if (!back) return back.error();
    auto fwd = scene::traceForward(m_desc, data, *neuron, opt);
    if (!fwd) return fwd.error();
    TS_LOG_DEBUG(
        "trace of neuron %u: %zu dense matrices, %zu conv kernels, %zu backward hops (%zu edges), %zu forward hops (%zu edges)",
        *neuron, data.dense.size(), data.conv.size(), back->hops.size(), back->edges.size(), fwd->hops.size(),
        fwd->edges.size());
    std::vector<uint32_t> highlighted;
    scene::EdgePolylines lines;
    float maxW = 1e-30f;
    for (const auto* r : {&back.value(), &fwd.value()})
        for (const auto& e : r->edges)
            maxW = std::max(maxW, std::fabs(e.weight));
    auto name = [&](uint32_t id) {
        uint32_t l = m_scene.layerOf(id);
        return m_desc.layers[l].name + " #" + std::to_string(id - m_scene.offsets[l]);
    };
    for (const auto* r : {&back.value(), &fwd.value()}) {
        bool backward = r == &back.value();
        highlighted.insert(highlighted.end(), r->field.begin(), r->field.end()); // receptive fields, whole
        for (size_t h = 0; h < r->hops.size(); ++h) {
            // Through a convolution or pooling: the strongest channels and the window, then the neurons.
            for (const auto& cc : r->channels[h])
                if (m_contributors.size() < 16) {
                    char buf[200];
                    std::snprintf(buf, sizeof buf, "%s %s ch %u %d%% y%u-%u x%u-%u", backward ? "<-" : "->",
                                  m_desc.layers[cc.layer].name.c_str(), cc.channel, int(cc.share * 100 + 0.5f), cc.y0,
                                  cc.y1, cc.x0, cc.x1);
                    m_contributors.push_back(buf);
                }
            for (const auto& t : r->hops[h]) {
                highlighted.push_back(t.neuron);
                if (m_contributors.size() < 16 && r->channels[h].empty())
                    m_contributors.push_back(std::string(backward ? "<- " : "-> ") + name(t.neuron) + " (" +
                                             std::to_string(int(t.credit * 100)) + "%)");
            }
        }
        for (const auto& e : r->edges) {
            uint32_t first = uint32_t(lines.points.size());
            lines.points.push_back({m_scene.position[e.src], 0.0f});
            lines.points.push_back({m_scene.position[e.dst], 1.0f});
            lines.lines.push_back({first, 2, e.weight, std::fabs(e.weight) / maxW});
        }
    }
    if (m_contributors.empty())
        m_contributors.push_back(
            "no contributors: its gradient and activation are zero on this batch (a dead unit)");
    // The selected neuron and the other brushed ones (sorted, unique), its traced contributors glowing.
    std::vector<uint32_t> selected = m_brushedNeurons;
    selected.push_back(*neuron);
    std::sort(selected.begin(), selected.end());
    selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
    renderer.setSelection(selected, highlighted);
    TS_TRY(renderer.setEdges(lines));
    return Status::ok();
}

Expected<uint32_t> TrainingScreen::parseNeuron(const std::string& spec) const {
    auto colon = spec.rfind(':');
    if (colon == std::string::npos)
        return makeError(ErrorKind::Usage, "--select expects LAYER:INDEX (e.g. fc1:3), got '" + spec + "'");
    std::string name = spec.substr(0, colon);
    char* end = nullptr;
    long idx = std::strtol(spec.c_str() + colon + 1, &end, 10);
    for (size_t l = 0; l < m_desc.layers.size(); ++l) {
        if (m_desc.layers[l].name != name) continue;
        uint32_t n = m_scene.offsets[l + 1] - m_scene.offsets[l];
        if (*end || idx < 0 || uint32_t(idx) >= n)
            return makeError(ErrorKind::Usage,
                             "--select: layer '" + name + "' has neurons 0.." + std::to_string(n - 1));
        return m_scene.offsets[l] + uint32_t(idx);
    }
    return makeError(ErrorKind::Usage, "--select: no layer named '" + name + "' (see the Model panel)");
}

Expected<std::vector<uint32_t>> TrainingScreen::parseNeurons(const std::string& spec) const {
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos) return parseNeuron(spec).error();
    std::vector<uint32_t> out;
    size_t start = colon + 1;
    while (true) {
        const size_t comma = spec.find(',', start);
        auto id = parseNeuron(spec.substr(0, colon + 1) + spec.substr(start, comma == std::string::npos ? comma : comma - start));
        if (!id) return id.error();
        out.push_back(*id);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

size_t TrainingScreen::markedNeurons() const {
    std::vector<uint32_t> all = m_brushedNeurons;
    if (m_selectedNeuron) all.push_back(*m_selectedNeuron);
    std::sort(all.begin(), all.end());
    return size_t(std::unique(all.begin(), all.end()) - all.begin());
}

void TrainingScreen::flyToLayer(render::Camera& camera, int layer, float aspect) {
    if (layer < 0 || size_t(layer) + 1 >= m_scene.offsets.size()) return;
    Aabb box;
    for (uint32_t i = m_scene.offsets[size_t(layer)]; i < m_scene.offsets[size_t(layer) + 1]; ++i)
        box.extend(m_scene.position[i], m_scene.radius[i]);
    if (box.empty()) return;
    render::Camera to = camera;
    to.setMode(render::Camera::Mode::Orbit);
    to.fitToScene(box, aspect * 0.55f); // the side panels cover the outer quarters
    to.distance =
        std::max(to.distance * 1.6f, 0.12f * glm::length(m_bounds.extent())); // keep neighbours in view
    to.farPlane = std::max(to.farPlane, to.distance + glm::length(m_bounds.extent()));
    m_flight.start(camera, to, 0.8f);
}

void TrainingScreen::toggleTour(const render::Camera& camera, float aspect) {
    m_tour = !m_tour;
    m_tourStop = -1;
    m_tourClock = 1e9f; // start at once
    m_tourAspect = aspect;
    m_tourHome = camera;
    m_tourHome.setMode(render::Camera::Mode::Orbit);
    m_tourHome.fitToScene(m_bounds, aspect * 0.55f);
}

void TrainingScreen::hoverTooltip(const render::NetworkRenderer& renderer, const render::Camera& camera,
                                  VkExtent2D extent) {
    const ImGuiIO& io = ImGui::GetIO();
    if (io.WantCaptureMouse || io.MousePos.x < 0 || io.MousePos.y < 0) return;
    // ImGui's display coordinates are window pixels; picking takes framebuffer pixels.
    const float sx = io.DisplayFramebufferScale.x > 0 ? io.DisplayFramebufferScale.x : 1.0f;
    const float sy = io.DisplayFramebufferScale.y > 0 ? io.DisplayFramebufferScale.y : 1.0f;
    auto hit = renderer.pick(camera, extent, io.MousePos.x * sx, io.MousePos.y * sy);
    if (!hit) return;
    const uint32_t l = m_scene.layerOf(*hit);
    if (l >= m_desc.layers.size()) return;
    if (m_stages.empty()) m_stages = scene::stagesOf(m_desc);
    const auto& stages = m_stages;
    const auto& row = m_rows[l];
    const float v = *hit < m_scene.value.size() ? m_scene.value[*hit] : NAN;
    ImGui::SetTooltip("%s\nstage %s\nneuron %u of %lld, output %s\n%s: %.3g (normalised per layer)",
                      m_desc.layers[l].name.c_str(), stages[l].c_str(), *hit - m_scene.offsets[l],
                      (long long)row.neurons, row.shape.c_str(),
                      neuronStatisticNames()[size_t(std::clamp(settings.statistic, 0, int(NeuronStatistic::Count) - 1))]
                          .c_str(),
                      double(v));
}

void TrainingScreen::tick(render::Camera& camera, float dt) {
    m_flight.step(camera, dt);
    if (m_tour && !m_flight.active()) {
        m_tourClock += dt;
        if (m_tourClock > 2.5f) { // hold each stop, then fly on
            m_tourClock = 0.0f;
            int layers = int(m_desc.layers.size());
            m_tourStop = m_tourStop + 1 > layers ? -1 : m_tourStop + 1;
            if (m_tourStop < 0 || m_tourStop == layers) {
                render::Camera home = m_tourHome;
                home.yaw = camera.yaw + 0.4f; // keep turning between loops
                m_flight.start(camera, home, 1.6f);
            } else {
                m_selectedLayer = m_tourStop;
                flyToLayer(camera, m_tourStop, m_tourAspect);
            }
        }
    }
    if (m_replaying) {
        m_replayClock += dt;
        size_t n = m_session.timeline().size();
        size_t idx = size_t(m_replayClock * 8.0f); // 8 snapshots per second
        if (idx + 1 >= n) {
            m_replaying = false;
            m_pinnedStep.reset();
        } else if (auto e = m_session.timeline().at(idx)) {
            m_pinnedStep = e->step;
        }
    }
}

Status TrainingScreen::selectLayerByName(const std::string& name) {
    for (size_t i = 0; i < m_rows.size(); ++i)
        if (m_rows[i].name == name) {
            m_selectedLayer = int(i);
            m_runViews->selectLayer(name);
            return {};
        }
    std::string some;
    for (size_t i = 0; i < m_rows.size() && i < 6; ++i)
        some += (i ? ", " : "") + m_rows[i].name;
    return makeError(ErrorKind::Usage, "--layer " + name + ": no such layer (layers: " + some +
                                           (m_rows.size() > 6 ? ", ..." : "") + ")");
}

// The views of whole runs: the scene's selected layer goes to them; their picks come back to the scene.
// The Explain view: asks the session for the heatmap of the chosen sample, method and class (computed where the
// model lives) and draws the newest one; nothing is computed while the view is closed.
std::optional<LiveSession::ExplainRequest> TrainingScreen::explainRequest() const {
    const bool view = m_runViews->shown() & RunViews::Explain;
    const bool relevance = settings.statistic == int(NeuronStatistic::Relevance);
    if (m_session.recordedRun() || (!view && !relevance)) return std::nullopt;
    return LiveSession::ExplainRequest{ui::kExplainMethods[m_explainMethod], m_explainTarget, m_explainSample, relevance};
}

void TrainingScreen::buildExplain() {
    m_session.wantExplanation(explainRequest());
    if (!(m_runViews->shown() & RunViews::Explain) || m_session.recordedRun()) return;
    ui::ExplainView v;
    v.method = m_explainMethod;
    v.target = m_explainTarget;
    v.sample = m_explainSample;
    v.samples = int(std::min<int64_t>(m_session.explainSamples(), 1 << 30));
    v.classes = int(m_session.numClasses());
    if (auto e = m_session.latestExplanation()) { // possibly of an earlier choice while the new one is computed
        v.step = m_session.inspectOnly() ? -1 : e->step;
        v.line = e->line;
        v.error = e->error;
        v.image = e->image;
    }
    v.fill = m_onlyRunViews && m_runViews->shown() == RunViews::Explain;
    v.live = !m_session.inspectOnly();
    const auto ed = ui::explainPanel(v);
    if (ed.changed) m_explainMethod = ed.method, m_explainTarget = ed.target, m_explainSample = ed.sample;
}

// The live Loss landscape view: asks the session for the surface around the current weights with the path so
// far (computed where the model lives, every few snapshots) and draws the newest; nothing while it is closed.
void TrainingScreen::buildLandscape() {
    if (!(m_runViews->shown() & RunViews::Landscape) || m_session.recordedRun()) {
        m_session.wantLandscape(std::nullopt);
        return;
    }
    LiveSession::LandscapeRequest r;
    r.every = m_landscapeEvery;
    r.grid = m_landscapeGrid;
    m_session.wantLandscape(r);
    ui::LiveLandscapeView v;
    v.every = m_landscapeEvery;
    v.grid = m_landscapeGrid;
    if (auto l = m_session.latestLandscape()) { // possibly of an earlier setting while the new one is computed
        v.step = m_session.inspectOnly() ? -1 : l->step;
        v.line = l->line;
        v.error = l->error;
        v.image = l->image;
    }
    v.fill = m_onlyRunViews && m_runViews->shown() == RunViews::Landscape;
    v.live = !m_session.inspectOnly();
    v.computing = m_session.landscapeComputing();
    const auto e = ui::liveLandscapePanel(v);
    if (e.changed) m_landscapeEvery = e.every, m_landscapeGrid = e.grid;
}

void TrainingScreen::toggleLandscape() {
    if (m_session.recordedRun()) return;
    m_runViews->setShown(m_runViews->shown() ^ unsigned(RunViews::Landscape));
}

void TrainingScreen::buildRunViews(render::Camera& camera, float aspect) {
    if (m_selectedLayer >= 0) m_runViews->selectLayer(m_rows[size_t(m_selectedLayer)].name);
    // Live sessions: the selected layer's weights for the Hinton diagram, fetched when the step or layer changed
    // (no layer selected: the first with a weight matrix).
    if ((m_runViews->shown() & RunViews::Hinton) && !m_session.recordedRun() && m_selectedLayer < 0) {
        for (const auto& d : m_session.latestDenseWeights(size_t(1) << 26))
            if (m_selectedLayer < 0 || int(d.to) < m_selectedLayer) m_selectedLayer = int(d.to);
        for (const auto& c : m_session.latestConvWeights())
            if (m_selectedLayer < 0 || int(c.to) < m_selectedLayer) m_selectedLayer = int(c.to);
        if (m_selectedLayer >= 0) m_runViews->selectLayer(m_rows[size_t(m_selectedLayer)].name);
    }
    if ((m_runViews->shown() & RunViews::Hinton) && !m_session.recordedRun() && m_selectedLayer >= 0) {
        const int64_t step = m_session.trainingView().step;
        const std::string key = std::to_string(m_selectedLayer) + "@" + std::to_string(step);
        if (key != m_hintonKey) {
            m_hintonKey = key;
            const std::string& name = m_rows[size_t(m_selectedLayer)].name;
            const auto& shape = m_desc.layers[size_t(m_selectedLayer)].shape;
            int64_t outputs = 1;
            for (int64_t d : shape)
                outputs *= d;
            for (auto& d : m_session.latestDenseWeights(size_t(1) << 26))
                if (int(d.to) == m_selectedLayer && outputs > 0 && !d.w.empty()) {
                    const int64_t cols = int64_t(d.w.size()) / outputs; // before the move below
                    m_runViews->setWeights(name, outputs, cols, std::move(d.w), step);
                }
            // Convolutions flattened per output channel: rows = output channels, columns = inputs x kernel.
            for (auto& c : m_session.latestConvWeights())
                if (int(c.to) == m_selectedLayer && !c.w.empty() && !shape.empty() && shape[0] > 0) {
                    const int64_t cols = int64_t(c.w.size()) / shape[0];
                    m_runViews->setWeights(name, shape[0], cols, std::move(c.w), step);
                }
        }
    }
    // Live sessions: every parameter for the weights view, published by the session only while it is open.
    if (!m_session.recordedRun()) {
        const bool want = (m_runViews->shown() & RunViews::Weights) != 0;
        m_session.wantParameters(want);
        if (want)
            if (auto p = m_session.latestParameters(); p && p != m_parameters) {
                m_parameters = p;
                m_runViews->setParameters(p->step, p->values, p->grads);
            }
    }
    buildExplain();
    buildLandscape();
    auto req = m_runViews->buildUi(m_onlyRunViews);
    if (req.layer)
        for (size_t i = 0; i < m_rows.size(); ++i)
            if (m_rows[i].name == *req.layer) {
                m_selectedLayer = int(i);
                if (!m_onlyRunViews) flyToLayer(camera, int(i), aspect);
            }
    if (req.step) {
        m_pinnedStep = *req.step;
        m_replaying = false;
    }
    if (req.neuron) m_pendingNeuron = *req.neuron;
    if (req.brushed) m_pendingBrush = std::make_pair(req.brushedLayer, std::move(*req.brushed));
}

void TrainingScreen::buildUi(render::Camera& camera, float aspect, const ui::FrameStats& stats) {
    if (m_onlyRunViews) {
        buildRunViews(camera, aspect);
        return;
    }
    m_runViews->setShown(ui::viewsBar(m_runViews->shown(), m_session.recordedRun()));
    buildRunViews(camera, aspect);
    {
        const glm::mat4 vp = camera.projection(aspect) * camera.view();
        const ImVec2 size = ImGui::GetIO().DisplaySize;
        ui::sceneLabels(m_labels, &vp[0][0], size.x, size.y, 18.0f, &m_placedLabels);
    }
    auto view = ui::viewPanel(settings, stats, neuronStatisticNames());
    if (view.changed) {
        if (view.settings.vsync != settings.vsync) vsyncRequest = view.settings.vsync;
        settings = view.settings;
    }
    fitRequested |= view.fitRequested;
    screenshotRequested |= view.screenshotRequested;

    auto layers = ui::layerPanel(m_rows, m_selectedLayer, m_layerFilter, m_collapsed);
    if (layers.filter) m_layerFilter = *layers.filter;
    if (layers.toggleCollapse) toggleCollapse(*layers.toggleCollapse);
    if (layers.selected) {
        m_selectedLayer = *layers.selected;
        if (layers.flyTo) flyToLayer(camera, m_selectedLayer, aspect);
    }

    auto training = ui::trainingPanel(m_session.trainingView());
    if (training.play) m_session.resume();
    if (training.pause) m_session.pause();
    if (training.stepOnce) m_session.requestStep();
    if (training.learningRate) m_session.setLearningRate(*training.learningRate);

    // Inspector of the selected layer at the shown step, optionally against a second step.
    Timeline& tl = m_session.timeline();
    ui::InspectorView iv;
    // A recorded run's older snapshots are kept slim; the timeline reads their histograms back when shown.
    auto shown = m_session.recordedRun() ? tl.withNeuronData(shownIndex()) : tl.at(shownIndex());
    if (m_selectedNeuron) {
        uint32_t l = m_scene.layerOf(*m_selectedNeuron);
        char buf[160];
        std::snprintf(buf, sizeof(buf), "%s #%u", m_desc.layers[l].name.c_str(),
                      *m_selectedNeuron - m_scene.offsets[l]);
        iv.selectedNeuron = buf;
        if (const size_t marked = markedNeurons(); marked > 1)
            iv.selectedNeuron += " (" + std::to_string(marked - 1) + " more marked: brushed or --select)";
        iv.contributors = m_contributors;
        if (m_session.recordedRun()) {
            const size_t snapshots = tl.size();
            if (m_seriesNeuron != m_selectedNeuron || m_seriesSnapshots != snapshots) {
                m_seriesNeuron = m_selectedNeuron;
                m_seriesSnapshots = snapshots;
                auto s = m_session.neuronSeries(m_desc.layers[l].name, *m_selectedNeuron - m_scene.offsets[l], 400);
                m_series = s ? std::move(s.value()) : runs::Series{};
            }
            iv.seriesMean = m_series.mean;
            iv.seriesMin = m_series.min;
            iv.seriesMax = m_series.max;
            iv.seriesLevel = m_series.level;
            if (!m_series.steps.empty()) {
                iv.seriesFirstStep = m_series.steps.front();
                iv.seriesLastStep = m_series.steps.back();
            }
        }
    }
    if (m_selectedLayer >= 0 && shown) {
        const std::string& name = m_rows[size_t(m_selectedLayer)].name;
        iv.layer = name;
        iv.step = shown->step;
        iv.timelineIndex = int(shownIndex());
        iv.timelineSize = int(tl.size());
        iv.activations = histogramOf(shown.get(), name, 0);
        iv.gradients = histogramOf(shown.get(), name, 1);
        iv.weights = histogramOf(shown.get(), name, 2);
        for (const auto& l : shown->layers)
            if (l.name == name) {
                iv.deadFraction = l.deadFraction;
                iv.updateRatio = float(l.updateRatio);
            }
        if (m_compareStep) {
            if (auto other = tl.at(tl.indexOfStep(*m_compareStep))) {
                iv.compareStep = other->step;
                iv.compareActivations = histogramOf(other.get(), name, 0);
                iv.compareGradients = histogramOf(other.get(), name, 1);
                iv.compareWeights = histogramOf(other.get(), name, 2);
            }
        }
        for (size_t i = 0; i < tl.size(); ++i)
            if (auto e = tl.at(i))
                for (const auto& l : e->layers)
                    if (l.name == name) iv.gradNormHistory.push_back(float(l.gradientNorm));
        iv.attention = attentionMaps(m_selectedLayer, shown);
    }
    if (m_selectedLayer < 0 && m_selectedNeuron) iv.layer.clear();
    auto ins = ui::inspectorPanel(iv);
    if (ins.timelineIndex) {
        if (auto e = tl.at(size_t(std::max(*ins.timelineIndex, 0)))) m_pinnedStep = e->step;
        if (*ins.timelineIndex + 1 >= iv.timelineSize) m_pinnedStep.reset(); // at the end: follow live
        m_replaying = false;
    }
    if (ins.compareIndex) {
        if (*ins.compareIndex < 0)
            m_compareStep.reset();
        else if (auto e = tl.at(size_t(*ins.compareIndex)))
            m_compareStep = e->step;
    }
    if (ins.clearSelection) m_clearSelectionRequested = true;
    if (ins.openAttentionHead) {
        m_attentionHead = *ins.openAttentionHead;
        m_attentionQuery = -1;
    }
    if (m_attentionHead && iv.attention) {
        auto att = ui::attentionPanel(*iv.attention, *m_attentionHead, m_attentionQuery);
        if (att.head) {
            m_attentionHead = *att.head;
            m_attentionQuery = -1;
        }
        if (att.close) m_attentionHead.reset();
    }
    if (ins.replay) {
        m_replaying = true;
        if (auto e = tl.at(0)) m_pinnedStep = e->step;
        m_replayClock = 0.0f;
    }

    auto alerts = m_session.alerts();
    if (auto clicked = ui::healthPanel(alerts)) {
        const auto& a = alerts[size_t(*clicked)];
        if (a.layerIndex >= 0) {
            m_selectedLayer = a.layerIndex;
            flyToLayer(camera, a.layerIndex, aspect);
        }
        m_pinnedStep = a.step; // the snapshot at or before the alert's step, wherever thinning moved it
    }
}

} // namespace ts::app
