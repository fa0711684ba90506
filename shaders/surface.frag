#version 450
// Colormapped, two-sided lit surface with a faint iso-band pattern between the explicit contour lines.
#extension GL_GOOGLE_include_directive : require
#include "shared/surface_shared.h"

layout(std140, set = 0, binding = 0) readonly buffer FrameBlock { SurfaceFrameUniforms u; };
layout(location = 0) in vec3 vNormal;
layout(location = 1) in vec3 vViewPos;
layout(location = 2) in float vValue;
layout(location = 0) out vec4 outColor;

void main() {
    float x = clamp(vValue, 0.0, 1.0) * 255.0;
    int i0 = int(floor(x));
    int i1 = min(i0 + 1, 255);
    vec3 base = mix(unpackUnorm4x8(u.lut[i0 >> 2][i0 & 3]).rgb, unpackUnorm4x8(u.lut[i1 >> 2][i1 & 3]).rgb,
                    x - float(i0));
    vec3 n = normalize(vNormal);
    vec3 rd = normalize(vViewPos);
    if (dot(n, rd) > 0.0) n = -n; // two-sided: the underside is lit too when flying below
    vec3 l = normalize(u.lightDirView.xyz);
    float diffuse = max(dot(n, l), 0.0);
    float spec = pow(max(dot(n, normalize(l - rd)), 0.0), 32.0);
    vec3 c = base * (0.35 + 0.7 * diffuse) + vec3(0.18 * spec);
    outColor = vec4(clamp(c, 0.0, 1.0), 1.0);
}
