// LiveSession: the one app translation unit that includes LibTorch.
#include "app/live_session.hpp"

#include "app/cli.hpp"

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "engine/capture/dataset.hpp"
#include "engine/capture/inputs.hpp"
#include "engine/capture/structure.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/core/log.hpp"
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

Expected<std::vector<float>> parseFloats(const std::string& flag, const std::string& text) {
    std::vector<float> out;
    for (const std::string& item : splitCommas(text)) {
        char* stop = nullptr;
        float v = std::strtof(item.c_str(), &stop);
        if (item.empty() || *stop || !std::isfinite(v))
            return makeError(ErrorKind::Usage, "--" + flag + " expects numbers separated by commas, got '" + text + "'");
        out.push_back(v);
    }
    return out;
}

Expected<int64_t> parseCount(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
    char* stop = nullptr;
    long long v = std::strtoll(text.c_str(), &stop, 10);
    if (text.empty() || *stop || v < lo || v > hi)
        return makeError(ErrorKind::Usage, "--" + flag + " expects a whole number in " + std::to_string(lo) + ".." +
                                               std::to_string(hi) + ", got '" + text + "'");
    return int64_t(v);
}

// --input / --input-shape and the image options as loader options.
Expected<capture::InputOptions> inputOptions(const InputSpec& in, int64_t count, uint64_t seed) {
    capture::InputOptions o;
    if (!in.preset.empty()) {
        if (in.preset != "imagenet")
            return makeError(ErrorKind::Usage, "unknown --preset '" + in.preset + "' (imagenet)");
        o = capture::imagenetPreset();
    }
    o.path = in.path;
    o.count = count;
    o.seed = seed;
    if (!in.shape.empty()) {
        auto shape = capture::parseShape(in.shape);
        if (!shape) return shape.error();
        o.shape = *shape;
    }
    for (auto [flag, text, dst, lo, hi] : {std::tuple{"resize", in.resize, &o.resize, 1L, 16384L},
                                          std::tuple{"crop", in.crop, &o.crop, 1L, 16384L},
                                          std::tuple{"channels", in.channels, &o.channels, 1L, 3L}}) {
        if (text.empty()) continue;
        auto v = parseCount(flag, text, lo, hi);
        if (!v) return v.error();
        *dst = *v;
    }
    if (o.channels == 2) return makeError(ErrorKind::Usage, "--channels is 1 (grey) or 3 (RGB)");
    for (auto [flag, text, dst] : {std::tuple{"mean", in.mean, &o.mean}, std::tuple{"std", in.std, &o.std}}) {
        if (text.empty()) continue;
        auto v = parseFloats(flag, text);
        if (!v) return v.error();
        *dst = *v;
    }
    return o;
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
        auto r = reducer->reduce(stats::TensorView::matrix(x.data_ptr<float>(), rows, cols, what), ns, ro);
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
            auto h = reducer->reduce(stats::TensorView::matrix(s.data_ptr<float>(), 1, s.numel(), what), ignored, ho);
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
        for (size_t li = 0; li < snap.layers.size(); ++li) {
            auto& layer = snap.layers[li];
            LayerSummary ls;
            ls.name = layer.name;
            stats::NeuronStats& ns = scratchStats[0]; // reused: no fresh pages per layer
            stats::LayerStats st;
            if (reduceMatrix(layer.activation, layer.name.c_str(), ns, st)) {
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
            }
            stats::NeuronStats& gs = scratchStats[1];
            stats::LayerStats gst;
            if (reduceMatrix(layer.gradient, (layer.name + " gradients").c_str(), gs, gst)) {
                const float* ma = gs.stat(stats::Statistic::MeanAbs);
                ls.meanAbsGradient.assign(ma, ma + gs.neurons);
                ls.gradients = toUi(gst.histogram);
                ls.gradientNorm = gst.l2Norm;
                ls.nonFinite += gst.nanCount + gst.infCount;
            }
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
                break;
            }
            sum.layers.push_back(std::move(ls));
        }
        int64_t step = snap.step;
        bool healthy = snap.health.ok();
        // Health heuristics, relative to each layer's first measurement (absolute thresholds do not transfer
        // between models): exploding when the activation-gradient norm grew more than 1000x; vanishing when
        // it fell below 1e-4x while the loss is still above 1% of its starting value (near-zero loss makes
        // small gradients expected).
        std::vector<std::pair<std::string, float>> deadLayers, exploding, vanishing;
        if (!baselineLoss && std::isfinite(snap.loss) && snap.loss > 0) baselineLoss = snap.loss;
        for (const auto& l : sum.layers) {
            int node = network.find(l.name);
            bool act = node >= 0 && layerIsRelu(network.nodes[size_t(node)].type);
            if (act && l.deadFraction > 0.5f) deadLayers.push_back({l.name, l.deadFraction});
            if (l.meanAbsGradient.empty() || !std::isfinite(l.gradientNorm)) continue;
            auto [it, inserted] = baselineGradNorm.emplace(l.name, l.gradientNorm);
            double base = it->second;
            if (inserted || base <= 0) continue;
            double ratio = l.gradientNorm / base;
            if (ratio > 1000.0) exploding.push_back({l.name, float(ratio)});
            if (ratio < 1e-4 && baselineLoss && snap.loss > 0.01 * *baselineLoss)
                vanishing.push_back({l.name, float(ratio)});
        }
        if (!input.meanActivation.empty()) sum.layers.insert(sum.layers.begin(), input);
        timeline.push(std::move(sum));
        std::lock_guard lock(mutex);
        dense.swap(this->dense);
        if (!healthy) {
            std::string layer = !snap.health.firstBadActivation.empty() ? snap.health.firstBadActivation
                                : !snap.health.firstBadGradient.empty() ? snap.health.firstBadGradient
                                                                        : "loss";
            addAlert(ui::Severity::Error, "nonfinite", "NaN/Inf: " + snap.health.describe(), layer, step);
        }
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
    }
};

