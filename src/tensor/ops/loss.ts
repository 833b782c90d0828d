// Cross-entropy (fused log-softmax + NLL), with an ignore index.
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
