// Curvature of the loss at the model's weights, from Hessian-vector products (LibTorch double backward) over
// an evaluation set, as PyHessian computes it: the top eigenpairs by Lanczos with full reorthogonalisation,
// the trace by Hutchinson's estimator, and the eigenvalue spectral density by stochastic Lanczos quadrature.
// The loss is the landscape's: mean cross-entropy over the set, the model in evaluation mode (BatchNorm on
// its running statistics). The Hessian is over model.parameters() (every entry, biases included).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/evaluator.hpp"

namespace ts::landscape {

struct HessianOptions {
    int topK = 2;             // eigenpairs with the largest eigenvalues
    int maxSteps = 60;        // Lanczos steps at most (each one Hessian-vector product)
    double tolerance = 1e-4;  // stop when each wanted Ritz pair's residual is below tol * |largest|
    int traceSamples = 0;     // Hutchinson samples (Rademacher vectors); 0: no trace
    int esdRuns = 0;          // stochastic Lanczos quadrature runs; 0: no density
    int esdSteps = 30;        // Lanczos steps per density run
    uint64_t seed = 0;        // start vectors and probes
    int64_t sampleBatch = 512; // samples per forward/double backward
    // Lanczos keeps its basis (one float64 vector per step): refuse beyond this many bytes.
    int64_t memoryBudget = 4ll << 30;
};

struct HessianResult {
    std::vector<double> eigenvalues;          // descending
    std::vector<TensorList> eigenvectors;     // unit norm over all parameters, shaped and typed like them
    std::vector<double> residuals;            // |H v - lambda v| per pair
    double trace = 0, traceStdError = 0;      // Hutchinson (when traceSamples > 0)
    int traceSamples = 0;
    std::vector<double> esdNodes, esdWeights; // Ritz values and weights (sum 1 over all runs)
    int64_t parameters = 0;
    int64_t products = 0;     // Hessian-vector products computed (all parts)
    int64_t lanczosSteps = 0; // of those, the eigenpairs' Lanczos steps
    double seconds = 0;
};

// H v for a list of tensors shaped like the parameters (the Hessian of the mean loss over `data`).
class HessianOperator {
  public:
    // Errors (Usage) when the set is empty or a parameter is not floating point.
    static Expected<HessianOperator> create(capture::Model& model, EvalSet data, int64_t sampleBatch);
    HessianOperator(HessianOperator&&) noexcept;
    HessianOperator& operator=(HessianOperator&&) noexcept;
    ~HessianOperator(); // restores the model's training mode and the parameters' requires_grad

    int64_t size() const { return m_size; }
    // v flat (float64, size()) -> H v flat (float64).
    torch::Tensor apply(const torch::Tensor& v);
    TensorList unflatten(const torch::Tensor& flat) const; // shaped and typed like the parameters
    int64_t products() const { return m_products; }

  private:
    HessianOperator() = default;
    void release();
    capture::Model* m_model = nullptr;
    std::vector<torch::Tensor> m_params;
    std::vector<bool> m_requiredGrad;
    bool m_wasTraining = false;
    EvalSet m_data;
    int64_t m_batch = 512, m_size = 0, m_products = 0;
};

// Everything HessianOptions asks for. Errors: empty data, too many parameters for the Lanczos basis
// (the message gives the bytes needed), a non-finite product (NaN/Inf in the loss at these weights).
Expected<HessianResult> analyseHessian(capture::Model& model, const EvalSet& data, const HessianOptions& options);

// The Hessian directions for a landscape: the top two eigenvectors (x, y; y empty when `twoD` is false).
Directions hessianDirections(const HessianResult& r, bool twoD);

} // namespace ts::landscape
