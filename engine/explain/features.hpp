// Feature visualisation for one layer's units (conv channels, neurons, output classes): activation maximisation
// (an input optimised to excite the unit, regularised by jitter, blur and total variation) and the real inputs of
// a pool that excite it most. LibTorch; the model is any capture::Model.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"

namespace ts::explain {

// A layer's units: which activation ("" = the model's output) and which dimension indexes the units. A unit's
// value for a sample is the mean of its slice over every other dimension (a conv channel's spatial mean).
struct UnitLayer {
    std::string name;     // activation name; "" for the model's output
    std::string type;     // module class or op ("Conv2d", "relu"), "output"
    int unitDim = 1;      // in the batch-first activation: 1 (channels, neurons) or its last (sequence features)
    int64_t units = 0;    // size of that dimension
    std::vector<int64_t> shape; // per-sample activation shape, batch dropped
};

// Finds `layer` ("" or "output": the model's output) by running `probe` ([1, ...]). Errors (Usage, one line): a
// name the model does not have (with a list of the names it has), a model the probe does not fit.
Expected<UnitLayer> findUnitLayer(capture::Model& model, const torch::Tensor& probe, const std::string& layer);

// [N, units]: every unit's value for every sample of `inputs` (batch-first activation averaged over all but the
// batch and unit dimensions). Differentiable; run under NoGradGuard when no gradient is wanted.
torch::Tensor unitValues(capture::Model& model, const UnitLayer& layer, const torch::Tensor& inputs);

struct MaximiseOptions {
    std::vector<int64_t> units; // one image per unit, optimised together in one batch
    int steps = 200;            // Adam steps
    double lr = 0.05;           // Adam step size as a fraction of the input range (hi - lo)
    int jitter = 2;             // each step the image is rolled by up to this many pixels per spatial axis
    int blurEvery = 4;          // Gaussian blur of the image every N steps (0: never)
    double blurSigma = 0.5;     // pixels
    // Total variation: its gradient is mixed in at this fraction of the activation gradient's norm (per image),
    // so the weight means the same for a unit whose values are 0.1 or 100.
    double tv = 0.3;
    float lo = 0.0f, hi = 1.0f; // the input range (the data's); images are kept inside it
    uint64_t seed = 1;          // the starting noise and the jitter
    // The starting images, [units, ...sample shape]; undefined: grey (mid-range) with a little noise. Starting
    // from each unit's most exciting real input climbs to a maximum near the data (Nguyen et al. 2016), which
    // helps where the value has many local maxima.
    torch::Tensor start;
};

struct Maximised {
    torch::Tensor images;            // [units, ...sample shape], float32, inside [lo, hi]
    std::vector<double> activation;  // each unit's value for its image (no jitter), at the end
    std::vector<double> start;       // ... and for the starting noise
};

// Activation maximisation: gradient ascent on the input of each unit's value. Errors (Usage): an input that is not
// real-valued (token ids), a unit out of range, a layer whose activation does not depend on the input.
Expected<Maximised> maximiseActivation(capture::Model& model, const UnitLayer& layer, std::vector<int64_t> sampleShape,
                                       const MaximiseOptions& options);

struct TopInputs {
    std::vector<std::vector<int64_t>> index; // per unit, the k samples of the pool that excite it most (descending)
    std::vector<std::vector<double>> value;  // their unit values
};

// The `k` samples of `pool` with the largest value of each unit (evaluation mode, batches of 256, no gradient).
Expected<TopInputs> topInputs(capture::Model& model, const UnitLayer& layer, const torch::Tensor& pool,
                              const std::vector<int64_t>& units, int64_t k);

// "0-7,12" | "all" -> unit indices below `count`. Errors (Usage): syntax, a unit out of range (naming the
// layer's size), more than `maxUnits` units.
Expected<std::vector<int64_t>> parseUnits(const std::string& text, int64_t count, const std::string& layerName,
                                          int64_t maxUnits = 64);

} // namespace ts::explain
