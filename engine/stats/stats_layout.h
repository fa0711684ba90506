// Layout of the per-neuron statistics buffer that the reducer writes and the renderer reads: one file for
// C++, CUDA and GLSL (nvpro shaderio style). Structure of arrays, one float per neuron per statistic.
#ifndef TS_STATS_LAYOUT_H
#define TS_STATS_LAYOUT_H

// Statistic s of neuron i lives at float index  s * stride + i,  stride = TS_STATS_STRIDE(neurons), i.e. the
// neuron count rounded up to a multiple of 64 floats, so every statistic's array starts 256-byte aligned and
// the renderer can bind one statistic as its own storage-buffer range (minStorageBufferOffsetAlignment <=
// 256). Padding floats between arrays are left untouched. Counts are stored as floats: exact for batches <
// 2^24.
//
// Values are over the batch (the rows of a [batch x neurons] tensor). NaN and +-Inf are EXCLUDED from mean,
// mean |x|, variance, min and max and counted in NAN_COUNT / INF_COUNT; those five are NaN for a neuron with
// no finite value. ZERO_FRACTION is (exact zeros) / batch. VARIANCE is the population variance (divide by n).
#define TS_STATS_MEAN 0
#define TS_STATS_MEAN_ABS 1
#define TS_STATS_VARIANCE 2
#define TS_STATS_MIN 3
#define TS_STATS_MAX 4
#define TS_STATS_ZERO_FRACTION 5
#define TS_STATS_NAN_COUNT 6
#define TS_STATS_INF_COUNT 7
#define TS_STATS_COUNT 8

#define TS_STATS_ALIGN_FLOATS 64
#define TS_STATS_STRIDE(neurons) ((((neurons) + 63) / 64) * 64)

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
namespace ts::stats {

// The statistics a neuron has, in buffer order.
enum class Statistic : int {
    Mean = TS_STATS_MEAN,
    MeanAbs = TS_STATS_MEAN_ABS,
    Variance = TS_STATS_VARIANCE,
    Min = TS_STATS_MIN,
    Max = TS_STATS_MAX,
    ZeroFraction = TS_STATS_ZERO_FRACTION,
    NanCount = TS_STATS_NAN_COUNT,
    InfCount = TS_STATS_INF_COUNT,
};
inline constexpr int kStatisticCount = TS_STATS_COUNT;

// Floats between the starts of two consecutive statistic arrays.
constexpr std::int64_t statsStride(std::int64_t neurons) {
    return TS_STATS_STRIDE(neurons);
}
// Bytes a destination needs for `neurons` neurons.
constexpr std::size_t statsBytes(std::int64_t neurons) {
    return static_cast<std::size_t>(statsStride(neurons)) * TS_STATS_COUNT * sizeof(float);
}
// Float index of statistic s of neuron i.
constexpr std::int64_t statsIndex(Statistic s, std::int64_t neuron, std::int64_t neurons) {
    return static_cast<std::int64_t>(s) * statsStride(neurons) + neuron;
}

static_assert(statsStride(1) == 64 && statsStride(64) == 64 && statsStride(65) == 128);
static_assert(statsBytes(64) == 64 * 8 * 4);

} // namespace ts::stats
#endif

#endif // TS_STATS_LAYOUT_H
