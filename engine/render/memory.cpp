// Block sub-allocation, buffers, images, staging uploads and layout transitions.
#include "engine/render/memory.hpp"

#include <atomic>

#include <algorithm>
#include <cstring>

#include "engine/core/log.hpp"
#include "engine/render/context.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {
namespace {
constexpr VkDeviceSize kBlockSize = 64ull << 20;
VkDeviceSize alignUp(VkDeviceSize v, VkDeviceSize a) {
    return (v + a - 1) / a * a;
}
} // namespace

Allocator::Allocator(Context& ctx) : m_ctx(ctx) {
    vkGetPhysicalDeviceMemoryProperties(ctx.physicalDevice(), &m_memProps);
}

Allocator::~Allocator() {
    for (auto& b : m_blocks) {
        if (b.mapped) vkUnmapMemory(m_ctx.device(), b.memory);
        vkFreeMemory(m_ctx.device(), b.memory, nullptr);
    }
}

Expected<uint32_t> Allocator::findMemoryType(uint32_t typeBits, MemoryUsage usage) const {
    auto pick = [&](VkMemoryPropertyFlags want) -> int {
        for (uint32_t i = 0; i < m_memProps.memoryTypeCount; ++i)
            if ((typeBits & (1u << i)) && (m_memProps.memoryTypes[i].propertyFlags & want) == want)
                return int(i);
        return -1;
    };
    int t = -1;
    switch (usage) {
    case MemoryUsage::DeviceLocal:
        t = pick(VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        break;
    case MemoryUsage::Upload:
        t = pick(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
        break;
    case MemoryUsage::Readback:
        t = pick(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                 VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (t < 0) t = pick(VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
        break;
    }
    if (t < 0 && usage == MemoryUsage::DeviceLocal) t = pick(0);
    if (t < 0) return makeError(ErrorKind::Failed, "no suitable Vulkan memory type for the request");
    return static_cast<uint32_t>(t);
}

Expected<Allocation> Allocator::allocateDedicated(const VkMemoryRequirements& req, uint32_t type,
                                                  bool exportable) {
    VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = type;
    VkExportMemoryAllocateInfo exportInfo{VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO};
    if (exportable) {
        exportInfo.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
        ai.pNext = &exportInfo;
    }
    Allocation a;
    VkResult r = vkAllocateMemory(m_ctx.device(), &ai, nullptr, &a.memory);
    if (r != VK_SUCCESS) return vkError(r, "vkAllocateMemory", __FILE__, __LINE__);
    a.size = req.size;
    a.memoryType = type;
    if (m_memProps.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        r = vkMapMemory(m_ctx.device(), a.memory, 0, VK_WHOLE_SIZE, 0, &a.mapped);
        if (r != VK_SUCCESS) {
            vkFreeMemory(m_ctx.device(), a.memory, nullptr);
            return vkError(r, "vkMapMemory", __FILE__, __LINE__);
        }
    }
    std::lock_guard lock(m_mutex);
    m_bytesInUse += a.size;
    return a;
}

Expected<Allocation> Allocator::allocate(const VkMemoryRequirements& req, MemoryUsage usage, bool linear,
                                         bool exportable) {
    auto type = findMemoryType(req.memoryTypeBits, usage);
    if (!type) return type.error();
    if (exportable || req.size > kBlockSize / 2) return allocateDedicated(req, *type, exportable);

    std::lock_guard lock(m_mutex);
    for (uint32_t bi = 0;; ++bi) {
        if (bi == m_blocks.size()) {
            Block b;
            VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
            ai.allocationSize = kBlockSize;
            ai.memoryTypeIndex = *type;
            VkResult r = vkAllocateMemory(m_ctx.device(), &ai, nullptr, &b.memory);
            if (r != VK_SUCCESS) return vkError(r, "vkAllocateMemory", __FILE__, __LINE__);
            if (m_memProps.memoryTypes[*type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
                r = vkMapMemory(m_ctx.device(), b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped);
                if (r != VK_SUCCESS) {
                    vkFreeMemory(m_ctx.device(), b.memory, nullptr);
                    return vkError(r, "vkMapMemory", __FILE__, __LINE__);
                }
            }
            b.size = kBlockSize;
            b.memoryType = *type;
            b.linear = linear;
            b.freeRanges.push_back({0, kBlockSize});
            m_blocks.push_back(std::move(b));
        }
        Block& b = m_blocks[bi];
        if (b.memoryType != *type || b.linear != linear) continue;
        for (size_t i = 0; i < b.freeRanges.size(); ++i) {
            Range fr = b.freeRanges[i];
            VkDeviceSize start = alignUp(fr.offset, req.alignment);
            if (start + req.size > fr.offset + fr.size) continue;
            // Split the free range into the part before (alignment padding) and after.
            std::vector<Range> repl;
            if (start > fr.offset) repl.push_back({fr.offset, start - fr.offset});
            VkDeviceSize end = start + req.size;
            if (end < fr.offset + fr.size) repl.push_back({end, fr.offset + fr.size - end});
            b.freeRanges.erase(b.freeRanges.begin() + static_cast<long>(i));
            b.freeRanges.insert(b.freeRanges.begin() + static_cast<long>(i), repl.begin(), repl.end());
            Allocation a;
            a.memory = b.memory;
            a.offset = start;
            a.size = req.size;
            a.block = bi;
            a.memoryType = *type;
            a.mapped = b.mapped ? static_cast<char*>(b.mapped) + start : nullptr;
            m_bytesInUse += a.size;
            return a;
        }
    }
}

void Allocator::free(const Allocation& a) {
    if (!a.memory) return;
    std::lock_guard lock(m_mutex);
    m_bytesInUse -= a.size;
    if (a.block == UINT32_MAX) {
        if (a.mapped) vkUnmapMemory(m_ctx.device(), a.memory);
        vkFreeMemory(m_ctx.device(), a.memory, nullptr);
        return;
    }
    auto& ranges = m_blocks[a.block].freeRanges;
    auto it = std::lower_bound(ranges.begin(), ranges.end(), a.offset,
                               [](const Range& r, VkDeviceSize off) { return r.offset < off; });
    it = ranges.insert(it, {a.offset, a.size});
    // Merge with the next and previous free ranges where they touch.
    if (it + 1 != ranges.end() && it->offset + it->size == (it + 1)->offset) {
        it->size += (it + 1)->size;
        ranges.erase(it + 1);
    }
    if (it != ranges.begin() && (it - 1)->offset + (it - 1)->size == it->offset) {
        (it - 1)->size += it->size;
        ranges.erase(it);
    }
}

// --- Buffer ---

Expected<Buffer> Buffer::create(Context& ctx, const BufferDesc& desc) {
    if (desc.size == 0) return makeError(ErrorKind::Failed, "cannot create an empty Vulkan buffer");
    if (desc.exportable && !ctx.hasExternalMemoryFd())
        return makeError(ErrorKind::Environment,
                         "this Vulkan device cannot export memory (no VK_KHR_external_memory_fd)");
    static std::atomic<uint64_t> s_serial{0};
    Buffer b;
    b.m_ctx = &ctx;
    b.m_serial = ++s_serial;
    b.m_size = desc.size;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = desc.size;
    bci.usage = desc.usage;
    VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
    if (desc.exportable) {
        ext.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
        bci.pNext = &ext;
    }
    VkResult r = vkCreateBuffer(ctx.device(), &bci, nullptr, &b.m_buffer);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateBuffer", __FILE__, __LINE__);
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(ctx.device(), b.m_buffer, &req);
    auto alloc = ctx.allocator().allocate(req, desc.memory, true, desc.exportable);
    if (!alloc) return alloc.error();
    b.m_alloc = *alloc;
    r = vkBindBufferMemory(ctx.device(), b.m_buffer, b.m_alloc.memory, b.m_alloc.offset);
    if (r != VK_SUCCESS) return vkError(r, "vkBindBufferMemory", __FILE__, __LINE__);
    return b;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
    if (this != &o) {
        reset();
        m_ctx = o.m_ctx;
        m_buffer = std::exchange(o.m_buffer, VK_NULL_HANDLE);
        m_serial = std::exchange(o.m_serial, 0);
        m_size = o.m_size;
        m_alloc = std::exchange(o.m_alloc, Allocation{});
    }
    return *this;
}

void Buffer::reset() {
    if (m_buffer) vkDestroyBuffer(m_ctx->device(), m_buffer, nullptr);
    if (m_alloc.memory) m_ctx->allocator().free(m_alloc);
    m_buffer = VK_NULL_HANDLE;
    m_serial = 0;
    m_alloc = {};
}

Expected<int> Buffer::exportFd() const {
    auto getFd =
        reinterpret_cast<PFN_vkGetMemoryFdKHR>(vkGetDeviceProcAddr(m_ctx->device(), "vkGetMemoryFdKHR"));
    if (!getFd || m_alloc.block != UINT32_MAX)
        return makeError(ErrorKind::Environment,
                         "buffer memory is not exportable (create it with exportable = true)");
    VkMemoryGetFdInfoKHR info{VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR};
    info.memory = m_alloc.memory;
    info.handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
    int fd = -1;
    VkResult r = getFd(m_ctx->device(), &info, &fd);
    if (r != VK_SUCCESS) return vkError(r, "vkGetMemoryFdKHR", __FILE__, __LINE__);
    return fd;
}

// --- Image ---

Expected<Image> Image::create(Context& ctx, const ImageDesc& desc) {
    if (desc.width == 0 || desc.height == 0)
        return makeError(ErrorKind::Failed, "cannot create a 0-sized image");
    Image img;
    img.m_ctx = &ctx;
    img.m_desc = desc;
    VkImageCreateInfo ici{VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO};
    ici.imageType = VK_IMAGE_TYPE_2D;
    ici.format = desc.format;
    ici.extent = {desc.width, desc.height, 1};
    ici.mipLevels = 1;
    ici.arrayLayers = 1;
    ici.samples = VK_SAMPLE_COUNT_1_BIT;
    ici.tiling = VK_IMAGE_TILING_OPTIMAL;
    ici.usage = desc.usage;
    ici.initialLayout = VK_IMAGE_LAYOUT_UNDEFINED;
    VkResult r = vkCreateImage(ctx.device(), &ici, nullptr, &img.m_image);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateImage", __FILE__, __LINE__);
    VkMemoryRequirements req;
    vkGetImageMemoryRequirements(ctx.device(), img.m_image, &req);
    auto alloc = ctx.allocator().allocate(req, MemoryUsage::DeviceLocal, false);
    if (!alloc) return alloc.error();
    img.m_alloc = *alloc;
    r = vkBindImageMemory(ctx.device(), img.m_image, img.m_alloc.memory, img.m_alloc.offset);
    if (r != VK_SUCCESS) return vkError(r, "vkBindImageMemory", __FILE__, __LINE__);
    VkImageViewCreateInfo vci{VK_STRUCTURE_TYPE_IMAGE_VIEW_CREATE_INFO};
    vci.image = img.m_image;
    vci.viewType = VK_IMAGE_VIEW_TYPE_2D;
    vci.format = desc.format;
    vci.subresourceRange = {desc.aspect, 0, 1, 0, 1};
    r = vkCreateImageView(ctx.device(), &vci, nullptr, &img.m_view);
    if (r != VK_SUCCESS) return vkError(r, "vkCreateImageView", __FILE__, __LINE__);
    return img;
}

Image& Image::operator=(Image&& o) noexcept {
    if (this != &o) {
        reset();
        m_ctx = o.m_ctx;
        m_image = std::exchange(o.m_image, VK_NULL_HANDLE);
        m_view = std::exchange(o.m_view, VK_NULL_HANDLE);
        m_desc = o.m_desc;
        m_alloc = std::exchange(o.m_alloc, Allocation{});
    }
    return *this;
}

void Image::reset() {
    if (m_view) vkDestroyImageView(m_ctx->device(), m_view, nullptr);
    if (m_image) vkDestroyImage(m_ctx->device(), m_image, nullptr);
    if (m_alloc.memory) m_ctx->allocator().free(m_alloc);
    m_view = VK_NULL_HANDLE;
    m_image = VK_NULL_HANDLE;
    m_alloc = {};
}

// --- Uploads and barriers ---

Status uploadToBuffer(Context& ctx, Buffer& dst, const void* data, VkDeviceSize bytes, VkDeviceSize offset) {
    if (bytes == 0) return Status::ok();
    if (offset + bytes > dst.size()) return makeError(ErrorKind::Failed, "upload past the end of a buffer");
    if (dst.mapped()) {
        std::memcpy(static_cast<char*>(dst.mapped()) + offset, data, bytes);
        return Status::ok();
    }
    auto staging = Buffer::create(ctx, {bytes, VK_BUFFER_USAGE_TRANSFER_SRC_BIT, MemoryUsage::Upload});
    if (!staging) return staging.error();
    std::memcpy(staging->mapped(), data, bytes);
    return ctx.submitAndWait([&](VkCommandBuffer cmd) {
        VkBufferCopy region{0, offset, bytes};
        vkCmdCopyBuffer(cmd, staging->handle(), dst.handle(), 1, &region);
    });
}

void transitionImage(VkCommandBuffer cmd, VkImage image, VkImageAspectFlags aspect, VkImageLayout from,
                     VkImageLayout to, VkPipelineStageFlags2 srcStage, VkAccessFlags2 srcAccess,
                     VkPipelineStageFlags2 dstStage, VkAccessFlags2 dstAccess) {
    VkImageMemoryBarrier2 b{VK_STRUCTURE_TYPE_IMAGE_MEMORY_BARRIER_2};
    b.srcStageMask = srcStage;
    b.srcAccessMask = srcAccess;
    b.dstStageMask = dstStage;
    b.dstAccessMask = dstAccess;
    b.oldLayout = from;
    b.newLayout = to;
    b.srcQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    b.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    b.image = image;
    b.subresourceRange = {aspect, 0, 1, 0, 1};
    VkDependencyInfo dep{VK_STRUCTURE_TYPE_DEPENDENCY_INFO};
    dep.imageMemoryBarrierCount = 1;
    dep.pImageMemoryBarriers = &b;
    vkCmdPipelineBarrier2(cmd, &dep);
}

} // namespace ts::render
