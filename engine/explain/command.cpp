#include "engine/explain/command.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "engine/capture/checkpoint_weights.hpp"
#include "engine/capture/dataset.hpp"
#include "engine/capture/inputs.hpp"
#include "engine/capture/model.hpp"
#include "engine/capture/network.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/core/log.hpp"
#include "engine/core/text_file.hpp"
#include "engine/explain/attribution.hpp"
#include "engine/explain/detail.hpp"
#include "engine/explain/feature_sheet.hpp"
#include "engine/explain/features.hpp"
#include "engine/explain/heatmap.hpp"
#include "engine/explain/neurogram.hpp"
#include "engine/explain/projection.hpp"
#include "engine/explain/scatter.hpp"
#include "engine/runs/checkpoint.hpp"
#include "engine/runs/run_store.hpp"

namespace ts::explain {

namespace {

using detail::usage;

struct Sample {
    torch::Tensor input; // [1, ...]
    int64_t label = -1;
    std::string what;
    std::vector<std::string> classNames;
    int64_t numClasses = 0;
    capture::DataSplit data; // when --data is given
};

// A labelled data set (--data) with its class names: explain's samples, what --train-steps trains on.
Expected<Sample> loadDataSet(const std::string& spec, uint64_t seed, int64_t limit) {
    capture::DataOptions o;
    o.seed = seed;
    o.limit = limit;
    auto d = capture::loadDataset(spec, o);
    if (!d) return d.error();
    Sample s;
    s.data = std::move(*d);
    s.numClasses = s.data.train.numClasses;
    s.classNames = s.data.train.classNames;
    return s;
}

// --input and its image options: the first `count` samples of an image, folder, .npy or .pt file.
Expected<capture::Dataset> loadInputFile(capture::InputOptions o, int64_t count) {
    o.count = count;
    return capture::loadInputs(o);
}

Expected<Sample> loadSample(const ExplainArgs& a) {
    Sample s;
    if (a.index < 0) return usage("--index must be 0 or more");
    if (!a.data.empty()) {
        auto d = loadDataSet(a.data, a.seed, a.limit);
        if (!d) return d.error();
        s = std::move(*d);
    }
    if (!a.input.path.empty()) {
        auto in = loadInputFile(a.input, a.index + 1);
        if (!in) return in.error();
        if (a.index >= in->size())
            return usage("--index " + std::to_string(a.index) + " is out of range: " + a.input.path + " holds " +
                         std::to_string(in->size()) + " samples");
        s.input = in->inputs.narrow(0, a.index, 1).clone();
        s.what = a.input.path + (in->size() > 1 || a.index > 0 ? " #" + std::to_string(a.index) : "");
        return s;
    }
    if (a.data.empty()) return usage("give the input to explain: --input FILE, or --data SET [--index I]");
    const capture::Dataset& v = s.data.validation.size() > 0 ? s.data.validation : s.data.train;
    if (a.index >= v.size())
        return usage("--index " + std::to_string(a.index) + " is out of range: " + a.data + " has " +
                     std::to_string(v.size()) + " validation samples");
    s.input = v.inputs.narrow(0, a.index, 1).clone();
    s.label = v.labels[a.index].item<int64_t>();
    s.what = a.data + " validation #" + std::to_string(a.index);
    return s;
}

// Trains `steps` steps on the sample's data set (none loaded: an error naming --data); "" when steps is 0.
Expected<std::string> trainFirst(capture::Model& model, const Sample& s, int64_t steps, uint64_t seed) {
    if (steps <= 0) return std::string();
    if (s.data.train.size() == 0) return usage("--train-steps needs --data (the set to train on)");
    capture::TrainOptions o;
    o.maxSteps = steps;
    o.seed = seed;
    auto trainer = capture::Trainer::create(model, s.data, o);
    if (!trainer) return trainer.error();
    capture::StepInfo last;
    for (int64_t i = 0; i < steps; ++i) {
        auto st = (*trainer)->step();
        if (!st) return st.error();
        last = *st;
    }
    auto val = capture::evaluate(model, s.data.validation.inputs, s.data.validation.labels);
    char line[160];
    std::snprintf(line, sizeof line, "trained %lld steps: loss %.3f, validation accuracy %.1f%%",
                  static_cast<long long>(steps), last.loss, val ? 100.0 * val->accuracy : NAN);
    TS_LOG_INFO("%s", line);
    return std::string(line);
}

std::string className(const Sample& s, int64_t c) {
    if (c >= 0 && size_t(c) < s.classNames.size()) return s.classNames[size_t(c)];
    return std::to_string(c);
}

std::string methodTitle(const ExplainArgs& a) {
    char buf[160];
    if (a.method == "lrp") std::snprintf(buf, sizeof buf, "LRP, epsilon rule (epsilon %g)", a.epsilon);
    else if (a.method == "lrp-ab")
        std::snprintf(buf, sizeof buf, "LRP, alpha-beta rule (alpha %g, beta %g)", a.alpha, a.beta);
    else if (a.method == "ig") std::snprintf(buf, sizeof buf, "Integrated gradients (%d steps from zero)", a.steps);
    else if (a.method == "smoothgrad")
        std::snprintf(buf, sizeof buf, "SmoothGrad (%d samples, noise %g)", a.samples, a.noise);
    else if (a.method == "gradxinput") std::snprintf(buf, sizeof buf, "Gradient x input");
    else std::snprintf(buf, sizeof buf, "Gradient (sensitivity)");
    return buf;
}

std::string mapLabel(Method m) {
    switch (m) {
    case Method::Gradient: return "|gradient|";
    case Method::SmoothGrad: return "|SmoothGrad|";
    case Method::GradTimesInput: return "gradient x input";
    case Method::IntegratedGradients: return "attribution";
    case Method::LrpEpsilon:
    case Method::LrpAlphaBeta: return "relevance";
    }
    return "map";
}

Status writeJson(const std::string& path, const nlohmann::json& j) {
    return writeTextFile(path, j.dump(2) + "\n");
}

nlohmann::json report(const ExplainArgs& a, const Sample& s, const Attribution& r, const std::string& trained,
                      double seconds) {
    nlohmann::json j;
    j["model"] = a.model;
    j["input"] = s.what;
    j["input_shape"] = s.input.sizes().vec();
    if (s.label >= 0) j["label"] = {{"index", s.label}, {"name", className(s, s.label)}};
    j["method"] = a.method;
    j["explained"] = r.explained;
    j["target"] = {{"index", r.target}, {"name", className(s, r.target)}};
    j["predicted"] = {{"index", r.predicted}, {"name", className(s, r.predicted)}};
    j["score"] = r.score;
    nlohmann::json top = nlohmann::json::array();
    auto order = r.logits.argsort(0, true);
    for (int64_t k = 0; k < std::min<int64_t>(5, order.size(0)); ++k) {
        const int64_t c = order[k].item<int64_t>();
        top.push_back({{"index", c}, {"name", className(s, c)}, {"logit", r.logits[c].item<double>()}});
    }
    j["top_classes"] = top;
    const double mapSum = r.map.sum().item<double>();
    j["map_sum"] = mapSum;
    j["map_abs_max"] = r.map.abs().max().item<double>();
    if (a.method == "ig") {
        j["baseline_score"] = r.baselineScore;
        j["completeness"] = {{"sum_of_attributions", mapSum},
                             {"score_minus_baseline", r.score - r.baselineScore},
                             {"steps", a.steps}};
    }
    if (a.method == "smoothgrad") j["smoothgrad"] = {{"samples", a.samples}, {"noise", a.noise}};
    if (a.method == "lrp" || a.method == "lrp-ab") {
        j["lrp"] = {{"epsilon", a.epsilon}};
        if (a.method == "lrp-ab") j["lrp"]["alpha"] = a.alpha, j["lrp"]["beta"] = a.beta;
        nlohmann::json layers = nlohmann::json::array();
        for (const auto& l : r.layers)
            layers.push_back({{"name", l.name}, {"type", l.type}, {"rule", l.rule}, {"relevance", l.sum}});
        j["lrp"]["layers"] = layers;
        j["lrp"]["input_relevance"] = mapSum;
    }
    if (!trained.empty()) j["training"] = trained;
    j["notes"] = r.notes;
    j["seconds"] = seconds;
    return j;
}

} // namespace

Expected<ExplainOutcome> runExplain(const ExplainArgs& a) {
    const auto t0 = std::chrono::steady_clock::now();
    auto method = parseMethod(a.method);
    if (!method)
        return usage("unknown --method '" + a.method + "' (gradient, gradxinput, smoothgrad, ig, lrp, lrp-ab)");
    if (a.out.empty()) return usage("--out is empty: give the PNG file to write");
    auto sample = loadSample(a);
    if (!sample) return sample.error();
    torch::manual_seed(a.seed);
    std::vector<int64_t> shape(sample->input.sizes().begin() + 1, sample->input.sizes().end());
    auto model = capture::loadModel(a.model, shape, sample->numClasses > 0 ? sample->numClasses : a.classes);
    if (!model) return model.error();
    auto trained = trainFirst(**model, *sample, a.trainSteps, a.seed);
    if (!trained) return trained.error();

    AttributionOptions o;
    o.method = *method;
    o.target = a.target;
    o.smoothSamples = a.samples;
    o.smoothNoise = a.noise;
    o.seed = a.seed;
    o.igSteps = a.steps;
    o.epsilon = a.epsilon;
    o.alpha = a.alpha;
    o.beta = a.beta;
    o.keepLayerMaps = !a.layersPng.empty();
    if (o.keepLayerMaps && *method != Method::LrpEpsilon && *method != Method::LrpAlphaBeta)
        return usage("--layers-out shows LRP's relevance per layer: use --method lrp or lrp-ab");
    auto r = attribute(**model, sample->input, o);
    if (!r) return r.error();
    if (!torch::isfinite(r->map).all().item<bool>())
        return makeError(ErrorKind::Failed, "the " + a.method + " map of " + sample->what +
                                                " has NaN/Inf values (the model's numbers are not finite there)");

    HeatmapSource src;
    src.shape = shape;
    src.signedMap = methodIsSigned(*method);
    src.title = methodTitle(a) + "  |  class " + std::to_string(r->target) + " " + className(*sample, r->target);
    char logit[64];
    std::snprintf(logit, sizeof logit, ", %s %.4g", r->explained == "output" ? "output" : "logit", r->score);
    src.title += logit;
    src.subtitle = sample->what + (sample->label >= 0 ? " (label " + className(*sample, sample->label) + ")" : "") +
                   "  |  predicted " + className(*sample, r->predicted) + "  |  " +
                   std::filesystem::path(a.model).filename().string();
    src.mapLabel = mapLabel(*method);
    const torch::Tensor in = sample->input.contiguous(), map = r->map.contiguous();
    src.input.assign(in.data_ptr<float>(), in.data_ptr<float>() + in.numel());
    src.attribution.assign(map.data_ptr<float>(), map.data_ptr<float>() + map.numel());
    ExplainOutcome out;
    out.png = a.out;
    out.json = a.json.empty() ? std::filesystem::path(a.out).replace_extension(".json").string() : a.json;
    if (auto st = writePng(out.png, renderExplanation(src)); !st) return st.error();
    if (!a.layersPng.empty()) {
        std::vector<LayerMap> maps;
        for (const auto& l : r->layers) {
            if (!l.relevance.defined() || l.rule == "pass" || l.rule.rfind("folded", 0) == 0 || l.relevance.dim() < 2)
                continue; // a folded layer is drawn once, as its BatchNorm
            const torch::Tensor t = l.relevance[0].to(torch::kFloat32).contiguous();
            maps.push_back({l.name, t.sizes().vec(), std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()), l.sum});
        }
        if (auto st = writePng(a.layersPng, renderLayerMaps(maps, src.title)); !st) return st.error();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto st = writeJson(out.json, report(a, *sample, *r, *trained, seconds)); !st) return st.error();
    char line[512];
    std::snprintf(line, sizeof line, "%s of class %lld (%s, logit %.3f; predicted %s) for %s: wrote %s and %s",
                  a.method.c_str(), static_cast<long long>(r->target), className(*sample, r->target).c_str(),
                  r->score, className(*sample, r->predicted).c_str(), sample->what.c_str(), out.png.c_str(),
                  out.json.c_str());
    out.summary = line;
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// project

namespace {

// The layer's activations for the first `count` samples, one flattened row per sample (evaluation mode).
Expected<Matrix> layerActivations(capture::Model& model, const torch::Tensor& inputs, const std::string& layer) {
    torch::NoGradGuard noGrad;
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    Matrix m;
    std::vector<float> values;
    try {
        for (int64_t b = 0; b < inputs.size(0); b += 256) {
            const int64_t n = std::min<int64_t>(256, inputs.size(0) - b);
            auto fc = model.forwardCapture(inputs.narrow(0, b, n));
            torch::Tensor a;
            for (size_t i = 0; i < fc.activations.size(); ++i)
                if (fc.activations[i].first == layer) a = capture::batchFirst(fc.activations[i].second, fc.batchDim(i));
            if (!a.defined()) {
                model.setTraining(wasTraining);
                return usage("layer '" + layer + "' gave no output for these inputs");
            }
            a = a.reshape({n, -1}).to(torch::kFloat32).contiguous();
            m.cols = a.size(1);
            values.insert(values.end(), a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
        }
    } catch (const std::exception& e) {
        model.setTraining(wasTraining);
        return usage("the model rejects the data: " + oneLineReason(e.what()));
    }
    model.setTraining(wasTraining);
    m.rows = inputs.size(0);
    m.values = std::move(values);
    return m;
}

// The layer to project: the named one (an error lists the names), or the input of the last layer.
Expected<std::string> chooseLayer(capture::Model& model, const torch::Tensor& probe, const std::string& wanted) {
    std::vector<std::string> names;
    {
        torch::NoGradGuard noGrad;
        try {
            for (const auto& [name, t] : model.forwardCapture(probe).activations)
                names.push_back(name);
        } catch (const std::exception& e) {
            return usage("the model rejects the data: " + oneLineReason(e.what()));
        }
    }
    if (!wanted.empty()) {
        if (std::find(names.begin(), names.end(), wanted) != names.end()) return wanted;
        std::string list;
        for (size_t i = 0; i < names.size() && i < 12; ++i)
            list += (i ? ", " : "") + names[i];
        if (names.size() > 12) list += ", ... (" + std::to_string(names.size()) + " layers)";
        return usage("model '" + model.name() + "' has no layer '" + wanted + "' (layers: " + list + ")");
    }
    if (names.size() < 2) return usage("model '" + model.name() + "' exposes no layer before its output; give --layer");
    const auto info = model.layerInfo();
    if (!info.empty() && !info.back().inputs.empty() && info.back().inputs[0] >= 0)
        return info[size_t(info.back().inputs[0])].name;
    return names[names.size() - 2];
}

} // namespace

Expected<ExplainOutcome> runProject(const ProjectArgs& a) {
    const auto t0 = std::chrono::steady_clock::now();
    if (a.method != "pca" && a.method != "tsne") return usage("unknown --method '" + a.method + "' (pca, tsne)");
    if (a.out.empty()) return usage("--out is empty: give the PNG file to write");
    if (a.samples < 4) return usage("--samples must be at least 4");
    auto loaded = loadDataSet(a.data, a.seed, a.limit);
    if (!loaded) return loaded.error();
    Sample& sample = *loaded;
    const capture::Dataset& v = sample.data.validation.size() > 0 ? sample.data.validation : sample.data.train;
    const int64_t n = std::min<int64_t>(a.samples, v.size());
    torch::manual_seed(a.seed);
    auto model = capture::loadModel(a.model, v.sampleShape, sample.numClasses > 0 ? sample.numClasses : a.classes);
    if (!model) return model.error();
    auto trained = trainFirst(**model, sample, a.trainSteps, a.seed);
    if (!trained) return trained.error();
    auto layer = chooseLayer(**model, v.inputs.narrow(0, 0, 1), a.layer);
    if (!layer) return layer.error();
    auto acts = layerActivations(**model, v.inputs.narrow(0, 0, n), *layer);
    if (!acts) return acts.error();

    ScatterSource src;
    std::vector<double> explained;
    Matrix points;
    if (a.method == "pca") {
        auto p = pca(*acts, int(std::min<int64_t>(3, acts->cols)));
        if (!p) return p.error();
        for (double e : p->eigenvalues)
            explained.push_back(p->totalVariance > 0 ? e / p->totalVariance : 0.0);
        points = std::move(p->points);
    } else {
        TsneOptions o;
        o.perplexity = a.perplexity;
        o.theta = a.theta;
        o.iterations = a.iterations;
        o.exaggerationSteps = std::min(250, a.iterations / 3);
        o.seed = a.seed;
        auto y = tsne(*acts, o);
        if (!y) return y.error();
        points = std::move(*y);
    }
    std::vector<int64_t> labels(v.labels.data_ptr<int64_t>(), v.labels.data_ptr<int64_t>() + n);
    const double purity = knnPurity(points.cols > 2 ? Matrix{points.rows, 2, [&] {
        std::vector<float> xy(size_t(2 * points.rows));
        for (int64_t i = 0; i < points.rows; ++i)
            xy[size_t(2 * i)] = points.at(i, 0), xy[size_t(2 * i + 1)] = points.at(i, 1);
        return xy;
    }()} : points, labels, 10);
    for (int64_t i = 0; i < points.rows; ++i) {
        src.x.push_back(points.at(i, 0));
        src.y.push_back(points.cols > 1 ? points.at(i, 1) : 0.0f);
    }
    src.labels = labels;
    src.classNames = sample.classNames;
    char line[256];
    std::snprintf(line, sizeof line, "%s of '%s' (%lld values per sample)", a.method == "pca" ? "PCA" : "t-SNE",
                  layer->c_str(), static_cast<long long>(acts->cols));
    src.title = line;
    std::snprintf(line, sizeof line, "%lld validation samples of %s  |  %s  |  10-NN class purity in 2D %.2f",
                  static_cast<long long>(n), a.data.c_str(), std::filesystem::path(a.model).filename().c_str(), purity);
    src.subtitle = line;
    if (a.method == "pca") {
        std::snprintf(line, sizeof line, "PC1 (%.1f%% of variance)", 100 * explained[0]);
        src.xTitle = line;
        std::snprintf(line, sizeof line, "PC2 (%.1f%%)", explained.size() > 1 ? 100 * explained[1] : 0.0);
        src.yTitle = line;
    } else {
        src.xTitle = "t-SNE 1";
        src.yTitle = "t-SNE 2";
    }
    ExplainOutcome out;
    out.png = a.out;
    out.json = a.json.empty() ? std::filesystem::path(a.out).replace_extension(".json").string() : a.json;
    if (auto st = writePng(out.png, renderScatter(src)); !st) return st.error();
    nlohmann::json j;
    j["model"] = a.model;
    j["data"] = a.data;
    j["layer"] = *layer;
    j["values_per_sample"] = acts->cols;
    j["method"] = a.method;
    j["samples"] = n;
    j["knn_purity_10"] = purity;
    if (a.method == "pca") j["explained_variance_ratio"] = explained;
    else j["tsne"] = {{"perplexity", a.perplexity}, {"theta", a.theta}, {"iterations", a.iterations}};
    if (!trained->empty()) j["training"] = *trained;
    j["class_names"] = sample.classNames;
    nlohmann::json pts = nlohmann::json::array();
    for (int64_t i = 0; i < points.rows; ++i) {
        nlohmann::json p = {{"index", i}, {"label", labels[size_t(i)]}};
        std::vector<float> c(points.values.begin() + i * points.cols, points.values.begin() + (i + 1) * points.cols);
        p["position"] = c;
        pts.push_back(p);
    }
    j["points"] = pts;
    if (a.keepCloud) {
        auto cloud = std::make_shared<ProjectionCloud>();
        cloud->points.rows = points.rows;
        cloud->points.cols = 3;
        cloud->points.values.assign(size_t(3 * points.rows), 0.0f);
        for (int64_t i = 0; i < points.rows; ++i)
            for (int64_t c = 0; c < std::min<int64_t>(3, points.cols); ++c)
                cloud->points.values[size_t(3 * i + c)] = points.at(i, c);
        cloud->labels = labels;
        cloud->classNames = sample.classNames;
        cloud->sampleShape = v.sampleShape;
        const torch::Tensor xs = v.inputs.narrow(0, 0, n).to(torch::kFloat32).contiguous();
        cloud->samples.assign(xs.data_ptr<float>(), xs.data_ptr<float>() + xs.numel());
        {
            torch::NoGradGuard noGrad;
            const bool wasTraining = (*model)->isTraining();
            (*model)->setTraining(false);
            try {
                for (int64_t b = 0; b < n; b += 256) {
                    const torch::Tensor p = (*model)->forward(xs.narrow(0, b, std::min<int64_t>(256, n - b))).argmax(-1);
                    for (int64_t k = 0; k < p.size(0); ++k)
                        cloud->predicted.push_back(p[k].item<int64_t>());
                }
            } catch (const std::exception& e) {
                (*model)->setTraining(wasTraining);
                return usage("the model rejects the data: " + oneLineReason(e.what()));
            }
            (*model)->setTraining(wasTraining);
        }
        cloud->title = src.title;
        if (a.method == "pca") {
            for (size_t k = 0; k < 3; ++k) {
                std::snprintf(line, sizeof line, "PC%zu (%.1f%%)", k + 1, k < explained.size() ? 100 * explained[k] : 0.0);
                cloud->axes[k] = line;
            }
        } else {
            cloud->axes[0] = "t-SNE 1", cloud->axes[1] = "t-SNE 2", cloud->axes[2] = "(flat)";
        }
        out.cloud = std::move(cloud);
    }
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto st = writeJson(out.json, j); !st) return st.error();
    std::snprintf(line, sizeof line, "%s of '%s' for %lld samples (10-NN purity %.2f): wrote %s and %s",
                  a.method.c_str(), layer->c_str(), static_cast<long long>(n), purity, out.png.c_str(),
                  out.json.c_str());
    out.summary = line;
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// neurogram

namespace {

// One neurogram as JSON: KPIs, stability, complexity, every layer's contribution, agreement, diagnoses.
nlohmann::json neurogramJson(const Neurogram& g) {
    auto kpis = [](const Kpis& k) {
        nlohmann::json j = {{"accuracy", k.accuracy}, {"loss", k.loss}, {"macro_f1", k.macroF1}};
        nlohmann::json per = nlohmann::json::array();
        for (double v : k.classAccuracy)
            per.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
        j["class_accuracy"] = per;
        return j;
    };
    nlohmann::json j;
    j["validation"] = kpis(g.validation);
    j["training"] = kpis(g.train);
    nlohmann::json stab = nlohmann::json::array();
    for (const auto& s : g.stability)
        stab.push_back({{"corruption", s.corruption}, {"strength", s.strength}, {"accuracy", s.accuracy}, {"loss", s.loss}});
    j["stability"] = stab;
    j["complexity"] = {{"parameters", g.params}, {"flops_per_sample", g.flops}, {"latency_ms_per_sample", g.latencyMs}};
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : g.layers) {
        nlohmann::json e = {{"name", l.name}, {"type", l.type}, {"parameters", l.params}, {"ablated", l.ablated}};
        if (!l.note.empty()) e["note"] = l.note;
        if (l.ablated)
            e["mean_ablation"] = {{"accuracy", l.accuracy}, {"loss", l.loss}, {"accuracy_drop", l.accuracyDrop},
                                  {"loss_increase", l.lossIncrease}};
        e["first_order_loss_increase"] =
            std::isfinite(l.taylorLossIncrease) ? nlohmann::json(l.taylorLossIncrease) : nlohmann::json(nullptr);
        if (l.zeroedAccuracy >= 0) e["zeroed_accuracy"] = l.zeroedAccuracy;
        if (l.ablated && !l.shift.empty())
            e["under_shift"] = {{"shift", l.shift}, {"accuracy_drop", l.shiftedAccuracyDrop},
                                {"share_of_accuracy_above_chance", l.shiftedShare},
                                {"validation_share", l.share}};
        layers.push_back(e);
    }
    j["layers"] = layers;
    j["agreement_spearman"] = std::isnan(g.agreement) ? nlohmann::json(nullptr) : nlohmann::json(g.agreement);
    j["diagnoses"] = g.diagnoses;
    return j;
}

// The checkpoints measured: `step` alone (which must exist), or at most maxSteps spread evenly (first and last kept).
Expected<std::vector<int64_t>> chooseCheckpoints(const std::string& run, int64_t step, int64_t maxSteps) {
    const auto all = runs::listCheckpoints(run);
    if (all.empty())
        return usage("run " + run + " has no checkpoints (record them with train --run DIR --checkpoint-every N, or "
                                    "tensorscape.init(..., checkpoint_every=N) in Python)");
    if (step >= 0) {
        if (std::find(all.begin(), all.end(), step) == all.end()) {
            std::string list;
            for (size_t i = 0; i < all.size() && i < 12; ++i)
                list += (i ? ", " : "") + std::to_string(all[i]);
            if (all.size() > 12) list += ", ...";
            return usage("run " + run + " has no checkpoint at step " + std::to_string(step) + " (steps: " + list + ")");
        }
        return std::vector<int64_t>{step};
    }
    if (int64_t(all.size()) <= maxSteps) return all;
    std::vector<int64_t> picked;
    for (int64_t k = 0; k < maxSteps; ++k) {
        const int64_t at = all[size_t(k * int64_t(all.size() - 1) / std::max<int64_t>(1, maxSteps - 1))];
        if (picked.empty() || picked.back() != at) picked.push_back(at);
    }
    return picked;
}

} // namespace

Expected<ExplainOutcome> runNeurogram(const NeurogramArgs& a) {
    const auto t0 = std::chrono::steady_clock::now();
    if (a.out.empty()) return usage("--out is empty: give the PNG file to write");
    if (a.run.empty() && a.step >= 0) return usage("--step picks a checkpoint of a run: give --run RUN too");
    std::string modelSpec = a.model;
    std::vector<int64_t> checkpoints;
    if (!a.run.empty()) {
        if (a.maxSteps < 1) return usage("--max-steps must be at least 1");
        auto picked = chooseCheckpoints(a.run, a.step, a.maxSteps);
        if (!picked) return picked.error();
        checkpoints = std::move(*picked);
        if (a.trainSteps > 0) return usage("--train-steps and --run do not mix: the run's checkpoints are the weights");
        if (modelSpec.empty()) {
            auto reader = runs::RunReader::open(a.run);
            if (!reader) return reader.error();
            modelSpec = (*reader)->info().model;
            if (modelSpec.empty()) return usage("run " + a.run + " does not name its model: give --model");
        }
    }
    if (modelSpec.empty()) return usage("give the model: --model SPEC");
    auto loaded = loadDataSet(a.data, a.seed, a.limit);
    if (!loaded) return loaded.error();
    Sample& sample = *loaded;
    torch::manual_seed(a.seed);
    const int64_t classes = sample.data.train.numClasses > 0 ? sample.data.train.numClasses : a.classes;
    auto model = capture::loadModel(modelSpec, sample.data.train.sampleShape, classes);
    if (!model) {
        if (!a.run.empty() && a.model.empty())
            return usage("the run's model '" + modelSpec + "' cannot be loaded (" + model.error().message + "): give --model");
        return model.error();
    }
    auto trained = trainFirst(**model, sample, a.trainSteps, a.seed);
    if (!trained) return trained.error();
    NeurogramOptions no;
    no.samples = a.samples;
    no.stability = a.stability;
    no.seed = a.seed;
    Sample shifted;
    if (!a.shiftData.empty()) {
        auto d = loadDataSet(a.shiftData, a.seed, a.limit);
        if (!d) return d.error();
        shifted = std::move(*d);
        no.shifted = shifted.data.validation.size() > 0 ? &shifted.data.validation : &shifted.data.train;
        no.shiftedName = a.shiftData;
    }
    const std::string modelName = std::filesystem::path(modelSpec).filename().string();
    const int64_t evaluated = std::min(a.samples, sample.data.validation.size());
    ExplainOutcome out;
    out.png = a.out;
    out.json = a.json.empty() ? std::filesystem::path(a.out).replace_extension(".json").string() : a.json;
    nlohmann::json j;
    j["model"] = modelSpec;
    j["data"] = a.data;
    j["samples"] = no.samples;
    char line[400];

    if (checkpoints.size() > 1) { // over the run
        std::vector<NeurogramStep> steps;
        for (int64_t step : checkpoints) {
            auto tensors = runs::readCheckpoint(a.run, step);
            if (!tensors) return tensors.error();
            if (auto st = capture::loadCheckpoint(**model, *tensors); !st) return usage("step " + std::to_string(step) + ": " + st.message());
            auto g = computeNeurogram(**model, sample.data.train, sample.data.validation, no);
            if (!g) return g.error();
            TS_LOG_INFO("step %lld: validation accuracy %.1f%%", static_cast<long long>(step), 100 * g->validation.accuracy);
            steps.push_back({step, std::move(*g)});
        }
        const auto diagnoses = diagnoseRun(steps);
        const std::string title = "Neurogram of " + modelName + " over run " + std::filesystem::path(a.run).filename().string() +
                                  " on " + a.data + " (" + std::to_string(steps.size()) + " checkpoints, " +
                                  std::to_string(evaluated) + " validation samples)";
        if (auto st = writePng(out.png, renderNeurogramRun(steps, diagnoses, title)); !st) return st.error();
        j["run"] = a.run;
        nlohmann::json js = nlohmann::json::array();
        for (const auto& s : steps) {
            nlohmann::json e = neurogramJson(s.graph);
            e["step"] = s.step;
            js.push_back(e);
        }
        j["steps"] = js;
        j["diagnoses"] = diagnoses;
        j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (auto st = writeJson(out.json, j); !st) return st.error();
        if (a.keepGraphs) out.neurograms = std::make_shared<ExplainOutcome::NeurogramGraphs>(ExplainOutcome::NeurogramGraphs{title, steps});
        std::snprintf(line, sizeof line, "neurogram of %s over %zu checkpoints of %s (steps %lld-%lld), %zu diagnoses: wrote %s and %s",
                      modelSpec.c_str(), steps.size(), a.run.c_str(), static_cast<long long>(steps.front().step),
                      static_cast<long long>(steps.back().step), diagnoses.size(), out.png.c_str(), out.json.c_str());
        out.summary = line;
        return out;
    }

    std::string where;
    if (checkpoints.size() == 1) {
        auto tensors = runs::readCheckpoint(a.run, checkpoints[0]);
        if (!tensors) return tensors.error();
        if (auto st = capture::loadCheckpoint(**model, *tensors); !st) return st.error();
        where = " at step " + std::to_string(checkpoints[0]) + " of run " + std::filesystem::path(a.run).filename().string();
        j["run"] = a.run;
        j["step"] = checkpoints[0];
    }
    auto g = computeNeurogram(**model, sample.data.train, sample.data.validation, no);
    if (!g) return g.error();
    const std::string title = "Neurogram of " + modelName + where + " on " + a.data + " (" + std::to_string(evaluated) +
                              " validation samples)";
    if (auto st = writePng(out.png, renderNeurogram(*g, title)); !st) return st.error();
    j.update(neurogramJson(*g));
    if (!trained->empty()) j["training_run"] = *trained;
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto st = writeJson(out.json, j); !st) return st.error();
    if (a.keepGraphs)
        out.neurograms = std::make_shared<ExplainOutcome::NeurogramGraphs>(
            ExplainOutcome::NeurogramGraphs{title, {NeurogramStep{checkpoints.size() == 1 ? checkpoints[0] : -1, *g}}});
    std::snprintf(line, sizeof line, "neurogram of %s%s: validation accuracy %.1f%%, %zu layers measured, %zu diagnoses: wrote %s and %s",
                  modelSpec.c_str(), where.c_str(), 100 * g->validation.accuracy, g->layers.size(), g->diagnoses.size(),
                  out.png.c_str(), out.json.c_str());
    out.summary = line;
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// features

namespace {

std::vector<float> sampleValues(const torch::Tensor& t) {
    const torch::Tensor c = t.to(torch::kFloat32).contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

} // namespace

namespace {

// The activation maximisation's settings from the command's flags, over the pool's value range [lo, hi].
MaximiseOptions maximiseOptionsOf(const FeaturesArgs& a, const std::vector<int64_t>& units, float lo, float hi) {
    MaximiseOptions mo;
    mo.units = units;
    mo.steps = a.steps;
    mo.lr = a.lr;
    mo.jitter = a.jitter;
    mo.blurEvery = a.blurEvery;
    mo.blurSigma = a.blurSigma;
    mo.tv = a.tv;
    mo.lo = lo;
    mo.hi = hi;
    mo.seed = a.seed;
    return mo;
}

} // namespace

Expected<ExplainOutcome> runFeatures(const FeaturesArgs& a) {
    const auto t0 = std::chrono::steady_clock::now();
    if (a.out.empty()) return usage("--out is empty: give the PNG file to write");
    if (a.steps < 0 || a.topK < 0) return usage("--steps and --top-k are 0 or more");
    if (a.steps == 0 && a.topK == 0) return usage("nothing to show: --steps 0 and --top-k 0");
    if (a.samples < 1) return usage("--samples must be at least 1");
    if (a.start != "noise" && a.start != "top") return usage("unknown --start '" + a.start + "' (noise, top)");
    // The pool of real inputs: a data set's validation split (labelled), or --input's samples.
    Sample pool;
    torch::Tensor inputs, labels;
    std::string poolName;
    if (!a.input.path.empty()) {
        if (!a.data.empty()) {
            auto d = loadDataSet(a.data, a.seed, a.limit); // sizes built-in models and --train-steps
            if (!d) return d.error();
            pool = std::move(*d);
        }
        auto in = loadInputFile(a.input, a.samples);
        if (!in) return in.error();
        inputs = in->inputs;
        poolName = std::filesystem::path(a.input.path).filename().string();
    } else if (!a.data.empty()) {
        auto d = loadDataSet(a.data, a.seed, a.limit);
        if (!d) return d.error();
        pool = std::move(*d);
        const capture::Dataset& v = pool.data.validation.size() > 0 ? pool.data.validation : pool.data.train;
        const int64_t n = std::min<int64_t>(a.samples, v.size());
        inputs = v.inputs.narrow(0, 0, n);
        labels = v.labels.narrow(0, 0, n);
        poolName = a.data + (pool.data.validation.size() > 0 ? " validation" : " training");
    } else {
        return usage("give the inputs to rank and to size the images: --data SET or --input FILE");
    }
    if (inputs.size(0) == 0) return usage(poolName + " holds no samples");
    std::vector<int64_t> shape(inputs.sizes().begin() + 1, inputs.sizes().end());
    torch::manual_seed(a.seed);
    auto model = capture::loadModel(a.model, shape, pool.numClasses > 0 ? pool.numClasses : a.classes);
    if (!model) return model.error();
    auto trained = trainFirst(**model, pool, a.trainSteps, a.seed);
    if (!trained) return trained.error();
    auto layer = findUnitLayer(**model, inputs.narrow(0, 0, 1), a.layer);
    if (!layer) return layer.error();
    const bool output = layer->name.empty();
    std::string unitText = a.units;
    if (unitText.empty())
        unitText = output && layer->units <= 16 ? "all" : "0-" + std::to_string(std::min<int64_t>(8, layer->units) - 1);
    auto units = parseUnits(unitText, layer->units, layer->name);
    if (!units) return units.error();

    auto unitName = [&](int64_t u) {
        return output && u < int64_t(pool.classNames.size()) ? "class " + std::to_string(u) + " " + pool.classNames[size_t(u)]
               : output                                       ? "class " + std::to_string(u)
                                                              : "unit " + std::to_string(u);
    };
    const float lo = inputs.min().item<float>(), hi = inputs.max().item<float>();
    TopInputs top;
    if (a.topK > 0 || (a.start == "top" && a.steps > 0)) {
        auto t = topInputs(**model, *layer, inputs, *units, std::max<int64_t>(a.topK, 1));
        if (!t) return t.error();
        top = std::move(*t);
    }

    std::optional<Maximised> am;
    // Token indices (an nn.Embedding's input) cannot be climbed by gradient ascent: the top real inputs only.
    const bool indices = c10::isIntegralType(inputs.scalar_type(), false);
    if (indices && a.steps > 0)
        TS_LOG_INFO(
            "features: the inputs are integer token indices, which activation maximisation cannot optimise; "
            "showing the top real inputs only");
    if (a.steps > 0 && !indices) {
        MaximiseOptions mo = maximiseOptionsOf(a, *units, lo, hi);
        if (a.start == "top") {
            std::vector<int64_t> first;
            for (const auto& t : top.index)
                first.push_back(t[0]);
            mo.start = inputs.index_select(0, torch::tensor(first, torch::kInt64));
        }
        auto r = maximiseActivation(**model, *layer, shape, mo);
        if (!r) return r.error();
        am = std::move(*r);
    }
    FeatureSheet sheet;
    sheet.shape = shape;
    sheet.lo = lo;
    sheet.hi = hi;
    const std::string where = output ? "the output" : "'" + layer->name + "' (" + layer->type + ")";
    sheet.title = "Feature visualisation of " + where + "  |  " + std::filesystem::path(a.model).filename().string();
    char line[400];
    if (am)
        std::snprintf(line, sizeof line, "framed: activation maximisation (%d steps from %s, jitter %d px, blur %.2g px every %d, "
                                         "TV %.2g)%s",
                      a.steps, a.start == "top" ? "the top input" : "noise", a.jitter, a.blurSigma, a.blurEvery, a.tv,
                      a.topK > 0 ? "; " : "");
    else
        line[0] = 0;
    sheet.subtitle = line;
    if (a.topK > 0)
        sheet.subtitle += "the " + std::to_string(a.topK) + " of " + std::to_string(inputs.size(0)) + " inputs of " +
                          poolName + " with the largest value";
    nlohmann::json ju = nlohmann::json::array();
    for (size_t i = 0; i < units->size(); ++i) {
        const int64_t u = (*units)[i];
        FeatureRow row;
        row.caption = unitName(u);
        nlohmann::json e = {{"unit", u}, {"name", row.caption}};
        if (am) {
            row.maximised = sampleValues(am->images[int64_t(i)]);
            row.maximisedValue = am->activation[i];
            e["maximised"] = {{"value", am->activation[i]}, {"start_value", am->start[i]}};
        }
        if (a.topK > 0) {
            nlohmann::json jt = nlohmann::json::array();
            for (size_t k = 0; k < top.index[i].size(); ++k) {
                const int64_t idx = top.index[i][k];
                row.top.push_back(sampleValues(inputs[idx]));
                row.topValues.push_back(top.value[i][k]);
                nlohmann::json t = {{"index", idx}, {"value", top.value[i][k]}};
                std::string cap = "#" + std::to_string(idx);
                if (labels.defined()) {
                    const int64_t l = labels[idx].item<int64_t>();
                    t["label"] = l;
                    cap += " " + className(pool, l);
                }
                row.topCaptions.push_back(cap);
                jt.push_back(t);
            }
            e["top"] = jt;
            if (am && !top.value[i].empty()) {
                e["maximised"]["beats_top_input"] = am->activation[i] > top.value[i][0];
                if (top.value[i][0] > 0 && am->activation[i] > 0)
                    e["maximised"]["over_top_input"] = am->activation[i] / top.value[i][0];
            }
        }
        sheet.rows.push_back(std::move(row));
        ju.push_back(e);
    }
    ExplainOutcome out;
    out.png = a.out;
    out.json = a.json.empty() ? std::filesystem::path(a.out).replace_extension(".json").string() : a.json;
    if (auto st = writePng(out.png, renderFeatureSheet(sheet)); !st) return st.error();
    nlohmann::json j;
    j["model"] = a.model;
    j["layer"] = output ? "output" : layer->name;
    j["type"] = layer->type;
    j["unit_dim"] = layer->unitDim;
    j["layer_units"] = layer->units;
    j["pool"] = {{"inputs", a.input.path.empty() ? poolName : a.input.path}, {"samples", inputs.size(0)}, {"range", {lo, hi}}};
    if (am)
        j["maximisation"] = {{"steps", a.steps}, {"lr", a.lr}, {"jitter", a.jitter}, {"blur_every", a.blurEvery},
                             {"blur_sigma", a.blurSigma}, {"tv", a.tv}, {"seed", a.seed}, {"start", a.start}};
    j["top_k"] = a.topK;
    j["units"] = ju;
    if (!trained->empty()) j["training"] = *trained;
    j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto st = writeJson(out.json, j); !st) return st.error();
    std::snprintf(line, sizeof line, "features of %s, %zu units: wrote %s and %s", where.c_str(), units->size(),
                  out.png.c_str(), out.json.c_str());
    out.summary = line;
    return out;
}

} // namespace ts::explain
