#version 450
// A panel's image as one quad (triangle strip of 4 vertices, no vertex buffer) over a rectangle in NDC.
layout(push_constant) uniform PanelImage {
    vec4 rect; // x0, y0, x1, y1 (Vulkan NDC: y grows downwards, so y0 is the top)
} pc;
layout(location = 0) out vec2 uv;

void main() {
    vec2 corner = vec2(gl_VertexIndex & 1, gl_VertexIndex >> 1);
    uv = corner; // texel row 0 is the image's top row
    gl_Position = vec4(mix(pc.rect.xy, pc.rect.zw, corner), 0.0, 1.0);
}
