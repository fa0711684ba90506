// The Bezier bend trained with Adam through the model's own parameters; both paths evaluated at fixed t.
#include "engine/landscape/connectivity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ts::landscape {

namespace curve_detail {

// Mean cross-entropy and accuracy (percent) over a set, in batches, without gradients.
std::pair<double, double> evaluateSet(capture::Model& model, const EvalSet& set) {
    torch::NoGradGuard noGrad;
    double lossSum = 0, correct = 0;
    const int64_t n = set.inputs.size(0);
    for (int64_t b = 0; b < n; b += 1024) {
        const int64_t len = std::min<int64_t>(1024, n - b);
        accumulateLoss(model.forward(set.inputs.narrow(0, b, len)), set.targets.narrow(0, b, len), lossSum, correct);
    }
    return {lossSum / double(n), 100.0 * correct / double(n)};
}

void assign(std::vector<torch::Tensor>& live, const TensorList& values) {
    torch::NoGradGuard noGrad;
    for (size_t i = 0; i < live.size(); ++i)
        live[i].copy_(values[i]);
}

// The largest excess of a profile over the chord between its ends, and where.
std::pair<double, double> barrierOf(const std::vector<double>& t, const std::vector<double>& loss) {
    double height = 0, at = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        const double excess = loss[i] - ((1 - t[i]) * loss.front() + t[i] * loss.back());
        if (excess > height) height = excess, at = t[i];
    }
    return {height, at};
}

} // namespace curve_detail

TensorList bezierPoint(const TensorList& w0, const TensorList& bend, const TensorList& w1, double t) {
    TensorList out;
    const double a = (1 - t) * (1 - t), b = 2 * t * (1 - t), c = t * t;
    for (size_t i = 0; i < w0.size(); ++i)
        out.push_back(w0[i] * a + bend[i] * b + w1[i] * c);
    return out;
}

Expected<CurveResult> fitBezierCurve(capture::Model& model, const TensorList& w0, const TensorList& w1,
                                     const EvalSet& train, const EvalSet& eval, const CurveOptions& opt) {
    using namespace curve_detail;
    const auto start = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> live;
    for (auto& [name, p] : model.namedParameters())
        live.push_back(p);
    if (live.size() != w0.size() || w0.size() != w1.size())
        return usageError("the two models of the curve have different parameter lists");
    for (size_t i = 0; i < live.size(); ++i)
        if (!w0[i].sizes().equals(live[i].sizes()) || !w1[i].sizes().equals(live[i].sizes()))
            return usageError("the two models of the curve differ in the shape of parameter " + std::to_string(i));
    if (opt.steps < 0 || opt.points < 2 || opt.batch < 1 || !(opt.lr > 0))
        return usageError("curve options out of range");
    const int64_t n = train.inputs.size(0);
    if (n == 0 || eval.inputs.size(0) == 0) return usageError("the curve needs training and evaluation samples");

    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    std::vector<bool> requiredGrad;
    for (const auto& p : live)
        requiredGrad.push_back(p.requires_grad());
    struct Restore { // w0, no gradients and the old flags back in the model, whatever happens
        std::vector<torch::Tensor>& live;
        const TensorList& w0;
        capture::Model& model;
        bool training;
        const std::vector<bool>& requiredGrad;
        ~Restore() {
            assign(live, w0);
            for (size_t i = 0; i < live.size(); ++i) {
                if (live[i].grad().defined()) live[i].mutable_grad() = torch::Tensor();
                live[i].requires_grad_(requiredGrad[i]);
            }
            model.setTraining(training);
        }
    } restore{live, w0, model, wasTraining, requiredGrad};

    CurveResult r;
    // The bend starts at the midpoint: the curve starts as the straight line.
    for (size_t i = 0; i < w0.size(); ++i)
        r.bend.push_back(((w0[i] + w1[i]) * 0.5).detach().clone());
    TensorList m1, m2;
    for (const auto& c : r.bend) {
        m1.push_back(torch::zeros_like(c));
        m2.push_back(torch::zeros_like(c));
    }
    torch::Generator gen = torch::make_generator<torch::CPUGeneratorImpl>(opt.seed);
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    for (int step = 1; step <= opt.steps; ++step) {
        const double t = torch::rand({1}, gen, torch::kFloat64).item<double>();
        assign(live, bezierPoint(w0, r.bend, w1, t));
        const auto idx = torch::randint(0, n, {std::min(opt.batch, n)}, gen, torch::kInt64);
        for (auto& p : live)
            if (p.grad().defined()) p.mutable_grad().zero_();
        torch::Tensor loss;
        {
            torch::AutoGradMode on(true);
            for (auto& p : live)
                p.requires_grad_(true);
            loss = torch::nn::functional::cross_entropy(model.forward(train.inputs.index_select(0, idx)),
                                                        train.targets.index_select(0, idx).to(torch::kInt64));
            if (!std::isfinite(loss.item<double>()))
                return makeError(ErrorKind::Failed, "the curve's loss is not finite at step " + std::to_string(step) +
                                                        " (t = " + std::to_string(t) + "); try a smaller --curve-lr");
            loss.backward();
        }
        torch::NoGradGuard noGrad;
        const double scale = 2 * t * (1 - t); // d theta / d c
        const double c1 = 1 - std::pow(beta1, step), c2 = 1 - std::pow(beta2, step);
        for (size_t i = 0; i < live.size(); ++i) {
            if (!live[i].grad().defined()) continue;
            const auto g = live[i].grad() * scale;
            m1[i].mul_(beta1).add_(g, 1 - beta1);
            m2[i].mul_(beta2).addcmul_(g, g, 1 - beta2);
            r.bend[i].sub_((m1[i] / c1) / ((m2[i] / c2).sqrt() + eps) * opt.lr);
        }
        r.steps = step;
    }
    for (int k = 0; k < opt.points; ++k) {
        const double t = double(k) / double(opt.points - 1);
        r.t.push_back(t);
        assign(live, bezierPoint(w0, r.bend, w1, t));
        const auto [cl, ca] = evaluateSet(model, eval);
        r.curveLoss.push_back(cl);
        r.curveAcc.push_back(ca);
        TensorList line;
        for (size_t i = 0; i < w0.size(); ++i)
            line.push_back(w0[i] * (1 - t) + w1[i] * t);
        assign(live, line);
        const auto [ll, la] = evaluateSet(model, eval);
        r.lineLoss.push_back(ll);
        r.lineAcc.push_back(la);
    }
    std::tie(r.curveBarrier, r.curveBarrierAt) = barrierOf(r.t, r.curveLoss);
    std::tie(r.lineBarrier, r.lineBarrierAt) = barrierOf(r.t, r.lineLoss);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

} // namespace ts::landscape
