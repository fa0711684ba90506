// `train` and `demo`: a live training session shown in a window, or as PNG frames plus a summary when
// headless. Both share runTraining(); demo is train on built-in defaults.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>
#include <unistd.h>

#include "app/cli.hpp"
#include "app/commands.hpp"
#include "app/live_session.hpp"
#include "app/training_screen.hpp"
#include "app/viewer.hpp"
#include "engine/capture/device.hpp"
#include "engine/core/log.hpp"
#include "engine/core/text_file.hpp"
#include "engine/core/video.hpp"
#include "engine/ui/imgui_layer.hpp"

namespace ts::app {

using namespace ts::render;

namespace {

// SIGINT/SIGTERM during a run: the handler only records the signal; the frame loops stop the trainer after
// its current step, write what was done (summary.json) and exit 128 + signal (130, 143). A step or an
// inspection cannot be cut short, so a second signal ends the process at once (with the same status).
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "used in a signal handler");
extern "C" void onStopSignal(int sig) {
    if (g_signal.exchange(sig) != 0) _exit(128 + sig);
}
// view's picture: after a signal nothing more is computed or written.
int stoppedBeforeThePicture() {
    const int sig = g_signal.load();
    TS_LOG_INFO("stopped by signal %d before the picture was drawn; nothing written", sig);
    return 128 + sig;
}
void installStopSignals() {
    struct sigaction sa {};
    sa.sa_handler = onStopSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

// --device, as train, demo and view take it; `more` ends its help.
FlagSpec deviceFlag(const std::string& more) {
    return {"device", "auto|cpu|cuda[:N]",
            "where the model runs: auto is CUDA device 0 when LibTorch was built with CUDA and sees a device, else "
            "the CPU (one line says why); " + more,
            "auto"};
}

std::vector<FlagSpec> trainFlags(const std::string& defaultData, const std::string& defaultSteps) {
    return {
        {"model", "PATH|builtin", "TorchScript .pt file or builtin:mlp[:W1,W2,..] / builtin:cnn",
         "builtin:mlp"},
        {"data", "NAME|DIR", "spirals, circles, xor, gaussians, fashion-mnist, or an IDX folder",
         defaultData},
        {"limit", "N", "use the first N samples of train and validation", "all"},
        {"steps", "N", "training steps", defaultSteps},
        {"batch", "N", "batch size", "64"},
        {"lr", "X", "learning rate", "0.001"},
        {"optimizer", "NAME", "adam or sgd", "adam"},
        deviceFlag("cuda without one is an error"),
        {"capture-every", "K", "snapshot statistics every K steps (1: every step)", "10"},
        {"run", "DIR", "record every snapshot into this run folder (open it later with tensorscape open DIR)", ""},
        {"run-weights", "N", "with --run: store the weight matrices of layers of at most N weights at every snapshot "
                             "(Hinton diagrams of any step; 4N per snapshot in all; 0: none)", "262144"},
        {"checkpoint-every", "N", "with --run: also save the model's parameters and buffers at the first snapshot at "
                                  "or after every N steps (neurogram --run measures each; 0: none)", "0"},
        {"seed", "N", "random seed", "1"},
        {"out", "DIR", "folder for frames and summary.json when headless", "out/<command>"},
        {"frames", "N", "headless: frames to write; window: close after N frames", "8 / until closed"},
        {"record", "FILE.mp4", "headless: also write the frames as an H.264 video with ffmpeg, a time-lapse of "
                               "training (--frames 300 --fps 30: 10 s)", ""},
        {"fps", "N", "frame rate of --record", "30"},
        {"width", "W", "frame width", "1280"},
        {"height", "H", "frame height", "720"},
        {"headless", "", "render offscreen even when a display exists", ""},
        {"paused", "", "window: start paused (press play)", ""},
        {"screenshot", "PATH", "window: save the last frame to PATH (with --frames)", ""},
        {"select", "LAYER:I[,J..]", "select a neuron and trace its contributors (e.g. fc2:3); more indices are marked too", ""},
        {"tour", "", "window: start the guided camera tour (T toggles it)", ""},
        {"collapse", "NAME,..", "stages drawn as one box each (module prefixes, e.g. layer1,layer2)", ""},
        {"view", "NAME", "network; hinton: the weight matrix of --layer as a Hinton diagram; weights: every parameter, "
                         "live; explain: an attribution heatmap of a validation sample, following training; landscape: the loss surface around "
                         "the weights with the path so far (PCA), recomputed every few snapshots", "network"},
        {"colour-by", "STAT", "what colours the neurons: activation (mean), gradient (mean |gradient|), std, dead (zero "
                              "fraction), relevance (LRP of the first validation sample or input for its predicted "
                              "class, per neuron of every layer)", "activation"},
        {"layer", "NAME", "the layer selected at the start", ""},
        {"yaw", "DEG", "initial camera yaw", "-125"},
        {"pitch", "DEG", "initial camera pitch", "32"},
    };
}

const CommandSpec kTrainSpec{
    "train",
    "Trains a model with the live view: neurons coloured by their statistics, bundled "
    "connections,\nloss curves, layer inspector and health alerts.",
    "tensorscape train [--model PATH|builtin:mlp] [--data NAME|DIR] [options]", trainFlags("spirals", "600")};

std::string defaultDemoData() {
    return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
               ? "fashion-mnist"
               : "spirals";
}

struct DisplayOptions {
    bool headless = false;
    long frames = 0;
    uint32_t width = 1280, height = 720;
    std::string outDir, screenshot;
    std::string singlePng; // view: one picture at this path instead of frames + summary
    bool paused = false;
    bool forcedHeadless = false; // --headless given (no "no display" log line then)
    std::string select;          // LAYER:INDEX to select (and trace) at the start
    bool tour = false;
    std::optional<float> yawDeg, pitchDeg; // initial camera angles
    std::vector<std::string> collapse;     // stages drawn as one box
    std::string viewName;                  // --view: network (default), dynamics, distributions, hinton
    unsigned views = 0;                    // its RunViews bits (0: the network)
    std::string layer, compare;            // --layer NAME, --compare RUN2
    std::optional<int64_t> focusStep;      // open --step N
    NeuronStatistic colourBy = NeuronStatistic::MeanActivation; // --colour-by
    std::string record;                    // headless: the frames as an MP4 too
    int fps = 30;
};

Expected<SessionOptions> parseSession(const Args& a, const std::string& defaultData, long defaultSteps) {
    SessionOptions o;
    o.model = a.get("model", "builtin:mlp");
    if (a.has("model") && o.model.empty())
        return makeError(ErrorKind::Usage, "--model is empty (a .pt file or builtin:mlp / builtin:cnn)");
    o.data = a.get("data", defaultData);
    o.optimizer = a.get("optimizer", "adam");
    o.device = a.get("device", "auto");
    if (auto d = capture::parseDeviceFlag(o.device); !d) return d.error();
    auto limit = a.getInt("limit", 0, 0, 1L << 40);
    auto steps = a.getInt("steps", defaultSteps, 1, 100'000'000);
    auto batch = a.getInt("batch", 64, 1, 1 << 20);
    auto every = a.getInt("capture-every", 10, 1, 1'000'000);
    auto seed = a.getInt("seed", 1, 0, 1L << 40);
    auto lr = a.getFloat("lr", 1e-3);
    for (auto* e : {&limit, &steps, &batch, &every, &seed})
        if (!*e) return e->error();
    if (!lr) return lr.error();
    if (!(*lr > 0.0) || !std::isfinite(*lr))
        return makeError(ErrorKind::Usage, "--lr must be a positive number");
    o.limit = *limit;
    o.steps = *steps;
    o.batchSize = *batch;
    o.captureEvery = *every;
    o.evalEvery = std::max<int64_t>(*every * 5, 10);
    o.seed = uint64_t(*seed);
    o.learningRate = *lr;
    o.recordRun = a.get("run");
    if (a.has("run") && o.recordRun.empty())
        return makeError(ErrorKind::Usage, "--run is empty (a folder for the run, e.g. runs/exp1)");
    auto matrixMax = a.getInt("run-weights", o.recordMatrixMax, 0, int64_t(1) << 28);
    if (!matrixMax) return matrixMax.error();
    o.recordMatrixMax = *matrixMax;
    auto checkpointEvery = a.getInt("checkpoint-every", 0, 0, int64_t(1) << 40);
    if (!checkpointEvery) return checkpointEvery.error();
    if (*checkpointEvery > 0 && o.recordRun.empty())
        return makeError(ErrorKind::Usage, "--checkpoint-every saves into a run: give --run DIR too");
    o.checkpointEvery = *checkpointEvery;
    return o;
}

Expected<DisplayOptions> parseDisplay(const Args& a, const std::string& command) {
    DisplayOptions d;
    d.forcedHeadless = a.has("headless");
    d.headless = d.forcedHeadless || !displayAvailable();
    auto frames = a.getInt("frames", 0, 0, 1'000'000);
    auto w = a.getInt("width", 1280, 16, 16384);
    auto h = a.getInt("height", 720, 16, 16384);
    for (auto* e : {&frames, &w, &h})
        if (!*e) return e->error();
    d.frames = *frames;
    d.width = uint32_t(*w);
    d.height = uint32_t(*h);
    d.record = a.get("record");
    if (a.has("record")) {
        if (d.record.empty()) return makeError(ErrorKind::Usage, "--record needs a file name (FILE.mp4)");
        auto fps = a.getInt("fps", 30, 1, 120);
        if (!fps) return fps.error();
        d.fps = int(*fps);
        d.headless = d.forcedHeadless = true; // the video is rendered offscreen, window or not
    } else if (a.has("fps")) {
        return makeError(ErrorKind::Usage, "--fps is the frame rate of --record: give --record FILE.mp4 too");
    }
    d.outDir = a.get("out", "out/" + command);
    // An empty --out wrote frames into the filesystem root.
    if (a.has("out") && d.outDir.empty())
        return makeError(ErrorKind::Usage, "--out is empty (a folder, e.g. out/" + command + ")");
    d.screenshot = a.get("screenshot");
    d.paused = a.has("paused");
    d.select = a.get("select");
    d.tour = a.has("tour");
    for (const auto& part : splitCommas(a.get("collapse")))
        if (!part.empty()) d.collapse.push_back(part);
    d.viewName = a.get("view", "network");
    if (d.viewName != "network") {
        auto bits = RunViews::parseView(d.viewName);
        if (!bits)
            return makeError(ErrorKind::Usage, "--view " + d.viewName +
                                                   ": not a view (network, dynamics, series, distributions, hinton, "
                                                   "weights, explain, landscape)");
        d.views = *bits;
    }
    const std::string colourBy = a.get("colour-by", "activation");
    const std::vector<std::string> colourNames = {"activation", "gradient", "std", "dead", "relevance"};
    const auto named = std::find(colourNames.begin(), colourNames.end(), colourBy);
    if (named == colourNames.end())
        return makeError(ErrorKind::Usage, "--colour-by " + colourBy + ": not a statistic (activation, gradient, std, dead, relevance)");
    d.colourBy = NeuronStatistic(named - colourNames.begin());
    if (d.colourBy == NeuronStatistic::Relevance && command == "open")
        return makeError(ErrorKind::Usage, "--colour-by relevance needs the model (train or view); a recorded run has none");
    d.layer = a.get("layer");
    if (a.has("layer") && d.layer.empty()) return makeError(ErrorKind::Usage, "--layer is empty (a layer name, e.g. fc1)");
    d.compare = a.get("compare");
    if (a.has("compare") && d.compare.empty()) return makeError(ErrorKind::Usage, "--compare is empty (a run folder)");
    for (auto [flag, dst] : {std::pair{"yaw", &d.yawDeg}, std::pair{"pitch", &d.pitchDeg}}) {
        auto v = a.getFloat(flag, 0.0);
        if (!v) return v.error();
        if (a.has(flag)) *dst = float(*v);
    }
    return d;
}

// An oblique view from the input side: data flows left to right, layer faces visible. The side panels take
// about a quarter of the width each, so the scene is fitted into the middle half.
Camera initialCamera(const Aabb& bounds, float aspect, const DisplayOptions& d) {
    Camera cam;
    cam.yaw = glm::radians(d.yawDeg.value_or(-125.0f));
    cam.pitch = glm::radians(d.pitchDeg.value_or(32.0f));
    cam.fitToScene(bounds, aspect * 0.55f);
    return cam;
}

// Every layer's neurons, the input's included (as the view draws them).
int64_t neuronsWithInput(const capture::Network& net) {
    int64_t n = 0;
    for (const auto& node : net.nodes)
        n += node.neurons;
    return n;
}

Status writeSummary(const std::string& path, LiveSession& s, double seconds, long frames, const TrainingScreen& screen) {
    auto curves = s.curves();
    auto view = s.trainingView();
    // JSON has no NaN: missing or non-finite values are written as null.
    auto last = [](const std::vector<float>& v) -> nlohmann::json {
        if (v.empty() || !std::isfinite(v.back())) return nullptr;
        return double(v.back());
    };
    const auto& net = s.network();
    nlohmann::json j;
    j["model"] = net.modelName;
    j["data"] = s.dataName();
    if (const std::string device = s.trainingDevice(); !device.empty()) j["device"] = device; // none for a recorded run
    j["layers"] = net.nodes.empty() ? 0 : net.nodes.size() - 1;
    j["neurons"] = neuronsWithInput(net);
    j["parameters"] = net.usedParams + net.unusedParams; // all of the model's, owned by a layer or not
    j["capture"] = {{"parameters_used", net.usedParams},
                    {"parameters_captured", net.capturedParams},
                    {"parameter_coverage", net.paramCoverage()},
                    {"parameters_of_uncalled_modules", net.unusedParams},
                    {"not_captured", net.uncaptured}};
    j["batch"] = view.batchSize; // samples per step (the training set's size when that is smaller than --batch)
    j["steps"] = view.step;
    j["snapshots"] = s.timeline().size();
    j["final_train_loss"] = last(curves.trainLoss);
    j["final_train_accuracy"] = last(curves.trainAcc);
    j["final_val_loss"] = last(curves.valLoss);
    j["final_val_accuracy"] = last(curves.valAcc);
    j["frames"] = frames;
    j["seconds"] = seconds;
    j["status"] = view.status;
    nlohmann::json alerts = nlohmann::json::array();
    for (const auto& a : s.alerts())
        alerts.push_back(a.message + " (" + a.layer + ", step " + std::to_string(a.step) + ")");
    j["alerts"] = alerts;
    j["marked_neurons"] = screen.markedNeurons(); // the selected neuron and those marked with it (--select)
    const int stat = std::clamp(screen.settings.statistic, 0, int(NeuronStatistic::Count) - 1);
    j["colour_by"] = neuronStatisticNames()[size_t(stat)];
    if (NeuronStatistic(stat) == NeuronStatistic::Relevance) {
        j["relevance_layers"] = screen.relevanceLayers(); // layers (the input's included) whose neurons show it
        if (!screen.relevanceError().empty()) j["relevance_error"] = screen.relevanceError();
        if (auto e = screen.relevanceShown()) { // what was explained, and each layer's total (before normalisation)
            j["relevance_of"] = e->line;
            nlohmann::json sums = nlohmann::json::object();
            for (const auto& [name, values] : e->relevance)
                sums[name] = std::accumulate(values.begin(), values.end(), 0.0);
            j["relevance_sums"] = sums;
        }
    }
    j["landscapes_beside_training"] = s.landscapesBesideTraining(); // live Loss landscape surfaces computed
                                                                    // on the landscape thread
    // Written under a temporary name and renamed: a failed write never leaves a file that looks complete.
    return writeTextFile(path, j.dump(2) + "\n");
}

// Headless: train in the background; every steps/frames steps render the live view (with its panels) to a
// PNG.
// Adds "view", "layer" and "anomalies" to a headless view's summary file.
Status addViewSummary(const std::string& path, const std::string& view, TrainingScreen& screen) {
    nlohmann::json j;
    {
        std::ifstream in(path);
        j = nlohmann::json::parse(in, nullptr, false);
    }
    if (j.is_discarded()) return makeError(ErrorKind::Failed, path + ": cannot read back the summary");
    j["view"] = view;
    j["layer"] = screen.runViews()->selectedLayer();
    j["focus_step"] = screen.runViews()->focusedStep();
    auto& list = j["anomalies"] = nlohmann::json::array();
    for (const auto& a : screen.runViews()->anomalies())
        list.push_back({{"kind", dynamics::anomalyKindName(a.kind)}, {"series", a.series}, {"step", a.step},
                        {"end_step", a.endStep}, {"message", a.message}});
    std::ofstream out(path);
    out << j.dump(2) << "\n";
    if (!out) return makeError(ErrorKind::Failed, path + ": cannot write the summary");
    return {};
}

// --view: the views of whole runs fill the picture, drawn once everything they read has arrived. Errors: what
// the views could not read, a Hinton diagram without its layer, weights of a run that stores none.
Status showOnlyRunViews(LiveSession& session, TrainingScreen& screen, const DisplayOptions& d) {
    screen.showOnlyRunViews(true);
    screen.runViews()->waitIdle();
    if (auto e = screen.runViews()->error(); !e.empty()) return makeError(ErrorKind::Usage, e);
    if (const auto& h = screen.runViews()->hintonStatus(); !h.empty() && (d.views & RunViews::Hinton))
        return makeError(ErrorKind::Usage, "--view hinton: " + h);
    if ((d.views & RunViews::Weights) && session.recordedRun() && !screen.runViews()->hasWeights())
        return makeError(ErrorKind::Usage, "--view weights: the run stores no weight matrices (record with train "
                                           "--run-weights N or tensorscape.init(..., matrices=N))");
    return {};
}

int runHeadless(LiveSession& session, TrainingScreen& screen, const DisplayOptions& d) {
    auto t0 = std::chrono::steady_clock::now();
    auto ctx = Context::create({});
    if (!ctx) return reportError(ctx.error());
    auto target = OffscreenTarget::create(**ctx, d.width, d.height);
    if (!target) return reportError(target.error());
    auto renderer = NetworkRenderer::create(**ctx, kColorFormat, 1);
    if (!renderer) return reportError(renderer.error());
    auto overlay = ui::ImGuiLayer::create(**ctx, kColorFormat, 2, nullptr);
    if (!overlay) return reportError(overlay.error());
    std::error_code ec;
    if (d.singlePng.empty()) std::filesystem::create_directories(d.outDir, ec);
    long frames = !d.singlePng.empty() ? 1 : d.frames > 0 ? d.frames : 8;
    // --record: the same frames into an MP4, opened before training starts so a bad path fails at once.
    std::unique_ptr<VideoWriter> video;
    if (!d.record.empty()) {
        if (const auto parent = std::filesystem::path(d.record).parent_path(); !parent.empty())
            std::filesystem::create_directories(parent, ec);
        auto v = VideoWriter::open(d.record, int(d.width), int(d.height), d.fps);
        if (!v) return reportError(v.error());
        video = std::move(*v);
    }
    float aspect = float(d.width) / float(d.height);
    Camera cam = initialCamera(screen.bounds(), aspect, d);
    auto tStart = std::chrono::steady_clock::now();
    if (auto s = session.start(false); !s) return reportError(s.error());
    TS_LOG_DEBUG("start (inspection: forward, backward, statistics): %.2f s",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - tStart).count());
    int64_t planned = session.trainingView().totalSteps;
    float lastFrameMs = 0.0f;
    if (session.recordedRun()) session.waitUntilFinished();
    if (d.views)
        if (auto st = showOnlyRunViews(session, screen, d); !st) return reportError(st.error());
    const auto recorded = session.timeline().size();
    screen.logRelevanceErrors = d.singlePng.empty(); // view's one picture: the error ends the command instead
    for (long f = 0; f < frames; ++f) {
        // Frame f shows the network after (f + 1) / frames of the planned steps (of a recorded run: of its
        // snapshots, pinned one by one).
        int64_t due = planned * (f + 1) / frames;
        if (session.recordedRun() && recorded > 0 && !d.focusStep)
            if (auto e = session.timeline().at(std::max<size_t>(1, recorded * size_t(f + 1) / size_t(frames)) - 1))
                screen.pinStep(e->step);
        while (!session.finished() && session.trainingView().step < due && !g_signal.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (g_signal.load()) {
            session.stop(); // ends after the current step
            if (!d.singlePng.empty()) return stoppedBeforeThePicture();
            frames = f;
            break;
        }
        if (f + 1 == frames) {
            session.waitUntilFinished();
            session.settleLandscape(); // a surface still computing beside training: the last frame shows it
        }
        if (auto s = screen.update(**renderer); !s) return reportError(s.error());
        // view --colour-by relevance on a model LRP cannot explain: the picture would show no values; say why
        // before writing it.
        if (!d.singlePng.empty() && d.colourBy == NeuronStatistic::Relevance && !screen.relevanceError().empty())
            return reportError(makeError(ErrorKind::Usage, "--colour-by relevance: " +
                                                           screen.relevanceError().substr(0, screen.relevanceError().find("; use --method"))));
        if (!d.select.empty()) {
            auto ids = screen.parseNeurons(d.select);
            if (!ids) return reportError(ids.error());
            screen.markNeurons(*ids);
            if (auto s = screen.selectNeuron(**renderer, ids->front()); !s) return reportError(s.error());
        }
        auto frameStart = std::chrono::steady_clock::now();
        if (f > 0) // a gentle sway through the frames; a steady slow orbit in a video
            cam.orbit(video ? 3.0f : float(f % 2 ? 12 : -12), 0.0f);
        auto frame = (*target)->beginFrame();
        if (!frame) return reportError(frame.error());
        if (auto s = (*renderer)->prepare(*frame, cam); !s) return reportError(s.error());
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        if (!d.views) (*renderer)->record(*frame, cam); // --view: the panels fill the picture
        endRendering(*frame);
        ui::FrameStats stats{lastFrameMs, screen.scene().position.size(), (*renderer)->lastStats().instances,
                             (*ctx)->deviceInfo().name, (*ctx)->allocator().bytesInUse(), true};
        if (f == 0) { // let auto-sized panels measure themselves
            (*overlay)->newFrame(frame->extent, 1.0f / 30.0f);
            screen.buildUi(cam, aspect, stats);
            (*overlay)->discardFrame();
            // What the views started while measuring (the weights view's raster for this canvas) is drawn now.
            if (d.views) screen.runViews()->waitIdle();
        }
        (*overlay)->newFrame(frame->extent, 1.0f / 30.0f);
        screen.buildUi(cam, aspect, stats);
        if (auto s = (*overlay)->render(*frame); !s) return reportError(s.error());
        ImageRgba8 img;
        if (auto s = (*target)->endFrame(*frame, &img); !s) return reportError(s.error());
        lastFrameMs =
            std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - frameStart).count();
        char name[64];
        std::snprintf(name, sizeof(name), "/frame_%03ld.png", f);
        std::string path = d.singlePng.empty() ? d.outDir + name : d.singlePng;
        if (auto s = writePng(path, img); !s) return reportError(s.error());
        if (!d.singlePng.empty()) TS_LOG_INFO("wrote %s", path.c_str());
        if (video)
            if (auto s = video->write(img); !s) return reportError(s.error());
    }
    if (video) { // also after a signal: the frames so far
        if (auto s = video->close(); !s) return reportError(s.error());
        TS_LOG_INFO("wrote %s (%lld frames, %ux%u at %d fps)", d.record.c_str(), static_cast<long long>(video->frames()),
                    d.width, d.height, d.fps);
    }
    if (!d.singlePng.empty()) {
        if ((*ctx)->validationMessageCount() > 0)
            return reportError(makeError(ErrorKind::Failed, "Vulkan validation messages (see above)"));
        // The picture's summary (layers, capture coverage, neurons) beside it: view.png -> view.json.
        const std::string json = std::filesystem::path(d.singlePng).replace_extension(".json").string();
        session.waitUntilFinished();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (auto s = writeSummary(json, session, seconds, 1, screen); !s) return reportError(s.error());
        if (d.views) // the view, its layer and what the run's anomaly detection found, beside the picture
            if (auto s = addViewSummary(json, d.viewName, screen); !s) return reportError(s.error());
        TS_LOG_INFO("wrote %s", json.c_str());
        return 0;
    }
    session.waitUntilFinished();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (auto s = writeSummary(d.outDir + "/summary.json", session, seconds, frames, screen); !s)
        return reportError(s.error());
    if (const int sig = g_signal.load()) {
        TS_LOG_INFO("stopped by signal %d after %lld steps; wrote %ld frames and summary.json to %s", sig,
                    (long long)session.trainingView().step, frames, d.outDir.c_str());
        return 128 + sig;
    }
    if ((*ctx)->validationMessageCount() > 0)
        return reportError(makeError(ErrorKind::Failed, std::to_string((*ctx)->validationMessageCount()) +
                                                            " Vulkan validation messages (see above)"));
    auto v = session.trainingView();
    if (session.recordedRun()) {
        TS_LOG_INFO("showed %zu snapshots of %s (steps up to %lld) in %.1f s; wrote %ld frames and summary.json to %s",
                    session.timeline().size(), session.dataName().c_str(), (long long)v.step, seconds, frames,
                    d.outDir.c_str());
        if (auto r = session.result(); !r) return reportError(r.error());
        return 0;
    }
    TS_LOG_INFO(
        "trained %lld steps in %.1f s; final training loss %.4f; wrote %ld frames and summary.json to %s",
        (long long)v.step, seconds, v.trainLoss.empty() ? NAN : double(v.trainLoss.back()), frames,
        d.outDir.c_str());
    if (auto r = session.result(); !r) return reportError(r.error());
    return 0;
}

int runWindow(LiveSession& session, TrainingScreen& screen, const DisplayOptions& d,
              const std::string& title) {
    auto viewer = Viewer::create(ViewerOptions::make(title, d.width, d.height, d.frames, d.screenshot));
    if (!viewer) return reportError(viewer.error());
    Viewer& v = **viewer;
    v.sceneBounds = screen.bounds();
    v.camera() = initialCamera(screen.bounds(), v.aspect(), d);
    if (auto s = session.start(d.paused); !s) return reportError(s.error());
    Status failure;
    v.keyHook = [&](int key) {
        if (key == 'T') screen.toggleTour(v.camera(), v.aspect());
        if (key == 'L') screen.toggleLandscape();
    };
    if (d.tour) screen.toggleTour(v.camera(), v.aspect());
    std::optional<uint32_t> initialSelection;
    if (!d.select.empty()) {
        auto ids = screen.parseNeurons(d.select);
        if (!ids) return reportError(ids.error());
        screen.markNeurons(*ids);
        initialSelection = ids->front();
    }
    auto s = v.run(
        [&](float dt) {
            if (g_signal.load()) v.requestClose();
            screen.tick(v.camera(), dt);
            if (auto click = v.takeClick()) {
                if (auto c = screen.click(v.network(), v.camera(), v.target().extent(), *click);
                    !c && failure.isOk())
                    failure = c;
            }
            if (auto u = screen.update(v.network()); !u && failure.isOk()) failure = u;
            if (initialSelection && v.network().lastStats().instances > 0) {
                if (auto c = screen.selectNeuron(v.network(), initialSelection); !c && failure.isOk())
                    failure = c;
                initialSelection.reset();
            }
        },
        {},
        [&] {
            ui::FrameStats stats{v.lastFrameMs(), screen.scene().position.size(),
                                 v.network().lastStats().instances, v.context().deviceInfo().name,
                                 v.context().allocator().bytesInUse()};
            // The V key changes vsync behind the panel's back: the checkbox shows the target's state.
            screen.settings.vsync = v.target().vsync();
            screen.hoverTooltip(v.network(), v.camera(), v.target().extent());
            screen.buildUi(v.camera(), v.aspect(), stats);
            if (screen.fitRequested) v.camera().fitToScene(screen.bounds(), v.aspect());
            if (screen.screenshotRequested) v.requestScreenshot();
            if (screen.vsyncRequest) v.setVsync(*screen.vsyncRequest);
            screen.fitRequested = screen.screenshotRequested = false;
            screen.vsyncRequest.reset();
        });
    session.stop();
    if (!s) return reportError(s.error());
    if (!failure) return reportError(failure.error());
    if (const auto n = v.context().validationMessageCount(); n > 0)
        return reportError(makeError(ErrorKind::Failed, std::to_string(n) + " Vulkan validation messages (see above)"));
    if (const int sig = g_signal.load()) return 128 + sig;
    return 0;
}

} // namespace

