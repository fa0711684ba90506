// The model contract every other module relies on: a TorchScript file or a built-in C++ model behind one
// interface. (Contract fixed by the foundation so capture, landscape and the app can be built in parallel.)
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "engine/core/error.hpp"

namespace ts::capture {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// One forward pass with every intermediate activation of interest, in forward order, keyed by module
// name as PyTorch spells it ("features.0", "layer1.0.conv1", ...). `output` is the model's own output.
struct ForwardCapture {
    torch::Tensor output;
    NamedTensors activations;
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
};

// Loads "builtin:mlp", "builtin:cnn" (see builtin models) or a TorchScript .pt path. Errors name the file.
// `inputShape` (per sample, e.g. {2} or {1, 28, 28}) sizes built-in models; TorchScript models ignore it.
Expected<std::unique_ptr<Model>> loadModel(const std::string& spec, const std::vector<int64_t>& inputShape,
                                           int64_t numClasses);

} // namespace ts::capture
