// Context creation: instance + validation, device scoring, queue, pool, allocator.
#include "engine/render/context.hpp"

#include <GLFW/glfw3.h>
#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#endif
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "engine/core/log.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/vk_check.hpp"

namespace ts::render {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

bool wantValidation(int requested) {
    if (requested >= 0) return requested != 0;
    if (const char* env = std::getenv("TS_VALIDATION")) return std::strcmp(env, "0") != 0;
#ifdef NDEBUG
    return false;
#else
    return true;
#endif
}

bool hasLayer(const char* name) {
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, nullptr);
    std::vector<VkLayerProperties> layers(n);
    vkEnumerateInstanceLayerProperties(&n, layers.data());
    return std::any_of(layers.begin(), layers.end(),
                       [&](auto& l) { return !std::strcmp(l.layerName, name); });
}

bool hasDeviceExtension(VkPhysicalDevice pd, const char* name) {
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
    return std::any_of(exts.begin(), exts.end(),
                       [&](auto& e) { return !std::strcmp(e.extensionName, name); });
}

int deviceTypeScore(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 1;
    default:
        return 0;
    }
}

const char* deviceTypeName(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
        return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return "CPU (software)";
    default:
        return "other";
    }
}

} // namespace

std::string noVulkanDeviceMessage(const std::string& cause) {
    return "no Vulkan device found (" + cause +
           "); install mesa-vulkan-drivers for the CPU renderer (lavapipe) or your GPU's Vulkan driver";
}

VKAPI_ATTR VkBool32 VKAPI_CALL Context::debugCallback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                      VkDebugUtilsMessageTypeFlagsEXT,
                                                      const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                      void* user) {
    auto* self = static_cast<Context*>(user);
    if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        self->m_validationMessages++;
        TS_LOG_ERROR("vulkan validation: %s", data->pMessage);
    }
    return VK_FALSE;
}

Expected<std::unique_ptr<Context>> Context::create(const ContextDesc& desc) {
    std::unique_ptr<Context> ctx(new Context());
    Status s = ctx->init(desc);
    if (!s) return s.error();
    return ctx;
}

Status Context::init(const ContextDesc& desc) {
    TS_TRY(createInstance(desc));
    TS_TRY(pickPhysicalDevice(desc));
    TS_TRY(createDevice());
    m_allocator = std::make_unique<Allocator>(*this);
    return Status::ok();
}

// The instance (validation layer and debug messenger when wanted) and the window's surface.
Status Context::createInstance(const ContextDesc& desc) {
    m_validation = wantValidation(desc.validation);
    if (m_validation && !hasLayer(kValidationLayer)) {
        TS_LOG_WARN("validation requested but %s is not installed (apt-get install vulkan-validationlayers)",
                    kValidationLayer);
        m_validation = false;
    }
    std::vector<const char*> extensions;
    if (desc.window) {
        uint32_t n = 0;
        const char** glfwExts = glfwGetRequiredInstanceExtensions(&n);
        if (!glfwExts) return makeError(ErrorKind::Environment, "GLFW cannot create Vulkan surfaces here");
        extensions.assign(glfwExts, glfwExts + n);
    }
    if (m_validation) extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);

    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = desc.appName.c_str();
    app.pEngineName = "tensorscape";
    app.apiVersion = VK_API_VERSION_1_3;

    VkDebugUtilsMessengerCreateInfoEXT dbg{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    dbg.messageSeverity =
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    dbg.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    dbg.pfnUserCallback = &Context::debugCallback;
    dbg.pUserData = this;

    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &app;
    ici.enabledExtensionCount = static_cast<uint32_t>(extensions.size());
    ici.ppEnabledExtensionNames = extensions.data();
    if (m_validation) {
        ici.enabledLayerCount = 1;
        ici.ppEnabledLayerNames = &kValidationLayer;
        ici.pNext = &dbg;
    }
    VkResult r = vkCreateInstance(&ici, nullptr, &m_instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED)
        return makeError(ErrorKind::Environment,
                         noVulkanDeviceMessage(std::string("vkCreateInstance: ") + vkResultName(r)));
    TS_VK_CHECK(r);
    if (m_validation) {
        auto createMessenger = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(m_instance, "vkCreateDebugUtilsMessengerEXT"));
        if (createMessenger) TS_VK_CHECK(createMessenger(m_instance, &dbg, nullptr, &m_messenger));
    }
    if (desc.window) TS_VK_CHECK(glfwCreateWindowSurface(m_instance, desc.window, nullptr, &m_surface));

    return Status::ok();
}

