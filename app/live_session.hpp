// A live training session: model + data + background trainer, with every K-th step's snapshot reduced to
// per-neuron and per-layer statistics (stats module) and pushed into a bounded Timeline. Torch stays inside
// live_session.cpp; this header is torch-free so the UI code includes it cheaply.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/input_flags.hpp"
#include "app/timeline.hpp"
#include "engine/capture/network.hpp"
#include "engine/core/error.hpp"
#include "engine/dynamics/weight_atlas.hpp"
#include "engine/runs/run_store.hpp"
#include "engine/scene/network.hpp"
#include "engine/ui/panel_images.hpp"
#include "engine/ui/panels.hpp"

namespace ts::app {

struct SessionOptions {
    std::string model = "builtin:mlp";
    std::string data = "spirals";
    int64_t limit = 0;   // first N samples of train and validation (0: all)
    int64_t steps = 600; // planned training steps
    int64_t batchSize = 64;
    double learningRate = 1e-3;
    std::string optimizer = "adam";
    int64_t captureEvery = 10; // snapshot every K steps (1: every step)
    int64_t evalEvery = 50;
    uint64_t seed = 1;
    int histogramBins = 48;
    // Inspection instead of training (`view`): one forward and backward pass over a probe batch of
    // batchSize samples is captured (activations, their gradients, weights); the weights are not changed.
    bool inspectOnly = false;
    InputSpec input;                // when given(): these inputs instead of `data`
    std::string objective = "auto"; // capture::parseObjective names
    // Recorded runs (docs/RUN_FORMAT.md): `recordRun` writes this session's snapshots into a run folder
    // (train/demo --run DIR); `openRun` shows a recorded run instead of training (open RUN), following
    // snapshots committed later when `followRun`, else only those there when it was opened.
    std::string recordRun, openRun;
    // Recording: each layer's weight matrix is stored at every snapshot when it has at most this many weights
    // (for Hinton diagrams of any recorded step), up to 4x this many per snapshot in all; 0 stores none.
    int64_t recordMatrixMax = 262144;
    // Checkpoints (RUN/checkpoints): the parameters and buffers at the first snapshot at or after every N steps.
    int64_t checkpointEvery = 0;
    bool followRun = true;
    bool publishParameters = false; // latestParameters() from the first snapshot on (view --view weights)
    // Where training runs (train/demo --device: auto, cpu, cuda, cuda:N; capture::decideDevice). On a CUDA
    // device the statistics are reduced there; the Explain and Landscape panels, which run the model on host
    // tensors, then say they need --device cpu.
    std::string device = "cpu";
};

class LiveSession {
  public:
    static Expected<std::unique_ptr<LiveSession>> create(const SessionOptions& options);
    ~LiveSession();

    const capture::Network& network() const;
    bool recordedRun() const; // opened from a run store (no trainer)
    bool inspectOnly() const; // view: one inspection pass, no training
    // A recorded run: one neuron's mean activation over every committed snapshot, in at most maxPoints
    // windows (the store's time pyramids). Safe from the UI thread.
    Expected<runs::Series> neuronSeries(const std::string& layer, int64_t neuron, int maxPoints) const;
    // A recorded run: calls fn with the session's reader, under the lock its follower and loader share (one
    // reader per file: HDF5 shares the objects of a file opened twice in a process, and a refresh through one
    // handle invalidates the other's). Any thread.
    Status withRunReader(const std::function<Status(const runs::RunReader&)>& fn) const;
    const std::string& dataName() const;
    // Where the model lives ("cpu", "cuda:0"); "" for a recorded run (no model).
    std::string trainingDevice() const;
    int64_t numClasses() const;

    // Training control (safe from the UI thread).
    Status start(bool paused);
    void pause();
    void resume();
    void requestStep();
    void setLearningRate(double lr);
    void stop();
    bool finished() const; // planned steps done, stopped or failed
    Status result() const; // the failure of a failed run (NaN, ...)
    void waitUntilFinished();

    Timeline& timeline();
    Curves curves() const;
    ui::TrainingView trainingView() const;
    std::vector<ui::HealthAlert> alerts() const;

