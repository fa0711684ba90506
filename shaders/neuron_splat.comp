#version 450
// Compute splatting of neurons smaller than a few pixels (Schutz et al. 2021): project, shade, and
// atomicMin (depth << 32 | colour) into a per-pixel 64-bit buffer. Larger, selected and highlighted neurons
// go to the draw list for the impostor pipeline instead.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_atomic_int64 : require
#include "neuron_common.glsl"

layout(local_size_x = TS_SPLAT_GROUP_SIZE) in;
layout(std430, set = 0, binding = 2) buffer Splat { uint64_t splat[]; };

void main() {
    uint index = gl_GlobalInvocationID.x;
    if (index >= u.params.z) return;
    NeuronInstance inst = instances[index];
    if ((inst.flags & TS_NEURON_HIDDEN) != 0u) return;
    vec3 c = (u.view * vec4(inst.position, 1.0)).xyz;
    float r = inst.radius;
    float front = -c.z - r;
    if (front <= 0.0) {
        // Touching or behind the near side of the eye: let the impostor path decide (it culls).
        if (-c.z + r > 0.0) drawIndices[atomicAdd(drawHeader[1], 1u)] = index;
        return;
    }
    float pixelsPerUnit = abs(u.proj[1][1]) * 0.5 * u.viewport.y / (-c.z);
    float pr = r * pixelsPerUnit;
    if (pr >= u.viewport.w || (inst.flags & (TS_NEURON_SELECTED | TS_NEURON_HIGHLIGHTED)) != 0u) {
        drawIndices[atomicAdd(drawHeader[1], 1u)] = index;
        return;
    }
    vec4 clip = u.proj * vec4(c + vec3(0.0, 0.0, r), 1.0); // the sphere's front point
    if (clip.w <= 0.0) return;
    vec2 ndc = clip.xy / clip.w;
    float depth = clip.z / clip.w;
    if (depth < 0.0 || depth > 1.0) return;
    vec2 px = (ndc * 0.5 + 0.5) * u.viewport.xy;
    vec3 base = lutColor(inst.value);
    vec3 rd = normalize(c);
    // Footprint: every pixel centre within the projected radius, and at least the centre pixel.
    float rad = max(pr, 0.5);
    ivec2 lo = ivec2(floor(px - rad)), hi = ivec2(floor(px + rad));
    ivec2 size = ivec2(u.viewport.xy);
    uint64_t depthBits = uint64_t(floatBitsToUint(depth)) << 32;
    for (int y = lo.y; y <= hi.y; ++y) {
        for (int x = lo.x; x <= hi.x; ++x) {
            if (x < 0 || y < 0 || x >= size.x || y >= size.y) continue;
            vec2 off = (vec2(x, y) + 0.5 - px) / rad;
            float d2 = dot(off, off);
            bool centre = (x == int(floor(px.x)) && y == int(floor(px.y)));
            if (d2 > 1.0 && !centre) continue;
            // Screen y grows downwards while view-space y grows upwards.
            vec3 n = normalize(vec3(off.x, -off.y, sqrt(max(1.0 - min(d2, 1.0), 0.0))));
            vec3 color = shade(base, n, rd);
            uint64_t word = depthBits | uint64_t(packUnorm4x8(vec4(clamp(color, 0.0, 1.0), 1.0)));
            atomicMin(splat[y * size.x + x], word);
        }
    }
}
