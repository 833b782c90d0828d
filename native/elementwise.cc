// Elementwise kernels: binary (with broadcasting through strides), compare, unary, unaryGrad,
// affine, where, swiglu, swigluGrad, adamw.
#include "common.h"
#include "kernels.h"

namespace r1 {

// ---- binary / compare ------------------------------------------------------------------------

// Op codes: the order of BinaryOp / CompareOp in src/backend/cpu/cpu.ts.
struct Add { R1_INLINE static float f(float a, float b) { return a + b; } };
struct Sub { R1_INLINE static float f(float a, float b) { return a - b; } };
struct Mul { R1_INLINE static float f(float a, float b) { return a * b; } };
struct Div { R1_INLINE static float f(float a, float b) { return a / b; } };
struct Max { R1_INLINE static float f(float a, float b) { return (a != a || b != b) ? a + b : (a > b ? a : (b > a ? b : (a == 0 ? (std::signbit(a) ? b : a) : a))); } };
struct Min { R1_INLINE static float f(float a, float b) { return (a != a || b != b) ? a + b : (a < b ? a : (b < a ? b : (a == 0 ? (std::signbit(a) ? a : b) : a))); } };
struct Pow { R1_INLINE static float f(float a, float b) { return static_cast<float>(std::pow(static_cast<double>(a), static_cast<double>(b))); } };
struct Eq { R1_INLINE static float f(float a, float b) { return a == b ? 1.0f : 0.0f; } };
struct Ne { R1_INLINE static float f(float a, float b) { return a != b ? 1.0f : 0.0f; } };
struct Lt { R1_INLINE static float f(float a, float b) { return a < b ? 1.0f : 0.0f; } };
struct Le { R1_INLINE static float f(float a, float b) { return a <= b ? 1.0f : 0.0f; } };
struct Gt { R1_INLINE static float f(float a, float b) { return a > b ? 1.0f : 0.0f; } };
struct Ge { R1_INLINE static float f(float a, float b) { return a >= b ? 1.0f : 0.0f; } };

// Inner loops along the last axis, specialised for the usual stride pairs.
template <class Op>
R1_CLONES
static void inner_loop(const float* __restrict a, i64 sa, const float* __restrict b, i64 sb,
                       float* __restrict o, i64 n) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (i64 i = 0; i < n; i++) o[i] = Op::f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = b[0];
#pragma omp simd
    for (i64 i = 0; i < n; i++) o[i] = Op::f(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = a[0];
#pragma omp simd
    for (i64 i = 0; i < n; i++) o[i] = Op::f(av, b[i]);
  } else {
    for (i64 i = 0; i < n; i++) o[i] = Op::f(a[i * sa], b[i * sb]);
  }
}

// Note: `out` may alias an input only where the element read is the element written (the TS
// side snapshots aliased inputs otherwise), so __restrict holds for every access pattern used.
template <class Op>
static void run_binary(const float* a, const float* b, float* o, const Layout& L) {
  const i64 total = L.total();
  if (total == 0) return;
  prange(total, [&](i64 beg, i64 end) {
    walk(L, beg, end, [&](i64 oa, i64 ob, i64 oo, i64 cnt) {
      inner_loop<Op>(a + oa, L.sa[L.rank - 1], b + ob, L.sb[L.rank - 1], o + oo, cnt);
    });
  });
}

// binary(op, a, b, out, layout)   layout = [rank, shape, aStrides, bStrides] (out contiguous)
static Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args A(info, "binary");
  int op = static_cast<int>(A.n(0));
  const float* a = A.f32(1, "a");
  const float* b = A.f32(2, "b");
  float* o = A.f32(3, "out");
  Layout L;
  if (!read_layout(A, 4, 2, L)) return info.Env().Undefined();
  contiguous_strides(L);
  if (!A.ok) return info.Env().Undefined();
  switch (op) {
    case 0: run_binary<Add>(a, b, o, L); break;
    case 1: run_binary<Sub>(a, b, o, L); break;
    case 2: run_binary<Mul>(a, b, o, L); break;
    case 3: run_binary<Div>(a, b, o, L); break;
    case 4: run_binary<Max>(a, b, o, L); break;
    case 5: run_binary<Min>(a, b, o, L); break;
    case 6: run_binary<Pow>(a, b, o, L); break;
    default: A.fail("unknown op");
  }
  return info.Env().Undefined();
}

