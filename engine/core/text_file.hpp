// Writing a whole text file (JSON reports, summaries, keyframes) so that a failure never leaves a file that
// looks complete: a regular file (or a new one) is written under a temporary name and renamed over the path;
// anything else (a device such as /dev/full, a pipe) is written in place and its failure reported.
#pragma once

#include <string>

#include "engine/core/error.hpp"

namespace ts {

// Errors (ErrorKind::Usage): the folder is missing or not writable, the write failed (disk full), the rename
// failed. One line each, naming the path.
Status writeTextFile(const std::string& path, const std::string& text);

} // namespace ts
