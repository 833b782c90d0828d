// What every causal language model here shares: the forward contract, positions, the loss.
import type { Backend, DecodeCacheArgs } from '../backend/backend.js';
import { crossEntropy, isGradEnabled, linearCrossEntropy, narrow, reshape, Tensor, tensor } from '../tensor/index.js';
import type { RotaryTables } from '../nn/rotary.js';
import type { ModelConfig } from './config.js';
import type { Module } from '../nn/module.js';
import type { KVCache } from '../generate/kv-cache.js';

export interface ForwardOptions {
  /** i32 (B·T) positions; default 0..T-1 for every row (after the cached tokens, if any). */
  positions?: Tensor;
  /** Generation: attend over (and append to) this cache. */
  cache?: KVCache;
  /** Compute logits for the last position only (generation). */
  lastOnly?: boolean;
}

export interface ForwardOutput {
  /** (B, T, V) */
  logits: Tensor;
  /** (B, T, C): the final hidden state after the last norm, which the head reads (MTP starts from it). */
  hidden: Tensor;
}

export interface CausalLM extends Module {
  readonly config: ModelConfig;
  /** ids i32 (B, T) → logits (B, T, V) and the final hidden state. */
  forward(ids: Tensor, opts?: ForwardOptions): ForwardOutput;
  /** The final normed hidden states (B, T, C): the model without its output head. */
  hiddenStates(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** The output head's weight (V, C) (the embedding when tied). */
  readonly outputWeight: Tensor;
}

const positionCache = new WeakMap<Backend, Map<string, Tensor>>();

/** i32 positions offset, offset+1, … offset+T-1 for each of B rows, (B·T). Cached. */
export function defaultPositions(B: number, T: number, backend: Backend, offset = 0): Tensor {
  let perBackend = positionCache.get(backend);
  if (!perBackend) { perBackend = new Map(); positionCache.set(backend, perBackend); }
  const key = `${B}x${T}+${offset}`;
  let t = perBackend.get(key);
  if (!t) {
    const p = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) p[b * T + i] = offset + i;
    t = tensor(p, [B * T], { backend, dtype: 'i32' });
    perBackend.set(key, t);
  }
  return t;
}

/**
 * The training form of nextTokenLoss: from hidden states and the head weight, never holding
 * all (B·T, V) logits at once (see linearCrossEntropy).
 */
export function nextTokenLossFromHidden(hidden: Tensor, head: Tensor, labels: Tensor, shift = 1): Tensor {
  const [B, T, C] = hidden.shape;
  const x = reshape(narrow(hidden, 1, 0, T - shift), [B * (T - shift), C]);
  const target = reshape(narrow(labels, 1, shift, T - shift), [B * (T - shift)]);
  return linearCrossEntropy(x, head, target);
}

/**
 * Mean next-token cross-entropy: logits at t predict ids at t+1 (labels = ids shifted
 * inside, as Hugging Face computes it). `labels` may carry ignoreIndex (-100) entries.
 */
export function nextTokenLoss(logits: Tensor, labels: Tensor, shift = 1): Tensor {
  const [B, T, V] = logits.shape;
  const pred = reshape(narrow(logits, 1, 0, T - shift), [B * (T - shift), V]);
  const target = reshape(narrow(labels, 1, shift, T - shift), [B * (T - shift)]);
  return crossEntropy(pred, target);
}

/**
 * New tokens (batch × time) up to which an inference pass over a cache runs each block of a
 * layer in one backend call (Backend.mlaDecode, gqaDecode, mlpDecode, moeDecode): decoding one
 * to four sequences, speculative decoding's verification of a few drafts. With so few tokens, a
 * block run op by op spends more on its ~25 calls, allocations and copies than on its
 * arithmetic; larger passes spread that cost over their rows and are served best by GEMMs over
 * all rows at once, so they keep the op-by-op path (as does every training pass).
 */
export const FUSED_DECODE_MAX_TOKENS = 4;

type DecodeKernel = 'mlaDecode' | 'gqaDecode' | 'mlpDecode' | 'moeDecode';

/** Whether x (B, T, C) is an inference pass over a cache that the backend's fused blocks serve. */
export function decodesFused(x: Tensor, cache: KVCache | undefined, kernels: readonly DecodeKernel[]): cache is KVCache {
  const [B, T] = x.shape;
  return cache !== undefined && B * T <= FUSED_DECODE_MAX_TOKENS && !isGradEnabled() && x.dtype === 'f32'
    && kernels.every((k) => typeof x.backend[k] === 'function');
}

/** The cache side of a fused attention block for x (B, T, C): write index, key ranges, positions, rope tables. */
export function decodeCacheArgs(x: Tensor, cache: KVCache, positions: Tensor, rot: RotaryTables, interleaved: boolean, scale: number): DecodeCacheArgs {
  const [B, T] = x.shape;
  return {
    B, T, capacity: cache.capacity, at: cache.length, keyRange: cache.range.storage, positions: positions.storage,
    cos: rot.cos.storage, sin: rot.sin.storage, interleaved, scale,
  };
}
