#include "engine/explain/command.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/capture/dataset.hpp"
#include "engine/capture/inputs.hpp"
#include "engine/capture/model.hpp"
#include "engine/capture/network.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/core/log.hpp"
#include "engine/explain/attribution.hpp"
#include "engine/explain/heatmap.hpp"

namespace ts::explain {

namespace {

Error usage(std::string message) {
    return makeError(ErrorKind::Usage, std::move(message));
}

struct Sample {
    torch::Tensor input; // [1, ...]
    int64_t label = -1;
    std::string what;
    std::vector<std::string> classNames;
    int64_t numClasses = 0;
    capture::DataSplit data; // when --data is given
};

Expected<Sample> loadSample(const ExplainArgs& a) {
    Sample s;
    if (a.index < 0) return usage("--index must be 0 or more");
    if (!a.data.empty()) {
        capture::DataOptions o;
        o.seed = a.seed;
        o.limit = a.limit;
        auto d = capture::loadDataset(a.data, o);
        if (!d) return d.error();
        s.data = std::move(*d);
        s.numClasses = s.data.train.numClasses;
        s.classNames = s.data.train.classNames;
    }
    if (!a.input.empty()) {
        capture::InputOptions o = a.imagenet ? capture::imagenetPreset() : capture::InputOptions{};
        o.path = a.input;
        o.count = a.index + 1;
        if (a.resize > 0) o.resize = a.resize;
        if (a.crop > 0) o.crop = a.crop;
        if (a.channels > 0) o.channels = a.channels;
        if (!a.inputShape.empty()) {
            auto shape = capture::parseShape(a.inputShape);
            if (!shape) return shape.error();
            o.shape = *shape;
        }
        auto in = capture::loadInputs(o);
        if (!in) return in.error();
        if (a.index >= in->size())
            return usage("--index " + std::to_string(a.index) + " is out of range: " + a.input + " holds " +
                         std::to_string(in->size()) + " samples");
        s.input = in->inputs.narrow(0, a.index, 1).clone();
        s.what = a.input + (in->size() > 1 || a.index > 0 ? " #" + std::to_string(a.index) : "");
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

Expected<std::string> trainFirst(capture::Model& model, const Sample& s, const ExplainArgs& a) {
    if (a.trainSteps <= 0) return std::string();
    if (a.data.empty()) return usage("--train-steps needs --data (the set to train on)");
    capture::TrainOptions o;
    o.maxSteps = a.trainSteps;
    o.seed = a.seed;
    auto trainer = capture::Trainer::create(model, s.data, o);
    if (!trainer) return trainer.error();
    capture::StepInfo last;
    for (int64_t i = 0; i < a.trainSteps; ++i) {
        auto st = (*trainer)->step();
        if (!st) return st.error();
        last = *st;
    }
    auto val = capture::evaluate(model, s.data.validation.inputs, s.data.validation.labels);
    char line[160];
    std::snprintf(line, sizeof line, "trained %lld steps: loss %.3f, validation accuracy %.1f%%",
                  static_cast<long long>(a.trainSteps), last.loss, val ? 100.0 * val->accuracy : NAN);
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
    const std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        if (!out) return usage("cannot write " + path + " (check that the folder exists and is writable)");
        out << j.dump(2) << "\n";
        out.flush();
        if (!out) {
            out.close();
            std::remove(tmp.c_str());
            return usage("writing " + path + " failed (disk full?)");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return usage("cannot write " + path + " (rename failed)");
    }
    return {};
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
    auto trained = trainFirst(**model, *sample, a);
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

} // namespace ts::explain
