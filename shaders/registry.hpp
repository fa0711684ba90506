// Embedded SPIR-V lookup: shaders are compiled at build time, never loaded from disk at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ts::shaders {

// The SPIR-V words of a shader by its source file name (e.g. "neurons.vert"); empty if unknown.
std::span<const std::uint32_t> spirv(std::string_view name);

} // namespace ts::shaders
