// Keyframe files (see keyframes.hpp).
#include "app/keyframes.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/text_file.hpp"

namespace ts::app {

namespace {

Error bad(const std::string& path, const std::string& why) {
    return usageError("keyframes " + path + ": " + why + " (save them from the landscape window with K)");
}

} // namespace

Expected<std::vector<render::Keyframe>> readKeyframes(const std::string& path, size_t minimum) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return bad(path, "no such file");
    if (std::filesystem::file_size(path, ec) > (16u << 20)) return bad(path, "larger than 16 MB");
    std::ifstream in(path);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad(path, "not a JSON object");
    if (!j.contains("tensorscape_keyframes") || j["tensorscape_keyframes"] != 1)
        return bad(path, "not a tensorscape keyframes file (\"tensorscape_keyframes\": 1 missing)");
    if (!j.contains("keyframes") || !j["keyframes"].is_array()) return bad(path, "no \"keyframes\" array");
    std::vector<render::Keyframe> keys;
    for (const auto& k : j["keyframes"]) {
        const std::string which = "keyframe " + std::to_string(keys.size() + 1);
        auto number = [&](const nlohmann::json& v, float& out) {
            if (!v.is_number()) return false;
            out = v.get<float>();
            return std::isfinite(out);
        };
        render::Keyframe key;
        if (!k.is_object() || !k.contains("target") || !k["target"].is_array() || k["target"].size() != 3 ||
            !k.contains("distance") || !k.contains("yaw") || !k.contains("pitch"))
            return bad(path, which + " needs target [x, y, z], distance, yaw and pitch");
        for (int a = 0; a < 3; ++a)
            if (!number(k["target"][size_t(a)], key.target[a])) return bad(path, which + ": target is not 3 finite numbers");
        if (!number(k["distance"], key.distance) || !(key.distance > 0))
            return bad(path, which + ": distance must be a positive number");
        if (!number(k["yaw"], key.yaw) || !number(k["pitch"], key.pitch))
            return bad(path, which + ": yaw and pitch must be finite numbers (radians)");
        if (std::abs(key.pitch) > 1.56f) return bad(path, which + ": pitch must be within +-1.56 radians");
        keys.push_back(key);
    }
    if (keys.size() < minimum)
        return bad(path, "a flight needs at least " + std::to_string(minimum) + " keyframes, the file has " +
                             std::to_string(keys.size()));
    return keys;
}

Status writeKeyframes(const std::string& path, const std::vector<render::Keyframe>& keys) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& k : keys)
        list.push_back({{"target", {k.target.x, k.target.y, k.target.z}},
                        {"distance", k.distance},
                        {"yaw", k.yaw},
                        {"pitch", k.pitch}});
    const nlohmann::json j = {{"tensorscape_keyframes", 1}, {"keyframes", list}};
    return writeTextFile(path, j.dump(2) + "\n");
}

} // namespace ts::app
