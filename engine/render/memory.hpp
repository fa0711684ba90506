// Device memory: a block sub-allocator (many buffers share a few VkDeviceMemory blocks), and move-only
// Buffer / Image types built from a Desc. Host-visible blocks stay mapped for their whole life.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

namespace ts::render {

class Context;

enum class MemoryUsage {
    DeviceLocal, // GPU-only: vertex, index, storage, images
    Upload,      // host-visible, coherent, written by the CPU each frame or as staging
    Readback,    // host-visible, cached where possible, read by the CPU
};

struct Allocation {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    VkDeviceSize offset = 0;
    VkDeviceSize size = 0;
    void* mapped = nullptr;      // null for device-local memory
    uint32_t block = UINT32_MAX; // UINT32_MAX: dedicated allocation
    uint32_t memoryType = 0;
};

// Contract: allocate() sub-allocates from 64 MiB blocks per (memory type, linear/optimal) pair, first fit
// with alignment; free() merges neighbours; empty blocks are kept for reuse until the allocator dies.
// Requests above half a block, and exportable memory, get a dedicated VkDeviceMemory.
class Allocator {
  public:
    explicit Allocator(Context& ctx);
    ~Allocator();

    Expected<Allocation> allocate(const VkMemoryRequirements& req, MemoryUsage usage, bool linear,
                                  bool exportable = false);
    void free(const Allocation& a);

    size_t blockCount() const { return m_blocks.size(); }
    VkDeviceSize bytesInUse() const { return m_bytesInUse; }

  private:
    struct Range {
        VkDeviceSize offset, size;
    };
    struct Block {
        VkDeviceMemory memory = VK_NULL_HANDLE;
        VkDeviceSize size = 0;
        uint32_t memoryType = 0;
        bool linear = true;
        void* mapped = nullptr;
        std::vector<Range> freeRanges; // sorted by offset
    };
    Expected<uint32_t> findMemoryType(uint32_t typeBits, MemoryUsage usage) const;
    Expected<Allocation> allocateDedicated(const VkMemoryRequirements& req, uint32_t type, bool exportable);

    Context& m_ctx;
    std::vector<Block> m_blocks;
    std::mutex m_mutex;
    VkDeviceSize m_bytesInUse = 0;
    VkPhysicalDeviceMemoryProperties m_memProps{};
};

struct BufferDesc {
    VkDeviceSize size = 0;
    VkBufferUsageFlags usage = 0;
    MemoryUsage memory = MemoryUsage::DeviceLocal;
    bool exportable = false; // memory exportable as an opaque fd (CUDA interop)
};

class Buffer {
  public:
    Buffer() = default;
    static Expected<Buffer> create(Context& ctx, const BufferDesc& desc);
    ~Buffer() { reset(); }
    Buffer(Buffer&& o) noexcept { *this = std::move(o); }
    Buffer& operator=(Buffer&& o) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    VkBuffer handle() const { return m_buffer; }
    // Unique per created buffer for the whole process. Handles are not: a new VkBuffer may reuse a freed
    // one's value (lavapipe's handles are heap pointers), so caches key on this instead.
    uint64_t serial() const { return m_serial; }
    VkDeviceSize size() const { return m_size; }
    void* mapped() const { return m_alloc.mapped; }
    const Allocation& allocation() const { return m_alloc; }
    explicit operator bool() const { return m_buffer != VK_NULL_HANDLE; }
    void reset();

    // Exports the memory of an `exportable` buffer as an opaque POSIX fd (caller owns the fd).
    Expected<int> exportFd() const;

  private:
    Context* m_ctx = nullptr;
    VkBuffer m_buffer = VK_NULL_HANDLE;
    uint64_t m_serial = 0;
    VkDeviceSize m_size = 0;
    Allocation m_alloc;
};

struct ImageDesc {
    uint32_t width = 0, height = 0;
    VkFormat format = VK_FORMAT_B8G8R8A8_UNORM;
    VkImageUsageFlags usage = 0;
    VkImageAspectFlags aspect = VK_IMAGE_ASPECT_COLOR_BIT;
};

class Image {
  public:
    Image() = default;
    static Expected<Image> create(Context& ctx, const ImageDesc& desc);
    ~Image() { reset(); }
    Image(Image&& o) noexcept { *this = std::move(o); }
    Image& operator=(Image&& o) noexcept;
    Image(const Image&) = delete;
    Image& operator=(const Image&) = delete;

    VkImage handle() const { return m_image; }
    VkImageView view() const { return m_view; }
    VkFormat format() const { return m_desc.format; }
    VkExtent2D extent() const { return {m_desc.width, m_desc.height}; }
    void reset();

  private:
    Context* m_ctx = nullptr;
    VkImage m_image = VK_NULL_HANDLE;
    VkImageView m_view = VK_NULL_HANDLE;
    ImageDesc m_desc;
    Allocation m_alloc;
};

// Copies `bytes` into `dst` at `offset` through a staging buffer (or directly when dst is mapped).
Status uploadToBuffer(Context& ctx, Buffer& dst, const void* data, VkDeviceSize bytes,
                      VkDeviceSize offset = 0);

// A sync2 image layout transition covering all mips/layers of one aspect.
void transitionImage(VkCommandBuffer cmd, VkImage image, VkImageAspectFlags aspect, VkImageLayout from,
                     VkImageLayout to, VkPipelineStageFlags2 srcStage, VkAccessFlags2 srcAccess,
                     VkPipelineStageFlags2 dstStage, VkAccessFlags2 dstAccess);

} // namespace ts::render
