// Scaled-dot-product attention, forward and backward, flash-style.
//
// Layouts: q (B,T,H,Dk)  k (B,S,Hkv,Dk)  v (B,S,Hkv,Dv)  out (B,T,H,Dv)  lse (B,H,T).
// The keys a query of row b may see always form a run first(b) .. first(b)+n-1 (keyRange sets
// [first, last); the causal limit t + last − T cuts the tail), and n grows with t, so a block of
// queries [t0, t1) needs the first n(t1-1) of them only. With vInK the values are the first Dv
// entries of each key row (MLA's absorbed decode, where the cached latent is both).
//
// Work is cut into blocks of kBlock queries of one (batch, head), shared among threads
// dynamically (latest blocks first); when decoding one token, a block is instead the query
// heads that share a kv head (keys packed once for all of them). For each block the scores
// (block × n) are computed reading q and k in place (row strides H*Dk, Hkv*Dk), softmaxed in a
// per-thread scratch of kBlock × S floats, and multiplied into v, writing out in place. Nothing
// of size T × S is ever held: memory is linear in S. The block products use our AVX-512 kernels
// (attn_kernels.h; k and v packed transposed per block/group) or, on other CPUs and for head
// dims not a multiple of 16, sgemm called inside our OpenMP region, where the OpenMP build of
// OpenBLAS stays on the calling thread.
//
// Backward (recomputing P from lse): per query block
//   P = exp(scale Q Kᵀ − lse)      dP = dO Vᵀ       dV += Pᵀ dO
//   dS = scale · P ∘ (dP − rowsum(dO ∘ O))          dQ = dS K        dK += dSᵀ Q
// dK/dV are sums over all queries (and all heads of a GQA group), so work items are
// (batch, kv-head) groups, each owning its dK/dV slice; when there are too few groups to keep
// every thread busy, a group's query blocks are split among several items that accumulate into
// private partial buffers (S × D each), summed afterwards.
#include "common.h"
#include "kernels.h"
#include "attn_kernels.h"

#include <cstdlib>

