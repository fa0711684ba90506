// The CPU statistics backend: ts::ThreadPool over blocks of neurons, one pass over the data, tiles of rows
// kept in cache for the second (deviation) sweep. What runs here and in CI; the reference for the CUDA
// backend.
#pragma once

#include <cstdint>
#include <memory>

#include "engine/stats/reducer.hpp"

namespace ts::stats {

struct CpuReducerDesc {
    int tileRows =
        64; // rows per tile: a tile (tileRows x tileCols floats) stays in L2 between its two sweeps
    // Neurons per block; 0: from the layer's width alone (autoTileCols), so results never depend on the
    // machine or the thread count. Wide blocks read long runs of each row (DRAM and the hardware prefetchers
    // follow them); at least 16 blocks per layer keep the threads busy.
    int tileCols = 0;
};

// The block width a layer of n neurons gets when CpuReducerDesc::tileCols is 0: n / 16 rounded up to a
// multiple of 8, within [256, 4096].
int autoTileCols(std::int64_t n);

class CpuReducer final : public Reducer {
  public:
    explicit CpuReducer(const CpuReducerDesc& desc = {});
    Backend backend() const override { return Backend::Cpu; }
    std::string description() const override;
    using Reducer::reduce;
    Expected<LayerStats> reduce(const TensorView& x, StatsDestination& dest,
                                const ReduceOptions& options = {}) override;
    Expected<ClusterStats> aggregateClusters(const VectorView<float>& values,
                                             const VectorView<std::int32_t>& cluster,
                                             std::int32_t clusters) override;
    Expected<double> normRatio(const TensorView& grad, const TensorView& weight) override;

  private:
    CpuReducerDesc m_desc;
};

} // namespace ts::stats
