#version 450
// Neuron sphere impostors: each instance is a camera-facing quad in front of its sphere, just large enough
// to cover the sphere's silhouette; the fragment shader ray-casts the sphere. Tiny neurons keep a minimum
// on-screen size so a million-neuron overview does not alias away.
#include "shared/neuron_shared.h"

layout(location = 0) in vec3 inPosition;
layout(location = 1) in float inRadius;
layout(location = 2) in float inValue;
layout(location = 3) in uint inFlags;

layout(set = 0, binding = 0) uniform FrameBlock { NeuronFrameUniforms u; };

layout(location = 0) out vec3 vQuadPos;         // view-space point on the quad
layout(location = 1) flat out vec3 vCenter;     // view-space sphere centre
layout(location = 2) flat out float vRadius;
layout(location = 3) flat out vec3 vColor;
layout(location = 4) flat out uint vFlags;
layout(location = 5) flat out float vTiny;      // 1 when the sphere is under a pixel: draw a flat dot

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

void main() {
    vec3 c = (u.view * vec4(inPosition, 1.0)).xyz;
    float r = inRadius;
    float d = length(c);
    if ((inFlags & TS_NEURON_HIDDEN) != 0u || d <= r * 1.001 || -c.z <= 0.0) {
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
    // Keep at least the minimum splat size on screen.
    float pixelsPerUnit = abs(u.proj[1][1]) * 0.5 * u.viewport.y / front;
    float minHalf = u.viewport.z / pixelsPerUnit;
    vTiny = s < minHalf ? 1.0 : 0.0;
    s = max(s, minHalf);
    vec2 corner = vec2((gl_VertexIndex & 1) != 0 ? 1.0 : -1.0, (gl_VertexIndex & 2) != 0 ? 1.0 : -1.0);
    vec3 p = dir * front + (right * corner.x + upv * corner.y) * s;
    vQuadPos = p;
    vCenter = c;
    vRadius = r;
    vColor = lutColor(inValue);
    vFlags = inFlags;
    gl_Position = u.proj * vec4(p, 1.0);
}
