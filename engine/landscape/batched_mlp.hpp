// Internal to the evaluator: the batched path for chains of Linear layers with one elementwise activation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/landscape/evaluator.hpp"

namespace ts::landscape {

enum class Activation { ReLU, Tanh, Sigmoid, Gelu, LeakyReLU, Identity };
const char* activationName(Activation a);

class SurfaceEvaluator::BatchedMlp {
  public:
    // Structural check only: parameters [W1, b1?, W2, b2?, ...] with chained shapes, inputs whose per-sample
    // size matches W1. Returns null and sets `reason` when the model does not look like that.
    static std::unique_ptr<BatchedMlp> fromParameters(const ParameterSpace& space, const TensorList& origin,
                                                      const Directions& dirs, const EvalSet& data,
                                                      std::string& reason);

    void setActivation(Activation a) { m_activation = a; }
    Activation activation() const { return m_activation; }
    int64_t layerCount() const { return static_cast<int64_t>(m_layers.size()); }

    // Logits [G, n, classes] for points[g] on the first n samples (verification).
    torch::Tensor logits(const std::vector<std::array<double, 2>>& points, int64_t n) const;
    // Loss and accuracy for each point, `chunk` points per pass.
    std::vector<PointValue> evaluate(const std::vector<std::array<double, 2>>& points, int64_t chunk,
                                     bool usePool = true) const;
    // Points per pass so that one layer's activations take about `bytes`.
    int64_t autoChunk(int64_t bytes) const;

  private:
    struct Layer {
        torch::Tensor stack; // [3, out*in]: W, U, V flattened (layers after the first)
        torch::Tensor bias;  // [3, out]: b, ub, vb (zeros where absent)
        int64_t in = 0, out = 0;
    };
    torch::Tensor forwardChunk(const torch::Tensor& coef64, int64_t n) const;
    static torch::Tensor coefficients(const std::vector<std::array<double, 2>>& points, size_t begin,
                                      size_t end);
    void activate(torch::Tensor& z) const;

    std::vector<Layer> m_layers;
    torch::Tensor m_first;   // [3, N, h1]: X W^T + b, X U^T + ub, X V^T + vb
    torch::Tensor m_targets; // [N] int64
    torch::ScalarType m_dtype = torch::kFloat32;
    Activation m_activation = Activation::ReLU;
};

} // namespace ts::landscape
