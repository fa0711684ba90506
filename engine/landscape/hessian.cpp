// Hessian-vector products by double backward, Lanczos with full reorthogonalisation for the top eigenpairs and
// the spectral density, Hutchinson's trace.
#include "engine/landscape/hessian.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ts::landscape {

namespace hessian_detail {

torch::Tensor rademacher(int64_t n, torch::Generator& gen) {
    return torch::randint(0, 2, {n}, gen, torch::TensorOptions().dtype(torch::kFloat64)) * 2.0 - 1.0;
}

// T's eigen-decomposition (ascending values, eigenvectors as columns).
struct Tridiagonal {
    torch::Tensor values, vectors;
};

Tridiagonal eigenOfTridiagonal(const std::vector<double>& alpha, const std::vector<double>& beta, size_t m) {
    auto t = torch::zeros({static_cast<int64_t>(m), static_cast<int64_t>(m)}, torch::kFloat64);
    auto a = t.accessor<double, 2>();
    for (size_t i = 0; i < m; ++i) {
        a[static_cast<int64_t>(i)][static_cast<int64_t>(i)] = alpha[i];
        if (i + 1 < m) {
            a[static_cast<int64_t>(i)][static_cast<int64_t>(i + 1)] = beta[i];
            a[static_cast<int64_t>(i + 1)][static_cast<int64_t>(i)] = beta[i];
        }
    }
    auto [values, vectors] = torch::linalg_eigh(t);
    return {values, vectors};
}

// Lanczos from q0 (unit norm) for at most `steps` steps; the basis rows of `basis` ([steps, n]) are filled.
// `converged(j, eig)` is asked after each step with the decomposition of T_j (j + 1 rows); true stops.
struct LanczosRun {
    std::vector<double> alpha, beta; // beta[j] couples q_j and q_{j+1}
    size_t steps = 0;
};

template <class Converged>
Expected<LanczosRun> lanczos(HessianOperator& h, const torch::Tensor& q0, torch::Tensor& basis, size_t steps,
                             Converged&& converged) {
    LanczosRun run;
    basis[0].copy_(q0);
    for (size_t j = 0; j < steps; ++j) {
        const auto qj = basis[static_cast<int64_t>(j)];
        auto w = h.apply(qj);
        if (!torch::isfinite(w).all().item<bool>())
            return makeError(ErrorKind::Failed,
                             "the Hessian-vector product is not finite (NaN/Inf in the loss or its gradients)");
        const double a = w.dot(qj).item<double>();
        run.alpha.push_back(a);
        // Full reorthogonalisation against the whole basis, twice (Kahan's "twice is enough").
        const auto q = basis.narrow(0, 0, static_cast<int64_t>(j + 1));
        for (int pass = 0; pass < 2; ++pass)
            w -= q.t().mv(q.mv(w));
        const double b = w.norm().item<double>();
        run.steps = j + 1;
        const auto eig = eigenOfTridiagonal(run.alpha, run.beta, j + 1);
        const double scale = eig.values.abs().max().item<double>();
        run.beta.push_back(b);
        if (converged(j, eig, b)) break;
        // An invariant subspace: T's eigenvalues are exact eigenvalues of H.
        if (b <= 1e-10 * std::max(scale, 1e-30)) break;
        if (j + 1 < steps) basis[static_cast<int64_t>(j + 1)].copy_(w / b);
    }
    return run;
}

} // namespace hessian_detail

Expected<HessianOperator> HessianOperator::create(capture::Model& model, EvalSet data, int64_t sampleBatch) {
    if (!data.inputs.defined() || data.inputs.dim() < 1 || data.inputs.size(0) == 0)
        return usageError("the evaluation set is empty");
    if (!data.targets.defined() || data.targets.dim() != 1 || data.targets.size(0) != data.inputs.size(0))
        return usageError("targets must be one class index per input sample");
    HessianOperator h;
    for (const auto& [name, p] : model.namedParameters()) {
        if (!p.is_floating_point())
            return usageError("parameter '" + name + "' is not floating point; the Hessian needs real weights");
        h.m_params.push_back(p);
        h.m_requiredGrad.push_back(p.requires_grad());
        h.m_size += p.numel();
    }
    if (h.m_params.empty()) return usageError("model '" + model.name() + "' has no parameters");
    for (auto& p : h.m_params)
        p.requires_grad_(true);
    h.m_model = &model;
    h.m_wasTraining = model.isTraining();
    model.setTraining(false);
    h.m_data = std::move(data);
    h.m_batch = sampleBatch > 0 ? sampleBatch : h.m_data.inputs.size(0);
    return h;
}

