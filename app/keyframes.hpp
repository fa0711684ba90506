// Keyframes of a fly-through, saved from the landscape window (the K key or the panel's button) and recorded
// headless with `landscape --record flight.mp4 --keyframes FILE.json`. The file is JSON:
//   {"tensorscape_keyframes": 1,
//    "keyframes": [{"target": [x, y, z], "distance": d, "yaw": radians, "pitch": radians}, ...]}
// with targets and distances relative to the surface's box (render::Keyframe), so a path fits the same
// surface computed again at another grid size.
#pragma once

#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/render/camera.hpp"

namespace ts::app {

// At least `minimum` keyframes (a flight needs 2; the window appends to a file with fewer).
Expected<std::vector<render::Keyframe>> readKeyframes(const std::string& path, size_t minimum = 2);
Status writeKeyframes(const std::string& path, const std::vector<render::Keyframe>& keys);

} // namespace ts::app
