// Anomalies in a run's logged scalars (snapshot level): loss spikes, the first non-finite value, plateaus,
// and over- or under-fitting from the training and validation curves. Each names the row (and step) where
// it starts so a click can focus that snapshot.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ts::dynamics {

enum class AnomalyKind { Spike, NonFinite, Plateau, Overfitting, Underfitting };
const char* anomalyKindName(AnomalyKind k);

struct Anomaly {
    AnomalyKind kind = AnomalyKind::Spike;
    std::string series;       // the scalar's name ("loss", "val_loss", ...)
    size_t first = 0, last = 0; // rows of the scalars table (inclusive)
    int64_t step = 0, endStep = 0;
    double value = 0;         // the spike's value, the plateau's level, the validation minimum, ...
    std::string message;      // one line a person reads
};

struct AnomalyOptions {
    int spikeWindow = 24;          // finite values before a point that set its baseline (median and MAD)
    double spikeThreshold = 8.0;   // robust z-score (|x - median| / (1.4826 MAD)) that makes a spike
    double plateauTolerance = 0.01; // change of the fitted trend across a plateau's length, relative to its level
    double plateauMinFraction = 0.1; // shortest plateau, as a fraction of the logged points (and >= 16)
    double overfitRise = 0.1;       // validation loss above its minimum by this fraction (and train still falling)
};

// One scalar series: values[i] logged at steps[i]; NaN where not logged (the run store's convention).
struct ScalarSeries {
    std::string name;
    std::span<const int64_t> steps;
    std::span<const double> values;
};

// Spikes of one series (both directions), merged so one excursion is one anomaly at its extreme point.
std::vector<Anomaly> findSpikes(const ScalarSeries& s, const AnomalyOptions& o = {});
// The first non-finite value: +-Inf, or NaN after finite values when the series never recovers (a NaN loss
// is stored as NaN, like a row where it was not logged).
std::vector<Anomaly> findNonFinite(const ScalarSeries& s);
// Stretches where the loss stops moving: windows (plateauMinFraction of the log) whose least-squares trend
// changes the loss by less than plateauTolerance of its level, merged.
std::vector<Anomaly> findPlateaus(const ScalarSeries& s, const AnomalyOptions& o = {});
// Overfitting: validation loss rises by overfitRise above its minimum while the training loss keeps falling
// (starts at the validation minimum). Underfitting: over the last quarter, training loss has stopped falling
// (< 1 %), is above half its starting value, and validation is within 5 % of training.
std::vector<Anomaly> findFitProblems(const ScalarSeries& train, const ScalarSeries& val, const AnomalyOptions& o = {});

// All of the above on a run's scalars: every series for spikes and non-finite values, the loss for plateaus,
// the (loss, val_loss) pair for fitting. Ordered by row.
struct NamedColumn {
    std::string name;
    std::span<const double> values;
};
std::vector<Anomaly> detectAnomalies(std::span<const int64_t> steps, std::span<const NamedColumn> columns,
                                     const AnomalyOptions& o = {});

} // namespace ts::dynamics
