// GLFW windows: display detection and a move-only window handle. No display -> callers go offscreen.
#pragma once

#include <string>

#include "engine/core/error.hpp"

struct GLFWwindow;

namespace ts::render {

// True when DISPLAY or WAYLAND_DISPLAY is set and GLFW initialises.
bool displayAvailable();

class Window {
  public:
    static Expected<Window> create(const std::string& title, int width, int height);
    Window() = default;
    ~Window();
    Window(Window&& o) noexcept : m_window(o.m_window) { o.m_window = nullptr; }
    Window& operator=(Window&& o) noexcept;
    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;

    GLFWwindow* handle() const { return m_window; }
    bool shouldClose() const;
    void requestClose();
    void setFullscreen(bool on);

  private:
    GLFWwindow* m_window = nullptr;
    int m_savedX = 0, m_savedY = 0, m_savedW = 0, m_savedH = 0;
};

} // namespace ts::render
