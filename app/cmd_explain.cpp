// `explain`: an attribution heatmap of one input for one class (gradient, gradient x input, SmoothGrad,
// integrated gradients, LRP). The work is engine/explain's; this file parses the flags.
#include <cstdio>
#include <filesystem>
#include <tuple>

#include "app/cli.hpp"
#include "app/commands.hpp"
#include "app/input_flags.hpp"
#include "app/neurogram_view.hpp"
#include "app/projection_view.hpp"
#include "engine/explain/command.hpp"

namespace ts::app {

namespace {

const CommandSpec kExplainSpec = withInputFlags(CommandSpec{
    "explain",
    "Explains one input: which of its pixels (or features) made the model score a class, as a heatmap.",
    "tensorscape explain --model M (--input FILE | --data SET [--index I]) --method METHOD [--out heat.png]",
    {
        {"model", "SPEC", "builtin:mlp, builtin:cnn[:C1,C2] or a TorchScript .pt file", "builtin:cnn"},
        {"data", "SET", "fashion-mnist, spirals, circles, xor, gaussians or an IDX folder: explain a validation "
                        "sample, size built-in models, train with --train-steps", ""},
        {"index", "I", "which sample of --input or of --data's validation split", "0"},
        {"limit", "N", "--data: keep the first N samples of each split (0: all)", "0"},
        {"train-steps", "N", "train the model on --data first (built-in models start with random weights)", "0"},
        {"classes", "N", "built-in models without --data: output classes", "10"},
        {"seed", "N", "model initialisation, training order, SmoothGrad noise", "1"},
        {"method", "NAME", "gradient, gradxinput, smoothgrad, ig, lrp (epsilon rule), lrp-ab (alpha-beta)", "lrp"},
        {"class", "K", "class to explain (default: the predicted class)", ""},
        {"samples", "N", "smoothgrad: noisy copies averaged", "32"},
        {"noise", "F", "smoothgrad: noise std as a fraction of the input's range", "0.15"},
        {"steps", "N", "ig: steps from the black (zero) baseline to the input", "64"},
        {"epsilon", "E", "lrp: the epsilon rule's stabiliser", "0.01"},
        {"alpha", "A", "lrp-ab: weight of positive contributions (alpha - beta = 1)", "2"},
        {"beta", "B", "lrp-ab: weight of negative contributions", "1"},
        {"out", "PATH", "PNG to write: input | heatmap | heatmap over the input", "explain.png"},
        {"json", "PATH", "report to write (default: --out with .json)", ""},
        {"layers-out", "PATH", "lrp/lrp-ab: also a PNG of the relevance over every layer's feature maps", ""},
    }}, false, 1);

Status fill(const Args& args, explain::ExplainArgs& a) {
    a.model = args.get("model", a.model);
    auto input = inputOptions(inputSpecOf(args), 0, 1);
    if (!input) return input.error();
    a.input = std::move(input).value();
    a.data = args.get("data");
    a.method = args.get("method", a.method);
    a.out = args.get("out", a.out);
    if (args.has("out") && a.out.empty()) return makeError(ErrorKind::Usage, "--out is empty: give a PNG path");
    a.json = args.get("json");
    a.layersPng = args.get("layers-out");
    if (args.has("layers-out") && a.layersPng.empty())
        return makeError(ErrorKind::Usage, "--layers-out is empty: give a PNG path");
    struct IntFlag {
        const char* name;
        long lo, hi;
        int64_t* dst;
    };
    int64_t samples = a.samples, steps = a.steps, seed = int64_t(a.seed);
    for (const IntFlag& f : {IntFlag{"index", 0, 1L << 40, &a.index},
                             IntFlag{"limit", 0, 1L << 40, &a.limit}, IntFlag{"train-steps", 0, 10000000, &a.trainSteps},
                             IntFlag{"classes", 1, 1000000, &a.classes}, IntFlag{"seed", 0, 1L << 62, &seed},
                             IntFlag{"class", 0, 1L << 40, &a.target}, IntFlag{"samples", 1, 100000, &samples},
                             IntFlag{"steps", 1, 100000, &steps}}) {
        auto v = args.getInt(f.name, long(*f.dst), f.lo, f.hi);
        if (!v) return v.error();
        *f.dst = *v;
    }
    a.samples = int(samples);
    a.steps = int(steps);
    a.seed = uint64_t(seed);
    for (auto [name, dst] : {std::pair{"noise", &a.noise}, std::pair{"epsilon", &a.epsilon},
                             std::pair{"alpha", &a.alpha}, std::pair{"beta", &a.beta}}) {
        auto v = args.getFloat(name, *dst);
        if (!v) return v.error();
        *dst = *v;
    }
    if (a.noise < 0 || a.epsilon < 0 || a.alpha < 0 || a.beta < 0)
        return makeError(ErrorKind::Usage, "--noise, --epsilon, --alpha and --beta are 0 or more");
    return {};
}

} // namespace

int cmdExplain(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kExplainSpec, argc, argv, code);
    if (!args) return code;
    explain::ExplainArgs a;
    if (auto st = fill(*args, a); !st) return reportError(st.error());
    auto r = explain::runExplain(a);
    if (!r) return reportError(r.error());
    std::printf("%s\n", r->summary.c_str());
    return 0;
}

