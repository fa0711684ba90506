// Internal to capture: the TorchScript implementation of Model (script_model.cpp), reached via loadModel().
#pragma once

#include "engine/capture/model.hpp"

namespace ts::capture::detail {

// Loads a TorchScript archive and builds the capture graph; `inputShape` (may be empty) sizes a probe run
// that checks the capture graph against the model's own forward().
Expected<std::unique_ptr<Model>> loadScriptModel(const std::string& path,
                                                 const std::vector<int64_t>& inputShape);

} // namespace ts::capture::detail
