// Anomaly detection on logged scalars: robust z-scores against a trailing median/MAD for spikes, trailing
// NaN runs longer than the series' own logging cadence for non-finite onsets, prefix sums for plateaus.
#include "engine/dynamics/anomalies.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>

namespace ts::dynamics {

const char* anomalyKindName(AnomalyKind k) {
    switch (k) {
    case AnomalyKind::Spike: return "spike";
    case AnomalyKind::NonFinite: return "non-finite";
    case AnomalyKind::Plateau: return "plateau";
    case AnomalyKind::Overfitting: return "overfitting";
    case AnomalyKind::Underfitting: return "underfitting";
    }
    return "?";
}

namespace {

std::string format(const char* fmt, auto... args) {
    char buf[256];
    std::snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

// Rows of the finite values, in order.
std::vector<size_t> finiteRows(std::span<const double> v) {
    std::vector<size_t> rows;
    for (size_t i = 0; i < v.size(); ++i)
        if (std::isfinite(v[i])) rows.push_back(i);
    return rows;
}

double median(std::vector<double> v) {
    if (v.empty()) return std::nan("");
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + long(mid), v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + long(mid)));
    return m;
}

int64_t stepAt(const ScalarSeries& s, size_t row) {
    return row < s.steps.size() ? s.steps[row] : int64_t(row);
}

Anomaly make(AnomalyKind kind, const ScalarSeries& s, size_t first, size_t last, double value, std::string message) {
    Anomaly a;
    a.kind = kind;
    a.series = s.name;
    a.first = first;
    a.last = last;
    a.step = stepAt(s, first);
    a.endStep = stepAt(s, last);
    a.value = value;
    a.message = std::move(message);
    return a;
}

// Moving average of xs over a centred window of `half` on each side (shrinking at the ends).
std::vector<double> smooth(const std::vector<double>& xs, size_t half) {
    std::vector<double> prefix(xs.size() + 1, 0.0), out(xs.size());
    for (size_t i = 0; i < xs.size(); ++i)
        prefix[i + 1] = prefix[i] + xs[i];
    for (size_t i = 0; i < xs.size(); ++i) {
        const size_t a = i >= half ? i - half : 0, b = std::min(xs.size(), i + half + 1);
        out[i] = (prefix[b] - prefix[a]) / double(b - a);
    }
    return out;
}

bool isLossName(const std::string& n) {
    return n == "loss" || n == "train_loss";
}
bool isValLossName(const std::string& n) {
    return n == "val_loss" || n == "validation_loss";
}
bool isScheduleName(const std::string& n) {
    return n == "lr" || n == "learning_rate" || n.find("lr") == 0 || n == "epoch" || n == "step";
}

} // namespace

std::vector<Anomaly> findSpikes(const ScalarSeries& s, const AnomalyOptions& o) {
    std::vector<Anomaly> out;
    const auto rows = finiteRows(s.values);
    const size_t w = size_t(std::max(4, o.spikeWindow));
    std::deque<double> window;
    // Current excursion: rows flagged back to back (in finite order) form one anomaly at the largest |z|.
    bool open = false;
    size_t first = 0, last = 0, peak = 0;
    double peakZ = 0;
    auto close = [&]() {
        if (!open) return;
        const double v = s.values[peak];
        out.push_back(make(AnomalyKind::Spike, s, first, last, v,
                           format("%s spikes to %.4g at step %lld (%.0f robust deviations from the steps before)",
                                  s.name.c_str(), v, (long long)stepAt(s, peak), peakZ)));
        out.back().step = stepAt(s, peak);
        open = false;
    };
    for (size_t k = 0; k < rows.size(); ++k) {
        const double x = s.values[rows[k]];
        bool flagged = false;
        double z = 0;
        if (window.size() >= w / 2) {
            std::vector<double> base(window.begin(), window.end());
            const double m = median(base);
            for (double& b : base)
                b = std::fabs(b - m);
            const double mad = median(base);
            const double scale = std::max({1.4826 * mad, 1e-3 * std::fabs(m), 1e-12});
            z = std::fabs(x - m) / scale;
            flagged = z > o.spikeThreshold;
        }
        if (flagged) {
            if (!open) {
                open = true;
                first = rows[k];
                peakZ = 0;
            }
            last = rows[k];
            if (z > peakZ) {
                peakZ = z;
                peak = rows[k];
            }
        } else {
            close();
        }
        // Spike values stay out of the baseline, so an excursion of several points is measured against
        // the steps before it.
        if (!flagged) {
            window.push_back(x);
            if (window.size() > w) window.pop_front();
        }
    }
    close();
    return out;
}

