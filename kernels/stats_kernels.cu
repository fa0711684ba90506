// Statistics kernels: per-neuron one-pass reduction (warp = 32 consecutive neurons, so every row read is one
// coalesced 128-byte transaction; 8 row slices per block combined through shared memory; warp-shuffle combine
// of the layer partials), histogram (shared-memory bins), LOD cluster aggregation and sums of squares.
// The arithmetic is engine/stats/reduce_math.hpp, shared with the CPU backend.
#include "kernels/cuda_check.cuh"
#include "kernels/stats_kernels.hpp"

#include <algorithm>

namespace ts::kernels {
namespace {

namespace m = ts::stats::math;

constexpr int kWarp = 32;  // neurons per block (one per lane)
constexpr int kSlices = 8; // row slices per block (blockDim.y)
constexpr int kTile = 8;   // rows a thread loads at once: one tile of the shared arithmetic
constexpr unsigned kFull = 0xffffffffu;

__device__ LayerPartial shuffleDown(const LayerPartial& r, int offset) {
    LayerPartial o;
    o.rows = __shfl_down_sync(kFull, r.rows, offset);
    o.n = __shfl_down_sync(kFull, r.n, offset);
    o.mean = __shfl_down_sync(kFull, r.mean, offset);
    o.m2 = __shfl_down_sync(kFull, r.m2, offset);
    o.sumAbs = __shfl_down_sync(kFull, r.sumAbs, offset);
    o.zeros = __shfl_down_sync(kFull, r.zeros, offset);
    o.nans = __shfl_down_sync(kFull, r.nans, offset);
    o.infs = __shfl_down_sync(kFull, r.infs, offset);
    o.min = __shfl_down_sync(kFull, r.min, offset);
    o.max = __shfl_down_sync(kFull, r.max, offset);
    return o;
}

// Tree combine over the warp; lane 0 ends with the whole warp's state (fixed order: deterministic).
__device__ void warpCombine(LayerPartial& r) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) {
        LayerPartial o = shuffleDown(r, offset);
        if ((threadIdx.x & (kWarp - 1)) + offset < kWarp) m::runningCombine(r, o);
    }
}

// Rows [r0, r1) of neuron j, tiles of kTile rows dealt round-robin to the block's row slices.
__device__ void accumulateRows(const float* __restrict__ x, std::int64_t ld, std::int64_t j, bool valid,
                               std::int64_t r0, std::int64_t r1, int slice, LayerPartial& run) {
    for (std::int64_t t0 = r0 + std::int64_t(slice) * kTile; t0 < r1; t0 += kSlices * kTile) {
        const int rr = r1 - t0 < kTile ? int(r1 - t0) : kTile;
        float v[kTile];
#pragma unroll
        for (int i = 0; i < kTile; ++i)
            v[i] = (valid && i < rr) ? __ldg(x + (t0 + i) * ld + j) : 0.0f;
        if (!valid) continue;
        m::TileSums s;
        m::tileInit(s);
#pragma unroll
        for (int i = 0; i < kTile; ++i)
            if (i < rr) m::tileAccumulate(v[i], s.sum, s.sumAbs, s.min, s.max, s.zeros, s.nans, s.infs);
        s.shift = m::tileMean(float(rr), s.sum, s.nans, s.infs);
#pragma unroll
        for (int i = 0; i < kTile; ++i)
            if (i < rr) m::tileDeviation(v[i], s.shift, s.dev, s.m2);
        if (m::tileOverflowed(s.sumAbs)) { // finite values near FLT_MAX: the sums again, scaled (reduce_math.hpp)
            s.sum = s.sumAbs = s.dev = s.m2 = 0.0f;
#pragma unroll
            for (int i = 0; i < kTile; ++i)
                if (i < rr) m::tileRescueSums(v[i], s.sum, s.sumAbs);
            s.shift = m::tileMean(float(rr), s.sum, s.nans, s.infs);
#pragma unroll
            for (int i = 0; i < kTile; ++i)
                if (i < rr) m::tileRescueDeviation(v[i], s.shift, s.dev, s.m2);
            s.scale = TS_RESCUE_UNSCALE;
        }
        m::runningAddTile(run, float(rr), s);
    }
}

