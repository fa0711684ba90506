// Trainer: data order, one training step with optional capture (its health checked by health.cpp),
// evaluation, and the background thread's control (pause / resume / step / stop).
#include "engine/capture/trainer.hpp"

#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include "engine/capture/network.hpp"
#include "engine/capture/structure.hpp"
#include "engine/core/log.hpp"

namespace ts::capture {

namespace {

// Thrown inside a step when the numbers went bad; runStep() turns it into ErrorKind::Failed.
struct HealthStop : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// Thrown when the objective does not fit the model or the data; runStep() turns it into ErrorKind::Usage.
struct ObjectiveMismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string firstLine(const std::exception& e) {
    return oneLineReason(e.what());
}

// [batch x neurons] contiguous float32: the tensor itself, or a view, when it already is one (no copy).
torch::Tensor flatten2d(const torch::Tensor& t) {
    if (t.dim() == 2 && t.scalar_type() == torch::kFloat32 && t.is_contiguous()) return t;
    torch::Tensor f = t.dim() == 0 ? t.reshape({1, 1}) : t.reshape({t.size(0), -1});
    if (f.scalar_type() != torch::kFloat32) f = f.to(torch::kFloat32);
    return f.contiguous();
}

torch::Tensor floatContiguous(const torch::Tensor& t) {
    return t.scalar_type() == torch::kFloat32 ? t.contiguous() : t.to(torch::kFloat32).contiguous();
}

// Contiguous float32 in host memory (a copy from a device; on the CPU as floatContiguous).
torch::Tensor hostFloat(const torch::Tensor& t) {
    return t.device().is_cpu() ? floatContiguous(t) : t.to(torch::kCPU, torch::kFloat32).contiguous();
}

std::string shapeStr(const torch::Tensor& t) {
    return shapeString(std::vector<int64_t>(t.sizes().begin(), t.sizes().end()));
}

// A [rows x cols] float32 tensor over part of the snapshot buffer; it keeps the buffer alive.
torch::Tensor arenaView(const torch::Tensor& arena, float* data, int64_t rows, int64_t cols) {
    return torch::from_blob(
        data, {rows, cols}, [arena](void*) {}, torch::TensorOptions().dtype(torch::kFloat32));
}

// Copies of the parameters as float32, in one allocation: each copy is a tensor over a slice of the shared
// buffer (from_blob keeps the buffer alive), so a snapshot costs one allocation and a memcpy per parameter.
std::vector<torch::Tensor> copyParameters(const std::vector<torch::Tensor>& params) {
    std::vector<torch::Tensor> out(params.size());
    int64_t total = 0;
    bool flat = true;
    for (const auto& p : params) {
        flat = flat && p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous();
        total += p.numel();
    }
    if (!flat) { // other dtypes, or parameters on a device: host copies, one each
        for (size_t i = 0; i < params.size(); ++i)
            out[i] = params[i].detach().to(torch::kCPU, torch::kFloat32, false, true).contiguous();
        return out;
    }
    torch::Tensor buffer = torch::empty({total}, torch::kFloat32);
    float* base = buffer.data_ptr<float>();
    int64_t offset = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        const int64_t n = params[i].numel();
        std::memcpy(base + offset, params[i].data_ptr<float>(), size_t(n) * sizeof(float));
        out[i] = torch::from_blob(
            base + offset, params[i].sizes(), [buffer](void*) {},
            torch::TensorOptions().dtype(torch::kFloat32));
        offset += n;
    }
    return out;
}

std::string modulePrefix(const std::string& paramName) {
    const size_t dot = paramName.rfind('.');
    return dot == std::string::npos ? std::string() : paramName.substr(0, dot);
}

} // namespace

CudaAvailability libtorchCuda() {
    CudaAvailability c;
    c.compiled = at::hasCUDA();
    if (!c.compiled) return c;
    try {
        c.devices = int(torch::cuda::device_count());
    } catch (const std::exception&) { // a driver too old for the runtime throws in some builds: no device
        c.devices = 0;
    }
    return c;
}

Expected<TrainingDevice> chooseTrainingDevice(const std::string& flag) {
    auto parsed = parseDeviceFlag(flag);
    if (!parsed) return parsed.error();
    return decideDevice(*parsed, libtorchCuda());
}

torch::Device torchDevice(const TrainingDevice& device) {
    return device.cuda ? torch::Device(torch::kCUDA, c10::DeviceIndex(device.index)) : torch::Device(torch::kCPU);
}

