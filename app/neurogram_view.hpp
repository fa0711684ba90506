// The neurogram as a 3D graph (`neurogram --3d`): layer nodes in forward order along x, sized by their
// parameters and coloured by their measured contribution (accuracy drop when the output is at its mean), linked to
// KPI nodes above them (validation accuracy, validation loss, the strongest shift) by curves whose width is the
// contribution. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <glm/glm.hpp>

#include "engine/core/image.hpp"
#include "engine/core/math.hpp"
#include "app/projection_view.hpp"
#include "engine/explain/neurogram_types.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/scene/bundling.hpp"

namespace ts::app {

struct NeurogramScene {
    std::vector<glm::vec3> layerPositions; // one per layer of the neurogram, forward order
    std::vector<float> layerRadii;
    std::vector<glm::vec3> kpiPositions;
    std::vector<std::string> kpiLabels;    // "validation accuracy 78.8%"
    std::vector<render::NeuronInstance> nodes; // layers, then KPIs (inferno: dim = no drop, bright = the largest)
    scene::EdgePolylines links;            // accuracy links red (positive weight), loss links blue (negative)
    std::vector<size_t> labelled;          // layers whose names are drawn (all up to 16, else the 8 largest drops)
    Aabb bounds;
};
NeurogramScene buildNeurogramScene(const explain::Neurogram& g);

// Which layer node is under pixel (x, y), as pickPoint does for the projection's points.
std::optional<size_t> pickLayer(const NeurogramScene& sc, const render::Camera& camera, float width, float height,
                                float x, float y);

// One line per layer for tooltips and the table: "layer1.0.add (add, 0 params): -12.3 pt, loss +0.42 (est. +0.38)".
std::string layerLine(const explain::LayerContribution& l);

// The headless picture's text: title, legend, node and KPI labels at their projected pixels, diagnoses.
void drawNeurogramOverlay(ImageRgba8& image, const explain::Neurogram& g, const NeurogramScene& sc,
                          const render::Camera& camera, const std::string& title);

// `neurogram --3d`: a window when a display exists (hover a layer for its numbers, a table panel, a step slider
// over a run's checkpoints), else one picture at `out` (the last checkpoint's graph).
int showNeurogram3d(const std::vector<explain::NeurogramStep>& steps, const std::string& title,
                    const Display3d& display);

} // namespace ts::app
