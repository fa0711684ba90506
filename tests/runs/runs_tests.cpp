// The run store: round trip of everything a snapshot holds, time pyramids against a brute-force reference,
// a reader following a growing run, killed writers (SIGKILL at random moments), and malformed runs.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <hdf5.h>

#include "engine/runs/run_store.hpp"

namespace fs = std::filesystem;
using namespace ts::runs;

namespace {

fs::path freshDir(const std::string& name) {
    fs::path d = fs::temp_directory_path() / ("ts_runs_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(d);
    return d;
}

std::vector<RunLayer> testLayers() {
    return {{"conv1", "Conv2d", {3, 4, 5}, 60, 84}, {"fc", "Linear", {7}, 7, 0}};
}

// The statistics of snapshot `s`, layer `l`, statistic `k`, neuron `i`: a pattern with NaN holes. Stored in
// the reducer's layout (stride 64 >= neurons) to exercise strided rows.
float value(int64_t s, size_t l, int k, int64_t i, bool grad) {
    if ((s * 7 + i) % 23 == 5) return NAN;
    return float(std::sin(0.37 * double(s) + 0.11 * double(i) + double(k) + 3.0 * double(l))) * (grad ? 0.5f : 2.0f);
}

struct Filled {
    std::vector<std::vector<float>> act, grad;
    std::vector<LayerRecord> records;
};

Filled snapshot(int64_t s, const std::vector<RunLayer>& layers) {
    Filled f;
    for (size_t l = 0; l < layers.size(); ++l) {
        const int64_t stride = 64;
        f.act.emplace_back(size_t(kNeuronStats * stride), -1.0f);
        f.grad.emplace_back(size_t(kNeuronStats * stride), -1.0f);
        for (int k = 0; k < kNeuronStats; ++k)
            for (int64_t i = 0; i < layers[l].neurons; ++i) {
                f.act[l][size_t(k * stride + i)] = value(s, l, k, i, false);
                f.grad[l][size_t(k * stride + i)] = value(s, l, k, i, true);
            }
    }
    for (size_t l = 0; l < layers.size(); ++l) {
        LayerRecord r;
        r.activation = f.act[l].data();
        r.activationStride = 64;
        r.gradient = l == 0 ? f.grad[l].data() : nullptr; // layer 1: no gradient reached it
        r.gradientStride = 64;
        r.rows = 32 + s;
        if (layers[l].params > 0) {
            for (int k = 0; k < kLayerStats; ++k)
                r.weight.v[size_t(k)] = double(s) + 0.25 * k;
            r.weightHist.counts = {uint64_t(s), 2, 3, 4};
            r.weightHist.lo = -1.0 - double(s);
            r.weightHist.hi = 1.0;
        }
        f.records.push_back(r);
    }
    return f;
}

std::unique_ptr<RunWriter> makeWriter(const fs::path& dir) {
    WriterOptions o;
    o.dir = dir.string();
    o.info.model = "test \"model\"";
    o.info.writer = "cpp";
    o.info.every = 3;
    o.info.histogramBins = 4;
    o.info.inputShape = {3, 8, 8};
    auto w = RunWriter::create(o);
    EXPECT_TRUE(w) << (w ? "" : w.error().message);
    auto s = (*w)->begin(testLayers(), {"loss", "accuracy"});
    EXPECT_TRUE(s) << s.message();
    return std::move(w.value());
}

// min/max/mean of the finite values of statistic `k` over snapshots [a, b), as the pyramid defines them
// (a mean of equal halves, NaN halves skipped).
float pyramidMean(int64_t a, int64_t b, size_t l, int k, int64_t i, bool grad) {
    if (b - a == 1) return value(a, l, k, i, grad);
    const int64_t mid = (a + b) / 2;
    const float x = pyramidMean(a, mid, l, k, i, grad), y = pyramidMean(mid, b, l, k, i, grad);
    return std::isnan(x) ? y : std::isnan(y) ? x : 0.5f * (x + y);
}

} // namespace

TEST(RunStore, RoundTripOfSnapshotsScalarsAndParameters) {
    const fs::path dir = freshDir("roundtrip");
    const auto layers = testLayers();
    {
        auto w = makeWriter(dir);
        for (int64_t s = 0; s < 37; ++s) {
            auto f = snapshot(s, layers);
            ASSERT_TRUE(w->appendSnapshot(s * 3, f.records));
            ASSERT_TRUE(w->appendScalars(s * 3, {{"loss", 1.0 / double(s + 1)}, {"accuracy", 0.01 * double(s)}}));
            ASSERT_TRUE(w->appendScalars(s * 3 + 1, {{"loss", 2.0}}));
        }
        ASSERT_TRUE(w->close());
    }
    auto r = RunReader::open(dir.string());
    ASSERT_TRUE(r) << r.error().message;
    RunReader& rd = **r;
    EXPECT_TRUE(rd.closed());
    EXPECT_EQ(rd.info().model, "test \"model\"");
    EXPECT_EQ(rd.info().every, 3);
    EXPECT_EQ(rd.info().inputShape, (std::vector<int64_t>{3, 8, 8}));
    ASSERT_EQ(rd.layers().size(), 2u);
    EXPECT_EQ(rd.layers()[0].name, "conv1");
    EXPECT_EQ(rd.layers()[0].type, "Conv2d");
    EXPECT_EQ(rd.layers()[0].shape, (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(rd.layers()[0].params, 84);
    ASSERT_EQ(rd.snapshots(), 37);
    for (int64_t s = 0; s < 37; ++s)
        EXPECT_EQ(rd.steps()[size_t(s)], s * 3);
    for (int64_t s : {0, 17, 36})
        for (size_t l = 0; l < layers.size(); ++l) {
            auto a = rd.neuronStats(int(l), s, Kind::Activation);
            auto g = rd.neuronStats(int(l), s, Kind::Gradient);
            ASSERT_TRUE(a && g);
            const int64_t n = layers[l].neurons;
            ASSERT_EQ(a->size(), size_t(kNeuronStats * n));
            for (int k = 0; k < kNeuronStats; ++k)
                for (int64_t i = 0; i < n; ++i) {
                    const float want = value(s, l, k, i, false), got = (*a)[size_t(k * n + i)];
                    if (std::isnan(want)) EXPECT_TRUE(std::isnan(got));
                    else EXPECT_EQ(got, want) << "s " << s << " l " << l << " k " << k << " i " << i;
                    const float g0 = (*g)[size_t(k * n + i)];
                    if (l == 1) EXPECT_TRUE(std::isnan(g0)) << "no gradient is stored as NaN";
                }
            EXPECT_EQ(rd.rows(int(l), s), 32 + s);
        }
    auto ps = rd.paramStats(0, 17, false);
    ASSERT_TRUE(ps);
    EXPECT_DOUBLE_EQ(ps->v[2], 17.5);
    auto none = rd.paramStats(1, 17, false);
    ASSERT_TRUE(none);
    EXPECT_TRUE(std::isnan(none->mean())) << "a layer without parameters stores NaN";
    auto hist = rd.paramHistogram(0, 17, false);
    ASSERT_TRUE(hist);
    EXPECT_EQ(hist->counts, (std::vector<uint64_t>{17, 2, 3, 4}));
    EXPECT_DOUBLE_EQ(hist->lo, -18.0);
    auto sc = rd.scalars();
    ASSERT_TRUE(sc);
    ASSERT_EQ(sc->steps.size(), 74u);
    const auto* loss = sc->find("loss");
    const auto* acc = sc->find("accuracy");
    ASSERT_TRUE(loss && acc);
    EXPECT_DOUBLE_EQ((*loss)[2], 0.5);
    EXPECT_DOUBLE_EQ((*loss)[3], 2.0);
    EXPECT_TRUE(std::isnan((*acc)[3])) << "a scalar not given at a call is NaN there";
    fs::remove_all(dir);
}

TEST(RunStore, SeriesFromPyramidsMatchBruteForceWindows) {
    const fs::path dir = freshDir("pyramid");
    const auto layers = testLayers();
    const int64_t total = 203;
    {
        auto w = makeWriter(dir);
        for (int64_t s = 0; s < total; ++s)
            ASSERT_TRUE(w->appendSnapshot(s, snapshot(s, layers).records));
    }
    auto r = RunReader::open(dir.string());
    ASSERT_TRUE(r) << r.error().message;
    // Full resolution: every snapshot.
    auto full = (*r)->series(0, 11, Kind::Activation, 0, 1000);
    ASSERT_TRUE(full);
    EXPECT_EQ(full->level, 0);
    ASSERT_EQ(full->mean.size(), size_t(total));
    for (int64_t s = 0; s < total; ++s) {
        const float want = value(s, 0, 0, 11, false);
        if (!std::isnan(want)) EXPECT_EQ(full->mean[size_t(s)], want);
    }
    // At most 30 points: level 3 (203 >> 3 = 25 windows of 8 snapshots).
    for (int64_t neuron : {0, 11, 59}) {
        auto coarse = (*r)->series(0, neuron, Kind::Activation, 0, 30);
        ASSERT_TRUE(coarse);
        EXPECT_EQ(coarse->level, 3);
        ASSERT_EQ(coarse->mean.size(), 25u);
        for (size_t j = 0; j < 25; ++j) {
            float lo = INFINITY, hi = -INFINITY;
            for (int64_t s = int64_t(j) * 8; s < int64_t(j + 1) * 8; ++s) {
                const float v = value(s, 0, 0, neuron, false);
                if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
            }
            EXPECT_EQ(coarse->min[j], lo);
            EXPECT_EQ(coarse->max[j], hi);
            EXPECT_NEAR(coarse->mean[j], pyramidMean(int64_t(j) * 8, int64_t(j + 1) * 8, 0, 0, neuron, false), 1e-6);
            EXPECT_EQ(coarse->steps[j], int64_t(j) * 8);
        }
    }
    // Gradient mean |x| has its own pyramid.
    auto g = (*r)->series(0, 3, Kind::Gradient, 1, 60);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->level, 2);
    EXPECT_NEAR(g->mean[7], pyramidMean(28, 32, 0, 1, 3, true), 1e-6);
    fs::remove_all(dir);
}

TEST(RunStore, AReaderFollowsAGrowingRun) {
    const fs::path dir = freshDir("growing");
    const auto layers = testLayers();
    auto w = makeWriter(dir);
    for (int64_t s = 0; s < 4; ++s)
        ASSERT_TRUE(w->appendSnapshot(s, snapshot(s, layers).records));
    auto r = RunReader::open(dir.string());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)->snapshots(), 4);
    EXPECT_FALSE((*r)->closed());
    for (int64_t s = 4; s < 11; ++s)
        ASSERT_TRUE(w->appendSnapshot(s, snapshot(s, layers).records));
    auto n = (*r)->refresh();
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 11);
    auto a = (*r)->neuronStats(0, 10, Kind::Activation);
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)[1], value(10, 0, 0, 1, false));
    ASSERT_TRUE(w->close());
    ASSERT_TRUE((*r)->refresh());
    EXPECT_TRUE((*r)->closed());
    fs::remove_all(dir);
}

