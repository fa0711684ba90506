// The `landscape` command line: one flag table (the computation's flags and the display's) for the program's
// parser (app/cli.hpp), turned into the plain option structs the landscape engine takes, and the headless run
// with its progress bar and summary lines. Also linked by the landscape command tests and bench.
#pragma once

#include <optional>
#include <string>

#include "app/cli.hpp"
#include "engine/landscape/command.hpp"

namespace ts::app {

// How the surface is shown: a window, or headless pictures and a recorded flight.
struct LandscapeDisplay {
    bool headless = false;
    std::string render; // 3D picture path (headless)
    uint32_t width = 1280, height = 720;
    long frames = 0;
    std::string screenshot;
    std::string record; // MP4 of the recorded flight (headless)
    std::string keyframes; // the flight's keyframes (--record), or where the window saves them
    double recordSeconds = 8;
    int fps = 30;
};

struct LandscapeCommandLine {
    landscape::LandscapeArgs args;
    LandscapeDisplay display;
};

const CommandSpec& landscapeSpec();
// The parsed flags as option structs; combinations that cannot work are one usage error.
Expected<LandscapeCommandLine> landscapeCommandLine(const Args& flags);
// Parses argv (after the subcommand); --help and errors are handled (printed, exitCode set) and give nullopt.
std::optional<LandscapeCommandLine> parseLandscapeCommand(int argc, char** argv, int& exitCode);

// Computes and writes the surface headless: progress bar on a terminal, one summary line (and the barrier,
// curve and curvature lines when asked), one-line errors. Under mpirun every rank calls it. Returns the exit
// code: 0 done, 1 the evaluation failed (NaN everywhere), 2 bad usage or input.
int runLandscapeHeadless(const landscape::LandscapeArgs& args);
// Parse, then runLandscapeHeadless (display flags are accepted and not used).
int runLandscapeCommand(int argc, char** argv);

} // namespace ts::app
