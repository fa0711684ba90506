// Trainer and evaluator: trains a Model on a DataSplit (SGD or Adam) on the calling thread or in a background
// thread that a UI pauses, resumes, steps and stops; every K steps it hands a Snapshot of activations,
// gradients and weights to a consumer, and it checks the numbers' health (NaN/Inf and where they start).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/capture/dataset.hpp"
#include "engine/capture/device.hpp"
#include "engine/capture/health.hpp"
#include "engine/capture/model.hpp"

struct CUstream_st; // the type behind cudaStream_t

namespace ts::capture {

enum class OptimizerKind { Sgd, Adam };
std::optional<OptimizerKind> parseOptimizer(const std::string& name); // "sgd" | "adam"

// What the backward pass differentiates. Auto: cross-entropy against the labels when the data has them (>= 0)
// and the output is [N, classes]; without labels, cross-entropy against the model's own predicted class (the
// gradient a saliency map of the prediction uses); for outputs that are not [N, classes] (autoencoders,
// generators, regressors, sequence outputs), half the mean square of the output.
enum class Objective { Auto, CrossEntropy, PredictedClass, MeanSquare };
std::optional<Objective> parseObjective(const std::string& name); // auto, cross-entropy, predicted-class, mean-square
// The loss of `output` under `objective` (Auto resolved as above); `used` names the rule applied. Errors
// (ErrorKind::Usage) when cross-entropy is asked of an output that is not [N, C] or of unlabelled data.
Expected<torch::Tensor> objectiveLoss(const torch::Tensor& output, const torch::Tensor& labels, Objective objective,
                                      std::string* used = nullptr);

struct TrainOptions {
    Objective objective = Objective::Auto;
    OptimizerKind optimizer = OptimizerKind::Adam;
    double learningRate = 1e-3;
    double momentum = 0.9; // SGD only
    double weightDecay = 0.0;
    int64_t batchSize = 64;
    int64_t epochs = 1;       // passes over the training set (shuffled each epoch)
    int64_t maxSteps = 0;     // > 0: train exactly this many steps (epochs then only label progress)
    int64_t captureEvery = 0; // K: snapshot steps K, 2K, ... (1 = every step); 0 = never
    int64_t evalEvery = 0;    // evaluate on the fixed validation batch every N steps; 0 = never
    int64_t evalBatch = 512;  // the fixed validation batch: the first evalBatch validation samples, evaluated
                              // batchSize at a time (a batch sized for training fits a forward pass)
    uint64_t seed = 0;        // shuffling order
    bool shuffle = true;      // false: samples in dataset order (tests)
    // Snapshot tensors: false (default) hands over the tensors themselves, no copy, alive through the
    // backward pass; true copies activations and their gradients into a buffer reused from snapshot to
    // snapshot and releases the originals before the backward pass (peak memory as without capture, no fresh
    // pages to fault in; cheaper for TorchScript models with large intermediate maps, see
    // docs/PERFORMANCE.md).
    bool snapshotCopy = false;
    // Where the model, its optimiser state and each batch live (--device; decideDevice() in device.hpp). On a
    // CUDA device the snapshot's activations and gradients stay there (a consumer reduces them on the device),
    // its labels and parameters are host copies, and snapshotCopy is ignored (the tensors are handed over).
    torch::Device device = torch::kCPU;
};

// What this LibTorch build and its CUDA runtime offer (device.hpp's decideDevice takes it).
CudaAvailability libtorchCuda();
// A --device spelling decided against this LibTorch (parseDeviceFlag, then decideDevice with libtorchCuda()).
Expected<TrainingDevice> chooseTrainingDevice(const std::string& flag);
// The LibTorch device of a decision (TrainOptions::device).
torch::Device torchDevice(const TrainingDevice& device);
// The stream whose work made tensors on `device` (stats::TensorView::producer): LibTorch's current stream
// there. The trainer sets none, so it is the legacy default stream (cudaStreamLegacy); on any other stream
// the device is synchronised and nullptr ("complete already") returned. nullptr for the CPU.
CUstream_st* producerStream(const torch::Device& device);

// What each step reports. Steps count from 1.
struct StepInfo {
    int64_t step = 0;
    int64_t epoch = 0; // 0-based epoch this step belongs to
    double loss = 0.0;
    double accuracy = 0.0; // on this step's training batch
    double learningRate = 0.0;
    bool captured = false;  // a snapshot was handed to the consumer
    bool evaluated = false; // valLoss/valAccuracy are from this step
    double valLoss = 0.0, valAccuracy = 0.0;
    std::string objective; // the loss rule applied (objectiveLoss's `used`)
};

// One layer of a snapshot. activation and gradient are [batch x neurons] contiguous float32 on the training
// device (TrainOptions::device; neurons in
// PyTorch's row-major order of the per-sample `shape`); gradient is d(mean batch loss)/d(activation),
// undefined when the activation does not depend on any trainable parameter.
struct LayerSnapshot {
    std::string name;
    std::vector<int64_t> shape;
    torch::Tensor activation;
    torch::Tensor gradient;
};

// One parameter: its value before this step's update (a copy) and its gradient (moved), contiguous float32, in
// host memory (copied there when training on a CUDA device).
struct ParamSnapshot {
    std::string name;
    int32_t layer = -1; // index into Snapshot::layers of the layer using it, -1 if none
    torch::Tensor value;
    torch::Tensor grad;
};

// Everything captured at one step, each tensor copied at most once: activations and their gradients moved,
// or (TrainOptions::snapshotCopy) copied into one buffer that the trainer reuses for the next snapshot unless
// the consumer still holds a view of it; weights copied into one buffer (the optimizer updates the live ones
// in place); weight gradients moved. Released after the consumer returns; a consumer keeps only what it
// keeps.
struct Snapshot {
    int64_t step = 0, epoch = 0;
    double loss = 0.0, accuracy = 0.0, learningRate = 0.0;
    torch::Tensor labels;              // [batch] int64, host memory
    std::vector<LayerSnapshot> layers; // forward order
    std::vector<ParamSnapshot> params; // named_parameters() order
    HealthReport health;
};

using StepCallback = std::function<void(const StepInfo&)>;
using SnapshotConsumer = std::function<void(Snapshot&)>;

// Health checks (health.cpp).
// True when every element is finite (a scan of float32 words for contiguous CPU float32, a sum confirmed by
// isfinite() otherwise).
bool allFinite(const torch::Tensor& t);
// Copies t (any layout and floating dtype) into dst as a contiguous float32 row-major block; returns whether
// every element is finite (one pass for contiguous float32).
bool copyChecked(const torch::Tensor& t, float* dst);
// Loss, activations (forward order), activation gradients (backward order), weights, weight gradients.
HealthReport checkHealth(const Snapshot& s);
// The same for a snapshot whose activations and gradients were checked while they were copied: per layer,
// whether its activation was finite, whether its gradient was seen and whether it was finite.
HealthReport snapshotHealth(const Snapshot& s, const std::vector<char>& actFinite, const std::vector<char>& gradSeen,
                            const std::vector<char>& gradFinite);

struct EvalResult {
    double loss = 0.0;
    double accuracy = 0.0;
    int64_t samples = 0;
};
// Mean cross-entropy and accuracy in eval mode without gradients, `batch` samples per forward pass; the
// model's training mode is restored. Errors name the shapes.
Expected<EvalResult> evaluate(Model& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                              int64_t batch = 1024);

enum class TrainerState { Idle, Running, Paused, Finished, Stopped, Failed };
const char* trainerStateName(TrainerState s);

// Contract:
// - Callbacks run on the thread that trains (the caller of step(), or the background thread); the model and
//   the data belong to the trainer while it trains (a Model is used from one thread at a time).
// - pause/resume/requestStep/stop/setLearningRate and the getters are safe from any thread (e.g. a UI).
// - A step whose loss is NaN/Inf, or whose snapshot is unhealthy, stops training with ErrorKind::Failed and a
//   message naming the step and the first layer where the numbers went bad; lastHealth() has the details.
class Trainer {
  public:
    static Expected<std::unique_ptr<Trainer>> create(Model& model, DataSplit data, TrainOptions options);
    ~Trainer(); // stops and joins the background thread

