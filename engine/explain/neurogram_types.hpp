// The neurogram's results (torch-free, so the app's 3D view and the command's outcome can hold them): KPIs,
// stability, each layer's measured contribution, diagnoses; one per checkpoint over a run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ts::explain {

struct Kpis {
    double accuracy = 0.0, loss = 0.0, macroF1 = 0.0;
    std::vector<double> classAccuracy; // recall per class (NaN for classes without samples)
};

// Accuracy and loss on corrupted copies of the validation samples.
struct StabilityKpi {
    std::string corruption; // "noise", "blur", "brightness", "occlusion", or "data NAME" (the second data set)
    double strength = 0.0;  // noise std / shift as a fraction of the input range; blur and occlusion: size
    double accuracy = 0.0, loss = 0.0;
};

struct LayerContribution {
    std::string name, type, module;
    int64_t params = 0;            // parameters of the layer's own module
    bool ablated = false;
    std::string note;              // why a layer was not ablated
    double accuracy = 0.0, loss = 0.0;            // validation, the output replaced by its mean
    double accuracyDrop = 0.0, lossIncrease = 0.0; // against the intact model
    double taylorLossIncrease = 0.0;              // first-order estimate of lossIncrease (NaN: no gradient)
    double zeroedAccuracy = -1.0;                 // pruning candidates: accuracy with the layer's output zeroed
    // Stability of the contribution: the same ablation (the clean mean) on the shifted inputs that cost the model
    // most accuracy (the strongest corruption, or the second data set), as an accuracy drop there.
    // Shares are of the accuracy above chance, so a layer the model cannot work without has share 1 on both.
    std::string shift;                             // which ("noise 0.15", "data NAME"); empty: not measured
    double shiftedAccuracyDrop = 0.0;
    double share = 0.0, shiftedShare = 0.0;        // accuracy drop / (accuracy - chance), clean and shifted
};

struct Neurogram {
    Kpis train, validation;
    std::vector<StabilityKpi> stability;
    int64_t params = 0, flops = 0; // flops per sample (multiply-add = 2), an estimate
    double latencyMs = 0.0;        // one sample's forward pass, measured
    int64_t classes = 0;
    std::vector<LayerContribution> layers; // forward order: every captured layer, with parameters or without
    double agreement = 0.0; // Spearman rank correlation of ablation and estimate over ablated layers (NaN if < 3)
    std::vector<std::string> diagnoses;
};

// A neurogram at each checkpoint of a recorded run.
struct NeurogramStep {
    int64_t step = 0;
    Neurogram graph;
};

} // namespace ts::explain
