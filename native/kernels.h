// Registration entry points of the kernel groups (one per source file).
#pragma once
#include <napi.h>

namespace r1 {
void RegisterMemory(Napi::Env env, Napi::Object exports);       // memory.cc
void RegisterGemm(Napi::Env env, Napi::Object exports);         // gemm.cc
void RegisterElementwise(Napi::Env env, Napi::Object exports);  // elementwise.cc
void RegisterRows(Napi::Env env, Napi::Object exports);         // rows.cc
void RegisterIndex(Napi::Env env, Napi::Object exports);        // index.cc
void RegisterAttention(Napi::Env env, Napi::Object exports);    // attention.cc
void RegisterMoe(Napi::Env env, Napi::Object exports);          // moe.cc
bool attention_avx512();  // attention blocks through our AVX-512 kernels (else sgemm)

// Shared by gemm.cc and attention.cc: one row-major sgemm, C = alpha op(A) op(B) + beta C.
void sgemm_rm(bool transA, bool transB, int m, int n, int k, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc);
// C (m×n) = A (m×k) · Wᵀ for the inference kernels; a few rows stream W once (gemm.cc).
void linear_rows(int m, int n, int k, const float* A, int lda, const float* W, int ldw, float* C, int ldc);
}  // namespace r1
