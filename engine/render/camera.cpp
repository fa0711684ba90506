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

namespace {

glm::vec3 boxScale(const Aabb& box) {
    const glm::vec3 e = box.empty() ? glm::vec3(1.0f) : box.extent();
    return {e.x > 0 ? e.x : 1.0f, e.y > 0 ? e.y : 1.0f, e.z > 0 ? e.z : 1.0f};
}

float boxDiagonal(const Aabb& box) {
    const float d = box.empty() ? 0.0f : glm::length(box.extent());
    return d > 0 ? d : 1.0f;
}

glm::vec3 boxCentre(const Aabb& box) {
    return box.empty() ? glm::vec3(0.0f) : box.center();
}

// Catmull-Rom between p1 and p2 (uniform), t in [0, 1].
template <class T> T catmullRom(const T& p0, const T& p1, const T& p2, const T& p3, float t) {
    const float t2 = t * t, t3 = t2 * t;
    return 0.5f * ((2.0f * p1) + (-p0 + p2) * t + (2.0f * p0 - 5.0f * p1 + 4.0f * p2 - p3) * t2 +
                   (-p0 + 3.0f * p1 - 3.0f * p2 + p3) * t3);
}

} // namespace

Keyframe keyframeOf(const Camera& camera, const Aabb& box) {
    Camera c = camera;
    c.setMode(Camera::Mode::Orbit);
    Keyframe k;
    k.target = (c.target - boxCentre(box)) / boxScale(box);
    k.distance = c.distance / boxDiagonal(box);
    k.yaw = c.yaw;
    k.pitch = c.pitch;
    return k;
}

Camera cameraOf(const Keyframe& k, const Aabb& box) {
    Camera c;
    c.mode = Camera::Mode::Orbit;
    c.target = boxCentre(box) + k.target * boxScale(box);
    c.distance = k.distance * boxDiagonal(box);
    c.yaw = k.yaw;
    c.pitch = k.pitch;
    // Depth planes as fitToScene sets them, widened by how far the target is from the box's centre.
    const float radius = 0.5f * boxDiagonal(box), off = glm::length(c.target - boxCentre(box));
    c.nearPlane = std::min(std::max(c.distance - off - radius * 1.5f, c.distance * 1e-3f), c.distance * 0.1f);
    c.farPlane = c.distance + off + radius * 4.0f;
    return c;
}

Camera cameraAlong(const std::vector<Keyframe>& keys, const Aabb& box, float u) {
    if (keys.empty()) return Camera{};
    if (keys.size() == 1) return cameraOf(keys[0], box);
    // Unwrap yaw so consecutive keyframes differ by at most half a turn.
    std::vector<Keyframe> k = keys;
    for (size_t i = 1; i < k.size(); ++i)
        k[i].yaw = k[i - 1].yaw + std::remainder(k[i].yaw - k[i - 1].yaw, 2.0f * glm::pi<float>());
    u = std::clamp(u, 0.0f, 1.0f);
    u = u * u * (3.0f - 2.0f * u); // ease in and out of the whole path
    const float s = u * float(k.size() - 1);
    const size_t i = std::min(size_t(s), k.size() - 2);
    const float t = s - float(i);
    const auto at = [&](long j) { return k[size_t(std::clamp<long>(j, 0, long(k.size()) - 1))]; };
    const Keyframe p0 = at(long(i) - 1), p1 = at(long(i)), p2 = at(long(i) + 1), p3 = at(long(i) + 2);
    Keyframe out;
    out.target = catmullRom(p0.target, p1.target, p2.target, p3.target, t);
    out.distance = std::exp(catmullRom(std::log(std::max(p0.distance, 1e-6f)), std::log(std::max(p1.distance, 1e-6f)),
                                       std::log(std::max(p2.distance, 1e-6f)), std::log(std::max(p3.distance, 1e-6f)),
                                       t));
    out.yaw = catmullRom(p0.yaw, p1.yaw, p2.yaw, p3.yaw, t);
    // Pitch stays strictly between straight down and straight up, as the orbit controls keep it.
    out.pitch = std::clamp(catmullRom(p0.pitch, p1.pitch, p2.pitch, p3.pitch, t), -1.55f, 1.55f);
    return cameraOf(out, box);
}

glm::vec4 projectToPixels(const glm::mat4& viewProj, const glm::vec3& p, float width, float height) {
    glm::vec4 clip = viewProj * glm::vec4(p, 1.0f);
    if (clip.w <= 0.0f) return {0, 0, 0, clip.w};
    glm::vec3 ndc = glm::vec3(clip) / clip.w;
    return {(ndc.x * 0.5f + 0.5f) * width, (ndc.y * 0.5f + 0.5f) * height, ndc.z, clip.w};
}

} // namespace ts::render