int runSession(const SessionOptions& opts, const DisplayOptions& display, const std::string& command);

int runTraining(const Args& args, const std::string& command, const std::string& defaultData,
                long defaultSteps) {
    auto opts = parseSession(args, defaultData, defaultSteps);
    if (!opts) return reportError(opts.error());
    auto display = parseDisplay(args, command);
    if (!display) return reportError(display.error());
    return runSession(*opts, *display, command);
}

int runSession(const SessionOptions& opts, const DisplayOptions& display, const std::string& command) {
    installStopSignals();
    // Phase times at debug level (TS_LOG_LEVEL=debug): where the time to the first picture goes.
    auto t0 = std::chrono::steady_clock::now();
    auto lap = [&](const char* what) {
        auto now = std::chrono::steady_clock::now();
        long peakKiB = 0; // VmHWM: the peak resident set so far
        if (FILE* f = std::fopen("/proc/self/status", "r")) {
            char line[256];
            while (std::fgets(line, sizeof(line), f))
                if (std::sscanf(line, "VmHWM: %ld kB", &peakKiB) == 1) break;
            std::fclose(f);
        }
        TS_LOG_DEBUG("%s: %.2f s (peak RSS so far %ld MiB)", what, std::chrono::duration<double>(now - t0).count(),
                     peakKiB / 1024);
        t0 = now;
    };
    if ((display.views & (RunViews::Explain | RunViews::Landscape)) && !opts.openRun.empty())
        return reportError(makeError(ErrorKind::Usage, "--view " + display.viewName + " needs the model, which a recorded "
                                                       "run does not hold: tensorscape view MODEL --view " + display.viewName +
                                                       ", or train --view " + display.viewName +
                                                       (display.viewName == "landscape" ? " (tensorscape landscape --run RUN draws a run's path)" : "")));
    SessionOptions sessionOptions = opts;
    // The weights view of an inspection needs the parameters of its one snapshot.
    if (display.views & RunViews::Weights) sessionOptions.publishParameters = true;
    auto session = LiveSession::create(sessionOptions);
    if (!session) return reportError(session.error());
    lap("session (data, model, capture graph, network, trainer)");
    // Inspection (view) runs before the scene is built: the snapshot's activations, gradients and LibTorch's
    // saved tensors are freed before the per-neuron scene arrays exist, so the two peaks do not add up.
    if (opts.inspectOnly) {
        if (auto s = (*session)->start(false); !s) return reportError(s.error());
        lap("inspection (forward, backward, statistics)");
        if (g_signal.load()) return stoppedBeforeThePicture();
    }
    if ((display.views & ~unsigned(RunViews::Hinton | RunViews::Weights | RunViews::Explain | RunViews::Landscape)) &&
        opts.openRun.empty())
        return reportError(makeError(ErrorKind::Usage, "--view " + display.viewName +
                                                           " shows a recorded run: tensorscape open RUN --view " +
                                                           display.viewName));
    auto screen = TrainingScreen::create(**session, display.collapse, opts.openRun, display.compare, display.views);
    if (!screen) return reportError(screen.error());
    if (opts.inspectOnly && g_signal.load()) return stoppedBeforeThePicture();
    (*screen)->settings.statistic = int(display.colourBy);
    if (!display.layer.empty())
        if (auto s = (*screen)->selectLayerByName(display.layer); !s) return reportError(s.error());
    if (display.focusStep) {
        (*screen)->runViews()->focusStep(*display.focusStep);
        (*screen)->pinStep(*display.focusStep);
    }
    lap("scene (layout, neuron positions, cluster tree)");
    TS_LOG_INFO("%s on %s: %lld neurons, %lld parameters", (*session)->network().modelName.c_str(),
                (*session)->dataName().c_str(), (long long)neuronsWithInput((*session)->network()),
                (long long)((*session)->network().usedParams + (*session)->network().unusedParams));
    if (display.headless) {
        if (!display.forcedHeadless)
            TS_LOG_INFO("no display: rendering offscreen into %s",
                        display.singlePng.empty() ? display.outDir.c_str() : display.singlePng.c_str());
        return runHeadless(**session, **screen, display);
    }
    return runWindow(**session, **screen, display, "tensorscape " + command);
}

