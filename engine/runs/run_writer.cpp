// RunWriter: appends snapshots to RUN/run.h5 with the commit protocol of docs/RUN_FORMAT.md (data rows,
// flush, then the /steps row, flush), builds the time pyramids from rows read back, keeps no per-step state.
#include "engine/runs/run_store.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/core/log.hpp"
#include "engine/runs/h5_detail.hpp"

namespace ts::runs {

using detail::Handle;
namespace fs = std::filesystem;

const char* kindName(Kind k) {
    return k == Kind::Activation ? "activation" : "gradient";
}

LayerSummaryRow summarize(const float* act, int64_t actStride, const float* grad, int64_t gradStride, int64_t n,
                          int64_t rows) {
    LayerSummaryRow r;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.v.fill(nan);
    auto stat = [](const float* base, int64_t stride, int s, int64_t i) { return base[int64_t(s) * stride + i]; };
    if (act) {
        double nonFinite = 0, dead = 0, badNeurons = 0, sumMean = 0, sumSq = 0, finite = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double bad = double(stat(act, actStride, 6, i)) + stat(act, actStride, 7, i);
            nonFinite += bad;
            badNeurons += bad > 0;
            dead += stat(act, actStride, 5, i) >= 1.0f;
            const double m = stat(act, actStride, 0, i), var = stat(act, actStride, 2, i);
            if (std::isfinite(m) && std::isfinite(var)) sumMean += m, sumSq += var + m * m, ++finite;
        }
        r.v[0] = nonFinite;
        r.v[2] = n ? dead / double(n) : nan;
        r.v[4] = finite ? sumMean / finite : nan;
        r.v[5] = finite ? std::sqrt(sumSq / finite) : nan;
        r.v[7] = badNeurons;
    }
    if (grad) {
        double nonFinite = 0, sq = 0, sumAbs = 0, finite = 0;
        for (int64_t i = 0; i < n; ++i) {
            const double nans = stat(grad, gradStride, 6, i), infs = stat(grad, gradStride, 7, i);
            nonFinite += nans + infs;
            const double cnt = double(rows) - nans - infs;
            const double m = stat(grad, gradStride, 0, i), var = stat(grad, gradStride, 2, i);
            const double ma = stat(grad, gradStride, 1, i);
            if (cnt > 0 && std::isfinite(m) && std::isfinite(var)) sq += (var + m * m) * cnt;
            if (std::isfinite(ma)) sumAbs += ma, ++finite;
        }
        r.v[1] = nonFinite;
        r.v[3] = finite ? std::sqrt(sq) : nan;
        r.v[6] = finite ? sumAbs / finite : nan;
    }
    return r;
}

LayerRecord::LayerRecord() {
    weight.v.fill(std::numeric_limits<double>::quiet_NaN());
    weightGrad.v.fill(std::numeric_limits<double>::quiet_NaN());
}

