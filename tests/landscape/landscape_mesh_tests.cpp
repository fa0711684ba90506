// Torch-free parts: grid axes and refinement order, surface files, and the height-field mesh (normals,
// holes, contours, markers, trajectory) checked against analytic surfaces; writes a preview PNG to look at.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <set>

#include "engine/core/image.hpp"
#include "engine/landscape/h5_io.hpp"
#include "engine/landscape/mesh.hpp"
#include "engine/landscape/plot.hpp"

using namespace ts::landscape;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::filesystem::path tempDir() {
    auto dir = std::filesystem::path(TS_BINARY_DIR) / "landscape_mesh_files";
    std::filesystem::create_directories(dir);
    return dir;
}

// loss(a, b) = f(a, b) on a grid, all computed.
template <class F> Surface analytic(const GridSpec& g, F f) {
    Surface s = Surface::onGrid(g);
    for (int64_t iy = 0; iy < s.ny(); ++iy)
        for (int64_t ix = 0; ix < s.nx(); ++ix) {
            const size_t k = s.index(ix, iy);
            s.loss[k] = f(s.x[static_cast<size_t>(ix)], s.is2d() ? s.y[static_cast<size_t>(iy)] : 0.0);
            s.acc[k] = 100.0 - s.loss[k];
            s.computed[k] = 1;
        }
    return s;
}

} // namespace

TEST(Grid, ParseAxisAcceptsReferenceSpellingAndRejectsBadText) {
    auto a = parseAxis("-1:1:51");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->count, 51);
    const auto c = a->coordinates();
    EXPECT_DOUBLE_EQ(c.front(), -1.0);
    EXPECT_DOUBLE_EQ(c[25], 0.0);
    EXPECT_DOUBLE_EQ(c.back(), 1.0);
    EXPECT_TRUE(parseAxis("-0.5:1.5:401.0"));
    for (const char* bad : {"", "1:2", "a:1:3", "-1:1:0", "-1:1:2.5", "1:-1:5", "-1:1:5:6", "nan:1:3"}) {
        auto e = parseAxis(bad);
        ASSERT_FALSE(e) << bad;
        EXPECT_EQ(e.error().exitCode(), 2);
        EXPECT_NE(e.error().message.find("MIN:MAX:N"), std::string::npos);
    }
    EXPECT_FALSE(validateGrid({{-1, 1, 0}, std::nullopt}));
    EXPECT_FALSE(validateGrid({{-1, 1, 5}, GridAxis{0, 1, 0}}));
    EXPECT_TRUE(validateGrid({{-1, 1, 1}, GridAxis{0, 1, 1}}));
}

TEST(Grid, RefinementVisitsEveryPointOnceCoarseFirst) {
    for (auto [nx, ny] : {std::pair<int64_t, int64_t>{51, 51}, {7, 3}, {1, 1}, {33, 1}, {2, 40}}) {
        const auto plan = planRefinement(nx, ny, true);
        std::set<int64_t> seen;
        for (const auto& level : plan.levels)
            for (auto k : level)
                EXPECT_TRUE(seen.insert(k).second) << "point " << k << " twice";
        EXPECT_EQ(static_cast<int64_t>(seen.size()), nx * ny);
        EXPECT_EQ(plan.strides.back(), 1);
        // Level 0 is a lattice: every point is a multiple of the first stride.
        for (auto k : plan.levels[0]) {
            EXPECT_EQ((k % nx) % plan.strides[0], 0);
            if (ny > 1) {
                EXPECT_EQ((k / nx) % plan.strides[0], 0);
            }
        }
    }
    EXPECT_EQ(planRefinement(51, 51, true).strides.front(), 8);
    EXPECT_EQ(planRefinement(51, 51, false).levels.size(), 1u);
}

