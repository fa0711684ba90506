// Neurogram measurements. Sections: 1. KPIs of one forward function  2. layer means and the first-order
// estimate  3. stability and complexity  4. diagnoses  5. entry point (the ablations)  6. the picture.
#include "engine/explain/neurogram.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>

#include "engine/capture/network.hpp"
#include "engine/capture/structure.hpp"
#include "engine/core/text_raster.hpp"
#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {

using detail::lower;
using detail::usage;

// ---------------------------------------------------------------------------------------------------------
// 1. KPIs of one forward function over (x, y).

using ForwardFn = std::function<Expected<torch::Tensor>(const torch::Tensor&)>;

Expected<Kpis> evaluateKpis(const ForwardFn& forward, const torch::Tensor& x, const torch::Tensor& y, int64_t classes,
                            int64_t batch) {
    torch::NoGradGuard noGrad;
    const int64_t n = x.size(0);
    double lossSum = 0.0;
    torch::Tensor tp = torch::zeros({classes}, torch::kInt64), predicted = torch::zeros({classes}, torch::kInt64);
    torch::Tensor actual = torch::zeros({classes}, torch::kInt64);
    for (int64_t b = 0; b < n; b += batch) {
        const int64_t m = std::min(batch, n - b);
        auto logits = forward(x.narrow(0, b, m));
        if (!logits) return logits.error();
        if (logits->dim() != 2 || logits->size(0) != m || logits->size(1) != classes)
            return usage("the model's output is " + capture::shapeString(logits->sizes().vec()) +
                         "; a neurogram needs class scores [N, " + std::to_string(classes) + "]");
        const torch::Tensor yb = y.narrow(0, b, m);
        lossSum += torch::nn::functional::cross_entropy(
                       logits->to(torch::kFloat32), yb,
                       torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                       .item<double>();
        const torch::Tensor pred = logits->argmax(1);
        const torch::Tensor hit = pred.eq(yb);
        tp.index_add_(0, yb.masked_select(hit), torch::ones({hit.sum().item<int64_t>()}, torch::kInt64));
        predicted += torch::bincount(pred, {}, classes);
        actual += torch::bincount(yb, {}, classes);
    }
    Kpis k;
    k.loss = lossSum / double(n);
    k.accuracy = double(tp.sum().item<int64_t>()) / double(n);
    double f1 = 0.0;
    int counted = 0;
    for (int64_t c = 0; c < classes; ++c) {
        const double t = double(tp[c].item<int64_t>()), a = double(actual[c].item<int64_t>());
        const double p = double(predicted[c].item<int64_t>());
        k.classAccuracy.push_back(a > 0 ? t / a : NAN);
        if (a + p > 0) {
            f1 += 2 * t / (a + p);
            ++counted;
        }
    }
    k.macroF1 = counted > 0 ? f1 / counted : 0.0;
    return k;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Layer means over the samples, and the first-order estimate of replacing each output by its mean.

// A layer's units, batch first: features of [N, F]; the last dimension of 3-D outputs of token layers (Linear,
// Transformer, LSTM on [N, T, F]); otherwise channels (dimension 1). What a unit's mean is taken over.
int64_t unitDimOf(const torch::Tensor& a, const std::string& type) {
    return a.dim() == 3 && !detail::channelsFirst(type) ? 2 : 1;
}

// Sum over every dimension but the unit's, kept as size-1 dimensions (broadcasts against the output).
torch::Tensor reduceToUnits(const torch::Tensor& a, int64_t unitDim) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < a.dim(); ++d)
        if (d != unitDim) dims.push_back(d);
    return dims.empty() ? a.to(torch::kFloat64) : a.to(torch::kFloat64).sum(dims, true);
}

struct Candidate {
    int info = -1;          // index into layerInfo
    std::string name, type, module;
    torch::Tensor mean;     // per unit, batch first, broadcastable to the output ([1, C, 1, 1], [1, 1, F], [1, F])
    int batchDim = 0;       // the output's own layout (1: sequence first)
    double taylor = 0.0;    // summed over samples
    // The mean in the output's own layout, for Model::forwardReplacing.
    torch::Tensor replacement() const { return batchDim == 1 ? mean.transpose(0, 1) : mean; }
};