__device__ void finalizeNeuron(const LayerPartial& run, std::int64_t j, bool valid, float* out,
                               std::int64_t outStride, LayerPartial* layerPartials) {
    if (valid) {
        float v[TS_STATS_COUNT];
        m::runningFinalize(run, v);
#pragma unroll
        for (int s = 0; s < TS_STATS_COUNT; ++s)
            out[s * outStride + j] = v[s];
    }
    LayerPartial layer = run; // invalid lanes hold an empty state: combining it changes nothing
    warpCombine(layer);
    if ((threadIdx.x & (kWarp - 1)) == 0) layerPartials[j / kWarp] = layer;
}

// grid (ceil(cols / 32), rowSplits), block (32, kSlices).
__global__ void __launch_bounds__(kWarp* kSlices)
    neuronStatsKernel(NeuronStatsArgs a, std::int64_t chunkRows, LayerPartial* split) {
    __shared__ LayerPartial sh[kSlices][kWarp];
    const std::int64_t j = std::int64_t(blockIdx.x) * kWarp + threadIdx.x;
    const bool valid = j < a.cols;
    const std::int64_t r0 = std::int64_t(blockIdx.y) * chunkRows;
    const std::int64_t r1 = min(a.rows, r0 + chunkRows);
    LayerPartial run;
    m::runningInit(run);
    accumulateRows(a.x, a.ld, j, valid, r0, r1, threadIdx.y, run);
    sh[threadIdx.y][threadIdx.x] = run;
    __syncthreads();
    if (threadIdx.y != 0) return;
    for (int s = 1; s < kSlices; ++s)
        m::runningCombine(run, sh[s][threadIdx.x]);
    if (gridDim.y == 1) {
        finalizeNeuron(run, j, valid, a.out, a.outStride, a.layerPartials);
    } else if (valid) {
        split[std::int64_t(blockIdx.y) * a.cols + j] = run;
    }
}

// Row-split case (few neurons, many rows): combine the splits in order, then finalize. block = one warp.
__global__ void neuronStatsFinalizeKernel(NeuronStatsArgs a, int splits, const LayerPartial* split) {
    const std::int64_t j = std::int64_t(blockIdx.x) * kWarp + threadIdx.x;
    const bool valid = j < a.cols;
    LayerPartial run;
    m::runningInit(run);
    if (valid)
        for (int s = 0; s < splits; ++s)
            m::runningCombine(run, split[std::int64_t(s) * a.cols + j]);
    finalizeNeuron(run, j, valid, a.out, a.outStride, a.layerPartials);
}

struct SplitPlan {
    int splits = 1;
    std::int64_t chunkRows = 0;
};

SplitPlan planSplits(std::int64_t rows, std::int64_t cols, int smCount) {
    SplitPlan p;
    const std::int64_t blocksX = (cols + kWarp - 1) / kWarp;
    const std::int64_t target = std::int64_t(std::max(smCount, 1)) * 8;
    const std::int64_t rowsPerSplitMin = std::int64_t(kSlices) * kTile * 4; // >= 4 tiles per slice
    std::int64_t splits = 1;
    if (blocksX < target) {
        splits = (target + blocksX - 1) / blocksX;
        splits = std::min(splits, std::max<std::int64_t>(1, rows / rowsPerSplitMin));
        splits = std::min<std::int64_t>(splits, 65535);
    }
    std::int64_t chunk = (rows + splits - 1) / splits;
    chunk = (chunk + kTile - 1) / kTile * kTile;
    p.chunkRows = chunk;
    p.splits = int((rows + chunk - 1) / chunk);
    return p;
}

// ---- Histogram: shared-memory bins when they fit, global atomics otherwise.
constexpr int kHistBlock = 256;

