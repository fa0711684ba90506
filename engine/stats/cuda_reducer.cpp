// CUDA statistics backend: uploads host inputs (or reads device inputs in place), launches the one-pass
// kernel on its stream, writes straight into a device destination (imported Vulkan memory) or copies into a
// host one, and finishes the per-layer results on the host from per-block partials (combined in index order).
#include "engine/stats/cuda_reducer.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/stats/layer_partials.hpp"
#include "engine/stats/reduce_math.hpp"
#include "kernels/runtime.hpp"
#include "kernels/stats_kernels.hpp"

namespace ts::stats {
namespace {

using kernels::DeviceBuffer;
using Run = math::Running<double>;

class CudaReducer final : public Reducer {
  public:
    CudaReducer(kernels::DeviceInfo info, kernels::Stream stream)
        : m_info(std::move(info)), m_stream(std::move(stream)) {}

    Backend backend() const override { return Backend::Cuda; }
    std::string description() const override {
        return "CUDA statistics backend on " + m_info.name + " (sm_" + std::to_string(m_info.major) +
               std::to_string(m_info.minor) + ")";
    }

    using Reducer::reduce;
    Expected<LayerStats> reduce(const TensorView& x, StatsDestination& dest,
                                const ReduceOptions& options) override;
    Expected<ClusterStats> aggregateClusters(const VectorView<float>& values,
                                             const VectorView<std::int32_t>& cluster,
                                             std::int32_t clusters) override;
    Expected<double> normRatio(const TensorView& grad, const TensorView& weight) override;

  private:
    // Device copy of x when it lives on the host (dense rows); otherwise x itself.
    Expected<const float*> deviceInput(const TensorView& x, DeviceBuffer& staging, std::int64_t& ld);
    Expected<double> sumSquares(const TensorView& x);

