// A run's checkpoints (engine/runs/checkpoint.hpp) put back into a model: what `neurogram --run` and
// `landscape --run` measure at each recorded step.
#pragma once

#include <string>
#include <vector>

#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"
#include "engine/runs/checkpoint.hpp"

namespace ts::capture {

// Copies a checkpoint's tensors into the model's parameters and floating-point buffers, by name (the model is
// then as it was at that step). Errors (Usage, one line): a parameter or floating buffer the checkpoint
// lacks, a shape that differs, a tensor the model does not have (names from another model).
Status loadCheckpoint(Model& model, const std::vector<runs::CheckpointTensor>& tensors);

} // namespace ts::capture
