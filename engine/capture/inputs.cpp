// Real model inputs: images through Debian's libstb, .npy arrays (header parsed here and checked against the
// file size before allocating), .pt tensors (the zip archive checked and laid out again, pt_archive.hpp, then
// LibTorch's unpickler after a walk of the pickle), and the seeded random probe.
#include "engine/capture/inputs.hpp"
#include "engine/capture/pt_archive.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <stb_image.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

namespace ts::capture {

namespace fs = std::filesystem;

namespace {

const char* kAcceptedKinds = "an image (.png, .jpg, .jpeg, .bmp), a folder of images, a .npy array, or a .pt "
                             "tensor saved with torch.save(t, path)";
constexpr int64_t kMaxImagePixels = int64_t(1) << 28; // 16384 x 16384, decoded or after --resize
// Values of one decoded image (pixels x channels): 1 GiB as float32, the tensor it becomes before --resize.
constexpr int64_t kMaxImageValues = int64_t(1) << 28;
constexpr int64_t kMaxProbeElements = int64_t(1) << 30;
constexpr uint32_t kMaxNpyHeader = 1u << 20;

std::string shapeText(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string lowerExtension(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return ext;
}

bool isImageFile(const fs::path& p) {
    const std::string ext = lowerExtension(p);
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

// The first line of an exception text (c10 errors append a backtrace).
std::string firstLine(const std::string& text) {
    return text.substr(0, text.find('\n'));
}

// Wraps [N, ...] float32 as an unlabelled set.
Dataset unlabelled(std::string name, torch::Tensor inputs) {
    Dataset d;
    d.name = std::move(name);
    d.inputs = inputs.contiguous();
    d.labels = torch::full({d.inputs.size(0)}, -1, torch::kInt64);
    d.sampleShape = d.inputs.sizes().slice(1).vec();
    d.numClasses = 0;
    return d;
}

// ---- images
// -------------------------------------------------------------------------------------------------

Status checkImageOptions(const InputOptions& o) {
    if (o.channels != 1 && o.channels != 3)
        return usageError("--channels " + std::to_string(o.channels) +
                     " is not supported; give 3 (RGB) or 1 (grey)");
    if (o.resize < 0 || o.resize > 16384)
        return usageError("--resize " + std::to_string(o.resize) +
                     " is out of range; give 1..16384, or 0 for none");
    if (o.crop < 0)
        return usageError("--crop " + std::to_string(o.crop) + " is negative; give a size, or 0 for none");
    for (const auto* v : {&o.mean, &o.std})
        if (!v->empty() && int64_t(v->size()) != o.channels)
            return usageError(std::string(v == &o.mean ? "--mean" : "--std") + " gives " +
                         std::to_string(v->size()) + (v->size() == 1 ? " value" : " values") + " for " +
                         std::to_string(o.channels) + " channels; give one per channel");
    for (float s : o.std)
        if (!(s > 0.0f) || !std::isfinite(s)) {
            char text[32];
            std::snprintf(text, sizeof text, "%g", double(s));
            return usageError(std::string("--std ") + text + " is not a positive number; give positive values");
        }
    return Status::ok();
}

// One image as [C, H, W] float32: decoded, scaled to [0, 1], resized, centre-cropped and normalised.
// stb's reason for a failure, as one printable line (a PNG with a bad chunk gave one ending in a newline).
std::string stbReason() {
    const char* r = stbi_failure_reason();
    std::string text = r ? r : "";
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    return text.empty() ? std::string("unknown reason") : printableExcerpt(text, 80);
}

// The pixels a header claims must be backed by the file: an uncompressed BMP holds every row (stb would pad a
// truncated one with zeros, so a 64-byte file became a 16-million-pixel image; stb reads any compression
// value but RLE's as uncompressed rows); PNG's deflate cannot expand
// more than about 1032:1, and JPEG at its coarsest stays well under 4096:1.
Status checkImageAgainstFileSize(const fs::path& file, int w, int h) {
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec) return usageError("image '" + file.string() + "': cannot get its size (" + ec.message() + ")");
    unsigned char head[34] = {};
    {
        std::ifstream in(file, std::ios::binary);
        in.read(reinterpret_cast<char*>(head), sizeof head);
    }
    const auto u16 = [&](int at) { return uint32_t(head[at]) | uint32_t(head[at + 1]) << 8; };
    const auto u32 = [&](int at) { return u16(at) | u16(at + 2) << 16; };
    const uint64_t pixels = uint64_t(w) * uint64_t(h);
    uint64_t needed = 0;
    std::string why;
    if (head[0] == 'B' && head[1] == 'M') {
        // stb reads the bytes of a header past the end of the file as zeros (found by fuzz_inputs: a 32-byte
        // BMP of 1,887,232 x 1 pixels, resized, took 1.6 GB), and reads the 12-byte OS/2 header too: the header
        // must be in the file, and both kinds of header are checked.
        const uint32_t header = u32(14);
        if (size < 18 || size < 14 + uint64_t(header))
            return usageError("image '" + file.string() + "': truncated or corrupt: its BMP header needs " +
                              std::to_string(14 + uint64_t(header)) + " bytes, the file has " + std::to_string(size));
        const uint32_t offset = u32(10), bits = header == 12 ? u16(24) : u16(28), compression = header == 12 ? 0 : u32(30);
        if (compression != 1 && compression != 2) { // stb refuses RLE and reads every other kind row by row
            needed = uint64_t(offset) + (uint64_t(bits) * uint64_t(w) + 31) / 32 * 4 * uint64_t(h);
            why = "an uncompressed BMP of " + std::to_string(w) + "x" + std::to_string(h) + " at " +
                  std::to_string(bits) + " bits needs " + std::to_string(needed) + " bytes";
        }
    } else if (head[0] == 0x89 && head[1] == 'P' && head[2] == 'N' && head[3] == 'G') {
        needed = pixels / 1100; // at least one byte a pixel decoded, deflate at most ~1032:1
        why = "a PNG of " + std::to_string(w) + "x" + std::to_string(h) + " cannot be under " +
              std::to_string(needed) + " bytes";
    } else if (head[0] == 0xff && head[1] == 0xd8) {
        needed = pixels / 4096;
        why = "a JPEG of " + std::to_string(w) + "x" + std::to_string(h) + " cannot be under " +
              std::to_string(needed) + " bytes";
    }
    if (needed > size)
        return usageError("image '" + file.string() + "': truncated or corrupt: " + why + ", the file has " +
                          std::to_string(size));
    return Status::ok();
}

Expected<torch::Tensor> loadImage(const fs::path& file, const InputOptions& o) {
    const std::string path = file.string();
    // Only the three formats this reads: stb_image also decodes TGA (which has no signature, so almost any
    // bytes are one), PSD, GIF, HDR, PIC and PNM, whose sizes the check below knows nothing about (found by
    // fuzz_inputs: a 21-byte ".bmp" that stb took for a 13824x6144 TGA, 1 GB once converted to floats).
    {
        unsigned char magic[8] = {};
        std::ifstream in(file, std::ios::binary);
        in.read(reinterpret_cast<char*>(magic), sizeof magic);
        const bool png = std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0;
        const bool jpeg = magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff;
        const bool bmp = magic[0] == 'B' && magic[1] == 'M';
        if (!png && !jpeg && !bmp)
            return usageError("image '" + path + "': not a PNG, JPEG or BMP file (it starts with " +
                              printableExcerpt(std::string(reinterpret_cast<char*>(magic), size_t(in.gcount())), 16) +
                              ")");
    }
    int w = 0, h = 0, comp = 0;
    if (!stbi_info(path.c_str(), &w, &h, &comp))
        return usageError("image '" + path + "': cannot be read (" + stbReason() +
                     "); give a valid PNG, JPEG or BMP file");
    if (w <= 0 || h <= 0)
        return usageError("image '" + path + "': its header says " + std::to_string(w) + "x" + std::to_string(h) +
                          " pixels; give a valid PNG, JPEG or BMP file");
    const int64_t claimed = int64_t(w) * h; // both in (0, 2^31): no overflow
    if (claimed > kMaxImagePixels || claimed * int64_t(o.channels) > kMaxImageValues) {
        const double mib = double(claimed) * double(o.channels) * 4.0 / double(1 << 20);
        char size[32];
        std::snprintf(size, sizeof size, "%.0f", mib);
        return usageError("image '" + path + "': " + std::to_string(w) + "x" + std::to_string(h) + " with " +
                          std::to_string(int64_t(o.channels)) + " channels is too large to decode (" + size +
                          " MiB as float32, at most 1024); scale it down first");
    }
    TS_TRY(checkImageAgainstFileSize(file, w, h));
    const int c = int(o.channels);
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &comp, c),
                                                     stbi_image_free);
    if (!pixels)
        return usageError("image '" + path + "': cannot be decoded (" + stbReason() +
                     "); give a valid PNG, JPEG or BMP file");
    // The decoder's size, not the header's: they can differ in a damaged file (found by fuzz_inputs: a BMP
    // that decodes to zero rows, which the --resize arithmetic then divided by).
    if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxImagePixels)
        return usageError("image '" + path + "': decodes to " + std::to_string(w) + "x" + std::to_string(h) +
                          " pixels; give a valid PNG, JPEG or BMP file");
    torch::Tensor t = torch::from_blob(pixels.get(), {1, h, w, c}, torch::kUInt8)
                          .permute({0, 3, 1, 2})
                          .to(torch::kFloat32)
                          .contiguous()
                          .div_(255.0f);

