// CUDA-free launch interface of the statistics kernels (stats_kernels.cu). Each kernel is three things
// (STYLE.md point 7): device code, this host launcher (stream in, Status out, every CUDA error checked), and
// the plain C++ reference that is its specification: the CPU backend in engine/stats, which runs the same
// arithmetic (engine/stats/reduce_math.hpp). All pointers are device pointers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/core/error.hpp"
#include "engine/stats/reduce_math.hpp"
#include "kernels/runtime.hpp"

namespace ts::kernels {

using LayerPartial = ts::stats::math::Running<double>;

struct NeuronStatsArgs {
    const float* x = nullptr; // [rows x cols], row stride ld (floats), neurons contiguous
    std::int64_t rows = 0, cols = 0, ld = 0;
    float* out = nullptr; // SoA statistics, stats_layout.h, statistic stride outStride
    std::int64_t outStride = 0;
    LayerPartial* layerPartials = nullptr; // neuronStatsLayerPartials(cols) entries: per block of 32 neurons
    void* scratch = nullptr;               // neuronStatsScratchBytes(...) bytes (row-split partial states)
    int smCount = 1;
};

// Whether the current device can run these kernels (this build has machine code or PTX for it): the runtime's
// own answer, cudaFuncGetAttributes on the main kernel.
Status checkKernelImage();

// Blocks of 32 neurons: one layer partial each (combined on the host in index order).
std::int64_t neuronStatsLayerPartials(std::int64_t cols);
std::size_t neuronStatsScratchBytes(std::int64_t rows, std::int64_t cols, int smCount);
// One pass over x: per-neuron statistics into out, per-32-neuron layer partials.
Status launchNeuronStats(const NeuronStatsArgs& args, StreamHandle stream);

struct HistogramArgs {
    const float* x = nullptr;
    std::int64_t rows = 0, cols = 0, ld = 0;
    const float* edges = nullptr; // bins + 1 (engine/stats histogramEdges)
    int bins = 0;
    float scale = 0;                      // bins / (edges[bins] - edges[0])
    unsigned long long* counts = nullptr; // bins + 2: underflow, bins..., overflow (zeroed by the launcher)
};
Status launchHistogram(const HistogramArgs& args, StreamHandle stream);

struct ClusterArgs {
    const float* values = nullptr;
    const std::int32_t* cluster = nullptr; // -1: left out
    std::int64_t n = 0;
    std::int32_t clusters = 0;
    double* sum = nullptr;               // clusters
    double* finite = nullptr;            // clusters
    unsigned int* maxAbsBits = nullptr;  // clusters (bit patterns of non-negative floats order as integers)
    unsigned int* count = nullptr;       // clusters
    long long* firstBadNeuron = nullptr; // 1 value: lowest neuron with an index outside [-1, clusters), or n
};
// Zeroes the accumulators, then aggregates.
Status launchClusterAggregate(const ClusterArgs& args, StreamHandle stream);

struct SumSquaresArgs {
    const float* x = nullptr;
    std::int64_t rows = 0, cols = 0, ld = 0;
    double* partials = nullptr; // sumSquaresPartials() values, summed on the host in order
};
int sumSquaresPartials();
Status launchSumSquares(const SumSquaresArgs& args, StreamHandle stream);

} // namespace ts::kernels
