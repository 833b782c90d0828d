// DeepSeek-V3 (arXiv:2412.19437), top to bottom in the order of the paper's §2:
//   Multi-head Latent Attention (eq. 1–11) → DeepSeekMoE with auxiliary-loss-free load
//   balancing (eq. 12–20) → Multi-Token Prediction (eq. 21–25) → the causal LM.
// Parameter names are those of the official checkpoint and Hugging Face transformers.
//
// Legend: B batch, T time, N = B·T tokens, C hidden size, H heads,
//   Dn qk_nope_head_dim, Dr qk_rope_head_dim, Dv v_head_dim, Lq q_lora_rank, Lkv kv_lora_rank,
//   E routed experts, K experts per token, G expert groups, V vocab.
import type { Backend } from '../backend/backend.js';
import {
  add, attention, concat, div, expand, gatherLast, gatherRows, groupedLinear, isGradEnabled, linear, matmul, mean,
  moeExperts, mul, narrow, permute, randn, reshape, rope, Rng, scatterAddRows, sigmoid, split, sum, swiglu, Tensor,
  tensor, zeros,
} from '../tensor/index.js';
import { Embedding, InitOptions, Linear, RMSNorm, SwiGLUMLP } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { RotaryTables, yarnMscale } from '../nn/rotary.js';
import { CausalLM, decodeCacheArgs, decodesFused, defaultPositions, ForwardOptions, ForwardOutput, nextTokenLossFromHidden } from './common.js';
import type { DeepseekV3Config } from './config.js';
import type { KVCache } from '../generate/kv-cache.js';

// Hugging Face builds the MLA-internal norms with RMSNorm's default ε, not rms_norm_eps.
const MLA_NORM_EPS = 1e-6;

// ---------------------------------------------------------------------------------------------
// Multi-head Latent Attention
// ---------------------------------------------------------------------------------------------
// Queries (eq. 6–9):  c_Q = RMSNorm(W^DQ h);  [q_C; q_R] = W^UQ c_Q;  q_R = RoPE(q_R)
//   (W^DQ = q_a_proj, W^UQ = q_b_proj; without q_lora_rank a single q_proj.)
// Keys/values (eq. 1–5):  [c_KV; k_R] = W^DKV h;  k_R = RoPE(k_R), one rotary key for all heads;
//   [k_C; v_C] = W^UKV RMSNorm(c_KV)   (W^DKV = kv_a_proj_with_mqa, W^UKV = kv_b_proj)
// Attention (eq. 10–11):  o = softmax([q_C; q_R]·[k_C; k_R]ᵀ · scale) v_C;  u = W^O o
export class MultiHeadLatentAttention extends Module {
  readonly q_a_proj?: Linear; readonly q_a_layernorm?: RMSNorm; readonly q_b_proj?: Linear;
  readonly q_proj?: Linear;
  readonly kv_a_proj_with_mqa: Linear; readonly kv_a_layernorm: RMSNorm; readonly kv_b_proj: Linear;
  readonly o_proj: Linear;
  readonly H: number; readonly Dn: number; readonly Dr: number; readonly Dv: number; readonly Lkv: number;
  /** Softmax scale: 1/sqrt(Dn + Dr), times YaRN's mscale² when the context is extended. */
  readonly scale: number;
  readonly interleaved: boolean;

