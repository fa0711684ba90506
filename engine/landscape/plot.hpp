// The surface as a figure that reads at a glance, drawn on the CPU for `--png` (papers, reports, headless
// runs): for a 2D surface the top-down contour map with the reference's plot_2D levels, axes with the
// directions' names and coordinate ticks, a colour bar with loss values, the minimum's value, the model's
// position and the trajectory; for a 1D surface the loss along the axis (and the straight-line barrier when
// there is one). White background, Dear ImGui's pixel font (engine/core/text_raster). Torch-free.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "engine/core/image.hpp"
#include "engine/landscape/grid.hpp"
#include "engine/landscape/mesh.hpp"

namespace ts::landscape {

struct PlotLabels {
    std::string title;       // first line, e.g. "train loss of model.pt on fashion-mnist (2000 samples)"
    std::string xName = "x"; // the x direction, e.g. "PC1 (91.2% of the path's variance)"
    std::string yName = "y";
    // 1D only: a second profile (x, loss), drawn orange with its barrier: the trained Bezier curve between the
    // same two models (x = its t).
    std::vector<std::array<double, 2>> curve;
};

// `mesh` is buildHeightField(surface, ...) (with addTrajectory for a path), so colours, contours and clamping
// match the 3D view. Returns an image about 800 x 640 (800 x 420 for 1D).
ImageRgba8 renderPlot(const Surface& surface, const HeightFieldMesh& mesh, const PlotLabels& labels);

// The Hessian's eigenvalue spectral density from stochastic Lanczos quadrature (Ritz values `nodes` with
// quadrature `weights` summing to 1): each node broadened to a Gaussian of variance
// 1e-5 * max(1, spread), PyHessian's choice, on at least `points` values spanning the nodes plus 1 % on each
// side (more where needed so that a standard deviation spans three of them, at most 200,000).
// `grid` gets the eigenvalues, the result the density there (it integrates to 1 over the grid).
std::vector<double> spectralDensity(const std::vector<double>& nodes, const std::vector<double>& weights,
                                    int points, std::vector<double>& grid);

struct SpectrumLabels {
    std::string title;
    std::vector<double> topEigenvalues; // marked on the axis (the Lanczos top-k)
    double trace = 0;                   // Hutchinson's estimate, 0: none
};
// The density on a log axis (1e-10 .. the peak, as PyHessian plots it) against the eigenvalue, with the
// top eigenvalues marked (red triangles at the top, dotted lines down). About 820 x 420.
ImageRgba8 renderSpectrum(const std::vector<double>& nodes, const std::vector<double>& weights,
                          const SpectrumLabels& labels);

// Tick positions: "nice" numbers (1, 2, 5 x 10^k) inside [lo, hi], about `count` of them.
std::vector<double> niceTicks(double lo, double hi, int count);
// A tick label: the shortest of %.3g that tells neighbouring ticks apart.
std::string tickLabel(double v);

} // namespace ts::landscape
