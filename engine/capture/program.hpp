// A model's forward() as a flat list of layer ops over its named parameters: what the loss landscape's
// batched path runs with its own weights per grid point, without touching the model's tensors (so several
// threads can evaluate different weights at once). TorchScript models get one from their forward graph
// (inlined, specialised on the evaluation-mode flags), built-in models from their layer list. Models with an
// op outside the list below have none (the reason names the op).
#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace ts::capture {

struct ProgramOp {
    enum class Kind {
        Conv2d,            // inputs {x}; weight, bias?; stride, padding, dilation, groups
        BatchNorm,         // inputs {x}; weight?, bias?, runningMean, runningVar, eps (evaluation mode)
        Linear,            // inputs {x}; weight, bias?
        Relu,              //
        LeakyRelu,         // alpha = negative slope
        Hardtanh,          // lo, hi (ReLU6 is Hardtanh(0, 6))
        Sigmoid,           //
        Tanh,              //
        Gelu,              // approximate ("none" or "tanh")
        Silu,              //
        Hardswish,         //
        Hardsigmoid,       //
        MaxPool2d,         // kernel, stride, padding, dilation, ceilMode
        AvgPool2d,         // kernel, stride, padding, ceilMode, countIncludePad
        AdaptiveAvgPool2d, // shape = output size
        Mean,              // shape = dims, keepdim
        Add,               // inputs {x, y}: x + alpha * y
        Mul,               // inputs {x, y}: x * y, broadcasting (squeeze-and-excitation gates)
        Scale,             // inputs {x}: x * weight, broadcasting (ConvNeXt's layer scale)
        Permute,           // shape = the permutation
        LayerNorm,         // shape = normalized shape; weight?, bias?, eps
        Cat,               // inputs {...}; dim
        Flatten,           // dim = start, endDim
        Reshape,           // shape, with kBatch for the batch size (the input's first dimension) and kSizeOf
                           // for a size read from an input at run time (sizeOf)
        Transpose,         // swaps dimensions dim and endDim
        ChunkPart,         // x.chunk(groups, dim)[endDim] (ShuffleNet's split into two halves)
        Identity,          // dropout in evaluation mode, contiguous()
    };
    static constexpr int64_t kBatch = INT64_MIN;
    static constexpr int64_t kSizeOf = INT64_MIN + 1;

    Kind kind = Kind::Identity;
    std::vector<int> inputs; // value ids; 0 is the model's input
    int output = 0;          // value id this op defines
    std::string weight, bias; // parameter names as namedParameters() spells them; "" when absent
    torch::Tensor runningMean, runningVar;       // BatchNorm: the live buffers
    std::string runningMeanName, runningVarName; // and their names as namedBuffers() spells them
    double eps = 1e-5, alpha = 1.0, lo = 0.0, hi = 0.0;
    std::vector<int64_t> kernel, stride, padding, dilation, shape;
    // Reshape: one entry per kSizeOf in `shape`, in order: {input index, dimension, divisor}, meaning
    // in[index].size(dimension) / divisor (ShuffleNet's x.view(n, groups, channels // groups, h, w)).
    std::vector<std::array<int64_t, 3>> sizeOf;
    int64_t groups = 1, dim = 1, endDim = -1;
    bool ceilMode = false, countIncludePad = true, keepdim = false;
    std::string approximate = "none";
    std::string where; // the module or op it came from, for messages ("layer1.0.conv1")
};

struct Program {
    std::vector<ProgramOp> ops; // in execution order; each defines a new value
    int output = 0;             // value id of the logits
    int valueCount = 1;         // ids are 0 .. valueCount-1
};

const char* opKindName(ProgramOp::Kind kind);

// Runs one op on its input tensors with the given weight and bias ("" names: undefined tensors).
torch::Tensor runOp(const ProgramOp& op, const std::vector<torch::Tensor>& in, const torch::Tensor& weight,
                    const torch::Tensor& bias);

// Runs the whole program on `input`, reading parameters through `param(name)` (the reference executor).
torch::Tensor runProgram(const Program& program, const torch::Tensor& input,
                         const std::function<torch::Tensor(const std::string&)>& param);

} // namespace ts::capture
