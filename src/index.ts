// r1ts: the public API.
export * from './tensor/index.js';
export type { Backend, DType, Storage } from './backend/backend.js';
export { defaultBackend, setDefaultBackend, withBackend } from './backend/registry.js';
export { RefBackend } from './backend/ref/ref.js';
export { CpuBackend } from './backend/cpu/cpu.js';
export { Module, ModuleList } from './nn/module.js';
export { Linear, Embedding, RMSNorm, SwiGLUMLP } from './nn/layers.js';
export { RotaryTables, ropeFrequencies, yarnMscale } from './nn/rotary.js';
export * from './models/config.js';
export { parameterSpecs, countParameters } from './models/params.js';
export { DeepseekV3ForCausalLM, DeepseekMoE, MultiHeadLatentAttention } from './models/deepseek-v3.js';
export { DenseForCausalLM } from './models/llama.js';
export { createModel, loadModel, saveModel } from './models/load.js';
export type { CausalLM } from './models/common.js';
export { nextTokenLoss } from './models/common.js';
export { openSafetensors, writeSafetensors, writeShardedSafetensors } from './io/safetensors.js';
export { AdamW, clipScale, gradNorm } from './train/optim.js';
export { warmupCosine } from './train/schedule.js';
