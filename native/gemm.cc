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