static Napi::Value Compare(const Napi::CallbackInfo& info) {
  Args A(info, "compare");
  int op = static_cast<int>(A.n(0));
  const float* a = A.f32(1, "a");
  const float* b = A.f32(2, "b");
  float* o = A.f32(3, "out");
  Layout L;
  if (!read_layout(A, 4, 2, L)) return info.Env().Undefined();
  contiguous_strides(L);
  if (!A.ok) return info.Env().Undefined();
  switch (op) {
    case 0: run_binary<Eq>(a, b, o, L); break;
    case 1: run_binary<Ne>(a, b, o, L); break;
    case 2: run_binary<Lt>(a, b, o, L); break;
    case 3: run_binary<Le>(a, b, o, L); break;
    case 4: run_binary<Gt>(a, b, o, L); break;
    case 5: run_binary<Ge>(a, b, o, L); break;
    default: A.fail("unknown op");
  }
  return info.Env().Undefined();
}

// ---- unary / unaryGrad -------------------------------------------------------------------------
// Op codes: neg exp log sqrt rsqrt square abs sigmoid silu tanh relu recip (UnaryOp order).

struct UNeg { R1_INLINE static float f(float x) { return -x; } R1_INLINE static float d(float, float dy) { return -dy; } };
struct UExp { R1_INLINE static float f(float x) { return fexp(x); } R1_INLINE static float d(float x, float dy) { return dy * fexp(x); } };
struct ULog { R1_INLINE static float f(float x) { return std::log(x); } R1_INLINE static float d(float x, float dy) { return dy / x; } };
struct USqrt { R1_INLINE static float f(float x) { return std::sqrt(x); } R1_INLINE static float d(float x, float dy) { return dy * (0.5f / std::sqrt(x)); } };
struct URsqrt { R1_INLINE static float f(float x) { return 1.0f / std::sqrt(x); } R1_INLINE static float d(float x, float dy) { return dy * (-0.5f / (x * std::sqrt(x))); } };
struct USquare { R1_INLINE static float f(float x) { return x * x; } R1_INLINE static float d(float x, float dy) { return dy * (2.0f * x); } };
struct UAbs {
  R1_INLINE static float f(float x) { return std::fabs(x); }
  R1_INLINE static float d(float x, float dy) { return dy * (x > 0 ? 1.0f : (x < 0 ? -1.0f : x)); }
};
// σ'(x) = e / (1 + e)² with e = exp(-|x|): no cancellation in 1 - σ for large |x|.
R1_INLINE float dsigmoid(float x) {
  const float e = fexp(-std::fabs(x)), d = 1.0f + e;
  return e / (d * d);
}
// 1 - σ(x), accurate for large positive x too.
R1_INLINE float one_minus_sigmoid(float x) {
  const float e = fexp(-x);
  return x >= 0 ? e / (1.0f + e) : 1.0f - 1.0f / (1.0f + e);
}
struct USigmoid {
  R1_INLINE static float f(float x) { return fsigmoid(x); }
  R1_INLINE static float d(float x, float dy) { return dy * dsigmoid(x); }
};
struct USilu {
  R1_INLINE static float f(float x) { return x * fsigmoid(x); }
  R1_INLINE static float d(float x, float dy) { float s = fsigmoid(x); return dy * (s * (1.0f + x * one_minus_sigmoid(x))); }
};
struct UTanh {
  R1_INLINE static float f(float x) { return std::tanh(x); }
  // 1 - tanh² cancels for large |x| in float: computed in double
  R1_INLINE static float d(float x, float dy) { double t = std::tanh(static_cast<double>(x)); return static_cast<float>(dy * (1.0 - t * t)); }
};
struct URelu { R1_INLINE static float f(float x) { return x > 0 ? x : 0.0f; } R1_INLINE static float d(float x, float dy) { return dy * (x > 0 ? 1.0f : 0.0f); } };
struct URecip { R1_INLINE static float f(float x) { return 1.0f / x; } R1_INLINE static float d(float x, float dy) { return -dy / (x * x); } };

