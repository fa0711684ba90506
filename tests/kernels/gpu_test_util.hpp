// Helpers shared by the gpu tests: CUDA statistics compared with the CPU reducer's, and a Vulkan buffer on the CUDA
// device's GPU (matched by UUID), its memory exported as an opaque fd, optionally with an exported timeline
// semaphore, for CUDA to import and write.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vulkan/vulkan.h>

#include "engine/stats/reducer.hpp"
#include "kernels/runtime.hpp"

namespace ts::gputest {

using namespace ts::stats;

// CUDA vs CPU: counts, min and max exact; moments to float tolerance (tiles differ: 8 rows vs 64).
inline void expectSame(const NeuronStats& gpu, const NeuronStats& cpu, const std::string& where) {
    ASSERT_EQ(gpu.neurons, cpu.neurons);
    for (std::int64_t j = 0; j < cpu.neurons && !::testing::Test::HasFailure(); ++j) {
        for (Statistic s : {Statistic::Min, Statistic::Max, Statistic::NanCount, Statistic::InfCount,
                            Statistic::ZeroFraction}) {
            const float a = gpu.at(s, j), b = cpu.at(s, j);
            if (std::isnan(b))
                EXPECT_TRUE(std::isnan(a)) << where << " " << statisticName(s) << " neuron " << j;
            else
                EXPECT_EQ(a, b) << where << " " << statisticName(s) << " neuron " << j;
        }
        const float mean = cpu.at(Statistic::Mean, j), var = cpu.at(Statistic::Variance, j);
        if (std::isnan(mean)) {
            EXPECT_TRUE(std::isnan(gpu.at(Statistic::Mean, j))) << where << " neuron " << j;
            continue;
        }
        const double scale = std::fabs(mean) + std::sqrt(var) + 1e-30;
        EXPECT_NEAR(gpu.at(Statistic::Mean, j), mean, 2e-6 * scale) << where << " neuron " << j;
        EXPECT_NEAR(gpu.at(Statistic::MeanAbs, j), cpu.at(Statistic::MeanAbs, j),
                    2e-6 * (cpu.at(Statistic::MeanAbs, j) + 1e-30))
            << where << " neuron " << j;
        EXPECT_NEAR(gpu.at(Statistic::Variance, j), var, 2e-5 * scale * scale) << where << " neuron " << j;
    }
}

struct VulkanExport {
    VkInstance instance = VK_NULL_HANDLE;
    VkDevice device = VK_NULL_HANDLE;
    VkBuffer buffer = VK_NULL_HANDLE;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    VkSemaphore semaphore = VK_NULL_HANDLE;
    VkDeviceSize allocationSize = 0;
    std::string skipReason;

    ~VulkanExport() {
        if (device) {
            vkDeviceWaitIdle(device);
            if (semaphore) vkDestroySemaphore(device, semaphore, nullptr);
            if (buffer) vkDestroyBuffer(device, buffer, nullptr);
            if (memory) vkFreeMemory(device, memory, nullptr);
            vkDestroyDevice(device, nullptr);
        }
        if (instance) vkDestroyInstance(instance, nullptr);
    }

