// The `explain` subcommand's work, torch-free at its interface: load a model and one input (a file, or a
// sample of a data set), optionally train the model first, attribute one class to the input, and write the
// picture ([input | map | map over the input]) and a JSON report.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/capture/input_options.hpp"
#include "engine/core/error.hpp"
#include "engine/explain/neurogram_types.hpp"
#include "engine/explain/projection.hpp"

namespace ts::explain {

struct ExplainArgs {
    std::string model = "builtin:cnn"; // builtin:mlp|cnn[:widths] or a TorchScript .pt file
    // The input: a file (--input and its image options: image, folder of images, .npy, .pt; sample `index` of
    // it; `input.shape` the shape each loaded sample must have) ...
    capture::InputOptions input;
    // ... or sample `index` of a data set's validation split (--data: fashion-mnist, spirals, an IDX folder).
    // The data set also sizes built-in models, and is what --train-steps trains on.
    std::string data;
    int64_t index = 0;
    int64_t limit = 0;      // data: keep the first N samples of each split (0: all)
    int64_t trainSteps = 0; // train the model on `data` first (Adam, batch 64); built-in models start random
    int64_t classes = 10;   // built-in models without --data: output classes
    uint64_t seed = 1;      // built-in model initialisation, training order, SmoothGrad noise
    std::string method = "lrp";
    int64_t target = -1; // class to explain; -1: the predicted class
    int samples = 32;    // SmoothGrad
    double noise = 0.15; // SmoothGrad: noise std / input range
    int steps = 64;      // integrated gradients
    double epsilon = 1e-2, alpha = 2.0, beta = 1.0; // LRP
    std::string out = "explain.png";
    std::string json; // empty: `out` with .json
    std::string layersPng; // LRP: also each layer's relevance over its feature maps to this PNG
};

struct ExplainOutcome {
    std::string png, json;
    std::string summary; // one line for the terminal
    std::shared_ptr<const ProjectionCloud> cloud; // project with keepCloud: the points for the 3D view
    // neurogram with keepGraphs: the measured neurogram(s) for the 3D view (one per checkpoint over a run).
    struct NeurogramGraphs {
        std::string title;
        std::vector<NeurogramStep> steps; // a single neurogram: one entry, step -1
    };
    std::shared_ptr<const NeurogramGraphs> neurograms;
};

// Errors: ErrorKind::Usage (exit 2) for everything a user gives wrong, one line naming it.
Expected<ExplainOutcome> runExplain(const ExplainArgs& args);

// The `project` subcommand: one layer's activations over validation samples of a data set, projected to 2D by
// PCA or t-SNE, drawn as a scatter plot coloured by class, with a JSON file holding every point (x, y, class,
// and the sample's index in the validation split, to go back to the input).
struct ProjectArgs {
    std::string model = "builtin:cnn";
    std::string data = "fashion-mnist";
    std::string layer;          // empty: the input of the model's last layer (its penultimate features)
    std::string method = "pca"; // pca | tsne
    int64_t samples = 2000;     // first N validation samples
    int64_t limit = 0;          // data: keep the first N samples of each split (0: all)
    int64_t trainSteps = 0;     // train on the data first (built-in models start random)
    int64_t classes = 10;
    uint64_t seed = 1;
    double perplexity = 30.0, theta = 0.5;
    int iterations = 750;
    std::string out = "projection.png";
    std::string json; // empty: `out` with .json
    bool keepCloud = false; // also return the points, samples and predictions (ExplainOutcome::cloud)
};

Expected<ExplainOutcome> runProject(const ProjectArgs& args);

// The `neurogram` subcommand: KPIs of a model on a data set linked to its layers by measured contributions
// (engine/explain/neurogram.hpp), as a picture and a JSON report.
struct NeurogramArgs {
    std::string model = "builtin:cnn";
    std::string data = "fashion-mnist";
    int64_t samples = 1000;   // first N samples of each split
    int64_t limit = 0;
    int64_t trainSteps = 0;
    int64_t classes = 10;
    uint64_t seed = 1;
    bool stability = true;
    std::string shiftData; // a second labelled data set (its validation split) measured like the first; "": none
    // A recorded run with checkpoints: the neurogram at each of them (at most maxSteps, evenly spread), or at
    // `step` only (>= 0). `model` empty: the run's own model.
    std::string run;
    int64_t step = -1;
    int64_t maxSteps = 12;
    std::string out = "neurogram.png";
    std::string json;
    bool keepGraphs = false; // also return the neurograms (ExplainOutcome::neurograms) for the 3D view
};

Expected<ExplainOutcome> runNeurogram(const NeurogramArgs& args);

// The `features` subcommand: feature visualisation of one layer's units (conv channels, neurons, or the output's
// classes): an input optimised to excite each unit (activation maximisation with jitter, blur and total
// variation) next to the real inputs of a pool (a data set's validation split, or --input files) that excite it
// most; a picture and a JSON report.
struct FeaturesArgs {
    std::string model = "builtin:cnn";
    std::string data;       // the pool: the first `samples` validation samples of a data set ...
    capture::InputOptions input; // ... or the samples of a file/folder (--input and its image options)
    int64_t limit = 0, trainSteps = 0, classes = 10;
    uint64_t seed = 1;
    std::string layer;         // "" / "output": the model's output (one unit per class)
    std::string units;         // "0-7,12" | "all"; empty: every class of the output (up to 16), else 0-7
    int64_t topK = 6;          // real inputs shown per unit (0: none)
    int64_t samples = 2000;    // pool size
    int steps = 200;           // activation maximisation steps (0: only the real inputs)
    std::string start = "noise"; // noise | top: start from grey noise, or from each unit's most exciting input
    double lr = 0.05;
    int jitter = 2, blurEvery = 4;
    double blurSigma = 0.5, tv = 0.3;
    std::string out = "features.png";
    std::string json;
};

Expected<ExplainOutcome> runFeatures(const FeaturesArgs& args);

} // namespace ts::explain
