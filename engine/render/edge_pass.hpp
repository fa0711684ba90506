// Draws bundled edges (scene::EdgePolylines) as instanced, alpha-blended ribbons: colour shows the sign of
// the weight or contribution, width its magnitude. Depth-tested against neurons, never writes depth.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "engine/core/colormap.hpp"
#include "engine/render/camera.hpp"
#include "engine/render/descriptors.hpp"
#include "engine/render/memory.hpp"
#include "engine/render/pipeline.hpp"
#include "engine/render/target.hpp"
#include "engine/scene/bundling.hpp"

namespace ts::render {

struct EdgeStyle {
    Colormap colormap = Colormap::RdBu; // negative weights at the low end, positive at the high end
    float minWidthPixels = 0.75f;
    float maxWidthPixels = 4.0f;
    float alpha = 0.55f;
    float threshold = 0.0f; // lines with magnitude below this are not drawn
};

class EdgePass {
  public:
    static Expected<std::unique_ptr<EdgePass>> create(Context& ctx, VkFormat colorFormat,
                                                      uint32_t framesInFlight);
    ~EdgePass();

    // Uploads the polylines (waits for frames in flight). Every line is drawn with the largest point count.
    Status setPolylines(const scene::EdgePolylines& lines);
    uint32_t lineCount() const { return m_lines; }
    void setStyle(const EdgeStyle& style) { m_style = style; }

    // Records into an active rendering scope, after the neurons.
    void record(const Frame& frame, const Camera& camera);

  private:
    explicit EdgePass(Context& ctx) : m_ctx(ctx) {}
    Context& m_ctx;
    Pipeline m_pipeline;
    BufferSets m_sets;
    std::vector<Buffer> m_uniforms;
    Buffer m_points, m_lineBuffer;
    uint32_t m_lines = 0, m_maxPoints = 0;
    EdgeStyle m_style;
};

} // namespace ts::render
