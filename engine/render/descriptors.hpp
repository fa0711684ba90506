// Per-frame descriptor sets for passes whose bindings are all buffers: binding i gets types[i]; one set per
// frame in flight, rewritten only when the bound buffers change (compared by Buffer::serial(), never by
// handle: a recreated buffer can get its freed predecessor's handle value, and a set left pointing at the
// freed memory let shaders write into the heap).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

namespace ts::render {

class Context;
class Buffer;

class BufferSets {
  public:
    BufferSets() = default;
    ~BufferSets();
    BufferSets(const BufferSets&) = delete;
    BufferSets& operator=(const BufferSets&) = delete;

    Status init(Context& ctx, const std::vector<VkDescriptorType>& types, VkShaderStageFlags stages,
                uint32_t frames);
    VkDescriptorSetLayout layout() const { return m_layout; }
    VkDescriptorSet set(uint32_t slot) const { return m_sets[slot].set; }
    // Points the slot's bindings at `buffers` (whole range each); a no-op when nothing changed.
    void bind(uint32_t slot, std::initializer_list<const Buffer*> buffers);
    uint64_t writes() const { return m_writes; } // vkUpdateDescriptorSets calls so far (tests)

  private:
    struct Slot {
        VkDescriptorSet set = VK_NULL_HANDLE;
        std::vector<uint64_t> bound; // Buffer::serial() of each binding
    };
    VkDevice m_device = VK_NULL_HANDLE;
    VkDeviceSize m_maxRange = VK_WHOLE_SIZE; // bindings cover at most the device's storage-buffer range
    std::vector<VkDescriptorType> m_types;
    VkDescriptorSetLayout m_layout = VK_NULL_HANDLE;
    VkDescriptorPool m_pool = VK_NULL_HANDLE;
    std::vector<Slot> m_sets;
    uint64_t m_writes = 0;
};

} // namespace ts::render