namespace {

// Time pyramids: levels L4, L8, ..., L24 (windows of 16, 256, ... snapshots: each level's rows are 16 rows of the
// level below), created up front (SWMR creates nothing later). Every 4th level keeps them at about a fifth of
// one statistic's storage while a series of any length reads at most about 16 x its points.
constexpr int kPyramidStride = 4;
constexpr int kPyramidFanout = 1 << kPyramidStride;
constexpr int kPyramidLevels = 6;

// Running min, max and mean of finite values per neuron.
struct Accumulator {
    std::vector<float> mn, mx, sum, cnt;
    void reset(size_t n) {
        mn.assign(n, INFINITY);
        mx.assign(n, -INFINITY);
        sum.assign(n, 0.0f);
        cnt.assign(n, 0.0f);
    }
    void add(size_t i, float lo, float hi, float mean) {
        if (std::isfinite(lo)) mn[i] = std::min(mn[i], lo);
        if (std::isfinite(hi)) mx[i] = std::max(mx[i], hi);
        if (std::isfinite(mean)) {
            sum[i] += mean;
            cnt[i] += 1.0f;
        }
    }
    // [min | max | mean] rows; NaN where no finite value was seen.
    void finish(float* out) const {
        const size_t n = mn.size();
        for (size_t i = 0; i < n; ++i) {
            const bool any = cnt[i] > 0.0f;
            out[i] = std::isfinite(mn[i]) ? mn[i] : NAN;
            out[n + i] = std::isfinite(mx[i]) ? mx[i] : NAN;
            out[2 * n + i] = any ? sum[i] / cnt[i] : NAN;
        }
    }
};
constexpr const char* kPyramids[2] = {"activation_mean", "gradient_mean_abs"};

std::string layerGroupName(size_t i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04zu", i);
    return buf;
}

std::string isoNow() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// run.json, written under a temporary name and renamed.
bool writeRunJson(const std::string& dir, const RunInfo& info, const std::string& created, bool closed) {
    nlohmann::json j;
    j["format"] = "tensorscape-run";
    j["version"] = kFormatVersion;
    j["writer"] = info.writer;
    j["created"] = created;
    j["model"] = info.model;
    j["every"] = info.every;
    j["world_size"] = info.worldSize;
    if (closed) j["closed"] = true;
    const std::string path = dir + "/run.json", tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        out << j.dump(2) << "\n";
        out.flush();
        if (!out) return false;
    }
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Neurons per chunk of the per-neuron datasets (64 KiB of float32); layers of at most kSmallLayer neurons keep
// all statistics of a row in one chunk.
constexpr hsize_t kNeuronChunk = 16384, kSmallLayer = 2048;

// An extendible dataset with one chunk per row block, shuffle + deflate 1.
Handle makeExtendible(hid_t loc, const char* name, hid_t type, std::vector<hsize_t> rowShape,
                      std::vector<hsize_t> chunk, bool compress) {
    std::vector<hsize_t> dims{0}, maxDims{H5S_UNLIMITED};
    for (hsize_t d : rowShape) {
        dims.push_back(d);
        maxDims.push_back(d);
    }
    Handle space(H5Screate_simple(int(dims.size()), dims.data(), maxDims.data()), H5Sclose);
    Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data());
    if (compress) { // shuffle + deflate: every HDF5 build and every h5py reads it without plugins
        H5Pset_shuffle(dcpl.get());
        H5Pset_deflate(dcpl.get(), 1);
    }
    if (H5Tget_class(type) == H5T_FLOAT) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        H5Pset_fill_value(dcpl.get(), H5T_NATIVE_DOUBLE, &nan);
    }
    return Handle(H5Dcreate2(loc, name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), H5Dclose);
}

// Grows `ds` to `rows` rows and writes row `row` from `data` (memory type `memType`). `memRow` describes the
// memory layout of the row when it is not contiguous: {outer, stride} selects [outer x inner] out of
// [outer x stride].
bool writeRow(hid_t ds, hid_t memType, int64_t row, const void* data, hsize_t stride = 0) {
    auto dims = detail::extent(ds);
    if (dims.empty()) return false;
    if (dims[0] < hsize_t(row + 1)) {
        dims[0] = hsize_t(row + 1);
        if (H5Dset_extent(ds, dims.data()) < 0) return false;
    }
    Handle file(H5Dget_space(ds), H5Sclose);
    std::vector<hsize_t> start(dims.size(), 0), count(dims);
    start[0] = hsize_t(row);
    count[0] = 1;
    H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    Handle mem;
    if (stride > 0 && dims.size() == 3) {
        hsize_t memDims[2] = {dims[1], stride};
        mem = Handle(H5Screate_simple(2, memDims, nullptr), H5Sclose);
        hsize_t ms[2] = {0, 0}, mc[2] = {dims[1], dims[2]};
        H5Sselect_hyperslab(mem.get(), H5S_SELECT_SET, ms, nullptr, mc, nullptr);
    } else {
        std::vector<hsize_t> memDims(count.begin() + 1, count.end());
        if (memDims.empty()) memDims.push_back(1);
        mem = Handle(H5Screate_simple(int(memDims.size()), memDims.data(), nullptr), H5Sclose);
    }
    return H5Dwrite(ds, memType, mem.get(), file.get(), H5P_DEFAULT, data) >= 0;
}

