// Synthetic network scene generator.
#include "engine/render/synthetic_scene.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace ts::render {

SyntheticScene makeSyntheticNetwork(uint32_t totalNeurons, uint32_t seed) {
    SyntheticScene s;
    const float fractions[] = {0.42f, 0.26f, 0.17f, 0.11f, 0.04f};
    std::mt19937 rng(seed);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    totalNeurons = std::max<uint32_t>(totalNeurons, 5);
    uint32_t assigned = 0;
    for (int l = 0; l < 5; ++l) {
        uint32_t n = l == 4 ? (totalNeurons > assigned ? totalNeurons - assigned : 1)
                            : std::max<uint32_t>(uint32_t(totalNeurons * fractions[l]), 1);
        assigned += n;
        s.layerSizes.push_back(n);
    }
    // Every layer is a near-square grid; layers shrink in world size with their neuron count so the network
    // reads as a funnel, and they are spaced along z.
    const float spacing = 1.0f;
    float z = 0.0f;
    uint32_t id = 0;
    float phase = std::uniform_real_distribution<float>(0.0f, 6.28f)(rng);
    for (size_t l = 0; l < s.layerSizes.size(); ++l) {
        uint32_t n = s.layerSizes[l];
        uint32_t cols = uint32_t(std::ceil(std::sqrt(double(n))));
        uint32_t rows = (n + cols - 1) / cols;
        float size = 2.0f * std::sqrt(float(n) / float(s.layerSizes[0])) + 0.6f;
        float step = size / float(std::max(cols, rows));
        float radius = step * 0.42f;
        for (uint32_t i = 0; i < n; ++i) {
            uint32_t cx = i % cols, cy = i / cols;
            float u = (float(cx) + 0.5f) / float(cols) - 0.5f;
            float v = (float(cy) + 0.5f) / float(rows) - 0.5f;
            shader::NeuronInstance inst{};
            inst.position = glm::vec3(u * step * cols, -v * step * rows, z);
            inst.radius = radius;
            float value;
            if (l == 0) {
                // An input "image": a soft ring, like a sample from an image set.
                float r = std::sqrt(u * u + v * v);
                value = std::exp(-std::pow((r - 0.28f) / 0.09f, 2.0f)) * 2.0f - 1.0f;
            } else {
                value = 0.6f * std::sin(7.0f * u + phase * float(l)) * std::cos(5.0f * v - phase) +
                        0.35f * noise(rng);
            }
            inst.value = std::clamp(value, -1.0f, 1.0f);
            inst.id = id++;
            s.neurons.push_back(inst);
            s.bounds.extend(inst.position, radius);
        }
        z -= spacing * 1.6f;
    }
    return s;
}

} // namespace ts::render
