#version 450
// Plain world-space line lists (contours), pulled towards the eye a little so they win over the surface.
#extension GL_GOOGLE_include_directive : require
#include "shared/surface_shared.h"

layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { SurfaceFrameUniforms u; };
layout(location = 0) in vec3 inPosition;

void main() {
    vec4 v = u.view * vec4(inPosition, 1.0);
    v.xyz *= 0.998;
    gl_Position = u.proj * v;
}
