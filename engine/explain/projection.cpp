// PCA (float64 covariance, Jacobi or subspace iteration) and Barnes-Hut t-SNE. Sections: 1. eigenvalues
// 2. PCA  3. neighbours and perplexity  4. Barnes-Hut gradient  5. t-SNE  6. purity.
#include "engine/explain/projection.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "engine/core/thread_pool.hpp"
#include "engine/explain/detail.hpp"

namespace ts::explain {

namespace {

using detail::usage;

bool allFinite(const Matrix& x) {
    for (float v : x.values)
        if (!std::isfinite(v)) return false;
    return true;
}

void parallelFor(size_t count, size_t grain, const ThreadPool::RangeFn& fn) {
    ThreadPool::global().parallelFor(count, grain, fn);
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// 1. Eigenvalues of symmetric matrices.

void symmetricEigen(std::vector<double> a, int n, std::vector<double>& values, std::vector<double>& vectors) {
    std::vector<double> v(size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i)
        v[size_t(i) * n + i] = 1.0;
    auto A = [&](int r, int c) -> double& { return a[size_t(r) * n + c]; };
    double norm = 0;
    for (double x : a)
        norm += x * x;
    for (int sweep = 0; sweep < 100; ++sweep) {
        double off = 0;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q)
                off += A(p, q) * A(p, q);
        if (off <= 1e-30 * norm || off == 0) break;
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) {
                const double apq = A(p, q);
                if (std::abs(apq) < 1e-300) continue;
                const double theta = (A(q, q) - A(p, p)) / (2 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
                const double c = 1 / std::sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; ++k) { // columns p, q
                    const double kp = A(k, p), kq = A(k, q);
                    A(k, p) = c * kp - s * kq;
                    A(k, q) = s * kp + c * kq;
                }
                for (int k = 0; k < n; ++k) { // rows p, q
                    const double pk = A(p, k), qk = A(q, k);
                    A(p, k) = c * pk - s * qk;
                    A(q, k) = s * pk + c * qk;
                }
                for (int k = 0; k < n; ++k) {
                    const double kp = v[size_t(k) * n + p], kq = v[size_t(k) * n + q];
                    v[size_t(k) * n + p] = c * kp - s * kq;
                    v[size_t(k) * n + q] = s * kp + c * kq;
                }
            }
    }
    std::vector<int> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int x, int y) { return A(x, x) > A(y, y); });
    values.resize(size_t(n));
    vectors.assign(size_t(n) * n, 0.0);
    for (int i = 0; i < n; ++i) {
        values[size_t(i)] = A(order[size_t(i)], order[size_t(i)]);
        for (int k = 0; k < n; ++k)
            vectors[size_t(i) * n + k] = v[size_t(k) * n + order[size_t(i)]];
    }
}

// ---------------------------------------------------------------------------------------------------------
// 2. PCA.

namespace {

// Covariance (d x d, float64) of the centred columns.
std::vector<double> covariance(const Matrix& x, const std::vector<double>& mean) {
    const int64_t n = x.rows, d = x.cols;
    std::vector<double> cols(size_t(d * n)); // centred, column-major: one contiguous row per dimension
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < d; ++c)
            cols[size_t(c * n + r)] = double(x.at(r, c)) - mean[size_t(c)];
    std::vector<double> cov(size_t(d * d));
    parallelFor(size_t(d), 4, [&](size_t b, size_t e, unsigned) {
        for (size_t i = b; i < e; ++i)
            for (size_t j = i; j < size_t(d); ++j) {
                const double* xi = &cols[i * size_t(n)];
                const double* xj = &cols[j * size_t(n)];
                double s = 0;
                for (int64_t r = 0; r < n; ++r)
                    s += xi[r] * xj[r];
                cov[i * size_t(d) + j] = s / double(n - 1);
            }
    });
    for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < i; ++j)
            cov[size_t(i * d + j)] = cov[size_t(j * d + i)];
    return cov;
}

