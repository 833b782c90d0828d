// Scalar float math written so that loops calling it vectorise (no napi dependency).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

// Hot loops are compiled twice, for the x86-64-v3 baseline (AVX2+FMA) and for AVX-512, and the
// dynamic loader picks the clone that the CPU runs (GCC function multiversioning).
#if defined(__x86_64__) && !defined(R1_NO_CLONES)
#define R1_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define R1_CLONES
#endif

// Small math helpers must be inlined into the vector loops that call them (an out-of-line call
// keeps the loop scalar); GCC's inliner may give up in large functions otherwise.
#define R1_INLINE inline __attribute__((always_inline))

namespace r1 {

// ---- math --------------------------------------------------------------------------------------

R1_INLINE float bits_to_f(int32_t i) { float f; std::memcpy(&f, &i, 4); return f; }
R1_INLINE int32_t f_to_bits(float f) { int32_t i; std::memcpy(&i, &f, 4); return i; }

// exp(x) in float, branch-free so that loops calling it vectorise (Cephes polynomial, ~1 ulp).
// exp(-inf) = 0, exp(+inf) = inf, NaN propagates; results below ~1e-38 flush to 0.
R1_INLINE float fexp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  // n = round(x / ln2) via the 1.5·2^23 trick (round to nearest)
  const float shifter = 12582912.0f;
  float t = xc * 1.44269504088896341f + shifter;
  int32_t n = f_to_bits(t) - f_to_bits(shifter);
  float fn = t - shifter;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  float y = p * (r * r) + r + 1.0f;
  // scale by 2^n in two steps so n = -126..128 stays representable
  int32_t n1 = n >> 1, n2 = n - n1;
  y = y * bits_to_f((n1 + 127) << 23) * bits_to_f((n2 + 127) << 23);
  y = x < lo ? 0.0f : y;
  y = x > hi ? std::numeric_limits<float>::infinity() : y;
  return x != x ? x : y;
}

R1_INLINE float fsigmoid(float x) { return 1.0f / (1.0f + fexp(-x)); }

// JavaScript's ToInt32 (what storing a number into an Int32Array does): truncate toward zero,
// wrap modulo 2^32, NaN/±inf -> 0.
inline int32_t js_to_int32(double d) {
  if (d > -2147483649.0 && d < 2147483648.0) return static_cast<int32_t>(d);
  if (!std::isfinite(d)) return 0;
  double t = std::trunc(d);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  uint32_t u = static_cast<uint32_t>(m);
  return static_cast<int32_t>(u);
}

}  // namespace r1