Status Context::pickPhysicalDevice(const ContextDesc& desc) {
    // --- Physical device: prefer discrete, then integrated, virtual, CPU; must have Vulkan 1.3 and a
    // graphics queue (that can present, when there is a window). TS_DEVICE=substring forces a choice.
    uint32_t count = 0;
    VkResult r = vkEnumeratePhysicalDevices(m_instance, &count, nullptr);
    if (r != VK_SUCCESS || count == 0)
        return makeError(ErrorKind::Environment, noVulkanDeviceMessage("the Vulkan loader found no driver"));
    std::vector<VkPhysicalDevice> devices(count);
    TS_VK_CHECK(vkEnumeratePhysicalDevices(m_instance, &count, devices.data()));
    const char* forced = std::getenv("TS_DEVICE");
    int bestScore = -1;
    for (VkPhysicalDevice pd : devices) {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(pd, &props);
        if (props.apiVersion < VK_API_VERSION_1_3) continue;
        if (forced && !std::strstr(props.deviceName, forced)) continue;
        uint32_t qn = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, nullptr);
        std::vector<VkQueueFamilyProperties> qprops(qn);
        vkGetPhysicalDeviceQueueFamilyProperties(pd, &qn, qprops.data());
        for (uint32_t q = 0; q < qn; ++q) {
            if (!(qprops[q].queueFlags & VK_QUEUE_GRAPHICS_BIT) ||
                !(qprops[q].queueFlags & VK_QUEUE_COMPUTE_BIT))
                continue;
            if (m_surface) {
                VkBool32 present = VK_FALSE;
                vkGetPhysicalDeviceSurfaceSupportKHR(pd, q, m_surface, &present);
                if (!present) continue;
            }
            int score = deviceTypeScore(props.deviceType);
            if (score > bestScore) {
                bestScore = score;
                m_physical = pd;
                m_queueFamily = q;
                m_props = props;
            }
            break;
        }
    }
    if (!m_physical)
        return makeError(ErrorKind::Environment, noVulkanDeviceMessage(forced ? "no device matches TS_DEVICE"
                                                                              : "no Vulkan 1.3 device with a "
                                                                                "graphics queue"));
    m_info = {m_props.deviceName, m_props.deviceType, m_props.apiVersion};
    if (desc.logDeviceChoice)
        TS_LOG_INFO("Vulkan device: %s (%s, Vulkan %u.%u)%s", m_props.deviceName,
                    deviceTypeName(m_props.deviceType), VK_API_VERSION_MAJOR(m_props.apiVersion),
                    VK_API_VERSION_MINOR(m_props.apiVersion), m_validation ? ", validation on" : "");

    return Status::ok();
}

