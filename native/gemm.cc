// GEMM through OpenBLAS (cblas_sgemm), batched.
//
// Batches of small matrices run in parallel over the batch with one single-threaded sgemm per
// thread: the OpenMP build of OpenBLAS sees omp_in_parallel() and does not start threads of its
// own. Large matrices (or a batch whose C blocks overlap) go one at a time, each sgemm using all
// threads.
#include "common.h"
#include "kernels.h"

#include <cblas.h>

namespace r1 {

// Bytes of weights a streaming product asks for ahead of the rows it is reading. A matrix-vector
// product is bound by memory latency, not bandwidth, at one core: the hardware prefetcher follows
// four row streams only a little way ahead, and asking for the next 16 KB explicitly lifts one
// core from ~15 to ~30 GB/s on 256 × 256 matrices that are not in cache (the arithmetic and its
// order are unchanged).
constexpr i64 kPrefetchBytes = 16 << 10;

// Prefetches rows [j, j + 4) of W (k floats each) into L1, if they are below j1.
static inline void prefetch_rows(const float* W, i64 ldw, i64 j, i64 j1, i64 k) {
  for (i64 r = j; r < std::min(j + 4, j1); r++) {
    const char* p = reinterpret_cast<const char*>(W + r * ldw);
    for (i64 b = 0; b < k * 4; b += 64) __builtin_prefetch(p + b, 0, 3);
  }
}

void prefetch_weights(const float* W, i64 floats) {
  const char* p = reinterpret_cast<const char*>(W);
  const i64 bytes = std::min<i64>(floats * 4, kPrefetchBytes);
  for (i64 b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
}

// y[j] = alpha · W[j, :k] · x + beta · y[j] for rows j in [j0, j1): four rows at a time, so
// that each load of x serves four rows, with the rows kPrefetchBytes ahead prefetched.
static void gemv_rows(const float* W, i64 ldw, const float* x, float* y, i64 j0, i64 j1, i64 k, float alpha, float beta) {
  auto put = [&](i64 j, float s) { y[j] = beta == 0.0f ? alpha * s : alpha * s + beta * y[j]; };
  const i64 ahead = std::max<i64>(4, (kPrefetchBytes / (4 * std::max<i64>(k, 1))) & ~i64(3));
  for (i64 r = j0; r < std::min(j0 + ahead, j1); r += 4) prefetch_rows(W, ldw, r, j1, k);
  i64 j = j0;
  for (; j + 4 <= j1; j += 4) {
    prefetch_rows(W, ldw, j + ahead, j1, k);
    const float* w0 = W + j * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (i64 i = 0; i < k; i++) {
      const float xi = x[i];
      s0 += w0[i] * xi; s1 += w1[i] * xi; s2 += w2[i] * xi; s3 += w3[i] * xi;
    }
    put(j, s0); put(j + 1, s1); put(j + 2, s2); put(j + 3, s3);
  }
  for (; j < j1; j++) {
    const float* w = W + j * ldw;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 i = 0; i < k; i++) s += w[i] * x[i];
    put(j, s);
  }
}

// C (m × n) = A (m × k) · Wᵀ, W (n × k) row-major: the linear layer of a few tokens (an expert's
// share of a decoding batch). Four rows of W at a time go through every row of A while they sit
// in L1, so W is read from memory once, where sgemm would first copy it into its packed layout.
static void skinny_rows(const float* W, i64 ldw, const float* A, i64 lda, float* C, i64 ldc, i64 m, i64 n, i64 k) {
  i64 j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* w0 = W + j * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    i64 r = 0;
    // two rows of A at a time: eight sums per pass over k, each load of w serving two rows
    for (; r + 2 <= m; r += 2) {
      const float* x = A + r * lda;
      const float* y = x + lda;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, t0, t1, t2, t3)
      for (i64 i = 0; i < k; i++) {
        const float xi = x[i], yi = y[i];
        const float a0 = w0[i], a1 = w1[i], a2 = w2[i], a3 = w3[i];
        s0 += a0 * xi; s1 += a1 * xi; s2 += a2 * xi; s3 += a3 * xi;
        t0 += a0 * yi; t1 += a1 * yi; t2 += a2 * yi; t3 += a3 * yi;
      }
      float* c = C + r * ldc + j;
      c[0] = s0; c[1] = s1; c[2] = s2; c[3] = s3;
      c += ldc;
      c[0] = t0; c[1] = t1; c[2] = t2; c[3] = t3;
    }
    for (; r < m; r++) {
      const float* x = A + r * lda;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (i64 i = 0; i < k; i++) {
        const float xi = x[i];
        s0 += w0[i] * xi; s1 += w1[i] * xi; s2 += w2[i] * xi; s3 += w3[i] * xi;
      }
      float* c = C + r * ldc + j;
      c[0] = s0; c[1] = s1; c[2] = s2; c[3] = s3;
    }
  }
  for (; j < n; j++) {
    const float* w = W + j * ldw;
    for (i64 r = 0; r < m; r++) {
      const float* x = A + r * lda;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (i64 i = 0; i < k; i++) s += w[i] * x[i];
      C[r * ldc + j] = s;
    }
  }
}

