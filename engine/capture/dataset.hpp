// Datasets as tensors, as DESIGN.md says models take them: images [N, C, H, W] float32 in [0, 1] (IDX 28x28
// gives [N, 1, 28, 28]), toy sets [N, 2] float32; labels [N] int64. And the --data spec parser.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/capture/toy_data.hpp"
#include "engine/core/error.hpp"

namespace ts::capture {

struct Dataset {
    std::string name;
    torch::Tensor inputs; // [N, ...sampleShape] float32, contiguous
    torch::Tensor labels; // [N] int64
    std::vector<int64_t> sampleShape;
    int64_t numClasses = 0;
    std::vector<std::string> classNames; // empty when the set has none ("0", "1", ... then)

    int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
    // Samples [begin, begin + count) (views, no copy).
    Dataset slice(int64_t begin, int64_t count) const;
};

struct DataSplit {
    Dataset train;
    Dataset validation;
};

struct DataOptions {
    int64_t samples = 2000;          // toy sets: samples generated (train + validation)
    double noise = -1.0;             // toy sets: jitter; < 0 the set's default
    uint64_t seed = 0;               // toy sets: generator seed; also the split's shuffle
    double validationFraction = 0.2; // share held out when the source has no validation files
    int64_t limit = 0;               // > 0: keep the first `limit` samples of train and of validation
};

// "spirals" | "circles" | "xor" | "gaussians" (toy sets generated in code), "fashion-mnist" (Debian's
// dataset-fashion-mnist in /usr/share/datasets/fashion-mnist), or a folder holding MNIST-family IDX files
// (train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]; t10k-* become the validation set when
// present, otherwise `validationFraction` of train is held out). Errors (ErrorKind::Usage) name the spec or
// the file.
Expected<DataSplit> loadDataset(const std::string& spec, const DataOptions& options = {});

// A toy set as tensors.
Dataset toyDataset(ToyKind kind, const ToyOptions& options);

// One images + labels IDX pair as [N, 1, H, W] float32 in [0, 1] and [N] int64.
Expected<Dataset> loadIdxDataset(const std::string& imagesPath, const std::string& labelsPath,
                                 const std::string& name = "idx");

// Shuffled (seeded) split: the last `validationFraction` of a permutation becomes validation.
DataSplit splitDataset(const Dataset& all, double validationFraction, uint64_t seed);

// Fashion-MNIST's class names ("T-shirt/top", "Trouser", ...).
const std::vector<std::string>& fashionMnistClasses();

} // namespace ts::capture
