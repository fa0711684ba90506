// Directions in parameter space (Li et al. 2018 and the reference loss-landscape scripts): seeded Gaussian
// directions with filter/layer/weight normalisation, checkpoint-to-checkpoint directions, PCA directions of
// a training trajectory, and the projection of a trajectory onto two directions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"

namespace ts::landscape {

using TensorList = std::vector<torch::Tensor>;

// Normalisation modes as the reference scripts name them (dfilter/dlayer: unit norm per filter/layer).
enum class Norm { Filter, Layer, Weight, DFilter, DLayer, None };
// biasbn: directions of parameters with at most one dimension are zero; None: they equal the weights.
enum class Ignore { BiasBn, None };
// weights: model.parameters(); states: the state_dict (parameters and buffers such as BN running stats).
enum class DirType { Weights, States };

const char* normName(Norm n);
const char* ignoreName(Ignore i);
const char* dirTypeName(DirType t);
Expected<Norm> parseNorm(const std::string& s);
Expected<Ignore> parseIgnore(const std::string& s); // "biasbn" or "" / "none"
Expected<DirType> parseDirType(const std::string& s);

// The tensors a landscape perturbs, in the order the reference files list them. `live` are the model's own
// tensors (writing into them changes the model).
struct ParameterSpace {
    DirType type = DirType::Weights;
    std::vector<std::string> names;
    TensorList live;

    TensorList snapshot() const; // detached copies
};

// weights: namedParameters() order. states: PyTorch's state_dict() order (per module, parameters then
// buffers), rebuilt by merging namedParameters() and namedBuffers() by module prefix.
ParameterSpace parameterSpace(capture::Model& model, DirType type);

// One direction per axis; `y` empty for 1D plots.
struct Directions {
    TensorList x;
    TensorList y;
    // Filled for PCA directions (written to the file as the reference does).
    std::vector<double> explainedVarianceRatio, singularValues, explainedVariance;

    bool is2d() const { return !y.empty(); }
};

struct DirectionOptions {
    Norm norm = Norm::Filter;
    Ignore ignore = Ignore::BiasBn;
};

// torch.randn(w.size()) for each w, in order, from `gen` (float32, as the reference): with a generator seeded
// by s this equals `torch.manual_seed(s); [torch.randn(w.size()) for w in weights]` in Python.
TensorList gaussianLike(const TensorList& weights, torch::Generator& gen);

// In place, per the reference normalize_directions_for_weights: dim <= 1 entries are zeroed (biasbn) or set
// to the weights; the rest are normalised by `norm`. Filter: each slice along dim 0 is scaled by
// |w_i| / (|d_i| + 1e-10).
void normalizeDirection(TensorList& direction, const TensorList& weights, const DirectionOptions& opt);

// A seeded random 2D (or 1D) set: x then y drawn from one generator seeded with `seed`.
Directions randomDirections(const TensorList& weights, const DirectionOptions& opt, uint64_t seed, bool twoD);

// to - from, entry by entry (the reference's create_target_direction). Errors name mismatched shapes.
Expected<TensorList> targetDirection(const TensorList& from, const TensorList& to);

// PCA of a training trajectory (the reference's setup_PCA_directions): rows are (w_t - w_final) flattened
// (with biasbn entries zeroed when ignore is BiasBn), centred; the two leading principal axes (sign fixed
// as scikit-learn's svd_flip does) become x and y, reshaped like the weights. Needs >= 2 checkpoints.
Expected<Directions> pcaDirections(const std::vector<TensorList>& trajectory, const TensorList& finalWeights,
                                   Ignore ignore);

// Coordinates of each checkpoint (w_t - origin) in the plane of the directions: "cos" projects on each
// direction separately (x = <d, dx>/|dx|), "lstsq" solves the 2-column least-squares problem.
enum class Projection { Cos, Lstsq };
Expected<std::vector<std::array<double, 2>>> projectTrajectory(const std::vector<TensorList>& trajectory,
                                                               const TensorList& origin,
                                                               const Directions& dirs, Projection method);

// Errors (Usage) when a direction does not list one tensor per parameter with matching shapes.
// `source` names where the direction came from (a file) for the message.
Status checkDirectionShapes(const TensorList& direction, const ParameterSpace& space,
                            const std::string& source, const char* axis);

// Concatenate a list of tensors into one float64 vector (dim-0 entries skipped, as the reference does).
torch::Tensor flatten(const TensorList& list);

} // namespace ts::landscape
