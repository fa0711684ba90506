// Renderer tests on lavapipe: tiny offscreen scenes checked pixel by pixel against the camera's own
// projection and the colormap tables; validation layers on and zero messages required.
#include <cmath>
#include <filesystem>
#include <gtest/gtest.h>

#include "engine/core/colormap.hpp"
#include "engine/core/image.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/context.hpp"
#include "engine/render/descriptors.hpp"
#include "engine/render/edge_pass.hpp"
#include "engine/render/network_renderer.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/surface_pass.hpp"
#include "engine/render/synthetic_scene.hpp"
#include "engine/render/target.hpp"
#include "engine/scene/bundling.hpp"
#include "engine/scene/edges.hpp"
#include "engine/scene/scene.hpp"
#include "engine/scene/synthetic.hpp"

using namespace ts;
using namespace ts::render;

namespace {

constexpr float kBg[3] = {0.0f, 0.0f, 0.0f};

class RenderTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        auto ctx = Context::create({.validation = 1});
        ASSERT_TRUE(ctx.hasValue()) << ctx.error().message;
        s_ctx = std::move(ctx.value()).release();
        auto pass = NeuronPass::create(*s_ctx, kColorFormat, 1);
        ASSERT_TRUE(pass.hasValue()) << pass.error().message;
        s_pass = std::move(pass.value()).release();
    }
    static void TearDownTestSuite() {
        delete s_pass;
        delete s_ctx;
    }
    void TearDown() override {
        ASSERT_TRUE(s_ctx->validationEnabled()) << "tests must run with validation layers";
        EXPECT_EQ(s_ctx->validationMessageCount(), 0);
    }

    ImageRgba8 render(const std::vector<NeuronInstance>& neurons, const Camera& cam, const NeuronStyle& style,
                      uint32_t w = 96, uint32_t h = 64) {
        auto target = OffscreenTarget::create(*s_ctx, w, h);
        EXPECT_TRUE(target.hasValue());
        EXPECT_TRUE(s_pass->setInstances(neurons).isOk());
        s_pass->setStyle(style);
        auto frame = (*target)->beginFrame();
        EXPECT_TRUE(frame.hasValue());
        EXPECT_TRUE(s_pass->prepare(*frame, cam).isOk());
        beginRendering(*frame, true, kBg[0], kBg[1], kBg[2]);
        s_pass->record(*frame, cam);
        endRendering(*frame);
        ImageRgba8 img;
        EXPECT_TRUE((*target)->endFrame(*frame, &img).isOk());
        return img;
    }

    static Camera frontCamera(float distance = 5.0f) {
        Camera c;
        c.yaw = 0.0f;
        c.pitch = 0.0f;
        c.distance = distance;
        c.nearPlane = 0.1f;
        c.farPlane = 100.0f;
        return c;
    }

    static NeuronInstance neuron(glm::vec3 p, float r, float v, uint32_t flags = 0) {
        NeuronInstance n{};
        n.position = p;
        n.radius = r;
        n.value = v;
        n.flags = flags;
        return n;
    }

    static Context* s_ctx;
    static NeuronPass* s_pass;
};
Context* RenderTest::s_ctx = nullptr;
NeuronPass* RenderTest::s_pass = nullptr;

::testing::AssertionResult pixelNear(const ImageRgba8& img, int x, int y, Rgb8 want, int tol = 2) {
    const uint8_t* p = img.at(x, y);
    if (std::abs(p[0] - want.r) <= tol && std::abs(p[1] - want.g) <= tol && std::abs(p[2] - want.b) <= tol)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "pixel (" << x << "," << y << ") = " << int(p[0]) << "," << int(p[1]) << "," << int(p[2])
           << " want " << int(want.r) << "," << int(want.g) << "," << int(want.b);
}

bool isBackground(const ImageRgba8& img, int x, int y) {
    const uint8_t* p = img.at(x, y);
    return p[0] == 0 && p[1] == 0 && p[2] == 0;
}

} // namespace

