// Formatting shared by the check macros.
#include "engine/core/error.hpp"

#include <vector>

namespace ts {

std::string describeFailure(const char* expr, const char* code, const char* file, int line) {
    std::string f = file;
    auto slash = f.find("engine/");
    if (slash == std::string::npos) slash = f.find("kernels/");
    if (slash != std::string::npos) f = f.substr(slash);
    return std::string(expr) + " failed with " + code + " (" + f + ":" + std::to_string(line) + ")";
}

std::string oneLineReason(const std::string& what) {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos <= what.size()) {
        size_t end = what.find('\n', pos);
        std::string line = what.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) lines.push_back(line);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    if (lines.empty()) return "unknown error";
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
        const size_t colon = it->find("Error: ");
        if (colon != std::string::npos && colon > 0 && it->find(' ') > colon) return *it;
    }
    return lines.front();
}

std::string printableExcerpt(const std::string& text, size_t maxChars) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (i == maxChars) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

} // namespace ts
