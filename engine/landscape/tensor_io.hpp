// Directions files <-> tensors: the torch side of h5_io (which itself stays torch-free).
#pragma once

#include <map>
#include <string>

#include <torch/torch.h>

#include "engine/landscape/directions.hpp"
#include "engine/landscape/h5_io.hpp"

namespace ts::landscape {

HostArray toHostArray(const torch::Tensor& t);
torch::Tensor fromHostArray(const HostArray& a); // float32, or float64 when the file held float64

// Writes xdirection/ydirection (float32 arrays, as the reference), PCA data when present, and attributes.
Status saveDirections(const std::string& path, const Directions& dirs,
                      const std::map<std::string, std::string>& attributes = {});
Expected<Directions> loadDirections(const std::string& path);

} // namespace ts::landscape
