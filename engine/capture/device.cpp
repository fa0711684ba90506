// The --device decision (device.hpp): parsing and the choice, without LibTorch.
#include "engine/capture/device.hpp"

#include <cctype>

namespace ts::capture {

Expected<DeviceFlag> parseDeviceFlag(const std::string& text) {
    DeviceFlag f;
    if (text == "auto") return f;
    if (text == "cpu") {
        f.kind = DeviceFlag::Kind::Cpu;
        return f;
    }
    if (text == "cuda") {
        f.kind = DeviceFlag::Kind::Cuda;
        return f;
    }
    if (text.rfind("cuda:", 0) == 0) {
        const std::string digits = text.substr(5);
        bool ok = !digits.empty() && digits.size() <= 4;
        for (char c : digits)
            ok = ok && std::isdigit(static_cast<unsigned char>(c));
        if (ok) {
            f.kind = DeviceFlag::Kind::Cuda;
            f.index = std::stoi(digits);
            return f;
        }
    }
    return makeError(ErrorKind::Usage, "--device '" + text + "' is not auto, cpu, cuda or cuda:N (N = 0, 1, ...)");
}

Expected<TrainingDevice> decideDevice(const DeviceFlag& flag, const CudaAvailability& cuda) {
    TrainingDevice d;
    d.name = "cpu";
    if (flag.kind == DeviceFlag::Kind::Cpu) return d;
    const std::string count = std::to_string(cuda.devices) + (cuda.devices == 1 ? " CUDA device" : " CUDA devices");
    if (flag.kind == DeviceFlag::Kind::Auto) {
        if (cuda.compiled && cuda.devices > 0) {
            d.cuda = true;
            d.name = "cuda:0";
            return d;
        }
        d.note = cuda.compiled ? "the model runs on the CPU: this LibTorch has CUDA but sees no usable device (no driver, "
                                 "or CUDA_VISIBLE_DEVICES hides them)"
                               : "the model runs on the CPU: this LibTorch is a CPU-only build (--device cuda needs a "
                                 "CUDA LibTorch, see the user guide)";
        return d;
    }
    const std::string asked = flag.index < 0 ? "cuda" : "cuda:" + std::to_string(flag.index);
    if (!cuda.compiled)
        return makeError(ErrorKind::Environment,
                         "--device " + asked + ": this LibTorch is a CPU-only build; use --device cpu, or "
                         "build tensorscape against a CUDA LibTorch (user guide: \"Training on a GPU\")");
    if (cuda.devices <= 0)
        return makeError(ErrorKind::Environment,
                         "--device " + asked + ": LibTorch has CUDA but sees no usable device (no driver, or "
                         "CUDA_VISIBLE_DEVICES hides them); use --device cpu");
    const int index = flag.index < 0 ? 0 : flag.index;
    if (index >= cuda.devices)
        return makeError(ErrorKind::Usage, "--device " + asked + " does not exist: LibTorch sees " + count +
                                               " (cuda:0.." + "cuda:" + std::to_string(cuda.devices - 1) + ")");
    d.cuda = true;
    d.index = index;
    d.name = "cuda:" + std::to_string(index);
    return d;
}

} // namespace ts::capture
