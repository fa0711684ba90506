// Which CUDA device the statistics run on, and whether this build has code for it: plain C++ (C++17, no CUDA
// types), used by runtime.cu's probe and unit-tested on machines without a GPU (tests/stats).
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::kernels {

// What the caller asks for: a device index (--device cuda:N), or the device with a Vulkan physical device's UUID
// (VkPhysicalDeviceIDProperties::deviceUUID, for interop the two must be the same GPU), or neither: the
// TS_CUDA_DEVICE environment variable's index, else device 0.
struct DeviceRequest {
    int index = -1;
    bool matchUuid = false;
    unsigned char uuid[16] = {};
};

struct DeviceSummary {
    int index = 0;
    std::string name;
    int major = 0, minor = 0;
    unsigned char uuid[16] = {};
};

inline std::string uuidText(const unsigned char* uuid) {
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += hex[uuid[i] >> 4];
        s += hex[uuid[i] & 15];
    }
    return s;
}

// The index into `devices` (as the CUDA runtime lists them). `environment` is TS_CUDA_DEVICE's value or null.
inline Expected<int> chooseDevice(const std::vector<DeviceSummary>& devices, const DeviceRequest& request,
                                  const char* environment) {
    if (devices.empty()) return makeError(ErrorKind::Environment, "the CUDA runtime reports no device");
    const std::string count = std::to_string(devices.size()) + (devices.size() == 1 ? " device" : " devices");
    if (request.matchUuid) {
        for (size_t i = 0; i < devices.size(); ++i)
            if (std::memcmp(devices[i].uuid, request.uuid, 16) == 0) return int(i);
        return makeError(ErrorKind::Environment, "no CUDA device has the Vulkan device's UUID " +
                                                     uuidText(request.uuid) + " (" + count +
                                                     "): the renderer and CUDA must use the same GPU");
    }
    int index = request.index;
    std::string source = "CUDA device ";
    if (index < 0 && environment && *environment) {
        char* end = nullptr;
        const long v = std::strtol(environment, &end, 10);
        if (*end || v < 0 || v > 1024)
            return makeError(ErrorKind::Usage, std::string("TS_CUDA_DEVICE='") + environment +
                                                   "' is not a device index (0, 1, ...)");
        index = int(v);
        source = "TS_CUDA_DEVICE=";
    }
    if (index < 0) return 0;
    if (index >= int(devices.size()))
        return makeError(ErrorKind::Usage, source + std::to_string(index) + " does not exist: the CUDA runtime lists " +
                                               count + " (0.." + std::to_string(devices.size() - 1) + ")");
    return index;
}

// Whether kernels built for `architectures` (CMake's CUDA_ARCHITECTURES spelling, "80;90" or "80,90": N gives machine code
// for sm_N and PTX for compute_N, N-real only the first, N-virtual only the second) run on a device of compute
// capability major.minor. Machine code for sm_XY runs on X.Z for Z >= Y; PTX for compute_XY is compiled by the
// driver for any device >= X.Y (so the newest architecture's PTX keeps the build working on later GPUs).
inline bool buildRunsOn(const std::string& architectures, int major, int minor) {
    const int device = major * 10 + minor;
    size_t pos = 0;
    while (pos <= architectures.size()) {
        size_t end = architectures.find_first_of(";,", pos);
        if (end == std::string::npos) end = architectures.size();
        std::string item = architectures.substr(pos, end - pos);
        pos = end + 1;
        if (item.empty()) continue;
        bool real = true, virt = true;
        if (const size_t dash = item.find('-'); dash != std::string::npos) {
            const std::string kind = item.substr(dash + 1);
            real = kind == "real";
            virt = kind == "virtual";
            item = item.substr(0, dash);
        }
        char* stop = nullptr;
        const long arch = std::strtol(item.c_str(), &stop, 10);
        if (*stop || arch <= 0) continue;
        if (real && arch / 10 == major && arch % 10 <= minor) return true;
        if (virt && arch <= device) return true;
    }
    return false;
}

} // namespace ts::kernels
