// Row gathers and scatters (embedding lookup, MoE dispatch and combine), top-k.
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

function checkIndex(op: string, idx: Tensor): void {
  if (idx.dtype !== 'i32') throw new Error(`${op}: indices must be i32, got ${idx.dtype}`);
}

/** out[i, :] = src[idx[i], :]; src (R, C), idx (...) → out (..., C). */
export function gatherRows(src: Tensor, idx: Tensor): Tensor {
  const backend = assertSameBackend('gatherRows', src, idx);
  checkIndex('gatherRows', idx);
  const cols = src.shape[src.ndim - 1];
  const rows = src.size / cols;
  const n = idx.size;
  const y = backend.empty(src.dtype, n * cols);
  backend.gatherRows(src.storage, idx.storage, y, n, cols);
  return makeResult(y, [...idx.shape, cols], backend, 'gatherRows', [src], (g) => {
    const dsrc = backend.alloc(g.dtype, rows * cols);
    backend.scatterAddRows(g.storage, idx.storage, null, dsrc, n, cols);
    return [new Tensor(dsrc, src.shape, backend)];
  });
}

/** Embedding lookup: weight (V, C), ids (...) → (..., C). */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  return gatherRows(weight, ids);
}

/**
 * out (rows, C) with out[idx[i], :] += weights[i] · src[i, :]; src (n, C), idx (n),
 * weights (n) or null. The MoE combine step.
 */
export function scatterAddRows(src: Tensor, idx: Tensor, weights: Tensor | null, rows: number): Tensor {
  const backend = assertSameBackend('scatterAddRows', src, idx);
  checkIndex('scatterAddRows', idx);
  const cols = src.shape[src.ndim - 1];
  const n = src.size / cols;
  if (idx.size !== n || (weights && weights.size !== n)) {
    throw new Error(`scatterAddRows: ${n} source rows, ${idx.size} indices, ${weights?.size ?? 'no'} weights`);
  }
  const y = backend.alloc(src.dtype, rows * cols);
  backend.scatterAddRows(src.storage, idx.storage, weights?.storage ?? null, y, n, cols);
  return makeResult(y, [rows, cols], backend, 'scatterAddRows', [src, weights], (g) => {
    let dsrc: Tensor | null = null;
    if (src.requiresGrad) {
      const s = backend.empty(g.dtype, n * cols);
      backend.gatherRows(g.storage, idx.storage, s, n, cols);
      if (weights) backend.binary('mul', s, [cols, 1], weights.storage, [1, 0], s, [n, cols]);
      dsrc = new Tensor(s, src.shape, backend);
    }
    let dw: Tensor | null = null;
    if (weights?.requiresGrad) {
      const s = backend.empty(g.dtype, n);
      backend.rowDot(g.storage, idx.storage, src.storage, s, n, cols);
      dw = new Tensor(s, weights.shape, backend);
    }
    return [dsrc, dw];
  });
}

/** out[r, j] = x[r, idx[r, j]] over the last axis (torch.gather on dim -1). */
export function gatherLast(x: Tensor, idx: Tensor): Tensor {
  const backend = assertSameBackend('gatherLast', x, idx);
  checkIndex('gatherLast', idx);
  const cols = x.shape[x.ndim - 1];
  const k = idx.shape[idx.ndim - 1];
  const rows = x.size / cols;
  if (idx.size !== rows * k) throw new Error(`gatherLast: indices [${idx.shape}] do not match rows of [${x.shape}]`);
  const y = backend.empty(x.dtype, rows * k);
  backend.gatherLast(x.storage, idx.storage, y, rows, cols, k);
  return makeResult(y, idx.shape, backend, 'gatherLast', [x], (g) => {
    const dx = backend.alloc(g.dtype, x.size);
    backend.scatterAddLast(g.storage, idx.storage, dx, rows, cols, k);
    return [new Tensor(dx, x.shape, backend)];
  });
}

/** The k largest values along the last axis (descending) and their indices (i32). */
export function topk(x: Tensor, k: number): { values: Tensor; indices: Tensor } {
  const cols = x.shape[x.ndim - 1];
  if (k < 1 || k > cols) throw new Error(`topk: k=${k} outside 1..${cols}`);
  const rows = x.size / cols;
  const shape = [...x.shape.slice(0, -1), k];
  const vals = x.backend.empty(x.dtype, rows * k);
  const idx = x.backend.empty('i32', rows * k);
  x.backend.topk(x.storage, vals, idx, rows, cols, k);
  const indices = new Tensor(idx, shape, x.backend);
  if (!x.requiresGrad) return { values: new Tensor(vals, shape, x.backend), indices };
  return { values: gatherLast(x, indices), indices };
}
