// Model input tests: PNG files written with the project's writer, .npy files encoded by hand here, .pt files
// saved by Python's torch.save, checked against references computed independently in the test.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>

#include "engine/capture/inputs.hpp"
#include "engine/capture/pt_archive.hpp"
#include "engine/core/image.hpp"
#include "tests/capture/fixtures.hpp"

namespace ts::capture {
namespace {

namespace fs = std::filesystem;
using testing::tempDir;

// A fresh folder under the per-process temp folder.
fs::path freshDir(const std::string& name) {
    const fs::path d = tempDir() / "inputs" / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

void writeBytes(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string readAll(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A fuzz_inputs corpus file written to `path` as the file the reader saw: the fuzzer's first byte only picked
// the kind (and the resize path), so it is dropped. False when the corpus file is missing or empty.
bool writeFuzzInput(const std::string& corpusName, const fs::path& path) {
    std::ifstream in(testing::sourceDir() / "tests/fuzz/corpus/inputs" / corpusName, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 2) return false;
    writeBytes(path, bytes.substr(1));
    return true;
}

// An opaque RGB test picture: pixel (x, y) has r = 10 + 20x + 3y, g = 200 - 7x - 11y, b = (x * y * 13) % 256.
uint8_t red(int x, int y) {
    return uint8_t(10 + 20 * x + 3 * y);
}
uint8_t green(int x, int y) {
    return uint8_t(200 - 7 * x - 11 * y);
}
uint8_t blue(int x, int y) {
    return uint8_t((x * y * 13) % 256);
}

void writeTestPng(const fs::path& path, int w, int h, int shift = 0) {
    ImageRgba8 img(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.at(x, y);
            p[0] = uint8_t(red(x, y) + shift);
            p[1] = green(x, y);
            p[2] = blue(x, y);
            p[3] = 255;
        }
    ASSERT_TRUE(writePng(path.string(), img).isOk());
}

void writeConstantPng(const fs::path& path, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    ImageRgba8 img(w, h);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.at(x, y);
            p[0] = r, p[1] = g, p[2] = b, p[3] = 255;
        }
    ASSERT_TRUE(writePng(path.string(), img).isOk());
}

// The test picture as [3, h, w] in [0, 1], straight from the formulas.
torch::Tensor expectedPicture(int w, int h) {
    torch::Tensor t = torch::empty({3, h, w});
    auto a = t.accessor<float, 3>();
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            a[0][y][x] = red(x, y) / 255.0f;
            a[1][y][x] = green(x, y) / 255.0f;
            a[2][y][x] = blue(x, y) / 255.0f;
        }
    return t;
}

// Bilinear resampling with half-pixel centres (align_corners = false), written out for upscaling checks.
torch::Tensor bilinearReference(const torch::Tensor& src, int64_t outH, int64_t outW) {
    const int64_t c = src.size(0), inH = src.size(1), inW = src.size(2);
    torch::Tensor out = torch::empty({c, outH, outW});
    auto s = src.accessor<float, 3>();
    auto o = out.accessor<float, 3>();
    auto coord = [](int64_t dst, int64_t in, int64_t outN, int64_t& i0, int64_t& i1, double& f) {
        double x = (double(dst) + 0.5) * double(in) / double(outN) - 0.5;
        if (x < 0) x = 0;
        i0 = std::min<int64_t>(int64_t(std::floor(x)), in - 1);
        i1 = std::min<int64_t>(i0 + 1, in - 1);
        f = x - double(i0);
    };
    for (int64_t y = 0; y < outH; ++y)
        for (int64_t x = 0; x < outW; ++x) {
            int64_t y0, y1, x0, x1;
            double fy, fx;
            coord(y, inH, outH, y0, y1, fy);
            coord(x, inW, outW, x0, x1, fx);
            for (int64_t k = 0; k < c; ++k)
                o[k][y][x] = float((1 - fy) * ((1 - fx) * s[k][y0][x0] + fx * s[k][y0][x1]) +
                                   fy * ((1 - fx) * s[k][y1][x0] + fx * s[k][y1][x1]));
        }
    return out;
}

// A .npy file encoded by hand: magic, version, little-endian header length, the dict padded to 64 bytes.
std::string npyBytes(const std::string& descr, const std::string& shapeTuple, const void* data, size_t n,
                     bool fortran = false, int version = 1) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shapeTuple + ", }";
    const size_t preamble = version == 1 ? 10 : 12;
    while ((preamble + dict.size() + 1) % 64 != 0)
        dict += ' ';
    dict += '\n';
    std::string out = "\x93NUMPY";
    out += char(version);
    out += char(0);
    const uint32_t len = uint32_t(dict.size());
    out += char(len & 0xff);
    out += char((len >> 8) & 0xff);
    if (version != 1) {
        out += char((len >> 16) & 0xff);
        out += char((len >> 24) & 0xff);
    }
    out += dict;
    out.append(static_cast<const char*>(data), n);
    return out;
}

// Fails with a one-line Usage error whose message holds every one of `parts`.
::testing::AssertionResult failsWith(const Expected<Dataset>& r, std::initializer_list<std::string> parts) {
    if (r.hasValue()) return ::testing::AssertionFailure() << "accepted (" << r->name << ")";
    const std::string& m = r.error().message;
    if (r.error().kind != ErrorKind::Usage)
        return ::testing::AssertionFailure() << "not a usage error: " << m;
    if (m.find('\n') != std::string::npos) return ::testing::AssertionFailure() << "several lines: " << m;
    for (const std::string& p : parts)
        if (m.find(p) == std::string::npos)
            return ::testing::AssertionFailure() << "message '" << m << "' lacks '" << p << "'";
    return ::testing::AssertionSuccess();
}

InputOptions at(const fs::path& path) {
    InputOptions o;
    o.path = path.string();
    return o;
}

void expectUnlabelled(const Dataset& d, int64_t n) {
    EXPECT_EQ(d.size(), n);
    EXPECT_EQ(d.inputs.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(d.inputs.is_contiguous());
    EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
    EXPECT_TRUE(torch::equal(d.labels, torch::full({n}, -1, torch::kInt64)));
    EXPECT_EQ(d.numClasses, 0);
    EXPECT_EQ(d.sampleShape, d.inputs.sizes().slice(1).vec());
}

// Runs Python's torch.save on `expr` into `path`; false when Python or torch is missing.
bool torchSave(const std::string& expr, const fs::path& path) {
    const std::string cmd = "/usr/bin/python3 -c \"import torch; torch.save(" + expr + ", '" + path.string() +
                            "')\" > '" + path.string() + ".log' 2>&1";
    return std::system(cmd.c_str()) == 0 && fs::exists(path);
}

// ---- --input-shape
// -------------------------------------------------------------------------------------------

TEST(InputShape, ParsesPositiveSizes) {
    auto s = parseShape("3,224,224");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s, (std::vector<int64_t>{3, 224, 224}));
    s = parseShape(" 16 , 8 ");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(*s, (std::vector<int64_t>{16, 8}));
    s = parseShape("1,2,3,4,5");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->size(), 5u);
    s = parseShape("1000000000");
    ASSERT_TRUE(s) << s.error().message;
}

TEST(InputShape, RejectsBadText) {
    for (const std::string bad :
         {"", "  ", ",", "3,,224", "3,224,", "3,a", "3x224", "3.5", "0,3", "3,-1", "1,1,1,1,1,1",
          "100000,100000", "1000000001", "99999999999999999999", "4611686018427387904,4"}) {
        auto s = parseShape(bad);
        ASSERT_FALSE(s) << "'" << bad << "' was accepted";
        EXPECT_EQ(s.error().kind, ErrorKind::Usage);
        EXPECT_NE(s.error().message.find("'" + bad + "'"), std::string::npos) << s.error().message;
        EXPECT_EQ(s.error().message.find('\n'), std::string::npos) << s.error().message;
    }
}

TEST(InputShape, ImagenetPreset) {
    const InputOptions o = imagenetPreset();
    EXPECT_EQ(o.resize, 256);
    EXPECT_EQ(o.crop, 224);
    EXPECT_EQ(o.channels, 3);
    EXPECT_EQ(o.mean, (std::vector<float>{0.485f, 0.456f, 0.406f}));
    EXPECT_EQ(o.std, (std::vector<float>{0.229f, 0.224f, 0.225f}));
    EXPECT_TRUE(o.path.empty());
    EXPECT_TRUE(o.shape.empty());
}

// ---- random probe
// ----------------------------------------------------------------------------------------------

TEST(RandomProbe, SeededShapeAndRange) {
    InputOptions o;
    o.shape = {3, 8, 5};
    o.count = 6;
    o.seed = 42;
    auto a = loadInputs(o);
    ASSERT_TRUE(a) << a.error().message;
    expectUnlabelled(*a, 6);
    EXPECT_EQ(a->inputs.sizes(), (std::vector<int64_t>{6, 3, 8, 5}));
    EXPECT_EQ(a->sampleShape, (std::vector<int64_t>{3, 8, 5}));
    EXPECT_EQ(a->name, "random [3, 8, 5]");
    EXPECT_GE(a->inputs.min().item<float>(), 0.0f);
    EXPECT_LT(a->inputs.max().item<float>(), 1.0f);
    EXPECT_NEAR(a->inputs.mean().item<float>(), 0.5f, 0.08f);

    auto b = loadInputs(o);
    ASSERT_TRUE(b);
    EXPECT_TRUE(torch::equal(a->inputs, b->inputs)) << "same seed, same probe";
    // The same as Torch's own seeded generator gives.
    EXPECT_TRUE(torch::equal(a->inputs, at::rand({6, 3, 8, 5}, at::detail::createCPUGenerator(42))));
    o.seed = 43;
    auto c = loadInputs(o);
    ASSERT_TRUE(c);
    EXPECT_FALSE(torch::equal(a->inputs, c->inputs)) << "another seed, another probe";

    InputOptions d;
    d.shape = {3, 224, 224};
    auto def = loadInputs(d);
    ASSERT_TRUE(def);
    EXPECT_EQ(def->name, "random [3, 224, 224]");
    EXPECT_EQ(def->size(), 4);
}

TEST(RandomProbe, Errors) {
    EXPECT_TRUE(failsWith(loadInputs(InputOptions{}), {"--input", "--input-shape"}));
    InputOptions o;
    o.shape = {3, 4};
    o.count = 0;
    EXPECT_TRUE(failsWith(loadInputs(o), {"--count"}));
    o.count = -2;
    EXPECT_TRUE(failsWith(loadInputs(o), {"--count"}));
    o.count = 4;
    o.shape = {3, 0};
    EXPECT_TRUE(failsWith(loadInputs(o), {"[3, 0]"}));
    o.shape = {100000, 100000};
    EXPECT_TRUE(failsWith(loadInputs(o), {"[100000, 100000]"}));
}

// ---- images
// ----------------------------------------------------------------------------------------------------

TEST(ImageInput, DecodesRgbAndGrey) {
    const fs::path dir = freshDir("single");
    const fs::path png = dir / "pic.png";
    writeTestPng(png, 5, 3);
    auto rgb = loadInputs(at(png));
    ASSERT_TRUE(rgb) << rgb.error().message;
    expectUnlabelled(*rgb, 1);
    EXPECT_EQ(rgb->name, "pic.png");
    EXPECT_EQ(rgb->inputs.sizes(), (std::vector<int64_t>{1, 3, 3, 5}));
    EXPECT_TRUE(torch::equal(rgb->inputs[0], expectedPicture(5, 3)));

    // stb's grey: (77 r + 150 g + 29 b) >> 8.
    InputOptions o = at(png);
    o.channels = 1;
    auto grey = loadInputs(o);
    ASSERT_TRUE(grey) << grey.error().message;
    EXPECT_EQ(grey->inputs.sizes(), (std::vector<int64_t>{1, 1, 3, 5}));
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 5; ++x) {
            const int v = (77 * red(x, y) + 150 * green(x, y) + 29 * blue(x, y)) >> 8;
            EXPECT_FLOAT_EQ(grey->inputs[0][0][y][x].item<float>(), float(v) / 255.0f) << x << "," << y;
        }

