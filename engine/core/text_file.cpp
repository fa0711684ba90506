// Whole-file text writes (see text_file.hpp).
#include "engine/core/text_file.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace ts {

Status writeTextFile(const std::string& path, const std::string& text) {
    std::error_code ec;
    const bool special = std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec);
    const std::string tmp = special ? path : path + ".tmp";
    {
        std::ofstream out(tmp);
        if (!out) return usageError("cannot write " + path + " (check that the folder exists and is writable)");
        out << text;
        out.flush();
        if (!out) {
            out.close();
            if (!special) std::remove(tmp.c_str());
            return usageError("writing " + path + " failed (disk full?)");
        }
    }
    if (!special && std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        return usageError("cannot write " + path + " (rename failed)");
    }
    return Status::ok();
}

} // namespace ts
