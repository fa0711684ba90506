// libFuzzer target: the real-input readers of --input (engine/capture/inputs.cpp): .npy arrays, images through
// stb (PNG, BMP, JPEG) with resizing and cropping, and .pt tensors through LibTorch's unpickler. The first
// byte picks the kind (the file's extension), the rest is the file. Any input must give a dataset or a one-line
// error: no crash, no hang, no allocation the file cannot back.
#include <torch/torch.h>

#include "engine/capture/inputs.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    if (size < 1) return 0;
    static const char* kinds[] = {".npy", ".png", ".bmp", ".jpg", ".pt"};
    const unsigned kind = data[0] % 5;
    ts::capture::InputOptions o;
    o.path = ts::fuzz::writeInput(data + 1, size - 1, kinds[kind]);
    o.count = 4;
    if (kind >= 1 && kind <= 3 && (data[0] & 0x80)) { // images: also the resize and crop paths
        o.resize = 8;
        o.crop = 6;
    }
    auto r = ts::capture::loadInputs(o);
    if (!r && r.error().message.find('\n') != std::string::npos) __builtin_trap(); // errors are one line
    return 0;
}
