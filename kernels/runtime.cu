// CUDA runtime wrappers behind runtime.hpp: every call checked with TS_CUDA_CHECK.
#include "kernels/cuda_check.cuh"
#include "kernels/runtime.hpp"

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/stats_kernels.hpp"

namespace ts::kernels {

Expected<DeviceInfo> probeDevice(const DeviceRequest& request) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); // clear the sticky-free error so later probes start clean
        return makeError(ErrorKind::Environment, cudaGetErrorString(e));
    }
    std::vector<cudaDeviceProp> props(static_cast<size_t>(count));
    std::vector<DeviceSummary> devices(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
        TS_CUDA_CHECK(cudaGetDeviceProperties(&props[size_t(i)], i));
        DeviceSummary& d = devices[size_t(i)];
        d.index = i;
        d.name = props[size_t(i)].name;
        d.major = props[size_t(i)].major;
        d.minor = props[size_t(i)].minor;
        std::memcpy(d.uuid, props[size_t(i)].uuid.bytes, sizeof(d.uuid));
    }
    TS_ASSIGN_OR_RETURN(index, chooseDevice(devices, request, std::getenv("TS_CUDA_DEVICE")));
    const cudaDeviceProp& prop = props[size_t(index)];
    // A GPU older than every architecture this build has code for: the first launch would fail with
    // cudaErrorNoKernelImageForDevice, so it is said here and the caller falls back to the CPU.
    const std::string sm = std::to_string(prop.major) + std::to_string(prop.minor);
    if (!buildRunsOn(TS_CUDA_ARCHITECTURES_TEXT, prop.major, prop.minor))
        return makeError(ErrorKind::Environment, std::string(prop.name) + " (sm_" + sm +
                                                     ") cannot run this build's CUDA code (built for " +
                                                     TS_CUDA_ARCHITECTURES_TEXT + "); rebuild with "
                                                     "-DTS_CUDA_ARCHITECTURES=" + sm);
    TS_CUDA_CHECK(cudaSetDevice(index));
    TS_TRY(checkKernelImage());
    DeviceInfo info;
    info.index = index;
    info.name = prop.name;
    info.major = prop.major;
    info.minor = prop.minor;
    info.smCount = prop.multiProcessorCount;
    info.totalMemory = prop.totalGlobalMem;
    std::memcpy(info.uuid, prop.uuid.bytes, sizeof(info.uuid));
    return info;
}

Expected<Stream> Stream::create() {
    Stream s;
    cudaStream_t h = nullptr;
    TS_CUDA_CHECK(cudaStreamCreateWithFlags(&h, cudaStreamNonBlocking));
    s.m_stream = h;
    return std::move(s); // C++17 (nvcc): no implicit move into Expected<T>(T)
}

Stream::~Stream() {
    if (m_stream) cudaStreamDestroy(m_stream);
}

Stream& Stream::operator=(Stream&& o) noexcept {
    if (this != &o) {
        if (m_stream) cudaStreamDestroy(m_stream);
        m_stream = o.m_stream;
        o.m_stream = nullptr;
    }
    return *this;
}

Status Stream::synchronize() const {
    return synchronizeStream(m_stream);
}

Expected<DeviceBuffer> DeviceBuffer::allocate(std::size_t bytes) {
    DeviceBuffer b;
    TS_TRY(b.reserve(bytes));
    return std::move(b);
}

DeviceBuffer::~DeviceBuffer() {
    if (m_ptr) cudaFree(m_ptr);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (m_ptr) cudaFree(m_ptr);
        m_ptr = o.m_ptr;
        m_bytes = o.m_bytes;
        o.m_ptr = nullptr;
        o.m_bytes = 0;
    }
    return *this;
}

Status DeviceBuffer::reserve(std::size_t bytes) {
    if (bytes <= m_bytes && m_ptr) return Status::ok();
    if (m_ptr) {
        TS_CUDA_CHECK(cudaFree(m_ptr));
        m_ptr = nullptr;
        m_bytes = 0;
    }
    TS_CUDA_CHECK(cudaMalloc(&m_ptr, bytes == 0 ? 1 : bytes));
    m_bytes = bytes;
    return Status::ok();
}

Status synchronizeStream(StreamHandle stream) {
    TS_CUDA_CHECK(cudaStreamSynchronize(stream));
    return Status::ok();
}

Status streamWaitFor(StreamHandle waiter, StreamHandle producer) {
    if (waiter == producer) return Status::ok();
    cudaEvent_t ev = nullptr;
    TS_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    cudaError_t e = cudaEventRecord(ev, producer);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(waiter, ev, 0);
    cudaEventDestroy(ev); // released once the wait completes
    TS_CUDA_CHECK(e);
    return Status::ok();
}

Status copyAsync(void* dst, const void* src, std::size_t bytes, StreamHandle stream) {
    TS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
    return Status::ok();
}

Status copy2DAsync(void* dst, std::size_t dstPitch, const void* src, std::size_t srcPitch,
                   std::size_t widthBytes, std::size_t height, StreamHandle stream) {
    TS_CUDA_CHECK(
        cudaMemcpy2DAsync(dst, dstPitch, src, srcPitch, widthBytes, height, cudaMemcpyDefault, stream));
    return Status::ok();
}

Status memsetAsync(void* dst, int value, std::size_t bytes, StreamHandle stream) {
    TS_CUDA_CHECK(cudaMemsetAsync(dst, value, bytes, stream));
    return Status::ok();
}

} // namespace ts::kernels
