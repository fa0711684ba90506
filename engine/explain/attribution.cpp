// Attribution methods. Sections: 1. names and the explained score  2. gradient methods  3. LRP rules
// 4. LRP as a modified backward pass  5. entry point.
//
// LRP is computed as one backward pass whose gradients are modified by tensor hooks on the captured activations
// (relevance at a neuron = activation x modified gradient):
// - epsilon rule at the output z of a locally linear layer (Linear, Conv, BatchNorm, average pooling, add):
//   the incoming gradient g becomes g * z / (z + eps sign z), so the layer's own backward (W^T) hands each
//   input x_j the relevance x_j * sum_k w_jk R_k / (z_k + eps sign z_k);
// - ReLU, max pooling, dropout and flatten pass relevance on unchanged (their gradient routes it);
// - other element-wise activations with f(0) = 0 (ReLU6/Hardtanh, GELU, SiLU, Hardswish, Tanh, ELU, LeakyReLU)
//   pass it on unchanged too (the identity rule): their gradient would not (a saturated ReLU6 unit passes none),
//   so the gradient reaching their input, when it feeds nothing else, is replaced by g * a / z (relevance at the
//   input z * g' = a * g, the output's);
// - a Linear/Conv whose only consumer is a BatchNorm is folded into it: the rule applies at the BatchNorm's
//   output, with the combined weights;
// - alpha-beta (Linear/Conv modules): the hook at z computes the input's share itself, from the module run
//   alone on the positive and negative parts of its input with the positive and negative parts of its
//   weights, passes zero through the layer and adds that share to the input's gradient with a hook there.
// With eps = 0 every rule is the identity on gradients, so LRP-0 equals gradient x input for networks of these
// layers (a known identity the tests check).
#include "engine/explain/attribution.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "engine/capture/network.hpp"
#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {

using detail::isBatchNorm;
using detail::isWeightLayer;
using detail::lower;
using detail::usage;

std::string firstLine(const std::string& s) {
    return oneLineReason(s);
}

// ---------------------------------------------------------------------------------------------------------
// 1. Names and the explained score.

// The layer whose output holds the logits: the model's output, or the input of a trailing softmax.
struct Explained {
    int layer = -1; // index into layerInfo/activation list of the logits, -1: the model output
    std::string what = "output";
};

bool isSoftmax(const std::string& type) {
    const std::string t = lower(type);
    return t == "softmax" || t == "log_softmax" || t == "logsoftmax";
}

struct Layers {
    std::vector<capture::Model::LayerInfo> info;
    std::vector<int> activation; // per info entry: index into ForwardCapture::activations, -1 when absent
};

Layers matchLayers(capture::Model& model, const capture::ForwardCapture& fc) {
    Layers out;
    out.info = model.layerInfo();
    if (out.info.empty()) { // chained in forward order, as describeNetwork does
        for (size_t i = 0; i < fc.activations.size(); ++i)
            out.info.push_back({fc.activations[i].first, "", "", {static_cast<int>(i) - 1}});
    }
    std::map<std::string, int> byName;
    for (size_t i = 0; i < fc.activations.size(); ++i)
        byName[fc.activations[i].first] = static_cast<int>(i);
    for (const auto& l : out.info) {
        auto it = byName.find(l.name);
        out.activation.push_back(it == byName.end() ? -1 : it->second);
    }
    return out;
}

Explained findExplained(const Layers& layers) {
    Explained e;
    if (layers.info.empty()) return e;
    const auto& last = layers.info.back();
    if (isSoftmax(last.type) && last.inputs.size() == 1 && last.inputs[0] >= 0 &&
        layers.activation[size_t(last.inputs[0])] >= 0) {
        e.layer = last.inputs[0];
        e.what = "logits before '" + last.name + "'";
    }
    return e;
}

torch::Tensor logitsOf(const capture::ForwardCapture& fc, const Layers& layers, const Explained& e) {
    if (e.layer < 0) return fc.output;
    return fc.activations[size_t(layers.activation[size_t(e.layer)])].second;
}

Expected<capture::ForwardCapture> runCapture(capture::Model& model, const torch::Tensor& x) {
    try {
        return model.forwardCapture(x);
    } catch (const std::exception& ex) {
        return usage("the model rejects an input of shape " + capture::shapeString(x.sizes().vec()) + ": " +
                     firstLine(ex.what()));
    }
}