CUstream_st* producerStream(const torch::Device& device) {
    if (!device.is_cuda()) return nullptr;
    const c10::Stream current = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(device);
    if (current.id() == 0) return reinterpret_cast<CUstream_st*>(0x1); // cudaStreamLegacy: LibTorch's default
    torch::cuda::synchronize(device.index());
    return nullptr;
}

std::optional<OptimizerKind> parseOptimizer(const std::string& name) {
    if (name == "sgd" || name == "SGD") return OptimizerKind::Sgd;
    if (name == "adam" || name == "Adam") return OptimizerKind::Adam;
    return std::nullopt;
}

const char* trainerStateName(TrainerState s) {
    switch (s) {
    case TrainerState::Idle:
        return "idle";
    case TrainerState::Running:
        return "running";
    case TrainerState::Paused:
        return "paused";
    case TrainerState::Finished:
        return "finished";
    case TrainerState::Stopped:
        return "stopped";
    case TrainerState::Failed:
        return "failed";
    }
    return "?";
}

std::optional<Objective> parseObjective(const std::string& name) {
    if (name == "auto") return Objective::Auto;
    if (name == "cross-entropy") return Objective::CrossEntropy;
    if (name == "predicted-class") return Objective::PredictedClass;
    if (name == "mean-square") return Objective::MeanSquare;
    return std::nullopt;
}

Expected<torch::Tensor> objectiveLoss(const torch::Tensor& out, const torch::Tensor& labels, Objective o,
                                      std::string* used) {
    const bool classes = out.dim() == 2 && out.size(1) > 1;
    const bool labelled = labels.defined() && labels.numel() == (out.dim() > 0 ? out.size(0) : 0) &&
                          labels.numel() > 0 && labels.min().item<int64_t>() >= 0;
    if (o == Objective::Auto)
        o = classes && labelled ? Objective::CrossEntropy : classes ? Objective::PredictedClass : Objective::MeanSquare;
    auto name = [&](const char* n) {
        if (used) *used = n;
    };
    if (o == Objective::MeanSquare) {
        name("mean-square (0.5 * mean of the output squared)");
        return 0.5 * out.to(torch::kFloat32).pow(2).mean();
    }
    if (!classes)
        return makeError(ErrorKind::Usage, "the objective needs an output of [N, classes]; this model returns " +
                                               shapeString(std::vector<int64_t>(out.sizes().begin(), out.sizes().end())) +
                                               " (use --objective mean-square)");
    if (o == Objective::PredictedClass) {
        name("predicted-class (cross-entropy against the model's own argmax)");
        return torch::nn::functional::cross_entropy(out, out.detach().argmax(1));
    }
    if (!labelled) return makeError(ErrorKind::Usage, "cross-entropy needs labels; these inputs have none (use --objective predicted-class)");
    const int64_t maxLabel = labels.max().item<int64_t>();
    if (maxLabel >= out.size(1))
        return makeError(ErrorKind::Usage, "label " + std::to_string(maxLabel) + " is out of range for a model with " +
                                               std::to_string(out.size(1)) + " outputs");
    name("cross-entropy against the labels");
    return torch::nn::functional::cross_entropy(out, labels);
}

