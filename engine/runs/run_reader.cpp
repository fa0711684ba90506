// RunReader: opens RUN/run.h5 with SWMR read access, validates format and version, and reads committed
// snapshots only (the /steps count first). Series come from the time pyramids where they exist.
#include "engine/runs/run_store.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/core/h5_check.hpp"
#include "engine/core/log.hpp"
#include "engine/runs/h5_detail.hpp"

namespace ts::runs {

using detail::Handle;
namespace fs = std::filesystem;

const std::vector<double>* Scalars::find(const std::string& name) const {
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) return &values[i];
    return nullptr;
}

namespace {

constexpr int kMaxPyramidLevels = 24;

Error bad(const std::string& path, const std::string& what) {
    return makeError(ErrorKind::Usage, path + ": " + what);
}

// Reads [count rows] starting at `row` of a dataset whose rows are `rowElems` values, into doubles/floats.
template <class T>
bool readRows(hid_t ds, hid_t memType, int64_t row, int64_t count, std::vector<T>& out) {
    auto dims = detail::extent(ds);
    if (dims.empty() || hsize_t(row + count) > dims[0]) return false;
    std::vector<hsize_t> start(dims.size(), 0), cnt(dims);
    start[0] = hsize_t(row);
    cnt[0] = hsize_t(count);
    hsize_t total = 1;
    for (hsize_t c : cnt)
        total *= c;
    out.resize(size_t(total));
    if (total == 0) return true;
    Handle file(H5Dget_space(ds), H5Sclose);
    H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
    Handle mem(H5Screate_simple(1, &total, nullptr), H5Sclose);
    return H5Dread(ds, memType, mem.get(), file.get(), H5P_DEFAULT, out.data()) >= 0;
}

// One value per row for rows [0, count) of a [rows x A x N] dataset: element (a, neuron), every `every` rows.
bool readColumn(hid_t ds, int64_t count, hsize_t a, hsize_t neuron, std::vector<float>& out) {
    auto dims = detail::extent(ds);
    if (dims.size() != 3 || hsize_t(count) > dims[0] || a >= dims[1] || neuron >= dims[2]) return false;
    out.resize(size_t(count));
    if (count == 0) return true;
    Handle file(H5Dget_space(ds), H5Sclose);
    hsize_t start[3] = {0, a, neuron}, cnt[3] = {hsize_t(count), 1, 1};
    H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr);
    hsize_t total = hsize_t(count);
    Handle mem(H5Screate_simple(1, &total, nullptr), H5Sclose);
    return H5Dread(ds, H5T_NATIVE_FLOAT, mem.get(), file.get(), H5P_DEFAULT, out.data()) >= 0;
}

} // namespace

struct RunReader::Impl {
    std::string dir, h5path;
    Handle file;
    RunInfo info;
    std::vector<RunLayer> layers;
    struct LayerSets {
        Handle activation, gradient, rows, weight, weightGrad, weightHist, weightHistRange, weightGradHist,
            weightGradHistRange, summary, matrix;
        std::vector<std::pair<int, Handle>> pyramid[2]; // (K, dataset LK), increasing K
    };
    std::vector<LayerSets> sets;
    Handle steps;
    std::vector<int64_t> stepValues;
    int64_t committed = 0;
    bool closed = false, warnedShort = false;

    void readClosed() {
        std::ifstream in(dir + "/run.json");
        if (!in) return;
        auto j = nlohmann::json::parse(in, nullptr, false);
        closed = !j.is_discarded() && j.is_object() && j.value("closed", false);
    }

