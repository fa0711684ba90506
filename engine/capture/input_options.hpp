// What --input and its image options ask for, parsed: torch-free, so command-line code can build it without
// LibTorch's headers (loadInputs() in inputs.hpp reads it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::capture {

struct InputOptions {
    // --input: an image (.png/.jpg/.jpeg/.bmp), a folder of images, a .npy file, or a .pt file saved with
    // torch.save(tensor).
    std::string path;
    // --input-shape: per-sample shape (e.g. {3, 224, 224}) of a seeded random probe (uniform [0, 1)) when
    // path is empty; with a path, the shape each loaded sample must have.
    std::vector<int64_t> shape;
    int64_t count = 4;    // random probe: samples; images/tensors: keep at most this many (0 = all)
    uint64_t seed = 1;    // random probe: generator seed
    int64_t resize = 0;   // images: shorter side resized to this first (bilinear, antialiased); 0 = no
    int64_t crop = 0;     // images: centre crop to crop x crop after resizing; 0 = none
    int64_t channels = 3; // images: 3 (RGB) or 1 (grey)
    // Images: per-channel (x - mean) / std after scaling to [0, 1], one entry per channel; empty = none.
    // .npy and .pt data is never normalised.
    std::vector<float> mean;
    std::vector<float> std;
};

// "3,224,224" -> {3, 224, 224}. Errors on empty text or entries, non-numeric, zero or negative entries, more
// than 5 dims, or more than 1e9 elements per sample.
Expected<std::vector<int64_t>> parseShape(const std::string& text);

// The ImageNet preset: resize 256, crop 224, 3 channels, mean {0.485, 0.456, 0.406}, std {0.229, 0.224,
// 0.225}.
InputOptions imagenetPreset();

} // namespace ts::capture