    bool create(const kernels::DeviceInfo& cuda, VkDeviceSize size, bool withSemaphore) {
        VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
        app.apiVersion = VK_API_VERSION_1_2;
        VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
        ici.pApplicationInfo = &app;
        if (vkCreateInstance(&ici, nullptr, &instance) != VK_SUCCESS) return skip("no Vulkan 1.2 instance");
        std::uint32_t count = 0;
        vkEnumeratePhysicalDevices(instance, &count, nullptr);
        std::vector<VkPhysicalDevice> devices(count);
        vkEnumeratePhysicalDevices(instance, &count, devices.data());
        VkPhysicalDevice phys = VK_NULL_HANDLE;
        for (VkPhysicalDevice d : devices) {
            VkPhysicalDeviceIDProperties id{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES};
            VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
            p2.pNext = &id;
            vkGetPhysicalDeviceProperties2(d, &p2);
            if (p2.properties.apiVersion >= VK_API_VERSION_1_2 &&
                std::memcmp(id.deviceUUID, cuda.uuid, VK_UUID_SIZE) == 0)
                phys = d;
        }
        if (!phys) return skip("no Vulkan 1.2 device with the CUDA device's UUID");
        const char* exts[] = {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME,
                              VK_KHR_EXTERNAL_SEMAPHORE_FD_EXTENSION_NAME};
        VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
        f12.timelineSemaphore = VK_TRUE;
        float prio = 1.0f;
        VkDeviceQueueCreateInfo q{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
        q.queueFamilyIndex = 0;
        q.queueCount = 1;
        q.pQueuePriorities = &prio;
        VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
        dci.pNext = &f12;
        dci.queueCreateInfoCount = 1;
        dci.pQueueCreateInfos = &q;
        dci.enabledExtensionCount = 2;
        dci.ppEnabledExtensionNames = exts;
        if (vkCreateDevice(phys, &dci, nullptr, &device) != VK_SUCCESS)
            return skip("device without external memory/semaphore fd or timeline semaphores");

        VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
        ext.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
        VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bci.pNext = &ext;
        bci.size = size;
        bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
        bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
        if (vkCreateBuffer(device, &bci, nullptr, &buffer) != VK_SUCCESS) return fail("vkCreateBuffer");
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(device, buffer, &req);
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(phys, &mp);
        const VkMemoryPropertyFlags want =
            VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        std::uint32_t type = UINT32_MAX;
        for (std::uint32_t i = 0; i < mp.memoryTypeCount && type == UINT32_MAX; ++i)
            if ((req.memoryTypeBits & (1u << i)) && (mp.memoryTypes[i].propertyFlags & want) == want)
                type = i;
        if (type == UINT32_MAX) return skip("no host-visible exportable memory type to read the result back");
        VkMemoryDedicatedAllocateInfo ded{VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO};
        ded.buffer = buffer;
        VkExportMemoryAllocateInfo exp{VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO};
        exp.pNext = &ded;
        exp.handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
        VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        mai.pNext = &exp;
        mai.allocationSize = req.size;
        mai.memoryTypeIndex = type;
        if (vkAllocateMemory(device, &mai, nullptr, &memory) != VK_SUCCESS) return fail("vkAllocateMemory");
        allocationSize = req.size;
        if (vkBindBufferMemory(device, buffer, memory, 0) != VK_SUCCESS) return fail("vkBindBufferMemory");
        if (withSemaphore) {
            VkSemaphoreTypeCreateInfo tci{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
            tci.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
            tci.initialValue = 0;
            VkExportSemaphoreCreateInfo esi{VK_STRUCTURE_TYPE_EXPORT_SEMAPHORE_CREATE_INFO};
            esi.pNext = &tci;
            esi.handleTypes = VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT;
            VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
            sci.pNext = &esi;
            if (vkCreateSemaphore(device, &sci, nullptr, &semaphore) != VK_SUCCESS)
                return fail("vkCreateSemaphore");
        }
        return true;
    }

    int memoryFd() const {
        auto getFd = reinterpret_cast<PFN_vkGetMemoryFdKHR>(vkGetDeviceProcAddr(device, "vkGetMemoryFdKHR"));
        VkMemoryGetFdInfoKHR gi{VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR};
        gi.memory = memory;
        gi.handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT;
        int fd = -1;
        return getFd && getFd(device, &gi, &fd) == VK_SUCCESS ? fd : -1;
    }
    int semaphoreFd() const {
        auto getFd =
            reinterpret_cast<PFN_vkGetSemaphoreFdKHR>(vkGetDeviceProcAddr(device, "vkGetSemaphoreFdKHR"));
        VkSemaphoreGetFdInfoKHR gi{VK_STRUCTURE_TYPE_SEMAPHORE_GET_FD_INFO_KHR};
        gi.semaphore = semaphore;
        gi.handleType = VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_OPAQUE_FD_BIT;
        int fd = -1;
        return getFd && getFd(device, &gi, &fd) == VK_SUCCESS ? fd : -1;
    }

    bool skip(const char* why) {
        skipReason = why;
        return false;
    }
    bool fail(const char* what) {
        ADD_FAILURE() << what << " failed";
        return false;
    }
};

} // namespace ts::gputest
