// Inner loops of the batched grid path that LibTorch would split into several memory passes: the first
// layer's per-point combination with ReLU, and cross-entropy + argmax on class-major logits. Torch-free,
// vectorised per CPU (AVX-512 / AVX2 / baseline clones).
#pragma once

#include <cstdint>

namespace ts::landscape::kernels {

// out[i] = act(a0[i] + ca * a1[i] + cb * a2[i]) for i < n, act = ReLU when `relu`, else identity.
void combine3(const float* a0, const float* a1, const float* a2, float ca, float cb, int64_t n, bool relu,
              float* out);
void combine3(const double* a0, const double* a1, const double* a2, double ca, double cb, int64_t n,
              bool relu, double* out);

// One grid point: logits z[c * n + i] (class-major, `classes` rows of n samples). Adds sum_i (logsumexp_c z
// - z[target_i]) to *lossSum and the number of samples whose first maximal logit is the target to *correct.
// Rows with NaN or infinite logits follow LibTorch's logsumexp/argmax semantics (NaN wins, +inf gives inf).
void crossEntropyClassMajor(const float* z, int64_t classes, int64_t n, const int64_t* targets,
                            double* lossSum, int64_t* correct);
void crossEntropyClassMajor(const double* z, int64_t classes, int64_t n, const int64_t* targets,
                            double* lossSum, int64_t* correct);

// While it lives, OpenBLAS (LibTorch's BLAS in Debian) runs each call on the calling thread. Its default
// wakes its own pool for every [2000 x 64] x [64 x 32] product, which cost 2.3x the whole batched MLP grid
// (0.68 s vs 0.29 s, see docs/PERFORMANCE.md). Found with dlsym so other BLAS builds are left alone. The
// setting is process-wide, so concurrent BLAS users elsewhere run single-threaded meanwhile.
class OpenBlasSingleThread {
  public:
    OpenBlasSingleThread();
    ~OpenBlasSingleThread();
    OpenBlasSingleThread(const OpenBlasSingleThread&) = delete;
    OpenBlasSingleThread& operator=(const OpenBlasSingleThread&) = delete;

  private:
    void (*m_set)(int) = nullptr;
    int m_previous = 1;
};

} // namespace ts::landscape::kernels
