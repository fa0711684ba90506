// Formatting shared by the check macros.
#include "engine/core/error.hpp"

namespace ts {

std::string describeFailure(const char* expr, const char* code, const char* file, int line) {
    std::string f = file;
    auto slash = f.find("engine/");
    if (slash == std::string::npos) slash = f.find("kernels/");
    if (slash != std::string::npos) f = f.substr(slash);
    return std::string(expr) + " failed with " + code + " (" + f + ":" + std::to_string(line) + ")";
}

} // namespace ts
