// The CPU statistics backend: ts::ThreadPool over blocks of neurons, one pass over the data, tiles of rows
// kept in cache for the second (deviation) sweep. What runs here and in CI; the reference for the CUDA
// backend.
#pragma once

#include <memory>

#include "engine/stats/reducer.hpp"

namespace ts::stats {

struct CpuReducerDesc {
    int tileRows =
        64; // rows per tile: a tile (tileRows x tileCols floats) stays in L2 between its two sweeps
    int tileCols = 256; // neurons per block (1 KiB per row: short strips, see the prefetch in sweepTile)
};

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
