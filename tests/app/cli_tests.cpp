// The program's parser (app/cli.hpp, on CLI11): values as users type them, one-line errors, the generated help,
// and the subcommand dispatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "app/cli.hpp"

using namespace ts::app;

namespace {

CommandSpec spec() {
    return CommandSpec{"probe",
                       "A command for the parser's tests.",
                       "tensorscape probe MODEL [options]",
                       {{"out", "FILE.png", "picture to write", "out/x.png"},
                        {"yaw", "DEG", "camera yaw", "30"},
                        {"x", "MIN:MAX:N", "x axis", ""},
                        {"headless", "", "never open a window", ""},
                        {"width", "W", "picture width", "1280"}},
                       true,
                       "exit codes: 0 done, 2 bad usage.\n"};
}

ts::Expected<Args> parse(const std::vector<std::string>& argv) {
    bool help = false;
    auto r = parseArgs(spec(), argv, help);
    EXPECT_FALSE(help);
    return r;
}

} // namespace

TEST(Cli, ValuesAsUsersTypeThem) {
    auto a = parse({"model.pt", "--out", "a.png", "--yaw=-30", "--x", "-1.5:1:21", "--headless", "--width", "64",
                    "--width", "96"});
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_EQ(a->positional().size(), 1u);
    EXPECT_EQ(a->positional()[0], "model.pt");
    EXPECT_EQ(a->get("out"), "a.png");
    EXPECT_EQ(a->get("yaw"), "-30");
    EXPECT_EQ(a->get("x"), "-1.5:1:21"); // a negative number is a value, not a flag
    EXPECT_TRUE(a->has("headless"));
    EXPECT_EQ(a->get("width"), "96"); // the last one given
    EXPECT_FALSE(a->has("nothing"));
    // A negative value after a space, an empty value, a value that looks like a path.
    a = parse({"--yaw", "-45", "--out", ""});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->get("yaw"), "-45");
    EXPECT_TRUE(a->has("out"));
    EXPECT_EQ(a->get("out", "fallback"), "");
    EXPECT_TRUE(a->positional().empty());
    // Typed getters: range and finiteness in one line.
    a = parse({"--width", "12x", "--yaw", "nan"});
    ASSERT_TRUE(a);
    auto w = a->getInt("width", 1280, 16, 16384);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().message, "--width expects a whole number in 16..16384, got '12x'");
    EXPECT_FALSE(a->getFloat("yaw", 0));
    auto none = parse({});
    ASSERT_TRUE(none);
    auto fallback = none->getInt("width", 1280, 16, 16384);
    ASSERT_TRUE(fallback);
    EXPECT_EQ(*fallback, 1280);
}

TEST(Cli, MistakesAreOneLineUsageErrors) {
    struct Case {
        std::vector<std::string> argv;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--bogus"}, "unknown flag --bogus for 'probe'; see tensorscape probe --help"},
        {{"--bogus=3"}, "unknown flag --bogus for 'probe'; see tensorscape probe --help"},
        {{"a.pt", "b.pt"}, "unexpected argument 'b.pt' for 'probe'; see tensorscape probe --help"},
        {{"--out"}, "--out needs a value (FILE.png)"},
        {{"--out", "--headless"}, "--out needs a value (FILE.png), not the flag --headless"},
        {{"--out", "--width=3"}, "--out needs a value (FILE.png), not the flag --width=3"},
    };
    for (const Case& c : cases) {
        auto a = parse(c.argv);
        ASSERT_FALSE(a) << c.argv[0];
        EXPECT_EQ(a.error().kind, ts::ErrorKind::Usage);
        EXPECT_EQ(a.error().message, c.message);
        EXPECT_EQ(a.error().message.find('\n'), std::string::npos);
    }
}

TEST(Cli, HelpIsGeneratedFromTheFlagTable) {
    for (const char* flag : {"--help", "-h"}) {
        bool help = false;
        auto a = parseArgs(spec(), {"--width", "5", flag}, help);
        ASSERT_TRUE(a);
        EXPECT_TRUE(help) << flag;
    }
    const std::string text = helpText(spec());
    EXPECT_EQ(text.find("A command for the parser's tests."), 0u) << text;
    EXPECT_NE(text.find("usage: tensorscape probe MODEL [options]"), std::string::npos) << text;
    for (const char* line : {"--out FILE.png", "--yaw DEG", "--x MIN:MAX:N", "--headless", "--help"})
        EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
    EXPECT_NE(text.find("picture to write (default: out/x.png)"), std::string::npos) << text;
    EXPECT_NE(text.find("exit codes: 0 done, 2 bad usage."), std::string::npos) << text;
    // Long descriptions wrap within 110 columns; each flag on its own line, in the table's order.
    CommandSpec wide = spec();
    wide.flags[0].help = std::string(30, 'a') + " " + std::string(30, 'b') + " " + std::string(30, 'c');
    const std::string wrapped = helpText(wide);
    size_t width = 0, start = 0;
    for (size_t nl = wrapped.find('\n'); nl != std::string::npos; start = nl + 1, nl = wrapped.find('\n', start))
        width = std::max(width, nl - start);
    EXPECT_LE(width, 110u) << wrapped;
    EXPECT_NE(wrapped.find(std::string(30, 'c')), std::string::npos) << wrapped;
    EXPECT_LT(text.find("--out"), text.find("--yaw"));
    EXPECT_LT(text.find("--yaw"), text.find("--width"));
}

namespace {

std::vector<std::string> g_seen;
int recordArgs(int argc, char** argv) {
    g_seen.assign(argv, argv + argc);
    return 7;
}
int otherCommand(int, char**) {
    return 9;
}

int program(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    return runProgram("Probe program.", {{"alpha", "the first", recordArgs}, {"beta", "the second", otherCommand}},
                      int(args.size()), argv.data());
}

} // namespace

TEST(Cli, TheProgramDispatchesItsSubcommandWithTheRestOfArgv) {
    g_seen.clear();
    EXPECT_EQ(program({"tensorscape", "alpha", "model.pt", "--out", "x.png", "--help", "-v", ""}), 7);
    EXPECT_EQ(g_seen, (std::vector<std::string>{"model.pt", "--out", "x.png", "--help", "-v", ""}));
    g_seen.clear();
    EXPECT_EQ(program({"tensorscape", "alpha"}), 7);
    EXPECT_TRUE(g_seen.empty());
    EXPECT_EQ(program({"tensorscape", "beta", "--yaw", "-3"}), 9);
    // No subcommand, an unknown one, a flag instead of one: exit 2; --help and help: the overview, exit 0.
    std::fflush(stdout);
    EXPECT_EQ(program({"tensorscape"}), 2);
    EXPECT_EQ(program({"tensorscape", "gamma"}), 2);
    EXPECT_EQ(program({"tensorscape", "--frames", "3"}), 2);
    testing::internal::CaptureStdout();
    EXPECT_EQ(program({"tensorscape", "--help"}), 0);
    EXPECT_EQ(program({"tensorscape", "help"}), 0);
    const std::string out = testing::internal::GetCapturedStdout();
    EXPECT_NE(out.find("usage: tensorscape SUBCOMMAND [options]"), std::string::npos) << out;
    EXPECT_NE(out.find("alpha"), std::string::npos) << out;
    EXPECT_NE(out.find("the second"), std::string::npos) << out;
}