TEST(Grid, PreviewFillsFromCoarseLattice) {
    Surface s = Surface::onGrid({{0, 1, 5}, GridAxis{0, 1, 5}});
    for (int64_t iy = 0; iy < 5; iy += 2)
        for (int64_t ix = 0; ix < 5; ix += 2) {
            s.loss[s.index(ix, iy)] = static_cast<double>(10 * iy + ix);
            s.computed[s.index(ix, iy)] = 1;
        }
    const auto p = previewFilled(s, 2);
    EXPECT_EQ(p.loss[p.index(3, 1)], 2.0);  // from (2, 0)
    EXPECT_EQ(p.loss[p.index(4, 3)], 24.0); // from (4, 2)
    EXPECT_FALSE(p.computed[p.index(3, 1)]);
}

TEST(SurfaceFile, RoundTripKeepsNaNAndMissingPoints) {
    GridSpec g{{-1, 1, 6}, GridAxis{-0.5, 2, 4}};
    Surface s = analytic(
        g, [](double a, double b) { return 2.0 + a * a + 3 * b; }); // >= 0.5: losses are never negative
    s.loss[s.index(2, 1)] = kNaN;                                   // the model's NaN: computed, kept
    s.computed[s.index(5, 3)] = 0;                                  // not computed: written as -1
    const auto path = (tempDir() / "surface_roundtrip.h5").string();
    ASSERT_TRUE(writeSurfaceFile(path, s, "dirs.h5"));
    auto back = readSurfaceFile(path);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->x, s.x);
    EXPECT_EQ(back->y, s.y);
    for (size_t k = 0; k < s.loss.size(); ++k) {
        EXPECT_EQ(back->computed[k], s.computed[k]) << k;
        if (!s.computed[k]) continue;
        if (std::isnan(s.loss[k]))
            EXPECT_TRUE(std::isnan(back->loss[k]));
        else
            EXPECT_EQ(back->loss[k], s.loss[k]);
        EXPECT_EQ(back->acc[k], s.acc[k]);
    }
    // The reference's dataset shape: [len(x), len(y)].
    auto raw = readArray(path, "train_loss");
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->shape, (std::vector<int64_t>{6, 4}));
    EXPECT_EQ(raw->data[s.index(5, 3)], -1.0);
}

TEST(SurfaceFile, ErrorsNameTheFile) {
    const auto missing = (tempDir() / "does_not_exist.h5").string();
    auto e = readSurfaceFile(missing);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().message.find(missing), std::string::npos);
    EXPECT_EQ(e.error().exitCode(), 2);
    const auto text = (tempDir() / "not_hdf5.h5").string();
    {
        std::FILE* f = std::fopen(text.c_str(), "w");
        std::fputs("hello", f);
        std::fclose(f);
    }
    EXPECT_FALSE(readSurfaceFile(text));
    EXPECT_FALSE(readDirectionsFile(text));
    EXPECT_FALSE(directionsFileExists(text));
    // A surface file is not a directions file.
    const auto surf = (tempDir() / "only_surface.h5").string();
    ASSERT_TRUE(writeSurfaceFile(
        surf, analytic({{0, 1, 2}, GridAxis{0, 1, 2}}, [](double, double) { return 1.0; }), ""));
    auto d = readDirectionsFile(surf);
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().message.find("xdirection"), std::string::npos);
}

// A directions file found by fuzzing on which libhdf5 1.10.8 itself spins for ever (in its global heap, reading
// a damaged string attribute). The readers have the library read it in a checking process first: one line,
// exit code 2, and this process never enters the loop (before, this test hung).
TEST(SurfaceFile, AFileThatHangsTheHdf5LibraryIsRefusedInOneLine) {
    const std::string hang = std::string(TS_SOURCE_DIR) + "/tests/landscape/data/directions_string_heap_hang.h5";
    ASSERT_TRUE(std::filesystem::exists(hang)) << hang;
    ::setenv("TS_H5CHECK_TIMEOUT_S", "2", 1);
    for (int which = 0; which < 2; ++which) {
        auto e = which == 0 ? readDirectionsFile(hang).status() : readSurfaceFile(hang).status();
        ASSERT_FALSE(e);
        EXPECT_EQ(e.error().message, hang + ": is damaged: the HDF5 library did not finish reading its structure "
                                            "in 2 s (stopped)");
        EXPECT_EQ(e.error().exitCode(), 2);
    }
    EXPECT_FALSE(directionsFileExists(hang)); // so the command refuses to overwrite it (command tests)
    ::unsetenv("TS_H5CHECK_TIMEOUT_S");
}

