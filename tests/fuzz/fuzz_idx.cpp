// libFuzzer target: the IDX reader (plain, and gzip when the input starts with the gzip magic). Any input must
// give a value or a one-line error: no crash, no hang, no allocation the file cannot back.
#include "engine/capture/idx.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    const std::string path = ts::fuzz::writeInput(data, size, gz ? ".idx.gz" : ".idx");
    auto r = ts::capture::readIdx(path);
    if (!r && r.error().message.find('\n') != std::string::npos) __builtin_trap(); // errors are one line
    return 0;
}