template <class Op>
R1_CLONES
static void unary_loop(const float* x, float* o, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) o[i] = Op::f(x[i]);
}

template <class Op>
R1_CLONES
static void unary_grad_loop(const float* x, const float* dy, float* dx, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) dx[i] = Op::d(x[i], dy[i]);
}

template <class Op>
static void run_unary(const float* x, float* o, i64 n) {
  prange(n, [&](i64 b, i64 e) { unary_loop<Op>(x + b, o + b, e - b); });
}
template <class Op>
static void run_unary_grad(const float* x, const float* dy, float* dx, i64 n) {
  prange(n, [&](i64 b, i64 e) { unary_grad_loop<Op>(x + b, dy + b, dx + b, e - b); });
}

#define R1_UNARY_SWITCH(OP, CALL)                 \
  switch (OP) {                                   \
    case 0: CALL(UNeg); break;                    \
    case 1: CALL(UExp); break;                    \
    case 2: CALL(ULog); break;                    \
    case 3: CALL(USqrt); break;                   \
    case 4: CALL(URsqrt); break;                  \
    case 5: CALL(USquare); break;                 \
    case 6: CALL(UAbs); break;                    \
    case 7: CALL(USigmoid); break;                \
    case 8: CALL(USilu); break;                   \
    case 9: CALL(UTanh); break;                   \
    case 10: CALL(URelu); break;                  \
    case 11: CALL(URecip); break;                 \
    default: A.fail("unknown op");                \
  }

// unary(op, x, out, n)
static Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args A(info, "unary");
  int op = static_cast<int>(A.n(0));
  const float* x = A.f32(1, "x");
  float* o = A.f32(2, "out");
  i64 n = A.n(3);
  if (!A.ok) return info.Env().Undefined();
#define CALL(T) run_unary<T>(x, o, n)
  R1_UNARY_SWITCH(op, CALL)
#undef CALL
  return info.Env().Undefined();
}

// unaryGrad(op, x, dy, dx, n)
static Napi::Value UnaryGrad(const Napi::CallbackInfo& info) {
  Args A(info, "unaryGrad");
  int op = static_cast<int>(A.n(0));
  const float* x = A.f32(1, "x");
  const float* dy = A.f32(2, "dy");
  float* dx = A.f32(3, "dx");
  i64 n = A.n(4);
  if (!A.ok) return info.Env().Undefined();
#define CALL(T) run_unary_grad<T>(x, dy, dx, n)
  R1_UNARY_SWITCH(op, CALL)
#undef CALL
  return info.Env().Undefined();
}

// affine(x, alpha, beta, out, n)
static Napi::Value Affine(const Napi::CallbackInfo& info) {
  Args A(info, "affine");
  const float* x = A.f32(0, "x");
  const float alpha = static_cast<float>(A.num(1)), beta = static_cast<float>(A.num(2));
  float* o = A.f32(3, "out");
  i64 n = A.n(4);
  if (!A.ok) return info.Env().Undefined();
  prange(n, [&](i64 b, i64 e) {
#pragma omp simd
    for (i64 i = b; i < e; i++) o[i] = alpha * x[i] + beta;
  });
  return info.Env().Undefined();
}

// where(cond (f32|i32), a, b, out, n)
static Napi::Value Where(const Napi::CallbackInfo& info) {
  Args A(info, "where");
  int dt = 0;
  const void* c = A.any(0, &dt, "cond");
  const float* a = A.f32(1, "a");
  const float* b = A.f32(2, "b");
  float* o = A.f32(3, "out");
  i64 n = A.n(4);
  if (!A.ok) return info.Env().Undefined();
  if (dt == kF32) {
    const float* cf = static_cast<const float*>(c);
    prange(n, [&](i64 s, i64 e) {
#pragma omp simd
      for (i64 i = s; i < e; i++) o[i] = cf[i] != 0.0f ? a[i] : b[i];
    });
  } else {
    const int32_t* ci = static_cast<const int32_t*>(c);
    prange(n, [&](i64 s, i64 e) {
#pragma omp simd
      for (i64 i = s; i < e; i++) o[i] = ci[i] != 0 ? a[i] : b[i];
    });
  }
  return info.Env().Undefined();
}

// ---- swiglu ------------------------------------------------------------------------------------