    o.channels = 4;
    EXPECT_TRUE(failsWith(loadInputs(o), {"--channels"}));

    // The extension is matched without case.
    fs::copy_file(png, dir / "PIC2.PNG");
    auto upper = loadInputs(at(dir / "PIC2.PNG"));
    ASSERT_TRUE(upper) << upper.error().message;
    EXPECT_TRUE(torch::equal(upper->inputs, rgb->inputs));
}

TEST(ImageInput, ResizeShorterSideIsBilinear) {
    const fs::path dir = freshDir("resize");
    const fs::path png = dir / "small.png";
    writeTestPng(png, 3, 2);
    InputOptions o = at(png);
    o.resize = 6; // 3x2 -> shorter side (height) 6, width 9: an upscale by 3
    auto r = loadInputs(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->inputs.sizes(), (std::vector<int64_t>{1, 3, 6, 9}));
    const torch::Tensor want = bilinearReference(expectedPicture(3, 2), 6, 9);
    EXPECT_TRUE(torch::allclose(r->inputs[0], want, 1e-5, 1e-6))
        << "max diff " << (r->inputs[0] - want).abs().max().item<float>();

    // Portrait: the width is the shorter side; the longer side is truncated like torchvision's int().
    const fs::path tall = dir / "tall.png";
    writeTestPng(tall, 3, 7);
    o = at(tall);
    o.resize = 4; // 7 * 4 / 3 = 9.33 -> 9
    auto t = loadInputs(o);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->inputs.sizes(), (std::vector<int64_t>{1, 3, 9, 4}));

    // Downscaling a flat picture keeps it flat (the filter's weights sum to one).
    const fs::path flat = dir / "flat.png";
    writeConstantPng(flat, 40, 30, 51, 102, 204);
    o = at(flat);
    o.resize = 7;
    auto f = loadInputs(o);
    ASSERT_TRUE(f) << f.error().message;
    EXPECT_EQ(f->inputs.sizes(), (std::vector<int64_t>{1, 3, 7, 9}));
    for (int c = 0; c < 3; ++c) {
        const float v = float(std::vector<int>{51, 102, 204}[size_t(c)]) / 255.0f;
        EXPECT_NEAR(f->inputs[0][c].min().item<float>(), v, 1e-5f);
        EXPECT_NEAR(f->inputs[0][c].max().item<float>(), v, 1e-5f);
    }
}

