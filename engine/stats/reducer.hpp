// The statistics API: reduce a [batch x neurons] float32 matrix to per-neuron statistics (written to a
// StatsDestination, layout in stats_layout.h) and per-layer statistics, in one pass over the data; LOD
// cluster aggregation; gradient/weight norm ratio. Backends: CPU (always) and CUDA (kernels/, when
// TS_HAVE_CUDA).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/stats/destination.hpp"
#include "engine/stats/stats_layout.h"
#include "engine/stats/tensor_view.hpp"

namespace ts::stats {

enum class Backend { Auto, Cpu, Cuda };
const char* backendName(Backend b);
const char* statisticName(Statistic s);

struct HistogramOptions {
    int bins = 0; // 0: no histogram
    // Range [lo, hi]. Unset: the layer's finite min and max (then the CPU backend reads the data a second
    // time; with a range given the histogram is counted from cache in the same pass). lo == hi widens to
    // [lo - 0.5, lo + 0.5].
    std::optional<float> lo, hi;
};

struct ReduceOptions {
    HistogramOptions histogram;
    int topK = 0;                          // 0: none
    Statistic topKBy = Statistic::MeanAbs; // ranks neurons by this per-neuron statistic
    bool topKLargest = true;               // false: the k smallest
};

// Bins: counts[b] holds edges[b] <= x < edges[b+1] (the last bin includes edges[bins]). Finite values only;
// values outside [lo, hi] go to underflow / overflow (only possible with a given range).
struct Histogram {
    std::vector<float> edges;
    std::vector<std::uint64_t> counts;
    std::uint64_t underflow = 0, overflow = 0;
    std::uint64_t total() const;
};

struct TopEntry {
    std::int64_t neuron;
    float value;
};

// Per-layer statistics over all elements. Like the per-neuron ones, mean/std/min/max/l2Norm are over the
// finite values (NaN/Inf counted, not included); std is the population standard deviation.
struct LayerStats {
    std::int64_t batch = 0, neurons = 0;
    std::uint64_t finiteCount = 0, nanCount = 0, infCount = 0, zeroCount = 0;
    double mean = 0, std = 0, l2Norm = 0;
    float min = 0, max = 0;
    Histogram histogram;       // empty unless options.histogram.bins > 0
    std::vector<TopEntry> top; // topK entries, best first; ties broken by lower index; NaN never ranked
};

// LOD clusters: mean and max |x| of the finite per-neuron values of each cluster, and the neurons in it.
// Clusters with no finite value have mean = maxAbs = NaN (count still says how many neurons they hold).
struct ClusterStats {
    std::vector<float> mean, maxAbs;
    std::vector<std::uint32_t> count;
};

// Per-neuron statistics in host memory, in the destination layout (for tests and tools).
struct NeuronStats {
    std::int64_t neurons = 0;
    std::vector<float> data; // statsStride(neurons) * kStatisticCount floats
    const float* stat(Statistic s) const { return data.data() + statsIndex(s, 0, neurons); }
    float at(Statistic s, std::int64_t neuron) const { return stat(s)[neuron]; }
};

class Reducer {
  public:
    virtual ~Reducer() = default;
    virtual Backend backend() const = 0;
    virtual std::string description() const = 0;

    // One pass over x: per-neuron statistics into dest, per-layer statistics returned.
    virtual Expected<LayerStats> reduce(const TensorView& x, StatsDestination& dest,
                                        const ReduceOptions& options = {}) = 0;
    // The same into host memory owned by `out` (resized).
    Expected<LayerStats> reduce(const TensorView& x, NeuronStats& out, const ReduceOptions& options = {});

    // Level of detail: cluster[i] in [0, clusters) is neuron i's cluster, -1 leaves neuron i out.
    virtual Expected<ClusterStats> aggregateClusters(const VectorView<float>& values,
                                                     const VectorView<std::int32_t>& cluster,
                                                     std::int32_t clusters) = 0;

    // Update health: ||grad||_2 / ||weight||_2 over all elements (same shape required). Non-finite gradients
    // are included on purpose, so an exploding step shows as Inf/NaN. weight norm 0: +Inf (0 if grad is 0
    // too).
    virtual Expected<double> normRatio(const TensorView& grad, const TensorView& weight) = 0;
};

// Cpu: always works. Cuda: error when built without CUDA or with no usable device. Auto: CUDA when it works,
// otherwise logs one line ("no CUDA device (<reason>); using the CPU statistics backend") and returns CPU.
// cudaDevice: the CUDA device index to use (the one the tensors live on); -1: TS_CUDA_DEVICE, else device 0.
Expected<std::unique_ptr<Reducer>> makeReducer(Backend backend = Backend::Auto, int cudaDevice = -1);

// ---- Shared by the backends (reducer.cpp).
// Histogram edges for `bins` bins over [lo, hi] (lo == hi widened, see HistogramOptions).
std::vector<float> histogramEdges(int bins, float lo, float hi);
// Top k neuron indices by value (NaN skipped), best first, ties by lower index; values[0] is neuron
// firstIndex. One pass keeping the best k (O(n) for small k).
std::vector<TopEntry> topK(const float* values, std::int64_t n, int k, bool largest, std::int64_t firstIndex = 0);
// The top k of the union of several topK results (each neuron in at most one).
std::vector<TopEntry> mergeTopK(std::vector<TopEntry> candidates, int k, bool largest);
// Validation of options against a matrix.
Status validateReduce(const TensorView& x, const ReduceOptions& options);
Status validateClusters(const VectorView<float>& values, const VectorView<std::int32_t>& cluster,
                        std::int32_t clusters, MemoryKind expected);

} // namespace ts::stats
