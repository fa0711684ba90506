// The interactive window: GLFW input -> camera (orbit / free-fly), frame loop, screenshots, vsync and
// full-screen toggles. Used by demo, view and train when a display exists.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/core/error.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/context.hpp"
#include "engine/render/network_renderer.hpp"
#include "engine/render/neuron_pass.hpp"
#include "engine/render/target.hpp"
#include "engine/render/window.hpp"
#include "engine/ui/imgui_layer.hpp"

namespace ts::app {

struct ViewerOptions {
    std::string title = "tensorscape";
    int width = 1280, height = 720;
    bool vsync = true;
    std::string screenshotDir = "out/screenshots";
    long maxFrames = 0;          // > 0: close after this many drawn frames (scripted runs, tests)
    std::string finalScreenshot; // when set, the last frame is also saved here

    static ViewerOptions make(std::string title, uint32_t width, uint32_t height, long maxFrames,
                              std::string finalScreenshot) {
        ViewerOptions o;
        o.title = std::move(title);
        o.width = int(width);
        o.height = int(height);
        o.maxFrames = maxFrames;
        o.finalScreenshot = std::move(finalScreenshot);
        return o;
    }
};

class Viewer {
  public:
    static Expected<std::unique_ptr<Viewer>> create(const ViewerOptions& options);
    ~Viewer();

    render::Context& context() { return *m_ctx; }
    render::NeuronPass& neurons() { return m_network->neurons(); }
    render::NetworkRenderer& network() { return *m_network; }
    ui::ImGuiLayer& overlay() { return *m_ui; }
    render::Camera& camera() { return m_camera; }
    float aspect() const;

    // Runs until the window closes. `update(dt)` runs before each frame; `draw(frame)` records extra passes
    // after the neurons inside the same rendering scope; `ui()` builds the ImGui panels of the frame.
    Status run(const std::function<void(float)>& update,
               const std::function<void(const render::Frame&)>& draw = {},
               const std::function<void()>& ui = {});
    render::WindowTarget& target() { return *m_target; }
    void requestScreenshot() { m_screenshotRequested = true; }
    void requestClose() { m_window.requestClose(); }
    void setVsync(bool on) { m_target->setVsync(on); }
    float lastFrameMs() const { return m_frameMs; }
    // A left click that did not drag (pixel coordinates in the framebuffer), taken once.
    std::optional<glm::vec2> takeClick() {
        auto c = m_click;
        m_click.reset();
        return c;
    }

    // Input state, public for the GLFW callbacks.
    void onKey(int key, int action, int mods);
    void onMouseButton(int button, int action);
    void onCursor(double x, double y);
    void onScroll(double dy);
    void onResize() {
        if (m_target) m_target->notifyResized();
    }

    Aabb sceneBounds;
    std::function<void(int key)> keyHook; // keys the viewer itself does not use (GLFW key codes)
    // When set, a drawn frame counts towards ViewerOptions::maxFrames only while this returns true (the landscape
    // window counts from its first surface, so a scripted run ends on a picture of it however slow the machine).
    std::function<bool()> framesCount;

  private:
    Viewer() = default;
    ViewerOptions m_opts;
    render::Window m_window;
    std::unique_ptr<render::Context> m_ctx;
    std::unique_ptr<render::WindowTarget> m_target;
    std::unique_ptr<render::NetworkRenderer> m_network;
    std::unique_ptr<ui::ImGuiLayer> m_ui;
    float m_frameMs = 0.0f;
    render::Camera m_camera;
    bool m_leftDown = false, m_rightDown = false;
    double m_lastX = 0, m_lastY = 0;
    double m_pressX = 0, m_pressY = 0;
    std::optional<glm::vec2> m_click;
    bool m_screenshotRequested = false;
    bool m_fullscreen = false;
    int m_screenshotIndex = 0;
};

// A window's exit code after Viewer::run: the run's error, then a failure recorded during it (an upload), then
// any Vulkan validation message, each as one line and exit 2; else 0.
int windowExitCode(Viewer& viewer, const Status& run, const Status& failure = {});

} // namespace ts::app