Status layerMeans(capture::Model& model, const torch::Tensor& x, int64_t batch, std::vector<Candidate>& cands) {
    torch::NoGradGuard noGrad;
    std::vector<torch::Tensor> sums(cands.size());
    std::vector<double> counts(cands.size(), 0.0);
    for (int64_t b = 0; b < x.size(0); b += batch) {
        const int64_t m = std::min(batch, x.size(0) - b);
        auto fc = model.forwardCapture(x.narrow(0, b, m));
        for (size_t c = 0; c < cands.size(); ++c)
            for (size_t i = 0; i < fc.activations.size(); ++i) {
                if (fc.activations[i].first != cands[c].name) continue;
                const bool loop = i < fc.parts.size() && !fc.parts[i].tensors.empty();
                if (loop) continue; // stacked iterations: not a value forward() could be given instead
                const torch::Tensor a = capture::batchFirst(fc.activations[i].second, fc.batchDim(i));
                if (a.dim() < 2) continue;
                const torch::Tensor s = reduceToUnits(a, unitDimOf(a, cands[c].type));
                sums[c] = sums[c].defined() ? sums[c] + s : s;
                counts[c] += double(a.numel() / std::max<int64_t>(1, s.numel()));
                cands[c].batchDim = fc.batchDim(i);
            }
    }
    for (size_t c = 0; c < cands.size(); ++c)
        if (sums[c].defined()) cands[c].mean = (sums[c] / counts[c]).to(torch::kFloat32);
    return {};
}

// Sum over samples of grad(loss) . (mean - activation) per candidate: the loss change a Taylor expansion
// predicts for each replacement.
Status taylorEstimates(capture::Model& model, const torch::Tensor& x, const torch::Tensor& y, int64_t batch,
                       std::vector<Candidate>& cands) {
    for (int64_t b = 0; b < x.size(0); b += batch) {
        const int64_t m = std::min(batch, x.size(0) - b);
        auto fc = model.forwardCapture(x.narrow(0, b, m));
        std::vector<torch::Tensor> acts;
        std::vector<size_t> which;
        for (size_t c = 0; c < cands.size(); ++c)
            for (size_t i = 0; i < fc.activations.size(); ++i)
                if (fc.activations[i].first == cands[c].name && cands[c].mean.defined() &&
                    fc.activations[i].second.requires_grad() && fc.batchDim(i) == 0) {
                    acts.push_back(fc.activations[i].second);
                    which.push_back(c);
                }
        if (acts.empty()) return {};
        torch::Tensor loss = torch::nn::functional::cross_entropy(
            fc.output, y.narrow(0, b, m), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
        auto grads = torch::autograd::grad({loss}, acts, {}, false, false, true);
        torch::NoGradGuard noGrad;
        for (size_t k = 0; k < acts.size(); ++k) {
            if (!grads[k].defined()) continue;
            const torch::Tensor a = acts[k].detach();
            cands[which[k]].taylor +=
                (grads[k] * (cands[which[k]].mean.to(a.scalar_type()) - a)).sum().to(torch::kFloat64).item<double>();
        }
    }
    return {};
}

// ---------------------------------------------------------------------------------------------------------
// 3. Stability (corrupted inputs) and complexity.

std::vector<std::pair<StabilityKpi, torch::Tensor>> corruptions(const torch::Tensor& x, uint64_t seed) {
    std::vector<std::pair<StabilityKpi, torch::Tensor>> out;
    const double lo = x.min().item<double>(), hi = x.max().item<double>(), range = hi > lo ? hi - lo : 1.0;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    for (double s : {0.05, 0.15}) {
        torch::Tensor noise = at::normal(0.0, s * range, x.sizes().vec(), gen, torch::kFloat32);
        out.push_back({{"noise", s, 0, 0}, x + noise});
    }
    out.push_back({{"brightness", 0.2, 0, 0}, x + 0.2 * range});
    if (x.dim() == 4 && x.size(2) >= 4 && x.size(3) >= 4) {
        out.push_back({{"blur", 3, 0, 0}, torch::avg_pool2d(x, 3, 1, 1, false, false)});
        torch::Tensor occluded = x.clone();
        const int64_t h = x.size(2), w = x.size(3);
        occluded.narrow(2, h / 4, h / 2).narrow(3, w / 4, w / 2).fill_(lo);
        out.push_back({{"occlusion", 0.5, 0, 0}, occluded});
    }
    return out;
}

double latencyMs(capture::Model& model, const torch::Tensor& one) {
    torch::NoGradGuard noGrad;
    for (int i = 0; i < 2; ++i)
        model.forward(one);
    const int runs = 10;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i)
        model.forward(one);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
    const size_t n = a.size();
    if (n < 3) return NAN;
    auto ranks = [n](const std::vector<double>& v) {
        std::vector<size_t> order(n);
        std::iota(order.begin(), order.end(), size_t(0));
        std::sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
        std::vector<double> r(n);
        for (size_t k = 0; k < n;) { // ties share their mean rank
            size_t e = k;
            while (e + 1 < n && v[order[e + 1]] == v[order[k]])
                ++e;
            for (size_t t = k; t <= e; ++t)
                r[order[t]] = 0.5 * double(k + e);
            k = e + 1;
        }
        return r;
    };
    const auto ra = ranks(a), rb = ranks(b);
    const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / double(n);
    const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / double(n);
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; ++i)
        sab += (ra[i] - ma) * (rb[i] - mb), saa += (ra[i] - ma) * (ra[i] - ma), sbb += (rb[i] - mb) * (rb[i] - mb);
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Diagnoses a person can act on.

