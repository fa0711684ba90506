// Internal to the evaluator: the batched path for models that describe their forward pass as a Program of
// layer ops (convolutional networks: Conv/BatchNorm/ReLU/pooling/residual adds/Linear). Each grid point runs
// the ops with its own weights theta + a*dx + b*dy, computed next to the model's tensors (which stay
// untouched), so the pool's threads evaluate different points at once; BatchNorm is folded into the
// convolution before it, once per point; samples go through in blocks sized to stay in cache, in
// channels-last layout.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/capture/program.hpp"
#include "engine/landscape/evaluator.hpp"

namespace ts::landscape {

class SurfaceEvaluator::BatchedProgram {
  public:
    // Null with `reason` set when the program reads tensors outside the parameter space or mixes dtypes.
    static std::unique_ptr<BatchedProgram> fromProgram(capture::Program program, const ParameterSpace& space,
                                                       const TensorList& origin, const Directions& dirs,
                                                       const EvalSet& data, std::string& reason);

    // Logits [n, classes] at one point for the first n samples (verification).
    torch::Tensor logits(const std::array<double, 2>& point, int64_t n) const;
    // Loss and accuracy for each point; points are spread over the pool when `usePool`.
    std::vector<PointValue> evaluate(const std::vector<std::array<double, 2>>& points, bool usePool = true) const;

    int64_t opCount() const { return static_cast<int64_t>(m_program.ops.size()); }
    int64_t foldedCount() const { return m_folded; }
    int64_t sampleBlock() const { return m_block; }

  private:
    struct Step {
        const capture::ProgramOp* op = nullptr;
        int weight = -1, bias = -1; // indices into the parameter space (-1: none)
        int bnWeight = -1, bnBias = -1, bnMean = -1, bnVar = -1;
        const capture::ProgramOp* bn = nullptr; // the BatchNorm folded into this convolution
        int output = 0;                         // the BN's output when folded
    };
    struct PointWeights {
        std::vector<torch::Tensor> weight, bias; // per step
    };
    PointWeights weightsAt(double a, double b) const;
    torch::Tensor run(const PointWeights& w, const torch::Tensor& x) const;
    PointValue evaluatePoint(double a, double b) const;

    capture::Program m_program;
    std::vector<Step> m_steps;
    TensorList m_origin, m_dx, m_dy;
    torch::Tensor m_inputs, m_targets;
    int64_t m_block = 64;
    int64_t m_folded = 0;
    bool m_channelsLast = false;
};

} // namespace ts::landscape
