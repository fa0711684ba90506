// CUDA runtime wrappers behind runtime.hpp: every call checked with TS_CUDA_CHECK.
#include "kernels/cuda_check.cuh"
#include "kernels/runtime.hpp"

#include <cstring>
#include <utility>

namespace ts::kernels {

Expected<DeviceInfo> probeDevice() {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); // clear the sticky-free error so later probes start clean
        return makeError(ErrorKind::Environment, cudaGetErrorString(e));
    }
    if (count == 0) return makeError(ErrorKind::Environment, "the CUDA runtime reports no device");
    DeviceInfo info;
    cudaDeviceProp prop{};
    TS_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    TS_CUDA_CHECK(cudaSetDevice(0));
    info.index = 0;
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