Status checkLogits(const torch::Tensor& logits, int64_t batch) {
    if (!logits.defined() || logits.dim() != 2 || logits.size(0) != batch)
        return usage("the model's output is " +
                     (logits.defined() ? capture::shapeString(logits.sizes().vec()) : std::string("not a tensor")) +
                     "; explanations need class scores [N, classes]");
    return {};
}

// ---------------------------------------------------------------------------------------------------------
// 2. Gradient methods: the gradient of the target's logit with respect to a batch of inputs.

struct GradientBatch {
    torch::Tensor grad;  // the inputs' shape
    torch::Tensor score; // [N]
};

Expected<GradientBatch> scoreGradient(capture::Model& model, const torch::Tensor& inputs, int64_t target) {
    torch::Tensor x = inputs.detach().clone().requires_grad_(true);
    auto fc = runCapture(model, x);
    if (!fc) return fc.error();
    const Layers layers = matchLayers(model, *fc);
    torch::Tensor logits = logitsOf(*fc, layers, findExplained(layers));
    if (auto st = checkLogits(logits, x.size(0)); !st) return st.error();
    torch::Tensor score = logits.select(1, target);
    auto grads = torch::autograd::grad({score.sum()}, {x}, {}, false, false, true);
    GradientBatch out;
    out.grad = grads[0].defined() ? grads[0].detach() : torch::zeros_like(x);
    out.score = score.detach();
    return out;
}

Expected<torch::Tensor> smoothGrad(capture::Model& model, const torch::Tensor& x, int64_t target,
                                   const AttributionOptions& o) {
    const double range = (x.max() - x.min()).item<double>();
    const double sigma = o.smoothNoise * (range > 0 ? range : 1.0);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    torch::Tensor sum = torch::zeros_like(x);
    for (int done = 0; done < o.smoothSamples;) {
        const int n = static_cast<int>(std::min<int64_t>(o.chunk, o.smoothSamples - done));
        std::vector<int64_t> shape = x.sizes().vec();
        shape[0] = n;
        torch::Tensor noise = at::normal(0.0, sigma, shape, gen, torch::kFloat32);
        auto g = scoreGradient(model, x.expand(shape) + noise, target);
        if (!g) return g.error();
        sum += g->grad.sum(0, true);
        done += n;
    }
    return sum / double(o.smoothSamples);
}

// Trapezoid rule over steps + 1 points from the baseline to the input; also the baseline's score.
Expected<std::pair<torch::Tensor, double>> integratedGradients(capture::Model& model, const torch::Tensor& x,
                                                               int64_t target, const AttributionOptions& o) {
    torch::Tensor base = o.igBaseline.defined() ? o.igBaseline.to(torch::kFloat32) : torch::zeros_like(x);
    if (!base.sizes().equals(x.sizes()))
        return usage("the baseline's shape " + capture::shapeString(base.sizes().vec()) + " is not the input's " +
                     capture::shapeString(x.sizes().vec()));
    const int m = std::max(1, o.igSteps);
    torch::Tensor sum = torch::zeros_like(x);
    double baseScore = 0.0;
    for (int k0 = 0; k0 <= m;) {
        const int n = static_cast<int>(std::min<int64_t>(o.chunk, m + 1 - k0));
        torch::Tensor alphas = torch::arange(k0, k0 + n, torch::kFloat64).div(m).to(torch::kFloat32);
        std::vector<int64_t> view(size_t(x.dim()), 1);
        view[0] = n;
        torch::Tensor points = base + alphas.view(view) * (x - base);
        auto g = scoreGradient(model, points, target);
        if (!g) return g.error();
        torch::Tensor w = torch::full({n}, 1.0f / float(m));
        if (k0 == 0) {
            w[0] = 0.5f / float(m);
            baseScore = g->score[0].item<double>();
        }
        if (k0 + n == m + 1) w[n - 1] = 0.5f / float(m);
        sum += (g->grad * w.view(view)).sum(0, true);
        k0 += n;
    }
    return std::make_pair((x - base) * sum, baseScore);
}

// ---------------------------------------------------------------------------------------------------------
// 3. LRP rules per layer type.

