// Per-frame descriptor sets for passes whose bindings are all buffers: binding i gets types[i]; one set per
// frame in flight, rewritten only when the bound buffers change.
#pragma once

#include <vector>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

namespace ts::render {

class Context;

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
    void bind(uint32_t slot, const std::vector<VkBuffer>& buffers);

  private:
    struct Slot {
        VkDescriptorSet set = VK_NULL_HANDLE;
        std::vector<VkBuffer> bound;
    };
    VkDevice m_device = VK_NULL_HANDLE;
    std::vector<VkDescriptorType> m_types;
    VkDescriptorSetLayout m_layout = VK_NULL_HANDLE;
    VkDescriptorPool m_pool = VK_NULL_HANDLE;
    std::vector<Slot> m_sets;
};

} // namespace ts::render
