// Hugging Face model configs (config.json) as typed records, one per model family, with each
// field documented. parseConfig validates a parsed JSON object and fills transformers' defaults;
// loadConfig reads a file or a checkpoint directory; toHfConfigJson writes one back.
//
// Required vs defaulted: fields that fix tensor shapes (sizes, layer and head counts, MLA
// ranks, expert counts) must be present — a silent default of 7168 for a tiny model is worse
// than an error. Behavioural fields (eps, routing knobs, rope, ...) get the defaults that
// transformers' config classes (or, for fields transformers does not know, DeepSeek's own
// configuration_deepseek.py) give them.
//
// Rope: both styles are accepted — `rope_theta` + `rope_scaling` (official DeepSeek-V3, older
// transformers) and transformers 5's `rope_parameters` ({rope_theta, rope_type, factor, ...}).
// Both are normalised into `rope: RopeConfig`; the HF fields are kept as given.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The model families r1ts runs. */
export type ModelType = 'deepseek_v3' | 'qwen2' | 'llama';
export const MODEL_TYPES: readonly ModelType[] = ['deepseek_v3', 'qwen2', 'llama'];

/** Rotary position embedding kinds (transformers' ROPE_INIT_FUNCTIONS keys). */
export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'longrope' | 'llama3';
const ROPE_TYPES: readonly RopeType[] = ['default', 'linear', 'dynamic', 'yarn', 'longrope', 'llama3'];

/** Rope settings normalised from either config style. Fields absent in the config stay undefined. */
export interface RopeConfig {
  /** base θ of the inverse frequencies θ^(-2i/d) (rope_theta) */
  theta: number;
  /** scaling kind (rope_type, or the older `type`) */
  type: RopeType;
  /** context extension factor s (linear, dynamic, yarn, llama3, longrope) */
  factor?: number;
  /** context length the model was pretrained with (original_max_position_embeddings); yarn defaults it to max_position_embeddings */
  originalMaxPositions?: number;
  /** yarn: β_fast, the rotation count above which dimensions are left unscaled (default 32) */
  betaFast?: number;
  /** yarn: β_slow, the rotation count below which dimensions are fully interpolated (default 1) */
  betaSlow?: number;
  /** yarn: mscale of the attention temperature numerator (DeepSeek: 0.1·mscale·ln s + 1) */
  mscale?: number;
  /** yarn: mscale_all_dim; DeepSeek multiplies the softmax scale by (0.1·mscale_all_dim·ln s + 1)² */
  mscaleAllDim?: number;
  /** yarn/longrope: explicit attention_factor, overriding the mscale rule */
  attentionFactor?: number;
  /** llama3: low_freq_factor */
  lowFreqFactor?: number;
  /** llama3: high_freq_factor */
  highFreqFactor?: number;
  /** longrope: short_factor per dimension */
  shortFactor?: number[];
  /** longrope: long_factor per dimension */
  longFactor?: number[];
  /** yarn: round the correction range to whole dimensions (transformers' `truncate`, default true) */
  truncate?: boolean;
}

