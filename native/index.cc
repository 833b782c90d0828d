// Indexing kernels: rope, gatherRows, scatterAddRows, rowDot, gatherLast, scatterAddLast, topk.
// Indices were range-checked on the TypeScript side.
#include "common.h"
#include "kernels.h"

namespace r1 {


R1_CLONES static void rope_half(const float* x, float* o, const float* c, const float* s, i64 half, float sign) {
  // out may alias x: every pair is read before it is written
#pragma omp simd
  for (i64 j = 0; j < half; j++) {
    const float a = x[j], b = x[j + half], cj = c[j], sj = sign * s[j];
    o[j] = a * cj - b * sj;
    o[j + half] = a * sj + b * cj;
  }
}

R1_CLONES static void rope_inter(const float* x, float* o, const float* c, const float* s, i64 half, float sign) {
#pragma omp simd
  for (i64 j = 0; j < half; j++) {
    const float a = x[2 * j], b = x[2 * j + 1], cj = c[j], sj = sign * s[j];
    o[2 * j] = a * cj - b * sj;
    o[2 * j + 1] = a * sj + b * cj;
  }
}

void rope_row(const float* x, float* o, const float* cos, const float* sin, i64 half, bool interleaved) {
  if (interleaved) rope_inter(x, o, cos, sin, half, 1.0f);
  else rope_half(x, o, cos, sin, half, 1.0f);
}

// rope(x, out, cos, sin, positions, N, H, D, interleaved, inverse)
static Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args A(info, "rope");
  const float* x = A.f32(0, "x");
  float* o = A.f32(1, "out");
  const float* cs = A.f32(2, "cos");
  const float* sn = A.f32(3, "sin");
  const int32_t* pos = A.i32(4, "positions");
  const i64 N = A.n(5), H = A.n(6), D = A.n(7);
  const bool inter = A.b(8), inv = A.b(9);
  if (!A.ok) return info.Env().Undefined();
  const i64 half = D / 2;
  if (half == 0) return info.Env().Undefined();
  const float sign = inv ? -1.0f : 1.0f;
  prows(N * H, D, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const i64 p = pos[r / H];
      const float* xr = x + r * D;
      float* orow = o + r * D;
      if (inter) rope_inter(xr, orow, cs + p * half, sn + p * half, half, sign);
      else rope_half(xr, orow, cs + p * half, sn + p * half, half, sign);
    }
  });
  return info.Env().Undefined();
}

// gatherRows(src, idx, out, n, cols): 4-byte elements (f32 or i32, same dtype)
static Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  Args A(info, "gatherRows");
  int sdt = 0, odt = 0;
  const char* src = static_cast<const char*>(A.any(0, &sdt, "src"));
  const int32_t* idx = A.i32(1, "idx");
  char* out = static_cast<char*>(A.any(2, &odt, "out"));
  const i64 n = A.n(3), cols = A.n(4);
  if (!A.ok) return info.Env().Undefined();
  if (sdt != odt) { A.fail("src and out must have the same dtype"); return info.Env().Undefined(); }
  const i64 rb = cols * 4;
  prows(n, cols, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; i++) std::memcpy(out + i * rb, src + static_cast<i64>(idx[i]) * rb, rb);
  }, i64(1) << 16);
  return info.Env().Undefined();
}

R1_CLONES static void axpy(float* o, const float* s, float w, i64 n) {
#pragma omp simd
  for (i64 j = 0; j < n; j++) o[j] += w * s[j];
}

// scatterAddRows(src, idx, weights | null, out, n, cols): out[idx[i]] += w[i] src[i].
// Race-free: threads own disjoint column ranges and each walks all n rows in order (so the
// accumulation order per element is the sequential one).
static Napi::Value ScatterAddRows(const Napi::CallbackInfo& info) {
  Args A(info, "scatterAddRows");
  const float* src = A.f32(0, "src");
  const int32_t* idx = A.i32(1, "idx");
  const float* w = A.isNull(2) ? nullptr : A.f32(2, "weights");
  float* out = A.f32(3, "out");
  const i64 n = A.n(4), cols = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  int nt = nthreads_for(n * cols);
  // column slices of at least 16 floats (a cache line), so threads never share a line
  const i64 maxSlices = cols / 16;
  if (nt > maxSlices) nt = static_cast<int>(std::max<i64>(1, maxSlices));
  auto body = [&](int t, int T) {
    i64 c0 = (cols * t / T) & ~i64(15), c1 = t == T - 1 ? cols : ((cols * (t + 1) / T) & ~i64(15));
    if (c1 <= c0) return;
    for (i64 i = 0; i < n; i++) axpy(out + static_cast<i64>(idx[i]) * cols + c0, src + i * cols + c0, w ? w[i] : 1.0f, c1 - c0);
  };
  if (nt <= 1) body(0, 1);
  else {
#pragma omp parallel num_threads(nt)
    body(omp_get_thread_num(), omp_get_num_threads());
  }
  return info.Env().Undefined();
}

