// Data tests: the IDX reader on the real Fashion-MNIST files and on hand-made malformed files, the toy sets'
// geometry, and the --data spec parser.
#include <filesystem>
#include <fstream>
#include <numeric>

#include <zlib.h>

#include "engine/capture/dataset.hpp"
#include "engine/capture/idx.hpp"
#include "engine/capture/network.hpp"
#include "tests/capture/fixtures.hpp"

namespace ts::capture {
namespace {

namespace fs = std::filesystem;
using testing::tempDir;

const char* kFashion = "/usr/share/datasets/fashion-mnist";

// Writes bytes as they are, or gzip-compressed (independently of writeIdx).
void writeBytes(const fs::path& path, const std::vector<uint8_t>& bytes, bool gzip = false) {
    if (gzip) {
        gzFile f = gzopen(path.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        ASSERT_EQ(gzwrite(f, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
        gzclose(f);
    } else {
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    }
}

// A valid unsigned-byte IDX file, encoded by hand: magic 0x0000 08 NN, big-endian dims, data.
std::vector<uint8_t> idxBytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b = {0, 0, 0x08, uint8_t(dims.size())};
    for (uint32_t d : dims) {
        b.push_back(uint8_t(d >> 24));
        b.push_back(uint8_t(d >> 16));
        b.push_back(uint8_t(d >> 8));
        b.push_back(uint8_t(d));
    }
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

std::vector<uint8_t> ramp(size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = uint8_t((i * 37 + 11) % 251);
    return v;
}

// The error message names the file and says what is wrong.
::testing::AssertionResult failsWith(const Expected<IdxArray>& r, const fs::path& file,
                                     const std::string& what) {
    if (r.hasValue()) return ::testing::AssertionFailure() << file << " was accepted";
    const std::string& m = r.error().message;
    if (m.find(file.string()) == std::string::npos || m.find(what) == std::string::npos)
        return ::testing::AssertionFailure()
               << "message '" << m << "' lacks '" << file << "' or '" << what << "'";
    if (r.error().exitCode() != 2)
        return ::testing::AssertionFailure() << "exit code " << r.error().exitCode();
    return ::testing::AssertionSuccess();
}

TEST(Idx, FashionMnistShapesAndLabels) {
    if (!fs::is_directory(kFashion)) FAIL() << "dataset-fashion-mnist is not installed" << " (scripts/setup.sh installs it)";
    auto data = loadDataset("fashion-mnist");
    ASSERT_TRUE(data.hasValue()) << data.error().message;
    const Dataset& tr = data->train;
    const Dataset& va = data->validation;
    EXPECT_EQ(tr.inputs.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
    EXPECT_EQ(va.inputs.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
    EXPECT_EQ(tr.inputs.scalar_type(), torch::kFloat32);
    EXPECT_EQ(tr.labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(tr.sampleShape, (std::vector<int64_t>{1, 28, 28}));
    EXPECT_EQ(tr.numClasses, 10);
    EXPECT_EQ(tr.classNames.size(), 10u);
    EXPECT_EQ(tr.classNames[9], "Ankle boot");
    EXPECT_GE(tr.inputs.min().item<float>(), 0.0f);
    EXPECT_LE(tr.inputs.max().item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(tr.inputs.max().item<float>(), 1.0f); // some pixel is 255
    // Fashion-MNIST is balanced: 6000 of each class in train, 1000 in t10k.
    const auto trCounts = torch::bincount(tr.labels, {}, 10);
    const auto vaCounts = torch::bincount(va.labels, {}, 10);
    for (int c = 0; c < 10; ++c) {
        EXPECT_EQ(trCounts[c].item<int64_t>(), 6000) << "class " << c;
        EXPECT_EQ(vaCounts[c].item<int64_t>(), 1000) << "class " << c;
    }
    // The published first labels: ankle boot, T-shirt, T-shirt, dress, T-shirt (train); ankle boot, pullover
    // (t10k).
    const auto first = tr.labels.narrow(0, 0, 5);
    EXPECT_TRUE(torch::equal(first, torch::tensor({9, 0, 0, 3, 0}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(va.labels.narrow(0, 0, 2), torch::tensor({9, 2}, torch::kInt64)));

    // The raw reader agrees with the tensors: the same bytes scaled by 1/255.
    auto raw = readIdx(std::string(kFashion) + "/t10k-images-idx3-ubyte.gz", 3);
    ASSERT_TRUE(raw.hasValue()) << raw.error().message;
    EXPECT_EQ(raw->dims, (std::vector<int64_t>{10000, 28, 28}));
    for (int64_t i : {0, 400, 784 * 5000 + 391})
        EXPECT_FLOAT_EQ(va.inputs.reshape(-1)[i].item<float>(), float(raw->data[size_t(i)]) / 255.0f);

    auto limited = loadDataset(kFashion, {.limit = 100});
    ASSERT_TRUE(limited.hasValue());
    EXPECT_EQ(limited->train.size(), 100);
    EXPECT_EQ(limited->validation.size(), 100);
}

TEST(Idx, ReadsHandEncodedFilesPlainAndGzip) {
    const auto data = ramp(3 * 4 * 5);
    for (bool gz : {false, true}) {
        const fs::path p = tempDir() / (gz ? "ok.idx.gz" : "ok.idx");
        writeBytes(p, idxBytes({3, 4, 5}, data), gz);
        auto r = readIdx(p.string(), 3);
        ASSERT_TRUE(r.hasValue()) << r.error().message;
        EXPECT_EQ(r->dims, (std::vector<int64_t>{3, 4, 5}));
        EXPECT_EQ(r->data, data);
    }
    // writeIdx produces what the hand encoder produces.
    const fs::path w = tempDir() / "written.idx";
    ASSERT_TRUE(writeIdx(w.string(), {{3, 4, 5}, data}).isOk());
    std::ifstream in(w, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes, idxBytes({3, 4, 5}, data));
}

TEST(Idx, MalformedFilesGiveDocumentedErrors) {
    const auto d = tempDir();
    EXPECT_TRUE(failsWith(readIdx((d / "absent.idx").string()), d / "absent.idx", "cannot open"));

    auto wrongMagic = idxBytes({2, 2, 2}, ramp(8));
    wrongMagic[2] = 0x0D; // float32 IDX: not an unsigned-byte array
    writeBytes(d / "magic.idx", wrongMagic);
    EXPECT_TRUE(failsWith(readIdx((d / "magic.idx").string()), d / "magic.idx", "wrong magic 0x00000d03"));
    writeBytes(d / "magic2.idx", {0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4},
               false); // gzip magic in a plain-looking file
    EXPECT_TRUE(failsWith(readIdx((d / "magic2.idx").string()), d / "magic2.idx", "IDX file"));

    // Found by tests/fuzz/fuzz_idx: dimensions whose product overflows int64 (UBSan: signed overflow).
    writeBytes(d / "overflow.idx", {0x0, 0x0, 0x8, 0x3, 0x0, 0x0, 0x0, 0xff, 0x0, 0xfa, 0xff, 0xff, 0xff, 0xfc, 0xff,
                                    0xff, 0xff, 0x28, 0x0, 0x6, 0x0});
    EXPECT_TRUE(failsWith(readIdx((d / "overflow.idx").string()), d / "overflow.idx", "dimensions too large"));

    writeBytes(d / "short_header.idx", {0, 0, 0x08, 3, 0, 0});
    EXPECT_TRUE(failsWith(readIdx((d / "short_header.idx").string()), d / "short_header.idx", "truncated"));

    auto full = idxBytes({4, 3, 3}, ramp(36));
    full.resize(full.size() - 5);
    writeBytes(d / "short_data.idx", full);
    EXPECT_TRUE(failsWith(readIdx((d / "short_data.idx").string()), d / "short_data.idx",
                          "truncated: 4x3x3 needs 36 data bytes, found 31"));

    // Headers claiming far more than the file holds are refused before anything is allocated (they used to
    // zero-fill gigabytes or throw std::bad_alloc).
    writeBytes(d / "huge.idx", idxBytes({3000, 4000, 4000}, ramp(64)));
    EXPECT_TRUE(failsWith(readIdx((d / "huge.idx").string()), d / "huge.idx",
                          "truncated: 3000x4000x4000 needs 48000000000 data bytes, found 64"));
    writeBytes(d / "huge.idx.gz", idxBytes({3000, 4000, 4000}, ramp(64)), true);
    EXPECT_TRUE(failsWith(readIdx((d / "huge.idx.gz").string()), d / "huge.idx.gz", "gzip file can hold"));

    // A gzip stream cut in the middle.
    writeBytes(d / "cut.idx.gz", idxBytes({50, 20, 20}, ramp(20000)), true);
    {
        const auto size = fs::file_size(d / "cut.idx.gz");
        fs::resize_file(d / "cut.idx.gz", size / 2);
    }
    EXPECT_TRUE(failsWith(readIdx((d / "cut.idx.gz").string()), d / "cut.idx.gz", "truncated"));

    auto extra = idxBytes({2}, {1, 2});
    extra.push_back(7);
    writeBytes(d / "extra.idx", extra);
    EXPECT_TRUE(failsWith(readIdx((d / "extra.idx").string()), d / "extra.idx", "trailing data"));

    writeBytes(d / "labels_as_images.idx", idxBytes({5}, ramp(5)));
    EXPECT_TRUE(failsWith(readIdx((d / "labels_as_images.idx").string(), 3), d / "labels_as_images.idx",
                          "expects 3 dims"));

    // Count mismatch between an images file and a labels file: both are named.
    writeBytes(d / "img5.idx", idxBytes({5, 2, 2}, ramp(20)));
    writeBytes(d / "lab4.idx", idxBytes({4}, {0, 1, 2, 3}));
    auto pair = readIdxPair((d / "img5.idx").string(), (d / "lab4.idx").string());
    ASSERT_FALSE(pair.hasValue());
    EXPECT_NE(pair.error().message.find("count mismatch, 5 images but 4 labels"), std::string::npos)
        << pair.error().message;
    EXPECT_NE(pair.error().message.find((d / "lab4.idx").string()), std::string::npos);
}

TEST(Idx, FolderSpecSplitsWhenThereIsNoTestPair) {
    const auto dir = tempDir() / "idxfolder";
    fs::create_directories(dir);
    std::vector<uint8_t> labels(40);
    for (size_t i = 0; i < labels.size(); ++i)
        labels[i] = uint8_t(i % 4);
    writeBytes(dir / "train-images-idx3-ubyte.gz", idxBytes({40, 6, 5}, ramp(40 * 30)), true);
    writeBytes(dir / "train-labels-idx1-ubyte", idxBytes({40}, labels));
    auto s = loadDataset(dir.string(), {.seed = 4, .validationFraction = 0.25});
    ASSERT_TRUE(s.hasValue()) << s.error().message;
    EXPECT_EQ(s->train.inputs.sizes(), (std::vector<int64_t>{30, 1, 6, 5}));
    EXPECT_EQ(s->validation.inputs.sizes(), (std::vector<int64_t>{10, 1, 6, 5}));
    EXPECT_EQ(s->train.numClasses, 4);
    // The split is a permutation: every sample lands in exactly one part (pixel sums add up).
    const auto pixels = ramp(40 * 30);
    const double all = std::accumulate(pixels.begin(), pixels.end(), 0.0);
    EXPECT_NEAR((s->train.inputs.sum().item<double>() + s->validation.inputs.sum().item<double>()) * 255.0,
                all, 1e-2);

    fs::create_directories(tempDir() / "emptyfolder");
    auto none = loadDataset((tempDir() / "emptyfolder").string());
    ASSERT_FALSE(none.hasValue());
    EXPECT_NE(none.error().message.find("train-images-idx3-ubyte"), std::string::npos);
    auto unknown = loadDataset("moons");
    ASSERT_FALSE(unknown.hasValue());
    EXPECT_NE(unknown.error().message.find("'moons'"), std::string::npos);
    EXPECT_EQ(unknown.error().exitCode(), 2);
}

// ------------------------------------------------------------------------------------------------------------
// Toy sets.

TEST(Toy, GeometryWithoutNoise) {
    for (ToyKind k : {ToyKind::Spirals, ToyKind::Circles, ToyKind::Xor, ToyKind::Gaussians}) {
        const ToyData d = generateToy(k, {.samples = 600, .noise = 0.0, .seed = 5});
        ASSERT_EQ(d.points.size(), 1200u);
        std::vector<int> counts(size_t(d.classes), 0);
        for (size_t i = 0; i < d.labels.size(); ++i) {
            const double x = d.points[2 * i], y = d.points[2 * i + 1];
            const int64_t c = d.labels[i];
            ++counts[size_t(c)];
            const double r = std::hypot(x, y);
            switch (k) {
            case ToyKind::Circles:
                EXPECT_NEAR(r, c ? 1.0 : 0.5, 1e-6);
                break;
            case ToyKind::Xor:
                EXPECT_EQ(c, x * y > 0 ? 0 : 1);
                EXPECT_LE(std::max(std::abs(x), std::abs(y)), 1.0);
                break;
            case ToyKind::Spirals: {
                EXPECT_LE(r, 1.0 + 1e-6);
                // On arm c, the angle is 3.5 pi * r (+ pi for arm 1), modulo 2 pi.
                const double want = 3.5 * M_PI * r + (c ? M_PI : 0.0);
                const double diff = std::remainder(std::atan2(y, x) - want, 2.0 * M_PI);
                EXPECT_NEAR(diff, 0.0, 1e-4);
                break;
            }
            case ToyKind::Gaussians: {
                const double a = 2.0 * M_PI * double(c) / 3.0;
                EXPECT_NEAR(x, 0.7 * std::cos(a), 1e-6);
                EXPECT_NEAR(y, 0.7 * std::sin(a), 1e-6);
                break;
            }
            }
        }
        for (int c : counts)
            EXPECT_EQ(c, 600 / int(d.classes)) << toyKindName(k);
    }
}

TEST(Toy, SeededNoiseIsReproducibleAndScaled) {
    const ToyData a = generateToy(ToyKind::Circles, {.samples = 4000, .noise = 0.1, .seed = 7});
    const ToyData b = generateToy(ToyKind::Circles, {.samples = 4000, .noise = 0.1, .seed = 7});
    const ToyData c = generateToy(ToyKind::Circles, {.samples = 4000, .noise = 0.1, .seed = 8});
    EXPECT_EQ(a.points, b.points);
    EXPECT_NE(a.points, c.points);
    // Gaussian blobs: the per-axis spread around each centre is the noise level.
    const ToyData g = generateToy(ToyKind::Gaussians, {.samples = 30000, .noise = 0.2, .seed = 1});
    double sum = 0, sq = 0;
    int n = 0;
    for (size_t i = 0; i < g.labels.size(); ++i) {
        if (g.labels[i] != 0) continue;
        const double dx = g.points[2 * i] - 0.7;
        sum += dx;
        sq += dx * dx;
        ++n;
    }
    EXPECT_NEAR(sum / n, 0.0, 0.01);
    EXPECT_NEAR(std::sqrt(sq / n), 0.2, 0.01);
    EXPECT_EQ(parseToyKind("spirals"), ToyKind::Spirals);
    EXPECT_FALSE(parseToyKind("moons").has_value());
}

TEST(Toy, DatasetSpecSplitsAndLimits) {
    auto s = loadDataset("xor", {.samples = 1000, .seed = 3});
    ASSERT_TRUE(s.hasValue());
    EXPECT_EQ(s->train.inputs.sizes(), (std::vector<int64_t>{800, 2}));
    EXPECT_EQ(s->validation.inputs.sizes(), (std::vector<int64_t>{200, 2}));
    EXPECT_EQ(s->train.labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(s->train.numClasses, 2);
    // Same data as the generator, reordered.
    const ToyData d = generateToy(ToyKind::Xor, {.samples = 1000, .seed = 3});
    const auto all = torch::cat({s->train.inputs, s->validation.inputs}).to(torch::kFloat64);
    EXPECT_NEAR(all.sum().item<double>(), torch::tensor(d.points).to(torch::kFloat64).sum().item<double>(),
                1e-4);
    auto lim = loadDataset("xor", {.samples = 1000, .seed = 3, .limit = 50});
    ASSERT_TRUE(lim.hasValue());
    EXPECT_EQ(lim->train.size(), 50);
    EXPECT_TRUE(torch::equal(lim->train.inputs, s->train.inputs.narrow(0, 0, 50)));
}

TEST(Network, FoldAndSummary) {
    EXPECT_EQ(foldToGrid({}), (std::array<int64_t, 3>{1, 1, 1}));
    EXPECT_EQ(foldToGrid({7}), (std::array<int64_t, 3>{1, 1, 7}));
    EXPECT_EQ(foldToGrid({3, 5}), (std::array<int64_t, 3>{3, 1, 5}));
    EXPECT_EQ(foldToGrid({2, 3, 4, 5}), (std::array<int64_t, 3>{6, 4, 5}));
    Network n;
    n.modelName = "m";
    n.nodes = {{"input", "Input", "", {}, {2}, 0, 0, 2},
               {"fc", "Linear", "fc", {{2}}, {3}, 9, 15, 3},
               {"add", "add", "", {{3}, {2}}, {3}, 0, 3, 3}};
    n.edges = {{0, 1, false}, {1, 2, false}, {0, 2, true}};
    EXPECT_EQ(n.totalParams(), 9);
    EXPECT_EQ(n.totalNeurons(), 6);
    EXPECT_EQ(n.find("add"), 2);
    const std::string s = summary(n);
    EXPECT_NE(s.find("fc, input (skip)"), std::string::npos) << s;
    EXPECT_NE(s.find("total: 6 neurons, 9 parameters, 18 FLOPs"), std::string::npos) << s;
}

} // namespace
} // namespace ts::capture