  constructor(cfg: DeepseekV3Config, init: InitOptions, private readonly cacheKey: string) {
    super();
    const C = cfg.hidden_size;
    this.H = cfg.num_attention_heads;
    this.Dn = cfg.qk_nope_head_dim; this.Dr = cfg.qk_rope_head_dim; this.Dv = cfg.v_head_dim;
    this.Lkv = cfg.kv_lora_rank;
    const Dq = this.Dn + this.Dr;
    const bias = cfg.attention_bias;
    if (cfg.q_lora_rank) {
      this.q_a_proj = this.module('q_a_proj', new Linear(C, cfg.q_lora_rank, bias, init));
      this.q_a_layernorm = this.module('q_a_layernorm', new RMSNorm(cfg.q_lora_rank, MLA_NORM_EPS, init.backend));
      this.q_b_proj = this.module('q_b_proj', new Linear(cfg.q_lora_rank, this.H * Dq, false, init));
    } else {
      // without q_lora_rank, transformers gives q_proj no bias whatever attention_bias says
      this.q_proj = this.module('q_proj', new Linear(C, this.H * Dq, false, init));
    }
    this.kv_a_proj_with_mqa = this.module('kv_a_proj_with_mqa', new Linear(C, this.Lkv + this.Dr, bias, init));
    this.kv_a_layernorm = this.module('kv_a_layernorm', new RMSNorm(this.Lkv, MLA_NORM_EPS, init.backend));
    this.kv_b_proj = this.module('kv_b_proj', new Linear(this.Lkv, this.H * (this.Dn + this.Dv), false, init));
    this.o_proj = this.module('o_proj', new Linear(this.H * this.Dv, C, bias, init));

    let scale = 1 / Math.sqrt(Dq);
    const r = cfg.rope;
    if (r.type !== 'default' && r.mscaleAllDim) {
      const m = yarnMscale(r.factor ?? 1, r.mscaleAllDim);
      scale *= m * m;
    }
    this.scale = scale;
    this.interleaved = cfg.rope_interleave;
  }

  /** x (B, T, C) → (B, T, C); with a cache, the absorbed form over the cached latent. */
  forward(x: Tensor, positions: Tensor, rot: RotaryTables, cache?: KVCache): Tensor {
    const [B, T] = x.shape;
    const { H, Dn, Dr, Dv, Lkv } = this;
    const qFlat = this.q_proj
      ? this.q_proj.forward(x)
      : this.q_b_proj!.forward(this.q_a_layernorm!.forward(this.q_a_proj!.forward(x)));
    const [qNope, qPe] = split(reshape(qFlat, [B, T, H, Dn + Dr]), [Dn, Dr], -1); // (B,T,H,Dn), (B,T,H,Dr)
    const qRot = rope(qPe, rot.cos, rot.sin, positions, this.interleaved);

    const [cKV, kPeFlat] = split(this.kv_a_proj_with_mqa.forward(x), [Lkv, Dr], -1); // (B,T,Lkv), (B,T,Dr)
    const cKVNorm = this.kv_a_layernorm.forward(cKV);
    const kRot = rope(reshape(kPeFlat, [B, T, 1, Dr]), rot.cos, rot.sin, positions, this.interleaved);
    if (cache) return this.forwardAbsorbed(qNope, qRot, cKVNorm, kRot, cache);

    const kv = reshape(this.kv_b_proj.forward(cKVNorm), [B, T, H, Dn + Dv]);
    const [kNope, v] = split(kv, [Dn, Dv], -1); // (B,T,H,Dn), (B,T,H,Dv)
    const q = concat([qNope, qRot], -1); // (B,T,H,Dn+Dr)
    const k = concat([kNope, expand(kRot, [B, T, H, Dr])], -1); // the shared rotary key, per head
    const o = attention(q, k, v, { scale: this.scale }); // (B,T,H,Dv)
    return this.o_proj.forward(reshape(o, [B, T, H * Dv]));
  }

  /**
   * Inference over the latent cache. Since k_C = W^UK c_KV and v_C = W^UV c_KV per head,
   *   q_Cᵀ k_C = (W^UKᵀ q_C)ᵀ c_KV   and   Σ p v_C = W^UV (Σ p c_KV),
   * so attention runs directly on the cached [c_KV ; k_R] with one shared "head" (MQA): the
   * query is [W^UKᵀ q_C ; q_R] and the attention output is mapped through W^UV afterwards.
   */
  private forwardAbsorbed(qNope: Tensor, qRot: Tensor, cKVNorm: Tensor, kRot: Tensor, cache: KVCache): Tensor {
    const [B, T, H] = qNope.shape;
    const { Dn, Dv, Lkv } = this;
    const latent = cache.write(this.cacheKey, concat([reshape(cKVNorm, [B, T, 1, Lkv]), kRot], -1)); // (B,cap,1,Lkv+Dr)
    const [wUK, wUV] = cache.memo(`${this.cacheKey}.absorbed`, () =>
      split(reshape(this.kv_b_proj.weight, [H, Dn + Dv, Lkv]), [Dn, Dv], 1)); // (H,Dn,Lkv), (H,Dv,Lkv)
    const perHead = (t: Tensor): Tensor => permute(t, [2, 0, 1, 3]); // (B,T,H,·) → (H,B,T,·)
    const qAbs = matmul(reshape(perHead(qNope), [H, B * T, Dn]), wUK); // (H, B·T, Lkv)
    const q = concat([permute(reshape(qAbs, [H, B, T, Lkv]), [1, 2, 0, 3]), qRot], -1); // (B,T,H,Lkv+Dr)
    const oLatent = attention(q, latent, latent, { scale: this.scale, keyRange: cache.range, valueWidth: Lkv }); // (B,T,H,Lkv)
    const o = matmul(reshape(perHead(oLatent), [H, B * T, Lkv]), wUV, { transB: true }); // (H, B·T, Dv)
    return this.o_proj.forward(reshape(permute(reshape(o, [H, B, T, Dv]), [1, 2, 0, 3]), [B, T, H * Dv]));
  }

