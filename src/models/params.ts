// The parameter list a config implies, with Hugging Face checkpoint names and shapes — the
// single source of truth that model code checks its parameters against and that loaders use
// to demand exactly these keys. And parameter accounting (total / activated per token).
//
// Shapes are PyTorch's: a Linear(in → out) weight is [out, in].
// Legend: V vocab, C hidden_size, L num_hidden_layers, H heads, E routed experts.
//
// Counting decisions (DeepSeek-V3):
// - `mlp.gate.e_score_correction_bias` [E] is counted. It is a tensor of every checkpoint
//   (transformers keeps it as a buffer, so its num_parameters() leaves it out: the golden
//   tiny model reports 257,712 where its model.safetensors holds 257,728 = + 2 MoE layers × 8).
//   With it, the official config gives exactly 671,026,419,200 total and 37,552,297,472
//   activated (without it: 14,848 = 58 × 256 fewer in both).
// - Activated per token = everything except the routed experts not chosen: embedding, every
//   attention block and norm, dense MLPs, the shared experts, the router (gate weight and bias,
//   all E rows: every expert is scored), num_experts_per_tok routed experts per MoE layer,
//   final norm and lm_head.
// - "Activated without embedding" is given two ways: without the input embedding only, and
//   without embedding and lm_head (= non-embedding parameters in the usual sense).
// - MTP (num_nextn_predict_layers modules, checkpoint layers L .. L+D-1) is counted apart.
//   Each module = enorm [C] + hnorm [C] + eh_proj [C, 2C] + one full decoder block (MoE for the
//   671B config) + shared_head.norm [C]. The official checkpoint also stores, per MTP layer,
//   `embed_tokens` [V, C] and `shared_head.head` [V, C]; the paper says they are shared with the
//   main model, so they are not counted: that gives 11,610,068,224 ≈ 11.6B, the spec's figure
//   (counting those two copies, 13,463,426,304 — DeepSeek's "14B MTP module weights").
//   They are listed (with `sharedWith`) only when parameterSpecs is asked for them.

import type { DeepseekV3Config, LlamaConfig, ModelConfig, Qwen2Config } from './config.js';

/** What a parameter belongs to, for accounting. */
export type Component =
  | 'embedding'       // model.embed_tokens
  | 'attention'       // self_attn.* (projections, their biases, q_a/kv_a layernorms)
  | 'norm'            // input_layernorm, post_attention_layernorm, model.norm
  | 'dense_mlp'       // mlp.{gate,up,down}_proj of dense layers
  | 'shared_experts'  // mlp.shared_experts.*
  | 'routed_experts'  // mlp.experts.E.*
  | 'router'          // mlp.gate.weight, mlp.gate.e_score_correction_bias
  | 'lm_head'         // lm_head (absent when tied)
  | 'mtp';            // MTP-only tensors: enorm, hnorm, eh_proj, shared_head.norm (and shared copies)

export const COMPONENTS: readonly Component[] = [
  'embedding', 'attention', 'norm', 'dense_mlp', 'shared_experts', 'routed_experts', 'router', 'lm_head', 'mtp',
];

export interface ParamSpec {
  /** Hugging Face checkpoint name */
  name: string;
  /** PyTorch shape */
  shape: number[];
  component: Component;
  /** decoder layer index as in the name (MTP modules: num_hidden_layers + i) */
  layer?: number;
  /** routed expert index */
  expert?: number;
  /** MTP module index i (0-based) for every tensor of MTP layer num_hidden_layers + i */
  mtp?: number;
  /** a stored copy of another parameter (MTP embed_tokens / shared_head.head): not counted, load-only */
  sharedWith?: string;
}

