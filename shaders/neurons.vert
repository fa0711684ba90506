#version 450
// Neuron sphere impostors: each instance is a camera-facing quad in front of its sphere, just large enough
// to cover the sphere's silhouette; the fragment shader ray-casts the sphere. Instances are pulled from the
// instance buffer, either all of them or those the splat pass listed as too large to splat.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "neuron_common.glsl"

layout(location = 0) out vec3 vQuadPos;      // view-space point on the quad
layout(location = 1) flat out vec3 vCenter;  // view-space sphere centre
layout(location = 2) flat out float vRadius;
layout(location = 3) flat out vec3 vColor;
layout(location = 4) flat out uint vFlags;
layout(location = 5) flat out float vTiny;   // 1 when the sphere is under the minimum size: a flat dot

void main() {
    uint index = u.params.y != 0u ? drawIndices[gl_InstanceIndex] : uint(gl_InstanceIndex);
    NeuronInstance inst = instances[index];
    vec3 c = (u.view * vec4(inst.position, 1.0)).xyz;
    float r = inst.radius;
    float d = length(c);
    if ((inst.flags & TS_NEURON_HIDDEN) != 0u || d <= r * 1.001 || -c.z <= 0.0) {
        gl_Position = vec4(0.0, 0.0, -2.0, 1.0); // outside the clip volume: culled
        return;
    }
    vec3 dir = c / d;
    vec3 up = abs(dir.y) < 0.99 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
    vec3 right = normalize(cross(dir, up));
    vec3 upv = cross(right, dir);
    // Silhouette radius on a plane through the sphere's front point, perpendicular to the view ray.
    float front = d - r;
    float s = front * r / sqrt(d * d - r * r) * 1.02;
    float pixelsPerUnit = abs(u.proj[1][1]) * 0.5 * u.viewport.y / front;
    float minHalf = u.viewport.z / pixelsPerUnit;
    vTiny = s < minHalf ? 1.0 : 0.0;
    s = max(s, minHalf);
    vec2 corner = vec2((gl_VertexIndex & 1) != 0 ? 1.0 : -1.0, (gl_VertexIndex & 2) != 0 ? 1.0 : -1.0);
    vec3 p = dir * front + (right * corner.x + upv * corner.y) * s;
    vQuadPos = p;
    vCenter = c;
    vRadius = r;
    vColor = lutColor(inst.value);
    vFlags = inst.flags;
    gl_Position = u.proj * vec4(p, 1.0);
}
