// The projection point cloud of `project --3d`: scaling, picking back to a sample, the sample's picture and text.
#include <gtest/gtest.h>

#include "app/neurogram_view.hpp"
#include "app/projection_view.hpp"
#include "engine/core/colormap.hpp"

using namespace ts::app;

namespace {

ts::explain::ProjectionCloud cloudOf(std::vector<glm::vec3> points, std::vector<int64_t> labels) {
    ts::explain::ProjectionCloud c;
    c.points.rows = int64_t(points.size());
    c.points.cols = 3;
    for (const auto& p : points)
        c.points.values.insert(c.points.values.end(), {p.x, p.y, p.z});
    c.labels = std::move(labels);
    c.predicted = c.labels;
    c.classNames = {"zero", "one", "two"};
    return c;
}

ts::render::Camera cameraAt(const glm::vec3& target, float distance) {
    ts::render::Camera cam;
    cam.target = target;
    cam.distance = distance;
    cam.yaw = 0.3f;
    cam.pitch = 0.2f;
    return cam;
}

} // namespace

// One scale for all axes (the widest spread is 1 from the centre, proportions kept), class colours from Tab10,
// the selected point flagged and larger.
TEST(ProjectionCloud, SceneKeepsProportionsAndMarksTheSelectedPoint) {
    auto c = cloudOf({{10, 0, 0}, {-10, 2, 0}, {0, -2, 1}, {0, 0, -1}}, {0, 1, 2, 1});
    const auto sc = buildCloudScene(c, size_t(2));
    ASSERT_EQ(sc.positions.size(), 4u);
    EXPECT_NEAR(sc.positions[0].x, 1.0f, 1e-6f);
    EXPECT_NEAR(sc.positions[1].x, -1.0f, 1e-6f);
    EXPECT_NEAR(sc.positions[1].y, 0.2f, 1e-6f) << "the second axis keeps its smaller spread";
    EXPECT_NEAR(sc.positions[2].z, 0.1f, 1e-6f);
    EXPECT_EQ(sc.instances[2].flags, uint32_t(TS_NEURON_SELECTED));
    EXPECT_FLOAT_EQ(sc.instances[2].radius, 2.5f * sc.radius);
    EXPECT_EQ(sc.instances[0].flags, 0u);
    EXPECT_FLOAT_EQ(sc.instances[1].value, ts::tab10KeyOf(1));
    // Tab10 at a class's key is matplotlib's tab10 colour, wherever in its band the shader samples.
    const ts::Rgb8 orange = ts::sampleColormap(ts::Colormap::Tab10, ts::tab10KeyOf(1));
    EXPECT_EQ(int(orange.r), 255);
    EXPECT_EQ(int(orange.g), 127);
    EXPECT_EQ(int(orange.b), 14);
    for (float t : {0.11f, 0.15f, 0.19f}) {
        const ts::Rgb8 o = ts::sampleColormap(ts::Colormap::Tab10, t);
        EXPECT_EQ(int(o.r) * 65536 + int(o.g) * 256 + int(o.b), 255 * 65536 + 127 * 256 + 14) << t;
    }
    EXPECT_FLOAT_EQ(ts::tab10KeyOf(12), ts::tab10KeyOf(2));
}

// A point's projected pixel picks it back; empty space picks nothing; of two points on one line of sight the
// nearer one wins; a point behind the camera is never picked.
TEST(ProjectionCloud, PickingFindsThePointUnderThePixel) {
    const std::vector<glm::vec3> pts = {{0.5f, 0.2f, 0.0f}, {-0.6f, -0.3f, 0.1f}, {0.0f, 0.5f, -0.4f}};
    const auto cam = cameraAt(glm::vec3(0.0f), 3.0f);
    const float w = 800, h = 600;
    const glm::mat4 vp = cam.projection(w / h) * cam.view();
    for (size_t i = 0; i < pts.size(); ++i) {
        const glm::vec4 p = ts::render::projectToPixels(vp, pts[i], w, h);
        auto hit = pickPoint(pts, 0.02f, cam, w, h, p.x + 1.0f, p.y - 1.0f);
        ASSERT_TRUE(hit) << i;
        EXPECT_EQ(*hit, i);
    }
    EXPECT_FALSE(pickPoint(pts, 0.02f, cam, w, h, 5.0f, 5.0f));
    // Two points on the ray through one pixel: the nearer is picked, whichever comes first in the list.
    const glm::vec3 eye = cam.position(), dir = cam.forward();
    const std::vector<glm::vec3> line = {eye + dir * 4.0f, eye + dir * 2.0f};
    auto hit = pickPoint(line, 0.02f, cam, w, h, w / 2, h / 2);
    ASSERT_TRUE(hit);
    EXPECT_EQ(*hit, 1u);
    const std::vector<glm::vec3> behind = {eye - dir * 2.0f};
    EXPECT_FALSE(pickPoint(behind, 0.5f, cam, w, h, w / 2, h / 2));
}

