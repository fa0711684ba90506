// HDF5 directions and surface files (libhdf5 C API), laid out as the reference loss-landscape scripts do.
#include "engine/landscape/h5_io.hpp"

#include "engine/core/h5_check.hpp"
#include "engine/core/h5_handle.hpp"

#include <cmath>
#include <filesystem>
#include <limits>

namespace ts::landscape {

int64_t HostArray::numel() const {
    int64_t n = 1;
    for (auto s : shape)
        n *= s;
    return n;
}

namespace {

using h5::Handle;
using h5::QuietErrors;

Error fileError(const std::string& path, const std::string& what) {
    return makeError(ErrorKind::Usage, path + ": " + what);
}

Expected<Handle> openFile(const std::string& path, bool write) {
    if (!std::filesystem::exists(path)) return fileError(path, "file not found");
    TS_TRY(h5::checkUntrustedFile(path, path)); // libhdf5 must not crash or hang in this process
    Handle f(H5Fopen(path.c_str(), write ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) return fileError(path, "not a readable HDF5 file");
    return f;
}

Expected<Handle> createFile(const std::string& path) {
    Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!f.valid())
        return fileError(path, "cannot create HDF5 file (check the folder exists and is writable)");
    return f;
}

bool exists(hid_t loc, const std::string& name) {
    return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

Status writeDataset(hid_t loc, const std::string& name, const HostArray& a, const std::string& path) {
    std::vector<hsize_t> dims(a.shape.begin(), a.shape.end());
    Handle space(a.shape.empty() ? H5Screate(H5S_SCALAR)
                                 : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    const hid_t fileType = a.float64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    Handle ds(H5Dcreate2(loc, name.c_str(), fileType, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
    if (!ds.valid()) return fileError(path, "cannot create dataset '" + name + "'");
    if (static_cast<int64_t>(a.data.size()) != a.numel())
        return fileError(path, "dataset '" + name + "' data does not match its shape");
    if (a.numel() > 0 &&
        H5Dwrite(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()) < 0)
        return fileError(path, "cannot write dataset '" + name + "'");
    return Status::ok();
}

Expected<HostArray> readDataset(hid_t loc, const std::string& name, const std::string& path) {
    Handle ds(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) return fileError(path, "missing dataset '" + name + "'");
    Handle type(H5Dget_type(ds.get()), H5Tclose);
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        return fileError(path, "dataset '" + name + "' is not numeric");
    Handle space(H5Dget_space(ds.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) return fileError(path, "dataset '" + name + "' has an unreadable shape");
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    // Validate before allocating: the shape's element count (without overflow) against what the file stores for
    // the dataset (deflate expands at most 1032:1) and a budget of 2^31 values. A 7 KB file declaring 5e8
    // elements used to take 9.5 GB.
    uint64_t count = 1;
    for (hsize_t d : dims) {
        if (d != 0 && count > (uint64_t(1) << 62) / d)
            return fileError(path, "dataset '" + name + "' has an impossible shape");
        count *= d;
    }
    const uint64_t stored = H5Dget_storage_size(ds.get());
    const uint64_t elementBytes = std::max<uint64_t>(H5Tget_size(type.get()), 1);
    if (count > (uint64_t(1) << 31))
        return fileError(path, "dataset '" + name + "' declares " + std::to_string(count) +
                                   " values, more than tensorscape reads (2^31)");
    if (count > 0 && count * elementBytes > stored * 1032)
        return fileError(path, "dataset '" + name + "' declares " + std::to_string(count) + " values but the file stores " +
                                   std::to_string(stored) + " bytes for it (truncated or not written)");
    HostArray a;
    a.shape.assign(dims.begin(), dims.end());
    a.float64 = cls == H5T_FLOAT && H5Tget_size(type.get()) >= 8;
    a.data.resize(static_cast<size_t>(a.numel()));
    if (a.numel() > 0 &&
        H5Dread(ds.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data.data()) < 0)
        return fileError(path, "cannot read dataset '" + name + "'");
    return a;
}

Status writeString(hid_t loc, const std::string& name, const std::string& value, const std::string& path) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle ds(H5Dcreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
    const char* p = value.c_str();
    if (!ds.valid() || H5Dwrite(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) < 0)
        return fileError(path, "cannot write '" + name + "'");
    return Status::ok();
}

Status writeStringAttribute(hid_t loc, const std::string& name, const std::string& value,
                            const std::string& path) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle at(H5Acreate2(loc, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    if (!at.valid() || H5Awrite(at.get(), type.get(), &p) < 0)
        return fileError(path, "cannot write attribute " + name);
    return Status::ok();
}

// Variable-length or fixed-length string attributes; others are skipped.
void readStringAttributes(hid_t loc, std::map<std::string, std::string>& out) {
    H5O_info_t info;
    if (H5Oget_info2(loc, &info, H5O_INFO_NUM_ATTRS) < 0) return;
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
        Handle at(H5Aopen_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose);
        if (!at.valid()) continue;
        char name[256] = {};
        H5Aget_name(at.get(), sizeof(name) - 1, name);
        Handle type(H5Aget_type(at.get()), H5Tclose);
        if (H5Tget_class(type.get()) != H5T_STRING) continue;
        Handle space(H5Aget_space(at.get()), H5Sclose);
        if (H5Sget_simple_extent_npoints(space.get()) != 1) continue; // one string; reading more into one overran
        if (H5Tis_variable_str(type.get()) > 0) {
            Handle memType(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(memType.get(), H5T_VARIABLE);
            H5Tset_cset(memType.get(), H5Tget_cset(type.get()));
            char* s = nullptr;
            if (H5Aread(at.get(), memType.get(), &s) >= 0 && s) {
                out[name] = s;
                H5free_memory(s);
            }
        } else {
            const size_t n = H5Tget_size(type.get());
            std::string s(n, '\0');
            Handle memType(H5Tcopy(H5T_C_S1), H5Tclose);
            H5Tset_size(memType.get(), n);
            if (H5Aread(at.get(), memType.get(), s.data()) >= 0) out[name] = s.c_str();
        }
    }
}

Status writeList(hid_t file, const std::string& group, const std::vector<HostArray>& list,
                 const std::string& path) {
    Handle g(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return fileError(path, "cannot create group '" + group + "'");
    for (size_t i = 0; i < list.size(); ++i)
        TS_TRY(writeDataset(g.get(), std::to_string(i), list[i], path));
    return Status::ok();
}

Expected<std::vector<HostArray>> readList(hid_t file, const std::string& group, const std::string& path) {
    Handle g(H5Gopen2(file, group.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return fileError(path, "missing group '" + group + "'");
    H5G_info_t info;
    if (H5Gget_info(g.get(), &info) < 0) return fileError(path, "cannot list group '" + group + "'");
    std::vector<HostArray> out;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
        auto a = readDataset(g.get(), std::to_string(i), path);
        if (!a)
            return fileError(path, "group '" + group + "' must hold datasets 0.." +
                                       std::to_string(info.nlinks - 1) + ": " + a.error().message);
        out.push_back(std::move(a.value()));
    }
    return out;
}

HostArray vector1d(const std::vector<double>& v) {
    HostArray a;
    a.shape = {static_cast<int64_t>(v.size())};
    a.data = v;
    a.float64 = true;
    return a;
}

} // namespace

Status writeDirectionsFile(const std::string& path, const DirectionsFile& file) {
    QuietErrors quiet;
    auto f = createFile(path);
    if (!f) return f.status();
    TS_TRY(writeList(f->get(), "xdirection", file.x, path));
    if (!file.y.empty()) TS_TRY(writeList(f->get(), "ydirection", file.y, path));
    if (!file.explainedVarianceRatio.empty()) {
        TS_TRY(
            writeDataset(f->get(), "explained_variance_ratio_", vector1d(file.explainedVarianceRatio), path));
        TS_TRY(writeDataset(f->get(), "singular_values_", vector1d(file.singularValues), path));
        TS_TRY(writeDataset(f->get(), "explained_variance_", vector1d(file.explainedVariance), path));
    }
    for (const auto& [k, v] : file.attributes)
        TS_TRY(writeStringAttribute(f->get(), k, v, path));
    if (H5Fflush(f->get(), H5F_SCOPE_GLOBAL) < 0) return fileError(path, "cannot flush");
    return Status::ok();
}

bool directionsFileExists(const std::string& path) {
    QuietErrors quiet;
    if (!std::filesystem::exists(path) || !h5::checkUntrustedFile(path, path)) return false;
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    return f.valid() && exists(f.get(), "xdirection");
}

Expected<DirectionsFile> readDirectionsFile(const std::string& path) {
    QuietErrors quiet;
    auto f = openFile(path, false);
    if (!f) return f.error();
    DirectionsFile out;
    if (!exists(f->get(), "xdirection"))
        return fileError(path, "not a directions file (no 'xdirection' group)");
    auto x = readList(f->get(), "xdirection", path);
    if (!x) return x.error();
    out.x = std::move(x.value());
    if (exists(f->get(), "ydirection")) {
        auto y = readList(f->get(), "ydirection", path);
        if (!y) return y.error();
        out.y = std::move(y.value());
        if (out.y.size() != out.x.size())
            return fileError(path, "xdirection has " + std::to_string(out.x.size()) +
                                       " arrays but ydirection has " + std::to_string(out.y.size()));
    }
    const auto optional1d = [&](const char* name, std::vector<double>& dst) -> Status {
        if (!exists(f->get(), name)) return Status::ok();
        auto a = readDataset(f->get(), name, path);
        if (!a) return a.status();
        dst = a->data;
        return Status::ok();
    };
    TS_TRY(optional1d("explained_variance_ratio_", out.explainedVarianceRatio));
    TS_TRY(optional1d("singular_values_", out.singularValues));
    TS_TRY(optional1d("explained_variance_", out.explainedVariance));
    readStringAttributes(f->get(), out.attributes);
    return out;
}

Status writeSurfaceFile(const std::string& path, const Surface& s, const std::string& dirFile,
                        const std::string& metricPrefix) {
    QuietErrors quiet;
    const size_t n = static_cast<size_t>(s.nx() * s.ny());
    if (s.loss.size() != n || s.acc.size() != n || s.computed.size() != n)
        return fileError(path, "surface arrays do not match its grid");
    auto f = createFile(path);
    if (!f) return f.status();
    TS_TRY(writeString(f->get(), "dir_file", dirFile, path));
    TS_TRY(writeDataset(f->get(), "xcoordinates", vector1d(s.x), path));
    if (s.is2d()) TS_TRY(writeDataset(f->get(), "ycoordinates", vector1d(s.y), path));
    const auto metric = [&](const std::vector<double>& v) {
        HostArray a;
        a.shape = s.is2d() ? std::vector<int64_t>{s.nx(), s.ny()} : std::vector<int64_t>{s.nx()};
        a.float64 = true;
        a.data.resize(n);
        for (size_t k = 0; k < n; ++k)
            a.data[k] = s.computed[k] ? v[k] : -1.0; // the reference's "to do"
        return a;
    };
    TS_TRY(writeDataset(f->get(), metricPrefix + "_loss", metric(s.loss), path));
    TS_TRY(writeDataset(f->get(), metricPrefix + "_acc", metric(s.acc), path));
    if (H5Fflush(f->get(), H5F_SCOPE_GLOBAL) < 0) return fileError(path, "cannot flush");
    return Status::ok();
}

Expected<Surface> readSurfaceFile(const std::string& path, const std::string& metricPrefix) {
    QuietErrors quiet;
    auto f = openFile(path, false);
    if (!f) return f.error();
    Surface s;
    auto x = readDataset(f->get(), "xcoordinates", path);
    if (!x) return x.error();
    s.x = x->data;
    if (exists(f->get(), "ycoordinates")) {
        auto y = readDataset(f->get(), "ycoordinates", path);
        if (!y) return y.error();
        s.y = y->data;
    }
    if (s.x.empty() || (s.is2d() && s.y.empty())) return fileError(path, "empty coordinates");
    const size_t n = static_cast<size_t>(s.nx() * s.ny());
    auto loss = readDataset(f->get(), metricPrefix + "_loss", path);
    if (!loss) return loss.error();
    if (loss->data.size() != n)
        return fileError(path, metricPrefix + "_loss has " + std::to_string(loss->data.size()) +
                                   " values but the coordinates make " + std::to_string(n));
    s.loss = loss->data;
    s.computed.resize(n);
    for (size_t k = 0; k < n; ++k)
        s.computed[k] = !(s.loss[k] < 0); // NaN counts as computed
    s.acc.assign(n, std::numeric_limits<double>::quiet_NaN());
    if (exists(f->get(), metricPrefix + "_acc")) {
        auto acc = readDataset(f->get(), metricPrefix + "_acc", path);
        if (!acc) return acc.error();
        if (acc->data.size() != n)
            return fileError(path, metricPrefix + "_acc does not match the coordinates");
        s.acc = acc->data;
    }
    for (size_t k = 0; k < n; ++k)
        if (!s.computed[k]) s.loss[k] = s.acc[k] = std::numeric_limits<double>::quiet_NaN();
    return s;
}

Status writeArray(const std::string& path, const std::string& dataset, const HostArray& array,
                  bool truncate) {
    QuietErrors quiet;
    Expected<Handle> f = truncate || !std::filesystem::exists(path) ? createFile(path) : openFile(path, true);
    if (!f) return f.status();
    return writeDataset(f->get(), dataset, array, path);
}

Expected<HostArray> readArray(const std::string& path, const std::string& dataset) {
    QuietErrors quiet;
    auto f = openFile(path, false);
    if (!f) return f.error();
    return readDataset(f->get(), dataset, path);
}

} // namespace ts::landscape
