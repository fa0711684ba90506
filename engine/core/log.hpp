// Logging: one line per message on stderr, with a level prefix. printf-style so nvcc-built code can use it.
#pragma once

#include <cstdarg>

namespace ts::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

// Messages below this level are dropped. Default Info; TS_LOG_LEVEL=debug|info|warn|error|off overrides.
void setLevel(Level level);
Level level();

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

} // namespace ts::log

#define TS_LOG_DEBUG(...) ::ts::log::write(::ts::log::Level::Debug, __VA_ARGS__)
#define TS_LOG_INFO(...) ::ts::log::write(::ts::log::Level::Info, __VA_ARGS__)
#define TS_LOG_WARN(...) ::ts::log::write(::ts::log::Level::Warn, __VA_ARGS__)
#define TS_LOG_ERROR(...) ::ts::log::write(::ts::log::Level::Error, __VA_ARGS__)