namespace {

// The flags of the 3D views (`project --3d`, `neurogram --3d`), after each command's own.
const std::vector<FlagSpec> k3dFlags = {
    {"headless", "", "--3d: render the picture offscreen even when a display exists", ""},
    {"width", "W", "--3d: window or picture width", "1280"},
    {"height", "H", "--3d: window or picture height", "720"},
    {"frames", "N", "--3d window: close after N frames", "until closed"},
    {"screenshot", "PATH", "--3d window: save the last frame to PATH (with --frames)", ""},
};

CommandSpec with3dFlags(CommandSpec spec) {
    spec.flags.insert(spec.flags.end(), k3dFlags.begin(), k3dFlags.end());
    return spec;
}

// The 3D view's flags into `d` (the picture: --out with _3d). Errors: a 3D flag without --3d, bad numbers.
Status parse3d(const Args& args, const std::string& out, Display3d& d) {
    for (const auto& f : k3dFlags)
        if (args.has(f.name) && !args.has("3d"))
            return makeError(ErrorKind::Usage, "--" + f.name + " is an option of the 3D view: give --3d too");
    auto w = args.getInt("width", 1280, 16, 16384), h = args.getInt("height", 720, 16, 16384);
    auto frames = args.getInt("frames", 0, 0, 1'000'000);
    for (auto* e : {&w, &h, &frames})
        if (!*e) return e->error();
    d.width = uint32_t(*w), d.height = uint32_t(*h), d.frames = *frames;
    d.headless = args.has("headless");
    d.screenshot = args.get("screenshot");
    const std::filesystem::path path(out);
    d.out = (path.parent_path() / (path.stem().string() + "_3d.png")).string();
    return {};
}

const CommandSpec kProjectSpec = with3dFlags({
    "project",
    "Projects one layer's activations over a data set's validation samples to 2D (PCA or t-SNE), coloured by "
    "class, and writes a scatter plot and every point (with its sample index) as JSON.",
    "tensorscape project --model M --data SET [--layer L] [--method pca|tsne] [--out projection.png]",
    {
        {"model", "SPEC", "builtin:mlp, builtin:cnn[:C1,C2] or a TorchScript .pt file", "builtin:cnn"},
        {"data", "SET", "fashion-mnist, spirals, circles, xor, gaussians or an IDX folder", "fashion-mnist"},
        {"layer", "NAME", "layer whose activations are projected (default: the input of the last layer)", ""},
        {"method", "NAME", "pca or tsne", "pca"},
        {"samples", "N", "first N validation samples", "2000"},
        {"limit", "N", "keep the first N samples of each split (0: all)", "0"},
        {"train-steps", "N", "train the model on --data first (built-in models start with random weights)", "0"},
        {"classes", "N", "built-in models: output classes when the data has none", "10"},
        {"seed", "N", "model initialisation, training order, t-SNE start", "1"},
        {"perplexity", "P", "tsne: effective number of neighbours", "30"},
        {"theta", "T", "tsne: Barnes-Hut accuracy (0.5; larger is faster and coarser)", "0.5"},
        {"iterations", "N", "tsne: gradient steps", "750"},
        {"out", "PATH", "PNG to write", "projection.png"},
        {"json", "PATH", "points and report to write (default: --out with .json)", ""},
        {"3d", "", "also show the points in 3D (PCA: the first three components; t-SNE: its map, flat): a window "
                   "where pointing at a point shows its sample, label and prediction and a click keeps it; without "
                   "a display (or with --headless) a picture, --out with _3d", ""},
        {"select", "I", "--3d: mark sample I (its card is shown from the start)", ""},
    }});

} // namespace