  /** x + forward(norm(x)) over the latent cache for a few new tokens (B, T, C), in one backend call. */
  decodeStep(x: Tensor, norm: RMSNorm, positions: Tensor, rot: RotaryTables, cache: KVCache): Tensor {
    const [B, T, C] = x.shape;
    const { H, Dn, Dr, Dv, Lkv } = this;
    const out = x.backend.empty('f32', B * T * C);
    x.backend.mlaDecode!({
      N: B * T, C, x: x.storage, norm: norm.weight.storage, eps: norm.eps, H, Dn, Dr, Dv, Lkv,
      Lq: this.q_a_proj ? this.q_a_proj.outFeatures : 0, mlaEps: MLA_NORM_EPS,
      ...decodeCacheArgs(x, cache, positions, rot, this.interleaved, this.scale),
      qA: this.q_a_proj?.kernelArgs ?? null, qANorm: this.q_a_layernorm?.weight.storage ?? null,
      qB: this.q_b_proj?.weight.storage ?? null, q: this.q_proj?.weight.storage ?? null,
      kvA: this.kv_a_proj_with_mqa.kernelArgs, kvANorm: this.kv_a_layernorm.weight.storage, kvB: this.kv_b_proj.weight.storage,
      o: this.o_proj.kernelArgs, latent: cache.buffer(this.cacheKey, 1, Lkv + Dr).storage,
    }, out);
    return new Tensor(out, x.shape, x.backend);
  }
}

// ---------------------------------------------------------------------------------------------
// DeepSeekMoE
// ---------------------------------------------------------------------------------------------
// h' = h + Σ_shared FFN_s(h) + Σ_i g_i FFN_i(h)                                    (eq. 12)
// s_i = sigmoid(e_iᵀ h)  (affinity)                                                (eq. 15)
// choice: top-K of s_i + b_i among the topk_group best of G groups (a group scores
//   the sum of its two best biased affinities); b only chooses, never weighs        (eq. 16)
// g_i = s_i / Σ_chosen s_j · routed_scaling_factor                                 (eq. 13)
// Auxiliary-loss-free balancing: after each step b_i −= γ if expert i was overloaded,
//   += γ if underloaded. Sequence-wise balance loss α Σ_i f_i P_i                  (eq. 17–20)

/** The router: affinity weights e_i (E, C) and the selection-only bias b (E). */
export class TopkRouter extends Module {
  readonly weight: Tensor;
  readonly e_score_correction_bias: Tensor;
  constructor(E: number, C: number, init: InitOptions) {
    super();
    this.weight = this.param('weight', randn([E, C], init.rng, init.std, 0, { backend: init.backend }));
    this.e_score_correction_bias = this.buffer('e_score_correction_bias', zeros([E], { backend: init.backend }));
  }
}

/** Which experts each token uses: chosen on the host from the affinities (small: N × E). */
export interface Routing {
  /** i32 (N, K) chosen experts per token. */
  indices: Tensor;
  /** Tokens per expert (length E). */
  load: Int32Array;
}