TEST_F(RenderTest, NeuronAppearsAtItsProjectedPositionAndBackgroundElsewhere) {
    Camera cam = frontCamera();
    const uint32_t w = 96, h = 64;
    glm::vec3 pos(0.7f, -0.3f, 0.0f);
    float r = 0.25f;
    auto img = render({neuron(pos, r, 1.0f)}, cam, {Colormap::Viridis, 0.0f, 1.0f, false}, w, h);
    glm::mat4 vp = cam.projection(float(w) / h) * cam.view();
    glm::vec4 px = projectToPixels(vp, pos, w, h);
    glm::vec4 edge = projectToPixels(vp, pos + glm::vec3(r, 0, 0), w, h);
    float rpx = edge.x - px.x;
    ASSERT_GT(rpx, 3.0f);
    int cx = int(px.x), cy = int(px.y);
    // Independent expectation: x right of centre and y below centre (world -y is screen down).
    EXPECT_GT(cx, int(w / 2));
    EXPECT_GT(cy, int(h / 2));
    EXPECT_TRUE(pixelNear(img, cx, cy, sampleColormap(Colormap::Viridis, 1.0f)));
    EXPECT_TRUE(pixelNear(img, int(px.x + 0.7f * rpx), cy, sampleColormap(Colormap::Viridis, 1.0f)));
    EXPECT_TRUE(isBackground(img, int(px.x + 1.4f * rpx), cy));
    EXPECT_TRUE(isBackground(img, int(w) - 1 - cx, cy)) << "mirror image must be empty";
    EXPECT_TRUE(isBackground(img, 0, 0));
    EXPECT_TRUE(isBackground(img, int(w) - 1, int(h) - 1));
    int covered = 0;
    for (int y = 0; y < int(h); ++y)
        for (int x = 0; x < int(w); ++x)
            covered += !isBackground(img, x, y);
    float expected = 3.14159f * rpx * rpx;
    EXPECT_NEAR(covered, expected, expected * 0.2f);
}

TEST_F(RenderTest, NearerNeuronWinsRegardlessOfDrawOrder) {
    Camera cam = frontCamera();
    auto nearN = neuron({0.05f, 0.0f, 1.0f}, 0.4f, 1.0f); // closer to the eye at z = +5
    auto farN = neuron({-0.05f, 0.0f, 0.0f}, 0.6f, 0.0f);
    NeuronStyle style{Colormap::Viridis, 0.0f, 1.0f, false};
    for (int order = 0; order < 2; ++order) {
        std::vector<NeuronInstance> ns = order ? std::vector{farN, nearN} : std::vector{nearN, farN};
        auto img = render(ns, cam, style);
        EXPECT_TRUE(pixelNear(img, 48, 32, sampleColormap(Colormap::Viridis, 1.0f))) << "order " << order;
        // Outside the near sphere but inside the far one: the far colour.
        glm::mat4 vp = cam.projection(96.0f / 64.0f) * cam.view();
        glm::vec4 p = projectToPixels(vp, {-0.55f, 0.0f, 0.0f}, 96, 64);
        EXPECT_TRUE(pixelNear(img, int(p.x), int(p.y), sampleColormap(Colormap::Viridis, 0.0f)))
            << "order " << order;
    }
}

TEST_F(RenderTest, IntersectingSpheresComposeByTrueDepth) {
    // Two equal spheres side by side, the right one pushed towards the viewer: along the centre line of the
    // left sphere the left one is nearer, so per-pixel (not per-instance) depth decides.
    Camera cam = frontCamera();
    auto left = neuron({-0.3f, 0.0f, 0.0f}, 0.5f, 0.0f);
    auto right = neuron({0.3f, 0.0f, 0.2f}, 0.5f, 1.0f);
    auto img = render({right, left}, cam, {Colormap::Viridis, 0.0f, 1.0f, false});
    glm::mat4 vp = cam.projection(96.0f / 64.0f) * cam.view();
    glm::vec4 pl = projectToPixels(vp, {-0.35f, 0.0f, 0.5f}, 96, 64);
    glm::vec4 pr = projectToPixels(vp, {0.35f, 0.0f, 0.7f}, 96, 64);
    EXPECT_TRUE(pixelNear(img, int(pl.x), int(pl.y), sampleColormap(Colormap::Viridis, 0.0f)));
    EXPECT_TRUE(pixelNear(img, int(pr.x), int(pr.y), sampleColormap(Colormap::Viridis, 1.0f)));
}

