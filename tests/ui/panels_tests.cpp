// Panels driven through ImGui's own input path without a GPU or a window (clicks at the recorded item
// rectangles): they link only the panels library, not the Vulkan/GLFW backends (overlay_tests.cpp has those).
#include <algorithm>
#include <functional>
#include <memory>
#include <tuple>
#include <gtest/gtest.h>
#include <imgui.h>
#include <imgui_internal.h>

#include "engine/ui/panel_images.hpp"
#include "engine/ui/panels.hpp"
#include "engine/ui/run_panels.hpp"

using namespace ts;
using namespace ts::ui;

namespace {

class Headless {
  public:
    Headless() {
        m_ctx = ImGui::CreateContext();
        ImGui::SetCurrentContext(m_ctx);
        ImGuiIO& io = ImGui::GetIO();
        io.IniFilename = nullptr;
        io.DisplaySize = ImVec2(1280, 720);
        io.DeltaTime = 1.0f / 60.0f;
        unsigned char* px;
        int w, h;
        io.Fonts->GetTexDataAsRGBA32(&px, &w, &h);
        enableItemRecording(true);
    }
    ~Headless() {
        enableItemRecording(false);
        ImGui::DestroyContext(m_ctx);
    }
    void frame(const std::function<void()>& body) {
        ImGui::NewFrame();
        body();
        ImGui::Render();
    }
    // Runs `body` over frames that press and release the mouse on `item`; returns after the release frame.
    // `across` in [0, 1]: where along the item to press (a slider's position); < 0: near the left edge.
    void click(const std::string& item, const std::function<void()>& body, float across = -1.0f) {
        frame(body); // lay out and record rectangles
        frame(body);
        auto it = recordedItems().find(item);
        ASSERT_NE(it, recordedItems().end()) << "no item '" << item << "'";
        ImGuiIO& io = ImGui::GetIO();
        // Near the left edge: wide items (table rows) have column resize handles at their centre.
        float x = across >= 0.0f ? it->second.x0 + across * (it->second.x1 - it->second.x0)
                                 : std::min(it->second.x0 + 12.0f, (it->second.x0 + it->second.x1) * 0.5f);
        io.MousePos = ImVec2(x, (it->second.y0 + it->second.y1) * 0.5f);
        frame(body); // hover
        io.MouseDown[0] = true;
        frame(body);
        io.MouseDown[0] = false;
        frame(body);
    }

  private:
    ImGuiContext* m_ctx;
};

} // namespace

TEST(Panels, TrainingPlayPauseStep) {
    Headless ui;
    TrainingView v;
    v.available = true;
    v.paused = true;
    v.model = "mlp";
    v.data = "spirals";
    v.trainLoss = {1.0f, 0.7f, 0.5f};
    v.valLoss = {1.1f, 0.8f, 0.6f};
    TrainingEdits got;
    auto body = [&] {
        auto e = trainingPanel(v);
        if (e.any()) got = e;
    };
    ui.click("play", body);
    EXPECT_TRUE(got.play);
    EXPECT_FALSE(got.pause);
    got = {};
    ui.click("step", body);
    EXPECT_TRUE(got.stepOnce);
    got = {};
    v.paused = false;
    ui.click("pause", body);
    EXPECT_TRUE(got.pause);
    got = {};
    ui.click("step", body); // disabled while running
    EXPECT_FALSE(got.stepOnce);
}

// A curve without a finite value (the accuracy of unlabelled inputs: NaN at every step) is not drawn, and the
// loss chart beside it is; a NaN among finite values leaves the chart drawn over the finite range.
TEST(Panels, TrainingChartsLeaveOutCurvesWithoutAFiniteValue) {
    Headless ui;
    TrainingView v;
    v.available = true;
    v.trainLoss = {1.0f, 0.7f, NAN};
    v.valLoss = {1.1f, 0.8f, 0.6f};
    v.trainAcc = {NAN, NAN, NAN};
    v.valAcc = {NAN, NAN};
    ui.frame([&] { trainingPanel(v); });
    ui.frame([&] { trainingPanel(v); });
    EXPECT_NE(recordedItems().find("loss"), recordedItems().end());
    EXPECT_EQ(recordedItems().find("accuracy"), recordedItems().end()) << "a chart of nothing but NaN";
    v.trainAcc = {0.2f, NAN, 0.5f};
    enableItemRecording(true); // starts a fresh record
    ui.frame([&] { trainingPanel(v); });
    EXPECT_NE(recordedItems().find("accuracy"), recordedItems().end());
}

