// Building models from configs, and loading/saving them as Hugging Face checkpoint folders
// (config.json + model.safetensors). Parameter names match the checkpoint one to one; loading
// fails loudly on a missing tensor, an unexpected one, or a shape mismatch.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { openSafetensors, TensorToWrite, writeSafetensors } from '../io/safetensors.js';
import type { CausalLM } from './common.js';
import { loadConfig, ModelConfig, writeHfConfig } from './config.js';
import { DeepseekV3ForCausalLM } from './deepseek-v3.js';
import { DenseForCausalLM } from './llama.js';

export interface BuildOptions {
  seed?: number;
  backend?: Backend;
  /** DeepSeek-V3: build the MTP modules (default true). */
  mtp?: boolean;
}

/** A freshly initialised model for a config. */
export function createModel(config: ModelConfig, opts: BuildOptions = {}): CausalLM {
  switch (config.model_type) {
    case 'deepseek_v3': return new DeepseekV3ForCausalLM(config, opts);
    case 'qwen2':
    case 'llama': return new DenseForCausalLM(config, opts);
  }
}

/**
 * Checkpoint entries that are not model parameters and may be skipped: fp8 scales (folded in
 * by the reader), rotary caches, and the MTP layers' copies of the shared embedding and head.
 */
function isIgnorable(name: string, config: ModelConfig): boolean {
  if (name.endsWith('weight_scale_inv') || name.endsWith('rotary_emb.inv_freq')) return true;
  if (config.model_type === 'deepseek_v3') {
    const m = /^model\.layers\.(\d+)\.(embed_tokens\.weight|shared_head\.head\.weight)$/.exec(name);
    if (m && Number(m[1]) >= config.num_hidden_layers) return true;
  }
  return false;
}

/**
 * Loads a checkpoint folder (config.json + model.safetensors or a sharded index). DeepSeek-V3's
 * MTP modules are built when the checkpoint has them (transformers drops them on save).
 */
export function loadModel(dir: string, opts: { backend?: Backend; mtp?: boolean } = {}): CausalLM {
  const config = loadConfig(dir);
  const reader = openSafetensors(dir);
  try {
    let mtp = opts.mtp;
    if (config.model_type === 'deepseek_v3' && mtp === undefined) {
      mtp = config.num_nextn_predict_layers > 0 && reader.has(`model.layers.${config.num_hidden_layers}.eh_proj.weight`);
    }
    const model = createModel(config, { backend: opts.backend, mtp });
    const wanted = model.stateDict();
    const unexpected = reader.keys().filter((k) => !wanted.has(k) && !isIgnorable(k, config));
    if (unexpected.length) {
      throw new Error(`${reader.path}: ${unexpected.length} tensors the ${config.model_type} model does not have: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', …' : ''}`);
    }
    model.loadState((name, shape) => {
      if (!reader.has(name)) return undefined;
      return reader.readWeightF32(name, shape);
    });
    return model;
  } finally {
    reader.close();
  }
}

/** Writes config.json and model.safetensors (atomically) into dir. */
export function saveModel(model: CausalLM, dir: string, opts: { dtype?: 'F32' | 'BF16' } = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const dtype = opts.dtype ?? 'F32';
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of model.stateDict()) {
    tensors[name] = { dtype, shape: [...t.shape], data: Float32Array.from(t.toArray()) };
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  writeHfConfig(path.join(dir, 'config.json'), model.config, { dtype: dtype === 'F32' ? 'float32' : 'bfloat16' });
}
