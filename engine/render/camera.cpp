// Camera maths.
#include "engine/render/camera.hpp"

#include <algorithm>
#include <cmath>

namespace ts::render {

glm::vec3 Camera::forward() const {
    // Orbit: the eye sits at yaw/pitch on a sphere around the target, looking at it.
    glm::vec3 fromTarget{std::cos(pitch) * std::sin(yaw), std::sin(pitch), std::cos(pitch) * std::cos(yaw)};
    return -fromTarget;
}

glm::vec3 Camera::position() const {
    return mode == Mode::Orbit ? target - forward() * distance : flyPosition;
}

glm::mat4 Camera::view() const {
    glm::vec3 eye = position();
    return glm::lookAt(eye, eye + forward(), glm::vec3(0, 1, 0));
}

glm::mat4 Camera::projection(float aspect) const {
    glm::mat4 p = glm::perspective(fovY, aspect, nearPlane, farPlane);
    p[1][1] *= -1.0f;
    return p;
}

void Camera::orbit(float dx, float dy) {
    yaw -= dx * 0.005f;
    pitch = std::clamp(pitch + dy * 0.005f, -1.55f, 1.55f);
}

void Camera::pan(float dx, float dy, float viewportHeight) {
    glm::vec3 f = forward();
    glm::vec3 right = glm::normalize(glm::cross(f, glm::vec3(0, 1, 0)));
    glm::vec3 up = glm::cross(right, f);
    float unitsPerPixel = 2.0f * distance * std::tan(fovY * 0.5f) / std::max(viewportHeight, 1.0f);
    glm::vec3 delta = (-right * dx + up * dy) * unitsPerPixel;
    if (mode == Mode::Orbit)
        target += delta;
    else
        flyPosition += delta;
}

void Camera::zoom(float steps) {
    if (mode == Mode::Orbit)
        distance = std::clamp(distance * std::pow(0.88f, steps), nearPlane * 4.0f, farPlane * 0.5f);
    else
        flyPosition += forward() * steps * distance * 0.1f;
}

void Camera::look(float dx, float dy) {
    yaw -= dx * 0.003f;
    pitch = std::clamp(pitch - dy * 0.003f, -1.55f, 1.55f);
}

void Camera::fly(const glm::vec3& m, float seconds, float speed) {
    glm::vec3 f = forward();
    glm::vec3 right = glm::normalize(glm::cross(f, glm::vec3(0, 1, 0)));
    glm::vec3 delta = (right * m.x + glm::vec3(0, 1, 0) * m.y + f * m.z) * speed * seconds;
    if (mode == Mode::Fly)
        flyPosition += delta;
    else
        target += delta;
}

void Camera::setMode(Mode m) {
    if (m == mode) return;
    if (m == Mode::Fly) {
        flyPosition = position();
        // Fly mode looks where orbit looked: forward() stays the same since yaw/pitch are shared.
    } else {
        target = flyPosition + forward() * distance;
    }
    mode = m;
}

void Camera::fitToScene(const Aabb& box, float aspect) {
    if (box.empty()) return;
    // Distance at which every corner of the box lies inside the view frustum, along the current direction.
    glm::vec3 c = box.center();
    glm::vec3 f = forward();
    glm::vec3 right = glm::normalize(glm::cross(f, glm::vec3(0, 1, 0)));
    glm::vec3 up = glm::cross(right, f);
    float tanY = std::tan(fovY * 0.5f), tanX = tanY * aspect;
    float dist = 0.0f, radius = 0.5f * glm::length(box.extent());
    for (int i = 0; i < 8; ++i) {
        glm::vec3 corner((i & 1) ? box.hi.x : box.lo.x, (i & 2) ? box.hi.y : box.lo.y,
                         (i & 4) ? box.hi.z : box.lo.z);
        glm::vec3 d = corner - c;
        float towardsEye = -glm::dot(d, f);
        dist = std::max(dist, std::abs(glm::dot(d, right)) / tanX + towardsEye);
        dist = std::max(dist, std::abs(glm::dot(d, up)) / tanY + towardsEye);
    }
    radius = std::max(radius, 1e-3f);
    distance = std::max(dist * 1.06f, radius * 0.5f);
    target = c;
    nearPlane = std::max(distance - radius * 1.5f, distance * 1e-3f);
    nearPlane = std::min(nearPlane, distance * 0.1f);
    farPlane = distance + radius * 4.0f;
    if (mode == Mode::Fly) flyPosition = target - forward() * distance;
}

void CameraFlight::start(const Camera& from, const Camera& to, float seconds) {
    m_from = from;
    m_to = to;
    m_from.setMode(Camera::Mode::Orbit);
    m_to.setMode(Camera::Mode::Orbit);
    // Take the short way round.
    float dy = m_to.yaw - m_from.yaw;
    dy = std::remainder(dy, 2.0f * glm::pi<float>());
    m_to.yaw = m_from.yaw + dy;
    m_t = 0.0f;
    m_duration = std::max(seconds, 1e-3f);
    m_active = true;
}

bool CameraFlight::step(Camera& camera, float dt) {
    if (!m_active) return false;
    m_t = std::min(m_t + dt / m_duration, 1.0f);
    float s = m_t * m_t * (3.0f - 2.0f * m_t); // smoothstep
    Camera c = m_to;
    c.target = glm::mix(m_from.target, m_to.target, s);
    // Distance interpolates geometrically so zooming feels even.
    c.distance = m_from.distance * std::pow(m_to.distance / std::max(m_from.distance, 1e-6f), s);
    c.yaw = m_from.yaw + (m_to.yaw - m_from.yaw) * s;
    c.pitch = m_from.pitch + (m_to.pitch - m_from.pitch) * s;
    c.nearPlane = std::min(m_from.nearPlane, m_to.nearPlane);
    c.farPlane = std::max(m_from.farPlane, m_to.farPlane);
    camera = c;
    if (m_t >= 1.0f) {
        camera = m_to;
        m_active = false;
    }
    return true;
}

glm::vec4 projectToPixels(const glm::mat4& viewProj, const glm::vec3& p, float width, float height) {
    glm::vec4 clip = viewProj * glm::vec4(p, 1.0f);
    if (clip.w <= 0.0f) return {0, 0, 0, clip.w};
    glm::vec3 ndc = glm::vec3(clip) / clip.w;
    return {(ndc.x * 0.5f + 0.5f) * width, (ndc.y * 0.5f + 0.5f) * height, ndc.z, clip.w};
}

} // namespace ts::render
