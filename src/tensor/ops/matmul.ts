// Matrix products through the backend's GEMM; transposes are GEMM flags, never copies.
import type { Backend, Storage } from '../../backend/backend.js';
import { assertSameBackend, makeResult, numel, sameShape, Tensor } from '../tensor.js';
import { sumToShape } from './broadcast.js';

/** C (batch, m, n) = op(A) · op(B) with dense row-major operands. */
function gemm(backend: Backend, a: Storage, transA: boolean, b: Storage, transB: boolean,
  m: number, n: number, k: number, batch = 1, bBatched = true, c?: Storage, beta = 0): Storage {
  const out = c ?? backend.empty(a.dtype, batch * m * n);
  backend.gemm({
    transA, transB, m, n, k, alpha: 1, beta,
    a, aOffset: 0, lda: transA ? m : k, strideA: m * k,
    b, bOffset: 0, ldb: transB ? k : n, strideB: bBatched ? k * n : 0,
    c: out, cOffset: 0, ldc: n, strideC: m * n,
    batch,
  });
  return out;
}

/**
 * y = x · Wᵀ (+ bias): x (..., in), W (out, in) as PyTorch/Hugging Face store it, bias (out).
 */
export function linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
  const backend = assertSameBackend('linear', x, w);
  const inF = x.shape[x.ndim - 1];
  const [outF, wIn] = w.shape;
  if (w.ndim !== 2 || wIn !== inF) {
    throw new Error(`linear: input (..., ${inF}) does not match weight [${w.shape}]${w.name ? ` (${w.name})` : ''}`);
  }
  const rows = x.size / inF;
  const shape = [...x.shape.slice(0, -1), outF];
  const y = gemm(backend, x.storage, false, w.storage, true, rows, outF, inF);
  if (bias) {
    if (bias.size !== outF) throw new Error(`linear: bias of shape [${bias.shape}] for ${outF} outputs`);
    backend.binary('add', y, [outF, 1], bias.storage, [0, 1], y, [rows, outF]);
  }
  return makeResult(y, shape, backend, 'linear', [x, w, bias ?? null], (g) => [
    x.requiresGrad ? new Tensor(gemm(backend, g.storage, false, w.storage, false, rows, inF, outF), x.shape, backend) : null,
    w.requiresGrad ? new Tensor(gemm(backend, g.storage, true, x.storage, false, outF, inF, rows), w.shape, backend) : null,
    bias?.requiresGrad ? sumToShape(new Tensor(g.storage, [rows, outF], backend), [outF]) : null,
  ]);
}

/**
 * a (..., m, k) · b (k, n) or a (..., m, k) · b (..., m', k, n) with equal leading axes.
 * `transB` reads b as (..., n, k) transposed.
 */
export function matmul(a: Tensor, b: Tensor, opts: { transB?: boolean } = {}): Tensor {
  const backend = assertSameBackend('matmul', a, b);
  const transB = opts.transB ?? false;
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul: needs rank ≥ 2, got [${a.shape}] and [${b.shape}]`);
  const [m, k] = a.shape.slice(-2);
  const [bk, n] = transB ? [b.shape[b.ndim - 1], b.shape[b.ndim - 2]] : b.shape.slice(-2);
  if (k !== bk) throw new Error(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}]${transB ? 'ᵀ' : ''}`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const shared = b.ndim === 2;
  if (!shared && !sameShape(aBatch, bBatch)) {
    throw new Error(`matmul: batch axes differ: [${a.shape}] · [${b.shape}] (only equal batches or a 2-D right side)`);
  }
  const batch = numel(aBatch);
  const shape = [...aBatch, m, n];
  // A shared right matrix folds the batch into the rows.
  const [bm, bb] = shared ? [m * batch, 1] : [m, batch];
  const y = gemm(backend, a.storage, false, b.storage, transB, bm, n, k, bb);
  return makeResult(y, shape, backend, 'matmul', [a, b], (g) => {
    const da = a.requiresGrad ? new Tensor(gemm(backend, g.storage, false, b.storage, !transB, bm, k, n, bb), a.shape, backend) : null;
    let db: Tensor | null = null;
    if (b.requiresGrad) {
      // dB = Aᵀ·G, or (G ᵀ·A) when B was read transposed.
      const s = transB
        ? gemm(backend, g.storage, true, a.storage, false, n, k, bm, bb)
        : gemm(backend, a.storage, true, g.storage, false, k, n, bm, bb);
      db = new Tensor(s, b.shape, backend); // a shared B already sums over the folded batch
    }
    return [da, db];
  });
}
