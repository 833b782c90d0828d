// Reductions and row kernels: sumAxis, maxAxis, sumSquares, softmax(+grad), rmsNorm(+grad),
// crossEntropy(+grad).
#include "common.h"
#include "kernels.h"

namespace r1 {


// ---- vector building blocks (one row each) ---------------------------------------------------

R1_CLONES static float vmax(const float* x, i64 n) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (i64 i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

R1_CLONES static float vsum_exp(const float* x, float sub, i64 n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += fexp(x[i] - sub);
  return s;
}

R1_CLONES static float vexp_store(const float* x, float sub, float* o, i64 n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) {
    const float e = fexp(x[i] - sub);
    o[i] = e;
    s += e;
  }
  return s;
}

R1_CLONES static void vscale(float* o, float a, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) o[i] *= a;
}

R1_CLONES static float vdot(const float* a, const float* b, i64 n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

R1_CLONES static double vsum_d(const float* x, i64 n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += static_cast<double>(x[i]);
  return s;
}

R1_CLONES static double vsumsq_d(const float* x, i64 n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

// ---- reductions --------------------------------------------------------------------------------

// sumAxis(x, out, outer, R, inner)
static Napi::Value SumAxis(const Napi::CallbackInfo& info) {
  Args A(info, "sumAxis");
  const float* x = A.f32(0, "x");
  float* o = A.f32(1, "out");
  const i64 outer = A.n(2), R = A.n(3), inner = A.n(4);
  if (!A.ok) return info.Env().Undefined();
  if (inner == 1) {
    prows(outer, R, [&](i64 b, i64 e) {
      for (i64 r = b; r < e; r++) o[r] = static_cast<float>(vsum_d(x + r * R, R));
    });
    return info.Env().Undefined();
  }
  constexpr i64 CH = 256;
  const i64 chunks = (inner + CH - 1) / CH;
  prows(outer * chunks, R * std::min(inner, CH), [&](i64 b, i64 e) {
    double acc[CH];
    for (i64 it = b; it < e; it++) {
      const i64 oi = it / chunks, c0 = (it % chunks) * CH, w = std::min(CH, inner - c0);
      for (i64 j = 0; j < w; j++) acc[j] = 0;
      const float* base = x + oi * R * inner + c0;
      for (i64 r = 0; r < R; r++) {
        const float* row = base + r * inner;
#pragma omp simd
        for (i64 j = 0; j < w; j++) acc[j] += static_cast<double>(row[j]);
      }
      float* out = o + oi * inner + c0;
      for (i64 j = 0; j < w; j++) out[j] = static_cast<float>(acc[j]);
    }
  });
  return info.Env().Undefined();
}

// maxAxis(x, out, argmax | null, outer, R, inner): first maximum; a NaN wins at its first position.
static Napi::Value MaxAxis(const Napi::CallbackInfo& info) {
  Args A(info, "maxAxis");
  const float* x = A.f32(0, "x");
  float* o = A.f32(1, "out");
  int32_t* am = A.isNull(2) ? nullptr : A.i32(2, "argmax");
  const i64 outer = A.n(3), R = A.n(4), inner = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  if (R == 0) return info.Env().Undefined();
  prows(outer * inner, R, [&](i64 b, i64 e) {
    if (inner == 1) {
      for (i64 r = b; r < e; r++) {
        const float* row = x + r * R;
        float best = row[0];
        i64 bi = 0;
        for (i64 k = 1; k < R && best == best; k++) {
          const float v = row[k];
          if (v > best || v != v) { best = v; bi = k; }
        }
        o[r] = best;
        if (am) am[r] = static_cast<int32_t>(bi);
      }
      return;
    }
    // several columns per outer index: walk r in the outer loop, columns in the inner one
    i64 it = b;
    while (it < e) {
      const i64 oi = it / inner, j0 = it % inner, j1 = std::min(inner, j0 + (e - it));
      const float* base = x + oi * R * inner;
      float* out = o + oi * inner;
      int32_t* ai = am ? am + oi * inner : nullptr;
      for (i64 j = j0; j < j1; j++) { out[j] = base[j]; if (ai) ai[j] = 0; }
      for (i64 r = 1; r < R; r++) {
        const float* row = base + r * inner;
        for (i64 j = j0; j < j1; j++) {
          const float v = row[j], bv = out[j];
          if (bv == bv && (v > bv || v != v)) { out[j] = v; if (ai) ai[j] = static_cast<int32_t>(r); }
        }
      }
      it += j1 - j0;
    }
  });
  return info.Env().Undefined();
}

// sumSquares(x, n) -> number
static Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Args A(info, "sumSquares");
  const float* x = A.f32(0, "x");
  const i64 n = A.n(1);
  if (!A.ok) return info.Env().Undefined();
  const int nt = nthreads_for(n);
  double total = 0;
  if (nt <= 1) {
    total = vsumsq_d(x, n);
  } else {
#pragma omp parallel num_threads(nt) reduction(+ : total)
    {
      const int t = omp_get_thread_num(), T = omp_get_num_threads();
      const i64 b = n * t / T, e = n * (t + 1) / T;
      total += vsumsq_d(x + b, e - b);
    }
  }
  return Napi::Number::New(info.Env(), total);
}

// ---- softmax -----------------------------------------------------------------------------------

// softmax(x, out, rows, cols, log)
static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Args A(info, "softmax");
  const float* x = A.f32(0, "x");
  float* o = A.f32(1, "out");
  const i64 rows = A.n(2), cols = A.n(3);
  const bool lg = A.b(4);
  if (!A.ok || cols == 0) return info.Env().Undefined();
  prows(rows, cols * 8, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* xr = x + r * cols;
      float* orow = o + r * cols;
      const float mx = vmax(xr, cols);
      if (lg) {
        const float s = vsum_exp(xr, mx, cols);
        const float lse = mx + std::log(s);
#pragma omp simd
        for (i64 c = 0; c < cols; c++) orow[c] = xr[c] - lse;
      } else {
        const float s = vexp_store(xr, mx, orow, cols);
        vscale(orow, 1.0f / s, cols);
      }
    }
  });
  return info.Env().Undefined();
}