namespace {
// The frame drew one picture, `img`, in a rectangle of its width / height.
void expectOnePictureAtItsAspect(const std::shared_ptr<PanelImage>& img) {
    ASSERT_EQ(panelImageRequests().size(), 1u);
    const auto& r = panelImageRequests()[0];
    EXPECT_EQ(r.image, img);
    EXPECT_NEAR((r.p1.x - r.p0.x) / (r.p1.y - r.p0.y), float(img->width) / float(img->height), 0.01f);
}
} // namespace

TEST(Panels, ExplainShowsTheHeatmapAtItsAspectAndTheSliderPicksASample) {
    Headless ui;
    auto img = std::make_shared<PanelImage>();
    img->width = 300, img->height = 100;
    img->rgba.assign(size_t(300 * 100), 0xff0000ffu);
    ExplainView v;
    v.image = img;
    v.samples = 50;
    v.classes = 10;
    v.line = "lrp of class 3";
    ExplainEdits got;
    auto body = [&] {
        auto e = explainPanel(v);
        if (e.changed) got = e;
    };
    ui.frame(body);
    ASSERT_NO_FATAL_FAILURE(expectOnePictureAtItsAspect(img));
    ui.click("explain.sample", body, 0.75f);
    EXPECT_TRUE(got.changed);
    EXPECT_GT(got.sample, 30);
    EXPECT_LT(got.sample, 45);
    EXPECT_EQ(got.method, 4); // unchanged: lrp
    // An error is shown instead of a picture; filling the display (headless --view explain).
    v.image = nullptr;
    v.error = "LRP has no rule for layer 'enc' (TransformerEncoderLayer)";
    v.fill = true;
    ui.frame(body);
    EXPECT_TRUE(panelImageRequests().empty());
    ui.frame(body);
    ImGuiWindow* w = ImGui::FindWindowByName("Explain");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->Size.x, 1280.0f);
}

// The Loss landscape panel: the figure at its aspect, the grid slider edits the request, the every-N slider
// only while training; an error replaces the picture.
TEST(Panels, LandscapeShowsTheFigureAndTheSlidersEditTheRequest) {
    Headless ui;
    auto img = std::make_shared<PanelImage>();
    img->width = 820, img->height = 680;
    img->rgba.assign(size_t(820 * 680), 0xffffffffu);
    LiveLandscapeView v;
    v.image = img;
    v.live = true;
    v.step = 120;
    v.line = "min loss 0.21";
    LiveLandscapeEdits got;
    auto body = [&] {
        auto e = liveLandscapePanel(v);
        if (e.changed) got = e;
    };
    ui.frame(body);
    ASSERT_NO_FATAL_FAILURE(expectOnePictureAtItsAspect(img));
    ui.click("landscape.grid", body, 0.7f); // the item rect includes the label: stay on the slider
    EXPECT_TRUE(got.changed);
    EXPECT_GT(got.grid, 30);
    EXPECT_EQ(got.every, 5);
    ui.click("landscape.every", body, 0.05f);
    EXPECT_LT(got.every, 5);
    // Not live (view): no every-N slider; an error instead of a picture.
    v.live = false;
    v.image = nullptr;
    v.error = "the landscape needs labelled samples, and this session has none";
    ui.frame(body);
    EXPECT_TRUE(panelImageRequests().empty());
}

TEST(Panels, ViewPanelReturnsEditedSettings) {
    Headless ui;
    ViewSettings s;
    FrameStats stats{16.0f, 1000, 1000, "llvmpipe", 1 << 20};
    std::vector<std::string> stats_names = {"mean", "max |x|"};
    ViewEdits last;
    auto body = [&] {
        auto e = viewPanel(s, stats, stats_names);
        if (e.changed || e.fitRequested) last = e;
    };
    ui.click("lit spheres", body);
    ASSERT_TRUE(last.changed);
    EXPECT_FALSE(last.settings.lit);
    EXPECT_EQ(last.settings.colormap, s.colormap) << "only the clicked setting changes";
    last = {};
    ui.click("fit (F)", body);
    EXPECT_TRUE(last.fitRequested);
    EXPECT_FALSE(last.changed);
}

