// Host-side combination of per-block running statistics into LayerStats, shared by the CPU and CUDA
// backends so both report a layer identically.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/stats/reduce_math.hpp"
#include "engine/stats/reducer.hpp"

namespace ts::stats {

inline LayerStats layerStatsFromPartials(const std::vector<math::Running<double>>& partials,
                                         std::int64_t rows, std::int64_t neurons) {
    math::Running<double> layer;
    math::runningInit(layer);
    for (const auto& r : partials)
        math::runningCombine(layer, r);
    LayerStats ls;
    ls.batch = rows;
    ls.neurons = neurons;
    ls.finiteCount = static_cast<std::uint64_t>(layer.n);
    ls.nanCount = static_cast<std::uint64_t>(layer.nans);
    ls.infCount = static_cast<std::uint64_t>(layer.infs);
    ls.zeroCount = static_cast<std::uint64_t>(layer.zeros);
    const bool any = layer.n > 0;
    ls.mean = any ? layer.mean : NAN;
    ls.std = any ? std::sqrt(layer.m2 / layer.n) : NAN;
    ls.l2Norm = std::sqrt(math::runningSumSquares(layer));
    ls.min = any ? static_cast<float>(layer.min) : NAN;
    ls.max = any ? static_cast<float>(layer.max) : NAN;
    return ls;
}

} // namespace ts::stats