std::string fixedNumber(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

std::string percent(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f%%", 100.0 * v);
    return b;
}

void diagnose(Neurogram& g) {
    const double gap = g.train.accuracy - g.validation.accuracy;
    char line[320];
    if (gap > 0.05) {
        std::snprintf(line, sizeof line, "overfitting: training accuracy %s against validation %s (gap %.1f points)",
                      percent(g.train.accuracy).c_str(), percent(g.validation.accuracy).c_str(), 100 * gap);
        g.diagnoses.push_back(line);
    }
    const double chance = g.classes > 0 ? 1.0 / double(g.classes) : 0.0;
    if (g.train.accuracy < chance + 0.25 * (1 - chance)) {
        std::snprintf(line, sizeof line, "underfitting: training accuracy %s is close to chance (%s); train longer "
                                         "or give the model more capacity",
                      percent(g.train.accuracy).c_str(), percent(chance).c_str());
        g.diagnoses.push_back(line);
    }
    for (const auto& s : g.stability)
        if (g.validation.accuracy - s.accuracy > 0.10) {
            const std::string what =
                s.corruption.rfind("data ", 0) == 0 ? s.corruption : s.corruption + " (" + fixedNumber(s.strength) + ")";
            std::snprintf(line, sizeof line, "fragile to %s: accuracy %s (%.1f points below validation)", what.c_str(),
                          percent(s.accuracy).c_str(), 100 * (g.validation.accuracy - s.accuracy));
            g.diagnoses.push_back(line);
        }
    // Unstable layers: the share of the model's accuracy above chance a layer carries moves by more than 0.2
    // under the strongest shift (only judged while the shifted accuracy is still 10 points above chance).
    double shiftedAccuracy = NAN;
    for (const auto& s : g.stability)
        if (std::isnan(shiftedAccuracy) || s.accuracy < shiftedAccuracy) shiftedAccuracy = s.accuracy;
    if (!std::isnan(shiftedAccuracy) && shiftedAccuracy - chance > 0.10)
        for (const auto& l : g.layers)
            if (l.ablated && !l.shift.empty() &&
                std::fabs(l.shiftedShare - l.share) > 0.2) {
                std::snprintf(line, sizeof line,
                              "unstable layer '%s': it carries %.0f%% of the accuracy above chance on the validation "
                              "data and %.0f%% under %s",
                              l.name.c_str(), 100 * l.share, 100 * l.shiftedShare, l.shift.c_str());
                g.diagnoses.push_back(line);
            }
    for (const auto& l : g.layers)
        if (l.zeroedAccuracy >= 0) {
            std::snprintf(line, sizeof line,
                          "pruning candidate '%s' (%s, %lld parameters, %s of the model): validation accuracy %s with "
                          "its output at its mean (%+.1f points), %s with it zeroed",
                          l.name.c_str(), l.type.c_str(), static_cast<long long>(l.params),
                          percent(double(l.params) / double(std::max<int64_t>(1, g.params))).c_str(),
                          percent(l.accuracy).c_str(), -100 * l.accuracyDrop, percent(l.zeroedAccuracy).c_str());
            g.diagnoses.push_back(line);
        }
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// 5. Entry point: KPIs, then each layer's output replaced by its mean (ablation).

Expected<Neurogram> computeNeurogram(capture::Model& model, const capture::Dataset& train,
                                     const capture::Dataset& validation, const NeurogramOptions& o) {
    const capture::Dataset& val = validation.size() > 0 ? validation : train;
    const int64_t nv = std::min(o.samples, val.size()), nt = std::min(o.samples, train.size());
    if (nv < 2 || nt < 2) return usage("a neurogram needs at least 2 labelled samples in each split");
    const torch::Tensor xv = val.inputs.narrow(0, 0, nv), yv = val.labels.narrow(0, 0, nv);
    const torch::Tensor xt = train.inputs.narrow(0, 0, nt), yt = train.labels.narrow(0, 0, nt);
    if (yv.min().item<int64_t>() < 0 || yt.min().item<int64_t>() < 0)
        return usage("a neurogram needs labelled data (the inputs have no labels)");
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    struct Restore {
        capture::Model& m;
        bool on;
        ~Restore() { m.setTraining(on); }
    } restore{model, wasTraining};

    Neurogram g;
    {
        torch::NoGradGuard noGrad;
        try {
            g.classes = model.forward(xv.narrow(0, 0, 1)).size(-1);
        } catch (const std::exception& e) {
            return usage("the model rejects the data: " + oneLineReason(e.what()));
        }
    }
    const int64_t maxLabel = std::max(yv.max().item<int64_t>(), yt.max().item<int64_t>());
    if (maxLabel >= g.classes)
        return usage("label " + std::to_string(maxLabel) + " is out of range: the model has " +
                     std::to_string(g.classes) + " outputs");
    ForwardFn intact = [&](const torch::Tensor& x) -> Expected<torch::Tensor> { return model.forward(x); };
    std::vector<std::pair<torch::Tensor, torch::Tensor>> shifts; // per stability KPI, its inputs and labels
    try {
        auto v = evaluateKpis(intact, xv, yv, g.classes, o.batch);
        if (!v) return v.error();
        g.validation = *v;
        auto t = evaluateKpis(intact, xt, yt, g.classes, o.batch);
        if (!t) return t.error();
        g.train = *t;
        if (o.stability)
            for (auto& [kpi, x] : corruptions(xv, o.seed)) {
                auto k = evaluateKpis(intact, x, yv, g.classes, o.batch);
                if (!k) return k.error();
                kpi.accuracy = k->accuracy;
                kpi.loss = k->loss;
                g.stability.push_back(kpi);
                shifts.push_back({x, yv});
            }
        if (o.shifted) {
            const int64_t ns = std::min(o.samples, o.shifted->size());
            if (ns < 2) return usage("the second data set '" + o.shiftedName + "' has fewer than 2 samples");
            const torch::Tensor xs = o.shifted->inputs.narrow(0, 0, ns), ys = o.shifted->labels.narrow(0, 0, ns);
            if (ys.min().item<int64_t>() < 0 || ys.max().item<int64_t>() >= g.classes)
                return usage("the second data set '" + o.shiftedName + "' has labels outside the model's " +
                             std::to_string(g.classes) + " classes");
            if (o.shifted->sampleShape != val.sampleShape)
                return usage("the second data set '" + o.shiftedName + "' has samples of shape " +
                             capture::shapeString(o.shifted->sampleShape) + ", the model's data " +
                             capture::shapeString(val.sampleShape));
            auto k = evaluateKpis(intact, xs, ys, g.classes, o.batch);
            if (!k) return k.error();
            g.stability.push_back({"data " + o.shiftedName, 0.0, k->accuracy, k->loss});
            shifts.push_back({xs, ys});
        }
    } catch (const std::exception& e) {
        return usage("the model rejects the data: " + oneLineReason(e.what()));
    }

    // Complexity.
    std::map<std::string, torch::Tensor> params;
    for (const auto& [name, p] : model.namedParameters()) {
        params[name] = p;
        g.params += p.numel();
    }
    auto net = capture::describeNetwork(model, val.sampleShape, val.inputs.scalar_type());
    if (net) g.flops = net->totalFlops();
    g.latencyMs = latencyMs(model, xv.narrow(0, 0, 1));

    // Layers: every captured layer in forward order, with parameters (Linear, Conv, BatchNorm, a Transformer
    // block) or without (activations, pooling, residual joins).
    const auto info = model.layerInfo();
    std::vector<Candidate> cands;
    if (!model.outputOnly())
        for (size_t i = 0; i < info.size(); ++i)
            cands.push_back({int(i), info[i].name, info[i].type, info[i].module, {}, 0, 0.0});
    try {
        if (auto st = layerMeans(model, xv, o.batch, cands); !st) return st.error();
        if (auto st = taylorEstimates(model, xv, yv, o.batch, cands); !st) return st.error();
    } catch (const std::exception& e) {
        return usage("the model rejects the data: " + oneLineReason(e.what()));
    }
    // The shift that costs the intact model most accuracy: each layer's ablation is measured there too.
    int worst = -1;
    for (size_t k = 0; k < g.stability.size(); ++k)
        if (worst < 0 || g.stability[k].accuracy < g.stability[size_t(worst)].accuracy) worst = int(k);
    for (const auto& c : cands) {
        LayerContribution l;
        l.name = c.name, l.type = c.type, l.module = c.module;
        if (!c.module.empty())
            for (const auto& [name, p] : params)
                if (name.rfind(c.module + ".", 0) == 0) l.params += p.numel();
        // The estimate needs the output's gradient, collected for batch-first outputs.
        l.taylorLossIncrease = c.batchDim == 0 ? c.taylor / double(nv) : NAN;
        if (!c.mean.defined()) {
            l.note = "its output is not one tensor per sample (computed in a loop or a branch)";
            g.layers.push_back(std::move(l));
            continue;
        }
        const torch::Tensor mean = c.replacement();
        ForwardFn ablated = [&](const torch::Tensor& x) { return model.forwardReplacing(c.name, mean, x); };
        auto k = evaluateKpis(ablated, xv, yv, g.classes, o.batch);
        if (!k) return k.error();
        l.ablated = true;
        l.accuracy = k->accuracy;
        l.loss = k->loss;
        l.accuracyDrop = g.validation.accuracy - k->accuracy;
        l.lossIncrease = k->loss - g.validation.loss;
        if (worst >= 0) {
            auto ks = evaluateKpis(ablated, shifts[size_t(worst)].first, shifts[size_t(worst)].second, g.classes, o.batch);
            if (!ks) return ks.error();
            const auto& s = g.stability[size_t(worst)];
            l.shift = s.corruption.rfind("data ", 0) == 0 ? s.corruption : s.corruption + " " + fixedNumber(s.strength);
            l.shiftedAccuracyDrop = s.accuracy - ks->accuracy;
            const double chance = 1.0 / double(std::max<int64_t>(1, g.classes));
            l.share = l.accuracyDrop / std::max(0.01, g.validation.accuracy - chance);
            l.shiftedShare = l.shiftedAccuracyDrop / std::max(0.01, s.accuracy - chance);
        }
        // Pruning candidates: at least 1 % of the parameters, at most half a point of accuracy when at its mean;
        // then measured with the output zeroed as well.
        if (double(l.params) >= 0.01 * double(g.params) && l.accuracyDrop <= 0.005) {
            const torch::Tensor zero = torch::zeros_like(mean);
            ForwardFn zeroed = [&](const torch::Tensor& x) { return model.forwardReplacing(c.name, zero, x); };
            auto kz = evaluateKpis(zeroed, xv, yv, g.classes, o.batch);
            if (!kz) return kz.error();
            l.zeroedAccuracy = kz->accuracy;
        }
        g.layers.push_back(std::move(l));
    }
    std::vector<double> measured, estimated;
    for (const auto& l : g.layers)
        if (l.ablated && std::isfinite(l.taylorLossIncrease))
            measured.push_back(l.lossIncrease), estimated.push_back(l.taylorLossIncrease);
    g.agreement = spearman(measured, estimated);
    diagnose(g);
    return g;
}

std::vector<std::string> diagnoseRun(const std::vector<NeurogramStep>& steps) {
    std::vector<std::string> out;
    if (steps.size() < 2) return out;
    char line[400];
    // Overfitting onset: validation loss lowest at a step before the last, and the accuracy gap wider at the end.
    size_t best = 0;
    for (size_t i = 1; i < steps.size(); ++i)
        if (steps[i].graph.validation.loss < steps[best].graph.validation.loss) best = i;
    auto gap = [&](size_t i) { return steps[i].graph.train.accuracy - steps[i].graph.validation.accuracy; };
    if (best + 1 < steps.size() && gap(steps.size() - 1) > 0.05 && gap(steps.size() - 1) > gap(best) + 0.02) {
        std::snprintf(line, sizeof line,
                      "overfitting from step %lld: validation loss was lowest there (%.4f; %.4f at the end) and the "
                      "training-validation accuracy gap grew from %.1f to %.1f points",
                      static_cast<long long>(steps[best].step), steps[best].graph.validation.loss,
                      steps.back().graph.validation.loss, 100 * gap(best), 100 * gap(steps.size() - 1));
        out.push_back(line);
    }
    // Layers whose share of the accuracy above chance moved by more than 0.3 between the first checkpoint where the
    // model is 10 points above chance and the last (a raw accuracy drop grows with the accuracy itself).
    const double chance = 1.0 / double(std::max<int64_t>(1, steps.back().graph.classes));
    size_t from = 0;
    while (from < steps.size() && steps[from].graph.validation.accuracy - chance < 0.10)
        ++from;
    if (from + 1 >= steps.size()) return out;
    auto share = [&](const Neurogram& g, const LayerContribution& l) {
        return l.accuracyDrop / std::max(0.01, g.validation.accuracy - chance);
    };
    for (const auto& l : steps.back().graph.layers) {
        for (const auto& f : steps[from].graph.layers) {
            if (f.name != l.name || !f.ablated || !l.ablated) continue;
            const double a = share(steps[from].graph, f), b = share(steps.back().graph, l);
            if (std::fabs(b - a) > 0.3) {
                std::snprintf(line, sizeof line,
                              "layer '%s' %s over the run: it carried %.0f%% of the accuracy above chance at step %lld "
                              "and %.0f%% at step %lld",
                              l.name.c_str(), b > a ? "became essential" : "lost importance", 100 * a,
                              static_cast<long long>(steps[from].step), 100 * b, static_cast<long long>(steps.back().step));
                out.push_back(line);
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// 6. The picture.

namespace {

using detail::fillRect;

// A horizontal S-curve (cubic Bezier) from (x0, y0) to (x1, y1), stroked by stamping anti-aliased discs.
void link(ImageRgba8& img, float x0, float y0, float x1, float y1, float width, Rgb8 c, float alpha) {
    const float mx = (x0 + x1) / 2, length = std::hypot(x1 - x0, y1 - y0) * 1.3f;
    const float r = std::max(0.5f, width / 2);
    for (int s = 0; s <= int(length); ++s) {
        const float t = float(s) / std::max(1.0f, length), u = 1 - t;
        const float x = u * u * u * x0 + 3 * u * u * t * mx + 3 * u * t * t * mx + t * t * t * x1;
        const float y = u * u * u * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y1 + t * t * t * y1;
        for (int py = int(y - r - 1); py <= int(y + r + 1); ++py)
            for (int px = int(x - r - 1); px <= int(x + r + 1); ++px) {
                if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
                const float a = alpha * std::clamp(r + 0.5f - std::hypot(float(px) + 0.5f - x, float(py) + 0.5f - y), 0.0f, 1.0f);
                std::uint8_t* d = img.at(px, py);
                // max-blend: overlapping stamps of one curve do not darken it
                const float cur = a;
                d[0] = std::uint8_t(std::max<float>(d[0], d[0] + (c.r - d[0]) * cur));
                d[1] = std::uint8_t(std::max<float>(d[1], d[1] + (c.g - d[1]) * cur));
                d[2] = std::uint8_t(std::max<float>(d[2], d[2] + (c.b - d[2]) * cur));
            }
    }
}

std::string fixed(const char* format, double v) {
    char b[64];
    std::snprintf(b, sizeof b, format, v);
    return b;
}

std::string count(int64_t n) {
    char b[32];
    if (n >= 1000000000) std::snprintf(b, sizeof b, "%.2fG", double(n) / 1e9);
    else if (n >= 1000000) std::snprintf(b, sizeof b, "%.2fM", double(n) / 1e6);
    else if (n >= 10000) std::snprintf(b, sizeof b, "%.1fk", double(n) / 1e3);
    else std::snprintf(b, sizeof b, "%lld", static_cast<long long>(n));
    return b;
}

} // namespace

ImageRgba8 renderNeurogram(const Neurogram& g, const std::string& title, int width) {
    const Rgb8 bg{24, 24, 28}, text{230, 230, 235}, dim{160, 160, 170}, box{44, 44, 52};
    const Rgb8 accColour{230, 80, 70}, lossColour{240, 170, 60}, paramColour{110, 130, 170};
    struct KpiNode {
        std::string label, value;
    };
    std::vector<KpiNode> kpis = {{"validation accuracy", percent(g.validation.accuracy)},
                                 {"validation loss", fixed("%.4f", g.validation.loss)},
                                 {"training accuracy", percent(g.train.accuracy)},
                                 {"macro F1", fixed("%.3f", g.validation.macroF1)}};
    for (const auto& s : g.stability)
        kpis.push_back({s.corruption.rfind("data ", 0) == 0 ? s.corruption : s.corruption + " " + fixed("%g", s.strength),
                        percent(s.accuracy)});
    kpis.push_back({"parameters", count(g.params)});
    kpis.push_back({"FLOPs per sample", count(g.flops)});
    kpis.push_back({"latency per sample", fixed("%.2f ms", g.latencyMs)});
    const int top = 64, layerX = 16, layerW = 540, kpiW = 250, kpiX = width - 16 - kpiW;
    const int layerRows = int(g.layers.size()), kpiRowH = 34;
    const int bodyH = std::max(layerRows * 22, int(kpis.size()) * kpiRowH);
    // Layer rows spread over the body like the KPIs (at most 40 px apart), at least 22 px.
    const int rowH = std::clamp(bodyH / std::max(1, layerRows), 22, 40);
    const int height = top + bodyH + 40 + int(g.diagnoses.size() + 1) * 16 + 16;
    ImageRgba8 img(width, height);
    fillRect(img, 0, 0, width, height, bg);
    drawText(img, 16, 12, title, text);
    drawText(img, 16, 30, "links: accuracy drop (red) and loss increase (orange) with the layer's output replaced by its "
                          "mean; parameters (blue)", dim);
    drawText(img, layerX, top - 16, "layer (type, parameters)   accuracy drop | loss increase (first-order estimate)", dim);
    // KPI nodes, spread over the body's height.
    const float kpiStep = float(bodyH) / float(std::max<size_t>(1, kpis.size()));
    std::vector<float> kpiY;
    for (size_t k = 0; k < kpis.size(); ++k) {
        const int y = top + int(float(k) * kpiStep);
        kpiY.push_back(float(y) + 13);
        fillRect(img, kpiX, y, kpiW, 26, box);
        drawText(img, kpiX + 8, y + 7, kpis[k].label, dim);
        drawText(img, kpiX + kpiW - 8 - textWidth(kpis[k].value), y + 7, kpis[k].value, text);
    }
    double maxDrop = 1e-9, maxLoss = 1e-9;
    for (const auto& l : g.layers)
        maxDrop = std::max(maxDrop, l.accuracyDrop), maxLoss = std::max(maxLoss, l.lossIncrease);
    for (size_t i = 0; i < g.layers.size(); ++i) {
        const auto& l = g.layers[i];
        const float y = float(top + int(i) * rowH) + 9.5f;
        const float x0 = float(layerX + layerW);
        if (l.ablated && l.accuracyDrop > 0)
            link(img, x0, y, float(kpiX), kpiY[0], 1 + 9 * float(l.accuracyDrop / maxDrop), accColour, 0.55f);
        if (l.ablated && l.lossIncrease > 0)
            link(img, x0, y, float(kpiX), kpiY[1], 1 + 9 * float(l.lossIncrease / maxLoss), lossColour, 0.45f);
        if (g.params > 0 && l.params > 0)
            link(img, x0, y, float(kpiX), kpiY[kpis.size() - 3], 1 + 6 * float(double(l.params) / double(g.params)),
                 paramColour, 0.35f);
    }
    for (size_t i = 0; i < g.layers.size(); ++i) { // nodes over the links
        const auto& l = g.layers[i];
        const int y = top + int(i) * rowH;
        const float heat = l.ablated ? float(std::clamp(l.accuracyDrop / maxDrop, 0.0, 1.0)) : 0.0f;
        fillRect(img, layerX, y, layerW, 19, box);
        fillRect(img, layerX, y, 4, 19, l.ablated ? Rgb8{std::uint8_t(80 + 150 * heat), 70, 70} : Rgb8{70, 70, 80});
        std::string name = l.name;
        while (name.size() > 4 && textWidth(name) > 155)
            name = name.substr(0, name.size() - 3) + "..";
        drawText(img, layerX + 10, y + 4, name, text);
        drawText(img, layerX + 170, y + 4, l.type + ", " + count(l.params), dim);
        const std::string numbers = l.ablated ? fixed("%+.1f pt", 100 * l.accuracyDrop) + " | " +
                                                    fixed("%+.3f", l.lossIncrease) +
                                                    (l.note.empty() ? " (" + fixed("%+.3f", l.taylorLossIncrease) + ")" : "")
                                              : "not ablated";
        drawText(img, layerX + layerW - 8 - textWidth(numbers), y + 4, numbers, l.ablated ? text : dim);
    }
    int y = top + bodyH + 24;
    const std::string agreement = std::isnan(g.agreement) ? std::string("n/a (fewer than 3 layers)")
                                                           : fixed("%.2f", g.agreement);
    drawText(img, 16, y, "ablation vs first-order estimate, rank correlation over layers: " + agreement, dim);
    for (const auto& d : g.diagnoses) {
        y += 16;
        drawText(img, 16, y, "- " + d, text);
    }
    if (g.diagnoses.empty()) drawText(img, 16, y + 16, "- nothing to act on", dim);
    return img;
}


namespace {
namespace run_picture { // named: this module is a unity build

void segment(ImageRgba8& img, int x0, int y0, int x1, int y1, Rgb8 c, int thick = 2) {
    const int steps = std::max({std::abs(x1 - x0), std::abs(y1 - y0), 1});
    for (int k = 0; k <= steps; ++k) {
        const int x = x0 + (x1 - x0) * k / steps, y = y0 + (y1 - y0) * k / steps;
        fillRect(img, x - thick / 2, y - thick / 2, thick, thick, c);
    }
}

} // namespace run_picture
} // namespace

ImageRgba8 renderNeurogramRun(const std::vector<NeurogramStep>& steps, const std::vector<std::string>& diagnoses,
                              const std::string& title, int width) {
    const Rgb8 bg{24, 24, 28}, text{230, 230, 235}, dim{160, 160, 170}, axis{70, 70, 80};
    std::vector<std::string> layers;
    if (!steps.empty())
        for (const auto& l : steps.back().graph.layers)
            layers.push_back(l.name);
    const int left = 150, right = 190, plotW = width - left - right, plotTop = 60, plotH = 260;
    const int stripTop = plotTop + plotH + 50, rowH = 18;
    const int height = stripTop + int(layers.size()) * rowH + 40 + int(diagnoses.size() + 1) * 16 + 16;
    ImageRgba8 img(width, height);
    fillRect(img, 0, 0, width, height, bg);
    drawText(img, 16, 12, title, text);
    drawText(img, 16, 30, "accuracy at each checkpoint (top); each layer's accuracy drop with its output at its mean "
                          "(bottom, brighter: more)", dim);
    if (steps.empty()) return img;
    const double s0 = double(steps.front().step), s1 = double(std::max(steps.back().step, steps.front().step + 1));
    auto xAt = [&](double step) { return left + int((step - s0) / (s1 - s0) * plotW); };
    auto yAt = [&](double acc) { return plotTop + plotH - int(std::clamp(acc, 0.0, 1.0) * plotH); };
    for (int k = 0; k <= 4; ++k) {
        const int y = yAt(k / 4.0);
        fillRect(img, left, y, plotW, 1, axis);
        drawText(img, left - 44, y - 6, percent(k / 4.0), dim);
    }
    // Curves: validation, training, then each stability KPI.
    struct Curve {
        std::string label;
        Rgb8 colour;
        std::function<double(const Neurogram&)> value;
    };
    std::vector<Curve> curves = {{"validation", {90, 170, 250}, [](const Neurogram& g) { return g.validation.accuracy; }},
                                 {"training", {240, 170, 60}, [](const Neurogram& g) { return g.train.accuracy; }}};
    const Rgb8 palette[] = {{150, 110, 210}, {110, 190, 140}, {220, 110, 150}, {170, 170, 90}, {100, 180, 200}, {200, 130, 90}};
    const auto& st = steps.back().graph.stability;
    for (size_t k = 0; k < st.size(); ++k) {
        const std::string label = st[k].corruption.rfind("data ", 0) == 0 ? st[k].corruption
                                                                           : st[k].corruption + " " + fixed("%g", st[k].strength);
        curves.push_back({label, palette[k % 6], [k](const Neurogram& g) {
                              return k < g.stability.size() ? g.stability[k].accuracy : NAN;
                          }});
    }
    for (size_t c = 0; c < curves.size(); ++c) {
        const int thick = c < 2 ? 3 : 2;
        for (size_t i = 0; i < steps.size(); ++i) {
            const double v = curves[c].value(steps[i].graph);
            if (std::isnan(v)) continue;
            const int x = xAt(double(steps[i].step)), y = yAt(v);
            fillRect(img, x - 2, y - 2, 5, 5, curves[c].colour);
            if (i > 0) {
                const double p = curves[c].value(steps[i - 1].graph);
                if (!std::isnan(p)) run_picture::segment(img, xAt(double(steps[i - 1].step)), yAt(p), x, y, curves[c].colour, thick);
            }
        }
        const int ly = plotTop + int(c) * 16;
        fillRect(img, width - right + 14, ly + 4, 14, 4, curves[c].colour);
        drawText(img, width - right + 34, ly, curves[c].label, text);
    }
    // Step ticks.
    for (size_t i = 0; i < steps.size(); ++i) {
        const int x = xAt(double(steps[i].step));
        fillRect(img, x, plotTop + plotH, 1, 4, dim);
        if (steps.size() <= 12 || i % ((steps.size() + 11) / 12) == 0) {
            const std::string s = std::to_string(steps[i].step);
            drawText(img, x - textWidth(s) / 2, plotTop + plotH + 6, s, dim);
        }
    }
    drawText(img, left + plotW / 2 - textWidth("step") / 2, plotTop + plotH + 22, "step", dim);
    // Heat strip: rows are layers, columns the checkpoints (each column reaches halfway to its neighbours).
    for (size_t r = 0; r < layers.size(); ++r) {
        const int y = stripTop + int(r) * rowH;
        std::string name = layers[r];
        while (name.size() > 3 && textWidth(name) > left - 24) name = name.substr(0, name.size() - 3) + "..";
        drawText(img, 16, y + 2, name, text);
        for (size_t i = 0; i < steps.size(); ++i) {
            const int x = xAt(double(steps[i].step));
            const int xl = i == 0 ? x - 6 : (x + xAt(double(steps[i - 1].step))) / 2;
            const int xr = i + 1 == steps.size() ? x + 6 : (x + xAt(double(steps[i + 1].step))) / 2;
            double v = NAN;
            for (const auto& l : steps[i].graph.layers)
                if (l.name == layers[r] && l.ablated) v = l.accuracyDrop;
            const Rgb8 c = std::isnan(v) ? Rgb8{50, 50, 56} : sampleColormap(Colormap::Inferno, float(std::clamp(v, 0.0, 1.0)));
            fillRect(img, xl, y, std::max(1, xr - xl - 1), rowH - 2, c);
        }
        const auto& l = steps.back().graph.layers;
        for (const auto& x : l)
            if (x.name == layers[r] && x.ablated)
                drawText(img, width - right + 14, y + 2, "-" + fixed("%.1f", 100 * x.accuracyDrop) + " pt at the end", dim);
    }
    int y = stripTop + int(layers.size()) * rowH + 20;
    drawText(img, 16, y, diagnoses.empty() ? "no diagnoses over the run" : "over the run:", dim);
    for (const auto& d : diagnoses)
        drawText(img, 16, y += 16, "- " + d, text);
    return img;
}

} // namespace ts::explain
