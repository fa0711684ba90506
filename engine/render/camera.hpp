// Camera with orbit (around a target) and free-fly (WASD + mouse look) modes, and fit-to-scene.
// Vulkan conventions: right-handed view space looking down -z, clip depth 0..1, y down in clip space.
#pragma once

#include <vector>

#include "engine/core/math.hpp"

namespace ts::render {

class Camera {
  public:
    enum class Mode { Orbit, Fly };

    Mode mode = Mode::Orbit;
    glm::vec3 target{0.0f}; // orbit centre
    float distance = 5.0f;  // orbit radius
    float yaw = 0.6f;       // radians, around +y
    float pitch = 0.35f;    // radians, up from the horizon
    glm::vec3 flyPosition{0.0f, 0.0f, 5.0f};
    float fovY = glm::radians(45.0f);
    float nearPlane = 0.01f;
    float farPlane = 1000.0f;

    glm::vec3 position() const;
    glm::vec3 forward() const; // unit view direction
    glm::mat4 view() const;
    glm::mat4 projection(float aspect) const; // Vulkan clip space (y flipped, depth 0..1)

    // Mouse drags in pixels; wheel steps; key motion in world units per second.
    void orbit(float dxPixels, float dyPixels);
    void pan(float dxPixels, float dyPixels, float viewportHeight);
    void zoom(float wheelSteps);
    void look(float dxPixels, float dyPixels);                        // fly mode: turn the head
    void fly(const glm::vec3& moveLocal, float seconds, float speed); // x right, y up, z forward
    void setMode(Mode m);

    // Frames the box so all of it is visible at this aspect ratio, keeping the viewing direction.
    void fitToScene(const Aabb& box, float aspect);
};

// A smooth transition between two orbit cameras (fly to a layer, a neuron, the landscape's minimum):
// target, distance, yaw and pitch ease in and out over `seconds`.
class CameraFlight {
  public:
    void start(const Camera& from, const Camera& to, float seconds = 0.8f);
    bool active() const { return m_active; }
    // Advances by dt and writes the in-between camera; false once the flight has ended.
    bool step(Camera& camera, float dt);

  private:
    Camera m_from, m_to;
    float m_t = 0.0f, m_duration = 1.0f;
    bool m_active = false;
};

// A camera path through keyframes for recorded fly-throughs (keyframes saved from the window). Keyframes
// are orbit cameras stored relative to a scene box (target as a fraction of the box from its centre,
// distance as a fraction of its diagonal), so a path saved over one computation of a surface fits the same
// surface computed again at another resolution.
struct Keyframe {
    glm::vec3 target{0.0f}; // (target - box centre) / box extent, per axis (0 for a flat axis)
    float distance = 1.0f;  // orbit distance / length of the box's diagonal
    float yaw = 0.0f, pitch = 0.0f;
};
Keyframe keyframeOf(const Camera& camera, const Aabb& box); // fly-mode cameras are converted to orbit
Camera cameraOf(const Keyframe& k, const Aabb& box);
// The camera at u in [0, 1] along the keyframes, each segment an equal share of the time: Catmull-Rom through
// target, log-distance, yaw (unwrapped the short way between neighbours) and pitch, so the path passes through
// every keyframe (at u = i / (n - 1)) with no corner; eased in at the start and out at the end. One keyframe
// gives that camera; none gives the default camera.
Camera cameraAlong(const std::vector<Keyframe>& keys, const Aabb& box, float u);

// Projects a world point to pixel coordinates (origin top-left) with depth in 0..1; w <= 0 means behind.
glm::vec4 projectToPixels(const glm::mat4& viewProj, const glm::vec3& p, float width, float height);

} // namespace ts::render
