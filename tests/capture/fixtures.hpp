// Shared by the capture tests: the Python-made fixture folder (TorchScript models plus eager references) and
// a reader for its reference files. See make_fixtures.py for the format.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include "tests/python_fixture.hpp"

namespace ts::capture::testing {

inline std::filesystem::path sourceDir() {
    const char* env = std::getenv("TS_SOURCE_DIR");
    return env ? env : TS_SOURCE_DIR;
}

// A per-process temp folder, removed at exit.
inline const std::filesystem::path& tempDir() {
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("ts_capture_tests_" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                            ("ts_capture_tests_" + std::to_string(::getpid())),
                                        ec);
        });
        return d;
    }();
    return dir;
}

// make_fixtures.py's folder, made once for all test processes (tests/python_fixture.hpp); empty when the
// script failed, with its output in fixtureLog().
inline std::string& fixtureLog() {
    static std::string log;
    return log;
}
inline std::filesystem::path fixtureDir() {
    static const std::filesystem::path dir = [] {
        auto f = ::ts::testing::pythonFixture("capture", sourceDir() / "tests" / "capture" / "make_fixtures.py");
        fixtureLog() = f.log;
        return f.dir;
    }();
    return dir;
}

// scripts/setup.sh installs python3-torch, so a fixture that cannot be made is a failure, never a skip.
#define TS_REQUIRE_FIXTURES()                                                                                \
    ASSERT_FALSE(::ts::capture::testing::fixtureDir().empty())                                              \
        << "make_fixtures.py failed (/usr/bin/python3 with python3-torch):\n"                               \
        << ::ts::capture::testing::fixtureLog()

struct Reference {
    struct Record {
        std::string kind, name;
        torch::Tensor value;
    };
    std::vector<Record> records;

    static Reference load(const std::string& model) { return loadFrom(fixtureDir() / model); }
    // BASE.ref.txt + BASE.ref.bin (make_fixtures.py's format, also make_zoo.py's).
    static Reference loadFrom(const std::filesystem::path& base) {
        Reference r;
        std::ifstream txt(base.string() + ".ref.txt");
        std::ifstream bin(base.string() + ".ref.bin", std::ios::binary);
        std::string line;
        while (std::getline(txt, line)) {
            std::istringstream in(line);
            Record rec;
            int ndim = 0;
            in >> rec.kind >> rec.name >> ndim;
            std::vector<int64_t> dims(ndim);
            for (auto& d : dims)
                in >> d;
            rec.value = torch::empty(dims, torch::kFloat32);
            bin.read(reinterpret_cast<char*>(rec.value.data_ptr<float>()),
                     static_cast<std::streamsize>(rec.value.numel() * sizeof(float)));
            r.records.push_back(std::move(rec));
        }
        return r;
    }

    torch::Tensor get(const std::string& kind, const std::string& name) const {
        for (const auto& r : records)
            if (r.kind == kind && r.name == name) return r.value;
        return {};
    }
    std::vector<std::string> names(const std::string& kind) const {
        std::vector<std::string> out;
        for (const auto& r : records)
            if (r.kind == kind) out.push_back(r.name);
        return out;
    }
};

// allclose with a message naming what differs and by how much.
inline ::testing::AssertionResult close(const torch::Tensor& got, const torch::Tensor& want,
                                        const std::string& what, double rtol = 1e-4, double atol = 1e-5) {
    if (!got.defined()) return ::testing::AssertionFailure() << what << ": not captured";
    const auto g = got.detach().to(torch::kFloat64).reshape(-1);
    const auto w = want.detach().to(torch::kFloat64).reshape(-1);
    if (g.numel() != w.numel())
        return ::testing::AssertionFailure()
               << what << ": " << g.numel() << " elements, expected " << w.numel();
    if (!torch::allclose(g, w, rtol, atol))
        return ::testing::AssertionFailure() << what << ": max |diff| " << (g - w).abs().max().item<double>()
                                             << " (max |want| " << w.abs().max().item<double>() << ")";
    return ::testing::AssertionSuccess();
}

} // namespace ts::capture::testing
