// Loading the dynamics views from the run store. Section index: overview (scalars, summaries, anomalies),
// layer series, distributions.
#include "engine/dynamics/run_dynamics.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace ts::dynamics {

namespace {
double msSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Snapshot indices [0, n) spread evenly, at most maxRows, with the first and the last.
std::vector<int64_t> spread(int64_t n, int maxRows) {
    std::vector<int64_t> out;
    if (n <= 0) return out;
    const int64_t k = std::min<int64_t>(n, std::max(maxRows, 1));
    for (int64_t j = 0; j < k; ++j)
        out.push_back(k == 1 ? n - 1 : j * (n - 1) / (k - 1));
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

// Summary rows of a layer: stored ones, or made from the per-neuron statistics (files without `summary`).
Expected<std::vector<SummaryRow>> layerSummaries(const runs::RunReader& r, int layer) {
    const int64_t n = r.snapshots();
    std::vector<SummaryRow> out;
    auto stored = r.summaries(layer, 0, n);
    if (!stored) return stored.error();
    if (stored->has_value()) {
        for (const auto& row : **stored)
            out.push_back(row.v);
        return out;
    }
    const int64_t neurons = r.layers()[size_t(layer)].neurons;
    for (int64_t s = 0; s < n; ++s) {
        auto a = r.neuronStats(layer, s, runs::Kind::Activation);
        if (!a) return a.error();
        auto g = r.neuronStats(layer, s, runs::Kind::Gradient);
        if (!g) return g.error();
        out.push_back(runs::summarize(a->data(), neurons, g->data(), neurons, neurons, r.rows(layer, s)).v);
    }
    return out;
}
} // namespace

int64_t RunOverview::snapshotAt(int64_t step) const {
    auto it = std::upper_bound(snapshotSteps.begin(), snapshotSteps.end(), step);
    return it == snapshotSteps.begin() ? 0 : int64_t(it - snapshotSteps.begin()) - 1;
}

// --- Overview ---
Expected<RunOverview> loadOverview(const runs::RunReader& r, const AnomalyOptions& o) {
    RunOverview ov;
    auto sc = r.scalars();
    if (!sc) return sc.error();
    ov.scalarSteps = sc->steps;
    ov.scalarNames = sc->names;
    ov.scalarValues = sc->values;
    std::vector<NamedColumn> cols;
    for (size_t i = 0; i < ov.scalarNames.size(); ++i)
        cols.push_back({ov.scalarNames[i], ov.scalarValues[i]});
    ov.anomalies = detectAnomalies(ov.scalarSteps, cols, o);
    ov.snapshotSteps = r.steps();
    for (size_t li = 0; li < r.layers().size(); ++li) {
        const auto& rl = r.layers()[li];
        RunOverview::Layer l{rl.name, rl.type, rl.neurons, rl.params, {}, -1, rl.matrixShape, rl.inputs};
        auto rows = layerSummaries(r, int(li));
        if (!rows) return rows.error();
        l.summary = std::move(rows.value());
        for (size_t s = 0; s < l.summary.size(); ++s)
            if (l.summary[s][0] > 0 || l.summary[s][1] > 0) {
                l.firstNonFinite = int64_t(s);
                break;
            }
        ov.layers.push_back(std::move(l));
    }
    // Layers' non-finite onsets, earliest first: the first layer to break is where to look.
    std::vector<size_t> broken;
    for (size_t li = 0; li < ov.layers.size(); ++li)
        if (ov.layers[li].firstNonFinite >= 0) broken.push_back(li);
    std::stable_sort(broken.begin(), broken.end(), [&](size_t a, size_t b) {
        return ov.layers[a].firstNonFinite < ov.layers[b].firstNonFinite;
    });
    for (size_t k = 0; k < broken.size() && k < 8; ++k) {
        const auto& l = ov.layers[broken[k]];
        const int64_t s = l.firstNonFinite;
        Anomaly a;
        a.kind = AnomalyKind::NonFinite;
        a.series = l.name;
        const int64_t step = ov.snapshotSteps[size_t(s)];
        a.step = a.endStep = step;
        // The scalar row of that step, so a click focuses the same place as the scalars' anomalies.
        a.first = a.last = size_t(std::lower_bound(ov.scalarSteps.begin(), ov.scalarSteps.end(), step) -
                                  ov.scalarSteps.begin());
        a.value = l.summary[size_t(s)][0] > 0 ? l.summary[size_t(s)][0] : l.summary[size_t(s)][1];
        a.message = std::string(k == 0 ? "first layer with " : "then ") +
                    (l.summary[size_t(s)][0] > 0 ? "non-finite activations: " : "non-finite gradients: ") + l.name +
                    " at step " + std::to_string(step);
        ov.anomalies.push_back(std::move(a));
    }
    return ov;
}

// --- Layer series ---
Expected<LayerSeriesView> loadLayerSeries(const runs::RunReader& r, int layer, runs::Kind kind, int statistic,
                                          const SeriesViewOptions& o) {
    if (layer < 0 || size_t(layer) >= r.layers().size())
        return makeError(ErrorKind::Usage, "no layer " + std::to_string(layer) + " in " + r.path());
    LayerSeriesView v;
    v.layer = layer;
    v.name = r.layers()[size_t(layer)].name;
    v.kind = kind;
    v.statistic = statistic;
    auto t0 = std::chrono::steady_clock::now();
    auto ls = r.layerSeries(layer, kind, statistic, o.maxPoints, true, o.maxBytes);
    if (!ls) return ls.error();
    v.level = ls->level;
    v.steps = std::move(ls->steps);
    v.matrix.points = int64_t(v.steps.size());
    v.matrix.series = ls->neurons;
    v.matrix.values = std::move(ls->values);
    v.readMs = msSince(t0);
    t0 = std::chrono::steady_clock::now();
    // A whole number of segments per column (else columns holding one more point than their neighbours draw
    // as brighter stripes), or of columns per segment when the series have fewer segments than o.width
    // columns (else the image would be as coarse as the series: one block per segment).
    int width = o.width;
    if (v.matrix.points > 1) {
        const int64_t segments = v.matrix.points - 1;
        width = segments >= o.width ? int(segments / (segments / o.width))                    // o.width .. 2 o.width
                                    : int(segments * ((o.width + segments - 1) / segments)); // o.width .. 2 o.width
    }
    v.density = densityImage(v.matrix, width, o.height, finiteRange(v.matrix));
    v.densityMs = msSince(t0);
    t0 = std::chrono::steady_clock::now();
    v.sample = blueNoiseSample(v.matrix, v.density, o.sampling);
    v.sampleMs = msSince(t0);
    return v;
}

// --- Distributions ---
Expected<LayerDistributions> loadDistributions(const runs::RunReader& r, int layer, int maxRows, int bins,
                                               const std::vector<int64_t>* atSteps) {
    if (layer < 0 || size_t(layer) >= r.layers().size())
        return makeError(ErrorKind::Usage, "no layer " + std::to_string(layer) + " in " + r.path());
    LayerDistributions d;
    d.layer = layer;
    d.name = r.layers()[size_t(layer)].name;
    std::vector<int64_t> snaps;
    if (atSteps) {
        const auto& steps = r.steps();
        for (int64_t s : *atSteps) {
            if (steps.empty()) break;
            auto it = std::upper_bound(steps.begin(), steps.end(), s);
            snaps.push_back(it == steps.begin() ? 0 : int64_t(it - steps.begin()) - 1);
        }
    } else {
        snaps = spread(r.snapshots(), maxRows);
    }
    // Weights: the stored histograms (each over its own range) moved onto the widest range.
    std::vector<runs::ParamHistogram> hists;
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t s : snaps) {
        auto h = r.paramHistogram(layer, s, false);
        if (!h) return h.error();
        hists.push_back(std::move(h.value()));
        uint64_t total = 0;
        for (auto c : hists.back().counts)
            total += c;
        if (total > 0 && std::isfinite(hists.back().lo) && std::isfinite(hists.back().hi)) {
            lo = std::min(lo, hists.back().lo);
            hi = std::max(hi, hists.back().hi);
        }
    }
    if (lo < hi) {
        d.weights.bins = bins;
        d.weights.lo = lo;
        d.weights.hi = hi;
        for (size_t k = 0; k < snaps.size(); ++k) {
            std::vector<double> c(hists[k].counts.begin(), hists[k].counts.end());
            auto row = rebin(c, hists[k].lo, hists[k].hi, bins, lo, hi);
            d.weights.steps.push_back(r.steps()[size_t(snaps[k])]);
            d.weights.counts.insert(d.weights.counts.end(), row.begin(), row.end());
        }
    }
    // Activations and gradients: the neurons' mean at each chosen snapshot, on the range of all of them.
    for (int g = 0; g < 2; ++g) {
        const auto kind = g ? runs::Kind::Gradient : runs::Kind::Activation;
        const int64_t neurons = r.layers()[size_t(layer)].neurons;
        std::vector<std::vector<float>> means;
        float vlo = std::numeric_limits<float>::infinity(), vhi = -vlo;
        for (int64_t s : snaps) {
            auto st = r.neuronStats(layer, s, kind);
            if (!st) return st.error();
            means.emplace_back(st->begin(), st->begin() + neurons); // row 0: mean
            for (float v : means.back())
                if (std::isfinite(v)) {
                    vlo = std::min(vlo, v);
                    vhi = std::max(vhi, v);
                }
        }
        if (!(vlo <= vhi)) continue;
        if (vlo == vhi) {
            vlo -= 0.5f;
            vhi += 0.5f;
        }
        Ridgelines& out = g ? d.gradients : d.activations;
        // Histograms over neurons: no more bins than the neurons can fill (about 2 sqrt(N)).
        const int nb = std::clamp(int(2.0 * std::sqrt(double(neurons))), std::min(bins, 12), bins);
        out.bins = nb;
        out.lo = vlo;
        out.hi = vhi;
        for (size_t k = 0; k < snaps.size(); ++k) {
            auto row = histogram(means[k], nb, vlo, vhi);
            out.steps.push_back(r.steps()[size_t(snaps[k])]);
            out.counts.insert(out.counts.end(), row.begin(), row.end());
        }
    }
    return d;
}

int findLayer(const runs::RunReader& r, const std::string& name) {
    int found = -1;
    for (size_t i = 0; i < r.layers().size(); ++i) {
        if (r.layers()[i].name == name) return int(i);
        if (r.layers()[i].name.find(name) != std::string::npos) found = found == -1 ? int(i) : -2;
    }
    return found < 0 ? -1 : found;
}

} // namespace ts::dynamics