HessianOperator::HessianOperator(HessianOperator&& o) noexcept { *this = std::move(o); }

HessianOperator& HessianOperator::operator=(HessianOperator&& o) noexcept {
    if (this != &o) {
        release();
        m_model = o.m_model;
        m_params = std::move(o.m_params);
        m_requiredGrad = std::move(o.m_requiredGrad);
        m_wasTraining = o.m_wasTraining;
        m_data = std::move(o.m_data);
        m_batch = o.m_batch;
        m_size = o.m_size;
        m_products = o.m_products;
        o.m_model = nullptr;
    }
    return *this;
}

HessianOperator::~HessianOperator() { release(); }

void HessianOperator::release() {
    if (!m_model) return;
    for (size_t i = 0; i < m_params.size(); ++i)
        m_params[i].requires_grad_(m_requiredGrad[i]);
    m_model->setTraining(m_wasTraining);
    m_model = nullptr;
}

TensorList HessianOperator::unflatten(const torch::Tensor& flat) const {
    TensorList out;
    int64_t offset = 0;
    for (const auto& p : m_params) {
        out.push_back(flat.narrow(0, offset, p.numel()).view(p.sizes()).to(p.scalar_type()));
        offset += p.numel();
    }
    return out;
}

torch::Tensor HessianOperator::apply(const torch::Tensor& v) {
    const auto vs = unflatten(v);
    torch::AutoGradMode gradMode(true);
    auto out = torch::zeros({m_size}, torch::kFloat64);
    const int64_t n = m_data.inputs.size(0);
    for (int64_t begin = 0; begin < n; begin += m_batch) {
        const int64_t len = std::min(m_batch, n - begin);
        const auto logits = m_model->forward(m_data.inputs.narrow(0, begin, len));
        // Mean over the whole set: each batch's sum over n.
        const auto loss =
            torch::nn::functional::cross_entropy(
                logits, m_data.targets.narrow(0, begin, len).to(torch::kInt64),
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
            static_cast<double>(n);
        const auto grads = torch::autograd::grad({loss}, m_params, {}, /*retain_graph=*/true,
                                                 /*create_graph=*/true, /*allow_unused=*/true);
        torch::Tensor dot;
        for (size_t i = 0; i < grads.size(); ++i) {
            if (!grads[i].defined() || !grads[i].requires_grad()) continue;
            const auto term = (grads[i] * vs[i]).sum();
            dot = dot.defined() ? dot + term : term;
        }
        if (!dot.defined()) continue; // the loss is linear in every parameter here: H v = 0
        const auto hv = torch::autograd::grad({dot}, m_params, {}, /*retain_graph=*/false,
                                              /*create_graph=*/false, /*allow_unused=*/true);
        int64_t offset = 0;
        for (size_t i = 0; i < hv.size(); ++i) {
            const int64_t k = m_params[i].numel();
            if (hv[i].defined()) out.narrow(0, offset, k).add_(hv[i].reshape({-1}).to(torch::kFloat64));
            offset += k;
        }
    }
    ++m_products;
    return out;
}

Expected<HessianResult> analyseHessian(capture::Model& model, const EvalSet& data, const HessianOptions& opt) {
    using namespace hessian_detail;
    const auto start = std::chrono::steady_clock::now();
    if (opt.topK < 0 || opt.maxSteps < 1 || opt.traceSamples < 0 || opt.esdRuns < 0 || opt.esdSteps < 1)
        return usageError("Hessian options out of range");
    TS_ASSIGN_OR_RETURN(h, HessianOperator::create(model, data, opt.sampleBatch));
    const int64_t n = h.size();
    HessianResult r;
    r.parameters = n;
    torch::Generator gen = torch::make_generator<torch::CPUGeneratorImpl>(opt.seed);

    const size_t k = static_cast<size_t>(std::min<int64_t>(opt.topK, n));
    const size_t steps = static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(opt.maxSteps, int64_t(k)), n));
    const size_t basisRows = std::max(k > 0 ? steps : size_t(0),
                                      opt.esdRuns > 0 ? static_cast<size_t>(std::min<int64_t>(opt.esdSteps, n))
                                                      : size_t(0));
    if (basisRows > 0) {
        const double bytes = double(basisRows) * double(n) * 8.0;
        if (bytes > double(opt.memoryBudget))
            return usageError("the Lanczos basis needs " + std::to_string(static_cast<int64_t>(bytes / 1e6)) +
                              " MB (" + std::to_string(basisRows) + " steps x " + std::to_string(n) +
                              " parameters), over the budget of " +
                              std::to_string(opt.memoryBudget / 1000000) + " MB; ask for fewer steps");
    }
    torch::Tensor basis;
    try {
        if (basisRows > 0) basis = torch::empty({static_cast<int64_t>(basisRows), n}, torch::kFloat64);
    } catch (const std::exception&) {
        return makeError(ErrorKind::Environment, "out of memory for the Lanczos basis (" +
                                                     std::to_string(basisRows) + " x " + std::to_string(n) + ")");
    }

    if (k > 0) {
        auto q0 = rademacher(n, gen);
        q0 /= q0.norm();
        Tridiagonal last;
        double lastBeta = 0;
        auto converged = [&](size_t j, const Tridiagonal& eig, double beta) {
            last = eig;
            lastBeta = beta;
            if (j + 1 < k) return false;
            const int64_t m = eig.values.size(0);
            const double scale = eig.values.abs().max().item<double>();
            for (size_t i = 0; i < k; ++i) {
                const double res = std::abs(beta * eig.vectors[m - 1][m - 1 - static_cast<int64_t>(i)].item<double>());
                if (res > opt.tolerance * std::max(scale, 1e-30)) return false;
            }
            return true;
        };
        TS_ASSIGN_OR_RETURN(run, lanczos(h, q0, basis, steps, converged));
        const int64_t m = static_cast<int64_t>(run.steps);
        r.lanczosSteps = m;
        const auto q = basis.narrow(0, 0, m);
        for (size_t i = 0; i < k && static_cast<int64_t>(i) < m; ++i) {
            const int64_t col = m - 1 - static_cast<int64_t>(i);
            const auto y = last.vectors.select(1, col);
            auto v = q.t().mv(y);
            v /= v.norm();
            // A deterministic sign: the entry of largest magnitude is positive.
            if (v[v.abs().argmax().item<int64_t>()].item<double>() < 0) v = -v;
            r.eigenvalues.push_back(last.values[col].item<double>());
            r.residuals.push_back(std::abs(lastBeta * y[m - 1].item<double>()));
            r.eigenvectors.push_back(h.unflatten(v));
        }
    }

    if (opt.traceSamples > 0) {
        std::vector<double> samples;
        for (int s = 0; s < opt.traceSamples; ++s) {
            const auto v = rademacher(n, gen);
            const auto hv = h.apply(v);
            const double x = v.dot(hv).item<double>();
            if (!std::isfinite(x))
                return makeError(ErrorKind::Failed, "the Hessian trace sample is not finite (NaN/Inf in the loss)");
            samples.push_back(x);
        }
        double mean = 0;
        for (double x : samples)
            mean += x;
        mean /= double(samples.size());
        double var = 0;
        for (double x : samples)
            var += (x - mean) * (x - mean);
        r.trace = mean;
        r.traceSamples = opt.traceSamples;
        r.traceStdError = samples.size() > 1 ? std::sqrt(var / double(samples.size() - 1) / double(samples.size())) : 0;
    }

    if (opt.esdRuns > 0) {
        const size_t esdSteps = static_cast<size_t>(std::min<int64_t>(opt.esdSteps, n));
        for (int run = 0; run < opt.esdRuns; ++run) {
            auto q0 = rademacher(n, gen);
            q0 /= q0.norm();
            Tridiagonal last;
            auto keep = [&](size_t, const Tridiagonal& eig, double) {
                last = eig;
                return false;
            };
            TS_ASSIGN_OR_RETURN(lr, lanczos(h, q0, basis, esdSteps, keep));
            (void)lr;
            const int64_t m = last.values.size(0);
            for (int64_t j = 0; j < m; ++j) {
                const double w = last.vectors[0][j].item<double>();
                r.esdNodes.push_back(last.values[j].item<double>());
                r.esdWeights.push_back(w * w / double(opt.esdRuns));
            }
        }
    }
    r.products = h.products();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

Directions hessianDirections(const HessianResult& r, bool twoD) {
    Directions d;
    if (!r.eigenvectors.empty()) d.x = r.eigenvectors[0];
    if (twoD && r.eigenvectors.size() > 1) d.y = r.eigenvectors[1];
    return d;
}

} // namespace ts::landscape