    kernels::DeviceInfo m_info;
    kernels::Stream m_stream;
    DeviceBuffer m_input, m_input2, m_out, m_partials, m_scratch, m_hist, m_edges, m_clusters;
};

Expected<const float*> CudaReducer::deviceInput(const TensorView& x, DeviceBuffer& staging,
                                                std::int64_t& ld) {
    if (x.memory == MemoryKind::Device) {
        if (x.producer) TS_TRY(kernels::streamWaitFor(m_stream.handle(), x.producer));
        ld = x.ld();
        return x.floats();
    }
    const std::size_t rowBytes = static_cast<std::size_t>(x.cols) * sizeof(float);
    TS_TRY(staging.reserve(rowBytes * static_cast<std::size_t>(x.rows)));
    TS_TRY(kernels::copy2DAsync(staging.data(), rowBytes, x.data,
                                static_cast<std::size_t>(x.ld()) * sizeof(float), rowBytes,
                                static_cast<std::size_t>(x.rows), m_stream.handle()));
    ld = x.cols;
    return staging.as<const float>();
}

Expected<LayerStats> CudaReducer::reduce(const TensorView& x, StatsDestination& dest,
                                         const ReduceOptions& options) {
    TS_TRY(validateReduce(x, options));
    TS_TRY(dest.checkCapacity(x.cols));
    auto stream = m_stream.handle();
    const std::int64_t n = x.cols, stride = statsStride(n);
    std::int64_t ld = 0;
    TS_ASSIGN_OR_RETURN(dx, deviceInput(x, m_input, ld));

    float* dOut = nullptr;
    if (dest.memory() == MemoryKind::Device) {
        dOut = dest.data();
    } else {
        TS_TRY(m_out.reserve(statsBytes(n)));
        dOut = m_out.as<float>();
    }
    const std::int64_t partials = kernels::neuronStatsLayerPartials(n);
    TS_TRY(m_partials.reserve(static_cast<std::size_t>(partials) * sizeof(Run)));
    const std::size_t scratch = kernels::neuronStatsScratchBytes(x.rows, n, m_info.smCount);
    if (scratch) TS_TRY(m_scratch.reserve(scratch));

    TS_TRY(dest.beginWrite(stream));
    kernels::NeuronStatsArgs a;
    a.x = dx;
    a.rows = x.rows;
    a.cols = n;
    a.ld = ld;
    a.out = dOut;
    a.outStride = stride;
    a.layerPartials = m_partials.as<Run>();
    a.scratch = scratch ? m_scratch.data() : nullptr;
    a.smCount = m_info.smCount;
    TS_TRY(kernels::launchNeuronStats(a, stream));

    std::vector<Run> hostPartials(static_cast<std::size_t>(partials));
    TS_TRY(kernels::copyAsync(hostPartials.data(), m_partials.data(), hostPartials.size() * sizeof(Run),
                              stream));
    if (dest.memory() == MemoryKind::Host) // only the statistics, never the padding between them
        TS_TRY(kernels::copy2DAsync(dest.data(), stride * sizeof(float), dOut, stride * sizeof(float),
                                    n * sizeof(float), kStatisticCount, stream));
    std::vector<float> topValues(options.topK > 0 ? static_cast<std::size_t>(n) : 0);
    if (!topValues.empty())
        TS_TRY(kernels::copyAsync(topValues.data(), dOut + statsIndex(options.topKBy, 0, n),
                                  n * sizeof(float), stream));
    TS_TRY(m_stream.synchronize());

    LayerStats ls = layerStatsFromPartials(hostPartials, x.rows, n);
    const bool any = ls.finiteCount > 0;

    const auto& ho = options.histogram;
    if (ho.bins > 0) {
        // A second read of x on the device (the range may depend on this pass's min/max).
        float lo = ho.lo ? *ho.lo : (any ? ls.min : 0.0f), hi = ho.hi ? *ho.hi : (any ? ls.max : 0.0f);
        Histogram h;
        h.edges = histogramEdges(ho.bins, lo, hi);
        TS_TRY(m_edges.reserve(h.edges.size() * sizeof(float)));
        TS_TRY(m_hist.reserve((static_cast<std::size_t>(ho.bins) + 2) * sizeof(unsigned long long)));
        TS_TRY(kernels::copyAsync(m_edges.data(), h.edges.data(), h.edges.size() * sizeof(float), stream));
        kernels::HistogramArgs ha;
        ha.x = dx;
        ha.rows = x.rows;
        ha.cols = n;
        ha.ld = ld;
        ha.edges = m_edges.as<float>();
        ha.bins = ho.bins;
        ha.scale = static_cast<float>(ho.bins / (double(h.edges.back()) - double(h.edges.front())));
        ha.counts = m_hist.as<unsigned long long>();
        TS_TRY(kernels::launchHistogram(ha, stream));
        std::vector<unsigned long long> counts(static_cast<std::size_t>(ho.bins) + 2);
        TS_TRY(kernels::copyAsync(counts.data(), m_hist.data(), counts.size() * sizeof(unsigned long long),
                                  stream));
        TS_TRY(m_stream.synchronize());
        h.underflow = counts.front();
        h.overflow = counts.back();
        h.counts.assign(counts.begin() + 1, counts.end() - 1);
        ls.histogram = std::move(h);
    }
    if (options.topK > 0) ls.top = topK(topValues.data(), n, options.topK, options.topKLargest);
    TS_TRY(dest.endWrite(stream));
    return ls;
}

Expected<ClusterStats> CudaReducer::aggregateClusters(const VectorView<float>& values,
                                                      const VectorView<std::int32_t>& cluster,
                                                      std::int32_t clusters) {
    if (values.memory != cluster.memory)
        return makeError(ErrorKind::Usage, "clusters: values and cluster indices must be in the same memory");
    TS_TRY(validateClusters(values, cluster, clusters, values.memory));
    auto stream = m_stream.handle();
    const std::size_t n = static_cast<std::size_t>(values.size), c = static_cast<std::size_t>(clusters);
    const float* dv = values.data;
    const std::int32_t* dc = cluster.data;
    if (values.memory == MemoryKind::Host) {
        TS_TRY(m_input.reserve(n * sizeof(float)));
        TS_TRY(m_input2.reserve(n * sizeof(std::int32_t)));
        TS_TRY(kernels::copyAsync(m_input.data(), values.data, n * sizeof(float), stream));
        TS_TRY(kernels::copyAsync(m_input2.data(), cluster.data, n * sizeof(std::int32_t), stream));
        dv = m_input.as<float>();
        dc = m_input2.as<std::int32_t>();
    }
    // Layout of the accumulators: sum[c] finite[c] (double), maxAbsBits[c] count[c] (uint), firstBad (int64).
    const std::size_t bytes = c * (2 * sizeof(double) + 2 * sizeof(unsigned int)) + sizeof(long long) + 16;
    TS_TRY(m_clusters.reserve(bytes));
    char* base = m_clusters.as<char>();
    kernels::ClusterArgs a;
    a.values = dv;
    a.cluster = dc;
    a.n = values.size;
    a.clusters = clusters;
    a.sum = reinterpret_cast<double*>(base);
    a.finite = a.sum + c;
    a.firstBadNeuron = reinterpret_cast<long long*>(a.finite + c);
    a.maxAbsBits = reinterpret_cast<unsigned int*>(a.firstBadNeuron + 1);
    a.count = a.maxAbsBits + c;
    TS_TRY(kernels::launchClusterAggregate(a, stream));
    std::vector<double> sum(c), finite(c);
    std::vector<unsigned int> maxBits(c), count(c);
    long long firstBad = 0;
    TS_TRY(kernels::copyAsync(sum.data(), a.sum, c * sizeof(double), stream));
    TS_TRY(kernels::copyAsync(finite.data(), a.finite, c * sizeof(double), stream));
    TS_TRY(kernels::copyAsync(maxBits.data(), a.maxAbsBits, c * sizeof(unsigned int), stream));
    TS_TRY(kernels::copyAsync(count.data(), a.count, c * sizeof(unsigned int), stream));
    TS_TRY(kernels::copyAsync(&firstBad, a.firstBadNeuron, sizeof(long long), stream));
    TS_TRY(m_stream.synchronize());
    if (firstBad < values.size) {
        std::int32_t bad = 0;
        TS_TRY(kernels::copyAsync(&bad, dc + firstBad, sizeof(bad), stream));
        TS_TRY(m_stream.synchronize());
        return makeError(ErrorKind::Usage, "clusters: neuron " + std::to_string(firstBad) +
                                               " has cluster index " + std::to_string(bad) + " outside [0, " +
                                               std::to_string(clusters) + ") (-1 leaves a neuron out)");
    }
    ClusterStats cs;
    cs.mean.resize(c);
    cs.maxAbs.resize(c);
    cs.count.assign(count.begin(), count.end());
    for (std::size_t i = 0; i < c; ++i) {
        float m;
        static_assert(sizeof(m) == sizeof(unsigned int));
        std::memcpy(&m, &maxBits[i], sizeof(m));
        cs.mean[i] = finite[i] > 0 ? static_cast<float>(sum[i] / finite[i]) : NAN;
        cs.maxAbs[i] = finite[i] > 0 ? m : NAN;
    }
    return cs;
}

Expected<double> CudaReducer::sumSquares(const TensorView& x) {
    auto stream = m_stream.handle();
    std::int64_t ld = 0;
    TS_ASSIGN_OR_RETURN(dx, deviceInput(x, m_input, ld));
    const int parts = kernels::sumSquaresPartials();
    TS_TRY(m_partials.reserve(parts * sizeof(double)));
    kernels::SumSquaresArgs a;
    a.x = dx;
    a.rows = x.rows;
    a.cols = x.cols;
    a.ld = ld;
    a.partials = m_partials.as<double>();
    TS_TRY(kernels::launchSumSquares(a, stream));
    std::vector<double> host(static_cast<std::size_t>(parts));
    TS_TRY(kernels::copyAsync(host.data(), a.partials, host.size() * sizeof(double), stream));
    TS_TRY(m_stream.synchronize());
    double s = 0;
    for (double p : host)
        s += p;
    return s;
}

Expected<double> CudaReducer::normRatio(const TensorView& grad, const TensorView& weight) {
    TS_TRY(validateMatrix(grad, "norm ratio"));
    TS_TRY(validateMatrix(weight, "norm ratio"));
    if (grad.rows != weight.rows || grad.cols != weight.cols)
        return makeError(ErrorKind::Usage, std::string("norm ratio: ") + grad.name + " " +
                                               grad.shapeString() + " and " + weight.name + " " +
                                               weight.shapeString() + " differ in shape");
    TS_ASSIGN_OR_RETURN(g2, sumSquares(grad));
    TS_ASSIGN_OR_RETURN(w2, sumSquares(weight));
    const double g = std::sqrt(g2), w = std::sqrt(w2);
    if (w == 0) return g == 0 ? 0.0 : INFINITY;
    return g / w;
}

} // namespace

Expected<std::unique_ptr<Reducer>> makeCudaReducer(int cudaDevice) {
    kernels::DeviceRequest request;
    request.index = cudaDevice;
    auto info = kernels::probeDevice(request);
    if (!info) return info.error();
    TS_ASSIGN_OR_RETURN(stream, kernels::Stream::create());
    return std::unique_ptr<Reducer>(
        std::make_unique<CudaReducer>(std::move(info).value(), std::move(stream)));
}

} // namespace ts::stats
