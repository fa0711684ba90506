// Viewer: window, swapchain target, input handling and the frame loop.
#include "app/viewer.hpp"

#include <GLFW/glfw3.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "engine/core/log.hpp"

namespace ts::app {

using namespace ts::render;

Expected<std::unique_ptr<Viewer>> Viewer::create(const ViewerOptions& options) {
    std::unique_ptr<Viewer> v(new Viewer());
    v->m_opts = options;
    auto window = Window::create(options.title, options.width, options.height);
    if (!window) return window.error();
    v->m_window = std::move(window.value());
    auto ctx = Context::create({.appName = "tensorscape", .window = v->m_window.handle()});
    if (!ctx) return ctx.error();
    v->m_ctx = std::move(ctx.value());
    auto target = WindowTarget::create(*v->m_ctx, v->m_window.handle(), options.vsync);
    if (!target) return target.error();
    v->m_target = std::move(target.value());
    auto network =
        NetworkRenderer::create(*v->m_ctx, v->m_target->swapchainFormat(), v->m_target->framesInFlight());
    if (!network) return network.error();
    v->m_network = std::move(network.value());

    GLFWwindow* w = v->m_window.handle();
    glfwSetWindowUserPointer(w, v.get());
    glfwSetKeyCallback(w, [](GLFWwindow* win, int key, int, int action, int mods) {
        static_cast<Viewer*>(glfwGetWindowUserPointer(win))->onKey(key, action, mods);
    });
    glfwSetMouseButtonCallback(w, [](GLFWwindow* win, int button, int action, int) {
        static_cast<Viewer*>(glfwGetWindowUserPointer(win))->onMouseButton(button, action);
    });
    glfwSetCursorPosCallback(w, [](GLFWwindow* win, double x, double y) {
        static_cast<Viewer*>(glfwGetWindowUserPointer(win))->onCursor(x, y);
    });
    glfwSetScrollCallback(w, [](GLFWwindow* win, double, double dy) {
        static_cast<Viewer*>(glfwGetWindowUserPointer(win))->onScroll(dy);
    });
    glfwSetFramebufferSizeCallback(w, [](GLFWwindow* win, int, int) {
        static_cast<Viewer*>(glfwGetWindowUserPointer(win))->onResize();
    });
    // ImGui chains to the callbacks above (installed first), so our handlers still see every event.
    auto ui = ui::ImGuiLayer::create(*v->m_ctx, v->m_target->swapchainFormat(), v->m_target->imageCount(), w);
    if (!ui) return ui.error();
    v->m_ui = std::move(ui.value());
    TS_LOG_INFO("controls: left-drag orbit, right-drag pan, wheel zoom, Tab orbit/fly, WASD+QE move, F fit, "
                "V vsync, F11 full screen, F12 screenshot, T guided tour, Esc quit");
    return v;
}

Viewer::~Viewer() {
    if (m_ctx) vkDeviceWaitIdle(m_ctx->device());
    m_ui.reset();
    m_network.reset();
    m_target.reset();
    m_ctx.reset();
}

float Viewer::aspect() const {
    auto e = m_target->extent();
    return e.height ? float(e.width) / float(e.height) : 1.0f;
}

void Viewer::onKey(int key, int action, int) {
    if (action != GLFW_PRESS || (m_ui && m_ui->wantsKeyboard())) return;
    switch (key) {
    case GLFW_KEY_ESCAPE:
        m_window.requestClose();
        break;
    case GLFW_KEY_TAB:
        m_camera.setMode(m_camera.mode == Camera::Mode::Orbit ? Camera::Mode::Fly : Camera::Mode::Orbit);
        TS_LOG_INFO("camera: %s", m_camera.mode == Camera::Mode::Orbit ? "orbit" : "free-fly");
        break;
    case GLFW_KEY_F:
        m_camera.fitToScene(sceneBounds, aspect());
        break;
    case GLFW_KEY_V:
        m_target->setVsync(!m_target->vsync());
        TS_LOG_INFO("vsync %s", m_target->vsync() ? "on" : "off");
        break;
    case GLFW_KEY_F11:
        m_fullscreen = !m_fullscreen;
        m_window.setFullscreen(m_fullscreen);
        break;
    case GLFW_KEY_F12:
    case GLFW_KEY_P:
        m_screenshotRequested = true;
        break;
    default:
        if (keyHook) keyHook(key);
        break;
    }
}

void Viewer::onMouseButton(int button, int action) {
    bool down = action == GLFW_PRESS;
    if (down && m_ui && m_ui->wantsMouse()) return; // a click on a panel is the panel's
    if (button == GLFW_MOUSE_BUTTON_LEFT) {
        if (down) {
            m_pressX = m_lastX;
            m_pressY = m_lastY;
        } else if (m_leftDown && std::abs(m_lastX - m_pressX) + std::abs(m_lastY - m_pressY) < 4.0) {
            // A click, not a drag: report it in framebuffer pixels (window and framebuffer may differ).
            int ww = 1, wh = 1, fw = 1, fh = 1;
            glfwGetWindowSize(m_window.handle(), &ww, &wh);
            glfwGetFramebufferSize(m_window.handle(), &fw, &fh);
            m_click = glm::vec2(float(m_lastX) * float(fw) / float(std::max(ww, 1)),
                                float(m_lastY) * float(fh) / float(std::max(wh, 1)));
        }
        m_leftDown = down;
    }
    if (button == GLFW_MOUSE_BUTTON_RIGHT || button == GLFW_MOUSE_BUTTON_MIDDLE) m_rightDown = down;
}

void Viewer::onCursor(double x, double y) {
    float dx = float(x - m_lastX), dy = float(y - m_lastY);
    m_lastX = x;
    m_lastY = y;
    if (m_leftDown) {
        if (m_camera.mode == Camera::Mode::Orbit)
            m_camera.orbit(dx, dy);
        else
            m_camera.look(dx, dy);
    } else if (m_rightDown) {
        m_camera.pan(dx, dy, float(m_target->extent().height));
    }
}

void Viewer::onScroll(double dy) {
    if (!(m_ui && m_ui->wantsMouse())) m_camera.zoom(float(dy));
}

namespace {
// Window events scripted by frame number, for tests and recorded demos: TS_VIEWER_SCRIPT="resize@5=640x400;
// vsync@8;minimize@10;restore@14;fullscreen@16;cursor@20=300x200". Unknown entries are ignored with a warning.
struct ScriptedEvent {
    long frame;
    std::string action;
    int w = 0, h = 0;
};

std::vector<ScriptedEvent> viewerScript() {
    std::vector<ScriptedEvent> events;
    const char* env = std::getenv("TS_VIEWER_SCRIPT");
    if (!env) return events;
    std::string text = env;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find(';', pos);
        std::string item = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        pos = end == std::string::npos ? text.size() : end + 1;
        ScriptedEvent e;
        char action[32] = {0};
        if (std::sscanf(item.c_str(), "%31[a-z]@%ld=%dx%d", action, &e.frame, &e.w, &e.h) >= 2) {
            e.action = action;
            events.push_back(e);
        } else if (!item.empty()) {
            TS_LOG_WARN("TS_VIEWER_SCRIPT: cannot read '%s'", item.c_str());
        }
    }
    return events;
}
} // namespace