LiveSession::LiveSession() : m(std::make_unique<Impl>()) {}
LiveSession::~LiveSession() {
    if (m->trainer) m->trainer->stop();
}

Expected<std::unique_ptr<LiveSession>> LiveSession::create(const SessionOptions& o) {
    std::unique_ptr<LiveSession> s(new LiveSession());
    Impl& m = *s->m;
    m.options = o;
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
    auto net = capture::describeNetwork(*m.model, m.data.train.sampleShape);
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
    auto reducer = stats::makeReducer(stats::Backend::Auto);
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
    topt.learningRate = o.learningRate;
    topt.batchSize = o.batchSize;
    // A batch whose activations, gradients and LibTorch's saved tensors (about 3 x 4 bytes per neuron and
    // sample) would not fit in kBatchBytes is made smaller, with one line: `view resnet50.pt --input-shape
    // 3,224,224` at the default batch of 256 would otherwise ask for over 100 GB.
    {
        constexpr double kBatchBytes = 1.5 * double(1ull << 30);
        const double perSample = 12.0 * double(std::max<int64_t>(m.network.totalNeurons(), 1));
        const auto fit = std::max<int64_t>(1, int64_t(kBatchBytes / perSample));
        if (topt.batchSize > fit) {
            TS_LOG_WARN("batch of %lld reduced to %lld: %lld neurons per sample need about %.1f GB per sample for "
                        "activations and gradients (give a smaller --batch to choose yourself)",
                        (long long)topt.batchSize, (long long)fit, (long long)m.network.totalNeurons(),
                        perSample / 1e9);
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
    }
    auto trainer = capture::Trainer::create(*m.model, m.data, topt);
    if (!trainer) return trainer.error();
    m.trainer = std::move(trainer.value());
    Impl* impl = &m;
    m.trainer->setStepCallback([impl](const capture::StepInfo& info) { impl->onStep(info); });
    m.trainer->setSnapshotConsumer([impl](capture::Snapshot& snap) { impl->consume(snap); });
    return s;
}

const capture::Network& LiveSession::network() const {
    return m->network;
}
const std::string& LiveSession::dataName() const {
    return m->data.train.name;
}
int64_t LiveSession::numClasses() const {
    return m->data.train.numClasses;
}
Status LiveSession::start(bool paused) {
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
    m->trainer->pause();
}
void LiveSession::resume() {
    m->trainer->resume();
}
void LiveSession::requestStep() {
    m->trainer->requestStep(1);
}
void LiveSession::setLearningRate(double lr) {
    m->trainer->setLearningRate(lr);
}
void LiveSession::stop() {
    m->trainer->stop();
}
Timeline& LiveSession::timeline() {
    return m->timeline;
}

bool LiveSession::finished() const {
    if (m->options.inspectOnly) return m->inspected;
    auto st = m->trainer->state();
    return st == capture::TrainerState::Finished || st == capture::TrainerState::Stopped ||
           st == capture::TrainerState::Failed;
}

Status LiveSession::result() const {
    return m->trainer->result();
}

void LiveSession::waitUntilFinished() {
    if (!m->options.inspectOnly) (void)m->trainer->wait();
}

Curves LiveSession::curves() const {
    std::lock_guard lock(m->mutex);
    return m->curves;
}

ui::TrainingView LiveSession::trainingView() const {
    ui::TrainingView v;
    v.available = true;
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

std::vector<scene::DenseWeights> LiveSession::latestDenseWeights(size_t maxElements) const {
    std::lock_guard lock(m->mutex);
    std::vector<scene::DenseWeights> out;
    for (const auto& d : m->dense)
        if (d.w.size() <= maxElements) out.push_back(d);
    return out;
}

} // namespace ts::app