std::vector<Anomaly> findNonFinite(const ScalarSeries& s) {
    const auto rows = finiteRows(s.values);
    for (size_t i = 0; i < s.values.size(); ++i)
        if (std::isinf(s.values[i]))
            return {make(AnomalyKind::NonFinite, s, i, s.values.size() - 1, s.values[i],
                         format("%s is %s at step %lld", s.name.c_str(), s.values[i] > 0 ? "+Inf" : "-Inf",
                                (long long)stepAt(s, i)))};
    if (rows.size() < 2 || rows.back() + 1 >= s.values.size()) return {};
    // The series' cadence: the median gap between its finite values. A trailing NaN stretch longer than
    // two gaps (and at least 3 rows) is a value that became NaN, not the end of a sparse log.
    std::vector<double> gaps;
    for (size_t k = 1; k < rows.size(); ++k)
        gaps.push_back(double(rows[k] - rows[k - 1]));
    const double gap = median(gaps);
    const size_t onset = rows.back() + size_t(gap);
    const size_t trailing = s.values.size() - 1 - rows.back();
    if (double(trailing) <= 2 * gap || trailing < 3 || onset >= s.values.size()) return {};
    return {make(AnomalyKind::NonFinite, s, onset, s.values.size() - 1, std::nan(""),
                 format("%s is NaN from step %lld on (last finite value %.4g at step %lld)", s.name.c_str(),
                        (long long)stepAt(s, onset), s.values[rows.back()], (long long)stepAt(s, rows.back())))};
}

std::vector<Anomaly> findPlateaus(const ScalarSeries& s, const AnomalyOptions& o) {
    std::vector<Anomaly> out;
    const auto rows = finiteRows(s.values);
    const size_t n = rows.size();
    const size_t len = std::max<size_t>(16, size_t(o.plateauMinFraction * double(n)));
    if (n < len + 1) return out;
    // Prefix sums of x, t x (t = position among the finite values) for least-squares slopes of any window.
    std::vector<double> prefix(n + 1, 0.0), prefixT(n + 1, 0.0);
    for (size_t k = 0; k < n; ++k) {
        prefix[k + 1] = prefix[k] + s.values[rows[k]];
        prefixT[k + 1] = prefixT[k] + double(k) * s.values[rows[k]];
    }
    auto mean = [&](size_t a, size_t b) { return (prefix[b] - prefix[a]) / double(b - a); };
    // A window [k, k + len) is flat when its fitted trend changes the loss by less than the tolerance relative
    // to the window's level (a regression, so noise does not pass for a trend or hide one); flat windows that
    // touch merge into one plateau.
    std::vector<char> covered(n, 0);
    const double L = double(len), sumT = L * (L - 1) / 2, sumTT = (L - 1) * L * (2 * L - 1) / 6;
    for (size_t k = 0; k + len <= n; ++k) {
        const double sx = prefix[k + len] - prefix[k];
        const double stx = prefixT[k + len] - prefixT[k] - double(k) * sx; // sum of (t - k) x
        const double slope = (L * stx - sumT * sx) / (L * sumTT - sumT * sumT);
        const double level = sx / L;
        if (std::fabs(slope) * (L - 1) <= o.plateauTolerance * std::max(std::fabs(level), 1e-12))
            std::fill(covered.begin() + long(k), covered.begin() + long(k + len), 1);
    }
    for (size_t k = 0; k < n;) {
        if (!covered[k]) {
            ++k;
            continue;
        }
        size_t e = k;
        while (e + 1 < n && covered[e + 1])
            ++e;
        const double level = mean(k, e + 1);
        out.push_back(make(AnomalyKind::Plateau, s, rows[k], rows[e], level,
                           format("%s is flat at %.4g from step %lld to %lld", s.name.c_str(), level,
                                  (long long)stepAt(s, rows[k]), (long long)stepAt(s, rows[e]))));
        k = e + 1;
    }
    return out;
}