// A child writes snapshots as fast as it can and reports each committed count through a pipe; it is killed
// with SIGKILL at a random moment. Every snapshot it reported must read back exactly; at most the one in flight
// is lost.
TEST(RunStore, AWriterKilledAtRandomMomentsLosesAtMostTheSnapshotInFlight) {
    std::mt19937 rng(20261204);
    const auto layers = testLayers();
    for (int round = 0; round < 12; ++round) {
        const fs::path dir = freshDir("kill" + std::to_string(round));
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            WriterOptions o;
            o.dir = dir.string();
            o.info.histogramBins = 4;
            auto w = RunWriter::create(o);
            if (!w || !(*w)->begin(layers, {"loss"})) ::_exit(3);
            for (int64_t s = 0;; ++s) {
                if (!(*w)->appendSnapshot(s, snapshot(s, layers).records)) ::_exit(4);
                const int64_t committed = s + 1;
                if (::write(fds[1], &committed, sizeof committed) != sizeof committed) ::_exit(5);
            }
        }
        ::close(fds[1]);
        // Wait for a random number of commits (1..40), then a random extra delay inside the next write.
        const int64_t want = std::uniform_int_distribution<int64_t>(1, 40)(rng);
        int64_t reported = 0, c = 0;
        while (reported < want && ::read(fds[0], &c, sizeof c) == sizeof c)
            reported = c;
        ::usleep(useconds_t(std::uniform_int_distribution<int>(0, 3000)(rng)));
        ::kill(pid, SIGKILL);
        while (::read(fds[0], &c, sizeof c) == sizeof c)
            reported = c; // commits that happened before the kill landed
        ::close(fds[0]);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the writer exited by itself, status " << status;
        auto r = RunReader::open(dir.string());
        ASSERT_TRUE(r) << "round " << round << ": " << r.error().message;
        EXPECT_GE((*r)->snapshots(), reported) << "round " << round;
        EXPECT_LE((*r)->snapshots(), reported + 1) << "round " << round;
        EXPECT_FALSE((*r)->closed());
        const int64_t last = (*r)->snapshots() - 1;
        ASSERT_GE(last, 0);
        EXPECT_EQ((*r)->steps().back(), last);
        auto a = (*r)->neuronStats(0, last, Kind::Activation);
        ASSERT_TRUE(a) << a.error().message;
        for (int64_t i = 0; i < 60; ++i) {
            const float want0 = value(last, 0, 0, i, false);
            if (!std::isnan(want0)) EXPECT_EQ((*a)[size_t(i)], want0) << "round " << round;
        }
        auto series = (*r)->series(0, 5, Kind::Activation, 0, 4);
        EXPECT_TRUE(series) << series.error().message;
        fs::remove_all(dir);
    }
}

