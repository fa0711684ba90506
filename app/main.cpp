// tensorscape: one program, subcommands demo, view, train, landscape, open, explain, project, neurogram, features,
// render.
#include <cstdio>
#include <cstring>
#include <string>

#include "app/commands.hpp"

namespace {

void printUsage(FILE* out) {
    std::fprintf(
        out, "usage: tensorscape SUBCOMMAND [options]\n\n"
             "Watch a neural network train neuron by neuron, inspect models, fly through loss landscapes.\n\n"
             "subcommands:\n"
             "  demo        train a built-in model and show it live (PNG frames when there is no display)\n"
             "  view        inspect a TorchScript model: tensorscape view MODEL.pt\n"
             "  train       train with the live view and capture settings\n"
             "  landscape   compute (and show) a loss landscape surface\n"
             "  open        open a recorded run (Python tensorscape.init or train --run): tensorscape open RUN\n"
             "  explain     attribution heatmap of one input (gradient, SmoothGrad, IG, LRP)\n"
             "  project     a layer's activations over a data set, by PCA or t-SNE, coloured by class\n"
             "  neurogram   a model's KPIs linked to its layers by measured contributions, with diagnoses\n"
             "  features    what a layer's units respond to: activation maximisation and the top real inputs\n"
             "  render      render a generated neuron scene headless to a PNG\n\n"
             "Run 'tensorscape SUBCOMMAND --help' for the options of each.\n");
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        printUsage(stderr);
        return 2;
    }
    std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        printUsage(stdout);
        return 0;
    }
    int subArgc = argc - 2;
    char** subArgv = argv + 2;
    if (cmd == "render") return ts::app::cmdRender(subArgc, subArgv);
    if (cmd == "demo") return ts::app::cmdDemo(subArgc, subArgv);
    if (cmd == "view") return ts::app::cmdView(subArgc, subArgv);
    if (cmd == "train") return ts::app::cmdTrain(subArgc, subArgv);
    if (cmd == "landscape") return ts::app::cmdLandscape(subArgc, subArgv);
    if (cmd == "open") return ts::app::cmdOpen(subArgc, subArgv);
    if (cmd == "explain") return ts::app::cmdExplain(subArgc, subArgv);
    if (cmd == "project") return ts::app::cmdProject(subArgc, subArgv);
    if (cmd == "neurogram") return ts::app::cmdNeurogram(subArgc, subArgv);
    if (cmd == "features") return ts::app::cmdFeatures(subArgc, subArgv);
    std::fprintf(stderr, "tensorscape: error: unknown subcommand '%s'; run 'tensorscape --help'\n",
                 cmd.c_str());
    return 2;
}
