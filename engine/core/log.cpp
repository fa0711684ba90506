// Thread-safe stderr logger.
#include "engine/core/log.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ts::log {
namespace {

Level initialLevel() {
    const char* env = std::getenv("TS_LOG_LEVEL");
    if (!env) return Level::Info;
    if (!std::strcmp(env, "debug")) return Level::Debug;
    if (!std::strcmp(env, "warn")) return Level::Warn;
    if (!std::strcmp(env, "error")) return Level::Error;
    if (!std::strcmp(env, "off")) return Level::Off;
    return Level::Info;
}

std::atomic<Level>& currentLevel() {
    static std::atomic<Level> l{initialLevel()};
    return l;
}

std::mutex& outputMutex() {
    static std::mutex m;
    return m;
}

} // namespace

void setLevel(Level l) {
    currentLevel() = l;
}
Level level() {
    return currentLevel();
}

void write(Level l, const char* fmt, ...) {
    if (l < currentLevel().load()) return;
    static const char* names[] = {"debug", "info", "warning", "error"};
    char buf[2048];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    std::lock_guard lock(outputMutex());
    std::fprintf(stderr, "tensorscape %s: %s\n", names[static_cast<int>(l)], buf);
}

} // namespace ts::log
