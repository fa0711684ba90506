// CUDA statistics backend against the CPU backend (the specification), launcher error reporting, and
// CUDA-Vulkan sharing end to end. Label `gpu`: without a usable CUDA device the program exits 77 (ctest:
// skipped).
#include <cstdlib>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vulkan/vulkan.h>

#include "engine/stats/cpu_reducer.hpp"
#include "engine/stats/reducer.hpp"
#include "kernels/interop.hpp"
#include "kernels/runtime.hpp"
#include "kernels/stats_kernels.hpp"
#include "tests/kernels/gpu_test_util.hpp"
#include "tests/stats/stats_test_util.hpp"

using namespace ts;
using namespace ts::stats;
using ts::stats::testing::makeData;
using ts::gputest::expectSame;

namespace {

std::unique_ptr<Reducer> cudaReducer() {
    auto r = makeReducer(Backend::Cuda);
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(r).value() : nullptr;
}

} // namespace

// Equal within tol, or both NaN.
::testing::AssertionResult sameValue(double a, double b, double tol) {
    if (std::isnan(a) && std::isnan(b)) return ::testing::AssertionSuccess();
    if (std::fabs(a - b) <= tol) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << a << " vs " << b << " (tolerance " << tol << ")";
}

TEST(CudaStats, MatchesCpuBackend) {
    auto gpu = cudaReducer();
    ASSERT_TRUE(gpu);
    CpuReducer cpu;
    std::uint32_t seed = 100;
    struct Case {
        std::int64_t b, n;
    };
    const Case cases[] = {{1, 1},     {1, 31},      {7, 32},   {64, 33},      {512, 1000},
                          {65, 1000}, {100000, 33}, {3000, 1}, {64, 1 << 20}, {1, 1 << 20}};
    for (const Case& c : cases) {
        auto x = makeData(c.b, c.n, seed++);
        x[0] = NAN;
        if (x.size() > 10) x[9] = -INFINITY;
        NeuronStats a, b;
        ReduceOptions o;
        o.topK = 5;
        auto la = gpu->reduce(TensorView::matrix(x.data(), c.b, c.n), a, o);
        auto lb = cpu.reduce(TensorView::matrix(x.data(), c.b, c.n), b, o);
        ASSERT_TRUE(la) << la.error().message;
        ASSERT_TRUE(lb);
        const std::string where = std::to_string(c.b) + " x " + std::to_string(c.n);
        expectSame(a, b, where);
        EXPECT_EQ(la->finiteCount, lb->finiteCount) << where;
        EXPECT_EQ(la->nanCount, lb->nanCount) << where;
        EXPECT_EQ(la->infCount, lb->infCount) << where;
        EXPECT_EQ(la->zeroCount, lb->zeroCount) << where;
        // A layer with no finite value (the 1 x 1 case holds only the NaN) has NaN moments on both sides.
        EXPECT_TRUE(sameValue(la->mean, lb->mean, 1e-6 * (std::fabs(lb->mean) + lb->std))) << where;
        EXPECT_TRUE(sameValue(la->std, lb->std, 1e-6 * lb->std)) << where;
        EXPECT_TRUE(sameValue(la->l2Norm, lb->l2Norm, 1e-6 * lb->l2Norm)) << where;
        EXPECT_TRUE(sameValue(la->min, lb->min, 0.0)) << where;
        EXPECT_TRUE(sameValue(la->max, lb->max, 0.0)) << where;
        ASSERT_EQ(la->top.size(), lb->top.size());
        // The same neurons in the same order (ties broken by the lower index on both), with their values.
        for (size_t k = 0; k < la->top.size(); ++k) {
            EXPECT_EQ(la->top[k].neuron, lb->top[k].neuron) << where << " rank " << k;
            EXPECT_NEAR(la->top[k].value, lb->top[k].value, 1e-5f * (1.0f + std::fabs(lb->top[k].value)))
                << where << " rank " << k;
        }
    }
}

// Same published edges and the same bin function: counts are identical, not just close.
TEST(CudaStats, HistogramIdenticalToCpu) {
    auto gpu = cudaReducer();
    ASSERT_TRUE(gpu);
    auto x = makeData(333, 4097, 7);
    x[5] = NAN;
    for (int bins : {1, 64, 9000}) // 9000: bins beyond shared memory use global atomics
        for (bool given : {true, false}) {
            ReduceOptions o;
            o.histogram.bins = bins;
            if (given) o.histogram.lo = -2.0f, o.histogram.hi = 2.5f;
            NeuronStats a, b;
            auto la = gpu->reduce(TensorView::matrix(x.data(), 333, 4097), a, o);
            auto lb = CpuReducer().reduce(TensorView::matrix(x.data(), 333, 4097), b, o);
            ASSERT_TRUE(la && lb);
            EXPECT_EQ(la->histogram.edges, lb->histogram.edges);
            EXPECT_EQ(la->histogram.counts, lb->histogram.counts) << bins << " bins";
            EXPECT_EQ(la->histogram.underflow, lb->histogram.underflow);
            EXPECT_EQ(la->histogram.overflow, lb->histogram.overflow);
        }
}

