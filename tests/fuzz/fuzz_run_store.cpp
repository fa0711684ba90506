// libFuzzer target: the run store reader (RunReader::open on a folder whose run.h5 is the input, then a
// snapshot's statistics, a series and the scalars when it opens). Seeds are real runs (tests/fuzz/corpus).
#include <filesystem>

#include "engine/runs/run_store.hpp"
#include "tests/fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, size_t size) {
    const std::string dir = "/tmp/ts_fuzz_run_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    const std::string written = ts::fuzz::writeInput(data, size, ".h5");
    std::filesystem::rename(written, dir + "/run.h5");
    auto r = ts::runs::RunReader::open(dir);
    if (!r) {
        if (r.error().message.find('\n') != std::string::npos) __builtin_trap();
        return 0;
    }
    if ((*r)->snapshots() > 0 && !(*r)->layers().empty()) {
        (void)(*r)->neuronStats(0, 0, ts::runs::Kind::Activation);
        (void)(*r)->series(0, 0, ts::runs::Kind::Activation, 0, 8);
        (void)(*r)->summaries(0, 0, 1);
    }
    (void)(*r)->scalars();
    return 0;
}