    Trainer(const Trainer&) = delete;
    Trainer& operator=(const Trainer&) = delete;

    void setStepCallback(StepCallback cb);         // before start()
    void setSnapshotConsumer(SnapshotConsumer cb); // before start(); without one nothing is captured

    // One training step on the calling thread (not while the background thread runs).
    Expected<StepInfo> step();
    // Loss and accuracy on the fixed validation batch.
    Expected<EvalResult> evaluateValidation();

    // Background training until the planned steps are done (or stop()).
    Status start(bool paused = false);
    void pause();
    void resume();
    void requestStep(int64_t count = 1); // while paused: run `count` more steps, then stay paused
    void stop();                         // ends the background thread after the current step and joins it
    Status wait();                       // joins the background thread; its result
    void waitIdle();                     // until paused with no step pending, or the thread ended
    void setLearningRate(double lr);     // applied from the next step on

    TrainerState state() const;
    Status result() const;   // error of a failed run
    StepInfo latest() const; // last completed step
    HealthReport lastHealth() const;
    int64_t stepsDone() const { return m_stepsDone.load(); }
    int64_t plannedSteps() const { return m_planned; }
    int64_t stepsPerEpoch() const { return m_stepsPerEpoch; }

  private:
    Trainer(Model& model, DataSplit data, TrainOptions options);
    Expected<StepInfo> runStep();
    Error outOfMemory(const std::exception& e) const;
    Error stepFailed(const std::exception& e) const;
    StepInfo runStepImpl();
    std::pair<torch::Tensor, torch::Tensor> nextBatch();
    void captureAndBackward(ForwardCapture& fc, torch::Tensor& logits, torch::Tensor& loss, const StepInfo& info,
                            const torch::Tensor& y);
    HealthReport diagnose(const torch::Tensor& x, const ForwardCapture* fc);
    void threadMain();
    const std::vector<int32_t>& paramLayers(const std::vector<LayerSnapshot>& layers);

