// A layer's neuron series over a run, drawn without clutter (DGMTracker's idiom): a density image of all
// series (how many polylines cross each time x value cell) under a few polylines picked by blue-noise
// sampling, which keeps outliers and thins dense bundles.
//
// Blue-noise polyline sampling, as done here: every series gets a crowding score (the median, over 16 evenly
// spaced time points, of how many series pass through the same cell there). Series are visited from the least crowded (the outliers) to the most; one is
// kept when at most `conflict` of its cells are already within `radius` cells of a kept polyline (a Poisson
// disk in the space of polylines), so a bundle of near-identical series keeps one or two representatives
// while every isolated series is kept. Passes with a smaller disk, then a looser conflict, fill up to the
// target count. The disk test runs on a grid of at most 128 x 96 cells, over the 10 x target least crowded
// series and 10 x target more at an even stride over all of them (bounded cost for any count).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ts::dynamics {

// [points][series], row-major: row t holds every series' value at time point t (the order the run store
// gives them: one snapshot at a time). NaN/Inf break a polyline.
struct SeriesMatrix {
    int64_t points = 0, series = 0;
    std::vector<float> values;
    float at(int64_t t, int64_t i) const { return values[size_t(t * series + i)]; }
};

struct ValueRange {
    float lo = 0, hi = 0;
    bool empty() const { return !(hi > lo); }
};
// The finite values' range (lo == hi widened by 0.5 each side; empty when nothing is finite).
ValueRange finiteRange(const SeriesMatrix& m);

// counts[y * width + x]: series whose polyline crosses time column x at a value in row y (row 0 = lo).
// Column x spans time points [x (T-1) / W, (x+1) (T-1) / W]; a polyline crosses every row between the
// smallest and largest value it takes there (linear between points), so steep segments stay connected.
struct DensityImage {
    int width = 0, height = 0;
    ValueRange range;
    std::vector<uint32_t> counts;
    uint32_t maxCount() const;
};
DensityImage densityImage(const SeriesMatrix& m, int width, int height, ValueRange range);

// The rows [lo, hi] series i crosses in column x of an image of that geometry, for each column (lo > hi:
// none). The one definition densityImage and the sampling share.
void seriesSpans(const SeriesMatrix& m, int64_t i, int width, int height, ValueRange range, int16_t* lo, int16_t* hi);

struct SamplingOptions {
    int target = 60;        // polylines to keep (fewer when there are fewer series)
    int radius = 2;         // rows around a kept polyline that count as taken
    double conflict = 0.25; // first pass: largest fraction of a candidate's cells already taken
};
struct SeriesSample {
    std::vector<int64_t> kept;  // series indices, in the order they were kept (outliers first)
    std::vector<float> crowding; // per series: median density along it / series count (0..1; Inf: no value)
};
SeriesSample blueNoiseSample(const SeriesMatrix& m, const DensityImage& density, const SamplingOptions& o = {});

// Series whose value at some time point in [t0, t1] lies in [vlo, vhi] (a brushed time range and value band).
std::vector<int64_t> brushSeries(const SeriesMatrix& m, int64_t t0, int64_t t1, float vlo, float vhi);

} // namespace ts::dynamics
