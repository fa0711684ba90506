// Neurogram (after Chien et al. 2019): a network's performance indicators (accuracy, loss, macro F1, per-class
// accuracy, accuracy under input corruptions, parameters, FLOPs, latency) linked to its layers by each layer's
// measured contribution: the change when the layer's output is replaced by its mean over the data (ablation),
// next to a first-order estimate of the same change (gradient x (mean - activation)), and what a person can act
// on (over- and underfitting, pruning candidates measured by zeroing them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/capture/dataset.hpp"
#include "engine/capture/model.hpp"
#include "engine/core/error.hpp"
#include "engine/core/image.hpp"
#include "engine/runs/checkpoint.hpp"

namespace ts::explain {

struct NeurogramOptions {
    int64_t samples = 1000; // the first N samples of each split are evaluated
    int64_t batch = 256;
    bool stability = true;  // accuracy under noise, blur, brightness and occlusion
    uint64_t seed = 1;      // noise
    // A second labelled data set (a shifted domain: other photos, another scanner), measured like the validation
    // split; its first `samples` samples. Null: none.
    const capture::Dataset* shifted = nullptr;
    std::string shiftedName = "second data set";
};

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

// Errors (ErrorKind::Usage): an output that is not [N, classes], labels out of range, fewer than 2 samples.
Expected<Neurogram> computeNeurogram(capture::Model& model, const capture::Dataset& train,
                                     const capture::Dataset& validation, const NeurogramOptions& options = {});


// A neurogram at each checkpoint of a recorded run.
struct NeurogramStep {
    int64_t step = 0;
    Neurogram graph;
};

// What the steps show together: the step where validation loss was lowest while the gap between training and
// validation accuracy kept growing (overfitting onset), and layers whose contribution changed most.
std::vector<std::string> diagnoseRun(const std::vector<NeurogramStep>& steps);

// Over a run: the KPIs at each checkpoint as curves (accuracies, including under each shift), and each layer's
// accuracy drop at its mean per checkpoint as a heat strip, with the run's diagnoses under them.
ImageRgba8 renderNeurogramRun(const std::vector<NeurogramStep>& steps, const std::vector<std::string>& diagnoses,
                              const std::string& title, int width = 1280);

// The neurogram as a picture: layer nodes (left, forward order) linked to KPI nodes (right) by their measured
// contributions (accuracy drop, loss increase when the layer's output is replaced by its mean; parameters), the
// stability and complexity KPIs, and the diagnoses under it.
ImageRgba8 renderNeurogram(const Neurogram& g, const std::string& title, int width = 1280);

} // namespace ts::explain
