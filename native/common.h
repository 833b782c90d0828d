// Shared helpers for the r1ts native CPU backend.
//
// Contract with the TypeScript side (src/backend/cpu/cpu.ts): every size, offset, stride and
// index is validated there before a kernel is called, so kernels here trust their arguments.
// What is checked here is only the kind of each argument (a Float32Array where an f32 buffer is
// expected, and so on), so that a misuse from JS throws instead of reading the wrong memory.
#pragma once

#include <napi.h>
#include <omp.h>

#include "fmath.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <limits>
#include <vector>

namespace r1 {

using i64 = int64_t;

// ---- threads ---------------------------------------------------------------------------------

int threads();                 // current thread count (R1TS_THREADS / setThreads / #CPUs)
void set_threads(int n);       // applies to our OpenMP regions and to OpenBLAS

// Below this many elements an elementwise loop runs on one thread (a parallel region costs
// a few microseconds to start and synchronise; memory-bound loops gain little below ~64 KiB).
constexpr i64 kParMin = 1 << 15;

inline int nthreads_for(i64 work, i64 min_per_thread = kParMin) {
  i64 t = work / min_per_thread;
  int n = threads();
  if (t < 1) return 1;
  return t < n ? static_cast<int>(t) : n;
}

// ---- argument access -------------------------------------------------------------------------

enum DT : int { kF32 = 0, kI32 = 1 };

struct Args {
  const Napi::CallbackInfo& info;
  napi_env env;
  const char* kernel;
  bool ok = true;

  Args(const Napi::CallbackInfo& i, const char* k) : info(i), env(i.Env()), kernel(k) {}

  void fail(const std::string& msg) {
    if (ok) {
      ok = false;
      Napi::Error::New(env, std::string("cpu native ") + kernel + ": " + msg).ThrowAsJavaScriptException();
    }
  }

  void* typed(size_t i, napi_typedarray_type want, const char* what) {
    if (!ok) return nullptr;
    if (i >= info.Length()) { fail(std::string("missing argument ") + what); return nullptr; }
    napi_value v = info[i];
    bool is = false;
    napi_is_typedarray(env, v, &is);
    if (!is) { fail(std::string(what) + " must be a typed array"); return nullptr; }
    napi_typedarray_type type;
    size_t len;
    void* data;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off);
    if (type != want) {
      fail(std::string(what) + (want == napi_float32_array ? " must be a Float32Array" : want == napi_int32_array ? " must be an Int32Array" : " must be a Float64Array"));
      return nullptr;
    }
    return data;  // already adjusted by the byte offset
  }
  float* f32(size_t i, const char* what = "argument") { return static_cast<float*>(typed(i, napi_float32_array, what)); }
  int32_t* i32(size_t i, const char* what = "argument") { return static_cast<int32_t*>(typed(i, napi_int32_array, what)); }
  const double* f64(size_t i, const char* what = "argument") { return static_cast<const double*>(typed(i, napi_float64_array, what)); }
  // f32 or i32: returns the pointer and sets *dt.
  void* any(size_t i, int* dt, const char* what = "argument") {
    if (!ok) return nullptr;
    napi_value v = info[i];
    bool is = false;
    napi_is_typedarray(env, v, &is);
    if (!is) { fail(std::string(what) + " must be a typed array"); return nullptr; }
    napi_typedarray_type type; size_t len; void* data; napi_value ab; size_t off;
    napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off);
    if (type == napi_float32_array) *dt = kF32;
    else if (type == napi_int32_array) *dt = kI32;
    else { fail(std::string(what) + " must be a Float32Array or an Int32Array"); return nullptr; }
    return data;
  }
  bool isNull(size_t i) { return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined(); }
  double num(size_t i) {
    if (!ok) return 0;
    double d = 0;
    if (napi_get_value_double(env, info[i], &d) != napi_ok) fail("expected a number argument");
    return d;
  }
  i64 n(size_t i) { return static_cast<i64>(num(i)); }
  bool b(size_t i) {
    if (!ok) return false;
    bool r = false;
    if (napi_get_value_bool(env, info[i], &r) != napi_ok) fail("expected a boolean argument");
    return r;
  }
};

// The Float32Array data of arr[e] for the listed entries of a JS array argument (null for the
// others): a MoE decoding step touches a few of many experts' weights.
inline bool f32_list(Args& A, size_t i, const char* what, const std::vector<i64>& used, std::vector<const float*>& out) {
  if (!A.ok) return false;
  Napi::Value v = A.info[i];
  if (!v.IsArray()) { A.fail(std::string(what) + " must be an array of Float32Arrays"); return false; }
  Napi::Array arr = v.As<Napi::Array>();
  out.assign(arr.Length(), nullptr);
  for (i64 e : used) {
    if (e >= static_cast<i64>(arr.Length())) { A.fail(std::string(what) + " has too few entries"); return false; }
    Napi::Value x = arr.Get(static_cast<uint32_t>(e));
    if (!x.IsTypedArray() || x.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      A.fail(std::string(what) + " must hold Float32Arrays only");
      return false;
    }
    out[e] = x.As<Napi::Float32Array>().Data();
  }
  return true;
}

}  // namespace r1