__global__ void histogramKernel(HistogramArgs a, bool sharedBins) {
    extern __shared__ unsigned int smem[];
    const int slots = a.bins + 2;
    unsigned int* bins = smem;
    float* edges = reinterpret_cast<float*>(smem + slots);
    const float* e = a.edges;
    if (sharedBins) {
        for (int i = threadIdx.x; i < slots; i += blockDim.x)
            bins[i] = 0;
        for (int i = threadIdx.x; i <= a.bins; i += blockDim.x)
            edges[i] = a.edges[i];
        e = edges;
        __syncthreads();
    }
    const std::int64_t total = a.rows * a.cols;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t r = i / a.cols, j = i - r * a.cols;
        const int b = m::histogramBin(__ldg(a.x + r * a.ld + j), e, a.bins, a.scale);
        if (b < -1) continue;
        if (sharedBins)
            atomicAdd(&bins[b + 1], 1u);
        else
            atomicAdd(&a.counts[b + 1], 1ull);
    }
    if (!sharedBins) return;
    __syncthreads();
    for (int i = threadIdx.x; i < slots; i += blockDim.x)
        if (bins[i]) atomicAdd(&a.counts[i], (unsigned long long)bins[i]);
}

// ---- LOD clusters.
__global__ void clusterKernel(ClusterArgs a) {
    const std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= a.n) return;
    const std::int32_t c = a.cluster[i];
    if (c < -1 || c >= a.clusters) {
        atomicMin(a.firstBadNeuron, (long long)i);
        return;
    }
    if (c < 0) return;
    const float v = a.values[i];
    double sum = 0, finite = 0;
    float maxAbs = 0;
    m::clusterAccumulate(v, sum, finite, maxAbs);
    if (finite > 0) {
        atomicAdd(&a.sum[c], sum);
        atomicAdd(&a.finite[c], finite);
        atomicMax(&a.maxAbsBits[c], __float_as_uint(maxAbs));
    }
    atomicAdd(&a.count[c], 1u);
}

__global__ void setValue(long long* p, long long v) {
    *p = v;
}

// ---- Sums of squares (norm ratio): grid-stride, warp shuffles, one partial per block.
constexpr int kSumBlocks = 1024, kSumThreads = 256;

__global__ void sumSquaresKernel(SumSquaresArgs a) {
    __shared__ double warpSums[kSumThreads / kWarp];
    double s = 0;
    const std::int64_t total = a.rows * a.cols;
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const std::int64_t r = i / a.cols, j = i - r * a.cols;
        const double v = __ldg(a.x + r * a.ld + j);
        s += v * v;
    }
    for (int offset = kWarp / 2; offset > 0; offset /= 2)
        s += __shfl_down_sync(kFull, s, offset);
    if ((threadIdx.x & (kWarp - 1)) == 0) warpSums[threadIdx.x / kWarp] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int w = 0; w < kSumThreads / kWarp; ++w)
            t += warpSums[w];
        a.partials[blockIdx.x] = t;
    }
}

} // namespace

std::int64_t neuronStatsLayerPartials(std::int64_t cols) {
    return (cols + kWarp - 1) / kWarp;
}

std::size_t neuronStatsScratchBytes(std::int64_t rows, std::int64_t cols, int smCount) {
    SplitPlan p = planSplits(rows, cols, smCount);
    return p.splits > 1 ? std::size_t(p.splits) * std::size_t(cols) * sizeof(LayerPartial) : 0;
}

Status checkKernelImage() {
    cudaFuncAttributes attributes{};
    TS_CUDA_CHECK(cudaFuncGetAttributes(&attributes, neuronStatsKernel));
    return Status::ok();
}