// The logical device with the features the renderer uses, its queue, command pool and submit fence.
Status Context::createDevice() {
    std::vector<const char*> devExts;
    if (m_surface) devExts.push_back(VK_KHR_SWAPCHAIN_EXTENSION_NAME);
    m_externalMemoryFd = hasDeviceExtension(m_physical, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME);
    if (m_externalMemoryFd) devExts.push_back(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME);

    VkPhysicalDeviceVulkan12Features have12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan13Features have13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    have12.pNext = &have13;
    VkPhysicalDeviceFeatures2 have{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    have.pNext = &have12;
    vkGetPhysicalDeviceFeatures2(m_physical, &have);
    if (!have13.dynamicRendering || !have13.synchronization2)
        return makeError(ErrorKind::Environment, std::string("Vulkan device ") + m_props.deviceName +
                                                     " lacks dynamic rendering; update the Vulkan driver");

    VkPhysicalDeviceVulkan13Features f13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    f13.dynamicRendering = VK_TRUE;
    f13.synchronization2 = VK_TRUE;
    f13.maintenance4 = have13.maintenance4; // SPIR-V 1.6 compute shaders declare LocalSizeId
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    f12.pNext = &f13;
    f12.timelineSemaphore = have12.timelineSemaphore;
    f12.shaderBufferInt64Atomics = have12.shaderBufferInt64Atomics;
    m_int64Atomics = have12.shaderBufferInt64Atomics && have.features.shaderInt64;
    {
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(m_physical, &props);
        m_maxStorageRange = props.limits.maxStorageBufferRange;
    }
    VkPhysicalDeviceFeatures2 f{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f.pNext = &f12;
    f.features.shaderInt64 = have.features.shaderInt64;
    f.features.fragmentStoresAndAtomics = have.features.fragmentStoresAndAtomics;
    f.features.wideLines = have.features.wideLines;
    f.features.largePoints = have.features.largePoints;

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = m_queueFamily;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &f;
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = static_cast<uint32_t>(devExts.size());
    dci.ppEnabledExtensionNames = devExts.data();
    TS_VK_CHECK(vkCreateDevice(m_physical, &dci, nullptr, &m_device));
    vkGetDeviceQueue(m_device, m_queueFamily, 0, &m_queue);
#if defined(__SANITIZE_ADDRESS__)
    // LeakSanitizer reports at exit what the driver and the validation layer keep for the process's life; the
    // loader has unloaded them by then, so the reports have no module to suppress by. Keeping them mapped
    // (RTLD_NODELETE on the already loaded libraries) lets scripts/asan.supp name them.
    for (const char* lib : {"libvulkan_lvp.so", "libVkLayer_khronos_validation.so", "libvulkan_radeon.so",
                            "libvulkan_intel.so", "libGLX_nvidia.so.0"})
        dlopen(lib, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
#endif

    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = m_queueFamily;
    TS_VK_CHECK(vkCreateCommandPool(m_device, &pci, nullptr, &m_commandPool));
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    TS_VK_CHECK(vkCreateFence(m_device, &fci, nullptr, &m_submitFence));

    return Status::ok();
}

Context::~Context() {
    if (m_device) vkDeviceWaitIdle(m_device);
    m_allocator.reset();
    if (m_submitFence) vkDestroyFence(m_device, m_submitFence, nullptr);
    if (m_commandPool) vkDestroyCommandPool(m_device, m_commandPool, nullptr);
    if (m_device) vkDestroyDevice(m_device, nullptr);
    if (m_surface) vkDestroySurfaceKHR(m_instance, m_surface, nullptr);
    if (m_messenger) {
        auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
            vkGetInstanceProcAddr(m_instance, "vkDestroyDebugUtilsMessengerEXT"));
        if (destroy) destroy(m_instance, m_messenger, nullptr);
    }
    if (m_instance) vkDestroyInstance(m_instance, nullptr);
}

Status Context::submitAndWait(const std::function<void(VkCommandBuffer)>& record) {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = m_commandPool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VkCommandBuffer cmd;
    TS_VK_CHECK(vkAllocateCommandBuffers(m_device, &ai, &cmd));
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    // Every result is checked; the command buffer is freed and the fence reset on every path.
    VkResult r = vkBeginCommandBuffer(cmd, &bi);
    if (r == VK_SUCCESS) {
        record(cmd);
        r = vkEndCommandBuffer(cmd);
    }
    bool submitted = false;
    if (r == VK_SUCCESS) {
        VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
        si.commandBufferCount = 1;
        si.pCommandBuffers = &cmd;
        r = vkQueueSubmit(m_queue, 1, &si, m_submitFence);
        submitted = r == VK_SUCCESS;
    }
    if (submitted) r = vkWaitForFences(m_device, 1, &m_submitFence, VK_TRUE, UINT64_MAX);
    if (submitted) {
        const VkResult reset = vkResetFences(m_device, 1, &m_submitFence);
        if (r == VK_SUCCESS) r = reset;
    }
    vkFreeCommandBuffers(m_device, m_commandPool, 1, &cmd);
    TS_VK_CHECK(r);
    return Status::ok();
}

const char* vkResultName(VkResult r) {
    switch (r) {
#define TS_CASE(x)                                                                                           \
    case x:                                                                                                  \
        return #x;
        TS_CASE(VK_SUCCESS)
        TS_CASE(VK_NOT_READY)
        TS_CASE(VK_TIMEOUT)
        TS_CASE(VK_INCOMPLETE)
        TS_CASE(VK_SUBOPTIMAL_KHR)
        TS_CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        TS_CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        TS_CASE(VK_ERROR_INITIALIZATION_FAILED)
        TS_CASE(VK_ERROR_DEVICE_LOST)
        TS_CASE(VK_ERROR_MEMORY_MAP_FAILED)
        TS_CASE(VK_ERROR_LAYER_NOT_PRESENT)
        TS_CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        TS_CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        TS_CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        TS_CASE(VK_ERROR_TOO_MANY_OBJECTS)
        TS_CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        TS_CASE(VK_ERROR_SURFACE_LOST_KHR)
        TS_CASE(VK_ERROR_NATIVE_WINDOW_IN_USE_KHR)
        TS_CASE(VK_ERROR_OUT_OF_DATE_KHR)
        TS_CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
#undef TS_CASE
    default:
        return "VK_ERROR_UNKNOWN";
    }
}

} // namespace ts::render
