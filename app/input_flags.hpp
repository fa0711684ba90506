// --input and its image options, the same for every command that takes real inputs (view, explain, features):
// one flag table for --help, one reading of the flags into capture::InputOptions. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "engine/capture/input_options.hpp"
#include "engine/core/error.hpp"

namespace ts::app {

// Real inputs as the user spelled them (checked by inputOptions()).
struct InputSpec {
    std::string path, shape, preset, resize, crop, channels, mean, std;
    bool given() const { return !path.empty() || !shape.empty(); }
};

// --input, --input-shape, --preset, --resize, --crop, --channels, --mean, --std. `probe`: --input-shape alone
// makes a seeded random probe (view); otherwise it is the shape each loaded sample must have.
std::vector<FlagSpec> inputFlags(bool probe);
// `spec` with inputFlags(probe) inserted after its first `at` flags.
CommandSpec withInputFlags(CommandSpec spec, bool probe, size_t at);
InputSpec inputSpecOf(const Args& args);

// The loader's options: the preset first, then each flag given over it; `count` samples at most, `seed` for a
// random probe. One-line errors (ErrorKind::Usage) name the flag.
Expected<capture::InputOptions> inputOptions(const InputSpec& in, int64_t count, uint64_t seed);

} // namespace ts::app
