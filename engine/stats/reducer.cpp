// Backend-independent parts of the statistics API: validation with readable errors, histogram edges, top-k,
// the host NeuronStats convenience path and the backend selector.
#include "engine/stats/reducer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/core/log.hpp"
#include "engine/stats/cpu_reducer.hpp"
#include "engine/stats/reduce_math.hpp"
#ifdef TS_HAVE_CUDA
#include "engine/stats/cuda_reducer.hpp"
#endif

namespace ts::stats {

const char* dtypeName(DType t) {
    switch (t) {
    case DType::Float32:
        return "float32";
    case DType::Float16:
        return "float16";
    case DType::BFloat16:
        return "bfloat16";
    case DType::Float64:
        return "float64";
    case DType::Int32:
        return "int32";
    case DType::Int64:
        return "int64";
    default:
        return "an unsupported dtype";
    }
}

const char* backendName(Backend b) {
    switch (b) {
    case Backend::Auto:
        return "auto";
    case Backend::Cpu:
        return "cpu";
    case Backend::Cuda:
        return "cuda";
    }
    return "?";
}

const char* statisticName(Statistic s) {
    static const char* names[] = {"mean", "mean_abs",      "variance",  "min",
                                  "max",  "zero_fraction", "nan_count", "inf_count"};
    int i = static_cast<int>(s);
    return i >= 0 && i < kStatisticCount ? names[i] : "?";
}

std::string TensorView::shapeString() const {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "[%lld x %lld] %s (row stride %lld, column stride %lld)",
                  static_cast<long long>(rows), static_cast<long long>(cols), dtypeName(dtype),
                  static_cast<long long>(ld()), static_cast<long long>(colStride));
    return buf;
}

namespace {
Error usage(std::string msg) {
    return makeError(ErrorKind::Usage, std::move(msg));
}
} // namespace

Status validateMatrix(const TensorView& x, const char* what) {
    const std::string who = std::string(what) + ": " + (x.name ? x.name : "tensor") + " ";
    if (x.rows <= 0 || x.cols <= 0)
        return usage(who + "is empty " + x.shapeString() +
                     "; it needs at least one row (sample) and one neuron");
    if (!x.data) return usage(who + "has no data (null pointer) " + x.shapeString());
    if (x.dtype != DType::Float32)
        return usage(who + "is " + dtypeName(x.dtype) + "; statistics take float32 (convert first, e.g. " +
                     "tensor.to(torch::kFloat32).contiguous())");
    if (x.colStride != 1)
        return usage(who + "is not contiguous along neurons " + x.shapeString() +
                     "; column stride must be 1 (call .contiguous())");
    if (x.rowStride != 0 && x.rowStride < x.cols)
        return usage(who + "has row stride " + std::to_string(x.rowStride) + " smaller than its " +
                     std::to_string(x.cols) + " neurons (rows overlap): " + x.shapeString());
    if (x.rows >= (std::int64_t(1) << 24))
        return usage(who + "has a batch of " + std::to_string(x.rows) +
                     " rows; at most 16777215 (counts are stored as float32)");
    return Status::ok();
}

Status validateReduce(const TensorView& x, const ReduceOptions& o) {
    TS_TRY(validateMatrix(x, "statistics"));
    const auto& h = o.histogram;
    if (h.bins < 0 || h.bins > (1 << 20))
        return usage("statistics: histogram bins " + std::to_string(h.bins) + " out of range [0, 1048576]");
    if (h.lo.has_value() != h.hi.has_value())
        return usage("statistics: histogram range needs both lo and hi (or neither, for the data's min/max)");
    if (h.lo && (!std::isfinite(*h.lo) || !std::isfinite(*h.hi) || *h.lo > *h.hi))
        return usage("statistics: histogram range [" + std::to_string(*h.lo) + ", " + std::to_string(*h.hi) +
                     "] must be finite with lo <= hi");
    if (o.topK < 0) return usage("statistics: topK " + std::to_string(o.topK) + " must be >= 0");
    int by = static_cast<int>(o.topKBy);
    if (by < 0 || by >= kStatisticCount) return usage("statistics: topKBy is not a statistic");
    return Status::ok();
}

Status StatsDestination::checkCapacity(std::int64_t neurons) const {
    if (capacityBytes() < statsBytes(neurons))
        return usage("statistics destination holds " + std::to_string(capacityBytes()) + " bytes; " +
                     std::to_string(neurons) + " neurons need " + std::to_string(statsBytes(neurons)) +
                     " (engine/stats/stats_layout.h)");
    return Status::ok();
}

