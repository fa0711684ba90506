// `tensorscape landscape` without the rest of the app: the same command line and headless run, for timing the
// command end to end (see docs/PERFORMANCE.md, "Loss landscape").
#include "app/landscape_cli.hpp"

int main(int argc, char** argv) {
    return ts::app::runLandscapeCommand(argc - 1, argv + 1);
}
