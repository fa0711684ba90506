// Loss and accuracy at theta + a*dx + b*dy over an evaluation set. Three paths:
//  - unbatched (the reference): write the perturbed weights into the model's own tensors, run forward();
//  - batched: for models that are a chain of Linear layers with one elementwise activation (detected from
//    the parameters and verified against the model's own forward), many grid points share one pass: the
//    first layer is linear in its weights, X(W + aU + bV)^T = XW^T + a XU^T + b XV^T, so three products
//    serve the whole grid, and later layers run with per-point stacked weights through batched matmuls;
//  - batched layer program: for models that describe forward() as layer ops (capture::Program: CNNs with
//    BatchNorm, pooling and residual adds), each point runs those ops with its own weights computed beside
//    the model's (BatchNorm folded into the convolution before it), several points at once on the pool.
// Both batched paths are used only after they reproduce the model's own forward() at two probe points.
// Grid runs go coarse to fine (progressive), report progress, and stop when a cancel flag is set.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/grid.hpp"

namespace ts::landscape {

// Inputs as the model takes them ([N, ...]) and integer class targets [N].
struct EvalSet {
    torch::Tensor inputs;
    torch::Tensor targets;
};

enum class EvalMode { Auto, Batched, Unbatched };

struct EvaluatorOptions {
    EvalMode mode = EvalMode::Auto;
    // Samples per forward() in the unbatched path (0: all at once). 128, the reference scripts' default: a
    // ResNet-20 point takes 1.05 s in batches of 128 and 2.3 s with 1,000 samples at once (docs/PERFORMANCE.md).
    int64_t sampleBatch = 128;
    int64_t pointChunk = 0;     // grid points per batched pass (0: sized to ~2 MB of activations)
    bool usePool = true;        // batched paths: points over ts::ThreadPool (false: the calling thread only)
};

class DetachedSurfaceEvaluator;

struct PointValue {
    double loss = 0; // mean cross-entropy
    double acc = 0;  // percent correct
};

struct GridRunOptions {
    bool progressive = true;
    const std::atomic<bool>* cancel = nullptr; // checked between chunks
    // Called after each chunk from the evaluating thread: points done, total, the surface so far (missing
    // points not computed) and the stride of the last finished refinement level (for previewFilled).
    std::function<void(int64_t done, int64_t total, const Surface& partial, int64_t finishedStride)> progress;
};

// Contract: the evaluator snapshots theta (the model's tensors) when created and always leaves the model
// holding exactly that snapshot afterwards (also on error or cancel). It puts the model in eval mode while
// it exists and restores training mode when destroyed. The model must not be used by anyone else while an
// evaluation runs (Model is single-threaded), and must outlive the evaluator.
class SurfaceEvaluator {
  public:
    static Expected<std::unique_ptr<SurfaceEvaluator>> create(capture::Model& model, ParameterSpace space,
                                                              Directions directions, EvalSet data,
                                                              EvaluatorOptions options = {});
    ~SurfaceEvaluator();

    bool batched() const { return m_batched != nullptr || m_program != nullptr; }
    // Why the batched path is not used ("" when it is).
    const std::string& fallbackReason() const { return m_fallbackReason; }

    // Values at the given (a, b) points (b ignored for 1D directions).
    Expected<std::vector<PointValue>> evaluate(const std::vector<std::array<double, 2>>& points);
    // The reference path, whatever the mode (used by tests and benchmarks to compare).
    Expected<std::vector<PointValue>> evaluateUnbatched(const std::vector<std::array<double, 2>>& points);

    // A whole grid. On cancel, returns the partial surface (computed mask says which points hold values).
    Expected<Surface> evaluateGrid(const GridSpec& grid, const GridRunOptions& run = {});

    // Points the batched path evaluates in one pass (1 per point otherwise): work units of this many points,
    // aligned with multiples of it from the grid's first point, are computed exactly as evaluateGrid computes
    // them (headless, not progressive), whatever else runs.
    int64_t unitPoints() const { return m_batched ? pointChunk() * 4 : 1; }
    // The batched paths keep their own copies of all they read (the weights' snapshot, directions, samples,
    // BatchNorm statistics): detached, they compute a grid on another thread while the model is used (trained)
    // elsewhere. Null on the per-point path; afterwards this evaluator is per point.
    std::unique_ptr<DetachedSurfaceEvaluator> detach();
    const ParameterSpace& space() const { return m_space; }
    const TensorList& origin() const { return m_origin; }

    class BatchedMlp;     // batched_mlp.cpp
    class BatchedProgram; // batched_program.cpp

  private:
    SurfaceEvaluator() = default;
    PointValue evaluateModel();
    int64_t pointChunk() const;
    // Activations of one layer for one pass of the batched path: small enough to stay in cache.
    static constexpr int64_t kChunkBytes = 2ll << 20;
    void setPoint(double a, double b);
    void chooseBatchedPath();
    void restore();

    capture::Model* m_model = nullptr;
    ParameterSpace m_space;
    TensorList m_origin;
    Directions m_dirs; // in the parameters' dtype
    EvalSet m_data;
    EvaluatorOptions m_options;
    std::unique_ptr<BatchedMlp> m_batched;
    std::unique_ptr<BatchedProgram> m_program;
    std::string m_fallbackReason;
    bool m_wasTraining = false;
};

// A batched path moved out of its evaluator (SurfaceEvaluator::detach): no model, usable from any one thread.
class DetachedSurfaceEvaluator {
  public:
    ~DetachedSurfaceEvaluator();
    Expected<Surface> evaluateGrid(const GridSpec& grid, const GridRunOptions& run = {}) const;

  private:
    friend class SurfaceEvaluator;
    DetachedSurfaceEvaluator() = default;
    std::unique_ptr<SurfaceEvaluator::BatchedMlp> m_mlp;
    std::unique_ptr<SurfaceEvaluator::BatchedProgram> m_program;
    int64_t m_chunk = 1;
    bool m_usePool = true, m_twoD = true;
};

// Accumulates cross-entropy (summed) and correct counts of logits against targets, in float64.
void accumulateLoss(const torch::Tensor& logits, const torch::Tensor& targets, double& lossSum,
                    double& correct);

} // namespace ts::landscape
