// Mode connectivity (Garipov et al. 2018): the loss along a quadratic Bezier curve between two models,
// theta(t) = (1 - t)^2 w0 + 2 t (1 - t) c + t^2 w1, whose bend c is trained to make the whole curve low
// (minimising the loss at a random t each step), against the straight line between them.
//
// Any model: theta(t) is written into the model's own parameters and the gradient with respect to c is the
// parameters' gradient times 2 t (1 - t) (theta is linear in c), so no graph surgery is needed. The model is
// in evaluation mode throughout (BatchNorm on the first model's running statistics; Garipov et al. recompute
// them along the curve, which this does not).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/landscape/directions.hpp"
#include "engine/landscape/evaluator.hpp"

namespace ts::landscape {

struct CurveOptions {
    int steps = 300;       // Adam steps on the bend
    double lr = 0.01;      // Adam's learning rate
    int64_t batch = 128;   // samples per step
    int points = 21;       // t values the finished curve and the line are evaluated at (0 and 1 included)
    uint64_t seed = 0;     // t and minibatch draws
};

struct CurveResult {
    std::vector<double> t;                 // evaluation points, 0..1
    std::vector<double> curveLoss, curveAcc; // along the trained curve (mean cross-entropy, percent)
    std::vector<double> lineLoss, lineAcc;   // along the straight line, same points
    double curveBarrier = 0, lineBarrier = 0; // max excess over the chord between the ends' losses
    double curveBarrierAt = 0, lineBarrierAt = 0;
    TensorList bend;                        // c, shaped like the parameters
    int steps = 0;
    double seconds = 0;
};

// Trains the bend on `train` and evaluates both paths on `eval` (whole sets, in batches). The model holds
// w0 again afterwards, also on error. Errors: mismatched endpoints (Usage), non-finite losses while training
// (Failed, naming the step).
Expected<CurveResult> fitBezierCurve(capture::Model& model, const TensorList& w0, const TensorList& w1,
                                     const EvalSet& train, const EvalSet& eval, const CurveOptions& options);

// The Bezier point theta(t) for a bend (for tests and drawing).
TensorList bezierPoint(const TensorList& w0, const TensorList& bend, const TensorList& w1, double t);

} // namespace ts::landscape
