// Structs shared by the loss-surface shaders and C++.
#ifndef TS_SURFACE_SHARED_H
#define TS_SURFACE_SHARED_H

#include "glsl_types.h"
#ifdef __cplusplus
namespace ts::shader {
#endif

// One height-field vertex (vertex buffer, 32 bytes): same layout as landscape::MeshVertex.
// position xyz, normal xyz, value in [0, 1] (colormap coordinate), valid (0 where the loss is NaN).

struct SurfaceFrameUniforms {
    mat4 view;
    mat4 proj;
    vec4 lightDirView; // xyz
    vec4 lineColor;    // contour / line colour (rgba)
    uvec4 lut[64];
};

#ifdef __cplusplus
static_assert(sizeof(SurfaceFrameUniforms) == 64 * 2 + 16 * 2 + 1024);
} // namespace ts::shader
#endif

#endif
