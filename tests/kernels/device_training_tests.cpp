// Training on the CUDA device end to end (label gpu): builtin:cnn trains on the device for 100 steps with a
// snapshot every step; every layer's activations and gradients are reduced where they live by the CUDA reducer
// (ordered after LibTorch's stream, no host copy) into a Vulkan buffer exported to CUDA, and the buffer's
// contents are compared with a CPU reduction of the same snapshot, copied to the host only here. Exit code 77
// (skipped) without a CUDA LibTorch, a device or a Vulkan device with its UUID; TS_REQUIRE_GPU=1 makes that a
// failure.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "engine/capture/dataset.hpp"
#include "engine/capture/model.hpp"
#include "engine/capture/trainer.hpp"
#include "engine/stats/cpu_reducer.hpp"
#include "engine/stats/reducer.hpp"
#include "kernels/runtime.hpp"
#include "tests/kernels/gpu_test_util.hpp"

using namespace ts;
using namespace ts::stats;

namespace {

// Why this binary cannot run here, or "".
std::string missing() {
    const capture::CudaAvailability torchCuda = capture::libtorchCuda();
    if (!torchCuda.compiled) return "this LibTorch is a CPU-only build";
    if (torchCuda.devices == 0) return "LibTorch sees no CUDA device";
    auto device = kernels::probeDevice();
    if (!device) return "the statistics kernels cannot run: " + device.error().message;
    return {};
}

} // namespace

TEST(DeviceTraining, CnnTrainedOnTheDeviceIsReducedThereIntoAVulkanBufferThatMatchesTheCpu) {
    auto cuda = kernels::probeDevice();
    ASSERT_TRUE(cuda) << cuda.error().message;
    torch::manual_seed(1);
    capture::DataOptions dopt;
    dopt.limit = 1024;
    auto data = capture::loadDataset("fashion-mnist", dopt);
    ASSERT_TRUE(data) << data.error().message;
    auto model = capture::loadModel("builtin:cnn", data->train.sampleShape, 10);
    ASSERT_TRUE(model) << model.error().message;
    capture::TrainOptions o;
    o.device = torch::Device(torch::kCUDA, c10::DeviceIndex(cuda->index));
    o.maxSteps = 100;
    o.captureEvery = 1;
    o.batchSize = 64;
    auto trainer = capture::Trainer::create(**model, std::move(data).value(), o);
    ASSERT_TRUE(trainer) << trainer.error().message;
    EXPECT_TRUE((*model)->device().is_cuda());
    auto gpu = makeReducer(Backend::Cuda, cuda->index);
    ASSERT_TRUE(gpu) << gpu.error().message;

    // One exported buffer, sized for the largest layer (the first conv: 8 x 28 x 28 neurons).
    const std::int64_t maxNeurons = 8 * 28 * 28;
    gputest::VulkanExport vk;
    if (!vk.create(*cuda, statsBytes(maxNeurons), false)) GTEST_SKIP() << vk.skipReason;
    ExportedVulkanBuffer e;
    e.memoryFd = vk.memoryFd();
    ASSERT_GE(e.memoryFd, 0);
    e.allocationSize = vk.allocationSize;
    e.size = statsBytes(maxNeurons);
    e.dedicated = true;
    e.hasDeviceUuid = true;
    std::memcpy(e.deviceUuid, cuda->uuid, sizeof(e.deviceUuid));
    auto dest = importVulkanStatsDestination(e);
    ASSERT_TRUE(dest) << dest.error().message;
    void* mapped = nullptr;
    ASSERT_EQ(vkMapMemory(vk.device, vk.memory, 0, VK_WHOLE_SIZE, 0, &mapped), VK_SUCCESS);

    int snapshots = 0, reduced = 0;
    CpuReducer cpu;
    (*trainer)->setSnapshotConsumer([&](capture::Snapshot& s) {
        ++snapshots;
        EXPECT_TRUE(s.labels.device().is_cpu());
        for (const auto& l : s.layers)
            for (const torch::Tensor* t : {&l.activation, &l.gradient}) {
                if (!t->defined() || ::testing::Test::HasFailure()) continue;
                ASSERT_TRUE(t->is_cuda()) << l.name << " was copied off the device";
                const std::int64_t rows = t->size(0), cols = t->numel() / rows;
                ASSERT_LE(cols, maxNeurons) << l.name;
                TensorView v = TensorView::matrix(t->data_ptr<float>(), rows, cols, l.name.c_str(), MemoryKind::Device);
                v.producer = capture::producerStream(t->device());
                auto layer = (*gpu)->reduce(v, **dest);
                ASSERT_TRUE(layer) << layer.error().message;
                NeuronStats got; // endWrite without a semaphore synchronised the stream: the buffer is complete
                got.neurons = cols;
                got.data.assign(static_cast<float*>(mapped), static_cast<float*>(mapped) + statsBytes(cols) / sizeof(float));
                const torch::Tensor host = t->to(torch::kCPU);
                NeuronStats ref;
                auto refLayer = cpu.reduce(TensorView::matrix(host.data_ptr<float>(), rows, cols), ref);
                ASSERT_TRUE(refLayer);
                gputest::expectSame(got, ref, "step " + std::to_string(s.step) + " " + l.name);
                EXPECT_EQ(layer->finiteCount, refLayer->finiteCount);
                ++reduced;
            }
    });
    for (int i = 0; i < 100 && !::testing::Test::HasFailure(); ++i) {
        auto step = (*trainer)->step();
        ASSERT_TRUE(step) << step.error().message;
        EXPECT_TRUE(std::isfinite(step->loss));
    }
    vkUnmapMemory(vk.device, vk.memory);
    EXPECT_EQ(snapshots, 100);
    EXPECT_GE(reduced, 100 * 9); // the CNN's 9 layers' activations, and gradients where they exist
    dest->reset(); // the CUDA import goes before the Vulkan memory (vk's destructor)
}

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (::testing::GTEST_FLAG(list_tests)) return RUN_ALL_TESTS(); // ctest's test discovery needs no device
    const std::string why = missing();
    if (!why.empty()) {
        const char* require = std::getenv("TS_REQUIRE_GPU");
        if (require && std::string(require) == "1") {
            std::printf("device_training_tests: TS_REQUIRE_GPU=1 but %s\n", why.c_str());
            return 1;
        }
        std::printf("device_training_tests skipped: %s\n", why.c_str());
        return 77; // ctest SKIP_RETURN_CODE
    }
    return RUN_ALL_TESTS();
}
