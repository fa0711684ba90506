// Core: thread pool coverage, colormap endpoints against matplotlib's published values, PNG round trip.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <cmath>
#include <filesystem>
#include <gtest/gtest.h>
#include <numeric>

#include "engine/core/colormap.hpp"
#include "engine/core/error.hpp"
#include "engine/core/h5_check.hpp"
#include "engine/core/image.hpp"
#include "engine/core/thread_pool.hpp"
#include "engine/core/video.hpp"

using namespace ts;

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
    ThreadPool pool(3);
    for (size_t n : {1u, 7u, 1000u, 100003u}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallelFor(n, 16, [&](size_t b, size_t e, unsigned w) {
            EXPECT_LT(w, pool.workerCount());
            for (size_t i = b; i < e; ++i)
                hits[i]++;
        });
        for (size_t i = 0; i < n; ++i)
            ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    }
}

TEST(ThreadPool, NestedCallsRunSerially) {
    ThreadPool pool(2);
    std::atomic<long> sum{0};
    pool.parallelFor(8, 1, [&](size_t b, size_t e, unsigned) {
        for (size_t i = b; i < e; ++i)
            pool.parallelFor(10, 1, [&](size_t b2, size_t e2, unsigned) {
                for (size_t j = b2; j < e2; ++j)
                    sum += static_cast<long>(i * 10 + j);
            });
    });
    EXPECT_EQ(sum.load(), 79 * 80 / 2);
}

TEST(Colormap, EndpointsMatchMatplotlib) {
    // viridis(0) = #440154, viridis(1) = #fde725 (matplotlib's _cm_listed.py).
    auto v0 = sampleColormap(Colormap::Viridis, 0.0f), v1 = sampleColormap(Colormap::Viridis, 1.0f);
    EXPECT_EQ(v0.r, 0x44);
    EXPECT_EQ(v0.g, 0x01);
    EXPECT_EQ(v0.b, 0x54);
    EXPECT_EQ(v1.r, 0xfd);
    EXPECT_EQ(v1.g, 0xe7);
    EXPECT_EQ(v1.b, 0x25);
    // Diverging blue-white-red: blue low end, near-white middle, red high end.
    auto d0 = sampleColormap(Colormap::RdBu, 0.0f), dm = sampleColormap(Colormap::RdBu, 0.5f),
         d1 = sampleColormap(Colormap::RdBu, 1.0f);
    EXPECT_GT(d0.b, 2 * d0.r);
    EXPECT_GT(d1.r, 2 * d1.b);
    EXPECT_GT(dm.r, 240);
    EXPECT_GT(dm.g, 240);
    EXPECT_GT(dm.b, 240);
    // Clamping and NaN.
    auto lo = sampleColormap(Colormap::Magma, -3.0f), nan = sampleColormap(Colormap::Magma, NAN);
    EXPECT_EQ(lo.r, nan.r);
    EXPECT_EQ(colormapFromName("viridis"), Colormap::Viridis);
    EXPECT_FALSE(colormapFromName("jet").has_value());
}

TEST(Colormap, ViridisLuminanceIsMonotonic) {
    float prev = -1;
    for (int i = 0; i < 256; ++i) {
        auto c = sampleColormap(Colormap::Viridis, i / 255.0f);
        float y = 0.2126f * c.r + 0.7152f * c.g + 0.0722f * c.b;
        EXPECT_GE(y, prev - 1.0f) << i;
        prev = y;
    }
}

TEST(Image, PngRoundTrip) {
    ImageRgba8 img(5, 3);
    for (size_t i = 0; i < img.pixels.size(); ++i)
        img.pixels[i] = static_cast<uint8_t>(i * 37 + 11);
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 5; ++x)
            img.at(x, y)[3] = 255;
    auto path = std::filesystem::temp_directory_path() / "ts_core_roundtrip.png";
    ASSERT_TRUE(writePng(path.string(), img).isOk());
    auto back = readPng(path.string());
    ASSERT_TRUE(back.hasValue()) << back.error().message;
    EXPECT_EQ(back->width, 5);
    EXPECT_EQ(back->pixels, img.pixels);
}

TEST(Image, MissingFileIsAnError) {
    auto r = readPng("/nonexistent/x.png");
    ASSERT_FALSE(r.hasValue());
    EXPECT_NE(r.error().message.find("/nonexistent/x.png"), std::string::npos);
    EXPECT_EQ(r.error().exitCode(), 2);
}

