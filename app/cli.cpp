// Argument parsing on CLI11 (see cli.hpp).
#include "app/cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <CLI/CLI.hpp>

namespace ts::app {

namespace {

// CLI11's layout with the command's own usage line ("usage: tensorscape view MODEL.pt [options]").
class HelpFormatter : public CLI::Formatter {
  public:
    explicit HelpFormatter(std::string usage) : m_usage(std::move(usage)) {
        column_width(30);
    }
    std::string make_usage(const CLI::App*, std::string) const override { return "usage: " + m_usage + "\n"; }
    std::string make_description(const CLI::App* app) const override {
        return app->get_description().empty() ? "" : app->get_description() + "\n\n";
    }
    // Descriptions wrapped at word boundaries to fit 110 columns (CLI11 indents each new line to the column).
    std::string make_option_desc(const CLI::Option* opt) const override {
        const std::string text = CLI::Formatter::make_option_desc(opt);
        constexpr size_t kWidth = 110 - 30;
        std::string out, line;
        size_t pos = 0;
        while (pos < text.size()) {
            size_t end = text.find(' ', pos);
            if (end == std::string::npos) end = text.size();
            const std::string word = text.substr(pos, end - pos);
            if (!line.empty() && line.size() + 1 + word.size() > kWidth) {
                out += line + "\n";
                line.clear();
            }
            line += (line.empty() ? "" : " ") + word;
            pos = end + 1;
        }
        return out + line;
    }

  private:
    std::string m_usage;
};

// One CLI11 app for a spec, each flag's value bound to `values` (one string per flag, in the spec's order,
// sized here) and `options` getting each flag's CLI11 option; `positional` to the argument's.
std::unique_ptr<CLI::App> buildApp(const CommandSpec& spec, std::vector<std::string>& values,
                                   std::vector<CLI::Option*>& options, std::string& positionalValue,
                                   CLI::Option*& positional) {
    values.assign(spec.flags.size(), std::string());
    auto app = std::make_unique<CLI::App>(spec.summary, "tensorscape " + spec.name);
    app->formatter(std::make_shared<HelpFormatter>(spec.usage));
    app->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)->group("options");
    app->set_help_flag("-h,--help", "show this help");
    app->allow_extras(); // unknown flags and arguments are reported below, in the program's words
    app->footer(spec.footer);
    for (size_t i = 0; i < spec.flags.size(); ++i) {
        const FlagSpec& f = spec.flags[i];
        const std::string help = f.help + (f.defaultValue.empty() ? "" : " (default: " + f.defaultValue + ")");
        CLI::Option* o = f.valueName.empty()
                             ? app->add_flag("--" + f.name, help)
                             : app->add_option("--" + f.name, values[i], help)->option_text(f.valueName);
        options.push_back(o);
    }
    positional = nullptr;
    if (spec.takesPositional)
        positional = app->add_option("argument", positionalValue, "the command's argument")->group("");
    return app;
}

std::string seeHelp(const CommandSpec& spec) {
    return "; see tensorscape " + spec.name + " --help";
}

} // namespace

std::string Args::get(const std::string& name, const std::string& fallback) const {
    auto it = m_values.find(name);
    return it == m_values.end() ? fallback : it->second;
}

Expected<long> Args::getInt(const std::string& name, long fallback, long lo, long hi) const {
    if (!has(name)) return fallback;
    const std::string& s = m_values.at(name);
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || errno == ERANGE || v < lo || v > hi)
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

