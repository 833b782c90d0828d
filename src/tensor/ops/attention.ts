// Causal scaled-dot-product attention (fused, memory linear in sequence length).
import type { AttentionArgs } from '../../backend/backend.js';
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

export interface AttentionOptions {
  /** Softmax scale, usually 1/sqrt(head_dim) (DeepSeek-V3 with YaRN multiplies in mscale²). */
  scale: number;
  causal?: boolean;
  /** i32 (B): valid keys per batch row, for batches of different lengths. */
  keyLengths?: Tensor | null;
}

/**
 * q (B, T, H, Dk), k (B, S, Hkv, Dk), v (B, S, Hkv, Dv) → (B, T, H, Dv).
 * With S > T the last T queries attend causally after S − T cached keys.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Tensor {
  const backend = assertSameBackend('attention', q, k, v);
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error(`attention: expects (B, T, H, D) tensors, got q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  const [B, T, H, Dk] = q.shape;
  const [kb, S, Hkv, kd] = k.shape;
  const [vb, vs, vh, Dv] = v.shape;
  if (kb !== B || vb !== B || vs !== S || vh !== Hkv || kd !== Dk || H % Hkv !== 0 || S < T) {
    throw new Error(`attention: incompatible shapes q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  }
  const args: AttentionArgs = {
    q: q.storage, k: k.storage, v: v.storage, B, T, S, H, Hkv, Dk, Dv,
    scale: opts.scale, causal: opts.causal ?? true, keyLengths: opts.keyLengths?.storage ?? null,
  };
  const out = backend.alloc(q.dtype, B * T * H * Dv);
  const lse = backend.alloc(q.dtype, B * H * T);
  backend.attention(args, out, lse);
  return makeResult(out, [B, T, H, Dv], backend, 'attention', [q, k, v], (g) => {
    const dq = backend.alloc(g.dtype, q.size);
    const dk = backend.alloc(g.dtype, k.size);
    const dv = backend.alloc(g.dtype, v.size);
    backend.attentionGrad(args, out, lse, g.storage, dq, dk, dv);
    return [new Tensor(dq, q.shape, backend), new Tensor(dk, k.shape, backend), new Tensor(dv, v.shape, backend)];
  });
}
