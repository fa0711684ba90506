// LiveSession: the one app translation unit that includes LibTorch.
#include "app/live_session.hpp"

#include "app/cli.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>

#include "engine/capture/dataset.hpp"
#include "engine/capture/inputs.hpp"
#include "engine/capture/structure.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/core/log.hpp"
#include "engine/explain/attribution.hpp"
#include "engine/explain/heatmap.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/evaluator.hpp"
#include "engine/landscape/mesh.hpp"
#include "engine/landscape/plot.hpp"
#include "engine/runs/checkpoint.hpp"
#include "engine/runs/run_store.hpp"
#include "engine/stats/reducer.hpp"

namespace ts::app {

namespace {
// One line on what capture sees; below 100% a warning names what it missed.
void logCoverage(const capture::Network& net) {
    const double pct = 100.0 * net.paramCoverage();
    TS_LOG_INFO("model '%s': %zu layers, %.1f%% of parameters owned by captured layers (%lld of %lld), %lld "
                "neurons (input included)",
                net.modelName.c_str(), net.nodes.size() > 0 ? net.nodes.size() - 1 : 0, pct,
                (long long)net.capturedParams, (long long)net.usedParams,
                (long long)(net.totalNeurons() + (net.nodes.empty() ? 0 : net.nodes[0].neurons)));
    if (net.capturedParams < net.usedParams) {
        std::string names;
        for (size_t i = 0; i < net.uncaptured.size() && i < 8; ++i)
            names += (i ? ", " : "") + net.uncaptured[i];
        if (net.uncaptured.size() > 8) names += ", ... (" + std::to_string(net.uncaptured.size()) + " in all)";
        TS_LOG_WARN("model '%s': capture is partial; not captured: %s", net.modelName.c_str(), names.c_str());
    }
    if (net.unusedParams > 0)
        TS_LOG_INFO("model '%s': %lld parameters belong to modules forward() never calls", net.modelName.c_str(),
                    (long long)net.unusedParams);
}

bool layerIsRelu(const std::string& type) {
    return type == "ReLU" || type == "relu" || type == "relu_";
}
} // namespace

struct LiveSession::Impl {
    SessionOptions options;
    std::unique_ptr<capture::Model> model;
    capture::DataSplit data;
    capture::Network network;
    std::unique_ptr<capture::Trainer> trainer;
    std::unique_ptr<stats::Reducer> reducer;
    Timeline timeline;

    mutable std::mutex mutex; // guards everything below
    Curves curves;
    std::vector<ui::HealthAlert> alerts;
    std::vector<std::string> alertKeys; // one alert per (kind, layer): the step where it began
    std::vector<scene::DenseWeights> dense;
    std::vector<scene::ConvWeights> conv;
    std::shared_ptr<const LiveSession::ParameterSet> parameters;
    std::atomic<bool> wantParameters{false};
    std::optional<LiveSession::ExplainRequest> explainWanted;
    std::shared_ptr<const LiveSession::Explanation> explanation;
    std::optional<LiveSession::LandscapeRequest> landscapeWanted;
    std::shared_ptr<const LiveSession::LiveLandscape> liveLandscape;
    // The Landscape panel's path: weights at each snapshot while wanted (the model's thread only).
    std::vector<::ts::landscape::TensorList> path;
    std::vector<int64_t> pathSteps;
    int snapshotsSinceLandscape = 0;
    std::string status;
    bool inspected = false;
    std::string objective; // the loss rule of the inspection step
    LayerSummary input; // statistics of a probe of the inputs (the input layer's neurons)
    std::map<std::string, double> baselineGradNorm; // first finite gradient norm per layer
    std::optional<double> baselineLoss;

    void addAlert(ui::Severity sev, const std::string& key, const std::string& message,
                  const std::string& layer, int64_t step) {
        if (std::find(alertKeys.begin(), alertKeys.end(), key) != alertKeys.end()) return;
        alertKeys.push_back(key);
        ui::HealthAlert a;
        a.severity = sev;
        a.message = message;
        a.layer = layer;
        a.layerIndex = network.find(layer);
        a.step = step;
        a.timelineIndex = int(timeline.size()) - 1;
        alerts.push_back(std::move(a));
    }

    static ui::Histogram toUi(const stats::Histogram& h) {
        ui::Histogram u;
        u.counts.assign(h.counts.begin(), h.counts.end());
        if (!h.edges.empty()) {
            u.lo = h.edges.front();
            u.hi = h.edges.back();
        }
        return u;
    }

    // Reduces one [batch x neurons] tensor: per-neuron statistics and a histogram.
    stats::NeuronStats scratchStats[3]; // per-neuron results of the trainer thread's reductions, reused
    // The reducer's view of x: device memory as it is when both are CUDA (the reads ordered after LibTorch's
    // stream), else host memory (x replaced by a host copy when it lives on a device).
    stats::TensorView viewFor(torch::Tensor& x, int64_t rows, int64_t cols, const char* what) {
        if (!x.device().is_cpu()) {
            if (reducer->backend() == stats::Backend::Cuda) {
                auto v = stats::TensorView::matrix(x.data_ptr<float>(), rows, cols, what, stats::MemoryKind::Device);
                v.producer = capture::producerStream(x.device());
                return v;
            }
            x = x.to(torch::kCPU);
        }
        return stats::TensorView::matrix(x.data_ptr<float>(), rows, cols, what);
    }

    bool modelOnDevice() const { return model && !model->device().is_cpu(); }
    // Why a panel that runs the model on host tensors cannot while it trains on a device ("" when it can).
    std::string hostModelNeeded(const char* panel) const {
        if (!modelOnDevice()) return {};
        return std::string(panel) + " runs the model on host tensors, and this run trains on " + model->device().str() +
               ": train with --device cpu to use it";
    }

    bool reduceMatrix(const torch::Tensor& t, const char* what, stats::NeuronStats& ns,
                      stats::LayerStats& ls) {
        if (!t.defined() || t.numel() == 0) return false;
        torch::Tensor x = t.to(torch::kFloat32).contiguous();
        int64_t rows = x.dim() > 0 ? x.size(0) : 1;
        int64_t cols = rows ? x.numel() / rows : 0;
        // The display histogram of a large tensor is counted on an even sample of kHistogramSample values
        // over the layer's full range: per-neuron statistics stay exact, and a million-neuron conv layer does
        // not pay for a scattered count of every value (the histogram costs several times the statistics).
        constexpr int64_t kHistogramSample = int64_t(1) << 20;
        const bool sample = x.numel() > 2 * kHistogramSample;
        stats::ReduceOptions ro;
        ro.histogram.bins = sample ? 0 : options.histogramBins;
        auto r = reducer->reduce(viewFor(x, rows, cols, what), ns, ro);
        if (!r) {
            TS_LOG_WARN("statistics of %s: %s", what, r.error().message.c_str());
            return false;
        }
        ls = std::move(r.value());
        if (sample && std::isfinite(ls.min) && std::isfinite(ls.max)) {
            const int64_t stride = (x.numel() + kHistogramSample - 1) / kHistogramSample;
            torch::Tensor s = x.reshape({-1}).slice(0, 0, x.numel(), stride).contiguous();
            stats::NeuronStats ignored;
            stats::ReduceOptions ho;
            ho.histogram.bins = options.histogramBins;
            ho.histogram.lo = float(ls.min);
            ho.histogram.hi = float(ls.max);
            auto h = reducer->reduce(viewFor(s, 1, s.numel(), what), ignored, ho);
            if (h) ls.histogram = std::move(h->histogram);
        }
        return true;
    }