/** Fields every family shares (as transformers names them). */
interface BaseConfig {
  /** size V of the vocabulary (rows of embed_tokens and lm_head) */
  vocab_size: number;
  /** width C of the residual stream */
  hidden_size: number;
  /** inner width of the dense SwiGLU MLP */
  intermediate_size: number;
  /** number of decoder blocks (DeepSeek-V3: without the MTP modules) */
  num_hidden_layers: number;
  /** number of query heads H */
  num_attention_heads: number;
  /** number of key/value heads (GQA); defaults to num_attention_heads */
  num_key_value_heads: number;
  /** activation of the MLPs ('silu' for SwiGLU) */
  hidden_act: string;
  /** longest sequence the position embedding is set up for */
  max_position_embeddings: number;
  /** ε of every RMSNorm */
  rms_norm_eps: number;
  /** std of the normal init of weights */
  initializer_range: number;
  /** whether lm_head shares embed_tokens' weight (then there is no lm_head tensor) */
  tie_word_embeddings: boolean;
  /** dropout on attention probabilities (training) */
  attention_dropout: number;
  /** whether generation keeps a KV cache */
  use_cache: boolean;
  /** beginning-of-sequence token id */
  bos_token_id: number | null;
  /** end-of-sequence token id(s) */
  eos_token_id: number | number[] | null;
  /** padding token id */
  pad_token_id: number | null;
  /** HF field as given: base θ (old style), or undefined if only rope_parameters was given */
  rope_theta?: number;
  /** HF field as given: old-style scaling dict ({type|rope_type, factor, ...}) or null */
  rope_scaling?: Record<string, unknown> | null;
  /** HF field as given: transformers 5 style ({rope_theta, rope_type, ...}) */
  rope_parameters?: Record<string, unknown> | null;
  /** normalised rope settings from whichever style was given */
  rope: RopeConfig;
  /** class names for transformers (e.g. ["DeepseekV3ForCausalLM"]) */
  architectures?: string[];
  /** fields we do not interpret, kept for toHfConfigJson (dtype, transformers_version, ...) */
  extra: Record<string, unknown>;
}

/** DeepSeek-V3 (MLA + DeepSeekMoE + MTP). Defaults from transformers' DeepseekV3Config. */
export interface DeepseekV3Config extends BaseConfig {
  model_type: 'deepseek_v3';
  /** inner width of each routed and each shared expert */
  moe_intermediate_size: number;
  /** MLA: rank of the query compression (q_a_proj → q_a_layernorm → q_b_proj); null = plain q_proj */
  q_lora_rank: number | null;
  /** MLA: rank of the joint key/value compression (the cached latent) */
  kv_lora_rank: number;
  /** MLA: per-head query/key dims without rotary position */
  qk_nope_head_dim: number;
  /** MLA: per-head query/key dims with rotary position (one rotary key shared by all heads) */
  qk_rope_head_dim: number;
  /** MLA: per-head value dims */
  v_head_dim: number;
  /** derived: qk_nope_head_dim + qk_rope_head_dim */
  qk_head_dim: number;
  /** transformers sets head_dim = qk_rope_head_dim (the rotary width) */
  head_dim: number;
  /** number of routed experts per MoE layer */
  n_routed_experts: number;
  /** number of shared experts per MoE layer (one MLP of width n_shared_experts × moe_intermediate_size); default 1 */
  n_shared_experts: number;
  /** routed experts chosen per token (top-k); default 8 */
  num_experts_per_tok: number;
  /** expert groups for group-limited routing; default 8 */
  n_group: number;
  /** groups kept per token (a group scored by the sum of its top-2 affinities); default 4 */
  topk_group: number;
  /** normalise the chosen experts' weights to sum 1 before scaling; default true */
  norm_topk_prob: boolean;
  /** multiplier of the routed experts' combined output; default 2.5 */
  routed_scaling_factor: number;
  /** number of leading dense (non-MoE) layers; default 3 */
  first_k_dense_replace: number;
  /** a layer ≥ first_k_dense_replace is MoE iff layer % moe_layer_freq == 0; only 1 is supported (transformers ignores it); default 1 */
  moe_layer_freq: number;
  /** number of MTP modules D (layers num_hidden_layers .. +D-1 in the checkpoint); default 1 (DeepSeek's configuration_deepseek.py; transformers does not build them) */
  num_nextn_predict_layers: number;
  /** expert affinity: 'sigmoid' (V3) or 'softmax' (V2); default 'sigmoid' */
  scoring_func: 'sigmoid' | 'softmax';
  /** routing method: 'noaux_tc' (V3, bias-adjusted top-k), 'group_limited_greedy' or 'greedy'; default 'noaux_tc' */
  topk_method: 'noaux_tc' | 'group_limited_greedy' | 'greedy';
  /** rotary dims of q_pe/k_pe stored as interleaved pairs (official weights); default true */
  rope_interleave: boolean;
  /** biases on q_a_proj / q_proj?, kv_a_proj_with_mqa and o_proj; default false */
  attention_bias: boolean;
  /** sequence-wise balance loss weight α (DeepSeek's aux_loss_alpha); default 0.001 */
  aux_loss_alpha: number;
}

