// Internal to engine/runs: typed attribute and extendible-dataset helpers over the HDF5 C API, used by the
// writer and the reader so both spell the format the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/h5_handle.hpp"

namespace ts::runs::detail {

using h5::Handle;

inline bool exists(hid_t loc, const std::string& name) {
    return H5Lexists(loc, name.c_str(), H5P_DEFAULT) > 0;
}

inline bool writeStringAttr(hid_t loc, const char* name, const std::string& value) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle at(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* p = value.c_str();
    return at.valid() && H5Awrite(at.get(), type.get(), &p) >= 0;
}

inline bool writeIntAttr(hid_t loc, const char* name, int64_t value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle at(H5Acreate2(loc, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    return at.valid() && H5Awrite(at.get(), H5T_NATIVE_INT64, &value) >= 0;
}

inline bool writeIntsAttr(hid_t loc, const char* name, const std::vector<int64_t>& values) {
    hsize_t n = values.size();
    Handle space(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), H5Sclose);
    Handle at(H5Acreate2(loc, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    return at.valid() && (n == 0 || H5Awrite(at.get(), H5T_NATIVE_INT64, values.data()) >= 0);
}

// A string attribute (variable or fixed length, as h5py and our writer make them); nullopt-like false.
inline bool readStringAttr(hid_t loc, const char* name, std::string& out) {
    if (H5Aexists(loc, name) <= 0) return false;
    Handle at(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!at.valid()) return false;
    Handle type(H5Aget_type(at.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_STRING) return false;
    Handle space(H5Aget_space(at.get()), H5Sclose);
    if (H5Sget_simple_extent_npoints(space.get()) != 1) return false; // one string; reading more into one overran
    if (H5Tis_variable_str(type.get()) > 0) {
        Handle memType(H5Tcopy(H5T_C_S1), H5Tclose);
        H5Tset_size(memType.get(), H5T_VARIABLE);
        H5Tset_cset(memType.get(), H5Tget_cset(type.get()));
        char* s = nullptr;
        if (H5Aread(at.get(), memType.get(), &s) < 0 || !s) return false;
        out = s;
        H5free_memory(s);
        return true;
    }
    const size_t n = H5Tget_size(type.get());
    std::string s(n, '\0');
    Handle memType(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memType.get(), n);
    if (H5Aread(at.get(), memType.get(), s.data()) < 0) return false;
    out = s.c_str();
    return true;
}

// An integer attribute: a scalar, or a 1-D array (ints). Floats and others fail.
inline bool readIntsAttr(hid_t loc, const char* name, std::vector<int64_t>& out) {
    if (H5Aexists(loc, name) <= 0) return false;
    Handle at(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
    if (!at.valid()) return false;
    Handle type(H5Aget_type(at.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_INTEGER) return false;
    Handle space(H5Aget_space(at.get()), H5Sclose);
    const hssize_t n = H5Sget_simple_extent_npoints(space.get());
    if (n < 0 || n > (1 << 20)) return false;
    out.assign(size_t(n), 0);
    return n == 0 || H5Aread(at.get(), H5T_NATIVE_INT64, out.data()) >= 0;
}

inline bool readIntAttr(hid_t loc, const char* name, int64_t& out) {
    std::vector<int64_t> v;
    if (!readIntsAttr(loc, name, v) || v.size() != 1) return false;
    out = v[0];
    return true;
}

// Current extent of a dataset (dims), after H5Drefresh when `refresh` (SWMR readers see growth that way).
inline std::vector<hsize_t> extent(hid_t ds, bool refresh = false) {
    if (refresh) H5Drefresh(ds);
    Handle space(H5Dget_space(ds), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(rank > 0 ? size_t(rank) : 0);
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return dims;
}

} // namespace ts::runs::detail
