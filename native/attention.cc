// Scaled-dot-product attention, forward and backward, flash-style.
//
// Layouts: q (B,T,H,Dk)  k (B,S,Hkv,Dk)  v (B,S,Hkv,Dv)  out (B,T,H,Dv)  lse (B,H,T).
// The keys a query may see always form a prefix 0..n-1 (causal offset and keyLengths both cut
// the tail), and n grows with t, so a block of queries [t0, t1) needs keys 0..n(t1-1)-1 only.
//
// Work is cut into blocks of kBlock queries of one (batch, head). For each block the scores
// (block × n) are computed by one sgemm reading q and k in place (lda = H*Dk, ldb = Hkv*Dk),
// softmaxed in a per-thread scratch of kBlock × S floats, and multiplied into v by a second
// sgemm writing out in place. Nothing of size T × S is ever held: memory is linear in S.
// The sgemm calls run inside our OpenMP parallel region, where the OpenMP build of OpenBLAS
// stays on the calling thread.
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

namespace r1 {

#define R1_CLONES __attribute__((target_clones("avx512f", "default")))

constexpr i64 kBlock = 64;

struct Attn {
  const float *q, *k, *v;
  const int32_t* kl;
  i64 B, T, S, H, Hkv, Dk, Dv;
  float scale;
  bool causal;
  i64 visible(i64 b, i64 t) const {
    i64 n = S;
    if (causal) n = std::min(n, t + (S - T) + 1);
    if (kl) n = std::min<i64>(n, kl[b]);
    return n < 0 ? 0 : n;
  }
  i64 block() const { return std::min<i64>(kBlock, std::max<i64>(T, 1)); }
};

static bool read_attn(Args& A, size_t i, Attn& at) {
  at.q = A.f32(i, "q");
  at.k = A.f32(i + 1, "k");
  at.v = A.f32(i + 2, "v");
  at.kl = A.isNull(i + 3) ? nullptr : A.i32(i + 3, "keyLengths");
  at.B = A.n(i + 4); at.T = A.n(i + 5); at.S = A.n(i + 6); at.H = A.n(i + 7); at.Hkv = A.n(i + 8);
  at.Dk = A.n(i + 9); at.Dv = A.n(i + 10);
  at.scale = static_cast<float>(A.num(i + 11));
  at.causal = A.b(i + 12);
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

// attention(q, k, v, keyLengths|null, B, T, S, H, Hkv, Dk, Dv, scale, causal, out, lse)
static Napi::Value Attention(const Napi::CallbackInfo& info) {
  Args A(info, "attention");
  Attn at;
  read_attn(A, 0, at);
  float* out = A.f32(13, "out");
  float* lse = A.f32(14, "lse");
  if (!A.ok) return info.Env().Undefined();
  const i64 B = at.B, T = at.T, S = at.S, H = at.H, Dk = at.Dk, Dv = at.Dv;
  if (B == 0 || T == 0 || H == 0) return info.Env().Undefined();
  const i64 G = H / at.Hkv, BQ = at.block(), nqb = (T + BQ - 1) / BQ;
  const i64 items = B * H * nqb;
  const double work = static_cast<double>(B) * H * T * std::max<i64>(S, 1) * (Dk + Dv);
  int nt = threads();
  if (work < 2.0e5) nt = 1;
  if (nt > items) nt = static_cast<int>(items);
  const float ninf = -std::numeric_limits<float>::infinity();

#pragma omp parallel num_threads(nt)
  {
    std::vector<float> P(static_cast<size_t>(BQ * std::max<i64>(S, 1)));
    std::vector<float> inv(static_cast<size_t>(BQ));
#pragma omp for schedule(dynamic, 1)
    for (i64 it = 0; it < items; it++) {
      // latest query blocks first: under a causal mask they see the most keys
      const i64 qb = nqb - 1 - it % nqb, h = (it / nqb) % H, b = it / (nqb * H);
      const i64 hk = h / G;
      const i64 t0 = qb * BQ, t1 = std::min(T, t0 + BQ), rows = t1 - t0;
      float* O = out + ((b * T + t0) * H + h) * Dv;
      const i64 ldo = H * Dv;
      float* L = lse + (b * H + h) * T + t0;
      const i64 nk = at.visible(b, t1 - 1);
      if (nk == 0) {
        for (i64 i = 0; i < rows; i++) { std::fill(O + i * ldo, O + i * ldo + Dv, 0.0f); L[i] = ninf; }
        continue;
      }
      const float* Q = at.q + ((b * T + t0) * H + h) * Dk;
      const float* K = at.k + (b * S * at.Hkv + hk) * Dk;
      const float* V = at.v + (b * S * at.Hkv + hk) * Dv;
      sgemm_rm(false, true, (int)rows, (int)nk, (int)Dk, at.scale, Q, (int)(H * Dk), K, (int)(at.Hkv * Dk),
               0.0f, P.data(), (int)nk);
      for (i64 i = 0; i < rows; i++) {
        float* row = P.data() + i * nk;
        const i64 nv = at.visible(b, t0 + i);
        if (nv == 0) {
          std::fill(row, row + nk, 0.0f);
          L[i] = ninf;
          inv[i] = 0.0f;
          continue;
        }
        float mx;
        const float s = softmax_prefix(row, nv, nk, &mx);
        L[i] = mx + std::log(s);
        inv[i] = 1.0f / s;
      }
      sgemm_rm(false, false, (int)rows, (int)Dv, (int)nk, 1.0f, P.data(), (int)nk, V, (int)(at.Hkv * Dv),
               0.0f, O, (int)ldo);
      for (i64 i = 0; i < rows; i++) scale_row(O + i * ldo, inv[i], Dv);
    }
  }
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

// attentionGrad(q, k, v, keyLengths|null, B, T, S, H, Hkv, Dk, Dv, scale, causal, out, lse, dOut, dq, dk, dv)
static Napi::Value AttentionGrad(const Napi::CallbackInfo& info) {
  Args A(info, "attentionGrad");
  Attn at;
  read_attn(A, 0, at);
  const float* out = A.f32(13, "out");
  const float* lse = A.f32(14, "lse");
  const float* dout = A.f32(15, "dOut");
  float* dq = A.f32(16, "dq");
  float* dk = A.f32(17, "dk");
  float* dv = A.f32(18, "dv");
  if (!A.ok) return info.Env().Undefined();
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

#pragma omp parallel num_threads(nt)
  {
    std::vector<float> P(static_cast<size_t>(BQ * std::max<i64>(S, 1)));
    std::vector<float> dP(static_cast<size_t>(BQ * std::max<i64>(S, 1)));
#pragma omp for schedule(dynamic, 1)
    for (i64 it = 0; it < items; it++) {
      const i64 g = it / nsplit, j = it % nsplit, b = g / Hkv, hk = g % Hkv;
      float *dK, *dV;
      i64 lddk, lddv;
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
      const float* K = at.k + (b * S * Hkv + hk) * Dk;
      const float* V = at.v + (b * S * Hkv + hk) * Dv;
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
        sgemm_rm(false, true, (int)rows, (int)nk, (int)Dk, at.scale, Q, (int)ldq, K, (int)(Hkv * Dk), 0.0f,
                 P.data(), (int)nk);
        sgemm_rm(false, true, (int)rows, (int)nk, (int)Dv, 1.0f, dO, (int)ldo, V, (int)(Hkv * Dv), 0.0f,
                 dP.data(), (int)nk);
        for (i64 i = 0; i < rows; i++) {
          const i64 nv = at.visible(b, t0 + i);
          const float di = dotf(dO + i * ldo, O + i * ldo, Dv);
          bwd_row(P.data() + i * nk, dP.data() + i * nk, nv, nk, L[i], di, at.scale);
        }
        // dV[0:nk] += Pᵀ dO ; dQ = dS K ; dK[0:nk] += dSᵀ Q
        sgemm_rm(true, false, (int)nk, (int)Dv, (int)rows, 1.0f, P.data(), (int)nk, dO, (int)ldo, 1.0f, dV, (int)lddv);
        sgemm_rm(false, false, (int)rows, (int)Dk, (int)nk, 1.0f, dP.data(), (int)nk, K, (int)(Hkv * Dk), 0.0f,
                 dQ, (int)ldq);
        sgemm_rm(true, false, (int)nk, (int)Dk, (int)rows, 1.0f, dP.data(), (int)nk, Q, (int)ldq, 1.0f, dK, (int)lddk);
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

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "attention", Attention);
  R1_EXPORT(exports, "attentionGrad", AttentionGrad);
}

}  // namespace r1