Expected<Args> parseArgs(const CommandSpec& spec, const std::vector<std::string>& argv, bool& helpRequested) {
    helpRequested = false;
    std::vector<std::string> values;
    std::vector<CLI::Option*> options;
    std::string positionalValue;
    CLI::Option* positional = nullptr;
    auto app = buildApp(spec, values, options, positionalValue, positional);
    std::vector<std::string> reversed(argv.rbegin(), argv.rend()); // CLI11 consumes from the back
    try {
        app->parse(reversed);
    } catch (const CLI::CallForHelp&) {
        helpRequested = true;
        return Args{};
    } catch (const CLI::ArgumentMismatch& e) {
        // "--out: 1 required TEXT missing": the flag ended the line or was followed by another flag.
        const std::string what = e.what();
        const std::string flag = what.substr(0, what.find(':'));
        for (size_t i = 0; i < spec.flags.size(); ++i)
            if ("--" + spec.flags[i].name == flag)
                return makeError(ErrorKind::Usage, flag + " needs a value (" + spec.flags[i].valueName + ")");
        return makeError(ErrorKind::Usage, what + seeHelp(spec));
    } catch (const CLI::ParseError& e) {
        return makeError(ErrorKind::Usage, std::string(e.what()) + seeHelp(spec));
    }
    if (!app->remaining().empty()) {
        const std::string extra = app->remaining().front();
        if (extra.size() > 1 && extra[0] == '-') {
            std::string name = extra.substr(extra.find_first_not_of('-'));
            name = name.substr(0, name.find('='));
            return makeError(ErrorKind::Usage, "unknown flag --" + name + " for '" + spec.name + "'" + seeHelp(spec));
        }
        return makeError(ErrorKind::Usage, "unexpected argument '" + extra + "' for '" + spec.name + "'" +
                                               seeHelp(spec));
    }
    // CLI11 takes the next argument as a flag's value whatever it looks like: "--out --headless" would write a
    // file called "--headless". A value that is one of the command's flags means the value was forgotten.
    for (size_t i = 0; i < spec.flags.size(); ++i) {
        const std::string& v = values[i];
        if (spec.flags[i].valueName.empty() || options[i]->count() == 0 || v.rfind("--", 0) != 0) continue;
        const std::string name = v.substr(2, v.find('=') == std::string::npos ? std::string::npos : v.find('=') - 2);
        const bool isFlag = name == "help" || std::any_of(spec.flags.begin(), spec.flags.end(),
                                                          [&](const FlagSpec& f) { return f.name == name; });
        if (isFlag)
            return makeError(ErrorKind::Usage, "--" + spec.flags[i].name + " needs a value (" +
                                                   spec.flags[i].valueName + "), not the flag " + v);
    }
    Args args;
    for (size_t i = 0; i < spec.flags.size(); ++i) {
        const CLI::Option* o = options[i];
        if (o->count() == 0) continue;
        args.m_values[spec.flags[i].name] = spec.flags[i].valueName.empty() ? std::string("1") : values[i];
    }
    if (positional && positional->count() > 0) args.m_positional.push_back(positionalValue);
    return args;
}

Expected<Args> parseArgs(const CommandSpec& spec, int argc, char** argv, bool& helpRequested) {
    return parseArgs(spec, std::vector<std::string>(argv, argv + argc), helpRequested);
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
    std::vector<std::string> values;
    std::vector<CLI::Option*> options;
    std::string positionalValue;
    CLI::Option* positional = nullptr;
    return buildApp(spec, values, options, positionalValue, positional)->help();
}

int runProgram(const std::string& summary, const std::vector<Subcommand>& subcommands, int argc, char** argv) {
    CLI::App app(summary, "tensorscape");
    app.formatter(std::make_shared<HelpFormatter>("tensorscape SUBCOMMAND [options]"));
    app.option_defaults()->group("options");
    app.set_help_flag("-h,--help", "show this help");
    app.footer("Run 'tensorscape SUBCOMMAND --help' for the options of each.");
    app.require_subcommand(0, 1);
    for (const Subcommand& s : subcommands) {
        CLI::App* sub = app.add_subcommand(s.name, s.summary)->prefix_command()->group("subcommands");
        sub->set_help_flag(); // --help after the subcommand is the subcommand's own
    }
    if (argc >= 2 && std::string(argv[1]) == "help") {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::ExtrasError&) {
        std::fprintf(stderr, "tensorscape: error: unknown subcommand '%s'; run 'tensorscape --help'\n", argv[1]);
        return 2;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "tensorscape: error: %s; run 'tensorscape --help'\n", e.what());
        return 2;
    }
    if (app.get_subcommands().empty()) {
        std::fputs(app.help().c_str(), stderr);
        return 2;
    }
    const CLI::App* chosen = app.get_subcommands().front();
    std::vector<std::string> rest = chosen->remaining();
    std::vector<char*> subArgv;
    for (std::string& r : rest)
        subArgv.push_back(r.data());
    subArgv.push_back(nullptr);
    for (const Subcommand& s : subcommands)
        if (s.name == chosen->get_name()) return s.run(int(rest.size()), subArgv.data());
    return 2;
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
