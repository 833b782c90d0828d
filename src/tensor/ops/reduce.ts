// Reductions over axes: sum, mean, max.
import { makeResult, normAxis, numel, Tensor } from '../tensor.js';
import { expand, reshape } from './shape.js';

function reduceAxes(x: Tensor, axis: number | readonly number[] | undefined): number[] {
  if (axis === undefined) return [...Array(x.ndim).keys()];
  const list = typeof axis === 'number' ? [axis] : axis;
  return [...new Set(list.map((a) => normAxis(a, x.ndim)))].sort((a, b) => a - b);
}

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Sum over the given axes (all when omitted). */
export function sum(x: Tensor, axis?: number | readonly number[], keepDim = false): Tensor {
  const axes = reduceAxes(x, axis);
  const kept = keptShape(x.shape, axes);
  let cur = x.storage;
  const curShape = [...x.shape];
  for (const ax of axes) {
    const outer = numel(curShape.slice(0, ax));
    const inner = numel(curShape.slice(ax + 1));
    const out = x.backend.empty(x.dtype, outer * inner);
    x.backend.sumAxis(cur, out, outer, curShape[ax], inner);
    cur = out;
    curShape[ax] = 1;
  }
  const shape = keepDim ? kept : x.shape.filter((_, i) => !axes.includes(i));
  return makeResult(cur, shape, x.backend, 'sum', [x], (g) => [expand(reshape(g, kept), x.shape)]);
}

export function mean(x: Tensor, axis?: number | readonly number[], keepDim = false): Tensor {
  const axes = reduceAxes(x, axis);
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const s = sum(x, axes, keepDim);
  return scaleBy(s, 1 / count);
}

function scaleBy(x: Tensor, c: number): Tensor {
  const out = x.backend.empty(x.dtype, x.size);
  x.backend.affine(x.storage, c, 0, out);
  return makeResult(out, x.shape, x.backend, 'scale', [x], (g) => [scaleBy(g, c)]);
}

/** Max over one axis; the gradient flows to the (first) maximal element. */
export function max(x: Tensor, axis = -1, keepDim = false): { values: Tensor; indices: Tensor } {
  const ax = normAxis(axis, x.ndim);
  const outer = numel(x.shape.slice(0, ax));
  const R = x.shape[ax];
  const inner = numel(x.shape.slice(ax + 1));
  const vals = x.backend.empty(x.dtype, outer * inner);
  const idx = x.backend.empty('i32', outer * inner);
  x.backend.maxAxis(x.storage, vals, idx, outer, R, inner);
  const kept = keptShape(x.shape, [ax]);
  const shape = keepDim ? kept : x.shape.filter((_, i) => i !== ax);
  const indices = new Tensor(idx, shape, x.backend);
  const values = makeResult(vals, shape, x.backend, 'max', [x], (g) => {
    // dx[o, idx[o,i], i] = g[o, i]: a scatter into the flat positions of the maxima.
    const dx = x.backend.alloc(g.dtype, x.size);
    const argmax = x.backend.read(idx);
    const flat = new Int32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) flat[o * inner + i] = (o * R + argmax[o * inner + i]) * inner + i;
    }
    x.backend.scatterAddRows(g.storage, x.backend.upload(flat, 'i32'), null, dx, outer * inner, 1);
    return [new Tensor(dx, x.shape, x.backend)];
  });
  return { values, indices };
}
