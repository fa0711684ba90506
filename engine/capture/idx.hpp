// Reader for the IDX format of the MNIST family (unsigned-byte arrays), plain or gzip-compressed (.gz is
// read directly through zlib). Torch-free; dataset.hpp turns the arrays into tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"

namespace ts::capture {

// An unsigned-byte IDX array: dims as stored (images: [N, rows, cols], labels: [N]), data row-major.
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
};

// Reads one IDX file. Errors (ErrorKind::Usage), each naming the file:
// - "cannot open": missing or unreadable file;
// - "wrong magic": the first 4 bytes are not 0x00 0x00 0x08 <ndims> (only unsigned-byte arrays are read);
// - "truncated": the header or the data is shorter than the dims promise (or the gzip stream is cut);
// - "trailing data": bytes after the last element;
// - "expects N dims": `expectDims` > 0 and the file has another number of dimensions.
Expected<IdxArray> readIdx(const std::string& path, int expectDims = 0);

// Images [N, rows, cols] and labels [N] from a pair of files; checks that the counts match and that labels
// lie below `maxClasses` (0: any). Errors name the file.
struct IdxImages {
    IdxArray images;
    IdxArray labels;
};
Expected<IdxImages> readIdxPair(const std::string& imagesPath, const std::string& labelsPath,
                                int maxClasses = 0);

// Writes an unsigned-byte IDX file (plain, or gzip when the path ends in .gz). For fixtures and exports.
Status writeIdx(const std::string& path, const IdxArray& array);

} // namespace ts::capture