    void consume(capture::Snapshot& snap) {
        SnapshotSummary sum;
        sum.step = snap.step;
        sum.loss = snap.loss;
        sum.accuracy = snap.accuracy;
        sum.learningRate = snap.learningRate;
        sum.health = snap.health.describe();
        std::vector<scene::DenseWeights> dense;
        std::vector<scene::ConvWeights> conv;
        for (size_t li = 0; li < snap.layers.size(); ++li) {
            auto& layer = snap.layers[li];
            LayerSummary ls;
            ls.name = layer.name;
            stats::NeuronStats& ns = scratchStats[0]; // reused: no fresh pages per layer
            stats::LayerStats st;
            const bool actOk = reduceMatrix(layer.activation, layer.name.c_str(), ns, st);
            if (actOk) {
                int64_t n = ns.neurons;
                ls.meanActivation.assign(ns.stat(stats::Statistic::Mean),
                                         ns.stat(stats::Statistic::Mean) + n);
                ls.zeroFraction.assign(ns.stat(stats::Statistic::ZeroFraction),
                                       ns.stat(stats::Statistic::ZeroFraction) + n);
                ls.activationStd.resize(size_t(n));
                const float* var = ns.stat(stats::Statistic::Variance);
                for (int64_t k = 0; k < n; ++k)
                    ls.activationStd[size_t(k)] = std::sqrt(std::max(var[k], 0.0f));
                ls.activations = toUi(st.histogram);
                ls.nonFinite += st.nanCount + st.infCount;
                int64_t dead = 0;
                for (float z : ls.zeroFraction)
                    dead += z >= 1.0f;
                ls.deadFraction = n ? float(dead) / float(n) : 0.0f;
                ls.samples = st.batch;
            }
            stats::NeuronStats& gs = scratchStats[1];
            stats::LayerStats gst;
            const bool gradOk = reduceMatrix(layer.gradient, (layer.name + " gradients").c_str(), gs, gst);
            if (gradOk) {
                const float* ma = gs.stat(stats::Statistic::MeanAbs);
                ls.meanAbsGradient.assign(ma, ma + gs.neurons);
                ls.hasGradient = true;
                ls.gradients = toUi(gst.histogram);
                ls.gradientNorm = gst.l2Norm;
                ls.nonFinite += gst.nanCount + gst.infCount;
            }
            if (writer) stageRecord(li, layer, actOk ? &ns : nullptr, gradOk ? &gs : nullptr);
            // The layer's own weight (first parameter of >= 2 dims used by this layer).
            for (auto& p : snap.params) {
                if (p.layer != int32_t(li) || p.value.dim() < 2) continue;
                stats::NeuronStats& ws = scratchStats[2];
                stats::LayerStats wst;
                torch::Tensor w = p.value.to(torch::kFloat32).contiguous().reshape({1, -1});
                if (reduceMatrix(w, (p.name).c_str(), ws, wst)) {
                    ls.weights = toUi(wst.histogram);
                    ls.weightNorm = wst.l2Norm;
                }
                if (p.grad.defined()) {
                    torch::Tensor g = p.grad.to(torch::kFloat32).contiguous().reshape({1, -1});
                    auto ratio =
                        reducer->normRatio(stats::TensorView::matrix(g.data_ptr<float>(), 1, g.numel()),
                                           stats::TensorView::matrix(w.data_ptr<float>(), 1, w.numel()));
                    if (ratio) ls.updateRatio = *ratio;
                }
                // Dense weights for edges: a Linear node connects its input node to itself.
                int node = network.find(layer.name);
                if (p.value.dim() == 2 && node > 0 && p.value.numel() <= 4'000'000) {
                    for (const auto& e : network.edges) {
                        if (int(e.to) != node) continue;
                        const auto& from = network.nodes[e.from];
                        if (from.neurons != p.value.size(1) ||
                            network.nodes[size_t(node)].neurons != p.value.size(0))
                            continue;
                        scene::DenseWeights dw;
                        dw.from = e.from;
                        dw.to = uint32_t(node);
                        dw.w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
                        dense.push_back(std::move(dw));
                        break;
                    }
                }
                if (p.value.dim() == 4 && node > 0 && p.value.numel() <= 4'000'000)
                    if (auto cw = convWeightsOf(uint32_t(node), p.value, w)) conv.push_back(std::move(*cw));
                break;
            }
            sum.layers.push_back(std::move(ls));
        }
        if (writer) recordSnapshot(snap);
        if (wantParameters.load()) publishParameters(snap);
        serveExplanation(snap.step);
        serveLandscape(snap.step);
        std::string badLayer = !snap.health.firstBadActivation.empty() ? snap.health.firstBadActivation
                               : !snap.health.firstBadGradient.empty() ? snap.health.firstBadGradient
                                                                       : "loss";
        assess(std::move(sum), snap.step, snap.loss, snap.health.ok(), badLayer, snap.health.describe(), &dense);
        std::lock_guard lock(mutex);
        conv.swap(this->conv);
    }

    int64_t inspectOnlyStep() const { return trainer ? trainer->stepsDone() : 0; }

    // Nothing else uses the model after view's inspection, or once the trainer thread has ended: the panels'
    // pictures may then be computed at once on the calling thread.
    bool modelIdle() const {
        if (reader || !trainer) return false;
        const auto st = trainer->state();
        return options.inspectOnly ? inspected
                                   : st == capture::TrainerState::Finished || st == capture::TrainerState::Stopped ||
                                         st == capture::TrainerState::Failed;
    }

    // ---- The Explain panel. Only from the thread that owns the model (see LiveSession::wantExplanation).
    const capture::Dataset& explainData() const {
        return data.validation.size() > 0 ? data.validation : data.train;
    }

    void serveExplanation(int64_t step) {
        std::optional<LiveSession::ExplainRequest> want;
        {
            std::lock_guard lock(mutex);
            want = explainWanted;
        }
        if (!want) return;
        auto e = computeExplanation(*want, step);
        std::lock_guard lock(mutex);
        if (explainWanted == want) explanation = std::move(e);
    }

    std::shared_ptr<const LiveSession::Explanation> computeExplanation(const LiveSession::ExplainRequest& r, int64_t step) {
        auto out = std::make_shared<LiveSession::Explanation>();
        out->request = r;
        out->step = step;
        const capture::Dataset& d = explainData();
        if (auto why = hostModelNeeded("the Explain panel"); !why.empty()) {
            out->error = why;
            return out;
        }
        auto method = explain::parseMethod(r.method);
        if (!method) {
            out->error = "unknown method '" + r.method + "'";
            return out;
        }
        if (r.sample < 0 || r.sample >= d.size()) {
            out->error = "no sample " + std::to_string(r.sample) + " (" + std::to_string(d.size()) + " samples)";
            return out;
        }
        explain::AttributionOptions o;
        o.method = *method;
        o.target = r.target;
        o.keepLayerMaps = r.layers && (*method == explain::Method::LrpEpsilon || *method == explain::Method::LrpAlphaBeta);
        const torch::Tensor x = d.inputs.narrow(0, r.sample, 1).clone();
        auto a = explain::attribute(*model, x, o);
        if (!a) {
            out->error = a.error().message;
            return out;
        }
        if (r.layers) {
            auto flat = [](const torch::Tensor& t) {
                const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
                return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
            };
            if (!network.nodes.empty()) out->relevance.emplace_back(network.nodes[0].name, flat(a->map));
            for (const auto& l : a->layers)
                if (l.relevance.defined()) out->relevance.emplace_back(l.name, flat(l.relevance));
        }
        auto name = [&](int64_t c) {
            return c >= 0 && size_t(c) < d.classNames.size() ? d.classNames[size_t(c)] : std::to_string(c);
        };
        explain::HeatmapSource src;
        src.shape.assign(x.sizes().begin() + 1, x.sizes().end());
        src.signedMap = explain::methodIsSigned(*method);
        const torch::Tensor in = x.contiguous(), map = a->map.contiguous();
        src.input.assign(in.data_ptr<float>(), in.data_ptr<float>() + in.numel());
        src.attribution.assign(map.data_ptr<float>(), map.data_ptr<float>() + map.numel());
        src.mapLabel = r.method;
        char line[256];
        const int64_t label = d.labels.defined() && d.labels.numel() > r.sample ? d.labels[r.sample].item<int64_t>() : -1;
        std::snprintf(line, sizeof line, "%s of class %s (%.3g) | predicted %s%s", r.method.c_str(), name(a->target).c_str(),
                      a->score, name(a->predicted).c_str(), label >= 0 ? (" | label " + name(label)).c_str() : "");
        out->line = line;
        out->image = ui::panelImageOf(explain::renderExplanation(src, 96));
        return out;
    }

    // ---- The Landscape panel. Only from the thread that owns the model (see LiveSession::wantLandscape).
    void serveLandscape(int64_t step) {
        std::optional<LiveSession::LandscapeRequest> want;
        bool have = false;
        {
            std::lock_guard lock(mutex);
            want = landscapeWanted;
            have = liveLandscape && liveLandscape->request == want;
        }
        if (!want) {
            path.clear();
            pathSteps.clear();
            return;
        }
        if (modelOnDevice()) { // computeLandscape says why
            if (!have) {
                auto l = computeLandscape(*want, step, false, false);
                std::lock_guard lock(mutex);
                if (landscapeWanted == want) liveLandscape = std::move(l);
            }
            return;
        }
        recordPathPoint(step);
        if (landscapeBusy.load()) return; // the last one is still being computed beside training
        if (have && ++snapshotsSinceLandscape < want->every) return;
        snapshotsSinceLandscape = 0;
        auto l = computeLandscape(*want, step, true, false);
        if (!l) return; // computing on the landscape thread
        std::lock_guard lock(mutex);
        if (landscapeWanted == want) liveLandscape = std::move(l);
    }

    // The weights now, appended to the path; a long path keeps every other point (and its last), so it spans
    // the whole run in at most 64 points.
    void recordPathPoint(int64_t step) {
        if (!pathSteps.empty() && pathSteps.back() == step) return;
        path.push_back(::ts::landscape::parameterSpace(*model, ::ts::landscape::DirType::Weights).snapshot());
        pathSteps.push_back(step);
        if (path.size() > 64) {
            std::vector<::ts::landscape::TensorList> keptPath;
            std::vector<int64_t> keptSteps;
            for (size_t i = 0; i < path.size(); ++i)
                if (i % 2 == 0 || i + 1 == path.size()) {
                    keptPath.push_back(std::move(path[i]));
                    keptSteps.push_back(pathSteps[i]);
                }
            path = std::move(keptPath);
            pathSteps = std::move(keptSteps);
        }
    }