/** Qwen2 (GQA, q/k/v biases). Defaults from transformers' Qwen2Config. */
export interface Qwen2Config extends BaseConfig {
  model_type: 'qwen2';
  /** per-head dims; hidden_size / num_attention_heads unless given */
  head_dim: number;
  /** Qwen2 always has biases on q_proj, k_proj, v_proj (not o_proj) */
  attention_bias: true;
  /** sliding-window attention on layers ≥ max_window_layers; default false */
  use_sliding_window: boolean;
  /** window size when use_sliding_window; null otherwise */
  sliding_window: number | null;
  /** layers below this use full attention when use_sliding_window; default 28 */
  max_window_layers: number;
  /** per-layer 'full_attention' | 'sliding_attention' */
  layer_types: string[];
}

/** Llama. Defaults from transformers' LlamaConfig. */
export interface LlamaConfig extends BaseConfig {
  model_type: 'llama';
  /** per-head dims; hidden_size / num_attention_heads unless given */
  head_dim: number;
  /** biases on q/k/v/o projections; default false */
  attention_bias: boolean;
  /** biases on gate/up/down projections; default false */
  mlp_bias: boolean;
  /** tensor-parallel degree used in pretraining (kept for round trip); default 1 */
  pretraining_tp: number;
}

export type ModelConfig = DeepseekV3Config | Qwen2Config | LlamaConfig;

/** A config error; the message names the source file and the field. */
export class ConfigError extends Error {
  constructor(message: string, readonly source: string, readonly field?: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

// ---------------------------------------------------------------------------------------------
// Field readers

type Json = Record<string, unknown>;

class Fields {
  readonly used = new Set<string>();
  constructor(readonly json: Json, readonly source: string) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(`config ${this.source}: field "${field}": ${problem}`, this.source, field);
  }

  private got(v: unknown): string {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
  }

  private take(name: string): unknown {
    this.used.add(name);
    return this.json[name];
  }

  has(name: string): boolean {
    return this.json[name] !== undefined;
  }

  /** A positive (or ≥ min) integer; required unless a default is given. */
  int(name: string, def?: number, min = 1): number {
    const v = this.take(name);
    if (v === undefined || (v === null && def !== undefined)) {
      if (def === undefined) this.fail(name, 'missing (required)');
      return def;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(name, `expected an integer, got ${this.got(v)}`);
    if (v < min) this.fail(name, `expected an integer ≥ ${min}, got ${v}`);
    return v;
  }

  /** An integer or null (null given explicitly); `def` when absent. Required when def is undefined. */
  intOrNull(name: string, def?: number | null, min = 1): number | null {
    const v = this.take(name);
    if (v === undefined) {
      if (def === undefined) this.fail(name, 'missing (required; use null for none)');
      return def;
    }
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(name, `expected an integer or null, got ${this.got(v)}`);
    if (v < min) this.fail(name, `expected an integer ≥ ${min}, got ${v}`);
    return v;
  }

  num(name: string, def: number, check?: (x: number) => string | undefined): number {
    const v = this.take(name);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(name, `expected a number, got ${this.got(v)}`);
    const bad = check?.(v);
    if (bad) this.fail(name, bad);
    return v;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.take(name);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'boolean') this.fail(name, `expected true or false, got ${this.got(v)}`);
    return v;
  }

  str<T extends string>(name: string, def: T, allowed?: readonly T[]): T {
    const v = this.take(name);
    if (v === undefined || v === null) return def;
    if (typeof v !== 'string') this.fail(name, `expected a string, got ${this.got(v)}`);
    if (allowed && !allowed.includes(v as T)) this.fail(name, `expected one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${v}"`);
    return v as T;
  }

  tokenId(name: string, def: number | null): number | null {
    const v = this.take(name);
    if (v === undefined) return def;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(name, `expected a token id (integer ≥ 0) or null, got ${this.got(v)}`);
    return v;
  }

  tokenIds(name: string, def: number | null): number | number[] | null {
    const v = this.json[name];
    if (Array.isArray(v)) {
      this.used.add(name);
      if (!v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) this.fail(name, `expected token ids, got ${this.got(v)}`);
      return v as number[];
    }
    return this.tokenId(name, def);
  }

  obj(name: string): Record<string, unknown> | null | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) return v as null | undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(name, `expected an object or null, got ${this.got(v)}`);
    return v as Record<string, unknown>;
  }

  strList(name: string): string[] | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) this.fail(name, `expected a list of strings, got ${this.got(v)}`);
    return v as string[];
  }

  /** Everything not read, for round trips. */
  rest(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.json)) if (!this.used.has(k)) out[k] = v;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Rope