R1_CLONES static void softmax_grad_row(const float* y, const float* dy, float* dx, i64 n, bool lg) {
  if (lg) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 i = 0; i < n; i++) s += dy[i];
#pragma omp simd
    for (i64 i = 0; i < n; i++) dx[i] = dy[i] - fexp(y[i]) * s;
  } else {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (i64 i = 0; i < n; i++) s += dy[i] * y[i];
#pragma omp simd
    for (i64 i = 0; i < n; i++) dx[i] = y[i] * (dy[i] - s);
  }
}

// softmaxGrad(y, dy, dx, rows, cols, log)
static Napi::Value SoftmaxGrad(const Napi::CallbackInfo& info) {
  Args A(info, "softmaxGrad");
  const float* y = A.f32(0, "y");
  const float* dy = A.f32(1, "dy");
  float* dx = A.f32(2, "dx");
  const i64 rows = A.n(3), cols = A.n(4);
  const bool lg = A.b(5);
  if (!A.ok || cols == 0) return info.Env().Undefined();
  prows(rows, cols * 4, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) softmax_grad_row(y + r * cols, dy + r * cols, dx + r * cols, cols, lg);
  });
  return info.Env().Undefined();
}

// ---- rmsNorm -----------------------------------------------------------------------------------

R1_CLONES float rms_norm_row(const float* x, const float* w, float* o, i64 n, float eps) {
  float ss = 0;
#pragma omp simd reduction(+ : ss)
  for (i64 i = 0; i < n; i++) ss += x[i] * x[i];
  const float rs = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ss) / static_cast<double>(n) + eps));
#pragma omp simd
  for (i64 i = 0; i < n; i++) o[i] = x[i] * rs * w[i];
  return rs;
}

// rmsNorm(x, w, out, rstd, rows, cols, eps)
static Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Args A(info, "rmsNorm");
  const float* x = A.f32(0, "x");
  const float* w = A.f32(1, "w");
  float* o = A.f32(2, "out");
  float* rstd = A.f32(3, "rstd");
  const i64 rows = A.n(4), cols = A.n(5);
  const float eps = static_cast<float>(A.num(6));
  if (!A.ok) return info.Env().Undefined();
  if (cols == 0) {
    // mean of nothing: NaN, as in the reference (0/0)
    for (i64 r = 0; r < rows; r++) rstd[r] = std::numeric_limits<float>::quiet_NaN();
    return info.Env().Undefined();
  }
  prows(rows, cols * 2, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) rstd[r] = rms_norm_row(x + r * cols, w, o + r * cols, cols, eps);
  });
  return info.Env().Undefined();
}

R1_CLONES static void rms_grad_row(const float* x, const float* w, float rs, const float* dy, float* dx,
                                   float* dwp, i64 n) {
  // dx = r w dy - k x can cancel almost entirely (when dy is nearly parallel to x, e.g. cols = 1):
  // the row is computed in double, as the reference does, and rounded once.
  double dot = 0;
#pragma omp simd reduction(+ : dot)
  for (i64 i = 0; i < n; i++) dot += static_cast<double>(dy[i]) * w[i] * x[i];
  const double r = rs;
  const double k = r * r * r * dot / static_cast<double>(n);
  // dx may alias dy: read both before writing
#pragma omp simd
  for (i64 i = 0; i < n; i++) {
    const float xi = x[i], di = dy[i];
    dwp[i] += di * xi * rs;
    dx[i] = static_cast<float>(r * w[i] * di - k * xi);
  }
}