TEST(Mesh, PlaneHasExactNormalsAndHeights) {
    // loss = 2 + a + 0.5 b: a plane, so every normal is the same and heights are affine in (a, b).
    GridSpec g{{-1, 1, 9}, GridAxis{-1, 1, 7}};
    const auto s = analytic(g, [](double a, double b) { return 2.0 + a + 0.5 * b; });
    MeshOptions o;
    o.clampMax = 100;
    o.heightScale = 4.0f; // displayed range [0.5, 3.5] -> height = (loss - 0.5) / 3 * 4
    const auto m = buildHeightField(s, o);
    ASSERT_EQ(m.vertices.size(), 63u);
    EXPECT_EQ(m.indices.size(), 8u * 6u * 6u);
    const double k = 4.0 / 3.0;
    // Surface y = k (a + 0.5 b) + c with world z = -b: normal ∝ (-k, 1, -0.5k)... sign of z from z = -b.
    const double nx = -k, ny = 1.0, nz = 0.5 * k, len = std::sqrt(nx * nx + ny * ny + nz * nz);
    for (const auto& v : m.vertices) {
        const double a = v.position[0], b = -v.position[2];
        EXPECT_NEAR(v.position[1], (2.0 + a + 0.5 * b - 0.5) * k, 1e-5);
        EXPECT_NEAR(v.normal[0], nx / len, 1e-5);
        EXPECT_NEAR(v.normal[1], ny / len, 1e-5);
        EXPECT_NEAR(v.normal[2], nz / len, 1e-5);
        EXPECT_EQ(v.valid, 1.0f);
    }
    EXPECT_TRUE(m.hasMinimum);
    EXPECT_DOUBLE_EQ(m.minimumA, -1.0);
    EXPECT_DOUBLE_EQ(m.minimumB, -1.0);
    EXPECT_TRUE(m.hasOrigin);
    EXPECT_NEAR(m.originPosition[1], (2.0 - 0.5) * k, 0.05);
}

TEST(Mesh, NaNCellsAreHolesAndContoursAreCircles) {
    // A bowl loss = a^2 + b^2 with a NaN patch: contours are circles of radius sqrt(level).
    GridSpec g{{-1, 1, 41}, GridAxis{-1, 1, 41}};
    auto s = analytic(g, [](double a, double b) { return a * a + b * b; });
    const int64_t hx = 30, hy = 30;
    s.loss[s.index(hx, hy)] = kNaN;
    MeshOptions o;
    o.contourLevels = 5;
    o.clampMax = 10;
    const auto m = buildHeightField(s, o);
    const uint32_t hole = static_cast<uint32_t>(hy * 41 + hx);
    for (auto i : m.indices)
        EXPECT_NE(i, hole);
    EXPECT_EQ(m.indices.size(), (40u * 40u - 4u) * 6u); // the 4 cells around the hole are gone
    EXPECT_EQ(m.vertices[hole].valid, 0.0f);
    ASSERT_EQ(m.contourLosses.size(), 5u);
    ASSERT_FALSE(m.contourLines.empty());
    ASSERT_EQ(m.contourLines.size(), 2 * m.contourValues.size());
    for (size_t i = 0; i < m.contourLines.size(); ++i) {
        const auto& p = m.contourLines[i];
        const double r2 = p[0] * p[0] + p[2] * p[2];
        const double level =
            m.contourLosses[static_cast<size_t>(std::lround(m.contourValues[i / 2] * 6)) - 1];
        // Linear interpolation along a cell edge of a quadratic: error below the cell's curvature term.
        EXPECT_NEAR(r2, level, 0.01) << "segment point " << i;
    }
    EXPECT_NEAR(m.minimumA, 0.0, 1e-12);
    EXPECT_NEAR(m.minimumB, 0.0, 1e-12);
    EXPECT_DOUBLE_EQ(m.minimumLoss, 0.0);
}

