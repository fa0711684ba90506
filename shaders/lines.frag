#version 450
#extension GL_GOOGLE_include_directive : require
#include "shared/surface_shared.h"

layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { SurfaceFrameUniforms u; };
layout(location = 0) out vec4 outColor;

void main() { outColor = u.lineColor; }
