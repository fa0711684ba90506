#version 450
// Ray-casts the neuron's sphere: discards misses, lights the hit and writes its true depth, so
// intersecting and overlapping neurons compose correctly (also with splatted ones).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "neuron_common.glsl"

layout(location = 0) in vec3 vQuadPos;
layout(location = 1) flat in vec3 vCenter;
layout(location = 2) flat in float vRadius;
layout(location = 3) flat in vec3 vColor;
layout(location = 4) flat in uint vFlags;
layout(location = 5) flat in float vTiny;

layout(location = 0) out vec4 outColor;
layout(depth_greater) out float gl_FragDepth;

void main() {
    vec3 rd = normalize(vQuadPos);
    vec3 hit;
    vec3 n;
    if (vTiny > 0.5) {
        hit = vQuadPos;
        n = -rd;
    } else {
        float b = dot(rd, vCenter);
        float cc = dot(vCenter, vCenter) - vRadius * vRadius;
        float disc = b * b - cc;
        if (disc < 0.0) discard;
        float t = b - sqrt(disc);
        hit = rd * t;
        n = (hit - vCenter) / vRadius;
    }
    vec3 color = shade(vColor, n, rd);
    float facing = max(dot(n, -rd), 0.0);
    if ((vFlags & TS_NEURON_HIGHLIGHTED) != 0u)
        color = mix(color, vec3(1.0, 0.78, 0.2), 0.55 * (1.0 - facing) + 0.15);
    if ((vFlags & TS_NEURON_SELECTED) != 0u && facing < 0.45)
        color = vec3(1.0);
    outColor = vec4(clamp(color, 0.0, 1.0), 1.0);
    vec4 clip = u.proj * vec4(hit, 1.0);
    gl_FragDepth = clip.z / clip.w;
}