    Status openLayers() {
        Handle group(H5Gopen2(file.get(), "layers", H5P_DEFAULT), H5Gclose);
        if (!group.valid()) return bad(h5path, "has no /layers group (not a complete tensorscape run)");
        H5G_info_t gi;
        if (H5Gget_info(group.get(), &gi) < 0) return bad(h5path, "/layers is unreadable");
        for (hsize_t i = 0; i < gi.nlinks; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "%04llu", (unsigned long long)i);
            Handle g(H5Gopen2(group.get(), name, H5P_DEFAULT), H5Gclose);
            if (!g.valid()) return bad(h5path, std::string("layer group /layers/") + name + " is missing");
            RunLayer l;
            if (!detail::readStringAttr(g.get(), "name", l.name) || !detail::readIntsAttr(g.get(), "shape", l.shape) ||
                !detail::readIntAttr(g.get(), "neurons", l.neurons))
                return bad(h5path, std::string("/layers/") + name + " lacks its name, shape or neurons attribute");
            detail::readStringAttr(g.get(), "type", l.type);
            detail::readIntAttr(g.get(), "params", l.params);
            int64_t product = 1;
            for (int64_t d : l.shape)
                product *= d;
            if (l.neurons <= 0 || product != l.neurons)
                return bad(h5path, "layer '" + l.name + "' says " + std::to_string(l.neurons) +
                                       " neurons but its shape holds " + std::to_string(product));
            LayerSets s;
            auto openSet = [&](const char* n) { return Handle(H5Dopen2(g.get(), n, H5P_DEFAULT), H5Dclose); };
            s.activation = openSet("activation");
            s.gradient = openSet("gradient");
            s.rows = openSet("rows");
            s.weight = openSet("weight");
            s.weightGrad = openSet("weight_grad");
            s.weightHist = openSet("weight_hist");
            s.weightHistRange = openSet("weight_hist_range");
            s.weightGradHist = openSet("weight_grad_hist");
            s.weightGradHistRange = openSet("weight_grad_hist_range");
            if (H5Lexists(g.get(), "summary", H5P_DEFAULT) > 0) s.summary = openSet("summary");
            {
                // Optional: the layer DAG; ignored unless every index names an earlier layer or the input.
                std::vector<int64_t> in;
                bool ok = H5Aexists(g.get(), "inputs") > 0 && detail::readIntsAttr(g.get(), "inputs", in) &&
                          !in.empty() && in.size() <= 4096;
                for (int64_t k : in)
                    ok = ok && k >= -1 && k < int64_t(layers.size());
                if (ok) l.inputs = std::move(in);
            }
            if (H5Lexists(g.get(), "matrix", H5P_DEFAULT) > 0) {
                // Optional: a matrix whose shape attribute is missing or disagrees with it is ignored.
                std::vector<int64_t> ms;
                s.matrix = openSet("matrix");
                auto dims = s.matrix.valid() ? detail::extent(s.matrix.get()) : std::vector<hsize_t>{};
                if (detail::readIntsAttr(g.get(), "matrix_shape", ms) && ms.size() == 2 && ms[0] > 0 && ms[1] > 0 &&
                    ms[0] <= (int64_t(1) << 31) / ms[1] && dims.size() == 2 && dims[1] == hsize_t(ms[0] * ms[1]))
                    l.matrixShape = ms;
                else
                    s.matrix = Handle();
            }
            if (!s.activation.valid() || !s.gradient.valid() || !s.rows.valid())
                return bad(h5path, "layer '" + l.name + "' lacks its activation, gradient or rows dataset");
            for (Handle* h : {&s.activation, &s.gradient}) {
                auto dims = detail::extent(h->get());
                if (dims.size() != 3 || dims[1] != kNeuronStats || dims[2] != hsize_t(l.neurons))
                    return bad(h5path, "layer '" + l.name + "': statistics dataset is not [steps, 8, " +
                                           std::to_string(l.neurons) + "]");
            }
            const char* pyr[2] = {"pyramid/activation_mean", "pyramid/gradient_mean_abs"};
            for (int p = 0; p < 2; ++p) {
                if (H5Lexists(g.get(), "pyramid", H5P_DEFAULT) <= 0 || H5Lexists(g.get(), pyr[p], H5P_DEFAULT) <= 0)
                    continue;
                for (int k = 1; k <= kMaxPyramidLevels; ++k) {
                    const std::string path = std::string(pyr[p]) + "/L" + std::to_string(k);
                    if (H5Lexists(g.get(), path.c_str(), H5P_DEFAULT) <= 0) continue;
                    Handle h = openSet(path.c_str());
                    auto dims = h.valid() ? detail::extent(h.get()) : std::vector<hsize_t>{};
                    if (dims.size() == 3 && dims[1] == 3 && dims[2] == hsize_t(l.neurons))
                        s.pyramid[p].push_back({k, std::move(h)});
                }
            }
            layers.push_back(std::move(l));
            sets.push_back(std::move(s));
        }
        if (layers.empty()) return bad(h5path, "records no layers");
        return Status::ok();
    }

    // Committed count: /steps, limited (with one warning) by datasets that are shorter (a damaged file).
    Expected<int64_t> refresh() {
        h5::QuietErrors quiet;
        readClosed();
        auto dims = detail::extent(steps.get(), true);
        if (dims.size() != 1) return bad(h5path, "/steps is not a 1-D dataset");
        int64_t n = int64_t(dims[0]);
        int64_t usable = n;
        for (auto& s : sets)
            for (Handle* h : {&s.activation, &s.gradient, &s.rows}) {
                auto d = detail::extent(h->get(), true);
                if (!d.empty()) usable = std::min<int64_t>(usable, int64_t(d[0]));
            }
        if (usable < n && !warnedShort) {
            TS_LOG_WARN("%s: /steps commits %lld snapshots but some layers hold only %lld; reading the first %lld",
                        h5path.c_str(), (long long)n, (long long)usable, (long long)usable);
            warnedShort = true;
        }
        if (usable > committed) {
            std::vector<int64_t> more;
            if (!readRows(steps.get(), H5T_NATIVE_INT64, committed, usable - committed, more))
                return bad(h5path, "/steps is unreadable");
            stepValues.insert(stepValues.end(), more.begin(), more.end());
            committed = usable;
        }
        return committed;
    }
};