TEST_F(RenderTest, ColormapEndpointsComeOutRight) {
    Camera cam = frontCamera();
    for (Colormap map : {Colormap::Viridis, Colormap::RdBu, Colormap::Magma}) {
        NeuronStyle style{map, -2.0f, 3.0f, false};
        // value at min, at max, and beyond both ends (clamped)
        auto img = render({neuron({-1.2f, 0, 0}, 0.3f, -2.0f), neuron({-0.4f, 0, 0}, 0.3f, 3.0f),
                           neuron({0.4f, 0, 0}, 0.3f, -50.0f), neuron({1.2f, 0, 0}, 0.3f, 0.5f)},
                          cam, style);
        glm::mat4 vp = cam.projection(96.0f / 64.0f) * cam.view();
        auto at = [&](float x) { return projectToPixels(vp, {x, 0, 0}, 96, 64); };
        auto a = at(-1.2f), b = at(-0.4f), c = at(0.4f), d = at(1.2f);
        EXPECT_TRUE(pixelNear(img, int(a.x), int(a.y), sampleColormap(map, 0.0f))) << colormapName(map);
        EXPECT_TRUE(pixelNear(img, int(b.x), int(b.y), sampleColormap(map, 1.0f))) << colormapName(map);
        EXPECT_TRUE(pixelNear(img, int(c.x), int(c.y), sampleColormap(map, 0.0f))) << colormapName(map);
        EXPECT_TRUE(pixelNear(img, int(d.x), int(d.y), sampleColormap(map, 0.5f))) << colormapName(map);
    }
}

TEST_F(RenderTest, LitSphereIsBrighterTowardsTheLight) {
    Camera cam = frontCamera();
    auto img = render({neuron({0, 0, 0}, 1.2f, 0.6f)}, cam, {Colormap::Viridis, 0.0f, 1.0f, true}, 128, 128);
    auto lum = [&](int x, int y) {
        const uint8_t* p = img.at(x, y);
        return 0.2126f * p[0] + 0.7152f * p[1] + 0.0722f * p[2];
    };
    // The key light comes from the upper left.
    EXPECT_GT(lum(50, 50), lum(78, 78) + 20.0f);
}

TEST_F(RenderTest, SelectedGetsAWhiteRimAndHiddenIsNotDrawn) {
    Camera cam = frontCamera();
    auto img = render({neuron({-0.8f, 0, 0}, 0.5f, 0.0f, TS_NEURON_SELECTED),
                       neuron({0.8f, 0, 0}, 0.5f, 0.0f, TS_NEURON_HIDDEN)},
                      cam, {Colormap::Viridis, 0.0f, 1.0f, false}, 128, 96);
    glm::mat4 vp = cam.projection(128.0f / 96.0f) * cam.view();
    glm::vec4 c = projectToPixels(vp, {-0.8f, 0, 0}, 128, 96);
    glm::vec4 e = projectToPixels(vp, {-0.8f + 0.47f, 0, 0}, 128, 96);
    EXPECT_TRUE(pixelNear(img, int(c.x), int(c.y), sampleColormap(Colormap::Viridis, 0.0f)));
    EXPECT_TRUE(pixelNear(img, int(e.x), int(e.y), {255, 255, 255}));
    glm::vec4 hidden = projectToPixels(vp, {0.8f, 0, 0}, 128, 96);
    EXPECT_TRUE(isBackground(img, int(hidden.x), int(hidden.y)));
}