    // The surface around the weights now. The directions, the path's projection and the evaluator are made here,
    // on the thread that owns the model. When a batched path fits the model (a Linear chain, a layer program),
    // it holds copies of all it reads and, with `background`, computes the grid on the landscape thread while
    // training goes on (the result is published when done; nullptr is returned). Otherwise the grid is
    // computed here (per point when no batched path fits), while training waits; without `background` the
    // model is idle and the batched paths may use the pool.
    std::shared_ptr<const LiveSession::LiveLandscape> computeLandscape(const LiveSession::LandscapeRequest& r, int64_t step,
                                                                      bool background, bool usePool) {
        namespace ls = ::ts::landscape;
        auto out = std::make_shared<LiveSession::LiveLandscape>();
        out->request = r;
        out->step = step;
        const capture::Dataset& d = explainData();
        if (auto why = hostModelNeeded("the Landscape panel"); !why.empty()) {
            out->error = why;
            return out;
        }
        const int64_t n = std::min<int64_t>(r.samples, d.size());
        if (n <= 0 || !d.labels.defined() || d.labels.numel() < n) {
            out->error = "the landscape needs labelled samples, and this session has none";
            return out;
        }
        try {
            auto space = ls::parameterSpace(*model, ls::DirType::Weights);
            const auto origin = space.snapshot();
            if (path.empty() || pathSteps.back() != step) recordPathPoint(step);
            out->pathPoints = path.size();
            ls::Directions dirs;
            LandscapeFigure fig;
            fig.step = step;
            fig.samples = n;
            fig.grid = r.grid;
            fig.xName = fig.yName = "random direction, filter-normalised";
            if (path.size() >= 3) {
                if (auto pca = ls::pcaDirections(path, origin, ls::Ignore::BiasBn)) {
                    dirs = std::move(*pca);
                    if (auto pr = ls::projectTrajectory(path, origin, dirs, ls::Projection::Cos)) fig.projected = std::move(*pr);
                    char buf[96];
                    for (int i = 0; i < 2; ++i) {
                        std::snprintf(buf, sizeof buf, "PC%d of the path so far (%.1f%% of its variance)", i + 1,
                                      dirs.explainedVarianceRatio.size() > size_t(i) ? 100 * dirs.explainedVarianceRatio[size_t(i)] : 0.0);
                        (i == 0 ? fig.xName : fig.yName) = buf;
                    }
                }
            }
            if (!dirs.is2d()) dirs = ls::randomDirections(origin, {ls::Norm::Filter, ls::Ignore::BiasBn}, 123, true);
            ls::GridSpec grid{{-1, 1, r.grid}, ls::GridAxis{-1, 1, r.grid}};
            double reach = 0;
            for (const auto& pt : fig.projected)
                reach = std::max({reach, std::abs(pt[0]), std::abs(pt[1])});
            if (reach > 0 && std::isfinite(reach)) {
                grid.x.min = grid.y->min = -1.25 * reach;
                grid.x.max = grid.y->max = 1.25 * reach;
            }
            // Beside training, off the thread pool the UI thread shares (and OpenBLAS's thread count untouched):
            // the landscape thread only. Once training has ended the pool is free to use.
            ls::EvaluatorOptions eo;
            eo.usePool = usePool;
            auto ev = ls::SurfaceEvaluator::create(*model, space, dirs, {d.inputs.narrow(0, 0, n), d.labels.narrow(0, 0, n)},
                                                   eo);
            if (!ev) {
                out->error = ev.error().message;
                return out;
            }
            std::shared_ptr<ls::DetachedSurfaceEvaluator> detached;
            if (background) detached = (*ev)->detach();
            if (detached) {
                ev->reset(); // the model back in training mode, at its weights, before training goes on
                startLandscapeWorker(r, std::move(detached), grid, std::move(fig), out->pathPoints);
                return nullptr;
            }
            auto surface = (*ev)->evaluateGrid(grid);
            ev->reset(); // the model back in training mode, at its weights
            if (!surface) {
                out->error = surface.error().message;
                return out;
            }
            drawLandscape(*out, *surface, fig, false);
        } catch (const std::exception& e) {
            std::string what = e.what();
            out->error = "landscape: " + oneLineReason(what);
        }
        return out;
    }

    struct LandscapeFigure {
        int64_t step = 0, samples = 0;
        int grid = 0;
        std::string xName, yName;
        std::vector<std::array<double, 2>> projected;
    };

    // The panel's figure and line for a computed surface.
    void drawLandscape(LiveSession::LiveLandscape& out, const ::ts::landscape::Surface& surface, const LandscapeFigure& fig,
                       bool background) {
        namespace ls = ::ts::landscape;
        ls::MeshOptions mo;
        mo.contourStep = 0.5;
        auto mesh = ls::buildHeightField(surface, mo);
        if (!fig.projected.empty()) ls::addTrajectory(mesh, surface, fig.projected, mo);
        ls::PlotLabels labels;
        labels.title = "loss around the weights at step " + std::to_string(fig.step) + " (" + std::to_string(fig.samples) +
                       " samples, " + std::to_string(fig.grid) + "x" + std::to_string(fig.grid) + " points)";
        labels.xName = fig.xName;
        labels.yName = fig.yName;
        out.image = ui::panelImageOf(ls::renderPlot(surface, mesh, labels));
        out.background = background;
        char line[240];
        std::snprintf(line, sizeof line, "min loss %.4g, %zu weights on the path%s%s", mesh.minimumLoss, out.pathPoints,
                      fig.projected.empty() ? " (random directions until 3)" : "",
                      background ? "; computed beside training" : "");
        out.line = line;
    }

    // The landscape thread: one detached grid at a time, started by the model's thread (which joins the last one
    // first), published under the mutex if the same request is still wanted; cancelled by a new request or the
    // end of the session.
    std::thread landscapeWorker;
    std::atomic<bool> landscapeBusy{false}, landscapeCancel{false};
    std::atomic<int> landscapesBeside{0};

    void startLandscapeWorker(LiveSession::LandscapeRequest r, std::shared_ptr<::ts::landscape::DetachedSurfaceEvaluator> ev,
                              ::ts::landscape::GridSpec grid, LandscapeFigure fig, size_t pathPoints) {
        if (landscapeWorker.joinable()) landscapeWorker.join(); // finished: landscapeBusy was false
        landscapeCancel = false;
        landscapeBusy = true;
        landscapeWorker = std::thread([this, r, ev = std::move(ev), grid, fig = std::move(fig), pathPoints] {
            auto out = std::make_shared<LiveSession::LiveLandscape>();
            out->request = r;
            out->step = fig.step;
            out->pathPoints = pathPoints;
            try {
                ::ts::landscape::GridRunOptions run;
                run.progressive = false;
                run.cancel = &landscapeCancel;
                auto surface = ev->evaluateGrid(grid, run);
                if (!surface) out->error = surface.error().message;
                else if (!landscapeCancel.load()) drawLandscape(*out, *surface, fig, true);
            } catch (const std::exception& e) {
                std::string what = e.what();
                out->error = "landscape: " + oneLineReason(what);
            }
            {
                std::lock_guard lock(mutex);
                if (!landscapeCancel.load() && landscapeWanted == r) {
                    if (out->error.empty()) ++landscapesBeside;
                    liveLandscape = std::move(out);
                }
            }
            landscapeBusy = false;
        });
    }