TEST(Mesh, LogScaleClampAndAutoClamp) {
    GridSpec g{{-1, 1, 5}, GridAxis{-1, 1, 5}};
    auto s = analytic(g, [](double a, double b) { return 0.5 + a * a + b * b; });
    s.loss[s.index(0, 0)] = 1e30; // an exploding corner
    s.loss[s.index(4, 4)] = std::numeric_limits<double>::infinity();
    const auto lin = buildHeightField(s);
    // Auto clamp: 10 x the median finite loss. 24 finite values (inf excluded); the upper median (index 12
    // sorted) of 0.5 + a^2 + b^2 over {-1, -0.5, 0, 0.5, 1}^2 with one corner at 1e30 is 0.5 + 1 = 1.5.
    EXPECT_NEAR(lin.clampValue, 15.0, 1e-9);
    EXPECT_EQ(lin.vertices[0].value, 1.0f);
    EXPECT_EQ(lin.vertices[24].value, 1.0f); // +inf is clamped, not a hole
    EXPECT_EQ(lin.vertices[24].valid, 1.0f);
    MeshOptions o;
    o.logScale = true;
    o.clampMax = 100;
    const auto lg = buildHeightField(s, o);
    EXPECT_NEAR(lg.displayMin, std::log(0.5 + 0.1), 1e-12);
    EXPECT_NEAR(lg.displayMax, std::log(100 + 0.1), 1e-12);
    const size_t mid = static_cast<size_t>(s.index(2, 2));
    EXPECT_NEAR(lg.vertices[mid].value, 0.0f, 1e-7);
    const double t11 = (std::log(0.5 + 0.25 + 0.25 + 0.1) - lg.displayMin) / (lg.displayMax - lg.displayMin);
    EXPECT_NEAR(lg.vertices[static_cast<size_t>(s.index(1, 1))].value, t11, 1e-6);
}

TEST(Mesh, TrajectoryLiesOnSurfaceAndBreaksOutsideTheGrid) {
    GridSpec g{{-1, 1, 21}, GridAxis{-1, 1, 21}};
    const auto s = analytic(g, [](double a, double b) { return 1.0 + a - b; }); // planar: bilinear is exact
    MeshOptions o;
    o.clampMax = 100;
    auto m = buildHeightField(s, o);
    std::vector<std::array<double, 2>> path;
    for (int t = 0; t <= 10; ++t)
        path.push_back({-0.9 + 0.17 * t, 0.8 - 0.13 * t});
    path.push_back({3.0, 3.0}); // off the grid: a break
    path.push_back({0.0, 0.0});
    path.push_back({0.1, 0.1});
    addTrajectory(m, s, path, o);
    ASSERT_EQ(m.trajectoryLines.size(), 2u * 11u);
    const float lift = 0.01f * m.heightScale;
    for (const auto& p : m.trajectoryLines) {
        const double a = p[0], b = -p[2];
        const double h = (1.0 + a - b - m.displayMin) / (m.displayMax - m.displayMin) * m.heightScale;
        EXPECT_NEAR(p[1] - lift, h, 1e-4);
    }
}

