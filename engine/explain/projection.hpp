// Projections of a layer's activations over a data set to 2 or 3 dimensions (torch-free): PCA, and t-SNE
// (Barnes-Hut, van der Maaten 2014) after a PCA to at most 50 dimensions; and the k-nearest-neighbour class
// purity that says how well a projection separates classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::explain {

// Row-major samples: n rows of d floats.
struct Matrix {
    int64_t rows = 0, cols = 0;
    std::vector<float> values;
    float at(int64_t r, int64_t c) const { return values[size_t(r * cols + c)]; }
};

struct PcaResult {
    std::vector<double> eigenvalues; // k largest eigenvalues of the covariance, descending
    Matrix axes;                     // k x d: unit eigenvectors (rows), signs fixed (largest entry positive)
    std::vector<double> mean;        // d
    Matrix points;                   // n x k: the centred samples on the axes
    double totalVariance = 0.0;      // trace of the covariance (explained fraction = sum(eigenvalues) / it)
};

// The k principal components of the samples (covariance in float64; exact Jacobi eigendecomposition up to 160
// dimensions, subspace iteration with Rayleigh-Ritz beyond). Errors: fewer than 2 samples, k out of 1..d,
// non-finite values.
Expected<PcaResult> pca(const Matrix& x, int k);

// Eigenvalues (descending) and unit eigenvectors (rows) of a symmetric n x n matrix, by cyclic Jacobi.
void symmetricEigen(std::vector<double> a, int n, std::vector<double>& values, std::vector<double>& vectors);

struct TsneOptions {
    int dims = 2;
    double perplexity = 30.0;  // neighbours considered: 3 x perplexity
    int iterations = 750;      // gradient steps in all
    int exaggerationSteps = 250;
    double exaggeration = 12.0;
    double theta = 0.5;        // Barnes-Hut accuracy (0: exact sums)
    double learningRate = 0.0; // 0: max(200, n / exaggeration)
    int pcaDims = 50;          // inputs with more dimensions are reduced by PCA first
    uint64_t seed = 1;
    // Barnes-Hut walks once per group of up to 32 points nearby in the tree, accepting a cell only when it is far
    // enough from every point of the group (never less accurate than a walk per point); false: a walk per point
    // (the benchmark's baseline).
    bool groupedWalk = true;
};

// t-SNE's repulsion at a 2D embedding `y` (n x 2) by Barnes-Hut: per point the sum over j != i of q_ij^2 (y_i - y_j),
// q_ij = 1 / (1 + |y_i - y_j|^2) (n x 2), and in `z` the sum of q_ij over all pairs. For tests and benchmarks.
Matrix tsneRepulsion(const Matrix& y, double theta, bool groupedWalk, double& z);

// n x 2 embedding. Errors: fewer than 4 samples, perplexity too large for n (needs n > 3 perplexity + 1),
// non-finite values. dims must be 2.
Expected<Matrix> tsne(const Matrix& x, const TsneOptions& options);

// A projection kept for the 3D view (`project --3d`): one point per sample with the samples themselves, so a
// picked point shows its input.
struct ProjectionCloud {
    Matrix points;                       // n x 3: PCA's first three components; a t-SNE map has z = 0
    std::vector<int64_t> labels;         // per point; -1: none
    std::vector<int64_t> predicted;      // the model's class per point
    std::vector<std::string> classNames; // by class index (may be empty)
    std::vector<int64_t> sampleShape;    // one sample's shape ([C, H, W] for images, [2] for toy sets)
    std::vector<float> samples;          // n x prod(sampleShape), as the model took them
    std::string title;                   // "PCA of 'fc1' (64 values per sample)"
    std::string axes[3];                 // "PC1 (41.2%)", ...
};

// Fraction of samples whose k nearest neighbours (Euclidean, in `points`) mostly share their label, averaged:
// mean over samples of (neighbours with the same label) / k.
double knnPurity(const Matrix& points, const std::vector<int64_t>& labels, int k);

} // namespace ts::explain
