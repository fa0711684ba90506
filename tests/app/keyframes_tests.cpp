// Fly-through keyframes: the camera path through them (render::cameraAlong) and their file (app/keyframes).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "app/keyframes.hpp"
#include "engine/render/camera.hpp"

using namespace ts;
using namespace ts::render;

namespace {

std::filesystem::path dir() {
    auto d = std::filesystem::path(TS_BINARY_DIR) / "keyframe_tests";
    std::filesystem::create_directories(d);
    return d;
}

Aabb box() {
    Aabb b;
    b.lo = {-2.0f, 0.0f, -1.0f};
    b.hi = {2.0f, 1.5f, 1.0f};
    return b;
}

Camera orbit(glm::vec3 target, float distance, float yaw, float pitch) {
    Camera c;
    c.target = target;
    c.distance = distance;
    c.yaw = yaw;
    c.pitch = pitch;
    return c;
}

void expectSameView(const Camera& a, const Camera& b, float tol) {
    EXPECT_NEAR(glm::length(a.position() - b.position()), 0.0f, tol);
    EXPECT_NEAR(glm::length(a.target - b.target), 0.0f, tol);
}

} // namespace

TEST(Keyframes, ThePathPassesThroughEveryKeyframeWithoutJumps) {
    const Aabb b = box();
    const std::vector<Camera> cams = {orbit({0, 0.5f, 0}, 6, 0.2f, 0.4f), orbit({1, 0.2f, 0.5f}, 3, 3.0f, 0.9f),
                                      orbit({-1, 0.1f, -0.5f}, 4, -2.9f, 0.3f), orbit({0, 0, 0}, 2, -2.0f, 1.2f)};
    std::vector<Keyframe> keys;
    for (const Camera& c : cams) keys.push_back(keyframeOf(c, b));
    // Relative to the box: a keyframe round-trips to the same camera, and scaling the box scales the camera.
    expectSameView(cameraOf(keys[1], b), cams[1], 1e-4f);
    Aabb twice = b;
    twice.lo *= 2.0f;
    twice.hi *= 2.0f;
    EXPECT_NEAR(glm::length(cameraOf(keys[1], twice).position() - 2.0f * cams[1].position()), 0.0f, 1e-3f);
    // Through each keyframe at u = i / (n - 1) (the whole path is eased, so find u by the easing's inverse).
    const auto easedAt = [](float target) { // smoothstep^-1 by bisection
        float lo = 0, hi = 1;
        for (int i = 0; i < 60; ++i) {
            const float m = 0.5f * (lo + hi);
            (m * m * (3 - 2 * m) < target ? lo : hi) = m;
        }
        return 0.5f * (lo + hi);
    };
    for (size_t i = 0; i < keys.size(); ++i)
        expectSameView(cameraAlong(keys, b, easedAt(float(i) / float(keys.size() - 1))), cams[i], 2e-3f);
    // Continuous: no step between neighbouring frames of a 240-frame recording is large (yaw goes the short way
    // round from 3.0 to -2.9, about 0.38 rad, not 5.9).
    float largest = 0;
    glm::vec3 prev = cameraAlong(keys, b, 0).position();
    for (int f = 1; f < 240; ++f) {
        const glm::vec3 p = cameraAlong(keys, b, float(f) / 239.0f).position();
        largest = std::max(largest, glm::length(p - prev));
        prev = p;
    }
    EXPECT_LT(largest, 0.25f) << "the camera jumps between frames";
    // One keyframe holds still; depth planes contain the box from every camera on the path.
    expectSameView(cameraAlong({keys[2]}, b, 0.7f), cams[2], 1e-4f);
    for (float u : {0.0f, 0.3f, 0.6f, 1.0f}) {
        const Camera c = cameraAlong(keys, b, u);
        EXPECT_LT(c.nearPlane, c.distance);
        EXPECT_GT(c.farPlane, c.distance + 0.5f * glm::length(b.extent()));
    }
}

TEST(Keyframes, FilesRoundTripAndBadOnesAreOneLineErrors) {
    const Aabb b = box();
    std::vector<Keyframe> keys = {keyframeOf(orbit({0, 0.5f, 0}, 6, 0.2f, 0.4f), b),
                                  keyframeOf(orbit({1, 0.2f, 0.5f}, 3, 3.0f, 0.9f), b)};
    const auto path = (dir() / "flight.json").string();
    ASSERT_TRUE(app::writeKeyframes(path, keys));
    auto back = app::readKeyframes(path);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_NEAR(glm::length((*back)[i].target - keys[i].target), 0.0f, 1e-6f);
        EXPECT_FLOAT_EQ((*back)[i].distance, keys[i].distance);
        EXPECT_FLOAT_EQ((*back)[i].yaw, keys[i].yaw);
        EXPECT_FLOAT_EQ((*back)[i].pitch, keys[i].pitch);
    }
    struct Case {
        std::string text, message;
    };
    const std::string key = R"({"target": [0, 0, 0], "distance": 1, "yaw": 0, "pitch": 0.3})";
    const std::vector<Case> cases = {
        {"not json", "not a JSON object"},
        {R"({"keyframes": []})", "not a tensorscape keyframes file"},
        {R"({"tensorscape_keyframes": 1, "keyframes": 3})", "no \"keyframes\" array"},
        {R"({"tensorscape_keyframes": 1, "keyframes": [)" + key + "]}", "at least 2 keyframes, the file has 1"},
        {R"({"tensorscape_keyframes": 1, "keyframes": [)" + key + R"(, {"target": [0, 0], "distance": 1, "yaw": 0, "pitch": 0}]})",
         "keyframe 2 needs target [x, y, z]"},
        {R"({"tensorscape_keyframes": 1, "keyframes": [)" + key + R"(, {"target": [0, 0, "a"], "distance": 1, "yaw": 0, "pitch": 0}]})",
         "keyframe 2: target is not 3 finite numbers"},
        {R"({"tensorscape_keyframes": 1, "keyframes": [)" + key + R"(, {"target": [0, 0, 0], "distance": -1, "yaw": 0, "pitch": 0}]})",
         "keyframe 2: distance must be a positive number"},
        {R"({"tensorscape_keyframes": 1, "keyframes": [)" + key + R"(, {"target": [0, 0, 0], "distance": 1, "yaw": 0, "pitch": 2}]})",
         "keyframe 2: pitch must be within"},
    };
    for (const Case& c : cases) {
        const auto bad = (dir() / "bad.json").string();
        std::ofstream(bad) << c.text;
        auto r = app::readKeyframes(bad);
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error().kind, ErrorKind::Usage);
        EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
    }
    auto missing = app::readKeyframes((dir() / "nope.json").string());
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("no such file"), std::string::npos);
    // The window appends to a file with one keyframe (minimum 0), a flight refuses it.
    const auto one = (dir() / "one.json").string();
    ASSERT_TRUE(app::writeKeyframes(one, {keys[0]}));
    EXPECT_TRUE(app::readKeyframes(one, 0));
    EXPECT_FALSE(app::readKeyframes(one));
    // A write that cannot happen is an error, not a half-written file.
    EXPECT_FALSE(app::writeKeyframes((dir() / "no_such_folder" / "k.json").string(), keys));
}