TEST(Panels, LayerListSelectsTheClickedLayer) {
    Headless ui;
    std::vector<LayerRow> rows = {{"fc1", "Linear", "[64]", 128, 64, 0},
                                  {"act1", "ReLU", "[64]", 0, 64, 0},
                                  {"fc2", "Linear", "[10]", 650, 10, 0}};
    std::optional<int> selected;
    ui.click("fc2", [&] {
        auto e = layerPanel(rows, 0);
        if (e.selected) selected = e.selected;
    });
    EXPECT_EQ(selected, 2);
}

TEST(Panels, LayerTreeGroupsStagesAndSearchFilters) {
    Headless ui;
    std::vector<LayerRow> rows = {{"conv1", "Conv2d", "[8, 4, 4]", 80, 128, 0},
                                  {"layer1.0.conv1", "Conv2d", "[8, 4, 4]", 584, 128, 2},
                                  {"layer1.0.bn1", "BatchNorm2d", "[8, 4, 4]", 16, 128, 2},
                                  {"layer2.0.conv1", "Conv2d", "[16, 2, 2]", 1168, 64, 2},
                                  {"layer2.0.bn1", "BatchNorm2d", "[16, 2, 2]", 32, 64, 2}};
    std::optional<int> selected;
    // Stages are tree nodes; their layers show their names inside the stage, and select the full row.
    ui.click("layer2.0.bn1", [&] {
        auto e = layerPanel(rows, 0);
        if (e.selected) selected = e.selected;
    });
    EXPECT_EQ(selected, 4);
    EXPECT_TRUE(recordedItems().count("stage:layer1"));
    EXPECT_TRUE(recordedItems().count("stage:layer2"));
    // Each stage has a fold button: pressing it asks for that stage to be drawn as one box.
    std::optional<std::string> fold;
    ui.click("fold:layer2", [&] {
        auto e = layerPanel(rows, 0, "", std::vector<std::string>{"layer1"});
        if (e.toggleCollapse) fold = e.toggleCollapse;
    });
    EXPECT_EQ(fold, std::optional<std::string>("layer2"));
    // With a filter only matching layers are listed.
    enableItemRecording(true); // clears what earlier frames recorded
    ui.frame([&] { layerPanel(rows, 0, "bn1"); });
    EXPECT_TRUE(recordedItems().count("layer1.0.bn1"));
    EXPECT_FALSE(recordedItems().count("layer1.0.conv1"));
    EXPECT_FALSE(recordedItems().count("conv1"));
}

TEST(Panels, HealthAlertJumpsToTheClickedOne) {
    Headless ui;
    std::vector<HealthAlert> alerts = {{Severity::Warning, "dead neurons 60%", "fc1", 0, 40, 3},
                                       {Severity::Error, "NaN in activations", "fc2", 2, 90, 7}};
    std::optional<int> clicked;
    ui.click("alert1", [&] {
        if (auto c = healthPanel(alerts)) clicked = c;
    });
    EXPECT_EQ(clicked, 1);
}

TEST(Panels, HealthShowsErrorsFirstAndFoldsTheRestAway) {
    Headless ui;
    std::vector<HealthAlert> alerts;
    for (int i = 0; i < 8; ++i)
        alerts.push_back({Severity::Warning, "60% dead neurons", "relu" + std::to_string(i), i, 1, 0});
    alerts.push_back({Severity::Error, "NaN/Inf", "fc", 8, 2, 1}); // raised last
    enableItemRecording(true);
    ui.frame([&] { healthPanel(alerts); });
    EXPECT_TRUE(recordedItems().count("alert8")) << "an error is shown however many warnings came before it";
    for (int i = 0; i < 4; ++i)
        EXPECT_TRUE(recordedItems().count("alert" + std::to_string(i))) << i;
    for (int i = 4; i < 8; ++i)
        EXPECT_FALSE(recordedItems().count("alert" + std::to_string(i))) << i << " should be folded away";
    ASSERT_TRUE(recordedItems().count("more alerts"));
    ui.click("more alerts", [&] { healthPanel(alerts); });
    std::optional<int> clicked;
    ui.click("alert7", [&] {
        if (auto c = healthPanel(alerts)) clicked = c;
    });
    EXPECT_EQ(clicked, 7) << "an unfolded alert jumps to itself";
}