// rmsNormGrad(x, w, rstd, dy, dx, dw, rows, cols): dw accumulated, via per-thread partial sums.
static Napi::Value RmsNormGrad(const Napi::CallbackInfo& info) {
  Args A(info, "rmsNormGrad");
  const float* x = A.f32(0, "x");
  const float* w = A.f32(1, "w");
  const float* rstd = A.f32(2, "rstd");
  const float* dy = A.f32(3, "dy");
  float* dx = A.f32(4, "dx");
  float* dw = A.f32(5, "dw");
  const i64 rows = A.n(6), cols = A.n(7);
  if (!A.ok || cols == 0 || rows == 0) return info.Env().Undefined();
  int nt = nthreads_for(rows * cols * 3);
  if (nt > rows) nt = static_cast<int>(rows);
  std::vector<float> part(static_cast<size_t>(nt) * cols, 0.0f);
  auto body = [&](int t, int T) {
    const i64 b = rows * t / T, e = rows * (t + 1) / T;
    float* dwp = part.data() + static_cast<i64>(t) * cols;
    for (i64 r = b; r < e; r++) rms_grad_row(x + r * cols, w, rstd[r], dy + r * cols, dx + r * cols, dwp, cols);
  };
  if (nt <= 1) body(0, 1);
  else {
#pragma omp parallel num_threads(nt)
    body(omp_get_thread_num(), omp_get_num_threads());
  }
  for (int t = 0; t < nt; t++) {
    const float* p = part.data() + static_cast<i64>(t) * cols;
#pragma omp simd
    for (i64 c = 0; c < cols; c++) dw[c] += p[c];
  }
  return info.Env().Undefined();
}

// ---- cross-entropy -----------------------------------------------------------------------------

// crossEntropy(logits, targets, losses, lse, rows, V, ignoreIndex)
static Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Args A(info, "crossEntropy");
  const float* x = A.f32(0, "logits");
  const int32_t* tg = A.i32(1, "targets");
  float* loss = A.f32(2, "losses");
  float* lse = A.f32(3, "lse");
  const i64 rows = A.n(4), V = A.n(5);
  const i64 ignore = A.n(6);
  if (!A.ok) return info.Env().Undefined();
  prows(rows, V * 4, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const i64 t = tg[r];
      if (t == ignore) { loss[r] = 0; lse[r] = 0; continue; }
      const float* xr = x + r * V;
      const float mx = vmax(xr, V);
      const float s = vsum_exp(xr, mx, V);
      const float l = mx + std::log(s);
      lse[r] = l;
      loss[r] = l - xr[t];
    }
  });
  return info.Env().Undefined();
}

R1_CLONES static void ce_grad_row(const float* x, float l, float d, float* dx, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) dx[i] = d * fexp(x[i] - l);
}

// crossEntropyGrad(logits, targets, lse, dloss, dlogits, rows, V, ignoreIndex)
static Napi::Value CrossEntropyGrad(const Napi::CallbackInfo& info) {
  Args A(info, "crossEntropyGrad");
  const float* x = A.f32(0, "logits");
  const int32_t* tg = A.i32(1, "targets");
  const float* lse = A.f32(2, "lse");
  const float* dl = A.f32(3, "dloss");
  float* dx = A.f32(4, "dlogits");
  const i64 rows = A.n(5), V = A.n(6);
  const i64 ignore = A.n(7);
  if (!A.ok) return info.Env().Undefined();
  prows(rows, V * 2, [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const i64 t = tg[r];
      float* dr = dx + r * V;
      if (t == ignore) { std::fill(dr, dr + V, 0.0f); continue; }
      const float d = dl[r];
      // dlogits may alias logits: read the target's logit before the row is overwritten
      const float xt = x[r * V + t];
      ce_grad_row(x + r * V, lse[r], d, dr, V);
      dr[t] = d * (fexp(xt - lse[r]) - 1.0f);
    }
  });
  return info.Env().Undefined();
}

void RegisterRows(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "sumAxis", SumAxis);
  R1_EXPORT(exports, "maxAxis", MaxAxis);
  R1_EXPORT(exports, "sumSquares", SumSquares);
  R1_EXPORT(exports, "softmax", Softmax);
  R1_EXPORT(exports, "softmaxGrad", SoftmaxGrad);
  R1_EXPORT(exports, "rmsNorm", RmsNorm);
  R1_EXPORT(exports, "rmsNormGrad", RmsNormGrad);
  R1_EXPORT(exports, "crossEntropy", CrossEntropy);
  R1_EXPORT(exports, "crossEntropyGrad", CrossEntropyGrad);
}

}  // namespace r1