enum class Rule { Pass, Identity, Epsilon, Unsupported };

Rule ruleOf(const std::string& type) {
    static const std::set<std::string> pass = {
        "relu", "relu_", "maxpool1d", "maxpool2d", "maxpool3d", "max_pool1d", "max_pool2d", "adaptivemaxpool1d",
        "adaptivemaxpool2d", "adaptive_max_pool2d", "dropout", "dropout1d", "dropout2d", "dropout3d", "flatten",
        "unflatten", "identity", "cat"};
    static const std::set<std::string> linear = {
        "linear", "conv1d", "conv2d", "conv3d", "_convolution", "batchnorm1d", "batchnorm2d", "batchnorm3d",
        "batch_norm", "avgpool1d", "avgpool2d", "avgpool3d", "avg_pool1d", "avg_pool2d", "adaptiveavgpool1d",
        "adaptiveavgpool2d", "adaptiveavgpool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "add", "sub"};
    static const std::set<std::string> identity = {
        "relu6", "hardtanh", "hardtanh_", "gelu", "silu", "silu_", "hardswish", "hardswish_", "tanh", "tanh_",
        "elu", "elu_", "leakyrelu", "leaky_relu", "leaky_relu_"};
    const std::string t = lower(type);
    if (pass.count(t)) return Rule::Pass;
    if (identity.count(t)) return Rule::Identity;
    if (linear.count(t)) return Rule::Epsilon;
    return Rule::Unsupported;
}

// What the LRP pass does at each layer.
struct LayerPlan {
    Rule rule = Rule::Pass;
    bool alphaBeta = false; // a Linear/Conv module under the alpha-beta rule (at `ruleAt`'s output)
    int foldedInto = -1;    // a Linear/Conv whose only consumer is this BatchNorm
    int foldedFrom = -1;    // a BatchNorm: the Linear/Conv folded into it
    int identityInput = -1; // an Identity layer: its input layer, whose gradient becomes g * a / z
};

// Layers that lead to the logits (the others do not get relevance), the rules, the foldings. Errors name the
// first layer on the way without a rule.
Expected<std::vector<LayerPlan>> planLrp(capture::Model& model, const Layers& layers, int logitsLayer,
                                         Method method, std::vector<std::string>& notes) {
    if (model.outputOnly())
        return usage("LRP needs the model's layers, and those of '" + model.name() +
                     "' could not be captured; use --method gradient, gradxinput, smoothgrad or ig");
    const auto cov = model.coverage();
    if (!cov.missing.empty())
        return usage("LRP needs every layer of '" + model.name() + "', and " + cov.missing.front() +
                     " is not captured; use --method gradient, gradxinput, smoothgrad or ig");
    const auto& info = layers.info;
    const int n = static_cast<int>(info.size());
    std::vector<bool> onPath(size_t(n), false);
    onPath[size_t(logitsLayer)] = true;
    for (int i = logitsLayer; i >= 0; --i)
        if (onPath[size_t(i)])
            for (int in : info[size_t(i)].inputs)
                if (in >= 0 && in < n) onPath[size_t(in)] = true;
    std::vector<int> consumers(size_t(n), 0);
    for (int i = 0; i <= logitsLayer; ++i)
        if (onPath[size_t(i)])
            for (int in : info[size_t(i)].inputs)
                if (in >= 0 && in < n) ++consumers[size_t(in)];
    std::vector<LayerPlan> plan(static_cast<size_t>(n));
    for (int i = 0; i <= logitsLayer; ++i) {
        if (!onPath[size_t(i)]) continue;
        const auto& l = info[size_t(i)];
        plan[size_t(i)].rule = ruleOf(l.type);
        if (plan[size_t(i)].rule == Rule::Unsupported && !l.op.empty()) plan[size_t(i)].rule = ruleOf(l.op);
        if (plan[size_t(i)].rule == Rule::Unsupported)
            return usage("LRP has no rule for layer '" + l.name + "' (" + l.type +
                         "); use --method gradient, gradxinput, smoothgrad or ig for this model");
        if (plan[size_t(i)].rule == Rule::Identity) {
            // The input must be a captured layer that feeds only this one (its whole gradient is replaced);
            // otherwise the relevance follows the activation's gradient.
            const int in = l.inputs.size() == 1 ? l.inputs[0] : -1;
            if (in >= 0 && consumers[size_t(in)] == 1) {
                plan[size_t(i)].identityInput = in;
            } else {
                plan[size_t(i)].rule = Rule::Pass;
                notes.push_back("'" + l.name + "' (" + l.type + ") feeds on a shared input: its relevance follows its "
                                "gradient");
            }
        }
        if (method == Method::LrpAlphaBeta && isWeightLayer(l.type)) {
            if (l.module.empty())
                notes.push_back("'" + l.name + "' is a functional " + l.type + " (no module): epsilon rule");
            else if (l.inputs.size() != 1)
                notes.push_back("'" + l.name + "' has " + std::to_string(l.inputs.size()) + " inputs: epsilon rule");
            else
                plan[size_t(i)].alphaBeta = true;
        }
    }
    for (int b = 0; b <= logitsLayer; ++b) {
        const auto& l = info[size_t(b)];
        if (!onPath[size_t(b)] || !isBatchNorm(l.type) || l.inputs.size() != 1 || l.inputs[0] < 0) continue;
        const int c = l.inputs[0];
        if (!isWeightLayer(info[size_t(c)].type) || consumers[size_t(c)] != 1) continue;
        plan[size_t(c)].foldedInto = b;
        plan[size_t(b)].foldedFrom = c;
        if (plan[size_t(c)].alphaBeta) { // the combined layer takes the alpha-beta rule at the BatchNorm
            plan[size_t(c)].alphaBeta = false;
            plan[size_t(b)].alphaBeta = true;
        }
    }
    return plan;
}

// ---------------------------------------------------------------------------------------------------------
// 4. LRP as a modified backward pass.

class LrpPass {
  public:
    LrpPass(capture::Model& model, const AttributionOptions& o, const Layers& layers,
            const capture::ForwardCapture& fc, std::vector<LayerPlan> plan, torch::Tensor input)
        : m_model(model), m_o(o), m_layers(layers), m_fc(fc), m_plan(std::move(plan)), m_input(std::move(input)) {
        for (const auto& [name, t] : model.namedParameters())
            m_params[name] = t;
        m_relevance.resize(m_plan.size());
        m_sums.assign(m_plan.size(), std::numeric_limits<double>::quiet_NaN());
    }

    // Registers the hooks; then the caller runs backward from the logits.
    Status install() {
        const int n = static_cast<int>(m_plan.size());
        // First the hooks that add alpha-beta shares to a layer input's gradient, so that the input's own
        // rule (registered next) sees its whole gradient.
        std::set<int> shareInputs;
        for (int i = 0; i < n; ++i)
            if (m_plan[size_t(i)].alphaBeta) shareInputs.insert(weightInput(i));
        for (int in : shareInputs) {
            if (in < 0) continue; // the model input: its share is added by inputGradient()
            torch::Tensor t = activation(in);
            if (!t.defined()) return usage("LRP: the input of an alpha-beta layer was not captured");
            t.register_hook([this, in](torch::Tensor g) {
                auto it = m_shares.find(in);
                return it == m_shares.end() ? g : g + it->second.view(g.sizes());
            });
        }
        // Identity layers: their input's gradient becomes the output's gradient times a / z (before the input's
        // own rule sees it). The output's gradient is kept by a hook on the output, which backward reaches first;
        // later layers first, so that in a chain of two the output's gradient is replaced before it is kept.
        for (int i = n - 1; i >= 0; --i) {
            const int in = m_plan[size_t(i)].identityInput;
            if (in < 0) continue;
            torch::Tensor z = activation(in), a = activation(i);
            if (!z.defined() || !a.defined() || !z.requires_grad() || !a.requires_grad() || z.sizes() != a.sizes() ||
                z.is_same(a))
                return usage("LRP: the input of '" + m_layers.info[size_t(i)].name + "' was not captured apart from it");
            a.register_hook([this, i](torch::Tensor g) {
                m_identityGradients[i] = g;
                return g;
            });
            z.register_hook([this, i, in](torch::Tensor g) {
                auto it = m_identityGradients.find(i);
                if (it == m_identityGradients.end()) return g;
                torch::NoGradGuard noGrad;
                const torch::Tensor zi = activation(in).detach(), ai = activation(i).detach();
                return it->second * torch::where(zi == 0, torch::zeros_like(zi), ai / zi);
            });
        }
        // Rule hooks, later layers first: when two layers share one tensor (a module that returns its input),
        // the later one sees the gradient first, as the backward pass would.
        for (int i = n - 1; i >= 0; --i) {
            torch::Tensor z = activation(i);
            if (!z.defined() || !z.requires_grad()) continue;
            z.register_hook([this, i](torch::Tensor g) { return onGradient(i, g); });
        }
        return {};
    }

    Status error() const { return m_error; }

    // The model input's gradient from the backward pass plus its alpha-beta share, when its consumer takes the
    // alpha-beta rule (autograd::grad hands back a leaf's gradient without running the leaf's hooks).
    torch::Tensor inputGradient(const torch::Tensor& g) const {
        auto it = m_shares.find(-1);
        if (it == m_shares.end()) return g;
        return g.defined() ? g + it->second.view(g.sizes()) : it->second.view(m_input.sizes());
    }

    std::vector<LayerRelevance> relevances(bool keep) const {
        std::vector<LayerRelevance> out;
        for (size_t i = 0; i < m_plan.size(); ++i) {
            if (std::isnan(m_sums[i])) continue;
            const auto& l = m_layers.info[i];
            // A folded Linear/Conv is one layer with its BatchNorm: its output's relevance is the BatchNorm's.
            const int folded = m_plan[i].foldedInto;
            const size_t at = folded >= 0 && !std::isnan(m_sums[size_t(folded)]) ? size_t(folded) : i;
            LayerRelevance r{l.name, l.type, ruleName(int(i)), m_sums[at], {}};
            if (keep) r.relevance = m_relevance[at];
            out.push_back(std::move(r));
        }
        return out;
    }

  private:
    torch::Tensor activation(int layer) const {
        if (layer < 0 || size_t(layer) >= m_layers.activation.size()) return {};
        const int a = m_layers.activation[size_t(layer)];
        return a < 0 ? torch::Tensor() : m_fc.activations[size_t(a)].second;
    }

    // The Linear/Conv whose weights an alpha-beta layer uses (itself, or the one folded into this BatchNorm),
    // and that layer's input.
    int weightLayer(int i) const { return m_plan[size_t(i)].foldedFrom >= 0 ? m_plan[size_t(i)].foldedFrom : i; }
    int weightInput(int i) const { return m_layers.info[size_t(weightLayer(i))].inputs.at(0); }

    std::string ruleName(int i) const {
        const auto& p = m_plan[size_t(i)];
        if (p.foldedInto >= 0) return "folded into " + m_layers.info[size_t(p.foldedInto)].name;
        if (p.alphaBeta) return "alpha-beta";
        return p.rule == Rule::Pass ? "pass" : p.rule == Rule::Identity ? "identity" : "epsilon";
    }

    torch::Tensor onGradient(int i, const torch::Tensor& g) {
        torch::NoGradGuard noGrad;
        const torch::Tensor z = activation(i).detach();
        const torch::Tensor r = z * g;
        m_sums[size_t(i)] = r.sum().item<double>();
        if (m_o.keepLayerMaps) m_relevance[size_t(i)] = r.clone();
        const auto& p = m_plan[size_t(i)];
        if (p.foldedInto >= 0 || p.rule == Rule::Pass || p.rule == Rule::Identity) return g;
        if (p.alphaBeta) {
            if (m_error) { // one failure is enough; pass zeros on
                auto share = alphaBetaShare(i, r);
                if (!share) {
                    m_error = share.error();
                } else {
                    auto& s = m_shares[weightInput(i)];
                    s = s.defined() ? s + *share : *share;
                }
            }
            return torch::zeros_like(g);
        }
        const double eps = m_o.epsilon;
        const torch::Tensor d = torch::where(z >= 0, z + eps, z - eps);
        // d = 0 only for eps = 0 and z = 0, where the relevance is zero: the gradient passes unchanged.
        return g * torch::where(d == 0, torch::ones_like(z), z / d);
    }

    // The gradient an alpha-beta layer hands its input x: relevance(x) = x * share.
    Expected<torch::Tensor> alphaBetaShare(int i, const torch::Tensor& relevance) {
        torch::AutoGradMode on(true);
        const int w = weightLayer(i);
        const auto& info = m_layers.info[size_t(w)];
        const int in = weightInput(i);
        torch::Tensor x = (in < 0 ? m_input : activation(in)).detach();
        const torch::Tensor zOwn = activation(w).detach();
        if (!x.defined() || !zOwn.defined()) return usage("LRP: layer '" + info.name + "' was not captured");
        if (lower(info.type) == "linear" && x.dim() > 2) x = x.reshape({x.size(0), -1});
        auto weight = m_params.find(info.module + ".weight");
        if (weight == m_params.end()) return usage("LRP: layer '" + info.name + "' has no weight");
        torch::Tensor W = weight->second.detach();
        torch::Tensor scale; // per output channel, when a BatchNorm is folded in: W is scaled by it
        if (m_plan[size_t(i)].foldedFrom >= 0) {
            auto sc = batchNormScale(i, zOwn);
            if (!sc) return sc.error();
            std::vector<int64_t> view(size_t(W.dim()), 1);
            view[0] = -1;
            W = W * sc->view(view);
            scale = *sc;
        }
        capture::NamedTensors pos{{"weight", W.clamp_min(0)}}, neg{{"weight", W.clamp_max(0)}};
        auto bias = m_params.find(info.module + ".bias");
        const bool hasBias = bias != m_params.end() && bias->second.defined();
        if (hasBias) {
            pos.emplace_back("bias", torch::zeros_like(bias->second));
            neg.emplace_back("bias", torch::zeros_like(bias->second));
        }
        // Positive contributions are x+ W+ + x- W-, negative ones x+ W- + x- W+. The module runs with W+ and with W-
        // on x+ and x- as one batch of two; an input with no negative values (any layer after a ReLU) is its own
        // x+ and has no x- terms, so it runs as it is, at half the cost.
        const bool nonNegative = x.min().item<float>() >= 0;
        const int64_t n = x.size(0);
        torch::Tensor parts = (nonNegative ? x.clone() : torch::cat({x.clamp_min(0), x.clamp_max(0)})).requires_grad_(true);
        auto zA = m_model.callModule(info.module, parts, pos);
        if (!zA) return zA.error();
        auto zB = m_model.callModule(info.module, parts, neg);
        if (!zB) return zB.error();
        const torch::Tensor zpp = zA->narrow(0, 0, n), zpn = zB->narrow(0, 0, n);
        const torch::Tensor znp = nonNegative ? torch::zeros_like(zpp) : zA->narrow(0, n, n);
        const torch::Tensor znn = nonNegative ? torch::zeros_like(zpp) : zB->narrow(0, n, n);
        // The four parts add up to x W (scaled when folded), which must be what the forward pass gave (less the
        // bias), or an op between the captured input and the layer was not seen.
        {
            torch::NoGradGuard noGrad;
            if (!zpp.sizes().equals(zOwn.sizes()))
                return usage("LRP alpha-beta: layer '" + info.name +
                             "' does not follow from its captured input (an op between them is not captured)");
            std::vector<int64_t> view(size_t(zOwn.dim()), 1); // bias and scale: along the output's features
            if (zOwn.dim() > 1) view[lower(info.type) == "linear" ? size_t(zOwn.dim() - 1) : 1] = -1;
            torch::Tensor expected = zOwn;
            if (hasBias) expected = expected - bias->second.detach().view(view);
            if (scale.defined()) expected = expected * scale.view(view);
            const torch::Tensor sum = zpp + zpn + znp + znn;
            const double magnitude = (zpp.abs() + zpn.abs() + znp.abs() + znn.abs()).max().item<double>();
            if (!torch::allclose(sum, expected, 1e-4, 1e-5 * (1.0 + magnitude)))
                return usage("LRP alpha-beta: layer '" + info.name +
                             "' does not follow from its captured input (an op between them is not captured)");
        }
        const double tiny = 1e-9;
        torch::Tensor zPos = (zpp + znn).detach(), zNeg = (zpn + znp).detach();
        torch::Tensor sPos = torch::where(zPos > tiny, relevance / zPos.clamp_min(tiny), torch::zeros_like(zPos));
        torch::Tensor sNeg = torch::where(zNeg < -tiny, relevance / zNeg.clamp_max(-tiny), torch::zeros_like(zNeg));
        torch::Tensor objective =
            m_o.alpha * ((zpp + znn) * sPos).sum() - m_o.beta * ((zpn + znp) * sNeg).sum();
        auto g = torch::autograd::grad({objective}, {parts}, {}, false, false, true);
        torch::Tensor gb = g[0].defined() ? g[0] : torch::zeros_like(parts);
        if (nonNegative) return gb.detach();
        torch::Tensor gp = gb.narrow(0, 0, n), gn = gb.narrow(0, n, n);
        return torch::where(x > 0, gp, torch::where(x < 0, gn, torch::zeros_like(x))).detach();
    }

    // Per output channel, the scale of the BatchNorm `i` (BN(1) - BN(0) on its own), from the module itself.
    Expected<torch::Tensor> batchNormScale(int i, const torch::Tensor& zConv) {
        const std::string& module = m_layers.info[size_t(i)].module;
        if (module.empty()) return usage("LRP: BatchNorm '" + m_layers.info[size_t(i)].name + "' has no module");
        torch::NoGradGuard noGrad;
        torch::Tensor zeros = torch::zeros_like(zConv.narrow(0, 0, 1)), ones = torch::ones_like(zeros);
        auto b0 = m_model.callModule(module, zeros), b1 = m_model.callModule(module, ones);
        if (!b0) return b0.error();
        if (!b1) return b1.error();
        torch::Tensor d = (*b1 - *b0)[0];
        return d.dim() > 1 ? d.flatten(1).mean(1) : d;
    }

    capture::Model& m_model;
    const AttributionOptions& m_o;
    const Layers& m_layers;
    const capture::ForwardCapture& m_fc;
    std::vector<LayerPlan> m_plan;
    torch::Tensor m_input;
    std::map<std::string, torch::Tensor> m_params;
    std::map<int, torch::Tensor> m_shares; // alpha-beta shares per layer input (-1: the model input)
    std::map<int, torch::Tensor> m_identityGradients; // per Identity layer, the gradient at its output
    std::vector<torch::Tensor> m_relevance;
    std::vector<double> m_sums;
    Status m_error;
};

// The logits of the explained sample, the predicted class, and the class explained (`wanted`, or the prediction
// when it is -1), into `out`.
Status fillPrediction(Attribution& out, const torch::Tensor& logits, const std::string& explained, int64_t wanted) {
    if (auto st = checkLogits(logits, 1); !st) return st.error();
    out.logits = logits[0].detach().clone();
    out.explained = explained;
    const int64_t classes = out.logits.size(0);
    out.predicted = out.logits.argmax().item<int64_t>();
    out.target = wanted < 0 ? out.predicted : wanted;
    if (out.target >= classes)
        return usage("class " + std::to_string(wanted) + " is out of range: the model has " + std::to_string(classes) +
                     " classes (0.." + std::to_string(classes - 1) + ")");
    out.score = out.logits[out.target].item<double>();
    return {};
}

// LRP: one forward pass that keeps the activations (its logits give the predicted class too) and one backward
// pass to the input only (no parameter gradients are computed or accumulated), with the rules' hooks.
Expected<torch::Tensor> lrp(capture::Model& model, const torch::Tensor& input, const AttributionOptions& o,
                            Attribution& out) {
    torch::Tensor x = input.detach().clone().requires_grad_(true);
    auto fc = runCapture(model, x);
    if (!fc) return fc.error();
    const Layers layers = matchLayers(model, *fc);
    const Explained e = findExplained(layers);
    torch::Tensor logits = logitsOf(*fc, layers, e);
    if (auto st = fillPrediction(out, logits, e.what, o.target); !st) return st.error();
    const int64_t target = out.target;
    int logitsLayer = e.layer;
    if (logitsLayer < 0) { // the output: the last captured layer that produced it
        for (int i = static_cast<int>(layers.info.size()) - 1; i >= 0 && logitsLayer < 0; --i)
            if (layers.activation[size_t(i)] >= 0) logitsLayer = i;
        if (logitsLayer < 0) return usage("LRP: model '" + model.name() + "' exposes no layers");
    }
    auto plan = planLrp(model, layers, logitsLayer, o.method, out.notes);
    if (!plan) return plan.error();
    LrpPass pass(model, o, layers, *fc, std::move(*plan), x);
    if (auto st = pass.install(); !st) return st.error();
    torch::Tensor seed = torch::zeros_like(logits);
    seed.select(1, target).fill_(1.0f);
    torch::Tensor g;
    try {
        g = torch::autograd::grad({logits}, {x}, {seed}, false, false, true)[0];
    } catch (const std::exception& ex) {
        return usage("LRP backward pass failed: " + firstLine(ex.what()));
    }
    if (auto st = pass.error(); !st) return st.error();
    out.layers = pass.relevances(o.keepLayerMaps);
    g = pass.inputGradient(g);
    return (g.defined() ? x.detach() * g : torch::zeros_like(x)).detach();
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// 5. Entry point.

std::optional<Method> parseMethod(const std::string& name) {
    if (name == "gradient" || name == "saliency") return Method::Gradient;
    if (name == "gradxinput") return Method::GradTimesInput;
    if (name == "smoothgrad") return Method::SmoothGrad;
    if (name == "ig") return Method::IntegratedGradients;
    if (name == "lrp" || name == "lrp-eps") return Method::LrpEpsilon;
    if (name == "lrp-ab") return Method::LrpAlphaBeta;
    return std::nullopt;
}

const char* methodName(Method m) {
    switch (m) {
    case Method::Gradient: return "gradient";
    case Method::GradTimesInput: return "gradxinput";
    case Method::SmoothGrad: return "smoothgrad";
    case Method::IntegratedGradients: return "ig";
    case Method::LrpEpsilon: return "lrp";
    case Method::LrpAlphaBeta: return "lrp-ab";
    }
    return "?";
}

Expected<Attribution> attribute(capture::Model& model, const torch::Tensor& input, const AttributionOptions& o) {
    if (!input.defined() || input.dim() < 2 || input.size(0) != 1)
        return usage("explain takes one sample [1, ...], not " +
                     (input.defined() ? capture::shapeString(input.sizes().vec()) : std::string("nothing")));
    if (c10::isIntegralType(input.scalar_type(), false))
        return usage(
            "the inputs are integer indices (tokens for an nn.Embedding): attributions are computed with "
            "respect to real-valued inputs (pixels, features), and a token index has no gradient");
    if (o.method == Method::LrpAlphaBeta && std::abs(o.alpha - o.beta - 1.0) > 1e-9)
        return usage("LRP alpha-beta needs alpha - beta = 1 (got alpha " + std::to_string(o.alpha) + ", beta " +
                     std::to_string(o.beta) + ")");
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    struct Restore {
        capture::Model& m;
        bool on;
        ~Restore() { m.setTraining(on); }
    } restore{model, wasTraining};
    torch::Tensor x = input.to(torch::kFloat32).contiguous();

    Attribution out;
    if (o.method == Method::LrpEpsilon || o.method == Method::LrpAlphaBeta) {
        auto r = lrp(model, x, o, out);
        if (!r) return r.error();
        out.map = r->detach().to(torch::kFloat32).contiguous();
        return out;
    }
    {
        torch::NoGradGuard noGrad;
        auto fc = runCapture(model, x);
        if (!fc) return fc.error();
        const Layers layers = matchLayers(model, *fc);
        const Explained e = findExplained(layers);
        if (auto st = fillPrediction(out, logitsOf(*fc, layers, e), e.what, o.target); !st) return st.error();
    }

    switch (o.method) {
    case Method::Gradient:
    case Method::GradTimesInput: {
        auto g = scoreGradient(model, x, out.target);
        if (!g) return g.error();
        out.map = o.method == Method::Gradient ? g->grad : g->grad * x;
        break;
    }
    case Method::SmoothGrad: {
        auto g = smoothGrad(model, x, out.target, o);
        if (!g) return g.error();
        out.map = *g;
        break;
    }
    case Method::IntegratedGradients: {
        auto ig = integratedGradients(model, x, out.target, o);
        if (!ig) return ig.error();
        out.map = ig->first;
        out.baselineScore = ig->second;
        break;
    }
    case Method::LrpEpsilon:
    case Method::LrpAlphaBeta: break; // above
    }
    out.map = out.map.detach().to(torch::kFloat32).contiguous();
    return out;
}

} // namespace ts::explain
