// Register-blocked matrix kernels for the attention blocks (used when Dk and Dv are multiples of
// 16). They replace sgemm calls on small blocks (block × S × D with D = 32..128), where OpenBLAS
// spends a large share of its time packing operands again for every call.
//
// Written with GCC vector extensions over a vector type V of W floats; attention.cc instantiates
// them for AVX-512 (V = v16, one zmm) with 8 rows × 2 vectors of accumulators (16 of the 32 zmm
// registers). An AVX2 instantiation (8-wide, 4 × 2 tiles) measured slower than OpenBLAS's sgemm,
// so AVX2 machines use sgemm.
#pragma once

#include "fmath.h"

#include <algorithm>
#include <cstdint>

namespace r1 {
namespace ak {

using i64 = int64_t;
typedef float v16 __attribute__((vector_size(64)));  // one zmm register

template <class V> R1_INLINE V ld(const float* p) { V v; __builtin_memcpy(&v, p, sizeof v); return v; }
template <class V> R1_INLINE void st(float* p, V v) { __builtin_memcpy(p, &v, sizeof v); }
template <class V> R1_INLINE V bc(float x) { return (V){} + x; }

// C[i, j] = alpha Σ_k A[i, k] Bt[k, j] for i < m, j < npad (npad a multiple of W NV; Bt packed
// k × (ldb >= npad) with zero padding). C is a scratch with ldc >= npad.
template <class V, int W, int MR, int NV>
R1_INLINE void nt(i64 m, i64 npad, i64 k, float alpha, const float* A, i64 lda, const float* Bt, i64 ldb,
                  float* C, i64 ldc) {
  for (i64 i0 = 0; i0 < m; i0 += MR) {
    const float* a[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) a[r] = A + std::min(i0 + r, m - 1) * lda;
    const i64 mr = std::min<i64>(MR, m - i0);
    for (i64 j0 = 0; j0 < npad; j0 += W * NV) {
      V acc[MR][NV];
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) acc[r][n] = (V){};
      const float* b = Bt + j0;
      for (i64 kk = 0; kk < k; kk++, b += ldb) {
        V bv[NV];
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) bv[n] = ld<V>(b + W * n);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
          const V av = bc<V>(a[r][kk]);
#pragma GCC unroll 4
          for (int n = 0; n < NV; n++) acc[r][n] += av * bv[n];
        }
      }
      for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) st<V>(C + (i0 + r) * ldc + j0 + W * n, acc[r][n] * alpha);
    }
  }
}

// C[i, j] (=, or += when ACC) rowScale[i] · Σ_k op(A)[i, k] B[k, j] for i < m, j < N (N a multiple
// of W NV); op(A)[i, k] = A[i lda + k], or A[k lda + i] when TA. rowScale null means 1.
template <class V, int W, int MR, int NV, bool TA, bool ACC>
R1_INLINE void nn(i64 m, i64 N, i64 k, const float* A, i64 lda, const float* B, i64 ldb, float* C, i64 ldc,
                  const float* rowScale) {
  for (i64 i0 = 0; i0 < m; i0 += MR) {
    i64 ri[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) ri[r] = std::min(i0 + r, m - 1);
    const i64 mr = std::min<i64>(MR, m - i0);
    for (i64 j0 = 0; j0 < N; j0 += W * NV) {
      V acc[MR][NV];
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) acc[r][n] = (V){};
      for (i64 kk = 0; kk < k; kk++) {
        V bv[NV];
        const float* b = B + kk * ldb + j0;
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) bv[n] = ld<V>(b + W * n);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
          const V av = bc<V>(TA ? A[kk * lda + ri[r]] : A[ri[r] * lda + kk]);
#pragma GCC unroll 4
          for (int n = 0; n < NV; n++) acc[r][n] += av * bv[n];
        }
      }
      for (int r = 0; r < mr; r++) {
        const float s = rowScale ? rowScale[i0 + r] : 1.0f;
        float* c = C + (i0 + r) * ldc + j0;
#pragma GCC unroll 4
        for (int n = 0; n < NV; n++) {
          if (ACC) st<V>(c + W * n, ld<V>(c + W * n) + acc[r][n] * s);
          else st<V>(c + W * n, acc[r][n] * s);
        }
      }
    }
  }
}

}  // namespace ak
}  // namespace r1
