// libFuzzer target: the landscape's HDF5 readers (directions and surface files in the reference scripts'
// layout). Seeds: files written by the landscape tests' writer (tests/fuzz/corpus).
#include "engine/landscape/h5_io.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    const std::string path = ts::fuzz::writeInput(data, size, ".h5");
    auto d = ts::landscape::readDirectionsFile(path);
    auto s = ts::landscape::readSurfaceFile(path);
    if ((!d && d.error().message.find('\n') != std::string::npos) ||
        (!s && s.error().message.find('\n') != std::string::npos))
        __builtin_trap();
    return 0;
}
