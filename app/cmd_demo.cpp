// `demo`: the README's main job.
#include <cstdio>

#include "app/cli.hpp"
#include "app/commands.hpp"

namespace ts::app {

int runSceneDemo(const Args& args, const std::string& outDir, long frames);

namespace {
const CommandSpec kDemoSpec{
    "demo",
    "Shows tensorscape on built-in defaults: in a window when a display exists, otherwise PNG frames and a\n"
    "summary in the output folder.",
    "tensorscape demo [--out DIR] [--frames N] [--headless]",
    {
        {"out", "DIR", "folder for frames and summary when headless", "out/demo"},
        {"frames", "N", "stop after N frames (0: run until the window closes)", "0"},
        {"neurons", "N", "neurons in the generated scene", "20000"},
        {"colormap", "NAME", "colormap", "rdbu"},
        {"flat", "", "flat colours", ""},
        {"yaw", "DEG", "initial camera yaw", "35"},
        {"pitch", "DEG", "initial camera pitch", "20"},
        {"headless", "", "render offscreen even when a display exists", ""},
        {"screenshot", "PATH", "in a window: save the last frame to PATH (with --frames)", ""},
    }};
} // namespace

int cmdDemo(int argc, char** argv) {
    bool help = false;
    auto args = parseArgs(kDemoSpec, argc, argv, help);
    if (!args) return reportError(args.error());
    if (help) {
        std::fputs(helpText(kDemoSpec).c_str(), stdout);
        return 0;
    }
    auto frames = args->getInt("frames", 0, 0, 1'000'000);
    if (!frames) return reportError(frames.error());
    return runSceneDemo(*args, args->get("out", "out/demo"), *frames);
}

int cmdView(int, char**) {
    return reportError(makeError(ErrorKind::Usage, "'view' is not available in this build yet"));
}
int cmdTrain(int, char**) {
    return reportError(makeError(ErrorKind::Usage, "'train' is not available in this build yet"));
}
int cmdLandscape(int, char**) {
    return reportError(makeError(ErrorKind::Usage, "'landscape' is not available in this build yet"));
}

} // namespace ts::app
