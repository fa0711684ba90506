// cudaError_t checks that carry expression, file and line into ts::Status (CUB's CubDebug, nvpro's
// NVVK_CHECK). Device-side header (.cuh): included only by kernels/*.cu.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "engine/core/error.hpp"

namespace ts::kernels {

inline Error cudaFailure(cudaError_t e, const char* expr, const char* file, int line) {
    // Reported here, so cleared here: a failed call leaves the runtime's last-error state set, and the next
    // good launch's cudaGetLastError() would report this failure again (sticky device errors stay anyway).
    (void)cudaGetLastError();
    const bool environment = e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
                             e == cudaErrorInitializationError || e == cudaErrorNotSupported ||
                             e == cudaErrorSystemDriverMismatch || e == cudaErrorCompatNotSupportedOnDevice;
    std::string msg = describeFailure(expr, cudaGetErrorName(e), file, line) + ": " + cudaGetErrorString(e);
    if (e == cudaErrorMemoryAllocation) msg += " (reduce the batch or the neuron count)";
    return makeError(environment ? ErrorKind::Environment : ErrorKind::Failed, msg);
}

} // namespace ts::kernels

// Return a Status error from the enclosing function when a CUDA runtime call fails.
#define TS_CUDA_CHECK(expr)                                                                                  \
    do {                                                                                                     \
        cudaError_t ts_cuda_error_ = (expr);                                                                 \
        if (ts_cuda_error_ != cudaSuccess)                                                                   \
            return ::ts::kernels::cudaFailure(ts_cuda_error_, #expr, __FILE__, __LINE__);                    \
    } while (0)

// After a <<<...>>> launch: configuration errors surface from cudaGetLastError.
#define TS_CUDA_CHECK_LAUNCH(name) TS_CUDA_CHECK(cudaGetLastError())