Expected<EvalResult> evaluate(Model& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                              int64_t batch) {
    if (!inputs.defined() || !labels.defined() || inputs.dim() < 1 || labels.dim() != 1 ||
        inputs.size(0) != labels.size(0))
        return makeError(ErrorKind::Usage,
                         "evaluate: inputs and labels must hold the same number of samples");
    const int64_t n = inputs.size(0);
    if (n == 0) return makeError(ErrorKind::Usage, "evaluate: no samples");
    torch::NoGradGuard noGrad;
    const bool wasTraining = model.isTraining();
    model.setTraining(false);
    const torch::Device device = model.device();
    double lossSum = 0.0;
    int64_t correct = 0;
    const bool labelled = labels.min().item<int64_t>() >= 0;
    try {
        for (int64_t b = 0; b < n; b += std::max<int64_t>(batch, 1)) {
            const int64_t m = std::min<int64_t>(std::max<int64_t>(batch, 1), n - b);
            const torch::Tensor y = labels.narrow(0, b, m).to(device);
            const torch::Tensor logits = model.forward(inputs.narrow(0, b, m).to(device));
            if (labelled && logits.dim() == 2) {
                lossSum += torch::nn::functional::cross_entropy(
                               logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                               .item<double>();
                correct += logits.argmax(1).eq(y).sum().item<int64_t>();
            } else { // unlabelled inputs or an output that is not [N, C]: the Auto objective, no accuracy
                auto l = objectiveLoss(logits, y, Objective::Auto);
                if (!l) throw std::runtime_error(l.error().message);
                lossSum += l->item<double>() * double(m);
            }
        }
    } catch (const std::exception& e) {
        model.setTraining(wasTraining);
        return makeError(ErrorKind::Usage, "evaluate '" + model.name() + "': " + firstLine(e));
    }
    model.setTraining(wasTraining);
    return EvalResult{lossSum / double(n), labelled ? double(correct) / double(n) : NAN, n};
}

// ---------------------------------------------------------------------------------------------------------
// Trainer: construction.

Trainer::Trainer(Model& model, DataSplit data, TrainOptions options)
    : m_model(model), m_data(std::move(data)), m_options(options), m_lr(options.learningRate) {}

Trainer::~Trainer() {
    stop();
}

Expected<std::unique_ptr<Trainer>> Trainer::create(Model& model, DataSplit data, TrainOptions o) {
    const Dataset& in = data.train;
    if (in.size() == 0)
        return makeError(ErrorKind::Usage, "data '" + in.name + "': the training set is empty");
    if (!in.labels.defined() || in.labels.dim() != 1 || in.labels.size(0) != in.size() ||
        in.labels.scalar_type() != torch::kInt64)
        return makeError(ErrorKind::Usage, "data '" + in.name + "': labels must be [N] int64");
    if (o.batchSize < 1) return makeError(ErrorKind::Usage, "batch size must be >= 1");
    if (!(o.learningRate > 0.0) || !std::isfinite(o.learningRate))
        return makeError(ErrorKind::Usage, "learning rate must be a positive number");
    if (o.epochs < 1 && o.maxSteps < 1) return makeError(ErrorKind::Usage, "epochs or steps must be >= 1");
    if (o.captureEvery < 0 || o.evalEvery < 0)
        return makeError(ErrorKind::Usage, "capture/eval intervals must be >= 0");

    if (!o.device.is_cpu()) {
        // The optimiser is made over the moved parameters below; the snapshot hands device tensors over.
        if (auto st = model.toDevice(o.device); !st) return st.error();
        o.snapshotCopy = false;
    }
    std::unique_ptr<Trainer> t(new Trainer(model, std::move(data), o));
    const Dataset& tr = t->m_data.train;
    for (const auto& [name, p] : model.namedParameters()) {
        if (!p.requires_grad()) continue;
        t->m_paramNames.push_back(name);
        t->m_params.push_back(p);
        t->m_paramModule.push_back(modulePrefix(name));
    }
    if (t->m_params.empty())
        return makeError(ErrorKind::Usage, "model '" + model.name() + "' has no trainable parameters");

    // The model must map these samples to at least numClasses logits.
    try {
        torch::NoGradGuard noGrad;
        const bool wasTraining = model.isTraining();
        model.setTraining(false);
        const torch::Tensor out =
            model.forward(t->m_data.train.inputs.narrow(0, 0, std::min<int64_t>(2, tr.size())).to(o.device));
        model.setTraining(wasTraining);
        // Classification data needs [N, classes]; unlabelled inputs (numClasses 0) take any output, whose
        // objective (Objective::Auto) then follows its shape.
        if (t->m_data.train.numClasses > 0 && (out.dim() != 2 || out.size(1) < t->m_data.train.numClasses))
            return makeError(ErrorKind::Usage, "model '" + model.name() + "' outputs " + shapeStr(out) +
                                                   " for data '" + tr.name + "', which has " +
                                                   std::to_string(t->m_data.train.numClasses) +
                                                   " classes (expected [N, classes])");
    } catch (const std::exception& e) {
        // Token indices: past an nn.Embedding's table is the usual cause, so the line gives their range.
        const bool integral = c10::isIntegralType(tr.inputs.scalar_type(), false);
        const std::string indices = integral ? " (the data holds indices " +
                                                   std::to_string(tr.inputs.min().item<int64_t>()) + " to " +
                                                   std::to_string(tr.inputs.max().item<int64_t>()) + ")"
                                             : "";
        return makeError(ErrorKind::Usage, "model '" + model.name() + "' cannot take data '" + tr.name +
                                               "' (" + shapeStr(tr.inputs) + "): " + firstLine(e) + indices +
                                               embeddingHint(integral, e.what()));
    }

    if (o.optimizer == OptimizerKind::Adam)
        t->m_optimizer = std::make_unique<torch::optim::Adam>(
            t->m_params, torch::optim::AdamOptions(o.learningRate).weight_decay(o.weightDecay));
    else
        t->m_optimizer = std::make_unique<torch::optim::SGD>(
            t->m_params,
            torch::optim::SGDOptions(o.learningRate).momentum(o.momentum).weight_decay(o.weightDecay));

    const Dataset& val = t->m_data.validation.size() > 0 ? t->m_data.validation : t->m_data.train;
    const int64_t nVal = std::min<int64_t>(std::max<int64_t>(o.evalBatch, 1), val.size());
    t->m_valInputs = val.inputs.narrow(0, 0, nVal).to(o.device);
    t->m_valLabels = val.labels.narrow(0, 0, nVal).to(o.device);

    t->m_layerInfo = model.layerInfo();
    t->m_stepsPerEpoch = (tr.size() + o.batchSize - 1) / o.batchSize;
    t->m_planned = o.maxSteps > 0 ? o.maxSteps : o.epochs * t->m_stepsPerEpoch;
    return t;
}

// ---------------------------------------------------------------------------------------------------------
// One step.

Expected<StepInfo> Trainer::runStep() {
    try {
        return runStepImpl();
    } catch (const HealthStop& e) {
        return makeError(ErrorKind::Failed, e.what());
    } catch (const ObjectiveMismatch& e) {
        return makeError(ErrorKind::Usage, e.what());
    } catch (const c10::OutOfMemoryError& e) { // the device's memory (CUDA), or the host's in newer LibTorch
        return outOfMemory(e);
    } catch (const c10::Error& e) { // LibTorch 1.13's host allocator throws a plain c10::Error
        const bool oom = std::string(e.what()).find("DefaultCPUAllocator: not enough memory") != std::string::npos;
        return oom ? outOfMemory(e) : stepFailed(e);
    } catch (const std::exception& e) {
        return stepFailed(e);
    }
}

Error Trainer::stepFailed(const std::exception& e) const {
    return {"training step " + std::to_string(m_step + 1) + " of '" + m_model.name() + "' failed: " + firstLine(e),
            ErrorKind::Failed};
}

// Out of memory is the machine's limit, not a fault of the run: ErrorKind::Environment (exit 2), naming the device
// and what lowers the need.
Error Trainer::outOfMemory(const std::exception& e) const {
    return {"training step " + std::to_string(m_step + 1) + " of '" + m_model.name() + "' ran out of memory on " +
                m_options.device.str() + " (" + firstLine(e) + "); a smaller --batch needs less" +
                (m_options.device.is_cpu() ? "" : ", or train with --device cpu"),
            ErrorKind::Environment};
}

HealthReport Trainer::diagnose(const torch::Tensor& x, const ForwardCapture* fc) {
    HealthReport h;
    h.lossFinite = false;
    ForwardCapture own;
    if (!fc) {
        torch::NoGradGuard noGrad;
        own = m_model.forwardCapture(x);
        fc = &own;
    }
    for (const auto& [name, a] : fc->activations)
        if (!allFinite(a)) {
            h.firstBadActivation = name;
            break;
        }
    for (size_t i = 0; i < m_params.size(); ++i)
        if (!allFinite(m_params[i])) {
            h.firstBadWeight = m_paramNames[i];
            break;
        }
    return h;
}

// The next batch of the epoch (a new shuffled epoch when the last one is used up), with a learning rate asked
// for since the last step applied first.
std::pair<torch::Tensor, torch::Tensor> Trainer::nextBatch() {
    const int64_t n = m_data.train.size();
    if (m_epoch < 0 || m_cursor >= n) {
        ++m_epoch;
        std::vector<int64_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::mt19937_64 rng(m_options.seed * 1000003ull + static_cast<uint64_t>(m_epoch));
        if (m_options.shuffle) std::shuffle(order.begin(), order.end(), rng);
        m_order = torch::tensor(order, torch::kInt64);
        m_cursor = 0;
    }
    {
        std::lock_guard<std::mutex> lk(m_mutex);
        if (m_pendingLr) {
            m_lr = *m_pendingLr;
            for (auto& g : m_optimizer->param_groups())
                g.options().set_lr(m_lr);
            m_pendingLr.reset();
        }
    }
    const int64_t b = std::min<int64_t>(m_options.batchSize, n - m_cursor);
    const torch::Tensor idx = m_order.narrow(0, m_cursor, b);
    m_cursor += b;
    const torch::Tensor x = m_data.train.inputs.index_select(0, idx);
    const torch::Tensor y = m_data.train.labels.index_select(0, idx);
    if (m_options.device.is_cpu()) return {x, y};
    return {x.to(m_options.device), y.to(m_options.device)}; // the data set stays in host memory
}

// A captured step: the snapshot's activations (copied or moved), the backward pass with their gradients, the
// parameters, the health checks; handed to the consumer. Throws HealthStop on NaN/Inf.
void Trainer::captureAndBackward(ForwardCapture& fc, torch::Tensor& logits, torch::Tensor& loss, const StepInfo& info,
                                 const torch::Tensor& y) {
    const int64_t stepNo = info.step;
    Snapshot s;
    s.step = stepNo;
    s.epoch = m_epoch;
    s.loss = info.loss;
    s.accuracy = info.accuracy;
    s.learningRate = m_lr;
    s.labels = y.device().is_cpu() ? y : y.to(torch::kCPU);
    const size_t L = fc.activations.size();
    s.layers.resize(L);
    // Copy mode: activations and their gradients go into one reused buffer (the one copy); the originals
    // are dropped before the backward pass and gradients are copied as the backward pass produces them,
    // so the step holds no more memory than an uncaptured one and the buffer's pages are not faulted in
    // again. Move mode: the tensors themselves (no copy), alive until the consumer returns.
    const bool copy = m_options.snapshotCopy;
    float* base = nullptr;
    if (copy) {
        int64_t total = 0;
        for (const auto& [name, act] : fc.activations)
            total += 2 * act.numel();
        if (!m_arena.defined() || m_arena.numel() < total || m_arena.use_count() > 1)
            m_arena = torch::empty({std::max<int64_t>(total, 1)}, torch::kFloat32);
        base = m_arena.data_ptr<float>();
    }
    std::vector<char> actFinite(L, 1), gradFinite(L, 1), gradSeen(L, 0);
    int64_t offset = 0;
    for (size_t i = 0; i < L; ++i) {
        auto& [name, act] = fc.activations[i];
        LayerSnapshot& l = s.layers[i];
        l.name = std::move(name);
        const int bd = fc.batchDim(i); // sequence-first tensors are stored batch first
        const torch::Tensor bf = batchFirst(act.detach(), bd);
        l.shape.assign(bf.sizes().begin() + (bf.dim() > 0 ? 1 : 0), bf.sizes().end());
        const int64_t rows = bf.dim() > 0 ? bf.size(0) : 1, count = bf.numel();
        const int64_t cols = count / std::max<int64_t>(rows, 1);
        float* g = nullptr;
        if (copy) {
            float* a = base + offset;
            g = a + count;
            offset += 2 * count;
            actFinite[i] = copyChecked(bf, a);
            l.activation = arenaView(m_arena, a, rows, cols);
        } else {
            l.activation = flatten2d(bf);
            actFinite[i] = allFinite(l.activation);
        }
        onGradient(fc, i, [&, i, g, rows, cols, bd](const torch::Tensor& grad) {
            gradSeen[i] = 1;
            if (g) {
                gradFinite[i] = copyChecked(batchFirst(grad, bd), g);
                s.layers[i].gradient = arenaView(m_arena, g, rows, cols);
            } else {
                s.layers[i].gradient = flatten2d(batchFirst(grad, bd));
                gradFinite[i] = allFinite(s.layers[i].gradient);
            }
        });
        act = torch::Tensor();
    }
    fc = ForwardCapture();
    logits = torch::Tensor();
    loss.backward();
    loss = torch::Tensor();

    const std::vector<int32_t>& paramLayer = paramLayers(s.layers);
    std::vector<torch::Tensor> values = copyParameters(m_params); // the one copy
    s.params.resize(m_params.size());
    for (size_t i = 0; i < m_params.size(); ++i) {
        ParamSnapshot& p = s.params[i];
        p.name = m_paramNames[i];
        p.layer = paramLayer[i];
        p.value = std::move(values[i]);
        if (m_params[i].grad().defined()) p.grad = hostFloat(m_params[i].grad());
    }
    s.health = snapshotHealth(s, actFinite, gradSeen, gradFinite);
    {
        std::lock_guard<std::mutex> lk(m_mutex);
        m_health = s.health;
    }
    const bool healthy = s.health.ok();
    const std::string why = s.health.describe();
    m_consumer(s);
    if (!healthy)
        throw HealthStop("training of '" + m_model.name() + "' stopped at step " +
                         std::to_string(stepNo) + ": " + why);
}

StepInfo Trainer::runStepImpl() {
    const auto [x, y] = nextBatch();
    const int64_t b = x.size(0);
    const int64_t stepNo = m_step + 1;
    const bool capture = m_consumer && m_options.captureEvery > 0 && stepNo % m_options.captureEvery == 0;

    m_model.setTraining(true);
    // Fresh gradient tensors every step (set to none rather than zeroed), so a snapshot can take them.
    for (auto& p : m_params)
        p.mutable_grad().reset();

    ForwardCapture fc;
    torch::Tensor logits;
    if (capture) {
        fc = m_model.forwardCapture(x);
        logits = fc.output;
    } else {
        logits = m_model.forward(x);
    }
    StepInfo info;
    auto objective = objectiveLoss(logits, y, m_options.objective, &info.objective);
    if (!objective) throw ObjectiveMismatch("model '" + m_model.name() + "': " + objective.error().message);
    torch::Tensor loss = std::move(objective.value());
    info.step = stepNo;
    info.epoch = m_epoch;
    info.learningRate = m_lr;
    info.loss = loss.item<double>();
    const bool labelled = y.numel() > 0 && y.min().item<int64_t>() >= 0 && logits.dim() == 2;
    info.accuracy = labelled ? double(logits.detach().argmax(1).eq(y).sum().item<int64_t>()) / double(b) : NAN;
    if (!std::isfinite(info.loss)) {
        HealthReport h = diagnose(x, capture ? &fc : nullptr);
        {
            std::lock_guard<std::mutex> lk(m_mutex);
            m_health = h;
        }
        throw HealthStop("training of '" + m_model.name() + "' stopped at step " + std::to_string(stepNo) +
                         ": " + h.describe());
    }

    if (capture) {
        captureAndBackward(fc, logits, loss, info, y);
        info.captured = true;
    } else {
        loss.backward();
    }
    m_optimizer->step();
    m_step = stepNo;
    m_stepsDone.store(stepNo);

    if (m_options.evalEvery > 0 && stepNo % m_options.evalEvery == 0) {
        auto r = evaluate(m_model, m_valInputs, m_valLabels, m_options.batchSize);
        if (r) {
            info.evaluated = true;
            info.valLoss = r->loss;
            info.valAccuracy = r->accuracy;
        }
        m_model.setTraining(true);
    }
    if (m_stepCallback) m_stepCallback(info);
    return info;
}

const std::vector<int32_t>& Trainer::paramLayers(const std::vector<LayerSnapshot>& layers) {
    // Cached: the captured layers of a model are the same from step to step.
    bool same = m_paramLayerNames.size() == layers.size();
    for (size_t i = 0; same && i < layers.size(); ++i)
        same = m_paramLayerNames[i] == layers[i].name;
    if (same && m_paramLayer.size() == m_params.size()) return m_paramLayer;
    m_paramLayerNames.clear();
    for (const auto& l : layers)
        m_paramLayerNames.push_back(l.name);
    std::map<std::string, int32_t> layerOfModule; // first captured layer that uses each module
    for (const auto& li : m_layerInfo) {
        if (li.module.empty() || layerOfModule.count(li.module)) continue;
        for (size_t i = 0; i < layers.size(); ++i)
            if (layers[i].name == li.name) {
                layerOfModule[li.module] = static_cast<int32_t>(i);
                break;
            }
    }
    m_paramLayer.assign(m_params.size(), -1);
    for (size_t i = 0; i < m_params.size(); ++i) {
        auto it = layerOfModule.find(m_paramModule[i]);
        if (it != layerOfModule.end()) m_paramLayer[i] = it->second;
    }
    return m_paramLayer;
}

Expected<StepInfo> Trainer::step() {
    {
        std::lock_guard<std::mutex> lk(m_mutex);
        if (m_thread.joinable() && (m_state == TrainerState::Running || m_state == TrainerState::Paused))
            return makeError(ErrorKind::Usage, "step(): the background thread is training");
    }
    auto r = runStep();
    std::lock_guard<std::mutex> lk(m_mutex);
    if (r) m_latest = *r;
    return r;
}

Expected<EvalResult> Trainer::evaluateValidation() {
    return evaluate(m_model, m_valInputs, m_valLabels, m_options.batchSize);
}

// ---------------------------------------------------------------------------------------------------------
// Background thread.

Status Trainer::start(bool paused) {
    std::lock_guard<std::mutex> lk(m_mutex);
    if (m_thread.joinable()) return makeError(ErrorKind::Usage, "the trainer was already started");
    m_pauseRequested = paused;
    m_stopRequested = false;
    m_state = paused ? TrainerState::Paused : TrainerState::Running;
    m_thread = std::thread([this] { threadMain(); });
    return Status::ok();
}

void Trainer::threadMain() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(m_mutex);
            for (;;) {
                if (m_stopRequested) {
                    m_state = TrainerState::Stopped;
                    m_cv.notify_all();
                    return;
                }
                if (!m_pauseRequested) {
                    m_state = TrainerState::Running;
                    break;
                }
                if (m_stepRequests > 0) {
                    --m_stepRequests;
                    m_state = TrainerState::Paused;
                    break;
                }
                m_state = TrainerState::Paused;
                m_busy = false;
                m_cv.notify_all();
                m_cv.wait(lk);
            }
            if (m_step >= m_planned) {
                m_state = TrainerState::Finished;
                m_busy = false;
                m_cv.notify_all();
                return;
            }
            m_busy = true;
        }
        auto r = runStep();
        std::lock_guard<std::mutex> lk(m_mutex);
        m_busy = false;
        if (!r) {
            m_result = r.status();
            m_state = TrainerState::Failed;
            TS_LOG_ERROR("%s", r.error().message.c_str());
            m_cv.notify_all();
            return;
        }
        m_latest = *r;
        m_cv.notify_all();
    }
}