int cmdProject(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kProjectSpec, argc, argv, code);
    if (!args) return code;
    explain::ProjectArgs a;
    a.model = args->get("model", a.model);
    a.data = args->get("data", a.data);
    a.layer = args->get("layer");
    a.method = args->get("method", a.method);
    a.out = args->get("out", a.out);
    a.json = args->get("json");
    if (args->has("out") && a.out.empty()) return reportError(makeError(ErrorKind::Usage, "--out is empty: give a PNG path"));
    struct IntFlag {
        const char* name;
        long lo, hi;
        int64_t* dst;
    };
    int64_t seed = int64_t(a.seed), iterations = a.iterations;
    for (const IntFlag& f : {IntFlag{"samples", 4, 1000000, &a.samples}, IntFlag{"limit", 0, 1L << 40, &a.limit},
                             IntFlag{"train-steps", 0, 10000000, &a.trainSteps},
                             IntFlag{"classes", 1, 1000000, &a.classes}, IntFlag{"seed", 0, 1L << 62, &seed},
                             IntFlag{"iterations", 1, 100000, &iterations}}) {
        auto v = args->getInt(f.name, long(*f.dst), f.lo, f.hi);
        if (!v) return reportError(v.error());
        *f.dst = *v;
    }
    a.seed = uint64_t(seed);
    a.iterations = int(iterations);
    for (auto [name, dst] : {std::pair{"perplexity", &a.perplexity}, std::pair{"theta", &a.theta}}) {
        auto v = args->getFloat(name, *dst);
        if (!v) return reportError(v.error());
        *dst = *v;
    }
    if (a.perplexity <= 0 || a.theta < 0)
        return reportError(makeError(ErrorKind::Usage, "--perplexity must be positive and --theta 0 or more"));
    CloudDisplay d;
    a.keepCloud = args->has("3d");
    if (auto st = parse3d(*args, a.out, d); !st) return reportError(st.error());
    if (args->has("select") && !a.keepCloud)
        return reportError(makeError(ErrorKind::Usage, "--select is an option of the 3D view: give --3d too"));
    auto select = args->getInt("select", 0, 0, 1L << 40);
    if (!select) return reportError(select.error());
    if (args->has("select")) d.select = size_t(*select);
    if (d.select && int64_t(*d.select) >= a.samples) // known before anything is computed
        return reportError(makeError(ErrorKind::Usage, "--select " + std::to_string(*d.select) + ": there are at most " +
                                                           std::to_string(a.samples) + " points (--samples)"));
    auto r = explain::runProject(a);
    if (!r) return reportError(r.error());
    std::printf("%s\n", r->summary.c_str());
    if (a.keepCloud && r->cloud) return showProjectionCloud(*r->cloud, d);
    return 0;
}