const DEFAULT_THETA = 10000;

function parseRope(f: Fields, maxPositions: number): RopeConfig {
  const params = f.obj('rope_parameters');
  const scaling = f.obj('rope_scaling');
  const thetaTop = f.has('rope_theta') ? f.num('rope_theta', DEFAULT_THETA) : (f.used.add('rope_theta'), undefined);
  // transformers 5: rope_scaling (if any) wins over rope_parameters; rope_theta fills in.
  const src = scaling ?? params ?? {};
  const field = scaling ? 'rope_scaling' : 'rope_parameters';
  const fail = (k: string, problem: string): never => f.fail(`${field}.${k}`, problem);
  const num = (k: string, positive = true): number | undefined => {
    const v = src[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(k, `expected a number, got ${JSON.stringify(v)}`);
    if (positive && !((v as number) > 0)) fail(k, `expected a positive number, got ${v}`);
    return v as number;
  };
  const numList = (k: string): number[] | undefined => {
    const v = src[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) fail(k, 'expected a list of numbers');
    return v as number[];
  };
  const rawType = src['rope_type'] ?? src['type'] ?? 'default';
  if (typeof rawType !== 'string' || !ROPE_TYPES.includes(rawType as RopeType)) {
    fail('rope_type', `expected one of ${ROPE_TYPES.join(', ')}, got ${JSON.stringify(rawType)}`);
  }
  const type = rawType as RopeType;
  const theta = num('rope_theta') ?? thetaTop ?? DEFAULT_THETA;
  if (!(theta > 0)) f.fail('rope_theta', `expected a positive number, got ${theta}`);
  const rope: RopeConfig = { theta, type };
  const set = <K extends keyof RopeConfig>(k: K, v: RopeConfig[K] | undefined): void => {
    if (v !== undefined) rope[k] = v;
  };
  set('factor', num('factor'));
  set('originalMaxPositions', num('original_max_position_embeddings'));
  set('betaFast', num('beta_fast'));
  set('betaSlow', num('beta_slow'));
  set('mscale', num('mscale', false));
  set('mscaleAllDim', num('mscale_all_dim', false));
  set('attentionFactor', num('attention_factor'));
  set('lowFreqFactor', num('low_freq_factor'));
  set('highFreqFactor', num('high_freq_factor'));
  set('shortFactor', numList('short_factor'));
  set('longFactor', numList('long_factor'));
  if (src['truncate'] !== undefined) {
    if (typeof src['truncate'] !== 'boolean') fail('truncate', `expected true or false, got ${JSON.stringify(src['truncate'])}`);
    rope.truncate = src['truncate'] as boolean;
  }
  if (type !== 'default' && type !== 'longrope' && rope.factor === undefined) fail('factor', `required for rope_type "${type}"`);
  if (type === 'yarn') {
    rope.betaFast ??= 32;
    rope.betaSlow ??= 1;
    rope.originalMaxPositions ??= maxPositions;
  }
  if (type === 'llama3') {
    if (rope.lowFreqFactor === undefined) fail('low_freq_factor', 'required for rope_type "llama3"');
    if (rope.highFreqFactor === undefined) fail('high_freq_factor', 'required for rope_type "llama3"');
    if (rope.originalMaxPositions === undefined) fail('original_max_position_embeddings', 'required for rope_type "llama3"');
  }
  return rope;
}

/** The rope dict in transformers 5 style (rope_parameters) for a normalised RopeConfig. */
export function ropeToHf(rope: RopeConfig): Record<string, unknown> {
  const o: Record<string, unknown> = { rope_theta: rope.theta, rope_type: rope.type };
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) o[k] = v;
  };
  put('factor', rope.factor);
  put('original_max_position_embeddings', rope.originalMaxPositions);
  put('beta_fast', rope.betaFast);
  put('beta_slow', rope.betaSlow);
  put('mscale', rope.mscale);
  put('mscale_all_dim', rope.mscaleAllDim);
  put('attention_factor', rope.attentionFactor);
  put('low_freq_factor', rope.lowFreqFactor);
  put('high_freq_factor', rope.highFreqFactor);
  put('short_factor', rope.shortFactor);
  put('long_factor', rope.longFactor);
  put('truncate', rope.truncate);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Parsing

