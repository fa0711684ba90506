// Argument parsing.
#include "app/cli.hpp"

#include <cmath>

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ts::app {

std::string Args::get(const std::string& name, const std::string& fallback) const {
    auto it = m_values.find(name);
    return it == m_values.end() ? fallback : it->second;
}

Expected<long> Args::getInt(const std::string& name, long fallback, long lo, long hi) const {
    if (!has(name)) return fallback;
    const std::string& s = m_values.at(name);
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || v < lo || v > hi)
        return makeError(ErrorKind::Usage, "--" + name + " expects a whole number in " + std::to_string(lo) +
                                               ".." + std::to_string(hi) + ", got '" + s + "'");
    return v;
}

Expected<double> Args::getFloat(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string& s = m_values.at(name);
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end)
        return makeError(ErrorKind::Usage, "--" + name + " expects a number, got '" + s + "'");
    // No flag takes NaN or infinity (--yaw nan gave a blank picture and exit 0).
    if (!std::isfinite(v))
        return makeError(ErrorKind::Usage, "--" + name + " expects a finite number, got '" + s + "'");
    return v;
}

Expected<Args> parseArgs(const CommandSpec& spec, int argc, char** argv, bool& helpRequested) {
    Args args;
    helpRequested = false;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            helpRequested = true;
            return args;
        }
        if (a.rfind("--", 0) != 0) {
            if (!spec.takesPositional || !args.m_positional.empty())
                return makeError(ErrorKind::Usage, "unexpected argument '" + a + "' for '" + spec.name +
                                                       "'; see tensorscape " + spec.name + " --help");
            args.m_positional.push_back(a);
            continue;
        }
        std::string name = a.substr(2), value;
        bool inlineValue = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            inlineValue = true;
        }
        const FlagSpec* flag = nullptr;
        for (auto& f : spec.flags)
            if (f.name == name) flag = &f;
        if (!flag)
            return makeError(ErrorKind::Usage, "unknown flag --" + name + " for '" + spec.name +
                                                   "'; see tensorscape " + spec.name + " --help");
        if (!flag->valueName.empty() && !inlineValue) {
            if (i + 1 >= argc)
                return makeError(ErrorKind::Usage, "--" + name + " needs a value (" + flag->valueName + ")");
            value = argv[++i];
        }
        if (flag->valueName.empty() && !inlineValue) value = "1";
        args.m_values[name] = value;
    }
    return args;
}

std::optional<Args> parseCommand(const CommandSpec& spec, int argc, char** argv, int& exitCode) {
    bool help = false;
    auto args = parseArgs(spec, argc, argv, help);
    if (!args) {
        std::fprintf(stderr, "tensorscape: error: %s\n", args.error().message.c_str());
        exitCode = args.error().exitCode();
        return std::nullopt;
    }
    if (help) {
        std::fputs(helpText(spec).c_str(), stdout);
        exitCode = 0;
        return std::nullopt;
    }
    return std::move(args.value());
}

std::string helpText(const CommandSpec& spec) {
    std::ostringstream o;
    o << "usage: " << spec.usage << "\n\n" << spec.summary << "\n\noptions:\n";
    for (auto& f : spec.flags) {
        std::string left = "  --" + f.name + (f.valueName.empty() ? "" : " " + f.valueName);
        o << left;
        if (left.size() < 28)
            o << std::string(28 - left.size(), ' ');
        else
            o << "\n" << std::string(28, ' ');
        o << f.help;
        if (!f.defaultValue.empty()) o << " (default: " << f.defaultValue << ")";
        o << "\n";
    }
    o << "  --help                    show this help\n";
    return o.str();
}

std::vector<std::string> splitCommas(const std::string& text) {
    std::vector<std::string> parts;
    size_t pos = 0;
    for (;;) {
        const size_t end = text.find(',', pos);
        parts.push_back(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
        if (end == std::string::npos) return parts;
        pos = end + 1;
    }
}

} // namespace ts::app