namespace {

const CommandSpec kNeurogramSpec = with3dFlags({
    "neurogram",
    "Measures a model's KPIs (accuracy, loss, macro F1, per-class accuracy, accuracy under noise, blur, brightness "
    "and occlusion, parameters, FLOPs, latency) and each layer's contribution to them (its output replaced by its "
    "mean, and a first-order estimate), with diagnoses; writes a picture and a JSON report.",
    "tensorscape neurogram --model M --data SET [--train-steps N] [--samples N] [--run RUN] [--out neurogram.png]",
    {
        {"model", "SPEC", "builtin:mlp, builtin:cnn[:C1,C2] or a TorchScript .pt file", "builtin:cnn"},
        {"data", "SET", "fashion-mnist, spirals, circles, xor, gaussians or an IDX folder (labelled)", "fashion-mnist"},
        {"samples", "N", "first N samples of each split are evaluated", "1000"},
        {"limit", "N", "keep the first N samples of each split (0: all)", "0"},
        {"train-steps", "N", "train the model on --data first (built-in models start with random weights)", "0"},
        {"classes", "N", "built-in models: output classes when the data has none", "10"},
        {"seed", "N", "model initialisation, training order, noise", "1"},
        {"no-stability", "", "skip the corrupted-input KPIs", ""},
        {"run", "RUN", "a recorded run with checkpoints (train --run DIR --checkpoint-every N): the neurogram at "
                       "each checkpoint, drawn over the run; --model defaults to the run's", ""},
        {"step", "N", "with --run: only the checkpoint at step N, drawn as one neurogram", ""},
        {"max-steps", "N", "with --run: at most N checkpoints, spread evenly over the run", "12"},
        {"shift-data", "SET", "a second labelled data set (same classes and input shape) measured like the first: "
                              "accuracy there, and each layer's contribution there", ""},
        {"out", "PATH", "PNG to write", "neurogram.png"},
        {"json", "PATH", "report to write (default: --out with .json)", ""},
        {"3d", "", "also show the neurogram as a 3D graph: a window (hover a layer for its numbers, a table of every "
                   "layer, a slider over a run's checkpoints); without a display (or with --headless) a picture, "
                   "--out with _3d (a run's last checkpoint)", ""},
    }});

} // namespace

int cmdNeurogram(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kNeurogramSpec, argc, argv, code);
    if (!args) return code;
    explain::NeurogramArgs a;
    a.model = args->get("model", a.model);
    a.data = args->get("data", a.data);
    a.out = args->get("out", a.out);
    a.json = args->get("json");
    a.stability = !args->has("no-stability");
    a.shiftData = args->get("shift-data");
    a.run = args->get("run");
    if (args->has("run") && a.run.empty()) return reportError(makeError(ErrorKind::Usage, "--run is empty: give a run folder"));
    if (!a.run.empty() && !args->has("model")) a.model.clear(); // the run's own model
    if (args->has("shift-data") && a.shiftData.empty())
        return reportError(makeError(ErrorKind::Usage, "--shift-data is empty: give a data set"));
    if (args->has("out") && a.out.empty()) return reportError(makeError(ErrorKind::Usage, "--out is empty: give a PNG path"));
    int64_t seed = int64_t(a.seed);
    for (auto [name, lo, hi, dst] : {std::tuple{"samples", 2L, 10000000L, &a.samples},
                                     std::tuple{"limit", 0L, 1L << 40, &a.limit},
                                     std::tuple{"train-steps", 0L, 10000000L, &a.trainSteps},
                                     std::tuple{"classes", 1L, 1000000L, &a.classes},
                                     std::tuple{"seed", 0L, 1L << 62, &seed},
                                     std::tuple{"step", 0L, 1L << 62, &a.step},
                                     std::tuple{"max-steps", 1L, 100000L, &a.maxSteps}}) {
        auto v = args->getInt(name, long(*dst), lo, hi);
        if (!v) return reportError(v.error());
        *dst = *v;
    }
    a.seed = uint64_t(seed);
    a.keepGraphs = args->has("3d");
    Display3d d;
    if (auto st = parse3d(*args, a.out, d); !st) return reportError(st.error());
    auto r = explain::runNeurogram(a);
    if (!r) return reportError(r.error());
    std::printf("%s\n", r->summary.c_str());
    if (a.keepGraphs && r->neurograms) return showNeurogram3d(r->neurograms->steps, r->neurograms->title, d);
    return 0;
}

