#version 450
// Soft-edged ribbon: alpha falls off across the ribbon so bundles read as flows.
layout(location = 0) in vec4 vColor;
layout(location = 1) in float vAcross;
layout(location = 0) out vec4 outColor;

void main() {
    float a = 1.0 - vAcross * vAcross;
    outColor = vec4(vColor.rgb, vColor.a * a);
}