TEST(ImageInput, CentreCropAndNormalise) {
    const fs::path dir = freshDir("crop");
    const fs::path png = dir / "pic.png";
    writeTestPng(png, 6, 5);
    InputOptions o = at(png);
    o.crop = 3; // offsets: top round(2 / 2) = 1, left round(3 / 2 = 1.5) = 2 (half to even, as Python)
    auto c = loadInputs(o);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->inputs.sizes(), (std::vector<int64_t>{1, 3, 3, 3}));
    EXPECT_TRUE(torch::equal(c->inputs[0], expectedPicture(6, 5).narrow(1, 1, 3).narrow(2, 2, 3)));

    o.mean = {0.5f, 0.25f, 0.125f};
    o.std = {0.5f, 2.0f, 0.25f};
    auto n = loadInputs(o);
    ASSERT_TRUE(n) << n.error().message;
    for (int k = 0; k < 3; ++k)
        for (int y = 0; y < 3; ++y)
            for (int x = 0; x < 3; ++x) {
                const uint8_t byte = k == 0   ? red(x + 2, y + 1)
                                     : k == 1 ? green(x + 2, y + 1)
                                              : blue(x + 2, y + 1);
                const float want = (float(byte) / 255.0f - o.mean[size_t(k)]) / o.std[size_t(k)];
                EXPECT_NEAR(n->inputs[0][k][y][x].item<float>(), want, 1e-6f);
            }

    // Resize then crop: the crop is the middle of the resized picture.
    InputOptions rc = at(png);
    rc.resize = 10; // 6x5 -> 12x10
    auto resized = loadInputs(rc);
    ASSERT_TRUE(resized) << resized.error().message;
    rc.crop = 8;
    auto both = loadInputs(rc);
    ASSERT_TRUE(both) << both.error().message;
    EXPECT_EQ(both->inputs.sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
    EXPECT_TRUE(torch::equal(both->inputs[0], resized->inputs[0].narrow(1, 1, 8).narrow(2, 2, 8)));

    // Bad options.
    o.crop = 6;
    o.mean.clear();
    o.std.clear();
    EXPECT_TRUE(failsWith(loadInputs(o), {png.string(), "--crop 6", "--resize"}));
    o.crop = 0;
    o.mean = {0.5f};
    EXPECT_TRUE(failsWith(loadInputs(o), {"--mean", "3 channels"}));
    o.mean.clear();
    o.std = {1.0f, 0.0f, 1.0f};
    EXPECT_TRUE(failsWith(loadInputs(o), {"--std"}));
}

TEST(ImageInput, ImagenetPresetOnALargePicture) {
    const fs::path dir = freshDir("imagenet");
    const fs::path png = dir / "photo.png";
    writeConstantPng(png, 320, 300, 124, 116, 104);
    InputOptions o = imagenetPreset();
    o.path = png.string();
    auto r = loadInputs(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->inputs.sizes(), (std::vector<int64_t>{1, 3, 224, 224}));
    const float rgb[3] = {124, 116, 104};
    for (int c = 0; c < 3; ++c) {
        const float want = (rgb[c] / 255.0f - o.mean[size_t(c)]) / o.std[size_t(c)];
        EXPECT_NEAR(r->inputs[0][c].mean().item<float>(), want, 1e-4f);
    }
}

