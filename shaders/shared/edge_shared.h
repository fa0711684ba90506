// Structs shared by the edge ribbon shaders and C++.
#ifndef TS_EDGE_SHARED_H
#define TS_EDGE_SHARED_H

#include "glsl_types.h"
#ifdef __cplusplus
namespace ts::shader {
#endif

// Per-frame uniforms of the edge pass (std140).
struct EdgeFrameUniforms {
    mat4 view;
    mat4 proj;
    vec4 viewport;  // x: width, y: height, z: min width (px), w: max width (px)
    vec4 style;     // x: base alpha, y: magnitude threshold (edges below are hidden), z: points per line
    uvec4 lut[64];  // diverging colormap: negative weights at the low end, positive at the high end
};

#ifdef __cplusplus
static_assert(sizeof(EdgeFrameUniforms) == 64 * 2 + 16 * 2 + 1024);
} // namespace ts::shader
#endif

#endif
