// Ray picking over the cluster tree's sphere hierarchy (see picking.hpp).
#include "engine/scene/picking.hpp"

#include <algorithm>
#include <cmath>

namespace ts::scene {

namespace {
// Entry parameter of the ray into a sphere (0 when the origin is inside), or +inf on a miss.
float raySphere(const Ray& ray, const glm::vec3& c, float r) {
    // Closest approach first: b^2 - a*c cancels catastrophically for far spheres in float.
    const glm::vec3 oc = ray.origin - c;
    const float a = glm::dot(ray.dir, ray.dir);
    if (!(a > 0)) return std::numeric_limits<float>::infinity();
    const float tca = -glm::dot(oc, ray.dir) / a;
    const glm::vec3 closest = oc + tca * ray.dir;
    const float d2 = glm::dot(closest, closest), r2 = r * r;
    if (d2 > r2) return std::numeric_limits<float>::infinity();
    if (glm::dot(oc, oc) <= r2) return 0.0f; // origin inside
    const float t = tca - std::sqrt((r2 - d2) / a);
    return t >= 0 ? t : std::numeric_limits<float>::infinity();
}
} // namespace

Ray rayFromPixel(const Camera& camera, glm::vec2 pixel, bool yDown) {
    const glm::mat4 inv = glm::inverse(camera.viewProj);
    const float x = 2.0f * pixel.x / camera.viewport.x - 1.0f;
    float y = 2.0f * pixel.y / camera.viewport.y - 1.0f;
    if (!yDown) y = -y;
    glm::vec4 n = inv * glm::vec4(x, y, 0.0f, 1.0f), f = inv * glm::vec4(x, y, 1.0f, 1.0f);
    n /= n.w;
    f /= f.w;
    return {glm::vec3(n), glm::normalize(glm::vec3(f - n))};
}

PickHit pickNeuron(const ClusterTree& tree, const std::vector<glm::vec3>& position,
                   const std::vector<float>& radius, const Ray& ray, const std::vector<bool>& hiddenLayer) {
    PickHit best;
    struct Entry {
        std::uint32_t node;
        float t;
    };
    std::vector<Entry> stack;
    for (std::uint32_t l = 0; l < tree.layerRoot.size(); ++l) {
        if (l < hiddenLayer.size() && hiddenLayer[l]) continue;
        const auto& nd = tree.nodes[tree.layerRoot[l]];
        const float t = raySphere(ray, nd.center, nd.boundRadius * 1.0001f + 1e-5f);
        if (std::isfinite(t)) stack.push_back({tree.layerRoot[l], t});
    }
    Entry kids[256];
    while (!stack.empty()) {
        const Entry e = stack.back();
        stack.pop_back();
        if (e.t >= best.t) continue;
        const auto& nd = tree.nodes[e.node];
        if (nd.childCount == 0) {
            for (auto k = nd.begin; k < nd.end; ++k) {
                const auto n = tree.order[k];
                const float t = raySphere(ray, position[n], radius[n]);
                if (std::isfinite(t) && (t < best.t || (t == best.t && n < best.neuron))) best = {n, t};
            }
            continue;
        }
        std::uint32_t m = 0;
        for (std::uint32_t c = 0; c < nd.childCount; ++c) {
            const auto& ch = tree.nodes[nd.firstChild + c];
            const float t = raySphere(ray, ch.center, ch.boundRadius * 1.0001f + 1e-5f); // slack for rounding
            if (t < best.t) kids[m++] = {nd.firstChild + c, t};
        }
        // Push far children first so the nearest is visited next.
        std::sort(kids, kids + m, [](const Entry& a, const Entry& b) { return a.t > b.t; });
        for (std::uint32_t i = 0; i < m; ++i) stack.push_back(kids[i]);
    }
    return best;
}

} // namespace ts::scene