// Device input (padded rows) and a device destination: nothing crosses the bus but the layer partials.
TEST(CudaStats, DeviceInputAndDestination) {
    auto gpu = cudaReducer();
    ASSERT_TRUE(gpu);
    auto stream = kernels::Stream::create();
    ASSERT_TRUE(stream);
    const std::int64_t b = 50, n = 777, ld = 800;
    auto x = makeData(b, ld, 9);
    auto dx = kernels::DeviceBuffer::allocate(x.size() * sizeof(float));
    auto dout = kernels::DeviceBuffer::allocate(statsBytes(n));
    ASSERT_TRUE(dx && dout);
    ASSERT_TRUE(kernels::copyAsync(dx->data(), x.data(), x.size() * sizeof(float), stream->handle()));
    ASSERT_TRUE(stream->synchronize());
    TensorView v = TensorView::matrix(dx->as<float>(), b, n, "device x", MemoryKind::Device);
    v.rowStride = ld;

    struct DeviceDest final : StatsDestination {
        void* p;
        std::size_t bytes;
        std::uint64_t g = 0;
        MemoryKind memory() const override { return MemoryKind::Device; }
        float* data() override { return static_cast<float*>(p); }
        std::size_t capacityBytes() const override { return bytes; }
        Status beginWrite(StreamHandle) override { return Status::ok(); }
        Status endWrite(StreamHandle s) override {
            ++g;
            return kernels::synchronizeStream(s);
        }
        std::uint64_t generation() const override { return g; }
    } dest;
    dest.p = dout->data();
    dest.bytes = statsBytes(n);
    ASSERT_TRUE(gpu->reduce(v, dest));
    NeuronStats a;
    a.neurons = n;
    a.data.resize(statsBytes(n) / sizeof(float));
    ASSERT_TRUE(kernels::copyAsync(a.data.data(), dout->data(), statsBytes(n), stream->handle()));
    ASSERT_TRUE(stream->synchronize());
    TensorView hv = TensorView::matrix(x.data(), b, n);
    hv.rowStride = ld;
    NeuronStats c;
    ASSERT_TRUE(CpuReducer().reduce(hv, c));
    expectSame(a, c, "device");
}

TEST(CudaStats, ClustersAndNormRatioMatchCpu) {
    auto gpu = cudaReducer();
    ASSERT_TRUE(gpu);
    const std::int64_t n = 50001;
    auto values = makeData(1, n, 3);
    std::vector<std::int32_t> cluster(n);
    for (std::int64_t i = 0; i < n; ++i)
        cluster[i] = static_cast<std::int32_t>((i * 7919) % 301) - 1;
    auto a = gpu->aggregateClusters({values.data(), n}, {cluster.data(), n}, 300);
    auto b = CpuReducer().aggregateClusters({values.data(), n}, {cluster.data(), n}, 300);
    ASSERT_TRUE(a && b) << (a ? "" : a.error().message);
    EXPECT_EQ(a->count, b->count);
    EXPECT_EQ(a->maxAbs, b->maxAbs);
    for (int c = 0; c < 300; ++c)
        EXPECT_NEAR(a->mean[c], b->mean[c], 1e-6 * (std::fabs(b->mean[c]) + 1));
    cluster[123] = 300;
    auto bad = gpu->aggregateClusters({values.data(), n}, {cluster.data(), n}, 300);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("neuron 123 has cluster index 300"), std::string::npos);

    auto g = makeData(64, 1000, 1), w = makeData(64, 1000, 2);
    auto ra = gpu->normRatio(TensorView::matrix(g.data(), 64, 1000), TensorView::matrix(w.data(), 64, 1000));
    auto rb = CpuReducer().normRatio(TensorView::matrix(g.data(), 64, 1000),
                                     TensorView::matrix(w.data(), 64, 1000));
    ASSERT_TRUE(ra && rb);
    EXPECT_NEAR(*ra, *rb, 1e-12 * *rb);
}

// Errors carry the failing expression and its file and line.
TEST(CudaStats, LauncherErrorsAreReported) {
    auto huge = kernels::DeviceBuffer::allocate(std::size_t(1) << 60);
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message.find("cudaMalloc"), std::string::npos) << huge.error().message;
    EXPECT_NE(huge.error().message.find("kernels/runtime.cu:"), std::string::npos) << huge.error().message;
    kernels::NeuronStatsArgs a; // empty
    auto s = kernels::launchNeuronStats(a, nullptr);
    ASSERT_FALSE(s);
    EXPECT_NE(s.message().find("launchNeuronStats"), std::string::npos);
}