    if (o.resize > 0) {
        // torchvision's Resize(int): the shorter side becomes `resize`, the longer keeps the aspect
        // (truncated).
        const int64_t shortSide = std::min(h, w), longSide = std::max(h, w);
        const int64_t newLong = o.resize * longSide / shortSide;
        const int64_t newH = h <= w ? o.resize : newLong;
        const int64_t newW = h <= w ? newLong : o.resize;
        if (newH * newW > kMaxImagePixels)
            return usageError("image '" + path + "': --resize " + std::to_string(o.resize) + " makes it " +
                         std::to_string(newW) + "x" + std::to_string(newH) +
                         ", too large; give a smaller --resize");
        if (newH != h || newW != w) {
            namespace F = torch::nn::functional;
            t = F::interpolate(t, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{newH, newW})
                                      .mode(torch::kBilinear)
                                      .align_corners(false)
                                      .antialias(true));
        }
    }
    if (o.crop > 0) {
        const int64_t ih = t.size(2), iw = t.size(3);
        if (o.crop > ih || o.crop > iw)
            return usageError("image '" + path + "': " + std::to_string(iw) + "x" + std::to_string(ih) +
                         " is smaller than --crop " + std::to_string(o.crop) + "; give --resize " +
                         std::to_string(o.crop) + " (or larger) or a smaller --crop");
        // torchvision's CenterCrop: offsets round((size - crop) / 2) with Python's round half to even.
        const auto top = static_cast<int64_t>(std::nearbyint(double(ih - o.crop) / 2.0));
        const auto left = static_cast<int64_t>(std::nearbyint(double(iw - o.crop) / 2.0));
        t = t.narrow(2, top, o.crop).narrow(3, left, o.crop);
    }
    if (!o.mean.empty()) t = t - torch::tensor(o.mean, torch::kFloat32).view({1, c, 1, 1});
    if (!o.std.empty()) t = t / torch::tensor(o.std, torch::kFloat32).view({1, c, 1, 1});
    return t.squeeze(0).contiguous();
}

