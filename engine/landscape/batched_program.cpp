// The batched grid path for layer programs: per point, weights theta + a*dx + b*dy with BatchNorm folded
// into the convolution before it, then the program's ops over cache-sized sample blocks; points in parallel.
#include "engine/landscape/batched_program.hpp"

#include <algorithm>
#include <optional>
#include <exception>
#include <map>
#include <mutex>

#include "engine/core/thread_pool.hpp"
#include "engine/landscape/batched_kernels.hpp"

namespace ts::landscape {

namespace {

using capture::ProgramOp;

// Bytes of the largest activation of one sample block: big enough for efficient convolutions, small enough
// that a block's activations stay in the core's cache (ResNet-20 on 32x32 inputs: 32 samples).
constexpr int64_t kBlockBytes = 2ll << 20;

} // namespace

std::unique_ptr<SurfaceEvaluator::BatchedProgram>
SurfaceEvaluator::BatchedProgram::fromProgram(capture::Program program, const ParameterSpace& space,
                                              const TensorList& origin, const Directions& dirs,
                                              const EvalSet& data, std::string& reason) {
    torch::NoGradGuard noGrad;
    if (program.ops.empty() || origin.empty()) {
        reason = "the model's layer program is empty";
        return nullptr;
    }
    const auto dtype = origin[0].scalar_type();
    if (dtype != torch::kFloat32 && dtype != torch::kFloat64) {
        reason = "parameters are neither float32 nor float64";
        return nullptr;
    }
    std::map<std::string, int> index;
    for (size_t i = 0; i < space.names.size(); ++i)
        index[space.names[i]] = static_cast<int>(i);
    auto lookup = [&](const std::string& name, int& out) {
        if (name.empty()) return true;
        auto it = index.find(name);
        if (it == index.end()) {
            reason = "parameter '" + name + "' of the layer program is not among the landscape's parameters";
            return false;
        }
        if (origin[static_cast<size_t>(it->second)].scalar_type() != dtype) {
            reason = "parameters mix dtypes";
            return false;
        }
        out = it->second;
        return true;
    };

    auto bp = std::unique_ptr<BatchedProgram>(new BatchedProgram());
    bp->m_program = std::move(program);
    // Own copies of the running statistics: the model's buffers change while it trains (detach()).
    for (auto& op : bp->m_program.ops) {
        if (op.runningMean.defined()) op.runningMean = op.runningMean.detach().clone();
        if (op.runningVar.defined()) op.runningVar = op.runningVar.detach().clone();
    }
    const auto& ops = bp->m_program.ops;
    std::vector<int> uses(static_cast<size_t>(bp->m_program.valueCount), 0);
    for (const auto& op : ops)
        for (int id : op.inputs)
            ++uses.at(static_cast<size_t>(id));
    ++uses.at(static_cast<size_t>(bp->m_program.output));
    // A convolution whose only reader is a BatchNorm takes the BatchNorm into its weights.
    std::vector<bool> absorbed(ops.size(), false);
    for (size_t i = 0; i < ops.size(); ++i) {
        if (absorbed[i]) continue;
        Step step;
        step.op = &ops[i];
        step.output = ops[i].output;
        if (!lookup(ops[i].weight, step.weight) || !lookup(ops[i].bias, step.bias)) return nullptr;
        if (ops[i].kind == ProgramOp::Kind::Conv2d && uses[static_cast<size_t>(ops[i].output)] == 1) {
            for (size_t j = i + 1; j < ops.size(); ++j) {
                const bool reads = std::find(ops[j].inputs.begin(), ops[j].inputs.end(), ops[i].output) !=
                                   ops[j].inputs.end();
                if (!reads) continue;
                if (ops[j].kind == ProgramOp::Kind::BatchNorm && ops[j].runningMean.defined() &&
                    ops[j].runningMean.numel() == origin[static_cast<size_t>(step.weight)].size(0)) {
                    if (!lookup(ops[j].weight, step.bnWeight) || !lookup(ops[j].bias, step.bnBias)) return nullptr;
                    // --dir-type states moves the running statistics too (they are then in the space).
                    if (index.count(ops[j].runningMeanName) && !lookup(ops[j].runningMeanName, step.bnMean))
                        return nullptr;
                    if (index.count(ops[j].runningVarName) && !lookup(ops[j].runningVarName, step.bnVar))
                        return nullptr;
                    step.bn = &ops[j];
                    step.output = ops[j].output;
                    absorbed[j] = true;
                    ++bp->m_folded;
                }
                break;
            }
        }
        bp->m_steps.push_back(step);
    }
    bp->m_origin = origin;
    bp->m_dx = dirs.x;
    bp->m_dy = dirs.y;
    bp->m_inputs = data.inputs.to(dtype).contiguous();
    bp->m_targets = data.targets.to(torch::kInt64).contiguous();
    bp->m_channelsLast = ops.front().kind == ProgramOp::Kind::Conv2d && bp->m_inputs.dim() == 4;

    // One dry run on two samples sizes the sample blocks (and finds programs that do not run at all).
    try {
        const int64_t n = std::min<int64_t>(2, bp->m_inputs.size(0));
        const auto w = bp->weightsAt(0.0, 0.0);
        std::vector<torch::Tensor> values(static_cast<size_t>(bp->m_program.valueCount));
        values[0] = bp->m_inputs.narrow(0, 0, n);
        int64_t widest = values[0].numel();
        std::vector<torch::Tensor> in;
        for (size_t k = 0; k < bp->m_steps.size(); ++k) {
            in.clear();
            for (int id : bp->m_steps[k].op->inputs)
                in.push_back(values.at(static_cast<size_t>(id)));
            auto& out = values.at(static_cast<size_t>(bp->m_steps[k].output));
            out = capture::runOp(*bp->m_steps[k].op, in, w.weight[k], w.bias[k]);
            widest = std::max<int64_t>(widest, out.numel());
        }
        const int64_t perSample = std::max<int64_t>(widest / n, 1) * static_cast<int64_t>(c10::elementSize(dtype));
        bp->m_block = std::clamp<int64_t>(kBlockBytes / perSample, 8, 1024);
    } catch (const std::exception& e) {
        reason = "the layer program failed on the evaluation inputs: " + oneLineReason(e.what());
        return nullptr;
    }
    return bp;
}

SurfaceEvaluator::BatchedProgram::PointWeights SurfaceEvaluator::BatchedProgram::weightsAt(double a,
                                                                                            double b) const {
    auto at = [&](int i) -> torch::Tensor {
        if (i < 0) return {};
        const auto k = static_cast<size_t>(i);
        auto t = torch::add(m_origin[k], m_dx[k], a);
        if (!m_dy.empty()) t.add_(m_dy[k], b);
        return t;
    };
    PointWeights w;
    for (const auto& step : m_steps) {
        torch::Tensor weight = at(step.weight), bias = at(step.bias);
        if (step.bn) {
            // BN(conv(x, W) + c) = conv(x, W * s) + (c - mean) * s + beta, s = gamma / sqrt(var + eps).
            const auto dtype = weight.scalar_type();
            const auto var = step.bnVar >= 0 ? at(step.bnVar) : step.bn->runningVar.to(dtype);
            const auto mean = step.bnMean >= 0 ? at(step.bnMean) : step.bn->runningMean.to(dtype);
            auto s = (var + step.bn->eps).rsqrt();
            if (step.bnWeight >= 0) s = s * at(step.bnWeight);
            auto shift = bias.defined() ? (bias - mean) * s : -mean * s;
            if (step.bnBias >= 0) shift = shift + at(step.bnBias);
            weight = weight * s.view({-1, 1, 1, 1});
            bias = shift;
        }
        w.weight.push_back(std::move(weight));
        w.bias.push_back(std::move(bias));
    }
    return w;
}

torch::Tensor SurfaceEvaluator::BatchedProgram::run(const PointWeights& w, const torch::Tensor& x) const {
    std::vector<torch::Tensor> values(static_cast<size_t>(m_program.valueCount));
    values[0] = m_channelsLast ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
    std::vector<torch::Tensor> in;
    for (size_t k = 0; k < m_steps.size(); ++k) {
        const Step& step = m_steps[k];
        in.clear();
        for (int id : step.op->inputs)
            in.push_back(values[static_cast<size_t>(id)]);
        values[static_cast<size_t>(step.output)] = capture::runOp(*step.op, in, w.weight[k], w.bias[k]);
    }
    return values[static_cast<size_t>(m_program.output)];
}

torch::Tensor SurfaceEvaluator::BatchedProgram::logits(const std::array<double, 2>& point, int64_t n) const {
    torch::NoGradGuard noGrad;
    return run(weightsAt(point[0], point[1]), m_inputs.narrow(0, 0, std::min<int64_t>(n, m_inputs.size(0))));
}

PointValue SurfaceEvaluator::BatchedProgram::evaluatePoint(double a, double b) const {
    const auto w = weightsAt(a, b);
    const int64_t n = m_inputs.size(0);
    double lossSum = 0, correct = 0;
    for (int64_t begin = 0; begin < n; begin += m_block) {
        const int64_t len = std::min(m_block, n - begin);
        const auto logits = run(w, m_inputs.narrow(0, begin, len));
        accumulateLoss(logits, m_targets.narrow(0, begin, len), lossSum, correct);
    }
    return {lossSum / static_cast<double>(n), 100.0 * correct / static_cast<double>(n)};
}

std::vector<PointValue>
SurfaceEvaluator::BatchedProgram::evaluate(const std::vector<std::array<double, 2>>& points, bool usePool) const {
    std::vector<PointValue> out(points.size());
    std::mutex failMutex;
    std::exception_ptr failure;
    const auto body = [&](size_t begin, size_t end, unsigned) {
        torch::NoGradGuard noGrad; // thread-local
        try {
            for (size_t i = begin; i < end; ++i)
                out[i] = evaluatePoint(points[i][0], points[i][1]);
        } catch (...) {
            std::lock_guard<std::mutex> lock(failMutex);
            if (!failure) failure = std::current_exception();
        }
    };
    // OpenBLAS's thread count is process-wide: set only while this call owns the pool's threads (a detached
    // grid on its own thread leaves it alone, so training beside it runs exactly as without it).
    std::optional<kernels::OpenBlasSingleThread> blasGuard;
    if (usePool) blasGuard.emplace();
    // Points are independent: spread them over the pool when LibTorch itself runs single-threaded (Debian's
    // build); otherwise LibTorch's own threads share each point's ops.
    if (usePool && at::get_num_threads() == 1)
        ThreadPool::global().parallelFor(points.size(), 1, body);
    else
        body(0, points.size(), 0);
    if (failure) std::rethrow_exception(failure);
    return out;
}

} // namespace ts::landscape
