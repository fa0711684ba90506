// The model contract every other module relies on: a TorchScript file or a built-in C++ model behind one
// interface. (Contract fixed by the foundation so capture, landscape and the app can be built in parallel.)
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/program.hpp"
#include "engine/core/error.hpp"

namespace ts::capture {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// One forward pass with every intermediate activation of interest, in forward order, keyed by module
// name as PyTorch spells it ("features.0", "layer1.0.conv1", ...). `output` is the model's own output.
struct ForwardCapture {
    torch::Tensor output;
    NamedTensors activations;
    // Per activation, the dimension that holds the batch: 0, or 1 for sequence-first tensors (an LSTM's
    // [T, N, H] output, its [layers, N, H] h_n). Empty means 0 for all. batchFirst() moves it to the front.
    std::vector<int> batchDims;
    int batchDim(size_t i) const { return i < batchDims.size() ? batchDims[i] : 0; }
    // Layers computed inside a loop (a prim::Loop body: an RNN cell stepped over time, a block applied k
    // times): the activation is every iteration's tensor stacked after the batch ([N, iterations, ...]), a
    // plain tensor made after the forward pass. `parts` then holds the iterations' tensors as autograd knows
    // them, so gradients can be collected from them (onGradient). Per activation; missing or empty: none.
    struct LoopParts {
        std::vector<torch::Tensor> tensors;
        std::vector<int> batchDims;
    };
    std::vector<LoopParts> parts;
};

// Calls `fn` once the backward pass has produced the gradient of activation `i` of `fc`, in that activation's
// layout (its batchDim). A loop layer's gradient is its iterations' gradients stacked the same way, handed
// over when the last one arrives. Nothing is registered when the activation does not require a gradient.
void onGradient(const ForwardCapture& fc, size_t i, std::function<void(const torch::Tensor&)> fn);

// `t` with its batch dimension first (a view; no copy).
inline torch::Tensor batchFirst(const torch::Tensor& t, int batchDim) {
    return batchDim == 0 ? t : t.transpose(0, batchDim);
}

// How much of a model capture sees: parameters of modules whose outputs are captured, over parameters of
// modules that forward() runs. `missing` names each module whose output could not be captured and why.
struct CaptureCoverage {
    int64_t params = 0;   // parameters used by forward()
    int64_t captured = 0; // of those, owned by modules whose outputs are captured
    int64_t unused = 0;   // parameters of modules forward() never calls (not counted above)
    std::vector<std::string> missing;
    double fraction() const { return params > 0 ? double(captured) / double(params) : 1.0; }
};

// Contract:
// - namedParameters()/namedBuffers() return the live tensors (not copies) in the order PyTorch's
//   model.named_parameters()/named_buffers() would, so per-parameter lists line up with files written by
//   the Python loss-landscape scripts. Writing into them (under torch::NoGradGuard) changes the model.
// - forward() takes inputs as DESIGN.md says: images [N, C, H, W] float32 in [0, 1], toy sets [N, 2];
//   it returns logits [N, classes].
// - A Model is used from one thread at a time.
class Model {
  public:
    virtual ~Model() = default;
    virtual std::string name() const = 0;
    virtual torch::Tensor forward(const torch::Tensor& input) = 0;
    virtual ForwardCapture forwardCapture(const torch::Tensor& input) = 0;
    virtual NamedTensors namedParameters() = 0;
    virtual NamedTensors namedBuffers() = 0;
    virtual void setTraining(bool on) = 0;

