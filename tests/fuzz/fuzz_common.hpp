// Shared by the libFuzzer targets: the input written to a file of this process (readers take paths).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace ts::fuzz {

// Writes [data, data + size) to a per-process file with `suffix` and returns its path.
inline std::string writeInput(const unsigned char* data, size_t size, const std::string& suffix) {
    const std::string path = "/tmp/ts_fuzz_" + std::to_string(::getpid()) + suffix;
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
        if (size) std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    return path;
}

} // namespace ts::fuzz