R1_CLONES
void swiglu_row(const float* g, const float* u, float* o, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) o[i] = g[i] * fsigmoid(g[i]) * u[i];
}

R1_CLONES
static void swiglu_grad_loop(const float* G, const float* U, const float* DY, float* DG, float* DU, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) {
    const float g = G[i], u = U[i], d = DY[i];
    const float s = fsigmoid(g);
    DG[i] = d * u * s * (1.0f + g * one_minus_sigmoid(g));
    DU[i] = d * g * s;
  }
}

// swiglu(gate, up, out, n)
static Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  Args A(info, "swiglu");
  const float* g = A.f32(0, "gate");
  const float* u = A.f32(1, "up");
  float* o = A.f32(2, "out");
  i64 n = A.n(3);
  if (!A.ok) return info.Env().Undefined();
  prange(n, [&](i64 b, i64 e) { swiglu_row(g + b, u + b, o + b, e - b); });
  return info.Env().Undefined();
}

// swigluGrad(gate, up, dy, dGate, dUp, n)
static Napi::Value SwigluGrad(const Napi::CallbackInfo& info) {
  Args A(info, "swigluGrad");
  const float* g = A.f32(0, "gate");
  const float* u = A.f32(1, "up");
  const float* dy = A.f32(2, "dy");
  float* dg = A.f32(3, "dGate");
  float* du = A.f32(4, "dUp");
  i64 n = A.n(5);
  if (!A.ok) return info.Env().Undefined();
  prange(n, [&](i64 b, i64 e) { swiglu_grad_loop(g + b, u + b, dy + b, dg + b, du + b, e - b); });
  return info.Env().Undefined();
}

// ---- adamw -------------------------------------------------------------------------------------

// Arithmetic in double, rounded once per stored value (as the reference does): the update mixes
// terms of opposite sign (b1 m + (1-b1) g) whose float rounding would show as relative errors of
// 1e-6 and more; the loop is bound by memory traffic (7 streams), so double costs nothing measurable.
R1_CLONES
static void adamw_loop(float* P, const float* G, float* M, float* V, i64 n, double gs, double b1, double b2,
                       double lr_bc1, double inv_bc2, double eps, double lr_wd) {
  const double c1 = 1.0 - b1, c2 = 1.0 - b2;
#pragma omp simd
  for (i64 i = 0; i < n; i++) {
    const double g = G[i] * gs;
    const double m = b1 * M[i] + c1 * g;
    const double v = b2 * V[i] + c2 * g * g;
    M[i] = static_cast<float>(m);
    V[i] = static_cast<float>(v);
    const double p0 = P[i];
    P[i] = static_cast<float>(p0 - lr_bc1 * m / (std::sqrt(v * inv_bc2) + eps) - lr_wd * p0);
  }
}

// adamw(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale)
static Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Args A(info, "adamw");
  float* p = A.f32(0, "p");
  const float* g = A.f32(1, "g");
  float* m = A.f32(2, "m");
  float* v = A.f32(3, "v");
  i64 n = A.n(4);
  double lr = A.num(5), b1 = A.num(6), b2 = A.num(7), eps = A.num(8), wd = A.num(9), step = A.num(10), gs = A.num(11);
  if (!A.ok) return info.Env().Undefined();
  const double bc1 = 1.0 - std::pow(b1, step), bc2 = 1.0 - std::pow(b2, step);
  prange(n, [&](i64 b, i64 e) {
    adamw_loop(p + b, g + b, m + b, v + b, e - b, gs, b1, b2, lr / bc1, 1.0 / bc2, eps, lr * wd);
  });
  return info.Env().Undefined();
}

void RegisterElementwise(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "binary", Binary);
  R1_EXPORT(exports, "compare", Compare);
  R1_EXPORT(exports, "unary", Unary);
  R1_EXPORT(exports, "unaryGrad", UnaryGrad);
  R1_EXPORT(exports, "affine", Affine);
  R1_EXPORT(exports, "where", Where);
  R1_EXPORT(exports, "swiglu", Swiglu);
  R1_EXPORT(exports, "swigluGrad", SwigluGrad);
  R1_EXPORT(exports, "adamw", AdamW);
}

}  // namespace r1
