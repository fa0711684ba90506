// The overlay (Dear ImGui's Vulkan backend and the panel-image pass) rendered offscreen on lavapipe with
// validation on.
#include <gtest/gtest.h>
#include <imgui.h>

#include "engine/render/context.hpp"
#include "engine/render/target.hpp"
#include "engine/ui/imgui_layer.hpp"
#include "engine/ui/panel_images.hpp"
#include "engine/ui/panels.hpp"

using namespace ts;
using namespace ts::ui;

TEST(Overlay, RendersOffscreenWithoutValidationMessages) {
    auto ctx = render::Context::create({.validation = 1});
    ASSERT_TRUE(ctx.hasValue()) << ctx.error().message;
    auto target = render::OffscreenTarget::create(**ctx, 1024, 640); // large enough for open panels
    ASSERT_TRUE(target.hasValue());
    auto layer = ImGuiLayer::create(**ctx, render::kColorFormat, 2, nullptr);
    ASSERT_TRUE(layer.hasValue()) << layer.error().message;
    ImageRgba8 img;
    for (int i = 0; i < 3; ++i) {
        auto frame = (*target)->beginFrame();
        ASSERT_TRUE(frame.hasValue());
        render::beginRendering(*frame, true, 0, 0, 0);
        render::endRendering(*frame);
        (*layer)->newFrame(frame->extent, 1.0f / 60.0f);
        TrainingView v;
        v.available = true;
        v.model = "mlp";
        v.data = "spirals";
        trainingPanel(v);
        ASSERT_TRUE((*layer)->render(*frame).isOk());
        ASSERT_TRUE((*target)->endFrame(*frame, &img).isOk());
    }
    // The training window sits at the left below the model panel: its pixels differ from the background.
    int lit = 0;
    for (int y = 230; y < 600; ++y)
        for (int x = 10; x < 300; ++x)
            lit += img.at(x, y)[0] + img.at(x, y)[1] + img.at(x, y)[2] > 30;
    EXPECT_GT(lit, 10000);
    EXPECT_EQ(img.at(600, 20)[0] + img.at(600, 20)[1] + img.at(600, 20)[2], 0);
    layer->reset();
    EXPECT_EQ((*ctx)->validationMessageCount(), 0);
}

// Panel images go through the overlay's own Vulkan pass: a known 4 x 3 picture drawn 40 pixels per texel
// comes back texel for texel (nearest sampling, blended over the frame like ImGui's colours), ImGui draws on
// after it (its state restored), textures live while their image is drawn, and nothing is reported.
TEST(Overlay, PanelImagesAreDrawnTexelForTexelByTheGpu) {
    auto ctx = render::Context::create({.validation = 1});
    ASSERT_TRUE(ctx.hasValue()) << ctx.error().message;
    auto target = render::OffscreenTarget::create(**ctx, 320, 240);
    ASSERT_TRUE(target.hasValue());
    auto layer = ImGuiLayer::create(**ctx, render::kColorFormat, 2, nullptr);
    ASSERT_TRUE(layer.hasValue()) << layer.error().message;
    auto img = std::make_shared<PanelImage>();
    img->width = 4;
    img->height = 3;
    for (int y = 0; y < 3; ++y)
        for (int x = 0; x < 4; ++x) // distinct colours; texel (3, 2) is see-through
            img->rgba.push_back(x == 3 && y == 2 ? 0u : IM_COL32(40 + 60 * x, 50 + 80 * y, 200 - 30 * x - 20 * y, 255));
    ImageRgba8 out;
    for (int frame = 0; frame < 12; ++frame) {
        auto f = (*target)->beginFrame();
        ASSERT_TRUE(f.hasValue());
        render::beginRendering(*f, true, 0, 0, 0);
        render::endRendering(*f);
        (*layer)->newFrame(f->extent, 1.0f / 60.0f);
        ImDrawList* dl = ImGui::GetForegroundDrawList();
        if (frame < 3) {
            drawPanelImage(dl, img, ImVec2(20, 30), ImVec2(180, 150));
            dl->AddRectFilled(ImVec2(200, 30), ImVec2(240, 70), IM_COL32(255, 255, 0, 255)); // ImGui after it
            EXPECT_EQ(panelImageRequests().size(), 1u);
        }
        ASSERT_TRUE((*layer)->render(*f).isOk());
        ASSERT_TRUE((*target)->endFrame(*f, &out).isOk());
        if (frame == 2) {
            EXPECT_EQ((*layer)->panelTextures(), 1u) << "one texture for an image drawn three frames";
            for (int y = 0; y < 3; ++y)
                for (int x = 0; x < 4; ++x) {
                    const auto* px = out.at(20 + 40 * x + 20, 30 + 40 * y + 20);
                    const uint32_t want = img->rgba[size_t(y * 4 + x)];
                    EXPECT_EQ(int(px[0]), int(want & 0xff)) << x << "," << y;
                    EXPECT_EQ(int(px[1]), int((want >> 8) & 0xff)) << x << "," << y;
                    EXPECT_EQ(int(px[2]), int((want >> 16) & 0xff)) << x << "," << y;
                }
            EXPECT_EQ(out.at(220, 50)[0], 255);
            EXPECT_EQ(out.at(220, 50)[2], 0) << "ImGui's rectangle after the image";
            EXPECT_EQ(out.at(10, 10)[0] + out.at(10, 10)[1] + out.at(10, 10)[2], 0) << "outside the image";
        }
    }
    EXPECT_EQ((*layer)->panelTextures(), 0u) << "released some frames after its last use";
    layer->reset();
    EXPECT_EQ((*ctx)->validationMessageCount(), 0);
}