Expected<Dataset> loadImageFolder(const fs::path& dir, const InputOptions& o) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code fileEc;
        if (it->is_regular_file(fileEc) && isImageFile(it->path())) files.push_back(it->path());
    }
    if (ec)
        return usageError("image folder '" + dir.string() + "': cannot be listed (" + ec.message() +
                     "); check that it is readable");
    if (files.empty())
        return usageError("image folder '" + dir.string() + "': holds no .png, .jpg, .jpeg or .bmp files; give " +
                     kAcceptedKinds);
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
        return a.filename().string() < b.filename().string();
    });
    if (o.count > 0 && int64_t(files.size()) > o.count) files.resize(size_t(o.count));

    torch::Tensor out;
    for (size_t i = 0; i < files.size(); ++i) {
        auto image = loadImage(files[i], o);
        if (!image) return image.error();
        if (i == 0) {
            std::vector<int64_t> sizes = image->sizes().vec();
            sizes.insert(sizes.begin(), int64_t(files.size()));
            out = torch::empty(sizes, torch::kFloat32);
        } else if (image->sizes() != out.sizes().slice(1)) {
            return usageError("image '" + files[i].string() + "': is " + shapeText(image->sizes().vec()) +
                         " after resizing/cropping but '" + files[0].filename().string() + "' is " +
                         shapeText(out.sizes().slice(1).vec()) +
                         "; give --resize and --crop (e.g. --resize 256 --crop 224) so all images match");
        }
        out[int64_t(i)].copy_(*image);
    }
    return unlabelled("", out);
}

Expected<Dataset> loadSingleImage(const fs::path& file, const InputOptions& o) {
    auto image = loadImage(file, o);
    if (!image) return image.error();
    return unlabelled("", image->unsqueeze(0));
}

// ---- .npy
// ---------------------------------------------------------------------------------------------------

struct NpyHeader {
    std::string descr;
    bool fortranOrder = false;
    std::vector<int64_t> shape;
};

// The header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
class NpyDictParser {
  public:
    explicit NpyDictParser(const std::string& text) : m_s(text) {}