// Orthonormalises the p columns of q (d x p, row-major) in place (modified Gram-Schmidt).
void orthonormalise(std::vector<double>& q, int d, int p) {
    for (int j = 0; j < p; ++j) {
        for (int i = 0; i < j; ++i) {
            double dot = 0;
            for (int k = 0; k < d; ++k)
                dot += q[size_t(k) * p + i] * q[size_t(k) * p + j];
            for (int k = 0; k < d; ++k)
                q[size_t(k) * p + j] -= dot * q[size_t(k) * p + i];
        }
        double norm = 0;
        for (int k = 0; k < d; ++k)
            norm += q[size_t(k) * p + j] * q[size_t(k) * p + j];
        norm = std::sqrt(norm);
        for (int k = 0; k < d; ++k)
            q[size_t(k) * p + j] = norm > 1e-300 ? q[size_t(k) * p + j] / norm : (k == j ? 1.0 : 0.0);
    }
}

// z = c q (c d x d, q d x p).
void multiply(const std::vector<double>& c, const std::vector<double>& q, std::vector<double>& z, int d, int p) {
    z.assign(size_t(d) * p, 0.0);
    parallelFor(size_t(d), 16, [&](size_t b, size_t e, unsigned) {
        for (size_t i = b; i < e; ++i)
            for (int k = 0; k < d; ++k) {
                const double cik = c[i * size_t(d) + size_t(k)];
                for (int j = 0; j < p; ++j)
                    z[i * size_t(p) + size_t(j)] += cik * q[size_t(k) * p + j];
            }
    });
}

// Top-k eigenpairs of the d x d covariance: exact Jacobi for small d, else subspace iteration (k + 16 vectors)
// with a Rayleigh-Ritz step until the top k Ritz values settle.
void topEigen(const std::vector<double>& cov, int d, int k, std::vector<double>& values, std::vector<double>& rows,
              double tolerance, int maxIterations) {
    if (d <= 160) {
        std::vector<double> all, vecs;
        symmetricEigen(cov, d, all, vecs);
        values.assign(all.begin(), all.begin() + k);
        rows.assign(vecs.begin(), vecs.begin() + size_t(k) * d);
        return;
    }
    const int p = std::min(d, k + 16);
    std::mt19937_64 rng(12345);
    std::normal_distribution<double> normal;
    std::vector<double> q(size_t(d) * p), z, t(size_t(p) * p), ritz, vecs, previous(size_t(k), 0.0);
    for (auto& v : q)
        v = normal(rng);
    orthonormalise(q, d, p);
    for (int it = 0; it < maxIterations; ++it) {
        multiply(cov, q, z, d, p);
        for (int a = 0; a < p; ++a) // t = q^T c q
            for (int b = 0; b < p; ++b) {
                double s = 0;
                for (int i = 0; i < d; ++i)
                    s += q[size_t(i) * p + a] * z[size_t(i) * p + b];
                t[size_t(a) * p + b] = s;
            }
        symmetricEigen(t, p, ritz, vecs);
        double change = 0;
        for (int i = 0; i < k; ++i)
            change = std::max(change, std::abs(ritz[size_t(i)] - previous[size_t(i)]));
        std::copy(ritz.begin(), ritz.begin() + k, previous.begin());
        std::vector<double> next(size_t(d) * p, 0.0); // z v: the next basis, in Ritz order
        for (int i = 0; i < d; ++i)
            for (int j = 0; j < p; ++j) {
                double s = 0;
                for (int b = 0; b < p; ++b)
                    s += z[size_t(i) * p + b] * vecs[size_t(j) * p + b];
                next[size_t(i) * p + j] = s;
            }
        if ((change <= tolerance * std::max(1e-300, ritz[0]) && it > 2) || it + 1 == maxIterations) { // q v are the Ritz vectors
            rows.assign(size_t(k) * d, 0.0);
            for (int j = 0; j < k; ++j)
                for (int i = 0; i < d; ++i) {
                    double s = 0;
                    for (int b = 0; b < p; ++b)
                        s += q[size_t(i) * p + b] * vecs[size_t(j) * p + b];
                    rows[size_t(j) * d + i] = s;
                }
            values.assign(ritz.begin(), ritz.begin() + k);
            return;
        }
        q = std::move(next);
        orthonormalise(q, d, p);
    }
    values.assign(previous.begin(), previous.end());
    rows.assign(size_t(k) * d, 0.0);
    for (int j = 0; j < k; ++j)
        for (int i = 0; i < d; ++i)
            rows[size_t(j) * d + i] = q[size_t(i) * p + j];
}

} // namespace