R1_CLONES static double dot_d(const float* a, const float* b, i64 n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

// rowDot(a, idx, b, out, n, cols)
static Napi::Value RowDot(const Napi::CallbackInfo& info) {
  Args A(info, "rowDot");
  const float* a = A.f32(0, "a");
  const int32_t* idx = A.i32(1, "idx");
  const float* b = A.f32(2, "b");
  float* out = A.f32(3, "out");
  const i64 n = A.n(4), cols = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  prows(n, cols, [&](i64 s, i64 e) {
    for (i64 i = s; i < e; i++) out[i] = static_cast<float>(dot_d(a + static_cast<i64>(idx[i]) * cols, b + i * cols, cols));
  });
  return info.Env().Undefined();
}

// gatherLast(x, idx, out, rows, cols, k): 4-byte elements
static Napi::Value GatherLast(const Napi::CallbackInfo& info) {
  Args A(info, "gatherLast");
  int xdt = 0, odt = 0;
  const int32_t* x = static_cast<const int32_t*>(A.any(0, &xdt, "x"));
  const int32_t* idx = A.i32(1, "idx");
  int32_t* out = static_cast<int32_t*>(A.any(2, &odt, "out"));
  const i64 rows = A.n(3), cols = A.n(4), k = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  if (xdt != odt) { A.fail("x and out must have the same dtype"); return info.Env().Undefined(); }
  prows(rows, k, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const int32_t* xr = x + r * cols;
      const int32_t* ir = idx + r * k;
      int32_t* orow = out + r * k;
      for (i64 j = 0; j < k; j++) orow[j] = xr[ir[j]];
    }
  });
  return info.Env().Undefined();
}

// scatterAddLast(src, idx, out, rows, cols, k): out[r, idx[r, j]] += src[r, j]
static Napi::Value ScatterAddLast(const Napi::CallbackInfo& info) {
  Args A(info, "scatterAddLast");
  const float* src = A.f32(0, "src");
  const int32_t* idx = A.i32(1, "idx");
  float* out = A.f32(2, "out");
  const i64 rows = A.n(3), cols = A.n(4), k = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  prows(rows, k, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      float* orow = out + r * cols;
      const int32_t* ir = idx + r * k;
      const float* sr = src + r * k;
      for (i64 j = 0; j < k; j++) orow[ir[j]] += sr[j];
    }
  });
  return info.Env().Undefined();
}

// topk(x, values, indices, rows, cols, k): descending; ties keep the lower index first; NaN first.
static inline bool topk_before(float v, i64 c, float w, i64 d) {
  const bool nv = v != v, nw = w != w;
  if (nv != nw) return nv;
  if (!nv && v != w) return v > w;
  return c < d;
}

static Napi::Value TopK(const Napi::CallbackInfo& info) {
  Args A(info, "topk");
  const float* x = A.f32(0, "x");
  float* vals = A.f32(1, "values");
  int32_t* inds = A.i32(2, "indices");
  const i64 rows = A.n(3), cols = A.n(4), k = A.n(5);
  if (!A.ok || k == 0) return info.Env().Undefined();
  prows(rows, cols * 2, [&](i64 b, i64 e) {
    std::vector<int32_t> order;
    std::vector<float> bv(static_cast<size_t>(k));
    std::vector<int32_t> bi(static_cast<size_t>(k));
    for (i64 r = b; r < e; r++) {
      const float* xr = x + r * cols;
      if (k <= 32) {
        // insertion into a sorted buffer; most elements fail the first comparison
        i64 cnt = 0;
        for (i64 c = 0; c < cols; c++) {
          const float v = xr[c];
          if (cnt == k && !topk_before(v, c, bv[k - 1], bi[k - 1])) continue;
          i64 p = cnt < k ? cnt : k - 1;
          while (p > 0 && topk_before(v, c, bv[p - 1], bi[p - 1])) { bv[p] = bv[p - 1]; bi[p] = bi[p - 1]; p--; }
          bv[p] = v;
          bi[p] = static_cast<int32_t>(c);
          if (cnt < k) cnt++;
        }
        for (i64 j = 0; j < k; j++) { vals[r * k + j] = bv[j]; inds[r * k + j] = bi[j]; }
      } else {
        order.resize(static_cast<size_t>(cols));
        for (i64 c = 0; c < cols; c++) order[c] = static_cast<int32_t>(c);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t p, int32_t q) {
          return topk_before(xr[p], p, xr[q], q);
        });
        for (i64 j = 0; j < k; j++) { vals[r * k + j] = xr[order[j]]; inds[r * k + j] = order[j]; }
      }
    }
  });
  return info.Env().Undefined();
}

void RegisterIndex(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "rope", Rope);
  R1_EXPORT(exports, "gatherRows", GatherRows);
  R1_EXPORT(exports, "scatterAddRows", ScatterAddRows);
  R1_EXPORT(exports, "rowDot", RowDot);
  R1_EXPORT(exports, "gatherLast", GatherLast);
  R1_EXPORT(exports, "scatterAddLast", ScatterAddLast);
  R1_EXPORT(exports, "topk", TopK);
}

}  // namespace r1
