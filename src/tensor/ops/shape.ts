// Shape ops: reshape (free), permute/transpose, slicing, concatenation, expansion (copies).
import { contiguousStrides, makeResult, normAxis, numel, Tensor } from '../tensor.js';
import { sumToShape } from './broadcast.js';

/** Same data, new shape; one dimension may be -1. Shares the buffer. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = resolveShape(shape, x.size, x.shape);
  return makeResult(x.storage, resolved, x.backend, 'reshape', [x], (g) => [reshape(g, x.shape)]);
}

function resolveShape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const known = numel(out.filter((_, i) => i !== free));
    out[free] = known === 0 ? 0 : size / known;
  }
  if (numel(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot view shape [${from}] (${size} elements) as [${shape}]`);
  }
  return out;
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. Copies. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.ndim || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`permute: [${perm}] is not a permutation of the ${x.ndim} axes of [${x.shape}]`);
  }
  const shape = perm.map((p) => x.shape[p]);
  // Moving only axes of size 1 leaves the memory order as it is (e.g. (B,1,H,D) → (B,H,1,D),
  // common when decoding one token): a view, no copy.
  const moved = perm.filter((p) => x.shape[p] !== 1);
  if (moved.every((p, i) => i === 0 || p > moved[i - 1])) return reshape(x, shape);
  const inStrides = contiguousStrides(x.shape);
  const out = x.backend.empty(x.dtype, x.size);
  x.backend.stridedCopy(x.storage, 0, perm.map((p) => inStrides[p]), out, 0, contiguousStrides(shape), shape);
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => { inverse[p] = i; });
  return makeResult(out, shape, x.backend, 'permute', [x], (g) => [permute(g, inverse)]);
}

/** Swaps two axes. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = [...Array(x.ndim).keys()];
  const i = normAxis(a, x.ndim), j = normAxis(b, x.ndim);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** x[..., start:start+length, ...] along one axis. Copies. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const ax = normAxis(axis, x.ndim);
  if (start < 0 || length < 0 || start + length > x.shape[ax]) {
    throw new Error(`narrow: [${start}, ${start + length}) is outside axis ${ax} of size ${x.shape[ax]}`);
  }
  const shape = [...x.shape];
  shape[ax] = length;
  const inStrides = contiguousStrides(x.shape);
  const out = x.backend.empty(x.dtype, numel(shape));
  x.backend.stridedCopy(x.storage, start * inStrides[ax], inStrides, out, 0, contiguousStrides(shape), shape);
  return makeResult(out, shape, x.backend, 'narrow', [x], (g) => {
    const dx = x.backend.alloc(g.dtype, x.size);
    x.backend.stridedCopy(g.storage, 0, contiguousStrides(shape), dx, start * inStrides[ax], inStrides, shape);
    return [new Tensor(dx, x.shape, x.backend)];
  });
}

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Tensor, sizes: readonly number[], axis = -1): Tensor[] {
  const ax = normAxis(axis, x.ndim);
  const total = sizes.reduce((s, d) => s + d, 0);
  if (total !== x.shape[ax]) throw new Error(`split: sizes [${sizes}] sum to ${total}, axis ${ax} has ${x.shape[ax]}`);
  let start = 0;
  return sizes.map((len) => { const t = narrow(x, ax, start, len); start += len; return t; });
}

/** Joins tensors along an axis. */
export function concat(xs: readonly Tensor[], axis = -1): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const first = xs[0];
  const ax = normAxis(axis, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(`concat: shapes [${first.shape}] and [${t.shape}] differ outside axis ${ax}`);
    }
    if (t.backend !== first.backend) throw new Error('concat: tensors on different backends');
  }
  const shape = [...first.shape];
  shape[ax] = xs.reduce((s, t) => s + t.shape[ax], 0);
  const outStrides = contiguousStrides(shape);
  const out = first.backend.empty(first.dtype, numel(shape));
  let offset = 0;
  for (const t of xs) {
    first.backend.stridedCopy(t.storage, 0, contiguousStrides(t.shape), out, offset * outStrides[ax], outStrides, t.shape);
    offset += t.shape[ax];
  }
  return makeResult(out, shape, first.backend, 'concat', [...xs], (g) => {
    let start = 0;
    return xs.map((t) => {
      const piece = narrow(g, ax, start, t.shape[ax]);
      start += t.shape[ax];
      return piece;
    });
  });
}

/** Broadcasts to a larger shape (materialised). */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const off = shape.length - x.ndim;
  if (off < 0 || x.shape.some((d, i) => d !== 1 && d !== shape[i + off])) {
    throw new Error(`expand: cannot expand [${x.shape}] to [${shape}]`);
  }
  const inStrides = contiguousStrides(x.shape);
  const strides = shape.map((_, i) => (i < off || x.shape[i - off] === 1 ? 0 : inStrides[i - off]));
  const out = x.backend.empty(x.dtype, numel(shape));
  x.backend.stridedCopy(x.storage, 0, strides, out, 0, contiguousStrides(shape), shape);
  return makeResult(out, shape, x.backend, 'expand', [x], (g) => [sumToShape(g, x.shape)]);
}

/** Inserts an axis of size 1. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const ax = axis < 0 ? axis + x.ndim + 1 : axis;
  const shape = [...x.shape];
  shape.splice(ax, 0, 1);
  return reshape(x, shape);
}

/** Removes an axis of size 1. */
export function squeeze(x: Tensor, axis: number): Tensor {
  const ax = normAxis(axis, x.ndim);
  if (x.shape[ax] !== 1) throw new Error(`squeeze: axis ${ax} of [${x.shape}] has size ${x.shape[ax]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== ax));
}

/** Converts dtype (f32 ↔ i32); not differentiable. */
export function cast(x: Tensor, dtype: 'f32' | 'i32' | 'f64'): Tensor {
  if (x.dtype === dtype) return x;
  const out = x.backend.empty(dtype, x.size);
  x.backend.copy(x.storage, 0, out, 0, x.size);
  return new Tensor(out, x.shape, x.backend);
}
