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
#include "engine/explain/neurogram_types.hpp"
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

// Errors (ErrorKind::Usage): an output that is not [N, classes], labels out of range, fewer than 2 samples.
Expected<Neurogram> computeNeurogram(capture::Model& model, const capture::Dataset& train,
                                     const capture::Dataset& validation, const NeurogramOptions& options = {});


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