// Regression (review): a failed call left the runtime's last error set, so the next good launch reported it.
TEST(CudaStats, AFailureIsNotReportedAgainByTheNextLaunch) {
    auto huge = kernels::DeviceBuffer::allocate(std::size_t(1) << 60); // cudaErrorMemoryAllocation
    ASSERT_FALSE(huge);
    auto gpu = cudaReducer();
    ASSERT_TRUE(gpu);
    auto x = makeData(16, 40, 7);
    NeuronStats a;
    auto r = gpu->reduce(TensorView::matrix(x.data(), 16, 40), a, ReduceOptions{});
    EXPECT_TRUE(r) << r.error().message;
}

// ---- CUDA-Vulkan sharing: a Vulkan buffer on the same GPU, memory exported as an opaque fd, imported into
// CUDA, written by the CUDA reducer, read back through Vulkan's host mapping after a timeline-semaphore wait
// (the buffer: tests/kernels/gpu_test_util.hpp).
using ts::gputest::VulkanExport;

class VulkanInterop : public ::testing::TestWithParam<bool> {};

TEST_P(VulkanInterop, CudaWritesStatisticsIntoAnExportedVulkanBuffer) {
    const bool withSemaphore = GetParam();
    auto cuda = kernels::probeDevice();
    ASSERT_TRUE(cuda);
    const std::int64_t b = 64, n = 10007;
    auto x = makeData(b, n, 42);
    {
        VulkanExport vk;
        if (!vk.create(*cuda, statsBytes(n), withSemaphore)) {
            if (!vk.skipReason.empty()) GTEST_SKIP() << vk.skipReason;
            return;
        }
        ExportedVulkanBuffer e;
        e.memoryFd = vk.memoryFd();
        ASSERT_GE(e.memoryFd, 0);
        e.allocationSize = vk.allocationSize;
        e.offset = 0;
        e.size = statsBytes(n);
        e.dedicated = true;
        e.timelineSemaphoreFd = withSemaphore ? vk.semaphoreFd() : -1;
        e.hasDeviceUuid = true; // vk picked the Vulkan device with the CUDA device's UUID
        std::memcpy(e.deviceUuid, cuda->uuid, sizeof(e.deviceUuid));
        {
            auto dest = importVulkanStatsDestination(e);
            ASSERT_TRUE(dest) << dest.error().message;
            auto gpu = cudaReducer();
            ASSERT_TRUE(gpu);
            auto layer = gpu->reduce(TensorView::matrix(x.data(), b, n), **dest);
            ASSERT_TRUE(layer) << layer.error().message;
            EXPECT_EQ((*dest)->generation(), 1u);
            if (withSemaphore) { // the renderer's side of the protocol: wait for 2g + 1
                std::uint64_t value = 1;
                VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
                wi.semaphoreCount = 1;
                wi.pSemaphores = &vk.semaphore;
                wi.pValues = &value;
                ASSERT_EQ(vkWaitSemaphores(vk.device, &wi, 5'000'000'000ull), VK_SUCCESS);
            }
            void* mapped = nullptr;
            ASSERT_EQ(vkMapMemory(vk.device, vk.memory, 0, VK_WHOLE_SIZE, 0, &mapped), VK_SUCCESS);
            NeuronStats got;
            got.neurons = n;
            got.data.assign(static_cast<float*>(mapped),
                            static_cast<float*>(mapped) + statsBytes(n) / sizeof(float));
            vkUnmapMemory(vk.device, vk.memory);
            NeuronStats ref;
            ASSERT_TRUE(CpuReducer().reduce(TensorView::matrix(x.data(), b, n), ref));
            expectSame(got, ref, "vulkan buffer");
        } // teardown order: CUDA import (and reducer) before the Vulkan memory
    }
}

INSTANTIATE_TEST_SUITE_P(SemaphoreOrStreamSync, VulkanInterop, ::testing::Values(true, false));

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (::testing::GTEST_FLAG(list_tests)) return RUN_ALL_TESTS(); // ctest's test discovery needs no device
    auto device = kernels::probeDevice();
    if (!device) {
        // TS_REQUIRE_GPU=1 (set on GPU machines) turns the skip into a failure, so a first run on a GPU cannot
        // pass without running.
        const char* require = std::getenv("TS_REQUIRE_GPU");
        if (require && std::string(require) == "1") {
            std::printf("kernels_tests: TS_REQUIRE_GPU=1 but no CUDA device (%s)\n", device.error().message.c_str());
            return 1;
        }
        std::printf("kernels_tests skipped: no CUDA device (%s)\n", device.error().message.c_str());
        return 77; // ctest SKIP_RETURN_CODE
    }
    return RUN_ALL_TESTS();
}