    // Empty string on success, otherwise what is wrong.
    std::string parse(NpyHeader& h) {
        bool haveDescr = false, haveOrder = false, haveShape = false;
        if (!eat('{')) return "the header is not a Python dict";
        while (!eat('}')) {
            auto key = quoted();
            if (!key) return "the header dict has a malformed key";
            if (!eat(':')) return "the header dict lacks ':' after '" + printableExcerpt(*key) + "'";
            if (*key == "descr") {
                auto v = quoted();
                if (!v) return "'descr' is not a string";
                h.descr = *v;
                haveDescr = true;
            } else if (*key == "fortran_order") {
                if (word("True"))
                    h.fortranOrder = true;
                else if (word("False"))
                    h.fortranOrder = false;
                else
                    return "'fortran_order' is neither True nor False";
                haveOrder = true;
            } else if (*key == "shape") {
                if (!tuple(h.shape)) return "'shape' is not a tuple of sizes";
                haveShape = true;
            } else {
                return "the header has an unexpected key '" + printableExcerpt(*key) + "'";
            }
            if (!eat(',')) {
                if (!eat('}')) return "the header dict is not closed";
                break;
            }
        }
        skipSpace();
        if (m_i != m_s.size()) return "the header has text after its dict";
        if (!haveDescr || !haveOrder || !haveShape)
            return "the header lacks 'descr', 'fortran_order' or 'shape'";
        return {};
    }

  private:
    void skipSpace() {
        while (m_i < m_s.size() && std::isspace(static_cast<unsigned char>(m_s[m_i])))
            ++m_i;
    }
    bool eat(char c) {
        skipSpace();
        if (m_i < m_s.size() && m_s[m_i] == c) {
            ++m_i;
            return true;
        }
        return false;
    }
    bool word(const char* w) {
        skipSpace();
        const size_t n = std::strlen(w);
        if (m_s.compare(m_i, n, w) != 0) return false;
        m_i += n;
        return true;
    }
    std::optional<std::string> quoted() {
        skipSpace();
        if (m_i >= m_s.size() || (m_s[m_i] != '\'' && m_s[m_i] != '"')) return std::nullopt;
        const char q = m_s[m_i++];
        const size_t end = m_s.find(q, m_i);
        if (end == std::string::npos) return std::nullopt;
        std::string v = m_s.substr(m_i, end - m_i);
        m_i = end + 1;
        return v;
    }
    bool tuple(std::vector<int64_t>& out) {
        if (!eat('(')) return false;
        while (!eat(')')) {
            skipSpace();
            int64_t v = 0;
            const char* b = m_s.data() + m_i;
            const auto r = std::from_chars(b, m_s.data() + m_s.size(), v);
            if (r.ec != std::errc() || v < 0) return false;
            m_i += size_t(r.ptr - b);
            out.push_back(v);
            if (!eat(',')) {
                if (!eat(')')) return false;
                break;
            }
        }
        return true;
    }

    const std::string& m_s;
    size_t m_i = 0;
};