TEST_F(RenderTest, TinyNeuronsStayVisible) {
    // A 40x40 grid of neurons far smaller than a pixel: each still leaves a mark where it projects.
    Camera cam = frontCamera(30.0f);
    std::vector<NeuronInstance> ns;
    for (int i = 0; i < 40; ++i)
        for (int j = 0; j < 40; ++j)
            ns.push_back(neuron({(i - 19.5f) * 0.5f, (j - 19.5f) * 0.5f, 0}, 0.001f, 1.0f));
    const uint32_t w = 256, h = 256;
    auto img = render(ns, cam, {Colormap::Viridis, 0.0f, 1.0f, false}, w, h);
    glm::mat4 vp = cam.projection(1.0f) * cam.view();
    int visible = 0;
    for (auto& n : ns) {
        glm::vec4 p = projectToPixels(vp, n.position, w, h);
        visible += !isBackground(img, int(p.x), int(p.y));
    }
    EXPECT_EQ(visible, 1600);
}

TEST_F(RenderTest, FitToSceneKeepsTheWholeSceneInView) {
    auto scene = makeSyntheticNetwork(5000, 3);
    Camera cam;
    cam.fitToScene(scene.bounds, 16.0f / 9.0f);
    glm::mat4 vp = cam.projection(16.0f / 9.0f) * cam.view();
    for (int i = 0; i < 8; ++i) {
        glm::vec3 corner((i & 1) ? scene.bounds.hi.x : scene.bounds.lo.x,
                         (i & 2) ? scene.bounds.hi.y : scene.bounds.lo.y,
                         (i & 4) ? scene.bounds.hi.z : scene.bounds.lo.z);
        glm::vec4 p = projectToPixels(vp, corner, 1600, 900);
        EXPECT_GT(p.w, 0.0f);
        EXPECT_GE(p.x, 0.0f);
        EXPECT_LE(p.x, 1600.0f);
        EXPECT_GE(p.y, 0.0f);
        EXPECT_LE(p.y, 900.0f);
        EXPECT_GT(p.z, 0.0f);
        EXPECT_LT(p.z, 1.0f);
    }
}

TEST_F(RenderTest, ScreenshotPngRoundTrip) {
    Camera cam = frontCamera();
    auto img = render({neuron({0, 0, 0}, 0.8f, 0.3f)}, cam, {Colormap::Plasma, 0.0f, 1.0f, true});
    auto path = (std::filesystem::temp_directory_path() / "ts_render_shot.png").string();
    ASSERT_TRUE(writePng(path, img).isOk());
    auto back = readPng(path);
    ASSERT_TRUE(back.hasValue());
    EXPECT_EQ(back->pixels, img.pixels);
}

TEST_F(RenderTest, AllocatorPacksManySmallBuffersIntoFewBlocks) {
    size_t before = s_ctx->allocator().blockCount();
    std::vector<Buffer> bufs;
    for (int i = 0; i < 500; ++i) {
        auto b = Buffer::create(*s_ctx, {VkDeviceSize(1024 + i * 16), VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                                         MemoryUsage::DeviceLocal});
        ASSERT_TRUE(b.hasValue());
        bufs.push_back(std::move(b.value()));
    }
    EXPECT_LE(s_ctx->allocator().blockCount(), before + 1);
    // Distinct, non-overlapping ranges inside shared blocks.
    for (size_t i = 1; i < bufs.size(); ++i) {
        const auto& a = bufs[i - 1].allocation();
        const auto& b = bufs[i].allocation();
        if (a.memory == b.memory) {
            EXPECT_TRUE(a.offset + a.size <= b.offset || b.offset + b.size <= a.offset);
        }
    }
    VkDeviceSize used = s_ctx->allocator().bytesInUse();
    bufs.clear();
    EXPECT_LT(s_ctx->allocator().bytesInUse(), used);
    auto again = Buffer::create(*s_ctx, {4096, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, MemoryUsage::DeviceLocal});
    ASSERT_TRUE(again.hasValue());
    EXPECT_LE(s_ctx->allocator().blockCount(), before + 1);
}