Status Viewer::run(const std::function<void(float)>& update, const std::function<void(const Frame&)>& draw,
                   const std::function<void()>& ui) {
    auto last = std::chrono::steady_clock::now();
    long drawn = 0, loops = 0;
    GLFWwindow* w = m_window.handle();
    auto script = viewerScript();
    while (!m_window.shouldClose()) {
        glfwPollEvents();
        for (const auto& e : script) {
            if (e.frame != loops) continue;
            if (e.action == "resize")
                glfwSetWindowSize(w, e.w, e.h);
            else if (e.action == "vsync")
                m_target->setVsync(!m_target->vsync());
            else if (e.action == "minimize")
                glfwIconifyWindow(w);
            else if (e.action == "restore")
                glfwRestoreWindow(w);
            else if (e.action == "fullscreen")
                m_window.setFullscreen(m_fullscreen = !m_fullscreen);
            else if (e.action == "close")
                m_window.requestClose();
            else if (e.action == "cursor") // cursor@N=XxY: move the pointer (hover tooltips in tests)
                glfwSetCursorPos(w, double(e.w), double(e.h));
            else if (e.action == "key") // key@N=CODE: a key press (GLFW code; letters are upper-case ASCII)
                onKey(e.w, GLFW_PRESS, 0);
        }
        ++loops;
        auto now = std::chrono::steady_clock::now();
        float dt = std::chrono::duration<float>(now - last).count();
        last = now;
        // Keyboard flight: WASD in the view plane, Q/E down/up; speed follows the scene size.
        glm::vec3 move(0.0f);
        if (glfwGetKey(w, GLFW_KEY_W) == GLFW_PRESS) move.z += 1;
        if (glfwGetKey(w, GLFW_KEY_S) == GLFW_PRESS) move.z -= 1;
        if (glfwGetKey(w, GLFW_KEY_D) == GLFW_PRESS) move.x += 1;
        if (glfwGetKey(w, GLFW_KEY_A) == GLFW_PRESS) move.x -= 1;
        if (glfwGetKey(w, GLFW_KEY_E) == GLFW_PRESS) move.y += 1;
        if (glfwGetKey(w, GLFW_KEY_Q) == GLFW_PRESS) move.y -= 1;
        if (move != glm::vec3(0.0f) && !m_ui->wantsKeyboard()) {
            float speed = sceneBounds.empty() ? 1.0f : glm::length(sceneBounds.extent()) * 0.3f;
            m_camera.fly(move, dt, speed);
        }
        if (update) update(dt);

        auto frame = m_target->beginFrame();
        if (!frame) return frame.error();
        if (!frame->valid) { // minimised or being resized: wait for the window instead of spinning
            glfwWaitEventsTimeout(0.05);
            continue;
        }
        TS_TRY(m_network->prepare(*frame, m_camera));
        beginRendering(*frame, true, 0.035f, 0.04f, 0.06f);
        m_network->record(*frame, m_camera);
        if (draw) draw(*frame);
        endRendering(*frame);
        m_ui->newFrame(frame->extent, dt);
        if (ui) ui();
        TS_TRY(m_ui->render(*frame));
        if (!framesCount || framesCount()) ++drawn;
        bool last = m_opts.maxFrames > 0 && drawn >= m_opts.maxFrames;
        bool shot = m_screenshotRequested || (last && !m_opts.finalScreenshot.empty());
        ImageRgba8 img;
        TS_TRY(m_target->endFrame(*frame, shot ? &img : nullptr));
        if (shot && img.width > 0) {
            std::string path = m_screenshotRequested ? m_opts.screenshotDir + "/tensorscape_" +
                                                           std::to_string(m_screenshotIndex++) + ".png"
                                                     : m_opts.finalScreenshot;
            TS_TRY(writePng(path, img));
            TS_LOG_INFO("screenshot saved to %s", path.c_str());
            m_screenshotRequested = false;
        }
        if (last) m_window.requestClose();
        m_frameMs = m_frameMs * 0.9f + dt * 1000.0f * 0.1f;
    }
    vkDeviceWaitIdle(m_ctx->device());
    return Status::ok();
}

int windowExitCode(Viewer& viewer, const Status& run, const Status& failure) {
    if (!run) return reportError(run.error());
    if (!failure) return reportError(failure.error());
    if (const auto n = viewer.context().validationMessageCount(); n > 0)
        return reportError(makeError(ErrorKind::Failed, std::to_string(n) + " Vulkan validation messages (see above)"));
    return 0;
}

} // namespace ts::app
