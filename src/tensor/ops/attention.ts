// Causal scaled-dot-product attention (fused, memory linear in sequence length).
import type { AttentionArgs } from '../../backend/backend.js';
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

export interface AttentionOptions {
  /** Softmax scale, usually 1/sqrt(head_dim) (DeepSeek-V3 with YaRN multiplies in mscale²). */
  scale: number;
  causal?: boolean;
  /**
   * i32 (B, 2): row b attends to keys [first, last) only; causal positions count from last
   * (left-padded batches, and a KV cache of capacity S holding `last` tokens).
   */
  keyRange?: Tensor | null;
  /**
   * Values are the first `valueWidth` entries of each key row (pass the same tensor as k and
   * v): MLA decoding over the cached latent. Inference only.
   */
  valueWidth?: number;
}

/**
 * q (B, T, H, Dk), k (B, S, Hkv, Dk), v (B, S, Hkv, Dv) → (B, T, H, Dv).
 * With S > T the last T queries attend causally after S − T earlier keys.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const backend = assertSameBackend('attention', q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(`attention: expects (B, T, H, D) tensors, got q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  const [B, T, H, Dk] = q.shape;
  const [kb, S, Hkv, kd] = k.shape;
  const vInK = opts.valueWidth !== undefined;
  if (vInK && (v !== k || opts.valueWidth! > Dk)) {
    throw new Error(`attention: valueWidth needs v to be the key tensor itself and at most ${Dk} wide`);
  }
  const [vb, vs, vh, Dv] = vInK ? [B, S, Hkv, opts.valueWidth!] : v.shape;
  if (kb !== B || vb !== B || vs !== S || vh !== Hkv || kd !== Dk || H % Hkv !== 0 || (S < T && !opts.keyRange)) {
    throw new Error(`attention: incompatible shapes q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  if (opts.keyRange && (opts.keyRange.dtype !== 'i32' || opts.keyRange.size !== 2 * B)) {
    throw new Error(`attention: keyRange must be i32 of shape [${B}, 2], got ${opts.keyRange.dtype} [${opts.keyRange.shape}]`);
  }
  const args: AttentionArgs = {
    q: q.storage, k: k.storage, v: v.storage, B, T, S, H, Hkv, Dk, Dv,
    scale: opts.scale, causal: opts.causal ?? true, keyRange: opts.keyRange?.storage ?? null, vInK,
  };
  const out = backend.empty(q.dtype, B * T * H * Dv);
  const lse = backend.empty(q.dtype, B * H * T);
  backend.attention(args, out, lse);
  const inputs = vInK ? [q, k] : [q, k, v];
  return makeResult(out, [B, T, H, Dv], backend, 'attention', inputs, (g) => {
    if (vInK) throw new Error('attention: no gradient through the inference-only latent layout (valueWidth)');
    const dq = backend.empty(g.dtype, q.size);
    const dk = backend.empty(g.dtype, k.size);
    const dv = backend.empty(g.dtype, v.size);
    backend.attentionGrad(args, out, lse, g.storage, dq, dk, dv);
    return [new Tensor(dq, q.shape, backend), new Tensor(dk, k.shape, backend), new Tensor(dv, v.shape, backend)];
  });
}