// Regression for the live-window crash: a buffer recreated with its predecessor's handle value (lavapipe's
// handles are heap pointers, so this happens) must still be written into the descriptor set.
TEST_F(RenderTest, DescriptorSetsFollowRecreatedBuffersEvenWithRecycledHandles) {
    BufferSets sets;
    ASSERT_TRUE(sets.init(*s_ctx, {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER}, VK_SHADER_STAGE_COMPUTE_BIT, 1));
    auto a = Buffer::create(*s_ctx, {4096, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, MemoryUsage::DeviceLocal});
    ASSERT_TRUE(a.hasValue());
    sets.bind(0, {&a.value()});
    const uint64_t first = sets.writes();
    sets.bind(0, {&a.value()});
    EXPECT_EQ(sets.writes(), first) << "an unchanged binding is not rewritten";
    int reused = 0;
    for (int i = 0; i < 8; ++i) {
        const VkBuffer old = a->handle();
        a->reset();
        a = Buffer::create(*s_ctx, {8192, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT, MemoryUsage::DeviceLocal});
        ASSERT_TRUE(a.hasValue());
        reused += a->handle() == old;
        const uint64_t before = sets.writes();
        sets.bind(0, {&a.value()});
        EXPECT_EQ(sets.writes(), before + 1) << "recreated buffer " << i << (a->handle() == old ? " (same handle)" : "");
    }
    RecordProperty("recycled_handles", reused);
}

TEST_F(RenderTest, ExportableBufferGivesAnFd) {
    if (!s_ctx->hasExternalMemoryFd()) GTEST_SKIP() << "device has no VK_KHR_external_memory_fd";
    auto b = Buffer::create(*s_ctx,
                            {1 << 20, VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_VERTEX_BUFFER_BIT,
                             MemoryUsage::DeviceLocal, true});
    ASSERT_TRUE(b.hasValue()) << b.error().message;
    auto fd = b->exportFd();
    ASSERT_TRUE(fd.hasValue()) << fd.error().message;
    EXPECT_GE(*fd, 0);
    close(*fd);
}

TEST_F(RenderTest, SplattedAndImpostorNeuronsAgree) {
    // A far neuron just under the splat threshold and one just over it cover about the same area and
    // both take the colormap colour at their centre.
    ASSERT_TRUE(s_pass->splattingSupported());
    Camera cam = frontCamera(10.0f);
    const uint32_t w = 200, h = 200;
    glm::mat4 vp = cam.projection(1.0f) * cam.view();
    float pxPerUnit = projectToPixels(vp, {1, 0, 0}, w, h).x - projectToPixels(vp, {0, 0, 0}, w, h).x;
    NeuronStyle style{Colormap::Viridis, 0.0f, 1.0f, false};
    style.splatBelowPixels = 3.0f;
    auto small = neuron({0, 0, 0}, 2.8f / pxPerUnit, 1.0f); // 2.8 px radius: splatted
    auto large = neuron({0, 0, 0}, 3.2f / pxPerUnit, 1.0f); // 3.2 px radius: impostor
    auto count = [&](const ImageRgba8& img) {
        int c = 0;
        for (int y = 0; y < int(h); ++y)
            for (int x = 0; x < int(w); ++x)
                c += !isBackground(img, x, y);
        return c;
    };
    auto a = render({small}, cam, style, w, h);
    auto b = render({large}, cam, style, w, h);
    EXPECT_NEAR(count(a), 3.14159 * 2.8 * 2.8, 8.0);
    EXPECT_NEAR(count(b), 3.14159 * 3.2 * 3.2, 8.0);
    EXPECT_TRUE(pixelNear(a, 100, 100, sampleColormap(Colormap::Viridis, 1.0f)));
    EXPECT_TRUE(pixelNear(b, 100, 100, sampleColormap(Colormap::Viridis, 1.0f)));
}