std::vector<Anomaly> findFitProblems(const ScalarSeries& train, const ScalarSeries& val, const AnomalyOptions& o) {
    std::vector<Anomaly> out;
    const auto vr = finiteRows(val.values), tr = finiteRows(train.values);
    if (vr.size() < 4 || tr.size() < 8) return out;
    // The training loss at a row: its smoothed value at the nearest finite row at or before it.
    std::vector<double> tv;
    for (size_t r : tr)
        tv.push_back(train.values[r]);
    const auto ts = smooth(tv, std::max<size_t>(1, tv.size() / 50));
    auto trainAt = [&](size_t row) {
        auto it = std::upper_bound(tr.begin(), tr.end(), row);
        const size_t k = it == tr.begin() ? 0 : size_t(it - tr.begin()) - 1;
        return ts[k];
    };
    std::vector<double> vv;
    for (size_t r : vr)
        vv.push_back(val.values[r]);
    const auto vs = smooth(vv, 1);
    const size_t best = size_t(std::min_element(vs.begin(), vs.end()) - vs.begin());
    const double vmin = vs[best];
    for (size_t k = best + 1; k < vs.size(); ++k) {
        if (vs[k] > vmin + o.overfitRise * std::fabs(vmin) && trainAt(vr[k]) < trainAt(vr[best])) {
            out.push_back(make(AnomalyKind::Overfitting, val, vr[best], vr.back(), vmin,
                               format("overfitting: %s has risen %.0f%% above its minimum %.4g (step %lld) while "
                                      "%s kept falling",
                                      val.name.c_str(), 100.0 * (vs[k] - vmin) / std::max(std::fabs(vmin), 1e-12),
                                      vmin, (long long)stepAt(val, vr[best]), train.name.c_str())));
            break;
        }
    }
    // Underfitting over the last quarter of the training log.
    const size_t n = ts.size(), qs = n - n / 4;
    const double start = smooth(tv, n / 40 + 1)[0], end = ts[n - 1];
    const double lastQuarterChange = std::fabs(ts[qs] - end) / std::max(std::fabs(ts[qs]), 1e-12);
    const double vend = vs.back();
    if (lastQuarterChange < 0.01 && end > 0.5 * start && std::fabs(vend - end) <= 0.05 * std::fabs(end))
        out.push_back(make(AnomalyKind::Underfitting, train, tr[qs], tr.back(), end,
                           format("underfitting: %s stopped falling at %.4g (it started at %.4g) and %s is as high",
                                  train.name.c_str(), end, start, val.name.c_str())));
    return out;
}

std::vector<Anomaly> detectAnomalies(std::span<const int64_t> steps, std::span<const NamedColumn> columns,
                                     const AnomalyOptions& o) {
    std::vector<Anomaly> out;
    const NamedColumn *loss = nullptr, *val = nullptr;
    for (const auto& c : columns) {
        ScalarSeries s{c.name, steps, c.values};
        if (isLossName(c.name) && !loss) loss = &c;
        if (isValLossName(c.name) && !val) val = &c;
        for (auto& a : findNonFinite(s))
            out.push_back(std::move(a));
        if (!isScheduleName(c.name))
            for (auto& a : findSpikes(s, o))
                out.push_back(std::move(a));
    }
    if (loss)
        for (auto& a : findPlateaus({loss->name, steps, loss->values}, o))
            out.push_back(std::move(a));
    if (loss && val)
        for (auto& a : findFitProblems({loss->name, steps, loss->values}, {val->name, steps, val->values}, o))
            out.push_back(std::move(a));
    std::stable_sort(out.begin(), out.end(), [](const Anomaly& a, const Anomaly& b) { return a.first < b.first; });
    return out;
}

} // namespace ts::dynamics
