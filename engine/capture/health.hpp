// Torch-free health report of one training step: where NaN/Inf first appear. The UI shows it as is.
#pragma once

#include <string>

namespace ts::capture {

// Each name is empty when everything of that kind is finite.
struct HealthReport {
    bool lossFinite = true;
    std::string firstBadActivation; // first layer in forward order with a non-finite activation
    std::string firstBadGradient;   // first layer in backward order with a non-finite activation gradient
    std::string firstBadWeight;     // first parameter (named_parameters order) with a non-finite value
    std::string
        firstBadWeightGradient; // first parameter in backward (reverse) order with a non-finite gradient

    bool ok() const {
        return lossFinite && firstBadActivation.empty() && firstBadGradient.empty() &&
               firstBadWeight.empty() && firstBadWeightGradient.empty();
    }

    // "loss is not finite; first non-finite activation: layer 'fc2' (forward order); ..." or "healthy".
    std::string describe() const {
        if (ok()) return "healthy";
        std::string s;
        auto add = [&](const std::string& part) { s += (s.empty() ? "" : "; ") + part; };
        if (!lossFinite) add("loss is not finite");
        if (!firstBadActivation.empty())
            add("first non-finite activation: layer '" + firstBadActivation + "' (forward order)");
        if (!firstBadGradient.empty())
            add("first non-finite activation gradient: layer '" + firstBadGradient + "' (backward order)");
        if (!firstBadWeight.empty()) add("first non-finite weight: '" + firstBadWeight + "'");
        if (!firstBadWeightGradient.empty())
            add("first non-finite weight gradient: '" + firstBadWeightGradient + "' (backward order)");
        return s;
    }
};

} // namespace ts::capture
