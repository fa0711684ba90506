// Toy 2D datasets: deterministic generators with a portable RNG (splitmix64 + Box-Muller).
#include "engine/capture/toy_data.hpp"

#include <cmath>
#include <numbers>

namespace ts::capture {

namespace {

class Rng {
  public:
    explicit Rng(uint64_t seed) : m_state(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    uint64_t next() {
        uint64_t z = (m_state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); } // [0, 1)
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    double normal() {
        if (m_hasSpare) {
            m_hasSpare = false;
            return m_spare;
        }
        double u1 = uniform();
        while (u1 <= 1e-300)
            u1 = uniform();
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        m_spare = r * std::sin(2.0 * std::numbers::pi * u2);
        m_hasSpare = true;
        return r * std::cos(2.0 * std::numbers::pi * u2);
    }

  private:
    uint64_t m_state;
    double m_spare = 0.0;
    bool m_hasSpare = false;
};

} // namespace

std::optional<ToyKind> parseToyKind(const std::string& name) {
    if (name == "spirals" || name == "spiral" || name == "two-spirals") return ToyKind::Spirals;
    if (name == "circles" || name == "circle") return ToyKind::Circles;
    if (name == "xor") return ToyKind::Xor;
    if (name == "gaussians" || name == "gaussian" || name == "blobs") return ToyKind::Gaussians;
    return std::nullopt;
}

const char* toyKindName(ToyKind kind) {
    switch (kind) {
    case ToyKind::Spirals:
        return "spirals";
    case ToyKind::Circles:
        return "circles";
    case ToyKind::Xor:
        return "xor";
    case ToyKind::Gaussians:
        return "gaussians";
    }
    return "?";
}

double defaultNoise(ToyKind kind) {
    switch (kind) {
    case ToyKind::Spirals:
        return 0.02;
    case ToyKind::Circles:
        return 0.05;
    case ToyKind::Xor:
        return 0.05;
    case ToyKind::Gaussians:
        return 0.25;
    }
    return 0.0;
}

ToyData generateToy(ToyKind kind, const ToyOptions& o) {
    Rng rng(o.seed);
    const double noise = o.noise < 0.0 ? defaultNoise(kind) : o.noise;
    ToyData d;
    d.classes = kind == ToyKind::Gaussians ? (o.classes > 0 ? o.classes : 3) : 2;
    const int64_t n = std::max<int64_t>(o.samples, 0);
    d.points.resize(static_cast<size_t>(2 * n));
    d.labels.resize(static_cast<size_t>(n));
    const double pi = std::numbers::pi;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t label = i % d.classes;
        double x = 0.0, y = 0.0;
        switch (kind) {
        case ToyKind::Spirals: {
            // Two interleaved arms of 1.75 turns, radius growing linearly to 1; arm 1 is arm 0 rotated by pi.
            const double t = std::sqrt(rng.uniform()); // sqrt: even density along the arms
            const double angle = t * 1.75 * 2.0 * pi + (label ? pi : 0.0);
            x = t * std::cos(angle);
            y = t * std::sin(angle);
            break;
        }
        case ToyKind::Circles: {
            // scikit-learn's make_circles with factor 0.5: inner circle class 0, outer class 1.
            const double angle = rng.uniform(0.0, 2.0 * pi);
            const double r = label ? 1.0 : 0.5;
            x = r * std::cos(angle);
            y = r * std::sin(angle);
            break;
        }
        case ToyKind::Xor: {
            // Quadrants: class 0 where x and y share a sign. A small margin keeps the classes apart.
            const double margin = 0.05;
            double sx = rng.uniform() < 0.5 ? -1.0 : 1.0;
            const double sy = label == 0 ? sx : -sx;
            x = sx * rng.uniform(margin, 1.0);
            y = sy * rng.uniform(margin, 1.0);
            break;
        }
        case ToyKind::Gaussians: {
            // Blob centres evenly on a circle of radius 0.7.
            const double angle = 2.0 * pi * double(label) / double(d.classes);
            x = 0.7 * std::cos(angle);
            y = 0.7 * std::sin(angle);
            break;
        }
        }
        x += noise * rng.normal();
        y += noise * rng.normal();
        d.points[2 * i] = static_cast<float>(x);
        d.points[2 * i + 1] = static_cast<float>(y);
        d.labels[i] = label;
    }
    return d;
}

} // namespace ts::capture
