// Health checks of training numbers: whether tensors are finite (a vectorised scan of float32 words, split
// over the thread pool for large ones; fused with the snapshot's copy), and where NaN/Inf first appear in a
// step (HealthReport, health.hpp).
#include "engine/capture/trainer.hpp"

#include "engine/core/cpu_dispatch.hpp"

#include <atomic>
#include <cmath>

#include "engine/core/thread_pool.hpp"

namespace ts::capture {

namespace {

// True when no float32 word has an all-ones exponent (Inf or NaN). Integer ops, so it vectorises.
TS_CLONES_V3 bool finiteWords(const uint32_t* w, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; ++i)
        bad |= static_cast<uint32_t>((w[i] & 0x7f800000u) == 0x7f800000u);
    return bad == 0;
}

// Copy and check in one pass.
TS_CLONES_V3 bool copyFiniteWords(const uint32_t* src, uint32_t* dst, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t w = src[i];
        dst[i] = w;
        bad |= static_cast<uint32_t>((w & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

// Name of the first element of [begin, end) whose tensor is not all finite, or "".
template <class It, class Tensor> std::string firstNonFinite(It begin, It end, Tensor tensorOf) {
    for (It it = begin; it != end; ++it)
        if (!allFinite(tensorOf(*it))) return it->name;
    return {};
}

} // namespace

// Copies t (any layout and floating dtype) into dst as a contiguous float32 row-major block; returns whether
// every element is finite. Contiguous float32 (the usual case) is copied and checked in one pass.
bool copyChecked(const torch::Tensor& t, float* dst) {
    const int64_t n = t.numel();
    if (n == 0) return true;
    if (!(t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous())) {
        torch::from_blob(dst, t.sizes(), torch::kFloat32).copy_(t);
        return finiteWords(reinterpret_cast<const uint32_t*>(dst), size_t(n));
    }
    const auto* src = static_cast<const uint32_t*>(t.data_ptr());
    auto* out = reinterpret_cast<uint32_t*>(dst);
    constexpr int64_t kChunk = int64_t(1) << 18;
    if (n <= kChunk) return copyFiniteWords(src, out, size_t(n));
    std::atomic<bool> ok{true};
    ThreadPool::global().parallelFor(size_t((n + kChunk - 1) / kChunk), 1, [&](size_t b, size_t e, unsigned) {
        for (size_t c = b; c < e; ++c) {
            const int64_t begin = int64_t(c) * kChunk;
            if (!copyFiniteWords(src + begin, out + begin, size_t(std::min(kChunk, n - begin)))) ok = false;
        }
    });
    return ok.load();
}

bool allFinite(const torch::Tensor& t) {
    if (!t.defined() || t.numel() == 0 || !t.is_floating_point()) return true;
    if (t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous()) {
        // A direct scan: a LibTorch reduction costs more in dispatch than the read for small tensors.
        const auto* w = static_cast<const uint32_t*>(t.data_ptr());
        const size_t n = static_cast<size_t>(t.numel());
        constexpr size_t kChunk = size_t(1) << 18;
        if (n <= kChunk) return finiteWords(w, n);
        std::atomic<bool> ok{true};
        ThreadPool::global().parallelFor((n + kChunk - 1) / kChunk, 1, [&](size_t b, size_t e, unsigned) {
            for (size_t c = b; c < e && ok.load(std::memory_order_relaxed); ++c)
                if (!finiteWords(w + c * kChunk, std::min(kChunk, n - c * kChunk))) ok = false;
        });
        return ok.load();
    }
    torch::NoGradGuard noGrad;
    // A NaN or Inf anywhere makes the sum non-finite; a finite sum that overflowed is confirmed elementwise.
    if (std::isfinite(t.sum().item<double>())) return true;
    return torch::isfinite(t).all().item<bool>();
}

HealthReport checkHealth(const Snapshot& s) {
    HealthReport h;
    h.lossFinite = std::isfinite(s.loss);
    auto activation = [](const LayerSnapshot& l) -> const torch::Tensor& { return l.activation; };
    auto gradient = [](const LayerSnapshot& l) -> const torch::Tensor& { return l.gradient; };
    auto value = [](const ParamSnapshot& p) -> const torch::Tensor& { return p.value; };
    auto grad = [](const ParamSnapshot& p) -> const torch::Tensor& { return p.grad; };
    h.firstBadActivation = firstNonFinite(s.layers.begin(), s.layers.end(), activation);   // forward order
    h.firstBadGradient = firstNonFinite(s.layers.rbegin(), s.layers.rend(), gradient);     // backward order
    h.firstBadWeight = firstNonFinite(s.params.begin(), s.params.end(), value);
    h.firstBadWeightGradient = firstNonFinite(s.params.rbegin(), s.params.rend(), grad); // backward order
    return h;
}

// The first layer whose activations, and the last whose gradients, held NaN/Inf (the backward pass runs from
// the output), and the first parameter, and the last parameter gradient, that did.
HealthReport snapshotHealth(const Snapshot& s, const std::vector<char>& actFinite, const std::vector<char>& gradSeen,
                            const std::vector<char>& gradFinite) {
    HealthReport h;
    const size_t L = s.layers.size();
    for (size_t i = 0; i < L && h.firstBadActivation.empty(); ++i)
        if (!actFinite[i]) h.firstBadActivation = s.layers[i].name;
    for (size_t i = L; i-- > 0 && h.firstBadGradient.empty();)
        if (gradSeen[i] && !gradFinite[i]) h.firstBadGradient = s.layers[i].name;
    for (const auto& p : s.params)
        if (!allFinite(p.value)) {
            h.firstBadWeight = p.name;
            break;
        }
    for (auto it = s.params.rbegin(); it != s.params.rend(); ++it)
        if (!allFinite(it->grad)) {
            h.firstBadWeightGradient = it->name;
            break;
        }
    return h;
}

} // namespace ts::capture
