#include "engine/runs/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/core/h5_check.hpp"
#include "engine/runs/h5_detail.hpp"

namespace ts::runs {

namespace {

namespace fs = std::filesystem;
using detail::Handle;

constexpr const char* kFormat = "tensorscape-checkpoint";
constexpr int64_t kVersion = 1;

Error fail(const std::string& message) { return makeError(ErrorKind::Usage, message); }

herr_t collectName(hid_t, const char* name, const H5L_info_t*, void* data) {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
}

} // namespace

std::string checkpointPath(const std::string& runDir, int64_t step) {
    char name[48];
    std::snprintf(name, sizeof name, "step_%09lld.h5", static_cast<long long>(step));
    return (fs::path(runDir) / "checkpoints" / name).string();
}

Status writeCheckpoint(const std::string& runDir, int64_t step, const std::vector<CheckpointTensor>& tensors) {
    h5::QuietErrors quiet;
    std::error_code ec;
    fs::create_directories(fs::path(runDir) / "checkpoints", ec);
    if (ec) return fail("cannot create " + (fs::path(runDir) / "checkpoints").string() + ": " + ec.message());
    const std::string path = checkpointPath(runDir, step), tmp = path + ".tmp";
    {
        Handle f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
        if (!f.valid()) return fail("cannot write checkpoint " + tmp);
        bool ok = detail::writeStringAttr(f.get(), "format", kFormat) && detail::writeIntAttr(f.get(), "version", kVersion) &&
                  detail::writeIntAttr(f.get(), "step", step);
        for (const auto& t : tensors) {
            int64_t n = 1;
            for (int64_t d : t.shape)
                n *= d;
            if (t.name.empty() || t.name.find('/') != std::string::npos || n != int64_t(t.values.size())) {
                f.reset();
                fs::remove(tmp, ec);
                return fail("checkpoint tensor '" + t.name + "' has a bad name or " + std::to_string(t.values.size()) +
                            " values for its shape");
            }
            std::vector<hsize_t> dims(t.shape.begin(), t.shape.end());
            Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                         H5Sclose);
            Handle ds(H5Dcreate2(f.get(), t.name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                                 H5P_DEFAULT),
                      H5Dclose);
            ok = ok && ds.valid() && (n == 0 || H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                         t.values.data()) >= 0);
        }
        ok = ok && H5Fflush(f.get(), H5F_SCOPE_GLOBAL) >= 0;
        if (!ok) {
            f.reset();
            fs::remove(tmp, ec);
            return fail("writing checkpoint " + path + " failed (disk full?)");
        }
    }
    fs::rename(tmp, path, ec);
    if (ec) {
        fs::remove(tmp, ec);
        return fail("cannot write checkpoint " + path + " (rename failed)");
    }
    return {};
}

std::vector<int64_t> listCheckpoints(const std::string& runDir) {
    std::vector<int64_t> steps;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(runDir) / "checkpoints", ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() < 9 || name.rfind("step_", 0) != 0 || name.compare(name.size() - 3, 3, ".h5") != 0) continue;
        const std::string digits = name.substr(5, name.size() - 8);
        if (digits.empty() || digits.size() > 15 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
        steps.push_back(std::stoll(digits));
    }
    std::sort(steps.begin(), steps.end());
    return steps;
}

Expected<std::vector<CheckpointTensor>> readCheckpoint(const std::string& runDir, int64_t step) {
    h5::QuietErrors quiet;
    const std::string path = checkpointPath(runDir, step);
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return fail("checkpoint " + path + " does not exist");
    if (Status checked = h5::checkUntrustedFile(path, "checkpoint " + path); !checked) return checked.error();
    if (H5Fis_hdf5(path.c_str()) <= 0) return fail("checkpoint " + path + " is not an HDF5 file");
    Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!f.valid()) return fail("checkpoint " + path + " cannot be opened (damaged?)");
    std::string format;
    int64_t version = 0;
    if (!detail::readStringAttr(f.get(), "format", format) || format != kFormat)
        return fail(path + " is not a tensorscape checkpoint (no format attribute '" + kFormat + "')");
    if (!detail::readIntAttr(f.get(), "version", version) || version != kVersion)
        return fail(path + ": checkpoint format version " + std::to_string(version) + " (this program reads " +
                    std::to_string(kVersion) + ")");
    std::vector<std::string> names;
    if (H5Literate(f.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collectName, &names) < 0)
        return fail("checkpoint " + path + ": cannot list its tensors (damaged?)");
    const int64_t fileBytes = int64_t(fs::file_size(path, ec));
    std::vector<CheckpointTensor> out;
    for (const auto& name : names) {
        Handle ds(H5Dopen2(f.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
        if (!ds.valid()) return fail("checkpoint " + path + ": '" + name + "' is not a dataset");
        Handle type(H5Dget_type(ds.get()), H5Tclose);
        if (H5Tget_class(type.get()) != H5T_FLOAT)
            return fail("checkpoint " + path + ": '" + name + "' is not floating-point data");
        Handle space(H5Dget_space(ds.get()), H5Sclose);
        const int rank = H5Sget_simple_extent_ndims(space.get());
        if (rank < 0 || rank > 8) return fail("checkpoint " + path + ": '" + name + "' has a bad shape");
        std::vector<hsize_t> dims(static_cast<size_t>(rank));
        if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
        CheckpointTensor t;
        t.name = name;
        int64_t n = 1;
        for (hsize_t d : dims) {
            if (d > hsize_t(1) << 40 || (d > 0 && n > (int64_t(1) << 40) / int64_t(d)))
                return fail("checkpoint " + path + ": '" + name + "' claims too many values");
            n *= int64_t(d);
            t.shape.push_back(int64_t(d));
        }
        // A header may claim anything: the values must fit in the file before they are allocated.
        if (n * int64_t(H5Tget_size(type.get())) > fileBytes)
            return fail("checkpoint " + path + ": '" + name + "' claims " + std::to_string(n) +
                        " values, more than the file holds (truncated or damaged)");
        t.values.resize(size_t(n));
        if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.values.data()) < 0)
            return fail("checkpoint " + path + ": reading '" + name + "' failed (damaged?)");
        out.push_back(std::move(t));
    }
    return out;
}

} // namespace ts::runs
