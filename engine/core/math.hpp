// Math types: GLM with the conventions the renderer uses (depth 0..1, radians).
#pragma once

#ifndef GLM_FORCE_DEPTH_ZERO_TO_ONE
#define GLM_FORCE_DEPTH_ZERO_TO_ONE
#endif
#ifndef GLM_FORCE_RADIANS
#define GLM_FORCE_RADIANS
#endif
#include <glm/glm.hpp>
#include <glm/gtc/matrix_transform.hpp>
#include <limits>

namespace ts {

struct Aabb {
    glm::vec3 lo{std::numeric_limits<float>::max()};
    glm::vec3 hi{-std::numeric_limits<float>::max()};

    void extend(const glm::vec3& p, float r = 0.0f) {
        lo = glm::min(lo, p - glm::vec3(r));
        hi = glm::max(hi, p + glm::vec3(r));
    }
    bool empty() const { return lo.x > hi.x; }
    glm::vec3 center() const { return (lo + hi) * 0.5f; }
    glm::vec3 extent() const { return hi - lo; }
};

} // namespace ts
