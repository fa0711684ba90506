// GLSL vector and matrix type names for C++, so structs in shaders/shared/ compile in both languages.
// In C++ the including header opens namespace ts::shader after this and closes it at its end.
#ifndef TS_GLSL_TYPES_H
#define TS_GLSL_TYPES_H

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
#include "engine/core/math.hpp"
namespace ts::shader {
using vec2 = glm::vec2;
using vec3 = glm::vec3;
using vec4 = glm::vec4;
using uvec4 = glm::uvec4;
using mat4 = glm::mat4;
using uint = std::uint32_t;
} // namespace ts::shader
#endif

#endif