    // Dense weights ([out x in], for edges) of the latest snapshot, mapped onto scene layers: a Linear node's
    // weight connects the node feeding it to the node itself. Large matrices (> maxElements) are skipped.
    std::vector<scene::DenseWeights> latestDenseWeights(size_t maxElements = 4'000'000) const;
    // Every parameter of the newest snapshot (values and gradients) for the weights view, published only while
    // wanted (copying tens of millions of weights at every snapshot otherwise costs for nothing). Any thread.
    struct ParameterSet {
        int64_t step = 0;
        std::vector<dynamics::WeightMatrix> values; // named_parameters() order; a vector is one row
        std::vector<std::vector<float>> grads;      // same shapes; empty where a parameter has none
    };
    void wantParameters(bool on);
    std::shared_ptr<const ParameterSet> latestParameters() const;
    // The Explain panel: an attribution heatmap (engine/explain) of one sample of the session's data (the
    // validation split, else the training inputs, e.g. view's --input) for one class. Computed by the thread that
    // owns the model: at each snapshot while wanted (it follows training), or at once on the calling thread when
    // nothing else uses the model (view's inspection, a finished run). While paused, at the next step.
    struct ExplainRequest {
        std::string method = "lrp"; // gradient, gradxinput, smoothgrad, ig, lrp, lrp-ab
        int64_t target = -1;        // class; -1: the predicted one
        int64_t sample = 0;
        bool layers = false; // also each layer's relevance per neuron (LRP methods), for the neurons' colours
        bool operator==(const ExplainRequest&) const = default;
    };
    struct Explanation {
        ExplainRequest request;
        int64_t step = -1;
        std::string line;  // method, class, prediction, label
        std::string error; // one line when it could not be computed (a model without an LRP rule, ...)
        std::shared_ptr<const ui::PanelImage> image;
        // With request.layers: per layer name (the input's included), one value per neuron in the layer's output
        // order; for methods other than LRP only the input has values (the attribution map).
        std::vector<std::pair<std::string, std::vector<float>>> relevance;
    };
    void wantExplanation(std::optional<ExplainRequest> request); // nullopt: stop computing
    std::shared_ptr<const Explanation> latestExplanation() const;
    int64_t explainSamples() const; // samples to choose from

    // The Landscape panel: the loss surface around the current weights (engine/landscape) on the first `samples`
    // samples of the Explain data, recomputed by the thread that owns the model every `every` snapshots while
    // wanted. Its axes are the two principal components of the weights recorded at each snapshot since it was
    // wanted (the reference's plot_trajectory, growing live), filter-normalised random ones until there are
    // three, and that path is drawn on it. When a batched landscape path fits the model (a Linear chain, or a
    // layer program: CNNs), the grid is computed on a thread of its own from copies of the weights while
    // training goes on; otherwise per point by the model's thread, while training waits. Like the Explain panel
    // it is computed at once on the calling thread when nothing else uses the model.
    struct LandscapeRequest {
        int grid = 21;         // points per axis
        int64_t samples = 256; // evaluation samples
        int every = 5;         // snapshots between recomputations
        bool operator==(const LandscapeRequest&) const = default;
    };
    struct LiveLandscape {
        LandscapeRequest request;
        int64_t step = -1;
        std::string line, error;
        size_t pathPoints = 0; // recorded weights on the path
        bool background = false; // computed beside training (a batched path), not while it waited
        std::shared_ptr<const ui::PanelImage> image;
    };
    void wantLandscape(std::optional<LandscapeRequest> request); // nullopt: stop (and forget the path)
    std::shared_ptr<const LiveLandscape> latestLandscape() const;
    // Waits until no landscape is being computed beside training, then (training over) computes the one at the
    // final weights if it is missing: headless, the last frame shows it.
    void settleLandscape();
    // Surfaces the landscape thread has computed and published (beside training) so far; whether it is
    // computing one now.
    int landscapesBesideTraining() const;
    bool landscapeComputing() const;

    // Conv2d kernels of the latest snapshot with the geometry inferred from the layers' shapes (for tracing
    // through convolutions); layers whose geometry does not fit a plain convolution are left out.
    std::vector<scene::ConvWeights> latestConvWeights() const;

  private:
    LiveSession();
    static Expected<std::unique_ptr<LiveSession>> createFromRun(const SessionOptions& options);
    struct Impl;
    std::unique_ptr<Impl> m;
};

} // namespace ts::app
