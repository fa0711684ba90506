// VkResult checks that carry expression, file and line (NVVK_CHECK style) into ts::Status.
#pragma once

#include <vulkan/vulkan.h>

#include "engine/core/error.hpp"

namespace ts::render {

const char* vkResultName(VkResult r);

inline Error vkError(VkResult r, const char* expr, const char* file, int line) {
    ErrorKind kind = (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED ||
                      r == VK_ERROR_LAYER_NOT_PRESENT || r == VK_ERROR_EXTENSION_NOT_PRESENT ||
                      r == VK_ERROR_FEATURE_NOT_PRESENT)
                         ? ErrorKind::Environment
                         : ErrorKind::Failed;
    std::string msg = describeFailure(expr, vkResultName(r), file, line);
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        msg += ": out of memory (reduce --width/--height or the neuron count)";
    return makeError(kind, msg);
}

} // namespace ts::render

// Return a Status error from the enclosing function when a Vulkan call fails.
#define TS_VK_CHECK(expr)                                                                                    \
    do {                                                                                                     \
        VkResult ts_vk_result_ = (expr);                                                                     \
        if (ts_vk_result_ != VK_SUCCESS)                                                                     \
            return ::ts::render::vkError(ts_vk_result_, #expr, __FILE__, __LINE__);                          \
    } while (0)
