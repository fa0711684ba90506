// HDF5 files laid out as the reference loss-landscape scripts lay them out, so they move both ways:
//   directions: groups "xdirection" (and "ydirection") holding datasets "0", "1", ... one per parameter in
//               order (h5_util.write_list); PCA files add explained_variance_ratio_, singular_values_,
//               explained_variance_.
//   surface:    "dir_file" (string), "xcoordinates" [nx], "ycoordinates" [ny] (2D only), and per metric
//               (train_loss, train_acc, ...) a float64 dataset of shape [nx, ny] ([nx] in 1D). Its values are
//               in the order the reference's crunch() fills them: flat index iy * nx + ix (numpy.meshgrid(x,
//               y) raveled), i.e. Surface's own order. Points not yet computed hold -1, as in the reference.
// Torch-free: tensors travel as HostArray (float32 or float64 data, row-major).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/landscape/grid.hpp"

namespace ts::landscape {

struct HostArray {
    std::vector<int64_t> shape;
    std::vector<double> data; // row-major
    bool float64 = false;     // written as float64 if true, else float32 (the reference's directions)

    int64_t numel() const;
};

struct DirectionsFile {
    std::vector<HostArray> x;
    std::vector<HostArray> y;                                                      // empty: 1D
    std::vector<double> explainedVarianceRatio, singularValues, explainedVariance; // PCA only
    std::map<std::string, std::string>
        attributes; // tensorscape metadata (norm, ignore, seed), root attributes
};

Status writeDirectionsFile(const std::string& path, const DirectionsFile& file);
Expected<DirectionsFile> readDirectionsFile(const std::string& path);
// True when the file exists and holds an "xdirection" group (the reference's setup_direction check).
bool directionsFileExists(const std::string& path);

// Writes xcoordinates, ycoordinates, train_loss/train_acc (names from `metricPrefix`, "train" by default)
// and dir_file. Overwrites an existing file.
Status writeSurfaceFile(const std::string& path, const Surface& surface, const std::string& dirFile,
                        const std::string& metricPrefix = "train");
// Reads a surface written by tensorscape or by the reference's plot_surface.py. Entries < 0 are "not
// computed" (the reference's -1 marker). Missing loss dataset is an error naming the file.
Expected<Surface> readSurfaceFile(const std::string& path, const std::string& metricPrefix = "train");

// Generic helpers (tests and the Python fixture data): one float dataset at a path ("/group/name").
Status writeArray(const std::string& path, const std::string& dataset, const HostArray& array, bool truncate);
Expected<HostArray> readArray(const std::string& path, const std::string& dataset);

} // namespace ts::landscape
