// Built-in 2D toy datasets generated in code (as TF Playground and scikit-learn draw them): two spirals,
// circles, xor, gaussian blobs. Torch-free; dataset.hpp turns them into tensors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ts::capture {

enum class ToyKind { Spirals, Circles, Xor, Gaussians };

// "spirals" | "circles" | "xor" | "gaussians"
std::optional<ToyKind> parseToyKind(const std::string& name);
const char* toyKindName(ToyKind kind);

struct ToyOptions {
    int64_t samples = 2000; // total, split evenly over the classes
    double noise = -1.0; // standard deviation of the gaussian jitter; < 0: the set's default (defaultNoise)
    uint64_t seed = 0;
    int classes = 0; // gaussians only: number of blobs (0: 3); the others have 2 classes
};

double defaultNoise(ToyKind kind);

// Points [samples x 2] row-major float32 in about [-1, 1]^2, labels in [0, classes).
struct ToyData {
    std::vector<float> points;
    std::vector<int64_t> labels;
    int64_t classes = 2;
};

// Deterministic for a given (kind, options): the same seed gives the same points on every platform (own
// generator, no std:: distributions). Samples are interleaved by class so any prefix stays balanced.
ToyData generateToy(ToyKind kind, const ToyOptions& options);

} // namespace ts::capture