Status validateClusters(const VectorView<float>& values, const VectorView<std::int32_t>& cluster,
                        std::int32_t clusters, MemoryKind expected) {
    if (values.size <= 0) return usage("clusters: no per-neuron values (empty)");
    if (!values.data || !cluster.data) return usage("clusters: null values or cluster indices");
    if (cluster.size != values.size)
        return usage("clusters: " + std::to_string(values.size) + " values but " +
                     std::to_string(cluster.size) + " cluster indices; need one index per neuron");
    if (clusters <= 0) return usage("clusters: cluster count " + std::to_string(clusters) + " must be > 0");
    if (values.memory != expected || cluster.memory != expected)
        return usage(std::string("clusters: inputs must be in ") +
                     (expected == MemoryKind::Host ? "host" : "device") + " memory for this backend");
    return Status::ok();
}

std::uint64_t Histogram::total() const {
    std::uint64_t t = underflow + overflow;
    for (auto c : counts)
        t += c;
    return t;
}

std::vector<float> histogramEdges(int bins, float lo, float hi) {
    if (lo == hi) {
        lo -= 0.5f;
        hi += 0.5f;
    }
    std::vector<float> e(static_cast<std::size_t>(bins) + 1);
    for (int i = 0; i <= bins; ++i)
        e[i] = math::histogramEdge(i, bins, lo, hi);
    return e;
}

namespace {
// The ranking order: better value first, then lower neuron index (a strict total order, so the top k of a
// union is the top k of the parts' top k).
struct Better {
    bool largest;
    bool operator()(const TopEntry& a, const TopEntry& b) const {
        if (a.value != b.value) return largest ? a.value > b.value : a.value < b.value;
        return a.neuron < b.neuron;
    }
};
} // namespace

std::vector<TopEntry> topK(const float* values, std::int64_t n, int k, bool largest, std::int64_t firstIndex) {
    const Better better{largest};
    const std::size_t kk = static_cast<std::size_t>(std::max(k, 0));
    std::vector<TopEntry> heap; // the best kk so far; front: the worst of them
    if (kk == 0) return heap;
    heap.reserve(kk);
    for (std::int64_t i = 0; i < n; ++i) {
        const float v = values[i];
        if (std::isnan(v)) continue;
        if (heap.size() < kk) {
            heap.push_back({firstIndex + i, v});
            std::push_heap(heap.begin(), heap.end(), better);
            continue;
        }
        // Indices only grow, so an equal value ranks below every kept one.
        const float worst = heap.front().value;
        if (largest ? !(v > worst) : !(v < worst)) continue;
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = {firstIndex + i, v};
        std::push_heap(heap.begin(), heap.end(), better);
    }
    std::sort_heap(heap.begin(), heap.end(), better); // best first
    return heap;
}

std::vector<TopEntry> mergeTopK(std::vector<TopEntry> candidates, int k, bool largest) {
    const std::size_t kk = std::min<std::size_t>(static_cast<std::size_t>(std::max(k, 0)), candidates.size());
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(kk), candidates.end(),
                      Better{largest});
    candidates.resize(kk);
    return candidates;
}

Expected<LayerStats> Reducer::reduce(const TensorView& x, NeuronStats& out, const ReduceOptions& options) {
    if (x.cols > 0) {
        out.neurons = x.cols;
        // resize, not assign: the reduction writes every statistic of every neuron, and a reused NeuronStats
        // then costs no zero-fill pass over memory that is about to be overwritten.
        out.data.resize(statsBytes(x.cols) / sizeof(float));
    }
    HostStatsDestination dest(out.data.data(), out.data.size() * sizeof(float));
    return reduce(x, dest, options);
}

Expected<std::unique_ptr<Reducer>> makeReducer(Backend backend, int cudaDevice) {
    if (backend == Backend::Cpu) return std::unique_ptr<Reducer>(std::make_unique<CpuReducer>());
#ifdef TS_HAVE_CUDA
    auto cuda = makeCudaReducer(cudaDevice);
    if (cuda) return std::move(cuda).value();
    if (backend == Backend::Cuda) return cuda.error();
    TS_LOG_INFO("no CUDA device (%s); using the CPU statistics backend", cuda.error().message.c_str());
#else
    if (backend == Backend::Cuda)
        return makeError(
            ErrorKind::Environment,
            "statistics: the CUDA backend was not built (configure with -DTS_ENABLE_CUDA=ON and nvcc)");
#endif
    return std::unique_ptr<Reducer>(std::make_unique<CpuReducer>());
}

} // namespace ts::stats
