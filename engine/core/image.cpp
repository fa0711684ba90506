// PNG I/O through Debian's libstb.
#include "engine/core/image.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>
#include <stb_image.h>
#include <stb_image_write.h>

namespace ts {

Status writePng(const std::string& path, const ImageRgba8& image) {
    if (image.width <= 0 || image.height <= 0)
        return makeError(ErrorKind::Failed, "cannot write an empty image to " + path);
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    // Encoded in memory, then written with every step checked: stb's own file writer ignores a failing
    // fclose, so a full device (/dev/full) was reported as written.
    std::vector<unsigned char> png;
    auto sink = [](void* ctx, void* data, int size) {
        auto* out = static_cast<std::vector<unsigned char>*>(ctx);
        out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    };
    if (!stbi_write_png_to_func(sink, &png, image.width, image.height, 4, image.pixels.data(), image.width * 4))
        return makeError(ErrorKind::Failed, "cannot encode PNG " + path);
    // A regular file (or a new one) is written under a temporary name and renamed, so a failed write never
    // leaves a file that looks complete; anything else (a device, a pipe) is written as it is.
    const bool special = std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec);
    const std::string target = special ? path : path + ".tmp";
    FILE* f = std::fopen(target.c_str(), "wb");
    if (!f)
        return makeError(ErrorKind::Usage, "cannot write PNG " + path + ": " + std::strerror(errno) +
                                               " (check that the folder exists and is writable)");
    bool ok = std::fwrite(png.data(), 1, png.size(), f) == png.size();
    ok = std::fflush(f) == 0 && ok;
    const int err = errno;
    ok = std::fclose(f) == 0 && ok;
    if (ok && !special) ok = std::rename(target.c_str(), path.c_str()) == 0;
    if (!ok) {
        if (!special) std::remove(target.c_str());
        return makeError(ErrorKind::Usage, "writing PNG " + path + " failed: " + std::strerror(err ? err : errno));
    }
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

void fillRect(ImageRgba8& img, int x0, int y0, int w, int h, Rgb8 c) {
    for (int y = std::max(0, y0); y < std::min(img.height, y0 + h); ++y)
        for (int x = std::max(0, x0); x < std::min(img.width, x0 + w); ++x) {
            std::uint8_t* d = img.at(x, y);
            d[0] = c.r, d[1] = c.g, d[2] = c.b, d[3] = 255;
        }
}

void drawLine(ImageRgba8& img, float x0, float y0, float x1, float y1, Rgb8 c, int thickness) {
    const int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    const int half = (thickness - 1) / 2;
    for (int i = 0; i <= steps; ++i) {
        const float u = static_cast<float>(i) / static_cast<float>(steps);
        const int x = static_cast<int>(std::lround(x0 + u * (x1 - x0))), y = static_cast<int>(std::lround(y0 + u * (y1 - y0)));
        fillRect(img, x - half, y - half, thickness, thickness, c);
    }
}

} // namespace ts