// Reads row `row` of a [rows x A x N] float dataset into out (A x N floats).
bool readRow(hid_t ds, int64_t row, std::vector<float>& out) {
    auto dims = detail::extent(ds);
    if (dims.size() != 3 || dims[0] <= hsize_t(row)) return false;
    Handle file(H5Dget_space(ds), H5Sclose);
    hsize_t start[3] = {hsize_t(row), 0, 0}, count[3] = {1, dims[1], dims[2]};
    H5Sselect_hyperslab(file.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    hsize_t memDims[1] = {dims[1] * dims[2]};
    Handle mem(H5Screate_simple(1, memDims, nullptr), H5Sclose);
    out.resize(size_t(memDims[0]));
    return H5Dread(ds, H5T_NATIVE_FLOAT, mem.get(), file.get(), H5P_DEFAULT, out.data()) >= 0;
}


} // namespace

struct RunWriter::Impl {
    WriterOptions options;
    std::string created, h5path;
    Handle file;
    bool begun = false, closed = false;
    std::vector<RunLayer> layers;
    struct LayerSets {
        Handle group, activation, gradient, rows, weight, weightGrad, weightHist, weightHistRange,
            weightGradHist, weightGradHistRange, summary, matrix;
        Handle pyramid[2][kPyramidLevels];
        Accumulator accumulator[2]; // the first pyramid level's window in progress
    };
    std::vector<LayerSets> sets;
    Handle steps, scalarStep;
    std::vector<std::string> scalarNames;
    std::vector<Handle> scalarSets;
    int64_t snapshots = 0, scalarRows = 0;
    std::vector<float> nanRow, rowA, pyr;
    Accumulator upper;
    bool warnedUnknown = false;

    Error fail(const std::string& what) const { return makeError(ErrorKind::Failed, h5path + ": " + what); }

    bool flush() { return H5Fflush(file.get(), H5F_SCOPE_GLOBAL) >= 0; }