Expected<Dataset> loadNpy(const fs::path& file, int64_t count) {
    const std::string path = file.string();
    auto bad = [&](const std::string& what) { return usageError("NPY file '" + path + "': " + what); };
    std::error_code ec;
    const uint64_t fileSize = fs::file_size(file, ec);
    if (ec) return bad("cannot get its size (" + ec.message() + ")");
    std::ifstream f(file, std::ios::binary);
    if (!f) return bad(std::string("cannot open (") + std::strerror(errno) + ")");

    unsigned char pre[12] = {};
    if (fileSize < 10 || !f.read(reinterpret_cast<char*>(pre), 10))
        return bad("truncated: shorter than the 10-byte preamble; save it with np.save(path, a)");
    if (std::memcmp(pre, "\x93NUMPY", 6) != 0)
        return bad("wrong magic (expected \\x93NUMPY); save it with np.save(path, a)");
    const int major = pre[6];
    uint64_t headerLen = 0, dataOffset = 0;
    if (major == 1) {
        headerLen = uint64_t(pre[8]) | (uint64_t(pre[9]) << 8);
        dataOffset = 10;
    } else if (major == 2 || major == 3) {
        if (fileSize < 12 || !f.read(reinterpret_cast<char*>(pre + 10), 2))
            return bad("truncated: shorter than the 12-byte version-" + std::to_string(major) + " preamble");
        headerLen = uint64_t(pre[8]) | (uint64_t(pre[9]) << 8) | (uint64_t(pre[10]) << 16) |
                    (uint64_t(pre[11]) << 24);
        dataOffset = 12;
    } else {
        return bad("format version " + std::to_string(major) +
                   " is not supported (1, 2 or 3); save it with np.save");
    }
    if (headerLen > kMaxNpyHeader)
        return bad("the header claims " + std::to_string(headerLen) + " bytes, too many");
    if (dataOffset + headerLen > fileSize)
        return bad("truncated: the header claims " + std::to_string(headerLen) + " bytes, the file has " +
                   std::to_string(fileSize - dataOffset) + " after the preamble");
    std::string text(size_t(headerLen), '\0');
    if (!f.read(text.data(), std::streamsize(headerLen))) return bad("cannot read the header");
    dataOffset += headerLen;

    NpyHeader h;
    if (std::string why = NpyDictParser(text).parse(h); !why.empty())
        return bad(why + "; save it with np.save(path, a)");
    if (h.fortranOrder) return bad("is Fortran-ordered; save np.ascontiguousarray(a) instead");
    if (!h.descr.empty() && h.descr[0] == '>')
        return bad("dtype '" + printableExcerpt(h.descr) + "' is big-endian; save a.astype('<f4') instead");
    torch::ScalarType dtype;
    uint64_t itemSize = 0;
    if (h.descr == "<f4")
        dtype = torch::kFloat32, itemSize = 4;
    else if (h.descr == "<f8")
        dtype = torch::kFloat64, itemSize = 8;
    else if (h.descr == "|u1")
        dtype = torch::kUInt8, itemSize = 1;
    else if (h.descr == "<i8")
        dtype = torch::kInt64, itemSize = 8;
    else if (h.descr == "<i4")
        dtype = torch::kInt32, itemSize = 4;
    else
        return bad("dtype '" + printableExcerpt(h.descr) +
                   "' is not supported (<f4, <f8, |u1, <i4, <i8); save a.astype(np.float32)");
    if (h.shape.empty()) return bad("holds a 0-d array; save an array whose first dimension is the batch");
    uint64_t sampleBytes = itemSize;
    for (size_t d = 1; d < h.shape.size(); ++d)
        if (__builtin_mul_overflow(sampleBytes, uint64_t(h.shape[d]), &sampleBytes))
            return bad("shape " + shapeText(h.shape) + " overflows; the header is corrupt");
    uint64_t dataBytes = 0;
    if (__builtin_mul_overflow(sampleBytes, uint64_t(h.shape[0]), &dataBytes))
        return bad("shape " + shapeText(h.shape) + " overflows; the header is corrupt");
    if (dataBytes != fileSize - dataOffset)
        return bad("shape " + shapeText(h.shape) + " of " + printableExcerpt(h.descr) + " needs " + std::to_string(dataBytes) +
                   " data bytes, the file has " + std::to_string(fileSize - dataOffset) +
                   " (truncated or corrupt); save it again with np.save");
    if (dataBytes == 0)
        return bad("holds no samples (shape " + shapeText(h.shape) + "); save a non-empty array");

    const int64_t keep = count > 0 ? std::min(count, h.shape[0]) : h.shape[0];
    std::vector<int64_t> sizes = h.shape;
    sizes[0] = keep;
    torch::Tensor raw = torch::empty(sizes, dtype);
    if (!f.read(static_cast<char*>(raw.data_ptr()), std::streamsize(sampleBytes * uint64_t(keep))))
        return bad("cannot read the data (the file changed while reading?)");
    // Integer arrays are token or class indices (an nn.Embedding's input): kept as int64, not made floats.
    if (dtype == torch::kInt64 || dtype == torch::kInt32) return unlabelled("", raw.to(torch::kInt64));
    torch::Tensor t = raw.to(torch::kFloat32);
    if (dtype == torch::kUInt8) t.div_(255.0f);
    return unlabelled("", t);
}

// ---- .pt
// ----------------------------------------------------------------------------------------------------

// The re-laid archive (pt_archive.hpp) for LibTorch's zip reader: only ranges and sizes that exist.
class ArchiveBytes final : public caffe2::serialize::ReadAdapterInterface {
  public:
    explicit ArchiveBytes(std::shared_ptr<const PtArchive> archive) : m_archive(std::move(archive)) {}
    size_t size() const override { return size_t(m_archive->size()); }
    size_t read(uint64_t pos, void* buf, size_t n, const char*) const override { return m_archive->read(pos, buf, n); }

  private:
    std::shared_ptr<const PtArchive> m_archive;
};

