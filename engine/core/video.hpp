// Frames to an MP4 file (H.264, yuv420p, plays everywhere) through Debian's ffmpeg, fed raw RGBA on a pipe.
// The file is written under a temporary name in the same folder and renamed when ffmpeg finished well, so a
// failed or interrupted recording never leaves a file that looks complete.
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"

namespace ts {

class VideoWriter {
  public:
    // Errors (one line, Usage/Environment): ffmpeg not on PATH, an odd width or height (yuv420p needs even
    // ones), fps out of 1..240, a folder that does not exist or cannot be written.
    static Expected<std::unique_ptr<VideoWriter>> open(const std::string& path, int width, int height, int fps);
    ~VideoWriter(); // without close(): stops ffmpeg and removes the temporary file

    // Every frame must be width x height. Errors: ffmpeg stopped (its last log line in the message).
    Status write(const ImageRgba8& frame);
    // Waits for ffmpeg and renames the file into place. Errors: ffmpeg failed (its last log line).
    Status close();

    int64_t frames() const { return m_frames; }

  private:
    VideoWriter() = default;
    std::string ffmpegLastLine() const;
    void abort();

    std::string m_path, m_temp, m_log;
    int m_width = 0, m_height = 0;
    int m_fd = -1;
    pid_t m_pid = -1;
    int64_t m_frames = 0;
};

// The ffmpeg program on PATH ("" when there is none).
std::string findFfmpeg();

} // namespace ts
