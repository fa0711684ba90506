// Draws a loss surface: a colormapped, lit height field (NaN cells are holes: no triangles there) with
// contour lines. Takes plain arrays so the renderer stays torch-free; the landscape module's
// HeightFieldMesh has exactly this vertex layout.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/descriptors.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/pipeline.hpp"
#include "engine/render/target.hpp"

namespace ts::render {

struct SurfaceVertex {
    float position[3];
    float normal[3];
    float value; // colormap coordinate in [0, 1]
    float valid;
};
static_assert(sizeof(SurfaceVertex) == 32);

struct SurfaceMeshView {
    std::span<const SurfaceVertex> vertices;
    std::span<const uint32_t> indices;              // triangle list
    std::span<const std::array<float, 3>> contours; // line list (pairs)
};

class SurfacePass {
  public:
    static Expected<std::unique_ptr<SurfacePass>> create(Context& ctx, VkFormat colorFormat,
                                                         uint32_t framesInFlight);
    ~SurfacePass();

    Status setMesh(const SurfaceMeshView& mesh); // waits for frames in flight
    void setColormap(Colormap map) { m_colormap = map; }
    uint32_t triangleCount() const { return m_indexCount / 3; }

    void record(const Frame& frame, const Camera& camera);

  private:
    explicit SurfacePass(Context& ctx) : m_ctx(ctx) {}
    Context& m_ctx;
    Pipeline m_surface, m_lines;
    BufferSets m_sets;
    std::vector<Buffer> m_uniforms;
    Buffer m_vertices, m_indices, m_contours;
    uint32_t m_indexCount = 0, m_contourVertices = 0;
    Colormap m_colormap = Colormap::Viridis;
};

} // namespace ts::render