void Trainer::pause() {
    std::lock_guard<std::mutex> lk(m_mutex);
    m_pauseRequested = true;
    m_cv.notify_all();
}

void Trainer::resume() {
    std::lock_guard<std::mutex> lk(m_mutex);
    m_pauseRequested = false;
    m_cv.notify_all();
}

void Trainer::requestStep(int64_t count) {
    std::lock_guard<std::mutex> lk(m_mutex);
    m_stepRequests += std::max<int64_t>(count, 0);
    m_cv.notify_all();
}

void Trainer::stop() {
    {
        std::lock_guard<std::mutex> lk(m_mutex);
        m_stopRequested = true;
        m_cv.notify_all();
    }
    if (m_thread.joinable() && m_thread.get_id() != std::this_thread::get_id()) m_thread.join();
}

Status Trainer::wait() {
    if (m_thread.joinable() && m_thread.get_id() != std::this_thread::get_id()) m_thread.join();
    std::lock_guard<std::mutex> lk(m_mutex);
    return m_result;
}

void Trainer::waitIdle() {
    std::unique_lock<std::mutex> lk(m_mutex);
    m_cv.wait(lk, [&] {
        if (!m_thread.joinable()) return true;
        if (m_state == TrainerState::Finished || m_state == TrainerState::Stopped ||
            m_state == TrainerState::Failed)
            return true;
        return m_state == TrainerState::Paused && m_pauseRequested && m_stepRequests == 0 && !m_busy;
    });
}

void Trainer::setLearningRate(double lr) {
    std::lock_guard<std::mutex> lk(m_mutex);
    if (lr > 0.0 && std::isfinite(lr)) m_pendingLr = lr;
}

TrainerState Trainer::state() const {
    std::lock_guard<std::mutex> lk(m_mutex);
    return m_state;
}

Status Trainer::result() const {
    std::lock_guard<std::mutex> lk(m_mutex);
    return m_result;
}

StepInfo Trainer::latest() const {
    std::lock_guard<std::mutex> lk(m_mutex);
    return m_latest;
}

HealthReport Trainer::lastHealth() const {
    std::lock_guard<std::mutex> lk(m_mutex);
    return m_health;
}

void Trainer::setStepCallback(StepCallback cb) {
    m_stepCallback = std::move(cb);
}
void Trainer::setSnapshotConsumer(SnapshotConsumer cb) {
    m_consumer = std::move(cb);
}

} // namespace ts::capture