namespace {

const CommandSpec kFeaturesSpec = withInputFlags(CommandSpec{
    "features",
    "Shows what a layer's units (conv channels, neurons, or the output's classes) respond to: an input optimised to "
    "excite each unit (activation maximisation, regularised by jitter, blur and total variation) next to the real "
    "inputs that excite it most; writes a picture and a JSON report.",
    "tensorscape features --model M (--data SET | --input FILES) [--layer L] [--units 0-7] [--out features.png]",
    {
        {"model", "SPEC", "builtin:mlp, builtin:cnn[:C1,C2] or a TorchScript .pt file", "builtin:cnn"},
        {"data", "SET", "fashion-mnist, spirals, circles, xor, gaussians or an IDX folder: its validation samples are "
                        "ranked; sizes built-in models; what --train-steps trains on", ""},
        {"layer", "NAME", "layer whose units are shown, or 'output' (one unit per class)", "output"},
        {"units", "LIST", "units (channels, neurons) such as 0-7,12, or all (at most 64); default: every class of "
                          "the output up to 16, else 0-7", ""},
        {"top-k", "K", "real inputs shown per unit (0: none)", "6"},
        {"samples", "N", "inputs ranked: the first N", "2000"},
        {"steps", "N", "activation maximisation steps (0: only the real inputs)", "200"},
        {"start", "FROM", "activation maximisation starts from noise (grey with a little noise) or top (each "
                          "unit's most exciting real input)", "noise"},
        {"lr", "F", "activation maximisation: Adam step as a fraction of the input range", "0.05"},
        {"jitter", "PX", "random shift of the image each step, in pixels", "2"},
        {"blur-every", "N", "Gaussian blur every N steps (0: never)", "4"},
        {"blur-sigma", "PX", "the blur's standard deviation", "0.5"},
        {"tv", "F", "total variation, as a fraction of the activation gradient", "0.3"},
        {"limit", "N", "--data: keep the first N samples of each split (0: all)", "0"},
        {"train-steps", "N", "train the model on --data first (built-in models start with random weights)", "0"},
        {"classes", "N", "built-in models without --data: output classes", "10"},
        {"seed", "N", "model initialisation, training order, starting noise and jitter", "1"},
        {"out", "PATH", "PNG to write", "features.png"},
        {"json", "PATH", "report to write (default: --out with .json)", ""},
    }}, false, 2);

} // namespace

int cmdFeatures(int argc, char** argv) {
    int code = 0;
    auto args = parseCommand(kFeaturesSpec, argc, argv, code);
    if (!args) return code;
    explain::FeaturesArgs a;
    a.model = args->get("model", a.model);
    a.data = args->get("data");
    auto input = inputOptions(inputSpecOf(*args), 0, 1);
    if (!input) return reportError(input.error());
    a.input = std::move(input).value();
    a.layer = args->get("layer");
    a.units = args->get("units");
    a.start = args->get("start", a.start);
    if (args->has("units") && a.units.empty())
        return reportError(makeError(ErrorKind::Usage, "--units is empty: give units such as 0-7,12, or all"));
    a.out = args->get("out", a.out);
    a.json = args->get("json");
    if (args->has("out") && a.out.empty()) return reportError(makeError(ErrorKind::Usage, "--out is empty: give a PNG path"));
    int64_t seed = int64_t(a.seed), steps = a.steps, jitter = a.jitter, blurEvery = a.blurEvery;
    for (auto [name, lo, hi, dst] : {std::tuple{"top-k", 0L, 64L, &a.topK}, std::tuple{"samples", 1L, 10000000L, &a.samples},
                                     std::tuple{"steps", 0L, 100000L, &steps}, std::tuple{"jitter", 0L, 64L, &jitter},
                                     std::tuple{"blur-every", 0L, 100000L, &blurEvery},
                                     std::tuple{"limit", 0L, 1L << 40, &a.limit},
                                     std::tuple{"train-steps", 0L, 10000000L, &a.trainSteps},
                                     std::tuple{"classes", 1L, 1000000L, &a.classes},
                                     std::tuple{"seed", 0L, 1L << 62, &seed}}) {
        auto v = args->getInt(name, long(*dst), lo, hi);
        if (!v) return reportError(v.error());
        *dst = *v;
    }
    a.seed = uint64_t(seed);
    a.steps = int(steps);
    a.jitter = int(jitter);
    a.blurEvery = int(blurEvery);
    for (auto [name, dst] : {std::pair{"lr", &a.lr}, std::pair{"blur-sigma", &a.blurSigma}, std::pair{"tv", &a.tv}}) {
        auto v = args->getFloat(name, *dst);
        if (!v) return reportError(v.error());
        *dst = *v;
    }
    if (!(a.lr > 0) || a.blurSigma < 0 || a.tv < 0)
        return reportError(makeError(ErrorKind::Usage, "--lr must be positive, --blur-sigma and --tv 0 or more"));
    auto r = explain::runFeatures(a);
    if (!r) return reportError(r.error());
    std::printf("%s\n", r->summary.c_str());
    return 0;
}

} // namespace ts::app
