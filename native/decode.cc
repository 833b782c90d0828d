// Fused decoding blocks: one call runs a whole block of a decoder layer (input norm, the block,
// residual) for a few new tokens (B rows of T tokens each, B·T small), as when generate() serves
// one or a few sequences, or speculative decoding verifies a few drafted tokens. Op by op, such
// a pass is ~25 small kernel calls per block with their allocations and copies, which cost more
// than the arithmetic; here the block's weights are read once, in order, with the start of the
// next matrix requested from memory while the current one is being read.
//
//   mlaDecode   DeepSeek-V3 attention over the MLA latent cache (W^UK / W^UV absorbed)
//   gqaDecode   Llama / Qwen2 attention over a key/value cache (grouped-query)
//   mlpDecode   a SwiGLU MLP block (the dense layers of all models)
//   moeDecode   a DeepSeekMoE block: router, group-limited top-K, routed and shared experts
//
// Each follows the block as src/models/deepseek-v3.ts and src/models/llama.ts write it, through
// the same row kernels (rms_norm_row, rope_row, swiglu_row, attention_forward, moe_experts,
// linear_rows), and is tested against that layer-by-layer path (test/decode-blocks.test.ts).
// Arguments were checked by CpuBackend (src/backend/cpu/cpu.ts).
#include "common.h"
#include "kernels.h"

