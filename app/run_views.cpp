// RunViews: one worker thread reads the run (and the run compared with it) for the dynamics panels; the UI
// thread collects whole results under the mutex. Section index: loader | requests | panels.
#include "app/run_views.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <imgui.h>

#include "engine/core/log.hpp"
#include "engine/ui/run_panels.hpp"

namespace ts::app {

namespace {
double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string baseName(const std::string& dir) {
    auto p = std::filesystem::path(dir).lexically_normal();
    auto name = p.filename().string();
    return name.empty() ? p.parent_path().filename().string() : name;
}
} // namespace

std::optional<unsigned> RunViews::parseView(const std::string& name) {
    if (name == "dynamics") return Dynamics | Series;
    if (name == "series") return Series;
    if (name == "distributions") return Distributions;
    if (name == "hinton") return Hinton;
    if (name == "weights") return Weights;
    if (name == "explain") return Explain;
    if (name == "landscape") return Landscape;
    return std::nullopt;
}

// --- Loader ---
Expected<std::unique_ptr<RunViews>> RunViews::create(ReaderAccess access, const std::string& runName,
                                                     const std::string& compareDir) {
    std::unique_ptr<RunViews> v(new RunViews());
    v->m_access = std::move(access);
    v->m_runName = baseName(runName);
    v->m_runClosed = false;
    std::error_code ec1, ec2;
    const auto a = std::filesystem::weakly_canonical(runName, ec1), b = std::filesystem::weakly_canonical(compareDir, ec2);
    if (!compareDir.empty() && v->m_access && !ec1 && !ec2 && a == b) {
        // The run compared with itself: one reader (HDF5 shares a file opened twice in a process, and a
        // refresh through one handle invalidates the other's datasets).
        v->m_compareSame = true;
        v->m_compareName = baseName(compareDir);
    } else if (!compareDir.empty()) {
        auto r = runs::RunReader::open(compareDir);
        if (!r) return makeError(r.error().kind, "--compare: " + r.error().message);
        v->m_compareReader = std::move(r.value());
        v->m_compareName = baseName(compareDir);
    }
    // The worker reads the run (recorded runs) and makes the weights view's rasters (every session).
    v->m_thread = std::thread([p = v.get()] { p->worker(); });
    return v;
}

RunViews::~RunViews() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_cv.notify_all();
    if (m_thread.joinable()) m_thread.join();
}

void RunViews::worker() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(m_mutex);
            m_cv.wait(lock, [&] { return m_stop || !m_jobs.empty(); });
            if (m_stop) return;
            job = std::move(m_jobs.front());
            m_jobs.pop_front();
            m_busy = true;
        }
        job();
        {
            std::lock_guard lock(m_mutex);
            m_busy = false;
        }
        m_idle.notify_all();
    }
}

