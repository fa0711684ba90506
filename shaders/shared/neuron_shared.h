// Structs shared by the neuron shaders and C++ (nvpro shaderio style): one definition, both languages.
#ifndef TS_NEURON_SHARED_H
#define TS_NEURON_SHARED_H

#include "glsl_types.h"
#ifdef __cplusplus
namespace ts::shader {
#endif

// Per-neuron flags.
#define TS_NEURON_SELECTED 1u
#define TS_NEURON_HIGHLIGHTED 2u
#define TS_NEURON_HIDDEN 4u

// Shading modes.
#define TS_SHADING_FLAT 0u
#define TS_SHADING_LIT 1u

// One neuron instance: 32 bytes, read as per-instance vertex attributes.
struct NeuronInstance {
    vec3 position; // world space
    float radius;  // world space
    float value;   // scalar mapped through the colormap
    uint flags;    // TS_NEURON_*
    uint id;       // neuron index (for picking)
    float pad0;
};

// Per-frame uniforms of the neuron pass (std140).
struct NeuronFrameUniforms {
    mat4 view;
    mat4 proj;
    vec4 lightDirView; // xyz: direction towards the key light, view space
    vec4 valueRange;   // x: value mapped to colormap start, y: to its end, z: 1 / (y - x)
    vec4 viewport;     // x: width, y: height, z: minimum impostor radius in pixels, w: splat threshold (px)
    uvec4 params;      // x: shading mode (TS_SHADING_*), y: splatting on, z: instance count
    uvec4 lut[64];     // 256 packed RGBA8 colormap entries
};

// Compute splatting writes one 64-bit word per pixel: depth bits high, packed RGBA8 low, so atomicMin keeps
// the nearest neuron. Neurons too large to splat are appended to a draw list read by an indirect draw:
// [vertexCount, instanceCount, firstVertex, firstInstance] then one instance index per drawn neuron.
#define TS_SPLAT_EMPTY 0xFFFFFFFFFFFFFFFFul
#define TS_DRAW_LIST_HEADER_WORDS 4u
#define TS_SPLAT_GROUP_SIZE 128u

#ifdef __cplusplus
static_assert(sizeof(NeuronInstance) == 32);
static_assert(offsetof(NeuronInstance, value) == 16);
static_assert(offsetof(NeuronInstance, flags) == 20);
static_assert(sizeof(NeuronFrameUniforms) == 64 * 2 + 16 * 4 + 1024);
} // namespace ts::shader
#endif

#endif