Expected<PcaResult> pcaWith(const Matrix& x, int k, double tolerance, int maxIterations) {
    const int64_t n = x.rows, d = x.cols;
    if (n < 2) return usage("PCA needs at least 2 samples, got " + std::to_string(n));
    if (k < 1 || k > d)
        return usage("PCA: " + std::to_string(k) + " components of " + std::to_string(d) + " dimensions");
    if (!allFinite(x)) return usage("PCA: the activations hold NaN or Inf values");
    PcaResult out;
    out.mean.assign(size_t(d), 0.0);
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < d; ++c)
            out.mean[size_t(c)] += x.at(r, c);
    for (auto& m : out.mean)
        m /= double(n);
    const std::vector<double> cov = covariance(x, out.mean);
    for (int64_t i = 0; i < d; ++i)
        out.totalVariance += cov[size_t(i * d + i)];
    std::vector<double> rows;
    topEigen(cov, int(d), k, out.eigenvalues, rows, tolerance, maxIterations);
    out.axes = {k, d, std::vector<float>(size_t(k * d))};
    for (int j = 0; j < k; ++j) { // sign: the largest entry positive, so results do not flip between runs
        const double* row = &rows[size_t(j) * d];
        const int64_t big = std::max_element(row, row + d, [](double a, double b) { return std::abs(a) < std::abs(b); }) - row;
        const double sign = row[big] < 0 ? -1.0 : 1.0;
        for (int64_t c = 0; c < d; ++c)
            out.axes.values[size_t(j * d + c)] = float(sign * row[c]);
    }
    out.points = {n, k, std::vector<float>(size_t(n * k))};
    parallelFor(size_t(n), 256, [&](size_t b, size_t e, unsigned) {
        for (size_t r = b; r < e; ++r)
            for (int j = 0; j < k; ++j) {
                double s = 0;
                for (int64_t c = 0; c < d; ++c)
                    s += (double(x.at(int64_t(r), c)) - out.mean[size_t(c)]) * out.axes.values[size_t(j * d + c)];
                out.points.values[r * size_t(k) + size_t(j)] = float(s);
            }
    });
    return out;
}

Expected<PcaResult> pca(const Matrix& x, int k) {
    return pcaWith(x, k, 1e-12, 2000);
}

// ---------------------------------------------------------------------------------------------------------
// 3. Neighbours and perplexity.

