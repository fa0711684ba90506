// Errors that carry where they came from: Status, Expected<T>, and check macros for VkResult-style codes.
// User-facing failures become one readable line; ExitCode tells the app which exit status to use.
#pragma once

#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace ts {

// Exit codes shared by every subcommand (see DESIGN.md): 1 the work failed, 2 bad usage or environment.
enum class ErrorKind {
    Failed = 1,      // the work itself failed (NaN everywhere, a kernel error)
    Usage = 2,       // bad flag, wrong shape, malformed file
    Environment = 2, // no Vulkan device, no display, missing package
};

struct Error {
    std::string message;
    ErrorKind kind = ErrorKind::Failed;

    int exitCode() const { return static_cast<int>(kind); }
};

// A [[nodiscard]] success-or-error value for functions that return nothing.
class [[nodiscard]] Status {
  public:
    Status() = default;
    Status(Error e) : m_error(std::move(e)), m_ok(false) {}
    static Status ok() { return {}; }

    bool isOk() const { return m_ok; }
    explicit operator bool() const { return m_ok; }
    const Error& error() const { return m_error; }
    const std::string& message() const { return m_error.message; }

  private:
    Error m_error;
    bool m_ok = true;
};

// A minimal expected<T, Error> (std::expected needs C++23, which nvcc does not take).
template <class T> class [[nodiscard]] Expected {
  public:
    Expected(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    Expected(Error e) : m_v(std::in_place_index<1>, std::move(e)) {}
    Expected(Status s) : m_v(std::in_place_index<1>, s.error()) {}

    bool hasValue() const { return m_v.index() == 0; }
    explicit operator bool() const { return hasValue(); }

    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }

    const Error& error() const { return std::get<1>(m_v); }
    Status status() const { return hasValue() ? Status::ok() : Status(error()); }

  private:
    std::variant<T, Error> m_v;
};

inline Error makeError(ErrorKind kind, std::string message) {
    return Error{std::move(message), kind};
}

// The common case of a user's mistake: one line, exit code 2.
inline Error usageError(std::string message) {
    return makeError(ErrorKind::Usage, std::move(message));
}

// "expr failed with CODE (file:line)": the common wording of every check macro.
std::string describeFailure(const char* expr, const char* code, const char* file, int line);

// One line from a library's multi-line exception text: TorchScript's "The following operation failed in the
// TorchScript interpreter. Traceback ... RuntimeError: <the model's own message>" gives the model's message
// (the last "SomethingError: ..." line); other texts give their first line.
std::string oneLineReason(const std::string& what);

// Text taken from a user's file for an error message: control and non-ASCII bytes as \xNN, cut to `maxChars`
// with "...", so the message stays one printable line whatever the file holds.
std::string printableExcerpt(const std::string& text, size_t maxChars = 40);

} // namespace ts

// Propagate a failed Status or Expected from the current function.
#define TS_TRY(expr)                                                                                         \
    do {                                                                                                     \
        auto ts_try_status_ = (expr);                                                                        \
        if (!ts_try_status_) return ::ts::Status(ts_try_status_.error());                                    \
    } while (0)

// Declare `var` from an Expected, returning its error from the enclosing function on failure.
#define TS_ASSIGN_OR_RETURN(var, expr)                                                                       \
    auto var##_expected_ = (expr);                                                                           \
    if (!var##_expected_) return ::ts::Status(var##_expected_.error());                                      \
    auto var = std::move(var##_expected_).value()