export interface ParamSpecOptions {
  /** include the MTP modules (DeepSeek-V3 only); default false, as transformers builds none */
  mtp?: boolean;
  /** with mtp: also list each MTP layer's embed_tokens and shared_head.head copies (sharedWith set) */
  mtpSharedCopies?: boolean;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

type Push = (name: string, shape: number[], component: Component, extra?: Partial<ParamSpec>) => void;

function swiglu(push: Push, prefix: string, c: number, inner: number, component: Component, bias = false, extra: Partial<ParamSpec> = {}): void {
  push(`${prefix}.gate_proj.weight`, [inner, c], component, extra);
  if (bias) push(`${prefix}.gate_proj.bias`, [inner], component, extra);
  push(`${prefix}.up_proj.weight`, [inner, c], component, extra);
  if (bias) push(`${prefix}.up_proj.bias`, [inner], component, extra);
  push(`${prefix}.down_proj.weight`, [c, inner], component, extra);
  if (bias) push(`${prefix}.down_proj.bias`, [c], component, extra);
}

/** Whether DeepSeek-V3 layer `l` (main or MTP) is MoE. */
export function isMoeLayer(c: DeepseekV3Config, l: number): boolean {
  return l >= c.first_k_dense_replace && l % c.moe_layer_freq === 0;
}

function deepseekBlock(c: DeepseekV3Config, l: number, push: Push): void {
  const C = c.hidden_size;
  const H = c.num_attention_heads;
  const p = `model.layers.${l}`;
  const ab = c.attention_bias;
  push(`${p}.input_layernorm.weight`, [C], 'norm');
  // MLA
  if (c.q_lora_rank === null) {
    push(`${p}.self_attn.q_proj.weight`, [H * c.qk_head_dim, C], 'attention');
  } else {
    push(`${p}.self_attn.q_a_proj.weight`, [c.q_lora_rank, C], 'attention');
    if (ab) push(`${p}.self_attn.q_a_proj.bias`, [c.q_lora_rank], 'attention');
    push(`${p}.self_attn.q_a_layernorm.weight`, [c.q_lora_rank], 'attention');
    push(`${p}.self_attn.q_b_proj.weight`, [H * c.qk_head_dim, c.q_lora_rank], 'attention');
  }
  push(`${p}.self_attn.kv_a_proj_with_mqa.weight`, [c.kv_lora_rank + c.qk_rope_head_dim, C], 'attention');
  if (ab) push(`${p}.self_attn.kv_a_proj_with_mqa.bias`, [c.kv_lora_rank + c.qk_rope_head_dim], 'attention');
  push(`${p}.self_attn.kv_a_layernorm.weight`, [c.kv_lora_rank], 'attention');
  push(`${p}.self_attn.kv_b_proj.weight`, [H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank], 'attention');
  push(`${p}.self_attn.o_proj.weight`, [C, H * c.v_head_dim], 'attention');
  if (ab) push(`${p}.self_attn.o_proj.bias`, [C], 'attention');
  push(`${p}.post_attention_layernorm.weight`, [C], 'norm');
  // MLP: dense, or DeepSeekMoE
  if (!isMoeLayer(c, l)) {
    swiglu(push, `${p}.mlp`, C, c.intermediate_size, 'dense_mlp');
    return;
  }
  for (let e = 0; e < c.n_routed_experts; e++) {
    swiglu(push, `${p}.mlp.experts.${e}`, C, c.moe_intermediate_size, 'routed_experts', false, { expert: e });
  }
  push(`${p}.mlp.gate.weight`, [c.n_routed_experts, C], 'router');
  push(`${p}.mlp.gate.e_score_correction_bias`, [c.n_routed_experts], 'router');
  if (c.n_shared_experts > 0) {
    swiglu(push, `${p}.mlp.shared_experts`, C, c.moe_intermediate_size * c.n_shared_experts, 'shared_experts');
  }
}

function deepseekSpecs(c: DeepseekV3Config, opts: ParamSpecOptions, push: Push, withLayer: (l: number, extra: Partial<ParamSpec>) => Push): void {
  const C = c.hidden_size;
  const V = c.vocab_size;
  push('model.embed_tokens.weight', [V, C], 'embedding');
  for (let l = 0; l < c.num_hidden_layers; l++) deepseekBlock(c, l, withLayer(l, {}));
  push('model.norm.weight', [C], 'norm');
  if (!c.tie_word_embeddings) push('lm_head.weight', [V, C], 'lm_head');
  if (!opts.mtp) return;
  for (let i = 0; i < c.num_nextn_predict_layers; i++) {
    const l = c.num_hidden_layers + i;
    const p = `model.layers.${l}`;
    const m = withLayer(l, { mtp: i });
    // Order as in the official checkpoint's module: embed, enorm/hnorm, eh_proj, block, shared_head.
    if (opts.mtpSharedCopies) m(`${p}.embed_tokens.weight`, [V, C], 'mtp', { sharedWith: 'model.embed_tokens.weight' });
    m(`${p}.enorm.weight`, [C], 'mtp');
    m(`${p}.hnorm.weight`, [C], 'mtp');
    m(`${p}.eh_proj.weight`, [C, 2 * C], 'mtp');
    deepseekBlock(c, l, m);
    m(`${p}.shared_head.norm.weight`, [C], 'mtp');
    if (opts.mtpSharedCopies) {
      m(`${p}.shared_head.head.weight`, [V, C], 'mtp', { sharedWith: c.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight' });
    }
  }
}

function denseSpecs(c: Qwen2Config | LlamaConfig, push: Push, withLayer: (l: number, extra: Partial<ParamSpec>) => Push): void {
  const C = c.hidden_size;
  const V = c.vocab_size;
  const q = c.num_attention_heads * c.head_dim;
  const kv = c.num_key_value_heads * c.head_dim;
  // Qwen2: bias on q/k/v only. Llama: attention_bias puts one on q/k/v/o.
  const qkvBias = c.model_type === 'qwen2' ? true : c.attention_bias;
  const oBias = c.model_type === 'llama' && c.attention_bias;
  const mlpBias = c.model_type === 'llama' && c.mlp_bias;
  push('model.embed_tokens.weight', [V, C], 'embedding');
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const m = withLayer(l, {});
    m(`${p}.input_layernorm.weight`, [C], 'norm');
    for (const [n, out] of [['q_proj', q], ['k_proj', kv], ['v_proj', kv]] as const) {
      m(`${p}.self_attn.${n}.weight`, [out, C], 'attention');
      if (qkvBias) m(`${p}.self_attn.${n}.bias`, [out], 'attention');
    }
    m(`${p}.self_attn.o_proj.weight`, [C, q], 'attention');
    if (oBias) m(`${p}.self_attn.o_proj.bias`, [C], 'attention');
    m(`${p}.post_attention_layernorm.weight`, [C], 'norm');
    swiglu(m, `${p}.mlp`, C, c.intermediate_size, 'dense_mlp', mlpBias);
  }
  push('model.norm.weight', [C], 'norm');
  if (!c.tie_word_embeddings) push('lm_head.weight', [V, C], 'lm_head');
}

/**
 * Every parameter the config implies, in a stable order (embedding, layers in order, norm,
 * lm_head, then MTP modules when asked), with checkpoint names and shapes.
 */
export function parameterSpecs(config: ModelConfig, opts: ParamSpecOptions = {}): ParamSpec[] {
  const out: ParamSpec[] = [];
  const withLayer = (layer: number | undefined, extra: Partial<ParamSpec>): Push => (name, shape, component, more = {}) => {
    const s: ParamSpec = { name, shape, component };
    if (layer !== undefined) s.layer = layer;
    Object.assign(s, extra, more);
    out.push(s);
  };
  const top = withLayer(undefined, {});
  if (config.model_type === 'deepseek_v3') deepseekSpecs(config, opts, top, withLayer);
  else denseSpecs(config, top, withLayer);
  return out;
}

/**
 * transformers 5 fuses the routed experts of a layer in memory (MixtralExperts):
 *   `model.layers.L.mlp.experts.gate_up_proj` [E, 2·I, C]: rows [0, I) of expert e are
 *      experts.e.gate_proj.weight, rows [I, 2I) experts.e.up_proj.weight;
 *   `model.layers.L.mlp.experts.down_proj`    [E, C, I]: experts.e.down_proj.weight.
 * Checkpoints on disk keep the per-expert names of parameterSpecs (save_pretrained converts
 * back; the golden model.safetensors files show it), but anything dumped from the live module
 * — the golden `grad.<name>` tensors — uses these fused names.
 */
export function fusedExpertSpecs(config: DeepseekV3Config, layer: number): { gateUp: ParamSpec; down: ParamSpec } {
  const E = config.n_routed_experts;
  const I = config.moe_intermediate_size;
  const C = config.hidden_size;
  const p = `model.layers.${layer}.mlp.experts`;
  return {
    gateUp: { name: `${p}.gate_up_proj`, shape: [E, 2 * I, C], component: 'routed_experts', layer },
    down: { name: `${p}.down_proj`, shape: [E, C, I], component: 'routed_experts', layer },
  };
}

/** Parameter counts by component. */
export type ComponentCounts = Record<Component, number>;

export interface ParameterCount {
  /** all counted parameters of the main model (MTP apart) */
  total: number;
  /** used per token: all but the unchosen routed experts (embedding and lm_head included) */
  activated: number;
  /** activated minus the input embedding only */
  activatedWithoutEmbedding: number;
  /** activated minus the input embedding and lm_head (tied: the one matrix once) */
  activatedWithoutEmbeddingAndHead: number;
  /** total minus the input embedding */
  totalWithoutEmbedding: number;
  /** main model, by component */
  components: ComponentCounts;
  /** main model, activated per token by component */
  activatedComponents: ComponentCounts;
  /** e_score_correction_bias parameters included above (0 for dense models) */
  routerBias: number;
  /** MTP modules (DeepSeek-V3), excluding their stored copies of embedding and head */
  mtp: {
    modules: number;
    total: number;
    activated: number;
    components: ComponentCounts;
    /** parameters of the stored embed_tokens + shared_head.head copies (not in total) */
    sharedCopies: number;
  };
}

function zeros(): ComponentCounts {
  return Object.fromEntries(COMPONENTS.map((c) => [c, 0])) as ComponentCounts;
}

/** Counts parameters: total, activated per token, per component, MTP apart (see header). */
export function countParameters(config: ModelConfig): ParameterCount {
  const specs = parameterSpecs(config, { mtp: true, mtpSharedCopies: true });
  const comp = zeros();
  const act = zeros();
  const mtpComp = zeros();
  const mtpAct = zeros();
  let sharedCopies = 0;
  let routerBias = 0;
  // Fraction of routed experts active per token: k of E (all experts have the same size).
  const k = config.model_type === 'deepseek_v3' ? config.num_experts_per_tok : 0;
  for (const s of specs) {
    const n = numel(s.shape);
    if (s.sharedWith !== undefined) {
      sharedCopies += n;
      continue;
    }
    const [c, a] = s.mtp === undefined ? [comp, act] : [mtpComp, mtpAct];
    c[s.component] += n;
    if (s.component === 'routed_experts') {
      if (s.expert! < k) a[s.component] += n; // any k experts: same size
    } else {
      a[s.component] += n;
    }
    if (s.mtp === undefined && s.name.endsWith('e_score_correction_bias')) routerBias += n;
  }
  const sum = (x: ComponentCounts): number => COMPONENTS.reduce((t, c) => t + x[c], 0);
  const total = sum(comp);
  const activated = sum(act);
  const emb = comp.embedding;
  return {
    total,
    activated,
    activatedWithoutEmbedding: activated - emb,
    activatedWithoutEmbeddingAndHead: activated - emb - comp.lm_head,
    totalWithoutEmbedding: total - emb,
    components: comp,
    activatedComponents: act,
    routerBias,
    mtp: {
      modules: config.model_type === 'deepseek_v3' ? config.num_nextn_predict_layers : 0,
      total: sum(mtpComp),
      activated: sum(mtpAct),
      components: mtpComp,
      sharedCopies,
    },
  };
}
