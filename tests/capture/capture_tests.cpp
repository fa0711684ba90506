// Capture tests against independent references: TorchScript activations and gradients vs the same modules run
// in eager PyTorch (fixtures scripted at test time), built-in models vs their documented PyTorch twins,
// structure, health detection, trainer control and a spirals accuracy check.
#include <atomic>
#include <fstream>
#include <set>

#include "engine/capture/device.hpp"
#include "engine/capture/model.hpp"
#include "engine/capture/structure.hpp"
#include "engine/capture/trainer.hpp"
#include "tests/capture/fixtures.hpp"

namespace ts::capture {
namespace {

using testing::close;
using testing::fixtureDir;
using testing::Reference;

std::unique_ptr<Model> mustLoad(const std::string& spec, std::vector<int64_t> shape, int64_t classes) {
    auto m = loadModel(spec, shape, classes);
    EXPECT_TRUE(m.hasValue()) << (m ? "" : m.error().message);
    return m ? std::move(m.value()) : nullptr;
}

std::string fixture(const std::string& name) {
    return (fixtureDir() / (name + ".pt")).string();
}

std::vector<int64_t> perSample(const torch::Tensor& x) {
    return std::vector<int64_t>(x.sizes().begin() + 1, x.sizes().end());
}

// A DataSplit holding exactly the reference batch, in order.
DataSplit batchSplit(const Reference& ref, int64_t classes) {
    DataSplit s;
    s.train.name = "reference batch";
    s.train.inputs = ref.get("input", "x");
    s.train.labels = ref.get("labels", "y").to(torch::kInt64);
    s.train.sampleShape = perSample(s.train.inputs);
    s.train.numClasses = classes;
    s.validation = s.train;
    return s;
}

// ------------------------------------------------------------------------------------------------------------
// TorchScript activations and gradients equal eager PyTorch's.

struct ScriptCase {
    const char* name;
    int64_t classes;
};

class ScriptFixture : public ::testing::TestWithParam<ScriptCase> {};

TEST_P(ScriptFixture, ActivationsEqualEagerModules) {
    TS_REQUIRE_FIXTURES();
    const auto ref = Reference::load(GetParam().name);
    const auto x = ref.get("input", "x");
    auto model = mustLoad(fixture(GetParam().name), perSample(x), GetParam().classes);
    ASSERT_TRUE(model);
    EXPECT_FALSE(model->outputOnly());
    model->setTraining(true); // the reference ran in training mode (batch-norm batch statistics)
    const ForwardCapture fc = model->forwardCapture(x);
    std::vector<std::string> got;
    for (const auto& [name, t] : fc.activations) {
        got.push_back(name);
        EXPECT_TRUE(close(t, ref.get("act", name), name)) << GetParam().name;
    }
    EXPECT_EQ(got, ref.names("act")); // same layers, same forward order
    EXPECT_TRUE(close(fc.output, ref.get("output", "out"), "output"));
}

TEST_P(ScriptFixture, SnapshotGradientsEqualAutograd) {
    TS_REQUIRE_FIXTURES();
    for (bool copy : {false, true}) {
        SCOPED_TRACE(copy ? "snapshotCopy" : "moved");
        const auto ref = Reference::load(GetParam().name);
        auto model = mustLoad(fixture(GetParam().name), perSample(ref.get("input", "x")), GetParam().classes);
        ASSERT_TRUE(model);
        // Parameters in named_parameters() order, equal to the eager module's.
        std::vector<std::string> names;
        for (const auto& [n, p] : model->namedParameters())
            names.push_back(n);
        EXPECT_EQ(names, ref.names("param"));

        TrainOptions o;
        o.optimizer = OptimizerKind::Sgd;
        o.learningRate = 0.1;
        o.batchSize = ref.get("input", "x").size(0);
        o.shuffle = false;
        o.captureEvery = 1;
        o.maxSteps = 1;
        o.snapshotCopy = copy;
        auto trainer = Trainer::create(*model, batchSplit(ref, GetParam().classes), o);
        ASSERT_TRUE(trainer.hasValue()) << trainer.error().message;
        int snapshots = 0;
        (*trainer)->setSnapshotConsumer([&](Snapshot& s) {
            ++snapshots;
            EXPECT_NEAR(s.loss, ref.get("loss", "loss").item<double>(), 1e-5);
            for (const auto& l : s.layers) {
                EXPECT_TRUE(close(l.activation, ref.get("act", l.name), l.name));
                const auto want = ref.get("actgrad", l.name);
                if (want.defined())
                    EXPECT_TRUE(close(l.gradient, want, l.name + " gradient", 1e-4, 1e-7));
                else
                    EXPECT_FALSE(l.gradient.defined()) << l.name;
                EXPECT_EQ(l.activation.dim(), 2);
                EXPECT_TRUE(l.activation.is_contiguous());
                EXPECT_EQ(l.activation.scalar_type(), torch::kFloat32);
            }
            ASSERT_EQ(s.params.size(), ref.names("param").size());
            for (const auto& p : s.params) {
                EXPECT_TRUE(close(p.value, ref.get("param", p.name), p.name));
                EXPECT_TRUE(close(p.grad, ref.get("paramgrad", p.name), p.name + " gradient", 1e-4, 1e-7));
            }
            EXPECT_TRUE(s.health.ok()) << s.health.describe();
        });
        auto step = (*trainer)->step();
        ASSERT_TRUE(step.hasValue()) << step.error().message;
        EXPECT_TRUE(step->captured);
        EXPECT_EQ(snapshots, 1);
        // The snapshot's weights were a copy: the SGD update changed the live ones, not the reference values.
        const auto params = model->namedParameters();
        const auto& [firstName, firstParam] = params[0];
        EXPECT_FALSE(torch::allclose(firstParam, ref.get("param", firstName)));
    }
}

INSTANTIATE_TEST_SUITE_P(Models, ScriptFixture,
                         ::testing::Values(ScriptCase{"mlp_seq", 3}, ScriptCase{"cnn_seq", 5},
                                           ScriptCase{"skip_script", 3}, ScriptCase{"skip_trace", 3}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ScriptStructure, ResidualBlockHasSkipEdge) {
    TS_REQUIRE_FIXTURES();
    for (const char* name : {"skip_script", "skip_trace"}) {
        auto model = mustLoad(fixture(name), {1, 8, 8}, 3);
        ASSERT_TRUE(model);
        auto net = describeNetwork(*model, {1, 8, 8});
        ASSERT_TRUE(net.hasValue()) << net.error().message;
        std::set<std::pair<std::string, std::string>> edges;
        for (const auto& e : net->edges)
            edges.insert({net->nodes[e.from].name, net->nodes[e.to].name});
        const std::set<std::pair<std::string, std::string>> want = {{"input", "stem"},
                                                                    {"stem", "relu"},
                                                                    {"relu", "block.conv1"},
                                                                    {"block.conv1", "block.bn1"},
                                                                    {"block.bn1", "block.relu"},
                                                                    {"block.relu", "block.conv2"},
                                                                    {"block.conv2", "block.add"},
                                                                    {"relu", "block.add"},
                                                                    {"block.add", "block.relu_1"},
                                                                    {"block.relu_1", "pool"},
                                                                    {"pool", "fc"}};
        EXPECT_EQ(edges, want) << name << "\n" << summary(*net);
        const int add = net->find("block.add");
        ASSERT_GE(add, 0);
        bool skip = false;
        for (const auto& e : net->edges)
            if (e.to == uint32_t(add) && net->nodes[e.from].name == "relu") skip = e.skip;
        EXPECT_TRUE(skip);
        const auto& conv1 = net->nodes[net->find("block.conv1")];
        EXPECT_EQ(conv1.type, "Conv2d");
        EXPECT_EQ(conv1.paramCount, 4 * 4 * 9 + 4);
        EXPECT_EQ(conv1.flops, 2 * (4 * 4 * 9) * 64 + 4 * 64);
        EXPECT_EQ(conv1.neurons, 4 * 8 * 8);
        EXPECT_EQ(conv1.grid, (std::array<int64_t, 3>{4, 8, 8}));
        EXPECT_EQ(net->nodes[add].type, "add");
        int64_t total = 0;
        for (const auto& [n, p] : model->namedParameters())
            total += p.numel();
        EXPECT_EQ(net->totalParams(), total);
    }
}

TEST(ScriptModel, SurgeryFailureFallsBackToOutput) {
    TS_REQUIRE_FIXTURES();
    auto model = mustLoad(fixture("two_args"), {2}, 2);
    ASSERT_TRUE(model);
    EXPECT_TRUE(model->outputOnly());
    torch::manual_seed(3);
    const auto x = torch::randn({5, 2});
    const auto fc = model->forwardCapture(x);
    ASSERT_EQ(fc.activations.size(), 1u);
    EXPECT_EQ(fc.activations[0].first, "output");
    EXPECT_TRUE(close(fc.output, model->forward(x), "output"));
    // Still trainable, with capture on.
    auto data = loadDataset("xor", {.samples = 64});
    ASSERT_TRUE(data.hasValue());
    auto t = Trainer::create(*model, data.value(), {.batchSize = 16, .maxSteps = 2, .captureEvery = 1});
    ASSERT_TRUE(t.hasValue()) << t.error().message;
    int snaps = 0;
    (*t)->setSnapshotConsumer(
        [&](Snapshot& s) { snaps += s.layers.size() == 1 && s.layers[0].name == "output"; });
    EXPECT_TRUE((*t)->step().hasValue());
    EXPECT_TRUE((*t)->step().hasValue());
    EXPECT_EQ(snaps, 2);
}

TEST(ScriptModel, LoadErrorsNameTheFile) {
    auto missing = loadModel("/nonexistent/model.pt", {2}, 2);
    ASSERT_FALSE(missing.hasValue());
    EXPECT_NE(missing.error().message.find("/nonexistent/model.pt"), std::string::npos);
    EXPECT_EQ(missing.error().exitCode(), 2);

    const auto junk = testing::tempDir() / "junk.pt";
    std::ofstream(junk) << "this is not a zip archive";
    auto bad = loadModel(junk.string(), {2}, 2);
    ASSERT_FALSE(bad.hasValue());
    EXPECT_NE(bad.error().message.find(junk.string()), std::string::npos);
    EXPECT_NE(bad.error().message.find("TorchScript"), std::string::npos);

    auto unknown = loadModel("builtin:transformer", {2}, 2);
    ASSERT_FALSE(unknown.hasValue());
    EXPECT_NE(unknown.error().message.find("builtin:transformer"), std::string::npos);

    auto cnnOnVectors = loadModel("builtin:cnn", {2}, 2);
    ASSERT_FALSE(cnnOnVectors.hasValue());
    EXPECT_NE(cnnOnVectors.error().message.find("[C, H, W]"), std::string::npos);

    auto badWidths = loadModel("builtin:mlp:64,x", {2}, 2);
    ASSERT_FALSE(badWidths.hasValue());
    EXPECT_NE(badWidths.error().message.find("'x'"), std::string::npos);
}

// ------------------------------------------------------------------------------------------------------------
// Built-in models.

TEST(Builtin, ParametersMatchDocumentedPyTorchModules) {
    TS_REQUIRE_FIXTURES();
    std::ifstream in(fixtureDir() / "builtin_params.txt");
    std::map<std::string, std::vector<std::string>> want;
    std::string spec, name, shape;
    while (in >> spec >> name >> shape)
        want[spec].push_back(name + " " + shape);
    ASSERT_EQ(want.size(), 3u);
    const std::map<std::string, std::pair<std::vector<int64_t>, int64_t>> inputs = {
        {"builtin:mlp", {{2}, 3}},
        {"builtin:mlp:20,10,5", {{1, 28, 28}, 10}},
        {"builtin:cnn", {{1, 28, 28}, 10}}};
    for (const auto& [s, io] : inputs) {
        auto model = mustLoad(s, io.first, io.second);
        ASSERT_TRUE(model);
        std::vector<std::string> got;
        for (const auto& [n, p] : model->namedParameters()) {
            std::string dims;
            for (int64_t d = 0; d < p.dim(); ++d)
                dims += (d ? "," : "") + std::to_string(p.size(d));
            got.push_back(n + " " + dims);
        }
        EXPECT_EQ(got, want[s]) << s;
    }
}

TEST(Builtin, CnnStructureAndCapture) {
    torch::manual_seed(11);
    auto model = mustLoad("builtin:cnn", {1, 28, 28}, 10);
    ASSERT_TRUE(model);
    auto net = describeNetwork(*model, {1, 28, 28});
    ASSERT_TRUE(net.hasValue()) << net.error().message;
    std::vector<std::string> names;
    for (const auto& n : net->nodes)
        names.push_back(n.name);
    EXPECT_EQ(names, (std::vector<std::string>{"input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                                               "fc1", "relu_fc", "out"}));
    const auto& conv2 = net->nodes[4];
    EXPECT_EQ(conv2.outputShape, (std::vector<int64_t>{16, 14, 14}));
    EXPECT_EQ(conv2.neurons, 16 * 14 * 14);
    EXPECT_EQ(conv2.paramCount, 16 * 8 * 9 + 16);
    EXPECT_EQ(conv2.flops, 2 * 16 * 8 * 9 * 14 * 14 + 16 * 14 * 14);
    EXPECT_EQ(conv2.inputShapes, (std::vector<std::vector<int64_t>>{{8, 14, 14}}));
    EXPECT_EQ(net->nodes[3].flops, 8 * 28 * 28); // pool1 reads its input once
    EXPECT_EQ(net->nodes[7].flops, 2 * 784 * 64 + 64);
    EXPECT_EQ(net->edges.size(), 9u);
    for (size_t i = 0; i < net->edges.size(); ++i) {
        EXPECT_EQ(net->edges[i].from, i);
        EXPECT_EQ(net->edges[i].to, i + 1);
        EXPECT_FALSE(net->edges[i].skip);
    }
    // forwardCapture's layers are the modules applied in turn (checked here with LibTorch functional ops).
    torch::NoGradGuard noGrad;
    const auto x = torch::rand({3, 1, 28, 28});
    const auto fc = model->forwardCapture(x);
    std::map<std::string, torch::Tensor> p;
    for (const auto& [n, t] : model->namedParameters())
        p[n] = t;
    namespace F = torch::nn::functional;
    auto c1 = F::conv2d(x, p["conv1.weight"], F::Conv2dFuncOptions().bias(p["conv1.bias"]).padding(1));
    auto p1 = F::max_pool2d(torch::relu(c1), F::MaxPool2dFuncOptions(2));
    auto c2 = F::conv2d(p1, p["conv2.weight"], F::Conv2dFuncOptions().bias(p["conv2.bias"]).padding(1));
    auto p2 = F::max_pool2d(torch::relu(c2), F::MaxPool2dFuncOptions(2));
    auto h = torch::relu(F::linear(p2.flatten(1), p["fc1.weight"], p["fc1.bias"]));
    auto out = F::linear(h, p["out.weight"], p["out.bias"]);
    ASSERT_EQ(fc.activations.size(), 9u);
    EXPECT_TRUE(close(fc.activations[0].second, c1, "conv1"));
    EXPECT_TRUE(close(fc.activations[5].second, p2, "pool2"));
    EXPECT_TRUE(close(fc.output, out, "output"));
}

TEST(Builtin, MlpReaches95PercentOnSpirals) {
    torch::manual_seed(0);
    auto data = loadDataset("spirals", {.samples = 1000, .seed = 1});
    ASSERT_TRUE(data.hasValue()) << data.error().message;
    auto model = mustLoad("builtin:mlp:64,32", data->train.sampleShape, data->train.numClasses);
    ASSERT_TRUE(model);
    TrainOptions o;
    o.learningRate = 0.01;
    o.batchSize = 32;
    o.epochs = 60;
    o.seed = 2;
    auto t = Trainer::create(*model, data.value(), o);
    ASSERT_TRUE(t.hasValue()) << t.error().message;
    ASSERT_TRUE((*t)->start().isOk());
    const Status done = (*t)->wait();
    ASSERT_TRUE(done.isOk()) << done.message();
    EXPECT_EQ((*t)->state(), TrainerState::Finished);
    EXPECT_EQ((*t)->stepsDone(), 60 * 25);
    auto acc = evaluate(*model, data->train.inputs, data->train.labels);
    ASSERT_TRUE(acc.hasValue());
    EXPECT_GE(acc->accuracy, 0.95) << "training accuracy";
    auto val = (*t)->evaluateValidation();
    ASSERT_TRUE(val.hasValue());
    EXPECT_GE(val->accuracy, 0.85) << "validation accuracy";
}

TEST(Trainer, SgdLowersTheLossAndReportsEachStep) {
    torch::manual_seed(5);
    auto data = loadDataset("gaussians", {.samples = 600, .seed = 3});
    ASSERT_TRUE(data.hasValue());
    auto model = mustLoad("builtin:mlp:16", {2}, 3);
    TrainOptions o;
    o.optimizer = OptimizerKind::Sgd;
    o.learningRate = 0.1;
    o.batchSize = 50;
    o.epochs = 5;
    o.evalEvery = 10;
    o.evalBatch = 100;
    auto t = Trainer::create(*model, data.value(), o);
    ASSERT_TRUE(t.hasValue()) << t.error().message;
    std::vector<StepInfo> steps;
    (*t)->setStepCallback([&](const StepInfo& s) { steps.push_back(s); });
    const auto before = (*t)->evaluateValidation();
    ASSERT_TRUE(before.hasValue());
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE((*t)->step().hasValue());
    ASSERT_EQ(steps.size(), 50u);
    for (size_t i = 0; i < steps.size(); ++i) {
        EXPECT_EQ(steps[i].step, int64_t(i + 1));
        EXPECT_EQ(steps[i].epoch, int64_t(i / 10));
        EXPECT_DOUBLE_EQ(steps[i].learningRate, 0.1);
        EXPECT_EQ(steps[i].evaluated, (i + 1) % 10 == 0);
        EXPECT_FALSE(steps[i].captured);
    }
    // The reported validation numbers are evaluate()'s on the fixed validation batch.
    const auto after = (*t)->evaluateValidation();
    ASSERT_TRUE(after.hasValue());
    EXPECT_DOUBLE_EQ(steps.back().valLoss, after->loss);
    EXPECT_EQ(after->samples, 100);
    EXPECT_LT(after->loss, before->loss * 0.7);
}

// --device (device.hpp): every spelling, and every case of what a LibTorch can offer, including the CUDA ones
// this machine cannot produce (decideDevice takes LibTorch's answers as plain values).
TEST(Device, ParsesEverySpellingAndRefusesTheRest) {
    struct Case {
        std::string text;
        bool ok;
        DeviceFlag::Kind kind;
        int index;
    };
    const Case cases[] = {
        {"auto", true, DeviceFlag::Kind::Auto, -1},  {"cpu", true, DeviceFlag::Kind::Cpu, -1},
        {"cuda", true, DeviceFlag::Kind::Cuda, -1},  {"cuda:0", true, DeviceFlag::Kind::Cuda, 0},
        {"cuda:12", true, DeviceFlag::Kind::Cuda, 12}, {"", false, {}, 0},
        {"gpu", false, {}, 0},  {"CUDA", false, {}, 0},  {"cuda:", false, {}, 0},   {"cuda:-1", false, {}, 0},
        {"cuda:+1", false, {}, 0}, {"cuda: 1", false, {}, 0}, {"cuda:1x", false, {}, 0}, {"cuda:0:1", false, {}, 0},
        {"cuda:99999999999", false, {}, 0}, {"cpu:0", false, {}, 0}, {" cpu", false, {}, 0},
    };
    for (const auto& c : cases) {
        auto f = parseDeviceFlag(c.text);
        ASSERT_EQ(f.hasValue(), c.ok) << "'" << c.text << "'";
        if (!c.ok) {
            EXPECT_EQ(f.error().kind, ErrorKind::Usage);
            EXPECT_NE(f.error().message.find("--device '" + c.text + "'"), std::string::npos) << f.error().message;
            EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
            continue;
        }
        EXPECT_EQ(int(f->kind), int(c.kind)) << c.text;
        EXPECT_EQ(f->index, c.index) << c.text;
    }
}

TEST(Device, AutoFallsBackInOneLineAndCudaIsNeverSilentlyTheCpu) {
    struct Case {
        std::string flag;
        bool compiled;
        int devices;
        std::string device;   // "" when an error is expected
        std::string words;    // in the note (auto on the CPU) or the error
        ErrorKind kind = ErrorKind::Failed;
    };
    const Case cases[] = {
        {"cpu", true, 2, "cpu", ""},
        {"cpu", false, 0, "cpu", ""},
        {"auto", true, 1, "cuda:0", ""},
        {"auto", true, 4, "cuda:0", ""},
        {"auto", false, 0, "cpu", "CPU-only build"},
        {"auto", true, 0, "cpu", "sees no usable device"},
        {"cuda", true, 1, "cuda:0", ""},
        {"cuda:1", true, 2, "cuda:1", ""},
        {"cuda", false, 0, "", "--device cuda: this LibTorch is a CPU-only build", ErrorKind::Environment},
        {"cuda:0", false, 0, "", "--device cuda:0: this LibTorch is a CPU-only build", ErrorKind::Environment},
        {"cuda", true, 0, "", "--device cuda: LibTorch has CUDA but sees no usable device", ErrorKind::Environment},
        {"cuda:2", true, 2, "", "--device cuda:2 does not exist: LibTorch sees 2 CUDA devices (cuda:0..cuda:1)",
         ErrorKind::Usage},
        {"cuda:1", true, 1, "", "--device cuda:1 does not exist: LibTorch sees 1 CUDA device (cuda:0..cuda:0)",
         ErrorKind::Usage},
    };
    for (const auto& c : cases) {
        const std::string where = c.flag + " with " + (c.compiled ? "CUDA, " : "no CUDA, ") + std::to_string(c.devices);
        auto flag = parseDeviceFlag(c.flag);
        ASSERT_TRUE(flag.hasValue()) << where;
        auto d = decideDevice(*flag, {c.compiled, c.devices});
        if (c.device.empty()) {
            ASSERT_FALSE(d.hasValue()) << where << " chose " << d->name;
            EXPECT_EQ(d.error().kind, c.kind) << where;
            EXPECT_NE(d.error().message.find(c.words), std::string::npos) << where << ": " << d.error().message;
            EXPECT_EQ(d.error().message.find('\n'), std::string::npos);
            EXPECT_EQ(d.error().message.find("using the CPU"), std::string::npos);
            continue;
        }
        ASSERT_TRUE(d.hasValue()) << where << ": " << d.error().message;
        EXPECT_EQ(d->name, c.device) << where;
        EXPECT_EQ(d->cuda, c.device != "cpu") << where;
        if (d->cuda) {
            EXPECT_EQ("cuda:" + std::to_string(d->index), c.device);
        }
        if (c.words.empty()) {
            EXPECT_TRUE(d->note.empty()) << where << ": " << d->note;
        } else {
            EXPECT_NE(d->note.find("the model runs on the CPU: "), std::string::npos) << where << ": " << d->note;
            EXPECT_NE(d->note.find(c.words), std::string::npos) << where << ": " << d->note;
            EXPECT_EQ(d->note.find('\n'), std::string::npos);
        }
    }
}

// Training on a CUDA device: where this LibTorch can, the same seeds give the same losses as on the CPU (to float
// tolerance) and the snapshot's activations stay on the device while its weights and labels come to the host;
// where it cannot (Debian's CPU LibTorch), the trainer refuses in one line and the model stays usable on the CPU.
TEST(Trainer, TrainsOnCudaLikeOnTheCpuOrRefusesInOneLine) {
    auto data = loadDataset("gaussians", {.samples = 400, .seed = 3});
    ASSERT_TRUE(data.hasValue());
    auto losses = [&](Model& model, torch::Device device, std::vector<double>& out) -> Status {
        TrainOptions o;
        o.device = device;
        o.batchSize = 40;
        o.maxSteps = 6;
        o.captureEvery = 2;
        o.shuffle = false;
        auto t = Trainer::create(model, data.value(), o);
        if (!t) return t.error();
        (*t)->setSnapshotConsumer([&](Snapshot& s) {
            EXPECT_TRUE(s.labels.device().is_cpu());
            for (const auto& p : s.params)
                EXPECT_TRUE(p.value.device().is_cpu()) << p.name;
            for (const auto& l : s.layers)
                EXPECT_EQ(l.activation.device(), device) << l.name;
        });
        for (int i = 0; i < 6; ++i) {
            auto st = (*t)->step();
            if (!st) return st.error();
            out.push_back(st->loss);
        }
        return Status::ok();
    };
    torch::manual_seed(9);
    auto onCpu = mustLoad("builtin:mlp:16", {2}, 3);
    torch::manual_seed(9);
    auto onCuda = mustLoad("builtin:mlp:16", {2}, 3);
    std::vector<double> cpuLoss, cudaLoss;
    ASSERT_TRUE(losses(*onCpu, torch::kCPU, cpuLoss));
    const CudaAvailability avail = libtorchCuda();
    const Status st = losses(*onCuda, torch::Device(torch::kCUDA, 0), cudaLoss);
    if (avail.compiled && avail.devices > 0) {
        ASSERT_TRUE(st) << st.message();
        EXPECT_TRUE(onCuda->device().is_cuda());
        ASSERT_EQ(cudaLoss.size(), cpuLoss.size());
        for (size_t i = 0; i < cpuLoss.size(); ++i)
            EXPECT_NEAR(cudaLoss[i], cpuLoss[i], 1e-4 * (1 + std::fabs(cpuLoss[i]))) << "step " << i + 1;
        return;
    }
    ASSERT_FALSE(st) << "trained on a CUDA device this LibTorch does not have";
    EXPECT_EQ(st.error().kind, ErrorKind::Environment);
    EXPECT_NE(st.message().find("cannot move to cuda:0"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
    EXPECT_TRUE(onCuda->device().is_cpu());
    cudaLoss.clear();
    ASSERT_TRUE(losses(*onCuda, torch::kCPU, cudaLoss)) << "the model is still usable on the CPU";
    EXPECT_EQ(cudaLoss, cpuLoss);
}

// Running out of memory in a step (the device's, as LibTorch reports it with c10::OutOfMemoryError, or the host
// allocator's "not enough memory") is the machine's limit: ErrorKind::Environment (exit 2), one line naming the
// step, the device, LibTorch's reason and what needs less. Other LibTorch errors stay failures of the step.
TEST(Trainer, OutOfMemoryInAStepIsOneEnvironmentLine) {
    // The built-in MLP, whose forward throws what LibTorch's allocators throw from its third call on (the
    // trainer's probe and the first step succeed).
    struct ThrowingModel : Model {
        std::unique_ptr<Model> inner;
        int calls = 0;
        int kind = 0; // 0: CUDA out of memory, 1: host allocator, 2: another LibTorch error
        std::string name() const override { return "thrower"; }
        torch::Tensor forward(const torch::Tensor& x) override {
            maybeThrow();
            return inner->forward(x);
        }
        ForwardCapture forwardCapture(const torch::Tensor& x) override {
            maybeThrow();
            return inner->forwardCapture(x);
        }
        NamedTensors namedParameters() override { return inner->namedParameters(); }
        NamedTensors namedBuffers() override { return inner->namedBuffers(); }
        void setTraining(bool on) override { inner->setTraining(on); }
        void maybeThrow() {
            if (++calls < 3) return;
            if (kind == 0) TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2.00 GiB\nmore");
            TORCH_CHECK(kind != 1, "DefaultCPUAllocator: not enough memory: you tried to allocate 9000000000 bytes.");
            TORCH_CHECK(false, "shape mismatch somewhere");
        }
    };
    auto data = loadDataset("gaussians", {.samples = 200, .seed = 3});
    ASSERT_TRUE(data.hasValue());
    for (int kind = 0; kind < 3; ++kind) {
        ThrowingModel m;
        m.inner = mustLoad("builtin:mlp:8", {2}, 3);
        m.kind = kind;
        auto t = Trainer::create(m, data.value(), {.batchSize = 20, .maxSteps = 5});
        ASSERT_TRUE(t.hasValue()) << t.error().message;
        ASSERT_TRUE((*t)->step().hasValue());
        auto st = (*t)->step();
        ASSERT_FALSE(st.hasValue()) << kind;
        const std::string& msg = st.error().message;
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_NE(msg.find("training step 2 of 'thrower'"), std::string::npos) << msg;
        if (kind == 2) {
            EXPECT_EQ(st.error().kind, ErrorKind::Failed) << msg;
            EXPECT_NE(msg.find("shape mismatch somewhere"), std::string::npos) << msg;
            continue;
        }
        EXPECT_EQ(st.error().kind, ErrorKind::Environment) << msg;
        EXPECT_NE(msg.find("ran out of memory on cpu"), std::string::npos) << msg;
        EXPECT_NE(msg.find(kind == 0 ? "CUDA out of memory. Tried to allocate 2.00 GiB" : "not enough memory"),
                  std::string::npos) << msg;
        EXPECT_NE(msg.find("a smaller --batch needs less"), std::string::npos) << msg;
    }
}

TEST(Trainer, CreateRejectsMismatchedModelAndData) {
    auto data = loadDataset("gaussians", {.samples = 60});
    ASSERT_TRUE(data.hasValue());
    auto twoClasses = mustLoad("builtin:mlp", {2}, 2);
    auto t = Trainer::create(*twoClasses, data.value(), {});
    ASSERT_FALSE(t.hasValue());
    EXPECT_NE(t.error().message.find("3 classes"), std::string::npos) << t.error().message;
    auto wrongInput = mustLoad("builtin:mlp", {4}, 3);
    auto t2 = Trainer::create(*wrongInput, data.value(), {});
    ASSERT_FALSE(t2.hasValue());
    EXPECT_NE(t2.error().message.find("cannot take data 'gaussians'"), std::string::npos)
        << t2.error().message;
    EXPECT_FALSE(Trainer::create(*twoClasses, data.value(), {.batchSize = 0}).hasValue());
}

TEST(Trainer, BackgroundThreadPausesStepsResumesAndStops) {
    torch::manual_seed(9);
    auto data = loadDataset("circles", {.samples = 400});
    ASSERT_TRUE(data.hasValue());
    auto model = mustLoad("builtin:mlp:8,8", {2}, 2);
    TrainOptions o;
    o.batchSize = 10;
    o.maxSteps = 1000000; // stopped by hand
    o.captureEvery = 4;
    auto t = Trainer::create(*model, data.value(), o);
    ASSERT_TRUE(t.hasValue());
    std::atomic<int> snapshots{0};
    std::atomic<int64_t> lastCaptured{0};
    std::atomic<bool> shapesOk{true};
    (*t)->setSnapshotConsumer([&](Snapshot& s) {
        ++snapshots;
        lastCaptured = s.step;
        if (s.step % 4 != 0 || s.layers.size() != 5) shapesOk = false;
        for (const auto& l : s.layers)
            if (l.activation.size(0) != 10 || !l.gradient.defined() ||
                l.gradient.sizes() != l.activation.sizes())
                shapesOk = false;
    });
    ASSERT_TRUE((*t)->start(/*paused=*/true).isOk());
    (*t)->waitIdle();
    EXPECT_EQ((*t)->state(), TrainerState::Paused);
    EXPECT_EQ((*t)->stepsDone(), 0);
    (*t)->requestStep(3);
    (*t)->waitIdle();
    EXPECT_EQ((*t)->stepsDone(), 3);
    EXPECT_EQ((*t)->latest().step, 3);
    (*t)->requestStep();
    (*t)->waitIdle();
    EXPECT_EQ((*t)->stepsDone(), 4);
    EXPECT_EQ(snapshots.load(), 1);
    (*t)->setLearningRate(0.005);
    (*t)->resume();
    while ((*t)->stepsDone() < 40)
        std::this_thread::yield();
    (*t)->pause();
    (*t)->waitIdle();
    const int64_t paused = (*t)->stepsDone();
    EXPECT_GE(paused, 40);
    EXPECT_EQ((*t)->state(), TrainerState::Paused);
    EXPECT_DOUBLE_EQ((*t)->latest().learningRate, 0.005);
    EXPECT_EQ((*t)->stepsDone(), paused); // stays paused
    EXPECT_EQ(snapshots.load(), paused / 4);
    EXPECT_TRUE(shapesOk.load());
    (*t)->stop();
    EXPECT_EQ((*t)->state(), TrainerState::Stopped);
    EXPECT_TRUE((*t)->step().hasValue()); // after stop, stepping on the caller's thread works again
}

TEST(Trainer, CopiedSnapshotsKeptByTheConsumerStayIntact) {
    torch::manual_seed(4);
    auto data = loadDataset("spirals", {.samples = 200});
    ASSERT_TRUE(data.hasValue());
    auto model = mustLoad("builtin:mlp:8", {2}, 2);
    auto t = Trainer::create(*model, data.value(),
                             {.batchSize = 20, .maxSteps = 5, .captureEvery = 1, .snapshotCopy = true});
    ASSERT_TRUE(t.hasValue());
    torch::Tensor kept, keptCopy, keptGrad, keptGradCopy;
    std::vector<const void*> buffers;
    (*t)->setSnapshotConsumer([&](Snapshot& s) {
        buffers.push_back(s.layers[0].activation.data_ptr());
        if (s.step == 2) {
            kept = s.layers[0].activation; // a consumer that keeps a tensor past its return
            keptCopy = kept.clone();
            keptGrad = s.layers[1].gradient;
            keptGradCopy = keptGrad.clone();
        }
    });
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE((*t)->step().hasValue());
    EXPECT_TRUE(torch::equal(kept, keptCopy));
    EXPECT_TRUE(torch::equal(keptGrad, keptGradCopy));
    ASSERT_EQ(buffers.size(), 5u);
    EXPECT_EQ(buffers[0], buffers[1]); // released snapshot: its buffer is reused
    EXPECT_NE(buffers[2], buffers[1]); // kept at step 2: step 3 gets a new buffer
}

// ------------------------------------------------------------------------------------------------------------
// Health.

TEST(Health, ForwardAndBackwardOrder) {
    Snapshot s;
    s.loss = 1.0;
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    auto finite = torch::rand({2, 3});
    auto withNan = finite.clone();
    withNan[1][2] = nan;
    auto withInf = finite.clone();
    withInf[0][0] = -inf;
    s.layers = {{"a", {3}, finite, withInf}, {"b", {3}, withNan, withInf}, {"c", {3}, withInf, finite}};
    s.params = {
        {"a.weight", 0, finite, withNan}, {"b.weight", 1, withNan, withNan}, {"c.weight", 2, finite, finite}};
    auto h = checkHealth(s);
    EXPECT_TRUE(h.lossFinite);
    EXPECT_EQ(h.firstBadActivation, "b"); // forward order: a is finite, b is the first bad one
    EXPECT_EQ(h.firstBadGradient, "b");   // backward order: c is finite, then b
    EXPECT_EQ(h.firstBadWeight, "b.weight");
    EXPECT_EQ(h.firstBadWeightGradient, "b.weight");
    EXPECT_FALSE(h.ok());
    EXPECT_NE(h.describe().find("layer 'b' (forward order)"), std::string::npos);
    // A finite tensor whose sum overflows float is still finite.
    EXPECT_TRUE(allFinite(torch::full({4}, 3e38f)));
    EXPECT_FALSE(allFinite(withInf));
}

TEST(Health, NanWeightStopsTrainingNamingTheLayer) {
    torch::manual_seed(1);
    auto data = loadDataset("spirals", {.samples = 100});
    ASSERT_TRUE(data.hasValue());
    auto model = mustLoad("builtin:mlp", {2}, 2);
    {
        torch::NoGradGuard noGrad;
        for (auto& [n, p] : model->namedParameters())
            if (n == "fc2.weight") p[3][5] = std::numeric_limits<float>::quiet_NaN();
    }
    auto t = Trainer::create(*model, data.value(), {.batchSize = 20, .maxSteps = 5});
    ASSERT_TRUE(t.hasValue());
    ASSERT_TRUE((*t)->start().isOk());
    const Status s = (*t)->wait();
    ASSERT_FALSE(s.isOk());
    EXPECT_EQ(s.error().exitCode(), 1);
    EXPECT_EQ((*t)->state(), TrainerState::Failed);
    EXPECT_NE(s.message().find("step 1"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("layer 'fc2'"), std::string::npos) << s.message();
    const auto h = (*t)->lastHealth();
    EXPECT_FALSE(h.lossFinite);
    EXPECT_EQ(h.firstBadActivation, "fc2"); // relu2 and out are NaN too, fc2 comes first
    EXPECT_EQ(h.firstBadWeight, "fc2.weight");
}

TEST(Health, InfiniteGradientNamesTheLayerInBackwardOrder) {
    TS_REQUIRE_FIXTURES();
    // fc2(sqrt(act(fc1(x)))): forward finite, d sqrt/dx = inf at the ReLU's zeros.
    for (bool copy : {false, true}) {
        SCOPED_TRACE(copy ? "snapshotCopy" : "moved");
        torch::manual_seed(2);
        auto model = mustLoad(fixture("sqrt_net"), {2}, 2);
        ASSERT_TRUE(model);
        auto data = loadDataset("spirals", {.samples = 200});
        ASSERT_TRUE(data.hasValue());
        auto t = Trainer::create(*model, data.value(),
                                 {.batchSize = 50, .maxSteps = 3, .captureEvery = 1, .snapshotCopy = copy});
        ASSERT_TRUE(t.hasValue()) << t.error().message;
        HealthReport seen;
        (*t)->setSnapshotConsumer([&](Snapshot& s) { seen = s.health; });
        auto r = (*t)->step();
        ASSERT_FALSE(r.hasValue());
        EXPECT_TRUE(seen.lossFinite);
        EXPECT_EQ(seen.firstBadActivation, "");
        EXPECT_EQ(seen.firstBadGradient, "act");
        EXPECT_NE(r.error().message.find("layer 'act' (backward order)"), std::string::npos)
            << r.error().message;
    }
}

} // namespace
} // namespace ts::capture
