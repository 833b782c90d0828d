// Matrix products through the backend's GEMM; transposes are GEMM flags, never copies.
import type { Backend, Storage } from '../../backend/backend.js';
import { assertSameBackend, isGradEnabled, makeResult, numel, sameShape, Tensor } from '../tensor.js';
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

/**
 * Row blocks through different weights, one GEMM per block (the MoE expert layer):
 * rows [start_e, start_e + counts[e]) of x (M, in) are multiplied by weights[e]ᵀ (out, in),
 * giving y (M, out). Blocks are contiguous and in order; a count of 0 skips its weight.
 */
export function groupedLinear(x: Tensor, weights: readonly Tensor[], counts: ArrayLike<number>): Tensor {
  const backend = assertSameBackend('groupedLinear', x, ...weights);
  const [M, inF] = x.shape;
  const outF = weights[0].shape[0];
  let total = 0;
  for (let e = 0; e < weights.length; e++) {
    const w = weights[e];
    if (w.ndim !== 2 || w.shape[0] !== outF || w.shape[1] !== inF) {
      throw new Error(`groupedLinear: weight ${e}${w.name ? ` (${w.name})` : ''} has shape [${w.shape}], expected [${outF}, ${inF}]`);
    }
    total += counts[e];
  }
  if (x.ndim !== 2 || total !== M) throw new Error(`groupedLinear: block sizes sum to ${total}, input is [${x.shape}]`);
  const blocks: { e: number; start: number; n: number }[] = [];
  for (let e = 0, start = 0; e < weights.length; start += counts[e], e++) if (counts[e] > 0) blocks.push({ e, start, n: counts[e] });

  const gemmAt = (a: Storage, aOff: number, transA: boolean, b: Storage, transB: boolean, c: Storage, cOff: number,
    m: number, n: number, k: number, beta = 0): void => backend.gemm({
    transA, transB, m, n, k, alpha: 1, beta,
    a, aOffset: aOff, lda: transA ? m : k, strideA: 0,
    b, bOffset: 0, ldb: transB ? k : n, strideB: 0,
    c, cOffset: cOff, ldc: n, strideC: 0, batch: 1,
  });
  const y = backend.empty(x.dtype, M * outF);
  for (const { e, start, n } of blocks) gemmAt(x.storage, start * inF, false, weights[e].storage, true, y, start * outF, n, outF, inF);

  return makeResult(y, [M, outF], backend, 'groupedLinear', [x, ...weights], (g) => {
    const dx = x.requiresGrad ? backend.empty(g.dtype, M * inF) : null;
    const dws: (Tensor | null)[] = weights.map(() => null);
    for (const { e, start, n } of blocks) {
      // dX_e = G_e · W_e ;  dW_e = G_eᵀ · X_e
      if (dx) gemmAt(g.storage, start * outF, false, weights[e].storage, false, dx, start * inF, n, inF, outF);
      if (weights[e].requiresGrad) {
        const dw = backend.empty(g.dtype, outF * inF);
        backend.gemm({
          transA: true, transB: false, m: outF, n: inF, k: n, alpha: 1, beta: 0,
          a: g.storage, aOffset: start * outF, lda: outF, strideA: 0,
          b: x.storage, bOffset: start * inF, ldb: inF, strideB: 0,
          c: dw, cOffset: 0, ldc: inF, strideC: 0, batch: 1,
        });
        dws[e] = new Tensor(dw, weights[e].shape, backend);
      }
    }
    // The blocks cover all M rows (counts sum to M), so dx is fully written.
    return [dx ? new Tensor(dx, x.shape, backend) : null, ...dws];
  });
}

/**
 * The routed experts of a MoE layer, for inference: y[t] = Σ_j weights[t, j] · W_down[e]
 * (silu(W_gate[e] x_t) ⊙ W_up[e] x_t), e = indices[t, j], in one backend call. x (N, C),
 * indices i32 and weights (N, K), gate/up (I, C) and down (C, I) per expert. It has no
 * gradient: training composes gatherRows, groupedLinear and scatterAddRows instead.
 */
export function moeExperts(x: Tensor, indices: Tensor, weights: Tensor,
  gate: readonly Tensor[], up: readonly Tensor[], down: readonly Tensor[]): Tensor {
  const backend = assertSameBackend('moeExperts', x, indices, weights, ...gate, ...up, ...down);
  if (isGradEnabled() && [x, weights, ...gate, ...up, ...down].some((t) => t.requiresGrad)) {
    throw new Error('moeExperts has no gradient: call it under noGrad (training uses the differentiable expert path)');
  }
  const [N, C] = x.shape;
  const K = indices.shape[1];
  const E = gate.length, I = gate[0]?.shape[0] ?? 0;
  if (x.ndim !== 2 || indices.ndim !== 2 || indices.shape[0] !== N || indices.dtype !== 'i32' || !sameShape(weights.shape, indices.shape)) {
    throw new Error(`moeExperts: x [${x.shape}], indices [${indices.shape}] (${indices.dtype}) and weights [${weights.shape}] must be (N, C), i32 (N, K) and (N, K)`);
  }
  if (E === 0 || up.length !== E || down.length !== E) throw new Error(`moeExperts: ${E} gate, ${up.length} up and ${down.length} down weights`);
  for (let e = 0; e < E; e++) {
    for (const [name, w, want] of [['gate', gate[e], [I, C]], ['up', up[e], [I, C]], ['down', down[e], [C, I]]] as const) {
      if (!sameShape(w.shape, want)) throw new Error(`moeExperts: ${name}[${e}]${w.name ? ` (${w.name})` : ''} has shape [${w.shape}], expected [${want}]`);
    }
  }
  const out = backend.alloc(x.dtype, N * C);
  backend.moeExperts(x.storage, indices.storage, weights.storage, gate.map((w) => w.storage), up.map((w) => w.storage),
    down.map((w) => w.storage), out, N, K, C, I);
  return new Tensor(out, [N, C], backend);
}