namespace r1 {

constexpr i64 kBlock = 64;  // queries per block (measured: 32 and 128 were slower at T = 256)

// ---- block matrix products -------------------------------------------------------------------
// Two implementations: our register-blocked AVX-512 kernels (attn_kernels.h) when the CPU has
// AVX-512 and Dk, Dv are multiples of 16; sgemm otherwise. On AVX2 (8-wide, 16 registers) the same
// kernels measured slower than OpenBLAS's Haswell sgemm (attention fwd+bwd at B=8 H=8 T=256 D=32:
// ~17 ms against ~12-15 ms), while with AVX-512 they are faster (~10 ms).
// R1TS_ATTN_SGEMM=1 (or R1TS_NO_AVX512=1) forces the sgemm path, for comparison and tests.

#if defined(__x86_64__)
#define R1_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#define R1_HAVE_OWN_KERNELS 1
#else
#define R1_HAVE_OWN_KERNELS 0
#endif

#if R1_HAVE_OWN_KERNELS
R1_AVX512_TARGET static void nt_512(i64 m, i64 npad, i64 k, float alpha, const float* A, i64 lda, const float* Bt,
                                    i64 ldb, float* C, i64 ldc) {
  ak::nt<ak::v16, 16, 8, 2>(m, npad, k, alpha, A, lda, Bt, ldb, C, ldc);
}

template <bool TA, bool ACC>
R1_AVX512_TARGET static void nn_512(i64 m, i64 N, i64 k, const float* A, i64 lda, const float* B, i64 ldb, float* C,
                                    i64 ldc, const float* rs) {
  if (N % 32 == 0) ak::nn<ak::v16, 16, 8, 2, TA, ACC>(m, N, k, A, lda, B, ldb, C, ldc, rs);
  else ak::nn<ak::v16, 16, 8, 1, TA, ACC>(m, N, k, A, lda, B, ldb, C, ldc, rs);
}
#else
static void nt_512(i64, i64, i64, float, const float*, i64, const float*, i64, float*, i64) {}
template <bool TA, bool ACC>
static void nn_512(i64, i64, i64, const float*, i64, const float*, i64, float*, i64, const float*) {}
#endif

static bool env_is_1(const char* name) {
  const char* e = std::getenv(name);
  return e && e[0] == '1';
}
static const bool g_avx512 = [] {
#if R1_HAVE_OWN_KERNELS
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") != 0 && !env_is_1("R1TS_NO_AVX512");
#else
  return false;
#endif
}();
static const bool g_force_sgemm = env_is_1("R1TS_ATTN_SGEMM");

// Whether the attention blocks go through our kernels (else sgemm).
static bool use_own_kernels(i64 Dk, i64 Dv) {
  return g_avx512 && !g_force_sgemm && Dk % 16 == 0 && Dv % 16 == 0 && Dk > 0 && Dv > 0;
}

// S (m × npad, row stride npad) = alpha A (m × k, lda) · Bt, Bt packed k × ldb (ldb >= npad).
static void k_nt(i64 m, i64 npad, i64 k, float alpha, const float* A, i64 lda, const float* Bt, i64 ldb, float* C) {
  nt_512(m, npad, k, alpha, A, lda, Bt, ldb, C, npad);
}
template <bool TA, bool ACC>
static void k_nn(i64 m, i64 N, i64 k, const float* A, i64 lda, const float* B, i64 ldb, float* C, i64 ldc,
                 const float* rs = nullptr) {
  nn_512<TA, ACC>(m, N, k, A, lda, B, ldb, C, ldc, rs);
}

// Bt[d, j] = B[j ldb + d] for j < n, 0 for n <= j < npad. In tiles of 16 keys, so that the stores
// are contiguous runs of 16 (a column-at-a-time transpose stores with a stride of npad floats).
static void pack_t(float* Bt, const float* B, i64 ldb, i64 n, i64 D, i64 npad) {
  for (i64 d = 0; d < D; d++) std::fill(Bt + d * npad + n, Bt + (d + 1) * npad, 0.0f);
  i64 j0 = 0;
  for (; j0 + 16 <= n; j0 += 16) {
    const float* b = B + j0 * ldb;
    for (i64 d = 0; d < D; d++) {
      float* o = Bt + d * npad + j0;
#pragma GCC unroll 16
      for (int jj = 0; jj < 16; jj++) o[jj] = b[jj * ldb + d];
    }
  }
  for (; j0 < n; j0++)
    for (i64 d = 0; d < D; d++) Bt[d * npad + j0] = B[j0 * ldb + d];
}

static inline i64 round_up(i64 x, i64 m) { return (x + m - 1) / m * m; }

struct Attn : AttentionCall {
  i64 first(i64 b) const { return keyRange ? std::clamp<i64>(keyRange[2 * b], 0, S) : 0; }
  i64 last(i64 b) const { return keyRange ? std::clamp<i64>(keyRange[2 * b + 1], 0, S) : S; }
  // keys visible to query t of row b, counted from first(b)
  i64 visible(i64 b, i64 t) const {
    const i64 end = last(b);
    i64 e = end;
    if (causal) e = std::min(e, t + (end - T) + 1);
    const i64 n = e - first(b);
    return n < 0 ? 0 : n;
  }
  // row stride of v and where the values of (b, kv-head hk) begin
  i64 ldv() const { return vInK ? Hkv * Dk : Hkv * Dv; }
  const float* vbase(i64 b, i64 hk) const {
    return vInK ? k + ((b * S + first(b)) * Hkv + hk) * Dk : v + ((b * S + first(b)) * Hkv + hk) * Dv;
  }
  const float* kbase(i64 b, i64 hk) const { return k + ((b * S + first(b)) * Hkv + hk) * Dk; }
  i64 block() const { return std::min<i64>(kBlock, std::max<i64>(T, 1)); }
};

static bool read_attn(Args& A, size_t i, Attn& at) {
  at.q = A.f32(i, "q");
  at.k = A.f32(i + 1, "k");
  at.v = A.f32(i + 2, "v");
  at.keyRange = A.isNull(i + 3) ? nullptr : A.i32(i + 3, "keyRange");
  at.B = A.n(i + 4); at.T = A.n(i + 5); at.S = A.n(i + 6); at.H = A.n(i + 7); at.Hkv = A.n(i + 8);
  at.Dk = A.n(i + 9); at.Dv = A.n(i + 10);
  at.scale = static_cast<float>(A.num(i + 11));
  at.causal = A.b(i + 12);
  at.vInK = A.b(i + 13);
  return A.ok;
}

// Row softmax over the first nv of n entries (the rest zeroed); returns the sum, writes the max.
R1_CLONES static float softmax_prefix(float* row, i64 nv, i64 n, float* mxOut) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (i64 i = 0; i < nv; i++) mx = row[i] > mx ? row[i] : mx;
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < nv; i++) {
    const float e = fexp(row[i] - mx);
    row[i] = e;
    s += e;
  }
  for (i64 i = nv; i < n; i++) row[i] = 0.0f;
  *mxOut = mx;
  return s;
}

