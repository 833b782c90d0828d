// The KV cache for batched generation.
//
// Prompts of different lengths are left-padded to a common length, so every row appends its
// new tokens at the same index; row b's keys are the range [start_b, length), where start_b
// is its padding. Each layer keeps one buffer (B, capacity, heads, width): keys and values for
// Llama/Qwen2, and for DeepSeek-V3 only the MLA latent [RMSNorm(c_KV) ; RoPE(k_R)]
// (kv_lora_rank + qk_rope_head_dim values per token), from which keys and values are
// recovered by absorbing W^UK and W^UV into the query and output sides.
import type { Backend } from '../backend/backend.js';
import { contiguousStrides, Tensor, tensor, zeros } from '../tensor/index.js';

export class KVCache {
  /** Tokens written so far, padding included (the same for every row). */
  length = 0;
  /** i32 (B, 2): [start_b, end) of each row's keys for the forward pass in progress. */
  range: Tensor;
  private readonly buffers = new Map<string, Tensor>();
  private readonly derived = new Map<string, unknown>();
  private pending = 0;

  constructor(readonly B: number, readonly capacity: number, readonly starts: Int32Array, readonly backend: Backend) {
    if (starts.length !== B) throw new Error(`KVCache: ${starts.length} row starts for batch ${B}`);
    this.range = this.makeRange(0);
  }

  private makeRange(end: number): Tensor {
    const r = new Int32Array(2 * this.B);
    for (let b = 0; b < this.B; b++) { r[2 * b] = this.starts[b]; r[2 * b + 1] = end; }
    return tensor(r, [this.B, 2], { backend: this.backend, dtype: 'i32' });
  }

  /** Opens a forward pass of T new tokens per row: keys now span [start_b, length + T). */
  begin(T: number): void {
    if (this.length + T > this.capacity) {
      throw new Error(`KV cache full: ${this.length} + ${T} tokens exceed its capacity of ${this.capacity}`);
    }
    this.pending = T;
    this.range = this.makeRange(this.length + T);
  }

  /** Closes the forward pass: the T tokens are now part of the cache. */
  commit(): void {
    this.length += this.pending;
    this.pending = 0;
  }

  /**
   * Rolls the cache back to its first `length` tokens (speculative decoding drops the keys of
   * rejected draft tokens). Nothing is cleared: later writes overwrite positions ≥ length, and
   * no forward pass reads past its own end.
   */
  truncate(length: number): void {
    if (this.pending) throw new Error('KVCache.truncate: a forward pass is in progress');
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new Error(`KVCache.truncate(${length}): the cache holds ${this.length} tokens`);
    }
    this.length = length;
    this.range = this.makeRange(length);
  }

  /** The buffer (B, capacity, heads, width) of one layer's entry, created on first use. */
  buffer(key: string, heads: number, width: number): Tensor {
    let t = this.buffers.get(key);
    if (!t) {
      t = zeros([this.B, this.capacity, heads, width], { backend: this.backend });
      this.buffers.set(key, t);
    }
    return t;
  }

  /** Writes x (B, T, heads, width) at positions [length, length + T) of a layer's buffer. */
  write(key: string, x: Tensor): Tensor {
    const [B, T, heads, width] = x.shape;
    if (B !== this.B || T !== this.pending) {
      throw new Error(`KVCache.write(${key}): got [${x.shape}], expected batch ${this.B} and ${this.pending} new tokens`);
    }
    const buf = this.buffer(key, heads, width);
    const dstStrides = contiguousStrides(buf.shape);
    this.backend.stridedCopy(x.storage, 0, contiguousStrides(x.shape), buf.storage, this.length * dstStrides[1], dstStrides, x.shape);
    return buf;
  }

  /**
   * A value computed from the weights once per cache (e.g. MLA's W^UK and W^UV split out of
   * kv_b_proj): weights do not change while one cache is in use (one generation), so layers
   * need not recompute it every step.
   */
  memo<V>(key: string, compute: () => V): V {
    if (!this.derived.has(key)) this.derived.set(key, compute());
    return this.derived.get(key) as V;
  }

  /** Values held per token per layer entry (for reporting cache size). */
  valuesPerToken(): number {
    let n = 0;
    for (const t of this.buffers.values()) n += t.shape[2] * t.shape[3];
    return n;
  }
}
