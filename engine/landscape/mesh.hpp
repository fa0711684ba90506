// The loss surface as a height field for the renderer: vertices (position, normal, colormap value), triangles
// with NaN cells left out as holes, contour line segments, a minimum marker, the current weights' position
// and a trajectory polyline on the surface. Plain arrays, built on the CPU; torch-free.
//
// World frame (Y up, as the render camera expects): grid coordinate a -> +x, b -> -z, height -> +y, so seen
// from above the plot reads like the reference's 2D contour plots (a to the right, b upwards).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/core/image.hpp"
#include "engine/landscape/grid.hpp"

namespace ts::landscape {

struct MeshOptions {
    bool logScale = false; // height = log(loss + logOffset), as the reference's h52vtp.py --log
    double logOffset = 0.1;
    double clampMax = 0;      // losses above are drawn at this height; <= 0: automatic (see clampFor)
    float heightScale = 0;    // world height of the displayed range; <= 0: 0.6 x the longer grid side
    int contourLevels = 12;   // evenly spaced in displayed height
    // Contours at fixed losses instead, as the reference's plot_2D draws them (levels = arange(vmin, vmax,
    // vlevel); its defaults 0.1, 10, 0.5): used when contourStep > 0. Levels outside the displayed range are
    // left out; the step doubles until at most 40 remain; fewer than 4 inside the range: even levels.
    double contourStart = 0.1, contourStep = 0;
    bool useAccuracy = false; // draw acc instead of loss
};

// 32 bytes, std430/vertex-buffer friendly.
struct MeshVertex {
    float position[3];
    float normal[3];
    float value; // displayed height normalised to [0, 1]: the colormap coordinate
    float valid; // 1, or 0 where the loss is NaN (no triangle touches it)
};
static_assert(sizeof(MeshVertex) == 32);

using Point3 = std::array<float, 3>;

struct HeightFieldMesh {
    int64_t nx = 0, ny = 0;            // vertex grid (a 1D surface becomes a 2-row ribbon)
    std::vector<MeshVertex> vertices;  // index iy * nx + ix
    std::vector<uint32_t> indices;     // triangle list, counter-clockwise seen from above (+y)
    std::vector<Point3> contourLines;  // line list (pairs), lifted slightly above the surface
    std::vector<float> contourValues;  // per segment: normalised level in [0, 1]
    std::vector<double> contourLosses; // per level: the loss value it marks
    std::vector<float> contourHeights; // per level: its normalised height in [0, 1] (the colormap coordinate)
    bool hasMinimum = false;
    Point3 minimumPosition{};
    double minimumLoss = 0, minimumA = 0, minimumB = 0;
    bool hasOrigin = false; // the current weights (a, b) = (0, 0), when inside the grid
    Point3 originPosition{};
    std::vector<Point3> trajectoryLines; // line list (pairs); broken where the path leaves the grid or a hole
    double clampValue = 0;               // losses above this were clamped
    double displayMin = 0, displayMax = 0; // displayed range (log or linear units)
    float heightScale = 1;
    Point3 boundsLo{}, boundsHi{};
};

// The automatic clamp: the largest finite loss, but at most 10 x the median finite loss (a few exploding
// points at the rim would otherwise flatten everything else). Log scale: the largest finite loss.
double clampFor(const std::vector<double>& values, bool logScale);

HeightFieldMesh buildHeightField(const Surface& surface, const MeshOptions& options = {});

// Drapes a trajectory given in direction coordinates (a, b) over the mesh (bilinear heights).
void addTrajectory(HeightFieldMesh& mesh, const Surface& surface,
                   const std::vector<std::array<double, 2>>& path, const MeshOptions& options = {});

// The surface point above (a, b); false outside the grid or in a hole.
bool surfacePoint(const HeightFieldMesh& mesh, const Surface& surface, double a, double b, Point3& out);

// A top-down picture of the mesh for headless runs and tests: colormapped heights, holes dark grey, contour
// lines black, trajectory white, minimum red, origin white ring. Not the 3D renderer.
ImageRgba8 renderTopDown(const HeightFieldMesh& mesh, int width, int height,
                         Colormap map = Colormap::Viridis);

} // namespace ts::landscape
