// Checkpoints of a run: the model's floating-point parameters and buffers at some steps, one HDF5 file per step
// in RUN/checkpoints/step_<STEP>.h5 (docs/RUN_FORMAT.md, "Checkpoints"), written by `train --run DIR
// --checkpoint-every N` and by the Python module (checkpoint_every=N). What lets `neurogram --run` measure a
// model as it was at each of those steps. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::runs {

struct CheckpointTensor {
    std::string name;           // PyTorch's state-dict key ("features.0.weight", "bn1.running_mean")
    std::vector<int64_t> shape; // empty: a scalar
    std::vector<float> values;  // product(shape) values
};

// Writes RUN/checkpoints/step_<step>.h5 (creating the folder) under a temporary name, then renames it, so a
// reader never sees half a file. Errors: one line (the folder or file cannot be written, a tensor whose
// values do not match its shape, a name with '/').
Status writeCheckpoint(const std::string& runDir, int64_t step, const std::vector<CheckpointTensor>& tensors);

// Steps with a checkpoint, ascending; empty when the run has none.
std::vector<int64_t> listCheckpoints(const std::string& runDir);

// Every tensor of one checkpoint, by name. Errors (one line, naming the file): not HDF5, not a checkpoint,
// another format version, a dataset whose header claims more values than the file stores, non-float data.
Expected<std::vector<CheckpointTensor>> readCheckpoint(const std::string& runDir, int64_t step);

std::string checkpointPath(const std::string& runDir, int64_t step);

} // namespace ts::runs
