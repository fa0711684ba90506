// CUDA-Vulkan sharing, CUDA side, CUDA-free interface: import Vulkan memory exported with
// VK_KHR_external_memory_fd (OPAQUE_FD) as a device pointer, and a timeline semaphore exported with
// VK_KHR_external_semaphore_fd to order CUDA work against Vulkan work. Implemented in interop.cu.
//
// Teardown order: the CUDA work using the pointer must be finished (synchronise the stream); then destroy
// ExternalMemory (cudaFree of the mapping, cudaDestroyExternalMemory) BEFORE the Vulkan side frees the
// VkDeviceMemory; ExternalSemaphore likewise before vkDestroySemaphore.
#pragma once

#include <cstdint>

#include "engine/core/error.hpp"
#include "kernels/runtime.hpp"

namespace ts::kernels {

struct ExternalMemoryDesc {
    int fd = -1; // from vkGetMemoryFdKHR; ownership passes to import() (closed on failure)
    std::uint64_t allocationSize = 0; // size of the whole VkDeviceMemory allocation
    std::uint64_t offset = 0;         // of the mapped range inside the allocation
    std::uint64_t size = 0;           // bytes to map
    bool dedicated = false;           // VkMemoryDedicatedAllocateInfo was used
};

class ExternalMemory {
  public:
    static Expected<ExternalMemory> import(const ExternalMemoryDesc& desc);
    ExternalMemory() = default;
    ~ExternalMemory();
    ExternalMemory(ExternalMemory&& o) noexcept;
    ExternalMemory& operator=(ExternalMemory&& o) noexcept;
    ExternalMemory(const ExternalMemory&) = delete;
    ExternalMemory& operator=(const ExternalMemory&) = delete;

    void* devicePointer() const { return m_ptr; }
    std::uint64_t size() const { return m_size; }

  private:
    void reset();
    void* m_handle = nullptr; // cudaExternalMemory_t
    void* m_ptr = nullptr;
    std::uint64_t m_size = 0;
};

class ExternalSemaphore {
  public:
    // A Vulkan timeline semaphore (VK_SEMAPHORE_TYPE_TIMELINE) exported as OPAQUE_FD. fd ownership as above.
    static Expected<ExternalSemaphore> importTimeline(int fd);
    ExternalSemaphore() = default;
    ~ExternalSemaphore();
    ExternalSemaphore(ExternalSemaphore&& o) noexcept : m_handle(o.m_handle) { o.m_handle = nullptr; }
    ExternalSemaphore& operator=(ExternalSemaphore&& o) noexcept;
    ExternalSemaphore(const ExternalSemaphore&) = delete;
    ExternalSemaphore& operator=(const ExternalSemaphore&) = delete;

    // Work queued on `stream` after wait() starts once the semaphore reaches `value`.
    Status wait(std::uint64_t value, StreamHandle stream) const;
    // The semaphore takes `value` when the work queued on `stream` before signal() has finished.
    Status signal(std::uint64_t value, StreamHandle stream) const;

  private:
    void* m_handle = nullptr; // cudaExternalSemaphore_t
};

} // namespace ts::kernels