    // Every parameter of the snapshot as a matrix (rows = size(0), a vector or scalar one row), handed over
    // whole under the mutex.
    void publishParameters(const capture::Snapshot& snap) {
        auto set = std::make_shared<LiveSession::ParameterSet>();
        set->step = snap.step;
        for (const auto& p : snap.params) {
            if (!p.value.defined() || p.value.numel() == 0) continue;
            torch::Tensor v = p.value.detach().to(torch::kFloat32).contiguous();
            const int64_t rows = v.dim() >= 2 ? v.size(0) : 1;
            dynamics::WeightMatrix m{p.name, rows, v.numel() / rows, {}};
            m.values.assign(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
            std::vector<float> g;
            if (p.grad.defined() && p.grad.numel() == v.numel()) {
                torch::Tensor gt = p.grad.detach().to(torch::kFloat32).contiguous();
                g.assign(gt.data_ptr<float>(), gt.data_ptr<float>() + gt.numel());
            }
            set->values.push_back(std::move(m));
            set->grads.push_back(std::move(g));
        }
        std::lock_guard lock(mutex);
        parameters = std::move(set);
    }

    // A Conv2d weight [Cout, Cin/groups, kh, kw] of network node `node`, with stride and padding found from the
    // input and output map sizes (dilation 1): out = floor((in + 2 pad - k) / stride) + 1.
    std::optional<scene::ConvWeights> convWeightsOf(uint32_t node, const torch::Tensor& weight, const torch::Tensor& flat) {
        int from = -1;
        for (const auto& e : network.edges)
            if (e.to == node) from = from < 0 ? int(e.from) : -2; // a single input only
        if (from < 0) return std::nullopt;
        const auto in = network.nodes[size_t(from)].grid, out = network.nodes[node].grid;
        const int64_t cout = weight.size(0), cinG = weight.size(1), kh = weight.size(2), kw = weight.size(3);
        if (cout != out[0] || cinG <= 0 || in[0] % cinG != 0 || cout % (in[0] / cinG) != 0) return std::nullopt;
        // The usual paddings ((k - 1) / 2, then none) before any other that gives the right size.
        auto fit = [](int64_t n, int64_t m, int64_t k, uint32_t& stride, uint32_t& pad) {
            for (int pass = 0; pass < 2; ++pass)
                for (int64_t s = 1; s <= 8; ++s)
                    for (int64_t p : pass == 0 ? std::vector<int64_t>{(k - 1) / 2, 0} : std::vector<int64_t>{1, 2, 3, 4, 5}) {
                        if (p > k || n + 2 * p - k < 0 || (n + 2 * p - k) / s + 1 != m) continue;
                        stride = uint32_t(s), pad = uint32_t(p);
                        return true;
                    }
            return false;
        };
        scene::ConvWeights c;
        c.from = uint32_t(from);
        c.to = node;
        c.kh = uint32_t(kh), c.kw = uint32_t(kw);
        c.groups = uint32_t(in[0] / cinG);
        if (!fit(in[1], out[1], kh, c.strideH, c.padH) || !fit(in[2], out[2], kw, c.strideW, c.padW)) return std::nullopt;
        c.w.assign(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
        return c;
    }

    // Health heuristics over one snapshot's summary (trained here or read from a run), then the push into the
    // timeline. Relative to each layer's first measurement (absolute thresholds do not transfer between
    // models): exploding when the activation-gradient norm grew more than 1000x; vanishing when it fell below
    // 1e-4x while the loss is still above 1% of its starting value (near-zero loss makes small gradients
    // expected).
    static constexpr int64_t kDeadAlertMinSamples = 8;
    void assess(SnapshotSummary sum, int64_t step, double loss, bool healthy, const std::string& badLayer,
                const std::string& healthText, std::vector<scene::DenseWeights>* dense) {
        std::vector<std::pair<std::string, float>> deadLayers, exploding, vanishing;
        if (!baselineLoss && std::isfinite(loss) && loss > 0) baselineLoss = loss;
        for (const auto& l : sum.layers) {
            int node = network.find(l.name);
            bool act = node >= 0 && layerIsRelu(network.nodes[size_t(node)].type);
            // "Dead" is zero on every sample of the batch: over fewer than kDeadAlertMinSamples samples a
            // healthy ReLU is zero for all of them too often (half its neurons at one sample, 0.4% at eight).
            const bool enoughSamples = l.samples == 0 || l.samples >= kDeadAlertMinSamples;
            if (act && enoughSamples && l.deadFraction > 0.5f) deadLayers.push_back({l.name, l.deadFraction});
            if (!l.hasGradient || !std::isfinite(l.gradientNorm)) continue;
            auto [it, inserted] = baselineGradNorm.emplace(l.name, l.gradientNorm);
            double base = it->second;
            if (inserted || base <= 0) continue;
            double ratio = l.gradientNorm / base;
            if (ratio > 1000.0) exploding.push_back({l.name, float(ratio)});
            if (ratio < 1e-4 && baselineLoss && loss > 0.01 * *baselineLoss)
                vanishing.push_back({l.name, float(ratio)});
        }
        if (!input.meanActivation.empty()) sum.layers.insert(sum.layers.begin(), input);
        timeline.push(std::move(sum));
        std::lock_guard lock(mutex);
        if (dense) dense->swap(this->dense);
        if (!healthy) addAlert(ui::Severity::Error, "nonfinite", "NaN/Inf: " + healthText, badLayer, step);
        for (auto& [name, f] : deadLayers)
            addAlert(ui::Severity::Warning, "dead:" + name, std::to_string(int(f * 100)) + "% dead neurons",
                     name, step);
        char buf[96];
        for (auto& [name, g] : exploding) {
            std::snprintf(buf, sizeof(buf), "exploding gradients (|g| x%.0f since the start)", double(g));
            addAlert(ui::Severity::Error, "explode:" + name, buf, name, step);
        }
        for (auto& [name, g] : vanishing) {
            std::snprintf(buf, sizeof(buf), "vanishing gradients (|g| x%.1e since the start)", double(g));
            addAlert(ui::Severity::Warning, "vanish:" + name, buf, name, step);
        }
    }

    void onStep(const capture::StepInfo& info) {
        std::lock_guard lock(mutex);
        curves.trainLoss.push_back(float(info.loss));
        curves.trainAcc.push_back(float(info.accuracy));
        if (info.evaluated) {
            curves.valLoss.push_back(float(info.valLoss));
            curves.valAcc.push_back(float(info.valAccuracy));
            curves.valSteps.push_back(info.step);
        }
        if (!std::isfinite(info.loss))
            addAlert(ui::Severity::Error, "loss", "loss is not finite", "loss", info.step);
        if (writer) {
            std::vector<std::pair<std::string, double>> values{
                {"loss", info.loss}, {"accuracy", info.accuracy}, {"lr", info.learningRate}};
            if (info.evaluated) {
                values.push_back({"val_loss", info.valLoss});
                values.push_back({"val_accuracy", info.valAccuracy});
            }
            if (auto st = writer->appendScalars(info.step, values); !st) stopRecording(st);
        }
    }

    // ---- Recording (--run DIR): this session's snapshots into a run store. Trainer thread only.
    std::unique_ptr<runs::RunWriter> writer;
    std::vector<std::vector<float>> recordAct, recordGrad; // per snapshot layer, [8 x stride], reused
    std::vector<char> recordHasAct, recordHasGrad;
    std::vector<int64_t> recordRows;

    void stopRecording(const Status& why) {
        TS_LOG_ERROR("recording stopped: %s (the run keeps every snapshot committed before)", why.message().c_str());
        writer.reset();
    }

    void stageRecord(size_t li, const capture::LayerSnapshot& layer, const stats::NeuronStats* a,
                     const stats::NeuronStats* g) {
        if (recordAct.size() <= li) {
            recordAct.resize(li + 1);
            recordGrad.resize(li + 1);
            recordHasAct.resize(li + 1, 0);
            recordHasGrad.resize(li + 1, 0);
            recordRows.resize(li + 1, 0);
        }
        recordHasAct[li] = a != nullptr;
        recordHasGrad[li] = g != nullptr;
        if (a) recordAct[li].assign(a->data.begin(), a->data.end());
        if (g) recordGrad[li].assign(g->data.begin(), g->data.end());
        recordRows[li] = layer.activation.defined() && layer.activation.dim() > 0 ? layer.activation.size(0) : 0;
    }

    // Statistics and histogram of all of a layer's own parameters (values or gradients) together.
    void paramRecord(const std::vector<torch::Tensor>& tensors, runs::ParamStats& out, runs::ParamHistogram& hist) {
        std::vector<torch::Tensor> flat;
        for (const auto& t : tensors)
            if (t.defined() && t.numel() > 0) flat.push_back(t.to(torch::kFloat32).reshape({-1}));
        if (flat.empty()) return;
        torch::Tensor all = torch::cat(flat).contiguous();
        stats::NeuronStats ignored;
        stats::ReduceOptions ro;
        ro.histogram.bins = options.histogramBins;
        auto r = reducer->reduce(stats::TensorView::matrix(all.data_ptr<float>(), all.numel(), 1, "parameters"),
                                 ignored, ro);
        if (!r) return;
        out.v = {double(r->finiteCount), r->mean, r->std, double(r->min), double(r->max), r->l2Norm,
                 double(r->nanCount), double(r->infCount)};
        hist.counts.assign(r->histogram.counts.begin(), r->histogram.counts.end());
        if (!r->histogram.edges.empty()) {
            hist.lo = r->histogram.edges.front();
            hist.hi = r->histogram.edges.back();
        }
    }

    Status beginRecording(const std::string& dir) {
        runs::WriterOptions wo;
        wo.dir = dir;
        wo.info.model = network.modelName;
        wo.info.writer = "cpp";
        wo.info.every = options.captureEvery;
        wo.info.histogramBins = options.histogramBins;
        if (!network.nodes.empty()) wo.info.inputShape = network.nodes[0].outputShape;
        auto w = runs::RunWriter::create(wo);
        if (!w) return w.error();
        std::vector<runs::RunLayer> layers;
        // Weight matrices stored per snapshot: a module's weight of 2 or more dimensions, as [out, rest].
        std::map<std::string, std::vector<int64_t>> weightShapes;
        for (const auto& [name, t] : model->namedParameters())
            if (t.dim() >= 2 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0)
                weightShapes[name.substr(0, name.size() - 7)] = {t.size(0), t.numel() / std::max<int64_t>(t.size(0), 1)};
        int64_t stored = 0;
        for (size_t i = 1; i < network.nodes.size(); ++i) {
            const auto& n = network.nodes[i];
            runs::RunLayer rl{n.name, n.type, n.outputShape, n.neurons, n.paramCount};
            for (const auto& e : network.edges) // the DAG: node k is layer k - 1, node 0 the input (-1)
                if (e.to == i) rl.inputs.push_back(int64_t(e.from) - 1);
            if (auto it = weightShapes.find(n.module); it != weightShapes.end() && !n.module.empty()) {
                const int64_t elems = it->second[0] * it->second[1];
                if (elems <= options.recordMatrixMax && stored + elems <= 4 * options.recordMatrixMax) {
                    rl.matrixShape = it->second;
                    stored += elems;
                }
            }
            layers.push_back(std::move(rl));
        }
        recordMatrix = layers;
        if (auto s = (*w)->begin(layers, {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}); !s) return s;
        writer = std::move(w.value());
        TS_LOG_INFO("recording snapshots into %s (open it with: tensorscape open %s)", dir.c_str(), dir.c_str());
        return Status::ok();
    }

    std::vector<runs::RunLayer> recordMatrix; // the recorded layers (their matrixShape says which are stored)

    void recordSnapshot(const capture::Snapshot& snap) {
        std::vector<runs::LayerRecord> records(network.nodes.size() > 0 ? network.nodes.size() - 1 : 0);
        std::vector<std::vector<torch::Tensor>> values(records.size()), grads(records.size());
        for (size_t li = 0; li < snap.layers.size() && li < recordAct.size(); ++li) {
            const int node = network.find(snap.layers[li].name);
            if (node <= 0) continue;
            runs::LayerRecord& r = records[size_t(node - 1)];
            const int64_t n = network.nodes[size_t(node)].neurons;
            const size_t want = size_t(stats::statsStride(n) * stats::kStatisticCount);
            if (recordHasAct[li] && recordAct[li].size() == want) {
                r.activation = recordAct[li].data();
                r.activationStride = stats::statsStride(n);
            }
            if (recordHasGrad[li] && recordGrad[li].size() == want) {
                r.gradient = recordGrad[li].data();
                r.gradientStride = stats::statsStride(n);
            }
            r.rows = recordRows[li];
            for (const auto& p : snap.params) {
                if (p.layer != int32_t(li)) continue;
                values[size_t(node - 1)].push_back(p.value);
                if (p.grad.defined()) grads[size_t(node - 1)].push_back(p.grad);
            }
        }
        std::vector<torch::Tensor> matrices; // alive until written
        for (size_t i = 0; i < records.size(); ++i) {
            paramRecord(values[i], records[i].weight, records[i].weightHist);
            paramRecord(grads[i], records[i].weightGrad, records[i].weightGradHist);
            const auto& ms = i < recordMatrix.size() ? recordMatrix[i].matrixShape : std::vector<int64_t>{};
            if (ms.size() != 2) continue;
            for (const auto& v : values[i])
                if (v.dim() >= 2 && v.numel() == ms[0] * ms[1]) {
                    matrices.push_back(v.to(torch::kFloat32).contiguous());
                    records[i].matrix = matrices.back().data_ptr<float>();
                    break;
                }
        }
        if (auto st = writer->appendSnapshot(snap.step, records); !st) {
            stopRecording(st);
            return;
        }
        if (options.checkpointEvery > 0 && snap.step >= nextCheckpoint) {
            nextCheckpoint = (snap.step / options.checkpointEvery + 1) * options.checkpointEvery;
            if (auto st = saveCheckpoint(snap.step); !st) stopRecording(st);
        }
    }

    int64_t nextCheckpoint = 0;

    // The model's floating-point parameters and buffers now (trainer thread: it owns the model).
    Status saveCheckpoint(int64_t step) {
        std::vector<runs::CheckpointTensor> tensors;
        torch::NoGradGuard noGrad;
        auto add = [&](const capture::NamedTensors& named) {
            for (const auto& [name, t] : named) {
                if (!t.defined() || !t.is_floating_point()) continue;
                const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
                tensors.push_back({name, c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())});
            }
        };
        add(model->namedParameters());
        add(model->namedBuffers());
        return runs::writeCheckpoint(options.recordRun, step, tensors);
    }

    // ---- Opening a recorded run (`open`): no model, no trainer; a follower thread reads committed
    // snapshots into the timeline (and new ones while the run grows). The reader is shared by the follower
    // and the timeline's neuron loader (UI thread) under readerMutex.
    std::unique_ptr<runs::RunReader> reader;
    std::mutex readerMutex;
    std::thread follower;
    std::atomic<bool> stopFollowing{false}, replayDone{false}, replayClosed{false};
    std::atomic<int64_t> replayStep{0}, replayLoaded{0}, replayCommitted{0};
    int64_t replayTarget = 0; // not following: the snapshots committed when the run was opened
    int64_t replayLastStep = 0;
    std::atomic<int64_t> replayRows{0}; // batch of the first snapshot (follower writes, UI reads)
    std::string replayError; // guarded by mutex

    static ui::Histogram histogramOf(const std::vector<float>& v, int bins) {
        ui::Histogram h;
        float lo = INFINITY, hi = -INFINITY;
        for (float x : v)
            if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
        if (!(lo <= hi) || bins <= 0) return h;
        if (lo == hi) lo -= 0.5f, hi += 0.5f;
        h.lo = lo;
        h.hi = hi;
        h.counts.assign(size_t(bins), 0.0f);
        for (float x : v)
            if (std::isfinite(x))
                h.counts[std::min(size_t(bins) - 1, size_t(double(x - lo) / double(hi - lo) * bins))] += 1.0f;
        return h;
    }

    static double scalarAt(const runs::Scalars& sc, std::initializer_list<const char*> names, int64_t step) {
        auto it = std::lower_bound(sc.steps.begin(), sc.steps.end(), step);
        for (const char* name : names)
            if (const auto* v = sc.find(name))
                for (auto j = it; j != sc.steps.end() && *j == step; ++j)
                    if (std::isfinite((*v)[size_t(j - sc.steps.begin())])) return (*v)[size_t(j - sc.steps.begin())];
        return NAN;
    }

    // A stored snapshot's step and the scalars logged at it (layers to be added).
    SnapshotSummary summaryAt(int64_t snapshot, const runs::Scalars& sc) const {
        SnapshotSummary sum;
        sum.step = reader->steps()[size_t(snapshot)];
        sum.loss = scalarAt(sc, {"loss", "train_loss"}, sum.step);
        sum.accuracy = scalarAt(sc, {"accuracy", "acc", "train_accuracy"}, sum.step);
        sum.learningRate = scalarAt(sc, {"lr", "learning_rate"}, sum.step);
        return sum;
    }

    // Healthy unless a layer holds NaN/Inf (the first such layer is named) or the loss is not finite.
    static void judgeHealth(SnapshotSummary& sum, bool& healthy, std::string& badLayer) {
        healthy = true;
        for (const auto& l : sum.layers)
            if (l.nonFinite > 0) {
                healthy = false;
                badLayer = l.name;
                break;
            }
        if (healthy && !std::isnan(sum.loss) && !std::isfinite(sum.loss)) {
            healthy = false;
            badLayer = "loss";
        }
        sum.health = healthy ? "healthy" : "NaN/Inf in " + badLayer;
    }

    // One stored snapshot as the timeline holds it. Activation and gradient histograms of a recorded run are
    // over the neurons' batch means (the store keeps per-neuron statistics, not every value). Caller holds
    // readerMutex.
    SnapshotSummary readSummary(int64_t snapshot, const runs::Scalars& sc, bool& healthy, std::string& badLayer) {
        SnapshotSummary sum = summaryAt(snapshot, sc);
        const int bins = options.histogramBins;
        for (size_t li = 0; li < reader->layers().size(); ++li) {
            const auto& rl = reader->layers()[li];
            const size_t n = size_t(rl.neurons);
            LayerSummary ls;
            ls.name = rl.name;
            auto a = reader->neuronStats(int(li), snapshot, runs::Kind::Activation);
            auto row = [n](const std::vector<float>& v, int s) {
                return std::vector<float>(v.begin() + long(size_t(s) * n), v.begin() + long(size_t(s + 1) * n));
            };
            if (a) {
                ls.meanActivation = row(*a, TS_STATS_MEAN);
                ls.zeroFraction = row(*a, TS_STATS_ZERO_FRACTION);
                ls.activationStd = row(*a, TS_STATS_VARIANCE);
                for (float& v : ls.activationStd)
                    v = std::sqrt(std::max(v, 0.0f));
                int64_t dead = 0;
                for (size_t k = 0; k < n; ++k) {
                    dead += ls.zeroFraction[k] >= 1.0f;
                    ls.nonFinite += uint64_t((*a)[TS_STATS_NAN_COUNT * n + k] + (*a)[TS_STATS_INF_COUNT * n + k]);
                }
                ls.deadFraction = n ? float(dead) / float(n) : 0.0f;
                ls.activations = histogramOf(ls.meanActivation, bins);
            }
            auto g = reader->neuronStats(int(li), snapshot, runs::Kind::Gradient);
            const int64_t rows = reader->rows(int(li), snapshot);
            ls.samples = rows;
            if (li == 0 && snapshot == 0) replayRows = rows;
            if (g) {
                std::vector<float> ma = row(*g, TS_STATS_MEAN_ABS);
                if (std::any_of(ma.begin(), ma.end(), [](float v) { return !std::isnan(v); })) {
                    double sq = 0.0;
                    for (size_t k = 0; k < n; ++k) {
                        const double cnt = double(rows) - (*g)[TS_STATS_NAN_COUNT * n + k] - (*g)[TS_STATS_INF_COUNT * n + k];
                        const double m = (*g)[TS_STATS_MEAN * n + k], var = (*g)[TS_STATS_VARIANCE * n + k];
                        if (cnt > 0 && std::isfinite(m) && std::isfinite(var)) sq += (var + m * m) * cnt;
                        ls.nonFinite += uint64_t((*g)[TS_STATS_NAN_COUNT * n + k] + (*g)[TS_STATS_INF_COUNT * n + k]);
                    }
                    ls.gradientNorm = std::sqrt(sq);
                    ls.hasGradient = true;
                    ls.gradients = histogramOf(ma, bins);
                    ls.meanAbsGradient = std::move(ma);
                }
            }
            auto w = reader->paramStats(int(li), snapshot, false);
            auto wg = reader->paramStats(int(li), snapshot, true);
            if (w && std::isfinite(w->l2())) {
                ls.weightNorm = w->l2();
                if (wg && std::isfinite(wg->l2()) && w->l2() > 0) ls.updateRatio = wg->l2() / w->l2();
            }
            if (auto h = reader->paramHistogram(int(li), snapshot, false); h && !h->counts.empty()) {
                ls.weights.counts.assign(h->counts.begin(), h->counts.end());
                ls.weights.lo = float(h->lo);
                ls.weights.hi = float(h->hi);
            }
            sum.layers.push_back(std::move(ls));
        }
        judgeHealth(sum, healthy, badLayer);
        return sum;
    }

    // A snapshot without per-neuron arrays, from the layers' summary rows (`rows[layer]`): what the health
    // checks and the charts need. The timeline's neuron loader reads the rest when the snapshot is shown.
    SnapshotSummary slimSummary(int64_t snapshot, const runs::Scalars& sc,
                                const std::vector<const runs::LayerSummaryRow*>& rows, bool& healthy,
                                std::string& badLayer) {
        SnapshotSummary sum = summaryAt(snapshot, sc);
        for (size_t li = 0; li < reader->layers().size(); ++li) {
            const runs::LayerSummaryRow& r = *rows[li];
            LayerSummary ls;
            ls.name = reader->layers()[li].name;
            const double bad = (std::isfinite(r.activationNonFinite()) ? r.activationNonFinite() : 0.0) +
                               (std::isfinite(r.gradientNonFinite()) ? r.gradientNonFinite() : 0.0);
            ls.nonFinite = uint64_t(bad);
            ls.deadFraction = std::isfinite(r.deadFraction()) ? float(r.deadFraction()) : 0.0f;
            ls.hasGradient = std::isfinite(r.gradientNorm());
            ls.gradientNorm = ls.hasGradient ? r.gradientNorm() : 0.0;
            sum.layers.push_back(std::move(ls));
        }
        judgeHealth(sum, healthy, badLayer);
        return sum;
    }

    void updateCurvesFrom(const runs::Scalars& sc) {
        Curves c;
        auto column = [&](std::initializer_list<const char*> names) -> const std::vector<double>* {
            for (const char* name : names)
                if (const auto* v = sc.find(name)) return v;
            return nullptr;
        };
        const auto* loss = column({"loss", "train_loss"});
        const auto* acc = column({"accuracy", "acc", "train_accuracy"});
        const auto* vloss = column({"val_loss", "validation_loss"});
        const auto* vacc = column({"val_accuracy", "val_acc", "validation_accuracy"});
        for (size_t i = 0; i < sc.steps.size(); ++i) {
            if (loss && !std::isnan((*loss)[i])) c.trainLoss.push_back(float((*loss)[i]));
            if (acc && !std::isnan((*acc)[i])) c.trainAcc.push_back(float((*acc)[i]));
            // Validation values where they were logged; steps follow the loss (or the accuracy without one).
            const bool hasLoss = vloss && !std::isnan((*vloss)[i]), hasAcc = vacc && !std::isnan((*vacc)[i]);
            if (hasLoss) c.valLoss.push_back(float((*vloss)[i]));
            if (hasAcc) c.valAcc.push_back(float((*vacc)[i]));
            if (hasLoss || (!vloss && hasAcc)) c.valSteps.push_back(sc.steps[i]);
        }
        std::lock_guard lock(mutex);
        for (size_t i = 0; i < c.trainLoss.size(); ++i)
            if (!std::isfinite(c.trainLoss[i]))
                addAlert(ui::Severity::Error, "loss", "loss is not finite", "loss", sc.steps[std::min(i, sc.steps.size() - 1)]);
        curves = std::move(c);
    }

    void follow(bool followNew) {
        int64_t loaded = 0;
        while (!stopFollowing.load()) {
            int64_t committed = 0;
            runs::Scalars sc;
            bool closed = false;
            {
                std::lock_guard lock(readerMutex);
                auto n = reader->refresh();
                // A read that races the writer's flush can fail once; a damaged file keeps failing.
                for (int retry = 0; !n && retry < 5 && !stopFollowing.load(); ++retry) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    n = reader->refresh();
                }
                if (!n) {
                    std::lock_guard l2(mutex);
                    replayError = n.error().message;
                    break;
                }
                committed = *n;
                closed = reader->closed();
                if (auto s = reader->scalars()) sc = std::move(s.value());
            }
            replayCommitted = committed;
            replayClosed = closed;
            updateCurvesFrom(sc);
            const int64_t until = followNew ? committed : std::min(committed, replayTarget);
            // Per-neuron arrays only for the newest snapshots that fit the timeline's budget; the older ones of
            // a long run come from the layers' summary rows (one read per layer), read back when shown.
            const int64_t fullFrom = std::max(loaded, until - std::max<int64_t>(1, neuronBudget() / bytesPerSnapshot()));
            std::vector<std::vector<runs::LayerSummaryRow>> slim;
            if (fullFrom > loaded) {
                std::lock_guard lock(readerMutex);
                for (size_t li = 0; li < reader->layers().size(); ++li) {
                    auto rows = reader->summaries(int(li), loaded, fullFrom - loaded);
                    if (!rows || !rows->has_value()) {
                        slim.clear();
                        break;
                    }
                    slim.push_back(std::move(**rows));
                }
            }
            const int64_t slimFrom = loaded;
            for (; loaded < until && !stopFollowing.load(); ++loaded) {
                bool healthy = true;
                std::string bad;
                SnapshotSummary sum;
                {
                    std::lock_guard lock(readerMutex);
                    if (!slim.empty() && loaded < fullFrom) {
                        std::vector<const runs::LayerSummaryRow*> rows;
                        for (const auto& l : slim)
                            rows.push_back(&l[size_t(loaded - slimFrom)]);
                        sum = slimSummary(loaded, sc, rows, healthy, bad);
                    } else {
                        sum = readSummary(loaded, sc, healthy, bad);
                    }
                }
                const int64_t step = sum.step;
                const double loss = sum.loss;
                const std::string text = sum.health;
                assess(std::move(sum), step, loss, healthy, bad, text, nullptr);
                replayStep = step;
                replayLoaded = loaded + 1;
            }
            if (!followNew && loaded >= replayTarget) break;
            if (closed && loaded >= committed) break;
            for (int i = 0; i < 10 && !stopFollowing.load(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        replayDone = true;
    }

    // The timeline's per-neuron byte budget (512 MiB; TS_TIMELINE_NEURON_MB overrides it, for tests).
    static int64_t neuronBudget() {
        const char* e = std::getenv("TS_TIMELINE_NEURON_MB");
        const long mb = e ? std::strtol(e, nullptr, 10) : 0;
        return (mb > 0 && mb < (1L << 20) ? int64_t(mb) : 512) << 20;
    }
    // Bytes of per-neuron arrays one snapshot holds in the timeline (four floats per neuron).
    int64_t bytesPerSnapshot() const {
        int64_t n = 0;
        for (const auto& l : reader->layers())
            n += l.neurons;
        return std::max<int64_t>(1, 16 * n);
    }

    // The network of a recorded run: the input, then the stored layers in forward order, joined as the run's
    // layer DAG says (`inputs`), or as a chain in runs without it.
    void networkFromRun() {
        network = {};
        network.modelName = reader->info().model.empty() ? "recorded run" : reader->info().model;
        capture::LayerNode in;
        in.name = "input";
        in.type = "Input";
        in.outputShape = reader->info().inputShape.empty() ? std::vector<int64_t>{1} : reader->info().inputShape;
        in.neurons = 1;
        for (int64_t d : in.outputShape)
            in.neurons *= d;
        in.grid = capture::foldToGrid(in.outputShape);
        network.nodes.push_back(in);
        for (size_t i = 0; i < reader->layers().size(); ++i) {
            const auto& l = reader->layers()[i];
            capture::LayerNode node;
            node.name = l.name;
            node.type = l.type.empty() ? "layer" : l.type;
            node.module = l.name;
            node.outputShape = l.shape;
            node.paramCount = l.params;
            node.neurons = l.neurons;
            node.grid = capture::foldToGrid(l.shape);
            node.activation = int32_t(i);
            // The recorded DAG when the run has one (node k is layer k - 1, node 0 the input), else a chain.
            const uint32_t self = uint32_t(i + 1);
            std::vector<uint32_t> from;
            for (int64_t k : l.inputs)
                from.push_back(uint32_t(k + 1));
            if (from.empty()) from.push_back(self - 1);
            for (uint32_t s : from) {
                node.inputShapes.push_back(network.nodes[s].outputShape);
                network.edges.push_back({s, self, self > s + 1});
            }
            network.nodes.push_back(node);
            network.usedParams += l.params;
        }
        network.capturedParams = network.usedParams;
    }
};

LiveSession::LiveSession() : m(std::make_unique<Impl>()) {}
LiveSession::~LiveSession() {
    if (m->trainer) m->trainer->stop();
    m->landscapeCancel = true;
    if (m->landscapeWorker.joinable()) m->landscapeWorker.join();
    m->stopFollowing = true;
    if (m->follower.joinable()) m->follower.join();
    if (m->writer)
        if (auto s = m->writer->close(); !s) TS_LOG_ERROR("%s", s.message().c_str());
}

namespace {
Expected<std::unique_ptr<runs::RunReader>> openRunWaiting(const std::string& dir) {
    // A run whose writer has not committed its first snapshot yet is not readable; a live `open` started
    // with the training script waits for it a little (run.json exists from init on).
    for (int attempt = 0;; ++attempt) {
        auto r = runs::RunReader::open(dir);
        if (r || attempt >= 100 || !std::filesystem::exists(dir + "/run.json")) return r;
        if (attempt == 0) TS_LOG_INFO("waiting for %s to commit its first snapshot", dir.c_str());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}
} // namespace

Expected<std::unique_ptr<LiveSession>> LiveSession::createFromRun(const SessionOptions& o) {
    std::unique_ptr<LiveSession> s(new LiveSession());
    Impl& m = *s->m;
    m.options = o;
    auto reader = openRunWaiting(o.openRun);
    if (!reader) return reader.error();
    m.reader = std::move(reader.value());
    m.replayTarget = m.reader->snapshots();
    m.replayLastStep = m.reader->steps().empty() ? 0 : m.reader->steps().back();
    m.networkFromRun();
    logCoverage(m.network);
    TS_LOG_INFO("run %s: %lld snapshots (steps %lld..%lld), %s", o.openRun.c_str(), (long long)m.reader->snapshots(),
                (long long)(m.reader->steps().empty() ? 0 : m.reader->steps().front()), (long long)m.replayLastStep,
                m.reader->closed() ? "closed" : o.followRun ? "still being written: following it" : "still being written");
    // Every snapshot stays in the timeline; per-neuron arrays beyond the memory budget are read back on demand.
    m.timeline.setCapacity(size_t(1) << 24);
    m.timeline.setNeuronBudget(size_t(Impl::neuronBudget()));
    Impl* impl = &m;
    m.timeline.setNeuronLoader([impl](int64_t step) -> std::shared_ptr<const SnapshotSummary> {
        std::lock_guard lock(impl->readerMutex);
        const auto& steps = impl->reader->steps();
        auto it = std::lower_bound(steps.begin(), steps.end(), step);
        if (it == steps.end() || *it != step) return nullptr;
        bool healthy = true;
        std::string bad;
        auto sum = std::make_shared<SnapshotSummary>(impl->readSummary(int64_t(it - steps.begin()), {}, healthy, bad));
        return sum;
    });
    return s;
}

Expected<runs::Series> LiveSession::neuronSeries(const std::string& layer, int64_t neuron, int maxPoints) const {
    if (!m->reader) return makeError(ErrorKind::Usage, "not a recorded run");
    std::lock_guard lock(m->readerMutex);
    const auto& layers = m->reader->layers();
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].name == layer) return m->reader->series(int(i), neuron, runs::Kind::Activation, 0, maxPoints);
    return makeError(ErrorKind::Usage, "the run has no layer '" + layer + "'");
}

Status LiveSession::withRunReader(const std::function<Status(const runs::RunReader&)>& fn) const {
    if (!m->reader) return makeError(ErrorKind::Usage, "not a recorded run");
    std::lock_guard lock(m->readerMutex);
    return fn(*m->reader);
}

bool LiveSession::recordedRun() const {
    return m->reader != nullptr;
}

Expected<std::unique_ptr<LiveSession>> LiveSession::create(const SessionOptions& o) {
    if (!o.openRun.empty()) return createFromRun(o);
    std::unique_ptr<LiveSession> s(new LiveSession());
    Impl& m = *s->m;
    m.options = o;
    auto device = capture::chooseTrainingDevice(o.device);
    if (!device) return device.error(); // before anything loads; auto's CPU note comes once training can start
    torch::manual_seed(int64_t(o.seed));
    capture::DataOptions dopt;
    dopt.seed = o.seed;
    dopt.limit = o.limit;
    if (o.input.given()) {
        auto io = inputOptions(o.input, o.batchSize, o.seed);
        if (!io) return io.error();
        auto inputs = capture::loadInputs(*io);
        if (!inputs) return inputs.error();
        m.data.train = inputs.value();
        m.data.validation = std::move(inputs.value());
    } else {
        auto data = capture::loadDataset(o.data, dopt);
        if (!data) return data.error();
        m.data = std::move(data.value());
    }
    if (m.data.train.size() == 0)
        return makeError(ErrorKind::Usage, "dataset '" + o.data + "' has no training samples");
    // Unlabelled inputs have no class count; built-in models then get 10 outputs.
    auto tLoad = std::chrono::steady_clock::now();
    auto model = capture::loadModel(o.model, m.data.train.sampleShape,
                                    m.data.train.numClasses > 0 ? m.data.train.numClasses : 10);
    if (!model) return model.error();
    m.model = std::move(model.value());
    TS_LOG_DEBUG("model load and capture graph: %.2f s",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - tLoad).count());
    tLoad = std::chrono::steady_clock::now();
    auto net =
        capture::describeNetwork(*m.model, m.data.train.sampleShape, m.data.train.inputs.scalar_type());
    TS_LOG_DEBUG("network description (probe forward): %.2f s",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - tLoad).count());
    if (!net)
        return makeError(net.error().kind, net.error().message +
                                               (o.input.given() || !o.inspectOnly
                                                    ? ""
                                                    : "; give inputs of the shape it expects with --input FILE|DIR or "
                                                      "--input-shape C,H,W"));
    m.network = std::move(net.value());
    logCoverage(m.network);
    auto reducer = stats::makeReducer(stats::Backend::Auto, device->cuda ? device->index : -1);
    if (!reducer) return reducer.error();
    m.reducer = std::move(reducer.value());
    // The input layer's neurons show statistics of a fixed probe of the training inputs.
    if (!m.network.nodes.empty()) {
        torch::Tensor probe = m.data.train.inputs.slice(0, 0, std::min<int64_t>(256, m.data.train.size()));
        stats::NeuronStats ns;
        stats::LayerStats ls;
        if (m.reduceMatrix(probe.reshape({probe.size(0), -1}), "inputs", ns, ls)) {
            LayerSummary& in = m.input;
            in.name = m.network.nodes[0].name;
            const float* mean = ns.stat(stats::Statistic::Mean);
            const float* var = ns.stat(stats::Statistic::Variance);
            const float* zero = ns.stat(stats::Statistic::ZeroFraction);
            in.meanActivation.assign(mean, mean + ns.neurons);
            in.zeroFraction.assign(zero, zero + ns.neurons);
            for (int64_t k = 0; k < ns.neurons; ++k)
                in.activationStd.push_back(std::sqrt(std::max(var[k], 0.0f)));
            in.activations = Impl::toUi(ls.histogram);
        }
    }