namespace r1 {

namespace {

// A linear layer: W (out × in) row-major, optional bias (out).
struct Lin {
  const float* w = nullptr;
  const float* b = nullptr;
  i64 out = 0, in = 0;
};

// y (m × out) = x (m × in) · Wᵀ + b; `next` is the matrix the block reads after this one.
void linear(const float* x, i64 m, const Lin& L, float* y, const Lin* next = nullptr) {
  if (next && next->w) prefetch_weights(next->w, next->out * next->in);
  linear_rows(static_cast<int>(m), static_cast<int>(L.out), static_cast<int>(L.in), x, static_cast<int>(L.in), L.w,
              static_cast<int>(L.in), y, static_cast<int>(L.out));
  if (L.b) {
    for (i64 r = 0; r < m; r++) {
      float* row = y + r * L.out;
      for (i64 j = 0; j < L.out; j++) row[j] += L.b[j];
    }
  }
}

void rms_rows(const float* x, const float* w, float* o, i64 rows, i64 cols, float eps) {
  for (i64 r = 0; r < rows; r++) rms_norm_row(x + r * cols, w, o + r * cols, cols, eps);
}

// out = x + y, row by row (the residual).
void residual(const float* x, const float* y, float* out, i64 n) {
  for (i64 i = 0; i < n; i++) out[i] = x[i] + y[i];
}

// The positional arguments every block shares: x (N × C) in, out (N × C) out, the weights as
// an array of Float32Array | null, and the sizes as a Float64Array; an attention block then
// takes the rope tables cos, sin (maxPos × D/2), positions i32 (N) and keyRange i32 (B × 2).
struct Block {
  Args A;
  const float* x;
  float* out;
  const double* dims;
  Napi::Array weights;
  const float *cos = nullptr, *sin = nullptr;
  const int32_t *pos = nullptr, *range = nullptr;
  Block(const Napi::CallbackInfo& info, const char* name, bool attention = false) : A(info, name) {
    x = A.f32(0, "x");
    out = A.f32(1, "out");
    dims = A.f64(3, "dims");
    if (A.ok && !info[2].IsArray()) A.fail("weights must be an array");
    if (A.ok) weights = info[2].As<Napi::Array>();
    if (attention) {
      cos = A.f32(4, "cos");
      sin = A.f32(5, "sin");
      pos = A.i32(6, "positions");
      range = A.i32(7, "keyRange");
    }
  }
  i64 dim(int i) const { return static_cast<i64>(dims[i]); }
  // weights[i]: a Float32Array, or null where the block has no such tensor
  const float* weight(uint32_t i, const char* what, bool optional = false) {
    if (!A.ok) return nullptr;
    Napi::Value v = weights.Get(i);
    if (v.IsNull() || v.IsUndefined()) {
      if (!optional) A.fail(std::string(what) + " is missing");
      return nullptr;
    }
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      A.fail(std::string(what) + " must be a Float32Array");
      return nullptr;
    }
    return v.As<Napi::Float32Array>().Data();
  }
};

// ---- DeepSeek-V3: Multi-head Latent Attention over the latent cache -----------------------------
// weights: [input_layernorm, q_a_proj, q_a_layernorm, q_b_proj, q_proj, kv_a_proj_with_mqa,
//           kv_a_layernorm, kv_b_proj, o_proj, q_a_proj.bias, kv_a_proj.bias, o_proj.bias]
// dims:    [B, T, C, H, Dn, Dr, Dv, Lq (0: q_proj), Lkv, eps, mlaEps, scale, interleaved, capacity, at]
// then the rope and key-range arguments (Block) and the latent cache (B × capacity × (Lkv + Dr)).
// Token t of row b is x's row b·T + t and goes to cache index at + t.
Napi::Value MlaDecode(const Napi::CallbackInfo& info) {
  Block K(info, "mlaDecode", true);
  Args& A = K.A;
  float* cache = A.f32(8, "latent");
  if (!A.ok) return info.Env().Undefined();
  const float *cosT = K.cos, *sinT = K.sin;
  const int32_t *pos = K.pos, *range = K.range;
  const i64 B = K.dim(0), T = K.dim(1), C = K.dim(2), H = K.dim(3), Dn = K.dim(4), Dr = K.dim(5), Dv = K.dim(6),
            Lq = K.dim(7), Lkv = K.dim(8);
  const float eps = static_cast<float>(K.dims[9]), mlaEps = static_cast<float>(K.dims[10]),
              scale = static_cast<float>(K.dims[11]);
  const bool interleaved = K.dims[12] != 0;
  const i64 cap = K.dim(13), at = K.dim(14), N = B * T, Dq = Dn + Dr, W = Lkv + Dr, half = Dr / 2;
  const float* inNorm = K.weight(0, "input_layernorm");
  Lin qA{K.weight(1, "q_a_proj", Lq == 0), K.weight(9, "q_a_proj.bias", true), Lq, C};
  const float* qANorm = K.weight(2, "q_a_layernorm", Lq == 0);
  Lin qB{K.weight(3, "q_b_proj", Lq == 0), nullptr, H * Dq, Lq};
  Lin qP{K.weight(4, "q_proj", Lq != 0), nullptr, H * Dq, C};
  Lin kvA{K.weight(5, "kv_a_proj_with_mqa"), K.weight(10, "kv_a_proj_with_mqa.bias", true), W, C};
  const float* kvANorm = K.weight(6, "kv_a_layernorm");
  const float* kvB = K.weight(7, "kv_b_proj");
  Lin oP{K.weight(8, "o_proj"), K.weight(11, "o_proj.bias", true), C, H * Dv};
  if (!A.ok || N == 0) return info.Env().Undefined();

  std::vector<float> xn(N * C), cq(N * std::max<i64>(Lq, 1)), qf(N * H * Dq), kva(N * W), q(N * H * W),
      oLat(N * H * Lkv), lse(N * H), o(N * H * Dv), y(N * C);
  rms_rows(K.x, inNorm, xn.data(), N, C, eps);
  // queries (eq. 6–9): c_Q = RMSNorm(W^DQ h); [q_C; q_R] = W^UQ c_Q
  if (Lq) {
    linear(xn.data(), N, qA, cq.data(), &qB);
    rms_rows(cq.data(), qANorm, cq.data(), N, Lq, mlaEps);
    linear(cq.data(), N, qB, qf.data(), &kvA);
  } else {
    linear(xn.data(), N, qP, qf.data(), &kvA);
  }
  // the latent (eq. 1–5): [RMSNorm(c_KV) ; RoPE(k_R)] at index at + t of row b's cache
  linear(xn.data(), N, kvA, kva.data(), &oP);
  for (i64 n = 0; n < N; n++) {
    float* lat = cache + ((n / T) * cap + at + n % T) * W;
    rms_norm_row(kva.data() + n * W, kvANorm, lat, Lkv, mlaEps);
    rope_row(kva.data() + n * W + Lkv, lat + Lkv, cosT + pos[n] * half, sinT + pos[n] * half, half, interleaved);
  }
  // absorbed query per head: [W^UKᵀ q_C ; RoPE(q_R)], W^UK_h = rows h·(Dn+Dv) .. +Dn of kv_b_proj
  for (i64 h = 0; h < H; h++) {
    sgemm_rm(false, false, static_cast<int>(N), static_cast<int>(Lkv), static_cast<int>(Dn), 1.0f, qf.data() + h * Dq,
             static_cast<int>(H * Dq), kvB + h * (Dn + Dv) * Lkv, static_cast<int>(Lkv), 0.0f, q.data() + h * W,
             static_cast<int>(H * W));
    for (i64 n = 0; n < N; n++) {
      rope_row(qf.data() + (n * H + h) * Dq + Dn, q.data() + (n * H + h) * W + Lkv, cosT + pos[n] * half,
               sinT + pos[n] * half, half, interleaved);
    }
  }
  // one shared latent "head" (MQA), causal over the cache; its first Lkv entries serve as the values
  attention_forward(AttentionCall{q.data(), cache, cache, range, B, T, cap, H, 1, W, Lkv, scale, true, true}, oLat.data(),
                    lse.data());
  // o_h = W^UV_h (Σ p c_KV), W^UV_h = rows h·(Dn+Dv)+Dn .. +Dv of kv_b_proj
  for (i64 h = 0; h < H; h++) {
    sgemm_rm(false, true, static_cast<int>(N), static_cast<int>(Dv), static_cast<int>(Lkv), 1.0f, oLat.data() + h * Lkv,
             static_cast<int>(H * Lkv), kvB + (h * (Dn + Dv) + Dn) * Lkv, static_cast<int>(Lkv), 0.0f, o.data() + h * Dv,
             static_cast<int>(H * Dv));
  }
  linear(o.data(), N, oP, y.data());
  residual(K.x, y.data(), K.out, N * C);
  return info.Env().Undefined();
}

// ---- Llama / Qwen2: grouped-query attention over a key/value cache ------------------------------
// weights: [input_layernorm, q_proj, k_proj, v_proj, o_proj, q.bias, k.bias, v.bias, o.bias]
// dims:    [B, T, C, H, Hkv, D, eps, scale, interleaved, capacity, at]
// then the rope and key-range arguments (Block), kCache and vCache (B × capacity × Hkv × D).
// Token t of row b is x's row b·T + t and goes to cache index at + t.
Napi::Value GqaDecode(const Napi::CallbackInfo& info) {
  Block K(info, "gqaDecode", true);
  Args& A = K.A;
  float* kCache = A.f32(8, "kCache");
  float* vCache = A.f32(9, "vCache");
  if (!A.ok) return info.Env().Undefined();
  const float *cosT = K.cos, *sinT = K.sin;
  const int32_t *pos = K.pos, *range = K.range;
  const i64 B = K.dim(0), T = K.dim(1), C = K.dim(2), H = K.dim(3), Hkv = K.dim(4), D = K.dim(5);
  const float eps = static_cast<float>(K.dims[6]), scale = static_cast<float>(K.dims[7]);
  const bool interleaved = K.dims[8] != 0;
  const i64 cap = K.dim(9), at = K.dim(10), N = B * T, half = D / 2;
  const float* inNorm = K.weight(0, "input_layernorm");
  Lin qP{K.weight(1, "q_proj"), K.weight(5, "q_proj.bias", true), H * D, C};
  Lin kP{K.weight(2, "k_proj"), K.weight(6, "k_proj.bias", true), Hkv * D, C};
  Lin vP{K.weight(3, "v_proj"), K.weight(7, "v_proj.bias", true), Hkv * D, C};
  Lin oP{K.weight(4, "o_proj"), K.weight(8, "o_proj.bias", true), C, H * D};
  if (!A.ok || N == 0) return info.Env().Undefined();

  std::vector<float> xn(N * C), q(N * H * D), k(N * Hkv * D), v(N * Hkv * D), o(N * H * D), lse(N * H), y(N * C);
  rms_rows(K.x, inNorm, xn.data(), N, C, eps);
  linear(xn.data(), N, qP, q.data(), &kP);
  linear(xn.data(), N, kP, k.data(), &vP);
  linear(xn.data(), N, vP, v.data(), &oP);
  for (i64 n = 0; n < N; n++) {
    const float* c = cosT + pos[n] * half;
    const float* s = sinT + pos[n] * half;
    const i64 slot = (n / T) * cap + at + n % T;  // the token's place in its row's cache
    for (i64 h = 0; h < H; h++) rope_row(q.data() + (n * H + h) * D, q.data() + (n * H + h) * D, c, s, half, interleaved);
    for (i64 h = 0; h < Hkv; h++) rope_row(k.data() + (n * Hkv + h) * D, kCache + (slot * Hkv + h) * D, c, s, half, interleaved);
    std::memcpy(vCache + slot * Hkv * D, v.data() + n * Hkv * D, sizeof(float) * Hkv * D);
  }
  attention_forward(AttentionCall{q.data(), kCache, vCache, range, B, T, cap, H, Hkv, D, D, scale, true, false}, o.data(),
                    lse.data());
  linear(o.data(), N, oP, y.data());
  residual(K.x, y.data(), K.out, N * C);
  return info.Env().Undefined();
}

// ---- SwiGLU MLP block -----------------------------------------------------------------------------
// weights: [post_attention_layernorm, gate_proj, up_proj, down_proj];  dims: [N, C, I, eps]
Napi::Value MlpDecode(const Napi::CallbackInfo& info) {
  Block K(info, "mlpDecode");
  Args& A = K.A;
  if (!A.ok) return info.Env().Undefined();
  const i64 N = K.dim(0), C = K.dim(1), I = K.dim(2);
  const float eps = static_cast<float>(K.dims[3]);
  const float* norm = K.weight(0, "post_attention_layernorm");
  Lin gate{K.weight(1, "gate_proj"), nullptr, I, C}, up{K.weight(2, "up_proj"), nullptr, I, C},
      down{K.weight(3, "down_proj"), nullptr, C, I};
  if (!A.ok || N == 0) return info.Env().Undefined();
  std::vector<float> xn(N * C), g(N * I), u(N * I), y(N * C);
  rms_rows(K.x, norm, xn.data(), N, C, eps);
  linear(xn.data(), N, gate, g.data(), &up);
  linear(xn.data(), N, up, u.data(), &down);
  swiglu_row(g.data(), u.data(), g.data(), N * I);
  linear(g.data(), N, down, y.data());
  residual(K.x, y.data(), K.out, N * C);
  return info.Env().Undefined();
}

// ---- DeepSeekMoE block ------------------------------------------------------------------------------

// Indices of the out_n largest of v (n entries) into out, descending; ties keep the lower index.
// DeepseekMoE's topIndices, for the same choice.
void top_indices(const double* v, i64 n, int32_t* out, i64 out_n) {
  i64 filled = 0;
  for (i64 i = 0; i < n; i++) {
    const double x = v[i];
    if (filled == out_n && !(x > v[out[out_n - 1]])) continue;
    i64 j = filled < out_n ? filled++ : out_n - 1;
    while (j > 0 && x > v[out[j - 1]]) { out[j] = out[j - 1]; j--; }
    out[j] = static_cast<int32_t>(i);
  }
}

// Group-limited top-K on s + b (eq. 16), as DeepseekMoE.route: a group scores the sum of its two
// best biased affinities; experts of dropped groups score 0.
void route(const float* s, const float* bias, i64 E, i64 G, i64 topkGroup, i64 K, int32_t* chosen) {
  const i64 per = E / G;
  std::vector<double> biased(E), masked(E, 0.0), groupScore(G);
  std::vector<int32_t> kept(topkGroup);
  for (i64 e = 0; e < E; e++) biased[e] = static_cast<double>(s[e]) + static_cast<double>(bias[e]);
  for (i64 g = 0; g < G; g++) {
    double best = -INFINITY, second = -INFINITY;
    for (i64 j = 0; j < per; j++) {
      const double v = biased[g * per + j];
      if (v > best) { second = best; best = v; } else if (v > second) second = v;
    }
    groupScore[g] = per >= 2 ? best + second : best;
  }
  top_indices(groupScore.data(), G, kept.data(), topkGroup);
  for (int32_t g : kept) for (i64 j = 0; j < per; j++) masked[g * per + j] = biased[g * per + j];
  top_indices(masked.data(), E, chosen, K);
}

// weights: [post_attention_layernorm, gate.weight (E × C), gate.e_score_correction_bias (E),
//           shared gate_proj, shared up_proj, shared down_proj (null without shared experts)]
// dims: [N, C, I, Ishared, E, K, G, topkGroup, normTopk, scaling, eps]
// then the experts' gate[], up[], down[] (arrays of E Float32Arrays) and chosen i32 (N × K), which
// receives the experts each row chose (for load statistics).
Napi::Value MoeDecode(const Napi::CallbackInfo& info) {
  Block K(info, "moeDecode");
  Args& A = K.A;
  int32_t* chosen = A.i32(7, "chosen");
  if (!A.ok) return info.Env().Undefined();
  const i64 N = K.dim(0), C = K.dim(1), I = K.dim(2), Is = K.dim(3), E = K.dim(4), Kx = K.dim(5), G = K.dim(6),
            topkGroup = K.dim(7);
  const bool normTopk = K.dims[8] != 0;
  const float scaling = static_cast<float>(K.dims[9]), eps = static_cast<float>(K.dims[10]);
  const float* norm = K.weight(0, "post_attention_layernorm");
  Lin router{K.weight(1, "gate.weight"), nullptr, E, C};
  const float* bias = K.weight(2, "gate.e_score_correction_bias");
  Lin sGate{K.weight(3, "shared_experts.gate_proj", Is == 0), nullptr, Is, C},
      sUp{K.weight(4, "shared_experts.up_proj", Is == 0), nullptr, Is, C},
      sDown{K.weight(5, "shared_experts.down_proj", Is == 0), nullptr, C, Is};
  if (!A.ok || N == 0) return info.Env().Undefined();

  std::vector<float> xn(N * C), scores(N * E), w(N * Kx), y(N * C, 0.0f);
  rms_rows(K.x, norm, xn.data(), N, C, eps);
  // affinities s = sigmoid(e_iᵀ h) (eq. 15), then the choice (eq. 16) and gates g (eq. 13)
  linear(xn.data(), N, router, scores.data());
  for (float& s : scores) s = fsigmoid(s);
  for (i64 n = 0; n < N; n++) {
    route(scores.data() + n * E, bias, E, G, topkGroup, Kx, chosen + n * Kx);
    float* g = w.data() + n * Kx;
    double sum = 0;
    for (i64 j = 0; j < Kx; j++) { g[j] = scores[n * E + chosen[n * Kx + j]]; sum += g[j]; }
    const float denom = static_cast<float>(sum) + 1e-20f;
    for (i64 j = 0; j < Kx; j++) g[j] = (normTopk ? g[j] / denom : g[j]) * scaling;
  }
  const std::vector<i64> used = experts_used(chosen, N * Kx, E);
  std::vector<const float*> gate, up, down;
  f32_list(A, 4, "gate", used, gate);
  f32_list(A, 5, "up", used, up);
  f32_list(A, 6, "down", used, down);
  if (!A.ok) return info.Env().Undefined();
  moe_experts(xn.data(), chosen, w.data(), gate.data(), up.data(), down.data(), E, y.data(), N, Kx, C, I);
  if (Is) {
    std::vector<float> g(N * Is), u(N * Is), ys(N * C);
    linear(xn.data(), N, sGate, g.data(), &sUp);
    linear(xn.data(), N, sUp, u.data(), &sDown);
    swiglu_row(g.data(), u.data(), g.data(), N * Is);
    linear(g.data(), N, sDown, ys.data());
    for (i64 i = 0; i < N * C; i++) y[i] += ys[i];
  }
  residual(K.x, y.data(), K.out, N * C);
  return info.Env().Undefined();
}

}  // namespace

void RegisterDecode(Napi::Env env, Napi::Object exports) {
  R1_EXPORT(exports, "mlaDecode", MlaDecode);
  R1_EXPORT(exports, "gqaDecode", GqaDecode);
  R1_EXPORT(exports, "mlpDecode", MlpDecode);
  R1_EXPORT(exports, "moeDecode", MoeDecode);
}

}  // namespace r1
