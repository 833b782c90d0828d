// Cross-entropy (fused log-softmax + NLL), with an ignore index.
import type { Storage } from '../../backend/backend.js';
import { assertSameBackend, makeResult, Tensor } from '../tensor.js';

export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing (padding, prompt tokens in SFT). Default -100. */
  ignoreIndex?: number;
  /** 'mean' over non-ignored rows (default), 'sum', or 'none' (per-row losses). */
  reduction?: 'mean' | 'sum' | 'none';
}

/** logits (..., V), targets i32 (...). */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const backend = assertSameBackend('crossEntropy', logits, targets);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const V = logits.shape[logits.ndim - 1];
  const rows = logits.size / V;
  if (targets.dtype !== 'i32' || targets.size !== rows) {
    throw new Error(`crossEntropy: targets must be i32 with ${rows} entries for logits [${logits.shape}], got ${targets.dtype} [${targets.shape}]`);
  }
  const losses = backend.empty(logits.dtype, rows);
  const lse = backend.empty(logits.dtype, rows);
  backend.crossEntropy(logits.storage, targets.storage, losses, lse, rows, V, ignoreIndex);

  const perRowGrad = (dloss: Tensor): Tensor[] => {
    const dlogits = backend.empty(dloss.dtype, logits.size);
    backend.crossEntropyGrad(logits.storage, targets.storage, lse, dloss.storage, dlogits, rows, V, ignoreIndex);
    return [new Tensor(dlogits, logits.shape, backend)];
  };
  if (reduction === 'none') {
    return makeResult(losses, targets.shape, backend, 'crossEntropy', [logits], perRowGrad);
  }
  // Count non-ignored rows for the mean (host read of the small target vector).
  const t = backend.read(targets.storage);
  let count = 0;
  for (let i = 0; i < rows; i++) if (t[i] !== ignoreIndex) count++;
  const total = backend.empty(logits.dtype, 1);
  backend.sumAxis(losses, total, 1, rows, 1);
  const denom = reduction === 'mean' ? Math.max(count, 1) : 1;
  if (denom !== 1) backend.affine(total, 1 / denom, 0, total);
  return makeResult(total, [], backend, 'crossEntropy', [logits], (g) => {
    // Every row's loss has weight g / denom.
    const dloss = backend.empty(g.dtype, rows);
    backend.stridedCopy(g.storage, 0, [0], dloss, 0, [1], [rows]);
    backend.affine(dloss, 1 / denom, 0, dloss);
    return perRowGrad(new Tensor(dloss, [rows], backend));
  });
}

/**
 * Mean cross-entropy of logits = x · Wᵀ against targets, without materialising the (N, V)
 * logits: rows go through in chunks, each chunk's gradient computed on the spot (the loss is
 * the end of the graph, so the backward only scales what the forward already produced).
 * x (N, C), w (V, C), targets i32 (N); -100 (or ignoreIndex) rows are skipped.
 */
export function linearCrossEntropy(x: Tensor, w: Tensor, targets: Tensor, opts: { ignoreIndex?: number; chunkRows?: number } = {}): Tensor {
  const backend = assertSameBackend('linearCrossEntropy', x, w, targets);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const [N, C] = x.shape;
  const [V, wc] = w.shape;
  if (x.ndim !== 2 || w.ndim !== 2 || wc !== C) throw new Error(`linearCrossEntropy: x [${x.shape}] does not match weight [${w.shape}]`);
  if (targets.dtype !== 'i32' || targets.size !== N) throw new Error(`linearCrossEntropy: targets must be i32 with ${N} entries, got ${targets.dtype} [${targets.shape}]`);
  const t = backend.read(targets.storage);
  let count = 0;
  for (let i = 0; i < N; i++) if (t[i] !== ignoreIndex) count++;
  const scale = 1 / Math.max(count, 1);

  const chunk = Math.min(N, opts.chunkRows ?? Math.max(1, Math.floor((8 << 20) / V)));
  const logits = backend.empty(x.dtype, chunk * V);
  const dlogits = backend.empty(x.dtype, chunk * V);
  const losses = backend.empty(x.dtype, chunk);
  const lse = backend.empty(x.dtype, chunk);
  const dloss = backend.empty(x.dtype, chunk);
  backend.fill(dloss, scale);
  const tChunk = backend.empty('i32', chunk);
  const partial = backend.empty(x.dtype, 1);
  const dx = x.requiresGrad ? backend.empty(x.dtype, N * C) : null;
  const dw = w.requiresGrad ? backend.alloc(x.dtype, V * C) : null;
  let total = 0;
  for (let r0 = 0; r0 < N; r0 += chunk) {
    const n = Math.min(chunk, N - r0);
    backend.gemm({ transA: false, transB: true, m: n, n: V, k: C, alpha: 1, beta: 0,
      a: x.storage, aOffset: r0 * C, lda: C, strideA: 0, b: w.storage, bOffset: 0, ldb: C, strideB: 0,
      c: logits, cOffset: 0, ldc: V, strideC: 0, batch: 1 });
    backend.copy(targets.storage, r0, tChunk, 0, n);
    backend.crossEntropy(logits, tChunk, losses, lse, n, V, ignoreIndex);
    backend.sumAxis(losses, partial, 1, n, 1);
    total += backend.read(partial)[0];
    if (!dx && !dw) continue;
    backend.crossEntropyGrad(logits, tChunk, lse, dloss, dlogits, n, V, ignoreIndex);
    if (dx) backend.gemm({ transA: false, transB: false, m: n, n: C, k: V, alpha: 1, beta: 0,
      a: dlogits, aOffset: 0, lda: V, strideA: 0, b: w.storage, bOffset: 0, ldb: C, strideB: 0,
      c: dx, cOffset: r0 * C, ldc: C, strideC: 0, batch: 1 });
    if (dw) backend.gemm({ transA: true, transB: false, m: V, n: C, k: n, alpha: 1, beta: 1,
      a: dlogits, aOffset: 0, lda: V, strideA: 0, b: x.storage, bOffset: r0 * C, ldb: C, strideB: 0,
      c: dw, cOffset: 0, ldc: C, strideC: 0, batch: 1 });
  }
  const loss = backend.upload([total * scale], x.dtype);
  return makeResult(loss, [], backend, 'linearCrossEntropy', [x, w], (g) => {
    const gv = backend.read(g.storage)[0];
    const scaled = (s: Storage, shape: readonly number[]): Tensor => {
      if (gv !== 1) backend.affine(s, gv, 0, s);
      return new Tensor(s, shape, backend);
    };
    return [dx ? scaled(dx, x.shape) : null, dw ? scaled(dw, w.shape) : null];
  });
}
