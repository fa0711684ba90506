// Test helpers: seeded activation-like data (offset normals with planted exact zeros) and an independent
// float64 reference for every per-neuron statistic.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace ts::stats::testing {

// [rows x cols] values: neuron j ~ N(mu_j, sigma_j), mu_j in [-3, 3], sigma_j in [0.1, 2]; ~20% exact zeros.
inline std::vector<float> makeData(std::int64_t rows, std::int64_t cols, std::uint32_t seed,
                                   float zeroRate = 0.2f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> mu(-3.0f, 3.0f), sigma(0.1f, 2.0f), u(0.0f, 1.0f);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> m(cols), s(cols);
    for (std::int64_t j = 0; j < cols; ++j) {
        m[j] = mu(rng);
        s[j] = sigma(rng);
    }
    std::vector<float> x(static_cast<std::size_t>(rows * cols));
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < cols; ++j)
            x[r * cols + j] = u(rng) < zeroRate ? 0.0f : m[j] + s[j] * nd(rng);
    return x;
}

struct RefNeuron {
    double mean, meanAbs, var, min, max, zeroFraction, nans, infs, n;
};

// Independent float64 reference (two-pass, plain loops), same NaN/Inf policy as stats_layout.h.
inline std::vector<RefNeuron> reference(const float* x, std::int64_t rows, std::int64_t cols,
                                        std::int64_t ld) {
    std::vector<RefNeuron> ref(cols);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::int64_t j = 0; j < cols; ++j) {
        double sum = 0, sumAbs = 0, n = 0, zeros = 0, nans = 0, infs = 0;
        double mn = std::numeric_limits<double>::infinity(), mx = -mn;
        for (std::int64_t r = 0; r < rows; ++r) {
            double v = x[r * ld + j];
            if (std::isnan(v)) {
                ++nans;
                continue;
            }
            if (std::isinf(v)) {
                ++infs;
                continue;
            }
            if (v == 0) ++zeros;
            sum += v;
            sumAbs += std::fabs(v);
            mn = std::min(mn, v);
            mx = std::max(mx, v);
            ++n;
        }
        double mean = n > 0 ? sum / n : nan, m2 = 0;
        for (std::int64_t r = 0; r < rows; ++r) {
            double v = x[r * ld + j];
            if (std::isfinite(v)) m2 += (v - mean) * (v - mean);
        }
        ref[j] = {mean,
                  n > 0 ? sumAbs / n : nan,
                  n > 0 ? m2 / n : nan,
                  n > 0 ? mn : nan,
                  n > 0 ? mx : nan,
                  zeros / double(rows),
                  nans,
                  infs,
                  n};
    }
    return ref;
}

} // namespace ts::stats::testing