R1_CLONES static void scale_row(float* o, float a, i64 n) {
#pragma omp simd
  for (i64 i = 0; i < n; i++) o[i] *= a;
}

void attention_forward(const AttentionCall& call, float* out, float* lse) {
  Attn at;
  static_cast<AttentionCall&>(at) = call;
  const i64 B = at.B, T = at.T, S = at.S, H = at.H, Dk = at.Dk, Dv = at.Dv;
  if (B == 0 || T == 0 || H == 0) return;
  const i64 G = H / at.Hkv, BQ = at.block(), nqb = (T + BQ - 1) / BQ;
  // Decoding one token with grouped heads (GQA, or MLA's absorbed form where all H heads share
  // one latent): the G query heads of a kv head become the G rows of one block, so its keys are
  // packed and read once instead of once per head.
  const bool grouped = T == 1 && G > 1;
  const i64 items = grouped ? B * at.Hkv : B * H * nqb;
  const i64 maxRows = grouped ? G : BQ;
  const double work = static_cast<double>(B) * H * T * std::max<i64>(S, 1) * (Dk + Dv);
  int nt = threads();
  if (work < 2.0e5) nt = 1;
  if (nt > items) nt = static_cast<int>(items);
  const float ninf = -std::numeric_limits<float>::infinity();
  const bool own = use_own_kernels(Dk, Dv);
  const i64 Spad = round_up(std::max<i64>(S, 1), 32);

#pragma omp parallel num_threads(nt)
  {
    std::vector<float> P(static_cast<size_t>(maxRows * Spad));
    std::vector<float> Kt(own ? static_cast<size_t>(Dk * Spad) : 0);
    std::vector<float> inv(static_cast<size_t>(maxRows));
#pragma omp for schedule(dynamic, 1)
    for (i64 it = 0; it < items; it++) {
      // A block: `rows` query rows of one kv head hk; row i is query t0 + i·dt of head h0 + i·dh.
      i64 b, hk, h0, t0, rows, dt, dh;
      if (grouped) {
        b = it / at.Hkv; hk = it % at.Hkv; h0 = hk * G; t0 = 0; rows = G; dt = 0; dh = 1;
      } else {
        // latest query blocks first: under a causal mask they see the most keys
        const i64 qb = nqb - 1 - it % nqb, h = (it / nqb) % H;
        b = it / (nqb * H); hk = h / G; h0 = h; t0 = qb * BQ; rows = std::min(T, t0 + BQ) - t0; dt = 1; dh = 0;
      }
      // rows step through q/out by ldq/ldo floats and through lse by ldl
      const i64 ldq = dh ? Dk : H * Dk, ldo = dh ? Dv : H * Dv, ldl = dh ? T : 1;
      float* O = out + ((b * T + t0) * H + h0) * Dv;
      float* L = lse + (b * H + h0) * T + t0;
      const i64 nk = at.visible(b, t0 + (rows - 1) * dt);
      if (nk == 0) {
        for (i64 i = 0; i < rows; i++) { std::fill(O + i * ldo, O + i * ldo + Dv, 0.0f); L[i * ldl] = ninf; }
        continue;
      }
      const float* Q = at.q + ((b * T + t0) * H + h0) * Dk;
      const float* K = at.kbase(b, hk);
      const float* V = at.vbase(b, hk);
      const i64 ldv = at.ldv();
      // scores, row stride ldp
      const i64 ldp = own ? round_up(nk, 32) : nk;
      if (own) {
        pack_t(Kt.data(), K, at.Hkv * Dk, nk, Dk, ldp);
        k_nt(rows, ldp, Dk, at.scale, Q, ldq, Kt.data(), ldp, P.data());
      } else {
        sgemm_rm(false, true, (int)rows, (int)nk, (int)Dk, at.scale, Q, (int)ldq, K, (int)(at.Hkv * Dk),
                 0.0f, P.data(), (int)ldp);
      }
      for (i64 i = 0; i < rows; i++) {
        float* row = P.data() + i * ldp;
        const i64 nv = at.visible(b, t0 + i * dt);
        if (nv == 0) {
          std::fill(row, row + nk, 0.0f);
          L[i * ldl] = ninf;
          inv[i] = 0.0f;
          continue;
        }
        float mx;
        const float s = softmax_prefix(row, nv, nk, &mx);
        L[i * ldl] = mx + std::log(s);
        inv[i] = 1.0f / s;
      }
      if (own) {
        k_nn<false, false>(rows, Dv, nk, P.data(), ldp, V, ldv, O, ldo, inv.data());
      } else {
        sgemm_rm(false, false, (int)rows, (int)Dv, (int)nk, 1.0f, P.data(), (int)ldp, V, (int)ldv,
                 0.0f, O, (int)ldo);
        for (i64 i = 0; i < rows; i++) scale_row(O + i * ldo, inv[i], Dv);
      }
    }
  }
}

