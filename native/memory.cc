// Copies with dtype conversion: copy (contiguous) and stridedCopy (any strides, up to 8 dims).
#include "common.h"
#include "kernels.h"

namespace r1 {

template <class S, class D> struct Conv;
template <> struct Conv<float, float> { static float c(float x) { return x; } };
template <> struct Conv<int32_t, int32_t> { static int32_t c(int32_t x) { return x; } };
template <> struct Conv<int32_t, float> { static float c(int32_t x) { return static_cast<float>(x); } };
template <> struct Conv<float, int32_t> {
  static int32_t c(float x) {
    // fast path for the common in-range case; JS ToInt32 semantics otherwise
    return (x > -2147483648.0f && x < 2147483648.0f) ? static_cast<int32_t>(x) : js_to_int32(x);
  }
};

// A transpose-like copy: the destination is contiguous along the last axis and the source along
// axis p. Copied in 32×32 tiles so that both sides stay in cache (a plain walk would read the
// source with a large stride, one cache line per element).
template <class S, class D>
static void strided_tiled(const S* src, D* dst, const Layout& L, int p) {
  const int r = L.rank, l = r - 1;
  constexpr i64 TB = 32;
  // the remaining axes, walked as an outer loop
  Layout O;
  O.rank = 0;
  for (int d = 0; d < r; d++) {
    if (d == p || d == l) continue;
    O.shape[O.rank] = L.shape[d]; O.sa[O.rank] = L.sa[d]; O.so[O.rank] = L.so[d]; O.rank++;
  }
  if (O.rank == 0) { O.rank = 1; O.shape[0] = 1; O.sa[0] = 0; O.so[0] = 0; }
  const i64 outer = O.total(), np = L.shape[p], nl = L.shape[l];
  const i64 tp = (np + TB - 1) / TB, tl = (nl + TB - 1) / TB;
  const i64 items = outer * tp * tl;
  const i64 sp = L.sa[p], dp = L.so[p], sl = L.sa[l];  // source step along p is 1 here
  const int nt = nthreads_for(outer * np * nl, i64(1) << 16);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (i64 it = 0; it < items; it++) {
    const i64 o = it / (tp * tl), t = it % (tp * tl), p0 = (t / tl) * TB, l0 = (t % tl) * TB;
    i64 oa = 0, oo = 0, rem = o;
    for (int d = O.rank - 1; d >= 0; --d) { const i64 idx = rem % O.shape[d]; rem /= O.shape[d]; oa += idx * O.sa[d]; oo += idx * O.so[d]; }
    const i64 p1 = std::min(np, p0 + TB), l1 = std::min(nl, l0 + TB);
    for (i64 i = p0; i < p1; i++) {
      const S* s = src + oa + i * sp;
      D* d = dst + oo + i * dp;
      for (i64 j = l0; j < l1; j++) d[j] = Conv<S, D>::c(s[j * sl]);
    }
  }
}

template <class S, class D>
static void strided(const S* src, D* dst, const Layout& L) {
  const i64 total = L.total();
  if (total == 0) return;
  const i64 ss = L.sa[L.rank - 1], ds = L.so[L.rank - 1];
  if (L.rank >= 2 && ds == 1 && ss != 1 && ss != 0 && L.shape[L.rank - 1] >= 8) {
    for (int p = L.rank - 2; p >= 0; --p) {
      if (L.sa[p] == 1 && L.shape[p] >= 8) { strided_tiled(src, dst, L, p); return; }
    }
  }
  prange(total, [&](i64 beg, i64 end) {
    walk(L, beg, end, [&](i64 oa, i64, i64 oo, i64 cnt) {
      const S* s = src + oa;
      D* d = dst + oo;
      if (ss == 1 && ds == 1) {
        if constexpr (std::is_same_v<S, D>) std::memmove(d, s, cnt * sizeof(S));
        else {
#pragma omp simd
          for (i64 i = 0; i < cnt; i++) d[i] = Conv<S, D>::c(s[i]);
        }
      } else if (ss == 0) {
        const D v = Conv<S, D>::c(s[0]);
        for (i64 i = 0; i < cnt; i++) d[i * ds] = v;
      } else {
        for (i64 i = 0; i < cnt; i++) d[i * ds] = Conv<S, D>::c(s[i * ss]);
      }
    });
  }, i64(1) << 16);
}

// stridedCopy(src, srcOffset, dst, dstOffset, layout)   layout = [rank, shape, srcStrides, dstStrides]
// (the walk's operand b is unused; the destination plays the role of the output o)
static Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  Args A(info, "stridedCopy");
  int sdt = 0, ddt = 0;
  void* src = A.any(0, &sdt, "src");
  const i64 so = A.n(1);
  void* dst = A.any(2, &ddt, "dst");
  const i64 doff = A.n(3);
  const double* m = A.f64(4, "layout");
  if (!A.ok) return info.Env().Undefined();
  Layout L;
  L.rank = static_cast<int>(m[0]);
  if (L.rank < 1 || L.rank > 8) { A.fail("rank must be 1..8"); return info.Env().Undefined(); }
  const int r = L.rank;
  for (int d = 0; d < r; d++) {
    L.shape[d] = static_cast<i64>(m[1 + d]);
    L.sa[d] = static_cast<i64>(m[1 + r + d]);
    L.so[d] = static_cast<i64>(m[1 + 2 * r + d]);
  }
  if (sdt == kF32 && ddt == kF32) strided(static_cast<const float*>(src) + so, static_cast<float*>(dst) + doff, L);
  else if (sdt == kI32 && ddt == kI32) strided(static_cast<const int32_t*>(src) + so, static_cast<int32_t*>(dst) + doff, L);
  else if (sdt == kI32 && ddt == kF32) strided(static_cast<const int32_t*>(src) + so, static_cast<float*>(dst) + doff, L);
  else strided(static_cast<const float*>(src) + so, static_cast<int32_t*>(dst) + doff, L);
  return info.Env().Undefined();
}

// convert(src, srcOffset, dst, dstOffset, n): contiguous copy between f32 and i32 buffers
static Napi::Value Convert(const Napi::CallbackInfo& info) {
  Args A(info, "copy");
  int sdt = 0, ddt = 0;
  void* src = A.any(0, &sdt, "src");
  const i64 so = A.n(1);
  void* dst = A.any(2, &ddt, "dst");
  const i64 doff = A.n(3);
  const i64 n = A.n(4);
  if (!A.ok) return info.Env().Undefined();
  if (sdt == ddt) {
    std::memmove(static_cast<char*>(dst) + doff * 4, static_cast<const char*>(src) + so * 4, n * 4);
  } else if (sdt == kF32) {
    const float* s = static_cast<const float*>(src) + so;
    int32_t* d = static_cast<int32_t*>(dst) + doff;
    prange(n, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; i++) d[i] = Conv<float, int32_t>::c(s[i]);
    });
  } else {
    const int32_t* s = static_cast<const int32_t*>(src) + so;
    float* d = static_cast<float*>(dst) + doff;
    prange(n, [&](i64 b, i64 e) {
#pragma omp simd
      for (i64 i = b; i < e; i++) d[i] = static_cast<float>(s[i]);
    });
  }
  return info.Env().Undefined();
}

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "stridedCopy", StridedCopy);
  R1_EXPORT(exports, "convert", Convert);
}

}  // namespace r1