RunReader::RunReader() : m(std::make_unique<Impl>()) {}
RunReader::~RunReader() = default;

Expected<std::unique_ptr<RunReader>> RunReader::open(const std::string& dir) {
    std::error_code ec;
    if (dir.empty()) return makeError(ErrorKind::Usage, "the run folder is empty: tensorscape open RUN_DIR");
    if (!fs::exists(dir, ec)) return makeError(ErrorKind::Usage, dir + ": no such run folder");
    std::string h5 = fs::is_directory(dir, ec) ? dir + "/run.h5" : dir;
    const std::string root = fs::is_directory(dir, ec) ? dir : fs::path(dir).parent_path().string();
    if (!fs::exists(h5, ec))
        return makeError(ErrorKind::Usage, dir + ": not a tensorscape run (no run.h5; record one with "
                                                 "tensorscape.init(DIR, model) or tensorscape train --run DIR)");
    std::unique_ptr<RunReader> r(new RunReader());
    Impl& m = *r->m;
    m.dir = root.empty() ? "." : root;
    m.h5path = h5;
    h5::QuietErrors quiet;
    // libhdf5 reads the file's structure in a process of its own first: a damaged file must not crash or
    // hang this one (engine/core/h5_check.hpp).
    if (Status checked = h5::checkUntrustedFile(h5, "run store " + h5); !checked) return checked.error();
    if (H5Fis_hdf5(h5.c_str()) <= 0)
        return bad(h5, fs::file_size(h5, ec) == 0 ? "is empty (the writer made the file and wrote nothing)"
                                                   : "is not an HDF5 file, or is truncated or damaged");
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    // A SWMR reader retries metadata whose checksum fails (the writer may be rewriting it), 100 times by
    // default with growing sleeps: a damaged file then hung `open` for minutes (found by tests/fuzz). A live
    // writer's flush completes within a few retries.
    H5Pset_metadata_read_attempts(fapl.get(), 6);
    m.file = Handle(H5Fopen(h5.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()), H5Fclose);
    if (!m.file.valid()) {
        // A file opened for writing without SWMR (a writer that has not recorded its first snapshot) or an
        // old-format file: try a plain read-only open to tell the two apart.
        Handle plain(H5Fopen(h5.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
        if (!plain.valid())
            return bad(h5, "cannot be opened: truncated or damaged, or its writer has not committed a first snapshot yet");
        m.file = std::move(plain);
    }
    const hid_t f = m.file.get();
    std::string format;
    if (!detail::readStringAttr(f, "format", format) || format != "tensorscape-run")
        return bad(h5, "is an HDF5 file but not a tensorscape run (no format=\"tensorscape-run\" attribute)");
    int64_t version = 0;
    if (!detail::readIntAttr(f, "version", version)) return bad(h5, "has no format version");
    if (version > kFormatVersion)
        return bad(h5, "was written by a newer tensorscape (run format " + std::to_string(version) +
                           ", this one reads up to " + std::to_string(kFormatVersion) + "); update tensorscape");
    if (version < 1) return bad(h5, "has an invalid format version " + std::to_string(version));
    detail::readStringAttr(f, "model", m.info.model);
    detail::readStringAttr(f, "writer", m.info.writer);
    detail::readIntAttr(f, "every", m.info.every);
    detail::readIntAttr(f, "world_size", m.info.worldSize);
    int64_t bins = 0;
    detail::readIntAttr(f, "histogram_bins", bins);
    m.info.histogramBins = int(bins);
    detail::readIntsAttr(f, "input_shape", m.info.inputShape);
    m.steps = Handle(H5Dopen2(f, "steps", H5P_DEFAULT), H5Dclose);
    if (!m.steps.valid()) return bad(h5, "has no /steps (no snapshot was ever committed)");
    if (auto s = m.openLayers(); !s) return s.error();
    auto n = m.refresh();
    if (!n) return n.error();
    return r;
}

const RunInfo& RunReader::info() const {
    return m->info;
}
const std::vector<RunLayer>& RunReader::layers() const {
    return m->layers;
}
Expected<int64_t> RunReader::refresh() {
    return m->refresh();
}
int64_t RunReader::snapshots() const {
    return m->committed;
}
const std::vector<int64_t>& RunReader::steps() const {
    return m->stepValues;
}
bool RunReader::closed() const {
    return m->closed;
}
const std::string& RunReader::path() const {
    return m->dir;
}

Expected<std::optional<std::vector<float>>> RunReader::weightMatrix(int layer, int64_t snapshot) const {
    if (layer < 0 || size_t(layer) >= m->sets.size() || snapshot < 0 || snapshot >= m->committed)
        return bad(m->h5path, "no layer " + std::to_string(layer) + " at snapshot " + std::to_string(snapshot));
    const auto& s = m->sets[size_t(layer)];
    if (!s.matrix.valid()) return std::optional<std::vector<float>>{};
    h5::QuietErrors quiet;
    H5Drefresh(s.matrix.get());
    std::vector<float> out;
    if (!readRows(s.matrix.get(), H5T_NATIVE_FLOAT, snapshot, 1, out))
        return bad(m->h5path, "cannot read the weight matrix of layer '" + m->layers[size_t(layer)].name +
                                  "' at snapshot " + std::to_string(snapshot) + " (damaged chunk)");
    return std::optional<std::vector<float>>(std::move(out));
}

Expected<std::vector<float>> RunReader::neuronStats(int layer, int64_t snapshot, Kind kind) const {
    if (layer < 0 || size_t(layer) >= m->sets.size() || snapshot < 0 || snapshot >= m->committed)
        return bad(m->h5path, "no layer " + std::to_string(layer) + " at snapshot " + std::to_string(snapshot));
    h5::QuietErrors quiet;
    std::vector<float> out;
    const auto& s = m->sets[size_t(layer)];
    if (!readRows(kind == Kind::Activation ? s.activation.get() : s.gradient.get(), H5T_NATIVE_FLOAT, snapshot, 1, out))
        return bad(m->h5path, "cannot read the " + std::string(kindName(kind)) + " statistics of layer '" +
                                  m->layers[size_t(layer)].name + "' at snapshot " + std::to_string(snapshot) +
                                  " (damaged chunk)");
    return out;
}

int64_t RunReader::rows(int layer, int64_t snapshot) const {
    std::vector<int64_t> out;
    h5::QuietErrors quiet;
    if (layer < 0 || size_t(layer) >= m->sets.size() || snapshot >= m->committed ||
        !readRows(m->sets[size_t(layer)].rows.get(), H5T_NATIVE_INT64, snapshot, 1, out) || out.empty())
        return 0;
    return out[0];
}

Expected<ParamStats> RunReader::paramStats(int layer, int64_t snapshot, bool gradient) const {
    ParamStats p;
    p.v.fill(std::numeric_limits<double>::quiet_NaN());
    if (layer < 0 || size_t(layer) >= m->sets.size() || snapshot >= m->committed) return p;
    const auto& s = m->sets[size_t(layer)];
    const hid_t ds = gradient ? s.weightGrad.get() : s.weight.get();
    if (ds < 0) return p;
    h5::QuietErrors quiet;
    std::vector<double> out;
    if (!readRows(ds, H5T_NATIVE_DOUBLE, snapshot, 1, out) || out.size() != kLayerStats)
        return bad(m->h5path, "cannot read the parameter statistics of layer '" + m->layers[size_t(layer)].name + "'");
    std::copy(out.begin(), out.end(), p.v.begin());
    return p;
}

Expected<ParamHistogram> RunReader::paramHistogram(int layer, int64_t snapshot, bool gradient) const {
    ParamHistogram h;
    if (layer < 0 || size_t(layer) >= m->sets.size() || snapshot >= m->committed) return h;
    const auto& s = m->sets[size_t(layer)];
    const hid_t ds = gradient ? s.weightGradHist.get() : s.weightHist.get();
    const hid_t rs = gradient ? s.weightGradHistRange.get() : s.weightHistRange.get();
    if (ds < 0 || rs < 0) return h;
    h5::QuietErrors quiet;
    std::vector<uint64_t> counts;
    std::vector<double> range;
    if (!readRows(ds, H5T_NATIVE_UINT64, snapshot, 1, counts) || !readRows(rs, H5T_NATIVE_DOUBLE, snapshot, 1, range) ||
        range.size() != 2)
        return bad(m->h5path, "cannot read the parameter histogram of layer '" + m->layers[size_t(layer)].name + "'");
    if (!std::isfinite(range[0]) || !std::isfinite(range[1])) return h;
    h.counts = std::move(counts);
    h.lo = range[0];
    h.hi = range[1];
    return h;
}

Expected<std::optional<std::vector<LayerSummaryRow>>> RunReader::summaries(int layer, int64_t first,
                                                                          int64_t count) const {
    if (layer < 0 || size_t(layer) >= m->sets.size() || first < 0 || first + count > m->committed)
        return bad(m->h5path, "no summary rows " + std::to_string(first) + ".." + std::to_string(first + count));
    const auto& s = m->sets[size_t(layer)];
    if (!s.summary.valid()) return std::optional<std::vector<LayerSummaryRow>>{};
    h5::QuietErrors quiet;
    std::vector<double> flat;
    H5Drefresh(s.summary.get());
    auto dims = detail::extent(s.summary.get());
    if (dims.size() != 2 || dims[1] != kSummaryStats || dims[0] < hsize_t(first + count))
        return std::optional<std::vector<LayerSummaryRow>>{}; // shorter than /steps: read the statistics instead
    if (!readRows(s.summary.get(), H5T_NATIVE_DOUBLE, first, count, flat))
        return bad(m->h5path, "cannot read the summary of layer '" + m->layers[size_t(layer)].name + "'");
    std::vector<LayerSummaryRow> out(static_cast<size_t>(count));
    for (size_t i = 0; i < out.size(); ++i)
        std::copy(flat.begin() + long(i * kSummaryStats), flat.begin() + long((i + 1) * kSummaryStats), out[i].v.begin());
    return std::optional<std::vector<LayerSummaryRow>>(std::move(out));
}

Expected<Scalars> RunReader::scalars() const {
    Scalars out;
    h5::QuietErrors quiet;
    Handle g(H5Gopen2(m->file.get(), "scalars", H5P_DEFAULT), H5Gclose);
    if (!g.valid()) return out;
    Handle stepSet(H5Dopen2(g.get(), "step", H5P_DEFAULT), H5Dclose);
    if (!stepSet.valid()) return out;
    auto dims = detail::extent(stepSet.get(), true);
    if (dims.size() != 1) return bad(m->h5path, "/scalars/step is not 1-D");
    int64_t n = int64_t(dims[0]);
    H5G_info_t gi;
    H5Gget_info(g.get(), &gi);
    std::vector<std::pair<std::string, std::vector<double>>> columns;
    for (hsize_t i = 0; i < gi.nlinks; ++i) {
        char name[256] = {};
        if (H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name - 1, H5P_DEFAULT) < 0)
            continue;
        if (std::string(name) == "step") continue;
        Handle ds(H5Dopen2(g.get(), name, H5P_DEFAULT), H5Dclose);
        if (!ds.valid()) continue;
        auto d = detail::extent(ds.get(), true);
        if (d.size() != 1) continue;
        n = std::min<int64_t>(n, int64_t(d[0]));
        columns.push_back({name, {}});
    }
    if (!readRows(stepSet.get(), H5T_NATIVE_INT64, 0, n, out.steps)) return bad(m->h5path, "/scalars/step is unreadable");
    for (auto& [name, values] : columns) {
        Handle ds(H5Dopen2(g.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
        if (!readRows(ds.get(), H5T_NATIVE_DOUBLE, 0, n, values)) return bad(m->h5path, "/scalars/" + name + " is unreadable");
        out.names.push_back(name);
        out.values.push_back(std::move(values));
    }
    return out;
}

Expected<Series> RunReader::series(int layer, int64_t neuron, Kind kind, int statistic, int maxPoints) const {
    if (layer < 0 || size_t(layer) >= m->sets.size())
        return bad(m->h5path, "no layer " + std::to_string(layer));
    const RunLayer& l = m->layers[size_t(layer)];
    if (neuron < 0 || neuron >= l.neurons)
        return bad(m->h5path, "layer '" + l.name + "' has " + std::to_string(l.neurons) + " neurons, not " +
                                  std::to_string(neuron + 1));
    if (statistic < 0 || statistic >= kNeuronStats) return bad(m->h5path, "no statistic " + std::to_string(statistic));
    h5::QuietErrors quiet;
    const auto& s = m->sets[size_t(layer)];
    const int64_t n = m->committed;
    maxPoints = std::max(maxPoints, 1);
    Series out;
    const int p = kind == Kind::Activation ? 0 : 1;
    const bool pyramided = (p == 0 && statistic == 0) || (p == 1 && statistic == 1);
    // The finest pyramid level that fits in maxPoints (the coarsest there is when none does); every snapshot
    // when the run is short enough or the statistic has no pyramid.
    int level = 0;
    hid_t levelSet = -1;
    if (pyramided && n > maxPoints)
        for (const auto& [k, h] : s.pyramid[p]) {
            level = k;
            levelSet = h.get();
            if ((n >> k) <= maxPoints) break;
        }
    if (level == 0) {
        std::vector<float> v;
        if (!readColumn(kind == Kind::Activation ? s.activation.get() : s.gradient.get(), n, hsize_t(statistic),
                        hsize_t(neuron), v))
            return bad(m->h5path, "cannot read the series of " + l.name + ":" + std::to_string(neuron));
        out.steps = m->stepValues;
        out.min = v;
        out.max = v;
        out.mean = std::move(v);
        return out;
    }
    const hid_t ds = levelSet;
    // Only the level read is refreshed (refresh() leaves the pyramids alone: a poll of a growing run with
    // hundreds of layers would otherwise refresh a dozen pyramid datasets per layer each time).
    const int64_t rows = std::min<int64_t>(n >> level, int64_t(detail::extent(ds, true)[0]));
    out.level = level;
    for (int a = 0; a < 3; ++a) {
        std::vector<float>& dst = a == 0 ? out.min : a == 1 ? out.max : out.mean;
        if (!readColumn(ds, rows, hsize_t(a), hsize_t(neuron), dst))
            return bad(m->h5path, "cannot read the pyramid of " + l.name);
    }
    for (int64_t j = 0; j < rows; ++j)
        out.steps.push_back(m->stepValues[size_t(j << level)]);
    return out;
}

} // namespace ts::runs

namespace ts::runs {

namespace {
// One [1 x 1 x N] slab (row `row`, element `a`) of a [rows x A x N] dataset into out (N floats).
bool readSlab(hid_t ds, int64_t row, hsize_t a, int64_t neurons, float* out) {
    auto dims = detail::extent(ds, true);
    if (dims.size() != 3 || hsize_t(row) >= dims[0] || a >= dims[1] || hsize_t(neurons) > dims[2]) return false;
    Handle file(H5Dget_space(ds), H5Sclose);
    hsize_t start[3] = {hsize_t(row), a, 0}, cnt[3] = {1, 1, hsize_t(neurons)};
    H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr);
    hsize_t total = hsize_t(neurons);
    Handle mem(H5Screate_simple(1, &total, nullptr), H5Sclose);
    return H5Dread(ds, H5T_NATIVE_FLOAT, mem.get(), file.get(), H5P_DEFAULT, out) >= 0;
}
} // namespace

Expected<LayerSeries> RunReader::layerSeries(int layer, Kind kind, int statistic, int maxPoints, bool windowMeans,
                                             int64_t maxBytes) const {
    if (layer < 0 || size_t(layer) >= m->sets.size()) return bad(m->h5path, "no layer " + std::to_string(layer));
    if (statistic < 0 || statistic >= kNeuronStats) return bad(m->h5path, "no statistic " + std::to_string(statistic));
    const RunLayer& l = m->layers[size_t(layer)];
    const auto& s = m->sets[size_t(layer)];
    const int64_t n = m->committed;
    maxPoints = std::max(maxPoints, 1);
    LayerSeries out;
    out.neurons = l.neurons;
    h5::QuietErrors quiet;
    const int p = kind == Kind::Activation ? 0 : 1;
    const bool pyramided = (p == 0 && statistic == 0) || (p == 1 && statistic == 1);
    hid_t ds = kind == Kind::Activation ? s.activation.get() : s.gradient.get();
    std::vector<int64_t> rowsToRead; // rows of ds
    hsize_t element = hsize_t(statistic);
    if (n <= maxPoints) {
        for (int64_t r = 0; r < n; ++r)
            rowsToRead.push_back(r);
    } else if (pyramided && windowMeans && !s.pyramid[p].empty()) {
        for (const auto& [k, h] : s.pyramid[p]) {
            out.level = k;
            ds = h.get();
            if ((n >> k) <= maxPoints) break;
        }
        const int64_t rows = std::min<int64_t>(n >> out.level, int64_t(detail::extent(ds, true)[0]));
        for (int64_t j = 0; j < rows; ++j)
            rowsToRead.push_back(j);
        element = 2; // the windows' means
    } else {
        for (int64_t j = 0; j < maxPoints; ++j)
            rowsToRead.push_back(maxPoints == 1 ? n - 1 : j * (n - 1) / (maxPoints - 1));
    }
    const int64_t bytes = int64_t(rowsToRead.size()) * l.neurons * int64_t(sizeof(float));
    if (bytes > maxBytes)
        return bad(m->h5path, "the series of layer '" + l.name + "' (" + std::to_string(l.neurons) + " neurons x " +
                                  std::to_string(rowsToRead.size()) + " points) would take " +
                                  std::to_string(bytes >> 20) + " MiB, over the " + std::to_string(maxBytes >> 20) +
                                  " MiB allowed: ask for fewer points");
    out.values.resize(rowsToRead.size() * size_t(l.neurons));
    for (size_t t = 0; t < rowsToRead.size(); ++t) {
        if (!readSlab(ds, rowsToRead[t], element, l.neurons, out.values.data() + t * size_t(l.neurons)))
            return bad(m->h5path, "cannot read the series of layer '" + l.name + "' (damaged chunk at row " +
                                      std::to_string(rowsToRead[t]) + ")");
        out.steps.push_back(m->stepValues[size_t(rowsToRead[t] << out.level)]);
    }
    return out;
}

} // namespace ts::runs
