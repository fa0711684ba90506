#include "engine/core/h5_check.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace ts::h5 {
namespace {

constexpr const char* kName = "tensorscape-h5check";

bool executable(const std::string& p) {
    struct stat st {};
    return !p.empty() && ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

std::string besideProgram() {
    std::vector<char> buf(4096);
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0) return {};
    std::string self(buf.data(), static_cast<size_t>(n));
    const auto slash = self.rfind('/');
    return slash == std::string::npos ? std::string() : self.substr(0, slash + 1) + kName;
}

double timeoutSeconds() {
    if (const char* t = std::getenv("TS_H5CHECK_TIMEOUT_S")) {
        char* end = nullptr;
        const double v = std::strtod(t, &end);
        if (end != t && *end == '\0' && v > 0 && v < 86400) return v;
    }
    return 20.0;
}

} // namespace

std::string checkerPath() {
    if (const char* env = std::getenv("TS_H5CHECK"); env && *env) return executable(env) ? env : std::string();
    if (std::string p = besideProgram(); executable(p)) return p;
#ifdef TS_H5CHECK_PATH
    if (executable(TS_H5CHECK_PATH)) return TS_H5CHECK_PATH;
#endif
    return {};
}

Status checkUntrustedFile(const std::string& path, const std::string& what) {
    const std::string checker = checkerPath();
    if (checker.empty())
        return makeError(ErrorKind::Environment,
                         what + ": cannot be checked before reading: " + kName +
                             " is not beside the program nor at $TS_H5CHECK (rebuild, or set TS_H5CHECK)");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // The checker's own output (libhdf5 may print) goes nowhere; the verdict is its exit status.
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> argv = {const_cast<char*>(checker.c_str()), const_cast<char*>(path.c_str()), nullptr};
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, checker.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return makeError(ErrorKind::Environment,
                         what + ": cannot start " + checker + " to check it (" + std::strerror(rc) + ")");

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeoutSeconds());
    int status = 0;
    auto pause = std::chrono::microseconds(200);
    for (;;) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) break;
        if (done < 0 && errno != EINTR)
            return makeError(ErrorKind::Environment, what + ": lost the checker process (" +
                                                         std::strerror(errno) + ")");
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return makeError(ErrorKind::Usage,
                             what + ": is damaged: the HDF5 library did not finish reading its structure in " +
                                 std::to_string(static_cast<int>(timeoutSeconds())) + " s (stopped)");
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::ok();
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = sigabbrev_np(sig);
        return makeError(ErrorKind::Usage, what + ": is damaged: the HDF5 library crashed reading its structure (" +
                                               (name ? std::string("SIG") + name : "signal " + std::to_string(sig)) +
                                               ", in a separate checking process)");
    }
    const int code = WEXITSTATUS(status);
    if (code == 70) // the checker's AddressSanitizer stopped the library (h5check_main.cpp)
        return makeError(ErrorKind::Usage, what + ": is damaged: the HDF5 library read outside its buffers on it "
                                                  "(caught in a separate checking process)");
    return makeError(ErrorKind::Usage, what + ": is damaged: the HDF5 library failed reading its structure (" +
                                           kName + " exited with " + std::to_string(code) + ")");
}

} // namespace ts::h5