TEST(Mesh, OneDimensionalSurfaceIsARibbon) {
    const auto s = analytic({{-1, 1, 11}, std::nullopt}, [](double a, double) { return a * a; });
    const auto m = buildHeightField(s);
    EXPECT_EQ(m.ny, 2);
    EXPECT_EQ(m.vertices.size(), 22u);
    EXPECT_EQ(m.indices.size(), 10u * 6u);
    EXPECT_EQ(m.vertices[5].position[1], m.vertices[16].position[1]);
    EXPECT_DOUBLE_EQ(m.minimumA, 0.0);
}

TEST(Mesh, PreviewPictureShowsHolesMarkersAndContours) {
    // A tilted double well with a hole and a trajectory: written to the build tree to look at.
    GridSpec g{{-1, 1, 51}, GridAxis{-1, 1, 51}};
    auto s = analytic(g, [](double a, double b) {
        return 0.3 + (a * a - 0.4) * (a * a - 0.4) * 3 + 1.5 * b * b + 0.2 * a + 0.1 * std::sin(6 * b);
    });
    for (int64_t iy = 38; iy < 44; ++iy)
        for (int64_t ix = 5; ix < 12; ++ix)
            s.loss[s.index(ix, iy)] = kNaN;
    auto m = buildHeightField(s, MeshOptions{});
    std::vector<std::array<double, 2>> path;
    for (int t = 0; t <= 40; ++t)
        path.push_back({0.9 - 0.04 * t, 0.9 * std::exp(-0.08 * t) * std::cos(0.3 * t)});
    addTrajectory(m, s, path);
    const auto img = renderTopDown(m, 256, 256);
    const auto file = (tempDir() / "landscape_preview.png").string();
    ASSERT_TRUE(ts::writePng(file, img));
    // The hole is grey, the minimum marker red, and a contour pixel black somewhere.
    const auto at = [&](double a, double b) {
        const int px = static_cast<int>((a + 1) / 2 * 255), py = static_cast<int>((1 - (b + 1) / 2) * 255);
        return img.at(px, py);
    };
    const auto* hole = at(-0.7, 0.62);
    EXPECT_EQ(hole[0], 50);
    EXPECT_EQ(hole[1], 50);
    const auto* minPx = at(m.minimumA, m.minimumB);
    EXPECT_GT(minPx[0], 200);
    EXPECT_LT(minPx[1], 60);
    size_t black = 0;
    for (size_t i = 0; i < img.pixels.size(); i += 4)
        black += img.pixels[i] == 0 && img.pixels[i + 1] == 0 && img.pixels[i + 2] == 0;
    EXPECT_GT(black, 500u);
}

