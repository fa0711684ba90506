// Name lookup over the generated table.
#include "shaders/registry.hpp"

namespace ts::shaders {
namespace detail {
struct Entry {
    const char* name;
    const std::uint32_t* words;
    std::size_t count;
};
extern const Entry k_entries[];
} // namespace detail

std::span<const std::uint32_t> spirv(std::string_view name) {
    for (const detail::Entry* e = detail::k_entries; e->name; ++e)
        if (name == e->name) return {e->words, e->count};
    return {};
}

} // namespace ts::shaders
