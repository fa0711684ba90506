// Checkpoint tensors into a model's live parameters and buffers, by state-dict name.
#include "engine/capture/checkpoint_weights.hpp"

#include <map>

#include "engine/capture/network.hpp"

namespace ts::capture {

Status loadCheckpoint(Model& model, const std::vector<runs::CheckpointTensor>& tensors) {
    std::map<std::string, const runs::CheckpointTensor*> byName;
    for (const auto& t : tensors)
        byName[t.name] = &t;
    torch::NoGradGuard noGrad;
    size_t used = 0;
    auto load = [&](const NamedTensors& named, bool buffers) -> Status {
        for (const auto& [name, t] : named) {
            if (!t.defined() || (buffers && !t.is_floating_point())) continue;
            auto it = byName.find(name);
            if (it == byName.end()) return usageError("the checkpoint has no '" + name + "' (is it of this model?)");
            if (it->second->shape != t.sizes().vec())
                return usageError("the checkpoint's '" + name + "' has shape " + shapeString(it->second->shape) +
                             ", the model's " + shapeString(t.sizes().vec()) + " (is it of this model?)");
            t.copy_(torch::from_blob(const_cast<float*>(it->second->values.data()), t.sizes(), torch::kFloat32));
            ++used;
        }
        return {};
    };
    if (auto st = load(model.namedParameters(), false); !st) return st;
    if (auto st = load(model.namedBuffers(), true); !st) return st;
    if (used != tensors.size()) {
        for (const auto& t : tensors) {
            bool known = false;
            for (const auto& [name, p] : model.namedParameters())
                known = known || name == t.name;
            for (const auto& [name, b] : model.namedBuffers())
                known = known || name == t.name;
            if (!known) return usageError("the checkpoint has '" + t.name + "', which the model does not (is it of this model?)");
        }
    }
    return {};
}

} // namespace ts::capture