int cmdTrain(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kTrainSpec, argc, argv, code);
    if (!args) return code;
    return runTraining(*args, "train", "spirals", 600);
}

// Flags of the picture and camera that view and open share.
const std::vector<FlagSpec> pictureFlags = {
    {"view", "NAME", "what to show: network; weights (every parameter); hinton (the weights of --layer); explain "
                     "(an attribution heatmap of an input, view only); landscape (the loss surface around the "
                     "model, view only); of a "
                     "recorded run also dynamics (curves, anomalies, layers over the run, a layer's neuron series), "
                     "series, distributions (ridgelines)", "network"},
    {"colour-by", "STAT", "what colours the neurons: activation (mean), gradient (mean |gradient|), std, dead (zero "
                          "fraction), relevance (LRP of the first validation sample or input for its predicted "
                          "class, per neuron of every layer)", "activation"},
    {"layer", "NAME", "the layer selected at the start (the views show it)", ""},
    {"width", "W", "picture width", "1280"},
    {"height", "H", "picture height", "720"},
    {"headless", "", "render offscreen even when a display exists", ""},
    {"screenshot", "PATH", "window: save the last frame to PATH (with --frames)", ""},
    {"select", "LAYER:I[,J..]", "select a neuron and trace its contributors (e.g. fc1:3); more indices are marked too", ""},
    {"collapse", "NAME,..", "stages drawn as one box each (module prefixes, e.g. layer1,layer2)", ""},
    {"yaw", "DEG", "initial camera yaw", "-125"},
    {"pitch", "DEG", "initial camera pitch", "32"},
};