function parseBase(f: Fields): Omit<BaseConfig, 'extra' | 'rope'> & { rope: RopeConfig } {
  const heads = f.int('num_attention_heads');
  const max = f.int('max_position_embeddings', 4096);
  const scaling = f.json['rope_scaling'];
  const params = f.json['rope_parameters'];
  const base = {
    vocab_size: f.int('vocab_size'),
    hidden_size: f.int('hidden_size'),
    intermediate_size: f.int('intermediate_size'),
    num_hidden_layers: f.int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: f.int('num_key_value_heads', heads),
    hidden_act: f.str('hidden_act', 'silu'),
    max_position_embeddings: max,
    rms_norm_eps: f.num('rms_norm_eps', 1e-6, (x) => (x > 0 ? undefined : `expected a positive number, got ${x}`)),
    initializer_range: f.num('initializer_range', 0.02),
    tie_word_embeddings: f.bool('tie_word_embeddings', false),
    attention_dropout: f.num('attention_dropout', 0, (x) => (x >= 0 && x < 1 ? undefined : `expected a dropout in [0, 1), got ${x}`)),
    use_cache: f.bool('use_cache', true),
    bos_token_id: f.tokenId('bos_token_id', null),
    eos_token_id: f.tokenIds('eos_token_id', null),
    pad_token_id: f.tokenId('pad_token_id', null),
    rope: parseRope(f, max),
    architectures: f.strList('architectures'),
  } as Omit<BaseConfig, 'extra'>;
  if (typeof f.json['rope_theta'] === 'number') base.rope_theta = f.json['rope_theta'] as number;
  if (scaling !== undefined) base.rope_scaling = scaling as Record<string, unknown> | null;
  if (params !== undefined) base.rope_parameters = params as Record<string, unknown> | null;
  if (base.architectures === undefined) delete base.architectures;
  if (heads % base.num_key_value_heads !== 0) {
    f.fail('num_key_value_heads', `num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${base.num_key_value_heads})`);
  }
  return base;
}