export class DeepseekMoE extends Module {
  readonly experts: ModuleList<SwiGLUMLP>;
  readonly gate: TopkRouter;
  readonly shared_experts: SwiGLUMLP | null;
  readonly E: number; readonly K: number; readonly G: number; readonly topkGroup: number;
  /** Sequence-wise balance loss weight α (0: not computed). Set by the trainer. */
  balanceAlpha = 0;
  /** Tokens each expert received in the last forward pass (for bias updates and logs). */
  lastLoad: Int32Array;
  /** α Σ f_i P_i of the last forward pass, when balanceAlpha > 0 and training. */
  lastBalanceLoss: Tensor | null = null;

  constructor(readonly cfg: DeepseekV3Config, init: InitOptions) {
    super();
    if (cfg.scoring_func !== 'sigmoid' || cfg.topk_method !== 'noaux_tc') {
      throw new Error(`DeepSeek-V3 routing needs scoring_func 'sigmoid' and topk_method 'noaux_tc' (got '${cfg.scoring_func}', '${cfg.topk_method}')`);
    }
    const C = cfg.hidden_size;
    this.E = cfg.n_routed_experts; this.K = cfg.num_experts_per_tok;
    this.G = cfg.n_group; this.topkGroup = cfg.topk_group;
    this.experts = this.module('experts', new ModuleList(
      Array.from({ length: this.E }, () => new SwiGLUMLP(C, cfg.moe_intermediate_size, init))));
    this.gate = this.module('gate', new TopkRouter(this.E, C, init));
    this.shared_experts = cfg.n_shared_experts > 0
      ? this.module('shared_experts', new SwiGLUMLP(C, cfg.moe_intermediate_size * cfg.n_shared_experts, init))
      : null;
    this.lastLoad = new Int32Array(this.E);
  }

  /** Group-limited top-K selection on s + b (eq. 16), exactly as the reference does it. */
  route(scores: Tensor): Routing {
    const [N, E] = scores.shape;
    const { K, G, topkGroup } = this;
    const s = scores.toArray();
    const bias = this.gate.e_score_correction_bias.toArray();
    const perGroup = E / G;
    const indices = new Int32Array(N * K);
    const load = new Int32Array(E);
    const biased = new Float64Array(E);
    const masked = new Float64Array(E);
    const groupScore = new Float64Array(G);
    const keptGroups = new Int32Array(topkGroup);
    const chosen = new Int32Array(K);
    for (let n = 0; n < N; n++) {
      for (let e = 0; e < E; e++) biased[e] = s[n * E + e] + bias[e];
      for (let g = 0; g < G; g++) {
        let best = -Infinity, second = -Infinity;
        for (let j = 0; j < perGroup; j++) {
          const v = biased[g * perGroup + j];
          if (v > best) { second = best; best = v; } else if (v > second) second = v;
        }
        groupScore[g] = perGroup >= 2 ? best + second : best;
      }
      topIndices(groupScore, keptGroups);
      // Experts of dropped groups score 0 (not −∞): the reference masks with 0.0.
      masked.fill(0);
      for (const g of keptGroups) for (let j = 0; j < perGroup; j++) masked[g * perGroup + j] = biased[g * perGroup + j];
      topIndices(masked, chosen);
      for (let j = 0; j < K; j++) { indices[n * K + j] = chosen[j]; load[chosen[j]]++; }
    }
    return { indices: tensor(indices, [N, K], { backend: scores.backend, dtype: 'i32' }), load };
  }

  /** x (B, T, C) → (B, T, C). */
  forward(x: Tensor): Tensor {
    const [B, T, C] = x.shape;
    const N = B * T;
    const xf = reshape(x, [N, C]);
    const scores = sigmoid(linear(xf, this.gate.weight)); // (N, E) affinities s
    const { indices, load } = this.route(scores);
    this.lastLoad = load;

    let weights = gatherLast(scores, indices); // (N, K): g' = s of the chosen experts
    if (this.cfg.norm_topk_prob) weights = div(weights, add(sum(weights, -1, true), 1e-20));
    weights = mul(weights, this.cfg.routed_scaling_factor);

    const experts = this.experts.items;
    let y: Tensor;
    if (!isGradEnabled()) {
      // Inference (generation, evaluation): the same sum in one backend call, no autograd record.
      y = moeExperts(xf, indices, weights, experts.map((m) => m.gate_proj.weight), experts.map((m) => m.up_proj.weight),
        experts.map((m) => m.down_proj.weight));
    } else {
      y = this.dispatch(xf, indices, weights, load);
    }
    if (this.shared_experts) y = add(y, this.shared_experts.forward(xf));

    this.lastBalanceLoss = this.balanceAlpha > 0 && this.training ? this.balanceLoss(scores, indices, B, T) : null;
    return reshape(y, [B, T, C]);
  }