TEST(ImageInput, FolderSortedByNameAndCounted) {
    const fs::path dir = freshDir("folder");
    writeConstantPng(dir / "b.png", 4, 3, 20, 0, 0);
    writeConstantPng(dir / "a.png", 4, 3, 10, 0, 0);
    writeConstantPng(dir / "c.bmp", 4, 3, 30, 0, 0); // other kinds in the same folder
    writeBytes(dir / "notes.txt", "not an image");
    fs::create_directories(dir / "sub.png"); // a folder with an image's name is not an image

    InputOptions o = at(dir);
    o.count = 0;
    auto all = loadInputs(o);
    ASSERT_TRUE(all) << all.error().message;
    expectUnlabelled(*all, 3);
    EXPECT_EQ(all->name, "folder");
    EXPECT_EQ(all->inputs.sizes(), (std::vector<int64_t>{3, 3, 3, 4}));
    for (int i = 0; i < 3; ++i)
        EXPECT_FLOAT_EQ(all->inputs[i][0][0][0].item<float>(), float(10 * (i + 1)) / 255.0f) << "image " << i;

    o.count = 2;
    o.path = dir.string() + "/"; // a trailing slash keeps the folder's name
    auto two = loadInputs(o);
    ASSERT_TRUE(two) << two.error().message;
    EXPECT_EQ(two->name, "folder");
    EXPECT_EQ(two->size(), 2);
    EXPECT_TRUE(torch::equal(two->inputs, all->inputs.narrow(0, 0, 2)));

    o.shape = {3, 3, 4};
    EXPECT_TRUE(loadInputs(o).hasValue());
    o.shape = {3, 224, 224};
    EXPECT_TRUE(failsWith(loadInputs(o), {"[3, 3, 4]", "[3, 224, 224]"}));
}

TEST(ImageInput, FolderWithDifferentSizesNamesTheFile) {
    const fs::path dir = freshDir("mixed");
    writeTestPng(dir / "1.png", 8, 6);
    writeTestPng(dir / "2.png", 9, 6);
    InputOptions o = at(dir);
    EXPECT_TRUE(failsWith(loadInputs(o), {(dir / "2.png").string(), "--resize", "--crop"}));
    o.resize = 6;
    o.crop = 6;
    auto fixed = loadInputs(o);
    ASSERT_TRUE(fixed) << fixed.error().message;
    EXPECT_EQ(fixed->inputs.sizes(), (std::vector<int64_t>{2, 3, 6, 6}));
}

TEST(ImageInput, MissingEmptyUnknownAndCorrupt) {
    const fs::path dir = freshDir("bad");
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "nope.png")), {(dir / "nope.png").string(), ".npy", ".pt"}));
    const fs::path empty = dir / "empty";
    fs::create_directories(empty);
    writeBytes(empty / "readme.txt", "no images here");
    EXPECT_TRUE(failsWith(loadInputs(at(empty)), {empty.string(), ".png"}));
    writeBytes(dir / "data.csv", "1,2,3\n");
    EXPECT_TRUE(
        failsWith(loadInputs(at(dir / "data.csv")), {(dir / "data.csv").string(), ".npy", ".pt", ".png"}));

    writeBytes(dir / "broken.png", "\x89PNG\r\n\x1a\n this is not really a PNG at all");
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "broken.png")), {(dir / "broken.png").string()}));
    writeBytes(dir / "zero.jpg", "");
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "zero.jpg")), {(dir / "zero.jpg").string()}));
    // A valid PNG cut in half.
    writeTestPng(dir / "whole.png", 64, 64);
    std::ifstream in(dir / "whole.png", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    writeBytes(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "cut.png")), {(dir / "cut.png").string()}));

    // Found by fuzz_inputs: a 63-byte BMP whose header claims 16777216 x 2 pixels decoded (stb pads missing rows
    // with zeros) into 100 million floats, then a model 25 GB wide. The header is checked against the file.
    std::string bmp("BM>\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", 18);
    bmp += std::string("\0\0\0\x01\x02\0\0\0\x01\0\x18\0\0\0\0\0", 16); // w = 2^24, h = 2, 24 bits, BI_RGB
    bmp += std::string(29, '\0');
    writeBytes(dir / "claims.bmp", bmp);
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "claims.bmp")),
                          {(dir / "claims.bmp").string(), "truncated or corrupt", "16777216x2", "63"}));
    // The same with a compression field stb does not know (0xffffffff): it reads the rows all the same.
    bmp.replace(30, 4, std::string("\xff\xff\xff\xff", 4));
    writeBytes(dir / "claims2.bmp", bmp);
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "claims2.bmp")), {"truncated or corrupt", "16777216x2"}));
    // Found by fuzz_inputs: a BMP whose header says 0 pixels wide decodes (stb returns pixels for it), and
    // --resize then divided by its shorter side. The decoded size is checked (the file is the fuzzer's, less
    // its first byte, which picked the kind and the resize path).
    ASSERT_TRUE(writeFuzzInput("bmp_zero_width_resized", dir / "zero_width.bmp"));
    InputOptions resized = at(dir / "zero_width.bmp");
    resized.resize = 8;
    resized.crop = 6;
    EXPECT_TRUE(failsWith(loadInputs(resized), {(dir / "zero_width.bmp").string()}));
    // Found by fuzz_inputs: 21 bytes named .bmp that stb_image decoded as a 13824x6144 TGA (a format with no
    // signature), 1 GB once in floats. Only PNG, JPEG and BMP are read, by their signatures.
    ASSERT_TRUE(writeFuzzInput("bmp_that_stb_reads_as_tga", dir / "tga.bmp"));
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "tga.bmp")), {(dir / "tga.bmp").string(), "not a PNG, JPEG or BMP"}));
    // A PNG header claiming 10000 x 10000 RGB pixels: 1.1 GB as floats, refused before decoding.
    std::string big("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x27\x10\0\0\x27\x10\x08\x02\0\0\0\0\0\0\0", 33);
    writeBytes(dir / "big.png", big);
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "big.png")), {(dir / "big.png").string(), "10000x10000", "too large"}));
    // Found by fuzz_inputs: a BMP header of 23330816 x 1122107392 pixels; the size in the message itself
    // overflowed (UBSan in the ASan build of this suite).
    ASSERT_TRUE(writeFuzzInput("bmp_huge_header_message", dir / "huge.bmp"));
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "huge.bmp")), {(dir / "huge.bmp").string(), "too large"}));
    // Found by fuzz_inputs: a 32-byte BMP whose header stb completes with zeros past the end of the file
    // (1,887,232 x 1 pixels at 4 bits, uncompressed, every row missing); resized, it took 1.6 GB.
    ASSERT_TRUE(writeFuzzInput("bmp_header_past_the_end", dir / "short.bmp"));
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "short.bmp")), {(dir / "short.bmp").string(), "BMP header needs 54 bytes"}));
    // An OS/2 BMP (12-byte header) claiming 8000 x 8000 pixels at 24 bits in 26 bytes: its rows are missing.
    std::string os2("BM\x1a\0\0\0\0\0\0\0\x1a\0\0\0\x0c\0\0\0\x40\x1f\x40\x1f\x01\0\x18\0", 26);
    writeBytes(dir / "os2.bmp", os2);
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "os2.bmp")), {(dir / "os2.bmp").string(), "needs 192000026 bytes"}));
    // And one whose header stb reads as a negative size (the product of the two overflowed when tripled).
    ASSERT_TRUE(writeFuzzInput("bmp_negative_size_header", dir / "neg.bmp"));
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "neg.bmp")), {(dir / "neg.bmp").string()}));
    // Found by fuzz_inputs: a PNG whose IHDR is followed by a second PNG signature; stb's reason for it ends in
    // a newline, which made the error two lines.
    std::string twice("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x02\x08\x02\0\0\0\xfd", 30);
    twice += std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x82", 19);
    writeBytes(dir / "twice.png", twice);
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "twice.png")), {(dir / "twice.png").string(), "cannot be"}));
    // A whole small BMP still loads, and so does a 512 x 512 PNG.
    std::string good("BM", 2);
    const uint32_t fileSize = 54 + 8;
    for (uint32_t v : {fileSize, 0u, 54u, 40u}) good.append(reinterpret_cast<const char*>(&v), 4);
    for (uint32_t v : {2u, 1u}) good.append(reinterpret_cast<const char*>(&v), 4);
    good += std::string("\x01\0\x18\0", 4);
    for (uint32_t v : {0u, 8u, 2835u, 2835u, 0u, 0u}) good.append(reinterpret_cast<const char*>(&v), 4);
    good += std::string("\xff\0\0\0\xff\0\0\0", 8); // blue, green, row padding
    writeBytes(dir / "tiny.bmp", good);
    auto tiny = loadInputs(at(dir / "tiny.bmp"));
    ASSERT_TRUE(tiny) << tiny.error().message;
    EXPECT_EQ(tiny->inputs.sizes(), (std::vector<int64_t>{1, 3, 1, 2}));
    writeTestPng(dir / "flat.png", 512, 512);
    EXPECT_TRUE(loadInputs(at(dir / "flat.png")));

    // In a folder, the corrupt file is named.
    const fs::path folder = dir / "folder";
    fs::create_directories(folder);
    writeTestPng(folder / "a.png", 4, 4);
    fs::copy_file(dir / "broken.png", folder / "b.png");
    EXPECT_TRUE(failsWith(loadInputs(at(folder)), {(folder / "b.png").string()}));
}

