// Broadcasting rules (NumPy's): align shapes on the right; a dimension of 1 stretches.
import { contiguousStrides, numel, Tensor } from '../tensor.js';

export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes [${a}] and [${b}] cannot be broadcast together (axis ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides to read a tensor of `shape` as if it had `target` shape (0 on stretched axes). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const strides = contiguousStrides(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : strides[i - off]));
}

/** Sums a gradient of broadcast shape back down to `shape` (the adjoint of broadcasting). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const backend = g.backend;
  let cur = g.storage;
  let curShape = [...g.shape];
  // Leading axes that `shape` lacks: one reduction over their product.
  const lead = curShape.length - shape.length;
  if (lead > 0) {
    const R = numel(curShape.slice(0, lead));
    const inner = numel(curShape.slice(lead));
    const out = backend.empty(g.dtype, inner);
    backend.sumAxis(cur, out, 1, R, inner);
    cur = out;
    curShape = curShape.slice(lead);
  }
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && curShape[i] !== 1) {
      const outer = numel(curShape.slice(0, i));
      const inner = numel(curShape.slice(i + 1));
      const out = backend.empty(g.dtype, outer * inner);
      backend.sumAxis(cur, out, outer, curShape[i], inner);
      cur = out;
      curShape[i] = 1;
    }
  }
  return new Tensor(cur, shape, backend);
}
