// Where the reducer writes its per-neuron statistics for the renderer (layout: engine/stats/stats_layout.h).
// CPU: a caller-provided host pointer (the renderer's host-visible, mapped Vulkan buffer). CUDA: Vulkan
// memory exported with VK_KHR_external_memory_fd and imported into CUDA, so statistics never cross the PCIe
// bus.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "engine/core/error.hpp"
#include "engine/stats/stats_layout.h"
#include "engine/stats/tensor_view.hpp"

struct CUstream_st; // opaque: the same type as cudaStream_t, so this header needs no CUDA

namespace ts::stats {

using StreamHandle = CUstream_st*;

// Contract: data() points at statsBytes(n) bytes or more (capacityBytes()) in memory(), laid out as
// stats_layout.h says. A reducer calls beginWrite, writes all statistics for one step, then endWrite, on its
// stream (nullptr for the CPU backend). The destination does the synchronisation with the reader.
class StatsDestination {
  public:
    virtual ~StatsDestination() = default;
    virtual MemoryKind memory() const = 0;
    virtual float* data() = 0;
    virtual std::size_t capacityBytes() const = 0;
    virtual Status beginWrite(StreamHandle stream) = 0;
    virtual Status endWrite(StreamHandle stream) = 0;
    // How many writes completed (the generation number of the current contents).
    virtual std::uint64_t generation() const = 0;

    // Error when this destination cannot hold `neurons` neurons.
    Status checkCapacity(std::int64_t neurons) const;
};

// Host memory owned by the caller (a mapped Vulkan buffer, or a std::vector). No synchronisation: the caller
// must not read while a reduce() runs (the renderer copies or reads between steps).
class HostStatsDestination final : public StatsDestination {
  public:
    HostStatsDestination(void* data, std::size_t bytes) : m_data(static_cast<float*>(data)), m_bytes(bytes) {}
    MemoryKind memory() const override { return MemoryKind::Host; }
    float* data() override { return m_data; }
    std::size_t capacityBytes() const override { return m_bytes; }
    Status beginWrite(StreamHandle) override { return Status::ok(); }
    Status endWrite(StreamHandle) override {
        ++m_generation;
        return Status::ok();
    }
    std::uint64_t generation() const override { return m_generation; }

    float* stat(Statistic s, std::int64_t neurons) { return m_data + statsIndex(s, 0, neurons); }

  private:
    float* m_data;
    std::size_t m_bytes;
    std::uint64_t m_generation = 0;
};

// What the Vulkan side hands over for a buffer whose memory it exported with VK_KHR_external_memory_fd
// (vkGetMemoryFdKHR, handle type OPAQUE_FD) and, optionally, a timeline semaphore exported with
// VK_KHR_external_semaphore_fd (vkGetSemaphoreFdKHR, OPAQUE_FD).
struct ExportedVulkanBuffer {
    int memoryFd = -1;                // importVulkanStatsDestination takes it (and the semaphore fd) over
                                      // in every case: CUDA owns both on success, they are closed on failure
    std::uint64_t allocationSize = 0; // VkMemoryAllocateInfo::allocationSize of the whole allocation
    std::uint64_t offset = 0;         // the buffer's offset inside the allocation (vkBindBufferMemory)
    std::uint64_t size = 0;           // bytes of the buffer, >= statsBytes(neurons)
    bool dedicated = false;           // allocated with VkMemoryDedicatedAllocateInfo
    int timelineSemaphoreFd = -1;     // -1: no semaphore; endWrite then synchronises the stream
    // VkPhysicalDeviceIDProperties::deviceUUID of the device that allocated the memory: the import uses the
    // CUDA device with the same UUID (an error when there is none). Without it, the default device.
    bool hasDeviceUuid = false;
    unsigned char deviceUuid[16] = {};
};

// Synchronisation protocol on the shared timeline semaphore, for write generation g = 0, 1, 2, ...:
//   the reducer waits for value 2g (the renderer's release of generation g-1; value 0 at creation),
//   writes, then signals 2g+1;  the renderer waits for 2g+1 before reading and signals 2g+2 when done.
// Without a semaphore, endWrite blocks until the writes finished (cudaStreamSynchronize) and the renderer
// must not read during a reduce().
// Imports the buffer into CUDA (kernels/interop.hpp). Errors: built without CUDA, no device, import failure.
Expected<std::unique_ptr<StatsDestination>> importVulkanStatsDestination(const ExportedVulkanBuffer& buffer);

} // namespace ts::stats