void RunViews::post(std::function<void()> job) {
    {
        std::lock_guard lock(m_mutex);
        m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
}

void RunViews::waitIdle() {
    if (!m_thread.joinable()) return;
    requestLoads();
    std::unique_lock lock(m_mutex);
    m_idle.wait(lock, [&] { return m_jobs.empty() && !m_busy; });
    lock.unlock();
    collect();
    // A collected overview may start the layer's loads (the default layer); wait for those too.
    requestLoads();
    lock.lock();
    m_idle.wait(lock, [&] { return m_jobs.empty() && !m_busy; });
    lock.unlock();
    collect();
}

std::string RunViews::error() const {
    std::lock_guard lock(m_mutex);
    return m_error;
}

int64_t RunViews::focusedStep() const {
    if (!m_overview || m_overview->snapshotSteps.empty()) return -1;
    const int64_t n = int64_t(m_overview->snapshotSteps.size());
    return m_overview->snapshotSteps[size_t(m_focus < 0 ? n - 1 : std::min(m_focus, n - 1))];
}

std::vector<dynamics::Anomaly> RunViews::anomalies() const {
    return m_overview ? m_overview->anomalies : std::vector<dynamics::Anomaly>{};
}

void RunViews::collect() {
    std::lock_guard lock(m_mutex);
    if (m_doneOverview) m_overview = std::move(m_doneOverview);
    if (m_doneSeries) {
        m_series = std::move(m_doneSeries);
        ++m_seriesVersion;
    }
    if (m_doneDist) m_dist = std::move(m_doneDist);
    if (m_doneCompare) m_compare = std::move(m_doneCompare);
    if (m_doneWeights) m_weights = std::move(m_doneWeights);
    if (m_doneCells) {
        auto c = std::move(m_doneCells);
        m_cells = std::move(c->cells);
        m_cellCols = c->cols;
        m_cellRows = c->rows;
        m_cellsRegion = c->region;
        m_cellsSerial = c->serial;
        m_cellsMode = c->mode;
        m_cellsPerTensor = c->perTensor;
        m_cellsContrast = c->contrast;
        ++m_cellsVersion;
        m_rasterPending = false;
    }
    if (m_doneMatrix) {
        auto mx = std::move(m_doneMatrix);
        setWeights(mx->layer, mx->rows, mx->cols, std::move(mx->w), mx->step);
    }
}

// --- Requests ---
void RunViews::selectLayer(const std::string& name) {
    if (name == m_layerName) return;
    m_layerName = name;
    m_layer = -1;
    m_brushed.clear();
    if (m_overview)
        for (size_t i = 0; i < m_overview->layers.size(); ++i)
            if (m_overview->layers[i].name == name) m_layer = int(i);
}

void RunViews::setWeights(const std::string& layer, int64_t rows, int64_t cols, std::vector<float> w, int64_t step) {
    if (layer == m_hintonLayer && step == m_hintonStep) return;
    m_hintonLayer = layer;
    m_hintonStep = step;
    m_hinton = dynamics::hintonBlocks(w, rows, cols, 160, 160);
}

std::shared_ptr<RunViews::WeightsData> RunViews::makeWeights(int64_t step, std::vector<dynamics::WeightMatrix> values,
                                                             std::vector<std::vector<float>> grads,
                                                             const std::vector<dynamics::WeightMatrix>* previous,
                                                             double aspect) {
    static std::atomic<uint64_t> serials{0};
    auto d = std::make_shared<WeightsData>();
    d->serial = ++serials;
    d->step = step;
    d->matrices = std::move(values);
    d->grads = std::move(grads);
    d->layout = dynamics::layoutAtlas(d->matrices, 4, aspect);
    bool updates = previous && previous->size() == d->matrices.size();
    for (size_t i = 0; updates && i < d->matrices.size(); ++i)
        updates = (*previous)[i].values.size() == d->matrices[i].values.size();
    d->update.resize(updates ? d->matrices.size() : 0);
    for (size_t i = 0; i < d->update.size(); ++i) {
        const auto &a = d->matrices[i].values, &b = (*previous)[i].values;
        d->update[i].resize(a.size());
        for (size_t k = 0; k < a.size(); ++k)
            d->update[i][k] = std::fabs(a[k] - b[k]);
    }
    // Colour ranges: the 99.5th percentile of |x| over (a sample of at most 1M of) the values.
    auto percentile = [](auto&& forEach) {
        std::vector<float> sample;
        forEach([&](const std::vector<float>& v, size_t stride) {
            for (size_t k = 0; k < v.size(); k += stride)
                if (std::isfinite(v[k])) sample.push_back(std::fabs(v[k]));
        });
        if (sample.empty()) return 1.0f;
        auto it = sample.begin() + long(double(sample.size() - 1) * 0.995);
        std::nth_element(sample.begin(), it, sample.end());
        return *it > 0 ? *it : 1.0f;
    };
    for (const auto& m : d->matrices)
        d->total += int64_t(m.values.size());
    const size_t stride = size_t(std::max<int64_t>(1, d->total / 1'000'000));
    d->range[0] = percentile([&](auto f) { for (const auto& m : d->matrices) f(m.values, stride); });
    d->range[1] = percentile([&](auto f) { for (const auto& u : d->update) f(u, stride); });
    d->range[2] = percentile([&](auto f) { for (const auto& g : d->grads) f(g, stride); });
    for (size_t i = 0; i < d->matrices.size(); ++i) {
        const size_t own = std::max<size_t>(1, d->matrices[i].values.size() / 100'000);
        d->inverse[0].push_back(1.0f / percentile([&](auto f) { f(d->matrices[i].values, own); }));
        d->inverse[1].push_back(i < d->update.size() ? 1.0f / percentile([&](auto f) { f(d->update[i], own); }) : 1.0f);
        d->inverse[2].push_back(i < d->grads.size() ? 1.0f / percentile([&](auto f) { f(d->grads[i], own); }) : 1.0f);
    }
    return d;
}

void RunViews::setParameters(int64_t step, std::vector<dynamics::WeightMatrix> values,
                             std::vector<std::vector<float>> grads) {
    if (m_weights && m_weights->step == step) return;
    m_weights = makeWeights(step, std::move(values), std::move(grads), m_weights ? &m_weights->matrices : nullptr,
                            canvasAspect());
}

double RunViews::canvasAspect() const {
    // Before the panel's first frame: the shape of a weights panel in a 16:10 window.
    return m_canvasCols > 0 && m_canvasRows > 0 ? double(m_canvasCols) / double(m_canvasRows) : 1.6;
}

void RunViews::requestLoads() {
    if (!m_access) return;
    requestOverview();
    if (!m_overview) return;
    if (m_pendingFocusStep && !m_overview->snapshotSteps.empty()) {
        m_focus = m_overview->snapshotAt(*m_pendingFocusStep);
        m_pendingFocusStep.reset();
    }
    chooseDefaultLayer();
    const std::string snaps = std::to_string(m_overview->snapshotSteps.size());
    if (m_shown & Series) requestSeries(snaps);
    if ((m_shown & Hinton) && m_layer >= 0) requestMatrix();
    if (m_shown & Weights) requestWeights(snaps);
    if (m_shown & Distributions) requestDistributions(snaps);
}

// The overview once, then again every few seconds while the run grows.
void RunViews::requestOverview() {
    const double now = nowSeconds();
    bool closed;
    {
        std::lock_guard lock(m_mutex);
        closed = m_runClosed;
    }
    const bool poll = !closed && now - m_lastPoll > 3.0;
    if (m_shown && (!m_overviewRequested || poll)) {
        m_overviewRequested = true;
        m_lastPoll = now;
        post([this] {
            // The owner's follower refreshes the reader; this reads what is committed now.
            Expected<dynamics::RunOverview> ov = makeError(ErrorKind::Failed, "not read");
            bool closed = false;
            (void)m_access([&](const runs::RunReader& r) {
                ov = dynamics::loadOverview(r);
                closed = r.closed();
                return Status{};
            });
            std::lock_guard lock(m_mutex);
            if (ov) m_doneOverview = std::make_shared<const dynamics::RunOverview>(std::move(ov.value()));
            else if (m_error.empty()) m_error = ov.error().message;
            m_runClosed = closed;
        });
    }
}

void RunViews::chooseDefaultLayer() {
    // The default layer: the first to go non-finite, else the deepest with parameters and a few hundred
    // neurons (a classifier's 10 outputs say little), else the deepest with parameters.
    if (m_layer < 0 && !m_layerName.empty()) selectLayer(std::exchange(m_layerName, std::string()));
    if (m_layer < 0 && !m_overview->layers.empty()) {
        int pick = -1;
        int64_t first = INT64_MAX;
        for (size_t i = 0; i < m_overview->layers.size(); ++i) {
            const auto& l = m_overview->layers[i];
            if (l.firstNonFinite >= 0 && l.firstNonFinite < first) first = l.firstNonFinite, pick = int(i);
        }
        // With the Hinton view open, the deepest layer whose weight matrix the run stores (a BatchNorm's
        // vector or a layer over the size limit has none).
        for (size_t i = m_overview->layers.size(); pick < 0 && (m_shown & Hinton) && i-- > 0;)
            if (m_overview->layers[i].matrixShape.size() == 2) pick = int(i);
        for (size_t i = m_overview->layers.size(); pick < 0 && i-- > 0;)
            if (m_overview->layers[i].params > 0 && m_overview->layers[i].neurons >= 256) pick = int(i);
        for (size_t i = m_overview->layers.size(); pick < 0 && i-- > 0;)
            if (m_overview->layers[i].params > 0) pick = int(i);
        m_layer = std::max(pick, 0);
        m_layerName = m_overview->layers[size_t(m_layer)].name;
    }
}

void RunViews::requestSeries(const std::string& snaps) {
    const std::string key = m_layerName + "|" + std::to_string(m_kind) + "|" + std::to_string(m_statistic) + "|" + snaps;
    if (key != m_seriesKey) {
        m_seriesKey = key;
        const int layer = m_layer, kind = m_kind, stat = m_statistic;
        post([this, layer, kind, stat] {
            Expected<dynamics::LayerSeriesView> s = makeError(ErrorKind::Failed, "not read");
            (void)m_access([&](const runs::RunReader& r) {
                s = dynamics::loadLayerSeries(r, layer, kind ? runs::Kind::Gradient : runs::Kind::Activation, stat);
                return Status{};
            });
            std::lock_guard lock(m_mutex);
            if (s) {
                TS_LOG_DEBUG("series of %s: read %.1f ms, density %.1f ms, sampling %.1f ms", s->name.c_str(),
                             s->readMs, s->densityMs, s->sampleMs);
                m_doneSeries = std::make_shared<const dynamics::LayerSeriesView>(std::move(s.value()));
            } else if (m_error.empty()) {
                m_error = s.error().message;
            }
        });
    }
}

// A recorded run's weight matrix at the focus snapshot, when the run stores one for the layer (Hinton).
void RunViews::requestMatrix() {
    const auto& l = m_overview->layers[size_t(m_layer)];
    const int64_t count = int64_t(m_overview->snapshotSteps.size());
    const int64_t snap = m_focus < 0 ? count - 1 : std::min(m_focus, count - 1);
    if (l.matrixShape.size() != 2) {
        m_hintonStatus = "the run stores no weight matrix for " + l.name +
                         " (runs store the weight matrices of Linear and convolution layers of at most --run-weights "
                         "weights in C++ or matrices= weights in Python)";
    } else if (snap >= 0) {
        m_hintonStatus.clear();
        const std::string key = l.name + "@" + std::to_string(snap);
        if (key != m_matrixKey) {
            m_matrixKey = key;
            const int layer = m_layer;
            const int64_t rows = l.matrixShape[0], cols = l.matrixShape[1], step = m_overview->snapshotSteps[size_t(snap)];
            const std::string name = l.name;
            post([this, layer, snap, rows, cols, step, name] {
                Expected<std::optional<std::vector<float>>> w = makeError(ErrorKind::Failed, "not read");
                (void)m_access([&](const runs::RunReader& r) {
                    w = r.weightMatrix(layer, snap);
                    return Status{};
                });
                std::lock_guard lock(m_mutex);
                if (w && w->has_value())
                    m_doneMatrix = std::make_shared<Matrix>(Matrix{name, step, rows, cols, std::move(**w)});
                else if (!w && m_error.empty())
                    m_error = w.error().message;
            });
        }
    }
}

// Every stored weight matrix at the focus snapshot, and at the one before (updates).
void RunViews::requestWeights(const std::string& snaps) {
    const int64_t count = int64_t(m_overview->snapshotSteps.size());
    const int64_t snap = m_focus < 0 ? count - 1 : std::min(m_focus, count - 1);
    const std::string key = std::to_string(snap) + "/" + snaps;
    if (snap >= 0 && key != m_weightsKey) {
        m_weightsKey = key;
        std::vector<std::pair<int, dynamics::WeightMatrix>> shapes;
        for (size_t i = 0; i < m_overview->layers.size(); ++i) {
            const auto& l = m_overview->layers[i];
            if (l.matrixShape.size() == 2) shapes.push_back({int(i), {l.name, l.matrixShape[0], l.matrixShape[1], {}}});
        }
        const int64_t step = m_overview->snapshotSteps[size_t(snap)];
        post([this, shapes, snap, step, aspect = canvasAspect()] {
            std::vector<dynamics::WeightMatrix> now, before;
            Status st = m_access([&](const runs::RunReader& r) -> Status {
                for (const auto& [layer, shape] : shapes) {
                    for (int64_t s : {snap, snap - 1}) {
                        if (s < 0) continue;
                        auto w = r.weightMatrix(layer, s);
                        if (!w) return w.error();
                        if (!w->has_value()) continue;
                        dynamics::WeightMatrix m = shape;
                        m.values = std::move(**w);
                        (s == snap ? now : before).push_back(std::move(m));
                    }
                }
                return Status{};
            });
            auto d = st ? makeWeights(step, std::move(now), {}, before.empty() ? nullptr : &before, aspect) : nullptr;
            std::lock_guard lock(m_mutex);
            if (d) m_doneWeights = std::move(d);
            else if (m_error.empty()) m_error = st.message();
        });
    }
}

void RunViews::requestDistributions(const std::string& snaps) {
    const std::string key = m_layerName + "|" + snaps;
    if (key != m_distKey) {
        m_distKey = key;
        const int layer = m_layer;
        const std::string name = m_layerName;
        post([this, layer, name] {
            Expected<dynamics::LayerDistributions> d = makeError(ErrorKind::Failed, "not read");
            (void)m_access([&](const runs::RunReader& r) {
                d = dynamics::loadDistributions(r, layer);
                return Status{};
            });
            std::shared_ptr<const dynamics::LayerDistributions> cmp;
            if (m_compareSame && d) {
                cmp = std::make_shared<const dynamics::LayerDistributions>(d.value());
            } else if (m_compareReader) {
                // The same layer in the other run: by name, else by position.
                int other = -1;
                for (size_t i = 0; i < m_compareReader->layers().size(); ++i)
                    if (m_compareReader->layers()[i].name == name) other = int(i);
                if (other < 0 && size_t(layer) < m_compareReader->layers().size()) other = layer;
                if (other >= 0)
                    // At the same training steps as this run's rows (the snapshot at or before each).
                    if (auto c = dynamics::loadDistributions(*m_compareReader, other, 24, 64,
                                                             d ? &d->activations.steps : nullptr))
                        cmp = std::make_shared<const dynamics::LayerDistributions>(std::move(c.value()));
            }
            std::lock_guard lock(m_mutex);
            if (d) m_doneDist = std::make_shared<const dynamics::LayerDistributions>(std::move(d.value()));
            else if (m_error.empty()) m_error = d.error().message;
            if (cmp) m_doneCompare = std::move(cmp);
        });
    }
}

// --- Panels ---
RunViews::Requests RunViews::buildUi(bool fill) {
    Requests req;
    collect();
    requestLoads();
    if (!m_shown) return req;
    // Fill: dynamics over series (55 / 45), or one view over the whole display.
    const ImVec2 d = ImGui::GetIO().DisplaySize;
    auto rect = [&](float y0, float y1) { return ui::PanelRect{0, d.y * y0, d.x, d.y * (y1 - y0), true}; };
    const bool both = (m_shown & Dynamics) && (m_shown & Series);
    std::string err = error();
    if (m_shown & Dynamics) {
        ui::DynamicsView v;
        v.run = m_overview.get();
        v.status = !err.empty() ? err : m_access ? "reading the run..." : "run dynamics need a recorded run (tensorscape open RUN)";
        const int64_t snaps = m_overview ? int64_t(m_overview->snapshotSteps.size()) : 0;
        v.focus = m_focus < 0 ? snaps - 1 : m_focus;
        v.window = m_window;
        v.choice = m_choice;
        v.selectedLayer = m_layer;
        if (fill) v.rect = rect(0.0f, both ? 0.56f : 1.0f);
        auto e = ui::dynamicsPanel(v);
        if (e.window) m_window = *e.window;
        if (e.choice) m_choice = *e.choice;
        if (e.focus && m_overview && !m_overview->snapshotSteps.empty()) {
            m_focus = std::clamp<int64_t>(*e.focus, 0, snaps - 1);
            req.step = m_overview->snapshotSteps[size_t(m_focus)];
        }
        if (e.selectLayer && m_overview) {
            selectLayer(m_overview->layers[size_t(*e.selectLayer)].name);
            req.layer = m_layerName;
        }
    }
    if (m_shown & Series) {
        ui::SeriesPanelView v;
        // A series of another layer or statistic than the one asked for is not shown while the new one loads.
        const bool current = m_series && m_series->name == m_layerName &&
                             int(m_series->kind == runs::Kind::Gradient) == m_kind && m_series->statistic == m_statistic;
        v.series = current ? m_series.get() : nullptr;
        v.version = m_seriesVersion;
        v.status = !err.empty() ? err : m_access ? "reading " + m_layerName + "'s neurons..." : "layer series need a recorded run";
        v.brushed = m_brushed;
        if (m_overview && !m_overview->snapshotSteps.empty())
            v.focusStep = m_overview->snapshotSteps[size_t(m_focus < 0 ? int64_t(m_overview->snapshotSteps.size()) - 1 : m_focus)];
        if (fill) v.rect = rect(both ? 0.56f : 0.0f, 1.0f);
        auto e = ui::seriesPanel(v);
        if (e.kind) m_kind = *e.kind;
        if (e.statistic) m_statistic = *e.statistic;
        if (e.clearBrush) {
            m_brushed.clear();
            req.brushed = m_brushed;
            req.brushedLayer = m_layerName;
        }
        if (e.brush && v.series) {
            const auto& b = *e.brush;
            m_brushed = dynamics::brushSeries(v.series->matrix, int64_t(b[0]), int64_t(b[1]), b[2], b[3]);
            if (!m_brushed.empty()) req.neuron = m_layerName + ":" + std::to_string(m_brushed.front());
            req.brushed = m_brushed;
            req.brushedLayer = m_layerName;
        }
        if (e.focusStep && m_overview) {
            m_focus = m_overview->snapshotAt(*e.focusStep);
            req.step = m_overview->snapshotSteps[size_t(m_focus)];
        }
    }
    if (m_shown & Distributions) {
        ui::DistributionsPanelView v;
        v.dist = m_dist && m_dist->name == m_layerName ? m_dist.get() : nullptr;
        v.compare = v.dist && m_compare ? m_compare.get() : nullptr;
        v.compareName = m_compareName;
        v.status = !err.empty() ? err : m_access ? "reading " + m_layerName + "'s distributions..." : "distributions need a recorded run";
        if (m_overview && !m_overview->snapshotSteps.empty() && m_focus >= 0)
            v.focusStep = m_overview->snapshotSteps[size_t(m_focus)];
        if (fill) v.rect = rect(0.0f, 1.0f);
        ui::distributionsPanel(v);
    }
    if (m_shown & Weights) buildWeightsPanel(fill);
    if (m_shown & Hinton) {
        ui::HintonPanelView v;
        const bool current = !m_hintonLayer.empty() && (m_layerName.empty() || m_hintonLayer == m_layerName);
        v.blocks = current ? &m_hinton : nullptr;
        v.layer = m_hintonLayer;
        v.step = m_hintonStep;
        v.status = !m_hintonStatus.empty() ? m_hintonStatus
                   : m_access              ? "reading the weight matrix..."
                                           : "select a Linear or convolution layer";
        if (fill) v.rect = rect(0.0f, 1.0f);
        ui::hintonPanel(v);
    }
    return req;
}

void RunViews::buildWeightsPanel(bool fill) {
    const ImVec2 d = ImGui::GetIO().DisplaySize;
    ui::WeightsPanelView v;
    const WeightsData* w = m_weights.get();
    if (w && !w->matrices.empty()) {
        v.matrices = w->matrices;
        v.layout = &w->layout;
        v.step = w->step;
        v.totalWeights = w->total;
        v.hasUpdate = !w->update.empty();
        v.hasGradient = !w->grads.empty();
        v.range = m_cellsContrast > 0 ? m_cellsContrast : m_perTensor ? 1.0f : w->range[std::clamp(m_weightsMode, 0, 2)];
        v.aggregated = m_cellsContrast > 0;
    }
    const std::string err = error();
    v.status = !err.empty() ? err
               : m_access   ? "reading the stored weight matrices... (runs store the layers of at most --run-weights "
                              "weights)"
                            : "waiting for the next snapshot...";
    if (w && !w->matrices.empty() && m_access && m_overview) {
        // A recorded run stores the matrices of layers up to a size limit: say what the picture leaves out.
        int64_t params = 0, without = 0, layers = 0;
        for (const auto& l : m_overview->layers) {
            params += l.params;
            if (l.params > 0 && l.matrixShape.size() != 2) without += l.params, ++layers;
        }
        if (without > 0)
            v.note = "not shown: " + std::to_string(layers) + " layers' " + std::to_string(without) + " of " +
                     std::to_string(params) + " parameters (vectors such as biases and norms, or matrices over the "
                     "stored size: --run-weights N, matrices=N)";
    }
    if (w && w->matrices.empty() && m_access)
        v.status = "the run stores no weight matrices (train --run-weights N, tensorscape.init(..., matrices=N))";
    // The region shown: the whole atlas until the user zooms, kept in the canvas' aspect.
    std::array<double, 4> region{0, 0, 1, 1};
    if (w && w->layout.width > 0) {
        if (!m_region) {
            const double cw = std::max(m_canvasCols, 1), ch = std::max(m_canvasRows, 1);
            const double scale = std::max(double(w->layout.width) / cw, double(w->layout.height) / ch);
            region = {0, 0, cw * scale, ch * scale};
        } else {
            region = *m_region;
        }
    }
    v.region = m_cellsRegion;
    v.mode = m_weightsMode;
    v.perTensor = m_perTensor;
    if (w && m_cellsSerial == w->serial && m_cellsMode == m_weightsMode && m_cellsRegion == region && !m_cells.empty() &&
        m_cellsPerTensor == m_perTensor) {
        v.cells = &m_cells;
        v.cellsVersion = m_cellsVersion;
        v.cellCols = m_cellCols;
        v.cellRows = m_cellRows;
    }
    if (fill) v.rect = ui::PanelRect{0, 0, d.x, d.y, true};
    auto e = ui::weightsPanel(v);
    if (e.mode) m_weightsMode = *e.mode;
    if (e.perTensor) m_perTensor = *e.perTensor;
    if (e.fit) m_region.reset();
    if (e.region) m_region = *e.region;
    if (e.canvasCols != m_canvasCols || e.canvasRows != m_canvasRows) {
        m_canvasCols = e.canvasCols;
        m_canvasRows = e.canvasRows;
        if (!m_region) m_cellsSerial = 0; // refit
    }
    // The raster for the next frame when the data, the mode, the region or the canvas changed.
    if (!w || w->layout.width == 0 || m_canvasCols <= 0 || m_canvasRows <= 0) return;
    if (!m_region) {
        const double scale = std::max(double(w->layout.width) / m_canvasCols, double(w->layout.height) / m_canvasRows);
        region = {0, 0, m_canvasCols * scale, m_canvasRows * scale};
    } else {
        region = *m_region;
    }
    if (m_cellsSerial == w->serial && m_cellsMode == m_weightsMode && m_cellsRegion == region && m_cellCols == m_canvasCols &&
        m_cellRows == m_canvasRows && m_cellsPerTensor == m_perTensor)
        return;
    // One raster in flight at a time, made on the worker (tens of millions of weights take a few hundred ms);
    // the frame keeps drawing the previous one meanwhile.
    if (m_rasterPending) return;
    m_rasterPending = true;
    auto job = std::make_shared<Cells>();
    job->cols = m_canvasCols;
    job->rows = m_canvasRows;
    job->region = region;
    job->serial = w->serial;
    job->mode = m_weightsMode;
    job->perTensor = m_perTensor;
    post([this, job, data = m_weights] {
        const int mode = std::clamp(job->mode, 0, 2);
        const std::vector<std::vector<float>>* values = mode == 1 ? &data->update : mode == 2 ? &data->grads : nullptr;
        const auto& r = job->region;
        job->cells = dynamics::rasterizeAtlas(
            data->matrices, data->layout, r[0], r[1], r[2], r[3], job->cols, job->rows,
            values ? std::span<const std::vector<float>>(*values) : std::span<const std::vector<float>>(),
            job->perTensor ? std::span<const float>(data->inverse[mode]) : std::span<const float>());
        if (values && values->empty()) std::fill(job->cells.begin(), job->cells.end(), std::nanf(""));
        // A cell that averages many weights is nearer zero than the weights are (the mean of k independent
        // weights shrinks like 1/sqrt(k)), so on the weights' own scale a zoomed-out atlas is all pale:
        // aggregated cells are coloured on the 99.5th percentile of the cells shown instead.
        if (r[2] / std::max(job->cols, 1) > 1.0) {
            std::vector<float> mags;
            mags.reserve(job->cells.size());
            for (float x : job->cells)
                if (std::isfinite(x)) mags.push_back(std::fabs(x));
            if (!mags.empty()) {
                auto it = mags.begin() + long(double(mags.size() - 1) * 0.995);
                std::nth_element(mags.begin(), it, mags.end());
                job->contrast = *it;
            }
        }
        std::lock_guard lock(m_mutex);
        m_doneCells = job;
    });
}

} // namespace ts::app
