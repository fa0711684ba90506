// Colormaps: perceptual sequential (viridis family) and diverging (blue-white-red) lookup tables.
// The same 256-entry tables feed the shaders (uploaded as a buffer) and the CPU, so both agree.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ts {

enum class Colormap : std::uint32_t {
    Viridis = 0,
    Magma,
    Inferno,
    Plasma,
    Cividis,
    RdBu,     // diverging: blue (low) - white (middle) - red (high); for signed values such as gradients
    CoolWarm, // diverging, Moreland's smooth cool-warm
    Tab10,    // categorical: ten classes at (c + 0.5) / 10 (tab10KeyOf)
    Count
};

struct Rgb8 {
    std::uint8_t r, g, b;
};

inline constexpr int kColormapSize = 256;

const char* colormapName(Colormap map);
std::optional<Colormap> colormapFromName(std::string_view name);
bool colormapIsDiverging(Colormap map);

// The Tab10 position of class c (classes from 10 on repeat its colours).
inline float tab10KeyOf(long long c) {
    return (float(c < 0 ? 0 : c % 10) + 0.5f) / 10.0f;
}

// Colour at t in [0, 1] (clamped; NaN maps to 0), linearly interpolated between table entries.
Rgb8 sampleColormap(Colormap map, float t);

// The raw table as packed RGBA8 (A = 255), 256 entries, ready for upload.
std::array<std::uint32_t, kColormapSize> colormapTableRgba(Colormap map);

} // namespace ts
