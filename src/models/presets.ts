// Built-in model configs (Hugging Face config.json objects) for runs that start from scratch.
// The vocabulary size is filled in from the tokenizer.

const deepseekV3Mini = {
  architectures: ['DeepseekV3ForCausalLM'],
  model_type: 'deepseek_v3',
  hidden_size: 128,
  intermediate_size: 384,
  moe_intermediate_size: 96,
  num_hidden_layers: 4,
  first_k_dense_replace: 1,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  q_lora_rank: 64,
  kv_lora_rank: 32,
  qk_nope_head_dim: 32,
  qk_rope_head_dim: 16,
  v_head_dim: 32,
  n_routed_experts: 8,
  n_shared_experts: 1,
  num_experts_per_tok: 2,
  n_group: 4,
  topk_group: 2,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  scoring_func: 'sigmoid',
  topk_method: 'noaux_tc',
  num_nextn_predict_layers: 1,
  hidden_act: 'silu',
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  rope_scaling: null,
  rope_interleave: true,
  attention_bias: false,
  tie_word_embeddings: false,
  initializer_range: 0.02,
};

/** A very small DeepSeek-V3 for tests and quick checks (MLA + MoE + MTP, seconds to train). */
const deepseekV3Tiny = {
  ...deepseekV3Mini,
  hidden_size: 32, intermediate_size: 64, moe_intermediate_size: 16, num_hidden_layers: 2,
  num_attention_heads: 2, num_key_value_heads: 2, q_lora_rank: 16, kv_lora_rank: 16,
  qk_nope_head_dim: 8, qk_rope_head_dim: 8, v_head_dim: 8, n_routed_experts: 4, n_group: 2, topk_group: 1,
};

const qwen2Mini = {
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_size: 128,
  intermediate_size: 384,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_act: 'silu',
  max_position_embeddings: 512,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: true,
  initializer_range: 0.02,
};

export const PRESETS: Record<string, Record<string, unknown>> = {
  'deepseek-v3-mini': deepseekV3Mini,
  'deepseek-v3-tiny': deepseekV3Tiny,
  'qwen2-mini': qwen2Mini,
};

/** A preset's config with the given vocabulary size (and special token ids). */
export function presetConfig(name: string, vocabSize: number, ids: { bos?: number; eos?: number; pad?: number } = {}): Record<string, unknown> {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset '${name}' (known: ${Object.keys(PRESETS).join(', ')})`);
  return { ...p, vocab_size: vocabSize, bos_token_id: ids.bos ?? null, eos_token_id: ids.eos ?? null, pad_token_id: ids.pad ?? null };
}
