// tensorscape_native: the engine's statistics reducer for the Python module (python/tensorscape). Tensors
// cross as raw pointers (data_ptr, shape, stride, device, PyTorch's current stream), so this needs pybind11
// and the engine only, not PyTorch's C++ headers. CPU tensors: the fused CPU reducer; CUDA tensors: the
// project's CUDA kernels, ordered after the producing stream, results copied to host (8 floats per neuron).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/stats/reducer.hpp"

namespace py = pybind11;
using namespace ts::stats;

namespace {

std::mutex g_mutex; // reducers keep scratch buffers: one call at a time
std::unique_ptr<Reducer> g_cpu, g_cuda;
std::string g_cudaReason;
bool g_cudaTried = false;

Reducer& reducerFor(bool cuda) {
    if (!cuda) {
        if (!g_cpu) {
            auto r = makeReducer(Backend::Cpu);
            if (!r) throw std::runtime_error(r.error().message);
            g_cpu = std::move(r.value());
        }
        return *g_cpu;
    }
    if (!g_cudaTried) {
        g_cudaTried = true;
        auto r = makeReducer(Backend::Cuda);
        if (r) g_cuda = std::move(r.value());
        else g_cudaReason = r.error().message;
    }
    if (!g_cuda) throw std::runtime_error("tensorscape_native: no CUDA reducer (" + g_cudaReason + ")");
    return *g_cuda;
}

// Per-neuron statistics of the [rows x cols] float32 matrix at `data` (row stride `ld` elements) into host
// memory at `out`, laid out as [8 x statsStride(cols)] float32 (stats_layout.h); returns the layer's finite
// count (a cheap check for callers).
std::uint64_t neuronStats(std::uintptr_t data, std::int64_t rows, std::int64_t cols, std::int64_t ld, bool cuda,
                          std::uintptr_t stream, std::uintptr_t out, std::int64_t outBytes) {
    if (rows <= 0 || cols <= 0) throw std::invalid_argument("neuron_stats: empty matrix");
    if (std::size_t(outBytes) < statsBytes(cols)) throw std::invalid_argument("neuron_stats: output too small");
    TensorView x = TensorView::matrix(reinterpret_cast<const float*>(data), rows, cols, "tensor",
                                      cuda ? MemoryKind::Device : MemoryKind::Host);
    x.rowStride = ld;
    x.producer = reinterpret_cast<::CUstream_st*>(stream);
    HostStatsDestination dest(reinterpret_cast<void*>(out), std::size_t(outBytes));
    py::gil_scoped_release release; // PyTorch keeps running other threads meanwhile
    std::lock_guard lock(g_mutex);
    auto r = reducerFor(cuda).reduce(x, dest);
    if (!r) throw std::runtime_error(r.error().message);
    return r->finiteCount;
}

std::string backends() {
    std::lock_guard lock(g_mutex);
    std::string s = "cpu";
    try {
        reducerFor(true);
        s += ",cuda";
    } catch (const std::exception&) {
    }
    return s;
}

} // namespace

PYBIND11_MODULE(tensorscape_native, m) {
    m.doc() = "tensorscape's fused statistics reducer (CPU, and CUDA when built with it and a device is usable)";
    m.def("neuron_stats", &neuronStats, py::arg("data"), py::arg("rows"), py::arg("cols"), py::arg("ld"),
          py::arg("cuda"), py::arg("stream"), py::arg("out"), py::arg("out_bytes"));
    m.def("stats_stride", [](std::int64_t n) { return statsStride(n); });
    m.def("backends", &backends, "'cpu' or 'cpu,cuda'");
    m.attr("STATISTICS") = kStatisticCount;
}
