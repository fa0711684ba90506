// CUDA-free interface to the CUDA runtime pieces the engine needs: device probe, streams, device buffers and
// copies. Included by g++ code (engine/stats); implemented in runtime.cu. Handles are opaque.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/core/error.hpp"
#include "kernels/device_choice.hpp"

struct CUstream_st; // the type behind cudaStream_t

namespace ts::kernels {

using StreamHandle = CUstream_st*;

struct DeviceInfo {
    int index = 0;
    std::string name;
    int major = 0, minor = 0;
    int smCount = 0;
    std::size_t totalMemory = 0;
    unsigned char uuid[16] = {}; // matches VkPhysicalDeviceIDProperties::deviceUUID of the same GPU
};

// The requested CUDA device (device_choice.hpp: an index, the Vulkan device's UUID, else TS_CUDA_DEVICE, else
// device 0), made current after checking that this build has code for it. Error (ErrorKind::Environment) with
// the reason when there is none or it cannot run our kernels, e.g. "CUDA driver version is insufficient for
// CUDA runtime version"; ErrorKind::Usage for an index that does not exist.
Expected<DeviceInfo> probeDevice(const DeviceRequest& request = {});

// Move-only owner of a non-blocking cudaStream_t.
class Stream {
  public:
    static Expected<Stream> create();
    Stream() = default;
    ~Stream();
    Stream(Stream&& o) noexcept : m_stream(o.m_stream) { o.m_stream = nullptr; }
    Stream& operator=(Stream&& o) noexcept;
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    StreamHandle handle() const { return m_stream; }
    Status synchronize() const;

  private:
    StreamHandle m_stream = nullptr;
};

// Move-only owner of cudaMalloc memory.
class DeviceBuffer {
  public:
    static Expected<DeviceBuffer> allocate(std::size_t bytes);
    DeviceBuffer() = default;
    ~DeviceBuffer();
    DeviceBuffer(DeviceBuffer&& o) noexcept : m_ptr(o.m_ptr), m_bytes(o.m_bytes) {
        o.m_ptr = nullptr, o.m_bytes = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    void* data() const { return m_ptr; }
    template <class T> T* as() const { return static_cast<T*>(m_ptr); }
    std::size_t bytes() const { return m_bytes; }
    // Grows (never shrinks) to at least `bytes`; contents are not kept.
    Status reserve(std::size_t bytes);

  private:
    void* m_ptr = nullptr;
    std::size_t m_bytes = 0;
};

Status synchronizeStream(StreamHandle stream);
// Work queued on `waiter` from now on starts after everything queued on `producer` so far (an event recorded
// on producer; neither stream blocks the host). The way device tensors made by LibTorch or PyTorch on their
// current stream are read in order.
Status streamWaitFor(StreamHandle waiter, StreamHandle producer);
// Asynchronous on `stream`; host memory should be pinned for real overlap (pageable works, synchronously).
Status copyAsync(void* dst, const void* src, std::size_t bytes, StreamHandle stream);
// 2D copy: `height` rows of `widthBytes`, row pitches in bytes (any direction, cudaMemcpyDefault).
Status copy2DAsync(void* dst, std::size_t dstPitch, const void* src, std::size_t srcPitch,
                   std::size_t widthBytes, std::size_t height, StreamHandle stream);
Status memsetAsync(void* dst, int value, std::size_t bytes, StreamHandle stream);

} // namespace ts::kernels
