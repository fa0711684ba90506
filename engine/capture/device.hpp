// Where a model trains: `--device auto|cpu|cuda|cuda:N` parsed and decided against what LibTorch offers. The
// decision is plain C++ (no LibTorch here) so every case is unit-tested on machines without a GPU; the
// LibTorch side (what this LibTorch build and its driver report) is libtorchCuda() in trainer.cpp.
#pragma once

#include <string>

#include "engine/core/error.hpp"

namespace ts::capture {

struct DeviceFlag {
    enum class Kind { Auto, Cpu, Cuda };
    Kind kind = Kind::Auto;
    int index = -1; // cuda:N; -1: "cuda" without an index (device 0)
};

// "auto", "cpu", "cuda", "cuda:N" (N a decimal index). Anything else: ErrorKind::Usage, one line naming the flag.
Expected<DeviceFlag> parseDeviceFlag(const std::string& text);

// What the LibTorch this program runs with can do: whether it was built with CUDA, and how many devices its
// CUDA runtime sees (0 when none, or when the driver is missing or too old).
struct CudaAvailability {
    bool compiled = false;
    int devices = 0;
};

struct TrainingDevice {
    bool cuda = false;
    int index = 0;       // CUDA device index when cuda
    std::string name;    // "cpu", "cuda:0"
    std::string note;    // auto that fell back to the CPU: the one line saying why (logged by the caller)
};

// The device to train on. Auto: cuda:0 when LibTorch has CUDA and sees a device, else the CPU with `note` set.
// An explicit cuda that cannot be honoured is an error (ErrorKind::Environment, exit 2) naming the cause: a
// CPU-only LibTorch, no usable device, or (ErrorKind::Usage) an index out of range. Never a silent fallback.
Expected<TrainingDevice> decideDevice(const DeviceFlag& flag, const CudaAvailability& cuda);

} // namespace ts::capture