// VideoWriter: 40 frames (20 red, 20 blue) decoded again by ffmpeg give 40 frames of those colours; bad sizes,
// folders, a missing ffmpeg and a device node as the target are one-line errors that leave nothing behind;
// a writer dropped without close() leaves no file.
TEST(Video, FramesRoundTripThroughFfmpegAndErrorsLeaveNothing) {
    const auto dir = std::filesystem::temp_directory_path() / ("ts_video_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto path = (dir / "clip.mp4").string();
    auto w = ts::VideoWriter::open(path, 64, 48, 20);
    ASSERT_TRUE(w) << w.error().message;
    for (int f = 0; f < 40; ++f) {
        ts::ImageRgba8 img(64, 48);
        ts::fillRect(img, 0, 0, 64, 48, f < 20 ? ts::Rgb8{200, 30, 30} : ts::Rgb8{30, 60, 200});
        ASSERT_TRUE((*w)->write(img).isOk());
    }
    EXPECT_FALSE(std::filesystem::exists(path)) << "not in place before close()";
    ASSERT_TRUE((*w)->close().isOk());
    ASSERT_TRUE(std::filesystem::exists(path));
    const auto raw = (dir / "clip.rgb").string();
    ASSERT_EQ(std::system(("ffmpeg -v error -i " + path + " -f rawvideo -pix_fmt rgb24 " + raw).c_str()), 0);
    ASSERT_EQ(std::filesystem::file_size(raw), 40u * 64 * 48 * 3);
    std::ifstream in(raw, std::ios::binary);
    std::vector<unsigned char> bytes(std::istreambuf_iterator<char>(in), {});
    auto pixel = [&](int frame, int x, int y, int c) { return int(bytes[((size_t(frame) * 48 + y) * 64 + x) * 3 + c]); };
    EXPECT_NEAR(pixel(5, 32, 24, 0), 200, 12);
    EXPECT_NEAR(pixel(5, 32, 24, 2), 30, 12);
    EXPECT_NEAR(pixel(30, 32, 24, 0), 30, 12);
    EXPECT_NEAR(pixel(30, 32, 24, 2), 200, 12);
    for (auto& e : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << "temporary file left: " << e.path();

    EXPECT_FALSE(ts::VideoWriter::open((dir / "odd.mp4").string(), 65, 48, 20));
    EXPECT_FALSE(ts::VideoWriter::open((dir / "no_such_folder" / "x.mp4").string(), 64, 48, 20));
    auto device = ts::VideoWriter::open("/dev/null", 64, 48, 20);
    ASSERT_FALSE(device);
    EXPECT_NE(device.error().message.find("not a regular file"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
    {
        const std::string oldPath = std::getenv("PATH") ? std::getenv("PATH") : "";
        setenv("PATH", dir.c_str(), 1);
        auto none = ts::VideoWriter::open((dir / "none.mp4").string(), 64, 48, 20);
        setenv("PATH", oldPath.c_str(), 1);
        ASSERT_FALSE(none);
        EXPECT_NE(none.error().message.find("ffmpeg not found"), std::string::npos);
    }
    {
        auto dropped = ts::VideoWriter::open((dir / "dropped.mp4").string(), 64, 48, 20);
        ASSERT_TRUE(dropped);
        ts::ImageRgba8 img(64, 48);
        ASSERT_TRUE((*dropped)->write(img).isOk());
    }
    EXPECT_FALSE(std::filesystem::exists(dir / "dropped.mp4"));
    std::size_t files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir))
        files += e.path().filename().string().rfind(".dropped", 0) == 0;
    EXPECT_EQ(files, 0u) << "the temporary file of a dropped recording is removed";
    std::filesystem::remove_all(dir);
}

// ---- The HDF5 checker's verdicts, with stand-in checkers (shell scripts) so that each outcome is certain:
// finished, crashed, hung, failed, missing. The real checker on a real damaged file: landscape_mesh_tests.
namespace {
struct EnvVar {
    std::string name;
    std::string old;
    bool had;
    EnvVar(const char* n, const std::string& v) : name(n) {
        const char* o = std::getenv(n);
        had = o != nullptr;
        if (had) old = o;
        ::setenv(n, v.c_str(), 1);
    }
    ~EnvVar() { had ? (void)::setenv(name.c_str(), old.c_str(), 1) : (void)::unsetenv(name.c_str()); }
};

std::string script(const std::string& name, const std::string& body) {
    const auto dir = std::filesystem::temp_directory_path() / ("ts_core_h5check_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto p = dir / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    return p.string();
}
} // namespace

TEST(H5Check, VerdictsOfTheCheckingProcess) {
    const std::string file = "/some/where/run.h5";
    {
        EnvVar c("TS_H5CHECK", script("ok.sh", "test \"$1\" = /some/where/run.h5 || exit 9\nexit 0"));
        EXPECT_TRUE(h5::checkUntrustedFile(file, "run store " + file).isOk());
    }
    {
        EnvVar c("TS_H5CHECK", script("crash.sh", "kill -SEGV $$"));
        auto s = h5::checkUntrustedFile(file, "run store " + file);
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().message, "run store /some/where/run.h5: is damaged: the HDF5 library crashed reading its "
                                     "structure (SIGSEGV, in a separate checking process)");
        EXPECT_EQ(s.error().exitCode(), 2);
    }
    {
        EnvVar c("TS_H5CHECK", script("hang.sh", "exec sleep 60"));
        EnvVar t("TS_H5CHECK_TIMEOUT_S", "0.5");
        const auto t0 = std::chrono::steady_clock::now();
        auto s = h5::checkUntrustedFile(file, file);
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        ASSERT_FALSE(s);
        EXPECT_NE(s.error().message.find("did not finish reading its structure"), std::string::npos)
            << s.error().message;
        EXPECT_LT(took, 30.0); // stopped, not waited out
    }
    {
        EnvVar c("TS_H5CHECK", script("fail.sh", "exit 3"));
        auto s = h5::checkUntrustedFile(file, file);
        ASSERT_FALSE(s);
        EXPECT_NE(s.error().message.find("exited with 3"), std::string::npos) << s.error().message;
    }
    {
        EnvVar c("TS_H5CHECK", "/nonexistent/tensorscape-h5check");
        auto s = h5::checkUntrustedFile(file, file);
        ASSERT_FALSE(s);
        EXPECT_NE(s.error().message.find("cannot be checked"), std::string::npos) << s.error().message;
        EXPECT_EQ(s.error().message.find('\n'), std::string::npos);
    }
    // Without TS_H5CHECK the build's own checker is found.
    EXPECT_FALSE(h5::checkerPath().empty());
}
