#version 450
// Loss surface height field.
#extension GL_GOOGLE_include_directive : require
#include "shared/surface_shared.h"

layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { SurfaceFrameUniforms u; };
layout(location = 0) in vec3 inPosition;
layout(location = 1) in vec3 inNormal;
layout(location = 2) in float inValue;

layout(location = 0) out vec3 vNormal;
layout(location = 1) out vec3 vViewPos;
layout(location = 2) out float vValue;

void main() {
    vec4 v = u.view * vec4(inPosition, 1.0);
    vViewPos = v.xyz;
    vNormal = mat3(u.view) * inNormal;
    vValue = inValue;
    gl_Position = u.proj * v;
}