// ---- .npy
// ------------------------------------------------------------------------------------------------------

TEST(NpyInput, Float32AndCount) {
    const fs::path dir = freshDir("npy");
    std::vector<float> v(2 * 3 * 4);
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = float(i) * 0.25f - 3.0f;
    for (int version : {1, 2}) {
        const fs::path p = dir / ("f4_v" + std::to_string(version) + ".npy");
        writeBytes(p, npyBytes("<f4", "(2, 3, 4)", v.data(), v.size() * 4, false, version));
        auto r = loadInputs(at(p));
        ASSERT_TRUE(r) << r.error().message;
        expectUnlabelled(*r, 2);
        EXPECT_EQ(r->name, p.filename().string());
        EXPECT_EQ(r->inputs.sizes(), (std::vector<int64_t>{2, 3, 4}));
        for (size_t i = 0; i < v.size(); ++i)
            EXPECT_EQ(r->inputs.reshape(-1)[int64_t(i)].item<float>(), v[i]);
    }
    InputOptions o = at(dir / "f4_v1.npy");
    o.count = 1;
    auto one = loadInputs(o);
    ASSERT_TRUE(one) << one.error().message;
    EXPECT_EQ(one->inputs.sizes(), (std::vector<int64_t>{1, 3, 4}));
    EXPECT_EQ(one->inputs[0][2][3].item<float>(), v[11]);
    o.count = 0;
    o.shape = {3, 4};
    EXPECT_TRUE(loadInputs(o).hasValue());
    o.shape = {12};
    EXPECT_TRUE(failsWith(loadInputs(o), {"[3, 4]", "[12]"}));

    // A 1-d array is a batch of scalars.
    writeBytes(dir / "vec.npy", npyBytes("<f4", "(5,)", v.data(), 5 * 4));
    o = at(dir / "vec.npy");
    o.count = 0;
    auto vec = loadInputs(o);
    ASSERT_TRUE(vec) << vec.error().message;
    EXPECT_EQ(vec->inputs.sizes(), (std::vector<int64_t>{5}));
    EXPECT_TRUE(vec->sampleShape.empty());
}

TEST(NpyInput, OtherDtypes) {
    const fs::path dir = freshDir("npy_dtypes");
    const std::vector<uint8_t> u = {0, 1, 127, 128, 254, 255};
    writeBytes(dir / "u1.npy", npyBytes("|u1", "(3, 2)", u.data(), u.size()));
    auto ru = loadInputs(at(dir / "u1.npy"));
    ASSERT_TRUE(ru) << ru.error().message;
    EXPECT_EQ(ru->inputs.sizes(), (std::vector<int64_t>{3, 2}));
    for (size_t i = 0; i < u.size(); ++i)
        EXPECT_FLOAT_EQ(ru->inputs.reshape(-1)[int64_t(i)].item<float>(), float(u[i]) / 255.0f);

    const std::vector<double> d = {1.5, -2.25, 1e-3, 12345.0};
    writeBytes(dir / "f8.npy", npyBytes("<f8", "(2, 2)", d.data(), d.size() * 8));
    const std::vector<int64_t> l = {-7, 0, 1LL << 40, 3};
    writeBytes(dir / "i8.npy", npyBytes("<i8", "(4,)", l.data(), l.size() * 8));
    const std::vector<int32_t> i = {-100, 5, 70000, 1};
    writeBytes(dir / "i4.npy", npyBytes("<i4", "(1, 4)", i.data(), i.size() * 4));
    auto rd = loadInputs(at(dir / "f8.npy"));
    auto rl = loadInputs(at(dir / "i8.npy"));
    auto ri = loadInputs(at(dir / "i4.npy"));
    ASSERT_TRUE(rd && rl && ri);
    // Integers are token indices (an nn.Embedding's input): int64 and exact, 2^40 included.
    for (size_t k = 0; k < 4; ++k) {
        EXPECT_EQ(rd->inputs.reshape(-1)[int64_t(k)].item<float>(), float(d[k]));
        EXPECT_EQ(rl->inputs.reshape(-1)[int64_t(k)].item<int64_t>(), l[k]);
        EXPECT_EQ(ri->inputs.reshape(-1)[int64_t(k)].item<int64_t>(), int64_t(i[k]));
    }
    EXPECT_EQ(rd->inputs.scalar_type(), torch::kFloat32);
    EXPECT_EQ(rl->inputs.scalar_type(), torch::kInt64);
    EXPECT_EQ(ri->inputs.scalar_type(), torch::kInt64);
}