    Model& m_model;
    DataSplit m_data;
    TrainOptions m_options;
    std::vector<std::string> m_paramNames;
    std::vector<torch::Tensor> m_params;
    std::vector<std::string> m_paramModule; // module path of each parameter
    std::vector<Model::LayerInfo> m_layerInfo;
    std::vector<std::string> m_paramLayerNames; // cache of paramLayers()
    std::vector<int32_t> m_paramLayer;
    torch::Tensor m_arena; // snapshot buffer, reused while no consumer keeps a view of it
    std::unique_ptr<torch::optim::Optimizer> m_optimizer;
    torch::Tensor m_valInputs, m_valLabels;
    StepCallback m_stepCallback;
    SnapshotConsumer m_consumer;

    // Data order.
    torch::Tensor m_order;
    int64_t m_cursor = 0;
    int64_t m_epoch = -1;
    int64_t m_stepsPerEpoch = 0;
    int64_t m_planned = 0;
    int64_t m_step = 0; // completed steps (trainer thread)
    std::atomic<int64_t> m_stepsDone{0};
    std::string m_failure; // set by runStepImpl on a health stop

    // Control, guarded by m_mutex.
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    std::thread m_thread;
    TrainerState m_state = TrainerState::Idle;
    bool m_pauseRequested = false, m_stopRequested = false, m_busy = false;
    int64_t m_stepRequests = 0;
    std::optional<double> m_pendingLr;
    double m_lr = 0.0;
    Status m_result;
    StepInfo m_latest;
    HealthReport m_health;
};

} // namespace ts::capture