// The --png figure. A paraboloid L = a^2 + 4 b^2 + 0.1 over [-2, 2]^2: the reference's contour levels (0.1 +
// 0.5 k) cross the b = 0 row exactly where a^2 = 0.5 k, the minimum marker sits at the centre of the map, and
// the colour bar runs through viridis bottom to top. Ticks are nice numbers; coordinates that are zero up to
// rounding read "0".
TEST(Plot, ContourMapHasTheReferenceLevelsAxesAndColourBar) {
    EXPECT_EQ(niceTicks(-1, 1, 6), (std::vector<double>{-1, -0.5, 0, 0.5, 1}));
    EXPECT_EQ(niceTicks(0, 13.5, 6), (std::vector<double>{0, 5, 10}));
    EXPECT_EQ(niceTicks(0.3, 0.31, 4), (std::vector<double>{0.3, 0.305, 0.31}));
    EXPECT_TRUE(niceTicks(1, 1, 5).empty());
    EXPECT_EQ(tickLabel(-2.78e-17), "0");
    EXPECT_EQ(tickLabel(0.25), "0.25");

    const GridSpec g{{-2, 2, 81}, GridAxis{-2, 2, 81}};
    const auto s = analytic(g, [](double a, double b) { return a * a + 4 * b * b + 0.1; });
    MeshOptions mo;
    mo.contourStep = 0.5;
    mo.clampMax = 100;
    const auto mesh = buildHeightField(s, mo);
    ASSERT_FALSE(mesh.contourLosses.empty());
    EXPECT_NEAR(mesh.contourLosses.front(), 0.6, 1e-9); // 0.1 itself is the minimum: not inside the range
    EXPECT_NEAR(mesh.contourLosses[1] - mesh.contourLosses[0], 0.5, 1e-9);
    const auto img = renderPlot(s, mesh, {"paraboloid", "a", "b"});
    ASSERT_TRUE(writePng((tempDir() / "plot_paraboloid.png").string(), img));
    // Layout of the 2D figure: a 512 x 512 map at (96, 64).
    const int x0 = 96, y0 = 64, S = 512;
    ASSERT_GE(img.width, x0 + S + 100);
    const auto px = [&](double a) { return x0 + static_cast<int>(std::lround((a + 2) / 4 * (S - 1))); };
    const int rowB0 = y0 + (S - 1) / 2;
    auto dark = [&](int x, int y) {
        const auto* p = img.at(x, y);
        return p[0] < 40 && p[1] < 40 && p[2] < 40;
    };
    for (int k = 1; k <= 3; ++k) { // L = 0.1 + 0.5 k at a = sqrt(0.5 k), on both sides
        for (double a : {std::sqrt(0.5 * k), -std::sqrt(0.5 * k)}) {
            bool found = false;
            for (int dx = -3; dx <= 3 && !found; ++dx)
                for (int dy = -1; dy <= 1 && !found; ++dy)
                    found = dark(px(a) + dx, rowB0 + dy);
            EXPECT_TRUE(found) << "contour of loss " << 0.1 + 0.5 * k << " near a = " << a;
        }
    }
    // No contour where no level is: between the levels, on the row.
    for (int dx = -2; dx <= 2; ++dx)
        EXPECT_FALSE(dark(px(0.5 * (std::sqrt(0.5) + 1.0)) + dx, rowB0));
    // The minimum marker (red) at the centre.
    const auto* centre = img.at(px(0), rowB0);
    EXPECT_GT(centre[0], 180);
    EXPECT_LT(centre[1], 90);
    // The colour bar: viridis from its bottom (t = 0) to its top (t = 1), right of the map.
    const int bx = x0 + S + 36 + 9;
    const auto bottom = ts::sampleColormap(ts::Colormap::Viridis, 0.0f), top = ts::sampleColormap(ts::Colormap::Viridis, 1.0f);
    const auto* b = img.at(bx, y0 + S - 2);
    const auto* t = img.at(bx, y0 + 1);
    EXPECT_NEAR(b[0], bottom.r, 12);
    EXPECT_NEAR(b[2], bottom.b, 12);
    EXPECT_NEAR(t[0], top.r, 12);
    EXPECT_NEAR(t[1], top.g, 12);
    // Text was drawn: the title row holds ink.
    int ink = 0;
    for (int x = 0; x < 300; ++x)
        for (int y = 8; y < 24; ++y)
            ink += dark(x, y);
    EXPECT_GT(ink, 50);
}

// The 1D figure of a straight line between two models: the loss curve and the barrier drawn in red at its x.
TEST(Plot, LineFigureMarksTheBarrier) {
    const GridSpec g{{-0.2, 1.2, 15}, std::nullopt};
    const auto s = analytic(g, [](double a, double) { return 0.1 + 2 * a * (1 - a) * (a > 0 && a < 1); });
    const auto barrier = linearBarrier(s);
    ASSERT_TRUE(barrier);
    EXPECT_NEAR(barrier->height, 0.5, 1e-12);
    EXPECT_NEAR(barrier->at, 0.5, 1e-12);
    const auto img = renderPlot(s, buildHeightField(s), {"line", "model2 - model", ""});
    ASSERT_TRUE(writePng((tempDir() / "plot_line.png").string(), img));
    // Plot area 640 wide at x = 96: the red barrier segment at x(0.5).
    const int bxp = 96 + static_cast<int>(std::lround((0.5 + 0.2) / 1.4 * 639));
    int red = 0;
    for (int y = 64; y < 64 + 280; ++y) {
        const auto* p = img.at(bxp, y);
        red += p[0] > 180 && p[1] < 80 && p[2] < 80;
    }
    EXPECT_GT(red, 100) << "the barrier is drawn from the curve down to the chord";
}

