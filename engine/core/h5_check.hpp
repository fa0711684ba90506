// A damaged HDF5 file can crash or hang libhdf5 1.10 itself (fuzzing found a SEGV in its metadata
// accumulator while opening, an overlapping memcpy and a hang in its global heap while reading a string
// attribute). No check of ours inside the process can prevent that, so every reader of a file that the user
// brings first has the library read the file's whole structure in a process of its own,
// `tensorscape-h5check`, and only opens the file itself when that process finished normally. Torch-free and
// HDF5-free: this side only starts the checker and waits.
#pragma once

#include <string>

#include "engine/core/error.hpp"

namespace ts::h5 {

// Runs the checker on `path` and waits for it, up to TS_H5CHECK_TIMEOUT_S seconds (default 20). Ok: libhdf5
// read the file's structure without crashing or hanging (it may have found errors; the caller's own reading
// reports those in its words). Otherwise one line, ErrorKind::Usage, starting with `what` (e.g. "run store
// 'x/run.h5'"): the library crashed on the file, did not finish, or the checker could not be run.
// The checker is found at $TS_H5CHECK, else beside the running program, else where the build put it.
Status checkUntrustedFile(const std::string& path, const std::string& what);

// The checker's path as checkUntrustedFile finds it (empty when there is none).
std::string checkerPath();

} // namespace ts::h5