TEST_F(RenderTest, SplatsAndImpostorsComposeByDepth) {
    Camera cam = frontCamera(10.0f);
    NeuronStyle style{Colormap::Viridis, 0.0f, 1.0f, false};
    style.splatBelowPixels = 1.5f;
    const uint32_t w = 128, h = 128;
    auto big = neuron({0, 0, 0}, 1.0f, 0.0f);
    auto tinyFront = neuron({0.2f, 0.2f, 2.0f}, 0.005f, 1.0f);   // in front of the big sphere
    auto tinyBack = neuron({-0.2f, -0.2f, -2.0f}, 0.005f, 1.0f); // hidden behind it
    auto img = render({big, tinyFront, tinyBack}, cam, style, w, h);
    glm::mat4 vp = cam.projection(1.0f) * cam.view();
    glm::vec4 f = projectToPixels(vp, tinyFront.position, w, h);
    glm::vec4 b = projectToPixels(vp, tinyBack.position, w, h);
    EXPECT_TRUE(pixelNear(img, int(f.x), int(f.y), sampleColormap(Colormap::Viridis, 1.0f)));
    EXPECT_TRUE(pixelNear(img, int(b.x), int(b.y), sampleColormap(Colormap::Viridis, 0.0f)));
}

TEST_F(RenderTest, SplatPathMatchesImpostorPathOnAWholeScene) {
    // The same 20k-neuron scene rendered with and without splatting differs in few pixels.
    auto scene = makeSyntheticNetwork(20000, 5);
    Camera cam;
    cam.fitToScene(scene.bounds, 320.0f / 180.0f);
    NeuronStyle style{Colormap::RdBu, -1.0f, 1.0f, true};
    auto splat = render(scene.neurons, cam, style, 320, 180);
    style.splatBelowPixels = 0.0f;
    auto plain = render(scene.neurons, cam, style, 320, 180);
    int covSplat = 0, covPlain = 0;
    for (int y = 0; y < 180; ++y)
        for (int x = 0; x < 320; ++x) {
            covSplat += !isBackground(splat, x, y);
            covPlain += !isBackground(plain, x, y);
        }
    EXPECT_GT(covPlain, 3000);
    EXPECT_NEAR(covSplat, covPlain, covPlain * 0.15);
}

namespace {
scene::EdgePolylines horizontalLines(std::vector<std::pair<float, float>> yAndWeight, float magnitude) {
    scene::EdgePolylines p;
    for (auto [y, weight] : yAndWeight) {
        uint32_t first = uint32_t(p.points.size());
        for (int i = 0; i < 8; ++i)
            p.points.push_back({glm::vec3(-1.5f + 3.0f * i / 7.0f, y, 0.0f), i / 7.0f});
        p.lines.push_back({first, 8, weight, magnitude});
    }
    return p;
}
} // namespace

TEST_F(RenderTest, EdgeRibbonsShowSignAndHideBelowThreshold) {
    auto edges = EdgePass::create(*s_ctx, kColorFormat, 1);
    ASSERT_TRUE(edges.hasValue()) << edges.error().message;
    Camera cam = frontCamera();
    const uint32_t w = 160, h = 100;
    auto draw = [&](const scene::EdgePolylines& lines, EdgeStyle style, std::vector<NeuronInstance> neurons) {
        EXPECT_TRUE((*edges)->setPolylines(lines).isOk());
        (*edges)->setStyle(style);
        auto target = OffscreenTarget::create(*s_ctx, w, h);
        EXPECT_TRUE(s_pass->setInstances(neurons).isOk());
        s_pass->setStyle({Colormap::Viridis, 0.0f, 1.0f, false});
        auto frame = (*target)->beginFrame();
        EXPECT_TRUE(s_pass->prepare(*frame, cam).isOk());
        beginRendering(*frame, true, 0, 0, 0);
        s_pass->record(*frame, cam);
        (*edges)->record(*frame, cam);
        endRendering(*frame);
        ImageRgba8 img;
        EXPECT_TRUE((*target)->endFrame(*frame, &img).isOk());
        return img;
    };
    EdgeStyle style;
    style.alpha = 1.0f;
    style.maxWidthPixels = 6.0f;
    glm::mat4 vp = cam.projection(float(w) / h) * cam.view();
    glm::vec4 top = projectToPixels(vp, {-0.7f, 0.5f, 0}, w, h),
              bottom = projectToPixels(vp, {-0.7f, -0.5f, 0}, w, h);
    glm::vec4 under = projectToPixels(vp, {0.7f, 0.5f, 0}, w, h);
    // A neuron in front of the top (positive) line at x = 0.7.
    auto img = draw(horizontalLines({{0.5f, 1.0f}, {-0.5f, -1.0f}}, 1.0f), style,
                    {neuron({0.7f, 0.5f, 0.5f}, 0.2f, 1.0f)});
    const uint8_t* pt = img.at(int(top.x), int(top.y));
    const uint8_t* pb = img.at(int(bottom.x), int(bottom.y));
    EXPECT_GT(pt[0], pt[2] + 60) << "positive weight is red";
    EXPECT_GT(pb[2], pb[0] + 60) << "negative weight is blue";
    EXPECT_TRUE(pixelNear(img, int(under.x), int(under.y), sampleColormap(Colormap::Viridis, 1.0f)))
        << "the neuron in front hides the edge";
    EXPECT_TRUE(isBackground(img, int(top.x), int(top.y) - 12)) << "ribbons have a bounded width";
    // Below the threshold: nothing drawn.
    style.threshold = 0.6f;
    auto hidden = draw(horizontalLines({{0.5f, 1.0f}}, 0.5f), style, {});
    EXPECT_TRUE(isBackground(hidden, int(top.x), int(top.y)));
}

