// The batched grid path for Linear/activation chains: one GEMM gives the first layer for a whole chunk of
// grid points (the layer is linear in its weights), then per-point stacked weights through baddbmm.
#include "engine/landscape/batched_mlp.hpp"

#include <algorithm>
#include <optional>

#include "engine/core/thread_pool.hpp"
#include "engine/landscape/batched_kernels.hpp"

namespace ts::landscape {

const char* activationName(Activation a) {
    switch (a) {
    case Activation::ReLU:
        return "relu";
    case Activation::Tanh:
        return "tanh";
    case Activation::Sigmoid:
        return "sigmoid";
    case Activation::Gelu:
        return "gelu";
    case Activation::LeakyReLU:
        return "leaky_relu";
    case Activation::Identity:
        return "identity";
    }
    return "?";
}

std::unique_ptr<SurfaceEvaluator::BatchedMlp>
SurfaceEvaluator::BatchedMlp::fromParameters(const ParameterSpace& space, const TensorList& origin,
                                             const Directions& dirs, const EvalSet& data,
                                             std::string& reason) {
    torch::NoGradGuard noGrad;
    if (origin.empty()) {
        reason = "the model has no parameters";
        return nullptr;
    }
    const auto dtype = origin[0].scalar_type();
    if (dtype != torch::kFloat32 && dtype != torch::kFloat64) {
        reason = "parameters are neither float32 nor float64";
        return nullptr;
    }
    // Pair up [W (2D), b (1D, optional)] entries and check that the shapes chain.
    struct Slot {
        size_t w;
        int64_t b; // -1: no bias
    };
    std::vector<Slot> slots;
    for (size_t i = 0; i < origin.size(); ++i) {
        const auto& t = origin[i];
        if (t.scalar_type() != dtype) {
            reason = "parameters mix dtypes";
            return nullptr;
        }
        if (t.dim() == 2) {
            slots.push_back({i, -1});
        } else if (t.dim() == 1 && !slots.empty() && slots.back().b < 0 &&
                   t.size(0) == origin[slots.back().w].size(0)) {
            slots.back().b = static_cast<int64_t>(i);
        } else {
            reason = "parameter '" + space.names[i] + "' does not fit a chain of Linear layers";
            return nullptr;
        }
    }
    for (size_t k = 1; k < slots.size(); ++k)
        if (origin[slots[k].w].size(1) != origin[slots[k - 1].w].size(0)) {
            reason = "Linear shapes do not chain at '" + space.names[slots[k].w] + "'";
            return nullptr;
        }
    const int64_t n = data.inputs.size(0);
    const int64_t features = n > 0 ? data.inputs.numel() / n : 0;
    if (features != origin[slots[0].w].size(1)) {
        reason = "inputs have " + std::to_string(features) +
                 " features per sample but the first layer takes " +
                 std::to_string(origin[slots[0].w].size(1));
        return nullptr;
    }

    auto mlp = std::unique_ptr<BatchedMlp>(new BatchedMlp());
    mlp->m_dtype = dtype;
    mlp->m_targets = data.targets.to(torch::kInt64).contiguous();
    const auto dirOf = [&](const TensorList& d, size_t i) {
        return d.empty() ? torch::zeros_like(origin[i]) : d[i].to(dtype);
    };
    for (size_t k = 0; k < slots.size(); ++k) {
        const size_t wi = slots[k].w;
        Layer layer;
        layer.out = origin[wi].size(0);
        layer.in = origin[wi].size(1);
        if (slots[k].b >= 0) {
            const auto bi = static_cast<size_t>(slots[k].b);
            layer.bias = torch::stack({origin[bi], dirOf(dirs.x, bi), dirOf(dirs.y, bi)}).contiguous();
        } else {
            layer.bias = torch::zeros({3, layer.out}, dtype);
        }
        if (k > 0)
            layer.stack = torch::stack({origin[wi].reshape({-1}), dirOf(dirs.x, wi).reshape({-1}),
                                        dirOf(dirs.y, wi).reshape({-1})})
                              .contiguous();
        mlp->m_layers.push_back(std::move(layer));
    }
    // First layer for every sample, once: [3, N, h1] (bias folded in, so a chunk needs one GEMM).
    const auto x = data.inputs.reshape({n, features}).to(dtype).contiguous();
    const size_t w0 = slots[0].w;
    const auto& b = mlp->m_layers[0].bias;
    mlp->m_first =
        torch::stack({torch::addmm(b[0], x, origin[w0].t()), torch::addmm(b[1], x, dirOf(dirs.x, w0).t()),
                      torch::addmm(b[2], x, dirOf(dirs.y, w0).t())})
            .contiguous();
    return mlp;
}

void SurfaceEvaluator::BatchedMlp::activate(torch::Tensor& z) const {
    switch (m_activation) {
    case Activation::ReLU:
        z.relu_();
        break;
    case Activation::Tanh:
        z.tanh_();
        break;
    case Activation::Sigmoid:
        z.sigmoid_();
        break;
    case Activation::Gelu:
        z = torch::gelu(z);
        break;
    case Activation::LeakyReLU:
        z = torch::leaky_relu(z, 0.01);
        break;
    case Activation::Identity:
        break;
    }
}

// coef [G, 3] = (1, a, b) per point (float64); returns class-major logits [G, classes, n] for the first n
// samples.
torch::Tensor SurfaceEvaluator::BatchedMlp::forwardChunk(const torch::Tensor& coef64, int64_t n) const {
    const int64_t g = coef64.size(0);
    const int64_t h1 = m_layers[0].out;
    const int64_t total = m_first.size(1);
    const auto coef = coef64.to(m_dtype);
    const bool last0 = m_layers.size() == 1;
    const bool fusedRelu = !last0 && m_activation == Activation::ReLU;
    // XW^T + a XU^T + b XV^T (+ biases) per point, activation fused when it is ReLU: one pass over memory.
    auto z = torch::empty({g, n, h1}, torch::TensorOptions().dtype(m_dtype));
    const auto c = coef64.accessor<double, 2>();
    for (int64_t i = 0; i < g; ++i) {
        if (m_dtype == torch::kFloat32) {
            const float* base = m_first.data_ptr<float>();
            kernels::combine3(base, base + total * h1, base + 2 * total * h1, static_cast<float>(c[i][1]),
                              static_cast<float>(c[i][2]), n * h1, fusedRelu, z[i].data_ptr<float>());
        } else {
            const double* base = m_first.data_ptr<double>();
            kernels::combine3(base, base + total * h1, base + 2 * total * h1, c[i][1], c[i][2], n * h1,
                              fusedRelu, z[i].data_ptr<double>());
        }
    }
    if (last0) return z.transpose(1, 2).contiguous();
    if (!fusedRelu) activate(z);
    for (size_t k = 1; k < m_layers.size(); ++k) {
        const auto& layer = m_layers[k];
        auto w = coef.mm(layer.stack).view({g, layer.out, layer.in}); // W + aU + bV per point
        auto bias = coef.mm(layer.bias);                              // [G, out]
        if (k + 1 < m_layers.size()) {
            z = torch::baddbmm(bias.unsqueeze(1), z, w.transpose(1, 2)); // [G, n, out]
            activate(z);
        } else {
            z = torch::baddbmm(bias.unsqueeze(2), w, z.transpose(1, 2)); // [G, classes, n]: class-major
        }
    }
    return z;
}

torch::Tensor SurfaceEvaluator::BatchedMlp::logits(const std::vector<std::array<double, 2>>& points,
                                                   int64_t n) const {
    torch::NoGradGuard noGrad;
    return forwardChunk(coefficients(points, 0, points.size()), std::min<int64_t>(n, m_first.size(1)))
        .transpose(1, 2);
}

torch::Tensor SurfaceEvaluator::BatchedMlp::coefficients(const std::vector<std::array<double, 2>>& points,
                                                         size_t begin, size_t end) {
    auto coef = torch::empty({static_cast<int64_t>(end - begin), 3}, torch::kFloat64);
    auto c = coef.accessor<double, 2>();
    for (size_t i = begin; i < end; ++i) {
        const auto r = static_cast<int64_t>(i - begin);
        c[r][0] = 1.0;
        c[r][1] = points[i][0];
        c[r][2] = points[i][1];
    }
    return coef;
}

int64_t SurfaceEvaluator::BatchedMlp::autoChunk(int64_t bytes) const {
    int64_t widest = 1;
    for (const auto& l : m_layers)
        widest = std::max(widest, l.out);
    const int64_t perPoint = m_first.size(1) * widest * static_cast<int64_t>(c10::elementSize(m_dtype));
    return std::clamp<int64_t>(bytes / std::max<int64_t>(perPoint, 1), 1, 512);
}

std::vector<PointValue>
SurfaceEvaluator::BatchedMlp::evaluate(const std::vector<std::array<double, 2>>& points, int64_t chunk,
                                       bool usePool) const {
    std::vector<PointValue> out(points.size());
    const int64_t n = m_first.size(1);
    chunk = std::max<int64_t>(chunk, 1);
    const size_t chunks = (points.size() + static_cast<size_t>(chunk) - 1) / static_cast<size_t>(chunk);
    const int64_t classes = m_layers.back().out;
    const int64_t* targets = m_targets.data_ptr<int64_t>();
    // Chunks are independent: spread them over the pool when LibTorch itself runs single-threaded (Debian's
    // build); with a multi-threaded LibTorch the chunks run in order and its ops use its own threads, so the
    // two kinds of threads never oversubscribe the cores.
    const auto body = [&](size_t c0, size_t c1, unsigned) {
        torch::NoGradGuard noGrad; // thread-local
        for (size_t c = c0; c < c1; ++c) {
            const size_t begin = c * static_cast<size_t>(chunk);
            const size_t end = std::min(points.size(), begin + static_cast<size_t>(chunk));
            const auto z = forwardChunk(coefficients(points, begin, end), n).contiguous(); // [G, C, N]
            for (size_t i = begin; i < end; ++i) {
                double lossSum = 0;
                int64_t correct = 0;
                const auto zi = z[static_cast<int64_t>(i - begin)];
                if (m_dtype == torch::kFloat32)
                    kernels::crossEntropyClassMajor(zi.data_ptr<float>(), classes, n, targets, &lossSum,
                                                    &correct);
                else
                    kernels::crossEntropyClassMajor(zi.data_ptr<double>(), classes, n, targets, &lossSum,
                                                    &correct);
                out[i].loss = lossSum / static_cast<double>(n);
                out[i].acc = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
            }
        }
    };
    // OpenBLAS's thread count is process-wide: set only while this call owns the pool's threads (a detached
    // grid on its own thread leaves it alone, so training beside it runs exactly as without it).
    std::optional<kernels::OpenBlasSingleThread> blasGuard;
    if (usePool) blasGuard.emplace();
    if (usePool && at::get_num_threads() == 1)
        ThreadPool::global().parallelFor(chunks, 1, body);
    else
        body(0, chunks, 0);
    return out;
}

} // namespace ts::landscape