int cmdView(int argc, char** argv) {
    CommandSpec spec{
        "view",
        "Inspects a model: one forward and backward pass over a probe batch of the data is captured and "
        "shown\n"
        "(activations, their gradients, weights; the model is not changed). Without a display, writes a PNG.",
        "tensorscape view MODEL.pt|builtin:NAME [--data NAME|DIR] [--out FILE.png] [options]",
        {
            {"data", "NAME|DIR", "data the model takes (fashion-mnist: [N, 1, 28, 28]; spirals: [N, 2])",
             "fashion-mnist"},
            {"objective", "NAME", "what the backward pass differentiates: auto, cross-entropy, predicted-class, "
                                  "mean-square (auto: labels when the data has them, else the predicted class; "
                                  "outputs that are not [N, classes]: mean-square)", "auto"},
            {"batch", "N", "probe batch size (inputs: at most N of them)", "256"},
            {"limit", "N", "use the first N samples", "all"},
            {"seed", "N", "random seed (built-in models' initialisation)", "1"},
            deviceFlag("--view explain|landscape and --colour-by relevance run on the CPU"),
            {"out", "FILE.png", "picture to write when headless", "out/view.png"},
            {"frames", "N", "window: close after N frames", "until closed"},
        },
        true};
    const auto input = inputFlags(true); // instead of --data
    spec.flags.insert(spec.flags.begin() + 1, input.begin(), input.end());
    spec.flags.insert(spec.flags.end(), pictureFlags.begin(), pictureFlags.end());
    int code = 0;
    auto args = parseCommand(spec, argc, argv, code);
    if (!args) return code;
    if (args->positional().empty())
        return reportError(
            makeError(ErrorKind::Usage, "view needs a model: tensorscape view MODEL.pt (see --help)"));
    SessionOptions o;
    o.model = args->positional()[0];
    if (o.model.empty())
        return reportError(makeError(ErrorKind::Usage, "the model is empty: tensorscape view MODEL.pt (see --help)"));
    o.data = args->get("data", "fashion-mnist");
    o.inspectOnly = true;
    auto batch = args->getInt("batch", 256, 1, 1 << 20);
    auto limit = args->getInt("limit", 0, 0, 1L << 40);
    auto seed = args->getInt("seed", 1, 0, 1L << 40);
    for (auto* e : {&batch, &limit, &seed})
        if (!*e) return reportError(e->error());
    o.batchSize = *batch;
    o.limit = *limit;
    o.seed = uint64_t(*seed);
    o.objective = args->get("objective", "auto");
    o.input = inputSpecOf(*args);
    if (o.input.given() && args->has("data"))
        return reportError(makeError(ErrorKind::Usage, "give --data or --input/--input-shape, not both"));
    auto display = parseDisplay(*args, "view");
    if (!display) return reportError(display.error());
    // The explain and landscape views and relevance colouring run the model on host tensors: auto picks the
    // CPU for them, and an explicit CUDA device is refused in one line.
    o.device = args->get("device", "auto");
    auto device = capture::parseDeviceFlag(o.device);
    if (!device) return reportError(device.error());
    const char* hostOnly = (display->views & RunViews::Explain)                  ? "--view explain"
                           : (display->views & RunViews::Landscape)              ? "--view landscape"
                           : display->colourBy == NeuronStatistic::Relevance     ? "--colour-by relevance"
                                                                                 : nullptr;
    if (hostOnly && device->kind == capture::DeviceFlag::Kind::Cuda)
        return reportError(makeError(ErrorKind::Usage, std::string(hostOnly) + " runs the model on host tensors: "
                                                       "give --device cpu (or auto) with it, not --device " +
                                                       o.device));
    if (hostOnly) o.device = "cpu";
    if (display->headless) display->singlePng = args->get("out", "out/view.png");
    if (display->headless && display->singlePng.empty())
        return reportError(makeError(ErrorKind::Usage, "--out is empty (a PNG file, e.g. out/view.png)"));
    return runSession(o, *display, "view");
}

