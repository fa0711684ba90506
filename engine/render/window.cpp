// GLFW initialisation (once per process) and window lifetime.
#include "engine/render/window.hpp"

#include <GLFW/glfw3.h>
#include <cstdlib>

#include "engine/core/log.hpp"

namespace ts::render {
namespace {
bool initGlfw() {
    static int state = 0; // 0 untried, 1 ok, -1 failed
    if (state == 0) {
        glfwSetErrorCallback([](int, const char* msg) { TS_LOG_DEBUG("GLFW: %s", msg); });
        state = glfwInit() ? 1 : -1;
        if (state == 1) std::atexit([] { glfwTerminate(); });
    }
    return state == 1;
}
} // namespace

bool displayAvailable() {
    const char* x = std::getenv("DISPLAY");
    const char* w = std::getenv("WAYLAND_DISPLAY");
    if ((!x || !*x) && (!w || !*w)) return false;
    return initGlfw() && glfwVulkanSupported();
}

Expected<Window> Window::create(const std::string& title, int width, int height) {
    if (!displayAvailable())
        return makeError(ErrorKind::Environment,
                         "no display (DISPLAY is not set or the X server is unreachable); "
                         "use --headless or run under Xvfb");
    glfwWindowHint(GLFW_CLIENT_API, GLFW_NO_API);
    glfwWindowHint(GLFW_RESIZABLE, GLFW_TRUE);
    Window w;
    w.m_window = glfwCreateWindow(width, height, title.c_str(), nullptr, nullptr);
    if (!w.m_window) return makeError(ErrorKind::Environment, "cannot create a window on this display");
    return w;
}

Window::~Window() {
    if (m_window) glfwDestroyWindow(m_window);
}

Window& Window::operator=(Window&& o) noexcept {
    if (this != &o) {
        if (m_window) glfwDestroyWindow(m_window);
        m_window = o.m_window;
        o.m_window = nullptr;
    }
    return *this;
}

bool Window::shouldClose() const {
    return !m_window || glfwWindowShouldClose(m_window);
}
void Window::requestClose() {
    if (m_window) glfwSetWindowShouldClose(m_window, GLFW_TRUE);
}

void Window::setFullscreen(bool on) {
    if (!m_window) return;
    GLFWmonitor* current = glfwGetWindowMonitor(m_window);
    if (on && !current) {
        glfwGetWindowPos(m_window, &m_savedX, &m_savedY);
        glfwGetWindowSize(m_window, &m_savedW, &m_savedH);
        GLFWmonitor* mon = glfwGetPrimaryMonitor();
        const GLFWvidmode* mode = mon ? glfwGetVideoMode(mon) : nullptr;
        if (mode) glfwSetWindowMonitor(m_window, mon, 0, 0, mode->width, mode->height, mode->refreshRate);
    } else if (!on && current) {
        glfwSetWindowMonitor(m_window, nullptr, m_savedX, m_savedY, m_savedW, m_savedH, 0);
    }
}

} // namespace ts::render