// Weights per thread (floats) below which a single row's product stays on one thread. In a
// decoding loop the other threads sleep between products (they wait passively), and waking one
// costs tens of µs, more than it saves on a matrix of a few MB: batch-1 decoding of the bench
// models (an 8 MB output head) ran faster on one thread than with the head split over two.
constexpr i64 kGemvThreadMin = 1 << 21;
// Weights below which a few rows' product streams W (skinny_rows, one thread) instead of calling
// sgemm.
constexpr i64 kGemvParMin = 1 << 19;
// C = A · Wᵀ with a few rows of A streams W (skinny_rows) instead of calling sgemm when W is small
// enough for one thread. Measured with W cycling through 16 matrices of 256 × 256 (the small
// V3's experts): 15 / 25 / 37 µs at 4 / 8 / 12 rows against sgemm's 20 / 45 / 63; at 16 rows sgemm
// is ahead (42 against 46), and so it is, threaded, on larger matrices.
constexpr int kSkinnyMaxRows = 12;

// The inference kernels' linear layer (moe.cc, decode.cc): C (m×n) = A (m×k) · Wᵀ, streaming W for a few
// rows. Kept out of sgemm_rm, which training also calls: a different summation order there would
// change every training run's numbers, not only its speed.
void linear_rows(int m, int n, int k, const float* A, int lda, const float* W, int ldw, float* C, int ldc) {
  if (m > 1 && m <= kSkinnyMaxRows && static_cast<i64>(n) * k < kGemvParMin) {
    skinny_rows(W, ldw, A, lda, C, ldc, m, n, k);
  } else {
    sgemm_rm(false, true, m, n, k, 1.0f, A, lda, W, ldw, 0.0f, C, ldc);
  }
}

void sgemm_rm(bool transA, bool transB, int m, int n, int k, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // C = beta C (BLAS semantics: beta == 0 writes zeros without reading C)
    for (int i = 0; i < m; i++) {
      float* c = C + static_cast<i64>(i) * ldc;
      if (beta == 0.0f) std::fill(c, c + n, 0.0f);
      else for (int j = 0; j < n; j++) c[j] *= beta;
    }
    return;
  }
  // A single row or column is a matrix-vector product. sgemm would first pack the whole matrix
  // (a second pass over it); sgemv streams it once, which is what batch-1 decoding is bound by.
  // With beta = 0, BLAS must not read C, but sgemv implements it as a scaling of y, so
  // garbage (NaN) in an unzeroed output would survive: the sgemv paths clear it first.
  if (m == 1 && transB && !transA) {
    // The linear layer of a single token: c (1×n) = a (1×k) · Bᵀ, B (n×k) row-major.
    const int nt = omp_in_parallel() ? 1 : nthreads_for(static_cast<i64>(n) * k, kGemvThreadMin);
    if (nt > 1) {
#pragma omp parallel num_threads(nt)
      {
        const int t = omp_get_thread_num();
        const i64 per = (n + nt - 1) / nt;
        gemv_rows(B, ldb, A, C, std::min<i64>(n, t * per), std::min<i64>(n, (t + 1) * per), k, alpha, beta);
      }
    } else {
      gemv_rows(B, ldb, A, C, 0, n, k, alpha, beta);
    }
    return;
  }
  if (m == 1) {
    // c (1×n) = a (1×k) · op(B): rows of op(B)ᵀ dotted with a.
    if (beta == 0.0f) std::fill(C, C + n, 0.0f);
    cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans, transB ? n : k, transB ? k : n, alpha, B, ldb,
                A, transA ? lda : 1, beta, C, 1);
    return;
  }
  if (n == 1) {
    // c (m×1) = op(A) (m×k) · b (k×1).
    if (beta == 0.0f) for (int i = 0; i < m; i++) C[static_cast<i64>(i) * ldc] = 0.0f;
    cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transA ? k : m, transA ? m : k, alpha, A, lda,
                B, transB ? 1 : ldb, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// gemm(transA, transB, m, n, k, alpha, beta, a, aOffset, lda, strideA, b, bOffset, ldb, strideB,
//      c, cOffset, ldc, strideC, batch)
static Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Args A(info, "gemm");
  const bool ta = A.b(0), tb = A.b(1);
  const i64 m = A.n(2), n = A.n(3), k = A.n(4);
  const float alpha = static_cast<float>(A.num(5)), beta = static_cast<float>(A.num(6));
  const float* a = A.f32(7, "a");
  const i64 aOff = A.n(8), lda = A.n(9), sA = A.n(10);
  const float* b = A.f32(11, "b");
  const i64 bOff = A.n(12), ldb = A.n(13), sB = A.n(14);
  float* c = A.f32(15, "c");
  const i64 cOff = A.n(16), ldc = A.n(17), sC = A.n(18);
  const i64 batch = A.n(19);
  if (!A.ok) return info.Env().Undefined();
  if (m == 0 || n == 0 || batch == 0) return info.Env().Undefined();

  auto one = [&](i64 i) {
    sgemm_rm(ta, tb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha,
             a + aOff + i * sA, static_cast<int>(lda), b + bOff + i * sB, static_cast<int>(ldb), beta,
             c + cOff + i * sC, static_cast<int>(ldc));
  };
  const i64 cExtent = (m - 1) * ldc + n;
  const bool disjoint = sC >= cExtent;
  const double flops = 2.0 * static_cast<double>(m) * n * k;
  // Parallel over the batch when the matrices are small (a threaded sgemm would not scale on
  // them) and there are enough of them to share out.
  const int nt = threads();
  if (batch > 1 && disjoint && nt > 1 && flops < 64.0e6 && flops * batch > 2.0e6) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (i64 i = 0; i < batch; i++) one(i);
  } else {
    for (i64 i = 0; i < batch; i++) one(i);
  }
  return info.Env().Undefined();
}

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "gemm", Gemm);
}

}  // namespace r1
