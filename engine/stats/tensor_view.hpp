// Non-owning views of the tensors the reducer reads: a [rows x cols] matrix (rows = batch, cols = neurons) in
// host or device memory, and flat vectors. No LibTorch here: capture builds these from torch::Tensor.
#pragma once

#include <cstdint>
#include <string>

#include "engine/core/error.hpp"

struct CUstream_st; // the type behind cudaStream_t

namespace ts::stats {

enum class MemoryKind { Host, Device };
enum class DType { Float32, Float16, BFloat16, Float64, Int32, Int64, Other };

const char* dtypeName(DType t);

// Contract: element (r, c) is at  data + r * rowStride + c * colStride  (in elements). The reducer needs
// dtype Float32, colStride == 1 (neurons contiguous) and rowStride >= cols (rows may be padded, e.g. a column
// slice of a wider tensor). Anything else is rejected with a one-line error naming `name` and the shape; the
// caller converts (torch: x.to(torch::kFloat32).contiguous()). No silent conversion happens here.
struct TensorView {
    const void* data = nullptr;
    // Device memory: the stream that produced it (PyTorch's current stream), or nullptr when it is complete
    // already. The CUDA reducer orders its reads after that stream's work.
    ::CUstream_st* producer = nullptr;
    DType dtype = DType::Float32;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t rowStride = 0; // 0 means cols (densely packed)
    std::int64_t colStride = 1;
    MemoryKind memory = MemoryKind::Host;
    const char* name = "tensor"; // used in error messages, e.g. "layer3.relu activations"

    static TensorView matrix(const float* data, std::int64_t rows, std::int64_t cols,
                             const char* name = "tensor", MemoryKind memory = MemoryKind::Host) {
        TensorView v;
        v.data = data;
        v.rows = rows;
        v.cols = cols;
        v.rowStride = cols;
        v.name = name;
        v.memory = memory;
        return v;
    }

    std::int64_t ld() const { return rowStride == 0 ? cols : rowStride; }
    const float* floats() const { return static_cast<const float*>(data); }
    std::string shapeString() const; // "[64 x 1000] float32 (row stride 1000)"
};

// Checks a matrix against the contract above; `what` names the operation in the message.
Status validateMatrix(const TensorView& x, const char* what);

template <class T> struct VectorView {
    const T* data = nullptr;
    std::int64_t size = 0;
    MemoryKind memory = MemoryKind::Host;
};

} // namespace ts::stats