TEST(RunStore, MalformedRunsAreOneLineErrors) {
    const fs::path base = freshDir("bad");
    fs::create_directories(base);
    auto expectError = [](const fs::path& p, const std::string& fragment) {
        auto r = RunReader::open(p.string());
        ASSERT_FALSE(r) << p;
        EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().exitCode(), 2);
    };
    expectError(base / "missing", "no such run folder");
    fs::create_directories(base / "foreign");
    std::ofstream(base / "foreign" / "notes.txt") << "hello\n";
    expectError(base / "foreign", "not a tensorscape run");
    fs::create_directories(base / "empty");
    std::ofstream(base / "empty" / "run.h5").close();
    expectError(base / "empty", "is empty");
    fs::create_directories(base / "garbage");
    std::ofstream(base / "garbage" / "run.h5") << std::string(5000, 'x');
    expectError(base / "garbage", "not an HDF5 file");
    // Another program's HDF5 file.
    fs::create_directories(base / "other");
    {
        hid_t f = H5Fcreate((base / "other" / "run.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        H5Fclose(f);
    }
    expectError(base / "other", "not a tensorscape run");
    // A real run, cut in half.
    {
        auto w = makeWriter(base / "real");
        for (int64_t s = 0; s < 20; ++s)
            ASSERT_TRUE(w->appendSnapshot(s, snapshot(s, testLayers()).records));
    }
    fs::create_directories(base / "truncated");
    const auto size = fs::file_size(base / "real" / "run.h5");
    fs::copy_file(base / "real" / "run.h5", base / "truncated" / "run.h5");
    fs::resize_file(base / "truncated" / "run.h5", size / 2);
    expectError(base / "truncated", "truncated or damaged");
    // A newer format version.
    fs::create_directories(base / "newer");
    fs::copy_file(base / "real" / "run.h5", base / "newer" / "run.h5");
    {
        hid_t f = H5Fopen((base / "newer" / "run.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        ASSERT_GE(f, 0);
        hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
        const int64_t v = 7;
        H5Awrite(a, H5T_NATIVE_INT64, &v);
        H5Aclose(a);
        H5Fclose(f);
    }
    expectError(base / "newer", "newer tensorscape");
    // A writer refuses a folder that already holds a run.
    WriterOptions o;
    o.dir = (base / "real").string();
    auto again = RunWriter::create(o);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("already holds a run"), std::string::npos);
    fs::remove_all(base);
}