    capture::TrainOptions topt;
    auto opt = capture::parseOptimizer(o.optimizer);
    if (!opt) return makeError(ErrorKind::Usage, "unknown --optimizer '" + o.optimizer + "' (sgd or adam)");
    topt.optimizer = *opt;
    topt.device = capture::torchDevice(*device);
    topt.learningRate = o.learningRate;
    // A batch larger than the training set is the whole set: the trainer never draws more than there is, and
    // the Training panel shows the batch the statistics are over (4 for `view --input` of four images).
    topt.batchSize = std::min<int64_t>(o.batchSize, m.data.train.size());
    m.options.batchSize = topt.batchSize;
    // A batch whose activations, gradients and LibTorch's saved tensors (about 3 x 4 bytes per neuron and
    // sample) would not fit in kBatchBytes is made smaller, with one line: `view resnet50.pt --input-shape
    // 3,224,224` at the default batch of 256 would otherwise ask for over 100 GB.
    {
        constexpr double kBatchBytes = 1.5 * double(1ull << 30);
        const double perSample = 12.0 * double(std::max<int64_t>(m.network.totalNeurons(), 1));
        const auto fit = std::max<int64_t>(1, int64_t(kBatchBytes / perSample));
        // Only a batch that would really be that large: a run over 3 images never has more than 3 in a batch.
        if (std::min(topt.batchSize, m.data.train.size()) > fit) {
            auto size = [](double bytes) {
                char t[32];
                if (bytes < 1e9) std::snprintf(t, sizeof t, "%.0f MB", std::max(bytes / 1e6, 1.0));
                else std::snprintf(t, sizeof t, "%.1f GB", bytes / 1e9);
                return std::string(t);
            };
            TS_LOG_WARN("batch of %lld reduced to %lld: %lld neurons per sample need about %s per sample for "
                        "activations and gradients, and a batch is kept within %s (give a smaller --batch to "
                        "choose yourself)",
                        (long long)topt.batchSize, (long long)fit, (long long)m.network.totalNeurons(),
                        size(perSample).c_str(), size(kBatchBytes).c_str());
            topt.batchSize = fit;
            m.options.batchSize = fit;
        }
    }
    topt.maxSteps = o.steps;
    topt.captureEvery = o.captureEvery;
    topt.evalEvery = o.evalEvery;
    topt.seed = o.seed;
    auto objective = capture::parseObjective(o.objective);
    if (!objective)
        return makeError(ErrorKind::Usage,
                         "unknown --objective '" + o.objective + "' (auto, cross-entropy, predicted-class, mean-square)");
    topt.objective = *objective;
    if (o.inspectOnly) {
        // One captured step whose update cannot change the weights: SGD without momentum at a learning rate
        // far below float resolution; the snapshot holds the weights as they were before it anyway.
        topt.optimizer = capture::OptimizerKind::Sgd;
        topt.momentum = 0.0;
        topt.learningRate = 1e-30;
        topt.maxSteps = 1;
        topt.captureEvery = 1;
        topt.evalEvery = 1;
        // Validated on as many samples as the probe holds: 512 samples of a large model (ViT-L: 60 GFLOPs
        // each) took minutes of a one-pass inspection.
        topt.evalBatch = topt.batchSize;
    }
    if (!device->note.empty()) TS_LOG_INFO("%s", device->note.c_str());
    auto trainer = capture::Trainer::create(*m.model, m.data, topt);
    if (!trainer) return trainer.error();
    m.trainer = std::move(trainer.value());
    Impl* impl = &m;
    m.trainer->setStepCallback([impl](const capture::StepInfo& info) { impl->onStep(info); });
    m.trainer->setSnapshotConsumer([impl](capture::Snapshot& snap) { impl->consume(snap); });
    m.wantParameters.store(o.publishParameters);
    if (!o.recordRun.empty())
        if (auto st = m.beginRecording(o.recordRun); !st) return st.error();
    return s;
}

const capture::Network& LiveSession::network() const {
    return m->network;
}
std::string LiveSession::trainingDevice() const {
    return m->model ? m->model->device().str() : std::string();
}

const std::string& LiveSession::dataName() const {
    if (m->reader) return m->options.openRun;
    return m->data.train.name;
}
int64_t LiveSession::numClasses() const {
    return m->data.train.numClasses;
}
Status LiveSession::start(bool paused) {
    if (m->reader) {
        if (!m->follower.joinable()) {
            Impl* impl = m.get();
            const bool followNew = m->options.followRun;
            m->follower = std::thread([impl, followNew] { impl->follow(followNew); });
        }
        return Status::ok();
    }
    if (!m->options.inspectOnly) return m->trainer->start(paused);
    if (m->inspected) return Status::ok(); // inspection runs once (runSession may start it early)
    auto step = m->trainer->step();
    if (!step) return step.error();
    m->objective = step->objective;
    TS_LOG_INFO("backward pass objective: %s", step->objective.c_str());
    m->inspected = true;
    return Status::ok();
}
void LiveSession::pause() {
    if (m->trainer) m->trainer->pause();
}
void LiveSession::resume() {
    if (m->trainer) m->trainer->resume();
}
void LiveSession::requestStep() {
    if (m->trainer) m->trainer->requestStep(1);
}
void LiveSession::setLearningRate(double lr) {
    if (m->trainer) m->trainer->setLearningRate(lr);
}
void LiveSession::stop() {
    if (m->trainer) m->trainer->stop();
}
Timeline& LiveSession::timeline() {
    return m->timeline;
}

bool LiveSession::finished() const {
    if (m->reader) return m->replayDone.load();
    if (m->options.inspectOnly) return m->inspected;
    auto st = m->trainer->state();
    return st == capture::TrainerState::Finished || st == capture::TrainerState::Stopped ||
           st == capture::TrainerState::Failed;
}

Status LiveSession::result() const {
    if (m->reader) {
        std::lock_guard lock(m->mutex);
        if (!m->replayError.empty()) return makeError(ErrorKind::Usage, m->replayError);
        return Status::ok();
    }
    return m->trainer->result();
}

void LiveSession::waitUntilFinished() {
    if (m->reader) {
        if (m->follower.joinable() && (!m->options.followRun || m->replayClosed.load())) m->follower.join();
        return;
    }
    if (!m->options.inspectOnly) (void)m->trainer->wait();
}

Curves LiveSession::curves() const {
    std::lock_guard lock(m->mutex);
    return m->curves;
}

void LiveSession::wantExplanation(std::optional<ExplainRequest> request) {
    {
        std::lock_guard lock(m->mutex);
        if (m->explainWanted == request) return;
        m->explainWanted = request;
    }
    if (!request || !m->modelIdle()) return;
    auto e = m->computeExplanation(*request, m->inspectOnlyStep());
    std::lock_guard lock(m->mutex);
    if (m->explainWanted == request) m->explanation = std::move(e);
}

void LiveSession::wantLandscape(std::optional<LandscapeRequest> request) {
    bool changed = false, stale = false;
    {
        std::lock_guard lock(m->mutex);
        changed = m->landscapeWanted != request;
        if (changed) {
            m->landscapeWanted = request;
            m->landscapeCancel = true; // a surface still computing for the old request is not wanted
        }
    }
    if (!request || !m->modelIdle() || m->landscapeBusy.load()) return;
    const int64_t step = m->inspectOnlyStep();
    {
        std::lock_guard lock(m->mutex);
        // Training ended after the last surface was started: one more, at the final weights.
        stale = m->liveLandscape && m->liveLandscape->step != step;
    }
    if (!changed && !stale) return;
    // A new request is answered at once (`view`'s first picture); the last surface after training ended is
    // computed on the landscape thread when a batched path fits (the trainer thread has returned for good, so
    // this thread may start it), so a window does not stop while it is computed.
    auto l = m->computeLandscape(*request, step, !changed, true);
    if (!l) return;
    std::lock_guard lock(m->mutex);
    if (m->landscapeWanted == request) m->liveLandscape = std::move(l);
}

int LiveSession::landscapesBesideTraining() const {
    return m->landscapesBeside.load();
}

bool LiveSession::landscapeComputing() const {
    return m->landscapeBusy.load();
}

void LiveSession::settleLandscape() {
    while (m->landscapeBusy.load())
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // Headless: the last frame shows the surface at the final weights, computed here if it is not there yet.
    std::optional<LandscapeRequest> want;
    bool stale = false;
    const int64_t step = m->inspectOnlyStep();
    {
        std::lock_guard lock(m->mutex);
        want = m->landscapeWanted;
        stale = m->liveLandscape && m->liveLandscape->step != step;
    }
    if (!want || !stale || !m->modelIdle()) return;
    auto l = m->computeLandscape(*want, step, false, true);
    std::lock_guard lock(m->mutex);
    if (m->landscapeWanted == want) m->liveLandscape = std::move(l);
}

std::shared_ptr<const LiveSession::LiveLandscape> LiveSession::latestLandscape() const {
    std::lock_guard lock(m->mutex);
    return m->liveLandscape;
}

bool LiveSession::inspectOnly() const {
    return m->options.inspectOnly;
}

std::shared_ptr<const LiveSession::Explanation> LiveSession::latestExplanation() const {
    std::lock_guard lock(m->mutex);
    return m->explanation;
}

int64_t LiveSession::explainSamples() const {
    return m->reader ? 0 : m->explainData().size();
}

ui::TrainingView LiveSession::trainingView() const {
    ui::TrainingView v;
    v.available = true;
    if (m->reader) {
        v.finished = m->replayDone.load();
        v.recorded = true;
        v.step = m->replayStep.load();
        v.learningRate = NAN;
        if (auto latest = m->timeline.latest()) v.learningRate = float(latest->learningRate);
        v.totalSteps = m->options.followRun ? std::max(m->replayStep.load(), m->replayLastStep) : m->replayLastStep;
        v.batchSize = int(m->replayRows.load());
        v.model = m->network.modelName;
        v.data = "run " + m->options.openRun;
        v.status = "recorded run: " + std::to_string(m->replayLoaded.load()) + " of " +
                   std::to_string(m->replayCommitted.load()) + " snapshots read" +
                   (m->replayClosed.load() ? " (closed)" : m->options.followRun ? " (following new snapshots)" : "");
        std::lock_guard lock(m->mutex);
        if (!m->replayError.empty()) v.status += "; " + m->replayError;
        v.trainLoss = m->curves.trainLoss;
        v.trainAcc = m->curves.trainAcc;
        v.valLoss = m->curves.valLoss;
        v.valAcc = m->curves.valAcc;
        return v;
    }
    auto st = m->trainer->state();
    v.paused = st == capture::TrainerState::Paused || st == capture::TrainerState::Idle;
    v.finished = finished();
    auto latest = m->trainer->latest();
    v.step = latest.step;
    v.totalSteps = m->trainer->plannedSteps();
    v.learningRate = float(latest.step ? latest.learningRate : m->options.learningRate);
    v.batchSize = int(m->options.batchSize);
    v.model = m->network.modelName;
    v.data = m->data.train.name;
    v.status = m->options.inspectOnly ? "inspection: one forward and backward pass, weights unchanged; objective: " +
                                            m->objective
                                      : capture::trainerStateName(st);
    if (st == capture::TrainerState::Failed) v.status += ": " + m->trainer->result().message();
    std::lock_guard lock(m->mutex);
    v.trainLoss = m->curves.trainLoss;
    v.trainAcc = m->curves.trainAcc;
    v.valLoss = m->curves.valLoss;
    v.valAcc = m->curves.valAcc;
    return v;
}

std::vector<ui::HealthAlert> LiveSession::alerts() const {
    std::lock_guard lock(m->mutex);
    return m->alerts;
}

void LiveSession::wantParameters(bool on) {
    m->wantParameters.store(on);
}

std::shared_ptr<const LiveSession::ParameterSet> LiveSession::latestParameters() const {
    std::lock_guard lock(m->mutex);
    return m->parameters;
}

std::vector<scene::ConvWeights> LiveSession::latestConvWeights() const {
    std::lock_guard lock(m->mutex);
    return m->conv;
}

std::vector<scene::DenseWeights> LiveSession::latestDenseWeights(size_t maxElements) const {
    std::lock_guard lock(m->mutex);
    std::vector<scene::DenseWeights> out;
    for (const auto& d : m->dense)
        if (d.w.size() <= maxElements) out.push_back(d);
    return out;
}

} // namespace ts::app
