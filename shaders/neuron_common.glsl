// Bindings and helpers shared by the neuron splat, impostor and resolve shaders.
#include "shared/neuron_shared.h"

// Per-frame values live in a read-only storage buffer, not a uniform buffer: lavapipe inlines uniform values
// that steer control flow (the instance count) and compiles a new shader variant for each value it sees, which
// grew memory by ~0.5 MB per frame. Every pass declares its frame block this way.
layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { NeuronFrameUniforms u; };
layout(std430, set = 0, binding = 1) readonly buffer Instances { NeuronInstance instances[]; };
layout(std430, set = 0, binding = 3) buffer DrawList { uint drawHeader[4]; uint drawIndices[]; };

vec3 lutColor(float v) {
    float t = clamp((v - u.valueRange.x) * u.valueRange.z, 0.0, 1.0);
    if (isnan(v)) t = 0.0;
    float x = t * 255.0;
    int i0 = int(floor(x));
    int i1 = min(i0 + 1, 255);
    vec4 c0 = unpackUnorm4x8(u.lut[i0 >> 2][i0 & 3]);
    vec4 c1 = unpackUnorm4x8(u.lut[i1 >> 2][i1 & 3]);
    return mix(c0.rgb, c1.rgb, x - float(i0));
}

// Lighting of a sphere point with normal n seen along view ray rd (both view space).
vec3 shade(vec3 base, vec3 n, vec3 rd) {
    if (u.params.x != TS_SHADING_LIT) return base;
    vec3 l = normalize(u.lightDirView.xyz);
    float diffuse = max(dot(n, l), 0.0);
    vec3 h = normalize(l - rd);
    float spec = pow(max(dot(n, h), 0.0), 48.0);
    float rim = 1.0 - max(dot(n, -rd), 0.0);
    return base * (0.30 + 0.75 * diffuse) + vec3(0.35 * spec) + base * 0.15 * rim * rim;
}
