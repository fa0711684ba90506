// The CUDA statistics backend (built with TS_ENABLE_CUDA): g++ glue over the CUDA-free launchers of kernels/.
#pragma once

#include <memory>

#include "engine/stats/reducer.hpp"

namespace ts::stats {

// Error (ErrorKind::Environment) with the runtime's reason when no usable device is present, e.g.
// "CUDA driver version is insufficient for CUDA runtime version".
// cudaDevice: an index, or -1 for TS_CUDA_DEVICE, else device 0.
Expected<std::unique_ptr<Reducer>> makeCudaReducer(int cudaDevice = -1);

} // namespace ts::stats