// LibTorch's unpickler trusts the pickle: the lengths and memo indices in it (a 748-byte file whose memo index
// was 1.67 billion made it allocate 26 GB) and the stack (BUILD on an empty stack read before it: SEGV), both
// found by fuzz_inputs. This walks the opcodes of `data.pkl` as the unpickler will (protocol 2, what
// torch.save writes), keeping the stack's depth and marks, and refuses a length past the end of the bytes, a
// memo index beyond what the pickle could have stored, and an opcode that takes more than the stack holds
// above its last mark. At an opcode it does not know it stops and leaves the verdict to the unpickler, which
// fails there before reading further. Empty string: nothing wrong seen.
std::string checkPickle(const unsigned char* p, size_t n) {
    size_t i = 0, ops = 0, depth = 0;
    std::vector<size_t> marks; // the depth at each MARK
    auto need = [&](uint64_t k) { return k <= n - i; };
    auto le = [&](int bytes) {
        uint64_t v = 0;
        for (int b = 0; b < bytes; ++b)
            v |= uint64_t(p[i + size_t(b)]) << (8 * b);
        return v;
    };
    auto skip = [&](uint64_t k) -> bool {
        if (!need(k)) return false;
        i += size_t(k);
        return true;
    };
    while (i < n) {
        const unsigned char op = p[i++];
        ++ops;
        const size_t at = i - 1;
        auto past = [&](const char* what) {
            return std::string(what) + " at byte " + std::to_string(at) + " of the pickle runs past its end";
        };
        const size_t floor = marks.empty() ? 0 : marks.back();
        // `take` items off the stack (above the last mark), then push `give`.
        auto stack = [&](size_t take, size_t give) -> bool {
            if (depth < floor + take) return false;
            depth = depth - take + give;
            return true;
        };
        auto underflow = [&]() {
            return "opcode 0x" + std::string(1, "0123456789abcdef"[op >> 4]) + "0123456789abcdef"[op & 15] +
                   " at byte " + std::to_string(at) + " takes more than the pickle's stack holds";
        };
        // Pop to the last mark (t, l, d: push the result; e, u: add to the object below the mark).
        auto toMark = [&](bool push, bool pairs) -> bool {
            if (marks.empty()) return false;
            const size_t k = depth - marks.back();
            marks.pop_back();
            depth -= k;
            if (pairs && k % 2 != 0) return false;
            if (!push) return depth > (marks.empty() ? 0 : marks.back()); // the list or dict below
            ++depth;
            return true;
        };
        bool ok = true;
        switch (op) {
        case '.': return depth >= 1 ? std::string() : underflow(); // STOP
        case 0x80: if (!skip(1)) return past("PROTO"); break;
        case 0x95: if (!skip(8)) return past("FRAME"); break;
        case '(': marks.push_back(depth); break;
        case ')': case ']': case '}': case 'N': case 0x88: case 0x89: ok = stack(0, 1); break;
        case 't': case 'l': case 'd': ok = toMark(true, false); break;
        case 'e': ok = toMark(false, false); break;
        case 'u': ok = toMark(false, true); break;
        case 0x85: case 'Q': ok = stack(1, 1); break;          // TUPLE1, BINPERSID
        case 0x86: case 'R': case 'b': case 0x81: case 'a': ok = stack(2, 1); break; // TUPLE2 REDUCE BUILD NEWOBJ APPEND
        case 0x87: case 's': ok = stack(3, op == 's' ? 1 : 1); break; // TUPLE3, SETITEM
        case '0': ok = stack(1, 0); break;                      // POP
        case '2': ok = stack(1, 2); break;                      // DUP
        case '1': ok = !marks.empty(); if (ok) { depth = marks.back(); marks.pop_back(); } break; // POP_MARK
        case 'q': case 'h': case 'K': case 'U': case 0x8c: case 0x8a: case 'C': { // one-byte argument
            if (!need(1)) return past("an opcode");
            const uint64_t v = p[i++];
            if ((op == 'U' || op == 0x8c || op == 0x8a || op == 'C') && !skip(v)) return past("a short string");
            ok = op == 'q' ? stack(1, 1) : stack(0, 1); // BINPUT peeks; the rest push
            break;
        }
        case 'M': if (!skip(2)) return past("BININT2"); ok = stack(0, 1); break;
        case 'J': if (!skip(4)) return past("BININT"); ok = stack(0, 1); break;
        case 'G': if (!skip(8)) return past("BINFLOAT"); ok = stack(0, 1); break;
        case 'r': case 'j': { // LONG_BINPUT, LONG_BINGET: a memo index
            if (!need(4)) return past("a memo index");
            const uint64_t v = le(4);
            i += 4;
            if (v > ops) return "memo index " + std::to_string(v) + " at byte " + std::to_string(at) +
                                " is beyond the " + std::to_string(ops) + " opcodes before it";
            ok = op == 'r' ? stack(1, 1) : stack(0, 1);
            break;
        }
        case 'X': case 'T': case 'B': case 0x8b:      // a four-byte length
        case 0x8d: case 0x8e: case 0x96: {            // an eight-byte length
            const int bytes = op == 0x8d || op == 0x8e || op == 0x96 ? 8 : 4;
            if (!need(uint64_t(bytes))) return past("a length");
            const uint64_t v = le(bytes);
            i += size_t(bytes);
            if (!skip(v)) return past("a string");
            ok = stack(0, 1);
            break;
        }
        case 'c': { // GLOBAL: two lines
            for (int line = 0; line < 2; ++line) {
                while (i < n && p[i] != '\n')
                    ++i;
                if (i >= n) return past("GLOBAL");
                ++i;
            }
            ok = stack(0, 1);
            break;
        }
        default: return {}; // not walked: the unpickler refuses it itself
        }
        if (!ok) return underflow();
    }
    return {};
}

