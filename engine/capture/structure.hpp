// Builds the torch-free Network description (network.hpp) from a loaded Model: one probe forward pass for
// shapes, the model's layer links for the DAG, parameter counts and FLOPs estimates.
#pragma once

#include "engine/capture/model.hpp"
#include "engine/capture/network.hpp"

namespace ts::capture {

// Runs forwardCapture() once in eval mode, without gradients, on a seeded random batch of two samples of
// `inputShape` (per sample, e.g. {1, 28, 28}); the model's training mode is restored afterwards.
// FLOPs: a layer with a weight of >= 2 dims costs 2 * weight.numel() per output position (Linear: per sample,
// Conv: per output pixel) plus one per output for a bias; pooling costs one per input element; other ops one
// per output element. Errors (the forward pass throws) name the model and the input shape.
// What to add to a model's error about its input: for float inputs that an nn.Embedding refused, that it
// takes integer token indices ("" otherwise).
std::string embeddingHint(bool integralInputs, const std::string& error);

// inputType: the data's dtype; integer inputs (token indices) are probed with zeros of int64, a valid index.
Expected<Network> describeNetwork(Model& model, const std::vector<int64_t>& inputShape,
                                  torch::ScalarType inputType = torch::kFloat32);

} // namespace ts::capture