Status launchNeuronStats(const NeuronStatsArgs& a, StreamHandle stream) {
    if (a.rows <= 0 || a.cols <= 0 || a.ld < a.cols || !a.x || !a.out || !a.layerPartials)
        return makeError(ErrorKind::Usage, "launchNeuronStats: bad arguments (empty matrix or null pointer)");
    SplitPlan p = planSplits(a.rows, a.cols, a.smCount);
    if (p.splits > 1 && !a.scratch)
        return makeError(ErrorKind::Usage,
                         "launchNeuronStats: row split needs scratch (neuronStatsScratchBytes)");
    const std::int64_t blocksX = neuronStatsLayerPartials(a.cols);
    if (blocksX > 0x7fffffff) return makeError(ErrorKind::Usage, "launchNeuronStats: too many neurons");
    dim3 grid(unsigned(blocksX), unsigned(p.splits)), block(kWarp, kSlices);
    auto* split = static_cast<LayerPartial*>(a.scratch);
    neuronStatsKernel<<<grid, block, 0, stream>>>(a, p.chunkRows, split);
    TS_CUDA_CHECK_LAUNCH(neuronStatsKernel);
    if (p.splits > 1) {
        neuronStatsFinalizeKernel<<<unsigned(blocksX), kWarp, 0, stream>>>(a, p.splits, split);
        TS_CUDA_CHECK_LAUNCH(neuronStatsFinalizeKernel);
    }
    return Status::ok();
}

Status launchHistogram(const HistogramArgs& a, StreamHandle stream) {
    if (a.rows <= 0 || a.cols <= 0 || a.bins <= 0 || !a.x || !a.edges || !a.counts)
        return makeError(ErrorKind::Usage, "launchHistogram: bad arguments");
    TS_CUDA_CHECK(cudaMemsetAsync(a.counts, 0, sizeof(unsigned long long) * (a.bins + 2), stream));
    const std::size_t shared = sizeof(unsigned int) * (a.bins + 2) + sizeof(float) * (a.bins + 1);
    const bool sharedBins = shared <= 40 * 1024;
    const std::int64_t total = a.rows * a.cols;
    const unsigned blocks = unsigned(std::min<std::int64_t>(4096, (total + kHistBlock - 1) / kHistBlock));
    histogramKernel<<<blocks, kHistBlock, sharedBins ? shared : 0, stream>>>(a, sharedBins);
    TS_CUDA_CHECK_LAUNCH(histogramKernel);
    return Status::ok();
}

Status launchClusterAggregate(const ClusterArgs& a, StreamHandle stream) {
    if (a.n <= 0 || a.clusters <= 0 || !a.values || !a.cluster || !a.sum || !a.finite || !a.maxAbsBits ||
        !a.count || !a.firstBadNeuron)
        return makeError(ErrorKind::Usage, "launchClusterAggregate: bad arguments");
    const std::size_t c = std::size_t(a.clusters);
    TS_CUDA_CHECK(cudaMemsetAsync(a.sum, 0, c * sizeof(double), stream));
    TS_CUDA_CHECK(cudaMemsetAsync(a.finite, 0, c * sizeof(double), stream));
    TS_CUDA_CHECK(cudaMemsetAsync(a.maxAbsBits, 0, c * sizeof(unsigned int), stream));
    TS_CUDA_CHECK(cudaMemsetAsync(a.count, 0, c * sizeof(unsigned int), stream));
    setValue<<<1, 1, 0, stream>>>(a.firstBadNeuron, (long long)a.n);
    TS_CUDA_CHECK_LAUNCH(setValue);
    const unsigned blocks = unsigned((a.n + 255) / 256);
    clusterKernel<<<blocks, 256, 0, stream>>>(a);
    TS_CUDA_CHECK_LAUNCH(clusterKernel);
    return Status::ok();
}

int sumSquaresPartials() {
    return kSumBlocks;
}

Status launchSumSquares(const SumSquaresArgs& a, StreamHandle stream) {
    if (a.rows <= 0 || a.cols <= 0 || !a.x || !a.partials)
        return makeError(ErrorKind::Usage, "launchSumSquares: bad arguments");
    sumSquaresKernel<<<kSumBlocks, kSumThreads, 0, stream>>>(a);
    TS_CUDA_CHECK_LAUNCH(sumSquaresKernel);
    return Status::ok();
}

} // namespace ts::kernels
