// IDX reader/writer over zlib's gz* API, which reads plain and gzip-compressed files alike.
#include "engine/capture/idx.hpp"

#include <filesystem>

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace ts::capture {

namespace {

struct GzCloser {
    void operator()(gzFile_s* f) const {
        if (f) gzclose(f);
    }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

Error usage(const std::string& path, const std::string& what) {
    return makeError(ErrorKind::Usage, "IDX file '" + path + "': " + what);
}

// Reads exactly n bytes; returns how many were read, or -1 on a zlib error (e.g. a cut gzip stream).
int64_t readFully(gzFile f, void* dst, int64_t n) {
    auto* p = static_cast<uint8_t*>(dst);
    int64_t done = 0;
    while (done < n) {
        const unsigned chunk = static_cast<unsigned>(std::min<int64_t>(n - done, 1 << 30));
        const int got = gzread(f, p + done, chunk);
        if (got < 0) return -1;
        if (got == 0) break;
        done += got;
    }
    return done;
}

} // namespace

Expected<IdxArray> readIdx(const std::string& path, int expectDims) {
    GzFile f(gzopen(path.c_str(), "rb"));
    if (!f) return usage(path, std::string("cannot open (") + std::strerror(errno) + ")");
    gzbuffer(f.get(), 1 << 20);

    uint8_t magic[4];
    const int64_t gotMagic = readFully(f.get(), magic, 4);
    if (gotMagic < 0) return usage(path, "not a readable gzip or IDX stream");
    if (gotMagic < 4)
        return usage(path, "truncated: the header needs 4 bytes, the file has " + std::to_string(gotMagic));
    if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] == 0 || magic[3] > 4) {
        char hex[64];
        std::snprintf(hex, sizeof hex, "0x%02x%02x%02x%02x", magic[0], magic[1], magic[2], magic[3]);
        return usage(path, std::string("wrong magic ") + hex +
                               " (expected 0x000008NN: unsigned-byte IDX with NN = 1..4 dimensions)");
    }
    const int ndims = magic[3];
    if (expectDims > 0 && ndims != expectDims)
        return usage(path, "expects " + std::to_string(expectDims) + " dims, the file has " +
                               std::to_string(ndims));

    IdxArray out;
    int64_t count = 1;
    for (int d = 0; d < ndims; ++d) {
        uint8_t b[4];
        const int64_t got = readFully(f.get(), b, 4);
        if (got != 4) return usage(path, "truncated: the header ends inside dimension " + std::to_string(d));
        const int64_t dim =
            (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | int64_t(b[3]);
        out.dims.push_back(dim);
        // Checked before multiplying: four 32-bit dimensions overflow int64 (found by tests/fuzz/fuzz_idx).
        constexpr int64_t kMaxCount = int64_t(1) << 36;
        if (dim != 0 && count > kMaxCount / dim) return usage(path, "dimensions too large");
        count *= dim;
    }
    // Validate before allocating: the data must fit in the file. Plain IDX holds exactly `count` bytes after
    // the header; deflate expands at most 1032:1, so a gzip file of S bytes cannot hold more than 1032 * S.
    {
        std::error_code ec;
        const auto fileBytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
        const int64_t header = 4 + 4 * int64_t(ndims);
        const bool gz = gzdirect(f.get()) == 0;
        const int64_t most = ec ? count : gz ? fileBytes * 1032 : fileBytes - header;
        if (!ec && count > most) {
            std::string dimsText;
            for (size_t i = 0; i < out.dims.size(); ++i)
                dimsText += (i ? "x" : "") + std::to_string(out.dims[i]);
            return usage(path, "truncated: " + dimsText + " needs " + std::to_string(count) + " data bytes, " +
                                   (gz ? "more than a " + std::to_string(fileBytes) + "-byte gzip file can hold"
                                       : "found " + std::to_string(std::max<int64_t>(most, 0))));
        }
    }
    out.data.resize(static_cast<size_t>(count));
    const int64_t got = readFully(f.get(), out.data.data(), count);
    if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f.get(), &err);
        return usage(path, std::string("truncated or corrupt gzip stream (") + msg + ")");
    }
    if (got < count) {
        std::string dimsText;
        for (size_t i = 0; i < out.dims.size(); ++i)
            dimsText += (i ? "x" : "") + std::to_string(out.dims[i]);
        return usage(path, "truncated: " + dimsText + " needs " + std::to_string(count) +
                               " data bytes, found " + std::to_string(got));
    }
    uint8_t extra;
    const int64_t more = readFully(f.get(), &extra, 1);
    if (more < 0) return usage(path, "corrupt gzip stream after the data");
    if (more > 0) return usage(path, "trailing data after " + std::to_string(count) + " elements");
    return out;
}

Expected<IdxImages> readIdxPair(const std::string& imagesPath, const std::string& labelsPath,
                                int maxClasses) {
    auto images = readIdx(imagesPath, 3);
    if (!images) return images.error();
    auto labels = readIdx(labelsPath, 1);
    if (!labels) return labels.error();
    const int64_t n = images->dims[0], m = labels->dims[0];
    if (n != m)
        return makeError(ErrorKind::Usage, "IDX files '" + imagesPath + "' and '" + labelsPath +
                                               "': count mismatch, " + std::to_string(n) + " images but " +
                                               std::to_string(m) + " labels");
    if (maxClasses > 0) {
        for (int64_t i = 0; i < m; ++i)
            if (labels->data[i] >= maxClasses)
                return usage(labelsPath, "label " + std::to_string(labels->data[i]) + " at index " +
                                             std::to_string(i) + " is not below " +
                                             std::to_string(maxClasses));
    }
    return IdxImages{std::move(images.value()), std::move(labels.value())};
}

Status writeIdx(const std::string& path, const IdxArray& array) {
    if (array.dims.empty() || array.dims.size() > 4)
        return makeError(ErrorKind::Usage, "IDX file '" + path + "': 1 to 4 dimensions are supported");
    int64_t count = 1;
    for (auto d : array.dims)
        count *= d;
    if (count != static_cast<int64_t>(array.data.size()))
        return makeError(ErrorKind::Usage, "IDX file '" + path + "': dims do not match the data size");
    const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
    GzFile f(gzopen(path.c_str(), gz ? "wb6" : "wbT"));
    if (!f) return makeError(ErrorKind::Usage, "IDX file '" + path + "': cannot create");
    std::vector<uint8_t> header = {0, 0, 0x08, static_cast<uint8_t>(array.dims.size())};
    for (auto d : array.dims)
        for (int s = 24; s >= 0; s -= 8)
            header.push_back(static_cast<uint8_t>((d >> s) & 0xff));
    bool ok = gzwrite(f.get(), header.data(), static_cast<unsigned>(header.size())) == int(header.size());
    if (count > 0) ok = ok && gzwrite(f.get(), array.data.data(), static_cast<unsigned>(count)) == int(count);
    if (gzclose(f.release()) != Z_OK) ok = false;
    if (!ok) return makeError(ErrorKind::Failed, "IDX file '" + path + "': write failed");
    return Status::ok();
}

} // namespace ts::capture