TEST(Panels, InspectorComparesAndScrubs) {
    Headless ui;
    InspectorView v;
    v.layer = "fc1";
    v.timelineIndex = 4;
    v.timelineSize = 10;
    v.activations = {{1, 3, 5, 2}, -1.0f, 1.0f};
    InspectorEdits got;
    ui.click("compare with this", [&] {
        auto e = inspectorPanel(v);
        if (e.compareIndex) got = e;
    });
    EXPECT_EQ(got.compareIndex, 4);
    // Scrubbing: a press near the slider's right end asks for the last snapshots, near its left end the first.
    // The recorded rectangle holds the slider and its label on the right: aim inside the slider's frame.
    const auto& rect = recordedItems().at("timeline");
    const float width = rect.x1 - rect.x0;
    const float frame = width - ImGui::CalcTextSize("timeline").x - ImGui::GetStyle().ItemInnerSpacing.x;
    std::optional<int> scrubbed;
    ui.click("timeline", [&] {
        auto e = inspectorPanel(v);
        if (e.timelineIndex) scrubbed = e.timelineIndex;
    }, (frame - 3.0f) / width);
    ASSERT_TRUE(scrubbed.has_value()) << "pressing the timeline slider changed nothing";
    EXPECT_GE(*scrubbed, 8);
    scrubbed.reset();
    ui.click("timeline", [&] {
        auto e = inspectorPanel(v);
        if (e.timelineIndex) scrubbed = e.timelineIndex;
    }, 3.0f / width);
    ASSERT_TRUE(scrubbed.has_value());
    EXPECT_LE(*scrubbed, 1);
}

// Mean pooling of attention maps, against a float64 brute force over each cell's block (partial blocks at the
// ends included), and no pooling when the map fits.
TEST(AttentionMaps, PoolingMeansEachBlock) {
    for (auto [rows, cols, cells] : {std::tuple{197, 197, 64}, std::tuple{17, 5, 64}, std::tuple{10, 7, 3},
                                     std::tuple{1, 1, 1}, std::tuple{65, 64, 64}}) {
        std::vector<float> map(size_t(rows) * size_t(cols));
        uint32_t seed = 12345u + uint32_t(rows * 7 + cols);
        for (float& v : map) {
            seed = seed * 1664525u + 1013904223u;
            v = float(seed >> 8) / float(1 << 24);
        }
        const PooledMap p = poolMap(map, rows, cols, cells);
        ASSERT_LE(p.rows, cells);
        ASSERT_LE(p.cols, cells);
        if (rows <= cells && cols <= cells) {
            EXPECT_EQ(p.rows, rows);
            EXPECT_EQ(p.cols, cols);
        }
        for (int r = 0; r < p.rows; ++r)
            for (int c = 0; c < p.cols; ++c) {
                double sum = 0;
                int n = 0;
                for (int y = r * p.blockRows; y < std::min(rows, (r + 1) * p.blockRows); ++y)
                    for (int x = c * p.blockCols; x < std::min(cols, (c + 1) * p.blockCols); ++x, ++n)
                        sum += map[size_t(y) * size_t(cols) + size_t(x)];
                ASSERT_GT(n, 0);
                EXPECT_NEAR(p.values[size_t(r) * size_t(p.cols) + size_t(c)], sum / n, 1e-5)
                    << rows << "x" << cols << " cell " << r << "," << c;
            }
    }
    EXPECT_TRUE(poolMap(std::vector<float>(3), 2, 2, 4).values.empty()) << "a map shorter than rows x cols";
}

// The inspector shows every head of an attention layer; clicking a thumbnail opens that head, and the
// attention window's head slider chooses another.
TEST(AttentionMaps, ThumbnailOpensItsHeadAndTheWindowSwitchesHeads) {
    Headless ui;
    auto maps = std::make_shared<AttentionMaps>();
    maps->layer = "encoder.layers.0.self_attn.attn_weights";
    maps->heads = 6;
    maps->queries = 9;
    maps->keys = 9;
    maps->values.assign(6 * 9 * 9, 1.0f / 9.0f);
    InspectorView v;
    v.layer = maps->layer;
    v.attention = maps;
    std::optional<int> opened;
    ui.click("##head4", [&] {
        auto e = inspectorPanel(v);
        if (e.openAttentionHead) opened = e.openAttentionHead;
    });
    EXPECT_EQ(opened, std::optional<int>(4));
    std::optional<int> head;
    ui.click("head", [&] {
        auto e = attentionPanel(*maps, 4, 2);
        if (e.head) head = e.head;
    }, 0.02f);
    ASSERT_TRUE(head.has_value()) << "pressing the head slider changed nothing";
    EXPECT_EQ(*head, 0);
}