TEST(NpyInput, CorruptFilesAreRefusedBeforeAllocating) {
    const fs::path dir = freshDir("npy_bad");
    const std::vector<float> v(12, 1.0f);
    auto expectFails = [&](const std::string& name, const std::string& bytes,
                           std::initializer_list<std::string> parts) {
        const fs::path p = dir / name;
        writeBytes(p, bytes);
        std::vector<std::string> all(parts);
        all.push_back(p.string());
        auto r = loadInputs(at(p));
        ASSERT_FALSE(r.hasValue()) << name << " was accepted";
        for (const auto& part : all)
            EXPECT_NE(r.error().message.find(part), std::string::npos)
                << name << ": '" << r.error().message << "' lacks '" << part << "'";
        EXPECT_EQ(r.error().kind, ErrorKind::Usage) << name;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << name;
    };
    // The header claims 4e12 bytes; the file has about 200. Allocating first would throw or exhaust memory.
    std::string huge = npyBytes("<f4", "(100000, 100000, 100)", v.data(), 48);
    huge.resize(200, '\0');
    expectFails("huge.npy", huge, {"4000000000000", "truncated"});
    // One float short.
    expectFails("short.npy", npyBytes("<f4", "(3, 4)", v.data(), 44), {"48", "44"});
    // A product that overflows 64 bits.
    expectFails("overflow.npy", npyBytes("<f4", "(4294967296, 4294967296, 4)", v.data(), 48), {"overflow"});
    expectFails("magic.npy", "\x93NUMPZ" + npyBytes("<f4", "(3, 4)", v.data(), 48).substr(6), {"magic"});
    expectFails("text.npy", "hello, world", {"magic"});
    expectFails("tiny.npy", "\x93NU", {"truncated"});
    expectFails("fortran.npy", npyBytes("<f4", "(3, 4)", v.data(), 48, true), {"Fortran"});
    expectFails("bigendian.npy", npyBytes(">f4", "(3, 4)", v.data(), 48), {"big-endian"});
    expectFails("f2.npy", npyBytes("<f2", "(3, 4)", v.data(), 24), {"'<f2'", "not supported"});
    expectFails("object.npy", npyBytes("|O", "(3,)", v.data(), 24), {"'|O'"});
    expectFails("scalar.npy", npyBytes("<f4", "()", v.data(), 4), {"0-d"});
    expectFails("empty.npy", npyBytes("<f4", "(0, 3)", v.data(), 0), {"no samples"});
    expectFails("version.npy", npyBytes("<f4", "(3, 4)", v.data(), 48, false, 9), {"version 9"});
    // The header length points past the end of the file.
    std::string cut = npyBytes("<f4", "(3, 4)", v.data(), 48).substr(0, 40);
    expectFails("cut_header.npy", cut, {"truncated", "header"});
    // Not a dict.
    std::string garbage = npyBytes("<f4", "(3, 4)", v.data(), 48);
    garbage[10] = '[';
    expectFails("garbage.npy", garbage, {"dict"});
    // Found by fuzz_inputs: a key with a newline and bytes that are no text used to be quoted as they were, so
    // the "one line" error had two lines and raw bytes. They are escaped and cut.
    std::string rawKey("\x93NUMPY\x01\x00\x76\x00", 10); // version 1.0, a 118-byte header
    rawKey += "{'de\n\x01\xff" + std::string(60, 'Z') + "'" + std::string(49, ' ') + "\n";
    rawKey += std::string(48, '\0');
    expectFails("raw_key.npy", rawKey, {"lacks ':' after 'de\\x0a\\x01\\xffZZ", "..."});
    std::string rawDescr = npyBytes("<f4", "(3, 4)", v.data(), 48);
    const size_t at = rawDescr.find("<f4");
    rawDescr.replace(at, 3, "\n\t!");
    expectFails("raw_descr.npy", rawDescr, {"dtype '\\x0a\\x09!'"});
}

// ---- .pt
// -------------------------------------------------------------------------------------------------------

TEST(PtInput, TensorSavedByPython) {
    const fs::path dir = freshDir("pt");
    const fs::path p = dir / "batch.pt";
    ASSERT_TRUE(torchSave("torch.arange(12.).reshape(2,2,3)", p))
        << "/usr/bin/python3 with torch could not save " << p << " (install python3-torch)";
    auto r = loadInputs(at(p));
    ASSERT_TRUE(r) << r.error().message;
    expectUnlabelled(*r, 2);
    EXPECT_EQ(r->name, "batch.pt");
    EXPECT_EQ(r->inputs.sizes(), (std::vector<int64_t>{2, 2, 3}));
    EXPECT_TRUE(torch::equal(r->inputs, torch::arange(12, torch::kFloat32).reshape({2, 2, 3})));

    InputOptions o = at(p);
    o.count = 1;
    auto one = loadInputs(o);
    ASSERT_TRUE(one) << one.error().message;
    EXPECT_TRUE(torch::equal(one->inputs, torch::arange(6, torch::kFloat32).reshape({1, 2, 3})));
    o.shape = {2, 3};
    EXPECT_TRUE(loadInputs(o).hasValue());
    o.shape = {3, 2};
    EXPECT_TRUE(failsWith(loadInputs(o), {p.string(), "[2, 3]", "[3, 2]"}));

    // Integer tensors are token indices: int64, exact (2^40 + 1 is not a float); a non-contiguous tensor
    // comes back contiguous. Other dtypes become float32.
    const fs::path ints = dir / "ints.pt";
    ASSERT_TRUE(torchSave("(torch.arange(6) + (1 << 40)).reshape(3,2).t()", ints));
    auto ri = loadInputs(at(ints));
    ASSERT_TRUE(ri) << ri.error().message;
    EXPECT_EQ(ri->inputs.scalar_type(), torch::kInt64);
    EXPECT_TRUE(ri->inputs.is_contiguous());
    EXPECT_TRUE(
        torch::equal(ri->inputs, (torch::arange(6, torch::kInt64) + (int64_t(1) << 40)).reshape({3, 2}).t()));
    const fs::path halves = dir / "halves.pt";
    ASSERT_TRUE(torchSave("torch.arange(6, dtype=torch.float16).reshape(3,2).t()", halves));
    auto rh = loadInputs(at(halves));
    ASSERT_TRUE(rh) << rh.error().message;
    expectUnlabelled(*rh, 2);
    EXPECT_TRUE(torch::equal(rh->inputs, torch::arange(6, torch::kFloat32).reshape({3, 2}).t()));
}

