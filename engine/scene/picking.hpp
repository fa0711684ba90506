// Selection by ray: ray-sphere tests against neuron spheres, accelerated by the cluster tree's bounding
// spheres (it is a sphere BVH), nearest hit first.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "engine/core/math.hpp"
#include "engine/scene/cluster_tree.hpp"
#include "engine/scene/lod.hpp"

namespace ts::scene {

struct Ray {
    glm::vec3 origin{0.0f};
    glm::vec3 dir{0.0f, 0.0f, 1.0f}; // need not be unit length; t is in units of |dir|
};

struct PickHit {
    std::uint32_t neuron = ~0u;
    float t = std::numeric_limits<float>::infinity();
    bool hit() const { return neuron != ~0u; }
};

// The ray through pixel (px, py) of the camera's viewport, pixel (0, 0) at the top left. `yDown`: clip-space y
// grows downwards (Vulkan with an unflipped projection); false for a projection whose y was flipped.
Ray rayFromPixel(const Camera& camera, glm::vec2 pixel, bool yDown = true);

// Nearest neuron sphere the ray enters at t >= 0. Layers marked in `hiddenLayer` (may be empty) are skipped.
// The tree's bounds must include the radii (ClusterTree::computeBounds with the same radius array).
PickHit pickNeuron(const ClusterTree& tree, const std::vector<glm::vec3>& position,
                   const std::vector<float>& radius, const Ray& ray, const std::vector<bool>& hiddenLayer = {});

} // namespace ts::scene