// Image samples become a picture stretched to their range; other samples are text.
TEST(ProjectionCloud, APickedSampleShowsItsPictureOrItsValues) {
    auto c = cloudOf({{0, 0, 0}, {1, 1, 1}}, {2, 0});
    c.predicted = {1, 0};
    c.sampleShape = {1, 4, 4};
    c.samples.assign(32, 0.5f);
    c.samples[16] = 0.0f; // sample 1: top-left black, bottom-right white, the rest mid-grey
    c.samples[31] = 1.0f;
    const ts::ImageRgba8 img = sampleThumbnail(c, 1, 8);
    ASSERT_EQ(img.width, 8);
    ASSERT_EQ(img.height, 8);
    EXPECT_EQ(int(img.at(0, 0)[0]), 0);
    EXPECT_EQ(int(img.at(7, 7)[0]), 255);
    EXPECT_EQ(int(img.at(3, 3)[1]), 128);
    EXPECT_EQ(sampleText(c, 0), "sample 0 | label two | predicted one");
    c.sampleShape = {2};
    c.samples = {0.25f, -1.5f, 3.0f, 4.0f};
    EXPECT_EQ(sampleThumbnail(c, 0, 8).width, 0) << "not an image";
    EXPECT_EQ(sampleText(c, 0), "sample 0 | label two | predicted one | (0.25, -1.5)");
}

// ---------------------------------------------------------------------------------------------------------
// The neurogram's 3D graph.

namespace {
ts::explain::Neurogram neurogramOf(size_t layers) {
    ts::explain::Neurogram g;
    g.validation.accuracy = 0.9;
    g.validation.loss = 0.3;
    for (size_t i = 0; i < layers; ++i) {
        ts::explain::LayerContribution l;
        l.name = "l" + std::to_string(i);
        l.type = i % 2 ? "relu" : "Linear";
        l.params = i % 2 ? 0 : int64_t(100 * (i + 1));
        l.ablated = i != 1; // one layer not measured
        l.accuracyDrop = 0.01 * double(i);
        l.lossIncrease = i == 2 ? 0.0 : 0.05 * double(i); // layer 2: no loss link
        g.layers.push_back(l);
    }
    return g;
}
} // namespace

// Layers in forward order along x, sized by parameters and brighter with their accuracy drop; one link per
// positive contribution and kind, each kind's widths scaled to its largest; names for at most 8 of many layers.
TEST(NeurogramGraph, LayersLinksAndLabelsFollowTheMeasurements) {
    const auto g = neurogramOf(6);
    const auto sc = buildNeurogramScene(g);
    ASSERT_EQ(sc.layerPositions.size(), 6u);
    for (size_t i = 1; i < 6; ++i)
        EXPECT_GT(sc.layerPositions[i].x, sc.layerPositions[i - 1].x);
    EXPECT_EQ(sc.kpiPositions.size(), 2u) << "no shift measured: accuracy and loss only";
    EXPECT_EQ(sc.nodes.size(), 8u);
    EXPECT_GT(sc.layerRadii[4], sc.layerRadii[2]) << "more parameters, larger";
    EXPECT_FLOAT_EQ(sc.layerRadii[1], sc.layerRadii[3]) << "no parameters: the smallest size";
    EXPECT_GT(sc.nodes[5].value, sc.nodes[3].value) << "a larger accuracy drop is brighter";
    EXPECT_FLOAT_EQ(sc.nodes[1].value, sc.nodes[0].value) << "not measured, and no drop: the dim end";
    // Accuracy links: layers 2..5 (layer 0 drops 0, layer 1 not measured); loss links: 3, 4, 5.
    ASSERT_EQ(sc.links.lines.size(), 7u);
    float largestAcc = 0, largestLoss = 0;
    for (const auto& l : sc.links.lines) {
        EXPECT_EQ(l.pointCount, 20u);
        (l.weight > 0 ? largestAcc : largestLoss) = std::max(l.weight > 0 ? largestAcc : largestLoss, l.magnitude);
    }
    EXPECT_FLOAT_EQ(largestAcc, 1.0f);
    EXPECT_FLOAT_EQ(largestLoss, 1.0f);
    EXPECT_EQ(sc.labelled.size(), 6u);
    // A link starts at its layer and ends at its KPI node.
    const auto& first = sc.links.lines[0];
    EXPECT_NEAR(glm::length(sc.links.points[first.firstPoint].position - sc.layerPositions[2]), 0.0f, 1e-5f);
    EXPECT_NEAR(glm::length(sc.links.points[first.firstPoint + 19].position - sc.kpiPositions[0]), 0.0f, 1e-5f);

    const auto many = buildNeurogramScene(neurogramOf(40));
    ASSERT_EQ(many.labelled.size(), 8u);
    EXPECT_EQ(many.labelled.front(), 32u) << "the eight largest drops are named, in forward order";
    EXPECT_EQ(many.labelled.back(), 39u);
    // Picking: a layer's projected centre finds that layer.
    ts::render::Camera cam;
    cam.fitToScene(sc.bounds, 1.6f);
    const glm::mat4 vp = cam.projection(1.6f) * cam.view();
    for (size_t i = 0; i < 6; ++i) {
        const glm::vec4 p = ts::render::projectToPixels(vp, sc.layerPositions[i], 800, 500);
        auto hit = pickLayer(sc, cam, 800, 500, p.x, p.y);
        ASSERT_TRUE(hit) << i;
        EXPECT_EQ(*hit, i);
    }
    EXPECT_NE(layerLine(g.layers[3]).find("l3 (relu, 0 params): accuracy -3.0 pt, loss +0.15"), std::string::npos)
        << layerLine(g.layers[3]);
    EXPECT_NE(layerLine(g.layers[1]).find("not measured"), std::string::npos);
}
