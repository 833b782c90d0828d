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

template <class S, class D>
static void strided(const S* src, D* dst, const Layout& L) {
  const i64 total = L.total();
  if (total == 0) return;
  const i64 ss = L.sa[L.rank - 1], ds = L.so[L.rank - 1];
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