namespace {

struct Neighbours {
    int k = 0;
    std::vector<int32_t> index; // n x k
    std::vector<float> dist2;   // n x k, ascending
};

float squaredDistance(const float* a, const float* b, int64_t d) {
    float s = 0;
    for (int64_t i = 0; i < d; ++i) {
        const float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

Neighbours nearest(const Matrix& x, int k) {
    const int64_t n = x.rows, d = x.cols;
    Neighbours nb;
    nb.k = k;
    nb.index.resize(size_t(n * k));
    nb.dist2.resize(size_t(n * k));
    parallelFor(size_t(n), 64, [&](size_t b, size_t e, unsigned) {
        std::vector<std::pair<float, int32_t>> all(static_cast<size_t>(n));
        for (size_t i = b; i < e; ++i) {
            const float* xi = &x.values[i * size_t(d)];
            for (int64_t j = 0; j < n; ++j)
                all[size_t(j)] = {squaredDistance(xi, &x.values[size_t(j * d)], d), int32_t(j)};
            all[i].first = INFINITY; // not its own neighbour
            std::partial_sort(all.begin(), all.begin() + k, all.end());
            for (int j = 0; j < k; ++j) {
                nb.dist2[i * size_t(k) + size_t(j)] = all[size_t(j)].first;
                nb.index[i * size_t(k) + size_t(j)] = all[size_t(j)].second;
            }
        }
    });
    return nb;
}

// Sparse symmetric P (CSR) from the neighbours' conditional probabilities at the given perplexity.
struct SparseP {
    std::vector<int64_t> rowStart;
    std::vector<int32_t> col;
    std::vector<double> value;
};

SparseP affinities(const Neighbours& nb, int64_t n, double perplexity) {
    const int k = nb.k;
    std::vector<double> cond(size_t(n * k));
    const double target = std::log(perplexity);
    parallelFor(size_t(n), 256, [&](size_t b, size_t e, unsigned) {
        for (size_t i = b; i < e; ++i) {
            const float* d2 = &nb.dist2[i * size_t(k)];
            double beta = 1.0, lo = 0.0, hi = INFINITY;
            double* p = &cond[i * size_t(k)];
            for (int iter = 0; iter < 200; ++iter) {
                double sum = 0, weighted = 0;
                for (int j = 0; j < k; ++j) { // distances relative to the nearest, for stability
                    p[j] = std::exp(-beta * (double(d2[j]) - double(d2[0])));
                    sum += p[j];
                    weighted += p[j] * (double(d2[j]) - double(d2[0]));
                }
                const double entropy = std::log(sum) + beta * weighted / sum;
                for (int j = 0; j < k; ++j)
                    p[j] /= sum;
                if (std::abs(entropy - target) < 1e-5) break;
                if (entropy > target) {
                    lo = beta;
                    beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
                } else {
                    hi = beta;
                    beta = (beta + lo) / 2;
                }
            }
        }
    });
    // P = (P_j|i + P_i|j) / 2n over the union of both directions.
    std::vector<std::vector<std::pair<int32_t, double>>> rows(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
        for (int j = 0; j < k; ++j) {
            const int32_t c = nb.index[size_t(i * k + j)];
            const double v = cond[size_t(i * k + j)] / (2.0 * double(n));
            rows[size_t(i)].emplace_back(c, v);
            rows[size_t(c)].emplace_back(int32_t(i), v);
        }
    SparseP P;
    P.rowStart.assign(size_t(n) + 1, 0);
    for (int64_t i = 0; i < n; ++i) {
        auto& r = rows[size_t(i)];
        std::sort(r.begin(), r.end());
        for (size_t a = 0; a < r.size();) {
            size_t b = a;
            double v = 0;
            while (b < r.size() && r[b].first == r[a].first)
                v += r[b++].second;
            P.col.push_back(r[a].first);
            P.value.push_back(v);
            a = b;
        }
        P.rowStart[size_t(i) + 1] = int64_t(P.col.size());
    }
    return P;
}

// ---------------------------------------------------------------------------------------------------------
// 4. Barnes-Hut: a quadtree of the embedding, rebuilt every step.

struct QuadTree {
    // 32 bytes a node: the walk is bound by memory, so positions are float and centres of mass precomputed.
    struct Node {
        float cx = 0, cy = 0, half = 0; // cell centre and half width
        float mx = 0, my = 0;           // centre of mass (a sum while building)
        int32_t count = 0;
        int32_t child = -1; // first of four children, -1 for a leaf
        int32_t point = -1; // a leaf's point (the first one when several coincide)
    };
    std::vector<Node> nodes;
    std::vector<float> pos;      // 2 per point
    std::vector<int32_t> order;  // points in tree (Z) order: neighbours in the walk order share cached nodes

    void build(const double* y, int64_t n) {
        pos.resize(size_t(2 * n));
        float x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (int64_t i = 0; i < n; ++i) {
            pos[size_t(2 * i)] = float(y[2 * i]), pos[size_t(2 * i + 1)] = float(y[2 * i + 1]);
            x0 = std::min(x0, pos[size_t(2 * i)]), x1 = std::max(x1, pos[size_t(2 * i)]);
            y0 = std::min(y0, pos[size_t(2 * i + 1)]), y1 = std::max(y1, pos[size_t(2 * i + 1)]);
        }
        nodes.clear();
        nodes.reserve(size_t(n) * 3);
        Node root;
        root.cx = (x0 + x1) / 2, root.cy = (y0 + y1) / 2;
        root.half = std::max(x1 - x0, y1 - y0) / 2 * 1.0001f + 1e-5f;
        nodes.push_back(root);
        for (int64_t i = 0; i < n; ++i)
            insert(int32_t(i));
        for (auto& node : nodes)
            if (node.count > 0) node.mx /= float(node.count), node.my /= float(node.count);
        order.clear();
        order.reserve(size_t(n));
        groups.clear();
        collect(0);
    }

    // Runs of `order` under one node of at most kGroup points: the grouped walk's units of work.
    static constexpr int32_t kGroup = 32;
    struct Group {
        int32_t begin = 0, end = 0;
    };
    std::vector<Group> groups;

    void insert(int32_t i) {
        const float px = pos[size_t(2 * i)], py = pos[size_t(2 * i + 1)];
        int32_t at = 0;
        for (int depth = 0;; ++depth) {
            Node& node = nodes[size_t(at)];
            node.mx += px, node.my += py;
            ++node.count;
            if (node.child < 0) {
                if (node.count == 1) { // an empty leaf takes the point
                    node.point = i;
                    return;
                }
                if (depth > 40) return; // coincident points share the leaf
                split(at);
            }
            at = nodes[size_t(at)].child + quadrant(nodes[size_t(at)], px, py);
        }
    }

    static int quadrant(const Node& n, float px, float py) { return (px >= n.cx ? 1 : 0) + (py >= n.cy ? 2 : 0); }

    // Turns leaf `at` (holding one earlier point) into four children and moves that point down.
    void split(int32_t at) {
        const int32_t first = int32_t(nodes.size());
        const Node parent = nodes[size_t(at)];
        for (int q = 0; q < 4; ++q) {
            Node c;
            c.half = parent.half / 2;
            c.cx = parent.cx + ((q & 1) ? c.half : -c.half);
            c.cy = parent.cy + ((q & 2) ? c.half : -c.half);
            nodes.push_back(c);
        }
        nodes[size_t(at)].child = first;
        const int32_t old = parent.point;
        nodes[size_t(at)].point = -1;
        const float ox = pos[size_t(2 * old)], oy = pos[size_t(2 * old + 1)];
        Node& c = nodes[size_t(first + quadrant(parent, ox, oy))];
        c.mx = ox, c.my = oy, c.count = 1, c.point = old;
    }

    void collect(int32_t at, bool inGroup = false) {
        const Node& n = nodes[size_t(at)];
        if (n.count == 0) return;
        if (!inGroup && n.count <= kGroup) {
            const int32_t begin = int32_t(order.size());
            collect(at, true);
            groups.push_back({begin, int32_t(order.size())});
            return;
        }
        if (n.child < 0) {
            for (int64_t i = 0; i < int64_t(pos.size() / 2) && n.count > 1; ++i) // coincident points: rare
                if (i != n.point && pos[size_t(2 * i)] == n.mx && pos[size_t(2 * i + 1)] == n.my) order.push_back(int32_t(i));
            order.push_back(n.point);
            return;
        }
        for (int c = 0; c < 4; ++c)
            collect(n.child + c, inGroup);
    }

    // Repulsion on every point of group g, as repulsion() computes it for one point. One walk for the group: a
    // cell is taken whole when its width is below theta times its centre of mass's distance to the group's
    // bounding box (so below theta times the distance to each point), and leaves are taken as they are. Then each
    // point sums over the accepted list in a flat loop. The point itself is in the list (distance 0, q = 1): it adds
    // no force, and 1 is taken off its Z share.
    struct Bodies {
        std::vector<float> x, y, count;
    };
    void groupRepulsion(const Group& g, float theta2, Bodies& b, double* rep, double* zPoint) const {
        float bx0 = INFINITY, bx1 = -INFINITY, by0 = INFINITY, by1 = -INFINITY;
        for (int32_t t = g.begin; t < g.end; ++t) {
            const int32_t i = order[size_t(t)];
            bx0 = std::min(bx0, pos[size_t(2 * i)]), bx1 = std::max(bx1, pos[size_t(2 * i)]);
            by0 = std::min(by0, pos[size_t(2 * i + 1)]), by1 = std::max(by1, pos[size_t(2 * i + 1)]);
        }
        b.x.clear(), b.y.clear(), b.count.clear();
        int32_t stack[256];
        int top = 0;
        stack[top++] = 0;
        while (top > 0) {
            const Node& n = nodes[size_t(stack[--top])];
            if (n.count == 0) continue;
            const float ddx = std::max({0.0f, bx0 - n.mx, n.mx - bx1}), ddy = std::max({0.0f, by0 - n.my, n.my - by1});
            if (n.child < 0 || 4 * n.half * n.half < theta2 * (ddx * ddx + ddy * ddy) || top + 4 > 256) {
                b.x.push_back(n.mx), b.y.push_back(n.my), b.count.push_back(float(n.count));
            } else {
                for (int c = 0; c < 4; ++c)
                    stack[top++] = n.child + c;
            }
        }
        const size_t m = b.x.size();
        const float* bxs = b.x.data();
        const float* bys = b.y.data();
        const float* bcs = b.count.data();
        for (int32_t t = g.begin; t < g.end; ++t) {
            const int32_t i = order[size_t(t)];
            const float px = pos[size_t(2 * i)], py = pos[size_t(2 * i + 1)];
            float sx = 0, sy = 0, sz = 0;
            for (size_t k = 0; k < m; ++k) {
                const float dx = px - bxs[k], dy = py - bys[k];
                const float q = 1.0f / (1.0f + dx * dx + dy * dy);
                const float cq = bcs[k] * q;
                sz += cq;
                sx += cq * q * dx;
                sy += cq * q * dy;
            }
            rep[2 * i] = sx, rep[2 * i + 1] = sy;
            zPoint[i] = double(sz) - 1.0;
        }
    }

    // Repulsion on point i: sum of q^2 (y_i - y_j) and of q over all j != i, q = 1 / (1 + |y_i - y_j|^2).
    void repulsion(int32_t i, float theta2, double& fx, double& fy, double& z) const {
        const float px = pos[size_t(2 * i)], py = pos[size_t(2 * i + 1)];
        int32_t stack[256];
        int top = 0;
        stack[top++] = 0;
        float sx = 0, sy = 0, sz = 0;
        while (top > 0) {
            const Node& n = nodes[size_t(stack[--top])];
            if (n.count == 0 || (n.child < 0 && n.point == i && n.count == 1)) continue;
            const float dx = px - n.mx, dy = py - n.my, d2 = dx * dx + dy * dy;
            if (n.child < 0 || 4 * n.half * n.half < theta2 * d2) {
                const float q = 1.0f / (1.0f + d2);
                const float count = float(n.child < 0 && n.point == i ? n.count - 1 : n.count);
                sz += count * q;
                const float qq = count * q * q;
                sx += qq * dx;
                sy += qq * dy;
            } else if (top + 4 <= 256) {
                for (int c = 0; c < 4; ++c)
                    stack[top++] = n.child + c;
            }
        }
        fx += sx, fy += sy, z += sz;
    }
};

} // namespace

// ---------------------------------------------------------------------------------------------------------
// 5. t-SNE.

Matrix tsneRepulsion(const Matrix& y, double theta, bool groupedWalk, double& z) {
    const int64_t n = y.rows;
    std::vector<double> yd(y.values.begin(), y.values.end()), rep(static_cast<size_t>(2 * n)), zPoint(static_cast<size_t>(n));
    QuadTree tree;
    tree.build(yd.data(), n);
    const float theta2 = float(theta * theta);
    if (groupedWalk) {
        QuadTree::Bodies bodies;
        for (const auto& g : tree.groups)
            tree.groupRepulsion(g, theta2, bodies, rep.data(), zPoint.data());
    } else {
        for (int64_t i = 0; i < n; ++i) {
            double fx = 0, fy = 0, zi = 0;
            tree.repulsion(int32_t(i), theta2, fx, fy, zi);
            rep[size_t(2 * i)] = fx, rep[size_t(2 * i + 1)] = fy, zPoint[size_t(i)] = zi;
        }
    }
    z = std::accumulate(zPoint.begin(), zPoint.end(), 0.0);
    Matrix out{n, 2, std::vector<float>(size_t(2 * n))};
    for (size_t i = 0; i < out.values.size(); ++i)
        out.values[i] = float(rep[i]);
    return out;
}

Expected<Matrix> tsne(const Matrix& input, const TsneOptions& o) {
    const int64_t n = input.rows;
    if (o.dims != 2) return usage("t-SNE embeds in 2 dimensions here (got " + std::to_string(o.dims) + ")");
    if (n < 4) return usage("t-SNE needs at least 4 samples, got " + std::to_string(n));
    if (o.perplexity <= 0 || 3 * o.perplexity + 1 >= double(n))
        return usage("t-SNE perplexity " + std::to_string(o.perplexity) + " is too large for " + std::to_string(n) +
                     " samples (needs samples > 3 x perplexity + 1)");
    if (!allFinite(input)) return usage("t-SNE: the activations hold NaN or Inf values");
    Matrix reduced;
    const Matrix* x = &input;
    if (input.cols > o.pcaDims) {
        auto p = pcaWith(input, o.pcaDims, 1e-5, 60); // a good subspace is enough here
        if (!p) return p.error();
        reduced = std::move(p->points);
        x = &reduced;
    }
    const int k = std::min<int64_t>(n - 1, int64_t(3 * o.perplexity));
    const SparseP P = affinities(nearest(*x, k), n, o.perplexity);

    std::vector<double> y(size_t(2 * n)), update(size_t(2 * n), 0.0), gains(size_t(2 * n), 1.0), grad(size_t(2 * n)),
        rep(size_t(2 * n));
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<double> normal(0.0, 1e-4);
    for (auto& v : y)
        v = normal(rng);
    const double eta = o.learningRate > 0 ? o.learningRate : std::max(200.0, double(n) / o.exaggeration);
    std::vector<double> zPoint(static_cast<size_t>(n));
    QuadTree tree;
    const float theta2 = float(o.theta * o.theta);
    const std::vector<float> pValue(P.value.begin(), P.value.end());
    for (int it = 0; it < o.iterations; ++it) {
        const double exaggerate = it < o.exaggerationSteps ? o.exaggeration : 1.0;
        const double momentum = it < o.exaggerationSteps ? 0.5 : 0.8;
        tree.build(y.data(), n);
        if (o.groupedWalk) {
            parallelFor(tree.groups.size(), 8, [&](size_t b, size_t e, unsigned) {
                QuadTree::Bodies bodies;
                for (size_t g = b; g < e; ++g)
                    tree.groupRepulsion(tree.groups[g], theta2, bodies, rep.data(), zPoint.data());
            });
        }
        // Attraction over the sparse P, rows in memory order (P streams from memory once); with a walk per point,
        // the walk's repulsion too, in the tree's order (neighbouring points share cached nodes). Z's shares go to
        // zPoint and are summed in point order after, so the result does not depend on the threads' timing.
        const float* pos = tree.pos.data(); // y in float: the terms are summed in float, as the repulsion's are
        auto attract = [&](size_t i) {
            float ax = 0, ay = 0;
            const float yx = pos[2 * i], yy = pos[2 * i + 1];
            const int32_t* col = P.col.data();
            const float* pv = pValue.data();
            for (int64_t a = P.rowStart[i]; a < P.rowStart[i + 1]; ++a) {
                const size_t j = size_t(col[a]);
                const float dx = yx - pos[2 * j], dy = yy - pos[2 * j + 1];
                const float pq = pv[a] / (1.0f + dx * dx + dy * dy);
                ax += pq * dx;
                ay += pq * dy;
            }
            grad[2 * i] = exaggerate * ax, grad[2 * i + 1] = exaggerate * ay;
        };
        parallelFor(size_t(n), 256, [&](size_t b, size_t e, unsigned) {
            for (size_t t = b; t < e; ++t) {
                if (o.groupedWalk) {
                    attract(t);
                    continue;
                }
                const size_t i = size_t(tree.order[t]);
                double fx = 0, fy = 0, zi = 0;
                tree.repulsion(int32_t(i), theta2, fx, fy, zi);
                zPoint[i] = zi;
                rep[2 * i] = fx, rep[2 * i + 1] = fy;
                attract(i);
            }
        });
        const double z = std::max(1e-300, std::accumulate(zPoint.begin(), zPoint.end(), 0.0));
        for (size_t at = 0; at < y.size(); ++at) { // gradient step with gains (delta-bar-delta) and momentum
            const double g = 4.0 * (grad[at] - rep[at] / z);
            gains[at] = (g > 0) != (update[at] > 0) ? gains[at] + 0.2 : std::max(0.01, gains[at] * 0.8);
            update[at] = momentum * update[at] - eta * gains[at] * g;
            y[at] += update[at];
        }
        double mx = 0, my = 0;
        for (int64_t i = 0; i < n; ++i)
            mx += y[size_t(2 * i)], my += y[size_t(2 * i + 1)];
        for (int64_t i = 0; i < n; ++i)
            y[size_t(2 * i)] -= mx / double(n), y[size_t(2 * i + 1)] -= my / double(n);
    }
    Matrix out{n, 2, std::vector<float>(size_t(2 * n))};
    for (size_t i = 0; i < out.values.size(); ++i)
        out.values[i] = float(y[i]);
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// 6. Purity.

double knnPurity(const Matrix& points, const std::vector<int64_t>& labels, int k) {
    if (points.rows < 2 || k < 1) return 0.0;
    k = int(std::min<int64_t>(k, points.rows - 1));
    const Neighbours nb = nearest(points, k);
    double sum = 0;
    for (int64_t i = 0; i < points.rows; ++i) {
        int same = 0;
        for (int j = 0; j < k; ++j)
            same += labels[size_t(nb.index[size_t(i * k + j)])] == labels[size_t(i)];
        sum += double(same) / k;
    }
    return sum / double(points.rows);
}

} // namespace ts::explain