// What torch::pickle_load does (torch.save's zip format, archive "data"), over the checked and re-laid archive
// (PtArchive), with the pickle checked first (checkPickle). Throws std::runtime_error with one line.
torch::IValue unpickleChecked(std::vector<char> bytes) {
    auto archive = std::make_shared<PtArchive>();
    if (std::string bad = PtArchive::parse(std::move(bytes), *archive); !bad.empty()) throw std::runtime_error(bad);
    if (const PtArchive::Entry* pkl = archive->find("data.pkl")) {
        const std::string bad = checkPickle(reinterpret_cast<const unsigned char*>(archive->data(*pkl)), size_t(pkl->size));
        if (!bad.empty()) throw std::runtime_error(bad);
    }
    caffe2::serialize::PyTorchStreamReader reader(std::make_shared<ArchiveBytes>(archive));
    return torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                             /*type_resolver=*/c10::nullopt, /*obj_loader=*/c10::nullopt,
                                             /*device=*/c10::nullopt, reader);
}

Expected<Dataset> loadPt(const fs::path& file, int64_t count) {
    const std::string path = file.string();
    auto bad = [&](const std::string& what) { return usageError(".pt file '" + path + "': " + what); };
    std::error_code ec;
    const uint64_t fileSize = fs::file_size(file, ec);
    if (ec) return bad("cannot get its size (" + ec.message() + ")");
    std::ifstream f(file, std::ios::binary);
    if (!f) return bad(std::string("cannot open (") + std::strerror(errno) + ")");
    std::vector<char> bytes(static_cast<size_t>(fileSize));
    if (!f.read(bytes.data(), std::streamsize(fileSize))) return bad("cannot read it");

    torch::IValue value;
    try {
        value = unpickleChecked(std::move(bytes));
    } catch (const c10::Error& e) {
        return bad("cannot be loaded (" + firstLine(e.what_without_backtrace()) +
                   "); save one tensor with torch.save(t, path)");
    } catch (const std::exception& e) {
        return bad("cannot be loaded (" + firstLine(e.what()) +
                   "); save one tensor with torch.save(t, path)");
    }
    if (!value.isTensor()) {
        const std::string kind = value.isGenericDict() ? "dict"
                                 : value.isList()      ? "list"
                                 : value.isTuple()     ? "tuple"
                                                       : value.type()->str();
        return bad("holds a " + kind + ", not a tensor; save one tensor with torch.save(t, path)");
    }
    torch::Tensor t = value.toTensor();
    if (t.dim() == 0) return bad("holds a 0-d tensor; save one whose first dimension is the batch");
    if (t.numel() == 0)
        return bad("holds an empty tensor " + shapeText(t.sizes().vec()) + "; save a non-empty one");
    if (t.is_complex()) return bad("holds a complex tensor; save a real one (t.real or t.abs())");
    // The pickle's sizes and strides must fit its storage (the unpickler does not check; found by
    // fuzz_inputs: [2, 4] with strides [4, 3] over 8 floats, which the first view of it then threw on).
    {
        int64_t last = t.storage_offset();
        bool fits = last >= 0;
        for (int64_t d = 0; fits && d < t.dim(); ++d) {
            fits = t.stride(d) >= 0 && (t.size(d) <= 1 || t.stride(d) <= (INT64_MAX - last) / (t.size(d) - 1));
            if (fits) last += (t.size(d) - 1) * t.stride(d);
        }
        const int64_t item = int64_t(t.element_size());
        fits = fits && t.storage().data() != nullptr && last < INT64_MAX / item &&
               (last + 1) * item <= int64_t(t.storage().nbytes());
        if (!fits)
            return bad("holds a tensor of shape " + shapeText(t.sizes().vec()) + " whose strides reach past its " +
                       std::to_string(t.storage().nbytes()) + "-byte storage (damaged)");
    }
    try {
        const int64_t keep = count > 0 ? std::min(count, t.size(0)) : t.size(0);
        const bool indices = t.scalar_type() == torch::kInt64 || t.scalar_type() == torch::kInt32 ||
                             t.scalar_type() == torch::kInt16;
        const auto dtype = indices ? torch::kInt64 : torch::kFloat32;
        return unlabelled("", t.narrow(0, 0, keep).to(torch::kCPU, dtype).contiguous());
    } catch (const c10::Error& e) {
        return bad("cannot be used (" + firstLine(e.what_without_backtrace()) + ")");
    }
}

} // namespace

