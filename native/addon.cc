// r1ts_native: module entry, thread control, and registration of the kernel groups.
#include "common.h"
#include "kernels.h"

#include <cblas.h>
#include <cstdlib>
#include <thread>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// Provided by every OpenBLAS build (declared in its cblas.h as well).
extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
int openblas_get_parallel(void);
}

namespace r1 {

static int g_threads = 1;

int threads() { return g_threads; }

void set_threads(int n) {
  if (n < 1) n = 1;
  g_threads = n;
  // Our parallel regions pass num_threads(g_threads) explicitly; omp_set_num_threads also sets the
  // calling thread's default, which the OpenMP build of OpenBLAS follows (it re-reads
  // omp_get_max_threads() on each call), and openblas_set_num_threads covers a pthread build.
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

static int default_threads() {
  if (const char* e = std::getenv("R1TS_THREADS")) {
    int n = std::atoi(e);
    if (n >= 1) return n;
  }
  int n = omp_get_num_procs();
  if (n < 1) n = static_cast<int>(std::thread::hardware_concurrency());
  return n < 1 ? 1 : n;
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args a(info, "setThreads");
  i64 n = a.n(0);
  if (!a.ok) return info.Env().Undefined();
  set_threads(static_cast<int>(n));
  return Napi::Number::New(info.Env(), g_threads);
}

static Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_threads);
}

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("threads", g_threads);
  o.Set("openblasConfig", std::string(openblas_get_config()));
  o.Set("openblasThreads", openblas_get_num_threads());
  // 0: sequential, 1: pthreads, 2: OpenMP
  o.Set("openblasParallel", openblas_get_parallel());
  o.Set("ompProcs", omp_get_num_procs());
  o.Set("attentionKernels", attention_avx512() ? "avx512" : "sgemm");
#if defined(__AVX512F__)
  o.Set("baseline", "avx512f");
#elif defined(__AVX2__)
  o.Set("baseline", "avx2");
#else
  o.Set("baseline", "generic");
#endif
#if defined(__x86_64__)
  o.Set("avx512", static_cast<bool>(__builtin_cpu_supports("avx512f")));
#else
  o.Set("avx512", false);
#endif
  return o;
}

}  // namespace r1

// Tensor buffers are typed arrays that Node allocates with calloc. glibc serves large requests
// with fresh mmap()s, so every training step would page-fault its activations in anew (measured
// here: 2048×8192 softmax 140 ms instead of 8 ms; a 2048×256×256 linear 8 ms instead of 2 ms).
// Keep large blocks in the heap instead, and keep freed memory for reuse. R1TS_SYSTEM_MALLOC=1
// leaves glibc's defaults alone.
static void keep_freed_memory() {
#if defined(__GLIBC__)
  const char* e = std::getenv("R1TS_SYSTEM_MALLOC");
  if (e && e[0] == '1') return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keep_freed_memory();
  r1::set_threads(r1::default_threads());
  R1_EXPORT(exports, "setThreads", r1::SetThreads);
  R1_EXPORT(exports, "getThreads", r1::GetThreads);
  R1_EXPORT(exports, "info", r1::Info);
  r1::RegisterMemory(env, exports);
  r1::RegisterGemm(env, exports);
  r1::RegisterElementwise(env, exports);
  r1::RegisterRows(env, exports);
  r1::RegisterMoe(env, exports);
  r1::RegisterIndex(env, exports);
  r1::RegisterAttention(env, exports);
  r1::RegisterDecode(env, exports);
  return exports;
}

NODE_API_MODULE(r1ts_native, Init)
