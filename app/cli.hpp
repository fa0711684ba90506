// Command-line parsing for every subcommand, on CLI11: each command declares its flags in a table
// (CommandSpec), CLI11 parses argv against it and generates --help from it, and errors are one line.
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
    std::string footer; // after the options in --help (exit codes, examples)
};

// The flags given, as text (a switch given is "1"). Values are checked by the typed getters, which name the
// flag and the accepted range in their one-line error.
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

// Parses argv after the subcommand. "--help" is reported through `helpRequested`. A flag given twice keeps
// its last value; a value may follow the flag or be joined to it (--out=FILE).
Expected<Args> parseArgs(const CommandSpec& spec, int argc, char** argv, bool& helpRequested);
Expected<Args> parseArgs(const CommandSpec& spec, const std::vector<std::string>& argv, bool& helpRequested);
// CLI11's help for the spec: summary, usage, the flags with their value names and defaults, the footer.
std::string helpText(const CommandSpec& spec);

// Parses, or handles --help (prints it, exitCode 0) and errors (one line, exitCode 2) and returns nullopt.
std::optional<Args> parseCommand(const CommandSpec& spec, int argc, char** argv, int& exitCode);

// The program: `tensorscape SUBCOMMAND [options]`. CLI11 picks the subcommand (or prints the generated
// overview for --help, or one line and exit 2 for a missing or unknown one) and hands it the rest of argv.
struct Subcommand {
    std::string name;
    std::string summary;
    int (*run)(int argc, char** argv);
};
int runProgram(const std::string& summary, const std::vector<Subcommand>& subcommands, int argc, char** argv);

// "a,b,,c" -> {"a", "b", "", "c"} (a trailing comma gives a trailing empty part; "" gives {""}).
std::vector<std::string> splitCommas(const std::string& text);

} // namespace ts::app