    Status createLayer(size_t i, const RunLayer& l, hid_t layersGroup) {
        LayerSets s;
        const std::string gname = layerGroupName(i);
        s.group = Handle(H5Gcreate2(layersGroup, gname.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        if (!s.group.valid()) return fail("cannot create layer group " + gname);
        const hid_t g = s.group.get();
        if (!detail::writeStringAttr(g, "name", l.name) || !detail::writeStringAttr(g, "type", l.type) ||
            !detail::writeIntsAttr(g, "shape", l.shape) || !detail::writeIntAttr(g, "neurons", l.neurons) ||
            !detail::writeIntAttr(g, "params", l.params))
            return fail("cannot write the attributes of layer " + l.name);
        const hsize_t n = hsize_t(std::max<int64_t>(l.neurons, 1));
        const hsize_t bins = hsize_t(std::max(options.info.histogramBins, 1));
        // One chunk per statistic (docs/RUN_FORMAT.md, Storage): a series view reads one statistic of every
        // snapshot and decompresses only that one. Small layers keep a row in one chunk (8 tiny chunks would
        // cost more to write than one saves to read).
        const hsize_t statsPerChunk = n <= kSmallLayer ? hsize_t(kNeuronStats) : 1;
        s.activation = makeExtendible(g, "activation", H5T_IEEE_F32LE, {kNeuronStats, n},
                                      {1, statsPerChunk, std::min<hsize_t>(n, kNeuronChunk)}, true);
        s.gradient = makeExtendible(g, "gradient", H5T_IEEE_F32LE, {kNeuronStats, n},
                                    {1, statsPerChunk, std::min<hsize_t>(n, kNeuronChunk)}, true);
        s.rows = makeExtendible(g, "rows", H5T_STD_I64LE, {}, {1024}, false);
        s.weight = makeExtendible(g, "weight", H5T_IEEE_F64LE, {kLayerStats}, {64, kLayerStats}, false);
        s.weightGrad = makeExtendible(g, "weight_grad", H5T_IEEE_F64LE, {kLayerStats}, {64, kLayerStats}, false);
        s.weightHist = makeExtendible(g, "weight_hist", H5T_STD_I64LE, {bins}, {16, bins}, true);
        s.weightHistRange = makeExtendible(g, "weight_hist_range", H5T_IEEE_F64LE, {2}, {256, 2}, false);
        s.weightGradHist = makeExtendible(g, "weight_grad_hist", H5T_STD_I64LE, {bins}, {16, bins}, true);
        s.weightGradHistRange = makeExtendible(g, "weight_grad_hist_range", H5T_IEEE_F64LE, {2}, {256, 2}, false);
        s.summary = makeExtendible(g, "summary", H5T_IEEE_F64LE, {kSummaryStats}, {64, kSummaryStats}, false);
        for (Handle* h : {&s.activation, &s.gradient, &s.rows, &s.weight, &s.weightGrad, &s.weightHist,
                          &s.weightHistRange, &s.weightGradHist, &s.weightGradHistRange, &s.summary})
            if (!h->valid()) return fail("cannot create the datasets of layer " + l.name);
        if (!l.inputs.empty() && !detail::writeIntsAttr(g, "inputs", l.inputs))
            return fail("cannot write the inputs of layer " + l.name);
        if (l.matrixShape.size() == 2 && l.matrixShape[0] > 0 && l.matrixShape[1] > 0) {
            // One snapshot's matrix per row, chunks of at most 65,536 weights.
            const hsize_t elems = hsize_t(l.matrixShape[0] * l.matrixShape[1]);
            if (!detail::writeIntsAttr(g, "matrix_shape", l.matrixShape)) return fail("cannot write matrix_shape of " + l.name);
            s.matrix = makeExtendible(g, "matrix", H5T_IEEE_F32LE, {elems}, {1, std::min<hsize_t>(elems, 65536)}, true);
            if (!s.matrix.valid()) return fail("cannot create the weight matrix of layer " + l.name);
        }
        Handle pyramid(H5Gcreate2(g, "pyramid", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
        for (int p = 0; p < 2; ++p) {
            Handle pg(H5Gcreate2(pyramid.get(), kPyramids[p], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
            for (int level = 0; level < kPyramidLevels; ++level) {
                const std::string name = "L" + std::to_string(kPyramidStride * (level + 1));
                s.pyramid[p][level] =
                    makeExtendible(pg.get(), name.c_str(), H5T_IEEE_F32LE, {3, n},
                                   {1, n <= kSmallLayer ? 3u : 1u, std::min<hsize_t>(n, kNeuronChunk)}, true);
                if (!s.pyramid[p][level].valid()) return fail("cannot create the pyramids of layer " + l.name);
            }
        }
        sets.push_back(std::move(s));
        return Status::ok();
    }

    // Pyramid level K (K = 4, 8, ..., 24) row j covers snapshots [j 2^K, (j+1) 2^K): min and max of the
    // finite values and the mean of the finite values (level 4, exact) or of the finite level K-4 means (above:
    // exact when every value is finite). Level 4 accumulates in memory (four floats per neuron: no read-back
    // of snapshot rows); level K > 4 reads back the 16 rows of level K-4 it covers, one at a time.
    // `current`: this snapshot's [8 x stride] statistics (nullptr: NaN).
    Status addPyramidRows(LayerSets& s, int p, int64_t committedCount, int64_t neurons, const float* current,
                          size_t stride) {
        const int stat = p == 0 ? 0 : 1; // mean of activations, mean |x| of gradients
        const size_t n = size_t(neurons);
        Accumulator& acc = s.accumulator[p];
        if (acc.mn.size() != n) acc.reset(n);
        if (current) {
            const float* v = current + size_t(stat) * stride;
            for (size_t i = 0; i < n; ++i)
                acc.add(i, v[i], v[i], v[i]);
        }
        for (int level = 0; level < kPyramidLevels; ++level) {
            const int k = kPyramidStride * (level + 1);
            const int64_t window = int64_t(1) << k;
            if (committedCount % window != 0) break;
            const int64_t j = committedCount / window - 1;
            Accumulator& w = level == 0 ? acc : upper;
            if (level > 0) {
                upper.reset(n);
                const hid_t below = s.pyramid[p][level - 1].get();
                for (int64_t r = j * kPyramidFanout; r < (j + 1) * kPyramidFanout; ++r) {
                    if (!readRow(below, r, rowA)) return fail("cannot read back pyramid rows");
                    for (size_t i = 0; i < n; ++i)
                        upper.add(i, rowA[i], rowA[n + i], rowA[2 * n + i]);
                }
            }
            pyr.resize(3 * n);
            w.finish(pyr.data());
            if (!writeRow(s.pyramid[p][level].get(), H5T_NATIVE_FLOAT, j, pyr.data()))
                return fail("cannot write a pyramid row");
            if (level == 0) acc.reset(n);
        }
        upper = {}; // scratch for levels above 4, not kept between snapshots
        return Status::ok();
    }
};

RunWriter::RunWriter() : m(std::make_unique<Impl>()) {}
RunWriter::~RunWriter() {
    if (!m->closed) (void)close();
}

Expected<std::unique_ptr<RunWriter>> RunWriter::create(const WriterOptions& o) {
    if (o.dir.empty()) return makeError(ErrorKind::Usage, "--run is empty (a folder for the run, e.g. runs/exp1)");
    std::error_code ec;
    const std::string h5 = o.dir + "/run.h5";
    if (fs::exists(h5, ec) && !o.overwrite)
        return makeError(ErrorKind::Usage, o.dir + ": already holds a run (run.h5); choose another folder");
    fs::create_directories(o.dir, ec);
    if (ec) return makeError(ErrorKind::Usage, o.dir + ": cannot create the run folder (" + ec.message() + ")");
    std::unique_ptr<RunWriter> w(new RunWriter());
    Impl& m = *w->m;
    m.options = o;
    m.h5path = h5;
    m.created = isoNow();
    h5::QuietErrors quiet;
    Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    // Paged aggregation: no metadata block smaller than 4 KiB straddles a 4 KiB page of the file. SIGKILL can
    // cut a write() between two pages (the kernel checks for it page by page); an index block that SWMR rewrites
    // in place and that straddled a page was then left half new, half old, its checksum failed, and every
    // committed row it indexed became unreadable. Within a page a block is wholly old or wholly new, and both
    // index every committed row. strace of 8,000 snapshots: no write of a block that is rewritten crosses a page
    // except the uncompressed 8 KiB chunks (/steps, rows), whose committed bytes are the same in either version.
    // Costs about 13% in file size (builtin:cnn, every step).
    Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    if (!fcpl.valid() || H5Pset_file_space_strategy(fcpl.get(), H5F_FSPACE_STRATEGY_PAGE, 0, 1) < 0 ||
        H5Pset_file_space_page_size(fcpl.get(), 4096) < 0)
        return makeError(ErrorKind::Failed, h5 + ": cannot set the file's space strategy");
    m.file = Handle(H5Fcreate(h5.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose);
    if (!m.file.valid()) return makeError(ErrorKind::Usage, h5 + ": cannot create (is the folder writable?)");
    const hid_t f = m.file.get();
    const RunInfo& info = o.info;
    if (!detail::writeStringAttr(f, "format", "tensorscape-run") || !detail::writeIntAttr(f, "version", kFormatVersion) ||
        !detail::writeStringAttr(f, "model", info.model) || !detail::writeIntAttr(f, "every", info.every) ||
        !detail::writeIntAttr(f, "world_size", info.worldSize) ||
        !detail::writeStringAttr(f, "writer", info.writer.empty() ? "cpp" : info.writer) ||
        !detail::writeIntAttr(f, "histogram_bins", info.histogramBins) ||
        (!info.inputShape.empty() && !detail::writeIntsAttr(f, "input_shape", info.inputShape)))
        return makeError(ErrorKind::Failed, h5 + ": cannot write the run's attributes");
    if (!writeRunJson(o.dir, info, m.created, false))
        return makeError(ErrorKind::Usage, o.dir + "/run.json: cannot write");
    return w;
}

bool RunWriter::begun() const {
    return m->begun;
}

Status RunWriter::begin(const std::vector<RunLayer>& layers, const std::vector<std::string>& scalarNames) {
    if (m->begun) return Status::ok();
    h5::QuietErrors quiet;
    const hid_t f = m->file.get();
    m->layers = layers;
    m->steps = makeExtendible(f, "steps", H5T_STD_I64LE, {}, {1024}, false);
    Handle scalars(H5Gcreate2(f, "scalars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    m->scalarStep = makeExtendible(scalars.get(), "step", H5T_STD_I64LE, {}, {1024}, false);
    if (!m->steps.valid() || !m->scalarStep.valid()) return m->fail("cannot create /steps");
    for (const auto& name : scalarNames) {
        if (name.empty() || name == "step" || name.find('/') != std::string::npos) continue;
        Handle ds = makeExtendible(scalars.get(), name.c_str(), H5T_IEEE_F64LE, {}, {1024}, false);
        if (!ds.valid()) return m->fail("cannot create scalar " + name);
        m->scalarNames.push_back(name);
        m->scalarSets.push_back(std::move(ds));
    }
    Handle group(H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    for (size_t i = 0; i < layers.size(); ++i)
        if (auto s = m->createLayer(i, layers[i], group.get()); !s) return s;
    if (H5Fstart_swmr_write(f) < 0) return m->fail("cannot start SWMR writing");
    m->begun = true;
    return Status::ok();
}

Status RunWriter::appendSnapshot(int64_t step, const std::vector<LayerRecord>& records) {
    if (!m->begun) return m->fail("appendSnapshot before begin");
    if (records.size() != m->layers.size())
        return m->fail("snapshot has " + std::to_string(records.size()) + " layers, the run " +
                       std::to_string(m->layers.size()));
    h5::QuietErrors quiet;
    const int64_t row = m->snapshots;
    const size_t bins = size_t(std::max(m->options.info.histogramBins, 1));
    std::vector<uint64_t> zeros(bins, 0);
    for (size_t i = 0; i < records.size(); ++i) {
        const LayerRecord& r = records[i];
        auto& s = m->sets[i];
        const int64_t n = std::max<int64_t>(m->layers[i].neurons, 1);
        if (m->nanRow.size() < size_t(kNeuronStats * n))
            m->nanRow.assign(size_t(kNeuronStats * n), std::numeric_limits<float>::quiet_NaN());
        const bool ok =
            writeRow(s.activation.get(), H5T_NATIVE_FLOAT, row, r.activation ? r.activation : m->nanRow.data(),
                     r.activation ? hsize_t(r.activationStride) : hsize_t(n)) &&
            writeRow(s.gradient.get(), H5T_NATIVE_FLOAT, row, r.gradient ? r.gradient : m->nanRow.data(),
                     r.gradient ? hsize_t(r.gradientStride) : hsize_t(n)) &&
            writeRow(s.rows.get(), H5T_NATIVE_INT64, row, &r.rows) &&
            writeRow(s.weight.get(), H5T_NATIVE_DOUBLE, row, r.weight.v.data()) &&
            writeRow(s.weightGrad.get(), H5T_NATIVE_DOUBLE, row, r.weightGrad.v.data()) &&
            writeRow(s.summary.get(), H5T_NATIVE_DOUBLE, row,
                     summarize(r.activation, r.activationStride, r.gradient, r.gradientStride, m->layers[i].neurons, r.rows)
                         .v.data());
        if (!ok) return m->fail("cannot write snapshot of step " + std::to_string(step) + " (disk full?)");
        if (s.matrix.valid()) {
            const auto& ms = m->layers[i].matrixShape;
            const size_t elems = size_t(ms[0] * ms[1]);
            if (!r.matrix && m->nanRow.size() < elems) m->nanRow.assign(elems, std::numeric_limits<float>::quiet_NaN());
            if (!writeRow(s.matrix.get(), H5T_NATIVE_FLOAT, row, r.matrix ? r.matrix : m->nanRow.data()))
                return m->fail("cannot write the weight matrix of step " + std::to_string(step) + " (disk full?)");
        }
        for (auto [hist, set, range] : {std::tuple{&r.weightHist, &s.weightHist, &s.weightHistRange},
                                        std::tuple{&r.weightGradHist, &s.weightGradHist, &s.weightGradHistRange}}) {
            std::vector<uint64_t> counts = hist->counts;
            counts.resize(bins, 0);
            const double lohi[2] = {hist->counts.empty() ? NAN : hist->lo, hist->counts.empty() ? NAN : hist->hi};
            if (!writeRow(set->get(), H5T_NATIVE_UINT64, row, counts.data()) ||
                !writeRow(range->get(), H5T_NATIVE_DOUBLE, row, lohi))
                return m->fail("cannot write histograms of step " + std::to_string(step));
        }
    }
    for (size_t i = 0; i < records.size(); ++i) {
        const LayerRecord& r = records[i];
        const int64_t n = std::max<int64_t>(m->layers[i].neurons, 1);
        if (auto st = m->addPyramidRows(m->sets[i], 0, row + 1, n, r.activation, size_t(r.activationStride)); !st)
            return st;
        if (auto st = m->addPyramidRows(m->sets[i], 1, row + 1, n, r.gradient, size_t(r.gradientStride)); !st)
            return st;
    }
    // Commit: the data is on disk before /steps says it exists.
    if (!m->flush()) return m->fail("flush failed (disk full?)");
    if (!writeRow(m->steps.get(), H5T_NATIVE_INT64, row, &step) || !m->flush())
        return m->fail("cannot commit step " + std::to_string(step));
    ++m->snapshots;
    return Status::ok();
}

Status RunWriter::appendScalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
    if (!m->begun) return Status::ok(); // scalars before the first snapshot have nowhere to go yet
    h5::QuietErrors quiet;
    const int64_t row = m->scalarRows;
    for (size_t k = 0; k < m->scalarNames.size(); ++k) {
        double v = std::numeric_limits<double>::quiet_NaN();
        for (const auto& [name, value] : values)
            if (name == m->scalarNames[k]) v = value;
        if (!writeRow(m->scalarSets[k].get(), H5T_NATIVE_DOUBLE, row, &v))
            return m->fail("cannot write scalar " + m->scalarNames[k]);
    }
    for (const auto& [name, value] : values)
        if (std::find(m->scalarNames.begin(), m->scalarNames.end(), name) == m->scalarNames.end() &&
            !m->warnedUnknown) {
            TS_LOG_WARN("run %s: scalar '%s' was not known when recording began; not stored",
                        m->options.dir.c_str(), name.c_str());
            m->warnedUnknown = true;
        }
    if (!m->flush() || !writeRow(m->scalarStep.get(), H5T_NATIVE_INT64, row, &step) || !m->flush())
        return m->fail("cannot commit scalars of step " + std::to_string(step));
    ++m->scalarRows;
    return Status::ok();
}

Status RunWriter::close() {
    if (m->closed) return Status::ok();
    m->closed = true;
    h5::QuietErrors quiet;
    bool ok = !m->file.valid() || m->flush();
    m->sets.clear();
    m->scalarSets.clear();
    m->steps.reset();
    m->scalarStep.reset();
    m->file.reset();
    ok = writeRunJson(m->options.dir, m->options.info, m->created, true) && ok;
    if (!ok) return m->fail("closing the run failed (disk full?)");
    return Status::ok();
}

} // namespace ts::runs