  /** x + forward(norm(x)) for a few new tokens (B, T, C) at inference, in one backend call. */
  decodeStep(x: Tensor, norm: RMSNorm): Tensor {
    const [B, T, C] = x.shape;
    const { E, K, G, topkGroup } = this;
    const backend = x.backend;
    const out = backend.empty('f32', B * T * C);
    const chosen = backend.empty('i32', B * T * K);
    const experts = this.experts.items;
    const shared = this.shared_experts;
    backend.moeDecode!({
      N: B * T, C, x: x.storage, norm: norm.weight.storage, eps: norm.eps,
      I: this.cfg.moe_intermediate_size, E, K, G, topkGroup, normTopk: this.cfg.norm_topk_prob, scaling: this.cfg.routed_scaling_factor,
      router: this.gate.weight.storage, bias: this.gate.e_score_correction_bias.storage,
      gate: experts.map((m) => m.gate_proj.weight.storage), up: experts.map((m) => m.up_proj.weight.storage),
      down: experts.map((m) => m.down_proj.weight.storage),
      shared: shared && {
        I: shared.gate_proj.outFeatures, gate: shared.gate_proj.weight.storage, up: shared.up_proj.weight.storage,
        down: shared.down_proj.weight.storage,
      },
      chosen,
    }, out);
    const load = new Int32Array(E);
    for (const e of backend.read(chosen)) load[e]++;
    this.lastLoad = load;
    this.lastBalanceLoss = null;
    return new Tensor(out, x.shape, backend);
  }

  /** Σ_i g_i FFN_i(h) with autograd (training). */
  private dispatch(xf: Tensor, indices: Tensor, weights: Tensor, load: Int32Array): Tensor {
    const [N] = xf.shape;
    const { E, K } = this;
    // Dispatch: sort the N·K (token, expert) slots by expert; each expert's SwiGLU runs as
    // one GEMM per projection over its contiguous block of rows.
    const slotsByExpert = countingSortSlots(indices.toArray() as Int32Array, E);
    const upload = (a: Int32Array): Tensor => tensor(a, [a.length], { backend: xf.backend, dtype: 'i32' });
    const tokenOfSlot = upload(slotsByExpert.map((slot) => Math.floor(slot / K)));
    const xs = gatherRows(xf, tokenOfSlot); // (N·K, C), grouped by expert
    const experts = this.experts.items;
    const h = swiglu(
      groupedLinear(xs, experts.map((m) => m.gate_proj.weight), load),
      groupedLinear(xs, experts.map((m) => m.up_proj.weight), load)); // (N·K, I)
    const ys = groupedLinear(h, experts.map((m) => m.down_proj.weight), load); // (N·K, C)
    const wSorted = reshape(gatherRows(reshape(weights, [N * K, 1]), upload(slotsByExpert)), [N * K]);
    return scatterAddRows(ys, tokenOfSlot, wSorted, N); // (N, C) Σ_i g_i FFN_i(h)
  }

  /**
   * Sequence-wise balance loss (eq. 17–20): per sequence, f_i = E/(K·T) · #tokens choosing i,
   * P_i = mean over tokens of s_i / Σ_j s_j; loss = α · mean over sequences of Σ_i f_i P_i.
   */
  private balanceLoss(scores: Tensor, indices: Tensor, B: number, T: number): Tensor {
    const { E, K } = this;
    const idx = indices.toArray();
    const f = new Float32Array(B * E);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) for (let j = 0; j < K; j++) f[b * E + idx[(b * T + t) * K + j]] += E / (K * T);
    }
    const normalised = div(scores, sum(scores, -1, true)); // (N, E)
    const P = mean(reshape(normalised, [B, T, E]), 1); // (B, E)
    const fT = tensor(f, [B, E], { backend: scores.backend });
    return mul(sum(mul(P, fT)), this.balanceAlpha / B);
  }

  /** Auxiliary-loss-free update: b_i += γ·sign(mean load − load_i) (eq. after 16). */
  updateBias(gamma: number, load: Int32Array = this.lastLoad): void {
    const total = load.reduce((a, b) => a + b, 0);
    if (total === 0) return;
    const meanLoad = total / this.E;
    const b = Float32Array.from(this.gate.e_score_correction_bias.toArray());
    for (let e = 0; e < this.E; e++) b[e] += gamma * Math.sign(meanLoad - load[e]);
    const t = this.gate.e_score_correction_bias;
    t.backend.copy(t.backend.upload(b, 'f32'), 0, t.storage, 0, this.E);
  }
}