// attention(q, k, v, keyRange|null, B, T, S, H, Hkv, Dk, Dv, scale, causal, vInK, out, lse)
static Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args A(info, "attention");
  Attn at;
  read_attn(A, 0, at);
  float* out = A.f32(14, "out");
  float* lse = A.f32(15, "lse");
  if (!A.ok) return info.Env().Undefined();
  attention_forward(at, out, lse);
  return info.Env().Undefined();
}

// P = exp(P - l) on the first nv entries (rest zeroed); dS = scale * P * (dP - di), in place in dP.
R1_CLONES static void bwd_row(float* p, float* dp, i64 nv, i64 n, float l, float di, float scale) {
#pragma omp simd
  for (i64 i = 0; i < nv; i++) {
    const float e = fexp(p[i] - l);
    p[i] = e;
    dp[i] = scale * e * (dp[i] - di);
  }
  for (i64 i = nv; i < n; i++) { p[i] = 0.0f; dp[i] = 0.0f; }
}

R1_CLONES static float dotf(const float* a, const float* b, i64 n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (i64 i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

// attentionGrad(q, k, v, keyRange|null, B, T, S, H, Hkv, Dk, Dv, scale, causal, vInK, out, lse, dOut, dq, dk, dv)
static Napi::Value AttentionGrad(const Napi::CallbackInfo& info) {
  Args A(info, "attentionGrad");
  Attn at;
  read_attn(A, 0, at);
  const float* out = A.f32(14, "out");
  const float* lse = A.f32(15, "lse");
  const float* dout = A.f32(16, "dOut");
  float* dq = A.f32(17, "dq");
  float* dk = A.f32(18, "dk");
  float* dv = A.f32(19, "dv");
  if (!A.ok) return info.Env().Undefined();
  if (at.vInK) {
    Napi::Error::New(info.Env(), "attentionGrad: values read from the keys (vInK) are an inference-only layout").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const i64 B = at.B, T = at.T, S = at.S, H = at.H, Hkv = at.Hkv, Dk = at.Dk, Dv = at.Dv;
  if (B == 0 || Hkv == 0) return info.Env().Undefined();
  const i64 G = H / Hkv, BQ = at.block(), nqb = T > 0 ? (T + BQ - 1) / BQ : 0;
  const i64 groups = B * Hkv, blocksPerGroup = G * nqb;
  const double work = static_cast<double>(B) * H * T * std::max<i64>(S, 1) * (Dk + Dv);
  int nt = threads();
  if (work < 1.0e5) nt = 1;
  i64 nsplit = 1;
  if (nt > 1 && groups < 4 * nt) {
    nsplit = std::min<i64>(blocksPerGroup, (4 * nt + groups - 1) / groups);
    if (nsplit < 1) nsplit = 1;
  }
  const i64 items = groups * nsplit;
  if (nt > items) nt = static_cast<int>(items);
  const i64 partStride = S * (Dk + Dv);
  std::vector<float> part(nsplit > 1 ? static_cast<size_t>(items * partStride) : 0, 0.0f);

  const bool own = use_own_kernels(Dk, Dv);
  const i64 Spad = round_up(std::max<i64>(S, 1), 32);

#pragma omp parallel num_threads(nt)
  {
    std::vector<float> P(static_cast<size_t>(BQ * Spad));
    std::vector<float> dP(static_cast<size_t>(BQ * Spad));
    std::vector<float> Kt(own ? static_cast<size_t>(Dk * Spad) : 0);
    std::vector<float> Vt(own ? static_cast<size_t>(Dv * Spad) : 0);
#pragma omp for schedule(dynamic, 1)
    for (i64 it = 0; it < items; it++) {
      const i64 g = it / nsplit, j = it % nsplit, b = g / Hkv, hk = g % Hkv;
      float *dK, *dV;
      i64 lddk, lddv;
      const i64 f = at.first(b);  // dK/dV rows accumulate from the row's first visible key
      if (nsplit == 1) {
        dK = dk + (b * S * Hkv + hk) * Dk; lddk = Hkv * Dk;
        dV = dv + (b * S * Hkv + hk) * Dv; lddv = Hkv * Dv;
        for (i64 s = 0; s < S; s++) {
          std::fill(dK + s * lddk, dK + s * lddk + Dk, 0.0f);
          std::fill(dV + s * lddv, dV + s * lddv + Dv, 0.0f);
        }
      } else {
        dK = part.data() + it * partStride; lddk = Dk;
        dV = dK + S * Dk; lddv = Dv;
      }
      dK += f * lddk;
      dV += f * lddv;
      const float* K = at.kbase(b, hk);
      const float* V = at.vbase(b, hk);
      // K and V of the group, packed transposed once (keys up to the most any query sees)
      const i64 nkAll = T > 0 ? at.visible(b, T - 1) : 0;
      const i64 ldt = round_up(std::max<i64>(nkAll, 1), 32);
      if (own && nkAll > 0) {
        pack_t(Kt.data(), K, Hkv * Dk, nkAll, Dk, ldt);
        pack_t(Vt.data(), V, Hkv * Dv, nkAll, Dv, ldt);
      }
      for (i64 blk = j; blk < blocksPerGroup; blk += nsplit) {
        const i64 h = hk * G + blk / nqb, qb = nqb - 1 - blk % nqb;
        const i64 t0 = qb * BQ, t1 = std::min(T, t0 + BQ), rows = t1 - t0;
        const i64 ldq = H * Dk, ldo = H * Dv;
        const float* Q = at.q + ((b * T + t0) * H + h) * Dk;
        const float* O = out + ((b * T + t0) * H + h) * Dv;
        const float* dO = dout + ((b * T + t0) * H + h) * Dv;
        const float* L = lse + (b * H + h) * T + t0;
        float* dQ = dq + ((b * T + t0) * H + h) * Dk;
        const i64 nk = at.visible(b, t1 - 1);
        if (nk == 0) {
          for (i64 i = 0; i < rows; i++) std::fill(dQ + i * ldq, dQ + i * ldq + Dk, 0.0f);
          continue;
        }
        const i64 ldp = own ? round_up(nk, 32) : nk;
        if (own) {
          k_nt(rows, ldp, Dk, at.scale, Q, ldq, Kt.data(), ldt, P.data());
          k_nt(rows, ldp, Dv, 1.0f, dO, ldo, Vt.data(), ldt, dP.data());
        } else {
          sgemm_rm(false, true, (int)rows, (int)nk, (int)Dk, at.scale, Q, (int)ldq, K, (int)(Hkv * Dk), 0.0f,
                   P.data(), (int)ldp);
          sgemm_rm(false, true, (int)rows, (int)nk, (int)Dv, 1.0f, dO, (int)ldo, V, (int)(Hkv * Dv), 0.0f,
                   dP.data(), (int)ldp);
        }
        for (i64 i = 0; i < rows; i++) {
          const i64 nv = at.visible(b, t0 + i);
          const float di = dotf(dO + i * ldo, O + i * ldo, Dv);
          bwd_row(P.data() + i * ldp, dP.data() + i * ldp, nv, nk, L[i], di, at.scale);
        }
        // dV[0:nk] += Pᵀ dO ; dQ = dS K ; dK[0:nk] += dSᵀ Q
        if (own) {
          k_nn<true, true>(nk, Dv, rows, P.data(), ldp, dO, ldo, dV, lddv);
          k_nn<false, false>(rows, Dk, nk, dP.data(), ldp, K, Hkv * Dk, dQ, ldq);
          k_nn<true, true>(nk, Dk, rows, dP.data(), ldp, Q, ldq, dK, lddk);
        } else {
          sgemm_rm(true, false, (int)nk, (int)Dv, (int)rows, 1.0f, P.data(), (int)ldp, dO, (int)ldo, 1.0f, dV, (int)lddv);
          sgemm_rm(false, false, (int)rows, (int)Dk, (int)nk, 1.0f, dP.data(), (int)ldp, K, (int)(Hkv * Dk), 0.0f,
                   dQ, (int)ldq);
          sgemm_rm(true, false, (int)nk, (int)Dk, (int)rows, 1.0f, dP.data(), (int)ldp, Q, (int)ldq, 1.0f, dK, (int)lddk);
        }
      }
    }
    if (nsplit > 1) {
      // dK/dV = Σ over the group's partial buffers
#pragma omp for schedule(static)
      for (i64 gs = 0; gs < groups * S; gs++) {
        const i64 g = gs / S, s = gs % S, b = g / Hkv, hk = g % Hkv;
        float* dKr = dk + ((b * S + s) * Hkv + hk) * Dk;
        float* dVr = dv + ((b * S + s) * Hkv + hk) * Dv;
        const float* p0 = part.data() + g * nsplit * partStride;
        for (i64 d = 0; d < Dk; d++) dKr[d] = p0[s * Dk + d];
        for (i64 d = 0; d < Dv; d++) dVr[d] = p0[S * Dk + s * Dv + d];
        for (i64 jj = 1; jj < nsplit; jj++) {
          const float* pj = p0 + jj * partStride;
          for (i64 d = 0; d < Dk; d++) dKr[d] += pj[s * Dk + d];
          for (i64 d = 0; d < Dv; d++) dVr[d] += pj[S * Dk + s * Dv + d];
        }
      }
    }
  }
  return info.Env().Undefined();
}

bool attention_avx512() { return g_avx512 && !g_force_sgemm; }

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "attention", Attention);
  R1_EXPORT(exports, "attentionGrad", AttentionGrad);
}

}  // namespace r1