// The eigenvalue spectral density (PyHessian's Gaussian broadening) against its definition: it integrates to
// the weights' sum, each node's peak sits at the node with the height its weight gives, and far from the
// nodes it is below the plotted floor. The figure marks the top eigenvalues where they are.
TEST(Plot, SpectralDensityIsTheBroadenedRitzValues) {
    const std::vector<double> nodes = {-0.5, 0.0, 0.02, 3.0, 40.0}, weights = {0.1, 0.5, 0.2, 0.15, 0.05};
    std::vector<double> grid;
    const auto density = spectralDensity(nodes, weights, 1000, grid);
    ASSERT_EQ(density.size(), grid.size());
    ASSERT_GE(grid.size(), 1000u);
    EXPECT_LT(grid.front(), -0.5);
    EXPECT_GT(grid.back(), 40.0);
    const double step = grid[1] - grid[0];
    double integral = 0;
    for (double d : density) integral += d * step;
    EXPECT_NEAR(integral, 1.0, 1e-3);
    // Variance 1e-5 * spread (spread > 1 here): a node alone has peak w / sqrt(2 pi variance).
    const double variance = 1e-5 * (grid.back() - grid.front());
    for (size_t k : {size_t(0), size_t(3), size_t(4)}) {
        const size_t at = size_t(std::lround((nodes[k] - grid.front()) / step));
        const double expected = weights[k] / std::sqrt(2 * M_PI * variance);
        EXPECT_NEAR(density[at], expected, 0.02 * expected) << nodes[k];
        // The largest value near the node is at the node (within a grid step).
        size_t best = at;
        for (size_t i = at > 20 ? at - 20 : 0; i < std::min(density.size(), at + 20); ++i)
            if (density[i] > density[best]) best = i;
        EXPECT_LE(std::abs(grid[best] - nodes[k]), step);
    }
    const size_t between = size_t(std::lround((20.0 - grid.front()) / step));
    EXPECT_LT(density[between], 1e-10);
    // Bad input: nothing.
    std::vector<double> none;
    EXPECT_TRUE(spectralDensity({}, {}, 100, none).empty());
    EXPECT_TRUE(spectralDensity({1.0}, {0.5, 0.5}, 100, none).empty());
    EXPECT_TRUE(none.empty());

    SpectrumLabels labels;
    labels.title = "spectrum";
    labels.topEigenvalues = {40.0, 3.0};
    const auto img = renderSpectrum(nodes, weights, labels);
    ASSERT_TRUE(writePng((tempDir() / "plot_spectrum.png").string(), img));
    // Plot area 640 x 280 at (96, 64): red triangles at the top at the x of 40 and 3, the blue curve reaches
    // near the top.
    const double lo = grid.front(), hi = grid.back();
    for (double v : labels.topEigenvalues) {
        const int px = 96 + static_cast<int>(std::lround((v - lo) / (hi - lo) * 639));
        const auto* p = img.at(px, 64 + 2);
        EXPECT_TRUE(p[0] > 180 && p[1] < 80 && p[2] < 80) << "marker at " << v;
    }
    int blueTop = 0;
    for (int y = 64; y < 64 + 40; ++y)
        for (int x = 96; x < 96 + 640; ++x) {
            const auto* p = img.at(x, y);
            blueTop += p[2] > 150 && p[0] < 80 && p[1] < 120;
        }
    EXPECT_GT(blueTop, 3) << "the highest peak reaches the top of the log axis";
    const auto empty = renderSpectrum({}, {}, labels);
    EXPECT_EQ(empty.width, 820);
}