function parseDeepseekV3(f: Fields): DeepseekV3Config {
  // transformers' DeepseekV3Config defaults bos 0 / eos 1.
  const base = parseBase(f);
  if (!f.has('bos_token_id')) base.bos_token_id = 0;
  if (!f.has('eos_token_id')) base.eos_token_id = 1;
  const nope = f.int('qk_nope_head_dim', undefined, 0);
  const rope = f.int('qk_rope_head_dim');
  f.used.add('qk_head_dim');
  f.used.add('head_dim');
  const c: DeepseekV3Config = {
    ...base,
    model_type: 'deepseek_v3',
    moe_intermediate_size: f.int('moe_intermediate_size'),
    q_lora_rank: f.intOrNull('q_lora_rank'),
    kv_lora_rank: f.int('kv_lora_rank'),
    qk_nope_head_dim: nope,
    qk_rope_head_dim: rope,
    v_head_dim: f.int('v_head_dim'),
    qk_head_dim: nope + rope,
    head_dim: rope,
    n_routed_experts: f.int('n_routed_experts'),
    n_shared_experts: f.int('n_shared_experts', 1, 0),
    num_experts_per_tok: f.int('num_experts_per_tok', 8),
    n_group: f.int('n_group', 8),
    topk_group: f.int('topk_group', 4),
    norm_topk_prob: f.bool('norm_topk_prob', true),
    routed_scaling_factor: f.num('routed_scaling_factor', 2.5, (x) => (x > 0 ? undefined : `expected a positive number, got ${x}`)),
    first_k_dense_replace: f.int('first_k_dense_replace', 3, 0),
    moe_layer_freq: f.int('moe_layer_freq', 1),
    num_nextn_predict_layers: f.int('num_nextn_predict_layers', 1, 0),
    scoring_func: f.str('scoring_func', 'sigmoid', ['sigmoid', 'softmax'] as const),
    topk_method: f.str('topk_method', 'noaux_tc', ['noaux_tc', 'group_limited_greedy', 'greedy'] as const),
    rope_interleave: f.bool('rope_interleave', true),
    attention_bias: f.bool('attention_bias', false),
    aux_loss_alpha: f.num('aux_loss_alpha', 0.001, (x) => (x >= 0 ? undefined : `expected a number ≥ 0, got ${x}`)),
    extra: {},
  };
  // Given head_dim / qk_head_dim must agree with what transformers derives.
  const hd = f.json['head_dim'];
  if (hd !== undefined && hd !== null && hd !== rope) f.fail('head_dim', `is ${JSON.stringify(hd)} but DeepSeek-V3 derives head_dim = qk_rope_head_dim = ${rope}`);
  const qhd = f.json['qk_head_dim'];
  if (qhd !== undefined && qhd !== null && qhd !== nope + rope) f.fail('qk_head_dim', `is ${JSON.stringify(qhd)} but qk_nope_head_dim + qk_rope_head_dim = ${nope + rope}`);
  // Consistency of routing.
  if (c.n_routed_experts % c.n_group !== 0) f.fail('n_group', `n_routed_experts (${c.n_routed_experts}) is not divisible by n_group (${c.n_group})`);
  if (c.topk_group > c.n_group) f.fail('topk_group', `topk_group (${c.topk_group}) is larger than n_group (${c.n_group})`);
  if (c.num_experts_per_tok > c.n_routed_experts) f.fail('num_experts_per_tok', `num_experts_per_tok (${c.num_experts_per_tok}) is larger than n_routed_experts (${c.n_routed_experts})`);
  const reachable = c.topk_group * (c.n_routed_experts / c.n_group);
  if (c.num_experts_per_tok > reachable) {
    f.fail('num_experts_per_tok', `num_experts_per_tok (${c.num_experts_per_tok}) exceeds the experts in topk_group (${c.topk_group}) groups of ${c.n_routed_experts / c.n_group} = ${reachable}`);
  }
  if (c.n_routed_experts / c.n_group < 2 && c.n_group > 1) {
    f.fail('n_group', `groups are scored by the sum of their top-2 experts, so each group needs ≥ 2 experts (n_routed_experts ${c.n_routed_experts} / n_group ${c.n_group})`);
  }
  if (c.first_k_dense_replace > c.num_hidden_layers) f.fail('first_k_dense_replace', `first_k_dense_replace (${c.first_k_dense_replace}) is larger than num_hidden_layers (${c.num_hidden_layers})`);
  if (c.moe_layer_freq !== 1) f.fail('moe_layer_freq', `only 1 is supported (transformers ignores it), got ${c.moe_layer_freq}`);
  if (c.qk_rope_head_dim % 2 !== 0) f.fail('qk_rope_head_dim', `must be even (rotary pairs), got ${c.qk_rope_head_dim}`);
  if (c.num_key_value_heads !== c.num_attention_heads) {
    f.fail('num_key_value_heads', `MLA has one key/value per head: must equal num_attention_heads (${c.num_attention_heads}), got ${c.num_key_value_heads}`);
  }
  c.extra = f.rest();
  return c;
}