/**
 * Indices of the out.length largest values of v into out, descending; ties keep the lower
 * index (as torch.topk does on CPU). Insertion into a short list: k is small.
 */
function topIndices(v: ArrayLike<number>, out: Int32Array): void {
  const k = out.length;
  let filled = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (filled === k && !(x > v[out[k - 1]])) continue;
    let j = filled < k ? filled++ : k - 1;
    while (j > 0 && x > v[out[j - 1]]) { out[j] = out[j - 1]; j--; }
    out[j] = i;
  }
}

/** Slot ids n·K + j grouped by expert (stable), given the chosen experts (N, K). */
function countingSortSlots(indices: Int32Array, E: number): Int32Array {
  const counts = new Int32Array(E + 1);
  for (const e of indices) counts[e + 1]++;
  for (let e = 0; e < E; e++) counts[e + 1] += counts[e];
  const out = new Int32Array(indices.length);
  indices.forEach((e, slot) => { out[counts[e]++] = slot; });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoder block: pre-norm MLA and a dense MLP (first_k_dense_replace layers) or DeepSeekMoE
// ---------------------------------------------------------------------------------------------
export class DecoderLayer extends Module {
  readonly input_layernorm: RMSNorm;
  readonly self_attn: MultiHeadLatentAttention;
  readonly post_attention_layernorm: RMSNorm;
  readonly mlp: SwiGLUMLP | DeepseekMoE;

  constructor(cfg: DeepseekV3Config, layer: number, init: InitOptions) {
    super();
    this.input_layernorm = this.module('input_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.self_attn = this.module('self_attn', new MultiHeadLatentAttention(cfg, init, `layer${layer}`));
    this.post_attention_layernorm = this.module('post_attention_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.mlp = this.module('mlp', layer >= cfg.first_k_dense_replace
      ? new DeepseekMoE(cfg, init)
      : new SwiGLUMLP(cfg.hidden_size, cfg.intermediate_size, init));
  }

  forward(x: Tensor, positions: Tensor, rot: RotaryTables, cache?: KVCache): Tensor {
    if (decodesFused(x, cache, ['mlaDecode', this.mlp instanceof DeepseekMoE ? 'moeDecode' : 'mlpDecode'])) {
      const h = this.self_attn.decodeStep(x, this.input_layernorm, positions, rot, cache);
      return this.mlp.decodeStep(h, this.post_attention_layernorm);
    }
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), positions, rot, cache));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

// ---------------------------------------------------------------------------------------------
// Multi-Token Prediction (eq. 21–25)
// ---------------------------------------------------------------------------------------------
// Module k predicts token i+k+1 from the previous depth's h_i and the embedding of t_{i+k}
// (h^0 is the main model's final, normed hidden state, as vLLM and SGLang feed the released weights):
//   h'_i = M_k [RMSNorm(Emb(t_{i+k})); RMSNorm(h_i^{k−1})],  h_i^k = TRM_k(h'_i),
//   P = OutHead(RMSNorm(h_i^k)), embedding and output head shared with the main model.
// The concatenation puts the embedding first, as the official weights expect
// (enorm → first half of eh_proj's input, hnorm → second half).
export class MTPLayer extends DecoderLayer {
  readonly enorm: RMSNorm;
  readonly hnorm: RMSNorm;
  readonly eh_proj: Linear;
  readonly shared_head: SharedHead;

  constructor(cfg: DeepseekV3Config, layer: number, init: InitOptions) {
    super(cfg, layer, init);
    this.enorm = this.module('enorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.hnorm = this.module('hnorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.eh_proj = this.module('eh_proj', new Linear(2 * cfg.hidden_size, cfg.hidden_size, false, init));
    this.shared_head = this.module('shared_head', new SharedHead(cfg, init.backend));
  }

  /** hPrev (B, T', C), embNext (B, T', C) → h (B, T', C). */
  forwardMtp(hPrev: Tensor, embNext: Tensor, positions: Tensor, rot: RotaryTables): Tensor {
    const x = this.eh_proj.forward(concat([this.enorm.forward(embNext), this.hnorm.forward(hPrev)], -1));
    return this.forward(x, positions, rot);
  }
}

class SharedHead extends Module {
  readonly norm: RMSNorm;
  constructor(cfg: DeepseekV3Config, backend?: Backend) {
    super();
    this.norm = this.module('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, backend));
  }
}

// ---------------------------------------------------------------------------------------------
// The causal LM
// ---------------------------------------------------------------------------------------------
class DeepseekV3Model extends Module {
  readonly embed_tokens: Embedding;
  /** Main blocks 0..L-1 then MTP modules L..L+D-1, under the checkpoint's names. */
  readonly layers: ModuleList<DecoderLayer>;
  readonly norm: RMSNorm;
  constructor(cfg: DeepseekV3Config, mtpDepth: number, init: InitOptions) {
    super();
    const L = cfg.num_hidden_layers;
    this.embed_tokens = this.module('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size, init));
    this.layers = this.module('layers', new ModuleList<DecoderLayer>([
      ...Array.from({ length: L }, (_, l) => new DecoderLayer(cfg, l, init)),
      ...Array.from({ length: mtpDepth }, (_, k) => new MTPLayer(cfg, L + k, init)),
    ]));
    this.norm = this.module('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
  }
}

export interface DeepseekV3Options {
  seed?: number;
  backend?: Backend;
  /** Build the MTP modules (default: config.num_nextn_predict_layers of them). */
  mtp?: boolean;
}

export interface TrainingLoss {
  /** main + λ·mean(MTP) + balance: what backward() is called on. */
  loss: Tensor;
  main: number;
  mtp: number | null;
  balance: number | null;
}

export class DeepseekV3ForCausalLM extends Module implements CausalLM {
  readonly model: DeepseekV3Model;
  readonly lm_head: Linear;
  readonly rotary: RotaryTables;
  readonly blocks: DecoderLayer[];
  readonly mtp: MTPLayer[];

  constructor(readonly config: DeepseekV3Config, opts: DeepseekV3Options = {}) {
    super();
    const init: InitOptions = { rng: new Rng(opts.seed ?? 0), std: config.initializer_range, backend: opts.backend };
    const depth = opts.mtp === false ? 0 : config.num_nextn_predict_layers;
    this.model = this.module('model', new DeepseekV3Model(config, depth, init));
    this.lm_head = this.module('lm_head', new Linear(config.hidden_size, config.vocab_size, false, init));
    this.rotary = new RotaryTables(config.rope, config.qk_rope_head_dim, config.max_position_embeddings, opts.backend);
    this.blocks = this.model.layers.items.slice(0, config.num_hidden_layers);
    this.mtp = this.model.layers.items.slice(config.num_hidden_layers) as MTPLayer[];
    this.nameTensors();
  }

  /** ids i32 (B, T) → logits (B, T, V) and the final hidden state. */
  forward(ids: Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const hidden = this.hiddenStates(ids, opts);
    return { logits: this.lm_head.forward(hidden), hidden };
  }

  get outputWeight(): Tensor { return this.lm_head.weight; }

  hiddenStates(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, T] = ids.shape;
    const { cache } = opts;
    const positions = opts.positions ?? defaultPositions(B, T, ids.backend, cache?.length ?? 0);
    cache?.begin(T);
    let h = this.model.embed_tokens.forward(ids); // (B, T, C)
    for (const layer of this.blocks) h = layer.forward(h, positions, this.rotary, cache);
    cache?.commit();
    if (opts.lastOnly) h = narrow(h, 1, T - 1, 1);
    return this.model.norm.forward(h);
  }

  /** MoE layers, for load statistics and bias updates. */
  moeLayers(): DeepseekMoE[] {
    return [...this.blocks, ...this.mtp].map((l) => l.mlp).filter((m): m is DeepseekMoE => m instanceof DeepseekMoE);
  }

  /**
   * Next-token loss plus λ × the mean MTP loss (eq. 25) plus the balance losses.
   * `labels` (B, T) default to ids; -100 entries are ignored (SFT masks prompts this way).
   */
  trainingLoss(ids: Tensor, opts: { labels?: Tensor; mtpWeight?: number } = {}): TrainingLoss {
    const labels = opts.labels ?? ids;
    const [B, T] = ids.shape;
    const hidden = this.hiddenStates(ids);
    const main = nextTokenLossFromHidden(hidden, this.lm_head.weight, labels);
    let loss = main;
    let mtpValue: number | null = null;
    const lambda = opts.mtpWeight ?? 0.3;
    if (this.mtp.length > 0 && lambda > 0 && T > this.mtp.length + 1) {
      let h = hidden;
      let total: Tensor | null = null;
      this.mtp.forEach((layer, i) => {
        const k = i + 1;
        const len = T - k;
        const hPrev = narrow(h, 1, 0, len); // h_i^{k−1}, i < T−k
        const embNext = this.model.embed_tokens.forward(narrow(ids, 1, k, len)); // Emb(t_{i+k})
        const pos = defaultPositions(B, len, ids.backend);
        h = layer.forwardMtp(hPrev, embNext, pos, this.rotary);
        const lk = nextTokenLossFromHidden(layer.shared_head.norm.forward(h), this.lm_head.weight, narrow(labels, 1, k, len)); // predicts t_{i+k+1}
        total = total ? add(total, lk) : lk;
      });
      const mtpLoss = mul(total!, 1 / this.mtp.length);
      mtpValue = mtpLoss.item();
      loss = add(loss, mul(mtpLoss, lambda));
    }
    let balanceValue: number | null = null;
    for (const moe of this.moeLayers()) {
      if (!moe.lastBalanceLoss) continue;
      loss = add(loss, moe.lastBalanceLoss);
      balanceValue = (balanceValue ?? 0) + moe.lastBalanceLoss.item();
    }
    return { loss, main: main.item(), mtp: mtpValue, balance: balanceValue };
  }

  // ---- MTP drafting for speculative decoding (used by src/generate/speculative.ts) ----------
  /**
   * Runs MTP module `k` (0-based; depth k+1) over T' new positions of its own KV cache, as in
   * training but incrementally: position i combines the previous depth's hidden state h_i^k
   * (`hPrev` (B, T', C); depth 0 is the main model's final normed hidden state) with the
   * embedding of the token t_{i+k+1} (`nextIds` i32 (B, T')). Each module needs its own cache
   * (its sequence runs ahead of or behind the main model's); positions default to the cache's
   * length onward. Returns the module's output h^{k+1} (B, T', C), the input of depth k+2, and
   * the logits (B, V) of its last position, which predict t_{last+k+2}.
   */
  mtpDraftStep(k: number, hPrev: Tensor, nextIds: Tensor, cache: KVCache, positions?: Tensor): { hidden: Tensor; logits: Tensor } {
    const layer = this.mtp[k];
    if (!layer) throw new Error(`mtpDraftStep: the model has ${this.mtp.length} MTP modules, asked for module ${k}`);
    const [B, T] = nextIds.shape;
    const pos = positions ?? defaultPositions(B, T, nextIds.backend, cache.length);
    const emb = this.model.embed_tokens.forward(nextIds);
    const x = layer.eh_proj.forward(concat([layer.enorm.forward(emb), layer.hnorm.forward(hPrev)], -1)); // as forwardMtp
    cache.begin(T);
    const hidden = layer.forward(x, pos, this.rotary, cache);
    cache.commit();
    const last = layer.shared_head.norm.forward(narrow(hidden, 1, T - 1, 1)); // (B, 1, C)
    return { hidden, logits: reshape(this.lm_head.forward(last), [B, -1]) };
  }
  // ---- end of MTP drafting -------------------------------------------------------------------
}
