// Vectorised inner loops of the batched grid path (see batched_kernels.hpp). The exp is Cephes' expf
// polynomial (about 1 ulp on the range used here, arguments <= 0), written branch-free so it vectorises.
#include "engine/landscape/batched_kernels.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/core/cpu_dispatch.hpp"

#define TS_CLONES TS_CLONES_V4_V3

namespace ts::landscape::kernels {

namespace {

template <class T>
inline void combineImpl(const T* __restrict a0, const T* __restrict a1, const T* __restrict a2, T ca, T cb,
                        int64_t n, bool relu, T* __restrict out) {
    if (relu) {
        for (int64_t i = 0; i < n; ++i) {
            const T v = a0[i] + ca * a1[i] + cb * a2[i];
            out[i] = v > T(0) ? v : (v == v ? T(0) : v); // ReLU keeps NaN, as torch.relu does
        }
    } else {
        for (int64_t i = 0; i < n; ++i)
            out[i] = a0[i] + ca * a1[i] + cb * a2[i];
    }
}

// exp(x) for x in [-87.3, 0] (callers pass z - max <= 0); below the range the result is flushed to 0.
// Selects instead of branches and an integer floor, so that GCC vectorises the loops calling it.
__attribute__((always_inline)) inline float expNonPositive(float x) {
    const float keep = x >= -87.3f ? 1.0f : 0.0f;
    x = x >= -87.3f ? x : -87.3f;
    const float fxr = x * 1.44269504088896341f + 0.5f;
    int32_t fi = static_cast<int32_t>(fxr);
    fi -= static_cast<float>(fi) > fxr ? 1 : 0; // floor
    const float fx = static_cast<float>(fi);
    x = x - fx * 0.693359375f;
    x = x - fx * -2.12194440e-4f;
    const float z = x * x;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    return keep * y * __builtin_bit_cast(float, (fi + 127) << 23);
}

// A row (one sample) with NaN or +-inf logits, computed like torch: NaN anywhere -> NaN loss and argmax at
// the first NaN; otherwise lse = max + log(sum exp(z - max)) with inf - inf giving NaN.
template <class T>
void scalarRow(const T* z, int64_t classes, int64_t n, int64_t i, int64_t target, double& loss,
               int64_t& correct) {
    T m = -std::numeric_limits<T>::infinity();
    int64_t best = 0;
    bool nan = false;
    for (int64_t c = 0; c < classes; ++c) {
        const T v = z[c * n + i];
        if (v != v) {
            if (!nan) best = c;
            nan = true;
        } else if (!nan && v > m) {
            m = v;
            best = c;
        }
    }
    correct += best == target;
    if (nan) {
        loss += std::numeric_limits<double>::quiet_NaN();
        return;
    }
    T lse;
    if (std::isinf(m)) {
        lse = m;
    } else {
        T s = 0;
        for (int64_t c = 0; c < classes; ++c)
            s += std::exp(z[c * n + i] - m);
        lse = m + std::log(s);
    }
    loss += static_cast<double>(lse - z[target * n + i]);
}

// Running max/argmax over the class rows of one block of samples, with a flag for non-finite logits.
template <class T>
__attribute__((always_inline)) inline void blockMax(const T* __restrict z, int64_t classes, int64_t n,
                                                    int64_t len, T* __restrict bv, int32_t* __restrict bi,
                                                    int32_t* __restrict bad) {
    for (int64_t i = 0; i < len; ++i) {
        bv[i] = z[i];
        bi[i] = 0;
        bad[i] = !(std::abs(z[i]) <= std::numeric_limits<T>::max()); // NaN or inf
    }
    for (int64_t c = 1; c < classes; ++c) {
        const T* __restrict row = z + c * n;
        for (int64_t i = 0; i < len; ++i) {
            const T v = row[i];
            bad[i] |= !(std::abs(v) <= std::numeric_limits<T>::max());
            const bool gt = v > bv[i]; // strict: the first maximal class wins, as torch.argmax
            bv[i] = gt ? v : bv[i];
            bi[i] = gt ? static_cast<int32_t>(c) : bi[i];
        }
    }
}

__attribute__((always_inline)) inline float expOf(float x) {
    return expNonPositive(x);
}
__attribute__((always_inline)) inline double expOf(double x) {
    return std::exp(x);
}

template <class T>
__attribute__((always_inline)) inline void blockSumExp(const T* __restrict z, int64_t classes, int64_t n,
                                                       int64_t len, const T* __restrict mx,
                                                       T* __restrict sm) {
    for (int64_t i = 0; i < len; ++i)
        sm[i] = 0;
    for (int64_t c = 0; c < classes; ++c) {
        const T* __restrict row = z + c * n;
        for (int64_t i = 0; i < len; ++i)
            sm[i] += expOf(row[i] - mx[i]);
    }
}

template <class T>
__attribute__((always_inline)) inline void crossEntropyImpl(const T* z, int64_t classes, int64_t n,
                                                            const int64_t* targets, double* lossSum,
                                                            int64_t* correct) {
    constexpr int64_t B = 128;
    alignas(64) T bv[B], sm[B];
    alignas(64) int32_t bi[B], bad[B];
    double loss = 0;
    int64_t hits = 0;
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        const int64_t len = std::min(B, n - i0);
        blockMax(z + i0, classes, n, len, bv, bi, bad);
        blockSumExp(z + i0, classes, n, len, bv, sm);
        for (int64_t i = 0; i < len; ++i) {
            const int64_t t = targets[i0 + i];
            if (bad[i]) {
                scalarRow(z, classes, n, i0 + i, t, loss, hits);
                continue;
            }
            const T lse = bv[i] + std::log(sm[i]);
            loss += static_cast<double>(lse - z[t * n + i0 + i]);
            hits += bi[i] == t;
        }
    }
    *lossSum += loss;
    *correct += hits;
}

} // namespace

TS_CLONES void combine3(const float* a0, const float* a1, const float* a2, float ca, float cb, int64_t n,
                        bool relu, float* out) {
    combineImpl(a0, a1, a2, ca, cb, n, relu, out);
}
TS_CLONES void combine3(const double* a0, const double* a1, const double* a2, double ca, double cb, int64_t n,
                        bool relu, double* out) {
    combineImpl(a0, a1, a2, ca, cb, n, relu, out);
}

TS_CLONES void crossEntropyClassMajor(const float* z, int64_t classes, int64_t n, const int64_t* targets,
                                      double* lossSum, int64_t* correct) {
    crossEntropyImpl(z, classes, n, targets, lossSum, correct);
}
TS_CLONES void crossEntropyClassMajor(const double* z, int64_t classes, int64_t n, const int64_t* targets,
                                      double* lossSum, int64_t* correct) {
    crossEntropyImpl(z, classes, n, targets, lossSum, correct);
}

OpenBlasSingleThread::OpenBlasSingleThread() {
    static const auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    static const auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (!get || !set) return;
    m_set = set;
    m_previous = get();
    if (m_previous != 1) set(1);
}

OpenBlasSingleThread::~OpenBlasSingleThread() {
    if (m_set && m_previous != 1) m_set(m_previous);
}

} // namespace ts::landscape::kernels