TEST_F(RenderTest, SurfaceShowsColormapAndHoles) {
    // A 3x3-vertex flat square at y = 0 seen from above, one corner cell without triangles: the renderer draws
    // nothing there. (That NaN losses become such cells is the mesh builder's job, checked by
    // Mesh.NaNCellsAreHolesAndContoursAreCircles in landscape_mesh_tests.)
    auto surface = SurfacePass::create(*s_ctx, kColorFormat, 1);
    ASSERT_TRUE(surface.hasValue()) << surface.error().message;
    std::vector<SurfaceVertex> v;
    for (int iy = 0; iy < 3; ++iy)
        for (int ix = 0; ix < 3; ++ix)
            v.push_back({{ix - 1.0f, 0.0f, iy - 1.0f}, {0, 1, 0}, ix / 2.0f, 1.0f});
    std::vector<uint32_t> idx;
    for (int iy = 0; iy < 2; ++iy)
        for (int ix = 0; ix < 2; ++ix) {
            if (ix == 1 && iy == 1) continue; // the hole
            uint32_t a = iy * 3 + ix, b = a + 1, c = a + 3, d = a + 4;
            idx.insert(idx.end(), {a, c, b, b, c, d});
        }
    ASSERT_TRUE((*surface)->setMesh({v, idx, {}}).isOk());
    Camera cam;
    cam.yaw = 0.0f;
    cam.pitch = 1.5f; // almost straight down
    cam.distance = 4.0f;
    cam.nearPlane = 0.1f;
    cam.farPlane = 20.0f;
    const uint32_t w = 128, h = 128;
    auto target = OffscreenTarget::create(*s_ctx, w, h);
    auto frame = (*target)->beginFrame();
    beginRendering(*frame, true, 0, 0, 0);
    (*surface)->record(*frame, cam);
    endRendering(*frame);
    ImageRgba8 img;
    ASSERT_TRUE((*target)->endFrame(*frame, &img).isOk());
    glm::mat4 vp = cam.projection(1.0f) * cam.view();
    glm::vec4 hole = projectToPixels(vp, {0.5f, 0.0f, 0.5f}, w, h);
    glm::vec4 left = projectToPixels(vp, {-0.9f, 0.0f, -0.5f}, w, h);
    glm::vec4 right = projectToPixels(vp, {0.9f, 0.0f, -0.5f}, w, h);
    EXPECT_TRUE(isBackground(img, int(hole.x), int(hole.y))) << "a cell without triangles shows the background";
    const uint8_t* l = img.at(int(left.x), int(left.y));
    const uint8_t* r = img.at(int(right.x), int(right.y));
    // viridis: dark purple at the low end, yellow at the high end.
    EXPECT_GT(l[2], l[1]) << "low values are purple-blue";
    EXPECT_GT(r[1], r[2]) << "high values are yellow-green";
    EXPECT_GT(r[0] + r[1], l[0] + l[1] + 100);
}