function headDim(f: Fields, base: { hidden_size: number; num_attention_heads: number }): number {
  if (f.has('head_dim')) {
    const hd = f.int('head_dim');
    if (hd % 2 !== 0) f.fail('head_dim', `must be even (rotary pairs), got ${hd}`);
    return hd;
  }
  f.used.add('head_dim');
  if (base.hidden_size % base.num_attention_heads !== 0) {
    f.fail('hidden_size', `hidden_size (${base.hidden_size}) is not divisible by num_attention_heads (${base.num_attention_heads}) and no head_dim is given`);
  }
  const hd = base.hidden_size / base.num_attention_heads;
  if (hd % 2 !== 0) f.fail('hidden_size', `head_dim = hidden_size / num_attention_heads = ${hd} must be even (rotary pairs)`);
  return hd;
}

function parseQwen2(f: Fields): Qwen2Config {
  const base = parseBase(f);
  const hd = headDim(f, base);
  const useSw = f.bool('use_sliding_window', false);
  const swRaw = f.intOrNull('sliding_window', 4096);
  const mwl = f.int('max_window_layers', 28, 0);
  const sw = useSw ? swRaw : null;
  let layerTypes = f.strList('layer_types');
  if (layerTypes === undefined) {
    layerTypes = Array.from({ length: base.num_hidden_layers }, (_, i) =>
      sw !== null && i >= mwl ? 'sliding_attention' : 'full_attention');
  } else if (layerTypes.length !== base.num_hidden_layers) {
    f.fail('layer_types', `has ${layerTypes.length} entries but num_hidden_layers is ${base.num_hidden_layers}`);
  }
  f.used.add('attention_bias');
  const c: Qwen2Config = {
    ...base,
    model_type: 'qwen2',
    head_dim: hd,
    attention_bias: true,
    use_sliding_window: useSw,
    sliding_window: sw,
    max_window_layers: mwl,
    layer_types: layerTypes,
    extra: {},
  };
  c.extra = f.rest();
  return c;
}

function parseLlama(f: Fields): LlamaConfig {
  const base = parseBase(f);
  if (!f.has('bos_token_id')) base.bos_token_id = 1;
  if (!f.has('eos_token_id')) base.eos_token_id = 2;
  const c: LlamaConfig = {
    ...base,
    model_type: 'llama',
    head_dim: headDim(f, base),
    attention_bias: f.bool('attention_bias', false),
    mlp_bias: f.bool('mlp_bias', false),
    pretraining_tp: f.int('pretraining_tp', 1),
    extra: {},
  };
  c.extra = f.rest();
  return c;
}

/**
 * Validates a parsed config.json and fills defaults. `source` (a path) is used in error
 * messages. Throws ConfigError naming the source and field.
 */
