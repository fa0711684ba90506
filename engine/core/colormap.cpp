// Colormap lookups over the tables in colormap_data.cpp.
#include "engine/core/colormap.hpp"

#include <algorithm>
#include <cmath>

namespace ts {
namespace detail {
extern const unsigned char k_viridis[256][3];
extern const unsigned char k_magma[256][3];
extern const unsigned char k_inferno[256][3];
extern const unsigned char k_plasma[256][3];
extern const unsigned char k_cividis[256][3];
extern const unsigned char k_rdbu[256][3];
extern const unsigned char k_coolwarm[256][3];
extern const unsigned char k_tab10[256][3];
} // namespace detail

namespace {
struct MapInfo {
    const char* name;
    const unsigned char (*table)[3];
    bool diverging;
};
const MapInfo k_maps[] = {
    {"viridis", detail::k_viridis, false},  {"magma", detail::k_magma, false},
    {"inferno", detail::k_inferno, false},  {"plasma", detail::k_plasma, false},
    {"cividis", detail::k_cividis, false},  {"rdbu", detail::k_rdbu, true},
    {"coolwarm", detail::k_coolwarm, true}, {"tab10", detail::k_tab10, false},
};
static_assert(sizeof(k_maps) / sizeof(k_maps[0]) == static_cast<size_t>(Colormap::Count));

const MapInfo& info(Colormap map) {
    auto i = static_cast<size_t>(map);
    return k_maps[i < static_cast<size_t>(Colormap::Count) ? i : 0];
}
} // namespace

const char* colormapName(Colormap map) {
    return info(map).name;
}
bool colormapIsDiverging(Colormap map) {
    return info(map).diverging;
}

std::optional<Colormap> colormapFromName(std::string_view name) {
    for (size_t i = 0; i < static_cast<size_t>(Colormap::Count); ++i)
        if (name == k_maps[i].name) return static_cast<Colormap>(i);
    return std::nullopt;
}

Rgb8 sampleColormap(Colormap map, float t) {
    if (!(t >= 0.0f)) t = 0.0f; // also catches NaN
    t = std::min(t, 1.0f);
    const auto* table = info(map).table;
    float x = t * (kColormapSize - 1);
    int i0 = static_cast<int>(std::floor(x));
    int i1 = std::min(i0 + 1, kColormapSize - 1);
    float f = x - static_cast<float>(i0);
    auto mix = [&](int c) {
        return static_cast<std::uint8_t>(std::lround(table[i0][c] * (1.0f - f) + table[i1][c] * f));
    };
    return {mix(0), mix(1), mix(2)};
}

std::array<std::uint32_t, kColormapSize> colormapTableRgba(Colormap map) {
    std::array<std::uint32_t, kColormapSize> out{};
    const auto* table = info(map).table;
    for (int i = 0; i < kColormapSize; ++i)
        out[i] = table[i][0] | (table[i][1] << 8) | (table[i][2] << 16) | (0xFFu << 24);
    return out;
}

} // namespace ts