TEST_F(RenderTest, MlpWithBundledEdgesRendersHeadless) {
    // A 3-layer MLP (784-64-32-10) with random weights: strongest connections bundled over the cluster tree.
    using namespace ts::scene;
    auto net0 = makeMlpNetwork({64, 32, 10}, 3);
    const NetworkDesc& desc = net0.desc;
    const NetworkData& data = net0.data;
    SceneOptions opt;
    opt.layers.rankGapFactor = 1.0f; // room between layers for the bundles
    auto sc = buildScene(desc, data, opt);
    ASSERT_TRUE(sc.hasValue()) << sc.error().message;
    auto edges = selectAllDenseEdges(desc, data, {EdgeMetric::AbsWeight, 3, 0.0f});
    auto bundled =
        bundleHierarchical(sc->tree, toBundleEdges(sc->tree, sc->position, edges), BundleOptions{});
    ASSERT_GT(bundled.lines.size(), 100u);

    auto net = NetworkRenderer::create(*s_ctx, kColorFormat, 1);
    ASSERT_TRUE(net.hasValue()) << net.error().message;
    (*net)->setScene(&sc.value());
    ASSERT_TRUE((*net)->setEdges(bundled).isOk());
    (*net)->neurons().setStyle({Colormap::RdBu, -1.0f, 1.0f, true});
    Aabb box;
    for (size_t i = 0; i < sc->position.size(); ++i)
        box.extend(sc->position[i], sc->radius[i]);
    render::Camera cam;
    cam.yaw = 1.05f;
    cam.pitch = 0.3f;
    cam.fitToScene(box, 16.0f / 9.0f);
    auto target = OffscreenTarget::create(*s_ctx, 960, 540);
    auto frame = (*target)->beginFrame();
    ASSERT_TRUE((*net)->prepare(*frame, cam).isOk());
    beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
    (*net)->record(*frame, cam);
    endRendering(*frame);
    ImageRgba8 img;
    ASSERT_TRUE((*target)->endFrame(*frame, &img).isOk());
    ASSERT_TRUE(writePng(std::string(TS_BINARY_DIR) + "/mlp_bundled_edges.png", img).isOk());
    EXPECT_EQ((*net)->lastStats().neurons + (*net)->lastStats().clusters, (*net)->lastStats().instances);
    // Halfway between the fc1 and fc2 layers (no neurons there) the bundles leave visible ink.
    glm::mat4 vp = cam.projection(16.0f / 9.0f) * cam.view();
    glm::vec3 fc1 = sc->position[784], fc2 = sc->position[784 + 64];
    glm::vec4 mid = projectToPixels(vp, (fc1 + fc2) * 0.5f, 960, 540);
    int ink = 0;
    for (int dy = -40; dy <= 40; ++dy)
        for (int dx = -40; dx <= 40; ++dx) {
            int x = std::clamp(int(mid.x) + dx, 0, 959), y = std::clamp(int(mid.y) + dy, 0, 539);
            const uint8_t* p = img.at(x, y);
            ink += std::abs(p[0] - 9) + std::abs(p[1] - 10) + std::abs(p[2] - 15) > 40;
        }
    EXPECT_GT(ink, 200);

    // Picking: the pixel where a neuron's centre projects picks that neuron (nearest along the ray).
    for (uint32_t id : {784u + 5u, 784u + 64u + 7u, 784u + 64u + 32u + 3u}) {
        glm::vec4 p = projectToPixels(vp, sc->position[id], 960, 540);
        auto picked = (*net)->pick(cam, {960, 540}, p.x, p.y);
        ASSERT_TRUE(picked.has_value()) << id;
        EXPECT_EQ(*picked, id);
    }
    EXPECT_FALSE((*net)->pick(cam, {960, 540}, 2.0f, 2.0f).has_value()) << "a corner of the picture is empty";
}
