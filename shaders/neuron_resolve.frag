#version 450
// Writes splatted neurons into the colour and depth attachments; empty pixels are discarded.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "neuron_common.glsl"

layout(std430, set = 0, binding = 2) readonly buffer Splat { uint64_t splat[]; };
layout(location = 0) out vec4 outColor;

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    uint64_t word = splat[p.y * int(u.viewport.x) + p.x];
    if (word == TS_SPLAT_EMPTY) discard;
    outColor = unpackUnorm4x8(uint(word & 0xFFFFFFFFul));
    gl_FragDepth = uintBitsToFloat(uint(word >> 32));
}
