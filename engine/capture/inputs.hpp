// Real model inputs for --input: images (one file or a folder), .npy arrays, .pt tensors, or a seeded random
// probe of a given shape, loaded as an unlabelled Dataset (what to load, and the --input-shape parser:
// input_options.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/capture/dataset.hpp"
#include "engine/capture/input_options.hpp"
#include "engine/core/error.hpp"

namespace ts::capture {

// Inputs as a Dataset: inputs [N, ...] float32 contiguous (images [N, C, H, W] in [0, 1] before normalising;
// .npy '|u1' scaled to [0, 1], float64 converted), or int64 for integer arrays and tensors (token indices for
// an nn.Embedding, kept exact), labels [N] int64 all -1, numClasses 0,
// name the file or folder name (or "random [3, 224, 224]"). Errors (ErrorKind::Usage) are one line naming the
// file and the fix; headers are validated against the file size before anything big is allocated.
Expected<Dataset> loadInputs(const InputOptions& options);

} // namespace ts::capture
