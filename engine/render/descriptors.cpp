// BufferSets.
#include "engine/render/descriptors.hpp"

#include "engine/render/context.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {

BufferSets::~BufferSets() {
    if (m_pool) vkDestroyDescriptorPool(m_device, m_pool, nullptr);
    if (m_layout) vkDestroyDescriptorSetLayout(m_device, m_layout, nullptr);
}

Status BufferSets::init(Context& ctx, const std::vector<VkDescriptorType>& types, VkShaderStageFlags stages,
                        uint32_t frames) {
    m_device = ctx.device();
    m_maxRange = ctx.maxStorageBufferRange();
    m_types = types;
    std::vector<VkDescriptorSetLayoutBinding> bindings(types.size());
    std::vector<VkDescriptorPoolSize> sizes;
    for (uint32_t i = 0; i < types.size(); ++i) {
        bindings[i] = {i, types[i], 1, stages, nullptr};
        sizes.push_back({types[i], frames});
    }
    VkDescriptorSetLayoutCreateInfo lci{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    lci.bindingCount = uint32_t(bindings.size());
    lci.pBindings = bindings.data();
    TS_VK_CHECK(vkCreateDescriptorSetLayout(m_device, &lci, nullptr, &m_layout));
    VkDescriptorPoolCreateInfo pci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pci.maxSets = frames;
    pci.poolSizeCount = uint32_t(sizes.size());
    pci.pPoolSizes = sizes.data();
    TS_VK_CHECK(vkCreateDescriptorPool(m_device, &pci, nullptr, &m_pool));
    m_sets.resize(frames);
    for (auto& s : m_sets) {
        VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = m_pool;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &m_layout;
        TS_VK_CHECK(vkAllocateDescriptorSets(m_device, &ai, &s.set));
    }
    return Status::ok();
}

void BufferSets::bind(uint32_t slot, std::initializer_list<const Buffer*> buffers) {
    Slot& s = m_sets[slot];
    std::vector<uint64_t> serials;
    for (const Buffer* b : buffers)
        serials.push_back(b->serial());
    if (s.bound == serials) return;
    std::vector<VkDescriptorBufferInfo> infos(buffers.size());
    std::vector<VkWriteDescriptorSet> writes(buffers.size());
    for (uint32_t i = 0; i < buffers.size(); ++i) {
        // Buffers grow with headroom; a binding never claims more than the device can address.
        const Buffer* b = buffers.begin()[i];
        infos[i] = {b->handle(), 0, b->size() > m_maxRange ? m_maxRange : VK_WHOLE_SIZE};
        writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[i].dstSet = s.set;
        writes[i].dstBinding = i;
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = m_types[i];
        writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(m_device, uint32_t(writes.size()), writes.data(), 0, nullptr);
    s.bound = std::move(serials);
    ++m_writes;
}

} // namespace ts::render
