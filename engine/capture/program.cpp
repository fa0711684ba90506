// The reference executor of a Program: one LibTorch call per op.
#include "engine/capture/program.hpp"

#include <stdexcept>

namespace ts::capture {

const char* opKindName(ProgramOp::Kind kind) {
    using K = ProgramOp::Kind;
    switch (kind) {
    case K::Conv2d: return "conv2d";
    case K::BatchNorm: return "batch_norm";
    case K::Linear: return "linear";
    case K::Relu: return "relu";
    case K::LeakyRelu: return "leaky_relu";
    case K::Hardtanh: return "hardtanh";
    case K::Sigmoid: return "sigmoid";
    case K::Tanh: return "tanh";
    case K::Gelu: return "gelu";
    case K::Silu: return "silu";
    case K::Hardswish: return "hardswish";
    case K::Hardsigmoid: return "hardsigmoid";
    case K::Mul: return "mul";
    case K::Scale: return "scale";
    case K::Permute: return "permute";
    case K::LayerNorm: return "layer_norm";
    case K::MaxPool2d: return "max_pool2d";
    case K::AvgPool2d: return "avg_pool2d";
    case K::AdaptiveAvgPool2d: return "adaptive_avg_pool2d";
    case K::Mean: return "mean";
    case K::Add: return "add";
    case K::Cat: return "cat";
    case K::Flatten: return "flatten";
    case K::Reshape: return "reshape";
    case K::Transpose: return "transpose";
    case K::ChunkPart: return "chunk";
    case K::Identity: return "identity";
    }
    return "?";
}

torch::Tensor runOp(const ProgramOp& op, const std::vector<torch::Tensor>& in, const torch::Tensor& weight,
                    const torch::Tensor& bias) {
    using K = ProgramOp::Kind;
    const torch::Tensor& x = in.at(0);
    switch (op.kind) {
    case K::Conv2d:
        return torch::conv2d(x, weight, bias, op.stride, op.padding, op.dilation, op.groups);
    case K::BatchNorm:
        return torch::batch_norm(x, weight, bias, op.runningMean, op.runningVar, false, 0.0, op.eps, false);
    case K::Linear:
        return torch::linear(x, weight, bias);
    case K::Relu:
        return torch::relu(x);
    case K::LeakyRelu:
        return torch::leaky_relu(x, op.alpha);
    case K::Hardtanh:
        return torch::hardtanh(x, op.lo, op.hi);
    case K::Sigmoid:
        return torch::sigmoid(x);
    case K::Tanh:
        return torch::tanh(x);
    case K::Gelu:
        return torch::gelu(x, op.approximate);
    case K::Silu:
        return torch::silu(x);
    case K::Hardswish:
        return torch::hardswish(x);
    case K::Hardsigmoid:
        return torch::hardsigmoid(x);
    case K::Mul:
        return x * in.at(1);
    case K::Scale:
        return x * weight;
    case K::Permute:
        return x.permute(op.shape);
    case K::LayerNorm:
        return torch::layer_norm(x, op.shape, weight, bias, op.eps);
    case K::MaxPool2d:
        return torch::max_pool2d(x, op.kernel, op.stride, op.padding, op.dilation, op.ceilMode);
    case K::AvgPool2d:
        return torch::avg_pool2d(x, op.kernel, op.stride, op.padding, op.ceilMode, op.countIncludePad);
    case K::AdaptiveAvgPool2d:
        return torch::adaptive_avg_pool2d(x, op.shape);
    case K::Mean:
        return x.mean(op.shape, op.keepdim);
    case K::Add:
        return op.alpha == 1.0 ? x + in.at(1) : torch::add(x, in.at(1), op.alpha);
    case K::Cat:
        return torch::cat(in, op.dim);
    case K::Flatten:
        return x.flatten(op.dim, op.endDim);
    case K::Reshape: {
        std::vector<int64_t> shape = op.shape;
        size_t ref = 0;
        for (auto& s : shape) {
            if (s == ProgramOp::kBatch) {
                s = x.size(0);
            } else if (s == ProgramOp::kSizeOf) {
                const auto& r = op.sizeOf.at(ref++);
                s = in.at(static_cast<size_t>(r[0])).size(r[1]) / r[2];
            }
        }
        return x.reshape(shape);
    }
    case K::Transpose:
        return x.transpose(op.dim, op.endDim);
    case K::ChunkPart:
        return x.chunk(op.groups, op.dim).at(static_cast<size_t>(op.endDim));
    case K::Identity:
        return x;
    }
    throw std::logic_error("unknown program op");
}

torch::Tensor runProgram(const Program& program, const torch::Tensor& input,
                         const std::function<torch::Tensor(const std::string&)>& param) {
    std::vector<torch::Tensor> values(static_cast<size_t>(program.valueCount));
    values[0] = input;
    std::vector<torch::Tensor> in;
    for (const auto& op : program.ops) {
        in.clear();
        for (int id : op.inputs)
            in.push_back(values.at(static_cast<size_t>(id)));
        const torch::Tensor w = op.weight.empty() ? torch::Tensor() : param(op.weight);
        const torch::Tensor b = op.bias.empty() ? torch::Tensor() : param(op.bias);
        values.at(static_cast<size_t>(op.output)) = runOp(op, in, w, b);
    }
    return values.at(static_cast<size_t>(program.output));
}

} // namespace ts::capture