    // Added by the capture module; the defaults keep other implementations (test fakes) compiling.
    // How each activation of forwardCapture() connects: one entry per activation name, in forward order.
    struct LayerInfo {
        std::string name;        // as in ForwardCapture::activations
        std::string type;        // module class ("Linear", "Conv2d") or op ("relu", "add")
        std::string module;      // module path whose own parameters this layer uses ("" when none)
        std::vector<int> inputs; // indices into this list of the layers feeding it; -1 is the model input
        // The op that computed the value ("add", "relu", "_convolution"), when known: a module whose output is
        // an op of its own forward() (InvertedResidual's `x + self.conv(x)`) has its class as `type`.
        std::string op;
    };
    // Empty when unknown: describeNetwork() then chains the activations in forward order.
    virtual std::vector<LayerInfo> layerInfo() { return {}; }
    virtual bool isTraining() const { return false; }
    // Where the parameters and buffers live. toDevice() moves them there (the trainer's --device; forward()
    // then takes inputs on that device). The defaults: the CPU only, an error naming the model otherwise.
    virtual torch::Device device() const { return torch::kCPU; }
    virtual Status toDevice(const torch::Device& target) {
        if (target.is_cpu()) return Status::ok();
        return makeError(ErrorKind::Usage, "model '" + name() + "' cannot move to " + target.str());
    }
    // True when the model's intermediate activations could not be exposed (forwardCapture() then returns
    // the output as the only activation, named "output").
    virtual bool outputOnly() const { return false; }
    // Parameters owned by captured layers; the default (built-in and test models) captures everything.
    // Runs the module at `path` ("layer1.0.conv1") on its own, on `input`, with the named parameters of that
    // module ("weight", "bias") replaced by `overrides` for this call only (the live parameters are not
    // touched, so graphs that saved them stay valid). For LRP rules that need a layer with modified weights.
    // The default: not supported (an error naming the model).
    virtual Expected<torch::Tensor> callModule(const std::string& path, const torch::Tensor& input,
                                               const NamedTensors& overrides = {}) {
        (void)input;
        (void)overrides;
        return makeError(ErrorKind::Usage, "model '" + name() + "' cannot run its module '" + path + "' alone");
    }
    // The whole model's forward() on `input` while module `path`'s parameters are replaced by `overrides` (the
    // live parameters untouched, restored after the call): ablations (a layer's output replaced by its mean
    // through weight 0 and bias = mean). The default: not supported.
    virtual Expected<torch::Tensor> forwardOverriding(const std::string& path, const NamedTensors& overrides,
                                                      const torch::Tensor& input) {
        (void)overrides;
        (void)input;
        return makeError(ErrorKind::Usage, "model '" + name() + "' cannot replace the parameters of '" + path + "'");
    }
    // The whole model's forward() on `input` with the output of captured layer `layer` (a name of
    // forwardCapture()'s activations) replaced by `value` broadcast to its shape (in its own layout, see
    // batchDims), for this call only: ablations of any layer, with or without parameters (a ReLU, a residual add, a Transformer block).
    // Layers computed inside a loop cannot be replaced. The default: not supported.
    virtual Expected<torch::Tensor> forwardReplacing(const std::string& layer, const torch::Tensor& value,
                                                     const torch::Tensor& input) {
        (void)value;
        (void)input;
        return makeError(ErrorKind::Usage, "model '" + name() + "' cannot replace the output of '" + layer + "'");
    }
    // forward() as a flat Program of layer ops (program.hpp) in the model's current training/evaluation mode,
    // or why it cannot be written as one (an op outside the Program's list, control flow on values). The
    // default: none.
    virtual Expected<Program> inferenceProgram() {
        return makeError(ErrorKind::Usage, "model '" + name() + "' does not describe its forward pass as layer ops");
    }
    virtual CaptureCoverage coverage() {
        CaptureCoverage c;
        for (const auto& [name, p] : namedParameters())
            c.params += p.numel();
        c.captured = c.params;
        return c;
    }
};

// Loads "builtin:mlp", "builtin:cnn" (see builtin models) or a TorchScript .pt path. Errors name the file.
// `inputShape` (per sample, e.g. {2} or {1, 28, 28}) sizes built-in models; TorchScript models ignore it.
Expected<std::unique_ptr<Model>> loadModel(const std::string& spec, const std::vector<int64_t>& inputShape,
                                           int64_t numClasses);

// Built-in models ("builtin:" may be left out when no file of that name exists), initialised from torch's
// global generator (seed it with torch::manual_seed), each equal to this PyTorch module, so that names and
// order of named_parameters() match:
// - "builtin:mlp[:W1,W2,...]" (default widths 64,32), D = product of inputShape:
//     nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(D, W1), relu1=nn.ReLU(),
//                               fc2=nn.Linear(W1, W2), relu2=nn.ReLU(), ..., out=nn.Linear(Wk, numClasses)))
// - "builtin:cnn[:C1,C2,...]" (default channels 8,16), inputShape [C, H, W] with H, W divisible by 2^k:
//     conv1=nn.Conv2d(C, C1, 3, padding=1), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2), ... for each Ci, then
//     flatten=nn.Flatten(), fc1=nn.Linear(Ck * H/2^k * W/2^k, 64), relu_fc=nn.ReLU(), out=nn.Linear(64,
//     numClasses)
// forwardCapture() returns every layer's output except flatten's, named as above.
// TorchScript files: every module call and every activation-like op (relu, add, cat, pooling, ...) of
// forward() whose output is [batch, ...] is exposed; module outputs keep the module's name, ops are named
// "<module>.<op>" ("layer1.0.add"), repeats get "_1", "_2" as torch.fx names them. When that graph surgery
// fails, the model still loads and trains; forwardCapture() then returns only the output (a warning says
// why).

} // namespace ts::capture