int cmdOpen(int argc, char** argv) {
    CommandSpec spec{
        "open",
        "Opens a recorded run (a folder written by the Python module tensorscape.init(DIR, model) or by\n"
        "tensorscape train --run DIR): the network view, curves over the whole run, every snapshot on the\n"
        "timeline, health alerts. A run still being written is followed live in a window. Without a display\n"
        "(or with --headless) writes PNG frames across the run and summary.json.",
        "tensorscape open RUN_DIR [--headless] [--out DIR] [--frames N] [options]",
        {
            {"out", "DIR", "folder for frames and summary.json when headless (with --view: DIR/VIEW.png)", "out/open"},
            {"compare", "RUN2", "a second run overlaid in the distributions view (layers matched by name)", ""},
            {"step", "N", "focus the snapshot at or before step N (views, and the network shown)", "the last"},
            {"frames", "N", "headless: frames to write, spread over the run's snapshots; window: close after N frames",
             "8 / until closed"},
        },
        true};
    spec.flags.insert(spec.flags.end(), pictureFlags.begin(), pictureFlags.end());
    int code = 0;
    auto args = parseCommand(spec, argc, argv, code);
    if (!args) return code;
    if (args->positional().empty())
        return reportError(makeError(ErrorKind::Usage, "open needs a run folder: tensorscape open RUN_DIR (see --help)"));
    SessionOptions o;
    o.openRun = args->positional()[0];
    auto display = parseDisplay(*args, "open");
    if (!display) return reportError(display.error());
    o.followRun = !display->headless;
    // Refused before the run is read.
    if (args->has("step")) {
        auto step = args->getInt("step", 0, 0, int64_t(1) << 62);
        if (!step) return reportError(step.error());
        display->focusStep = *step;
    }
    if (!display->compare.empty())
        if (auto r = runs::RunReader::open(display->compare); !r)
            return reportError(makeError(ErrorKind::Usage, "--compare: " + r.error().message));
    if (display->headless && display->views) display->singlePng = display->outDir + "/" + display->viewName + ".png";
    if (!display->compare.empty() && !(display->views & RunViews::Distributions) && display->headless)
        return reportError(makeError(ErrorKind::Usage, "--compare overlays distributions: add --view distributions"));
    return runSession(o, *display, "open");
}

int cmdDemo(int argc, char** argv) {
    std::string data = defaultDemoData();
    CommandSpec spec{
        "demo",
        "The main job on built-in defaults: trains the built-in MLP on Fashion-MNIST (Debian's\n"
        "dataset-fashion-mnist) or, without it, on two spirals, and shows it live. Without a display it\n"
        "writes PNG frames and summary.json to out/demo/.",
        "tensorscape demo [--headless] [--frames N] [--out DIR] [train options]", trainFlags(data, "400")};
    int code = 0;
    auto args = parseCommand(spec, argc, argv, code);
    if (!args) return code;
    return runTraining(*args, "demo", data, args->has("headless") || !displayAvailable() ? 400 : 20000);
}

} // namespace ts::app
