// tensorscape: one program, subcommands demo, view, train, landscape, open, explain, project, neurogram, features,
// render. The subcommand is chosen by the program's parser (app/cli.hpp), which also writes the overview.
#include "app/cli.hpp"
#include "app/commands.hpp"

int main(int argc, char** argv) {
    using namespace ts::app;
    const std::vector<Subcommand> subcommands = {
        {"demo", "train a built-in model and show it live (PNG frames when there is no display)", cmdDemo},
        {"view", "inspect a TorchScript model: tensorscape view MODEL.pt", cmdView},
        {"train", "train with the live view and capture settings", cmdTrain},
        {"landscape", "compute (and show) a loss landscape surface", cmdLandscape},
        {"open", "open a recorded run (Python tensorscape.init or train --run): tensorscape open RUN", cmdOpen},
        {"explain", "attribution heatmap of one input (gradient, SmoothGrad, IG, LRP)", cmdExplain},
        {"project", "a layer's activations over a data set, by PCA or t-SNE, coloured by class", cmdProject},
        {"neurogram", "a model's KPIs linked to its layers by measured contributions, with diagnoses", cmdNeurogram},
        {"features", "what a layer's units respond to: activation maximisation and the top real inputs", cmdFeatures},
        {"render", "render a generated neuron scene headless to a PNG", cmdRender},
    };
    return runProgram("Watch a neural network train neuron by neuron, inspect models, fly through loss landscapes.",
                      subcommands, argc, argv);
}
