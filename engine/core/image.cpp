// PNG I/O through Debian's libstb.
#include "engine/core/image.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stb_image.h>
#include <stb_image_write.h>

namespace ts {

Status writePng(const std::string& path, const ImageRgba8& image) {
    if (image.width <= 0 || image.height <= 0)
        return makeError(ErrorKind::Failed, "cannot write an empty image to " + path);
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (!stbi_write_png(path.c_str(), image.width, image.height, 4, image.pixels.data(), image.width * 4))
        return makeError(ErrorKind::Usage, "cannot write PNG " + path + ": " + std::strerror(errno) +
                                               " (check that the folder exists and is writable)");
    return Status::ok();
}

Expected<ImageRgba8> readPng(const std::string& path) {
    int w = 0, h = 0, n = 0;
    unsigned char* data = stbi_load(path.c_str(), &w, &h, &n, 4);
    if (!data) return makeError(ErrorKind::Usage, "cannot read image " + path + ": " + stbi_failure_reason());
    ImageRgba8 img(w, h);
    std::memcpy(img.pixels.data(), data, img.pixels.size());
    stbi_image_free(data);
    return img;
}

} // namespace ts