#define R1_EXPORT(exports, name, fn) (exports).Set(name, Napi::Function::New(env, fn, name))

namespace r1 {

// Runs f(begin, end) over [0, n) split into contiguous per-thread chunks (multiples of 16 so that
// vector loops keep their alignment); one thread when the work is small.
template <class F>
inline void prange(i64 n, F&& f, i64 min_per_thread = kParMin) {
  int nt = nthreads_for(n, min_per_thread);
  if (nt <= 1) { f(i64(0), n); return; }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    i64 b = (n * t / T) & ~i64(15), e = t == T - 1 ? n : ((n * (t + 1) / T) & ~i64(15));
    if (e > b) f(b, e);
  }
}

// Rows split among threads: f(row_begin, row_end). `cols` is the work per row.
template <class F>
inline void prows(i64 rows, i64 cols, F&& f, i64 min_per_thread = kParMin / 2) {
  i64 work = rows * (cols > 0 ? cols : 1);
  int nt = nthreads_for(work, min_per_thread);
  if (nt > rows) nt = static_cast<int>(rows);
  if (nt <= 1) { f(i64(0), rows); return; }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    i64 b = rows * t / T, e = rows * (t + 1) / T;
    if (e > b) f(b, e);
  }
}

// A strided walk over up to 8 dimensions (already collapsed by the caller), three operands:
// a, b (inputs) and o (output). f(offA, offB, offO, count) handles `count` elements along the last
// axis starting at those offsets; strides along the last axis are L.sa/sb/so[rank-1].
struct Layout {
  int rank = 0;
  i64 shape[8] = {0};
  i64 sa[8] = {0}, sb[8] = {0}, so[8] = {0};
  i64 total() const { i64 t = 1; for (int d = 0; d < rank; d++) t *= shape[d]; return t; }
};

template <class F>
inline void walk(const Layout& L, i64 begin, i64 end, F&& f) {
  const int r = L.rank;
  const i64 inner = L.shape[r - 1];
  i64 idx[8];
  i64 rem = begin;
  for (int d = r - 1; d >= 0; --d) { idx[d] = rem % L.shape[d]; rem /= L.shape[d]; }
  i64 oa = 0, ob = 0, oo = 0;
  for (int d = 0; d < r; d++) { oa += idx[d] * L.sa[d]; ob += idx[d] * L.sb[d]; oo += idx[d] * L.so[d]; }
  i64 pos = begin;
  while (pos < end) {
    i64 cnt = std::min(inner - idx[r - 1], end - pos);
    f(oa, ob, oo, cnt);
    pos += cnt;
    idx[r - 1] += cnt;
    oa += cnt * L.sa[r - 1]; ob += cnt * L.sb[r - 1]; oo += cnt * L.so[r - 1];
    if (idx[r - 1] == inner) {
      oa -= inner * L.sa[r - 1]; ob -= inner * L.sb[r - 1]; oo -= inner * L.so[r - 1];
      idx[r - 1] = 0;
      for (int d = r - 2; d >= 0; --d) {
        idx[d]++; oa += L.sa[d]; ob += L.sb[d]; oo += L.so[d];
        if (idx[d] < L.shape[d]) break;
        oa -= L.shape[d] * L.sa[d]; ob -= L.shape[d] * L.sb[d]; oo -= L.shape[d] * L.so[d];
        idx[d] = 0;
      }
    }
  }
}

// Layout from a Float64Array meta = [rank, shape..., sa..., sb..., so...] (so optional: contiguous).
inline bool read_layout(Args& a, size_t i, int operands, Layout& L) {
  const double* m = a.f64(i, "layout");
  if (!a.ok) return false;
  L.rank = static_cast<int>(m[0]);
  if (L.rank < 1 || L.rank > 8) { a.fail("layout rank must be 1..8"); return false; }
  const int r = L.rank;
  for (int d = 0; d < r; d++) L.shape[d] = static_cast<i64>(m[1 + d]);
  for (int d = 0; d < r; d++) L.sa[d] = static_cast<i64>(m[1 + r + d]);
  if (operands >= 2) for (int d = 0; d < r; d++) L.sb[d] = static_cast<i64>(m[1 + 2 * r + d]);
  if (operands >= 3) {
    for (int d = 0; d < r; d++) L.so[d] = static_cast<i64>(m[1 + 3 * r + d]);
  }
  return true;
}

inline void contiguous_strides(Layout& L) {
  i64 s = 1;
  for (int d = L.rank - 1; d >= 0; --d) { L.so[d] = s; s *= L.shape[d]; }
}

}  // namespace r1