// Stage names in the scene are where they were drawn: a click inside a foldable one names it; outside, or on a
// layer name (not foldable), nothing.
TEST(SceneLabelsTest, ClicksOnFoldableNamesAreFound) {
    Headless ui;
    std::vector<SceneLabel> labels(2);
    labels[0].text = "layer3";
    labels[0].worldSize = 0.5f;
    labels[0].priority = 0;
    labels[0].foldable = true;
    labels[1].text = "fc";
    labels[1].anchor[0] = -0.6f; // clip space x -0.6: left of the centre
    labels[1].worldSize = 0.5f;
    labels[1].priority = 2;
    const float identity[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    std::vector<PlacedLabel> placed;
    ui.frame([&] { EXPECT_EQ(sceneLabels(labels, identity, 1280, 720, 18.0f, &placed), 2); });
    ASSERT_EQ(placed.size(), 2u);
    EXPECT_EQ(foldableLabelAt(labels, placed, 640, 350), std::optional<size_t>(0)); // just above the anchor
    EXPECT_EQ(foldableLabelAt(labels, placed, 640, 400), std::nullopt);             // below it
    EXPECT_EQ(foldableLabelAt(labels, placed, 0.2f * 640, 350), std::nullopt);      // the layer name
}

// A layer whose box projects under the size limit is not named, unless it is one of the network's ends
// (`always`): a 4-neuron classification head far from the camera still says "head".
TEST(SceneLabelsTest, TheEndsOfTheNetworkAreNamedHoweverSmall) {
    Headless ui;
    std::vector<SceneLabel> labels(3);
    const char* names[] = {"input", "hidden", "head"};
    for (int i = 0; i < 3; ++i) {
        labels[size_t(i)].text = names[i];
        labels[size_t(i)].anchor[0] = -0.6f + 0.6f * float(i);
        labels[size_t(i)].worldSize = 0.01f; // 3.6 px high at 720: under the 18 px limit
        labels[size_t(i)].priority = 2;
    }
    labels[0].always = labels[2].always = true;
    const float identity[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    std::vector<PlacedLabel> placed;
    ui.frame([&] { EXPECT_EQ(sceneLabels(labels, identity, 1280, 720, 18.0f, &placed), 2); });
    std::vector<std::string> drawn;
    for (const auto& p : placed)
        drawn.push_back(labels[p.index].text);
    std::sort(drawn.begin(), drawn.end());
    EXPECT_EQ(drawn, (std::vector<std::string>{"head", "input"}));
    labels[1].worldSize = 0.2f; // 72 px: named too
    ui.frame([&] { EXPECT_EQ(sceneLabels(labels, identity, 1280, 720, 18.0f, &placed), 3); });
}

TEST(Panels, LandscapeRecompute) {
    Headless ui;
    LandscapeView v;
    bool recompute = false;
    ui.click("recompute", [&] { recompute |= landscapePanel(v).recompute; });
    EXPECT_TRUE(recompute);
}

// With --hessian-esd the landscape panel plots the eigenvalue density: a line of one segment per column
// (more vertices than the same panel without it), and nothing when there is no spectrum.
TEST(Panels, LandscapePlotsTheSpectrumWhenThereIsOne) {
    Headless ui;
    LandscapeView v;
    auto vertices = [&] {
        ui.frame([&] { landscapePanel(v); }); // the first frame lays out the auto-sized window
        ui.frame([&] { landscapePanel(v); });
        return ImGui::GetDrawData()->TotalVtxCount;
    };
    const int without = vertices();
    v.spectrum.assign(150, -10.0f);
    for (int i = 0; i < 150; i += 30) v.spectrum[size_t(i)] = 1.0f;
    v.spectrumMin = -0.5f, v.spectrumMax = 40.0f;
    const int with = vertices();
    EXPECT_GT(with, without + 149 * 4) << "149 line segments (a quad each) and the labels";
}

// --- Views of whole runs ---
namespace {
// 100 flat series at values i / 99 over 20 points, with their density and sample.
ts::dynamics::LayerSeriesView flatSeries() {
    ts::dynamics::LayerSeriesView v;
    v.layer = 0;
    v.name = "fc";
    v.matrix.points = 20;
    v.matrix.series = 100;
    for (int64_t t = 0; t < 20; ++t) {
        v.steps.push_back(10 * t);
        for (int64_t i = 0; i < 100; ++i)
            v.matrix.values.push_back(float(i) / 99.0f);
    }
    v.density = ts::dynamics::densityImage(v.matrix, 64, 32, ts::dynamics::finiteRange(v.matrix));
    v.sample = ts::dynamics::blueNoiseSample(v.matrix, v.density);
    return v;
}
} // namespace

TEST(RunPanels, DraggingABoxOverTheSeriesBrushesTheNeuronsInside) {
    Headless h;
    const auto series = flatSeries();
    SeriesPanelView view;
    view.series = &series;
    view.rect = {0, 0, 1280, 720, true};
    SeriesEdits got;
    auto body = [&] {
        auto e = seriesPanel(view);
        if (e.brush) got = e;
    };
    h.frame(body);
    h.frame(body);
    auto it = recordedItems().find("##series");
    ASSERT_NE(it, recordedItems().end());
    const auto r = it->second;
    ImGuiIO& io = ImGui::GetIO();
    // From the top at 30 % of the width to the middle at 70 %: the upper half of the values, middle steps.
    const ImVec2 a(r.x0 + 0.3f * (r.x1 - r.x0), r.y0 + 6), b(r.x0 + 0.7f * (r.x1 - r.x0), (r.y0 + r.y1) * 0.5f);
    io.MousePos = a;
    h.frame(body);
    io.MouseDown[0] = true;
    h.frame(body);
    for (int k = 1; k <= 4; ++k) {
        io.MousePos = ImVec2(a.x + (b.x - a.x) * float(k) / 4, a.y + (b.y - a.y) * float(k) / 4);
        h.frame(body);
    }
    io.MouseDown[0] = false;
    h.frame(body);
    ASSERT_TRUE(got.brush.has_value());
    const auto& box = *got.brush;
    EXPECT_LT(box[0], box[1]);
    EXPECT_GT(box[0], 3.0f); // not from the first point
    EXPECT_LT(box[1], 17.0f);
    EXPECT_NEAR(box[3], 1.0f, 0.05f); // the top of the value axis
    EXPECT_NEAR(box[2], 0.5f, 0.12f); // about the middle
    auto picked = ts::dynamics::brushSeries(series.matrix, int64_t(box[0]), int64_t(box[1]), box[2], box[3]);
    EXPECT_GT(picked.size(), 30u);
    EXPECT_LT(picked.size(), 70u);
    for (int64_t i : picked)
        EXPECT_GE(float(i) / 99.0f, box[2]);
}

TEST(RunPanels, ClickingTheCurvesFocusesTheSnapshotThere) {
    Headless h;
    ts::dynamics::RunOverview run;
    for (int64_t s = 0; s < 100; ++s) {
        run.scalarSteps.push_back(s);
        run.snapshotSteps.push_back(s);
    }
    run.scalarNames = {"loss"};
    run.scalarValues.push_back({});
    for (int64_t s = 0; s < 100; ++s)
        run.scalarValues[0].push_back(1.0 / double(s + 1));
    run.layers.push_back({"fc", "Linear", 10, 20, std::vector<ts::dynamics::SummaryRow>(100), -1});
    DynamicsView view;
    view.run = &run;
    view.focus = 99;
    view.rect = {0, 0, 1280, 720, true};
    std::optional<int64_t> focus;
    h.click("##curves", [&] {
        if (auto e = dynamicsPanel(view); e.focus) focus = e.focus;
    }, 0.5f);
    ASSERT_TRUE(focus.has_value());
    // The plot's data area starts 52 px in from the item's left edge: the middle of the item is a bit right of
    // the middle step.
    EXPECT_GT(*focus, 45);
    EXPECT_LT(*focus, 56);
}

// The layer graph strip: depth by the longest path from the input, a branch in a second lane; clicks select.
TEST(RunPanels, TheLayerGraphPlacesBranchesInLanesAndClicksSelect) {
    Headless h;
    ts::dynamics::RunOverview run;
    run.snapshotSteps = {0, 1};
    run.scalarSteps = {0, 1};
    run.scalarNames = {"loss"};
    run.scalarValues = {{1.0, 0.5}};
    // conv <- input; bn <- conv; down <- input (a branch beside conv); relu <- bn + down; fc <- relu.
    const std::vector<std::pair<const char*, std::vector<int64_t>>> dag{
        {"conv", {-1}}, {"bn", {0}}, {"down", {-1}}, {"relu", {1, 2}}, {"fc", {3}}};
    for (const auto& [name, in] : dag) {
        ts::dynamics::RunOverview::Layer l{name, "Linear", 4, 4, std::vector<ts::dynamics::SummaryRow>(2), -1};
        l.inputs = in;
        run.layers.push_back(l);
    }
    DynamicsView view;
    view.run = &run;
    view.focus = 1;
    view.rect = {0, 0, 1280, 720, true};
    std::optional<int> selected;
    auto body = [&] {
        if (auto e = dynamicsPanel(view); e.selectLayer) selected = e.selectLayer;
    };
    h.frame(body);
    h.frame(body);
    auto it = recordedItems().find("##dag");
    ASSERT_NE(it, recordedItems().end());
    const auto r = it->second;
    ImGuiIO& io = ImGui::GetIO();
    auto clickAt = [&](float across, float y) {
        selected.reset();
        io.MousePos = ImVec2(r.x0 + across * (r.x1 - r.x0), r.y0 + y);
        h.frame(body);
        io.MouseDown[0] = true;
        h.frame(body);
        io.MouseDown[0] = false;
        h.frame(body);
    };
    // Four depths: conv and down at 1, bn at 2, relu at 3, fc at 4; lanes are 14 px.
    clickAt(0.6f, 5.0f);
    EXPECT_EQ(selected, std::optional<int>(3)) << "relu: third column, first lane";
    clickAt(0.1f, 19.0f);
    EXPECT_EQ(selected, std::optional<int>(2)) << "down: first column, second lane";
    clickAt(0.9f, 5.0f);
    EXPECT_EQ(selected, std::optional<int>(4)) << "fc";
    clickAt(0.6f, 19.0f);
    EXPECT_FALSE(selected.has_value()) << "nothing in the third column's second lane";
}

TEST(RunPanels, TheWheelZoomsTheWeightsAboutTheMouse) {
    Headless h;
    std::vector<ts::dynamics::WeightMatrix> ms{{"w", 100, 200, std::vector<float>(20000, 0.5f)}};
    const auto layout = ts::dynamics::layoutAtlas(ms);
    WeightsPanelView view;
    view.matrices = ms;
    view.layout = &layout;
    view.region = {0, 0, 400, 300};
    view.rect = {0, 0, 1280, 720, true};
    WeightsEdits got;
    auto body = [&] {
        auto e = weightsPanel(view);
        if (e.region) got = e;
        if (e.canvasCols) got.canvasCols = e.canvasCols;
    };
    h.frame(body);
    h.frame(body);
    auto it = recordedItems().find("##weights");
    ASSERT_NE(it, recordedItems().end());
    const auto r = it->second;
    EXPECT_EQ(got.canvasCols, int((r.x1 - r.x0) / kWeightCellPixels));
    ImGuiIO& io = ImGui::GetIO();
    io.MousePos = ImVec2(r.x0 + 0.25f * (r.x1 - r.x0), r.y0 + 0.5f * (r.y1 - r.y0));
    h.frame(body);
    io.MouseWheel = 1.0f;
    h.frame(body);
    io.MouseWheel = 0.0f;
    ASSERT_TRUE(got.region.has_value());
    const auto& z = *got.region;
    EXPECT_NEAR(z[2], 400 * 0.8, 1e-9); // one notch: 80 % of the width
    EXPECT_NEAR(z[3], 300 * 0.8, 1e-9);
    // The point under the mouse (a quarter across, half down) stays where it was.
    EXPECT_NEAR(z[0] + 0.25 * z[2], 100.0, 1e-6);
    EXPECT_NEAR(z[1] + 0.5 * z[3], 150.0, 1e-6);
}
