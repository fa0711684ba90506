// ffmpeg as a child process: posix_spawn with its stdin on a pipe and its log in a temporary file.
#include "engine/core/video.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

extern char** environ;

namespace ts {

namespace fs = std::filesystem;

std::string findFfmpeg() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t p = 0; p <= dirs.size();) {
        const size_t q = std::min(dirs.find(':', p), dirs.size());
        const std::string candidate = (q > p ? dirs.substr(p, q - p) : std::string(".")) + "/ffmpeg";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        p = q + 1;
    }
    return "";
}

Expected<std::unique_ptr<VideoWriter>> VideoWriter::open(const std::string& path, int width, int height, int fps) {
    if (path.empty()) return usageError("the video path is empty");
    if (width < 16 || height < 16 || width % 2 || height % 2)
        return usageError("video frames must be even-sized and at least 16 x 16 (got " + std::to_string(width) + " x " +
                          std::to_string(height) + "): H.264 in yuv420p halves the colour resolution");
    if (fps < 1 || fps > 240) return usageError("video frame rate must be in 1..240");
    const std::string ffmpeg = findFfmpeg();
    if (ffmpeg.empty())
        return makeError(ErrorKind::Environment, "ffmpeg not found on PATH; install it (apt-get install ffmpeg) to record " + path);
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return usageError("cannot write " + path + ": " + dir.string() + " is not a folder");
    if (fs::exists(target, ec) && !fs::is_regular_file(target, ec))
        return usageError("cannot write " + path + ": it exists and is not a regular file");

    auto w = std::unique_ptr<VideoWriter>(new VideoWriter());
    w->m_path = path;
    w->m_width = width;
    w->m_height = height;
    const std::string stem = (dir / ("." + target.filename().string() + ".part." + std::to_string(::getpid()))).string();
    w->m_temp = stem + ".mp4";
    w->m_log = stem + ".log";
    // Probe that the folder takes files before starting ffmpeg.
    {
        std::ofstream probe(w->m_temp, std::ios::binary);
        if (!probe) return usageError("cannot write " + path + ": " + dir.string() + " is not writable");
    }
    fs::remove(w->m_temp, ec);

    int pipeFds[2];
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) return makeError(ErrorKind::Environment, std::string("pipe: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipeFds[0], 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, w->m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const std::string size = std::to_string(width) + "x" + std::to_string(height), rate = std::to_string(fps);
    std::vector<std::string> args = {ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                                     "-f", "rawvideo", "-pix_fmt", "rgba", "-s", size, "-r", rate, "-i", "pipe:0",
                                     "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                                     "-movflags", "+faststart", "-f", "mp4", w->m_temp};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, ffmpeg.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipeFds[0]);
    if (rc != 0) {
        ::close(pipeFds[1]);
        return makeError(ErrorKind::Environment, "cannot start " + ffmpeg + ": " + std::strerror(rc));
    }
    w->m_pid = pid;
    w->m_fd = pipeFds[1];
    return w;
}

VideoWriter::~VideoWriter() { abort(); }

void VideoWriter::abort() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
    if (m_pid > 0) {
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
    }
    std::error_code ec;
    if (!m_temp.empty()) fs::remove(m_temp, ec);
    if (!m_log.empty()) fs::remove(m_log, ec);
    m_temp.clear();
    m_log.clear();
}

std::string VideoWriter::ffmpegLastLine() const {
    std::ifstream in(m_log);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last.empty() ? "no message" : last;
}

Status VideoWriter::write(const ImageRgba8& frame) {
    if (m_fd < 0) return makeError(ErrorKind::Failed, "the video " + m_path + " is closed");
    if (frame.width != m_width || frame.height != m_height)
        return makeError(ErrorKind::Failed, "a video frame of " + std::to_string(frame.width) + " x " +
                                                std::to_string(frame.height) + " in a " + std::to_string(m_width) +
                                                " x " + std::to_string(m_height) + " video");
    // A stopped ffmpeg must be an error here, not a SIGPIPE that ends the program.
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous);
    const uint8_t* p = frame.pixels.data();
    size_t left = frame.pixels.size();
    int err = 0;
    while (left > 0) {
        const ssize_t n = ::write(m_fd, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    ::sigaction(SIGPIPE, &previous, nullptr);
    if (err != 0) {
        const std::string why = ffmpegLastLine();
        abort();
        return makeError(ErrorKind::Failed, "ffmpeg stopped while recording " + m_path + " (" + why + ")");
    }
    ++m_frames;
    return {};
}

Status VideoWriter::close() {
    if (m_fd < 0) return makeError(ErrorKind::Failed, "the video " + m_path + " is closed");
    ::close(m_fd);
    m_fd = -1;
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const std::string why = ffmpegLastLine();
        abort();
        return makeError(ErrorKind::Failed, "ffmpeg could not write " + m_path + " (" + why + ")");
    }
    std::error_code ec;
    fs::rename(m_temp, m_path, ec);
    if (ec) {
        abort();
        return makeError(ErrorKind::Failed, "cannot move the video into place at " + m_path + ": " + ec.message());
    }
    m_temp.clear();
    fs::remove(m_log, ec);
    m_log.clear();
    return {};
}

} // namespace ts
