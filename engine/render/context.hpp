// The Vulkan context: instance, validation messenger, device choice (discrete GPU first, lavapipe as the
// fallback), one graphics queue, a command pool and the memory allocator.
//
// Teardown order (written down once, here): users destroy their buffers, images, pipelines and render
// targets first; ~Context then waits for the device, frees the allocator's blocks, the command pool, the
// device, the surface, the messenger and the instance, in that order.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

struct GLFWwindow;

namespace ts::render {

class Allocator;

struct ContextDesc {
    std::string appName = "tensorscape";
    // -1: decide from the build type and TS_VALIDATION (1 on, 0 off); debug builds default to on.
    int validation = -1;
    // When set, the context creates a surface for this window and picks a device that can present to it.
    GLFWwindow* window = nullptr;
    bool logDeviceChoice = true;
};

struct DeviceInfo {
    std::string name;
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint32_t apiVersion = 0;
    bool isSoftware() const { return type == VK_PHYSICAL_DEVICE_TYPE_CPU; }
};

class Context {
  public:
    static Expected<std::unique_ptr<Context>> create(const ContextDesc& desc = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    VkInstance instance() const { return m_instance; }
    VkPhysicalDevice physicalDevice() const { return m_physical; }
    VkDevice device() const { return m_device; }
    VkQueue queue() const { return m_queue; }
    uint32_t queueFamily() const { return m_queueFamily; }
    VkCommandPool commandPool() const { return m_commandPool; }
    VkSurfaceKHR surface() const { return m_surface; }
    Allocator& allocator() { return *m_allocator; }
    const DeviceInfo& deviceInfo() const { return m_info; }
    const VkPhysicalDeviceProperties& properties() const { return m_props; }

    bool validationEnabled() const { return m_validation; }
    // Validation warnings and errors reported since creation (tests require zero).
    int validationMessageCount() const { return m_validationMessages.load(); }

    bool hasExternalMemoryFd() const { return m_externalMemoryFd; }
    bool hasShaderInt64Atomics() const { return m_int64Atomics; }
    // The largest storage-buffer range a descriptor may cover (128 MiB on lavapipe).
    VkDeviceSize maxStorageBufferRange() const { return m_maxStorageRange; }

    // Records commands with `record`, submits them and waits. For uploads, readbacks and set-up work.
    Status submitAndWait(const std::function<void(VkCommandBuffer)>& record);

  private:
    Context() = default;
    Status init(const ContextDesc& desc);
    Status createInstance(const ContextDesc& desc);
    Status pickPhysicalDevice(const ContextDesc& desc);
    Status createDevice();
    static VKAPI_ATTR VkBool32 VKAPI_CALL debugCallback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                        VkDebugUtilsMessageTypeFlagsEXT types,
                                                        const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                        void* user);

    VkInstance m_instance = VK_NULL_HANDLE;
    VkDebugUtilsMessengerEXT m_messenger = VK_NULL_HANDLE;
    VkSurfaceKHR m_surface = VK_NULL_HANDLE;
    VkPhysicalDevice m_physical = VK_NULL_HANDLE;
    VkDevice m_device = VK_NULL_HANDLE;
    VkQueue m_queue = VK_NULL_HANDLE;
    uint32_t m_queueFamily = 0;
    VkCommandPool m_commandPool = VK_NULL_HANDLE;
    VkFence m_submitFence = VK_NULL_HANDLE;
    std::unique_ptr<Allocator> m_allocator;
    VkPhysicalDeviceProperties m_props{};
    DeviceInfo m_info;
    bool m_validation = false;
    bool m_externalMemoryFd = false;
    bool m_int64Atomics = false;
    VkDeviceSize m_maxStorageRange = 1u << 27;
    std::atomic<int> m_validationMessages{0};
};

// The one-line message for "no Vulkan device", shared by the context and the app.
std::string noVulkanDeviceMessage(const std::string& cause);

} // namespace ts::render
