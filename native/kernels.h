// Registration entry points of the kernel groups (one per source file).
#pragma once
#include <napi.h>

#include <cstdint>
#include <vector>

namespace r1 {
void RegisterMemory(Napi::Env env, Napi::Object exports);       // memory.cc
void RegisterGemm(Napi::Env env, Napi::Object exports);         // gemm.cc
void RegisterElementwise(Napi::Env env, Napi::Object exports);  // elementwise.cc
void RegisterRows(Napi::Env env, Napi::Object exports);         // rows.cc
void RegisterIndex(Napi::Env env, Napi::Object exports);        // index.cc
void RegisterAttention(Napi::Env env, Napi::Object exports);    // attention.cc
void RegisterMoe(Napi::Env env, Napi::Object exports);          // moe.cc
void RegisterDecode(Napi::Env env, Napi::Object exports);       // decode.cc
bool attention_avx512();  // attention blocks through our AVX-512 kernels (else sgemm)

// Shared by gemm.cc and attention.cc: one row-major sgemm, C = alpha op(A) op(B) + beta C.
void sgemm_rm(bool transA, bool transB, int m, int n, int k, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);
// C (m×n) = A (m×k) · Wᵀ for the inference kernels; a few rows stream W once (gemm.cc).
void linear_rows(int m, int n, int k, const float* A, int lda, const float* W, int ldw, float* C, int ldc);
// Asks for the first bytes of a weight matrix that a product will read next (gemm.cc).
void prefetch_weights(const float* W, int64_t floats);

// ---- row kernels shared with the fused decoding blocks (decode.cc) -----------------------------
// The same functions as the ops' kernels, so that a fused block rounds as the op-by-op path does.
float rms_norm_row(const float* x, const float* w, float* o, int64_t n, float eps);  // rows.cc; returns rstd
void rope_row(const float* x, float* o, const float* cos, const float* sin, int64_t half, bool interleaved);  // index.cc
void swiglu_row(const float* gate, const float* up, float* o, int64_t n);  // elementwise.cc: silu(gate) · up

// Scaled-dot-product attention forward (attention.cc), the attention op's kernel; layouts and
// meaning as AttentionArgs in src/backend/backend.ts. keyRange may be null.
struct AttentionCall {
  const float *q, *k, *v;
  const int32_t* keyRange;
  int64_t B, T, S, H, Hkv, Dk, Dv;
  float scale;
  bool causal, vInK;
};
void attention_forward(const AttentionCall& call, float* out, float* lse);

// The routed experts of a MoE layer (moe.cc), the moeExperts op's kernel: out[t] += Σ_j w[t,j] ·
// FFN_e(x[t]) for e = idx[t,j]; gate/up/down[e] may be null for experts no token chose.
void moe_experts(const float* x, const int32_t* idx, const float* w, const float* const* gate, const float* const* up,
                 const float* const* down, int64_t E, float* out, int64_t n, int64_t k, int64_t C, int64_t I);
// The experts that some of the `slots` entries of idx name, ascending (moe.cc).
std::vector<int64_t> experts_used(const int32_t* idx, int64_t slots, int64_t E);
}  // namespace r1
