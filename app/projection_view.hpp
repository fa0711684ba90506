// The 3D view of `project --3d`: a layer's activations over a data set as a point cloud coloured by class, with
// picking back to the input (a picked point shows its sample, label and the model's prediction). Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <glm/glm.hpp>

#include "engine/core/image.hpp"
#include "engine/core/math.hpp"
#include "engine/explain/projection.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/neuron_pass.hpp"

namespace ts::app {

// Points in world space: the projection's coordinates scaled by one factor for all axes (PC1's spread stays the
// widest) into about [-1, 1], spheres coloured by class (Tab10), the selected one flagged and drawn larger.
struct CloudScene {
    std::vector<glm::vec3> positions;
    std::vector<render::NeuronInstance> instances;
    Aabb bounds;
    float radius = 0.0f; // of an unselected point
};
CloudScene buildCloudScene(const explain::ProjectionCloud& cloud, std::optional<size_t> selected = std::nullopt);

// The point under pixel (x, y) of a width x height view (origin top-left): among the points whose projected
// sphere, at least `minPixels` wide, covers the pixel, the nearest to the camera. None when no point is there.
std::optional<size_t> pickPoint(const std::vector<glm::vec3>& positions, float radius, const render::Camera& camera,
                                float width, float height, float x, float y, float minPixels = 6.0f);

// The sample of point i as a picture `size` pixels high, for samples shaped [1 or 3, H, W] (values stretched
// from the cloud's range to 0..255); empty for other samples (toy sets: see sampleText).
ImageRgba8 sampleThumbnail(const explain::ProjectionCloud& cloud, size_t i, int size);
// "sample 17 | label Shirt | predicted T-shirt/top" (and the values of small samples: "(0.31, -1.2)").
std::string sampleText(const explain::ProjectionCloud& cloud, size_t i);

// The headless picture's overlay, drawn on the rendered cloud: title and axes, the class legend, and for the
// selected point a ring at `pixel` and a card with its thumbnail and text.
void drawCloudOverlay(ImageRgba8& image, const explain::ProjectionCloud& cloud, std::optional<size_t> selected,
                      glm::vec2 pixel);

// How the 3D views of `project --3d` and `neurogram --3d` are shown: a window when a display exists, else one
// picture at `out`.
struct Display3d {
    bool headless = false;
    uint32_t width = 1280, height = 720;
    long frames = 0;        // window: close after N frames
    std::string screenshot; // window: the last frame
    std::string out;        // headless picture
};

// `project --3d`: in a window, hover shows a point's sample and a click keeps it; `select` marks a sample from
// the start.
struct CloudDisplay : Display3d {
    std::optional<size_t> select;
};
// Exit code: 0, or 2 with one line (a selected sample out of range, no Vulkan device, an unwritable file).
int showProjectionCloud(const explain::ProjectionCloud& cloud, const CloudDisplay& display);

} // namespace ts::app
