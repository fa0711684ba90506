// Python-made test fixtures (TorchScript models and eager references written by /usr/bin/python3 with
// python3-torch), made once and shared by every test process: ctest runs each test case in its own process,
// so a folder under the build tree is filled under a file lock and reused while the script is unchanged.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ts::testing {

struct PythonFixture {
    std::filesystem::path dir; // empty when the script failed
    std::string log;           // the script's output and exit status when it failed
};

// Runs `script DIR` once for all processes (the folder is TS_BINARY_DIR/test_fixtures/NAME); later calls and
// other processes reuse it while `script` is not newer than the folder's stamp.
inline PythonFixture pythonFixture(const std::string& name, const std::filesystem::path& script) {
    namespace fs = std::filesystem;
    PythonFixture out;
    const fs::path root = fs::path(TS_BINARY_DIR) / "test_fixtures";
    std::error_code ec;
    fs::create_directories(root, ec);
    const fs::path dir = root / name, stamp = root / (name + ".done"), logPath = root / (name + ".log");
    const int lock = ::open((root / (name + ".lock")).c_str(), O_CREAT | O_RDWR, 0644);
    if (lock >= 0) ::flock(lock, LOCK_EX);
    const bool fresh = fs::exists(stamp, ec) && fs::last_write_time(stamp, ec) >= fs::last_write_time(script, ec);
    if (!fresh) {
        fs::remove_all(dir, ec);
        fs::remove(stamp, ec);
        const std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + dir.string() + "' > '" +
                                logPath.string() + "' 2>&1";
        const int rc = std::system(cmd.c_str());
        if (rc == 0) {
            std::ofstream(stamp) << "ok\n";
        } else {
            std::ifstream in(logPath);
            std::stringstream ss;
            ss << in.rdbuf();
            out.log = "exit status " + std::to_string(rc) + "\n" + ss.str();
        }
    }
    if (fs::exists(stamp, ec)) out.dir = dir;
    if (lock >= 0) {
        ::flock(lock, LOCK_UN);
        ::close(lock);
    }
    return out;
}

} // namespace ts::testing