TEST(PtInput, NotATensor) {
    const fs::path dir = freshDir("pt_bad");
    const fs::path dict = dir / "dict.pt";
    ASSERT_TRUE(torchSave("{'x': torch.zeros(2), 'y': torch.ones(1)}", dict))
        << "/usr/bin/python3 with torch could not save " << dict << " (install python3-torch)";
    EXPECT_TRUE(
        failsWith(loadInputs(at(dict)), {dict.string(), "a dict, not a tensor", "torch.save(t, path)"}));
    const fs::path list = dir / "list.pt";
    ASSERT_TRUE(torchSave("[torch.zeros(2), torch.ones(1)]", list));
    EXPECT_TRUE(
        failsWith(loadInputs(at(list)), {list.string(), "a list, not a tensor", "torch.save(t, path)"}));
    // Python pickles a one-entry dict with SETITEM, which LibTorch's unpickler does not know: still one line.
    const fs::path single = dir / "single.pt";
    ASSERT_TRUE(torchSave("{'x': torch.zeros(2)}", single));
    EXPECT_TRUE(failsWith(loadInputs(at(single)), {single.string(), "torch.save(t, path)"}));
    const fs::path scalar = dir / "scalar.pt";
    ASSERT_TRUE(torchSave("torch.tensor(3.0)", scalar));
    EXPECT_TRUE(failsWith(loadInputs(at(scalar)), {scalar.string(), "0-d"}));
    writeBytes(dir / "junk.pt", "definitely not a torch file");
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "junk.pt")), {(dir / "junk.pt").string(), "torch.save"}));
    writeBytes(dir / "empty.pt", "");
    EXPECT_TRUE(failsWith(loadInputs(at(dir / "empty.pt")), {(dir / "empty.pt").string()}));
}

// Damaged zip archives: a directory that points past the end of the file (found by fuzz_inputs: LibTorch's
// own reader over a byte vector read memory after it; the ASan run of this suite fails on the old code), and
// a real torch.save file cut at every length and with every byte of its last 64 (the zip directory) changed.
// Each is a tensor or one line naming the file, never a crash.
TEST(PtInput, DamagedZipArchivesGiveOneLine) {
    const fs::path damaged = testing::sourceDir() / "tests/capture/data/pt_zip_directory_past_end.pt";
    ASSERT_TRUE(fs::exists(damaged)) << damaged;
    EXPECT_TRUE(failsWith(loadInputs(at(damaged)), {damaged.string(), "torch.save"}));

    // Found by fuzz_inputs (each input in tests/fuzz/corpus/inputs), with the words its one line must hold:
    // - a pickle whose tensor has sizes [2, 4] and strides [4, 3] over 8 floats; the first view of it threw out
    //   of the reader (std::terminate in the harness);
    // - a 748-byte pickle whose memo index (LONG_BINPUT) is 1,669,924,721; LibTorch's unpickler sized its memo
    //   table by it (26 GB). The pickle's opcodes are walked first;
    // - an entry ('version') whose directory record gives both sizes as 0xFFFFFFFF and no zip64 field; miniz
    //   skips its size checks for such an entry and LibTorch allocated 4 GiB for it;
    // - BUILD on an empty stack, which LibTorch's unpickler read before (SEGV).
    const std::pair<const char*, const char*> found[] = {
        {"pt_strides_past_storage", "strides reach past"},
        {"pt_memo_index_huge", "memo index 1669924721"},
        {"pt_zip_entry_claims_4gb", "zip64 sizes that it does not give"},
        {"pt_build_on_empty_stack", "takes more than the pickle's stack holds"},
    };
    for (const auto& [corpusName, words] : found) {
        const fs::path file = freshDir(corpusName) / "input.pt";
        ASSERT_TRUE(writeFuzzInput(corpusName, file)) << corpusName;
        EXPECT_TRUE(failsWith(loadInputs(at(file)), {file.string(), words})) << corpusName;
    }

    const fs::path dir = freshDir("pt_damaged");
    const fs::path good = dir / "good.pt";
    ASSERT_TRUE(torchSave("torch.arange(6.).reshape(2,3)", good))
        << "/usr/bin/python3 with torch could not save " << good << " (install python3-torch)";
    std::ifstream in(good, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 200u);
    const fs::path cut = dir / "cut.pt";
    int loaded = 0, refused = 0;
    auto check = [&](const std::string& content, const std::string& what) {
        writeBytes(cut, content);
        auto r = loadInputs(at(cut));
        if (r) {
            ++loaded;
            return;
        }
        ++refused;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << what << ": " << r.error().message;
        EXPECT_NE(r.error().message.find(cut.string()), std::string::npos) << what;
    };
    for (size_t n = 0; n < bytes.size(); n += 7)
        check(bytes.substr(0, n), "cut at " + std::to_string(n));
    for (size_t i = bytes.size() - 64; i < bytes.size(); ++i)
        for (unsigned char v : {0x00, 0x7f, 0xff}) {
            std::string b = bytes;
            b[i] = static_cast<char>(v);
            check(b, "byte " + std::to_string(i) + " = " + std::to_string(v));
        }
    EXPECT_GT(refused, 0);
    check(bytes, "intact");
    EXPECT_GT(loaded, 0); // the intact file, at least
}

