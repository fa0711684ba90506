// `tensorscape landscape` without the rest of the app: the same entry point the app forwards to, for timing
// the command end to end (see docs/PERFORMANCE.md, "Loss landscape").
#include "engine/landscape/command.hpp"

int main(int argc, char** argv) {
    return ts::landscape::runLandscapeCommand(argc - 1, argv + 1);
}
