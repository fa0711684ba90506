// Grid axes ("MIN:MAX:N"), surfaces and the coarse-to-fine evaluation order.
#include "engine/landscape/grid.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ts::landscape {

std::vector<double> GridAxis::coordinates() const {
    std::vector<double> c(static_cast<size_t>(std::max<int64_t>(count, 0)));
    if (count == 1) {
        c[0] = min;
        return c;
    }
    // numpy.linspace: start + i * step, with the last point exactly `max`.
    const double step = (max - min) / static_cast<double>(count - 1);
    for (int64_t i = 0; i < count; ++i)
        c[static_cast<size_t>(i)] = min + static_cast<double>(i) * step;
    if (count > 1) c.back() = max;
    return c;
}

namespace {

bool parseDouble(const std::string& s, double& out) {
    if (s.empty()) return false;
    errno = 0;
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return errno == 0 && end == s.c_str() + s.size() && std::isfinite(out);
}

} // namespace

Expected<GridAxis> parseAxis(const std::string& text) {
    const auto bad = [&](const char* why) {
        return makeError(ErrorKind::Usage,
                         "bad grid axis '" + text + "': " + why + " (expected MIN:MAX:N, e.g. -1:1:51)");
    };
    const size_t c1 = text.find(':');
    const size_t c2 = c1 == std::string::npos ? c1 : text.find(':', c1 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos || text.find(':', c2 + 1) != std::string::npos)
        return bad("needs three fields");
    GridAxis a;
    double n = 0;
    if (!parseDouble(text.substr(0, c1), a.min) || !parseDouble(text.substr(c1 + 1, c2 - c1 - 1), a.max))
        return bad("MIN and MAX must be numbers");
    // The reference scripts parse N as a float too ("51" or "51.0").
    if (!parseDouble(text.substr(c2 + 1), n) || n != std::floor(n)) return bad("N must be a whole number");
    if (n < 1) return bad("N must be at least 1");
    if (n > 1e6) return bad("N is too large");
    a.count = static_cast<int64_t>(n);
    if (a.count > 1 && !(a.max > a.min)) return bad("MAX must be greater than MIN");
    return a;
}

Status validateGrid(const GridSpec& grid) {
    const auto check = [](const GridAxis& a, const char* name) -> Status {
        if (a.count < 1)
            return makeError(ErrorKind::Usage,
                             std::string("empty grid: the ") + name + " axis has no points");
        if (!std::isfinite(a.min) || !std::isfinite(a.max))
            return makeError(ErrorKind::Usage, std::string("the ") + name + " axis range is not finite");
        if (a.count > 1 && !(a.max > a.min))
            return makeError(ErrorKind::Usage, std::string("the ") + name + " axis needs MAX > MIN");
        return Status::ok();
    };
    TS_TRY(check(grid.x, "x"));
    if (grid.y) TS_TRY(check(*grid.y, "y"));
    if (grid.pointCount() > 100'000'000)
        return makeError(ErrorKind::Usage, "grid too large (over 1e8 points)");
    return Status::ok();
}

bool Surface::complete() const {
    return std::all_of(computed.begin(), computed.end(), [](uint8_t c) { return c != 0; });
}

Surface Surface::onGrid(const GridSpec& grid) {
    Surface s;
    s.x = grid.x.coordinates();
    if (grid.y) s.y = grid.y->coordinates();
    const size_t n = static_cast<size_t>(grid.pointCount());
    s.loss.assign(n, std::numeric_limits<double>::quiet_NaN());
    s.acc.assign(n, std::numeric_limits<double>::quiet_NaN());
    s.computed.assign(n, 0);
    return s;
}

RefinementPlan planRefinement(int64_t nx, int64_t ny, bool progressive) {
    RefinementPlan plan;
    int64_t stride = 1;
    if (progressive) {
        // Coarsest level keeps at least ~5 points along the longer axis.
        const int64_t span = std::max(nx, ny) - 1;
        while (span / (stride * 2) >= 4)
            stride *= 2;
    }
    std::vector<uint8_t> taken(static_cast<size_t>(nx * ny), 0);
    for (; stride >= 1; stride /= 2) {
        std::vector<int64_t> level;
        for (int64_t iy = 0; iy < ny; iy += (ny > 1 ? stride : 1))
            for (int64_t ix = 0; ix < nx; ix += stride) {
                const int64_t k = iy * nx + ix;
                if (!taken[static_cast<size_t>(k)]) {
                    taken[static_cast<size_t>(k)] = 1;
                    level.push_back(k);
                }
            }
        plan.strides.push_back(stride);
        plan.levels.push_back(std::move(level));
    }
    return plan;
}

Surface previewFilled(const Surface& partial, int64_t stride) {
    Surface s = partial;
    stride = std::max<int64_t>(stride, 1);
    const int64_t nx = s.nx(), ny = s.ny();
    for (int64_t iy = 0; iy < ny; ++iy)
        for (int64_t ix = 0; ix < nx; ++ix) {
            const size_t k = s.index(ix, iy);
            if (partial.computed[k]) continue;
            const size_t src = s.index(ix - ix % stride, ny > 1 ? iy - iy % stride : 0);
            if (!partial.computed[src]) continue;
            s.loss[k] = partial.loss[src];
            s.acc[k] = partial.acc[src];
        }
    return s;
}

std::optional<Barrier> linearBarrier(const Surface& s) {
    if (s.is2d() || s.x.empty()) return std::nullopt;
    const double eps = 1e-9;
    std::optional<size_t> zero, one;
    for (size_t i = 0; i < s.x.size(); ++i) {
        if (!s.computed[i]) continue;
        if (std::abs(s.x[i]) <= eps) zero = i;
        if (std::abs(s.x[i] - 1.0) <= eps) one = i;
    }
    if (!zero || !one) return std::nullopt;
    const double l0 = s.loss[*zero], l1 = s.loss[*one];
    if (!std::isfinite(l0) || !std::isfinite(l1)) return std::nullopt;
    Barrier b;
    b.at = 0;
    b.loss = l0;
    b.start = l0;
    b.end = l1;
    for (size_t i = 0; i < s.x.size(); ++i) {
        const double x = s.x[i];
        if (x < -eps || x > 1.0 + eps) continue;
        if (!s.computed[i] || !std::isfinite(s.loss[i])) return std::nullopt;
        ++b.points;
        const double excess = s.loss[i] - ((1.0 - x) * l0 + x * l1);
        if (excess > b.height) {
            b.height = excess;
            b.at = x;
            b.loss = s.loss[i];
        }
    }
    return b;
}

} // namespace ts::landscape
