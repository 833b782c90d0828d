// Rotary position embedding (fused). The cos/sin tables come from nn/rotary.ts (default or
// YaRN frequencies); this op only rotates.
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

/**
 * x (B, T, H, D) or (N, H, D); positions i32 with one entry per row (B·T or N).
 * `interleaved`: rotary pairs are (x[2j], x[2j+1]) as in the official DeepSeek-V3 weights;
 * otherwise (x[j], x[j + D/2]) as in Llama/Qwen2 (rotate_half).
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor, positions: Tensor, interleaved: boolean): Tensor {
  const backend = assertSameBackend('rope', x, cos, sin, positions);
  const D = x.shape[x.ndim - 1];
  const H = x.shape[x.ndim - 2];
  const N = x.size / (H * D);
  if (D % 2 !== 0) throw new Error(`rope: head dimension ${D} must be even`);
  if (positions.size !== N || positions.dtype !== 'i32') {
    throw new Error(`rope: positions must be i32 with ${N} entries (one per row of [${x.shape}]), got ${positions.dtype} [${positions.shape}]`);
  }
  if (cos.shape[cos.ndim - 1] !== D / 2) throw new Error(`rope: cos table [${cos.shape}] does not match head dimension ${D}`);
  const y = backend.empty(x.dtype, x.size);
  backend.rope(x.storage, y, cos.storage, sin.storage, positions.storage, N, H, D, interleaved, false);
  return makeResult(y, x.shape, backend, 'rope', [x], (g) => {
    const dx = backend.empty(g.dtype, x.size);
    backend.rope(g.storage, dx, cos.storage, sin.storage, positions.storage, N, H, D, interleaved, true);
    return [new Tensor(dx, x.shape, backend)];
  });
}