export function parseConfig(json: unknown, source = '<config>'): ModelConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`config ${source}: expected a JSON object`, source);
  }
  const f = new Fields(json as Json, source);
  const mt = f.json['model_type'];
  f.used.add('model_type');
  if (mt === undefined) f.fail('model_type', `missing (required; one of ${MODEL_TYPES.join(', ')})`);
  if (typeof mt !== 'string' || !MODEL_TYPES.includes(mt as ModelType)) {
    f.fail('model_type', `unsupported model_type ${JSON.stringify(mt)} (supported: ${MODEL_TYPES.join(', ')})`);
  }
  switch (mt as ModelType) {
    case 'deepseek_v3': return parseDeepseekV3(f);
    case 'qwen2': return parseQwen2(f);
    case 'llama': return parseLlama(f);
  }
}

/** Reads a config.json, or the config.json inside a checkpoint directory. */
export function loadConfig(p: string): ModelConfig {
  let file = p;
  try {
    if (fs.statSync(p).isDirectory()) file = path.join(p, 'config.json');
  } catch (e) {
    throw new ConfigError(`config ${p}: cannot read: ${(e as Error).message}`, p);
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`config ${file}: cannot read: ${(e as Error).message}`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${file}: not valid JSON: ${(e as Error).message}`, file);
  }
  return parseConfig(json, file);
}

// ---------------------------------------------------------------------------------------------
// Writing back

const ARCH: Record<ModelType, string> = {
  deepseek_v3: 'DeepseekV3ForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  llama: 'LlamaForCausalLM',
};

/** Fields of `extra` not carried into written configs (see toHfConfigJson). */
const DROPPED_EXTRA = ['auto_map', 'quantization_config', 'rope_theta', 'rope_scaling', 'rope_parameters', 'torch_dtype'];

export interface ToHfOptions {
  /** value of "dtype" (transformers 5's name for torch_dtype), e.g. 'float32' or 'bfloat16' */
  dtype?: string;
  /** transformers_version to record; default: kept from the source config, else '5.17.0' */
  transformersVersion?: string;
}

/**
 * A config.json object transformers 5 reads: every typed field, `rope_parameters` (transformers
 * 5) plus `rope_theta` and — when not default — an equal `rope_scaling` for older readers, and
 * the uninterpreted extras. Drops `auto_map` (we ship no remote code) and `quantization_config`
 * (r1ts writes f32/bf16/f16, never fp8); `torch_dtype` becomes `dtype`.
 */
export function toHfConfigJson(config: ModelConfig, opts: ToHfOptions = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config.extra)) if (!DROPPED_EXTRA.includes(k)) out[k] = v;
  const skip = new Set(['extra', 'rope', 'rope_theta', 'rope_scaling', 'rope_parameters']);
  for (const [k, v] of Object.entries(config)) if (!skip.has(k)) out[k] = v;
  out['architectures'] = config.architectures ?? [ARCH[config.model_type]];
  const rp = ropeToHf(config.rope);
  out['rope_parameters'] = rp;
  out['rope_theta'] = config.rope.theta;
  if (config.rope.type === 'default') {
    out['rope_scaling'] = null;
  } else {
    const rs = { ...rp, type: config.rope.type };
    out['rope_scaling'] = rs;
  }
  if (config.model_type === 'qwen2') {
    // Qwen2Config (a strict dataclass) declares neither; head_dim only when not the derived one.
    delete out['attention_bias'];
    if (config.head_dim * config.num_attention_heads === config.hidden_size) delete out['head_dim'];
  }
  const dtype = opts.dtype ?? config.extra['dtype'] ?? config.extra['torch_dtype'];
  if (dtype !== undefined) out['dtype'] = dtype;
  out['transformers_version'] = opts.transformersVersion ?? config.extra['transformers_version'] ?? '5.17.0';
  // Stable, readable order: keys sorted as save_pretrained does.
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]));
}

/** Writes toHfConfigJson(config) to `file` (2-space JSON, trailing newline). */
export function writeHfConfig(file: string, config: ModelConfig, opts: ToHfOptions = {}): void {
  fs.writeFileSync(file, JSON.stringify(toHfConfigJson(config, opts), null, 2) + '\n');
}
