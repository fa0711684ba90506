// Command-line parsing shared by every subcommand: declared flags only, one-line errors, --help text.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::app {

struct FlagSpec {
    std::string name;      // without dashes: "width"
    std::string valueName; // empty: boolean switch
    std::string help;
    std::string defaultValue;
};

struct CommandSpec {
    std::string name;
    std::string summary;
    std::string usage; // e.g. "tensorscape render [options]"
    std::vector<FlagSpec> flags;
    bool takesPositional = false;
};

class Args {
  public:
    bool has(const std::string& name) const { return m_values.count(name) > 0; }
    std::string get(const std::string& name, const std::string& fallback = "") const;
    Expected<long> getInt(const std::string& name, long fallback, long lo, long hi) const;
    Expected<double> getFloat(const std::string& name, double fallback) const;
    const std::vector<std::string>& positional() const { return m_positional; }

    std::map<std::string, std::string> m_values;
    std::vector<std::string> m_positional;
};

// Parses argv after the subcommand. "--help" is reported through `helpRequested`.
Expected<Args> parseArgs(const CommandSpec& spec, int argc, char** argv, bool& helpRequested);
std::string helpText(const CommandSpec& spec);

// Parses, or handles --help (prints it, exitCode 0) and errors (one line, exitCode 2) and returns nullopt.
std::optional<Args> parseCommand(const CommandSpec& spec, int argc, char** argv, int& exitCode);

// "a,b,,c" -> {"a", "b", "", "c"} (a trailing comma gives a trailing empty part; "" gives {""}).
std::vector<std::string> splitCommas(const std::string& text);

} // namespace ts::app
