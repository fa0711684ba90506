#version 450
// Edge ribbons: one triangle strip per polyline (instance = line, two vertices per polyline point),
// expanded in screen space to a width that shows the weight's magnitude.
#extension GL_GOOGLE_include_directive : require
#include "shared/edge_shared.h"

layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { EdgeFrameUniforms u; };
layout(std430, set = 0, binding = 1) readonly buffer Points { vec4 points[]; };   // xyz, t
layout(std430, set = 0, binding = 2) readonly buffer Lines { uvec4 lines[]; };    // first, count, weight, magnitude

layout(location = 0) out vec4 vColor;
layout(location = 1) out float vAcross;

vec3 lut(float t) {
    float x = clamp(t, 0.0, 1.0) * 255.0;
    int i0 = int(floor(x));
    int i1 = min(i0 + 1, 255);
    return mix(unpackUnorm4x8(u.lut[i0 >> 2][i0 & 3]).rgb, unpackUnorm4x8(u.lut[i1 >> 2][i1 & 3]).rgb, x - float(i0));
}

vec2 toScreen(vec4 clip) { return (clip.xy / clip.w) * 0.5 * u.viewport.xy; }

void main() {
    uvec4 line = lines[gl_InstanceIndex];
    float weight = uintBitsToFloat(line.z);
    float magnitude = uintBitsToFloat(line.w);
    uint i = min(uint(gl_VertexIndex) >> 1, line.y - 1u);
    if (magnitude < u.style.y || line.y < 2u) {
        gl_Position = vec4(0.0, 0.0, -2.0, 1.0);
        return;
    }
    uint first = line.x;
    vec4 here = u.proj * (u.view * vec4(points[first + i].xyz, 1.0));
    vec4 prev = u.proj * (u.view * vec4(points[first + (i > 0u ? i - 1u : 0u)].xyz, 1.0));
    vec4 next = u.proj * (u.view * vec4(points[first + min(i + 1u, line.y - 1u)].xyz, 1.0));
    if (here.w <= 0.0) {
        gl_Position = vec4(0.0, 0.0, -2.0, 1.0);
        return;
    }
    vec2 dir = toScreen(next) - toScreen(prev);
    dir = length(dir) > 1e-6 ? normalize(dir) : vec2(1.0, 0.0);
    vec2 normal = vec2(-dir.y, dir.x);
    float side = (gl_VertexIndex & 1) != 0 ? 1.0 : -1.0;
    float width = mix(u.viewport.z, u.viewport.w, magnitude);
    // Offset in pixels converted back to clip space (same w keeps depth).
    here.xy += normal * side * width * 0.5 / (0.5 * u.viewport.xy) * here.w;
    gl_Position = here;
    float t = points[first + i].w;
    vec3 c = lut(0.5 + sign(weight) * (0.25 + 0.25 * magnitude));
    float fade = smoothstep(0.0, 0.08, t) * smoothstep(1.0, 0.92, t); // soften where edges meet neurons
    vColor = vec4(c, u.style.x * (0.35 + 0.65 * magnitude) * (0.4 + 0.6 * fade));
    vAcross = side;
}