// The archive LibTorch reads is the .pt file's zip laid out again (PtArchive). Python's zipfile, an independent
// reader, must see the same entries in both (names, sizes, CRCs, contents, and CRCs that verify), and Python's
// torch.load the same tensors. Archives torch.save never writes are refused in one line: compressed entries,
// entries that share bytes.
TEST(PtInput, TheRelaidArchiveHoldsWhatPythonsZipfileReadsInTheOriginal) {
    const fs::path dir = freshDir("pt_relaid");
    const fs::path original = dir / "original.pt", relaid = dir / "relaid.pt";
    ASSERT_TRUE(torchSave("{'a': torch.arange(24.).reshape(2,3,4), 'b': torch.ones(5, dtype=torch.int64)[::2]}", original))
        << "/usr/bin/python3 with torch could not save " << original << " (install python3-torch)";
    std::ifstream in(original, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    PtArchive archive;
    ASSERT_EQ(PtArchive::parse(bytes, archive), "");
    EXPECT_GE(archive.entries().size(), 4u); // data.pkl, two storages, version (and byteorder in newer torch)
    ASSERT_NE(archive.find("data.pkl"), nullptr);
    std::string laid(size_t(archive.size()), '\0');
    ASSERT_EQ(archive.read(0, laid.data(), laid.size()), laid.size());
    // Reads that start and end anywhere give the same bytes as one read of everything.
    for (uint64_t pos = 0; pos < archive.size(); pos += 37) {
        char piece[101];
        const size_t got = archive.read(pos, piece, sizeof piece);
        ASSERT_EQ(got, std::min<size_t>(sizeof piece, size_t(archive.size() - pos)));
        ASSERT_EQ(std::string(piece, got), laid.substr(size_t(pos), got)) << pos;
    }
    EXPECT_EQ(archive.read(archive.size(), laid.data(), 1), 0u);
    writeBytes(relaid, laid);
    const fs::path script = dir / "compare.py";
    writeBytes(script, "import sys, zipfile, hashlib, torch\n"
                       "def listing(p):\n"
                       "    z = zipfile.ZipFile(p)\n"
                       "    assert z.testzip() is None, p\n"
                       "    return [(i.filename, i.file_size, i.CRC, hashlib.sha256(z.read(i)).hexdigest()) for i in z.infolist()]\n"
                       "a, b = listing(sys.argv[1]), listing(sys.argv[2])\n"
                       "assert a == b, (a, b)\n"
                       "x, y = torch.load(sys.argv[1]), torch.load(sys.argv[2])\n"
                       "assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)\n"
                       "z = zipfile.ZipFile(sys.argv[1])\n"
                       "with zipfile.ZipFile(sys.argv[3], 'w', zipfile.ZIP_DEFLATED) as out:\n"
                       "    for i in z.infolist(): out.writestr(i.filename, z.read(i))\n"
                       "print(len(a), 'entries')\n");
    const fs::path deflated = dir / "deflated.pt";
    const std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + original.string() + "' '" +
                            relaid.string() + "' '" + deflated.string() + "' > '" + dir.string() + "/compare.log' 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << readAll(dir / "compare.log");
    // LibTorch reads the original through the re-laid archive.
    auto loaded = loadInputs(at(original));
    EXPECT_TRUE(failsWith(loaded, {original.string(), "holds a dict"}));
    ASSERT_TRUE(torchSave("torch.arange(6.).reshape(2,3)", original));
    auto tensor = loadInputs(at(original));
    ASSERT_TRUE(tensor) << tensor.error().message;
    EXPECT_TRUE(torch::equal(tensor->inputs, torch::arange(6.).reshape({2, 3}).to(torch::kFloat32)));

    EXPECT_TRUE(failsWith(loadInputs(at(deflated)), {deflated.string(), "compressed entry", "method 8"}));
    // Two directory records pointing at the same bytes: the second entry's header offset made the first's.
    PtArchive again;
    ASSERT_EQ(PtArchive::parse(bytes, again), "");
    std::vector<char> shared = bytes;
    const std::string sig("PK\x01\x02", 4);
    std::vector<size_t> records;
    for (size_t i = 0; i + 46 <= shared.size(); ++i)
        if (std::memcmp(shared.data() + i, sig.data(), 4) == 0) records.push_back(i);
    ASSERT_GE(records.size(), 2u);
    std::memcpy(shared.data() + records[1] + 42, shared.data() + records[0] + 42, 4);
    // Also the sizes, so that the second entry is well formed on its own.
    std::memcpy(shared.data() + records[1] + 20, shared.data() + records[0] + 20, 8);
    PtArchive sharing;
    const std::string verdict = PtArchive::parse(shared, sharing);
    EXPECT_NE(verdict.find("share bytes"), std::string::npos) << verdict;
    // LibTorch looks records up in the first entry's folder, without regard to case: an entry outside that
    // folder, or two names that match alike, would let it read a record other than the one checked here.
    // The entry whose name ends in `suffix` renamed by `rename` (same length), then parsed.
    auto renamed = [&](const std::string& suffix, const std::function<void(std::string&)>& rename) {
        std::vector<char> b = bytes;
        for (size_t at : records) {
            const size_t len = size_t(static_cast<unsigned char>(b[at + 28])) | size_t(static_cast<unsigned char>(b[at + 29])) << 8;
            std::string name(b.data() + at + 46, len);
            if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
                rename(name);
                std::memcpy(b.data() + at + 46, name.data(), len);
                PtArchive a;
                return PtArchive::parse(b, a);
            }
        }
        return std::string("no entry ends in ") + suffix;
    };
    const std::string outside = renamed("data.pkl", [](std::string& n) { n[0] = n[0] == 'z' ? 'y' : 'z'; });
    EXPECT_NE(outside.find("outside the folder"), std::string::npos) << outside;
    const std::string twice = renamed("data/1", [](std::string& n) { n.replace(n.size() - 6, 6, "DATA/0"); });
    EXPECT_NE(twice.find("two entries are named"), std::string::npos) << twice;
    ASSERT_NE(archive.find("DATA.PKL"), nullptr); // the folder's record, matched as miniz matches it
    EXPECT_EQ(archive.find("DATA.PKL"), archive.find("data.pkl"));
    EXPECT_EQ(archive.find("archive/data.pkl"), nullptr); // names are inside the folder
}

} // namespace
} // namespace ts::capture
