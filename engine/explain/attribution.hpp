// Attribution of one output class to the input, for any captured model: gradient (sensitivity), gradient x
// input, SmoothGrad, integrated gradients, and layer-wise relevance propagation (epsilon and alpha-beta rules).
// LibTorch; the model is any capture::Model (built-in or TorchScript).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"

namespace ts::explain {

enum class Method { Gradient, GradTimesInput, SmoothGrad, IntegratedGradients, LrpEpsilon, LrpAlphaBeta };

// "gradient" | "gradxinput" | "smoothgrad" | "ig" | "lrp" (epsilon rule) | "lrp-ab" (alpha-beta rule).
std::optional<Method> parseMethod(const std::string& name);
const char* methodName(Method method);
// Gradient and SmoothGrad maps are sensitivities (their magnitude is drawn); the others split the score.
inline bool methodIsSigned(Method m) { return m != Method::Gradient && m != Method::SmoothGrad; }

struct AttributionOptions {
    Method method = Method::LrpEpsilon;
    int64_t target = -1;         // output class explained; -1: the predicted class
    int smoothSamples = 32;      // SmoothGrad: noisy copies averaged
    double smoothNoise = 0.15;   // SmoothGrad: noise std as a fraction of the input's range (max - min)
    uint64_t seed = 1;           // SmoothGrad noise
    int igSteps = 64;            // integrated gradients: trapezoid intervals from the baseline to the input
    torch::Tensor igBaseline;    // undefined: zeros
    double epsilon = 1e-2;       // LRP: the epsilon rule's stabiliser (every rule but alpha-beta's layers)
    double alpha = 2.0;          // LRP alpha-beta: weight of positive contributions (alpha - beta = 1)
    double beta = 1.0;           //                 weight of negative contributions
    bool keepLayerMaps = false;  // LRP: keep every layer's relevance tensor, not only its sum
    int64_t chunk = 16;          // SmoothGrad and IG: samples per forward pass
};

// LRP's view of one layer: the rule applied and the relevance at the layer's output.
struct LayerRelevance {
    std::string name, type;
    std::string rule;        // "epsilon", "alpha-beta", "pass", "folded into NAME" (a Linear/Conv before its BatchNorm)
    double sum = 0.0;        // total relevance at the layer's output
    torch::Tensor relevance; // the activation's shape (batch 1), only with keepLayerMaps
};

struct Attribution {
    torch::Tensor map;          // the input's shape ([1, ...]), float32
    torch::Tensor logits;       // [classes] of the explained sample
    int64_t target = 0;         // class explained
    int64_t predicted = 0;      // arg max of the logits
    double score = 0.0;         // the explained value: logits[target]
    double baselineScore = 0.0; // integrated gradients: the score at the baseline
    std::string explained;      // "output", or "logits before 'NAME'" when the model ends in a softmax
    std::vector<LayerRelevance> layers; // LRP: every layer on the way, in forward order
    std::vector<std::string> notes;     // rule choices worth telling the user
};

// Explains one sample (`input` is [1, ...], as the model takes it). The model is put in evaluation mode for the
// call and its mode restored. Errors (ErrorKind::Usage, one line): a class out of range, an output that is not
// [1, classes], an input the model rejects (its message), and for LRP a layer without a rule (named, with its
// type) or a model whose layers could not be captured.
Expected<Attribution> attribute(capture::Model& model, const torch::Tensor& input, const AttributionOptions& options);

} // namespace ts::explain
