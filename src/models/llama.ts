// Llama and Qwen2: the dense decoder-only transformers used as distillation students.
// Qwen2 is Llama with biases on q/k/v and (usually) tied embeddings.
//
// Legend: B batch, T time, C hidden, H query heads, Hkv key/value heads, D head dim, V vocab.
import type { Backend } from '../backend/backend.js';
import { add, attention, linear, narrow, reshape, rope, Rng, Tensor } from '../tensor/index.js';
import type { KVCache } from '../generate/kv-cache.js';
import { Embedding, InitOptions, Linear, RMSNorm, SwiGLUMLP } from '../nn/layers.js';
import { Module, ModuleList } from '../nn/module.js';
import { RotaryTables } from '../nn/rotary.js';
import { CausalLM, decodeCacheArgs, decodesFused, defaultPositions, ForwardOptions, ForwardOutput } from './common.js';
import type { LlamaConfig, Qwen2Config } from './config.js';

type DenseConfig = LlamaConfig | Qwen2Config;

class Attention extends Module {
  readonly q_proj: Linear; readonly k_proj: Linear; readonly v_proj: Linear; readonly o_proj: Linear;
  readonly H: number; readonly Hkv: number; readonly D: number;
  constructor(cfg: DenseConfig, init: InitOptions, private readonly cacheKey: string) {
    super();
    this.H = cfg.num_attention_heads;
    this.Hkv = cfg.num_key_value_heads;
    this.D = cfg.head_dim;
    const C = cfg.hidden_size;
    const qkvBias = cfg.attention_bias;
    this.q_proj = this.module('q_proj', new Linear(C, this.H * this.D, qkvBias, init));
    this.k_proj = this.module('k_proj', new Linear(C, this.Hkv * this.D, qkvBias, init));
    this.v_proj = this.module('v_proj', new Linear(C, this.Hkv * this.D, qkvBias, init));
    const oBias = cfg.model_type === 'llama' && cfg.attention_bias;
    this.o_proj = this.module('o_proj', new Linear(this.H * this.D, C, oBias, init));
  }

  forward(x: Tensor, positions: Tensor, rot: RotaryTables, cache?: KVCache): Tensor {
    const [B, T] = x.shape;
    const q = rope(reshape(this.q_proj.forward(x), [B, T, this.H, this.D]), rot.cos, rot.sin, positions, false);
    const k = rope(reshape(this.k_proj.forward(x), [B, T, this.Hkv, this.D]), rot.cos, rot.sin, positions, false);
    const v = reshape(this.v_proj.forward(x), [B, T, this.Hkv, this.D]);
    const scale = 1 / Math.sqrt(this.D);
    const o = cache // (B, T, H, D)
      ? attention(q, cache.write(`${this.cacheKey}.k`, k), cache.write(`${this.cacheKey}.v`, v), { scale, keyRange: cache.range })
      : attention(q, k, v, { scale });
    return this.o_proj.forward(reshape(o, [B, T, this.H * this.D]));
  }

  /** x + forward(norm(x)) for a few new tokens over a cache (B, T, C), in one backend call. */
  decodeStep(x: Tensor, norm: RMSNorm, positions: Tensor, rot: RotaryTables, cache: KVCache): Tensor {
    const [B, T, C] = x.shape;
    const { H, Hkv, D } = this;
    const out = x.backend.empty('f32', B * T * C);
    x.backend.gqaDecode!({
      N: B * T, C, x: x.storage, norm: norm.weight.storage, eps: norm.eps, H, Hkv, D,
      ...decodeCacheArgs(x, cache, positions, rot, false, 1 / Math.sqrt(D)),
      q: this.q_proj.kernelArgs, k: this.k_proj.kernelArgs, v: this.v_proj.kernelArgs, o: this.o_proj.kernelArgs,
      kCache: cache.buffer(`${this.cacheKey}.k`, Hkv, D).storage, vCache: cache.buffer(`${this.cacheKey}.v`, Hkv, D).storage,
    }, out);
    return new Tensor(out, x.shape, x.backend);
  }
}

class DecoderLayer extends Module {
  readonly input_layernorm: RMSNorm; readonly self_attn: Attention;
  readonly post_attention_layernorm: RMSNorm; readonly mlp: SwiGLUMLP;
  constructor(cfg: DenseConfig, layer: number, init: InitOptions) {
    super();
    this.input_layernorm = this.module('input_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.self_attn = this.module('self_attn', new Attention(cfg, init, `layer${layer}`));
    this.post_attention_layernorm = this.module('post_attention_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
    this.mlp = this.module('mlp', new SwiGLUMLP(cfg.hidden_size, cfg.intermediate_size, init));
  }
  forward(x: Tensor, positions: Tensor, rot: RotaryTables, cache?: KVCache): Tensor {
    if (decodesFused(x, cache, ['gqaDecode', 'mlpDecode'])) {
      const h = this.self_attn.decodeStep(x, this.input_layernorm, positions, rot, cache);
      return this.mlp.decodeStep(h, this.post_attention_layernorm);
    }
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), positions, rot, cache));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

class DenseModel extends Module {
  readonly embed_tokens: Embedding; readonly layers: ModuleList<DecoderLayer>; readonly norm: RMSNorm;
  constructor(cfg: DenseConfig, init: InitOptions) {
    super();
    this.embed_tokens = this.module('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size, init));
    this.layers = this.module('layers', new ModuleList(Array.from({ length: cfg.num_hidden_layers }, (_, l) => new DecoderLayer(cfg, l, init))));
    this.norm = this.module('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, init.backend));
  }
}

/** LlamaForCausalLM / Qwen2ForCausalLM with Hugging Face parameter names. */
export class DenseForCausalLM extends Module implements CausalLM {
  readonly model: DenseModel;
  readonly lm_head: Linear | null;
  readonly rotary: RotaryTables;
  readonly backend?: Backend;

  constructor(readonly config: DenseConfig, opts: { seed?: number; backend?: Backend } = {}) {
    super();
    const init: InitOptions = { rng: new Rng(opts.seed ?? 0), std: config.initializer_range, backend: opts.backend };
    this.backend = opts.backend;
    this.model = this.module('model', new DenseModel(config, init));
    this.lm_head = config.tie_word_embeddings ? null : this.module('lm_head', new Linear(config.hidden_size, config.vocab_size, false, init));
    this.rotary = new RotaryTables(config.rope, config.head_dim, config.max_position_embeddings, opts.backend);
    this.nameTensors();
  }

  forward(ids: Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const hidden = this.hiddenStates(ids, opts);
    return { logits: linear(hidden, this.outputWeight), hidden };
  }

  get outputWeight(): Tensor { return this.lm_head ? this.lm_head.weight : this.model.embed_tokens.weight; }

  hiddenStates(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const [B, T] = ids.shape;
    const { cache } = opts;
    const positions = opts.positions ?? defaultPositions(B, T, ids.backend, cache?.length ?? 0);
    cache?.begin(T);
    let h = this.model.embed_tokens.forward(ids); // (B, T, C)
    for (const layer of this.model.layers.items) h = layer.forward(h, positions, this.rotary, cache);
    cache?.commit();
    if (opts.lastOnly) h = narrow(h, 1, T - 1, 1);
    return this.model.norm.forward(h);
  }
}