Expected<std::vector<int64_t>> parseShape(const std::string& text) {
    auto bad = [&](const std::string& what) {
        return usageError("input shape '" + text + "': " + what +
                     "; give positive sizes like --input-shape 3,224,224");
    };
    std::vector<int64_t> shape;
    if (text.find_first_not_of(" \t") == std::string::npos) return bad("is empty");
    size_t begin = 0;
    while (true) {
        const size_t end = std::min(text.find(',', begin), text.size());
        std::string item = text.substr(begin, end - begin);
        const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
        item = a == std::string::npos ? std::string() : item.substr(a, b - a + 1);
        if (item.empty()) return bad("has an empty entry");
        int64_t v = 0;
        const auto r = std::from_chars(item.data(), item.data() + item.size(), v);
        if (r.ec == std::errc::result_out_of_range) return bad("'" + item + "' is too large");
        if (r.ec != std::errc() || r.ptr != item.data() + item.size())
            return bad("'" + item + "' is not a number");
        if (v <= 0) return bad("'" + item + "' is not positive");
        shape.push_back(v);
        if (end == text.size()) break;
        begin = end + 1;
    }
    if (shape.size() > 5)
        return bad("has " + std::to_string(shape.size()) + " dims, at most 5 are supported");
    int64_t product = 1;
    for (int64_t d : shape)
        if (__builtin_mul_overflow(product, d, &product) || product > 1000000000)
            return bad("has more than 1e9 elements per sample");
    return shape;
}

InputOptions imagenetPreset() {
    InputOptions o;
    o.resize = 256;
    o.crop = 224;
    o.channels = 3;
    o.mean = {0.485f, 0.456f, 0.406f};
    o.std = {0.229f, 0.224f, 0.225f};
    return o;
}

Expected<Dataset> loadInputs(const InputOptions& o) {
    if (o.count < 0)
        return usageError("--count " + std::to_string(o.count) +
                     " is negative; give a number of samples (0 = all)");
    if (o.path.empty()) {
        if (o.shape.empty())
            return usageError(std::string("no input given; give --input (") + kAcceptedKinds +
                         ") or --input-shape (e.g. 3,224,224) for a random probe");
        if (o.shape.size() > 5) return usageError("--input-shape " + shapeText(o.shape) + " has more than 5 dims");
        if (o.count < 1) return usageError("--count 0 gives an empty random probe; give at least 1 sample");
        std::vector<int64_t> sizes = {o.count};
        int64_t total = o.count;
        for (int64_t d : o.shape) {
            if (d <= 0)
                return usageError("--input-shape " + shapeText(o.shape) +
                             " has a size below 1; give positive sizes");
            if (__builtin_mul_overflow(total, d, &total) || total > kMaxProbeElements)
                return usageError("random probe of " + std::to_string(o.count) + " x " + shapeText(o.shape) +
                             " has more than 2^30 elements; give a smaller --count or --input-shape");
            sizes.push_back(d);
        }
        auto gen = at::detail::createCPUGenerator(o.seed);
        return unlabelled("random " + shapeText(o.shape), at::rand(sizes, gen));
    }

    const fs::path path(o.path);
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    const std::string ext = lowerExtension(path);
    if (!fs::exists(st)) return usageError("input '" + o.path + "': does not exist; give " + kAcceptedKinds);
    const bool folder = fs::is_directory(st), image = !folder && isImageFile(path);
    if (!folder && !image && ext != ".npy" && ext != ".pt" && ext != ".pth")
        return usageError("input '" + o.path + "': unknown kind of file '" + path.filename().string() +
                     "'; give " + kAcceptedKinds);
    if (folder || image)
        if (auto s = checkImageOptions(o); !s) return s.error();

    Expected<Dataset> loaded = folder          ? loadImageFolder(path, o)
                               : image         ? loadSingleImage(path, o)
                               : ext == ".npy" ? loadNpy(path, o.count)
                                               : loadPt(path, o.count);
    if (!loaded) return loaded.error();

    Dataset d = std::move(loaded.value());
    const fs::path normal = path.lexically_normal();
    d.name = normal.has_filename() ? normal.filename().string() : normal.parent_path().filename().string();
    if (!o.shape.empty() && d.sampleShape != o.shape)
        return usageError("input '" + o.path + "': each sample is " + shapeText(d.sampleShape) +
                     " but --input-shape is " + shapeText(o.shape) +
                     "; drop --input-shape or give data of that shape");
    return d;
}

} // namespace ts::capture
