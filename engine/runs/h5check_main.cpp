// tensorscape-h5check FILE: has libhdf5 read the whole structure of FILE, the way tensorscape's readers will
// (run stores, checkpoints, landscape directions and surfaces), in a process of its own. libhdf5 1.10 crashes or
// hangs on some damaged files; engine/core/h5_check.cpp runs this first and opens the file itself only when this
// exits 0. Exit 0: read, or refused by the library with an error (the reader then reports it in its own
// words). A crash or a hang here is the verdict "damaged", and so is exit 70: the program is built with
// AddressSanitizer (not in the sanitizer builds, which have their own), whose checks on the memcpy calls the
// library makes catch its reads past a buffer, which would otherwise go unnoticed. 64: wrong arguments.
//
// What is read: the file (SWMR read-only, else plain read-only, as the run store reader opens it), every
// object reachable from the root group, every attribute of each (strings through the global heap included),
// every dataset's type, extent and creation properties, and its values: all of them up to 64 MB a dataset and
// 256 MB a file, else the first and the last element (which walks the chunk index to both ends).
#include <hdf5.h>

#include <cstdint>
#include <cstdio>
#include <vector>

// Built with AddressSanitizer in the sanitizer builds: libhdf5's own small leaks on error paths are not a
// verdict on the file, whatever ASAN_OPTIONS the caller passes down (an environment setting outranks
// __asan_default_options, so leak checking is also switched off for everything this process allocates).
extern "C" const char* __asan_default_options() {
    return "detect_leaks=0:exitcode=70";
}
extern "C" void __lsan_disable() __attribute__((weak));

namespace {

constexpr hsize_t kMaxBytes = hsize_t(64) << 20;
hsize_t g_budget = hsize_t(256) << 20; // values read in full over the whole file; then first and last only
constexpr hssize_t kMaxAttributeElements = hssize_t(1) << 20;

void readAttribute(hid_t attr) {
    const hid_t type = H5Aget_type(attr);
    const hid_t space = H5Aget_space(attr);
    if (type >= 0 && space >= 0) {
        const hssize_t n = H5Sget_simple_extent_npoints(space);
        const H5T_class_t cls = H5Tget_class(type);
        if (cls == H5T_STRING && n == 1) {
            if (H5Tis_variable_str(type) > 0) {
                const hid_t mem = H5Tcopy(H5T_C_S1);
                H5Tset_size(mem, H5T_VARIABLE);
                H5Tset_cset(mem, H5Tget_cset(type));
                char* s = nullptr;
                if (H5Aread(attr, mem, &s) >= 0 && s) H5free_memory(s);
                H5Tclose(mem);
            } else {
                const size_t size = H5Tget_size(type);
                if (size > 0 && size <= kMaxBytes) {
                    std::vector<char> buf(size + 1);
                    const hid_t mem = H5Tcopy(H5T_C_S1);
                    H5Tset_size(mem, size);
                    H5Aread(attr, mem, buf.data());
                    H5Tclose(mem);
                }
            }
        } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n > 0 && n <= kMaxAttributeElements) {
            std::vector<double> buf(static_cast<size_t>(n));
            H5Aread(attr, H5T_NATIVE_DOUBLE, buf.data());
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
}

herr_t onAttribute(hid_t loc, const char* name, const H5A_info_t*, void*) {
    const hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr >= 0) {
        readAttribute(attr);
        H5Aclose(attr);
    }
    return 0;
}

void readDataset(hid_t ds) {
    const hid_t type = H5Dget_type(ds);
    const hid_t space = H5Dget_space(ds);
    const hid_t dcpl = H5Dget_create_plist(ds);
    if (type >= 0 && space >= 0) {
        const H5T_class_t cls = H5Tget_class(type);
        const int rank = H5Sget_simple_extent_ndims(space);
        const hssize_t n = H5Sget_simple_extent_npoints(space);
        if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && rank >= 0 && rank <= 32 && n > 0) {
            const hsize_t bytes = hsize_t(n) * sizeof(double);
            if (bytes <= kMaxBytes && bytes <= g_budget) {
                g_budget -= bytes;
                std::vector<double> buf(static_cast<size_t>(n));
                H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
            } else {
                std::vector<hsize_t> dims(static_cast<size_t>(rank));
                H5Sget_simple_extent_dims(space, dims.data(), nullptr);
                std::vector<hsize_t> ends(2 * static_cast<size_t>(rank), 0);
                for (int d = 0; d < rank; ++d)
                    ends[static_cast<size_t>(rank + d)] = dims[static_cast<size_t>(d)] - 1;
                const hsize_t two = 2;
                const hid_t mem = H5Screate_simple(1, &two, nullptr);
                if (mem >= 0 && H5Sselect_elements(space, H5S_SELECT_SET, 2, ends.data()) >= 0) {
                    double buf[2];
                    H5Dread(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, buf);
                }
                if (mem >= 0) H5Sclose(mem);
            }
        } else if (cls == H5T_STRING && n == 1 && H5Tis_variable_str(type) > 0) {
            const hid_t mem = H5Tcopy(H5T_C_S1);
            H5Tset_size(mem, H5T_VARIABLE);
            char* s = nullptr;
            if (H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) >= 0 && s) H5free_memory(s);
            H5Tclose(mem);
        }
    }
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
}

// Every attribute of an object, found the two ways the readers find them: by index up to the object's
// attribute count, and by iteration (damaged attribute storage can fail one way and not the other).
void readAttributes(hid_t obj) {
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) >= 0)
        for (hsize_t i = 0; i < info.num_attrs && i < 4096; ++i) {
            const hid_t attr = H5Aopen_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT);
            if (attr < 0) continue;
            readAttribute(attr);
            H5Aclose(attr);
        }
    hsize_t idx = 0;
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, onAttribute, nullptr);
}

herr_t onObject(hid_t root, const char* name, const H5O_info_t* info, void*) {
    const hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
    if (obj < 0) return 0;
    readAttributes(obj);
    if (info && info->type == H5O_TYPE_DATASET) readDataset(obj);
    H5Oclose(obj);
    return 0;
}

// The root group's links one by one (when a damaged link stops H5Ovisit part way, the rest still gets read).
herr_t onLink(hid_t group, const char* name, const H5L_info_t*, void*) {
    H5O_info_t info;
    if (H5Oget_info_by_name2(group, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0) onObject(group, name, &info, nullptr);
    return 0;
}

void walk(hid_t f) {
    readAttributes(f);
    hsize_t idx = 0;
    H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, onLink, nullptr);
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, onObject, nullptr, H5O_INFO_BASIC);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: tensorscape-h5check FILE\n");
        return 64;
    }
    if (__lsan_disable) __lsan_disable();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    // Both ways the readers open a file: SWMR read-only (the run store, with its fewer metadata retries),
    // then plain read-only (checkpoints, landscape files); libhdf5 takes different paths through damage.
    const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Pset_metadata_read_attempts(fapl, 6);
    for (const bool swmr : {true, false}) {
        const hid_t f = swmr ? H5Fopen(argv[1], H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl)
                             : H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) continue; // not openable this way: the reader says why
        walk(f);
        H5Fclose(f);
    }
    H5Pclose(fapl);
    return 0;
}
